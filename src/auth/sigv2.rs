//! AWS Signature Version 2 for S3, header (`Authorization: AWS AKID:SIG`) and
//! presigned (`AWSAccessKeyId`, `Expires`, `Signature`), verified as strictly
//! as SigV4: every `x-amz-*` header is covered, the time is checked, the
//! signature compared in constant time.
//!
//! The string to sign (S3 developer guide, "Signing and authenticating REST
//! requests"; botocore `HmacV1Auth`):
//!
//! ```text
//! METHOD\n Content-MD5\n Content-Type\n Date-or-Expires\n
//! x-amz-name:value\n ... (lowercase, sorted, repeated values joined by ",")
//! /bucket/path?subresource=value&... (sub-resources only, sorted, values decoded)
//! ```
//!
//! The date line is empty when `x-amz-date` is sent, and is the `Expires`
//! value for presigned URLs. A presigned URL may carry `x-amz-*`,
//! `content-type` and `content-md5` as query parameters (botocore moves them
//! there); they are signed as if they were headers.

use crate::auth::canonical::QueryPair;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::time::{check_skew, parse_amz_date, parse_http_date};
use super::{AuthError, RequestParts};

pub const SIGNATURE_VERSION: &str = "AWS";

/// Query parameters S3 includes in the SigV2 canonical resource.
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A parsed `Authorization: AWS AKID:SIGNATURE` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationV2 {
    pub access_key_id: String,
    /// The decoded HMAC-SHA1.
    pub signature: [u8; 20],
}

fn decode_signature(b64: &str) -> Option<[u8; 20]> {
    let raw = STANDARD.decode(b64.trim()).ok()?;
    raw.try_into().ok()
}

impl AuthorizationV2 {
    pub fn parse(value: &str) -> Result<AuthorizationV2, AuthError> {
        let rest = value.strip_prefix("AWS ").ok_or_else(|| {
            AuthError::UnsupportedMechanism(value.split(' ').next().unwrap_or_default().into())
        })?;
        let (akid, sig) = rest
            .split_once(':')
            .ok_or_else(|| AuthError::Malformed("expected AWS AccessKeyId:Signature".into()))?;
        if akid.is_empty() || akid.contains(' ') {
            return Err(AuthError::Malformed("access key id is empty".into()));
        }
        let signature = decode_signature(sig).ok_or_else(|| {
            AuthError::Malformed("signature must be the base64 of an HMAC-SHA1".into())
        })?;
        Ok(AuthorizationV2 {
            access_key_id: akid.to_string(),
            signature,
        })
    }
}

/// True when the query carries SigV2 query authentication.
pub fn is_presigned_v2(query: &[QueryPair<'_>]) -> bool {
    query
        .iter()
        .any(|(n, _)| n == "AWSAccessKeyId" || n == "Signature")
}

/// The authentication parameters of a SigV2 presigned URL.
#[derive(Debug, Clone)]
pub struct PresignedV2 {
    pub access_key_id: String,
    pub signature: [u8; 20],
    /// `Expires` as sent (seconds since the epoch).
    pub expires_text: String,
    pub expires: DateTime<Utc>,
    pub security_token: Option<String>,
}

impl PresignedV2 {
    pub fn parse(query: &[QueryPair<'_>]) -> Result<PresignedV2, AuthError> {
        let get = |name: &str| -> Result<Option<&str>, AuthError> {
            let mut it = query.iter().filter(|(n, _)| n == name);
            let first = it.next().map(|(_, v)| v.as_ref());
            if it.next().is_some() {
                return Err(AuthError::QueryParameters(format!(
                    "{name} must be given once"
                )));
            }
            Ok(first)
        };
        let (Some(akid), Some(sig), Some(expires)) =
            (get("AWSAccessKeyId")?, get("Signature")?, get("Expires")?)
        else {
            return Err(AuthError::QueryParameters(
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
                    .into(),
            ));
        };
        let signature = decode_signature(sig).ok_or_else(|| {
            AuthError::QueryParameters("Signature must be the base64 of an HMAC-SHA1".into())
        })?;
        let secs: i64 = expires
            .parse()
            .ok()
            .filter(|_| !expires.is_empty() && expires.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                AuthError::QueryParameters("Expires must be a number of seconds".into())
            })?;
        let expires_at = Utc
            .timestamp_opt(secs, 0)
            .single()
            .ok_or_else(|| AuthError::QueryParameters("Expires is out of range".into()))?;
        if akid.is_empty() {
            return Err(AuthError::QueryParameters("AWSAccessKeyId is empty".into()));
        }
        Ok(PresignedV2 {
            access_key_id: akid.to_string(),
            signature,
            expires_text: expires.to_string(),
            expires: expires_at,
            security_token: get("x-amz-security-token")?.map(str::to_string),
        })
    }
}

/// The headers SigV2 signs, with the query stand-ins of a presigned URL.
struct SignedInputs<'a> {
    content_md5: &'a str,
    content_type: &'a str,
    amz: BTreeMap<String, String>,
}

fn header_values(headers: &http::HeaderMap, name: &str) -> Result<Option<String>, AuthError> {
    let mut out: Option<String> = None;
    for v in headers.get_all(name) {
        let s = v
            .to_str()
            .map_err(|_| AuthError::Malformed(format!("header {name} is not ASCII")))?
            .trim();
        match &mut out {
            Some(acc) => {
                acc.push(',');
                acc.push_str(s);
            }
            None => out = Some(s.to_string()),
        }
    }
    Ok(out)
}

fn signed_inputs<'a>(
    req: &'a RequestParts<'_>,
    query: &'a [QueryPair<'a>],
    presigned: bool,
) -> Result<SignedInputs<'a>, AuthError> {
    let mut amz = BTreeMap::new();
    for name in req.headers.keys() {
        if name.as_str().starts_with("x-amz-")
            && let Some(v) = header_values(req.headers, name.as_str())?
        {
            amz.insert(name.as_str().to_string(), v);
        }
    }
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mut content_md5 = header("content-md5");
    let mut content_type = header("content-type");
    if presigned {
        // The uploader usually also sends the header the URL names (a
        // Content-Type, say); only a different value is a conflict.
        for (n, v) in query {
            let v = v.trim();
            let conflict = if n.starts_with("x-amz-") {
                amz.insert(n.to_string(), v.to_string())
                    .is_some_and(|old| old != v)
            } else if n == "content-md5" {
                content_md5.replace(v).is_some_and(|old| old != v)
            } else if n == "content-type" {
                content_type.replace(v).is_some_and(|old| old != v)
            } else {
                false
            };
            if conflict {
                return Err(AuthError::QueryParameters(format!(
                    "{n} is given both as a header and as a query parameter"
                )));
            }
        }
    }
    Ok(SignedInputs {
        content_md5: content_md5.unwrap_or(""),
        content_type: content_type.unwrap_or(""),
        amz,
    })
}

/// `/bucket/key?sub=value`: the path as received (prefixed with the bucket
/// for virtual-hosted-style requests) and the sub-resources, sorted.
fn canonical_resource(req: &RequestParts<'_>, virtual_bucket: Option<&str>) -> String {
    let mut out = String::with_capacity(req.path.len() + 32);
    if let Some(b) = virtual_bucket {
        out.push('/');
        out.push_str(b);
    }
    out.push_str(if req.path.is_empty() { "/" } else { req.path });
    let mut subs: Vec<(&str, Option<String>)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            SUB_RESOURCES.contains(&name).then(|| {
                let decoded = value.map(|v| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned()
                });
                (name, decoded)
            })
        })
        .collect();
    // Stable: repeated names keep their order, as botocore signs them.
    subs.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (name, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// The SigV2 string to sign. `date_line` is the `Date` header, empty when
/// `x-amz-date` is present, or `Expires` for a presigned URL.
pub fn string_to_sign(
    req: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    date_line: &str,
    virtual_bucket: Option<&str>,
    presigned: bool,
) -> Result<String, AuthError> {
    let inputs = signed_inputs(req, query, presigned)?;
    let mut s = String::with_capacity(256);
    s.push_str(req.method);
    s.push('\n');
    s.push_str(inputs.content_md5);
    s.push('\n');
    s.push_str(inputs.content_type);
    s.push('\n');
    s.push_str(date_line);
    s.push('\n');
    for (name, value) in &inputs.amz {
        s.push_str(name);
        s.push(':');
        s.push_str(value);
        s.push('\n');
    }
    s.push_str(&canonical_resource(req, virtual_bucket));
    Ok(s)
}

/// HMAC-SHA1 of `sts` under the secret.
pub fn sign(secret: &str, sts: &str) -> [u8; 20] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!());
    mac.update(sts.as_bytes());
    mac.finalize().into_bytes().into()
}

fn check_signature(
    secret: &str,
    sts: &str,
    provided: &[u8; 20],
    access_key_id: &str,
) -> Result<(), AuthError> {
    let expected = sign(secret, sts);
    if bool::from(expected.ct_eq(provided)) {
        return Ok(());
    }
    tracing::debug!(
        access_key_id = %access_key_id,
        string_to_sign = %redact(sts),
        "sigv2 signature mismatch"
    );
    Err(AuthError::SignatureMismatch {
        access_key_id: access_key_id.to_string(),
    })
}

fn redact(sts: &str) -> String {
    sts.lines()
        .map(|l| {
            if l.starts_with("x-amz-security-token:") {
                "x-amz-security-token:<redacted>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The signing time of a SigV2 header-signed request and its date line.
/// `x-amz-date` may be an HTTP date or the SigV4 basic form.
fn header_time(headers: &http::HeaderMap) -> Result<(DateTime<Utc>, String), AuthError> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(v) = get("x-amz-date") {
        let t = parse_http_date(v)
            .or_else(|| parse_amz_date(v))
            .ok_or(AuthError::MissingDate)?;
        return Ok((t, String::new()));
    }
    if let Some(v) = get("date") {
        let t = parse_http_date(v).ok_or(AuthError::MissingDate)?;
        return Ok((t, v.trim().to_string()));
    }
    Err(AuthError::MissingDate)
}

/// Verifies a SigV2 header-signed request; returns its signing time.
pub fn verify_header_v2(
    req: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    auth: &AuthorizationV2,
    secret: &str,
    virtual_bucket: Option<&str>,
    now: DateTime<Utc>,
    max_skew_secs: u64,
) -> Result<DateTime<Utc>, AuthError> {
    let (time, date_line) = header_time(req.headers)?;
    check_skew(time, now, max_skew_secs)?;
    let sts = string_to_sign(req, query, &date_line, virtual_bucket, false)?;
    check_signature(secret, &sts, &auth.signature, &auth.access_key_id)?;
    Ok(time)
}

/// Verifies a SigV2 presigned request: not past `Expires`, and signed.
pub fn verify_presigned_v2(
    req: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    p: &PresignedV2,
    secret: &str,
    virtual_bucket: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    if now > p.expires {
        return Err(AuthError::Expired {
            x_amz_expires: None,
            expires: p.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            server_time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    let sts = string_to_sign(req, query, &p.expires_text, virtual_bucket, true)?;
    check_signature(secret, &sts, &p.signature, &p.access_key_id)
}

#[cfg(test)]
mod tests;
