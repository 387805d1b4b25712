//! Permissions boundaries through the IAM API: a user's and a role's own
//! policies allow only what their boundary also allows, on the next request;
//! the boundary is shown by GetUser/GetRole, counted on its policy, and keeps
//! that policy from being deleted.

use crate::common::*;

const BOUNDARY: &str = "arn:aws:iam::000000000000:policy/uploads-only";
const EVERYTHING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","sts:*"],"Resource":"*"}]}"#;
const UPLOADS_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","sts:AssumeRole"],"Resource":["arn:aws:s3:::shared/uploads/*","arn:aws:iam::000000000000:role/*"]}]}"#;

async fn ok(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = api_call(e, "iam", params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boundary_caps_a_users_and_a_roles_own_policies() {
    let h = Harness::embedded().await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    ok(
        &e,
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "uploads-only"),
            ("PolicyDocument", UPLOADS_ONLY),
        ],
    )
    .await;
    // Created with a boundary; an inline policy that allows everything.
    let created = ok(
        &e,
        &[
            ("Action", "CreateUser"),
            ("UserName", "intern"),
            ("PermissionsBoundary", BOUNDARY),
        ],
    )
    .await;
    assert!(created.contains(BOUNDARY), "{created}");
    ok(
        &e,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "intern"),
            ("PolicyName", "everything"),
            ("PolicyDocument", EVERYTHING),
        ],
    )
    .await;
    let k = ok(&e, &[("Action", "CreateAccessKey"), ("UserName", "intern")]).await;
    let intern = s3_client(
        &e,
        &xml_text(&k, "AccessKeyId"),
        &xml_text(&k, "SecretAccessKey"),
    );
    put_shared(&intern, "uploads/a").await.unwrap();
    assert_eq!(
        put_shared(&intern, "reports/a").await.unwrap_err(),
        "AccessDenied"
    );

    let p = ok(&e, &[("Action", "GetPolicy"), ("PolicyArn", BOUNDARY)]).await;
    assert_eq!(xml_text(&p, "PermissionsBoundaryUsageCount"), "1");
    let (status, body) = api_call(
        &e,
        "iam",
        &[("Action", "DeletePolicy"), ("PolicyArn", BOUNDARY)],
    )
    .await;
    assert_eq!((status, xml_code(&body)), (409, "DeleteConflict".into()));

    // Removed with the aws CLI: the user's own policy decides alone again.
    let e2 = e.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_aws(
            &e2,
            ROOT_KEY,
            ROOT_SECRET,
            &[
                "iam",
                "delete-user-permissions-boundary",
                "--user-name",
                "intern",
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    put_shared(&intern, "reports/a").await.unwrap();
    let u = ok(&e, &[("Action", "GetUser"), ("UserName", "intern")]).await;
    assert!(!u.contains("PermissionsBoundary"), "{u}");
    // And put back.
    ok(
        &e,
        &[
            ("Action", "PutUserPermissionsBoundary"),
            ("UserName", "intern"),
            ("PermissionsBoundary", BOUNDARY),
        ],
    )
    .await;
    assert_eq!(
        put_shared(&intern, "reports/b").await.unwrap_err(),
        "AccessDenied"
    );
    let u = ok(&e, &[("Action", "GetUser"), ("UserName", "intern")]).await;
    assert_eq!(xml_text(&u, "PermissionsBoundaryArn"), BOUNDARY);

    // A role's sessions are capped by the role's boundary.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/intern"},"Action":"sts:AssumeRole"}]}"#;
    ok(
        &e,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "worker"),
            ("AssumeRolePolicyDocument", trust),
        ],
    )
    .await;
    ok(
        &e,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "worker"),
            ("PolicyName", "everything"),
            ("PolicyDocument", EVERYTHING),
        ],
    )
    .await;
    ok(
        &e,
        &[
            ("Action", "PutRolePermissionsBoundary"),
            ("RoleName", "worker"),
            ("PermissionsBoundary", BOUNDARY),
        ],
    )
    .await;
    let (status, body) = api_call_as(
        &e,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::000000000000:role/worker"),
            ("RoleSessionName", "job"),
        ],
        &xml_text(&k, "AccessKeyId"),
        &xml_text(&k, "SecretAccessKey"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = sts_session_client(&e, &body);
    put_shared(&session, "uploads/from-role").await.unwrap();
    assert_eq!(
        put_shared(&session, "reports/from-role").await.unwrap_err(),
        "AccessDenied"
    );
    let r = ok(&e, &[("Action", "GetRole"), ("RoleName", "worker")]).await;
    assert_eq!(xml_text(&r, "PermissionsBoundaryArn"), BOUNDARY);
    let p = ok(&e, &[("Action", "GetPolicy"), ("PolicyArn", BOUNDARY)]).await;
    assert_eq!(xml_text(&p, "PermissionsBoundaryUsageCount"), "2");

    // A boundary that is not a policy here is refused, and nothing changes.
    let (status, body) = api_call(
        &e,
        "iam",
        &[
            ("Action", "PutUserPermissionsBoundary"),
            ("UserName", "intern"),
            (
                "PermissionsBoundary",
                "arn:aws:iam::000000000000:policy/none",
            ),
        ],
    )
    .await;
    assert_eq!((status, xml_code(&body)), (404, "NoSuchEntity".into()));
    let u = ok(&e, &[("Action", "GetUser"), ("UserName", "intern")]).await;
    assert_eq!(xml_text(&u, "PermissionsBoundaryArn"), BOUNDARY);
}
