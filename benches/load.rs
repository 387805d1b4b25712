//! End-to-end load harness: s3warden in front of the embedded S3 store, both on loopback,
//! driven by concurrent clients that SigV4-sign every request as the SDKs do. Each scenario runs
//! twice — through s3warden, as a user whose per-user prefix policy is evaluated on every
//! request, and straight at the store with its own key — so the difference is what the proxy
//! costs (authentication, policy, re-signing, the audit record, one more loopback hop).
//!
//! Bounded by count, not time: `cargo bench --bench load`. Knobs (environment):
//! `LOAD_REQUESTS` small-object requests per scenario (default 4000), `LOAD_CONCURRENCY`
//! (default 32), `LOAD_LARGE_MIB` size of each large object (default 64), `LOAD_LARGE_COUNT`
//! large transfers per scenario (default 8, 4 at a time), `LOAD_SOAK_SECS` length of the soak
//! phase of misbehaving clients (default 600; see `load/soak.rs`). Client, proxy and store share the
//! machine, so the figures are a lower bound on what the proxy alone can do. Results are
//! recorded in docs/benchmarks.md.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
use bytes::Bytes;
use futures_util::stream;
use http::{Method, Request};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use s3warden::config::Config;
use s3warden::embedded::{EmbeddedConfig, EmbeddedStore};
use s3warden::server::Server;
use sha2::{Digest, Sha256};

// Beside this file, not in benches/, where cargo would take it for a bench of its own.
#[path = "load/soak.rs"]
mod soak;

const STORE_KEY: &str = "LOADSTOREKEY00000001";
const STORE_SECRET: &str = "load-store-secret-00000000000000000000000";
const USER_KEY: &str = "LOADUSERKEY000000001";
const USER_SECRET: &str = "load-user-secret-000000000000000000000000";
const SMALL: usize = 4096;
/// Large bodies are sent as this many-byte frames, as a socket would deliver them.
const FRAME: usize = 64 * 1024;

type Body = BoxBody<Bytes, Infallible>;

/// One side of the comparison: where to send, and whose key signs.
#[derive(Clone)]
struct Target {
    name: &'static str,
    endpoint: String,
    key: &'static str,
    secret: &'static str,
}

/// What a scenario measured.
struct Outcome {
    latencies: Vec<Duration>,
    wall: Duration,
    bytes: u64,
}

/// The harness's knobs, read once from the environment.
#[derive(Clone, Copy)]
struct Knobs {
    requests: usize,
    concurrency: usize,
    large: usize,
    large_count: usize,
    soak_secs: u64,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            requests: env_usize("LOAD_REQUESTS", 4000),
            concurrency: env_usize("LOAD_CONCURRENCY", 32),
            large: env_usize("LOAD_LARGE_MIB", 64) * 1024 * 1024,
            large_count: env_usize("LOAD_LARGE_COUNT", 8),
            soak_secs: env_usize("LOAD_SOAK_SECS", 600) as u64,
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
        Err(_) => default,
    }
}

/// Signs like the SDKs: header auth, `x-amz-content-sha256` carrying `payload`'s hash (or
/// UNSIGNED-PAYLOAD when `payload` is None).
fn signed(
    t: &Target,
    method: &Method,
    path: &str,
    payload: Option<&str>,
    length: u64,
    body: Body,
) -> Request<Body> {
    let url = format!("{}{path}", t.endpoint);
    let uri: http::Uri = url.parse().expect("url");
    let host = uri.authority().expect("authority").to_string();
    let identity =
        aws_credential_types::Credentials::new(t.key, t.secret, None, None, "load").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(s3warden::upstream::s3_signing_settings())
        .build()
        .expect("signing params")
        .into();
    let length = length.to_string();
    let mut headers = vec![("host", host.as_str())];
    if *method == Method::PUT {
        headers.push(("content-length", length.as_str()));
    }
    let signable_body = match payload {
        Some(hash) => SignableBody::Precomputed(hash.to_string()),
        None => SignableBody::UnsignedPayload,
    };
    let signable = SignableRequest::new(
        method.as_str(),
        &url,
        headers.iter().copied(),
        signable_body,
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = Request::builder().method(method.clone()).uri(uri);
    for (name, value) in &headers {
        if *name != "host" {
            req = req.header(*name, *value);
        }
    }
    let (added, _) = instructions.into_parts();
    for h in added {
        req = req.header(h.name(), h.value());
    }
    req.body(body).expect("request")
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed()
}

fn empty() -> Body {
    Empty::new().boxed()
}

/// A `size`-byte body made of one shared frame, so the client holds no copy of it.
fn streamed(frame: &Bytes, size: usize) -> Body {
    let frame = frame.clone();
    let frames = (0..size.div_ceil(FRAME)).map(move |i| {
        let len = FRAME.min(size - i * FRAME);
        Ok::<_, Infallible>(Frame::data(frame.slice(..len)))
    });
    StreamBody::new(stream::iter(frames)).boxed()
}

/// Sends one request, reads the whole response, and returns (status, response body bytes).
async fn exchange(client: &Client<HttpConnector, Body>, req: Request<Body>) -> (u16, u64) {
    let resp = client.request(req).await.expect("request sent");
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("response body").into_data() {
            n += data.len() as u64;
        }
    }
    (status, n)
}

/// Runs `total` requests, `concurrency` at a time; `make(i)` builds request number i and the
/// status it must get.
async fn run<F>(
    client: &Client<HttpConnector, Body>,
    total: usize,
    concurrency: usize,
    make: F,
) -> Outcome
where
    F: Fn(usize) -> (Request<Body>, u16) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(total) {
        let (client, make, next) = (client.clone(), make.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (latencies, bytes);
                }
                let (req, want) = make(i);
                let t = Instant::now();
                let (status, n) = exchange(&client, req).await;
                latencies.push(t.elapsed());
                assert_eq!(status, want, "request {i}");
                bytes += n;
            }
        }));
    }
    let mut out = Outcome {
        latencies: Vec::with_capacity(total),
        wall: Duration::ZERO,
        bytes: 0,
    };
    for w in workers {
        let (l, b) = w.await.expect("worker");
        out.latencies.extend(l);
        out.bytes += b;
    }
    out.wall = start.elapsed();
    out.latencies.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn report(scenario: &str, target: &str, o: &Outcome, payload_bytes: u64) {
    let n = o.latencies.len();
    let rate = n as f64 / o.wall.as_secs_f64();
    let mib_s = payload_bytes as f64 / o.wall.as_secs_f64() / (1024.0 * 1024.0);
    println!(
        "| {scenario} | {target} | {n} | {rate:.0} | {mib_s:.1} | {} | {} | {} | {} |",
        ms(percentile(&o.latencies, 0.50)),
        ms(percentile(&o.latencies, 0.90)),
        ms(percentile(&o.latencies, 0.99)),
        ms(*o.latencies.last().expect("at least one request")),
    );
}

/// The process's peak resident set (client, proxy and store together), from /proc.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn proxy_config(dir: &std::path::Path, store: &str) -> String {
    // A per-user prefix policy with a variable and a condition, as in the README, so every
    // request through the proxy pays for a realistic evaluation.
    format!(
        r#"
listen = "127.0.0.1:0"
region = "us-east-1"

[root]
access_key_id = "LOADROOTKEY000000001"
secret_access_key = "load-root-secret-000000000000000000000000"

[upstream]
endpoint = "{store}"
access_key_id = "{STORE_KEY}"
secret_access_key = "{STORE_SECRET}"

[audit]
path = "{audit}"

[limits]
# The soak's stalling uploaders are answered RequestTimeout after this.
body_idle_timeout_secs = 2

[store]
path = "{identity}"

[sessions]
key_file = "{key_file}"

[[users]]
name = "loader"
groups = ["prefix-users"]
access_keys = [{{ access_key_id = "{USER_KEY}", secret_access_key = "{USER_SECRET}" }}]

[[groups]]
name = "prefix-users"
policies = [{{ name = "own-prefix", document = '''{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::load",
     "Condition": {{"StringLike": {{"s3:prefix": ["${{aws:username}}/", "${{aws:username}}/*"]}}}}}},
    {{"Sid": "OwnObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": "arn:aws:s3:::load/${{aws:username}}/*"}}
  ]
}}''' }}]
"#,
        audit = dir.join("audit.jsonl").display(),
        identity = dir.join("identity").display(),
        key_file = dir.join("session.key").display(),
    )
}

/// Keys cycle over a working set, as a busy prefix would.
const SMALL_KEYS: usize = 256;
const LARGE_KEYS: usize = 4;

fn small_path(i: usize) -> String {
    format!("/load/loader/small-{}", i % SMALL_KEYS)
}

fn large_path(i: usize) -> String {
    format!("/load/loader/large-{}", i % LARGE_KEYS)
}

async fn put_small(
    client: &Client<HttpConnector, Body>,
    t: &Target,
    requests: usize,
    concurrency: usize,
) -> Outcome {
    let body = Bytes::from(vec![b's'; SMALL]);
    let hash = hex::encode(Sha256::digest(&body));
    let t = t.clone();
    run(client, requests, concurrency, move |i| {
        let req = signed(
            &t,
            &Method::PUT,
            &small_path(i),
            Some(&hash),
            SMALL as u64,
            full(body.clone()),
        );
        (req, 200)
    })
    .await
}

/// Large objects carry a signed payload hash, which s3warden verifies in flight while
/// streaming; 4 at a time.
async fn put_large(
    client: &Client<HttpConnector, Body>,
    t: &Target,
    size: usize,
    count: usize,
) -> Outcome {
    let frame = Bytes::from((0..FRAME).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(FRAME);
        hasher.update(&frame[..n]);
        left -= n;
    }
    let hash = hex::encode(hasher.finalize());
    let t = t.clone();
    run(client, count, 4, move |i| {
        let req = signed(
            &t,
            &Method::PUT,
            &large_path(i),
            Some(&hash),
            size as u64,
            streamed(&frame, size),
        );
        (req, 200)
    })
    .await
}

async fn scenarios(client: &Client<HttpConnector, Body>, t: &Target, knobs: Knobs) {
    let Knobs {
        requests,
        concurrency,
        large,
        large_count,
        ..
    } = knobs;
    let o = put_small(client, t, requests, concurrency).await;
    report(
        "PUT 4 KiB (signed payload)",
        t.name,
        &o,
        (SMALL * requests) as u64,
    );

    let t2 = t.clone();
    let o = run(client, requests, concurrency, move |i| {
        (
            signed(&t2, &Method::GET, &small_path(i), None, 0, empty()),
            200,
        )
    })
    .await;
    assert_eq!(
        o.bytes,
        (SMALL * requests) as u64,
        "GET returned every byte"
    );
    report("GET 4 KiB", t.name, &o, o.bytes);

    let t2 = t.clone();
    let o = run(client, requests, concurrency, move |i| {
        (
            signed(&t2, &Method::HEAD, &small_path(i), None, 0, empty()),
            200,
        )
    })
    .await;
    report("HEAD", t.name, &o, 0);

    let o = put_large(client, t, large, large_count).await;
    let mib = large / (1024 * 1024);
    report(
        &format!("PUT {mib} MiB (signed payload)"),
        t.name,
        &o,
        (large * large_count) as u64,
    );

    let t2 = t.clone();
    let o = run(client, large_count, 4, move |i| {
        (
            signed(&t2, &Method::GET, &large_path(i), None, 0, empty()),
            200,
        )
    })
    .await;
    assert_eq!(
        o.bytes,
        (large * large_count) as u64,
        "GET returned every byte"
    );
    report(&format!("GET {mib} MiB"), t.name, &o, o.bytes);
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags mean nothing here.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let store = EmbeddedStore::start(EmbeddedConfig {
            data_dir: dir.path().join("objects"),
            region: "us-east-1".into(),
            access_key_id: STORE_KEY.into(),
            secret_access_key: STORE_SECRET.into(),
        })
        .await
        .expect("embedded store");
        let text = proxy_config(dir.path(), &store.endpoint());
        let config = Config::from_toml(&text, std::path::Path::new("load.toml"), dir.path())
            .expect("config");
        let proxy = Server::start(config).await.expect("s3warden");

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector);
        let direct = Target {
            name: "store directly",
            endpoint: store.endpoint(),
            key: STORE_KEY,
            secret: STORE_SECRET,
        };
        let through = Target {
            name: "through s3warden",
            endpoint: proxy.endpoint(),
            key: USER_KEY,
            secret: USER_SECRET,
        };
        let (status, _) = exchange(
            &client,
            signed(&direct, &Method::PUT, "/load", None, 0, empty()),
        )
        .await;
        assert_eq!(status, 200, "create bucket");

        // Warm-up, not measured: every key exists before either side is measured, so both
        // PUT runs overwrite and the store's first-write costs fall on neither.
        let knobs = Knobs::from_env();
        put_small(&client, &direct, SMALL_KEYS, 32).await;
        put_large(&client, &direct, knobs.large, LARGE_KEYS).await;

        println!(
            "| scenario | target | requests | req/s | MiB/s | p50 ms | p90 ms | p99 ms | max ms |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for target in [&direct, &through] {
            scenarios(&client, target, knobs).await;
        }
        let soaked = soak::soak(&client, &through, knobs.soak_secs).await;
        if let Some(peak) = peak_rss_mib() {
            println!("\npeak resident memory of the whole process: {peak:.0} MiB");
        }
        proxy.shutdown().await;
        store.shutdown().await;
        // Shutdown drains the audit queue: one record per proxied request.
        let audited = std::fs::read_to_string(dir.path().join("audit.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        println!("audit records written by s3warden: {audited}");
        let proxied = 3 * knobs.requests + 2 * knobs.large_count + soaked as usize;
        assert_eq!(audited, proxied, "one audit record per proxied request");
    });
}
