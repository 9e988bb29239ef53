//! One Vault client per server address, built on first use and reused for
//! every entry naming that server (a file with many entries, or an
//! embedding program decrypting many files, connects once).
//!
//! The HTTP client is built here rather than by `vaultrs`, to control what
//! `vaultrs` leaves open: trusting only `VAULT_CACERT`'s CAs (as the
//! reference does, instead of adding them to the system's), and following a
//! redirect only to an allowed address, since the token goes along with it.
//! It has no timeouts: a client serves entries with different deadlines,
//! and each decrypt is bounded by its own (see `deadline`).

use std::sync::Arc;

use rsops_backend_common::ClientCache;
use url::Url;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettings};

use crate::allowlist::AllowList;
use crate::config::VaultConfig;
use crate::error::VaultError;

/// How many redirects one request may follow (Vault standbys answer 307
/// pointing to the active node: one hop is the normal case).
const MAX_REDIRECTS: usize = 5;

/// Built clients, keyed by server address. A failed build is not kept: the
/// next entry tries again and reports its own error.
pub(crate) type Clients = ClientCache<String, Arc<VaultClient>>;

/// Builds a client for one server.
pub(crate) fn build(
    address: &Url,
    config: &VaultConfig,
    allowlist: &AllowList,
) -> Result<VaultClient, VaultError> {
    let token = config.resolve_token()?;
    let namespace = config.checked_namespace()?;
    let skip_verify = config.skip_verify()?;

    let redirects = allowlist.clone();
    let mut http = reqwest::Client::builder().tls_backend_rustls().redirect(
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if redirects.allows(attempt.url()) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }),
    );
    if address.scheme() == "http" {
        // Plain HTTP needs no trust roots; loading the system's would only
        // cost time (and fail on machines without any).
        http = http.tls_certs_only(Vec::new());
    } else {
        if let Some(certs) = config.ca_certificates()? {
            http = http.tls_certs_only(certs);
        }
        http = http.tls_danger_accept_invalid_certs(skip_verify);
    }
    let http = http
        .build()
        .map_err(|e| VaultError::Config(format!("cannot set up HTTPS for {address}: {e}")))?;

    let middle = EndpointMiddleware {
        token: token.expose().to_string(),
        version: "v1".into(),
        wrap: None,
        namespace: namespace.clone(),
    };
    let settings = VaultClientSettings {
        address: address.clone(),
        ca_certs: Vec::new(),
        identity: None,
        // Only read when `vaultrs` builds its own HTTP client, which it
        // does not here.
        timeout: None,
        // Only the middleware sends the token; keeping it out of the
        // settings leaves one copy fewer in memory and in `Debug` output.
        token: String::new(),
        verify: !skip_verify,
        version: 1,
        wrapping: false,
        namespace,
        proxy: None,
    };
    Ok(VaultClient {
        http: rustify::clients::reqwest::Client::new(address.as_str(), http),
        middle,
        settings,
    })
}
