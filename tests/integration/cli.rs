//! The `s3warden` binary: config errors name the key and exit non-zero before
//! anything listens; `serve` prints where it listens and shuts down cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_s3warden");

/// Runs `serve` on a config that must be refused; one that is not (the
/// server starts and would run for ever) is killed after 20 s so the test
/// fails instead of hanging.
fn serve(config: &str) -> std::process::Output {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("s3warden.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    out
}

const VALID: &str = r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "ROOTKEYFORTESTS00001"
secret_access_key = "root-secret-for-tests-000000000000000000"
[upstream]
endpoint = "http://127.0.0.1:9"
access_key_id = "UPSTREAMKEYFORTESTS1"
secret_access_key = "upstream-secret-for-tests-00000000000000"
"#;

#[test]
fn config_errors_name_the_key_and_exit_non_zero() {
    let cases = [
        (
            VALID.replace("http://127.0.0.1:9", "nonsense"),
            "upstream.endpoint",
        ),
        (
            VALID.replace("listen = \"127.0.0.1:0\"", "listen = \"not an address\""),
            "listen",
        ),
        (format!("{VALID}\nfrobnicate = 1\n"), "frobnicate"),
        (
            VALID.replace("ROOTKEYFORTESTS00001", "short"),
            "root.access_key_id",
        ),
        (
            format!("{VALID}\n[[users]]\nname = \"bad name!\"\n"),
            "users.bad name!",
        ),
        (
            format!(
                "{VALID}\n[[groups]]\nname = \"g\"\npolicies = [{{ name = \"p\", document = '{{\"Statement\": [{{\"Effect\": \"Maybe\", \"Action\": \"s3:*\", \"Resource\": \"*\"}}]}}' }}]\n"
            ),
            "groups.g.policies.p",
        ),
        (
            format!(
                "{VALID}\n[[groups]]\nname = \"g\"\npolicies = [{{ name = \"p\", file = \"missing.json\" }}]\n"
            ),
            "groups.g.policies.p.file",
        ),
        // A Deny on resource tags: s3warden never sees them on S3 resources, so it would never deny.
        (
            format!(
                "{VALID}\n[[groups]]\nname = \"g\"\npolicies = [{{ name = \"tags\", document = '{{\"Statement\": [{{\"Effect\": \"Deny\", \"Action\": \"s3:GetObject\", \"Resource\": \"*\", \"Condition\": {{\"StringEquals\": {{\"aws:ResourceTag/class\": \"secret\"}}}}}}]}}' }}]\n"
            ),
            "groups.g.policies.tags",
        ),
    ];
    for (config, key) in cases {
        let out = serve(&config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(
            stderr.contains(key),
            "error does not name {key:?}: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "printed before failing: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn missing_config_file_is_reported() {
    let out = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/s3warden.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/s3warden.toml"));
}

/// Writes [`VALID`] with its data under `dir`; returns the config's path.
/// Its upstream is port 9 on loopback, where nothing listens.
fn valid_config_in(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("s3warden.toml");
    std::fs::write(
        &path,
        format!(
            "{VALID}\n[audit]\npath = \"{}\"\n[store]\npath = \"{}\"\n[sessions]\nkey_file = \"{}\"\n",
            dir.join("audit.jsonl").display(),
            dir.join("identity").display(),
            dir.join("session.key").display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn serve_prints_the_endpoint_and_stops_on_sigterm() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = valid_config_in(dir.path());
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("s3warden listening on http://127.0.0.1:"),
        "{line}"
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    // stderr is a pipe here, not a terminal: plain text, no ANSI colours.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "ANSI escapes in a piped log: {log:?}"
    );
}

#[tokio::test]
async fn upstream_credentials_come_from_the_standard_chain_when_not_configured() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("s3warden.toml");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[root]\naccess_key_id = \"ROOTKEYFORTESTS00001\"\nsecret_access_key = \"root-secret-for-tests-000000000000000000\"\n[upstream]\nendpoint = \"{}\"\n[audit]\npath = \"{}\"\n",
        mock.uri(),
        dir.path().join("audit.jsonl").display()
    );
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env("AWS_ACCESS_KEY_ID", "CHAINKEYFROMENV00001")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "chain-secret-from-env-0000000000000000",
        )
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(endpoint) = line
        .trim()
        .strip_prefix("s3warden listening on ")
        .and_then(|s| s.split(' ').next())
        .map(str::to_string)
    else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "serve did not start ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "ROOTKEYFORTESTS00001",
            "root-secret-for-tests-000000000000000000",
            None,
            None,
            "tests",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
        .head_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let reqs = mock.received_requests().await.unwrap();
    let auth = reqs[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.contains("Credential=CHAINKEYFROMENV00001/"), "{auth}");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

#[test]
fn serve_warns_at_start_when_upstream_cannot_be_reached() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = valid_config_in(dir.path());
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let warned = std::iter::from_fn(|| rx.recv_timeout(std::time::Duration::from_secs(10)).ok())
        .find(|l| l.contains("upstream check at start failed"));
    let _ = child.kill();
    let _ = child.wait();
    let line = warned.expect("no start-up warning about the unreachable upstream");
    assert!(line.contains("http://127.0.0.1:9"), "{line}");
}
