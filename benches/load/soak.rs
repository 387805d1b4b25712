//! The soak phase: mixed traffic through s3warden for `LOAD_SOAK_SECS`, with clients that
//! misbehave the way real ones do — abandon downloads, stall uploads, open a connection per
//! request, connect and say nothing — to show that none of it accumulates: open descriptors
//! and resident memory at the end are checked against the start, and the caller checks one
//! audit record per request that reached the proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Body, Target, empty, exchange, large_path, signed, small_path};

/// Workers running the mix at once.
const WORKERS: usize = 16;
/// How much of an announced upload a stalling client sends before it stops.
const STALLED_UPLOAD: usize = 64 * 1024;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A signed request's head as raw bytes, for clients that misbehave below HTTP.
fn raw_head(req: &Request<Body>, extra: &str) -> Vec<u8> {
    let uri = req.uri();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n{extra}",
        req.method(),
        uri.path_and_query().map_or("/", |p| p.as_str()),
        uri.authority().map_or("", |a| a.as_str())
    );
    for (name, value) in req.headers() {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().expect("ascii header")
        ));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn addr(t: &Target) -> String {
    t.endpoint.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (bounded); returns what arrived.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut got)).await;
    got
}

/// One request of the mix, by kind; returns whether it reached the proxy's pipeline (and so
/// must leave exactly one audit record).
async fn one(client: &Client<HttpConnector, Body>, t: &Target, i: usize) -> bool {
    match i % 5 {
        // A well-behaved GET on a pooled connection.
        0 => {
            let req = signed(t, &Method::GET, &small_path(i), None, 0, empty());
            let (status, _) = exchange(client, req).await;
            assert_eq!(status, 200, "soak GET {i}");
            true
        }
        // A download abandoned after its first bytes.
        1 => {
            let req = signed(t, &Method::GET, &large_path(i), None, 0, empty());
            let mut s = TcpStream::connect(addr(t)).await.expect("connect");
            s.write_all(&raw_head(&req, "")).await.expect("send");
            let mut buf = vec![0u8; 64 * 1024];
            let n = s.read(&mut buf).await.expect("read");
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 200"),
                "soak abandoned GET {i}"
            );
            true
        }
        // An upload whose client stops sending: 400 RequestTimeout, nothing stored.
        2 => {
            let req = signed(
                t,
                &Method::PUT,
                &format!("{}-stalled", small_path(i)),
                None,
                (STALLED_UPLOAD * 4) as u64,
                empty(),
            );
            let mut s = TcpStream::connect(addr(t)).await.expect("connect");
            s.write_all(&raw_head(&req, "")).await.expect("send");
            s.write_all(&vec![b'x'; STALLED_UPLOAD])
                .await
                .expect("send");
            let answer = String::from_utf8_lossy(&read_to_close(&mut s).await).into_owned();
            assert!(
                answer.starts_with("HTTP/1.1 400") && answer.contains("RequestTimeout"),
                "soak stalled PUT {i}: {answer}"
            );
            true
        }
        // One connection per request.
        3 => {
            let req = signed(t, &Method::GET, &small_path(i), None, 0, empty());
            let mut s = TcpStream::connect(addr(t)).await.expect("connect");
            s.write_all(&raw_head(&req, "connection: close\r\n"))
                .await
                .expect("send");
            let answer = read_to_close(&mut s).await;
            assert!(
                answer.starts_with(b"HTTP/1.1 200"),
                "soak reconnect GET {i}"
            );
            true
        }
        // A connection that never sends a request.
        _ => {
            let s = TcpStream::connect(addr(t)).await.expect("connect");
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(s);
            false
        }
    }
}

/// Runs the mix for `secs`; returns how many requests reached the proxy.
pub async fn soak(client: &Client<HttpConnector, Body>, t: &Target, secs: u64) -> u64 {
    // Let the connections of the earlier phases settle before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (fds_before, rss_before) = (open_fds(), rss_mib());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let next = Arc::new(AtomicU64::new(0));
    let proxied = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (client, t, next, proxied) = (client.clone(), t.clone(), next.clone(), proxied.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if one(&client, &t, i).await {
                    proxied.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("soak worker");
    }
    // Abandoned downloads and closed connections unwind on the server's side.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (fds_after, rss_after) = (open_fds(), rss_mib());
    let proxied = proxied.load(Ordering::Relaxed);
    println!(
        "\nsoak {secs} s: {} exchanges ({proxied} reached the proxy), open descriptors {fds_before} -> {fds_after}, resident memory {rss_before:.0} -> {rss_after:.0} MiB",
        next.load(Ordering::Relaxed)
    );
    // The client's pool may keep a few more connections than at the start; anything
    // proportional to the traffic would be a leak.
    assert!(
        fds_after <= fds_before + 2 * WORKERS,
        "descriptors grew from {fds_before} to {fds_after}"
    );
    assert!(
        rss_after < rss_before + 256.0,
        "resident memory grew from {rss_before:.0} to {rss_after:.0} MiB"
    );
    proxied
}
