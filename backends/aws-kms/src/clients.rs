//! KMS clients: built on first use, one per (region, profile, role), reused
//! for every entry that needs the same one.
//!
//! Building a client reads the shared config files and sets up credential
//! providers (AssumeRole, SSO…) whose credentials are cached inside the
//! client, so sharing it means one AssumeRole per role and run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::SharedCredentialsProvider;
use aws_sdk_kms::Client;
use tokio::sync::OnceCell;

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

/// The clients built so far.
#[derive(Default)]
pub(crate) struct Clients {
    cells: Mutex<HashMap<ClientKey, Arc<OnceCell<Client>>>>,
}

impl Clients {
    /// The client for `key`, built now if this is its first use.
    ///
    /// Concurrent callers wait for one build; if the building future is
    /// dropped (a deadline), the next caller builds instead.
    pub async fn get(&self, key: &ClientKey) -> Client {
        let cell = {
            // A poisoned map is still a valid map: nothing panics while
            // holding the lock, and the worst case is a rebuilt client.
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(cells.entry(key.clone()).or_default())
        };
        cell.get_or_init(|| build(key)).await.clone()
    }

    /// How many clients were asked for so far.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Short timeouts and at most one retry: a decrypt is interactive, and the
/// caller puts its own deadline around the whole attempt. The total stays
/// under that deadline's 10 s default, so a silent endpoint is reported as
/// such rather than as a bare timeout.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(4))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(9))
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(2)
}

/// Builds a client the way the reference configures its AWS session:
/// default sources, the region from the ARN, the entry's profile, and the
/// role assumed on top of whatever credentials those give.
async fn build(key: &ClientKey) -> Client {
    let region = Region::new(key.region.clone());
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts())
        .retry_config(retries());
    if let Some(profile) = &key.profile {
        // As in the reference (Go SDK), a named profile supplies the
        // credentials even when AWS_ACCESS_KEY_ID is set; the Rust SDK's
        // default chain would prefer the environment.
        let provider_config = ProviderConfig::default()
            .with_region(Some(region.clone()))
            .with_timeout_config(timeouts())
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
    use super::*;

    fn key(region: &str, profile: Option<&str>, role: Option<&str>) -> ClientKey {
        ClientKey {
            region: region.into(),
            profile: profile.map(Into::into),
            role: role.map(Into::into),
        }
    }

    #[tokio::test]
    async fn one_client_per_region_profile_and_role() {
        let clients = Clients::default();
        let role = Some("arn:aws:iam::000000000000:role/r");
        let eu = clients.get(&key("eu-west-1", None, None)).await;
        assert_eq!(eu.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        clients.get(&key("eu-west-1", None, None)).await;
        clients.get(&key("us-east-1", None, None)).await;
        clients.get(&key("us-east-1", None, role)).await;
        clients.get(&key("us-east-1", Some("dev"), role)).await;
        clients.get(&key("us-east-1", None, role)).await;
        let cells = clients.cells.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(cells.len(), 4);
        assert!(cells.values().all(|cell| cell.initialized()));
    }

    #[test]
    fn calls_are_bounded() {
        let t = timeouts();
        assert!(t
            .connect_timeout()
            .is_some_and(|d| d <= Duration::from_secs(5)));
        assert!(t
            .operation_timeout()
            .is_some_and(|d| d <= Duration::from_secs(10)));
        assert_eq!(retries().max_attempts(), 2);
    }
}
