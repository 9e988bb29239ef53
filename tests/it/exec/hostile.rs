//! The launcher's promises under hostile conditions, one test per finding
//! of the adversarial review (issue 11): `/bin/sh` forking the real
//! command, signals to rsops alone or to its whole group, `nohup`, an
//! ignored SIGCHLD, readers racing, a shared `$TMPDIR`, shell code in a
//! file name, a command that removes the private directory, core dumps,
//! leftovers of the command's group, and job control in a terminal.

use std::os::unix::process::ExitStatusExt;

use nix::errno::Errno;

use super::*;

/// Whether process `pid` still exists.
fn exists(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// Reads the pid a command wrote to `path`.
#[track_caller]
fn read_pid(path: &Path) -> i32 {
    wait_for(path);
    let start = Instant::now();
    loop {
        if let Ok(pid) = fs::read_to_string(path).unwrap_or_default().trim().parse() {
            return pid;
        }
        assert!(start.elapsed() < HANG_LIMIT, "no pid in {}", path.display());
        thread::sleep(Duration::from_millis(10));
    }
}

/// Makes `cmd` start with `signal` ignored, as `nohup` or a non-interactive
/// shell's `&` would.
fn ignoring(cmd: &mut Command, signal: Signal) -> &mut Command {
    // SAFETY: only sigaction between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn)
                .map(drop)
                .map_err(std::io::Error::from)
        })
    }
}

#[test]
fn sigterm_to_rsops_alone_ends_the_real_command_not_just_the_shell() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for (subcommand, extra) in [("exec-env", &[][..]), ("exec-file", &["--no-fifo"][..])] {
        let pid_file = setup.path(&format!("{subcommand}.pid"));
        // The shell forks the real command and waits for it, as dash does.
        let command = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let child = start(
            setup
                .rsops()
                .arg(subcommand)
                .args(extra)
                .arg(&file)
                .arg(command),
        );
        let sleep = read_pid(&pid_file);
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal rsops");
        let output = finish(child);
        assert_eq!(output.status.code(), Some(143), "{}", text(&output.stderr));
        assert!(
            !exists(sleep),
            "{subcommand}: the real command outlived rsops"
        );
        setup.assert_clean();
    }
}

#[test]
fn a_signal_to_rsops_whole_group_reaches_the_command_once() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for subcommand in ["exec-env", "exec-file"] {
        let (child, marker, _) = start_trap(&setup, subcommand, &[], &file, subcommand);
        // `start` made rsops the leader of a group of its own.
        let group = Pid::from_raw(child.id() as i32);
        for round in 1..=5 {
            killpg(group, Signal::SIGUSR1).expect("signal the group");
            let expected = "SIGUSR1\n".repeat(round);
            wait_for_line(&marker, "SIGUSR1");
            let start = Instant::now();
            while fs::read_to_string(&marker).unwrap_or_default() != expected {
                assert!(start.elapsed() < HANG_LIMIT, "round {round} never noted");
                thread::sleep(Duration::from_millis(10));
            }
            // A second delivery would be noted within this pause.
            thread::sleep(Duration::from_millis(150));
            assert_eq!(fs::read_to_string(&marker).unwrap_or_default(), expected);
        }
        killpg(group, Signal::SIGTERM).expect("signal the group");
        let output = finish(child);
        assert_eq!(output.status.code(), Some(42), "{}", text(&output.stderr));
        assert_eq!(
            fs::read_to_string(&marker).unwrap_or_default(),
            format!("{}SIGTERM\n", "SIGUSR1\n".repeat(5))
        );
        setup.assert_clean();
    }
}

#[test]
fn signals_ignored_under_nohup_stay_ignored_like_the_reference() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let check = "python3 -c 'import signal, sys; sys.exit(0 if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else 9)'";
    for tool in ["sops", "rsops"] {
        let mut cmd = if tool == "sops" {
            setup.sops()
        } else {
            setup.rsops()
        };
        let output = run(
            ignoring(&mut cmd, Signal::SIGHUP)
                .arg("exec-env")
                .arg(&file)
                .arg(check),
            b"",
        );
        assert_eq!(output.status.code(), Some(0), "{tool}: SIGHUP not ignored");
    }
    // rsops ignores it too: a SIGHUP is neither forwarded nor fatal.
    let trap = Trap::new(&setup, "nohup");
    let mut cmd = trap.command(&setup, "exec-env", &[], &file);
    ignoring(&mut cmd, Signal::SIGHUP);
    let child = start(&mut cmd);
    wait_for(&trap.ready);
    let rsops = Pid::from_raw(child.id() as i32);
    kill(rsops, Signal::SIGHUP).expect("signal rsops");
    kill(rsops, Signal::SIGUSR1).expect("signal rsops");
    wait_for_line(&trap.marker, "SIGUSR1");
    kill(rsops, Signal::SIGTERM).expect("signal rsops");
    assert_eq!(finish(child).status.code(), Some(42));
    assert_eq!(
        fs::read_to_string(&trap.marker).unwrap_or_default(),
        "SIGUSR1\nSIGTERM\n"
    );
}

#[test]
fn an_inherited_ignored_sigchld_keeps_the_exit_code() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for (subcommand, extra) in [
        ("exec-env", &[][..]),
        ("exec-file", &[][..]),
        ("exec-file", &["--no-fifo"][..]),
    ] {
        let mut reference = setup.sops();
        let reference = run(
            ignoring(&mut reference, Signal::SIGCHLD)
                .arg(subcommand)
                .args(extra)
                .arg(&file)
                .arg("exit 7"),
            b"",
        );
        let mut ours = setup.rsops();
        let ours = run(
            ignoring(&mut ours, Signal::SIGCHLD)
                .arg(subcommand)
                .args(extra)
                .arg(&file)
                .arg("exit 7"),
            b"",
        );
        assert_eq!(reference.status.code(), Some(7), "reference {subcommand}");
        assert_eq!(
            ours.status.code(),
            Some(7),
            "{subcommand}: {}",
            text(&ours.stderr)
        );
        setup.assert_clean();
    }
}

#[test]
fn six_readers_at_once_each_get_the_whole_file() {
    let setup = Setup::new();
    // 300 KB, far more than a pipe holds.
    let plain: String = (0..5000)
        .map(|i| format!("line {i:05} {}\n", "x".repeat(50)))
        .collect();
    let file = setup.encrypt("big.bin", &plain);
    let out = setup.path("out");
    fs::create_dir(&out).expect("mkdir");
    let command = format!(
        "for round in 1 2 3 4 5; do for i in 1 2 3 4 5 6; do cat {{}} > {out}/$round.$i & done; wait; done",
        out = out.display()
    );
    let ours = run(setup.rsops().arg("exec-file").arg(&file).arg(command), b"");
    assert_ok("readers", &ours);
    let outputs: Vec<_> = fs::read_dir(&out).expect("read outputs").collect();
    assert_eq!(outputs.len(), 30);
    for entry in outputs {
        let path = entry.expect("entry").path();
        let got = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == plain,
            "{}: {} of {} bytes",
            path.display(),
            got.len(),
            plain.len()
        );
    }
    setup.assert_clean();
}

#[test]
fn a_tmpdir_others_can_write_without_the_sticky_bit_is_refused() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let ran = setup.path("ran");
    let command = format!("touch {}", ran.display());
    for mode in [&[][..], &["--no-fifo"][..]] {
        fs::set_permissions(&setup.tmpdir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .arg(&command),
            b"",
        );
        assert_eq!(ours.status.code(), Some(1), "{mode:?}");
        let stderr = text(&ours.stderr);
        assert!(
            stderr.contains("sticky") && stderr.contains("TMPDIR"),
            "{stderr}"
        );
        assert!(!stderr.contains(SECRET));
        assert!(!ran.exists(), "the command ran");
        setup.assert_clean();
        // With the sticky bit, as /tmp has, it is fine.
        fs::set_permissions(&setup.tmpdir, fs::Permissions::from_mode(0o1777)).expect("chmod");
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .arg(&command),
            b"",
        );
        assert_ok("sticky", &ours);
        assert!(ran.exists());
        fs::remove_file(&ran).expect("remove");
        setup.assert_clean();
    }
}

#[test]
fn a_file_name_with_quotes_and_semicolons_never_runs_as_code() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let expected = run(setup.rsops().arg("decrypt").arg(&file), b"").stdout;
    let filename = "a';touch pwned1;'b\";touch pwned2;\"$(touch pwned3)`touch pwned4`";
    let command = "# it's a comment, don't mind it\n\
                   cat <<EOF > heredoc.out\nit's {}\nEOF\n\
                   cat <<'EOF' > quoted.out\n'{}\"\nEOF\n\
                   cat {} > bare.out; cat '{}' > single.out; cat \"{}\" > double.out # isn't it";
    for mode in [&[][..], &["--no-fifo"][..]] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .args(["--filename", filename])
                .arg(&file)
                .arg(command),
            b"",
        );
        assert_ok("exec-file", &ours);
        for i in 1..=4 {
            assert!(
                !setup.path(&format!("pwned{i}")).exists(),
                "{mode:?}: the file name ran as code"
            );
        }
        for out in ["bare.out", "single.out", "double.out"] {
            assert_eq!(
                fs::read(setup.path(out)).unwrap_or_default(),
                expected,
                "{mode:?} {out}"
            );
        }
        setup.assert_clean();
    }
}

#[test]
fn a_command_that_removes_the_private_directory_keeps_its_exit_code() {
    let setup = Setup::new();
    let file = setup.dotenv();
    for mode in [&[][..], &["--no-fifo"][..]] {
        let ours = run(
            setup
                .rsops()
                .arg("exec-file")
                .args(mode)
                .arg(&file)
                .arg("cat {} > /dev/null; rm -rf \"$(dirname {})\"; exit 5"),
            b"",
        );
        assert_eq!(ours.status.code(), Some(5), "{mode:?}");
        assert_eq!(text(&ours.stderr), "", "{mode:?}");
        setup.assert_clean();
    }
}

/// Whether `path` holds `needle`.
fn contains(path: &Path, needle: &str) -> bool {
    fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

#[test]
fn a_core_dump_during_exec_holds_no_plaintext() {
    let setup = Setup::new();
    let file = setup.dotenv();
    let gcore = ["/usr/bin/gcore", "/bin/gcore"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    for (subcommand, extra) in [
        ("exec-env", &[][..]),
        ("exec-file", &[][..]),
        ("exec-file", &["--no-fifo"][..]),
    ] {
        let name = format!("core-{subcommand}-{}", extra.len());
        // A dump taken from outside, as a debugger or crash reporter would.
        if let Some(gcore) = gcore {
            let (child, _, _) = start_trap(&setup, subcommand, extra, &file, &name);
            let prefix = setup.path(&format!("{name}.gcore"));
            let dumped = Command::new(gcore)
                .arg("-o")
                .arg(&prefix)
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let core = PathBuf::from(format!("{}.{}", prefix.display(), child.id()));
            if dumped.is_ok_and(|s| s.success()) && core.exists() {
                assert!(
                    !contains(&core, SECRET),
                    "{name}: plaintext in gcore's dump"
                );
                fs::remove_file(&core).expect("remove core");
            }
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal rsops");
            assert_eq!(finish(child).status.code(), Some(42));
        }
        // A crash, with core dumps allowed: rsops turns them off.
        let cwd = setup.path(&format!("{name}.cwd"));
        fs::create_dir(&cwd).expect("mkdir");
        let trap = Trap::new(&setup, &format!("{name}-crash"));
        let mut cmd = trap.command(&setup, subcommand, extra, &file);
        cmd.current_dir(&cwd);
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_CORE,
                    libc::RLIM_INFINITY,
                    libc::RLIM_INFINITY,
                )
                .map_err(std::io::Error::from)
            });
        }
        let child = start(&mut cmd);
        wait_for(&trap.ready);
        kill(Pid::from_raw(child.id() as i32), Signal::SIGABRT).expect("abort rsops");
        let output = finish(child);
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{name}");
        for entry in fs::read_dir(&cwd).expect("read cwd") {
            let path = entry.expect("entry").path();
            assert!(
                !contains(&path, SECRET),
                "{name}: plaintext in {}",
                path.display()
            );
        }
        // Killed outright, rsops leaves its directory; in memory mode it
        // holds only a link that now leads nowhere.
        if extra.is_empty() {
            for entry in fs::read_dir(&setup.tmpdir).expect("read TMPDIR") {
                let dir = entry.expect("entry").path();
                for inner in fs::read_dir(&dir).expect("read dir") {
                    let path = inner.expect("entry").path();
                    assert!(!contains(&path, SECRET), "{name}: plaintext left on disk");
                }
                fs::remove_dir_all(&dir).expect("clean up");
            }
        } else if let Ok(entries) = fs::read_dir(&setup.tmpdir) {
            for entry in entries {
                let _ = fs::remove_dir_all(entry.expect("entry").path());
            }
        }
        // The command was sent SIGTERM when rsops died.
        wait_for_line(&trap.marker, "SIGTERM");
    }
}

#[test]
fn nothing_of_the_command_outlives_rsops() {
    let setup = Setup::new();
    let file = setup.dotenv();
    // A background job left behind when the shell exits is ended.
    let pid_file = setup.path("leftover.pid");
    let command = format!("sleep 300 & echo $! > {}; exit 4", pid_file.display());
    let ours = run(setup.rsops().arg("exec-env").arg(&file).arg(command), b"");
    assert_eq!(ours.status.code(), Some(4), "{}", text(&ours.stderr));
    assert!(
        !exists(read_pid(&pid_file)),
        "the background job outlived rsops"
    );

    // A command that ignores SIGTERM is killed after --kill-after.
    let pid_file = setup.path("stubborn.pid");
    let command = format!(
        "trap '' TERM; sleep 300 & echo $! > {}; wait",
        pid_file.display()
    );
    let child = start(
        setup
            .rsops()
            .args(["exec-file", "--kill-after", "300ms"])
            .arg(&file)
            .arg(command),
    );
    let sleep = read_pid(&pid_file);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal rsops");
    let output = finish(child);
    assert_eq!(output.status.code(), Some(137), "{}", text(&output.stderr));
    assert!(!exists(sleep), "the stubborn command outlived rsops");
    setup.assert_clean();
}

/// Drives an interactive bash in a pseudo-terminal: starts rsops in the
/// foreground, stops it with Ctrl-Z, continues it with `fg`, types a line
/// the command reads, and interrupts it with Ctrl-C.
const JOB_CONTROL: &str = r#"
import os, pty, re, select, sys, time
rsops, file, out = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
seen = b""
def expect(pattern):
    global seen
    end = time.time() + 50
    while time.time() < end:
        m = re.search(pattern, seen)
        if m:
            seen = seen[m.end():]
            return m
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    sys.exit(f"never saw {pattern!r} in {seen[-400:]!r}")
os.write(fd, b"PS1='READY> '\n")
expect(rb"READY> ")
os.write(fd, b"%s exec-env %s 'echo started; read line; echo got:$line; sleep 300'\n" % (rsops.encode(), file.encode()))
expect(rb"started")
time.sleep(0.2)
os.write(fd, b"\x1a")
expect(rb"Stopped")
expect(rb"READY> ")
os.write(fd, b"fg\n")
time.sleep(0.2)
os.write(fd, b"hello\n")
expect(rb"got:hello")
time.sleep(0.2)
os.write(fd, b"\x03")
expect(rb"READY> ")
os.write(fd, b"echo status=$?\n")
status = expect(rb"status=(\d+)").group(1).decode()
os.write(fd, b"exit\n")
with open(out, "w") as f:
    f.write(status)
"#;

#[test]
fn job_control_works_in_a_terminal() {
    let setup = Setup::new();
    let file = setup.dotenv();
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        return;
    }
    let script = setup
        .sandbox
        .write("job_control.py", JOB_CONTROL.as_bytes());
    let out = setup.path("job_control.status");
    let mut driver = Command::new("python3");
    driver
        .arg(&script)
        .arg(crate::util::rsops_bin())
        .arg(&file)
        .arg(&out)
        .env("SOPS_AGE_KEY_FILE", &setup.key_file)
        .env("TMPDIR", &setup.tmpdir)
        .env("HOME", setup.sandbox.dir.path())
        .env("TERM", "dumb");
    let output = run(&mut driver, b"");
    assert_ok("job control", &output);
    // Ctrl-C reached the command, which rsops reports as 128+SIGINT.
    assert_eq!(fs::read_to_string(&out).unwrap_or_default(), "130");
}
