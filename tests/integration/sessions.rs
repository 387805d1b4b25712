//! Sealed session tokens end to end: a token sealed with an unknown key id,
//! an expired one and one with flipped bits are refused with AWS's errors
//! (S3's `InvalidToken`/`ExpiredToken`, STS's `InvalidClientTokenId`/
//! `ExpiredToken`); parent changes take effect on the next request; and every
//! session of a user can be revoked.

use crate::common::*;
use chrono::Utc;
use s3warden::identity::{SessionClaims, SessionKeys, SessionKind};

struct Creds {
    key: String,
    secret: String,
    token: String,
}

async fn federate(endpoint: &str, key: &str, secret: &str, name: &str, policy: &str) -> Creds {
    let (s, b) = api_call_as(
        endpoint,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", name),
            ("Policy", policy),
        ],
        key,
        secret,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    Creds {
        key: xml_text(&b, "AccessKeyId"),
        secret: xml_text(&b, "SecretAccessKey"),
        token: xml_text(&b, "SessionToken"),
    }
}

const PUT_SHARED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/*"}]}"#;

async fn put(c: &Creds, endpoint: &str, key: &str) -> Result<(), String> {
    s3_session_client(endpoint, &c.key, &c.secret, Some(&c.token))
        .put_object()
        .bucket("shared")
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

/// S3 answers `s3_code` to these credentials, STS `sts_code` (both 4xx).
async fn refused(c: &Creds, e: &str, s3_code: &str, sts_code: &str) {
    assert_eq!(put(c, e, "x").await.unwrap_err(), s3_code);
    let (s, b) = api_call_as(
        e,
        "sts",
        &[("Action", "GetCallerIdentity")],
        &c.key,
        &c.secret,
        Some(&c.token),
    )
    .await;
    assert_eq!(
        (s, xml_text(&b, "Code")),
        (403, sts_code.to_string()),
        "{b}"
    );
}

fn claims(kind: SessionKind, expires: i64) -> SessionClaims {
    SessionClaims {
        kind,
        access_key_id: "ASIAFORGEDFORGED0001".into(),
        secret_access_key: "forged-secret".into(),
        parent_is_root: true,
        parent_name: String::new(),
        parent_id: "000000000000".into(),
        parent_key: Some(ROOT_KEY.into()),
        name: "forged".into(),
        issued_ms: Utc::now().timestamp_millis(),
        expires,
        policy: Some(PUT_SHARED.into()),
        policy_arns: vec![],
        tags: vec![],
        transitive: vec![],
        web_identity: None,
    }
}

fn creds_for(c: &SessionClaims, token: String) -> Creds {
    Creds {
        key: c.access_key_id.clone(),
        secret: c.secret_access_key.clone(),
        token,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_expired_and_tampered_tokens_are_refused() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();

    // A well-formed token under the server's key works (the control).
    let keys = SessionKeys::load(&h.dir.path().join("session.key"), 16).unwrap();
    let good = claims(SessionKind::Federated, Utc::now().timestamp() + 900);
    let c = creds_for(&good, keys.seal(&good).unwrap());
    put(&c, &e, "ok").await.unwrap();

    // Sealed with a key the server does not have.
    let stranger = SessionKeys::from_keys(&[("stolen", [7; 32])], 4);
    let c = creds_for(&good, stranger.seal(&good).unwrap());
    refused(&c, &e, "InvalidToken", "InvalidClientTokenId").await;

    // Expired, to the second.
    let old = claims(SessionKind::Federated, Utc::now().timestamp() - 1);
    let c = creds_for(&old, keys.seal(&old).unwrap());
    refused(&c, &e, "ExpiredToken", "ExpiredToken").await;

    // A real token with one character changed, anywhere.
    let real = federate(&e, ROOT_KEY, ROOT_SECRET, "flip", PUT_SHARED).await;
    put(&real, &e, "real").await.unwrap();
    for at in [0, real.token.len() / 2, real.token.len() - 1] {
        let mut bytes = real.token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let flipped = Creds {
            key: real.key.clone(),
            secret: real.secret.clone(),
            token: String::from_utf8(bytes).unwrap(),
        };
        assert_eq!(
            put(&flipped, &e, "x").await.unwrap_err(),
            "InvalidToken",
            "at {at}"
        );
    }
    // The session's key with another session's token.
    let other = federate(&e, ROOT_KEY, ROOT_SECRET, "other", PUT_SHARED).await;
    let mixed = Creds {
        key: real.key.clone(),
        secret: real.secret.clone(),
        token: other.token.clone(),
    };
    assert_eq!(put(&mixed, &e, "x").await.unwrap_err(), "InvalidToken");
    // The audit log never holds a token or a secret.
    let log = std::fs::read_to_string(h.audit_path()).unwrap();
    assert!(!log.contains(&real.token) && !log.contains(&real.secret));
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_changes_and_revocation_reach_existing_sessions() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let issuer_policy = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"},
      {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/*"}]}"#;
    for p in [
        vec![("Action", "CreateUser"), ("UserName", "issuer")],
        vec![("Action", "CreateGroup"), ("GroupName", "issuers")],
        vec![
            ("Action", "PutGroupPolicy"),
            ("GroupName", "issuers"),
            ("PolicyName", "p"),
            ("PolicyDocument", issuer_policy),
        ],
        vec![
            ("Action", "AddUserToGroup"),
            ("GroupName", "issuers"),
            ("UserName", "issuer"),
        ],
    ] {
        let (s, b) = api_call(&e, "iam", &p).await;
        assert_eq!(s, 200, "{b}");
    }
    let (_, b) = api_call(
        &e,
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", "issuer")],
    )
    .await;
    let (ik, is) = (xml_text(&b, "AccessKeyId"), xml_text(&b, "SecretAccessKey"));

    let s1 = federate(&e, &ik, &is, "alice", PUT_SHARED).await;
    put(&s1, &e, "a").await.unwrap();
    // Removing the issuer from its group: the session loses it on the next request.
    api_call(
        &e,
        "iam",
        &[
            ("Action", "RemoveUserFromGroup"),
            ("GroupName", "issuers"),
            ("UserName", "issuer"),
        ],
    )
    .await;
    assert_eq!(put(&s1, &e, "a").await.unwrap_err(), "AccessDenied");
    api_call(
        &e,
        "iam",
        &[
            ("Action", "AddUserToGroup"),
            ("GroupName", "issuers"),
            ("UserName", "issuer"),
        ],
    )
    .await;
    put(&s1, &e, "a").await.unwrap();

    // Deactivating the key that issued it ends the session.
    api_call(
        &e,
        "iam",
        &[
            ("Action", "UpdateAccessKey"),
            ("UserName", "issuer"),
            ("AccessKeyId", &ik),
            ("Status", "Inactive"),
        ],
    )
    .await;
    assert_eq!(put(&s1, &e, "a").await.unwrap_err(), "InvalidToken");
    api_call(
        &e,
        "iam",
        &[
            ("Action", "UpdateAccessKey"),
            ("UserName", "issuer"),
            ("AccessKeyId", &ik),
            ("Status", "Active"),
        ],
    )
    .await;
    put(&s1, &e, "a").await.unwrap();

    // Revoking every session issued before now, through the API.
    let (s, b) = api_call(
        &e,
        "iam",
        &[("Action", "RevokeSessions"), ("UserName", "issuer")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // A revoked session's token is sound; it is answered as expired.
    assert_eq!(put(&s1, &e, "a").await.unwrap_err(), "ExpiredToken");
    // A session issued afterwards works; the issuer's own key was never affected.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let s2 = federate(&e, &ik, &is, "alice", PUT_SHARED).await;
    put(&s2, &e, "b").await.unwrap();

    // ... and through the CLI, which signs the same call with the root key.
    let config = h.dir.path().join("s3warden.toml");
    std::fs::write(
        &config,
        config_text(h.dir.path(), &embedded_upstream(h.dir.path()), "")
            .replace("127.0.0.1:0", &h.server.local_addr().to_string()),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_s3warden"))
            .args(["sessions", "revoke", "--user", "issuer", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("issuer"));
    assert_eq!(put(&s2, &e, "b").await.unwrap_err(), "ExpiredToken");

    // Deleting and re-creating the issuer does not revive old sessions.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let s3 = federate(&e, &ik, &is, "alice", PUT_SHARED).await;
    put(&s3, &e, "c").await.unwrap();
    for p in [
        vec![
            ("Action", "DeleteAccessKey"),
            ("UserName", "issuer"),
            ("AccessKeyId", ik.as_str()),
        ],
        vec![
            ("Action", "RemoveUserFromGroup"),
            ("GroupName", "issuers"),
            ("UserName", "issuer"),
        ],
        vec![("Action", "DeleteUser"), ("UserName", "issuer")],
        vec![("Action", "CreateUser"), ("UserName", "issuer")],
        vec![
            ("Action", "AddUserToGroup"),
            ("GroupName", "issuers"),
            ("UserName", "issuer"),
        ],
    ] {
        let (s, b) = api_call(&e, "iam", &p).await;
        assert_eq!(s, 200, "{p:?}: {b}");
    }
    assert_eq!(put(&s3, &e, "c").await.unwrap_err(), "InvalidToken");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_token_session_is_the_user_itself_with_sts_limits() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let (s, b) = api_call_as(
        &e,
        "sts",
        &[("Action", "GetSessionToken"), ("DurationSeconds", "900")],
        ALICE_KEY,
        ALICE_SECRET,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let c = Creds {
        key: xml_text(&b, "AccessKeyId"),
        secret: xml_text(&b, "SecretAccessKey"),
        token: xml_text(&b, "SessionToken"),
    };
    assert!(c.key.starts_with("ASIA"));
    // `${aws:username}` still resolves: the session is alice herself.
    put(&c, &e, "alice/from-session").await.unwrap();
    assert_eq!(put(&c, &e, "bob/x").await.unwrap_err(), "AccessDenied");
    let call = |params: Vec<(&'static str, &'static str)>, service: &'static str| {
        let (e, c) = (
            e.clone(),
            (c.key.clone(), c.secret.clone(), c.token.clone()),
        );
        async move { api_call_as(&e, service, &params, &c.0, &c.1, Some(&c.2)).await }
    };
    let (s, b) = call(vec![("Action", "GetCallerIdentity")], "sts").await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains("<Arn>arn:aws:iam::000000000000:user/alice</Arn>"),
        "{b}"
    );
    let (s, b) = call(vec![("Action", "GetUser")], "iam").await;
    assert_eq!(
        (s, xml_text(&b, "Code").as_str()),
        (403, "InvalidClientTokenId"),
        "{b}"
    );
    let (s, b) = call(
        vec![("Action", "GetFederationToken"), ("Name", "nested")],
        "sts",
    )
    .await;
    assert_eq!(
        (s, xml_text(&b, "Code").as_str()),
        (403, "AccessDenied"),
        "{b}"
    );
    let (s, b) = call(vec![("Action", "GetSessionToken")], "sts").await;
    assert_eq!(
        (s, xml_text(&b, "Code").as_str()),
        (403, "AccessDenied"),
        "{b}"
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_style_revocation_with_a_token_issue_time_deny() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let issuer_policy = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"},
      {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/*"}]}"#;
    for p in [
        vec![("Action", "CreateUser"), ("UserName", "issuer")],
        vec![
            ("Action", "PutUserPolicy"),
            ("UserName", "issuer"),
            ("PolicyName", "p"),
            ("PolicyDocument", issuer_policy),
        ],
    ] {
        let (s, b) = api_call(&e, "iam", &p).await;
        assert_eq!(s, 200, "{b}");
    }
    let (_, b) = api_call(
        &e,
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", "issuer")],
    )
    .await;
    let (ik, is) = (xml_text(&b, "AccessKeyId"), xml_text(&b, "SecretAccessKey"));
    let old = federate(&e, &ik, &is, "alice", PUT_SHARED).await;
    put(&old, &e, "a").await.unwrap();
    // AWS's "revoke active sessions": deny everything to sessions issued before a moment.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let cutoff = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let revoke = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{cutoff}"}}}}}}}}"#
    );
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "issuer"),
            ("PolicyName", "RevokeOlderSessions"),
            ("PolicyDocument", &revoke),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(put(&old, &e, "a").await.unwrap_err(), "AccessDenied");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new = federate(&e, &ik, &is, "alice", PUT_SHARED).await;
    put(&new, &e, "b").await.unwrap();
    h.server.shutdown().await;
}

/// A presigned URL is only as good as the session that signed it: valid for
/// an hour by its own `X-Amz-Expires`, it stops working with `ExpiredToken`
/// the second the session expires, as S3 refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_never_outlives_its_session() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let h = Harness::embedded().await;
    let e = h.endpoint();
    let root = h.root();
    root.create_bucket().bucket("shared").send().await.unwrap();
    root.put_object()
        .bucket("shared")
        .key("doc")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let keys = SessionKeys::load(&h.dir.path().join("session.key"), 16).unwrap();
    let short = claims(SessionKind::Federated, Utc::now().timestamp() + 3);
    let c = creds_for(&short, keys.seal(&short).unwrap());
    let presigned = s3_session_client(&e, &c.key, &c.secret, Some(&c.token))
        .get_object()
        .bucket("shared")
        .key("doc")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(3600)).unwrap())
        .await
        .unwrap();
    let signed = Signed {
        method: "GET".into(),
        url: presigned.uri().to_string(),
        headers: vec![],
    };
    assert!(signed.url.contains("X-Amz-Security-Token="));
    let (s, _, body) = send(&signed, vec![]).await;
    assert_eq!((s, body.as_str()), (200, "hello"));
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(short.expires * 1000 - Utc::now().timestamp_millis()).unwrap_or(0) + 1100,
    ))
    .await;
    let (s, _, body) = send(&signed, vec![]).await;
    assert_eq!(
        (s, xml_text(&body, "Code").as_str()),
        (400, "ExpiredToken"),
        "{body}"
    );
    h.server.shutdown().await;
}
