//! Reloading without a restart, on the real binary: SIGHUP takes the config
//! file's identities and policies (a config that does not load is refused
//! and the running one stays), and a session key appended to the key file
//! seals new tokens within seconds while older tokens still open.

use std::time::{Duration, Instant};

use base64::Engine;

use crate::common::*;

const CAROL_KEY: &str = "CAROLKEYFORTESTS0001";
const CAROL_SECRET: &str = "carol-secret-for-tests-00000000000000000";

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The key id a session token was sealed with.
fn sealed_with(token: &str) -> String {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap();
    let len = bytes[1] as usize;
    String::from_utf8(bytes[2..2 + len].to_vec()).unwrap()
}

async fn federate(endpoint: &str) -> (String, String, String) {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/*"}]}"#;
    let (status, body) = api_call(
        endpoint,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "visitor"),
            ("Policy", policy),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        xml_text(&body, "AccessKeyId"),
        xml_text(&body, "SecretAccessKey"),
        xml_text(&body, "SessionToken"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_identities_refuses_a_broken_config_and_session_keys_rotate_live() {
    let dir = tempfile::TempDir::new().unwrap();
    let base = config_text(dir.path(), &embedded_upstream(dir.path()), "");
    let config = dir.path().join("s3warden.toml");
    std::fs::write(&config, &base).unwrap();
    let (child, endpoint) = spawn_binary(&config, &[]);
    s3_client(&endpoint, ROOT_KEY, ROOT_SECRET)
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let carol = s3_client(&endpoint, CAROL_KEY, CAROL_SECRET);
    assert_eq!(
        put_shared(&carol, "carol/a").await.unwrap_err(),
        "InvalidAccessKeyId"
    );

    // A user added to the file arrives with SIGHUP, with its group's policy.
    let with_carol = format!(
        "{base}\n[[users]]\nname = \"carol\"\ngroups = [\"prefix-users\"]\naccess_keys = [{{ access_key_id = \"{CAROL_KEY}\", secret_access_key = \"{CAROL_SECRET}\" }}]\n"
    );
    std::fs::write(&config, &with_carol).unwrap();
    signal(&child, "-HUP");
    eventually("carol's key after SIGHUP", || {
        let carol = carol.clone();
        async move { put_shared(&carol, "carol/a").await.is_ok() }
    })
    .await;
    assert_eq!(
        put_shared(&carol, "alice/a").await.unwrap_err(),
        "AccessDenied",
        "the group's per-user prefix policy applies"
    );

    // A config that does not parse is refused; the running one stays.
    std::fs::write(&config, "listen = [not toml").unwrap();
    signal(&child, "-HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    put_shared(&carol, "carol/b").await.unwrap();
    std::fs::write(&config, &with_carol).unwrap();

    // A key appended to the shared key file seals new tokens, with no signal.
    let (k, s, t) = federate(&endpoint).await;
    let before = sealed_with(&t);
    run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_s3warden"))
            .args(["sessions", "rotate-key", "--config"])
            .arg(&config),
    );
    eventually("tokens sealed with the new key", || {
        let endpoint = endpoint.clone();
        let before = before.clone();
        async move { sealed_with(&federate(&endpoint).await.2) != before }
    })
    .await;
    // The token sealed with the old key still opens.
    put_shared(
        &s3_session_client(&endpoint, &k, &s, Some(&t)),
        "visitor/old-key",
    )
    .await
    .unwrap();
    stop_binary(child);
}
