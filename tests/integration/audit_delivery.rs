//! `[audit] deliver_to`: closed log files and their checkpoints reach an S3
//! bucket through the upstream, keyed by instance and date, byte for byte;
//! a delivery that fails (no such bucket yet) is retried until stored, and
//! every attempt is itself in the audit log.

use std::time::{Duration, Instant};

use crate::common::*;

/// Every record of the log, rotated files (compressed or not) included.
fn all_records(h: &Harness) -> Vec<serde_json::Value> {
    let live = h.audit_path();
    s3warden::audit::files::list_log_files(&live)
        .unwrap()
        .iter()
        // A file compressed away between listing and opening is read as its .gz.
        .filter_map(|f| s3warden::audit::files::open_lines(f).ok())
        .flatten()
        .filter_map(|l| serde_json::from_str(&l.ok()?).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_logs_and_checkpoints_reach_the_archive_bucket_and_failures_are_retried() {
    let h = Harness::embedded_configured(
        "",
        "rotate_bytes = 4000\ndeliver_to = \"s3://audit-archive/logs\"\ndeliver_interval_secs = 1\ninstance = \"edge-1\"\ncompress = true",
        "",
    )
    .await;
    let root = h.root();
    root.create_bucket().bucket("work").send().await.unwrap();
    // Enough requests for several rotations.
    for i in 0..40 {
        let _ = root
            .head_object()
            .bucket("work")
            .key(format!("missing-{i}"))
            .send()
            .await;
    }
    // No archive bucket yet: deliveries are refused and recorded as such.
    let start = Instant::now();
    loop {
        let records = all_records(&h);
        if records
            .iter()
            .any(|r| r["operation"] == "DeliverAuditLog" && r["error_code"] == "DeliveryRefused")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no refused delivery recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    root.create_bucket()
        .bucket("audit-archive")
        .send()
        .await
        .unwrap();
    // Retried: the rotated files and the checkpoints arrive.
    let start = Instant::now();
    let keys = loop {
        let listed = root
            .list_objects_v2()
            .bucket("audit-archive")
            .prefix("logs/edge-1/")
            .send()
            .await
            .unwrap();
        let keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        if keys.iter().any(|k| k.ends_with(".jsonl.gz"))
            && keys.iter().any(|k| k.ends_with("checkpoints.jsonl"))
        {
            break keys;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "delivered: {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let rotated: Vec<&String> = keys.iter().filter(|k| k.ends_with(".jsonl.gz")).collect();
    for k in &rotated {
        assert!(k.starts_with(&format!("logs/edge-1/{today}/")), "{k}");
        // Byte for byte the local file.
        let name = k.rsplit('/').next().unwrap();
        let local = std::fs::read(h.dir.path().join(name)).unwrap();
        let remote = root
            .get_object()
            .bucket("audit-archive")
            .key(k.as_str())
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(remote.as_ref(), local.as_slice(), "{k}");
    }
    // Each delivery is in the log, signed with s3warden's own credentials.
    // The records of the last deliveries may still be on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records = all_records(&h);
    let stored: Vec<_> = records
        .iter()
        .filter(|r| r["operation"] == "DeliverAuditLog" && r["status"] == 200)
        .collect();
    assert!(stored.len() >= rotated.len(), "{stored:?}");
    assert!(stored.iter().all(|r| r["auth"]["kind"] == "internal"));
    // Nothing is sent twice: the ledger names each delivered file once.
    let ledger = std::fs::read_to_string(h.dir.path().join("audit.delivered")).unwrap();
    let mut names: Vec<&str> = ledger.lines().collect();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
    assert!(before >= rotated.len());
}
