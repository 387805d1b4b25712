//! Complete records: listing parameters, copy sources, multipart ids, ranges,
//! each DeleteObjects key with its outcome, the targets of IAM and STS calls
//! and the access key ids they issued (never their secrets or tokens), error
//! messages, and failed sign-ins that name the key they claimed, its owner
//! when known, and why they failed. Every line of the log, and of its
//! checkpoints, validates against docs/audit-record.schema.json.

use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use serde_json::Value;

use super::{by_id, cli, request_id, setup};
use crate::common::*;

const CAROL_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:GetFederationToken","sts:TagSession","s3:*"],"Resource":"*"}]}"#;
const SESSION_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/*"}]}"#;

fn find<'a>(records: &'a [Value], op: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["operation"] == op).collect()
}

#[tokio::test]
async fn records_name_parameters_targets_outcomes_and_failed_sign_ins() {
    let h = setup("", "").await;
    let e = h.endpoint();
    let alice = h.alice();
    alice
        .list_objects_v2()
        .bucket("shared")
        .prefix("bob/")
        .delimiter("/")
        .start_after("bob/a")
        .max_keys(5)
        .send()
        .await
        .unwrap_err();
    for key in ["alice/src", "alice/gone"] {
        alice
            .put_object()
            .bucket("shared")
            .key(key)
            .body(ByteStream::from_static(b"0123456789"))
            .send()
            .await
            .unwrap();
    }
    alice
        .copy_object()
        .bucket("shared")
        .key("alice/dst")
        .copy_source("shared/alice/src")
        .send()
        .await
        .unwrap();
    alice
        .get_object()
        .bucket("shared")
        .key("alice/src")
        .range("bytes=0-3")
        .send()
        .await
        .unwrap();
    let upload = alice
        .create_multipart_upload()
        .bucket("shared")
        .key("alice/mp")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_string();
    alice
        .upload_part()
        .bucket("shared")
        .key("alice/mp")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    let objects = ["alice/gone", "bob/z"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect();
    alice
        .delete_objects()
        .bucket("shared")
        .delete(
            Delete::builder()
                .set_objects(Some(objects))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // Failed sign-ins: alice's key with a wrong secret, and an unknown key.
    let url = format!("{e}/shared/alice/src");
    let (_, badsig_id, _) = request_id(&url, "wrong-secret-000000000000000000000000").await;
    let unknown = sign_request(
        "GET",
        &url,
        &[],
        b"",
        "AKIAUNKNOWNKEY000000",
        "whatever-secret-0000000000000000000000",
        SystemTime::now(),
    );
    let (status, headers, _) = send(&unknown, vec![]).await;
    assert_eq!(status, 403);
    let unknown_id = headers["x-amz-request-id"].to_str().unwrap().to_string();

    // IAM and STS: a user, its key, a federated session, its revocation.
    let ok = |(s, b): (u16, String)| {
        assert_eq!(s, 200, "{b}");
        b
    };
    ok(api_call(
        &e,
        "iam",
        &[("Action", "CreateUser"), ("UserName", "carol")],
    )
    .await);
    ok(api_call(
        &e,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "carol"),
            ("PolicyName", "everything"),
            ("PolicyDocument", CAROL_POLICY),
        ],
    )
    .await);
    let created = ok(api_call(
        &e,
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", "carol")],
    )
    .await);
    let (carol_key, carol_secret) = (
        xml_text(&created, "AccessKeyId"),
        xml_text(&created, "SecretAccessKey"),
    );
    let federated = ok(api_call_as(
        &e,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "uploader"),
            ("DurationSeconds", "900"),
            ("Policy", SESSION_POLICY),
            ("Tags.member.1.Key", "project"),
            ("Tags.member.1.Value", "apollo"),
            ("Tags.member.2.Key", "cost-center"),
            ("Tags.member.2.Value", "42"),
        ],
        &carol_key,
        &carol_secret,
        None,
    )
    .await);
    let (fed_key, fed_secret, fed_token) = (
        xml_text(&federated, "AccessKeyId"),
        xml_text(&federated, "SecretAccessKey"),
        xml_text(&federated, "SessionToken"),
    );
    let session = s3_session_client(&e, &fed_key, &fed_secret, Some(&fed_token));
    session
        .put_object()
        .bucket("shared")
        .key("carol/by-session")
        .body(ByteStream::from_static(b"s"))
        .send()
        .await
        .unwrap();
    ok(api_call(
        &e,
        "iam",
        &[("Action", "RevokeSessions"), ("UserName", "carol")],
    )
    .await);
    let refused = session
        .put_object()
        .bucket("shared")
        .key("carol/after-revocation")
        .body(ByteStream::from_static(b"s"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&refused), "ExpiredToken");

    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    for secret in [&carol_secret, &fed_secret, &fed_token] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret or token in the log"
        );
    }
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let list = find(&records, "ListObjectsV2")[0];
    let p = &list["parameters"];
    assert_eq!(
        (
            &p["prefix"],
            &p["delimiter"],
            &p["start_after"],
            &p["max_keys"]
        ),
        (
            &Value::from("bob/"),
            &Value::from("/"),
            &Value::from("bob/a"),
            &Value::from(5)
        )
    );
    assert_eq!(list["decision"]["allowed"], false);
    // What the decision rested on: the prefix asked for, and whose it had to be.
    assert_eq!(list["decision"]["conditions"]["s3:prefix"], "bob/");
    assert_eq!(list["decision"]["conditions"]["aws:username"], "alice");
    assert_eq!(list["error_code"], "AccessDenied");
    assert_eq!(list["error_message"], "Access Denied");

    let copy = find(&records, "CopyObject")[0];
    assert_eq!(
        copy["parameters"]["copy_source"],
        serde_json::json!({"bucket": "shared", "key": "alice/src"})
    );
    let ranged = find(&records, "GetObject")
        .into_iter()
        .find(|r| r["status"] == 206)
        .expect("the ranged get");
    assert_eq!(ranged["parameters"]["range"], "bytes=0-3");
    assert_eq!(
        ranged["decision"]["conditions"],
        serde_json::json!({"aws:username": "alice"}),
        "the resource's ${{aws:username}}"
    );
    let part = find(&records, "UploadPart")[0];
    assert_eq!(part["parameters"]["upload_id"], upload_id.as_str());
    assert_eq!(part["parameters"]["part_number"], 1);

    let delete = find(&records, "DeleteObjects")[0];
    assert_eq!(
        delete["parameters"]["objects"],
        serde_json::json!([
            {"key": "alice/gone", "outcome": "deleted"},
            {"key": "bob/z", "outcome": "denied", "error_code": "AccessDenied"}
        ])
    );

    let badsig = by_id(&records, &badsig_id);
    assert_eq!(badsig["auth"]["access_key_id"], ALICE_KEY);
    assert_eq!(badsig["auth"]["failure"], "bad signature");
    assert_eq!(badsig["principal"]["user_name"], "alice");
    assert_eq!(badsig["error_code"], "SignatureDoesNotMatch");
    assert!(
        badsig["error_message"]
            .as_str()
            .unwrap()
            .contains("signature")
    );
    let unknown = by_id(&records, &unknown_id);
    assert_eq!(unknown["auth"]["access_key_id"], "AKIAUNKNOWNKEY000000");
    assert_eq!(unknown["auth"]["failure"], "unknown key");
    assert!(unknown.get("principal").is_none());

    let create_user = find(&records, "iam:CreateUser")[0];
    assert_eq!(create_user["parameters"]["user_name"], "carol");
    let put_policy = find(&records, "iam:PutUserPolicy")[0];
    assert_eq!(put_policy["parameters"]["policy_name"], "everything");
    assert_eq!(
        put_policy["parameters"]["policy_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let create_key = find(&records, "iam:CreateAccessKey")[0];
    assert_eq!(
        create_key["response"]["issued_access_key_id"],
        carol_key.as_str()
    );
    let fed = find(&records, "sts:GetFederationToken")[0];
    assert_eq!(fed["parameters"]["federated_name"], "uploader");
    assert_eq!(fed["parameters"]["duration_seconds"], 900);
    assert_eq!(
        fed["parameters"]["policy_sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(SESSION_POLICY))
    );
    assert_eq!(fed["response"]["issued_access_key_id"], fed_key.as_str());
    assert_eq!(
        fed["parameters"]["tags"],
        serde_json::json!([
            {"key": "project", "value": "apollo"},
            {"key": "cost-center", "value": "42"}
        ])
    );
    // The session's request names its tags, key to value, as passed.
    let by_session = records
        .iter()
        .find(|r| r["key"] == "carol/by-session")
        .unwrap();
    let session = &by_session["principal"]["session"];
    assert_eq!(session["issued_by"], "GetFederationToken", "{by_session}");
    assert_eq!(
        session["tags"],
        serde_json::json!({"project": "apollo", "cost-center": "42"}),
        "{by_session}"
    );
    assert!(session.get("transitive_tag_keys").is_none(), "{session}");
    assert!(session.get("web_identity").is_none(), "{session}");
    // A long-term key's request has no session at all.
    assert!(
        find(&records, "iam:CreateUser")[0]["principal"]
            .get("session")
            .is_none()
    );
    let revoked = records
        .iter()
        .find(|r| r["key"] == "carol/after-revocation")
        .unwrap();
    assert_eq!(revoked["auth"]["failure"], "revoked token");
    assert_eq!(revoked["auth"]["access_key_id"], fed_key.as_str());
    assert_eq!(revoked["error_code"], "ExpiredToken");

    // The auditor's questions: who touched bob/ (the listing too), and what
    // carol did, through the sessions she issued as well.
    let log = dir.join("audit.jsonl");
    let p = log.to_str().unwrap();
    let (_, out, _) = cli(&["audit", p, "--json", "--prefix", "bob/"]);
    let ops: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["operation"].to_string())
        .collect();
    assert!(ops.contains(&"\"ListObjectsV2\"".to_string()), "{ops:?}");
    let (_, out, _) = cli(&[
        "audit",
        p,
        "--json",
        "--principal",
        "carol",
        "--include-sessions",
    ]);
    let keys: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["key"].clone())
        .collect();
    assert!(keys.contains(&Value::from("carol/by-session")), "{keys:?}");
    let (_, out, _) = cli(&["audit", p, "--json", "--principal", &fed_key]);
    assert_eq!(
        out.lines().count(),
        2,
        "the session's put and its refused one:\n{out}"
    );
    let (_, out, _) = cli(&[
        "audit",
        p,
        "--json",
        "--principal",
        ALICE_KEY,
        "--reason",
        "bad signature",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");

    validate_audit_log(&[&log, &dir.join("audit.checkpoints.jsonl")]);
}

#[tokio::test]
async fn a_policy_sent_with_a_call_is_recorded_as_text_when_configured() {
    let h = setup("", "session_policy = \"text\"").await;
    let e = h.endpoint();
    for params in [
        vec![("Action", "CreateUser"), ("UserName", "dave")],
        vec![
            ("Action", "PutUserPolicy"),
            ("UserName", "dave"),
            ("PolicyName", "p"),
            ("PolicyDocument", CAROL_POLICY),
        ],
    ] {
        let (s, b) = api_call(&e, "iam", &params).await;
        assert_eq!(s, 200, "{b}");
    }
    let records = h.audit(3).await;
    let put = find(&records, "iam:PutUserPolicy")[0];
    assert_eq!(put["parameters"]["policy"], CAROL_POLICY);
    assert_eq!(
        put["parameters"]["policy_sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(CAROL_POLICY))
    );
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    validate_audit_log(&[&dir.join("audit.jsonl")]);
}
