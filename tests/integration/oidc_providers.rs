//! OpenID Connect providers through the IAM API: created, read, listed,
//! given another client id, tagged and deleted with AWS's shapes and errors;
//! kept (tags included) by the file store across a restart and by
//! PostgreSQL, and seen by every instance of a fleet.

use crate::common::*;
use crate::fleet::Fleet;

const ARN: &str = "arn:aws:iam::000000000000:oidc-provider/login.example.com/realms/apps";

async fn ok(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, "iam", params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

async fn refused(e: &str, params: &[(&str, &str)]) -> (u16, String) {
    let (s, b) = api_call(e, "iam", params).await;
    (s, xml_code(&b))
}

fn add_client(id: &str) -> [(&str, &str); 3] {
    [
        ("Action", "AddClientIDToOpenIDConnectProvider"),
        ("OpenIDConnectProviderArn", ARN),
        ("ClientID", id),
    ]
}

async fn create(e: &str) -> String {
    ok(
        e,
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", "https://login.example.com/realms/apps/"),
            ("ClientIDList.member.1", "web-app"),
            (
                "ThumbprintList.member.1",
                "9E99A48A9960B14926BB7F3B02E22DA2B0AB7280",
            ),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "prod"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_created_read_listed_extended_and_deleted_as_iam_does() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    let created = create(&e).await;
    assert_eq!(xml_text(&created, "OpenIDConnectProviderArn"), ARN);
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "CreateOpenIDConnectProvider"),
                ("Url", "https://login.example.com/realms/apps"),
                ("ClientIDList.member.1", "other"),
            ],
        )
        .await,
        (409, "EntityAlreadyExists".into())
    );
    for url in [
        "http://login.example.com",
        "https://",
        "https://a.example/x?y=1",
    ] {
        assert_eq!(
            refused(
                &e,
                &[("Action", "CreateOpenIDConnectProvider"), ("Url", url)]
            )
            .await
            .1,
            "InvalidInput",
            "{url}"
        );
    }
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "CreateOpenIDConnectProvider"),
                ("Url", "https://b.example.com"),
                ("ThumbprintList.member.1", "not-hex"),
            ],
        )
        .await,
        (400, "ValidationError".into())
    );

    ok(&e, &add_client("cli")).await;
    // Adding one it has already changes nothing.
    ok(&e, &add_client("cli")).await;
    let got = ok(
        &e,
        &[
            ("Action", "GetOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
        ],
    )
    .await;
    assert_eq!(xml_text(&got, "Url"), "login.example.com/realms/apps");
    assert!(
        got.contains("<ClientIDList><member>web-app</member><member>cli</member></ClientIDList>"),
        "{got}"
    );
    assert!(
        got.contains("<member>9e99a48a9960b14926bb7f3b02e22da2b0ab7280</member>"),
        "{got}"
    );

    // The aws CLI reads it in its own shapes.
    let e2 = e.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_aws(
            &e2,
            ROOT_KEY,
            ROOT_SECRET,
            &["iam", "list-open-id-connect-providers", "--output", "json"],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed["OpenIDConnectProviderList"][0]["Arn"],
        serde_json::json!(ARN)
    );

    // Alice (no IAM permissions) may not create one.
    let (s, b) = api_call_as(
        &e,
        "iam",
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", "https://c.example.com"),
        ],
        ALICE_KEY,
        ALICE_SECRET,
        None,
    )
    .await;
    assert_eq!((s, xml_code(&b)), (403, "AccessDenied".into()), "{b}");

    ok(
        &e,
        &[
            ("Action", "DeleteOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
        ],
    )
    .await;
    assert_eq!(
        refused(
            &e,
            &[
                ("Action", "GetOpenIDConnectProvider"),
                ("OpenIDConnectProviderArn", ARN),
            ],
        )
        .await,
        (404, "NoSuchEntity".into())
    );
    assert_eq!(
        refused(&e, &add_client("x")).await,
        (404, "NoSuchEntity".into())
    );
    // Deleting what does not exist is not an error, as in IAM.
    ok(
        &e,
        &[
            ("Action", "DeleteOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
        ],
    )
    .await;
    let listed = ok(&e, &[("Action", "ListOpenIDConnectProviders")]).await;
    assert!(!listed.contains("<Arn>"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_survives_a_restart_of_the_file_store() {
    let h = Harness::embedded().await;
    create(&h.endpoint()).await;
    let Harness { server, dir } = h;
    server.shutdown().await;
    let text = config_text(dir.path(), &embedded_upstream(dir.path()), "");
    let h = Harness::start(dir, &text).await;
    let got = ok(
        &h.endpoint(),
        &[
            ("Action", "GetOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
        ],
    )
    .await;
    assert!(got.contains("<member>web-app</member>"), "{got}");
    assert!(
        got.contains("<Tags><member><Key>env</Key><Value>prod</Value></member></Tags>"),
        "{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_made_on_one_instance_is_seen_and_removed_on_the_others() {
    let f = Fleet::start(2).await;
    let (a, b) = (f.endpoint(0), f.endpoint(1));
    create(&a).await;
    let get = [
        ("Action", "GetOpenIDConnectProvider"),
        ("OpenIDConnectProviderArn", ARN),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (s, body) = api_call(&b, "iam", &get).await;
        if s == 200 {
            assert!(body.contains("<member>web-app</member>"), "{body}");
            assert!(body.contains("<Key>env</Key><Value>prod</Value>"), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ok(&b, &add_client("cli")).await;
    ok(
        &a,
        &[
            ("Action", "DeleteOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
        ],
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while api_call(&b, "iam", &get).await.0 != 404 {
        assert!(std::time::Instant::now() < deadline, "still on b");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The aws CLI's JSON answer to `args`, as root.
async fn cli_json(e: &str, args: &[&str]) -> serde_json::Value {
    let e = e.to_string();
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--output".into(), "json".into()]);
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        run_aws(&e, ROOT_KEY, ROOT_SECRET, &args)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `aws iam list-open-id-connect-provider-tags` of the provider [`ARN`].
async fn cli_tags(e: &str) -> serde_json::Value {
    let args = [
        "iam",
        "list-open-id-connect-provider-tags",
        "--open-id-connect-provider-arn",
    ];
    cli_json(e, &[&args[..], &[ARN]].concat()).await
}

fn tag_list(v: &serde_json::Value) -> Vec<(String, String)> {
    v["Tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["Key"].as_str().unwrap().to_string(),
                        t["Value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_tagged_untagged_and_listed_with_the_aws_cli_as_iam_does() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    let created = cli_json(
        &e,
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            "https://login.example.com/realms/apps",
            "--client-id-list",
            "web-app",
            "--tags",
            "Key=env,Value=prod",
        ],
    )
    .await;
    assert_eq!(created["OpenIDConnectProviderArn"], ARN);
    // Keys on providers compare with their case: `team` and `Team` are two tags.
    cli_json(
        &e,
        &[
            "iam",
            "tag-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            ARN,
            "--tags",
            "Key=team,Value=blue",
            "Key=Team,Value=red",
            "Key=env,Value=dev",
        ],
    )
    .await;
    let listed = cli_tags(&e).await;
    assert_eq!(
        tag_list(&listed),
        pairs(&[("env", "dev"), ("team", "blue"), ("Team", "red")])
    );
    let got = cli_json(
        &e,
        &[
            "iam",
            "get-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            ARN,
        ],
    )
    .await;
    assert_eq!(tag_list(&got), tag_list(&listed));
    cli_json(
        &e,
        &[
            "iam",
            "untag-open-id-connect-provider",
            "--open-id-connect-provider-arn",
            ARN,
            "--tag-keys",
            "team",
        ],
    )
    .await;
    let listed = cli_tags(&e).await;
    assert_eq!(tag_list(&listed), pairs(&[("env", "dev"), ("Team", "red")]));

    // IAM's limits and errors.
    let tag = |k: &'static str, v: &'static str| {
        vec![
            ("Action", "TagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
            ("Tags.member.1.Key", k),
            ("Tags.member.1.Value", v),
        ]
    };
    assert_eq!(
        refused(&e, &tag("aws:team", "x")).await,
        (400, "InvalidInput".into())
    );
    assert_eq!(
        refused(&e, &tag("team", "semi;colon")).await,
        (400, "ValidationError".into())
    );
    let keys: Vec<String> = (0..49).map(|i| format!("k{i}")).collect();
    let mut many = vec![
        ("Action", "TagOpenIDConnectProvider".to_string()),
        ("OpenIDConnectProviderArn", ARN.to_string()),
    ];
    let names: Vec<(String, String)> = (1..=49)
        .map(|i| {
            (
                format!("Tags.member.{i}.Key"),
                format!("Tags.member.{i}.Value"),
            )
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        many.push((names[i].0.as_str(), k.clone()));
        many.push((names[i].1.as_str(), "v".to_string()));
    }
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Two tags already, 49 more: 51.
    assert_eq!(refused(&e, &many).await, (409, "LimitExceeded".into()));
    let other = "arn:aws:iam::000000000000:oidc-provider/nowhere.example.com";
    for params in [
        vec![
            ("Action", "TagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", other),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.1.Value", "b"),
        ],
        vec![
            ("Action", "UntagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", other),
            ("TagKeys.member.1", "a"),
        ],
        vec![
            ("Action", "ListOpenIDConnectProviderTags"),
            ("OpenIDConnectProviderArn", other),
        ],
    ] {
        assert_eq!(
            refused(&e, &params).await,
            (404, "NoSuchEntity".into()),
            "{params:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_a_provider_is_authorized_by_its_tags_and_the_requests() {
    let h = Harness::embedded_with(
        "\n[[oidc_providers]]\nurl = \"https://declared.example.com\"\nclient_ids = [\"app\"]\ntags = { env = \"prod\" }\n",
    )
    .await;
    let e = h.endpoint();
    create(&e).await;
    let staging = ok(
        &e,
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", "https://staging.example.com"),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "staging"),
        ],
    )
    .await;
    let staging = xml_text(&staging, "OpenIDConnectProviderArn");
    // A user who may tag providers of `env=staging`, with `team` tags only.
    ok(&e, &[("Action", "CreateUser"), ("UserName", "tagger")]).await;
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["iam:TagOpenIDConnectProvider", "iam:CreateOpenIDConnectProvider"],
        "Resource": "*",
        "Condition": {"StringEquals": {"iam:ResourceTag/env": "staging"},
                      "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}
    }, {
        "Effect": "Allow",
        "Action": "iam:CreateOpenIDConnectProvider",
        "Resource": "*"
    }]});
    ok(
        &e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "tagger"),
            ("PolicyName", "tags"),
            ("PolicyDocument", &policy.to_string()),
        ],
    )
    .await;
    let key = ok(&e, &[("Action", "CreateAccessKey"), ("UserName", "tagger")]).await;
    let (k, sk) = (
        xml_text(&key, "AccessKeyId"),
        xml_text(&key, "SecretAccessKey"),
    );
    let as_tagger = |arn: String, key: &'static str| {
        let (e, k, sk) = (e.clone(), k.clone(), sk.clone());
        async move {
            let (s, b) = api_call_as(
                &e,
                "iam",
                &[
                    ("Action", "TagOpenIDConnectProvider"),
                    ("OpenIDConnectProviderArn", &arn),
                    ("Tags.member.1.Key", key),
                    ("Tags.member.1.Value", "blue"),
                ],
                &k,
                &sk,
                None,
            )
            .await;
            (
                s,
                if s == 200 {
                    String::new()
                } else {
                    xml_code(&b)
                },
            )
        }
    };
    assert_eq!(
        as_tagger(staging.clone(), "team").await,
        (200, String::new())
    );
    // Another key than allowed, or a provider of another `env`: refused.
    assert_eq!(
        as_tagger(staging.clone(), "owner").await,
        (403, "AccessDenied".into())
    );
    assert_eq!(
        as_tagger(ARN.to_string(), "team").await,
        (403, "AccessDenied".into())
    );
    // Creating with tags takes iam:TagOpenIDConnectProvider too, which the
    // new provider (no tags yet) does not give.
    let (s, b) = api_call_as(
        &e,
        "iam",
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", "https://other.example.com"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
        ],
        &k,
        &sk,
        None,
    )
    .await;
    assert_eq!((s, xml_code(&b)), (403, "AccessDenied".into()), "{b}");

    // A provider the config declares shows its tags and cannot be retagged here.
    let declared = "arn:aws:iam::000000000000:oidc-provider/declared.example.com";
    let listed = ok(
        &e,
        &[
            ("Action", "ListOpenIDConnectProviderTags"),
            ("OpenIDConnectProviderArn", declared),
        ],
    )
    .await;
    assert!(
        listed.contains("<member><Key>env</Key><Value>prod</Value></member>"),
        "{listed}"
    );
    for params in [
        vec![
            ("Action", "TagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", declared),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.1.Value", "b"),
        ],
        vec![
            ("Action", "UntagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", declared),
            ("TagKeys.member.1", "env"),
        ],
    ] {
        assert_eq!(
            refused(&e, &params).await,
            (400, "UnmodifiableEntity".into())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tags_round_trip_through_postgresql_across_instances() {
    let f = Fleet::start(2).await;
    let (a, b) = (f.endpoint(0), f.endpoint(1));
    create(&a).await;
    let list = [
        ("Action", "ListOpenIDConnectProviderTags"),
        ("OpenIDConnectProviderArn", ARN),
    ];
    let until = |e: String, want: &'static str| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let (s, body) = api_call(&e, "iam", &list).await;
            if s == 200 && body.contains(want) {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "{s}: {body}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    until(b.clone(), "<Key>env</Key><Value>prod</Value>").await;
    ok(
        &b,
        &[
            ("Action", "TagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
        ],
    )
    .await;
    ok(
        &b,
        &[
            ("Action", "UntagOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
            ("TagKeys.member.1", "env"),
        ],
    )
    .await;
    // Both changes made through b, as a sees them.
    until(
        a.clone(),
        "<Tags><member><Key>team</Key><Value>blue</Value></member></Tags>",
    )
    .await;
    // What the database holds, read back by a fresh load (not a pushed change).
    let (client, conn) = tokio_postgres::connect(&f.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT key, value FROM s3warden.tags WHERE owner_kind = 'oidc_provider' AND owner_key = $1 ORDER BY position",
            &[&ARN],
        )
        .await
        .unwrap();
    let stored: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, pairs(&[("team", "blue")]));
    ok(
        &a,
        &[
            ("Action", "DeleteOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", ARN),
        ],
    )
    .await;
    let left = client
        .query_one(
            "SELECT count(*) FROM s3warden.tags WHERE owner_kind = 'oidc_provider'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        left.get::<_, i64>(0),
        0,
        "a deleted provider's tags go with it"
    );
}
