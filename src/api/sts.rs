//! The STS query API (version 2011-06-15): GetFederationToken,
//! GetSessionToken, AssumeRole, AssumeRoleWithWebIdentity (in
//! `api::web_identity`) and GetCallerIdentity, issuing sealed session tokens
//! (see `identity::sessions`).
//!
//! Follows S3-SEMANTICS §3: federated-user names of 2–32 characters,
//! durations of 900–129600 s (default 43200, at most 3600 for root), session
//! policies of at most 2048 plaintext characters together with the managed
//! policy ARNs, AssumeRole checked against the role's trust policy. Temporary
//! credentials may call GetCallerIdentity; GetSessionToken and role sessions
//! may also call AssumeRole; nothing else.

use chrono::SecondsFormat;

use super::query::invalid;
use super::validate;
use super::xml::Xml;
use super::{ApiError, Call, Params};
use crate::identity::sessions::{new_access_key_id, new_secret};
use crate::identity::{PrincipalKind, SessionClaims, SessionKind};
use crate::policy::{
    NamedPolicy, PolicyKind, PrincipalInfo, Request, ResourceDecision, evaluate_resource_policy,
};

/// Plaintext budget of inline plus managed session policies.
const SESSION_POLICY_CHARS: usize = 2048;
const MAX_POLICY_ARNS: usize = 10;

pub async fn run(
    action: &str,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    match action {
        "GetCallerIdentity" => caller_identity(call),
        "GetFederationToken" => federation_token(p, call),
        "GetSessionToken" => session_token(p, call),
        "AssumeRole" => assume_role(p, call),
        "AssumeRoleWithWebIdentity" if call.principal.kind == PrincipalKind::Anonymous => {
            super::web_identity::assume_role_with_web_identity(p, call).await
        }
        other => Err(ApiError::InvalidAction(format!(
            "The action {other} is not valid for this web service."
        ))),
    }
}

/// Needs no permission, and an explicit Deny does not affect it (as in AWS).
fn caller_identity(call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    call.audit.actions.push("sts:GetCallerIdentity".into());
    let mut x = Xml::new();
    x.text("Arn", &call.principal.arn)
        .text("UserId", &call.principal.user_id)
        .text("Account", &call.principal.account);
    Ok(Some(x.finish()))
}

/// The session policy parameters, validated; returns the inline policy, the
/// ARNs and their plaintext size (see [`packed_size`]).
pub(crate) fn session_policy(
    p: &Params,
    call: &Call<'_>,
) -> Result<(Option<String>, Vec<String>, usize), ApiError> {
    let inline = match p.get("Policy") {
        Some(doc) => {
            validate::policy_document(doc, "policy", PolicyKind::Session)?;
            Some(doc.to_string())
        }
        None => None,
    };
    let arns = p.members("PolicyArns", Some("arn"))?;
    if arns.len() > MAX_POLICY_ARNS {
        return Err(invalid(
            None,
            "policyArns",
            &format!("Member must have length less than or equal to {MAX_POLICY_ARNS}"),
        ));
    }
    let prefix = format!("arn:aws:iam::{}:policy/", call.account());
    for a in &arns {
        validate::arn(a, "policyArns.member.arn")?;
        if !a.starts_with(&prefix) {
            return Err(invalid(
                Some(a),
                "policyArns.member.arn",
                "Member must be a managed policy ARN of this account",
            ));
        }
    }
    let plaintext = inline.as_deref().map_or(0, |d| d.chars().count())
        + arns.iter().map(String::len).sum::<usize>();
    packed_size(plaintext, &[])?;
    Ok((inline, arns, plaintext))
}

/// The packed size, in percent of what is allowed, of session policies of
/// `plaintext` characters together with session tags: AWS packs both into
/// one budget and refuses the call beyond it. s3warden counts characters of
/// the policies and of every tag key and value against 2048.
pub(crate) fn packed_size(plaintext: usize, tags: &[(String, String)]) -> Result<usize, ApiError> {
    let tag_chars: usize = tags
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    let percent = ((plaintext + tag_chars) * 100).div_ceil(SESSION_POLICY_CHARS);
    if percent > 100 {
        return Err(ApiError::PackedPolicyTooLarge(format!(
            "Packed policy consumes {percent}% of allotted space, please use smaller policy for this operation."
        )));
    }
    Ok(percent)
}

/// Refuses MFA, session tags and the rest for calls that take none of them.
pub(crate) fn refuse_mfa_and_tags(p: &Params) -> Result<(), ApiError> {
    refuse_unsupported(p, &[])
}

/// Refuses what s3warden does not offer: MFA, source identity, provided
/// contexts, and session tags where `tags` names none (GetSessionToken takes
/// none; GetFederationToken takes `Tags` but not `TransitiveTagKeys`).
fn refuse_unsupported(p: &Params, tags: &[&str]) -> Result<(), ApiError> {
    if p.get("SerialNumber").is_some() || p.get("TokenCode").is_some() {
        return Err(ApiError::AccessDenied(
            "MultiFactorAuthentication is not supported by s3warden.".into(),
        ));
    }
    let refused = [
        "Tags",
        "TransitiveTagKeys",
        "SourceIdentity",
        "ProvidedContexts",
    ]
    .into_iter()
    .filter(|n| !tags.contains(n));
    for name in refused {
        if p.get(name).is_some() || p.has_prefix(&format!("{name}.")) {
            return Err(ApiError::Validation(format!(
                "s3warden does not support the {name} parameter."
            )));
        }
    }
    Ok(())
}

fn long_term_caller(call: &Call<'_>, action: &str) -> Result<(), ApiError> {
    if call.is_session() {
        return Err(ApiError::AccessDenied(format!(
            "Cannot call {action} with session credentials"
        )));
    }
    Ok(())
}

/// Seals a session and renders its `<Credentials>`.
pub(crate) fn issue(call: &Call<'_>, claims: &SessionClaims) -> Result<String, ApiError> {
    let sessions = call.dir.sessions().ok_or_else(|| {
        ApiError::ServiceFailure("Temporary credentials are not configured.".into())
    })?;
    let token = sessions.seal(claims)?;
    let mut x = Xml::new();
    x.open("Credentials")
        .text("AccessKeyId", &claims.access_key_id)
        .text("SecretAccessKey", &claims.secret_access_key)
        .text("SessionToken", &token)
        .text(
            "Expiration",
            &claims
                .expires_at()
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        )
        .close("Credentials");
    Ok(x.finish())
}

/// The claims every session shares; the caller fills in the kind-specific parts.
pub(crate) fn base_claims(call: &Call<'_>, kind: SessionKind, duration: i64) -> SessionClaims {
    let principal = call.principal;
    let root = principal.kind == PrincipalKind::Root;
    SessionClaims {
        kind,
        access_key_id: new_access_key_id("ASIA"),
        secret_access_key: new_secret(),
        parent_is_root: root,
        parent_name: principal.user_name.clone().unwrap_or_default(),
        parent_id: principal.user_id.clone(),
        parent_key: principal.access_key_id.clone(),
        name: String::new(),
        issued_ms: call.now.timestamp_millis(),
        expires: call.now.timestamp() + duration,
        policy: None,
        policy_arns: Vec::new(),
        tags: Vec::new(),
        transitive: Vec::new(),
        web_identity: None,
    }
}

/// Session tags asked for with `Tags` (and, for AssumeRole, which of them
/// are `TransitiveTagKeys`) or carried by a web identity token, and the
/// context keys that authorize them.
pub(crate) struct SessionTags {
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transitive: Vec<String>,
}

impl SessionTags {
    fn parse(p: &Params) -> Result<SessionTags, ApiError> {
        let tags = crate::api::iam::tags::tags_param(p)?;
        let transitive = p.members("TransitiveTagKeys", None)?;
        for k in &transitive {
            if !tags.iter().any(|t| t.key.eq_ignore_ascii_case(k)) {
                return Err(ApiError::InvalidInput(format!(
                    "The transitive tag key {k} is not among the session tags."
                )));
            }
        }
        Ok(SessionTags {
            tags: tags.into_iter().map(|t| (t.key, t.value)).collect(),
            transitive,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// `aws:RequestTag/*`, `aws:TagKeys` and `sts:TransitiveTagKeys`.
    pub(crate) fn context(&self, base: &crate::policy::Context) -> crate::policy::Context {
        let mut ctx = base.clone();
        for (k, v) in &self.tags {
            ctx.set(&format!("aws:RequestTag/{k}"), v.as_str());
        }
        ctx.set_multi(
            "aws:TagKeys",
            self.tags.iter().map(|(k, _)| k.clone()).collect(),
        );
        if !self.transitive.is_empty() {
            ctx.set_multi("sts:TransitiveTagKeys", self.transitive.clone());
        }
        ctx
    }
}

fn federation_token(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    long_term_caller(call, "GetFederationToken")?;
    let name = validate::name(p.required("Name", "name")?, "name", 2, 32)?.to_string();
    let mut duration = validate::int(
        p,
        "DurationSeconds",
        "durationSeconds",
        900,
        129_600,
        43_200,
    )?;
    refuse_unsupported(p, &["Tags"])?;
    let (policy, arns, plaintext) = session_policy(p, call)?;
    let session_tags = SessionTags::parse(p)?;
    let packed = packed_size(plaintext, &session_tags.tags)?;
    let account = call.account().to_string();
    let arn = format!("arn:aws:sts::{account}:federated-user/{name}");
    let ctx = session_tags.context(call.context);
    call.authorize_with("sts:GetFederationToken", &arn, ctx.clone())?;
    if !session_tags.is_empty() {
        // Passing session tags takes its own permission.
        call.authorize_with("sts:TagSession", &arn, ctx)?;
    }
    if call.is_root() {
        // AWS silently shortens root's federation sessions to one hour.
        duration = duration.min(3600);
    }
    let mut claims = base_claims(call, SessionKind::Federated, duration);
    claims.name = name.clone();
    claims.policy = policy;
    claims.policy_arns = arns;
    claims.tags = session_tags.tags;
    let mut out = issue(call, &claims)?;
    let mut rest = Xml::new();
    rest.open("FederatedUser")
        .text("Arn", &arn)
        .text("FederatedUserId", &format!("{account}:{name}"))
        .close("FederatedUser")
        .text("PackedPolicySize", &packed.to_string());
    out.push_str(&rest.finish());
    Ok(Some(out))
}

fn session_token(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    long_term_caller(call, "GetSessionToken")?;
    let mut duration = validate::int(
        p,
        "DurationSeconds",
        "durationSeconds",
        900,
        129_600,
        43_200,
    )?;
    refuse_unsupported(p, &[])?;
    // No permission is needed: GetSessionToken authenticates, it grants nothing new.
    call.audit.actions.push("sts:GetSessionToken".into());
    if call.is_root() {
        duration = duration.min(3600);
    }
    let claims = base_claims(call, SessionKind::User, duration);
    Ok(Some(issue(call, &claims)?))
}

/// `RoleArn`, `RoleSessionName` and `DurationSeconds` of the AssumeRole calls.
pub(crate) fn role_params(p: &Params) -> Result<(String, String, i64), ApiError> {
    let role_arn = validate::arn(p.required("RoleArn", "roleArn")?, "roleArn")?.to_string();
    let session_name = validate::name(
        p.required("RoleSessionName", "roleSessionName")?,
        "roleSessionName",
        2,
        64,
    )?
    .to_string();
    let duration = validate::int(p, "DurationSeconds", "durationSeconds", 900, 43_200, 3600)?;
    Ok((role_arn, session_name, duration))
}

/// A session of `role` named `session_name`, after its trust policy allowed
/// it: the claims to seal (kind-specific fields still to fill by the caller
/// when needed), or a refusal of a duration beyond the role's maximum.
pub(crate) fn role_session(
    call: &Call<'_>,
    role: &crate::identity::Role,
    session_name: &str,
    duration: i64,
    policy: (Option<String>, Vec<String>),
) -> Result<SessionClaims, ApiError> {
    if duration > i64::from(role.max_session_duration) {
        return Err(ApiError::Validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    let mut claims = base_claims(call, SessionKind::Role, duration);
    claims.parent_is_root = false;
    claims.parent_name = role.name.clone();
    claims.parent_id = role.role_id.clone();
    // A role session lives on its own: it is not tied to the caller's key.
    claims.parent_key = None;
    claims.name = session_name.to_string();
    (claims.policy, claims.policy_arns) = policy;
    Ok(claims)
}

/// The role an ARN names, if it exists with exactly that ARN (path included).
pub(crate) fn role_by_arn<'a>(
    dir: &'a crate::identity::Directory,
    arn: &str,
) -> Option<&'a crate::identity::Role> {
    arn.rsplit('/')
        .next()
        .and_then(|name| dir.role(name))
        .filter(|r| r.arn == arn)
}

/// `<AssumedRoleUser>` of a role session.
pub(crate) fn assumed_role_xml(
    x: &mut Xml,
    account: &str,
    role: &crate::identity::Role,
    session_name: &str,
) {
    x.open("AssumedRoleUser")
        .text("AssumedRoleId", &format!("{}:{session_name}", role.role_id))
        .text(
            "Arn",
            &format!(
                "arn:aws:sts::{account}:assumed-role/{}/{session_name}",
                role.name
            ),
        )
        .close("AssumedRoleUser");
}

fn assume_role(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let (role_arn, session_name, duration) = role_params(p)?;
    if let Some(id) = p.get("ExternalId")
        && !(2..=1224).contains(&id.chars().count())
    {
        return Err(invalid(
            Some(id),
            "externalId",
            "Member must have length between 2 and 1224",
        ));
    }
    refuse_unsupported(p, &["Tags", "TransitiveTagKeys"])?;
    let (policy, arns, plaintext) = session_policy(p, call)?;
    let mut session_tags = SessionTags::parse(p)?;
    // A role session passes its transitive tags on; they cannot be replaced.
    if let Some(s) = &call.principal.session {
        let c = &s.opened.claims;
        for key in &c.transitive {
            if session_tags
                .tags
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(key))
            {
                return Err(ApiError::InvalidInput(format!(
                    "The session tag {key} is transitive from the calling session and cannot be set again."
                )));
            }
            if let Some(t) = c.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                session_tags.tags.push(t.clone());
                session_tags.transitive.push(t.0.clone());
            }
        }
    }
    let packed = packed_size(plaintext, &session_tags.tags)?;
    let principal = call.principal;
    match (principal.kind, principal.session.is_some()) {
        (PrincipalKind::Root, _) => {
            return Err(ApiError::AccessDenied(
                "Roles may not be assumed by root accounts.".into(),
            ));
        }
        (PrincipalKind::FederatedUser, _) => {
            return Err(ApiError::AccessDenied(
                "Federated users cannot call AssumeRole.".into(),
            ));
        }
        (PrincipalKind::AssumedRole, _) if duration > 3600 => {
            return Err(ApiError::Validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
            ));
        }
        _ => {}
    }
    let dir = call.dir.clone();
    let denied = || {
        ApiError::AccessDenied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            principal.arn
        ))
    };
    let mut ctx = session_tags.context(call.context);
    ctx.set("sts:RoleSessionName", session_name.as_str());
    if let Some(id) = p.get("ExternalId") {
        ctx.set("sts:ExternalId", id);
    }
    // An unknown role is answered like a refused one: existence is not disclosed.
    let Some(role) = role_by_arn(&dir, &role_arn) else {
        call.audit.actions.push("sts:AssumeRole".into());
        return Err(denied());
    };
    let req = Request {
        action: "sts:AssumeRole",
        resource: &role_arn,
        context: &ctx,
    };
    let trust = NamedPolicy {
        name: "trust",
        policy: &role.trust,
    };
    let account = dir.account_id.clone();
    // Named directly (its own ARN), the caller needs nothing more; allowed
    // only through its account, it also needs an identity-policy Allow.
    let direct = evaluate_resource_policy(
        &trust,
        &PrincipalInfo {
            arn: principal.principal_arn(),
            account: "",
            federated: false,
        },
        &req,
    );
    let via_account = evaluate_resource_policy(
        &trust,
        &PrincipalInfo {
            arn: principal.principal_arn(),
            account: &account,
            federated: false,
        },
        &req,
    );
    let identity = call.authorize_with("sts:AssumeRole", &role_arn, ctx.clone());
    let allowed = match (&direct, &via_account) {
        (ResourceDecision::ExplicitDeny(_), _) | (_, ResourceDecision::ExplicitDeny(_)) => false,
        (ResourceDecision::Allowed(_), _) => match &identity {
            Ok(()) => true,
            // An identity-policy Deny still wins; a mere absence of Allow does not.
            Err(_) => !matches!(
                call.audit.decision.as_ref().map(|d| &d.reason),
                Some(crate::policy::Reason::ExplicitDeny { .. })
            ),
        },
        (_, ResourceDecision::Allowed(_)) => identity.is_ok(),
        _ => false,
    };
    if !allowed {
        // The audit must show the refusal, also when only the trust policy refused.
        let trust_deny = match (&direct, &via_account) {
            (ResourceDecision::ExplicitDeny(by), _) | (_, ResourceDecision::ExplicitDeny(by)) => {
                Some(by.clone())
            }
            _ => None,
        };
        let reason = match trust_deny {
            Some(by) => crate::policy::Reason::ExplicitDeny {
                by: crate::policy::StatementRef {
                    policy: format!("role/{}/trust", role.name),
                    statement: by.statement,
                },
            },
            None => match call.audit.decision.take() {
                Some(d) if !d.allowed => d.reason,
                _ => crate::policy::Reason::NoIdentityAllow,
            },
        };
        call.audit.decision = Some(crate::policy::Decision {
            allowed: false,
            reason,
        });
        return Err(denied());
    }
    if let (ResourceDecision::Allowed(by), Err(_)) = (&direct, &identity) {
        // Record that the trust policy, not an identity policy, allowed it.
        call.audit.decision = Some(crate::policy::Decision {
            allowed: true,
            reason: crate::policy::Reason::Allowed {
                by: crate::policy::StatementRef {
                    policy: format!("role/{}/trust", role.name),
                    statement: by.statement.clone(),
                },
                session: None,
                boundary: None,
            },
        });
    }
    if !session_tags.is_empty() && !trusts(call, role, &role_arn, "sts:TagSession", &ctx) {
        return Err(ApiError::AccessDenied(format!(
            "User: {} is not authorized to perform: sts:TagSession on resource: {role_arn}",
            principal.arn
        )));
    }
    let mut claims = role_session(call, role, &session_name, duration, (policy, arns))?;
    claims.tags = session_tags.tags;
    claims.transitive = session_tags.transitive;
    let mut out = issue(call, &claims)?;
    let mut rest = Xml::new();
    assumed_role_xml(&mut rest, &account, role, &session_name);
    rest.text("PackedPolicySize", &packed.to_string());
    out.push_str(&rest.finish());
    Ok(Some(out))
}

/// Whether a role's trust policy lets the caller do `action` (such as
/// `sts:TagSession`): named directly, it needs nothing else; trusted only
/// through its account, its own policies must allow too; an explicit Deny in
/// either refuses.
fn trusts(
    call: &Call<'_>,
    role: &crate::identity::Role,
    role_arn: &str,
    action: &str,
    ctx: &crate::policy::Context,
) -> bool {
    let req = Request {
        action,
        resource: role_arn,
        context: ctx,
    };
    let trust = NamedPolicy {
        name: "trust",
        policy: &role.trust,
    };
    let arn = call.principal.principal_arn();
    let account = call.dir.account_id.clone();
    let direct = evaluate_resource_policy(
        &trust,
        &PrincipalInfo {
            arn,
            account: "",
            federated: false,
        },
        &req,
    );
    let via_account = evaluate_resource_policy(
        &trust,
        &PrincipalInfo {
            arn,
            account: &account,
            federated: false,
        },
        &req,
    );
    let identity = call.dir.authorize(call.principal, &req);
    let identity_denies = matches!(identity.reason, crate::policy::Reason::ExplicitDeny { .. });
    match (&direct, &via_account) {
        (ResourceDecision::ExplicitDeny(_), _) | (_, ResourceDecision::ExplicitDeny(_)) => false,
        (ResourceDecision::Allowed(_), _) => !identity_denies,
        (_, ResourceDecision::Allowed(_)) => identity.allowed,
        _ => false,
    }
}
