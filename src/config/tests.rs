//! Config parsing and validation: defaults, and errors that name the key.

use std::path::Path;

use super::*;

const MINIMAL: &str = r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "ROOTACCESSKEY0001"
secret_access_key = "rootsecretrootsecret"
[upstream]
endpoint = "embedded"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"), Path::new("."))
}

fn invalid_key(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.region, "us-east-1");
    assert!(c.is_embedded());
    assert!(c.upstream.path_style);
    assert_eq!(c.audit.path, "./data/audit.jsonl");
    assert_eq!(c.audit.compress_level, 3);
    assert_eq!(c.store.path, Path::new("./data/identity"));
}

#[test]
fn the_audit_gzip_level_is_one_to_nine() {
    for (level, ok) in [(0, false), (1, true), (9, true), (10, false)] {
        let text = format!("{MINIMAL}\n[audit]\ncompress_level = {level}\n");
        if ok {
            assert_eq!(parse(&text).unwrap().audit.compress_level, level);
        } else {
            assert_eq!(invalid_key(&text), "audit.compress_level");
        }
    }
}

#[test]
fn unknown_key_is_named() {
    let err = parse(&format!("{MINIMAL}\n[audit]\npth = \"x\"\n")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("pth"), "{msg}");
}

#[test]
fn bad_upstream_endpoint_is_named() {
    let text = MINIMAL.replace("\"embedded\"", "\"ftp://x\"");
    assert_eq!(invalid_key(&text), "upstream.endpoint");
}

#[test]
fn half_upstream_credentials_rejected() {
    let text = format!(
        "{}\naccess_key_id = \"AKIAUPSTREAM00001\"\n",
        MINIMAL.replace("\"embedded\"", "\"http://127.0.0.1:9\"")
    );
    assert_eq!(invalid_key(&text), "upstream.secret_access_key");
}

#[test]
fn user_in_undeclared_group_rejected() {
    let text = format!("{MINIMAL}\n[[users]]\nname = \"bob\"\ngroups = [\"nope\"]\n");
    assert_eq!(invalid_key(&text), "users.bob.groups");
}

#[test]
fn duplicate_access_key_rejected() {
    let text = format!(
        "{MINIMAL}\n[[users]]\nname = \"bob\"\naccess_keys = [{{ access_key_id = \"ROOTACCESSKEY0001\", secret_access_key = \"bobsecretbobsecret\" }}]\n"
    );
    assert_eq!(invalid_key(&text), "users.bob.access_keys");
}

#[test]
fn malformed_policy_names_the_policy() {
    let text = format!(
        "{MINIMAL}\n[[groups]]\nname = \"g\"\npolicies = [{{ name = \"p\", document = '{{\"Statement\": 5}}' }}]\n"
    );
    assert_eq!(invalid_key(&text), "groups.g.policies.p");
}

#[test]
fn policy_needs_document_or_file() {
    let text = format!("{MINIMAL}\n[[groups]]\nname = \"g\"\npolicies = [{{ name = \"p\" }}]\n");
    assert_eq!(invalid_key(&text), "groups.g.policies.p");
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = parse(MINIMAL).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("rootsecretrootsecret"), "{dbg}");
}

#[test]
fn session_and_store_keys_are_validated() {
    assert_eq!(
        invalid_key(&format!("{MINIMAL}\n[sessions]\ncache_capacity = 0\n")),
        "sessions.cache_capacity"
    );
    assert_eq!(
        invalid_key(&format!("{MINIMAL}\n[sessions]\nkey_file = \"\"\n")),
        "sessions.key_file"
    );
    assert_eq!(
        invalid_key(&format!("{MINIMAL}\n[store]\npath = \"\"\n")),
        "store.path"
    );
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.sessions.key_file, Path::new("./data/session.key"));
    assert_eq!(c.sessions.cache_capacity, 100_000);
}

#[test]
fn sigv2_is_on_by_default_and_can_be_switched_off() {
    assert!(parse(MINIMAL).unwrap().auth.sigv2);
    let off = parse(&format!("{MINIMAL}\n[auth]\nsigv2 = false\n")).unwrap();
    assert!(!off.auth.sigv2);
    // A typo or a wrong type is named, never silently ignored.
    let typo = parse(&format!("{MINIMAL}\n[auth]\nsigv_2 = false\n")).unwrap_err();
    assert!(typo.to_string().contains("sigv_2"), "{typo}");
    let wrong = parse(&format!("{MINIMAL}\n[auth]\nsigv2 = \"no\"\n")).unwrap_err();
    assert!(wrong.to_string().contains("sigv2"), "{wrong}");
}

#[test]
fn a_missing_policy_file_error_names_the_absolute_path_tried() {
    let text = format!(
        "{MINIMAL}\n[[groups]]\nname = \"g\"\npolicies = [{{ name = \"p\", file = \"policies/absent.json\" }}]\n"
    );
    let err = Config::from_toml(&text, Path::new("conf/s3warden.toml"), Path::new("conf"))
        .unwrap_err()
        .to_string();
    let expected = std::env::current_dir()
        .unwrap()
        .join("conf/policies/absent.json");
    assert!(
        err.contains(&expected.display().to_string()),
        "error does not name {expected:?}: {err}"
    );
    assert!(err.contains("groups.g.policies.p.file"), "{err}");
}

/// Every `toml` block of the README parses, and so does every commented
/// line in it that looks like a key or a table once uncommented: readers
/// copy them into their configs.
#[test]
fn readme_toml_snippets_are_valid_when_uncommented() {
    let readme = include_str!("../../README.md");
    let mut blocks = 0;
    for block in readme.split("```toml\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        blocks += 1;
        toml::from_str::<toml::Table>(block)
            .unwrap_or_else(|e| panic!("README toml block does not parse: {e}\n{block}"));
        for line in block.lines() {
            let Some(rest) = line.trim_start().strip_prefix("# ") else {
                continue;
            };
            // The snippet is what precedes its own trailing comment.
            let snippet = rest.split("  #").next().unwrap_or_default().trim();
            let looks_like_toml = snippet.starts_with('[')
                || snippet
                    .split_once(" = ")
                    .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if looks_like_toml {
                toml::from_str::<toml::Table>(snippet).unwrap_or_else(|e| {
                    panic!("commented README snippet is not valid TOML: {snippet:?}: {e}")
                });
            }
        }
    }
    assert!(blocks >= 2, "README toml blocks not found");
}

#[test]
fn timeouts_and_limits_of_the_connection_deadlines_are_validated() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.limits.shutdown_grace_secs, 10);
    assert_eq!(c.limits.body_idle_timeout_secs, 20);
    assert_eq!(c.limits.max_header_bytes, 16 * 1024);
    assert_eq!(c.upstream.idle_timeout_secs, 60);
    assert_eq!(c.upstream.response_timeout_secs, 60);
    for (section, key) in [
        ("limits", "header_read_timeout_secs"),
        ("limits", "body_idle_timeout_secs"),
    ] {
        let text = format!("{MINIMAL}\n[{section}]\n{key} = 0\n");
        assert_eq!(invalid_key(&text), format!("{section}.{key}"));
    }
    for key in ["idle_timeout_secs", "response_timeout_secs"] {
        let text = MINIMAL.replace(
            "endpoint = \"embedded\"",
            &format!("endpoint = \"embedded\"\n{key} = 0"),
        );
        assert_eq!(invalid_key(&text), format!("upstream.{key}"));
    }
    for bytes in [1024, 2 * 1024 * 1024] {
        let text = format!("{MINIMAL}\n[limits]\nmax_header_bytes = {bytes}\n");
        assert_eq!(invalid_key(&text), "limits.max_header_bytes");
    }
}

#[test]
fn declared_oidc_providers_are_validated() {
    let ok = format!(
        "{MINIMAL}\n[[oidc_providers]]\nurl = \"https://idp.example.com/realms/a/\"\nclient_ids = [\"app\"]\n"
    );
    assert_eq!(parse(&ok).unwrap().oidc_providers.len(), 1);
    let http = format!("{MINIMAL}\n[[oidc_providers]]\nurl = \"http://idp.example.com\"\n");
    assert_eq!(invalid_key(&http), "oidc_providers[0].url");
    let twice = format!(
        "{MINIMAL}\n[[oidc_providers]]\nurl = \"https://idp.example.com\"\n[[oidc_providers]]\nurl = \"https://idp.example.com/\"\n"
    );
    assert_eq!(invalid_key(&twice), "oidc_providers[1].url");
    let empty_id = format!(
        "{MINIMAL}\n[[oidc_providers]]\nurl = \"https://idp.example.com\"\nclient_ids = [\"\"]\n"
    );
    assert_eq!(invalid_key(&empty_id), "oidc_providers[0].client_ids");
}

#[test]
fn declared_provider_tags_and_tag_claims_are_validated() {
    let with = |extra: &str| {
        format!("{MINIMAL}\n[[oidc_providers]]\nurl = \"https://idp.example.com\"\n{extra}\n")
    };
    let ok = parse(&with(
        "tags = { env = \"prod\", Env = \"x\" }\ntag_claims = { team = \"team\", cost = \"cost_center\" }",
    ))
    .unwrap();
    assert_eq!(ok.oidc_providers[0].tags.len(), 2);
    assert_eq!(ok.oidc_providers[0].tag_claims["cost"], "cost_center");
    for (extra, key) in [
        ("tags = { \"aws:env\" = \"x\" }", "oidc_providers[0].tags"),
        ("tags = { env = \"a;b\" }", "oidc_providers[0].tags"),
        ("tags = { \"\" = \"x\" }", "oidc_providers[0].tags"),
        (
            "tag_claims = { team = \"team\", TEAM = \"group\" }",
            "oidc_providers[0].tag_claims",
        ),
        (
            "tag_claims = { team = \"\" }",
            "oidc_providers[0].tag_claims",
        ),
        (
            "tag_claims = { \"aws:team\" = \"team\" }",
            "oidc_providers[0].tag_claims",
        ),
    ] {
        assert_eq!(invalid_key(&with(extra)), key, "{extra}");
    }
    let many: Vec<String> = (0..51).map(|i| format!("k{i} = \"v\"")).collect();
    assert_eq!(
        invalid_key(&with(&format!("tags = {{ {} }}", many.join(", ")))),
        "oidc_providers[0].tags"
    );
}

#[test]
fn workers_default_to_one_per_core_and_are_bounded() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(parse(MINIMAL).unwrap().worker_count(), cores);
    let three = MINIMAL.replacen("listen", "workers = 3\nlisten", 1);
    assert_eq!(parse(&three).unwrap().worker_count(), 3);
    for bad in ["0", "257"] {
        let text = MINIMAL.replacen("listen", &format!("workers = {bad}\nlisten"), 1);
        assert_eq!(invalid_key(&text), "workers");
    }
}
