//! The IAM policy language: parse and validate, wildcard matching, conditions,
//! evaluation with an explanation. Pure: no I/O.
//!
//! Follows AWS's identity-based evaluation: explicit Deny wins, then an Allow is
//! required (and, for sessions, an Allow in the session policy as well).

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Session,
    Resource,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid json: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    id: String,
    /// `Principal` of a resource (trust) policy: `*`, account ids or ARNs.
    principals: Option<Vec<String>>,
    effect: Effect,
    not_action: bool,
    actions: Vec<String>,
    not_resource: bool,
    resources: Vec<String>,
    conditions: Vec<(String, String, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("{what} must be strings")))
            })
            .collect(),
        _ => Err(invalid(format!(
            "{what} must be a string or an array of strings"
        ))),
    }
}

impl Policy {
    pub fn parse(doc: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let v: Value = serde_json::from_str(doc).map_err(|e| PolicyError::Json(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("policy must be a json object"))?;
        let stmts = match obj.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(o @ Value::Object(_)) => vec![o.clone()],
            _ => return Err(invalid("missing or invalid \"Statement\"")),
        };
        let mut statements = Vec::new();
        for (i, s) in stmts.iter().enumerate() {
            let s = s
                .as_object()
                .ok_or_else(|| invalid("statement must be an object"))?;
            if kind != PolicyKind::Resource
                && (s.contains_key("Principal") || s.contains_key("NotPrincipal"))
            {
                return Err(invalid(
                    "\"Principal\" is not allowed in an identity policy",
                ));
            }
            let principals = match s.get("Principal") {
                None => None,
                Some(Value::String(star)) if star == "*" => Some(vec!["*".to_string()]),
                Some(Value::Object(m)) => {
                    let mut out = Vec::new();
                    for (kind, v) in m {
                        let values = strings(v, "Principal")?;
                        if kind == "AWS" {
                            out.extend(values);
                        }
                    }
                    Some(out)
                }
                Some(_) => return Err(invalid("\"Principal\" must be \"*\" or an object")),
            };
            if kind == PolicyKind::Resource && principals.is_none() {
                return Err(invalid("a trust policy statement needs \"Principal\""));
            }
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(invalid("\"Effect\" must be \"Allow\" or \"Deny\"")),
            };
            let (not_action, actions) = match (s.get("Action"), s.get("NotAction")) {
                (Some(a), None) => (false, strings(a, "Action")?),
                (None, Some(a)) => (true, strings(a, "NotAction")?),
                _ => {
                    return Err(invalid(
                        "exactly one of \"Action\" or \"NotAction\" is required",
                    ));
                }
            };
            let (not_resource, resources) = match (s.get("Resource"), s.get("NotResource")) {
                (Some(a), None) => (false, strings(a, "Resource")?),
                (None, Some(a)) => (true, strings(a, "NotResource")?),
                // A trust policy applies to its role: no Resource needed.
                (None, None) if kind == PolicyKind::Resource => (false, vec!["*".to_string()]),
                _ => {
                    return Err(invalid(
                        "exactly one of \"Resource\" or \"NotResource\" is required",
                    ));
                }
            };
            let mut conditions = Vec::new();
            if let Some(c) = s.get("Condition") {
                let c = c
                    .as_object()
                    .ok_or_else(|| invalid("\"Condition\" must be an object"))?;
                for (op, keys) in c {
                    if !matches!(
                        op.as_str(),
                        "StringEquals" | "StringLike" | "StringNotEquals" | "StringNotLike"
                    ) {
                        return Err(invalid(format!("unsupported condition operator {op:?}")));
                    }
                    let keys = keys
                        .as_object()
                        .ok_or_else(|| invalid("condition block must be an object"))?;
                    for (k, vals) in keys {
                        conditions.push((
                            op.clone(),
                            k.to_ascii_lowercase(),
                            strings(vals, "condition values")?,
                        ));
                    }
                }
            }
            let id = s
                .get("Sid")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{i}"));
            statements.push(Statement {
                id,
                principals,
                effect,
                not_action,
                actions,
                not_resource,
                resources,
                conditions,
            });
        }
        Ok(Policy { statements })
    }
}

/// Glob match with `*` (any run) and `?` (one character).
fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || eq(p[pi], v[vi])) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Single(String),
    Multi(Vec<String>),
}

#[derive(Debug, Clone, Default)]
pub struct Context {
    values: HashMap<String, ContextValue>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .insert(key.to_ascii_lowercase(), ContextValue::Single(value.into()));
    }
    pub fn set_multi(&mut self, key: &str, values: Vec<String>) {
        self.values
            .insert(key.to_ascii_lowercase(), ContextValue::Multi(values));
    }
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.values.get(&key.to_ascii_lowercase())
    }
}

pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

pub struct NamedPolicy<'a> {
    pub name: &'a str,
    pub policy: &'a Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementRef {
    pub policy: String,
    pub statement: String,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} statement {}", self.policy, self.statement)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Reason {
    ExplicitDeny {
        by: StatementRef,
    },
    Allowed {
        by: StatementRef,
        session: Option<StatementRef>,
    },
    NoIdentityAllow,
    NoSessionAllow,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ExplicitDeny { by } => write!(f, "explicit deny by {by}"),
            Reason::Allowed { by, session: None } => write!(f, "allowed by {by}"),
            Reason::Allowed {
                by,
                session: Some(s),
            } => write!(f, "allowed by {by} and session {s}"),
            Reason::NoIdentityAllow => write!(f, "no statement allows"),
            Reason::NoSessionAllow => write!(f, "no session policy statement allows"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

fn substitute(s: &str, ctx: &Context) -> Option<String> {
    if !s.contains("${") {
        return Some(s.to_string());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}')? + i;
        match ctx.get(&rest[i + 2..end]) {
            Some(ContextValue::Single(v)) => out.push_str(v),
            _ => return None,
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn condition_holds(op: &str, key: &str, vals: &[String], ctx: &Context) -> bool {
    let vals: Vec<String> = vals.iter().filter_map(|v| substitute(v, ctx)).collect();
    let vals = &vals[..];
    let value = match ctx.get(key) {
        Some(ContextValue::Single(v)) => Some(v.as_str()),
        Some(ContextValue::Multi(v)) => v.first().map(String::as_str),
        None => None,
    };
    match (op, value) {
        ("StringEquals", Some(v)) => vals.iter().any(|p| p == v),
        ("StringLike", Some(v)) => vals.iter().any(|p| glob(p, v, false)),
        ("StringNotEquals", Some(v)) => !vals.iter().any(|p| p == v),
        ("StringNotLike", Some(v)) => !vals.iter().any(|p| glob(p, v, false)),
        ("StringNotEquals" | "StringNotLike", None) => true,
        _ => false,
    }
}

fn resource_matches(pattern: &str, resource: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let r: Vec<&str> = resource.splitn(6, ':').collect();
    p.len() == 6 && r.len() == 6 && p.iter().zip(&r).all(|(p, r)| glob(p, r, false))
}

fn statement_matches(s: &Statement, req: &Request<'_>) -> bool {
    let action = s.actions.iter().any(|a| glob(a, req.action, true)) != s.not_action;
    let resource =
        s.resources.iter().any(|r| {
            substitute(r, req.context).is_some_and(|r| resource_matches(&r, req.resource))
        }) != s.not_resource;
    action
        && resource
        && s.conditions
            .iter()
            .all(|(op, k, v)| condition_holds(op, k, v, req.context))
}

fn find(policies: &[NamedPolicy<'_>], req: &Request<'_>, effect: Effect) -> Option<StatementRef> {
    policies.iter().find_map(|p| {
        p.policy
            .statements
            .iter()
            .find(|s| s.effect == effect && statement_matches(s, req))
            .map(|s| StatementRef {
                policy: p.name.to_string(),
                statement: s.id.clone(),
            })
    })
}

pub fn evaluate(
    identity: &[NamedPolicy<'_>],
    session: Option<&[NamedPolicy<'_>]>,
    req: &Request<'_>,
) -> Decision {
    let deny = find(identity, req, Effect::Deny)
        .or_else(|| session.and_then(|s| find(s, req, Effect::Deny)));
    if let Some(by) = deny {
        return Decision {
            allowed: false,
            reason: Reason::ExplicitDeny { by },
        };
    }
    let Some(by) = find(identity, req, Effect::Allow) else {
        return Decision {
            allowed: false,
            reason: Reason::NoIdentityAllow,
        };
    };
    let session_by = match session {
        None => None,
        Some(s) => match find(s, req, Effect::Allow) {
            Some(r) => Some(r),
            None => {
                return Decision {
                    allowed: false,
                    reason: Reason::NoSessionAllow,
                };
            }
        },
    };
    Decision {
        allowed: true,
        reason: Reason::Allowed {
            by,
            session: session_by,
        },
    }
}

/// The principal a resource (trust) policy is evaluated for.
#[derive(Clone, Copy, Debug)]
pub struct PrincipalInfo<'a> {
    pub arn: &'a str,
    pub account: &'a str,
}

/// The outcome of [`evaluate_resource_policy`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum ResourceDecision {
    ExplicitDeny(StatementRef),
    Allowed(StatementRef),
    NotApplicable,
}

fn principal_matches(listed: &[String], who: &PrincipalInfo<'_>) -> bool {
    listed.iter().any(|p| {
        p == "*"
            || p == who.arn
            || (!who.account.is_empty()
                && (p == who.account || *p == format!("arn:aws:iam::{}:root", who.account)))
    })
}

/// Whether a resource policy (a role trust policy) allows or denies `req`
/// for `principal`: its `Principal` must name the principal (its ARN, its
/// account, or `*`). A policy that is not of kind Resource never applies.
pub fn evaluate_resource_policy(
    policy: &NamedPolicy<'_>,
    principal: &PrincipalInfo<'_>,
    req: &Request<'_>,
) -> ResourceDecision {
    let mut allow = None;
    for s in &policy.policy.statements {
        let Some(listed) = &s.principals else {
            return ResourceDecision::NotApplicable;
        };
        if !principal_matches(listed, principal) || !statement_matches(s, req) {
            continue;
        }
        let by = StatementRef {
            policy: policy.name.to_string(),
            statement: s.id.clone(),
        };
        match s.effect {
            Effect::Deny => return ResourceDecision::ExplicitDeny(by),
            Effect::Allow => {
                allow.get_or_insert(by);
            }
        }
    }
    allow.map_or(ResourceDecision::NotApplicable, ResourceDecision::Allowed)
}
