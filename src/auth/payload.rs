//! Signed payloads: what `x-amz-content-sha256` promises, and a body wrapper
//! that checks a whole-body SHA-256 while the bytes stream through
//! (aws-chunked bodies are handled by [`super::chunked`]).
//!
//! The wrapper holds back the last data frame until the whole body has been
//! hashed; on a mismatch it ends the stream with an error instead, so the
//! upstream request is aborted before upstream ever has a complete body.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};

use super::AuthError;
use super::chunked::{ChunkError, StreamingMode};

/// What the client's `x-amz-content-sha256` says about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    /// The SHA-256 of the whole body.
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
    /// An aws-chunked body (`STREAMING-…`).
    Streaming(StreamingMode),
}

pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

impl PayloadHash {
    /// Parses a header-signed request's `x-amz-content-sha256` value.
    pub fn parse(value: &str) -> Result<PayloadHash, AuthError> {
        if value == UNSIGNED_PAYLOAD {
            return Ok(PayloadHash::Unsigned);
        }
        if let Some(mode) = StreamingMode::parse(value) {
            return Ok(PayloadHash::Streaming(mode));
        }
        if value.starts_with("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD") {
            return Err(AuthError::NotImplemented(
                "SigV4a (ECDSA) chunk signing (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD)",
            ));
        }
        if value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && let Some(digest) = super::signing::decode_hex32(value.as_bytes())
        {
            return Ok(PayloadHash::Sha256(digest));
        }
        Err(AuthError::InvalidContentSha256(value.to_string()))
    }

    /// The value to sign with (and send upstream).
    pub fn as_header_value(&self) -> String {
        match self {
            PayloadHash::Sha256(d) => hex::encode(d),
            PayloadHash::Unsigned => UNSIGNED_PAYLOAD.to_string(),
            PayloadHash::Streaming(mode) => mode.as_str().to_string(),
        }
    }
}

/// Why a request body was cut off in flight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("payload sha256 mismatch: client said {claimed}, body hashes to {computed}")]
    Sha256Mismatch { claimed: String, computed: String },
    #[error("body ended after {received} of {expected} bytes")]
    Incomplete { received: u64, expected: u64 },
    #[error("body is larger than the {limit} bytes allowed")]
    TooLarge { limit: u64 },
    #[error("reading the body failed: {0}")]
    Transport(String),
    #[error("aws-chunked body refused: {0}")]
    Chunk(ChunkError),
    #[error("no body data for {secs} s")]
    IdleTimeout { secs: u64 },
}

impl BodyError {
    /// The reason behind a body stream's error: a `BodyError` raised by an
    /// inner wrapper (an idle timeout, say) keeps its meaning; anything
    /// else is the transport failing.
    pub fn transport(e: &BoxError) -> BodyError {
        e.downcast_ref::<BodyError>()
            .cloned()
            .unwrap_or_else(|| BodyError::Transport(e.to_string()))
    }
}

/// Where a body wrapper leaves the reason it failed, for the pipeline to report.
#[derive(Debug, Clone, Default)]
pub struct BodyFailure(Arc<Mutex<Option<BodyError>>>);

impl BodyFailure {
    pub fn set(&self, e: BodyError) {
        if let Ok(mut slot) = self.0.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
    }

    pub fn get(&self) -> Option<BodyError> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// SHA-256 of nothing.
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Passes a body through while hashing it, holding back one data frame so the
/// final bytes are released only after the hash has been checked.
pub struct Sha256VerifyingBody<B> {
    inner: B,
    hasher: Sha256,
    claimed: [u8; 32],
    held: Option<Bytes>,
    failure: BodyFailure,
    finished: bool,
}

impl<B> Sha256VerifyingBody<B> {
    pub fn new(inner: B, claimed: [u8; 32], failure: BodyFailure) -> Self {
        Sha256VerifyingBody {
            inner,
            hasher: Sha256::new(),
            claimed,
            held: None,
            failure,
            finished: false,
        }
    }
}

impl<B> Body for Sha256VerifyingBody<B>
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
        if this.finished {
            return Poll::Ready(this.held.take().map(|b| Ok(Frame::data(b))));
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        // Trailers on a plain signed body carry nothing we forward.
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    this.hasher.update(&data);
                    if let Some(prev) = this.held.replace(data) {
                        return Poll::Ready(Some(Ok(Frame::data(prev))));
                    }
                }
                Some(Err(e)) => {
                    let e: BoxError = e.into();
                    this.failure.set(BodyError::transport(&e));
                    this.finished = true;
                    this.held = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.finished = true;
                    let computed: [u8; 32] = std::mem::take(&mut this.hasher).finalize().into();
                    if computed != this.claimed {
                        let err = BodyError::Sha256Mismatch {
                            claimed: hex::encode(this.claimed),
                            computed: hex::encode(computed),
                        };
                        this.failure.set(err.clone());
                        this.held = None;
                        return Poll::Ready(Some(Err(Box::new(err))));
                    }
                    return Poll::Ready(this.held.take().map(|b| Ok(Frame::data(b))));
                }
            }
        }
    }

    /// Ended once everything was verified and released; an empty body
    /// claimed as empty has nothing to verify. (Nothing is held back before
    /// the first data frame, so no frame has been hashed yet while `held` is
    /// empty and the body is not finished.)
    fn is_end_stream(&self) -> bool {
        self.held.is_none()
            && (self.finished || (self.inner.is_end_stream() && self.claimed == EMPTY_SHA256))
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    type TestBody =
        StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

    fn stream(chunks: &[&'static [u8]]) -> TestBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn digest(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[tokio::test]
    async fn matching_body_passes_through_unchanged() {
        let failure = BodyFailure::default();
        let body = Sha256VerifyingBody::new(
            stream(&[b"hello ", b"wor", b"ld"]),
            digest(b"hello world"),
            failure.clone(),
        );
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"hello world");
        assert!(failure.get().is_none());
    }

    #[tokio::test]
    async fn mismatch_withholds_the_last_frame() {
        let failure = BodyFailure::default();
        let mut body = Sha256VerifyingBody::new(
            stream(&[b"aaaa", b"bbbb"]),
            digest(b"aaaacccc"),
            failure.clone(),
        );
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"aaaa");
        assert!(body.frame().await.unwrap().is_err());
        assert!(body.frame().await.is_none());
        assert!(matches!(
            failure.get(),
            Some(BodyError::Sha256Mismatch { .. })
        ));
    }

    #[tokio::test]
    async fn only_an_empty_body_claimed_empty_ends_before_it_is_read() {
        // Nothing to verify: a client (hyper, or the lean upstream exchange)
        // may skip reading it.
        let empty = Sha256VerifyingBody::new(
            http_body_util::Empty::<Bytes>::new(),
            EMPTY_SHA256,
            BodyFailure::default(),
        );
        assert_eq!(EMPTY_SHA256, digest(b""));
        assert!(http_body::Body::is_end_stream(&empty));
        // An empty body claimed as something else must be read, to fail.
        let failure = BodyFailure::default();
        let mut wrong = Sha256VerifyingBody::new(
            http_body_util::Empty::<Bytes>::new(),
            digest(b"x"),
            failure.clone(),
        );
        assert!(!http_body::Body::is_end_stream(&wrong));
        assert!(wrong.frame().await.unwrap().is_err());
        assert!(http_body::Body::is_end_stream(&wrong));
        assert!(failure.get().is_some());
        // A body with data ends only once all of it is verified and released.
        let mut full = Sha256VerifyingBody::new(stream(&[b"ab"]), digest(b"ab"), failure);
        assert!(!http_body::Body::is_end_stream(&full));
        assert!(full.frame().await.unwrap().is_ok());
        assert!(http_body::Body::is_end_stream(&full));
    }

    #[test]
    fn parses_content_sha256_values() {
        assert_eq!(
            PayloadHash::parse("UNSIGNED-PAYLOAD").unwrap(),
            PayloadHash::Unsigned
        );
        assert!(matches!(
            PayloadHash::parse(&"a".repeat(64)),
            Ok(PayloadHash::Sha256(_))
        ));
        assert!(PayloadHash::parse(&"A".repeat(64)).is_err());
        assert_eq!(
            PayloadHash::parse("STREAMING-UNSIGNED-PAYLOAD-TRAILER").unwrap(),
            PayloadHash::Streaming(StreamingMode::UnsignedPayloadTrailer)
        );
        assert!(matches!(
            PayloadHash::parse("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
            Err(AuthError::NotImplemented(_))
        ));
        assert!(PayloadHash::parse("nope").is_err());
    }
}
