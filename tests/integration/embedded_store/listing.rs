//! Listing: prefixes, delimiters and pagination in v1 and v2, and keys that a filesystem would
//! merge or alter, stored and listed verbatim.

use super::*;

#[tokio::test]
async fn listing_prefixes_delimiters_and_pagination() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("lists").await;
    let keys = [
        "a.txt",
        "photos/2006/jan.jpg",
        "photos/2006/feb.jpg",
        "photos/2007/x.jpg",
        "photos/top.jpg",
        "videos/v.mp4",
        "z",
    ];
    for k in keys {
        put(&c, "lists", k, k.as_bytes()).await;
    }
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort();

    let out = c
        .list_objects_v2()
        .bucket("lists")
        .send()
        .await
        .expect("list");
    let listed: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, sorted);
    let first = &out.contents()[0];
    assert_eq!(first.size(), Some(5));
    assert_eq!(first.e_tag(), Some(quoted(&md5_hex(b"a.txt")).as_str()));
    assert!(first.last_modified().is_some());
    assert_eq!(first.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    assert!(
        first.owner().is_none(),
        "v2 sends owners only with fetch-owner"
    );
    assert_eq!(out.is_truncated(), Some(false));

    // Delimiter and prefix.
    let (keys_top, prefixes_top) = list_all_v2(&c, "lists", "", Some("/"), 1000).await;
    assert_eq!(keys_top, ["a.txt", "z"]);
    assert_eq!(prefixes_top, ["photos/", "videos/"]);
    let (k, p) = list_all_v2(&c, "lists", "photos/", Some("/"), 1000).await;
    assert_eq!(k, ["photos/top.jpg"]);
    assert_eq!(p, ["photos/2006/", "photos/2007/"]);

    // Paging one entry at a time gives the same result as one page.
    for page in [1, 2, 3] {
        assert_eq!(
            list_all_v2(&c, "lists", "", None, page).await.0,
            sorted,
            "page size {page}"
        );
        assert_eq!(
            list_all_v2(&c, "lists", "", Some("/"), page).await,
            (keys_top.clone(), prefixes_top.clone())
        );
    }

    let after = c
        .list_objects_v2()
        .bucket("lists")
        .start_after("photos/2007/x.jpg")
        .send()
        .await
        .expect("start-after");
    let listed: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, ["photos/top.jpg", "videos/v.mp4", "z"]);
    assert_eq!(after.start_after(), Some("photos/2007/x.jpg"));

    let zero = c
        .list_objects_v2()
        .bucket("lists")
        .max_keys(0)
        .send()
        .await
        .expect("max-keys 0");
    assert!(zero.contents().is_empty());
    assert_eq!(zero.is_truncated(), Some(false));
    let bad_token = c
        .list_objects_v2()
        .bucket("lists")
        .continuation_token("!!not-a-token!!")
        .send()
        .await;
    assert_eq!(failure(bad_token), ("InvalidArgument".to_owned(), 400));
    assert_eq!(
        failure(c.list_objects_v2().bucket("nope").send().await),
        ("NoSuchBucket".to_owned(), 404)
    );

    // v1: marker, NextMarker only with a delimiter, owners always.
    let v1 = c
        .list_objects()
        .bucket("lists")
        .max_keys(2)
        .send()
        .await
        .expect("v1");
    assert_eq!(v1.is_truncated(), Some(true));
    assert!(v1.next_marker().is_none());
    assert!(v1.contents()[0].owner().is_some());
    let v1 = c
        .list_objects()
        .bucket("lists")
        .marker("photos/top.jpg")
        .send()
        .await
        .expect("v1 marker");
    let listed: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, ["videos/v.mp4", "z"]);
    let v1 = c
        .list_objects()
        .bucket("lists")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .expect("v1 delimiter");
    assert_eq!(v1.is_truncated(), Some(true));
    assert_eq!(v1.next_marker(), Some("photos/"));
    let v1 = c
        .list_objects()
        .bucket("lists")
        .delimiter("/")
        .marker("photos/")
        .send()
        .await
        .expect("v1 resume");
    let listed: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = v1
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!((listed, prefixes), (vec!["z"], vec!["videos/"]));
    store.shutdown().await;
}

#[tokio::test]
async fn odd_keys_round_trip_verbatim_and_distinct() {
    let Env {
        dir: _dir,
        store,
        c,
    } = env("odd").await;
    for key in ODD_KEYS {
        put(&c, "odd", key, key.as_bytes()).await;
    }
    let long = "k".repeat(1024);
    put(&c, "odd", &long, b"long").await;
    for key in ODD_KEYS {
        assert_eq!(get(&c, "odd", key).await, key.as_bytes(), "{key:?}");
    }
    let mut expected: Vec<String> = ODD_KEYS.iter().map(|k| (*k).to_owned()).collect();
    expected.push(long.clone());
    expected.sort();
    let (listed, _) = list_all_v2(&c, "odd", "", None, 1000).await;
    assert_eq!(listed, expected);

    // encoding-type=url: names come back encoded the way S3 encodes them.
    let out = c
        .list_objects_v2()
        .bucket("odd")
        .prefix("sp ace")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("url-encoded list");
    let listed: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, ["sp+ace%2Bplus%25pct"]);
    assert_eq!(out.prefix(), Some("sp+ace"));

    // Listing with a delimiter under "a/" sees the odd segments as their own prefixes.
    let (keys, prefixes) = list_all_v2(&c, "odd", "a/", Some("/"), 1000).await;
    assert_eq!(keys, ["a/b"]);
    assert_eq!(prefixes, ["a/../", "a/./", "a//"]);

    let too_long = put_req(&c, "odd", &"k".repeat(1025), b"x").send().await;
    assert_eq!(failure(too_long), ("KeyTooLongError".to_owned(), 400));

    // Deleting one leaves its look-alikes alone.
    c.delete_object()
        .bucket("odd")
        .key("a/../b")
        .send()
        .await
        .expect("delete");
    assert_eq!(get(&c, "odd", "b").await, b"b");
    assert_eq!(get(&c, "odd", "a//b").await, b"a//b");
    assert_eq!(
        failure(get_req(&c, "odd", "a/../b").send().await).0,
        "NoSuchKey"
    );
    store.shutdown().await;
}
