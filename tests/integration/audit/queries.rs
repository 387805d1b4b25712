//! The `audit` command as an auditor uses it: CSV with chosen columns, a
//! request id from an S3 error, operations by S3 or IAM name, reason,
//! statement and error code filters, local dates, a summary by reason,
//! statement and error code, corrupt lines skipped (and named) by queries but
//! failed by `verify`, and the logs of two instances merged by time.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use super::{cli, put_n, request_id, setup};
use crate::common::*;

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn an_auditors_questions_answered_from_the_command_line() {
    let h = setup("", "instance = \"edge-1\"").await;
    put_n(&h, 2).await;
    let endpoint = h.endpoint();
    let (status, denied_id, body) =
        request_id(&format!("{endpoint}/shared/bob/x"), ALICE_SECRET).await;
    assert_eq!(status, 403);
    assert!(body.contains(&denied_id), "S3 errors carry the request id");
    let (status, badsig_id, _) = request_id(
        &format!("{endpoint}/shared/alice/0"),
        "wrong-secret-000000000000000000000000",
    )
    .await;
    assert_eq!(status, 403);
    h.alice()
        .get_object()
        .bucket("shared")
        .key("alice/0")
        .send()
        .await
        .unwrap();
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let log = dir.join("audit.jsonl");
    let p = log.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["audit", p];
        all.extend_from_slice(args);
        let (code, out, err) = cli(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };

    let one = json_lines(&run(&["--format", "json", "--request-id", &denied_id]));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["request_id"], denied_id.as_str());
    assert_eq!(one[0]["instance"], "edge-1");

    let csv = run(&[
        "--format",
        "csv",
        "--columns",
        "request_id,principal,operation,decision,status,error_code,reason",
        "--error-code",
        "AccessDenied",
    ]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "request_id,principal,operation,decision,status,error_code,reason"
    );
    assert_eq!(
        rows[1],
        format!("{denied_id},alice,GetObject,deny,403,AccessDenied,no statement allows")
    );
    assert_eq!(rows.len(), 2, "{csv}");
    let default_csv = run(&["--format", "csv", "--request-id", &badsig_id]);
    assert!(
        default_csv.starts_with("time,instance,request_id,principal,"),
        "{default_csv}"
    );
    assert!(
        default_csv.contains("SignatureDoesNotMatch"),
        "{default_csv}"
    );

    // IAM action names and S3 names alike, repeatable.
    let ops = json_lines(&run(&[
        "--json",
        "--operation",
        "s3:GetObject",
        "--operation",
        "CreateBucket",
    ]));
    // The failed sign-in was never classified: it names no operation.
    assert_eq!(ops.len(), 3, "a get, a denied get, CreateBucket");
    assert_eq!(
        json_lines(&run(&["--json", "--operation", "s3:PutObject"])).len(),
        2
    );
    assert_eq!(
        json_lines(&run(&["--json", "--reason", "no statement allows"])).len(),
        1
    );
    let by_sid = json_lines(&run(&["--json", "--statement", "OwnObjects"]));
    assert_eq!(by_sid.len(), 3, "two puts and a get");
    let policy = by_sid[0]["decision"]["policy"].as_str().unwrap();
    let qualified = format!("{policy}/OwnObjects");
    assert_eq!(
        json_lines(&run(&["--json", "--statement", &qualified])).len(),
        3
    );
    assert_eq!(
        json_lines(&run(&["--json", "--since", "today", "--until", "now"])).len(),
        6
    );
    assert_eq!(
        json_lines(&run(&["--json", "--until", "yesterday"])).len(),
        0
    );

    let table = run(&["--request-id", &denied_id]);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("ERROR_CODE") && header.contains("REASON"),
        "{table}"
    );
    assert!(
        table.contains("AccessDenied") && table.contains("no statement allows"),
        "{table}"
    );

    let summary = run(&["--summary"]);
    for section in ["BY REASON", "BY STATEMENT", "BY ERROR CODE"] {
        assert!(summary.contains(section), "{summary}");
    }
    let s: Value = serde_json::from_str(&run(&["--summary", "--json"])).unwrap();
    assert_eq!(s["by_error_code"]["AccessDenied"], 1);
    assert_eq!(s["by_error_code"]["SignatureDoesNotMatch"], 1);
    assert_eq!(s["by_statement"][&qualified]["allow"], 3);
    assert_eq!(s["by_reason"]["no statement allows"], 1);

    let (code, _, err) = cli(&["audit", p, "--columns", "time,nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown column \"nope\""), "{err}");
    let (code, _, err) = cli(&["audit", p, "--since", "someday"]);
    assert_eq!(code, 2);
    assert!(err.contains("yesterday"), "{err}");
}

#[tokio::test]
async fn a_corrupt_line_is_skipped_by_queries_and_failed_by_verify() {
    let h = setup("", "").await;
    put_n(&h, 3).await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let log = dir.join("audit.jsonl");
    super::rewrite(&log, |l| {
        l.insert(2, "{\"time\":\"2026-01-01T00:0".to_string())
    });
    let p = log.to_str().unwrap();
    let (code, out, err) = cli(&["audit", p, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "the other records are all there");
    assert!(
        err.contains(&format!("{p}:3: not an audit record")),
        "{err}"
    );
    let (code, out, _) = cli(&["audit", "verify", p]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{p}:3: not a chained audit record")),
        "{out}"
    );
}

#[tokio::test]
async fn logs_of_several_instances_are_read_together_in_time_order() {
    let dir = tempfile::TempDir::new().unwrap();
    let a = setup("", "instance = \"a\"").await;
    let b = setup("", "instance = \"b\"").await;
    for i in 0..3 {
        for (h, who) in [(&a, "a"), (&b, "b")] {
            h.alice()
                .put_object()
                .bucket("shared")
                .key(format!("alice/{who}{i}"))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .unwrap();
        }
    }
    for (h, name) in [(a, "a"), (b, "b")] {
        let from = h.dir.path().to_path_buf();
        h.server.shutdown().await;
        copy_log(&from, dir.path(), name);
    }
    let (code, out, err) = cli(&[
        "audit",
        dir.path().to_str().unwrap(),
        "--json",
        "--operation",
        "PutObject",
    ]);
    assert_eq!(code, 0, "{err}");
    let records = json_lines(&out);
    let keys: Vec<&str> = records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "alice/a0", "alice/b0", "alice/a1", "alice/b1", "alice/a2", "alice/b2"
        ]
    );
    let instances: Vec<&str> = records
        .iter()
        .map(|r| r["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances, ["a", "b", "a", "b", "a", "b"]);
}

fn copy_log(from: &Path, to: &Path, name: &str) {
    for f in ["audit.jsonl", "audit.checkpoints.jsonl"] {
        let target = f.replace("audit", &format!("audit-{name}"));
        std::fs::copy(from.join(f), to.join(target)).unwrap();
    }
}
