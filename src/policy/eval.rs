//! The decision procedure and its explanation.
//!
//! Follows the IAM User Guide's evaluation logic for one account: an explicit Deny in any
//! identity or session policy wins; otherwise an identity policy must Allow; otherwise, for a
//! session that carries session policies (possibly none at all, as a federated session without
//! a policy), a session policy must Allow too — a session policy can only narrow. Every
//! decision names the statement that made it (Sid, or `#<index>`), or says that nothing allowed.
//! The root principal is not handled here: the caller allows it before asking.

use std::fmt;

use serde::Serialize;

use super::condition::Truth;
use super::context::Context;
use super::document::{Effect, Policy, PolicyKind, Statement};
use super::matching::{Target, with_lowercase};

/// What is being asked: an action on a resource, with the request's condition keys.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `service:Action`, e.g. `s3:GetObject` (compared case-insensitively).
    pub action: &'a str,
    /// An ARN (`arn:aws:s3:::bucket/key`), or `arn:aws:s3:::` for actions without a resource.
    pub resource: &'a str,
    pub context: &'a Context,
}

/// A policy with the name decisions refer to it by (the caller picks, e.g.
/// `group/devs/S3Access`).
#[derive(Clone, Copy, Debug)]
pub struct NamedPolicy<'a> {
    pub name: &'a str,
    pub policy: &'a Policy,
}

/// The principal a resource policy (trust policy) is evaluated for.
#[derive(Clone, Copy, Debug)]
pub struct PrincipalInfo<'a> {
    pub arn: &'a str,
    pub account: &'a str,
    /// A web identity: `arn` is its OpenID Connect provider's ARN, which
    /// only `"Federated"` entries (and `"*"`) name.
    pub federated: bool,
}

/// A statement, named by its policy's name and its Sid (or `#<0-based index>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct StatementRef {
    pub policy: String,
    pub statement: String,
}

impl StatementRef {
    fn new(policy: &str, statement: &Statement) -> StatementRef {
        StatementRef {
            policy: policy.to_owned(),
            statement: statement.label.clone(),
        }
    }
}

impl StatementRef {
    /// `POLICY statement LABEL`, piece by piece (see [`Reason::pieces`]).
    fn pieces<F: FnMut(&str) + ?Sized>(&self, put: &mut F) {
        put(&self.policy);
        put(" statement ");
        put(&self.statement);
    }
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pieces(f, |put| self.pieces(put))
    }
}

/// Writes what `pieces` puts, stopping at the formatter's first error.
fn write_pieces(
    f: &mut fmt::Formatter<'_>,
    pieces: impl FnOnce(&mut dyn FnMut(&str)),
) -> fmt::Result {
    let mut written = Ok(());
    pieces(&mut |p| {
        if written.is_ok() {
            written = f.write_str(p);
        }
    });
    written
}

/// Why a decision came out as it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A Deny statement matched (in an identity or a session policy).
    ExplicitDeny { by: StatementRef },
    /// An identity statement allowed, and, for a session with session policies, so did
    /// `session`; for a principal with a permissions boundary, so did `boundary`.
    Allowed {
        by: StatementRef,
        session: Option<StatementRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        boundary: Option<StatementRef>,
    },
    /// No identity statement allows (implicit deny).
    NoIdentityAllow,
    /// The identity policies allow, but no session policy statement does.
    NoSessionAllow,
    /// The identity policies allow, but the permissions boundary does not.
    NoBoundaryAllow,
}

impl Reason {
    /// The reason's text, piece by piece: what [`Display`](fmt::Display)
    /// writes and [`Reason::text`] puts together.
    fn pieces<F: FnMut(&str)>(&self, mut put: F) {
        fn by<F: FnMut(&str) + ?Sized>(put: &mut F, words: &str, r: &StatementRef) {
            put(words);
            r.pieces(put);
        }
        match self {
            Reason::ExplicitDeny { by: r } => by(&mut put, "explicit deny by ", r),
            Reason::Allowed {
                by: r,
                session,
                boundary,
            } => {
                by(&mut put, "allowed by ", r);
                if let Some(b) = boundary {
                    by(&mut put, " within permissions boundary ", b);
                }
                if let Some(s) = session {
                    by(&mut put, " and session policy ", s);
                }
            }
            Reason::NoIdentityAllow => put("no statement allows"),
            Reason::NoSessionAllow => put("no session policy statement allows"),
            Reason::NoBoundaryAllow => put("no permissions boundary statement allows"),
        }
    }

    /// The reason as [`Display`](fmt::Display) writes it, put together into
    /// room for it all: every request's audit record carries it, and the
    /// formatter's machinery cost four times as much.
    pub fn text(&self) -> String {
        let mut len = 0;
        self.pieces(|p| len += p.len());
        let mut out = String::with_capacity(len);
        self.pieces(|p| out.push_str(p));
        out
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pieces(f, |put| self.pieces(put))
    }
}

/// The outcome of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed { "Allow" } else { "Deny" };
        write!(f, "{verdict}: {}", self.reason)
    }
}

/// The outcome of [`evaluate_resource_policy`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "by", rename_all = "snake_case")]
pub enum ResourceDecision {
    ExplicitDeny(StatementRef),
    Allowed(StatementRef),
    /// No statement applies: the resource policy neither allows nor denies.
    NotApplicable,
}

impl fmt::Display for ResourceDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceDecision::ExplicitDeny(by) => write!(f, "explicit deny by {by}"),
            ResourceDecision::Allowed(by) => write!(f, "allowed by {by}"),
            ResourceDecision::NotApplicable => f.write_str("no statement applies"),
        }
    }
}

/// Decides a request for a principal with these identity policies (user inline and attached,
/// and those of every group), and, for temporary credentials, the session's policies:
/// `None` = no session-policy constraint, `Some(&[])` = a session without a session policy
/// (nothing is allowed).
///
/// Policies are expected to be of kind Identity or Session; a statement carrying a Principal
/// (from a Resource-kind policy) cannot be decided for an identity request and fails closed:
/// such an Allow never applies, such a Deny always does.
pub fn evaluate(
    identity: &[NamedPolicy<'_>],
    session: Option<&[NamedPolicy<'_>]>,
    req: &Request<'_>,
) -> Decision {
    evaluate_bounded(identity, None, session, req)
}

/// As [`evaluate`], for a principal whose permissions boundary (a managed
/// policy) is `boundary`: an Allow must then also come from the boundary,
/// and a Deny there wins like any other. `Some(&[])` (a boundary that no
/// longer exists) allows nothing.
pub fn evaluate_bounded(
    identity: &[NamedPolicy<'_>],
    boundary: Option<&[NamedPolicy<'_>]>,
    session: Option<&[NamedPolicy<'_>]>,
    req: &Request<'_>,
) -> Decision {
    with_lowercase(req.action, |action| {
        let subject = Subject {
            action,
            target: Target::new(req.resource),
            context: req.context,
        };
        decide(identity, boundary, session, &subject)
    })
}

/// The request as statements are matched against it: the action lowercased (as action
/// patterns are) and the resource split once.
struct Subject<'a> {
    action: &'a str,
    target: Target<'a>,
    context: &'a Context,
}

fn decide(
    identity: &[NamedPolicy<'_>],
    boundary: Option<&[NamedPolicy<'_>]>,
    session: Option<&[NamedPolicy<'_>]>,
    subject: &Subject<'_>,
) -> Decision {
    let identity_allow = match scan(identity, subject) {
        Ok(allow) => allow,
        Err(deny) => return denied(Reason::ExplicitDeny { by: deny }),
    };
    // A Deny anywhere wins, so every set is scanned before any verdict.
    let narrowed = |set: Option<&[NamedPolicy<'_>]>| match set.map(|p| scan(p, subject)) {
        Some(Err(deny)) => Err(deny),
        Some(Ok(allow)) => Ok(Some(allow)),
        None => Ok(None),
    };
    let boundary_allow = match narrowed(boundary) {
        Ok(a) => a,
        Err(deny) => return denied(Reason::ExplicitDeny { by: deny }),
    };
    let session_allow = match narrowed(session) {
        Ok(a) => a,
        Err(deny) => return denied(Reason::ExplicitDeny { by: deny }),
    };
    let Some(by) = identity_allow else {
        return denied(Reason::NoIdentityAllow);
    };
    let boundary = match boundary_allow {
        Some(None) => return denied(Reason::NoBoundaryAllow),
        Some(Some(b)) => Some(b),
        None => None,
    };
    let session = match session_allow {
        Some(None) => return denied(Reason::NoSessionAllow),
        Some(Some(s)) => Some(s),
        None => None,
    };
    Decision {
        allowed: true,
        reason: Reason::Allowed {
            by,
            session,
            boundary,
        },
    }
}

fn denied(reason: Reason) -> Decision {
    Decision {
        allowed: false,
        reason,
    }
}

/// Scans identity or session policies (no principal to match).
fn scan(
    policies: &[NamedPolicy<'_>],
    subject: &Subject<'_>,
) -> Result<Option<StatementRef>, StatementRef> {
    scan_statements(
        policies
            .iter()
            .map(|named| (named.name, named.policy.inner().statements.as_slice())),
        subject,
        None,
    )
}

/// The first matching Allow (`Ok`), or the first matching Deny (`Err`), which ends the scan.
fn scan_statements<'p>(
    policies: impl IntoIterator<Item = (&'p str, &'p [Statement])>,
    subject: &Subject<'_>,
    principal: Option<&PrincipalInfo<'_>>,
) -> Result<Option<StatementRef>, StatementRef> {
    let mut allow = None;
    for (name, statements) in policies {
        for statement in statements {
            // Once something allows, only Deny statements can change the outcome.
            if statement.effect == Effect::Allow && allow.is_some() {
                continue;
            }
            if applies(statement, subject, principal) {
                let by = StatementRef::new(name, statement);
                match statement.effect {
                    Effect::Deny => return Err(by),
                    Effect::Allow => allow = Some(by),
                }
            }
        }
    }
    Ok(allow)
}

/// Whether a resource policy (a role trust policy) allows or denies `req` for `principal`.
/// A policy that is not of kind Resource is never applicable.
pub fn evaluate_resource_policy(
    policy: &NamedPolicy<'_>,
    principal: &PrincipalInfo<'_>,
    req: &Request<'_>,
) -> ResourceDecision {
    let inner = policy.policy.inner();
    if inner.kind != PolicyKind::Resource {
        return ResourceDecision::NotApplicable;
    }
    with_lowercase(req.action, |action| {
        let subject = Subject {
            action,
            target: Target::new(req.resource),
            context: req.context,
        };
        let statements = [(policy.name, inner.statements.as_slice())];
        match scan_statements(statements, &subject, Some(principal)) {
            Err(deny) => ResourceDecision::ExplicitDeny(deny),
            Ok(Some(allow)) => ResourceDecision::Allowed(allow),
            Ok(None) => ResourceDecision::NotApplicable,
        }
    })
}

/// Whether a statement applies to the request. Conditions that cannot be decided
/// ([`Truth::Unknown`]) make an Allow not apply and a Deny apply.
fn applies(
    statement: &Statement,
    subject: &Subject<'_>,
    principal: Option<&PrincipalInfo<'_>>,
) -> bool {
    let mut truth = Truth::True;
    match (&statement.principal, principal) {
        (Some(spec), Some(who)) => {
            if !spec.matches(who) {
                return false;
            }
        }
        (Some(_), None) => truth = Truth::Unknown,
        (None, _) => {}
    }
    if !statement.actions.matches(subject.action) {
        return false;
    }
    if let Some(resources) = &statement.resources
        && !resources.matches(&subject.target, subject.context)
    {
        return false;
    }
    for condition in &statement.conditions {
        truth = truth.and(condition.evaluate(subject.context));
        if truth == Truth::False {
            return false;
        }
    }
    match truth {
        Truth::True => true,
        Truth::False => false,
        Truth::Unknown => statement.effect == Effect::Deny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit record's reason text is what `Display` writes, for every
    /// shape of reason and names of any length or script.
    #[test]
    fn a_reasons_text_is_its_display() {
        let names = [
            "",
            "p",
            "user/bob/own-prefix",
            "ünï/çødé",
            "#0",
            "a statement b",
        ];
        let refs: Vec<StatementRef> = names
            .iter()
            .flat_map(|p| {
                names.iter().map(|s| StatementRef {
                    policy: (*p).into(),
                    statement: (*s).into(),
                })
            })
            .collect();
        let mut reasons = vec![
            Reason::NoIdentityAllow,
            Reason::NoSessionAllow,
            Reason::NoBoundaryAllow,
        ];
        for (i, by) in refs.iter().enumerate() {
            let other = |k: usize| refs[(i * 7 + k) % refs.len()].clone();
            reasons.push(Reason::ExplicitDeny { by: by.clone() });
            for (session, boundary) in [
                (None, None),
                (Some(other(1)), None),
                (None, Some(other(2))),
                (Some(other(3)), Some(other(4))),
            ] {
                reasons.push(Reason::Allowed {
                    by: by.clone(),
                    session,
                    boundary,
                });
            }
        }
        // What the formatter wrote before the text was put together in pieces.
        let sref = |r: &StatementRef| format!("{} statement {}", r.policy, r.statement);
        let expected = |r: &Reason| match r {
            Reason::ExplicitDeny { by } => format!("explicit deny by {}", sref(by)),
            Reason::Allowed {
                by,
                session,
                boundary,
            } => {
                let mut t = format!("allowed by {}", sref(by));
                if let Some(b) = boundary {
                    t += &format!(" within permissions boundary {}", sref(b));
                }
                if let Some(s) = session {
                    t += &format!(" and session policy {}", sref(s));
                }
                t
            }
            Reason::NoIdentityAllow => "no statement allows".into(),
            Reason::NoSessionAllow => "no session policy statement allows".into(),
            Reason::NoBoundaryAllow => "no permissions boundary statement allows".into(),
        };
        for r in &reasons {
            assert_eq!(r.text(), r.to_string(), "{r:?}");
            assert_eq!(r.text(), expected(r), "{r:?}");
        }
    }

    fn policy(statements: &str) -> Policy {
        let doc = format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#);
        Policy::parse(&doc, PolicyKind::Identity).unwrap()
    }

    fn decide(
        identity: &[(&str, &Policy)],
        session: Option<&[(&str, &Policy)]>,
        action: &str,
        resource: &str,
    ) -> Decision {
        fn named<'a>(list: &[(&'a str, &'a Policy)]) -> Vec<NamedPolicy<'a>> {
            list.iter()
                .map(|&(name, policy)| NamedPolicy { name, policy })
                .collect()
        }
        let ctx = Context::new();
        let identity = named(identity);
        let session = session.map(named);
        evaluate(
            &identity,
            session.as_deref(),
            &Request {
                action,
                resource,
                context: &ctx,
            },
        )
    }

    #[test]
    fn explanations_read_well() {
        let allow = policy(
            r#"{"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}"#,
        );
        let deny = policy(
            r#"[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"}]"#,
        );
        let d = decide(
            &[("user/a/p", &allow)],
            None,
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        assert_eq!(d.to_string(), "Allow: allowed by user/a/p statement Read");
        let d = decide(
            &[("group/devs/S3", &deny)],
            None,
            "s3:DeleteObject",
            "arn:aws:s3:::b/k",
        );
        assert_eq!(
            d.to_string(),
            "Deny: explicit deny by group/devs/S3 statement #1"
        );
        let d = decide(&[], None, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(d.to_string(), "Deny: no statement allows");
        let d = decide(
            &[("p", &allow)],
            Some(&[]),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        assert_eq!(d.to_string(), "Deny: no session policy statement allows");
        let d = decide(
            &[("p", &allow)],
            Some(&[("s", &deny)]),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        );
        assert_eq!(
            d.to_string(),
            "Allow: allowed by p statement Read and session policy s statement #0"
        );
    }

    #[test]
    fn serialises_for_the_audit_log() {
        let d = Decision {
            allowed: true,
            reason: Reason::Allowed {
                by: StatementRef {
                    policy: "p".into(),
                    statement: "S".into(),
                },
                session: None,
                boundary: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"allowed":true,"reason":{"kind":"allowed","by":{"policy":"p","statement":"S"},"session":null}}"#
        );
        let n = Decision {
            allowed: false,
            reason: Reason::NoIdentityAllow,
        };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"allowed":false,"reason":{"kind":"no_identity_allow"}}"#
        );
        assert_eq!(
            serde_json::to_string(&ResourceDecision::NotApplicable).unwrap(),
            r#"{"kind":"not_applicable"}"#
        );
    }

    #[test]
    fn a_principal_statement_in_an_identity_list_fails_closed() {
        let trust = Policy::parse(
            r#"{"Version": "2012-10-17", "Statement": [
                {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "*"},
                {"Sid": "D", "Effect": "Deny", "Principal": {"AWS": "111122223333"}, "Action": "s3:Delete*"}]}"#,
            PolicyKind::Resource,
        )
        .unwrap();
        let d = decide(&[("t", &trust)], None, "s3:GetObject", "arn:aws:s3:::b/k");
        assert_eq!(d.reason, Reason::NoIdentityAllow);
        let d = decide(
            &[("t", &trust)],
            None,
            "s3:DeleteObject",
            "arn:aws:s3:::b/k",
        );
        assert!(matches!(d.reason, Reason::ExplicitDeny { ref by } if by.statement == "D"));
    }

    #[test]
    fn resource_policy_needs_the_resource_kind() {
        let identity = policy(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
        let ctx = Context::new();
        let who = PrincipalInfo {
            arn: "arn:aws:iam::111122223333:user/a",
            account: "111122223333",
            federated: false,
        };
        let req = Request {
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::111122223333:role/r",
            context: &ctx,
        };
        let named = NamedPolicy {
            name: "p",
            policy: &identity,
        };
        assert_eq!(
            evaluate_resource_policy(&named, &who, &req),
            ResourceDecision::NotApplicable
        );
    }
}
