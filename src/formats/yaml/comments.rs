//! Comment recovery. The event parser drops comments, so they are read back
//! from the source text between event spans, where only indicators,
//! whitespace and comments can appear.

use std::collections::VecDeque;

/// A comment found in the source.
#[derive(Debug)]
pub struct Found {
    /// 1-based line.
    pub line: usize,
    /// 0-based column of the `#`, in characters.
    pub col: usize,
    /// Nothing but indentation precedes it on its line.
    pub own_line: bool,
    /// An empty line separates it from the content or comment before it.
    pub blank_before: bool,
    /// The text after `#`.
    pub text: String,
}

/// Walks the source once, in step with the events, collecting comments.
pub struct Scanner<'a> {
    text: &'a str,
    /// Byte offset scanned up to.
    pos: usize,
    /// Character index matching `pos` (the parser's markers count chars).
    chars: usize,
    /// 1-based line of `pos`.
    line: usize,
    /// The last line holding content or a comment.
    last_line: Option<usize>,
    /// Comments found but not yet placed in the tree.
    pub pending: VecDeque<Found>,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            pos: 0,
            chars: 0,
            line: 1,
            last_line: None,
            pending: VecDeque::new(),
        }
    }

    /// Scans the gap up to the char index `start`, then skips the event's
    /// own text up to `end` (so `#` inside scalars is never a comment).
    pub fn advance(&mut self, start: usize, end: usize) {
        self.scan_gap(start);
        if end > self.chars {
            let before = self.line;
            self.skip_to(end);
            // A span that ends at a line start (block scalars) ends its content a line earlier.
            let ends_at_line_start =
                self.text.as_bytes().get(self.pos.wrapping_sub(1)) == Some(&b'\n');
            let content_line = if ends_at_line_start && self.line > before {
                self.line - 1
            } else {
                self.line
            };
            self.last_line = Some(content_line);
        }
    }

    /// Scans the rest of the input.
    pub fn finish(&mut self) {
        self.scan_gap(usize::MAX);
    }

    fn skip_to(&mut self, target: usize) {
        let rest = &self.text[self.pos..];
        for (offset, c) in rest.char_indices() {
            if self.chars >= target {
                self.pos += offset;
                return;
            }
            if c == '\n' {
                self.line += 1;
            }
            self.chars += 1;
        }
        self.pos = self.text.len();
    }

    fn scan_gap(&mut self, target: usize) {
        let bytes = self.text.as_bytes();
        while self.chars < target && self.pos < bytes.len() {
            let b = bytes[self.pos];
            let after_ws =
                self.pos == 0 || matches!(bytes[self.pos - 1], b' ' | b'\t' | b'\n' | b'\r');
            if b == b'#' && after_ws {
                self.read_comment();
                continue;
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.step();
        }
    }

    /// Moves past one character.
    fn step(&mut self) {
        let width = self.text[self.pos..]
            .chars()
            .next()
            .map_or(1, char::len_utf8);
        self.pos += width;
        self.chars += 1;
    }

    fn read_comment(&mut self) {
        let start = self.pos;
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let prefix = &self.text[line_start..start];
        let own_line = prefix.bytes().all(|b| b == b' ' || b == b'\t');
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let body = self.text[start + 1..end].trim_end_matches('\r');
        let blank_before = own_line && self.last_line.is_some_and(|l| self.line > l + 1);
        self.pending.push_back(Found {
            line: self.line,
            col: prefix.chars().count(),
            own_line,
            blank_before,
            text: body.to_string(),
        });
        self.last_line = Some(self.line);
        self.chars += self.text[start..end].chars().count();
        self.pos = end;
    }
}
