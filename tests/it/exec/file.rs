//! `exec-file`: the decrypted file at a private path, in memory, every open
//! can read or as a 0600 file, and the checks on its arguments.

use super::*;

#[test]
fn exec_file_serves_json_rpc_and_every_read_gets_the_whole_file() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let command = format!("python3 {} {{}}", setup.path("server.py").display());
    // The reference's FIFO can be read once: compare one request.
    let one = requests(&["TOKEN"]);
    let reference = run(setup.sops().arg("exec-file").arg(&file).arg(&command), &one);
    let ours = run(
        setup.rsops().arg("exec-file").arg(&file).arg(&command),
        &one,
    );
    assert_same("exec-file stdio server", &reference, &ours);
    // rsops answers every open, so the server can read its file per request.
    for mode in [&[][..], &["--no-fifo"][..]] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .arg(&command),
            &requests(&["TOKEN", "PORT", "TOKEN"]),
        );
        assert_ok("exec-file", &ours);
        assert_eq!(
            text(&ours.stdout),
            format!(
                "{}{}{}",
                response(1, SECRET),
                response(2, "5432"),
                response(3, SECRET)
            ),
            "{mode:?}"
        );
        setup.assert_clean();
    }
}

#[test]
fn exec_file_offers_a_private_memory_file_or_file_in_a_private_directory() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let command = "stat -L -c '%F %a' {}; stat -c '%F %a' \"$(dirname {})\"; basename {}";
    let ours = run(setup.rsops().arg("exec-file").arg(&file).arg(command), b"");
    assert_ok("memory", &ours);
    assert_eq!(
        text(&ours.stdout),
        "regular file 600\ndirectory 700\ntmp-file\n"
    );
    // In memory: a link into rsops' /proc, nothing on the filesystem.
    let ours = run(
        setup
            .rsops()
            .arg("exec-file")
            .arg(&file)
            .arg("readlink {}; echo $PPID"),
        b"",
    );
    assert_ok("memory link", &ours);
    let out = text(&ours.stdout);
    let (target, rsops) = out.trim().split_once('\n').unwrap_or_default();
    assert!(
        target.starts_with(&format!("/proc/{rsops}/fd/")),
        "{target} ({rsops})"
    );
    let ours = run(
        setup
            .rsops()
            .args(["exec-file", "--no-fifo", "--filename", "app.env"])
            .arg(&file)
            .arg(command),
        b"",
    );
    assert_ok("no-fifo", &ours);
    assert_eq!(
        text(&ours.stdout),
        "regular file 600\ndirectory 700\napp.env\n"
    );
    setup.assert_clean();
}

#[test]
fn exec_file_output_matches_the_reference() {
    let setup = Setup::new();
    let dotenv = setup.dotenv();
    let yaml = setup.encrypt(
        "app.yaml",
        &format!("db:\n    password: {SECRET}\n    port: 5432\n"),
    );
    for (file, extra) in [
        (&dotenv, &[][..]),
        (&yaml, &[][..]),
        (&yaml, &["--output-type", "json"][..]),
        (&dotenv, &["--output-type", "yaml"][..]),
    ] {
        let reference = run(
            setup
                .sops()
                .arg("exec-file")
                .args(extra)
                .arg(file)
                .arg("cat {}"),
            b"",
        );
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(extra)
                .arg(file)
                .arg("cat {}"),
            b"",
        );
        assert_same(&format!("{} {extra:?}", file.display()), &reference, &ours);
        assert!(text(&ours.stdout).contains(SECRET));
    }
    setup.assert_clean();
}

#[test]
fn placeholders_repeat_and_survive_a_tmpdir_with_spaces_and_quotes() {
    let setup = Setup::with_tmpdir("my tmp 'dir'");
    let file = setup.dotenv();
    let command = "cat {} && cat \"{}\" && cat '{}' && test {} = \"{}\"";
    for mode in [&[][..], &["--no-fifo"][..]] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .arg(command),
            b"",
        );
        assert_ok("placeholders", &ours);
        let once = format!("TOKEN={SECRET}\nPORT=5432\n");
        assert_eq!(text(&ours.stdout), once.repeat(3), "{mode:?}");
        setup.assert_clean();
    }
}

#[test]
fn a_command_that_never_opens_the_file_does_not_hang_rsops() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for command in ["exit 3", "test -r {} && exit 3", "exec 3<&-; exit 3"] {
        let ours = run(setup.rsops().arg("exec-file").arg(&file).arg(command), b"");
        assert_eq!(
            ours.status.code(),
            Some(3),
            "{command}: {}",
            text(&ours.stderr)
        );
        setup.assert_clean();
    }
}

#[test]
fn a_command_reading_the_file_twice_gets_it_twice() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let command = "cat {} > first; cat {} > second; head -c 5 {} > /dev/null; cat {} > third; \
                   cmp first second && cmp second third && cat third";
    for mode in [&[][..], &["--no-fifo"][..]] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .arg(command),
            b"",
        );
        assert_ok("twice", &ours);
        assert_eq!(
            text(&ours.stdout),
            format!("TOKEN={SECRET}\nPORT=5432\n"),
            "{mode:?}"
        );
        setup.assert_clean();
    }
}

#[test]
fn bad_arguments_are_one_line_errors_before_any_work() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for (args, needle) in [
        (vec!["exec-file", "--filename", "../escape"], "--filename"),
        (vec!["exec-file", "--filename", "a/b"], "--filename"),
        (vec!["exec-env", "--output-type", "json"], "--output-type"),
        (vec!["exec-env", "--input-type", "toml"], "--input-type"),
    ] {
        let ours = run(setup.rsops().args(&args).arg(&file).arg("true"), b"");
        assert_eq!(ours.status.code(), Some(1), "{args:?}");
        let stderr = text(&ours.stderr);
        assert!(
            stderr.starts_with("rsops: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains('\x1b'), "{args:?}: colour in {stderr}");
        assert!(ours.stdout.is_empty());
    }
    let missing = setup.path("missing.env");
    for subcommand in ["exec-env", "exec-file"] {
        let reference = run(setup.sops().arg(subcommand).arg(&missing).arg("true"), b"");
        let ours = run(setup.rsops().arg(subcommand).arg(&missing).arg("true"), b"");
        assert_same(&format!("{subcommand} missing file"), &reference, &ours);
        let stdin = run(
            setup.rsops().arg(subcommand).arg("-").arg("true"),
            b"TOKEN=x\n",
        );
        assert_eq!(stdin.status.code(), Some(1), "{subcommand} -");
    }
    setup.assert_clean();
}
