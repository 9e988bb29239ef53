//! Putting the secret file's path into the command wherever `{}` stands,
//! without ever letting the path become shell code.
//!
//! When the path is made of shell-safe characters (the usual case) rsops
//! pastes it as the reference does: such text means the same bare, quoted,
//! in a comment or in a here-document. Otherwise — a `$TMPDIR` with a space,
//! a `--filename` with a quote or `;` — the path is never pasted: the `{}`
//! becomes a reference to the variable [`PATH_VARIABLE`], which the command
//! is given, quoted for where the `{}` seems to stand (bare, `'…'` or
//! `"…"`). Each replacement is balanced in every quoting context, so even
//! where that guess is wrong (a `'` in a comment, a here-document) the
//! result is at worst a wrong word, never a command: a variable's value is
//! not parsed as shell code.

/// The variable that holds the secret file's path in `exec-file`'s command.
pub const PATH_VARIABLE: &str = "RSOPS_FILE";

/// Where in the shell's quoting a byte of the command seems to stand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Bare,
    Single,
    /// `$'…'`, where a backslash escapes a quote.
    AnsiC,
    Double,
    /// From a word-initial `#` to the end of the line.
    Comment,
}

/// A here-document announced on the current line, whose body starts after it.
struct HereDoc {
    delimiter: Vec<u8>,
    strip_tabs: bool,
    quoted: bool,
}

/// Whether `path` has characters the shell treats specially, so the command
/// refers to it through [`PATH_VARIABLE`], which must then be set.
pub fn needs_variable(path: &[u8]) -> bool {
    !is_safe(path)
}

/// Replaces every `{}` in `command` with `path`, or with a quoted reference
/// to [`PATH_VARIABLE`] when [`needs_variable`] says so.
///
/// To place that reference, the command is read as `/bin/sh` would read it:
/// quotes, backslashes, comments, `$(…)` and backquotes (each with quoting
/// of its own), and here-documents.
pub fn substitute(command: &[u8], path: &[u8]) -> Vec<u8> {
    if is_safe(path) {
        return replace_all(command, path);
    }
    Lexer::new(command, path).run()
}

/// Replaces every `{}` in `command` with `path`, as it is (the argv form's
/// arguments, and a shell command when the path is shell-safe).
pub(crate) fn replace_all(command: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(command.len() + path.len());
    let mut rest = command;
    while let Some(at) = rest.windows(2).position(|w| w == b"{}") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(path);
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    out
}

struct Lexer<'a> {
    input: &'a [u8],
    path: &'a [u8],
    at: usize,
    out: Vec<u8>,
    quoting: Quoting,
    /// Enclosing contexts of `$(…)` and backquotes: the quoting to return
    /// to, whether it is a backquote, and the open parentheses inside.
    nesting: Vec<(Quoting, bool, usize)>,
    parens: usize,
    pending: Vec<HereDoc>,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a [u8], path: &'a [u8]) -> Lexer<'a> {
        Lexer {
            input,
            path,
            at: 0,
            out: Vec::with_capacity(input.len() + 16),
            quoting: Quoting::Bare,
            nesting: Vec::new(),
            parens: 0,
            pending: Vec::new(),
        }
    }

    fn peek(&self, offset: usize) -> Option<u8> {
        self.input.get(self.at + offset).copied()
    }

    /// Copies `n` bytes of the command to the output.
    fn copy(&mut self, n: usize) {
        let end = (self.at + n).min(self.input.len());
        self.out.extend_from_slice(&self.input[self.at..end]);
        self.at = end;
    }

    fn run(mut self) -> Vec<u8> {
        while self.at < self.input.len() {
            if self.input[self.at..].starts_with(b"{}") {
                let reference = variable_reference(self.quoting);
                self.out.extend_from_slice(&reference);
                self.at += 2;
                continue;
            }
            let byte = self.input[self.at];
            match self.quoting {
                Quoting::Comment => {
                    if byte == b'\n' {
                        self.quoting = Quoting::Bare;
                        self.copy(1);
                        self.here_doc_bodies();
                    } else {
                        self.copy(1);
                    }
                }
                Quoting::Single => {
                    if byte == b'\'' {
                        self.quoting = Quoting::Bare;
                    }
                    self.copy(1);
                }
                Quoting::AnsiC => match byte {
                    b'\\' => self.copy(2),
                    b'\'' => {
                        self.quoting = Quoting::Bare;
                        self.copy(1);
                    }
                    _ => self.copy(1),
                },
                Quoting::Double => match byte {
                    b'\\' => self.copy(2),
                    b'"' => {
                        self.quoting = Quoting::Bare;
                        self.copy(1);
                    }
                    b'$' if self.peek(1) == Some(b'(') => self.open_substitution(2, false),
                    b'`' => self.open_substitution(1, true),
                    _ => self.copy(1),
                },
                Quoting::Bare => self.bare(byte),
            }
        }
        self.out
    }

    fn bare(&mut self, byte: u8) {
        match byte {
            b'\\' => self.copy(2),
            b'\'' => {
                self.quoting = Quoting::Single;
                self.copy(1);
            }
            b'$' if self.peek(1) == Some(b'\'') => {
                self.quoting = Quoting::AnsiC;
                self.copy(2);
            }
            b'"' => {
                self.quoting = Quoting::Double;
                self.copy(1);
            }
            b'$' if self.peek(1) == Some(b'(') => self.open_substitution(2, false),
            b'`' => match self.nesting.last() {
                Some(&(_, true, _)) => self.close_substitution(),
                _ => self.open_substitution(1, true),
            },
            b'(' => {
                self.parens += 1;
                self.copy(1);
            }
            b')' => {
                if self.parens == 0 && matches!(self.nesting.last(), Some(&(_, false, _))) {
                    self.close_substitution();
                } else {
                    self.parens = self.parens.saturating_sub(1);
                    self.copy(1);
                }
            }
            b'#' if self.at_word_start() => {
                self.quoting = Quoting::Comment;
                self.copy(1);
            }
            b'<' if self.peek(1) == Some(b'<') && self.peek(2) != Some(b'<') => {
                self.here_doc_operator();
            }
            b'\n' => {
                self.copy(1);
                self.here_doc_bodies();
            }
            _ => self.copy(1),
        }
    }

    fn at_word_start(&self) -> bool {
        self.at == 0
            || matches!(
                self.input[self.at - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'`'
            )
    }

    fn open_substitution(&mut self, opener: usize, backquote: bool) {
        self.nesting.push((self.quoting, backquote, self.parens));
        self.quoting = Quoting::Bare;
        self.parens = 0;
        self.copy(opener);
    }

    fn close_substitution(&mut self) {
        if let Some((quoting, _, parens)) = self.nesting.pop() {
            self.quoting = quoting;
            self.parens = parens;
        }
        self.copy(1);
    }

    /// `<<WORD` or `<<-WORD`: notes the here-document, whose body starts
    /// on the next line.
    fn here_doc_operator(&mut self) {
        self.copy(2);
        let strip_tabs = self.peek(0) == Some(b'-');
        if strip_tabs {
            self.copy(1);
        }
        while matches!(self.peek(0), Some(b' ' | b'\t')) {
            self.copy(1);
        }
        let mut delimiter = Vec::new();
        let mut quoted = false;
        let mut quote = None;
        while let Some(byte) = self.peek(0) {
            match (quote, byte) {
                (None, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')') => {
                    break
                }
                (None, b'\'' | b'"') => {
                    quoted = true;
                    quote = Some(byte);
                }
                (None, b'\\') => {
                    quoted = true;
                    self.copy(1);
                    if let Some(next) = self.peek(0) {
                        delimiter.push(next);
                    }
                }
                (Some(open), _) if byte == open => quote = None,
                _ => delimiter.push(byte),
            }
            self.copy(1);
        }
        self.pending.push(HereDoc {
            delimiter,
            strip_tabs,
            quoted,
        });
    }

    /// After a newline: the bodies of the here-documents announced on the
    /// line that ended, in order. Nothing in a body is quoting; a `{}` in an
    /// unquoted body expands the variable, in a quoted one it stays literal.
    fn here_doc_bodies(&mut self) {
        for doc in std::mem::take(&mut self.pending) {
            while self.at < self.input.len() {
                let end = self.input[self.at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.input.len(), |i| self.at + i);
                let line = &self.input[self.at..end];
                let content = if doc.strip_tabs {
                    let tabs = line.iter().take_while(|&&b| b == b'\t').count();
                    &line[tabs..]
                } else {
                    line
                };
                let last = content == doc.delimiter.as_slice();
                let replacement: Vec<u8> = if doc.quoted && !self.path.contains(&b'\n') {
                    self.path.to_vec()
                } else if doc.quoted {
                    format!("${{{PATH_VARIABLE}}}").into_bytes()
                } else {
                    variable_reference(Quoting::Double)
                };
                let line = if last {
                    line.to_vec()
                } else {
                    replace_all(line, &replacement)
                };
                self.out.extend_from_slice(&line);
                self.at = end;
                self.copy(1);
                if last {
                    break;
                }
            }
        }
    }
}

/// Characters that mean nothing special to the shell in any context.
fn is_safe(path: &[u8]) -> bool {
    path.iter()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%=".contains(b))
}

/// `"$RSOPS_FILE"`, written so that it expands to exactly the path where
/// the `{}` seems to stand. Every form has balanced quotes in every context.
fn variable_reference(quoting: Quoting) -> Vec<u8> {
    let name = PATH_VARIABLE;
    match quoting {
        Quoting::Bare | Quoting::Comment => format!("\"${name}\""),
        Quoting::Double => format!("${{{name}}}"),
        Quoting::Single | Quoting::AnsiC => format!("'\"${name}\"'"),
    }
    .into_bytes()
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
    fn unsafe_paths_become_a_quoted_variable() {
        let path = "/tmp/my dir/it's;touch X";
        assert_eq!(sub("cat {}", path), r#"cat "$RSOPS_FILE""#);
        assert_eq!(sub("cat '{}'", path), r#"cat ''"$RSOPS_FILE"''"#);
        assert_eq!(sub(r#"cat "{}""#, path), r#"cat "${RSOPS_FILE}""#);
        assert_eq!(
            sub(r#"echo "a\"b" {}"#, path),
            r#"echo "a\"b" "$RSOPS_FILE""#
        );
        assert!(!sub("# it's\ncat {}", path).contains("touch"));
    }

    /// Runs `script` with `/bin/sh` and `RSOPS_FILE` set to `path`.
    fn run(script: &[u8], path: &str, dir: &std::path::Path) -> String {
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::new(
                std::str::from_utf8(script).unwrap_or_default(),
            ))
            .env(PATH_VARIABLE, path)
            .current_dir(dir)
            .output()
            .expect("sh");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn no_context_turns_the_path_into_code() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = "/x/a';touch pwned;'\";touch pwned;\"$(touch pwned)`touch pwned`";
        let commands = [
            "echo {}",
            "echo '{}'",
            "echo \"{}\"",
            "# it's a comment\necho {}",
            "# it's\necho '{}'",
            "cat <<EOF\nit's {}\nEOF",
            "cat <<'EOF'\n\"{}\"\nEOF\necho '{}'",
            "echo \"it's\" {} # don't",
            "echo $(echo '{}') \"$(echo {})\" `echo \"{}\"`",
            "case x in x) echo '{}';; esac; echo {}",
            "echo $'{}' $'\\'{}'",
        ];
        for command in commands {
            let script = substitute(command.as_bytes(), path.as_bytes());
            run(&script, path, dir.path());
            assert!(
                !dir.path().join("pwned").exists(),
                "{command:?} ran code from the path"
            );
        }
        // And the path arrives whole wherever the `{}` stands.
        let printed = [
            "printf %s {}",
            "printf %s '{}'",
            "printf %s \"{}\"",
            "# it's a comment\nprintf %s {}",
            "cat <<EOF >/dev/null\nit's\nEOF\nprintf %s '{}'",
            "x=$(printf %s '{}'); printf %s \"$x\"",
            "printf %s \"$(printf %s '{}')\"",
            "printf %s \"`printf %s '{}'`\"",
            "printf %s {} # isn't it",
        ];
        for command in printed {
            let script = substitute(command.as_bytes(), path.as_bytes());
            assert_eq!(run(&script, path, dir.path()), path, "{command:?}");
        }
        let script = substitute(b"cat <<EOF\n{}\nEOF", path.as_bytes());
        assert_eq!(run(&script, path, dir.path()), format!("{path}\n"));
        let script = substitute(b"cat <<-'EOF'\n\t{}\n\tEOF\necho '{}'", path.as_bytes());
        assert_eq!(run(&script, path, dir.path()), format!("{path}\n{path}\n"));
    }
}
