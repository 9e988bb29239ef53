//! Round trips against output of the reference `sops` (v3.11.0).

use super::{emit, emit_value, parse};
use crate::formats::EmitOptions;
use crate::tree::{Comment, Entry, Value};

fn roundtrip(text: &str) -> String {
    let doc = parse(text.as_bytes()).expect("parses");
    String::from_utf8(
        emit(&doc, EmitOptions::default())
            .map(super::super::Printed::into_bytes)
            .expect("emits"),
    )
    .expect("utf-8")
}

// Files the reference writes (encrypted files under every encryption rule
// and key layout, and `sops decrypt` output) are checked to print back byte
// for byte in the integration suite (`tests/it/interop.rs`, `check_fixture`),
// which has the reference binary to write them.

#[test]
fn canonical_output_roundtrips() {
    let text = "# top\na: 1\n# between\nb:\n    # head of c\n    c: 2\n    # foot of c\nd:\n    - x\n    # between items\n    - \"y\"\n    # foot list\ne: {}\nf: []\n# end\n";
    assert_eq!(roundtrip(text), text);
}

#[test]
fn plain_scalars_resolve_like_go_yaml() {
    let doc = parse(
        b"a: 0x1F\nb: 017\nc: 1_000\nd: 1e6\ne: yes\nf: ~\ng: 2024-01-02\nh: '1'\ni: 09\nj: .inf\n",
    )
    .expect("parses");
    let values: Vec<&Value> = doc.branches[0]
        .iter()
        .filter_map(|e| match e {
            Entry::Pair(_, v) => Some(v),
            Entry::Comment(_) => None,
        })
        .collect();
    assert_eq!(values[0], &Value::Int(31));
    assert_eq!(values[1], &Value::Int(15));
    assert_eq!(values[2], &Value::Int(1000));
    assert_eq!(values[3], &Value::Float(1e6));
    assert_eq!(values[4], &Value::Str("yes".into()));
    assert_eq!(values[5], &Value::Null);
    assert_eq!(values[6], &Value::Time("2024-01-02T00:00:00Z".into()));
    assert_eq!(values[7], &Value::Str("1".into()));
    assert_eq!(values[8], &Value::Float(9.0));
    assert_eq!(values[9], &Value::Float(f64::INFINITY));
}

#[test]
fn comments_are_placed_like_the_reference() {
    // `a: 1 # x` is the value's line comment (inline); `b: # y` is the key's.
    let doc = parse(b"a: 1 # x\nb: # y\n  c: 2\n").expect("parses");
    let top = &doc.branches[0];
    assert_eq!(
        top[0],
        Entry::Comment(Comment {
            text: " x".into(),
            inline: true
        })
    );
    assert_eq!(top[2], Entry::Comment(Comment::new(" y")));
    // The reference prints inline comments after the value.
    assert_eq!(roundtrip("a: 1 # x\n"), "a: 1 # x\n");
}

#[test]
fn errors_name_lines_not_values() {
    for bad in [
        "a: 1\na: 2\n",
        "1: x\n",
        "- a\n",
        "just a scalar\n",
        "# only a comment\n",
    ] {
        let err = parse(bad.as_bytes()).expect_err(bad).to_string();
        assert!(!err.contains('x'), "{err}");
    }
    assert!(
        parse(b"a: 1\n---\na: 1\na: 2\n").is_ok(),
        "only the first document is checked"
    );
}

#[test]
fn strings_get_go_yaml_styles() {
    let text = "a: \"123\"\nb: 'yes'\nc: \"\"\nd: ': x'\ne: \"tab\\there\"\nf: |-\n    x\n    y\ng: \"\\U0001F600\"\nh: {}\ni: []\n";
    assert_eq!(roundtrip(text), text.replace("'yes'", "\"yes\""));
}

#[test]
fn emit_value_uses_default_indent() {
    let v = Value::List(vec![Value::Map(vec![Entry::Pair(
        "k".into(),
        Value::Float(3.0),
    )])]);
    let out = emit_value(&v, EmitOptions { indent: Some(2) }).expect("emits");
    assert_eq!(String::from_utf8(out).expect("utf-8"), "- k: 3\n");
    let out = emit_value(&Value::Str("x".into()), EmitOptions::default()).expect("emits");
    assert_eq!(out, b"x\n");
}

#[test]
fn deep_nesting_is_an_error() {
    let deep = "[".repeat(5000);
    assert!(parse(deep.as_bytes()).is_err());
}

#[test]
fn block_scalar_headers() {
    let doc = parse(b"a: |4+\n\nb: |4-\n\n    lead\nc: >\n  x\n  y\n\n  z\nd: \"q\\\n  r\"\n")
        .expect("parses");
    let values: Vec<&Value> = doc.branches[0]
        .iter()
        .filter_map(|e| match e {
            Entry::Pair(_, v) => Some(v),
            Entry::Comment(_) => None,
        })
        .collect();
    assert_eq!(values[0], &Value::Str("\n".into()));
    assert_eq!(values[1], &Value::Str("\nlead".into()));
    assert_eq!(values[2], &Value::Str("x y\nz\n".into()));
    assert_eq!(values[3], &Value::Str("qr".into()));
}

#[test]
fn invalid_utf8_prints_as_binary() {
    let data = b"binary \x00\x01\xff content\nwith lines\n".to_vec();
    let doc = crate::tree::Document::new(vec![vec![Entry::Pair(
        "data".into(),
        Value::Bytes(data.clone()),
    )]]);
    let out = emit(&doc, EmitOptions::default())
        .map(super::super::Printed::into_bytes)
        .expect("emits");
    let text = "data: !!binary YmluYXJ5IAAB/yBjb250ZW50CndpdGggbGluZXMK\n";
    assert_eq!(String::from_utf8(out).expect("utf-8"), text);
    let back = parse(text.as_bytes()).expect("parses");
    assert_eq!(
        back.branches[0][0],
        Entry::Pair("data".into(), Value::Bytes(data))
    );
    let out = emit_value(&Value::Bytes(vec![0xff; 60]), EmitOptions::default()).expect("emits");
    let long = "!!binary |\n    ".to_string() + &"/".repeat(70) + "\n    " + &"/".repeat(10) + "\n";
    assert_eq!(String::from_utf8(out).expect("utf-8"), long);
    let text = parse(b"a: !!binary aGk=\n").expect("parses");
    assert_eq!(
        text.branches[0][0],
        Entry::Pair("a".into(), Value::Str("hi".into()))
    );
}

#[test]
fn plain_scalars_split_at_indicators() {
    let doc = parse(b"k: abcdefgh:ijklmnop qrstuvwxyz\t0123456789\n  and more\nl: [a:b, c]\n")
        .expect("parses");
    assert_eq!(
        doc.branches[0][0],
        Entry::Pair(
            "k".into(),
            Value::Str("abcdefgh:ijklmnop qrstuvwxyz\t0123456789 and more".into())
        )
    );
    assert!(parse(b"k: abcdefghijklmnopqrstuvwxyz: x\n").is_err());
}

#[test]
fn no_input_prefix_panics() {
    let text = "%YAML 1.2\n%TAG !e! tag:example.com,2000:\n--- # c\na: &x {b: [1, \"q\\u00e9\\\n  r\", 'it''s'], ? c : d}\ne: *x\nf: !!binary aGk=\ng: |2-\n   x\n  # not\nh: >+\n  y\n\n- ü: ,\n...\n";
    for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        let _ = parse(&text.as_bytes()[..end]);
    }
}

/// Found by fuzzing: a NUL inside a quoted scalar made the scanner spin forever.
#[test]
fn control_characters_are_refused_not_looped_on() {
    for input in [&b"\"\0"[..], b"a: \"x\0y\"\n", b"a: b\x07\n", b"'\0"] {
        let error = super::parse(input).unwrap_err().to_string();
        assert!(
            error.contains("control characters are not allowed"),
            "{error}"
        );
    }
    assert!(super::parse(b"a: \"tab\there\"\r\n").is_ok());
}

/// A root mapping without comments of its own prints in runs of entries
/// exactly as it prints whole, at every cut (see `emit_parts`).
#[test]
fn printing_in_parts_matches_whole() {
    let long_key = "k".repeat(200);
    let mut texts = vec![
        "a: 1\nb: two\nc: \"\"\nd: ~\ne: {}\nf: []\ng: 1.5\nh: true\n".to_string(),
        "a: |\n  kept\n\nb: |+\n  keep\n\n\nc: |-\n  strip\nd: x\n".to_string(),
        "a:\n  # head\n  b: 1 # line\n  # foot\nc:\n  - x # item\n  # between\n  - y\n  # end\nd: 2\n"
            .to_string(),
        "a: ' leading'\nb: 'trailing '\nc: \"multi\\nline\"\nd: \"tab\\there\"\ne: '#'\nf: '- x'\n"
            .to_string(),
        format!("{long_key}: 1\nb:\n  {long_key}: 2\nc: 3\n"),
        "a:\n- 1\n- - 2\n  - 3\n- k: v\n  l: w\nb:\n  c:\n    d: {}\n".to_string(),
        "a: 2001-12-14t21:59:43.10-05:00\nb: !!binary aGVsbG8=\nc: 0x10\nd: 'null'\n".to_string(),
    ];
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for dir in [fixtures.clone(), fixtures.join("getsops")] {
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                texts.push(std::fs::read_to_string(&path).expect("fixture"));
            }
        }
    }
    let mut checked = 0;
    for text in &texts {
        let doc = parse(text.as_bytes()).expect("parses");
        for branch in &doc.branches {
            if branch.iter().any(|e| matches!(e, Entry::Comment(_))) {
                continue;
            }
            for indent in [2, 4] {
                let whole = super::emit::emit_documents(&[super::node::mapping(branch)], indent, 0);
                for cut in 1..branch.len() {
                    let parts = vec![&branch[..cut], &branch[cut..]];
                    assert_eq!(
                        String::from_utf8_lossy(&super::emit_parts(parts, indent).into_bytes()),
                        String::from_utf8_lossy(&whole),
                        "cut {cut} of {text:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50, "{checked} cuts checked");
}
