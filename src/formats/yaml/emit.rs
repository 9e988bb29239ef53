//! A port of the parts of go-yaml v3's emitter (`emitterc.go`) and node
//! encoder (`encode.go`) that the reference's nodes reach: block mappings
//! and sequences, empty flow collections, the four scalar styles it picks,
//! and head/line/foot/tail comments. The state machine is kept as in Go so
//! comment placement (including its quirks) comes out byte for byte.

use super::node::{full_head, mapping_content, sequence_content, Kind, Node};
use super::scalar::{is_break, is_printable, select_style, Analysis, ScalarStyle};

/// One emitter event, borrowing its text from the node tree. A collection's
/// start says whether it is empty, which is all the emitter looks ahead for.
enum Event<'a> {
    DocStart,
    DocEnd,
    MapStart {
        head: &'a str,
        tail: &'a str,
        empty: bool,
    },
    MapEnd {
        tail: &'a str,
        line: &'a str,
        foot: &'a str,
    },
    SeqStart {
        head: &'a str,
        empty: bool,
    },
    SeqEnd {
        line: &'a str,
        foot: &'a str,
    },
    Scalar {
        value: &'a str,
        style: ScalarStyle,
        tag: Option<&'static str>,
        analysis: Analysis,
        head: &'a str,
        line: &'a str,
        foot: &'a str,
        tail: &'a str,
    },
}

/// `encoder.node`: feeds the events of a node to the emitter, moving each
/// key's foot comment to the following key (or the mapping end) as the
/// tail comment. Collections are expanded here, one level at a time.
fn node_events(emitter: &mut Emitter, node: &Node, tail: &str) {
    match &node.kind {
        Kind::Scalar(scalar) => emitter.event(&Event::Scalar {
            value: &scalar.text,
            style: scalar.style,
            tag: scalar.tag,
            analysis: scalar.analysis,
            head: &node.head,
            line: &node.line,
            foot: &node.foot,
            tail,
        }),
        Kind::Sequence(items) => {
            let (content, own) = sequence_content(items);
            let head = full_head(&node.head, own);
            emitter.event(&Event::SeqStart {
                head: &head,
                empty: content.is_empty(),
            });
            for item in &content {
                node_events(emitter, item, "");
            }
            emitter.event(&Event::SeqEnd {
                line: &node.line,
                foot: &node.foot,
            });
        }
        Kind::Mapping(map) => {
            let (content, own) = mapping_content(map);
            let head = full_head(&node.head, own);
            emitter.event(&Event::MapStart {
                head: &head,
                tail,
                empty: content.is_empty(),
            });
            let mut tail = "";
            for pair in content.chunks(2) {
                let [key, value] = pair else { break };
                push_key(emitter, key, tail);
                tail = &key.foot;
                node_events(emitter, value, "");
            }
            emitter.event(&Event::MapEnd {
                tail,
                line: &node.line,
                foot: &node.foot,
            });
        }
    }
}

/// A key's events with its foot comment left out (it travels as a tail).
fn push_key(emitter: &mut Emitter, key: &Node, tail: &str) {
    match &key.kind {
        Kind::Scalar(scalar) => emitter.event(&Event::Scalar {
            value: &scalar.text,
            style: scalar.style,
            tag: scalar.tag,
            analysis: scalar.analysis,
            head: &key.head,
            line: &key.line,
            foot: "",
            tail,
        }),
        _ => node_events(emitter, key, tail),
    }
}

/// Prints a stream of documents, each with `root` as its content, into
/// one buffer of at least `capacity` bytes.
pub fn emit_documents(roots: &[Node], best_indent: usize, capacity: usize) -> Vec<u8> {
    let mut emitter = Emitter::new(best_indent);
    emitter.out.reserve(capacity);
    for root in roots {
        emitter.event(&Event::DocStart);
        node_events(&mut emitter, root, "");
        emitter.event(&Event::DocEnd);
    }
    emitter.out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    FirstDocumentStart,
    DocumentStart,
    DocumentContent,
    DocumentEnd,
    FlowSequenceFirstItem,
    FlowMappingFirstKey,
    BlockSequenceFirstItem,
    BlockSequenceItem,
    BlockMappingFirstKey,
    BlockMappingKey,
    BlockMappingSimpleValue,
    BlockMappingValue,
}

/// The emitter's state, named as in `yaml_emitter_t`.
struct Emitter {
    out: Vec<u8>,
    best_indent: i64,
    state: State,
    states: Vec<State>,
    indent: i64,
    indents: Vec<i64>,
    flow_level: usize,
    simple_key_context: bool,
    column: i64,
    whitespace: bool,
    indention: bool,
    foot_indent: i64,
    head_comment: String,
    line_comment: String,
    foot_comment: String,
    tail_comment: String,
    key_line_comment: String,
}

impl Emitter {
    fn new(best_indent: usize) -> Emitter {
        let best_indent = if (2..=9).contains(&best_indent) {
            best_indent as i64
        } else {
            2
        };
        Emitter {
            out: Vec::new(),
            best_indent,
            state: State::FirstDocumentStart,
            states: Vec::new(),
            indent: -1,
            indents: Vec::new(),
            flow_level: 0,
            simple_key_context: false,
            column: 0,
            whitespace: true,
            indention: true,
            foot_indent: -1,
            head_comment: String::new(),
            line_comment: String::new(),
            foot_comment: String::new(),
            tail_comment: String::new(),
            key_line_comment: String::new(),
        }
    }

    /// `yaml_emitter_emit` for one event.
    fn event(&mut self, event: &Event) {
        self.analyze_event(event);
        self.state_machine(event);
    }

    fn analyze_event(&mut self, event: &Event) {
        let (head, line, foot, tail) = match *event {
            Event::DocStart | Event::DocEnd => ("", "", "", ""),
            Event::MapStart { head, tail, .. } => (head, "", "", tail),
            Event::MapEnd { tail, line, foot } => ("", line, foot, tail),
            Event::SeqStart { head, .. } => (head, "", "", ""),
            Event::SeqEnd { line, foot } => ("", line, foot, ""),
            Event::Scalar {
                head,
                line,
                foot,
                tail,
                ..
            } => (head, line, foot, tail),
        };
        set_if_some(&mut self.head_comment, head);
        set_if_some(&mut self.line_comment, line);
        set_if_some(&mut self.foot_comment, foot);
        set_if_some(&mut self.tail_comment, tail);
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or(State::DocumentEnd);
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn state_machine(&mut self, event: &Event) {
        match self.state {
            State::FirstDocumentStart => self.document_start(true),
            State::DocumentStart => self.document_start(false),
            State::DocumentContent => self.document_content(event),
            State::DocumentEnd => self.document_end(),
            State::FlowSequenceFirstItem => self.flow_end(b']'),
            State::FlowMappingFirstKey => self.flow_end(b'}'),
            State::BlockSequenceFirstItem => self.block_sequence_item(event, true),
            State::BlockSequenceItem => self.block_sequence_item(event, false),
            State::BlockMappingFirstKey => self.block_mapping_key(event, true),
            State::BlockMappingKey => self.block_mapping_key(event, false),
            State::BlockMappingSimpleValue => self.block_mapping_value(event, true),
            State::BlockMappingValue => self.block_mapping_value(event, false),
        }
    }

    fn document_start(&mut self, first: bool) {
        if !first {
            self.write_indent();
            self.write_indicator(b"---", true, false, false);
            self.write_indent();
        }
        if !self.head_comment.is_empty() {
            self.process_head_comment();
            self.put_break();
        }
        self.state = State::DocumentContent;
    }

    fn document_content(&mut self, event: &Event) {
        self.states.push(State::DocumentEnd);
        self.process_head_comment();
        self.emit_node(event, false);
        self.process_line_comment();
        self.process_foot_comment();
    }

    fn document_end(&mut self) {
        self.foot_indent = 0;
        self.process_foot_comment();
        self.foot_indent = -1;
        self.write_indent();
        self.state = State::DocumentStart;
    }

    /// The end of an empty flow collection (the only flow collections the
    /// reference's nodes produce): `[]` or `{}`.
    fn flow_end(&mut self, close: u8) {
        if close == b'}' {
            self.process_head_comment();
        }
        self.flow_level = self.flow_level.saturating_sub(1);
        self.pop_indent();
        if self.column == 0 {
            self.write_indent();
        }
        self.write_indicator(&[close], false, false, false);
        self.process_line_comment();
        self.process_foot_comment();
        self.pop_state();
    }

    fn block_sequence_item(&mut self, event: &Event, first: bool) {
        if first {
            self.increase_indent(false);
        }
        if let Event::SeqEnd { .. } = event {
            self.pop_indent();
            self.pop_state();
            return;
        }
        self.process_head_comment();
        self.write_indent();
        self.write_indicator(b"-", true, false, true);
        self.states.push(State::BlockSequenceItem);
        self.emit_node(event, false);
        self.process_line_comment();
        self.process_foot_comment();
    }

    fn block_mapping_key(&mut self, event: &Event, first: bool) {
        if first {
            self.increase_indent(false);
        }
        self.process_head_comment();
        if let Event::MapEnd { .. } = event {
            self.pop_indent();
            self.pop_state();
            return;
        }
        self.write_indent();
        if !self.line_comment.is_empty() {
            self.key_line_comment = std::mem::take(&mut self.line_comment);
        }
        if check_simple_key(event) {
            self.states.push(State::BlockMappingSimpleValue);
            self.emit_node(event, true);
        } else {
            self.write_indicator(b"?", true, false, true);
            self.states.push(State::BlockMappingValue);
            self.emit_node(event, false);
        }
    }

    fn block_mapping_value(&mut self, event: &Event, simple: bool) {
        if simple {
            self.write_indicator(b":", false, false, false);
        } else {
            self.write_indent();
            self.write_indicator(b":", true, false, true);
        }
        if !self.key_line_comment.is_empty() {
            match event {
                Event::Scalar { .. } if self.line_comment.is_empty() => {
                    self.line_comment = std::mem::take(&mut self.key_line_comment);
                }
                Event::MapStart { .. } | Event::SeqStart { .. } => {
                    std::mem::swap(&mut self.line_comment, &mut self.key_line_comment);
                    self.process_line_comment();
                    std::mem::swap(&mut self.line_comment, &mut self.key_line_comment);
                }
                _ => {}
            }
        }
        self.states.push(State::BlockMappingKey);
        self.emit_node(event, false);
        self.process_line_comment();
        self.process_foot_comment();
    }

    fn emit_node(&mut self, event: &Event, simple_key: bool) {
        self.simple_key_context = simple_key;
        match event {
            Event::Scalar {
                value,
                style,
                tag,
                analysis,
                ..
            } => self.emit_scalar(value, *style, *tag, analysis),
            Event::SeqStart { empty, .. } => {
                self.state = if self.flow_level > 0 || *empty {
                    self.enter_flow(b'[');
                    State::FlowSequenceFirstItem
                } else {
                    State::BlockSequenceFirstItem
                };
            }
            Event::MapStart { empty, .. } => {
                self.state = if self.flow_level > 0 || *empty {
                    self.enter_flow(b'{');
                    State::FlowMappingFirstKey
                } else {
                    State::BlockMappingFirstKey
                };
            }
            _ => self.pop_state(),
        }
    }

    /// The first-item part of the flow states, done eagerly: the next event
    /// is always the collection's end.
    fn enter_flow(&mut self, open: u8) {
        self.write_indicator(&[open], true, true, false);
        self.increase_indent(true);
        self.flow_level += 1;
    }

    fn emit_scalar(
        &mut self,
        value: &str,
        style: ScalarStyle,
        tag: Option<&str>,
        analysis: &Analysis,
    ) {
        let style = select_style(style, value, analysis, self.simple_key_context);
        if let Some(tag) = tag {
            self.write_tag(tag);
        }
        self.increase_indent(true);
        match style {
            ScalarStyle::Plain => self.write_plain(value),
            ScalarStyle::Single => self.write_single(value),
            ScalarStyle::Double => self.write_double(value),
            ScalarStyle::Literal => self.write_literal(value),
        }
        self.pop_indent();
        self.pop_state();
    }

    fn increase_indent(&mut self, flow: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { self.best_indent } else { 0 };
        } else if self.states.last() == Some(&State::BlockSequenceItem) {
            self.indent += 2;
        } else {
            let b = self.best_indent;
            self.indent = b * ((self.indent + b) / b);
        }
    }

    fn process_head_comment(&mut self) {
        if !self.tail_comment.is_empty() {
            self.write_indent();
            let tail = std::mem::take(&mut self.tail_comment);
            self.write_comment(&tail);
            self.foot_indent = self.indent.max(0);
        }
        if self.head_comment.is_empty() {
            return;
        }
        self.write_indent();
        let head = std::mem::take(&mut self.head_comment);
        self.write_comment(&head);
    }

    fn process_line_comment(&mut self) {
        if self.line_comment.is_empty() {
            return;
        }
        if !self.whitespace {
            self.put(b' ');
        }
        let line = std::mem::take(&mut self.line_comment);
        self.write_comment(&line);
    }

    fn process_foot_comment(&mut self) {
        if self.foot_comment.is_empty() {
            return;
        }
        self.write_indent();
        let foot = std::mem::take(&mut self.foot_comment);
        self.write_comment(&foot);
        self.foot_indent = self.indent.max(0);
    }

    fn put(&mut self, b: u8) {
        self.out.push(b);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
        self.indention = true;
    }

    /// Writes one character, counting it as one column.
    fn write_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.out
            .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        self.column += 1;
    }

    /// Writes a run of text without line breaks.
    fn write_str(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.column += s.chars().count() as i64;
    }

    /// `write_break`: a line break character from the value.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.write_char(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        if self.foot_indent == indent {
            self.put_break();
        }
        while self.column < indent {
            self.put(b' ');
        }
        self.whitespace = true;
        self.foot_indent = -1;
    }

    fn write_indicator(
        &mut self,
        indicator: &[u8],
        need_ws: bool,
        is_ws: bool,
        is_indention: bool,
    ) {
        if need_ws && !self.whitespace {
            self.put(b' ');
        }
        for &b in indicator {
            self.put(b);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    /// `yaml_emitter_process_tag` for a `!!` tag, which is written as is.
    fn write_tag(&mut self, tag: &str) {
        if !self.whitespace {
            self.put(b' ');
        }
        self.write_str(tag);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_comment(&mut self, comment: &str) {
        let mut breaks = false;
        let mut pound = false;
        for c in comment.chars() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
                pound = false;
            } else {
                if breaks {
                    self.write_indent();
                }
                if !pound {
                    if c != '#' {
                        self.put(b'#');
                        self.put(b' ');
                    }
                    pound = true;
                }
                self.write_char(c);
                self.indention = false;
                breaks = false;
            }
        }
        if !breaks {
            self.put_break();
        }
        self.whitespace = true;
    }

    /// Plain scalars never hold line breaks here (those get another style),
    /// and the reference's unlimited width means no folding.
    fn write_plain(&mut self, value: &str) {
        if !value.is_empty() && !self.whitespace {
            self.put(b' ');
        }
        self.write_str(value);
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single(&mut self, value: &str) {
        self.write_indicator(b"'", true, false, false);
        let mut breaks = false;
        for c in value.chars() {
            if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put(b'\'');
                }
                self.write_char(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator(b"'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, value: &str) {
        self.write_indicator(b"\"", true, false, false);
        for c in value.chars() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.write_escape(c);
            } else {
                self.write_char(c);
            }
        }
        self.write_indicator(b"\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_escape(&mut self, c: char) {
        self.put(b'\\');
        let short = match c {
            '\0' => Some(b'0'),
            '\u{07}' => Some(b'a'),
            '\u{08}' => Some(b'b'),
            '\t' => Some(b't'),
            '\n' => Some(b'n'),
            '\u{0B}' => Some(b'v'),
            '\u{0C}' => Some(b'f'),
            '\r' => Some(b'r'),
            '\u{1B}' => Some(b'e'),
            '"' => Some(b'"'),
            '\\' => Some(b'\\'),
            '\u{85}' => Some(b'N'),
            '\u{A0}' => Some(b'_'),
            '\u{2028}' => Some(b'L'),
            '\u{2029}' => Some(b'P'),
            _ => None,
        };
        if let Some(b) = short {
            self.put(b);
            return;
        }
        let v = u32::from(c);
        let (letter, width) = match v {
            0..=0xFF => (b'x', 2),
            0x100..=0xFFFF => (b'u', 4),
            _ => (b'U', 8),
        };
        self.put(letter);
        for k in (0..width).rev() {
            let digit = ((v >> (4 * k)) & 0xF) as u8;
            self.put(if digit < 10 {
                b'0' + digit
            } else {
                b'A' + digit - 10
            });
        }
    }

    /// The reference's go-yaml (`go.yaml.in/yaml/v3`) ends the header line
    /// itself when no comment does (`processLineCommentLinebreak(true)`),
    /// so a value that starts with a line break gets an empty first line.
    fn write_literal(&mut self, value: &str) {
        self.write_indicator(b"|", true, false, false);
        self.write_block_hints(value);
        if self.line_comment.is_empty() {
            self.put_break();
        } else {
            self.process_line_comment();
        }
        self.whitespace = true;
        let mut breaks = true;
        for c in value.chars() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write_char(c);
                self.indention = false;
                breaks = false;
            }
        }
    }

    /// `yaml_emitter_write_block_scalar_hints`: indentation and chomping.
    fn write_block_hints(&mut self, value: &str) {
        let first = value.chars().next();
        if first.is_some_and(|c| c == ' ' || is_break(c)) {
            let hint = b'0' + self.best_indent as u8;
            self.write_indicator(&[hint], false, false, false);
        }
        let mut rev = value.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some(b'-'),
            (Some(last), _) if !is_break(last) => Some(b'-'),
            (Some(_), None) => Some(b'+'),
            (Some(_), Some(prev)) if is_break(prev) => Some(b'+'),
            _ => None,
        };
        if let Some(c) = chomp {
            self.write_indicator(&[c], false, false, false);
        }
    }
}

fn set_if_some(slot: &mut String, text: &str) {
    if !text.is_empty() {
        text.clone_into(slot);
    }
}

/// `yaml_emitter_check_simple_key`.
fn check_simple_key(event: &Event) -> bool {
    match event {
        Event::Scalar {
            value,
            tag,
            analysis,
            ..
        } => !analysis.multiline && value.len() + tag.map_or(0, str::len) <= 128,
        Event::SeqStart { empty, .. } | Event::MapStart { empty, .. } => *empty,
        _ => false,
    }
}
