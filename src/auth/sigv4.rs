//! SigV4 header authentication: parsing `Authorization: AWS4-HMAC-SHA256 …`,
//! checking its credential scope, time and signed-header rules the way S3 does,
//! and verifying the signature. The signature check itself is shared with
//! presigned URLs ([`super::presign`]).

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::canonical::{canonical_query, canonical_request, write_canonical_request};
use super::signing::{SigningKey, SigningKeyCache, hex32, signature_matches, string_to_sign};
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
        let mut parts = credential.split('/');
        let (Some(akid), Some(date), Some(region), Some(service), Some(terminal), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
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
        let mut s =
            String::with_capacity(self.date.len() + self.region.len() + self.service.len() + 16);
        s.push_str(&self.date);
        s.push('/');
        s.push_str(&self.region);
        s.push('/');
        s.push_str(&self.service);
        s.push_str("/aws4_request");
        s
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

/// A parsed `Authorization` header (or the equivalent presigned parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationV4 {
    pub scope: Scope,
    /// Header names as listed, lowercased.
    pub signed_headers: Vec<String>,
    /// The list as sent (lowercased), `;`-separated: the canonical request's
    /// signed-headers line.
    pub signed_headers_raw: String,
    /// 64 lowercase hex characters.
    pub signature: String,
}

impl AuthorizationV4 {
    /// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    pub fn parse(value: &str) -> Result<AuthorizationV4, AuthError> {
        let Some(rest) = value.strip_prefix(ALGORITHM) else {
            let mechanism = value.split(' ').next().unwrap_or_default();
            return Err(AuthError::UnsupportedMechanism(mechanism.to_string()));
        };
        // S3 wants exactly one space after the algorithm and calls anything
        // else an invalid Authorization argument, not a malformed header.
        let rest = match rest.strip_prefix(' ') {
            Some(r) if !r.starts_with(' ') => r,
            _ => return Err(AuthError::BadAuthorizationFormat(ALGORITHM.to_string())),
        };
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
        AuthorizationV4::from_parts(credential, signed, signature)
    }

    /// Builds from the three values, whether they came from a header or a query.
    pub fn from_parts(
        credential: &str,
        signed: &str,
        signature: &str,
    ) -> Result<AuthorizationV4, AuthError> {
        let scope = Scope::parse(credential)?;
        let (signed_headers, signed_headers_raw) = parse_signed_headers(signed)?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Malformed(
                "signature must be 64 hex characters".into(),
            ));
        }
        Ok(AuthorizationV4 {
            scope,
            signed_headers,
            signed_headers_raw,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// Splits a `SignedHeaders` list into names. Names are matched without
/// regard to case (HTTP header names are case-insensitive and some signers
/// list them as sent); the canonical request uses them lowercased.
pub fn parse_signed_headers(list: &str) -> Result<(Vec<String>, String), AuthError> {
    let raw = list.to_ascii_lowercase();
    let names: Vec<String> = raw.split(';').map(str::to_string).collect();
    if names.iter().any(|n| {
        n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b',')
    }) {
        return Err(AuthError::Malformed(format!(
            "SignedHeaders {list:?} is not a list of header names"
        )));
    }
    Ok((names, raw))
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
    pub signing_key: SigningKey,
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

/// What this endpoint expects of a signed request.
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
    verify_signature(
        req,
        &canonical_query(query, None),
        auth,
        signing_time,
        timestamp,
        payload_hash,
        secret,
        cache,
    )
}

/// The signature check shared by header and query authentication: the
/// canonical request is hashed as it is written, the string to sign is fed
/// straight into the cached, already-keyed HMAC.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify_signature(
    req: &RequestParts<'_>,
    canonical_query: &str,
    auth: &AuthorizationV4,
    signing_time: DateTime<Utc>,
    timestamp: String,
    payload_hash: &str,
    secret: &str,
    cache: &SigningKeyCache,
) -> Result<VerifiedV4, AuthError> {
    let mut signed: [&str; 16] = [""; 16];
    let signed_list: Vec<&str>;
    let names: &[&str] = if auth.signed_headers.len() <= signed.len() {
        for (slot, name) in signed.iter_mut().zip(&auth.signed_headers) {
            *slot = name;
        }
        &signed[..auth.signed_headers.len()]
    } else {
        signed_list = auth.signed_headers.iter().map(String::as_str).collect();
        &signed_list
    };
    let mut hasher = Sha256::new();
    write_canonical_request(
        &mut hasher,
        req,
        canonical_query,
        names,
        &auth.signed_headers_raw,
        payload_hash,
    );
    let creq_hash = hex32(&hasher.finalize().into());
    let scope = auth.scope.to_scope_string();
    let key = cache.key(
        &auth.scope.access_key_id,
        secret,
        &auth.scope.date,
        &auth.scope.region,
        &auth.scope.service,
    );
    let expected = key.sign_lines(
        ALGORITHM.as_bytes(),
        timestamp.as_bytes(),
        scope.as_bytes(),
        &[&creq_hash[..]],
    );
    if !signature_matches(&expected, &auth.signature) {
        let creq = canonical_request(
            req,
            canonical_query,
            names,
            &auth.signed_headers_raw,
            payload_hash,
        );
        tracing::debug!(
            access_key_id = %auth.scope.access_key_id,
            canonical_request = %redact_canonical(&creq),
            string_to_sign = %string_to_sign(&timestamp, &scope, &creq),
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
        signing_key: key,
    })
}

/// The canonical request for a debug log, with any session token hidden
/// (as a header line or as the presigned `X-Amz-Security-Token` parameter).
pub(crate) fn redact_canonical(creq: &[u8]) -> String {
    String::from_utf8_lossy(creq)
        .lines()
        .map(|l| {
            if l.starts_with("x-amz-security-token:") {
                "x-amz-security-token:<redacted>".to_string()
            } else if l.contains("X-Amz-Security-Token=") || l.contains("x-amz-security-token=") {
                l.split('&')
                    .map(|p| match p.split_once('=') {
                        Some((n, _)) if n.eq_ignore_ascii_case("x-amz-security-token") => {
                            format!("{n}=<redacted>")
                        }
                        _ => p.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
