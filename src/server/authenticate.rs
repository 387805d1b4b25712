//! Authentication in the pipeline: find how a request is signed (SigV4 in
//! the `Authorization` header or a presigned URL, SigV2 likewise), resolve the
//! access key to its secret and principal, verify with `auth`, and fill the
//! request-wide condition keys that depend on how the caller authenticated.
//!
//! Every form resolves its key through [`resolve_key`] with its session
//! token, so the validity of temporary credentials (and their expiry, which
//! bounds presigned URLs too) is decided in one place.

use crate::auth::canonical::QueryPair;
use std::sync::Arc;

use crate::s3::headers::header_str;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use http::header::{REFERER, USER_AGENT};

use super::State;
use super::pipeline::ConnInfo;
use crate::audit::{AuthInfo, SharedGuard};
use crate::auth::chunked::ChunkSigner;
use crate::auth::payload::PayloadHash;
use crate::auth::presign::{PresignedV4, is_presigned_v4, verify_presigned};
use crate::auth::sigv2::{self, AuthorizationV2, PresignedV2, is_presigned_v2};
use crate::auth::sigv4::{ALGORITHM, AuthorizationV4, Expectations, VerifiedV4, verify_header};
use crate::auth::{AuthError, RequestParts, X_AMZ_CONTENT_SHA256, X_AMZ_SECURITY_TOKEN};
use crate::identity::{Directory, Principal, Secret, SessionRefusal, TokenError};
use crate::policy::{Context, Optional, Reads};
use crate::s3::Target;

/// The authenticated caller and how they proved it.
pub struct Authenticated {
    /// Shared with the audit record.
    pub principal: Arc<Principal>,
    pub payload: PayloadHash,
    /// When the request was signed; `None` for SigV2 presigned URLs, which
    /// carry only their expiry (so `s3:signatureAge` is absent for them).
    pub signing_time: Option<DateTime<Utc>>,
    /// `s3:authType`: `REST-HEADER`, `REST-QUERY-STRING` or `POST`.
    pub auth_type: &'static str,
    /// `s3:signatureversion`: `AWS4-HMAC-SHA256` or `AWS`.
    pub signature_version: &'static str,
    /// For aws-chunked bodies with signed chunks: the chain's seed.
    pub chunk_signer: Option<ChunkSigner>,
    /// Headers a SigV2 presigned URL carries as query parameters
    /// (`content-type`, `content-md5`, `x-amz-*`): signed as headers, and
    /// applied as headers.
    pub hoisted: Vec<(String, String)>,
}

/// What an access key (and session token, for temporary credentials) resolves to.
pub struct ResolvedKey {
    pub secret: Secret,
    pub principal: Arc<Principal>,
}

/// Resolves the access key a request was signed with. Long-term keys come
/// from the directory; temporary ones from their sealed session token, which
/// must open under a session key, belong to this access key id, be unexpired,
/// and still have a live parent (see `Principal::for_session`).
///
/// The audit record gets the access key id claimed, the principal once the
/// key is known (so a failed sign-in with a known key names who it claimed
/// to be), and why a session was refused. A revoked session is answered as
/// expired: its token is sound, only its time is up.
pub fn resolve_key(
    dir: &Directory,
    access_key_id: &str,
    session_token: Option<&str>,
    audit: &SharedGuard,
) -> Result<ResolvedKey, AuthError> {
    audit.update(|r| r.auth.access_key_id = Some(access_key_id.to_string()));
    let resolved = resolve(dir, access_key_id, session_token, audit)?;
    audit.update(|r| r.principal = Some(resolved.principal.clone()));
    Ok(resolved)
}

fn resolve(
    dir: &Directory,
    access_key_id: &str,
    session_token: Option<&str>,
    audit: &SharedGuard,
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
        let principal = Principal::for_session(dir, opened).map_err(|why| {
            tracing::debug!(%access_key_id, reason = %why, "session refused");
            let (failure, error) = match why {
                SessionRefusal::Revoked => ("revoked token", AuthError::ExpiredToken),
                SessionRefusal::ParentGone => ("session parent gone", AuthError::InvalidToken),
                SessionRefusal::ParentKeyInactive => {
                    ("session parent key inactive", AuthError::InvalidToken)
                }
            };
            audit.update(|r| r.auth.failure = Some(failure.to_string()));
            error
        })?;
        return Ok(ResolvedKey {
            secret,
            principal: Arc::new(principal),
        });
    }
    let key = dir
        .access_key(access_key_id)
        .ok_or_else(|| AuthError::UnknownAccessKey(access_key_id.to_string()))?;
    let principal = dir
        .principal_for_key(access_key_id)
        .ok_or_else(|| AuthError::UnknownAccessKey(access_key_id.to_string()))?;
    Ok(ResolvedKey {
        secret: key.secret.clone(),
        principal,
    })
}

/// Why authentication failed, in the words the audit record uses.
pub fn failure_reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::SignatureMismatch { .. } => "bad signature",
        AuthError::UnknownAccessKey(_) => "unknown key",
        AuthError::InvalidToken => "malformed token",
        AuthError::ExpiredToken => "expired token",
        AuthError::Expired { .. } => "expired",
        AuthError::NotYetValid { .. } => "not yet valid",
        AuthError::TimeTooSkewed { .. } => "clock skew",
        AuthError::Missing => "no credentials",
        AuthError::SigV2Disabled => "signature version 2 is switched off",
        AuthError::WrongRegion { .. }
        | AuthError::WrongService { .. }
        | AuthError::ScopeDateMismatch => "wrong credential scope",
        AuthError::UnsignedHeaders(_) => "unsigned headers",
        _ => "malformed request",
    }
}

/// Notes a failed authentication in the audit record; a more precise reason
/// noted on the way (a revoked session) is kept.
pub fn record_failure(audit: &SharedGuard, e: &AuthError) {
    audit.update(|r| {
        r.auth
            .failure
            .get_or_insert_with(|| failure_reason(e).to_string());
    });
}

/// Authenticates an S3 request. `target` tells SigV2 which bucket a
/// virtual-hosted-style request names (it signs `/bucket/key`).
pub fn authenticate(
    state: &State,
    dir: &Directory,
    parts: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    target: &Target,
    audit: &SharedGuard,
) -> Result<Authenticated, AuthError> {
    let header = parts.headers.get(http::header::AUTHORIZATION);
    let v4_query = is_presigned_v4(query);
    let v2_query = is_presigned_v2(query);
    if usize::from(header.is_some()) + usize::from(v4_query) + usize::from(v2_query) > 1 {
        return Err(AuthError::MultipleMechanisms);
    }
    let virtual_bucket = target
        .virtual_host
        .then_some(target.bucket.as_deref())
        .flatten();
    if let Some(value) = header {
        let value = value
            .to_str()
            .map_err(|_| AuthError::Malformed("authorization header is not ASCII".into()))?;
        if value.starts_with("AWS ") {
            return header_v2(state, dir, parts, query, value, virtual_bucket, audit);
        }
        return header_v4(state, dir, parts, query, value, audit);
    }
    if v4_query {
        return presigned_v4(state, dir, parts, query, audit);
    }
    if v2_query {
        return presigned_v2(state, dir, parts, query, virtual_bucket, audit);
    }
    Err(AuthError::Missing)
}

/// Who a request says it is, read with the parsers above but verified not
/// at all: for the audit record of a request refused before it could be
/// authenticated (`pipeline::refuse_unreadable`), so that a search by access
/// key finds it. `None` when it names no key (or not readably).
pub fn claimed(headers: &HeaderMap, query: &[QueryPair<'_>]) -> Option<AuthInfo> {
    let (kind, version, key) = if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        if value.starts_with("AWS ") {
            let a = AuthorizationV2::parse(value).ok()?;
            ("header", sigv2::SIGNATURE_VERSION, a.access_key_id)
        } else {
            let a = AuthorizationV4::parse(value).ok()?;
            ("header", ALGORITHM, a.scope.access_key_id().to_string())
        }
    } else if is_presigned_v4(query) {
        let p = PresignedV4::parse(query).ok()?;
        (
            "presigned",
            ALGORITHM,
            p.auth.scope.access_key_id().to_string(),
        )
    } else if is_presigned_v2(query) {
        let p = PresignedV2::parse(query).ok()?;
        ("presigned", sigv2::SIGNATURE_VERSION, p.access_key_id)
    } else {
        return None;
    };
    Some(AuthInfo {
        kind,
        signature_version: Some(version),
        access_key_id: Some(key),
        failure: Some("not verified: the request was refused first".to_string()),
    })
}

fn expectations(state: &State) -> Expectations<'_> {
    Expectations {
        region: &state.config.region,
        service: "s3",
        now: Utc::now(),
        max_skew_secs: state.config.limits.max_clock_skew_secs,
    }
}

fn record(audit: &SharedGuard, kind: &'static str, version: &'static str) {
    audit.update(|r| {
        r.auth.kind = kind;
        r.auth.signature_version = Some(version);
    });
}

/// The chain seed for signed aws-chunked bodies.
fn chunk_signer(payload: &PayloadHash, verified: &VerifiedV4) -> Option<ChunkSigner> {
    match payload {
        PayloadHash::Streaming(mode) if mode.signed_chunks() => Some(ChunkSigner::new(
            verified.signing_key.clone(),
            verified.timestamp.to_string(),
            verified.scope.to_string(),
            verified.signature,
        )),
        _ => None,
    }
}

fn header_v4(
    state: &State,
    dir: &Directory,
    parts: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    value: &str,
    audit: &SharedGuard,
) -> Result<Authenticated, AuthError> {
    let auth = AuthorizationV4::parse(value)?;
    record(audit, "header", ALGORITHM);
    let token = header_str(parts.headers, &X_AMZ_SECURITY_TOKEN);
    let resolved = resolve_key(dir, auth.scope.access_key_id(), token, audit)?;
    let sha =
        header_str(parts.headers, &X_AMZ_CONTENT_SHA256).ok_or(AuthError::MissingContentSha256)?;
    let payload = PayloadHash::parse(sha)?;
    let verified = verify_header(
        parts,
        query,
        &auth,
        sha,
        resolved.secret.expose(),
        &expectations(state),
        &state.keys,
    )?;
    Ok(Authenticated {
        principal: resolved.principal,
        chunk_signer: chunk_signer(&payload, &verified),
        payload,
        signing_time: Some(verified.signing_time),
        auth_type: "REST-HEADER",
        signature_version: ALGORITHM,
        hoisted: Vec::new(),
    })
}

fn presigned_v4(
    state: &State,
    dir: &Directory,
    parts: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    audit: &SharedGuard,
) -> Result<Authenticated, AuthError> {
    record(audit, "presigned", ALGORITHM);
    let p = PresignedV4::parse(query)?;
    let token = p
        .security_token
        .as_deref()
        .or_else(|| header_str(parts.headers, &X_AMZ_SECURITY_TOKEN));
    let resolved = resolve_key(dir, p.auth.scope.access_key_id(), token, audit)?;
    let payload = PayloadHash::parse(p.payload_hash(parts.headers))?;
    let verified = verify_presigned(
        parts,
        query,
        &p,
        resolved.secret.expose(),
        &expectations(state),
        &state.keys,
    )?;
    Ok(Authenticated {
        principal: resolved.principal,
        chunk_signer: chunk_signer(&payload, &verified),
        payload,
        signing_time: Some(verified.signing_time),
        auth_type: "REST-QUERY-STRING",
        signature_version: ALGORITHM,
        hoisted: Vec::new(),
    })
}

/// SigV2 signs no payload; a signed `x-amz-content-sha256` may still promise
/// a hex digest, which is then checked like SigV4's.
fn v2_payload(headers: &HeaderMap) -> Result<PayloadHash, AuthError> {
    match header_str(headers, &X_AMZ_CONTENT_SHA256) {
        None => Ok(PayloadHash::Unsigned),
        Some(v) => match PayloadHash::parse(v)? {
            PayloadHash::Streaming(_) => Err(AuthError::NotImplemented(
                "aws-chunked bodies with Signature Version 2",
            )),
            p => Ok(p),
        },
    }
}

fn header_v2(
    state: &State,
    dir: &Directory,
    parts: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    value: &str,
    virtual_bucket: Option<&str>,
    audit: &SharedGuard,
) -> Result<Authenticated, AuthError> {
    record(audit, "header", sigv2::SIGNATURE_VERSION);
    if !state.config.auth.sigv2 {
        return Err(AuthError::SigV2Disabled);
    }
    let auth = AuthorizationV2::parse(value)?;
    let token = header_str(parts.headers, &X_AMZ_SECURITY_TOKEN);
    let resolved = resolve_key(dir, &auth.access_key_id, token, audit)?;
    let payload = v2_payload(parts.headers)?;
    let signing_time = sigv2::verify_header_v2(
        parts,
        query,
        &auth,
        resolved.secret.expose(),
        virtual_bucket,
        Utc::now(),
        state.config.limits.max_clock_skew_secs,
    )?;
    Ok(Authenticated {
        principal: resolved.principal,
        payload,
        signing_time: Some(signing_time),
        auth_type: "REST-HEADER",
        signature_version: sigv2::SIGNATURE_VERSION,
        chunk_signer: None,
        hoisted: Vec::new(),
    })
}

fn presigned_v2(
    state: &State,
    dir: &Directory,
    parts: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    virtual_bucket: Option<&str>,
    audit: &SharedGuard,
) -> Result<Authenticated, AuthError> {
    record(audit, "presigned", sigv2::SIGNATURE_VERSION);
    if !state.config.auth.sigv2 {
        return Err(AuthError::SigV2Disabled);
    }
    let p = PresignedV2::parse(query)?;
    let token = p
        .security_token
        .as_deref()
        .or_else(|| header_str(parts.headers, &X_AMZ_SECURITY_TOKEN));
    let resolved = resolve_key(dir, &p.access_key_id, token, audit)?;
    let payload = v2_payload(parts.headers)?;
    sigv2::verify_presigned_v2(
        parts,
        query,
        &p,
        resolved.secret.expose(),
        virtual_bucket,
        Utc::now(),
    )?;
    let hoisted = query
        .iter()
        .filter(|(n, _)| {
            n == "content-type"
                || n == "content-md5"
                || (n.starts_with("x-amz-") && !crate::s3::classify::is_ignored_query_header(n))
        })
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    Ok(Authenticated {
        principal: resolved.principal,
        payload,
        signing_time: None,
        auth_type: "REST-QUERY-STRING",
        signature_version: sigv2::SIGNATURE_VERSION,
        chunk_signer: None,
        hoisted,
    })
}

/// The request-wide condition keys (S3-SEMANTICS §1.6, §1.7) that the
/// policies deciding for the request read (`reads`, from the directory):
/// a key no such policy reads is not worked out.
pub fn common_context(
    state: &State,
    conn: &ConnInfo,
    headers: &HeaderMap,
    auth: &Authenticated,
    reads: Reads,
    ctx: &mut Context,
) {
    use Optional::*;
    if reads.has(SourceIp) {
        ctx.set_static(SourceIp.key(), crate::audit::ip_text(conn.remote.ip()));
    }
    if reads.has(SecureTransport) {
        let tls = if conn.tls { "true" } else { "false" };
        ctx.set_static_word(SecureTransport.key(), tls);
    }
    // The clock is read only for the keys that need it (the epoch stands in
    // where none does: nothing reads it then).
    let now = [CurrentTime, EpochTime, SignatureAge]
        .into_iter()
        .any(|k| reads.has(k))
        .then(Utc::now)
        .unwrap_or_default();
    if reads.has(CurrentTime) {
        ctx.set_static(
            CurrentTime.key(),
            crate::auth::time::format_rfc3339(&now, false),
        );
    }
    if reads.has(EpochTime) {
        ctx.set_static(EpochTime.key(), itoa::Buffer::new().format(now.timestamp()));
    }
    if reads.has(UserAgent) {
        ctx.set_static(
            UserAgent.key(),
            header_str(headers, USER_AGENT).unwrap_or(""),
        );
    }
    if reads.has(Referer)
        && let Some(r) = header_str(headers, REFERER)
    {
        ctx.set_static(Referer.key(), r);
    }
    if reads.has(RequestedRegion) {
        ctx.set_static(RequestedRegion.key(), state.config.region.as_str());
    }
    if reads.has(TlsVersion)
        && let Some(v) = conn.tls_version
    {
        ctx.set_static_word(TlsVersion.key(), v);
    }
    if reads.has(AuthType) {
        ctx.set_static_word(AuthType.key(), auth.auth_type);
    }
    if reads.has(SignatureVersion) {
        ctx.set_static_word(SignatureVersion.key(), auth.signature_version);
    }
    if reads.has(SignatureAge)
        && let Some(signed) = auth.signing_time
    {
        let age = (now - signed).num_milliseconds().max(0);
        ctx.set_static(SignatureAge.key(), itoa::Buffer::new().format(age));
    }
    if reads.has(ContentSha256)
        && let Some(v) = header_str(headers, &X_AMZ_CONTENT_SHA256)
    {
        ctx.set_static(ContentSha256.key(), v);
    }
    if reads.has(ResourceAccount) {
        ctx.set_static(ResourceAccount.key(), state.config.account_id.as_str());
    }
    auth.principal.fill_context_reading(ctx, reads);
}
