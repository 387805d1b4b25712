"""A tiny backend for browser uploads through s3warden.

It holds the key of one IAM user, the *issuer*, and never gives it out. For
each signed-in person it asks s3warden's STS for short-lived federated
credentials named after that person, with a session policy that allows
uploads under their own prefix only, and signs a presigned POST form with
them (boto3's generate_presigned_post, at its default settings). The browser
posts the file straight to s3warden. Before a byte reaches storage, s3warden
checks the form's signature and policy, and the session's permissions: the
issuer's IAM policy intersected with the session policy. Its audit log names
the person (federated user) behind every upload.

    python3 app.py --endpoint http://127.0.0.1:9000 --port 8000

Environment: ISSUER_ACCESS_KEY_ID, ISSUER_SECRET_ACCESS_KEY (the issuer's key),
UPLOAD_BUCKET (default "uploads"), MAX_UPLOAD_BYTES (default 100 MiB).
"""
import argparse
import json
import os
import re
import secrets

import boto3
from botocore.config import Config
from flask import Flask, abort, jsonify, redirect, request, send_from_directory, session

HERE = os.path.dirname(os.path.abspath(__file__))
# Also a valid GetFederationToken name (2 to 32 characters).
NAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
SESSION_SECONDS = 900


def create_app(endpoint, bucket, max_bytes):
    app = Flask(__name__, static_folder=None)
    app.secret_key = os.environ.get("APP_SECRET") or secrets.token_hex(32)
    region = os.environ.get("AWS_REGION", "us-east-1")
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ["ISSUER_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["ISSUER_SECRET_ACCESS_KEY"],
        region_name=region,
    )

    def s3_for(user):
        """An S3 client holding federated credentials for `user` alone."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{user}/*",
            }],
        }
        creds = sts.get_federation_token(
            Name=user, Policy=json.dumps(policy), DurationSeconds=SESSION_SECONDS
        )["Credentials"]
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
            config=Config(s3={"addressing_style": "path"}),
        )

    @app.get("/")
    def index():
        if "user" not in session:
            return send_from_directory(os.path.join(HERE, "static"), "signin.html")
        return send_from_directory(os.path.join(HERE, "static"), "upload.html")

    @app.get("/static/<path:name>")
    def static_file(name):
        return send_from_directory(os.path.join(HERE, "static"), name)

    @app.post("/signin")
    def signin():
        # A stand-in for the application's real sign-in.
        name = request.form.get("user", "")
        if not NAME.match(name):
            abort(400, "user names are 2 to 32 letters, digits, '.', '_' or '-'")
        session["user"] = name
        return redirect("/")

    @app.get("/api/me")
    def me():
        if "user" not in session:
            abort(401)
        return jsonify(user=session["user"], bucket=bucket, max_bytes=max_bytes)

    @app.post("/api/presign")
    def presign():
        if "user" not in session:
            abort(401)
        user = session["user"]
        prefix = user + "/"
        post = s3_for(user).generate_presigned_post(
            Bucket=bucket,
            Key=prefix + "${filename}",
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=600,
        )
        return jsonify(post)

    return app


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="http://127.0.0.1:9000", help="s3warden's endpoint")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args()
    app = create_app(
        args.endpoint,
        os.environ.get("UPLOAD_BUCKET", "uploads"),
        int(os.environ.get("MAX_UPLOAD_BYTES", str(100 * 1024 * 1024))),
    )
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
