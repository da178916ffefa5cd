//! `lifeboat inventory --from restic` against a real S3 server (SeaweedFS on 127.0.0.1) and
//! the restic of this machine: the snapshots restic itself lists, the provider profile under
//! the environment, refusals of profiles others can read, and one distinct message each for
//! a wrong password, refused credentials, a missing bucket, a missing repository and an
//! unreachable endpoint — with the secrets nowhere in what is printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::s3::{private_file, ACCESS_KEY, S3, SECRET_KEY};

const PASSWORD: &str = "correct horse battery";

struct Setup {
    s3: S3,
    dir: tempfile::TempDir,
    spec: PathBuf,
    env_file: PathBuf,
    password_file: PathBuf,
}

/// restic with these variables and nothing else of the test's environment.
fn restic(vars: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new("restic");
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.env(
        "RESTIC_CACHE_DIR",
        std::env::temp_dir().join("lifeboat-test-restic-cache"),
    );
    let out = cmd.output().expect("run restic");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// lifeboat with only these restic variables in its environment.
fn lifeboat(vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(args)
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
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run lifeboat")
}

fn setup() -> Setup {
    let s3 = S3::start("atlantis");
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("restic.env");
    let password_file = dir.path().join("restic.pw");
    private_file(
        &env_file,
        &format!(
            "# SeaweedFS on this machine\nRESTIC_REPOSITORY={}\nAWS_ACCESS_KEY_ID={ACCESS_KEY}\n\
             AWS_SECRET_ACCESS_KEY={SECRET_KEY}\n",
            s3.repository("atlantis", "restic-repo")
        ),
    );
    private_file(&password_file, &format!("{PASSWORD}\n"));
    let spec = dir.path().join("atlantis.toml");
    let text = std::fs::read_to_string(common::spec_path())
        .unwrap()
        .replace("/etc/lifeboat/restic.env", env_file.to_str().unwrap())
        .replace("/etc/lifeboat/restic.pw", password_file.to_str().unwrap());
    std::fs::write(&spec, text).unwrap();
    Setup {
        s3,
        dir,
        spec,
        env_file,
        password_file,
    }
}

impl Setup {
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "RESTIC_REPOSITORY",
                self.s3.repository("atlantis", "restic-repo"),
            ),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            (
                "RESTIC_PASSWORD_FILE",
                self.password_file.display().to_string(),
            ),
        ]
    }

    /// `restic init` (SeaweedFS may need a moment for the bucket), then two backups.
    fn backups(&self) -> Vec<String> {
        let mut tries = 0;
        loop {
            let mut cmd = Command::new("restic");
            cmd.arg("init")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap());
            for (k, v) in self.vars() {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            if out.status.success() {
                break;
            }
            tries += 1;
            assert!(
                tries < 60,
                "restic init: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.s3.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let data = self.dir.path().join("data");
        common::write(&data.join("home/alice/notes.txt"), b"monday");
        common::write(&data.join("Backups/desktop.vbk"), &[7u8; 4096]);
        let d = data.display().to_string();
        restic(
            &self.vars(),
            &[
                "backup",
                "-q",
                "--host",
                "atlantis",
                "--tag",
                "LINUX",
                &format!("{d}/home"),
            ],
        );
        restic(
            &self.vars(),
            &[
                "backup",
                "-q",
                "--host",
                "WIN-DESKTOP",
                &format!("{d}/Backups"),
            ],
        );
        let out = restic(&self.vars(), &["snapshots", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn inventory_from_restic_on_s3_and_each_failure_named() {
    let s = setup();
    let ids = s.backups();
    let spec = s.spec.to_str().unwrap();

    // The spec's profile alone: the snapshots restic lists, by host.
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let mut want = ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("atlantis (this machine) — 1 snapshot"),
        "{text}"
    );
    assert!(text.contains("WIN-DESKTOP — 1 snapshot"), "{text}");
    assert!(text.contains("[LINUX]"), "{text}");

    // The environment wins over the profile: another path in the bucket has no repository.
    let elsewhere = s.s3.repository("atlantis", "elsewhere");
    let out = lifeboat(
        &[("RESTIC_REPOSITORY", &elsewhere)],
        &["inventory", spec, "--from", "restic"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("there is no restic repository at {elsewhere}")),
        "{}",
        stderr(&out)
    );

    // A wrong password.
    let wrong_pw = s.dir.path().join("wrong.pw");
    private_file(&wrong_pw, "not the password\n");
    let out = lifeboat(
        &[("RESTIC_PASSWORD_FILE", wrong_pw.to_str().unwrap())],
        &["inventory", spec, "--from", "restic"],
    );
    assert!(
        stderr(&out).contains("the restic password does not open"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("not the password"),
        "{}",
        stderr(&out)
    );

    // Refused credentials; the secret is not printed.
    let out = lifeboat(
        &[("AWS_SECRET_ACCESS_KEY", "wrong-secret-4567")],
        &["inventory", spec, "--from", "restic"],
    );
    let err = stderr(&out);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !err.contains("wrong-secret-4567") && !err.contains(SECRET_KEY),
        "{err}"
    );

    // A bucket that does not exist.
    let out = lifeboat(
        &[(
            "RESTIC_REPOSITORY",
            &s.s3.repository("nobucket", "restic-repo"),
        )],
        &["inventory", spec, "--from", "restic"],
    );
    assert!(
        stderr(&out).contains("does not exist at that provider"),
        "{}",
        stderr(&out)
    );

    // Nobody listening: tried again, then a sentence saying so.
    let out = lifeboat(
        &[(
            "RESTIC_REPOSITORY",
            "s3:http://127.0.0.1:1/atlantis/restic-repo",
        )],
        &["inventory", spec, "--from", "restic"],
    );
    let err = stderr(&out);
    assert!(err.contains("trying again"), "{err}");
    assert!(err.contains("cannot be reached"), "{err}");

    // A profile others can read is refused before restic runs.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic"]);
    assert!(
        stderr(&out).contains("can be read by group or others (mode 644)")
            && stderr(&out).contains("chmod 600"),
        "{}",
        stderr(&out)
    );
    assert!(Path::new(&s.env_file).exists());
}
