//! What went wrong when restic failed (pure): the cases a person can act on are told
//! apart by what restic (0.14 to 0.18) and S3 servers say on stderr.

/// A failed restic run, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The repository opened but no key matches the password.
    WrongPassword,
    /// The S3 server rejected the access key or the secret.
    WrongCredentials,
    /// The bucket named in RESTIC_REPOSITORY does not exist.
    NoBucket,
    /// The bucket is there, but no repository at that path.
    NoRepository,
    /// The endpoint's TLS certificate is not signed by a CA this system (or RESTIC_CACERT)
    /// trusts, or is for another name: retrying cannot help.
    Certificate,
    /// The endpoint did not answer (DNS, refused, timeout, TLS): worth retrying.
    Unreachable,
    /// Anything else: restic's own words are shown.
    Other,
}

impl Failure {
    pub fn of(stderr: &str) -> Failure {
        let s = stderr.to_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
        if any(&["wrong password or no key found"]) {
            Failure::WrongPassword
        } else if any(&[
            "access key id you provided does not exist",
            "signature we calculated does not match",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "access denied",
            "accessdenied",
        ]) {
            Failure::WrongCredentials
        } else if any(&["specified bucket does not exist", "nosuchbucket"]) {
            Failure::NoBucket
        } else if any(&[
            "specified key does not exist",
            "config file does not exist",
            "nosuchkey",
        ]) {
            Failure::NoRepository
        } else if any(&[
            "x509:",
            "failed to verify certificate",
            "certificate signed by unknown authority",
        ]) {
            Failure::Certificate
        } else if any(&[
            "connection refused",
            "no such host",
            "i/o timeout",
            "network is unreachable",
            "connection reset",
            "tls handshake",
            "context deadline exceeded",
            "server misbehaving",
        ]) {
            Failure::Unreachable
        } else {
            Failure::Other
        }
    }

    /// Retrying may help (the network), or it cannot (everything else).
    pub fn transient(self) -> bool {
        self == Failure::Unreachable
    }

    /// One sentence for the person at the console; `repo` is RESTIC_REPOSITORY.
    pub fn explain(self, repo: &str) -> String {
        match self {
            Failure::WrongPassword => format!(
                "the restic password does not open {repo} (wrong password, or the wrong \
                 RESTIC_PASSWORD_FILE)"
            ),
            Failure::WrongCredentials => format!(
                "the S3 server of {repo} refused the credentials: check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY in the provider profile"
            ),
            Failure::NoBucket => format!(
                "the bucket in {repo} does not exist at that provider: check the bucket name \
                 and endpoint in RESTIC_REPOSITORY"
            ),
            Failure::NoRepository => format!(
                "there is no restic repository at {repo}: the bucket exists, check the path \
                 after it"
            ),
            Failure::Certificate => format!(
                "the S3 endpoint of {repo} showed a TLS certificate that no trusted CA signed, \
                 or one for another name: for a private CA, name its PEM file in the provider \
                 profile as RESTIC_CACERT=/path/ca.pem; otherwise check the host name"
            ),
            Failure::Unreachable => format!(
                "the S3 endpoint of {repo} cannot be reached (network, DNS or firewall); \
                 lifeboat tried again and gave up"
            ),
            Failure::Other => format!("restic failed on {repo}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What restic 0.14 printed against SeaweedFS on 127.0.0.1 in each case.
    #[test]
    fn each_case_is_told_apart() {
        let cases = [
            (
                "Fatal: wrong password or no key found",
                Failure::WrongPassword,
            ),
            (
                "Fatal: unable to open config file: Stat: The request signature we calculated \
                 does not match the signature you provided. Check your key and signing method.\n\
                 Is there a repository at the following location?",
                Failure::WrongCredentials,
            ),
            (
                "Fatal: unable to open config file: Stat: The access key ID you provided does \
                 not exist in our records.",
                Failure::WrongCredentials,
            ),
            (
                "Fatal: unable to open config file: Stat: The specified bucket does not exist",
                Failure::NoBucket,
            ),
            (
                "Fatal: unable to open config file: Stat: The specified key does not exist.\n\
                 Is there a repository at the following location?",
                Failure::NoRepository,
            ),
            (
                "Fatal: unable to open config file: Stat: Get \"http://127.0.0.1:1/atlantis/\
                 ?location=\": dial tcp 127.0.0.1:1: connect: connection refused",
                Failure::Unreachable,
            ),
            // restic 0.14 (Go 1.19) and 0.18 (Go 1.23) against a server whose CA is not given.
            (
                "Fatal: unable to open config file: Stat: Get \"https://localhost:40001/atlantis/\
                 ?location=\": x509: certificate signed by unknown authority",
                Failure::Certificate,
            ),
            (
                "Fatal: unable to open config file: Stat: Get \"https://s3.lifeboat.test/atlantis/\
                 ?location=\": tls: failed to verify certificate: x509: certificate is valid for \
                 localhost, not s3.lifeboat.test",
                Failure::Certificate,
            ),
            ("Fatal: something new", Failure::Other),
        ];
        for (stderr, want) in cases {
            assert_eq!(Failure::of(stderr), want, "{stderr}");
        }
        assert!(Failure::Unreachable.transient());
        assert!(!Failure::WrongPassword.transient());
        assert!(!Failure::Certificate.transient());
    }
}
