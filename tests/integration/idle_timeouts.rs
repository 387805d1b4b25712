//! Idle timeouts on every body, against a fault-injecting upstream and
//! raw-socket clients: an upstream that never answers, stalls mid-object or
//! never reads an upload ends the exchange (504 before anything was sent,
//! a cut connection after); a client that stops sending its body gets
//! `400 RequestTimeout` and nothing is stored. Upstream failures reach
//! clients as S3 errors with generic messages, the detail in the audit.

use std::time::{Duration, Instant};

use crate::common::fault::{FaultUpstream, SLOW_TOTAL};
use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(fault: &FaultUpstream) -> Harness {
    start_with(fault, "response_timeout_secs = 1\nidle_timeout_secs = 1").await
}

async fn start_with(fault: &FaultUpstream, upstream: &str) -> Harness {
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text(
        dir.path(),
        &fault.upstream_section(upstream),
        "[limits]\nbody_idle_timeout_secs = 1\n",
    );
    Harness::start(dir, &text).await
}

/// Reads until the proxy closes the connection (at most 10 s).
async fn read_all(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "connection still open");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

fn assert_generic(answer: &str) {
    for leak in ["127.0.0.1", "tcp connect", "error trying", "Connect"] {
        assert!(!answer.contains(leak), "detail {leak:?} leaked: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_is_a_gateway_timeout() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let started = Instant::now();
    let s = signed_get(
        &format!("{}/shared/stall-1", h.endpoint()),
        ROOT_KEY,
        ROOT_SECRET,
    );
    let (status, _, body) = send(&s, vec![]).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(xml_code(&body), "GatewayTimeout");
    assert_generic(&body);
    assert!(started.elapsed() < Duration::from_secs(4));
    let r = &h.audit(1).await[0];
    assert_eq!(r["error_code"], "GatewayTimeout");
    assert_eq!(r["error_source"], "upstream");
    assert!(r["error_detail"].as_str().unwrap().contains("1s"), "{r}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_stalling_mid_object_cuts_the_download_short() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    s.write_all(&signed_get_head(&h.endpoint(), "/shared/cut-1"))
        .await
        .unwrap();
    let (answer, took) = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The announced length, then fewer bytes than it and a closed
    // connection: a client sees a truncation, never a whole object.
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("content-length: {SLOW_TOTAL}")),
        "{answer}"
    );
    assert!(answer.len() < 8192, "{}", answer.len());
    assert!(took < Duration::from_secs(4), "{took:?}");
    let r = &h.audit(1).await[0];
    assert_eq!(r["status"], 200);
    assert_eq!(r["error_code"], "UpstreamIdleTimeout", "{r}");
    assert_eq!(r["bytes_out"], 4096, "{r}");
    assert_eq!(r["bytes_expected"], SLOW_TOTAL, "{r}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_reads_an_upload_is_a_gateway_timeout() {
    let fault = FaultUpstream::start().await;
    // The response timeout (which starts once the body is sent) is far off:
    // only the idle timeout can end this, with the body far larger than
    // loopback socket buffers so that it is never all sent.
    let h = start_with(&fault, "response_timeout_secs = 30\nidle_timeout_secs = 1").await;
    let body = vec![b'u'; 32 * 1024 * 1024];
    let s = sign_request(
        "PUT",
        &format!("{}/shared/sink-1", h.endpoint()),
        &[("content-length", &body.len().to_string())],
        &body,
        ROOT_KEY,
        ROOT_SECRET,
        std::time::SystemTime::now(),
    );
    let started = Instant::now();
    let (status, _, answer) = send(&s, body).await;
    assert_eq!(status, 504, "{answer}");
    assert_eq!(xml_code(&answer), "GatewayTimeout");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_sending_its_body_gets_request_timeout_and_nothing_is_stored() {
    let h = Harness::embedded_with("[limits]\nbody_idle_timeout_secs = 1\n").await;
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let body = vec![b'b'; 1024 * 1024];
    let signed = sign_request(
        "PUT",
        &format!("{}/shared/partial", h.endpoint()),
        &[("content-length", &body.len().to_string())],
        &body,
        ROOT_KEY,
        ROOT_SECRET,
        std::time::SystemTime::now(),
    );
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    s.write_all(&raw_head(&signed, "/shared/partial"))
        .await
        .unwrap();
    s.write_all(&body[..10]).await.unwrap();
    let (answer, took) = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let err = h
        .root()
        .head_object()
        .bucket("shared")
        .key("partial")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_the_client_abandons_is_recorded_as_cut_short() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    s.write_all(&signed_get_head(&h.endpoint(), "/shared/slow-1"))
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    drop(s);
    let r = &h.audit(1).await[0];
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["error_code"], "ClientDisconnected", "{r}");
    assert_eq!(r["error_source"], "client", "{r}");
    assert_eq!(r["bytes_expected"], SLOW_TOTAL, "{r}");
    assert!(r["bytes_out"].as_u64().unwrap() < SLOW_TOTAL as u64, "{r}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable_with_a_generic_message() {
    let h = Harness::upstream("http://127.0.0.1:9").await;
    let s = signed_get(&format!("{}/shared/x", h.endpoint()), ROOT_KEY, ROOT_SECRET);
    let (status, _, body) = send(&s, vec![]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(xml_code(&body), "ServiceUnavailable");
    assert_generic(&body);
    let r = &h.audit(1).await[0];
    assert!(
        r["error_detail"].as_str().unwrap().contains("connect"),
        "{r}"
    );
    h.server.shutdown().await;
}
