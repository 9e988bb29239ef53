//! The `yaml.Node` tree the reference builds from a sops tree before
//! encoding (`appendTreeBranch`, `appendSequence`, `treeValueToNode` in
//! `stores/yaml/store.go`). Comments land on nodes exactly as there, because
//! go-yaml's emitter places them by node.

use super::scalar::Scalar;
use crate::tree::{Comment, Entry, Value};

/// A node kind. Collections are expanded one level at a time, when the
/// emitter reaches them ([`mapping_content`], [`sequence_content`]), so the
/// whole tree of nodes never exists at once.
pub enum Kind<'a> {
    /// A scalar, already in its printed text and style.
    Scalar(Scalar<'a>),
    /// A map, not yet expanded.
    Mapping(&'a [Entry]),
    /// A list, not yet expanded.
    Sequence(&'a [Value]),
}

/// A `yaml.Node` reduced to what the encoder reads. Scalar texts borrow
/// from the tree.
pub struct Node<'a> {
    /// What the node holds.
    pub kind: Kind<'a>,
    /// `HeadComment`, `#`-prefixed lines joined by `\n`.
    pub head: String,
    /// `LineComment`.
    pub line: String,
    /// `FootComment`.
    pub foot: String,
}

impl<'a> Node<'a> {
    fn new(kind: Kind<'a>) -> Node<'a> {
        Node {
            kind,
            head: String::new(),
            line: String::new(),
            foot: String::new(),
        }
    }
}

/// Joins pending comment texts as `#a\n#b` (the reference's `addComments*`).
fn joined(comments: &[&Comment]) -> String {
    let mut out = String::new();
    for (i, c) in comments.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push('#');
        out.push_str(&c.text);
    }
    out
}

/// `addCommentsHead`: prepends to the node's head comment.
fn add_head(slot: &mut String, comments: &mut Vec<&Comment>) {
    if comments.is_empty() {
        return;
    }
    let mut text = joined(comments);
    if !slot.is_empty() {
        text.push('\n');
        text.push_str(slot);
    }
    *slot = text;
    comments.clear();
}

/// `addCommentsLine` / `addCommentsFoot`: appends to the slot.
fn add_tail(slot: &mut String, comments: &mut Vec<&Comment>) {
    if comments.is_empty() {
        return;
    }
    if !slot.is_empty() {
        slot.push('\n');
    }
    slot.push_str(&joined(comments));
    comments.clear();
}

/// `appendTreeBranch`: a mapping node for a map.
pub fn mapping(map: &[Entry]) -> Node<'_> {
    Node::new(Kind::Mapping(map))
}

/// The key and value nodes (alternating) of a map, and the head comment the
/// reference's `appendTreeBranch` gives the mapping node itself (to follow
/// whatever head its parent gave it).
pub fn mapping_content(map: &[Entry]) -> (Vec<Node<'_>>, String) {
    let mut head = String::new();
    let mut content = Vec::with_capacity(map.len() * 2);
    let mut heads = Vec::new();
    let mut inlines = Vec::new();
    for entry in map {
        match entry {
            Entry::Comment(c) if c.inline => inlines.push(c),
            Entry::Comment(c) => heads.push(c),
            Entry::Pair(key, value) => {
                if content.is_empty() {
                    add_head(&mut head, &mut heads);
                }
                let mut key_node = string_node(key);
                add_head(&mut key_node.head, &mut heads);
                let mut value_node = value_node(value);
                add_tail(&mut value_node.line, &mut inlines);
                content.push(key_node);
                content.push(value_node);
            }
        }
    }
    heads.append(&mut inlines);
    let len = content.len();
    match content.get_mut(len.wrapping_sub(2)) {
        Some(last_key) => add_tail(&mut last_key.foot, &mut heads),
        None => add_head(&mut head, &mut heads),
    }
    (content, head)
}

/// `appendSequence` for a list: its item nodes, and the head comment of
/// the sequence node itself (as [`mapping_content`]).
pub fn sequence_content(items: &[Value]) -> (Vec<Node<'_>>, String) {
    let mut head = String::new();
    let mut content: Vec<Node> = Vec::new();
    let mut heads = Vec::new();
    let mut inlines = Vec::new();
    for item in items {
        match item {
            Value::Comment(c) if c.inline => inlines.push(c),
            Value::Comment(c) => heads.push(c),
            _ => {
                if content.is_empty() {
                    add_head(&mut head, &mut heads);
                }
                let mut item_node = value_node(item);
                add_head(&mut item_node.head, &mut heads);
                add_tail(&mut item_node.line, &mut inlines);
                content.push(item_node);
            }
        }
    }
    heads.append(&mut inlines);
    match content.last_mut() {
        Some(last) => add_tail(&mut last.foot, &mut heads),
        None => add_head(&mut head, &mut heads),
    }
    (content, head)
}

/// A collection node's whole head comment: what its parent gave it
/// (`addCommentsHead` prepends), then its own.
pub fn full_head(given: &str, own: String) -> String {
    match (given.is_empty(), own.is_empty()) {
        (true, _) => own,
        (false, true) => given.to_string(),
        (false, false) => format!("{given}\n{own}"),
    }
}

/// `treeValueToNode`.
pub fn value_node(value: &Value) -> Node<'_> {
    match value {
        Value::Map(map) => mapping(map),
        Value::List(items) => Node::new(Kind::Sequence(items)),
        other => Node::new(Kind::Scalar(Scalar::of(other))),
    }
}

fn string_node(s: &str) -> Node<'_> {
    Node::new(Kind::Scalar(Scalar::string(s)))
}
