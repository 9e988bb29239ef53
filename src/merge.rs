//! Three-way merge of decrypted documents: what `rsops merge-driver` does
//! between git's base, ours and theirs (sops #52, #1117).
//!
//! Maps merge key by key, recursively: a key changed on one side only
//! takes that change (additions and deletions included); both sides making
//! the same change is fine; both changing it differently is a [`Conflict`].
//! Every other value (lists included) is compared whole. Comments never
//! decide anything: values are compared without them, and the result keeps
//! ours' comments and order, with keys only theirs added placed after their
//! predecessor in theirs (or at the end of the map).
//!
//! Without a base (git's add/add case) the merge is two-way: keys on one
//! side only are kept, equal keys are fine, differing keys conflict.
//!
//! Nothing here prints, and a [`Conflict`] names key paths, never values.

use std::fmt;

use rsops_keysource::KeyEntry;

use crate::tree::{Document, Entry, Map, Value};

/// Why a key could not be merged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictKind {
    /// Both sides changed the value, differently.
    BothChanged,
    /// Both sides added the key, with different values.
    BothAdded,
    /// Ours deleted the key while theirs changed it.
    DeletedByOurs,
    /// Theirs deleted the key while ours changed it.
    DeletedByTheirs,
    /// The files hold different numbers of YAML documents.
    DocumentCount {
        /// In the base (when there is one).
        base: Option<usize>,
        /// In ours.
        ours: usize,
        /// In theirs.
        theirs: usize,
    },
}

/// A key both sides changed in incompatible ways.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The document (0-based) in a multi-document file, `None` for the
    /// only one (or for a document-count conflict).
    pub document: Option<usize>,
    /// The keys from the document's root down to the conflicting value.
    pub path: Vec<String>,
    /// What happened.
    pub kind: ConflictKind,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ConflictKind::DocumentCount { base, ours, theirs } = &self.kind {
            write!(
                f,
                "conflict in the number of documents: ours has {ours}, theirs {theirs}"
            )?;
            if let Some(base) = base {
                write!(f, ", the base {base}")?;
            }
            return Ok(());
        }
        f.write_str("conflict at ")?;
        if let Some(document) = self.document {
            write!(f, "document {}, ", document + 1)?;
        }
        f.write_str(&self.path.join(":"))?;
        f.write_str(match self.kind {
            ConflictKind::BothChanged => ": changed differently on both sides",
            ConflictKind::BothAdded => ": added on both sides with different values",
            ConflictKind::DeletedByOurs => ": deleted by ours, changed by theirs",
            ConflictKind::DeletedByTheirs => ": changed by ours, deleted by theirs",
            ConflictKind::DocumentCount { .. } => "",
        })
    }
}

/// Merges `theirs` into `ours` against their common ancestor `base`
/// (`None` for a two-way merge). Returns the merged document, or every
/// conflict found (the partial result is wiped).
pub fn merge(
    base: Option<&Document>,
    ours: &Document,
    theirs: &Document,
) -> Result<Document, Vec<Conflict>> {
    let counts_differ = ours.branches.len() != theirs.branches.len()
        || base.is_some_and(|b| b.branches.len() != ours.branches.len());
    if counts_differ {
        return Err(vec![Conflict {
            document: None,
            path: Vec::new(),
            kind: ConflictKind::DocumentCount {
                base: base.map(|b| b.branches.len()),
                ours: ours.branches.len(),
                theirs: theirs.branches.len(),
            },
        }]);
    }
    let several = ours.branches.len() > 1;
    let mut merged = Document::new(Vec::with_capacity(ours.branches.len()));
    let mut conflicts = Vec::new();
    for (index, (o, t)) in ours.branches.iter().zip(&theirs.branches).enumerate() {
        let b = base.map(|b| &b.branches[index]);
        let mut at = Walk {
            document: several.then_some(index),
            path: Vec::new(),
            conflicts: &mut conflicts,
        };
        merged.branches.push(at.map(b, o, t));
    }
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(conflicts)
    }
}

/// Where the merge is, and what it found so far.
struct Walk<'a> {
    document: Option<usize>,
    path: Vec<String>,
    conflicts: &'a mut Vec<Conflict>,
}

impl Walk<'_> {
    fn map(&mut self, base: Option<&Map>, ours: &Map, theirs: &Map) -> Map {
        let mut out: Map = Vec::with_capacity(ours.len() + theirs.len());
        for entry in ours {
            match entry {
                Entry::Comment(c) => out.push(Entry::Comment(c.clone())),
                Entry::Pair(key, o) => {
                    let b = base.and_then(|m| get(m, key));
                    match self.key(key, b, Some(o), get(theirs, key)) {
                        Some(value) => out.push(Entry::Pair(key.clone(), value)),
                        // A value's inline comment comes just before its
                        // pair (as in the reference's tree): it goes too.
                        None => {
                            while matches!(out.last(), Some(Entry::Comment(c)) if c.inline) {
                                out.pop();
                            }
                        }
                    }
                }
            }
        }
        // Keys only theirs has: additions by theirs (or deletions by ours).
        let mut predecessor: Option<&str> = None;
        for entry in theirs {
            let Entry::Pair(key, t) = entry else { continue };
            if get(ours, key).is_none() {
                let b = base.and_then(|m| get(m, key));
                if let Some(value) = self.key(key, b, None, Some(t)) {
                    let at = predecessor
                        .and_then(|p| after(&out, p))
                        .unwrap_or(out.len());
                    out.insert(at, Entry::Pair(key.clone(), value));
                }
            }
            if get(&out, key).is_some() {
                predecessor = Some(key);
            }
        }
        out
    }

    fn key(
        &mut self,
        key: &str,
        base: Option<&Value>,
        ours: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        self.path.push(key.to_string());
        let merged = self.value(base, ours, theirs);
        self.path.pop();
        merged
    }

    /// The merged value at the current path: `None` when it is deleted.
    fn value(
        &mut self,
        base: Option<&Value>,
        ours: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        // Two maps merge key by key, keeping ours' comments and order.
        if let (Some(Value::Map(o)), Some(Value::Map(t))) = (ours, theirs) {
            let b = match base {
                Some(Value::Map(b)) => Some(b),
                _ => None,
            };
            return Some(Value::Map(self.map(b, o, t)));
        }
        if same_option(ours, theirs) || same_option(base, theirs) {
            return ours.cloned();
        }
        if same_option(base, ours) {
            return theirs.cloned();
        }
        let kind = match (base, ours, theirs) {
            (None, _, _) => ConflictKind::BothAdded,
            (Some(_), None, _) => ConflictKind::DeletedByOurs,
            (Some(_), _, None) => ConflictKind::DeletedByTheirs,
            (Some(_), Some(_), Some(_)) => ConflictKind::BothChanged,
        };
        self.conflicts.push(Conflict {
            document: self.document,
            path: self.path.clone(),
            kind,
        });
        ours.cloned()
    }
}

/// The value of `key` in a map.
fn get<'m>(map: &'m Map, key: &str) -> Option<&'m Value> {
    map.iter().find_map(|entry| match entry {
        Entry::Pair(k, v) if k == key => Some(v),
        _ => None,
    })
}

/// The index just after `key`'s pair.
fn after(map: &Map, key: &str) -> Option<usize> {
    map.iter()
        .position(|e| matches!(e, Entry::Pair(k, _) if k == key))
        .map(|at| at + 1)
}

fn same_option(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same(a, b),
        _ => false,
    }
}

/// Equal values, comments aside.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(a), Value::Map(b)) => same_map(a, b),
        (Value::List(a), Value::List(b)) => {
            let mut a = a.iter().filter(|v| !matches!(v, Value::Comment(_)));
            let mut b = b.iter().filter(|v| !matches!(v, Value::Comment(_)));
            loop {
                match (a.next(), b.next()) {
                    (None, None) => return true,
                    (Some(x), Some(y)) if same(x, y) => {}
                    _ => return false,
                }
            }
        }
        (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits() || a == b,
        _ => a == b,
    }
}

/// Equal maps: the same keys in the same order with the same values, comments aside.
fn same_map(a: &Map, b: &Map) -> bool {
    let (a, b) = (pairs(a), pairs(b));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
}

/// A map's pairs, comments left out.
fn pairs(map: &Map) -> Vec<(&String, &Value)> {
    map.iter()
        .filter_map(|e| match e {
            Entry::Pair(k, v) => Some((k, v)),
            Entry::Comment(_) => None,
        })
        .collect()
}

/// Who a file's key groups let in: per group, each entry's kind and
/// identifying fields (never the wrapped key `enc` or `created_at`),
/// sorted, so that re-wrapping or reordering changes nothing; with the
/// Shamir threshold.
#[derive(Debug, PartialEq, Eq)]
pub struct Recipients {
    threshold: usize,
    groups: Vec<Vec<String>>,
}

impl Recipients {
    /// The recipients of `groups` needing `threshold` of them.
    pub fn of(groups: &[Vec<KeyEntry>], threshold: usize) -> Recipients {
        let mut groups: Vec<Vec<String>> = groups
            .iter()
            .map(|group| {
                let mut ids: Vec<String> = group.iter().map(identity).collect();
                ids.sort();
                ids.dedup();
                ids
            })
            .collect();
        groups.sort();
        Recipients {
            threshold: if groups.len() > 1 { threshold } else { 0 },
            groups,
        }
    }
}

/// An entry's kind and the key it was wrapped for.
fn identity(entry: &KeyEntry) -> String {
    format!("{}\0{}", entry.kind, crate::metadata::key_identity(entry))
}

/// What a merge would do to the key groups, when it cannot just keep ours'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyGroupConflict {
    /// Theirs changed the recipients and ours did not: keeping ours' would drop it.
    ChangedByTheirs,
    /// Both sides changed the recipients, differently.
    ChangedByBoth,
}

impl fmt::Display for KeyGroupConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyGroupConflict::ChangedByTheirs => {
                "conflict in the key groups: theirs changed the recipients and ours did not, so merging the values would drop that change"
            }
            KeyGroupConflict::ChangedByBoth => {
                "conflict in the key groups: both sides changed the recipients, differently"
            }
        })
    }
}

/// Whether the merged file can keep ours' key groups: yes unless theirs
/// changed them (relative to `base`; with no base, any difference counts)
/// to something other than ours'.
pub fn key_groups_conflict(
    base: Option<&Recipients>,
    ours: &Recipients,
    theirs: &Recipients,
) -> Option<KeyGroupConflict> {
    if theirs == ours || base == Some(theirs) {
        return None;
    }
    Some(match base {
        Some(base) if base == ours => KeyGroupConflict::ChangedByTheirs,
        _ => KeyGroupConflict::ChangedByBoth,
    })
}

#[cfg(test)]
mod tests;
