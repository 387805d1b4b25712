//! OpenID Connect providers through the IAM API: created, read, listed,
//! given another client id and deleted with AWS's shapes and errors; kept by
//! the file store across a restart, and seen by every instance of a fleet.

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
