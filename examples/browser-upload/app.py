"""A tiny backend for browser uploads through s3warden.

It signs a presigned POST form for each signed-in person, with short-lived
credentials that allow uploads under that person's own prefix only; the
browser posts the file straight to s3warden, which checks the form's
signature and policy and the session's permissions before a byte reaches
storage, and names the person in its audit log. Two ways to sign in, each
usable alone:

* By name (a stand-in for the application's own sign-in). The backend holds
  the key of one IAM user, the *issuer*, and never gives it out: it asks
  s3warden's STS for federated credentials named after the person
  (GetFederationToken) with a session policy for their prefix.
* With OpenID. The person signs in at an OpenID provider (authorization code
  flow with PKCE); the backend trades the ID token, unsigned, for a session of
  a role that trusts the provider (AssumeRoleWithWebIdentity). The role's
  policy gives each person the prefix named by the token's `sub`. No
  long-term key is involved.

    python3 app.py --endpoint http://127.0.0.1:9000 --port 8000

Environment, by name: ISSUER_ACCESS_KEY_ID, ISSUER_SECRET_ACCESS_KEY (the
issuer's key; without them this way is off).
With OpenID: OIDC_ISSUER (the provider, https://HOST/PATH; without it this way
is off), OIDC_CLIENT_ID (default "browser-upload"), OIDC_CA_FILE (a CA to trust
for the provider besides the system's), OIDC_ROLE_ARN (default
arn:aws:iam::000000000000:role/browser-uploader).
Both: UPLOAD_BUCKET (default "uploads"), MAX_UPLOAD_BYTES (default 100 MiB),
APP_SECRET (signs the session cookie; random by default).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from flask import Flask, abort, jsonify, redirect, request, send_from_directory, session, url_for

HERE = os.path.dirname(os.path.abspath(__file__))
# Also a valid GetFederationToken name (2 to 32 characters).
NAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
# What a RoleSessionName may not hold.
NOT_IN_SESSION_NAME = re.compile(r"[^\w+=,.@-]")
SESSION_SECONDS = 900


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_claims(id_token):
    """The claims of an ID token, read without verifying it: s3warden verifies
    the token when the backend trades it; the backend only checks that the
    token answers its own request (the nonce) and names the session."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        claims = None
    if not isinstance(claims, dict):
        abort(502, "the provider's answer holds no readable ID token")
    return claims


class OpenID:
    """The OpenID provider, as a public client using the authorization code
    flow with PKCE sees it: discovery, the authorization URL, the exchange."""

    def __init__(self, issuer, client_id, ca_file):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        # The system's roots, and a private CA when the provider uses one.
        self.tls = ssl.create_default_context()
        if ca_file:
            self.tls.load_verify_locations(cafile=ca_file)
        self._discovery = None

    def _json(self, url, form=None):
        data = urllib.parse.urlencode(form).encode() if form else None
        req = urllib.request.Request(url, data=data, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            abort(502, f"the OpenID provider answered {e.code}: {e.read(2048).decode(errors='replace')}")
        except (urllib.error.URLError, ValueError) as e:
            abort(502, f"the OpenID provider could not be reached: {e}")

    def discovery(self):
        if self._discovery is None:
            d = self._json(self.issuer + "/.well-known/openid-configuration")
            if str(d.get("issuer", "")).rstrip("/") != self.issuer:
                abort(502, "the OpenID provider's discovery document names another issuer")
            self._discovery = d
        return self._discovery

    def authorization_url(self, redirect_uri, state, nonce, verifier):
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        query = urllib.parse.urlencode({
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        return f"{self.discovery()['authorization_endpoint']}?{query}"

    def id_token(self, code, redirect_uri, verifier):
        answer = self._json(self.discovery()["token_endpoint"], {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        })
        token = answer.get("id_token")
        if not isinstance(token, str):
            abort(502, "the OpenID provider's token answer holds no id_token")
        return token


def create_app(endpoint, bucket, max_bytes):
    app = Flask(__name__, static_folder=None)
    app.secret_key = os.environ.get("APP_SECRET") or secrets.token_hex(32)
    region = os.environ.get("AWS_REGION", "us-east-1")
    s3_config = Config(s3={"addressing_style": "path"})
    issuer_key = (os.environ.get("ISSUER_ACCESS_KEY_ID"), os.environ.get("ISSUER_SECRET_ACCESS_KEY"))
    sts = None
    if all(issuer_key):
        sts = boto3.client(
            "sts",
            endpoint_url=endpoint,
            aws_access_key_id=issuer_key[0],
            aws_secret_access_key=issuer_key[1],
            region_name=region,
        )
    openid = None
    if os.environ.get("OIDC_ISSUER"):
        openid = OpenID(
            os.environ["OIDC_ISSUER"],
            os.environ.get("OIDC_CLIENT_ID", "browser-upload"),
            os.environ.get("OIDC_CA_FILE"),
        )
    role_arn = os.environ.get("OIDC_ROLE_ARN", "arn:aws:iam::000000000000:role/browser-uploader")
    # AssumeRoleWithWebIdentity is unsigned: the ID token is the credential.
    sts_unsigned = boto3.client(
        "sts", endpoint_url=endpoint, region_name=region, config=Config(signature_version=UNSIGNED)
    )
    # Role sessions of people signed in with OpenID, by a random id kept in
    # their (signed, not encrypted) session cookie: the secret stays here.
    role_sessions = {}

    def s3_with(creds):
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
            config=s3_config,
        )

    def federated(user):
        """Federated credentials for `user` alone (sign-in by name)."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{user}/*",
            }],
        }
        return sts.get_federation_token(
            Name=user, Policy=json.dumps(policy), DurationSeconds=SESSION_SECONDS
        )["Credentials"]

    def role_session():
        """The role session of the person signed in with OpenID, while valid."""
        held = role_sessions.get(session.get("role_session", ""))
        if held is None or held["Expiration"].timestamp() < time.time() + 60:
            session.clear()
            abort(401, "sign in again")
        return held

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
        if sts is None:
            abort(404, "sign-in by name is off: the backend holds no issuer key")
        name = request.form.get("user", "")
        if not NAME.match(name):
            abort(400, "user names are 2 to 32 letters, digits, '.', '_' or '-'")
        session.clear()
        session["user"] = name
        return redirect("/")

    @app.get("/oidc/login")
    def oidc_login():
        if openid is None:
            abort(404, "sign-in with OpenID is off: OIDC_ISSUER is not set")
        pending = {
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),
        }
        session["oidc"] = pending
        return redirect(openid.authorization_url(
            url_for("oidc_callback", _external=True),
            pending["state"], pending["nonce"], pending["verifier"],
        ))

    @app.get("/oidc/callback")
    def oidc_callback():
        if openid is None:
            abort(404)
        pending = session.pop("oidc", None)
        if pending is None or request.args.get("state") != pending["state"]:
            abort(400, "this sign-in was not started here, or already finished")
        # RFC 9207: the answer names the provider that gave it.
        if request.args.get("iss", openid.issuer).rstrip("/") != openid.issuer:
            abort(400, "the answer comes from another provider")
        if "error" in request.args:
            abort(401, f"sign-in refused: {request.args.get('error_description', request.args['error'])}")
        token = openid.id_token(
            request.args.get("code", ""), url_for("oidc_callback", _external=True), pending["verifier"]
        )
        claims = token_claims(token)
        if claims.get("nonce") != pending["nonce"]:
            abort(400, "the ID token does not answer this sign-in")
        name = NOT_IN_SESSION_NAME.sub("_", str(claims.get("sub", "")))[:64].ljust(2, "_")
        try:
            answer = sts_unsigned.assume_role_with_web_identity(
                RoleArn=role_arn,
                RoleSessionName=name,
                WebIdentityToken=token,
                DurationSeconds=SESSION_SECONDS,
            )
        except ClientError as e:
            abort(403, f"s3warden refused the sign-in: {e.response['Error'].get('Code')}")
        now = time.time()
        for key in [k for k, v in role_sessions.items() if v["Expiration"].timestamp() < now]:
            del role_sessions[key]
        held = secrets.token_urlsafe(24)
        role_sessions[held] = answer["Credentials"]
        session.clear()
        # The subject s3warden verified, which names the role policy's prefix.
        session["user"] = answer["SubjectFromWebIdentityToken"]
        session["role_session"] = held
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
        if "role_session" in session:
            creds = role_session()
        elif sts is not None:
            creds = federated(user)
        else:
            abort(401)
        post = s3_with(creds).generate_presigned_post(
            Bucket=bucket,
            Key=user + "/${filename}",
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
