//! Scalar tokens: plain, quoted and block, folded and unescaped as go-yaml's
//! `yaml_parser_scan_*_scalar` do. Line breaks are normalized to `\n`.

use std::borrow::Cow;

use super::{is_blank, is_blankz, is_break, Mark, Res, Scanner, Style, Tok, Token};

/// How the last line of a quoted scalar ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leading {
    /// On the same line.
    None,
    /// At a line break (folded to a space, or kept if more breaks follow).
    Break,
    /// At an escaped line break (`\` at the end of the line: no space).
    Escaped,
}

/// The length of the run of plain-scalar text at the start of `rest`: up
/// to a blank, a break, `: `, or (in flow context) a flow indicator. Kept
/// apart so the hot loop's index stays in a register.
fn plain_run(rest: &[u8], flow: bool) -> usize {
    let mut i = 0;
    loop {
        if !flow {
            i += quiet_prefix(&rest[i..]);
        }
        let Some(&c) = rest.get(i) else { break };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => break,
            b':' if is_blankz(rest.get(i + 1).copied().unwrap_or(0)) => break,
            b',' | b'?' | b'[' | b']' | b'{' | b'}' if flow => break,
            _ => i += 1,
        }
    }
    i
}

/// How many leading bytes of `bytes` are none of space, tab, CR, LF and
/// `:`, found eight at a time (the lowest flagged byte of the zero-byte
/// test is exact, so the count is too).
fn quiet_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |word: u64, b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let flagged = has(word, b' ')
            | has(word, b'\t')
            | has(word, b'\n')
            | has(word, b'\r')
            | has(word, b':');
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

impl<'a> Scanner<'a> {
    /// A plain scalar. Runs of text on one line borrow from the input; only
    /// line folding makes a copy.
    pub(super) fn plain_scalar(&mut self) -> Res<Token<'a>> {
        let indent = self.indent + 1;
        let start = self.mark;
        let mut end = self.mark;
        let mut owned: Option<String> = None;
        let mut leading_blanks = false;
        let mut trailing_breaks = 0usize;
        let mut whitespace = (0, 0);
        let flow = self.flow_level > 0;
        loop {
            if self.is_document_indicator() || self.cur() == b'#' {
                break;
            }
            let from = self.mark.index;
            let i = from + plain_run(&self.bytes[from..], flow);
            if i > from {
                if leading_blanks {
                    let s =
                        owned.get_or_insert_with(|| self.text[start.index..end.index].to_string());
                    if trailing_breaks == 0 {
                        s.push(' ');
                    } else {
                        s.extend(std::iter::repeat_n('\n', trailing_breaks));
                    }
                    leading_blanks = false;
                    trailing_breaks = 0;
                } else if let Some(s) = owned.as_mut() {
                    s.push_str(&self.text[whitespace.0..whitespace.1]);
                }
                if let Some(s) = owned.as_mut() {
                    s.push_str(&self.text[from..i]);
                }
                whitespace = (i, i);
                self.skip_bytes(i - from);
                end = self.mark;
            }
            if !(is_blank(self.cur()) || is_break(self.cur())) {
                break;
            }
            let ws_start = self.mark.index;
            while is_blank(self.cur()) || is_break(self.cur()) {
                if is_blank(self.cur()) {
                    if leading_blanks && (self.mark.col as i64) < indent && self.cur() == b'\t' {
                        return Err(
                            self.error(start, "found a tab character that violates indentation")
                        );
                    }
                    self.skip();
                } else {
                    if leading_blanks {
                        trailing_breaks += 1;
                    }
                    leading_blanks = true;
                    self.skip_line();
                }
            }
            if !leading_blanks {
                whitespace = (ws_start, self.mark.index);
            }
            if !flow && (self.mark.col as i64) < indent {
                break;
            }
        }
        if leading_blanks {
            self.simple_key_allowed = true;
        }
        let value = match owned {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(&self.text[start.index..end.index]),
        };
        Ok(Token {
            tok: Tok::Scalar(value, Style::Plain),
            start,
            end,
        })
    }

    /// A single- or double-quoted scalar.
    pub(super) fn flow_scalar(&mut self, single: bool) -> Res<Token<'a>> {
        let start = self.mark;
        let quote = if single { b'\'' } else { b'"' };
        // The common case: no escapes or line breaks before the closing quote.
        let body = &self.bytes[start.index + 1..];
        if let Some(n) = body
            .iter()
            .position(|&b| b == quote || b == b'\\' || is_break(b))
        {
            let simple = body[n] == quote
                && !(single && body.get(n + 1) == Some(&b'\''))
                && (single || !body[..n].contains(&b'\\'));
            if simple {
                let value = &self.text[start.index + 1..start.index + 1 + n];
                self.skip_bytes(n + 2);
                let style = if single { Style::Single } else { Style::Double };
                return Ok(Token {
                    tok: Tok::Scalar(Cow::Borrowed(value), style),
                    start,
                    end: self.mark,
                });
            }
        }
        self.skip();
        let mut s = String::new();
        loop {
            if self.is_document_indicator() {
                return Err(self.error(start, "found unexpected document indicator"));
            }
            if self.mark.index >= self.bytes.len() {
                return Err(self.error(start, "found unexpected end of stream"));
            }
            let mut leading = Leading::None;
            while !is_blankz(self.cur()) {
                let c = self.cur();
                if single && c == b'\'' && self.at(1) == b'\'' {
                    s.push('\'');
                    self.skip_bytes(2);
                } else if c == quote {
                    break;
                } else if !single && c == b'\\' && is_break(self.at(1)) {
                    self.skip();
                    self.skip_line();
                    leading = Leading::Escaped;
                    break;
                } else if !single && c == b'\\' {
                    self.escape(&mut s, start)?;
                } else {
                    let from = self.mark.index;
                    self.skip();
                    s.push_str(&self.text[from..self.mark.index]);
                }
            }
            if self.cur() == quote {
                break;
            }
            let mut whitespace = (self.mark.index, self.mark.index);
            let mut trailing_breaks = 0usize;
            while is_blank(self.cur()) || is_break(self.cur()) {
                if is_blank(self.cur()) {
                    self.skip();
                    if leading == Leading::None {
                        whitespace.1 = self.mark.index;
                    }
                } else {
                    if leading == Leading::None {
                        leading = Leading::Break;
                    } else {
                        trailing_breaks += 1;
                    }
                    self.skip_line();
                }
            }
            match leading {
                Leading::Break if trailing_breaks == 0 => s.push(' '),
                Leading::Break | Leading::Escaped => {
                    s.extend(std::iter::repeat_n('\n', trailing_breaks));
                }
                Leading::None => s.push_str(&self.text[whitespace.0..whitespace.1]),
            }
        }
        self.skip();
        let style = if single { Style::Single } else { Style::Double };
        Ok(Token {
            tok: Tok::Scalar(Cow::Owned(s), style),
            start,
            end: self.mark,
        })
    }

    /// One `\` escape of a double-quoted scalar.
    fn escape(&mut self, s: &mut String, start: Mark) -> Res<()> {
        let simple = match self.at(1) {
            b'0' => Some('\0'),
            b'a' => Some('\u{07}'),
            b'b' => Some('\u{08}'),
            b't' | b'\t' => Some('\t'),
            b'n' => Some('\n'),
            b'v' => Some('\u{0B}'),
            b'f' => Some('\u{0C}'),
            b'r' => Some('\r'),
            b'e' => Some('\u{1B}'),
            b' ' => Some(' '),
            b'"' => Some('"'),
            b'\'' => Some('\''),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'N' => Some('\u{85}'),
            b'_' => Some('\u{A0}'),
            b'L' => Some('\u{2028}'),
            b'P' => Some('\u{2029}'),
            _ => None,
        };
        if let Some(c) = simple {
            s.push(c);
            self.skip_bytes(2);
            return Ok(());
        }
        let len = match self.at(1) {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => return Err(self.error(start, "found unknown escape character")),
        };
        self.skip_bytes(2);
        let mut value = 0u32;
        for k in 0..len {
            let digit = (self.at(k) as char)
                .to_digit(16)
                .ok_or_else(|| self.error(start, "did not find expected hexdecimal number"))?;
            value = (value << 4) | digit;
        }
        let c = char::from_u32(value)
            .ok_or_else(|| self.error(start, "found invalid Unicode character escape code"))?;
        s.push(c);
        self.skip_bytes(len);
        Ok(())
    }

    /// A literal (`|`) or folded (`>`) block scalar. Its token starts where
    /// the content does and ends after the trailing line breaks, so a
    /// comment on the header line lies outside it.
    pub(super) fn block_scalar(&mut self, literal: bool) -> Res<Token<'a>> {
        let header = self.mark;
        self.skip();
        let mut chomping = 0i8;
        let mut increment = 0i64;
        let c = self.cur();
        if c == b'+' || c == b'-' {
            chomping = if c == b'+' { 1 } else { -1 };
            self.skip();
            if self.cur().is_ascii_digit() {
                increment = self.indent_indicator(header)?;
            }
        } else if c.is_ascii_digit() {
            increment = self.indent_indicator(header)?;
            let c = self.cur();
            if c == b'+' || c == b'-' {
                chomping = if c == b'+' { 1 } else { -1 };
                self.skip();
            }
        }
        while is_blank(self.cur()) {
            self.skip();
        }
        if self.cur() == b'#' {
            self.record_comment();
        }
        if !is_blankz(self.cur()) {
            return Err(self.error(header, "did not find expected comment or line break"));
        }
        if is_break(self.cur()) {
            self.skip_line();
        }
        let mut indent = if increment > 0 {
            if self.indent >= 0 {
                self.indent + increment
            } else {
                increment
            }
        } else {
            0
        };
        let mut s = String::new();
        let mut trailing_breaks = 0usize;
        let mut end = self.mark;
        self.block_breaks(&mut indent, &mut trailing_breaks, header, &mut end)?;
        let start = self.mark;
        let mut leading_break = false;
        let mut leading_blank = false;
        while self.mark.col as i64 == indent && self.mark.index < self.bytes.len() {
            let trailing_blank = is_blank(self.cur());
            if !literal && !leading_blank && !trailing_blank && leading_break {
                if trailing_breaks == 0 {
                    s.push(' ');
                }
            } else if leading_break {
                s.push('\n');
            }
            s.extend(std::iter::repeat_n('\n', trailing_breaks));
            trailing_breaks = 0;
            leading_blank = is_blank(self.cur());
            let from = self.mark.index;
            let len = self.bytes[from..]
                .iter()
                .position(|&b| is_break(b))
                .unwrap_or(self.bytes.len() - from);
            s.push_str(&self.text[from..from + len]);
            self.skip_bytes(len);
            if self.mark.index >= self.bytes.len() {
                leading_break = false;
                end = self.mark;
                break;
            }
            self.skip_line();
            leading_break = true;
            self.block_breaks(&mut indent, &mut trailing_breaks, header, &mut end)?;
        }
        if chomping != -1 && leading_break {
            s.push('\n');
        }
        if chomping == 1 {
            s.extend(std::iter::repeat_n('\n', trailing_breaks));
        }
        let style = if literal {
            Style::Literal
        } else {
            Style::Folded
        };
        Ok(Token {
            tok: Tok::Scalar(Cow::Owned(s), style),
            start,
            end,
        })
    }

    fn indent_indicator(&mut self, header: Mark) -> Res<i64> {
        let c = self.cur();
        if c == b'0' {
            return Err(self.error(header, "found an indentation indicator equal to 0"));
        }
        self.skip();
        Ok(i64::from(c - b'0'))
    }

    /// `yaml_parser_scan_block_scalar_breaks`: skips indentation and empty
    /// lines, counting the breaks, and settles an automatic indentation.
    fn block_breaks(
        &mut self,
        indent: &mut i64,
        breaks: &mut usize,
        header: Mark,
        end: &mut Mark,
    ) -> Res<()> {
        *end = self.mark;
        let mut max_indent = 0i64;
        loop {
            while (*indent == 0 || (self.mark.col as i64) < *indent) && self.cur() == b' ' {
                self.skip();
            }
            max_indent = max_indent.max(self.mark.col as i64);
            if (*indent == 0 || (self.mark.col as i64) < *indent) && self.cur() == b'\t' {
                return Err(self.error(
                    header,
                    "found a tab character where an indentation space is expected",
                ));
            }
            if !is_break(self.cur()) {
                break;
            }
            self.skip_line();
            *breaks += 1;
            *end = self.mark;
        }
        if *indent == 0 {
            *indent = max_indent.max(self.indent + 1).max(1);
        }
        Ok(())
    }
}
