//! An upstream over HTTPS, trusted through `[upstream] ca_file`: HTTP/1.1 or
//! HTTP/2 as TLS negotiates (ALPN), connections kept and reused, and a
//! certificate the CA file does not vouch for refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What the TLS upstream saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<(http::Version, String, bool)>>,
}

/// A TLS server on loopback offering only `alpn` that answers every request
/// `200 body`, recording its version, path and whether it was signed.
async fn tls_upstream(
    dir: &std::path::Path,
    alpn: &[u8],
) -> (String, std::path::PathBuf, Arc<Seen>) {
    let (cert, key, _) = self_signed_cert(dir);
    let certs = rustls_pemfile::certs(&mut std::fs::read(&cert).unwrap().as_slice())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let private = rustls_pemfile::private_key(&mut std::fs::read(&key).unwrap().as_slice())
        .unwrap()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            record.connections.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        record.requests.lock().unwrap().push((
                            req.version(),
                            req.uri().path().to_string(),
                            req.headers()
                                .get("authorization")
                                .is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256")),
                        ));
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"body"),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, cert, seen)
}

fn https_upstream(url: &str, ca: &std::path::Path) -> String {
    format!("{}ca_file = \"{}\"\n", url_upstream(url), ca.display())
}

async fn get_through(h: &Harness, path: &str) -> (u16, String) {
    let url = format!("{}{path}", h.endpoint());
    let (status, _, body) = send(&signed_get(&url, ALICE_KEY, ALICE_SECRET), Vec::new()).await;
    (status, body)
}

#[tokio::test]
async fn an_https_upstream_is_spoken_to_in_the_protocol_tls_negotiates() {
    for (alpn, version) in [
        (&b"http/1.1"[..], http::Version::HTTP_11),
        (&b"h2"[..], http::Version::HTTP_2),
    ] {
        let certs = tempfile::TempDir::new().unwrap();
        let (url, ca, seen) = tls_upstream(certs.path(), alpn).await;
        let dir = tempfile::TempDir::new().unwrap();
        let text = config_text(dir.path(), &https_upstream(&url, &ca), "");
        let h = Harness::start(dir, &text).await;
        for i in 0..5 {
            let (status, body) = get_through(&h, &format!("/shared/alice/k{i}")).await;
            assert_eq!((status, body.as_str()), (200, "body"), "{version:?}");
        }
        let requests = seen.requests.lock().unwrap().clone();
        // The start-up probe (a ListBuckets) comes first.
        let objects: Vec<_> = requests.iter().filter(|r| r.1 != "/").collect();
        assert_eq!(objects.len(), 5, "{requests:?}");
        for (i, (v, path, signed)) in objects.iter().enumerate() {
            assert_eq!(*v, version);
            assert_eq!(path, &format!("/shared/alice/k{i}"));
            assert!(signed, "the proxy signs for upstream");
        }
        // One after the other, the five requests share a connection (the
        // probe runs on another runtime and may have one of its own).
        let opened = seen.connections.load(Ordering::SeqCst);
        assert!(opened <= 2, "{opened} connections for {version:?}");
    }
}

#[tokio::test]
async fn an_upstream_certificate_outside_ca_file_is_refused() {
    let certs = tempfile::TempDir::new().unwrap();
    let (url, _, seen) = tls_upstream(certs.path(), b"http/1.1").await;
    // Another self-signed certificate as the only trusted root.
    let other = tempfile::TempDir::new().unwrap();
    let (wrong_ca, _, _) = self_signed_cert(other.path());
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text(dir.path(), &https_upstream(&url, &wrong_ca), "");
    let h = Harness::start(dir, &text).await;
    let (status, body) = get_through(&h, "/shared/alice/k").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(xml_code(&body), "ServiceUnavailable");
    assert!(seen.requests.lock().unwrap().is_empty());
}
