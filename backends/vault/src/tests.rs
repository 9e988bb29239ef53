//! The key source against a scripted HTTP server on loopback: what is sent,
//! how answers are classified, what is never sent, and that only the
//! deadline bounds the wait. The real-server tests are in the workspace's
//! `tests/it/vault.rs` (OpenBao).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rsops_keysource::{Deadline, ErrorClass, KeyEntry, KeyError, KeySource};

use crate::{Token, VaultConfig, VaultKeySource};

/// What the fake server does with one connection.
enum Answer {
    /// Sends this response at once.
    Now(String),
    /// Sends this response after a pause.
    After(Duration, String),
    /// Reads the request and never answers.
    Never,
}

/// A loopback server answering each connection with the next scripted
/// [`Answer`], recording the requests.
struct FakeVault {
    address: String,
    requests: Arc<Mutex<Vec<String>>>,
    /// Set by `requests`: the test is done, unanswered connections may close.
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long unanswered connections are held at most (ten times the
/// configured request timeout) when the test never says it is done: a
/// client that ignores the configured timeout (none, or a longer one) sees
/// the connection closed, an error other than "no answer within 500ms".
/// No elapsed time is asserted; this bounds a hang.
const HOLD_AT_MOST: Duration = Duration::from_secs(5);

impl FakeVault {
    fn start(answers: Vec<Answer>) -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (seen, finished) = (requests.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                seen.lock().unwrap().push(read_request(&mut stream));
                match answer {
                    Answer::Now(response) => {
                        stream.write_all(response.as_bytes()).ok();
                    }
                    Answer::After(pause, response) => {
                        std::thread::sleep(pause);
                        stream.write_all(response.as_bytes()).ok();
                    }
                    Answer::Never => held.push(stream),
                }
            }
            // Keep unanswered connections open until the test has its
            // result: only the client's own timeout can end its wait.
            let since = std::time::Instant::now();
            while !held.is_empty()
                && !finished.load(Ordering::Relaxed)
                && since.elapsed() < HOLD_AT_MOST
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        FakeVault {
            address,
            requests,
            done,
            thread: Some(thread),
        }
    }

    fn requests(&mut self) -> Vec<String> {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn decrypted(plaintext_b64: &str) -> String {
    response(
        "200 OK",
        &format!(
            r#"{{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{{"plaintext":"{plaintext_b64}"}},"wrap_info":null,"warnings":null,"auth":null}}"#
        ),
    )
}

fn entry(address: &str) -> KeyEntry {
    KeyEntry {
        kind: "hc_vault".into(),
        fields: vec![
            ("vault_address".into(), address.into()),
            ("engine_path".into(), "team/transit".into()),
            ("key_name".into(), "k".into()),
            ("created_at".into(), "2026-01-01T00:00:00Z".into()),
            ("enc".into(), "vault:v1:abcd".into()),
        ],
        maps: Vec::new(),
    }
}

/// A configuration trusting `address`, with a token and a short bound for
/// requests without a deadline.
fn config(address: &str) -> VaultConfig {
    VaultConfig {
        vault_addr: Some(address.into()),
        token: Some(Token::new("s.test-token".into())),
        request_timeout: Duration::from_millis(500),
        ..VaultConfig::default()
    }
}

/// Unwraps without a deadline: the configuration's 500 ms bound applies.
async fn unwrap(config: VaultConfig, address: &str) -> Result<Vec<u8>, KeyError> {
    VaultKeySource::with_config(config)
        .unwrap(&entry(address), Deadline::NONE)
        .await
        .map(|k| k.expose().to_vec())
}

#[tokio::test]
async fn sends_a_transit_decrypt_and_decodes_the_key() {
    let mut server = FakeVault::start(vec![Answer::Now(decrypted("AAECAw=="))]);
    let mut cfg = config(&server.address);
    cfg.namespace = Some("team-a".into());
    assert_eq!(
        unwrap(cfg, &server.address).await.unwrap(),
        vec![0, 1, 2, 3]
    );
    let requests = server.requests();
    let request = requests[0].to_ascii_lowercase();
    assert!(
        request.starts_with("post /v1/team/transit/decrypt/k http/1.1"),
        "{request}"
    );
    assert!(request.contains("x-vault-token: s.test-token"), "{request}");
    assert!(request.contains("x-vault-namespace: team-a"), "{request}");
    assert!(
        request.contains(r#""ciphertext":"vault:v1:abcd""#),
        "{request}"
    );
}

#[tokio::test]
async fn one_client_per_address_is_reused() {
    let mut server = FakeVault::start(vec![
        Answer::Now(decrypted("AQ==")),
        Answer::Now(decrypted("Ag==")),
    ]);
    let source = VaultKeySource::with_config(config(&server.address));
    let e = entry(&server.address);
    let first = source.unwrap(&e, Deadline::NONE).await.unwrap();
    assert_eq!(first.expose(), &[1]);
    let second = source.unwrap(&e, Deadline::NONE).await.unwrap();
    assert_eq!(second.expose(), &[2]);
    assert_eq!(source.clients.len(), 1);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn disallowed_addresses_get_no_connection() {
    let mut server = FakeVault::start(vec![Answer::Now(decrypted("AQ=="))]);
    let cfg = config("https://vault.example.com");
    let err = unwrap(cfg, &server.address).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Denied, "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&server.address) && text.contains("SOPS_HC_VAULT_ALLOWLIST"),
        "{text}"
    );
    let hint = err.hint().unwrap_or_default();
    assert!(
        hint.contains(&format!("SOPS_HC_VAULT_ALLOWLIST={}", server.address)),
        "{hint}"
    );
    // Unblock the server's accept, then check it saw only that connection.
    TcpStream::connect(server.address.trim_start_matches("http://")).unwrap();
    assert_eq!(server.requests(), vec![String::new()]);
}

#[tokio::test]
async fn listed_addresses_are_allowed_without_vault_addr() {
    let mut server = FakeVault::start(vec![Answer::Now(decrypted("AQ=="))]);
    let mut cfg = config(&server.address);
    cfg.vault_addr = None;
    cfg.allowlist = Some(format!("https://vault.example.com,{}", server.address));
    assert_eq!(unwrap(cfg, &server.address).await.unwrap(), vec![1]);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_missing_token_fails_before_any_request() {
    let mut cfg = config("http://127.0.0.1:1");
    cfg.token = None;
    let err = unwrap(cfg, "http://127.0.0.1:1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NoCredentials, "{err:?}");
    assert!(err.hint().unwrap().contains("VAULT_TOKEN"));
}

#[tokio::test]
async fn server_answers_are_classified() {
    let cases = [
        (
            response("403 Forbidden", r#"{"errors":["permission denied"]}"#),
            "denied",
        ),
        (
            response(
                "503 Service Unavailable",
                r#"{"errors":["Vault is sealed"]}"#,
            ),
            "sealed",
        ),
        (
            response(
                "400 Bad Request",
                r#"{"errors":["encryption key not found"]}"#,
            ),
            "no transit key",
        ),
        (
            response("502 Bad Gateway", "<html>proxy</html>"),
            "HTTP 502",
        ),
        (response("200 OK", "not json"), "not a Vault"),
        (decrypted("!!"), "not base64"),
    ];
    for (answer, expected) in cases {
        let mut server = FakeVault::start(vec![Answer::Now(answer)]);
        let err = unwrap(config(&server.address), &server.address)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&server.address), "{text}");
        let want = match expected {
            "denied" => err.class() == ErrorClass::Denied,
            "sealed" => err.class() == ErrorClass::Unreachable && text.contains("sealed"),
            "no transit key" => {
                err.class() == ErrorClass::NoCredentials && text.contains("team/transit/keys/k")
            }
            "not base64" => err.class() == ErrorClass::CorruptEntry,
            other => text.contains(other),
        };
        assert!(want, "{expected}: {err:?}");
        assert!(!text.contains("s.test-token"), "{text}");
        server.requests();
    }
}

#[tokio::test]
async fn a_silent_server_times_out_without_a_deadline() {
    let mut server = FakeVault::start(vec![Answer::Never]);
    // The server holds the connection until `requests()` below (or for
    // `HOLD_AT_MOST`), so only the configured request timeout can end the
    // wait as a timeout; the error names it.
    let err = unwrap(config(&server.address), &server.address)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unreachable, "{err:?}");
    assert!(err.to_string().contains("no answer within 500ms"), "{err}");
    // The request was sent: the silence, not a refused connection, timed out.
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].starts_with("POST /v1/team/transit/decrypt/k"),
        "{}",
        requests[0]
    );
}

#[tokio::test]
async fn nobody_listening_is_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let err = unwrap(config(&address), &address).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unreachable, "{err:?}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[tokio::test]
async fn redirects_to_disallowed_addresses_are_not_followed() {
    let mut elsewhere = FakeVault::start(vec![Answer::Now(decrypted("AQ=="))]);
    let redirect = Answer::Now(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}/v1/team/transit/decrypt/k\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        elsewhere.address
    ));
    let mut server = FakeVault::start(vec![redirect]);
    let err = unwrap(config(&server.address), &server.address)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Denied, "{err:?}");
    assert!(err.to_string().contains("redirect"), "{err}");
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("SOPS_HC_VAULT_ALLOWLIST")),
        "{err:?}"
    );
    server.requests();
    TcpStream::connect(elsewhere.address.trim_start_matches("http://")).unwrap();
    assert_eq!(elsewhere.requests(), vec![String::new()]);
}

#[tokio::test]
async fn malformed_entries_are_corrupt() {
    let mut e = entry("http://127.0.0.1:1");
    e.fields.retain(|(k, _)| k != "enc");
    let source = VaultKeySource::with_config(config("http://127.0.0.1:1"));
    let err = source.unwrap(&e, Deadline::NONE).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err:?}");
    assert_eq!(err.to_string(), "the hc_vault entry has no `enc` field");
    let e = entry("http://127.0.0.1:1/elsewhere");
    let err = source.unwrap(&e, Deadline::NONE).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err:?}");
    assert_eq!(source.kind(), "hc_vault");
    assert_eq!(
        source.describe(&entry("http://h:8200")),
        "http://h:8200/v1/team/transit/keys/k"
    );
}

/// A fixed request bound, far shorter than the server's pause, does not
/// apply when the caller gives a deadline: the deadline alone bounds the
/// wait, so `--key-timeout 30s` gives a slow server 30 s.
#[tokio::test]
async fn a_slow_server_is_waited_for_until_the_deadline() {
    let pause = Duration::from_millis(800);
    let mut server = FakeVault::start(vec![Answer::After(pause, decrypted("AQ=="))]);
    let mut cfg = config(&server.address);
    cfg.request_timeout = Duration::from_millis(50);
    let source = VaultKeySource::with_config(cfg);
    let key = source
        .unwrap(
            &entry(&server.address),
            Deadline::after(Duration::from_secs(30)),
        )
        .await;
    assert_eq!(key.map(|k| k.expose().to_vec()).ok(), Some(vec![1]));
    server.requests();
}

/// The caller cuts the attempt at the deadline and reports it; the source
/// never gives up first. On its own, the source stops shortly after the
/// deadline and names it.
#[tokio::test]
async fn only_the_caller_cuts_at_the_deadline() {
    let mut server = FakeVault::start(vec![Answer::Never, Answer::Never]);
    let mut cfg = config(&server.address);
    cfg.request_timeout = Duration::from_millis(50);
    let source = VaultKeySource::with_config(cfg);
    let e = entry(&server.address);
    let limit = Duration::from_millis(300);
    let cut = tokio::time::timeout(limit, source.unwrap(&e, Deadline::after(limit))).await;
    assert!(cut.is_err(), "the source gave up first: {cut:?}");
    let err = source.unwrap(&e, Deadline::after(limit)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unreachable, "{err:?}");
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

/// The certificate of `testdata/untrusted-server.pem` (for 127.0.0.1,
/// self-signed) and a CA that signed nothing, as VAULT_CACERT.
const UNTRUSTED_SERVER: &str = include_str!("../testdata/untrusted-server.pem");
const UNRELATED_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/unrelated-ca.pem");

/// A loopback HTTPS server presenting a certificate no configured CA
/// signed: it runs the TLS handshake of one connection until the client
/// gives up on it.
fn untrusted_tls_server() -> (String, JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_slice_iter(UNTRUSTED_SERVER.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(UNTRUSTED_SERVER.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("https://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut conn = rustls::ServerConnection::new(tls).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut stream).is_err() {
                break;
            }
        }
    });
    (address, thread)
}

#[tokio::test]
async fn an_untrusted_certificate_names_the_vault_ca_variables() {
    let (address, server) = untrusted_tls_server();
    let mut cfg = config(&address);
    cfg.ca_cert = Some(UNRELATED_CA.into());
    let err = VaultKeySource::with_config(cfg)
        .unwrap(&entry(&address), Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(err.class(), ErrorClass::UntrustedCertificate, "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&address) && text.contains("certificate"),
        "{text}"
    );
    let hint = err.hint().unwrap_or_default();
    assert!(
        hint.contains("VAULT_CACERT") && hint.contains("VAULT_CAPATH"),
        "{hint}"
    );
}

fn encrypted(ciphertext: &str) -> String {
    response(
        "200 OK",
        &format!(
            r#"{{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{{"ciphertext":"{ciphertext}","key_version":1}},"wrap_info":null,"warnings":null,"auth":null}}"#
        ),
    )
}

fn recipient(uri: &str) -> KeyEntry {
    KeyEntry {
        kind: "hc_vault".into(),
        fields: vec![("vault_address".into(), uri.into())],
        maps: Vec::new(),
    }
}

#[tokio::test]
async fn wraps_with_a_transit_encrypt_on_the_uri_s_engine_and_key() {
    let mut server = FakeVault::start(vec![Answer::Now(encrypted("vault:v1:xyz"))]);
    let source = VaultKeySource::with_config(config(&server.address));
    let uri = format!("{}/v1/team/transit/keys/k", server.address);
    assert_eq!(source.describe(&recipient(&uri)), uri);
    let wrapped = source
        .wrap(&recipient(&uri), &[0, 1, 2, 3], Deadline::NONE)
        .await
        .unwrap();
    let names: Vec<&str> = wrapped.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "vault_address",
            "engine_path",
            "key_name",
            "created_at",
            "enc"
        ]
    );
    assert_eq!(
        wrapped.field("vault_address"),
        Some(server.address.as_str())
    );
    assert_eq!(wrapped.field("engine_path"), Some("team/transit"));
    assert_eq!(wrapped.field("key_name"), Some("k"));
    assert_eq!(wrapped.field("enc"), Some("vault:v1:xyz"));
    assert_eq!(wrapped.field("created_at").map(str::len), Some(20));
    let requests = server.requests();
    let request = requests[0].to_ascii_lowercase();
    assert!(
        request.starts_with("post /v1/team/transit/encrypt/k http/1.1"),
        "{request}"
    );
    assert!(request.contains("x-vault-token: s.test-token"), "{request}");
    assert!(request.contains(r#""plaintext":"aaecaw==""#), "{request}");
}

#[tokio::test]
async fn wrap_failures_are_classified_like_unwrap_s() {
    // Outside the allow-list: no connection, the same refusal and hint.
    let cfg = config("https://vault.example.com");
    let err = VaultKeySource::with_config(cfg)
        .wrap(
            &recipient("http://127.0.0.1:1/v1/sops/keys/k"),
            &[1],
            Deadline::NONE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Denied, "{err:?}");
    assert!(err
        .hint()
        .is_some_and(|h| h.contains("SOPS_HC_VAULT_ALLOWLIST")));
    // A URI the reference would not accept.
    let source = VaultKeySource::with_config(config("http://h"));
    let err = source
        .wrap(&recipient("http://h/sops/k"), &[1], Deadline::NONE)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err:?}");
    assert!(err
        .hint()
        .is_some_and(|h| h.contains("/v1/ENGINE/keys/KEY")));
    // A refusal by the server names the encrypt endpoint.
    let mut server = FakeVault::start(vec![Answer::Now(response(
        "403 Forbidden",
        r#"{"errors":["permission denied"]}"#,
    ))]);
    let uri = format!("{}/v1/sops/keys/k", server.address);
    let err = VaultKeySource::with_config(config(&server.address))
        .wrap(&recipient(&uri), &[1], Deadline::NONE)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Denied, "{err:?}");
    assert!(err.to_string().contains("refused to encrypt"), "{err}");
    assert!(err.hint().is_some_and(|h| h.contains("sops/encrypt/k")));
    server.requests();
}
