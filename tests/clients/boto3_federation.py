"""The federated-credential recipes with boto3 through s3warden.

Usage:
  boto3_federation.py scenario1 ENDPOINT ROOT_KEY ROOT_SECRET ISSUER_KEY ISSUER_SECRET TEMPLATE_FILE
  boto3_federation.py scenario2 ENDPOINT ROOT_KEY ROOT_SECRET ISSUER_KEY ISSUER_SECRET
Prints "ok", or exits non-zero with the first expectation that failed.
"""
import json
import sys

from query_clients import expect_error, make_client

mode, endpoint, root_key, root_secret, issuer_key, issuer_secret = sys.argv[1:7]


def client(service, key, secret, token=None):
    return make_client(endpoint, service, key, secret, token)


def federate(name, policy, duration=900):
    sts = client("sts", issuer_key, issuer_secret)
    out = sts.get_federation_token(Name=name, Policy=json.dumps(policy), DurationSeconds=duration)
    c = out["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA"), c["AccessKeyId"]
    assert out["FederatedUser"]["Arn"].endswith(f":federated-user/{name}"), out
    assert out["FederatedUser"]["FederatedUserId"].endswith(f":{name}"), out
    return c


def session_clients(c):
    args = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    return client("s3", *args), client("sts", *args), client("iam", *args)


def scenario1(template_file):
    bucket = "user-uploads"
    root = client("s3", root_key, root_secret)
    root.create_bucket(Bucket=bucket)
    root.create_bucket(Bucket="other-bucket")
    root.put_object(Bucket=bucket, Key="bob/secret.txt", Body=b"bob's")
    # The issuer may read its own identity (the recipe's iam:GetUser).
    me = client("iam", issuer_key, issuer_secret).get_user()["User"]
    assert me["UserName"] == "upload-issuer", me

    template = open(template_file).read()
    policy = json.loads(template.replace("%%BUCKET_NAME%%", bucket).replace("%%USERNAME%%", "alice"))
    creds = federate("alice", policy)
    s3, sts, iam = session_clients(creds)

    who = sts.get_caller_identity()
    assert who["Arn"].endswith(":federated-user/alice"), who
    assert who["UserId"].endswith(":alice"), who

    s3.put_object(Bucket=bucket, Key="alice/photo.jpg", Body=b"alice's photo")
    assert s3.get_object(Bucket=bucket, Key="alice/photo.jpg")["Body"].read() == b"alice's photo"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="alice/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["alice/photo.jpg"], listed
    s3.delete_object(Bucket=bucket, Key="alice/photo.jpg")

    expect_error("put outside the folder", "AccessDenied",
                 lambda: s3.put_object(Bucket=bucket, Key="bob/x", Body=b"x"))
    expect_error("read another folder", "AccessDenied",
                 lambda: s3.get_object(Bucket=bucket, Key="bob/secret.txt"))
    expect_error("list another prefix", "AccessDenied",
                 lambda: s3.list_objects_v2(Bucket=bucket, Prefix="bob/"))
    expect_error("list the whole bucket", "AccessDenied",
                 lambda: s3.list_objects_v2(Bucket=bucket))
    expect_error("another bucket", "AccessDenied",
                 lambda: s3.put_object(Bucket="other-bucket", Key="alice/x", Body=b"x"))
    expect_error("list buckets", "AccessDenied", lambda: s3.list_buckets())
    # Temporary credentials cannot call IAM, nor STS beyond GetCallerIdentity.
    expect_error("iam", "InvalidClientTokenId", lambda: iam.list_users())
    expect_error("iam get-user", "InvalidClientTokenId", lambda: iam.get_user())
    expect_error("sts federation", "AccessDenied",
                 lambda: sts.get_federation_token(Name="mallory", Policy=json.dumps(policy)))
    expect_error("sts session token", "AccessDenied", lambda: sts.get_session_token())

    # The same, written once with a policy variable instead of a template.
    variables = json.loads(open(template_file.replace("session-template", "session-variables")).read())
    creds = federate("carol", variables)
    s3c, stsc, _ = session_clients(creds)
    userid = stsc.get_caller_identity()["UserId"]
    s3c.put_object(Bucket=bucket, Key=f"{userid}/notes.txt", Body=b"carol")
    s3c.list_objects_v2(Bucket=bucket, Prefix=f"{userid}/")
    expect_error("variables: another folder", "AccessDenied",
                 lambda: s3c.put_object(Bucket=bucket, Key="alice/x", Body=b"x"))

    # Without a session policy, a federated session has no permissions at all.
    sts_issuer = client("sts", issuer_key, issuer_secret)
    bare = sts_issuer.get_federation_token(Name="nobody", DurationSeconds=900)["Credentials"]
    s3n, _, _ = session_clients(bare)
    expect_error("no session policy", "AccessDenied",
                 lambda: s3n.put_object(Bucket=bucket, Key="nobody/x", Body=b"x"))


def scenario2():
    bucket = "private-bucket"
    root = client("s3", root_key, root_secret)
    root.create_bucket(Bucket=bucket)
    root.put_object(Bucket=bucket, Key="uploads/existing.txt", Body=b"existing")
    narrow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                       "Resource": f"arn:aws:s3:::{bucket}/uploads/*"}],
    }
    s3, _, _ = session_clients(federate("uploader", narrow))
    s3.put_object(Bucket=bucket, Key="uploads/a.txt", Body=b"a")
    e = expect_error("outside the prefix", "AccessDenied",
                     lambda: s3.put_object(Bucket=bucket, Key="deny_uploads/a.txt", Body=b"a"))
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response

    # A session policy asking for more than the issuer has is issued without
    # error, and never grants more than the issuer has.
    greedy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                      {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
    }
    s3g, stsg, iamg = session_clients(federate("greedy", greedy))
    s3g.put_object(Bucket=bucket, Key="anywhere/b.txt", Body=b"b")  # the issuer has PutObject
    expect_error("get beyond the issuer", "AccessDenied",
                 lambda: s3g.get_object(Bucket=bucket, Key="uploads/existing.txt"))
    expect_error("list beyond the issuer", "AccessDenied",
                 lambda: s3g.list_objects_v2(Bucket=bucket))
    expect_error("delete beyond the issuer", "AccessDenied",
                 lambda: s3g.delete_object(Bucket=bucket, Key="uploads/existing.txt"))
    expect_error("create bucket beyond the issuer", "AccessDenied",
                 lambda: s3g.create_bucket(Bucket="greedy-bucket"))
    expect_error("iam beyond the issuer", "InvalidClientTokenId", lambda: iamg.list_users())
    # The object the greedy token could not read is still there for root.
    assert root.get_object(Bucket=bucket, Key="uploads/existing.txt")["Body"].read() == b"existing"


if mode == "scenario1":
    scenario1(sys.argv[7])
elif mode == "scenario2":
    scenario2()
else:
    raise SystemExit(f"unknown mode {mode}")
print("ok")
