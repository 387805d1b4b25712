//! Integrity and access: checksums, uploads that break midway (nothing committed), aws-chunked
//! bodies, and which signatures are accepted.

use super::*;

#[tokio::test]
async fn checksums_are_verified_stored_and_returned() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("sums").await;
    let body = pattern(100_000, 1);

    // The SDK computes each algorithm; the store verifies, keeps and returns it.
    let algorithms = [
        (
            ChecksumAlgorithm::Crc32,
            b64(&crc32fast::hash(&body).to_be_bytes()),
        ),
        (
            ChecksumAlgorithm::Crc32C,
            b64(&crc32c::crc32c(&body).to_be_bytes()),
        ),
        (ChecksumAlgorithm::Crc64Nvme, b64(&crc64nvme(&body))),
        (ChecksumAlgorithm::Sha1, b64(&sha1::Sha1::digest(&body))),
        (ChecksumAlgorithm::Sha256, b64(&sha2::Sha256::digest(&body))),
    ];
    for (algorithm, expected) in &algorithms {
        let key = format!("obj-{}", algorithm.as_str());
        put_req(&c, "sums", &key, &body)
            .checksum_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put with {algorithm:?}: {e:?}"));
        let head = head_req(&c, "sums", &key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("head");
        let got = match algorithm {
            ChecksumAlgorithm::Crc32 => head.checksum_crc32(),
            ChecksumAlgorithm::Crc32C => head.checksum_crc32_c(),
            ChecksumAlgorithm::Crc64Nvme => head.checksum_crc64_nvme(),
            ChecksumAlgorithm::Sha1 => head.checksum_sha1(),
            _ => head.checksum_sha256(),
        };
        assert_eq!(got, Some(expected.as_str()), "{algorithm:?}");
        // Without checksum mode, no checksum is returned.
        let plain = head_req(&c, "sums", &key).send().await.expect("head");
        assert!(
            plain.checksum_crc32().is_none()
                && plain.checksum_sha256().is_none()
                && plain.checksum_crc64_nvme().is_none()
        );
    }

    // No client checksum (the SDK sends CRC32 unless told otherwise): S3's default CRC64NVME,
    // which the SDK validates on GET.
    let plain = aws_sdk_s3::Client::from_conf(
        c.config()
            .to_builder()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build(),
    );
    put(&plain, "sums", "default", &body).await;
    let got = get_req(&c, "sums", "default")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.checksum_crc64_nvme(),
        Some(b64(&crc64nvme(&body)).as_str())
    );
    assert_eq!(body_of(got).await.as_slice(), body.as_slice());
    // A range is not the whole object: no checksum.
    let ranged = get_req(&c, "sums", "default")
        .range("bytes=0-9")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("ranged get");
    assert!(ranged.checksum_crc64_nvme().is_none());

    // Wrong values are BadDigest, and nothing is stored.
    let wrong = put_req(&c, "sums", "bad", &body)
        .checksum_crc32_c(b64(&[1, 2, 3, 4]))
        .send()
        .await;
    assert_eq!(failure(wrong), ("BadDigest".to_owned(), 400));
    let wrong = put_req(&c, "sums", "bad", &body)
        .content_md5(b64(&Md5::digest(b"something else")))
        .send()
        .await;
    assert_eq!(failure(wrong), ("BadDigest".to_owned(), 400));
    let malformed = put_req(&c, "sums", "bad", b"x")
        .content_md5("nope")
        .send()
        .await;
    assert_eq!(failure(malformed), ("InvalidDigest".to_owned(), 400));
    assert_eq!(failure(head_req(&c, "sums", "bad").send().await).1, 404);

    let right = put_req(&c, "sums", "md5", &body)
        .content_md5(b64(&Md5::digest(&body)))
        .send()
        .await
        .expect("correct Content-MD5");
    assert_eq!(right.e_tag(), Some(quoted(&md5_hex(&body)).as_str()));
    store.shutdown().await;
}

fn crc64nvme(data: &[u8]) -> [u8; 8] {
    let mut d = crc64fast_nvme::Digest::new();
    d.write(data);
    d.sum64().to_be_bytes()
}

#[tokio::test]
async fn broken_uploads_commit_nothing() {
    let Env { dir, store, c } = env("broken").await;
    put(&c, "broken", "existing", b"old contents").await;

    // 1. The connection closes after half of the declared body (unsigned payload).
    let body = pattern(100_000, 31);
    for key in ["new", "existing"] {
        let headers = sign_headers(
            &store,
            "PUT",
            &format!("/broken/{key}"),
            &[("content-length", body.len().to_string())],
            "UNSIGNED-PAYLOAD",
        );
        let answer = raw_request(
            &store,
            "PUT",
            &format!("/broken/{key}"),
            &headers,
            &body[..50_000],
            true,
        )
        .await;
        assert!(
            answer.as_ref().is_none_or(|(status, _)| *status >= 400),
            "{answer:?}"
        );
    }
    assert_no_leftovers(dir.path()).await;
    assert_eq!(failure(head_req(&c, "broken", "new").send().await).1, 404);
    assert_eq!(get(&c, "broken", "existing").await, b"old contents");

    // 2. A signed payload hash that does not match the body: XAmzContentSHA256Mismatch.
    let headers = sign_headers(
        &store,
        "PUT",
        "/broken/tampered",
        &[("content-length", body.len().to_string())],
        &sha256_hex(b"other"),
    );
    let (status, text) = raw_request(&store, "PUT", "/broken/tampered", &headers, &body, false)
        .await
        .expect("answer");
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("<Code>XAmzContentSHA256Mismatch</Code>"),
        "{text}"
    );
    assert_eq!(
        failure(head_req(&c, "broken", "tampered").send().await).1,
        404
    );
    // The same request with the right hash is stored.
    let headers = sign_headers(
        &store,
        "PUT",
        "/broken/tampered",
        &[("content-length", body.len().to_string())],
        &sha256_hex(&body),
    );
    let (status, text) = raw_request(&store, "PUT", "/broken/tampered", &headers, &body, false)
        .await
        .expect("answer");
    assert_eq!(status, 200, "{text}");

    // A bodiless request signed with the hash of something else is refused as well.
    let headers = sign_headers(
        &store,
        "GET",
        "/broken/tampered",
        &[],
        &sha256_hex(b"other"),
    );
    let (status, text) = raw_request(&store, "GET", "/broken/tampered", &headers, b"", false)
        .await
        .expect("answer");
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("<Code>XAmzContentSHA256Mismatch</Code>"),
        "{text}"
    );

    // 3. The SDK's body stream fails midway.
    let failing = ByteStream::from_body_1_x(FailingBody {
        chunks: vec![bytes::Bytes::from(vec![7u8; 64 * 1024]); 3],
    });
    let r = c
        .put_object()
        .bucket("broken")
        .key("existing")
        .content_length(1_000_000)
        .body(failing)
        .send()
        .await;
    assert!(r.is_err(), "a failing body must fail the upload");
    assert_eq!(get(&c, "broken", "existing").await, b"old contents");

    // 4. A part upload that breaks leaves the upload without that part.
    let id = create_upload(&c, "broken", "mp").await;
    let path = format!("/broken/mp?partNumber=1&uploadId={id}");
    let headers = sign_headers(
        &store,
        "PUT",
        &path,
        &[("content-length", body.len().to_string())],
        "UNSIGNED-PAYLOAD",
    );
    let _ = raw_request(&store, "PUT", &path, &headers, &body[..10], true).await;
    assert_no_leftovers(dir.path()).await;
    let parts = c
        .list_parts()
        .bucket("broken")
        .key("mp")
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    assert!(parts.parts().is_empty());

    // Nothing of it reappears after a restart either.
    store.shutdown().await;
    let store = start(dir.path()).await;
    let c = client(&store);
    let (keys, _) = list_all_v2(&c, "broken", "", None, 1000).await;
    assert_eq!(keys, ["existing", "tampered"]);
    assert_eq!(get(&c, "broken", "existing").await, b"old contents");
    assert_no_leftovers(dir.path()).await;
    store.shutdown().await;
}

/// An http-body that yields its chunks and then fails, like a client that dies mid-upload.
struct FailingBody {
    chunks: Vec<bytes::Bytes>,
}

impl http_body::Body for FailingBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(match self.chunks.pop() {
            Some(chunk) => Ok(http_body::Frame::data(chunk)),
            None => Err(std::io::Error::other("the source of the upload failed")),
        }))
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// An aws-chunked body with SigV4 chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
fn signed_chunks(chunks: &[&[u8]], headers: &[(String, String)], seed: &str) -> Vec<u8> {
    let amz_date = headers
        .iter()
        .find(|(k, _)| k == "x-amz-date")
        .map(|(_, v)| v.clone())
        .expect("x-amz-date");
    let date = &amz_date[..8];
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let key = [date, REGION, "s3", "aws4_request"]
        .iter()
        .fold(format!("AWS4{SK}").into_bytes(), |k, part| {
            hmac(&k, part.as_bytes())
        });
    let mut previous = seed.to_owned();
    let mut body = Vec::new();
    for chunk in chunks.iter().copied().chain([&b""[..]]) {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{}\n{}",
            sha256_hex(b""),
            sha256_hex(chunk)
        );
        previous = hex::encode(hmac(&key, to_sign.as_bytes()));
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
        );
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body
}

#[tokio::test]
async fn aws_chunked_bodies_are_decoded_and_verified() {
    let Env { dir, store, c } = env("chunks").await;
    let data = pattern(200_000, 41);
    let parts: Vec<&[u8]> = data.chunks(65_536).collect();

    // Signed chunks.
    let chunked_headers = |encoded_len: usize| {
        vec![
            ("content-encoding", "aws-chunked".to_owned()),
            ("x-amz-decoded-content-length", data.len().to_string()),
            ("content-length", encoded_len.to_string()),
        ]
    };
    let probe = signed_chunks(
        &parts,
        &[("x-amz-date".to_owned(), "20250101T000000Z".to_owned())],
        "0",
    );
    let (headers, seed) = sign_request(
        &store,
        "PUT",
        "/chunks/signed",
        &chunked_headers(probe.len()),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    );
    let body = signed_chunks(&parts, &headers, &seed);
    let (status, text) = raw_request(&store, "PUT", "/chunks/signed", &headers, &body, false)
        .await
        .expect("answer");
    assert_eq!(status, 200, "{text}");
    assert!(get(&c, "chunks", "signed").await == data);

    // A chunk whose signature does not verify is refused and nothing is stored.
    let (headers, seed) = sign_request(
        &store,
        "PUT",
        "/chunks/forged",
        &chunked_headers(probe.len()),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    );
    let mut body = signed_chunks(&parts, &headers, &seed);
    let at = body.len() / 2;
    body[at] ^= 0xff;
    let (status, text) = raw_request(&store, "PUT", "/chunks/forged", &headers, &body, false)
        .await
        .expect("answer");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert_eq!(
        failure(head_req(&c, "chunks", "forged").send().await).1,
        404
    );

    // Unsigned chunks with a checksum trailer, as the SDKs send by default.
    let crc = b64(&crc32fast::hash(&data).to_be_bytes());
    let trailer_body = |crc: &str| {
        let mut body = Vec::new();
        for chunk in &parts {
            body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").as_bytes());
        body
    };
    for (key, value, expected) in [
        ("trailer-ok", crc.clone(), 200),
        ("trailer-bad", b64(&[0, 0, 0, 0]), 400),
    ] {
        let body = trailer_body(&value);
        let mut extra = chunked_headers(body.len());
        extra.push(("x-amz-trailer", "x-amz-checksum-crc32".to_owned()));
        let path = format!("/chunks/{key}");
        let headers = sign_headers(
            &store,
            "PUT",
            &path,
            &extra,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        );
        let (status, text) = raw_request(&store, "PUT", &path, &headers, &body, false)
            .await
            .expect("answer");
        assert_eq!(status, expected, "{key}: {text}");
        if expected == 400 {
            assert!(text.contains("<Code>BadDigest</Code>"), "{text}");
        }
    }
    assert!(get(&c, "chunks", "trailer-ok").await == data);
    let head = head_req(&c, "chunks", "trailer-ok")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(head.checksum_crc32(), Some(crc.as_str()));
    assert_eq!(
        failure(head_req(&c, "chunks", "trailer-bad").send().await).1,
        404
    );
    assert_no_leftovers(dir.path()).await;
    store.shutdown().await;
}

#[tokio::test]
async fn only_sigv4_with_the_configured_key_and_region_is_accepted() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("auth").await;
    put(&c, "auth", "k", b"secret data").await;

    let wrong_secret = client_with(&store, AK, "not-the-secret", REGION);
    assert_eq!(
        failure(wrong_secret.list_buckets().send().await),
        ("SignatureDoesNotMatch".to_owned(), 403)
    );
    let unknown_key = client_with(&store, "AKIDUNKNOWN", SK, REGION);
    assert_eq!(
        failure(
            unknown_key
                .get_object()
                .bucket("auth")
                .key("k")
                .send()
                .await
        ),
        ("InvalidAccessKeyId".to_owned(), 403)
    );
    let wrong_region = client_with(&store, AK, SK, "eu-west-1");
    assert_eq!(
        failure(wrong_region.list_buckets().send().await),
        ("AuthorizationHeaderMalformed".to_owned(), 400)
    );

    // No signature at all.
    let (status, text) = raw_request(
        &store,
        "GET",
        "/auth/k",
        &[("host".to_owned(), store.local_addr().to_string())],
        b"",
        false,
    )
    .await
    .expect("answer");
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("<Code>AccessDenied</Code>") && !text.contains("secret data"),
        "{text}"
    );

    // A valid SigV2 signature with the right key is still refused: only SigV4 is accepted.
    use hmac::{KeyInit as _, Mac as _};
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SK.as_bytes()).expect("key");
    mac.update(format!("GET\n\n\n{date}\n/auth/k").as_bytes());
    let v2 = format!("AWS {AK}:{}", b64(&mac.finalize().into_bytes()));
    let headers = [
        ("host".to_owned(), store.local_addr().to_string()),
        ("date".to_owned(), date),
        ("authorization".to_owned(), v2),
    ];
    let (status, text) = raw_request(&store, "GET", "/auth/k", &headers, b"", false)
        .await
        .expect("answer");
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("<Code>AccessDenied</Code>") && !text.contains("secret data"),
        "{text}"
    );

    // Presigned SigV4 URLs are SigV4.
    let presigned = get_req(&c, "auth", "k")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(
                60,
            ))
            .expect("config"),
        )
        .await
        .expect("presign");
    let resp = reqwest::get(presigned.uri()).await.expect("presigned get");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.expect("body").as_ref(), b"secret data");

    // Every response carries S3's request ids.
    let (status, text) = raw_request(
        &store,
        "GET",
        "/",
        &sign_headers(&store, "GET", "/", &[], &sha256_hex(b"")),
        b"",
        false,
    )
    .await
    .expect("answer");
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("x-amz-request-id: ") && text.contains("x-amz-id-2: "),
        "{text}"
    );
    store.shutdown().await;
}
