//! A small JSONC reader that keeps byte spans, for splicing: comments (`//`,
//! `/* */`) and trailing commas are accepted, and every value knows where
//! it sits in the text, so a change replaces those bytes and leaves the
//! rest of the file as it was.

use std::ops::Range;

/// A value and the bytes it spans.
#[derive(Debug, Clone)]
pub struct Value {
    /// What it is.
    pub kind: Kind,
    /// Where it is in the text.
    pub span: Range<usize>,
}

/// The kinds of JSON values (numbers, booleans and null are not told apart).
#[derive(Debug, Clone)]
pub enum Kind {
    /// An object's members, in file order.
    Object(Vec<Member>),
    /// An array's items.
    Array(Vec<Value>),
    /// A string, unescaped.
    String(String),
    /// A number, `true`, `false` or `null`.
    Other,
}

/// An object member.
#[derive(Debug, Clone)]
pub struct Member {
    /// The key, unescaped.
    pub key: String,
    /// Where the key (with its quotes) starts.
    pub key_start: usize,
    /// The value.
    pub value: Value,
}

/// Why the text is not JSONC; names a byte offset, never content.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON at line {line}, column {column}: {what}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (bytes).
    pub column: usize,
    /// What was expected.
    pub what: &'static str,
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.member(key).map(|m| &m.value)
    }

    /// The member named `key` of an object (the last one when repeated, as
    /// JSON readers keep).
    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.kind {
            Kind::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    /// The members, when an object.
    pub fn members(&self) -> &[Member] {
        match &self.kind {
            Kind::Object(members) => members,
            _ => &[],
        }
    }

    /// The string, when a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items, when an array.
    pub fn items(&self) -> Option<&[Value]> {
        match &self.kind {
            Kind::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Parses a JSONC document.
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_trivia()?;
    let value = parser.value(0)?;
    parser.skip_trivia()?;
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("end of file"));
    }
    Ok(value)
}

/// Deeper documents are refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> SyntaxError {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        SyntaxError { line, column, what }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_trivia(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'*') => {
                    match self.text[self.pos + 2..].find("*/") {
                        Some(end) => self.pos += 2 + end + 2,
                        None => return Err(self.error("the end of a /* comment")),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("less nesting"));
        }
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                let word = &self.text[start..self.pos];
                if !matches!(word, "true" | "false" | "null")
                    && serde_json::from_str::<serde_json::Number>(word).is_err()
                {
                    self.pos = start;
                    return Err(self.error("a value"));
                }
                Kind::Other
            }
            _ => return Err(self.error("a value")),
        };
        Ok(Value {
            kind,
            span: start..self.pos,
        })
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.error("the end of a string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw = self.text.get(start..self.pos).unwrap_or_default();
        serde_json::from_str(raw).map_err(|_| {
            self.pos = start;
            self.error("a valid string")
        })
    }

    fn object(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.skip_trivia()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Kind::Object(members));
                }
                Some(b'"') => {}
                _ => return Err(self.error("a key or `}`")),
            }
            let key_start = self.pos;
            let key = self.string()?;
            self.skip_trivia()?;
            if self.peek() != Some(b':') {
                return Err(self.error("`:`"));
            }
            self.pos += 1;
            self.skip_trivia()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_start,
                value,
            });
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.error("`,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_trivia()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Kind::Array(items));
            }
            items.push(self.value(depth + 1)?);
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.error("`,` or `]`")),
            }
        }
    }
}

/// One replacement of a byte range.
#[derive(Debug, Clone)]
pub struct Splice {
    /// The bytes replaced (empty to insert).
    pub range: Range<usize>,
    /// What goes there.
    pub text: String,
}

/// Applies non-overlapping splices to `text`.
pub fn apply(text: &str, mut splices: Vec<Splice>) -> String {
    splices.sort_by_key(|s| std::cmp::Reverse(s.range.start));
    let mut out = text.to_string();
    for splice in splices {
        out.replace_range(splice.range, &splice.text);
    }
    out
}

/// The whitespace that starts the line holding byte `at`.
pub fn line_indent(text: &str, at: usize) -> &str {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let end = line
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(line.len());
    &line[..end]
}

/// The file's indentation unit: the first indented line's leading
/// whitespace, else two spaces.
pub fn indent_unit(text: &str) -> &str {
    text.lines()
        .map(|l| &l[..l.len() - l.trim_start_matches([' ', '\t']).len()])
        .find(|w| !w.is_empty())
        .unwrap_or("  ")
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `["a", "b"]` on one line.
pub fn inline_array(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// An object of string values, one member a line, its closing brace at
/// `indent` and its members one `unit` deeper; `{}` when empty.
pub fn block_object(pairs: &[(String, String)], indent: &str, unit: &str) -> String {
    if pairs.is_empty() {
        return "{}".into();
    }
    let members: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{indent}{unit}{}: {}", quote(k), quote(v)))
        .collect();
    format!("{{\n{}\n{indent}}}", members.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"// top
{
  /* block */ "mcp": {
    "a": {"command": ["x", "y\n"], "n": 1.5e3, "t": true,}, // trailing
  },
}
"#;

    #[test]
    fn parses_comments_trailing_commas_and_spans() {
        let doc = parse(TEXT).unwrap();
        let a = doc.get("mcp").unwrap().get("a").unwrap();
        let command = a.get("command").unwrap();
        assert_eq!(&TEXT[command.span.clone()], r#"["x", "y\n"]"#);
        assert_eq!(command.items().unwrap()[1].as_str(), Some("y\n"));
        assert!(matches!(a.get("n").unwrap().kind, Kind::Other));
    }

    #[test]
    fn splices_only_the_ranges() {
        let doc = parse(TEXT).unwrap();
        let command = doc.get("mcp").unwrap().get("a").unwrap().get("command");
        let out = apply(
            TEXT,
            vec![Splice {
                range: command.unwrap().span.clone(),
                text: inline_array(&["z".into()]),
            }],
        );
        assert_eq!(out, TEXT.replace(r#"["x", "y\n"]"#, r#"["z"]"#));
        assert!(parse(&out).is_ok());
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse("{\n  \"a\": tru }").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        assert!(parse("{\"a\": 1} x").is_err());
        assert!(parse("/* open").is_err());
        assert!(parse(&"[".repeat(500)).is_err());
    }

    #[test]
    fn indentation() {
        assert_eq!(indent_unit("{\n    \"a\": 1\n}"), "    ");
        assert_eq!(line_indent("{\n\t\t\"a\": 1\n}", 5), "\t\t");
        assert_eq!(
            block_object(&[("K".into(), "v".into())], "  ", "  "),
            "{\n    \"K\": \"v\"\n  }"
        );
    }
}
