//! Reading an `hc_vault` entry: where the transit key lives and what to send.
//!
//! The fields come from a file that may have been written by someone else,
//! so everything that ends up in a URL is checked here, before any request:
//! the address must be a plain `http(s)://host[:port]` and the engine path
//! and key name plain path segments, so a file cannot steer the request to
//! another endpoint of the server.

use rsops_keysource::KeyEntry;
use url::Url;

use crate::error::VaultError;

/// One `hc_vault` entry, checked and ready to be sent.
#[derive(Debug)]
pub(crate) struct Target<'a> {
    /// The server, as written in the entry (`vault_address`).
    pub(crate) address: Url,
    /// The mount path of the transit engine (`engine_path`), e.g. `sops`.
    pub(crate) engine_path: &'a str,
    /// The transit key's name (`key_name`).
    pub(crate) key_name: &'a str,
    /// The wrapped data key (`enc`), `vault:v<N>:<base64>`.
    pub(crate) ciphertext: &'a str,
}

impl<'a> Target<'a> {
    /// Checks the entry's fields; a missing or empty one is a corrupt entry.
    pub(crate) fn from_entry(entry: &'a KeyEntry) -> Result<Self, VaultError> {
        let ciphertext = entry.encrypted_key().map_err(VaultError::Entry)?;
        let field = |name| entry.required(name).map_err(VaultError::Entry);
        let address = parse_address(field("vault_address")?)?;
        let engine_path = field("engine_path")?.trim_matches('/');
        check_path("engine_path", engine_path)?;
        let key_name = field("key_name")?;
        check_path("key_name", key_name)?;
        if key_name.contains('/') {
            return Err(VaultError::BadEntry(format!(
                "`key_name` {key_name:?} contains `/`"
            )));
        }
        Ok(Target {
            address,
            engine_path,
            key_name,
            ciphertext,
        })
    }
}

/// How the reference prints a Vault key: the URI given to `--hc-vault-transit`.
pub(crate) fn describe(
    address: Option<&str>,
    engine_path: Option<&str>,
    key_name: Option<&str>,
) -> String {
    format!(
        "{}/v1/{}/keys/{}",
        address.unwrap_or("?").trim_end_matches('/'),
        engine_path.unwrap_or("?").trim_matches('/'),
        key_name.unwrap_or("?")
    )
}

/// Parses `vault_address`. Paths, queries, fragments and credentials are
/// refused: the reference never writes them (it strips the path of the URI
/// it is given), and each would make the URL mean something other than
/// what the allow-list compares.
pub(crate) fn parse_address(address: &str) -> Result<Url, VaultError> {
    let bad = |why: &str| VaultError::BadEntry(format!("`vault_address` {address:?} {why}"));
    let url = Url::parse(address).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad("is not an http:// or https:// address"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.path() != "/" {
        return Err(bad(
            "has a path; rsops (like sops) expects https://host[:port] without a path",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("holds user credentials"));
    }
    Ok(url)
}

/// Accepts `/`-separated segments of printable ASCII that need no escaping
/// and cannot climb the path (`.`, `..`, empty segments).
fn check_path(name: &str, value: &str) -> Result<(), VaultError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.+@=:,~".contains(c);
    let bad_segment = value
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || !s.chars().all(allowed));
    if bad_segment {
        return Err(VaultError::BadEntry(format!(
            "`{name}` {value:?} is not a plain path (letters, digits, `-_.+@=:,~`, and `/` between segments)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> KeyEntry {
        KeyEntry {
            kind: "hc_vault".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            maps: Vec::new(),
        }
    }

    fn target(address: &str, engine: &str, key: &str) -> Result<(Url, String, String), VaultError> {
        let entry = entry(&[
            ("vault_address", address),
            ("engine_path", engine),
            ("key_name", key),
            ("enc", "vault:v1:abc"),
        ]);
        Target::from_entry(&entry).map(|t| (t.address, t.engine_path.into(), t.key_name.into()))
    }

    #[test]
    fn accepts_what_the_reference_writes() {
        let (address, engine, key) = target("http://127.0.0.1:8200", "sops", "first").unwrap();
        assert_eq!(address.as_str(), "http://127.0.0.1:8200/");
        assert_eq!((engine.as_str(), key.as_str()), ("sops", "first"));
        let (_, engine, _) =
            target("https://vault.example.com/", "team/transit", "k-1.v2").unwrap();
        assert_eq!(engine, "team/transit");
    }

    #[test]
    fn refuses_addresses_that_mean_something_else() {
        for bad in [
            "",
            "vault.example.com:8200",
            "ftp://vault.example.com",
            "file:///etc/passwd",
            "http://vault.example.com/prefix",
            "http://vault.example.com/?x=1",
            "http://vault.example.com/#frag",
            "http://user:pw@vault.example.com",
            "http://",
        ] {
            assert!(
                matches!(
                    target(bad, "sops", "k"),
                    Err(VaultError::BadEntry(_) | VaultError::Entry(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_paths_that_climb_or_need_escaping() {
        for engine in [
            "",
            "..",
            "sops/../sys",
            "a//b",
            "a b",
            "a?b",
            "a#b",
            "a%2e",
            "é",
        ] {
            assert!(target("http://h", engine, "k").is_err(), "{engine:?}");
        }
        for key in ["", "a/b", "..", "k\n", "k?"] {
            assert!(target("http://h", "sops", key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn missing_fields_are_named() {
        let missing = |fields: &[(&str, &str)]| {
            Target::from_entry(&entry(fields))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let text = missing(&[("engine_path", "sops"), ("key_name", "k"), ("enc", "x")]);
        assert_eq!(text, "the hc_vault entry has no `vault_address` field");
        let text = missing(&[
            ("vault_address", "http://h"),
            ("engine_path", "sops"),
            ("enc", "x"),
        ]);
        assert_eq!(text, "the hc_vault entry has no `key_name` field");
        let text = missing(&[("vault_address", "http://h"), ("key_name", "k")]);
        assert_eq!(text, "the hc_vault entry has no `enc` field");
    }

    #[test]
    fn describes_like_the_reference() {
        assert_eq!(
            describe(Some("http://127.0.0.1:8200"), Some("sops"), Some("k")),
            "http://127.0.0.1:8200/v1/sops/keys/k"
        );
        assert_eq!(describe(None, None, None), "?/v1/?/keys/?");
    }
}
