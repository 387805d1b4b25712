//! What s3warden forwards, asserted exactly with wiremock as upstream: signed
//! with the upstream key and nothing of the client's, path and query as
//! authorized, body byte-identical; and what it refuses to forward at all.

use std::time::{Duration, SystemTime};

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use s3warden::auth::canonical::parse_query;
use s3warden::auth::sigv4::{AuthorizationV4, Expectations, verify_header};
use s3warden::auth::{RequestParts, SigningKeyCache};
use sha2::{Digest, Sha256};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn mock_upstream() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).insert_header("x-amz-request-id", "UPSTREAMREQ1"))
        .mount(&mock)
        .await;
    mock
}

/// Verifies that a request wiremock received carries a valid SigV4 signature
/// by the upstream key (and only that key).
fn assert_signed_by_upstream(req: &wiremock::Request) {
    let mut headers = http::HeaderMap::new();
    for (n, v) in req.headers.iter() {
        headers.append(n.clone(), v.clone());
    }
    let auth = headers
        .get("authorization")
        .expect("upstream request is signed")
        .to_str()
        .unwrap();
    assert!(
        auth.contains(&format!("Credential={UPSTREAM_KEY}/")),
        "{auth}"
    );
    for (_, v) in headers.iter() {
        let v = v.to_str().unwrap_or("");
        for secret in [ALICE_KEY, ROOT_KEY, ALICE_SECRET, ROOT_SECRET] {
            assert!(
                !v.contains(secret),
                "client credential leaked upstream: {v}"
            );
        }
    }
    let parsed = AuthorizationV4::parse(auth).unwrap();
    let query = req.url.query().unwrap_or("");
    let parts = RequestParts {
        method: req.method.as_str(),
        path: req.url.path(),
        query,
        headers: &headers,
        authority: None,
    };
    let payload = headers
        .get("x-amz-content-sha256")
        .unwrap()
        .to_str()
        .unwrap();
    let expect = Expectations {
        region: "us-east-1",
        service: "s3",
        now: chrono::Utc::now(),
        max_skew_secs: 900,
    };
    verify_header(
        &parts,
        &parse_query(query).unwrap(),
        &parsed,
        payload,
        UPSTREAM_SECRET,
        &expect,
        &SigningKeyCache::default(),
    )
    .expect("upstream signature verifies with the upstream secret");
}

#[tokio::test]
async fn put_object_is_resigned_with_identical_body() {
    let mock = mock_upstream().await;
    let h = Harness::upstream(&mock.uri()).await;
    let body = b"hello, upstream".to_vec();
    h.alice()
        .put_object()
        .bucket("shared")
        .key("alice/a b+c.txt")
        .content_type("text/plain")
        .metadata("color", "blue")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method.as_str(), "PUT");
    assert_eq!(r.url.path(), "/shared/alice/a%20b%2Bc.txt");
    assert_eq!(r.url.query(), None, "x-id is not forwarded");
    assert_eq!(r.body, body);
    assert_eq!(
        r.headers
            .get("x-amz-content-sha256")
            .unwrap()
            .to_str()
            .unwrap(),
        hex::encode(Sha256::digest(&body)),
        "the client's signed hash goes upstream so upstream checks it too"
    );
    assert_eq!(r.headers.get("content-type").unwrap(), "text/plain");
    assert_eq!(r.headers.get("x-amz-meta-color").unwrap(), "blue");
    assert!(
        r.headers.get("x-amz-checksum-crc32").is_some(),
        "the SDK's checksum goes upstream"
    );
    assert!(r.headers.get("amz-sdk-invocation-id").is_none());
    assert!(r.headers.get("x-amz-user-agent").is_none());
    assert_signed_by_upstream(r);
    h.server.shutdown().await;
}

#[tokio::test]
async fn list_query_is_forwarded_as_authorized() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>shared</Name><Prefix>alice/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
            "application/xml",
        ))
        .mount(&mock)
        .await;
    let h = Harness::upstream(&mock.uri()).await;
    h.alice()
        .list_objects_v2()
        .bucket("shared")
        .prefix("alice/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let mut q = parse_query(reqs[0].url.query().unwrap()).unwrap();
    q.sort();
    let names: Vec<&str> = q.iter().map(|(n, _)| n.as_ref()).collect();
    assert!(
        names.contains(&"list-type") && names.contains(&"prefix") && names.contains(&"delimiter"),
        "{q:?}"
    );
    assert!(!names.contains(&"x-id"));
    assert_signed_by_upstream(&reqs[0]);
    h.server.shutdown().await;
}

#[tokio::test]
async fn odd_keys_are_forwarded_verbatim() {
    let mock = mock_upstream().await;
    let h = Harness::upstream(&mock.uri()).await;
    for (key, path) in [
        ("a//b/c", "/shared/a//b/c"),
        ("sp ace+plus%25=&~", "/shared/sp%20ace%2Bplus%2525%3D%26~"),
        ("ünï/✓", "/shared/%C3%BCn%C3%AF/%E2%9C%93"),
        ("trailing/", "/shared/trailing/"),
    ] {
        h.root()
            .get_object()
            .bucket("shared")
            .key(key)
            .send()
            .await
            .ok();
        let reqs = mock.received_requests().await.unwrap();
        let last = reqs.last().unwrap();
        assert_eq!(last.url.path(), path, "key {key:?}");
        assert_signed_by_upstream(last);
    }
    h.server.shutdown().await;
}

/// Accepts one HTTP/1.1 request and returns its request line, answering 200.
async fn capture_request_line(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
    }
    sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.lines().next().unwrap_or("").to_string()
}

#[tokio::test]
async fn dot_segments_are_neither_resolved_nor_re_encoded() {
    // Dot segments need a raw listener: URL parsers (wiremock's too) resolve them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let h = Harness::upstream(&upstream).await;
    let captured = tokio::spawn(capture_request_line(listener));
    let url = format!("{}/shared/a/../b/./c%2Fd", h.endpoint());
    let s = sign_request(
        "GET",
        &url,
        &[],
        b"",
        ROOT_KEY,
        ROOT_SECRET,
        SystemTime::now(),
    );
    let (status, _, body) = send(&s, vec![]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(captured.await.unwrap(), "GET /shared/a/../b/./c/d HTTP/1.1");
    h.server.shutdown().await;
}

#[tokio::test]
async fn tampered_body_never_reaches_upstream_complete() {
    let mock = mock_upstream().await;
    let h = Harness::upstream(&mock.uri()).await;
    let url = format!("{}/shared/alice/file.bin", h.endpoint());
    let signed_body = vec![b'a'; 200_000];
    let mut sent_body = signed_body.clone();
    *sent_body.last_mut().unwrap() = b'b';
    let s = sign_request(
        "PUT",
        &url,
        &[],
        &signed_body,
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    let (status, headers, text) = send(&s, sent_body).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(xml_code(&text), "XAmzContentSHA256Mismatch");
    let reqs = mock.received_requests().await.unwrap();
    assert!(
        reqs.is_empty(),
        "upstream saw a complete request: {:?}",
        reqs.first().map(|r| r.body.len())
    );
    let id = headers.get("x-amz-request-id").unwrap().to_str().unwrap();
    let record = h.audit_for(id).await;
    assert_eq!(record["error_code"], "XAmzContentSHA256Mismatch");
    h.server.shutdown().await;
}

#[tokio::test]
async fn unknown_subresource_and_headers_are_refused() {
    let mock = mock_upstream().await;
    let h = Harness::upstream(&mock.uri()).await;
    for (url, headers) in [
        (format!("{}/shared?frobnicate", h.endpoint()), vec![]),
        (
            format!("{}/shared/alice/k?renameObject", h.endpoint()),
            vec![],
        ),
        (
            format!("{}/shared/alice/k", h.endpoint()),
            vec![("x-amz-brand-new-feature", "1")],
        ),
    ] {
        let s = sign_request(
            "GET",
            &url,
            &headers,
            b"",
            ROOT_KEY,
            ROOT_SECRET,
            SystemTime::now(),
        );
        let (status, _, text) = send(&s, vec![]).await;
        assert_eq!(status, 501, "{url}: {text}");
        assert_eq!(xml_code(&text), "NotImplemented");
    }
    assert!(mock.received_requests().await.unwrap().is_empty());
    h.server.shutdown().await;
}

#[tokio::test]
async fn copy_source_outside_the_prefix_is_denied_and_not_forwarded() {
    let mock = mock_upstream().await;
    let h = Harness::upstream(&mock.uri()).await;
    let err = h
        .alice()
        .copy_object()
        .bucket("shared")
        .key("alice/stolen")
        .copy_source("shared/bob/secret.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "AccessDenied");
    assert!(mock.received_requests().await.unwrap().is_empty());

    h.alice()
        .copy_object()
        .bucket("shared")
        .key("alice/copy")
        .copy_source("shared/alice/orig%20name.txt")
        .send()
        .await
        .ok();
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("x-amz-copy-source").unwrap(),
        "/shared/alice/orig%20name.txt"
    );
    assert_signed_by_upstream(&reqs[0]);
    h.server.shutdown().await;
}

#[tokio::test]
async fn multi_delete_forwards_only_allowed_keys() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Deleted><Key>alice/1</Key></Deleted></DeleteResult>",
            "application/xml",
        ))
        .mount(&mock)
        .await;
    let h = Harness::upstream(&mock.uri()).await;
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("alice/1").build().unwrap())
        .objects(
            ObjectIdentifier::builder()
                .key("bob/secret")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = h
        .alice()
        .delete_objects()
        .bucket("shared")
        .delete(delete)
        .send()
        .await
        .unwrap();
    let deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["alice/1"]);
    let errors: Vec<(&str, &str)> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap(), e.code().unwrap()))
        .collect();
    assert_eq!(errors, [("bob/secret", "AccessDenied")]);
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let body = String::from_utf8(reqs[0].body.clone()).unwrap();
    assert!(body.contains("<Key>alice/1</Key>"), "{body}");
    assert!(!body.contains("bob"), "a denied key was forwarded: {body}");
    assert!(reqs[0].headers.get("content-md5").is_some());
    assert_signed_by_upstream(&reqs[0]);

    // Every key denied: upstream is not asked at all.
    let delete = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("bob/secret")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = h
        .alice()
        .delete_objects()
        .bucket("shared")
        .delete(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn upstream_down_is_a_quick_503() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = Harness::upstream(&format!("http://127.0.0.1:{port}")).await;
    let started = std::time::Instant::now();
    let err = h
        .root()
        .head_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let raw = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw, Some(503));
    h.server.shutdown().await;
}

#[tokio::test]
async fn upstream_that_hangs_times_out() {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&mock)
        .await;
    let h = Harness::upstream(&mock.uri()).await;
    let started = std::time::Instant::now();
    let err = h
        .root()
        .head_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    // A gateway timeout, not "unavailable": upstream was reached and is slow.
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(504));
    h.server.shutdown().await;
}

/// A request with nothing to send goes upstream saying so: a POST or PUT
/// without `Content-Length` (HTTP/2 clients need not send one) gets
/// `content-length: 0`, signed; a GET gets no length at all.
#[tokio::test]
async fn bodiless_requests_are_forwarded_with_their_length_stated() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = mock_upstream().await;
    let h = Harness::upstream(&mock.uri()).await;
    for (method, path) in [
        ("POST", "/shared/alice/k?uploads"),
        ("GET", "/shared/alice/k"),
    ] {
        let url = format!("{}{path}", h.endpoint());
        let signed = sign_request(
            method,
            &url,
            &[],
            b"",
            ROOT_KEY,
            ROOT_SECRET,
            SystemTime::now(),
        );
        let mut head = raw_head(&signed, path);
        assert!(
            !String::from_utf8_lossy(&head)
                .to_ascii_lowercase()
                .contains("content-length")
        );
        let mut s = tokio::net::TcpStream::connect(h.server.local_addr())
            .await
            .unwrap();
        s.write_all(&head).await.unwrap();
        head.clear();
        let mut answer = [0u8; 12];
        s.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200", "{method}");
    }
    let reqs = mock.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method.as_str(), "POST");
    assert_eq!(reqs[0].url.query(), Some("uploads="));
    assert_eq!(reqs[0].headers.get("content-length").unwrap(), "0");
    assert_eq!(reqs[1].method.as_str(), "GET");
    assert!(reqs[1].headers.get("content-length").is_none());
    for r in &reqs {
        assert_signed_by_upstream(r);
    }
    h.server.shutdown().await;
}
