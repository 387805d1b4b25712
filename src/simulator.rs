//! The policy simulator behind `s3warden policy check`: would this user be
//! allowed this action on this resource (or this raw S3 request), and why?
//! It evaluates exactly as the proxy does — same directory, same
//! classification, same condition keys — without sending anything anywhere.

use std::fmt;

use chrono::{SecondsFormat, Utc};
use http::{HeaderMap, HeaderName, Method};

use crate::auth::canonical::parse_query;
use crate::identity::{Directory, User};
use crate::policy::{self, Context, Decision, Lint, NamedPolicy, Policy, PolicyKind, Reason};
use crate::s3::address::resolve;
use crate::s3::classify::{Check, RequestView, classify};

/// What to evaluate.
#[derive(Debug, Clone)]
pub enum Question {
    /// One action on one resource ARN.
    Action { action: String, resource: String },
    /// A raw S3 request line, `METHOD /bucket/key?query`, with optional
    /// `name: value` headers, classified first as the proxy would.
    Request {
        line: String,
        headers: Vec<(String, String)>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("session policy: {0}")]
    SessionPolicy(Box<policy::PolicyError>),
    #[error("request line {0:?} must be METHOD /path[?query]")]
    BadRequestLine(String),
    #[error("header {0:?} must be `name: value`")]
    BadHeader(String),
    #[error("the request is refused before any policy is read: {0}")]
    Unclassifiable(String),
    #[error("context {0:?} must be KEY=VALUE")]
    BadContext(String),
    #[error("resource {0:?} is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)")]
    BadResource(String),
}

/// One evaluated check: an action on a resource and its decision.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub action: String,
    pub resource: String,
    pub decision: Decision,
}

/// The simulator's answer.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// S3's name for the classified request, when a request line was given.
    pub operation: Option<&'static str>,
    pub checks: Vec<Evaluated>,
    /// The first denial, else the first allow: what the proxy would decide.
    pub decision: Decision,
    /// Condition keys the simulator filled because the request line implies
    /// them (the caller gave no value), as `(key, value)`.
    pub assumed: Vec<(String, String)>,
}

impl fmt::Display for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.decision.allowed {
            "Allow"
        } else {
            "Deny"
        };
        writeln!(f, "{verdict}: {}", self.decision.reason)?;
        if let Some(op) = self.operation {
            writeln!(f, "  operation {op}")?;
        }
        for e in &self.checks {
            let v = if e.decision.allowed { "allow" } else { "deny" };
            writeln!(
                f,
                "  {v:<5} {} on {}: {}",
                e.action, e.resource, e.decision.reason
            )?;
        }
        for (k, v) in &self.assumed {
            writeln!(
                f,
                "  assumed {k}={v} (implied by the request; --context {k}=... changes it)"
            )?;
        }
        Ok(())
    }
}

/// Parses `KEY=VALUE` pairs; a key given twice becomes multivalued.
pub fn parse_context(pairs: &[String]) -> Result<Vec<(String, String)>, SimulateError> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| SimulateError::BadContext(p.clone()))
        })
        .collect()
}

fn user<'a>(dir: &'a Directory, name: &str) -> Result<&'a User, SimulateError> {
    dir.user(name)
        .ok_or_else(|| SimulateError::NoSuchUser(name.to_string()))
}

/// The condition keys that are facts about the simulated user, then the
/// caller's own (which win). Nothing about the request or the moment is
/// filled here: as in IAM's policy simulator, a key the caller did not give
/// is absent.
fn base_context(dir: &Directory, u: &User, given: &[(String, String)]) -> Context {
    let mut ctx = Context::new();
    ctx.set("aws:username", u.name.as_str());
    ctx.set("aws:userid", u.user_id.as_str());
    ctx.set("aws:PrincipalType", "User");
    ctx.set("aws:PrincipalArn", u.arn.as_str());
    ctx.set("aws:PrincipalAccount", dir.account_id.as_str());
    for t in u.tags.iter() {
        ctx.set(&format!("aws:PrincipalTag/{}", t.key), t.value.as_str());
    }
    apply_given(&mut ctx, given);
    ctx
}

/// What a signed S3 request line implies beyond its own keys: a SigV4
/// header-signed request over plain HTTP, now, to this account. Only keys the
/// caller gave no value for are filled; they are returned to be shown.
fn assume_request_keys(
    dir: &Directory,
    ctx: &mut Context,
    given: &[(String, String)],
) -> Vec<(String, String)> {
    let now = Utc::now();
    let implied = [
        ("aws:SecureTransport", "false".to_string()),
        ("s3:authType", "REST-HEADER".to_string()),
        ("s3:signatureversion", "AWS4-HMAC-SHA256".to_string()),
        ("s3:ResourceAccount", dir.account_id.clone()),
        (
            "aws:CurrentTime",
            now.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("aws:EpochTime", now.timestamp().to_string()),
    ];
    let mut assumed = Vec::new();
    for (key, value) in implied {
        if given.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            continue;
        }
        ctx.set(key, value.clone());
        assumed.push((key.to_string(), value));
    }
    assumed
}

/// An ARN has six `:`-separated parts, the first `arn`.
fn check_arn(resource: &str) -> Result<(), SimulateError> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty() {
        Ok(())
    } else {
        Err(SimulateError::BadResource(resource.to_string()))
    }
}

fn apply_given(ctx: &mut Context, given: &[(String, String)]) {
    let mut keys: Vec<&str> = given.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    for key in keys {
        let values: Vec<String> = given
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect();
        if values.len() == 1 {
            ctx.set(key, values[0].clone());
        } else {
            ctx.set_multi(key, values);
        }
    }
}

/// An action and the resource ARN it is asked for.
type ActionOnResource = (String, String);

/// The (action, resource) pairs a question asks, with the request's own
/// condition keys.
fn checks_of(
    question: &Question,
    ctx: &mut Context,
) -> Result<(Option<&'static str>, Vec<ActionOnResource>), SimulateError> {
    match question {
        Question::Action { action, resource } => {
            check_arn(resource)?;
            Ok((None, vec![(action.clone(), resource.clone())]))
        }
        Question::Request { line, headers } => {
            let bad = || SimulateError::BadRequestLine(line.clone());
            let (method, uri) = line.trim().split_once(' ').ok_or_else(bad)?;
            let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad())?;
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            let target = resolve(None, path, &[])
                .map_err(|e| SimulateError::Unclassifiable(e.to_string()))?;
            let query = parse_query(query).ok_or_else(bad)?;
            let mut h = HeaderMap::new();
            for (n, v) in headers {
                let name = HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes())
                    .map_err(|_| SimulateError::BadHeader(format!("{n}: {v}")))?;
                let value = v
                    .parse()
                    .map_err(|_| SimulateError::BadHeader(format!("{n}: {v}")))?;
                h.append(name, value);
            }
            let view = RequestView {
                method: &method,
                target: &target,
                query: &query,
                headers: &h,
            };
            let c =
                classify(&view, ctx).map_err(|e| SimulateError::Unclassifiable(e.to_string()))?;
            let checks = c
                .checks
                .into_iter()
                .map(|Check { action, resource }| (action.to_string(), resource))
                .collect();
            Ok((Some(c.operation.name()), checks))
        }
    }
}

/// Evaluates `question` for user `name`; with a session policy, as a session
/// of that user whose permissions are intersected with it.
pub fn simulate(
    dir: &Directory,
    name: &str,
    session_policy: Option<&str>,
    question: &Question,
    context: &[(String, String)],
) -> Result<Simulation, SimulateError> {
    let u = user(dir, name)?;
    let session = session_policy
        .map(|doc| {
            Policy::parse(doc, PolicyKind::Session).and_then(|p| p.check_enforceable().map(|()| p))
        })
        .transpose()
        .map_err(|e| SimulateError::SessionPolicy(Box::new(e)))?;
    let mut ctx = base_context(dir, u, context);
    let assumed = match question {
        Question::Request { .. } => assume_request_keys(dir, &mut ctx, context),
        Question::Action { .. } => Vec::new(),
    };
    let (operation, checks) = checks_of(question, &mut ctx)?;
    // The caller's keys win over what classification derived.
    apply_given(&mut ctx, context);
    let identity: Vec<NamedPolicy<'_>> = dir.user_policies(u);
    let boundary = dir.boundary_policies(u.boundary.as_deref());
    let session_named = session.as_ref().map(|p| {
        [NamedPolicy {
            name: "session",
            policy: p,
        }]
    });
    let mut evaluated = Vec::with_capacity(checks.len());
    for (action, resource) in checks {
        let req = policy::Request {
            action: &action,
            resource: &resource,
            context: &ctx,
        };
        let decision = policy::evaluate_bounded(
            &identity,
            boundary.as_deref(),
            session_named.as_ref().map(|s| &s[..]),
            &req,
        );
        evaluated.push(Evaluated {
            action,
            resource,
            decision,
        });
    }
    let decision = evaluated
        .iter()
        .find(|e| !e.decision.allowed)
        .or_else(|| evaluated.first())
        .map(|e| e.decision.clone())
        .unwrap_or(Decision {
            allowed: false,
            reason: Reason::NoIdentityAllow,
        });
    Ok(Simulation {
        operation,
        checks: evaluated,
        decision,
        assumed,
    })
}

/// Lint findings for every policy that applies to the user (and the
/// session policy), labelled with the policy they belong to. Without a
/// user: every policy of every identity, each once.
pub fn lint(
    dir: &Directory,
    name: Option<&str>,
    session_policy: Option<&str>,
) -> Result<Vec<(String, Lint)>, SimulateError> {
    let policies: Vec<NamedPolicy<'_>> = match name {
        Some(name) => dir.user_policies(user(dir, name)?),
        None => {
            let mut all: Vec<NamedPolicy<'_>> = Vec::new();
            fn inline(p: &crate::identity::InlinePolicy) -> NamedPolicy<'_> {
                NamedPolicy {
                    name: &p.label,
                    policy: &p.policy,
                }
            }
            for u in dir.users() {
                all.extend(u.policies.iter().map(inline));
            }
            for g in dir.groups() {
                all.extend(g.policies.iter().map(inline));
            }
            for r in dir.roles() {
                all.extend(r.policies.iter().map(inline));
            }
            all.extend(dir.managed_policies().map(|m| NamedPolicy {
                name: &m.arn,
                policy: &m.policy,
            }));
            all.sort_by_key(|p| p.name);
            all
        }
    };
    let mut out: Vec<(String, Lint)> = policies
        .into_iter()
        .flat_map(|p| {
            p.policy
                .lint()
                .into_iter()
                .map(move |l| (p.name.to_string(), l))
        })
        .collect();
    if let Some(doc) = session_policy {
        let p = Policy::parse(doc, PolicyKind::Session)
            .map_err(|e| SimulateError::SessionPolicy(Box::new(e)))?;
        out.extend(p.lint().into_iter().map(|l| ("session".to_string(), l)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn dir() -> Directory {
        let text = r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "ROOTKEYFORTESTS00001"
secret_access_key = "root-secret-for-tests-000000000000000000"
[upstream]
endpoint = "embedded"
[[users]]
name = "alice"
groups = ["g"]
[[groups]]
name = "g"
policies = [{ name = "p", document = '''{"Version": "2012-10-17", "Statement": [
  {"Sid": "Own", "Effect": "Allow", "Action": "s3:*Object", "Resource": "arn:aws:s3:::bkt/${aws:username}/*"},
  {"Sid": "NoAcl", "Effect": "Deny", "Action": "s3:PutObjectAcl", "Resource": "*"},
  {"Sid": "Tls", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bkt",
   "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}''' }]
"#;
        let c = Config::from_toml(
            text,
            std::path::Path::new("t.toml"),
            std::path::Path::new("."),
        )
        .unwrap();
        Directory::from_config(&c).unwrap()
    }

    fn action(a: &str, r: &str) -> Question {
        Question::Action {
            action: a.into(),
            resource: r.into(),
        }
    }

    #[test]
    fn explains_allow_and_deny() {
        let d = dir();
        let s = simulate(
            &d,
            "alice",
            None,
            &action("s3:GetObject", "arn:aws:s3:::bkt/alice/x"),
            &[],
        )
        .unwrap();
        assert!(s.decision.allowed);
        assert!(
            s.to_string()
                .starts_with("Allow: allowed by group/g/p statement Own"),
            "{s}"
        );
        let s = simulate(
            &d,
            "alice",
            None,
            &action("s3:GetObject", "arn:aws:s3:::bkt/bob/x"),
            &[],
        )
        .unwrap();
        assert!(!s.decision.allowed);
    }

    #[test]
    fn classifies_request_lines_with_their_extra_checks() {
        let d = dir();
        let q = Question::Request {
            line: "PUT /bkt/alice/x".into(),
            headers: vec![("x-amz-acl".into(), "public-read".into())],
        };
        let s = simulate(&d, "alice", None, &q, &[]).unwrap();
        assert_eq!(s.operation, Some("PutObject"));
        assert_eq!(s.checks.len(), 2);
        assert!(!s.decision.allowed);
        assert!(s.decision.reason.to_string().contains("NoAcl"));
    }

    #[test]
    fn context_and_session_policies_apply() {
        let d = dir();
        let list = action("s3:ListBucket", "arn:aws:s3:::bkt");
        assert!(
            !simulate(&d, "alice", None, &list, &[])
                .unwrap()
                .decision
                .allowed
        );
        let tls = parse_context(&["aws:SecureTransport=true".into()]).unwrap();
        assert!(
            simulate(&d, "alice", None, &list, &tls)
                .unwrap()
                .decision
                .allowed
        );
        let narrow =
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}"#;
        let get = action("s3:GetObject", "arn:aws:s3:::bkt/alice/x");
        let put = action("s3:PutObject", "arn:aws:s3:::bkt/alice/x");
        assert!(
            simulate(&d, "alice", Some(narrow), &get, &[])
                .unwrap()
                .decision
                .allowed
        );
        let s = simulate(&d, "alice", Some(narrow), &put, &[]).unwrap();
        assert_eq!(s.decision.reason, Reason::NoSessionAllow);
    }

    #[test]
    fn errors_name_the_problem() {
        let d = dir();
        assert!(matches!(
            simulate(
                &d,
                "nobody",
                None,
                &action("s3:GetObject", "arn:aws:s3:::b/k"),
                &[]
            ),
            Err(SimulateError::NoSuchUser(_))
        ));
        let bad = Question::Request {
            line: "GET /bkt/k?frobnicate".into(),
            headers: vec![],
        };
        assert!(matches!(
            simulate(&d, "alice", None, &bad, &[]),
            Err(SimulateError::Unclassifiable(_))
        ));
        assert!(parse_context(&["novalue".into()]).is_err());
    }

    #[test]
    fn a_key_not_given_is_absent_and_a_request_line_says_what_it_assumed() {
        let d = dir();
        let list = action("s3:ListBucket", "arn:aws:s3:::bkt");
        // Statement Tls needs aws:SecureTransport true: absent, it does not allow.
        let s = simulate(&d, "alice", None, &list, &[]).unwrap();
        assert!(!s.decision.allowed);
        assert!(s.assumed.is_empty());
        let given = [("aws:SecureTransport".to_string(), "true".to_string())];
        assert!(
            simulate(&d, "alice", None, &list, &given)
                .unwrap()
                .decision
                .allowed
        );
        // A request line implies plain HTTP, and says so.
        let line = Question::Request {
            line: "GET /bkt?list-type=2".into(),
            headers: vec![],
        };
        let s = simulate(&d, "alice", None, &line, &[]).unwrap();
        assert!(!s.decision.allowed);
        assert!(
            s.assumed
                .iter()
                .any(|(k, v)| k == "aws:SecureTransport" && v == "false"),
            "{:?}",
            s.assumed
        );
        assert!(s.to_string().contains("assumed aws:SecureTransport=false"));
        // What the caller gives is not assumed.
        let s = simulate(&d, "alice", None, &line, &given).unwrap();
        assert!(s.decision.allowed, "{s}");
        assert!(!s.assumed.iter().any(|(k, _)| k == "aws:SecureTransport"));
    }

    #[test]
    fn a_resource_that_is_not_an_arn_is_an_error_not_a_deny() {
        let d = dir();
        for bad in ["bkt/alice/x", "*", "arn:aws:s3", "s3:::bkt/x"] {
            assert!(
                matches!(
                    simulate(&d, "alice", None, &action("s3:GetObject", bad), &[]),
                    Err(SimulateError::BadResource(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn lint_without_a_user_covers_every_identity() {
        // Two users in two groups, each group's policy with an unknown key.
        let text = r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "ROOTKEYFORTESTS00001"
secret_access_key = "root-secret-for-tests-000000000000000000"
[upstream]
endpoint = "embedded"
[[users]]
name = "ann"
groups = ["a"]
[[users]]
name = "bo"
groups = ["b"]
[[groups]]
name = "a"
policies = [{ name = "pa", document = '''{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": {"s3:nosuchkey": "x"}}}]}''' }]
[[groups]]
name = "b"
policies = [{ name = "pb", document = '''{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": {"aws:nosuchkey": "x"}}}]}''' }]
"#;
        let c = Config::from_toml(
            text,
            std::path::Path::new("t.toml"),
            std::path::Path::new("."),
        )
        .unwrap();
        let d = Directory::from_config(&c).unwrap();
        let names = |l: Vec<(String, Lint)>| {
            let mut n: Vec<String> = l.into_iter().map(|(p, _)| p).collect();
            n.dedup();
            n
        };
        assert_eq!(names(lint(&d, Some("ann"), None).unwrap()), ["group/a/pa"]);
        assert_eq!(
            names(lint(&d, None, None).unwrap()),
            ["group/a/pa", "group/b/pb"]
        );
    }
}
