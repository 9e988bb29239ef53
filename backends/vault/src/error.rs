//! What can go wrong with a Vault entry, and how each case reaches the user
//! as a classified [`KeyError`] that names the server and the key and says
//! what to do. The token never appears in any message.

use std::time::Duration;

use rsops_keysource::KeyError;

/// A failure of one `hc_vault` entry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VaultError {
    /// The entry's fields are missing or malformed.
    #[error("{0}")]
    BadEntry(String),
    /// A Vault environment variable is malformed or names an unusable file.
    #[error("{0}")]
    Config(String),
    /// The address is not on the allow-list (the message says how to add it).
    #[error("{0}")]
    NotAllowed(String),
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
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
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

/// The server and key an error is about, for messages.
pub(crate) struct Place<'a> {
    /// `vault_address` as written.
    pub(crate) address: &'a str,
    /// `engine_path` as written.
    pub(crate) engine: &'a str,
    /// `key_name` as written.
    pub(crate) key: &'a str,
}

impl VaultError {
    /// Classifies an error of the Vault client library.
    pub(crate) fn from_client(error: vaultrs::error::ClientError, timeout: Duration) -> Self {
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
                    transport(source.as_ref(), timeout)
                }
                Rest::ResponseParseError { .. } | Rest::DataParseError { .. } => {
                    VaultError::Transport(
                        "the answer is not a Vault transit response (is this a Vault server?)"
                            .into(),
                    )
                }
                other => VaultError::Transport(chain(&other)),
            },
            Vault::ResponseEmptyError | Vault::ResponseDataEmptyError => {
                VaultError::Transport("the answer holds no data (is this a Vault server?)".into())
            }
            other => VaultError::Transport(chain(&other)),
        }
    }

    /// The classified error the core reports.
    pub(crate) fn into_key_error(self, place: &Place<'_>) -> KeyError {
        let Place {
            address,
            engine,
            key,
        } = place;
        let transit = format!("transit key {engine}/keys/{key}");
        match self {
            VaultError::BadEntry(message) => KeyError::CorruptEntry { message },
            VaultError::Config(message) => KeyError::NoCredentials {
                message,
                hint: Some("fix or unset the variable named above".into()),
            },
            VaultError::NotAllowed(message) => KeyError::Denied { message },
            e @ VaultError::NoToken(_) => KeyError::NoCredentials {
                message: format!("{e} (needed for {address})"),
                hint: Some(
                    "set VAULT_TOKEN, or log in with `vault login` / `bao login`, which writes \
                     ~/.vault-token"
                        .into(),
                ),
            },
            VaultError::BadToken(message) => KeyError::NoCredentials {
                message,
                hint: Some("set VAULT_TOKEN to a valid token, or log in again".into()),
            },
            VaultError::Api { code, errors } => api_error(code, &errors, place),
            e @ VaultError::Timeout(_) => KeyError::Unreachable {
                message: format!("Vault at {address}: {e}"),
            },
            VaultError::Connect(cause) => {
                let tls = cause.contains("certificate") || cause.contains("tls");
                KeyError::Unreachable {
                    message: if tls {
                        format!(
                            "cannot connect to Vault at {address}: {cause}; if the server uses \
                             a private CA, set VAULT_CACERT or VAULT_CAPATH"
                        )
                    } else {
                        format!("cannot connect to Vault at {address}: {cause}")
                    },
                }
            }
            VaultError::Transport(cause) => KeyError::Unreachable {
                message: format!("Vault at {address}: {cause}"),
            },
            VaultError::BadPlaintext => KeyError::CorruptEntry {
                message: format!("Vault at {address} decrypted {transit}, but {}", self),
            },
        }
    }
}

/// The error for an error status of the server.
fn api_error(code: u16, errors: &[String], place: &Place<'_>) -> KeyError {
    let Place {
        address,
        engine,
        key,
    } = place;
    let transit = format!("transit key {engine}/keys/{key}");
    let said = if errors.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {}", errors.join("; "))
    };
    let mentions = |text: &str| errors.iter().any(|e| e.contains(text));
    match code {
        401 | 403 => KeyError::Denied {
            message: format!(
                "Vault at {address} refused to decrypt with {transit} ({said}): the token is \
                 wrong, expired or revoked, or its policy does not allow `update` on the \
                 key's decrypt path; log in again (`vault login` / `bao login`) or set VAULT_TOKEN"
            ),
        },
        503 if mentions("sealed") => KeyError::Unreachable {
            message: format!(
                "Vault at {address} is sealed ({said}); unseal it (`vault operator unseal`) and retry"
            ),
        },
        400 if mentions("key not found") => KeyError::NoCredentials {
            message: format!("Vault at {address} has no {transit} ({said})"),
            hint: Some(
                "check the entry's key_name and engine_path (`vault list ENGINE/keys`), and \
                 VAULT_NAMESPACE; a deleted transit key cannot be recovered"
                    .into(),
            ),
        },
        404 => KeyError::NoCredentials {
            message: format!(
                "Vault at {address} has no transit engine mounted at {engine} (for key {key}) ({said})"
            ),
            hint: Some(
                "check the entry's engine_path (`vault secrets list`) and VAULT_NAMESPACE".into(),
            ),
        },
        400 => KeyError::CorruptEntry {
            message: format!("Vault at {address} could not decrypt the data key with {transit} ({said})"),
        },
        300..=399 => KeyError::Denied {
            message: format!(
                "Vault at {address} redirected the request ({said}) to an address the \
                 allow-list does not permit; add the target to SOPS_HC_VAULT_ALLOWLIST if it is \
                 trusted"
            ),
        },
        _ => KeyError::Unreachable {
            message: format!("Vault at {address} could not decrypt with {transit} ({said})"),
        },
    }
}

/// Classifies a transport failure by the `reqwest` error inside it.
fn transport(error: &(dyn std::error::Error + 'static), timeout: Duration) -> VaultError {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<reqwest::Error>() {
            if http.is_timeout() {
                return VaultError::Timeout(timeout);
            }
            if http.is_connect() {
                return VaultError::Connect(chain(http));
            }
        }
        current = e.source();
    }
    VaultError::Transport(chain(error))
}

/// An error and its causes on one line, repeated messages left out.
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: Place<'static> = Place {
        address: "http://127.0.0.1:8200",
        engine: "sops",
        key: "k",
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
        assert!(matches!(
            api(403, &["permission denied"]),
            KeyError::Denied { .. }
        ));
        assert!(matches!(
            api(503, &["Vault is sealed"]),
            KeyError::Unreachable { .. }
        ));
        assert!(matches!(
            api(400, &["encryption key not found"]),
            KeyError::NoCredentials { .. }
        ));
        assert!(matches!(api(404, &[]), KeyError::NoCredentials { .. }));
        assert!(matches!(
            api(400, &["invalid ciphertext: no prefix"]),
            KeyError::CorruptEntry { .. }
        ));
        assert!(matches!(api(307, &[]), KeyError::Denied { .. }));
        assert!(matches!(api(502, &[]), KeyError::Unreachable { .. }));
    }

    #[test]
    fn messages_name_the_server_and_key() {
        for error in [
            api(403, &["permission denied"]),
            api(503, &["Vault is sealed"]),
            api(400, &["encryption key not found"]),
        ] {
            let text = error.to_string();
            assert!(text.contains("http://127.0.0.1:8200"), "{text}");
        }
        assert!(api(403, &[]).to_string().contains("sops/keys/k"));
        assert!(api(400, &["encryption key not found"])
            .to_string()
            .contains("sops/keys/k"));
    }

    #[test]
    fn chains_skip_repeated_causes() {
        let io = std::io::Error::other("connection refused");
        assert_eq!(chain(&io), "connection refused");
    }
}
