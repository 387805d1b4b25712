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

/// The condition keys the proxy derives from the principal and the moment,
/// then the caller's own (which win).
fn base_context(dir: &Directory, u: &User, given: &[(String, String)]) -> Context {
    let mut ctx = Context::new();
    let now = Utc::now();
    ctx.set("aws:username", u.name.as_str());
    ctx.set("aws:userid", u.user_id.as_str());
    ctx.set("aws:PrincipalType", "User");
    ctx.set("aws:PrincipalArn", u.arn.as_str());
    ctx.set("aws:PrincipalAccount", dir.account_id.as_str());
    ctx.set(
        "aws:CurrentTime",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    ctx.set("aws:EpochTime", now.timestamp().to_string());
    ctx.set("aws:SecureTransport", "false");
    ctx.set("s3:authType", "REST-HEADER");
    ctx.set("s3:signatureversion", "AWS4-HMAC-SHA256");
    ctx.set("s3:ResourceAccount", dir.account_id.as_str());
    apply_given(&mut ctx, given);
    ctx
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
    })
}

/// Lint findings for every policy that applies to the user (and the
/// session policy), labelled with the policy they belong to.
pub fn lint(
    dir: &Directory,
    name: &str,
    session_policy: Option<&str>,
) -> Result<Vec<(String, Lint)>, SimulateError> {
    let u = user(dir, name)?;
    let mut out: Vec<(String, Lint)> = dir
        .user_policies(u)
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
            simulate(&d, "nobody", None, &action("s3:GetObject", "*"), &[]),
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
}
