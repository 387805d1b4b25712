//! The Condition block: operators, their values, and their evaluation against a request.
//!
//! Follows the IAM User Guide (Condition, condition operators, multivalued context keys):
//! operators in a block AND, keys under one operator AND, values of one key OR — and for a
//! negated operator the request value must match none of them. A key missing from the request
//! makes a condition false, except for negated operators (true), `...IfExists` (true) and `Null`.
//! `ForAllValues:` is true when every request value matches (vacuously true for a missing or
//! empty key); `ForAnyValue:` when at least one does (false for a missing or empty key).
//!
//! Where the request value cannot be read as the operator's type (a non-IP `aws:SourceIp`, a
//! multivalued key under an operator without a set prefix — undocumented by AWS), the condition
//! is neither true nor false: [`Truth::Unknown`], which an Allow statement treats as "does not
//! apply" and a Deny statement as "applies" (fail closed).

use std::cmp::Ordering;

use super::context::{Context, ContextValue, lowercase_key};
use super::error::{PolicyError, ValueKind};
use super::json::{RawConditionBlock, RawValue};
use super::matching::{ArnPattern, split_arn, split_arn_parts};
use super::values::{Cidr, Decimal, Timestamp, parse_base64, parse_bool, parse_ip};
use super::variables::{Syntax, Template};

/// Three-valued (Kleene) truth of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    pub fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    fn or(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }
}

impl From<bool> for Truth {
    fn from(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }
}

/// The type of value an operator compares (used by the lint too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetOp {
    ForAllValues,
    ForAnyValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// `request <op> policy`, given `request.cmp(policy)`.
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Le => ord != Ordering::Greater,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Ge => ord != Ordering::Less,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StringMode {
    Equals,
    EqualsIgnoreCase,
    Like,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    String(StringMode),
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// Base operator names (without set prefix or IfExists), what they test, and whether negated.
const OPERATORS: &[(&str, Test, bool)] = &[
    ("StringEquals", Test::String(StringMode::Equals), false),
    ("StringNotEquals", Test::String(StringMode::Equals), true),
    (
        "StringEqualsIgnoreCase",
        Test::String(StringMode::EqualsIgnoreCase),
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Test::String(StringMode::EqualsIgnoreCase),
        true,
    ),
    ("StringLike", Test::String(StringMode::Like), false),
    ("StringNotLike", Test::String(StringMode::Like), true),
    ("NumericEquals", Test::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Test::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Test::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Test::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Test::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Test::Numeric(Cmp::Ge), false),
    ("DateEquals", Test::Date(Cmp::Eq), false),
    ("DateNotEquals", Test::Date(Cmp::Eq), true),
    ("DateLessThan", Test::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Test::Date(Cmp::Le), false),
    ("DateGreaterThan", Test::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Test::Date(Cmp::Ge), false),
    ("Bool", Test::Bool, false),
    ("BinaryEquals", Test::Binary, false),
    ("IpAddress", Test::Ip, false),
    ("NotIpAddress", Test::Ip, true),
    // ArnEquals and ArnLike behave the same: wildcards per component.
    ("ArnEquals", Test::Arn, false),
    ("ArnLike", Test::Arn, false),
    ("ArnNotEquals", Test::Arn, true),
    ("ArnNotLike", Test::Arn, true),
    ("Null", Test::Null, false),
];

/// A parsed operator name such as `ForAnyValue:StringLikeIfExists`.
#[derive(Clone, Debug)]
pub(crate) struct Operator {
    pub name: Box<str>,
    pub family: Family,
    pub negated: bool,
    pub if_exists: bool,
    pub set: Option<SetOp>,
    test: Test,
}

impl Operator {
    /// Operator names are matched exactly as AWS spells them (case of operator names is not
    /// documented as insensitive). `Null` takes neither a set prefix nor `IfExists`.
    pub fn parse(name: &str) -> Option<Operator> {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetOp::ForAllValues), rest)
        } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetOp::ForAnyValue), rest)
        } else {
            (None, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) => (true, base),
            None => (false, rest),
        };
        let &(_, test, negated) = OPERATORS.iter().find(|(n, _, _)| *n == base)?;
        if test == Test::Null && (if_exists || set.is_some()) {
            return None;
        }
        let family = match test {
            Test::String(_) => Family::String,
            Test::Numeric(_) => Family::Numeric,
            Test::Date(_) => Family::Date,
            Test::Bool => Family::Bool,
            Test::Binary => Family::Binary,
            Test::Ip => Family::Ip,
            Test::Arn => Family::Arn,
            Test::Null => Family::Null,
        };
        Some(Operator {
            name: name.into(),
            family,
            negated,
            if_exists,
            set,
            test,
        })
    }
}

/// A `Bool` value: fixed, or a policy variable resolved per request.
#[derive(Clone, Debug)]
enum BoolValue {
    Fixed(bool),
    Variable(Template),
}

#[derive(Clone, Debug)]
enum ArnValue {
    Any,
    Pattern(ArnPattern),
}

/// The compiled values of one key under one operator.
#[derive(Clone, Debug)]
enum Values {
    Strings(StringMode, Vec<Template>),
    /// Validated decimal texts (parsing a `Decimal` borrows, so it is redone per comparison;
    /// it does not allocate).
    Numbers(Cmp, Vec<Box<str>>),
    Dates(Cmp, Vec<Timestamp>),
    Bools(Vec<BoolValue>),
    Binary(Vec<Vec<u8>>),
    Cidrs(Vec<Cidr>),
    Arns(Vec<ArnValue>),
    Null(Vec<bool>),
}

/// One `operator: {key: values}` entry.
#[derive(Clone, Debug)]
pub(crate) struct Condition {
    pub operator: Operator,
    /// As written in the policy.
    pub key: Box<str>,
    /// Lowercased, for context lookups.
    pub key_lower: Box<str>,
    values: Values,
}

/// Compiles a Condition block; `statement` names the statement in errors.
pub(crate) fn compile_block(
    statement: &str,
    block: RawConditionBlock,
    variables: bool,
) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (op_name, keys) in block.0 {
        let operator = Operator::parse(&op_name).ok_or_else(|| PolicyError::UnknownOperator {
            statement: statement.to_owned(),
            operator: op_name.clone(),
        })?;
        for (key, raw_values) in keys.0 {
            let mut texts = Vec::with_capacity(raw_values.0.len());
            for raw in raw_values.0 {
                match raw {
                    RawValue::Text(t) => texts.push(t),
                    RawValue::Invalid(found) => {
                        return Err(PolicyError::WrongValueType {
                            statement: statement.to_owned(),
                            operator: op_name.clone(),
                            key,
                            found,
                        });
                    }
                }
            }
            if texts.is_empty() {
                return Err(PolicyError::EmptyConditionValues {
                    statement: statement.to_owned(),
                    operator: op_name.clone(),
                    key,
                });
            }
            let at = Site {
                statement,
                operator: &op_name,
                key: &key,
            };
            let values = compile_values(operator.test, &texts, variables, &at)?;
            out.push(Condition {
                key_lower: lowercase_key(&key).into(),
                key: key.into(),
                operator: operator.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// Where a value sits, for error messages.
struct Site<'a> {
    statement: &'a str,
    operator: &'a str,
    key: &'a str,
}

impl Site<'_> {
    fn invalid(&self, value: &str, expected: ValueKind) -> PolicyError {
        PolicyError::InvalidConditionValue {
            statement: self.statement.to_owned(),
            operator: self.operator.to_owned(),
            key: self.key.to_owned(),
            value: value.to_owned(),
            expected,
        }
    }

    fn template(&self, text: &str, syntax: Syntax) -> Result<Template, PolicyError> {
        Template::parse(text, syntax).map_err(|reason| PolicyError::InvalidVariable {
            statement: self.statement.to_owned(),
            text: text.to_owned(),
            reason,
        })
    }
}

fn compile_values(
    test: Test,
    texts: &[String],
    variables: bool,
    at: &Site<'_>,
) -> Result<Values, PolicyError> {
    Ok(match test {
        Test::String(mode) => {
            let syntax = Syntax {
                variables,
                wildcards: mode == StringMode::Like,
            };
            Values::Strings(mode, each(texts, |t| at.template(t, syntax))?)
        }
        Test::Numeric(cmp) => Values::Numbers(
            cmp,
            typed(texts, at, ValueKind::Number, |t| {
                Decimal::parse(t).map(|_| Box::from(t))
            })?,
        ),
        Test::Date(cmp) => Values::Dates(cmp, typed(texts, at, ValueKind::Date, Timestamp::parse)?),
        Test::Bool => Values::Bools(each(texts, |t| compile_bool(t, variables, at))?),
        Test::Binary => Values::Binary(typed(texts, at, ValueKind::Base64, parse_base64)?),
        Test::Ip => Values::Cidrs(typed(texts, at, ValueKind::Cidr, Cidr::parse)?),
        Test::Arn => Values::Arns(each(texts, |t| compile_arn(t, variables, at))?),
        Test::Null => Values::Null(typed(texts, at, ValueKind::Boolean, parse_bool)?),
    })
}

fn each<T>(
    texts: &[String],
    compile: impl Fn(&str) -> Result<T, PolicyError>,
) -> Result<Vec<T>, PolicyError> {
    texts.iter().map(|t| compile(t)).collect()
}

/// Parses every value as `kind`, naming the first that is not.
fn typed<T>(
    texts: &[String],
    at: &Site<'_>,
    kind: ValueKind,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, PolicyError> {
    each(texts, |t| parse(t).ok_or_else(|| at.invalid(t, kind)))
}

/// `true`/`false`, or (Version 2012-10-17) a text with a policy variable: the operator page
/// allows variables with Bool while the variables page does not; supporting them accepts more
/// policies without changing the meaning of any other.
fn compile_bool(text: &str, variables: bool, at: &Site<'_>) -> Result<BoolValue, PolicyError> {
    if let Some(b) = parse_bool(text) {
        return Ok(BoolValue::Fixed(b));
    }
    if variables {
        let syntax = Syntax {
            variables: true,
            wildcards: false,
        };
        let template = at.template(text, syntax)?;
        if template.has_variables() {
            return Ok(BoolValue::Variable(template));
        }
    }
    Err(at.invalid(text, ValueKind::Boolean))
}

/// `*`, or an ARN of six colon-separated components, each of which may hold wildcards (and
/// variables, in a 2012-10-17 policy).
fn compile_arn(text: &str, variables: bool, at: &Site<'_>) -> Result<ArnValue, PolicyError> {
    if text == "*" {
        return Ok(ArnValue::Any);
    }
    let parts = split_arn_parts(text, variables).ok_or_else(|| at.invalid(text, ValueKind::Arn))?;
    let syntax = Syntax {
        variables,
        wildcards: true,
    };
    let [a, b, c, d, e, f] = parts.map(|p| at.template(p, syntax));
    Ok(ArnValue::Pattern(ArnPattern {
        source: text.into(),
        parts: Box::new([a?, b?, c?, d?, e?, f?]),
    }))
}

impl Condition {
    /// Every template among the values (for the lint's variable checks, and
    /// the keys a policy reads: a request's context holds only those, so a
    /// new kind of value with templates must be listed here).
    pub fn templates(&self) -> Vec<&Template> {
        match &self.values {
            Values::Strings(_, ts) => ts.iter().collect(),
            Values::Bools(bs) => bs
                .iter()
                .filter_map(|b| match b {
                    BoolValue::Variable(t) => Some(t),
                    BoolValue::Fixed(_) => None,
                })
                .collect(),
            Values::Arns(arns) => arns
                .iter()
                .flat_map(|a| match a {
                    ArnValue::Pattern(p) => p.parts.iter().collect(),
                    ArnValue::Any => Vec::new(),
                })
                .collect(),
            Values::Numbers(..)
            | Values::Dates(..)
            | Values::Binary(_)
            | Values::Cidrs(_)
            | Values::Null(_) => Vec::new(),
        }
    }

    /// For `Null`: the values (true = must be absent).
    pub fn null_values(&self) -> Option<&[bool]> {
        match &self.values {
            Values::Null(v) => Some(v),
            _ => None,
        }
    }

    pub fn evaluate(&self, ctx: &Context) -> Truth {
        super::trace::note(&self.key_lower);
        let value = ctx.get_lower(&self.key_lower);
        if let Values::Null(expected) = &self.values {
            let is_null = value.is_none_or(ContextValue::is_null);
            return Truth::from(expected.contains(&is_null));
        }
        let op = &self.operator;
        match op.set {
            None => {
                let single = match value {
                    None => None,
                    Some(ContextValue::Single(v)) => Some(v.as_ref()),
                    Some(ContextValue::Multi(values)) => match values.as_slice() {
                        [] => None,
                        [v] => Some(v.as_str()),
                        // A multivalued key under a single-value operator: AWS does not say.
                        _ => return Truth::Unknown,
                    },
                };
                match single {
                    None => Truth::from(op.if_exists || op.negated),
                    Some(v) => self.test(v, ctx),
                }
            }
            Some(SetOp::ForAllValues) => {
                let mut acc = Truth::True;
                for v in set_values(value) {
                    acc = acc.and(self.test(v, ctx));
                    if acc == Truth::False {
                        break;
                    }
                }
                acc
            }
            Some(SetOp::ForAnyValue) => {
                if value.is_none() && op.if_exists {
                    return Truth::True;
                }
                let mut acc = Truth::False;
                for v in set_values(value) {
                    acc = acc.or(self.test(v, ctx));
                    if acc == Truth::True {
                        break;
                    }
                }
                acc
            }
        }
    }

    /// One request value against the operator: any policy value matches (negated: none does).
    fn test(&self, v: &str, ctx: &Context) -> Truth {
        match self.any_matches(v, ctx) {
            Some(matched) => Truth::from(matched != self.operator.negated),
            None => Truth::Unknown,
        }
    }

    /// `None` when the request value cannot be read as the operator's type.
    fn any_matches(&self, v: &str, ctx: &Context) -> Option<bool> {
        Some(match &self.values {
            Values::Strings(StringMode::EqualsIgnoreCase, ts) => {
                ts.iter().any(|t| t.eq_ignore_case(v, ctx))
            }
            Values::Strings(_, ts) => ts.iter().any(|t| t.matches(v, ctx)),
            Values::Numbers(cmp, ns) => {
                let x = Decimal::parse(v)?;
                ns.iter()
                    .filter_map(|n| Decimal::parse(n))
                    .any(|n| cmp.holds(x.cmp(&n)))
            }
            Values::Dates(cmp, ds) => {
                let x = Timestamp::parse(v)?;
                ds.iter().any(|d| cmp.holds(x.cmp(d)))
            }
            Values::Bools(bs) => {
                let x = parse_bool(v)?;
                bs.iter().any(|b| match b {
                    BoolValue::Fixed(b) => *b == x,
                    BoolValue::Variable(t) => {
                        t.resolved_text(ctx).and_then(|t| parse_bool(&t)) == Some(x)
                    }
                })
            }
            Values::Binary(bs) => {
                let x = parse_base64(v)?;
                bs.contains(&x)
            }
            Values::Cidrs(cs) => {
                let ip = parse_ip(v)?;
                cs.iter().any(|c| c.contains(ip))
            }
            Values::Arns(arns) => {
                let parts = split_arn(v)?;
                arns.iter().any(|a| match a {
                    ArnValue::Any => true,
                    ArnValue::Pattern(p) => p.matches(&parts, ctx),
                })
            }
            Values::Null(_) => false,
        })
    }
}

/// The request values a set operator ranges over: none for a missing or null key.
fn set_values(value: Option<&ContextValue>) -> impl Iterator<Item = &str> {
    value
        .filter(|v| !v.is_null())
        .into_iter()
        .flat_map(ContextValue::values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        let block = format!(
            r#"{{"{op}": {{"{key}": {}}}}}"#,
            serde_json::to_string(values).unwrap()
        );
        let raw: RawConditionBlock = serde_json::from_str(&block).unwrap();
        compile_block("#0", raw, true).unwrap().remove(0)
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn operator_names() {
        let op = Operator::parse("ForAnyValue:StringNotLikeIfExists").unwrap();
        assert_eq!(op.set, Some(SetOp::ForAnyValue));
        assert!(op.negated && op.if_exists);
        assert_eq!(op.family, Family::String);
        assert!(Operator::parse("stringequals").is_none());
        assert!(Operator::parse("NullIfExists").is_none());
        assert!(Operator::parse("ForAllValues:Null").is_none());
        assert!(Operator::parse("StringEqualsIfExistsIfExists").is_none());
        assert!(Operator::parse("ForAllValues:ForAnyValue:StringEquals").is_none());
        assert!(Operator::parse("IfExists").is_none());
        for (name, _, _) in OPERATORS {
            assert!(Operator::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn missing_key_rule() {
        let empty = Context::new();
        assert_eq!(
            cond("StringEquals", "k", &["a"]).evaluate(&empty),
            Truth::False
        );
        assert_eq!(
            cond("StringNotEquals", "k", &["a"]).evaluate(&empty),
            Truth::True
        );
        assert_eq!(
            cond("StringEqualsIfExists", "k", &["a"]).evaluate(&empty),
            Truth::True
        );
        assert_eq!(
            cond("NotIpAddress", "k", &["10.0.0.0/8"]).evaluate(&empty),
            Truth::True
        );
        assert_eq!(
            cond("ForAllValues:StringEquals", "k", &["a"]).evaluate(&empty),
            Truth::True
        );
        assert_eq!(
            cond("ForAnyValue:StringEquals", "k", &["a"]).evaluate(&empty),
            Truth::False
        );
        assert_eq!(
            cond("ForAnyValue:StringEqualsIfExists", "k", &["a"]).evaluate(&empty),
            Truth::True
        );
        assert_eq!(cond("Null", "k", &["true"]).evaluate(&empty), Truth::True);
        assert_eq!(cond("Null", "k", &["false"]).evaluate(&empty), Truth::False);
    }

    #[test]
    fn uninterpretable_request_values_are_unknown() {
        let c = ctx(&[("aws:sourceip", "not-an-ip"), ("n", "ten"), ("b", "yes")]);
        assert_eq!(
            cond("IpAddress", "aws:SourceIp", &["10.0.0.0/8"]).evaluate(&c),
            Truth::Unknown
        );
        assert_eq!(
            cond("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"]).evaluate(&c),
            Truth::Unknown
        );
        assert_eq!(
            cond("NumericLessThan", "n", &["5"]).evaluate(&c),
            Truth::Unknown
        );
        assert_eq!(cond("Bool", "b", &["true"]).evaluate(&c), Truth::Unknown);
        let mut multi = Context::new();
        multi.set_multi("k", vec!["a".into(), "b".into()]);
        assert_eq!(
            cond("StringEquals", "k", &["a"]).evaluate(&multi),
            Truth::Unknown
        );
        multi.set_multi("k", vec!["a".into()]);
        assert_eq!(
            cond("StringEquals", "k", &["a"]).evaluate(&multi),
            Truth::True
        );
    }

    #[test]
    fn kleene_logic() {
        use Truth::*;
        assert_eq!(False.and(Unknown), False);
        assert_eq!(True.and(Unknown), Unknown);
        assert_eq!(True.and(True), True);
        assert_eq!(True.or(Unknown), True);
        assert_eq!(False.or(Unknown), Unknown);
        assert_eq!(False.or(False), False);
    }

    #[test]
    fn numeric_and_date_comparisons_are_request_versus_policy() {
        let c = ctx(&[("n", "10"), ("t", "2020-06-01T00:00:00Z")]);
        assert_eq!(
            cond("NumericLessThan", "n", &["11"]).evaluate(&c),
            Truth::True
        );
        assert_eq!(
            cond("NumericLessThan", "n", &["10"]).evaluate(&c),
            Truth::False
        );
        assert_eq!(
            cond("NumericLessThanEquals", "n", &["10"]).evaluate(&c),
            Truth::True
        );
        assert_eq!(
            cond("NumericGreaterThan", "n", &["9.99"]).evaluate(&c),
            Truth::True
        );
        assert_eq!(
            cond("NumericGreaterThanEquals", "n", &["10.0"]).evaluate(&c),
            Truth::True
        );
        assert_eq!(
            cond("NumericNotEquals", "n", &["10", "11"]).evaluate(&c),
            Truth::False
        );
        assert_eq!(
            cond("DateGreaterThan", "t", &["2020-01-01"]).evaluate(&c),
            Truth::True
        );
        assert_eq!(
            cond("DateLessThan", "t", &["1577836800"]).evaluate(&c),
            Truth::False
        );
        assert_eq!(
            cond("DateEquals", "t", &["2020-06-01"]).evaluate(&c),
            Truth::True
        );
    }

    #[test]
    fn bool_with_a_variable() {
        let c = cond(
            "Bool",
            "aws:SecureTransport",
            &["${aws:MultiFactorAuthPresent}"],
        );
        let both = ctx(&[
            ("aws:securetransport", "true"),
            ("aws:multifactorauthpresent", "true"),
        ]);
        assert_eq!(c.evaluate(&both), Truth::True);
        let only = ctx(&[("aws:securetransport", "true")]);
        assert_eq!(c.evaluate(&only), Truth::False);
    }

    #[test]
    fn values_are_validated() {
        let bad = |op: &str, v: &str| {
            let block = format!(r#"{{"{op}": {{"k": "{v}"}}}}"#);
            let raw: RawConditionBlock = serde_json::from_str(&block).unwrap();
            compile_block("#0", raw, true).unwrap_err().to_string()
        };
        assert!(bad("NumericEquals", "x").contains("invalid number \"x\""));
        assert!(bad("DateEquals", "soon").contains("invalid date \"soon\""));
        assert!(
            bad("IpAddress", "10.0.0.0/40").contains("invalid ip address or cidr \"10.0.0.0/40\"")
        );
        assert!(bad("Bool", "yes").contains("invalid boolean"));
        assert!(bad("Null", "maybe").contains("invalid boolean"));
        assert!(bad("BinaryEquals", "%%%").contains("invalid base64 value"));
        assert!(bad("ArnLike", "arn:aws:s3").contains("invalid arn \"arn:aws:s3\""));
        assert!(bad("StringLike", "${oops").contains("invalid policy variable"));
        assert!(bad("StringEquall", "x").contains("unknown condition operator \"StringEquall\""));
    }
}
