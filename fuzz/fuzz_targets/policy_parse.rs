//! Fuzz target for the policy parser: no input may panic, hang or blow the stack — not the
//! parser, nor the lint and evaluation of whatever it accepts.
//! Run: `cargo +nightly fuzz run policy_parse fuzz/seeds/policy_parse -- -dict=fuzz/policy_parse.dict`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use s3warden::policy::{
    Context, NamedPolicy, Policy, PolicyKind, PrincipalInfo, Request, evaluate,
    evaluate_resource_policy,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut ctx = Context::new();
    ctx.set("aws:username", "alice");
    ctx.set("aws:SourceIp", "10.1.2.3");
    ctx.set("aws:CurrentTime", "2026-01-01T00:00:00Z");
    ctx.set("s3:max-keys", "100");
    ctx.set("aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice");
    ctx.set_multi("aws:TagKeys", vec!["a".into(), "b".into()]);
    let who = PrincipalInfo {
        arn: "arn:aws:iam::111122223333:user/alice",
        account: "111122223333",
        federated: false,
    };
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Session,
        PolicyKind::Resource,
    ] {
        let Ok(policy) = Policy::parse(text, kind) else {
            continue;
        };
        for lint in policy.lint() {
            let _ = lint.to_string();
        }
        let named = NamedPolicy {
            name: "fuzz",
            policy: &policy,
        };
        for (action, resource) in [
            ("s3:GetObject", "arn:aws:s3:::b/alice/k"),
            ("s3:ListAllMyBuckets", "arn:aws:s3:::"),
            ("sts:AssumeRole", "arn:aws:iam::111122223333:role/r"),
            ("S3:PUTOBJECT", "not an arn"),
        ] {
            let req = Request {
                action,
                resource,
                context: &ctx,
            };
            let decision = evaluate(&[named], Some(&[named]), &req);
            let _ = decision.to_string();
            let _ = evaluate_resource_policy(&named, &who, &req).to_string();
        }
    }
});
