//! The one place where every module's error becomes the S3 error a client
//! sees: code, status, message and detail elements as S3 sends them.

use http::StatusCode;

use super::ClassifyError;
use super::delete_objects::DeleteObjectsError;
use super::error::{ErrorSource, S3Error};
use super::post_form::PostFormError;
use crate::auth::AuthError;
use crate::auth::chunked::ChunkError;
use crate::auth::payload::BodyError;
use crate::auth::post_policy::PostPolicyError;

const UNSUPPORTED_MECHANISM: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";

impl From<&AuthError> for S3Error {
    fn from(e: &AuthError) -> S3Error {
        match e {
            AuthError::Missing => S3Error::access_denied(),
            // What S3 says in regions and buckets that refuse SigV2, too.
            AuthError::UnsupportedMechanism(_) | AuthError::SigV2Disabled => {
                S3Error::invalid_request(UNSUPPORTED_MECHANISM)
            }
            AuthError::Malformed(why) => S3Error::authorization_header_malformed(format!(
                "The authorization header is malformed; {why}"
            )),
            AuthError::WrongRegion { got, expected } => S3Error::authorization_header_malformed(format!(
                "The authorization header is malformed; the region '{got}' is wrong; expecting '{expected}'"
            ))
            .with("Region", expected.clone()),
            AuthError::WrongService { got, expected } => S3Error::authorization_header_malformed(format!(
                "The authorization header is malformed; incorrect service \"{got}\". This endpoint belongs to \"{expected}\"."
            )),
            AuthError::ScopeDateMismatch => S3Error::authorization_header_malformed(
                "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.",
            ),
            AuthError::MissingDate => {
                S3Error::access_denied().with_message("AWS authentication requires a valid Date or x-amz-date header")
            }
            AuthError::TimeTooSkewed {
                request_time,
                server_time,
            } => S3Error::request_time_too_skewed()
                .with("RequestTime", request_time.clone())
                .with("ServerTime", server_time.clone())
                .with("MaxAllowedSkewMilliseconds", "900000"),
            AuthError::MissingContentSha256 => {
                S3Error::invalid_request("Missing required header for this request: x-amz-content-sha256")
            }
            AuthError::InvalidContentSha256(v) => S3Error::invalid_argument(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
                "x-amz-content-sha256",
                v,
            ),
            AuthError::UnsignedHeaders(names) => S3Error::access_denied()
                .with_message("There were headers present in the request which were not signed")
                .with("HeadersNotSigned", names.join(", ")),
            AuthError::UnknownAccessKey(id) => S3Error::invalid_access_key_id().with("AWSAccessKeyId", id.clone()),
            AuthError::InvalidToken => S3Error::new(
                "InvalidToken",
                StatusCode::BAD_REQUEST,
                "The provided token is malformed or otherwise invalid.",
            ),
            AuthError::ExpiredToken => S3Error::new(
                "ExpiredToken",
                StatusCode::BAD_REQUEST,
                "The provided token has expired.",
            ),
            AuthError::SignatureMismatch { access_key_id } => {
                S3Error::signature_does_not_match().with("AWSAccessKeyId", access_key_id.clone())
            }
            AuthError::BadAuthorizationFormat(v) => S3Error::invalid_argument(
                format!("Authorization header is invalid -- one and only one ' ' (space) required after {v}"),
                "Authorization",
                v,
            ),
            AuthError::MultipleMechanisms => S3Error::invalid_argument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
                "Authorization",
                "",
            ),
            AuthError::QueryParameters(why) => S3Error::new(
                "AuthorizationQueryParametersError",
                StatusCode::BAD_REQUEST,
                why.clone(),
            ),
            AuthError::Expired {
                x_amz_expires,
                expires,
                server_time,
            } => {
                let mut e = S3Error::access_denied().with_message("Request has expired");
                if let Some(x) = x_amz_expires {
                    e = e.with("X-Amz-Expires", x.clone());
                }
                e.with("Expires", expires.clone())
                    .with("ServerTime", server_time.clone())
            }
            AuthError::NotYetValid {
                x_amz_date,
                expires,
                server_time,
            } => S3Error::access_denied()
                .with_message("Request is not yet valid")
                .with("X-Amz-Date", x_amz_date.clone())
                .with("Expires", expires.clone())
                .with("ServerTime", server_time.clone()),
            AuthError::MissingDecodedLength => S3Error::missing_content_length(),
            AuthError::InvalidHeader { header, value } => S3Error::invalid_argument(
                format!("Invalid value for {header}."),
                header,
                value,
            ),
            AuthError::NotImplemented(what) => S3Error::not_implemented()
                .with_message(format!("{what} is not supported by s3warden.")),
        }
    }
}

impl From<&ClassifyError> for S3Error {
    fn from(e: &ClassifyError) -> S3Error {
        match e {
            ClassifyError::InvalidBucketName(name) => {
                S3Error::invalid_bucket_name().with("BucketName", name.clone())
            }
            ClassifyError::KeyTooLong(len) => S3Error::key_too_long()
                .with("Size", len.to_string())
                .with("MaxSizeAllowed", "1024"),
            ClassifyError::InvalidUri(_) => S3Error::invalid_uri(),
            ClassifyError::UnknownParameter(name) => S3Error::not_implemented()
                .with_message(format!(
                    "The query parameter {name:?} is not supported by s3warden."
                ))
                .with("ArgumentName", name.clone()),
            ClassifyError::RepeatedParameter(name) => S3Error::invalid_argument(
                format!("The query parameter {name:?} is given more than once."),
                name,
                "",
            ),
            ClassifyError::InvalidParameter(name, value) => {
                S3Error::invalid_argument(format!("Invalid value for {name}."), name, value)
            }
            ClassifyError::UnsupportedHeader(name) => S3Error::not_implemented()
                .with_message(format!("The header {name:?} is not supported by s3warden."))
                .with("Header", name.clone()),
            ClassifyError::RepeatedHeader(name) => S3Error::invalid_argument(
                format!("The header {name:?} is given more than once."),
                name,
                "",
            ),
            ClassifyError::Ambiguous(why) => {
                S3Error::invalid_request(format!("Ambiguous request: {why}."))
            }
            ClassifyError::NotABucketOperation(_) | ClassifyError::NotAnObjectOperation(_) => {
                S3Error::method_not_allowed()
            }
            ClassifyError::MethodNotAllowed => S3Error::method_not_allowed(),
            ClassifyError::BadCopySource(why) => S3Error::invalid_argument(
                format!("Invalid copy source: {why}"),
                "x-amz-copy-source",
                "",
            ),
        }
    }
}

impl From<&DeleteObjectsError> for S3Error {
    fn from(e: &DeleteObjectsError) -> S3Error {
        match e {
            DeleteObjectsError::Malformed(_)
            | DeleteObjectsError::NoKeys
            | DeleteObjectsError::TooManyKeys(_) => S3Error::malformed_xml(),
            DeleteObjectsError::InvalidKey => {
                S3Error::invalid_argument("Invalid key in delete request", "Key", "")
            }
        }
    }
}

impl From<&BodyError> for S3Error {
    fn from(e: &BodyError) -> S3Error {
        match e {
            BodyError::Sha256Mismatch { claimed, computed } => S3Error::content_sha256_mismatch()
                .with("ClientComputedContentSHA256", claimed.clone())
                .with("S3ComputedContentSHA256", computed.clone()),
            BodyError::Incomplete { .. } => S3Error::incomplete_body(),
            BodyError::TooLarge { limit } => {
                S3Error::max_message_length_exceeded().with("MaxSizeAllowed", limit.to_string())
            }
            BodyError::Transport(_) => S3Error::incomplete_body(),
            BodyError::Chunk(c) => S3Error::from(c),
            BodyError::IdleTimeout { .. } => S3Error::request_timeout(),
        }
    }
}

impl From<&ChunkError> for S3Error {
    fn from(e: &ChunkError) -> S3Error {
        match e {
            // Framing S3 cannot read is an incomplete body to it.
            ChunkError::Truncated
            | ChunkError::Malformed(_)
            | ChunkError::SizeOverflow
            | ChunkError::TrailingData => S3Error::incomplete_body(),
            ChunkError::TooLong { .. } | ChunkError::LengthMismatch { .. } => {
                S3Error::incomplete_body().with_message(
                    "The chunked body does not hold the number of bytes given by x-amz-decoded-content-length.",
                )
            }
            ChunkError::ChunkTooSmall { chunk, size } => S3Error::new(
                "InvalidChunkSizeError",
                StatusCode::BAD_REQUEST,
                "Only the last chunk is allowed to have a size less than 8192 bytes",
            )
            .with("Chunk", chunk.to_string())
            .with("BadChunkSize", size.to_string()),
            ChunkError::SignatureMismatch { .. } | ChunkError::TrailerSignatureMismatch => {
                S3Error::signature_does_not_match()
            }
            ChunkError::MalformedTrailer(_) => S3Error::new(
                "MalformedTrailerError",
                StatusCode::BAD_REQUEST,
                "The request contained trailing data that was not well-formed or did not conform to our published schema.",
            ),
            ChunkError::ChecksumMismatch { algorithm } => S3Error::bad_digest().with_message(format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.display_name()
            )),
        }
    }
}

/// Upstream could not be reached. `detail` goes to the log and the audit
/// record only.
pub fn upstream_unavailable(detail: &str) -> S3Error {
    S3Error::new(
        "ServiceUnavailable",
        StatusCode::SERVICE_UNAVAILABLE,
        "Service is unable to handle request.",
    )
    .from_source(ErrorSource::Upstream)
    .with_internal_detail(detail)
}

/// Upstream answered, but not with something the proxy can relay. `detail`
/// goes to the log and the audit record only.
pub fn upstream_bad_gateway(detail: &str) -> S3Error {
    S3Error::new(
        "BadGateway",
        StatusCode::BAD_GATEWAY,
        "The storage service behind this endpoint failed. Please try again.",
    )
    .from_source(ErrorSource::Upstream)
    .with_internal_detail(detail)
}

/// Upstream did not answer, or stopped moving data, in time: a gateway
/// timeout, which S3 clients retry like S3's own 5xx answers.
pub fn upstream_timeout(detail: &str) -> S3Error {
    S3Error::new(
        "GatewayTimeout",
        StatusCode::GATEWAY_TIMEOUT,
        "The storage service behind this endpoint did not answer in time. Please try again.",
    )
    .from_source(ErrorSource::Upstream)
    .with_internal_detail(detail)
}

impl From<&PostFormError> for S3Error {
    fn from(e: &PostFormError) -> S3Error {
        match e {
            PostFormError::NotMultipart | PostFormError::Malformed(_) => S3Error::new(
                "MalformedPOSTRequest",
                StatusCode::BAD_REQUEST,
                "The body of your POST request is not well-formed multipart/form-data.",
            ),
            PostFormError::PreDataTooLarge(_) => S3Error::new(
                "MaxPostPreDataLengthExceededError",
                StatusCode::BAD_REQUEST,
                "Your POST request fields preceeding the upload file was too large.",
            ),
            PostFormError::NoFile => S3Error::invalid_argument(
                "POST requires exactly one file upload per request.",
                "file",
                "0",
            ),
            PostFormError::NotText(name) => S3Error::invalid_argument(
                "A form field before the file is not UTF-8 text.",
                name,
                "",
            ),
            PostFormError::Repeated(name) => {
                S3Error::invalid_argument("A form field may be given only once.", name, "")
            }
        }
    }
}

impl From<&PostPolicyError> for S3Error {
    fn from(e: &PostPolicyError) -> S3Error {
        match e {
            PostPolicyError::Invalid(_) => S3Error::new(
                "InvalidPolicyDocument",
                StatusCode::BAD_REQUEST,
                e.to_string(),
            ),
            PostPolicyError::Expired
            | PostPolicyError::ConditionFailed(_)
            | PostPolicyError::ExtraField(_) => {
                S3Error::access_denied().with_message(e.to_string())
            }
            PostPolicyError::TooLarge { max } => {
                S3Error::new("EntityTooLarge", StatusCode::BAD_REQUEST, e.to_string())
                    .with("MaxSizeAllowed", max.to_string())
            }
            PostPolicyError::TooSmall { min } => {
                S3Error::new("EntityTooSmall", StatusCode::BAD_REQUEST, e.to_string())
                    .with("MinSizeAllowed", min.to_string())
            }
        }
    }
}
