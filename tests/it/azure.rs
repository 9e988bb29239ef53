//! Azure Key Vault entries through the emulator (`tests/emulators/azure_kv.py`):
//! client secret, workload identity and managed identity decrypt
//! byte-identically; bad secrets, expired or misdirected assertions, tokens
//! the vault rejects, denied, missing, disabled and slow keys fail with exit
//! 128, no plaintext, and a message that says why.

use std::path::PathBuf;

use crate::cloud_emulator::{Emulator, Fixture, CREATED_AT};

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

    /// The document with an `azure_kv` entry for `key` holding the data key.
    fn file(&self, key: &str) -> PathBuf {
        let version = self
            .emulator
            .info
            .pointer(&format!("/versions/{key}"))
            .and_then(|v| v.as_str())
            .unwrap_or("0123456789abcdef0123456789abcdef")
            .to_string();
        let entry = format!(
            "    azure_kv:\n        - vault_url: {}\n          name: {key}\n          version: {version}\n          created_at: {CREATED_AT}\n          enc: {}\n",
            self.emulator.get("/vault_url"),
            self.enc
        );
        self.fixture
            .with_entry(&format!("azure-{key}.enc.yaml"), &entry)
    }

    /// Authority host and trust root: the only things that differ from
    /// production.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("SSL_CERT_FILE".to_string(), self.emulator.get("/ca")),
            (
                "AZURE_AUTHORITY_HOST".to_string(),
                self.emulator.get("/authority_host"),
            ),
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
    az.fails("bad secret", "sops", &env, "invalid client secret");
}

#[test]
fn expired_federated_token_is_refused() {
    let az = Azure::new();
    let env = az.workload_identity("expired");
    az.fails("expired assertion", "sops", &env, "valid time range");
}

#[test]
fn federated_token_for_another_audience_is_refused() {
    let az = Azure::new();
    let env = az.workload_identity("wrong_audience");
    az.fails("wrong audience", "sops", &env, "audience");
}

#[test]
fn expired_access_token_is_rejected_by_the_vault() {
    let az = Azure::new();
    let env = az.managed_identity("expired".to_string());
    az.fails("expired token", "sops", &env, "rejected the access token");
}

#[test]
fn denied_missing_and_disabled_keys() {
    let az = Azure::new();
    let env = az.client_secret(az.emulator.get("/client_secret"));
    az.fails("403", "denied", &env, "denied");
    az.fails("404", "missing", &env, "does not exist");
    az.fails("disabled", "disabled", &env, "is disabled");
}

#[test]
fn slow_vault_is_cut_off() {
    let az = Azure::new();
    let env = az.client_secret(az.emulator.get("/client_secret"));
    let output = az.fixture.rsops(&az.file("slow"), &az.env(&env));
    assert_eq!(
        output.status.code(),
        Some(128),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}
