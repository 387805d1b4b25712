//! HTTP/1.1 on the client's connection: request heads read with `httparse`,
//! request bodies read from the socket as the request's handler asks for
//! them, answers written with their head and first piece of body in one
//! write. hyper's server connection kept an 8 KiB read buffer and an 8 KiB
//! buffer for answer heads for as long as a connection lived (hyper offers
//! no way to release them between requests); here a connection between
//! requests holds no buffer at all, so idle keep-alive connections cost
//! little more than their socket, as nginx's do. It also does less per
//! request: no separate body channel, no dispatcher state machine.
//!
//! Framing is RFC 9112 and fails closed where a front proxy and this one
//! could read a request's end two ways (see [`crate::http1`]): a request
//! with both `Transfer-Encoding` and `Content-Length`, differing lengths, a
//! coding other than `chunked` alone or a transfer coding in HTTP/1.0 is
//! refused (answered with S3's error and audited by the pipeline, see
//! [`Unreadable`]) and the connection closed; a malformed chunk fails the
//! body. A connection is reused only after its request's body was read to
//! its end and the answer was written whole; every other ending closes it
//! (with a lingering close, see `conn::Lingering`).
//!
//! A request body may be read from another task than the connection's
//! (hyper's upstream client relays uploads from its own), so the socket and
//! the read buffer are shared under a lock that is never contended: one
//! worker thread runs both, and the connection's task reads the socket only
//! once the body has ended.

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::conn::Activity;
use crate::auth::payload::BoxError;
use crate::http1::{self, BadHeader, Chunk, Declared, FramingError, MAX_HEADERS, Step};

/// The first read of a request: a whole head of the usual size fits.
const HEAD_READ: usize = 8 * 1024;
/// A body read goes into what is left of the current buffer while at least
/// this much is left (frames already handed on share that buffer).
const READ_FLOOR: usize = 16 * 1024;
/// Read while a request is handled, only to see the client leave: bytes of
/// a next request that arrive meanwhile are kept, up to the head limit.
const WATCH_READ: usize = 1024;
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How a worker's HTTP/1 connections are served.
pub struct Settings {
    /// The largest request head (request line and headers): a longer one
    /// is refused while the client is still sending it.
    pub max_head: usize,
    /// Request bodies are read in pieces of up to this much.
    pub max_read: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("request head refused: {0}")]
    BadHead(Unreadable),
    #[error("the answer's body failed: {0}")]
    Answer(BoxError),
    #[error("the answer's body ended {0} bytes short of its Content-Length")]
    AnswerShort(u64),
    #[error("the answer's body is longer than its Content-Length")]
    AnswerLong,
}

/// Why a request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the client closed the connection before the request body ended")]
    Closed,
    #[error("reading the request body: {0}")]
    Io(io::Error),
    #[error("{0}")]
    Framing(FramingError),
}

/// Where the current request's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    Chunked(Chunk),
    Done,
    /// Ended in an error: not an end of stream.
    Failed,
}

/// What the connection's task and the request's body share.
struct Wire {
    /// Bytes read and not yet used.
    buf: BytesMut,
    body: BodyState,
    /// How much of a `100 Continue` is still to be written before the
    /// body's first read (0: none owed).
    continue_left: usize,
    /// A written `100 Continue` may still sit in the transport's buffer.
    continue_flush: bool,
    /// The answer's head has begun: no interim answer may be written.
    answered: bool,
    /// The connection's task, to be woken when the body ends (from then on
    /// it reads the socket, to see the client leave).
    conn_waker: Option<Waker>,
    max_read: usize,
    /// The socket; taken out when the connection ends, so that a body still
    /// held elsewhere (hyper's upstream client may hold an upload's) can
    /// neither read from it nor keep it open.
    io: Option<Box<dyn Io>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Shared = Arc<Mutex<Wire>>;

fn lock(wire: &Shared) -> MutexGuard<'_, Wire> {
    // Poisoned only by a panic in a poll, which ends the connection anyway.
    wire.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wire {
    fn io(&mut self) -> io::Result<Pin<&mut dyn Io>> {
        match self.io.as_deref_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads more into the buffer: at least one byte, or 0 at the end.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let want = want.clamp(1, self.max_read);
        if self.buf.capacity() - self.buf.len() < want.min(READ_FLOOR) {
            self.buf.reserve(want);
        }
        let Some(io) = self.io.as_deref_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut self.buf)
    }

    /// Writes what is left of an owed `100 Continue`, unless the answer
    /// has begun (then the client learns from the answer instead; a 100
    /// begun is finished first, see `exchange`).
    fn poll_continue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.continue_left > 0 && !self.answered {
            let from = CONTINUE.len() - self.continue_left;
            let n = std::task::ready!(self.io()?.poll_write(cx, &CONTINUE[from..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.continue_left -= n;
            self.continue_flush = self.continue_left == 0;
        }
        if self.continue_flush {
            // Over TLS the 100 may wait in the session's buffer; the client
            // sends nothing until it arrives.
            std::task::ready!(self.io()?.poll_flush(cx))?;
            self.continue_flush = false;
        }
        if self.answered {
            self.continue_left = 0;
        }
        Poll::Ready(Ok(()))
    }

    fn end_body(&mut self, state: BodyState) {
        self.body = state;
        if let Some(w) = self.conn_waker.take() {
            w.wake();
        }
    }
}

/// A request's body, read from the connection as it is polled.
pub struct RequestBody {
    /// The connection, until the body has ended or failed.
    wire: Option<Shared>,
    /// What is left to read when the length was declared.
    declared: Option<u64>,
    /// Failed: never taken for an end of stream.
    failed: bool,
}

impl RequestBody {
    fn fail(
        &mut self,
        wire: &mut Wire,
        e: BodyError,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        wire.end_body(BodyState::Failed);
        self.wire = None;
        self.failed = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let Some(shared) = this.wire.clone() else {
            return Poll::Ready(None);
        };
        let mut wire = lock(&shared);
        let wire = &mut *wire;
        loop {
            match wire.body {
                BodyState::Done => {
                    this.wire = None;
                    return Poll::Ready(None);
                }
                // Failed by the connection's end (see `serve`): never
                // reported as ended.
                BodyState::Failed => {
                    this.wire = None;
                    this.failed = true;
                    return Poll::Ready(Some(Err(BodyError::Closed)));
                }
                BodyState::Length(left) => {
                    if !wire.buf.is_empty() {
                        let n = usize::try_from(left)
                            .unwrap_or(usize::MAX)
                            .min(wire.buf.len());
                        let data = wire.buf.split_to(n).freeze();
                        let left = left - n as u64;
                        this.declared = Some(left);
                        if left == 0 {
                            wire.end_body(BodyState::Done);
                            // This handle reads nothing more: the connection
                            // may go on to its next request.
                            this.wire = None;
                        } else {
                            wire.body = BodyState::Length(left);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if let Err(e) = std::task::ready!(wire.poll_continue(cx)) {
                        return this.fail(wire, BodyError::Io(e));
                    }
                    let want = usize::try_from(left).unwrap_or(usize::MAX);
                    match wire.poll_fill(cx, want) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(0)) => return this.fail(wire, BodyError::Closed),
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => return this.fail(wire, BodyError::Io(e)),
                    }
                }
                BodyState::Chunked(mut chunk) => {
                    let stepped = chunk.step(&mut wire.buf);
                    wire.body = BodyState::Chunked(chunk);
                    match stepped {
                        Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                        Ok(Step::Moved) => {}
                        Ok(Step::End) => {
                            wire.end_body(BodyState::Done);
                            this.wire = None;
                            return Poll::Ready(None);
                        }
                        Ok(Step::NeedMore) => {
                            if let Err(e) = std::task::ready!(wire.poll_continue(cx)) {
                                return this.fail(wire, BodyError::Io(e));
                            }
                            match wire.poll_fill(cx, chunk.want()) {
                                Poll::Pending => return Poll::Pending,
                                Poll::Ready(Ok(0)) => return this.fail(wire, BodyError::Closed),
                                Poll::Ready(Ok(_)) => {}
                                Poll::Ready(Err(e)) => {
                                    return this.fail(wire, BodyError::Io(e));
                                }
                            }
                        }
                        Err(e) => return this.fail(wire, BodyError::Framing(e)),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.failed && (self.wire.is_none() || self.declared == Some(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.declared {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A request head read from the connection, and what it says about the
/// connection and the body.
struct Head {
    parts: http::request::Parts,
    body: BodyState,
    /// The client keeps the connection open after this request.
    keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    expects_continue: bool,
}

/// Why a request head could not be taken. It is answered (with its audit
/// record, see `pipeline::refuse_unreadable`) and the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Longer than the head limit, or more than [`MAX_HEADERS`] headers.
    TooLarge,
    /// A transfer coding other than `chunked` alone.
    Coding,
    /// Malformed; what was wrong with it.
    Malformed(&'static str),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::TooLarge => f.write_str("request head too large"),
            Unreadable::Coding => f.write_str("unsupported transfer coding"),
            Unreadable::Malformed(why) => f.write_str(why),
        }
    }
}

/// A refused head, with as much of it as was read: the whole head when only
/// its framing was refused, the request line and the header lines before
/// the first malformed one when a header line was (or the first
/// [`MAX_HEADERS`] when there were too many). It names what was refused in
/// the request's audit record (method, host, bucket and key, the key it
/// claims).
pub struct Refused {
    pub why: Unreadable,
    pub head: Option<Box<http::request::Parts>>,
}

/// Only why: the head carries the request's credentials.
impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refused")
            .field("why", &self.why)
            .field("head", &self.head.as_ref().map(|_| "…"))
            .finish()
    }
}

impl From<Unreadable> for Refused {
    fn from(why: Unreadable) -> Self {
        Refused { why, head: None }
    }
}

impl Refused {
    /// Refused after its request line (and `headers`, when the whole head
    /// was read) could be read.
    fn after(why: Unreadable, method: &Method, uri: &http::Uri, headers: HeaderMap) -> Self {
        let mut parts = Request::new(()).into_parts().0;
        parts.method = method.clone();
        parts.uri = uri.clone();
        parts.headers = headers;
        Refused {
            why,
            head: Some(Box::new(parts)),
        }
    }
}

/// The header lines of a head httparse refused, from the first to the last
/// well-formed one before the line it could not take (at most
/// [`MAX_HEADERS`]; a line not yet ended is not taken): what the audit record
/// can name of the request (its host, user agent, the key it claims).
fn lines_before_fault(buf: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    // httparse skips empty lines before the request line; so does this.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let Some(line_end) = memchr::memchr(b'\n', &buf[start..]) else {
        return map;
    };
    let mut rest = &buf[start + line_end + 1..];
    while map.len() < MAX_HEADERS {
        let Some(end) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            break;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(&line[..colon]),
            // Only spaces and tabs around a value: a CR or a form feed there
            // is what httparse refused, and the lines after it are not read.
            HeaderValue::from_bytes(trim_ows(&line[colon + 1..])),
        ) else {
            break;
        };
        map.append(name, value);
    }
    map
}

/// `value` without the spaces and tabs around it (RFC 9112's OWS).
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// Parses the head at the buffer's start if the buffer holds all of it,
/// taking it from the buffer. Header values share the head's bytes.
fn parse_head(buf: &mut BytesMut, max_head: usize) -> Result<Option<Head>, Refused> {
    let bad = |why| Refused::from(Unreadable::Malformed(why));
    // Where the target and each header's name and value lie in the buffer.
    let mut at: [http1::Span; MAX_HEADERS] = [(0, 0, 0, 0); MAX_HEADERS];
    let (len, method, target, minor, count) = {
        let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut req,
            buf,
            &mut headers,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                if buf.len() > max_head {
                    return Err(Unreadable::TooLarge.into());
                }
                return Ok(None);
            }
            // httparse reads the request line before the headers: when a
            // header fails, the line says what the request was.
            Err(e) => {
                let why = match e {
                    httparse::Error::TooManyHeaders => Unreadable::TooLarge,
                    _ => Unreadable::Malformed("malformed request head"),
                };
                let line = req.method.zip(req.path).and_then(|(m, p)| {
                    Some((
                        Method::from_bytes(m.as_bytes()).ok()?,
                        http::Uri::try_from(p).ok()?,
                    ))
                });
                return Err(match line {
                    Some((method, uri)) => {
                        Refused::after(why, &method, &uri, lines_before_fault(buf))
                    }
                    None => why.into(),
                });
            }
        };
        if len > max_head {
            return Err(Unreadable::TooLarge.into());
        }
        http1::header_spans(buf, req.headers, &mut at);
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| bad("invalid method"))?;
        let target = match req.path {
            Some(path) => http1::range_in(buf, path.as_bytes()),
            None => (0, 0),
        };
        (len, method, target, req.version, req.headers.len())
    };
    let head = buf.split_to(len).freeze();
    let uri = http::Uri::from_maybe_shared(head.slice(target.0 as usize..target.1 as usize))
        .map_err(|_| bad("invalid request target"))?;
    let line_only =
        |why| Refused::after(Unreadable::Malformed(why), &method, &uri, HeaderMap::new());
    let version = match minor {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(line_only("unsupported HTTP version")),
    };
    let headers = http1::header_map(&head, &at[..count]).map_err(|e| match e {
        BadHeader::Name => line_only("invalid header name"),
        BadHeader::Value => line_only("invalid header value"),
    })?;
    let http11 = version == Version::HTTP_11;
    let body = match http1::declared_framing(&headers, http11) {
        Ok(Declared::Chunked) => BodyState::Chunked(Chunk::Size),
        Ok(Declared::Length(0) | Declared::None) => BodyState::Done,
        Ok(Declared::Length(n)) => BodyState::Length(n),
        Err(e) => {
            let why = match e {
                FramingError::TwoFramings => {
                    Unreadable::Malformed("both Transfer-Encoding and Content-Length")
                }
                FramingError::Coding => Unreadable::Coding,
                FramingError::Length | FramingError::Chunk => {
                    Unreadable::Malformed("invalid Content-Length")
                }
            };
            return Err(Refused::after(why, &method, &uri, headers));
        }
    };
    let keep_alive = if http11 {
        !http1::has_connection_token(&headers, b"close")
    } else {
        http1::has_connection_token(&headers, b"keep-alive")
    } && method != Method::CONNECT;
    let expects_continue = http11
        && body != BodyState::Done
        && headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut parts = Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        body,
        keep_alive,
        expects_continue,
    }))
}

/// How an answer's body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// No body is written (HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 without a length).
    Close,
}

/// The `Date` header's value, made once per second per thread.
fn date() -> HeaderValue {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static DATE: RefCell<(u64, HeaderValue)> =
            const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != secs {
            // An IMF-fixdate is plain ASCII: always a valid header value.
            if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
                *cell = (secs, value);
            }
        }
        cell.1.clone()
    })
}

/// Chooses the answer's framing and writes its head, in one pass over its
/// headers. `keep_alive` comes in as what the request allows and goes out
/// as what the answer allows.
fn encode_head<B: Body>(
    parts: &http::response::Parts,
    body: &B,
    request: &Method,
    http11: bool,
    keep_alive: &mut bool,
) -> (Vec<u8>, Out) {
    let status = parts.status;
    let informational_or_empty = status.is_informational() || status == StatusCode::NO_CONTENT;
    let bodiless = informational_or_empty || status == StatusCode::NOT_MODIFIED;
    let reason = status.canonical_reason().unwrap_or("");
    let mut size = 15 + reason.len() + 64;
    for (name, value) in parts.headers.iter() {
        size += name.as_str().len() + value.len() + 4;
    }
    let mut head = Vec::with_capacity(size);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(reason.as_bytes());
    head.extend_from_slice(b"\r\n");
    // One readable Content-Length is kept; none, several or an unreadable
    // one are replaced by this side's own framing.
    let length = {
        let mut all = parts.headers.get_all(CONTENT_LENGTH).iter();
        match (all.next(), all.next()) {
            (Some(v), None) => http1::parse_decimal(v.as_bytes()),
            _ => None,
        }
    };
    let mut dated = false;
    let mut closes = false;
    for (name, value) in parts.headers.iter() {
        if name == TRANSFER_ENCODING {
            // The answer's framing on this connection is this side's to choose.
            continue;
        }
        if name == CONTENT_LENGTH {
            if informational_or_empty || length.is_none() {
                continue;
            }
        } else if name == DATE {
            dated = true;
        } else if name == CONNECTION {
            closes |= value
                .as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let out = if bodiless || *request == Method::HEAD {
        Out::None
    } else if let Some(n) = length {
        Out::Length(n)
    } else {
        let exact = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        match exact {
            Some(n) => {
                head.extend_from_slice(b"content-length: ");
                head.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                head.extend_from_slice(b"\r\n");
                Out::Length(n)
            }
            None if http11 => {
                head.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Out::Chunked
            }
            None => Out::Close,
        }
    };
    if out == Out::Close || closes {
        *keep_alive = false;
    }
    if !dated {
        head.extend_from_slice(b"date: ");
        head.extend_from_slice(date().as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match (http11, *keep_alive) {
        (true, false) if !closes => head.extend_from_slice(b"connection: close\r\n"),
        (false, true) => head.extend_from_slice(b"connection: keep-alive\r\n"),
        _ => {}
    }
    head.extend_from_slice(b"\r\n");
    (head, out)
}

/// Writes all of `parts` (in order), with as few writes as the transport
/// allows, then flushes.
async fn write_all(shared: &Shared, parts: &[&[u8]]) -> io::Result<()> {
    let mut done = 0usize;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    poll_fn(|cx| {
        let mut wire = lock(shared);
        while done < total {
            let mut slices = [IoSlice::new(&[]); 4];
            let mut count = 0;
            let mut skip = done;
            for p in parts {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                if count == slices.len() {
                    break;
                }
                slices[count] = IoSlice::new(&p[skip..]);
                skip = 0;
                count += 1;
            }
            let n = std::task::ready!(wire.io()?.poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            done += n;
        }
        wire.io()?.poll_flush(cx)
    })
    .await
}

/// Reads the socket while the request's body has ended and its answer is
/// not yet written: only to see the client leave (hyper's server does the
/// same; a request whose client left is dropped, and audited as such).
/// Bytes of a next request are kept, up to the head limit and one read
/// past it. Ready when the client closed the connection or it failed.
fn poll_watch(shared: &Shared, cx: &mut Context<'_>, max_head: usize) -> Poll<()> {
    let mut wire = lock(shared);
    if !matches!(wire.body, BodyState::Done | BodyState::Failed) {
        // The body's reader reads the socket; it wakes this task when done.
        wire.conn_waker = Some(cx.waker().clone());
        return Poll::Pending;
    }
    loop {
        if wire.buf.len() > max_head {
            return Poll::Pending;
        }
        match wire.poll_fill(cx, WATCH_READ) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Serves HTTP/1.1 on `io` until the client closes, an error, or (between
/// requests) the server's shutdown. `handle` answers each request.
pub async fn serve<I, F, Fut, B>(
    io: I,
    settings: &Settings,
    activity: &Activity,
    mut shutdown: watch::Receiver<bool>,
    mut handle: F,
) -> Result<(), Http1Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnMut(Result<Request<RequestBody>, Refused>) -> Fut,
    Fut: Future<Output = Response<B>> + Unpin,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let shared: Shared = Arc::new(Mutex::new(Wire {
        buf: BytesMut::new(),
        body: BodyState::Done,
        continue_left: 0,
        continue_flush: false,
        answered: false,
        conn_waker: None,
        max_read: settings.max_read,
        io: Some(Box::new(io)),
    }));
    let result = serve_on(&shared, settings, activity, &mut shutdown, &mut handle).await;
    // The connection ends here, whoever still holds a request body: the
    // body fails, and the socket is this task's to close.
    let io = {
        let mut wire = lock(&shared);
        if wire.body != BodyState::Done {
            wire.end_body(BodyState::Failed);
        }
        wire.buf = BytesMut::new();
        wire.io.take()
    };
    if let Some(mut io) = io {
        // Closes the way a proxy answering early must (see `conn::Lingering`).
        let closed = poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await;
        result?;
        return closed.map_err(Http1Error::Io);
    }
    result
}

async fn serve_on<F, Fut, B>(
    shared: &Shared,
    settings: &Settings,
    activity: &Activity,
    shutdown: &mut watch::Receiver<bool>,
    handle: &mut F,
) -> Result<(), Http1Error>
where
    F: FnMut(Result<Request<RequestBody>, Refused>) -> Fut,
    Fut: Future<Output = Response<B>> + Unpin,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    loop {
        // Each request's state (its head, the answer being written) is
        // boxed while the request lasts, and the head moved into the box
        // before anything is awaited: inline, it would size the connection's
        // task, and so every idle keep-alive connection, by the largest step
        // of an exchange rather than by waiting for a head.
        let exchanged = match read_head(shared, settings.max_head, shutdown).await? {
            None => return Ok(()),
            Some(head) => Box::pin(exchange(shared, settings, activity, shutdown, handle, head)),
        };
        if !exchanged.await? {
            return Ok(());
        }
    }
}

/// Writes the answer to a head that cannot be read; the connection ends
/// after it, whether or not the answer could be written.
///
/// Nothing after an unreadable head is read as a request. Not counted as a
/// request in progress, so the header timeout still bounds the connection;
/// a client that leaves drops the answer.
async fn refuse<Fut, B>(shared: &Shared, settings: &Settings, answer: Fut)
where
    Fut: Future<Output = Response<B>> + Unpin,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    lock(shared).buf = BytesMut::new();
    let Some(resp) = answer_unless_gone(shared, settings.max_head, answer).await else {
        return;
    };
    let (parts, body) = resp.into_parts();
    let mut keep_alive = false;
    let (head, out) = encode_head(&parts, &body, &Method::GET, true, &mut keep_alive);
    let _ = write_answer(shared, head, out, body, settings.max_head).await;
}

/// Hands one request to `handle` and writes its answer (or has it refuse
/// a head that cannot be read). True when the connection goes on to its
/// next request.
async fn exchange<F, Fut, B>(
    shared: &Shared,
    settings: &Settings,
    activity: &Activity,
    shutdown: &watch::Receiver<bool>,
    handle: &mut F,
    head: Result<Head, Refused>,
) -> Result<bool, Http1Error>
where
    F: FnMut(Result<Request<RequestBody>, Refused>) -> Fut,
    Fut: Future<Output = Response<B>> + Unpin,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let head = match head {
        Ok(head) => head,
        Err(refused) => {
            let why = refused.why;
            refuse(shared, settings, handle(Err(refused))).await;
            return Err(Http1Error::BadHead(why));
        }
    };
    let _busy = activity.begin();
    let Head {
        parts,
        body,
        mut keep_alive,
        expects_continue,
    } = head;
    let http11 = parts.version == Version::HTTP_11;
    let method = parts.method.clone();
    {
        let mut wire = lock(shared);
        wire.body = body;
        wire.answered = false;
        wire.continue_left = if expects_continue { CONTINUE.len() } else { 0 };
    }
    let declared = match body {
        BodyState::Length(n) => Some(n),
        BodyState::Done => Some(0),
        _ => None,
    };
    let request_body = RequestBody {
        wire: (body != BodyState::Done).then(|| shared.clone()),
        declared,
        failed: false,
    };
    let answer = handle(Ok(Request::from_parts(parts, request_body)));
    let Some(resp) = answer_unless_gone(shared, settings.max_head, answer).await else {
        // The client left: its request is dropped unanswered.
        return Ok(false);
    };
    let torn_continue = {
        let mut wire = lock(shared);
        wire.answered = true;
        // A 100 Continue partly written is finished before the answer.
        let left = std::mem::take(&mut wire.continue_left);
        // A body left unread (refused before it was read, failed, or
        // still on its way when the answer is ready) would be read as
        // the next request: the connection ends after this answer.
        if wire.body != BodyState::Done {
            keep_alive = false;
        }
        if left > 0 && left < CONTINUE.len() {
            &CONTINUE[CONTINUE.len() - left..]
        } else {
            &[][..]
        }
    };
    if *shutdown.borrow() {
        keep_alive = false;
    }
    let (parts, body) = resp.into_parts();
    let (head, out) = encode_head(&parts, &body, &method, http11, &mut keep_alive);
    let head = if torn_continue.is_empty() {
        head
    } else {
        [torn_continue, &head].concat()
    };
    write_answer(shared, head, out, body, settings.max_head).await?;
    lock(shared).conn_waker = None;
    Ok(keep_alive && !*shutdown.borrow())
}

/// The handler's answer, or `None` when the client left first (the
/// handler's future is then dropped, and with it the request).
async fn answer_unless_gone<Fut: Future + Unpin>(
    shared: &Shared,
    max_head: usize,
    mut answer: Fut,
) -> Option<Fut::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(resp) = Pin::new(&mut answer).poll(cx) {
            return Poll::Ready(Some(resp));
        }
        poll_watch(shared, cx, max_head).map(|()| None)
    })
    .await
}

/// Reads the next request's head. `None`: the client closed the connection
/// between requests (or in the middle of a head: nobody is left to answer),
/// or the server shuts down with no request begun.
async fn read_head(
    shared: &Shared,
    max_head: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Result<Head, Refused>>, Http1Error> {
    loop {
        let (idle, refused) = {
            let mut wire = lock(shared);
            // Line ends a client sent after a body (RFC 9112 §2.2 lets a
            // server ignore them) leave the connection between requests.
            let blank = wire
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            if blank > 0 && blank == wire.buf.len() {
                wire.buf.clear();
            }
            if wire.buf.is_empty() {
                (true, None)
            } else {
                match parse_head(&mut wire.buf, max_head) {
                    Ok(Some(head)) => return Ok(Some(Ok(head))),
                    Ok(None) => (false, None),
                    Err(why) => (false, Some(why)),
                }
            }
        };
        if let Some(why) = refused {
            return Ok(Some(Err(why)));
        }
        let fill = poll_fn(|cx| poll_fill_head(shared, cx));
        let n = if idle {
            // Between requests, the server's shutdown ends the connection.
            if *shutdown.borrow() {
                return Ok(None);
            }
            tokio::select! {
                biased;
                n = fill => n?,
                _ = shutdown.changed() => return Ok(None),
            }
        } else {
            fill.await?
        };
        if n == 0 {
            return Ok(None);
        }
    }
}

/// Reads more of a head. Between requests, a read that finds nothing lets
/// the buffer go: an idle connection holds none.
fn poll_fill_head(shared: &Shared, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let mut wire = lock(shared);
    let wire = &mut *wire;
    if wire.buf.capacity() == wire.buf.len() {
        wire.buf.reserve(HEAD_READ);
    }
    let Some(io) = wire.io.as_deref_mut() else {
        return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    };
    let polled = tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut wire.buf);
    if polled.is_pending() && wire.buf.is_empty() {
        wire.buf = BytesMut::new();
    }
    polled
}

/// Writes an answer: its head together with the first piece of its body,
/// then the rest as the body gives it.
async fn write_answer<B>(
    shared: &Shared,
    head: Vec<u8>,
    out: Out,
    body: B,
    max_head: usize,
) -> Result<(), Http1Error>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if out == Out::None {
        drop(body);
        write_all(shared, &[&head]).await?;
        return Ok(());
    }
    let mut body = std::pin::pin!(body);
    let mut head = Some(head);
    let mut sent = 0u64;
    loop {
        // A sized answer ends at its length, as a client reads it, whatever
        // its body would still say.
        if body.is_end_stream() || out == Out::Length(sent) {
            break;
        }
        let frame = poll_fn(|cx| {
            if let Poll::Ready(frame) = body.as_mut().poll_frame(cx) {
                return Poll::Ready(Some(frame));
            }
            poll_watch(shared, cx, max_head).map(|()| None)
        })
        .await;
        let Some(frame) = frame else {
            return Err(Http1Error::Io(io::ErrorKind::ConnectionAborted.into()));
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(Http1Error::Answer(e.into())),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers are not relayed (see `crate::http1`).
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        let head_bytes = head.take().unwrap_or_default();
        match out {
            Out::Length(n) if sent > n => return Err(Http1Error::AnswerLong),
            Out::Chunked => {
                let size = format!("{:x}\r\n", data.len());
                write_all(shared, &[&head_bytes, size.as_bytes(), &data, b"\r\n"]).await?;
            }
            _ => write_all(shared, &[&head_bytes, &data]).await?,
        }
    }
    let head_bytes = head.take().unwrap_or_default();
    match out {
        Out::Length(n) if sent < n => {
            if !head_bytes.is_empty() {
                write_all(shared, &[&head_bytes]).await?;
            }
            Err(Http1Error::AnswerShort(n - sent))
        }
        Out::Chunked => {
            write_all(shared, &[&head_bytes, b"0\r\n\r\n"]).await?;
            Ok(())
        }
        _ => {
            if !head_bytes.is_empty() {
                write_all(shared, &[&head_bytes]).await?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A head refused at a header line keeps the lines before it, ended
    /// ones only, as many as a head may have.
    #[test]
    fn a_refused_head_keeps_its_header_lines_before_the_fault() {
        let names = |raw: &[u8]| -> Vec<String> {
            let mut buf = BytesMut::from(raw);
            let refused = match parse_head(&mut buf, 64 * 1024) {
                Err(r) => r,
                Ok(_) => panic!("{:?} was taken", String::from_utf8_lossy(raw)),
            };
            let head = refused.head.expect("its request line was read");
            head.headers
                .iter()
                .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v.as_bytes())))
                .collect()
        };
        assert_eq!(
            names(b"GET /b/k HTTP/1.1\r\nHost: h\r\nx-a:  1 \r\nbad header\r\nx-b: 2\r\n\r\n"),
            ["host=h", "x-a=1"]
        );
        assert_eq!(
            names(b"GET /b/k HTTP/1.1\nhost: h\nx-bad: a\x01b\nx-b: 2\n\n"),
            ["host=h"]
        );
        // A value with a CR or a form feed is where httparse stopped.
        assert!(names(b"GET /b/k HTTP/1.1\r\nx-a: 1\x0C\r\nhost: h\r\n\r\n").is_empty());
        assert!(names(b"GET /b/k HTTP/1.1\r\nx-a: 1\r\r\nhost: h\r\n\r\n").is_empty());
        assert!(names(b"GET /b/k HTTP/1.1\r\nx-a: \r1\r\nhost: h\r\n\r\n").is_empty());
        // Empty lines before the request line are skipped, as httparse does.
        assert_eq!(
            names(b"\r\n\nGET /b/k HTTP/1.1\r\nhost: h\r\nbad\r\n\r\n"),
            ["host=h"]
        );
        // A version httparse cannot read: the lines after the request line.
        assert_eq!(names(b"GET /b/k HTTP/1.2\r\nhost: h\r\n\r\n"), ["host=h"]);
        // A folded line is not read as a header of its own.
        assert_eq!(
            names(b"GET /b/k HTTP/1.1\r\nx-a: 1\r\n folded\r\nhost: h\r\n\r\n"),
            ["x-a=1"]
        );
        let mut many = b"GET /b/k HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS + 5 {
            many.extend_from_slice(format!("x-h{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let got = names(&many);
        assert_eq!(got.len(), MAX_HEADERS);
        assert_eq!(got[0], "x-h0=0");
        // A line the buffer does not end is not taken.
        let lines = lines_before_fault(b"GET / HTTP/1.1\r\nx-a: 1\r\nhost: mybuck");
        assert_eq!(lines.len(), 1);
        assert!(lines_before_fault(b"GET / HTTP/1.1").is_empty());
    }

    type Answer = Pin<Box<dyn Future<Output = Response<BoxBody<Bytes, BoxError>>> + Send>>;

    fn settings() -> Settings {
        Settings {
            max_head: 8192,
            max_read: 256 * 1024,
        }
    }

    /// Answers every request with its method, target, body length and
    /// body (read whole), or, for `/unread`, at once without reading it.
    fn echo(req: Request<RequestBody>) -> Answer {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            if parts.uri.path() == "/unread" {
                return Response::new(
                    Full::new(Bytes::from_static(b"refused"))
                        .map_err(|e| match e {})
                        .boxed(),
                );
            }
            let text = match body.collect().await {
                Ok(b) => {
                    let b = b.to_bytes();
                    format!(
                        "{} {} {} {}",
                        parts.method,
                        parts.uri,
                        b.len(),
                        String::from_utf8_lossy(&b)
                    )
                }
                Err(e) => format!("error: {e}"),
            };
            Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed())
        })
    }

    /// A body of unknown length, its pieces sent by another task.
    struct Paced(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for Paced {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0.poll_recv(cx).map(|d| d.map(|d| Ok(Frame::data(d))))
        }
    }

    /// Refuses an unreadable head with the status the pipeline gives it,
    /// and why in the body.
    fn refusal(why: Unreadable) -> Answer {
        let status = match why {
            Unreadable::TooLarge => StatusCode::BAD_REQUEST,
            Unreadable::Coding => StatusCode::NOT_IMPLEMENTED,
            Unreadable::Malformed(_) => StatusCode::BAD_REQUEST,
        };
        Box::pin(async move {
            let mut resp = Response::new(
                Full::new(Bytes::from(why.to_string()))
                    .map_err(|e| match e {})
                    .boxed(),
            );
            *resp.status_mut() = status;
            resp
        })
    }

    fn start_with(
        mut handle: impl FnMut(Request<RequestBody>) -> Answer + Send + 'static,
    ) -> (
        DuplexStream,
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<(), Http1Error>>,
    ) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            serve(
                server,
                &settings(),
                &Activity::new(),
                rx,
                move |req| match req {
                    Ok(req) => handle(req),
                    Err(refused) => refusal(refused.why),
                },
            )
            .await
        });
        (client, tx, task)
    }

    /// A connection's future sizes its task, and so what every idle
    /// keep-alive connection holds: each exchange's state is boxed while
    /// it lasts, so the future is what waiting for a head needs (inline,
    /// an exchange made it about 2 KiB).
    #[test]
    fn a_connection_waiting_for_a_head_is_small() {
        let (_client, server) = tokio::io::duplex(64);
        let (_tx, rx) = watch::channel(false);
        let settings = settings();
        let activity = Activity::new();
        let connection = serve(server, &settings, &activity, rx, |req| match req {
            Ok(req) => echo(req),
            Err(refused) => refusal(refused.why),
        });
        let size = std::mem::size_of_val(&connection);
        assert!(
            size <= 1024,
            "an HTTP/1 connection's future is {size} bytes"
        );
    }

    /// Sends `input`, then reads until the server closes the connection.
    async fn exchange(input: &[u8]) -> String {
        let (mut client, _tx, _task) = start_with(echo);
        client.write_all(input).await.unwrap();
        read_all(&mut client).await
    }

    async fn read_all(client: &mut DuplexStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .expect("the server closes the connection")
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The answers in `text`, each up to the next.
    fn answers(text: &str) -> Vec<&str> {
        let starts: Vec<usize> = text.match_indices("HTTP/1.1 ").map(|(i, _)| i).collect();
        let ends = starts.iter().skip(1).copied().chain([text.len()]);
        starts.iter().zip(ends).map(|(&a, b)| &text[a..b]).collect()
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_on_one_connection() {
        let text = exchange(
            b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n\
              PUT /b HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
              POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nx-t: 1\r\n\r\n\
              GET /d HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        let all = answers(&text);
        assert_eq!(all.len(), 4, "{text}");
        assert!(all[0].starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(all[0].contains("content-length: 9\r\n"), "{text}");
        assert!(all[0].contains("\r\n\r\nGET /a 0 "), "{text}");
        assert!(all[1].contains("\r\n\r\nPUT /b 5 hello"), "{text}");
        assert!(all[2].contains("\r\n\r\nPOST /c 5 abcde"), "{text}");
        assert!(all[3].contains("connection: close\r\n"), "{text}");
        assert!(all[3].ends_with("\r\n\r\nGET /d 0 "), "{text}");
        assert!(!all[0].contains("connection:"), "{text}");
        assert!(text.contains("date: "), "{text}");
    }

    #[tokio::test]
    async fn requests_framed_two_ways_or_badly_are_refused_and_the_connection_closed() {
        for (input, status) in [
            (&b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"[..], "400"),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n", "501"),
            (b"POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd", "400"),
            (b"POST / HTTP/1.1\r\ncontent-length: +3\r\n\r\nabc", "400"),
            (b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", "501"),
            (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nx: a\r\n folded\r\n\r\n", "400"),
            (b"GET / HTTP/2.0\r\n\r\n", "400"),
            (b"GET /\xff HTTP/1.1\r\n\r\n", "400"),
        ] {
            let text = exchange(input).await;
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
            assert!(text.contains("connection: close\r\n"), "{text}");
            assert_eq!(answers(&text).len(), 1, "{text}");
            assert!(!text.contains("smuggled"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_malformed_chunk_fails_the_body_and_ends_the_connection() {
        let text = exchange(
            b"POST /c HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcGET /x HTTP/1.1\r\n\r\n",
        )
        .await;
        let all = answers(&text);
        assert_eq!(all.len(), 1, "{text}");
        assert!(all[0].contains("error: malformed chunked body"), "{text}");
        assert!(all[0].contains("connection: close"), "{text}");
    }

    #[tokio::test]
    async fn heads_too_large_are_refused_while_still_arriving() {
        let (mut client, _tx, task) = start_with(echo);
        let mut head = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 9000));
        client.write_all(&head).await.unwrap();
        // The head never ends; the answer comes anyway.
        let mut got = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(
            got[..n].starts_with(b"HTTP/1.1 400 "),
            "{:?}",
            String::from_utf8_lossy(&got[..n])
        );
        assert!(matches!(task.await.unwrap(), Err(Http1Error::BadHead(_))));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            many.extend(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert!(exchange(&many).await.starts_with("HTTP/1.1 400 "));
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_chunks_or_close() {
        let stream = |req: Request<RequestBody>| -> Answer {
            Box::pin(async move {
                let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
                tokio::spawn(async move {
                    for piece in ["ab", "", "cde"] {
                        let _ = tx.send(Bytes::from(piece)).await;
                    }
                });
                let mut resp = Response::new(BodyExt::boxed(Paced(rx)));
                if req.uri().path() == "/nocontent" {
                    *resp.status_mut() = StatusCode::NO_CONTENT;
                    resp.headers_mut()
                        .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
                }
                if req.uri().path() == "/sized" {
                    resp.headers_mut()
                        .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
                }
                resp
            })
        };
        let (mut client, _tx, _task) = start_with(stream);
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nHEAD /sized HTTP/1.1\r\n\r\nGET /sized HTTP/1.1\r\n\r\nGET /nocontent HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let text = read_all(&mut client).await;
        let all = answers(&text);
        assert_eq!(all.len(), 5, "{text}");
        assert!(all[0].contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(
            all[0].ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
            "{text}"
        );
        assert!(
            all[1].contains("content-length: 5\r\n") && all[1].ends_with("\r\n\r\n"),
            "{text}"
        );
        assert!(
            all[2].contains("content-length: 5\r\n") && all[2].ends_with("\r\n\r\nabcde"),
            "{text}"
        );
        assert!(
            !all[3].contains("content-length") && all[3].ends_with("\r\n\r\n"),
            "{text}"
        );
        // HTTP/1.0 without a length: until the close.
        assert!(
            !all[4].contains("transfer-encoding") && !all[4].contains("content-length"),
            "{text}"
        );
        assert!(all[4].ends_with("\r\n\r\nabcde"), "{text}");
    }

    #[tokio::test]
    async fn http10_keeps_the_connection_only_when_asked() {
        let text = exchange(
            b"GET /a HTTP/1.0\r\nconnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n",
        )
        .await;
        let all = answers(&text);
        assert_eq!(all.len(), 2, "{text}");
        assert!(all[0].contains("connection: keep-alive\r\n"), "{text}");
        assert!(!all[1].contains("connection: keep-alive"), "{text}");
    }

    #[tokio::test]
    async fn continue_is_sent_only_when_the_body_is_read() {
        let (mut client, _tx, _task) = start_with(echo);
        client
            .write_all(b"PUT /a HTTP/1.1\r\ncontent-length: 3\r\nexpect: 100-continue\r\n\r\n")
            .await
            .unwrap();
        let mut got = vec![0u8; 64];
        let n = client.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], CONTINUE);
        client
            .write_all(
                b"abcPUT /unread HTTP/1.1\r\ncontent-length: 3\r\nexpect: 100-continue\r\n\r\n",
            )
            .await
            .unwrap();
        let text = read_all(&mut client).await;
        let all = answers(&text);
        assert_eq!(all.len(), 2, "{text}");
        assert!(all[0].ends_with("PUT /a 3 abc"), "{text}");
        // Answered without reading the body: no 100, and the connection
        // ends (the body's bytes would otherwise be read as a request).
        assert!(
            !all[1].contains("100 Continue") && all[1].contains("connection: close"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_unread_body_ends_the_connection() {
        let text = exchange(
            b"PUT /unread HTTP/1.1\r\ncontent-length: 22\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
        )
        .await;
        assert_eq!(answers(&text).len(), 1, "{text}");
        assert!(
            text.contains("connection: close\r\n") && text.ends_with("refused"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_client_leaving_drops_its_request() {
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let seen = dropped.clone();
        let (mut client, _tx, task) = start_with(move |_req| {
            let guard = Dropped(seen.clone());
            Box::pin(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                unreachable!()
            })
        });
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn shutdown_ends_idle_connections_and_lets_answers_finish() {
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
        let (mut client, tx, task) = start_with(move |_req| {
            let mut gate = gate_rx.clone();
            Box::pin(async move {
                let _ = gate.wait_for(|open| *open).await;
                Response::new(Empty::new().map_err(|e| match e {}).boxed())
            })
        });
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(true).unwrap();
        gate_tx.send(true).unwrap();
        let text = read_all(&mut client).await;
        assert_eq!(answers(&text).len(), 1, "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        // An empty body of no stated size is sent with its length, 0.
        assert!(text.contains("content-length: 0\r\n"), "{text}");
        task.await.unwrap().unwrap();

        // Idle when the shutdown comes: closed at once.
        let (mut client, tx, task) = start_with(echo);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = vec![0u8; 1024];
        let _ = client.read(&mut got).await.unwrap();
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_body_held_past_its_connection_fails_and_holds_no_socket() {
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<RequestBody>();
        let mut held_tx = Some(held_tx);
        let (mut client, _tx, task) = start_with(move |req| {
            // Kept elsewhere, as hyper's upstream client keeps an upload's.
            let _ = held_tx.take().unwrap().send(req.into_body());
            Box::pin(async {
                Response::new(
                    Full::new(Bytes::from_static(b"early"))
                        .map_err(|e| match e {})
                        .boxed(),
                )
            })
        });
        client
            .write_all(b"PUT / HTTP/1.1\r\ncontent-length: 100\r\n\r\nabc")
            .await
            .unwrap();
        let mut body = held_rx.await.unwrap();
        let text = read_all(&mut client).await;
        assert!(
            text.ends_with("early") && text.contains("connection: close"),
            "{text}"
        );
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // The connection ended: the body fails instead of reading on.
        let frame = body.frame().await;
        assert!(matches!(frame, Some(Err(_))), "{frame:?}");
        assert!(!body.is_end_stream());
    }

    #[tokio::test]
    async fn an_ended_body_reads_nothing_of_the_next_request() {
        let stash: Arc<Mutex<Option<RequestBody>>> = Arc::default();
        let (mut client, _tx, _task) = start_with(move |req| {
            let stash = stash.clone();
            Box::pin(async move {
                let (parts, mut body) = req.into_parts();
                let mut old = stash.lock().unwrap().take();
                if let Some(old) = old.as_mut() {
                    // The earlier request's body, polled again: it has ended.
                    assert!(old.frame().await.is_none());
                }
                // Read as far as its length, as a consumer that trusts the
                // length may: not polled again to see the end.
                let length = parts
                    .headers
                    .get(CONTENT_LENGTH)
                    .map(|v| v.to_str().unwrap().parse::<usize>().unwrap());
                let mut got = Vec::new();
                while length.is_none_or(|n| got.len() < n) {
                    let Some(frame) = body.frame().await else {
                        break;
                    };
                    got.extend_from_slice(&frame.unwrap().into_data().unwrap());
                }
                *stash.lock().unwrap() = Some(body);
                let text = format!("{} {}", parts.uri, String::from_utf8_lossy(&got));
                Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed())
            })
        });
        client
            .write_all(
                b"PUT /a HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc\
                  PUT /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n\
                  PUT /c HTTP/1.1\r\ncontent-length: 3\r\nconnection: close\r\n\r\nghi",
            )
            .await
            .unwrap();
        let text = read_all(&mut client).await;
        let all = answers(&text);
        assert_eq!(all.len(), 3, "{text}");
        assert!(
            all[0].ends_with("/a abc") && all[1].ends_with("/b def"),
            "{text}"
        );
        assert!(all[2].ends_with("/c ghi"), "{text}");
    }

    #[tokio::test]
    async fn a_sized_answer_ends_at_its_length_and_the_connection_goes_on() {
        /// Its declared bytes, then nothing, never ending.
        struct Stalls(Option<Bytes>);
        impl Body for Stalls {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
                match self.0.take() {
                    Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                    None => Poll::Pending,
                }
            }
        }
        let (mut client, _tx, _task) = start_with(|_req| {
            Box::pin(async {
                let mut resp =
                    Response::new(BodyExt::boxed(Stalls(Some(Bytes::from_static(b"abcde")))));
                resp.headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
                resp
            })
        });
        client
            .write_all(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let text = read_all(&mut client).await;
        let all = answers(&text);
        assert_eq!(all.len(), 2, "{text}");
        assert!(
            all[0].ends_with("\r\n\r\nabcde") && all[1].ends_with("\r\n\r\nabcde"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn line_ends_after_a_body_leave_the_connection_idle() {
        let (mut client, tx, task) = start_with(echo);
        client
            .write_all(b"POST /a HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc\r\n")
            .await
            .unwrap();
        let mut got = vec![0u8; 1024];
        let n = client.read(&mut got).await.unwrap();
        assert!(String::from_utf8_lossy(&got[..n]).ends_with("POST /a 3 abc"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Idle, not in the middle of a head: the shutdown closes it.
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_refusal_is_not_a_request_in_progress_and_ends_when_its_client_leaves() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (_tx, rx) = watch::channel(false);
        let activity = Activity::new();
        let counted = activity.clone();
        let task = tokio::spawn(async move {
            serve(server, &settings(), &counted, rx, |_req| -> Answer {
                // A refusal that cannot get its audit record's place.
                Box::pin(async { std::future::pending().await })
            })
            .await
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nbad header\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Not busy: the header timeout still bounds the connection.
        let idle = tokio::time::timeout(
            Duration::from_millis(200),
            activity.idle_for(Duration::from_millis(100)),
        );
        assert!(idle.await.is_ok());
        drop(client);
        let ended = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(ended, Err(Http1Error::BadHead(Unreadable::Malformed(_)))),
            "{ended:?}"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_keeps_no_buffer() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let shared: Shared = Arc::new(Mutex::new(Wire {
            buf: BytesMut::new(),
            body: BodyState::Done,
            continue_left: 0,
            continue_flush: false,
            answered: false,
            conn_waker: None,
            max_read: 1 << 18,
            io: Some(Box::new(server)),
        }));
        let mut cx = Context::from_waker(Waker::noop());
        client.write_all(b"GET / HT").await.unwrap();
        assert!(matches!(
            poll_fill_head(&shared, &mut cx),
            Poll::Ready(Ok(8))
        ));
        // Part of a head waits: the buffer stays.
        assert!(poll_fill_head(&shared, &mut cx).is_pending());
        assert!(lock(&shared).buf.capacity() >= 8);
        lock(&shared).buf.clear();
        assert!(poll_fill_head(&shared, &mut cx).is_pending());
        assert_eq!(lock(&shared).buf.capacity(), 0);
    }

    mod props {
        //! Properties over request streams in any framing, cut at any point:
        //! every request is answered once, in order, with exactly its body;
        //! and no input makes the connection panic or hang.

        use super::*;
        use proptest::prelude::*;

        /// One request: a method, a body, and whether it is sent chunked
        /// (then in these pieces, with an extension and a trailer or not).
        #[derive(Debug, Clone)]
        struct Sent {
            put: bool,
            body: Vec<u8>,
            chunks: Option<(Vec<usize>, bool)>,
        }

        fn sent() -> impl Strategy<Value = Sent> {
            (
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..300),
                prop::option::of((prop::collection::vec(1usize..80, 0..6), any::<bool>())),
            )
                .prop_map(|(put, body, chunks)| Sent { put, body, chunks })
        }

        fn wire_bytes(requests: &[Sent]) -> Vec<u8> {
            let mut out = Vec::new();
            for (i, r) in requests.iter().enumerate() {
                let method = if r.put { "PUT" } else { "POST" };
                let last = i + 1 == requests.len();
                out.extend_from_slice(format!("{method} /r{i} HTTP/1.1\r\nhost: x\r\n").as_bytes());
                if last {
                    out.extend_from_slice(b"connection: close\r\n");
                }
                match &r.chunks {
                    None => {
                        out.extend_from_slice(
                            format!("content-length: {}\r\n\r\n", r.body.len()).as_bytes(),
                        );
                        out.extend_from_slice(&r.body);
                    }
                    Some((sizes, decorated)) => {
                        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                        let mut rest = &r.body[..];
                        let mut sizes = sizes.iter().cycle();
                        while !rest.is_empty() {
                            let n = (*sizes.next().unwrap_or(&rest.len())).min(rest.len());
                            let ext = if *decorated { ";x=\"y\"" } else { "" };
                            out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
                            out.extend_from_slice(&rest[..n]);
                            out.extend_from_slice(b"\r\n");
                            rest = &rest[n..];
                        }
                        out.extend_from_slice(b"0\r\n");
                        if *decorated {
                            out.extend_from_slice(b"x-checksum: abc\r\n");
                        }
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
            out
        }

        /// Answers with the target and the body's bytes in hex.
        fn hex_echo(req: Request<RequestBody>) -> Answer {
            Box::pin(async move {
                let (parts, body) = req.into_parts();
                let text = match body.collect().await {
                    Ok(b) => format!("{} {}", parts.uri.path(), hex::encode(b.to_bytes())),
                    Err(e) => format!("{} error: {e}", parts.uri.path()),
                };
                Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed())
            })
        }

        /// Writes `bytes` in pieces cut at `cuts` (yielding between them),
        /// closes the sending side if `close` (a client leaving: a request
        /// in progress is then dropped), and reads what the server sent.
        fn run(bytes: Vec<u8>, cuts: Vec<usize>, close: bool) -> String {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (mut client, _tx, task) = start_with(hex_echo);
                let mut at = 0;
                for cut in cuts
                    .iter()
                    .map(|c| c % (bytes.len() + 1))
                    .chain([bytes.len()])
                {
                    if cut > at {
                        // The server may close first (after refusing what it
                        // read); what it answered is read below.
                        if client.write_all(&bytes[at..cut]).await.is_err() {
                            break;
                        }
                        at = cut;
                        tokio::task::yield_now().await;
                    }
                }
                if close {
                    let _ = client.shutdown().await;
                }
                let text = read_all(&mut client).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), task)
                    .await
                    .expect("the connection ends");
                text
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn every_request_is_answered_once_in_order_with_its_body(
                requests in prop::collection::vec(sent(), 1..5),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                let bytes = wire_bytes(&requests);
                let cuts = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect::<Vec<_>>();
                let mut sorted = cuts.clone();
                sorted.sort();
                let text = run(bytes, sorted, false);
                let all = answers(&text);
                prop_assert_eq!(all.len(), requests.len(), "{}", text);
                for (i, (answer, r)) in all.iter().zip(&requests).enumerate() {
                    let want = format!("\r\n\r\n/r{i} {}", hex::encode(&r.body));
                    prop_assert!(answer.ends_with(&want), "{} in {}", want, text);
                }
            }

            #[test]
            fn no_input_makes_the_connection_panic_or_hang(
                prefix in prop::sample::select(vec![
                    &b""[..],
                    b"POST /a HTTP/1.1\r\n",
                    b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
                    b"PUT /a HTTP/1.1\r\ncontent-length: 10\r\n\r\n",
                    b"GET /a HTTP/1.1\r\n\r\n",
                ]),
                noise in prop::collection::vec(
                    prop_oneof![
                        Just(b'\r'), Just(b'\n'), Just(b':'), Just(b';'), Just(b' '), Just(b'0'),
                        Just(b'a'), Just(b'F'), Just(b'\t'), Just(b'\x00'), any::<u8>(),
                    ],
                    0..400,
                ),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                let mut bytes = prefix.to_vec();
                bytes.extend_from_slice(&noise);
                let mut cuts = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect::<Vec<_>>();
                cuts.sort();
                let text = run(bytes, cuts, true);
                // Whatever came back is whole answers, each with a status line.
                for answer in answers(&text) {
                    prop_assert!(answer.contains("\r\n\r\n"), "{}", text);
                }
            }
        }
    }
}
