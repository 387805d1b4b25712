//! Authentication in the pipeline: find how a request is signed, resolve the
//! access key to its secret and principal, verify with `auth`, and fill the
//! request-wide condition keys that depend on how the caller authenticated.

use chrono::{DateTime, SecondsFormat, Utc};
use http::HeaderMap;

use super::State;
use super::pipeline::ConnInfo;
use crate::audit::{AuthInfo, SharedGuard};
use crate::auth::payload::PayloadHash;
use crate::auth::sigv4::{AuthorizationV4, Expectations, verify_header};
use crate::auth::{AuthError, RequestParts};
use crate::identity::{Directory, Principal, Secret, TokenError};
use crate::policy::Context;

/// The authenticated caller and how they proved it.
pub struct Authenticated {
    pub principal: Principal,
    pub payload: PayloadHash,
    pub signing_time: DateTime<Utc>,
    /// `s3:authType`: `REST-HEADER`, `REST-QUERY-STRING` or `POST`.
    pub auth_type: &'static str,
    /// `s3:signatureversion`: `AWS4-HMAC-SHA256` or `AWS`.
    pub signature_version: &'static str,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What an access key (and session token, for temporary credentials) resolves to.
pub struct ResolvedKey {
    pub secret: Secret,
    pub principal: Principal,
    /// When temporary credentials expire; `None` for long-term keys. Anything
    /// signed with them (a presigned URL) must not outlive this.
    #[allow(dead_code)] // read by presigned-URL verification
    pub expires: Option<DateTime<Utc>>,
}

/// Resolves the access key a request was signed with. Long-term keys come
/// from the directory; temporary ones from their sealed session token, which
/// must open under a session key, belong to this access key id, be unexpired,
/// and still have a live parent (see `Principal::for_session`).
pub fn resolve_key(
    dir: &Directory,
    access_key_id: &str,
    session_token: Option<&str>,
) -> Result<ResolvedKey, AuthError> {
    if let Some(token) = session_token {
        let sessions = dir.sessions().ok_or(AuthError::InvalidToken)?;
        let opened = sessions
            .open(access_key_id, token, Utc::now())
            .map_err(|e| match e {
                TokenError::Invalid => AuthError::InvalidToken,
                TokenError::Expired => AuthError::ExpiredToken,
            })?;
        let secret = opened.secret.clone();
        let expires = Some(opened.claims.expires_at());
        let principal = Principal::for_session(dir, opened).map_err(|why| {
            tracing::debug!(%access_key_id, reason = %why, "session refused");
            AuthError::InvalidToken
        })?;
        return Ok(ResolvedKey {
            secret,
            principal,
            expires,
        });
    }
    let key = dir
        .access_key(access_key_id)
        .ok_or_else(|| AuthError::UnknownAccessKey(access_key_id.to_string()))?;
    let principal = Principal::for_key(dir, access_key_id)
        .ok_or_else(|| AuthError::UnknownAccessKey(access_key_id.to_string()))?;
    Ok(ResolvedKey {
        secret: key.secret.clone(),
        principal,
        expires: None,
    })
}

/// Authenticates an S3 request.
pub fn authenticate(
    state: &State,
    dir: &Directory,
    parts: &RequestParts<'_>,
    query: &[(String, String)],
    audit: &SharedGuard,
) -> Result<Authenticated, AuthError> {
    let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
        if query
            .iter()
            .any(|(n, _)| n == "X-Amz-Algorithm" || n == "AWSAccessKeyId")
        {
            return Err(AuthError::UnsupportedMechanism(
                "query string authentication".into(),
            ));
        }
        return Err(AuthError::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("authorization header is not ASCII".into()))?;
    let auth = AuthorizationV4::parse(value)?;
    audit.update(|r| {
        r.auth = AuthInfo {
            kind: "header",
            signature_version: Some("AWS4-HMAC-SHA256"),
        }
    });
    let token = header_str(parts.headers, "x-amz-security-token");
    let resolved = resolve_key(dir, &auth.scope.access_key_id, token)?;
    let sha =
        header_str(parts.headers, "x-amz-content-sha256").ok_or(AuthError::MissingContentSha256)?;
    let payload = PayloadHash::parse(sha)?;
    let expect = Expectations {
        region: &state.config.region,
        service: "s3",
        now: Utc::now(),
        max_skew_secs: state.config.limits.max_clock_skew_secs,
    };
    let verified = verify_header(
        parts,
        query,
        &auth,
        sha,
        resolved.secret.expose(),
        &expect,
        &state.keys,
    )?;
    Ok(Authenticated {
        principal: resolved.principal,
        payload,
        signing_time: verified.signing_time,
        auth_type: "REST-HEADER",
        signature_version: "AWS4-HMAC-SHA256",
    })
}

/// The request-wide condition keys (S3-SEMANTICS §1.6, §1.7).
pub fn common_context(
    state: &State,
    conn: &ConnInfo,
    headers: &HeaderMap,
    auth: &Authenticated,
    ctx: &mut Context,
) {
    let now = Utc::now();
    ctx.set("aws:SourceIp", conn.remote.ip().to_string());
    ctx.set(
        "aws:SecureTransport",
        if conn.tls { "true" } else { "false" },
    );
    ctx.set(
        "aws:CurrentTime",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    ctx.set("aws:EpochTime", now.timestamp().to_string());
    ctx.set(
        "aws:UserAgent",
        header_str(headers, "user-agent").unwrap_or(""),
    );
    if let Some(r) = header_str(headers, "referer") {
        ctx.set("aws:Referer", r);
    }
    ctx.set("aws:RequestedRegion", state.config.region.as_str());
    if let Some(v) = conn.tls_version {
        ctx.set("s3:TlsVersion", v);
    }
    ctx.set("s3:authType", auth.auth_type);
    ctx.set("s3:signatureversion", auth.signature_version);
    ctx.set(
        "s3:signatureAge",
        (now - auth.signing_time)
            .num_milliseconds()
            .max(0)
            .to_string(),
    );
    if let Some(v) = header_str(headers, "x-amz-content-sha256") {
        ctx.set("s3:x-amz-content-sha256", v);
    }
    ctx.set("s3:ResourceAccount", state.config.account_id.as_str());
    auth.principal.fill_context(ctx);
}
