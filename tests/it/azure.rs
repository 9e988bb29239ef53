//! Azure Key Vault entries through the emulator (`tests/emulators/azure_kv.py`):
//! client secret, workload identity and managed identity decrypt
//! byte-identically; bad secrets, expired or misdirected assertions, tokens
//! the vault rejects, denied, missing, disabled and slow keys fail with exit
//! 128, no plaintext, and a message that says why.

use std::path::PathBuf;

use crate::cloud_emulator::{assert_timed_out, Emulator, Fixture, CREATED_AT};

struct Azure {
    emulator: Emulator,
    fixture: Fixture,
    /// `enc` of the data key under the working key `sops`.
    enc: String,
}

impl Azure {
    fn new() -> Azure {
        let emulator = Emulator::start("azure_kv.py");
        let fixture = Fixture::new();
        let enc = emulator.encrypt("sops", &fixture.data_key);
        Azure {
            emulator,
            fixture,
            enc,
        }
    }

    /// The document with an `azure_kv` entry for `key` in the vault at its
    /// production-like URL, holding the data key wrapped under the working
    /// key `sops` (so only `sops` can unwrap it).
    fn file(&self, key: &str) -> PathBuf {
        self.file_at(&self.emulator.get("/vault_url"), key, &self.enc)
    }

    /// The document with a valid `azure_kv` entry for `key`: the data key
    /// wrapped under `key` itself.
    fn valid_file(&self, key: &str) -> PathBuf {
        let enc = self.emulator.encrypt(key, &self.fixture.data_key);
        self.file_at(&self.emulator.get("/vault_url"), key, &enc)
    }

    fn file_at(&self, vault_url: &str, key: &str, enc: &str) -> PathBuf {
        let version = self
            .emulator
            .info
            .pointer(&format!("/versions/{key}"))
            .and_then(|v| v.as_str())
            .unwrap_or("0123456789abcdef0123456789abcdef")
            .to_string();
        let entry = format!(
            "    azure_kv:\n        - vault_url: {vault_url}\n          name: {key}\n          version: {version}\n          created_at: {CREATED_AT}\n          enc: {enc}\n",
        );
        let host = vault_url
            .trim_start_matches("https://")
            .replace([':', '.'], "-");
        self.fixture
            .with_entry(&format!("azure-{host}-{key}.enc.yaml"), &entry)
    }

    /// The entry's id as the report prints it.
    fn id(&self, key: &str) -> String {
        format!(
            "azure_kv {}/keys/{key}/{}",
            self.emulator.get("/vault_url"),
            self.emulator.get(&format!("/versions/{key}"))
        )
    }

    /// Authority host, trust root and a proxy: the only things that differ
    /// from production. The proxy (`HTTPS_PROXY`, honoured by the HTTP
    /// client as for any user behind one) carries `*.vault.azure.net` to the
    /// emulator, so the SDK's challenge check runs as it does in production.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("SSL_CERT_FILE".to_string(), self.emulator.get("/ca")),
            (
                "AZURE_AUTHORITY_HOST".to_string(),
                self.emulator.get("/authority_host"),
            ),
            ("HTTPS_PROXY".to_string(), self.emulator.get("/https_proxy")),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }

    fn client_secret(&self, secret: String) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", self.emulator.get("/tenant_id")),
            ("AZURE_CLIENT_ID", self.emulator.get("/client_id")),
            ("AZURE_CLIENT_SECRET", secret),
        ]
    }

    fn workload_identity(&self, token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", self.emulator.get("/tenant_id")),
            ("AZURE_CLIENT_ID", self.emulator.get("/client_id")),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                self.emulator.get(&format!("/federated_tokens/{token}")),
            ),
        ]
    }

    fn managed_identity(&self, header: String) -> Vec<(&'static str, String)> {
        vec![
            ("IDENTITY_ENDPOINT", self.emulator.get("/identity_endpoint")),
            ("IDENTITY_HEADER", header),
        ]
    }

    fn decrypts(&self, what: &str, extra: &[(&str, String)]) {
        let output = self.fixture.rsops(&self.file("sops"), &self.env(extra));
        self.fixture.assert_decrypts(what, &output);
    }

    fn fails(&self, what: &str, key: &str, extra: &[(&str, String)], needle: &str) {
        let output = self.fixture.rsops(&self.file(key), &self.env(extra));
        self.fixture.assert_fails(what, &output, needle);
    }
}

#[test]
fn client_secret_from_the_environment() {
    let az = Azure::new();
    let env = az.client_secret(az.emulator.get("/client_secret"));
    az.decrypts("client secret", &env);
}

#[test]
fn workload_identity_federated_token_file() {
    let az = Azure::new();
    az.decrypts("workload identity", &az.workload_identity("valid"));
}

#[test]
fn managed_identity_endpoint() {
    let az = Azure::new();
    let env = az.managed_identity(az.emulator.get("/identity_header"));
    az.decrypts("managed identity", &env);
}

#[test]
fn wrong_client_secret_is_refused() {
    let az = Azure::new();
    let env = az.client_secret("not-the-secret".to_string());
    az.fails(
        "bad secret",
        "sops",
        &env,
        "AADSTS7000215: Invalid client secret provided",
    );
}

#[test]
fn expired_federated_token_is_refused() {
    let az = Azure::new();
    let env = az.workload_identity("expired");
    az.fails(
        "expired assertion",
        "sops",
        &env,
        "AADSTS700024: Client assertion is not within its valid time range",
    );
}

#[test]
fn federated_token_for_another_audience_is_refused() {
    let az = Azure::new();
    let env = az.workload_identity("wrong_audience");
    az.fails(
        "wrong audience",
        "sops",
        &env,
        "presented assertion audience 'api://SomethingElse'",
    );
}

#[test]
fn expired_access_token_is_rejected_by_the_vault() {
    let az = Azure::new();
    let env = az.managed_identity("expired".to_string());
    az.fails(
        "expired token",
        "sops",
        &env,
        "AKV10032: Invalid issuer or the token is expired",
    );
}

#[test]
fn denied_missing_and_disabled_keys() {
    let az = Azure::new();
    let env = az.client_secret(az.emulator.get("/client_secret"));
    // The service's own words: the key names (`denied`, `disabled`) are in
    // the file name and the entry's id, so they prove nothing.
    az.fails(
        "403",
        "denied",
        &env,
        "does not have keys decrypt permission on key vault. [ForbiddenByPolicy]",
    );
    az.fails("404", "missing", &env, "was not found in this key vault");
    az.fails(
        "disabled",
        "disabled",
        &env,
        "not allowed on a disabled key. [KeyDisabled]",
    );
}

/// The slow key is valid (its entry wraps the data key under it) and
/// answers after 60 s: only the deadline given stops rsops, and the report
/// names exactly that deadline. The SDK's own timeouts, or waiting it out,
/// would read differently.
#[test]
fn slow_vault_is_cut_off() {
    let az = Azure::new();
    let env = az.env(&az.client_secret(az.emulator.get("/client_secret")));
    let file = az.valid_file("slow");
    let output = az.fixture.rsops_with(&["--key-timeout", "2s"], &file, &env);
    assert_timed_out("slow key, --key-timeout 2s", &output, &az.id("slow"), 2000);
    // The same entry decrypts once the key answers at once.
    az.emulator.set_delay("slow", 0);
    az.fixture
        .assert_decrypts("slow key, no delay", &az.fixture.rsops(&file, &env));
}

/// Issue 13: a key service that answers after 15 s succeeds with
/// `--key-timeout 30s` (the deadline given is the one that counts, not a
/// shorter one hard-coded in the client)…
#[test]
fn a_key_answering_after_15s_succeeds_with_key_timeout_30s() {
    let az = Azure::new();
    let env = az.env(&az.client_secret(az.emulator.get("/client_secret")));
    let file = az.valid_file("slow");
    az.emulator.set_delay("slow", 15);
    let output = az
        .fixture
        .rsops_with(&["--key-timeout", "30s"], &file, &env);
    az.fixture
        .assert_decrypts("15 s answer, --key-timeout 30s", &output);
}

/// …and is cut at the default `--key-timeout` (10 s).
#[test]
fn a_key_answering_after_15s_is_cut_at_the_default_key_timeout() {
    let az = Azure::new();
    let env = az.env(&az.client_secret(az.emulator.get("/client_secret")));
    let file = az.valid_file("slow");
    az.emulator.set_delay("slow", 15);
    let output = az.fixture.rsops(&file, &env);
    assert_timed_out(
        "15 s answer, default deadline",
        &output,
        &az.id("slow"),
        10_000,
    );
}

/// The vault is reached by its production-like name, under the challenge's
/// resource, and is sent a token only after the challenge check passed.
#[test]
fn the_vault_is_called_by_its_host_name_under_the_challenge_resource() {
    let az = Azure::new();
    let env = az.client_secret(az.emulator.get("/client_secret"));
    az.decrypts("client secret", &env);
    let host = az.emulator.get("/vault_host");
    let tunnels = std::fs::read_to_string(az.emulator.get("/proxy_log")).unwrap_or_default();
    assert!(
        tunnels.contains(&format!("CONNECT {host}:443 tunnelled")),
        "the vault was not reached through its host name: {tunnels}"
    );
    let requests = std::fs::read_to_string(az.emulator.get("/requests_log")).unwrap_or_default();
    assert!(
        requests.contains(&format!("KEYOP host={host} key=sops op=decrypt bearer=yes")),
        "{requests}"
    );
}

/// The production challenge check: a vault whose host is not under the
/// resource its challenge names (here the emulator's own 127.0.0.1 address,
/// challenging for https://vault.azure.net) is refused before any token is
/// asked for or sent, so a planted `vault_url` cannot collect one.
#[test]
fn a_vault_outside_the_challenge_resource_gets_no_token() {
    let az = Azure::new();
    let direct = az.emulator.get("/direct_url");
    let file = az.file_at(&direct, "sops", &az.enc);
    let env = az.env(&az.client_secret(az.emulator.get("/client_secret")));
    let log = az.emulator.get("/requests_log");
    // Only what rsops asked: the log also holds the set-up's own encrypt call.
    let before = std::fs::read_to_string(&log).unwrap_or_default().len();
    let output = az.fixture.rsops(&file, &env);
    az.fixture.assert_fails(
        "vault outside the challenge resource",
        &output,
        "doesn't match the requested domain '127.0.0.1'",
    );
    let requests = std::fs::read_to_string(&log).unwrap_or_default()[before..].to_string();
    assert!(
        requests.contains("KEYOP host=127.0.0.1"),
        "the vault was never called: {requests}"
    );
    assert!(
        !requests.contains("bearer=yes"),
        "a token was sent: {requests}"
    );
    assert!(
        !requests.contains("oauth2/v2.0/token"),
        "a token was asked for: {requests}"
    );
}
