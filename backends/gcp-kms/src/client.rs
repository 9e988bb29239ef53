//! One KMS client per run, built on first use: building it reads the
//! credentials (possibly a file, possibly nothing yet on the network), and
//! files without `gcp_kms` entries should not pay for it.

use std::time::Duration;

use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_kms_v1::client::KeyManagementService;
use tokio::sync::Mutex;

use crate::credentials::{self, Source};
use crate::errors::GcpError;

/// Overrides the service address (`https://host[:port]`, or `host:port` as
/// the reference's gRPC client takes it).
pub(crate) const ENDPOINT_ENV: &str = "SOPS_GCP_KMS_ENDPOINT";
/// Selects a sovereign cloud's domain instead of `googleapis.com`.
pub(crate) const UNIVERSE_DOMAIN_ENV: &str = "SOPS_GCP_KMS_UNIVERSE_DOMAIN";

/// Long enough for a loaded KMS, short enough that a retry still fits in
/// the orchestrator's per-attempt deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// One retry, only for errors AIP-194 calls safe to retry (UNAVAILABLE).
const MAX_ATTEMPTS: u32 = 2;

/// A built client and the credentials it uses.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) kms: KeyManagementService,
    pub(crate) source: Source,
    pub(crate) endpoint: String,
}

/// The lazily built client, shared by every entry.
#[derive(Default)]
pub(crate) struct ClientCache {
    client: Mutex<Option<Client>>,
}

impl ClientCache {
    /// The client, built now if this is the first call. A failed build is
    /// not remembered, so the next entry reports its own error.
    pub(crate) async fn get(&self) -> Result<Client, GcpError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = build().await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

async fn build() -> Result<Client, GcpError> {
    let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty());
    let universe = std::env::var(UNIVERSE_DOMAIN_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    // As in the reference, an explicit endpoint wins over the universe.
    let universe = if endpoint.is_some() { None } else { universe };
    let (credentials, source) = credentials::from_env(universe.as_deref())?;
    let backoff = ExponentialBackoffBuilder::new()
        .with_initial_delay(Duration::from_millis(200))
        .with_maximum_delay(Duration::from_secs(1))
        .clamp();
    let mut builder = KeyManagementService::builder()
        .with_credentials(credentials)
        .with_retry_policy(
            Aip194Strict
                .with_attempt_limit(MAX_ATTEMPTS)
                .with_time_limit(ATTEMPT_TIMEOUT * MAX_ATTEMPTS),
        )
        .with_backoff_policy(backoff)
        .with_attempt_timeout(ATTEMPT_TIMEOUT);
    let shown = match (&endpoint, &universe) {
        (Some(endpoint), _) => {
            let url = endpoint_url(endpoint);
            builder = builder.with_endpoint(url.clone());
            url
        }
        (None, Some(domain)) => {
            builder = builder.with_universe_domain(domain.clone());
            format!("https://cloudkms.{domain}")
        }
        (None, None) => "https://cloudkms.googleapis.com".to_string(),
    };
    let kms = builder
        .build()
        .await
        .map_err(|e| GcpError::Setup(e.to_string()))?;
    Ok(Client {
        kms,
        source,
        endpoint: shown,
    })
}

/// The REST client needs a URL; the reference's gRPC client took
/// `host:port`, so a bare address means HTTPS to it.
fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", endpoint.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn bare_addresses_become_https_urls() {
        assert_eq!(endpoint_url("kms.example:443"), "https://kms.example:443");
        assert_eq!(endpoint_url("http://127.0.0.1:1/"), "http://127.0.0.1:1");
    }
}
