//! A lean HTTP/1.1 exchange for upstream requests without a body (GET and
//! HEAD: the reads that make up most of an S3 proxy's requests). The
//! request's own task writes the request head and reads the answer straight
//! from a pooled connection, and the answer's body is read from the socket
//! as the client's connection asks for it. hyper's client connection puts a
//! task of its own between them (the request handed over and the answer
//! handed back through channels, the body through a third), which measured
//! as the largest part of re-sending a small GET. Requests with a body keep
//! hyper's client (see `pool`), which writes a body while it reads an early
//! answer.
//!
//! The answer is framed as RFC 9112 §6.3 says, and fails closed where a
//! proxy could be made to disagree with upstream about where an answer
//! ends: both `Transfer-Encoding` and `Content-Length`, differing lengths,
//! a transfer coding other than `chunked`, a malformed chunk, or an answer
//! cut short are errors, and the connection is never used again after one.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::TRANSFER_ENCODING;
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::http1::{self, BadHeader, Chunk, Declared, FramingError, MAX_HEADERS, Step};

/// The largest answer head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The first read of an answer: a small object's whole answer fits.
const HEAD_READ: usize = 8 * 1024;
/// Body reads at most this much at once: large objects move in reads as
/// large as nginx's proxy buffers.
const BODY_READ: usize = 256 * 1024;
/// A body read goes into what is left of the current buffer while at least
/// this much is left: frames already handed on share that buffer, so a new
/// one per read (over TLS, reads of one 16 KiB record) would pin a whole
/// buffer per frame.
const READ_FLOOR: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// Nothing of an answer arrived: the connection was closed (or reset)
    /// before or while the request was written. A pooled connection that
    /// upstream closed while it idled ends this way.
    #[error("connection closed before an answer began: {0}")]
    Stale(std::io::Error),
    #[error("reading upstream's answer: {0}")]
    Io(std::io::Error),
    #[error("connection closed in the middle of the answer's head")]
    HeadCut,
    #[error("malformed answer head: {0}")]
    Head(httparse::Error),
    #[error("answer head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("upstream switched protocols, which was never asked for")]
    Switched,
    #[error("answer framed by both Transfer-Encoding and Content-Length")]
    TwoFramings,
    #[error("transfer coding {0:?} is not supported")]
    Coding(String),
    #[error("invalid Content-Length")]
    Length,
    #[error("malformed chunked body")]
    Chunk,
    #[error("connection closed {0} bytes short of the announced length")]
    Truncated(u64),
    #[error("connection closed in the middle of a chunked body")]
    ChunkCut,
}

/// One upstream HTTP/1.1 connection between exchanges.
pub struct Conn<S> {
    io: S,
    /// Bytes read but not yet used: empty between exchanges.
    buf: BytesMut,
    /// `buf` was grown past [`HEAD_READ`] for a body.
    grown: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S) -> Conn<S> {
        Conn {
            io,
            buf: BytesMut::new(),
            grown: false,
        }
    }

    pub fn into_io(self) -> S {
        self.io
    }

    /// Whether an idle connection can take a request: nothing to read
    /// (a closed connection reads its end, and a fit one has nothing to say
    /// between answers).
    pub fn is_fit(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut probe = [0u8; 1];
        let mut rb = tokio::io::ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// Writes `head` (a request without a body, see [`request_head`]) and
    /// reads the answer's head. `head_request`: the request was a HEAD, so
    /// the answer has no body whatever its headers say.
    pub async fn exchange(
        mut self,
        head: &[u8],
        head_request: bool,
    ) -> Result<(http::response::Parts, ReplyBody<S>), H1Error> {
        self.io.write_all(head).await.map_err(H1Error::Stale)?;
        self.io.flush().await.map_err(H1Error::Stale)?;
        let mut began = false;
        loop {
            if !self.buf.is_empty() {
                began = true;
                if let Some((parts, framing)) = self.parse_head(head_request)? {
                    let open = keeps_open(&parts.headers, parts.version);
                    let body = ReplyBody::new(self, framing, open);
                    return Ok((parts, body));
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(H1Error::HeadTooLarge);
                }
            }
            // A head longer than one read may grow the buffer past HEAD_READ.
            self.grown |= !self.buf.is_empty();
            self.buf.reserve(HEAD_READ);
            let n = match tokio_util::io::read_buf(&mut self.io, &mut self.buf).await {
                Ok(n) => n,
                Err(e) if !began => return Err(H1Error::Stale(e)),
                Err(e) => return Err(H1Error::Io(e)),
            };
            if n == 0 {
                return Err(if began {
                    H1Error::HeadCut
                } else {
                    H1Error::Stale(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
    }

    /// The answer's head if the buffer holds all of it (interim 1xx answers
    /// are skipped), taken from the buffer. Header values share the head's
    /// bytes rather than copy them.
    fn parse_head(
        &mut self,
        head_request: bool,
    ) -> Result<Option<(http::response::Parts, Framing)>, H1Error> {
        loop {
            // Where each header's name and value lie in the buffer.
            let mut at: [http1::Span; MAX_HEADERS] = [(0, 0, 0, 0); MAX_HEADERS];
            let (len, code, minor, count) = {
                let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut []);
                let parsed = httparse::ParserConfig::default()
                    .parse_response_with_uninit_headers(&mut resp, &self.buf, &mut headers)
                    .map_err(H1Error::Head)?;
                let len = match parsed {
                    httparse::Status::Complete(len) => len,
                    httparse::Status::Partial => return Ok(None),
                };
                http1::header_spans(&self.buf, resp.headers, &mut at);
                (len, resp.code, resp.version, resp.headers.len())
            };
            let code = code.ok_or(H1Error::Head(httparse::Error::Status))?;
            let status =
                StatusCode::from_u16(code).map_err(|_| H1Error::Head(httparse::Error::Status))?;
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(H1Error::Switched);
            }
            if status.is_informational() {
                self.buf.advance(len);
                if self.buf.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            let version = match minor {
                Some(1) => Version::HTTP_11,
                _ => Version::HTTP_10,
            };
            let head = self.buf.split_to(len).freeze();
            let map = http1::header_map(&head, &at[..count]).map_err(|e| {
                H1Error::Head(match e {
                    BadHeader::Name => httparse::Error::HeaderName,
                    BadHeader::Value => httparse::Error::HeaderValue,
                })
            })?;
            let framing = framing(status, version, &map, head_request)?;
            let mut parts = http::Response::new(()).into_parts().0;
            parts.status = status;
            parts.version = version;
            parts.headers = map;
            return Ok(Some((parts, framing)));
        }
    }
}

/// A bodiless request's head: `target` is the path and query (origin form).
/// Header values are `HeaderValue`s, which hold no CR or LF, so nothing a
/// header carries can end the head early.
pub fn request_head(method: &Method, target: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut size = method.as_str().len() + target.len() + 14;
    for (name, value) in headers {
        size += name.as_str().len() + value.len() + 4;
    }
    let mut head = Vec::with_capacity(size);
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the connection closes.
    Close,
}

/// RFC 9112 §6.3 (see [`http1::declared_framing`]); an answer without a
/// length or a coding ends when upstream closes.
fn framing(
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    head_request: bool,
) -> Result<Framing, H1Error> {
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    match http1::declared_framing(headers, version == Version::HTTP_11) {
        Ok(Declared::Chunked) => Ok(Framing::Chunked),
        Ok(Declared::Length(0)) => Ok(Framing::Empty),
        Ok(Declared::Length(n)) => Ok(Framing::Length(n)),
        Ok(Declared::None) => Ok(Framing::Close),
        Err(FramingError::TwoFramings) => Err(H1Error::TwoFramings),
        Err(FramingError::Coding) => {
            let all = headers
                .get_all(TRANSFER_ENCODING)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            Err(H1Error::Coding(all))
        }
        Err(FramingError::Length | FramingError::Chunk) => Err(H1Error::Length),
    }
}

/// Whether upstream keeps the connection open after an answer: HTTP/1.1
/// without `Connection: close`.
fn keeps_open(headers: &HeaderMap, version: Version) -> bool {
    version == Version::HTTP_11 && !http1::has_connection_token(headers, b"close")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
    /// Ended in an error: not an end of stream, so a truncated answer is
    /// never taken for a whole one.
    Failed,
}

/// An answer's body, read from the connection as it is polled. Once read
/// to its end, [`ReplyBody::reusable`] gives the connection back if it can
/// take another request.
pub struct ReplyBody<S> {
    conn: Option<Conn<S>>,
    state: State,
    /// Upstream said the connection stays open after this answer.
    keep_alive: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReplyBody<S> {
    /// `open`: upstream keeps the connection open after this answer (see
    /// [`keeps_open`]); an answer delimited by the close never does.
    fn new(conn: Conn<S>, framing: Framing, open: bool) -> ReplyBody<S> {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::Close => State::Close,
        };
        ReplyBody {
            conn: Some(conn),
            state,
            keep_alive: open && framing != Framing::Close,
        }
    }

    /// The connection, if the body has been read to its end, upstream keeps
    /// the connection open, and nothing beyond the answer arrived.
    pub fn reusable(&mut self) -> Option<Conn<S>> {
        if self.state != State::Done || !self.keep_alive {
            return None;
        }
        let mut conn = self.conn.take().filter(|c| c.buf.is_empty())?;
        // An idle connection keeps no large buffer. An empty view may still
        // hold the whole allocation a body was read into (`capacity()` says
        // only how much of it is left to this view), so the buffer goes
        // whenever it was grown; the head buffer of a small answer stays,
        // for the next answer.
        if conn.grown {
            conn.buf = BytesMut::new();
            conn.grown = false;
        }
        Some(conn)
    }

    /// Reads more into the buffer: at least one byte, or 0 at the end.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<Result<usize, H1Error>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        let want = want.clamp(1, BODY_READ);
        if conn.buf.capacity() - conn.buf.len() < want.min(READ_FLOOR) {
            conn.buf.reserve(want);
            conn.grown |= want > HEAD_READ;
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf)
            .map_err(H1Error::Io)
    }

    fn fail(&mut self, e: H1Error) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.conn = None;
        self.state = State::Failed;
        Poll::Ready(Some(Err(e)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> http_body::Body for ReplyBody<S> {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = &mut *self;
        loop {
            let buffered = this.conn.as_ref().map_or(0, |c| c.buf.len());
            match this.state {
                State::Done | State::Failed => return Poll::Ready(None),
                State::Length(left) => {
                    if buffered > 0 {
                        let conn = this
                            .conn
                            .as_mut()
                            .expect("buffered bytes have a connection");
                        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buffered);
                        let data = conn.buf.split_to(n).freeze();
                        let left = left - n as u64;
                        this.state = if left == 0 {
                            State::Done
                        } else {
                            State::Length(left)
                        };
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    let want = usize::try_from(left).unwrap_or(usize::MAX);
                    match this.poll_fill(cx, want) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(0)) => return this.fail(H1Error::Truncated(left)),
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => return this.fail(e),
                    }
                }
                State::Close => {
                    if buffered > 0 {
                        let conn = this
                            .conn
                            .as_mut()
                            .expect("buffered bytes have a connection");
                        let data = conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    match this.poll_fill(cx, BODY_READ) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(0)) => {
                            this.state = State::Done;
                            this.conn = None;
                            return Poll::Ready(None);
                        }
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => return this.fail(e),
                    }
                }
                State::Chunked(mut chunk) => {
                    let stepped = match this.conn.as_mut() {
                        Some(conn) => chunk.step(&mut conn.buf),
                        None => Ok(Step::NeedMore),
                    };
                    this.state = State::Chunked(chunk);
                    match stepped {
                        Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                        Ok(Step::Moved) => {}
                        Ok(Step::End) => this.state = State::Done,
                        Ok(Step::NeedMore) => match this.poll_fill(cx, chunk.want()) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(0)) => return this.fail(H1Error::ChunkCut),
                            Poll::Ready(Ok(_)) => {}
                            Poll::Ready(Err(e)) => return this.fail(e),
                        },
                        Err(_) => return this.fail(H1Error::Chunk),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::CONTENT_LENGTH;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, DuplexStream};

    /// Upstream's side of a connection answering with `answer` (sent in
    /// pieces of `piece` bytes) once it has read a request head.
    async fn exchange_with(
        answer: &'static [u8],
        piece: usize,
        head_request: bool,
    ) -> (
        Result<(http::response::Parts, ReplyBody<DuplexStream>), H1Error>,
        DuplexStream,
    ) {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let server = async move {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                theirs.read_exact(&mut b).await.unwrap();
                head.push(b[0]);
            }
            for p in answer.chunks(piece.max(1)) {
                // The reader may give up first (an answer it refuses).
                if theirs.write_all(p).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            theirs
        };
        let head = request_head(&Method::GET, "/b/k", &HeaderMap::new());
        let (result, theirs) = tokio::join!(Conn::new(ours).exchange(&head, head_request), server);
        (result, theirs)
    }

    async fn body_of(answer: &'static [u8], piece: usize) -> Result<(Bytes, bool), H1Error> {
        let (result, _theirs) = exchange_with(answer, piece, false).await;
        let (_, mut body) = result?;
        let mut all = BytesMut::new();
        while let Some(frame) = body.frame().await {
            all.extend_from_slice(frame?.data_ref().unwrap());
        }
        Ok((all.freeze(), body.reusable().is_some()))
    }

    #[test]
    fn request_heads_carry_the_target_and_every_header() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("b.example"));
        h.append("x-amz-meta-a", HeaderValue::from_static("1"));
        h.append("x-amz-meta-a", HeaderValue::from_static("2"));
        let head = request_head(&Method::HEAD, "/b/k%20x?acl=", &h);
        assert_eq!(
            head,
            b"HEAD /b/k%20x?acl= HTTP/1.1\r\nhost: b.example\r\nx-amz-meta-a: 1\r\nx-amz-meta-a: 2\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn sized_bodies_in_any_pieces_end_at_their_length_and_reuse_the_connection() {
        let answer: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nETag: \"x\"\r\n\r\nhello world";
        for piece in [1, 3, 7, 64, 4096] {
            let (body, reusable) = body_of(answer, piece).await.unwrap();
            assert_eq!(&body[..], b"hello world", "pieces of {piece}");
            assert!(reusable, "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded_in_any_pieces() {
        let answer: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n";
        for piece in [1, 2, 5, 13, 4096] {
            let (body, reusable) = body_of(answer, piece).await.unwrap();
            assert_eq!(&body[..], b"hello world", "pieces of {piece}");
            assert!(reusable, "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn interim_answers_are_skipped() {
        let answer: &[u8] =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for piece in [1, 4096] {
            let (result, _t) = exchange_with(answer, piece, false).await;
            let (parts, body) = result.unwrap();
            assert_eq!(parts.status, StatusCode::OK);
            assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"ok");
        }
    }

    #[tokio::test]
    async fn answers_without_a_body_end_at_their_head() {
        // HEAD announces the object's length; 204 and 304 carry nothing.
        let (result, _t) = exchange_with(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
            4096,
            true,
        )
        .await;
        let (parts, mut body) = result.unwrap();
        assert_eq!(parts.headers[CONTENT_LENGTH], "5000");
        assert!(http_body::Body::is_end_stream(&body));
        assert!(body.reusable().is_some());
        for answer in [
            &b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ] {
            let (body, reusable) = body_of(answer, 4096).await.unwrap();
            assert!(body.is_empty());
            assert!(reusable);
        }
    }

    #[tokio::test]
    async fn close_delimited_and_closing_answers_are_not_reused() {
        // No length: the body runs to the connection's end.
        let (result, theirs) = exchange_with(b"HTTP/1.1 200 OK\r\n\r\nsome", 4096, false).await;
        let (_, mut body) = result.unwrap();
        drop(theirs);
        assert_eq!(
            &body.frame().await.unwrap().unwrap().into_data().unwrap()[..],
            b"some"
        );
        assert!(body.frame().await.is_none());
        assert!(body.reusable().is_none());
        for answer in [
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"[..],
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            // More than the answer announced.
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
        ] {
            let (body, reusable) = body_of(answer, 4096).await.unwrap();
            assert_eq!(&body[..], b"ok");
            assert!(!reusable, "{}", String::from_utf8_lossy(answer));
        }
    }

    #[tokio::test]
    async fn ambiguous_or_broken_framing_is_refused() {
        let refused: [&[u8]; 8] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        ];
        for answer in refused {
            let (result, _t) = exchange_with(answer, 4096, false).await;
            assert!(result.is_err(), "{}", String::from_utf8_lossy(answer));
        }
        // Equal repeated lengths are one length.
        let (body, _) = body_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
            4096,
        )
        .await
        .unwrap();
        assert_eq!(&body[..], b"ok");
    }

    #[tokio::test]
    async fn malformed_chunks_fail_the_body() {
        let broken: [&[u8]; 5] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n",
        ];
        for answer in broken {
            assert!(
                matches!(body_of(answer, 4096).await, Err(H1Error::Chunk)),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn answers_cut_short_fail_and_are_never_reused() {
        for (answer, expect_truncated) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"[..],
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                false,
            ),
        ] {
            let (result, theirs) = exchange_with(answer, 4096, false).await;
            let (_, mut body) = result.unwrap();
            drop(theirs);
            let mut failed = None;
            while let Some(frame) = body.frame().await {
                if let Err(e) = frame {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                Some(H1Error::Truncated(5)) => assert!(expect_truncated),
                Some(H1Error::ChunkCut) => assert!(!expect_truncated),
                other => panic!("{other:?}"),
            }
            // Never mistaken for a whole answer, nor reused.
            assert!(!http_body::Body::is_end_stream(&body));
            assert!(body.frame().await.is_none());
            assert!(body.reusable().is_none());
        }
        // A head cut short, and a connection closed before any answer.
        let (ours, theirs) = tokio::io::duplex(1024);
        let mut theirs = theirs;
        let server = async move {
            let mut b = [0u8; 64];
            let _ = theirs.read(&mut b).await;
            theirs
                .write_all(b"HTTP/1.1 200 OK\r\nContent-")
                .await
                .unwrap();
        };
        let head = request_head(&Method::GET, "/", &HeaderMap::new());
        let (result, ()) = tokio::join!(Conn::new(ours).exchange(&head, false), server);
        assert!(
            matches!(result, Err(H1Error::HeadCut)),
            "{:?}",
            result.err()
        );
        let (ours, theirs) = tokio::io::duplex(1024);
        drop(theirs);
        let result = Conn::new(ours).exchange(&head, false).await;
        assert!(
            matches!(result, Err(H1Error::Stale(_))),
            "{:?}",
            result.err()
        );
    }

    #[tokio::test]
    async fn a_parked_connection_keeps_no_buffer() {
        for size in [4096, 100_000, 300_000] {
            let mut answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
            answer.resize(answer.len() + size, b'x');
            let answer: &'static [u8] = answer.leak();
            let (result, _theirs) = exchange_with(answer, 64 * 1024, false).await;
            let (_, mut body) = result.unwrap();
            let mut got = 0;
            while let Some(frame) = body.frame().await {
                got += frame.unwrap().into_data().unwrap().len();
            }
            assert_eq!(got, size);
            // Every frame dropped: a buffer the body was read into would
            // now be the connection's alone, and reclaimable.
            let mut conn = body.reusable().unwrap();
            assert!(!conn.buf.try_reclaim(HEAD_READ + 1), "{size}");
        }
    }

    #[tokio::test]
    async fn idle_connections_with_something_to_read_are_unfit() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut conn = Conn::new(ours);
        assert!(conn.is_fit());
        theirs.write_all(b"HTTP/1.1 408").await.unwrap();
        assert!(!conn.is_fit());
        let (ours, theirs) = tokio::io::duplex(1024);
        let mut conn = Conn::new(ours);
        drop(theirs);
        assert!(!conn.is_fit());
    }

    #[tokio::test]
    async fn oversized_heads_are_refused() {
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        while answer.len() <= MAX_HEAD {
            answer.extend_from_slice(b"x-filler: ");
            answer.extend_from_slice(&[b'a'; 2000]);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"\r\n");
        let answer: &'static [u8] = answer.leak();
        let (result, _t) = exchange_with(answer, 4096, false).await;
        assert!(
            matches!(result, Err(H1Error::HeadTooLarge)),
            "{:?}",
            result.err()
        );
    }
}
