//! `lifeboat esp-sync-hook ROOT`: its own subcommand (it was `esp-sync --install-hook`).
//! What is checked is what lands in the root: the plugin and a byte-identical binary.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn the_hook_is_installed_into_a_root() {
    let root = tempfile::tempdir().unwrap();
    // A system root has an etc/ (the hook refuses a directory that does not).
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let bin = env!("CARGO_BIN_EXE_lifeboat");
    let run = || {
        Command::new(bin)
            .args(["esp-sync-hook", "--from", "/boot/efi", "--to", "/boot/efi2"])
            .arg(root.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plugin = root.path().join("etc/kernel/install.d/20-sync-esp.install");
    let text = std::fs::read_to_string(&plugin).unwrap();
    assert!(text.contains("/boot/efi2"), "{text}");
    let mode = std::fs::metadata(&plugin).unwrap().permissions().mode();
    assert_ne!(mode & 0o111, 0, "the plugin is executable: {mode:o}");
    assert_eq!(
        std::fs::read(root.path().join("usr/local/sbin/lifeboat")).unwrap(),
        std::fs::read(bin).unwrap()
    );
    // Again: nothing changes.
    let before = std::fs::read(&plugin).unwrap();
    assert!(run().status.success());
    assert_eq!(std::fs::read(&plugin).unwrap(), before);
}

#[test]
fn esp_sync_no_longer_takes_install_hook() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["esp-sync", "--install-hook"])
        .arg(root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(
        std::fs::read_dir(root.path()).unwrap().next().is_none(),
        "nothing written"
    );
}
