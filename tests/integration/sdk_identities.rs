//! The IAM and STS APIs through aws-sdk-rust (the Smithy-generated SDK):
//! its XML parsers accept s3warden's results and errors, including
//! timestamps, booleans, pagination markers and temporary credentials.

use crate::common::*;
use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};

/// Where and as whom an SDK client talks.
struct Sdk {
    endpoint: String,
    credentials: Credentials,
}

fn sdk_config(endpoint: &str, key: &str, secret: &str, token: Option<&str>) -> Sdk {
    Sdk {
        endpoint: endpoint.to_string(),
        credentials: Credentials::new(key, secret, token.map(str::to_string), None, "tests"),
    }
}

fn iam_client(p: &Sdk) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&p.endpoint)
        .credentials_provider(p.credentials.clone())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

fn sts_client(p: &Sdk) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(&p.endpoint)
        .credentials_provider(p.credentials.clone())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_rust_parses_iam_and_sts_responses() {
    use aws_sdk_iam::error::ProvideErrorMetadata;
    let h = Harness::embedded().await;
    let root = sdk_config(&h.endpoint(), ROOT_KEY, ROOT_SECRET, None);
    let iam = iam_client(&root);
    for name in ["sdk-a", "sdk-b", "sdk-c"] {
        let user = iam.create_user().user_name(name).send().await.unwrap();
        let user = user.user().unwrap();
        assert_eq!(user.user_name(), name);
        assert!(user.user_id().starts_with("AIDA"));
        assert!(user.create_date().secs() > 0);
    }
    let dup = iam
        .create_user()
        .user_name("SDK-A")
        .send()
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some("EntityAlreadyExists"));
    let missing = iam.get_user().user_name("nobody").send().await.unwrap_err();
    assert_eq!(missing.code(), Some("NoSuchEntity"));

    // Pages of one, followed by their markers.
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .list_users()
            .max_items(1)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        names.extend(page.users().iter().map(|u| u.user_name().to_string()));
        if !page.is_truncated() {
            break;
        }
        marker = page.marker().map(str::to_string);
    }
    for name in ["sdk-a", "sdk-b", "sdk-c", "alice", "bob"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }

    let key = iam
        .create_access_key()
        .user_name("sdk-a")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    assert_eq!(key.status().as_str(), "Active");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"}]}"#;
    let created = iam
        .create_policy()
        .policy_name("sdk-federate")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let arn = created.policy().unwrap().arn().unwrap().to_string();
    assert!(created.policy().unwrap().is_attachable());
    iam.attach_user_policy()
        .user_name("sdk-a")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    let version = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let doc = version.policy_version().unwrap().document().unwrap();
    // The SDK hands the URL-encoded document through as IAM sends it.
    assert_eq!(
        percent_encoding::percent_decode_str(doc)
            .decode_utf8()
            .unwrap(),
        policy
    );

    // STS with the user's key, then with the federated session.
    let user = sdk_config(
        &h.endpoint(),
        key.access_key_id(),
        key.secret_access_key(),
        None,
    );
    let fed = sts_client(&user)
        .get_federation_token()
        .name("sdk-fed")
        .policy(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let c = fed.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let session = sdk_config(
        &h.endpoint(),
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let who = sts_client(&session)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        who.arn(),
        Some("arn:aws:sts::000000000000:federated-user/sdk-fed")
    );
    assert_eq!(who.user_id(), Some("000000000000:sdk-fed"));
    let refused = sts_client(&session)
        .get_federation_token()
        .name("again")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDenied")
    );
    let refused = iam_client(&session).list_users().send().await.unwrap_err();
    assert_eq!(refused.code(), Some("InvalidClientTokenId"));
    h.server.shutdown().await;
}
