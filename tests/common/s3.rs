//! The S3 server for the restic tests: the one the QEMU harness runs (xtask/src/qemu/s3.rs,
//! included here), in a temporary directory of its own.

use std::path::Path;

#[path = "../../xtask/src/qemu/s3.rs"]
mod weed;

// Not every test binary that includes `common` talks to S3.
#[allow(unused_imports)]
pub use weed::{ACCESS_KEY, SECRET_KEY};

pub struct S3 {
    /// Runs as long as this lives.
    _server: weed::S3,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl S3 {
    /// Start with these buckets (comma-separated) made; returns once the S3 port answers.
    pub fn start(buckets: &str) -> S3 {
        S3::start_inner(buckets, false)
    }

    /// The same over HTTPS: a test CA (`ca_pem`) signed the server's certificate for
    /// `localhost` and 127.0.0.1.
    #[allow(dead_code)]
    pub fn start_tls(buckets: &str) -> S3 {
        S3::start_inner(buckets, true)
    }

    fn start_inner(buckets: &str, tls: bool) -> S3 {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = buckets.split(',').map(str::to_owned).collect();
        let (cert, key) = (dir.path().join("s3.pem"), dir.path().join("s3.key"));
        if tls {
            test_ca(dir.path(), "ca", Some(("localhost", &cert, &key)));
        }
        let server = weed::S3::start_with(
            dir.path(),
            &names,
            tls.then_some(weed::Tls {
                cert: &cert,
                key: &key,
            }),
        )
        .unwrap_or_else(|e| panic!("{e:#} (`cargo xtask deps` installs weed)"));
        S3 {
            port: server.port,
            _server: server,
            dir,
        }
    }

    /// The CA that signed the server's certificate (after [`S3::start_tls`]).
    #[allow(dead_code)]
    pub fn ca_pem(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("s3.log")).unwrap_or_default()
    }

    /// `s3:http://127.0.0.1:PORT/BUCKET/PATH`
    pub fn repository(&self, bucket: &str, path: &str) -> String {
        format!("s3:http://127.0.0.1:{}/{bucket}/{path}", self.port)
    }
}

/// A CA made with openssl in `dir` (`NAME.pem`, `NAME.key`) and, when asked, a server
/// certificate it signs for a host name and 127.0.0.1.
pub fn test_ca(dir: &Path, name: &str, server: Option<(&str, &Path, &Path)>) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN=lifeboat test CA {name}"),
        "-keyout",
        &key,
        "-out",
        &pem,
    ]);
    if let Some((host, cert, cert_key)) = server {
        let ext = dir.join("san.ext");
        std::fs::write(&ext, format!("subjectAltName=DNS:{host},IP:127.0.0.1\n")).unwrap();
        let csr = dir.join("server.csr");
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={host}"),
            "-keyout",
            cert_key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            &pem,
            "-CAkey",
            &key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
    }
}

/// A file only its owner can read (what lifeboat wants for secrets).
pub fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
