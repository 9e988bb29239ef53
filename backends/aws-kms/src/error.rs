//! What can go wrong unwrapping a `kms` entry, and how each failure reaches
//! the user as a [`KeyError`]: a class, a message naming what failed, and
//! a hint saying what to do about it.
//!
//! The SDK reports everything as one `SdkError`; the user needs to know
//! which of a handful of things to fix (credentials, network, trust,
//! permissions, the context, the key's state), so failures are classified
//! here. Malformed entries never get this far (see `entry.rs`).

use std::borrow::Cow;
use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::error::{ConnectorError, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::operation::encrypt::EncryptError;
use rsops_backend_common::{cause_chain, is_untrusted_certificate};
use rsops_keysource::{ErrorClass, KeyError};

/// Where the credential chain looks, for "no credentials" hints.
const CREDENTIALS_HINT: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \
     (~/.aws/config, ~/.aws/credentials; run `aws sso login` for SSO profiles), or \
     AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or run where an ECS task role or EC2 \
     instance profile provides credentials";

/// Where a named profile comes from.
const PROFILE_HINT: &str = "define the profile in ~/.aws/config or ~/.aws/credentials \
     (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE), and for SSO profiles run `aws sso login`";

/// The AWS SDK for Rust trusts the system's roots (read through
/// rustls-native-certs, which honours SSL_CERT_FILE and SSL_CERT_DIR); it
/// does not read AWS_CA_BUNDLE, which users of the reference may have set.
const CERTIFICATE_HINT: &str = "the endpoint's TLS certificate is not signed by a CA this machine \
     trusts: set SSL_CERT_FILE (or SSL_CERT_DIR) to the CA that signed it (AWS_CA_BUNDLE is not \
     read)";

/// The SDK's wrapper levels that add no words of their own ("dispatch
/// failure: other: an error occurred while loading credentials: …"): left
/// out of messages, which then read e.g. "tcp connect error: Connection
/// refused (os error 111)".
const SDK_NOISE: [&str; 8] = [
    "dispatch failure",
    "other",
    "io error",
    "timeout",
    "service error",
    "response error",
    "an error occurred while loading credentials",
    "the credential provider was not enabled",
];

/// A failed Decrypt call, classified.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("no AWS credentials found {detail}")]
    NoCredentials { detail: String, profile: bool },
    #[error("could not get AWS credentials: {detail}")]
    CredentialsFailed { detail: String, profile: bool },
    #[error("the AWS configuration is unusable: {detail}")]
    Config { detail: String },
    #[error("could not reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("could not connect securely to {endpoint}: {detail}")]
    UntrustedCertificate { endpoint: String, detail: String },
    #[error("could not assume role {role}: {detail}")]
    AssumeRole { role: String, detail: String },
    #[error("AWS KMS denied access to the key: {detail}")]
    AccessDenied { detail: String, action: Action },
    #[error("AWS KMS rejected the credentials: {detail}")]
    CredentialsRejected { detail: String },
    #[error(
        "AWS KMS could not decrypt the data key: the encryption context differs from the one \
         it was encrypted with, or the encrypted key is damaged"
    )]
    InvalidCiphertext,
    #[error("the data key was encrypted under a different KMS key than the entry's ARN")]
    IncorrectKey,
    #[error("the KMS key is disabled")]
    Disabled { action: Action },
    #[error("the KMS key does not exist in {region} (or this account cannot see it): {detail}")]
    NotFound { region: String, detail: String },
    #[error("the KMS key cannot be used in its current state: {detail}")]
    InvalidState { detail: String },
    #[error("AWS KMS is unavailable: {detail}")]
    Unavailable { detail: String },
    #[error("AWS KMS answered without the decrypted data key")]
    NoPlaintext,
    #[error("AWS KMS answered without the encrypted data key")]
    NoCiphertext,
    #[error("AWS KMS failed: {detail}")]
    Service { detail: String },
}

impl From<Error> for KeyError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let (class, hint): (ErrorClass, Option<Cow<'static, str>>) = match e {
            Error::IncorrectKey | Error::NoPlaintext => (ErrorClass::CorruptEntry, None),
            Error::NoCiphertext => (ErrorClass::Denied, None),
            Error::NoCredentials { profile, .. } | Error::CredentialsFailed { profile, .. } => (
                ErrorClass::NoCredentials,
                Some(Cow::Borrowed(if profile {
                    PROFILE_HINT
                } else {
                    CREDENTIALS_HINT
                })),
            ),
            Error::Config { .. } => (
                ErrorClass::NoCredentials,
                Some("check ~/.aws/config, AWS_PROFILE and the AWS_ENDPOINT_URL* variables".into()),
            ),
            Error::Unreachable { .. } | Error::Unavailable { .. } => {
                (ErrorClass::Unreachable, None)
            }
            Error::UntrustedCertificate { .. } => (
                ErrorClass::UntrustedCertificate,
                Some(CERTIFICATE_HINT.into()),
            ),
            Error::AssumeRole { .. } => (
                ErrorClass::Denied,
                Some(
                    "the role's trust policy must allow sts:AssumeRole to the identity the \
                     credentials belong to (see `aws sts get-caller-identity`)"
                        .into(),
                ),
            ),
            Error::AccessDenied { action, .. } => (
                ErrorClass::Denied,
                Some(Cow::Owned(format!(
                    "grant {} on the key to the identity the credentials belong to (see `aws \
                     sts get-caller-identity`), in the key policy or an IAM policy",
                    action.permission()
                ))),
            ),
            Error::CredentialsRejected { .. } => (
                ErrorClass::Denied,
                Some(
                    "the credentials are unknown, expired or do not match: refresh them (e.g. \
                     `aws sso login`), or check AWS_SESSION_TOKEN goes with AWS_ACCESS_KEY_ID"
                        .into(),
                ),
            ),
            Error::Disabled { action } => (
                ErrorClass::Denied,
                Some(Cow::Owned(format!(
                    "enable the key (`aws kms enable-key`) to {} with it",
                    action.verb()
                ))),
            ),
            Error::InvalidCiphertext
            | Error::NotFound { .. }
            | Error::InvalidState { .. }
            | Error::Service { .. } => (ErrorClass::Denied, None),
        };
        let error = KeyError::new(class, message);
        match hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}

/// What the classifier needs to know about the attempt.
pub(crate) struct Attempt<'a> {
    /// The key's region.
    pub region: &'a str,
    /// The role assumed first, if any.
    pub role: Option<&'a str>,
    /// The named profile, if any.
    pub profile: Option<&'a str>,
}

/// The KMS call that failed, for hints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `Decrypt`, unwrapping a file's data key.
    Decrypt,
    /// `Encrypt`, wrapping a new file's data key.
    Encrypt,
}

impl Action {
    /// The IAM permission the call needs.
    fn permission(self) -> &'static str {
        match self {
            Action::Decrypt => "kms:Decrypt",
            Action::Encrypt => "kms:Encrypt",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Decrypt => "decrypt",
            Action::Encrypt => "encrypt",
        }
    }
}

/// What a KMS exception of either call means; the two calls share most.
pub(crate) enum Exception {
    InvalidCiphertext,
    IncorrectKey,
    Disabled,
    NotFound,
    InvalidState,
    Unavailable,
    /// Anything else: told apart by its error code.
    Other,
}

/// A KMS operation's modelled error, so one classifier serves both calls.
pub(crate) trait KmsCallError:
    ProvideErrorMetadata + StdError + Send + Sync + 'static
{
    /// The call this is an error of.
    const ACTION: Action;
    /// What the exception means.
    fn exception(&self) -> Exception;
}

impl KmsCallError for DecryptError {
    const ACTION: Action = Action::Decrypt;
    fn exception(&self) -> Exception {
        match self {
            DecryptError::InvalidCiphertextException(_) => Exception::InvalidCiphertext,
            DecryptError::IncorrectKeyException(_) => Exception::IncorrectKey,
            DecryptError::DisabledException(_) => Exception::Disabled,
            DecryptError::NotFoundException(_) => Exception::NotFound,
            DecryptError::KmsInvalidStateException(_)
            | DecryptError::InvalidKeyUsageException(_) => Exception::InvalidState,
            DecryptError::KeyUnavailableException(_)
            | DecryptError::KmsInternalException(_)
            | DecryptError::DependencyTimeoutException(_) => Exception::Unavailable,
            _ => Exception::Other,
        }
    }
}

impl KmsCallError for EncryptError {
    const ACTION: Action = Action::Encrypt;
    fn exception(&self) -> Exception {
        match self {
            EncryptError::DisabledException(_) => Exception::Disabled,
            EncryptError::NotFoundException(_) => Exception::NotFound,
            EncryptError::KmsInvalidStateException(_)
            | EncryptError::InvalidKeyUsageException(_) => Exception::InvalidState,
            EncryptError::KeyUnavailableException(_)
            | EncryptError::KmsInternalException(_)
            | EncryptError::DependencyTimeoutException(_) => Exception::Unavailable,
            _ => Exception::Other,
        }
    }
}

/// Classifies a failed Decrypt or Encrypt call.
pub(crate) fn classify<E: KmsCallError>(err: &SdkError<E>, attempt: &Attempt<'_>) -> Error {
    let detail = || cause_chain(err, &SDK_NOISE);
    match err {
        SdkError::ServiceError(service) => classify_service(service.err(), attempt.region),
        SdkError::TimeoutError(_) => Error::Unreachable {
            endpoint: endpoint(attempt.region),
            detail: "no answer in time".into(),
        },
        SdkError::ResponseError(_) => Error::Unreachable {
            endpoint: endpoint(attempt.region),
            detail: format!("the answer is not a KMS response ({})", detail()),
        },
        _ => classify_chain(err, attempt).unwrap_or_else(|| Error::Config { detail: detail() }),
    }
}

/// Failures before a KMS answer: credentials, trust, network. Looks through
/// the whole source chain, because a credential provider's own network
/// failure (STS, SSO, IMDS) arrives wrapped in a dispatch failure of the
/// KMS call.
fn classify_chain(err: &(dyn StdError + 'static), attempt: &Attempt<'_>) -> Option<Error> {
    let chain = || std::iter::successors(Some(err), |e| (*e).source());
    let detail = cause_chain(err, &SDK_NOISE);
    let credentials: Vec<&CredentialsError> = chain()
        .filter_map(|e| e.downcast_ref::<CredentialsError>())
        .collect();
    if credentials
        .iter()
        .any(|c| matches!(c, CredentialsError::CredentialsNotLoaded(_)))
    {
        let detail = match attempt.profile {
            Some(profile) => format!("in profile `{profile}` ({detail})"),
            None => "(tried the environment, the shared config and credentials files, web \
                     identity, ECS and EC2 instance metadata)"
                .into(),
        };
        return Some(Error::NoCredentials {
            detail,
            profile: attempt.profile.is_some(),
        });
    }
    // Who the failed connection was to: KMS itself, or, when a credential
    // provider failed, the service it called.
    let peer = || match (attempt.role, credentials.is_empty()) {
        (_, true) => endpoint(attempt.region),
        (Some(role), false) => format!("AWS STS to assume {role}"),
        (None, false) => "the AWS credential provider".into(),
    };
    // Before the network: a rejected certificate is also an I/O error.
    if is_untrusted_certificate(err) {
        return Some(Error::UntrustedCertificate {
            endpoint: peer(),
            detail,
        });
    }
    let network = chain().any(|e| {
        e.downcast_ref::<ConnectorError>()
            .is_some_and(|c| c.is_io() || c.is_timeout())
    }) || credentials
        .iter()
        .any(|c| matches!(c, CredentialsError::ProviderTimedOut(_)));
    if network {
        return Some(Error::Unreachable {
            endpoint: peer(),
            detail,
        });
    }
    if credentials.is_empty() {
        return None;
    }
    Some(match attempt.role {
        Some(role) => Error::AssumeRole {
            role: role.to_string(),
            detail,
        },
        None => Error::CredentialsFailed {
            detail,
            profile: attempt.profile.is_some(),
        },
    })
}

fn classify_service<E: KmsCallError>(err: &E, region: &str) -> Error {
    // Parsed responses carry code and message in the error metadata; the
    // error's own text is the fallback (it names the exception).
    let detail = || match (err.code(), err.message()) {
        (Some(code), Some(message)) if !message.is_empty() => format!("{code}: {message}"),
        _ => err.to_string(),
    };
    match err.exception() {
        Exception::InvalidCiphertext => Error::InvalidCiphertext,
        Exception::IncorrectKey => Error::IncorrectKey,
        Exception::Disabled => Error::Disabled { action: E::ACTION },
        Exception::NotFound => Error::NotFound {
            region: region.to_string(),
            detail: detail(),
        },
        Exception::InvalidState => Error::InvalidState { detail: detail() },
        Exception::Unavailable => Error::Unavailable { detail: detail() },
        Exception::Other => match err.code() {
            Some("AccessDeniedException" | "AccessDenied") => Error::AccessDenied {
                detail: detail(),
                action: E::ACTION,
            },
            Some(
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "IncompleteSignature"
                | "ExpiredTokenException"
                | "InvalidClientTokenId",
            ) => Error::CredentialsRejected { detail: detail() },
            _ => Error::Service { detail: detail() },
        },
    }
}

/// The KMS endpoint the SDK uses for `region`, for messages: the override
/// variables when set (the SDK honours them), else the public endpoint.
/// A profile's `endpoint_url` is not shown; it is rare and the SDK's own
/// error text names the host.
fn endpoint(region: &str) -> String {
    for var in ["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"] {
        if let Some(url) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
            return format!("AWS KMS ({var}={url})");
        }
    }
    format!("AWS KMS (https://kms.{region}.amazonaws.com)")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_kms::config::http::HttpResponse;
    use aws_sdk_kms::error::ErrorMetadata;
    use aws_sdk_kms::types::error::{
        DisabledException, IncorrectKeyException, InvalidCiphertextException, KmsInternalException,
        KmsInvalidStateException, NotFoundException,
    };
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    const PLAIN: Attempt<'static> = Attempt {
        region: "eu-west-1",
        role: None,
        profile: None,
    };
    const ROLE: Attempt<'static> = Attempt {
        region: "eu-west-1",
        role: Some("arn:aws:iam::1:role/deploy"),
        profile: None,
    };

    fn service(err: DecryptError) -> SdkError<DecryptError> {
        let status = StatusCode::try_from(400).unwrap_or_else(|_| unreachable!());
        SdkError::service_error(err, HttpResponse::new(status, SdkBody::empty()))
    }

    fn generic(code: &str) -> SdkError<DecryptError> {
        service(DecryptError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("the service says no")
                .build(),
        ))
    }

    /// A credential failure as the SDK reports it: a dispatch failure of
    /// the KMS call whose source is the provider's error.
    fn credentials(err: CredentialsError) -> SdkError<DecryptError> {
        SdkError::dispatch_failure(ConnectorError::other(Box::new(err), None))
    }

    fn key_error(err: SdkError<DecryptError>, attempt: &Attempt<'_>) -> KeyError {
        classify(&err, attempt).into()
    }

    #[test]
    fn service_errors_are_told_apart() {
        let cases: Vec<(SdkError<DecryptError>, &str)> = vec![
            (
                service(DecryptError::InvalidCiphertextException(
                    InvalidCiphertextException::builder().build(),
                )),
                "encryption context",
            ),
            (
                service(DecryptError::DisabledException(
                    DisabledException::builder().build(),
                )),
                "disabled",
            ),
            (
                service(DecryptError::NotFoundException(
                    NotFoundException::builder()
                        .message("Key 'x' does not exist")
                        .build(),
                )),
                "does not exist in eu-west-1",
            ),
            (
                service(DecryptError::KmsInvalidStateException(
                    KmsInvalidStateException::builder()
                        .message("pending deletion")
                        .build(),
                )),
                "pending deletion",
            ),
            (generic("AccessDeniedException"), "denied access"),
            (
                generic("UnrecognizedClientException"),
                "rejected the credentials",
            ),
            (generic("SomethingNew"), "SomethingNew: the service says no"),
        ];
        for (err, expected) in cases {
            let e = key_error(err, &PLAIN);
            assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
            assert!(e.to_string().contains(expected), "{e} vs {expected}");
        }
    }

    #[test]
    fn damaged_or_mismatched_ciphertext_is_a_corrupt_entry() {
        let e = key_error(
            service(DecryptError::IncorrectKeyException(
                IncorrectKeyException::builder().build(),
            )),
            &PLAIN,
        );
        assert_eq!(e.class(), ErrorClass::CorruptEntry, "{e:?}");
    }

    #[test]
    fn service_side_outages_are_unreachable() {
        let e = key_error(
            service(DecryptError::KmsInternalException(
                KmsInternalException::builder().build(),
            )),
            &PLAIN,
        );
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
    }

    #[test]
    fn network_failures_are_unreachable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for err in [
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused))),
            SdkError::dispatch_failure(ConnectorError::timeout("read timed out".into())),
            SdkError::timeout_error("operation timed out"),
        ] {
            let e = key_error(err, &PLAIN);
            assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
            assert!(e.to_string().contains("could not reach AWS KMS"), "{e}");
        }
    }

    #[test]
    fn missing_credentials_come_with_a_hint() {
        let e = key_error(
            credentials(CredentialsError::not_loaded("no providers in chain")),
            &PLAIN,
        );
        assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
        assert!(e.to_string().starts_with("no AWS credentials found"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("AWS_PROFILE")));
    }

    #[test]
    fn messages_are_one_line_without_sdk_wrapper_words() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let e = key_error(
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused))),
            &PLAIN,
        );
        let text = e.to_string();
        assert!(
            text.ends_with("): Connection refused (os error 111)"),
            "{text}"
        );
        let e = key_error(
            credentials(CredentialsError::not_loaded("no profile\nnamed dev\n")),
            &Attempt {
                profile: Some("dev"),
                ..PLAIN
            },
        );
        assert_eq!(
            e.to_string(),
            "no AWS credentials found in profile `dev` (no profile named dev)"
        );
        assert!(e
            .hint()
            .is_some_and(|h| h.starts_with("define the profile")));
    }

    #[test]
    fn credential_provider_timeouts_are_unreachable() {
        let e = key_error(
            credentials(CredentialsError::provider_timed_out(Duration::from_secs(5))),
            &ROLE,
        );
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert!(
            e.to_string()
                .starts_with("could not reach AWS STS to assume arn:aws:iam::1:role/deploy"),
            "{e}"
        );
    }

    #[test]
    fn a_refused_assume_role_names_the_role() {
        let e = key_error(
            credentials(CredentialsError::provider_error(
                "AccessDenied: not allowed",
            )),
            &ROLE,
        );
        assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
        assert!(
            e.to_string()
                .starts_with("could not assume role arn:aws:iam::1:role/deploy"),
            "{e}"
        );
    }

    #[test]
    fn a_broken_profile_is_a_credentials_problem() {
        let e = key_error(
            credentials(CredentialsError::invalid_configuration(
                "profile `dev` is not defined",
            )),
            &Attempt {
                profile: Some("dev"),
                ..PLAIN
            },
        );
        assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("could not get AWS credentials: "),
            "{text}"
        );
        assert!(text.ends_with("profile `dev` is not defined"), "{text}");
        assert!(e
            .hint()
            .is_some_and(|h| h.starts_with("define the profile")));
    }

    #[test]
    fn an_unbuildable_request_is_a_configuration_problem() {
        let e = key_error(
            SdkError::construction_failure("invalid endpoint URL"),
            &PLAIN,
        );
        assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
        assert!(
            e.to_string()
                .starts_with("the AWS configuration is unusable"),
            "{e}"
        );
    }

    #[test]
    fn refusals_say_what_to_grant_or_fix() {
        let e = key_error(generic("AccessDeniedException"), &PLAIN);
        assert!(e.hint().is_some_and(|h| h.contains("kms:Decrypt")), "{e:?}");
        let e = key_error(
            credentials(CredentialsError::provider_error(
                "AccessDenied: not allowed",
            )),
            &ROLE,
        );
        assert!(
            e.hint().is_some_and(|h| h.contains("sts:AssumeRole")),
            "{e:?}"
        );
        let e = key_error(
            service(DecryptError::DisabledException(
                DisabledException::builder().build(),
            )),
            &PLAIN,
        );
        assert!(e.hint().is_some_and(|h| h.contains("enable-key")), "{e:?}");
        assert!(!e.to_string().contains("enable-key"), "{e}");
    }

    /// What rustls reports, below hyper's and the SDK's wrappers, when the
    /// endpoint's certificate is signed by a CA this machine does not know.
    fn untrusted() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        )
    }

    #[test]
    fn an_untrusted_certificate_is_not_a_network_failure() {
        let e = key_error(
            SdkError::dispatch_failure(ConnectorError::io(Box::new(untrusted()))),
            &PLAIN,
        );
        assert_eq!(e.class(), ErrorClass::UntrustedCertificate, "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("could not connect securely to AWS KMS ("),
            "{text}"
        );
        assert!(
            text.ends_with("): invalid peer certificate: UnknownIssuer"),
            "{text}"
        );
        assert!(
            e.hint().is_some_and(|h| h.contains("SSL_CERT_FILE")),
            "{e:?}"
        );
        // The same failure on the way to STS names the role.
        let e = key_error(
            credentials(CredentialsError::provider_error(untrusted())),
            &ROLE,
        );
        assert_eq!(e.class(), ErrorClass::UntrustedCertificate, "{e:?}");
        assert!(
            e.to_string().starts_with(
                "could not connect securely to AWS STS to assume arn:aws:iam::1:role/deploy: "
            ),
            "{e}"
        );
    }

    #[test]
    fn the_endpoint_override_is_named() {
        // Only reads the variables; the default is used when they are unset.
        let shown = endpoint("ap-south-1");
        assert!(
            shown.starts_with("AWS KMS (AWS_ENDPOINT_URL")
                || shown == "AWS KMS (https://kms.ap-south-1.amazonaws.com)",
            "{shown}"
        );
    }
}
