//! Files large enough that rsops reads, decrypts and prints them on every
//! core (past 256 KiB and 16k nodes): the reference's files decrypt to its
//! bytes, rsops' files decrypt with the reference, `set` changes what the
//! reference's does, and a tampered value in the middle fails as there.
//! The documents mix what the parallel paths must not get wrong: comments
//! in every position, block scalars, quoted scalars over several lines,
//! lists, empty values and non-ASCII keys.

use std::path::{Path, PathBuf};

use crate::util::{assert_same, assert_same_exit, assert_same_success, masked, run, Sandbox};

/// One top-level section of the YAML document; `commented` adds comments
/// between top-level keys, which keep rsops from printing in parts.
fn yaml_section(i: usize, commented: bool) -> String {
    let mut s = String::new();
    if commented && i % 7 == 0 {
        s.push_str(&format!("# section {i} follows\n"));
    }
    s.push_str(&format!("section_{i:04}:\n"));
    s.push_str(&format!("    token: tok-{i}-abcdefghijklmnopqrstuvwxyz\n"));
    s.push_str(&format!("    port: {}\n", 1000 + i));
    s.push_str(&format!("    ratio: {}.25\n", i));
    s.push_str("    enabled: true\n");
    s.push_str("    empty: \"\"\n");
    s.push_str("    nothing: null\n");
    s.push_str(&format!("    # a comment inside section {i}\n"));
    s.push_str(&format!(
        "    note: \"a quoted value\n        over two lines {i}\"\n"
    ));
    s.push_str(&format!(
        "    block: |\n        line one {i}\n        line two\n"
    ));
    s.push_str("    list:\n");
    for k in 0..4 {
        s.push_str(&format!("        - item {i}.{k} # inline\n"));
    }
    s.push_str("        - nested: map\n          with: keys\n");
    s.push_str(&format!("    ключ_{i}: значение {i}\n"));
    s.push_str("    folded: >\n        folded text\n        goes here\n");
    s
}

fn large_yaml(commented: bool) -> String {
    (0..900).map(|i| yaml_section(i, commented)).collect()
}

fn large_json(sections: usize) -> String {
    let sections: Vec<String> = (0..sections)
        .map(|i| {
            format!(
                "\t\"section_{i:04}\": {{\n\t\t\"token\": \"tok-{i}-abcdefghijklmnop\\n\\\"q\\\"\",\n\t\t\"port\": {},\n\t\t\"ratio\": {i}.5,\n\t\t\"on\": false,\n\t\t\"none\": null,\n\t\t\"list\": [\n\t\t\t\"a,\",\n\t\t\t{{\"k\": \"v\"}},\n\t\t\t[]\n\t\t],\n\t\t\"ключ\": \"значение\"\n\t}}",
                1000 + i
            )
        })
        .collect();
    format!("{{\n{}\n}}\n", sections.join(",\n"))
}

struct Case {
    sandbox: Sandbox,
    key_file: PathBuf,
    plain: PathBuf,
    encrypted: PathBuf,
    ext: &'static str,
}

impl Case {
    fn new(name: &str, text: &str) -> Case {
        assert!(text.len() > 300 * 1024, "{name}: only {} bytes", text.len());
        let sandbox = Sandbox::new(1);
        let ext = if name.ends_with(".json") {
            "json"
        } else {
            "yaml"
        };
        let plain = sandbox.write(name, text.as_bytes());
        let recipient = sandbox.keys[0].recipient.clone();
        let encrypted =
            sandbox.sops_encrypt(&plain, &["--age", &recipient], &format!("secret.enc.{ext}"));
        let key_file = sandbox.key_file(&[0]);
        Case {
            sandbox,
            key_file,
            plain,
            encrypted,
            ext,
        }
    }

    fn both(&self, args: &[&str], file: &Path) -> (std::process::Output, std::process::Output) {
        self.sandbox.both(&self.key_file, args, file)
    }

    /// The reference's file decrypts to the reference's bytes; rsops'
    /// encryption has the reference's layout and decrypts with it.
    fn check_both_directions(&self) {
        let (reference, ours) = self.both(&["decrypt"], &self.encrypted);
        assert_same_success(&format!("decrypt large {}", self.ext), &reference, &ours);

        let recipient = self.sandbox.keys[0].recipient.clone();
        let ours_encrypted = run(
            self.sandbox
                .rsops()
                .args(["encrypt", "--age", &recipient])
                .arg(&self.plain),
            b"",
        );
        assert!(ours_encrypted.status.success(), "rsops encrypt failed");
        let reference_encrypted = std::fs::read(&self.encrypted).expect("read");
        assert_eq!(
            masked(&ours_encrypted.stdout, self.ext),
            masked(&reference_encrypted, self.ext),
            "large {}: rsops' encryption differs from the reference's in layout",
            self.ext
        );
        let ours_file = self
            .sandbox
            .write(&format!("ours.enc.{}", self.ext), &ours_encrypted.stdout);
        let (back, _) = self.both(&["decrypt"], &ours_file);
        assert_same_success(
            &format!("reference decrypts rsops' large {}", self.ext),
            &reference,
            &back,
        );
    }

    /// `args` (`set FILE …`, `unset FILE …` with the file left out) run by
    /// both on copies of the file: both results decrypt alike.
    fn check_change(&self, args: &[&str]) {
        let copy = |who: &str| {
            let path = self.sandbox.path(&format!("changed-{who}.{}", self.ext));
            std::fs::copy(&self.encrypted, &path).expect("copy");
            path
        };
        let (theirs, ours) = (copy("sops"), copy("rsops"));
        for (mut cmd, file) in [
            (self.sandbox.sops(), &theirs),
            (self.sandbox.rsops(), &ours),
        ] {
            let out = run(
                cmd.env("SOPS_AGE_KEY_FILE", &self.key_file)
                    .arg(args[0])
                    .arg(file)
                    .args(&args[1..]),
                b"",
            );
            assert!(
                out.status.success(),
                "{}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (reference, _) = self.both(&["decrypt"], &theirs);
        let (_, ours) = self.both(&["decrypt"], &ours);
        let what = format!("{} in large {}", args.join(" "), self.ext);
        assert_same_success(&what, &reference, &ours);
    }

    /// A value in the middle of the file altered: both refuse, rsops
    /// without printing anything.
    fn check_tampered(&self) {
        let text = std::fs::read_to_string(&self.encrypted).expect("read");
        let middle = text.len() / 2;
        let at = middle + text[middle..].find("data:").expect("a value") + "data:".len();
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = self
            .sandbox
            .write(&format!("tampered.{}", self.ext), &bytes);
        let (reference, ours) = self.both(&["decrypt"], &tampered);
        assert!(!reference.status.success());
        assert_same(&format!("tampered large {}", self.ext), &reference, &ours);
        assert!(ours.stdout.is_empty());
    }
}

#[test]
fn yaml_without_top_level_comments() {
    let case = Case::new("large.yaml", &large_yaml(false));
    case.check_both_directions();
    case.check_change(&["set", r#"["section_0350"]["token"]"#, "\"changed\""]);
    case.check_tampered();
}

#[test]
fn yaml_with_top_level_comments() {
    let case = Case::new("large.yaml", &large_yaml(true));
    case.check_both_directions();
}

#[test]
fn json() {
    let case = Case::new("large.json", &large_json(1500));
    case.check_both_directions();
    case.check_change(&["set", r#"["section_0600"]["list"][1]["k"]"#, "\"changed\""]);
    case.check_tampered();
}

/// Past 4 MiB, rsops reads an encrypted JSON file in pieces, never whole,
/// and decrypts each piece as it is read. Whatever is wrong with such a
/// file, it fails as the reference fails, without printing anything; a
/// file whose metadata is not at its end (so not in the last piece) is
/// read whole and decrypts as there.
#[test]
fn json_read_in_pieces() {
    let case = Case::new("large.json", &large_json(4700));
    let size = std::fs::metadata(&case.encrypted).expect("stat").len();
    assert!(size > 4 << 20, "only {size} bytes encrypted");
    let (reference, ours) = case.both(&["decrypt"], &case.encrypted);
    assert_same_success("decrypt JSON read in pieces", &reference, &ours);

    let text = std::fs::read_to_string(&case.encrypted).expect("read");
    let deep = text.len() * 3 / 4;
    let mut tampered = text.clone().into_bytes();
    let at = deep + text[deep..].find("data:").expect("a value") + "data:".len();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    // A whole entry removed: every value still decrypts, the MAC differs.
    let line = deep + text[deep..].find("\n\t\t\"on\": ").expect("an entry");
    let line_end = line + 1 + text[line + 1..].find('\n').expect("its end");
    let removed = format!("{}{}", &text[..line], &text[line_end..]);
    let truncated = &text[..deep];
    let sops_at = text.rfind(",\n\t\"sops\": ").expect("metadata");
    let metadata = &text[sops_at + 2..text.len() - "\n}\n".len()];
    let metadata_first = format!("{{\n{metadata},\n{}\n}}\n", &text[2..sops_at]);
    let failing = [
        ("a tampered value", tampered),
        ("an entry removed", removed.into_bytes()),
        ("a truncated file", truncated.as_bytes().to_vec()),
    ];
    for (what, bytes) in failing {
        let file = case.sandbox.write("broken.json", &bytes);
        let (reference, ours) = case.both(&["decrypt"], &file);
        assert!(
            !reference.status.success(),
            "{what}: the reference decrypted it"
        );
        assert_same(&format!("JSON read in pieces, {what}"), &reference, &ours);
        assert!(ours.stdout.is_empty(), "{what}: printed plaintext");
    }
    let no_key = case.sandbox.write("no-key.txt", b"");
    let both_without_key = (
        run(
            case.sandbox
                .sops()
                .env("SOPS_AGE_KEY_FILE", &no_key)
                .arg("decrypt")
                .arg(&case.encrypted),
            b"",
        ),
        run(
            case.sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", &no_key)
                .arg("decrypt")
                .arg(&case.encrypted),
            b"",
        ),
    );
    assert_same(
        "JSON read in pieces, no key",
        &both_without_key.0,
        &both_without_key.1,
    );
    let file = case
        .sandbox
        .write("metadata-first.json", metadata_first.as_bytes());
    let (reference, ours) = case.both(&["decrypt"], &file);
    assert_same_success("JSON with its metadata first", &reference, &ours);
}

/// A large YAML file is encrypted piece by piece. Whatever keeps it from
/// being read in pieces sends it to the whole encryption, which fails, or
/// succeeds, as the reference does.
#[test]
fn yaml_encrypted_in_pieces() {
    let text = large_yaml(false);
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let anchored = text.replacen("section_0000:\n", "section_0000: &first\n", 1);
    let cases = [
        (
            "a key two pieces share",
            format!("{text}section_0001: again\n"),
            false,
        ),
        (
            "a sops key",
            format!("{text}sops:\n    version: 3.11.0\n"),
            false,
        ),
        (
            "a syntax error deep inside",
            text.replacen("section_0700:\n", "section_0700:\n  bad\n", 1),
            false,
        ),
        (
            "an alias to another piece",
            format!("{anchored}late: *first\n"),
            true,
        ),
        (
            "a top-level comment",
            format!("{text}# the end\nlast: 1\n"),
            true,
        ),
    ];
    for (what, text, succeeds) in cases {
        let plain = sandbox.write("plain.yaml", text.as_bytes());
        let encrypt = |mut cmd: std::process::Command| {
            run(cmd.args(["encrypt", "--age", &recipient]).arg(&plain), b"")
        };
        let (reference, ours) = (encrypt(sandbox.sops()), encrypt(sandbox.rsops()));
        assert_eq!(
            reference.status.success(),
            succeeds,
            "{what}: reference stderr: {}",
            String::from_utf8_lossy(&reference.stderr)
        );
        assert_eq!(
            ours.status.code(),
            reference.status.code(),
            "{what}: exit codes differ; rsops stderr: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        if succeeds {
            assert_eq!(
                masked(&ours.stdout, "yaml"),
                masked(&reference.stdout, "yaml"),
                "{what}: rsops' encryption differs from the reference's in layout"
            );
        } else {
            assert!(ours.stdout.is_empty(), "{what}: printed something");
        }
    }
}

/// `edit` of a large YAML file seals the text it reads back piece by
/// piece: every value left alone keeps its ciphertext, also when the text
/// has to be loaded whole after all (a comment between top-level keys),
/// and a text holding metadata is refused with the file untouched.
#[test]
fn yaml_edited_in_pieces() {
    let case = Case::new("large.yaml", &large_yaml(false));
    let (original, _) = case.both(&["decrypt"], &case.encrypted);
    let plain = String::from_utf8(original.stdout).expect("utf-8");
    let edits = [
        ("one value changed", "", Some(vec!["token", "mac"])),
        (
            "one value changed and a top-level comment added",
            "printf '# the end\\nlast: 1\\n' >> \"$1\"\n",
            Some(vec!["token", "#ENC[AES256_GCM,data", "last", "mac"]),
        ),
        ("a sops key added", "printf 'sops: 1\\n' >> \"$1\"\n", None),
    ];
    for (what, more, changed) in edits {
        let file = case.sandbox.write(
            "edited.yaml",
            &std::fs::read(&case.encrypted).expect("read"),
        );
        let editor = case.sandbox.path("editor.sh");
        rsops_test_support::write_script(
            &editor,
            &format!("#!/bin/sh\nsed -i 's/tok-450-/tok-450-changed-/' \"$1\"\n{more}"),
        );
        let output = run(
            case.sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", &case.key_file)
                .env("EDITOR", &editor)
                .arg("edit")
                .arg(&file),
            b"",
        );
        let before = std::fs::read_to_string(&case.encrypted).expect("read");
        let after = std::fs::read_to_string(&file).expect("read");
        let Some(changed) = changed else {
            assert!(!output.status.success(), "{what}: edited");
            assert_eq!(after, before, "{what}: the file changed");
            continue;
        };
        assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (before, after): (Vec<&str>, Vec<&str>) =
            (before.lines().collect(), after.lines().collect());
        let diff: Vec<&str> = similar_lines(&before, &after)
            .into_iter()
            .map(|line| line.trim().split(':').next().unwrap_or_default())
            // Only when the second changed since the file was written.
            .filter(|name| *name != "lastmodified")
            .collect();
        assert_eq!(diff, changed, "{what}");
        let (decrypted, _) = case.both(&["decrypt"], &file);
        let expected = plain.replace("tok-450-", "tok-450-changed-")
            + if more.is_empty() {
                ""
            } else {
                "# the end\nlast: 1\n"
            };
        assert_eq!(
            String::from_utf8_lossy(&decrypted.stdout),
            expected,
            "{what}"
        );
    }
}

/// The lines of `after` that are not in `before` at the same place, where
/// `after` only changes lines of `before` and adds lines before its
/// metadata.
fn similar_lines<'a>(before: &[&str], after: &[&'a str]) -> Vec<&'a str> {
    let added = after.len() - before.len();
    let metadata = before.iter().position(|l| *l == "sops:").expect("metadata");
    let mut changed: Vec<&str> = before[..metadata]
        .iter()
        .zip(&after[..metadata])
        .filter(|(b, a)| b != a)
        .map(|(_, a)| *a)
        .collect();
    changed.extend(&after[metadata..metadata + added]);
    changed.extend(
        before[metadata..]
            .iter()
            .zip(&after[metadata + added..])
            .filter(|(b, a)| b != a)
            .map(|(_, a)| *a),
    );
    changed
}

/// A top-level entry larger than a piece removed with `unset` leaves its
/// piece empty: the file reads as the reference's change leaves it.
#[test]
fn yaml_unset_of_a_whole_piece() {
    // Every entry is longer (encrypted) than two pieces, so each piece
    // holds one.
    let text: String = (0..5)
        .map(|i| {
            let lines: String = (0..3000)
                .map(|k| format!("    k{k:04}: value {i}.{k} {}\n", "y".repeat(90)))
                .collect();
            format!("huge_{i}:\n{lines}")
        })
        .collect();
    let case = Case::new("large.yaml", &text);
    case.check_change(&["unset", r#"["huge_2"]"#]);
}

/// `set` in a large YAML file without comments, whose pieces that the
/// change does not touch are printed as they were opened rather than
/// resealed: the file is the reference's once random parts are masked, and
/// differs from the original only in the value, the MAC and `lastmodified`.
#[test]
fn yaml_set_in_pieces_without_comments() {
    let text: String = (0..900)
        .map(|i| yaml_section(i, false))
        .collect::<String>()
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{}\n", line.trim_end_matches(" # inline")))
        .collect();
    let case = Case::new("large.yaml", &text);
    let original = std::fs::read_to_string(&case.encrypted).expect("read");
    let args = ["set", r#"["section_0450"]["port"]"#, "7"];
    let mut written = Vec::new();
    for (mut cmd, name) in [
        (case.sandbox.sops(), "theirs.yaml"),
        (case.sandbox.rsops(), "ours.yaml"),
    ] {
        let file = case.sandbox.write(name, original.as_bytes());
        let out = run(
            cmd.env("SOPS_AGE_KEY_FILE", &case.key_file)
                .arg(args[0])
                .arg(&file)
                .args(&args[1..]),
            b"",
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        written.push(std::fs::read(&file).expect("read"));
    }
    assert_eq!(masked(&written[1], "yaml"), masked(&written[0], "yaml"));
    let ours = String::from_utf8(written.pop().expect("ours")).expect("utf-8");
    let changed: Vec<&str> = original
        .lines()
        .zip(ours.lines())
        .filter(|(before, after)| before != after)
        .map(|(_, after)| after.trim().split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(original.lines().count(), ours.lines().count());
    assert_eq!(changed, ["port", "lastmodified", "mac"]);
}

/// `set` and `unset` change a large YAML file piece by piece: each change
/// decrypts as the reference's does, leaves every other line as it was
/// but the MAC and `lastmodified`, and each failure (a path that is not
/// there, a tampered value elsewhere, no key) is the reference's, with the
/// file untouched.
#[test]
fn yaml_set_in_pieces() {
    let case = Case::new("large.yaml", &large_yaml(false));
    let original = std::fs::read(&case.encrypted).expect("read");
    let text = String::from_utf8(original.clone()).expect("utf-8");
    let middle = text.len() / 2;
    let at = middle + text[middle..].find("data:").expect("a value") + "data:".len();
    let mut tampered = original.clone();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let no_key = case.sandbox.write("no-key.txt", b"");
    let changes: [(&str, &[&str], &[u8], &Path); 10] = [
        (
            "a value in the middle",
            &["set", r#"["section_0450"]["token"]"#, "\"changed\""],
            &original,
            &case.key_file,
        ),
        (
            "a value in the last piece",
            &["set", r#"["section_0899"]["port"]"#, "5"],
            &original,
            &case.key_file,
        ),
        (
            "a new top-level key",
            &["set", r#"["added"]"#, r#"{"a": [1, "two"]}"#],
            &original,
            &case.key_file,
        ),
        (
            "a list item",
            &["set", r#"["section_0002"]["list"][1]"#, "\"x\""],
            &original,
            &case.key_file,
        ),
        (
            "a scalar made a map",
            &["set", r#"["section_0100"]["token"]["deeper"]"#, "true"],
            &original,
            &case.key_file,
        ),
        (
            "a value removed",
            &["unset", r#"["section_0450"]["note"]"#],
            &original,
            &case.key_file,
        ),
        (
            "a key that is not there removed",
            &["unset", r#"["section_0450"]["missing"]"#],
            &original,
            &case.key_file,
        ),
        (
            "a top-level key that is not there removed",
            &["unset", r#"["missing"]"#],
            &original,
            &case.key_file,
        ),
        (
            "a tampered value elsewhere",
            &["set", r#"["section_0001"]["port"]"#, "1"],
            &tampered,
            &case.key_file,
        ),
        (
            "no key",
            &["set", r#"["section_0001"]["port"]"#, "1"],
            &original,
            &no_key,
        ),
    ];
    for (what, args, bytes, key_file) in changes {
        let change = |mut cmd: std::process::Command, name: &str| {
            let file = case.sandbox.write(name, bytes);
            let out = run(
                cmd.env("SOPS_AGE_KEY_FILE", key_file)
                    .arg(args[0])
                    .arg(&file)
                    .args(&args[1..]),
                b"",
            );
            (out, file)
        };
        let (reference, theirs) = change(case.sandbox.sops(), "theirs.yaml");
        let (ours, file) = change(case.sandbox.rsops(), "ours.yaml");
        assert_same_exit(what, &reference, &ours);
        let after = std::fs::read(&file).expect("read");
        if !reference.status.success() {
            assert_eq!(after, bytes, "{what}: the file changed");
            continue;
        }
        let (decrypted_theirs, _) = case.both(&["decrypt"], &theirs);
        let (_, decrypted_ours) = case.both(&["decrypt"], &file);
        assert_same_success(what, &decrypted_theirs, &decrypted_ours);
        let after = String::from_utf8(after).expect("utf-8");
        let (before, after): (Vec<&str>, Vec<&str>) =
            (text.lines().collect(), after.lines().collect());
        if before.len() == after.len() {
            let changed = before
                .iter()
                .zip(&after)
                .filter(|(b, a)| b != a)
                .map(|(_, a)| a.trim().split(':').next().unwrap_or_default())
                .filter(|name| *name != "lastmodified")
                .count();
            assert_eq!(
                changed, 2,
                "{what}: more than the value and the MAC changed"
            );
        }
    }
}
