//! Browser POST uploads (S3-SEMANTICS §6): the base64 policy document, its
//! conditions checked against the submitted form fields (exact match, `eq`,
//! `starts-with`, `content-length-range`, and S3's rule that every field must
//! be covered by some condition), and the signature over the policy — SigV4
//! (`x-amz-signature`, hex HMAC-SHA256 with the signing key) or SigV2
//! (`signature`, base64 HMAC-SHA1 with the secret).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

/// Why a POST policy or its form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostPolicyError {
    /// Unparseable policy (`InvalidPolicyDocument`).
    #[error("Invalid Policy: {0}")]
    Invalid(String),
    #[error("Invalid according to Policy: Policy expired.")]
    Expired,
    #[error("Invalid according to Policy: Policy Condition failed: {0}")]
    ConditionFailed(String),
    #[error("Invalid according to Policy: Extra input fields: {0}")]
    ExtraField(String),
    #[error("Your proposed upload exceeds the maximum allowed size")]
    TooLarge { max: u64 },
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    TooSmall { min: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`.
    Eq {
        field: String,
        value: String,
        text: String,
    },
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith {
        field: String,
        prefix: String,
        text: String,
    },
    ContentLengthRange {
        min: u64,
        max: u64,
    },
}

/// A decoded POST policy.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    pub expiration: DateTime<Utc>,
    conditions: Vec<Condition>,
}

/// A form field as submitted: its name lowercased (S3 matches names without
/// regard to case) and its value after `${filename}` expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub name: String,
    pub value: String,
}

fn invalid(msg: &str) -> PostPolicyError {
    PostPolicyError::Invalid(msg.to_string())
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        // S3 also takes quoted integers.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field_name(s: &str) -> Result<String, PostPolicyError> {
    s.strip_prefix('$')
        .filter(|n| !n.is_empty())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| invalid(&format!("condition field {s:?} must start with '$'")))
}

impl PostPolicy {
    /// Decodes and parses the `policy` form field.
    pub fn parse(policy_b64: &str) -> Result<PostPolicy, PostPolicyError> {
        let raw = STANDARD
            .decode(policy_b64.trim())
            .map_err(|_| invalid("Invalid base64 encoding."))?;
        let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid("Invalid JSON."))?;
        let obj = doc.as_object().ok_or_else(|| invalid("Invalid JSON."))?;
        if let Some(extra) = obj
            .keys()
            .find(|k| *k != "expiration" && *k != "conditions")
        {
            return Err(invalid(&format!("Unexpected field {extra:?}.")));
        }
        let exp = obj
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Policy missing expiration."))?;
        let expiration = DateTime::parse_from_rfc3339(exp)
            .map_err(|_| invalid("Invalid 'expiration' value: must be an ISO 8601 date."))?
            .with_timezone(&Utc);
        let list = obj
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("Invalid 'conditions' value: must be a List."))?;
        let mut conditions = Vec::with_capacity(list.len());
        for c in list {
            conditions.push(Self::condition(c)?);
        }
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    fn condition(c: &Value) -> Result<Condition, PostPolicyError> {
        let text = c.to_string();
        match c {
            Value::Object(o) => {
                let [(k, v)] = o.iter().collect::<Vec<_>>()[..] else {
                    return Err(invalid(
                        "Each condition object must have exactly one field.",
                    ));
                };
                let value = v.as_str().ok_or_else(|| {
                    invalid(&format!("Condition {text} must have a string value."))
                })?;
                Ok(Condition::Eq {
                    field: k.to_ascii_lowercase(),
                    value: value.to_string(),
                    text,
                })
            }
            Value::Array(a) => match (a.first().and_then(Value::as_str), a.len()) {
                (Some(op), 3) if op.eq_ignore_ascii_case("content-length-range") => {
                    let (min, max) = (number(&a[1]), number(&a[2]));
                    match (min, max) {
                        (Some(min), Some(max)) if min <= max => {
                            Ok(Condition::ContentLengthRange { min, max })
                        }
                        _ => Err(invalid(
                            "content-length-range needs two integers, min <= max.",
                        )),
                    }
                }
                (Some(op), 3)
                    if op.eq_ignore_ascii_case("eq") || op.eq_ignore_ascii_case("starts-with") =>
                {
                    let field = a[1]
                        .as_str()
                        .ok_or_else(|| invalid(&format!("Condition {text} needs a field name.")))
                        .and_then(field_name)?;
                    let value = a[2]
                        .as_str()
                        .ok_or_else(|| invalid(&format!("Condition {text} needs a string value.")))?
                        .to_string();
                    if op.eq_ignore_ascii_case("eq") {
                        Ok(Condition::Eq { field, value, text })
                    } else {
                        Ok(Condition::StartsWith {
                            field,
                            prefix: value,
                            text,
                        })
                    }
                }
                _ => Err(invalid(&format!("Invalid condition {text}."))),
            },
            _ => Err(invalid(&format!("Invalid condition {text}."))),
        }
    }

    /// The inclusive file size bounds, if the policy sets them. Several
    /// `content-length-range` conditions must all hold, so they narrow each
    /// other (and may leave no size at all).
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::ContentLengthRange { min, max } => Some((*min, *max)),
                _ => None,
            })
            .reduce(|(a, b), (c, d)| (a.max(c), b.min(d)))
    }

    /// Checks expiry, every condition, and that every submitted field is
    /// covered by a condition. `bucket` is the bucket the form posts to.
    pub fn check(
        &self,
        fields: &[FormField],
        bucket: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PostPolicyError> {
        if now > self.expiration {
            return Err(PostPolicyError::Expired);
        }
        // Without a bucket condition a form would be good for every bucket
        // the signer may write to; S3's own SDKs always add one.
        let names_bucket = self.conditions.iter().any(|c| {
            matches!(c, Condition::Eq { field, .. } | Condition::StartsWith { field, .. } if field == "bucket")
        });
        if !names_bucket {
            return Err(PostPolicyError::ConditionFailed(
                "a condition on bucket is required".into(),
            ));
        }
        let value_of = |name: &str| -> Option<String> {
            if name == "bucket" {
                return Some(bucket.to_string());
            }
            // Repeated fields are compared as their comma-joined values.
            let values: Vec<&str> = fields
                .iter()
                .filter(|f| f.name == name)
                .map(|f| f.value.as_str())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        for c in &self.conditions {
            match c {
                Condition::Eq { field, value, text } => {
                    if value_of(field).as_deref() != Some(value.as_str()) {
                        return Err(PostPolicyError::ConditionFailed(text.clone()));
                    }
                }
                Condition::StartsWith {
                    field,
                    prefix,
                    text,
                } => {
                    let got = value_of(field).unwrap_or_default();
                    let ok = if field == "content-type" {
                        // Each of several comma-separated types must match.
                        got.split(',')
                            .all(|part| part.trim().starts_with(prefix.as_str()))
                    } else {
                        got.starts_with(prefix.as_str())
                    };
                    if !ok {
                        return Err(PostPolicyError::ConditionFailed(text.clone()));
                    }
                }
                Condition::ContentLengthRange { .. } => {}
            }
        }
        for f in fields {
            if exempt(&f.name) {
                continue;
            }
            let covered = self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                    *field == f.name
                }
                Condition::ContentLengthRange { .. } => false,
            });
            if !covered {
                return Err(PostPolicyError::ExtraField(f.name.clone()));
            }
        }
        Ok(())
    }

    /// Checks a file size against `content-length-range`.
    pub fn check_size(&self, size: u64) -> Result<(), PostPolicyError> {
        match self.content_length_range() {
            Some((_, max)) if size > max => Err(PostPolicyError::TooLarge { max }),
            Some((min, _)) if size < min => Err(PostPolicyError::TooSmall { min }),
            _ => Ok(()),
        }
    }
}

/// Fields no condition needs to name: the signature itself, the policy, the
/// file, the SigV2 key id, and anything prefixed `x-ignore-`.
fn exempt(name: &str) -> bool {
    matches!(
        name,
        "x-amz-signature" | "signature" | "file" | "policy" | "awsaccesskeyid"
    ) || name.starts_with("x-ignore-")
}

/// SigV4: `x-amz-signature` is the hex HMAC-SHA256 of the policy text under
/// the signing key. Compared in constant time.
pub fn verify_v4(policy_b64: &str, signing_key: &[u8; 32], signature_hex: &str) -> bool {
    let expected = super::signing::hmac_sha256(signing_key, policy_b64.as_bytes());
    super::signing::signature_matches(&expected, signature_hex)
}

/// SigV2: `signature` is the base64 HMAC-SHA1 of the policy text under the
/// secret. Compared in constant time.
pub fn verify_v2(policy_b64: &str, secret: &str, signature_b64: &str) -> bool {
    let Ok(provided) = STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    let Ok(mut mac) = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(policy_b64.as_bytes());
    let expected = mac.finalize().into_bytes();
    expected.len() == provided.len() && bool::from(expected.as_slice().ct_eq(&provided))
}

/// Expands `${filename}` in a form value with the uploaded file's name
/// (only the part after the last `/` or `\`).
pub fn expand_filename(value: &str, file_name: Option<&str>) -> String {
    if !value.contains("${filename}") {
        return value.to_string();
    }
    let base = file_name
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
        .unwrap_or("");
    value.replace("${filename}", base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        STANDARD.encode(json)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<FormField> {
        pairs
            .iter()
            .map(|(n, v)| FormField {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    const POLICY: &str = r#"{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [
        {"bucket": "uploads"}, ["starts-with", "$key", "alice/"], {"acl": "private"},
        ["content-length-range", 1, "1024"], ["starts-with", "$Content-Type", "image/"],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"}]}"#;

    fn now() -> DateTime<Utc> {
        "2029-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn conditions_and_coverage() {
        let p = PostPolicy::parse(&b64(POLICY)).unwrap();
        let ok = fields(&[
            ("key", "alice/a.png"),
            ("acl", "private"),
            ("content-type", "image/png"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-signature", "ab"),
            ("policy", "x"),
            ("x-ignore-me", "1"),
        ]);
        assert_eq!(p.check(&ok, "uploads", now()), Ok(()));
        assert!(matches!(
            p.check(&ok, "other", now()),
            Err(PostPolicyError::ConditionFailed(_))
        ));
        let mut wrong_key = ok.clone();
        wrong_key[0].value = "bob/a.png".into();
        assert!(matches!(
            p.check(&wrong_key, "uploads", now()),
            Err(PostPolicyError::ConditionFailed(_))
        ));
        let mut extra = ok.clone();
        extra.push(FormField {
            name: "x-amz-meta-color".into(),
            value: "red".into(),
        });
        assert_eq!(
            p.check(&extra, "uploads", now()),
            Err(PostPolicyError::ExtraField("x-amz-meta-color".into()))
        );
        assert_eq!(
            p.check(&ok, "uploads", "2031-01-01T00:00:00Z".parse().unwrap()),
            Err(PostPolicyError::Expired)
        );
        let mut two_types = ok.clone();
        two_types[2].value = "image/png, text/plain".into();
        assert!(p.check(&two_types, "uploads", now()).is_err());
    }

    #[test]
    fn sizes() {
        let p = PostPolicy::parse(&b64(POLICY)).unwrap();
        assert_eq!(p.content_length_range(), Some((1, 1024)));
        assert_eq!(p.check_size(1024), Ok(()));
        assert_eq!(
            p.check_size(1025),
            Err(PostPolicyError::TooLarge { max: 1024 })
        );
        assert_eq!(p.check_size(0), Err(PostPolicyError::TooSmall { min: 1 }));
        // Several ranges must all hold: they narrow each other.
        let two = r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [
            ["content-length-range", 0, 100000000], ["content-length-range", 5, 10]]}"#;
        let p = PostPolicy::parse(&b64(two)).unwrap();
        assert_eq!(p.content_length_range(), Some((5, 10)));
        assert_eq!(
            p.check_size(5000),
            Err(PostPolicyError::TooLarge { max: 10 })
        );
    }

    #[test]
    fn a_bucket_condition_is_required() {
        let p = PostPolicy::parse(&b64(
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["starts-with", "$key", ""]]}"#,
        ))
        .unwrap();
        let fields = [FormField {
            name: "key".into(),
            value: "k".into(),
        }];
        assert!(matches!(
            p.check(&fields, "uploads", now()),
            Err(PostPolicyError::ConditionFailed(_))
        ));
    }

    #[test]
    fn malformed_policies() {
        for bad in [
            "not base64!",
            &b64("not json"),
            &b64(r#"{"conditions": []}"#),
            &b64(r#"{"expiration": "2030-01-01T00:00:00Z"}"#),
            &b64(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [], "x": 1}"#),
            &b64(
                r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["between", "$key", "a"]]}"#,
            ),
            &b64(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": "b", "c": "d"}]}"#),
            &b64(r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "a"]]}"#),
            &b64(
                r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 10, 1]]}"#,
            ),
        ] {
            assert!(
                matches!(PostPolicy::parse(bad), Err(PostPolicyError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn signatures() {
        let policy = b64(POLICY);
        let key =
            super::super::signing::derive_signing_key("secret", "20290101", "us-east-1", "s3");
        let sig = hex::encode(super::super::signing::hmac_sha256(&key, policy.as_bytes()));
        assert!(verify_v4(&policy, &key, &sig));
        assert!(!verify_v4(&b64("{}"), &key, &sig));
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(b"secret").unwrap();
        mac.update(policy.as_bytes());
        let v2 = STANDARD.encode(mac.finalize().into_bytes());
        assert!(verify_v2(&policy, "secret", &v2));
        assert!(!verify_v2(&policy, "other", &v2));
        assert!(!verify_v2(&policy, "secret", "!!"));
    }

    #[test]
    fn filename_expansion() {
        assert_eq!(
            expand_filename("u/${filename}", Some("C:\\docs\\a b.png")),
            "u/a b.png"
        );
        assert_eq!(
            expand_filename("u/${filename}", Some("dir/x.txt")),
            "u/x.txt"
        );
        assert_eq!(expand_filename("u/${filename}", None), "u/");
        assert_eq!(expand_filename("plain", Some("x")), "plain");
    }
}
