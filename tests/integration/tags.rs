//! Tags and attribute-based access: one policy,
//! `arn:aws:s3:::data/${aws:PrincipalTag/team}/*`, serves every team; a
//! user's tags reach its requests and its federated sessions, a role's tags
//! its sessions, on every instance of a fleet; tagging calls are authorized
//! with `aws:RequestTag/*` and `aws:TagKeys`, and IAM calls on a tagged user
//! see its tags as `iam:ResourceTag/*`.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::fleet::Fleet;

const TEAM_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"OwnTeam","Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::data/${aws:PrincipalTag/team}/*"},{"Sid":"Federate","Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"}]}"#;
const FEDERATED: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

async fn ok(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, "iam", params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

async fn put(client: &aws_sdk_s3::Client, key: &str) -> Result<(), String> {
    client
        .put_object()
        .bucket("data")
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

async fn eventually(what: &str, client: &aws_sdk_s3::Client, key: &str, allowed: bool) {
    let start = Instant::now();
    while put(client, key).await.is_ok() != allowed {
        assert!(start.elapsed() < Duration::from_secs(1), "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A user in group `teams`, tagged `team=<team>`, and its key.
async fn member(e: &str, name: &str, team: &str) -> (String, String) {
    ok(
        e,
        &[
            ("Action", "CreateUser"),
            ("UserName", name),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", team),
        ],
    )
    .await;
    ok(
        e,
        &[
            ("Action", "AddUserToGroup"),
            ("GroupName", "teams"),
            ("UserName", name),
        ],
    )
    .await;
    let k = ok(e, &[("Action", "CreateAccessKey"), ("UserName", name)]).await;
    (xml_text(&k, "AccessKeyId"), xml_text(&k, "SecretAccessKey"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_policy_with_principal_tag_prefixes_serves_every_team_across_the_fleet() {
    let f = Fleet::start(2).await;
    let (a, b) = (f.endpoint(0), f.endpoint(1));
    s3_client(&a, ROOT_KEY, ROOT_SECRET)
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .unwrap();
    ok(&a, &[("Action", "CreateGroup"), ("GroupName", "teams")]).await;
    ok(
        &a,
        &[
            ("Action", "PutGroupPolicy"),
            ("GroupName", "teams"),
            ("PolicyName", "own-team"),
            ("PolicyDocument", TEAM_POLICY),
        ],
    )
    .await;
    let (rk, rs) = member(&a, "rita", "red").await;
    let (bk, bs) = member(&a, "ben", "blue").await;
    let rita = s3_client(&b, &rk, &rs);
    let ben = s3_client(&b, &bk, &bs);
    eventually("rita writes red on B", &rita, "red/a", true).await;
    assert_eq!(put(&rita, "blue/a").await.unwrap_err(), "AccessDenied");
    eventually("ben writes blue on B", &ben, "blue/a", true).await;
    assert_eq!(put(&ben, "red/b").await.unwrap_err(), "AccessDenied");

    // Retagged through A: on B, rita is blue at once.
    ok(
        &a,
        &[
            ("Action", "TagUser"),
            ("UserName", "rita"),
            ("Tags.member.1.Key", "TEAM"),
            ("Tags.member.1.Value", "blue"),
        ],
    )
    .await;
    eventually("rita retagged on B", &rita, "blue/b", true).await;
    assert_eq!(put(&rita, "red/c").await.unwrap_err(), "AccessDenied");
    let listed = ok(&b, &[("Action", "ListUserTags"), ("UserName", "rita")]).await;
    // Keys compare regardless of case; the new spelling replaced the old.
    assert_eq!(listed.matches("<member>").count(), 1, "{listed}");
    assert_eq!(xml_text(&listed, "Key"), "TEAM");

    // A federated session of ben carries ben's tags.
    let (status, body) = api_call_as(
        &b,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "ben-app"),
            ("Policy", FEDERATED),
        ],
        &bk,
        &bs,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = sts_session_client(&a, &body);
    put(&session, "blue/from-session").await.unwrap();
    assert_eq!(
        put(&session, "red/from-session").await.unwrap_err(),
        "AccessDenied"
    );

    // Untagged: the policy's variable has no value, so nothing matches.
    ok(
        &a,
        &[
            ("Action", "UntagUser"),
            ("UserName", "ben"),
            ("TagKeys.member.1", "team"),
        ],
    )
    .await;
    eventually("ben untagged on B", &ben, "blue/c", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_is_authorized_by_request_and_resource_tags_and_a_roles_tags_reach_its_sessions() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    // A delegated administrator may tag only with team=red, and delete only red users.
    let admin_policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["iam:CreateUser","iam:TagUser"],"Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"red"},"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}},
        {"Effect":"Allow","Action":"iam:DeleteUser","Resource":"*","Condition":{"StringEquals":{"iam:ResourceTag/team":"red"}}}]}"#;
    ok(&e, &[("Action", "CreateUser"), ("UserName", "delegate")]).await;
    ok(
        &e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "delegate"),
            ("PolicyName", "red-admin"),
            ("PolicyDocument", admin_policy),
        ],
    )
    .await;
    let k = ok(
        &e,
        &[("Action", "CreateAccessKey"), ("UserName", "delegate")],
    )
    .await;
    let (dk, ds) = (xml_text(&k, "AccessKeyId"), xml_text(&k, "SecretAccessKey"));
    let as_delegate = |params: Vec<(&'static str, &'static str)>| {
        let (e, dk, ds) = (e.clone(), dk.clone(), ds.clone());
        async move { api_call_as(&e, "iam", &params, &dk, &ds, None).await }
    };
    let red = vec![
        ("Action", "CreateUser"),
        ("UserName", "r1"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "red"),
    ];
    assert_eq!(as_delegate(red).await.0, 200);
    let blue = vec![
        ("Action", "CreateUser"),
        ("UserName", "b1"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "blue"),
    ];
    let (status, body) = as_delegate(blue).await;
    assert_eq!((status, xml_code(&body)), (403, "AccessDenied".into()));
    // The audit record names the condition values the refusal rested on.
    let refused = h.audit_for(&xml_text(&body, "RequestId")).await;
    assert_eq!(
        refused["decision"]["conditions"]["aws:requesttag/team"], "blue",
        "{refused}"
    );
    let extra = vec![
        ("Action", "TagUser"),
        ("UserName", "r1"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "red"),
        ("Tags.member.2.Key", "cost"),
        ("Tags.member.2.Value", "1"),
    ];
    assert_eq!(
        as_delegate(extra).await.0,
        403,
        "a tag key outside aws:TagKeys"
    );
    // Root made a blue user; the delegate may delete red ones only.
    ok(
        &e,
        &[
            ("Action", "CreateUser"),
            ("UserName", "b2"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
        ],
    )
    .await;
    assert_eq!(
        as_delegate(vec![("Action", "DeleteUser"), ("UserName", "b2")])
            .await
            .0,
        403
    );
    assert_eq!(
        as_delegate(vec![("Action", "DeleteUser"), ("UserName", "r1")])
            .await
            .0,
        200
    );
    // Refused tags: the reserved prefix, and more than 50.
    let (status, body) = api_call(
        &e,
        "iam",
        &[
            ("Action", "TagUser"),
            ("UserName", "b2"),
            ("Tags.member.1.Key", "aws:team"),
            ("Tags.member.1.Value", "x"),
        ],
    )
    .await;
    assert_eq!((status, xml_code(&body)), (400, "InvalidInput".into()));

    // A role's tags are its sessions' principal tags.
    s3_client(&e, ROOT_KEY, ROOT_SECRET)
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/delegate"},"Action":"sts:AssumeRole"}]}"#;
    ok(
        &e,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "red-worker"),
            ("AssumeRolePolicyDocument", trust),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "red"),
        ],
    )
    .await;
    ok(
        &e,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "red-worker"),
            ("PolicyName", "own-team"),
            ("PolicyDocument", TEAM_POLICY),
        ],
    )
    .await;
    let r = ok(&e, &[("Action", "GetRole"), ("RoleName", "red-worker")]).await;
    assert!(r.contains("<Key>team</Key><Value>red</Value>"), "{r}");
    let (status, body) = api_call_as(
        &e,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::000000000000:role/red-worker"),
            ("RoleSessionName", "job"),
        ],
        &dk,
        &ds,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = sts_session_client(&e, &body);
    put(&session, "red/job").await.unwrap();
    assert_eq!(put(&session, "blue/job").await.unwrap_err(), "AccessDenied");

    // Tags survive a restart of the file store.
    let dir = h.dir;
    h.server.shutdown().await;
    let text = config_text(dir.path(), &embedded_upstream(dir.path()), "");
    let again = Harness::start(dir, &text).await;
    let listed = ok(
        &again.endpoint(),
        &[("Action", "ListRoleTags"), ("RoleName", "red-worker")],
    )
    .await;
    assert_eq!(xml_text(&listed, "Value"), "red");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tags_override_principal_tags_need_sts_tag_session_and_pass_on_when_transitive() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    s3_client(&e, ROOT_KEY, ROOT_SECRET)
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .unwrap();
    // A user tagged red who may federate, and may tag sessions only with team.
    let issuer_policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"},
        {"Effect":"Allow","Action":"sts:TagSession","Resource":"*","Condition":{"ForAllValues:StringEqualsIgnoreCase":{"aws:TagKeys":["team"]}}}]}"#;
    ok(
        &e,
        &[
            ("Action", "CreateUser"),
            ("UserName", "issuer"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "red"),
        ],
    )
    .await;
    ok(
        &e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "issuer"),
            ("PolicyName", "federate"),
            ("PolicyDocument", issuer_policy),
        ],
    )
    .await;
    ok(
        &e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "issuer"),
            ("PolicyName", "own-team"),
            ("PolicyDocument", TEAM_POLICY),
        ],
    )
    .await;
    let k = ok(&e, &[("Action", "CreateAccessKey"), ("UserName", "issuer")]).await;
    let (ik, is) = (xml_text(&k, "AccessKeyId"), xml_text(&k, "SecretAccessKey"));
    let federate = |tags: Vec<(&'static str, &'static str)>| {
        let (e, ik, is) = (e.clone(), ik.clone(), is.clone());
        async move {
            let mut params = vec![
                ("Action", "GetFederationToken"),
                ("Name", "visitor"),
                ("Policy", FEDERATED),
            ];
            params.extend(tags);
            api_call_as(&e, "sts", &params, &ik, &is, None).await
        }
    };
    // Session tag team=blue overrides the issuer's team=red for the session.
    let (status, body) = federate(vec![
        ("Tags.member.1.Key", "Team"),
        ("Tags.member.1.Value", "blue"),
    ])
    .await;
    assert_eq!(status, 200, "{body}");
    let session = sts_session_client(&e, &body);
    put(&session, "blue/visit").await.unwrap();
    assert_eq!(
        put(&session, "red/visit").await.unwrap_err(),
        "AccessDenied"
    );
    // A tag key outside what sts:TagSession allows is refused.
    let (status, body) = federate(vec![
        ("Tags.member.1.Key", "cost"),
        ("Tags.member.1.Value", "1"),
    ])
    .await;
    assert_eq!((status, xml_code(&body)), (403, "AccessDenied".into()));
    // GetFederationToken takes no transitive keys.
    let (status, _) = federate(vec![
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "blue"),
        ("TransitiveTagKeys.member.1", "team"),
    ])
    .await;
    assert_eq!(status, 400);

    // Roles: the trust policy must allow sts:TagSession; a transitive tag
    // passes from one role session to the next and cannot be replaced.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let strict_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    let roles_policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"},{"Effect":"Allow","Action":["s3:PutObject"],"Resource":"arn:aws:s3:::data/${aws:PrincipalTag/team}/*"}]}"#;
    for (name, doc) in [
        ("first", trust),
        ("second", trust),
        ("untaggable", strict_trust),
    ] {
        ok(
            &e,
            &[
                ("Action", "CreateRole"),
                ("RoleName", name),
                ("AssumeRolePolicyDocument", doc),
            ],
        )
        .await;
        ok(
            &e,
            &[
                ("Action", "PutRolePolicy"),
                ("RoleName", name),
                ("PolicyName", "p"),
                ("PolicyDocument", roles_policy),
            ],
        )
        .await;
    }
    ok(
        &e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "issuer"),
            ("PolicyName", "assume"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}"#,
            ),
        ],
    )
    .await;
    let assume = |role: &'static str,
                  creds: (String, String, Option<String>),
                  tags: Vec<(&'static str, &'static str)>| {
        let e = e.clone();
        async move {
            let arn = format!("arn:aws:iam::000000000000:role/{role}");
            let mut params = vec![
                ("Action", "AssumeRole"),
                ("RoleArn", arn.as_str()),
                ("RoleSessionName", "chain"),
            ];
            params.extend(tags);
            api_call_as(&e, "sts", &params, &creds.0, &creds.1, creds.2.as_deref()).await
        }
    };
    let tagged = vec![
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "green"),
        ("TransitiveTagKeys.member.1", "team"),
    ];
    let (status, body) = assume("untaggable", (ik.clone(), is.clone(), None), tagged.clone()).await;
    assert_eq!((status, xml_code(&body)), (403, "AccessDenied".into()));
    let (status, body) = assume("first", (ik.clone(), is.clone(), None), tagged).await;
    assert_eq!(status, 200, "{body}");
    let first = (
        xml_text(&body, "AccessKeyId"),
        xml_text(&body, "SecretAccessKey"),
        Some(xml_text(&body, "SessionToken")),
    );
    // Chained: team=green arrives without being passed again.
    let (status, body) = assume("second", first.clone(), vec![]).await;
    assert_eq!(status, 200, "{body}");
    let second = sts_session_client(&e, &body);
    put(&second, "green/chained").await.unwrap();
    assert_eq!(
        put(&second, "red/chained").await.unwrap_err(),
        "AccessDenied"
    );
    // ... and cannot be replaced on the way.
    let (status, _) = assume(
        "second",
        first,
        vec![
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "red"),
        ],
    )
    .await;
    assert_eq!(status, 400);

    // The audit: each session's requests name the session tags it carries
    // (not the parent's own), and the calls the tags they passed.
    let log = h.audit_path();
    h.server.shutdown().await;
    let records = audit_log_records(&log);
    let visit = session_of_request_on(&records, "blue/visit");
    assert_eq!(visit["issued_by"], "GetFederationToken", "{visit}");
    assert_eq!(
        visit["tags"],
        serde_json::json!({"Team": "blue"}),
        "{visit}"
    );
    let chained = session_of_request_on(&records, "green/chained");
    assert_eq!(chained["issued_by"], "AssumeRole", "{chained}");
    assert_eq!(chained["tags"], serde_json::json!({"team": "green"}));
    assert_eq!(chained["transitive_tag_keys"], serde_json::json!(["team"]));
    let assumed = records
        .iter()
        .find(|r| {
            r["operation"] == "sts:AssumeRole"
                && r["parameters"]["role_arn"] == "arn:aws:iam::000000000000:role/first"
        })
        .expect("a record of the first AssumeRole");
    assert_eq!(
        assumed["parameters"]["tags"],
        serde_json::json!([{"key": "team", "value": "green"}]),
        "{assumed}"
    );
    assert_eq!(
        assumed["parameters"]["transitive_tag_keys"],
        serde_json::json!(["team"])
    );
    validate_audit_log(&[&log]);
}
