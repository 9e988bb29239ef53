//! The `yaml.Node` tree the reference builds from a sops tree before
//! encoding (`appendTreeBranch`, `appendSequence`, `treeValueToNode` in
//! `stores/yaml/store.go`). Comments land on nodes exactly as there, because
//! go-yaml's emitter places them by node.

use super::scalar::Scalar;
use crate::tree::{Comment, Entry, Map, Value};

/// A node kind with its children.
pub enum Kind<'a> {
    /// A scalar, already in its printed text and style.
    Scalar(Scalar<'a>),
    /// Key/value nodes, alternating.
    Mapping(Vec<Node<'a>>),
    /// Items.
    Sequence(Vec<Node<'a>>),
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
pub fn mapping(map: &Map) -> Node<'_> {
    let mut node = Node::new(Kind::Mapping(Vec::new()));
    let mut content = Vec::new();
    let mut heads = Vec::new();
    let mut inlines = Vec::new();
    for entry in map {
        match entry {
            Entry::Comment(c) if c.inline => inlines.push(c),
            Entry::Comment(c) => heads.push(c),
            Entry::Pair(key, value) => {
                if content.is_empty() {
                    add_head(&mut node.head, &mut heads);
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
        None => add_head(&mut node.head, &mut heads),
    }
    node.kind = Kind::Mapping(content);
    node
}

/// `appendSequence`: a sequence node for a list.
fn sequence(items: &[Value]) -> Node<'_> {
    let mut node = Node::new(Kind::Sequence(Vec::new()));
    let mut content: Vec<Node> = Vec::new();
    let mut heads = Vec::new();
    let mut inlines = Vec::new();
    for item in items {
        match item {
            Value::Comment(c) if c.inline => inlines.push(c),
            Value::Comment(c) => heads.push(c),
            _ => {
                if content.is_empty() {
                    add_head(&mut node.head, &mut heads);
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
        None => add_head(&mut node.head, &mut heads),
    }
    node.kind = Kind::Sequence(content);
    node
}

/// `treeValueToNode`.
pub fn value_node(value: &Value) -> Node<'_> {
    match value {
        Value::Map(map) => mapping(map),
        Value::List(items) => sequence(items),
        other => Node::new(Kind::Scalar(Scalar::of(other))),
    }
}

fn string_node(s: &str) -> Node<'_> {
    Node::new(Kind::Scalar(Scalar::string(s)))
}
