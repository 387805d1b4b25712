//! The upstream S3: a pooled HTTP(S) client, the proxy's upstream credentials,
//! and re-signing. Every forwarded request is built here from the parts the
//! pipeline authorized (bucket, key, query, headers) and signed with SigV4 for
//! the proxy's own key; nothing of the client's authentication goes upstream.

pub mod credentials;
pub mod h1;
mod pool;
mod progress;
mod signer;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body::Body as _;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::Notify;

use crate::auth::canonical::uri_encode_into;
use crate::auth::payload::BoxError;
use crate::auth::signing::SigningKeyCache;
use crate::config::UpstreamConfig;
pub use credentials::UpstreamCredentials;
pub use pool::ReplyBody;

pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// Why a request could not be relayed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to upstream: {0}")]
    Connect(String),
    #[error("upstream sent no response within {0:?}")]
    Timeout(Duration),
    #[error("upstream request failed: {0}")]
    Request(String),
    #[error("cannot obtain upstream credentials: {0}")]
    Credentials(String),
    #[error("cannot sign the upstream request: {0}")]
    Signing(String),
    #[error("header {0:?} has a value that is not visible ASCII")]
    HeaderValue(String),
    #[error("upstream tls: {0}")]
    Tls(String),
    #[error("invalid upstream url: {0}")]
    Url(String),
}

impl UpstreamError {
    /// Every [`UpstreamError::kind`], so metrics can show each at 0.
    pub const KINDS: [&'static str; 8] = [
        "connect",
        "timeout",
        "request",
        "credentials",
        "signing",
        "header",
        "tls",
        "url",
    ];

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Request(_) => "request",
            UpstreamError::Credentials(_) => "credentials",
            UpstreamError::Signing(_) => "signing",
            UpstreamError::HeaderValue(_) => "header",
            UpstreamError::Tls(_) => "tls",
            UpstreamError::Url(_) => "url",
        }
    }
}

/// Where upstream is and how to address buckets there.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub scheme: String,
    /// `host[:port]`
    pub authority: String,
    pub path_style: bool,
    pub region: String,
}

impl Endpoint {
    pub fn parse(url: &str, region: &str, path_style: bool) -> Result<Endpoint, UpstreamError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| UpstreamError::Url(url.to_string()))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| UpstreamError::Url(url.to_string()))?;
        let authority = uri
            .authority()
            .ok_or_else(|| UpstreamError::Url(url.to_string()))?;
        Ok(Endpoint {
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            path_style,
            region: region.to_string(),
        })
    }
}

/// A request as authorized, ready to be re-signed and sent.
pub struct Outgoing {
    pub method: Method,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    /// Only headers the pipeline decided to forward.
    pub headers: HeaderMap,
    /// `x-amz-content-sha256` for upstream: a hex digest or `UNSIGNED-PAYLOAD`.
    pub payload_hash: String,
    pub body: UpstreamBody,
    /// Notified when the body has been fully read (or failed): the response
    /// timeout starts then, so long uploads are never cut off.
    pub body_done: Arc<Notify>,
}

impl Outgoing {
    /// A request whose body is already whole in memory (control documents,
    /// buffered parts): its length and SHA-256 are known, so it is sent with
    /// `Content-Length` and a signed payload hash, and its body is done.
    pub fn whole(
        method: Method,
        bucket: Option<String>,
        key: Option<String>,
        query: Vec<(String, String)>,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Outgoing {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let body_done = Arc::new(Notify::new());
        body_done.notify_one();
        Outgoing {
            method,
            bucket,
            key,
            query,
            headers,
            payload_hash: crate::auth::signing::sha256_hex(&body),
            body: http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(
                http_body_util::Full::new(body),
                |e| match e {},
            )),
            body_done,
        }
    }
}

thread_local! {
    /// The data-plane worker this thread runs (see `server`), if any.
    static WORKER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Marks this thread as data-plane worker `index`: its requests use that
/// worker's own connection pool.
pub fn enter_worker(index: usize) {
    WORKER.set(Some(index));
}

pub struct Upstream {
    /// Connections pooled per data-plane worker, then for every other
    /// thread. A connection is driven by a task on the runtime that opened
    /// it: a worker reusing another worker's connection would hand every
    /// request and response across threads, a wake-up each way.
    pool: pool::Pool,
    endpoint: Endpoint,
    credentials: UpstreamCredentials,
    response_timeout: Duration,
    idle_timeout: Duration,
    /// `kSigning` for the upstream credentials, per day and region.
    keys: SigningKeyCache,
    /// The endpoint's scheme, authority and `Host`, parsed once: a
    /// path-style request's URI is built from them and its path and query
    /// rather than parsed from a URL each time.
    base: Base,
}

#[derive(Debug)]
struct Base {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
}

/// Where a request goes upstream: its URI, encoded exactly as it is signed,
/// and its `Host`.
struct Address {
    uri: Uri,
    host: HeaderValue,
}

/// Roots for upstream TLS: the system's, Mozilla's when the system has none,
/// plus a private CA when configured (on-premises S3-compatible stores).
pub(crate) fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, UpstreamError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| UpstreamError::Tls(format!("cannot read {path:?}: {e}")))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| UpstreamError::Tls(format!("{path:?}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| UpstreamError::Tls(format!("{path:?}: {e}")))?;
        }
    }
    // One explicit provider: several are linked in, and rustls will not guess.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn https_connector(
    connect_timeout: Duration,
    tls: rustls::ClientConfig,
) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

impl Upstream {
    /// An upstream for `workers` data-plane workers (see [`enter_worker`]).
    pub fn new(
        endpoint: Endpoint,
        credentials: UpstreamCredentials,
        cfg: &UpstreamConfig,
        workers: usize,
    ) -> Result<Upstream, UpstreamError> {
        let bad = || UpstreamError::Url(format!("{}://{}", endpoint.scheme, endpoint.authority));
        let base = Base {
            scheme: Scheme::try_from(endpoint.scheme.as_str()).map_err(|_| bad())?,
            authority: Authority::try_from(endpoint.authority.as_str()).map_err(|_| bad())?,
            host: HeaderValue::from_str(&endpoint.authority).map_err(|_| bad())?,
        };
        let tls = tls_config(cfg.ca_file.as_deref())?;
        let connector = https_connector(Duration::from_millis(cfg.connect_timeout_ms), tls);
        Ok(Upstream {
            pool: pool::Pool::new(connector, workers + 1),
            endpoint,
            credentials,
            response_timeout: Duration::from_secs(cfg.response_timeout_secs),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_secs),
            keys: SigningKeyCache::new(16),
            base,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// This thread's pool slot: its worker's, or the shared one of other
    /// threads.
    fn slot(&self) -> usize {
        let last = self.pool.slots() - 1;
        WORKER.get().map_or(last, |w| w.min(last))
    }

    /// The address of an authorized request, its path and query encoded
    /// exactly as they will be signed.
    fn address(&self, out: &Outgoing) -> Result<Address, UpstreamError> {
        let mut target = String::with_capacity(128);
        target.push('/');
        let virtual_host = match (&out.bucket, self.endpoint.path_style) {
            (Some(b), false) => Some(format!("{b}.{}", self.endpoint.authority)),
            (Some(b), true) => {
                target.push_str(b);
                if out.key.is_some() {
                    target.push('/');
                }
                None
            }
            (None, _) => None,
        };
        if let Some(k) = &out.key {
            uri_encode_into(&mut target, k, true);
        }
        for (i, (n, v)) in out.query.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            uri_encode_into(&mut target, n, false);
            target.push('=');
            uri_encode_into(&mut target, v, false);
        }
        let (authority, host) = match virtual_host {
            Some(name) => {
                let bad = || UpstreamError::Url(name.clone());
                (
                    Authority::try_from(name.as_str()).map_err(|_| bad())?,
                    HeaderValue::from_str(&name).map_err(|_| bad())?,
                )
            }
            None => (self.base.authority.clone(), self.base.host.clone()),
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.base.scheme.clone());
        parts.authority = Some(authority);
        parts.path_and_query = Some(
            PathAndQuery::from_maybe_shared(Bytes::from(target))
                .map_err(|e| UpstreamError::Url(e.to_string()))?,
        );
        let uri = Uri::from_parts(parts).map_err(|e| UpstreamError::Url(e.to_string()))?;
        Ok(Address { uri, host })
    }

    /// Whether upstream answers at all: a signed ListBuckets within `within`.
    /// Any HTTP response counts, since least-privilege upstream keys may
    /// well be refused ListBuckets.
    pub async fn probe(&self, within: Duration) -> Result<(), UpstreamError> {
        let done = Arc::new(Notify::new());
        done.notify_one();
        let out = Outgoing {
            method: Method::GET,
            bucket: None,
            key: None,
            query: Vec::new(),
            headers: HeaderMap::new(),
            payload_hash: crate::auth::payload::UNSIGNED_PAYLOAD.to_string(),
            body: http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(
                http_body_util::Empty::new(),
                |e| match e {},
            )),
            body_done: done,
        };
        match tokio::time::timeout(within, self.send(out)).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(UpstreamError::Timeout(within)),
        }
    }

    /// Lets go of pooled connections upstream closed or that idled past
    /// their time (called every second).
    pub fn sweep_idle(&self) {
        self.pool.sweep();
    }

    /// Re-signs and sends a request; resolves when upstream's headers arrive.
    pub async fn send(&self, out: Outgoing) -> Result<Response<ReplyBody>, UpstreamError> {
        let Address { uri, host } = self.address(&out)?;
        let creds = self.credentials.get().await?;
        let mut headers = out.headers;
        // A PUT or POST with nothing to send says so (a client over HTTP/2
        // need not); neither hyper nor the bare exchange adds the length
        // of a body that has ended before it is sent.
        if (out.method == Method::PUT || out.method == Method::POST)
            && out.body.is_end_stream()
            && !headers.contains_key(http::header::CONTENT_LENGTH)
        {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        headers.insert(http::header::HOST, host);
        signer::sign(
            &out.method,
            uri.path(),
            &out.query,
            &mut headers,
            &out.payload_hash,
            &creds,
            &self.endpoint.region,
            &self.keys,
            chrono::Utc::now(),
        )?;
        let progress = progress::Progress::new();
        let body =
            http_body_util::BodyExt::boxed(progress::ProgressBody::new(out.body, progress.clone()));
        let mut req = Request::new(body);
        *req.method_mut() = out.method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;

        let response = self.pool.send(self.slot(), req);
        tokio::pin!(response);
        let timeout = self.response_timeout;
        tokio::select! {
            r = &mut response => r,
            _ = async {
                out.body_done.notified().await;
                tokio::time::sleep(timeout).await;
            } => Err(UpstreamError::Timeout(timeout)),
            // Upstream stopped reading the request body: dropping the
            // request aborts it, so upstream never completes the object.
            _ = progress.stalled(self.idle_timeout) => Err(UpstreamError::Timeout(self.idle_timeout)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// SigV4 settings with S3's rules: the path neither double-encoded nor
/// normalised, and the payload hash sent as `x-amz-content-sha256`.
pub fn s3_signing_settings() -> aws_sigv4::http_request::SigningSettings {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SigningSettings, UriPathNormalizationMode,
    };
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(bucket: Option<&str>, key: Option<&str>, query: &[(&str, &str)]) -> Outgoing {
        Outgoing {
            method: Method::GET,
            bucket: bucket.map(str::to_string),
            key: key.map(str::to_string),
            query: query
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            headers: HeaderMap::new(),
            payload_hash: "UNSIGNED-PAYLOAD".into(),
            body: http_body_util::Empty::new().map_err(|e| match e {}).boxed(),
            body_done: Arc::new(Notify::new()),
        }
    }

    fn upstream(path_style: bool) -> Upstream {
        let cfg: crate::config::UpstreamConfig =
            toml::from_str("endpoint = \"http://127.0.0.1:9100\"").unwrap();
        Upstream::new(
            Endpoint::parse("http://127.0.0.1:9100", "us-east-1", path_style).unwrap(),
            UpstreamCredentials::fixed("AKIDUPSTREAM0001", "secretsecretsecret"),
            &cfg,
            1,
        )
        .unwrap()
    }

    use http_body_util::BodyExt;

    #[test]
    fn every_error_kind_is_listed_for_metrics() {
        let errors = [
            UpstreamError::Connect(String::new()),
            UpstreamError::Timeout(Duration::ZERO),
            UpstreamError::Request(String::new()),
            UpstreamError::Credentials(String::new()),
            UpstreamError::Signing(String::new()),
            UpstreamError::HeaderValue(String::new()),
            UpstreamError::Tls(String::new()),
            UpstreamError::Url(String::new()),
        ];
        let kinds: Vec<_> = errors.iter().map(UpstreamError::kind).collect();
        assert_eq!(kinds, UpstreamError::KINDS);
    }

    /// The URI as sent and signed, and the `Host` beside it.
    fn address_of(u: &Upstream, out: &Outgoing) -> (String, String) {
        let a = u.address(out).unwrap();
        (a.uri.to_string(), a.host.to_str().unwrap().to_string())
    }

    #[test]
    fn urls_encode_keys_verbatim() {
        let u = upstream(true);
        let here = |uri: &str| (uri.to_string(), "127.0.0.1:9100".to_string());
        assert_eq!(
            address_of(&u, &outgoing(None, None, &[])),
            here("http://127.0.0.1:9100/")
        );
        assert_eq!(
            address_of(
                &u,
                &outgoing(
                    Some("b1b"),
                    None,
                    &[("list-type", "2"), ("prefix", "a/b c")]
                )
            ),
            here("http://127.0.0.1:9100/b1b?list-type=2&prefix=a%2Fb%20c")
        );
        assert_eq!(
            address_of(
                &u,
                &outgoing(Some("b1b"), Some("a/../x//y+z%"), &[("acl", "")])
            ),
            here("http://127.0.0.1:9100/b1b/a/../x//y%2Bz%25?acl=")
        );
        // A key that is all reserved bytes, and a query value with `?`, `#`
        // and `&`: nothing in them may end the path or the query early.
        let a = u
            .address(&outgoing(Some("b1b"), Some("?#&= /"), &[("p", "?#&=")]))
            .unwrap();
        assert_eq!(a.uri.path(), "/b1b/%3F%23%26%3D%20/");
        assert_eq!(a.uri.query(), Some("p=%3F%23%26%3D"));
        let v = upstream(false);
        assert_eq!(
            address_of(&v, &outgoing(Some("b1b"), Some("k"), &[])),
            (
                "http://b1b.127.0.0.1:9100/k".to_string(),
                "b1b.127.0.0.1:9100".to_string()
            )
        );
        assert_eq!(
            address_of(&v, &outgoing(None, None, &[])),
            here("http://127.0.0.1:9100/")
        );
        // A bucket name no authority can carry is refused, not sent.
        assert!(matches!(
            v.address(&outgoing(Some("a b"), Some("k"), &[])),
            Err(UpstreamError::Url(_))
        ));
    }
}
