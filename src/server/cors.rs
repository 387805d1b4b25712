//! CORS for browsers, as S3 does it for a bucket with a CORS configuration:
//! preflight `OPTIONS` requests are answered from the `[cors]` section
//! without authentication, and actual requests from an allowed origin get
//! the `Access-Control-*` headers on their response (errors included).

use http::{HeaderMap, HeaderValue, Method};

use crate::config::CorsConfig;
use crate::s3::S3Error;

/// `*` anywhere in an origin or header pattern matches any run of characters.
fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(value),
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len()
                && value[..pre.len()].eq_ignore_ascii_case(pre)
                && value[value.len() - post.len()..].eq_ignore_ascii_case(post)
        }
    }
}

fn origin_allowed(cfg: &CorsConfig, origin: &str) -> bool {
    cfg.allowed_origins.iter().any(|p| wildcard(p, origin))
}

fn method_allowed(cfg: &CorsConfig, method: &str) -> bool {
    cfg.allowed_methods
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

fn header_allowed(cfg: &CorsConfig, header: &str) -> bool {
    cfg.allowed_headers.iter().any(|p| wildcard(p, header))
}

/// The `Access-Control-Allow-Origin` value: `*` when the rule allows any
/// origin, else the request's own origin.
fn allow_origin(cfg: &CorsConfig, origin: &str) -> String {
    if cfg.allowed_origins.iter().any(|o| o == "*") {
        "*".to_string()
    } else {
        origin.to_string()
    }
}

fn insert(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn refused() -> S3Error {
    S3Error::new(
        "AccessForbidden",
        http::StatusCode::FORBIDDEN,
        "CORSResponse: This CORS request is not allowed. This is usually because the evaluation of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    )
}

/// Answers a preflight: the headers of a 200 response, or S3's refusal.
pub fn preflight(cfg: Option<&CorsConfig>, req: &HeaderMap) -> Result<HeaderMap, S3Error> {
    let get = |n: &str| req.get(n).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(method)) = (get("origin"), get("access-control-request-method")) else {
        return Err(S3Error::new(
            "BadRequest",
            http::StatusCode::BAD_REQUEST,
            "Insufficient information. Origin request header needed.",
        ));
    };
    let Some(cfg) = cfg else {
        return Err(refused());
    };
    let requested: Vec<&str> = get("access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !origin_allowed(cfg, origin)
        || !method_allowed(cfg, method)
        || !requested.iter().all(|h| header_allowed(cfg, h))
    {
        return Err(refused());
    }
    let mut h = HeaderMap::new();
    insert(
        &mut h,
        "access-control-allow-origin",
        &allow_origin(cfg, origin),
    );
    insert(
        &mut h,
        "access-control-allow-methods",
        &cfg.allowed_methods.join(", "),
    );
    if !requested.is_empty() {
        insert(
            &mut h,
            "access-control-allow-headers",
            &requested.join(", "),
        );
    }
    if !cfg.expose_headers.is_empty() {
        insert(
            &mut h,
            "access-control-expose-headers",
            &cfg.expose_headers.join(", "),
        );
    }
    if let Some(age) = cfg.max_age_secs {
        insert(&mut h, "access-control-max-age", &age.to_string());
    }
    insert(
        &mut h,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
    Ok(h)
}

/// Adds CORS headers to a response to an actual request from an allowed
/// origin using an allowed method.
pub fn decorate(
    cfg: Option<&CorsConfig>,
    origin: Option<&str>,
    method: &Method,
    resp: &mut HeaderMap,
) {
    let (Some(cfg), Some(origin)) = (cfg, origin) else {
        return;
    };
    if !origin_allowed(cfg, origin) || !method_allowed(cfg, method.as_str()) {
        return;
    }
    insert(
        resp,
        "access-control-allow-origin",
        &allow_origin(cfg, origin),
    );
    insert(
        resp,
        "access-control-allow-methods",
        &cfg.allowed_methods.join(", "),
    );
    if !cfg.expose_headers.is_empty() {
        insert(
            resp,
            "access-control-expose-headers",
            &cfg.expose_headers.join(", "),
        );
    }
    resp.append("vary", HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CorsConfig {
        CorsConfig {
            allowed_origins: vec![
                "http://127.0.0.1:8000".into(),
                "https://*.example.com".into(),
            ],
            allowed_methods: vec!["GET".into(), "POST".into()],
            allowed_headers: vec!["content-type".into(), "x-amz-*".into()],
            expose_headers: vec!["ETag".into()],
            max_age_secs: Some(600),
        }
    }

    fn req(origin: &str, method: &str, headers: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("origin", origin.parse().unwrap());
        h.insert("access-control-request-method", method.parse().unwrap());
        if let Some(x) = headers {
            h.insert("access-control-request-headers", x.parse().unwrap());
        }
        h
    }

    #[test]
    fn preflight_allows_configured_origins_methods_and_headers() {
        let h = preflight(
            Some(&cfg()),
            &req(
                "https://app.example.com",
                "POST",
                Some("Content-Type, x-amz-date"),
            ),
        )
        .unwrap();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(
            h["access-control-allow-headers"],
            "Content-Type, x-amz-date"
        );
        assert_eq!(h["access-control-max-age"], "600");
        assert_eq!(h["access-control-expose-headers"], "ETag");
    }

    #[test]
    fn preflight_refuses_anything_else() {
        for r in [
            req("http://evil.test", "POST", None),
            req("http://127.0.0.1:8000", "DELETE", None),
            req("http://127.0.0.1:8000", "POST", Some("authorization")),
        ] {
            assert_eq!(
                preflight(Some(&cfg()), &r).unwrap_err().code,
                "AccessForbidden"
            );
        }
        assert_eq!(
            preflight(None, &req("http://127.0.0.1:8000", "POST", None))
                .unwrap_err()
                .code,
            "AccessForbidden"
        );
        assert_eq!(
            preflight(Some(&cfg()), &HeaderMap::new()).unwrap_err().code,
            "BadRequest"
        );
    }

    #[test]
    fn actual_responses_are_decorated_only_for_allowed_origins() {
        let mut h = HeaderMap::new();
        decorate(
            Some(&cfg()),
            Some("http://127.0.0.1:8000"),
            &Method::POST,
            &mut h,
        );
        assert_eq!(h["access-control-allow-origin"], "http://127.0.0.1:8000");
        let mut h = HeaderMap::new();
        decorate(
            Some(&cfg()),
            Some("http://evil.test"),
            &Method::POST,
            &mut h,
        );
        assert!(h.is_empty());
        let mut h = HeaderMap::new();
        decorate(None, Some("http://127.0.0.1:8000"), &Method::POST, &mut h);
        assert!(h.is_empty());
    }
}
