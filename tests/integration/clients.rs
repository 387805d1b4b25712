//! Real clients through s3warden over the embedded store: boto3 and the aws
//! CLI at their default settings, as a user confined to its own prefix.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_user_works_in_its_prefix_and_nowhere_else() {
    let h = Harness::embedded().await;
    let endpoint = h.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            "boto3_prefix_user.py",
            &[
                &endpoint,
                ROOT_KEY,
                ROOT_SECRET,
                "alice",
                ALICE_KEY,
                ALICE_SECRET,
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.trim(), "ok");
    h.server.shutdown().await;
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "aws failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn denied(out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure, got success");
    assert!(
        stderr.contains("AccessDenied") || stderr.contains("403"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_copies_and_syncs_under_the_prefix_and_is_denied_outside() {
    let h = Harness::embedded().await;
    let endpoint = h.endpoint();
    let work = h.dir.path().join("work");
    std::fs::create_dir_all(work.join("photos/2024")).unwrap();
    std::fs::write(work.join("report.txt"), b"quarterly numbers").unwrap();
    std::fs::write(work.join("photos/a.jpg"), vec![7u8; 300_000]).unwrap();
    std::fs::write(work.join("photos/2024/b.jpg"), vec![9u8; 10_000_000]).unwrap();
    let w = work.clone();
    tokio::task::spawn_blocking(move || {
        let root = |args: &[&str]| run_aws(&endpoint, ROOT_KEY, ROOT_SECRET, args);
        let alice = |args: &[&str]| run_aws(&endpoint, ALICE_KEY, ALICE_SECRET, args);
        ok(&root(&["s3", "mb", "s3://shared"]));
        ok(&root(&[
            "s3",
            "cp",
            w.join("report.txt").to_str().unwrap(),
            "s3://shared/bob/report.txt",
        ]));

        ok(&alice(&[
            "s3",
            "cp",
            w.join("report.txt").to_str().unwrap(),
            "s3://shared/alice/report.txt",
        ]));
        ok(&alice(&[
            "s3",
            "sync",
            w.join("photos").to_str().unwrap(),
            "s3://shared/alice/photos/",
        ]));
        let listing = ok(&alice(&["s3", "ls", "--recursive", "s3://shared/alice/"]));
        for k in [
            "alice/report.txt",
            "alice/photos/a.jpg",
            "alice/photos/2024/b.jpg",
        ] {
            assert!(listing.contains(k), "{k} missing from:\n{listing}");
        }
        // A second sync has nothing to do.
        let again = ok(&alice(&[
            "s3",
            "sync",
            w.join("photos").to_str().unwrap(),
            "s3://shared/alice/photos/",
        ]));
        assert!(again.trim().is_empty(), "{again}");
        let down = w.join("down");
        ok(&alice(&[
            "s3",
            "sync",
            "s3://shared/alice/photos/",
            down.to_str().unwrap(),
        ]));
        assert_eq!(
            std::fs::read(down.join("2024/b.jpg")).unwrap(),
            vec![9u8; 10_000_000]
        );

        denied(&alice(&[
            "s3",
            "cp",
            w.join("report.txt").to_str().unwrap(),
            "s3://shared/bob/mine.txt",
        ]));
        denied(&alice(&[
            "s3",
            "cp",
            "s3://shared/bob/report.txt",
            w.join("stolen.txt").to_str().unwrap(),
        ]));
        denied(&alice(&["s3", "ls", "s3://shared/bob/"]));
        ok(&alice(&["s3", "rm", "s3://shared/alice/report.txt"]));
    })
    .await
    .unwrap();

    let records = h.audit(1).await;
    let alice: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["principal"]["user_name"] == "alice")
        .collect();
    assert!(
        alice
            .iter()
            .any(|r| r["decision"]["allowed"] == true && r["operation"] == "PutObject")
    );
    let denials: Vec<_> = alice
        .iter()
        .filter(|r| r["decision"]["allowed"] == false)
        .collect();
    assert!(
        denials
            .iter()
            .any(|r| r["operation"] == "PutObject" && r["key"] == "bob/mine.txt"),
        "{denials:?}"
    );
    assert!(
        denials.iter().any(|r| r["operation"] == "ListObjectsV2"),
        "{denials:?}"
    );
    assert!(denials.iter().all(|r| r["status"] == 403));
    h.server.shutdown().await;
}
