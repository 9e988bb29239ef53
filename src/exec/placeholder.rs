//! Putting the secret file's path into the command wherever `{}` stands.
//!
//! The reference pastes the path in as is, so a `$TMPDIR` with a space or a
//! quote breaks the command. rsops pastes the same bytes when the path is
//! made of shell-safe characters (the usual case, so commands behave as
//! with sops), and otherwise quotes it for where the `{}` stands: bare,
//! inside `'…'`, or inside `"…"`. `cat {}`, `cat '{}'` and `cat "{}"` all
//! name the file.

/// Where in the shell's quoting a byte of the command stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Bare,
    Single,
    Double,
}

/// Replaces every `{}` in `command` with `path`, quoted as `/bin/sh` needs it there.
pub fn substitute(command: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(command.len() + path.len());
    let mut quoting = Quoting::Bare;
    let mut i = 0;
    while i < command.len() {
        let byte = command[i];
        if command[i..].starts_with(b"{}") {
            push_path(&mut out, path, quoting);
            i += 2;
            continue;
        }
        out.push(byte);
        i += 1;
        match (quoting, byte) {
            (Quoting::Bare | Quoting::Double, b'\\') => {
                if let Some(&next) = command.get(i) {
                    out.push(next);
                    i += 1;
                }
            }
            (Quoting::Bare, b'\'') => quoting = Quoting::Single,
            (Quoting::Bare, b'"') => quoting = Quoting::Double,
            (Quoting::Single, b'\'') | (Quoting::Double, b'"') => quoting = Quoting::Bare,
            _ => {}
        }
    }
    out
}

fn is_safe(path: &[u8]) -> bool {
    path.iter()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%=".contains(b))
}

fn push_path(out: &mut Vec<u8>, path: &[u8], quoting: Quoting) {
    if is_safe(path) {
        out.extend_from_slice(path);
        return;
    }
    match quoting {
        Quoting::Bare => {
            out.push(b'\'');
            push_in_single(out, path);
            out.push(b'\'');
        }
        Quoting::Single => push_in_single(out, path),
        Quoting::Double => {
            for &b in path {
                if matches!(b, b'"' | b'\\' | b'$' | b'`') {
                    out.push(b'\\');
                }
                out.push(b);
            }
        }
    }
}

/// Inside `'…'` nothing is special but `'` itself, which must close the
/// quote, be escaped, and reopen it.
fn push_in_single(out: &mut Vec<u8>, path: &[u8]) {
    for &b in path {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(command: &str, path: &str) -> String {
        String::from_utf8_lossy(&substitute(command.as_bytes(), path.as_bytes())).into_owned()
    }

    #[test]
    fn safe_paths_are_pasted_as_the_reference_does() {
        assert_eq!(
            sub("cat {} {}", "/tmp/.rsopsAb1/tmp-file"),
            "cat /tmp/.rsopsAb1/tmp-file /tmp/.rsopsAb1/tmp-file"
        );
        assert_eq!(sub("cat '{}'", "/t/f"), "cat '/t/f'");
        assert_eq!(sub("no placeholder", "/t/f"), "no placeholder");
        assert_eq!(sub("{", "/t/f"), "{");
        assert_eq!(sub("{{}}", "/t/f"), "{/t/f}");
    }

    #[test]
    fn unsafe_paths_are_quoted_for_their_spot() {
        let path = "/tmp/my dir/it's \"x\" $y/f";
        assert_eq!(sub("cat {}", path), r#"cat '/tmp/my dir/it'\''s "x" $y/f'"#);
        assert_eq!(
            sub("cat '{}'", path),
            r#"cat '/tmp/my dir/it'\''s "x" $y/f'"#
        );
        assert_eq!(
            sub(r#"cat "{}""#, path),
            r#"cat "/tmp/my dir/it's \"x\" \$y/f""#
        );
        assert_eq!(sub(r#"echo "a\"b" {}"#, "/a b"), r#"echo "a\"b" '/a b'"#);
        assert_eq!(sub(r"echo \' {}", "/a b"), r"echo \' '/a b'");
    }
}
