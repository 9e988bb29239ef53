//! KMS clients: built on first use, one per (region, profile, role), reused
//! for every entry that needs the same one; and the timeouts of each call,
//! which come from that call's deadline.
//!
//! Building a client reads the shared config files and sets up credential
//! providers (AssumeRole, SSO…) whose credentials are cached inside the
//! client, so sharing it means one AssumeRole per role and run.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::SharedCredentialsProvider;
use aws_sdk_kms::Client;
use rsops_backend_common::ClientCache;
use rsops_keysource::Deadline;

/// What makes two entries need different clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    /// Region from the key's ARN.
    pub region: String,
    /// `aws_profile` of the entry.
    pub profile: Option<String>,
    /// `role` of the entry.
    pub role: Option<String>,
}

/// The clients built so far, by what distinguishes them.
pub(crate) type Clients = ClientCache<ClientKey, Client>;

/// The time a call gets when its caller set no deadline (a library caller
/// outside the orchestrator): the orchestrator's default `--timeout`.
const WITHOUT_DEADLINE: Duration = Duration::from_secs(30);

/// How far past the deadline the SDK's own timeouts are set. They are only
/// a backstop: the orchestrator cuts the attempt at the deadline and
/// reports it as "timed out after N ms", and when both are due at once the
/// SDK's error would win the race and hide that.
const PAST_THE_DEADLINE: Duration = Duration::from_secs(1);

/// The timeouts of one Decrypt call, applied per call because the client is
/// shared by entries with different deadlines: nothing gives up before the
/// deadline, so `--key-timeout 30s` gives a slow KMS 30 s.
///
/// The operation and attempt timeouts bound everything the call does,
/// including the credential providers' own calls (STS, SSO), which run
/// inside the attempt. Connect and read timeouts are left to them: the
/// SDK's HTTP client keeps one connection pool per (connect, read) pair, so
/// per-call values would give every entry a pool (and a TLS handshake) of
/// its own, and a derived value could not end sooner than the attempt
/// anyway.
pub(crate) fn call_timeouts(deadline: Deadline) -> TimeoutConfig {
    let budget = deadline.remaining_or(WITHOUT_DEADLINE) + PAST_THE_DEADLINE;
    TimeoutConfig::builder()
        .disable_connect_timeout()
        .disable_read_timeout()
        .operation_attempt_timeout(budget)
        .operation_timeout(budget)
        .build()
}

/// The timeouts a client is built with: none. The client, and the STS and
/// SSO clients of its credential providers, outlive the entry whose
/// deadline built them; the SDK's defaults (a 3.1 s connect timeout) would
/// give up before a longer deadline. Every call sets [`call_timeouts`].
fn client_timeouts() -> TimeoutConfig {
    TimeoutConfig::disabled()
}

/// At most one retry: a decrypt is interactive, and a quick failure
/// (connection refused, throttled) is worth one more try within the
/// deadline, not three.
fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(2)
}

/// Builds a client the way the reference configures its AWS session:
/// default sources, the region from the ARN, the entry's profile, and the
/// role assumed on top of whatever credentials those give.
pub(crate) async fn build(key: &ClientKey) -> Client {
    let region = Region::new(key.region.clone());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(client_timeouts())
        .retry_config(retries());
    if let Some(profile) = &key.profile {
        // As in the reference (Go SDK), a named profile supplies the
        // credentials even when AWS_ACCESS_KEY_ID is set; the Rust SDK's
        // default chain would prefer the environment.
        let provider_config = ProviderConfig::default()
            .with_region(Some(region.clone()))
            .with_timeout_config(client_timeouts())
            .with_retry_config(retries());
        let credentials = ProfileFileCredentialsProvider::builder()
            .profile_name(profile)
            .configure(&provider_config)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    let mut config = loader.load().await;
    if let Some(role) = &key.role {
        let assume = AssumeRoleProvider::builder(role)
            .session_name(crate::session::name())
            .configure(&config)
            .build()
            .await;
        config = config
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(assume))
            .build();
    }
    Client::new(&config)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn key(region: &str, profile: Option<&str>, role: Option<&str>) -> ClientKey {
        ClientKey {
            region: region.into(),
            profile: profile.map(Into::into),
            role: role.map(Into::into),
        }
    }

    async fn get(clients: &Clients, key: &ClientKey) -> Client {
        let built = clients
            .get_or_try_build(key, || async { Ok::<_, Infallible>(build(key).await) })
            .await;
        built.unwrap_or_else(|never| match never {})
    }

    #[tokio::test]
    async fn one_client_per_region_profile_and_role() {
        let clients = Clients::default();
        let role = Some("arn:aws:iam::000000000000:role/r");
        let eu = get(&clients, &key("eu-west-1", None, None)).await;
        assert_eq!(eu.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        get(&clients, &key("eu-west-1", None, None)).await;
        get(&clients, &key("us-east-1", None, None)).await;
        get(&clients, &key("us-east-1", None, role)).await;
        get(&clients, &key("us-east-1", Some("dev"), role)).await;
        get(&clients, &key("us-east-1", None, role)).await;
        assert_eq!(clients.len(), 4);
    }

    #[test]
    fn calls_get_the_whole_deadline_and_no_more_than_a_second_past_it() {
        let t = call_timeouts(Deadline::after(Duration::from_secs(30)));
        for limit in [t.operation_timeout(), t.operation_attempt_timeout()] {
            assert!(
                limit.is_some_and(|d| d > Duration::from_secs(30) && d <= Duration::from_secs(31)),
                "{limit:?}"
            );
        }
        assert_eq!((t.connect_timeout(), t.read_timeout()), (None, None));
        let short = call_timeouts(Deadline::after(Duration::from_secs(2)));
        assert!(short
            .operation_timeout()
            .is_some_and(|d| d <= Duration::from_secs(3)));
        let unbounded = call_timeouts(Deadline::NONE);
        assert_eq!(
            unbounded.operation_timeout(),
            Some(WITHOUT_DEADLINE + PAST_THE_DEADLINE)
        );
        assert_eq!(retries().max_attempts(), 2);
    }

    #[test]
    fn clients_carry_no_timeout_that_could_end_a_call_early() {
        let t = client_timeouts();
        assert!(!t.has_timeouts(), "{t:?}");
    }
}
