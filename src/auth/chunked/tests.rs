//! The decoder against bodies framed and signed by aws-sigv4's own
//! `sign_chunk` / `sign_trailer` (what aws-sdk-rust sends), fed whole and a
//! byte at a time, and against every way such a body can be wrong.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::http::Headers;

use super::*;
use crate::auth::checksum::checksum_base64;
use crate::auth::signing::SigningKey;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600) // 20130524T000000Z
}

/// Frames `chunks` the way the SDK does; `trailer` adds a CRC32C trailer.
fn signed_body(chunks: &[&[u8]], trailer: bool, seed: &str) -> Vec<u8> {
    let identity = Credentials::new("AKID", SECRET, None, None, "t").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at())
        .settings(())
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut prev = seed.to_string();
    let mut all: Vec<u8> = Vec::new();
    for c in chunks.iter().chain(std::iter::once(&&b""[..])) {
        let sig = v4::sign_chunk(&Bytes::copy_from_slice(c), &prev, &params)
            .unwrap()
            .signature()
            .to_string();
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
        if !c.is_empty() {
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        all.extend_from_slice(c);
        prev = sig;
    }
    if trailer {
        let value = checksum_base64(Algorithm::Crc32c, &all);
        let mut h = Headers::new();
        h.insert("x-amz-checksum-crc32c", value.clone());
        let sig = v4::sign_trailer(&h, &prev, &params)
            .unwrap()
            .signature()
            .to_string();
        out.extend_from_slice(format!("x-amz-checksum-crc32c:{value}\r\n").as_bytes());
        out.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn unsigned_body(chunks: &[&[u8]], checksum: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if let Some(v) = checksum {
        out.extend_from_slice(format!("x-amz-checksum-crc32:{v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn signer(seed: &str) -> ChunkSigner {
    let mut s = [0u8; 32];
    hex::decode_to_slice(seed, &mut s).unwrap();
    ChunkSigner::new(
        SigningKey::derive(SECRET, "20130524", "us-east-1", "s3"),
        "20130524T000000Z".into(),
        "20130524/us-east-1/s3/aws4_request".into(),
        s,
    )
}

fn signed_cfg(len: u64, trailer: bool) -> DecoderConfig {
    DecoderConfig {
        signer: Some(signer(SEED)),
        trailer: trailer.then_some(Algorithm::Crc32c),
        signed_trailer: trailer,
        decoded_length: len,
    }
}

fn unsigned_cfg(len: u64) -> DecoderConfig {
    DecoderConfig {
        signer: None,
        trailer: Some(Algorithm::Crc32),
        signed_trailer: false,
        decoded_length: len,
    }
}

/// Feeds `body` in pieces of `step` bytes; returns the data and the end.
fn run(
    cfg: DecoderConfig,
    body: &[u8],
    step: usize,
) -> Result<(Vec<u8>, Option<Trailer>), ChunkError> {
    let mut d = Decoder::new(cfg);
    let mut data = Vec::new();
    let mut done = None;
    for piece in body.chunks(step.max(1)) {
        let mut input = Bytes::copy_from_slice(piece);
        while let Some(e) = d.decode(&mut input)? {
            match e {
                Event::Data(b) => data.extend_from_slice(&b),
                Event::Done(t) => done = Some(t),
            }
        }
    }
    if let Some(Event::Done(t)) = d.finish()? {
        done = Some(t);
    }
    let t = done.ok_or(ChunkError::Truncated)?;
    Ok((data, t))
}

fn payload() -> (Vec<u8>, Vec<u8>) {
    (vec![b'a'; 65536], vec![b'b'; 1024])
}

#[test]
fn signed_chunks_verify_whatever_the_buffer_boundaries() {
    let (a, b) = payload();
    for trailer in [false, true] {
        let body = signed_body(&[&a, &b], trailer, SEED);
        for step in [1, 2, 3, 7, 64, 4096, body.len()] {
            let (data, t) = run(signed_cfg(66560, trailer), &body, step)
                .unwrap_or_else(|e| panic!("trailer={trailer} step={step}: {e}"));
            assert_eq!(data.len(), 66560);
            assert_eq!(&data[..65536], &a[..]);
            assert_eq!(t.is_some(), trailer);
        }
    }
}

#[test]
fn aws_documented_seed_example_chains() {
    // The sigv4-streaming example: 64 KiB of 'a' then 1 KiB of 'a'; the first
    // chunk signature AWS publishes for this seed.
    let body = signed_body(&[&[b'a'; 65536], &[b'a'; 1024]], false, SEED);
    let text = String::from_utf8_lossy(&body[..90]).into_owned();
    assert!(
        text.starts_with(
            "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        ),
        "{text}"
    );
    assert!(run(signed_cfg(66560, false), &body, 1000).is_ok());
}

#[test]
fn data_is_zero_copy() {
    let body = Bytes::from(unsigned_body(
        &[&[7u8; 9000], b"tail"],
        Some(&checksum_base64(
            Algorithm::Crc32,
            &[&[7u8; 9000][..], b"tail"].concat(),
        )),
    ));
    let base = body.as_ptr() as usize;
    let mut d = Decoder::new(unsigned_cfg(9004));
    let mut input = body.clone();
    while let Some(e) = d.decode(&mut input).unwrap() {
        if let Event::Data(b) = e {
            let at = b.as_ptr() as usize;
            assert!(
                at >= base && at + b.len() <= base + body.len(),
                "data was copied"
            );
        }
    }
}

#[test]
fn unsigned_trailer_checksum_is_checked() {
    let data = [&[1u8; 8192][..], b"xyz"].concat();
    let good = checksum_base64(Algorithm::Crc32, &data);
    let body = unsigned_body(&[&data[..8192], b"xyz"], Some(&good));
    let (out, t) = run(unsigned_cfg(8195), &body, 100).unwrap();
    assert_eq!(out, data);
    assert_eq!(t.unwrap().value, good);
    let bad = unsigned_body(&[&data[..8192], b"xyz"], Some("AAAAAA=="));
    assert_eq!(
        run(unsigned_cfg(8195), &bad, 100).unwrap_err(),
        ChunkError::ChecksumMismatch {
            algorithm: Algorithm::Crc32
        }
    );
    let missing = unsigned_body(&[&data[..8192], b"xyz"], None);
    assert!(matches!(
        run(unsigned_cfg(8195), &missing, 100).unwrap_err(),
        ChunkError::MalformedTrailer(_)
    ));
}

#[test]
fn every_bad_body_is_refused() {
    let (a, b) = payload();
    let good = signed_body(&[&a, &b], true, SEED);
    let cfg = || signed_cfg(66560, true);
    let err = |body: &[u8]| run(cfg(), body, 333).unwrap_err();

    // Truncated anywhere: mid data, mid signature line, before the trailer.
    for cut in [10, 100, 40_000, good.len() - 200, good.len() - 1] {
        let e = err(&good[..cut]);
        assert!(
            matches!(e, ChunkError::Truncated | ChunkError::MalformedTrailer(_)),
            "cut {cut}: {e:?}"
        );
    }
    // A flipped payload byte breaks its chunk's signature.
    let mut flipped = good.clone();
    flipped[200] ^= 1;
    assert_eq!(err(&flipped), ChunkError::SignatureMismatch { chunk: 1 });
    // Chunks reordered / a signature replayed from another request.
    let other = signed_body(&[&a, &b], true, &"1".repeat(64));
    assert_eq!(err(&other), ChunkError::SignatureMismatch { chunk: 1 });
    // A chunk signature replayed from another chunk of the same body.
    let first_sig = &good[22..86];
    let second_at = good
        .windows(16)
        .enumerate()
        .filter(|(_, w)| w == b"chunk-signature=")
        .nth(1)
        .unwrap()
        .0
        + 16;
    let mut replayed = good.clone();
    replayed[second_at..second_at + 64].copy_from_slice(first_sig);
    assert_eq!(err(&replayed), ChunkError::SignatureMismatch { chunk: 2 });
    // The trailer: wrong checksum (re-signed is impossible without the key),
    // changed value, missing, or unsigned.
    let text = String::from_utf8_lossy(&good).into_owned();
    let trailer_at = text.find("x-amz-checksum-crc32c:").unwrap();
    let mut changed = good.clone();
    changed[trailer_at + 22] ^= 0x02;
    assert_eq!(err(&changed), ChunkError::TrailerSignatureMismatch);
    let sig_line = text.find("x-amz-trailer-signature:").unwrap();
    let mut unsigned = good[..sig_line].to_vec();
    unsigned.extend_from_slice(b"\r\n");
    assert!(matches!(err(&unsigned), ChunkError::MalformedTrailer(_)));
    let mut no_trailer = good[..trailer_at].to_vec();
    no_trailer.extend_from_slice(b"\r\n");
    assert!(matches!(err(&no_trailer), ChunkError::MalformedTrailer(_)));
    // Declared length disagrees with the chunks.
    assert_eq!(
        run(signed_cfg(66561, true), &good, 333).unwrap_err(),
        ChunkError::LengthMismatch {
            declared: 66561,
            received: 66560
        }
    );
    assert_eq!(
        run(signed_cfg(1000, true), &good, 333).unwrap_err(),
        ChunkError::TooLong { declared: 1000 }
    );
    // Data after the end.
    let mut extra = good.clone();
    extra.extend_from_slice(b"0\r\n");
    assert_eq!(err(&extra), ChunkError::TrailingData);
}

#[test]
fn framing_errors() {
    let cfg = || unsigned_cfg(u64::MAX);
    let e = |body: &[u8]| run(cfg(), body, 5).unwrap_err();
    assert_eq!(e(b"1ffffffffffffffff\r\n"), ChunkError::SizeOverflow);
    assert!(matches!(e(b"zz\r\n"), ChunkError::Malformed(_)));
    assert!(matches!(e(b"\r\n"), ChunkError::Malformed(_)));
    assert!(matches!(
        e(b"3;chunk-signature=00\r\nabc\r\n"),
        ChunkError::Malformed(_)
    ));
    assert!(matches!(e(b"3\r\nabcX\r\n"), ChunkError::Malformed(_)));
    let long = vec![b'0'; MAX_LINE + 10];
    assert!(matches!(e(&long), ChunkError::Malformed(_)));
    // Missing final chunk: the body just stops after a data chunk.
    assert_eq!(
        run(unsigned_cfg(3), b"3\r\nabc\r\n", 2).unwrap_err(),
        ChunkError::Truncated
    );
    // A signed stream without signatures.
    assert!(matches!(
        run(signed_cfg(3, false), b"3\r\nabc\r\n", 2).unwrap_err(),
        ChunkError::Malformed(_)
    ));
}

#[test]
fn small_chunks_only_at_the_end() {
    let small = [9u8; 100];
    let big = [9u8; 8192];
    let data = [&small[..], &big[..]].concat();
    let sum = checksum_base64(Algorithm::Crc32, &data);
    let body = unsigned_body(&[&small, &big], Some(&sum));
    assert_eq!(
        run(unsigned_cfg(8292), &body, 50).unwrap_err(),
        ChunkError::ChunkTooSmall {
            chunk: 1,
            size: 100
        }
    );
    let data = [&big[..], &small[..]].concat();
    let sum = checksum_base64(Algorithm::Crc32, &data);
    let body = unsigned_body(&[&big, &small], Some(&sum));
    assert!(run(unsigned_cfg(8292), &body, 50).is_ok());
}

#[test]
fn empty_bodies() {
    let body = signed_body(&[], false, SEED);
    assert_eq!(run(signed_cfg(0, false), &body, 1).unwrap().0.len(), 0);
    let body = unsigned_body(&[], Some("AAAAAA=="));
    assert!(run(unsigned_cfg(0), &body, 1).is_ok());
    // A trailer block closed by the end of the body is accepted.
    let body = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n";
    assert!(run(unsigned_cfg(0), body, 4).is_ok());
}

#[test]
fn decode_all_collects() {
    let (a, b) = payload();
    let body = signed_body(&[&a, &b], true, SEED);
    let (data, t) = decode_all(signed_cfg(66560, true), Bytes::from(body)).unwrap();
    assert_eq!(data.len(), 66560);
    assert_eq!(t.unwrap().algorithm, Algorithm::Crc32c);
}

mod hold_back {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::auth::chunked::body::{ChunkedBody, Framing};
    use crate::auth::payload::{BodyError, BodyFailure, BoxError};

    type Frames = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, BoxError>>>,
    >;

    fn stream(body: &[u8], step: usize) -> Frames {
        let frames: Vec<Result<http_body::Frame<Bytes>, BoxError>> = body
            .chunks(step)
            .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    /// Pulls frames until the end or an error: (bytes released, error?).
    async fn drain(mut b: ChunkedBody<Frames>) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => out.extend_from_slice(&f.into_data().unwrap()),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    #[tokio::test]
    async fn a_bad_last_chunk_never_releases_the_end() {
        let (a, b) = payload();
        let mut body = signed_body(&[&a, &b], false, SEED);
        let last = body.len() - 120; // inside the second chunk's data
        body[last] ^= 1;
        let failure = BodyFailure::default();
        let cb = ChunkedBody::new(
            stream(&body, 4096),
            Decoder::new(signed_cfg(66560, false)),
            Framing::Plain,
            66560,
            failure.clone(),
        );
        let (released, failed) = drain(cb).await;
        assert!(failed);
        assert!(released.len() < 66560, "the whole payload went out");
        assert_eq!(
            failure.get(),
            Some(BodyError::Chunk(ChunkError::SignatureMismatch { chunk: 2 }))
        );
    }

    #[tokio::test]
    async fn a_good_body_is_reframed_with_its_trailer() {
        let data = [&[5u8; 70_000][..], b"end"].concat();
        let crc = checksum_base64(Algorithm::Crc32, &data);
        let body = unsigned_body(&[&data[..70_000], b"end"], Some(&crc));
        let framing = Framing::AwsChunked(Algorithm::Crc32);
        let cb = ChunkedBody::new(
            stream(&body, 1000),
            Decoder::new(unsigned_cfg(70_003)),
            framing,
            70_003,
            BodyFailure::default(),
        );
        let (out, failed) = drain(cb).await;
        assert!(!failed);
        assert_eq!(out.len() as u64, framing.encoded_length(70_003));
        // The re-framed body decodes back to the payload and the same trailer.
        let (decoded, trailer) = decode_all(unsigned_cfg(70_003), Bytes::from(out)).unwrap();
        assert_eq!(&decoded[..], &data[..]);
        assert_eq!(trailer.unwrap().value, crc);
    }
}
