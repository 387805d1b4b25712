//! Reading the audit log for reviewers: filters (time, request id, exact
//! principal and the sessions it issued, bucket, key prefix, operations by S3
//! or IAM name, decision, reason, statement, status, error code), a readable
//! table, CSV or JSON lines, and summaries (requests and bytes per principal
//! and decision; counts by reason, statement and error code; top denied
//! principals and keys).

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

/// Which records a reviewer wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
    /// Exactly the user name, ARN or access key id (claimed or used).
    pub principal: Option<String>,
    /// Also the sessions whose parent is the principal.
    pub include_sessions: bool,
    /// ARNs the principal is known by (found in the log beforehand), for
    /// matching the parents of its sessions.
    pub principal_arns: Vec<String>,
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    /// Any of these: S3 operation names or IAM action names, either case
    /// (`GetObject`, `s3:GetObject`, `iam:CreateUser`, `CreateUser`).
    pub operations: Vec<String>,
    /// `Some(true)` allowed only, `Some(false)` denied only.
    pub allowed: Option<bool>,
    /// Words of the decision's (or failed authentication's) reason.
    pub reason: Option<String>,
    /// The deciding statement: its Sid, or `POLICY/SID`.
    pub statement: Option<String>,
    /// An exact status (`403`) or a class (`4xx`).
    pub status: Option<String>,
    pub error_code: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error(
        "{0:?} is not a time: give an RFC 3339 time, a date (2026-12-02), a local time (20:38), \"2026-12-02 20:38\", today, yesterday, or a duration back like 15m, 2h or 7d"
    )]
    BadTime(String),
    #[error("decision must be \"allow\" or \"deny\", not {0:?}")]
    BadDecision(String),
    #[error("status must be a code like 403 or a class like 4xx, not {0:?}")]
    BadStatus(String),
    #[error("unknown column {0:?}; columns are: {cols}", cols = COLUMN_NAMES.join(", "))]
    BadColumn(String),
}

/// A time as a reviewer types it, in the time zone of `now`: an RFC 3339
/// time; `now`, `today` or `yesterday` (local midnight); a date (its local
/// midnight); a local time of today (`20:38`, `20:38:15`); a local date and
/// time (`2026-12-02 20:38`); or a duration back from now (`90s`, `15m`,
/// `2h`, `7d`, `2w`).
pub fn parse_time<Tz: TimeZone>(s: &str, now: DateTime<Tz>) -> Result<DateTime<Utc>, QueryError> {
    let bad = || QueryError::BadTime(s.to_string());
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let tz = now.timezone();
    let local = |naive: NaiveDateTime| {
        tz.from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(bad)
    };
    let today = now.date_naive();
    let midnight = NaiveTime::MIN;
    match s {
        "now" => return Ok(now.with_timezone(&Utc)),
        "today" => return local(today.and_time(midnight)),
        "yesterday" => return local((today - Duration::days(1)).and_time(midnight)),
        _ => {}
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_time(midnight));
    }
    for f in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return local(t);
        }
    }
    for f in ["%H:%M", "%H:%M:%S"] {
        if let Ok(t) = NaiveTime::parse_from_str(s, f) {
            return local(today.and_time(t));
        }
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        _ => return Err(bad()),
    };
    Ok(now.with_timezone(&Utc) - d)
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

pub fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// An ARN without its `arn:aws:iam::ACCOUNT:` prefix (`user/alice`,
/// `assumed-role/Reader/app`), readable in a narrow column.
pub fn short_arn(arn: &str) -> &str {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.nth(4)) {
        (Some("arn"), Some(rest)) if !rest.is_empty() => rest,
        _ => arn,
    }
}

/// How a principal is shown: user name, else the short ARN, else the access
/// key id a failed authentication claimed, else `anonymous`.
pub fn principal_label(r: &Value) -> String {
    str_of(r, &["principal", "user_name"])
        .or_else(|| {
            str_of(r, &["principal", "arn"])
                .filter(|a| *a != "*")
                .map(short_arn)
        })
        .or_else(|| str_of(r, &["auth", "access_key_id"]))
        .unwrap_or("anonymous")
        .to_string()
}

/// True for request records (not rotation digests).
pub fn is_request(r: &Value) -> bool {
    r.get("request_id").is_some()
}

/// `allow`, `deny`, or `-` when no decision was made.
fn decision_word(r: &Value) -> &'static str {
    match r
        .get("decision")
        .and_then(|d| d.get("allowed"))
        .and_then(Value::as_bool)
    {
        Some(true) => "allow",
        Some(false) => "deny",
        None => "-",
    }
}

/// Why the request ended as it did: the decision's reason, else why its
/// authentication failed.
pub fn reason_of(r: &Value) -> Option<&str> {
    str_of(r, &["decision", "reason"]).or_else(|| str_of(r, &["auth", "failure"]))
}

/// The kind of a reason, for summaries: the deciding statement is counted
/// on its own.
pub fn reason_kind(reason: &str) -> &str {
    for kind in ["explicit deny", "allowed"] {
        if reason.starts_with(kind) {
            return kind;
        }
    }
    reason
}

/// The deciding statement as `POLICY/SID`.
pub fn statement_of(r: &Value) -> Option<String> {
    let sid = str_of(r, &["decision", "statement"])?;
    Some(match str_of(r, &["decision", "policy"]) {
        Some(p) => format!("{p}/{sid}"),
        None => sid.to_string(),
    })
}

/// The name an operation is compared by: without a service prefix, lower case.
fn op_name(s: &str) -> String {
    s.rsplit(':').next().unwrap_or(s).to_ascii_lowercase()
}

impl Filter {
    fn principal_matches(&self, r: &Value, p: &str) -> bool {
        let direct = [
            str_of(r, &["principal", "user_name"]),
            str_of(r, &["principal", "arn"]),
            str_of(r, &["principal", "access_key_id"]),
            str_of(r, &["auth", "access_key_id"]),
        ];
        if direct.iter().flatten().any(|f| *f == p) {
            return true;
        }
        if p == "anonymous" && principal_label(r) == "anonymous" {
            return true;
        }
        if !self.include_sessions {
            return false;
        }
        let Some(parent) = str_of(r, &["principal", "session", "parent_arn"]) else {
            return false;
        };
        // A user's ARN ends with its name after the last `/` (and any path).
        let parent_name = parent
            .contains(":user/")
            .then(|| parent.rsplit('/').next())
            .flatten();
        parent == p || parent_name == Some(p) || self.principal_arns.iter().any(|a| a == parent)
    }

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
        if self
            .request_id
            .as_deref()
            .is_some_and(|id| str_of(r, &["request_id"]) != Some(id))
        {
            return false;
        }
        if let Some(p) = &self.principal
            && !self.principal_matches(r, p)
        {
            return false;
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
            && !str_of(r, &["parameters", "prefix"]).is_some_and(|k| k.starts_with(prefix.as_str()))
        {
            return false;
        }
        if !self.operations.is_empty() {
            let mut names: Vec<String> =
                str_of(r, &["operation"]).map(op_name).into_iter().collect();
            if let Some(actions) = r.get("actions").and_then(Value::as_array) {
                names.extend(actions.iter().filter_map(Value::as_str).map(op_name));
            }
            if !self.operations.iter().any(|o| names.contains(&op_name(o))) {
                return false;
            }
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
        if let Some(words) = &self.reason
            && !reason_of(r)
                .is_some_and(|t| t.to_ascii_lowercase().contains(&words.to_ascii_lowercase()))
        {
            return false;
        }
        if let Some(st) = &self.statement
            && str_of(r, &["decision", "statement"]) != Some(st.as_str())
            && statement_of(r).as_deref() != Some(st.as_str())
        {
            return false;
        }
        if self
            .error_code
            .as_deref()
            .is_some_and(|c| str_of(r, &["error_code"]) != Some(c))
        {
            return false;
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

/// The columns a table or CSV can show.
pub const COLUMN_NAMES: &[&str] = &[
    "time",
    "instance",
    "request_id",
    "principal",
    "principal_arn",
    "access_key_id",
    "operation",
    "bucket",
    "key",
    "target",
    "decision",
    "reason",
    "statement",
    "status",
    "error_code",
    "error_message",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "remote",
    "user_agent",
    "seq",
];

/// What the table shows unless `--columns` says otherwise.
pub const TABLE_COLUMNS: &[&str] = &[
    "time",
    "principal",
    "operation",
    "decision",
    "status",
    "error_code",
    "bytes_in",
    "bytes_out",
    "target",
    "reason",
];

/// What CSV holds unless `--columns` says otherwise.
pub const CSV_COLUMNS: &[&str] = &[
    "time",
    "instance",
    "request_id",
    "principal",
    "principal_arn",
    "access_key_id",
    "operation",
    "bucket",
    "key",
    "decision",
    "reason",
    "statement",
    "status",
    "error_code",
    "error_message",
    "bytes_in",
    "bytes_out",
];

/// Checks a `--columns` list (comma-separated names).
pub fn parse_columns(s: &str) -> Result<Vec<String>, QueryError> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            if COLUMN_NAMES.contains(&c) {
                Ok(c.to_string())
            } else {
                Err(QueryError::BadColumn(c.to_string()))
            }
        })
        .collect()
}

/// One column's value for a record (empty when the record has none).
pub fn column(r: &Value, name: &str) -> String {
    let s = |path: &[&str]| str_of(r, path).unwrap_or("").to_string();
    let n = |key: &str| r.get(key).map(|v| v.to_string()).unwrap_or_default();
    match name {
        "principal" => principal_label(r),
        "principal_arn" => s(&["principal", "arn"]),
        "access_key_id" => str_of(r, &["principal", "access_key_id"])
            .or_else(|| str_of(r, &["auth", "access_key_id"]))
            .unwrap_or("")
            .to_string(),
        "target" => match (str_of(r, &["bucket"]), str_of(r, &["key"])) {
            (Some(b), Some(k)) => format!("{b}/{k}"),
            (Some(b), None) => b.to_string(),
            _ => "-".to_string(),
        },
        "decision" => decision_word(r).to_string(),
        "reason" => reason_of(r).unwrap_or("").to_string(),
        "statement" => statement_of(r).unwrap_or_default(),
        "status" | "bytes_in" | "bytes_out" | "duration_ms" | "seq" => n(name),
        other => s(&[other]),
    }
}

/// How wide a table column is (the last one is never cut).
fn width(name: &str) -> usize {
    match name {
        "time" => 24,
        "principal" | "principal_arn" | "operation" | "error_code" => 22,
        "decision" => 6,
        "status" => 6,
        "bytes_in" | "bytes_out" | "duration_ms" | "seq" => 10,
        "request_id" | "access_key_id" | "instance" => 20,
        _ => 30,
    }
}

/// The table's header line for `columns`.
pub fn table_header(columns: &[String]) -> String {
    let cells: Vec<String> = columns.iter().map(|c| c.to_ascii_uppercase()).collect();
    table_line(columns, &cells)
}

/// One readable line per record.
pub fn table_row(r: &Value, columns: &[String]) -> String {
    let cells: Vec<String> = columns
        .iter()
        .map(|c| match column(r, c) {
            v if v.is_empty() => "-".to_string(),
            v => v,
        })
        .collect();
    table_line(columns, &cells)
}

fn table_line(columns: &[String], cells: &[String]) -> String {
    let mut line = String::new();
    for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
        if i + 1 == columns.len() {
            line.push_str(v);
        } else {
            let w = width(c);
            let v: String = if v.chars().count() > w {
                // Cut in the middle: both ends of a name or ARN say most.
                let chars: Vec<char> = v.chars().collect();
                let head: String = chars[..w / 2 - 1].iter().collect();
                let tail: String = chars[chars.len() - (w - w / 2)..].iter().collect();
                format!("{head}…{tail}")
            } else {
                v.clone()
            };
            line.push_str(&format!("{v:<w$} "));
        }
    }
    line.trim_end().to_string()
}

/// One CSV field (RFC 4180: quoted when it holds a comma, quote or newline).
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

pub fn csv_header(columns: &[String]) -> String {
    columns.join(",")
}

pub fn csv_row(r: &Value, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| csv_field(&column(r, c)))
        .collect::<Vec<_>>()
        .join(",")
}

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
    /// Requests by the kind of reason (`allowed`, `explicit deny`, `no
    /// statement allows`, why an authentication failed, …).
    pub by_reason: BTreeMap<String, u64>,
    /// Requests by deciding statement (`POLICY/SID`), allowed and denied.
    pub by_statement: BTreeMap<String, BTreeMap<String, u64>>,
    /// Failed requests by error code.
    pub by_error_code: BTreeMap<String, u64>,
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
            if let Some(reason) = reason_of(r) {
                *s.by_reason
                    .entry(reason_kind(reason).to_string())
                    .or_default() += 1;
            }
            if let Some(st) = statement_of(r) {
                *s.by_statement
                    .entry(st)
                    .or_default()
                    .entry(decision.to_string())
                    .or_default() += 1;
            }
            if let Some(code) = str_of(r, &["error_code"]) {
                *s.by_error_code.entry(code.to_string()).or_default() += 1;
            }
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
        writeln!(out, "\nBY REASON")?;
        for (reason, n) in &self.by_reason {
            writeln!(out, "{n:>10}  {reason}")?;
        }
        writeln!(out, "\nBY STATEMENT")?;
        for (st, by) in &self.by_statement {
            for (decision, n) in by {
                writeln!(out, "{n:>10}  {decision:<6} {st}")?;
            }
        }
        writeln!(out, "\nBY ERROR CODE")?;
        for (code, n) in &self.by_error_code {
            writeln!(out, "{n:>10}  {code}")?;
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

    fn with(mut r: Value, path: &[&str], v: Value) -> Value {
        let mut at = &mut r;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        r
    }

    #[test]
    fn principal_is_exact_and_can_reach_its_sessions() {
        let t = "2026-01-01T00:00:00.000Z";
        let bob = rec("bob", "GetObject", "k", true, 200, t);
        let bobapp = rec("bobapp", "GetObject", "k", true, 200, t);
        let session = json!({"time": t, "request_id": "S", "principal": {"type": "federated_user",
            "arn": "arn:aws:sts::1:federated-user/upload", "user_name": "upload", "access_key_id": "ASIATEMP",
            "session": {"parent_arn": "arn:aws:iam::1:user/bob"}}});
        let failed = json!({"time": t, "request_id": "F", "auth": {"access_key_id": "AKBOB", "failure": "bad signature"}});
        let f = |p: &str, sessions: bool| Filter {
            principal: Some(p.into()),
            include_sessions: sessions,
            ..Filter::default()
        };
        let hits = |f: Filter| {
            [&bob, &bobapp, &session, &failed]
                .iter()
                .filter(|r| f.matches(r))
                .count()
        };
        assert_eq!(hits(f("bob", false)), 1, "bob is not bobapp");
        assert_eq!(hits(f("bo", false)), 0, "no substrings");
        assert_eq!(hits(f("arn:aws:iam::1:user/bob", false)), 1);
        assert_eq!(hits(f("bob", true)), 2, "bob and the session bob issued");
        assert_eq!(hits(f("arn:aws:iam::1:user/bob", true)), 2);
        assert_eq!(
            hits(f("AKBOB", false)),
            1,
            "the key a failed sign-in claimed"
        );
        let mut by_key = f("AK", true);
        by_key.principal_arns = vec!["arn:aws:iam::1:user/bob".into()];
        assert_eq!(
            hits(by_key),
            3,
            "bob, bobapp (same key id AK) and bob's session"
        );
    }

    #[test]
    fn operations_match_s3_and_iam_names_and_repeat() {
        let t = "2026-01-01T00:00:00.000Z";
        let get = with(
            rec("a", "GetObject", "k", true, 200, t),
            &["actions"],
            json!(["s3:GetObject"]),
        );
        let iam = rec("a", "iam:CreateUser", "k", true, 200, t);
        let delete = with(
            rec("a", "DeleteObjects", "k", true, 200, t),
            &["actions"],
            json!(["s3:DeleteObject"]),
        );
        let f = |ops: &[&str]| Filter {
            operations: ops.iter().map(|o| o.to_string()).collect(),
            ..Filter::default()
        };
        for op in ["GetObject", "s3:GetObject", "getobject"] {
            assert!(f(&[op]).matches(&get), "{op}");
            assert!(!f(&[op]).matches(&iam), "{op}");
        }
        assert!(f(&["iam:CreateUser"]).matches(&iam));
        assert!(f(&["CreateUser"]).matches(&iam));
        assert!(f(&["s3:DeleteObject"]).matches(&delete));
        let both = f(&["s3:GetObject", "iam:CreateUser"]);
        assert!(both.matches(&get) && both.matches(&iam) && !both.matches(&delete));
    }

    #[test]
    fn reason_statement_error_code_and_request_id_filter() {
        let t = "2026-01-01T00:00:00.000Z";
        let denied = with(
            with(
                rec("a", "GetObject", "k", false, 403, t),
                &["decision"],
                json!({"allowed": false, "reason": "explicit deny by own-prefix statement DenyOthers", "policy": "own-prefix", "statement": "DenyOthers"}),
            ),
            &["error_code"],
            json!("AccessDenied"),
        );
        let other = with(
            rec("a", "GetObject", "k", true, 200, t),
            &["request_id"],
            json!("OTHER"),
        );
        let m = |f: Filter| (f.matches(&denied), f.matches(&other));
        let reason = |s: &str| Filter {
            reason: Some(s.into()),
            ..Filter::default()
        };
        assert_eq!(m(reason("Explicit Deny")), (true, false));
        assert_eq!(m(reason("no statement allows")), (false, false));
        let statement = |s: &str| Filter {
            statement: Some(s.into()),
            ..Filter::default()
        };
        assert_eq!(m(statement("DenyOthers")), (true, false));
        assert_eq!(m(statement("own-prefix/DenyOthers")), (true, false));
        assert_eq!(m(statement("Deny")), (false, false));
        let code = Filter {
            error_code: Some("AccessDenied".into()),
            ..Filter::default()
        };
        assert_eq!(m(code), (true, false));
        let id = Filter {
            request_id: Some("OTHER".into()),
            ..Filter::default()
        };
        assert_eq!(m(id), (false, true));
        let s = Summary::build([&denied, &other], 5);
        assert_eq!(s.by_reason["explicit deny"], 1);
        assert_eq!(s.by_statement["own-prefix/DenyOthers"]["deny"], 1);
        assert_eq!(s.by_error_code["AccessDenied"], 1);
    }

    #[test]
    fn csv_quotes_and_columns_are_checked() {
        let r = with(
            rec("a", "GetObject", "dir/a,\"b\"", true, 200, "t"),
            &["principal", "arn"],
            json!("arn:aws:sts::123:assumed-role/Reader/app"),
        );
        let cols = parse_columns("principal_arn,key,status").unwrap();
        assert_eq!(csv_header(&cols), "principal_arn,key,status");
        assert_eq!(
            csv_row(&r, &cols),
            "arn:aws:sts::123:assumed-role/Reader/app,\"dir/a,\"\"b\"\"\",200"
        );
        assert_eq!(
            parse_columns("time,nope"),
            Err(QueryError::BadColumn("nope".into()))
        );
        assert_eq!(
            short_arn("arn:aws:sts::123:assumed-role/Reader/app"),
            "assumed-role/Reader/app"
        );
        let row = table_row(
            &r,
            &parse_columns("principal,decision,status,error_code").unwrap(),
        );
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["a", "allow", "200", "-"]
        );
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
        assert!(parse_time("2d3", now).is_err());
        // Local forms, in the zone of `now` (here UTC+02:00).
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:30:00+02:00").unwrap();
        let at = |s: &str| parse_time(s, now).unwrap().to_rfc3339();
        assert_eq!(at("today"), "2026-12-02T22:00:00+00:00");
        assert_eq!(at("yesterday"), "2026-12-01T22:00:00+00:00");
        assert_eq!(at("2026-12-02"), "2026-12-01T22:00:00+00:00");
        assert_eq!(at("20:38"), "2026-12-03T18:38:00+00:00");
        assert_eq!(at("2026-12-02 20:38:15"), "2026-12-02T18:38:15+00:00");
        assert_eq!(at("2026-12-02T20:38"), "2026-12-02T18:38:00+00:00");
        assert_eq!(at("2026-12-02T20:38:00Z"), "2026-12-02T20:38:00+00:00");
        assert_eq!(at("1w"), "2026-11-26T08:30:00+00:00");
        assert!(matches!(
            parse_time("tomorrowish", now),
            Err(QueryError::BadTime(_))
        ));
        assert!(
            parse_status("4xx").is_ok()
                && parse_status("403").is_ok()
                && parse_status("4x").is_err()
        );
        assert!(parse_decision("deny").is_ok() && parse_decision("maybe").is_err());
    }
}
