//! docs/audit-queries.md works as written: every jq command and DuckDB
//! query in it runs against a real log and answers the question it asks.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{put_n, request_id, setup};
use crate::common::*;

/// The fenced blocks of `lang` in a markdown text, in order.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    markdown
        .split(&fence)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or("").to_string())
        .collect()
}

fn output_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_documented_jq_and_duckdb_queries_answer_their_questions() {
    let h = setup("", "").await;
    put_n(&h, 2).await;
    h.alice()
        .list_objects_v2()
        .bucket("shared")
        .prefix("bob/")
        .send()
        .await
        .unwrap_err();
    let endpoint = h.endpoint();
    let (_, denied_id, _) = request_id(&format!("{endpoint}/shared/bob/x"), ALICE_SECRET).await;
    h.bob()
        .get_object()
        .bucket("shared")
        .key("alice/0")
        .send()
        .await
        .unwrap_err();
    request_id(
        &format!("{endpoint}/shared/alice/0"),
        "wrong-secret-000000000000000000000000",
    )
    .await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let records = std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .count();

    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit-queries.md"),
    )
    .unwrap();
    let sh = blocks(&doc, "sh");
    assert_eq!(sh.len(), 5, "one check per jq question below");
    let mut answered = 0;
    for block in &sh {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(&dir)
            .env("ID", &denied_id)
            .output()
            .expect("bash, zcat and jq run");
        assert!(
            out.status.success(),
            "{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = output_lines(&out.stdout);
        let question = block.lines().next().unwrap_or("");
        if question.contains("shared/bob/") {
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(lines[0].contains("ListObjectsV2") && lines[1].contains("GetObject"));
        } else if question.contains("Denials per principal") {
            assert_eq!(lines, ["2 alice", "1 bob"]);
        } else if question.contains("Failed sign-ins") {
            assert_eq!(lines.len(), 1, "{lines:?}");
            let cols: Vec<&str> = lines[0].split('\t').collect();
            assert_eq!(
                cols[1..],
                [ALICE_KEY, "alice", "bad signature", "SignatureDoesNotMatch"]
            );
        } else if question.contains("One request") {
            assert_eq!(lines.len(), 1);
            let r: Value = serde_json::from_str(&lines[0]).unwrap();
            assert_eq!(r["request_id"], denied_id.as_str());
        } else if question.contains("CSV") {
            assert_eq!(lines.len(), records, "one row per record");
        } else {
            panic!("no check for {question:?}");
        }
        answered += 1;
    }
    assert_eq!(answered, sh.len());

    let sql = blocks(&doc, "sql");
    let mut args = vec![dir.to_str().unwrap()];
    args.extend(sql.iter().map(String::as_str));
    let out = run_python("duckdb_query.py", &args);
    let answers: Vec<Vec<Vec<Option<String>>>> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(answers.len(), sql.len() - 1, "one answer per query");
    for (query, rows) in sql[1..].iter().zip(&answers) {
        let question = query.lines().next().unwrap_or("");
        let col =
            |i: usize| -> Vec<Option<&str>> { rows.iter().map(|r| r[i].as_deref()).collect() };
        if question.contains("shared/bob/") {
            assert_eq!(col(1), [Some("alice"), Some("alice")]);
            assert_eq!(col(2), [Some("ListObjectsV2"), Some("GetObject")]);
        } else if question.contains("Denials per principal") {
            assert_eq!(col(0), [Some("alice"), Some("bob")]);
            assert_eq!(col(2), [Some("2"), Some("1")]);
        } else if question.contains("Failed sign-ins") {
            assert_eq!(col(0), [Some(ALICE_KEY)]);
            assert_eq!(col(1), [Some("bad signature")]);
        } else if question.contains("per hour") {
            let total: usize = col(2)
                .iter()
                .map(|n| n.unwrap().parse::<usize>().unwrap())
                .sum();
            assert_eq!(total, records);
        } else {
            panic!("no check for {question:?}");
        }
    }
}
