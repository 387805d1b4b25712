//! The IAM JSON policy language: parse and validate once, match, evaluate with an explanation.
//!
//! Owns everything between a policy document and a decision, and nothing else: no I/O, no
//! async, no knowledge of users, stores or sockets. Callers hand in plain values — parsed
//! [`Policy`] documents, an action, a resource ARN and a [`Context`] of condition keys — and get
//! back a [`Decision`] that names the statement that decided it.
//!
//! Follows AWS's documented behaviour (IAM User Guide: grammar, Version, Statement, Sid,
//! Action/NotAction, Resource/NotResource, Condition operators, multivalued keys, policy
//! variables, evaluation logic). Where AWS's behaviour is undocumented, the choice is the
//! fail-closed one and a test in `tests/policy/` pins it.
//!
//! Layout:
//! - `json`: serde models of the raw document (one-or-many wrappers, duplicate-key checks);
//! - `document`: validation and compilation into [`Policy`];
//! - `matching`: wildcard matching of actions and ARNs;
//! - `variables`: `${...}` policy variables;
//! - `values`: typed condition values (numbers, dates, CIDRs);
//! - `condition`: condition operators and their evaluation;
//! - `context`: the request's condition keys;
//! - `principal`: Principal/NotPrincipal of resource (trust) policies;
//! - `eval`: the decision procedure and its explanation;
//! - `keys` and `lint`: the catalogue of known condition keys and actions, and the lint;
//! - `trace`: which condition keys an evaluation consulted, for the audit record.

mod condition;
mod context;
mod document;
mod enforceable;
mod error;
mod eval;
mod json;
mod keys;
mod lint;
mod matching;
mod principal;
pub mod trace;
mod values;
mod variables;

#[cfg(test)]
mod proptests;

pub use context::{Context, ContextValue, Optional, Reads};
pub use document::{Policy, PolicyKind};
pub use error::{PolicyError, ValueKind};
pub use eval::{
    Decision, NamedPolicy, PrincipalInfo, Reason, Request, ResourceDecision, StatementRef,
    evaluate, evaluate_bounded, evaluate_resource_policy,
};
pub use lint::{Lint, LintKind};
