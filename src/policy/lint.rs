//! The lint: things a valid policy says that are probably not what its author meant.
//!
//! AWS accepts unknown condition keys, misspelt action names and type-mismatched operators
//! without complaint; IAM Access Analyzer reports them afterwards. This does the same for
//! s3warden, against the catalogue in `keys`: unknown or never-present keys, operators of the
//! wrong type for their key, set operators on single-valued keys (and missing ones on
//! multivalued keys), `ForAllValues` in an Allow (true when the key is missing), S3 actions that
//! do not exist, statements that can never apply, and `${...}` written in a policy whose
//! Version makes it literal text.

use std::fmt;

use serde::Serialize;

use super::condition::{Condition, Family, SetOp};
use super::document::{Effect, Policy, Statement, Version};
use super::keys::{KeyType, S3_ACTIONS, lookup};
use super::matching::{Glob, ResourcePattern};
use super::variables::Template;

/// What a lint is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LintKind {
    /// A condition key or variable that AWS does not define (probably misspelt).
    UnknownConditionKey,
    /// An AWS condition key that s3warden never puts in a request.
    UnavailableConditionKey,
    /// An operator of another type than its key (e.g. `NumericLessThan` on `s3:prefix`).
    OperatorTypeMismatch,
    /// `ForAllValues:`/`ForAnyValue:` on a single-valued key.
    SetOperatorOnSingleValuedKey,
    /// A multivalued key under an operator without `ForAllValues:`/`ForAnyValue:`.
    MissingSetOperator,
    /// `ForAllValues:` in an Allow: also true when the request lacks the key.
    ForAllValuesAllowsMissingKey,
    /// An Allow with NotAction or NotResource: grants everything not listed.
    BroadAllow,
    /// An `s3:` action pattern that matches no S3 action.
    UnknownAction,
    /// The statement can never apply to any request.
    NeverMatches,
    /// `${...}` in a policy without `"Version": "2012-10-17"`, where it is literal text.
    LiteralVariable,
    /// The policy has no statements.
    NoStatements,
}

/// One finding, about one statement (or the whole policy when `statement` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lint {
    /// Sid, or `#<index>`.
    pub statement: Option<String>,
    pub kind: LintKind,
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.statement {
            Some(statement) => write!(f, "statement {statement}: {}", self.message),
            None => write!(f, "policy: {}", self.message),
        }
    }
}

impl Policy {
    /// Findings about this policy, in statement order. An empty list means nothing to report.
    pub fn lint(&self) -> Vec<Lint> {
        let inner = self.inner();
        let mut out = Vec::new();
        if inner.statements.is_empty() {
            out.push(Lint {
                statement: None,
                kind: LintKind::NoStatements,
                message: "the policy has no statements and allows nothing".into(),
            });
        }
        for statement in &inner.statements {
            let mut lints = StatementLints {
                statement,
                out: &mut out,
            };
            if inner.version != Version::V2012 {
                lints.literal_variables();
            }
            lints.broad_allow();
            lints.actions();
            lints.services();
            lints.variables();
            lints.conditions();
        }
        out
    }
}

struct StatementLints<'a> {
    statement: &'a Statement,
    out: &'a mut Vec<Lint>,
}

impl StatementLints<'_> {
    fn push(&mut self, kind: LintKind, message: String) {
        self.out.push(Lint {
            statement: Some(self.statement.label.clone()),
            kind,
            message,
        });
    }

    fn resource_patterns(&self) -> &[ResourcePattern] {
        self.statement
            .resources
            .as_ref()
            .map_or(&[], |r| r.patterns.as_slice())
    }

    fn literal_variables(&mut self) {
        let s = self.statement;
        let texts = s
            .actions
            .patterns
            .iter()
            .map(|p| &*p.source)
            .chain(self.resource_patterns().iter().map(ResourcePattern::source))
            .chain(s.conditions.iter().flat_map(|c| {
                c.templates()
                    .into_iter()
                    .map(Template::source)
                    .collect::<Vec<_>>()
            }));
        let found: Vec<String> = texts
            .filter(|t| t.contains("${"))
            .map(str::to_owned)
            .collect();
        for text in found {
            self.push(
                LintKind::LiteralVariable,
                format!(
                    "\"{text}\" contains \"${{\", but policy variables need \"Version\": \"2012-10-17\"; here it is literal text"
                ),
            );
        }
    }

    fn broad_allow(&mut self) {
        let s = self.statement;
        if s.effect != Effect::Allow {
            return;
        }
        if s.actions.negated {
            self.push(
                LintKind::BroadAllow,
                "Allow with NotAction allows every action of every service except those listed"
                    .into(),
            );
        }
        if s.resources.as_ref().is_some_and(|r| r.negated) {
            self.push(
                LintKind::BroadAllow,
                "Allow with NotResource allows every resource except those listed".into(),
            );
        }
    }

    /// `s3:` patterns that match no S3 action; a statement whose Action holds nothing else
    /// never applies.
    fn actions(&mut self) {
        let s = self.statement;
        let mut unknown = 0;
        for pattern in &s.actions.patterns {
            let Some(name) = pattern
                .source
                .split_once(':')
                .filter(|(vendor, _)| vendor.eq_ignore_ascii_case("s3"))
                .map(|(_, name)| name)
            else {
                continue;
            };
            let glob = Glob::new(&name.to_ascii_lowercase());
            if !S3_ACTIONS
                .iter()
                .any(|a| glob.matches(&a.to_ascii_lowercase()))
            {
                unknown += 1;
                self.push(
                    LintKind::UnknownAction,
                    format!("action \"{}\" matches no S3 action", pattern.source),
                );
            }
        }
        if !s.actions.negated && unknown == s.actions.patterns.len() {
            self.push(
                LintKind::NeverMatches,
                "no action listed in Action exists, so the statement never applies".into(),
            );
        }
    }

    /// Actions of one service never apply to resources of another.
    fn services(&mut self) {
        let s = self.statement;
        let Some(resources) = s.resources.as_ref().filter(|r| !r.negated) else {
            return;
        };
        if s.actions.negated {
            return;
        }
        let mut vendors = Vec::new();
        for pattern in &s.actions.patterns {
            match pattern.source.split_once(':') {
                Some((vendor, _)) => vendors.push(vendor.to_ascii_lowercase()),
                None => return, // "*"
            }
        }
        let mut services = Vec::new();
        for pattern in &resources.patterns {
            let ResourcePattern::Arn(arn) = pattern else {
                return;
            };
            match arn.parts[2].as_static().and_then(Glob::literal) {
                Some(service) => services.push(service.to_owned()),
                None => return,
            }
        }
        let compatible = |vendor: &str, service: &str| {
            vendor == service
                || (vendor == "sts" && service == "iam")
                || (vendor == "s3" && service.starts_with("s3"))
        };
        if !vendors
            .iter()
            .any(|v| services.iter().any(|s| compatible(v, s)))
        {
            vendors.dedup();
            services.dedup();
            self.push(
                LintKind::NeverMatches,
                format!(
                    "actions of {} never apply to resources of {}, so the statement never applies",
                    vendors.join(", "),
                    services.join(", ")
                ),
            );
        }
    }

    /// Variables that refer to unknown keys, multivalued keys or keys never present.
    fn variables(&mut self) {
        let s = self.statement;
        let mut found = Vec::new();
        for pattern in self.resource_patterns() {
            if let ResourcePattern::Arn(arn) = pattern {
                for part in arn.parts.iter() {
                    found.extend(
                        part.variables()
                            .map(|v| (v.key.clone(), v.default.is_some())),
                    );
                }
            }
        }
        for condition in &s.conditions {
            for template in condition.templates() {
                found.extend(
                    template
                        .variables()
                        .map(|v| (v.key.clone(), v.default.is_some())),
                );
            }
        }
        for (key, has_default) in found {
            match lookup(&key) {
                None => self.push(
                    LintKind::UnknownConditionKey,
                    format!("policy variable ${{{key}}} refers to an unknown condition key"),
                ),
                Some(info) if info.multi && !has_default => self.push(
                    LintKind::NeverMatches,
                    format!(
                        "policy variable ${{{key}}} names a multivalued key, which never resolves; what contains it matches nothing"
                    ),
                ),
                Some(info) if !info.filled && !has_default => self.push(
                    LintKind::UnavailableConditionKey,
                    format!(
                        "policy variable ${{{key}}} is never present in s3warden requests; what contains it matches nothing"
                    ),
                ),
                Some(_) => {}
            }
        }
    }

    fn conditions(&mut self) {
        let s = self.statement;
        for condition in &s.conditions {
            self.condition_key(condition);
        }
        self.contradictory_null();
    }

    fn condition_key(&mut self, c: &Condition) {
        let op = &c.operator;
        let key = &c.key;
        if op.set == Some(SetOp::ForAllValues) && self.statement.effect == Effect::Allow {
            let guarded = self.statement.conditions.iter().any(|other| {
                other.key_lower == c.key_lower && other.null_values() == Some(&[false])
            });
            if !guarded {
                self.push(
                    LintKind::ForAllValuesAllowsMissingKey,
                    format!(
                        "{} on \"{key}\" is also true when the request has no \"{key}\"; add \"Null\": {{\"{key}\": \"false\"}} to require it",
                        op.name
                    ),
                );
            }
        }
        let Some(info) = lookup(&c.key_lower) else {
            self.push(
                LintKind::UnknownConditionKey,
                format!("unknown condition key \"{key}\""),
            );
            return;
        };
        if !info.filled {
            self.push(
                LintKind::UnavailableConditionKey,
                format!(
                    "condition key \"{key}\" is never present in s3warden requests; {} always sees it as missing",
                    op.name
                ),
            );
        }
        if !type_fits(op.family, info.ty) {
            self.push(
                LintKind::OperatorTypeMismatch,
                format!(
                    "{} compares {} values, but \"{key}\" is of type {}",
                    op.name,
                    family_name(op.family),
                    type_name(info.ty)
                ),
            );
        }
        if op.family != Family::Null {
            if op.set.is_some() && !info.multi {
                self.push(
                    LintKind::SetOperatorOnSingleValuedKey,
                    format!(
                        "{} on single-valued key \"{key}\": set operators are for multivalued keys and can make a policy more permissive than meant",
                        op.name
                    ),
                );
            }
            if op.set.is_none() && info.multi {
                self.push(
                    LintKind::MissingSetOperator,
                    format!(
                        "\"{key}\" is multivalued: use ForAllValues: or ForAnyValue: with {}; without one, a request with several values is undecidable and fails closed",
                        op.name
                    ),
                );
            }
        }
    }

    /// `Null: true` on a key that another condition requires to be present.
    fn contradictory_null(&mut self) {
        let s = self.statement;
        for null in s
            .conditions
            .iter()
            .filter(|c| c.null_values() == Some(&[true]))
        {
            let needs_key = s.conditions.iter().find(|c| {
                c.key_lower == null.key_lower
                    && c.operator.family != Family::Null
                    && !c.operator.negated
                    && !c.operator.if_exists
                    && c.operator.set != Some(SetOp::ForAllValues)
            });
            if let Some(other) = needs_key {
                let message = format!(
                    "Null requires \"{}\" to be absent but {} requires it to be present, so the statement never applies",
                    null.key, other.operator.name
                );
                self.push(LintKind::NeverMatches, message);
            }
        }
    }
}

fn type_fits(family: Family, ty: KeyType) -> bool {
    match family {
        Family::Null => true,
        Family::String => matches!(ty, KeyType::String | KeyType::Arn),
        Family::Numeric => matches!(ty, KeyType::Numeric | KeyType::DateOrNumeric),
        Family::Date => matches!(ty, KeyType::Date | KeyType::DateOrNumeric),
        Family::Bool => ty == KeyType::Bool,
        Family::Ip => ty == KeyType::Ip,
        Family::Arn => ty == KeyType::Arn,
        Family::Binary => false,
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::String => "string",
        Family::Numeric => "numeric",
        Family::Date => "date",
        Family::Bool => "boolean",
        Family::Binary => "binary",
        Family::Ip => "ip address",
        Family::Arn => "arn",
        Family::Null => "null",
    }
}

fn type_name(ty: KeyType) -> &'static str {
    match ty {
        KeyType::String => "String",
        KeyType::Numeric => "Numeric",
        KeyType::Date => "Date",
        KeyType::DateOrNumeric => "Date or Numeric",
        KeyType::Bool => "Bool",
        KeyType::Ip => "IpAddress",
        KeyType::Arn => "ARN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyKind;

    fn lints(doc: &str) -> Vec<(LintKind, String)> {
        Policy::parse(doc, PolicyKind::Identity)
            .unwrap()
            .lint()
            .into_iter()
            .map(|l| (l.kind, l.to_string()))
            .collect()
    }

    fn stmt(body: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": [{body}]}}"#)
    }

    #[test]
    fn clean_policy_has_no_lints() {
        let doc = stmt(
            r#"{"Sid": "Own", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::b/${aws:username}/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"},
                              "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}"#,
        );
        assert_eq!(lints(&doc), []);
    }

    #[test]
    fn reports_keys_types_and_set_operators() {
        let doc = stmt(
            r#"{"Sid": "S", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"NumericLessThan": {"s3:prefix": "5"},
                              "StringEquals": {"aws:SorceIp": "1.2.3.4", "aws:TagKeys": "a", "aws:SourceVpc": "v"},
                              "ForAnyValue:StringEquals": {"aws:username": "x"}}}"#,
        );
        let found = lints(&doc);
        let kinds: Vec<LintKind> = found.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                LintKind::OperatorTypeMismatch,
                LintKind::UnknownConditionKey,
                LintKind::MissingSetOperator,
                LintKind::UnavailableConditionKey,
                LintKind::SetOperatorOnSingleValuedKey,
            ],
            "{found:?}"
        );
        assert_eq!(
            found[1].1,
            "statement S: unknown condition key \"aws:SorceIp\""
        );
    }

    #[test]
    fn reports_for_all_values_in_allow_unless_guarded() {
        let unguarded = stmt(
            r#"{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a"]}}}"#,
        );
        assert_eq!(
            lints(&unguarded)[0].0,
            LintKind::ForAllValuesAllowsMissingKey
        );
        let guarded = stmt(
            r#"{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a"]},
                              "Null": {"s3:RequestObjectTagKeys": "false"}}}"#,
        );
        assert_eq!(lints(&guarded), []);
    }

    #[test]
    fn reports_statements_that_never_apply() {
        let typo = stmt(r#"{"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "*"}"#);
        let kinds: Vec<LintKind> = lints(&typo).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [LintKind::UnknownAction, LintKind::NeverMatches]);
        let services = stmt(
            r#"{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:iam::1:user/x"}"#,
        );
        assert!(
            lints(&services)[0]
                .1
                .contains("actions of s3 never apply to resources of iam")
        );
        let sts = stmt(
            r#"{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::1:role/x"}"#,
        );
        assert_eq!(lints(&sts), []);
        let null = stmt(
            r#"{"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                "Condition": {"Null": {"aws:username": "true"}, "StringLike": {"aws:username": "a*"}}}"#,
        );
        assert_eq!(lints(&null)[0].0, LintKind::NeverMatches);
        let multi_var = stmt(
            r#"{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:TagKeys}"}"#,
        );
        assert_eq!(lints(&multi_var)[0].0, LintKind::NeverMatches);
    }

    #[test]
    fn reports_literal_variables_and_broad_allows() {
        let doc = r#"{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b/${aws:username}/*"}]}"#;
        let kinds: Vec<LintKind> = lints(doc).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [LintKind::LiteralVariable, LintKind::BroadAllow]);
        let empty = r#"{"Version": "2012-10-17", "Statement": []}"#;
        assert_eq!(
            lints(empty),
            [(
                LintKind::NoStatements,
                "policy: the policy has no statements and allows nothing".to_string()
            )]
        );
    }

    #[test]
    fn reports_unknown_variables() {
        let doc = stmt(
            r#"{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:usename}/*"}"#,
        );
        assert_eq!(
            lints(&doc),
            [(
                LintKind::UnknownConditionKey,
                "statement #0: policy variable ${aws:usename} refers to an unknown condition key"
                    .to_string()
            )]
        );
    }
}
