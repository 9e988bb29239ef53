//! One Key Vault client per vault, all sharing one credential chain, built
//! on first use so files without `azure_kv` entries pay nothing.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, HttpClient, RetryOptions, Transport, Url,
};
use azure_core::time::Duration;
use azure_security_keyvault_keys::models::{EncryptionAlgorithm, KeyOperationParameters};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use rsops_keysource::DataKey;
use tokio::sync::Mutex;

use crate::chain::Chain;
use crate::entry::AzureEntry;
use crate::errors::AzureError;

/// The clients built so far, by vault URL.
#[derive(Default)]
pub(crate) struct ClientCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    chain: Option<Arc<Chain>>,
    clients: HashMap<String, Arc<KeyClient>>,
}

impl ClientCache {
    /// The client for `vault_url`, built now if this is its first use.
    pub(crate) async fn get(&self, vault_url: &str) -> Result<Vault, AzureError> {
        let mut state = self.state.lock().await;
        if let Some(client) = state.clients.get(vault_url) {
            return Ok(Vault {
                client: client.clone(),
                url: vault_url.to_string(),
            });
        }
        let chain = state
            .chain
            .get_or_insert_with(|| Arc::new(Chain::from_env()))
            .clone();
        let client = Arc::new(build(vault_url, chain)?);
        state.clients.insert(vault_url.to_string(), client.clone());
        Ok(Vault {
            client,
            url: vault_url.to_string(),
        })
    }
}

fn build(vault_url: &str, chain: Arc<Chain>) -> Result<KeyClient, AzureError> {
    Url::parse(vault_url).map_err(|_| AzureError::BadVaultUrl)?;
    // The SDK refuses a challenge whose resource is not a parent domain of
    // the vault's host, so a rogue `vault_url` cannot collect a Key Vault
    // token. Always on: the tests serve their vault under the resource too.
    let options = KeyClientOptions {
        client_options: few_retries(),
        verify_challenge_resource: Some(true),
        ..Default::default()
    };
    KeyClient::new(vault_url, chain, Some(options)).map_err(|e| AzureError::Setup(e.to_string()))
}

/// How long to wait for a TCP/TLS connection to a vault or token endpoint.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// How long a response may stall; under the orchestrator's deadline so a
/// retry still fits.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Client options with one quick retry (throttling, 5xx, dropped
/// connections) instead of the SDK's many, and short timeouts: the
/// orchestrator's deadline bounds the whole attempt, and a long retry loop
/// would only hide the cause. Falls back to the SDK's client if ours cannot
/// be built.
pub(crate) fn few_retries() -> ClientOptions {
    let transport = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        // Key Vault and Entra ID do not redirect; a redirect would carry
        // the request (and its token) elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
        .map(|client| Transport::new(Arc::new(client) as Arc<dyn HttpClient>));
    ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: Duration::milliseconds(200),
            max_retries: 1,
            max_total_elapsed: Duration::seconds(8),
            max_delay: Duration::seconds(1),
        }),
        transport,
        ..Default::default()
    }
}

/// A vault's client, ready to decrypt.
pub(crate) struct Vault {
    client: Arc<KeyClient>,
    url: String,
}

impl Vault {
    /// Decrypts the entry's data key with RSA-OAEP-256, as the reference
    /// encrypted it.
    pub(crate) async fn decrypt(&self, key: &AzureEntry) -> Result<DataKey, AzureError> {
        let parameters = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(key.ciphertext.clone()),
            ..Default::default()
        };
        let body = parameters
            .try_into()
            .map_err(|e: azure_core::Error| AzureError::Setup(e.to_string()))?;
        let call = |e| AzureError::Call {
            error: e,
            vault: self.url.clone(),
        };
        let response = self
            .client
            .decrypt(&key.name, &key.version, body, None)
            .await
            .map_err(call)?;
        let result = response.into_model().map_err(call)?;
        match result.result {
            Some(plain) => Ok(DataKey::new(plain)),
            None => Err(AzureError::EmptyResult),
        }
    }
}
