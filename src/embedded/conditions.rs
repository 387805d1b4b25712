//! Conditional requests in the embedded store: `If-Match`, `If-None-Match`,
//! `If-Modified-Since` and `If-Unmodified-Since` on GET and HEAD, and their
//! `x-amz-copy-source-if-*` twins on CopyObject and UploadPartCopy.
//!
//! S3 follows RFC 9110 §13.2.2 here: If-Match decides before If-Unmodified-Since (a matching
//! ETag wins over a stale date) and If-None-Match before If-Modified-Since. A failed If-Match or
//! If-Unmodified-Since is `412 PreconditionFailed`; a failed If-None-Match or If-Modified-Since
//! is `304 Not Modified` on reads and `412` on copy sources. Dates compare at whole seconds.

use s3s::dto::{ETagCondition, Timestamp};

use super::records::unix_secs;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Preconditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// The `x-amz-copy-source-if-*` conditions of a CopyObject or UploadPartCopy input.
macro_rules! copy_source_preconditions {
    ($input:expr) => {
        $crate::embedded::conditions::Preconditions {
            if_match: $input.copy_source_if_match.as_ref(),
            if_none_match: $input.copy_source_if_none_match.as_ref(),
            if_modified_since: $input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: $input.copy_source_if_unmodified_since.as_ref(),
        }
    };
}
pub(super) use copy_source_preconditions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Proceed,
    NotModified,
    PreconditionFailed,
}

fn matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        // S3 compares the opaque value; a weak prefix from a client does not change it.
        ETagCondition::ETag(tag) => tag.value() == etag,
    }
}

impl Preconditions<'_> {
    /// Evaluates the conditions against an existing object.
    pub fn evaluate(&self, etag: &str, last_modified_ms: i64) -> Outcome {
        let modified_secs = last_modified_ms.div_euclid(1000);
        if let Some(c) = self.if_match {
            if !matches(c, etag) {
                return Outcome::PreconditionFailed;
            }
        } else if let Some(since) = self.if_unmodified_since
            && modified_secs > unix_secs(since)
        {
            return Outcome::PreconditionFailed;
        }
        if let Some(c) = self.if_none_match {
            if matches(c, etag) {
                return Outcome::NotModified;
            }
        } else if let Some(since) = self.if_modified_since
            && modified_secs <= unix_secs(since)
        {
            return Outcome::NotModified;
        }
        Outcome::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::timestamp_secs;
    use super::*;
    use s3s::dto::ETag;

    const T: i64 = 1_700_000_000;

    fn tag(v: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(v.to_owned()))
    }

    #[test]
    fn if_match() {
        let yes = tag("abc");
        let no = tag("xyz");
        let p = Preconditions {
            if_match: Some(&yes),
            ..Default::default()
        };
        assert_eq!(p.evaluate("abc", T * 1000), Outcome::Proceed);
        let p = Preconditions {
            if_match: Some(&no),
            ..Default::default()
        };
        assert_eq!(p.evaluate("abc", T * 1000), Outcome::PreconditionFailed);
        let p = Preconditions {
            if_match: Some(&ETagCondition::Any),
            ..Default::default()
        };
        assert_eq!(p.evaluate("abc", T * 1000), Outcome::Proceed);
    }

    #[test]
    fn if_none_match() {
        let yes = tag("abc");
        let p = Preconditions {
            if_none_match: Some(&yes),
            ..Default::default()
        };
        assert_eq!(p.evaluate("abc", T * 1000), Outcome::NotModified);
        assert_eq!(p.evaluate("def", T * 1000), Outcome::Proceed);
    }

    #[test]
    fn dates_at_second_granularity() {
        let same = timestamp_secs(T);
        let before = timestamp_secs(T - 1);
        // Modified at T + 0.5 s: not modified since T (the header cannot say T + 0.5).
        let p = Preconditions {
            if_modified_since: Some(&same),
            ..Default::default()
        };
        assert_eq!(p.evaluate("e", T * 1000 + 500), Outcome::NotModified);
        let p = Preconditions {
            if_modified_since: Some(&before),
            ..Default::default()
        };
        assert_eq!(p.evaluate("e", T * 1000), Outcome::Proceed);
        let p = Preconditions {
            if_unmodified_since: Some(&before),
            ..Default::default()
        };
        assert_eq!(p.evaluate("e", T * 1000), Outcome::PreconditionFailed);
        let p = Preconditions {
            if_unmodified_since: Some(&same),
            ..Default::default()
        };
        assert_eq!(p.evaluate("e", T * 1000), Outcome::Proceed);
    }

    #[test]
    fn etag_conditions_take_precedence_over_dates() {
        let yes = tag("e");
        let before = timestamp_secs(T - 10);
        // If-Match true + If-Unmodified-Since false: S3 returns the object.
        let p = Preconditions {
            if_match: Some(&yes),
            if_unmodified_since: Some(&before),
            ..Default::default()
        };
        assert_eq!(p.evaluate("e", T * 1000), Outcome::Proceed);
        // If-None-Match true (the ETag differs) wins over a failing If-Modified-Since: 200.
        let other = tag("zzz");
        let later = timestamp_secs(T + 10);
        let p = Preconditions {
            if_none_match: Some(&other),
            if_modified_since: Some(&later),
            ..Default::default()
        };
        assert_eq!(p.evaluate("e", T * 1000), Outcome::Proceed);
    }
}
