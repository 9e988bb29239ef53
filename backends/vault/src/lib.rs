//! HashiCorp Vault / OpenBao transit key source: unwraps `sops.hc_vault`
//! entries (`vault_address`, `engine_path`, `key_name`, `enc` =
//! `vault:v<N>:…`) with a transit decrypt at
//! `{vault_address}/v1/{engine_path}/decrypt/{key_name}`, as the reference
//! `sops` does, and base64-decodes the plaintext into the data key.
//!
//! What is read, as the reference's Vault client reads it:
//! - the server: the entry's `vault_address` (it wins over `VAULT_ADDR`);
//! - the token: `VAULT_TOKEN`, else `~/.vault-token` (written by
//!   `vault login` / `bao login`);
//! - `VAULT_NAMESPACE`; `VAULT_CACERT` / `VAULT_CAPATH` (trusted instead of
//!   the system's CAs) and `VAULT_SKIP_VERIFY`;
//! - `SOPS_HC_VAULT_ALLOWLIST`: the addresses the token may be sent to,
//!   checked before any connection. Unlike the reference, whose default is
//!   `all`, rsops trusts only `VAULT_ADDR` when the variable is unset, so a
//!   file cannot make rsops hand the user's token to a server of its
//!   author's choosing (see the README).
//!
//! Encrypting (`wrap`) splits the key URI given to `--hc-vault-transit`
//! as the reference does and sends the secret to
//! `{vault_address}/v1/{engine_path}/encrypt/{key_name}`, with the same
//! allow-list, token and TLS settings.
//!
//! A request is bounded by the attempt's [`Deadline`] alone (by
//! [`REQUEST_TIMEOUT`] without one), so a slow server gets all the time the
//! user allowed; dropping an unwrap future cancels its request. Failures
//! are classified into [`KeyError`]s naming the server and key, with a hint
//! saying what to do: refused address, missing or rejected token, sealed
//! server, missing key or engine, untrusted certificate, unreachable server.

#![deny(missing_docs)]

mod allowlist;
mod client;
mod config;
mod entry;
mod error;
#[cfg(test)]
mod tests;
mod wrap;

use std::sync::Arc;

use base64::Engine as _;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};
use url::Url;
use vaultrs::client::VaultClient;
use zeroize::{Zeroize, Zeroizing};

pub use config::{Token, VaultConfig, REQUEST_TIMEOUT};

use crate::allowlist::AllowList;
use crate::client::Clients;
use crate::entry::Target;
use crate::error::{Place, VaultError};
use crate::wrap::KeyUri;

/// The variable listing the Vault addresses rsops may contact, as in the
/// reference: `all`, `none`, or comma-separated URL prefixes.
pub const ALLOWLIST_ENV: &str = "SOPS_HC_VAULT_ALLOWLIST";

/// The token file in the user's home directory, as `vault login` writes it.
pub const TOKEN_FILE: &str = ".vault-token";

/// The Vault transit key source. Cheap to create: nothing is read or
/// connected until an `hc_vault` entry is unwrapped.
pub struct VaultKeySource {
    config: VaultConfig,
    clients: Clients,
}

impl Default for VaultKeySource {
    fn default() -> Self {
        Self::new()
    }
}

impl VaultKeySource {
    /// A key source configured from the environment ([`VaultConfig::from_env`]).
    pub fn new() -> Self {
        Self::with_config(VaultConfig::from_env())
    }

    /// A key source with an explicit configuration (for embedding and tests,
    /// where changing the process environment is not an option).
    pub fn with_config(config: VaultConfig) -> Self {
        VaultKeySource {
            config,
            clients: Clients::default(),
        }
    }

    async fn unwrap_entry(
        &self,
        entry: &KeyEntry,
        deadline: Deadline,
    ) -> Result<Unwrapped, KeyError> {
        let place = Place {
            address: entry.field("vault_address").unwrap_or("?"),
            engine: entry.field("engine_path").unwrap_or("?"),
            key: entry.field("key_name").unwrap_or("?"),
            action: "decrypt",
        };
        self.decrypt(entry, deadline)
            .await
            .map_err(|e| e.into_key_error(&place))
    }

    async fn decrypt(&self, entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, VaultError> {
        let target = Target::from_entry(entry)?;
        let client = self.client_for(&target.address).await?;
        let request = vaultrs::transit::data::decrypt(
            client.as_ref(),
            target.engine_path,
            target.key_name,
            target.ciphertext,
            None,
        );
        let mut response =
            rsops_backend_common::deadline::within(deadline, self.config.request_timeout, request)
                .await
                .map_err(VaultError::Timeout)?
                .map_err(VaultError::from_client)?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(&response.plaintext);
        response.plaintext.zeroize();
        // The decoded bytes move into the secret: no copy is left behind.
        decoded
            .map(Unwrapped::new)
            .map_err(|_| VaultError::BadPlaintext)
    }

    /// The client for `address`, once the allow-list lets the token go
    /// there (consulted before the token is even read).
    async fn client_for(&self, address: &Url) -> Result<Arc<VaultClient>, VaultError> {
        let allowlist = AllowList::parse(
            self.config.allowlist.as_deref(),
            self.config.vault_addr.as_deref(),
        )?;
        if !allowlist.allows(address) {
            return Err(allowlist.refusal(address));
        }
        self.clients
            .get_or_try_build(&address.as_str().to_string(), || async {
                client::build(address, &self.config, &allowlist).map(Arc::new)
            })
            .await
    }

    /// The transit key a recipient names: its `vault_address` is either the
    /// key URI given to `--hc-vault-transit` (split as the reference splits
    /// it) or, with `engine_path` and `key_name` beside it, the bare address
    /// of an existing entry.
    fn key_of(recipient: &KeyEntry) -> Result<KeyUri, VaultError> {
        let address = recipient
            .required("vault_address")
            .map_err(VaultError::Entry)?;
        match (recipient.field("engine_path"), recipient.field("key_name")) {
            (Some(engine), Some(key)) => Ok(KeyUri {
                address: address.to_string(),
                engine_path: engine.to_string(),
                key_name: key.to_string(),
            }),
            _ => wrap::parse_uri(address),
        }
    }

    async fn wrap_entry(
        &self,
        recipient: &KeyEntry,
        secret: &[u8],
        deadline: Deadline,
    ) -> Result<KeyEntry, KeyError> {
        let key = Self::key_of(recipient).map_err(|e| {
            e.into_key_error(&Place {
                address: recipient.field("vault_address").unwrap_or("?"),
                engine: "?",
                key: "?",
                action: "encrypt",
            })
        })?;
        let place = Place {
            address: &key.address,
            engine: &key.engine_path,
            key: &key.key_name,
            action: "encrypt",
        };
        let enc = self
            .encrypt(&key, secret, deadline)
            .await
            .map_err(|e| e.into_key_error(&place))?;
        let KeyUri {
            address,
            engine_path,
            key_name,
        } = key;
        Ok(KeyEntry {
            kind: "hc_vault".to_string(),
            fields: vec![
                ("vault_address".to_string(), address),
                ("engine_path".to_string(), engine_path),
                ("key_name".to_string(), key_name),
                (
                    "created_at".to_string(),
                    rsops_backend_common::created_at::now(),
                ),
                ("enc".to_string(), enc),
            ],
            maps: Vec::new(),
        })
    }

    /// Sends the secret to `{engine}/encrypt/{key}`: the `vault:v<N>:…`
    /// ciphertext.
    async fn encrypt(
        &self,
        key: &KeyUri,
        secret: &[u8],
        deadline: Deadline,
    ) -> Result<String, VaultError> {
        // The same checks as an entry read from a file: what is written
        // must decrypt again.
        let checked = KeyEntry {
            kind: "hc_vault".to_string(),
            fields: vec![
                ("vault_address".to_string(), key.address.clone()),
                ("engine_path".to_string(), key.engine_path.clone()),
                ("key_name".to_string(), key.key_name.clone()),
                ("enc".to_string(), "-".to_string()),
            ],
            maps: Vec::new(),
        };
        let target = Target::from_entry(&checked)?;
        let client = self.client_for(&target.address).await?;
        let plaintext = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(secret));
        let request = vaultrs::transit::data::encrypt(
            client.as_ref(),
            target.engine_path,
            target.key_name,
            &plaintext,
            None,
        );
        let response =
            rsops_backend_common::deadline::within(deadline, self.config.request_timeout, request)
                .await
                .map_err(VaultError::Timeout)?
                .map_err(VaultError::from_client)?;
        if response.ciphertext.is_empty() {
            return Err(VaultError::Transport(
                "the answer holds no ciphertext (is this a Vault server?)".into(),
            ));
        }
        Ok(response.ciphertext)
    }
}

impl KeySource for VaultKeySource {
    fn kind(&self) -> &'static str {
        "hc_vault"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        // A recipient from `--hc-vault-transit` holds the whole key URI.
        if entry.field("engine_path").is_none() && entry.field("key_name").is_none() {
            if let Some(uri) = entry.field("vault_address") {
                return uri.to_string();
            }
        }
        entry::describe(
            entry.field("vault_address"),
            entry.field("engine_path"),
            entry.field("key_name"),
        )
    }

    fn unwrap<'a>(
        &'a self,
        entry: &'a KeyEntry,
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>> {
        Box::pin(self.unwrap_entry(entry, deadline))
    }

    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        secret: &'a [u8],
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        Box::pin(self.wrap_entry(recipient, secret, deadline))
    }
}
