//! The classification table in `tests/data/classification.txt`: one request
//! line per S3 operation, with the operation and IAM checks it must yield or
//! the refusal it must meet. Adding a case is adding a line.

use http::{HeaderMap, HeaderName, Method};
use s3warden::auth::canonical::parse_query;
use s3warden::policy::Context;
use s3warden::s3::address::resolve;
use s3warden::s3::classify::{RequestView, classify};

struct Case {
    line: usize,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    expect: String,
}

fn cases() -> Vec<Case> {
    let text = include_str!("../data/classification.txt");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (request, expect) = line
            .split_once(" => ")
            .unwrap_or_else(|| panic!("line {}: no ' => '", i + 1));
        let mut parts = request.split(" | ");
        let (method, uri) = parts
            .next()
            .and_then(|r| r.split_once(' '))
            .unwrap_or_else(|| panic!("line {}: expected METHOD PATH", i + 1));
        let headers = parts
            .map(|h| {
                let (n, v) = h.split_once(": ").expect("header is 'name: value'");
                (n.to_string(), v.to_string())
            })
            .collect();
        out.push(Case {
            line: i + 1,
            method: method.into(),
            uri: uri.into(),
            headers,
            expect: expect.trim().into(),
        });
    }
    out
}

fn outcome(case: &Case) -> String {
    let (path, query) = case.uri.split_once('?').unwrap_or((&case.uri, ""));
    let target = match resolve(None, path, &[]) {
        Ok(t) => t,
        Err(e) => return format!("error {}", variant(&format!("{e:?}"))),
    };
    let query = parse_query(query).expect("query is UTF-8");
    let mut headers = HeaderMap::new();
    for (n, v) in &case.headers {
        headers.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    let view = RequestView {
        method: &method,
        target: &target,
        query: &query,
        headers: &headers,
    };
    match classify(&view, &mut Context::new()) {
        Err(e) => format!("error {}", variant(&format!("{e:?}"))),
        Ok(c) => {
            let checks: Vec<String> = c
                .checks
                .iter()
                .map(|k| format!("{} {}", k.action, k.resource))
                .collect();
            format!("{} | {}", c.operation.name(), checks.join("; "))
                .trim()
                .to_string()
        }
    }
}

fn variant(debug: &str) -> &str {
    debug.split(['(', ' ', '{']).next().unwrap_or(debug)
}

#[test]
fn classification_table() {
    let cases = cases();
    assert!(cases.len() >= 100, "the table lost cases: {}", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = outcome(c);
            (got != c.expect.trim_end_matches(" |").trim() && got != c.expect).then(|| {
                format!(
                    "line {}: {} {}\n  expected: {}\n  got:      {got}",
                    c.line, c.method, c.uri, c.expect
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
