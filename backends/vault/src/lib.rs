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

use std::sync::Arc;

use base64::Engine as _;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};
use zeroize::Zeroize;

pub use config::{Token, VaultConfig, REQUEST_TIMEOUT};

use crate::allowlist::AllowList;
use crate::client::Clients;
use crate::entry::Target;
use crate::error::{Place, VaultError};

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
        };
        self.decrypt(entry, deadline)
            .await
            .map_err(|e| e.into_key_error(&place))
    }

    async fn decrypt(&self, entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, VaultError> {
        let target = Target::from_entry(entry)?;
        // The allow-list is consulted before the token is even read.
        let allowlist = AllowList::parse(
            self.config.allowlist.as_deref(),
            self.config.vault_addr.as_deref(),
        )?;
        if !allowlist.allows(&target.address) {
            return Err(allowlist.refusal(&target.address));
        }
        let client = self
            .clients
            .get_or_try_build(&target.address.as_str().to_string(), || async {
                client::build(&target.address, &self.config, &allowlist).map(Arc::new)
            })
            .await?;
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
}

impl KeySource for VaultKeySource {
    fn kind(&self) -> &'static str {
        "hc_vault"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
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
}
