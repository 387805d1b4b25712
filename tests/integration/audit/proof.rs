//! A log you can prove: one writer per log file, signed checkpoints at an
//! interval, at rotation and at shutdown, `audit public-key`, and `audit
//! verify` catching what the chain alone cannot (a recomputed chain, records
//! cut off the end, a removed file), each instance's log checked on its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use s3warden::config::Config;
use s3warden::server::Server;
use serde_json::Value;

use super::{cli, put_n, rewrite, setup};
use crate::common::*;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn checkpoints(dir: &Path) -> Vec<Value> {
    lines(&dir.join("audit.checkpoints.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The public key of the harness's log, written to a file.
fn public_key_file(dir: &Path) -> PathBuf {
    let (code, pem, err) = cli(&[
        "audit",
        "public-key",
        "--key",
        dir.join("audit.signing.key").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert!(err.starts_with("SHA256:"), "{err}");
    let path = dir.join("audit.pub");
    std::fs::write(&path, pem).unwrap();
    path
}

#[tokio::test]
async fn a_second_writer_on_the_same_log_refuses_to_start() {
    let h = setup("", "").await;
    let other = tempfile::TempDir::new().unwrap();
    let text = config_text_full(other.path(), &embedded_upstream(other.path()), "", "", "")
        .replace(
            &other.path().join("audit.jsonl").display().to_string(),
            &h.audit_path().display().to_string(),
        );
    let config = Config::from_toml(&text, Path::new("t.toml"), other.path()).unwrap();
    let err = Server::start(config).await.err().expect("second writer");
    let message = err.to_string();
    assert!(
        message.contains("already being written by another s3warden"),
        "{message}"
    );
    assert!(message.contains("audit.jsonl.lock"), "{message}");
    // The first writer is untouched and keeps one chain.
    put_n(&h, 2).await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let (code, out, _) = cli(&["audit", "verify", dir.join("audit.jsonl").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn checkpoints_are_signed_at_an_interval_and_at_shutdown() {
    let h = setup("", "checkpoint_secs = 1\ninstance = \"edge-1\"").await;
    put_n(&h, 3).await;
    let dir = h.dir.path().to_path_buf();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while checkpoints(&dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no interval checkpoint"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = checkpoints(&dir)[0].clone();
    assert_eq!(first["reason"], "interval");
    assert_eq!(first["first_seq"], 1);
    assert_eq!(first["instance"], "edge-1");
    put_n(&h, 2).await;
    h.server.shutdown().await;

    let cps = checkpoints(&dir);
    let last = cps.last().unwrap();
    assert_eq!(last["reason"], "shutdown");
    let records = lines(&dir.join("audit.jsonl"));
    let head: Value = serde_json::from_str(records.last().unwrap()).unwrap();
    assert_eq!(last["last_seq"], head["seq"]);
    assert_eq!(last["head_hash"], head["hash"]);
    assert_eq!(last["files"][0]["name"], "audit.jsonl");
    for w in cps.windows(2) {
        assert_eq!(
            w[1]["first_seq"].as_u64(),
            Some(w[0]["last_seq"].as_u64().unwrap() + 1)
        );
    }
    for r in &records {
        let v: Value = serde_json::from_str(r).unwrap();
        assert_eq!(v["instance"], "edge-1");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("audit.signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let public = public_key_file(&dir);
    let log = dir.join("audit.jsonl");
    let (code, out, err) = cli(&[
        "audit",
        "verify",
        "--public-key",
        public.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let n = records.len();
    assert!(
        out.contains(&format!("records 1 to {n}, head hash ")),
        "{out}"
    );
    assert!(out.contains("(instance edge-1)"), "{out}");
    assert!(out.contains("signed by the trusted key SHA256:"), "{out}");
    assert!(
        out.contains("0 records after the last checkpoint not yet covered"),
        "{out}"
    );
    assert!(out.contains("chain intact"), "{out}");

    // A key other than the one that signed is refused.
    let stranger = tempfile::TempDir::new().unwrap();
    let other = s3warden::audit::checkpoint::SigningKey::load_or_create(&stranger.path().join("k"))
        .unwrap();
    let other_pub = stranger.path().join("other.pub");
    std::fs::write(&other_pub, other.public_key().to_pem()).unwrap();
    let (code, out, _) = cli(&[
        "audit",
        "verify",
        "--public-key",
        other_pub.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not the trusted one"), "{out}");
}

#[tokio::test]
async fn verify_catches_truncation_a_recomputed_chain_and_a_removed_file() {
    let h = setup("", "rotate_bytes = 3000\ncompress = false").await;
    put_n(&h, 20).await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let log = dir.join("audit.jsonl");
    let p = log.to_str().unwrap().to_string();
    let public = public_key_file(&dir);
    let verify = || {
        let (code, out, err) = cli(&[
            "audit",
            "verify",
            "--public-key",
            public.to_str().unwrap(),
            &p,
        ]);
        assert_ne!(code, 2, "{err}");
        (code, out)
    };
    let (code, out) = verify();
    assert_eq!(code, 0, "{out}");
    let cps = checkpoints(&dir);
    assert!(
        cps.iter().filter(|c| c["reason"] == "rotation").count() >= 2,
        "a checkpoint at every rotation: {cps:?}"
    );
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("audit-")
        })
        .collect();
    rotated.sort();
    // The newest records: in the live file, or (if a rotation came last) in
    // the newest rotated file.
    let mut files = rotated.clone();
    files.push(log.clone());
    files.retain(|f| !lines(f).is_empty());
    let last = files.pop().unwrap();
    let before = files.pop().unwrap();
    let pristine = std::fs::read_to_string(&last).unwrap();

    // The last record deleted: the shutdown checkpoint vouched for it.
    rewrite(&last, |l| {
        l.pop();
    });
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("are missing from the log"), "{out}");
    std::fs::write(&last, &pristine).unwrap();

    // Records rewritten and every hash after them recomputed: the chain
    // agrees with itself, the signed head hash does not.
    let tail: Value = serde_json::from_str(lines(&before).last().unwrap()).unwrap();
    let mut head = s3warden::audit::chain::ChainHead {
        seq: tail["seq"].as_u64().unwrap(),
        hash: tail["hash"].as_str().unwrap().to_string(),
    };
    rewrite(&last, |l| {
        for line in l.iter_mut() {
            let body = line.split(",\"seq\":").next().unwrap().to_string() + "}";
            let body = body.replace("\"status\":200", "\"status\":404");
            *line = s3warden::audit::chain::seal(&body, &mut head);
        }
    });
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("recomputed"), "{out}");
    std::fs::write(&last, &pristine).unwrap();
    assert_eq!(verify().0, 0);

    // The oldest rotated file removed: the chain then starts late.
    let oldest = std::fs::read(&rotated[0]).unwrap();
    std::fs::remove_file(&rotated[0]).unwrap();
    let (code, out) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("records 1 to "), "{out}");
    assert!(out.contains("removed"), "{out}");
    std::fs::write(&rotated[0], oldest).unwrap();
    assert_eq!(verify().0, 0);
}

#[tokio::test]
async fn a_log_behind_its_checkpoints_is_not_continued() {
    let h = setup("", "").await;
    put_n(&h, 3).await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    rewrite(&dir.join("audit.jsonl"), |l| {
        l.pop();
    });
    let text = config_text_full(&dir, &embedded_upstream(&dir), "", "", "");
    let config = Config::from_toml(&text, Path::new("t.toml"), &dir).unwrap();
    let err = Server::start(config).await.err().expect("refused");
    assert!(
        err.to_string()
            .contains("records were removed or rewritten"),
        "{err}"
    );
}

#[tokio::test]
async fn logs_of_two_instances_are_verified_each_on_its_own() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut logs = Vec::new();
    for name in ["a", "b"] {
        let h = setup("", &format!("instance = \"{name}\"")).await;
        put_n(&h, 2 + logs.len()).await;
        let from = h.dir.path().to_path_buf();
        h.server.shutdown().await;
        for f in ["audit.jsonl", "audit.checkpoints.jsonl"] {
            let to = f.replace("audit", &format!("audit-{name}"));
            std::fs::copy(from.join(f), dir.path().join(to)).unwrap();
        }
        logs.push(dir.path().join(format!("audit-{name}.jsonl")));
    }
    let (code, out, err) = cli(&["audit", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(instance a)") && out.contains("(instance b)"),
        "{out}"
    );
    assert_eq!(out.matches("chain intact").count(), 2, "{out}");
    // Tampering with one names that one only.
    rewrite(&logs[1], |l| {
        l.remove(1);
    });
    let (code, out, _) = cli(&["audit", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches("chain intact").count(), 1, "{out}");
    assert!(out.contains("audit-b.jsonl:"), "{out}");
}

#[tokio::test]
async fn a_pruned_log_without_checkpoints_is_vouched_for_from_its_oldest_record() {
    // A log written before checkpoints existed, whose oldest records were
    // pruned: its first checkpoint starts where the log does.
    let h = setup("", "").await;
    put_n(&h, 4).await;
    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    std::fs::remove_file(dir.join("audit.checkpoints.jsonl")).unwrap();
    rewrite(&dir.join("audit.jsonl"), |l| {
        l.drain(..3);
    });
    let (code, out, _) = cli(&["audit", "verify", dir.join("audit.jsonl").to_str().unwrap()]);
    assert_eq!(code, 1, "nothing vouches for it yet: {out}");

    let text = config_text_full(&dir, &embedded_upstream(&dir), "", "", "");
    let config = Config::from_toml(&text, Path::new("t.toml"), &dir).unwrap();
    let h = Harness {
        server: Server::start(config).await.unwrap(),
        dir: tempfile::TempDir::new().unwrap(),
    };
    h.server.shutdown().await;
    let cps = checkpoints(&dir);
    assert_eq!(cps.len(), 1, "{cps:?}");
    assert_eq!(cps[0]["first_seq"], 4);
    let (code, out, _) = cli(&["audit", "verify", dir.join("audit.jsonl").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("records 4 to 5"), "{out}");
}
