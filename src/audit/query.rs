//! Reading the audit log for reviewers: filters (time, principal, bucket, key
//! prefix, operation, decision, status), a readable table or JSON lines, and
//! summaries (requests and bytes per principal and decision, top denied
//! principals and keys).

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// Which records a reviewer wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Matches the user name, ARN or access key id (substring).
    pub principal: Option<String>,
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    /// Operation name, case-insensitive (`GetObject`, `iam:CreateUser`).
    pub operation: Option<String>,
    /// `Some(true)` allowed only, `Some(false)` denied only.
    pub allowed: Option<bool>,
    /// An exact status (`403`) or a class (`4xx`).
    pub status: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("{0:?} is neither an RFC 3339 time nor a duration like 15m, 2h or 7d")]
    BadTime(String),
    #[error("decision must be \"allow\" or \"deny\", not {0:?}")]
    BadDecision(String),
    #[error("status must be a code like 403 or a class like 4xx, not {0:?}")]
    BadStatus(String),
}

/// An RFC 3339 time, or a duration back from `now` (`90s`, `15m`, `2h`, `7d`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, QueryError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let bad = || QueryError::BadTime(s.to_string());
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(bad()),
    };
    Ok(now - d)
}

pub fn parse_decision(s: &str) -> Result<bool, QueryError> {
    match s {
        "allow" | "allowed" => Ok(true),
        "deny" | "denied" => Ok(false),
        _ => Err(QueryError::BadDecision(s.to_string())),
    }
}

pub fn parse_status(s: &str) -> Result<String, QueryError> {
    let ok = s.len() == 3
        && s.as_bytes()[0].is_ascii_digit()
        && (s[1..].bytes().all(|b| b.is_ascii_digit()) || &s[1..] == "xx");
    if ok {
        Ok(s.to_string())
    } else {
        Err(QueryError::BadStatus(s.to_string()))
    }
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// How a principal is shown: user name, else ARN, else `anonymous`.
pub fn principal_label(r: &Value) -> String {
    str_of(r, &["principal", "user_name"])
        .or_else(|| str_of(r, &["principal", "arn"]).filter(|a| *a != "*"))
        .unwrap_or("anonymous")
        .to_string()
}

/// True for request records (not rotation digests).
pub fn is_request(r: &Value) -> bool {
    r.get("request_id").is_some()
}

impl Filter {
    pub fn matches(&self, r: &Value) -> bool {
        if !is_request(r) {
            return false;
        }
        let time = str_of(r, &["time"]).and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        if let Some(since) = self.since
            && time.is_none_or(|t| t < since)
        {
            return false;
        }
        if let Some(until) = self.until
            && time.is_none_or(|t| t > until)
        {
            return false;
        }
        if let Some(p) = &self.principal {
            let fields = [
                str_of(r, &["principal", "user_name"]),
                str_of(r, &["principal", "arn"]),
                str_of(r, &["principal", "access_key_id"]),
            ];
            if !fields.iter().flatten().any(|f| f.contains(p.as_str())) {
                return false;
            }
        }
        if self
            .bucket
            .as_deref()
            .is_some_and(|b| str_of(r, &["bucket"]) != Some(b))
        {
            return false;
        }
        if let Some(prefix) = &self.key_prefix
            && !str_of(r, &["key"]).is_some_and(|k| k.starts_with(prefix.as_str()))
        {
            return false;
        }
        if let Some(op) = &self.operation
            && !str_of(r, &["operation"]).is_some_and(|o| o.eq_ignore_ascii_case(op))
        {
            return false;
        }
        if let Some(allowed) = self.allowed {
            let a = r
                .get("decision")
                .and_then(|d| d.get("allowed"))
                .and_then(Value::as_bool);
            if a != Some(allowed) {
                return false;
            }
        }
        if let Some(status) = &self.status {
            let got = r
                .get("status")
                .and_then(Value::as_u64)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let ok = if let Some(class) = status.strip_suffix("xx") {
                got.starts_with(class)
            } else {
                &got == status
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// One readable line per record.
pub fn table_row(r: &Value) -> String {
    let decision = match r
        .get("decision")
        .and_then(|d| d.get("allowed"))
        .and_then(Value::as_bool)
    {
        Some(true) => "allow",
        Some(false) => "deny",
        None => "-",
    };
    let target = match (str_of(r, &["bucket"]), str_of(r, &["key"])) {
        (Some(b), Some(k)) => format!("{b}/{k}"),
        (Some(b), None) => b.to_string(),
        _ => "-".to_string(),
    };
    format!(
        "{:<24} {:<20} {:<24} {:<5} {:>3} {:>10} {:>10}  {}",
        str_of(r, &["time"]).unwrap_or("-"),
        principal_label(r),
        str_of(r, &["operation"]).unwrap_or("-"),
        decision,
        r.get("status").and_then(Value::as_u64).unwrap_or(0),
        r.get("bytes_in").and_then(Value::as_u64).unwrap_or(0),
        r.get("bytes_out").and_then(Value::as_u64).unwrap_or(0),
        target,
    )
}

pub const TABLE_HEADER: &str = "TIME                     PRINCIPAL            OPERATION                DECIS STA   BYTES_IN  BYTES_OUT  BUCKET/KEY";

/// Totals for one principal and decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// What `audit --summary` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// principal → decision (`allow`/`deny`/`none`) → totals
    pub by_principal: BTreeMap<String, BTreeMap<String, Totals>>,
    pub top_denied_principals: Vec<(String, u64)>,
    pub top_denied_keys: Vec<(String, u64)>,
}

impl Summary {
    pub fn build<'a>(records: impl IntoIterator<Item = &'a Value>, top: usize) -> Summary {
        let mut s = Summary::default();
        let mut denied_p: BTreeMap<String, u64> = BTreeMap::new();
        let mut denied_k: BTreeMap<String, u64> = BTreeMap::new();
        for r in records {
            let who = principal_label(r);
            let allowed = r
                .get("decision")
                .and_then(|d| d.get("allowed"))
                .and_then(Value::as_bool);
            let decision = match allowed {
                Some(true) => "allow",
                Some(false) => "deny",
                None => "none",
            };
            let t = s
                .by_principal
                .entry(who.clone())
                .or_default()
                .entry(decision.to_string())
                .or_default();
            t.requests += 1;
            t.bytes_in += r.get("bytes_in").and_then(Value::as_u64).unwrap_or(0);
            t.bytes_out += r.get("bytes_out").and_then(Value::as_u64).unwrap_or(0);
            if allowed == Some(false) {
                *denied_p.entry(who).or_default() += 1;
                if let (Some(b), Some(k)) = (str_of(r, &["bucket"]), str_of(r, &["key"])) {
                    *denied_k.entry(format!("{b}/{k}")).or_default() += 1;
                }
            }
        }
        s.top_denied_principals = top_n(denied_p, top);
        s.top_denied_keys = top_n(denied_k, top);
        s
    }

    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{:<24} {:<6} {:>10} {:>14} {:>14}",
            "PRINCIPAL", "DECIS", "REQUESTS", "BYTES_IN", "BYTES_OUT"
        )?;
        for (who, by) in &self.by_principal {
            for (decision, t) in by {
                writeln!(
                    out,
                    "{who:<24} {decision:<6} {:>10} {:>14} {:>14}",
                    t.requests, t.bytes_in, t.bytes_out
                )?;
            }
        }
        writeln!(out, "\nTOP DENIED PRINCIPALS")?;
        for (who, n) in &self.top_denied_principals {
            writeln!(out, "{n:>10}  {who}")?;
        }
        writeln!(out, "\nTOP DENIED KEYS")?;
        for (key, n) in &self.top_denied_keys {
            writeln!(out, "{n:>10}  {key}")?;
        }
        Ok(())
    }
}

fn top_n(counts: BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(user: &str, op: &str, key: &str, allowed: bool, status: u64, time: &str) -> Value {
        json!({"time": time, "request_id": "R", "principal": {"user_name": user, "arn": format!("arn:aws:iam::1:user/{user}"), "access_key_id": "AK"},
               "operation": op, "bucket": "b", "key": key, "decision": {"allowed": allowed}, "status": status, "bytes_in": 10, "bytes_out": 5})
    }

    #[test]
    fn filters_combine() {
        let rs = [
            rec(
                "alice",
                "GetObject",
                "alice/1",
                true,
                200,
                "2026-01-01T00:00:00.000Z",
            ),
            rec(
                "bob",
                "PutObject",
                "alice/2",
                false,
                403,
                "2026-01-02T00:00:00.000Z",
            ),
            rec(
                "alice",
                "PutObject",
                "bob/3",
                false,
                403,
                "2026-01-03T00:00:00.000Z",
            ),
        ];
        let f = Filter {
            principal: Some("alice".into()),
            allowed: Some(false),
            ..Filter::default()
        };
        let hit: Vec<_> = rs.iter().filter(|r| f.matches(r)).collect();
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0]["key"], "bob/3");
        let f = Filter {
            key_prefix: Some("alice/".into()),
            status: Some("4xx".into()),
            since: Some(parse_time("2026-01-01T12:00:00Z", Utc::now()).unwrap()),
            ..Filter::default()
        };
        assert_eq!(rs.iter().filter(|r| f.matches(r)).count(), 1);
        assert!(!Filter::default().matches(&json!({"type": "digest"})));
    }

    #[test]
    fn summary_counts_and_ranks() {
        let rs = [
            rec("alice", "GetObject", "alice/1", true, 200, "t"),
            rec("bob", "PutObject", "alice/2", false, 403, "t"),
            rec("bob", "PutObject", "alice/2", false, 403, "t"),
            rec("alice", "PutObject", "bob/3", false, 403, "t"),
        ];
        let s = Summary::build(rs.iter(), 1);
        assert_eq!(
            s.by_principal["bob"]["deny"],
            Totals {
                requests: 2,
                bytes_in: 20,
                bytes_out: 10
            }
        );
        assert_eq!(s.top_denied_principals, vec![("bob".to_string(), 2)]);
        assert_eq!(s.top_denied_keys, vec![("b/alice/2".to_string(), 2)]);
    }

    #[test]
    fn parses_times_and_statuses() {
        let now: DateTime<Utc> = "2026-01-10T00:00:00Z".parse().unwrap();
        assert_eq!(
            parse_time("2d", now).unwrap(),
            "2026-01-08T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(
            parse_status("4xx").is_ok()
                && parse_status("403").is_ok()
                && parse_status("4x").is_err()
        );
        assert!(parse_decision("deny").is_ok() && parse_decision("maybe").is_err());
    }
}
