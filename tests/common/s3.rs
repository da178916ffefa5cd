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
        let (cert, key) = (
            dir.path().join("ca-server.pem"),
            dir.path().join("ca-server.key"),
        );
        if tls {
            test_ca(dir.path(), "ca", Some("localhost"));
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

/// A test CA in `dir` (`NAME.pem`) and, given a host, a server certificate it signed
/// (`NAME-server.pem`, `NAME-server.key`): the harness's own (xtask/src/qemu/s3.rs).
#[allow(dead_code)]
pub fn test_ca(dir: &Path, name: &str, server_host: Option<&str>) {
    weed::make_ca(dir, name, server_host).unwrap_or_else(|e| panic!("{e:#}"));
}

/// A file only its owner can read (what lifeboat wants for secrets).
pub fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
