"""boto3 at default settings through s3warden, as a user confined to a prefix.

Usage: boto3_prefix_user.py ENDPOINT ROOT_KEY ROOT_SECRET USER USER_KEY USER_SECRET
Exits non-zero with a message on the first expectation that fails.
"""
import hashlib
import io
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, root_key, root_secret, user, user_key, user_secret = sys.argv[1:7]
BUCKET = "shared"


def client(key, secret):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def expect_denied(what, fn):
    try:
        fn()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code == "AccessDenied", f"{what}: expected AccessDenied, got {code}"
        return
    raise AssertionError(f"{what}: expected AccessDenied, but it succeeded")


root = client(root_key, root_secret)
try:
    root.create_bucket(Bucket=BUCKET)
except ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
root.put_object(Bucket=BUCKET, Key="other/secret.txt", Body=b"not yours")

s3 = client(user_key, user_secret)
p = f"{user}/"

# put, get (whole and ranged), head
s3.put_object(Bucket=BUCKET, Key=p + "hello.txt", Body=b"hello world", ContentType="text/plain")
got = s3.get_object(Bucket=BUCKET, Key=p + "hello.txt")
assert got["Body"].read() == b"hello world"
assert got["ContentType"] == "text/plain"
ranged = s3.get_object(Bucket=BUCKET, Key=p + "hello.txt", Range="bytes=0-4")["Body"].read()
assert ranged == b"hello", ranged
assert s3.head_object(Bucket=BUCKET, Key=p + "hello.txt")["ContentLength"] == 11

# odd keys round-trip verbatim
odd = [p + "sp ace+plus%25=&~.txt", p + "a/../b", p + "a//b", p + "ünï/✓", p + "dir/"]
for k in odd:
    s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
for k in odd:
    assert s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() == k.encode(), k

# list with prefix and delimiter
listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=p, Delimiter="/")
keys = {o["Key"] for o in listed.get("Contents", [])}
prefixes = {c["Prefix"] for c in listed.get("CommonPrefixes", [])}
assert p + "hello.txt" in keys, keys
assert p + "dir/" in prefixes and p + "a/" in prefixes, prefixes
v1 = s3.list_objects(Bucket=BUCKET, Prefix=p)
assert len(v1["Contents"]) == 1 + len(odd), v1["Contents"]

# multipart upload over 16 MiB through the managed transfer
data = os.urandom(17 * 1024 * 1024 + 123)
cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(data), BUCKET, p + "big.bin", Config=cfg)
back = io.BytesIO()
s3.download_fileobj(BUCKET, p + "big.bin", back, Config=cfg)
assert hashlib.sha256(back.getvalue()).digest() == hashlib.sha256(data).digest(), "multipart round trip"
head = s3.head_object(Bucket=BUCKET, Key=p + "big.bin")
assert head["ContentLength"] == len(data)
assert head["ETag"].endswith('-3"'), head["ETag"]

# copy within the prefix
s3.copy_object(Bucket=BUCKET, Key=p + "copy.txt", CopySource={"Bucket": BUCKET, "Key": p + "hello.txt"})
assert s3.get_object(Bucket=BUCKET, Key=p + "copy.txt")["Body"].read() == b"hello world"

# denied: outside the prefix, in every way a client can reach it
expect_denied("get other", lambda: s3.get_object(Bucket=BUCKET, Key="other/secret.txt"))
expect_denied("put other", lambda: s3.put_object(Bucket=BUCKET, Key="other/x", Body=b"x"))
expect_denied("list root", lambda: s3.list_objects_v2(Bucket=BUCKET))
expect_denied("list other", lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="other/"))
expect_denied(
    "copy from other",
    lambda: s3.copy_object(Bucket=BUCKET, Key=p + "stolen", CopySource={"Bucket": BUCKET, "Key": "other/secret.txt"}),
)
expect_denied("create bucket", lambda: s3.create_bucket(Bucket="not-yours"))
# a missing key outside ListBucket's reach reads as 403, never 404
expect_denied("get missing other", lambda: s3.get_object(Bucket=BUCKET, Key="other/missing"))

# multi-delete: own keys go, a smuggled foreign key is reported and survives
res = s3.delete_objects(
    Bucket=BUCKET,
    Delete={"Objects": [{"Key": p + "copy.txt"}, {"Key": "other/secret.txt"}]},
)
assert [d["Key"] for d in res.get("Deleted", [])] == [p + "copy.txt"], res
assert [(e["Key"], e["Code"]) for e in res.get("Errors", [])] == [("other/secret.txt", "AccessDenied")], res
assert root.get_object(Bucket=BUCKET, Key="other/secret.txt")["Body"].read() == b"not yours"

# delete
s3.delete_object(Bucket=BUCKET, Key=p + "hello.txt")
try:
    s3.head_object(Bucket=BUCKET, Key=p + "hello.txt")
    raise AssertionError("deleted object is still there")
except ClientError as e:
    # The user may list its prefix only, not the bucket, so S3 answers 403.
    assert e.response["Error"]["Code"] in ("403", "404"), e.response

print("ok")
