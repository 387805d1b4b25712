//! A fault-injecting upstream: a raw HTTP/1.1 server on loopback whose
//! behaviour is chosen by the object key of each request, so one server
//! serves every fault a test needs:
//!
//! | key starts with   | upstream does                                                      |
//! |-------------------|--------------------------------------------------------------------|
//! | `stall`           | reads the request head, never answers                              |
//! | `sink`            | never reads the body, never answers                                |
//! | `slow`            | `200`, `Content-Length: SLOW_TOTAL`, 1 KiB every 100 ms            |
//! | `cut`             | `200`, `Content-Length: SLOW_TOTAL`, 4 KiB, then stalls            |
//! | `chunked`         | `200`, [`CHUNKED_BODY`] in chunks (an extension, a trailer)        |
//! | `twoframes`       | `200` framed by both `Transfer-Encoding` and `Content-Length`     |
//! | `nominates`       | `200` with body `ok`; its `Connection` names `X-Hop` and `Content-Length` as hop-by-hop |
//! | `closing`         | `200` with body `ok`, then closes the connection (no notice)      |
//! | `hangup`          | `200` with body `ok`; takes the next request and closes unanswered |
//! | `killer`          | closes the connection unanswered                                   |
//! | `drop`            | `200`, `Content-Length: SLOW_TOTAL`, 4 KiB, then closes            |
//! | `linger`          | `200` with body `ok`, then half-closes and counts the proxy's close in `closed_by_proxy` |
//! | `late`            | waits until two `late` requests have come (5 s at most), then `200` with body `ok` |
//! | anything else     | reads the body (by `Content-Length`), `200` with body `ok`         |
//!
//! A HEAD gets the answer's head only.
//!
//! Each connection is held open until the test drops the server, so a
//! stalled exchange stays stalled for the proxy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The length `slow` and `cut` answers announce.
pub const SLOW_TOTAL: usize = 10 * 1024 * 1024;

/// What `chunked` answers carry, once decoded.
pub const CHUNKED_BODY: &str = "hello, chunked world";

pub struct FaultUpstream {
    pub addr: SocketAddr,
    /// Request lines received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// `linger` connections the proxy has closed since.
    pub closed_by_proxy: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl FaultUpstream {
    pub async fn start() -> FaultUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let seen = requests.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let late = Arc::new(AtomicUsize::new(0));
        let closed_by_proxy = Arc::new(AtomicUsize::new(0));
        let closed = closed_by_proxy.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let counters = Counters {
                    late: late.clone(),
                    closed: closed.clone(),
                };
                conns.spawn(serve(stream, seen.clone(), counters));
            }
        });
        FaultUpstream {
            addr,
            requests,
            connections,
            closed_by_proxy,
            _tasks: tasks,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An `[upstream]` section for it: no proxy-side response timeout short
    /// enough to end a test's stall before the test means it to end.
    pub fn upstream_section(&self, extra: &str) -> String {
        format!(
            "[upstream]\nendpoint = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nconnect_timeout_ms = 500\n{extra}\n",
            self.url(),
            super::UPSTREAM_KEY,
            super::UPSTREAM_SECRET
        )
    }
}

/// Reads one request head (up to the blank line); `None` if the peer left.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Shared by a fault upstream's connections.
struct Counters {
    /// `late` requests arrived.
    late: Arc<AtomicUsize>,
    /// `linger` connections the proxy closed.
    closed: Arc<AtomicUsize>,
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<String>>>, counters: Counters) {
    let Counters { late, closed } = counters;
    loop {
        let Some(head) = read_head(&mut stream).await else {
            return;
        };
        let line = head.lines().next().unwrap_or_default().to_string();
        seen.lock().unwrap().push(line.clone());
        // "GET /bucket/key?query HTTP/1.1"
        let path = line.split(' ').nth(1).unwrap_or_default();
        let key = path.trim_start_matches('/').split_once('/').map(|(_, k)| k);
        let key = key.unwrap_or_default();
        let head_only = line.starts_with("HEAD ");
        let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {SLOW_TOTAL}\r\n\r\n");
        if key.starts_with("stall") || key.starts_with("sink") {
            std::future::pending::<()>().await;
        } else if key.starts_with("slow") {
            if stream.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let chunk = [b's'; 1024];
            loop {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else if key.starts_with("killer") {
            return;
        } else if key.starts_with("drop") {
            let _ = stream.write_all(header.as_bytes()).await;
            let _ = stream.write_all(&[b'd'; 4096]).await;
            return;
        } else if key.starts_with("cut") {
            let _ = stream.write_all(header.as_bytes()).await;
            let _ = stream.write_all(&[b'c'; 4096]).await;
            std::future::pending::<()>().await;
        } else if key.starts_with("chunked") {
            let (a, b) = CHUNKED_BODY.split_at(7);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n\
                 {:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-checksum: abc\r\n\r\n",
                a.len(),
                b.len()
            );
            let answer = if head_only {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
            } else {
                answer
            };
            // In small pieces, so that a reader meets every boundary.
            for piece in answer.as_bytes().chunks(5) {
                if stream.write_all(piece).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } else if key.starts_with("nominates") {
            let answer = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
                          Connection: Content-Length\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\n";
            let body = if head_only { "" } else { "ok" };
            if stream
                .write_all(format!("{answer}{body}").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        } else if key.starts_with("twoframes") {
            let answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n";
            let _ = stream.write_all(answer.as_bytes()).await;
        } else {
            if key.starts_with("late") {
                // Two requests in flight at once: two connections.
                late.fetch_add(1, Ordering::SeqCst);
                for _ in 0..500 {
                    if late.load(Ordering::SeqCst) >= 2 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut body = vec![0u8; content_length(&head)];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            let ok = if head_only {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            if stream.write_all(ok.as_bytes()).await.is_err() {
                return;
            }
            if key.starts_with("closing") {
                return;
            }
            if key.starts_with("linger") {
                // Closed for writing; then wait for the proxy to close.
                let _ = stream.shutdown().await;
                let mut rest = Vec::new();
                if stream.read_to_end(&mut rest).await.is_ok() {
                    closed.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
            if key.starts_with("hangup") {
                if let Some(next) = read_head(&mut stream).await {
                    let line = next.lines().next().unwrap_or_default().to_string();
                    seen.lock().unwrap().push(line);
                }
                return;
            }
        }
    }
}
