//! Managed policy versions, the way administrators edit policies:
//! `aws iam create-policy-version --set-as-default` changes what every
//! request is allowed at once, on every instance of a fleet; at most five
//! versions, ids never reused, the default never deleted.

use std::time::{Duration, Instant};

use crate::common::*;

const ARN: &str = "arn:aws:iam::000000000000:policy/readers";

fn allow_get(bucket_prefix: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/{bucket_prefix}/*"}}]}}"#
    )
}

async fn ok(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, "iam", params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

async fn refused(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, "iam", params).await;
    assert_ne!(s, 200, "{params:?}: {b}");
    xml_code(&b)
}

/// A user with the managed policy attached, and its key.
async fn setup(e: &str) -> (String, String) {
    shared_bucket(e).await;
    ok(
        e,
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "readers"),
            ("PolicyDocument", &allow_get("one")),
        ],
    )
    .await;
    ok(e, &[("Action", "CreateUser"), ("UserName", "vera")]).await;
    ok(
        e,
        &[
            ("Action", "AttachUserPolicy"),
            ("UserName", "vera"),
            ("PolicyArn", ARN),
        ],
    )
    .await;
    let k = ok(e, &[("Action", "CreateAccessKey"), ("UserName", "vera")]).await;
    (xml_text(&k, "AccessKeyId"), xml_text(&k, "SecretAccessKey"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_default_version_from_the_aws_cli_is_enforced_on_the_next_request() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    let (k, s) = setup(&e).await;
    let vera = s3_client(&e, &k, &s);
    put_shared(&vera, "one/a").await.unwrap();
    assert_eq!(
        put_shared(&vera, "two/a").await.unwrap_err(),
        "AccessDenied"
    );

    let doc = h.dir.path().join("v2.json");
    std::fs::write(&doc, allow_get("two")).unwrap();
    let (e2, doc2) = (e.clone(), format!("file://{}", doc.display()));
    let out = tokio::task::spawn_blocking(move || {
        run_aws(
            &e2,
            ROOT_KEY,
            ROOT_SECRET,
            &[
                "iam",
                "create-policy-version",
                "--policy-arn",
                ARN,
                "--policy-document",
                &doc2,
                "--set-as-default",
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["PolicyVersion"]["VersionId"], "v2");
    assert_eq!(created["PolicyVersion"]["IsDefaultVersion"], true);

    put_shared(&vera, "two/a").await.unwrap();
    assert_eq!(
        put_shared(&vera, "one/b").await.unwrap_err(),
        "AccessDenied"
    );

    let p = ok(&e, &[("Action", "GetPolicy"), ("PolicyArn", ARN)]).await;
    assert_eq!(xml_text(&p, "DefaultVersionId"), "v2");
    let v1 = ok(
        &e,
        &[
            ("Action", "GetPolicyVersion"),
            ("PolicyArn", ARN),
            ("VersionId", "v1"),
        ],
    )
    .await;
    assert_eq!(xml_text(&v1, "IsDefaultVersion"), "false");
    assert!(v1.contains("shared%2Fone"), "{v1}");
    let list = ok(&e, &[("Action", "ListPolicyVersions"), ("PolicyArn", ARN)]).await;
    let ids: Vec<&str> = list
        .split("<VersionId>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    assert_eq!(ids, ["v2", "v1"]);

    // Back to v1 with SetDefaultPolicyVersion; the default is never deleted.
    ok(
        &e,
        &[
            ("Action", "SetDefaultPolicyVersion"),
            ("PolicyArn", ARN),
            ("VersionId", "v1"),
        ],
    )
    .await;
    put_shared(&vera, "one/c").await.unwrap();
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "DeletePolicyVersion"),
                ("PolicyArn", ARN),
                ("VersionId", "v1"),
            ],
        )
        .await,
        "DeleteConflict"
    );
    // Five versions at most; ids are never reused.
    for _ in 0..3 {
        ok(
            &e,
            &[
                ("Action", "CreatePolicyVersion"),
                ("PolicyArn", ARN),
                ("PolicyDocument", &allow_get("three")),
            ],
        )
        .await;
    }
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "CreatePolicyVersion"),
                ("PolicyArn", ARN),
                ("PolicyDocument", &allow_get("four")),
            ],
        )
        .await,
        "LimitExceeded"
    );
    ok(
        &e,
        &[
            ("Action", "DeletePolicyVersion"),
            ("PolicyArn", ARN),
            ("VersionId", "v2"),
        ],
    )
    .await;
    let v = ok(
        &e,
        &[
            ("Action", "CreatePolicyVersion"),
            ("PolicyArn", ARN),
            ("PolicyDocument", &allow_get("four")),
        ],
    )
    .await;
    assert_eq!(xml_text(&v, "VersionId"), "v6");
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "GetPolicyVersion"),
                ("PolicyArn", ARN),
                ("VersionId", "v2"),
            ],
        )
        .await,
        "NoSuchEntity"
    );
    // A policy with versions besides the default cannot be deleted.
    ok(
        &e,
        &[
            ("Action", "DetachUserPolicy"),
            ("UserName", "vera"),
            ("PolicyArn", ARN),
        ],
    )
    .await;
    assert_eq!(
        refused(&e, &[("Action", "DeletePolicy"), ("PolicyArn", ARN)]).await,
        "DeleteConflict"
    );
    // A bad document is refused and nothing changes.
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "CreatePolicyVersion"),
                ("PolicyArn", ARN),
                ("PolicyDocument", "{\"Statement\": 7}"),
            ],
        )
        .await,
        "MalformedPolicyDocument"
    );

    // Versions survive a restart.
    let dir = h.dir;
    h.server.shutdown().await;
    let text = config_text(dir.path(), &embedded_upstream(dir.path()), "");
    let again = Harness::start(dir, &text).await;
    let list = ok(
        &again.endpoint(),
        &[("Action", "ListPolicyVersions"), ("PolicyArn", ARN)],
    )
    .await;
    assert_eq!(list.matches("<VersionId>").count(), 5, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_version_set_on_one_instance_is_enforced_on_the_others() {
    let f = crate::fleet::Fleet::start(2).await;
    let (a, b) = (f.endpoint(0), f.endpoint(1));
    let (k, s) = setup(&a).await;
    let on_b = s3_client(&b, &k, &s);
    let start = Instant::now();
    while put_shared(&on_b, "one/a").await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ok(
        &a,
        &[
            ("Action", "CreatePolicyVersion"),
            ("PolicyArn", ARN),
            ("PolicyDocument", &allow_get("two")),
            ("SetAsDefault", "true"),
        ],
    )
    .await;
    let start = Instant::now();
    while put_shared(&on_b, "two/a").await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the new default on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        put_shared(&on_b, "one/b").await.unwrap_err(),
        "AccessDenied"
    );
    let list = ok(&b, &[("Action", "ListPolicyVersions"), ("PolicyArn", ARN)]).await;
    assert_eq!(list.matches("<VersionId>").count(), 2, "{list}");
}
