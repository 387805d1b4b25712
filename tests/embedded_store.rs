//! End-to-end tests of the embedded S3 store (`s3warden::embedded`): a store started on a temp
//! directory, driven with the real AWS SDK for Rust (path-style, the store's endpoint and key)
//! and, where the SDK cannot misbehave on purpose, with hand-signed raw HTTP requests.
//!
//! They check S3's behaviour: status and error codes, listing and pagination, odd keys kept
//! verbatim, multipart rules and ETags, checksums, conditional requests, that a broken upload
//! commits nothing, and that a restart keeps everything.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use md5::{Digest as _, Md5};
use s3warden::embedded::{EmbeddedConfig, EmbeddedStore};
use std::path::Path;

const AK: &str = "AKIDEMBEDDEDTEST";
const SK: &str = "embedded-test-secret-key";
const REGION: &str = "us-east-1";

fn config(dir: &Path) -> EmbeddedConfig {
    EmbeddedConfig {
        data_dir: dir.to_owned(),
        region: REGION.to_owned(),
        access_key_id: AK.to_owned(),
        secret_access_key: SK.to_owned(),
    }
}

async fn start(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::start(config(dir))
        .await
        .expect("store starts")
}

fn client_with(store: &EmbeddedStore, ak: &str, sk: &str, region: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(store.endpoint())
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

fn client(store: &EmbeddedStore) -> Client {
    client_with(store, AK, SK, REGION)
}

/// The S3 error code and HTTP status of a failed SDK call.
fn failure<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> (String, u16) {
    match result {
        Ok(_) => panic!("expected the call to fail"),
        Err(err) => {
            let status = match &err {
                SdkError::ServiceError(e) => e.raw().status().as_u16(),
                other => panic!("expected a service error, got {other:?}"),
            };
            let code = err
                .as_service_error()
                .and_then(|e| e.code())
                .unwrap_or_default()
                .to_owned();
            (code, status)
        }
    }
}

async fn put(c: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
    out.e_tag().unwrap_or_default().to_owned()
}

async fn get(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key:?}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

#[tokio::test]
async fn bucket_lifecycle_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = start(dir.path()).await;
    let c = client(&store);

    c.create_bucket()
        .bucket("alpha")
        .send()
        .await
        .expect("create");
    c.create_bucket()
        .bucket("beta.example-1")
        .send()
        .await
        .expect("create");
    assert_eq!(
        failure(c.create_bucket().bucket("alpha").send().await),
        ("BucketAlreadyOwnedByYou".to_owned(), 409)
    );
    assert_eq!(
        failure(c.create_bucket().bucket("Bad_Name").send().await),
        ("InvalidBucketName".to_owned(), 400)
    );

    let listed = c.list_buckets().send().await.expect("list");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["alpha", "beta.example-1"]);
    assert!(listed.buckets().iter().all(|b| b.creation_date().is_some()));

    c.head_bucket().bucket("alpha").send().await.expect("head");
    assert_eq!(failure(c.head_bucket().bucket("nope").send().await).1, 404);
    let loc = c
        .get_bucket_location()
        .bucket("alpha")
        .send()
        .await
        .expect("location");
    assert!(
        loc.location_constraint()
            .is_none_or(|l| l.as_str().is_empty()),
        "us-east-1 is reported empty"
    );
    assert_eq!(
        failure(c.get_bucket_location().bucket("nope").send().await),
        ("NoSuchBucket".to_owned(), 404)
    );
    let versioning = c
        .get_bucket_versioning()
        .bucket("alpha")
        .send()
        .await
        .expect("versioning");
    assert!(versioning.status().is_none());

    put(&c, "alpha", "k", b"v").await;
    assert_eq!(
        failure(c.delete_bucket().bucket("alpha").send().await),
        ("BucketNotEmpty".to_owned(), 409)
    );
    assert_eq!(
        failure(c.delete_bucket().bucket("nope").send().await),
        ("NoSuchBucket".to_owned(), 404)
    );
    c.delete_object()
        .bucket("alpha")
        .key("k")
        .send()
        .await
        .expect("delete object");
    c.delete_bucket()
        .bucket("alpha")
        .send()
        .await
        .expect("delete bucket");
    assert_eq!(failure(c.head_bucket().bucket("alpha").send().await).1, 404);
    assert_eq!(
        failure(
            c.put_object()
                .bucket("alpha")
                .key("k")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        )
        .0,
        "NoSuchBucket"
    );
    store.shutdown().await;
}

#[tokio::test]
async fn put_get_head_with_headers_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = start(dir.path()).await;
    let c = client(&store);
    c.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create");

    let body = b"hello, embedded world".to_vec();
    let out = c
        .put_object()
        .bucket("bkt")
        .key("docs/hello.txt")
        .body(ByteStream::from(body.clone()))
        .content_type("text/plain; charset=utf-8")
        .content_encoding("identity")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"hello.txt\"")
        .content_language("en")
        .expires(aws_sdk_s3::primitives::DateTime::from_secs(2_000_000_000))
        .metadata("owner", "alice")
        .metadata("Mixed-Case", "Value With Spaces")
        .send()
        .await
        .expect("put");
    assert_eq!(out.e_tag(), Some(quoted(&md5_hex(&body)).as_str()));

    let got = c
        .get_object()
        .bucket("bkt")
        .key("docs/hello.txt")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"hello.txt\"")
    );
    assert_eq!(got.content_language(), Some("en"));
    assert_eq!(got.expires_string(), Some("Wed, 18 May 2033 03:33:20 GMT"));
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.e_tag(), out.e_tag());
    let meta = got.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("owner").map(String::as_str), Some("alice"));
    assert_eq!(
        meta.get("mixed-case").map(String::as_str),
        Some("Value With Spaces")
    );
    assert!(got.last_modified().is_some());
    assert_eq!(
        got.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref(),
        body.as_slice()
    );

    let head = c
        .head_object()
        .bucket("bkt")
        .key("docs/hello.txt")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(head.e_tag(), out.e_tag());

    assert_eq!(
        failure(c.get_object().bucket("bkt").key("missing").send().await),
        ("NoSuchKey".to_owned(), 404)
    );
    assert_eq!(
        failure(c.head_object().bucket("bkt").key("missing").send().await).1,
        404
    );
    assert_eq!(
        failure(c.get_object().bucket("nope").key("k").send().await),
        ("NoSuchBucket".to_owned(), 404)
    );

    // Overwrite replaces data and metadata; an empty object is fine.
    put(&c, "bkt", "docs/hello.txt", b"").await;
    let head = c
        .head_object()
        .bucket("bkt")
        .key("docs/hello.txt")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(0));
    assert!(head.metadata().is_none_or(|m| m.is_empty()));
    assert_eq!(get(&c, "bkt", "docs/hello.txt").await, b"");

    // User metadata is limited to 2 KB.
    let big = "x".repeat(2100);
    let result = c
        .put_object()
        .bucket("bkt")
        .key("big-meta")
        .metadata("m", big)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(failure(result), ("MetadataTooLarge".to_owned(), 400));
    store.shutdown().await;
}
