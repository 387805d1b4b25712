//! SigV4 header authentication: parsing `Authorization: AWS4-HMAC-SHA256 …`,
//! checking its credential scope, time and signed-header rules the way S3 does,
//! and verifying the signature. The signature check itself is shared with
//! presigned URLs ([`super::presign`]).

use crate::auth::canonical::QueryPair;
use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::canonical::{canonical_query_of, canonical_request, write_canonical_request};
use super::signing::{SigningKey, SigningKeyCache, hex32, string_to_sign};
use super::time::{check_skew, request_time};
use super::{AuthError, RequestParts};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// A credential scope: `AKID/DATE/REGION/SERVICE/aws4_request`, kept as
/// the one string it arrived as (one allocation) with the part boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    credential: String,
    /// Positions of the four `/` separators.
    slashes: [usize; 4],
}

impl Scope {
    /// Parses the `Credential` value.
    pub fn parse(credential: &str) -> Result<Scope, AuthError> {
        let mut slashes = [0usize; 4];
        let mut found = 0;
        for (i, b) in credential.bytes().enumerate() {
            if b == b'/' {
                if found == 4 {
                    found = 5;
                    break;
                }
                slashes[found] = i;
                found += 1;
            }
        }
        if found != 4 {
            return Err(AuthError::Malformed(format!(
                "credential {credential:?} must be AKID/DATE/REGION/SERVICE/aws4_request"
            )));
        }
        let scope = Scope {
            credential: credential.to_string(),
            slashes,
        };
        if scope.access_key_id().is_empty()
            || scope.region().is_empty()
            || scope.service().is_empty()
        {
            return Err(AuthError::Malformed(format!(
                "credential {credential:?} has an empty part"
            )));
        }
        let date = scope.date();
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::Malformed(format!(
                "credential date {date:?} is not YYYYMMDD"
            )));
        }
        let terminal = &credential[slashes[3] + 1..];
        if terminal != "aws4_request" {
            return Err(AuthError::Malformed(format!(
                "credential must end with aws4_request, not {terminal:?}"
            )));
        }
        Ok(scope)
    }

    pub fn access_key_id(&self) -> &str {
        &self.credential[..self.slashes[0]]
    }

    pub fn date(&self) -> &str {
        &self.credential[self.slashes[0] + 1..self.slashes[1]]
    }

    pub fn region(&self) -> &str {
        &self.credential[self.slashes[1] + 1..self.slashes[2]]
    }

    pub fn service(&self) -> &str {
        &self.credential[self.slashes[2] + 1..self.slashes[3]]
    }

    /// `[access key id, date, region, service]`: what a signing key is
    /// derived for and cached by (`SigningKeyCache`).
    pub fn key_parts(&self) -> [&str; 4] {
        [
            self.access_key_id(),
            self.date(),
            self.region(),
            self.service(),
        ]
    }

    /// `DATE/REGION/SERVICE/aws4_request`, as in the string to sign.
    pub fn scope_str(&self) -> &str {
        &self.credential[self.slashes[0] + 1..]
    }

    /// S3's checks of a scope against what this endpoint serves.
    pub fn check(&self, region: &str, service: &str, timestamp: &str) -> Result<(), AuthError> {
        if self.region() != region {
            return Err(AuthError::WrongRegion {
                got: self.region().to_string(),
                expected: region.to_string(),
            });
        }
        if self.service() != service {
            return Err(AuthError::WrongService {
                got: self.service().to_string(),
                expected: service.to_string(),
            });
        }
        if !timestamp.starts_with(self.date()) {
            return Err(AuthError::ScopeDateMismatch);
        }
        Ok(())
    }
}

/// A parsed `Authorization` header (or the equivalent presigned parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationV4 {
    pub scope: Scope,
    /// The `SignedHeaders` list, lowercased, `;`-separated: the canonical
    /// request's signed-headers line. [`Self::signed_header_names`] splits it.
    pub signed_headers: String,
    /// The signature, decoded from its 64 hex characters.
    pub signature: [u8; 32],
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
        let signed_headers = parse_signed_headers(signed)?;
        let Some(sig) = super::signing::decode_hex32(signature.as_bytes()) else {
            return Err(AuthError::Malformed(
                "signature must be 64 hex characters".into(),
            ));
        };
        Ok(AuthorizationV4 {
            scope,
            signed_headers,
            signature: sig,
        })
    }

    /// The signed header names, lowercase, in the order listed.
    pub fn signed_header_names(&self) -> std::str::Split<'_, char> {
        self.signed_headers.split(';')
    }

    /// The signed header names, split once (on the stack for the usual
    /// handful) for everything that needs them.
    pub fn names(&self) -> SignedNames<'_> {
        SignedNames::split(&self.signed_headers)
    }
}

/// The names of a `SignedHeaders` list, split once.
pub struct SignedNames<'a> {
    stack: [&'a str; 16],
    len: usize,
    heap: Vec<&'a str>,
}

impl<'a> SignedNames<'a> {
    fn split(list: &'a str) -> SignedNames<'a> {
        let mut names = SignedNames {
            stack: [""; 16],
            len: 0,
            heap: Vec::new(),
        };
        let bytes = list.as_bytes();
        let mut start = 0;
        for i in 0..=bytes.len() {
            if i < bytes.len() && bytes[i] != b';' {
                continue;
            }
            // `;` is ASCII, so both ends are character boundaries.
            let name = list.get(start..i).unwrap_or_default();
            start = i + 1;
            if names.len < names.stack.len() {
                names.stack[names.len] = name;
                names.len += 1;
            } else {
                if names.heap.is_empty() {
                    names.heap.extend_from_slice(&names.stack);
                }
                names.heap.push(name);
            }
        }
        names
    }

    pub fn as_slice(&self) -> &[&'a str] {
        if self.heap.is_empty() {
            &self.stack[..self.len]
        } else {
            &self.heap
        }
    }
}

/// Checks and lowercases a `SignedHeaders` list. Names are matched without
/// regard to case (HTTP header names are case-insensitive and some signers
/// list them as sent); the canonical request uses them lowercased.
pub fn parse_signed_headers(list: &str) -> Result<String, AuthError> {
    let well_formed = list.split(';').all(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b',')
    });
    if !well_formed {
        return Err(AuthError::Malformed(format!(
            "SignedHeaders {list:?} is not a list of header names"
        )));
    }
    Ok(list.to_ascii_lowercase())
}

/// Refuses a request whose `host` is unsigned or that carries an `x-amz-*`
/// header the signature does not cover: such a header could change what S3
/// does without the signer having agreed to it.
pub fn check_signed_headers(headers: &http::HeaderMap, signed: &[&str]) -> Result<(), AuthError> {
    let is_signed = |n: &str| signed.contains(&n);
    let mut unsigned: Vec<String> = Vec::new();
    if !is_signed("host") {
        unsigned.push("host".to_string());
    }
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && !is_signed(n) && !unsigned.iter().any(|u| u == n) {
            unsigned.push(n.to_string());
        }
    }
    if unsigned.is_empty() {
        Ok(())
    } else {
        Err(AuthError::UnsignedHeaders(unsigned))
    }
}

/// What a verified signature establishes. Borrows from the request and its
/// parsed authorization, so verifying allocates nothing for it.
#[derive(Clone)]
pub struct VerifiedV4<'a> {
    pub access_key_id: &'a str,
    pub signing_time: DateTime<Utc>,
    /// The timestamp text that was signed (`YYYYMMDDTHHMMSSZ`).
    pub timestamp: Cow<'a, str>,
    /// `DATE/REGION/SERVICE/aws4_request`.
    pub scope: &'a str,
    /// The request's signature: the seed of chunk-signature chains.
    pub signature: [u8; 32],
    /// The signing key, needed to verify chunk signatures.
    pub signing_key: SigningKey,
}

impl fmt::Debug for VerifiedV4<'_> {
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
/// of `req.query` (`parse_query`) and `payload_hash` the string that stands for the body in the canonical
/// request (the `x-amz-content-sha256` value for S3).
pub fn verify_header<'a>(
    req: &RequestParts<'a>,
    query: &[QueryPair<'_>],
    auth: &'a AuthorizationV4,
    payload_hash: &str,
    secret: &str,
    expect: &Expectations<'_>,
    cache: &SigningKeyCache,
) -> Result<VerifiedV4<'a>, AuthError> {
    let (signing_time, timestamp) = request_time(req.headers)?;
    auth.scope
        .check(expect.region, expect.service, &timestamp)?;
    check_skew(signing_time, expect.now, expect.max_skew_secs)?;
    let names = auth.names();
    check_signed_headers(req.headers, names.as_slice())?;
    verify_signature(
        req,
        &canonical_query_of(req.query, query, None),
        auth,
        names.as_slice(),
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
pub(crate) fn verify_signature<'a>(
    req: &RequestParts<'_>,
    canonical_query: &str,
    auth: &'a AuthorizationV4,
    names: &[&str],
    signing_time: DateTime<Utc>,
    timestamp: Cow<'a, str>,
    payload_hash: &str,
    secret: &str,
    cache: &SigningKeyCache,
) -> Result<VerifiedV4<'a>, AuthError> {
    let mut hasher = Sha256::new();
    write_canonical_request(
        &mut hasher,
        req,
        canonical_query,
        names,
        &auth.signed_headers,
        payload_hash,
    );
    let creq_hash = hex32(&hasher.finalize().into());
    let scope = auth.scope.scope_str();
    let akid = auth.scope.access_key_id();
    let scope_parts = auth.scope.key_parts();
    let (key, cached) = cache.lookup(scope_parts, secret);
    let expected = key.sign_lines(
        ALGORITHM.as_bytes(),
        timestamp.as_bytes(),
        scope.as_bytes(),
        &[&creq_hash[..]],
    );
    if !bool::from(expected.ct_eq(&auth.signature)) {
        let creq = canonical_request(
            req,
            canonical_query,
            names,
            &auth.signed_headers,
            payload_hash,
        );
        tracing::debug!(
            access_key_id = %akid,
            canonical_request = %redact_canonical(&creq),
            string_to_sign = %string_to_sign(&timestamp, scope, &creq),
            "signature mismatch"
        );
        return Err(AuthError::SignatureMismatch {
            access_key_id: akid.to_string(),
        });
    }
    if !cached {
        cache.keep(scope_parts, secret, &key);
    }
    Ok(VerifiedV4 {
        access_key_id: akid,
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
