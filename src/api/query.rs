//! Query-protocol parameters: the form body and the query string merged,
//! with AWS's list encoding (`Name.member.N`, `Name.member.N.Field`).

use std::collections::BTreeMap;

use super::ApiError;

/// The parameters of one call.
#[derive(Debug, Default, Clone)]
pub struct Params {
    map: BTreeMap<String, String>,
}

/// AWS's validation message for one constraint.
pub fn invalid(value: Option<&str>, field: &str, constraint: &str) -> ApiError {
    let value = match value {
        Some(v) => format!("'{v}'"),
        None => "null".to_string(),
    };
    ApiError::Validation(format!(
        "1 validation error detected: Value {value} at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

impl Params {
    /// Merges query-string and form-body parameters; a name given twice is refused.
    pub fn parse(query: &str, body: &[u8]) -> Result<Params, ApiError> {
        let mut map = BTreeMap::new();
        for (name, value) in
            form_urlencoded::parse(query.as_bytes()).chain(form_urlencoded::parse(body))
        {
            if name.is_empty() {
                continue;
            }
            if map.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::MalformedQueryString(format!(
                    "The parameter {name} is given more than once."
                )));
            }
        }
        Ok(Params { map })
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Params {
        Params {
            map: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    pub fn action(&self) -> Result<&str, ApiError> {
        match self.get("Action") {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(ApiError::MissingAction),
        }
    }

    /// The `Version` parameter must name the API version this endpoint speaks.
    pub fn check_version(&self, expected: &str) -> Result<(), ApiError> {
        match self.get("Version") {
            Some(v) if v == expected => Ok(()),
            Some(v) => Err(ApiError::NoSuchVersion(format!(
                "The requested version ({v}) of service is not valid; this endpoint speaks {expected}."
            ))),
            None => Err(ApiError::NoSuchVersion(format!(
                "The request has no Version parameter; this endpoint speaks {expected}."
            ))),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A required parameter; `field` is its lowerCamel name for messages.
    pub fn required(&self, name: &str, field: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| invalid(None, field, "Member must not be null"))
    }

    /// Whether any parameter starts with `prefix` (e.g. `Tags.`).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.map.keys().any(|k| k.starts_with(prefix))
    }

    /// A list parameter: `NAME.member.1[.FIELD]`, `NAME.member.2[.FIELD]`, …
    /// Numbering must start at 1 and have no gaps.
    pub fn members(&self, name: &str, field: Option<&str>) -> Result<Vec<String>, ApiError> {
        let prefix = format!("{name}.member.");
        // Members, not parameters: `Tags.member.1.Key` and `.Value` are one.
        let count = self
            .map
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('.').next().unwrap_or(rest))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let mut out = Vec::new();
        for n in 1..=count {
            let key = match field {
                Some(f) => format!("{prefix}{n}.{f}"),
                None => format!("{prefix}{n}"),
            };
            match self.get(&key) {
                Some(v) => out.push(v.to_string()),
                None => break,
            }
        }
        if out.len() != count {
            return Err(ApiError::MalformedQueryString(format!(
                "The list parameter {name} is not numbered 1, 2, 3…"
            )));
        }
        Ok(out)
    }
}
