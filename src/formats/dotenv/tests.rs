//! Fixed-string tests; the fixtures are byte-exact outputs of the reference.

use super::*;

/// A file the reference encrypted, with `--unencrypted-regex '^U_'`.
const ENCRYPTED: &str = r#"#ENC[AES256_GCM,data:q0hOVnAb+2zOSdpH,iv:yzhf5SWkMvP9mXwoBGTU40INeG9aXjDtMZkh6zGHgiQ=,tag:TdUwkLiFtZCGI/krnZQuiw==,type:comment]
DB_PASS=ENC[AES256_GCM,data:hGEhofg7,iv:PIVun1F+etMzjrV5LdOndimRuPPt9r/bOUnncO52GFM=,tag:6QrWxpssEEDnPxHS9JNuoA==,type:str]
U_URL=https://x/?a=b#frag
U_PAD=  padded  
MULTI=ENC[AES256_GCM,data:PjLZ,iv:gThANTm8aJNKU8E7BNvjFxJUGR82RHyJjnhk0mKcfgg=,tag:3EqTZqLvyCeSDt/tql9w6w==,type:str]
sops_age__list_0__map_enc=-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB1bFdNdmJkYUdhNzRJS1RN\nY01WKzBhbzZRQzB2NzBET0F6T0tROE5GMFFvCnd3TUQvNDVOSUpjc3ZwVDRGelBF\nRnQ1RzFsUWFqKzYveTZOQUN2cUdOSWsKLS0tIE1mMU1MYVVqS3AvamM2Sm9SZDJv\nNlRqcTd3SmhNODVkUkVDR3lsZUt5RkkKQuN8AsJXL6qA7RL5RGRqbFKNcCDoi7d5\nMvhbLpTsLrh5mZuFow7zGPhdybEGYgMAQKpW8CKDSG+fgH/H0ex8dA==\n-----END AGE ENCRYPTED FILE-----\n
sops_age__list_0__map_recipient=age1l7xg03u8xreexhtq46gsmf6523c3ny6eu08t7u84udgfvfauucvqy0rz6d
sops_lastmodified=2026-11-26T08:01:17Z
sops_mac=ENC[AES256_GCM,data:DlcsVRL9I+LD3FjMFSuR/zskw+4KgA5NUnGmBNcZJBNNBqRoPfjQzpZyZuMHVJyMIvV3b9uq9cXY84FntZLtkdCLS75Sbp3punuzGsYxQuQHjx0L0aIzlMMY4Qbpu8Jr17O/iFfdpM4Sn4Eu5erHTz6PASlYu5UuiujNu7NQxys=,iv:UQQ5xJL6Ws2yAE8N7i8CIV78kRBzY3VR1PB2gi9csYg=,tag:b6DaXKWisMuYkI0PxQ+lWQ==,type:str]
sops_unencrypted_regex=^U_
sops_version=3.11.0
"#;

fn roundtrip(input: &str) -> String {
    let doc = parse(input.as_bytes()).unwrap();
    String::from_utf8(emit(&doc).unwrap()).unwrap()
}

fn pair(key: &str, value: &str) -> Entry {
    Entry::Pair(key.into(), Value::Str(value.into()))
}

#[test]
fn reference_file_roundtrips_with_flat_metadata() {
    assert_eq!(roundtrip(ENCRYPTED), ENCRYPTED);
    let doc = parse(ENCRYPTED.as_bytes()).unwrap();
    assert_eq!(
        doc.branches[0][0],
        Entry::Comment(Comment::new(
            "ENC[AES256_GCM,data:q0hOVnAb+2zOSdpH,iv:yzhf5SWkMvP9mXwoBGTU40INeG9aXjDtMZkh6zGHgiQ=,\
         tag:TdUwkLiFtZCGI/krnZQuiw==,type:comment]"
        ))
    );
    assert!(doc.branches[0].contains(&pair("sops_version", "3.11.0")));
}

#[test]
fn lines_split_at_the_first_equals_untrimmed() {
    let input = "# c\nA= x = y \n\n#\n=v\nB=a\\nb\\\\n\nC=x\r\nD=\n";
    let doc = parse(input.as_bytes()).unwrap();
    assert_eq!(
        doc.branches[0],
        vec![
            Entry::Comment(Comment::new(" c")),
            pair("A", " x = y "),
            Entry::Comment(Comment::new("")),
            pair("", "v"),
            pair("B", "a\nb\\\n"),
            pair("C", "x\r"),
            pair("D", ""),
        ]
    );
    assert_eq!(roundtrip(input), input.replace("\n\n", "\n"));
}

#[test]
fn bad_lines_name_the_line_number_only() {
    let err = parse(b"A=1\n\nsecret-without-equals\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(parse(b" \n").is_err());
    let err = parse(b"A=1\nB=\xff\n").unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn non_strings_print_through_val_to_string() {
    let doc = Document::new(vec![vec![
        Entry::Pair("F".into(), Value::Float(3.0)),
        Entry::Pair("G".into(), Value::Float(1e-7)),
        Entry::Pair("I".into(), Value::Int(7)),
        Entry::Pair("B".into(), Value::Bool(false)),
        Entry::Pair("N".into(), Value::Null),
        Entry::Comment(Comment::new(" note")),
    ]]);
    assert_eq!(
        String::from_utf8(emit(&doc).unwrap()).unwrap(),
        "F=3.0\nG=1E-07\nI=7\nB=false\nN=<nil>\n# note\n"
    );
}

#[test]
fn complex_values_are_refused_naming_the_key() {
    let doc = Document::new(vec![vec![
        pair("A", "1"),
        Entry::Pair("nested".into(), Value::Map(vec![])),
    ]]);
    let err = emit(&doc).unwrap_err().to_string();
    assert!(err.contains("offending key nested"), "{err}");
    let list = Document::new(vec![vec![Entry::Pair("l".into(), Value::List(vec![]))]]);
    assert!(emit(&list).is_err());
}

#[test]
fn only_strings_can_be_extracted() {
    let err = emit_value(&Value::Float(1.5)).unwrap_err().to_string();
    assert!(err.ends_with("the dotenv store only supports emitting strings, got float64"));
    let err = emit_value(&Value::List(vec![])).unwrap_err().to_string();
    assert!(err.ends_with("got []interface {}"), "{err}");
    assert_eq!(emit_value(&Value::Str("x".into())).unwrap(), b"x");
}
