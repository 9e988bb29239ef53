//! Loading: parser events become the sops tree the reference's
//! `LoadPlainFile` builds from go-yaml nodes, with comments placed where
//! go-yaml attaches them (head, line and foot comments, flattened into the
//! ordered entries as `stores/yaml/store.go` does).

use std::borrow::Cow;
use std::collections::HashMap;

use foldhash::{HashSet, HashSetExt};

use base64::Engine;

use super::comments::{Found, Tracker};
use super::parse::{Event, Parser, Props, Span};
use super::resolve::{resolve_plain, Resolved};
use super::scan::Style;
use super::syntax;
use crate::formats::FormatError;
use crate::tree::{Comment, Entry, Map, Value};

/// Deepest nesting accepted; deeper input is rejected instead of risking the stack.
pub const MAX_DEPTH: usize = 400;

/// Cap on nodes created by expanding aliases (the "billion laughs" guard).
const MAX_ALIAS_NODES: usize = 1_000_000;

const CORE: &str = "tag:yaml.org,2002:";

type Res<T> = Result<T, FormatError>;

/// A scalar event's parts.
struct Scalar<'a> {
    value: Cow<'a, str>,
    style: Style,
    props: Props<'a>,
}

pub struct Loader<'a> {
    parser: Parser<'a>,
    scanner: Tracker,
    peeked: Option<(Event<'a>, Span)>,
    anchors: HashMap<&'a str, (Value, usize)>,
    alias_nodes: usize,
    /// Check keys for duplicates (the reference only checks the first document).
    unique_keys: bool,
}

impl<'a> Loader<'a> {
    pub fn new(text: &'a str) -> Loader<'a> {
        Loader {
            parser: Parser::new(text),
            scanner: Tracker::default(),
            peeked: None,
            anchors: HashMap::new(),
            alias_nodes: 0,
            unique_keys: true,
        }
    }

    /// All documents of the stream.
    pub fn documents(self) -> Res<Vec<Map>> {
        Ok(self.documents_and_aliases()?.0)
    }

    /// All documents of the stream, and how many nodes aliases copied.
    pub fn documents_and_aliases(mut self) -> Res<(Vec<Map>, usize)> {
        let mut docs = Vec::new();
        loop {
            let (event, _) = self.next()?;
            match event {
                Event::DocumentEnd => {}
                Event::DocumentStart => {
                    docs.push(self.document()?);
                    self.unique_keys = false;
                }
                _ => break,
            }
        }
        self.scanner.finish(&mut self.parser.scanner.comments);
        if let Some(last) = docs.last_mut() {
            push_comments(last, self.scanner.pending.drain(..), false);
        } else {
            // go-yaml reports a stream without documents as EOF.
            return Err(syntax("no YAML document in the input (EOF)".into()));
        }
        Ok((docs, self.alias_nodes))
    }

    fn peek(&mut self) -> Res<&(Event<'a>, Span)> {
        if self.peeked.is_none() {
            let next = self.parser.next_event()?;
            self.scanner
                .advance(&mut self.parser.scanner.comments, &next.1);
            self.peeked = Some(next);
        }
        self.peeked
            .as_ref()
            .ok_or_else(|| syntax("unexpected end of input".into()))
    }

    fn next(&mut self) -> Res<(Event<'a>, Span)> {
        self.peek()?;
        self.peeked
            .take()
            .ok_or_else(|| syntax("unexpected end of input".into()))
    }

    /// One document: its root must be a mapping (or empty).
    fn document(&mut self) -> Res<Map> {
        let (event, span) = self.next()?;
        let mut map = match event {
            Event::MappingStart(..) => into_map(self.node(event, &span, 1)?.0),
            Event::Scalar(value, style, props) => {
                let s = Scalar {
                    value,
                    style,
                    props,
                };
                if self.scalar_value(&s, &span)? != Value::Null {
                    return Err(at(
                        &span,
                        "YAML documents that are values are not supported",
                    ));
                }
                Vec::new()
            }
            Event::SequenceStart(..) => {
                return Err(at(
                    &span,
                    "YAML documents that are sequences are not supported",
                ));
            }
            Event::Alias(name) => match self.alias(name, &span)? {
                Value::Map(m) => m,
                _ => {
                    return Err(at(
                        &span,
                        "YAML documents that are values are not supported",
                    ))
                }
            },
            _ => Vec::new(),
        };
        // Everything up to the document's end is a foot of its root mapping.
        while !matches!(
            self.peek()?.0,
            Event::DocumentEnd | Event::StreamEnd | Event::DocumentStart
        ) {
            self.next()?;
        }
        push_comments(&mut map, self.scanner.pending.drain(..), false);
        Ok(map)
    }

    /// A block mapping whose start event was just read. Returns the map and
    /// the comments that trail its first line when that line is a sequence
    /// item's (`- a: 1 # c`), which go-yaml gives to the item instead.
    fn block_map(
        &mut self,
        start: &Span,
        dash_line: Option<usize>,
        depth: usize,
    ) -> Res<(Map, Vec<Found>)> {
        check_depth(depth, start)?;
        let indent = start.start.col;
        let mut map = Vec::new();
        let mut escaped = Vec::new();
        let mut keys = HashSet::new();
        loop {
            let (event, span) = self.next()?;
            if let Event::MappingEnd = event {
                self.foot_comments(&mut map, indent);
                return Ok((map, escaped));
            }
            let first = !map.iter().any(|e| matches!(e, Entry::Pair(..)));
            push_comments(&mut map, self.scanner.pending.drain(..), false);
            let (key, key_line) = self.key(event, &span, &mut keys)?;
            let escape = match dash_line {
                Some(line) if first && line == key_line => Some(&mut escaped),
                _ => None,
            };
            let value = self.pair_value(&mut map, key_line, escape, depth)?;
            map.push(Entry::Pair(key, value));
        }
    }

    /// Comments after a block collection's last item that go-yaml keeps as
    /// its foot: on their own lines, at or right of its indentation, and
    /// not after an empty line. The rest belong to an outer level.
    fn foot_count(&self, indent: usize) -> usize {
        self.scanner
            .pending
            .iter()
            .take_while(|c| c.own_line && !c.blank_before && c.col >= indent)
            .count()
    }

    fn foot_comments(&mut self, map: &mut Map, indent: usize) {
        let n = self.foot_count(indent);
        push_comments(map, self.scanner.pending.drain(..n), false);
    }

    /// A mapping key: a scalar (or alias to one) that go-yaml decodes as a string.
    fn key(
        &mut self,
        event: Event<'a>,
        span: &Span,
        keys: &mut HashSet<Cow<'a, str>>,
    ) -> Res<(String, usize)> {
        let line = span.end.line;
        let key = match event {
            Event::Scalar(value, style, props) => {
                let s = Scalar {
                    value,
                    style,
                    props,
                };
                // Keys borrow from the input where they can: no copy per key.
                if self.unique_keys && !keys.insert(s.value.clone()) {
                    return Err(at(span, "duplicate mapping key"));
                }
                let v = self.scalar_value(&s, span)?;
                self.store_anchor(s.props.anchor, &v);
                v
            }
            Event::Alias(name) => self.alias(name, span)?,
            _ => return Err(at(span, "Tree contains a non-string key")),
        };
        match key {
            Value::Str(s) => Ok((s, line)),
            _ => Err(at(span, "Tree contains a non-string key")),
        }
    }

    /// The value of a mapping pair, with the comments around it placed as
    /// the reference places the key's and the value's comments.
    fn pair_value(
        &mut self,
        map: &mut Map,
        key_line: usize,
        mut escaped: Option<&mut Vec<Found>>,
        depth: usize,
    ) -> Res<Value> {
        let (event, span) = self.next()?;
        let block_scalar = matches!(event, Event::Scalar(_, Style::Literal | Style::Folded, _));
        let scalar_like = matches!(event, Event::Scalar(..) | Event::Alias(_));
        let flow = matches!(
            event,
            Event::MappingStart(_, true) | Event::SequenceStart(_, true)
        );
        // Between key and value: the key's line comment and a scalar's head
        // stay with the pair; a collection's own-line heads open it.
        let gap: Vec<Found> = self.scanner.pending.drain(..).collect();
        let (outer, inner): (Vec<Found>, Vec<Found>) =
            gap.into_iter().partition(|c| scalar_like || !c.own_line);
        for c in outer {
            let inline = block_scalar && c.line == key_line;
            match escaped.as_deref_mut() {
                Some(out) if c.line == key_line => out.push(c),
                _ => map.push(Entry::Comment(Comment {
                    text: c.text,
                    inline,
                })),
            }
        }
        self.scanner.pending.extend(inner);
        let (mut value, end_line) = self.node(event, &span, depth + 1)?;
        if scalar_like || flow {
            self.peek()?;
            if let Some(c) = self.take_trailing(end_line) {
                match (&mut value, escaped) {
                    (_, Some(out)) if end_line == key_line && scalar_like => out.push(c),
                    (Value::Map(m), _) => insert_after_heads_map(m, c),
                    (Value::List(l), _) => insert_after_heads_list(l, c),
                    _ => map.push(Entry::Comment(Comment {
                        text: c.text,
                        inline: true,
                    })),
                }
            }
        }
        Ok(value)
    }

    /// The first pending comment if it trails content on `line`.
    fn take_trailing(&mut self, line: usize) -> Option<Found> {
        let first = self.scanner.pending.front()?;
        if !first.own_line && first.line == line {
            self.scanner.pending.pop_front()
        } else {
            None
        }
    }

    /// Any node whose first event was just read, with the line it ends on
    /// (for flow collections, the closing bracket's).
    fn node(&mut self, event: Event<'a>, span: &Span, depth: usize) -> Res<(Value, usize)> {
        check_depth(depth, span)?;
        let line = span.end.line;
        let (value, anchor, line) = match event {
            Event::Scalar(value, style, props) => {
                let s = Scalar {
                    value,
                    style,
                    props,
                };
                (self.scalar_value(&s, span)?, s.props.anchor, line)
            }
            Event::Alias(name) => (self.alias(name, span)?, None, line),
            Event::MappingStart(props, true) => {
                let (v, end) = self.flow(span, true, depth)?;
                (v, props.anchor, end)
            }
            Event::MappingStart(props, false) => (
                Value::Map(self.block_map(span, None, depth)?.0),
                props.anchor,
                line,
            ),
            Event::SequenceStart(props, true) => {
                let (v, end) = self.flow(span, false, depth)?;
                (v, props.anchor, end)
            }
            Event::SequenceStart(props, false) => {
                (self.block_seq(span, depth)?, props.anchor, line)
            }
            _ => return Err(at(span, "unexpected YAML event")),
        };
        self.store_anchor(anchor, &value);
        Ok((value, line))
    }

    fn block_seq(&mut self, start: &Span, depth: usize) -> Res<Value> {
        let indent = start.start.col;
        let mut list = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if let Event::SequenceEnd = event {
                let n = self.foot_count(indent);
                push_items(&mut list, self.scanner.pending.drain(..n), false);
                return Ok(Value::List(list));
            }
            push_items(&mut list, self.scanner.pending.drain(..), false);
            let item = match event {
                Event::MappingStart(props, false) => {
                    check_depth(depth + 1, &span)?;
                    let (map, escaped) = self.block_map(&span, Some(span.start.line), depth + 1)?;
                    push_items(&mut list, escaped.into_iter(), true);
                    let v = Value::Map(map);
                    self.store_anchor(props.anchor, &v);
                    v
                }
                Event::SequenceStart(_, false) => self.node(event, &span, depth + 1)?.0,
                _ => {
                    let (v, end_line) = self.node(event, &span, depth + 1)?;
                    self.peek()?;
                    if let Some(c) = self.take_trailing(end_line) {
                        push_items(&mut list, std::iter::once(c), true);
                    }
                    v
                }
            };
            list.push(item);
        }
    }

    /// A flow mapping or sequence. Comments inside go in order; one that
    /// trails an entry on its line (after its comma) is that entry's line
    /// comment, as go-yaml ties comments after `,` to the prior token.
    fn flow(&mut self, start: &Span, is_map: bool, depth: usize) -> Res<(Value, usize)> {
        check_depth(depth, start)?;
        let mut map = Vec::new();
        let mut list = Vec::new();
        let mut keys = HashSet::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                let items = self.scanner.pending.drain(..);
                if is_map {
                    push_comments(&mut map, items, false);
                    return Ok((Value::Map(map), span.end.line));
                }
                push_items(&mut list, items, false);
                return Ok((Value::List(list), span.end.line));
            }
            if is_map {
                push_comments(&mut map, self.scanner.pending.drain(..), false);
                let (key, key_line) = self.key(event, &span, &mut keys)?;
                let value = self.pair_value(&mut map, key_line, None, depth)?;
                map.push(Entry::Pair(key, value));
            } else {
                push_items(&mut list, self.scanner.pending.drain(..), false);
                let (v, end_line) = self.node(event, &span, depth + 1)?;
                self.peek()?;
                if let Some(c) = self.take_trailing(end_line) {
                    push_items(&mut list, std::iter::once(c), true);
                }
                list.push(v);
            }
        }
    }

    /// A scalar's tree value as go-yaml's `Node.Decode` into `interface{}` gives it.
    fn scalar_value(&self, s: &Scalar, span: &Span) -> Res<Value> {
        let tag = s.props.tag.as_deref().filter(|t| *t != "!");
        let quoted = s.style != Style::Plain;
        let text: &str = &s.value;
        let resolved = match tag {
            None if quoted => Resolved::Str,
            None => resolve_plain(text),
            Some(t) => match t.strip_prefix(CORE) {
                Some("str") => Resolved::Str,
                Some("binary") => return binary(text, span),
                Some(kind @ ("int" | "float" | "bool" | "null" | "timestamp")) => {
                    tagged(kind, text, span)?
                }
                _ => Resolved::Str,
            },
        };
        resolved
            .into_value(text)
            .ok_or_else(|| at(span, "integer out of range"))
    }

    fn alias(&mut self, name: &str, span: &Span) -> Res<Value> {
        let Some((value, size)) = self.anchors.get(name) else {
            return Err(at(span, "unknown anchor"));
        };
        self.alias_nodes += size;
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(at(span, "document contains excessive aliasing"));
        }
        Ok(value.clone())
    }

    fn store_anchor(&mut self, anchor: Option<&'a str>, value: &Value) {
        if let Some(name) = anchor {
            self.anchors
                .insert(name, (value.clone(), count_nodes(value)));
        }
    }
}

/// A scalar with an explicit core tag, as go-yaml's `resolve(tag, s)` checks it.
fn tagged(kind: &str, text: &str, span: &Span) -> Res<Resolved> {
    let r = resolve_plain(text);
    let ok = match (&r, kind) {
        (Resolved::Int(i), "float") => return Ok(Resolved::Float(*i as f64)),
        (Resolved::Int(_) | Resolved::BigUint, "int") => true,
        (Resolved::Float(_), "float") => true,
        (Resolved::Bool(_), "bool") => true,
        (Resolved::Null, "null") => true,
        (Resolved::Time(_), "timestamp") => true,
        _ => false,
    };
    if ok {
        Ok(r)
    } else {
        Err(at(span, "scalar does not match its tag"))
    }
}

/// `!!binary`: base64 (line breaks allowed). go-yaml decodes it into a Go
/// string whatever the bytes are; bytes that are not UTF-8 are kept as such.
fn binary(text: &str, span: &Span) -> Res<Value> {
    let compact: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| at(span, "!!binary value contains invalid base64 data"))?;
    Ok(String::from_utf8(bytes).map_or_else(|e| Value::Bytes(e.into_bytes()), Value::Str))
}

fn count_nodes(value: &Value) -> usize {
    match value {
        Value::Map(m) => {
            1 + m
                .iter()
                .map(|e| match e {
                    Entry::Pair(_, v) => count_nodes(v),
                    Entry::Comment(_) => 1,
                })
                .sum::<usize>()
        }
        Value::List(l) => 1 + l.iter().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

fn into_map(v: Value) -> Map {
    match v {
        Value::Map(m) => m,
        _ => Vec::new(),
    }
}

fn check_depth(depth: usize, span: &Span) -> Res<()> {
    if depth > MAX_DEPTH {
        return Err(at(span, "nesting too deep"));
    }
    Ok(())
}

fn at(span: &Span, what: &str) -> FormatError {
    syntax(format!(
        "{what} at line {} column {}",
        span.start.line,
        span.start.col + 1
    ))
}

fn push_comments(map: &mut Map, found: impl Iterator<Item = Found>, inline: bool) {
    map.extend(found.map(|c| {
        Entry::Comment(Comment {
            text: c.text,
            inline,
        })
    }));
}

fn push_items(list: &mut Vec<Value>, found: impl Iterator<Item = Found>, inline: bool) {
    list.extend(found.map(|c| {
        Value::Comment(Comment {
            text: c.text,
            inline,
        })
    }));
}

/// A flow collection's line comment goes after its head comments.
fn insert_after_heads_map(map: &mut Map, c: Found) {
    let at = map
        .iter()
        .take_while(|e| matches!(e, Entry::Comment(_)))
        .count();
    map.insert(at, Entry::Comment(Comment::new(c.text)));
}

fn insert_after_heads_list(list: &mut Vec<Value>, c: Found) {
    let at = list
        .iter()
        .take_while(|e| matches!(e, Value::Comment(_)))
        .count();
    list.insert(at, Value::Comment(Comment::new(c.text)));
}
