//! Shamir secret sharing over GF(2^8), compatible with the reference's
//! `shamir` package (itself HashiCorp Vault's): each share is the secret's
//! length plus one byte, the last byte being the share's x coordinate.
//!
//! Field arithmetic is branch-free on secret data.

use zeroize::Zeroizing;

/// Why shares could not be combined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShamirError {
    /// Fewer than two shares.
    #[error("at least two key groups are needed to rebuild the data key")]
    TooFew,
    /// Shares differ in length or are too short.
    #[error("the key group shares have inconsistent lengths")]
    BadLength,
    /// Two shares have the same x coordinate.
    #[error("two key groups hold the same share")]
    Duplicate,
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, constant time.
fn mult(a: u8, b: u8) -> u8 {
    let mut acc: u8 = 0;
    for i in (0..8).rev() {
        let bit = (b >> i) & 1;
        let a_or_zero = a & 0u8.wrapping_sub(bit);
        let high = acc >> 7;
        acc = (acc << 1) ^ (0x1b & 0u8.wrapping_sub(high));
        acc ^= a_or_zero;
    }
    acc
}

/// a^254, the multiplicative inverse (0 for 0).
fn inverse(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u32;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mult(result, base);
        }
        base = mult(base, base);
        exp >>= 1;
    }
    result
}

/// Lagrange interpolation of the samples at x = 0.
fn interpolate_at_zero(xs: &[u8], ys: &[u8]) -> u8 {
    let mut result = 0u8;
    for (i, (&xi, &yi)) in xs.iter().zip(ys).enumerate() {
        let mut basis = 1u8;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                basis = mult(basis, mult(xj, inverse(xi ^ xj)));
            }
        }
        result ^= mult(yi, basis);
    }
    result
}

/// Rebuilds the secret from `threshold` or more shares.
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if shares.len() < 2 {
        return Err(ShamirError::TooFew);
    }
    let len = shares[0].len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::BadLength);
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(ShamirError::Duplicate);
        }
    }
    let mut ys = Zeroizing::new(vec![0u8; shares.len()]);
    let mut secret = Zeroizing::new(Vec::with_capacity(len - 1));
    for idx in 0..len - 1 {
        for (y, share) in ys.iter_mut().zip(shares) {
            *y = share[idx];
        }
        secret.push(interpolate_at_zero(&xs, &ys));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mult(a, inverse(a)), 1);
        }
        assert_eq!(mult(0x57, 0x83), 0xc1);
    }

    /// Shares of a known polynomial: secret byte 0x42, f(x) = 0x42 + 0x17·x
    /// (threshold 2), so any two points rebuild 0x42.
    #[test]
    fn combines_any_two_of_three() {
        let share = |x: u8| vec![0x42 ^ mult(0x17, x), mult(0x99, x), x];
        let (a, b, c) = (share(1), share(2), share(3));
        for pair in [[&a, &b], [&a, &c], [&c, &b]] {
            let got = combine(&[pair[0].as_slice(), pair[1].as_slice()]).unwrap();
            assert_eq!(got.as_slice(), &[0x42, 0x00]);
        }
        assert_eq!(combine(&[a.as_slice()]), Err(ShamirError::TooFew));
        assert_eq!(
            combine(&[a.as_slice(), a.as_slice()]),
            Err(ShamirError::Duplicate)
        );
    }
}
