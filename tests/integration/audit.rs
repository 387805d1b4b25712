//! The audit trail end to end: one complete record per request of every kind,
//! N concurrent requests give N records, the chain survives kill -9, `audit
//! verify` finds each kind of tampering, filters and summaries return exactly
//! the expected records, rotation keeps the chain, and metrics match.

mod docs;
mod proof;
mod queries;
mod records;
mod report;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::common::*;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_s3warden");

pub(crate) async fn setup(top: &str, audit: &str) -> Harness {
    let h = Harness::embedded_configured(top, audit, "").await;
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    h
}

pub(crate) fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn by_id(records: &[Value], id: &str) -> Value {
    records
        .iter()
        .find(|r| r["request_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no record for {id}"))
}

/// Sends a request alice signed (with `secret`) and returns its request id.
pub(crate) async fn request_id(url: &str, secret: &str) -> (u16, String, String) {
    let s = sign_request("GET", url, &[], b"", ALICE_KEY, secret, SystemTime::now());
    let (status, headers, body) = send(&s, vec![]).await;
    (
        status,
        headers["x-amz-request-id"].to_str().unwrap().to_string(),
        body,
    )
}

#[tokio::test]
async fn every_kind_of_request_leaves_one_complete_record() {
    let h = setup("", "").await;
    let endpoint = h.endpoint();
    // allowed upload and download
    h.alice()
        .put_object()
        .bucket("shared")
        .key("alice/a.txt")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
    let url = format!("{endpoint}/shared/alice/a.txt");
    let (status, get_id, body) = request_id(&url, ALICE_SECRET).await;
    assert_eq!((status, body.as_str()), (200, "0123456789"));
    let (_, denied_id, _) = request_id(&format!("{endpoint}/shared/bob/x"), ALICE_SECRET).await;
    let (_, badsig_id, _) = request_id(&url, "wrong-secret-000000000000000000000000").await;
    let (_, malformed_id, _) = request_id(&format!("{url}?frobnicate"), ALICE_SECRET).await;
    // cut off mid-stream: a 4 MiB download the client abandons after 64 KiB
    h.root()
        .put_object()
        .bucket("shared")
        .key("alice/big")
        .body(ByteStream::from(vec![5u8; 4 << 20]))
        .send()
        .await
        .unwrap();
    let s = sign_request(
        "GET",
        &format!("{endpoint}/shared/alice/big"),
        &[],
        b"",
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    let mut sock = tokio::net::TcpStream::connect(h.server.local_addr())
        .await
        .unwrap();
    let mut req = "GET /shared/alice/big HTTP/1.1\r\n".to_string();
    for (n, v) in &s.headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    sock.read_exact(&mut buf).await.unwrap();
    drop(sock);

    // Anonymous, presigned SigV4 (the SDK's presigner) and presigned SigV2.
    let anonymous = Signed {
        method: "GET".into(),
        url: url.clone(),
        headers: vec![],
    };
    let (status, headers, _) = send(&anonymous, vec![]).await;
    assert_eq!(status, 403);
    let anonymous_id = headers["x-amz-request-id"].to_str().unwrap().to_string();
    let presigned_v4 = h
        .alice()
        .get_object()
        .bucket("shared")
        .key("alice/a.txt")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap();
    let v4 = Signed {
        method: "GET".into(),
        url: presigned_v4.uri().to_string(),
        headers: vec![],
    };
    let (status, headers, _) = send(&v4, vec![]).await;
    assert_eq!(status, 200);
    let v4_id = headers["x-amz-request-id"].to_str().unwrap().to_string();
    let expires = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let signature = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        s3warden::auth::sigv2::sign(
            ALICE_SECRET,
            &format!("GET\n\n\n{expires}\n/shared/alice/a.txt"),
        ),
    );
    let v2 = Signed {
        method: "GET".into(),
        url: format!(
            "{url}?AWSAccessKeyId={ALICE_KEY}&Expires={expires}&Signature={}",
            s3warden::auth::canonical::uri_encode(&signature, false)
        ),
        headers: vec![],
    };
    let (status, headers, _) = send(&v2, vec![]).await;
    assert_eq!(status, 200);
    let v2_id = headers["x-amz-request-id"].to_str().unwrap().to_string();

    // CreateBucket, PutObject, GET, denied, bad signature, malformed, the big
    // PutObject, the abandoned download, anonymous, presigned v4 and v2.
    let n = 11;
    let records = h.audit(n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records = if records.len() == n {
        h.audit(n).await
    } else {
        records
    };
    assert_eq!(records.len(), n, "one record per request: {records:#?}");
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), n);
    for (id, kind, version) in [
        (&anonymous_id, "anonymous", None),
        (&v4_id, "presigned", Some("AWS4-HMAC-SHA256")),
        (&v2_id, "presigned", Some("AWS")),
    ] {
        let r = by_id(&records, id);
        assert_eq!(r["auth"]["kind"], kind, "{r}");
        assert_eq!(r["auth"]["signature_version"].as_str(), version, "{r}");
        assert_eq!(r["key"], "alice/a.txt");
    }
    assert_eq!(by_id(&records, &anonymous_id)["error_code"], "AccessDenied");
    assert_eq!(by_id(&records, &v2_id)["principal"]["user_name"], "alice");

    let get = by_id(&records, &get_id);
    assert!(get["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        get["time"].as_str().unwrap().len(),
        24,
        "RFC 3339 with milliseconds"
    );
    assert!(get["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(get["tls"], false);
    assert_eq!(get["method"], "GET");
    assert_eq!(get["bucket"], "shared");
    assert_eq!(get["key"], "alice/a.txt");
    assert_eq!(get["operation"], "GetObject");
    assert_eq!(get["actions"], serde_json::json!(["s3:GetObject"]));
    assert_eq!(get["principal"]["type"], "User");
    assert_eq!(get["principal"]["user_name"], "alice");
    assert_eq!(get["principal"]["access_key_id"], ALICE_KEY);
    assert_eq!(
        get["principal"]["arn"],
        "arn:aws:iam::000000000000:user/alice"
    );
    assert_eq!(get["auth"]["kind"], "header");
    assert_eq!(get["auth"]["signature_version"], "AWS4-HMAC-SHA256");
    assert_eq!(get["decision"]["allowed"], true);
    assert_eq!(get["decision"]["statement"], "OwnObjects");
    assert_eq!(get["status"], 200);
    assert_eq!(get["bytes_out"], 10);
    assert!(get["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(get["upstream_ms"].as_f64().unwrap() > 0.0);
    assert!(get["upstream_request_id"].as_str().is_some());
    assert!(get["hash"].as_str().is_some() && get["seq"].as_u64().is_some());

    let denied = by_id(&records, &denied_id);
    assert_eq!(
        (denied["status"].as_u64(), denied["error_code"].as_str()),
        (Some(403), Some("AccessDenied"))
    );
    assert_eq!(denied["decision"]["reason"], "no statement allows");
    let badsig = by_id(&records, &badsig_id);
    assert_eq!(badsig["error_code"], "SignatureDoesNotMatch");
    assert!(badsig.get("decision").is_none());
    let malformed = by_id(&records, &malformed_id);
    assert_eq!(malformed["error_code"], "NotImplemented");

    let cut = records
        .iter()
        .find(|r| r["key"] == "alice/big" && r["principal"]["user_name"] == "alice")
        .unwrap();
    assert_eq!(cut["status"], 200);
    let sent = cut["bytes_out"].as_u64().unwrap();
    assert!((64 * 1024..4 << 20).contains(&sent), "bytes_out {sent}");

    let text = std::fs::read_to_string(h.audit_path()).unwrap();
    for secret in [
        ALICE_SECRET,
        ROOT_SECRET,
        "Signature=",
        "X-Amz-Signature",
        "X-Amz-Credential",
        signature.as_str(),
    ] {
        assert!(!text.contains(secret), "audit log contains {secret}");
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_concurrent_requests_give_n_records() {
    let h = setup("", "").await;
    let n = 200;
    let mut tasks = Vec::new();
    for i in 0..n {
        let c = h.alice();
        tasks.push(tokio::spawn(async move {
            c.put_object()
                .bucket("shared")
                .key(format!("alice/{i}"))
                .body(ByteStream::from(vec![1u8; 100]))
                .send()
                .await
                .is_ok()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    h.server.shutdown().await;
    let log = h.dir.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let puts = text
        .lines()
        .filter(|l| l.contains("\"operation\":\"PutObject\""))
        .count();
    assert_eq!(puts, n);
    let (code, out, _) = cli(&["audit", "verify", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_then_restart_keeps_a_verifiable_chain() {
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text_full(
        dir.path(),
        &embedded_upstream(dir.path()),
        "",
        "fsync = \"always\"",
        "",
    );
    let config = dir.path().join("s3warden.toml");
    std::fs::write(&config, text).unwrap();
    let (mut child, endpoint) = spawn_binary(&config, &[]);
    let root = s3_client(&endpoint, ROOT_KEY, ROOT_SECRET);
    root.create_bucket().bucket("shared").send().await.unwrap();
    let mut load = Vec::new();
    for w in 0..4 {
        let c = s3_client(&endpoint, ALICE_KEY, ALICE_SECRET);
        load.push(tokio::spawn(async move {
            for i in 0.. {
                let _ = c
                    .put_object()
                    .bucket("shared")
                    .key(format!("alice/{w}-{i}"))
                    .body(ByteStream::from(vec![0u8; 2048]))
                    .send()
                    .await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for l in &load {
        l.abort();
    }
    let before = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let last_seq_before = before
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap();
    assert!(
        last_seq_before > 10,
        "the load produced {last_seq_before} records"
    );

    let (child, endpoint) = spawn_binary(&config, &[]);
    let alice = s3_client(&endpoint, ALICE_KEY, ALICE_SECRET);
    for i in 0..5 {
        alice
            .put_object()
            .bucket("shared")
            .key(format!("alice/after-{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    stop_binary(child);
    let (code, out, err) = cli(&[
        "audit",
        "verify",
        dir.path().join("audit.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let after = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let seqs: Vec<u64> = after
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "the chain continues without gaps"
    );
    assert!(*seqs.last().unwrap() >= last_seq_before + 5);
}

/// Alice puts `n` one-byte objects `alice/0`, `alice/1`, … into `shared`.
pub(crate) async fn put_n(h: &Harness, n: usize) {
    for i in 0..n {
        h.alice()
            .put_object()
            .bucket("shared")
            .key(format!("alice/{i}"))
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
}

/// A fresh log of `n` records written by a real server, and its path.
async fn log_with(n: usize) -> (Harness, std::path::PathBuf) {
    let h = setup("", "").await;
    put_n(&h, n.saturating_sub(2)).await;
    let path = h.audit_path();
    (h, path)
}

pub(crate) fn rewrite(path: &std::path::Path, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn audit_verify_names_each_kind_of_tampering() {
    let (h, path) = log_with(8).await;
    h.server.shutdown().await;
    let p = path.to_str().unwrap().to_string();
    let pristine = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cli(&["audit", "verify", &p]).0, 0);

    type Tamper = Box<dyn Fn(&mut Vec<String>)>;
    let cases: [(&str, Tamper); 4] = [
        (
            "altered",
            Box::new(|l| l[3] = l[3].replace("\"status\":200", "\"status\":404")),
        ),
        (
            "missing (deleted)",
            Box::new(|l| {
                l.remove(4);
            }),
        ),
        ("reordered", Box::new(|l| l.swap(2, 5))),
        (
            "inserted",
            Box::new(|l| {
                let copy = l[1].clone();
                l.insert(4, copy);
            }),
        ),
    ];
    for (word, tamper) in cases {
        std::fs::write(&path, &pristine).unwrap();
        rewrite(&path, tamper);
        let (code, out, _) = cli(&["audit", "verify", &p]);
        assert_eq!(code, 1, "{word}: {out}");
        assert!(out.contains(word), "{word}: {out}");
        assert!(
            out.contains(&format!("{p}:")),
            "names the file and line: {out}"
        );
        assert!(out.contains("TAMPERED"));
    }
}

#[tokio::test]
async fn audit_filters_and_summaries_return_exactly_the_expected_records() {
    let h = setup("", "").await;
    for i in 0..3 {
        h.alice()
            .put_object()
            .bucket("shared")
            .key(format!("alice/{i}"))
            .body(ByteStream::from(vec![0u8; 1000]))
            .send()
            .await
            .unwrap();
    }
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
        .get_object()
        .bucket("shared")
        .key("alice/0")
        .send()
        .await
        .unwrap_err();
    h.server.shutdown().await;
    let p = h.dir.path().join("audit.jsonl");
    let p = p.to_str().unwrap();

    let json = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["audit", p, "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = cli(&all);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(json(&[]).len(), 7, "CreateBucket, 3 puts, 3 denied gets");
    let denied = json(&["--decision", "deny"]);
    assert_eq!(denied.len(), 3);
    assert!(denied.iter().all(|r| r["status"] == 403));
    assert_eq!(
        json(&["--principal", "alice", "--decision", "deny"]).len(),
        2
    );
    assert_eq!(
        json(&["--prefix", "alice/", "--operation", "putobject"]).len(),
        3
    );
    assert_eq!(
        json(&[
            "--bucket",
            "shared",
            "--status",
            "4xx",
            "--principal",
            "bob"
        ])
        .len(),
        1
    );
    assert_eq!(
        json(&["--since", "1h", "--until", "2099-01-01T00:00:00Z"]).len(),
        7
    );
    assert_eq!(json(&["--since", "2099-01-01T00:00:00Z"]).len(), 0);

    let (code, out, _) = cli(&["audit", p, "--summary", "--json", "--top", "1"]);
    assert_eq!(code, 0);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["by_principal"]["alice"]["allow"]["requests"], 3);
    assert_eq!(s["by_principal"]["alice"]["allow"]["bytes_in"], 3000);
    assert_eq!(s["by_principal"]["alice"]["deny"]["requests"], 2);
    assert_eq!(s["by_principal"]["bob"]["deny"]["requests"], 1);
    assert_eq!(
        s["top_denied_principals"],
        serde_json::json!([["alice", 2]])
    );
    assert_eq!(s["top_denied_keys"].as_array().unwrap().len(), 1);

    let (code, table, _) = cli(&["audit", p, "--decision", "deny"]);
    assert_eq!(code, 0);
    assert_eq!(table.lines().count(), 4, "header and three rows:\n{table}");
    assert!(table.contains("shared/bob/1"));

    let (code, _, err) = cli(&["audit", p, "--decision", "maybe"]);
    assert_eq!(code, 2);
    assert!(err.contains("allow"), "{err}");
}

#[tokio::test]
async fn rotation_keeps_one_chain_across_compressed_files() {
    let h = setup("", "rotate_bytes = 4000\ncompress_level = 1").await;
    put_n(&h, 30).await;
    h.server.shutdown().await;
    // Compression runs in the background; give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        let names: Vec<String> = std::fs::read_dir(h.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("audit-"))
            .collect();
        if !names.is_empty() && names.iter().all(|n| n.ends_with(".jsonl.gz")) {
            break names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotated files not compressed: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(rotated.len() >= 3, "{rotated:?}");
    // At the configured level: gzip's header marks level 1 as fastest (XFL 4).
    for name in &rotated {
        let gz = std::fs::read(h.dir.path().join(name)).unwrap();
        assert_eq!(gz[8], 4, "{name} not compressed at level 1");
    }
    let live = h.dir.path().join("audit.jsonl");
    let (code, out, _) = cli(&["audit", "verify", live.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("in {} files", rotated.len() + 1)),
        "{out}"
    );
    let (_, all, _) = cli(&[
        "audit",
        live.to_str().unwrap(),
        "--json",
        "--operation",
        "PutObject",
    ]);
    assert_eq!(
        all.lines().count(),
        30,
        "records from every file, compressed or not"
    );

    // Removing a whole rotated file breaks the chain where the next one starts.
    let mut sorted = rotated.clone();
    sorted.sort();
    std::fs::remove_file(h.dir.path().join(&sorted[1])).unwrap();
    let (code, out, _) = cli(&["audit", "verify", live.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("deleted"), "{out}");
}

/// Parses the Prometheus text format into `name{labels}` → value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn metrics_match_the_requests_made() {
    let h = setup("metrics_listen = \"127.0.0.1:0\"", "").await;
    let metrics = format!("http://{}", h.server.metrics_addr().unwrap());
    for i in 0..4 {
        h.alice()
            .put_object()
            .bucket("shared")
            .key(format!("alice/{i}"))
            .body(ByteStream::from(vec![0u8; 500]))
            .send()
            .await
            .unwrap();
    }
    for _ in 0..3 {
        h.alice()
            .get_object()
            .bucket("shared")
            .key("bob/x")
            .send()
            .await
            .unwrap_err();
    }
    h.alice()
        .get_object()
        .bucket("shared")
        .key("alice/0")
        .send()
        .await
        .unwrap();
    // The last record is counted when its response body is done.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    let body = client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_metrics(&body);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("missing {k} in\n{body}"))
    };
    assert_eq!(
        get("s3warden_requests_total{operation=\"PutObject\",decision=\"allow\",status=\"200\"}"),
        4.0
    );
    assert_eq!(
        get("s3warden_requests_total{operation=\"GetObject\",decision=\"deny\",status=\"403\"}"),
        3.0
    );
    assert_eq!(
        get("s3warden_requests_total{operation=\"GetObject\",decision=\"allow\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        get("s3warden_request_body_bytes_total{operation=\"PutObject\"}"),
        2000.0
    );
    assert!(get("s3warden_response_body_bytes_total{operation=\"GetObject\"}") >= 500.0);
    assert_eq!(
        get("s3warden_request_duration_seconds_count{operation=\"PutObject\"}"),
        4.0
    );
    assert_eq!(
        get("s3warden_upstream_duration_seconds_count{operation=\"PutObject\"}"),
        4.0
    );
    assert!(m.contains_key("s3warden_open_connections"));
    assert_eq!(get("s3warden_audit_queue_depth"), 0.0);
    // Series that exist before their first event, at 0.
    assert_eq!(get("s3warden_upstream_errors_total{kind=\"timeout\"}"), 0.0);
    assert_eq!(get("s3warden_audit_refused_requests_total"), 0.0);
    let version = concat!(
        "s3warden_build_info{version=\"",
        env!("CARGO_PKG_VERSION"),
        "\"}"
    );
    assert_eq!(get(version), 1.0);
    assert!(get("process_resident_memory_bytes") > 1e6);
    assert!(get("process_open_fds") > 0.0);
    assert!(get("process_start_time_seconds") > 1.7e9);
    assert!(m.contains_key("process_cpu_seconds_total"));
    // Unit last, as Prometheus names it: no `_bytes_received` or `_bytes_sent`.
    assert!(!body.contains("bytes_received") && !body.contains("bytes_sent"));

    let health = client
        .get(format!("{metrics}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{metrics}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    h.server.shutdown().await;
}

#[tokio::test]
async fn readyz_reports_an_unreachable_upstream() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::TempDir::new().unwrap();
    let upstream = url_upstream(&format!("http://127.0.0.1:{port}"));
    let text = config_text_full(
        dir.path(),
        &upstream,
        "metrics_listen = \"127.0.0.1:0\"",
        "",
        "",
    );
    let h = Harness::start(dir, &text).await;
    let metrics = format!("http://{}", h.server.metrics_addr().unwrap());
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{metrics}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = client
        .get(format!("{metrics}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("upstream"));
    h.server.shutdown().await;
}

/// `when_full = "refuse"`: with the writer blocked (its standard output is a
/// pipe nobody reads), requests are refused with 503 SlowDown once the queue
/// is full, instead of waiting or going unaudited; when the writer drains,
/// requests are served again and every served request has its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_requests_when_configured_to() {
    use std::io::{BufRead, Read};
    let dir = tempfile::TempDir::new().unwrap();
    let text = config_text_full(
        dir.path(),
        &embedded_upstream(dir.path()),
        "",
        "queue = 16\nwhen_full = \"refuse\"\nfsync = \"never\"",
        "",
    );
    let audit_line = format!("path = \"{}\"", dir.path().join("audit.jsonl").display());
    let text = text.replace(&audit_line, "path = \"-\"");
    let config = dir.path().join("s3warden.toml");
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3warden"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    let endpoint = banner
        .trim()
        .strip_prefix("s3warden listening on ")
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .to_string();
    // Anonymous requests until the pipe (64 KiB on Linux) and the queue are full.
    let anonymous = Signed {
        method: "GET".into(),
        url: format!("{endpoint}/shared/x"),
        headers: vec![],
    };
    let mut served = 0;
    let mut refused = None;
    for _ in 0..5000 {
        let (status, _, body) = send(&anonymous, vec![]).await;
        if status == 503 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 403);
        served += 1;
    }
    let body = refused.expect("a 503 once the audit queue is full");
    assert_eq!(xml_text(&body, "Code"), "SlowDown");
    // More than the queue alone holds: the refusal came from the blocked
    // writer, not from a momentarily busy one.
    assert!(
        served > 16,
        "only {served} requests before the queue was full"
    );
    // Drain the pipe in the background: requests are served again.
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        out.read_to_string(&mut all).unwrap();
        all
    });
    let mut recovered = false;
    for _ in 0..200 {
        let (status, _, _) = send(&anonymous, vec![]).await;
        if status == 403 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        recovered,
        "requests are served again once the writer drains"
    );
    stop_binary(child);
    let log = reader.join().unwrap();
    let records: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every served request has its record; refused ones are counted, not logged.
    let forbidden = records.iter().filter(|r| r["status"] == 403).count();
    assert!(
        forbidden > served,
        "{forbidden} records for {served}+ served requests"
    );
    assert!(records.iter().all(|r| r["status"] != 503));
}
