//! Errors from SDKs nest five deep ("dispatch failure: io error: …"); the
//! user needs one line with what each level adds.

use std::error::Error;

/// The error and its causes on one line, joined by `: `. Each level's text
/// has its whitespace collapsed; a level that repeats what an earlier one
/// said, or that starts with one of `noise` (an SDK's empty wrappers such
/// as "dispatch failure"), is left out.
pub fn cause_chain(error: &(dyn Error + 'static), noise: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(level) = current {
        let text = level
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let empty = text.is_empty() || noise.iter().any(|n| text.starts_with(n));
        if !empty && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = level.source();
    }
    if parts.is_empty() {
        "unknown error".into()
    } else {
        parts.join(": ")
    }
}

/// Texts with which rustls and native TLS stacks report a certificate the
/// machine does not trust (as opposed to a network failure).
const UNTRUSTED: [&str; 7] = [
    "invalid peer certificate",
    "certificate verify failed",
    "UnknownIssuer",
    "CaUsedAsEndEntity",
    "self signed certificate",
    "self-signed certificate",
    "unable to get local issuer certificate",
];

/// Whether the error, or any of its causes, is a TLS certificate the
/// machine does not trust.
pub fn is_untrusted_certificate(error: &(dyn Error + 'static)) -> bool {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(level) = current {
        let text = format!("{level} {level:?}");
        if UNTRUSTED.iter().any(|u| text.contains(u)) {
            return true;
        }
        current = level.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Level(&'static str, Option<Box<Level>>);

    impl fmt::Display for Level {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Level {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    fn nest(levels: &[&'static str]) -> Level {
        let mut error: Option<Box<Level>> = None;
        for text in levels.iter().rev() {
            error = Some(Box::new(Level(text, error)));
        }
        error.map(|e| *e).unwrap_or(Level("", None))
    }

    #[test]
    fn one_line_without_repeats_or_noise() {
        let error = nest(&[
            "dispatch failure",
            "io error",
            "error trying to connect: tcp connect error:\n  Connection refused",
            "tcp connect error: Connection refused",
            "Connection refused",
        ]);
        assert_eq!(
            cause_chain(&error, &["dispatch failure", "io error"]),
            "error trying to connect: tcp connect error: Connection refused"
        );
        assert_eq!(cause_chain(&nest(&["other"]), &["other"]), "unknown error");
    }

    #[test]
    fn untrusted_certificates_are_recognised_in_any_cause() {
        let error = nest(&[
            "error sending request",
            "client error (Connect)",
            "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
        ]);
        assert!(is_untrusted_certificate(&error));
        assert!(!is_untrusted_certificate(&nest(&["connection refused"])));
    }
}
