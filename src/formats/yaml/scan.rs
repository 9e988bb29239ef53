//! The tokenizer: a byte-level port of go-yaml's `scannerc.go` (itself
//! libyaml's scanner), with its simple-key and indentation rules, so the
//! same inputs are accepted and split the same way. Scalars that need no
//! folding or unescaping borrow from the input, which is what keeps large
//! encrypted files cheap to read. Comments are recorded on the side with
//! their positions, for [`super::comments`] to place.

mod scalars;

use std::borrow::Cow;
use std::collections::VecDeque;

use super::load::MAX_DEPTH;
use super::syntax;
use crate::formats::FormatError;

pub type Res<T> = Result<T, FormatError>;

/// A position: byte offset, 1-based line, 0-based column in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub index: usize,
    pub line: usize,
    pub col: usize,
}

/// The scalar styles of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    Literal,
    Folded,
}

/// What a token is.
#[derive(Debug)]
pub enum Tok<'a> {
    StreamEnd,
    VersionDirective,
    TagDirective(String, String),
    DocumentStart,
    DocumentEnd,
    BlockSequenceStart,
    BlockMappingStart,
    BlockEnd,
    FlowSequenceStart,
    FlowSequenceEnd,
    FlowMappingStart,
    FlowMappingEnd,
    BlockEntry,
    FlowEntry,
    Key,
    Value,
    Alias(&'a str),
    Anchor(&'a str),
    /// Handle and suffix, as written.
    Tag(String, String),
    Scalar(Cow<'a, str>, Style),
}

/// A token with where it starts and ends.
#[derive(Debug)]
pub struct Token<'a> {
    pub tok: Tok<'a>,
    pub start: Mark,
    pub end: Mark,
}

/// A comment as the scanner met it.
#[derive(Debug)]
pub struct RawComment {
    pub mark: Mark,
    /// Nothing but indentation precedes it on its line.
    pub own_line: bool,
    /// The text after `#`.
    pub text: String,
}

/// A place a mapping key could start, until a `:` confirms or rules it out.
#[derive(Clone, Copy, Default)]
struct SimpleKey {
    possible: bool,
    required: bool,
    token_number: usize,
    mark: Mark,
}

pub struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    mark: Mark,
    tokens: VecDeque<Token<'a>>,
    /// Tokens handed out so far.
    parsed: usize,
    done: bool,
    indent: i64,
    indents: Vec<i64>,
    simple_key_allowed: bool,
    simple_keys: Vec<SimpleKey>,
    flow_level: usize,
    /// Comments in input order, not yet taken by the loader.
    pub comments: VecDeque<RawComment>,
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_break(c: u8) -> bool {
    c == b'\n' || c == b'\r'
}

/// YAML's indicator characters: none starts a plain scalar (but `-`, `?`
/// and `:` before a non-blank, see `starts_plain`).
pub(super) fn is_indicator(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    )
}

/// Blank, break, or the end of input (read as 0).
fn is_blankz(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0)
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            bytes: text.as_bytes(),
            mark: Mark {
                index: 0,
                line: 1,
                col: 0,
            },
            tokens: VecDeque::new(),
            parsed: 0,
            done: false,
            indent: -1,
            indents: Vec::new(),
            simple_key_allowed: true,
            simple_keys: vec![SimpleKey::default()],
            flow_level: 0,
            comments: VecDeque::new(),
        }
    }

    /// The position the scanner has read up to.
    pub fn mark(&self) -> Mark {
        self.mark
    }

    /// The byte `k` ahead of the current one, 0 past the end.
    fn at(&self, k: usize) -> u8 {
        self.bytes.get(self.mark.index + k).copied().unwrap_or(0)
    }

    fn cur(&self) -> u8 {
        self.at(0)
    }

    pub fn error(&self, mark: Mark, what: &str) -> FormatError {
        syntax(format!(
            "{what} at line {} column {}",
            mark.line,
            mark.col + 1
        ))
    }

    /// Moves past one character that is not a line break.
    fn skip(&mut self) {
        let width = match self.cur() {
            0..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        self.mark.index = (self.mark.index + width).min(self.bytes.len());
        self.mark.col += 1;
    }

    /// Moves past `n` bytes of non-break text on the current line.
    fn skip_bytes(&mut self, n: usize) {
        let end = self.mark.index + n;
        let chars = self.bytes[self.mark.index..end]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        self.mark.index = end;
        self.mark.col += chars;
    }

    /// Moves past a line break (`\r\n` counts as one).
    fn skip_line(&mut self) {
        if self.cur() == b'\r' && self.at(1) == b'\n' {
            self.mark.index += 2;
        } else {
            self.mark.index += 1;
        }
        self.mark.line += 1;
        self.mark.col = 0;
    }

    fn is_document_indicator(&self) -> bool {
        self.mark.col == 0
            && ((self.cur() == b'-' && self.at(1) == b'-' && self.at(2) == b'-')
                || (self.cur() == b'.' && self.at(1) == b'.' && self.at(2) == b'.'))
            && is_blankz(self.at(3))
    }

    /// The next token, or an error.
    pub fn next_token(&mut self) -> Res<Token<'a>> {
        self.fetch_more_tokens()?;
        let token = self
            .tokens
            .pop_front()
            .ok_or_else(|| self.error(self.mark, "unexpected end of input"))?;
        self.parsed += 1;
        if let Tok::StreamEnd = token.tok {
            self.done = true;
        }
        Ok(token)
    }

    /// The next token without taking it.
    pub fn peek_token(&mut self) -> Res<&Token<'a>> {
        self.fetch_more_tokens()?;
        match self.tokens.front() {
            Some(t) => Ok(t),
            None => Err(self.error(self.mark, "unexpected end of input")),
        }
    }

    fn fetch_more_tokens(&mut self) -> Res<()> {
        loop {
            let mut need_more = self.tokens.is_empty();
            if !need_more {
                self.stale_simple_keys()?;
                need_more = self
                    .simple_keys
                    .iter()
                    .any(|k| k.possible && k.token_number == self.parsed);
            }
            if !need_more || self.done {
                return Ok(());
            }
            self.fetch_next_token()?;
        }
    }

    fn fetch_next_token(&mut self) -> Res<()> {
        self.scan_to_next_token()?;
        self.stale_simple_keys()?;
        self.unroll_indent(self.mark.col as i64);
        let c = self.cur();
        if self.mark.index >= self.bytes.len() {
            return self.fetch_stream_end();
        }
        if self.mark.col == 0 && c == b'%' {
            return self.fetch_directive();
        }
        if self.is_document_indicator() {
            let tok = if c == b'-' {
                Tok::DocumentStart
            } else {
                Tok::DocumentEnd
            };
            self.unroll_indent(-1);
            self.remove_simple_key()?;
            self.simple_key_allowed = false;
            let start = self.mark;
            self.skip_bytes(3);
            return self.push(tok, start);
        }
        let next = self.at(1);
        match c {
            b'[' => self.fetch_flow_start(Tok::FlowSequenceStart),
            b'{' => self.fetch_flow_start(Tok::FlowMappingStart),
            b']' => self.fetch_flow_end(Tok::FlowSequenceEnd),
            b'}' => self.fetch_flow_end(Tok::FlowMappingEnd),
            b',' => {
                self.remove_simple_key()?;
                self.simple_key_allowed = true;
                self.push_indicator(Tok::FlowEntry)
            }
            b'-' if is_blankz(next) => self.fetch_block_entry(),
            b'?' if self.flow_level > 0 || is_blankz(next) => self.fetch_key(),
            b':' if self.flow_level > 0 || is_blankz(next) => self.fetch_value(),
            b'*' | b'&' => {
                self.save_simple_key()?;
                self.simple_key_allowed = false;
                self.scan_anchor(c == b'*')
            }
            b'!' => {
                self.save_simple_key()?;
                self.simple_key_allowed = false;
                self.scan_tag()
            }
            b'|' | b'>' if self.flow_level == 0 => {
                self.remove_simple_key()?;
                self.simple_key_allowed = true;
                let token = self.block_scalar(c == b'|')?;
                self.tokens.push_back(token);
                Ok(())
            }
            b'\'' | b'"' => {
                self.save_simple_key()?;
                self.simple_key_allowed = false;
                let token = self.flow_scalar(c == b'\'')?;
                self.tokens.push_back(token);
                Ok(())
            }
            _ if self.starts_plain(c, next) => {
                self.save_simple_key()?;
                self.simple_key_allowed = false;
                let token = self.plain_scalar()?;
                self.tokens.push_back(token);
                Ok(())
            }
            _ => Err(self.error(self.mark, "found character that cannot start any token")),
        }
    }

    fn starts_plain(&self, c: u8, next: u8) -> bool {
        let indicator = is_blankz(c) || is_indicator(c);
        !indicator
            || (c == b'-' && !is_blank(next))
            || (self.flow_level == 0 && (c == b'?' || c == b':') && !is_blankz(next))
    }

    /// Pushes a one-character indicator token.
    fn push_indicator(&mut self, tok: Tok<'a>) -> Res<()> {
        let start = self.mark;
        self.skip();
        self.push(tok, start)
    }

    fn push(&mut self, tok: Tok<'a>, start: Mark) -> Res<()> {
        self.tokens.push_back(Token {
            tok,
            start,
            end: self.mark,
        });
        Ok(())
    }

    /// Skips whitespace, line breaks and comments (recording the comments).
    fn scan_to_next_token(&mut self) -> Res<()> {
        loop {
            if self.mark.col == 0 && self.bytes[self.mark.index..].starts_with(b"\xEF\xBB\xBF") {
                self.mark.index += 3;
            }
            while self.cur() == b' '
                || ((self.flow_level > 0 || !self.simple_key_allowed) && self.cur() == b'\t')
            {
                self.mark.index += 1;
                self.mark.col += 1;
            }
            if self.cur() == b'#' {
                self.record_comment();
            }
            if is_break(self.cur()) {
                self.skip_line();
                if self.flow_level == 0 {
                    self.simple_key_allowed = true;
                }
            } else {
                return Ok(());
            }
        }
    }

    /// Records the comment at the current `#` and moves to its line's end.
    fn record_comment(&mut self) {
        let start = self.mark.index;
        let rest = &self.bytes[start..];
        let len = rest.iter().position(|&b| is_break(b)).unwrap_or(rest.len());
        let line_start = self.bytes[..start]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let own_line = self.bytes[line_start..start]
            .iter()
            .all(|&b| is_blank(b) || b == b'\r');
        self.comments.push_back(RawComment {
            mark: self.mark,
            own_line,
            text: self.text[start + 1..start + len].to_string(),
        });
        self.skip_bytes(len);
    }

    fn stale_simple_keys(&mut self) -> Res<()> {
        let mark = self.mark;
        for i in 0..self.simple_keys.len() {
            let key = self.simple_keys[i];
            if key.possible && (key.mark.line < mark.line || key.mark.index + 1024 < mark.index) {
                if key.required {
                    return Err(self.error(key.mark, "could not find expected ':'"));
                }
                self.simple_keys[i].possible = false;
            }
        }
        Ok(())
    }

    fn save_simple_key(&mut self) -> Res<()> {
        let required = self.flow_level == 0 && self.indent == self.mark.col as i64;
        if self.simple_key_allowed {
            let key = SimpleKey {
                possible: true,
                required,
                token_number: self.parsed + self.tokens.len(),
                mark: self.mark,
            };
            self.remove_simple_key()?;
            if let Some(last) = self.simple_keys.last_mut() {
                *last = key;
            }
        }
        Ok(())
    }

    fn remove_simple_key(&mut self) -> Res<()> {
        if let Some(key) = self.simple_keys.last_mut() {
            if key.possible && key.required {
                let mark = key.mark;
                return Err(self.error(mark, "could not find expected ':'"));
            }
            key.possible = false;
        }
        Ok(())
    }

    /// Opens a block collection at `col` when it is deeper than the current
    /// one, inserting its start token at `number` (or at the end).
    fn roll_indent(
        &mut self,
        col: usize,
        number: Option<usize>,
        tok: Tok<'a>,
        mark: Mark,
    ) -> Res<()> {
        if self.flow_level > 0 || self.indent >= col as i64 {
            return Ok(());
        }
        if self.indents.len() >= MAX_DEPTH * 2 {
            return Err(self.error(mark, "nesting too deep"));
        }
        self.indents.push(self.indent);
        self.indent = col as i64;
        let token = Token {
            tok,
            start: mark,
            end: mark,
        };
        match number {
            Some(n) => self.tokens.insert(n - self.parsed, token),
            None => self.tokens.push_back(token),
        }
        Ok(())
    }

    /// Closes block collections deeper than `col`.
    fn unroll_indent(&mut self, col: i64) {
        if self.flow_level > 0 {
            return;
        }
        while self.indent > col {
            self.tokens.push_back(Token {
                tok: Tok::BlockEnd,
                start: self.mark,
                end: self.mark,
            });
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    fn fetch_stream_end(&mut self) -> Res<()> {
        if self.mark.col != 0 {
            self.mark.col = 0;
            self.mark.line += 1;
        }
        self.unroll_indent(-1);
        self.remove_simple_key()?;
        self.simple_key_allowed = false;
        let start = self.mark;
        self.push(Tok::StreamEnd, start)
    }

    fn fetch_flow_start(&mut self, tok: Tok<'a>) -> Res<()> {
        self.save_simple_key()?;
        if self.flow_level >= MAX_DEPTH * 2 {
            return Err(self.error(self.mark, "nesting too deep"));
        }
        self.simple_keys.push(SimpleKey::default());
        self.flow_level += 1;
        self.simple_key_allowed = true;
        self.push_indicator(tok)
    }

    fn fetch_flow_end(&mut self, tok: Tok<'a>) -> Res<()> {
        self.remove_simple_key()?;
        if self.flow_level > 0 {
            self.flow_level -= 1;
            self.simple_keys.pop();
        }
        self.simple_key_allowed = false;
        self.push_indicator(tok)
    }

    fn fetch_block_entry(&mut self) -> Res<()> {
        if self.flow_level == 0 {
            if !self.simple_key_allowed {
                return Err(self.error(
                    self.mark,
                    "block sequence entries are not allowed in this context",
                ));
            }
            self.roll_indent(self.mark.col, None, Tok::BlockSequenceStart, self.mark)?;
        }
        self.remove_simple_key()?;
        self.simple_key_allowed = true;
        self.push_indicator(Tok::BlockEntry)
    }

    fn fetch_key(&mut self) -> Res<()> {
        if self.flow_level == 0 {
            if !self.simple_key_allowed {
                return Err(self.error(self.mark, "mapping keys are not allowed in this context"));
            }
            self.roll_indent(self.mark.col, None, Tok::BlockMappingStart, self.mark)?;
        }
        self.remove_simple_key()?;
        self.simple_key_allowed = self.flow_level == 0;
        self.push_indicator(Tok::Key)
    }

    fn fetch_value(&mut self) -> Res<()> {
        let key = self.simple_keys.last().copied().unwrap_or_default();
        if key.possible {
            self.tokens.insert(
                key.token_number - self.parsed,
                Token {
                    tok: Tok::Key,
                    start: key.mark,
                    end: key.mark,
                },
            );
            self.roll_indent(
                key.mark.col,
                Some(key.token_number),
                Tok::BlockMappingStart,
                key.mark,
            )?;
            if let Some(last) = self.simple_keys.last_mut() {
                last.possible = false;
            }
            self.simple_key_allowed = false;
        } else {
            if self.flow_level == 0 {
                if !self.simple_key_allowed {
                    return Err(
                        self.error(self.mark, "mapping values are not allowed in this context")
                    );
                }
                self.roll_indent(self.mark.col, None, Tok::BlockMappingStart, self.mark)?;
            }
            self.simple_key_allowed = self.flow_level == 0;
        }
        self.push_indicator(Tok::Value)
    }

    fn fetch_directive(&mut self) -> Res<()> {
        self.unroll_indent(-1);
        self.remove_simple_key()?;
        self.simple_key_allowed = false;
        let start = self.mark;
        self.skip();
        let name = self.take_while(is_alpha);
        let tok = match name {
            "YAML" => {
                self.skip_blanks();
                let version = self.take_while(|c| c.is_ascii_digit() || c == b'.');
                let mut parts = version.split('.');
                let ok = matches!(
                    (parts.next(), parts.next(), parts.next()),
                    (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty()
                );
                if !ok {
                    return Err(self.error(start, "did not find expected version number"));
                }
                Tok::VersionDirective
            }
            "TAG" => {
                self.skip_blanks();
                let handle = self.tag_handle(true, start)?;
                if !is_blank(self.cur()) {
                    return Err(self.error(start, "did not find expected whitespace"));
                }
                self.skip_blanks();
                let prefix = self.tag_uri(true, "", start)?;
                Tok::TagDirective(handle, prefix)
            }
            "" => return Err(self.error(start, "could not find expected directive name")),
            _ => {
                // Reserved directives are skipped, as go-yaml does.
                while !is_break(self.cur()) && self.cur() != 0 {
                    self.skip();
                }
                return Ok(());
            }
        };
        self.skip_blanks();
        if self.cur() == b'#' {
            self.record_comment();
        }
        if !is_blankz(self.cur()) {
            return Err(self.error(start, "did not find expected comment or line break"));
        }
        self.push(tok, start)
    }

    fn skip_blanks(&mut self) {
        while is_blank(self.cur()) {
            self.skip();
        }
    }

    /// Consumes ASCII bytes matching `pred` and returns them.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.mark.index;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| !pred(b))
            .unwrap_or(self.bytes.len() - start);
        self.skip_bytes(len);
        &self.text[start..start + len]
    }

    fn scan_anchor(&mut self, alias: bool) -> Res<()> {
        let start = self.mark;
        self.skip();
        let name = self.take_while(is_alpha);
        let c = self.cur();
        let ends =
            is_blankz(c) || matches!(c, b'?' | b':' | b',' | b']' | b'}' | b'%' | b'@' | b'`');
        if name.is_empty() || !ends {
            return Err(self.error(
                start,
                "did not find expected alphabetic or numeric character",
            ));
        }
        let tok = if alias {
            Tok::Alias(name)
        } else {
            Tok::Anchor(name)
        };
        self.push(tok, start)
    }

    fn scan_tag(&mut self) -> Res<()> {
        let start = self.mark;
        let (handle, suffix) = if self.at(1) == b'<' {
            self.skip_bytes(2);
            let suffix = self.tag_uri(false, "", start)?;
            if self.cur() != b'>' {
                return Err(self.error(start, "did not find the expected '>'"));
            }
            self.skip();
            (String::new(), suffix)
        } else {
            let handle = self.tag_handle(false, start)?;
            if handle.len() > 1 && handle.ends_with('!') {
                (handle, self.tag_uri(false, "", start)?)
            } else {
                let suffix = self.tag_uri(false, &handle, start)?;
                if suffix.is_empty() {
                    (String::new(), "!".to_string())
                } else {
                    ("!".to_string(), suffix)
                }
            }
        };
        if !(is_blankz(self.cur()) || (self.flow_level > 0 && self.cur() == b',')) {
            return Err(self.error(start, "did not find expected whitespace or line break"));
        }
        self.push(Tok::Tag(handle, suffix), start)
    }

    fn tag_handle(&mut self, directive: bool, start: Mark) -> Res<String> {
        if self.cur() != b'!' {
            return Err(self.error(start, "did not find expected '!'"));
        }
        let from = self.mark.index;
        self.skip();
        self.take_while(is_alpha);
        if self.cur() == b'!' {
            self.skip();
        } else if directive && self.mark.index - from != 1 {
            return Err(self.error(start, "did not find expected '!'"));
        }
        Ok(self.text[from..self.mark.index].to_string())
    }

    /// A tag's URI part, `%XX` escapes decoded; `head` is a handle that
    /// turned out to be the start of the suffix.
    fn tag_uri(&mut self, directive: bool, head: &str, start: Mark) -> Res<String> {
        let mut out: Vec<u8> = head.as_bytes().get(1..).unwrap_or_default().to_vec();
        let mut any = !head.is_empty();
        loop {
            let c = self.cur();
            let uri_char = is_alpha(c) || b";/?:@&=+$,.!~*'()[]%".contains(&c);
            if !uri_char || c == 0 {
                break;
            }
            if c == b'%' {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(self.at(1)), hex(self.at(2))) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(self.error(start, "did not find URI escaped octet")),
                }
                self.skip_bytes(3);
            } else {
                out.push(c);
                self.skip();
            }
            any = true;
        }
        if !any {
            let what = if directive {
                "did not find expected tag URI in a %TAG directive"
            } else {
                "did not find expected tag URI"
            };
            return Err(self.error(start, what));
        }
        String::from_utf8(out).map_err(|_| self.error(start, "found an incorrect UTF-8 octet"))
    }
}
