//! What went wrong, classified into [`KeyError`]: a message that says which
//! credentials were used and what the service said, and a hint that says
//! what to do. Never a token or key.

use google_cloud_gax::error::rpc::Code;
use rsops_backend_common::{cause_chain, is_untrusted_certificate};
use rsops_keysource::KeyError;

use crate::credentials::{Source, CREDENTIALS_ENV, TOKEN_ENV};

/// Failures of the GCP key source, before classification.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GcpError {
    /// The entry itself is unusable (no `resource_id`, no `enc`).
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
        op: Op,
    },
    /// KMS answered an encrypt call without a ciphertext.
    #[error("GCP KMS returned no ciphertext")]
    NoCiphertext,
}

/// The KMS call that failed: the words and the IAM role of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `Decrypt`: unwrapping an entry's data key.
    Decrypt,
    /// `Encrypt`: wrapping a data key for a new entry.
    Encrypt,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Decrypt => "decrypt",
            Op::Encrypt => "encrypt",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Op::Decrypt => "roles/cloudkms.cryptoKeyDecrypter",
            Op::Encrypt => "roles/cloudkms.cryptoKeyEncrypter",
        }
    }
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
            e @ (GcpError::BadResourceId | GcpError::BadCiphertext) => {
                KeyError::corrupt_entry(e.to_string())
            }
            e @ (GcpError::CredentialsFile { .. }
            | GcpError::CredentialsJson { .. }
            | GcpError::CredentialsBuild { .. }
            | GcpError::BadStaticToken) => {
                KeyError::no_credentials(e.to_string()).with_hint(credentials_hint())
            }
            GcpError::Setup(message) => KeyError::unreachable(message),
            e @ GcpError::NoCiphertext => KeyError::denied(format!("{e} for {key}")),
            GcpError::Rpc {
                error,
                creds,
                endpoint,
                op,
            } => classify_rpc(key, &error, creds, &endpoint, op),
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
    op: Op,
) -> KeyError {
    let verb = op.verb();
    // First: a rejected certificate also reads as a transport (or, on the
    // way to the token endpoint, an authentication) failure.
    if is_untrusted_certificate(error) {
        let message = if error.is_authentication() {
            format!(
                "could not get an access token from {source}: {}",
                cause_chain(error, &[])
            )
        } else {
            format!(
                "could not connect securely to GCP KMS at {endpoint}: {}",
                cause_chain(error, &[])
            )
        };
        return KeyError::untrusted_certificate(message);
    }
    if error.is_authentication() {
        return KeyError::no_credentials(format!(
            "could not get an access token from {source}: {}",
            cause_chain(error, &[])
        ))
        .with_hint(credentials_hint());
    }
    if let Some(status) = error.status() {
        let said = &status.message;
        return match status.code {
            Code::Unauthenticated => KeyError::denied(format!(
                "GCP KMS at {endpoint} rejected the access token (from {source}) as invalid, \
                 expired or issued for another audience ({said})"
            ))
            .with_hint(format!(
                "refresh the credentials from {source}, and check they are meant for Cloud KMS"
            )),
            Code::PermissionDenied => KeyError::denied(format!(
                "permission denied on {key} for the identity from {source} ({said})"
            ))
            .with_hint(format!(
                "grant the identity from {source} {} on the key",
                op.role()
            )),
            Code::NotFound => {
                KeyError::denied(format!("{key} does not exist at {endpoint} ({said})"))
                    .with_hint("check the project, location, key ring and key name")
            }
            Code::FailedPrecondition => KeyError::denied(format!(
                "{key} cannot {verb}: its key version is disabled or destroyed ({said})"
            ))
            .with_hint("re-enable the key version in Cloud KMS"),
            Code::InvalidArgument if op == Op::Encrypt => {
                KeyError::denied(format!("GCP KMS refused to encrypt with {key} ({said})"))
                    .with_hint("check that the key's purpose is ENCRYPT_DECRYPT (symmetric)")
            }
            Code::InvalidArgument => KeyError::corrupt_entry(format!(
                "GCP KMS refused the ciphertext of {key} ({said}); the entry is damaged or was \
                 made with another key"
            )),
            Code::Unavailable | Code::DeadlineExceeded => {
                KeyError::unreachable(format!("GCP KMS at {endpoint} is unavailable ({said})"))
            }
            _ => KeyError::denied(format!(
                "GCP KMS at {endpoint} failed to {verb} with {key}: {said}"
            )),
        };
    }
    if error.is_timeout() || error.is_connect() || error.is_io() || error.is_transport() {
        return KeyError::unreachable(format!(
            "cannot reach GCP KMS at {endpoint}: {}",
            cause_chain(error, &[])
        ));
    }
    KeyError::denied(format!(
        "GCP KMS at {endpoint} failed to {verb} with {key}: {}",
        cause_chain(error, &[])
    ))
}

#[cfg(test)]
mod tests {
    use google_cloud_gax::error::rpc::Status;
    use google_cloud_gax::error::CredentialsError;
    use google_cloud_kms_v1::Error;
    use rsops_keysource::ErrorClass;

    use super::*;

    const KEY: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
    const AT: &str = "https://kms.example";

    fn classify(error: Error) -> KeyError {
        classify_op(error, Op::Decrypt)
    }

    fn classify_op(error: Error, op: Op) -> KeyError {
        GcpError::Rpc {
            error,
            creds: Source::TokenEnv,
            endpoint: AT.into(),
            op,
        }
        .into_key_error(KEY)
    }

    #[test]
    fn encrypt_refusals_name_the_encrypt_role_and_verb() {
        let e = classify_op(status(Code::PermissionDenied, "denied"), Op::Encrypt);
        assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("roles/cloudkms.cryptoKeyEncrypter")),
            "{e:?}"
        );
        let e = classify_op(status(Code::FailedPrecondition, "DISABLED"), Op::Encrypt);
        assert!(e.to_string().contains("cannot encrypt"), "{e}");
        let e = classify_op(
            status(Code::InvalidArgument, "bad key purpose"),
            Op::Encrypt,
        );
        assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
        assert!(e.to_string().contains("refused to encrypt"), "{e}");
        let e = classify_op(status(Code::Internal, "boom"), Op::Encrypt);
        assert!(e.to_string().contains("failed to encrypt with"), "{e}");
    }

    fn status(code: Code, message: &str) -> Error {
        Error::service(Status::default().set_code(code).set_message(message))
    }

    /// What rustls reports, below reqwest's and hyper's wrappers, when the
    /// server's certificate is signed by a CA this machine does not know.
    fn untrusted() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        )
    }

    #[test]
    fn an_untrusted_certificate_is_not_a_network_failure() {
        let e = classify(Error::connect(untrusted()));
        assert_eq!(e.class(), ErrorClass::UntrustedCertificate, "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("could not connect securely to GCP KMS at https://kms.example: "),
            "{text}"
        );
        // What tests/it/gcp.rs looks for.
        assert!(
            text.contains("invalid peer certificate: UnknownIssuer"),
            "{text}"
        );
        assert!(
            e.hint().is_some_and(|h| h.contains("SSL_CERT_FILE")),
            "{e:?}"
        );
        // On the way to the token endpoint, the same.
        let e = classify(Error::authentication(CredentialsError::from_source(
            false,
            untrusted(),
        )));
        assert_eq!(e.class(), ErrorClass::UntrustedCertificate, "{e:?}");
        assert!(
            e.to_string()
                .starts_with("could not get an access token from GOOGLE_OAUTH_ACCESS_TOKEN: "),
            "{e}"
        );
    }

    #[test]
    fn other_connection_failures_are_unreachable() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let e = classify(Error::connect(refused));
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert!(
            e.to_string().ends_with("Connection refused (os error 111)"),
            "{e}"
        );
    }

    #[test]
    fn refusals_keep_the_service_words_and_say_what_to_do_in_a_hint() {
        let cases = [
            (
                Code::PermissionDenied,
                "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied",
                ErrorClass::Denied,
                Some("roles/cloudkms.cryptoKeyDecrypter"),
            ),
            (
                Code::NotFound,
                "k not found.",
                ErrorClass::Denied,
                Some("key ring"),
            ),
            (
                Code::FailedPrecondition,
                "current state is: DISABLED.",
                ErrorClass::Denied,
                Some("re-enable"),
            ),
            (
                Code::Unauthenticated,
                "the token has expired",
                ErrorClass::Denied,
                Some("refresh the credentials from GOOGLE_OAUTH_ACCESS_TOKEN"),
            ),
            (
                Code::InvalidArgument,
                "Decryption failed",
                ErrorClass::CorruptEntry,
                None,
            ),
            (
                Code::Unavailable,
                "try later",
                ErrorClass::Unreachable,
                None,
            ),
        ];
        for (code, said, class, hint) in cases {
            let e = classify(status(code, said));
            assert_eq!(e.class(), class, "{code:?}: {e:?}");
            assert!(e.to_string().contains(said), "{code:?}: {e}");
            match hint {
                Some(hint) => {
                    assert!(
                        e.hint().is_some_and(|h| h.contains(hint)),
                        "{code:?}: {e:?}"
                    );
                    assert!(!e.to_string().contains(hint), "{code:?}: {e}");
                }
                None => assert_eq!(e.hint(), None, "{code:?}"),
            }
        }
    }

    #[test]
    fn token_failures_are_missing_credentials_with_the_sources_in_the_hint() {
        let e = classify(Error::authentication(CredentialsError::from_msg(
            false,
            "The audience in ID Token does not match the expected audience.",
        )));
        assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
        assert!(
            e.to_string()
                .contains("The audience in ID Token does not match the expected audience."),
            "{e}"
        );
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("GOOGLE_APPLICATION_CREDENTIALS")),
            "{e:?}"
        );
    }
}
