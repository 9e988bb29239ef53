//! The command-line surface scripts rely on.

use std::os::unix::fs::PermissionsExt;

use crate::util::{assert_same, assert_same_success, fixture, run, Sandbox};

fn setup() -> (Sandbox, std::path::PathBuf, std::path::PathBuf) {
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &recipient],
        "secret.enc.yaml",
    );
    let key_file = sandbox.key_file(&[0]);
    (sandbox, encrypted, key_file)
}

#[test]
fn legacy_decrypt_flags() {
    let (sandbox, encrypted, key_file) = setup();
    let reference = run(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    for flag in ["-d", "--decrypt"] {
        let ours = run(
            sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", &key_file)
                .arg(flag)
                .arg(&encrypted),
            b"",
        );
        assert_same_success(flag, &reference, &ours);
    }
}

#[test]
fn extract_paths() {
    let (sandbox, encrypted, key_file) = setup();
    // (path, whether it exists): failures are compared too, but must be
    // failures of the reference as well as ours.
    for (path, exists) in [
        (r#"["database"]["password"]"#, true),
        (r#"["database"]"#, true),
        (r#"["database"]["port"]"#, true),
        (r#"["tokens"]"#, true),
        (r#"["tokens"][0]"#, true),
        (r#"["tokens"][3]"#, true),
        (r#"["multi"]"#, true),
        (r#"["nope"]"#, false),
        ("bad", false),
    ] {
        let (reference, ours) =
            sandbox.both(&key_file, &["decrypt", "--extract", path], &encrypted);
        if exists {
            assert_same_success(path, &reference, &ours);
        } else {
            assert!(
                !reference.status.success(),
                "{path}: the reference succeeded"
            );
            assert_same(path, &reference, &ours);
        }
    }
}

#[test]
fn output_file_is_private() {
    let (sandbox, encrypted, key_file) = setup();
    let out = sandbox.path("plain.yaml");
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .args(["decrypt", "--output"])
            .arg(&out)
            .arg(&encrypted),
        b"",
    );
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert!(ours.stdout.is_empty());
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let reference = run(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_eq!(std::fs::read(&out).unwrap(), reference.stdout);
}

#[test]
fn stdin_with_input_type() {
    let (sandbox, encrypted, key_file) = setup();
    let bytes = std::fs::read(&encrypted).unwrap();
    let reference = run(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    for args in [
        vec!["decrypt", "--input-type", "yaml"],
        vec!["decrypt", "--input-type", "yaml", "-"],
        vec!["decrypt", "--filename-override", "x.yaml"],
    ] {
        let ours = run(
            sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", &key_file)
                .args(&args),
            &bytes,
        );
        assert_same_success(&format!("{args:?}"), &reference, &ours);
    }
}

#[test]
fn age_key_from_env_and_default_location() {
    let (sandbox, encrypted, _) = setup();
    let reference = run(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY", &sandbox.keys[0].secret)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY", &sandbox.keys[0].secret)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_success("SOPS_AGE_KEY", &reference, &ours);

    let config = sandbox.path(".config/sops/age");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("keys.txt"),
        format!("{}\n", sandbox.keys[0].secret),
    )
    .unwrap();
    let ours = run(sandbox.rsops().arg("decrypt").arg(&encrypted), b"");
    assert_same_success("~/.config/sops/age/keys.txt", &reference, &ours);

    let script = sandbox.write(
        "key-cmd.sh",
        format!("#!/bin/sh\necho {}\n", sandbox.keys[0].secret).as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_file(config.join("keys.txt")).unwrap();
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY_CMD", &script)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_success("SOPS_AGE_KEY_CMD", &reference, &ours);
}

#[test]
fn indent_from_flag_and_config() {
    let (sandbox, encrypted, key_file) = setup();
    let json = sandbox.sops_encrypt(
        &fixture("basic.json"),
        &["--age", &sandbox.keys[0].recipient],
        "secret.enc.json",
    );
    // sops 3.11 honours --indent only in the legacy `-d` form; 3.13 and
    // rsops also take it before the `decrypt` subcommand.
    for file in [&encrypted, &json] {
        let (reference, ours) = sandbox.both(&key_file, &["--indent", "2", "-d"], file);
        assert_same_success(&format!("--indent 2 {}", file.display()), &reference, &ours);
    }
    sandbox.write(
        ".sops.yaml",
        b"stores:\n    yaml:\n        indent: 2\n    json:\n        indent: 3\n",
    );
    for file in [&encrypted, &json] {
        let (reference, ours) = sandbox.both(&key_file, &["decrypt"], file);
        assert_same_success(
            &format!("config indent {}", file.display()),
            &reference,
            &ours,
        );
    }
}

#[test]
fn age_ssh_identities() {
    let sandbox = Sandbox::new(0);
    let ssh_dir = sandbox.path(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let key = ssh_dir.join("id_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    let public = std::fs::read_to_string(ssh_dir.join("id_ed25519.pub")).unwrap();
    let recipient = public.trim().to_string();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.env"),
        &["--age", &recipient],
        "secret.enc.env",
    );
    // Found at ~/.ssh/id_ed25519 (HOME is the sandbox).
    let reference = run(sandbox.sops().arg("decrypt").arg(&encrypted), b"");
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let ours = run(sandbox.rsops().arg("decrypt").arg(&encrypted), b"");
    assert_same_success("~/.ssh/id_ed25519", &reference, &ours);
    // Named by SOPS_AGE_SSH_PRIVATE_KEY_FILE from elsewhere.
    let moved = sandbox.path("elsewhere_key");
    std::fs::rename(&key, &moved).unwrap();
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &moved)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_success("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &reference, &ours);
}

#[test]
fn version_names_the_key_sources_and_the_file_format() {
    let sandbox = Sandbox::new(0);
    let ours = run(sandbox.rsops().arg("--version"), b"");
    assert!(ours.status.success());
    let text = String::from_utf8_lossy(&ours.stdout);
    assert!(text.starts_with("rsops "), "{text}");
    assert!(text.contains("writes version 3.11.0"), "{text}");
    let sources = text
        .lines()
        .find_map(|l| l.strip_prefix("key sources: "))
        .unwrap_or_default();
    for source in ["age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"] {
        assert!(sources.split(", ").any(|s| s == source), "{text}");
    }
}

#[test]
fn completions_load_in_their_shells_and_the_man_page_renders() {
    let sandbox = Sandbox::new(0);
    // The spelling sops 3.11 has: `completion bash`, `completion zsh`.
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let ours = run(sandbox.rsops().args(["completion", shell]), b"");
        assert!(ours.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&ours.stdout).contains("exec-file"),
            "{shell}"
        );
    }
    let script = sandbox.write(
        "completion.bash",
        &run(sandbox.rsops().args(["completion", "bash"]), b"").stdout,
    );
    let loaded = run(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p rsops", script.display())),
        b"",
    );
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("rsops"),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let page = run(sandbox.rsops().arg("man"), b"");
    assert!(page.status.success());
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains(".TH rsops 1"), "{page}");
    assert!(page.contains("exec\\-env"), "{page}");
    let unknown = run(sandbox.rsops().args(["completion", "tcsh"]), b"");
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn filestatus_answers_as_the_reference_does() {
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let mut files = Vec::new();
    for name in [
        "basic.yaml",
        "basic.json",
        "basic.env",
        "basic.ini",
        "basic.bin",
    ] {
        files.push(fixture(name));
        files.push(sandbox.sops_encrypt(
            &fixture(name),
            &["--age", &recipient],
            &format!("enc-{name}"),
        ));
    }
    files.push(sandbox.path("missing.yaml"));
    files.push(sandbox.write("truncated.json", b"{\"a\":"));
    for file in &files {
        let reference = run(sandbox.sops().arg("filestatus").arg(file), b"");
        let ours = run(sandbox.rsops().arg("filestatus").arg(file), b"");
        assert_eq!(ours.stdout, reference.stdout, "{}", file.display());
        assert_eq!(
            ours.status.code(),
            reference.status.code(),
            "{}",
            file.display()
        );
    }
    let encrypted = run(
        sandbox
            .rsops()
            .arg("filestatus")
            .arg(sandbox.path("enc-basic.yaml")),
        b"",
    );
    assert_eq!(encrypted.stdout, b"{\"encrypted\":true}\n");
    // --input-type reads a file whatever its name says.
    let as_json = sandbox.write(
        "looks-plain.txt",
        &std::fs::read(sandbox.path("enc-basic.json")).unwrap(),
    );
    for tool in [sandbox.sops(), sandbox.rsops()] {
        let mut tool = tool;
        let output = run(
            tool.args(["filestatus", "--input-type", "json"])
                .arg(&as_json),
            b"",
        );
        assert_eq!(output.stdout, b"{\"encrypted\":true}\n", "{tool:?}");
    }
}
