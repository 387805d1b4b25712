"""boto3's own web-identity credential provider through s3warden.

Usage: boto3_web_identity.py ENDPOINT [ALLOWED_PREFIX DENIED_PREFIX]
Writes and reads an object under ALLOWED_PREFIX of bucket "shared" (default
"web/") and expects AccessDenied for a write under DENIED_PREFIX (default
"private/"). The environment names the token file and role (AWS_WEB_IDENTITY_TOKEN_FILE,
AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME) and the STS endpoint (AWS_ENDPOINT_URL_STS),
as a Kubernetes pod or a CI job would. Prints the caller's ARN, then "ok", or
exits non-zero with the first expectation that failed.
"""
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
allowed, denied = sys.argv[2:4] if len(sys.argv) > 3 else ("web/", "private/")
session = boto3.Session(region_name="us-east-1")
creds = session.get_credentials()
assert creds is not None, "no credentials from the web identity provider"
assert creds.method == "assume-role-with-web-identity", creds.method
config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
s3 = session.client("s3", endpoint_url=endpoint, config=config)
s3.put_object(Bucket="shared", Key=allowed + "from-boto3.txt", Body=b"signed in")
body = s3.get_object(Bucket="shared", Key=allowed + "from-boto3.txt")["Body"].read()
assert body == b"signed in", body
try:
    s3.put_object(Bucket="shared", Key=denied + "from-boto3.txt", Body=b"no")
    raise AssertionError("a write outside the role's prefix was allowed")
except ClientError as e:
    assert e.response["Error"]["Code"] == "AccessDenied", e.response
sts = session.client("sts", endpoint_url=endpoint)
print(sts.get_caller_identity()["Arn"])
print("ok")
