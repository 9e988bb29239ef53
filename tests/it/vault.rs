//! HashiCorp Vault / OpenBao transit end to end, against the OpenBao dev
//! server that `openbao/start` runs (scripts/test starts it and exports
//! `RSOPS_TEST_VAULT_*`): files encrypted by the reference `sops` with
//! `--hc-vault-transit` (two engine paths, a key with several versions, key
//! groups with age) decrypt with rsops to exactly what `sops decrypt`
//! prints. Bad and revoked tokens, addresses outside the allow-list, and a
//! server that is sealed, stopped, silent or absent fail with exit 128 and
//! a message naming the server, or succeed through an age entry.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::util::{assert_same_success, run, Sandbox};

const YAML: &str = "name: rsops\nsecret: hunter2 # a comment\nnested:\n    list:\n        - 1\n        - two\n    empty: \"\"\n";
const JSON: &str = "{\n\t\"a\": \"b\",\n\t\"n\": [1, 2.5, true, null]\n}\n";
const DOTENV: &str = "A=1\nB=two words\n";

/// The OpenBao server of the test run.
struct Server {
    addr: String,
    token: String,
    bao: PathBuf,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is unset: the Vault tests need the OpenBao dev server; run them \
                     with scripts/test, or `openbao/install && eval \"$(openbao/start)\"` first"
                )
            })
        };
        Server {
            addr: var("RSOPS_TEST_VAULT_ADDR"),
            token: var("RSOPS_TEST_VAULT_TOKEN"),
            bao: PathBuf::from(var("RSOPS_TEST_BAO")),
        }
    })
}

/// A name no other test (or earlier run against the same server) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One request to a Vault server's HTTP API (HTTP/1.1, no keep-alive):
/// status and body.
fn api(addr: &str, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect to the Vault server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} /v1/{path} HTTP/1.1\r\nHost: {host}\r\nX-Vault-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `api` that must succeed.
fn api_ok(addr: &str, token: &str, method: &str, path: &str, body: &str) -> String {
    let (status, answer) = api(addr, token, method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: HTTP {status}: {answer}"
    );
    answer
}

/// The value of a string field in a JSON answer.
fn json_field(body: &str, name: &str) -> String {
    let start = body
        .find(&format!("\"{name}\":\""))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + name.len()
        + 4;
    body[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A sandbox whose commands talk to a Vault server (`VAULT_ADDR` set, the
/// root token in `VAULT_TOKEN` unless a test says otherwise).
struct VaultSandbox {
    sandbox: Sandbox,
    addr: String,
}

impl VaultSandbox {
    fn new(age_keys: usize) -> VaultSandbox {
        VaultSandbox::on(age_keys, &server().addr)
    }

    fn on(age_keys: usize, addr: &str) -> VaultSandbox {
        VaultSandbox {
            sandbox: Sandbox::new(age_keys),
            addr: addr.to_string(),
        }
    }

    fn uri(&self, engine: &str, key: &str) -> String {
        format!("{}/v1/{engine}/keys/{key}", self.addr)
    }

    fn with_vault(&self, mut cmd: Command) -> Command {
        cmd.env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", &server().token);
        cmd
    }

    fn sops(&self) -> Command {
        self.with_vault(self.sandbox.sops())
    }

    fn rsops(&self) -> Command {
        self.with_vault(self.sandbox.rsops())
    }

    /// Encrypts `plain` (written as `name`) with the reference.
    fn encrypt(&self, name: &str, plain: &str, args: &[&str]) -> PathBuf {
        let plain_path = self.sandbox.write(name, plain.as_bytes());
        let output = run(self.sops().arg("encrypt").args(args).arg(&plain_path), b"");
        assert!(
            output.status.success(),
            "sops encrypt {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.sandbox.write(&format!("enc.{name}"), &output.stdout)
    }

    /// `sops decrypt` and `rsops decrypt` agree, with `env` added to both.
    fn assert_decrypts_like_sops(&self, file: &Path, env: &[(&str, &str)]) {
        let mut sops = self.sops();
        let mut rsops = self.rsops();
        for (k, v) in env {
            sops.env(k, v);
            rsops.env(k, v);
        }
        let reference = run(sops.arg("decrypt").arg(file), b"");
        assert!(
            reference.status.success(),
            "reference could not decrypt {}: {}",
            file.display(),
            String::from_utf8_lossy(&reference.stderr)
        );
        let ours = run(rsops.arg("decrypt").arg(file), b"");
        assert_same_success(&file.display().to_string(), &reference, &ours);
    }

    fn age_key_file(&self) -> PathBuf {
        self.sandbox.key_file(&[0])
    }
}

/// Asserts a key failure: exit 128, nothing on stdout, and every `needle`
/// in stderr.
#[track_caller]
fn assert_key_failure(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128), "stderr: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout not empty; stderr: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// The `enc` of the file's first `hc_vault` entry.
fn vault_enc(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("read");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("enc: vault:"))
        .map(|rest| format!("vault:{rest}"))
        .expect("hc_vault enc")
}

/// Rewrites the file's `vault_address` (metadata is outside the MAC, so the
/// file still decrypts through its other entries).
fn point_at(file: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(text.contains(from));
    let moved = file.with_extension("moved.yaml");
    std::fs::write(&moved, text.replace(from, to)).expect("write");
    moved
}

/// A loopback TCP server standing in for someone else's: records every
/// connection's request and answers 403 (or never answers).
struct Impostor {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Impostor {
    fn start(answer: bool) -> Impostor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).ok();
                        stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                        let mut buf = [0u8; 8192];
                        let n = stream.read(&mut buf).unwrap_or(0);
                        seen.lock()
                            .expect("lock")
                            .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                        if answer {
                            let body = r#"{"errors":["permission denied"]}"#;
                            write!(
                                stream,
                                "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .ok();
                        } else {
                            held.push(stream);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Impostor {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("impostor thread");
        }
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.requests();
    }
}

/// A second OpenBao dev server owned by one test, killed when dropped.
struct OwnServer {
    child: Child,
    addr: String,
}

impl OwnServer {
    /// A plain-HTTP dev server with transit at `sops` and key `k`.
    fn start(home: &Path) -> OwnServer {
        let own = OwnServer::spawn(home, &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let host = own.addr.trim_start_matches("http://").to_string();
        while !(TcpStream::connect(&host).is_ok()
            && api(&own.addr, "root", "GET", "sys/health", "").0 == 200)
        {
            assert!(
                Instant::now() < deadline,
                "OpenBao at {} did not start",
                own.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        api_ok(
            &own.addr,
            "root",
            "POST",
            "sys/mounts/sops",
            r#"{"type":"transit"}"#,
        );
        api_ok(&own.addr, "root", "POST", "sops/keys/k", "{}");
        own
    }

    /// An HTTPS dev server whose CA is written to `cert_dir/vault-ca.pem`,
    /// set up through the `bao` CLI (the raw HTTP helper speaks no TLS).
    fn start_tls(home: &Path, cert_dir: &Path) -> OwnServer {
        let dir = format!("-dev-tls-cert-dir={}", cert_dir.display());
        let own = OwnServer::spawn(home, &["-dev-tls", &dir]);
        let bao = |args: &[&str]| {
            Command::new(&server().bao)
                .args(args)
                .env("HOME", home)
                .env("BAO_ADDR", &own.addr)
                .env("BAO_CACERT", cert_dir.join("vault-ca.pem"))
                .env("BAO_TOKEN", "root")
                .output()
                .expect("run bao")
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !bao(&["status"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "OpenBao at {} did not start",
                own.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for args in [
            &["secrets", "enable", "-path=sops", "transit"][..],
            &["write", "-f", "sops/keys/k"][..],
        ] {
            let out = bao(args);
            assert!(
                out.status.success(),
                "bao {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        own
    }

    fn spawn(home: &Path, extra: &[&str]) -> OwnServer {
        let port = free_port();
        let scheme = if extra.is_empty() { "http" } else { "https" };
        let child = Command::new(&server().bao)
            .args(["server", "-dev", "-dev-root-token-id=root"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .args(extra)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a second OpenBao dev server");
        OwnServer {
            child,
            addr: format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn reference_files_decrypt_identically_across_engines_and_keys() {
    let sb = VaultSandbox::new(0);
    let keys = [
        ("sops", "first"),
        ("sops", "rotated"),
        ("team/transit", "other"),
    ];
    for (engine, key) in keys {
        let uri = sb.uri(engine, key);
        let tag = key;
        for (ext, plain) in [("yaml", YAML), ("json", JSON), ("env", DOTENV)] {
            let file = sb.encrypt(
                &format!("{tag}.{ext}"),
                plain,
                &["--hc-vault-transit", &uri],
            );
            sb.assert_decrypts_like_sops(&file, &[]);
        }
    }
    // `rotated` has three versions: new data keys are wrapped by the latest.
    let file = sb.sandbox.path("enc.rotated.yaml");
    assert!(
        vault_enc(&file).starts_with("vault:v3:"),
        "{}",
        vault_enc(&file)
    );
}

#[test]
fn data_keys_wrapped_by_older_key_versions_still_decrypt() {
    let srv = server();
    let sb = VaultSandbox::new(0);
    let key = unique("versions");
    api_ok(
        &srv.addr,
        &srv.token,
        "POST",
        &format!("sops/keys/{key}"),
        "{}",
    );
    let uri = sb.uri("sops", &key);
    let mut files = Vec::new();
    for version in 1..=3 {
        let file = sb.encrypt(
            &format!("v{version}.yaml"),
            YAML,
            &["--hc-vault-transit", &uri],
        );
        assert!(vault_enc(&file).starts_with(&format!("vault:v{version}:")));
        files.push(file);
        api_ok(
            &srv.addr,
            &srv.token,
            "POST",
            &format!("sops/keys/{key}/rotate"),
            "{}",
        );
    }
    for file in &files {
        sb.assert_decrypts_like_sops(file, &[]);
    }
}

#[test]
fn the_token_is_read_from_the_vault_token_file() {
    let sb = VaultSandbox::new(0);
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &["--hc-vault-transit", &sb.uri("sops", "first")],
    );
    sb.sandbox
        .write(".vault-token", format!("{}\n", server().token).as_bytes());
    let reference = run(
        sb.sops()
            .env_remove("VAULT_TOKEN")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    let ours = run(
        sb.rsops()
            .env_remove("VAULT_TOKEN")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert!(reference.status.success());
    assert_same_success("token from ~/.vault-token", &reference, &ours);

    std::fs::remove_file(sb.sandbox.path(".vault-token")).expect("rm");
    let ours = run(
        sb.rsops()
            .env_remove("VAULT_TOKEN")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_key_failure(&ours, &["no Vault token", ".vault-token", "hint:"]);
}

#[test]
fn key_groups_mixing_age_and_vault() {
    let sb = VaultSandbox::new(1);
    let age = sb.sandbox.keys[0].recipient.clone();
    let uri = sb.uri("team/transit", "other");
    sb.sandbox.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: ['{age}']\n      - hc_vault: ['{uri}']\n"
        )
        .as_bytes(),
    );
    let key_file = sb.age_key_file();
    let key_env = ("SOPS_AGE_KEY_FILE", key_file.to_str().expect("utf-8"));
    let shamir = sb.encrypt("shamir.yaml", YAML, &[]);
    sb.assert_decrypts_like_sops(&shamir, &[key_env]);
    // One share short: no age key.
    let ours = run(sb.rsops().arg("decrypt").arg(&shamir), b"");
    assert_key_failure(&ours, &[&format!("age {age}: no credentials")]);
    // One share short: Vault refuses the token.
    let ours = run(
        sb.rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .env("VAULT_TOKEN", "not-a-token")
            .arg("decrypt")
            .arg(&shamir),
        b"",
    );
    assert_key_failure(&ours, &["permission denied", &sb.addr]);

    // One group holding both: either key alone is enough.
    std::fs::remove_file(sb.sandbox.path(".sops.yaml")).expect("rm");
    let both = sb.encrypt(
        "both.yaml",
        YAML,
        &["--age", &age, "--hc-vault-transit", &uri],
    );
    sb.assert_decrypts_like_sops(&both, &[]);
    sb.assert_decrypts_like_sops(&both, &[key_env, ("VAULT_TOKEN", "not-a-token")]);
}

#[test]
fn a_bad_token_is_denied() {
    let sb = VaultSandbox::new(0);
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &["--hc-vault-transit", &sb.uri("sops", "first")],
    );
    let reference = run(
        sb.sops()
            .env("VAULT_TOKEN", "s.bogus")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    let ours = run(
        sb.rsops()
            .env("VAULT_TOKEN", "s.bogus")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_eq!(ours.status.code(), reference.status.code());
    assert_key_failure(
        &ours,
        &["denied", "permission denied", &sb.addr, "sops/keys/first"],
    );
    assert!(!String::from_utf8_lossy(&ours.stderr).contains("s.bogus"));
}

#[test]
fn a_revoked_token_is_denied() {
    let srv = server();
    let sb = VaultSandbox::new(0);
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &["--hc-vault-transit", &sb.uri("sops", "rotated")],
    );
    let created = api_ok(
        &srv.addr,
        &srv.token,
        "POST",
        "auth/token/create",
        r#"{"ttl":"10m"}"#,
    );
    let child = json_field(&created, "client_token");
    sb.assert_decrypts_like_sops(&file, &[("VAULT_TOKEN", &child)]);

    api_ok(
        &srv.addr,
        &srv.token,
        "POST",
        "auth/token/revoke",
        &format!(r#"{{"token":"{child}"}}"#),
    );
    let ours = run(
        sb.rsops()
            .env("VAULT_TOKEN", &child)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_key_failure(&ours, &["permission denied", &sb.addr]);
    assert!(!String::from_utf8_lossy(&ours.stderr).contains(&child));
}

#[test]
fn addresses_outside_the_allow_list_are_never_contacted() {
    let sb = VaultSandbox::new(1);
    let age = sb.sandbox.keys[0].recipient.clone();
    let key_file = sb.age_key_file();
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &[
            "--age",
            &age,
            "--hc-vault-transit",
            &sb.uri("sops", "first"),
        ],
    );
    let mut impostor = Impostor::start(true);
    let planted = point_at(&file, &sb.addr, &impostor.addr);

    // Default: only VAULT_ADDR (the real server) is trusted.
    let ours = run(sb.rsops().arg("decrypt").arg(&planted), b"");
    assert_key_failure(
        &ours,
        &[
            "refusing to send the Vault token",
            &impostor.addr,
            "SOPS_HC_VAULT_ALLOWLIST",
        ],
    );
    // An age key still opens the file, and the impostor still hears nothing.
    let reference = run(
        sb.sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    let ours = run(
        sb.rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&planted),
        b"",
    );
    assert_same_success("planted address, age key", &reference, &ours);
    // A list that does not name it, and `none`, refuse it too.
    for list in [sb.addr.as_str(), "none"] {
        let ours = run(
            sb.rsops()
                .env("SOPS_HC_VAULT_ALLOWLIST", list)
                .arg("decrypt")
                .arg(&planted),
            b"",
        );
        assert_key_failure(&ours, &["refusing"]);
    }
    assert!(impostor.requests().is_empty(), "the impostor was contacted");

    // `all`, the reference's default, sends the token to whoever the file names.
    let mut impostor = Impostor::start(true);
    let planted = point_at(&file, &sb.addr, &impostor.addr);
    let ours = run(
        sb.rsops()
            .env("SOPS_HC_VAULT_ALLOWLIST", "all")
            .arg("decrypt")
            .arg(&planted),
        b"",
    );
    assert_key_failure(&ours, &["permission denied"]);
    let requests = impostor.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].contains("/v1/sops/decrypt/first"),
        "{}",
        requests[0]
    );
}

#[test]
fn the_allow_list_names_trusted_servers_when_vault_addr_is_unset() {
    let sb = VaultSandbox::new(0);
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &["--hc-vault-transit", &sb.uri("sops", "first")],
    );
    let ours = run(
        sb.rsops()
            .env_remove("VAULT_ADDR")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_key_failure(&ours, &["neither SOPS_HC_VAULT_ALLOWLIST nor VAULT_ADDR"]);
    let listed = format!("https://vault.example.com, {}/", sb.addr);
    let reference = run(sb.sops().arg("decrypt").arg(&file), b"");
    let ours = run(
        sb.rsops()
            .env_remove("VAULT_ADDR")
            .env("SOPS_HC_VAULT_ALLOWLIST", &listed)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same_success("listed address", &reference, &ours);
}

#[test]
fn a_server_nobody_listens_on_is_unreachable() {
    let sb = VaultSandbox::new(1);
    let age = sb.sandbox.keys[0].recipient.clone();
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &[
            "--age",
            &age,
            "--hc-vault-transit",
            &sb.uri("sops", "first"),
        ],
    );
    let gone = format!("http://127.0.0.1:{}", free_port());
    let moved = point_at(&file, &sb.addr, &gone);
    let ours = run(
        sb.rsops()
            .env("SOPS_HC_VAULT_ALLOWLIST", &gone)
            .arg("decrypt")
            .arg(&moved),
        b"",
    );
    assert_key_failure(&ours, &["unreachable", "cannot connect", &gone]);
    let key_file = sb.age_key_file();
    let reference = run(
        sb.sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    let ours = run(
        sb.rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .env("SOPS_HC_VAULT_ALLOWLIST", &gone)
            .arg("decrypt")
            .arg(&moved),
        b"",
    );
    assert_same_success("unreachable Vault, age key", &reference, &ours);
}

#[test]
fn a_server_sealed_then_stopped_mid_run() {
    let home = tempfile::tempdir().expect("home");
    let mut own = OwnServer::start(home.path());
    let sb = VaultSandbox::on(1, &own.addr);
    let age = sb.sandbox.keys[0].recipient.clone();
    let key_file = sb.age_key_file();
    let uri = sb.uri("sops", "k");
    let vault_only = sb.encrypt("v.yaml", YAML, &["--hc-vault-transit", &uri]);
    let with_age = sb.encrypt("a.yaml", YAML, &["--age", &age, "--hc-vault-transit", &uri]);
    sb.assert_decrypts_like_sops(&vault_only, &[]);
    let reference = run(sb.sops().arg("decrypt").arg(&vault_only), b"");

    api_ok(&own.addr, "root", "POST", "sys/seal", "");
    let ours = run(sb.rsops().arg("decrypt").arg(&vault_only), b"");
    assert_key_failure(&ours, &["sealed", &own.addr]);

    own.stop();
    let ours = run(sb.rsops().arg("decrypt").arg(&vault_only), b"");
    assert_key_failure(&ours, &["cannot connect", &own.addr]);
    let ours = run(
        sb.rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&with_age),
        b"",
    );
    assert_same_success("stopped Vault, age key", &reference, &ours);
}

#[test]
fn a_silent_server_is_given_up_on() {
    let sb = VaultSandbox::new(1);
    let age = sb.sandbox.keys[0].recipient.clone();
    let file = sb.encrypt(
        "f.yaml",
        YAML,
        &[
            "--age",
            &age,
            "--hc-vault-transit",
            &sb.uri("sops", "first"),
        ],
    );
    let mut silent = Impostor::start(false);
    let moved = point_at(&file, &sb.addr, &silent.addr);
    // The deadline given is shorter than the client's own timeouts, so the
    // report must name exactly it: no wall clock needed to see which ended
    // the wait.
    let ours = run(
        sb.rsops()
            .env("SOPS_HC_VAULT_ALLOWLIST", &silent.addr)
            .args(["decrypt", "--key-timeout", "2s"])
            .arg(&moved),
        b"",
    );
    assert_key_failure(
        &ours,
        &[&format!(
            "hc_vault {}/v1/sops/keys/first: timed out after 2000 ms",
            silent.addr
        )],
    );
    // The silent server did get the request: it was its silence that timed out.
    let requests = silent.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].contains("/v1/sops/decrypt/first"),
        "{}",
        requests[0]
    );

    // With an age key the silent server is not waited for: the verbose
    // report shows the Vault attempt stopped (or absent) when age answered;
    // waiting for it would record its timeout.
    let silent = Impostor::start(false);
    let moved = point_at(&file, &sb.addr, &silent.addr);
    let key_file = sb.age_key_file();
    let reference = run(
        sb.sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    let ours = run(
        sb.rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .env("SOPS_HC_VAULT_ALLOWLIST", &silent.addr)
            .args(["decrypt", "--verbose"])
            .arg(&moved),
        b"",
    );
    assert_same_success("silent Vault, age key", &reference, &ours);
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr.contains(&format!("age {age}: unwrapped")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("hc_vault"))
            .all(|l| l.contains(": cancelled") || l.contains(": not needed"))
            && stderr.contains(": cancelled: enough key groups were unwrapped ("),
        "waited for the silent server: {stderr}"
    );
}

#[test]
fn https_servers_are_trusted_through_vault_cacert_or_capath() {
    let home = tempfile::tempdir().expect("home");
    let certs = tempfile::tempdir().expect("cert dir");
    let own = OwnServer::start_tls(home.path(), certs.path());
    let ca = certs.path().join("vault-ca.pem");
    let sb = VaultSandbox::on(0, &own.addr);
    let ca_env = ("VAULT_CACERT", ca.to_str().expect("utf-8"));
    let file = {
        let plain = sb.sandbox.write("f.yaml", YAML.as_bytes());
        let out = run(
            sb.sops()
                .env(ca_env.0, ca_env.1)
                .arg("encrypt")
                .args(["--hc-vault-transit", &sb.uri("sops", "k")])
                .arg(&plain),
            b"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sb.sandbox.write("enc.f.yaml", &out.stdout)
    };
    sb.assert_decrypts_like_sops(&file, &[ca_env]);

    // A directory holding only the CA works like the file.
    let capath = sb.sandbox.path("cas");
    std::fs::create_dir(&capath).expect("mkdir");
    std::fs::copy(&ca, capath.join("ca.pem")).expect("copy");
    let reference = run(
        sb.sops().env(ca_env.0, ca_env.1).arg("decrypt").arg(&file),
        b"",
    );
    let ours = run(
        sb.rsops()
            .env("VAULT_CAPATH", &capath)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same_success("VAULT_CAPATH", &reference, &ours);

    // Without the CA the server is not trusted; skipping verification works.
    let ours = run(sb.rsops().arg("decrypt").arg(&file), b"");
    assert_key_failure(&ours, &["certificate", "VAULT_CACERT", &own.addr]);
    let ours = run(
        sb.rsops()
            .env("VAULT_SKIP_VERIFY", "true")
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same_success("VAULT_SKIP_VERIFY", &reference, &ours);
}
