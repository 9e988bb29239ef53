//! The event parser: libyaml's (and go-yaml's `parserc.go`) state machine
//! over the scanner's tokens, producing the node events the loader builds
//! the tree from.

use std::borrow::Cow;
use std::collections::HashMap;

use super::scan::{Mark, Res, Scanner, Style, Tok, Token};

/// The prefix `!!` stands for.
const CORE: &str = "tag:yaml.org,2002:";

/// Where an event's own text lies. Collection starts cover their opening
/// token (empty for block collections); scalars cover their text (quotes
/// included), but not their anchor or tag.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub start: Mark,
    pub end: Mark,
}

impl Span {
    fn of(token: &Token) -> Span {
        Span {
            start: token.start,
            end: token.end,
        }
    }

    fn empty(mark: Mark) -> Span {
        Span {
            start: mark,
            end: mark,
        }
    }
}

/// A node's properties.
#[derive(Debug, Default)]
pub struct Props<'a> {
    pub anchor: Option<&'a str>,
    /// The resolved tag (`!!str` as `tag:yaml.org,2002:str`).
    pub tag: Option<String>,
}

#[derive(Debug)]
pub enum Event<'a> {
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias(&'a str),
    Scalar(Cow<'a, str>, Style, Props<'a>),
    SequenceStart(Props<'a>, bool),
    SequenceEnd,
    MappingStart(Props<'a>, bool),
    MappingEnd,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StreamStart,
    ImplicitDocumentStart,
    DocumentStart,
    DocumentContent,
    DocumentEnd,
    BlockNode,
    BlockSequenceFirstEntry,
    BlockSequenceEntry,
    IndentlessSequenceEntry,
    BlockMappingFirstKey,
    BlockMappingKey,
    BlockMappingValue,
    FlowSequenceFirstEntry,
    FlowSequenceEntry,
    FlowSequenceEntryMappingKey,
    FlowSequenceEntryMappingValue,
    FlowSequenceEntryMappingEnd(Mark),
    FlowMappingFirstKey,
    FlowMappingKey,
    FlowMappingValue,
    FlowMappingEmptyValue,
    End,
}

pub struct Parser<'a> {
    pub scanner: Scanner<'a>,
    state: State,
    states: Vec<State>,
    /// `%TAG` handles of the current document.
    tags: HashMap<String, String>,
}

fn empty_scalar<'a>() -> Event<'a> {
    Event::Scalar(Cow::Borrowed(""), Style::Plain, Props::default())
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Parser<'a> {
        Parser {
            scanner: Scanner::new(text),
            state: State::StreamStart,
            states: Vec::new(),
            tags: HashMap::new(),
        }
    }

    fn peek(&mut self) -> Res<&Token<'a>> {
        self.scanner.peek_token()
    }

    fn skip(&mut self) -> Res<Token<'a>> {
        self.scanner.next_token()
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or(State::End);
    }

    fn fail<T>(&self, mark: Mark, what: &str) -> Res<T> {
        Err(self.scanner.error(mark, what))
    }

    /// The next event.
    pub fn next_event(&mut self) -> Res<(Event<'a>, Span)> {
        match self.state {
            State::StreamStart => {
                self.state = State::ImplicitDocumentStart;
                self.document_start(true)
            }
            State::ImplicitDocumentStart => self.document_start(true),
            State::DocumentStart => self.document_start(false),
            State::DocumentContent => self.document_content(),
            State::DocumentEnd => self.document_end(),
            State::BlockNode => self.node(true, false),
            State::BlockSequenceFirstEntry => self.block_sequence_entry(true),
            State::BlockSequenceEntry => self.block_sequence_entry(false),
            State::IndentlessSequenceEntry => self.indentless_sequence_entry(),
            State::BlockMappingFirstKey => self.block_mapping_key(true),
            State::BlockMappingKey => self.block_mapping_key(false),
            State::BlockMappingValue => self.block_mapping_value(),
            State::FlowSequenceFirstEntry => self.flow_sequence_entry(true),
            State::FlowSequenceEntry => self.flow_sequence_entry(false),
            State::FlowSequenceEntryMappingKey => self.flow_sequence_entry_mapping_key(),
            State::FlowSequenceEntryMappingValue => self.flow_sequence_entry_mapping_value(),
            State::FlowSequenceEntryMappingEnd(mark) => {
                self.state = State::FlowSequenceEntry;
                Ok((Event::MappingEnd, Span::empty(mark)))
            }
            State::FlowMappingFirstKey => self.flow_mapping_key(true),
            State::FlowMappingKey => self.flow_mapping_key(false),
            State::FlowMappingValue => self.flow_mapping_value(false),
            State::FlowMappingEmptyValue => self.flow_mapping_value(true),
            State::End => Ok((Event::StreamEnd, Span::empty(self.scanner.mark()))),
        }
    }

    fn document_start(&mut self, implicit: bool) -> Res<(Event<'a>, Span)> {
        while let Tok::DocumentEnd = self.peek()?.tok {
            self.skip()?;
        }
        let token = self.peek()?;
        let span = Span::of(token);
        match token.tok {
            Tok::StreamEnd => {
                self.state = State::End;
                self.skip()?;
                Ok((Event::StreamEnd, span))
            }
            Tok::VersionDirective | Tok::TagDirective(..) | Tok::DocumentStart => {
                self.explicit_document_start()
            }
            _ if implicit => {
                self.directives()?;
                self.states.push(State::DocumentEnd);
                self.state = State::BlockNode;
                Ok((Event::DocumentStart, Span::empty(span.start)))
            }
            _ => self.explicit_document_start(),
        }
    }

    fn directives(&mut self) -> Res<()> {
        let mut version = false;
        self.tags.clear();
        loop {
            let token = self.peek()?;
            let mark = token.start;
            match &token.tok {
                Tok::VersionDirective => {
                    if version {
                        return self.fail(mark, "found duplicate %YAML directive");
                    }
                    version = true;
                }
                Tok::TagDirective(handle, prefix) => {
                    let (handle, prefix) = (handle.clone(), prefix.clone());
                    if self.tags.insert(handle, prefix).is_some() {
                        return self.fail(mark, "found duplicate %TAG directive");
                    }
                }
                _ => return Ok(()),
            }
            self.skip()?;
        }
    }

    fn explicit_document_start(&mut self) -> Res<(Event<'a>, Span)> {
        self.directives()?;
        let token = self.peek()?;
        let span = Span::of(token);
        if let Tok::DocumentStart = token.tok {
            self.states.push(State::DocumentEnd);
            self.state = State::DocumentContent;
            self.skip()?;
            Ok((Event::DocumentStart, span))
        } else {
            self.fail(span.start, "did not find expected <document start>")
        }
    }

    fn document_content(&mut self) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        match token.tok {
            Tok::VersionDirective
            | Tok::TagDirective(..)
            | Tok::DocumentStart
            | Tok::DocumentEnd
            | Tok::StreamEnd => {
                let mark = token.start;
                self.pop_state();
                Ok((empty_scalar(), Span::empty(mark)))
            }
            _ => self.node(true, false),
        }
    }

    fn document_end(&mut self) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        let span = Span::empty(token.start);
        if let Tok::DocumentEnd = token.tok {
            self.skip()?;
            self.state = State::ImplicitDocumentStart;
        } else {
            match token.tok {
                Tok::DocumentStart | Tok::StreamEnd => {}
                _ => return self.fail(span.start, "did not find expected <document start>"),
            }
            self.state = State::DocumentStart;
        }
        Ok((Event::DocumentEnd, span))
    }

    /// A tag's full name from its handle and suffix.
    fn resolve_tag(&self, handle: &str, suffix: &str, mark: Mark) -> Res<String> {
        if handle.is_empty() {
            return Ok(suffix.to_string());
        }
        let prefix = match self.tags.get(handle) {
            Some(p) => p.as_str(),
            None if handle == "!!" => CORE,
            None if handle == "!" => "!",
            None => return self.fail(mark, "found undefined tag handle"),
        };
        Ok(format!("{prefix}{suffix}"))
    }

    fn node(&mut self, block: bool, indentless: bool) -> Res<(Event<'a>, Span)> {
        let mut props = Props::default();
        let first = self.peek()?.start;
        if let Tok::Alias(name) = self.peek()?.tok {
            self.pop_state();
            let token = self.skip()?;
            return Ok((Event::Alias(name), Span::of(&token)));
        }
        for _ in 0..2 {
            let token = self.peek()?;
            let mark = token.start;
            match &token.tok {
                Tok::Anchor(name) if props.anchor.is_none() => props.anchor = Some(*name),
                Tok::Tag(handle, suffix) if props.tag.is_none() => {
                    let (handle, suffix) = (handle.clone(), suffix.clone());
                    props.tag = Some(self.resolve_tag(&handle, &suffix, mark)?);
                }
                _ => break,
            }
            self.skip()?;
        }
        let token = self.peek()?;
        let span = Span::of(token);
        let event = match token.tok {
            Tok::BlockEntry if indentless => {
                self.state = State::IndentlessSequenceEntry;
                return Ok((Event::SequenceStart(props, false), Span::empty(span.start)));
            }
            Tok::Scalar(..) => {
                self.pop_state();
                let Token {
                    tok: Tok::Scalar(value, style),
                    ..
                } = self.skip()?
                else {
                    return self.fail(span.start, "expected a scalar");
                };
                return Ok((Event::Scalar(value, style, props), span));
            }
            Tok::FlowSequenceStart => {
                self.state = State::FlowSequenceFirstEntry;
                Event::SequenceStart(props, true)
            }
            Tok::FlowMappingStart => {
                self.state = State::FlowMappingFirstKey;
                Event::MappingStart(props, true)
            }
            Tok::BlockSequenceStart if block => {
                self.state = State::BlockSequenceFirstEntry;
                Event::SequenceStart(props, false)
            }
            Tok::BlockMappingStart if block => {
                self.state = State::BlockMappingFirstKey;
                Event::MappingStart(props, false)
            }
            _ if props.anchor.is_some() || props.tag.is_some() => {
                // An empty scalar can follow a node's properties.
                self.pop_state();
                return Ok((
                    Event::Scalar(Cow::Borrowed(""), Style::Plain, props),
                    Span::empty(first),
                ));
            }
            _ => return self.fail(span.start, "did not find expected node content"),
        };
        Ok((event, span))
    }

    fn block_sequence_entry(&mut self, first: bool) -> Res<(Event<'a>, Span)> {
        if first {
            self.skip()?;
        }
        let token = self.peek()?;
        let mark = token.start;
        match token.tok {
            Tok::BlockEnd => {
                self.pop_state();
                self.skip()?;
                Ok((Event::SequenceEnd, Span::empty(mark)))
            }
            Tok::BlockEntry => {
                self.skip()?;
                if let Tok::BlockEntry | Tok::BlockEnd = self.peek()?.tok {
                    self.state = State::BlockSequenceEntry;
                    Ok((empty_scalar(), Span::empty(mark)))
                } else {
                    self.states.push(State::BlockSequenceEntry);
                    self.node(true, false)
                }
            }
            _ => self.fail(mark, "did not find expected '-' indicator"),
        }
    }

    fn indentless_sequence_entry(&mut self) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        let mark = token.start;
        if let Tok::BlockEntry = token.tok {
            self.skip()?;
            if let Tok::BlockEntry | Tok::Key | Tok::Value | Tok::BlockEnd = self.peek()?.tok {
                self.state = State::IndentlessSequenceEntry;
                Ok((empty_scalar(), Span::empty(mark)))
            } else {
                self.states.push(State::IndentlessSequenceEntry);
                self.node(true, false)
            }
        } else {
            self.pop_state();
            Ok((Event::SequenceEnd, Span::empty(mark)))
        }
    }

    fn block_mapping_key(&mut self, first: bool) -> Res<(Event<'a>, Span)> {
        if first {
            self.skip()?;
        }
        let token = self.peek()?;
        let mark = token.start;
        match token.tok {
            Tok::Key => {
                self.skip()?;
                let next = self.peek()?;
                if let Tok::Key | Tok::Value | Tok::BlockEnd = next.tok {
                    let mark = next.start;
                    self.state = State::BlockMappingValue;
                    Ok((empty_scalar(), Span::empty(mark)))
                } else {
                    self.states.push(State::BlockMappingValue);
                    self.node(true, true)
                }
            }
            Tok::Value => {
                self.state = State::BlockMappingValue;
                Ok((empty_scalar(), Span::empty(mark)))
            }
            Tok::BlockEnd => {
                self.pop_state();
                self.skip()?;
                Ok((Event::MappingEnd, Span::empty(mark)))
            }
            _ => self.fail(mark, "did not find expected key"),
        }
    }

    fn block_mapping_value(&mut self) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        let mark = token.start;
        if let Tok::Value = token.tok {
            self.skip()?;
            if let Tok::Key | Tok::Value | Tok::BlockEnd = self.peek()?.tok {
                self.state = State::BlockMappingKey;
                Ok((empty_scalar(), Span::empty(mark)))
            } else {
                self.states.push(State::BlockMappingKey);
                self.node(true, true)
            }
        } else {
            self.state = State::BlockMappingKey;
            Ok((empty_scalar(), Span::empty(mark)))
        }
    }

    fn flow_sequence_entry(&mut self, first: bool) -> Res<(Event<'a>, Span)> {
        if first {
            self.skip()?;
        }
        let token = self.peek()?;
        let mark = token.start;
        match token.tok {
            Tok::FlowSequenceEnd => {}
            Tok::FlowEntry if !first => {
                self.skip()?;
            }
            _ if !first => return self.fail(mark, "did not find expected ',' or ']'"),
            _ => {}
        }
        let token = self.peek()?;
        let span = Span::of(token);
        match token.tok {
            Tok::FlowSequenceEnd => {
                self.pop_state();
                self.skip()?;
                Ok((Event::SequenceEnd, span))
            }
            Tok::Key => {
                self.state = State::FlowSequenceEntryMappingKey;
                self.skip()?;
                Ok((
                    Event::MappingStart(Props::default(), true),
                    Span::empty(span.start),
                ))
            }
            _ => {
                self.states.push(State::FlowSequenceEntry);
                self.node(false, false)
            }
        }
    }

    fn flow_sequence_entry_mapping_key(&mut self) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        let mark = token.start;
        if let Tok::Value | Tok::FlowEntry | Tok::FlowSequenceEnd = token.tok {
            self.state = State::FlowSequenceEntryMappingValue;
            Ok((empty_scalar(), Span::empty(mark)))
        } else {
            self.states.push(State::FlowSequenceEntryMappingValue);
            self.node(false, false)
        }
    }

    fn flow_sequence_entry_mapping_value(&mut self) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        let mark = token.start;
        if let Tok::Value = token.tok {
            self.skip()?;
            let next = self.peek()?;
            let next_mark = next.start;
            if let Tok::FlowEntry | Tok::FlowSequenceEnd = next.tok {
                self.state = State::FlowSequenceEntryMappingEnd(next_mark);
                Ok((empty_scalar(), Span::empty(next_mark)))
            } else {
                self.states
                    .push(State::FlowSequenceEntryMappingEnd(next_mark));
                self.node(false, false)
            }
        } else {
            self.state = State::FlowSequenceEntryMappingEnd(mark);
            Ok((empty_scalar(), Span::empty(mark)))
        }
    }

    fn flow_mapping_key(&mut self, first: bool) -> Res<(Event<'a>, Span)> {
        if first {
            self.skip()?;
        }
        let token = self.peek()?;
        if !matches!(token.tok, Tok::FlowMappingEnd) {
            if !first {
                let mark = token.start;
                if let Tok::FlowEntry = token.tok {
                    self.skip()?;
                } else {
                    return self.fail(mark, "did not find expected ',' or '}'");
                }
            }
            let token = self.peek()?;
            let mark = token.start;
            match token.tok {
                Tok::Key => {
                    self.skip()?;
                    let next = self.peek()?;
                    if let Tok::Value | Tok::FlowEntry | Tok::FlowMappingEnd = next.tok {
                        let mark = next.start;
                        self.state = State::FlowMappingValue;
                        return Ok((empty_scalar(), Span::empty(mark)));
                    }
                    self.states.push(State::FlowMappingValue);
                    return self.node(false, false);
                }
                Tok::Value => {
                    self.state = State::FlowMappingValue;
                    return Ok((empty_scalar(), Span::empty(mark)));
                }
                Tok::FlowMappingEnd => {}
                _ => {
                    self.states.push(State::FlowMappingEmptyValue);
                    return self.node(false, false);
                }
            }
        }
        let token = self.skip()?;
        self.pop_state();
        Ok((Event::MappingEnd, Span::of(&token)))
    }

    fn flow_mapping_value(&mut self, empty: bool) -> Res<(Event<'a>, Span)> {
        let token = self.peek()?;
        let mark = token.start;
        if !empty {
            if let Tok::Value = token.tok {
                self.skip()?;
                let next = self.peek()?;
                if !matches!(next.tok, Tok::FlowEntry | Tok::FlowMappingEnd) {
                    self.states.push(State::FlowMappingKey);
                    return self.node(false, false);
                }
            }
        }
        self.state = State::FlowMappingKey;
        Ok((empty_scalar(), Span::empty(mark)))
    }
}
