//! The request path, one fixed sequence over one per-request context:
//! authenticate → classify → authorize → forward → respond, with the audit
//! record finished by the response body whatever happens on the way.

use crate::auth::canonical::QueryPair;
use crate::s3::headers::header_str;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::Notify;

use super::State;
use super::authenticate::{Authenticated, authenticate, common_context, record_failure};
use super::body::{ClientBody, IdleBody, InboundBody, OutboundBody, from_client, read_limited};
use super::cors;
use super::response;
use super::shutdown::{CUT_BY_SHUTDOWN, Cutoff};
use super::streaming::{self, refuse_stray_aws_chunked, rewrite_headers};
use crate::audit::params::{CopySourceInfo, ObjectOutcome, Parameters, delete_result_outcomes};
use crate::audit::{AuditGuard, AuditRecord, AuthInfo, DecisionInfo, SharedGuard};
use crate::auth::RequestParts;
use crate::auth::canonical::parse_query;
use crate::auth::chunked::body::ChunkedBody;
use crate::auth::chunked::{Decoder, decode_all};
use crate::auth::payload::{BodyError, BodyFailure, BoxError, PayloadHash, Sha256VerifyingBody};
use crate::auth::time::format_rfc3339;
use crate::config::WhenFull;
use crate::identity::Decider;
use crate::policy::{Context, Decision};
use crate::s3::address::resolve;
use crate::s3::classify::{Classified, RequestView, bucket_arn, classify};
use crate::s3::delete_objects::{DeleteRequest, denied_errors, merge_into_result, result_with};
use crate::s3::errors::{upstream_bad_gateway, upstream_timeout, upstream_unavailable};
use crate::s3::headers::{HeaderRole, role};
use crate::s3::{ErrorSource, Operation, S3Error};
use crate::upstream::{Outgoing, ReplyBody, UpstreamBody, UpstreamError};

pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub tls: bool,
    /// The negotiated TLS version (`1.2`, `1.3`), for `s3:TlsVersion`.
    pub tls_version: Option<&'static str>,
}

/// Upstream responses read whole to be rewritten (multi-delete results) are
/// bounded by this; S3's DeleteResult for 1000 keys is far below it.
const MAX_REWRITTEN_RESPONSE: usize = 8 * 1024 * 1024;

/// What the pipeline learns about a request as it goes.
pub(super) struct RequestCtx {
    pub(super) request_id: String,
    pub(super) audit: SharedGuard,
}

/// Serves one request. Never fails: every error becomes an S3 error response.
pub async fn handle(
    state: Arc<State>,
    conn: ConnInfo,
    req: Request<ClientBody>,
) -> Response<ResponseBody> {
    let request_id = response::new_request_id();
    let permit = match audit_place(&state, &request_id, req.method() == Method::HEAD).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let mut record = opening_record(&conn, &request_id);
    name_request(&mut record, &req);
    let audit = SharedGuard::new(AuditGuard::new(record, permit));
    let ctx = RequestCtx {
        request_id: request_id.clone(),
        audit: audit.clone(),
    };
    let is_head = req.method() == Method::HEAD;
    let body_may_be_unread = has_body(&req) && req.version() < http::Version::HTTP_2;
    let origin = header_str(req.headers(), http::header::ORIGIN).map(str::to_string);
    let method = req.method().clone();
    let unanswered = Unanswered {
        audit: Some(audit.clone()),
        cutoff: &state.cutoff,
    };
    let result = if method == Method::OPTIONS {
        preflight(&state, req.headers(), &ctx)
    } else {
        process(&state, &conn, req, &ctx).await
    };
    unanswered.answered();
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() || e.source != ErrorSource::Client {
                tracing::warn!(
                    request_id = %request_id,
                    code = e.code,
                    message = %e.message,
                    detail = e.internal_detail.as_deref().unwrap_or(""),
                    "request failed"
                );
            }
            audit.update(|r| {
                r.error_code = Some(e.code.to_string());
                r.error_message = Some(e.message.to_string());
                r.error_source = Some(e.source);
                r.error_detail = e.internal_detail.clone();
            });
            response::error(&e, &request_id, is_head).map(|b| b.map_err(|e| match e {}).boxed())
        }
    };
    let status = response.status().as_u16();
    audit.update(|r| r.status = status);
    let (mut parts, body) = response.into_parts();
    response::stamp(&mut parts.headers, &request_id);
    if body_may_be_unread && parts.status.as_u16() >= 400 {
        // An error may be answered before the body was read (or while
        // upstream refused it early): the rest of the body would arrive as
        // if it were the next request. Closing is the only safe reuse
        // decision; saying so keeps keep-alive clients from sending their
        // next request into a connection about to close. (HTTP/2 ends the
        // stream instead, which hyper does by itself.)
        parts
            .headers
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if method != Method::OPTIONS {
        cors::decorate(
            state.config.cors.as_ref(),
            origin.as_deref(),
            &method,
            &mut parts.headers,
        );
    }
    Response::from_parts(
        parts,
        OutboundBody::new(body, audit, state.metrics.clone(), state.cutoff.clone()).boxed(),
    )
}

/// A place in the audit queue for a request's record, or the answer that
/// refuses the request when none can be had.
async fn audit_place(
    state: &State,
    request_id: &str,
    head: bool,
) -> Result<tokio::sync::mpsc::OwnedPermit<Box<AuditRecord>>, Response<ResponseBody>> {
    let reserved = match state.config.audit.when_full {
        WhenFull::Wait => state.audit.reserve().await.map(Some),
        WhenFull::Refuse => state.audit.try_reserve(),
    };
    match reserved {
        Ok(Some(p)) => Ok(p),
        Ok(None) => {
            // Refused before anything happened; counted, since no record fits.
            state.metrics.audit_refused();
            tracing::warn!(request_id = %request_id, "audit queue full; refusing request");
            let e = S3Error::new(
                "SlowDown",
                StatusCode::SERVICE_UNAVAILABLE,
                "Please reduce your request rate.",
            );
            Err(response::error(&e, request_id, head).map(|b| b.map_err(|e| match e {}).boxed()))
        }
        Err(e) => {
            // No audit record can be written: refuse rather than serve unaudited.
            tracing::error!(error = %e, "audit log unavailable; refusing request");
            Err(
                response::error(&S3Error::service_unavailable(), request_id, head)
                    .map(|b| b.map_err(|e| match e {}).boxed()),
            )
        }
    }
}

/// Answers a request whose head could not be read (see `http1`): an S3
/// error, its audit record (with what is known: who sent it, when, why it
/// was refused), and the connection closed after it.
pub(super) async fn refuse_unreadable(
    state: Arc<State>,
    conn: ConnInfo,
    refused: super::http1::Refused,
) -> Response<ResponseBody> {
    use super::http1::Unreadable;
    let e = match refused.why {
        // As S3 answers a head over its limit (and as `check_header_section`
        // answers one that fits the connection's buffer but not the limit).
        Unreadable::TooLarge => S3Error::new(
            "RequestHeaderSectionTooLarge",
            StatusCode::BAD_REQUEST,
            "Your request header section exceeds the maximum allowed size.",
        )
        .with(
            "MaxSizeAllowed",
            state.config.limits.max_header_bytes.to_string(),
        ),
        // S3 answers a transfer coding it does not implement so.
        Unreadable::Coding => S3Error::new(
            "NotImplemented",
            StatusCode::NOT_IMPLEMENTED,
            "A header you provided implies functionality that is not implemented.",
        )
        .with("Header", "Transfer-Encoding"),
        Unreadable::Malformed(what) => {
            S3Error::invalid_request(format!("The request could not be read: {what}."))
        }
    };
    let request_id = response::new_request_id();
    let mut record = opening_record(&conn, &request_id);
    record.status = e.status.as_u16();
    record.error_code = Some(e.code.to_string());
    record.error_message = Some(e.message.to_string());
    record.error_source = Some(e.source);
    if let Some(head) = refused.head {
        // What the refused request named, as far as it could be read; taken
        // now, so that the head (and the read buffer its values share) is
        // not kept while waiting for a place in the audit queue.
        let req = Request::from_parts(*head, ());
        name_request(&mut record, &req);
        // Without its host (a head refused at a header line, before it was
        // read), a target is surely path-style only where no domain is
        // served virtual-hosted: elsewhere the bucket and key are not guessed.
        let addressed = record.host.is_some() || state.config.domains.is_empty();
        if addressed
            && let Ok(target) = resolve(
                record.host.as_deref(),
                req.uri().path(),
                &state.config.domains,
            )
        {
            record.bucket = target.bucket;
            record.key = target.key;
        }
        let query = parse_query(req.uri().query().unwrap_or("")).unwrap_or_default();
        if let Some(claimed) = super::authenticate::claimed(req.headers(), &query) {
            record.auth = claimed;
        }
    }
    let permit = match audit_place(&state, &request_id, false).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    tracing::debug!(request_id = %request_id, code = e.code, message = %e.message, "unreadable request refused");
    // Stamped when the record has its place, as a served request's is.
    record.time = format_rfc3339(&Utc::now(), true);
    let audit = SharedGuard::new(AuditGuard::new(record, permit));
    let (mut parts, body) = response::error(&e, &request_id, false).into_parts();
    response::stamp(&mut parts.headers, &request_id);
    parts
        .headers
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    Response::from_parts(
        parts,
        OutboundBody::new(
            body.map_err(|e| match e {}).boxed(),
            audit,
            state.metrics.clone(),
            state.cutoff.clone(),
        )
        .boxed(),
    )
}

/// Marks the audit record of a request dropped before it was answered:
/// hyper drops the request's future when its client goes away, and the
/// shutdown cut drops it at the deadline. The record is sent either way
/// (the guard's `Drop`); this says why it has no answer.
struct Unanswered<'a> {
    audit: Option<SharedGuard>,
    cutoff: &'a Cutoff,
}

impl Unanswered<'_> {
    fn answered(mut self) {
        self.audit = None;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(audit) = self.audit.take() {
            let cut = self.cutoff.is_cut();
            audit.update(|r| {
                let (code, source) = if cut {
                    (CUT_BY_SHUTDOWN, ErrorSource::Internal)
                } else {
                    (CLIENT_DISCONNECTED, ErrorSource::Client)
                };
                r.error_code.get_or_insert_with(|| code.to_string());
                r.error_source.get_or_insert(source);
            });
        }
    }
}

/// The audit error code of a request whose client went away before the
/// whole answer was sent.
pub const CLIENT_DISCONNECTED: &str = "ClientDisconnected";

/// A CORS preflight: answered from the configuration, before and without
/// authentication, as S3 answers it.
fn preflight(
    state: &State,
    headers: &HeaderMap,
    ctx: &RequestCtx,
) -> Result<Response<ResponseBody>, S3Error> {
    ctx.audit
        .update(|r| r.operation = Some("PreflightCORS".into()));
    let cors_headers = cors::preflight(state.config.cors.as_ref(), headers)?;
    let mut resp = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *resp.headers_mut() = cors_headers;
    Ok(resp)
}

/// How every request's audit record begins: when, which request, from whom
/// (not yet authenticated).
fn opening_record(conn: &ConnInfo, request_id: &str) -> Box<AuditRecord> {
    Box::new(AuditRecord {
        time: format_rfc3339(&Utc::now(), true),
        request_id: request_id.to_string(),
        remote: crate::audit::remote_text(&conn.remote),
        tls: conn.tls,
        auth: AuthInfo {
            kind: "anonymous",
            ..AuthInfo::default()
        },
        ..AuditRecord::default()
    })
}

/// What a request's head names in its audit record before anything else
/// is read of it: method, host, user agent.
fn name_request<B>(record: &mut AuditRecord, req: &Request<B>) {
    record.method = crate::audit::method_name(req.method());
    record.host = host_of(req).map(str::to_string);
    record.user_agent = header_str(req.headers(), http::header::USER_AGENT).map(str::to_string);
}

/// Whether a request declares a body: a non-zero length or chunked framing.
fn has_body<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(http::header::TRANSFER_ENCODING)
        || header_str(req.headers(), http::header::CONTENT_LENGTH)
            .is_some_and(|n| n.trim().parse::<u64>().map_or(true, |n| n > 0))
}

fn host_of<B>(req: &Request<B>) -> Option<&str> {
    header_str(req.headers(), http::header::HOST)
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// Authorizes every check; the first denial decides, else the first allow.
pub(super) fn authorize_all(decider: &Decider<'_>, c: &Classified, context: &Context) -> Decision {
    let mut first_allow = None;
    for check in &c.checks {
        let req = crate::policy::Request {
            action: check.action,
            resource: &check.resource,
            context,
        };
        let d = decider.authorize(&req);
        if !d.allowed {
            return d;
        }
        first_allow.get_or_insert(d);
    }
    first_allow.unwrap_or(Decision {
        allowed: false,
        reason: crate::policy::Reason::NoIdentityAllow,
    })
}

/// [`authorize_all`], with the decision and the condition keys it consulted
/// (and their values) in the audit record, which keeps the decision; whether
/// it allows is returned.
pub(super) fn authorize_recorded(
    decider: &Decider<'_>,
    c: &Classified,
    context: &Context,
    audit: &SharedGuard,
) -> bool {
    let (decision, consulted) = crate::policy::trace::traced(|| authorize_all(decider, c, context));
    let allowed = decision.allowed;
    let info = DecisionInfo::from_owned(decision).with_conditions(consulted, context);
    audit.update(|r| r.decision = Some(info));
    allowed
}

async fn process(
    state: &Arc<State>,
    conn: &ConnInfo,
    req: Request<ClientBody>,
    ctx: &RequestCtx,
) -> Result<Response<ResponseBody>, S3Error> {
    let (mut parts, body) = req.into_parts();
    check_header_section(&parts, state.config.limits.max_header_bytes)?;
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query = parse_query(raw_query).ok_or_else(S3Error::invalid_uri)?;
    let host = header_str(&parts.headers, http::header::HOST)
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let target =
        resolve(host, parts.uri.path(), &state.config.domains).map_err(|e| S3Error::from(&e))?;
    if super::api::is_api_request(
        &parts.method,
        parts.uri.path(),
        target.bucket.is_some(),
        &query,
        &parts.headers,
    ) {
        // The API, POST uploads and DeleteObjects are boxed: their states
        // are large and rare, and inline they would size (and be copied
        // with) every request's future.
        return Ok(Box::pin(super::api::handle(
            state,
            conn,
            parts,
            body,
            &ctx.audit,
            &ctx.request_id,
        ))
        .await);
    }
    if super::post_upload::is_post_upload(&parts.method, &target, &query, &parts.headers) {
        return Box::pin(super::post_upload::handle(
            state, conn, parts, body, &target, ctx,
        ))
        .await;
    }
    ctx.audit.update(|r| {
        r.bucket = target.bucket.clone();
        r.key = target.key.clone();
    });

    let dir = state.identities.snapshot();
    let rparts = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: raw_query,
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
    };
    let auth = authenticate(state, &dir, &rparts, &query, &target, &ctx.audit).map_err(|e| {
        record_failure(&ctx.audit, &e);
        S3Error::from(&e)
    })?;
    hoist_signed_query_headers(&auth, &mut parts.headers, &mut query)?;

    let mut context = Context::new();
    let view = RequestView {
        method: &parts.method,
        target: &target,
        query: &query,
        headers: &parts.headers,
    };
    let classified = classify(&view, &mut context).map_err(|e| S3Error::from(&e))?;
    let decider = dir.decider(&auth.principal);
    let reads = decider.context_reads();
    common_context(state, conn, &parts.headers, &auth, reads, &mut context);
    let parameters = Parameters::from_s3(
        &query,
        &parts.headers,
        classified.copy_source.as_ref().map(|c| CopySourceInfo {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            version_id: c.version_id.clone(),
        }),
    );
    ctx.audit.update(|r| {
        r.parameters = parameters;
        r.operation = Some(classified.operation.name().into());
        r.version_id = classified.version_id.clone();
        r.actions = classified.checks.iter().map(|c| c.action.into()).collect();
    });

    if classified.operation == Operation::DeleteObjects {
        return Box::pin(delete_objects(
            state, &decider, &auth, classified, &context, parts, body, ctx,
        ))
        .await;
    }

    super::object_tags::fill(state, &decider, &classified, &mut context, &ctx.audit).await?;
    let allowed = authorize_recorded(&decider, &classified, &context, &ctx.audit);
    if !allowed {
        return Err(S3Error::access_denied());
    }

    let mut headers = forward_headers(state, &parts.headers, &classified)?;
    let failure = BodyFailure::default();
    let counter = Arc::new(AtomicU64::new(0));
    let body_done = Arc::new(Notify::new());
    let needs_length = matches!(
        classified.operation,
        Operation::PutObject | Operation::UploadPart
    );
    let mut inbound = InboundBody::new(
        from_client(body, &state.config.limits),
        counter.clone(),
        body_done.clone(),
    );
    if !needs_length {
        // Everything but object data is a control document (a policy,
        // CompleteMultipartUpload's part list, a lifecycle configuration):
        // bounded here as S3 bounds it, not streamed to upstream unchecked.
        let limit = state.config.limits.max_control_body_bytes as u64;
        let declared =
            header_str(&parts.headers, http::header::CONTENT_LENGTH).and_then(|n| n.parse().ok());
        if declared.is_some_and(|n: u64| n > limit) {
            return Err(S3Error::from(&BodyError::TooLarge { limit }));
        }
        inbound = inbound.with_limit(limit);
    }
    let (body, payload_hash) = upstream_body(
        inbound,
        &auth,
        &parts.headers,
        &mut headers,
        failure.clone(),
    )
    .await?;
    if needs_length && !headers.contains_key(http::header::CONTENT_LENGTH) {
        return Err(S3Error::missing_content_length());
    }
    let operation = classified.operation;
    let outgoing = Outgoing {
        method: parts.method.clone(),
        bucket: classified.bucket.clone(),
        key: classified.key.clone(),
        query: classified.forward_query.clone(),
        headers,
        payload_hash,
        body,
        body_done,
    };
    let upstream_started = Instant::now();
    let result = state.upstream.send(outgoing).await;
    let upstream_ms = crate::audit::millis(upstream_started.elapsed());
    let bytes_in = counter.load(Ordering::Relaxed);
    ctx.audit.update(|r| {
        r.bytes_in = bytes_in;
        r.upstream_ms = Some(upstream_ms);
    });
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => return Err(body_failure_or(state, &failure, e, ctx)),
    };
    ctx.audit.update(|r| {
        r.upstream_request_id =
            header_str(resp.headers(), &crate::http1::X_AMZ_REQUEST_ID).map(str::to_string)
    });

    // A missing key reads as 404 only to callers who may list the bucket;
    // others get 403, so the proxy's own powerful key leaks nothing.
    if resp.status() == StatusCode::NOT_FOUND
        && matches!(operation, Operation::GetObject | Operation::HeadObject)
        && let Some(bucket) = &classified.bucket
    {
        let list = crate::policy::Request {
            action: "s3:ListBucket",
            resource: &bucket_arn(bucket),
            context: &context,
        };
        if !decider.authorize(&list).allowed {
            return Err(S3Error::access_denied());
        }
    }
    Ok(relay(state, resp))
}

/// Refuses a request whose header section is larger than `limit`, as S3
/// refuses one above its 8 KiB. hyper's read buffer (at least 8 KiB, see
/// `server`) already refused anything larger than it before buffering
/// more; this is the exact check for limits below that, counted as the
/// bytes on the wire of an HTTP/1.1 head (HTTP/2 compresses them, but its
/// header list size is bounded the same way).
fn check_header_section(parts: &http::request::Parts, limit: usize) -> Result<(), S3Error> {
    // "METHOD URI HTTP/1.1\r\n", each "name: value\r\n", the final "\r\n".
    let line = parts.method.as_str().len() + uri_len(&parts.uri) + 12;
    let headers: usize = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if line + headers + 2 > limit {
        return Err(S3Error::new(
            "RequestHeaderSectionTooLarge",
            StatusCode::BAD_REQUEST,
            "Your request header section exceeds the maximum allowed size.",
        )
        .with("MaxSizeAllowed", limit.to_string()));
    }
    Ok(())
}

/// The length of `uri` as it displays (scheme, authority, path, query),
/// counted without writing it out.
fn uri_len(uri: &http::Uri) -> usize {
    uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path().len()
        + uri.query().map_or(0, |q| q.len() + 1)
}

/// After a failed upstream exchange: if the client's body was at fault
/// (hash mismatch, disconnect), that is the error; otherwise upstream's.
pub(super) fn body_failure_or(
    state: &State,
    failure: &BodyFailure,
    e: UpstreamError,
    ctx: &RequestCtx,
) -> S3Error {
    if let Some(b) = failure.get() {
        return S3Error::from(&b);
    }
    tracing::warn!(request_id = %ctx.request_id, error = %e, "upstream request failed");
    state.metrics.upstream_error(e.kind());
    let detail = e.to_string();
    match e {
        UpstreamError::Connect(_) => upstream_unavailable(&detail),
        UpstreamError::Timeout(_) => upstream_timeout(&detail),
        UpstreamError::Credentials(_)
        | UpstreamError::Signing(_)
        | UpstreamError::Url(_)
        | UpstreamError::Tls(_) => S3Error::internal_error()
            .from_source(ErrorSource::Internal)
            .with_internal_detail(detail),
        UpstreamError::HeaderValue(name) => S3Error::invalid_argument(
            "Header values must be visible ASCII (use RFC 2047 encoding for other characters).",
            &name,
            "",
        ),
        UpstreamError::Request(_) => upstream_bad_gateway(&detail),
    }
}

/// The request body as it goes upstream, and the payload hash to sign it
/// with: a hex digest checked in flight, unsigned, or an aws-chunked body
/// decoded, verified and re-framed (whose headers are rewritten in `out`).
async fn upstream_body(
    inbound: InboundBody<IdleBody<ClientBody>>,
    auth: &Authenticated,
    received: &HeaderMap,
    out: &mut HeaderMap,
    failure: BodyFailure,
) -> Result<(UpstreamBody, String), S3Error> {
    let mode = match &auth.payload {
        PayloadHash::Streaming(mode) => *mode,
        other => {
            refuse_stray_aws_chunked(received)?;
            return Ok(plain_body(inbound, other, failure));
        }
    };
    let plan = streaming::plan(received, mode, auth.chunk_signer.clone())
        .map_err(|e| S3Error::from(&e))?;
    rewrite_headers(out, &plan)?;
    let hash = plan.upstream_payload_hash().to_string();
    if plan.decoded_length == 0 {
        // Nothing to hold back: an empty plain body would be complete (and
        // committed) upstream before its signature could be checked. Read
        // the few framing bytes and verify them first.
        let raw = read_limited(inbound, MAX_EMPTY_CHUNKED_BODY)
            .await
            .map_err(|e| S3Error::from(&e))?;
        decode_all(plan.decoder.clone(), raw.clone())
            .map_err(|e| S3Error::from(&BodyError::Chunk(e)))?;
        let body = ChunkedBody::new(
            Full::new(raw),
            Decoder::new(plan.decoder),
            plan.framing,
            0,
            failure,
        );
        return Ok((body.boxed(), hash));
    }
    let body = ChunkedBody::new(
        inbound,
        Decoder::new(plan.decoder),
        plan.framing,
        plan.decoded_length,
        failure,
    );
    Ok((body.boxed(), hash))
}

/// Framing bytes of an aws-chunked body with no payload: a final chunk and a
/// trailer, far below this.
const MAX_EMPTY_CHUNKED_BODY: usize = 64 * 1024;

fn plain_body<B>(inbound: B, payload: &PayloadHash, failure: BodyFailure) -> (UpstreamBody, String)
where
    B: http_body::Body<Data = Bytes, Error = BoxError> + Unpin + Send + Sync + 'static,
{
    match payload {
        PayloadHash::Sha256(digest) => (
            Sha256VerifyingBody::new(inbound, *digest, failure).boxed(),
            hex::encode(digest),
        ),
        PayloadHash::Unsigned | PayloadHash::Streaming(_) => (
            inbound
                .map_err(move |e| {
                    failure.set(BodyError::transport(&e));
                    e
                })
                .boxed(),
            crate::auth::payload::UNSIGNED_PAYLOAD.to_string(),
        ),
    }
}

/// A SigV2 presigned URL may carry `content-type`, `content-md5` and
/// `x-amz-*` as query parameters; they were signed as headers, so they are
/// classified, authorized and forwarded as headers. A header given both ways
/// was refused by the signature check already.
fn hoist_signed_query_headers(
    auth: &Authenticated,
    headers: &mut HeaderMap,
    query: &mut Vec<QueryPair<'_>>,
) -> Result<(), S3Error> {
    if auth.hoisted.is_empty() {
        return Ok(());
    }
    for (name, value) in &auth.hoisted {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| S3Error::invalid_argument("Invalid header name.", name, ""))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            S3Error::invalid_argument("Invalid header value.", name.as_str(), value)
        })?;
        headers.insert(name, value);
    }
    query.retain(|(n, _)| !auth.hoisted.iter().any(|(h, _)| h == n));
    Ok(())
}

/// The headers that go upstream: those that are part of the S3 request, with
/// `x-amz-copy-source` rebuilt from what was authorized.
pub(super) fn forward_headers(
    state: &State,
    headers: &HeaderMap,
    c: &Classified,
) -> Result<HeaderMap, S3Error> {
    // Room for the upstream signature's headers too (host, x-amz-date,
    // x-amz-content-sha256, authorization, a session token): the map is not
    // grown and rehashed as the signer adds them.
    let mut out = HeaderMap::with_capacity(headers.len() + 5);
    for (name, value) in headers {
        match role(name.as_str()) {
            Some(HeaderRole::Forward) if name != "x-amz-copy-source" => {
                out.append(name.clone(), value.clone());
            }
            Some(HeaderRole::ExpectedOwner)
                // The client knows only the proxy's account; check it here,
                // since upstream's owner is a different account.
                if value.to_str().ok() != Some(state.config.account_id.as_str()) => {
                    return Err(S3Error::access_denied());
                }
            _ => {}
        }
    }
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH) {
        out.insert(http::header::CONTENT_LENGTH, len.clone());
    }
    if let Some(src) = &c.copy_source {
        let mut v = String::with_capacity(src.bucket.len() + src.key.len() + 8);
        v.push('/');
        v.push_str(&src.bucket);
        v.push('/');
        crate::auth::canonical::uri_encode_into(&mut v, &src.key, true);
        if let Some(id) = &src.version_id {
            v.push_str("?versionId=");
            crate::auth::canonical::uri_encode_into(&mut v, id, false);
        }
        let hv = HeaderValue::from_str(&v).map_err(|_| S3Error::internal_error())?;
        out.insert("x-amz-copy-source", hv);
    }
    Ok(out)
}

/// Streams upstream's response back, without its hop-by-hop headers and
/// request ids (see [`strip_upstream_headers`]). An upstream that stops
/// sending for `[upstream] idle_timeout_secs` fails the body, which cuts
/// the client's connection (or stream) short of the announced length: a
/// truncated object is never taken for a whole one.
pub(super) fn relay(state: &State, resp: Response<ReplyBody>) -> Response<ResponseBody> {
    let (mut parts, body) = resp.into_parts();
    strip_upstream_headers(&mut parts.headers);
    let idle = std::time::Duration::from_secs(state.config.upstream.idle_timeout_secs);
    Response::from_parts(parts, IdleBody::new(body, idle).boxed())
}

/// Drops hop-by-hop headers and upstream's request ids from an upstream
/// response (the client gets the proxy's; the audit keeps both), and the
/// headers its `Connection` header names as hop-by-hop (RFC 9110 §7.6.1).
pub(super) fn strip_upstream_headers(headers: &mut HeaderMap) {
    // Found in one pass over the answer's names by their text, then removed:
    // removing each of the ten by name hashes and probes for every one,
    // present or not, and an answer carries one or two of them.
    let mut found = [const { None }; STRIPPED.len()];
    let mut count = 0;
    for name in headers.keys() {
        if is_stripped(name.as_str())
            && let Some(slot) = found.get_mut(count)
        {
            *slot = Some(name.clone());
            count += 1;
        }
    }
    let nominated = if found
        .iter()
        .flatten()
        .any(|n| n == http::header::CONNECTION)
    {
        nominated_by_connection(headers)
    } else {
        Vec::new()
    };
    for h in found.iter().flatten() {
        headers.remove(h);
    }
    for h in nominated {
        headers.remove(h);
    }
}

/// Whether `name` is one of [`STRIPPED`]: compared by length and text, where
/// a `HeaderName`'s comparison would look each standard name's text up.
fn is_stripped(name: &str) -> bool {
    STRIPPED.contains(&name)
}

/// The header names an upstream's `Connection` header lists, but for those
/// removed anyway and `Content-Length`: the answer's body was framed by it,
/// and a HEAD's answer tells the object's size by it alone (naming it is the
/// sender's error, RFC 9110 §7.6.1).
fn nominated_by_connection(headers: &HeaderMap) -> Vec<http::HeaderName> {
    let mut names = Vec::new();
    for value in headers.get_all(http::header::CONNECTION) {
        // Token by token, as bytes: a value with a byte outside visible
        // ASCII elsewhere still names the headers it names.
        for token in value
            .as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
        {
            // The usual options, which name no header.
            if token.eq_ignore_ascii_case(b"keep-alive") || token.eq_ignore_ascii_case(b"close") {
                continue;
            }
            let Ok(name) = http::HeaderName::from_bytes(token) else {
                continue;
            };
            if name != http::header::CONTENT_LENGTH && !is_stripped(name.as_str()) {
                names.push(name);
            }
        }
    }
    names
}

/// What [`strip_upstream_headers`] drops (lowercase, as `HeaderName`s are).
const STRIPPED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "x-amz-request-id",
    "x-amz-id-2",
    "server",
];

/// Multi-object delete: every key is authorized; denied keys are withheld
/// from upstream and reported per key in the result.
#[allow(clippy::too_many_arguments)]
async fn delete_objects(
    state: &Arc<State>,
    decider: &Decider<'_>,
    auth: &Authenticated,
    classified: Classified,
    context: &Context,
    parts: http::request::Parts,
    body: ClientBody,
    ctx: &RequestCtx,
) -> Result<Response<ResponseBody>, S3Error> {
    let raw = read_limited(
        from_client(body, &state.config.limits),
        state.config.limits.max_control_body_bytes,
    )
    .await
    .map_err(|e| S3Error::from(&e))?;
    ctx.audit.update(|r| r.bytes_in = raw.len() as u64);
    let (raw, trailer_verified) = match &auth.payload {
        PayloadHash::Streaming(mode) => {
            let plan = streaming::plan(&parts.headers, *mode, auth.chunk_signer.clone())
                .map_err(|e| S3Error::from(&e))?;
            let (data, trailer) =
                decode_all(plan.decoder, raw).map_err(|e| S3Error::from(&BodyError::Chunk(e)))?;
            (data, trailer.is_some())
        }
        _ => {
            refuse_stray_aws_chunked(&parts.headers)?;
            (raw, false)
        }
    };
    super::integrity::check_control_body(&parts.headers, &auth.payload, &raw, trailer_verified)?;
    let request = DeleteRequest::parse(&raw).map_err(|e| S3Error::from(&e))?;
    let bucket = classified.bucket.clone().unwrap_or_default();
    let (mut allowed, mut denied) = (Vec::new(), Vec::new());
    let mut first_decision: Option<Decision> = None;
    let ((), consulted) = crate::policy::trace::traced(|| {
        for object in &request.objects {
            let action = if object.version_id.is_some() {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            };
            let resource = crate::s3::classify::object_arn(&bucket, &object.key);
            let d = decider.authorize(&crate::policy::Request {
                action,
                resource: &resource,
                context,
            });
            if d.allowed {
                allowed.push(object);
            } else {
                denied.push(object);
            }
            if first_decision
                .as_ref()
                .is_none_or(|f| f.allowed && !d.allowed)
            {
                first_decision = Some(d);
            }
        }
    });
    ctx.audit.update(|r| {
        r.actions = vec!["s3:DeleteObject".into()];
        r.decision =
            first_decision.map(|d| DecisionInfo::from_owned(d).with_conditions(consulted, context));
    });
    // Every key with its outcome; allowed keys are settled by upstream's answer.
    let record_outcomes = |upstream: Option<&[ObjectOutcome]>| {
        let outcome = |o: &crate::s3::delete_objects::ObjectIdentifier, allowed: bool| {
            let settled = upstream.and_then(|u| {
                u.iter().find(|x| {
                    x.key == o.key && (x.version_id.is_none() || x.version_id == o.version_id)
                })
            });
            ObjectOutcome {
                key: o.key.clone(),
                version_id: o.version_id.clone(),
                outcome: match (allowed, upstream, settled) {
                    (false, _, _) => "denied",
                    (true, Some(_), Some(x)) => x.outcome,
                    // A quiet result names only the keys that failed.
                    (true, Some(_), None) => "deleted",
                    (true, None, _) => "error",
                },
                error_code: if allowed {
                    settled.and_then(|x| x.error_code.clone())
                } else {
                    Some("AccessDenied".to_string())
                },
            }
        };
        let objects = request
            .objects
            .iter()
            .map(|o| outcome(o, allowed.iter().any(|a| std::ptr::eq(*a, o))))
            .collect();
        ctx.audit.update(|r| r.parameters.objects = objects);
    };
    let errors = denied_errors(&denied);
    if allowed.is_empty() {
        record_outcomes(Some(&[]));
        return Ok(xml_ok(result_with(&errors)));
    }
    let forwarded = Bytes::from(request.to_xml(&allowed));
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    let md5 = {
        use md5::Digest;
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            md5::Md5::digest(&forwarded),
        )
    };
    headers.insert(
        "content-md5",
        HeaderValue::from_str(&md5).map_err(|_| S3Error::internal_error())?,
    );
    let outgoing = Outgoing::whole(
        Method::POST,
        classified.bucket.clone(),
        None,
        classified.forward_query.clone(),
        headers,
        forwarded,
    );
    let resp = state
        .upstream
        .send(outgoing)
        .await
        .map_err(|e| body_failure_or(state, &BodyFailure::default(), e, ctx))?;
    ctx.audit.update(|r| {
        r.upstream_request_id =
            header_str(resp.headers(), &crate::http1::X_AMZ_REQUEST_ID).map(str::to_string)
    });
    if !resp.status().is_success() {
        record_outcomes(None);
        return Ok(relay(state, resp));
    }
    // Read whole (bounded) even with nothing to merge: the audit record
    // names each key's outcome.
    let (mut resp_parts, resp_body) = resp.into_parts();
    let upstream_body = read_limited(resp_body, MAX_REWRITTEN_RESPONSE)
        .await
        .map_err(|_| upstream_bad_gateway("delete result too large or cut off"))?;
    let text = String::from_utf8(upstream_body.to_vec())
        .map_err(|_| upstream_bad_gateway("delete result is not UTF-8"))?;
    record_outcomes(Some(&delete_result_outcomes(&text)));
    if denied.is_empty() {
        strip_upstream_headers(&mut resp_parts.headers);
        return Ok(Response::from_parts(
            resp_parts,
            Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed(),
        ));
    }
    let merged = merge_into_result(&text, &errors)
        .ok_or_else(|| upstream_bad_gateway("delete result is not a DeleteResult"))?;
    Ok(xml_ok(merged))
}

fn xml_ok(body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_the_connection_header_names_are_stripped_but_the_framing() {
        let mut h = HeaderMap::new();
        h.append("connection", HeaderValue::from_static("keep-alive, X-Hop"));
        h.append(
            "connection",
            HeaderValue::from_static(" x-other ,content-length,"),
        );
        h.append(
            "connection",
            HeaderValue::from_bytes(b"x-third, caf\xe9").unwrap(),
        );
        for name in [
            "x-hop",
            "x-other",
            "x-third",
            "x-kept",
            "content-length",
            "keep-alive",
        ] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        for name in &STRIPPED[1..] {
            h.append(*name, HeaderValue::from_static("1"));
        }
        strip_upstream_headers(&mut h);
        let mut left: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-kept"]);
    }

    /// The names compared by text are the names stripped, and no other of
    /// the names HTTP and S3 answers carry.
    #[test]
    fn the_stripped_names_are_those_compared_by_text() {
        for name in STRIPPED {
            assert!(is_stripped(name), "{name}");
        }
        let kept = [
            "accept-ranges",
            "age",
            "cache-control",
            "content-disposition",
            "content-encoding",
            "content-language",
            "content-length",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expires",
            "last-modified",
            "location",
            "vary",
            "www-authenticate",
            "x-amz-version-id",
            "x-amz-delete-marker",
            "x-amz-server-side-encryption",
            "x-amz-storage-class",
            "x-amz-meta-connection",
            "x-amz-id-3",
            "x-amz-request-i",
            "connectio",
            "connections",
            "te",
            "trailers",
            "upgrade-insecure-requests",
            "proxy-authorization",
            "keep-alive2",
            "servers",
            "",
        ];
        for name in kept {
            assert!(!is_stripped(name), "{name}");
        }
        // An answer carrying every stripped name more than once loses them all.
        let mut h = HeaderMap::new();
        for name in STRIPPED.iter().chain(&STRIPPED) {
            h.append(*name, HeaderValue::from_static("x"));
        }
        h.append("etag", HeaderValue::from_static("\"e\""));
        strip_upstream_headers(&mut h);
        assert_eq!(h.keys().map(|n| n.as_str()).collect::<Vec<_>>(), ["etag"]);
    }

    #[test]
    fn uri_len_is_the_displayed_length() {
        for uri in [
            "/",
            "/bucket/key?x-id=GetObject&X-Amz-Signature=ab",
            "/bucket?",
            "*",
            "http://example.com",
            "http://example.com:9000/b/k%20x?versionId=1",
            "example.com:443",
        ] {
            let u: http::Uri = uri.parse().unwrap();
            assert_eq!(uri_len(&u), u.to_string().len(), "{uri}");
        }
    }
}
