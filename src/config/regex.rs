//! Go RE2 patterns on the `regex` crate.
//!
//! The two dialects agree on almost everything; the differences that change
//! what a pattern matches are rewritten: Go's `\d`, `\w`, `\s` (and their
//! negations) and `\b`, `\B` are ASCII-only, while the crate's are Unicode; Go
//! has `\Q…\E` literal quoting, which the crate lacks. What remains: the crate
//! accepts a few things Go refuses (`\<`, `\>`, `\b{start}`, character class
//! set difference `--`, nested classes), and its error messages differ.

use regex::Regex;

/// Compiles a Go (RE2) regular expression with Go's meaning.
pub fn go_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&translate(pattern))
}

fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match next {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str("[\\t\\n\\f\\r ]"),
                    'S' => out.push_str("[^\\t\\n\\f\\r ]"),
                    'b' if !in_class => out.push_str("(?-u:\\b)"),
                    'B' if !in_class => out.push_str("(?-u:\\B)"),
                    'Q' => {
                        let mut literal = String::new();
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            literal.push(q);
                        }
                        out.push_str(&regex::escape(&literal));
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` (after an optional `^`) first in a class is literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // `[:alpha:]` inside a class: copy through its closing `:]`.
                out.push('[');
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            // Go takes these literally; the crate reads `&&`, `~~` as set operations.
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::go_regex;

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        assert!(go_regex(r"^\d+$").unwrap().is_match("123"));
        assert!(!go_regex(r"^\d+$").unwrap().is_match("١٢٣"));
        assert!(!go_regex(r"^\w$").unwrap().is_match("é"));
        assert!(go_regex(r"^[\d_]+$").unwrap().is_match("1_2"));
        assert!(go_regex(r"^[^\s]+$").unwrap().is_match("ab"));
        assert!(!go_regex(r"^[^\s]+$").unwrap().is_match("a b"));
        assert!(go_regex(r"\bkey\b").unwrap().is_match("a key"));
    }

    #[test]
    fn quoting_and_classes() {
        assert!(go_regex(r"^\Qa.b*\E$").unwrap().is_match("a.b*"));
        assert!(!go_regex(r"^\Qa.b\E$").unwrap().is_match("axb"));
        assert!(go_regex(r"^[]a]+$").unwrap().is_match("]a"));
        assert!(go_regex(r"^[[:alpha:]]+$").unwrap().is_match("ab"));
        assert!(go_regex(r"^[a[]+$").unwrap().is_match("a["));
        assert!(go_regex(r"(?i)^PROD/.*\.yaml$")
            .unwrap()
            .is_match("prod/x.yaml"));
        assert!(go_regex(r"^[&&a]+$").unwrap().is_match("&a"));
        assert!(go_regex("([").is_err());
    }
}
