//! The age key source through its trait, as the core calls it: without a
//! deadline it unwraps; given one, a key command or a plugin that never
//! answers is stopped when it passes, and does not outlive the attempt.
//!
//! The source reads its identities from the environment, which is the
//! process's: the tests take turns ([`ENV`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use age::secrecy::ExposeSecret;
use rsops_age::AgeKeySource;
use rsops_keysource::{Deadline, ErrorClass, KeyEntry, KeyError, KeySource, Unwrapped};

/// Held by each test while it sets and uses the environment.
static ENV: Mutex<()> = Mutex::new(());

/// A test's own environment: an empty home, no age variables but `vars`,
/// the environment held until dropped.
struct Sandbox {
    dir: tempfile::TempDir,
    _env: MutexGuard<'static, ()>,
}

impl Sandbox {
    fn new(vars: &[(&str, &str)]) -> Sandbox {
        let env = ENV.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("temp dir");
        for name in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_KEY_CMD",
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
            "SOPS_AGE_SSH_PRIVATE_KEY_CMD",
        ] {
            std::env::remove_var(name);
        }
        std::env::set_var("HOME", dir.path());
        std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        Sandbox { dir, _env: env }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An executable script in the sandbox.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        rsops_test_support::write_script(&path, body);
        path
    }

    /// A script that writes its process ID to `name.pid`, then waits ten
    /// minutes (a password manager nobody answers, a token nobody touches).
    fn hanging(&self, name: &str) -> (PathBuf, PathBuf) {
        let pid = self.path(&format!("{name}.pid"));
        let script = self.script(
            name,
            &format!("#!/bin/sh\necho $$ > '{}'\nexec sleep 600\n", pid.display()),
        );
        (script, pid)
    }
}

/// Runs `test` on a runtime of its own.
fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test);
}

/// A recognisable 32-byte data key.
fn data_key() -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect()
}

/// An `age` entry holding the data key, encrypted to a fresh X25519 key:
/// (the entry, the secret key).
fn entry() -> (KeyEntry, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let enc = age::encrypt_and_armor(&recipient, &data_key()).expect("encrypt");
    let entry = KeyEntry {
        kind: "age".into(),
        fields: vec![
            ("recipient".into(), recipient.to_string()),
            ("enc".into(), enc),
        ],
        maps: Vec::new(),
    };
    (entry, identity.to_string().expose_secret().to_string())
}

/// Unwraps by `deadline`, within a liveness guard (not a timing assertion:
/// an attempt that ignored its deadline would wait ten minutes).
async fn unwrap(entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, KeyError> {
    let source = AgeKeySource::new();
    tokio::time::timeout(Duration::from_secs(120), source.unwrap(entry, deadline))
        .await
        .expect("the attempt ignored its deadline")
}

/// True once the process whose ID `pid_file` holds is dead: a zombie
/// nobody reaped, or gone. Waits for it, as a liveness guard.
fn died(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).expect("the script ran");
    for _ in 0..600 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        if matches!(state, None | Some("Z") | Some("X")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn unwraps_without_a_deadline() {
    let (entry, secret) = entry();
    let _sandbox = Sandbox::new(&[("SOPS_AGE_KEY", &secret)]);
    run(async {
        let key = unwrap(&entry, Deadline::NONE).await.expect("unwrapped");
        assert_eq!(key.expose(), data_key());
    });
}

#[test]
fn entry_without_recipient_still_decrypts_as_with_sops() {
    let (mut entry, secret) = entry();
    entry.fields.retain(|(name, _)| name != "recipient");
    let _sandbox = Sandbox::new(&[("SOPS_AGE_KEY", &secret)]);
    run(async {
        let key = unwrap(&entry, Deadline::NONE).await.expect("unwrapped");
        assert_eq!(key.expose(), data_key());
    });
}

#[test]
fn key_command_is_stopped_at_the_deadline_and_run_again_later() {
    let (entry, secret) = entry();
    let sandbox = Sandbox::new(&[]);
    // Hangs the first time; prints the key the second.
    let pid = sandbox.path("cmd.pid");
    let done = sandbox.path("cmd.done");
    let script = sandbox.script(
        "key-cmd.sh",
        &format!(
            "#!/bin/sh\nif [ -e '{done}' ]; then echo '{secret}'; exit 0; fi\n\
             touch '{done}'\necho $$ > '{pid}'\nexec sleep 600\n",
            done = done.display(),
            pid = pid.display(),
        ),
    );
    std::env::set_var("SOPS_AGE_KEY_CMD", &script);
    run(async {
        let source = AgeKeySource::new();
        let attempt = source.unwrap(&entry, Deadline::after(Duration::from_secs(2)));
        let e = tokio::time::timeout(Duration::from_secs(120), attempt)
            .await
            .expect("the attempt ignored its deadline")
            .expect_err("a command that never answers gave the key");
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "no age identity found; SOPS_AGE_KEY_CMD `{}` did not finish in time and was stopped",
                script.display()
            )
        );
        assert!(died(&pid), "the key command outlived the attempt");
        // Not remembered as the command's answer: the next entry runs it again.
        let key = source
            .unwrap(&entry, Deadline::NONE)
            .await
            .expect("unwrapped");
        assert_eq!(key.expose(), data_key());
    });
}

#[test]
fn plugin_is_killed_at_the_deadline() {
    let (entry, _) = entry();
    let identity = age::plugin::Identity::default_for_plugin("rsopshang")
        .expect("valid plugin name")
        .to_string();
    let sandbox = Sandbox::new(&[("SOPS_AGE_KEY", &identity)]);
    let (_, pid) = sandbox.hanging("age-plugin-rsopshang");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut with_plugin = sandbox.dir.path().as_os_str().to_owned();
    with_plugin.push(":");
    with_plugin.push(&path);
    std::env::set_var("PATH", &with_plugin);
    run(async {
        let e = unwrap(&entry, Deadline::after(Duration::from_secs(2)))
            .await
            .expect_err("a plugin that never answers gave the key");
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert_eq!(
            e.to_string(),
            "no age identity unwrapped the key (1 tried, from SOPS_AGE_KEY); the deadline passed \
             while the identities were tried (a plugin or a passphrase prompt was stopped)"
        );
        assert!(died(&pid), "the plugin outlived the attempt");
    });
    std::env::set_var("PATH", path);
}
