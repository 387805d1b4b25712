//! Buckets and single objects: lifecycle and errors, content headers and metadata, ranges and
//! conditional requests, deletes, copies and tags.

use super::*;

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
        failure(put_req(&c, "alpha", "k", b"x").send().await).0,
        "NoSuchBucket"
    );
    store.shutdown().await;
}

#[tokio::test]
async fn put_get_head_with_headers_and_metadata() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("bkt").await;

    let body = b"hello, embedded world".to_vec();
    let out = put_req(&c, "bkt", "docs/hello.txt", &body)
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

    let got = get_req(&c, "bkt", "docs/hello.txt")
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
    assert_eq!(body_of(got).await.as_slice(), body.as_slice());

    let head = head_req(&c, "bkt", "docs/hello.txt")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(head.e_tag(), out.e_tag());

    assert_eq!(
        failure(get_req(&c, "bkt", "missing").send().await),
        ("NoSuchKey".to_owned(), 404)
    );
    assert_eq!(failure(head_req(&c, "bkt", "missing").send().await).1, 404);
    assert_eq!(
        failure(get_req(&c, "nope", "k").send().await),
        ("NoSuchBucket".to_owned(), 404)
    );

    // Overwrite replaces data and metadata; an empty object is fine.
    put(&c, "bkt", "docs/hello.txt", b"").await;
    let head = head_req(&c, "bkt", "docs/hello.txt")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(0));
    assert!(head.metadata().is_none_or(|m| m.is_empty()));
    assert_eq!(get(&c, "bkt", "docs/hello.txt").await, b"");

    // User metadata is limited to 2 KB.
    let big = "x".repeat(2100);
    let result = put_req(&c, "bkt", "big-meta", b"x")
        .metadata("m", big)
        .send()
        .await;
    assert_eq!(failure(result), ("MetadataTooLarge".to_owned(), 400));
    store.shutdown().await;
}

#[tokio::test]
async fn ranges_and_conditional_reads() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("reads").await;
    let body = pattern(1000, 2);
    let etag = put(&c, "reads", "obj", &body).await;

    for (range, content_range, expected) in [
        ("bytes=10-19", "bytes 10-19/1000", 10..20),
        ("bytes=-5", "bytes 995-999/1000", 995..1000),
        ("bytes=990-5000", "bytes 990-999/1000", 990..1000),
    ] {
        let r = get_req(&c, "reads", "obj")
            .range(range)
            .send()
            .await
            .expect(range);
        assert_eq!(r.content_range(), Some(content_range));
        assert_eq!(r.content_length(), Some(expected.len() as i64));
        assert_eq!(body_of(r).await.as_slice(), &body[expected]);
    }
    let bad = get_req(&c, "reads", "obj")
        .range("bytes=1000-")
        .send()
        .await;
    assert_eq!(failure(bad), ("InvalidRange".to_owned(), 416));

    let other = "\"0123456789abcdef0123456789abcdef\"";
    let past = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000_000);
    let future = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    let obj = || get_req(&c, "reads", "obj");
    let cases = [
        ("If-Match matching", obj().if_match(&etag), 200),
        ("If-Match other", obj().if_match(other), 412),
        ("If-None-Match matching", obj().if_none_match(&etag), 304),
        ("If-None-Match other", obj().if_none_match(other), 200),
        (
            "If-Modified-Since future",
            obj().if_modified_since(future),
            304,
        ),
        ("If-Modified-Since past", obj().if_modified_since(past), 200),
        (
            "If-Unmodified-Since past",
            obj().if_unmodified_since(past),
            412,
        ),
        // A matching If-Match wins over a failing If-Unmodified-Since.
        (
            "If-Match and stale If-Unmodified-Since",
            obj().if_match(&etag).if_unmodified_since(past),
            200,
        ),
    ];
    for (label, request, expected) in cases {
        assert_eq!(status(request.send().await), expected, "{label}");
    }
    let head = head_req(&c, "reads", "obj")
        .if_none_match(&etag)
        .send()
        .await;
    assert_eq!(status(head), 304);

    // Conditional writes: If-None-Match: * refuses to overwrite.
    let exists = put_req(&c, "reads", "obj", b"x")
        .if_none_match("*")
        .send()
        .await;
    assert_eq!(failure(exists), ("PreconditionFailed".to_owned(), 412));
    put_req(&c, "reads", "fresh", b"x")
        .if_none_match("*")
        .send()
        .await
        .expect("create-only put");
    assert_eq!(get(&c, "reads", "obj").await, body);
    store.shutdown().await;
}

#[tokio::test]
async fn deletes_single_and_multiple() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("dels").await;
    for k in ["a", "b", "c", "d"] {
        put(&c, "dels", k, k.as_bytes()).await;
    }
    // Deleting a missing key succeeds (204), like S3.
    c.delete_object()
        .bucket("dels")
        .key("never-there")
        .send()
        .await
        .expect("delete missing");
    c.delete_object()
        .bucket("dels")
        .key("a")
        .send()
        .await
        .expect("delete");
    assert_eq!(
        failure(get_req(&c, "dels", "a").send().await).0,
        "NoSuchKey"
    );
    assert_eq!(
        failure(c.delete_object().bucket("nobucket").key("a").send().await),
        ("NoSuchBucket".to_owned(), 404)
    );

    let ids = |keys: &[&str]| -> Delete {
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().expect("id"))
            .collect();
        Delete::builder()
            .set_objects(Some(objects))
            .build()
            .expect("delete")
    };
    let out = c
        .delete_objects()
        .bucket("dels")
        .delete(ids(&["b", "missing"]))
        .send()
        .await
        .expect("multi delete");
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort_unstable();
    assert_eq!(deleted, ["b", "missing"]);
    assert!(out.errors().is_empty());

    let mut quiet = ids(&["c", "d"]);
    quiet.quiet = Some(true);
    let out = c
        .delete_objects()
        .bucket("dels")
        .delete(quiet)
        .send()
        .await
        .expect("quiet delete");
    assert!(out.deleted().is_empty(), "quiet mode reports only errors");
    let left = c
        .list_objects_v2()
        .bucket("dels")
        .send()
        .await
        .expect("list");
    assert_eq!(left.key_count(), Some(0));
    store.shutdown().await;
}

#[tokio::test]
async fn copy_object_directives_and_errors() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("src-b").await;
    c.create_bucket()
        .bucket("dst-b")
        .send()
        .await
        .expect("create");
    let body = pattern(5000, 3);
    put_req(&c, "src-b", "a b/src+1", &body)
        .content_type("image/png")
        .metadata("color", "blue")
        .tagging("t=1")
        .send()
        .await
        .expect("put");

    // COPY (the default) keeps headers, metadata and tags.
    let out = copy_req(&c, "dst-b", "copy", "src-b/a%20b/src%2B1")
        .send()
        .await
        .expect("copy");
    let result = out.copy_object_result().expect("result");
    assert_eq!(result.e_tag(), Some(quoted(&md5_hex(&body)).as_str()));
    assert!(result.last_modified().is_some());
    let head = head_req(&c, "dst-b", "copy").send().await.expect("head");
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(get(&c, "dst-b", "copy").await, body);
    let tags = tags_of(&c, "dst-b", "copy").await;
    assert_eq!(tags.len(), 1);

    // REPLACE takes them from the request.
    copy_req(&c, "dst-b", "replaced", "src-b/a%20b/src%2B1")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .metadata("color", "red")
        .send()
        .await
        .expect("copy replace");
    let head = head_req(&c, "dst-b", "replaced")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("red")
    );

    // Copying an object onto itself needs REPLACE.
    let same = copy_req(&c, "src-b", "a b/src+1", "src-b/a%20b/src%2B1")
        .send()
        .await;
    assert_eq!(failure(same), ("InvalidRequest".to_owned(), 400));
    copy_req(&c, "src-b", "a b/src+1", "src-b/a%20b/src%2B1")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("color", "green")
        .send()
        .await
        .expect("self copy with REPLACE");
    assert_eq!(get(&c, "src-b", "a b/src+1").await, body);

    let missing = copy_req(&c, "dst-b", "x", "src-b/missing").send().await;
    assert_eq!(failure(missing), ("NoSuchKey".to_owned(), 404));
    let no_bucket = copy_req(&c, "dst-b", "x", "nobucket/k").send().await;
    assert_eq!(failure(no_bucket), ("NoSuchBucket".to_owned(), 404));
    let cond = copy_req(&c, "dst-b", "x", "src-b/a%20b/src%2B1")
        .copy_source_if_match("\"00000000000000000000000000000000\"")
        .send()
        .await;
    assert_eq!(failure(cond), ("PreconditionFailed".to_owned(), 412));
    store.shutdown().await;
}

#[tokio::test]
async fn object_tagging() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("tags").await;
    put_req(&c, "tags", "k", b"x")
        .tagging("a=1&b=two%20words")
        .send()
        .await
        .expect("put");
    let got = tags_of(&c, "tags", "k").await;
    assert_eq!(
        got,
        [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "two words".to_owned())
        ]
    );
    let obj = get_req(&c, "tags", "k").send().await.expect("get");
    assert_eq!(obj.tag_count(), Some(2));

    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().expect("tag");
    let set = Tagging::builder()
        .tag_set(tag("only", "one"))
        .build()
        .expect("tagging");
    c.put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(set)
        .send()
        .await
        .expect("put tags");
    let got = tags_of(&c, "tags", "k").await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        get(&c, "tags", "k").await,
        b"x",
        "tagging leaves the data alone"
    );

    let eleven = Tagging::builder()
        .set_tag_set(Some((0..11).map(|i| tag(&format!("k{i}"), "v")).collect()))
        .build()
        .expect("tagging");
    assert_eq!(
        failure(
            c.put_object_tagging()
                .bucket("tags")
                .key("k")
                .tagging(eleven)
                .send()
                .await
        ),
        ("InvalidTag".to_owned(), 400)
    );
    c.delete_object_tagging()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .expect("delete tags");
    let got = tags_of(&c, "tags", "k").await;
    assert!(got.is_empty());
    assert_eq!(
        failure(
            c.get_object_tagging()
                .bucket("tags")
                .key("missing")
                .send()
                .await
        ),
        ("NoSuchKey".to_owned(), 404)
    );
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overwrites_and_reads_see_whole_objects() {
    let Env { dir, store, c } = env("race").await;
    let bodies: Vec<Vec<u8>> = (0..6)
        .map(|i| pattern(200_000 + i * 1000, 60 + i as u64))
        .collect();
    put(&c, "race", "hot", &bodies[0]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().cloned().enumerate() {
        let c = c.clone();
        tasks.spawn(async move {
            for _ in 0..4 {
                put(&c, "race", "hot", &body).await;
            }
            i
        });
    }
    for _ in 0..3 {
        let (c, bodies) = (c.clone(), bodies.clone());
        tasks.spawn(async move {
            for _ in 0..15 {
                let out = get_req(&c, "race", "hot")
                    .send()
                    .await
                    .expect("get during overwrites");
                let etag = out.e_tag().map(str::to_owned);
                let data = body_of(out).await;
                assert!(
                    bodies.contains(&data),
                    "a read saw a mixed or partial object"
                );
                assert_eq!(
                    etag,
                    Some(quoted(&md5_hex(&data))),
                    "ETag and data disagree"
                );
            }
            usize::MAX
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    assert!(bodies.contains(&get(&c, "race", "hot").await));
    store.shutdown().await;

    // Exactly one sidecar and one data file remain for the key: superseded data was removed.
    let fan = std::fs::read_dir(dir.path().join("buckets/race/objects"))
        .expect("objects dir")
        .map(|e| e.expect("entry").path())
        .collect::<Vec<_>>();
    let files: usize = fan
        .iter()
        .map(|d| std::fs::read_dir(d).expect("fan dir").count())
        .sum();
    assert_eq!(files, 2);
}
