//! One Key Vault client per vault, all sharing one credential chain, built
//! on first use so files without `azure_kv` entries pay nothing.
//!
//! Clients are shared by entries whose deadlines differ, so nothing here
//! carries a timeout: each decrypt is bounded by its own deadline (see
//! `deadline`).

use std::sync::{Arc, OnceLock};

use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, HttpClient, RetryOptions, Transport, Url,
};
use azure_core::time::Duration;
use azure_security_keyvault_keys::models::{EncryptionAlgorithm, KeyOperationParameters};
use azure_security_keyvault_keys::models::{KeyClientEncryptOptions, KeyClientGetKeyOptions};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceExt as _};
use rsops_backend_common::ClientCache;
use rsops_keysource::Unwrapped;

use crate::chain::Chain;
use crate::entry::{AzureEntry, AzureKey};
use crate::errors::{AzureError, Op};

/// The credential chain and the clients built so far, by vault URL.
#[derive(Default)]
pub(crate) struct Vaults {
    chain: OnceLock<Arc<Chain>>,
    clients: ClientCache<String, Arc<KeyClient>>,
}

impl Vaults {
    /// The client for `vault_url`, built now if this is its first use. A
    /// failed build is not kept: the next entry tries again.
    pub(crate) async fn get(&self, vault_url: &str) -> Result<Vault, AzureError> {
        let chain = self
            .chain
            .get_or_init(|| Arc::new(Chain::from_env()))
            .clone();
        let client = self
            .clients
            .get_or_try_build(&vault_url.to_string(), || async {
                build(vault_url, chain).map(Arc::new)
            })
            .await?;
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

/// Client options with one quick retry (throttling, 5xx, dropped
/// connections) instead of the SDK's many, and an HTTP client without
/// connect or read timeouts: the SDK's own (20 s connect, 60 s read) and
/// any fixed ones would not follow the deadline, which bounds the whole
/// attempt, retry included. Falls back to the SDK's client if ours cannot
/// be built.
pub(crate) fn few_retries() -> ClientOptions {
    let transport = reqwest::Client::builder()
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
            // Counted from the end of the first try, so with one retry it
            // never cuts anything; set far out so it is plainly no limit.
            max_total_elapsed: Duration::hours(1),
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
    pub(crate) async fn decrypt(&self, key: &AzureEntry) -> Result<Unwrapped, AzureError> {
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
            op: Op::Decrypt,
        };
        let response = self
            .client
            .decrypt(&key.name, &key.version, body, None)
            .await
            .map_err(call)?;
        let result = response.into_model().map_err(call)?;
        match result.result {
            // The plaintext moves into the secret: no copy is left behind.
            Some(plain) => Ok(Unwrapped::new(plain)),
            None => Err(AzureError::EmptyResult),
        }
    }

    /// Encrypts `secret` with RSA-OAEP-256 under `key`, as the reference
    /// does, first resolving the key's latest version (a GET on the key)
    /// when none is given. Returns the version used and the ciphertext.
    pub(crate) async fn encrypt(
        &self,
        key: &AzureKey,
        secret: &[u8],
    ) -> Result<(String, Vec<u8>), AzureError> {
        let call = |op| {
            move |e| AzureError::Call {
                error: e,
                vault: self.url.clone(),
                op,
            }
        };
        let version = match &key.version {
            Some(version) => version.clone(),
            None => {
                let options = KeyClientGetKeyOptions {
                    key_version: None,
                    ..Default::default()
                };
                let response = self
                    .client
                    .get_key(&key.name, Some(options))
                    .await
                    .map_err(call(Op::Get))?;
                let model = response.into_model().map_err(call(Op::Get))?;
                model
                    .resource_id()
                    .ok()
                    .and_then(|id| id.version)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| AzureError::NoVersion(key.describe()))?
            }
        };
        let parameters = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(secret.to_vec()),
            ..Default::default()
        };
        let body = parameters
            .try_into()
            .map_err(|e: azure_core::Error| AzureError::Setup(e.to_string()))?;
        let options = KeyClientEncryptOptions {
            key_version: Some(version.clone()),
            ..Default::default()
        };
        let response = self
            .client
            .encrypt(&key.name, body, Some(options))
            .await
            .map_err(call(Op::Encrypt))?;
        let result = response.into_model().map_err(call(Op::Encrypt))?;
        match result.result {
            Some(ciphertext) if !ciphertext.is_empty() => Ok((version, ciphertext)),
            _ => Err(AzureError::EmptyCiphertext),
        }
    }
}
