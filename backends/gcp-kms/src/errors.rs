//! What went wrong, classified into [`KeyError`] with a message that says
//! which credentials were used and what to do. Never a token or key.

use google_cloud_gax::error::rpc::Code;
use rsops_keysource::KeyError;

use crate::credentials::{Source, CREDENTIALS_ENV, TOKEN_ENV};

/// Failures of the GCP key source, before classification.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GcpError {
    /// The entry itself is unusable (e.g. no `enc`).
    #[error("{0}")]
    Entry(KeyError),
    #[error(
        "the resource_id is not a crypto key name \
         (projects/P/locations/L/keyRings/R/cryptoKeys/K)"
    )]
    BadResourceId,
    #[error("the `enc` field is not valid base64")]
    BadCiphertext,
    #[error("cannot read the credentials file {path} named by {CREDENTIALS_ENV}: {error}")]
    CredentialsFile { path: String, error: String },
    #[error(
        "{CREDENTIALS_ENV} holds neither a readable file path nor usable credentials: {detail}"
    )]
    CredentialsJson { detail: String },
    #[error("the credentials from {creds} are unusable: {detail}")]
    CredentialsBuild { creds: Source, detail: String },
    #[error("{TOKEN_ENV} is not a valid token (it contains characters a header cannot hold)")]
    BadStaticToken,
    #[error("cannot set up the GCP KMS client: {0}")]
    Setup(String),
    /// The call to KMS (or the token fetch it needs) failed.
    #[error("{error}")]
    Rpc {
        error: google_cloud_kms_v1::Error,
        creds: Source,
        endpoint: String,
    },
}

impl GcpError {
    /// Describes a credentials build error by its kind: the SDK's own
    /// message may quote the (secret) document it failed to parse.
    pub(crate) fn credentials_build(
        source: Source,
        error: &google_cloud_auth::build_errors::Error,
    ) -> Self {
        let detail = if error.is_loading() || error.is_missing_field() || error.is_not_supported() {
            error.to_string()
        } else if error.is_unknown_type() {
            "the credentials file has an unknown `type`".to_string()
        } else if error.is_parsing() {
            "the credentials file cannot be parsed".to_string()
        } else {
            "the credentials are invalid".to_string()
        };
        GcpError::CredentialsBuild {
            creds: source,
            detail,
        }
    }

    /// Classifies the failure for the orchestrator and the user.
    pub(crate) fn into_key_error(self, key: &str) -> KeyError {
        match self {
            GcpError::Entry(error) => error,
            e @ (GcpError::BadResourceId | GcpError::BadCiphertext) => KeyError::CorruptEntry {
                message: e.to_string(),
            },
            e @ (GcpError::CredentialsFile { .. }
            | GcpError::CredentialsJson { .. }
            | GcpError::CredentialsBuild { .. }
            | GcpError::BadStaticToken) => KeyError::NoCredentials {
                message: e.to_string(),
                hint: Some(credentials_hint()),
            },
            GcpError::Setup(message) => KeyError::Unreachable { message },
            GcpError::Rpc {
                error,
                creds,
                endpoint,
            } => classify_rpc(key, &error, creds, &endpoint),
        }
    }
}

fn credentials_hint() -> String {
    format!(
        "set {CREDENTIALS_ENV} to a service account key file (or its JSON), \
         {TOKEN_ENV} to an access token, or GOOGLE_APPLICATION_CREDENTIALS; \
         or run `gcloud auth application-default login`"
    )
}

fn classify_rpc(
    key: &str,
    error: &google_cloud_kms_v1::Error,
    source: Source,
    endpoint: &str,
) -> KeyError {
    if error.is_authentication() {
        return KeyError::NoCredentials {
            message: format!(
                "could not get an access token from {source}: {}",
                with_causes(error)
            ),
            hint: Some(credentials_hint()),
        };
    }
    if let Some(status) = error.status() {
        let said = &status.message;
        let message = match status.code {
            Code::Unauthenticated => format!(
                "GCP KMS at {endpoint} rejected the access token (from {source}) as invalid, \
                 expired or issued for another audience ({said}); refresh the credentials"
            ),
            Code::PermissionDenied => format!(
                "permission denied on {key} for the identity from {source} ({said}); grant \
                 it roles/cloudkms.cryptoKeyDecrypter on the key"
            ),
            Code::NotFound => format!(
                "{key} does not exist at {endpoint} ({said}); check the project, location, \
                 key ring and key name"
            ),
            Code::FailedPrecondition => format!(
                "{key} cannot decrypt: its key version is disabled or destroyed ({said}); \
                 re-enable it in Cloud KMS"
            ),
            Code::InvalidArgument => {
                return KeyError::CorruptEntry {
                    message: format!(
                        "GCP KMS refused the ciphertext of {key} ({said}); the entry is \
                         damaged or was made with another key"
                    ),
                }
            }
            Code::Unavailable | Code::DeadlineExceeded => {
                return KeyError::Unreachable {
                    message: format!("GCP KMS at {endpoint} is unavailable ({said})"),
                }
            }
            _ => format!("GCP KMS at {endpoint} failed to decrypt with {key}: {said}"),
        };
        return KeyError::Denied { message };
    }
    if error.is_timeout() || error.is_connect() || error.is_io() || error.is_transport() {
        return KeyError::Unreachable {
            message: format!("cannot reach GCP KMS at {endpoint}: {}", with_causes(error)),
        };
    }
    KeyError::Denied {
        message: format!(
            "GCP KMS at {endpoint} failed to decrypt with {key}: {}",
            with_causes(error)
        ),
    }
}

/// The SDK's message and its causes (the token endpoint's answer, the
/// connection error), which its own `Display` leaves out.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}
