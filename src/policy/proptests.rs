//! Property tests of the rules that must hold for every policy and request: an added Deny
//! never widens access, an added Allow never narrows it, a session policy never widens the
//! identity decision, an empty policy set denies everything, the order of statements does not
//! change the verdict, and no input makes the parser (or the lint and evaluation of what it
//! accepts) panic.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const ACTIONS: &[&str] = &[
    "*",
    "s3:*",
    "s3:GetObject",
    "s3:Get*",
    "s3:PutObject",
    "s3:?utObject",
    "s3:ListBucket",
    "S3:getobject",
    "iam:*",
    "sts:GetFederationToken",
];

const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::*",
    "arn:aws:s3:::b",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/${aws:username}/*",
    "arn:aws:s3:::b/alice/*",
    "arn:aws:s3:::other/*",
    "arn:aws:s3:::b*",
    "arn:aws:iam::*:user/${aws:username}",
];

fn conditions() -> Vec<Value> {
    vec![
        json!({"StringEquals": {"aws:username": "alice"}}),
        json!({"StringLike": {"s3:prefix": ["${aws:username}/*", ""]}}),
        json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        json!({"NotIpAddress": {"aws:SourceIp": "10.1.0.0/16"}}),
        json!({"Bool": {"aws:SecureTransport": "true"}}),
        json!({"NumericLessThanEquals": {"s3:max-keys": "100"}}),
        json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}),
        json!({"ForAnyValue:StringLike": {"aws:TagKeys": "a*"}}),
        json!({"Null": {"aws:username": "false"}}),
        json!({"StringNotEqualsIfExists": {"s3:prefix": "secret"}}),
        json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
        json!({"StringEquals": {"aws:TagKeys": "a"}}),
    ]
}

fn statement(effect: Option<&'static str>) -> impl Strategy<Value = Value> {
    let effect = match effect {
        Some(e) => Just(e).boxed(),
        None => prop_oneof![Just("Allow"), Just("Deny")].boxed(),
    };
    (
        effect,
        any::<bool>(),
        prop::sample::subsequence(ACTIONS, 1..3),
        any::<bool>(),
        prop::sample::subsequence(RESOURCES, 1..3),
        prop::sample::subsequence(conditions(), 0..3),
    )
        .prop_map(
            |(effect, not_action, actions, not_resource, resources, conds)| {
                let mut s = serde_json::Map::new();
                s.insert("Effect".into(), json!(effect));
                let action_key = if not_action { "NotAction" } else { "Action" };
                s.insert(action_key.into(), json!(actions));
                let resource_key = if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                };
                s.insert(resource_key.into(), json!(resources));
                if !conds.is_empty() {
                    let mut block = serde_json::Map::new();
                    for c in conds {
                        if let Value::Object(m) = c {
                            block.extend(m);
                        }
                    }
                    s.insert("Condition".into(), Value::Object(block));
                }
                Value::Object(s)
            },
        )
}

fn policy_with(effect: Option<&'static str>) -> impl Strategy<Value = Policy> {
    prop::collection::vec(statement(effect), 1..4).prop_map(|statements| {
        let doc = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        match Policy::parse(&doc, PolicyKind::Identity) {
            Ok(p) => p,
            Err(e) => panic!("generated policy must parse: {e}\n{doc}"),
        }
    })
}

fn policies() -> impl Strategy<Value = Vec<Policy>> {
    prop::collection::vec(policy_with(None), 0..4)
}

#[derive(Clone, Debug)]
struct Req {
    action: &'static str,
    resource: &'static str,
    context: Context,
}

fn request() -> impl Strategy<Value = Req> {
    let action = prop::sample::select(vec![
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:DeleteObject",
        "iam:CreateUser",
        "sts:GetFederationToken",
    ]);
    let resource = prop::sample::select(vec![
        "arn:aws:s3:::b/alice/x",
        "arn:aws:s3:::b/bob/x",
        "arn:aws:s3:::b",
        "arn:aws:s3:::other/k",
        "arn:aws:s3:::",
        "arn:aws:iam::123456789012:user/alice",
    ]);
    let opt = |values: Vec<&'static str>| prop::option::of(prop::sample::select(values));
    let context = (
        opt(vec!["alice", "bob", ""]),
        opt(vec!["10.1.2.3", "192.0.2.1", "garbage"]),
        opt(vec!["true", "false"]),
        opt(vec!["alice/", "secret", ""]),
        opt(vec!["50", "500"]),
        prop::option::of(prop::sample::subsequence(vec!["a", "b", "c"], 0..3)),
        opt(vec!["2020-01-01T00:00:00Z", "2031-01-01T00:00:00Z"]),
    )
        .prop_map(|(user, ip, tls, prefix, max_keys, tags, time)| {
            let mut ctx = Context::new();
            let pairs = [
                ("aws:username", user),
                ("aws:SourceIp", ip),
                ("aws:SecureTransport", tls),
                ("s3:prefix", prefix),
                ("s3:max-keys", max_keys),
                ("aws:CurrentTime", time),
            ];
            for (key, value) in pairs {
                if let Some(v) = value {
                    ctx.set(key, v);
                }
            }
            if let Some(tags) = tags {
                ctx.set_multi("aws:TagKeys", tags.into_iter().map(String::from).collect());
            }
            ctx
        });
    (action, resource, context).prop_map(|(action, resource, context)| Req {
        action,
        resource,
        context,
    })
}

fn named(policies: &[Policy], prefix: &str) -> Vec<(String, Policy)> {
    policies
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("{prefix}{i}"), p.clone()))
        .collect()
}

fn decide(
    identity: &[(String, Policy)],
    session: Option<&[(String, Policy)]>,
    req: &Req,
) -> Decision {
    fn to_named(list: &[(String, Policy)]) -> Vec<NamedPolicy<'_>> {
        list.iter()
            .map(|(name, policy)| NamedPolicy { name, policy })
            .collect()
    }
    let session = session.map(to_named);
    evaluate(
        &to_named(identity),
        session.as_deref(),
        &Request {
            action: req.action,
            resource: req.resource,
            context: &req.context,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn adding_a_deny_never_turns_a_deny_into_an_allow(
        identity in policies(),
        session in prop::option::of(policies()),
        deny in policy_with(Some("Deny")),
        into_session in any::<bool>(),
        req in request(),
    ) {
        let ids = named(&identity, "id");
        let sess = session.as_ref().map(|s| named(s, "s"));
        let before = decide(&ids, sess.as_deref(), &req);
        let mut ids2 = ids.clone();
        let mut sess2 = sess.clone();
        match (&mut sess2, into_session) {
            (Some(s), true) => s.push(("extra".into(), deny)),
            _ => ids2.push(("extra".into(), deny)),
        }
        let after = decide(&ids2, sess2.as_deref(), &req);
        prop_assert!(!after.allowed || before.allowed, "before {before}, after {after}");
    }

    #[test]
    fn adding_an_allow_never_turns_an_allow_into_a_deny(
        identity in policies(),
        allow in policy_with(Some("Allow")),
        req in request(),
    ) {
        let ids = named(&identity, "id");
        let before = decide(&ids, None, &req);
        let mut ids2 = ids.clone();
        ids2.push(("extra".into(), allow));
        let after = decide(&ids2, None, &req);
        prop_assert!(!before.allowed || after.allowed, "before {before}, after {after}");
    }

    #[test]
    fn a_session_policy_never_widens_the_identity_decision(
        identity in policies(),
        session in policies(),
        req in request(),
    ) {
        let ids = named(&identity, "id");
        let sess = named(&session, "s");
        let alone = decide(&ids, None, &req);
        let with_session = decide(&ids, Some(&sess), &req);
        prop_assert!(!with_session.allowed || alone.allowed, "alone {alone}, with session {with_session}");
        if with_session.allowed {
            let has_session_statement =
                matches!(with_session.reason, Reason::Allowed { session: Some(_), .. });
            prop_assert!(has_session_statement, "{}", with_session);
        }
    }

    #[test]
    fn an_empty_policy_set_denies_everything(
        session in prop::option::of(policies()),
        req in request(),
    ) {
        let sess = session.as_ref().map(|s| named(s, "s"));
        let d = decide(&[], sess.as_deref(), &req);
        prop_assert!(!d.allowed);
        let expected = matches!(d.reason, Reason::NoIdentityAllow | Reason::ExplicitDeny { .. });
        prop_assert!(expected, "{}", d);
    }

    #[test]
    fn statement_order_does_not_change_the_verdict(
        identity in policies(),
        req in request(),
    ) {
        let ids = named(&identity, "id");
        let mut reversed = ids.clone();
        reversed.reverse();
        prop_assert_eq!(decide(&ids, None, &req).allowed, decide(&reversed, None, &req).allowed);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_json(doc in arbitrary_json()) {
        let text = doc.to_string();
        for kind in [PolicyKind::Identity, PolicyKind::Session, PolicyKind::Resource] {
            if let Ok(policy) = Policy::parse(&text, kind) {
                let _ = policy.lint();
                let ctx = Context::new();
                let req = Request { action: "s3:GetObject", resource: "arn:aws:s3:::b/k", context: &ctx };
                let named = NamedPolicy { name: "p", policy: &policy };
                let _ = evaluate(&[named], Some(&[named]), &req);
                let who = PrincipalInfo { arn: "arn:aws:iam::111122223333:user/a", account: "111122223333", federated: false };
                let _ = evaluate_resource_policy(&named, &who, &req);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in ".{0,400}") {
        let _ = Policy::parse(&text, PolicyKind::Identity);
    }
}

/// JSON shaped like policies: the grammar's element names and operator names as keys, values
/// drawn from policy-like strings and arbitrary ones, nested a few levels.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "Version",
        "Id",
        "Statement",
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "AWS",
        "Service",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "StringLike",
        "ForAllValues:StringEquals",
        "ForAnyValue:NumericLessThanIfExists",
        "Null",
        "DateGreaterThan",
        "IpAddress",
        "ArnLike",
        "BinaryEquals",
        "Bool",
        "aws:username",
        "s3:prefix",
    ]);
    let key = prop_oneof![names.prop_map(String::from), "[a-zA-Z:]{0,8}"];
    let text = prop_oneof![
        prop::sample::select(vec![
            "2012-10-17",
            "2008-10-17",
            "Allow",
            "Deny",
            "*",
            "s3:*",
            "arn:aws:s3:::b/${aws:username}/*",
            "arn:aws:s3:::b/${",
            "${aws:username, 'x'}",
            "10.0.0.0/8",
            "::/0",
            "2020-01-01T00:00:00Z",
            "true",
            "QUJD",
            "-1.5",
            "arn:aws:iam::111122223333:root",
        ])
        .prop_map(String::from),
        ".{0,24}",
    ];
    let leaf = prop_oneof![
        text.prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(Value::Null),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}
