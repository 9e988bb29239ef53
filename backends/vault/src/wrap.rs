//! Wrapping a data key with a transit key, as the reference's `hcvault`
//! `NewMasterKeyFromURI` and `Encrypt` do: the key URI given to
//! `--hc-vault-transit` (`https://HOST:PORT/v1/ENGINE/keys/KEY`) is split
//! into the server address (the URI without its path, as written), the
//! engine path (every segment between the API version and the last two,
//! so nested mounts work) and the key name; the secret is sent base64-encoded
//! to `{engine}/encrypt/{key}`, and the entry is written as the reference
//! writes it: `vault_address`, `engine_path`, `key_name`, `created_at`
//! (RFC 3339 UTC, to the second), `enc` (`vault:v<N>:…`).

use crate::error::VaultError;

/// The shape the reference expects, for messages and hints.
pub(crate) const URI_FORMAT: &str = "https://vault.example.com:8200/v1/ENGINE/keys/KEY";

/// A transit key named by a recipient entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyUri {
    /// `scheme://host[:port]`, as written in the URI.
    pub(crate) address: String,
    /// The transit engine's mount path, e.g. `sops` or `team/transit`.
    pub(crate) engine_path: String,
    /// The transit key's name.
    pub(crate) key_name: String,
}

/// Splits a key URI as the reference's `NewMasterKeyFromURI` does.
pub(crate) fn parse_uri(uri: &str) -> Result<KeyUri, VaultError> {
    let bad =
        |why: &str| VaultError::BadUri(format!("invalid Vault transit key URI {uri:?}: {why}"));
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(bad("missing scheme"));
    };
    if scheme.is_empty() {
        return Err(bad("missing scheme"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let address = format!("{scheme}://{}", &rest[..authority_end]);
    let tail = &rest[authority_end..];
    if tail.contains(['?', '#']) {
        return Err(bad("has a query or fragment"));
    }
    let segments: Vec<&str> = tail.split('/').skip(1).collect();
    let is_version =
        |s: &str| s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit());
    // Three non-empty segments follow a `v<N>` segment at `at`.
    let followed = |at: usize| (1..=3).all(|i| segments.get(at + i).is_some_and(|s| !s.is_empty()));
    // The reference's `/[^/]+/v[\d]+/[^/]+/[^/]+/[^/]+`, unanchored.
    let prefixed = (1..segments.len())
        .any(|at| !segments[at - 1].is_empty() && is_version(segments[at]) && followed(at));
    if prefixed {
        return Err(bad(
            "running Vault with a prefixed URL is not supported (sops refuses it too)",
        ));
    }
    // `/v[\d]+/[^/]+/[^/]+/[^/]+`, unanchored.
    if !(0..segments.len()).any(|at| is_version(segments[at]) && followed(at)) {
        return Err(bad("the path is not /v1/ENGINE/keys/KEY"));
    }
    // `strings.TrimPrefix` / `TrimSuffix`: one slash each.
    let trimmed = tail.strip_prefix('/').unwrap_or(tail);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    // At least `v<N>` and three segments: the check above found them.
    let dirs: Vec<&str> = trimmed.split('/').collect();
    let key_name = dirs[dirs.len() - 1].to_string();
    // Go's `path.Join(dirs[1:len-2]...)`: empty and `.` segments dropped.
    let engine_path = dirs[1..dirs.len() - 2]
        .iter()
        .filter(|s| !s.is_empty() && **s != ".")
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    Ok(KeyUri {
        address,
        engine_path,
        key_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str) -> (String, String, String) {
        let k = parse_uri(uri).unwrap();
        (k.address, k.engine_path, k.key_name)
    }

    #[test]
    fn splits_like_the_reference() {
        assert_eq!(
            parts("http://127.0.0.1:8200/v1/sops/keys/first"),
            (
                "http://127.0.0.1:8200".into(),
                "sops".into(),
                "first".into()
            )
        );
        assert_eq!(
            parts("https://Vault.example.com:443/v1/team/transit/keys/other/"),
            (
                "https://Vault.example.com:443".into(),
                "team/transit".into(),
                "other".into()
            )
        );
        assert_eq!(parts("https://h/v1/a/b/c/keys/k").1, "a/b/c".to_string());
    }

    #[test]
    fn refuses_what_the_reference_refuses() {
        for bad in [
            "vault.example.com/v1/sops/keys/k",
            "://h/v1/sops/keys/k",
            "https://h/prefix/v1/sops/keys/k",
            "https://h/v1/sops/k",
            "https://h/sops/keys/k",
            "https://h",
            "https://h/v1/sops/keys/k?x=1",
        ] {
            assert!(
                matches!(parse_uri(bad), Err(VaultError::BadUri(_))),
                "{bad}"
            );
        }
    }
}
