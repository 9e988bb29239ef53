//! Shamir secret sharing over GF(2^8), compatible with the reference's
//! `shamir` package (itself HashiCorp Vault's): each share is the secret's
//! length plus one byte, the last byte being the share's x coordinate.
//!
//! Field arithmetic is branch-free on secret data.

use zeroize::Zeroizing;

/// Why a secret could not be split or shares could not be combined.
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
    /// The split parameters are impossible (the reference's own checks).
    #[error("cannot split the data key: {0}")]
    BadParameters(&'static str),
    /// The operating system's random source failed.
    #[error("cannot split the data key: no randomness from the operating system")]
    Random,
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

/// The polynomial with these coefficients (constant term first) at `x`, by
/// Horner's method as the reference evaluates it.
fn evaluate(coefficients: &[u8], x: u8) -> u8 {
    coefficients
        .iter()
        .rev()
        .fold(0u8, |acc, &c| mult(acc, x) ^ c)
}

/// Splits `secret` into `parts` shares of which any `threshold` rebuild it,
/// as the reference's `shamir.Split` does: one random polynomial of degree
/// `threshold - 1` per secret byte (coefficients from the OS), share `i`
/// holding the values at x = i + 1 followed by that x as its last byte.
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if parts < threshold {
        return Err(ShamirError::BadParameters(
            "parts cannot be less than threshold",
        ));
    }
    if parts > 255 {
        return Err(ShamirError::BadParameters("parts cannot exceed 255"));
    }
    if threshold < 2 {
        return Err(ShamirError::BadParameters("threshold must be at least 2"));
    }
    if secret.is_empty() {
        return Err(ShamirError::BadParameters("cannot split an empty secret"));
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (1..=parts)
        .map(|x| {
            let mut share = Zeroizing::new(vec![0u8; secret.len() + 1]);
            share[secret.len()] = x as u8;
            share
        })
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold]);
    for (idx, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        getrandom::fill(&mut coefficients[1..]).map_err(|_| ShamirError::Random)?;
        for share in shares.iter_mut() {
            let x = share[secret.len()];
            share[idx] = evaluate(&coefficients, x);
        }
    }
    Ok(shares)
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

    /// Every subset of `shares` with exactly `size` members, as index lists.
    fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|mask| mask.count_ones() as usize == size)
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect()
    }

    fn split_and_recombine(parts: usize, threshold: usize) {
        let secret: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        let shares = split(&secret, parts, threshold).unwrap();
        assert_eq!(shares.len(), parts);
        for (i, share) in shares.iter().enumerate() {
            // The reference's layout: y values, then x = index + 1.
            assert_eq!(share.len(), 33);
            assert_eq!(usize::from(share[32]), i + 1);
        }
        for size in threshold..=parts {
            for subset in subsets(parts, size) {
                let picked: Vec<&[u8]> = subset.iter().map(|&i| shares[i].as_slice()).collect();
                let got = combine(&picked).unwrap();
                assert_eq!(got.as_slice(), secret.as_slice(), "shares {subset:?}");
            }
        }
        // Fewer than the threshold: interpolation yields some other value
        // (with overwhelming probability over 32 random polynomials).
        for subset in subsets(parts, threshold - 1)
            .into_iter()
            .filter(|s| s.len() >= 2)
        {
            let picked: Vec<&[u8]> = subset.iter().map(|&i| shares[i].as_slice()).collect();
            assert_ne!(combine(&picked).unwrap().as_slice(), secret.as_slice());
        }
    }

    #[test]
    fn split_two_of_three_every_subset() {
        split_and_recombine(3, 2);
    }

    #[test]
    fn split_three_of_five_every_subset() {
        split_and_recombine(5, 3);
    }

    #[test]
    fn split_is_randomised() {
        let a = split(&[1, 2, 3], 2, 2).unwrap();
        let b = split(&[1, 2, 3], 2, 2).unwrap();
        assert_ne!(a[0].as_slice(), b[0].as_slice());
    }

    #[test]
    fn split_refuses_what_the_reference_refuses() {
        let bad = |parts, threshold, secret: &[u8]| {
            matches!(
                split(secret, parts, threshold),
                Err(ShamirError::BadParameters(_))
            )
        };
        assert!(bad(2, 3, b"k"));
        assert!(bad(256, 2, b"k"));
        assert!(bad(3, 1, b"k"));
        assert!(bad(3, 2, b""));
    }

    /// Horner evaluation agrees with the hand-built shares above.
    #[test]
    fn evaluate_matches_known_polynomial() {
        for x in 1..=255u8 {
            assert_eq!(evaluate(&[0x42, 0x17], x), 0x42 ^ mult(0x17, x));
        }
    }
}
