//! Fixed-string tests; the fixtures are byte-exact outputs of the reference.

use super::*;
use crate::formats::{EmitOptions, Format};
use crate::tree::{Comment, Entry};

/// A file the reference encrypted, with `--unencrypted-regex '^u_'`.
const ENCRYPTED: &str = r#"{
	"secret": "ENC[AES256_GCM,data:D9xIM8zK,iv:n0OCjMN+E6PCtHppfF5qHhLpFY7DRsxpbpJa775zzM0=,tag:oDsT8jdnwiz4vCGRcDn2UA==,type:str]",
	"list": [
		{
			"a": "ENC[AES256_GCM,data:qQ==,iv:VHBmBG+vm7KzmBoDDKQmwU+LVeJ9rK40TIDULsC+sFk=,tag:oZF/2K7ubcKwgxUcp2M9XA==,type:float]"
		},
		[]
	],
	"u_plain": "\u003c\u0026\u003e\u2028",
	"u_float": 1e-7,
	"u_empty": {},
	"sops": {
		"age": [
			{
				"recipient": "age1l7xg03u8xreexhtq46gsmf6523c3ny6eu08t7u84udgfvfauucvqy0rz6d",
				"enc": "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB6UGhOdm1oSzRTQXF6Q2Rq\nMG42Wks3aG9vQzk2VUZGQy9JRlo5TFlUZFhnCm5RSDI2OG5ReHg4V3hGZmxhL2Mv\nWWNubzQvVzBBUWQxUDZpaTFjYmJTVXcKLS0tIERDMTVYR2dvSXRTMTRVRGYwNEJR\nWGU5bmJrR1UxSnZoOTFSV25uSGJqcjAKC/94hoYzNrSyc2KaKrQnR2XAq5FtVGL+\n+uylgMYwZBFRmYg14N4rTjCkDUxh540yDgb41sRlGMyQROFnU6wM+A==\n-----END AGE ENCRYPTED FILE-----\n"
			}
		],
		"lastmodified": "2026-11-26T07:58:51Z",
		"mac": "ENC[AES256_GCM,data:RjHfWfLXAwVdhdgZx62jAJWdirJeXfCLjtt+EeDA/9mIo74H7S7J42Hya9zmalaRu23CN3mSdQV2iGn49HJpzQuaQr1LGmQIGWMfmVh6Ya/CFqb/Z9lU4of8H0Z8ho8l4YXAhGmd17nVF1Xzema9sobSYI+iCqjmbZRtgNw3nGk=,iv:wCEC+luuFfz42vEInUj1abDUgSArNjJUp0KooTZN5DE=,tag:WSgjFocJwjrUhguumEdCWg==,type:str]",
		"unencrypted_regex": "^u_",
		"version": "3.11.0"
	}
}
"#;

/// `sops decrypt` output of a fixture covering escapes, unicode, numbers,
/// nesting, empty containers and nulls.
const DECRYPTED: &str = r#"{
	"name": "tëst 😀",
	"u_html": "\u003cscript\u003e\u0026amp;\u003c/script\u003e",
	"quotes": "he said \"hi\" \\ back",
	"ctrl": "\u0001\u0002\u001b\u2028\u2029",
	"nested": {
		"list": [
			{
				"a": 1,
				"b": [
					1,
					2,
					{
						"c": null
					}
				]
			},
			[],
			{},
			"",
			null,
			true,
			false
		],
		"deep": {
			"x": {
				"y": {
					"z": "w"
				}
			}
		}
	},
	"empty": "",
	"u_nums": [
		0,
		-1,
		9223372036854776000,
		-9223372036854776000,
		1.25,
		0.000001,
		1e-7,
		999999900000000000000,
		1e+21,
		2.5e-300
	],
	"nums": [
		0,
		-1,
		123456789012,
		1.25,
		1e+100
	],
	"multi": "line1\nline2\n",
	"éè": "keyunicode"
}
"#;

fn roundtrip(input: &str) -> String {
    let doc = parse(input.as_bytes()).unwrap();
    String::from_utf8(
        emit(&doc, EmitOptions::default())
            .map(super::super::Printed::into_bytes)
            .unwrap(),
    )
    .unwrap()
}

fn pairs(input: &str) -> Vec<Entry> {
    let mut doc = parse(input.as_bytes()).unwrap();
    std::mem::take(&mut doc.branches[0])
}

fn pair(key: &str, value: Value) -> Entry {
    Entry::Pair(key.into(), value)
}

#[test]
fn reference_files_roundtrip() {
    assert_eq!(roundtrip(ENCRYPTED), ENCRYPTED);
    assert_eq!(roundtrip(DECRYPTED), DECRYPTED);
}

#[test]
fn metadata_is_an_ordinary_nested_map() {
    let entries = pairs(ENCRYPTED);
    let Some(Entry::Pair(key, Value::Map(sops))) = entries.last() else {
        panic!("no sops map");
    };
    assert_eq!(key, "sops");
    assert!(matches!(&sops[0], Entry::Pair(k, Value::List(_)) if k == "age"));
}

#[test]
fn numbers_normalize_as_sops_3_13() {
    let input = r#"{"i": 42, "neg": -0, "max": 9223372036854775807,
        "over": 9223372036854775808, "f": 1.0, "e": 1e2, "tiny": 1e-400}"#;
    assert_eq!(
        pairs(input),
        vec![
            pair("i", Value::Int(42)),
            pair("neg", Value::Int(0)),
            pair("max", Value::Int(i64::MAX)),
            pair("over", Value::Float(9223372036854775808.0)),
            pair("f", Value::Float(1.0)),
            pair("e", Value::Float(100.0)),
            pair("tiny", Value::Float(0.0)),
        ]
    );
    assert!(parse(br#"{"a": 1e400}"#).is_err());
}

#[test]
fn floats_print_as_go_encoding_json() {
    let input = r#"{"a": [1e21, 1e-7, 3.0, 0.1, -0.0, 1.5e300, 1e20, 0.000001, 2.5E-300]}"#;
    let expected = "{\n\t\"a\": [\n\t\t1e+21,\n\t\t1e-7,\n\t\t3,\n\t\t0.1,\n\t\t-0,\n\
                    \t\t1.5e+300,\n\t\t100000000000000000000,\n\t\t0.000001,\n\t\t2.5e-300\n\t]\n}\n";
    assert_eq!(roundtrip(input), expected);
}

#[test]
fn strings_escape_as_go_encoding_json() {
    let input = "{\"k<\": \"\\b\\f\\u0001\\u001f\\u007f\\t\\r\\n<>&\\u2028\\u2029\\\"\\\\\\/\u{e9}\u{1f600}\"}";
    let expected = "{\n\t\"k\\u003c\": \"\\b\\f\\u0001\\u001f\u{7f}\\t\\r\\n\\u003c\\u003e\\u0026\
                    \\u2028\\u2029\\\"\\\\/\u{e9}\u{1f600}\"\n}\n";
    assert_eq!(roundtrip(input), expected);
}

#[test]
fn strings_decode_as_go() {
    let input = b"{\"a\": \"\\ud83d\\ude00 \\udc00\\ud800x \xff\xe2\x82!\"}";
    let doc = parse(input).unwrap();
    let expected = "\u{1f600} \u{fffd}\u{fffd}x \u{fffd}\u{fffd}\u{fffd}!";
    assert_eq!(
        doc.branches[0],
        vec![pair("a", Value::Str(expected.into()))]
    );
}

#[test]
fn duplicates_are_kept_in_order() {
    let input = r#"{"d": 1, "d": {"x": 1, "x": 2}}"#;
    assert_eq!(
        roundtrip(input),
        "{\n\t\"d\": 1,\n\t\"d\": {\n\t\t\"x\": 1,\n\t\t\"x\": 2\n\t}\n}\n"
    );
}

/// sops 3.11's `json.Unmarshal` refuses anything after the top-level object;
/// rsops does too, naming where it starts.
#[test]
fn trailing_input_is_refused_with_its_position() {
    assert_eq!(roundtrip("{\"a\": 1}\n \t\r\n"), "{\n\t\"a\": 1\n}\n");
    for (input, at) in [
        (r#"{"d": 1} ] garbage"#, "line 1, column 10"),
        ("{\"a\": 1}\n{\"s3cr3t\": 2}\n", "line 2, column 1"),
        ("{}x", "line 1, column 3"),
        ("{\"a\": {}}}", "line 1, column 10"),
    ] {
        let err = parse(input.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("invalid json: unexpected data after the top-level object at {at}")
        );
    }
}

#[test]
fn truncated_input_is_refused_as_sops_3_11_refuses_it() {
    let err = parse(br#"{"a": 1, "b":"#).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("invalid json: unexpected end of input at line 1, column 14")
    );
    for bad in [
        r#"{"a""#,
        r#"{"a": 1, "b": [1, 2"#,
        r#"{"a": [{"b":"#,
        r#"{"a": 1,"#,
        r#"{"a": {"b":"#,
        r#"{"a": [{"b": 1"#,
        r#"{"a": nul"#,
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn malformed_input_is_refused_without_quoting_it() {
    for bad in [
        "",
        "  ",
        "[1]",
        "\"x\"",
        "1",
        "{\"a\":1,}",
        "{\"a\": 01}",
        "{\"a\" 1}",
        "{\"a\": 1 \"b\": 2}",
        "{\"a\": tru}",
        "{\"a\": \"x\ty\"}",
        "{\"a\": \"\\x\"}",
        "{\"a\": \"\\u12\"}",
        "{1: 2}",
        "{\"a\": -}",
        "{\"a\": 1.}",
        "{\"a\": 1e}",
        "{\"a\": [1,]}",
        "\u{feff}{}",
        "{\"secret\": s3cr3t}",
    ] {
        let err = parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }
    let err = parse(b"{\n  \"a\": x}").unwrap_err().to_string();
    assert!(err.contains("line 2, column 8"), "{err}");
}

#[test]
fn nesting_is_bounded() {
    let levels = decode::MAX_DEPTH - 1;
    let ok = format!("{}{{}}{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    let doc = parse(ok.as_bytes()).unwrap();
    assert!(emit(&doc, EmitOptions::default()).is_ok());
    let lists = format!("{{\"a\":{}{}}}", "[".repeat(levels), "]".repeat(levels));
    let doc = parse(lists.as_bytes()).unwrap();
    assert!(emit(&doc, EmitOptions::default()).is_ok());
    let deep = "[".repeat(decode::MAX_DEPTH + 1);
    assert!(parse(format!("{{\"a\":{deep}").as_bytes()).is_err());
    let deep = "{\"a\":".repeat(100_000);
    assert!(parse(deep.as_bytes()).is_err());
}

#[test]
fn no_panic_on_truncated_or_mangled_input() {
    let source = DECRYPTED.as_bytes();
    for end in 0..source.len() {
        let _ = parse(&source[..end]);
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        let mut bytes = source[..200].to_vec();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % bytes.len() as u64) as usize;
            bytes[at] = (seed >> 32) as u8;
        }
        let _ = parse(&bytes);
    }
}

#[test]
fn indent_option_uses_spaces() {
    let doc = parse(br#"{"a": {"b": [1, {}]}, "c": []}"#).unwrap();
    let four = emit(&doc, EmitOptions { indent: Some(4) })
        .map(super::super::Printed::into_bytes)
        .unwrap();
    let want = "{\n    \"a\": {\n        \"b\": [\n            1,\n            {}\n        ]\n    },\n    \"c\": []\n}\n";
    assert_eq!(String::from_utf8(four).unwrap(), want);
    let zero = emit(&doc, EmitOptions { indent: Some(0) })
        .map(super::super::Printed::into_bytes)
        .unwrap();
    assert_eq!(
        String::from_utf8(zero).unwrap(),
        "{\n\"a\": {\n\"b\": [\n1,\n{}\n]\n},\n\"c\": []\n}\n"
    );
}

#[test]
fn comments_are_dropped_and_go_types_marshal() {
    let doc = Document::new(vec![vec![
        Entry::Comment(Comment::new("top")),
        pair(
            "l",
            Value::List(vec![Value::Comment(Comment::new("c")), Value::Null]),
        ),
        pair("m", Value::Map(vec![Entry::Comment(Comment::new("only"))])),
        pair("t", Value::Time("2024-01-02T03:04:05.5+01:00".into())),
        pair("b", Value::Bytes(b"h\xffi\xe2\x82!".to_vec())),
        pair("x", Value::Bool(false)),
    ]]);
    let out = emit(&doc, EmitOptions::default())
        .map(super::super::Printed::into_bytes)
        .unwrap();
    let want =
        "{\n\t\"l\": [\n\t\tnull\n\t],\n\t\"m\": {},\n\t\"t\": \"2024-01-02T03:04:05.5+01:00\",\n\
                \t\"b\": \"h\\ufffdi\\ufffd\\ufffd!\",\n\t\"x\": false\n}\n";
    assert_eq!(String::from_utf8(out).unwrap(), want);
    assert_eq!(
        emit(&Document::new(vec![]), EmitOptions::default())
            .map(super::super::Printed::into_bytes)
            .unwrap(),
        b"{}\n"
    );
}

#[test]
fn non_finite_floats_are_refused_naming_the_key() {
    let doc = Document::new(vec![vec![pair(
        "outer",
        Value::Map(vec![pair(
            "inner",
            Value::List(vec![Value::Float(f64::NAN)]),
        )]),
    )]]);
    let err = emit(&doc, EmitOptions::default()).unwrap_err().to_string();
    assert!(err.contains("\"inner\""), "{err}");
}

#[test]
fn extracted_values_have_no_trailing_newline() {
    let list = Value::List(vec![
        Value::Map(vec![pair("a", Value::Int(1))]),
        Value::List(vec![]),
    ]);
    let out = emit_value(&list, EmitOptions::default()).unwrap();
    assert_eq!(out, b"[\n\t{\n\t\t\"a\": 1\n\t},\n\t[]\n]");
    assert_eq!(
        emit_value(&Value::Float(1e21), EmitOptions::default()).unwrap(),
        b"1e+21"
    );
    assert_eq!(
        emit_value(&Value::Bool(true), EmitOptions::default()).unwrap(),
        b"true"
    );
    let comment = Value::Comment(Comment::new("c"));
    assert_eq!(
        emit_value(&comment, EmitOptions::default()).unwrap(),
        b"{\n\t\"Value\": \"c\"\n}"
    );
}

#[test]
fn marshal_prints_go_structs_compactly() {
    let tree = Value::List(vec![
        Value::Map(vec![
            pair("k", Value::Float(0.5)),
            Entry::Comment(Comment::new("c")),
        ]),
        Value::Comment(Comment::new("d")),
        Value::Str("<".into()),
    ]);
    assert_eq!(
        marshal(&tree, "ini").unwrap(),
        br#"[[{"Key":"k","Value":0.5},{"Key":{"Value":"c"},"Value":null}],{"Value":"d"},"\u003c"]"#
    );
}

#[test]
fn binary_envelopes_parse_through_format() {
    let doc = Format::Binary.parse(b"{\"data\": \"x\\u0000y\"}").unwrap();
    assert_eq!(
        doc.branches[0],
        vec![pair("data", Value::Str("x\0y".into()))]
    );
}

/// Reading in parts cut at any `,`, or at several, gives what reading
/// whole gives, errors included.
#[test]
fn parts_read_like_whole() {
    let texts: [&[u8]; 7] = [
        ENCRYPTED.as_bytes(),
        b"{\n\t\"a\": 1,\n\t\"b\": {\n\t\t\"c\": [1,\n2],\n\t\t\"d\": \"x,\\\"y\"\n\t},\n\t\"e\": null\n}\n",
        b"{\"a\": 1, \"a\": 2, \"b\": [{\"c\": 1}, {\"d\": 2}]}",
        b"{\"a\": 1,\n\"b\": 2,\n\"c\": }",
        b"{\"a\": 1,\n\"b\": 2}\n,\n\"c\"",
        b"{\"a\": \"1,\n\"b\": 2}",
        b"[1,\n\"b\"]",
    ];
    for text in texts {
        let whole = Decoder::new(text).top_level();
        let commas: Vec<usize> = (0..text.len()).filter(|&i| text[i] == b',').collect();
        for &c in &commas {
            assert_eq!(parse_in_parts(text, &[c]), whole, "cut at {c}");
        }
        for pair in commas.windows(2) {
            assert_eq!(parse_in_parts(text, pair), whole, "cuts at {pair:?}");
        }
        assert_eq!(parse_in_parts(text, &cuts(text, 3)), whole);
    }
    let large = format!(
        "{{\n{}\n}}\n",
        (0..2000)
            .map(|i| format!("\t\"k{i}\": {{\n\t\t\"v\": \"x\"\n\t}}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let found = cuts(large.as_bytes(), 4);
    assert_eq!(found.len(), 3);
    assert_eq!(
        parse_in_parts(large.as_bytes(), &found),
        Decoder::new(large.as_bytes()).top_level()
    );
}

/// A top-level object printed in runs of entries prints as it does whole,
/// whatever the runs (comments between them included), and the first
/// unprintable number in document order is the one reported.
#[test]
fn printing_in_parts_matches_whole() {
    let doc = parse(ENCRYPTED.as_bytes()).expect("parses");
    let mut map = doc.branches[0].clone();
    map.insert(1, Entry::Comment(Comment::new("skipped")));
    map.push(Entry::Comment(Comment::new("last")));
    let whole = {
        let mut w = Indented::new(b"\t");
        w.map(&map, 0).expect("prints");
        w.out
    };
    for threads in 1..=map.len() + 1 {
        let runs: Vec<&[Entry]> = map.chunks(map.len().div_ceil(threads)).collect();
        let mut out = b"{".to_vec();
        let mut first = true;
        for run in runs {
            let mut w = Indented::new(b"\t");
            w.pairs(run, 0, first).expect("prints");
            first &= !run.iter().any(|e| matches!(e, Entry::Pair(..)));
            out.extend(w.out);
        }
        out.extend_from_slice(b"\n}");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole)
        );
    }
    let joined = |parts: Vec<zeroize::Zeroizing<Vec<u8>>>| {
        super::super::Printed::from_parts(parts).into_bytes()
    };
    assert_eq!(joined(emit_in_parts(&map, b"\t").expect("prints")), whole);
    let comments = vec![
        Entry::Comment(Comment::new("a")),
        Entry::Comment(Comment::new("b")),
    ];
    assert_eq!(
        joined(emit_in_parts(&comments, b"\t").expect("prints")),
        b"{}"
    );
    let bad = vec![
        Entry::Pair("a".into(), Value::Float(f64::NAN)),
        Entry::Pair("b".into(), Value::Float(f64::INFINITY)),
    ];
    assert_eq!(
        emit_in_parts(&bad, b"\t").unwrap_err().key.as_deref(),
        Some("a")
    );
}

/// A large file read in pieces gives what reading it whole gives, or asks
/// to be read whole: when no cut is found, a cut is not at the top level,
/// the file is not an object, or a read fails.
#[test]
fn pieces_read_like_whole_or_not_at_all() {
    let section = |i: usize| {
        format!("\t\"s{i}\": {{\n\t\t\"v\": \"ENC[x]\",\n\t\t\"n\": {i},\n\t\t\"l\": [\n\t\t\t\"a\",\n\t\t\t{{}}\n\t\t]\n\t}}")
    };
    let text = format!(
        "{{\n{}\n}}\n",
        (0..30_000).map(section).collect::<Vec<_>>().join(",\n")
    );
    assert!(text.len() > 4 * PIECE);
    let bytes = text.as_bytes();
    let read_at = |at: u64, buf: &mut [u8]| {
        let at = at as usize;
        match bytes.get(at..at + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    };
    let pieces = Pieces::plan(bytes.len(), &read_at)
        .and_then(|p| p.parse_all())
        .expect("read in pieces");
    assert_eq!(pieces, parse(bytes).expect("parses"));

    // A broken value in the middle: not in pieces (reading whole reports it).
    let broken = text.replacen("\"n\": 15000,", "\"n\": 15000,,", 1);
    let read_broken = |at: u64, buf: &mut [u8]| {
        buf.copy_from_slice(&broken.as_bytes()[at as usize..at as usize + buf.len()]);
        Ok(())
    };
    assert!(Pieces::plan(broken.len(), &read_broken)
        .and_then(|p| p.parse_all())
        .is_none());
    assert!(parse(broken.as_bytes()).is_err());

    // Keys indented like the top level's but one level down: the cuts are
    // not confirmed.
    let nested = format!(
        "{{\n\"all\": {{\n{}\n}}\n}}\n",
        (0..30_000).map(section).collect::<Vec<_>>().join(",\n")
    )
    .replace("\n\t\"s", "\n\"s");
    let read_nested = |at: u64, buf: &mut [u8]| {
        buf.copy_from_slice(&nested.as_bytes()[at as usize..at as usize + buf.len()]);
        Ok(())
    };
    assert!(Pieces::plan(nested.len(), &read_nested)
        .and_then(|p| p.parse_all())
        .is_none());
    assert!(parse(nested.as_bytes()).is_ok());

    // One line: nowhere to cut. A failing read: read whole.
    let compact = text.replace(['\n', '\t'], "");
    let read_compact = |at: u64, buf: &mut [u8]| {
        buf.copy_from_slice(&compact.as_bytes()[at as usize..at as usize + buf.len()]);
        Ok(())
    };
    assert!(Pieces::plan(compact.len(), &read_compact)
        .and_then(|p| p.parse_all())
        .is_none());
    let failing = |_: u64, _: &mut [u8]| Err(std::io::ErrorKind::Other.into());
    assert!(Pieces::plan(bytes.len(), &failing)
        .and_then(|p| p.parse_all())
        .is_none());
}
