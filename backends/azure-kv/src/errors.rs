//! What went wrong, classified into [`KeyError`] with a message that names
//! the vault and says what to do. Never a token, secret or key.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use rsops_keysource::KeyError;

/// Failures of the Azure key source, before classification.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AzureError {
    /// The entry itself is unusable (e.g. no `enc`).
    #[error("{0}")]
    Entry(KeyError),
    #[error("the entry has no `{0}` field")]
    MissingField(&'static str),
    #[error("the `enc` field is not valid base64url")]
    BadCiphertext,
    #[error("the vault_url is not a URL")]
    BadVaultUrl,
    #[error("cannot set up the Key Vault client: {0}")]
    Setup(String),
    #[error("Key Vault returned no plaintext")]
    EmptyResult,
    /// The decrypt call (or the token it needs) failed.
    #[error("{error}")]
    Call {
        error: azure_core::Error,
        vault: String,
    },
}

const CREDENTIALS_HINT: &str = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET \
     (or AZURE_CLIENT_CERTIFICATE_PATH), use workload or managed identity, or run `az login`";

impl AzureError {
    /// Classifies the failure for the orchestrator and the user.
    pub(crate) fn into_key_error(self, key: &str) -> KeyError {
        match self {
            AzureError::Entry(error) => error,
            e @ (AzureError::MissingField(_)
            | AzureError::BadCiphertext
            | AzureError::BadVaultUrl
            | AzureError::EmptyResult) => KeyError::CorruptEntry {
                message: e.to_string(),
            },
            AzureError::Setup(message) => KeyError::Unreachable { message },
            AzureError::Call { error, vault } => classify(key, &vault, &error),
        }
    }
}

fn classify(key: &str, vault: &str, error: &azure_core::Error) -> KeyError {
    match error.kind() {
        ErrorKind::Credential => KeyError::NoCredentials {
            message: format!("cannot get a token for {vault}: {}", error_text(error)),
            hint: Some(CREDENTIALS_HINT.to_string()),
        },
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
            http_error(key, vault, *status, &said)
        }
        ErrorKind::Connection | ErrorKind::Io => KeyError::Unreachable {
            message: format!("cannot reach {vault}: {}", error_text(error)),
        },
        _ => KeyError::Denied {
            message: format!(
                "Key Vault failed to decrypt with {key}: {}",
                error_text(error)
            ),
        },
    }
}

fn http_error(key: &str, vault: &str, status: StatusCode, said: &str) -> KeyError {
    let message = match u16::from(status) {
        401 => format!(
            "{vault} rejected the access token ({said}); it is expired, or was issued for \
             another tenant or resource: refresh the credentials"
        ),
        403 if said.to_ascii_lowercase().contains("disabled") => {
            format!("{key} is disabled ({said}); enable the key (or that version) in the vault")
        }
        403 => format!(
            "access to {key} denied ({said}); grant the caller the keys/decrypt permission \
             (e.g. the Key Vault Crypto User role)"
        ),
        404 => format!("{key} does not exist ({said}); check the vault URL, key name and version"),
        400 => {
            return KeyError::CorruptEntry {
                message: format!(
                    "Key Vault refused the ciphertext of {key} ({said}); the entry is damaged \
                     or was made with another key"
                ),
            }
        }
        429 | 500..=599 => {
            return KeyError::Unreachable {
                message: format!("{vault} is unavailable ({status}: {said})"),
            }
        }
        _ => format!("Key Vault failed to decrypt with {key} ({status}: {said})"),
    };
    KeyError::Denied { message }
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

/// The SDK's message and its causes (its retry policy wraps the real
/// error), without the multi-line troubleshooting appendix.
fn error_text(error: &azure_core::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = current {
        let text = e
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("To troubleshoot"))
            .collect::<Vec<_>>()
            .join(" ");
        // The retry policy's own wrapper says nothing about the cause.
        let noise = text.starts_with("non-transport error occurred");
        if !noise && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
