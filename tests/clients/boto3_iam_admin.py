"""An administrator's IAM workflows with boto3 through s3warden.

Usage:
  boto3_iam_admin.py workflow ENDPOINT ROOT_KEY ROOT_SECRET
  boto3_iam_admin.py roles ENDPOINT ROOT_KEY ROOT_SECRET
Prints "ok", or exits non-zero with the first expectation that failed.
"""
import json
import sys

from query_clients import expect_error, make_client

mode, endpoint, root_key, root_secret = sys.argv[1:5]


def client(service, key=root_key, secret=root_secret, token=None):
    return make_client(endpoint, service, key, secret, token)



BACKUP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                   "Resource": "arn:aws:s3:::backup-bucket/*"}],
}


def workflow():
    iam = client("iam")
    s3 = client("s3")
    s3.create_bucket(Bucket="backup-bucket")
    s3.create_bucket(Bucket="other-bucket")

    user = iam.create_user(UserName="backup_user")["User"]
    assert user["Arn"].endswith(":user/backup_user") and user["UserId"].startswith("AIDA"), user
    key = iam.create_access_key(UserName="backup_user")["AccessKey"]
    assert key["Status"] == "Active" and key["AccessKeyId"].startswith("AKIA"), key
    iam.create_group(GroupName="backup_group")
    iam.put_group_policy(GroupName="backup_group", PolicyName="S3BackupPolicy",
                         PolicyDocument=json.dumps(BACKUP_POLICY))
    iam.add_user_to_group(GroupName="backup_group", UserName="backup_user")

    # boto3 URL-decodes and parses the document, as it does against AWS.
    doc = iam.get_group_policy(GroupName="backup_group", PolicyName="S3BackupPolicy")["PolicyDocument"]
    assert doc == BACKUP_POLICY, doc
    members = iam.get_group(GroupName="backup_group")["Users"]
    assert [u["UserName"] for u in members] == ["backup_user"], members
    groups = iam.list_groups_for_user(UserName="backup_user")["Groups"]
    assert [g["GroupName"] for g in groups] == ["backup_group"], groups
    assert iam.list_group_policies(GroupName="backup_group")["PolicyNames"] == ["S3BackupPolicy"]
    keys = iam.list_access_keys(UserName="backup_user")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [key["AccessKeyId"]], keys

    backup = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
    backup.put_object(Bucket="backup-bucket", Key="db/2024-01-01.dump", Body=b"dump")
    assert backup.get_object(Bucket="backup-bucket", Key="db/2024-01-01.dump")["Body"].read() == b"dump"
    backup.delete_object(Bucket="backup-bucket", Key="db/2024-01-01.dump")
    expect_error("other bucket", "AccessDenied",
                 lambda: backup.put_object(Bucket="other-bucket", Key="x", Body=b"x"))
    expect_error("list", "AccessDenied", lambda: backup.list_objects_v2(Bucket="backup-bucket"))
    expect_error("iam", "AccessDenied", lambda: client("iam", key["AccessKeyId"], key["SecretAccessKey"]).list_users())

    # Removing the user from the group cuts access on the next request.
    iam.remove_user_from_group(GroupName="backup_group", UserName="backup_user")
    expect_error("after removal", "AccessDenied",
                 lambda: backup.put_object(Bucket="backup-bucket", Key="db/x", Body=b"x"))

    # A managed policy attached to the user gives it back; detaching takes it away.
    arn = iam.create_policy(PolicyName="BackupManaged", PolicyDocument=json.dumps(BACKUP_POLICY),
                            Description="backups")["Policy"]["Arn"]
    iam.attach_user_policy(UserName="backup_user", PolicyArn=arn)
    backup.put_object(Bucket="backup-bucket", Key="db/y", Body=b"y")
    attached = iam.list_attached_user_policies(UserName="backup_user")["AttachedPolicies"]
    assert attached == [{"PolicyName": "BackupManaged", "PolicyArn": arn}], attached
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["AttachmentCount"] == 1 and got["DefaultVersionId"] == "v1", got
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == BACKUP_POLICY, version
    expect_error("delete attached policy", "DeleteConflict", lambda: iam.delete_policy(PolicyArn=arn))
    iam.detach_user_policy(UserName="backup_user", PolicyArn=arn)
    expect_error("after detach", "AccessDenied",
                 lambda: backup.put_object(Bucket="backup-bucket", Key="db/z", Body=b"z"))

    # Deactivating the key stops it at once; reactivating restores it.
    iam.add_user_to_group(GroupName="backup_group", UserName="backup_user")
    iam.update_access_key(UserName="backup_user", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    expect_error("inactive key", "InvalidAccessKeyId",
                 lambda: backup.put_object(Bucket="backup-bucket", Key="db/w", Body=b"w"))
    iam.update_access_key(UserName="backup_user", AccessKeyId=key["AccessKeyId"], Status="Active")
    backup.put_object(Bucket="backup-bucket", Key="db/w", Body=b"w")

    # At most two keys per user.
    second = iam.create_access_key(UserName="backup_user")["AccessKey"]
    expect_error("third key", "LimitExceeded", lambda: iam.create_access_key(UserName="backup_user"))
    # A user can manage its own keys when a policy lets it (UserName omitted).
    iam.put_user_policy(UserName="backup_user", PolicyName="own-keys", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:ListAccessKeys", "iam:GetUser"],
                       "Resource": "arn:aws:iam::*:user/${aws:username}"}]}))
    own = client("iam", second["AccessKeyId"], second["SecretAccessKey"])
    assert len(own.list_access_keys()["AccessKeyMetadata"]) == 2
    assert own.get_user()["User"]["UserName"] == "backup_user"

    # Deleting: conflicts first, then clean.
    expect_error("delete with keys", "DeleteConflict", lambda: iam.delete_user(UserName="backup_user"))
    expect_error("delete group with members", "DeleteConflict", lambda: iam.delete_group(GroupName="backup_group"))
    for k in (key, second):
        iam.delete_access_key(UserName="backup_user", AccessKeyId=k["AccessKeyId"])
    iam.delete_user_policy(UserName="backup_user", PolicyName="own-keys")
    iam.remove_user_from_group(GroupName="backup_group", UserName="backup_user")
    iam.delete_user(UserName="backup_user")
    iam.delete_group_policy(GroupName="backup_group", PolicyName="S3BackupPolicy")
    iam.delete_group(GroupName="backup_group")
    iam.delete_policy(PolicyArn=arn)
    expect_error("deleted user", "NoSuchEntity", lambda: iam.get_user(UserName="backup_user"))

    # Pagination with Marker/MaxItems, through boto3's paginator.
    for i in range(7):
        iam.create_user(UserName=f"page-user-{i}", Path="/paged/")
    first = iam.list_users(PathPrefix="/paged/", MaxItems=3)
    assert first["IsTruncated"] and len(first["Users"]) == 3, first
    names = []
    for page in iam.get_paginator("list_users").paginate(PathPrefix="/paged/", PaginationConfig={"PageSize": 2}):
        names += [u["UserName"] for u in page["Users"]]
    assert names == [f"page-user-{i}" for i in range(7)], names

    # Config-declared entities are owned by the config file.
    e = expect_error("config user", "UnmodifiableEntity", lambda: iam.delete_user(UserName="alice"))
    assert "config" in e.response["Error"]["Message"], e.response
    expect_error("config group policy", "UnmodifiableEntity",
                 lambda: iam.put_group_policy(GroupName="prefix-users", PolicyName="x",
                                              PolicyDocument=json.dumps(BACKUP_POLICY)))
    expect_error("config user key", "UnmodifiableEntity", lambda: iam.create_access_key(UserName="alice"))
    # ... but they are visible, with their policies.
    assert iam.get_user(UserName="alice")["User"]["UserName"] == "alice"
    assert iam.list_group_policies(GroupName="prefix-users")["PolicyNames"] == ["own-prefix"]


def roles():
    iam = client("iam")
    s3 = client("s3")
    s3.create_bucket(Bucket="reports")
    s3.put_object(Bucket="reports", Key="q1.csv", Body=b"q1")
    account = client("sts").get_caller_identity()["Account"]

    def user(name):
        iam.create_user(UserName=name)
        k = iam.create_access_key(UserName=name)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]

    trusted, stranger, delegated = user("trusted"), user("stranger"), user("delegated")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:user/trusted"},
             "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "ext-123"}}},
        ],
    }
    role = iam.create_role(RoleName="report-reader", AssumeRolePolicyDocument=json.dumps(trust),
                           MaxSessionDuration=7200, Description="reads reports")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account}:role/report-reader", role
    assert iam.get_role(RoleName="report-reader")["Role"]["AssumeRolePolicyDocument"] == trust
    iam.put_role_policy(RoleName="report-reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]}]}))

    # Named in the trust policy: allowed without any identity policy.
    out = client("sts", *trusted).assume_role(RoleArn=role["Arn"], RoleSessionName="nightly")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/report-reader/nightly", out
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:nightly", out
    c = out["Credentials"]
    session = client("s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert session.get_object(Bucket="reports", Key="q1.csv")["Body"].read() == b"q1"
    expect_error("role cannot write", "AccessDenied",
                 lambda: session.put_object(Bucket="reports", Key="x", Body=b"x"))
    who = client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).get_caller_identity()
    assert who["Arn"].endswith(":assumed-role/report-reader/nightly"), who

    # Not named, no identity policy: refused.
    expect_error("stranger", "AccessDenied",
                 lambda: client("sts", *stranger).assume_role(RoleArn=role["Arn"], RoleSessionName="xx"))
    # Trusted only through the account: needs an identity Allow and the external id.
    expect_error("delegated without identity policy", "AccessDenied",
                 lambda: client("sts", *delegated).assume_role(RoleArn=role["Arn"], RoleSessionName="dd",
                                                               ExternalId="ext-123"))
    iam.put_user_policy(UserName="delegated", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]}]}))
    expect_error("delegated with the wrong external id", "AccessDenied",
                 lambda: client("sts", *delegated).assume_role(RoleArn=role["Arn"], RoleSessionName="dd",
                                                               ExternalId="wrong"))
    client("sts", *delegated).assume_role(RoleArn=role["Arn"], RoleSessionName="dd", ExternalId="ext-123")

    # Durations: up to the role's maximum.
    expect_error("beyond the role maximum", "ValidationError",
                 lambda: client("sts", *trusted).assume_role(RoleArn=role["Arn"], RoleSessionName="long",
                                                             DurationSeconds=7201))
    client("sts", *trusted).assume_role(RoleArn=role["Arn"], RoleSessionName="long", DurationSeconds=7200)
    # A session policy narrows the role.
    narrowed = client("sts", *trusted).assume_role(
        RoleArn=role["Arn"], RoleSessionName="narrow",
        Policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                          "Resource": "arn:aws:s3:::reports"}]}))["Credentials"]
    ns = client("s3", narrowed["AccessKeyId"], narrowed["SecretAccessKey"], narrowed["SessionToken"])
    ns.list_objects_v2(Bucket="reports")
    expect_error("narrowed session", "AccessDenied", lambda: ns.get_object(Bucket="reports", Key="q1.csv"))
    # An unknown role is refused like a forbidden one.
    expect_error("unknown role", "AccessDenied",
                 lambda: client("sts", *trusted).assume_role(
                     RoleArn=f"arn:aws:iam::{account}:role/nope", RoleSessionName="xx"))
    # Removing the role's policy ends what its sessions may do.
    iam.delete_role_policy(RoleName="report-reader", PolicyName="read")
    expect_error("after policy removal", "AccessDenied", lambda: session.get_object(Bucket="reports", Key="q1.csv"))
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["report-reader"]
    iam.delete_role(RoleName="report-reader")
    expect_error("deleted role session", "InvalidToken",
                 lambda: session.get_object(Bucket="reports", Key="q1.csv"))


if mode == "workflow":
    workflow()
elif mode == "roles":
    roles()
else:
    raise SystemExit(f"unknown mode {mode}")
print("ok")
