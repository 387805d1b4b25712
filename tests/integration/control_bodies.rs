//! Control bodies (bucket policy, tagging, CORS, lifecycle, ACL,
//! CompleteMultipartUpload, ...) are bounded by `[limits]
//! max_control_body_bytes` in the proxy, with S3's error: refused on their
//! declared length before anything goes upstream, and cut off (the upstream
//! request aborted) when a body without a length grows past it.

use std::time::SystemTime;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIMIT: usize = 4096;

async fn start() -> (MockServer, Harness) {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text(
        dir.path(),
        &url_upstream(&mock.uri()),
        &format!("[limits]\nmax_control_body_bytes = {LIMIT}\n"),
    );
    (mock, Harness::start(dir, &text).await)
}

async fn answer(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("connection not closed");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_control_body_within_the_limit_is_forwarded() {
    let (mock, h) = start().await;
    let tagging =
        br#"<Tagging><TagSet><Tag><Key>team</Key><Value>a</Value></Tag></TagSet></Tagging>"#;
    let s = sign_request(
        "PUT",
        &format!("{}/shared?tagging", h.endpoint()),
        &[("content-length", &tagging.len().to_string())],
        tagging,
        ROOT_KEY,
        ROOT_SECRET,
        SystemTime::now(),
    );
    let (status, _, body) = send(&s, tagging.to_vec()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_policy_declared_larger_than_the_limit_is_refused_before_upstream() {
    let (mock, h) = start().await;
    let policy = vec![b' '; LIMIT + 1];
    let s = sign_request(
        "PUT",
        &format!("{}/shared?policy", h.endpoint()),
        &[("content-length", &policy.len().to_string())],
        &policy,
        ROOT_KEY,
        ROOT_SECRET,
        SystemTime::now(),
    );
    let mut sock = TcpStream::connect(h.server.local_addr()).await.unwrap();
    // Only the head: the answer must not wait for a body it will not read.
    sock.write_all(&raw_head(&s, "/shared?policy"))
        .await
        .unwrap();
    let text = answer(&mut sock).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("<Code>MaxMessageLengthExceeded</Code>"),
        "{text}"
    );
    assert!(text.contains(&format!("<MaxSizeAllowed>{LIMIT}</MaxSizeAllowed>")));
    assert!(mock.received_requests().await.unwrap().is_empty());
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_chunked_complete_multipart_upload_past_the_limit_is_cut_off() {
    let (mock, h) = start().await;
    let mut xml = b"<CompleteMultipartUpload>".to_vec();
    while xml.len() <= LIMIT * 2 {
        xml.extend_from_slice(b"<Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>");
    }
    xml.extend_from_slice(b"</CompleteMultipartUpload>");
    let path = "/shared/k?uploadId=u1";
    let s = sign_request(
        "POST",
        &format!("{}{path}", h.endpoint()),
        &[("transfer-encoding", "chunked")],
        &xml,
        ROOT_KEY,
        ROOT_SECRET,
        SystemTime::now(),
    );
    let mut sock = TcpStream::connect(h.server.local_addr()).await.unwrap();
    sock.write_all(&raw_head(&s, path)).await.unwrap();
    for chunk in xml.chunks(1024) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        if sock.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let text = answer(&mut sock).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("<Code>MaxMessageLengthExceeded</Code>"),
        "{text}"
    );
    // Upstream never got a complete request: the one it started was aborted.
    assert!(mock.received_requests().await.unwrap().is_empty());
    let r = &h.audit(1).await[0];
    assert_eq!(r["error_code"], "MaxMessageLengthExceeded", "{r}");
    h.server.shutdown().await;
}
