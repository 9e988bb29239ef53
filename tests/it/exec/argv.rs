//! The argv form, `rsops exec-env FILE… -- PROGRAM ARG…` and
//! `rsops exec-file FILE -- PROGRAM ARG…`: no shell, arguments passed as
//! they are (`{}` replaced in exec-file's), the program found in the
//! command's own `PATH`, several files for exec-env with later ones winning.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::*;

/// Prints `$TOKEN`, then each argument, every one followed by a NUL byte.
const PRINT_ARGS: &str = r#"
import os, sys
out = [os.environb.get(b"TOKEN", b"<unset>")] + [os.fsencode(a) for a in sys.argv[1:]]
sys.stdout.buffer.write(b"".join(a + b"\0" for a in out))
"#;

/// Arguments a shell would have run, split or expanded.
fn hostile_args(setup: &Setup) -> Vec<OsString> {
    let pwned = setup.path("pwned");
    let mut args: Vec<OsString> = [
        format!("$(touch {})", pwned.display()),
        format!("a; touch {}", pwned.display()),
        format!("`touch {}`", pwned.display()),
        "it's \"quoted\" \\ back".to_string(),
        "$TOKEN ${HOME}".to_string(),
        "two\nlines".to_string(),
        String::new(),
        "  spaced  ".to_string(),
        "{}".to_string(),
        "*".to_string(),
        "-n".to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push(OsString::from_vec(b"caf\xe9 \xff\xfe".to_vec()));
    args
}

fn nul_joined(values: &[&[u8]]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| v.iter().chain(&[0]))
        .copied()
        .collect()
}

#[test]
fn exec_env_passes_every_argument_verbatim_without_a_shell() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let script = setup.sandbox.write("print_args.py", PRINT_ARGS.as_bytes());
    let args = hostile_args(&setup);
    let mut expected: Vec<&[u8]> = vec![SECRET.as_bytes()];
    expected.extend(args.iter().map(|a| a.as_bytes()));
    for extra in [
        &[][..],
        &["--same-process"],
        &["--pristine", "--keep", "PATH"],
    ] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-env")
                .args(extra)
                .arg(&file)
                .arg("--")
                .arg("python3")
                .arg(&script)
                .args(&args),
            b"",
        );
        assert_ok(&format!("{extra:?}"), &ours);
        assert_eq!(ours.stdout, nul_joined(&expected), "{extra:?}");
        assert!(ours.stderr.is_empty(), "{extra:?}: {}", text(&ours.stderr));
        assert!(!setup.path("pwned").exists(), "{extra:?}: a shell ran");
    }
}

#[test]
fn the_sops_form_still_runs_one_string_with_the_shell_like_the_reference() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let command = "printf '%s|' \"$TOKEN\" $PORT; echo";
    let reference = run(setup.sops().arg("exec-env").arg(&file).arg(command), b"");
    let ours = run(setup.rsops().arg("exec-env").arg(&file).arg(command), b"");
    assert_same("sops form", &reference, &ours);
    // The same through the argv form, with the shell as the program.
    let argv = run(
        setup
            .rsops()
            .arg("exec-env")
            .arg(&file)
            .args(["--", "sh", "-c", command]),
        b"",
    );
    assert_same("argv form running sh -c", &reference, &argv);
    assert_eq!(text(&argv.stdout), format!("{SECRET}|5432|\n"));
}

#[test]
fn exec_file_replaces_braces_inside_arguments_with_the_path() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let reader = setup.sandbox.write(
        "read_config.py",
        br#"
import sys
# --config=PATH, then PATH twice glued together, then a literal word.
path = sys.argv[1].split("=", 1)[1]
assert sys.argv[2] == path + path, sys.argv
assert sys.argv[3] == "$x;{", sys.argv
sys.stdout.write(open(path).read())
sys.stdout.write(open(sys.argv[2][: len(path)]).read())
"#,
    );
    let reference = run(setup.sops().arg("exec-file").arg(&file).arg("cat {}"), b"");
    assert_ok("reference", &reference);
    for mode in [&[][..], &["--no-fifo"], &["--filename", "has space;$x"]] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .args(["--", "python3"])
                .arg(&reader)
                .args(["--config={}", "{}{}", "$x;{"]),
            b"",
        );
        assert_ok(&format!("{mode:?}"), &ours);
        assert_eq!(
            text(&ours.stdout),
            text(&reference.stdout).repeat(2),
            "{mode:?}"
        );
        setup.assert_clean();
    }
}

#[test]
fn several_files_later_ones_win() {
    let setup = Setup::new();
    let first = setup.encrypt("first.env", "TOKEN=from-first\nONLY_FIRST=1\n");
    let second = setup.encrypt("second.yaml", "TOKEN: from-second\nONLY_SECOND: 2\n");
    let print = "printf '%s ' \"$TOKEN\" \"$ONLY_FIRST\" \"$ONLY_SECOND\"";
    for (files, expected) in [
        ([&first, &second], "from-second 1 2 "),
        ([&second, &first], "from-first 1 2 "),
    ] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-env")
                .args(files)
                .args(["--", "sh", "-c", print]),
            b"",
        );
        assert_ok("several files", &ours);
        assert_eq!(text(&ours.stdout), expected);
    }
    // Each file alone gives what the reference gives.
    for file in [&first, &second] {
        let reference = run(setup.sops().arg("exec-env").arg(file).arg(print), b"");
        let ours = run(
            setup
                .rsops()
                .arg("exec-env")
                .arg(file)
                .args(["--", "sh", "-c", print]),
            b"",
        );
        assert_same(&file.display().to_string(), &reference, &ours);
    }
    // --input-type applies to every file (names that say nothing).
    let a = setup.path("a.secret");
    let b = setup.path("b.secret");
    let yaml = setup.encrypt("third.yaml", "TOKEN: from-third\nONLY_FIRST: 3\n");
    fs::copy(&yaml, &a).expect("copy");
    fs::copy(&second, &b).expect("copy");
    let ours = run(
        setup
            .rsops()
            .args(["exec-env", "--input-type", "yaml"])
            .args([&a, &b])
            .args(["--", "sh", "-c", print]),
        b"",
    );
    assert_ok("--input-type", &ours);
    assert_eq!(text(&ours.stdout), "from-second 3 2 ");
    // A file that cannot be decrypted fails the whole run, naming it.
    let missing = setup.path("missing.env");
    let ours = run(
        setup
            .rsops()
            .arg("exec-env")
            .args([&first, &missing])
            .args(["--", "touch"])
            .arg(setup.path("ran")),
        b"",
    );
    assert_eq!(ours.status.code(), Some(2), "{}", text(&ours.stderr));
    assert!(text(&ours.stderr).contains("missing.env"));
    assert!(!setup.path("ran").exists());
}

#[test]
fn wrong_shapes_are_usage_errors_with_a_hint() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let ran = setup.path("ran");
    let touch = format!("touch {}", ran.display());
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        // Several files need `--`.
        (
            vec![
                "exec-env".into(),
                file.clone().into(),
                file.clone().into(),
                touch.clone().into(),
            ],
            "--",
        ),
        // No command at all.
        (vec!["exec-env".into(), file.clone().into()], "--"),
        (vec!["exec-file".into(), file.clone().into()], "--"),
        // exec-file serves one file.
        (
            vec![
                "exec-file".into(),
                file.clone().into(),
                file.clone().into(),
                "--".into(),
                "sh".into(),
                "-c".into(),
                touch.clone().into(),
            ],
            "one encrypted file",
        ),
        (
            vec![
                "exec-file".into(),
                file.clone().into(),
                "a".into(),
                "b".into(),
            ],
            "--",
        ),
    ];
    for (args, needle) in cases {
        let ours = run(setup.rsops().args(&args), b"");
        let stderr = text(&ours.stderr);
        assert_eq!(ours.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("rsops: "), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stderr.contains("hint"), "{args:?}: {stderr}");
        assert!(!ran.exists(), "{args:?}: the command ran");
        assert!(ours.stdout.is_empty());
    }
    setup.assert_clean();
}

#[test]
fn a_program_that_is_missing_or_not_executable_is_127_or_126() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let plain = setup
        .sandbox
        .write("not-executable", b"#!/bin/sh\necho ran\n");
    let plain = plain.display().to_string();
    for (program, code, needle) in [
        ("no-such-program-rsops", 127, "no-such-program-rsops"),
        ("./no/such/program", 127, "./no/such/program"),
        (plain.as_str(), 126, plain.as_str()),
        ("/", 126, "\"/\""),
        ("echo hi", 127, "one string without `--`"),
    ] {
        for args in [
            &["exec-env"][..],
            &["exec-env", "--same-process"],
            &["exec-env", "--background"],
            &["exec-file"],
            &["exec-file", "--no-fifo"],
        ] {
            let ours = run(
                setup
                    .rsops()
                    .args(args)
                    .arg(&file)
                    .args(["--", program, "arg"]),
                b"",
            );
            let stderr = text(&ours.stderr);
            assert_eq!(
                ours.status.code(),
                Some(code),
                "{args:?} {program}: {stderr}"
            );
            assert!(stderr.contains(needle), "{args:?} {program}: {stderr}");
            assert!(!stderr.contains(SECRET), "{args:?}: {stderr}");
            assert!(ours.stdout.is_empty(), "{args:?} {program}");
            setup.assert_clean();
        }
    }
    // The shell form's code for a missing command is the same (127).
    let shell = run(
        setup
            .rsops()
            .arg("exec-env")
            .arg(&file)
            .arg("no-such-program-rsops"),
        b"",
    );
    assert_eq!(shell.status.code(), Some(127));
}

#[test]
fn the_program_is_found_in_the_commands_path() {
    let setup = Setup::new();
    let tool = |dir: &str, body: &str| {
        let dir = setup.path(dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("rsops-test-tool");
        fs::write(&path, body).expect("write tool");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        dir
    };
    let from_secrets = tool("secrets-bin", "#!/bin/sh\necho from-secrets \"$@\"\n");
    let from_keep = tool("keep-bin", "#!/bin/sh\necho from-keep \"$@\"\n");
    // No `#!`: exec'd with /bin/sh, as execvp does.
    let no_shebang = tool("plain-bin", "echo from-script \"$@\"\n");
    let file = setup.encrypt(
        "path.env",
        &format!("PATH={}:/bin:/usr/bin\n", from_secrets.display()),
    );
    let inherited = std::env::var("PATH").unwrap_or_default();
    let run_tool = |extra: &[&str], file: &Path, path: &Path| {
        run(
            setup
                .rsops()
                .env("PATH", format!("{}:{inherited}", path.display()))
                .arg("exec-env")
                .args(extra)
                .arg(file)
                .args(["--", "rsops-test-tool", "a b"]),
            b"",
        )
    };
    // The secrets' PATH beats rsops' own.
    let ours = run_tool(&[], &file, &from_keep);
    assert_ok("secrets PATH", &ours);
    assert_eq!(text(&ours.stdout), "from-secrets a b\n");
    let ours = run_tool(&["--same-process"], &file, &from_keep);
    assert_eq!(text(&ours.stdout), "from-secrets a b\n");
    // --pristine --keep PATH: rsops' PATH, kept.
    let other = setup.dotenv();
    let ours = run_tool(&["--pristine", "--keep", "PATH"], &other, &from_keep);
    assert_ok("kept PATH", &ours);
    assert_eq!(text(&ours.stdout), "from-keep a b\n");
    let ours = run_tool(&[], &other, &no_shebang);
    assert_ok("script without #!", &ours);
    assert_eq!(text(&ours.stdout), "from-script a b\n");
    // --pristine without PATH: the tool is not found in rsops' PATH, yet
    // /bin:/usr/bin are searched, as execvp does.
    let ours = run_tool(&["--pristine"], &other, &from_keep);
    assert_eq!(ours.status.code(), Some(127), "{}", text(&ours.stderr));
    let ours = run(
        setup
            .rsops()
            .args(["exec-env", "--pristine"])
            .arg(&other)
            .args(["--", "sh", "-c", "echo \"$TOKEN\""]),
        b"",
    );
    assert_ok("default PATH", &ours);
    assert_eq!(text(&ours.stdout), format!("{SECRET}\n"));
}

#[test]
fn same_process_replaces_rsops_with_the_program() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let child = start(
        setup
            .rsops()
            .args(["exec-env", "--same-process"])
            .arg(&file)
            .args(["--", "sh", "-c", "echo \"$$ $TOKEN\" \"$0\"", "zero arg"]),
    );
    let pid = child.id();
    let output = finish(child);
    assert_ok("same-process", &output);
    assert_eq!(text(&output.stdout), format!("{pid} {SECRET} zero arg\n"));
}

#[test]
fn signals_sent_to_rsops_reach_the_program_once() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for (subcommand, extra) in [
        ("exec-env", &[][..]),
        ("exec-file", &[][..]),
        ("exec-file", &["--no-fifo"][..]),
    ] {
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            let name = format!("argv-{subcommand}-{}-{signal}", extra.len());
            let trap = Trap::new(&setup, &name);
            let mut cmd = setup.rsops();
            cmd.arg(subcommand)
                .args(extra)
                .arg(&file)
                .args(["--", "python3"])
                .arg(setup.path("trap.py"))
                .arg(&trap.marker)
                .arg(&trap.ready);
            if subcommand == "exec-file" {
                cmd.arg("{}");
            }
            let child = start(&mut cmd);
            wait_for(&trap.ready);
            // No shell in between: the program is rsops' child and leads its group.
            let program: i32 = fs::read_to_string(&trap.ready)
                .unwrap_or_default()
                .parse()
                .unwrap_or(0);
            assert_eq!(
                nix::unistd::getpgid(Some(Pid::from_raw(program))).ok(),
                Some(Pid::from_raw(program)),
                "{name}"
            );
            let rsops = Pid::from_raw(child.id() as i32);
            kill(rsops, Signal::SIGUSR1).expect("signal rsops");
            wait_for_line(&trap.marker, "SIGUSR1");
            kill(rsops, signal).expect("signal rsops");
            let output = finish(child);
            assert_eq!(
                output.status.code(),
                Some(42),
                "{name}: {}",
                text(&output.stderr)
            );
            let noted = fs::read_to_string(&trap.marker).unwrap_or_default();
            assert_eq!(noted, format!("SIGUSR1\n{signal}\n"), "{name}");
            setup.assert_clean();
        }
    }
}
