//! The STS session name used when assuming a role, as the reference makes
//! it: `sops@<hostname>`, so CloudTrail shows the same name for both tools.

/// AWS's limit on role session names.
const MAX_LEN: usize = 64;

/// `sops@<hostname>`, sanitized and truncated as the reference does.
pub(crate) fn name() -> String {
    from_hostname(&hostname())
}

/// Keeps the characters the reference's `[^a-zA-Z0-9=,.@-_]+` does not
/// remove. In that Go class `@-_` is a *range* (`@` to `_`: upper-case
/// letters, `[`, `\`, `]`, `^`), so `-` is removed; mimicked exactly.
fn from_hostname(hostname: &str) -> String {
    let kept = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | ',' | '.' | '@'..='_'));
    let mut name: String = "sops@".chars().chain(kept).collect();
    // All ASCII by now, so byte truncation is a character boundary.
    name.truncate(MAX_LEN);
    name
}

/// The kernel's host name (what Go's `os.Hostname` returns), or empty.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_reference_character_set() {
        assert_eq!(
            from_hostname("ci-runner.example.com"),
            "sops@cirunner.example.com"
        );
        assert_eq!(from_hostname("Box_1[a]^b"), "sops@Box_1[a]^b");
        assert_eq!(from_hostname("a b/c:d"), "sops@abcd");
        assert_eq!(from_hostname(""), "sops@");
    }

    #[test]
    fn truncates_to_the_aws_limit() {
        let long = "h".repeat(100);
        let name = from_hostname(&long);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("sops@hhh"));
    }

    #[test]
    fn uses_this_machines_name() {
        assert!(name().starts_with("sops@"));
    }
}
