//! Whether s3warden can enforce a policy as AWS would. A condition on a key
//! that AWS fills but s3warden never does (object tags stored upstream,
//! organisation ids, …) always sees the key as missing. Where that would
//! widen access — a Deny that then never applies, or an Allow that then
//! always does — the policy is refused rather than enforced wrongly.

use super::Context;
use super::condition::Truth;
use super::document::{Effect, Policy};
use super::error::PolicyError;
use super::keys::lookup;

impl Policy {
    /// Refuses a policy whose meaning depends on a condition key s3warden
    /// never fills in a way that fails open.
    pub fn check_enforceable(&self) -> Result<(), PolicyError> {
        let missing = Context::new();
        for s in &self.inner().statements {
            for c in &s.conditions {
                if lookup(&c.key_lower).is_none_or(|info| info.filled) {
                    continue;
                }
                let when_missing = c.evaluate(&missing);
                let widens = match s.effect {
                    // The Deny would not apply when it should.
                    Effect::Deny => when_missing != Truth::True,
                    // The Allow would apply when it should not.
                    Effect::Allow => when_missing == Truth::True,
                };
                if widens {
                    return Err(PolicyError::Unenforceable {
                        statement: s.label.clone(),
                        key: c.key.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::PolicyKind;
    use super::*;

    fn check(doc: &str) -> Result<(), PolicyError> {
        Policy::parse(doc, PolicyKind::Identity)
            .unwrap()
            .check_enforceable()
    }

    fn stmt(effect: &str, op: &str, key: &str) -> String {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": {{"Sid": "S", "Effect": "{effect}", "Action": "s3:GetObject", "Resource": "*",
                "Condition": {{"{op}": {{"{key}": "secret"}}}}}}}}"#
        )
    }

    #[test]
    fn fail_open_uses_of_unfilled_keys_are_refused() {
        // Deny when the resource is tagged secret: s3warden cannot see resource tags, so it would never deny.
        assert!(matches!(
            check(&stmt("Deny", "StringEquals", "aws:ResourceTag/class")),
            Err(PolicyError::Unenforceable { .. })
        ));
        // Allow unless tagged secret: would always allow.
        assert!(check(&stmt("Allow", "StringNotEquals", "aws:ResourceTag/class")).is_err());
        assert!(check(&stmt("Allow", "StringEqualsIfExists", "aws:PrincipalOrgID")).is_err());
    }

    #[test]
    fn fail_closed_uses_and_filled_keys_are_accepted() {
        // Allow only when tagged public: never applies, which only narrows.
        assert!(check(&stmt("Allow", "StringEquals", "aws:ResourceTag/class")).is_ok());
        // Deny unless in the organisation: always applies, which only narrows.
        assert!(check(&stmt("Deny", "StringNotEquals", "aws:PrincipalOrgID")).is_ok());
        assert!(check(&stmt("Deny", "StringEquals", "s3:prefix")).is_ok());
        // Filled for web identity sessions (absent, as in AWS, for the rest).
        assert!(check(&stmt("Deny", "StringEquals", "aws:FederatedProvider")).is_ok());
        assert!(check(&stmt("Allow", "StringNotEquals", "aws:FederatedProvider")).is_ok());
        // Keys s3warden does not know at all are AWS-accepted and left to the lint.
        assert!(check(&stmt("Deny", "StringEquals", "vendor:custom")).is_ok());
    }
}
