//! The repository a machine's spec names: its `[restic]` profile under the process
//! environment.

use anyhow::Result;

use super::{Profile, Restic};

/// restic with the spec's profile under the process environment.
pub fn restic_for(spec: &crate::spec::Spec) -> Result<Restic> {
    let (env_file, password_file) = match &spec.restic {
        Some(r) => (r.env_file.as_deref(), r.password_file.as_deref()),
        None => (None, None),
    };
    // A profile the spec names but that is not there is fine when the environment has
    // the repository; a profile that is there must be private.
    let from_env = Profile::from_process();
    if let Some(f) = env_file.filter(|f| !f.exists()) {
        if !from_env.iter().any(|(k, _)| k == "RESTIC_REPOSITORY") {
            anyhow::bail!(
                "the provider profile {} named in the spec's [restic] env_file does not exist: \
                 copy a template from configs/providers/ there and fill it in (chmod 600), or set \
                 RESTIC_REPOSITORY and the AWS_* variables",
                f.display()
            );
        }
    }
    let env_file = env_file.filter(|f| f.exists());
    let password_file = password_file.filter(|f| f.exists());
    let profile = Profile::load(env_file, password_file, &from_env)?;
    Ok(Restic::new(profile))
}
