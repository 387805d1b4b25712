//! `s3:ExistingObjectTag/<key>` in policies: the object's stored tags are
//! read from upstream when a policy that decides needs them, an Allow and a
//! Deny on them hold, the proxy's own retagging takes effect at once, and the
//! lookup is in the audit record.

use aws_sdk_s3::operation::RequestId;

use crate::common::*;

const PUBLIC_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Public","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"public"}}}]}"#;
const ALL_BUT_SECRET: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::shared/*"},{"Sid":"NoSecret","Effect":"Deny","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"secret"}}}]}"#;

async fn ok(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, "iam", params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

async fn user_with(e: &str, name: &str, policy: &str) -> aws_sdk_s3::Client {
    ok(e, &[("Action", "CreateUser"), ("UserName", name)]).await;
    ok(
        e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "p"),
            ("PolicyDocument", policy),
        ],
    )
    .await;
    let k = ok(e, &[("Action", "CreateAccessKey"), ("UserName", name)]).await;
    s3_client(
        e,
        &xml_text(&k, "AccessKeyId"),
        &xml_text(&k, "SecretAccessKey"),
    )
}

async fn get(client: &aws_sdk_s3::Client, key: &str) -> Result<String, String> {
    client
        .get_object()
        .bucket("shared")
        .key(key)
        .send()
        .await
        .map(|o| o.request_id().unwrap_or_default().to_string())
        .map_err(|e| error_code(&e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_on_existing_object_tags_allow_and_deny_as_the_stored_tags_say() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    let root = h.root();
    for (key, tagging) in [
        ("a", Some("class=public")),
        ("b", Some("class=secret")),
        ("c", None),
    ] {
        let mut put = root
            .put_object()
            .bucket("shared")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"));
        if let Some(t) = tagging {
            put = put.tagging(t);
        }
        put.send().await.unwrap();
    }
    let carol = user_with(&e, "carol", PUBLIC_ONLY).await;
    let dave = user_with(&e, "dave", ALL_BUT_SECRET).await;

    let id = get(&carol, "a").await.unwrap();
    assert_eq!(get(&carol, "b").await.unwrap_err(), "AccessDenied");
    assert_eq!(get(&carol, "c").await.unwrap_err(), "AccessDenied");
    get(&dave, "a").await.unwrap();
    assert_eq!(get(&dave, "b").await.unwrap_err(), "AccessDenied");
    get(&dave, "c").await.unwrap();

    // The lookup is part of the record, with the value the decision used.
    let r = h.audit_for(&id).await;
    assert_eq!(r["parameters"]["existing_object_tags"], 1, "{r}");
    assert_eq!(
        r["decision"]["conditions"]["s3:existingobjecttag/class"], "public",
        "{r}"
    );
    // A caller whose policies do not read tags costs no lookup.
    // (Missing, and without s3:ListBucket answered as denied, as S3 does.)
    assert!(get(&h.alice(), "alice/none").await.is_err());
    let start = std::time::Instant::now();
    let alices = loop {
        // The record is written once the answer has gone out.
        if let Some(r) = h
            .audit(0)
            .await
            .into_iter()
            .find(|r| r["key"] == "alice/none")
        {
            break r;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "alice's record"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        alices["parameters"]["existing_object_tags"].is_null(),
        "{alices}"
    );

    // Retagged through the proxy: the next decision sees the new tags.
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(
            aws_sdk_s3::types::Tag::builder()
                .key("class")
                .value("public")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    root.put_object_tagging()
        .bucket("shared")
        .key("b")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    get(&carol, "b").await.unwrap();
    get(&dave, "b").await.unwrap();
}
