//! End-to-end tests of the embedded S3 store (`s3warden::embedded`): a store started on a temp
//! directory, driven with the real AWS SDK for Rust (path-style, the store's endpoint and key)
//! and, where the SDK cannot misbehave on purpose, with hand-signed raw HTTP requests.
//!
//! They check S3's behaviour: status and error codes, listing and pagination, odd keys kept
//! verbatim, multipart rules and ETags, checksums, conditional requests, that a broken upload
//! commits nothing, and that a restart keeps everything.

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder;
use aws_sdk_s3::operation::head_object::builders::HeadObjectFluentBuilder;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;

use aws_sdk_s3::config::http::HttpResponse;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use aws_sdk_s3::primitives::ByteStream;

use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    MetadataDirective, ObjectIdentifier, Tag, Tagging,
};

use md5::{Digest as _, Md5};

use s3warden::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStore};

use std::path::Path;

mod integrity;
mod lifecycle;
mod listing;
mod multipart;
mod objects;

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

/// A store on a fresh temporary directory, a client for it, and one bucket.
struct Env {
    dir: tempfile::TempDir,
    store: EmbeddedStore,
    c: Client,
}

async fn env(bucket: &str) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = start(dir.path()).await;
    let c = client(&store);
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
    Env { dir, store, c }
}

async fn body_of(out: GetObjectOutput) -> Vec<u8> {
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

fn get_req(c: &Client, bucket: &str, key: &str) -> GetObjectFluentBuilder {
    c.get_object().bucket(bucket).key(key)
}

fn head_req(c: &Client, bucket: &str, key: &str) -> HeadObjectFluentBuilder {
    c.head_object().bucket(bucket).key(key)
}

fn put_req(c: &Client, bucket: &str, key: &str, body: &[u8]) -> PutObjectFluentBuilder {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
}

fn copy_req(c: &Client, bucket: &str, key: &str, source: &str) -> CopyObjectFluentBuilder {
    c.copy_object().bucket(bucket).key(key).copy_source(source)
}

fn complete_req(
    c: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
) -> CompleteMultipartUploadFluentBuilder {
    let upload = CompletedMultipartUpload::builder()
        .set_parts(Some(parts.to_vec()))
        .build();
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(upload)
}

async fn tags_of(c: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = c
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get tagging");
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

async fn create_upload(c: &Client, bucket: &str, key: &str) -> String {
    let out = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create upload");
    out.upload_id().expect("upload id").to_owned()
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

/// 200 for success, else the HTTP status of the S3 error.
fn status<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> u16 {
    match result {
        Ok(_) => 200,
        Err(e) => failure::<T, E>(Err(e)).1,
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
    body_of(out).await
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// Deterministic pseudo-random bytes, so parts differ and misplaced bytes show.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as u8
        })
        .collect()
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Every key of a bucket, paging through ListObjectsV2 with the given page size.
async fn list_all_v2(
    c: &Client,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    page: i32,
) -> (Vec<String>, Vec<String>) {
    let (mut keys, mut prefixes, mut token) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let out = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .max_keys(page)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list v2");
        let count = out.contents().len() + out.common_prefixes().len();
        assert!(count <= page as usize);
        assert_eq!(out.key_count(), Some(count as i32));
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        if out.is_truncated() != Some(true) {
            assert!(out.next_continuation_token().is_none());
            return (keys, prefixes);
        }
        token = Some(
            out.next_continuation_token()
                .expect("token when truncated")
                .to_owned(),
        );
    }
}

/// Keys that a filesystem path would merge, alter or refuse; S3 stores each verbatim.
const ODD_KEYS: &[&str] = &[
    "a/../b",
    "b",
    "a//b",
    "a/b",
    "a/./b",
    "x/",
    "x",
    "./x",
    "/leading-slash",
    "trailing-dots..",
    "sp ace+plus%pct",
    "%2F%20encoded-looking",
    "q?uery#frag&amp=1",
    "tab\there",
    "\u{e9}t\u{e9}/\u{65e5}\u{672c}\u{8a9e}/\u{1F600}",
    "~tilde!*'()[]{}$,;=@:",
    "back\\slash",
];

const MIB: usize = 1024 * 1024;

async fn upload_part(
    c: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    n: i32,
    data: &[u8],
) -> CompletedPart {
    let out = c
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(n)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {n}: {e:?}"));
    assert_eq!(out.e_tag(), Some(quoted(&md5_hex(data)).as_str()));
    CompletedPart::builder()
        .part_number(n)
        .set_e_tag(out.e_tag().map(str::to_owned))
        .build()
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for p in parts {
        md5.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(md5.finalize()), parts.len())
}

/// Signs a request for the store with aws-sigv4; returns the headers to send with it.
fn sign_headers(
    store: &EmbeddedStore,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    payload_hash: &str,
) -> Vec<(String, String)> {
    sign_request(store, method, path, headers, payload_hash).0
}

/// [`sign_headers`], and the seed signature that aws-chunked chunk signatures chain from.
fn sign_request(
    store: &EmbeddedStore,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    payload_hash: &str,
) -> (Vec<(String, String)>, String) {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;
    let identity: Identity =
        aws_credential_types::Credentials::new(AK, SK, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let url = format!("{}{path}", store.endpoint());
    let mut all: Vec<(String, String)> = vec![("host".to_owned(), store.local_addr().to_string())];
    all.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let signable = SignableRequest::new(
        method,
        &url,
        all.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload_hash.to_owned()),
    )
    .expect("signable");
    let (instructions, signature) = sign(signable, &params).expect("sign").into_parts();
    let (extra, _) = instructions.into_parts();
    all.extend(
        extra
            .into_iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned())),
    );
    (all, signature)
}

/// Sends a raw HTTP/1.1 request and returns the status and text of the answer, if any came
/// before the connection closed. With `abort`, the client closes its side after `body_sent`
/// (shorter than the declared length), the way a client — or the proxy — aborts an upload.
async fn raw_request(
    store: &EmbeddedStore,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body_sent: &[u8],
    abort: bool,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(store.local_addr())
        .await
        .expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body_sent).await.expect("write body");
    if abort {
        stream.shutdown().await.expect("shutdown");
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Waits for the store to finish with an aborted request: tmp/ empty again.
async fn assert_no_leftovers(dir: &Path) {
    for _ in 0..100 {
        if std::fs::read_dir(dir.join("tmp"))
            .expect("tmp")
            .next()
            .is_none()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!(
        "temporary files left behind in {}",
        dir.join("tmp").display()
    );
}
