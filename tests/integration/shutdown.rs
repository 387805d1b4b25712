//! Bounded shutdown, with the real binary: after SIGTERM, requests in flight
//! get `[limits] shutdown_grace_secs`; then stalled upstream exchanges, slow
//! downloads, idle HTTP/2 and silent TCP connections are cut, each cut
//! request leaves an audit record saying so, and the process exits within
//! the grace period plus a small margin. A second signal exits at once.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::fault::{FaultUpstream, SLOW_TOTAL};
use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends SIGTERM (or `signal`) to the child.
fn signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, at most `limit`; kills it and fails after.
async fn exit_within(child: &mut Child, limit: Duration) -> (Duration, std::process::ExitStatus) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (started.elapsed(), status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {limit:?} after the signal");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    audit_log_records(&dir.join("audit.jsonl"))
}

fn record_for<'a>(records: &'a [serde_json::Value], key: &str) -> &'a serde_json::Value {
    records
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no audit record for {key}: {records:#?}"))
}

async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start(fault: &FaultUpstream, grace_secs: u64) -> (tempfile::TempDir, Child, String) {
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text(
        dir.path(),
        &fault.upstream_section("response_timeout_secs = 60"),
        &format!("[limits]\nshutdown_grace_secs = {grace_secs}\n"),
    );
    let path = dir.path().join("s3warden.toml");
    std::fs::write(&path, text).unwrap();
    let (child, endpoint) = spawn_binary(&path, &[]);
    (dir, child, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cuts_what_remains_at_the_deadline_and_audits_it() {
    const GRACE: u64 = 2;
    let fault = FaultUpstream::start().await;
    let (dir, mut child, endpoint) = start(&fault, GRACE);
    let addr = addr_of(&endpoint);

    // A request that completes: its connection then idles, kept alive.
    let mut idle_h1 = TcpStream::connect(&addr).await.unwrap();
    idle_h1
        .write_all(&signed_get_head(&endpoint, "/shared/done"))
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle_h1.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    // Two requests waiting on an upstream that never answers.
    let mut stalled = Vec::new();
    for key in ["stall-1", "stall-2"] {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(&signed_get_head(&endpoint, &format!("/shared/{key}")))
            .await
            .unwrap();
        stalled.push(s);
    }
    // A download trickling at 10 KiB/s: it would take 17 minutes.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(&signed_get_head(&endpoint, "/shared/slow-1"))
        .await
        .unwrap();
    let n = slow.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    // The same over HTTP/2, whose requests hyper runs as tasks of their own.
    let h2_stalled = tokio::spawn(h2_get(endpoint.clone(), "/shared/stall-h2"));
    // Idle HTTP/2 connections (preface only) and silent TCP connections.
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut h2 = TcpStream::connect(&addr).await.unwrap();
        h2.write_all(H2_PREFACE).await.unwrap();
        idle.push(h2);
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    let requests = fault.requests.clone();
    until("the stalled requests never reached upstream", || {
        requests.lock().unwrap().len() >= 5
    })
    .await;

    signal(&child, "TERM");
    let (took, status) = exit_within(&mut child, Duration::from_secs(GRACE + 8)).await;
    eprintln!("exited {took:?} after SIGTERM (grace {GRACE} s)");
    assert!(status.success(), "{status:?}");
    // The deadline is real: grace plus the cut's unwinding (a few seconds
    // on a loaded 2-core machine), not the tens of seconds before the fix.
    assert!(
        took < Duration::from_millis(GRACE * 1000 + 5000),
        "exited {took:?} after SIGTERM with a {GRACE} s grace period"
    );
    assert!(
        took >= Duration::from_millis(GRACE * 1000 - 100),
        "exited {took:?} after SIGTERM: in-flight requests did not get their grace period"
    );
    // Every connection was closed: a read ends (EOF or reset) at once.
    for s in stalled.iter_mut().chain([&mut slow, &mut idle_h1]) {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a connection outlived the process");
    }

    let h2 = tokio::time::timeout(Duration::from_secs(2), h2_stalled)
        .await
        .expect("the HTTP/2 request outlived the process")
        .unwrap();
    assert!(h2.is_err(), "the cut HTTP/2 request got an answer: {h2:?}");

    let records = audit_records(dir.path());
    for key in ["stall-1", "stall-2", "stall-h2"] {
        let r = record_for(&records, key);
        assert_eq!(r["error_code"], "CutByShutdown", "{r}");
        assert_eq!(r["error_source"], "internal", "{r}");
    }
    let r = record_for(&records, "slow-1");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["error_code"], "CutByShutdown", "{r}");
    let sent = r["bytes_out"].as_u64().unwrap();
    assert!(sent > 0 && sent < SLOW_TOTAL as u64, "{r}");
    assert_eq!(r["bytes_expected"], SLOW_TOTAL, "{r}");
    let r = record_for(&records, "done");
    assert_eq!(r["status"], 200, "{r}");
    assert!(r.get("error_code").is_none(), "{r}");
    // One record per request that reached the pipeline, none for the
    // connections that never sent one.
    assert_eq!(records.len(), 5, "{records:#?}");
}

/// A GET signed by root over HTTP/2 with prior knowledge; its status, or
/// the error that ended it.
async fn h2_get(endpoint: String, path: &str) -> Result<u16, String> {
    use http_body_util::Empty;
    let stream = TcpStream::connect(addr_of(&endpoint)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let signed = signed_get(&format!("{endpoint}{path}"), ROOT_KEY, ROOT_SECRET);
    let mut req = http::Request::get(format!("{endpoint}{path}"));
    for (n, v) in &signed.headers {
        if n != "host" {
            req = req.header(n, v);
        }
    }
    let req = req.body(Empty::<bytes::Bytes>::new()).unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let fault = FaultUpstream::start().await;
    let (_dir, mut child, endpoint) = start(&fault, 60);
    let mut s = TcpStream::connect(addr_of(&endpoint)).await.unwrap();
    s.write_all(&signed_get_head(&endpoint, "/shared/stall-1"))
        .await
        .unwrap();
    let requests = fault.requests.clone();
    until("the request never reached upstream", || {
        !requests.lock().unwrap().is_empty()
    })
    .await;
    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the grace period"
    );
    signal(&child, "INT");
    let (took, status) = exit_within(&mut child, Duration::from_secs(5)).await;
    assert!(!status.success(), "an immediate exit is not a clean one");
    assert!(took < Duration::from_secs(1), "{took:?}");
}
