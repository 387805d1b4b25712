//! Header-auth verification per request with a warm signing-key cache: parse
//! the Authorization header, build the canonical request, hash, HMAC, compare.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
use criterion::{Criterion, criterion_group, criterion_main};
use s3warden::auth::canonical::parse_query;
use s3warden::auth::sigv4::{AuthorizationV4, Expectations, verify_header};
use s3warden::auth::{RequestParts, SigningKeyCache};

const KEY: &str = "AKIDBENCHMARK0000001";
const SECRET: &str = "benchmark-secret-0000000000000000000000";

fn signed_headers(at: SystemTime) -> http::HeaderMap {
    let identity = Credentials::new(KEY, SECRET, None, None, "bench").into();
    let settings = s3warden::upstream::s3_signing_settings();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = [
        ("host", "127.0.0.1:9000"),
        ("user-agent", "aws-sdk-rust/1.0 os/linux lang/rust"),
        ("x-amz-checksum-mode", "ENABLED"),
    ];
    let uri = "http://127.0.0.1:9000/shared/alice/photos/2024/holiday.jpg?x-id=GetObject";
    let signable =
        SignableRequest::new("GET", uri, headers.into_iter(), SignableBody::Bytes(b"")).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().method("GET").uri(uri);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    let mut req = req.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req.headers().clone()
}

fn bench(c: &mut Criterion) {
    let at = SystemTime::now() - Duration::from_secs(1);
    let headers = signed_headers(at);
    let cache = SigningKeyCache::default();
    let path = "/shared/alice/photos/2024/holiday.jpg";
    let raw_query = "x-id=GetObject";
    let payload = headers
        .get("x-amz-content-sha256")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    c.bench_function("sigv4 header verification (cached key)", |b| {
        b.iter(|| {
            let parts = RequestParts {
                method: "GET",
                path,
                query: raw_query,
                headers: &headers,
                authority: None,
            };
            let auth =
                AuthorizationV4::parse(headers.get("authorization").unwrap().to_str().unwrap())
                    .unwrap();
            let query = parse_query(raw_query).unwrap();
            let expect = Expectations {
                region: "us-east-1",
                service: "s3",
                now: chrono::Utc::now(),
                max_skew_secs: 900,
            };
            verify_header(&parts, &query, &auth, &payload, SECRET, &expect, &cache)
                .unwrap()
                .signature
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
