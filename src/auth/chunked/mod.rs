//! aws-chunked request bodies (`Content-Encoding: aws-chunked`), decoded
//! incrementally and verified as they stream, as S3 does it:
//!
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: `<hex>;chunk-signature=<sig>\r\n<data>\r\n`
//!   chunks, each signature chained from the previous one (the first from the
//!   request's own signature, the seed), ending with a signed zero-length chunk.
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same, then trailing
//!   headers (`x-amz-checksum-*`) and an `x-amz-trailer-signature` over them,
//!   chained from the final chunk's signature.
//! - `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: `<hex>\r\n<data>\r\n` chunks, `0\r\n`,
//!   then the trailing checksum, unsigned; integrity rests on the checksum.
//!
//! Every chunk but the last data chunk must carry at least 8192 bytes
//! (`InvalidChunkSizeError`); the data must add up to
//! `x-amz-decoded-content-length`; size lines and the trailer block are
//! bounded. The trailing checksum is computed over the data and compared.
//!
//! The decoder is pure: it is fed the received buffers and yields data as
//! zero-copy slices of them ([`Bytes::split_to`]); it knows nothing of I/O.
//! [`body::ChunkedBody`] wraps it around a request body.

pub mod body;

use std::fmt;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::checksum::{Algorithm, Hasher};
use super::signing::{SigningKey, hex32};

/// Every chunk except the last data chunk must hold at least this many bytes.
pub const MIN_CHUNK_SIZE: u64 = 8192;
/// Longest chunk header line accepted (`<hex>;chunk-signature=<64 hex>` is 90).
pub const MAX_LINE: usize = 4096;
/// Longest trailer block accepted.
pub const MAX_TRAILER: usize = 16 * 1024;

const EMPTY_SHA256_HEX: &[u8] = b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The aws-chunked variants of `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingMode {
    SignedPayload,
    SignedPayloadTrailer,
    UnsignedPayloadTrailer,
}

impl StreamingMode {
    pub fn parse(value: &str) -> Option<StreamingMode> {
        Some(match value {
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => StreamingMode::SignedPayload,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => StreamingMode::SignedPayloadTrailer,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => StreamingMode::UnsignedPayloadTrailer,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamingMode::SignedPayload => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            StreamingMode::SignedPayloadTrailer => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            StreamingMode::UnsignedPayloadTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        }
    }

    pub fn signed_chunks(self) -> bool {
        !matches!(self, StreamingMode::UnsignedPayloadTrailer)
    }

    pub fn has_trailer(self) -> bool {
        !matches!(self, StreamingMode::SignedPayload)
    }
}

/// What chains chunk signatures: the signing key, the request's timestamp
/// and scope, and the previous signature (the seed at first).
#[derive(Clone)]
pub struct ChunkSigner {
    key: SigningKey,
    timestamp: String,
    scope: String,
    previous: [u8; 32],
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("timestamp", &self.timestamp)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    pub fn new(key: SigningKey, timestamp: String, scope: String, seed: [u8; 32]) -> ChunkSigner {
        ChunkSigner {
            key,
            timestamp,
            scope,
            previous: seed,
        }
    }

    /// The signature of a chunk whose data hashes to `data_hash`.
    fn chunk(&self, data_hash: &[u8; 32]) -> [u8; 32] {
        self.key.sign_lines(
            b"AWS4-HMAC-SHA256-PAYLOAD",
            self.timestamp.as_bytes(),
            self.scope.as_bytes(),
            &[
                &hex32(&self.previous),
                b"\n",
                EMPTY_SHA256_HEX,
                b"\n",
                &hex32(data_hash),
            ],
        )
    }

    /// The signature of trailing headers whose canonical text hashes to `hash`.
    fn trailer(&self, hash: &[u8; 32]) -> [u8; 32] {
        self.key.sign_lines(
            b"AWS4-HMAC-SHA256-TRAILER",
            self.timestamp.as_bytes(),
            self.scope.as_bytes(),
            &[&hex32(&self.previous), b"\n", &hex32(hash)],
        )
    }
}

/// How a body is framed and what it promises.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Present when chunks are signed.
    pub signer: Option<ChunkSigner>,
    /// The checksum the trailer carries (from `x-amz-trailer`), if any.
    pub trailer: Option<Algorithm>,
    /// The trailer block ends with `x-amz-trailer-signature`.
    pub signed_trailer: bool,
    /// `x-amz-decoded-content-length`.
    pub decoded_length: u64,
}

/// The trailing checksum of a body, verified against its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    pub algorithm: Algorithm,
    /// Base64, as sent.
    pub value: String,
}

/// What the decoder produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Payload bytes: a slice of a received buffer.
    Data(Bytes),
    /// The final chunk and any trailer have arrived and verified.
    Done(Option<Trailer>),
}

/// Why an aws-chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the body ended before its final chunk")]
    Truncated,
    #[error("malformed chunk framing: {0}")]
    Malformed(&'static str),
    #[error("chunk size does not fit in 64 bits")]
    SizeOverflow,
    #[error("chunk {chunk} holds {size} bytes; only the last chunk may hold fewer than 8192")]
    ChunkTooSmall { chunk: u64, size: u64 },
    #[error("the chunks hold more than the {declared} bytes of x-amz-decoded-content-length")]
    TooLong { declared: u64 },
    #[error("the chunks hold {received} bytes, not the {declared} of x-amz-decoded-content-length")]
    LengthMismatch { declared: u64, received: u64 },
    #[error("chunk {chunk} signature does not match")]
    SignatureMismatch { chunk: u64 },
    #[error("trailer is not well formed: {0}")]
    MalformedTrailer(&'static str),
    #[error("trailer signature does not match")]
    TrailerSignatureMismatch,
    #[error("the {algorithm:?} checksum does not match the data")]
    ChecksumMismatch { algorithm: Algorithm },
    #[error("data follows the end of the body")]
    TrailingData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line.
    SizeLine,
    /// Inside a chunk's data.
    Data { remaining: u64 },
    /// Expecting the CRLF after a chunk's data; `seen` of it arrived.
    DataEnd { seen: u8 },
    /// Reading the trailer block after the final chunk.
    Trailers,
    /// Everything verified; only the end of the body may follow.
    Done,
}

/// The incremental aws-chunked decoder. See the module docs.
pub struct Decoder {
    cfg: DecoderConfig,
    state: State,
    /// A partial line (size line or trailer block) across buffers.
    line: Vec<u8>,
    /// Signature announced for the chunk being read.
    announced: [u8; 32],
    chunk_hash: Sha256,
    checksum: Option<Hasher>,
    chunks: u64,
    last_size: Option<u64>,
    received: u64,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("state", &self.state)
            .field("chunks", &self.chunks)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn parse_hex_size(s: &[u8]) -> Result<u64, ChunkError> {
    if s.is_empty() {
        return Err(ChunkError::Malformed("empty chunk size"));
    }
    let mut n: u64 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(ChunkError::Malformed("chunk size is not hexadecimal")),
        };
        n = n
            .checked_mul(16)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(ChunkError::SizeOverflow)?;
    }
    Ok(n)
}

impl Decoder {
    pub fn new(cfg: DecoderConfig) -> Decoder {
        let checksum = cfg.trailer.map(Algorithm::hasher);
        Decoder {
            cfg,
            state: State::SizeLine,
            line: Vec::new(),
            announced: [0; 32],
            chunk_hash: Sha256::new(),
            checksum,
            chunks: 0,
            last_size: None,
            received: 0,
        }
    }

    /// True once the whole body has been decoded and verified.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes from `input` until it can report an event; `Ok(None)`
    /// means `input` is used up and more is needed.
    pub fn decode(&mut self, input: &mut Bytes) -> Result<Option<Event>, ChunkError> {
        loop {
            if input.is_empty() {
                return Ok(None);
            }
            match self.state {
                State::SizeLine => {
                    let Some(line) = self.take_line(input, MAX_LINE)? else {
                        return Ok(None);
                    };
                    self.start_chunk(&line)?;
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let data = input.split_to(n);
                    if self.cfg.signer.is_some() {
                        self.chunk_hash.update(&data);
                    }
                    if let Some(h) = &mut self.checksum {
                        h.update(&data);
                    }
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd { seen: 0 }
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Some(Event::Data(data)));
                }
                State::DataEnd { seen } => {
                    let want = b"\r\n"[usize::from(seen)];
                    if input[0] != want {
                        return Err(ChunkError::Malformed("chunk data is not followed by CRLF"));
                    }
                    let _ = input.split_to(1);
                    if seen == 0 {
                        self.state = State::DataEnd { seen: 1 };
                    } else {
                        self.end_chunk()?;
                        self.state = State::SizeLine;
                    }
                }
                State::Trailers => {
                    if let Some(event) = self.read_trailers(input)? {
                        return Ok(Some(event));
                    }
                }
                State::Done => return Err(ChunkError::TrailingData),
            }
        }
    }

    /// The body has ended. Returns the `Done` event if the end of input is
    /// what completed it; fails if the body stopped short.
    pub fn finish(&mut self) -> Result<Option<Event>, ChunkError> {
        match self.state {
            State::Done => Ok(None),
            // Some signers end the trailer block at the end of the body
            // instead of with an empty line.
            State::Trailers if self.line_is_complete_block() => {
                let event = self.complete_trailers()?;
                Ok(Some(event))
            }
            _ => Err(ChunkError::Truncated),
        }
    }

    fn line_is_complete_block(&self) -> bool {
        self.line.ends_with(b"\r\n") || self.line.is_empty() && self.cfg.trailer.is_none()
    }

    /// Accumulates up to CRLF; returns the line without it.
    fn take_line(
        &mut self,
        input: &mut Bytes,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, ChunkError> {
        // A CR at the end of the previous buffer may pair with an LF here.
        if self.line.last() == Some(&b'\r') && input.first() == Some(&b'\n') {
            let _ = input.split_to(1);
            self.line.pop();
            return Ok(Some(std::mem::take(&mut self.line)));
        }
        match find_crlf(input) {
            Some(i) => {
                if self.line.len() + i > limit {
                    return Err(ChunkError::Malformed("chunk header line is too long"));
                }
                self.line.extend_from_slice(&input[..i]);
                let _ = input.split_to(i + 2);
                Ok(Some(std::mem::take(&mut self.line)))
            }
            None => {
                if self.line.len() + input.len() > limit {
                    return Err(ChunkError::Malformed("chunk header line is too long"));
                }
                self.line.extend_from_slice(input);
                let _ = input.split_to(input.len());
                Ok(None)
            }
        }
    }

    fn start_chunk(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let (size_text, ext) = match line.iter().position(|&b| b == b';') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let size = parse_hex_size(size_text)?;
        match (&self.cfg.signer, ext) {
            (Some(_), Some(ext)) => {
                let sig = ext
                    .strip_prefix(b"chunk-signature=")
                    .ok_or(ChunkError::Malformed(
                        "chunk extension is not chunk-signature",
                    ))?;
                match crate::auth::signing::decode_hex32(sig) {
                    Some(announced) => self.announced = announced,
                    None => {
                        return Err(ChunkError::Malformed(
                            "chunk-signature is not 64 hex digits",
                        ));
                    }
                }
            }
            (Some(_), None) => return Err(ChunkError::Malformed("chunk has no chunk-signature")),
            (None, Some(_)) => {
                return Err(ChunkError::Malformed("unsigned chunk carries an extension"));
            }
            (None, None) => {}
        }
        if size > 0
            && let Some(prev) = self.last_size
            && prev < MIN_CHUNK_SIZE
        {
            return Err(ChunkError::ChunkTooSmall {
                chunk: self.chunks,
                size: prev,
            });
        }
        let declared = self.cfg.decoded_length;
        if size > declared - self.received {
            return Err(ChunkError::TooLong { declared });
        }
        self.chunks += 1;
        if size == 0 {
            if self.received != declared {
                return Err(ChunkError::LengthMismatch {
                    declared,
                    received: self.received,
                });
            }
            // The final chunk: signed over empty data, then the trailer.
            self.verify_chunk_signature()?;
            self.state = State::Trailers;
            return Ok(());
        }
        self.last_size = Some(size);
        self.received += size;
        self.state = State::Data { remaining: size };
        Ok(())
    }

    fn end_chunk(&mut self) -> Result<(), ChunkError> {
        self.verify_chunk_signature()
    }

    fn verify_chunk_signature(&mut self) -> Result<(), ChunkError> {
        let Some(signer) = &mut self.cfg.signer else {
            return Ok(());
        };
        let hash: [u8; 32] = std::mem::take(&mut self.chunk_hash).finalize().into();
        let expected = signer.chunk(&hash);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            &self.announced[..],
        )) {
            return Err(ChunkError::SignatureMismatch { chunk: self.chunks });
        }
        signer.previous = expected;
        Ok(())
    }

    /// Reads the trailer block up to its closing empty line.
    fn read_trailers(&mut self, input: &mut Bytes) -> Result<Option<Event>, ChunkError> {
        let room = MAX_TRAILER.saturating_sub(self.line.len());
        let upto = match self.block_end(input) {
            Some(end) => end,
            None => {
                if input.len() > room {
                    return Err(ChunkError::MalformedTrailer("trailer block is too long"));
                }
                self.line.extend_from_slice(input);
                let _ = input.split_to(input.len());
                return Ok(None);
            }
        };
        if upto > room {
            return Err(ChunkError::MalformedTrailer("trailer block is too long"));
        }
        self.line.extend_from_slice(&input[..upto]);
        let _ = input.split_to(upto);
        self.complete_trailers().map(Some)
    }

    /// Where the block (already partly in `self.line`) ends in `input`: just
    /// after the empty line (`\r\n\r\n`, or `\r\n` right at the start).
    fn block_end(&self, input: &[u8]) -> Option<usize> {
        // An empty block: the final chunk line is followed by an empty line.
        if self.line.is_empty() && input.starts_with(b"\r\n") {
            return Some(2);
        }
        if self.line == b"\r" && input.starts_with(b"\n") {
            return Some(1);
        }
        let carried = self.line.len().min(3);
        // Only a bounded prefix of input can close a bounded block.
        let scan = input.len().min(MAX_TRAILER + 4);
        let mut joined = Vec::with_capacity(carried + scan);
        joined.extend_from_slice(&self.line[self.line.len() - carried..]);
        joined.extend_from_slice(&input[..scan]);
        joined
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4 - carried)
    }

    /// Parses and verifies the collected trailer block.
    fn complete_trailers(&mut self) -> Result<Event, ChunkError> {
        let block = std::mem::take(&mut self.line);
        let text = std::str::from_utf8(&block)
            .map_err(|_| ChunkError::MalformedTrailer("trailer is not UTF-8"))?;
        let mut value: Option<&str> = None;
        let mut signature: Option<&str> = None;
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, v) = line
                .split_once(':')
                .ok_or(ChunkError::MalformedTrailer("trailer line has no ':'"))?;
            let name = name.trim();
            let v = v.trim();
            if name.eq_ignore_ascii_case("x-amz-trailer-signature") {
                if signature.replace(v).is_some() {
                    return Err(ChunkError::MalformedTrailer("trailer signature repeated"));
                }
            } else if self
                .cfg
                .trailer
                .is_some_and(|a| name.eq_ignore_ascii_case(a.header_name()))
            {
                if value.replace(v).is_some() {
                    return Err(ChunkError::MalformedTrailer("trailer repeated"));
                }
            } else {
                return Err(ChunkError::MalformedTrailer(
                    "trailer was not announced in x-amz-trailer",
                ));
            }
        }
        let trailer = match (self.cfg.trailer, value) {
            (Some(algorithm), Some(v)) => Some(Trailer {
                algorithm,
                value: v.to_string(),
            }),
            (Some(_), None) => {
                return Err(ChunkError::MalformedTrailer("announced trailer is missing"));
            }
            (None, _) => None,
        };
        match (self.cfg.signed_trailer, signature, &self.cfg.signer) {
            (true, Some(sig), Some(signer)) => {
                let mut canonical = Vec::with_capacity(96);
                if let Some(t) = &trailer {
                    canonical.extend_from_slice(t.algorithm.header_name().as_bytes());
                    canonical.push(b':');
                    canonical.extend_from_slice(t.value.as_bytes());
                    canonical.push(b'\n');
                }
                let hash: [u8; 32] = Sha256::digest(&canonical).into();
                let expected = signer.trailer(&hash);
                if !super::signing::signature_matches(&expected, sig) {
                    return Err(ChunkError::TrailerSignatureMismatch);
                }
            }
            (true, None, _) => {
                return Err(ChunkError::MalformedTrailer("trailer is not signed"));
            }
            (true, Some(_), None) => {
                return Err(ChunkError::MalformedTrailer(
                    "trailer signature without signed chunks",
                ));
            }
            (false, Some(_), _) => {
                return Err(ChunkError::MalformedTrailer("unexpected trailer signature"));
            }
            (false, None, _) => {}
        }
        if let (Some(t), Some(h)) = (&trailer, self.checksum.take())
            && h.finish_base64() != t.value
        {
            return Err(ChunkError::ChecksumMismatch {
                algorithm: t.algorithm,
            });
        }
        self.state = State::Done;
        Ok(Event::Done(trailer))
    }
}

/// Decodes a whole (small, already read) aws-chunked body, for control
/// bodies that are read before they are forwarded.
pub fn decode_all(cfg: DecoderConfig, raw: Bytes) -> Result<(Bytes, Option<Trailer>), ChunkError> {
    let mut decoder = Decoder::new(cfg);
    let mut input = raw;
    let mut out = BytesMut::new();
    let mut trailer = None;
    while let Some(event) = decoder.decode(&mut input)? {
        match event {
            Event::Data(d) => out.extend_from_slice(&d),
            Event::Done(t) => trailer = t,
        }
    }
    if let Some(Event::Done(t)) = decoder.finish()? {
        trailer = t;
    }
    Ok((out.freeze(), trailer))
}

#[cfg(test)]
mod tests;
