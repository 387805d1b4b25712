//! The audit record: who did what to which object, what was decided and why,
//! and how it ended. It never holds a secret, signature, session token or
//! presigned query string.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

use super::params::{Parameters, ResponseElements};
use crate::identity::Principal;
use crate::policy::ContextValue;

/// How the request authenticated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthInfo {
    /// `header`, `presigned`, `post-form` or `anonymous`.
    pub kind: &'static str,
    /// `AWS4-HMAC-SHA256`, `AWS` (SigV2), or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_version: Option<&'static str>,
    /// The access key id the request claimed, also when it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Why authentication failed: `bad signature`, `unknown key`, `expired
    /// token`, `revoked token`, `malformed token`, `expired`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The authorization decision and what decided it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionInfo {
    pub allowed: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The condition keys (and policy variables) the evaluation consulted,
    /// with the request's values: a string, a list, or null when absent.
    #[serde(skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
}

/// Condition keys with the request's values, in key order, written as a JSON
/// object. A sorted vector of the context's own values, not a `BTreeMap` of
/// `serde_json::Value`s: a decision consults one key or two, and the map's
/// node and the values' copies cost more than the rest of the decision's
/// record (the writer thread frees them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions(Vec<(String, Option<ContextValue>)>);

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `key`'s value (`None`: the request had none), replacing one set before.
    pub fn insert(&mut self, key: String, value: Option<ContextValue>) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (key, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&ContextValue>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }
}

impl Serialize for Conditions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Value<'a>(Option<&'a ContextValue>);
        impl Serialize for Value<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    None => s.serialize_none(),
                    Some(ContextValue::Single(v)) => s.serialize_str(v),
                    Some(ContextValue::Multi(v)) => v.serialize(s),
                }
            }
        }
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, &Value(v))?;
        }
        map.end()
    }
}

impl DecisionInfo {
    pub fn from_decision(d: &crate::policy::Decision) -> Self {
        use crate::policy::Reason;
        let by = match &d.reason {
            Reason::ExplicitDeny { by } | Reason::Allowed { by, .. } => Some(by),
            Reason::NoIdentityAllow | Reason::NoSessionAllow | Reason::NoBoundaryAllow => None,
        };
        DecisionInfo {
            allowed: d.allowed,
            reason: d.reason.text(),
            policy: by.map(|b| b.policy.clone()),
            statement: by.map(|b| b.statement.clone()),
            conditions: Conditions::default(),
        }
    }

    /// [`DecisionInfo::from_decision`], taking the deciding statement's
    /// names instead of copying them.
    pub fn from_owned(d: crate::policy::Decision) -> Self {
        use crate::policy::Reason;
        let reason = d.reason.text();
        let by = match d.reason {
            Reason::ExplicitDeny { by } | Reason::Allowed { by, .. } => Some(by),
            Reason::NoIdentityAllow | Reason::NoSessionAllow | Reason::NoBoundaryAllow => None,
        };
        let (policy, statement) = match by {
            Some(b) => (Some(b.policy), Some(b.statement)),
            None => (None, None),
        };
        DecisionInfo {
            allowed: d.allowed,
            reason,
            policy,
            statement,
            conditions: Conditions::default(),
        }
    }

    /// Adds the values `ctx` held for the condition keys the decision consulted.
    pub fn with_conditions(mut self, keys: Vec<String>, ctx: &crate::policy::Context) -> Self {
        let mut all = std::mem::take(&mut self.conditions.0);
        all.reserve(keys.len());
        for key in keys {
            let value = ctx.get(&key).cloned();
            all.push((key, value));
        }
        // Stable, so of a key given twice the last stays, as `insert` keeps it.
        all.sort_by(|(a, _), (b, _)| a.cmp(b));
        all.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        self.conditions.0 = all;
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRecord {
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    pub request_id: String,
    /// The s3warden instance that served the request (set by the writer).
    pub instance: String,
    pub remote: String,
    pub tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Borrowed for the standard methods (see [`method_name`]).
    pub method: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// An S3 operation's name is static; an API call's is built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Cow<'static, str>>,
    /// What the request asked for beyond bucket and key.
    #[serde(skip_serializing_if = "Parameters::is_empty")]
    pub parameters: Parameters,
    /// Shared with the request's authentication, not copied from it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "shared_principal"
    )]
    pub principal: Option<Arc<Principal>>,
    pub auth: AuthInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionInfo>,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The message sent with the error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// `client`, `upstream` or `internal` when the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_source: Option<crate::s3::ErrorSource>,
    /// What went wrong, in more detail than the client was told (an
    /// upstream's error text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The length the answer announced, when fewer bytes were sent: a
    /// download cut short (client gone, upstream stalled, shutdown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_expected: Option<u64>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_request_id: Option<String>,
    /// What the response handed out (issued access key ids).
    #[serde(skip_serializing_if = "ResponseElements::is_empty")]
    pub response: ResponseElements,
}

/// Serialises the shared principal as the principal itself.
fn shared_principal<S: serde::Serializer>(
    p: &Option<Arc<Principal>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    p.as_deref().serialize(s)
}

/// A request method as the audit record names it, without a copy for the
/// methods S3 uses.
pub fn method_name(m: &http::Method) -> Cow<'static, str> {
    use http::Method;
    Cow::Borrowed(match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return Cow::Owned(m.as_str().to_string()),
    })
}

/// The client's address as `Display` writes it (`1.2.3.4:5678`,
/// `[::1]:5678`), with IPv4 written through itoa: the formatter's padding
/// support makes `Ipv4Addr`'s `Display` cost more than the rest of the
/// record's plain fields.
pub fn remote_text(addr: &std::net::SocketAddr) -> String {
    match addr {
        std::net::SocketAddr::V4(v4) => {
            let mut out = String::with_capacity(21);
            push_ipv4(&mut out, v4.ip());
            out.push(':');
            out.push_str(itoa::Buffer::new().format(v4.port()));
            out
        }
        std::net::SocketAddr::V6(_) => addr.to_string(),
    }
}

/// An IP address as `Display` writes it (`aws:SourceIp`), IPv4 through itoa
/// as in [`remote_text`].
pub fn ip_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            push_ipv4(&mut out, &v4);
            out
        }
        std::net::IpAddr::V6(_) => ip.to_string(),
    }
}

/// A duration in milliseconds as the record's `duration_ms` and
/// `upstream_ms` hold it: whole nanoseconds over a million, so the number
/// written is the shortest that reads back as it (`2.243206`), where
/// `as_secs_f64() * 1000.0` rounds two or three times and often writes
/// seventeen digits (`2.2432060000000003`): bytes every record, its hashes
/// and its compression paid for, and noise to whoever reads the log.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn push_ipv4(out: &mut String, ip: &std::net::Ipv4Addr) {
    let mut digits = itoa::Buffer::new();
    for (i, octet) in ip.octets().iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(digits.format(*octet));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_are_written_as_their_nanoseconds_read() {
        use std::time::Duration;
        let written = |d: Duration| serde_json::to_string(&millis(d)).unwrap();
        assert_eq!(written(Duration::from_nanos(2_243_206)), "2.243206");
        assert_eq!(written(Duration::from_nanos(1_000_000)), "1.0");
        assert_eq!(written(Duration::from_secs(599)), "599000.0");
        // The significant digits of a number's text, without its exponent.
        let significant = |text: &str| {
            let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
            let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            digits.trim_matches('0').len()
        };
        // Counts of nanoseconds from one to half an hour's worth: each reads
        // back as itself, in no more digits than the count has (the log's
        // own writer writes floats as serde_json does; audit::json's tests).
        let mut n: u64 = 1;
        while n < 600_000_000_000 {
            for d in [n, n + 7, n * 3 + 1] {
                let text = written(Duration::from_nanos(d));
                let back: f64 = text.parse().unwrap();
                assert_eq!((back * 1e6).round() as u64, d, "{d} ns as {text}");
                let own = d.to_string();
                assert!(
                    significant(&text) <= own.trim_matches('0').len(),
                    "{d} ns as {text}"
                );
            }
            n = n * 3 + 11;
        }
    }

    #[test]
    fn remote_and_ip_text_are_display() {
        for a in [
            "1.2.3.4:5678",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "127.0.0.1:80",
            "10.200.3.45:10001",
            "[::1]:443",
            "[fe80::1%2]:8080",
        ] {
            let addr: std::net::SocketAddr = a.parse().unwrap();
            assert_eq!(remote_text(&addr), addr.to_string(), "{a}");
            assert_eq!(ip_text(addr.ip()), addr.ip().to_string(), "{a}");
        }
    }

    #[test]
    fn a_decision_taken_reads_as_one_copied() {
        use crate::policy::{Decision, Reason, StatementRef};
        let by = |p: &str, s: &str| StatementRef {
            policy: p.into(),
            statement: s.into(),
        };
        for (allowed, reason) in [
            (
                true,
                Reason::Allowed {
                    by: by("user/bob/p", "Read"),
                    session: Some(by("session", "#0")),
                    boundary: Some(by("boundary", "B")),
                },
            ),
            (
                false,
                Reason::ExplicitDeny {
                    by: by("group/g/p", "#2"),
                },
            ),
            (false, Reason::NoIdentityAllow),
            (false, Reason::NoSessionAllow),
            (false, Reason::NoBoundaryAllow),
        ] {
            let d = Decision { allowed, reason };
            let copied = serde_json::to_string(&DecisionInfo::from_decision(&d)).unwrap();
            let taken = serde_json::to_string(&DecisionInfo::from_owned(d)).unwrap();
            assert_eq!(copied, taken);
        }
    }

    /// The consulted keys read as the map of JSON values they were kept in
    /// before: in key order, each once, absent ones null, many-valued ones
    /// lists; and `insert` sets as a map's insert does.
    #[test]
    fn conditions_read_as_a_map_of_json_values() {
        use crate::policy::Context;
        let mut ctx = Context::new();
        ctx.set("aws:username", "bob");
        ctx.set("s3:prefix", "home/\"q\"/");
        ctx.set("aws:sourceip", "");
        ctx.set_multi("aws:tagkeys", vec!["b".into(), "a\u{1}".into()]);
        ctx.set_multi("s3:none", vec![]);
        let known = [
            "aws:username",
            "s3:prefix",
            "aws:sourceip",
            "aws:tagkeys",
            "s3:none",
        ];
        let absent = ["aws:referer", "s3:max-keys", "zz:last", "a:first"];
        let all: Vec<&str> = known.iter().chain(&absent).copied().collect();
        // Subsets in several orders, some keys given twice.
        for n in 0..=all.len() {
            for rotate in 0..all.len() {
                let mut keys: Vec<String> = all
                    .iter()
                    .cycle()
                    .skip(rotate)
                    .take(n)
                    .map(|k| k.to_string())
                    .collect();
                if n % 3 == 1 {
                    keys.extend(keys.clone());
                }
                let mut old = std::collections::BTreeMap::new();
                for key in &keys {
                    let value = match ctx.get(key) {
                        None => serde_json::Value::Null,
                        Some(ContextValue::Single(v)) => serde_json::Value::from(v.as_ref()),
                        Some(ContextValue::Multi(v)) => serde_json::Value::from(v.clone()),
                    };
                    old.insert(key.clone(), value);
                }
                let info = DecisionInfo::default().with_conditions(keys.clone(), &ctx);
                let mut inserted = Conditions::default();
                for key in keys.iter().rev() {
                    inserted.insert(key.clone(), Some(ContextValue::Single("stale".into())));
                }
                for key in &keys {
                    inserted.insert(key.clone(), ctx.get(key).cloned());
                }
                let want = serde_json::to_string(&old).unwrap();
                assert_eq!(serde_json::to_string(&info.conditions).unwrap(), want);
                assert_eq!(serde_json::to_string(&inserted).unwrap(), want);
                let mut written = Vec::new();
                super::super::json::write(&mut written, &info.conditions).unwrap();
                assert_eq!(String::from_utf8(written).unwrap(), want);
            }
        }
    }

    /// The writer's JSON (`super::super::json`) is serde_json's, for a record
    /// with every kind of field present, strings that need escaping among them.
    #[test]
    fn a_full_record_is_written_as_serde_json_writes_it() {
        use super::super::params::{CopySourceInfo, ObjectOutcome, TagParam};
        let mut principal = Principal::anonymous("000000000000");
        principal.user_name = Some("b\"ob\u{1}".into());
        principal.access_key_id = Some("AKIDEXAMPLE".into());
        let mut decision = DecisionInfo {
            allowed: false,
            reason: "explicit deny by group/g/p statement \"#2\"".into(),
            policy: Some("group/g/p".into()),
            statement: Some("#2".into()),
            conditions: Conditions::default(),
        };
        decision.conditions.insert(
            "aws:username".into(),
            Some(ContextValue::Single("bob".into())),
        );
        decision.conditions.insert("s3:prefix".into(), None);
        decision.conditions.insert(
            "aws:TagKeys".into(),
            Some(ContextValue::Multi(vec!["a\tb".into(), "é".into()])),
        );
        let record = AuditRecord {
            time: "2026-12-05T12:07:16.320Z".into(),
            request_id: "4HUN8SKEBL18OJVK".into(),
            instance: "vm".into(),
            remote: "[::1]:443".into(),
            tls: true,
            user_agent: Some("aws-cli/2 \"quoted\" \\ back\nline".into()),
            method: Cow::Owned("PROPFIND".into()),
            host: Some("bucket.s3.example".into()),
            bucket: Some("bucket".into()),
            key: Some("dir/ключ \u{7f}\r".into()),
            version_id: Some("v1".into()),
            operation: Some(Cow::Borrowed("DeleteObjects")),
            actions: vec![Cow::Borrowed("s3:DeleteObject"), Cow::Owned("s3:x".into())],
            parameters: Parameters {
                prefix: Some("p/".into()),
                max_keys: Some(1000),
                copy_source: Some(CopySourceInfo {
                    bucket: "src".into(),
                    key: "k\"".into(),
                    version_id: None,
                }),
                objects: vec![ObjectOutcome {
                    key: "a".into(),
                    version_id: Some("3".into()),
                    outcome: "error",
                    error_code: Some("AccessDenied".into()),
                }],
                tags: vec![TagParam {
                    key: "team".into(),
                    value: "x\u{0}y".into(),
                }],
                ..Parameters::default()
            },
            principal: Some(Arc::new(principal)),
            auth: AuthInfo {
                kind: "header",
                signature_version: Some("AWS4-HMAC-SHA256"),
                access_key_id: Some("AKIDEXAMPLE".into()),
                failure: Some("bad signature".into()),
            },
            decision: Some(decision),
            status: 403,
            error_code: Some("AccessDenied".into()),
            error_message: Some("Access Denied".into()),
            error_source: Some(crate::s3::ErrorSource::Client),
            error_detail: Some("upstream said \"no\"".into()),
            bytes_in: 0,
            bytes_out: u64::MAX,
            bytes_expected: Some(7),
            duration_ms: 1.7267540000000001,
            upstream_ms: Some(0.0),
            upstream_request_id: Some("R".into()),
            response: ResponseElements {
                issued_access_key_id: Some("ASIA".into()),
            },
        };
        let mut ours = Vec::new();
        super::super::json::write(&mut ours, &record).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&record).unwrap()
        );
    }

    #[test]
    fn method_name_is_as_str() {
        for m in [
            "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
            "PROPFIND",
        ] {
            let method = http::Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(method_name(&method), method.as_str());
        }
    }
}
