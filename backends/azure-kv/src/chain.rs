//! The credential chain. The 1.x Rust SDK has no `DefaultAzureCredential`,
//! so this builds the one Azure users know from the other SDKs (and which
//! the reference sops gets from Go's): environment (client secret or
//! certificate), workload identity, managed identity, then the `az` CLI.
//! The first source that yields a token is kept for the rest of the run.
//!
//! Each failure is described with its whole cause chain on one line, so a
//! TLS failure deep in it (a token endpoint behind an intercepting proxy)
//! stays visible to the classification in `errors`.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "certificate")]
use azure_core::credentials::SecretBytes;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_identity::{
    AzureCliCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
#[cfg(feature = "certificate")]
use azure_identity::{ClientCertificateCredential, ClientCertificateCredentialOptions};

use crate::client::few_retries;
use crate::errors::one_line;

/// How long to wait for the VM metadata endpoint before deciding this is not
/// an Azure VM (Go's DefaultAzureCredential probes it the same way). A
/// guess about the machine rather than a wait for a service, so it does not
/// follow the deadline; a deadline shorter than it cuts it anyway.
const IMDS_PROBE: Duration = Duration::from_secs(2);

/// One link of the chain.
struct Link {
    name: &'static str,
    credential: Arc<dyn TokenCredential>,
    /// Only the metadata-endpoint guess is cut short; an explicitly
    /// configured source gets the time it needs.
    probe: Option<Duration>,
}

/// Tries each configured source in order.
pub(crate) struct Chain {
    links: Vec<Link>,
    /// Problems met while setting sources up (e.g. unreadable certificate),
    /// reported if nothing else works.
    setup_errors: Vec<String>,
    selected: AtomicUsize,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.links.iter().map(|l| l.name).collect();
        f.debug_struct("Chain").field("links", &names).finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Chain {
    /// The chain for this environment; building it makes no network call.
    pub(crate) fn from_env() -> Chain {
        let mut chain = Chain {
            links: Vec::new(),
            setup_errors: Vec::new(),
            selected: AtomicUsize::new(usize::MAX),
        };
        let tenant = var("AZURE_TENANT_ID");
        let client = var("AZURE_CLIENT_ID");
        if let (Some(tenant), Some(client)) = (&tenant, &client) {
            if let Some(secret) = var("AZURE_CLIENT_SECRET") {
                chain.add(
                    "environment (AZURE_CLIENT_SECRET)",
                    ClientSecretCredential::new(
                        tenant,
                        client.clone(),
                        Secret::new(secret),
                        Some(ClientSecretCredentialOptions {
                            client_options: few_retries(),
                        }),
                    )
                    .map(|c| c as Arc<dyn TokenCredential>),
                    None,
                );
            } else if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
                chain.add(
                    "environment (AZURE_CLIENT_CERTIFICATE_PATH)",
                    certificate(tenant, client, &path),
                    None,
                );
            }
        }
        if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            chain.add(
                "workload identity (AZURE_FEDERATED_TOKEN_FILE)",
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: few_retries(),
                    },
                    ..Default::default()
                }))
                .map(|c| c as Arc<dyn TokenCredential>),
                None,
            );
        }
        let explicit_endpoint = var("IDENTITY_ENDPOINT").is_some() || var("MSI_ENDPOINT").is_some();
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client.map(UserAssignedId::ClientId),
            client_options: few_retries(),
        };
        chain.add(
            "managed identity",
            ManagedIdentityCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>),
            (!explicit_endpoint).then_some(IMDS_PROBE),
        );
        chain.add(
            "Azure CLI (az)",
            AzureCliCredential::new(None).map(|c| c as Arc<dyn TokenCredential>),
            None,
        );
        chain
    }

    fn add(
        &mut self,
        name: &'static str,
        credential: azure_core::Result<Arc<dyn TokenCredential>>,
        probe: Option<Duration>,
    ) {
        match credential {
            Ok(credential) => self.links.push(Link {
                name,
                credential,
                probe,
            }),
            Err(e) => self.setup_errors.push(format!("{name}: {e}")),
        }
    }
}

/// `ClientCertificateCredential` takes PKCS#12 bytes.
#[cfg(feature = "certificate")]
fn certificate(
    tenant: &str,
    client: &str,
    path: &str,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let bytes = std::fs::read(path).map_err(|e| {
        azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("cannot read the certificate {path}: {e}"),
        )
    })?;
    let options = ClientCertificateCredentialOptions {
        password: var("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Secret::new),
        client_options: few_retries(),
    };
    let credential = ClientCertificateCredential::new(
        tenant.to_string(),
        client.to_string(),
        SecretBytes::new(bytes),
        Some(options),
    )?;
    Ok(credential)
}

/// Without OpenSSL, a certificate cannot be read: say so, and how to get it.
#[cfg(not(feature = "certificate"))]
fn certificate(
    _tenant: &str,
    _client: &str,
    path: &str,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    Err(azure_core::Error::with_message(
        ErrorKind::Credential,
        format!(
            "AZURE_CLIENT_CERTIFICATE_PATH ({path}) is set, but this build of rsops reads client certificates only when built with `--features azure-certificate` (it links OpenSSL); use AZURE_CLIENT_SECRET, workload or managed identity, or `az login` instead"
        ),
    ))
}

#[async_trait::async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let selected = self.selected.load(Ordering::Relaxed);
        if let Some(link) = self.links.get(selected) {
            return link
                .credential
                .get_token(scopes, options)
                .await
                .map_err(|e| {
                    azure_core::Error::with_message(
                        e.kind().clone(),
                        format!("{}: {}", link.name, one_line(&e)),
                    )
                });
        }
        let mut failures = self.setup_errors.clone();
        for (index, link) in self.links.iter().enumerate() {
            let attempt = link.credential.get_token(scopes, options.clone());
            let result = match link.probe {
                Some(limit) => match tokio::time::timeout(limit, attempt).await {
                    Ok(result) => result,
                    Err(_) => {
                        failures.push(format!("{}: no answer from the endpoint", link.name));
                        continue;
                    }
                },
                None => attempt.await,
            };
            match result {
                Ok(token) => {
                    self.selected.store(index, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{}: {}", link.name, one_line(&e))),
            }
        }
        Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("no Azure credential worked: {}", failures.join("; ")),
        ))
    }
}
