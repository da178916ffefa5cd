//! `lifeboat check SPEC | head -1`: the reader leaves before lifeboat has printed everything.
//! lifeboat must stop quietly (no panic message, no backtrace) with the status of a program
//! ended by SIGPIPE, not report a crash.

use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    // Closed before lifeboat writes a byte: its first println! meets EPIPE.
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/configs/atlantis.toml"),
        ])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(stderr, "", "nothing said on stderr either");
    assert_eq!(out.status.code(), Some(141), "stderr: {stderr}");
}
