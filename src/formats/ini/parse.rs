//! The reading half of the go-ini library (`gopkg.in/ini.v1` 1.67.1, which
//! the reference binary is built with) with the only option sops sets,
//! `AllowNonUniqueSections`.
//!
//! Every quirk is kept because the reference's tree, and so every value's
//! authenticated data and the MAC, depends on it: keys before the first
//! section land in an implicit `DEFAULT` section, `=` and `:` both delimit a
//! key, `#` or `;` anywhere in an unquoted value starts a comment, a trailing
//! backslash joins the next line, one pair of surrounding quotes is removed,
//! and comments attach to the key or section that follows them.

use std::collections::HashMap;

/// go-ini's name for the section of keys that precede any header.
pub(super) const DEFAULT_SECTION: &str = "DEFAULT";

/// A parsed section; `comment` and key comments keep their markers.
pub(super) struct Section<'a> {
    pub(super) name: &'a str,
    pub(super) comment: String,
    pub(super) keys: Vec<Key>,
    index: HashMap<String, usize>,
}

/// A parsed key with its value and the comment lines that preceded it.
pub(super) struct Key {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) comment: String,
}

/// What went wrong, and on which 1-based line.
pub(super) struct ParseError {
    pub(super) line: usize,
    pub(super) what: &'static str,
}

/// go-ini's `bufio.Reader.ReadBytes('\n')` loop: lines keep their newline,
/// and `eof` is set once a read finds no more newline.
struct Lines<'a> {
    rest: &'a str,
    eof: bool,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> &'a str {
        let (line, rest) = match self.rest.find('\n') {
            Some(i) => self.rest.split_at(i + 1),
            None => {
                self.eof = true;
                (self.rest, "")
            }
        };
        self.rest = rest;
        if !line.is_empty() {
            self.number += 1;
        }
        line
    }

    fn error(&self, what: &'static str) -> ParseError {
        ParseError {
            line: self.number,
            what,
        }
    }
}

/// The parser's state: sections so far and the pending comment lines.
struct Parser<'a> {
    lines: Lines<'a>,
    sections: Vec<Section<'a>>,
    comment: String,
    /// The counter behind `-` keys, which go-ini names `#1`, `#2`, ….
    auto_count: usize,
}

/// Parses an INI file into its sections, the implicit `DEFAULT` first.
pub(super) fn parse(input: &str) -> Result<Vec<Section<'_>>, ParseError> {
    let mut parser = Parser {
        lines: Lines {
            rest: input,
            eof: false,
            number: 0,
        },
        sections: vec![Section::new(DEFAULT_SECTION)],
        comment: String::new(),
        auto_count: 1,
    };
    while !parser.lines.eof {
        let line = parser.lines.next_line().trim_start();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(['#', ';']) {
            parser.comment.push_str(line);
        } else if line.starts_with('[') {
            parser.section(line)?;
        } else {
            parser.key(line)?;
        }
    }
    Ok(parser.sections)
}

impl<'a> Section<'a> {
    fn new(name: &'a str) -> Self {
        Section {
            name,
            comment: String::new(),
            keys: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// go-ini's `NewKey`: a repeated name overwrites the value in place.
    fn set(&mut self, name: String, value: String) -> &mut Key {
        let at = match self.index.get(&name) {
            Some(&at) => {
                self.keys[at].value = value;
                at
            }
            None => {
                self.index.insert(name.clone(), self.keys.len());
                self.keys.push(Key {
                    name,
                    value,
                    comment: String::new(),
                });
                self.keys.len() - 1
            }
        };
        &mut self.keys[at]
    }
}

impl<'a> Parser<'a> {
    /// A `[name]` header, with an optional comment after the `]`.
    fn section(&mut self, line: &'a str) -> Result<(), ParseError> {
        let close = line
            .rfind(']')
            .ok_or_else(|| self.lines.error("unclosed section header"))?;
        let name = &line[1..close];
        if name.is_empty() {
            return Err(self.lines.error("empty section name"));
        }
        if let Some(at) = line[close + 1..].find(['#', ';']) {
            self.comment.push_str(&line[close + 1 + at..]);
        }
        let mut section = Section::new(name);
        section.comment = self.take_comment();
        self.sections.push(section);
        self.auto_count = 1;
        Ok(())
    }

    /// A `key = value` line (possibly continued on following lines).
    fn key(&mut self, line: &'a str) -> Result<(), ParseError> {
        let (name, offset) = self.key_name(line)?;
        let name = if name == "-" {
            self.auto_count += 1;
            format!("#{}", self.auto_count - 1)
        } else {
            name.to_string()
        };
        let value = self.value(&line[offset..])?;
        if name.is_empty() {
            return Err(self.lines.error("empty key name"));
        }
        let comment = self.take_comment();
        if let Some(section) = self.sections.last_mut() {
            section.set(name, value).comment = comment;
        }
        Ok(())
    }

    /// The pending comment, trimmed, leaving none pending.
    fn take_comment(&mut self) -> String {
        let comment = self.comment.trim().to_string();
        self.comment.clear();
        comment
    }

    /// go-ini's `readKeyName`: the key and the offset just past its delimiter.
    fn key_name(&self, line: &'a str) -> Result<(&'a str, usize), ParseError> {
        const DELIMITERS: &[u8] = b"=:";
        let quote = if line.starts_with('"') {
            if line.len() > 6 && line.starts_with(r#"""""#) {
                r#"""""#
            } else {
                "\""
            }
        } else if line.starts_with('`') {
            "`"
        } else {
            ""
        };
        if quote.is_empty() {
            let end = find_any(line, DELIMITERS)
                .ok_or_else(|| self.lines.error("key-value delimiter not found"))?;
            if end == 0 {
                return Err(self.lines.error("empty key name"));
            }
            return Ok((line[..end].trim(), end + 1));
        }
        let start = quote.len();
        let close = line[start..]
            .find(quote)
            .ok_or_else(|| self.lines.error("missing closing key quote"))?
            + start;
        // go-ini searches from one quote length past the closing quote's start.
        let delimiter = find_any(&line[close + start..], DELIMITERS)
            .ok_or_else(|| self.lines.error("key-value delimiter not found"))?;
        Ok((line[start..close].trim(), close + delimiter + start + 1))
    }

    /// go-ini's `readValue` (no Python multi-line values, no unescaping).
    fn value(&mut self, input: &'a str) -> Result<String, ParseError> {
        let line = input.trim_start();
        if line.is_empty() {
            return Ok(String::new());
        }
        let quote = if line.len() > 3 && line.starts_with(r#"""""#) {
            r#"""""#
        } else if line.starts_with('`') {
            "`"
        } else {
            ""
        };
        if !quote.is_empty() {
            let body = &line[quote.len()..];
            return match body.rfind(quote) {
                Some(end) => Ok(body[..end].to_string()),
                None => self.multiline(body, quote),
            };
        }
        let mut line = line.trim();
        if let Some(joined) = line.strip_suffix('\\') {
            return Ok(self.continuation(joined));
        }
        if let Some(at) = find_any(line, b"#;") {
            self.comment.push_str(&line[at..]);
            line = line[..at].trim();
        }
        if surrounded_by(line, b'\'') || surrounded_by(line, b'"') {
            line = &line[1..line.len() - 1];
        }
        Ok(line.to_string())
    }

    /// A quoted value that goes on until a line holding the closing quote.
    fn multiline(&mut self, first: &str, quote: &str) -> Result<String, ParseError> {
        let mut value = first.to_string();
        loop {
            let next = self.lines.next_line();
            // go-ini 1.67.1: a closing quote followed by a trailing
            // backslash does not close the value; the whole line is kept.
            let closing = next
                .rfind(quote)
                .filter(|&end| !next[end + quote.len()..].trim_end().ends_with('\\'));
            if let Some(end) = closing {
                value.push_str(&next[..end]);
                if let Some(at) = next[end..].find(['#', ';']) {
                    self.comment.push_str(next[end + at..].trim());
                }
                return Ok(value);
            }
            value.push_str(next);
            if self.lines.eof {
                return Err(self.lines.error("missing closing value quote"));
            }
        }
    }

    /// Joins following lines, trimmed, while each ends with a backslash.
    fn continuation(&mut self, first: &str) -> String {
        let mut value = first.to_string();
        loop {
            let next = self.lines.next_line().trim();
            if next.is_empty() {
                return value;
            }
            value.push_str(next);
            if !value.ends_with('\\') {
                return value;
            }
            value.pop();
        }
    }
}

/// The offset of the first byte of `s` that is in `set` (all ASCII, so the
/// offset is a character boundary).
fn find_any(s: &str, set: &[u8]) -> Option<usize> {
    s.bytes().position(|b| set.contains(&b))
}

/// go-ini's `hasSurroundedQuote`: `quote` first and last, and nowhere else.
fn surrounded_by(s: &str, quote: u8) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0] == quote
        && b[b.len() - 1] == quote
        && b[1..].iter().position(|&c| c == quote) == Some(b.len() - 2)
}
