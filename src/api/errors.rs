//! The one place where API and authentication errors become the IAM/STS
//! error a client sees: code, HTTP status and the Query protocol's
//! `<ErrorResponse>` envelope (S3-SEMANTICS §3.6, §4.4).

use http::StatusCode;

use super::Service;
use super::xml::escape;
use crate::auth::AuthError;
use crate::identity::IdentityError;

/// Why an API call failed. Messages follow AWS's wording where it is known.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// A parameter violates its length, pattern or range constraint.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidInput(String),
    /// The entity is declared in the config file, which owns it.
    #[error("{0}")]
    Unmodifiable(String),
    #[error("{0}")]
    PolicyNotAttachable(String),
    #[error("{0}")]
    PackedPolicyTooLarge(String),
    #[error("{0}")]
    InvalidAction(String),
    #[error("no action was supplied with this request")]
    MissingAction,
    #[error("{0}")]
    NoSuchVersion(String),
    #[error("{0}")]
    InvalidHttpRequest(String),
    #[error("{0}")]
    MalformedQueryString(String),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request is missing authentication token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    InvalidClientTokenId(String),
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    #[error("the security token included in the request is expired")]
    ExpiredToken,
    #[error("{0}")]
    ServiceFailure(String),
    /// A web identity token is malformed, badly signed, or not for this provider.
    #[error("{0}")]
    InvalidIdentityToken(String),
    /// A web identity token has expired.
    #[error("{0}")]
    ExpiredTokenException(String),
    /// The OpenID provider's discovery document or keys could not be had.
    #[error("{0}")]
    IdpCommunication(String),
    /// The shared identity store cannot be reached: the change was not made.
    #[error("{0}")]
    ServiceUnavailable(String),
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        if let IdentityError::Unavailable(why) = &e {
            tracing::warn!(error = %why, "identity change refused: the identity store is unreachable");
            return ApiError::ServiceUnavailable(
                "The identity store is unavailable; nothing was changed. Try again later.".into(),
            );
        }
        tracing::error!(error = %e, "identity store failure");
        ApiError::ServiceFailure(
            "The request processing has failed because of an unknown error.".into(),
        )
    }
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

impl From<&AuthError> for ApiError {
    fn from(e: &AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::MissingAuthenticationToken,
            AuthError::UnsupportedMechanism(m) => ApiError::IncompleteSignature(format!(
                "Authorization mechanism {m:?} is not supported; use AWS4-HMAC-SHA256 in the Authorization header."
            )),
            AuthError::Malformed(why) => ApiError::IncompleteSignature(format!(
                "The request signature does not conform to AWS standards: {why}"
            )),
            AuthError::WrongRegion { got, expected } => ApiError::SignatureDoesNotMatch(format!(
                "Credential should be scoped to a valid region, not '{got}'. Expected '{expected}'."
            )),
            AuthError::WrongService { got, expected } => ApiError::SignatureDoesNotMatch(format!(
                "Credential should be scoped to correct service: '{expected}', not '{got}'."
            )),
            AuthError::ScopeDateMismatch => ApiError::SignatureDoesNotMatch(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.".into(),
            ),
            AuthError::MissingDate => ApiError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
            ),
            AuthError::TimeTooSkewed {
                request_time,
                server_time,
            } => ApiError::SignatureDoesNotMatch(format!(
                "Signature expired: {request_time} is now earlier or later than the allowed window around {server_time}."
            )),
            AuthError::MissingContentSha256 | AuthError::InvalidContentSha256(_) => {
                ApiError::SignatureDoesNotMatch(SIGNATURE_MISMATCH.into())
            }
            AuthError::UnsignedHeaders(names) => ApiError::SignatureDoesNotMatch(format!(
                "There were headers present in the request which were not signed: {}",
                names.join(", ")
            )),
            AuthError::UnknownAccessKey(_) | AuthError::InvalidToken => {
                ApiError::InvalidClientTokenId(INVALID_TOKEN.into())
            }
            AuthError::ExpiredToken => ApiError::ExpiredToken,
            AuthError::SignatureMismatch { .. } => {
                ApiError::SignatureDoesNotMatch(SIGNATURE_MISMATCH.into())
            }
            // The Query APIs take SigV4 header auth only; the other forms S3
            // knows (SigV2, presigned URLs, aws-chunked bodies) never reach a
            // verified signature here.
            AuthError::BadAuthorizationFormat(_)
            | AuthError::MultipleMechanisms
            | AuthError::SigV2Disabled
            | AuthError::QueryParameters(_)
            | AuthError::MissingDecodedLength
            | AuthError::InvalidHeader { .. }
            | AuthError::NotImplemented(_) => ApiError::IncompleteSignature(format!(
                "The request signature does not conform to AWS standards: {e}"
            )),
            AuthError::Expired { .. } | AuthError::NotYetValid { .. } => {
                ApiError::SignatureDoesNotMatch("Signature expired.".into())
            }
        }
    }
}

impl ApiError {
    /// The wire code and HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use StatusCode as S;
        match self {
            ApiError::AccessDenied(_) => ("AccessDenied", S::FORBIDDEN),
            ApiError::NoSuchEntity(_) => ("NoSuchEntity", S::NOT_FOUND),
            ApiError::EntityAlreadyExists(_) => ("EntityAlreadyExists", S::CONFLICT),
            ApiError::LimitExceeded(_) => ("LimitExceeded", S::CONFLICT),
            ApiError::DeleteConflict(_) => ("DeleteConflict", S::CONFLICT),
            ApiError::MalformedPolicyDocument(_) => ("MalformedPolicyDocument", S::BAD_REQUEST),
            ApiError::Validation(_) => ("ValidationError", S::BAD_REQUEST),
            ApiError::InvalidInput(_) => ("InvalidInput", S::BAD_REQUEST),
            ApiError::Unmodifiable(_) => ("UnmodifiableEntity", S::BAD_REQUEST),
            ApiError::PolicyNotAttachable(_) => ("PolicyNotAttachable", S::BAD_REQUEST),
            ApiError::PackedPolicyTooLarge(_) => ("PackedPolicyTooLarge", S::BAD_REQUEST),
            ApiError::InvalidAction(_) => ("InvalidAction", S::BAD_REQUEST),
            ApiError::MissingAction => ("MissingAction", S::BAD_REQUEST),
            ApiError::NoSuchVersion(_) => ("NoSuchVersion", S::BAD_REQUEST),
            ApiError::InvalidHttpRequest(_) => ("InvalidHttpRequest", S::BAD_REQUEST),
            ApiError::MalformedQueryString(_) => ("MalformedQueryString", S::BAD_REQUEST),
            ApiError::TooLarge(_) => ("RequestEntityTooLarge", S::PAYLOAD_TOO_LARGE),
            ApiError::MissingAuthenticationToken => ("MissingAuthenticationToken", S::FORBIDDEN),
            ApiError::IncompleteSignature(_) => ("IncompleteSignature", S::BAD_REQUEST),
            ApiError::InvalidClientTokenId(_) => ("InvalidClientTokenId", S::FORBIDDEN),
            ApiError::SignatureDoesNotMatch(_) => ("SignatureDoesNotMatch", S::FORBIDDEN),
            ApiError::ExpiredToken => ("ExpiredToken", S::FORBIDDEN),
            ApiError::InvalidIdentityToken(_) => ("InvalidIdentityToken", S::BAD_REQUEST),
            ApiError::ExpiredTokenException(_) => ("ExpiredTokenException", S::BAD_REQUEST),
            ApiError::IdpCommunication(_) => ("IDPCommunicationError", S::BAD_REQUEST),
            ApiError::ServiceFailure(_) => ("ServiceFailure", S::INTERNAL_SERVER_ERROR),
            ApiError::ServiceUnavailable(_) => ("ServiceUnavailable", S::SERVICE_UNAVAILABLE),
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::MissingAuthenticationToken => {
                "Request is missing Authentication Token".into()
            }
            ApiError::MissingAction => "No action was supplied with this request.".into(),
            ApiError::ExpiredToken => {
                "The security token included in the request is expired".into()
            }
            other => other.to_string(),
        }
    }

    /// The `<ErrorResponse>` document.
    pub fn to_xml(&self, service: Service, request_id: &str) -> String {
        let (code, status) = self.code_and_status();
        let kind = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            service.namespace(),
            escape(&self.message()),
            escape(request_id)
        )
    }
}
