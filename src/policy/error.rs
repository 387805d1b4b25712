//! Errors from parsing and validating a policy document.
//!
//! AWS answers every one of these with `MalformedPolicyDocument`; the message names the fault
//! and quotes the offending input so that the author can find it. Statement-level errors name
//! the statement by its Sid, or by `#<0-based index>` when it has none.

use std::fmt;

/// What a condition value was expected to be, for [`PolicyError::InvalidConditionValue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Number,
    Date,
    Boolean,
    Base64,
    Cidr,
    Arn,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Number => "number",
            ValueKind::Date => "date",
            ValueKind::Boolean => "boolean (expected \"true\" or \"false\")",
            ValueKind::Base64 => "base64 value",
            ValueKind::Cidr => "ip address or cidr",
            ValueKind::Arn => "arn",
        })
    }
}

/// A policy document that cannot be accepted. Every variant maps to the AWS error code
/// [`PolicyError::AWS_CODE`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or JSON that does not have the policy grammar's shape (unknown or duplicate
    /// element, wrong JSON type, missing `Statement`). The text is serde_json's, with position.
    #[error("invalid policy document: {0}")]
    Json(String),
    #[error("unsupported policy version \"{0}\": expected \"2012-10-17\" or \"2008-10-17\"")]
    UnsupportedVersion(String),
    #[error("the Id element is not allowed in an identity or session policy")]
    IdNotAllowed,
    #[error(
        "statement {statement}: invalid sid \"{sid}\": only letters A-Z, a-z and digits 0-9 are allowed"
    )]
    InvalidSid { statement: String, sid: String },
    #[error("duplicate sid \"{0}\": statement ids must be unique within a policy")]
    DuplicateSid(String),
    #[error("statement {statement}: invalid effect \"{effect}\": expected \"Allow\" or \"Deny\"")]
    InvalidEffect { statement: String, effect: String },
    #[error("statement {statement}: {element} is required")]
    MissingElement {
        statement: String,
        element: &'static str,
    },
    #[error("statement {statement}: {first} and {second} cannot both be present")]
    ConflictingElements {
        statement: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("statement {statement}: {element} is not allowed in an identity or session policy")]
    ElementNotAllowed {
        statement: String,
        element: &'static str,
    },
    #[error("statement {statement}: {element} must not be an empty list")]
    EmptyElement {
        statement: String,
        element: &'static str,
    },
    #[error("statement {statement}: invalid action \"{action}\": {reason}")]
    InvalidAction {
        statement: String,
        action: String,
        reason: &'static str,
    },
    #[error("statement {statement}: invalid resource \"{resource}\": {reason}")]
    InvalidResource {
        statement: String,
        resource: String,
        reason: &'static str,
    },
    #[error("statement {statement}: invalid principal \"{principal}\": {reason}")]
    InvalidPrincipal {
        statement: String,
        principal: String,
        reason: &'static str,
    },
    #[error(
        "statement {statement}: s3warden cannot evaluate condition key \"{key}\" (it is never present in its requests), and here its absence would widen access"
    )]
    Unenforceable { statement: String, key: String },
    #[error("statement {statement}: unknown condition operator \"{operator}\"")]
    UnknownOperator { statement: String, operator: String },
    #[error("statement {statement}: {operator} on key \"{key}\" has no values")]
    EmptyConditionValues {
        statement: String,
        operator: String,
        key: String,
    },
    #[error(
        "statement {statement}: {operator} on key \"{key}\": {found} is not a valid condition value (expected a string, number or boolean)"
    )]
    WrongValueType {
        statement: String,
        operator: String,
        key: String,
        found: &'static str,
    },
    #[error("statement {statement}: {operator} on key \"{key}\": invalid {expected} \"{value}\"")]
    InvalidConditionValue {
        statement: String,
        operator: String,
        key: String,
        value: String,
        expected: ValueKind,
    },
    #[error("statement {statement}: invalid policy variable in \"{text}\": {reason}")]
    InvalidVariable {
        statement: String,
        text: String,
        reason: &'static str,
    },
}

impl PolicyError {
    /// The AWS error code every policy error is reported with (IAM, STS and S3 alike).
    pub const AWS_CODE: &'static str = "MalformedPolicyDocument";
}
