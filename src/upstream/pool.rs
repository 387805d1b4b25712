//! Upstream connections, pooled per data-plane worker.
//!
//! hyper-util's pooled client costs, per request, a pool lookup under a
//! lock keyed by a cloned scheme and authority, and a task spawned to wait
//! until the connection is idle again before it goes back to the pool.
//! Here each worker keeps plain stacks of its idle HTTP/1 connections: a
//! connection goes back when its response body has ended (the body carries
//! it, see [`ReplyBody`]). GET and HEAD without a body are exchanged by the
//! request's own task on a bare connection ([`super::h1`]); requests with a
//! body go through hyper's connection-level client, which is handed a bare
//! connection when it has none idle, and is taken again only if hyper says
//! it is ready for a new request. An HTTP/2 connection (when TLS negotiates
//! h2) is shared by every request of the worker instead.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_service::Service;

use super::h1::{self, H1Error};
use super::{UpstreamBody, UpstreamError, error_chain};
use crate::auth::payload::BoxError;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// A connection as the connector makes it, with tokio's I/O traits.
type Io = TokioIo<hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>>;
/// Boxed: the stream (TLS state included) is well over a KiB, and a bare
/// connection moves with every exchange and answer body.
type Bare = h1::Conn<Box<Io>>;

/// Idle connections kept per worker at most; more are closed when they
/// come back. Well above the connections a worker has in flight at once
/// under load, so connections are not churned.
const MAX_IDLE: usize = 1024;

/// How long an idle connection is kept (as hyper-util's pool did).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One worker's connections.
#[derive(Default)]
struct Slot {
    /// Idle HTTP/1 connections driven by hyper, the most recently used last.
    idle: Mutex<Vec<Idle<http1::SendRequest<UpstreamBody>>>>,
    /// Idle HTTP/1 connections no one drives, the most recently used last.
    bare: Mutex<Vec<Idle<Bare>>>,
    /// The worker's HTTP/2 connection, if upstream speaks it.
    h2: Mutex<Option<http2::SendRequest<UpstreamBody>>>,
}

impl Slot {
    fn h2(&self) -> Option<http2::SendRequest<UpstreamBody>> {
        let h2 = self.h2.lock().ok()?;
        h2.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// A bare connection fit for a request, if one idles.
    fn checkout_bare(&self) -> Option<Bare> {
        let now = Instant::now();
        // Closed outside the lock: closing a socket is a system call.
        let mut dead = Vec::new();
        let mut idle = self.bare.lock().ok()?;
        while let Some(mut c) = idle.pop() {
            if now.duration_since(c.since) <= IDLE_TIMEOUT && c.conn.is_fit() {
                return Some(c.conn);
            }
            dead.push(c);
        }
        None
    }
}

struct Idle<T> {
    conn: T,
    since: Instant,
}

/// Puts a connection back on an idle stack, dropping those past their time.
fn park<T>(stack: &Mutex<Vec<Idle<T>>>, conn: T) {
    // Closed outside the lock: closing a socket is a system call.
    let mut dead = Vec::new();
    if let Ok(mut idle) = stack.lock() {
        // The oldest first: they are the ones past their time.
        let now = Instant::now();
        let expired = idle
            .iter()
            .take_while(|c| now.duration_since(c.since) > IDLE_TIMEOUT)
            .count();
        dead.extend(idle.drain(..expired));
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: now });
        }
    }
}

/// Takes out of an idle stack the connections past their time or not
/// `fit`, and returns them.
fn sift<T>(stack: &Mutex<Vec<Idle<T>>>, mut fit: impl FnMut(&mut T) -> bool) -> Vec<Idle<T>> {
    let now = Instant::now();
    let mut dead = Vec::new();
    if let Ok(mut idle) = stack.lock() {
        let mut keep = Vec::with_capacity(idle.len());
        for mut c in idle.drain(..) {
            if now.duration_since(c.since) <= IDLE_TIMEOUT && fit(&mut c.conn) {
                keep.push(c);
            } else {
                dead.push(c);
            }
        }
        *idle = keep;
    }
    dead
}

/// A new connection.
enum Connected {
    H1(Box<Io>),
    H2(http2::SendRequest<UpstreamBody>),
}

pub(super) struct Pool {
    connector: Connector,
    /// One slot per worker, then one for every other thread.
    slots: Box<[Arc<Slot>]>,
}

/// A hyper HTTP/1 connection a request is sent on.
struct Sender {
    sender: http1::SendRequest<UpstreamBody>,
    /// Taken from the pool rather than opened for this request.
    reused: bool,
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
    /// sent its path and query only. A GET or HEAD without a body goes on a
    /// bare connection ([`Pool::send_bare`]), or on one hyper keeps idle
    /// when no bare one idles; anything else through hyper.
    pub(super) async fn send(
        &self,
        slot: usize,
        req: Request<UpstreamBody>,
    ) -> Result<Response<ReplyBody>, UpstreamError> {
        let slot = &self.slots[slot];
        // Reads without a body go out on a bare connection; the other paths
        // (hyper's HTTP/1 client, HTTP/2) are boxed when taken: inline, their
        // state (3.7 KiB) would size every request's future, which is
        // allocated and copied into place for each request.
        if let Some(h2) = slot.h2() {
            return Box::pin(send_h2(h2, req)).await;
        }
        if is_bare(&req) {
            match slot.checkout_bare() {
                Some(conn) => return self.send_bare(slot, req, Some(conn)).await,
                None => {
                    if let Some(sender) = self.checkout(slot) {
                        return Box::pin(self.send_hyper(slot, req, Some(sender))).await;
                    }
                    return self.send_bare(slot, req, None).await;
                }
            }
        }
        Box::pin(self.send_hyper(slot, req, None)).await
    }

    /// Sends `req` through hyper, on `first` if given. A request refused by
    /// a reused connection before any of it was written (upstream closed it
    /// while idle) is sent again on a new connection, as hyper-util's client
    /// did.
    async fn send_hyper(
        &self,
        slot: &Arc<Slot>,
        mut req: Request<UpstreamBody>,
        mut first: Option<Sender>,
    ) -> Result<Response<ReplyBody>, UpstreamError> {
        loop {
            let sender = match first.take().or_else(|| self.checkout(slot)) {
                Some(s) => s,
                None => match slot.checkout_bare() {
                    Some(bare) => Sender {
                        sender: drive_h1(bare.into_io()).await?,
                        reused: true,
                    },
                    // Boxed: connecting (TCP, TLS) is rare once connections
                    // are pooled, and its state inline would make every
                    // request's future several KiB larger (copied whenever
                    // it moves).
                    None => match Box::pin(self.connect(slot, req.uri())).await? {
                        Connected::H1(io) => Sender {
                            sender: drive_h1(io).await?,
                            reused: false,
                        },
                        Connected::H2(h2) => return send_h2(h2, req).await,
                    },
                },
            };
            let Sender { mut sender, reused } = sender;
            let absolute = req.uri().clone();
            *req.uri_mut() = origin_form(&absolute);
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let reply = ReplyBody(Reply::Hyper {
                        body,
                        home: Some(Home {
                            sender,
                            slot: slot.clone(),
                        }),
                        ended: false,
                    });
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

    /// A GET or HEAD without a body, exchanged by this task on a bare
    /// connection: `pooled` if given, else a new one. When a pooled
    /// connection ends before any of the answer arrives (upstream closed it
    /// while it idled, or as the request arrived), the request is sent once
    /// more, on a new connection: GET and HEAD are safe to repeat (RFC 9110
    /// §9.2.2), and a request that makes upstream drop connections costs
    /// two of them, not every one the pool holds.
    async fn send_bare(
        &self,
        slot: &Arc<Slot>,
        req: Request<UpstreamBody>,
        mut pooled: Option<Bare>,
    ) -> Result<Response<ReplyBody>, UpstreamError> {
        let (parts, body) = req.into_parts();
        // Nothing to send: dropped now, the body tells the response timeout
        // (see `Upstream::send`) that the request is complete, so the
        // timeout covers connecting too.
        drop(body);
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let head = h1::request_head(&parts.method, target, &parts.headers);
        let head_request = parts.method == Method::HEAD;
        loop {
            let (conn, reused) = match pooled.take() {
                Some(conn) => (conn, true),
                None => match Box::pin(self.connect(slot, &parts.uri)).await? {
                    Connected::H1(io) => (h1::Conn::new(io), false),
                    Connected::H2(h2) => {
                        let empty = http_body_util::BodyExt::boxed(
                            http_body_util::BodyExt::map_err(http_body_util::Empty::new(), |e| {
                                match e {}
                            }),
                        );
                        // Boxed: rare (a new connection that turned out to
                        // speak HTTP/2), and inline it would size every read.
                        return Box::pin(send_h2(h2, Request::from_parts(parts, empty))).await;
                    }
                },
            };
            match conn.exchange(&head, head_request).await {
                Ok((parts, body)) => {
                    let reply = ReplyBody(Reply::Bare {
                        body,
                        slot: slot.clone(),
                    });
                    return Ok(Response::from_parts(parts, reply));
                }
                Err(H1Error::Stale(_)) if reused => {}
                Err(e) => return Err(UpstreamError::Request(e.to_string())),
            }
        }
    }

    /// Lets go of idle connections upstream closed or that idled past
    /// their time. hyper closes its own connections' sockets when upstream
    /// does; a bare one's socket is only closed here (or when next taken).
    pub(super) fn sweep(&self) {
        for slot in self.slots.iter() {
            // Closed outside the locks: closing a socket is a system call.
            let dead_bare = sift(&slot.bare, |c| c.is_fit());
            let dead_idle = sift(&slot.idle, |c| !c.is_closed());
            drop((dead_bare, dead_idle));
        }
    }

    /// A connection of `slot` ready for a request, if it has one.
    fn checkout(&self, slot: &Slot) -> Option<Sender> {
        let mut idle = slot.idle.lock().ok()?;
        let now = Instant::now();
        // Skipped connections (still finishing their last exchange) stay.
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(c) = idle.pop() {
            if c.conn.is_closed() || now.duration_since(c.since) > IDLE_TIMEOUT {
                continue;
            }
            if c.conn.is_ready() {
                found = Some(c.conn);
                break;
            }
            busy.push(c);
        }
        idle.extend(busy.into_iter().rev());
        found.map(|sender| Sender {
            sender,
            reused: true,
        })
    }

    /// Opens a connection to `uri`'s authority. An HTTP/2 one (negotiated
    /// by TLS) becomes the slot's shared connection, its driver spawned on
    /// the current runtime.
    async fn connect(&self, slot: &Slot, uri: &http::Uri) -> Result<Connected, UpstreamError> {
        let stream = self
            .connector
            .clone()
            .call(uri.clone())
            .await
            .map_err(|e| UpstreamError::Connect(error_chain(e.as_ref())))?;
        if !stream.connected().is_negotiated_h2() {
            return Ok(Connected::H1(Box::new(TokioIo::new(stream))));
        }
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
        Ok(Connected::H2(sender))
    }
}

/// Hands an HTTP/1 connection to hyper, its driver spawned on the current
/// runtime.
async fn drive_h1(io: Box<Io>) -> Result<http1::SendRequest<UpstreamBody>, UpstreamError> {
    let (sender, conn) = http1::handshake((*io).into_inner())
        .await
        .map_err(|e| UpstreamError::Connect(error_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

async fn send_h2(
    mut h2: http2::SendRequest<UpstreamBody>,
    req: Request<UpstreamBody>,
) -> Result<Response<ReplyBody>, UpstreamError> {
    let resp = h2.send_request(req).await.map_err(request_error)?;
    Ok(resp.map(|body| {
        ReplyBody(Reply::Hyper {
            body,
            home: None,
            ended: false,
        })
    }))
}

/// Whether a request goes on a bare connection: a GET or HEAD whose body
/// has nothing to send.
fn is_bare(req: &Request<UpstreamBody>) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD) && req.body().is_end_stream()
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
/// dropped half-read takes its connection with it, since no connection can
/// be reused with a response still arriving.
pub struct ReplyBody(Reply);

enum Reply {
    /// From hyper's client (HTTP/1 with a request body, or HTTP/2).
    Hyper {
        body: Incoming,
        home: Option<Home>,
        /// The body said it had no more frames.
        ended: bool,
    },
    /// From a bare exchange ([`h1`]).
    Bare {
        body: h1::ReplyBody<Box<Io>>,
        slot: Arc<Slot>,
    },
}

impl Reply {
    fn give_back(&mut self) {
        match self {
            Reply::Hyper { home, .. } => {
                if let Some(home) = home.take()
                    && !home.sender.is_closed()
                {
                    park(&home.slot.idle, home.sender);
                }
            }
            Reply::Bare { body, slot } => {
                if let Some(conn) = body.reusable() {
                    park(&slot.bare, conn);
                }
            }
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let reply = &mut self.0;
        let polled = match reply {
            Reply::Hyper { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
            Reply::Bare { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
        };
        match (&polled, &mut *reply) {
            (Poll::Ready(None), Reply::Hyper { ended, .. }) => {
                *ended = true;
                reply.give_back();
            }
            (Poll::Ready(None), Reply::Bare { .. }) => reply.give_back(),
            // A failed response leaves the connection unusable.
            (Poll::Ready(Some(Err(_))), Reply::Hyper { home, .. }) => *home = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Reply::Hyper { body, .. } => body.is_end_stream(),
            Reply::Bare { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Reply::Hyper { body, .. } => body.size_hint(),
            Reply::Bare { body, .. } => body.size_hint(),
        }
    }
}

impl Drop for ReplyBody {
    fn drop(&mut self) {
        // Bodies known to be complete are often dropped without being
        // polled to `None` (a HEAD answer, the last frame of a sized body).
        let complete = match &self.0 {
            Reply::Hyper { body, ended, .. } => *ended || body.is_end_stream(),
            Reply::Bare { body, .. } => body.is_end_stream(),
        };
        if complete {
            self.0.give_back();
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
