//! `exec-env`: the file's values as the command's variables, formatted as
//! the reference formats them, and the flags that shape the environment.

use super::*;

#[test]
fn exec_env_serves_json_rpc_like_the_reference() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let server = setup.path("server.py");
    let command = format!("python3 {}", server.display());
    let stdin = requests(&["TOKEN", "PORT"]);
    let reference = run(
        setup.sops().arg("exec-env").arg(&file).arg(&command),
        &stdin,
    );
    let ours = run(
        setup.rsops().arg("exec-env").arg(&file).arg(&command),
        &stdin,
    );
    assert_same("exec-env stdio server", &reference, &ours);
    assert_eq!(
        text(&ours.stdout),
        format!("{}{}", response(1, SECRET), response(2, "5432"))
    );
    assert!(ours.stderr.is_empty(), "{}", text(&ours.stderr));
}

#[test]
fn variables_are_formatted_as_the_reference_formats_them() {
    let setup = Setup::new();
    let file = setup.encrypt(
        "values.yaml",
        "s: hello world\ni: 42\nbig: 9007199254740993\nf: 1.5\nround: 100.0\nmillion: 1000000.0\nsmall: 0.00001\n\
         yes: true\nno: false\nnothing: null\nwhen: 2024-01-02T03:04:05.5+01:00\nday: 2024-01-02\n\
         multi: |\n  line one\n  line two\nkept_unencrypted: 7\n",
    );
    let names = "s i big f round million small yes no nothing when day multi kept_unencrypted";
    let command =
        format!("for n in {names}; do eval \"printf '%s=[%s]\\n' $n \\\"\\$$n\\\"\"; done");
    let reference = run(setup.sops().arg("exec-env").arg(&file).arg(&command), b"");
    let ours = run(setup.rsops().arg("exec-env").arg(&file).arg(&command), b"");
    assert_same("value formatting", &reference, &ours);
    assert!(
        text(&ours.stdout).contains("round=[100.0]\n"),
        "{}",
        text(&ours.stdout)
    );

    let json = setup.encrypt("values.json", r#"{"f": 2.5, "b": false, "s": "x"}"#);
    let command = "echo \"$f $b $s\"";
    let reference = run(setup.sops().arg("exec-env").arg(&json).arg(command), b"");
    let ours = run(setup.rsops().arg("exec-env").arg(&json).arg(command), b"");
    assert_same("json value formatting", &reference, &ours);
}

#[test]
fn nested_values_and_keys_with_equals_are_refused_without_running_the_command() {
    let setup = Setup::new();
    let marker = setup.path("ran");
    let command = format!("touch {}", marker.display());
    for (name, plain, key) in [
        (
            "nested.yaml",
            format!("ok: 1\nnested:\n    inner: {SECRET}\n"),
            "nested",
        ),
        ("list.yaml", format!("items:\n    - {SECRET}\n"), "items"),
        ("equals.yaml", "\"A=B\": 1\n".to_string(), "A=B"),
    ] {
        let file = setup.encrypt(name, &plain);
        let reference = run(setup.sops().arg("exec-env").arg(&file).arg(&command), b"");
        let ours = run(setup.rsops().arg("exec-env").arg(&file).arg(&command), b"");
        assert_same(name, &reference, &ours);
        let stderr = text(&ours.stderr);
        assert!(stderr.contains(key), "{name}: {stderr}");
        assert!(
            !stderr.contains(SECRET),
            "{name}: the value leaked: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(!stderr.contains('\x1b'), "{name}: colour: {stderr}");
        assert!(!marker.exists(), "{name}: the command ran");
    }
}

#[test]
fn pristine_keeps_only_the_secrets_and_the_allow_list() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let command = "env | grep -v '^PWD=' | sort";
    let reference = run(
        setup
            .sops()
            .args(["exec-env", "--pristine"])
            .arg(&file)
            .arg(command),
        b"",
    );
    let ours = run(
        setup
            .rsops()
            .args(["exec-env", "--pristine"])
            .arg(&file)
            .arg(command),
        b"",
    );
    assert_same("pristine", &reference, &ours);
    assert_eq!(text(&ours.stdout), format!("PORT=5432\nTOKEN={SECRET}\n"));

    let ours = run(
        setup
            .rsops()
            .args([
                "exec-env",
                "--pristine",
                "--keep",
                "PATH,HOME",
                "--keep",
                "TMPDIR",
            ])
            .arg(&file)
            .arg(command),
        b"",
    );
    assert_ok("keep", &ours);
    let names: Vec<String> = text(&ours.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(names, ["HOME", "PATH", "PORT", "TMPDIR", "TOKEN"]);

    let ours = run(
        setup
            .rsops()
            .args(["exec-file", "--pristine", "--keep", "PATH"])
            .arg(&file)
            .arg(command),
        b"",
    );
    assert_ok("exec-file keep", &ours);
    assert_eq!(
        text(&ours.stdout),
        format!("PATH={}\n", std::env::var("PATH").unwrap_or_default())
    );

    let ours = run(
        setup
            .rsops()
            .args(["exec-env", "--keep", "PATH"])
            .arg(&file)
            .arg(command),
        b"",
    );
    assert!(
        !ours.status.success(),
        "--keep without --pristine must be refused"
    );
}

#[test]
fn secrets_override_inherited_variables() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let command = "echo \"$TOKEN|$OTHER\"";
    let reference = run(
        setup
            .sops()
            .env("TOKEN", "old")
            .env("OTHER", "kept")
            .arg("exec-env")
            .arg(&file)
            .arg(command),
        b"",
    );
    let ours = run(
        setup
            .rsops()
            .env("TOKEN", "old")
            .env("OTHER", "kept")
            .arg("exec-env")
            .arg(&file)
            .arg(command),
        b"",
    );
    assert_same("override", &reference, &ours);
    assert_eq!(text(&ours.stdout), format!("{SECRET}|kept\n"));
}

#[test]
fn same_process_replaces_rsops() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let child = start(
        setup
            .rsops()
            .args(["exec-env", "--same-process"])
            .arg(&file)
            .arg("echo \"$$ $TOKEN\""),
    );
    let pid = child.id();
    let output = finish(child);
    assert_ok("same-process", &output);
    assert_eq!(text(&output.stdout), format!("{pid} {SECRET}\n"));

    let conflict = run(
        setup
            .rsops()
            .args(["exec-env", "--same-process", "--background"])
            .arg(&file)
            .arg("true"),
        b"",
    );
    let reference = run(
        setup
            .sops()
            .args(["exec-env", "--same-process", "--background"])
            .arg(&file)
            .arg("true"),
        b"",
    );
    assert_same("same-process with background", &reference, &conflict);
}

#[test]
fn background_returns_at_once_and_the_command_runs_on() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let done = setup.path("done");
    let gate = setup.path("gate");
    let stderr = setup.path("stderr");
    // The command waits for a file the test creates only after rsops exited.
    let command = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; echo \"$TOKEN\" > {}",
        gate.display(),
        done.display()
    );
    // The command keeps rsops' standard streams: files, so nothing waits on a pipe.
    let mut rsops = setup.rsops();
    rsops
        .args(["exec-env", "--background"])
        .arg(&file)
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).expect("stderr file"));
    let child = rsops.spawn().expect("spawn");
    let status = finish(child).status;
    assert!(status.success(), "{status:?}");
    let warning = fs::read_to_string(&stderr).unwrap_or_default();
    assert!(warning.contains("deprecated"), "{warning}");
    fs::write(&gate, b"").expect("open the gate");
    wait_for_line(&done, SECRET);
}

/// A `str` value whose bytes are not UTF-8 reaches the command as those
/// bytes, as with the reference (which holds it in a Go string), not as
/// Go's `%v` of a byte slice (`[99 97 102 233]`).
#[test]
fn values_that_are_not_utf8_reach_the_command_as_their_bytes() {
    let setup = Setup::new();
    let recipient = setup.sandbox.keys[0].recipient.clone();
    let encrypt = |name: &str, plain: &[u8]| {
        let plain_path = setup.sandbox.write(name, plain);
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let encrypted = setup.sandbox.sops_encrypt(
            &plain_path,
            &["--age", &recipient],
            &format!("{stem}.enc.{ext}"),
        );
        fs::remove_file(plain_path).expect("remove plaintext");
        encrypted
    };
    // Latin-1 `café` and stray bytes in a dotenv file, and the same as YAML
    // `!!binary` strings.
    let dotenv = encrypt("latin1.env", b"LATIN=caf\xe9\nMIXED=\xff\xfeok\x80\n");
    let yaml = encrypt(
        "binary.yaml",
        b"LATIN: !!binary Y2Fm6Q==\nMIXED: !!binary //5va4A=\n",
    );
    let command = "printf %s \"$LATIN|$MIXED\" | od -An -tx1";
    for file in [&dotenv, &yaml] {
        let what = file.display().to_string();
        let reference = run(setup.sops().arg("exec-env").arg(file).arg(command), b"");
        let ours = run(setup.rsops().arg("exec-env").arg(file).arg(command), b"");
        assert_same(&what, &reference, &ours);
        let dump: String = text(&ours.stdout).split_whitespace().collect();
        assert_eq!(dump, "636166e97cfffe6f6b80", "{what}");
    }
}
