//! The IAM and STS APIs with real clients: an administrator's workflows with
//! boto3 and the aws CLI, the federated-credential recipes (scenarios 1 and
//! 2 of SCENARIOS.md, from their example configs), and AssumeRole.

use crate::common::*;

fn python(args: Vec<String>) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let script = refs[0];
    run_python(script, &refs[1..])
}

async fn in_python(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || python(args))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_administrator_workflow() {
    let h = Harness::embedded().await;
    let out = in_python(vec![
        "boto3_iam_admin.py".into(),
        "workflow".into(),
        h.endpoint(),
        ROOT_KEY.into(),
        ROOT_SECRET.into(),
    ])
    .await;
    assert_eq!(out.trim(), "ok");
    // Every API call left one audit record with its operation and decision.
    let mut create = serde_json::Value::Null;
    for _ in 0..250 {
        if let Some(r) = h
            .audit(0)
            .await
            .into_iter()
            .find(|r| r["operation"] == "iam:CreateUser")
        {
            create = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(create["actions"][0], "iam:CreateUser");
    assert_eq!(create["decision"]["allowed"], true);
    assert_eq!(create["status"], 200);
    let text = std::fs::read_to_string(h.audit_path()).unwrap();
    assert!(
        !text.contains("SecretAccessKey"),
        "a secret reached the audit log"
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_assume_role_with_trust_policy() {
    let h = Harness::embedded().await;
    let out = in_python(vec![
        "boto3_iam_admin.py".into(),
        "roles".into(),
        h.endpoint(),
        ROOT_KEY.into(),
        ROOT_SECRET.into(),
    ])
    .await;
    assert_eq!(out.trim(), "ok");
    // Refusals are audited as refusals, whichever policy refused.
    let mut refused = Vec::new();
    for _ in 0..250 {
        refused = h
            .audit(0)
            .await
            .into_iter()
            .filter(|r| r["operation"] == "sts:AssumeRole" && r["status"] == 403)
            .collect();
        if refused.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused.len() >= 4, "{refused:?}");
    for r in &refused {
        assert_eq!(r["error_code"], "AccessDenied", "{r}");
        if !r["decision"].is_null() {
            assert_eq!(r["decision"]["allowed"], false, "{r}");
        }
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_1_federated_upload_folders() {
    let h = example("federated-uploads").await;
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples/policies/session-template.json");
    let out = in_python(vec![
        "boto3_federation.py".into(),
        "scenario1".into(),
        h.endpoint(),
        "S3WARDENEXAMPLEROOT1".into(),
        "example-root-secret-change-me-00000000000".into(),
        "S3WARDENEXAMPLEISSU1".into(),
        "example-issuer-secret-change-me-000000000".into(),
        template.display().to_string(),
    ])
    .await;
    assert_eq!(out.trim(), "ok");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_2_a_token_never_exceeds_its_issuer() {
    let h = example("token-never-exceeds-issuer").await;
    let out = in_python(vec![
        "boto3_federation.py".into(),
        "scenario2".into(),
        h.endpoint(),
        "S3WARDENEXAMPLEROOT1".into(),
        "example-root-secret-change-me-00000000000".into(),
        "S3WARDENEXAMPLEISSU2".into(),
        "example-issuer-secret-change-me-000000002".into(),
    ])
    .await;
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

fn fails_with(out: &std::process::Output, code: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected {code}, got success");
    assert!(stderr.contains(code), "expected {code}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_administrator_workflow() {
    let h = Harness::embedded().await;
    let endpoint = h.endpoint();
    let work = h.dir.path().join("work");
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&work).unwrap();
        let file = work.join("backup.tar");
        std::fs::write(&file, b"backup bytes").unwrap();
        let policy = work.join("policy.json");
        std::fs::write(
            &policy,
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
              "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
              "Resource": "arn:aws:s3:::cli-backups/*"}]}"#,
        )
        .unwrap();
        let root = |args: &[&str]| run_aws(&endpoint, ROOT_KEY, ROOT_SECRET, args);
        ok(&root(&["s3", "mb", "s3://cli-backups"]));
        ok(&root(&["iam", "create-user", "--user-name", "cli-user"]));
        let key: serde_json::Value = serde_json::from_str(&ok(&root(&[
            "iam",
            "create-access-key",
            "--user-name",
            "cli-user",
        ])))
        .unwrap();
        let id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
        let secret = key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_string();
        ok(&root(&["iam", "create-group", "--group-name", "cli-group"]));
        let doc = format!("file://{}", policy.display());
        ok(&root(&[
            "iam",
            "put-group-policy",
            "--group-name",
            "cli-group",
            "--policy-name",
            "backups",
            "--policy-document",
            &doc,
        ]));
        ok(&root(&[
            "iam",
            "add-user-to-group",
            "--group-name",
            "cli-group",
            "--user-name",
            "cli-user",
        ]));
        let listed = ok(&root(&["iam", "get-group", "--group-name", "cli-group"]));
        assert!(listed.contains("cli-user"), "{listed}");
        let user = |args: &[&str]| run_aws(&endpoint, &id, &secret, args);
        let src = file.display().to_string();
        ok(&user(&["s3", "cp", &src, "s3://cli-backups/nightly/backup.tar"]));
        ok(&user(&[
            "s3",
            "cp",
            "s3://cli-backups/nightly/backup.tar",
            &work.join("back.tar").display().to_string(),
        ]));
        fails_with(&user(&["s3", "ls", "s3://cli-backups/"]), "AccessDenied");
        fails_with(&user(&["iam", "list-users"]), "AccessDenied");
        ok(&root(&[
            "iam",
            "remove-user-from-group",
            "--group-name",
            "cli-group",
            "--user-name",
            "cli-user",
        ]));
        fails_with(
            &user(&["s3", "cp", &src, "s3://cli-backups/nightly/again.tar"]),
            "AccessDenied",
        );
        // The CLI's own error for a duplicate, with AWS's code.
        fails_with(
            &root(&["iam", "create-user", "--user-name", "CLI-USER"]),
            "EntityAlreadyExists",
        );
        fails_with(
            &root(&["iam", "get-user", "--user-name", "nobody"]),
            "NoSuchEntity",
        );
        // Temporary credentials through the CLI, then the session's identity.
        let session_policy = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::cli-backups/nightly/*"}]}"#;
        let fed: serde_json::Value = serde_json::from_str(&ok(&root(&[
            "sts",
            "get-federation-token",
            "--name",
            "cli-fed",
            "--policy",
            session_policy,
            "--duration-seconds",
            "7200",
        ])))
        .unwrap();
        let c = &fed["Credentials"];
        let out = std::process::Command::new("aws")
            .args(["--endpoint-url", &endpoint, "sts", "get-caller-identity"])
            .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
            .env("AWS_SECRET_ACCESS_KEY", c["SecretAccessKey"].as_str().unwrap())
            .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .output()
            .unwrap();
        assert!(ok(&out).contains("federated-user/cli-fed"));
        // Root sessions last at most an hour.
        let expiration = chrono::DateTime::parse_from_rfc3339(c["Expiration"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(expiration <= chrono::Utc::now() + chrono::Duration::seconds(3605));
    })
    .await
    .unwrap();
    h.server.shutdown().await;
}
