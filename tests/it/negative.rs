//! Bad input: each case fails with a clear message, the reference's exit
//! code, and nothing at all on standard output.

use std::path::PathBuf;

use crate::util::{assert_same, assert_same_success, fixture, run, Sandbox};

struct Case {
    sandbox: Sandbox,
    encrypted: PathBuf,
    key_file: PathBuf,
}

fn encrypted_yaml() -> Case {
    let sandbox = Sandbox::new(2);
    let recipient = sandbox.keys[0].recipient.clone();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &recipient],
        "secret.enc.yaml",
    );
    let key_file = sandbox.key_file(&[0]);
    Case {
        sandbox,
        encrypted,
        key_file,
    }
}

/// Runs rsops and the reference on `file`; both must fail with `code`, rsops
/// with an empty stdout and a stderr containing `needle`.
#[track_caller]
fn expect_failure(
    case: &Case,
    file: &PathBuf,
    key_file: &PathBuf,
    extra: &[&str],
    code: i32,
    needle: &str,
) {
    let reference = run(
        case.sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", key_file)
            .arg("decrypt")
            .args(extra)
            .arg(file),
        b"",
    );
    assert_eq!(
        reference.status.code(),
        Some(code),
        "reference exit code for {needle}"
    );
    let ours = run(
        case.sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", key_file)
            .arg("decrypt")
            .args(extra)
            .arg(file),
        b"",
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(
        ours.status.code(),
        Some(code),
        "rsops exit code; stderr: {stderr}"
    );
    assert!(ours.stdout.is_empty(), "rsops printed plaintext on failure");
    assert!(
        stderr.contains(needle),
        "rsops stderr lacks {needle:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "rsops panicked: {stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "rsops leaked a secret: {stderr}"
    );
}

fn rewrite(case: &Case, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(&case.encrypted).unwrap();
    case.sandbox.write(name, edit(&text).as_bytes())
}

#[test]
fn wrong_key() {
    let case = encrypted_yaml();
    let wrong = case.sandbox.key_file(&[1]);
    expect_failure(
        &case,
        &case.encrypted,
        &wrong,
        &[],
        128,
        &case.sandbox.keys[0].recipient,
    );
}

#[test]
fn no_key() {
    let case = encrypted_yaml();
    let none = case.sandbox.write("empty-keys.txt", b"");
    expect_failure(
        &case,
        &case.encrypted,
        &none,
        &[],
        128,
        "no age identity found",
    );
}

#[test]
fn tampered_value() {
    let case = encrypted_yaml();
    let tampered = rewrite(&case, "tampered.enc.yaml", |t| {
        let start =
            t.find("host: ENC[AES256_GCM,data:").unwrap() + "host: ENC[AES256_GCM,data:".len();
        let mut bytes = t.as_bytes().to_vec();
        bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    });
    expect_failure(
        &case,
        &tampered,
        &case.key_file,
        &[],
        25,
        "could not decrypt the value at `database:host`: authentication failed",
    );
}

#[test]
fn swapped_values() {
    let case = encrypted_yaml();
    let swapped = rewrite(&case, "swapped.enc.yaml", |t| {
        let value = |key: &str| {
            let line = t.lines().find(|l| l.trim_start().starts_with(key)).unwrap();
            line.split_once(": ").unwrap().1.to_string()
        };
        let (host, port) = (value("host:"), value("port:"));
        t.replace(&host, "@HOST@")
            .replace(&port, &host)
            .replace("@HOST@", &port)
    });
    expect_failure(
        &case,
        &swapped,
        &case.key_file,
        &[],
        25,
        "could not decrypt the value at `database:host`: authentication failed",
    );
}

#[test]
fn removed_value() {
    let case = encrypted_yaml();
    let removed = rewrite(&case, "removed.enc.yaml", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("host:"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    expect_failure(&case, &removed, &case.key_file, &[], 51, "MAC mismatch");
}

#[test]
fn tampered_mac() {
    let case = encrypted_yaml();
    let tampered = rewrite(&case, "mac.enc.yaml", |t| {
        t.replace("mac: ENC[AES256_GCM,data:", "mac: ENC[AES256_GCM,data:AAAA")
    });
    expect_failure(
        &case,
        &tampered,
        &case.key_file,
        &[],
        51,
        "cannot decrypt the MAC: authentication failed",
    );
}

#[test]
fn ignore_mac_decrypts_modified_file() {
    let case = encrypted_yaml();
    let removed = rewrite(&case, "removed.enc.yaml", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("host:"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    // Byte for byte what the reference prints for the modified file.
    let (reference, ours) =
        case.sandbox
            .both(&case.key_file, &["decrypt", "--ignore-mac"], &removed);
    assert_same_success("--ignore-mac on a modified file", &reference, &ours);
    assert!(String::from_utf8_lossy(&ours.stdout).contains("hunter2"));
}

#[test]
fn malformed_enc_value() {
    let case = encrypted_yaml();
    let bad = rewrite(&case, "malformed.enc.yaml", |t| {
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("host:"))
            .unwrap();
        t.replace(
            line,
            "    host: ENC[AES256_GCM,data:!!!,iv:x,tag:y,type:str]",
        )
    });
    expect_failure(
        &case,
        &bad,
        &case.key_file,
        &[],
        25,
        "could not decrypt the value at `database:host`: the data field of the ENC[...] value is not valid base64",
    );
}

#[test]
fn truncated_file() {
    let case = encrypted_yaml();
    let text = std::fs::read(&case.encrypted).unwrap();
    let truncated = case
        .sandbox
        .write("truncated.enc.yaml", &text[..text.len() / 3]);
    expect_failure(
        &case,
        &truncated,
        &case.key_file,
        &[],
        1,
        "sops metadata not found",
    );
}

#[test]
fn not_a_sops_file() {
    let case = encrypted_yaml();
    let plain = case.sandbox.write("plain.yaml", b"a: 1\n");
    expect_failure(
        &case,
        &plain,
        &case.key_file,
        &[],
        1,
        "sops metadata not found",
    );
}

#[test]
fn invalid_json() {
    let case = encrypted_yaml();
    // The needle is the message, not the file name (`bad.json` alone
    // would match "json").
    let bad = case.sandbox.write("bad.json", b"{\"a\": x}");
    expect_failure(
        &case,
        &bad,
        &case.key_file,
        &[],
        1,
        "invalid json: unexpected character at line 1, column 7",
    );
}

#[test]
fn missing_file() {
    let case = encrypted_yaml();
    let missing = case.sandbox.path("missing.yaml");
    expect_failure(
        &case,
        &missing,
        &case.key_file,
        &[],
        100,
        "missing.yaml: no such file",
    );
}

#[test]
fn shamir_one_group_short() {
    let sandbox = Sandbox::new(3);
    let mut config = String::from("creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n");
    for key in &sandbox.keys {
        config.push_str(&format!("      - age:\n          - {}\n", key.recipient));
    }
    sandbox.write(".sops.yaml", config.as_bytes());
    let encrypted = sandbox.sops_encrypt(&fixture("basic.env"), &[], "secret.enc.env");
    let key_file = sandbox.key_file(&[1]);
    let case = Case {
        sandbox,
        encrypted: encrypted.clone(),
        key_file: key_file.clone(),
    };
    expect_failure(
        &case,
        &encrypted,
        &key_file,
        &[],
        128,
        "1 of 2 needed key groups",
    );
}

#[test]
fn unknown_input_type_is_rejected() {
    let case = encrypted_yaml();
    let ours = run(
        case.sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &case.key_file)
            .args(["decrypt", "--input-type", "toml"])
            .arg(&case.encrypted),
        b"",
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(ours.status.code(), Some(1));
    assert!(ours.stdout.is_empty());
    assert!(stderr.contains("unknown --input-type `toml`"), "{stderr}");
}

/// The plaintext values of `basic.yaml` that the reference encrypts.
const BASIC_SECRETS: &[&str] = &[
    "hunter2",
    "s3cr3t",
    "db.example.com",
    "значение",
    "line one",
    "folded text",
];

/// The longest run of bytes in `text` for which `pred` holds.
fn longest_run(text: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    text.split(|&b| !pred(b))
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// Asserts that `output` shows no hash (hex or base64) and no secret.
#[track_caller]
fn assert_no_hash_or_secret(what: &str, output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    for stream in [&output.stdout, &output.stderr] {
        // Any digest worth brute-forcing is at least 128 bits: 32 hex
        // characters, or 22 of base64.
        let hex = longest_run(stream, |b| b.is_ascii_hexdigit());
        assert!(hex < 32, "{what}: a {hex}-character hex run: {stderr}");
        let base64 = longest_run(stream, |b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        assert!(
            base64 < 22,
            "{what}: a {base64}-character base64 run: {stderr}"
        );
        let text = String::from_utf8_lossy(stream);
        for secret in BASIC_SECRETS {
            assert!(!text.contains(secret), "{what}: {secret} leaked: {stderr}");
        }
    }
}

/// A MAC is an unsalted SHA-512 of the plaintext: whoever can edit the file
/// and read the logs could test guesses of a short secret against it. The
/// reference prints both MACs on a mismatch; rsops prints neither.
#[test]
fn mac_mismatch_shows_no_mac_and_no_plaintext() {
    let case = encrypted_yaml();
    let edited = rewrite(&case, "edited.enc.yaml", |t| {
        t.replace(
            "plain_key_unencrypted: not secret",
            "plain_key_unencrypted: not secreT",
        )
    });
    let removed = rewrite(&case, "removed.enc.yaml", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("password:"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    for file in [&edited, &removed] {
        expect_failure(&case, file, &case.key_file, &[], 51, "MAC mismatch");
        for command in [&["decrypt"][..], &["exec-env"], &["exec-file"]] {
            let mut cmd = case.sandbox.rsops();
            cmd.env("SOPS_AGE_KEY_FILE", &case.key_file)
                .args(command)
                .arg(file);
            if command != ["decrypt"] {
                cmd.arg("true");
            }
            let ours = run(&mut cmd, b"");
            let what = format!("{command:?} {}", file.display());
            assert_eq!(ours.status.code(), Some(51), "{what}");
            assert_no_hash_or_secret(&what, &ours);
            let stderr = String::from_utf8_lossy(&ours.stderr);
            assert!(stderr.contains("--ignore-mac"), "{what}: {stderr}");
        }
    }
}

/// sops 3.11 refuses anything after the top-level JSON object (`json.Unmarshal`
/// of the whole file: "invalid character … after top-level value", exit 1);
/// rsops too, naming the file and where the extra data starts.
#[test]
fn json_with_trailing_data_is_refused() {
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.json"),
        &["--age", &recipient],
        "secret.enc.json",
    );
    let key_file = sandbox.key_file(&[0]);
    let text = std::fs::read_to_string(&encrypted).unwrap();
    let lines = text.lines().count();
    let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &encrypted);
    assert_same_success("intact", &reference, &ours);
    for (name, tail) in [
        ("garbage.enc.json", "garbage\n"),
        (
            "second.enc.json",
            "{\"extra\": \"ENC[AES256_GCM,data:AA==]\"}\n",
        ),
        ("bracket.enc.json", "]"),
    ] {
        let file = sandbox.write(name, format!("{text}{tail}").as_bytes());
        let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &file);
        assert_same(name, &reference, &ours);
        assert_eq!(ours.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&ours.stderr);
        assert!(
            stderr.contains(name)
                && stderr.contains(&format!(
                    "unexpected data after the top-level object at line {}, column 1",
                    lines + 1
                )),
            "{name}: {stderr}"
        );
    }
    // Whitespace after the object is fine for both.
    let spaced = sandbox.write("spaced.enc.json", format!("{text}\n \t\r\n").as_bytes());
    let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &spaced);
    assert_same("trailing whitespace", &reference, &ours);
    assert!(ours.status.success());
}

#[test]
fn truncated_json_is_refused_as_the_reference_refuses_it() {
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.json"),
        &["--age", &recipient],
        "secret.enc.json",
    );
    let key_file = sandbox.key_file(&[0]);
    let text = std::fs::read_to_string(&encrypted).unwrap();
    // Cut inside the values and inside the metadata, after a `:` and mid-array.
    for cut in [text.len() / 3, text.len() / 2, text.len() - 3] {
        // Right after a key's `": `, where a value should start.
        let cut = text[..cut].rfind("\": ").map_or(cut, |i| i + 3);
        let name = format!("cut{cut}.enc.json");
        let file = sandbox.write(&name, &text.as_bytes()[..cut]);
        let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &file);
        assert_eq!(reference.status.code(), Some(1), "{name}");
        assert_eq!(ours.status.code(), Some(1), "{name}");
        assert!(ours.stdout.is_empty(), "{name}: partial plaintext");
        let stderr = String::from_utf8_lossy(&ours.stderr);
        assert!(
            stderr.contains("unexpected end of input"),
            "{name}: {stderr}"
        );
    }
}

/// The reference parses `sops.version` as a semantic version before it
/// decrypts anything (`blang/semver`), so a file without one fails with
/// exit code 1 and "Version string empty"; rsops refuses the same files.
#[test]
fn sops_version_must_be_a_semantic_version() {
    let case = encrypted_yaml();
    let text = std::fs::read_to_string(&case.encrypted).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("version:"))
        .unwrap()
        .to_string();
    let with_version = |name: &str, replacement: &str| {
        case.sandbox
            .write(name, text.replace(&line, replacement).as_bytes())
    };
    for (name, replacement, why) in [
        ("missing.enc.yaml", "", "Version string empty"),
        (
            "empty.enc.yaml",
            "    version: \"\"",
            "Version string empty",
        ),
        (
            "garbage.enc.yaml",
            "    version: garbage",
            "No Major.Minor.Patch elements found",
        ),
        (
            "short.enc.yaml",
            "    version: \"3.11\"",
            "No Major.Minor.Patch elements found",
        ),
        (
            "zero.enc.yaml",
            "    version: 3.011.0",
            "Minor number must not contain leading zeroes",
        ),
    ] {
        let file = with_version(name, replacement);
        let (reference, ours) = case.sandbox.both(&case.key_file, &["decrypt"], &file);
        assert_same(name, &reference, &ours);
        assert_eq!(ours.status.code(), Some(1), "{name}");
        let (theirs, stderr) = (
            String::from_utf8_lossy(&reference.stderr),
            String::from_utf8_lossy(&ours.stderr),
        );
        assert!(theirs.contains(why), "{name}: reference said {theirs}");
        assert!(
            stderr.contains(why) && stderr.contains("`version`"),
            "{name}: {stderr}"
        );
    }
    // What the reference accepts: a leading `v`, pre-releases, sops 1.x.
    for (name, replacement) in [
        ("v.enc.yaml", "    version: v3.11.0"),
        ("pre.enc.yaml", "    version: 3.11.0-rc.1+build.7"),
        ("one.enc.yaml", "    version: \"1.14\""),
    ] {
        let file = with_version(name, replacement);
        let (reference, ours) = case.sandbox.both(&case.key_file, &["decrypt"], &file);
        assert_same(name, &reference, &ours);
        assert!(ours.status.success(), "{name}");
    }
}

/// `field` with the unused low bits of its last character set: Go's
/// `base64.StdEncoding` still decodes it, to the same bytes.
fn with_padding_bits_set(field: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let padding = field.len() - field.trim_end_matches('=').len();
    let mask = match padding {
        1 => 0b11,
        2 => 0b1111,
        _ => return field.to_string(),
    };
    let mut bytes = field.as_bytes().to_vec();
    let last = field.len() - padding - 1;
    let index = ALPHABET.iter().position(|&c| c == bytes[last]).unwrap();
    bytes[last] = ALPHABET[index | mask];
    String::from_utf8(bytes).unwrap()
}

/// Rewrites every padded `data`, `iv` and `tag` field of every `ENC[...]`
/// value (the MAC's included) with `edit`.
fn rewrite_enc_fields(text: &str, edit: impl Fn(&str) -> String) -> String {
    let pattern = regex::Regex::new(r"(data|iv|tag):([A-Za-z0-9+/]+=+)").unwrap();
    pattern
        .replace_all(text, |caps: &regex::Captures| {
            format!("{}:{}", &caps[1], edit(&caps[2]))
        })
        .into_owned()
}

/// Non-zero padding bits are accepted by the reference (Go's lenient
/// `base64.StdEncoding`) and by rsops; base64 that is really invalid is
/// refused by both with exit code 25.
#[test]
fn base64_padding_bits_are_ignored_as_in_go() {
    let case = encrypted_yaml();
    let text = std::fs::read_to_string(&case.encrypted).unwrap();
    let loose = rewrite_enc_fields(&text, with_padding_bits_set);
    assert_ne!(loose, text);
    let file = case.sandbox.write("loose.enc.yaml", loose.as_bytes());
    let (reference, ours) = case.sandbox.both(&case.key_file, &["decrypt"], &file);
    assert_same("non-canonical padding", &reference, &ours);
    assert!(ours.status.success());

    for (name, edit) in [
        (
            "unpadded.enc.yaml",
            (|f: &str| f.trim_end_matches('=').to_string()) as fn(&str) -> String,
        ),
        ("overpadded.enc.yaml", |f: &str| format!("{f}=")),
        ("foreign.enc.yaml", |f: &str| f.replacen('=', "-", 1)),
    ] {
        // Only the values' fields, so the failure is the value's, not the MAC's.
        let body_end = text.find("\nsops:").unwrap();
        let bad = format!(
            "{}{}",
            rewrite_enc_fields(&text[..body_end], edit),
            &text[body_end..]
        );
        let file = case.sandbox.write(name, bad.as_bytes());
        expect_failure(&case, &file, &case.key_file, &[], 25, "not valid base64");
    }
}

/// A tree dotenv cannot hold fails when printed, after decryption: exit
/// code 4, as the reference ("Error dumping file"), naming the key only.
#[test]
fn dotenv_output_of_nested_data_fails_with_code_4() {
    let case = encrypted_yaml();
    for args in [
        &["decrypt", "--output-type", "dotenv"][..],
        &[
            "decrypt",
            "--output-type",
            "dotenv",
            "--extract",
            "[\"tokens\"]",
        ],
        &["decrypt", "--output-type", "ini"],
    ] {
        let (reference, ours) = case.sandbox.both(&case.key_file, args, &case.encrypted);
        assert_same(&format!("{args:?}"), &reference, &ours);
        assert_eq!(ours.status.code(), Some(4), "{args:?}");
        assert_no_hash_or_secret(&format!("{args:?}"), &ours);
    }
    let ours = run(
        case.sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &case.key_file)
            .args(["decrypt", "--output-type", "dotenv"])
            .arg(&case.encrypted),
        b"",
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr.contains("cannot use complex value in dotenv file; offending key database"),
        "{stderr}"
    );
    // exec-file prints the plaintext the same way, and fails the same way.
    for tool in [case.sandbox.sops(), case.sandbox.rsops()] {
        let mut tool = tool;
        let output = run(
            tool.env("SOPS_AGE_KEY_FILE", &case.key_file)
                .args(["exec-file", "--output-type", "dotenv"])
                .arg(&case.encrypted)
                .arg("cat {}"),
            b"",
        );
        assert_eq!(output.status.code(), Some(4), "{tool:?}");
        assert!(output.stdout.is_empty());
    }
}
