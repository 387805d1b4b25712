//! STS `AssumeRoleWithWebIdentity`: a role session for whoever presents an
//! ID token of an OpenID Connect provider the account trusts. The request is
//! not signed (the token is the credential), as in AWS.
//!
//! The token's `iss` names the provider (`arn:aws:iam::ACCOUNT:oidc-provider/
//! HOST/PATH`); it is verified against the provider's keys (see
//! `identity::oidc`), its `aud` must be one of the provider's client ids, and
//! the role's trust policy must allow `sts:AssumeRoleWithWebIdentity` for
//! `"Federated": <provider ARN>`, with the condition keys `HOST/PATH:sub`,
//! `:aud`, `:amr`, `HOST/PATH:<claim>` for the token's other string claims,
//! and `aws:FederatedProvider`. Refusals are STS's: `InvalidIdentityToken`,
//! `ExpiredTokenException`, `IDPCommunicationError`, `AccessDenied`.

use serde_json::Value;

use super::query::invalid;
use super::validate;
use super::xml::Xml;
use super::{ApiError, Call, Params};
use crate::audit::SharedGuard;
use crate::identity::Principal;
use crate::identity::oidc::jwt::{JwtError, Token, Verified};
use crate::identity::oidc::{FederationError, jwt};
use crate::identity::sessions::WebIdentity;
use crate::policy::{
    Context, Decision, NamedPolicy, PrincipalInfo, Reason, Request, ResourceDecision, StatementRef,
    evaluate_resource_policy,
};

const ACTION: &str = "sts:AssumeRoleWithWebIdentity";

/// The caller of an unsigned `AssumeRoleWithWebIdentity` request: anonymous
/// (the token, checked by the action, is the credential), recorded as such.
/// `None` for every other request, which must be signed.
pub fn unsigned_caller(params: &Params, account: &str, audit: &SharedGuard) -> Option<Principal> {
    if params.get("Action") != Some("AssumeRoleWithWebIdentity") {
        return None;
    }
    let principal = Principal::anonymous(account);
    audit.update(|r| {
        r.auth.kind = "anonymous";
        r.auth.signature_version = None;
        r.principal = Some(principal.clone());
    });
    Some(principal)
}

fn token_error(e: FederationError) -> ApiError {
    match e {
        FederationError::Token(JwtError::Expired) => {
            ApiError::ExpiredTokenException("Token is expired".into())
        }
        FederationError::Token(JwtError::Audience) => {
            ApiError::InvalidIdentityToken("Incorrect token audience".into())
        }
        FederationError::Token(e) => {
            ApiError::InvalidIdentityToken(format!("The web identity token is not valid: {e}"))
        }
        FederationError::Communication(why) => {
            tracing::warn!(error = %why, "OpenID provider unreachable");
            ApiError::IdpCommunication(
                "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements".into(),
            )
        }
    }
}

/// The trust policy's condition keys for a verified token.
fn claim_context(base: &Context, provider_arn: &str, host_path: &str, v: &Verified) -> Context {
    let mut ctx = base.clone();
    ctx.set("aws:FederatedProvider", provider_arn);
    for (name, value) in &v.claims {
        let key = format!("{host_path}:{name}");
        match (name.as_str(), value) {
            ("aud" | "sub" | "amr", _) => {}
            (_, Value::String(s)) => ctx.set(&key, s.as_str()),
            (_, Value::Bool(b)) => ctx.set(&key, b.to_string()),
            (_, Value::Number(n)) => ctx.set(&key, n.to_string()),
            (_, Value::Array(items)) if items.iter().all(Value::is_string) => ctx.set_multi(
                &key,
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => {}
        }
    }
    ctx.set(&format!("{host_path}:sub"), v.sub.as_str());
    ctx.set(&format!("{host_path}:aud"), v.aud.as_str());
    ctx.set_multi(&format!("{host_path}:amr"), v.amr());
    ctx
}

pub async fn assume_role_with_web_identity(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let (role_arn, session_name, duration) = super::sts::role_params(p)?;
    let token = p.required("WebIdentityToken", "webIdentityToken")?;
    if !(4..=20_000).contains(&token.chars().count()) {
        return Err(invalid(
            None,
            "webIdentityToken",
            "Member must have length between 4 and 20000",
        ));
    }
    validate::refuse_unsupported(p, &["ProviderId"])?;
    super::sts::refuse_mfa_and_tags(p)?;
    let (policy, arns, packed) = super::sts::session_policy(p, call)?;
    call.audit.actions.push(ACTION.into());

    // The provider is the one the token names as its issuer.
    let parsed = Token::parse(token).map_err(|e| token_error(e.into()))?;
    let iss = parsed
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| token_error(JwtError::MissingClaim("iss").into()))?;
    let host_path = iss
        .strip_prefix("https://")
        .map(|r| r.trim_end_matches('/'))
        .filter(|hp| jwt::issuer_matches(iss, hp))
        .ok_or_else(|| {
            ApiError::InvalidIdentityToken(format!(
                "No OpenIDConnect provider found in your account for {iss}"
            ))
        })?
        .to_string();
    let dir = call.dir.clone();
    let provider_arn = super::iam::oidc::provider_arn(&dir.account_id, &host_path);
    let provider = dir.oidc_provider(&provider_arn).ok_or_else(|| {
        ApiError::InvalidIdentityToken(format!(
            "No OpenIDConnect provider found in your account for {iss}"
        ))
    })?;
    let verified = call
        .store
        .federation()
        .verify(
            token,
            &host_path,
            &provider.client_ids,
            call.now.timestamp(),
        )
        .await
        .map_err(token_error)?;

    let denied = || ApiError::AccessDenied(format!("Not authorized to perform {ACTION}"));
    let Some(role) = super::sts::role_by_arn(&dir, &role_arn) else {
        return Err(denied());
    };
    let mut ctx = claim_context(call.context, &provider_arn, &host_path, &verified);
    ctx.set("sts:RoleSessionName", session_name.as_str());
    let req = Request {
        action: ACTION,
        resource: &role_arn,
        context: &ctx,
    };
    let trust = NamedPolicy {
        name: "trust",
        policy: &role.trust,
    };
    let who = PrincipalInfo {
        arn: &provider_arn,
        account: "",
        federated: true,
    };
    let by = |statement: String| StatementRef {
        policy: format!("role/{}/trust", role.name),
        statement,
    };
    match evaluate_resource_policy(&trust, &who, &req) {
        ResourceDecision::Allowed(s) => {
            call.audit.decision = Some(Decision {
                allowed: true,
                reason: Reason::Allowed {
                    by: by(s.statement),
                    session: None,
                    boundary: None,
                },
            });
        }
        ResourceDecision::ExplicitDeny(s) => {
            call.audit.decision = Some(Decision {
                allowed: false,
                reason: Reason::ExplicitDeny {
                    by: by(s.statement),
                },
            });
            return Err(denied());
        }
        _ => {
            call.audit.decision = Some(Decision {
                allowed: false,
                reason: Reason::NoIdentityAllow,
            });
            return Err(denied());
        }
    }
    let mut claims = super::sts::role_session(call, role, &session_name, duration, (policy, arns))?;
    claims.web_identity = Some(WebIdentity {
        provider: provider_arn,
        sub: verified.sub.clone(),
        aud: verified.aud.clone(),
    });
    let mut out = super::sts::issue(call, &claims)?;
    let mut rest = Xml::new();
    rest.text("SubjectFromWebIdentityToken", &verified.sub);
    super::sts::assumed_role_xml(&mut rest, &dir.account_id, role, &session_name);
    rest.text("PackedPolicySize", &packed.to_string())
        .text("Provider", &host_path)
        .text("Audience", &verified.aud);
    out.push_str(&rest.finish());
    Ok(Some(out))
}
