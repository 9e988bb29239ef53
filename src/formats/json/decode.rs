//! A JSON reader shaped like the reference's: Go's `json.Decoder.Token`
//! state machine driven by the store's recursive `treeBranchFromJSONDecoder`.
//!
//! Mirroring that structure (rather than using a general JSON parser) keeps
//! the reference's quirks: duplicate keys are kept in order. A truncated
//! object (`{"a": 1, "b":`) is refused with "unexpected end of input", as sops
//! up to 3.12 refuses it (its `json.Unmarshal` of the whole file fails); the
//! 3.13 store would quietly end the object there. Anything but whitespace after the
//! top-level object is refused, as sops up to 3.12 refuses it (its
//! `json.Unmarshal` of the whole file fails with "invalid character … after
//! top-level value"); sops 3.13 stopped reading there and silently drops it,
//! which would hide whatever a bad merge or a concatenation appended.
//! Numbers become `Int` when they fit an `i64`, else `Float`, as sops 3.13's
//! `normalizeJSONNumber` does; strings are decoded as Go does, with invalid
//! UTF-8 and lone surrogates turned into U+FFFD.

use crate::tree::{Entry, Map, Value};

/// Maximum nesting of objects and arrays; deeper input is refused so that
/// neither parsing nor the recursive walks over the tree can exhaust the stack.
pub(super) const MAX_DEPTH: usize = 1000;

/// Why reading failed; `Eof` is Go's `io.EOF` at a token boundary, which the
/// store treats specially.
#[derive(Debug, PartialEq)]
pub(super) enum DecodeError {
    /// End of input where a token should start.
    Eof,
    /// Invalid input at a byte offset.
    Syntax(usize, &'static str),
}

/// One token, as `json.Decoder.Token` returns it.
enum Token {
    ObjOpen,
    ObjClose,
    ArrOpen,
    ArrClose,
    /// A string in key position.
    Key(String),
    /// A string, number, boolean or null in value position.
    Scalar(Value),
}

/// Go's `tokenState`: where in the grammar the next token is.
#[derive(Clone, Copy, PartialEq)]
enum State {
    TopValue,
    ArrayStart,
    ArrayValue,
    ArrayComma,
    ObjectStart,
    ObjectKey,
    ObjectColon,
    ObjectValue,
    ObjectComma,
}

/// The tokenizer plus the store's tree building on top of it.
pub(super) struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    state: State,
    stack: Vec<State>,
    /// Where to stop reading the top-level object: the offset of a `,`
    /// between two of its entries (see [`Decoder::top_level_part`]).
    stop: usize,
    /// Whether reading stopped there.
    stopped: bool,
}

/// What reading one part of the top-level object found.
pub(super) enum Part {
    /// Its entries up to the part's end, which is a `,` between entries.
    Entries(Map),
    /// Its entries up to its closing `}`: this part ends the input.
    Last(Map),
}

impl<'a> Decoder<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
        Decoder {
            input,
            pos: 0,
            state: State::TopValue,
            stack: Vec::new(),
            stop: usize::MAX,
            stopped: false,
        }
    }

    /// Reads the top-level object (Go's `treeBranchFromJSON`), then checks
    /// that only whitespace follows it.
    pub(super) fn top_level(&mut self) -> Result<Map, DecodeError> {
        match self.top_level_part(None, usize::MAX)? {
            Part::Entries(map) | Part::Last(map) => Ok(map),
        }
    }

    /// Reads part of the top-level object up to `stop`, the offset of a `,`
    /// between two of its entries (or past the object's end when it is
    /// none): from the input's start, or, given `after`, from the offset of
    /// another such `,`, read as the entries that follow it. That is right
    /// exactly when reading from the start reaches `after` as a `,` of the
    /// top-level object, which the part before reports by ending in
    /// [`Part::Entries`].
    pub(super) fn top_level_part(
        &mut self,
        after: Option<usize>,
        stop: usize,
    ) -> Result<Part, DecodeError> {
        self.stop = stop;
        if let Some(comma) = after {
            self.pos = comma;
            self.state = State::ObjectComma;
            self.stack = vec![State::TopValue];
            return self.rest_of_top_level();
        }
        let start = self.skip_space();
        match self.token() {
            Ok(Token::ObjOpen) => self.rest_of_top_level(),
            Ok(_) => Err(DecodeError::Syntax(
                start,
                "the top-level value must be an object",
            )),
            Err(DecodeError::Eof) => Err(DecodeError::Syntax(start, "empty input")),
            Err(e) => Err(e),
        }
    }

    /// The top-level object's entries from the current position to its end
    /// (checking that only whitespace follows) or to `stop`.
    fn rest_of_top_level(&mut self) -> Result<Part, DecodeError> {
        let map = self.branch(1)?;
        if self.stopped {
            return Ok(Part::Entries(map));
        }
        let end = self.skip_space();
        if end < self.input.len() {
            return Err(DecodeError::Syntax(
                end,
                "unexpected data after the top-level object",
            ));
        }
        Ok(Part::Last(map))
    }

    /// The entries of an object whose `{` was read.
    fn branch(&mut self, depth: usize) -> Result<Map, DecodeError> {
        self.check_depth(depth)?;
        let mut map = Vec::new();
        loop {
            match self.item(depth) {
                Ok(Some(entry)) => map.push(entry),
                Ok(None) => return Ok(map),
                Err(DecodeError::Eof) => {
                    return Err(DecodeError::Syntax(self.pos, "unexpected end of input"))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One `key: value` pair, or `None` at the closing `}`.
    fn item(&mut self, depth: usize) -> Result<Option<Entry>, DecodeError> {
        let at = self.skip_space();
        if at == self.stop && self.state == State::ObjectComma && self.stack.len() == 1 {
            self.stopped = true;
            return Ok(None);
        }
        let key = match self.token() {
            Ok(Token::Key(key)) => key,
            Ok(Token::ObjClose) => return Ok(None),
            Ok(_) | Err(DecodeError::Eof) => {
                return Err(DecodeError::Syntax(at, "expected an object key"))
            }
            Err(e) => return Err(e),
        };
        let token = self.token()?;
        let value = self.value_after(token, depth)?;
        Ok(Some(Entry::Pair(key, value)))
    }

    /// The items of an array whose `[` was read.
    fn slice(&mut self, depth: usize) -> Result<Vec<Value>, DecodeError> {
        self.check_depth(depth)?;
        let mut items = Vec::new();
        loop {
            match self.token()? {
                Token::ArrClose => return Ok(items),
                token => items.push(self.value_after(token, depth)?),
            }
        }
    }

    /// Completes a value that starts with `token`.
    fn value_after(&mut self, token: Token, depth: usize) -> Result<Value, DecodeError> {
        match token {
            Token::ObjOpen => Ok(Value::Map(self.branch(depth + 1)?)),
            Token::ArrOpen => Ok(Value::List(self.slice(depth + 1)?)),
            Token::Scalar(value) => Ok(value),
            // The state machine only yields these in other positions.
            Token::ObjClose | Token::ArrClose | Token::Key(_) => {
                Err(DecodeError::Syntax(self.pos, "unexpected token"))
            }
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            Err(DecodeError::Syntax(self.pos, "nesting is too deep"))
        } else {
            Ok(())
        }
    }

    /// Skips JSON whitespace and returns the new position.
    fn skip_space(&mut self) -> usize {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.input.get(self.pos) {
            self.pos += 1;
        }
        self.pos
    }

    /// Go's `Decoder.Token`: the next token, validating punctuation.
    fn token(&mut self) -> Result<Token, DecodeError> {
        loop {
            self.skip_space();
            let Some(&c) = self.input.get(self.pos) else {
                return Err(DecodeError::Eof);
            };
            match c {
                b'[' | b'{' => return self.open(c),
                b']' => return self.close(State::ArrayStart, State::ArrayComma, Token::ArrClose),
                b'}' => return self.close(State::ObjectStart, State::ObjectComma, Token::ObjClose),
                b':' if self.state == State::ObjectColon => self.state = State::ObjectValue,
                b',' if self.state == State::ArrayComma => self.state = State::ArrayValue,
                b',' if self.state == State::ObjectComma => self.state = State::ObjectKey,
                b'"' if matches!(self.state, State::ObjectStart | State::ObjectKey) => {
                    let key = self.string()?;
                    self.state = State::ObjectColon;
                    return Ok(Token::Key(key));
                }
                _ if self.value_allowed() => {
                    let value = self.scalar()?;
                    self.value_end();
                    return Ok(Token::Scalar(value));
                }
                _ => return Err(self.unexpected()),
            }
            self.pos += 1;
        }
    }

    fn open(&mut self, c: u8) -> Result<Token, DecodeError> {
        if !self.value_allowed() {
            return Err(self.unexpected());
        }
        self.pos += 1;
        self.stack.push(self.state);
        if c == b'[' {
            self.state = State::ArrayStart;
            Ok(Token::ArrOpen)
        } else {
            self.state = State::ObjectStart;
            Ok(Token::ObjOpen)
        }
    }

    fn close(&mut self, empty: State, after: State, token: Token) -> Result<Token, DecodeError> {
        if self.state != empty && self.state != after {
            return Err(self.unexpected());
        }
        self.pos += 1;
        self.state = self.stack.pop().unwrap_or(State::TopValue);
        self.value_end();
        Ok(token)
    }

    fn unexpected(&self) -> DecodeError {
        DecodeError::Syntax(self.pos, "unexpected character")
    }

    fn value_allowed(&self) -> bool {
        matches!(
            self.state,
            State::TopValue | State::ArrayStart | State::ArrayValue | State::ObjectValue
        )
    }

    fn value_end(&mut self) {
        match self.state {
            State::ArrayStart | State::ArrayValue => self.state = State::ArrayComma,
            State::ObjectValue => self.state = State::ObjectComma,
            _ => {}
        }
    }

    /// A string, number or literal starting at the current position.
    fn scalar(&mut self) -> Result<Value, DecodeError> {
        match self.input[self.pos] {
            b'"' => Ok(Value::Str(self.string()?)),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, DecodeError> {
        let rest = &self.input[self.pos..];
        let matched = rest.iter().zip(word).take_while(|(a, b)| a == b).count();
        if matched == word.len() {
            self.pos += word.len();
            Ok(value)
        } else if matched == rest.len() {
            Err(DecodeError::Syntax(
                self.input.len(),
                "unexpected end of input",
            ))
        } else {
            Err(DecodeError::Syntax(self.pos + matched, "invalid literal"))
        }
    }

    /// A number, normalized as `normalizeJSONNumber` does.
    fn number(&mut self) -> Result<Value, DecodeError> {
        let start = self.pos;
        self.eat(b'-');
        if !self.eat(b'0') {
            self.digits()?;
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            self.digits()?;
        }
        // The grammar above only admits ASCII.
        let text = std::str::from_utf8(&self.input[start..self.pos]).unwrap_or_default();
        if let Ok(int) = text.parse::<i64>() {
            return Ok(Value::Int(int));
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Ok(Value::Float(float)),
            _ => Err(DecodeError::Syntax(start, "number out of range")),
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.input.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// One or more ASCII digits.
    fn digits(&mut self) -> Result<(), DecodeError> {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.input.get(self.pos) {
            self.pos += 1;
        }
        if self.pos > start {
            Ok(())
        } else if self.pos == self.input.len() {
            Err(DecodeError::Syntax(self.pos, "unexpected end of input"))
        } else {
            Err(DecodeError::Syntax(self.pos, "invalid number"))
        }
    }

    /// A string starting at the opening quote, unescaped as Go's `unquote` does.
    fn string(&mut self) -> Result<String, DecodeError> {
        self.pos += 1;
        // Most strings hold no escape: copied in one piece, to the byte.
        let rest = &self.input[self.pos..];
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest) {
            let run = &rest[..end];
            let control = run.iter().fold(false, |seen, &b| seen | (b < 0x20));
            if rest[end] == b'"' && !control {
                self.pos += end + 1;
                return Ok(go_lossy_utf8(run.to_vec()));
            }
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let run = self.input[self.pos..]
                .iter()
                .position(|&b| STRING_STOP[b as usize]);
            let Some(run) = run else {
                return Err(DecodeError::Syntax(self.input.len(), "unterminated string"));
            };
            out.extend_from_slice(&self.input[self.pos..self.pos + run]);
            self.pos += run;
            match self.input[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(go_lossy_utf8(out));
                }
                b'\\' => self.escape(&mut out)?,
                _ => return Err(DecodeError::Syntax(self.pos, "control character in string")),
            }
        }
    }

    /// One backslash escape, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let Some(&c) = self.input.get(self.pos + 1) else {
            return Err(DecodeError::Syntax(self.input.len(), "unterminated string"));
        };
        let simple = match c {
            b'"' | b'\\' | b'/' => Some(c),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return Err(DecodeError::Syntax(self.pos, "invalid escape in string")),
        };
        if let Some(byte) = simple {
            out.push(byte);
            self.pos += 2;
            return Ok(());
        }
        let unit = self.hex4(self.pos)?;
        self.pos += 6;
        let ch = if (0xD800..0xDC00).contains(&unit) {
            self.low_surrogate(unit)
        } else {
            char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        let mut buf = [0; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// Completes a high surrogate with a following `\uDC00`–`\uDFFF` escape,
    /// consuming it; otherwise U+FFFD and the next escape stays unread, as in Go.
    fn low_surrogate(&mut self, high: u32) -> char {
        let low = match self.input.get(self.pos) {
            Some(b'\\') if self.input.get(self.pos + 1) == Some(&b'u') => {
                self.hex4(self.pos).unwrap_or(0)
            }
            _ => 0,
        };
        if (0xDC00..0xE000).contains(&low) {
            self.pos += 6;
            char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        } else {
            char::REPLACEMENT_CHARACTER
        }
    }

    /// The four hex digits of a `\uXXXX` escape starting at `at`.
    fn hex4(&self, at: usize) -> Result<u32, DecodeError> {
        let digits = self.input.get(at + 2..at + 6);
        let Some(digits) = digits else {
            return Err(DecodeError::Syntax(self.input.len(), "unterminated string"));
        };
        digits.iter().try_fold(0u32, |acc, &d| {
            let v = (d as char)
                .to_digit(16)
                .ok_or(DecodeError::Syntax(at, "invalid escape in string"))?;
            Ok(acc * 16 + v)
        })
    }
}

/// Bytes that end a run of plain string content: `"`, `\\` and controls.
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Converts bytes to a string as Go does when decoding: every byte that does
/// not start a valid UTF-8 sequence becomes one U+FFFD.
pub(super) fn go_lossy_utf8(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(err) => {
            let bytes = err.into_bytes();
            let mut out = String::with_capacity(bytes.len() + 8);
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(valid) => {
                        out.push_str(valid);
                        break;
                    }
                    Err(e) => {
                        let (valid, after) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[1..];
                    }
                }
            }
            out
        }
    }
}
