//! Shared harness for the integration tests: configs, a running server on a
//! loopback port, real S3 clients pointed at it, and the audit log it wrote.
#![allow(dead_code)]

pub mod fault;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3warden::config::Config;
use s3warden::server::Server;
use tempfile::TempDir;

pub const ROOT_KEY: &str = "ROOTKEYFORTESTS00001";
pub const ROOT_SECRET: &str = "root-secret-for-tests-000000000000000000";
pub const ALICE_KEY: &str = "ALICEKEYFORTESTS0001";
pub const ALICE_SECRET: &str = "alice-secret-for-tests-00000000000000000";
pub const BOB_KEY: &str = "BOBKEYFORTESTS000001";
pub const BOB_SECRET: &str = "bob-secret-for-tests-0000000000000000000";
pub const UPSTREAM_KEY: &str = "UPSTREAMKEYFORTESTS1";
pub const UPSTREAM_SECRET: &str = "upstream-secret-for-tests-00000000000000";

/// The per-user prefix policy of the README: each user owns `shared/<name>/`.
pub const PREFIX_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shared",
     "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/", "${aws:username}/*"]}}},
    {"Sid": "OwnObjects", "Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": "arn:aws:s3:::shared/${aws:username}/*"}
  ]
}"#;

/// A config with root, alice and bob (both in group `prefix-users` with
/// [`PREFIX_POLICY`]) and the given upstream section; `extra` goes at the end.
pub fn config_text(dir: &Path, upstream: &str, extra: &str) -> String {
    config_text_full(dir, upstream, "", "", extra)
}

/// As [`config_text`], with top-level keys and `[audit]` keys of the caller's.
pub fn config_text_full(dir: &Path, upstream: &str, top: &str, audit: &str, extra: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
region = "us-east-1"
{top}

[root]
access_key_id = "{ROOT_KEY}"
secret_access_key = "{ROOT_SECRET}"

{upstream}

[audit]
path = "{audit_path}"
{audit}

[store]
path = "{store}"

[sessions]
key_file = "{key_file}"

[[users]]
name = "alice"
groups = ["prefix-users"]
access_keys = [{{ access_key_id = "{ALICE_KEY}", secret_access_key = "{ALICE_SECRET}" }}]

[[users]]
name = "bob"
groups = ["prefix-users"]
access_keys = [{{ access_key_id = "{BOB_KEY}", secret_access_key = "{BOB_SECRET}" }}]

[[groups]]
name = "prefix-users"
policies = [{{ name = "own-prefix", document = '''{policy}''' }}]

{extra}
"#,
        audit_path = dir.join("audit.jsonl").display(),
        store = dir.join("identity").display(),
        key_file = dir.join("session.key").display(),
        policy = PREFIX_POLICY,
    )
}

pub fn embedded_upstream(dir: &Path) -> String {
    format!(
        "[upstream]\nendpoint = \"embedded\"\n\n[embedded]\ndata_dir = \"{}\"\n",
        dir.join("objects").display()
    )
}

pub fn url_upstream(url: &str) -> String {
    format!(
        "[upstream]\nendpoint = \"{url}\"\naccess_key_id = \"{UPSTREAM_KEY}\"\nsecret_access_key = \"{UPSTREAM_SECRET}\"\nconnect_timeout_ms = 500\nresponse_timeout_secs = 5\n"
    )
}

pub struct Harness {
    pub server: Server,
    pub dir: TempDir,
}

impl Harness {
    /// Starts s3warden over the embedded store.
    pub async fn embedded() -> Harness {
        Harness::embedded_with("").await
    }

    pub async fn embedded_with(extra: &str) -> Harness {
        Harness::embedded_configured("", "", extra).await
    }

    /// Over the embedded store, with top-level and `[audit]` keys added.
    pub async fn embedded_configured(top: &str, audit: &str, extra: &str) -> Harness {
        let dir = TempDir::new().unwrap();
        let text = config_text_full(
            dir.path(),
            &embedded_upstream(dir.path()),
            top,
            audit,
            extra,
        );
        Harness::start(dir, &text).await
    }

    /// Starts s3warden in front of an upstream URL (e.g. a wiremock server).
    pub async fn upstream(url: &str) -> Harness {
        let dir = TempDir::new().unwrap();
        let text = config_text(dir.path(), &url_upstream(url), "");
        Harness::start(dir, &text).await
    }

    pub async fn start(dir: TempDir, text: &str) -> Harness {
        let config = Config::from_toml(text, Path::new("test.toml"), dir.path()).unwrap();
        let server = Server::start(config).await.unwrap();
        Harness { server, dir }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn client(&self, key: &str, secret: &str) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint(), key, secret)
    }

    pub fn root(&self) -> aws_sdk_s3::Client {
        self.client(ROOT_KEY, ROOT_SECRET)
    }

    pub fn alice(&self) -> aws_sdk_s3::Client {
        self.client(ALICE_KEY, ALICE_SECRET)
    }

    pub fn bob(&self) -> aws_sdk_s3::Client {
        self.client(BOB_KEY, BOB_SECRET)
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// Audit records written so far (waits briefly for the writer to flush
    /// at least `at_least` records).
    pub async fn audit(&self, at_least: usize) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
            // The writer may be midway through a line: only whole lines count.
            let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            let records: Vec<serde_json::Value> = whole
                .lines()
                .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
                .collect();
            if records.len() >= at_least || std::time::Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The audit record with the given request id.
    pub async fn audit_for(&self, request_id: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let records = self.audit(0).await;
            if let Some(r) = records.into_iter().find(|r| r["request_id"] == request_id) {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no audit record for {request_id}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn s3_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    s3_session_client(endpoint, key, secret, None)
}

/// An S3 client with temporary credentials (a session token) when given one.
pub fn s3_session_client(
    endpoint: &str,
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            key,
            secret,
            token.map(str::to_string),
            None,
            "tests",
        ))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Creates bucket `shared` as root.
pub async fn shared_bucket(endpoint: &str) {
    s3_client(endpoint, ROOT_KEY, ROOT_SECRET)
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
}

/// Puts a small object at `key` in bucket `shared`; the S3 error code when refused.
pub async fn put_shared(client: &aws_sdk_s3::Client, key: &str) -> Result<(), String> {
    client
        .put_object()
        .bucket("shared")
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"data"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

/// An S3 client with the temporary credentials in an STS answer
/// (`<Credentials>` of GetFederationToken, AssumeRole and the like).
pub fn sts_session_client(endpoint: &str, sts_body: &str) -> aws_sdk_s3::Client {
    s3_session_client(
        endpoint,
        &xml_text(sts_body, "AccessKeyId"),
        &xml_text(sts_body, "SecretAccessKey"),
        Some(&xml_text(sts_body, "SessionToken")),
    )
}

/// The S3 error code of an SDK error, or "" when there is none.
pub fn error_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(s) => s.err().code().unwrap_or("").to_string(),
        _ => format!("{err:?}"),
    }
}

/// A request signed like an SDK would, for tests that need to bend the rules.
pub struct Signed {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// Signs a request with aws-sigv4 (hex payload hash of `signed_body`).
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    signed_body: &[u8],
    key: &str,
    secret: &str,
    time: SystemTime,
) -> Signed {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "tests").into();
    let settings = s3warden::upstream::s3_signing_settings();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri: http::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().to_string();
    let mut all: Vec<(String, String)> = vec![("host".into(), host)];
    all.extend(headers.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    let signable = SignableRequest::new(
        method,
        url,
        all.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        SignableBody::Bytes(signed_body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (new_headers, _) = instructions.into_parts();
    for h in new_headers {
        all.push((h.name().to_string(), h.value().to_string()));
    }
    Signed {
        method: method.into(),
        url: url.into(),
        headers: all,
    }
}

/// Sends a signed request with `body` (which may differ from what was signed)
/// over a raw HTTP/1.1 connection: no URL normalisation, no added headers.
pub async fn send(signed: &Signed, body: Vec<u8>) -> (u16, http::HeaderMap, String) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let mut req = http::Request::builder()
        .method(signed.method.as_str())
        .uri(signed.url.as_str());
    for (n, v) in &signed.headers {
        if n != "host" {
            req = req.header(n, v);
        }
    }
    let req = req.body(Full::new(bytes::Bytes::from(body))).unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The `<Code>` of an S3 XML error body.
pub fn xml_code(body: &str) -> String {
    body.split("<Code>")
        .nth(1)
        .and_then(|s| s.split("</Code>").next())
        .unwrap_or("")
        .to_string()
}

/// Every record of a finished audit log (read after the server shut down,
/// so that batched writes have all landed).
pub fn audit_log_records(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// The `principal.session` of the record of the request on object `key`.
pub fn session_of_request_on(records: &[serde_json::Value], key: &str) -> serde_json::Value {
    records
        .iter()
        .find(|r| r["key"] == key)
        .map(|r| r["principal"]["session"].clone())
        .unwrap_or_else(|| panic!("no record of a request on {key}"))
}

/// Checks that every line of the audit log `files` (and checkpoint files)
/// validates against docs/audit-record.schema.json.
pub fn validate_audit_log(files: &[&Path]) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit-record.schema.json");
    let mut args = vec![schema.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = run_python("validate_schema.py", &args);
    assert!(out.contains("lines valid"), "{out}");
}

/// Runs a Python client script from `tests/clients/`, failing with its output.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("python3 runs (install tests/clients/requirements.txt; .ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs the aws CLI against an endpoint with the given key.
pub fn run_aws(endpoint: &str, key: &str, secret: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("aws")
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("aws CLI runs (install tests/clients/requirements.txt; .ci/run does)")
}

/// Starts the real binary on a config file; returns the child and the
/// endpoint it printed.
pub fn spawn_binary(config: &Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_s3warden"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("s3warden listening on ")
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, endpoint)
}

/// Sends SIGTERM and waits for a clean exit.
pub fn stop_binary(mut child: std::process::Child) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// A form-encoded Query API request (IAM or STS) signed like botocore signs
/// it: SigV4 for `service` in us-east-1, payload hash of the body, optional
/// session token. Returns the request ready for [`send`] and its body.
pub fn sign_api(
    endpoint: &str,
    service: &str,
    method: &str,
    params: &[(&str, &str)],
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> (Signed, Vec<u8>) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes();
    let identity = aws_credential_types::Credentials::new(
        key,
        secret,
        token.map(str::to_string),
        None,
        "tests",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("{endpoint}/");
    let uri: http::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().to_string();
    let mut all: Vec<(String, String)> = vec![
        ("host".into(), host),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
    ];
    let signable = SignableRequest::new(
        method,
        &url,
        all.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (new_headers, _) = instructions.into_parts();
    for h in new_headers {
        all.push((h.name().to_string(), h.value().to_string()));
    }
    (
        Signed {
            method: method.into(),
            url,
            headers: all,
        },
        body,
    )
}

/// Sends a Query API call as root (IAM unless the action is an STS one) and
/// returns status and body.
pub async fn api_call(endpoint: &str, service: &str, params: &[(&str, &str)]) -> (u16, String) {
    api_call_as(endpoint, service, params, ROOT_KEY, ROOT_SECRET, None).await
}

pub async fn api_call_as(
    endpoint: &str,
    service: &str,
    params: &[(&str, &str)],
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> (u16, String) {
    let version = if service == "iam" {
        "2010-05-08"
    } else {
        "2011-06-15"
    };
    let mut all: Vec<(&str, &str)> = vec![("Version", version)];
    all.extend_from_slice(params);
    let (signed, body) = sign_api(endpoint, service, "POST", &all, key, secret, token);
    let (status, _, text) = send(&signed, body).await;
    (status, text)
}

/// The text of the first `<TAG>` element of an XML body.
pub fn xml_text(body: &str, tag: &str) -> String {
    body.split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|s| s.split(&format!("</{tag}>")).next())
        .unwrap_or("")
        .to_string()
}

/// Starts s3warden with one of the example configs in `config/examples/`,
/// its data paths moved into a fresh temporary directory.
pub async fn example(name: &str) -> Harness {
    let dir = TempDir::new().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let text = std::fs::read_to_string(base.join(format!("{name}.toml"))).unwrap();
    let text = text
        .replace("./data/", &format!("{}/", dir.path().display()))
        .replace("127.0.0.1:9000", "127.0.0.1:0");
    let config = Config::from_toml(&text, Path::new("example.toml"), &base).unwrap();
    let server = Server::start(config).await.unwrap();
    Harness { server, dir }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written to PEM
/// files in `dir`: `(cert_path, key_path, cert_pem)`.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf, String) {
    let key =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = dir.join("proxy-cert.pem");
    let private = dir.join("proxy-key.pem");
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
    (cert, private, key.cert.pem())
}

impl Harness {
    /// Starts s3warden over the embedded store, over HTTPS when `tls`; returns
    /// the CA file clients must trust (the self-signed certificate) if so.
    pub async fn embedded_maybe_tls(tls: bool, extra: &str) -> (Harness, Option<PathBuf>) {
        let dir = TempDir::new().unwrap();
        let mut extra = extra.to_string();
        let mut ca = None;
        if tls {
            let (cert, key, _) = self_signed_cert(dir.path());
            extra.push_str(&format!(
                "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key.display()
            ));
            ca = Some(cert);
        }
        let text = config_text(dir.path(), &embedded_upstream(dir.path()), &extra);
        (Harness::start(dir, &text).await, ca)
    }

    /// An SDK client for `key`, trusting `ca` when the endpoint is HTTPS.
    pub fn client_trusting(
        &self,
        key: &str,
        secret: &str,
        ca: Option<&Path>,
    ) -> aws_sdk_s3::Client {
        s3_client_trusting(&self.endpoint(), key, secret, ca)
    }
}

/// An SDK client at default settings (checksums included), with a custom
/// TLS trust store holding `ca` when given.
pub fn s3_client_trusting(
    endpoint: &str,
    key: &str,
    secret: &str,
    ca: Option<&Path>,
) -> aws_sdk_s3::Client {
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(key, secret, None, None, "tests"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
    if let Some(ca) = ca {
        use aws_smithy_http_client::tls;
        let pem = std::fs::read(ca).unwrap();
        let context = tls::TlsContext::builder()
            .with_trust_store(tls::TrustStore::empty().with_pem_certificate(pem))
            .build()
            .unwrap();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https();
        conf = conf.http_client(http);
    }
    aws_sdk_s3::Client::from_conf(conf.build())
}

/// `n` bytes of the pattern every matrix client uploads as its large object.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A loopback port free a moment ago, for a process that binds it itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command, failing the test with its output when it fails.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A GET with an empty body, signed now with `key`.
pub fn signed_get(url: &str, key: &str, secret: &str) -> Signed {
    sign_request("GET", url, &[], b"", key, secret, SystemTime::now())
}

/// The first bytes an HTTP/2 client with prior knowledge sends: the
/// connection preface and an empty SETTINGS frame.
pub const H2_PREFACE: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The head of a GET signed by root, as raw bytes for a raw socket.
pub fn signed_get_head(endpoint: &str, path: &str) -> Vec<u8> {
    raw_head(
        &signed_get(&format!("{endpoint}{path}"), ROOT_KEY, ROOT_SECRET),
        path,
    )
}

/// A TLS client configuration trusting only the certificates in `ca_pem`.
pub fn tls_client_config(ca_pem: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A signed request's HTTP/1.1 head, as raw bytes for a raw socket.
pub fn raw_head(signed: &Signed, path: &str) -> Vec<u8> {
    let mut head = format!("{} {path} HTTP/1.1\r\n", signed.method);
    for (n, v) in &signed.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

pub fn addr_of(endpoint: &str) -> String {
    endpoint.trim_start_matches("http://").to_string()
}
