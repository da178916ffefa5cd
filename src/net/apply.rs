//! Carrying out a static-address plan: busybox `ip` through [`Cmd`], the DHCP client
//! stopped by its pid file, resolv.conf written by [`super::resolv`]. Stops at the first
//! step that fails and names it.

use std::path::{Path, PathBuf};

use super::plan::Step;
use crate::exec::{Cmd, ExecError};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{step}: {source}")]
    Exec {
        step: String,
        #[source]
        source: ExecError,
    },
    #[error("{step}: {path}: {source}")]
    Io {
        step: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the steps write: the system's paths, or a test's directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub state_dir: PathBuf,
    pub resolv_conf: PathBuf,
}

impl Paths {
    pub fn system() -> Paths {
        Paths {
            state_dir: PathBuf::from(super::STATE_DIR),
            resolv_conf: PathBuf::from(super::RESOLV_CONF),
        }
    }
}

/// Carry out `steps` in order.
pub fn apply(steps: &[Step], paths: &Paths) -> Result<(), NetError> {
    for step in steps {
        let io = |path: &Path| {
            let step = step.describe();
            let path = path.to_owned();
            move |source| NetError::Io { step, path, source }
        };
        match step {
            Step::StopDhcp { link } => {
                let dir = &paths.state_dir;
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                // First the mark: net-up, run again for a link plugged in later, skips it.
                let mark = dir.join(format!("{link}.static"));
                std::fs::write(&mark, b"").map_err(io(&mark))?;
                stop_dhcp(&dir.join(format!("{link}.pid")));
                // The lease's address is flushed by the next steps: its record goes too.
                let _ = std::fs::remove_file(dir.join(format!("{link}.addr")));
            }
            Step::Ip(args) => {
                Cmd::new("ip")
                    .args(args)
                    .run()
                    .map_err(|source| NetError::Exec {
                        step: step.describe(),
                        source,
                    })?;
            }
            Step::Resolv { link, text } => {
                super::resolv::write(&paths.state_dir, link, text, &paths.resolv_conf)
                    .map_err(io(&paths.resolv_conf))?;
            }
        }
    }
    Ok(())
}

/// SIGTERM to the udhcpc of a pid file; udhcpc then leaves the address alone (it releases
/// only with -R, which net-up does not pass). No pid file or no such process: nothing runs.
fn stop_dhcp(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|p| *p > 1);
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        crate::runlog::line(&format!("stopped udhcpc {pid} ({})", pid_file.display()));
    }
    let _ = std::fs::remove_file(pid_file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_dhcp_marks_the_link_and_ends_its_client() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state_dir: dir.path().join("net"),
            resolv_conf: dir.path().join("resolv.conf"),
        };
        std::fs::create_dir_all(&paths.state_dir).unwrap();
        // A stand-in for udhcpc: a process of our own whose pid is in the pid file.
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        std::fs::write(
            paths.state_dir.join("eth0.pid"),
            format!("{}\n", child.id()),
        )
        .unwrap();
        std::fs::write(paths.state_dir.join("eth0.addr"), "10.0.2.15/24\n").unwrap();
        let steps = [
            Step::StopDhcp {
                link: "eth0".into(),
            },
            Step::Resolv {
                link: "eth0".into(),
                text: "nameserver 9.9.9.9\n".into(),
            },
        ];
        apply(&steps, &paths).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(paths.state_dir.join("eth0.static").exists());
        assert!(!paths.state_dir.join("eth0.pid").exists());
        assert!(!paths.state_dir.join("eth0.addr").exists());
        assert_eq!(
            std::fs::read_to_string(&paths.resolv_conf).unwrap(),
            "nameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn a_failing_ip_names_its_step() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            state_dir: dir.path().join("net"),
            resolv_conf: dir.path().join("resolv.conf"),
        };
        // A link that does not exist: `ip` refuses before changing anything.
        let steps = [Step::Ip(
            ["-4", "addr", "flush", "dev", "lifeboat-none0"]
                .map(String::from)
                .to_vec(),
        )];
        let err = apply(&steps, &paths).unwrap_err().to_string();
        assert!(
            err.starts_with("ip -4 addr flush dev lifeboat-none0: "),
            "{err}"
        );
        assert!(!paths.resolv_conf.exists());
    }
}
