//! An aws-chunked request body on its way upstream: decoded and verified as
//! it streams, and re-framed for upstream.
//!
//! Hold-back: the frames of the most recent data, and the end of the body,
//! are released only once the decoder has verified everything (every chunk
//! signature, the final chunk, the trailer and its checksum) and the client's
//! body has ended. On any failure the stream ends with an error instead, so
//! upstream never receives a complete request and commits nothing.
//!
//! Upstream framing ([`Framing`]): without a trailer, the plain payload (the
//! caller sends `Content-Length` = decoded length). With a trailer, aws-chunked
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER` in 64 KiB chunks ending with the
//! client's verified trailer, so upstream verifies and stores the checksum the
//! client asked for. Payload bytes stay the client's buffers (zero-copy);
//! only the small framing lines are new.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{ChunkError, Decoder, Event, Trailer};
use crate::auth::checksum::Algorithm;
use crate::auth::payload::{BodyError, BodyFailure, BoxError};

/// Upstream chunk size: small enough that a store holding whole chunks in
/// memory (s3s does) stays bounded, large enough that framing costs nothing.
pub const UPSTREAM_CHUNK: u64 = 64 * 1024;

/// How the decoded payload is framed for upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The payload as is.
    Plain,
    /// aws-chunked `STREAMING-UNSIGNED-PAYLOAD-TRAILER` carrying the trailer.
    AwsChunked(Algorithm),
}

fn hex_len(n: u64) -> u64 {
    (64 - u64::from(n.leading_zeros())).div_ceil(4).max(1)
}

/// Length of a base64 checksum value for `alg`.
pub fn checksum_b64_len(alg: Algorithm) -> u64 {
    let raw = match alg {
        Algorithm::Crc32 | Algorithm::Crc32c => 4,
        Algorithm::Crc64Nvme => 8,
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
        Algorithm::Md5 => 16,
    };
    4 * (raw as u64).div_ceil(3)
}

impl Framing {
    /// The body length upstream sees for `decoded` payload bytes.
    pub fn encoded_length(self, decoded: u64) -> u64 {
        match self {
            Framing::Plain => decoded,
            Framing::AwsChunked(alg) => {
                let full = decoded / UPSTREAM_CHUNK;
                let rest = decoded % UPSTREAM_CHUNK;
                let mut n = full * (hex_len(UPSTREAM_CHUNK) + 2 + UPSTREAM_CHUNK + 2);
                if rest > 0 {
                    n += hex_len(rest) + 2 + rest + 2;
                }
                // "0\r\n" name ":" value "\r\n" "\r\n"
                n + 3 + alg.header_name().len() as u64 + 1 + checksum_b64_len(alg) + 2 + 2
            }
        }
    }
}

const CRLF: Bytes = Bytes::from_static(b"\r\n");

/// Splits payload into upstream aws-chunked frames.
struct Framer {
    framing: Framing,
    /// Payload bytes not yet framed.
    remaining: u64,
    /// Bytes still to come in the current upstream chunk (0: none open).
    open: u64,
}

impl Framer {
    fn push(&mut self, mut data: Bytes, out: &mut VecDeque<Bytes>) {
        if self.framing == Framing::Plain {
            out.push_back(data);
            return;
        }
        while !data.is_empty() {
            if self.open == 0 {
                self.open = self.remaining.min(UPSTREAM_CHUNK);
                out.push_back(Bytes::from(format!("{:x}\r\n", self.open)));
            }
            let n = usize::try_from(self.open)
                .unwrap_or(usize::MAX)
                .min(data.len());
            out.push_back(data.split_to(n));
            self.open -= n as u64;
            self.remaining -= n as u64;
            if self.open == 0 {
                out.push_back(CRLF);
            }
        }
    }

    fn finish(&self, trailer: Option<&Trailer>, out: &mut VecDeque<Bytes>) {
        if let Framing::AwsChunked(_) = self.framing {
            let mut end = String::from("0\r\n");
            if let Some(t) = trailer {
                end.push_str(t.algorithm.header_name());
                end.push(':');
                end.push_str(&t.value);
                end.push_str("\r\n");
            }
            end.push_str("\r\n");
            out.push_back(Bytes::from(end));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Streaming,
    /// Verified; waiting for the client's body to end before releasing.
    Verified,
    /// Everything released (or failed): nothing more to send.
    Finished,
}

/// See the module docs.
pub struct ChunkedBody<B> {
    inner: B,
    decoder: Decoder,
    framer: Framer,
    input: Bytes,
    ready: VecDeque<Bytes>,
    held: VecDeque<Bytes>,
    phase: Phase,
    failure: BodyFailure,
}

impl<B> ChunkedBody<B> {
    pub fn new(
        inner: B,
        decoder: Decoder,
        framing: Framing,
        decoded_length: u64,
        failure: BodyFailure,
    ) -> Self {
        ChunkedBody {
            inner,
            decoder,
            framer: Framer {
                framing,
                remaining: decoded_length,
                open: 0,
            },
            input: Bytes::new(),
            ready: VecDeque::new(),
            held: VecDeque::new(),
            phase: Phase::Streaming,
            failure,
        }
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failure.set(e.clone());
        self.phase = Phase::Finished;
        self.ready.clear();
        self.held.clear();
        self.input = Bytes::new();
        Poll::Ready(Some(Err(Box::new(e))))
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Data(d) => {
                // Release what was held; hold the newest data instead.
                self.ready.extend(self.held.drain(..));
                self.framer.push(d, &mut self.held);
            }
            Event::Done(trailer) => {
                self.framer.finish(trailer.as_ref(), &mut self.held);
                self.phase = Phase::Verified;
            }
        }
    }
}

fn chunk_error(e: ChunkError) -> BodyError {
    BodyError::Chunk(e)
}

impl<B> Body for ChunkedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(f) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(f))));
            }
            if this.phase == Phase::Finished {
                return Poll::Ready(None);
            }
            if !this.input.is_empty() {
                match this.decoder.decode(&mut this.input) {
                    Ok(Some(event)) => this.on_event(event),
                    Ok(None) => {}
                    Err(e) => return this.fail(chunk_error(e)),
                }
                continue;
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.input = data;
                    }
                }
                Some(Err(e)) => {
                    let e: BoxError = e.into();
                    return this.fail(BodyError::transport(&e));
                }
                None => {
                    match this.decoder.finish() {
                        Ok(Some(event)) => this.on_event(event),
                        Ok(None) => {}
                        Err(e) => return this.fail(chunk_error(e)),
                    }
                    if this.phase != Phase::Verified {
                        return this.fail(chunk_error(ChunkError::Truncated));
                    }
                    // Verified and the client is done: release the rest.
                    this.ready.extend(this.held.drain(..));
                    this.phase = Phase::Finished;
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
