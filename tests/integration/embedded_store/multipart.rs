//! Multipart uploads: a >16 MiB upload, S3's part rules and ETag, UploadPartCopy, abort and
//! listing, and composite checksums.

use super::*;

#[tokio::test]
async fn multipart_upload_over_16_mib() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("mpu").await;
    let (p1, p2, p3) = (
        pattern(6 * MIB, 11),
        pattern(6 * MIB, 12),
        pattern(5 * MIB + 123, 13),
    );

    let created = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big/file.bin")
        .content_type("application/x-test")
        .metadata("origin", "multipart")
        .send()
        .await
        .expect("create upload");
    let id = created.upload_id().expect("upload id").to_owned();
    let parts = vec![
        upload_part(&c, "mpu", "big/file.bin", &id, 1, &p1).await,
        upload_part(&c, "mpu", "big/file.bin", &id, 2, &p2).await,
        upload_part(&c, "mpu", "big/file.bin", &id, 3, &p3).await,
    ];

    let uploads = c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .expect("list uploads");
    let listed: Vec<(&str, &str)> = uploads
        .uploads()
        .iter()
        .map(|u| (u.key().unwrap_or(""), u.upload_id().unwrap_or("")))
        .collect();
    assert_eq!(listed, [("big/file.bin", id.as_str())]);
    let listed_parts = c
        .list_parts()
        .bucket("mpu")
        .key("big/file.bin")
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    let sizes: Vec<i64> = listed_parts
        .parts()
        .iter()
        .filter_map(|p| p.size())
        .collect();
    assert_eq!(
        sizes,
        [6 * MIB as i64, 6 * MIB as i64, (5 * MIB + 123) as i64]
    );
    let page = c
        .list_parts()
        .bucket("mpu")
        .key("big/file.bin")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .expect("page");
    assert_eq!(
        (
            page.parts().len(),
            page.is_truncated(),
            page.next_part_number_marker()
        ),
        (2, Some(true), Some("2"))
    );

    // Part validation happens before anything is written.
    let mut wrong_etag = parts.clone();
    wrong_etag[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    let r = complete_req(&c, "mpu", "big/file.bin", &id, &wrong_etag)
        .send()
        .await;
    assert_eq!(failure(r), ("InvalidPart".to_owned(), 400));
    let unknown = [
        parts[0].clone(),
        CompletedPart::builder()
            .part_number(7)
            .e_tag("\"abc\"")
            .build(),
    ];
    let r = complete_req(&c, "mpu", "big/file.bin", &id, &unknown)
        .send()
        .await;
    assert_eq!(failure(r), ("InvalidPart".to_owned(), 400));
    let reversed = [parts[1].clone(), parts[0].clone()];
    let r = complete_req(&c, "mpu", "big/file.bin", &id, &reversed)
        .send()
        .await;
    assert_eq!(failure(r), ("InvalidPartOrder".to_owned(), 400));

    let done = complete_req(&c, "mpu", "big/file.bin", &id, &parts)
        .send()
        .await
        .expect("complete");
    let expected_etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));

    let whole = [p1.as_slice(), p2.as_slice(), p3.as_slice()].concat();
    let got = get_req(&c, "mpu", "big/file.bin")
        .send()
        .await
        .expect("get");
    assert_eq!(got.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("multipart")
    );
    assert_eq!(got.content_length(), Some(whole.len() as i64));
    let data = body_of(got).await;
    assert!(data == whole, "assembled object differs");
    let part2 = get_req(&c, "mpu", "big/file.bin")
        .part_number(2)
        .send()
        .await
        .expect("part 2");
    assert_eq!(
        (part2.parts_count(), part2.content_length()),
        (Some(3), Some(6 * MIB as i64))
    );
    assert!(
        part2
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .as_ref()
            == p2.as_slice()
    );

    // The upload is gone once completed.
    let gone = c
        .list_parts()
        .bucket("mpu")
        .key("big/file.bin")
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(failure(gone), ("NoSuchUpload".to_owned(), 404));
    assert!(
        c.list_multipart_uploads()
            .bucket("mpu")
            .send()
            .await
            .expect("list")
            .uploads()
            .is_empty()
    );

    // UploadPartCopy with a range, then a small last part.
    let created = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("copied")
        .send()
        .await
        .expect("create");
    let id2 = created.upload_id().expect("upload id").to_owned();
    let start = 3 * MIB;
    let copied = c
        .upload_part_copy()
        .bucket("mpu")
        .key("copied")
        .upload_id(&id2)
        .part_number(1)
        .copy_source("mpu/big/file.bin")
        .copy_source_range(format!("bytes={start}-{}", start + 5 * MIB - 1))
        .send()
        .await
        .expect("upload part copy");
    let range = &whole[start..start + 5 * MIB];
    let etag1 = copied
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .map(str::to_owned);
    assert_eq!(etag1.as_deref(), Some(quoted(&md5_hex(range)).as_str()));
    let bad_range = c
        .upload_part_copy()
        .bucket("mpu")
        .key("copied")
        .upload_id(&id2)
        .part_number(2)
        .copy_source("mpu/big/file.bin")
        .copy_source_range(format!("bytes=0-{}", whole.len()))
        .send()
        .await;
    assert_eq!(failure(bad_range).0, "InvalidRange");
    let tail = upload_part(&c, "mpu", "copied", &id2, 2, b"tail").await;
    let first = CompletedPart::builder()
        .part_number(1)
        .set_e_tag(etag1)
        .build();
    complete_req(&c, "mpu", "copied", &id2, &[first, tail])
        .send()
        .await
        .expect("complete copy");
    assert!(get(&c, "mpu", "copied").await == [range, b"tail"].concat());
    store.shutdown().await;
}

#[tokio::test]
async fn multipart_rules_and_abort() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("mpu2").await;

    let id = create_upload(&c, "mpu2", "small").await;
    let parts = [
        upload_part(&c, "mpu2", "small", &id, 1, b"first part, far below 5 MiB").await,
        upload_part(&c, "mpu2", "small", &id, 2, b"last").await,
    ];
    let r = complete_req(&c, "mpu2", "small", &id, &parts).send().await;
    assert_eq!(failure(r), ("EntityTooSmall".to_owned(), 400));
    // A single small part is fine: the last part may be small.
    let single = [parts[1].clone()];
    let done = complete_req(&c, "mpu2", "small", &id, &single)
        .send()
        .await
        .expect("complete");
    assert_eq!(done.e_tag(), Some(multipart_etag(&[b"last"]).as_str()));
    assert_eq!(get(&c, "mpu2", "small").await, b"last");

    // A conditional completion that fails is a plain 412, and the upload stays usable.
    let again = create_upload(&c, "mpu2", "small").await;
    let part = upload_part(&c, "mpu2", "small", &again, 1, b"other").await;
    let r = complete_req(&c, "mpu2", "small", &again, std::slice::from_ref(&part))
        .if_none_match("*")
        .send()
        .await;
    assert_eq!(failure(r), ("PreconditionFailed".to_owned(), 412));
    complete_req(&c, "mpu2", "small", &again, &[part])
        .send()
        .await
        .expect("unconditional completion");
    assert_eq!(get(&c, "mpu2", "small").await, b"other");

    let r = c
        .upload_part()
        .bucket("mpu2")
        .key("k")
        .upload_id("0123456789abcdef0123456789abcdef")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(failure(r), ("NoSuchUpload".to_owned(), 404));
    let r = c
        .upload_part()
        .bucket("mpu2")
        .key("k")
        .upload_id("../../escape")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(failure(r), ("NoSuchUpload".to_owned(), 404));

    let id = create_upload(&c, "mpu2", "aborted").await;
    let r = c
        .upload_part()
        .bucket("mpu2")
        .key("aborted")
        .upload_id(&id)
        .part_number(10_001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(failure(r), ("InvalidArgument".to_owned(), 400));
    upload_part(&c, "mpu2", "aborted", &id, 1, b"data").await;
    // An upload id belongs to its key.
    let r = c
        .list_parts()
        .bucket("mpu2")
        .key("other")
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(failure(r), ("NoSuchUpload".to_owned(), 404));
    c.abort_multipart_upload()
        .bucket("mpu2")
        .key("aborted")
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
    let r = c
        .list_parts()
        .bucket("mpu2")
        .key("aborted")
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(failure(r), ("NoSuchUpload".to_owned(), 404));
    let r = c
        .abort_multipart_upload()
        .bucket("mpu2")
        .key("aborted")
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(failure(r), ("NoSuchUpload".to_owned(), 404));
    assert_eq!(failure(head_req(&c, "mpu2", "aborted").send().await).1, 404);

    // Several uploads list in key order, with prefixes and paging.
    for key in ["logs/a", "logs/b", "other"] {
        c.create_multipart_upload()
            .bucket("mpu2")
            .key(key)
            .send()
            .await
            .expect("create");
    }
    let top = c
        .list_multipart_uploads()
        .bucket("mpu2")
        .delimiter("/")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = top.uploads().iter().filter_map(|u| u.key()).collect();
    let prefixes: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!((keys, prefixes), (vec!["other"], vec!["logs/"]));
    let first = c
        .list_multipart_uploads()
        .bucket("mpu2")
        .max_uploads(2)
        .send()
        .await
        .expect("page");
    assert_eq!(first.is_truncated(), Some(true));
    let rest = c
        .list_multipart_uploads()
        .bucket("mpu2")
        .set_key_marker(first.next_key_marker().map(str::to_owned))
        .set_upload_id_marker(first.next_upload_id_marker().map(str::to_owned))
        .send()
        .await
        .expect("next page");
    let all: Vec<&str> = first
        .uploads()
        .iter()
        .chain(rest.uploads())
        .filter_map(|u| u.key())
        .collect();
    assert_eq!(all, ["logs/a", "logs/b", "other"]);
    store.shutdown().await;
}

#[tokio::test]
async fn multipart_composite_checksums() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("mpu3").await;
    let created = c
        .create_multipart_upload()
        .bucket("mpu3")
        .key("summed")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .expect("create");
    let id = created.upload_id().expect("id").to_owned();
    let (p1, p2) = (pattern(5 * MIB, 21), pattern(1000, 22));
    let mut parts = Vec::new();
    let mut digests = Vec::new();
    for (n, data) in [(1, &p1), (2, &p2)] {
        let out = c
            .upload_part()
            .bucket("mpu3")
            .key("summed")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("part");
        let digest = sha2::Sha256::digest(data.as_slice()).to_vec();
        assert_eq!(out.checksum_sha256(), Some(b64(&digest).as_str()));
        digests.extend_from_slice(&digest);
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
                .build(),
        );
    }
    // A part sent with another algorithm than the upload's is refused.
    let r = c
        .upload_part()
        .bucket("mpu3")
        .key("summed")
        .upload_id(&id)
        .part_number(3)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(failure(r), ("InvalidRequest".to_owned(), 400));
    let done = complete_req(&c, "mpu3", "summed", &id, &parts)
        .send()
        .await
        .expect("complete");
    let composite = format!("{}-2", b64(&sha2::Sha256::digest(&digests)));
    assert_eq!(done.checksum_sha256(), Some(composite.as_str()));
    let head = head_req(&c, "mpu3", "summed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(head.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(head.checksum_type().map(|t| t.as_str()), Some("COMPOSITE"));
    store.shutdown().await;
}
