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
//!
//! Session tags come from the token, as in AWS: its
//! `https://aws.amazon.com/tags` claim holds `principal_tags` (key -> an
//! array of one string) and `transitive_tag_keys`; a provider declared in
//! the config may also map plain string claims to tags (`tag_claims`,
//! s3warden's addition). A token with tags needs `sts:TagSession` in the
//! role's trust policy too, evaluated with `aws:RequestTag/*`,
//! `aws:TagKeys` and `sts:TransitiveTagKeys`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::query::invalid;
use super::sts::SessionTags;
use super::validate;
use super::xml::Xml;
use super::{ApiError, Call, Params};
use crate::audit::SharedGuard;
use crate::identity::Principal;
use crate::identity::model::{MAX_TAGS, tag_key_problem, tag_value_problem};
use crate::identity::oidc::jwt::{JwtError, Token, Verified};
use crate::identity::oidc::{FederationError, jwt};
use crate::identity::sessions::WebIdentity;
use crate::policy::{
    Context, Decision, NamedPolicy, PrincipalInfo, Reason, Request, ResourceDecision, StatementRef,
    evaluate_resource_policy,
};

const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
const TAG_SESSION: &str = "sts:TagSession";
/// The claim in which AWS reads session tags from a token.
const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";

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
        r.principal = Some(std::sync::Arc::new(principal.clone()));
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

fn bad_tags(why: String) -> ApiError {
    ApiError::InvalidIdentityToken(format!(
        "The session tags in the web identity token are not valid: {why}"
    ))
}

/// Adds one session tag, refusing what STS refuses: a key or value IAM does
/// not accept, or a key given twice (keys compare regardless of case).
fn add_tag(tags: &mut Vec<(String, String)>, key: &str, value: &str) -> Result<(), ApiError> {
    if let Some(why) = tag_key_problem(key) {
        return Err(bad_tags(format!("tag key {key:?} {why}")));
    }
    if let Some(why) = tag_value_problem(value) {
        return Err(bad_tags(format!("the value of tag {key:?} {why}")));
    }
    if tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
        return Err(bad_tags(format!(
            "tag key {key:?} is given twice (tag keys are case insensitive)"
        )));
    }
    tags.push((key.to_string(), value.to_string()));
    Ok(())
}

/// The session tags a verified token passes: AWS's `https://aws.amazon.com/tags`
/// claim, then the string claims `tag_claims` (tag key, claim name) names. A
/// claim of the wrong shape makes the token invalid rather than being
/// skipped: a tag the issuer meant to set must not silently go missing.
pub(crate) fn token_tags(
    claims: &BTreeMap<String, Value>,
    tag_claims: &[(String, String)],
) -> Result<SessionTags, ApiError> {
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut transitive: Vec<String> = Vec::new();
    if let Some(claim) = claims.get(TAGS_CLAIM) {
        let Value::Object(obj) = claim else {
            return Err(bad_tags(format!("{TAGS_CLAIM} must be an object")));
        };
        if let Some(other) = obj
            .keys()
            .find(|k| *k != "principal_tags" && *k != "transitive_tag_keys")
        {
            return Err(bad_tags(format!(
                "{TAGS_CLAIM} has an unknown member {other:?}"
            )));
        }
        match obj.get("principal_tags") {
            None => {}
            Some(Value::Object(principal)) => {
                for (key, values) in principal {
                    // Session tags are single-valued: an array of exactly one string.
                    let value = match values.as_array().map(Vec::as_slice) {
                        Some([Value::String(v)]) => v,
                        _ => {
                            return Err(bad_tags(format!(
                                "principal tag {key:?} must be an array of one string"
                            )));
                        }
                    };
                    add_tag(&mut tags, key, value)?;
                }
            }
            Some(_) => return Err(bad_tags("principal_tags must be an object".into())),
        }
        match obj.get("transitive_tag_keys") {
            None => {}
            Some(Value::Array(keys)) => {
                for k in keys {
                    let Some(k) = k.as_str() else {
                        return Err(bad_tags("transitive_tag_keys must be strings".into()));
                    };
                    let Some((key, _)) = tags.iter().find(|(t, _)| t.eq_ignore_ascii_case(k))
                    else {
                        return Err(bad_tags(format!(
                            "transitive tag key {k:?} is not among principal_tags"
                        )));
                    };
                    if !transitive.contains(key) {
                        transitive.push(key.clone());
                    }
                }
            }
            Some(_) => return Err(bad_tags("transitive_tag_keys must be an array".into())),
        }
    }
    for (key, claim) in tag_claims {
        match claims.get(claim) {
            None => {}
            Some(Value::String(value)) => add_tag(&mut tags, key, value)?,
            Some(_) => {
                return Err(bad_tags(format!(
                    "claim {claim:?} (for tag {key:?}) is not a string"
                )));
            }
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(bad_tags(format!(
            "{} tags, more than the {MAX_TAGS} allowed",
            tags.len()
        )));
    }
    Ok(SessionTags { tags, transitive })
}

/// The audit decision of a trust policy evaluation, and whether it allowed.
fn noted(decision: ResourceDecision, role: &str) -> (bool, Decision) {
    let by = |statement: String| StatementRef {
        policy: format!("role/{role}/trust"),
        statement,
    };
    match decision {
        ResourceDecision::Allowed(s) => (
            true,
            Decision {
                allowed: true,
                reason: Reason::Allowed {
                    by: by(s.statement),
                    session: None,
                    boundary: None,
                },
            },
        ),
        ResourceDecision::ExplicitDeny(s) => (
            false,
            Decision {
                allowed: false,
                reason: Reason::ExplicitDeny {
                    by: by(s.statement),
                },
            },
        ),
        _ => (
            false,
            Decision {
                allowed: false,
                reason: Reason::NoIdentityAllow,
            },
        ),
    }
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
    for name in ["Tags", "TransitiveTagKeys"] {
        if p.get(name).is_some() || p.has_prefix(&format!("{name}.")) {
            // AWS's API has no such parameter: the token carries the tags.
            return Err(ApiError::Validation(format!(
                "AssumeRoleWithWebIdentity takes no {name} parameter: session tags come from the token's {TAGS_CLAIM} claim."
            )));
        }
    }
    super::sts::refuse_mfa_and_tags(p)?;
    let (policy, arns, plaintext) = super::sts::session_policy(p, call)?;
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

    let session_tags = token_tags(&verified.claims, dir.oidc_tag_claims(&provider_arn))?;
    let packed = super::sts::packed_size(plaintext, &session_tags.tags)?;

    let denied =
        |action: &str| ApiError::AccessDenied(format!("Not authorized to perform {action}"));
    let Some(role) = super::sts::role_by_arn(&dir, &role_arn) else {
        return Err(denied(ACTION));
    };
    let mut ctx = claim_context(call.context, &provider_arn, &host_path, &verified);
    ctx.set("sts:RoleSessionName", session_name.as_str());
    if !session_tags.is_empty() {
        ctx = session_tags.context(&ctx);
    }
    let trust = NamedPolicy {
        name: "trust",
        policy: &role.trust,
    };
    let who = PrincipalInfo {
        arn: &provider_arn,
        account: "",
        federated: true,
    };
    // The role's trust policy must allow the call and, when the token
    // carries tags, passing them.
    let mut actions = vec![ACTION];
    if !session_tags.is_empty() {
        actions.push(TAG_SESSION);
    }
    for action in actions {
        if action != ACTION {
            // The call's own action is noted already, before the token was read.
            call.audit.actions.push(action.into());
        }
        let req = Request {
            action,
            resource: &role_arn,
            context: &ctx,
        };
        let (allowed, decision) = noted(evaluate_resource_policy(&trust, &who, &req), &role.name);
        // The first refusal explains the outcome; otherwise the call's own allow.
        if !allowed || call.audit.decision.is_none() {
            call.audit.decision = Some(decision);
        }
        if !allowed {
            return Err(denied(action));
        }
    }
    let mut claims = super::sts::role_session(call, role, &session_name, duration, (policy, arns))?;
    claims.tags = session_tags.tags;
    claims.transitive = session_tags.transitive;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> BTreeMap<String, Value> {
        match v {
            Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }

    fn refused(r: Result<SessionTags, ApiError>) -> bool {
        matches!(r, Err(ApiError::InvalidIdentityToken(_)))
    }

    #[test]
    fn aws_claim_and_mapped_claims_become_tags_with_transitive_keys_in_the_tags_case() {
        let c = claims(json!({
            TAGS_CLAIM: {"principal_tags": {"Team": ["photos"], "cost": ["42"]},
                         "transitive_tag_keys": ["team", "TEAM"]},
            "dept": "eng", "groups": ["a"]
        }));
        let mapped = [
            ("department".to_string(), "dept".to_string()),
            ("missing".to_string(), "nope".to_string()),
        ];
        let t = token_tags(&c, &mapped).unwrap();
        assert_eq!(
            t.tags,
            [
                ("Team".to_string(), "photos".to_string()),
                ("cost".into(), "42".into()),
                ("department".into(), "eng".into())
            ]
        );
        assert_eq!(t.transitive, ["Team"]);
        assert!(token_tags(&BTreeMap::new(), &[]).unwrap().is_empty());
    }

    #[test]
    fn shapes_sts_does_not_accept_make_the_token_invalid() {
        for bad in [
            json!({TAGS_CLAIM: ["team"]}),
            json!({TAGS_CLAIM: {"principal_tags": ["team"]}}),
            json!({TAGS_CLAIM: {"principal_tags": {"team": "x"}}}),
            json!({TAGS_CLAIM: {"principal_tags": {"team": ["x", "y"]}}}),
            json!({TAGS_CLAIM: {"principal_tags": {"team": [true]}}}),
            json!({TAGS_CLAIM: {"principal_tags": {"a": ["x"], "A": ["y"]}}}),
            json!({TAGS_CLAIM: {"principal_tags": {"AWS:x": ["x"]}}}),
            json!({TAGS_CLAIM: {"principal_tags": {"": ["x"]}}}),
            json!({TAGS_CLAIM: {"transitive_tag_keys": ["a"]}}),
            json!({TAGS_CLAIM: {"principal_tags": {"a": ["x"]}, "transitive_tag_keys": [1]}}),
            json!({TAGS_CLAIM: {"principal_tags": {"a": ["x"]}, "extra": 1}}),
        ] {
            assert!(refused(token_tags(&claims(bad.clone()), &[])), "{bad}");
        }
        let mapped = [("team".to_string(), "team".to_string())];
        for bad in [
            json!({"team": 1}),
            json!({"team": null}),
            json!({"team": ["a"]}),
        ] {
            assert!(refused(token_tags(&claims(bad.clone()), &mapped)), "{bad}");
        }
        // The same key from AWS's claim and from a mapped claim.
        let both = json!({TAGS_CLAIM: {"principal_tags": {"Team": ["a"]}}, "team": "b"});
        assert!(refused(token_tags(&claims(both), &mapped)));
    }

    #[test]
    fn at_most_fifty_tags() {
        let fifty: serde_json::Map<String, Value> =
            (0..50).map(|i| (format!("k{i}"), json!(["v"]))).collect();
        let c = claims(json!({ TAGS_CLAIM: {"principal_tags": fifty.clone()} }));
        assert_eq!(token_tags(&c, &[]).unwrap().tags.len(), 50);
        let mapped = [("extra".to_string(), "x".to_string())];
        let mut with_x = c.clone();
        with_x.insert("x".into(), json!("y"));
        assert!(refused(token_tags(&with_x, &mapped)));
    }
}
