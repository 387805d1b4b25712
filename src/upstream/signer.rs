//! SigV4 for the upstream request, written straight into the hash: the
//! canonical request is fed to SHA-256 as it is produced (the same writer the
//! verifying side uses) and the string to sign is HMACed with a cached
//! `kSigning`, so re-signing costs two hashes and a handful of small strings.
//! Signs exactly what aws-sigv4 signs with [`super::s3_signing_settings`]:
//! every header given except the ones the SDKs leave unsigned, plus `host`,
//! `x-amz-date`, `x-amz-content-sha256` and, with temporary credentials,
//! `x-amz-security-token` (the tests compare the two signers).

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};

use super::UpstreamError;
use crate::auth::canonical::{canonical_query, write_canonical_request};
use crate::auth::signing::{SigningKeyCache, hex32};
use crate::auth::{RequestParts, X_AMZ_CONTENT_SHA256, X_AMZ_DATE, X_AMZ_SECURITY_TOKEN};

/// Headers aws-sigv4 (like the Go, Java and JS SDKs) leaves out of the
/// signature: proxies and CDNs may change them.
const UNSIGNED: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];

/// Adds `x-amz-date`, `x-amz-content-sha256`, the session token if any and
/// `authorization` to `headers` (which already hold `host`), signing `path`
/// (encoded, as sent) and `query` (decoded pairs) for S3 in `region` at `now`.
#[allow(clippy::too_many_arguments)]
pub(super) fn sign(
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &mut HeaderMap,
    payload_hash: &str,
    creds: &aws_credential_types::Credentials,
    region: &str,
    keys: &SigningKeyCache,
    now: DateTime<Utc>,
) -> Result<(), UpstreamError> {
    let timestamp = crate::auth::time::format_amz_date(&now);
    let date = &timestamp[..8];
    let value =
        |v: &str| HeaderValue::from_str(v).map_err(|e| UpstreamError::Signing(e.to_string()));
    headers.insert(X_AMZ_DATE.clone(), value(&timestamp)?);
    headers.insert(X_AMZ_CONTENT_SHA256.clone(), value(payload_hash)?);
    if let Some(token) = creds.session_token() {
        let mut token = value(token)?;
        token.set_sensitive(true);
        headers.insert(X_AMZ_SECURITY_TOKEN.clone(), token);
    }
    headers.remove(http::header::AUTHORIZATION);
    for (name, v) in headers.iter() {
        v.to_str()
            .map_err(|_| UpstreamError::HeaderValue(name.as_str().to_string()))?;
    }

    let mut names: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|n| !UNSIGNED.contains(n))
        .collect();
    names.sort_unstable();
    let signed_headers = names.join(";");
    let parts = RequestParts {
        method: method.as_str(),
        path,
        query: "",
        headers,
        authority: None,
    };
    let mut hasher = Sha256::new();
    write_canonical_request(
        &mut hasher,
        &parts,
        &canonical_query(query, None),
        &names,
        &signed_headers,
        payload_hash,
    );
    let request_hash = hex32(&hasher.finalize().into());

    let mut scope = String::with_capacity(64);
    scope.push_str(date);
    scope.push('/');
    scope.push_str(region);
    scope.push_str("/s3/aws4_request");
    let key = keys.key(
        creds.access_key_id(),
        creds.secret_access_key(),
        date,
        region,
        "s3",
    );
    let signature = hex32(&key.sign_lines(
        b"AWS4-HMAC-SHA256",
        timestamp.as_bytes(),
        scope.as_bytes(),
        &[&request_hash],
    ));
    let mut authorization = String::with_capacity(200);
    authorization.push_str("AWS4-HMAC-SHA256 Credential=");
    authorization.push_str(creds.access_key_id());
    authorization.push('/');
    authorization.push_str(&scope);
    authorization.push_str(", SignedHeaders=");
    authorization.push_str(&signed_headers);
    authorization.push_str(", Signature=");
    // Hex digits: always ASCII.
    authorization.push_str(std::str::from_utf8(&signature).unwrap_or_default());
    let mut authorization = value(&authorization)?;
    authorization.set_sensitive(true);
    headers.insert(http::header::AUTHORIZATION, authorization);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// The reference: aws-sigv4 with S3's settings, as the proxy used before.
    fn reference(
        method: &Method,
        url: &str,
        headers: &HeaderMap,
        payload_hash: &str,
        creds: &aws_credential_types::Credentials,
        at: SystemTime,
    ) -> HeaderMap {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
        let identity = creds.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("s3")
            .time(at)
            .settings(super::super::s3_signing_settings())
            .build()
            .unwrap()
            .into();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            pairs.into_iter(),
            SignableBody::Precomputed(payload_hash.to_string()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .body(())
            .unwrap();
        *req.headers_mut() = headers.clone();
        instructions.apply_to_request_http1x(&mut req);
        req.headers().clone()
    }

    fn check(method: Method, path: &str, query: &[(&str, &str)], extra: &[(&str, &str)]) {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut url = format!("http://127.0.0.1:9100{path}");
        for (i, (n, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            crate::auth::canonical::uri_encode_into(&mut url, n, false);
            url.push('=');
            crate::auth::canonical::uri_encode_into(&mut url, v, false);
        }
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:9100"));
        for (n, v) in extra {
            headers.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_000_123);
        for creds in [
            aws_credential_types::Credentials::new("AKIDUP", "secret/up+1", None, None, "t"),
            aws_credential_types::Credentials::new(
                "ASIAUP",
                "secret2",
                Some("tok/en+=".into()),
                None,
                "t",
            ),
        ] {
            let want = reference(&method, &url, &headers, hash, &creds, at);
            let mut got = headers.clone();
            sign(
                &method,
                path,
                &query,
                &mut got,
                hash,
                &creds,
                "eu-west-3",
                &SigningKeyCache::new(4),
                at.into(),
            )
            .unwrap();
            assert_eq!(got, want, "{method} {url} {extra:?}");
        }
    }

    #[test]
    fn signs_as_aws_sigv4_does() {
        check(Method::GET, "/b/k", &[], &[]);
        check(
            Method::HEAD,
            "/b/a%20b/c%2Bd~e",
            &[],
            &[("range", "bytes=0-9")],
        );
        check(
            Method::GET,
            "/b",
            &[("prefix", "a/b c"), ("list-type", "2"), ("delimiter", "/")],
            &[],
        );
        check(Method::POST, "/b/k", &[("uploads", "")], &[]);
        check(
            Method::PUT,
            "/b/%C3%A9t%C3%A9",
            &[("partNumber", "3"), ("uploadId", "x~y*z")],
            &[
                ("content-length", "5"),
                ("content-type", "text/plain"),
                ("x-amz-meta-note", "  two  spaces  "),
                ("x-amz-meta-list", "a"),
                ("x-amz-meta-list", "b"),
                ("user-agent", "left out"),
                ("transfer-encoding", "chunked"),
            ],
        );
    }

    #[test]
    fn a_header_value_that_is_not_visible_ascii_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("h"));
        headers.insert(
            "x-amz-meta-a",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        let creds = aws_credential_types::Credentials::new("A", "s", None, None, "t");
        let e = sign(
            &Method::GET,
            "/b/k",
            &[],
            &mut headers,
            "UNSIGNED-PAYLOAD",
            &creds,
            "us-east-1",
            &SigningKeyCache::new(4),
            Utc::now(),
        )
        .unwrap_err();
        assert!(matches!(e, UpstreamError::HeaderValue(n) if n == "x-amz-meta-a"));
    }
}
