//! Real clients at their default settings through s3warden, over HTTP and
//! HTTPS: boto3, the aws CLI, the AWS SDK for Rust, s3cmd, rclone, the MinIO
//! Python client and the AWS SDK for JavaScript v3. Each puts a small object
//! (with an awkward key) and a large one (multipart, just above the client's
//! threshold), reads a range, lists with prefix and delimiter, copies and
//! deletes; the SDKs also use a presigned GET and PUT. Then the test checks
//! what landed upstream, byte for byte, and that the checksum the SDKs asked
//! for was stored there.
//!
//! Over HTTPS several of these clients switch to aws-chunked uploads with
//! checksum trailers (boto3, the aws CLI, aws-sdk-rust for streamed bodies);
//! over HTTP aws-sdk-rust signs every chunk and the trailer.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload, CompletedPart};
use s3warden::auth::checksum::{Algorithm, checksum_base64};

const BUCKET: &str = "matrix";
const SMALL_KEY: &str = "odd key +=~é&%.txt";

struct Run {
    h: Harness,
    ca: Option<PathBuf>,
    root: aws_sdk_s3::Client,
}

async fn start(tls: bool) -> Run {
    let (h, ca) = Harness::embedded_maybe_tls(tls, "").await;
    let root = h.client_trusting(ROOT_KEY, ROOT_SECRET, ca.as_deref());
    root.create_bucket().bucket(BUCKET).send().await.unwrap();
    Run { h, ca, root }
}

fn small(prefix: &str) -> Vec<u8> {
    format!("small:{prefix}").into_bytes()
}

async fn object(run: &Run, key: &str) -> Option<Vec<u8>> {
    let got = run
        .root
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(got.body.collect().await.unwrap().to_vec())
}

/// What a client must have left upstream under `prefix`.
struct Expect {
    large: usize,
    parts: usize,
    presigned: bool,
    /// The client sends a CRC32 with its uploads by default.
    crc32: bool,
}

async fn assert_landed(run: &Run, prefix: &str, e: Expect) {
    let small_key = format!("{prefix}/{SMALL_KEY}");
    assert_eq!(
        object(run, &small_key).await.as_deref(),
        Some(&small(prefix)[..]),
        "{prefix}: small object"
    );
    let large_key = format!("{prefix}/large.bin");
    let large = object(run, &large_key).await.expect("large object");
    assert!(
        large == pattern(e.large),
        "{prefix}: large object bytes differ"
    );
    let head = run
        .root
        .head_object()
        .bucket(BUCKET)
        .key(&large_key)
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap_or_default();
    assert!(
        etag.ends_with(&format!("-{}\"", e.parts)),
        "{prefix}: expected {} parts, etag {etag}",
        e.parts
    );
    assert_eq!(
        object(run, &format!("{prefix}/copy.txt")).await.as_deref(),
        Some(&small(prefix)[..]),
        "{prefix}: copy"
    );
    assert!(
        object(run, &format!("{prefix}/gone.txt")).await.is_none(),
        "{prefix}: deleted object is still there"
    );
    if e.presigned {
        assert_eq!(
            object(run, &format!("{prefix}/presigned.txt")).await,
            Some(format!("presigned:{prefix}").into_bytes()),
            "{prefix}: presigned put"
        );
    }
    // aws-chunked is framing, never part of what is stored.
    let small_head = run
        .root
        .head_object()
        .bucket(BUCKET)
        .key(&small_key)
        .send()
        .await
        .unwrap();
    assert!(
        !small_head
            .content_encoding()
            .unwrap_or("")
            .contains("aws-chunked"),
        "{prefix}: stored Content-Encoding {:?}",
        small_head.content_encoding()
    );
    if e.crc32 {
        let head = run
            .root
            .head_object()
            .bucket(BUCKET)
            .key(&small_key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.checksum_crc32(),
            Some(checksum_base64(Algorithm::Crc32, &small(prefix)).as_str()),
            "{prefix}: upstream did not store the client's CRC32"
        );
    }
    // No request failed in the proxy. (Upstream's own 501 for operations the
    // embedded store lacks, such as s3cmd's GetObjectAcl probe, is relayed.)
    let records = run.h.audit(1).await;
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r["status"].as_u64().unwrap_or(0) >= 500 && r["status"] != 501)
        .collect();
    assert!(failed.is_empty(), "{prefix}: {failed:?}");
}

fn ca_arg(ca: &Option<PathBuf>) -> String {
    ca.as_ref()
        .map_or("-".to_string(), |p| p.display().to_string())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Runs one of the Python client scripts with the endpoint, root key, bucket,
/// prefix and CA file (or `-`), then checks what landed.
async fn python_client(script: &'static str, name: &str, tls: bool, e: Expect) {
    let run = start(tls).await;
    let prefix = format!("{name}-{}", if tls { "https" } else { "http" });
    let (endpoint, ca, p) = (run.h.endpoint(), ca_arg(&run.ca), prefix.clone());
    let out =
        blocking(move || run_python(script, &[&endpoint, ROOT_KEY, ROOT_SECRET, BUCKET, &p, &ca]))
            .await;
    assert_eq!(out.trim(), "ok");
    assert_landed(&run, &prefix, e).await;
    run.h.server.shutdown().await;
}

async fn boto3(tls: bool) {
    let e = Expect {
        large: 9 * 1024 * 1024,
        parts: 2,
        presigned: true,
        crc32: true,
    };
    python_client("matrix_boto3.py", "boto3", tls, e).await;
}

async fn aws_cli(tls: bool) {
    let run = start(tls).await;
    let prefix = if tls { "cli-https" } else { "cli-http" };
    let endpoint = run.h.endpoint();
    let ca = run.ca.clone();
    let work = run.h.dir.path().join("cli");
    std::fs::create_dir_all(&work).unwrap();
    blocking(move || {
        let aws = |args: &[&str]| {
            let mut all: Vec<&str> = args.to_vec();
            let ca_text = ca.as_ref().map(|p| p.display().to_string());
            if let Some(c) = &ca_text {
                all.extend(["--ca-bundle", c]);
            }
            let out = run_aws(&endpoint, ROOT_KEY, ROOT_SECRET, &all);
            assert!(
                out.status.success(),
                "aws {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let small_file = work.join("small.txt");
        std::fs::write(&small_file, small(prefix)).unwrap();
        let large_file = work.join("large.bin");
        std::fs::write(&large_file, pattern(9 * 1024 * 1024)).unwrap();
        let s3 = |k: &str| format!("s3://{BUCKET}/{prefix}/{k}");
        aws(&["s3", "cp", small_file.to_str().unwrap(), &s3(SMALL_KEY)]);
        aws(&[
            "s3",
            "cp",
            small_file.to_str().unwrap(),
            &s3("sub/inner.txt"),
        ]);
        aws(&["s3", "cp", large_file.to_str().unwrap(), &s3("large.bin")]);
        let range_out = work.join("range.out");
        aws(&[
            "s3api",
            "get-object",
            "--bucket",
            BUCKET,
            "--key",
            &format!("{prefix}/{SMALL_KEY}"),
            "--range",
            "bytes=6-10",
            range_out.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read(&range_out).unwrap(), &small(prefix)[6..11]);
        let listed = aws(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--prefix",
            &format!("{prefix}/"),
            "--delimiter",
            "/",
        ]);
        assert!(listed.contains(&format!("\"{prefix}/sub/\"")), "{listed}");
        assert!(listed.contains("large.bin"), "{listed}");
        aws(&["s3", "cp", &s3(SMALL_KEY), &s3("copy.txt")]);
        aws(&["s3", "cp", small_file.to_str().unwrap(), &s3("gone.txt")]);
        aws(&["s3", "rm", &s3("gone.txt")]);
    })
    .await;
    let e = Expect {
        large: 9 * 1024 * 1024,
        parts: 2,
        presigned: false,
        crc32: true,
    };
    assert_landed(&run, prefix, e).await;
    run.h.server.shutdown().await;
}

async fn presigned_request(
    method: reqwest::Method,
    url: &str,
    body: Vec<u8>,
    ca: Option<&Path>,
) -> (u16, Vec<u8>) {
    let mut b = reqwest::Client::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        b = b.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
    }
    let resp = b
        .build()
        .unwrap()
        .request(method, url)
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

async fn rust_sdk(tls: bool) {
    let run = start(tls).await;
    let prefix = if tls { "rust-https" } else { "rust-http" };
    let c = &run.root;
    let key = |k: &str| format!("{prefix}/{k}");
    let work = run.h.dir.path().join("rust");
    std::fs::create_dir_all(&work).unwrap();
    // A body from a file streams: aws-chunked with a CRC32 trailer (signed
    // chunks and trailer over HTTP, unsigned over HTTPS).
    let small_file = work.join("small.txt");
    std::fs::write(&small_file, small(prefix)).unwrap();
    c.put_object()
        .bucket(BUCKET)
        .key(key(SMALL_KEY))
        .body(ByteStream::from_path(&small_file).await.unwrap())
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket(BUCKET)
        .key(key("sub/inner.txt"))
        .body(ByteStream::from_static(b"inner"))
        .send()
        .await
        .unwrap();
    let large = pattern(6 * 1024 * 1024);
    let part_files: Vec<PathBuf> = [&large[..5 * 1024 * 1024], &large[5 * 1024 * 1024..]]
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = work.join(format!("part{i}"));
            std::fs::write(&p, d).unwrap();
            p
        })
        .collect();
    let up = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key("large.bin"))
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (i, p) in part_files.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket(BUCKET)
            .key(key("large.bin"))
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from_path(p).await.unwrap())
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .set_checksum_crc32(r.checksum_crc32().map(str::to_string))
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key("large.bin"))
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ranged = c
        .get_object()
        .bucket(BUCKET)
        .key(key(SMALL_KEY))
        .range("bytes=6-10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.body.collect().await.unwrap().to_vec(),
        &small(prefix)[6..11]
    );
    let listed = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{prefix}/"))
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 2, "{listed:?}");
    assert_eq!(
        listed.common_prefixes()[0].prefix(),
        Some(key("sub/").as_str())
    );
    c.copy_object()
        .bucket(BUCKET)
        .key(key("copy.txt"))
        .copy_source(format!(
            "{BUCKET}/{}",
            s3warden::auth::canonical::uri_encode(&key(SMALL_KEY), true)
        ))
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket(BUCKET)
        .key(key("gone.txt"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket(BUCKET)
        .key(key("gone.txt"))
        .send()
        .await
        .unwrap();
    let cfg =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300))
            .unwrap();
    let get = c
        .get_object()
        .bucket(BUCKET)
        .key(key(SMALL_KEY))
        .presigned(cfg.clone())
        .await
        .unwrap();
    let (status, body) =
        presigned_request(reqwest::Method::GET, get.uri(), vec![], run.ca.as_deref()).await;
    assert_eq!((status, body), (200, small(prefix)));
    let put = c
        .put_object()
        .bucket(BUCKET)
        .key(key("presigned.txt"))
        .presigned(cfg)
        .await
        .unwrap();
    let (status, body) = presigned_request(
        reqwest::Method::PUT,
        put.uri(),
        format!("presigned:{prefix}").into_bytes(),
        run.ca.as_deref(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let e = Expect {
        large: 6 * 1024 * 1024,
        parts: 2,
        presigned: true,
        crc32: true,
    };
    assert_landed(&run, prefix, e).await;
    run.h.server.shutdown().await;
}

async fn s3cmd(tls: bool) {
    let run = start(tls).await;
    let prefix = if tls { "s3cmd-https" } else { "s3cmd-http" };
    let work = run.h.dir.path().join("s3cmd");
    std::fs::create_dir_all(&work).unwrap();
    let host = run.h.server.local_addr().to_string();
    let cfg = work.join("s3cfg");
    let mut text = format!(
        "[default]\naccess_key = {ROOT_KEY}\nsecret_key = {ROOT_SECRET}\nhost_base = {host}\n\
host_bucket = {host}\nbucket_location = us-east-1\nuse_https = {tls}\nsignature_v2 = False\n"
    );
    if let Some(ca) = &run.ca {
        text.push_str(&format!(
            "ca_certs_file = {}\ncheck_ssl_certificate = True\ncheck_ssl_hostname = True\n",
            ca.display()
        ));
    }
    std::fs::write(&cfg, text).unwrap();
    blocking(move || {
        let s3cmd = |args: &[&str]| {
            run_ok(
                Command::new("s3cmd")
                    .arg("-c")
                    .arg(&cfg)
                    .arg("--no-progress")
                    .args(args),
            )
        };
        let s3 = |k: &str| format!("s3://{BUCKET}/{prefix}/{k}");
        let small_file = work.join("small.txt");
        std::fs::write(&small_file, small(prefix)).unwrap();
        // Just above s3cmd's 15 MiB multipart chunk size: two parts.
        let large_file = work.join("large.bin");
        std::fs::write(&large_file, pattern(16 * 1024 * 1024)).unwrap();
        let f = |p: &Path| p.to_str().unwrap().to_string();
        s3cmd(&["put", &f(&small_file), &s3(SMALL_KEY)]);
        s3cmd(&["put", &f(&small_file), &s3("sub/inner.txt")]);
        s3cmd(&["put", &f(&large_file), &s3("large.bin")]);
        // A ranged read: --continue asks for the bytes after the local file's.
        let partial = work.join("partial.txt");
        std::fs::write(&partial, &small(prefix)[..6]).unwrap();
        s3cmd(&["get", "--continue", &s3(SMALL_KEY), &f(&partial)]);
        assert_eq!(std::fs::read(&partial).unwrap(), small(prefix));
        let listed = s3cmd(&["ls", &format!("s3://{BUCKET}/{prefix}/")]);
        assert!(
            listed.contains(&format!("DIR  s3://{BUCKET}/{prefix}/sub/")),
            "{listed}"
        );
        assert!(listed.contains("large.bin"), "{listed}");
        s3cmd(&["cp", &s3(SMALL_KEY), &s3("copy.txt")]);
        s3cmd(&["put", &f(&small_file), &s3("gone.txt")]);
        s3cmd(&["del", &s3("gone.txt")]);
    })
    .await;
    let e = Expect {
        large: 16 * 1024 * 1024,
        parts: 2,
        presigned: false,
        crc32: false,
    };
    assert_landed(&run, prefix, e).await;
    run.h.server.shutdown().await;
}

async fn rclone(tls: bool) {
    let run = start(tls).await;
    let prefix = if tls { "rclone-https" } else { "rclone-http" };
    let work = run.h.dir.path().join("rclone");
    std::fs::create_dir_all(&work).unwrap();
    let endpoint = run.h.endpoint();
    let ca = run.ca.clone();
    blocking(move || {
        let rclone = |args: &[&str]| {
            let mut cmd = Command::new("rclone");
            // The Go SDK in rclone loads AWS_CA_BUNDLE itself and fails on
            // rclone's transport; trust comes from --ca-cert instead.
            cmd.env_remove("AWS_CA_BUNDLE")
                .env("RCLONE_CONFIG", "/nonexistent")
                .env("RCLONE_CONFIG_W_TYPE", "s3")
                .env("RCLONE_CONFIG_W_PROVIDER", "Other")
                .env("RCLONE_CONFIG_W_ACCESS_KEY_ID", ROOT_KEY)
                .env("RCLONE_CONFIG_W_SECRET_ACCESS_KEY", ROOT_SECRET)
                .env("RCLONE_CONFIG_W_ENDPOINT", &endpoint)
                .env("RCLONE_CONFIG_W_REGION", "us-east-1")
                // The defaults (200 MiB cutoff) are too big for CI; lower them
                // to just below the large object so it goes multipart.
                .args(["--s3-upload-cutoff", "5Mi", "--s3-chunk-size", "5Mi"])
                .args(["--retries", "1", "--low-level-retries", "1"]);
            if let Some(ca) = &ca {
                cmd.arg("--ca-cert").arg(ca);
            }
            run_ok(cmd.args(args))
        };
        let r = |k: &str| format!("w:{BUCKET}/{prefix}/{k}");
        let small_file = work.join("small.txt");
        std::fs::write(&small_file, small(prefix)).unwrap();
        let large_file = work.join("large.bin");
        std::fs::write(&large_file, pattern(6 * 1024 * 1024)).unwrap();
        let f = |p: &Path| p.to_str().unwrap().to_string();
        rclone(&["copyto", &f(&small_file), &r(SMALL_KEY)]);
        rclone(&["copyto", &f(&small_file), &r("sub/inner.txt")]);
        rclone(&["copyto", &f(&large_file), &r("large.bin")]);
        let ranged = rclone(&["cat", "--offset", "6", "--count", "5", &r(SMALL_KEY)]);
        assert_eq!(ranged.as_bytes(), &small(prefix)[6..11]);
        let listed = rclone(&["lsf", &format!("w:{BUCKET}/{prefix}/")]);
        let mut names: Vec<&str> = listed.lines().collect();
        names.sort();
        assert_eq!(names, ["large.bin", SMALL_KEY, "sub/"], "{listed}");
        rclone(&["copyto", &r(SMALL_KEY), &r("copy.txt")]);
        rclone(&["copyto", &f(&small_file), &r("gone.txt")]);
        rclone(&["deletefile", &r("gone.txt")]);
    })
    .await;
    let e = Expect {
        large: 6 * 1024 * 1024,
        parts: 2,
        presigned: false,
        crc32: false,
    };
    assert_landed(&run, prefix, e).await;
    run.h.server.shutdown().await;
}

async fn minio(tls: bool) {
    let e = Expect {
        large: 6 * 1024 * 1024,
        parts: 2,
        presigned: true,
        crc32: false,
    };
    python_client("matrix_minio.py", "minio", tls, e).await;
}

async fn javascript(tls: bool) {
    let run = start(tls).await;
    let prefix = if tls { "js-https" } else { "js-http" };
    let endpoint = run.h.endpoint();
    let ca = run.ca.clone();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    blocking(move || {
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .arg("--no-warnings")
            .arg("matrix_js.mjs")
            .args([&endpoint, ROOT_KEY, ROOT_SECRET, BUCKET, prefix])
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
        if let Some(ca) = &ca {
            cmd.env("NODE_EXTRA_CA_CERTS", ca);
        }
        let out = run_ok(&mut cmd);
        assert_eq!(out.trim(), "ok");
    })
    .await;
    let e = Expect {
        large: 6 * 1024 * 1024,
        parts: 2,
        presigned: true,
        crc32: true,
    };
    assert_landed(&run, prefix, e).await;
    run.h.server.shutdown().await;
}

macro_rules! both {
    ($($client:ident => $http:ident, $https:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $http() {
            $client(false).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $https() {
            $client(true).await;
        }
    )*};
}

both! {
    boto3 => boto3_http, boto3_https;
    aws_cli => aws_cli_http, aws_cli_https;
    rust_sdk => rust_sdk_http, rust_sdk_https;
    s3cmd => s3cmd_http, s3cmd_https;
    rclone => rclone_http, rclone_https;
    minio => minio_http, minio_https;
    javascript => javascript_http, javascript_https;
}
