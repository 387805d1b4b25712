//! The embedded store's HTTP side: who may call it and how responses are finished.
//!
//! - Authentication is s3s's SigV4 verification with the one configured key; an unknown key
//!   is `403 InvalidAccessKeyId`, as in S3.
//! - Access: only requests signed with SigV4 for service `s3` in the store's region pass.
//!   Anonymous requests are `403 AccessDenied`; SigV2 (which s3s would accept) and POST forms
//!   too; a credential scope for another region is `400 AuthorizationHeaderMalformed`.
//! - Every response carries `x-amz-request-id` and `x-amz-id-2`; error bodies get the same
//!   `<RequestId>` and `<HostId>`; a 304 has no body.
//! - The accept loop serves HTTP/1.1 and h2c on loopback and drains connections on shutdown.

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::S3Service;
use s3s::{S3Result, s3_error};

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// How long shutdown waits for open connections before cutting them.
const DRAIN: Duration = Duration::from_secs(10);
/// Error bodies up to this size get a RequestId; s3s's are a few hundred bytes.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// SimpleAuth's lookup, with S3's error for an unknown key (SimpleAuth answers NotSignedUp).
pub(super) struct KeyAuth(pub SimpleAuth);

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.0.lookup(access_key).cloned().ok_or_else(|| {
            s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )
        })
    }
}

/// Admits SigV4-signed requests for `s3` in one region; s3s has verified the signature by now.
pub(super) struct SigV4Only {
    pub region: String,
}

/// `(region, service)` of a SigV4 credential scope, from the Authorization header or the
/// presigned `X-Amz-Credential` query parameter.
fn sigv4_scope(headers: &http::HeaderMap, uri: &http::Uri) -> Option<(String, String)> {
    let credential = match headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => {
            let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?;
            rest.split(',')
                .find_map(|p| p.trim().strip_prefix("Credential="))
                .map(str::to_owned)?
        }
        None => form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v.into_owned())?,
    };
    // <access key>/<date>/<region>/<service>/aws4_request
    let mut parts = credential.rsplitn(5, '/');
    let (_terminator, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    Some((region.to_owned(), service.to_owned()))
}

/// SHA-256 of the empty payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A signed hex payload hash on a request without a body that is not the empty hash.
///
/// s3s checks the hash only while a body is read, so a GET or DELETE signed with the hash of
/// something else would pass; S3 refuses it.
fn payload_hash_mismatch(headers: &http::HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(hash) = header("x-amz-content-sha256") else {
        return false;
    };
    let is_hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    let empty = header("content-length").is_none_or(|n| n.trim() == "0")
        && !headers.contains_key(http::header::TRANSFER_ENCODING);
    is_hex && empty && !hash.eq_ignore_ascii_case(EMPTY_SHA256)
}

#[async_trait::async_trait]
impl S3Access for SigV4Only {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        let Some((region, service)) = sigv4_scope(cx.headers(), cx.uri()) else {
            return Err(s3_error!(
                AccessDenied,
                "This store accepts only AWS Signature Version 4 requests"
            ));
        };
        if service != "s3" {
            return Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; incorrect service \"{service}\". This endpoint belongs to \"s3\"."
            ));
        }
        if payload_hash_mismatch(cx.headers()) {
            return Err(super::checksum::custom_error(
                "XAmzContentSHA256Mismatch",
                http::StatusCode::BAD_REQUEST,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        if region != self.region {
            return Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; the region '{region}' is wrong; expecting '{}'",
                self.region
            ));
        }
        Ok(())
    }
}

fn request_ids() -> (String, String) {
    use base64::Engine as _;
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    let host = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    (
        id.get(..16).unwrap_or(&id).to_owned(),
        base64::engine::general_purpose::STANDARD.encode(host),
    )
}

/// Answers one request through s3s, then finishes the response as S3 would.
async fn handle(
    service: S3Service,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<s3s::Body>, Infallible> {
    let (request_id, host_id) = request_ids();
    let resp = match service.call(req.map(s3s::Body::from)).await {
        Ok(resp) => resp,
        Err(e) => {
            warn!(error = ?e, "s3s could not answer a request");
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
            let mut resp = http::Response::new(s3s::Body::from(Bytes::from_static(xml.as_bytes())));
            *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/xml"),
            );
            resp
        }
    };
    Ok(finish(resp, &request_id, &host_id).await)
}

async fn finish(
    resp: http::Response<s3s::Body>,
    request_id: &str,
    host_id: &str,
) -> http::Response<s3s::Body> {
    let (mut parts, body) = resp.into_parts();
    for (name, value) in [("x-amz-request-id", request_id), ("x-amz-id-2", host_id)] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            parts.headers.insert(name, v);
        }
    }
    if parts.status == http::StatusCode::NOT_MODIFIED {
        parts.headers.remove(http::header::CONTENT_TYPE);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return http::Response::from_parts(parts, s3s::Body::empty());
    }
    let is_xml_error = (parts.status.is_client_error() || parts.status.is_server_error())
        && parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("xml"))
        && body
            .size_hint()
            .upper()
            .is_some_and(|n| n <= MAX_ERROR_BODY);
    if !is_xml_error {
        return http::Response::from_parts(parts, body);
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = match text.rfind("</Error>") {
        Some(at) if !text.contains("<RequestId>") => {
            format!(
                "{}<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId>{}",
                &text[..at],
                &text[at..]
            )
        }
        _ => text.into_owned(),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    http::Response::from_parts(parts, s3s::Body::from(Bytes::from(text)))
}

/// Accepts connections until `stop` fires (or its sender is dropped), then drains them.
pub(super) async fn serve(
    listener: TcpListener,
    service: S3Service,
    mut stop: oneshot::Receiver<()>,
    lock: std::fs::File,
) {
    let graceful = GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    debug!(%peer, "embedded store connection");
                    // Small responses go out in two writes (head, body); with Nagle on, the
                    // second waits for the client's delayed ACK: 40 ms per request.
                    let _ = socket.set_nodelay(true);
                    let service = service.clone();
                    let svc = hyper::service::service_fn(move |req| handle(service.clone(), req));
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(socket), svc).into_owned());
                    conns.spawn(async move {
                        if let Err(e) = conn.await {
                            debug!(error = %e, "embedded store connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "embedded store could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut stop => break,
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("embedded store connections did not finish in time; closing them");
        conns.abort_all();
    }
    while conns.join_next().await.is_some() {}
    drop(lock);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_header_and_query() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        let uri: http::Uri = "/b/k".parse().expect("uri");
        assert_eq!(
            sigv4_scope(&headers, &uri),
            Some(("eu-west-1".to_owned(), "s3".to_owned()))
        );

        let uri: http::Uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
            .parse()
            .expect("uri");
        assert_eq!(
            sigv4_scope(&http::HeaderMap::new(), &uri),
            Some(("us-east-1".to_owned(), "s3".to_owned()))
        );

        let mut v2 = http::HeaderMap::new();
        v2.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("AWS AKID:signature"),
        );
        assert_eq!(sigv4_scope(&v2, &"/b".parse().expect("uri")), None);
    }

    #[test]
    fn payload_hash_of_bodiless_requests() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, http::HeaderValue::from_static(v));
            }
            h
        };
        let other = "0000000000000000000000000000000000000000000000000000000000000000";
        assert!(payload_hash_mismatch(&headers(&[(
            "x-amz-content-sha256",
            other
        )])));
        assert!(payload_hash_mismatch(&headers(&[
            ("x-amz-content-sha256", other),
            ("content-length", "0")
        ])));
        assert!(!payload_hash_mismatch(&headers(&[(
            "x-amz-content-sha256",
            EMPTY_SHA256
        )])));
        assert!(!payload_hash_mismatch(&headers(&[(
            "x-amz-content-sha256",
            "UNSIGNED-PAYLOAD"
        )])));
        // With a body, s3s verifies the hash while the body is read.
        assert!(!payload_hash_mismatch(&headers(&[
            ("x-amz-content-sha256", other),
            ("content-length", "5")
        ])));
    }

    #[tokio::test]
    async fn error_bodies_get_the_request_id() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code></Error>";
        let mut resp = http::Response::new(s3s::Body::from(Bytes::from_static(xml.as_bytes())));
        *resp.status_mut() = http::StatusCode::NOT_FOUND;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        let resp = finish(resp, "REQ123", "HOST456").await;
        assert_eq!(
            resp.headers()
                .get("x-amz-request-id")
                .and_then(|v| v.to_str().ok()),
            Some("REQ123")
        );
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        assert!(body.ends_with("<Code>NoSuchKey</Code><RequestId>REQ123</RequestId><HostId>HOST456</HostId></Error>"), "{body}");
    }
}
