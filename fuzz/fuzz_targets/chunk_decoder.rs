//! The aws-chunked decoder on arbitrary bodies, split into arbitrary
//! buffers: it must never panic, never yield more data than the declared
//! decoded length, and only yield data that is a slice of its input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use s3warden::auth::checksum::Algorithm;
use s3warden::auth::chunked::{ChunkSigner, Decoder, DecoderConfig, Event};
use s3warden::auth::signing::SigningKey;

fuzz_target!(|data: &[u8]| {
    let [mode, split, len_hi, len_lo, rest @ ..] = data else {
        return;
    };
    let decoded_length = u64::from(u16::from_be_bytes([*len_hi, *len_lo]));
    let signer = (mode & 1 == 1).then(|| {
        ChunkSigner::new(
            SigningKey::derive("fuzz-secret", "20240101", "us-east-1", "s3"),
            "20240101T000000Z".into(),
            "20240101/us-east-1/s3/aws4_request".into(),
            [0; 32],
        )
    });
    let trailer = match (mode >> 1) & 3 {
        0 => None,
        1 => Some(Algorithm::Crc32),
        2 => Some(Algorithm::Crc64Nvme),
        _ => Some(Algorithm::Sha256),
    };
    let signed_trailer = signer.is_some() && trailer.is_some() && mode & 8 != 0;
    let mut d = Decoder::new(DecoderConfig {
        signer,
        trailer,
        signed_trailer,
        decoded_length,
    });
    let step = usize::from(*split).max(1);
    let mut produced = 0u64;
    for piece in rest.chunks(step) {
        let buf = Bytes::copy_from_slice(piece);
        let (start, end) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        let mut input = buf.clone();
        loop {
            match d.decode(&mut input) {
                Ok(Some(Event::Data(x))) => {
                    let at = x.as_ptr() as usize;
                    assert!(x.is_empty() || (at >= start && at + x.len() <= end));
                    produced += x.len() as u64;
                    assert!(produced <= decoded_length);
                }
                Ok(Some(Event::Done(_))) => assert_eq!(produced, decoded_length),
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = d.finish();
});
