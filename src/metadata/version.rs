//! The check the reference makes on `sops.version` before it decrypts
//! anything.
//!
//! `sops decrypt` (and `exec-env`, `exec-file`) compare the file's version
//! with 3.3.0 to detect the KMS encryption-context bug of older releases,
//! parsing it with `blang/semver` v3.5.1; a version that does not parse —
//! including a missing one — fails the command with exit code 1. rsops
//! refuses the same files, with the library's own words, so a file that one
//! tool reads the other reads too.

/// Why `version` is refused, in `blang/semver`'s words; `None` if it is
/// accepted. `version` is `""` when the field is missing.
pub(super) fn problem(version: &str) -> Option<String> {
    // sops 1.x did not use semantic versions; the reference accepts them
    // as they are, before trimming a leading `v` from anything else.
    if version.starts_with("1.") {
        return None;
    }
    parse(version.strip_prefix('v').unwrap_or(version)).err()
}

const NUMBERS: &str = "0123456789";
const ALPHANUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789";

fn contains_only(s: &str, set: &str) -> bool {
    s.chars().all(|c| set.contains(c))
}

fn has_leading_zeroes(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0')
}

/// Go's `strconv.ParseUint(s, 10, 64)` error for digits-only `s`.
fn parse_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// A major or minor number.
fn number(s: &str, name: &str, capitalized: &str) -> Result<(), String> {
    if !contains_only(s, NUMBERS) {
        return Err(format!("Invalid character(s) found in {name} number {s:?}"));
    }
    if has_leading_zeroes(s) {
        return Err(format!(
            "{capitalized} number must not contain leading zeroes {s:?}"
        ));
    }
    parse_uint(s).map(drop)
}

/// `semver.Parse`, in its order of checks.
fn parse(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("Version string empty".into());
    }
    let parts: Vec<&str> = s.splitn(3, '.').collect();
    let [major, minor, rest] = parts[..] else {
        return Err("No Major.Minor.Patch elements found".into());
    };
    number(major, "major", "Major")?;
    number(minor, "minor", "Minor")?;
    let (rest, build) = match rest.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (rest, None),
    };
    let (patch, prerelease) = match rest.split_once('-') {
        Some((patch, pre)) => (patch, Some(pre)),
        None => (rest, None),
    };
    number(patch, "patch", "Patch")?;
    for part in prerelease.iter().flat_map(|p| p.split('.')) {
        prerelease_part(part)?;
    }
    for part in build.iter().flat_map(|b| b.split('.')) {
        if part.is_empty() {
            return Err("Build meta data is empty".into());
        }
        if !contains_only(part, ALPHANUM) {
            return Err(format!(
                "Invalid character(s) found in build meta data {part:?}"
            ));
        }
    }
    Ok(())
}

/// `semver.NewPRVersion`.
fn prerelease_part(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("Prerelease is empty".into());
    }
    if contains_only(s, NUMBERS) {
        if has_leading_zeroes(s) {
            return Err(format!(
                "Numeric PreRelease version must not contain leading zeroes {s:?}"
            ));
        }
        return parse_uint(s).map(drop);
    }
    if !contains_only(s, ALPHANUM) {
        return Err(format!("Invalid character(s) found in prerelease {s:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn versions_sops_writes_are_accepted() {
        for ok in [
            "3.11.0",
            "3.13.2",
            "v3.7.3",
            "2.0.10",
            "3.0.0-rc.1",
            "3.9.0-alpha.1+build.5",
            "0.0.0",
            "18446744073709551615.0.0",
            // sops 1.x versions are not parsed at all.
            "1.14",
            "1.",
            "1.x.y",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn refusals_use_the_reference_words() {
        for (bad, why) in [
            ("", "Version string empty"),
            ("v", "Version string empty"),
            ("garbage", "No Major.Minor.Patch elements found"),
            ("3.11", "No Major.Minor.Patch elements found"),
            ("v1.0", "No Major.Minor.Patch elements found"),
            ("x.1.0", "Invalid character(s) found in major number \"x\""),
            (
                "03.1.0",
                "Major number must not contain leading zeroes \"03\"",
            ),
            (
                "3.01.0",
                "Minor number must not contain leading zeroes \"01\"",
            ),
            (
                "3.1.0x",
                "Invalid character(s) found in patch number \"0x\"",
            ),
            (
                "3.1.00",
                "Patch number must not contain leading zeroes \"00\"",
            ),
            (".1.0", "strconv.ParseUint: parsing \"\": invalid syntax"),
            ("3..0", "strconv.ParseUint: parsing \"\": invalid syntax"),
            ("3.1.", "strconv.ParseUint: parsing \"\": invalid syntax"),
            (
                "18446744073709551616.0.0",
                "strconv.ParseUint: parsing \"18446744073709551616\": value out of range",
            ),
            ("3.1.0-", "Prerelease is empty"),
            ("3.1.0-rc..1", "Prerelease is empty"),
            (
                "3.1.0-01",
                "Numeric PreRelease version must not contain leading zeroes \"01\"",
            ),
            (
                "3.1.0-r_c",
                "Invalid character(s) found in prerelease \"r_c\"",
            ),
            ("3.1.0+", "Build meta data is empty"),
            (
                "3.1.0+a_b",
                "Invalid character(s) found in build meta data \"a_b\"",
            ),
            // Checked in the library's order: the patch before the pre-release.
            (
                "3.1.x-_",
                "Invalid character(s) found in patch number \"x\"",
            ),
        ] {
            assert_eq!(problem(bad).as_deref(), Some(why), "{bad:?}");
        }
    }
}
