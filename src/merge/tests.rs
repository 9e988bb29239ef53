use super::*;
use crate::formats::{EmitOptions, Format};

fn yaml(text: &str) -> Document {
    Format::Yaml.parse(text.as_bytes()).expect("test YAML")
}

fn show(doc: &Document) -> String {
    String::from_utf8(Format::Yaml.emit(doc, EmitOptions::default()).unwrap()).unwrap()
}

fn merged(base: Option<&str>, ours: &str, theirs: &str) -> String {
    let base = base.map(yaml);
    match merge(base.as_ref(), &yaml(ours), &yaml(theirs)) {
        Ok(doc) => show(&doc),
        Err(conflicts) => panic!("unexpected conflicts: {conflicts:?}"),
    }
}

fn conflicts(base: Option<&str>, ours: &str, theirs: &str) -> Vec<String> {
    let base = base.map(yaml);
    match merge(base.as_ref(), &yaml(ours), &yaml(theirs)) {
        Ok(doc) => panic!("expected conflicts, merged into {}", show(&doc)),
        Err(conflicts) => conflicts.iter().map(ToString::to_string).collect(),
    }
}

const BASE: &str = "a: 1\nb: 2\ndb:\n    user: app\n    password: old\n";

#[test]
fn each_side_takes_the_other_sides_change() {
    let ours = "a: 10\nb: 2\ndb:\n    user: app\n    password: old\n";
    let theirs = "a: 1\nb: 2\ndb:\n    user: app\n    password: new\n";
    assert_eq!(
        merged(Some(BASE), ours, theirs),
        "a: 10\nb: 2\ndb:\n    user: app\n    password: new\n"
    );
}

#[test]
fn the_same_change_on_both_sides_is_no_conflict() {
    let both = "a: 1\nb: 3\ndb:\n    user: app\n    password: old\n";
    assert_eq!(merged(Some(BASE), both, both), both);
}

#[test]
fn different_changes_to_one_key_conflict_by_path_without_values() {
    let ours = "a: 1\nb: 2\ndb:\n    user: app\n    password: s3cr3t-ours\n";
    let theirs = "a: 1\nb: 2\ndb:\n    user: app\n    password: s3cr3t-theirs\n";
    let found = conflicts(Some(BASE), ours, theirs);
    assert_eq!(
        found,
        ["conflict at db:password: changed differently on both sides"]
    );
    let base = yaml(BASE);
    let err = merge(Some(&base), &yaml(ours), &yaml(theirs)).unwrap_err();
    assert_eq!(err[0].path, ["db", "password"]);
    assert!(!format!("{err:?}").contains("s3cr3t"));
}

#[test]
fn additions_go_after_their_predecessor_in_theirs() {
    let ours = "a: 1\nz: 26\nb: 2\ndb:\n    user: app\n    password: old\n";
    let theirs = "a: 1\nb: 2\nc: 3\nd: 4\ndb:\n    user: app\n    host: h\n    password: old\n";
    assert_eq!(
        merged(Some(BASE), ours, theirs),
        "a: 1\nz: 26\nb: 2\nc: 3\nd: 4\ndb:\n    user: app\n    host: h\n    password: old\n"
    );
    // Without a predecessor kept by the merge, an addition is appended.
    let theirs = "first: 0\na: 1\nb: 2\ndb:\n    user: app\n    password: old\n";
    assert_eq!(
        merged(Some(BASE), BASE, theirs),
        "a: 1\nb: 2\ndb:\n    user: app\n    password: old\nfirst: 0\n"
    );
}

#[test]
fn deletions_on_one_side_are_taken() {
    let ours = "a: 1\ndb:\n    user: app\n    password: old\n";
    let theirs = "a: 1\nb: 2\ndb:\n    password: old\n";
    assert_eq!(
        merged(Some(BASE), ours, theirs),
        "a: 1\ndb:\n    password: old\n"
    );
    // Both deleting the same key is the same change.
    assert_eq!(merged(Some(BASE), ours, ours), ours);
}

#[test]
fn deleting_what_the_other_side_changed_conflicts() {
    let ours = "a: 1\ndb:\n    user: app\n    password: old\n";
    let theirs = "a: 1\nb: 20\ndb:\n    user: app\n    password: old\n";
    assert_eq!(
        conflicts(Some(BASE), ours, theirs),
        ["conflict at b: deleted by ours, changed by theirs"]
    );
    assert_eq!(
        conflicts(Some(BASE), theirs, ours),
        ["conflict at b: changed by ours, deleted by theirs"]
    );
    // A whole map deleted by one side and changed inside by the other.
    let theirs = "a: 1\nb: 2\ndb:\n    user: app\n    password: new\n";
    let ours = "a: 1\nb: 2\n";
    assert_eq!(
        conflicts(Some(BASE), ours, theirs),
        ["conflict at db: deleted by ours, changed by theirs"]
    );
}

#[test]
fn every_conflict_is_reported() {
    let ours = "a: 11\nb: 22\ndb:\n    user: x\n    password: old\n";
    let theirs = "a: 12\nb: 23\ndb:\n    user: y\n    password: new\n";
    assert_eq!(
        conflicts(Some(BASE), ours, theirs),
        [
            "conflict at a: changed differently on both sides",
            "conflict at b: changed differently on both sides",
            "conflict at db:user: changed differently on both sides",
        ]
    );
}

#[test]
fn ours_comments_stay_and_comment_changes_never_conflict() {
    let base = "# head\na: 1\nb: 2 # inline\nlist:\n    - x\n    - z\n";
    let ours =
        "# head, ours\na: 1\n# about b\nb: 2 # inline\nlist:\n    - x\n    # ours\n    - z\n";
    let theirs = "# head, theirs\na: 5\nb: 2\nlist:\n    # theirs\n    - x\n    - z\n";
    let doc = merge(Some(&yaml(base)), &yaml(ours), &yaml(theirs)).unwrap();
    assert_eq!(
        show(&doc),
        "# head, ours\na: 5\n# about b\nb: 2 # inline\nlist:\n    - x\n    # ours\n    - z\n"
    );
    // Comment-only changes by theirs leave ours exactly as it was.
    let theirs = "# other\na: 1\nb: 2\nlist:\n    - x\n    - z\n";
    let ours_doc = yaml(ours);
    let doc = merge(Some(&yaml(base)), &ours_doc, &yaml(theirs)).unwrap();
    assert_eq!(doc, ours_doc);
}

#[test]
fn a_deleted_pair_takes_its_inline_comment() {
    let base = "a: 1\nb: 2\nc: 3\n";
    let ours = "a: 1\nb: 2 # about b\nc: 3 # about c\n";
    let theirs = "a: 1\nc: 3\n";
    assert_eq!(merged(Some(base), ours, theirs), "a: 1\nc: 3 # about c\n");
}

#[test]
fn lists_are_whole_values() {
    let base = "l:\n    - 1\n    - 2\n";
    let ours = "l:\n    - 1\n    - 2\n    - 3\n";
    let theirs = "l:\n    - 0\n    - 1\n    - 2\n";
    assert_eq!(
        conflicts(Some(base), ours, theirs),
        ["conflict at l: changed differently on both sides"]
    );
    assert_eq!(merged(Some(base), base, theirs), theirs);
    assert_eq!(merged(Some(base), ours, ours), ours);
    // Lists of maps too.
    let base = "l:\n    - k: 1\n";
    let ours = "l:\n    - k: 2\n";
    let theirs = "l:\n    - k: 3\n";
    assert_eq!(
        conflicts(Some(base), ours, theirs),
        ["conflict at l: changed differently on both sides"]
    );
}

#[test]
fn values_of_different_types_are_different() {
    let base = "a: 1\n";
    assert_eq!(
        conflicts(Some(base), "a: '1'\n", "a: 1.0\n"),
        ["conflict at a: changed differently on both sides"]
    );
    // A scalar turned into a map on one side is that side's change.
    assert_eq!(merged(Some(base), base, "a:\n    b: 1\n"), "a:\n    b: 1\n");
}

#[test]
fn without_a_base_the_merge_is_two_way() {
    let ours = "a: 1\nb: 2\nm:\n    x: 1\n";
    let theirs = "a: 1\nc: 3\nm:\n    w: 2\n";
    assert_eq!(
        merged(None, ours, theirs),
        "a: 1\nc: 3\nb: 2\nm:\n    x: 1\n    w: 2\n"
    );
    assert_eq!(
        conflicts(None, "a: 1\n", "a: 2\n"),
        ["conflict at a: added on both sides with different values"]
    );
}

#[test]
fn multi_document_files_merge_document_by_document() {
    let base = "a: 1\n---\nb: 1\n";
    let ours = "a: 2\n---\nb: 1\n";
    let theirs = "a: 1\n---\nb: 2\n";
    assert_eq!(merged(Some(base), ours, theirs), "a: 2\n---\nb: 2\n");
    assert_eq!(
        conflicts(Some(base), "a: 1\n---\nb: 3\n", theirs),
        ["conflict at document 2, b: changed differently on both sides"]
    );
    assert_eq!(
        conflicts(Some(base), ours, "a: 1\n"),
        ["conflict in the number of documents: ours has 2, theirs 1, the base 2"]
    );
}

fn entry(kind: &str, fields: &[(&str, &str)]) -> KeyEntry {
    KeyEntry {
        kind: kind.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        maps: Vec::new(),
    }
}

#[test]
fn key_groups_compare_by_recipient_not_by_wrapped_key() {
    let age = |r: &str, enc: &str| entry("age", &[("recipient", r), ("enc", enc)]);
    let vault = |key: &str, enc: &str| {
        entry(
            "hc_vault",
            &[
                ("vault_address", "https://v"),
                ("engine_path", "transit"),
                ("key_name", key),
                ("created_at", "now"),
                ("enc", enc),
            ],
        )
    };
    let base = Recipients::of(&[vec![age("A", "1"), vault("k", "2")]], 0);
    let rewrapped = Recipients::of(&[vec![vault("k", "9"), age("A", "8")]], 0);
    assert_eq!(base, rewrapped);
    let added = Recipients::of(&[vec![age("A", "1"), age("B", "3"), vault("k", "2")]], 0);
    let other_key = Recipients::of(&[vec![age("A", "1"), vault("k2", "2")]], 0);
    assert_ne!(base, other_key);

    assert_eq!(key_groups_conflict(Some(&base), &base, &rewrapped), None);
    // Ours' change is kept: the merge writes ours' groups.
    assert_eq!(key_groups_conflict(Some(&base), &added, &base), None);
    assert_eq!(
        key_groups_conflict(Some(&base), &rewrapped, &added),
        Some(KeyGroupConflict::ChangedByTheirs)
    );
    // The same change on both sides.
    assert_eq!(key_groups_conflict(Some(&base), &added, &added), None);
    assert_eq!(
        key_groups_conflict(Some(&base), &other_key, &added),
        Some(KeyGroupConflict::ChangedByBoth)
    );
    assert_eq!(
        key_groups_conflict(None, &base, &added),
        Some(KeyGroupConflict::ChangedByBoth)
    );
    let pgp = |fp: &str| Recipients::of(&[vec![entry("pgp", &[("fp", fp)])]], 0);
    assert_eq!(pgp("ab cd"), pgp("ABCD"));
}
