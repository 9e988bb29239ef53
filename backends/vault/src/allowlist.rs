//! Which Vault addresses rsops may send the user's token to.
//!
//! The address of a request comes from the file being decrypted, and the
//! token comes from the user (`VAULT_TOKEN`, `~/.vault-token`). A file
//! written by someone else, say in a pull request, could name a server of
//! theirs and collect the token. So the address is checked against an
//! allow-list before any connection is made, and so is every redirect.
//!
//! `SOPS_HC_VAULT_ALLOWLIST` is read as the reference reads it: `all`,
//! `none`, or comma-separated URL prefixes. When it is unset, the reference
//! allows every address; rsops allows only the address in `VAULT_ADDR`, the
//! server the user's token was issued for (see the README).

use url::Url;

use crate::error::VaultError;
use crate::ALLOWLIST_ENV;

/// The addresses a token may be sent to.
#[derive(Clone, Debug)]
pub(crate) enum AllowList {
    /// `SOPS_HC_VAULT_ALLOWLIST=all`: the reference's default.
    All,
    /// Only addresses under one of these prefixes.
    Only {
        /// The allowed prefixes.
        prefixes: Vec<Url>,
        /// Where the prefixes came from, to explain a refusal.
        origin: Origin,
    },
}

/// Where a restricted allow-list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Listed in `SOPS_HC_VAULT_ALLOWLIST` (or `none`).
    Variable,
    /// The variable is unset: `VAULT_ADDR` alone is trusted.
    VaultAddr,
    /// Neither the variable nor a valid `VAULT_ADDR` is set.
    Nothing,
}

impl AllowList {
    /// The allow-list from the variable's value (unset or empty: `None`)
    /// and, for the default, `VAULT_ADDR`.
    pub(crate) fn parse(
        variable: Option<&str>,
        vault_addr: Option<&str>,
    ) -> Result<Self, VaultError> {
        let Some(value) = variable.filter(|v| !v.is_empty()) else {
            return Ok(match vault_addr.and_then(|a| parse_prefix(a.trim()).ok()) {
                Some(url) => AllowList::Only {
                    prefixes: vec![url],
                    origin: Origin::VaultAddr,
                },
                None => AllowList::Only {
                    prefixes: Vec::new(),
                    origin: Origin::Nothing,
                },
            });
        };
        match value {
            "all" => return Ok(AllowList::All),
            "none" => {
                return Ok(AllowList::Only {
                    prefixes: Vec::new(),
                    origin: Origin::Variable,
                })
            }
            _ => {}
        }
        let prefixes = value
            .split(',')
            .enumerate()
            .map(|(i, item)| {
                let item = item.trim();
                if item.is_empty() {
                    return Err(VaultError::Config(format!(
                        "{ALLOWLIST_ENV}'s entry {} is empty",
                        i + 1
                    )));
                }
                parse_prefix(item).map_err(|why| {
                    VaultError::Config(format!("{ALLOWLIST_ENV}'s entry {item:?} {why}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList::Only {
            prefixes,
            origin: Origin::Variable,
        })
    }

    /// True when a token may be sent to `address`.
    pub(crate) fn allows(&self, address: &Url) -> bool {
        match self {
            AllowList::All => true,
            AllowList::Only { prefixes, .. } => prefixes.iter().any(|p| under(address, p)),
        }
    }

    /// Why an address is refused, with how to allow it as the hint.
    pub(crate) fn refusal(&self, address: &Url) -> VaultError {
        let shown = address.as_str().trim_end_matches('/');
        let why = match self {
            AllowList::All => String::new(),
            AllowList::Only { prefixes, origin } => match origin {
                Origin::Variable => format!("{ALLOWLIST_ENV} does not list it"),
                Origin::VaultAddr => format!(
                    "{ALLOWLIST_ENV} is unset, so only VAULT_ADDR ({}) is trusted",
                    prefixes
                        .first()
                        .map(|p| p.as_str().trim_end_matches('/'))
                        .unwrap_or_default()
                ),
                Origin::Nothing => format!(
                    "neither {ALLOWLIST_ENV} nor VAULT_ADDR is set, so no Vault address is trusted"
                ),
            },
        };
        VaultError::NotAllowed {
            message: format!(
                "refusing to send the Vault token to {shown}, named by the file: {why}"
            ),
            hint: format!(
                "if you trust this server, set {ALLOWLIST_ENV}={shown} (comma-separated for \
                 several, or `all` to trust any address as sops does) or VAULT_ADDR={shown}"
            ),
        }
    }
}

/// Parses one allowed prefix: an http(s) URL with a host.
fn parse_prefix(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("is not an http:// or https:// address".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(url)
}

/// True when `address` is `prefix` or below it: same scheme, host and port
/// (default ports filled in), and the prefix's path is a whole-segment
/// prefix of the address's path. Comparing parsed URLs rather than strings
/// means `https://vault.example.com.evil.net` is not under
/// `https://vault.example.com`, and `https://VAULT.example.com:443/` is.
fn under(address: &Url, prefix: &Url) -> bool {
    let with_slash = |p: &str| {
        if p.ends_with('/') {
            p.to_string()
        } else {
            format!("{p}/")
        }
    };
    address.scheme() == prefix.scheme()
        && address.host() == prefix.host()
        && address.port_or_known_default() == prefix.port_or_known_default()
        && with_slash(address.path()).starts_with(&with_slash(prefix.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn allows(variable: Option<&str>, vault_addr: Option<&str>, address: &str) -> bool {
        AllowList::parse(variable, vault_addr)
            .unwrap()
            .allows(&url(address))
    }

    #[test]
    fn default_trusts_vault_addr_only() {
        let addr = Some("https://vault.example.com:8200");
        assert!(allows(None, addr, "https://vault.example.com:8200"));
        assert!(allows(Some(""), addr, "https://vault.example.com:8200/"));
        assert!(!allows(None, addr, "https://evil.example.net:8200"));
        assert!(!allows(None, addr, "http://vault.example.com:8200"));
        assert!(!allows(None, addr, "https://vault.example.com:8201"));
        assert!(!allows(None, None, "https://vault.example.com:8200"));
        assert!(!allows(
            None,
            Some("not a url"),
            "https://vault.example.com"
        ));
    }

    #[test]
    fn reference_keywords() {
        assert!(allows(Some("all"), None, "http://anything:1"));
        assert!(!allows(Some("none"), Some("http://a"), "http://a"));
    }

    #[test]
    fn listed_prefixes() {
        let list = Some("http://127.0.0.1:8200, https://vault.example.com/");
        assert!(allows(list, None, "http://127.0.0.1:8200"));
        assert!(allows(list, None, "https://vault.example.com"));
        assert!(allows(list, None, "https://VAULT.example.com:443/"));
        assert!(!allows(list, None, "http://127.0.0.1:82"));
        assert!(!allows(list, None, "https://vault.example.com.evil.net"));
        assert!(!allows(list, None, "https://vault.example.com:8443"));
        // Listing addresses replaces the VAULT_ADDR default.
        assert!(!allows(list, Some("http://other"), "http://other"));
    }

    #[test]
    fn path_prefixes_match_whole_segments() {
        let prefix = url("https://proxy.example.com/vault");
        assert!(under(&url("https://proxy.example.com/vault/x"), &prefix));
        assert!(under(&url("https://proxy.example.com/vault"), &prefix));
        assert!(!under(&url("https://proxy.example.com/vaultx"), &prefix));
    }

    #[test]
    fn malformed_lists_are_errors() {
        for bad in ["http://a,,http://b", " , ", "vault.example.com", "ftp://x"] {
            assert!(
                matches!(
                    AllowList::parse(Some(bad), None),
                    Err(VaultError::Config(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn refusal_says_how_to_allow() {
        let list = AllowList::parse(None, Some("http://127.0.0.1:8200")).unwrap();
        let VaultError::NotAllowed { message, hint } = list.refusal(&url("http://evil:1")) else {
            panic!("not a refusal");
        };
        assert!(message.contains("http://evil:1"), "{message}");
        assert!(
            message.contains("only VAULT_ADDR (http://127.0.0.1:8200)"),
            "{message}"
        );
        assert!(
            hint.contains("SOPS_HC_VAULT_ALLOWLIST=http://evil:1"),
            "{hint}"
        );
        let none = AllowList::parse(None, None).unwrap();
        assert!(none
            .refusal(&url("http://a"))
            .to_string()
            .contains("neither"));
    }
}
