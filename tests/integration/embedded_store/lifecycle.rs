//! Restart, the data directory lock, and start-up errors.

use super::*;

#[tokio::test]
async fn restart_keeps_everything_and_the_directory_is_locked() {
    let Env { dir, store, c } = env("keep").await;
    c.create_bucket()
        .bucket("empty-one")
        .send()
        .await
        .expect("create");
    for key in ODD_KEYS {
        put(&c, "keep", key, key.as_bytes()).await;
    }
    put_req(&c, "keep", "meta", b"a,b")
        .content_type("text/csv")
        .metadata("k", "v")
        .tagging("t=1")
        .send()
        .await
        .expect("put");
    let p1 = pattern(5 * MIB, 51);
    let id = create_upload(&c, "keep", "in-progress").await;
    let part1 = upload_part(&c, "keep", "in-progress", &id, 1, &p1).await;
    let before = list_all_v2(&c, "keep", "", None, 1000).await;
    let meta_before = head_req(&c, "keep", "meta").send().await.expect("head");

    // A second store on the same directory is refused while the first runs.
    match EmbeddedStore::start(config(dir.path())).await {
        Err(EmbeddedError::Locked { path }) => assert!(path.ends_with(".lock")),
        other => panic!("expected Locked, got {other:?}"),
    }

    store.shutdown().await;
    let store = start(dir.path()).await;
    let c = client(&store);
    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await
        .expect("buckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["empty-one", "keep"]);
    assert_eq!(list_all_v2(&c, "keep", "", None, 1000).await, before);
    for key in ODD_KEYS {
        assert_eq!(get(&c, "keep", key).await, key.as_bytes(), "{key:?}");
    }
    let meta = head_req(&c, "keep", "meta").send().await.expect("head");
    assert_eq!(meta.e_tag(), meta_before.e_tag());
    assert_eq!(meta.last_modified(), meta_before.last_modified());
    assert_eq!(meta.content_type(), Some("text/csv"));
    assert_eq!(meta.metadata(), meta_before.metadata());
    assert_eq!(tags_of(&c, "keep", "meta").await.len(), 1);

    // The multipart upload survives too and can be completed.
    let uploads = c
        .list_multipart_uploads()
        .bucket("keep")
        .send()
        .await
        .expect("uploads");
    assert_eq!(uploads.uploads().len(), 1);
    let part2 = upload_part(&c, "keep", "in-progress", &id, 2, b"end").await;
    complete_req(&c, "keep", "in-progress", &id, &[part1, part2])
        .send()
        .await
        .expect("complete after restart");
    assert!(get(&c, "keep", "in-progress").await == [p1.as_slice(), b"end"].concat());

    // Dropping a store without shutdown also releases the directory once it has drained.
    drop(store);
    let mut restarted = None;
    for _ in 0..100 {
        match EmbeddedStore::start(config(dir.path())).await {
            Ok(s) => {
                restarted = Some(s);
                break;
            }
            Err(EmbeddedError::Locked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("restart: {e}"),
        }
    }
    let store = restarted.expect("the lock is released after drop");
    assert_eq!(get(&client(&store), "keep", "meta").await, b"a,b");
    store.shutdown().await;
}

#[tokio::test]
async fn start_reports_config_and_directory_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.secret_access_key.clear();
    let err = EmbeddedStore::start(cfg).await.expect_err("empty secret");
    assert_eq!(
        err.to_string(),
        "invalid embedded store config: secret_access_key must not be empty"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let err = EmbeddedStore::start(config(&file.join("data")))
        .await
        .expect_err("data dir under a file");
    assert!(matches!(err, EmbeddedError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("a-file/data"), "{err}");
    assert!(format!("{:?}", config(dir.path())).contains("<redacted>"));
    assert!(!format!("{:?}", config(dir.path())).contains(SK));
}
