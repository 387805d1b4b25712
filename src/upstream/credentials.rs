//! The proxy's own upstream credentials: static keys from the config, the
//! standard AWS credential chain, or STS AssumeRole on top of the chain.
//! Temporary credentials are refreshed before they expire, off the hot path
//! for every request but the one that finds them stale.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use super::UpstreamError;
use crate::config::UpstreamConfig;

/// Refresh this long before expiry so a request never signs with a key that
/// expires in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

pub enum UpstreamCredentials {
    Static(Credentials),
    Refreshing(Refreshing),
}

pub struct Refreshing {
    provider: SharedCredentialsProvider,
    cached: ArcSwapOption<Credentials>,
    refresh: tokio::sync::Mutex<()>,
}

fn fresh(c: &Credentials) -> bool {
    match c.expiry() {
        None => true,
        Some(exp) => exp > SystemTime::now() + REFRESH_MARGIN,
    }
}

impl Refreshing {
    async fn get(&self) -> Result<Credentials, UpstreamError> {
        if let Some(c) = self.cached.load_full()
            && fresh(&c)
        {
            return Ok((*c).clone());
        }
        let _guard = self.refresh.lock().await;
        if let Some(c) = self.cached.load_full()
            && fresh(&c)
        {
            return Ok((*c).clone());
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| UpstreamError::Credentials(e.to_string()))?;
        self.cached.store(Some(Arc::new(c.clone())));
        Ok(c)
    }
}

impl UpstreamCredentials {
    /// Static keys for a known secret (the embedded store, or tests).
    pub fn fixed(access_key_id: &str, secret: &str) -> Self {
        UpstreamCredentials::Static(Credentials::new(
            access_key_id,
            secret,
            None,
            None,
            "s3warden-config",
        ))
    }

    /// From the `[upstream]` section: static keys if given, otherwise the
    /// standard chain, wrapped in AssumeRole when `assume_role_arn` is set.
    pub async fn from_config(cfg: &UpstreamConfig) -> Self {
        let base: Option<SharedCredentialsProvider> =
            match (&cfg.access_key_id, &cfg.secret_access_key) {
                (Some(id), Some(secret)) => {
                    if cfg.assume_role_arn.is_none() {
                        return UpstreamCredentials::fixed(id, secret);
                    }
                    Some(SharedCredentialsProvider::new(Credentials::new(
                        id.as_str(),
                        secret.as_str(),
                        None,
                        None,
                        "s3warden-config",
                    )))
                }
                _ => None,
            };
        let region = aws_config::Region::new(cfg.region.clone());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(region);
        if let Some(p) = base {
            loader = loader.credentials_provider(p);
        }
        let sdk_config = loader.load().await;
        let provider = match &cfg.assume_role_arn {
            Some(arn) => SharedCredentialsProvider::new(
                aws_config::sts::AssumeRoleProvider::builder(arn.as_str())
                    .session_name("s3warden")
                    .configure(&sdk_config)
                    .build()
                    .await,
            ),
            None => match sdk_config.credentials_provider() {
                Some(p) => p,
                None => SharedCredentialsProvider::new(
                    aws_config::default_provider::credentials::default_provider().await,
                ),
            },
        };
        UpstreamCredentials::Refreshing(Refreshing {
            provider,
            cached: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn get(&self) -> Result<Credentials, UpstreamError> {
        match self {
            UpstreamCredentials::Static(c) => Ok(c.clone()),
            UpstreamCredentials::Refreshing(r) => r.get().await,
        }
    }
}
