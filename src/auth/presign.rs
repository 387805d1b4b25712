//! Presigned URLs (SigV4 query authentication), as S3 checks them.
//!
//! - All of `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`,
//!   `-SignedHeaders`, `-Signature` must be present, once each; problems with
//!   them are `AuthorizationQueryParametersError`.
//! - `X-Amz-Expires` is 1 to 604800 seconds (seven days).
//! - The URL is valid from `X-Amz-Date` (less the clock-skew allowance, as S3
//!   answers "Request is not yet valid" only beyond it) to `X-Amz-Date +
//!   X-Amz-Expires`; the 15-minute rule of header auth does not apply.
//! - The canonical query is every parameter except `X-Amz-Signature`
//!   (`X-Amz-Security-Token` included: it is signed).
//! - The payload is `UNSIGNED-PAYLOAD` unless the URL carries
//!   `X-Amz-Content-Sha256` or the request a signed `x-amz-content-sha256`.
//!
//! Whether the session behind an `X-Amz-Security-Token` is still alive is
//! decided where the key is resolved, so a URL never outlives its session.

use crate::auth::canonical::QueryPair;
use chrono::{DateTime, Duration, Utc};

use super::canonical::canonical_query_of;
use super::sigv4::{
    ALGORITHM, AuthorizationV4, Expectations, VerifiedV4, check_signed_headers, verify_signature,
};
use super::time::parse_amz_date;
use super::{AuthError, RequestParts};

/// The longest lifetime S3 accepts for a presigned URL.
pub const MAX_EXPIRES_SECS: u64 = 604_800;

const MISSING: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, \
X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";

/// The query parameters that make a request a SigV4 presigned one.
pub const MARKERS: &[&str] = &["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"];

/// True when the query carries SigV4 query authentication.
pub fn is_presigned_v4(query: &[QueryPair<'_>]) -> bool {
    query.iter().any(|(n, _)| MARKERS.contains(&n.as_ref()))
}

/// The parsed authentication parameters of a presigned URL.
#[derive(Debug, Clone)]
pub struct PresignedV4 {
    pub auth: AuthorizationV4,
    /// `X-Amz-Date` as sent.
    pub timestamp: String,
    pub signing_time: DateTime<Utc>,
    pub expires_secs: u64,
    /// `X-Amz-Security-Token`, for temporary credentials.
    pub security_token: Option<String>,
    /// `X-Amz-Content-Sha256`, which some SDKs add (always `UNSIGNED-PAYLOAD`
    /// in practice).
    pub content_sha256: Option<String>,
}

fn single<'a>(query: &'a [QueryPair<'a>], name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut found = None;
    for (n, v) in query {
        if n == name {
            if found.is_some() {
                return Err(AuthError::QueryParameters(format!(
                    "{name} must be given once"
                )));
            }
            found = Some(v.as_ref());
        }
    }
    Ok(found)
}

impl PresignedV4 {
    /// Parses the `X-Amz-*` authentication parameters from decoded query pairs.
    pub fn parse(query: &[QueryPair<'_>]) -> Result<PresignedV4, AuthError> {
        let get = |name| single(query, name);
        let (
            Some(algorithm),
            Some(credential),
            Some(date),
            Some(expires),
            Some(signed),
            Some(signature),
        ) = (
            get("X-Amz-Algorithm")?,
            get("X-Amz-Credential")?,
            get("X-Amz-Date")?,
            get("X-Amz-Expires")?,
            get("X-Amz-SignedHeaders")?,
            get("X-Amz-Signature")?,
        )
        else {
            return Err(AuthError::QueryParameters(MISSING.into()));
        };
        if algorithm != ALGORITHM {
            return Err(AuthError::QueryParameters(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into(),
            ));
        }
        let signing_time = parse_amz_date(date).ok_or_else(|| {
            AuthError::QueryParameters(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".into(),
            )
        })?;
        let expires_secs = parse_expires(expires)?;
        let auth = AuthorizationV4::from_parts(credential, signed, signature).map_err(|e| {
            AuthError::QueryParameters(match e {
                AuthError::Malformed(why) => format!("Error parsing the query parameters; {why}"),
                other => other.to_string(),
            })
        })?;
        Ok(PresignedV4 {
            auth,
            timestamp: date.to_string(),
            signing_time,
            expires_secs,
            security_token: get("X-Amz-Security-Token")?.map(str::to_string),
            content_sha256: get("X-Amz-Content-Sha256")?.map(str::to_string),
        })
    }

    /// The payload hash that stands for the body in the canonical request.
    pub fn payload_hash<'a>(&'a self, headers: &'a http::HeaderMap) -> &'a str {
        if let Some(v) = &self.content_sha256 {
            return v;
        }
        headers
            .get(&super::X_AMZ_CONTENT_SHA256)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(super::payload::UNSIGNED_PAYLOAD)
    }
}

fn parse_expires(v: &str) -> Result<u64, AuthError> {
    if let Some(rest) = v.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(AuthError::QueryParameters(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::QueryParameters(
            "X-Amz-Expires should be a number".into(),
        ));
    }
    let n: u64 = v
        .parse()
        .map_err(|_| AuthError::QueryParameters("X-Amz-Expires should be a number".into()))?;
    if n > MAX_EXPIRES_SECS {
        return Err(AuthError::QueryParameters(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires \
must be less than 604800 seconds"
                .into(),
        ));
    }
    if n == 0 {
        return Err(AuthError::QueryParameters(
            "X-Amz-Expires must be between 1 and 604800 seconds".into(),
        ));
    }
    Ok(n)
}

/// Scope problems in a presigned URL are reported against its query
/// parameters, not a header.
fn scope_error(e: AuthError) -> AuthError {
    let why = match e {
        AuthError::WrongRegion { got, expected } => {
            format!("the region '{got}' is wrong; expecting '{expected}'")
        }
        AuthError::WrongService { got, expected } => {
            format!("incorrect service \"{got}\". This endpoint belongs to \"{expected}\".")
        }
        AuthError::ScopeDateMismatch => {
            "Invalid credential date. Date is not the same as X-Amz-Date.".into()
        }
        other => return other,
    };
    AuthError::QueryParameters(format!(
        "Error parsing the X-Amz-Credential parameter; {why}"
    ))
}

/// Verifies a presigned request: scope, validity window, signed headers, and
/// the signature over the canonical request. `query` holds the decoded query
/// pairs of `req.query` (`parse_query`).
pub fn verify_presigned<'a>(
    req: &RequestParts<'_>,
    query: &[QueryPair<'_>],
    p: &'a PresignedV4,
    secret: &str,
    expect: &Expectations<'_>,
    cache: &super::SigningKeyCache,
) -> Result<VerifiedV4<'a>, AuthError> {
    p.auth
        .scope
        .check(expect.region, expect.service, &p.timestamp)
        .map_err(scope_error)?;
    check_window(p, expect.now, expect.max_skew_secs)?;
    let names = p.auth.names();
    check_signed_headers(req.headers, names.as_slice())?;
    verify_signature(
        req,
        &canonical_query_of(req.query, query, Some("X-Amz-Signature")),
        &p.auth,
        names.as_slice(),
        p.signing_time,
        std::borrow::Cow::Borrowed(&p.timestamp),
        p.payload_hash(req.headers),
        secret,
        cache,
    )
}

/// S3's validity window of a presigned URL.
pub fn check_window(
    p: &PresignedV4,
    now: DateTime<Utc>,
    max_skew_secs: u64,
) -> Result<(), AuthError> {
    let end = p.signing_time + Duration::seconds(p.expires_secs as i64);
    let skew = Duration::seconds(i64::try_from(max_skew_secs).unwrap_or(i64::MAX / 2));
    if p.signing_time - skew > now {
        return Err(AuthError::NotYetValid {
            x_amz_date: p.timestamp.clone(),
            expires: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            server_time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    if now > end {
        return Err(AuthError::Expired {
            x_amz_expires: Some(p.expires_secs.to_string()),
            expires: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            server_time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
