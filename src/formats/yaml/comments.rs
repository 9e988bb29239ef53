//! Comment bookkeeping. The scanner records comments with their positions;
//! the loader takes them in step with the events, so every comment that
//! precedes an event is pending when that event is placed.

use std::collections::VecDeque;

use super::parse::Span;
use super::scan::RawComment;

/// A comment ready to be placed.
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

/// Tracks the last line holding content, to tell which comments follow an
/// empty line.
#[derive(Default)]
pub struct Tracker {
    /// The last line holding content or a comment.
    last_line: Option<usize>,
    /// Comments taken but not yet placed in the tree.
    pub pending: VecDeque<Found>,
}

impl Tracker {
    /// Takes the comments before `span`, then notes the span's content.
    pub fn advance(&mut self, raw: &mut VecDeque<RawComment>, span: &Span) {
        while raw.front().is_some_and(|c| c.mark.index < span.start.index) {
            if let Some(c) = raw.pop_front() {
                self.take(c);
            }
        }
        if span.end.index > span.start.index {
            // A span that ends at a line start (block scalars) ends its content a line earlier.
            let line = if span.end.col == 0 && span.end.line > span.start.line {
                span.end.line - 1
            } else {
                span.end.line
            };
            self.last_line = Some(line);
        }
    }

    /// Takes every remaining comment.
    pub fn finish(&mut self, raw: &mut VecDeque<RawComment>) {
        while let Some(c) = raw.pop_front() {
            self.take(c);
        }
    }

    fn take(&mut self, c: RawComment) {
        let line = c.mark.line;
        let blank_before = c.own_line && self.last_line.is_some_and(|l| line > l + 1);
        self.pending.push_back(Found {
            line,
            col: c.mark.col,
            own_line: c.own_line,
            blank_before,
            text: c.text,
        });
        self.last_line = Some(line);
    }
}
