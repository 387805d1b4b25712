//! Upstream connections, pooled per data-plane worker, over hyper's
//! connection-level client.
//!
//! hyper-util's pooled client costs, per request, a pool lookup under a
//! lock keyed by a cloned scheme and authority, and a task spawned to wait
//! until the connection is idle again before it goes back to the pool.
//! Here each worker keeps a plain stack of its idle HTTP/1 connections: a
//! connection goes back when its response body has ended (the body carries
//! it, see [`ReplyBody`]), and is taken again only if hyper says it is
//! ready for a new request. An HTTP/2 connection (when TLS negotiates h2)
//! is shared by every request of the worker instead.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::{UpstreamBody, UpstreamError, error_chain};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Idle connections kept per worker at most; more are closed when they
/// come back. Well above the connections a worker has in flight at once
/// under load, so connections are not churned.
const MAX_IDLE: usize = 1024;

/// How long an idle connection is kept (as hyper-util's pool did).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One worker's connections.
#[derive(Default)]
struct Slot {
    /// Idle HTTP/1 connections, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// The worker's HTTP/2 connection, if upstream speaks it.
    h2: Mutex<Option<http2::SendRequest<UpstreamBody>>>,
}

struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
}

pub(super) struct Pool {
    connector: Connector,
    /// One slot per worker, then one for every other thread.
    slots: Box<[Arc<Slot>]>,
}

/// A connection a request is sent on.
enum Sender {
    H1 {
        sender: http1::SendRequest<UpstreamBody>,
        reused: bool,
    },
    H2(http2::SendRequest<UpstreamBody>),
}

impl Pool {
    pub(super) fn new(connector: Connector, slots: usize) -> Pool {
        Pool {
            connector,
            slots: (0..slots).map(|_| Arc::new(Slot::default())).collect(),
        }
    }

    pub(super) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Sends `req` on slot `slot`'s connection: an idle one when one is
    /// ready, else a new one. `req`'s URI is in absolute form; HTTP/1 is
    /// sent its path and query only. A request refused by a reused
    /// connection before any of it was written (upstream closed it while
    /// idle) is sent again on a new connection, as hyper-util's client did.
    pub(super) async fn send(
        &self,
        slot: usize,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<ReplyBody>, UpstreamError> {
        let slot = &self.slots[slot];
        loop {
            let sender = match self.checkout(slot) {
                Some(s) => s,
                // Boxed: connecting (TCP, TLS) is rare once connections are
                // pooled, and its state inline would make every request's
                // future several KiB larger (copied whenever it moves).
                None => Box::pin(self.connect(slot, req.uri())).await?,
            };
            match sender {
                Sender::H2(mut h2) => {
                    let resp = h2.send_request(req).await.map_err(request_error)?;
                    return Ok(resp.map(|body| ReplyBody {
                        body,
                        home: None,
                        ended: false,
                    }));
                }
                Sender::H1 { mut sender, reused } => {
                    let absolute = req.uri().clone();
                    *req.uri_mut() = origin_form(&absolute);
                    match sender.try_send_request(req).await {
                        Ok(resp) => {
                            let (parts, body) = resp.into_parts();
                            let reply = ReplyBody {
                                body,
                                home: Some(Home {
                                    sender,
                                    slot: slot.clone(),
                                }),
                                ended: false,
                            };
                            return Ok(Response::from_parts(parts, reply));
                        }
                        Err(mut e) => match e.take_message() {
                            Some(mut again) if reused => {
                                *again.uri_mut() = absolute;
                                req = again;
                            }
                            _ => return Err(request_error(e.into_error())),
                        },
                    }
                }
            }
        }
    }

    /// A connection of `slot` ready for a request, if it has one.
    fn checkout(&self, slot: &Slot) -> Option<Sender> {
        if let Ok(h2) = slot.h2.lock()
            && let Some(s) = h2.as_ref()
            && !s.is_closed()
        {
            return Some(Sender::H2(s.clone()));
        }
        let mut idle = slot.idle.lock().ok()?;
        let now = Instant::now();
        // Skipped connections (still finishing their last exchange) stay.
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(c) = idle.pop() {
            if c.sender.is_closed() || now.duration_since(c.since) > IDLE_TIMEOUT {
                continue;
            }
            if c.sender.is_ready() {
                found = Some(c.sender);
                break;
            }
            busy.push(c);
        }
        idle.extend(busy.into_iter().rev());
        found.map(|sender| Sender::H1 {
            sender,
            reused: true,
        })
    }

    /// Opens a connection to `uri`'s authority, its driver spawned on the
    /// current runtime.
    async fn connect(&self, slot: &Slot, uri: &http::Uri) -> Result<Sender, UpstreamError> {
        let stream = self
            .connector
            .clone()
            .call(uri.clone())
            .await
            .map_err(|e| UpstreamError::Connect(error_chain(e.as_ref())))?;
        if stream.connected().is_negotiated_h2() {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), stream)
                .await
                .map_err(|e| UpstreamError::Connect(error_chain(&e)))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream connection ended");
                }
            });
            if let Ok(mut h2) = slot.h2.lock() {
                *h2 = Some(sender.clone());
            }
            return Ok(Sender::H2(sender));
        }
        let (sender, conn) = http1::handshake(stream)
            .await
            .map_err(|e| UpstreamError::Connect(error_chain(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(Sender::H1 {
            sender,
            reused: false,
        })
    }
}

fn request_error(e: hyper::Error) -> UpstreamError {
    UpstreamError::Request(error_chain(&e))
}

/// `uri`'s path and query, as an HTTP/1 request line carries them.
fn origin_form(uri: &http::Uri) -> http::Uri {
    match uri.path_and_query() {
        Some(pq) => {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(pq.clone());
            http::Uri::from_parts(parts).unwrap_or_else(|_| http::Uri::from_static("/"))
        }
        None => http::Uri::from_static("/"),
    }
}

/// The HTTP/1 connection a response came on, to be put back in its
/// worker's pool once the response has been read to its end.
struct Home {
    sender: http1::SendRequest<UpstreamBody>,
    slot: Arc<Slot>,
}

/// An upstream response body. Reading it to its end (or dropping a body
/// that has nothing left) gives its connection back to the pool; a body
/// dropped half-read takes its connection with it, since hyper cannot
/// reuse one with a response still arriving.
pub struct ReplyBody {
    body: Incoming,
    home: Option<Home>,
    /// The body said it had no more frames.
    ended: bool,
}

impl ReplyBody {
    fn give_back(&mut self) {
        let Some(home) = self.home.take() else {
            return;
        };
        if home.sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = home.slot.idle.lock() {
            // The oldest first: they are the ones past their time.
            let now = Instant::now();
            let expired = idle
                .iter()
                .take_while(|c| now.duration_since(c.since) > IDLE_TIMEOUT)
                .count();
            idle.drain(..expired);
            if idle.len() < MAX_IDLE {
                idle.push(Idle {
                    sender: home.sender,
                    since: now,
                });
            }
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                self.ended = true;
                self.give_back();
            }
            // A failed response leaves the connection unusable.
            Poll::Ready(Some(Err(_))) => self.home = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ReplyBody {
    fn drop(&mut self) {
        // Bodies known to be complete are often dropped without being
        // polled to `None` (a HEAD answer, the last frame of a sized body).
        if self.ended || self.body.is_end_stream() {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_is_sent_the_path_and_query_only() {
        let uri: http::Uri = "http://127.0.0.1:9000/b/k%20x?acl=&x=1".parse().unwrap();
        assert_eq!(origin_form(&uri).to_string(), "/b/k%20x?acl=&x=1");
        let bare: http::Uri = "https://s3.example.com".parse().unwrap();
        assert_eq!(origin_form(&bare).to_string(), "/");
    }
}
