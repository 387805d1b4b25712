//! Policy evaluation for a realistic principal: a user with an inline policy and three groups
//! (20 statements with conditions and policy variables), optionally under a session policy,
//! with the ~20-key condition context the proxy builds for an S3 request.
//! Target: under 2 µs per decision (issue 4). Results are recorded in docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use s3warden::policy::{Context, NamedPolicy, Policy, PolicyKind, Request, evaluate};

const USER_INLINE: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Scratch", "Effect": "Allow", "Action": "s3:*",
   "Resource": ["arn:aws:s3:::scratch-${aws:username}", "arn:aws:s3:::scratch-${aws:username}/*"]},
  {"Sid": "OwnKeys", "Effect": "Allow", "Action": ["iam:GetUser", "iam:*AccessKey*"],
   "Resource": "arn:aws:iam::123456789012:user/${aws:username}"},
  {"Sid": "NoPublicAcl", "Effect": "Deny", "Action": ["s3:PutObjectAcl", "s3:PutObject"], "Resource": "*",
   "Condition": {"StringEquals": {"s3:x-amz-acl": ["public-read", "public-read-write"]}}}]}"#;

const GROUP_DEVS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "ListHome", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::corp-data",
   "Condition": {"StringLike": {"s3:prefix": ["", "home/${aws:username}/*", "shared/*"]}}},
  {"Sid": "HomeReadWrite", "Effect": "Allow", "Action": ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject"],
   "Resource": "arn:aws:s3:::corp-data/home/${aws:username}/*"},
  {"Sid": "SharedFromOffice", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::corp-data/shared/*",
   "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]}}},
  {"Sid": "TlsOnly", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
   "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
  {"Sid": "EncryptedPuts", "Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::corp-data/*",
   "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": ["AES256", "aws:kms"]}}},
  {"Sid": "Buckets", "Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"], "Resource": "*"},
  {"Sid": "HomeRegion", "Effect": "Deny", "Action": "*", "Resource": "*",
   "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}]}"#;

const GROUP_ANALYTICS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "DataLakeRead", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
   "Resource": ["arn:aws:s3:::datalake", "arn:aws:s3:::datalake/*"]},
  {"Sid": "TeamObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
   "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "${aws:PrincipalTag/team}"}}},
  {"Sid": "RawIsEtlOnly", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::datalake/raw/*",
   "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/etl-*"}}},
  {"Sid": "QueryResults", "Effect": "Allow", "Action": "s3:PutObject",
   "Resource": "arn:aws:s3:::athena-results/${aws:username}/*"},
  {"Sid": "ReportsUntil2030", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*",
   "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
  {"Sid": "SmallListings", "Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*",
   "Condition": {"NumericGreaterThan": {"s3:max-keys": "1000"}}}]}"#;

const GROUP_ALL_STAFF: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "NoBucketAdmin", "Effect": "Deny", "Action": ["s3:DeleteBucket*", "s3:PutBucketPolicy"], "Resource": "*"},
  {"Sid": "PublicAssets", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public-assets/*"},
  {"Sid": "MfaForVersionDelete", "Effect": "Deny", "Action": "s3:DeleteObjectVersion", "Resource": "*",
   "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
  {"Sid": "ReservedTags", "Effect": "Deny", "Action": ["s3:PutObjectTagging", "s3:PutObject"], "Resource": "*",
   "Condition": {"ForAnyValue:StringLike": {"s3:RequestObjectTagKeys": ["aws:*", "internal-*"]}}}]}"#;

const SESSION: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Home", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
   "Resource": ["arn:aws:s3:::corp-data", "arn:aws:s3:::corp-data/home/${aws:username}/*"]},
  {"Sid": "Lake", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::datalake/*"},
  {"Sid": "NoCredentials", "Effect": "Deny", "Action": ["iam:*", "sts:*"], "Resource": "*"}]}"#;

fn parse(doc: &str, kind: PolicyKind) -> Policy {
    match Policy::parse(doc, kind) {
        Ok(p) => p,
        Err(e) => panic!("benchmark policy must parse: {e}"),
    }
}

/// The context the proxy fills for a signed S3 request from an IAM user.
fn context() -> Context {
    let mut ctx = Context::new();
    for (key, value) in [
        ("aws:username", "alice"),
        ("aws:userid", "AIDAEXAMPLEUSERID1234"),
        ("aws:PrincipalType", "User"),
        ("aws:PrincipalArn", "arn:aws:iam::123456789012:user/alice"),
        ("aws:PrincipalAccount", "123456789012"),
        ("aws:PrincipalTag/team", "analytics"),
        ("aws:SourceIp", "10.1.2.3"),
        ("aws:SecureTransport", "true"),
        ("aws:CurrentTime", "2026-05-01T12:00:00Z"),
        ("aws:EpochTime", "1777636800"),
        ("aws:RequestedRegion", "us-east-1"),
        ("aws:UserAgent", "aws-cli/2.17.0 Python/3.11"),
        ("s3:authType", "REST-HEADER"),
        ("s3:signatureversion", "AWS4-HMAC-SHA256"),
        ("s3:signatureAge", "12"),
        ("s3:x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ("s3:TlsVersion", "1.3"),
        ("s3:ResourceAccount", "123456789012"),
        ("s3:ExistingObjectTag/team", "analytics"),
    ] {
        ctx.set(key, value);
    }
    ctx
}

fn bench(c: &mut Criterion) {
    let inline = parse(USER_INLINE, PolicyKind::Identity);
    let devs = parse(GROUP_DEVS, PolicyKind::Identity);
    let analytics = parse(GROUP_ANALYTICS, PolicyKind::Identity);
    let staff = parse(GROUP_ALL_STAFF, PolicyKind::Identity);
    let session = parse(SESSION, PolicyKind::Session);
    let identity = [
        NamedPolicy {
            name: "user/alice/inline",
            policy: &inline,
        },
        NamedPolicy {
            name: "group/devs/S3Access",
            policy: &devs,
        },
        NamedPolicy {
            name: "group/analytics/ReadOnly",
            policy: &analytics,
        },
        NamedPolicy {
            name: "group/all-staff/Baseline",
            policy: &staff,
        },
    ];
    let sessions = [NamedPolicy {
        name: "session",
        policy: &session,
    }];
    let statements: usize = identity
        .iter()
        .map(|p| p.policy.statement_ids().count())
        .sum();
    assert_eq!(statements, 20);
    let ctx = context();

    let cases = [
        (
            "allow_home_read",
            "s3:GetObject",
            "arn:aws:s3:::corp-data/home/alice/report.csv",
            true,
        ),
        (
            "implicit_deny",
            "s3:DeleteObject",
            "arn:aws:s3:::corp-data/home/bob/report.csv",
            false,
        ),
        (
            "explicit_deny",
            "s3:DeleteBucket",
            "arn:aws:s3:::corp-data",
            false,
        ),
        (
            "allow_tagged_object",
            "s3:GetObject",
            "arn:aws:s3:::warehouse/q1.parquet",
            true,
        ),
    ];
    let mut group = c.benchmark_group("evaluate");
    for (name, action, resource, expected) in cases {
        let req = Request {
            action,
            resource,
            context: &ctx,
        };
        assert_eq!(evaluate(&identity, None, &req).allowed, expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| evaluate(black_box(&identity), None, black_box(&req)))
        });
    }
    let req = Request {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::corp-data/home/alice/report.csv",
        context: &ctx,
    };
    assert!(evaluate(&identity, Some(&sessions), &req).allowed);
    group.bench_function("allow_home_read_with_session", |b| {
        b.iter(|| {
            evaluate(
                black_box(&identity),
                Some(black_box(&sessions)),
                black_box(&req),
            )
        })
    });
    group.finish();

    c.bench_function("parse/group_policy_7_statements", |b| {
        b.iter(|| Policy::parse(black_box(GROUP_DEVS), PolicyKind::Identity))
    });
    c.bench_function("context/build_19_keys", |b| b.iter(context));
}

criterion_group!(benches, bench);
criterion_main!(benches);
