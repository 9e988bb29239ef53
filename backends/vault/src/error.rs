//! What can go wrong with a Vault entry, and how each case reaches the user
//! as a classified [`KeyError`] that names the server and the key, with a
//! hint saying what to do. The token never appears in any message.

use std::error::Error;
use std::time::Duration;

use rsops_backend_common::{cause_chain, is_untrusted_certificate};
use rsops_keysource::KeyError;

/// A failure of one `hc_vault` entry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VaultError {
    /// A field the entry cannot do without is missing or empty.
    #[error("{0}")]
    Entry(KeyError),
    /// The entry's fields are malformed.
    #[error("{0}")]
    BadEntry(String),
    /// A key URI to encrypt for (`--hc-vault-transit`) does not parse.
    #[error("{0}")]
    BadUri(String),
    /// A Vault environment variable is malformed or names an unusable file.
    #[error("{0}")]
    Config(String),
    /// The address is not on the allow-list.
    #[error("{message}")]
    NotAllowed {
        /// Which address was refused, and why.
        message: String,
        /// How to allow it.
        hint: String,
    },
    /// There is no token to send.
    #[error("no Vault token: {0}")]
    NoToken(String),
    /// The token exists but cannot be used (unreadable file, bad characters).
    #[error("{0}")]
    BadToken(String),
    /// The server answered with an error status.
    #[error("HTTP {code}")]
    Api {
        /// The HTTP status.
        code: u16,
        /// Vault's `errors` list, when the body had one.
        errors: Vec<String>,
    },
    /// No answer in the time the attempt was given.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server's TLS certificate is not signed by a trusted CA.
    #[error("{0}")]
    UntrustedCertificate(String),
    /// The connection could not be made (refused, DNS, TLS).
    #[error("{0}")]
    Connect(String),
    /// Any other transport failure, or an answer that is not Vault's.
    #[error("{0}")]
    Transport(String),
    /// The decrypted data key is not valid base64.
    #[error("the server's plaintext is not base64")]
    BadPlaintext,
}

/// What to do about a certificate the machine does not trust: the
/// variables the reference (and the `vault` CLI) read for a private CA.
const CA_HINT: &str = "if the server's certificate is signed by a private CA, set VAULT_CACERT \
     to that CA's PEM file, or VAULT_CAPATH to a directory of PEM files; rsops then trusts \
     only those CAs for Vault, as sops does";

/// The server and key an error is about, for messages.
pub(crate) struct Place<'a> {
    /// `vault_address` as written.
    pub(crate) address: &'a str,
    /// `engine_path` as written.
    pub(crate) engine: &'a str,
    /// `key_name` as written.
    pub(crate) key: &'a str,
    /// What was asked of the key: `decrypt` or `encrypt`.
    pub(crate) action: &'a str,
}

impl VaultError {
    /// Classifies an error of the Vault client library.
    pub(crate) fn from_client(error: vaultrs::error::ClientError) -> Self {
        use rustify::errors::ClientError as Rest;
        use vaultrs::error::ClientError as Vault;
        match error {
            Vault::APIError { code, errors } => VaultError::Api { code, errors },
            Vault::RestClientError { source } => match source {
                // A body that is not Vault's JSON error list (a proxy's page).
                Rest::ServerResponseError { code, .. } => VaultError::Api {
                    code,
                    errors: Vec::new(),
                },
                Rest::RequestError { source, .. } | Rest::ResponseError { source } => {
                    transport(source.as_ref())
                }
                Rest::ResponseParseError { .. } | Rest::DataParseError { .. } => {
                    VaultError::Transport(
                        "the answer is not a Vault transit response (is this a Vault server?)"
                            .into(),
                    )
                }
                other => VaultError::Transport(cause_chain(&other, &[])),
            },
            Vault::ResponseEmptyError | Vault::ResponseDataEmptyError => {
                VaultError::Transport("the answer holds no data (is this a Vault server?)".into())
            }
            other => VaultError::Transport(cause_chain(&other, &[])),
        }
    }

    /// The classified error the core reports.
    pub(crate) fn into_key_error(self, place: &Place<'_>) -> KeyError {
        let Place {
            address,
            engine,
            key,
            ..
        } = place;
        let transit = format!("transit key {engine}/keys/{key}");
        match self {
            VaultError::Entry(error) => error,
            VaultError::BadEntry(message) => KeyError::corrupt_entry(message),
            VaultError::BadUri(message) => KeyError::corrupt_entry(message).with_hint(format!(
                "a Vault transit key URI looks like {}",
                crate::wrap::URI_FORMAT
            )),
            VaultError::Config(message) => {
                KeyError::no_credentials(message).with_hint("fix or unset the variable named above")
            }
            VaultError::NotAllowed { message, hint } => KeyError::denied(message).with_hint(hint),
            e @ VaultError::NoToken(_) => {
                KeyError::no_credentials(format!("{e} (needed for {address})")).with_hint(
                    "set VAULT_TOKEN, or log in with `vault login` / `bao login`, which writes \
                     ~/.vault-token",
                )
            }
            VaultError::BadToken(message) => KeyError::no_credentials(message)
                .with_hint("set VAULT_TOKEN to a valid token, or log in again"),
            VaultError::Api { code, errors } => api_error(code, &errors, place),
            e @ VaultError::Timeout(_) => KeyError::unreachable(format!("Vault at {address}: {e}")),
            VaultError::UntrustedCertificate(cause) => KeyError::untrusted_certificate(format!(
                "Vault at {address} presented a TLS certificate this machine does not trust: {cause}"
            ))
            .with_hint(CA_HINT),
            VaultError::Connect(cause) => {
                KeyError::unreachable(format!("cannot connect to Vault at {address}: {cause}"))
            }
            VaultError::Transport(cause) => {
                KeyError::unreachable(format!("Vault at {address}: {cause}"))
            }
            VaultError::BadPlaintext => KeyError::corrupt_entry(format!(
                "Vault at {address} decrypted {transit}, but {}",
                self
            )),
        }
    }
}

/// The error for an error status of the server.
fn api_error(code: u16, errors: &[String], place: &Place<'_>) -> KeyError {
    let Place {
        address,
        engine,
        key,
        action,
    } = place;
    let transit = format!("transit key {engine}/keys/{key}");
    let said = if errors.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {}", errors.join("; "))
    };
    let mentions = |text: &str| errors.iter().any(|e| e.contains(text));
    match code {
        401 | 403 => KeyError::denied(format!(
            "Vault at {address} refused to {action} with {transit} ({said})"
        ))
        .with_hint(format!(
            "the token is wrong, expired or revoked, or its policy does not allow `update` on \
             {engine}/{action}/{key}: log in again (`vault login` / `bao login`) or set VAULT_TOKEN"
        )),
        503 if mentions("sealed") => {
            KeyError::unreachable(format!("Vault at {address} is sealed ({said})"))
                .with_hint("unseal it (`vault operator unseal` / `bao operator unseal`) and retry")
        }
        400 if mentions("key not found") => {
            KeyError::no_credentials(format!("Vault at {address} has no {transit} ({said})"))
                .with_hint(
                    "check the entry's key_name and engine_path (`vault list ENGINE/keys`), and \
                     VAULT_NAMESPACE; a deleted transit key cannot be recovered",
                )
        }
        404 => KeyError::no_credentials(format!(
            "Vault at {address} has no transit engine mounted at {engine} (for key {key}) ({said})"
        ))
        .with_hint("check the entry's engine_path (`vault secrets list`) and VAULT_NAMESPACE"),
        400 => KeyError::corrupt_entry(format!(
            "Vault at {address} could not {action} the data key with {transit} ({said})"
        )),
        300..=399 => KeyError::denied(format!(
            "Vault at {address} redirected the request ({said}) to an address the allow-list \
             does not permit"
        ))
        .with_hint("add the target to SOPS_HC_VAULT_ALLOWLIST if it is trusted"),
        _ => KeyError::unreachable(format!(
            "Vault at {address} could not {action} with {transit} ({said})"
        )),
    }
}

/// Classifies a transport failure: a certificate the machine does not
/// trust (anywhere in the chain), a failed connection, or anything else.
fn transport(error: &(dyn Error + 'static)) -> VaultError {
    let cause = cause_chain(error, &[]);
    if is_untrusted_certificate(error) {
        return VaultError::UntrustedCertificate(cause);
    }
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect)
        {
            return VaultError::Connect(cause);
        }
        current = e.source();
    }
    VaultError::Transport(cause)
}

#[cfg(test)]
mod tests {
    use rsops_keysource::ErrorClass;

    use super::*;

    const PLACE: Place<'static> = Place {
        address: "http://127.0.0.1:8200",
        engine: "sops",
        key: "k",
        action: "decrypt",
    };

    fn api(code: u16, errors: &[&str]) -> KeyError {
        VaultError::Api {
            code,
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
        .into_key_error(&PLACE)
    }

    #[test]
    fn server_answers_are_classified() {
        let class = |code, errors: &[&str]| api(code, errors).class();
        assert_eq!(class(403, &["permission denied"]), ErrorClass::Denied);
        assert_eq!(class(503, &["Vault is sealed"]), ErrorClass::Unreachable);
        assert_eq!(
            class(400, &["encryption key not found"]),
            ErrorClass::NoCredentials
        );
        assert_eq!(class(404, &[]), ErrorClass::NoCredentials);
        assert_eq!(
            class(400, &["invalid ciphertext: no prefix"]),
            ErrorClass::CorruptEntry
        );
        assert_eq!(class(307, &[]), ErrorClass::Denied);
        assert_eq!(class(502, &[]), ErrorClass::Unreachable);
    }

    #[test]
    fn messages_name_the_server_and_key_and_hints_say_what_to_do() {
        for error in [
            api(403, &["permission denied"]),
            api(503, &["Vault is sealed"]),
            api(400, &["encryption key not found"]),
        ] {
            let text = error.to_string();
            assert!(text.contains("http://127.0.0.1:8200"), "{text}");
            assert!(error.hint().is_some(), "{text}");
        }
        let denied = api(403, &[]);
        assert!(denied.to_string().contains("sops/keys/k"));
        assert!(!denied.to_string().contains("VAULT_TOKEN"), "{denied}");
        assert!(denied.hint().is_some_and(|h| h.contains("VAULT_TOKEN")));
        assert!(api(400, &["encryption key not found"])
            .to_string()
            .contains("sops/keys/k"));
        assert!(api(503, &["Vault is sealed"])
            .hint()
            .is_some_and(|h| h.contains("unseal")));
    }

    /// A TLS failure as the client reports it: the certificate's complaint
    /// sits a few causes down, under generic connection errors.
    #[derive(Debug)]
    struct Level(&'static str, Option<Box<Level>>);

    impl std::fmt::Display for Level {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Level {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn untrusted_certificates_name_the_vault_ca_variables() {
        let chain = Level(
            "error sending request",
            Some(Box::new(Level(
                "client error (Connect)",
                Some(Box::new(Level(
                    "invalid peer certificate: UnknownIssuer",
                    None,
                ))),
            ))),
        );
        let error = transport(&chain).into_key_error(&PLACE);
        assert_eq!(error.class(), ErrorClass::UntrustedCertificate);
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
        let hint = error.hint().unwrap_or_default();
        assert!(
            hint.contains("VAULT_CACERT") && hint.contains("VAULT_CAPATH"),
            "{hint}"
        );
        let refused = Level("Connection refused", None);
        let error = transport(&refused).into_key_error(&PLACE);
        assert_eq!(error.class(), ErrorClass::Unreachable);
    }
}
