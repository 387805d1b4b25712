//! Validation of a policy document and its compilation into a [`Policy`].
//!
//! Follows the IAM policy grammar and element pages: `Version` is `2012-10-17` or `2008-10-17`
//! or absent (only `2012-10-17` enables policy variables); `Id` only in resource policies;
//! `Sid` of letters and digits, unique within the policy; `Effect` exactly `Allow` or `Deny`;
//! exactly one of `Action`/`NotAction`; in identity and session policies exactly one of
//! `Resource`/`NotResource` and no `Principal`/`NotPrincipal`; in resource policies (role trust
//! policies) exactly one of `Principal`/`NotPrincipal`. Actions are `*` or `service:name`;
//! resources are `*` or a six-part ARN whose service part is literal. Everything is compiled
//! here, once, so that evaluation never parses text again.

use std::collections::HashSet;
use std::sync::Arc;

use super::condition::{Condition, compile_block};
use super::context::Reads;
use super::error::PolicyError;
use super::json::{OneOrMany, RawPolicy, RawStatement};
use super::matching::{
    ActionPattern, ActionSpec, ArnPattern, Glob, ResourcePattern, ResourceSpec, split_arn_parts,
};
use super::principal::PrincipalSpec;
use super::variables::{Syntax, Template};

/// Which kind of policy a document is; decides which elements it may and must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A user's or group's inline policy, or a managed policy.
    Identity,
    /// A session policy passed to GetFederationToken / AssumeRole.
    Session,
    /// A resource policy; s3warden uses it for role trust policies (AssumeRole).
    Resource,
}

/// The policy language version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V2012,
    V2008,
    Absent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// A compiled statement.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    /// The Sid, or `#<index>` when there is none.
    pub label: String,
    pub effect: Effect,
    pub principal: Option<PrincipalSpec>,
    pub actions: ActionSpec,
    /// `None` only in resource policies without Resource (trust policies): any resource.
    pub resources: Option<ResourceSpec>,
    pub conditions: Vec<Condition>,
}

/// A parsed and validated policy document. Cheap to clone (shared), `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Policy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub kind: PolicyKind,
    pub version: Version,
    pub statements: Vec<Statement>,
    /// Some condition reads `s3:ExistingObjectTag/*`: deciding needs the
    /// object's stored tags.
    pub existing_object_tags: bool,
    /// The optional request-wide keys this policy reads.
    pub reads: Reads,
}

impl Policy {
    /// Parses and validates a JSON policy document of the given kind.
    pub fn parse(doc: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let raw: RawPolicy =
            serde_json::from_str(doc).map_err(|e| PolicyError::Json(e.to_string()))?;
        let version = match raw.version.as_deref() {
            Some("2012-10-17") => Version::V2012,
            Some("2008-10-17") => Version::V2008,
            None => Version::Absent,
            Some(other) => return Err(PolicyError::UnsupportedVersion(other.to_owned())),
        };
        if raw.id.is_some() && kind != PolicyKind::Resource {
            return Err(PolicyError::IdNotAllowed);
        }
        let mut sids = HashSet::new();
        let mut statements = Vec::with_capacity(raw.statement.0.len());
        for (index, rs) in raw.statement.0.into_iter().enumerate() {
            let statement = compile_statement(index, rs, kind, version == Version::V2012)?;
            // Labels starting with '#' are indexes, not Sids (a Sid cannot hold '#').
            if !statement.label.starts_with('#') && !sids.insert(statement.label.clone()) {
                return Err(PolicyError::DuplicateSid(statement.label));
            }
            statements.push(statement);
        }
        let existing_object_tags = statements.iter().any(|s| {
            s.conditions
                .iter()
                .any(|c| c.key_lower.starts_with("s3:existingobjecttag/"))
        });
        let reads = reads_of(&statements);
        Ok(Policy {
            inner: Arc::new(Inner {
                kind,
                version,
                statements,
                existing_object_tags,
                reads,
            }),
        })
    }

    /// Whether deciding with this policy needs the object's stored tags.
    pub fn uses_existing_object_tags(&self) -> bool {
        self.inner.existing_object_tags
    }

    /// The optional request-wide condition keys deciding with this policy
    /// reads: those its conditions test and its variables name.
    pub fn reads(&self) -> Reads {
        self.inner.reads
    }

    pub fn kind(&self) -> PolicyKind {
        self.inner.kind
    }

    /// The `Version` element, if present.
    pub fn version(&self) -> Option<&'static str> {
        match self.inner.version {
            Version::V2012 => Some("2012-10-17"),
            Version::V2008 => Some("2008-10-17"),
            Version::Absent => None,
        }
    }

    /// How statements are referred to in decisions: Sid, or `#<index>`.
    pub fn statement_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.statements.iter().map(|s| s.label.as_str())
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// Every key the statements read from a request's context: the key of each
/// condition, and each variable in a condition's values or a resource.
/// (Actions and principals hold no variables.)
fn reads_of(statements: &[Statement]) -> Reads {
    let mut reads = Reads::NONE;
    for s in statements {
        for c in &s.conditions {
            reads.note(&c.key_lower);
            for t in c.templates() {
                t.variables().for_each(|v| reads.note(&v.key));
            }
        }
        let patterns = s.resources.iter().flat_map(|r| &r.patterns);
        for p in patterns {
            if let ResourcePattern::Arn(arn) = p {
                for t in arn.parts.iter() {
                    t.variables().for_each(|v| reads.note(&v.key));
                }
            }
        }
    }
    reads
}

fn compile_statement(
    index: usize,
    raw: RawStatement,
    kind: PolicyKind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    let label = match raw.sid.as_deref() {
        None | Some("") => format!("#{index}"),
        Some(sid) if sid.bytes().all(|b| b.is_ascii_alphanumeric()) => sid.to_owned(),
        Some(sid) => {
            return Err(PolicyError::InvalidSid {
                statement: format!("#{index}"),
                sid: sid.to_owned(),
            });
        }
    };
    let statement = label.as_str();
    let effect = match raw.effect.as_deref() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::InvalidEffect {
                statement: label,
                effect: other.to_owned(),
            });
        }
        None => return Err(missing(statement, "Effect")),
    };

    let principal = match (raw.principal, raw.not_principal) {
        (Some(_), Some(_)) => return Err(conflict(statement, "Principal", "NotPrincipal")),
        (p, np) if kind != PolicyKind::Resource => {
            if p.is_some() || np.is_some() {
                return Err(PolicyError::ElementNotAllowed {
                    statement: label,
                    element: if p.is_some() {
                        "Principal"
                    } else {
                        "NotPrincipal"
                    },
                });
            }
            None
        }
        (Some(p), None) => Some(PrincipalSpec::compile(statement, p, false)?),
        (None, Some(np)) => Some(PrincipalSpec::compile(statement, np, true)?),
        (None, None) => return Err(missing(statement, "Principal or NotPrincipal")),
    };

    let actions = match (raw.action, raw.not_action) {
        (Some(_), Some(_)) => return Err(conflict(statement, "Action", "NotAction")),
        (Some(a), None) => compile_actions(statement, a, false)?,
        (None, Some(na)) => compile_actions(statement, na, true)?,
        (None, None) => return Err(missing(statement, "Action or NotAction")),
    };

    let resources = match (raw.resource, raw.not_resource) {
        (Some(_), Some(_)) => return Err(conflict(statement, "Resource", "NotResource")),
        (Some(r), None) => Some(compile_resources(statement, r, false, variables)?),
        (None, Some(nr)) => Some(compile_resources(statement, nr, true, variables)?),
        (None, None) if kind == PolicyKind::Resource => None,
        (None, None) => return Err(missing(statement, "Resource or NotResource")),
    };

    let conditions = match raw.condition {
        Some(block) => compile_block(statement, block, variables)?,
        None => Vec::new(),
    };

    Ok(Statement {
        label,
        effect,
        principal,
        actions,
        resources,
        conditions,
    })
}

fn missing(statement: &str, element: &'static str) -> PolicyError {
    PolicyError::MissingElement {
        statement: statement.to_owned(),
        element,
    }
}

fn conflict(statement: &str, first: &'static str, second: &'static str) -> PolicyError {
    PolicyError::ConflictingElements {
        statement: statement.to_owned(),
        first,
        second,
    }
}

/// AWS refuses an element given as an empty array.
fn non_empty<T>(
    statement: &str,
    element: &'static str,
    raw: OneOrMany<T>,
) -> Result<Vec<T>, PolicyError> {
    if raw.0.is_empty() {
        return Err(PolicyError::EmptyElement {
            statement: statement.to_owned(),
            element,
        });
    }
    Ok(raw.0)
}

fn compile_actions(
    statement: &str,
    raw: OneOrMany<String>,
    negated: bool,
) -> Result<ActionSpec, PolicyError> {
    let element = if negated { "NotAction" } else { "Action" };
    let actions = non_empty(statement, element, raw)?;
    let mut patterns = Vec::with_capacity(actions.len());
    for action in actions {
        if let Err(reason) = check_action(&action) {
            return Err(PolicyError::InvalidAction {
                statement: statement.to_owned(),
                action,
                reason,
            });
        }
        patterns.push(ActionPattern {
            glob: Glob::new(&action.to_ascii_lowercase()),
            source: action.into(),
        });
    }
    Ok(ActionSpec { negated, patterns })
}

/// `*`, or `service:name` with a literal service prefix and a name of letters, digits and
/// wildcards (AWS refuses wildcards in the service prefix).
fn check_action(action: &str) -> Result<(), &'static str> {
    if action == "*" {
        return Ok(());
    }
    let (service, name) = action
        .split_once(':')
        .ok_or("expected \"service:action\" or \"*\"")?;
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("the service prefix must be letters, digits or \"-\", without wildcards");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'?' | b'-' | b'_' | b'.'))
    {
        return Err("the action name must be letters and digits, with optional \"*\" and \"?\"");
    }
    Ok(())
}

fn compile_resources(
    statement: &str,
    raw: OneOrMany<String>,
    negated: bool,
    variables: bool,
) -> Result<ResourceSpec, PolicyError> {
    let element = if negated { "NotResource" } else { "Resource" };
    let patterns = non_empty(statement, element, raw)?
        .iter()
        .map(|resource| compile_resource(statement, resource, variables))
        .collect::<Result<_, _>>()?;
    Ok(ResourceSpec { negated, patterns })
}

fn compile_resource(
    statement: &str,
    resource: &str,
    variables: bool,
) -> Result<ResourcePattern, PolicyError> {
    if resource == "*" {
        return Ok(ResourcePattern::Any);
    }
    let invalid = |reason: &'static str| PolicyError::InvalidResource {
        statement: statement.to_owned(),
        resource: resource.to_owned(),
        reason,
    };
    let parts = split_arn_parts(resource, variables).ok_or_else(|| {
        invalid(
            "expected \"*\" or an arn of the form arn:partition:service:region:account:resource",
        )
    })?;
    if parts[0] != "arn" {
        return Err(invalid("an arn must start with \"arn:\""));
    }
    if parts[2].is_empty() || parts[2].contains(['*', '?']) {
        return Err(invalid(
            "the service part of an arn must be given, without wildcards",
        ));
    }
    if parts[5].is_empty() {
        return Err(invalid("the resource part of an arn must not be empty"));
    }
    let syntax = Syntax {
        variables,
        wildcards: true,
    };
    let mut templates = Vec::with_capacity(6);
    for (i, part) in parts.iter().enumerate() {
        let template =
            Template::parse(part, syntax).map_err(|reason| PolicyError::InvalidVariable {
                statement: statement.to_owned(),
                text: resource.to_owned(),
                reason,
            })?;
        if i < 5 && template.has_variables() {
            return Err(invalid(
                "policy variables are allowed only in the resource part of an arn (after the fifth colon)",
            ));
        }
        templates.push(template);
    }
    let parts: Box<[Template; 6]> = templates
        .into_boxed_slice()
        .try_into()
        .map_err(|_| invalid("expected six arn parts"))?;
    Ok(ResourcePattern::Arn(ArnPattern {
        source: resource.into(),
        parts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(doc: &str, kind: PolicyKind) -> String {
        Policy::parse(doc, kind).unwrap_err().to_string()
    }

    fn stmt(body: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": {body}}}"#)
    }

    #[test]
    fn labels_are_sid_or_index() {
        let p = Policy::parse(
            &stmt(
                r#"[{"Sid": "A1", "Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "*", "Resource": "*"},
                    {"Sid": "", "Effect": "Deny", "Action": "*", "Resource": "*"}]"#,
            ),
            PolicyKind::Identity,
        )
        .unwrap();
        assert_eq!(p.statement_ids().collect::<Vec<_>>(), ["A1", "#1", "#2"]);
        assert_eq!(p.version(), Some("2012-10-17"));
        assert_eq!(p.kind(), PolicyKind::Identity);
    }

    #[test]
    fn structural_errors_name_the_fault() {
        let id = PolicyKind::Identity;
        assert!(err("{", id).starts_with("invalid policy document"));
        assert!(err(r#"{"Version": "2012-10-17"}"#, id).contains("missing field `Statement`"));
        assert!(
            err(r#"{"Version": "2014-01-01", "Statement": []}"#, id).contains("\"2014-01-01\"")
        );
        assert!(err(r#"{"Id": "x", "Statement": []}"#, id).contains("Id element"));
        assert!(
            err(
                &stmt(r#"{"Sid": "a b", "Effect": "Allow", "Action": "*", "Resource": "*"}"#),
                id
            )
            .contains("invalid sid \"a b\"")
        );
        assert!(err(&stmt(r#"[{"Sid": "X", "Effect": "Allow", "Action": "*", "Resource": "*"}, {"Sid": "X", "Effect": "Allow", "Action": "*", "Resource": "*"}]"#), id)
            .contains("duplicate sid \"X\""));
        assert!(
            err(
                &stmt(r#"{"Effect": "allow", "Action": "*", "Resource": "*"}"#),
                id
            )
            .contains("invalid effect \"allow\"")
        );
        assert!(
            err(&stmt(r#"{"Action": "*", "Resource": "*"}"#), id).contains("Effect is required")
        );
        assert!(
            err(&stmt(r#"{"Effect": "Allow", "Resource": "*"}"#), id)
                .contains("Action or NotAction is required")
        );
        assert!(
            err(&stmt(r#"{"Effect": "Allow", "Action": "*"}"#), id)
                .contains("Resource or NotResource is required")
        );
        assert!(
            err(
                &stmt(
                    r#"{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}"#
                ),
                id
            )
            .contains("Action and NotAction cannot both be present")
        );
        assert!(
            err(
                &stmt(r#"{"Effect": "Allow", "Action": [], "Resource": "*"}"#),
                id
            )
            .contains("Action must not be an empty list")
        );
        assert!(
            err(
                &stmt(r#"{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}"#),
                id
            )
            .contains("Principal is not allowed")
        );
        assert!(
            err(
                &stmt(r#"{"Effect": "Allow", "Action": "sts:AssumeRole"}"#),
                PolicyKind::Resource
            )
            .contains("Principal or NotPrincipal is required")
        );
    }

    #[test]
    fn actions_are_validated() {
        let id = PolicyKind::Identity;
        for bad in [
            "s3GetObject",
            "s3*:Get",
            "*:GetObject",
            "s3:",
            ":x",
            "s3:Get Object",
            "s3:Get:Object",
        ] {
            let doc = stmt(&format!(
                r#"{{"Effect": "Allow", "Action": "{bad}", "Resource": "*"}}"#
            ));
            assert!(
                err(&doc, id).contains(&format!("invalid action \"{bad}\"")),
                "{bad}"
            );
        }
        for good in [
            "*",
            "s3:*",
            "s3:Get*",
            "s3:?etObject",
            "iam:Tag*",
            "s3-object-lambda:Get*",
        ] {
            let doc = stmt(&format!(
                r#"{{"Effect": "Allow", "Action": "{good}", "Resource": "*"}}"#
            ));
            assert!(Policy::parse(&doc, id).is_ok(), "{good}");
        }
    }

    #[test]
    fn resources_are_validated() {
        let id = PolicyKind::Identity;
        for bad in [
            "bucket/*",
            "arn:aws:s3:*",
            "arn:aws:*:::b",
            "arn:aws::::b",
            "arn:aws:s3:::",
            "ARN:aws:s3:::b",
            "arn:aws:s3:${aws:username}::b",
            "arn:aws:s3:::b/${aws:username",
        ] {
            let doc = stmt(&format!(
                r#"{{"Effect": "Allow", "Action": "*", "Resource": "{bad}"}}"#
            ));
            let e = err(&doc, id);
            assert!(e.contains(&format!("\"{bad}\"")), "{bad}: {e}");
        }
        for good in [
            "*",
            "arn:aws:s3:::*",
            "arn:*:s3:*:*:b/*",
            "arn:aws:s3:::b/${aws:username}/*",
            "arn:aws:s3:::b/k:with:colons",
        ] {
            let doc = stmt(&format!(
                r#"{{"Effect": "Allow", "Action": "*", "Resource": "{good}"}}"#
            ));
            assert!(Policy::parse(&doc, id).is_ok(), "{good}");
        }
    }

    #[test]
    fn policies_are_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Policy>();
        let p = Policy::parse(&stmt("[]"), PolicyKind::Session).unwrap();
        let q = p.clone();
        assert!(Arc::ptr_eq(&p.inner, &q.inner));
    }

    #[test]
    fn a_policy_reads_its_condition_keys_and_the_variables_it_names() {
        use crate::policy::Optional::{self, *};
        let reads = |body: &str| {
            Policy::parse(&stmt(body), PolicyKind::Identity)
                .unwrap()
                .reads()
        };
        let only = |r: Reads, keys: &[Optional]| {
            Optional::ALL.iter().all(|k| r.has(*k) == keys.contains(k))
        };
        let plain =
            r#"[{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]"#;
        assert_eq!(reads(plain), Reads::NONE);
        // A condition's key, in any case, under any operator.
        let cond = r#"[{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
            "NotIpAddress": {"AWS:SourceIP": "192.0.2.0/24"},
            "BoolIfExists": {"aws:SecureTransport": "false"},
            "Null": {"s3:x-amz-content-sha256": "true"}}}]"#;
        assert!(only(
            reads(cond),
            &[SourceIp, SecureTransport, ContentSha256]
        ));
        // A variable in Resource, in NotResource, in a condition's values
        // (strings, Bool, ARN), with or without a default.
        let vars = r#"[
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}/*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/${aws:userid}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*", "Condition": {
                "StringLike": {"s3:prefix": "${aws:PrincipalAccount, 'none'}/*"},
                "Bool": {"aws:MultiFactorAuthPresent": "${aws:securetransport}"},
                "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${s3:ResourceAccount}:user/*"}}}]"#;
        assert!(only(
            reads(vars),
            &[
                Username,
                UserId,
                PrincipalAccount,
                SecureTransport,
                MultiFactorAuthPresent,
                PrincipalArn,
                ResourceAccount
            ]
        ));
    }
}
