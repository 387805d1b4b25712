//! The AWS SDK for Rust through s3warden to the embedded store: the copy and
//! sync operations, allowed and denied for a user with a per-user prefix, and
//! the bytes that actually landed upstream.

use std::time::SystemTime;

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};

async fn setup() -> Harness {
    let h = Harness::embedded().await;
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    h
}

async fn body(c: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    c.get_object()
        .bucket("shared")
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

async fn all_keys(c: &aws_sdk_s3::Client) -> Vec<String> {
    let out = c.list_objects_v2().bucket("shared").send().await.unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn user_works_within_its_prefix() {
    let h = setup().await;
    let alice = h.alice();
    alice
        .put_object()
        .bucket("shared")
        .key("alice/notes/a.txt")
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .unwrap();
    alice
        .put_object()
        .bucket("shared")
        .key("alice/b.txt")
        .body(ByteStream::from_static(b"bb"))
        .send()
        .await
        .unwrap();
    assert_eq!(body(&alice, "alice/b.txt").await, b"bb");
    let ranged = alice
        .get_object()
        .bucket("shared")
        .key("alice/b.txt")
        .range("bytes=1-1")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.body.collect().await.unwrap().to_vec(), b"b");

    let listed = alice
        .list_objects_v2()
        .bucket("shared")
        .prefix("alice/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["alice/b.txt"]);
    assert_eq!(prefixes, ["alice/notes/"]);

    alice
        .copy_object()
        .bucket("shared")
        .key("alice/c.txt")
        .copy_source("shared/alice/b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(body(&alice, "alice/c.txt").await, b"bb");

    let delete = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("alice/b.txt")
                .build()
                .unwrap(),
        )
        .objects(
            ObjectIdentifier::builder()
                .key("alice/c.txt")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = alice
        .delete_objects()
        .bucket("shared")
        .delete(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 2);
    alice
        .delete_object()
        .bucket("shared")
        .key("alice/notes/a.txt")
        .send()
        .await
        .unwrap();
    assert!(all_keys(&h.root()).await.is_empty());
    h.server.shutdown().await;
}

#[tokio::test]
async fn user_is_denied_outside_its_prefix() {
    let h = setup().await;
    let root = h.root();
    root.put_object()
        .bucket("shared")
        .key("bob/secret")
        .body(ByteStream::from_static(b"s"))
        .send()
        .await
        .unwrap();
    let alice = h.alice();
    let denied = [
        error_code(
            &alice
                .get_object()
                .bucket("shared")
                .key("bob/secret")
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(
            &alice
                .put_object()
                .bucket("shared")
                .key("bob/x")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(
            &alice
                .delete_object()
                .bucket("shared")
                .key("bob/secret")
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(
            &alice
                .list_objects_v2()
                .bucket("shared")
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(
            &alice
                .list_objects_v2()
                .bucket("shared")
                .prefix("bob/")
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(&alice.list_buckets().send().await.unwrap_err()),
        error_code(
            &alice
                .create_bucket()
                .bucket("alices")
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(
            &alice
                .delete_bucket()
                .bucket("shared")
                .send()
                .await
                .unwrap_err(),
        ),
        error_code(
            &alice
                .copy_object()
                .bucket("shared")
                .key("alice/stolen")
                .copy_source("shared/bob/secret")
                .send()
                .await
                .unwrap_err(),
        ),
    ];
    assert!(denied.iter().all(|c| c == "AccessDenied"), "{denied:?}");
    assert_eq!(body(&root, "bob/secret").await, b"s");
    assert_eq!(all_keys(&root).await, ["bob/secret"]);
    h.server.shutdown().await;
}

#[tokio::test]
async fn multipart_upload_over_16_mib() {
    let h = setup().await;
    let alice = h.alice();
    let key = "alice/big.bin";
    let part_size = 6 * 1024 * 1024;
    let data: Vec<u8> = (0..(17 * 1024 * 1024 + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    let upload = alice
        .create_multipart_upload()
        .bucket("shared")
        .key(key)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (i, chunk) in data.chunks(part_size).enumerate() {
        let n = i as i32 + 1;
        let out = alice
            .upload_part()
            .bucket("shared")
            .key(key)
            .upload_id(upload_id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let listed = alice
        .list_parts()
        .bucket("shared")
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 3);
    alice
        .complete_multipart_upload()
        .bucket("shared")
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(body(&alice, key).await, data);

    // Aborting an upload elsewhere is denied; within the prefix it works.
    let other = h
        .root()
        .create_multipart_upload()
        .bucket("shared")
        .key("bob/m")
        .send()
        .await
        .unwrap();
    let err = alice
        .abort_multipart_upload()
        .bucket("shared")
        .key("bob/m")
        .upload_id(other.upload_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "AccessDenied");
    let mine = alice
        .create_multipart_upload()
        .bucket("shared")
        .key("alice/m")
        .send()
        .await
        .unwrap();
    alice
        .abort_multipart_upload()
        .bucket("shared")
        .key("alice/m")
        .upload_id(mine.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    h.server.shutdown().await;
}

#[tokio::test]
async fn tampered_body_stores_nothing() {
    let h = setup().await;
    let url = format!("{}/shared/alice/tampered.bin", h.endpoint());
    let signed_body = vec![1u8; 3 * 1024 * 1024];
    let mut sent = signed_body.clone();
    sent[2 * 1024 * 1024] ^= 1;
    let s = sign_request(
        "PUT",
        &url,
        &[],
        &signed_body,
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    let (status, _, text) = send(&s, sent).await;
    assert_eq!(
        (status, xml_code(&text).as_str()),
        (400, "XAmzContentSHA256Mismatch"),
        "{text}"
    );
    assert!(
        all_keys(&h.root()).await.is_empty(),
        "a tampered body was stored"
    );
    // The untampered body goes through.
    let (status, _, text) = send(&s, signed_body.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body(&h.root(), "alice/tampered.bin").await, signed_body);
    h.server.shutdown().await;
}

#[tokio::test]
async fn dot_segment_and_encoded_slash_keys_are_stored_as_s3_would() {
    let h = setup().await;
    let put = |path: &str| format!("{}/shared/{path}", h.endpoint());
    for (path, status) in [
        // Authorized as the literal key "alice/../bob/x": inside alice's prefix,
        // and S3 stores it under exactly that key, never as "bob/x".
        ("alice/../bob/x", 200),
        ("alice%2Fenc%2Fslash", 200),
        ("alice//double", 200),
        ("bob%2Fx", 403),
        ("alice%2F..%2F..%2Fbob%2Fy", 200),
    ] {
        let s = sign_request(
            "PUT",
            &put(path),
            &[],
            b"data",
            ALICE_KEY,
            ALICE_SECRET,
            SystemTime::now(),
        );
        let (got, _, text) = send(&s, b"data".to_vec()).await;
        assert_eq!(got, status, "{path}: {text}");
    }
    let mut keys = all_keys(&h.root()).await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "alice/../../bob/y",
            "alice/../bob/x",
            "alice//double",
            "alice/enc/slash"
        ]
    );
    h.server.shutdown().await;
}
