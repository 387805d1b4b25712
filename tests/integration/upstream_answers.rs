//! How upstream's HTTP/1 answers are read, against a raw upstream: sized and
//! chunked bodies reach the client whole, upstream connections are reused by
//! reads and uploads alike, a pooled connection upstream closed is replaced
//! without the client noticing, an answer framed two ways is refused, and the
//! headers an answer's `Connection` names are not relayed.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::common::fault::{CHUNKED_BODY, FaultUpstream};
use crate::common::*;

/// One data-plane worker: upstream connections are pooled per worker, so
/// with one the connections upstream sees are the pool's whole story.
async fn start(fault: &FaultUpstream) -> Harness {
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text_full(
        dir.path(),
        &fault.upstream_section(""),
        "workers = 1",
        "",
        "",
    );
    Harness::start(dir, &text).await
}

async fn get(h: &Harness, key: &str) -> (u16, http::HeaderMap, String) {
    let url = format!("{}/shared/{key}", h.endpoint());
    send(&signed_get(&url, ROOT_KEY, ROOT_SECRET), vec![]).await
}

async fn head(h: &Harness, key: &str) -> (u16, http::HeaderMap, String) {
    let url = format!("{}/shared/{key}", h.endpoint());
    let s = sign_request(
        "HEAD",
        &url,
        &[],
        b"",
        ROOT_KEY,
        ROOT_SECRET,
        SystemTime::now(),
    );
    send(&s, vec![]).await
}

async fn put(h: &Harness, key: &str, body: &[u8]) -> (u16, http::HeaderMap, String) {
    let url = format!("{}/shared/{key}", h.endpoint());
    let len = body.len().to_string();
    let s = sign_request(
        "PUT",
        &url,
        &[("content-length", &len)],
        body,
        ROOT_KEY,
        ROOT_SECRET,
        SystemTime::now(),
    );
    send(&s, body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_answers_reach_the_client_whole_on_one_kept_connection() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    for i in 0..3 {
        let (status, headers, body) = get(&h, &format!("chunked-{i}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, CHUNKED_BODY);
        // Upstream's framing and trailer announcement are not relayed.
        assert!(!headers.contains_key("trailer"), "{headers:?}");
    }
    let (status, _, body) = head(&h, "chunked-head").await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(fault.connections.load(Ordering::SeqCst), 1);
    for r in h.audit(4).await {
        assert_eq!(r["status"], 200, "{r}");
    }
    let got: Vec<_> = h
        .audit(4)
        .await
        .iter()
        .map(|r| r["bytes_out"].clone())
        .collect();
    let n = CHUNKED_BODY.len();
    assert_eq!(got, [n, n, n, 0]);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_upstream_names_hop_by_hop_are_not_relayed() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    for _ in 0..2 {
        let (status, headers, body) = get(&h, "nominates-1").await;
        assert_eq!((status, body.as_str()), (200, "ok"), "{headers:?}");
        assert!(!headers.contains_key("x-hop"), "{headers:?}");
        assert_eq!(headers["x-kept"], "1");
        // Named too, but it framed the body: the client's framing says the same.
        assert_eq!(headers["content-length"], "2");
        // A HEAD's answer tells the object's size by it alone.
        let (status, headers, _) = head(&h, "nominates-2").await;
        assert_eq!(status, 200);
        assert!(!headers.contains_key("x-hop"), "{headers:?}");
        assert_eq!(headers["content-length"], "2");
    }
    // The upstream connection was kept: `keep-alive` is an option, not a close.
    assert_eq!(fault.connections.load(Ordering::SeqCst), 1);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_framed_two_ways_is_refused_and_its_connection_dropped() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let (status, _, body) = get(&h, "twoframes-1").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(xml_code(&body), "BadGateway");
    let r = &h.audit(1).await[0];
    assert_eq!(r["error_source"], "upstream", "{r}");
    assert!(
        r["error_detail"]
            .as_str()
            .unwrap()
            .contains("Transfer-Encoding"),
        "{r}"
    );
    // The connection is not trusted again.
    let (status, _, body) = get(&h, "plain-1").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(fault.connections.load(Ordering::SeqCst), 2);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_upstream_closed_is_replaced_unnoticed() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    for key in ["closing-1", "plain-1", "closing-2", "plain-2"] {
        let (status, _, body) = get(&h, key).await;
        assert_eq!((status, body.as_str()), (200, "ok"), "{key}");
    }
    let (status, _, body) = head(&h, "plain-3").await;
    assert_eq!((status, body.as_str()), (200, ""));
    // Upstream closed after each `closing` answer; nothing else closed.
    assert_eq!(fault.connections.load(Ordering::SeqCst), 3);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_upstream_closes_is_let_go_without_waiting_for_a_request() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let (status, _, body) = get(&h, "linger-1").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // Upstream closed its side; the proxy closes its own within the pool's
    // once-a-second sweep, with no request coming to find it closed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while fault.closed_by_proxy.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy kept the connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_a_pooled_connection_drops_unanswered_is_sent_again() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let (status, _, body) = get(&h, "hangup-1").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // Upstream takes this one on the kept connection and closes it without
    // a word: the proxy sends it again on a new connection.
    let (status, _, body) = get(&h, "plain-1").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(fault.connections.load(Ordering::SeqCst), 2);
    let lines = fault.requests.lock().unwrap().clone();
    let paths: Vec<_> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        paths,
        ["/shared/hangup-1", "/shared/plain-1", "/shared/plain-1"]
    );
    let records = h.audit(2).await;
    assert_eq!(records.len(), 2, "one record per client request");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_makes_upstream_hang_up_is_tried_on_one_new_connection_only() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    // Two connections pooled: two reads at once.
    let (a, b) = tokio::join!(get(&h, "late-1"), get(&h, "late-2"));
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(fault.connections.load(Ordering::SeqCst), 2);
    // Upstream drops every connection this read arrives on: it is sent on
    // a pooled one, then once on a new one, and fails; the other pooled
    // connection is left alone.
    let (status, _, body) = get(&h, "killer-1").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(xml_code(&body), "BadGateway");
    assert_eq!(fault.connections.load(Ordering::SeqCst), 3);
    let sent = fault
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("killer-1"))
        .count();
    assert_eq!(sent, 2);
    let (status, _, body) = get(&h, "plain-1").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(fault.connections.load(Ordering::SeqCst), 3);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_by_upstream_closing_is_a_truncation_on_record() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    let mut s = tokio::net::TcpStream::connect(h.server.local_addr())
        .await
        .unwrap();
    s.write_all(&signed_get_head(&h.endpoint(), "/shared/drop-1"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut got));
    assert!(read.await.is_ok(), "connection still open");
    let answer = String::from_utf8_lossy(&got);
    // Never a whole answer: the head and fewer bytes than it announced, or
    // (when upstream's close is read before the head went out) nothing.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(answer.len() < 8192, "{}", answer.len());
    let r = &h.audit(1).await[0];
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["bytes_out"], 4096, "{r}");
    assert_eq!(r["bytes_expected"], crate::common::fault::SLOW_TOTAL, "{r}");
    assert_eq!(r["error_code"], "ResponseStreamFailed", "{r}");
    assert_eq!(r["error_source"], "upstream", "{r}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_uploads_share_upstream_connections() {
    let fault = FaultUpstream::start().await;
    let h = start(&fault).await;
    assert_eq!(get(&h, "a").await.0, 200);
    assert_eq!(put(&h, "b", b"hello").await.0, 200);
    // The read's bare connection was handed to hyper for the upload.
    assert_eq!(fault.connections.load(Ordering::SeqCst), 1);
    assert_eq!(get(&h, "c").await.0, 200);
    assert_eq!(put(&h, "d", b"world").await.0, 200);
    assert_eq!(head(&h, "e").await.0, 200);
    // Reads take the connection back from hyper when no bare one idles.
    assert_eq!(fault.connections.load(Ordering::SeqCst), 1);
    let lines = fault.requests.lock().unwrap().clone();
    let methods: Vec<_> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(methods, ["GET", "PUT", "GET", "PUT", "HEAD"]);
    h.server.shutdown().await;
}
