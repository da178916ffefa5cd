//! The restic environment: a provider profile (`restic.env`: RESTIC_REPOSITORY,
//! AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, …) with the process environment on top, as
//! restic users expect. Secrets travel to restic in its environment, never on a command
//! line (visible to everyone in /proc) and never into a log: [`Profile::redact`] removes
//! them from anything printed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The variables lifeboat passes to restic (and reads from a profile).
pub const VARS: &[&str] = &[
    "RESTIC_REPOSITORY",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_CACHE_DIR",
    // A private CA's PEM file, for an S3 endpoint whose certificate it signed.
    "RESTIC_CACERT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
];

/// Values that must never be shown.
const SECRET_VARS: &[&str] = &[
    "RESTIC_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("{file}:{line}: expected KEY=VALUE, found \"{text}\"")]
    Syntax {
        file: String,
        line: usize,
        text: String,
    },
    #[error("{file}:{line}: {key} is not a restic setting lifeboat passes on (known: {known})")]
    Unknown {
        file: String,
        line: usize,
        key: String,
        known: String,
    },
    #[error(
        "{file} can be read by group or others (mode {mode:o}): it holds secrets; run \
         `chmod 600 {file}`"
    )]
    Readable { file: String, mode: u32 },
    #[error("cannot read {file}: {why}")]
    Read { file: String, why: String },
    #[error(
        "no restic repository: set RESTIC_REPOSITORY, or name a provider profile in the spec's \
         [restic] env_file (templates: configs/providers/*.env)"
    )]
    NoRepository,
    #[error(
        "no restic password: set RESTIC_PASSWORD_FILE (a file only root can read), or give \
         password_file in the spec's [restic] section"
    )]
    NoPassword,
}

/// `KEY=VALUE` lines (`export` allowed, `#` comments, values in single or double quotes).
pub fn parse(file: &str, text: &str) -> Result<Vec<(String, String)>, EnvError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(EnvError::Syntax {
                file: file.into(),
                line: i + 1,
                text: raw.trim().chars().take(40).collect(),
            });
        };
        let key = key.trim();
        if !VARS.contains(&key) {
            return Err(EnvError::Unknown {
                file: file.into(),
                line: i + 1,
                key: key.into(),
                known: VARS.join(", "),
            });
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// Refuse a file with secrets that group or others can read.
pub fn check_private(path: &Path) -> Result<(), EnvError> {
    let meta = std::fs::metadata(path).map_err(|e| EnvError::Read {
        file: path.display().to_string(),
        why: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(EnvError::Readable {
            file: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// Where the password of a repository URL with credentials (`rest:http://user:pw@host/`,
/// `sftp://user:pw@host/`) sits in it, as a byte range.
fn url_password(repo: &str) -> Option<std::ops::Range<usize>> {
    let start = repo.find("://")? + 3;
    let authority = &repo[start..];
    let authority = &authority[..authority.find('/').unwrap_or(authority.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let colon = userinfo.find(':')?;
    Some(start + colon + 1..start + userinfo.len())
}

/// A repository URL as it may be shown: a password in it replaced by `***`, as restic
/// itself shows it.
pub fn shown_repository(repo: &str) -> String {
    match url_password(repo) {
        Some(r) => format!("{}***{}", &repo[..r.start], &repo[r.end..]),
        None => repo.to_owned(),
    }
}

/// What restic runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub vars: BTreeMap<String, String>,
    /// The password itself (read from the password file) and one inside the repository
    /// URL, only to redact them.
    secrets: Vec<String>,
    /// RESTIC_REPOSITORY without the password it may hold.
    shown: String,
}

impl Profile {
    /// The profile file (if any) under the process environment (`env`: the restic
    /// variables set now), with the spec's password file when neither names one.
    pub fn load(
        env_file: Option<&Path>,
        password_file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Profile, EnvError> {
        let mut vars = BTreeMap::new();
        if let Some(file) = env_file {
            check_private(file)?;
            let text = std::fs::read_to_string(file).map_err(|e| EnvError::Read {
                file: file.display().to_string(),
                why: e.to_string(),
            })?;
            vars.extend(parse(&file.display().to_string(), &text)?);
        }
        for (k, v) in env {
            if VARS.contains(&k.as_str()) {
                vars.insert(k.clone(), v.clone());
            }
        }
        if !vars.contains_key("RESTIC_PASSWORD_FILE") && !vars.contains_key("RESTIC_PASSWORD") {
            if let Some(p) = password_file {
                vars.insert("RESTIC_PASSWORD_FILE".into(), p.display().to_string());
            }
        }
        if !vars.contains_key("RESTIC_REPOSITORY") {
            return Err(EnvError::NoRepository);
        }
        let mut secrets: Vec<String> = SECRET_VARS
            .iter()
            .filter_map(|k| vars.get(*k).cloned())
            .collect();
        match vars.get("RESTIC_PASSWORD_FILE") {
            Some(p) => {
                let p = PathBuf::from(p);
                check_private(&p)?;
                let pw = std::fs::read_to_string(&p).map_err(|e| EnvError::Read {
                    file: p.display().to_string(),
                    why: e.to_string(),
                })?;
                secrets.push(pw.trim_end_matches(['\n', '\r']).to_owned());
            }
            None if vars.contains_key("RESTIC_PASSWORD") => {}
            None => return Err(EnvError::NoPassword),
        }
        let repository = vars.get("RESTIC_REPOSITORY").cloned().unwrap_or_default();
        if let Some(r) = url_password(&repository) {
            secrets.push(repository[r].to_owned());
        }
        secrets.retain(|s| s.len() >= 4);
        Ok(Profile {
            shown: shown_repository(&repository),
            vars,
            secrets,
        })
    }

    /// The process environment's restic variables, for [`Profile::load`].
    pub fn from_process() -> Vec<(String, String)> {
        VARS.iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect()
    }

    /// The values to keep out of logs and errors.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// RESTIC_REPOSITORY as it may be printed and logged: a password in the URL is `***`.
    pub fn repository(&self) -> &str {
        &self.shown
    }

    /// `text` with every secret replaced by `***`; the repository URL in its shown form
    /// (so that a password too short to be hidden everywhere is hidden there).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Some(repo) = self.vars.get("RESTIC_REPOSITORY") {
            if *repo != self.shown {
                out = out.replace(repo.as_str(), &self.shown);
            }
        }
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_templates_parse() {
        for (name, text) in [
            ("wasabi", include_str!("../../configs/providers/wasabi.env")),
            ("b2", include_str!("../../configs/providers/b2.env")),
            (
                "idrive-e2",
                include_str!("../../configs/providers/idrive-e2.env"),
            ),
            (
                "hetzner",
                include_str!("../../configs/providers/hetzner.env"),
            ),
        ] {
            let vars = parse(name, text).unwrap();
            let get = |k: &str| {
                vars.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            assert!(
                get("RESTIC_REPOSITORY").is_some_and(
                    |r| r.starts_with("s3:https://") && r.ends_with("/BUCKET/restic-repo")
                ),
                "{name}"
            );
            assert!(get("AWS_ACCESS_KEY_ID").is_some(), "{name}");
            assert!(get("AWS_SECRET_ACCESS_KEY").is_some(), "{name}");
        }
    }

    #[test]
    fn profile_lines() {
        let text = "# Wasabi\nexport RESTIC_REPOSITORY=s3:https://s3.wasabisys.com/b/restic-repo\n\
                    AWS_ACCESS_KEY_ID=\"AKIA1\"\n  AWS_SECRET_ACCESS_KEY='s3cr3t'\n\n";
        assert_eq!(
            parse("w.env", text).unwrap(),
            [
                (
                    "RESTIC_REPOSITORY".to_owned(),
                    "s3:https://s3.wasabisys.com/b/restic-repo".to_owned()
                ),
                ("AWS_ACCESS_KEY_ID".to_owned(), "AKIA1".to_owned()),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), "s3cr3t".to_owned()),
            ]
        );
        assert_eq!(
            parse("w.env", "RESTIC_REPO=x\n").unwrap_err().to_string(),
            format!(
                "w.env:1: RESTIC_REPO is not a restic setting lifeboat passes on (known: {})",
                VARS.join(", ")
            )
        );
        assert!(matches!(
            parse("w.env", "\nnonsense\n").unwrap_err(),
            EnvError::Syntax { line: 2, .. }
        ));
    }

    #[test]
    fn a_password_in_the_repository_url_is_never_shown() {
        assert_eq!(
            shown_repository("rest:http://backup:hunter22@10.0.0.5:8000/atlantis"),
            "rest:http://backup:***@10.0.0.5:8000/atlantis"
        );
        assert_eq!(
            shown_repository("sftp://me:p@ss:w0rd@nas/srv/restic"),
            "sftp://me:***@nas/srv/restic"
        );
        // No credentials, or a user without a password: nothing to hide.
        for plain in [
            "s3:https://s3.wasabisys.com/bucket/restic-repo",
            "rest:http://backup@10.0.0.5:8000/",
            "sftp:me@nas:/srv/restic",
            "b2:bucket:path/with@sign:x",
        ] {
            assert_eq!(shown_repository(plain), plain);
        }

        let d = tempfile::tempdir().unwrap();
        let pw = d.path().join("restic.pw");
        std::fs::write(&pw, "correct horse\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (url, password) in [
            ("rest:http://backup:hunter22@127.0.0.1:1/", "hunter22"),
            ("rest:http://backup:pw@127.0.0.1:1/", "pw"),
        ] {
            let env = [("RESTIC_REPOSITORY".to_owned(), url.to_owned())];
            let p = Profile::load(None, Some(&pw), &env).unwrap();
            assert_eq!(p.vars["RESTIC_REPOSITORY"], url, "restic gets the real one");
            assert_eq!(p.repository(), "rest:http://backup:***@127.0.0.1:1/");
            let said = p.redact(&format!("cannot reach {url}"));
            assert_eq!(said, "cannot reach rest:http://backup:***@127.0.0.1:1/");
            assert!(!said.contains(&format!(":{password}@")));
        }
    }

    #[test]
    fn the_environment_wins_secrets_are_private_and_redacted() {
        use std::fs::Permissions;
        let d = tempfile::tempdir().unwrap();
        let env = d.path().join("restic.env");
        let pw = d.path().join("restic.pw");
        std::fs::write(
            &env,
            "RESTIC_REPOSITORY=s3:https://a.example/b\nAWS_SECRET_ACCESS_KEY=topsecret\n",
        )
        .unwrap();
        std::fs::write(&pw, "correct horse\n").unwrap();
        std::fs::set_permissions(&env, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&pw, Permissions::from_mode(0o600)).unwrap();
        let err = Profile::load(Some(&env), Some(&pw), &[]).unwrap_err();
        assert!(
            matches!(err, EnvError::Readable { mode: 0o644, .. }),
            "{err}"
        );
        std::fs::set_permissions(&env, Permissions::from_mode(0o600)).unwrap();

        let over = [(
            "RESTIC_REPOSITORY".to_owned(),
            "s3:http://127.0.0.1:9000/other".to_owned(),
        )];
        let p = Profile::load(Some(&env), Some(&pw), &over).unwrap();
        assert_eq!(p.repository(), "s3:http://127.0.0.1:9000/other");
        assert_eq!(
            p.vars.get("RESTIC_PASSWORD_FILE").map(String::as_str),
            Some(pw.to_str().unwrap())
        );
        assert_eq!(
            p.redact("Fatal: key topsecret and password correct horse rejected"),
            "Fatal: key *** and password *** rejected"
        );

        assert_eq!(
            Profile::load(Some(&env), None, &[]).unwrap_err(),
            EnvError::NoPassword
        );
        assert_eq!(
            Profile::load(None, Some(&pw), &[]).unwrap_err(),
            EnvError::NoRepository
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_profile_text(text in "\\PC{0,200}") {
            let _ = parse("restic.env", &text);
            let _ = crate::restic::backoff(&text);
        }
    }
}
