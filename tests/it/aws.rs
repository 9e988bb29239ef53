//! AWS KMS end to end, against the LocalStack that `scripts/test` starts
//! (`localstack/start` exports the endpoint and key ARNs read here).
//!
//! Files encrypted by the reference `sops` with `--kms ARN`, an alias ARN,
//! a key in another region, `--encryption-context`, `ARN+ROLE_ARN`,
//! `--aws-profile` and mixed with age decrypt with rsops to exactly what
//! `sops decrypt` prints. Failures (wrong context, disabled or unknown key,
//! no credentials, an endpoint that refuses or never answers) exit 128 with
//! a message naming the ARN, and never hang.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{assert_same_success, fixture, run, Sandbox};

/// What `localstack/start` exported.
struct LocalStack {
    endpoint: String,
    arn: String,
    arn_eu: String,
    alias_arn: String,
    role_arn: String,
    disabled_arn: String,
    disabled_enc: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the AWS KMS tests need LocalStack. Run them with scripts/test, \
             or `eval \"$(localstack/start)\"` after localstack/install (then localstack/stop)"
        )
    })
}

impl LocalStack {
    fn from_env() -> LocalStack {
        LocalStack {
            endpoint: var("RSOPS_TEST_AWS_ENDPOINT"),
            arn: var("RSOPS_TEST_KMS_ARN"),
            arn_eu: var("RSOPS_TEST_KMS_ARN_EU"),
            alias_arn: var("RSOPS_TEST_KMS_ALIAS_ARN"),
            role_arn: var("RSOPS_TEST_KMS_ROLE_ARN"),
            disabled_arn: var("RSOPS_TEST_KMS_DISABLED_ARN"),
            disabled_enc: var("RSOPS_TEST_KMS_DISABLED_ENC"),
        }
    }
}

/// How a command reaches AWS.
#[derive(Clone, Copy)]
enum Creds {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` in the environment.
    Env,
    /// Nothing: only what `HOME` holds (the chain must not find IMDS).
    None,
}

struct AwsSandbox {
    sandbox: Sandbox,
    ls: LocalStack,
}

impl AwsSandbox {
    fn new(age_keys: usize) -> AwsSandbox {
        AwsSandbox {
            sandbox: Sandbox::new(age_keys),
            ls: LocalStack::from_env(),
        }
    }

    /// `cmd` pointed at `endpoint` with the given credentials. Instance
    /// metadata is off so a missing credential fails at once, not after
    /// the SDK probes 169.254.169.254.
    fn aws(&self, mut cmd: Command, endpoint: &str, creds: Creds) -> Command {
        cmd.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if let Creds::Env = creds {
            cmd.env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test");
        }
        cmd
    }

    fn sops(&self, creds: Creds) -> Command {
        self.aws(self.sandbox.sops(), &self.ls.endpoint, creds)
    }

    fn rsops_at(&self, endpoint: &str, creds: Creds) -> Command {
        self.aws(self.sandbox.rsops(), endpoint, creds)
    }

    fn rsops(&self, creds: Creds) -> Command {
        self.rsops_at(&self.ls.endpoint, creds)
    }

    /// Encrypts a fixture with the reference.
    fn encrypt(&self, plain: &Path, args: &[&str], out_name: &str, creds: Creds) -> PathBuf {
        let output = run(self.sops(creds).arg("encrypt").args(args).arg(plain), b"");
        assert!(
            output.status.success(),
            "sops encrypt {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.sandbox.write(out_name, &output.stdout)
    }

    /// `sops decrypt` and `rsops decrypt` of `file` must agree, and succeed.
    fn assert_decrypts_like_sops(&self, file: &Path, creds: Creds) {
        let reference = run(self.sops(creds).arg("decrypt").arg(file), b"");
        assert!(
            reference.status.success(),
            "reference could not decrypt {}: {}",
            file.display(),
            String::from_utf8_lossy(&reference.stderr)
        );
        let ours = run(self.rsops(creds).arg("decrypt").arg(file), b"");
        assert_same_success(&file.display().to_string(), &reference, &ours);
    }

    /// A copy of `file` with every `from` replaced by `to`.
    fn edited(&self, file: &Path, from: &str, to: &str, out_name: &str) -> PathBuf {
        let text = std::fs::read_to_string(file).expect("read encrypted file");
        assert!(text.contains(from), "{from:?} not in {}", file.display());
        self.sandbox
            .write(out_name, text.replace(from, to).as_bytes())
    }
}

/// The value of the (only) `enc:` line of an encrypted YAML file.
fn enc_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("read encrypted file");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("enc: "))
        .expect("an enc line")
        .to_string()
}

/// Runs `cmd`, killing it and failing the test if it outlives `limit`: a
/// watchdog against hangs, not a timing assertion.
fn run_with_watchdog(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rsops");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rsops still running after {limit:?}: it must give up on its own");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect output")
}

/// Asserts a failed decrypt: exit 128, no plaintext, and stderr naming the
/// ARN and containing `what`.
#[track_caller]
fn assert_fails(out: &Output, arn: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128), "exit code; stderr: {stderr}");
    assert!(out.stdout.is_empty(), "no plaintext on failure");
    assert!(stderr.contains(arn), "stderr should name {arn}: {stderr}");
    assert!(
        stderr.contains(what),
        "stderr should say {what:?}: {stderr}"
    );
}

#[test]
fn key_arn_every_format() {
    let s = AwsSandbox::new(0);
    for name in [
        "basic.yaml",
        "basic.json",
        "basic.env",
        "basic.ini",
        "basic.bin",
    ] {
        let ext = name.rsplit('.').next().unwrap_or("bin");
        let file = s.encrypt(
            &fixture(name),
            &["--kms", &s.ls.arn],
            &format!("{name}.enc.{ext}"),
            Creds::Env,
        );
        s.assert_decrypts_like_sops(&file, Creds::Env);
    }
}

#[test]
fn alias_arn_and_region_from_the_arn() {
    let s = AwsSandbox::new(0);
    let alias = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.alias_arn],
        "alias.enc.yaml",
        Creds::Env,
    );
    s.assert_decrypts_like_sops(&alias, Creds::Env);
    // The eu-west-1 key exists only in that region: decrypting works only if
    // the region comes from the ARN, not from AWS_REGION.
    let eu = s.encrypt(
        &fixture("basic.json"),
        &["--kms", &s.ls.arn_eu],
        "eu.enc.json",
        Creds::Env,
    );
    let reference = run(s.sops(Creds::Env).arg("decrypt").arg(&eu), b"");
    let ours = run(
        s.rsops(Creds::Env)
            .env("AWS_REGION", "us-east-1")
            .arg("decrypt")
            .arg(&eu),
        b"",
    );
    assert!(reference.status.success());
    assert_same_success("eu-west-1 key", &reference, &ours);
}

#[test]
fn encryption_context() {
    let s = AwsSandbox::new(0);
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &[
            "--kms",
            &s.ls.arn,
            "--encryption-context",
            "app:rsops,env:test,Owner:ops team",
        ],
        "context.enc.yaml",
        Creds::Env,
    );
    s.assert_decrypts_like_sops(&file, Creds::Env);
}

#[test]
fn wrong_encryption_context() {
    let s = AwsSandbox::new(0);
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn, "--encryption-context", "app:rsops"],
        "context.enc.yaml",
        Creds::Env,
    );
    let wrong = s.edited(&file, "app: rsops", "app: other", "wrong.enc.yaml");
    let reference = run(s.sops(Creds::Env).arg("decrypt").arg(&wrong), b"");
    assert_eq!(
        reference.status.code(),
        Some(128),
        "the reference fails too"
    );
    let ours = run(s.rsops(Creds::Env).arg("decrypt").arg(&wrong), b"");
    assert_fails(&ours, &s.ls.arn, "encryption context");
}

/// One request that went through the [`Recorder`] and LocalStack's answer.
struct Exchange {
    request: String,
    response: String,
}

/// A plain-HTTP proxy in front of LocalStack (rsops' `AWS_ENDPOINT_URL`)
/// that records every request and answer: LocalStack accepts any
/// credentials, so only the traffic shows which calls were made and with
/// whose keys. One request per connection (`Connection: close` both ways).
struct Recorder {
    endpoint: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl Recorder {
    fn start(upstream: &str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let log = exchanges.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, log) = (upstream.clone(), log.clone());
                std::thread::spawn(move || forward(client, &upstream, &log));
            }
        });
        Recorder {
            endpoint,
            exchanges,
        }
    }

    fn exchanges(&self) -> std::sync::MutexGuard<'_, Vec<Exchange>> {
        self.exchanges.lock().expect("recorder log")
    }
}

/// One HTTP/1.1 message's head and `Content-Length` body from `stream`.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
}

/// `message` with its `Connection` header replaced by `Connection: close`.
fn closing(message: &[u8]) -> Vec<u8> {
    let Some(end) = message.windows(4).position(|w| w == b"\r\n\r\n") else {
        return message.to_vec();
    };
    let head = String::from_utf8_lossy(&message[..end]);
    let mut out: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("Connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&message[end + 4..]);
    out
}

fn forward(mut client: TcpStream, upstream: &str, log: &Mutex<Vec<Exchange>>) {
    let Some(request) = read_request(&mut client) else {
        return;
    };
    let mut response = Vec::new();
    if let Ok(mut server) = TcpStream::connect(upstream) {
        if server.write_all(&closing(&request)).is_ok() {
            server.read_to_end(&mut response).ok();
        }
    }
    log.lock().expect("recorder log").push(Exchange {
        request: String::from_utf8_lossy(&request).into_owned(),
        response: String::from_utf8_lossy(&response).into_owned(),
    });
    client.write_all(&closing(&response)).ok();
}

/// The text between `start` and `end` in `text`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    Some(&text[from..from + text[from..].find(end)?])
}

/// The role is used, not just accepted: rsops calls STS AssumeRole for
/// exactly the entry's role, with the environment's keys, and signs the KMS
/// Decrypt with the temporary keys that call returned (LocalStack would
/// decrypt with any keys, so the output alone proves nothing about the role).
#[test]
fn role_assumed_with_sts() {
    let s = AwsSandbox::new(0);
    let key = format!("{}+{}", s.ls.arn, s.ls.role_arn);
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &key],
        "role.enc.yaml",
        Creds::Env,
    );
    assert!(std::fs::read_to_string(&file)
        .expect("read")
        .contains(&format!("role: {}", s.ls.role_arn)));
    s.assert_decrypts_like_sops(&file, Creds::Env);

    let recorder = Recorder::start(&s.ls.endpoint);
    let reference = run(s.sops(Creds::Env).arg("decrypt").arg(&file), b"");
    let ours = run(
        s.rsops_at(&recorder.endpoint, Creds::Env)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same_success("role through the recorder", &reference, &ours);
    let exchanges = recorder.exchanges();
    let calls: Vec<&str> = exchanges
        .iter()
        .map(|e| e.request.lines().next().unwrap_or_default())
        .collect();
    let assume = exchanges
        .iter()
        .find(|e| e.request.contains("Action=AssumeRole"))
        .unwrap_or_else(|| panic!("no STS AssumeRole call; calls: {calls:?}"));
    let role = s.ls.role_arn.replace(':', "%3A").replace('/', "%2F");
    assert!(
        assume.request.contains(&format!("RoleArn={role}")),
        "AssumeRole of another role: {}",
        assume.request
    );
    assert!(
        assume.request.contains("Credential=test/"),
        "AssumeRole not signed with the environment's keys: {}",
        assume.request
    );
    let temporary = between(&assume.response, "<AccessKeyId>", "</AccessKeyId>")
        .unwrap_or_else(|| panic!("no AccessKeyId in: {}", assume.response));
    assert_ne!(temporary, "test");
    let decrypts: Vec<&Exchange> = exchanges
        .iter()
        .filter(|e| e.request.contains("TrentService.Decrypt"))
        .collect();
    assert!(
        !decrypts.is_empty(),
        "no KMS Decrypt call; calls: {calls:?}"
    );
    for decrypt in decrypts {
        assert!(
            decrypt
                .request
                .contains(&format!("Credential={temporary}/")),
            "KMS Decrypt not signed with the role's keys ({temporary}): {}",
            decrypt.request
        );
    }
}

/// Writes `~/.aws/config` and `~/.aws/credentials` into the sandbox's HOME.
fn write_profile(s: &AwsSandbox, config: &str, credentials: &str) {
    std::fs::create_dir_all(s.sandbox.path(".aws")).expect("~/.aws");
    s.sandbox.write(".aws/config", config.as_bytes());
    s.sandbox.write(".aws/credentials", credentials.as_bytes());
}

#[test]
fn named_profile() {
    let s = AwsSandbox::new(0);
    write_profile(
        &s,
        "[profile rsops-test]\nregion = eu-central-1\n",
        "[rsops-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    );
    // Credentials only in the profile: without it there are none.
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn, "--aws-profile", "rsops-test"],
        "profile.enc.yaml",
        Creds::None,
    );
    assert!(std::fs::read_to_string(&file)
        .expect("read")
        .contains("aws_profile: rsops-test"));
    s.assert_decrypts_like_sops(&file, Creds::None);
}

#[test]
fn named_profile_wins_over_environment_credentials() {
    let s = AwsSandbox::new(0);
    write_profile(
        &s,
        "[profile rsops-test]\nregion = us-east-1\n",
        "[rsops-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    );
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn, "--aws-profile", "rsops-test"],
        "profile.enc.yaml",
        Creds::None,
    );
    // A profile whose credential process fails: the reference uses the
    // profile even though the environment holds working keys, and so must we.
    write_profile(
        &s,
        "[profile rsops-test]\ncredential_process = /bin/false\n",
        "",
    );
    let reference = run(s.sops(Creds::Env).arg("decrypt").arg(&file), b"");
    assert_eq!(reference.status.code(), Some(128), "the reference fails");
    let ours = run(s.rsops(Creds::Env).arg("decrypt").arg(&file), b"");
    assert_fails(
        &ours,
        &s.ls.arn,
        "could not get AWS credentials: Error retrieving credentials: external process exited",
    );
}

#[test]
fn mixed_with_age() {
    let s = AwsSandbox::new(1);
    let recipient = s.sandbox.keys[0].recipient.clone();
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn, "--age", &recipient],
        "mixed.enc.yaml",
        Creds::Env,
    );
    // No age key anywhere: KMS alone unwraps the data key.
    s.assert_decrypts_like_sops(&file, Creds::Env);

    // The age key present and no AWS credentials: age alone.
    let key_file = s.sandbox.key_file(&[0]);
    let reference = run(
        s.sops(Creds::None)
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert!(reference.status.success());
    let ours = run(
        s.rsops(Creds::None)
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same_success("age without AWS credentials", &reference, &ours);
}

#[test]
fn missing_credentials() {
    let s = AwsSandbox::new(0);
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn],
        "kms.enc.yaml",
        Creds::Env,
    );
    let ours = run(s.rsops(Creds::None).arg("decrypt").arg(&file), b"");
    assert_fails(&ours, &s.ls.arn, "no AWS credentials");
    assert!(
        String::from_utf8_lossy(&ours.stderr).contains("AWS_ACCESS_KEY_ID"),
        "a hint says where credentials come from"
    );
}

#[test]
fn disabled_and_unknown_keys() {
    let s = AwsSandbox::new(0);
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn],
        "kms.enc.yaml",
        Creds::Env,
    );
    let enc = enc_of(&file);
    // The entry rewritten to a key that was disabled after wrapping.
    let disabled = s.edited(&file, &s.ls.arn, &s.ls.disabled_arn, "disabled.tmp.yaml");
    let disabled = s.edited(&disabled, &enc, &s.ls.disabled_enc, "disabled.enc.yaml");
    let ours = run(s.rsops(Creds::Env).arg("decrypt").arg(&disabled), b"");
    // Not just "disabled": the file is called disabled.enc.yaml.
    assert_fails(&ours, &s.ls.disabled_arn, "the KMS key is disabled");

    let unknown_arn = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000";
    let unknown = s.edited(&file, &s.ls.arn, unknown_arn, "unknown.enc.yaml");
    let ours = run(s.rsops(Creds::Env).arg("decrypt").arg(&unknown), b"");
    assert_fails(&ours, unknown_arn, "does not exist");
}

#[test]
fn endpoint_refusing_connections() {
    let s = AwsSandbox::new(0);
    let file = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn],
        "kms.enc.yaml",
        Creds::Env,
    );
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let ours = run_with_watchdog(
        s.rsops_at(&endpoint, Creds::Env).arg("decrypt").arg(&file),
        Duration::from_secs(60),
    );
    assert_fails(&ours, &s.ls.arn, "could not reach AWS KMS");
}

#[test]
fn endpoint_that_never_answers() {
    let s = AwsSandbox::new(1);
    let recipient = s.sandbox.keys[0].recipient.clone();
    let kms_only = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn],
        "kms.enc.yaml",
        Creds::Env,
    );
    let mixed = s.encrypt(
        &fixture("basic.yaml"),
        &["--kms", &s.ls.arn, "--age", &recipient],
        "mixed.enc.yaml",
        Creds::Env,
    );
    // Accepts connections (the kernel completes the handshake) and never
    // says a word.
    let silent = TcpListener::bind("127.0.0.1:0").expect("listener");
    let endpoint = format!("http://{}", silent.local_addr().expect("address"));

    // A deadline shorter than the SDK's own timeouts: the report must name
    // exactly it (a missing deadline would show the SDK's error instead).
    let ours = run_with_watchdog(
        s.rsops_at(&endpoint, Creds::Env)
            .args(["decrypt", "--key-timeout", "2s"])
            .arg(&kms_only),
        Duration::from_secs(60),
    );
    assert_fails(
        &ours,
        &s.ls.arn,
        &format!("kms {}: timed out after 2000 ms", s.ls.arn),
    );

    // With an age key at hand the silent KMS does not matter.
    let key_file = s.sandbox.key_file(&[0]);
    let ours = run_with_watchdog(
        s.rsops_at(&endpoint, Creds::Env)
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&mixed),
        Duration::from_secs(60),
    );
    let reference = run(
        s.sops(Creds::None)
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&mixed),
        b"",
    );
    assert_same_success("age beside a silent KMS", &reference, &ours);
    drop(silent);
}
