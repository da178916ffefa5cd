//! restic over HTTPS with a private CA: SeaweedFS serves S3 with a certificate a test CA
//! signed (openssl); the provider profile names that CA as RESTIC_CACERT and `lifeboat
//! inventory --from restic` lists the snapshot; with another CA in the profile the
//! endpoint is refused with one sentence that names RESTIC_CACERT, and nothing is retried.

mod common;

use std::process::{Command, Output, Stdio};

use common::s3::{private_file, test_ca, ACCESS_KEY, S3, SECRET_KEY};

fn restic(s3: &S3, repo: &str, pw: &std::path::Path, args: &[&str]) -> Output {
    Command::new("restic")
        .arg("--cacert")
        .arg(s3.ca_pem())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD_FILE", pw)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env(
            "RESTIC_CACHE_DIR",
            std::env::temp_dir().join("lifeboat-test-restic-cache"),
        )
        .output()
        .expect("run restic")
}

fn inventory(spec: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["inventory", spec.to_str().unwrap(), "--from", "restic"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .env(
            "RESTIC_CACHE_DIR",
            std::env::temp_dir().join("lifeboat-test-restic-cache"),
        )
        .env("LIFEBOAT_RESTIC_BACKOFF", "0.1,0.1")
        .stdin(Stdio::null())
        .output()
        .expect("run lifeboat")
}

#[test]
fn a_private_ca_named_in_the_profile_and_a_wrong_one_refused() {
    let s3 = S3::start_tls("atlantis");
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("s3:https://localhost:{}/atlantis/restic-repo", s3.port);
    let pw = dir.path().join("restic.pw");
    private_file(&pw, "tls test password\n");

    // A repository with one snapshot, made by restic itself over HTTPS (SeaweedFS may
    // need a moment for the bucket).
    let mut tries = 0;
    loop {
        let out = restic(&s3, &repo, &pw, &["init"]);
        if out.status.success() {
            break;
        }
        tries += 1;
        assert!(
            tries < 60,
            "restic init: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            s3.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let data = dir.path().join("data");
    common::write(&data.join("home/alice/notes.txt"), b"over tls");
    let out = restic(
        &s3,
        &repo,
        &pw,
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            data.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let spec_for = |ca: &std::path::Path, name: &str| {
        let env_file = dir.path().join(format!("{name}.env"));
        private_file(
            &env_file,
            &format!(
                "RESTIC_REPOSITORY={repo}\nAWS_ACCESS_KEY_ID={ACCESS_KEY}\n\
                 AWS_SECRET_ACCESS_KEY={SECRET_KEY}\nRESTIC_CACERT={}\n",
                ca.display()
            ),
        );
        let spec = dir.path().join(format!("{name}.toml"));
        let text = std::fs::read_to_string(common::spec_path())
            .unwrap()
            .replace("/etc/lifeboat/restic.env", env_file.to_str().unwrap())
            .replace("/etc/lifeboat/restic.pw", pw.to_str().unwrap());
        std::fs::write(&spec, text).unwrap();
        spec
    };

    // The CA that signed the server's certificate: the snapshot restic made is listed.
    let out = inventory(&spec_for(&s3.ca_pem(), "right"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 snapshot"), "{stdout}");

    // Another CA: refused, told in one sentence, not retried as a network failure.
    let other = tempfile::tempdir().unwrap();
    test_ca(other.path(), "other", None);
    let out = inventory(&spec_for(&other.path().join("other.pem"), "wrong"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("TLS certificate that no trusted CA signed") && err.contains("RESTIC_CACERT"),
        "{err}"
    );
    assert!(!err.contains("tried again"), "{err}");
}
