//! One KMS client per run, built on first use: building it reads the
//! credentials (possibly a file, possibly nothing yet on the network), and
//! files without `gcp_kms` entries should not pay for it. Timeouts are not
//! part of the client: the entries sharing it have different deadlines, so
//! each call gets its own (see [`call_options`]).

use std::time::Duration;

use google_cloud_gax::exponential_backoff::{ExponentialBackoff, ExponentialBackoffBuilder};
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_kms_v1::client::KeyManagementService;
use rsops_backend_common::{cause_chain, ClientCache};
use rsops_keysource::Deadline;

use crate::credentials::{self, Source};
use crate::errors::GcpError;

/// Overrides the service address (`https://host[:port]`, or `host:port` as
/// the reference's gRPC client takes it).
pub(crate) const ENDPOINT_ENV: &str = "SOPS_GCP_KMS_ENDPOINT";
/// Selects a sovereign cloud's domain instead of `googleapis.com`.
pub(crate) const UNIVERSE_DOMAIN_ENV: &str = "SOPS_GCP_KMS_UNIVERSE_DOMAIN";

/// One retry, only for errors AIP-194 calls safe to retry (UNAVAILABLE).
const MAX_ATTEMPTS: u32 = 2;

/// The time a call gets when its caller set no deadline (a library caller
/// outside the orchestrator): the orchestrator's default `--timeout`.
const WITHOUT_DEADLINE: Duration = Duration::from_secs(30);

/// How far past the deadline the SDK's own timeouts are set. They are only
/// a backstop: the orchestrator cuts the attempt at the deadline and
/// reports it as "timed out after N ms", and when both are due at once the
/// SDK's error would win the race and hide that.
const PAST_THE_DEADLINE: Duration = Duration::from_secs(1);

/// A built client and the credentials it uses.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) kms: KeyManagementService,
    pub(crate) source: Source,
    pub(crate) endpoint: String,
}

/// The lazily built client, shared by every entry: the environment it is
/// built from is the same for all of them, hence the `()` key. A failed
/// build is not remembered, so the next entry reports its own error.
pub(crate) type Clients = ClientCache<(), Client>;

/// The client, built now if this is the first call.
pub(crate) async fn get(clients: &Clients) -> Result<Client, GcpError> {
    clients.get_or_try_build(&(), build).await
}

/// The limits of one Decrypt call, from its deadline: an attempt may take
/// all the time left (a KMS answering after 15 s succeeds under
/// `--key-timeout 30s`), and a retry happens only while time is left. The
/// SDK applies the smaller of the attempt timeout and the retry loop's
/// remaining time to each HTTP request, connecting included.
pub(crate) fn call_options(deadline: Deadline) -> CallOptions {
    let budget = deadline.remaining_or(WITHOUT_DEADLINE) + PAST_THE_DEADLINE;
    CallOptions {
        attempt_timeout: budget,
        retry_time_limit: budget,
    }
}

/// Per-call limits, applied with [`CallOptions::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallOptions {
    /// The longest one HTTP attempt may take.
    pub(crate) attempt_timeout: Duration,
    /// After this long no retry is started.
    pub(crate) retry_time_limit: Duration,
}

impl CallOptions {
    /// Sets these limits, and the retry policy they bound, on a request.
    pub(crate) fn apply<R: RequestOptionsBuilder>(self, request: R) -> R {
        request
            .with_retry_policy(
                Aip194Strict
                    .with_attempt_limit(MAX_ATTEMPTS)
                    .with_time_limit(self.retry_time_limit),
            )
            .with_attempt_timeout(self.attempt_timeout)
    }
}

/// Short pauses between attempts: a decrypt is interactive.
fn backoff() -> ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_delay(Duration::from_millis(200))
        .with_maximum_delay(Duration::from_secs(1))
        .clamp()
}

async fn build() -> Result<Client, GcpError> {
    let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty());
    let universe = std::env::var(UNIVERSE_DOMAIN_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    // As in the reference, an explicit endpoint wins over the universe.
    let universe = if endpoint.is_some() { None } else { universe };
    let (credentials, source) = credentials::from_env(universe.as_deref())?;
    let mut builder = KeyManagementService::builder()
        .with_credentials(credentials)
        .with_backoff_policy(backoff());
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
        .map_err(|e| GcpError::Setup(cause_chain(&e, &[])))?;
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
    use super::*;

    #[test]
    fn bare_addresses_become_https_urls() {
        assert_eq!(endpoint_url("kms.example:443"), "https://kms.example:443");
        assert_eq!(endpoint_url("http://127.0.0.1:1/"), "http://127.0.0.1:1");
    }

    /// The limits tests/it/gcp.rs relies on: a 15 s answer fits in a 30 s
    /// deadline, and at the default 10 s the orchestrator's cut comes first.
    #[test]
    fn calls_get_the_whole_deadline_and_no_more_than_a_second_past_it() {
        for secs in [2, 10, 30] {
            let limit = Duration::from_secs(secs);
            let options = call_options(Deadline::after(limit));
            for d in [options.attempt_timeout, options.retry_time_limit] {
                assert!(
                    d > limit && d <= limit + PAST_THE_DEADLINE,
                    "{secs} s: {d:?}"
                );
            }
        }
        assert_eq!(
            call_options(Deadline::NONE).attempt_timeout,
            WITHOUT_DEADLINE + PAST_THE_DEADLINE
        );
    }
}
