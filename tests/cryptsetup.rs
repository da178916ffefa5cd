//! crate::cryptsetup against the real cryptsetup, on a sparse image file: this host has no
//! device-mapper, so nothing is opened here (the QEMU scenario `luks` does that), but a
//! LUKS2 header is made, read back by cryptsetup itself, and keys are tried. A wrong key
//! is a clear error that changes nothing on the device; a second key slot opens it too;
//! no key reaches the run log.

use std::path::Path;

use lifeboat::cryptsetup::{self, CryptError, Key};
use lifeboat::exec::Cmd;

const UUID: &str = "3f1c2b6e-8d3a-4e55-9b1f-0a7c5d2e4b11";

fn sha256(path: &Path) -> String {
    Cmd::new("sha256sum").arg(path).read().unwrap()
}

#[test]
fn a_container_is_made_with_its_uuid_and_refuses_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = lifeboat::runlog::start_in(dir.path(), "cryptsetup-test").unwrap();
    let image = dir.path().join("pool.img");
    // Big enough for a LUKS2 header (16 MiB) and a filesystem; sparse.
    std::fs::File::create(&image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let key_path = dir.path().join("pool.key");
    std::fs::write(&key_path, b"0123456789abcdef-key-file-bytes").unwrap();
    let key = Key::file(&key_path).unwrap();

    assert!(!cryptsetup::is_luks(&image).unwrap());
    cryptsetup::format(&image, &key, Some(UUID)).unwrap();
    assert!(cryptsetup::is_luks(&image).unwrap());
    assert_eq!(cryptsetup::version(&image).unwrap(), 2);
    assert_eq!(cryptsetup::uuid(&image).unwrap(), UUID);
    // blkid, independently, sees the container and its UUID.
    let blkid = Cmd::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(&image)
        .read()
        .unwrap();
    assert!(blkid.contains("TYPE=crypto_LUKS"), "{blkid}");
    assert!(blkid.contains(&format!("UUID={UUID}")), "{blkid}");

    cryptsetup::check_key(&image, &key).unwrap();
    let before = sha256(&image);
    let wrong = Key::Passphrase("not the key".into());
    let err = cryptsetup::check_key(&image, &wrong).unwrap_err();
    assert!(matches!(err, CryptError::BadKey { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the key does not open the LUKS container in {}: nothing was written",
            image.display()
        )
    );
    // Adding a slot with a wrong existing key is refused the same way, and writes nothing.
    let err = cryptsetup::add_key(&image, &wrong, &Key::Passphrase("x".into())).unwrap_err();
    assert!(matches!(err, CryptError::BadKey { .. }), "{err:?}");
    assert_eq!(sha256(&image), before, "a refused key changed the device");

    // A typed passphrase in a second slot opens it too.
    let typed = Key::Passphrase("lark recovery phrase".into());
    cryptsetup::add_key(&image, &key, &typed).unwrap();
    cryptsetup::check_key(&image, &typed).unwrap();
    let dump = Cmd::new("cryptsetup")
        .arg("luksDump")
        .arg(&image)
        .read()
        .unwrap();
    assert!(dump.contains("  0: luks2"), "{dump}");
    assert!(dump.contains("  1: luks2"), "{dump}");
    // And a second passphrase from the first one (both on stdin is impossible: one goes
    // through a private file).
    let third = Key::Passphrase("third phrase".into());
    cryptsetup::add_key(&image, &typed, &third).unwrap();
    cryptsetup::check_key(&image, &third).unwrap();

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("luksFormat"), "{logged}");
    for secret in [
        "lark recovery phrase",
        "third phrase",
        "not the key",
        "key-file-bytes",
    ] {
        assert!(!logged.contains(secret), "{secret} in the log:\n{logged}");
    }
}
