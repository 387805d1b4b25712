//! The identity store survives: a restart keeps users, keys, groups,
//! policies and roles, and session tokens issued before it still work; a
//! change acknowledged just before `kill -9` of the real binary is there
//! after the restart. The store's files are readable by their owner only.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::*;

const GROUP_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/carol/*"}]}"#;
const MANAGED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::shared"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/team/carol"},"Action":"sts:AssumeRole"}]}"#;
const SESSION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/fed/*"}]}"#;

async fn ok(e: &str, service: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, service, params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_identity_and_existing_sessions_still_work() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    ok(
        &e,
        "iam",
        &[
            ("Action", "CreateUser"),
            ("UserName", "carol"),
            ("Path", "/team/"),
        ],
    )
    .await;
    let key = ok(
        &e,
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", "carol")],
    )
    .await;
    let (ck, cs) = (
        xml_text(&key, "AccessKeyId"),
        xml_text(&key, "SecretAccessKey"),
    );
    ok(
        &e,
        "iam",
        &[("Action", "CreateGroup"), ("GroupName", "writers")],
    )
    .await;
    ok(
        &e,
        "iam",
        &[
            ("Action", "PutGroupPolicy"),
            ("GroupName", "writers"),
            ("PolicyName", "carol-prefix"),
            ("PolicyDocument", GROUP_POLICY),
        ],
    )
    .await;
    ok(
        &e,
        "iam",
        &[
            ("Action", "AddUserToGroup"),
            ("GroupName", "writers"),
            ("UserName", "carol"),
        ],
    )
    .await;
    // A store user may also join a config-declared group.
    ok(
        &e,
        "iam",
        &[
            ("Action", "AddUserToGroup"),
            ("GroupName", "prefix-users"),
            ("UserName", "carol"),
        ],
    )
    .await;
    let pol = ok(
        &e,
        "iam",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "list-shared"),
            ("PolicyDocument", MANAGED),
        ],
    )
    .await;
    let arn = xml_text(&pol, "Arn");
    ok(
        &e,
        "iam",
        &[
            ("Action", "AttachUserPolicy"),
            ("UserName", "carol"),
            ("PolicyArn", &arn),
        ],
    )
    .await;
    ok(
        &e,
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", "carols-role"),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    )
    .await;
    ok(
        &e,
        "iam",
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "carols-role"),
            ("PolicyName", "read"),
            ("PolicyDocument", GROUP_POLICY),
        ],
    )
    .await;
    let fed = ok(
        &e,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "fed"),
            ("Policy", SESSION),
        ],
    )
    .await;
    let (fk, fs, ft) = (
        xml_text(&fed, "AccessKeyId"),
        xml_text(&fed, "SecretAccessKey"),
        xml_text(&fed, "SessionToken"),
    );
    let role = {
        let (s, b) = api_call_as(
            &e,
            "sts",
            &[
                ("Action", "AssumeRole"),
                ("RoleArn", "arn:aws:iam::000000000000:role/carols-role"),
                ("RoleSessionName", "before"),
            ],
            &ck,
            &cs,
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        b
    };
    let (rk, rs, rt) = (
        xml_text(&role, "AccessKeyId"),
        xml_text(&role, "SecretAccessKey"),
        xml_text(&role, "SessionToken"),
    );
    put_shared(&s3_session_client(&e, &fk, &fs, Some(&ft)), "fed/before")
        .await
        .unwrap();

    // Restart: same config, same directory.
    let Harness { server, dir } = h;
    server.shutdown().await;
    let text = config_text(dir.path(), &embedded_upstream(dir.path()), "");
    let h = Harness::start(dir, &text).await;
    let e = h.endpoint();

    let user = ok(&e, "iam", &[("Action", "GetUser"), ("UserName", "carol")]).await;
    assert_eq!(xml_text(&user, "Path"), "/team/");
    let keys = ok(
        &e,
        "iam",
        &[("Action", "ListAccessKeys"), ("UserName", "carol")],
    )
    .await;
    assert!(keys.contains(&ck), "{keys}");
    let groups = ok(
        &e,
        "iam",
        &[("Action", "ListGroupsForUser"), ("UserName", "carol")],
    )
    .await;
    assert!(
        groups.contains("writers") && groups.contains("prefix-users"),
        "{groups}"
    );
    let attached = ok(
        &e,
        "iam",
        &[
            ("Action", "ListAttachedUserPolicies"),
            ("UserName", "carol"),
        ],
    )
    .await;
    assert!(attached.contains(&arn), "{attached}");
    let doc = ok(
        &e,
        "iam",
        &[
            ("Action", "GetGroupPolicy"),
            ("GroupName", "writers"),
            ("PolicyName", "carol-prefix"),
        ],
    )
    .await;
    assert!(doc.contains("carol"), "{doc}");
    ok(
        &e,
        "iam",
        &[("Action", "GetRole"), ("RoleName", "carols-role")],
    )
    .await;
    ok(&e, "iam", &[("Action", "GetPolicy"), ("PolicyArn", &arn)]).await;

    // The stored key, the federated session and the role session all still work.
    let carol = s3_session_client(&e, &ck, &cs, None);
    put_shared(&carol, "carol/after").await.unwrap();
    carol
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put_shared(&carol, "elsewhere").await.unwrap_err(),
        "AccessDenied"
    );
    put_shared(&s3_session_client(&e, &fk, &fs, Some(&ft)), "fed/after")
        .await
        .unwrap();
    put_shared(
        &s3_session_client(&e, &rk, &rs, Some(&rt)),
        "carol/from-role",
    )
    .await
    .unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(h.dir.path().join("identity")), 0o700);
        assert_eq!(mode(h.dir.path().join("identity/changes.jsonl")), 0o600);
        assert_eq!(mode(h.dir.path().join("session.key")), 0o600);
    }
    h.server.shutdown().await;
}

/// The real binary, started on a loopback port; returns it and its endpoint.
fn spawn(config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3warden"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("s3warden listening on ")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_acknowledged_before_kill_9_is_there_after_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("s3warden.toml");
    std::fs::write(
        &config,
        config_text(dir.path(), &embedded_upstream(dir.path()), ""),
    )
    .unwrap();
    let (mut child, e) = spawn(&config);
    ok(&e, "iam", &[("Action", "CreateUser"), ("UserName", "dave")]).await;
    let key = ok(
        &e,
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", "dave")],
    )
    .await;
    let fed = ok(
        &e,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "before-kill"),
            ("Policy", SESSION),
        ],
    )
    .await;
    // The last change, acknowledged, then SIGKILL at once: no shutdown path runs.
    ok(
        &e,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "dave"),
            ("PolicyName", "last"),
            ("PolicyDocument", GROUP_POLICY),
        ],
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, e) = spawn(&config);
    let policy = ok(
        &e,
        "iam",
        &[
            ("Action", "GetUserPolicy"),
            ("UserName", "dave"),
            ("PolicyName", "last"),
        ],
    )
    .await;
    assert!(policy.contains("carol"), "{policy}");
    let keys = ok(
        &e,
        "iam",
        &[("Action", "ListAccessKeys"), ("UserName", "dave")],
    )
    .await;
    assert!(keys.contains(&xml_text(&key, "AccessKeyId")), "{keys}");
    // The session key file survived too: the token sealed before the kill opens.
    let (s, b) = api_call_as(
        &e,
        "sts",
        &[("Action", "GetCallerIdentity")],
        &xml_text(&fed, "AccessKeyId"),
        &xml_text(&fed, "SecretAccessKey"),
        Some(&xml_text(&fed, "SessionToken")),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("federated-user/before-kill"), "{b}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_entity_that_the_config_now_declares_stops_the_start() {
    let h = Harness::embedded().await;
    ok(
        &h.endpoint(),
        "iam",
        &[("Action", "CreateUser"), ("UserName", "erin")],
    )
    .await;
    let Harness { server, dir } = h;
    server.shutdown().await;
    let extra = "[[users]]\nname = \"Erin\"\n";
    let text = config_text(dir.path(), &embedded_upstream(dir.path()), extra);
    let config =
        s3warden::config::Config::from_toml(&text, std::path::Path::new("t.toml"), dir.path())
            .unwrap();
    let err = match s3warden::server::Server::start(config).await {
        Ok(_) => panic!("started despite the conflict"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("\"erin\"") && err.contains("config"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_are_all_applied_and_all_durable() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    let calls: Vec<_> = (0..24)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move {
                let name = format!("parallel-{i:02}");
                api_call(&e, "iam", &[("Action", "CreateUser"), ("UserName", &name)]).await
            })
        })
        .collect();
    // S3 keeps being served while the store is written.
    h.root()
        .create_bucket()
        .bucket("busy")
        .send()
        .await
        .unwrap();
    for c in calls {
        let (s, b) = c.await.unwrap();
        assert_eq!(s, 200, "{b}");
    }
    let count = |body: &str| body.matches("<UserName>parallel-").count();
    let listed = ok(&e, "iam", &[("Action", "ListUsers"), ("MaxItems", "1000")]).await;
    assert_eq!(count(&listed), 24);
    let Harness { server, dir } = h;
    server.shutdown().await;
    let text = config_text(dir.path(), &embedded_upstream(dir.path()), "");
    let h = Harness::start(dir, &text).await;
    let listed = ok(
        &h.endpoint(),
        "iam",
        &[("Action", "ListUsers"), ("MaxItems", "1000")],
    )
    .await;
    assert_eq!(count(&listed), 24);
    h.server.shutdown().await;
}
