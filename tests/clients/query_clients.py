"""Shared by the client scripts: boto3 clients pointed at s3warden, and an
assertion that a call fails with a given AWS error code."""
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


def make_client(endpoint, service, key, secret, token=None):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name="us-east-1",
        config=CONFIG,
    )


def expect_error(what, code, fn):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{what}: expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"{what}: expected {code}, but it succeeded")
