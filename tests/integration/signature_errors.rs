//! Bad signatures and bad aws-chunked bodies end to end: each gets the error
//! S3 gives for it, and nothing is stored upstream (the embedded store is
//! asked afterwards). Chunk and trailer signatures are made with aws-sigv4's
//! own `sign_chunk` / `sign_trailer`.

use std::time::{Duration, SystemTime};

use crate::common::*;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, sign};
use aws_smithy_runtime_api::http::Headers;
use bytes::Bytes;
use s3warden::auth::checksum::{Algorithm, checksum_base64};

const SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

fn identity() -> aws_smithy_runtime_api::client::identity::Identity {
    aws_credential_types::Credentials::new(ROOT_KEY, ROOT_SECRET, None, None, "t").into()
}

/// Signs the request headers of an aws-chunked upload; returns the request
/// and the seed signature.
fn sign_streaming(
    url: &str,
    mode: &str,
    decoded: usize,
    trailer: bool,
    at: SystemTime,
) -> (Signed, String) {
    let mut headers = vec![
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        (
            "x-amz-decoded-content-length".to_string(),
            decoded.to_string(),
        ),
    ];
    if trailer {
        headers.push(("x-amz-trailer".into(), "x-amz-checksum-crc32".into()));
    }
    let host = url.split('/').nth(2).unwrap().to_string();
    let mut all = vec![("host".to_string(), host)];
    all.extend(headers);
    let settings = s3warden::upstream::s3_signing_settings();
    let id = identity();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "PUT",
        url,
        all.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        SignableBody::Precomputed(mode.to_string()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (new, _) = instructions.into_parts();
    for h in new {
        all.push((h.name().to_string(), h.value().to_string()));
    }
    let auth = all
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1
        .clone();
    let seed = auth.rsplit("Signature=").next().unwrap().to_string();
    (
        Signed {
            method: "PUT".into(),
            url: url.into(),
            headers: all,
        },
        seed,
    )
}

/// Frames `chunks` (signed when `seed` is given), ending with the final
/// chunk and, when `trailer` holds a value, the CRC32 trailer (signed for
/// signed chunks).
fn chunked_body(
    chunks: &[&[u8]],
    seed: Option<&str>,
    trailer: Option<&str>,
    at: SystemTime,
) -> Vec<u8> {
    let id = identity();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(())
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut prev = seed.map(str::to_string);
    for c in chunks.iter().chain(std::iter::once(&&b""[..])) {
        match &mut prev {
            Some(p) => {
                let sig = aws_sigv4::sign::v4::sign_chunk(&Bytes::copy_from_slice(c), p, &params)
                    .unwrap()
                    .signature()
                    .to_string();
                out.extend_from_slice(
                    format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes(),
                );
                *p = sig;
            }
            None => out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes()),
        }
        if !c.is_empty() {
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some(value) = trailer {
        out.extend_from_slice(format!("x-amz-checksum-crc32:{value}\r\n").as_bytes());
        if let Some(p) = &prev {
            let mut h = Headers::new();
            h.insert("x-amz-checksum-crc32", value.to_string());
            let sig = aws_sigv4::sign::v4::sign_trailer(&h, p, &params)
                .unwrap()
                .signature()
                .to_string();
            out.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

async fn setup(extra: &str) -> Harness {
    let h = Harness::embedded_with(extra).await;
    h.root().create_bucket().bucket("bkt").send().await.unwrap();
    h
}

/// Sends, expects S3's error, and checks nothing was stored at `key`.
async fn refused(
    h: &Harness,
    name: &str,
    signed: &Signed,
    body: Vec<u8>,
    status: u16,
    code: &str,
    key: &str,
) {
    let (got, _, text) = send(signed, body).await;
    assert_eq!(
        (got, xml_code(&text).as_str()),
        (status, code),
        "{name}: {text}"
    );
    let stored = h.root().head_object().bucket("bkt").key(key).send().await;
    assert!(stored.is_err(), "{name}: an object was stored upstream");
}

fn part(n: usize, byte: u8) -> Vec<u8> {
    vec![byte; n]
}

#[tokio::test]
async fn bad_aws_chunked_bodies_are_refused_and_store_nothing() {
    let h = setup("").await;
    let now = SystemTime::now();
    let (a, b) = (part(8192, b'a'), part(100, b'b'));
    let data = [&a[..], &b[..]].concat();
    let crc = checksum_base64(Algorithm::Crc32, &data);
    let url = |k: &str| format!("{}/bkt/{k}", h.endpoint());

    // The good request first: the same framing is accepted and stored.
    let (s, seed) = sign_streaming(&url("good"), SIGNED_TRAILER, data.len(), true, now);
    let (st, _, text) = send(&s, chunked_body(&[&a, &b], Some(&seed), Some(&crc), now)).await;
    assert_eq!(st, 200, "{text}");

    let (s, seed) = sign_streaming(&url("truncated"), SIGNED, data.len(), false, now);
    let body = chunked_body(&[&a, &b], Some(&seed), None, now);
    refused(
        &h,
        "truncated chunk",
        &s,
        body[..5000].to_vec(),
        400,
        "IncompleteBody",
        "truncated",
    )
    .await;

    let (s, _) = sign_streaming(&url("overflow"), UNSIGNED_TRAILER, 10, true, now);
    let body = b"1ffffffffffffffff\r\nabc".to_vec();
    refused(
        &h,
        "chunk-size overflow",
        &s,
        body,
        400,
        "IncompleteBody",
        "overflow",
    )
    .await;

    let (s, _) = sign_streaming(&url("replayed"), SIGNED, data.len(), false, now);
    let (_, other_seed) = sign_streaming(&url("other"), SIGNED, data.len(), false, now);
    let body = chunked_body(&[&a, &b], Some(&other_seed), None, now);
    refused(
        &h,
        "signature from another request",
        &s,
        body,
        403,
        "SignatureDoesNotMatch",
        "replayed",
    )
    .await;

    let (s, seed) = sign_streaming(&url("swapped"), SIGNED, 16384, false, now);
    let body = chunked_body(&[&a, &a], Some(&seed), None, now);
    let text = String::from_utf8_lossy(&body).into_owned();
    let sigs: Vec<usize> = text
        .match_indices("chunk-signature=")
        .map(|(i, _)| i + 16)
        .collect();
    let mut swapped = body.clone();
    let first = body[sigs[0]..sigs[0] + 64].to_vec();
    swapped[sigs[1]..sigs[1] + 64].copy_from_slice(&first);
    refused(
        &h,
        "signature from another chunk",
        &s,
        swapped,
        403,
        "SignatureDoesNotMatch",
        "swapped",
    )
    .await;

    let (s, seed) = sign_streaming(&url("nofinal"), SIGNED, data.len(), false, now);
    let body = chunked_body(&[&a, &b], Some(&seed), None, now);
    let final_at = text_pos(&body, "0;chunk-signature=");
    refused(
        &h,
        "missing final chunk",
        &s,
        body[..final_at].to_vec(),
        400,
        "IncompleteBody",
        "nofinal",
    )
    .await;

    let (s, seed) = sign_streaming(&url("length"), SIGNED, data.len() + 1, false, now);
    let body = chunked_body(&[&a, &b], Some(&seed), None, now);
    refused(
        &h,
        "decoded-length mismatch",
        &s,
        body,
        400,
        "IncompleteBody",
        "length",
    )
    .await;

    let (s, _) = sign_streaming(&url("crc"), UNSIGNED_TRAILER, data.len(), true, now);
    let body = chunked_body(&[&a, &b], None, Some("AAAAAA=="), now);
    refused(
        &h,
        "wrong trailing checksum",
        &s,
        body,
        400,
        "BadDigest",
        "crc",
    )
    .await;

    let (s, seed) = sign_streaming(&url("crcsigned"), SIGNED_TRAILER, data.len(), true, now);
    let body = chunked_body(&[&a, &b], Some(&seed), Some("AAAAAA=="), now);
    refused(
        &h,
        "wrong signed checksum",
        &s,
        body,
        400,
        "BadDigest",
        "crcsigned",
    )
    .await;

    let (s, seed) = sign_streaming(&url("notrailer"), SIGNED_TRAILER, data.len(), true, now);
    let body = chunked_body(&[&a, &b], Some(&seed), None, now);
    refused(
        &h,
        "trailer missing",
        &s,
        body,
        400,
        "MalformedTrailerError",
        "notrailer",
    )
    .await;

    let (s, seed) = sign_streaming(
        &url("unsignedtrailer"),
        SIGNED_TRAILER,
        data.len(),
        true,
        now,
    );
    let body = chunked_body(&[&a, &b], Some(&seed), Some(&crc), now);
    let sig_at = text_pos(&body, "x-amz-trailer-signature:");
    let mut unsigned = body[..sig_at].to_vec();
    unsigned.extend_from_slice(b"\r\n");
    refused(
        &h,
        "trailer unsigned",
        &s,
        unsigned,
        400,
        "MalformedTrailerError",
        "unsignedtrailer",
    )
    .await;

    let small = [&b[..], &a[..]].concat();
    let (s, _) = sign_streaming(&url("small"), UNSIGNED_TRAILER, small.len(), true, now);
    let body = chunked_body(
        &[&b, &a],
        None,
        Some(&checksum_base64(Algorithm::Crc32, &small)),
        now,
    );
    refused(
        &h,
        "small chunk",
        &s,
        body,
        400,
        "InvalidChunkSizeError",
        "small",
    )
    .await;

    let (mut s, seed) = sign_streaming(&url("nolength"), SIGNED, data.len(), false, now);
    s.headers
        .retain(|(n, _)| n != "x-amz-decoded-content-length");
    let body = chunked_body(&[&a, &b], Some(&seed), None, now);
    // Removing a signed header breaks the signature before the length is read.
    refused(
        &h,
        "decoded length removed",
        &s,
        body,
        403,
        "SignatureDoesNotMatch",
        "nolength",
    )
    .await;

    h.server.shutdown().await;
}

fn text_pos(body: &[u8], needle: &str) -> usize {
    body.windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap()
}

/// A presigned URL made by aws-sigv4 (as aws-sdk-rust's presigner does).
fn presigned(method: &str, url: &str, at: SystemTime, expires: Duration) -> Signed {
    presigned_as(identity(), method, url, at, expires)
}

fn presigned_as(
    id: aws_smithy_runtime_api::client::identity::Identity,
    method: &str,
    url: &str,
    at: SystemTime,
    expires: Duration,
) -> Signed {
    let mut settings = s3warden::upstream::s3_signing_settings();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&id)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let host = url.split('/').nth(2).unwrap().to_string();
    let signable = SignableRequest::new(
        method,
        url,
        [("host", host.as_str())].into_iter(),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .unwrap();
    instructions.apply_to_request_http1x(&mut req);
    Signed {
        method: method.into(),
        url: req.uri().to_string(),
        headers: vec![],
    }
}

/// A SigV2 presigned URL, signed as botocore's `HmacV1QueryAuth` does.
fn presigned_v2(method: &str, endpoint: &str, path: &str, expires: i64) -> Signed {
    let sts = format!("{method}\n\n\n{expires}\n{path}");
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        s3warden::auth::sigv2::sign(ROOT_SECRET, &sts),
    );
    let sig = s3warden::auth::canonical::uri_encode(&sig, false);
    Signed {
        method: method.into(),
        url: format!(
            "{endpoint}{path}?AWSAccessKeyId={ROOT_KEY}&Expires={expires}&Signature={sig}"
        ),
        headers: vec![],
    }
}

#[tokio::test]
async fn presigned_url_rules() {
    let h = setup("").await;
    let now = SystemTime::now();
    let url = |k: &str| format!("{}/bkt/{k}", h.endpoint());

    let ok = presigned("PUT", &url("fine"), now, Duration::from_secs(60));
    let (st, _, text) = send(&ok, b"fine".to_vec()).await;
    assert_eq!(st, 200, "{text}");

    let week = presigned("PUT", &url("week"), now, Duration::from_secs(604_801));
    refused(
        &h,
        "X-Amz-Expires over a week",
        &week,
        b"x".to_vec(),
        400,
        "AuthorizationQueryParametersError",
        "week",
    )
    .await;

    let future = presigned(
        "PUT",
        &url("future"),
        now + Duration::from_secs(3600),
        Duration::from_secs(60),
    );
    refused(
        &h,
        "X-Amz-Date in the future",
        &future,
        b"x".to_vec(),
        403,
        "AccessDenied",
        "future",
    )
    .await;

    let old = presigned(
        "PUT",
        &url("old"),
        now - Duration::from_secs(120),
        Duration::from_secs(60),
    );
    refused(
        &h,
        "expired",
        &old,
        b"x".to_vec(),
        403,
        "AccessDenied",
        "old",
    )
    .await;

    let epoch = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let v2_ok = presigned_v2("GET", &h.endpoint(), "/bkt/fine", epoch(now) + 60);
    let (st, _, body) = send(&v2_ok, vec![]).await;
    assert_eq!((st, body.as_str()), (200, "fine"));
    let v2_old = presigned_v2("PUT", &h.endpoint(), "/bkt/v2old", epoch(now) - 1);
    refused(
        &h,
        "SigV2 presigned past Expires",
        &v2_old,
        b"x".to_vec(),
        403,
        "AccessDenied",
        "v2old",
    )
    .await;

    // Both a header and a presigned query: S3 allows one mechanism only.
    let mut both = presigned("PUT", &url("both"), now, Duration::from_secs(60));
    both.headers
        .push(("authorization".into(), format!("AWS {ROOT_KEY}:AAAA")));
    refused(
        &h,
        "two mechanisms",
        &both,
        b"x".to_vec(),
        400,
        "InvalidArgument",
        "both",
    )
    .await;

    let records = h.audit(8).await;
    assert!(
        records
            .iter()
            .any(|r| r["auth"]["kind"] == "presigned" && r["auth"]["signature_version"] == "AWS"),
        "{records:?}"
    );
    for r in &records {
        let line = r.to_string();
        assert!(
            !line.contains("Signature=") && !line.contains("X-Amz-Signature"),
            "{line}"
        );
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn sigv2_can_be_switched_off() {
    let h = setup("[auth]\nsigv2 = false\n").await;
    let now = SystemTime::now();
    let epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let put = presigned_v2("PUT", &h.endpoint(), "/bkt/off", epoch + 60);
    refused(
        &h,
        "SigV2 presigned while off",
        &put,
        b"x".to_vec(),
        400,
        "InvalidRequest",
        "off",
    )
    .await;

    let date = httpdate::fmt_http_date(now);
    let sts = format!("PUT\n\n\n{date}\n/bkt/off2");
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        s3warden::auth::sigv2::sign(ROOT_SECRET, &sts),
    );
    let header = Signed {
        method: "PUT".into(),
        url: format!("{}/bkt/off2", h.endpoint()),
        headers: vec![
            ("date".into(), date),
            ("authorization".into(), format!("AWS {ROOT_KEY}:{sig}")),
        ],
    };
    refused(
        &h,
        "SigV2 header while off",
        &header,
        b"x".to_vec(),
        400,
        "InvalidRequest",
        "off2",
    )
    .await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn presigned_head_delete_and_upload_part() {
    let h = setup("").await;
    let now = SystemTime::now();
    let url = |k: &str| format!("{}/bkt/{k}", h.endpoint());
    let minute = Duration::from_secs(60);
    h.root()
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let (st, headers, _) = send(&presigned("HEAD", &url("k"), now, minute), vec![]).await;
    assert_eq!(
        (st, headers["content-length"].to_str().unwrap()),
        (200, "5")
    );
    let up = h
        .root()
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part_url = format!(
        "{}?partNumber=1&uploadId={}",
        url("mp"),
        s3warden::auth::canonical::uri_encode(id, false)
    );
    let (st, headers, text) = send(
        &presigned("PUT", &part_url, now, minute),
        b"part one".to_vec(),
    )
    .await;
    assert_eq!(st, 200, "{text}");
    let etag = headers["etag"].to_str().unwrap().to_string();
    h.root()
        .complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(etag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = h
        .root()
        .get_object()
        .bucket("bkt")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().to_vec(), b"part one");
    let (st, _, text) = send(&presigned("DELETE", &url("k"), now, minute), vec![]).await;
    assert_eq!(st, 204, "{text}");
    assert!(
        h.root()
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .is_err()
    );
    h.server.shutdown().await;
}

/// A user whose policy lets it read only through a presigned SigV4 URL
/// signed less than ten minutes ago: the condition keys authentication fills
/// (`s3:authType`, `s3:signatureversion`, `s3:signatureAge` in milliseconds).
const CAROL: &str = r#"
[[users]]
name = "carol"
access_keys = [{ access_key_id = "CAROLKEYFORTESTS0001", secret_access_key = "carol-secret-for-tests-00000000000000000" }]
policies = [{ name = "presigned-only", document = '''{"Version": "2012-10-17", "Statement": [
  {"Sid": "FreshPresignedV4", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*",
   "Condition": {"StringEquals": {"s3:authType": "REST-QUERY-STRING", "s3:signatureversion": "AWS4-HMAC-SHA256"},
                 "NumericLessThan": {"s3:signatureAge": "600000"}}}]}''' }]
"#;

#[tokio::test]
async fn policies_see_how_a_request_was_signed() {
    let h = setup(CAROL).await;
    h.root()
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let now = SystemTime::now();
    let carol = |at: SystemTime| {
        let id = aws_credential_types::Credentials::new(
            "CAROLKEYFORTESTS0001",
            "carol-secret-for-tests-00000000000000000",
            None,
            None,
            "t",
        )
        .into();
        presigned_as(
            id,
            "GET",
            &format!("{}/bkt/k", h.endpoint()),
            at,
            Duration::from_secs(3600),
        )
    };
    let (st, _, body) = send(&carol(now), vec![]).await;
    assert_eq!((st, body.as_str()), (200, "hello"));
    // Still within its own hour, but signed twenty minutes ago: too old for the policy.
    let (st, _, body) = send(&carol(now - Duration::from_secs(1200)), vec![]).await;
    assert_eq!((st, xml_code(&body).as_str()), (403, "AccessDenied"));
    // A SigV2 presigned URL is not what the policy allows.
    let expires = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let sts = format!("GET\n\n\n{expires}\n/bkt/k");
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        s3warden::auth::sigv2::sign("carol-secret-for-tests-00000000000000000", &sts),
    );
    let v2 = Signed {
        method: "GET".into(),
        url: format!(
            "{}/bkt/k?AWSAccessKeyId=CAROLKEYFORTESTS0001&Expires={expires}&Signature={}",
            h.endpoint(),
            s3warden::auth::canonical::uri_encode(&sig, false)
        ),
        headers: vec![],
    };
    let (st, _, body) = send(&v2, vec![]).await;
    assert_eq!((st, xml_code(&body).as_str()), (403, "AccessDenied"));
    // Header authentication is not what the policy allows.
    let header = h
        .client(
            "CAROLKEYFORTESTS0001",
            "carol-secret-for-tests-00000000000000000",
        )
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&header), "AccessDenied");
    h.server.shutdown().await;
}

/// A user whose policy reads every request-wide condition key a header-signed
/// request over plain HTTP has: the proxy works out only the keys the
/// deciding policies read, and these must all be there, with their values.
const DAVE: &str = r#"
[[users]]
name = "dave"
access_keys = [{ access_key_id = "DAVEKEYFORTESTS00001", secret_access_key = "dave-secret-for-tests-000000000000000000" }]
policies = [{ name = "every-key", document = '''{"Version": "2012-10-17", "Statement": [
  {"Sid": "EveryKey", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/${aws:username}/*",
   "Condition": {
     "IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
     "Bool": {"aws:SecureTransport": "false"},
     "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
     "NumericGreaterThan": {"aws:EpochTime": "1577836800", "s3:signatureAge": "-1"},
     "StringLike": {"aws:UserAgent": "*aws-sdk-rust*", "aws:userid": "AIDA*"},
     "StringEquals": {
       "aws:RequestedRegion": "us-east-1", "s3:ResourceAccount": "000000000000",
       "s3:authType": "REST-HEADER", "s3:signatureversion": "AWS4-HMAC-SHA256",
       "aws:PrincipalType": "User", "aws:PrincipalAccount": "000000000000",
       "aws:PrincipalArn": "arn:aws:iam::000000000000:user/dave"},
     "Null": {"s3:x-amz-content-sha256": "false", "aws:Referer": "true"}}}]}''' }]
"#;

#[tokio::test]
async fn a_policy_reading_every_request_key_finds_each_in_the_context() {
    let h = setup(DAVE).await;
    for key in ["dave/k", "eve/k"] {
        h.root()
            .put_object()
            .bucket("bkt")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"hello"))
            .send()
            .await
            .unwrap();
    }
    let dave = h.client(
        "DAVEKEYFORTESTS00001",
        "dave-secret-for-tests-000000000000000000",
    );
    let got = dave.get_object().bucket("bkt").key("dave/k").send().await;
    let body = got.expect("every condition holds").body.collect().await;
    assert_eq!(body.unwrap().into_bytes().as_ref(), b"hello");
    let other = dave.get_object().bucket("bkt").key("eve/k").send().await;
    assert_eq!(error_code(&other.unwrap_err()), "AccessDenied");
    h.server.shutdown().await;
}
