//! Telling a literal secret from an ordinary value or a reference the
//! client substitutes, and masking it for display. Nothing here returns or
//! prints a value: only why it looks secret and a masked hint.

use super::clients::Client;

/// Prefixes of well-known credential formats.
const PREFIXES: &[&str] = &[
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "pk_live_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxe-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "ya29.",
    "npm_",
    "pypi-",
    "hf_",
    "SG.",
    "shpat_",
    "dop_v1_",
    "lin_api_",
    "ntn_",
    "secret_",
    "AGE-SECRET-KEY-",
];

/// Words in a variable, flag or header name that mark its value secret.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "KEY",
    "AUTH",
    "CREDENTIAL",
    "PRIVATE",
    "AUTHORIZATION",
    "CREDENTIALS",
    "APIKEY",
    "COOKIE",
    "SIGNATURE",
    "PAT",
];

/// Name endings that hold a location or a setting, not the secret itself.
const NOT_SECRET_ENDINGS: &[&str] = &[
    "_FILE",
    "_PATH",
    "_DIR",
    "_URL",
    "_URI",
    "_HOST",
    "_ENDPOINT",
    "_ID",
    "_NAME",
    "_TYPE",
    "_MODE",
    "_REGION",
    "_HEADER",
    "_ENV",
    "_VAR",
];

/// Why a value was taken for a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its variable, flag or header name says so.
    Name,
    /// It starts like a known credential (`ghp_`, `sk-`, `AKIA`…).
    Prefix,
    /// A URL with a password in it.
    UrlPassword,
    /// A long random-looking string.
    Entropy,
    /// A PEM private key or a JSON web token.
    KeyMaterial,
}

impl Reason {
    /// A short phrase for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Name => "secret name",
            Reason::Prefix => "credential prefix",
            Reason::UrlPassword => "password in URL",
            Reason::Entropy => "random-looking",
            Reason::KeyMaterial => "key material",
        }
    }
}

/// Whether a variable, flag or header name says its value is secret
/// (`GITHUB_TOKEN`, `--api-key`, `apiKey`, `Authorization`, `X-Api-Key`).
pub fn is_secret_name(name: &str) -> bool {
    let mut upper = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.trim_start_matches('-').chars() {
        if c.is_ascii_uppercase() && previous_lower {
            upper.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        upper.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    if upper.is_empty() || NOT_SECRET_ENDINGS.iter().any(|e| upper.ends_with(e)) {
        return false;
    }
    upper.split('_').any(|word| {
        SECRET_WORDS.contains(&word)
            || ["TOKEN", "SECRET", "PASSWORD", "APIKEY", "ACCESSKEY"]
                .iter()
                .any(|w| word.len() > w.len() && word.ends_with(w))
    })
}

/// Why `value`, found under `name` (when it has one), is a literal secret
/// for `client`; `None` when it is not one, or is a reference the client
/// substitutes.
pub fn classify(client: Client, name: Option<&str>, value: &str) -> Option<Reason> {
    let literal = strip_references(client, value);
    let literal = literal.trim();
    let literal = strip_scheme(literal);
    if literal.is_empty() || literal.len() < 4 && !name.is_some_and(is_secret_name) {
        return None;
    }
    if let Some(reason) = classify_shape(literal) {
        return Some(reason);
    }
    if name.is_some_and(is_secret_name) && !is_harmless(literal) {
        return Some(Reason::Name);
    }
    None
}

/// `Bearer X`, `Basic X`, `token X`: the credential part.
fn strip_scheme(value: &str) -> &str {
    for scheme in ["Bearer", "Basic", "Token", "token", "bearer", "basic"] {
        if value == scheme {
            return "";
        }
        if let Some(rest) = value.strip_prefix(scheme).and_then(|r| r.strip_prefix(' ')) {
            return rest.trim();
        }
    }
    value
}

/// Values a secret-looking name may still hold without being a secret:
/// booleans, small numbers, paths, placeholders.
fn is_harmless(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "none" | "null" | "required" | "optional"
    ) || value.starts_with('/')
        || value.starts_with("./")
        || value.starts_with("~/")
        || (value.len() <= 6 && value.bytes().all(|b| b.is_ascii_digit()))
        || is_placeholder(value)
}

/// `$NAME`, `${NAME}`, `<your-token>`, `xxx`, `changeme`: not a secret.
fn is_placeholder(value: &str) -> bool {
    let bare = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'));
    if bare.is_some_and(|b| {
        !b.is_empty()
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-'))
    }) {
        return true;
    }
    (value.starts_with('<') && value.ends_with('>'))
        || value.bytes().all(|b| b == b'x' || b == b'X' || b == b'*')
        || matches!(
            value.to_ascii_lowercase().as_str(),
            "changeme" | "your-token" | "your_token" | "your-api-key" | "your_api_key" | "todo"
        )
}

/// The shape of a secret, whatever its name.
fn classify_shape(value: &str) -> Option<Reason> {
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some(Reason::KeyMaterial);
    }
    if looks_like_jwt(value) {
        return Some(Reason::KeyMaterial);
    }
    if url_password(value) {
        return Some(Reason::UrlPassword);
    }
    if known_prefix(value).is_some() && value.len() >= 16 && !value.contains(char::is_whitespace) {
        return Some(Reason::Prefix);
    }
    if high_entropy(value) {
        return Some(Reason::Entropy);
    }
    None
}

/// The credential prefix `value` starts with.
pub fn known_prefix(value: &str) -> Option<&'static str> {
    PREFIXES.iter().copied().find(|p| value.starts_with(p))
}

fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    value.starts_with("eyJ")
        && parts.len() == 3
        && parts.iter().all(|p| {
            p.len() >= 4
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `scheme://user:password@host`.
fn url_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| {
        userinfo
            .split_once(':')
            .is_some_and(|(_, pass)| !pass.is_empty() && !is_placeholder(pass))
    })
}

/// A long token of letters and digits with high Shannon entropy.
fn high_entropy(value: &str) -> bool {
    if value.len() < 20
        || value.len() > 4096
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'=' | b'.'))
    {
        return false;
    }
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    let letters = value.bytes().filter(u8::is_ascii_alphabetic).count();
    if digits == 0 || letters == 0 {
        return false;
    }
    // Dotted names and dashed words (`com.example.server-name-v2`) are not keys.
    if value.split(['.', '-', '_']).count() > 3
        && value
            .split(['.', '-', '_'])
            .all(|part| part.len() < 12 && part.bytes().filter(u8::is_ascii_digit).count() < 3)
    {
        return false;
    }
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    let entropy = shannon(value);
    if hex {
        value.len() >= 32 && entropy >= 3.0
    } else {
        entropy >= 3.7
    }
}

fn shannon(value: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in value.bytes() {
        counts[b as usize] += 1;
    }
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// `value` with the references `client` substitutes removed (`{env:X}`
/// for OpenCode, `${…}` for the clients that expand it), so that what is
/// left is literal text.
pub fn strip_references(client: Client, value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        let found = match client.substitution() {
            Substitution::Braces => rest.find("{env:").or_else(|| rest.find("{file:")),
            Substitution::Dollar => rest.find("${"),
            Substitution::None => None,
        };
        let Some(start) = found else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find('}') {
            Some(end) => {
                // `${X:-default}`: the default is literal text.
                let inner = &after[..end];
                if let Some((_, default)) = inner.split_once(":-") {
                    out.push_str(default);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(after);
                break;
            }
        }
    }
    out
}

/// Which references a client replaces in server entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Substitution {
    /// `{env:X}` and `{file:path}` (OpenCode).
    Braces,
    /// `${env:X}`, `${X}`, `${input:x}`, `${workspaceFolder}`…
    Dollar,
    /// Nothing is substituted.
    None,
}

/// A hint that shows what kind of value it is without showing it:
/// the known prefix when there is one, and the length.
pub fn mask(value: &str) -> String {
    let chars = value.chars().count();
    let scheme = ["Bearer ", "Basic ", "Token "]
        .into_iter()
        .find(|s| value.starts_with(s))
        .unwrap_or("");
    let credential = &value[scheme.len()..];
    match known_prefix(credential) {
        Some(prefix) => format!("{scheme}{prefix}…({chars} chars)"),
        None => format!("{scheme}…({chars} chars)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for secret in [
            "GITHUB_TOKEN",
            "API_KEY",
            "apiKey",
            "--api-key",
            "--token",
            "Authorization",
            "X-Api-Key",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "OPENAI_APIKEY",
            "SLACK_BOT_TOKEN",
            "CLIENT_SECRET",
            "GOOGLE_CREDENTIALS",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "PATH",
            "PWD",
            "HOME",
            "LOG_LEVEL",
            "SOPS_AGE_KEY_FILE",
            "GOOGLE_APPLICATION_CREDENTIALS_PATH",
            "TOKEN_URL",
            "--port",
            "NODE_ENV",
            "KEYBOARD",
            "AWS_REGION",
            "AUTH_TYPE",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }

    #[test]
    fn shapes_and_names() {
        let c = Client::ClaudeDesktop;
        let ghp = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(classify(c, None, &ghp), Some(Reason::Prefix));
        assert_eq!(
            classify(c, None, "AKIAIOSFODNN7EXAMPLE"),
            Some(Reason::Prefix)
        );
        assert_eq!(
            classify(c, None, "postgres://app:hunter2@db/x"),
            Some(Reason::UrlPassword)
        );
        assert_eq!(
            classify(c, None, "Zx8q2LmP0vR7tY4wK9nB3cD6fG1hJ5s"),
            Some(Reason::Entropy)
        );
        assert_eq!(
            classify(c, Some("DB_PASSWORD"), "admin"),
            Some(Reason::Name)
        );
        assert_eq!(classify(c, Some("DEBUG"), "admin"), None);
        assert_eq!(classify(c, Some("API_KEY"), "true"), None);
        assert_eq!(classify(c, Some("API_KEY"), "$API_KEY"), None);
        assert_eq!(
            classify(c, None, "@modelcontextprotocol/server-github"),
            None
        );
        assert_eq!(classify(c, None, "io.github.some-org.server-name-v2"), None);
        assert_eq!(classify(c, None, "/usr/local/bin/server"), None);
        assert_eq!(classify(c, None, "mcp-server-postgres"), None);
    }

    #[test]
    fn references_per_client() {
        assert_eq!(
            classify(Client::OpenCode, Some("TOKEN"), "{env:TOKEN}"),
            None
        );
        assert_eq!(
            classify(Client::OpenCode, Some("Authorization"), "Bearer {env:T}"),
            None
        );
        assert_eq!(
            classify(Client::Cursor, Some("TOKEN"), "${env:TOKEN}"),
            None
        );
        assert_eq!(
            classify(Client::ClaudeCode, Some("TOKEN"), "${TOKEN}"),
            None
        );
        assert_eq!(
            classify(Client::ClaudeCode, Some("TOKEN"), "${TOKEN:-hunter22}"),
            Some(Reason::Name)
        );
        assert_eq!(
            classify(Client::VsCode, Some("TOKEN"), "${input:token}"),
            None
        );
        // Codex substitutes nothing: `{env:X}` is literal, but no secret.
        assert_eq!(classify(Client::Codex, Some("TOKEN"), "${TOKEN}"), None);
    }

    #[test]
    fn masks_show_no_value() {
        let ghp = format!("ghp_{}", "a".repeat(36));
        assert_eq!(mask(&ghp), "ghp_…(40 chars)");
        assert_eq!(mask("hunter2"), "…(7 chars)");
        assert_eq!(mask("Bearer sk-abcdef"), "Bearer sk-…(16 chars)");
    }
}
