//! `s3warden policy check`: the simulator as users run it, on the shipped
//! dev config and on a config whose policy has lint findings.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_s3warden");

fn check(config: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["policy", "check", "--config", config])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dev() -> String {
    format!("{}/config/dev.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn allow_and_deny_with_explanations_and_exit_codes() {
    let (code, out, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--action",
            "s3:PutObject",
            "--resource",
            "arn:aws:s3:::shared/alice/a.txt",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("Allow: allowed by group/prefix-users/own-prefix statement OwnObjects"),
        "{out}"
    );

    let (code, out, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--action",
            "s3:PutObject",
            "--resource",
            "arn:aws:s3:::shared/bob/a.txt",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("Deny: no statement allows"), "{out}");
}

#[test]
fn request_lines_are_classified_first() {
    let (code, out, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--request",
            "GET /shared?list-type=2&prefix=alice/&delimiter=/",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("operation ListObjectsV2"), "{out}");
    assert!(out.contains("statement ListOwnPrefix"), "{out}");

    let (code, out, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--request",
            "PUT /shared/alice/x",
            "--header",
            "x-amz-copy-source: shared/bob/secret",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("operation CopyObject"), "{out}");
    assert!(
        out.contains("deny  s3:GetObject on arn:aws:s3:::shared/bob/secret"),
        "{out}"
    );

    let (code, _, err) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--request",
            "GET /shared/alice/x?frobnicate",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("frobnicate"), "{err}");
}

#[test]
fn context_and_session_policy() {
    let dir = tempfile::TempDir::new().unwrap();
    let session = dir.path().join("session.json");
    std::fs::write(
        &session,
        r#"{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}"#,
    )
    .unwrap();
    let s = session.to_str().unwrap();
    let (code, out, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--session-policy",
            s,
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::shared/alice/x",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("and session policy session"), "{out}");
    let (code, out, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--session-policy",
            s,
            "--action",
            "s3:PutObject",
            "--resource",
            "arn:aws:s3:::shared/alice/x",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no session policy statement allows"), "{out}");
    // The prefix condition reads s3:prefix from the context.
    let (code, _, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--action",
            "s3:ListBucket",
            "--resource",
            "arn:aws:s3:::shared",
            "--context",
            "s3:prefix=alice/photos/",
        ],
    );
    assert_eq!(code, 0);
    let (code, _, _) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--action",
            "s3:ListBucket",
            "--resource",
            "arn:aws:s3:::shared",
            "--context",
            "s3:prefix=bob/",
        ],
    );
    assert_eq!(code, 1);
}

#[test]
fn lint_reports_unknown_keys_and_dead_statements() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "ROOTKEYFORTESTS00001"
secret_access_key = "root-secret-for-tests-000000000000000000"
[upstream]
endpoint = "embedded"
[[users]]
name = "carol"
policies = [{ name = "odd", document = '''{"Version": "2012-10-17", "Statement": [
  {"Sid": "Typo", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
   "Condition": {"StringEquals": {"s3:prefx": "x/"}}}]}''' }]
"#,
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (code, out, _) = check(c, &["--user", "carol", "--lint"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lint user/carol/odd") && out.contains("s3:prefx"),
        "{out}"
    );
    let (code, _, err) = check(
        c,
        &[
            "--user",
            "nobody",
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::b/k",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("nobody"));
    let (code, _, err) = check(&dev(), &["--user", "alice"]);
    assert_eq!(code, 2);
    assert!(err.contains("--action"), "{err}");
    // --lint alone covers every identity of the config.
    let (code, out, _) = check(c, &["--lint"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("lint user/carol/odd"), "{out}");
    // A resource that is not an ARN is an error, not a silent Deny.
    let (code, _, err) = check(
        &dev(),
        &[
            "--user",
            "alice",
            "--action",
            "s3:GetObject",
            "--resource",
            "shared/alice/a.txt",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("is not an ARN"), "{err}");
    // Without --user and without --lint, the missing user is named.
    let (code, _, err) = check(
        &dev(),
        &["--action", "s3:GetObject", "--resource", "arn:aws:s3:::b/k"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--user"), "{err}");
}
