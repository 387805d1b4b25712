//! aws-chunked signed-payload verification throughput (decode, SHA-256 of
//! each chunk, chained chunk signature) beside plain SHA-256 of the same
//! buffers: the overhead of verifying chunk signatures in flight.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use s3warden::auth::chunked::{ChunkSigner, Decoder, DecoderConfig, Event};
use s3warden::auth::signing::{SigningKey, hex32};
use sha2::{Digest, Sha256};

const TOTAL: usize = 8 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// Buffers as a server receives them: 16 KiB reads, unaligned to chunks.
const READ: usize = 16 * 1024;

fn signer() -> ChunkSigner {
    ChunkSigner::new(
        SigningKey::derive("benchmark-secret", "20240101", "us-east-1", "s3"),
        "20240101T000000Z".into(),
        "20240101/us-east-1/s3/aws4_request".into(),
        [7; 32],
    )
}

/// Frames `data` with valid chained signatures (the same chain the decoder
/// computes, so the benchmark body verifies).
fn signed_body(data: &[u8]) -> Vec<u8> {
    let key = SigningKey::derive("benchmark-secret", "20240101", "us-east-1", "s3");
    let empty = hex32(&Sha256::digest(b"").into());
    let mut prev = [7u8; 32];
    let mut out = Vec::with_capacity(data.len() + data.len() / CHUNK * 100 + 200);
    for c in data.chunks(CHUNK).chain(std::iter::once(&[][..])) {
        let sig = key.sign_lines(
            b"AWS4-HMAC-SHA256-PAYLOAD",
            b"20240101T000000Z",
            b"20240101/us-east-1/s3/aws4_request",
            &[
                &hex32(&prev),
                b"\n",
                &empty,
                b"\n",
                &hex32(&Sha256::digest(c).into()),
            ],
        );
        out.extend_from_slice(format!("{:x};chunk-signature=", c.len()).as_bytes());
        out.extend_from_slice(&hex32(&sig));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(c);
        if !c.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        prev = sig;
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let body = Bytes::from(signed_body(&data));
    let reads: Vec<Bytes> = (0..body.len())
        .step_by(READ)
        .map(|i| body.slice(i..(i + READ).min(body.len())))
        .collect();
    let mut g = c.benchmark_group("aws-chunked 8 MiB, 64 KiB chunks, 16 KiB reads");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function("plain SHA-256 of the same buffers", |b| {
        b.iter(|| {
            let mut h = Sha256::new();
            for r in &reads {
                h.update(r);
            }
            h.finalize()
        })
    });
    g.bench_function("decode + verify chunk signatures", |b| {
        b.iter(|| {
            let mut d = Decoder::new(DecoderConfig {
                signer: Some(signer()),
                trailer: None,
                signed_trailer: false,
                decoded_length: TOTAL as u64,
            });
            let mut n = 0usize;
            for r in &reads {
                let mut input = r.clone();
                while let Some(e) = d.decode(&mut input).unwrap() {
                    if let Event::Data(x) = e {
                        n += x.len();
                    }
                }
            }
            assert!(d.finish().is_ok() && d.is_done());
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
