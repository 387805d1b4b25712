//! Serde models of a raw policy document, before validation.
//!
//! Follows the IAM policy grammar: element names are case-sensitive and unknown elements are
//! refused; a key may not repeat inside one object (serde's derive refuses repeated struct
//! fields, [`UniqueMap`] refuses repeated map keys); elements that AWS accepts as one value or
//! an array ([`OneOrMany`]) accept both; condition values may be strings, numbers or booleans
//! ("quotation marks are optional for numeric and Boolean values"). Anything else about the
//! values is checked later, in `document`, where the error can name the statement.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// The whole document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a policy object")]
pub(crate) struct RawPolicy {
    #[serde(rename = "Version", default)]
    pub version: Option<String>,
    #[serde(rename = "Id", default)]
    pub id: Option<String>,
    #[serde(rename = "Statement")]
    pub statement: OneOrMany<RawStatement>,
}

/// The operator → key → values nesting of a `Condition` block, in document order.
pub(crate) type RawConditionBlock = UniqueMap<UniqueMap<OneOrMany<RawValue>>>;

/// One statement. `Effect` is optional here only so that its absence gets our own message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a statement object")]
pub(crate) struct RawStatement {
    #[serde(rename = "Sid", default)]
    pub sid: Option<String>,
    #[serde(rename = "Effect", default)]
    pub effect: Option<String>,
    #[serde(rename = "Principal", default)]
    pub principal: Option<RawPrincipal>,
    #[serde(rename = "NotPrincipal", default)]
    pub not_principal: Option<RawPrincipal>,
    #[serde(rename = "Action", default)]
    pub action: Option<OneOrMany<String>>,
    #[serde(rename = "NotAction", default)]
    pub not_action: Option<OneOrMany<String>>,
    #[serde(rename = "Resource", default)]
    pub resource: Option<OneOrMany<String>>,
    #[serde(rename = "NotResource", default)]
    pub not_resource: Option<OneOrMany<String>>,
    #[serde(rename = "Condition", default)]
    pub condition: Option<RawConditionBlock>,
}

/// `"Principal": "*"` or `"Principal": {"AWS": ..., "Service": ...}`.
#[derive(Debug)]
pub(crate) enum RawPrincipal {
    Text(String),
    Map(UniqueMap<OneOrMany<String>>),
}

/// One condition value as written. Values of the wrong JSON type are kept (as the name of
/// their type) so that validation can report them against their statement, operator and key.
#[derive(Debug)]
pub(crate) enum RawValue {
    Text(String),
    Invalid(&'static str),
}

/// A value, or an array of values.
#[derive(Debug)]
pub(crate) struct OneOrMany<T>(pub Vec<T>);

/// A JSON object kept in document order, refusing repeated keys.
#[derive(Debug)]
pub(crate) struct UniqueMap<V>(pub Vec<(String, V)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

struct OneOrManyVisitor<T>(PhantomData<T>);

impl<T> OneOrManyVisitor<T> {
    fn one<'de, E: de::Error, D: Deserializer<'de, Error = E>>(d: D) -> Result<OneOrMany<T>, E>
    where
        T: Deserialize<'de>,
    {
        T::deserialize(d).map(|t| OneOrMany(vec![t]))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
    type Value = OneOrMany<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or an array of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OneOrMany(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Self::one(MapAccessDeserializer::new(map))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Self::one(().into_deserializer())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueMapVisitor(PhantomData))
    }
}

struct UniqueMapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMapVisitor<V> {
    type Value = UniqueMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key \"{key}\"")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(UniqueMap(entries))
    }
}

impl<'de> Deserialize<'de> for RawPrincipal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PrincipalVisitor)
    }
}

struct PrincipalVisitor;

impl<'de> Visitor<'de> for PrincipalVisitor {
    type Value = RawPrincipal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"*\" or an object such as {\"AWS\": ...}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawPrincipal::Text(v.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        UniqueMap::deserialize(MapAccessDeserializer::new(map)).map(RawPrincipal::Map)
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawValue::Invalid("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawValue::Invalid("a nested array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawValue::Invalid("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str) -> Result<RawPolicy, String> {
        serde_json::from_str(doc).map_err(|e| e.to_string())
    }

    #[test]
    fn statement_may_be_one_object_or_an_array() {
        let one = parse(r#"{"Statement": {"Effect": "Allow"}}"#).unwrap();
        assert_eq!(one.statement.0.len(), 1);
        let many = parse(r#"{"Statement": [{"Effect": "Allow"}, {"Effect": "Deny"}]}"#).unwrap();
        assert_eq!(many.statement.0.len(), 2);
    }

    #[test]
    fn repeated_struct_fields_are_refused() {
        let err = parse(r#"{"Statement": {"Effect": "Allow", "Effect": "Deny"}}"#).unwrap_err();
        assert!(err.contains("duplicate field `Effect`"), "{err}");
    }

    #[test]
    fn repeated_condition_keys_and_operators_are_refused() {
        let err = parse(r#"{"Statement": {"Condition": {"StringEquals": {"a": "1", "a": "2"}}}}"#)
            .unwrap_err();
        assert!(err.contains("duplicate key \"a\""), "{err}");
        let err = parse(
            r#"{"Statement": {"Condition": {"Bool": {"a": "true"}, "Bool": {"b": "true"}}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("duplicate key \"Bool\""), "{err}");
    }

    #[test]
    fn element_names_are_case_sensitive() {
        let err = parse(r#"{"statement": []}"#).unwrap_err();
        assert!(err.contains("unknown field `statement`"), "{err}");
    }

    #[test]
    fn condition_values_accept_scalars_and_keep_bad_types() {
        let p = parse(
            r#"{"Statement": {"Condition": {"X": {"k": [true, 10, 1.5, "s", null, [1], {}]}}}}"#,
        )
        .unwrap();
        let block = p.statement.0[0].condition.as_ref().unwrap();
        let values = &block.0[0].1.0[0].1.0;
        let texts: Vec<String> = values
            .iter()
            .map(|v| match v {
                RawValue::Text(t) => t.clone(),
                RawValue::Invalid(kind) => format!("<{kind}>"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "true",
                "10",
                "1.5",
                "s",
                "<null>",
                "<a nested array>",
                "<an object>"
            ]
        );
    }

    #[test]
    fn principal_accepts_text_or_map() {
        let p = parse(r#"{"Statement": [{"Principal": "*"}, {"Principal": {"AWS": ["a", "b"]}}]}"#)
            .unwrap();
        assert!(matches!(p.statement.0[0].principal, Some(RawPrincipal::Text(ref s)) if s == "*"));
        match &p.statement.0[1].principal {
            Some(RawPrincipal::Map(m)) => assert_eq!(m.0[0].1.0, ["a", "b"]),
            other => panic!("unexpected {other:?}"),
        }
    }
}
