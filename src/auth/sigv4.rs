//! SigV4 header authentication: parsing `Authorization: AWS4-HMAC-SHA256 …`,
//! checking its credential scope, time and signed-header rules the way S3 does,
//! and verifying the signature.

use std::fmt;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::canonical::{canonical_query, canonical_request};
use super::signing::{SigningKeyCache, hmac_sha256, signature_matches, string_to_sign};
use super::time::{check_skew, request_time};
use super::{AuthError, RequestParts};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// A credential scope: `AKID/DATE/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    /// Parses the `Credential` value.
    pub fn parse(credential: &str) -> Result<Scope, AuthError> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [akid, date, region, service, terminal] = parts[..] else {
            return Err(AuthError::Malformed(format!(
                "credential {credential:?} must be AKID/DATE/REGION/SERVICE/aws4_request"
            )));
        };
        if akid.is_empty() || region.is_empty() || service.is_empty() {
            return Err(AuthError::Malformed(format!(
                "credential {credential:?} has an empty part"
            )));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::Malformed(format!(
                "credential date {date:?} is not YYYYMMDD"
            )));
        }
        if terminal != "aws4_request" {
            return Err(AuthError::Malformed(format!(
                "credential must end with aws4_request, not {terminal:?}"
            )));
        }
        Ok(Scope {
            access_key_id: akid.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    /// `DATE/REGION/SERVICE/aws4_request`, as in the string to sign.
    pub fn to_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }

    /// Cache key for the derived signing key.
    fn cache_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.access_key_id, self.date, self.region, self.service
        )
    }

    /// S3's checks of a scope against what this endpoint serves.
    pub fn check(&self, region: &str, service: &str, timestamp: &str) -> Result<(), AuthError> {
        if self.region != region {
            return Err(AuthError::WrongRegion {
                got: self.region.clone(),
                expected: region.to_string(),
            });
        }
        if self.service != service {
            return Err(AuthError::WrongService {
                got: self.service.clone(),
                expected: service.to_string(),
            });
        }
        if !timestamp.starts_with(&self.date) {
            return Err(AuthError::ScopeDateMismatch);
        }
        Ok(())
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationV4 {
    pub scope: Scope,
    /// Lowercase header names as listed.
    pub signed_headers: Vec<String>,
    /// The list as sent, `;`-separated.
    pub signed_headers_raw: String,
    pub signature: String,
}

impl AuthorizationV4 {
    /// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    pub fn parse(value: &str) -> Result<AuthorizationV4, AuthError> {
        let Some(rest) = value.strip_prefix(ALGORITHM) else {
            let mechanism = value.split(' ').next().unwrap_or_default();
            return Err(AuthError::UnsupportedMechanism(mechanism.to_string()));
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| AuthError::Malformed("expected a space after the algorithm".into()))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            let (name, val) = part
                .split_once('=')
                .ok_or_else(|| AuthError::Malformed(format!("component {part:?} has no '='")))?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return Err(AuthError::Malformed(format!("unknown component {name:?}"))),
            };
            if slot.replace(val).is_some() {
                return Err(AuthError::Malformed(format!(
                    "component {name:?} appears twice"
                )));
            }
        }
        let credential =
            credential.ok_or_else(|| AuthError::Malformed("missing Credential".into()))?;
        let signed = signed.ok_or_else(|| AuthError::Malformed("missing SignedHeaders".into()))?;
        let signature =
            signature.ok_or_else(|| AuthError::Malformed("missing Signature".into()))?;
        let scope = Scope::parse(credential)?;
        let signed_headers = parse_signed_headers(signed)?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Malformed(
                "signature must be 64 hex characters".into(),
            ));
        }
        Ok(AuthorizationV4 {
            scope,
            signed_headers,
            signed_headers_raw: signed.to_string(),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// Splits a `SignedHeaders` list; names must be lowercase and non-empty.
pub fn parse_signed_headers(list: &str) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = list.split(';').map(str::to_string).collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase() || b == b' '))
    {
        return Err(AuthError::Malformed(format!(
            "SignedHeaders {list:?} is not a list of lowercase names"
        )));
    }
    Ok(names)
}

/// Refuses a request whose `host` is unsigned or that carries an `x-amz-*`
/// header the signature does not cover: such a header could change what S3
/// does without the signer having agreed to it.
pub fn check_signed_headers(headers: &http::HeaderMap, signed: &[String]) -> Result<(), AuthError> {
    let mut unsigned: Vec<String> = Vec::new();
    if !signed.iter().any(|h| h == "host") {
        unsigned.push("host".to_string());
    }
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-")
            && !signed.iter().any(|h| h == n)
            && !unsigned.iter().any(|u| u == n)
        {
            unsigned.push(n.to_string());
        }
    }
    if unsigned.is_empty() {
        Ok(())
    } else {
        Err(AuthError::UnsignedHeaders(unsigned))
    }
}

/// What a verified signature establishes.
#[derive(Clone)]
pub struct VerifiedV4 {
    pub access_key_id: String,
    pub signing_time: DateTime<Utc>,
    /// The timestamp text that was signed (`YYYYMMDDTHHMMSSZ`).
    pub timestamp: String,
    /// `DATE/REGION/SERVICE/aws4_request`.
    pub scope: String,
    /// The request's signature: the seed of chunk-signature chains.
    pub signature: [u8; 32],
    /// The signing key, needed to verify chunk signatures.
    pub signing_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for VerifiedV4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedV4")
            .field("access_key_id", &self.access_key_id)
            .field("timestamp", &self.timestamp)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What this endpoint expects of a header-signed request.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub now: DateTime<Utc>,
    pub max_skew_secs: u64,
}

/// Verifies a header-signed request. `query` holds the decoded query pairs
/// and `payload_hash` the string that stands for the body in the canonical
/// request (the `x-amz-content-sha256` value for S3).
pub fn verify_header(
    req: &RequestParts<'_>,
    query: &[(String, String)],
    auth: &AuthorizationV4,
    payload_hash: &str,
    secret: &str,
    expect: &Expectations<'_>,
    cache: &SigningKeyCache,
) -> Result<VerifiedV4, AuthError> {
    let (signing_time, timestamp) = request_time(req.headers)?;
    auth.scope
        .check(expect.region, expect.service, &timestamp)?;
    check_skew(signing_time, expect.now, expect.max_skew_secs)?;
    check_signed_headers(req.headers, &auth.signed_headers)?;

    let signed: Vec<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    let creq = canonical_request(
        req,
        &canonical_query(query, None),
        &signed,
        &auth.signed_headers_raw,
        payload_hash,
    );
    let scope = auth.scope.to_scope_string();
    let sts = string_to_sign(&timestamp, &scope, &creq);
    let key = cache.get(
        &auth.scope.cache_key(),
        secret,
        &auth.scope.date,
        &auth.scope.region,
        &auth.scope.service,
    );
    let expected = hmac_sha256(&key, sts.as_bytes());
    if !signature_matches(&expected, &auth.signature) {
        tracing::debug!(
            access_key_id = %auth.scope.access_key_id,
            canonical_request = %redact_canonical(&creq),
            string_to_sign = %sts,
            "signature mismatch"
        );
        return Err(AuthError::SignatureMismatch {
            access_key_id: auth.scope.access_key_id.clone(),
        });
    }
    Ok(VerifiedV4 {
        access_key_id: auth.scope.access_key_id.clone(),
        signing_time,
        timestamp,
        scope,
        signature: expected,
        signing_key: Zeroizing::new(key),
    })
}

/// The canonical request for a debug log, with any session token hidden.
fn redact_canonical(creq: &[u8]) -> String {
    String::from_utf8_lossy(creq)
        .lines()
        .map(|l| {
            if l.starts_with("x-amz-security-token:") {
                "x-amz-security-token:<redacted>".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
