//! The keys of the LUKS containers a plan makes or opens: the spec's key file, or a
//! passphrase from the [`KeySource`]. cryptsetup itself runs in [`crate::cryptsetup`].

use std::path::Path;

use crate::cryptsetup::{CryptError, Key};
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
    Crypt(#[from] CryptError),
}

/// Whether the key is for a container about to be made (a passphrase is asked for twice)
/// or one that exists (asked for once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    New,
    Existing,
}

/// The key of `partition`'s container: its key file when the spec names one, else a
/// passphrase from `keys`.
pub fn obtain(
    key_file: Option<&Path>,
    partition: &PartRef,
    keys: &mut dyn KeySource,
    purpose: Purpose,
) -> Result<Key, LuksError> {
    if let Some(f) = key_file {
        return Ok(Key::file(f)?);
    }
    passphrase(partition, keys, purpose)
}

/// A passphrase from `keys`, whatever the spec says about a key file.
pub fn passphrase(
    partition: &PartRef,
    keys: &mut dyn KeySource,
    purpose: Purpose,
) -> Result<Key, LuksError> {
    let asked = match purpose {
        Purpose::New => keys.new_passphrase(partition),
        Purpose::Existing => keys.passphrase(partition),
    };
    asked.map(Key::Passphrase).map_err(|why| LuksError::NoKey {
        number: partition.number,
        name: partition.name.clone(),
        why,
    })
}
