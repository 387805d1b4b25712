//! The listener: TLS with HTTP/1.1 and HTTP/2, virtual-hosted-style
//! addressing, and a client that disconnects mid-upload aborting upstream.

use std::time::SystemTime;

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CAROL_KEY: &str = "CAROLKEYFORTESTS0001";
const CAROL_SECRET: &str = "carol-secret-for-tests-00000000000000000";
/// carol may read only over TLS 1.3.
const CAROL: &str = r#"
[[users]]
name = "carol"
access_keys = [{ access_key_id = "CAROLKEYFORTESTS0001", secret_access_key = "carol-secret-for-tests-00000000000000000" }]
policies = [{ name = "tls", document = '''{"Statement": [{"Sid": "OnlyTls13", "Effect": "Allow", "Action": "s3:GetObject",
  "Resource": "arn:aws:s3:::shared/*",
  "Condition": {"NumericGreaterThanEquals": {"s3:TlsVersion": "1.3"}, "Bool": {"aws:SecureTransport": "true"}}}]}''' }]
"#;

struct Tls {
    cert_pem: String,
    dir: tempfile::TempDir,
}

fn self_signed() -> Tls {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("cert.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.signing_key.serialize_pem()).unwrap();
    Tls {
        cert_pem: key.cert.pem(),
        dir,
    }
}

fn tls_client(
    cert_pem: &str,
    http2: bool,
) -> hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_client_config(cert_pem.as_bytes()))
        .https_only();
    let connector = if http2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let mut b = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    b.http2_only(http2);
    b.build(connector)
}

async fn mock() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("body"))
        .mount(&mock)
        .await;
    mock
}

#[tokio::test]
async fn tls_serves_http1_and_http2() {
    let upstream = mock().await;
    let tls = self_signed();
    let dir = tempfile::TempDir::new().unwrap();
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n\n{CAROL}",
        tls.dir.path().join("cert.pem").display(),
        tls.dir.path().join("key.pem").display()
    );
    let text = config_text(dir.path(), &url_upstream(&upstream.uri()), &extra);
    let h = Harness::start(dir, &text).await;
    assert!(h.endpoint().starts_with("https://"));
    let url = format!(
        "https://localhost:{}/shared/alice/x",
        h.server.local_addr().port()
    );
    for (http2, key, secret) in [
        (false, ALICE_KEY, ALICE_SECRET),
        (true, ALICE_KEY, ALICE_SECRET),
        (false, CAROL_KEY, CAROL_SECRET),
    ] {
        let signed = sign_request("GET", &url, &[], b"", key, secret, SystemTime::now());
        let mut req = http::Request::builder().method("GET").uri(&url);
        for (n, v) in &signed.headers {
            // HTTP/2 carries the host as :authority; the signature covers it either way.
            if n != "host" {
                req = req.header(n, v);
            }
        }
        let resp = tls_client(&tls.cert_pem, http2)
            .request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let version = resp.version();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "http2={http2}: {body:?}");
        assert_eq!(&body[..], b"body");
        assert_eq!(version == http::Version::HTTP_2, http2);
    }
    let records = h.audit(3).await;
    assert!(records.iter().all(|r| r["tls"] == true));
    assert_eq!(records[2]["decision"]["statement"], "OnlyTls13");
    h.server.shutdown().await;
}

/// Sends a GET signed by alice to loopback while presenting `host` as the
/// Host header; returns the raw response.
async fn raw_get(port: u16, host: &str, path: &str) -> String {
    let url = format!("http://{host}{path}");
    let signed = sign_request(
        "GET",
        &url,
        &[],
        b"",
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    for (n, v) in &signed.headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("connection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).await.unwrap();
    resp
}

#[tokio::test]
async fn virtual_hosted_style_requests_address_the_bucket() {
    let upstream = mock().await;
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text(dir.path(), &url_upstream(&upstream.uri()), "").replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\ndomains = [\"s3.localtest\"]",
    );
    let h = Harness::start(dir, &text).await;
    let port = h.server.local_addr().port();
    let host = format!("shared.s3.localtest:{port}");
    let resp = raw_get(port, &host, "/alice/v.txt").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let reqs = upstream.received_requests().await.unwrap();
    assert_eq!(reqs[0].url.path(), "/shared/alice/v.txt");

    // The same key through the virtual host for another user's prefix is denied.
    let resp = raw_get(port, &host, "/bob/v.txt").await;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    h.server.shutdown().await;
}

/// Reads one request from a raw upstream socket until EOF; returns how many
/// body bytes arrived after the headers.
async fn upstream_body_bytes(listener: tokio::net::TcpListener) -> usize {
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let _ = sock.read_to_end(&mut buf).await;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(buf.len());
    buf.len() - end
}

#[tokio::test]
async fn client_disconnect_mid_upload_aborts_upstream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let h = Harness::upstream(&upstream).await;
    let seen = tokio::spawn(upstream_body_bytes(listener));
    let total = 4 * 1024 * 1024;
    let url = format!("{}/shared/alice/big.bin", h.endpoint());
    let s = sign_request(
        "PUT",
        &url,
        &[("content-length", &total.to_string())],
        &vec![0u8; total],
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    let mut sock = tokio::net::TcpStream::connect(h.server.local_addr())
        .await
        .unwrap();
    let mut head = "PUT /shared/alice/big.bin HTTP/1.1\r\n".to_string();
    for (n, v) in &s.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&vec![0u8; 1024 * 1024]).await.unwrap();
    drop(sock);
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), seen)
        .await
        .unwrap()
        .unwrap();
    assert!(
        got < total,
        "upstream received the whole body ({got} bytes)"
    );
    let records = h.audit(1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["operation"], "PutObject");
    h.server.shutdown().await;
}
