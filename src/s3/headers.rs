//! What each request header means to s3warden: forwarded to upstream (part of
//! the S3 request the client asked for), consumed by authentication, or
//! transport noise that is dropped. An `x-amz-*` header with no known role
//! could change what S3 does, so the request carrying it is refused.

/// A header's value when it is visible ASCII text; `None` when absent or not.
pub fn header_str<K: http::header::AsHeaderName>(
    headers: &http::HeaderMap,
    name: K,
) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The role of a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRole {
    /// Part of the S3 request; forwarded as received.
    Forward,
    /// Authentication or body framing; consumed by the proxy, re-created upstream.
    Auth,
    /// Ownership assertions checked by the proxy against its own account.
    ExpectedOwner,
    /// Transport or SDK bookkeeping; not forwarded.
    Drop,
}

const FORWARD_PLAIN: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-md5",
    "content-type",
    "expires",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

const FORWARD_AMZ: &[&str] = &[
    "x-amz-acl",
    "x-amz-bucket-object-lock-enabled",
    "x-amz-bucket-object-lock-token",
    "x-amz-bypass-governance-retention",
    "x-amz-checksum-algorithm",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-md5",
    "x-amz-checksum-mode",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-sha512",
    "x-amz-checksum-type",
    "x-amz-checksum-xxhash128",
    "x-amz-checksum-xxhash3",
    "x-amz-checksum-xxhash64",
    "x-amz-confirm-remove-self-bucket-access",
    "x-amz-copy-source",
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-unmodified-since",
    "x-amz-copy-source-range",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
    "x-amz-if-match-initiated-time",
    "x-amz-if-match-last-modified-time",
    "x-amz-if-match-size",
    "x-amz-max-parts",
    "x-amz-metadata-directive",
    "x-amz-mfa",
    "x-amz-mp-object-size",
    "x-amz-object-attributes",
    "x-amz-object-lock-legal-hold",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-ownership",
    "x-amz-optional-object-attributes",
    "x-amz-part-number-marker",
    "x-amz-request-payer",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-skip-destination-validation",
    "x-amz-storage-class",
    "x-amz-tagging",
    "x-amz-tagging-directive",
    "x-amz-transition-default-minimum-object-size",
    "x-amz-website-redirect-location",
    "x-amz-write-offset-bytes",
];

const AUTH_AMZ: &[&str] = &[
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
];

/// The role of a header, by lowercase name; `None` for an `x-amz-*` header
/// s3warden does not know.
pub fn role(name: &str) -> Option<HeaderRole> {
    if let Some(rest) = name.strip_prefix("x-amz-") {
        if rest.starts_with("meta-") || FORWARD_AMZ.contains(&name) {
            return Some(HeaderRole::Forward);
        }
        if AUTH_AMZ.contains(&name) {
            return Some(HeaderRole::Auth);
        }
        if name == "x-amz-expected-bucket-owner" || name == "x-amz-source-expected-bucket-owner" {
            return Some(HeaderRole::ExpectedOwner);
        }
        // The SDKs' own telemetry header: never meaningful to S3.
        if name == "x-amz-user-agent" {
            return Some(HeaderRole::Drop);
        }
        return None;
    }
    if FORWARD_PLAIN.contains(&name) {
        Some(HeaderRole::Forward)
    } else {
        Some(HeaderRole::Drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(role("x-amz-meta-color"), Some(HeaderRole::Forward));
        assert_eq!(role("x-amz-acl"), Some(HeaderRole::Forward));
        assert_eq!(role("x-amz-date"), Some(HeaderRole::Auth));
        assert_eq!(role("x-amz-fwd-status"), None);
        assert_eq!(role("x-amz-new-feature"), None);
        assert_eq!(role("range"), Some(HeaderRole::Forward));
        assert_eq!(role("connection"), Some(HeaderRole::Drop));
        assert_eq!(role("authorization"), Some(HeaderRole::Drop));
    }
}
