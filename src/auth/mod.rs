//! AWS signatures as S3 applies them: SigV4 in the `Authorization` header and
//! in presigned URLs, SigV2 (header and presigned), the canonical request,
//! signing keys (derived and cached), aws-chunked bodies with chained chunk
//! signatures and trailing checksums, and signed payloads checked in flight.
//!
//! Pure code: the caller supplies the request parts, the secret for the access
//! key and the current time, and gets back a verdict. Key lookup and clocks
//! live elsewhere, so everything here is testable without a server.

pub mod canonical;
pub mod checksum;
pub mod chunked;
pub mod payload;
pub mod post_policy;
pub mod presign;
pub mod signing;
pub mod sigv2;
pub mod sigv4;
pub mod time;

pub use payload::PayloadHash;
pub use signing::SigningKeyCache;
pub use sigv4::{AuthorizationV4, Scope, VerifiedV4};

/// Header names read on every request, made once: looking a header up by
/// `&str` parses and validates the name each time.
pub static X_AMZ_DATE: http::HeaderName = http::HeaderName::from_static("x-amz-date");
pub static X_AMZ_CONTENT_SHA256: http::HeaderName =
    http::HeaderName::from_static("x-amz-content-sha256");
pub static X_AMZ_SECURITY_TOKEN: http::HeaderName =
    http::HeaderName::from_static("x-amz-security-token");

/// The parts of an HTTP request a signature covers, as received on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path exactly as received (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`; empty when absent.
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The URI authority, used for `host` when no Host header exists (HTTP/2).
    pub authority: Option<&'a str>,
}

/// Why a request's authentication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("request carries no authentication")]
    Missing,
    #[error("authorization mechanism {0:?} is not supported")]
    UnsupportedMechanism(String),
    #[error("authorization header is malformed: {0}")]
    Malformed(String),
    #[error("the region {got:?} is wrong; expecting {expected:?}")]
    WrongRegion { got: String, expected: String },
    #[error("credential should be scoped to correct service: {expected:?}, not {got:?}")]
    WrongService { got: String, expected: String },
    #[error("invalid credential date: date is not the same as x-amz-date")]
    ScopeDateMismatch,
    #[error("request has no valid date or x-amz-date header")]
    MissingDate,
    #[error("request time {request_time} is too far from server time {server_time}")]
    TimeTooSkewed {
        request_time: String,
        server_time: String,
    },
    #[error("missing required header x-amz-content-sha256")]
    MissingContentSha256,
    #[error("x-amz-content-sha256 value {0:?} is not valid")]
    InvalidContentSha256(String),
    #[error("headers present in the request were not signed: {0:?}")]
    UnsignedHeaders(Vec<String>),
    #[error("access key id {0:?} is unknown or inactive")]
    UnknownAccessKey(String),
    #[error("the session token is malformed or otherwise invalid")]
    InvalidToken,
    #[error("the session token has expired")]
    ExpiredToken,
    #[error("signature does not match for access key id {access_key_id:?}")]
    SignatureMismatch { access_key_id: String },
    #[error("authorization value {0:?} is not in a valid format")]
    BadAuthorizationFormat(String),
    #[error("more than one authentication mechanism was used")]
    MultipleMechanisms,
    #[error("signature version 2 is switched off")]
    SigV2Disabled,
    #[error("presigned url parameters are not valid: {0}")]
    QueryParameters(String),
    #[error("request has expired")]
    Expired {
        /// `X-Amz-Expires` as sent (SigV4 only).
        x_amz_expires: Option<String>,
        expires: String,
        server_time: String,
    },
    #[error("request is not yet valid")]
    NotYetValid {
        x_amz_date: String,
        expires: String,
        server_time: String,
    },
    #[error("missing x-amz-decoded-content-length")]
    MissingDecodedLength,
    #[error("header {header} has an invalid value {value:?}")]
    InvalidHeader { header: &'static str, value: String },
    #[error("{0} is not supported by s3warden")]
    NotImplemented(&'static str),
}
