//! The plugin prints a usable key pair. Also makes `cargo test --workspace`
//! build the plugin binary, which rsops' integration tests put on `PATH`.

use std::process::Command;

#[test]
fn generate_prints_identity_and_recipient() {
    let out = Command::new(env!("CARGO_BIN_EXE_age-plugin-rsopstest"))
        .arg("--generate")
        .output()
        .expect("run the plugin");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.contains("# recipient: age1rsopstest1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("AGE-PLUGIN-RSOPSTEST-1")),
        "{text}"
    );
}
