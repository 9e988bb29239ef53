//! Fixed-string tests; the fixtures are byte-exact outputs of the reference.

use super::*;

/// A file the reference encrypted, with `--unencrypted-regex '^u_'`.
const ENCRYPTED: &str = r#"top = ENC[AES256_GCM,data:8w==,iv:Iy5ZJkTDQkSpUyXdf/5hdfMBP9lZlOfJbzg9/yR983k=,tag:rRrf3IUg3qJG/MjsB3joSg==,type:str]

; ENC[AES256_GCM,data:hX+WXedjCkw+i1s=,iv:Eqt0TKPtRWLYLSiGTkrFP0SB7KTtiiGho8Mg7xlLPp4=,tag:F06ccs0ysoxImLzzF73USg==,type:comment]
[db]
pass  = ENC[AES256_GCM,data:FOc/NTJw,iv:1eP2nzF5QCKQR1cM8Bo1YBaLdn6RNWSgVFi33HsxxuU=,tag:r/RbPzjCp2YJBeCAAHqOEA==,type:str]
; ENC[AES256_GCM,data:u0SUKA==,iv:VejZZ6chNsYkDEpz2wEEFmcLuX/13tiOPJ6YqOvzIwQ=,tag:zAZtYdsRAZjYS+foD8WgnA==,type:comment]
u_url = http://x/?a=b
u_q   = "  sp  "

[other]
u_k = `a#b`

[sops]
age__list_0__map_recipient = age1l7xg03u8xreexhtq46gsmf6523c3ny6eu08t7u84udgfvfauucvqy0rz6d
age__list_0__map_enc       = -----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAxZnp0b2F6QWhReS9DQ292\nWmdtN05nQWM5b2pMVlZBUTB2V1JmWkVYY0I4CjBBQ1JidGk2OCtzbWY5SGE1blgx\nWUwwVjFZVm9NdVZHQ1lJcE5ZVXdOdWsKLS0tIHNqYURjRitNcDhTTDh5L1ZlWmpm\nZDNjbXlMTjNXckM4akhjcTdXOFY1QU0KgC0NogXIWg6815Yr6JCVkhjdrQCJlLbj\nKk8RK9GpLiopTl314B8c78Hr3Zit4k4ilRi8sN+B/dPnM+c6k9jP8A==\n-----END AGE ENCRYPTED FILE-----\n
lastmodified               = 2026-11-26T08:01:17Z
mac                        = ENC[AES256_GCM,data:um41ovIKIsoc2QFKILLcJSeiilopVYD7u7u7sb1UDzmu/+D0johTT8QQ/SqXzLk1fmfEGBTMDWLvnlX17Yr5gOs8VkAR3hr++hPu0lFx2IFpPnV+C8NfSYUbaCy0A1+11ttnavSoqHrTWozY1JPX7RbRwqXKtp7qjInn8aSy2Ds=,iv:wXTzL4IVPLVMoor6Uv2KVFHLRr0WxYcLYfysAIj0yAY=,tag:5i+tiHKq/+3q+1mwgZGDJg==,type:str]
unencrypted_regex          = ^u_
version                    = 3.11.0
"#;

/// `sops decrypt` of a file with header, inline and multi-line comments,
/// a triple-quoted value and a continued line.
const DECRYPTED: &str = r#"; file header comment
; second header comment
# inline sec comment
[s]
; after multi
a = """multi
line"""
b = one two three
c = tick
d = y
e = has "inner" quotes
f = both' 'kinds
g = 
h = 
"#;

fn roundtrip(input: &str) -> String {
    let doc = parse(input.as_bytes()).unwrap();
    String::from_utf8(emit(&doc).unwrap()).unwrap()
}

fn str_pair(key: &str, value: &str) -> Entry {
    Entry::Pair(key.into(), Value::Str(value.into()))
}

fn comment(text: &str) -> Entry {
    Entry::Comment(Comment::new(text))
}

fn section(name: &str, items: Vec<Entry>) -> Entry {
    Entry::Pair(name.into(), Value::Map(items))
}

#[test]
fn reference_files_roundtrip() {
    assert_eq!(roundtrip(ENCRYPTED), ENCRYPTED);
    assert_eq!(roundtrip(DECRYPTED), DECRYPTED);
}

#[test]
fn metadata_is_a_flat_sops_section() {
    let doc = parse(ENCRYPTED.as_bytes()).unwrap();
    let Some(Entry::Pair(name, Value::Map(keys))) = doc.branches[0].last() else {
        panic!("no sops section");
    };
    assert_eq!(name, "sops");
    assert!(keys.contains(&str_pair("version", "3.11.0")));
}

#[test]
fn tree_follows_go_ini() {
    let input = "\u{feff}top = 1\n; one\n# two\n[s] ; inline\n; k\nk: v=w ; c\nq = 'x'\n\
                 r = `a;b` # gone\nt = \"\"\"l1\nl2\"\"\" ; after\nu = a \\\n  b\\\n c\n\
                 \"q k\" = 2\n- = auto\nk = again\n[DEFAULT]\n";
    let doc = parse(input.as_bytes()).unwrap();
    assert_eq!(
        doc.branches[0],
        vec![
            section("DEFAULT", vec![str_pair("top", "1")]),
            section(
                "s",
                vec![
                    comment("one\n# two\n; inline"),
                    str_pair("k", "again"),
                    str_pair("q", "x"),
                    str_pair("r", "a;b"),
                    str_pair("t", "l1\nl2"),
                    comment("after"),
                    str_pair("u", "a bc"),
                    str_pair("q k", "2"),
                    str_pair("#1", "auto"),
                ]
            ),
            section("DEFAULT", vec![]),
        ]
    );
}

#[test]
fn writer_aligns_quotes_and_spaces_sections() {
    let doc = Document::new(vec![vec![
        section("DEFAULT", vec![]),
        section(
            "s",
            vec![
                comment("sec\n# two"),
                str_pair("a", "x\ny"),
                comment("first"),
                comment("last wins"),
                str_pair("k=v", "has # hash"),
                str_pair("tick`", " padded "),
                str_pair("e", ""),
                Entry::Pair("f".into(), Value::Float(2.0)),
                str_pair("a", "replaced"),
            ],
        ),
        comment("top-level comments are dropped"),
        section("DEFAULT", vec![str_pair("d", "1")]),
        section("last", vec![]),
    ]]);
    let line = |key: &str, value: &str| format!("{key:<11} = {value}\n");
    let want = [
        "; sec\n# two\n[s]\n; last wins\n".to_string(),
        line("a", "replaced"),
        line("`k=v`", "`has # hash`"),
        line("\"\"\"tick`\"\"\"", "\" padded \""),
        line("e", ""),
        line("f", "2.0"),
        "\n[DEFAULT]\nd = 1\n\n[last]\n".to_string(),
    ]
    .concat();
    assert_eq!(String::from_utf8(emit(&doc).unwrap()).unwrap(), want);
}

#[test]
fn default_section_first_is_headless() {
    assert_eq!(roundtrip("a = 1\n[s]\nb = 2\n"), "a = 1\n\n[s]\nb = 2\n");
    assert_eq!(roundtrip("[s]\nb = 2\n"), "[s]\nb = 2\n");
    assert_eq!(roundtrip(""), "");
}

#[test]
fn errors_name_the_line_only() {
    let cases: [(&[u8], &str); 8] = [
        (b"[ok]\nsecret", "line 2"),
        (b"[unclosed\n", "line 1"),
        (b"[]\n", "line 1"),
        (b"\n= secret\n", "line 2"),
        (b"a = \"\"\"secret\nno end", "line 2"),
        (b"\"secret = 1\n", "line 1"),
        (b"\"\" = secret\n", "line 1"),
        (b"a = 1\nb = \x00\xff", "line 2"),
    ];
    for (input, line) in cases {
        let err = match parse(input) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted {input:?}"),
        };
        assert!(
            err.contains(line) && !err.contains("secret"),
            "{input:?}: {err}"
        );
    }
}

#[test]
fn unprintable_trees_are_refused() {
    let scalar = Document::new(vec![vec![str_pair("top", "v")]]);
    assert!(emit(&scalar).is_err());
    let unnamed = Document::new(vec![vec![section("", vec![])]]);
    assert!(emit(&unnamed).is_err());
    let empty_key = Document::new(vec![vec![section("s", vec![str_pair("", "v")])]]);
    assert!(emit(&empty_key).is_err());
}

#[test]
fn extracted_values_are_json_marshalled() {
    let list = Value::List(vec![Value::Int(1), Value::Str("a".into()), Value::Null]);
    assert_eq!(emit_value(&list).unwrap(), br#"[1,"a",null]"#);
    assert_eq!(emit_value(&Value::Float(1.5)).unwrap(), b"1.5");
}

#[test]
fn no_panic_on_mangled_input() {
    let source = DECRYPTED.as_bytes();
    for end in 0..source.len() {
        let _ = parse(&source[..end]);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2000 {
        let mut bytes = source.to_vec();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % bytes.len() as u64) as usize;
            let set = b"[]=:;#\"`'\\\n x";
            bytes[at] = set[(seed >> 40) as usize % set.len()];
        }
        if let Ok(doc) = parse(&bytes) {
            let _ = emit(&doc);
        }
    }
}
