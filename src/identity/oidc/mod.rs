//! OpenID Connect federation: verifying a provider's ID tokens for
//! `AssumeRoleWithWebIdentity`. The provider's discovery document
//! (`https://HOST/PATH/.well-known/openid-configuration`) names its JWKS;
//! both are fetched over HTTPS only, trusting the system's roots plus
//! `[federation] ca_file`, with a timeout and a size limit. The key set is
//! cached per provider for `jwks_cache_secs`; a token naming a key id the
//! cache lacks triggers a refetch at most once per `jwks_refetch_secs`, so a
//! flood of made-up key ids cannot make s3warden hammer the provider.
//!
//! Token parsing and checking is in [`jwt`], free of I/O.

pub mod jwt;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use self::jwt::{Jwk, JwkSet, JwtError, Token, Verified};
use crate::config::FederationConfig;

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// A provider's `HOST/PATH` from its issuer URL: `https://` required, no
/// query, fragment or user info, a final `/` dropped. The error says why not.
pub fn provider_host_path(url: &str) -> Result<String, &'static str> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("Url must begin with https://")?;
    let rest = rest.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "?#@\\".contains(c))
    {
        return Err("Url is not a valid OpenID Connect issuer URL");
    }
    Ok(rest.to_string())
}

/// `arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`.
pub fn provider_arn(account: &str, host_path: &str) -> String {
    format!("arn:aws:iam::{account}:oidc-provider/{host_path}")
}

/// Why a token could not be accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FederationError {
    #[error(transparent)]
    Token(#[from] JwtError),
    /// The provider's discovery document or keys could not be had.
    #[error("{0}")]
    Communication(String),
}

#[derive(Default)]
struct Entry {
    keys: Option<Arc<Vec<Jwk>>>,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The token verifier with its HTTPS client and per-provider key cache.
pub struct Federation {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    entries: Mutex<HashMap<String, Entry>>,
    cache_for: Duration,
    refetch_after: Duration,
    /// How many key sets were fetched (for tests and metrics).
    fetches: std::sync::atomic::AtomicU64,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Federation {
    pub fn new(cfg: &FederationConfig) -> Result<Federation, String> {
        let tls = crate::upstream::tls_config(cfg.ca_file.as_deref())
            .map_err(|e| format!("`federation.ca_file`: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(FETCH_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Ok(Federation {
            client: Client::builder(TokioExecutor::new()).build(https),
            entries: Mutex::new(HashMap::new()),
            cache_for: Duration::from_secs(cfg.jwks_cache_secs),
            refetch_after: Duration::from_secs(cfg.jwks_refetch_secs),
            fetches: Default::default(),
        })
    }

    /// How many times a provider's keys were fetched.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Verifies a token for the provider `https://{host_path}` with these
    /// client ids, at `now` (Unix seconds).
    pub async fn verify(
        &self,
        token: &str,
        host_path: &str,
        client_ids: &[String],
        now: i64,
    ) -> Result<Verified, FederationError> {
        let token = Token::parse(token)?;
        let mut keys = self.keys(host_path, false).await?;
        if !token.has_key(&keys) {
            keys = self.keys(host_path, true).await?;
        }
        let key = token.select_key(&keys)?;
        token.verify_signature(key)?;
        Ok(token.check_claims(host_path, client_ids, now)?)
    }

    /// The provider's keys: cached while fresh; fetched when stale, absent,
    /// or (`unknown_kid`) when a token names a key the cache lacks — never
    /// more often than once per `jwks_refetch_secs`.
    async fn keys(
        &self,
        host_path: &str,
        unknown_kid: bool,
    ) -> Result<Arc<Vec<Jwk>>, FederationError> {
        let now = Instant::now();
        let cached = {
            let mut entries = self
                .entries
                .lock()
                .map_err(|_| FederationError::Communication("key cache poisoned".into()))?;
            let e = entries.entry(host_path.to_string()).or_default();
            let fresh = e
                .fetched
                .is_some_and(|t| now.duration_since(t) < self.cache_for);
            let may_fetch = e
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= self.refetch_after);
            let want = e.keys.is_none() || !fresh || unknown_kid;
            if want && may_fetch {
                e.last_attempt = Some(now);
                None
            } else {
                Some(e.keys.clone())
            }
        };
        match cached {
            Some(Some(keys)) => Ok(keys),
            Some(None) => Err(FederationError::Communication(format!(
                "the keys of https://{host_path} could not be fetched recently; not retrying yet"
            ))),
            None => {
                self.fetches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let fetched = self.fetch(host_path).await;
                let mut entries = self
                    .entries
                    .lock()
                    .map_err(|_| FederationError::Communication("key cache poisoned".into()))?;
                let e = entries.entry(host_path.to_string()).or_default();
                match fetched {
                    Ok(keys) => {
                        let keys = Arc::new(keys);
                        e.keys = Some(keys.clone());
                        e.fetched = Some(Instant::now());
                        Ok(keys)
                    }
                    Err(why) => {
                        tracing::warn!(provider = %host_path, error = %why, "OpenID provider keys not fetched");
                        // Keys fetched before still verify what they signed.
                        match (&e.keys, unknown_kid) {
                            (Some(k), true) => Ok(k.clone()),
                            _ => Err(FederationError::Communication(why)),
                        }
                    }
                }
            }
        }
    }

    async fn fetch(&self, host_path: &str) -> Result<Vec<Jwk>, String> {
        let discovery_url = format!("https://{host_path}/.well-known/openid-configuration");
        let d: Discovery = serde_json::from_slice(&self.get(&discovery_url).await?)
            .map_err(|e| format!("{discovery_url}: not a discovery document: {e}"))?;
        if !jwt::issuer_matches(&d.issuer, host_path) {
            return Err(format!(
                "{discovery_url}: its issuer {:?} is not the provider's",
                d.issuer
            ));
        }
        if !d.jwks_uri.starts_with("https://") {
            return Err(format!("{discovery_url}: jwks_uri is not https"));
        }
        let set: JwkSet = serde_json::from_slice(&self.get(&d.jwks_uri).await?)
            .map_err(|e| format!("{}: not a JWK set: {e}", d.jwks_uri))?;
        Ok(set.keys)
    }

    async fn get(&self, url: &str) -> Result<Bytes, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let req = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if resp.status() != http::StatusCode::OK {
                return Err(format!("{url}: HTTP {}", resp.status()));
            }
            Limited::new(resp.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| format!("{url}: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| format!("{url}: no answer within {FETCH_TIMEOUT:?}"))?
    }
}
