//! The two secrets that cross the seam, typed so they cannot leak: no
//! `Clone`, no `PartialEq`, a `Debug` that shows only a length, and wiped
//! when dropped.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The length of a sops data key (AES-256).
pub const DATA_KEY_LEN: usize = 32;

/// What a key source unwrapped from one entry: the data key itself, or with
/// several key groups, that group's Shamir share of it (one byte longer).
/// The core turns it into a [`DataKey`].
pub struct Unwrapped(Zeroizing<Vec<u8>>);

impl Unwrapped {
    /// Takes the unwrapped bytes, so no copy is left behind.
    pub fn new(bytes: Vec<u8>) -> Self {
        Unwrapped(Zeroizing::new(bytes))
    }

    /// The bytes. Callers must not copy them into long-lived buffers.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Unwrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unwrapped({} bytes)", self.0.len())
    }
}

/// The secret that encrypts every value of a file: exactly 32 bytes, checked
/// once, where it is made.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey(Box<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// The data key in `bytes`, or the length they have instead.
    pub fn from_slice(bytes: &[u8]) -> Result<DataKey, usize> {
        let mut key = Box::new([0u8; DATA_KEY_LEN]);
        if bytes.len() != DATA_KEY_LEN {
            return Err(bytes.len());
        }
        key.copy_from_slice(bytes);
        Ok(DataKey(key))
    }

    /// The key bytes. Callers must not copy them into long-lived buffers.
    pub fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl TryFrom<Unwrapped> for DataKey {
    type Error = usize;

    /// A single key group's unwrapped secret is the data key itself.
    fn try_from(unwrapped: Unwrapped) -> Result<DataKey, usize> {
        DataKey::from_slice(unwrapped.expose())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(32 bytes)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_are_32_bytes_and_never_printed() {
        let key = DataKey::try_from(Unwrapped::new(vec![7; 32]));
        assert!(key.as_ref().is_ok_and(|k| k.expose() == &[7; 32]));
        assert_eq!(format!("{:?}", key.ok()), "Some(DataKey(32 bytes))");
        assert_eq!(DataKey::from_slice(&[1; 33]).err(), Some(33));
        assert_eq!(
            format!("{:?}", Unwrapped::new(vec![9; 33])),
            "Unwrapped(33 bytes)"
        );
    }
}
