//! `rsops edit` with `EDITOR` set to small shell scripts, against the
//! reference where it can run without a terminal (it runs `$EDITOR` too):
//! values left alone keep their ciphertext, the reference decrypts what
//! rsops saved, exit codes are the reference's, and the decrypted copy is
//! gone on every way out (each run gets a `TMPDIR` of the test's own).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::{run, Sandbox};

const PLAIN: &str = "db:\n    user: admin\n    password: hunter2\napi_key: abc123\nlist:\n    - one\n    - two\nport: 5432\n";

/// A sandbox with an age-encrypted `secrets.yaml` (by the reference), its
/// key file, and an empty private `TMPDIR`.
struct Edit {
    sandbox: Sandbox,
    keys: PathBuf,
    file: PathBuf,
    tmp: PathBuf,
}

impl Edit {
    fn new() -> Edit {
        let sandbox = Sandbox::new(1);
        let keys = sandbox.key_file(&[0]);
        let plain = sandbox.write("plain.yaml", PLAIN.as_bytes());
        let recipient = sandbox.keys[0].recipient.clone();
        let file = sandbox.sops_encrypt(&plain, &["--age", &recipient], "secrets.yaml");
        let tmp = sandbox.path("tmp");
        std::fs::create_dir(&tmp).expect("tmp dir");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Edit {
            sandbox,
            keys,
            file,
            tmp,
        }
    }

    /// An executable `sh` script in the sandbox.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.sandbox.path(name);
        rsops_test_support::write_script(&path, &format!("#!/bin/sh\n{body}"));
        path
    }

    fn with_editor(&self, mut cmd: Command, editor: &Path) -> Command {
        cmd.env("SOPS_AGE_KEY_FILE", &self.keys)
            .env("EDITOR", editor)
            .env("TMPDIR", &self.tmp);
        cmd
    }

    fn rsops(&self, editor: &Path, args: &[&str], stdin: &[u8]) -> Output {
        run(
            self.with_editor(self.sandbox.rsops(), editor).args(args),
            stdin,
        )
    }

    fn sops(&self, editor: &Path, args: &[&str], stdin: &[u8]) -> Output {
        run(
            self.with_editor(self.sandbox.sops(), editor).args(args),
            stdin,
        )
    }

    fn decrypt_with_reference(&self, file: &Path) -> String {
        let output = run(
            self.sandbox
                .sops()
                .env("SOPS_AGE_KEY_FILE", &self.keys)
                .arg("decrypt")
                .arg(file),
            b"",
        );
        assert!(
            output.status.success(),
            "the reference cannot decrypt {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// The private `TMPDIR` holds nothing.
    #[track_caller]
    fn assert_no_leftovers(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.tmp)
            .expect("read tmp")
            .map(|e| e.expect("entry").path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// A file's permission bits.
fn mode(file: &Path) -> u32 {
    std::fs::metadata(file).expect("stat").permissions().mode() & 0o777
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn changing_one_value_keeps_every_other_ciphertext() {
    let edit = Edit::new();
    std::fs::set_permissions(&edit.file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let before = std::fs::read_to_string(&edit.file).expect("read");
    let editor = edit.script(
        "change.sh",
        "case \"$(basename \"$1\")\" in secrets.yaml) ;; *) exit 9 ;; esac\n\
         [ \"$(stat -c %a \"$1\")\" = 600 ] || exit 8\n\
         [ \"$(stat -c %a \"$(dirname \"$1\")\")\" = 700 ] || exit 7\n\
         sed -i 's/hunter2/correct horse/' \"$1\"\n",
    );
    let output = edit.rsops(&editor, &["edit", "secrets.yaml"], b"");
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    edit.assert_no_leftovers();
    let after = std::fs::read_to_string(&edit.file).expect("read");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    let names: Vec<&str> = changed
        .iter()
        .map(|(_, b)| b.trim().split(':').next().unwrap_or_default())
        .collect();
    // `lastmodified` only when the second changed since the reference wrote it.
    let names: Vec<&str> = names.into_iter().filter(|n| *n != "lastmodified").collect();
    assert_eq!(names, ["password", "mac"], "{before}\n---\n{after}");
    assert_eq!(
        edit.decrypt_with_reference(&edit.file),
        PLAIN.replace("hunter2", "correct horse")
    );
    assert_eq!(mode(&edit.file), 0o640);
}

#[test]
fn an_unchanged_file_exits_as_the_reference_and_stays_untouched() {
    let edit = Edit::new();
    let before = std::fs::read(&edit.file).expect("read");
    let editor = edit.script("noop.sh", "exit 0\n");
    let reference = edit.sops(&editor, &["edit", "secrets.yaml"], b"");
    let ours = edit.rsops(&editor, &["edit", "secrets.yaml"], b"");
    assert_eq!(code(&reference), Some(200), "{}", stderr(&reference));
    assert_eq!(code(&ours), code(&reference), "{}", stderr(&ours));
    assert!(stderr(&ours).contains("File has not changed, exiting."));
    // The legacy spelling: `sops FILE`.
    let legacy = edit.rsops(&editor, &["secrets.yaml"], b"");
    assert_eq!(code(&legacy), Some(200), "{}", stderr(&legacy));
    assert_eq!(std::fs::read(&edit.file).expect("read"), before);
    edit.assert_no_leftovers();
}

#[test]
fn a_failing_editor_leaves_the_file_as_it_was() {
    let edit = Edit::new();
    let before = std::fs::read(&edit.file).expect("read");
    let editor = edit.script("fail.sh", "echo 'x: y' > \"$1\"\nexit 3\n");
    let reference = edit.sops(&editor, &["edit", "secrets.yaml"], b"");
    let ours = edit.rsops(&editor, &["edit", "secrets.yaml"], b"");
    assert_eq!(code(&reference), Some(201), "{}", stderr(&reference));
    assert_eq!(code(&ours), code(&reference), "{}", stderr(&ours));
    assert_eq!(std::fs::read(&edit.file).expect("read"), before);
    edit.assert_no_leftovers();
}

#[test]
fn no_editor_at_all_is_the_references_exit_code() {
    let edit = Edit::new();
    let empty = edit.sandbox.path("empty-path");
    std::fs::create_dir(&empty).expect("mkdir");
    let run_without_editor = |mut cmd: Command| {
        cmd.env_remove("EDITOR")
            .env("PATH", &empty)
            .env("SOPS_AGE_KEY_FILE", &edit.keys)
            .env("TMPDIR", &edit.tmp)
            .args(["edit", "secrets.yaml"]);
        run(&mut cmd, b"")
    };
    let reference = run_without_editor(edit.sandbox.sops());
    let ours = run_without_editor(edit.sandbox.rsops());
    assert_eq!(code(&reference), Some(201), "{}", stderr(&reference));
    assert_eq!(code(&ours), code(&reference), "{}", stderr(&ours));
    assert!(stderr(&ours).contains("no editor available"));
}

#[test]
fn a_killed_editor_leaves_nothing_behind() {
    let edit = Edit::new();
    let before = std::fs::read(&edit.file).expect("read");
    let editor = edit.script(
        "killed.sh",
        "sed -i 's/hunter2/changed/' \"$1\"\nkill -9 $$\n",
    );
    let reference = edit.sops(&editor, &["edit", "secrets.yaml"], b"");
    let ours = edit.rsops(&editor, &["edit", "secrets.yaml"], b"");
    assert_eq!(code(&reference), Some(201), "{}", stderr(&reference));
    assert_eq!(code(&ours), code(&reference), "{}", stderr(&ours));
    assert_eq!(std::fs::read(&edit.file).expect("read"), before);
    edit.assert_no_leftovers();
}

#[test]
fn invalid_text_without_a_terminal_gives_up_untouched() {
    let edit = Edit::new();
    let before = std::fs::read(&edit.file).expect("read");
    // Invalid YAML on the first run, valid on the second.
    let (editor, count) = invalid_then_valid(&edit);
    // The reference reopens the editor even without a terminal.
    let reference = edit.sops(&editor, &["edit", "secrets.yaml"], b"\n");
    assert_eq!(code(&reference), Some(0), "{}", stderr(&reference));
    assert_eq!(std::fs::read_to_string(&count).expect("runs").trim(), "2");
    std::fs::write(&edit.file, &before).expect("restore");
    std::fs::remove_file(&count).expect("reset");
    // rsops asks only on a terminal: here it gives up, naming the problem.
    let ours = edit.rsops(&editor, &["edit", "secrets.yaml"], b"\n");
    assert_eq!(code(&ours), Some(2), "{}", stderr(&ours));
    assert!(
        stderr(&ours).contains("invalid syntax"),
        "{}",
        stderr(&ours)
    );
    assert!(!stderr(&ours).contains("hunter2"));
    assert_eq!(std::fs::read_to_string(&count).expect("runs").trim(), "1");
    assert_eq!(std::fs::read(&edit.file).expect("read"), before);
    edit.assert_no_leftovers();
}

#[test]
fn a_signal_to_rsops_removes_the_copy_and_writes_nothing() {
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let edit = Edit::new();
        let before = std::fs::read(&edit.file).expect("read");
        let started = edit.sandbox.path("started");
        let editor = edit.script(
            "slow.sh",
            &format!(
                "sed -i 's/hunter2/changed/' \"$1\"\ntouch {}\nexec sleep 30\n",
                started.display()
            ),
        );
        let child = edit
            .with_editor(edit.sandbox.rsops(), &editor)
            .args(["edit", "secrets.yaml"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rsops");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !started.exists() {
            assert!(Instant::now() < deadline, "the editor never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_dir(&edit.tmp).expect("tmp").count(), 1);
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal rsops");
        let output = child.wait_with_output().expect("wait");
        assert_eq!(
            code(&output),
            Some(128 + signal as i32),
            "{signal}: {}",
            stderr(&output)
        );
        assert_eq!(std::fs::read(&edit.file).expect("read"), before);
        edit.assert_no_leftovers();
    }
}

#[test]
fn a_new_file_is_created_with_age_flags() {
    let edit = Edit::new();
    let editor = edit.script(
        "write.sh",
        "printf 'token: s3cret\\ncount: 1\\n' > \"$1\"\n",
    );
    let recipient = edit.sandbox.keys[0].recipient.clone();
    let output = edit.rsops(&editor, &["edit", "--age", &recipient, "new.yaml"], b"");
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let new = edit.sandbox.path("new.yaml");
    assert!(std::fs::read_to_string(&new)
        .expect("read")
        .contains("token: ENC[AES256_GCM,"));
    assert_eq!(
        edit.decrypt_with_reference(&new),
        "token: s3cret\ncount: 1\n"
    );
    edit.assert_no_leftovers();

    // The example left as it is: nothing created, as the reference.
    let noop = edit.script("noop.sh", "exit 0\n");
    let args = ["edit", "--age", &recipient, "other.yaml"];
    let reference = edit.sops(&noop, &args, b"");
    let ours = edit.rsops(&noop, &args, b"");
    assert_eq!(code(&reference), Some(200), "{}", stderr(&reference));
    assert_eq!(code(&ours), code(&reference), "{}", stderr(&ours));
    assert!(!edit.sandbox.path("other.yaml").exists());

    // The example is the reference's, in every format.
    let show = edit.script("show.sh", "cat \"$1\"\n");
    for name in ["e.yaml", "e.json", "e.env", "e.ini", "e.bin"] {
        let args = ["edit", "--age", &recipient, name];
        let reference = edit.sops(&show, &args, b"");
        let ours = edit.rsops(&show, &args, b"");
        assert_eq!(ours.stdout, reference.stdout, "{name}");
        assert_eq!(code(&ours), code(&reference), "{name}");
    }
}

#[test]
fn a_new_file_takes_its_keys_from_the_creation_rules() {
    let edit = Edit::new();
    let recipient = edit.sandbox.keys[0].recipient.clone();
    edit.sandbox.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: \\.yaml$\n    encrypted_regex: ^secret\n    age: {recipient}\n"
        )
        .as_bytes(),
    );
    let editor = edit.script(
        "write.sh",
        "printf 'secret: s3cret\\nplain: visible\\n' > \"$1\"\n",
    );
    let output = edit.rsops(&editor, &["edit", "rule.yaml"], b"");
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let new = edit.sandbox.path("rule.yaml");
    let text = std::fs::read_to_string(&new).expect("read");
    assert!(text.contains("plain: visible"), "{text}");
    assert!(text.contains("encrypted_regex: ^secret"), "{text}");
    assert_eq!(
        edit.decrypt_with_reference(&new),
        "secret: s3cret\nplain: visible\n"
    );
    assert_eq!(mode(&new), 0o600);

    // No rule matches and no key flag: the reference's refusal, nothing created.
    let args = ["edit", "norule.json"];
    let reference = edit.sops(&editor, &args, b"");
    let ours = edit.rsops(&editor, &args, b"");
    assert_eq!(code(&ours), code(&reference), "{}", stderr(&ours));
    assert!(!edit.sandbox.path("norule.json").exists());
}

#[test]
fn show_master_keys_edits_the_metadata_too() {
    let edit = Edit::new();
    let editor = edit.script(
        "meta.sh",
        "grep -q '^sops:' \"$1\" || exit 5\n\
         grep -q 'password: hunter2' \"$1\" || exit 6\n\
         sed -i 's/hunter2/changed/; s/unencrypted_suffix: _unencrypted/unencrypted_suffix: _plain/' \"$1\"\n",
    );
    let output = edit.rsops(&editor, &["edit", "-s", "secrets.yaml"], b"");
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&edit.file).expect("read");
    assert!(text.contains("unencrypted_suffix: _plain"), "{text}");
    assert_eq!(
        edit.decrypt_with_reference(&edit.file),
        PLAIN.replace("hunter2", "changed")
    );
    edit.assert_no_leftovers();
}

/// `script` (util-linux) runs rsops on a pseudo-terminal, so the prompt
/// after unusable text is offered; `None` where it is not installed.
fn on_terminal(edit: &Edit, editor: &Path, keys: &'static [u8]) -> Option<Output> {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script for a terminal");
        return None;
    }
    let rsops = crate::util::rsops_bin();
    let mut cmd = edit.with_editor(edit.sandbox.command(script), editor);
    cmd.arg("-qec")
        .arg(format!("{} edit secrets.yaml", rsops.display()))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn script");
    // A hang must fail the test, never stall the suite: past the limit the
    // terminal goes away (and with it the output this loop reads).
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_secs(120) {
                if finished.load(std::sync::atomic::Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            true
        })
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // The keys go once the prompt is up (the terminal merges stderr into
    // its output): earlier, Ctrl-C would reach the editor instead.
    let mut seen = Vec::new();
    let mut sent = false;
    let mut buffer = [0u8; 4096];
    loop {
        use std::io::{Read, Write};
        let n = stdout.read(&mut buffer).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buffer[..n]);
        if !sent && String::from_utf8_lossy(&seen).contains("Ctrl+C to exit") {
            stdin.write_all(keys).expect("type");
            sent = true;
        }
    }
    drop(stdin);
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().expect("watchdog"),
        "rsops edit hung on the terminal:\n{}",
        String::from_utf8_lossy(&seen)
    );
    let mut output = child.wait_with_output().expect("wait");
    output.stdout = seen;
    Some(output)
}

/// A large file whose first edit is refused (the text holds a `sops`
/// key) keeps every untouched value's ciphertext when edited again on the
/// terminal: the pieces sealed the first time took their old ciphertexts,
/// which are stashed again.
#[test]
fn a_large_file_edited_again_keeps_its_ciphertexts() {
    let edit = Edit::new();
    let plain: String = (0..6000)
        .map(|i| {
            format!(
                "key_{i:05}:\n    a: value {i} aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    b: more {i}\n"
            )
        })
        .collect();
    let source = edit.sandbox.write("large.yaml", plain.as_bytes());
    let recipient = edit.sandbox.keys[0].recipient.clone();
    edit.sandbox
        .sops_encrypt(&source, &["--age", &recipient], "secrets.yaml");
    let before = std::fs::read_to_string(&edit.file).expect("read");
    let count = edit.sandbox.path("runs");
    let editor = edit.script(
        "again.sh",
        &format!(
            "n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}\n\
             if [ $n = 1 ]; then printf 'sops: 1\\n' >> \"$1\"; \
             else grep -q '^sops: 1$' \"$1\" || exit 9; \
             sed -i -e '/^sops: 1$/d' -e 's/value 10 /value ten /' \"$1\"; fi\n",
            count = count.display()
        ),
    );
    let Some(output) = on_terminal(&edit, &editor, b"\n") else {
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(code(&output), Some(0), "{text}");
    assert_eq!(std::fs::read_to_string(&count).expect("runs").trim(), "2");
    let after = std::fs::read_to_string(&edit.file).expect("read");
    assert_eq!(before.lines().count(), after.lines().count());
    let changed: Vec<&str> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b.trim().split(':').next().unwrap_or_default())
        .filter(|name| *name != "lastmodified")
        .collect();
    assert_eq!(changed, ["a", "mac"]);
    assert_eq!(
        edit.decrypt_with_reference(&edit.file),
        plain.replace("value 10 ", "value ten ")
    );
    edit.assert_no_leftovers();
}

/// An editor that leaves invalid text, then, given it again, valid text.
fn invalid_then_valid(edit: &Edit) -> (PathBuf, PathBuf) {
    let count = edit.sandbox.path("runs");
    let editor = edit.script(
        "twice.sh",
        &format!(
            "n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}\n\
             if [ $n = 1 ]; then printf 'a: [unclosed\\n' > \"$1\"; \
             else grep -q unclosed \"$1\" || exit 9; printf 'a: 1\\n' > \"$1\"; fi\n",
            count = count.display()
        ),
    );
    (editor, count)
}

#[test]
fn on_a_terminal_enter_reopens_the_editor() {
    let edit = Edit::new();
    let (editor, count) = invalid_then_valid(&edit);
    let Some(output) = on_terminal(&edit, &editor, b"\n") else {
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(code(&output), Some(0), "{text}");
    assert!(
        text.contains("Press enter to return to the editor"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&count).expect("runs").trim(), "2");
    assert_eq!(edit.decrypt_with_reference(&edit.file), "a: 1\n");
    edit.assert_no_leftovers();
}

#[test]
fn on_a_terminal_ctrl_c_at_the_prompt_removes_the_copy() {
    let edit = Edit::new();
    let before = std::fs::read(&edit.file).expect("read");
    let (editor, count) = invalid_then_valid(&edit);
    let Some(output) = on_terminal(&edit, &editor, b"\x03") else {
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(code(&output), Some(130), "{text}");
    assert!(text.contains("interrupted by SIGINT"), "{text}");
    assert_eq!(std::fs::read_to_string(&count).expect("runs").trim(), "1");
    assert_eq!(std::fs::read(&edit.file).expect("read"), before);
    edit.assert_no_leftovers();
}

/// Runs `editor` on the file and checks that rsops refuses to write it
/// back, saying the file changed meanwhile.
fn assert_refused_as_changed(edit: &Edit, editor: &Path) {
    let output = edit.rsops(editor, &["edit", &edit.file.display().to_string()], b"");
    assert_eq!(code(&output), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("changed by another program while you edited it"),
        "{}",
        stderr(&output)
    );
}

/// A `set` made while the editor is open is not undone by saving the
/// edit: rsops refuses to write, says why, and the `set` stays.
#[test]
fn a_change_made_meanwhile_is_never_overwritten() {
    let edit = Edit::new();
    let rsops = crate::util::rsops_bin();
    let editor = edit.script(
        "meanwhile.sh",
        &format!(
            "'{}' set '{}' '[\"port\"]' 6543 || exit 9\nsed -i 's/admin/root/' \"$1\"\n",
            rsops.display(),
            edit.file.display()
        ),
    );
    assert_refused_as_changed(&edit, &editor);
    let plain = edit.decrypt_with_reference(&edit.file);
    assert!(plain.contains("port: 6543"), "{plain}");
    assert!(plain.contains("user: admin"), "{plain}");
    edit.assert_no_leftovers();
}

/// A change written into the file itself while the editor is open, its
/// size kept, is found as well: rsops refuses to write.
#[test]
fn a_change_in_place_of_the_same_size_is_found() {
    let edit = Edit::new();
    let editor = edit.script(
        "in_place.sh",
        &format!(
            "printf '#' | dd of='{}' bs=1 count=1 conv=notrunc 2>/dev/null || exit 9\n\
             sed -i 's/admin/root/' \"$1\"\n",
            edit.file.display()
        ),
    );
    let before = std::fs::read(&edit.file).expect("read");
    assert_refused_as_changed(&edit, &editor);
    let now = std::fs::read(&edit.file).expect("read");
    assert_eq!(now.len(), before.len());
    assert_eq!(now[0], b'#');
    assert_eq!(now[1..], before[1..]);
    edit.assert_no_leftovers();
}

/// A file whose mode changed while the editor was open keeps the new
/// mode, as the reference (which writes into the file) keeps it.
#[test]
fn a_mode_changed_meanwhile_is_kept() {
    let edit = Edit::new();
    assert_edited_despite(&edit, "chmod 640");
    assert_eq!(mode(&edit.file), 0o640);
}

/// A file only touched while the editor is open (its times changed, its
/// bytes not) is edited as usual.
#[test]
fn a_file_only_touched_meanwhile_is_edited() {
    assert_edited_despite(&Edit::new(), "touch");
}

/// Edits `admin` to `root` while `command` is run on the file (its path
/// appended) with the editor open, and checks that the edit is written.
#[track_caller]
fn assert_edited_despite(edit: &Edit, command: &str) {
    let editor = edit.script(
        "meanwhile.sh",
        &format!(
            "{command} '{}' || exit 9\nsed -i 's/admin/root/' \"$1\"\n",
            edit.file.display()
        ),
    );
    let output = edit.rsops(&editor, &["edit", &edit.file.display().to_string()], b"");
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let plain = edit.decrypt_with_reference(&edit.file);
    assert!(plain.contains("user: root"), "{plain}");
    edit.assert_no_leftovers();
}
