//! GCP Cloud KMS entries through the emulator (`tests/emulators/gcp_kms.py`):
//! every credential path the reference supports decrypts byte-identically;
//! expired or misdirected tokens, denied, missing, disabled and slow keys
//! fail with exit 128, no plaintext, and a message that says why.

use std::path::PathBuf;

use crate::cloud_emulator::{assert_timed_out, Emulator, Fixture, CREATED_AT};

struct Gcp {
    emulator: Emulator,
    fixture: Fixture,
    /// `enc` of the data key under the working key `sops`.
    enc: String,
}

impl Gcp {
    fn new() -> Gcp {
        let emulator = Emulator::start("gcp_kms.py");
        let fixture = Fixture::new();
        let enc = emulator.encrypt("sops", &fixture.data_key);
        Gcp {
            emulator,
            fixture,
            enc,
        }
    }

    fn resource(&self, key: &str) -> String {
        format!("{}/cryptoKeys/{key}", self.emulator.get("/project"))
    }

    /// The document with a `gcp_kms` entry for `key` holding the data key
    /// wrapped under the working key `sops` (so only `sops` can unwrap it).
    fn file(&self, key: &str) -> PathBuf {
        self.file_with_enc(key, &self.enc)
    }

    /// The document with a valid `gcp_kms` entry for `key`: the data key
    /// wrapped under `key` itself.
    fn valid_file(&self, key: &str) -> PathBuf {
        let enc = self.emulator.encrypt(key, &self.fixture.data_key);
        self.file_with_enc(key, &enc)
    }

    fn file_with_enc(&self, key: &str, enc: &str) -> PathBuf {
        let entry = format!(
            "    gcp_kms:\n        - resource_id: {}\n          created_at: {CREATED_AT}\n          enc: {enc}\n",
            self.resource(key),
        );
        self.fixture
            .with_entry(&format!("gcp-{key}.enc.yaml"), &entry)
    }

    /// Endpoint and trust root: the only things that differ from production.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("SSL_CERT_FILE".to_string(), self.emulator.get("/ca")),
            (
                "SOPS_GCP_KMS_ENDPOINT".to_string(),
                self.emulator.get("/endpoint"),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
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
fn service_account_file_in_google_credentials() {
    let gcp = Gcp::new();
    let path = gcp.emulator.get("/files/service_account");
    gcp.decrypts("GOOGLE_CREDENTIALS=path", &[("GOOGLE_CREDENTIALS", path)]);
}

#[test]
fn service_account_json_in_google_credentials() {
    let gcp = Gcp::new();
    let json = std::fs::read_to_string(gcp.emulator.get("/files/service_account")).unwrap();
    gcp.decrypts("GOOGLE_CREDENTIALS=json", &[("GOOGLE_CREDENTIALS", json)]);
}

#[test]
fn google_application_credentials_service_account() {
    let gcp = Gcp::new();
    let path = gcp.emulator.get("/files/service_account");
    gcp.decrypts(
        "GOOGLE_APPLICATION_CREDENTIALS",
        &[("GOOGLE_APPLICATION_CREDENTIALS", path)],
    );
}

#[test]
fn gcloud_user_credentials_refresh_at_the_token_uri() {
    let gcp = Gcp::new();
    let path = gcp.emulator.get("/files/authorized_user");
    gcp.decrypts(
        "authorized_user ADC",
        &[("GOOGLE_APPLICATION_CREDENTIALS", path)],
    );
}

#[test]
fn workload_identity_federation_exchanges_the_oidc_token() {
    let gcp = Gcp::new();
    let path = gcp.emulator.get("/files/external_account");
    gcp.decrypts(
        "external_account ADC",
        &[("GOOGLE_APPLICATION_CREDENTIALS", path)],
    );
}

#[test]
fn oauth_access_token() {
    let gcp = Gcp::new();
    let token = gcp.emulator.get("/tokens/valid");
    gcp.decrypts(
        "GOOGLE_OAUTH_ACCESS_TOKEN",
        &[("GOOGLE_OAUTH_ACCESS_TOKEN", token)],
    );
}

#[test]
fn metadata_server() {
    let gcp = Gcp::new();
    let host = gcp.emulator.get("/metadata_host");
    gcp.decrypts("GCE_METADATA_HOST", &[("GCE_METADATA_HOST", host)]);
}

#[test]
fn google_credentials_come_before_the_access_token() {
    let gcp = Gcp::new();
    gcp.decrypts(
        "GOOGLE_CREDENTIALS over GOOGLE_OAUTH_ACCESS_TOKEN",
        &[
            (
                "GOOGLE_CREDENTIALS",
                gcp.emulator.get("/files/service_account"),
            ),
            (
                "GOOGLE_OAUTH_ACCESS_TOKEN",
                gcp.emulator.get("/tokens/expired"),
            ),
        ],
    );
}

#[test]
fn expired_token_is_rejected() {
    let gcp = Gcp::new();
    let token = gcp.emulator.get("/tokens/expired");
    gcp.fails(
        "expired token",
        "sops",
        &[("GOOGLE_OAUTH_ACCESS_TOKEN", token)],
        "the token has expired",
    );
}

#[test]
fn token_for_another_audience_is_rejected() {
    let gcp = Gcp::new();
    let token = gcp.emulator.get("/tokens/wrong_audience");
    gcp.fails(
        "wrong audience",
        "sops",
        &[("GOOGLE_OAUTH_ACCESS_TOKEN", token)],
        "the token's audience 'https://storage.googleapis.com/' is not Cloud KMS",
    );
}

#[test]
fn federated_token_with_wrong_audience_or_expired_is_refused() {
    let gcp = Gcp::new();
    for (file, needle) in [
        (
            "/files/external_account_wrong_audience",
            "The audience in ID Token does not match the expected audience",
        ),
        (
            "/files/external_account_expired",
            "ID Token issued is stale to sign-in: the token has expired",
        ),
    ] {
        gcp.fails(
            file,
            "sops",
            &[("GOOGLE_APPLICATION_CREDENTIALS", gcp.emulator.get(file))],
            needle,
        );
    }
}

#[test]
fn denied_missing_and_disabled_keys() {
    let gcp = Gcp::new();
    let token = [(
        "GOOGLE_OAUTH_ACCESS_TOKEN",
        gcp.emulator.get("/tokens/valid"),
    )];
    // The service's own words: the key names (`denied`, `disabled`) are in
    // the file name and the entry's id, so they prove nothing.
    gcp.fails(
        "403",
        "denied",
        &token,
        "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied",
    );
    gcp.fails("404", "missing", &token, "cryptoKeys/missing not found.");
    gcp.fails(
        "disabled",
        "disabled",
        &token,
        "is not enabled, current state is: DISABLED",
    );
}

/// The slow key is valid (its entry wraps the data key under it) and
/// answers after 60 s: only the deadline given stops rsops, and the report
/// names exactly that deadline. The SDK's own timeouts, or waiting it out,
/// would read differently.
#[test]
fn slow_server_is_cut_off() {
    let gcp = Gcp::new();
    let env = gcp.env(&[(
        "GOOGLE_OAUTH_ACCESS_TOKEN",
        gcp.emulator.get("/tokens/valid"),
    )]);
    let file = gcp.valid_file("slow");
    let output = gcp
        .fixture
        .rsops_with(&["--key-timeout", "2s"], &file, &env);
    let id = format!("gcp_kms {}", gcp.resource("slow"));
    assert_timed_out("slow key, --key-timeout 2s", &output, &id, 2000);
    // The same entry decrypts once the key answers at once.
    gcp.emulator.set_delay("slow", 0);
    gcp.fixture
        .assert_decrypts("slow key, no delay", &gcp.fixture.rsops(&file, &env));
}

/// Issue 13: a key service that answers after 15 s succeeds with
/// `--key-timeout 30s` (the deadline given is the one that counts, not a
/// shorter one hard-coded in the client)…
#[test]
fn a_key_answering_after_15s_succeeds_with_key_timeout_30s() {
    let gcp = Gcp::new();
    let env = gcp.env(&[(
        "GOOGLE_OAUTH_ACCESS_TOKEN",
        gcp.emulator.get("/tokens/valid"),
    )]);
    let file = gcp.valid_file("slow");
    gcp.emulator.set_delay("slow", 15);
    let output = gcp
        .fixture
        .rsops_with(&["--key-timeout", "30s"], &file, &env);
    gcp.fixture
        .assert_decrypts("15 s answer, --key-timeout 30s", &output);
}

/// …and is cut at the default `--key-timeout` (10 s).
#[test]
fn a_key_answering_after_15s_is_cut_at_the_default_key_timeout() {
    let gcp = Gcp::new();
    let env = gcp.env(&[(
        "GOOGLE_OAUTH_ACCESS_TOKEN",
        gcp.emulator.get("/tokens/valid"),
    )]);
    let file = gcp.valid_file("slow");
    gcp.emulator.set_delay("slow", 15);
    let output = gcp.fixture.rsops(&file, &env);
    let id = format!("gcp_kms {}", gcp.resource("slow"));
    assert_timed_out("15 s answer, default deadline", &output, &id, 10_000);
}

#[test]
fn no_credentials_at_all_is_explained() {
    let gcp = Gcp::new();
    // No credentials and no metadata server: ADC's fallback cannot answer.
    let output = gcp.fixture.rsops(
        &gcp.file("sops"),
        &gcp.env(&[("GCE_METADATA_HOST", "127.0.0.1:9".to_string())]),
    );
    gcp.fixture
        .assert_fails("no credentials", &output, "GOOGLE_APPLICATION_CREDENTIALS");
}

#[test]
fn ssl_cert_dir_is_honoured_and_needed() {
    let gcp = Gcp::new();
    let certs = gcp.fixture.sandbox.path("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(gcp.emulator.get("/ca"), certs.join("emulator-ca.pem")).unwrap();
    let token = gcp.emulator.get("/tokens/valid");
    let base = |trust: Option<(&str, String)>| {
        let mut env = vec![
            (
                "SOPS_GCP_KMS_ENDPOINT".to_string(),
                gcp.emulator.get("/endpoint"),
            ),
            ("GOOGLE_OAUTH_ACCESS_TOKEN".to_string(), token.clone()),
        ];
        env.extend(trust.map(|(k, v)| (k.to_string(), v)));
        env
    };
    let file = gcp.file("sops");
    let trusted = base(Some(("SSL_CERT_DIR", certs.display().to_string())));
    gcp.fixture
        .assert_decrypts("SSL_CERT_DIR", &gcp.fixture.rsops(&file, &trusted));
    // The system roots do not include the emulator's CA: the custom bundle
    // is what makes the connection trusted.
    let output = gcp.fixture.rsops(&file, &base(None));
    gcp.fixture.assert_fails(
        "untrusted certificate",
        &output,
        "invalid peer certificate: UnknownIssuer",
    );
}
