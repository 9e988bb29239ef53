//! What went wrong, classified into [`KeyError`] with a message that names
//! the vault and a hint that says what to do. Never a token, secret or key.

use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use rsops_backend_common::{cause_chain, is_untrusted_certificate};
use rsops_keysource::KeyError;

/// A Key Vault operation: each needs its own `keys/…` permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Unwrapping a data key.
    Decrypt,
    /// Wrapping a data key.
    Encrypt,
    /// Reading the key (its latest version).
    Get,
}

impl Op {
    /// The permission's name: `keys/{name}`.
    fn permission(self) -> &'static str {
        match self {
            Op::Decrypt => "decrypt",
            Op::Encrypt => "encrypt",
            Op::Get => "get",
        }
    }

    /// What the call was doing with `key`, for a message.
    fn action(self, key: &str) -> String {
        match self {
            Op::Get => format!("read {key}"),
            op => format!("{} with {key}", op.permission()),
        }
    }
}

/// Failures of the Azure key source, before classification.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AzureError {
    /// The entry itself is unusable (e.g. no `enc`).
    #[error("{0}")]
    Entry(KeyError),
    #[error("the `enc` field is not valid base64url")]
    BadCiphertext,
    #[error("the vault_url is not a URL")]
    BadVaultUrl,
    /// A recipient that is not `https://HOST/keys/NAME[/VERSION]`.
    #[error("could not parse {0:?} into a valid Azure Key Vault key URL")]
    BadKeyUrl(String),
    #[error("Key Vault returned no ciphertext")]
    EmptyCiphertext,
    #[error("Key Vault did not say which version of {0} is the latest")]
    NoVersion(String),
    #[error("cannot set up the Key Vault client: {0}")]
    Setup(String),
    #[error("Key Vault returned no plaintext")]
    EmptyResult,
    /// No answer in the time the attempt was given.
    #[error("no answer from {vault} within {limit:?}")]
    Timeout { vault: String, limit: Duration },
    /// The decrypt call (or the token it needs) failed.
    #[error("{error}")]
    Call {
        error: azure_core::Error,
        vault: String,
        /// The operation, which names the permission the call needs.
        op: Op,
    },
}

const CREDENTIALS_HINT: &str = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET \
     (or AZURE_CLIENT_CERTIFICATE_PATH), use workload or managed identity, or run `az login`";

/// Wrappers the SDK puts around the real error, saying nothing about it.
const NOISE: [&str; 3] = [
    "non-transport error occurred",
    "retry policy expired",
    "failed to execute `reqwest` request",
];

/// What the identity SDK appends to its messages, on a line of its own.
const TROUBLESHOOT: &str = " To troubleshoot, visit ";

impl AzureError {
    /// Classifies the failure for the orchestrator and the user.
    pub(crate) fn into_key_error(self, key: &str) -> KeyError {
        match self {
            AzureError::Entry(error) => error,
            e @ (AzureError::BadCiphertext | AzureError::BadVaultUrl | AzureError::EmptyResult) => {
                KeyError::corrupt_entry(e.to_string())
            }
            e @ AzureError::BadKeyUrl(_) => KeyError::corrupt_entry(e.to_string())
                .with_hint("give the key as https://NAME.vault.azure.net/keys/KEY[/VERSION]"),
            e @ (AzureError::EmptyCiphertext | AzureError::NoVersion(_)) => {
                KeyError::denied(e.to_string())
            }
            AzureError::Setup(message) => KeyError::unreachable(message),
            e @ AzureError::Timeout { .. } => KeyError::unreachable(e.to_string()),
            AzureError::Call { error, vault, op } => classify(key, &vault, op, &error),
        }
    }
}

/// An SDK error and its causes on one line, without the wrappers that say
/// nothing and without the identity SDK's troubleshooting links.
pub(crate) fn one_line(error: &azure_core::Error) -> String {
    let mut text = cause_chain(error, &NOISE);
    // The link runs to the end of its level: the next `: ` or the end.
    while let Some(at) = text.find(TROUBLESHOOT) {
        let link = at + TROUBLESHOOT.len();
        let end = text[link..]
            .find(": ")
            .map_or(text.len(), |offset| link + offset);
        text.replace_range(at..end, "");
    }
    text
}

fn classify(key: &str, vault: &str, op: Op, error: &azure_core::Error) -> KeyError {
    let untrusted = is_untrusted_certificate(error);
    match error.kind() {
        ErrorKind::Credential if untrusted => KeyError::untrusted_certificate(format!(
            "cannot get a token for {vault}: {}",
            one_line(error)
        )),
        ErrorKind::Credential => KeyError::no_credentials(format!(
            "cannot get a token for {vault}: {}",
            one_line(error)
        ))
        .with_hint(CREDENTIALS_HINT),
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let said = raw_response
                .as_ref()
                .and_then(|r| service_message(r.body()))
                .or_else(|| error_code.clone())
                .unwrap_or_else(|| status.to_string());
            http_error(key, vault, op, *status, &said)
        }
        _ if untrusted => {
            KeyError::untrusted_certificate(format!("cannot reach {vault}: {}", one_line(error)))
        }
        ErrorKind::Connection | ErrorKind::Io => {
            KeyError::unreachable(format!("cannot reach {vault}: {}", one_line(error)))
        }
        _ => KeyError::denied(format!(
            "Key Vault failed to {}: {}",
            op.action(key),
            one_line(error)
        )),
    }
}

fn http_error(key: &str, vault: &str, op: Op, status: StatusCode, said: &str) -> KeyError {
    match u16::from(status) {
        401 => KeyError::denied(format!("{vault} rejected the access token ({said})")).with_hint(
            "the token is expired, or was issued for another tenant or resource: refresh the \
             credentials",
        ),
        403 if said.to_ascii_lowercase().contains("disabled") => {
            KeyError::denied(format!("{key} is disabled ({said})"))
                .with_hint("enable the key (or that version) in the vault")
        }
        403 => KeyError::denied(format!("access to {key} denied ({said})")).with_hint(format!(
            "grant the caller the keys/{} permission (e.g. the Key Vault Crypto User role)",
            op.permission()
        )),
        404 => KeyError::denied(format!("{key} does not exist ({said})"))
            .with_hint("check the vault URL, key name and version"),
        400 if op != Op::Decrypt => {
            KeyError::denied(format!("Key Vault refused to {} ({said})", op.action(key)))
        }
        400 => KeyError::corrupt_entry(format!(
            "Key Vault refused the ciphertext of {key} ({said}); the entry is damaged or was \
             made with another key"
        )),
        429 | 500..=599 => {
            KeyError::unreachable(format!("{vault} is unavailable ({status}: {said})"))
        }
        _ => KeyError::denied(format!(
            "Key Vault failed to {} ({status}: {said})",
            op.action(key)
        )),
    }
}

/// `error.message` of Key Vault's JSON error body.
fn service_message(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = json.get("error")?;
    let message = error.get("message")?.as_str()?;
    let inner = error
        .pointer("/innererror/code")
        .and_then(|c| c.as_str())
        .map(|c| format!(" [{c}]"))
        .unwrap_or_default();
    Some(format!("{message}{inner}"))
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use rsops_keysource::ErrorClass;

    use super::*;

    const KEY: &str = "https://v.vault.azure.net/keys/k/1";
    const VAULT: &str = "https://v.vault.azure.net";

    /// One level of a fake cause chain.
    #[derive(Debug)]
    struct Level(&'static str, Option<Box<Level>>);

    impl fmt::Display for Level {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Level {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    /// A transport failure wrapped as the SDK's HTTP client and retry
    /// policy wrap it, with `cause` at the bottom.
    fn transport_failure(kind: ErrorKind, cause: &'static str) -> azure_core::Error {
        let reqwest_like = Level(
            "error sending request for url (https://v.vault.azure.net/keys/k/1/decrypt)",
            Some(Box::new(Level(
                "client error (Connect)",
                Some(Box::new(Level(cause, None))),
            ))),
        );
        azure_core::Error::with_error(kind, reqwest_like, "failed to execute `reqwest` request")
            .with_context("retry policy expired and the request will no longer be retried")
    }

    fn call(error: azure_core::Error) -> KeyError {
        AzureError::Call {
            error,
            vault: VAULT.into(),
            op: Op::Decrypt,
        }
        .into_key_error(KEY)
    }

    #[test]
    fn untrusted_certificates_get_the_certificate_class_and_hint() {
        let error = call(transport_failure(
            ErrorKind::Connection,
            "invalid peer certificate: UnknownIssuer",
        ));
        assert_eq!(error.class(), ErrorClass::UntrustedCertificate);
        assert_eq!(
            error.to_string(),
            "cannot reach https://v.vault.azure.net: error sending request for url \
             (https://v.vault.azure.net/keys/k/1/decrypt): client error (Connect): invalid \
             peer certificate: UnknownIssuer"
        );
        assert!(
            error.hint().is_some_and(|h| h.contains("SSL_CERT_FILE")),
            "{error:?}"
        );
        // The token endpoint's certificate, reported by the credential chain.
        let token = azure_core::Error::with_message(
            ErrorKind::Credential,
            "no Azure credential worked: environment (AZURE_CLIENT_SECRET): \
             ClientSecretCredential authentication failed.: client error (Connect): invalid \
             peer certificate: UnknownIssuer",
        );
        assert_eq!(call(token).class(), ErrorClass::UntrustedCertificate);
        let refused = call(transport_failure(
            ErrorKind::Connection,
            "Connection refused",
        ));
        assert_eq!(refused.class(), ErrorClass::Unreachable);
    }

    #[test]
    fn one_line_drops_wrappers_and_troubleshooting_links() {
        let inner = azure_core::Error::with_message(ErrorKind::Io, "AADSTS7000215: bad secret");
        let error = azure_core::Error::with_error(
            ErrorKind::Credential,
            inner,
            "ClientSecretCredential authentication failed. AADSTS7000215: bad secret\n\
             To troubleshoot, visit https://aka.ms/azsdk/rust/identity/troubleshoot#client-secret",
        )
        .with_context("non-transport error occurred which will not be retried");
        assert_eq!(
            one_line(&error),
            "ClientSecretCredential authentication failed. AADSTS7000215: bad secret"
        );
        let middle = azure_core::Error::with_error(
            ErrorKind::Credential,
            Level("the cause", None),
            "X failed.\nTo troubleshoot, visit https://aka.ms/x#y",
        );
        assert_eq!(one_line(&middle), "X failed.: the cause");
    }

    #[test]
    fn advice_is_in_hints_not_messages() {
        let denied = http_error(
            KEY,
            VAULT,
            Op::Decrypt,
            StatusCode::Forbidden,
            "no permission",
        );
        assert_eq!(denied.class(), ErrorClass::Denied);
        assert_eq!(
            denied.to_string(),
            format!("access to {KEY} denied (no permission)")
        );
        assert!(denied.hint().is_some_and(|h| h.contains("keys/decrypt")));
        let disabled = http_error(
            KEY,
            VAULT,
            Op::Decrypt,
            StatusCode::Forbidden,
            "a disabled key",
        );
        assert!(disabled.hint().is_some_and(|h| h.contains("enable")));
        let expired = http_error(KEY, VAULT, Op::Decrypt, StatusCode::Unauthorized, "expired");
        assert!(expired.hint().is_some_and(|h| h.contains("refresh")));
        let missing = http_error(KEY, VAULT, Op::Decrypt, StatusCode::NotFound, "not found");
        assert!(missing.hint().is_some_and(|h| h.contains("key name")));
        let encrypt = http_error(KEY, VAULT, Op::Encrypt, StatusCode::Forbidden, "no");
        assert!(encrypt.hint().is_some_and(|h| h.contains("keys/encrypt")));
        let get = http_error(KEY, VAULT, Op::Get, StatusCode::BadRequest, "bad");
        assert_eq!(get.class(), ErrorClass::Denied);
        assert_eq!(
            get.to_string(),
            format!("Key Vault refused to read {KEY} (bad)")
        );
        let busy = http_error(
            KEY,
            VAULT,
            Op::Decrypt,
            StatusCode::ServiceUnavailable,
            "busy",
        );
        assert_eq!(busy.class(), ErrorClass::Unreachable);
        let no_token = call(azure_core::Error::with_message(
            ErrorKind::Credential,
            "no Azure credential worked: Azure CLI (az): not logged in",
        ));
        assert_eq!(no_token.class(), ErrorClass::NoCredentials);
        assert!(no_token.hint().is_some_and(|h| h.contains("az login")));
    }
}
