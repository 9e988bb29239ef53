//! `rsops set` / `unset` against the reference: the same change made by
//! both programs decrypts to the same bytes (with either program), values
//! the change did not touch keep their ciphertext, refusals exit as the
//! reference does, and a write that fails or is killed never damages the file.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{run, Sandbox};

/// A sandbox whose key file holds key 0, and the environment both programs need.
struct Setup {
    sandbox: Sandbox,
    keys: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let sandbox = Sandbox::new(1);
        let keys = sandbox.key_file(&[0]);
        Setup { sandbox, keys }
    }

    fn sops(&self, args: &[&str]) -> Output {
        run(
            self.sandbox
                .sops()
                .env("SOPS_AGE_KEY_FILE", &self.keys)
                .args(args),
            b"",
        )
    }

    fn rsops(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(
            self.sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", &self.keys)
                .args(args),
            stdin,
        )
    }

    /// `plain` encrypted by the reference under key 0, written as `name`.
    fn encrypted(&self, name: &str, plain: &str) -> PathBuf {
        let path = self.sandbox.write(name, plain.as_bytes());
        let recipient = self.sandbox.keys[0].recipient.clone();
        let out = self.sops(&["encrypt", "-i", "--age", &recipient, &s(&path)]);
        assert!(out.status.success(), "{}", stderr(&out));
        path
    }

    /// A copy of `file` under another name (same extension).
    fn copy(&self, file: &Path, name: &str) -> PathBuf {
        let to = self.sandbox.path(name);
        std::fs::copy(file, &to).expect("copy");
        to
    }

    fn decrypt_with_both(&self, file: &Path) -> Vec<u8> {
        let reference = self.sops(&["decrypt", &s(file)]);
        let ours = self.rsops(&["decrypt", &s(file)], b"");
        assert!(reference.status.success(), "{}", stderr(&reference));
        assert_eq!(ours.stdout, reference.stdout, "{}", stderr(&ours));
        reference.stdout
    }
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `ENC[...]` strings of a file, in order, keyed by the line's key.
fn enc_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .expect("read")
        .lines()
        .filter(|l| l.contains("ENC[AES256_GCM") && !l.trim_start().starts_with("mac:"))
        .map(str::to_string)
        .collect()
}

const PLAIN: &str = "\
# a comment
db:
    user: admin
    password: hunter2
    port: 5432
list:
    - one
    - two
    - one
ratio: 0.5
on: true
";

/// The same `set` by both programs: same plaintext after, readable by both.
#[test]
fn set_matches_the_reference() {
    let t = Setup::new();
    let cases: &[(&str, &str)] = &[
        (r#"["db"]["password"]"#, r#""correct horse""#),
        (r#"["db"]["port"]"#, "6543"),
        (
            r#"["new"]"#,
            r#"{"nested": {"k": [1, 2.5, true, null, "x"]}}"#,
        ),
        (r#"["list"][1]"#, r#""deux""#),
        (r#"["list"][9]"#, r#""appended""#),
        (r#"["on"]"#, "false"),
        (r#"["db"]["user"]["deeper"]"#, r#""scalar becomes a map""#),
    ];
    for (i, (index, value)) in cases.iter().enumerate() {
        let original = t.encrypted(&format!("case{i}.yaml"), PLAIN);
        let ours = t.copy(&original, &format!("case{i}-rsops.yaml"));
        let out = t.sops(&["set", &s(&original), index, value]);
        assert!(out.status.success(), "{index}: {}", stderr(&out));
        let out = t.rsops(&["set", &s(&ours), index, value], b"");
        assert!(out.status.success(), "{index}: {}", stderr(&out));
        assert_eq!(
            t.decrypt_with_both(&ours),
            t.decrypt_with_both(&original),
            "{index} {value}"
        );
    }
}

/// Every value the change did not touch keeps its `ENC[...]` byte for byte;
/// the changed one (and only it, besides the MAC) differs.
#[test]
fn set_keeps_untouched_ciphertext() {
    let t = Setup::new();
    let mut plain = String::from("values:\n");
    for i in 0..1000 {
        plain.push_str(&format!("    key{i}: value-{i}\n"));
    }
    let file = t.encrypted("many.yaml", &plain);
    let before = enc_lines(&file);
    let out = t.rsops(
        &["set", &s(&file), r#"["values"]["key500"]"#, r#""changed""#],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let after = enc_lines(&file);
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert_eq!(changed.len(), 1, "only key500 changes: {changed:?}");
    assert!(after[changed[0]].contains("key500:"));
    let plain_after = t.decrypt_with_both(&file);
    assert!(String::from_utf8_lossy(&plain_after).contains("key500: changed\n"));

    // Equal list items keep their own ciphertexts (the reference would
    // give both the IV of the last one).
    let list = t.encrypted("list.yaml", PLAIN);
    let before = enc_lines(&list);
    let out = t.rsops(&["set", &s(&list), r#"["ratio"]"#, "0.75"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let after = enc_lines(&list);
    let differing = (0..before.len()).filter(|&i| before[i] != after[i]).count();
    assert_eq!(differing, 1, "{before:#?}\n{after:#?}");
}

/// Files under every rule and in every format: `set` and `unset` by both
/// programs give the same plaintext, readable by both. (rsops changes a
/// file whose rule selects by key without decrypting it into a tree, and
/// one with a comment rule by decrypting it.)
#[test]
fn set_and_unset_under_every_rule_and_format() {
    let t = Setup::new();
    let recipient = t.sandbox.keys[0].recipient.clone();
    let yaml = "# top\nname: alice\nport: 5432\n# sops:enc\ntoken: abc\nplain_unencrypted: 7\nmore:\n    - x\n    # in list\n    - 2\n";
    let cases: &[(&str, &str, &[&str])] = &[
        ("yaml", yaml, &[]),
        ("yaml", yaml, &["--mac-only-encrypted"]),
        ("yaml", yaml, &["--encrypted-regex", "^(token|more)$"]),
        ("yaml", yaml, &["--encrypted-comment-regex", "sops:enc"]),
        ("yaml", yaml, &["--unencrypted-comment-regex", "sops:enc"]),
        (
            "json",
            r#"{"name": "alice", "port": 5432, "more": ["x", 2]}"#,
            &[],
        ),
        ("env", "NAME=alice\nPORT=5432\n", &[]),
        ("ini", "[db]\nname = alice\nport = 5432\n", &[]),
    ];
    for (i, (ext, plain, flags)) in cases.iter().enumerate() {
        let (set_index, unset_index) = match *ext {
            "env" => (r#"["NAME"]"#, r#"["PORT"]"#),
            "ini" => (r#"["db"]["name"]"#, r#"["db"]["port"]"#),
            _ => (r#"["name"]"#, r#"["port"]"#),
        };
        let original = t.sandbox.write(&format!("rule{i}.{ext}"), plain.as_bytes());
        let mut args = vec!["encrypt", "-i", "--age", &recipient];
        args.extend_from_slice(flags);
        let path = s(&original);
        args.push(&path);
        // The reference (3.11) takes these rules only from a config: rsops
        // writes those files.
        let config_only = [
            "--mac-only-encrypted",
            "--encrypted-comment-regex",
            "--unencrypted-comment-regex",
        ];
        let out = if flags.iter().any(|f| config_only.contains(f)) {
            t.rsops(&args, b"")
        } else {
            t.sops(&args)
        };
        assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
        let ours = t.copy(&original, &format!("rule{i}-rsops.{ext}"));
        for (program_args, change) in [
            (vec!["set", set_index, r#""bob""#], "set"),
            (vec!["unset", unset_index], "unset"),
        ] {
            let mut theirs = program_args.clone();
            theirs.insert(1, &path);
            let out = t.sops(&theirs);
            assert!(out.status.success(), "{flags:?} {change}: {}", stderr(&out));
            let mine = s(&ours);
            let mut args = program_args.clone();
            args.insert(1, &mine);
            let out = t.rsops(&args, b"");
            assert!(out.status.success(), "{flags:?} {change}: {}", stderr(&out));
            assert_eq!(
                String::from_utf8_lossy(&t.decrypt_with_both(&ours)),
                String::from_utf8_lossy(&t.decrypt_with_both(&original)),
                "{ext} {flags:?} {change}"
            );
        }
    }
}

/// The reference changes a file rsops wrote, and the other way round.
#[test]
fn set_and_unset_interoperate_both_ways() {
    let t = Setup::new();
    let recipient = t.sandbox.keys[0].recipient.clone();
    let plain = t
        .sandbox
        .write("both.json", br#"{"a": "x", "b": {"c": [1, 2]}, "d": 1}"#);
    let out = t.rsops(&["encrypt", "-i", "--age", &recipient, &s(&plain)], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.sops(&["set", &s(&plain), r#"["a"]"#, r#""from sops""#]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.rsops(&["unset", &s(&plain), r#"["b"]["c"][0]"#], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.sops(&["unset", &s(&plain), r#"["d"]"#]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.rsops(&["set", &s(&plain), r#"["e"]"#, "true"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&t.decrypt_with_both(&plain)),
        "{\n\t\"a\": \"from sops\",\n\t\"b\": {\n\t\t\"c\": [\n\t\t\t2\n\t\t]\n\t},\n\t\"e\": true\n}\n"
    );
}

/// `--value-file`, `--value-stdin`, `--idempotent` and the legacy `--set`.
#[test]
fn value_sources_and_idempotence() {
    let t = Setup::new();
    let file = t.encrypted("v.yaml", PLAIN);
    let value = t.sandbox.write("value.json", br#""from a file""#);
    let out = t.rsops(
        &["set", "--value-file", &s(&file), r#"["a"]"#, &s(&value)],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.rsops(
        &["set", "--value-stdin", &s(&file), r#"["b"]"#],
        b"\"from stdin\"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.rsops(&["--set", r#"["c"] "legacy""#, &s(&file)], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let plain = String::from_utf8(t.decrypt_with_both(&file)).unwrap();
    assert!(
        plain.ends_with("a: from a file\nb: from stdin\nc: legacy\n"),
        "{plain}"
    );

    let before = std::fs::read(&file).unwrap();
    let out = t.rsops(
        &["set", "--idempotent", &s(&file), r#"["c"]"#, r#""legacy""#],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing written");
    let out = t.rsops(&["unset", "--idempotent", &s(&file), r#"["nope"]"#], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing written");
}

/// Refusals exit as the reference does and leave the file as it was.
#[test]
fn refusals_match_the_reference() {
    let t = Setup::new();
    let file = t.encrypted("r.yaml", PLAIN);
    let env = t.encrypted("r.env", "A=1\n");
    let missing = t.sandbox.path("missing.yaml");
    let f = s(&file);
    let e = s(&env);
    let m = s(&missing);
    let cases: Vec<Vec<&str>> = vec![
        vec!["unset", &f, r#"["zz"]"#],
        vec!["unset", &f, r#"["list"][9]"#],
        vec!["unset", &f, r#"["db"]["port"]["x"]"#],
        vec!["unset", &f, "bad"],
        vec!["set", &f, "bad", "1"],
        vec!["set", &f, r#"["a"]"#, "nojson"],
        vec!["set", &f, r#"["a"]"#],
        vec!["unset", &f],
        vec!["set", &m, r#"["a"]"#, "1"],
        vec!["unset", &m, r#"["a"]"#],
        vec!["set", &e, r#"["B"]"#, r#"{"x": 1}"#],
    ];
    for args in cases {
        let before = std::fs::read(&file).unwrap();
        let reference = t.sops(&args);
        std::fs::write(&file, &before).unwrap();
        let ours = t.rsops(&args, b"");
        assert_eq!(
            ours.status.code(),
            reference.status.code(),
            "{args:?}\nreference: {}\nrsops: {}",
            stderr(&reference),
            stderr(&ours)
        );
        assert!(!ours.status.success(), "{args:?}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
        assert!(!String::from_utf8_lossy(&ours.stderr).contains("hunter2"));
    }
}

/// A write that fails (here: the file size limit, as a full disk would)
/// leaves the original byte-identical and no temporary file behind; the
/// mode of the file is kept by a successful write.
#[test]
fn failed_write_leaves_the_original() {
    use std::os::unix::fs::PermissionsExt;
    let t = Setup::new();
    let mut plain = String::new();
    for i in 0..200 {
        plain.push_str(&format!("key{i}: value-{i}\n"));
    }
    let file = t.encrypted("big.yaml", &plain);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec \"$0\" set '{}' '[\"key1\"]' '\"changed\"'",
        s(&file)
    );
    let out = run(
        t.sandbox
            .command(Path::new("/bin/sh"))
            .env("SOPS_AGE_KEY_FILE", &t.keys)
            .arg("-c")
            .arg(script)
            .arg(crate::util::rsops_bin()),
        b"",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(t.sandbox.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".rsops-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = t.rsops(&["set", &s(&file), r#"["key1"]"#, r#""changed""#], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

/// `kill -9` in the middle of a large `set` leaves the old file or the new
/// one, and either decrypts.
#[test]
fn killed_set_leaves_a_whole_file() {
    let t = Setup::new();
    let mut plain = String::new();
    for i in 0..20_000 {
        plain.push_str(&format!("key{i}: value-{i}\n"));
    }
    let file = t.encrypted("huge.yaml", &plain);
    for delay_ms in [5u64, 20, 60, 120] {
        let mut child = t
            .sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &t.keys)
            .args(["set", &s(&file), r#"["key7"]"#])
            .arg(format!("\"{delay_ms}\""))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().ok();
        child.wait().ok();
        let out = t.rsops(&["decrypt", "--extract", r#"["key7"]"#, &s(&file)], b"");
        assert!(
            out.status.success(),
            "after {delay_ms} ms: {}",
            stderr(&out)
        );
    }
}

/// Concurrent `set`s on one file each land: none is lost, and the file
/// always passes its MAC.
#[test]
fn concurrent_sets_are_serialized() {
    let t = Setup::new();
    let file = t.encrypted("shared.yaml", "start: 0\n");
    let children: Vec<_> = (0..6)
        .map(|i| {
            t.sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", &t.keys)
                .args(["set", &s(&file), &format!("[\"k{i}\"]"), &format!("{i}")])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let plain = String::from_utf8(t.decrypt_with_both(&file)).unwrap();
    for i in 0..6 {
        assert!(
            plain.contains(&format!("k{i}: {i}\n")),
            "k{i} lost:\n{plain}"
        );
    }
}
