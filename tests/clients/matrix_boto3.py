"""boto3 at its default settings through s3warden: the matrix operations.

Usage: matrix_boto3.py ENDPOINT KEY SECRET BUCKET PREFIX CA_OR_DASH
Over HTTPS botocore sends PutObject/UploadPart as aws-chunked with a CRC32
trailer; over HTTP as a SHA-256 signed body with a CRC32 header. Presigned
URLs are SigV2, botocore's default for S3 presigning.
"""
import io
import sys

import boto3
import urllib3
from botocore.config import Config

endpoint, key, secret, bucket, prefix, ca = sys.argv[1:7]
verify = None if ca == "-" else ca


def pattern(n):
    return (bytes(range(251)) * (n // 251 + 1))[:n]


s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=key,
    aws_secret_access_key=secret,
    region_name="us-east-1",
    verify=verify,
    config=Config(retries={"max_attempts": 1}),
)
# urllib3 sends no Content-Type of its own: with SigV2 that header is signed.
http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=verify) if verify else urllib3.PoolManager()
small_key = f"{prefix}/odd key +=~é&%.txt"
small = f"small:{prefix}".encode()

s3.put_object(Bucket=bucket, Key=small_key, Body=small)
s3.put_object(Bucket=bucket, Key=f"{prefix}/sub/inner.txt", Body=b"inner")
# Just above the managed transfer's 8 MiB multipart threshold.
s3.upload_fileobj(io.BytesIO(pattern(9 * 1024 * 1024)), bucket, f"{prefix}/large.bin")
got = s3.get_object(Bucket=bucket, Key=small_key, Range="bytes=6-10")["Body"].read()
assert got == small[6:11], got
listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", Delimiter="/")
keys = sorted(o["Key"] for o in listed["Contents"])
assert keys == sorted([small_key, f"{prefix}/large.bin"]), keys
assert [p["Prefix"] for p in listed["CommonPrefixes"]] == [f"{prefix}/sub/"], listed
s3.copy_object(Bucket=bucket, Key=f"{prefix}/copy.txt", CopySource={"Bucket": bucket, "Key": small_key})
s3.put_object(Bucket=bucket, Key=f"{prefix}/gone.txt", Body=b"x")
s3.delete_object(Bucket=bucket, Key=f"{prefix}/gone.txt")

url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": small_key})
assert "AWSAccessKeyId=" in url, url  # botocore's default: SigV2
got = http.request("GET", url)
assert got.status == 200 and got.data == small, (got.status, got.data)
url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": f"{prefix}/presigned.txt"})
put = http.request("PUT", url, body=f"presigned:{prefix}".encode())
assert put.status == 200, (put.status, put.data)
# A URL signed for a Content-Type, used (as it must be) with that header.
url = s3.generate_presigned_url(
    "put_object", Params={"Bucket": bucket, "Key": f"{prefix}/typed.txt", "ContentType": "text/plain"}
)
put = http.request("PUT", url, body=b"typed", headers={"Content-Type": "text/plain"})
assert put.status == 200, (put.status, put.data)
typed = s3.head_object(Bucket=bucket, Key=f"{prefix}/typed.txt")
assert typed["ContentType"] == "text/plain", typed
bad = http.request("PUT", url, body=b"typed", headers={"Content-Type": "text/html"})
assert bad.status == 400, (bad.status, bad.data)
print("ok")
