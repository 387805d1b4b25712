//! The STS and IAM query APIs in the pipeline: recognising their requests,
//! reading the bounded form body, verifying its SigV4 signature (scoped to
//! `iam` or `sts`, payload hash of the body), and answering in the Query
//! protocol's XML, errors included, with one audit record per call.

use crate::auth::canonical::QueryPair;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::State;
use super::authenticate::{record_failure, resolve_key};
use super::body::{ClientBody, read_limited};
use super::pipeline::{ConnInfo, ResponseBody};
use crate::api::{self, ApiError, AuditNote, Call, Params, Service};
use crate::audit::params::{Parameters, ResponseElements};
use crate::audit::{DecisionInfo, SharedGuard};
use crate::auth::sigv4::{AuthorizationV4, Expectations, verify_header};
use crate::auth::{AuthError, RequestParts};
use crate::config::PolicyRecording;
use crate::identity::Principal;
use crate::policy::Context;
use crate::s3::ErrorSource;

/// True for requests to the query APIs: `/` on the service host with an
/// `Action` parameter, or a form POST to `/`. S3 has no operation of either shape.
pub fn is_api_request(
    method: &Method,
    path: &str,
    has_bucket: bool,
    query: &[QueryPair<'_>],
    headers: &HeaderMap,
) -> bool {
    if has_bucket || path != "/" {
        return false;
    }
    if query.iter().any(|(n, _)| n == "Action") {
        return true;
    }
    *method == Method::POST
        && headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The API a request is signed for, which decides the error envelope too.
fn service_of(headers: &HeaderMap) -> Service {
    let scope_service = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| AuthorizationV4::parse(v).ok())
        .map(|a| a.scope.service().to_string());
    match scope_service.as_deref() {
        Some("iam") => Service::Iam,
        _ => Service::Sts,
    }
}

/// Serves one API request; never fails: errors become `<ErrorResponse>`.
pub async fn handle(
    state: &Arc<State>,
    conn: &ConnInfo,
    parts: http::request::Parts,
    body: ClientBody,
    audit: &SharedGuard,
    request_id: &str,
) -> Response<ResponseBody> {
    let service = service_of(&parts.headers);
    let (status, xml) = match run(state, conn, &parts, body, audit, request_id, service).await {
        Ok(xml) => {
            let response = ResponseElements::from_api_response(&xml);
            audit.update(|r| r.response = response);
            (StatusCode::OK, xml)
        }
        Err(e) => {
            let (code, status) = e.code_and_status();
            let source = if status.is_server_error() {
                ErrorSource::Internal
            } else {
                ErrorSource::Client
            };
            if status.is_server_error() {
                tracing::warn!(%request_id, code, message = %e, "api request failed");
            }
            audit.update(|r| {
                r.error_code = Some(code.to_string());
                r.error_message = Some(e.to_string());
                r.error_source = Some(source);
            });
            (status, e.to_xml(service, request_id))
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(xml)).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn run(
    state: &Arc<State>,
    conn: &ConnInfo,
    parts: &http::request::Parts,
    body: ClientBody,
    audit: &SharedGuard,
    request_id: &str,
    service: Service,
) -> Result<String, ApiError> {
    if parts.method != Method::POST && parts.method != Method::GET {
        return Err(ApiError::InvalidHttpRequest(format!(
            "The HTTP method {} is not supported by the query API; use POST (or GET).",
            parts.method
        )));
    }
    let limit = state.config.limits.max_control_body_bytes;
    let body = read_limited(super::body::from_client(body, &state.config.limits), limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    audit.update(|r| r.bytes_in = body.len() as u64);
    let raw_query = parts.uri.query().unwrap_or("");
    let params = Params::parse(raw_query, &body)?;
    if let Some(action) = params.get("Action") {
        let op = format!("{}:{action}", service.signing_name());
        audit.update(|r| r.operation = Some(op.into()));
    }
    let targets = Parameters::from_api(
        |name| params.get(name),
        state.config.audit.session_policy == PolicyRecording::Text,
    );
    audit.update(|r| r.parameters = targets);

    audit.update(|r| {
        r.auth.kind = "header";
        r.auth.signature_version = Some("AWS4-HMAC-SHA256");
    });
    let principal =
        match api::web_identity::unsigned_caller(&params, &state.config.account_id, audit) {
            Some(p) => p,
            None => authenticate(state, parts, raw_query, &body, service, audit)?,
        };

    let mut context = Context::new();
    fill_context(state, conn, &parts.headers, &principal, &mut context);
    let dir = state.identities.snapshot();
    let mut note = AuditNote::default();
    let mut call = Call {
        principal: &principal,
        dir,
        store: &state.store,
        context: &context,
        now: Utc::now(),
        audit: &mut note,
    };
    let result = api::dispatch(service, &params, &mut call, request_id).await;
    audit.update(|r| {
        r.actions = note.actions.iter().cloned().map(Into::into).collect();
        r.decision = note.decision.as_ref().map(|d| DecisionInfo {
            conditions: note.conditions.clone(),
            ..DecisionInfo::from_decision(d)
        });
    });
    result
}

/// Verifies the header signature over the form body and resolves the caller.
fn authenticate(
    state: &State,
    parts: &http::request::Parts,
    raw_query: &str,
    body: &[u8],
    service: Service,
    audit: &SharedGuard,
) -> Result<Principal, ApiError> {
    let refused = |e: AuthError| {
        record_failure(audit, &e);
        ApiError::from(&e)
    };
    let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
        if raw_query.contains("X-Amz-Algorithm=") {
            return Err(ApiError::IncompleteSignature(
                "Query-string authentication is not supported for the IAM and STS APIs; sign the Authorization header.".into(),
            ));
        }
        return Err(ApiError::MissingAuthenticationToken);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::IncompleteSignature("The Authorization header is not ASCII.".into())
    })?;
    let auth = AuthorizationV4::parse(value).map_err(refused)?;
    // IAM is global: SDKs sign it for us-east-1 whatever their region.
    let region = match service {
        Service::Iam if auth.scope.region() == "us-east-1" => "us-east-1",
        _ => state.config.region.as_str(),
    };
    let dir = state.identities.snapshot();
    let token = parts
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    let resolved = resolve_key(&dir, auth.scope.access_key_id(), token, audit).map_err(refused)?;
    let query = crate::auth::canonical::parse_query(raw_query)
        .ok_or_else(|| ApiError::MalformedQueryString("The query string is not valid.".into()))?;
    let payload_hash = crate::auth::signing::sha256_hex(body);
    let rparts = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: raw_query,
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
    };
    let expect = Expectations {
        region,
        service: service.signing_name(),
        now: Utc::now(),
        max_skew_secs: state.config.limits.max_clock_skew_secs,
    };
    verify_header(
        &rparts,
        &query,
        &auth,
        &payload_hash,
        resolved.secret.expose(),
        &expect,
        &state.keys,
    )
    .map_err(refused)?;
    Ok(std::sync::Arc::unwrap_or_clone(resolved.principal))
}

/// The global condition keys of an API call (S3-SEMANTICS §1.7).
fn fill_context(
    state: &State,
    conn: &ConnInfo,
    headers: &HeaderMap,
    principal: &Principal,
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
        headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    ctx.set("aws:RequestedRegion", state.config.region.as_str());
    principal.fill_context(ctx);
}
