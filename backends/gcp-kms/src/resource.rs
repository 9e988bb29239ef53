//! The `resource_id` of a `gcp_kms` entry, checked before any network call
//! so a typo is reported as such rather than as a confusing 404.

use crate::errors::GcpError;

/// A crypto key name: `projects/P/locations/L/keyRings/R/cryptoKeys/K`.
pub(crate) struct ResourceId<'a>(&'a str);

impl<'a> ResourceId<'a> {
    /// Accepts exactly the shape the reference accepts.
    pub(crate) fn parse(id: &'a str) -> Result<Self, GcpError> {
        const LABELS: [&str; 4] = ["projects", "locations", "keyRings", "cryptoKeys"];
        let parts: Vec<&str> = id.split('/').collect();
        let valid = parts.len() == 8
            && parts
                .chunks(2)
                .zip(LABELS)
                .all(|(pair, label)| pair[0] == label && !pair[1].is_empty());
        if valid {
            Ok(ResourceId(id))
        } else {
            Err(GcpError::BadResourceId)
        }
    }

    pub(crate) fn as_str(&self) -> &'a str {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_key_names_only() {
        assert!(ResourceId::parse("projects/p/locations/global/keyRings/r/cryptoKeys/k").is_ok());
        for bad in [
            "",
            "projects/p/locations/global/keyRings/r",
            "projects/p/locations/global/keyRings/r/cryptoKeys/",
            "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
            "project/p/locations/global/keyRings/r/cryptoKeys/k",
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }
}
