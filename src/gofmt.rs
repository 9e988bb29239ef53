//! Number printing exactly as Go's `strconv.FormatFloat(f, fmt, -1, 64)` does.
//!
//! The reference hashes floats with the `'f'` form into the MAC and prints
//! them with `'g'` (YAML), `'G'` (dotenv, INI) or `'f'`/`'e'` (JSON), so any
//! difference in a single digit breaks the MAC or byte-identical output.
//! Rust's `{:e}` formatting yields the same shortest round-trip digits as Go;
//! this module only lays those digits out the way Go does.

/// Which of Go's float layouts to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatFormat {
    /// `'f'`: plain decimal, never an exponent.
    Decimal,
    /// `'e'`: `d.ddde±dd`.
    Exponent,
    /// `'g'`: `'e'` for exponents < -4 or >= 21 (shortest precision), else `'f'`.
    General,
    /// `'G'`: like `'g'` with an upper-case `E`.
    GeneralUpper,
}

/// Shortest decimal digits of a finite, non-zero |f| and the position of the
/// decimal point (Go's `digs.d` and `digs.dp`).
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_string(), exp + 1)
}

/// Formats `f` as Go's `strconv.FormatFloat(f, fmt, -1, 64)`.
pub fn format_float(f: f64, format: FloatFormat) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = f.is_sign_negative();
    let (digits, dp) = if f == 0.0 {
        ("0".to_string(), 1)
    } else {
        shortest_digits(f)
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let exp = dp - 1;
    match format {
        FloatFormat::Decimal => push_decimal(&mut out, &digits, dp),
        FloatFormat::Exponent => push_exponent(&mut out, &digits, exp, 'e'),
        FloatFormat::General | FloatFormat::GeneralUpper => {
            let e = if format == FloatFormat::General {
                'e'
            } else {
                'E'
            };
            // Go: with shortest precision the switch to exponent form
            // happens below 1e-4 and from 1e6 (its `eprec` is 6).
            if f != 0.0 && !(-4..6).contains(&exp) {
                push_exponent(&mut out, &digits, exp, e);
            } else {
                push_decimal(&mut out, &digits, dp);
            }
        }
    }
    out
}

fn push_decimal(out: &mut String, digits: &str, dp: i32) {
    if dp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-dp) as usize));
        out.push_str(digits);
    } else if dp as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', dp as usize - digits.len()));
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
}

fn push_exponent(out: &mut String, digits: &str, exp: i32, e: char) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_go() {
        let f = |x| format_float(x, FloatFormat::Decimal);
        assert_eq!(f(3.25), "3.25");
        assert_eq!(f(1e10), "10000000000");
        assert_eq!(f(1e21), "1000000000000000000000");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn general_matches_go() {
        let g = |x| format_float(x, FloatFormat::General);
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(3.25), "3.25");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(12345678.5), "1.23456785e+07");
        assert_eq!(g(0.0), "0");
        assert_eq!(format_float(1e100, FloatFormat::GeneralUpper), "1E+100");
    }

    #[test]
    fn exponent_matches_go() {
        assert_eq!(format_float(1e-7, FloatFormat::Exponent), "1e-07");
        assert_eq!(format_float(1.5e300, FloatFormat::Exponent), "1.5e+300");
    }
}
