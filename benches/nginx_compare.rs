//! s3warden beside a plain nginx `proxy_pass`, on the same loads, on one machine (issue 12).
//!
//! Three processes on loopback, each with a config of its own in a temp dir:
//! - the upstream: Debian's nginx serving files (`dav_methods PUT`, so it takes uploads too);
//! - the baseline: nginx `proxy_pass` to it with a keep-alive upstream pool, `access_log off`
//!   and 256 KiB buffers, request bodies streamed (`proxy_request_buffering off`);
//! - s3warden (the release binary, `s3warden serve`) in front of the same upstream, as a user
//!   whose prefix policy is evaluated on every request: every request is authenticated,
//!   authorized, re-signed and audited.
//!
//! Every load runs straight at the upstream, through nginx and through s3warden, the three
//! interleaved, `CMP_RUNS` rounds; the table gives medians and the ratio s3warden / nginx.
//! Small loads (4 KiB PUTs included) and large GETs are driven by `wrk` (Debian's; presigned
//! URLs and replayable header signatures make it usable), large uploads by a streaming hyper
//! client: UNSIGNED-PAYLOAD, a signed hex SHA-256 and signed aws-chunked, whose chunk
//! signatures s3warden verifies while nginx forwards the same bytes. TLS loads meet each server
//! terminating TLS with one self-signed certificate (s3warden as a second instance with
//! `[tls]`; nginx and the upstream on a second listener), and the benchmark first checks that
//! every listener negotiates the same protocol and suite with an OpenSSL client like wrk's.
//! Then 16 concurrent GETs of the large object, from a reset peak: s3warden's VmHWM must stay
//! within issue 12's 64 MiB (release builds). At the end each s3warden instance's audit log
//! must hold at least one record per request it answered.
//!
//! `cargo bench --bench nginx_compare` runs the full size; `cargo test --bench nginx_compare`
//! (no `--bench` argument) a token size of a few seconds. Knobs (environment), full / token:
//! `CMP_SECS` seconds per wrk run (10 / 1), `CMP_RUNS` rounds (3 / 1), `CMP_CONNS` connections
//! for small requests (64 / 16), `CMP_WRK_THREADS` client threads (2), `CMP_LARGE_MIB` object size for the
//! large GET and PUTs (1024 / 4), `CMP_NGINX_WORKERS` worker processes of each nginx (2),
//! `CMP_EARLIER_BIN`, another s3warden binary (the build before a change) measured as a
//! fourth target in the same rounds, `CMP_PIN=1`, each proxy alone on the second core with the
//! client and the upstream on the first (so a proxy's req/s is what one core of it serves:
//! its own cost per request, apart from the scheduler's sharing of two cores among all
//! three; use it with `CMP_NGINX_WORKERS=1`), and `CMP_LOADS`, a comma-separated subset of the loads
//! (their keys: `presigned-get`, `signed-get`, `head`, `small-put`, `large-get`,
//! `put-unsigned`, `put-hex`, `put-chunked`, `tls-small-get`, `tls-large-get`, `rss` for the
//! memory check, `idle`: `CMP_IDLE_CONNS` (3000 / 100) keep-alive connections left open
//! after one presigned GET each, and the resident memory each holds, `idle-tls`: the same over
//! TLS, `CMP_IDLE_TLS_CONNS` (1000 / 50) connections, and `idle-put`: the same
//! after one presigned PUT each, `CMP_IDLE_PUT_CONNS` (300 / 20) connections, bodies of
//! `CMP_IDLE_PUT_KIB` (1024 / 64) KiB). The upstream keeps its files on a tmpfs (`/dev/shm`)
//! when it has room for them, so that no load waits on a disk; `CMP_UPSTREAM_ON_DISK=1` keeps
//! them on disk.
//! Figures are recorded in docs/benchmarks.md.

use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, sign};
use bytes::Bytes;
use futures_util::stream;
use http::Method;
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

const USER_KEY: &str = "CMPUSERKEY0000000001";
const USER_SECRET: &str = "cmp-user-secret-0000000000000000000000000";
const SMALL: usize = 4096;
const FRAME: usize = 64 * 1024;
/// Issue 12's bound on s3warden's resident set, whatever the object size and connection count.
const MAX_PEAK_RSS_MIB: f64 = 64.0;

type Body = BoxBody<Bytes, Infallible>;

#[derive(Clone, Copy)]
struct Knobs {
    secs: u64,
    runs: usize,
    conns: usize,
    wrk_threads: usize,
    large: usize,
    nginx_workers: usize,
    idle_conns: usize,
    idle_tls_conns: usize,
    idle_put_conns: usize,
    idle_put_kib: usize,
}

/// `CMP_LOADS`: the loads to run, by key (`Load::key`, `rss` for the memory check, `idle`,
/// `idle-tls` and `idle-put` for memory per idle connection); all when unset.
fn selected(key: &str) -> bool {
    std::env::var("CMP_LOADS").map_or(true, |list| list.split(',').any(|k| k.trim() == key))
}

impl Knobs {
    fn from_env(full: bool) -> Knobs {
        let pick = |name: &str, full_v: usize, token_v: usize| {
            let default = if full { full_v } else { token_v };
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
                Err(_) => default,
            }
        };
        Knobs {
            secs: pick("CMP_SECS", 10, 1) as u64,
            runs: pick("CMP_RUNS", 3, 1),
            conns: pick("CMP_CONNS", 64, 16),
            wrk_threads: pick("CMP_WRK_THREADS", 2, 2),
            large: pick("CMP_LARGE_MIB", 1024, 4) * 1024 * 1024,
            nginx_workers: pick("CMP_NGINX_WORKERS", 2, 2),
            idle_conns: pick("CMP_IDLE_CONNS", 3000, 100),
            idle_tls_conns: pick("CMP_IDLE_TLS_CONNS", 1000, 50),
            idle_put_conns: pick("CMP_IDLE_PUT_CONNS", 300, 20),
            idle_put_kib: pick("CMP_IDLE_PUT_KIB", 1024, 64),
        }
    }
}

/// Who a process started next is: with `CMP_PIN=1`, proxies run on core 1, and the
/// upstream, the load generators and this process on core 0. Children inherit this
/// process's CPU set, so it is set before each start.
#[derive(Clone, Copy)]
enum Role {
    Proxy,
    Driver,
}

fn pin(role: Role) {
    if std::env::var("CMP_PIN").as_deref() != Ok("1") {
        return;
    }
    let cpu = match role {
        Role::Proxy => 1,
        Role::Driver => 0,
    };
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "CMP_PIN needs two cores: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn wait_listening(port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not listen: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server process of the benchmark's own; SIGTERM and wait on drop (nginx's master then
/// stops its workers, s3warden drains and writes its last audit records).
struct Process {
    child: Child,
    port: u16,
    /// Where it terminates TLS, when it does (s3warden's TLS instance: `port` itself).
    tls_port: Option<u16>,
}

impl Process {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn tls_endpoint(&self) -> String {
        let port = self.tls_port.expect("a TLS listener");
        format!("https://127.0.0.1:{port}")
    }

    fn pids(&self) -> Vec<u32> {
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid)
            .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect()
    }

    /// Resets the peak resident set of the process and its children (nginx's workers), so
    /// that the next [`Process::peak_rss_mib`] covers only what follows (`clear_refs` 5).
    fn reset_peak_rss(&self) {
        for pid in self.pids() {
            std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("peak RSS reset");
        }
    }

    /// The largest peak resident set among the process and its children (nginx: the busiest
    /// worker), from /proc.
    fn peak_rss_all_mib(&self) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(peak_rss_of)
            .fold(0.0, f64::max)
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, which wait() below has not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident set now of the process and its children (nginx: master and workers), KiB.
    fn rss_kib(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|pid| status_kib(pid, "VmRSS:"))
            .sum()
    }

    /// Peak resident set of the process itself (nginx: the master only), from /proc.
    fn peak_rss_mib(&self) -> Option<f64> {
        peak_rss_of(self.child.id())
    }
}

/// The open-file limit raised to its hard limit, before any server starts (they inherit
/// it): the idle-connection load holds thousands of sockets in this process and each server.
fn raise_descriptor_limit() {
    // SAFETY: getrlimit/setrlimit on a local, fully initialised struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// `count` connections made by `connect`, each after one request of `url` to `port` answered
/// 2xx in full (a GET, or a PUT of `body` when there is one), left open (returned) and idle.
fn idle_connections<S: std::io::Read + std::io::Write>(
    connect: impl Fn() -> S,
    port: u16,
    url: &str,
    count: usize,
    body: &[u8],
) -> Vec<S> {
    let target = url.splitn(4, '/').nth(3).expect("a path in the URL");
    let mut request = if body.is_empty() {
        format!("GET /{target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into_bytes()
    } else {
        let len = body.len();
        format!("PUT /{target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len}\r\n\r\n")
            .into_bytes()
    };
    request.extend_from_slice(body);
    (0..count)
        .map(|_| {
            let mut conn = connect();
            conn.write_all(&request).expect("request");
            let mut got = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            let (head_end, length) = loop {
                let n = conn.read(&mut buf).expect("answer");
                assert!(n > 0, "connection closed before the answer's head");
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    assert!(head.starts_with("http/1.1 20"), "idle request: {head}");
                    // A PUT's answer may have no body and say nothing of its length.
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, length);
                }
            };
            while got.len() < head_end + length {
                let n = conn.read(&mut buf).expect("answer body");
                assert!(n > 0, "connection closed in the answer's body");
                got.extend_from_slice(&buf[..n]);
            }
            conn
        })
        .collect()
}

/// Keeps `open` idle for 3 s, then reads `process`'s resident set (KiB) before closing them;
/// returns how many were open and that reading.
fn hold_idle<S>(open: Vec<S>, process: &Process) -> (usize, u64) {
    std::thread::sleep(Duration::from_secs(3));
    (open.len(), process.rss_kib())
}

/// A TLS client connection to `port` (blocking, rustls) with `config`.
fn tls_connect(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    let conn = rustls::ClientConnection::new(config.clone(), name).expect("a TLS client");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    rustls::StreamOwned::new(conn, tcp)
}

/// A TLS client configuration trusting `tls`'s self-signed certificate.
fn tls_client_config(tls: &Tls) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(&tls.cert).expect("cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a trusted certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// VmHWM of `pid` in MiB.
fn peak_rss_of(pid: u32) -> Option<f64> {
    status_kib(pid, "VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// A `field` of /proc/`pid`/status given in kB (`VmRSS:`, `VmHWM:`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of `pid` and its children (nginx's workers), in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = |pid: &str| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command: utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12)
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let total: u64 = ticks(&pid.to_string()) + children.split_whitespace().map(ticks).sum::<u64>();
    // SAFETY: sysconf(3) has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    total as f64 / hz
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn nginx_binary() -> &'static str {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nginx")
}

/// Starts nginx with `blocks` (its `server { }` and any `upstream` block; `PORT` for its plain
/// listener, `TLSPORT` for its TLS one if it has one) in a private prefix.
fn start_nginx(prefix: &Path, workers: usize, blocks: &str) -> Process {
    std::fs::create_dir_all(prefix).expect("nginx prefix");
    let port = free_port();
    let tls_port = blocks.contains("TLSPORT").then(free_port);
    let p = prefix.display();
    // As root, nginx's workers would run as nobody and could not write to the temp dir.
    // SAFETY: geteuid(2) has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        r#"
{user}
daemon off;
master_process on;
worker_processes {workers};
pid {p}/nginx.pid;
error_log {p}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    default_type application/octet-stream;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
{blocks}
}}
"#,
        blocks = blocks
            .replace("TLSPORT", &tls_port.unwrap_or(0).to_string())
            .replace("PORT", &port.to_string())
    );
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let child = Command::new(nginx_binary())
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs (Debian's nginx; scripts/test installs it)");
    let process = Process {
        child,
        port,
        tls_port,
    };
    wait_listening(port, "nginx", &prefix.join("error.log"));
    if let Some(tls) = tls_port {
        wait_listening(tls, "nginx (TLS)", &prefix.join("error.log"));
    }
    process
}

/// nginx terminating TLS as wrk meets it: TLS 1.3 only, with the one suite s3warden (rustls)
/// picks for wrk's OpenSSL client, so that both do the same cryptographic work per byte (the
/// benchmark checks what each side negotiates).
const TLS13_SUITE: &str = "TLS_AES_256_GCM_SHA384";

fn nginx_tls(tls: &Tls) -> String {
    format!(
        r#"
        listen 127.0.0.1:TLSPORT ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites {TLS13_SUITE};"#,
        cert = tls.cert.display(),
        key = tls.key.display()
    )
}

/// The upstream: files under `www`, PUTs written there (a real store's work: the body lands in
/// a file); over TLS too, for the direct column of the TLS loads.
fn upstream_blocks(www: &Path, tls: &Tls) -> String {
    format!(
        r#"
    server {{
        listen 127.0.0.1:PORT;{tls}
        root {www};
        client_max_body_size 0;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}"#,
        www = www.display(),
        tls = nginx_tls(tls)
    )
}

/// The baseline proxy: what teams would otherwise put in front of S3, plain and terminating TLS
/// (to the same plain upstream as s3warden).
fn baseline_blocks(upstream: u16, tls: &Tls) -> String {
    let tls = nginx_tls(tls);
    format!(
        r#"
    upstream store {{
        server 127.0.0.1:{upstream};
        keepalive 64;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:PORT;{tls}
        client_max_body_size 0;
        client_body_buffer_size 256k;
        location / {{
            proxy_pass http://store;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 256k;
            proxy_max_temp_file_size 0;
            proxy_request_buffering off;
        }}
    }}"#
    )
}

/// One self-signed certificate (rcgen, ECDSA P-256) for 127.0.0.1, shared by every TLS listener.
struct Tls {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Tls {
    fn create(dir: &Path) -> Tls {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("a self-signed certificate");
        let tls = Tls {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&tls.cert, made.cert.pem()).expect("cert.pem");
        std::fs::write(&tls.key, made.signing_key.serialize_pem()).expect("key.pem");
        tls
    }
}

/// The protocol and cipher suite an OpenSSL client (wrk's library, with its defaults) ends up
/// with at `port`.
fn negotiated_suite(port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("New, "))
        .unwrap_or_else(|| panic!("no TLS session with 127.0.0.1:{port}: {text}"))
        .to_string()
}

/// s3warden listening with plain HTTP, or terminating TLS with `tls`.
fn start_s3warden(dir: &Path, upstream: &str, binary: &str, tls: Option<&Tls>) -> Process {
    std::fs::create_dir_all(dir).expect("s3warden dir");
    let port = free_port();
    let tls_table = tls.map_or(String::new(), |t| {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            t.cert.display(),
            t.key.display()
        )
    });
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
region = "us-east-1"

{tls_table}
[root]
access_key_id = "CMPROOTKEY0000000001"
secret_access_key = "cmp-root-secret-0000000000000000000000000"

[upstream]
endpoint = "{upstream}"
access_key_id = "CMPSTOREKEY000000001"
secret_access_key = "cmp-store-secret-000000000000000000000000"

[audit]
# Rotated (every 100 MiB) and compressed as by default: under a sustained
# load that is part of what the proxy spends.
path = "{dir}/audit.jsonl"

[store]
path = "{dir}/identity"

[sessions]
key_file = "{dir}/session.key"

[[users]]
name = "bencher"
access_keys = [{{ access_key_id = "{USER_KEY}", secret_access_key = "{USER_SECRET}" }}]
policies = [{{ name = "own-prefix", document = '''{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Sid": "OwnObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": "arn:aws:s3:::bench/${{aws:username}}/*"}}
  ]
}}''' }}]
"#,
        dir = dir.display()
    );
    let path = dir.join("s3warden.toml");
    std::fs::write(&path, config).expect("s3warden.toml");
    let log = dir.join("s3warden.log");
    let out = std::fs::File::create(&log).expect("s3warden.log");
    let child = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        .spawn()
        .expect("s3warden runs");
    let process = Process {
        child,
        port,
        tls_port: tls.map(|_| port),
    };
    wait_listening(port, "s3warden", &log);
    process
}

/// What `x-amz-content-sha256` says of the body being signed.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Unsigned,
    /// The body's SHA-256, in hex.
    Hex(&'a str),
    /// aws-chunked with chained chunk signatures.
    SignedChunks,
}

/// SigV4 for S3 as the SDKs do it: in headers (returned as name/value pairs to send, `extra`
/// signed and included) or in the query (returned in the URL).
fn sign_v4(
    method: &str,
    url: &str,
    presign: bool,
    payload: Payload,
    extra: &[(&str, &str)],
) -> (String, Headers) {
    let identity =
        aws_credential_types::Credentials::new(USER_KEY, USER_SECRET, None, None, "cmp").into();
    let mut settings = s3warden::upstream::s3_signing_settings();
    if presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(3600));
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let host = url.split('/').nth(2).expect("host in url").to_string();
    let body = match payload {
        Payload::Hex(hash) => SignableBody::Precomputed(hash.to_string()),
        Payload::Unsigned => SignableBody::UnsignedPayload,
        Payload::SignedChunks => {
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string())
        }
    };
    let signed = std::iter::once(("host", host.as_str())).chain(extra.iter().copied());
    let signable = SignableRequest::new(method, url, signed, body).expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder().method(method).uri(url);
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let mut req = req.body(()).expect("request");
    instructions.apply_to_request_http1x(&mut req);
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().expect("ascii").to_string()))
        .collect();
    (req.uri().to_string(), headers)
}

/// The frames of an aws-chunked `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body of `size` bytes of
/// `frame`'s pattern in `FRAME`-byte chunks, each signature chained from the request's as the
/// SDKs do (written here from the SigV4 streaming specification, not with s3warden's code).
/// Computed before the clock starts: the client's hashing is not what is measured.
fn signed_chunks(headers: &Headers, frame: &Bytes, size: usize) -> Vec<Bytes> {
    use hmac::{KeyInit, Mac};
    type HmacSha256 = hmac::Hmac<Sha256>;
    let mac = |key: &[u8], data: &[u8]| -> [u8; 32] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("any key length");
        m.update(data);
        m.finalize().into_bytes().into()
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("signed request has {name}"))
    };
    let timestamp = header("x-amz-date");
    let date = &timestamp[..8];
    let scope = format!("{date}/us-east-1/s3/aws4_request");
    let mut key = mac(format!("AWS4{USER_SECRET}").as_bytes(), date.as_bytes());
    for part in ["us-east-1", "s3", "aws4_request"] {
        key = mac(&key, part.as_bytes());
    }
    let mut previous = header("authorization")
        .rsplit_once("Signature=")
        .expect("a signature")
        .1
        .to_string();
    let empty = hex::encode(Sha256::digest(b""));
    let mut sign_chunk = |data: &[u8]| -> String {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{previous}\n{empty}\n{}",
            hex::encode(Sha256::digest(data))
        );
        previous = hex::encode(mac(&key, to_sign.as_bytes()));
        previous.clone()
    };
    let mut frames = Vec::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(FRAME);
        let data = frame.slice(..n);
        let line = format!("{n:x};chunk-signature={}\r\n", sign_chunk(&data));
        frames.extend([Bytes::from(line), data, Bytes::from_static(b"\r\n")]);
        left -= n;
    }
    let last = format!("0;chunk-signature={}\r\n\r\n", sign_chunk(b""));
    frames.push(Bytes::from(last));
    frames
}

type Headers = Vec<(String, String)>;

/// What one run measured.
#[derive(Clone, Copy, Default)]
struct Measure {
    /// Requests per second, or MiB/s for the throughput loads.
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    /// MiB moved (answers or bodies, as the client counted them).
    mib: f64,
    /// CPU time the server (with its child processes) spent per request, or per MiB for the
    /// throughput loads, in µs.
    cpu_us: f64,
}

const WRK_SCRIPT: &str = r#"
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body then
  local f = assert(io.open(body, "rb"))
  wrk.body = f:read("*a")
  f:close()
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.bytes,
    summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"#;

/// What wrk sends and how its result is read.
struct WrkLoad<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a Headers,
    /// A file whose bytes every request carries as its body.
    body: Option<&'a Path>,
    conns: usize,
    /// MiB/s rather than req/s.
    throughput: bool,
}

/// One wrk run; every response must be 2xx and no socket error may happen.
fn wrk(knobs: &Knobs, script: &Path, load: WrkLoad) -> Measure {
    let WrkLoad {
        method,
        url,
        headers,
        body,
        conns,
        throughput,
    } = load;
    let mut cmd = Command::new("wrk");
    if let Some(body) = body {
        cmd.env("WRK_BODY", body);
    }
    cmd.env("WRK_METHOD", method)
        .arg("-t")
        .arg(knobs.wrk_threads.min(conns).to_string())
        .arg("-c")
        .arg(conns.to_string())
        .arg("-d")
        .arg(format!("{}s", knobs.secs))
        .arg("-s")
        .arg(script);
    if throughput {
        // One large answer can take longer than wrk's default 2 s on a busy machine; a
        // stalled transfer still fails the run.
        cmd.arg("--timeout").arg("60s");
    }
    for (name, value) in headers {
        if name != "host" {
            cmd.arg("-H").arg(format!("{name}: {value}"));
        }
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk runs (Debian's wrk; scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let f: Vec<u64> = line[7..]
        .split_whitespace()
        .map(|v| v.parse().expect("a number"))
        .collect();
    let [requests, bytes, micros, p50, p99, bad_status, socket_errors] = f[..] else {
        panic!("wrk result: {line}");
    };
    assert_eq!(bad_status, 0, "{method} {url}: non-2xx answers\n{text}");
    assert_eq!(socket_errors, 0, "{method} {url}: socket errors\n{text}");
    // A large answer may outlast the run: its bytes count, whole or not.
    if throughput {
        assert!(bytes > 0, "{method} {url}: nothing received");
    } else {
        assert!(requests > 0, "{method} {url}: no request completed");
    }
    let secs = micros as f64 / 1e6;
    Measure {
        rate: if throughput {
            bytes as f64 / secs / (1024.0 * 1024.0)
        } else {
            requests as f64 / secs
        },
        p50_ms: p50 as f64 / 1000.0,
        p99_ms: p99 as f64 / 1000.0,
        requests,
        mib: bytes as f64 / (1024.0 * 1024.0),
        cpu_us: 0.0,
    }
}

/// `conns` clients sending the same bodiless request back to back for `secs` seconds, with a
/// hyper client (wrk cannot read HEAD answers: it waits for the body their length announces).
async fn hyper_load(
    client: &Client<HttpConnector, Body>,
    method: &str,
    url: &str,
    headers: &Headers,
    conns: usize,
    secs: u64,
) -> Measure {
    let mut proto = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        if name != "host" {
            proto = proto.header(name, value);
        }
    }
    let proto = Arc::new(proto.body(()).expect("request"));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (client, proto) = (client.clone(), proto.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let mut req = http::Request::new(http_body_util::Empty::new().boxed());
                *req.method_mut() = proto.method().clone();
                *req.uri_mut() = proto.uri().clone();
                *req.headers_mut() = proto.headers().clone();
                let t = Instant::now();
                let resp = client.request(req).await.expect("request sent");
                let status = resp.status();
                resp.into_body().collect().await.expect("answer");
                latencies.push(t.elapsed());
                assert!(status.is_success(), "{}: {status}", proto.uri());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    let wall = start.elapsed().as_secs_f64();
    latencies.sort();
    let at = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    Measure {
        rate: latencies.len() as f64 / wall,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        requests: latencies.len() as u64,
        mib: 0.0,
        cpu_us: 0.0,
    }
}

/// One PUT of a body of `length` bytes streamed as `frames`; MiB/s of `payload` bytes.
async fn put(
    client: &Client<HttpConnector, Body>,
    url: &str,
    headers: &Headers,
    frames: impl Iterator<Item = Bytes> + Send + Sync + 'static,
    length: usize,
    payload: usize,
) -> Measure {
    let frames = frames.map(|f| Ok::<_, Infallible>(Frame::data(f)));
    let mut req = http::Request::builder()
        .method(Method::PUT)
        .uri(url)
        .header("content-length", length);
    for (name, value) in headers {
        if name != "host" {
            req = req.header(name, value);
        }
    }
    let req = req
        .body(StreamBody::new(stream::iter(frames)).boxed())
        .expect("request");
    let start = Instant::now();
    let resp = client.request(req).await.expect("PUT sent");
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("PUT answer")
        .to_bytes();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        status.is_success(),
        "PUT {url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Measure {
        rate: payload as f64 / secs / (1024.0 * 1024.0),
        p50_ms: secs * 1000.0,
        p99_ms: secs * 1000.0,
        requests: 1,
        mib: payload as f64 / (1024.0 * 1024.0),
        cpu_us: 0.0,
    }
}

/// `frame`'s pattern cut into `size` bytes of 64 KiB frames.
fn plain_frames(frame: &Bytes, size: usize) -> impl Iterator<Item = Bytes> + Send + Sync + 'static {
    let frame = frame.clone();
    (0..size.div_ceil(FRAME)).map(move |i| frame.slice(..FRAME.min(size - i * FRAME)))
}

/// `count` concurrent GETs of an object of `size` bytes, each read to its end and counted.
async fn concurrent_gets(
    client: &Client<HttpConnector, Body>,
    url: &str,
    headers: &Headers,
    count: usize,
    size: usize,
) {
    let mut gets = Vec::new();
    for _ in 0..count {
        let mut req = http::Request::get(url);
        for (name, value) in headers {
            if name != "host" {
                req = req.header(name, value);
            }
        }
        let req = req
            .body(http_body_util::Empty::new().boxed())
            .expect("request");
        let client = client.clone();
        gets.push(tokio::spawn(async move {
            let resp = client.request(req).await.expect("GET sent");
            assert!(resp.status().is_success(), "GET: {}", resp.status());
            let mut body = resp.into_body();
            let mut received = 0;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.expect("GET body").into_data() {
                    received += data.len();
                }
            }
            received
        }));
    }
    for get in gets {
        assert_eq!(get.await.expect("GET task"), size, "whole object received");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Load {
    PresignedGet,
    SignedGet,
    SignedHead,
    SmallPut,
    LargeGet,
    PutUnsigned,
    PutSignedHex,
    PutSignedChunks,
    TlsSmallGet,
    TlsLargeGet,
}

impl Load {
    const ALL: [Load; 10] = [
        Load::PresignedGet,
        Load::SignedGet,
        Load::SignedHead,
        Load::SmallPut,
        Load::LargeGet,
        Load::PutUnsigned,
        Load::PutSignedHex,
        Load::PutSignedChunks,
        Load::TlsSmallGet,
        Load::TlsLargeGet,
    ];

    fn name(self, knobs: &Knobs) -> String {
        let mib = knobs.large / (1024 * 1024);
        match self {
            Load::PresignedGet => format!("4 KiB GET, presigned, {} conns", knobs.conns),
            Load::SignedGet => format!("4 KiB GET, header-signed, {} conns", knobs.conns),
            Load::SignedHead => format!(
                "HEAD 4 KiB, header-signed, {} conns (hyper client)",
                knobs.conns
            ),
            Load::SmallPut => format!(
                "4 KiB PUT, header-signed, signed hex SHA-256, {} conns",
                knobs.conns
            ),
            Load::LargeGet => format!("GET {mib} MiB, 4 conns"),
            Load::PutUnsigned => format!("PUT {mib} MiB, UNSIGNED-PAYLOAD"),
            Load::PutSignedHex => format!("PUT {mib} MiB, signed hex SHA-256"),
            Load::PutSignedChunks => {
                format!("PUT {mib} MiB, signed aws-chunked (64 KiB chunks)")
            }
            Load::TlsSmallGet => format!("TLS: 4 KiB GET, presigned, {} conns", knobs.conns),
            Load::TlsLargeGet => format!("TLS: GET {mib} MiB, 4 conns"),
        }
    }

    /// The load's name in `CMP_LOADS`.
    fn key(self) -> &'static str {
        match self {
            Load::PresignedGet => "presigned-get",
            Load::SignedGet => "signed-get",
            Load::SignedHead => "head",
            Load::SmallPut => "small-put",
            Load::LargeGet => "large-get",
            Load::PutUnsigned => "put-unsigned",
            Load::PutSignedHex => "put-hex",
            Load::PutSignedChunks => "put-chunked",
            Load::TlsSmallGet => "tls-small-get",
            Load::TlsLargeGet => "tls-large-get",
        }
    }

    fn throughput(self) -> bool {
        matches!(
            self,
            Load::LargeGet
                | Load::PutUnsigned
                | Load::PutSignedHex
                | Load::PutSignedChunks
                | Load::TlsLargeGet
        )
    }

    fn tls(self) -> bool {
        matches!(self, Load::TlsSmallGet | Load::TlsLargeGet)
    }
}

/// One column of the table: a server as plain-HTTP loads and TLS loads meet it (nginx: one
/// process with two listeners; s3warden: one instance of each).
struct Target<'a> {
    name: &'static str,
    plain: &'a Process,
    tls: &'a Process,
}

impl Target<'_> {
    fn serving(&self, load: Load) -> (&Process, String) {
        if load.tls() {
            (self.tls, self.tls.tls_endpoint())
        } else {
            (self.plain, self.plain.endpoint())
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, load average at start {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Counts the records of one s3warden instance's audit log (under `dir/name`, rotated files
/// included) and checks there is one for each request it answered.
fn check_audit(dir: &Path, name: &str, answered: u64) {
    let live = dir.join(name).join("audit.jsonl");
    let mut audited = 0u64;
    s3warden::audit::review::for_each_record(&[live], &mut std::io::sink(), |r| {
        audited += u64::from(s3warden::audit::query::is_request(&r));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{name}'s audit log: {e}"));
    println!("{name}: audit records {audited}, requests it answered {answered}");
    assert!(
        audited >= answered,
        "one audit record per request through {name}"
    );
}

/// Where the upstream keeps its files (the objects, the PUTs it takes, its temp files): in
/// memory where the machine has a tmpfs with room for them, unless `CMP_UPSTREAM_ON_DISK` is
/// set. On disk, the writeback of each large PUT made the upload loads swing by ±0.2 from run to
/// run, more than the proxies differ; s3warden's audit log stays on disk either way.
fn upstream_dir(knobs: &Knobs) -> (tempfile::TempDir, &'static str) {
    let shm = Path::new("/dev/shm");
    // The large object, a large PUT and nginx's temp copy of it, the idle PUTs, and room to spare.
    let needed = 3 * knobs.large as u64
        + (knobs.idle_put_conns * knobs.idle_put_kib * 1024) as u64
        + (256 << 20);
    if std::env::var_os("CMP_UPSTREAM_ON_DISK").is_none()
        && free_bytes(shm).is_some_and(|free| free >= needed)
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("s3warden-nginx-compare-")
            .tempdir_in(shm)
    {
        return (dir, "in memory (/dev/shm)");
    }
    let dir = tempfile::Builder::new()
        .prefix("s3warden-nginx-compare-")
        .tempdir()
        .expect("temp dir");
    (dir, "on disk")
}

/// Bytes free to an unprivileged writer on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data, for which all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid statvfs to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench nginx_compare` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let knobs = Knobs::from_env(full);
    raise_descriptor_limit();
    let dir = tempfile::TempDir::new().expect("temp dir");
    let (upstream_files, upstream_where) = upstream_dir(&knobs);
    let www = upstream_files.path().join("www");
    let objects = www.join("bench/bencher");
    std::fs::create_dir_all(&objects).expect("www");
    std::fs::write(objects.join("small"), vec![b's'; SMALL]).expect("small object");
    let small_body = dir.path().join("small-put");
    std::fs::write(&small_body, vec![b'p'; SMALL]).expect("small PUT body");
    let small_hash = hex::encode(Sha256::digest(vec![b'p'; SMALL]));
    let frame = Bytes::from((0..FRAME).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut hasher = Sha256::new();
    {
        use std::io::Write;
        let mut large = std::fs::File::create(objects.join("large")).expect("large object");
        let mut left = knobs.large;
        while left > 0 {
            let n = left.min(FRAME);
            large.write_all(&frame[..n]).expect("large object");
            hasher.update(&frame[..n]);
            left -= n;
        }
    }
    let large_hash = hex::encode(hasher.finalize());
    let script = dir.path().join("report.lua");
    std::fs::write(&script, WRK_SCRIPT).expect("wrk script");
    let tls = Tls::create(dir.path());

    pin(Role::Driver);
    let upstream = start_nginx(
        &upstream_files.path().join("upstream"),
        knobs.nginx_workers,
        &upstream_blocks(&www, &tls),
    );
    pin(Role::Proxy);
    let baseline = start_nginx(
        &dir.path().join("baseline"),
        knobs.nginx_workers,
        &baseline_blocks(upstream.port, &tls),
    );
    // This build's s3warden, and optionally an earlier build measured in the same rounds; each
    // as a plain and a TLS instance, every one with an audit log of its own (named as here).
    let mut builds = vec![("s3warden", env!("CARGO_BIN_EXE_s3warden").to_string())];
    let earlier = std::env::var("CMP_EARLIER_BIN").ok();
    if let Some(binary) = &earlier {
        builds.push(("earlier", binary.clone()));
    }
    let mut wardens: Vec<(String, Process)> = Vec::new();
    for (name, binary) in &builds {
        for (suffix, tls) in [("", None), ("-tls", Some(&tls))] {
            let name = format!("{name}{suffix}");
            let process =
                start_s3warden(&dir.path().join(&name), &upstream.endpoint(), binary, tls);
            wardens.push((name, process));
        }
    }
    pin(Role::Driver);
    let mut targets = vec![
        Target {
            name: "direct",
            plain: &upstream,
            tls: &upstream,
        },
        Target {
            name: "nginx proxy",
            plain: &baseline,
            tls: &baseline,
        },
        Target {
            name: "s3warden",
            plain: &wardens[0].1,
            tls: &wardens[1].1,
        },
    ];
    if earlier.is_some() {
        targets.push(Target {
            name: "earlier s3warden",
            plain: &wardens[2].1,
            tls: &wardens[3].1,
        });
    }
    // The same work per byte on every TLS listener.
    let suites: Vec<(String, String)> = targets
        .iter()
        .map(|t| {
            let port = t.tls.tls_port.expect("a TLS listener");
            (t.name.to_string(), negotiated_suite(port))
        })
        .collect();
    for (name, suite) in &suites {
        assert_eq!(
            suite, &suites[0].1,
            "{name} negotiates another TLS suite than the direct upstream"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(knobs.wrk_threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);

    println!("machine: {}", machine());
    println!("upstream's files: {upstream_where}");
    println!("TLS: {} on every listener", suites[0].1);
    let loads: Vec<Load> = Load::ALL
        .into_iter()
        .filter(|l| selected(l.key()))
        .collect();
    let mut results: Vec<Vec<Vec<Measure>>> = vec![vec![Vec::new(); targets.len()]; loads.len()];
    // Requests each s3warden instance answered, by pid.
    let mut answered: std::collections::HashMap<u32, u64> = Default::default();
    for _round in 0..knobs.runs {
        for (l, &load) in loads.iter().enumerate() {
            for (t, target) in targets.iter().enumerate() {
                let (server, endpoint) = target.serving(load);
                let small = format!("{endpoint}/bench/bencher/small");
                let large = format!("{endpoint}/bench/bencher/large");
                let put_url = format!("{endpoint}/bench/bencher/upload");
                let small_put_url = format!("{endpoint}/bench/bencher/small-put");
                let cpu_before = cpu_seconds(server.child.id());
                let no_headers = Headers::new();
                let wrk_get = |url: &str, headers: &Headers, conns, throughput| {
                    let load = WrkLoad {
                        method: "GET",
                        url,
                        headers,
                        body: None,
                        conns,
                        throughput,
                    };
                    wrk(&knobs, &script, load)
                };
                let mut m = match load {
                    Load::PresignedGet | Load::TlsSmallGet => {
                        let (url, _) = sign_v4("GET", &small, true, Payload::Unsigned, &[]);
                        wrk_get(&url, &no_headers, knobs.conns, false)
                    }
                    Load::SignedGet => {
                        let (url, headers) = sign_v4("GET", &small, false, Payload::Unsigned, &[]);
                        wrk_get(&url, &headers, knobs.conns, false)
                    }
                    Load::SignedHead => {
                        let (url, headers) = sign_v4("HEAD", &small, false, Payload::Unsigned, &[]);
                        runtime.block_on(hyper_load(
                            &client,
                            "HEAD",
                            &url,
                            &headers,
                            knobs.conns,
                            knobs.secs,
                        ))
                    }
                    Load::SmallPut => {
                        let hash = Payload::Hex(&small_hash);
                        let (url, headers) = sign_v4("PUT", &small_put_url, false, hash, &[]);
                        let load = WrkLoad {
                            method: "PUT",
                            url: &url,
                            headers: &headers,
                            body: Some(&small_body),
                            conns: knobs.conns,
                            throughput: false,
                        };
                        wrk(&knobs, &script, load)
                    }
                    Load::LargeGet | Load::TlsLargeGet => {
                        let (url, headers) = sign_v4("GET", &large, false, Payload::Unsigned, &[]);
                        wrk_get(&url, &headers, 4, true)
                    }
                    Load::PutUnsigned | Load::PutSignedHex => {
                        let hash = match load {
                            Load::PutSignedHex => Payload::Hex(&large_hash),
                            _ => Payload::Unsigned,
                        };
                        let (url, headers) = sign_v4("PUT", &put_url, false, hash, &[]);
                        let frames = plain_frames(&frame, knobs.large);
                        runtime.block_on(put(
                            &client,
                            &url,
                            &headers,
                            frames,
                            knobs.large,
                            knobs.large,
                        ))
                    }
                    Load::PutSignedChunks => {
                        let decoded = knobs.large.to_string();
                        let extra = [
                            ("content-encoding", "aws-chunked"),
                            ("x-amz-decoded-content-length", decoded.as_str()),
                        ];
                        let (url, headers) =
                            sign_v4("PUT", &put_url, false, Payload::SignedChunks, &extra);
                        let frames = signed_chunks(&headers, &frame, knobs.large);
                        let length = frames.iter().map(Bytes::len).sum();
                        runtime.block_on(put(
                            &client,
                            &url,
                            &headers,
                            frames.into_iter(),
                            length,
                            knobs.large,
                        ))
                    }
                };
                let per = if load.throughput() {
                    m.mib
                } else {
                    m.requests as f64
                };
                m.cpu_us = (cpu_seconds(server.child.id()) - cpu_before) * 1e6 / per;
                if t >= 2 {
                    *answered.entry(server.child.id()).or_default() += m.requests;
                }
                results[l][t].push(m);
            }
        }
    }

    let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    println!(
        "\n| load | {} | s3warden / nginx |{}\n|---|{}---|{}",
        names.join(" | "),
        if earlier.is_some() {
            " earlier / nginx |"
        } else {
            ""
        },
        "---|".repeat(names.len()),
        if earlier.is_some() { "---|" } else { "" },
    );
    for (l, &load) in loads.iter().enumerate() {
        let cell = |t: usize| {
            let runs = &results[l][t];
            let rate = median(runs.iter().map(|m| m.rate).collect());
            let cpu = median(runs.iter().map(|m| m.cpu_us).collect());
            if load.throughput() {
                // CPU per MiB moved: what a throughput load costs the server.
                format!("{rate:.0} MiB/s, {cpu:.0} CPU µs/MiB")
            } else {
                let p50 = median(runs.iter().map(|m| m.p50_ms).collect());
                let p99 = median(runs.iter().map(|m| m.p99_ms).collect());
                format!("{rate:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {cpu:.1} CPU µs/req")
            }
        };
        let rate = |t: usize| median(results[l][t].iter().map(|m| m.rate).collect());
        let cells: Vec<String> = (0..targets.len()).map(cell).collect();
        let ratios: Vec<String> = (2..targets.len())
            .map(|t| format!(" **{:.2}** |", rate(t) / rate(1)))
            .collect();
        println!(
            "| {} | {} |{}",
            load.name(&knobs),
            cells.join(" | "),
            ratios.concat()
        );
    }
    let peaks: Vec<String> = targets[2..]
        .iter()
        .map(|t| format!("{:.0} MiB", t.plain.peak_rss_mib().unwrap_or(f64::NAN)))
        .collect();
    println!(
        "\n{} rounds of {} s per wrk run; medians. Peak RSS of s3warden over the loads: {}.",
        knobs.runs,
        knobs.secs,
        peaks.join(", earlier build: ")
    );

    // Memory under many large answers at once: 16 concurrent GETs of the large object, peak
    // resident set counted from just before them (s3warden's whole process; nginx's busiest
    // worker, for reference).
    const RSS_GETS: usize = 16;
    let rss_targets = if selected("rss") { &targets[1..] } else { &[] };
    for target in rss_targets {
        let endpoint = target.plain.endpoint();
        let (url, headers) = sign_v4(
            "GET",
            &format!("{endpoint}/bench/bencher/large"),
            false,
            Payload::Unsigned,
            &[],
        );
        target.plain.reset_peak_rss();
        runtime.block_on(concurrent_gets(
            &client,
            &url,
            &headers,
            RSS_GETS,
            knobs.large,
        ));
        let peak = target.plain.peak_rss_all_mib();
        println!(
            "{}: peak RSS {peak:.0} MiB during {RSS_GETS} concurrent {} MiB GETs",
            target.name,
            knobs.large / (1024 * 1024)
        );
        if target.name != "nginx proxy" {
            *answered.entry(target.plain.child.id()).or_default() += RSS_GETS as u64;
        }
        // An unoptimised build's resident set is mostly its own code: the bound is for release.
        if target.name == "s3warden" && !cfg!(debug_assertions) {
            assert!(
                peak <= MAX_PEAK_RSS_MIB,
                "{}: peak RSS {peak:.0} MiB above {MAX_PEAK_RSS_MIB} MiB",
                target.name
            );
        }
    }

    // Memory held by idle keep-alive connections: connections opened one after another,
    // each after one presigned 4 KiB GET (`idle`; `idle-tls` the same over TLS) or one
    // presigned PUT (`idle-put`: what an upload leaves behind), all left open; the growth of
    // the server's resident set (nginx: master and workers) per connection.
    let put_body = vec![b'p'; knobs.idle_put_kib * 1024];
    let tls_client = tls_client_config(&tls);
    let idle_loads = [
        ("idle", "GET", "small", SMALL, knobs.idle_conns, &[][..]),
        (
            "idle-tls",
            "GET",
            "small",
            SMALL,
            knobs.idle_tls_conns,
            &[][..],
        ),
        (
            "idle-put",
            "PUT",
            "idle-put",
            put_body.len(),
            knobs.idle_put_conns,
            &put_body[..],
        ),
    ];
    for (key, method, object, size, count, body) in idle_loads {
        let idle_targets = if selected(key) { &targets[1..] } else { &[] };
        let over_tls = key == "idle-tls";
        for target in idle_targets {
            let (process, endpoint) = if over_tls {
                (target.tls, target.tls.tls_endpoint())
            } else {
                (target.plain, target.plain.endpoint())
            };
            let object = format!("{endpoint}/bench/bencher/{object}");
            let (url, _) = sign_v4(method, &object, true, Payload::Unsigned, &[]);
            let before = process.rss_kib();
            // Idle a while, as keep-alive connections mostly are: s3warden gives back an idle
            // connection's read buffer after 2 s (nginx frees its buffers at once).
            let (open, after) = if over_tls {
                let port = process.tls_port.expect("a TLS listener");
                let connect = || tls_connect(&tls_client, port);
                hold_idle(idle_connections(connect, port, &url, count, body), process)
            } else {
                let port = process.port;
                let connect =
                    || std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
                hold_idle(idle_connections(connect, port, &url, count, body), process)
            };
            println!(
                "{}: {:.1} KiB resident per idle keep-alive {}connection after a {method} of {} KiB ({} connections: {:.1} -> {:.1} MiB)",
                target.name,
                after.saturating_sub(before) as f64 / open as f64,
                if over_tls { "TLS " } else { "" },
                size / 1024,
                open,
                before as f64 / 1024.0,
                after as f64 / 1024.0
            );
            if target.name != "nginx proxy" {
                *answered.entry(process.child.id()).or_default() += open as u64;
            }
        }
    }

    // s3warden drains on SIGTERM: every answered request has its record by then (wrk may have
    // had requests in flight that it did not count, so at least as many).
    drop(targets);
    for (name, warden) in &mut wardens {
        let count = answered.get(&warden.child.id()).copied().unwrap_or(0);
        warden.stop();
        check_audit(dir.path(), name, count);
    }
}
