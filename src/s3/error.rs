//! S3 errors as S3 returns them: a code, an HTTP status, a message, optional
//! detail elements, rendered as the `<Error>` XML document.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

/// Where an error came from; recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSource {
    Client,
    Upstream,
    Internal,
}

/// One S3 error response.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    /// Extra elements after `<Message>`, e.g. `<Key>`, `<Region>`.
    pub details: Vec<(&'static str, String)>,
    pub source: ErrorSource,
    /// What went wrong behind the answer (an upstream's own error text),
    /// for the log and the audit record only: clients get the generic
    /// message, since the detail names internal hosts and credentials setup.
    pub internal_detail: Option<String>,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for S3Error {}

macro_rules! s3_errors {
    ($($fn_name:ident => $code:literal, $status:ident, $msg:literal;)*) => {
        impl S3Error {
            $(
                #[doc = concat!("`", $code, "` with S3's default message.")]
                pub fn $fn_name() -> S3Error {
                    S3Error::new($code, StatusCode::$status, $msg)
                }
            )*
        }
    };
}

s3_errors! {
    access_denied => "AccessDenied", FORBIDDEN, "Access Denied";
    signature_does_not_match => "SignatureDoesNotMatch", FORBIDDEN,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    invalid_access_key_id => "InvalidAccessKeyId", FORBIDDEN,
        "The AWS Access Key Id you provided does not exist in our records.";
    request_time_too_skewed => "RequestTimeTooSkewed", FORBIDDEN,
        "The difference between the request time and the current time is too large.";
    content_sha256_mismatch => "XAmzContentSHA256Mismatch", BAD_REQUEST,
        "The provided 'x-amz-content-sha256' header does not match what was computed.";
    bad_digest => "BadDigest", BAD_REQUEST, "The Content-MD5 or checksum value that you specified did not match what the server received.";
    invalid_digest => "InvalidDigest", BAD_REQUEST, "The Content-MD5 or checksum value that you specified is not valid.";
    missing_content_length => "MissingContentLength", LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    incomplete_body => "IncompleteBody", BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    malformed_xml => "MalformedXML", BAD_REQUEST,
        "The XML you provided was not well-formed or did not validate against our published schema.";
    invalid_uri => "InvalidURI", BAD_REQUEST, "Couldn't parse the specified URI.";
    invalid_bucket_name => "InvalidBucketName", BAD_REQUEST, "The specified bucket is not valid.";
    key_too_long => "KeyTooLongError", BAD_REQUEST, "Your key is too long.";
    method_not_allowed => "MethodNotAllowed", METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    not_implemented => "NotImplemented", NOT_IMPLEMENTED, "A header or parameter you provided implies functionality that is not implemented.";
    internal_error => "InternalError", INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    service_unavailable => "ServiceUnavailable", SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    no_such_key => "NoSuchKey", NOT_FOUND, "The specified key does not exist.";
    request_timeout => "RequestTimeout", BAD_REQUEST,
        "Your socket connection to the server was not read from or written to within the timeout period.";
    max_message_length_exceeded => "MaxMessageLengthExceeded", BAD_REQUEST, "Your request was too big.";
}

impl S3Error {
    pub fn new(
        code: &'static str,
        status: StatusCode,
        message: impl Into<Cow<'static, str>>,
    ) -> S3Error {
        S3Error {
            code,
            status,
            message: message.into(),
            details: Vec::new(),
            source: ErrorSource::Client,
            internal_detail: None,
        }
    }

    /// `InvalidRequest` (400) with a specific message.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> S3Error {
        S3Error::new("InvalidRequest", StatusCode::BAD_REQUEST, message)
    }

    /// `InvalidArgument` (400) naming the argument.
    pub fn invalid_argument(
        message: impl Into<Cow<'static, str>>,
        name: &str,
        value: &str,
    ) -> S3Error {
        S3Error::new("InvalidArgument", StatusCode::BAD_REQUEST, message)
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }

    /// `AuthorizationHeaderMalformed` (400).
    pub fn authorization_header_malformed(message: impl Into<Cow<'static, str>>) -> S3Error {
        S3Error::new(
            "AuthorizationHeaderMalformed",
            StatusCode::BAD_REQUEST,
            message,
        )
    }

    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> S3Error {
        self.message = message.into();
        self
    }

    pub fn with(mut self, element: &'static str, value: impl Into<String>) -> S3Error {
        self.details.push((element, value.into()));
        self
    }

    /// Adds detail for the log and audit record, never sent to the client.
    pub fn with_internal_detail(mut self, detail: impl Into<String>) -> S3Error {
        self.internal_detail = Some(detail.into());
        self
    }

    pub fn from_source(mut self, source: ErrorSource) -> S3Error {
        self.source = source;
        self
    }

    /// The XML body: `<Error><Code/><Message/>…details…<RequestId/><HostId/></Error>`.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        out.push_str(self.code);
        out.push_str("</Code><Message>");
        out.push_str(&xml_escape(&self.message));
        out.push_str("</Message>");
        for (name, value) in &self.details {
            out.push('<');
            out.push_str(name);
            out.push('>');
            out.push_str(&xml_escape(value));
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        out.push_str("<RequestId>");
        out.push_str(request_id);
        out.push_str("</RequestId><HostId>");
        out.push_str(request_id);
        out.push_str("</HostId></Error>");
        out
    }
}

/// Escapes text for an XML element body or attribute.
pub fn xml_escape(s: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_has_code_message_details_and_request_id() {
        let e = S3Error::access_denied().with("Key", "a<b&c");
        let xml = e.to_xml("REQ123");
        assert!(xml.contains("<Code>AccessDenied</Code>"));
        assert!(xml.contains("<Key>a&lt;b&amp;c</Key>"));
        assert!(xml.contains("<RequestId>REQ123</RequestId>"));
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }
}
