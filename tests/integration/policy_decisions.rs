//! Runs the policy decision table: every `tests/policy/*.toml` file, every `[[case]]` in it.
//!
//! A case gives policies (named ones from the file's `[policies]` table, or inline), a request
//! (action, resource, context) and the expected outcome: `allowed` plus `reason` (the
//! decision's explanation exactly as displayed), or `error` (a fragment of the parse error),
//! or `lint` (fragments that must each appear in some lint of the inline policy). With
//! `principal`, the inline policy is a resource (trust) policy evaluated for that principal.
//! Every failing case is reported by file and name; the test fails if any does.
//!
//! Case fields:
//! - `policy`: an inline document, named `p`; `statements`: the same, written as just the
//!   Statement value, wrapped in a `"Version": "2012-10-17"` document;
//! - `identity`: names from `[policies]`, evaluated after `p`;
//! - `session`: names from `[policies]` parsed as session policies (`[]` = a session without
//!   a session policy); `session_policy` / `session_statements`: an inline one, named `s`;
//!   no session field at all = no session constraint;
//! - `boundary`: names from `[policies]` forming a permissions boundary (`[]` = a boundary
//!   whose policy is gone); no boundary field = no boundary;
//! - `kind`: `identity` (default), `session` or `resource` for the inline policy;
//! - `context`: key = "value" (single-valued) or key = ["a", "b"] (multivalued).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use s3warden::policy::{
    Context, NamedPolicy, Optional, Policy, PolicyKind, PrincipalInfo, Reads, Request,
    ResourceDecision, evaluate_bounded, evaluate_resource_policy,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    policies: BTreeMap<String, String>,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    policy: Option<String>,
    statements: Option<String>,
    #[serde(default)]
    identity: Vec<String>,
    session: Option<Vec<String>>,
    boundary: Option<Vec<String>>,
    session_policy: Option<String>,
    session_statements: Option<String>,
    kind: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    #[serde(default)]
    context: BTreeMap<String, toml::Value>,
    principal: Option<Principal>,
    allowed: Option<bool>,
    reason: Option<String>,
    error: Option<String>,
    lint: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Principal {
    arn: String,
    account: String,
    /// A web identity: `arn` is its OpenID Connect provider's.
    #[serde(default)]
    federated: bool,
}

fn wrap(statements: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#)
}

fn kind_of(name: Option<&str>) -> Result<PolicyKind, String> {
    match name {
        None | Some("identity") => Ok(PolicyKind::Identity),
        Some("session") => Ok(PolicyKind::Session),
        Some("resource") => Ok(PolicyKind::Resource),
        Some(other) => Err(format!("unknown kind {other:?}")),
    }
}

fn inline(doc: &Option<String>, statements: &Option<String>) -> Option<String> {
    doc.clone().or_else(|| statements.as_deref().map(wrap))
}

fn context(case: &Case) -> Result<Context, String> {
    let mut ctx = Context::new();
    for (key, value) in &case.context {
        match value {
            toml::Value::String(s) => ctx.set(key, s.as_str()),
            toml::Value::Array(items) => {
                let values = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| format!("context {key}: array of strings expected"))?;
                ctx.set_multi(key, values);
            }
            other => {
                return Err(format!(
                    "context {key}: string or array expected, got {other}"
                ));
            }
        }
    }
    Ok(ctx)
}

/// Runs one case; `Err` describes how it failed.
fn run(file: &CaseFile, case: &Case) -> Result<(), String> {
    let kind = kind_of(case.kind.as_deref())?;
    let inline_doc = inline(&case.policy, &case.statements);

    if let Some(fragment) = &case.error {
        let doc = inline_doc.ok_or("an error case needs policy or statements")?;
        return match Policy::parse(&doc, kind) {
            Ok(_) => Err(format!("parsed, expected an error containing {fragment:?}")),
            Err(e) if e.to_string().contains(fragment.as_str()) => Ok(()),
            Err(e) => Err(format!(
                "error {:?} does not contain {fragment:?}",
                e.to_string()
            )),
        };
    }

    let parse = |doc: &str, kind| {
        Policy::parse(doc, kind).map_err(|e| format!("policy does not parse: {e}"))
    };
    let named = |name: &str, kind| -> Result<Policy, String> {
        let doc = file
            .policies
            .get(name)
            .ok_or_else(|| format!("no policy {name:?} in [policies]"))?;
        parse(doc, kind).map_err(|e| format!("{name}: {e}"))
    };

    let mut identity: Vec<(String, Policy)> = Vec::new();
    if let Some(doc) = &inline_doc {
        identity.push(("p".into(), parse(doc, kind)?));
    }
    for name in &case.identity {
        identity.push((name.clone(), named(name, PolicyKind::Identity)?));
    }
    let session_inline = inline(&case.session_policy, &case.session_statements);
    let session: Option<Vec<(String, Policy)>> =
        if case.session.is_some() || session_inline.is_some() {
            let mut list = Vec::new();
            if let Some(doc) = &session_inline {
                list.push(("s".into(), parse(doc, PolicyKind::Session)?));
            }
            for name in case.session.iter().flatten() {
                list.push((name.clone(), named(name, PolicyKind::Session)?));
            }
            Some(list)
        } else {
            None
        };

    let boundary: Option<Vec<(String, Policy)>> = case
        .boundary
        .as_ref()
        .map(|names| {
            names
                .iter()
                .map(|n| Ok((n.clone(), named(n, PolicyKind::Identity)?)))
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?;

    if let Some(expected) = &case.lint {
        let (_, policy) = identity
            .first()
            .ok_or("a lint case needs an inline policy")?;
        let lints: Vec<String> = policy.lint().iter().map(ToString::to_string).collect();
        if expected.is_empty() && !lints.is_empty() {
            return Err(format!("expected no lints, got {lints:?}"));
        }
        for fragment in expected {
            if !lints.iter().any(|l| l.contains(fragment.as_str())) {
                return Err(format!("no lint contains {fragment:?}; lints: {lints:?}"));
            }
        }
        if case.allowed.is_none() {
            return Ok(());
        }
    }

    let ctx = context(case)?;
    let req = Request {
        action: case.action.as_deref().ok_or("action missing")?,
        resource: case.resource.as_deref().ok_or("resource missing")?,
        context: &ctx,
    };
    let expected_allowed = case.allowed.ok_or("allowed missing")?;
    let expected_reason = case.reason.as_deref().ok_or("reason missing")?;

    if let Some(principal) = &case.principal {
        let (name, policy) = identity
            .first()
            .ok_or("a principal case needs an inline policy")?;
        let who = PrincipalInfo {
            arn: &principal.arn,
            account: &principal.account,
            federated: principal.federated,
        };
        let decision = evaluate_resource_policy(&NamedPolicy { name, policy }, &who, &req);
        let allowed = matches!(decision, ResourceDecision::Allowed(_));
        if allowed != expected_allowed || decision.to_string() != expected_reason {
            return Err(format!(
                "expected allowed={expected_allowed} {expected_reason:?}, got allowed={allowed} {:?}",
                decision.to_string()
            ));
        }
        return Ok(());
    }

    let identity: Vec<NamedPolicy<'_>> = identity
        .iter()
        .map(|(name, policy)| NamedPolicy { name, policy })
        .collect();
    let session: Option<Vec<NamedPolicy<'_>>> = session.as_ref().map(|list| {
        list.iter()
            .map(|(name, policy)| NamedPolicy { name, policy })
            .collect()
    });
    let boundary: Option<Vec<NamedPolicy<'_>>> = boundary.as_ref().map(|list| {
        list.iter()
            .map(|(name, policy)| NamedPolicy { name, policy })
            .collect()
    });
    let decision = evaluate_bounded(&identity, boundary.as_deref(), session.as_deref(), &req);
    if decision.allowed != expected_allowed || decision.reason.to_string() != expected_reason {
        return Err(format!(
            "expected allowed={expected_allowed} {expected_reason:?}, got allowed={} {:?}",
            decision.allowed,
            decision.reason.to_string()
        ));
    }
    // The proxy leaves out of a request's context the optional keys no
    // deciding policy reads: the decision must not change for it.
    let reads = identity
        .iter()
        .chain(boundary.iter().flatten())
        .chain(session.iter().flatten())
        .fold(Reads::NONE, |r, p| r.union(p.policy.reads()));
    let mut trimmed = ctx.clone();
    for key in Optional::ALL.iter().filter(|k| !reads.has(**k)) {
        trimmed.remove(key.key());
    }
    let req = Request {
        context: &trimmed,
        ..req
    };
    let without = evaluate_bounded(&identity, boundary.as_deref(), session.as_deref(), &req);
    if without.allowed != decision.allowed || without.reason != decision.reason {
        return Err(format!(
            "without the keys no policy reads ({} of {} kept), got allowed={} {:?}",
            trimmed.len(),
            ctx.len(),
            without.allowed,
            without.reason.to_string()
        ));
    }
    Ok(())
}

#[test]
fn policy_decision_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();

    let mut total = 0;
    let mut failures = Vec::new();
    for path in &files {
        let file_name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{file_name}: {e}"));
        let file: CaseFile = match toml::from_str(&text) {
            Ok(file) => file,
            Err(e) => {
                failures.push(format!("{file_name}: not a valid case file: {e}"));
                continue;
            }
        };
        let mut names = std::collections::HashSet::new();
        for case in &file.cases {
            total += 1;
            if !names.insert(case.name.as_str()) {
                failures.push(format!("{file_name}: {}: duplicate case name", case.name));
            }
            if let Err(why) = run(&file, case) {
                failures.push(format!("{file_name}: {}: {why}", case.name));
            }
        }
    }

    println!(
        "policy decision table: {total} cases in {} files",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} policy cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert!(
        total >= 300,
        "the decision table should keep at least 300 cases, has {total}"
    );
}
