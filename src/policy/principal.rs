//! Principal / NotPrincipal of resource policies (role trust policies).
//!
//! Follows the IAM User Guide's Principal page: `"*"` or an object keyed by `AWS`, `Federated`,
//! `Service` or `CanonicalUser`, each a string or an array. An `AWS` entry is `"*"`, a 12-digit
//! account id, or an ARN; an account id and `arn:<partition>:iam::<account>:root` both name the
//! whole account (any principal in it), any other ARN names exactly that principal. Wildcards
//! inside a principal are refused, as AWS refuses them. A `Federated` entry names an OpenID
//! Connect provider's ARN and matches only a web identity of that provider (which no `AWS`
//! entry matches, not even `"*"`); `Service` and `CanonicalUser` entries never match.

use super::error::PolicyError;
use super::eval::PrincipalInfo;
use super::json::RawPrincipal;
use super::matching::split_arn;

#[derive(Clone, Debug, PartialEq, Eq)]
enum AwsPrincipal {
    Any,
    Account(String),
    Arn(String),
}

/// A compiled Principal or NotPrincipal element.
#[derive(Clone, Debug)]
pub(crate) struct PrincipalSpec {
    pub negated: bool,
    aws: Vec<AwsPrincipal>,
    /// Identity provider ARNs (`Federated`).
    federated: Vec<String>,
    /// Everyone, as in `"Principal": "*"`.
    everyone: bool,
}

impl PrincipalSpec {
    pub fn compile(
        statement: &str,
        raw: RawPrincipal,
        negated: bool,
    ) -> Result<PrincipalSpec, PolicyError> {
        let element = if negated { "NotPrincipal" } else { "Principal" };
        let invalid = |principal: &str, reason: &'static str| PolicyError::InvalidPrincipal {
            statement: statement.to_owned(),
            principal: principal.to_owned(),
            reason,
        };
        let mut spec = PrincipalSpec {
            negated,
            aws: Vec::new(),
            federated: Vec::new(),
            everyone: false,
        };
        match raw {
            RawPrincipal::Text(text) if text == "*" => spec.everyone = true,
            RawPrincipal::Text(text) => {
                return Err(invalid(
                    &text,
                    "expected \"*\" or an object such as {\"AWS\": ...}",
                ));
            }
            RawPrincipal::Map(map) => {
                if map.0.is_empty() {
                    return Err(PolicyError::EmptyElement {
                        statement: statement.to_owned(),
                        element,
                    });
                }
                for (kind, values) in map.0 {
                    if values.0.is_empty() {
                        return Err(PolicyError::EmptyElement {
                            statement: statement.to_owned(),
                            element,
                        });
                    }
                    match kind.as_str() {
                        "AWS" => {
                            for value in values.0 {
                                let p = parse_aws(&value).map_err(|r| invalid(&value, r))?;
                                spec.aws.push(p);
                            }
                        }
                        "Federated" | "Service" | "CanonicalUser" => {
                            if let Some(bad) = values.0.iter().find(|v| v.is_empty()) {
                                return Err(invalid(bad, "empty principal"));
                            }
                            if kind == "Federated" {
                                spec.federated.extend(values.0);
                            }
                        }
                        _ => {
                            return Err(invalid(
                                &kind,
                                "unknown principal type (expected AWS, Federated, Service or CanonicalUser)",
                            ));
                        }
                    }
                }
            }
        }
        Ok(spec)
    }

    /// Whether the element applies to this principal (NotPrincipal: is not listed).
    pub fn matches(&self, who: &PrincipalInfo<'_>) -> bool {
        if who.federated {
            let listed = self.everyone || self.federated.iter().any(|f| f == who.arn);
            return listed != self.negated;
        }
        let listed = self.everyone
            || self.aws.iter().any(|p| match p {
                AwsPrincipal::Any => true,
                AwsPrincipal::Account(account) => account == who.account,
                AwsPrincipal::Arn(arn) => arn == who.arn,
            });
        listed != self.negated
    }
}

fn parse_aws(value: &str) -> Result<AwsPrincipal, &'static str> {
    if value == "*" {
        return Ok(AwsPrincipal::Any);
    }
    if is_account_id(value) {
        return Ok(AwsPrincipal::Account(value.to_owned()));
    }
    if value.contains(['*', '?']) {
        return Err("wildcards are not allowed in a principal, except \"*\" alone");
    }
    let parts = split_arn(value).ok_or("expected \"*\", an account id or an arn")?;
    if parts[0] != "arn" || parts[2].is_empty() || parts[5].is_empty() {
        return Err("expected \"*\", an account id or an arn");
    }
    if parts[2] == "iam" && parts[5] == "root" && is_account_id(parts[4]) {
        return Ok(AwsPrincipal::Account(parts[4].to_owned()));
    }
    Ok(AwsPrincipal::Arn(value.to_owned()))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str, negated: bool) -> Result<PrincipalSpec, String> {
        let raw: RawPrincipal = serde_json::from_str(json).unwrap();
        PrincipalSpec::compile("#0", raw, negated).map_err(|e| e.to_string())
    }

    const ALICE: PrincipalInfo<'static> = PrincipalInfo {
        arn: "arn:aws:iam::111122223333:user/alice",
        account: "111122223333",
        federated: false,
    };

    #[test]
    fn a_federated_entry_matches_only_a_web_identity_of_that_provider() {
        const IDP: &str = "arn:aws:iam::111122223333:oidc-provider/idp.example.com";
        let web = PrincipalInfo {
            arn: IDP,
            account: "",
            federated: true,
        };
        let fed = spec(&format!(r#"{{"Federated": "{IDP}"}}"#), false).unwrap();
        assert!(fed.matches(&web));
        assert!(!fed.matches(&ALICE));
        let other = PrincipalInfo {
            arn: "arn:aws:iam::111122223333:oidc-provider/other.example.com",
            ..web
        };
        assert!(!fed.matches(&other));
        // No AWS entry names a web identity, not even "*" or its ARN.
        assert!(!spec(r#"{"AWS": "*"}"#, false).unwrap().matches(&web));
        assert!(
            !spec(&format!(r#"{{"AWS": "{IDP}"}}"#), false)
                .unwrap()
                .matches(&web)
        );
        assert!(spec(r#""*""#, false).unwrap().matches(&web));
    }

    #[test]
    fn forms_of_aws_principals() {
        assert!(spec(r#""*""#, false).unwrap().matches(&ALICE));
        assert!(spec(r#"{"AWS": "*"}"#, false).unwrap().matches(&ALICE));
        assert!(
            spec(r#"{"AWS": "111122223333"}"#, false)
                .unwrap()
                .matches(&ALICE)
        );
        assert!(
            spec(r#"{"AWS": "arn:aws:iam::111122223333:root"}"#, false)
                .unwrap()
                .matches(&ALICE)
        );
        assert!(
            spec(
                r#"{"AWS": ["arn:aws:iam::111122223333:user/alice"]}"#,
                false
            )
            .unwrap()
            .matches(&ALICE)
        );
        assert!(
            !spec(r#"{"AWS": "arn:aws:iam::111122223333:user/Alice"}"#, false)
                .unwrap()
                .matches(&ALICE)
        );
        assert!(
            !spec(r#"{"AWS": "444455556666"}"#, false)
                .unwrap()
                .matches(&ALICE)
        );
        assert!(
            !spec(r#"{"Service": "ec2.amazonaws.com"}"#, false)
                .unwrap()
                .matches(&ALICE)
        );
    }

    #[test]
    fn not_principal_inverts() {
        assert!(
            !spec(r#"{"AWS": "111122223333"}"#, true)
                .unwrap()
                .matches(&ALICE)
        );
        assert!(
            spec(r#"{"AWS": "444455556666"}"#, true)
                .unwrap()
                .matches(&ALICE)
        );
    }

    #[test]
    fn invalid_principals() {
        assert!(
            spec(r#""alice""#, false)
                .unwrap_err()
                .contains("invalid principal \"alice\"")
        );
        assert!(
            spec(r#"{"AWS": "arn:aws:iam::1:user/*"}"#, false)
                .unwrap_err()
                .contains("wildcards")
        );
        assert!(
            spec(r#"{"AWS": "bob"}"#, false)
                .unwrap_err()
                .contains("invalid principal \"bob\"")
        );
        assert!(
            spec(r#"{"Aws": "*"}"#, false)
                .unwrap_err()
                .contains("unknown principal type")
        );
        assert!(
            spec(r#"{"AWS": []}"#, false)
                .unwrap_err()
                .contains("must not be an empty list")
        );
        assert!(
            spec(r#"{}"#, true)
                .unwrap_err()
                .contains("NotPrincipal must not be an empty list")
        );
    }
}
