//! S3 requests: addressing (bucket and key), classification (operation →
//! IAM actions, resource ARNs and condition keys), multi-object delete
//! bodies, and S3's XML errors.

pub mod address;
pub mod classify;
pub mod delete_objects;
pub mod error;
pub mod errors;
pub mod headers;
pub mod operation;
pub mod post_form;

pub use address::Target;
pub use classify::{Check, Classified, CopySource, classify};
pub use error::{ErrorSource, S3Error};
pub use operation::Operation;

/// Why a request could not be classified. Each maps to the error S3 gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    #[error("bucket name {0:?} is not valid")]
    InvalidBucketName(String),
    #[error("key of {0} bytes is longer than 1024")]
    KeyTooLong(usize),
    #[error("invalid URI: {0}")]
    InvalidUri(String),
    #[error("query parameter {0:?} is not supported")]
    UnknownParameter(String),
    #[error("query parameter {0:?} is given more than once")]
    RepeatedParameter(String),
    #[error("query parameter {0:?} has invalid value {1:?}")]
    InvalidParameter(String, String),
    #[error("header {0:?} is not supported")]
    UnsupportedHeader(String),
    #[error("header {0:?} is given more than once")]
    RepeatedHeader(String),
    #[error("ambiguous request: {0}")]
    Ambiguous(String),
    #[error("{0:?} is not a bucket operation")]
    NotABucketOperation(String),
    #[error("{0:?} is not an object operation")]
    NotAnObjectOperation(String),
    #[error("method not allowed against this resource")]
    MethodNotAllowed,
    #[error("invalid x-amz-copy-source {0}")]
    BadCopySource(String),
}
