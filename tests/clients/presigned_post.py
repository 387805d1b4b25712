"""Prints the presigned POST boto3 makes, as JSON: {"url": ..., "fields": {...}}.

Usage: presigned_post.py ENDPOINT KEY SECRET TOKEN|- SIGNATURE_VERSION|- BUCKET KEY EXPIRES JSON
JSON is {"fields": {...}, "conditions": [...]}, passed to generate_presigned_post
as Fields and Conditions. SIGNATURE_VERSION "-" keeps boto3's default (SigV2
fields for presigned POSTs); "s3v4" asks for SigV4 fields.
"""
import json
import sys

import boto3
from botocore.config import Config

endpoint, key, secret, token, version, bucket, object_key, expires, extra = sys.argv[1:10]
extra = json.loads(extra)
config = {"s3": {"addressing_style": "path"}}
if version != "-":
    config["signature_version"] = version
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=key,
    aws_secret_access_key=secret,
    aws_session_token=None if token == "-" else token,
    region_name="us-east-1",
    config=Config(**config),
)
post = s3.generate_presigned_post(
    bucket,
    object_key,
    Fields=extra.get("fields"),
    Conditions=extra.get("conditions"),
    ExpiresIn=int(expires),
)
print(json.dumps(post))
