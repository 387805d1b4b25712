//! `audit report`: a self-contained HTML page from a real log, rendered by
//! headless Chromium (Debian's package): its script builds the table of
//! every record, and the screenshot is a real, non-blank page.

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;

use super::{cli, put_n, request_id, setup};

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::TempDir::new().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Any request the page made would fail: it must need none.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs (Debian's package; .ci/run installs it)")
}

#[tokio::test]
async fn the_report_renders_in_a_browser_from_a_real_log() {
    let h = setup("", "").await;
    put_n(&h, 4).await;
    for key in ["bob/1", "bob/2"] {
        h.alice()
            .get_object()
            .bucket("shared")
            .key(key)
            .send()
            .await
            .unwrap_err();
    }
    h.bob()
        .put_object()
        .bucket("shared")
        .key("alice/x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    let url = format!("{}/shared/alice/0", h.endpoint());
    request_id(&url, "wrong-secret-000000000000000000000000").await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let records = std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .count();

    let page = dir.join("report.html");
    let (code, _, err) = cli(&[
        "audit",
        "report",
        dir.join("audit.jsonl").to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<b>3</b>denied"),
        "two gets by alice, a put by bob"
    );
    assert!(html.contains("<b>1</b>failed sign-ins"));
    assert!(html.contains("intact"));
    for external in ["src=\"http", "href=\"http", "<link", "url("] {
        assert!(!html.contains(external), "{external}");
    }

    let file_url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &file_url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<tr class=\"row").count(),
        records,
        "the script built one row per record"
    );
    assert!(
        dom.contains(&format!("{records} of {records} records match")),
        "{dom}"
    );

    let shot = dir.join("report.png");
    let out = chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,1600",
        &file_url,
    ]);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    // A blank page compresses to a few kilobytes; charts, bars and text do not.
    assert!(png.len() > 30_000, "screenshot of {} bytes", png.len());
}
