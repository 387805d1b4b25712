//! Bad input to the IAM and STS APIs: every action with missing or invalid
//! parameters, oversized policies, duplicate names, unknown actions and
//! versions, wrong methods, bad signatures, and session tokens that are
//! sealed with an unknown key, expired or tampered with. Each gets AWS's
//! error code, and nothing is half-written to the store.

use crate::common::*;

/// (service, parameters, expected error code)
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
/// (service, parameters, expected status, expected error code)
type SizeCase<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str);

/// Everything the file store holds: its snapshot (absent until the journal
/// is first folded into it) and its journal of changes.
fn store_bytes(h: &Harness) -> Option<Vec<u8>> {
    let dir = h.dir.path().join("identity");
    let mut all = std::fs::read(dir.join("identities.json")).unwrap_or_default();
    all.extend(std::fs::read(dir.join("changes.jsonl")).ok()?);
    Some(all)
}

fn code(body: &str) -> String {
    xml_text(body, "Code")
}

const OK_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_refuses_missing_or_invalid_parameters_and_writes_nothing() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    // Something in the store, so "unchanged" is a real comparison.
    let (s, b) = api_call(
        &e,
        "iam",
        &[("Action", "CreateUser"), ("UserName", "existing")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let before = store_bytes(&h);
    assert!(before.is_some());
    let arn = "arn:aws:iam::000000000000:policy/none";
    let long_user = "u".repeat(65);
    let long_group = "g".repeat(129);
    let long_description = "d".repeat(1001);
    let long_name = "n".repeat(33);
    let cases: Vec<Case> = vec![
        ("iam", vec![("Action", "CreateUser")], "ValidationError"),
        (
            "iam",
            vec![("Action", "CreateUser"), ("UserName", "has space")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "CreateUser"), ("UserName", &long_user)],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "CreateUser"),
                ("UserName", "p"),
                ("Path", "nope"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "CreateUser"),
                ("UserName", "p"),
                ("PermissionsBoundary", arn),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "GetUser"), ("UserName", "")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "GetUser"), ("UserName", "nobody")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "ListUsers"), ("MaxItems", "0")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "ListUsers"), ("MaxItems", "1001")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "ListUsers"), ("MaxItems", "ten")],
            "ValidationError",
        ),
        ("iam", vec![("Action", "DeleteUser")], "ValidationError"),
        (
            "iam",
            vec![("Action", "DeleteUser"), ("UserName", "nobody")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "CreateAccessKey"), ("UserName", "nobody")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "CreateAccessKey")],
            "UnmodifiableEntity",
        ),
        (
            "iam",
            vec![("Action", "ListAccessKeys"), ("UserName", "nobody")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "UpdateAccessKey"),
                ("UserName", "existing"),
                ("Status", "Active"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "UpdateAccessKey"),
                ("UserName", "existing"),
                ("AccessKeyId", "AKIAAAAAAAAAAAAAAAAA"),
                ("Status", "Bogus"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "UpdateAccessKey"),
                ("UserName", "existing"),
                ("AccessKeyId", "AKIAAAAAAAAAAAAAAAAA"),
                ("Status", "Inactive"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "DeleteAccessKey"), ("UserName", "existing")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "DeleteAccessKey"),
                ("UserName", "existing"),
                ("AccessKeyId", "bad!"),
            ],
            "ValidationError",
        ),
        ("iam", vec![("Action", "CreateGroup")], "ValidationError"),
        (
            "iam",
            vec![("Action", "CreateGroup"), ("GroupName", &long_group)],
            "ValidationError",
        ),
        ("iam", vec![("Action", "GetGroup")], "ValidationError"),
        (
            "iam",
            vec![("Action", "GetGroup"), ("GroupName", "nogroup")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "ListGroups"), ("PathPrefix", "relative")],
            "ValidationError",
        ),
        ("iam", vec![("Action", "DeleteGroup")], "ValidationError"),
        (
            "iam",
            vec![("Action", "AddUserToGroup"), ("GroupName", "prefix-users")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "AddUserToGroup"),
                ("GroupName", "nogroup"),
                ("UserName", "existing"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "RemoveUserFromGroup"), ("UserName", "existing")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "RemoveUserFromGroup"),
                ("GroupName", "prefix-users"),
                ("UserName", "existing"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "ListGroupsForUser")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "p"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "p"),
                ("PolicyDocument", "{not json"),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "p"),
                (
                    "PolicyDocument",
                    r#"{"Version":"2012-10-17","Statement":"everything"}"#,
                ),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "p"),
                ("PolicyDocument", TRUST),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "p"),
                (
                    "PolicyDocument",
                    r#"{"Version":"2013-01-01","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
                ),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "p"),
                (
                    "PolicyDocument",
                    r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/class":"secret"}}}}"#,
                ),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "iam",
            vec![
                ("Action", "PutUserPolicy"),
                ("UserName", "alice"),
                ("PolicyName", "p"),
                ("PolicyDocument", OK_POLICY),
            ],
            "UnmodifiableEntity",
        ),
        (
            "iam",
            vec![("Action", "GetUserPolicy"), ("UserName", "existing")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "GetUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "none"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "ListUserPolicies")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "DeleteUserPolicy"),
                ("UserName", "existing"),
                ("PolicyName", "none"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "PutGroupPolicy"),
                ("GroupName", "nogroup"),
                ("PolicyName", "p"),
                ("PolicyDocument", OK_POLICY),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "PutGroupPolicy"),
                ("GroupName", "prefix-users"),
                ("PolicyName", "p"),
                ("PolicyDocument", OK_POLICY),
            ],
            "UnmodifiableEntity",
        ),
        (
            "iam",
            vec![("Action", "GetGroupPolicy"), ("GroupName", "prefix-users")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "ListGroupPolicies")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "DeleteGroupPolicy"),
                ("GroupName", "prefix-users"),
                ("PolicyName", "own-prefix"),
            ],
            "UnmodifiableEntity",
        ),
        (
            "iam",
            vec![("Action", "CreatePolicy"), ("PolicyName", "p")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "CreatePolicy"),
                ("PolicyName", "p"),
                ("PolicyDocument", OK_POLICY),
                ("Description", &long_description),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "GetPolicy"), ("PolicyArn", "short")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "GetPolicy"), ("PolicyArn", arn)],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "GetPolicyVersion"),
                ("PolicyArn", arn),
                ("VersionId", "x"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "GetPolicyVersion"), ("PolicyArn", arn)],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "ListPolicies"), ("Scope", "Bogus")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "ListPolicies"), ("OnlyAttached", "maybe")],
            "ValidationError",
        ),
        ("iam", vec![("Action", "DeletePolicy")], "ValidationError"),
        (
            "iam",
            vec![("Action", "DeletePolicy"), ("PolicyArn", arn)],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "AttachUserPolicy"), ("UserName", "existing")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "AttachUserPolicy"),
                ("UserName", "existing"),
                ("PolicyArn", arn),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "DetachUserPolicy"),
                ("UserName", "existing"),
                ("PolicyArn", arn),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "ListAttachedUserPolicies")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "AttachGroupPolicy"),
                ("GroupName", "prefix-users"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "DetachGroupPolicy"),
                ("GroupName", "prefix-users"),
                ("PolicyArn", arn),
            ],
            "UnmodifiableEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "ListAttachedGroupPolicies"),
                ("GroupName", "nogroup"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "CreateRole"), ("RoleName", "r")],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "CreateRole"),
                ("RoleName", "r"),
                ("AssumeRolePolicyDocument", OK_POLICY),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "iam",
            vec![
                ("Action", "CreateRole"),
                ("RoleName", "r"),
                ("AssumeRolePolicyDocument", TRUST),
                ("MaxSessionDuration", "100"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![
                ("Action", "CreateRole"),
                ("RoleName", "r"),
                ("AssumeRolePolicyDocument", TRUST),
                ("MaxSessionDuration", "43201"),
            ],
            "ValidationError",
        ),
        ("iam", vec![("Action", "GetRole")], "ValidationError"),
        (
            "iam",
            vec![("Action", "GetRole"), ("RoleName", "norole")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "ListRoles"), ("MaxItems", "-1")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "DeleteRole"), ("RoleName", "norole")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "PutRolePolicy"),
                ("RoleName", "norole"),
                ("PolicyName", "p"),
                ("PolicyDocument", OK_POLICY),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "GetRolePolicy"), ("RoleName", "norole")],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "ListRolePolicies"), ("RoleName", "norole")],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "DeleteRolePolicy"),
                ("RoleName", "norole"),
                ("PolicyName", "p"),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![
                ("Action", "AttachRolePolicy"),
                ("RoleName", "norole"),
                ("PolicyArn", arn),
            ],
            "NoSuchEntity",
        ),
        (
            "iam",
            vec![("Action", "DetachRolePolicy"), ("RoleName", "norole")],
            "ValidationError",
        ),
        ("iam", vec![("Action", "RevokeSessions")], "InvalidInput"),
        (
            "iam",
            vec![("Action", "RevokeSessions"), ("UserName", "nobody")],
            "NoSuchEntity",
        ),
        (
            "sts",
            vec![("Action", "GetFederationToken")],
            "ValidationError",
        ),
        (
            "sts",
            vec![("Action", "GetFederationToken"), ("Name", "a")],
            "ValidationError",
        ),
        (
            "sts",
            vec![("Action", "GetFederationToken"), ("Name", &long_name)],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "GetFederationToken"),
                ("Name", "ok-name"),
                ("DurationSeconds", "899"),
            ],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "GetFederationToken"),
                ("Name", "ok-name"),
                ("DurationSeconds", "129601"),
            ],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "GetFederationToken"),
                ("Name", "ok-name"),
                ("Policy", ""),
            ],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "GetFederationToken"),
                ("Name", "ok-name"),
                ("Policy", "[]"),
            ],
            "MalformedPolicyDocument",
        ),
        (
            "sts",
            vec![
                ("Action", "GetFederationToken"),
                ("Name", "ok-name"),
                (
                    "PolicyArns.member.1.arn",
                    "arn:aws:iam::999999999999:policy/x",
                ),
            ],
            "ValidationError",
        ),
        (
            "sts",
            vec![("Action", "GetSessionToken"), ("DurationSeconds", "129601")],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "GetSessionToken"),
                ("SerialNumber", "arn:aws:iam::000000000000:mfa/x"),
                ("TokenCode", "123456"),
            ],
            "AccessDenied",
        ),
        ("sts", vec![("Action", "AssumeRole")], "ValidationError"),
        (
            "sts",
            vec![
                ("Action", "AssumeRole"),
                ("RoleArn", "arn:aws:iam::000000000000:role/r"),
            ],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "AssumeRole"),
                ("RoleArn", "arn:aws:iam::000000000000:role/r"),
                ("RoleSessionName", "x"),
            ],
            "ValidationError",
        ),
        (
            "sts",
            vec![
                ("Action", "AssumeRole"),
                ("RoleArn", "arn:aws:iam::000000000000:role/r"),
                ("RoleSessionName", "xy"),
                ("DurationSeconds", "43201"),
            ],
            "ValidationError",
        ),
        (
            "iam",
            vec![("Action", "CreateUsers"), ("UserName", "x")],
            "InvalidAction",
        ),
        (
            "sts",
            vec![("Action", "GetFederationTokens")],
            "InvalidAction",
        ),
        ("iam", vec![], "MissingAction"),
    ];
    for (service, params, expected) in &cases {
        let (status, body) = api_call(&e, service, params).await;
        assert_eq!(
            code(&body),
            *expected,
            "{service} {params:?}: {status} {body}"
        );
        assert!(status >= 400, "{params:?}: {status}");
        assert!(body.contains("<ErrorResponse"), "{body}");
        assert_eq!(store_bytes(&h), before, "{params:?} changed the store");
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_policies_and_duplicate_names_are_refused_with_nothing_written() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    for (action, name_param, name) in [
        ("CreateUser", "UserName", "dup"),
        ("CreateGroup", "GroupName", "dup-group"),
    ] {
        let (s, b) = api_call(&e, "iam", &[("Action", action), (name_param, name)]).await;
        assert_eq!(s, 200, "{b}");
        let before = store_bytes(&h);
        let upper = name.to_ascii_uppercase();
        let (s, b) = api_call(&e, "iam", &[("Action", action), (name_param, &upper)]).await;
        assert_eq!((s, code(&b).as_str()), (409, "EntityAlreadyExists"), "{b}");
        assert_eq!(store_bytes(&h), before);
    }
    let (s, b) = api_call(
        &e,
        "iam",
        &[("Action", "CreateUser"), ("UserName", "alice")],
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (409, "EntityAlreadyExists"),
        "config users too: {b}"
    );
    let (s, _) = api_call(
        &e,
        "iam",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "pol"),
            ("PolicyDocument", OK_POLICY),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "POL"),
            ("PolicyDocument", OK_POLICY),
        ],
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (409, "EntityAlreadyExists"), "{b}");
    let (s, _) = api_call(
        &e,
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", "role"),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", "Role"),
            ("AssumeRolePolicyDocument", TRUST),
        ],
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (409, "EntityAlreadyExists"), "{b}");

    // A policy of N allow statements, about 90 characters each.
    let big = |n: usize| {
        let stmts: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-{i:05}/*"}}"#))
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            stmts.join(",")
        )
    };
    let before = store_bytes(&h);
    let cases: Vec<SizeCase> = vec![
        ("iam", vec![("Action", "PutUserPolicy".into()), ("UserName", "dup".into()), ("PolicyName", "big".into()), ("PolicyDocument", big(30))], 409, "LimitExceeded"),
        ("iam", vec![("Action", "PutGroupPolicy".into()), ("GroupName", "dup-group".into()), ("PolicyName", "big".into()), ("PolicyDocument", big(70))], 409, "LimitExceeded"),
        ("iam", vec![("Action", "PutRolePolicy".into()), ("RoleName", "role".into()), ("PolicyName", "big".into()), ("PolicyDocument", big(130))], 409, "LimitExceeded"),
        ("iam", vec![("Action", "CreatePolicy".into()), ("PolicyName", "huge".into()), ("PolicyDocument", big(80))], 409, "LimitExceeded"),
        ("iam", vec![("Action", "CreatePolicy".into()), ("PolicyName", "enormous".into()), ("PolicyDocument", big(1600))], 400, "ValidationError"),
        ("sts", vec![("Action", "GetFederationToken".into()), ("Name", "fed".into()), ("Policy", big(30))], 400, "PackedPolicyTooLarge"),
        ("iam", vec![("Action", "CreateRole".into()), ("RoleName", "bigtrust".into()), ("AssumeRolePolicyDocument", format!(r#"{{"Statement":[{}]}}"#, vec![r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}"#; 30].join(",")))], 409, "LimitExceeded"),
    ];
    for (service, params, status, expected) in &cases {
        let p: Vec<(&str, &str)> = params.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let (s, b) = api_call(&e, service, &p).await;
        assert_eq!(
            (s, code(&b).as_str()),
            (*status, *expected),
            "{}: {b}",
            params[0].1
        );
        assert_eq!(store_bytes(&h), before, "{} changed the store", params[0].1);
    }
    // The aggregate inline size counts every policy of the user.
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "dup"),
            ("PolicyName", "one"),
            ("PolicyDocument", &big(15)),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let before = store_bytes(&h);
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "dup"),
            ("PolicyName", "two"),
            ("PolicyDocument", &big(15)),
        ],
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (409, "LimitExceeded"), "{b}");
    assert!(xml_text(&b, "Message").contains("2048"), "{b}");
    assert_eq!(store_bytes(&h), before);
    // Replacing a policy by the same name is not counted twice.
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "dup"),
            ("PolicyName", "one"),
            ("PolicyDocument", &big(16)),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_use_the_query_error_envelope() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    let v = |service: &str| {
        if service == "iam" {
            "2010-05-08"
        } else {
            "2011-06-15"
        }
    };
    // Unsupported version.
    let (signed, body) = sign_api(
        &e,
        "iam",
        "POST",
        &[("Action", "ListUsers"), ("Version", "2009-01-01")],
        ROOT_KEY,
        ROOT_SECRET,
        None,
    );
    let (s, _, b) = send(&signed, body).await;
    assert_eq!((s, code(&b).as_str()), (400, "NoSuchVersion"), "{b}");
    assert!(
        b.contains("https://iam.amazonaws.com/doc/2010-05-08/"),
        "IAM's namespace: {b}"
    );
    // Wrong HTTP method.
    let (signed, body) = sign_api(
        &e,
        "sts",
        "PUT",
        &[("Action", "GetCallerIdentity"), ("Version", v("sts"))],
        ROOT_KEY,
        ROOT_SECRET,
        None,
    );
    let mut signed = signed;
    signed.url = format!("{e}/?Action=GetCallerIdentity");
    let (s, _, b) = send(&signed, body).await;
    assert_eq!((s, code(&b).as_str()), (400, "InvalidHttpRequest"), "{b}");
    // GET with the parameters in the query string works.
    let url = format!("{e}/?Action=GetCallerIdentity&Version=2011-06-15");
    let signed = sign_query_get(&url);
    let (s, _, b) = send(&signed, Vec::new()).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains("<Arn>arn:aws:iam::000000000000:root</Arn>"),
        "{b}"
    );
    // Unsigned.
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{e}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        code(&resp.text().await.unwrap()),
        "MissingAuthenticationToken"
    );
    // Wrong secret, unknown key.
    let (s, b) = api_call_as(
        &e,
        "sts",
        &[("Action", "GetCallerIdentity")],
        ROOT_KEY,
        "wrong-secret-wrong-secret-wrong-secret00",
        None,
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (403, "SignatureDoesNotMatch"),
        "{b}"
    );
    let (s, b) = api_call_as(
        &e,
        "sts",
        &[("Action", "GetCallerIdentity")],
        "AKIANOSUCHKEY0000001",
        ROOT_SECRET,
        None,
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (403, "InvalidClientTokenId"), "{b}");
    // A body that differs from what was signed.
    let (signed, _) = sign_api(
        &e,
        "iam",
        "POST",
        &[("Action", "ListUsers"), ("Version", v("iam"))],
        ROOT_KEY,
        ROOT_SECRET,
        None,
    );
    let (s, _, b) = send(
        &signed,
        b"Action=CreateUser&Version=2010-05-08&UserName=evil".to_vec(),
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (403, "SignatureDoesNotMatch"),
        "{b}"
    );
    // A parameter given twice.
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "GetUser"),
            ("UserName", "alice"),
            ("UserName", "bob"),
        ],
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (400, "MalformedQueryString"), "{b}");
    // A user without permission gets AccessDenied with AWS's message.
    let (s, b) = api_call_as(
        &e,
        "iam",
        &[("Action", "ListUsers")],
        ALICE_KEY,
        ALICE_SECRET,
        None,
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (403, "AccessDenied"), "{b}");
    assert!(
        b.contains("is not authorized to perform: iam:ListUsers"),
        "{b}"
    );
    let denied = audited(&h, |r| {
        r["operation"] == "iam:ListUsers" && r["status"] == 403
    })
    .await;
    assert_eq!(denied["decision"]["allowed"], false);
    assert_eq!(denied["error_code"], "AccessDenied");
    h.server.shutdown().await;
}

/// Waits for an audit record matching `pred` (the writer flushes asynchronously).
async fn audited(h: &Harness, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..250 {
        if let Some(r) = h.audit(0).await.into_iter().find(|r| pred(r)) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no matching audit record");
}

fn sign_query_get(url: &str) -> Signed {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity =
        aws_credential_types::Credentials::new(ROOT_KEY, ROOT_SECRET, None, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri: http::Uri = url.parse().unwrap();
    let mut all = vec![("host".to_string(), uri.authority().unwrap().to_string())];
    let signable = SignableRequest::new(
        "GET",
        url,
        all.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        SignableBody::Bytes(b""),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for h in instructions.into_parts().0 {
        all.push((h.name().to_string(), h.value().to_string()));
    }
    Signed {
        method: "GET".into(),
        url: url.into(),
        headers: all,
    }
}
