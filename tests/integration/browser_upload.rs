//! The browser-upload example end to end: s3warden on the example's own
//! config, the example backend (examples/browser-upload/app.py, Flask), and
//! headless Chromium (Debian's, installed by .ci/run) driving the page as a
//! person would. The file must land upstream under the person's prefix, and
//! the audit log must name the federated user who uploaded it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use s3warden::config::Config;
use s3warden::server::Server;
use serde_json::Value;

const ROOT: (&str, &str) = (
    "S3WARDENUPLOADSROOT1",
    "uploads-root-secret-change-me-000000000000",
);
const ISSUER: (&str, &str) = (
    "S3WARDENUPLOADISSUE1",
    "uploads-issuer-secret-change-me-00000000",
);

/// Kills the backend when the test ends, however it ends.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(url: &str) {
    for _ in 0..200 {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uploads_a_file_from_the_example_page() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/browser-upload");
    let dir = tempfile::TempDir::new().unwrap();
    let app_port = free_port();
    let app_origin = format!("http://127.0.0.1:{app_port}");
    // The example's config as shipped, with its data in a temporary directory,
    // any free port, and the backend's actual origin allowed by [cors].
    let text = std::fs::read_to_string(example.join("s3warden.toml"))
        .unwrap()
        .replace(
            "./data/browser-upload/",
            &format!("{}/", dir.path().display()),
        )
        .replace("127.0.0.1:9000", "127.0.0.1:0")
        .replace("http://127.0.0.1:8000", &app_origin);
    let config = Config::from_toml(&text, &example.join("s3warden.toml"), &example).unwrap();
    let server = Server::start(config).await.unwrap();
    let endpoint = format!("http://{}", server.local_addr());
    s3_client(&endpoint, ROOT.0, ROOT.1)
        .create_bucket()
        .bucket("uploads")
        .send()
        .await
        .unwrap();

    let _backend = Backend(
        Command::new("python3")
            .arg(example.join("app.py"))
            .args(["--endpoint", &endpoint, "--port", &app_port.to_string()])
            .env("ISSUER_ACCESS_KEY_ID", ISSUER.0)
            .env("ISSUER_SECRET_ACCESS_KEY", ISSUER.1)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the example backend (.ci/run installs Flask)"),
    );
    wait_for(&format!("{app_origin}/")).await;

    let data = pattern(3 * 1024 * 1024 + 17);
    let file = dir.path().join("holiday photo.jpg");
    std::fs::write(&file, &data).unwrap();
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let out = tokio::task::spawn_blocking({
        let (origin, file) = (app_origin.clone(), file.clone());
        move || {
            run_ok(
                Command::new("node")
                    .current_dir(&clients)
                    .arg("browser_upload.mjs")
                    .arg(&origin)
                    .arg("carol")
                    .arg(&file),
            )
        }
    })
    .await
    .unwrap();
    let seen: Value = serde_json::from_str(out.trim()).unwrap();

    // What the person saw: success, with the progress bar run to the end.
    assert_eq!(seen["status"], "Uploaded holiday photo.jpg.", "{seen}");
    assert_eq!(seen["where"], "uploads/carol/");
    let progress: Vec<u64> = seen["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(progress.last(), Some(&100), "{seen}");
    // The browser posted once to s3warden, which answered 204 with CORS
    // headers for the page's origin.
    let uploads = seen["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 1, "{seen}");
    assert_eq!(uploads[0]["url"], format!("{endpoint}/uploads"));
    assert_eq!(uploads[0]["status"], 204);
    assert_eq!(
        uploads[0]["headers"]["access-control-allow-origin"],
        app_origin.as_str()
    );

    // The bytes upstream, under the person's prefix.
    let got = s3_client(&endpoint, ROOT.0, ROOT.1)
        .get_object()
        .bucket("uploads")
        .key("carol/holiday photo.jpg")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(got == data, "the stored object differs from the file");

    // Its audit record names the federated user and how the upload was signed.
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let record: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["operation"] == "PostObject")
        .expect("an audit record for the upload");
    assert_eq!(record["status"], 204);
    assert_eq!(record["bucket"], "uploads");
    assert_eq!(record["key"], "carol/holiday photo.jpg");
    assert_eq!(record["auth"]["kind"], "post-form");
    assert_eq!(record["auth"]["signature_version"], "AWS");
    assert_eq!(record["decision"]["allowed"], true);
    assert!(
        record["principal"]["arn"]
            .as_str()
            .unwrap()
            .ends_with(":federated-user/carol"),
        "{record}"
    );
    assert!(record["bytes_in"].as_u64().unwrap() > data.len() as u64);
    server.shutdown().await;
}
