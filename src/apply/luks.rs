//! LUKS2 containers through cryptsetup. Keys travel on stdin or in a key file, never on a
//! command line (other users can read /proc/*/cmdline).

use std::path::{Path, PathBuf};

use crate::exec::{Cmd, ExecError};
use crate::plan::PartRef;

use super::run::KeySource;

#[derive(Debug, thiserror::Error)]
pub enum LuksError {
    #[error("no key for the LUKS container in partition {number} \"{name}\": {why}")]
    NoKey {
        number: u32,
        name: String,
        why: String,
    },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

pub enum Key {
    File(PathBuf),
    Passphrase(String),
}

impl Key {
    pub fn obtain(
        key_file: Option<&Path>,
        partition: &PartRef,
        keys: &mut dyn KeySource,
    ) -> Result<Key, LuksError> {
        if let Some(f) = key_file {
            return Ok(Key::File(f.to_owned()));
        }
        keys.passphrase(partition)
            .map(Key::Passphrase)
            .map_err(|why| LuksError::NoKey {
                number: partition.number,
                name: partition.name.clone(),
                why,
            })
    }

    fn apply(&self, cmd: Cmd) -> Cmd {
        match self {
            Key::File(f) => cmd.arg("--key-file").arg(f),
            Key::Passphrase(p) => cmd.args(["--key-file", "-"]).stdin(p.as_bytes().to_vec()),
        }
    }
}

/// The device-mapper name lifeboat uses for a partition's container.
pub fn mapper_name(node: &Path) -> String {
    let base = node
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("lifeboat-{base}")
}

pub fn mapper_path(name: &str) -> PathBuf {
    Path::new("/dev/mapper").join(name)
}

pub fn format(node: &Path, key: &Key) -> Result<(), LuksError> {
    let cmd = Cmd::new("cryptsetup").args(["luksFormat", "--type", "luks2", "--batch-mode"]);
    key.apply(cmd).arg(node).run()?;
    Ok(())
}

/// Open the container; returns the mapper name.
pub fn open(node: &Path, key: &Key) -> Result<String, LuksError> {
    let name = mapper_name(node);
    let cmd = Cmd::new("cryptsetup").arg("open");
    key.apply(cmd).arg(node).arg(&name).run()?;
    Ok(name)
}

pub fn close(name: &str) -> Result<(), LuksError> {
    Cmd::new("cryptsetup").arg("close").arg(name).run()?;
    Ok(())
}
