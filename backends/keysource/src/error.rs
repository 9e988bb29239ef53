//! One error shape for every key source: a class the orchestrator and the
//! exit code go by, a message that names the key, and a hint for any class.

use std::fmt;

/// What kind of failure an attempt met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// This machine holds no credential for the entry (no matching identity,
    /// no token, no secret key).
    NoCredentials,
    /// The service refused (permission denied, wrong passphrase, bad token).
    Denied,
    /// The service could not be reached or did not answer in time.
    Unreachable,
    /// The service answered with a TLS certificate this machine does not trust.
    UntrustedCertificate,
    /// The entry itself is malformed or its ciphertext is damaged.
    CorruptEntry,
    /// This build of rsops has no key source for the entry's kind, or the
    /// entry's key type.
    Unsupported,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::NoCredentials => "no credentials",
            ErrorClass::Denied => "denied",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::UntrustedCertificate => "untrusted certificate",
            ErrorClass::CorruptEntry => "corrupt entry",
            ErrorClass::Unsupported => "unsupported",
        })
    }
}

/// Why a key entry could not be unwrapped. Messages name keys and
/// locations, never secrets.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct KeyError {
    class: ErrorClass,
    message: String,
    hint: Option<String>,
}

impl KeyError {
    /// An error of `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> KeyError {
        KeyError {
            class,
            message: message.into(),
            hint: None,
        }
    }

    /// [`ErrorClass::NoCredentials`].
    pub fn no_credentials(message: impl Into<String>) -> KeyError {
        KeyError::new(ErrorClass::NoCredentials, message)
    }

    /// [`ErrorClass::Denied`].
    pub fn denied(message: impl Into<String>) -> KeyError {
        KeyError::new(ErrorClass::Denied, message)
    }

    /// [`ErrorClass::Unreachable`].
    pub fn unreachable(message: impl Into<String>) -> KeyError {
        KeyError::new(ErrorClass::Unreachable, message)
    }

    /// [`ErrorClass::UntrustedCertificate`], with the hint that fits every
    /// HTTPS key service; a service with its own CA variable adds it.
    pub fn untrusted_certificate(message: impl Into<String>) -> KeyError {
        KeyError::new(ErrorClass::UntrustedCertificate, message).with_hint(
            "the server's TLS certificate is not signed by a CA this machine trusts: set SSL_CERT_FILE (or SSL_CERT_DIR) to the CA that signed it",
        )
    }

    /// [`ErrorClass::CorruptEntry`].
    pub fn corrupt_entry(message: impl Into<String>) -> KeyError {
        KeyError::new(ErrorClass::CorruptEntry, message)
    }

    /// [`ErrorClass::Unsupported`]: no key source for entries of `kind`.
    pub fn unsupported_kind(kind: &str) -> KeyError {
        KeyError::new(
            ErrorClass::Unsupported,
            format!("rsops was built without support for `{kind}` keys"),
        )
    }

    /// The same error with what the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> KeyError {
        self.hint = Some(hint.into());
        self
    }

    /// The class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// What the user can do about it, when known.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_can_carry_a_hint() {
        let error = KeyError::denied("kms key k: AccessDenied").with_hint("grant kms:Decrypt");
        assert_eq!(error.class(), ErrorClass::Denied);
        assert_eq!(error.to_string(), "kms key k: AccessDenied");
        assert_eq!(error.hint(), Some("grant kms:Decrypt"));
        let tls = KeyError::untrusted_certificate("https://vault:8200");
        assert!(tls.hint().is_some_and(|h| h.contains("SSL_CERT_FILE")));
        assert_eq!(
            KeyError::unsupported_kind("hckms").to_string(),
            "rsops was built without support for `hckms` keys"
        );
    }
}
