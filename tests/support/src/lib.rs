//! Helpers the test suites of several crates in the workspace share.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes an executable script (mode 0755) at `path` without this process
/// ever holding it open for writing: a test thread that forks meanwhile
/// would pass the open file on to its child, and running the script would
/// then fail with "Text file busy". `sh` writes it instead.
pub fn write_script(path: &Path, body: &str) {
    let mut sh = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run sh");
    sh.stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write script");
    assert!(
        sh.wait().expect("wait for sh").success(),
        "sh could not write {}",
        path.display()
    );
}
