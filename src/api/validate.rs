//! Parameter constraints of the IAM and STS models (botocore
//! `iam/2010-05-08` and `sts/2011-06-15` service-2.json): name lengths and
//! character sets, paths, policy documents and their size quotas, and
//! Marker/MaxItems pagination.

use super::ApiError;
use super::query::{Params, invalid};
use crate::policy::{Policy, PolicyKind};

/// IAM's name charset `[\w+=,.@-]`.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// A user, group, role or policy name of `min..=max` characters.
pub fn name<'a>(value: &'a str, field: &str, min: usize, max: usize) -> Result<&'a str, ApiError> {
    let len = value.chars().count();
    if len < min {
        return Err(invalid(
            Some(value),
            field,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(invalid(
            Some(value),
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !value.chars().all(name_char) {
        return Err(invalid(
            Some(value),
            field,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(value)
}

/// An entity path: `/` or `/a/b/`, 1–512 characters U+0021–U+007E.
pub fn path(value: Option<&str>, field: &str) -> Result<String, ApiError> {
    let Some(p) = value else {
        return Ok("/".to_string());
    };
    let ok = (1..=512).contains(&p.len())
        && p.starts_with('/')
        && p.ends_with('/')
        && p.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c))
        && !p.contains("//");
    if ok {
        Ok(p.to_string())
    } else {
        Err(invalid(
            Some(p),
            field,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

/// A path prefix for listings: starts with `/`.
pub fn path_prefix(value: Option<&str>) -> Result<String, ApiError> {
    match value {
        None => Ok("/".to_string()),
        Some(p)
            if p.starts_with('/')
                && p.len() <= 512
                && p.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)) =>
        {
            Ok(p.to_string())
        }
        Some(p) => Err(invalid(
            Some(p),
            "pathPrefix",
            "Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*",
        )),
    }
}

/// Characters a policy document parameter may hold: TAB, LF, CR, U+0020–U+00FF.
fn policy_chars_ok(doc: &str) -> bool {
    doc.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r') || ('\u{20}'..='\u{ff}').contains(&c))
}

/// The size IAM's quotas count: characters, whitespace excluded.
pub fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// Checks a policy document parameter (1–131072 characters of the allowed
/// set) and parses it as `kind`.
pub fn policy_document(doc: &str, field: &str, kind: PolicyKind) -> Result<Policy, ApiError> {
    let len = doc.chars().count();
    if len == 0 {
        return Err(invalid(
            Some(doc),
            field,
            "Member must have length greater than or equal to 1",
        ));
    }
    if len > 131_072 {
        return Err(invalid(
            None,
            field,
            "Member must have length less than or equal to 131072",
        ));
    }
    if !policy_chars_ok(doc) {
        return Err(invalid(
            None,
            field,
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    Policy::parse(doc, kind)
        .and_then(|p| p.check_enforceable().map(|()| p))
        .map_err(|e| ApiError::MalformedPolicyDocument(e.to_string()))
}

/// A free-text description, at most 1000 characters.
pub fn description<'a>(value: Option<&'a str>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match value {
        Some(d) if d.chars().count() > 1000 => Err(invalid(
            None,
            field,
            "Member must have length less than or equal to 1000",
        )),
        other => Ok(other),
    }
}

/// An IAM ARN parameter (`PolicyArn`, `RoleArn`): 20–2048 characters.
pub fn arn<'a>(value: &'a str, field: &str) -> Result<&'a str, ApiError> {
    if value.len() < 20 {
        return Err(invalid(
            Some(value),
            field,
            "Member must have length greater than or equal to 20",
        ));
    }
    if value.len() > 2048 {
        return Err(invalid(
            None,
            field,
            "Member must have length less than or equal to 2048",
        ));
    }
    Ok(value)
}

/// Options the proxy does not implement; refused so that nothing is silently
/// dropped (an ignored permissions boundary would widen access).
pub fn refuse_unsupported(params: &Params, names: &[&str]) -> Result<(), ApiError> {
    for n in names {
        if params.get(n).is_some() || params.has_prefix(&format!("{n}.")) {
            return Err(ApiError::InvalidInput(format!(
                "s3warden does not support the {n} parameter."
            )));
        }
    }
    Ok(())
}

/// An integer parameter within `min..=max`, or `default` when absent.
pub fn int(
    params: &Params,
    name: &str,
    field: &str,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(default);
    };
    let v: i64 = raw
        .trim()
        .parse()
        .map_err(|_| invalid(Some(raw), field, "Member must be a number"))?;
    if v < min {
        return Err(invalid(
            Some(raw),
            field,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if v > max {
        return Err(invalid(
            Some(raw),
            field,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(v)
}

/// A boolean parameter (`true`/`false`).
pub fn boolean(params: &Params, name: &str, field: &str) -> Result<bool, ApiError> {
    match params.get(name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(Some(v), field, "Member must be true or false")),
    }
}

/// One page of a listing: items sorted by `key`; `Marker` is the key of the
/// first item of the page (opaque to clients), `MaxItems` 1–1000, default 100.
pub fn page<T>(
    params: &Params,
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = int(params, "MaxItems", "maxItems", 1, 1000, 100)? as usize;
    let marker = params.get("Marker");
    if let Some(m) = marker
        && (m.is_empty() || m.len() > 320)
    {
        return Err(invalid(
            Some(m),
            "marker",
            "Member must have length between 1 and 320",
        ));
    }
    items.sort_by_key(|a| key(a));
    let start = match marker {
        Some(m) => items
            .iter()
            .position(|i| key(i).as_str() >= m)
            .unwrap_or(items.len()),
        None => 0,
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = if rest.len() > max {
        let next = key(&rest[max]);
        rest.truncate(max);
        Some(next)
    } else {
        None
    };
    Ok((rest, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model() {
        assert!(name("backup_user.1@x", "userName", 1, 64).is_ok());
        assert!(name("", "userName", 1, 64).is_err());
        assert!(name(&"a".repeat(65), "userName", 1, 64).is_err());
        assert!(name("has space", "userName", 1, 64).is_err());
        assert!(name("slash/no", "userName", 1, 64).is_err());
    }

    #[test]
    fn paths_follow_the_model() {
        assert_eq!(path(None, "path").unwrap(), "/");
        assert!(path(Some("/eng/ops/"), "path").is_ok());
        assert!(path(Some("eng/"), "path").is_err());
        assert!(path(Some("/eng"), "path").is_err());
        assert!(path(Some("/a b/"), "path").is_err());
    }

    #[test]
    fn pages_continue_from_the_marker() {
        let p = Params::from_pairs(&[("MaxItems", "2")]);
        let (first, next) = page(&p, vec!["c", "a", "b"], |s| s.to_string()).unwrap();
        assert_eq!(first, vec!["a", "b"]);
        assert_eq!(next.as_deref(), Some("c"));
        let p = Params::from_pairs(&[("MaxItems", "2"), ("Marker", "c")]);
        let (second, next) = page(&p, vec!["c", "a", "b"], |s| s.to_string()).unwrap();
        assert_eq!(second, vec!["c"]);
        assert!(next.is_none());
        let bad = Params::from_pairs(&[("MaxItems", "0")]);
        assert!(page(&bad, vec!["a"], |s| s.to_string()).is_err());
    }

    #[test]
    fn policy_size_ignores_whitespace() {
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }
}
