//! Which Debian archive to download from: the one this machine's apt is configured with.
//! rescue.toml names only suites ("bookworm", "trixie"); the archive URIs and keyrings come
//! from /etc/apt, so a local mirror or proxy set up for the machine is used as it is.

use std::path::Path;

use anyhow::{bail, Result};

/// One `deb` entry of the host's apt configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub uri: String,
    pub suites: Vec<String>,
    pub signed_by: Option<String>,
}

/// Every `deb` entry of /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}.
pub fn read_host() -> Vec<Archive> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        out.extend(parse_one_line(&text));
    }
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => out.extend(parse_deb822(&text)),
            Some("list") => out.extend(parse_one_line(&text)),
            _ => {}
        }
    }
    out
}

/// `deb [signed-by=…] URI SUITE COMPONENT…` lines.
pub fn parse_one_line(text: &str) -> Vec<Archive> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("deb ")?;
            let (opts, rest) = match rest.trim_start().strip_prefix('[') {
                Some(r) => {
                    let (o, r) = r.split_once(']')?;
                    (o.to_owned(), r)
                }
                None => (String::new(), rest),
            };
            let mut f = rest.split_whitespace();
            let uri = f.next()?.to_owned();
            let suite = f.next()?.to_owned();
            let signed_by = opts
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_owned);
            Some(Archive {
                uri,
                suites: vec![suite],
                signed_by,
            })
        })
        .collect()
}

/// deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Signed-By:`), separated by blank lines.
pub fn parse_deb822(text: &str) -> Vec<Archive> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
            })
        };
        if !field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb")) {
            continue;
        }
        if field("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no")) {
            continue;
        }
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        for uri in uris.split_whitespace() {
            out.push(Archive {
                uri: uri.to_owned(),
                suites: suites.split_whitespace().map(str::to_owned).collect(),
                signed_by: field("Signed-By"),
            });
        }
    }
    out
}

/// The `deb` line for `suite` (and `components`), through the host's archive of that kind:
/// `*-security` suites from the archive that serves security updates, others from the one
/// that serves a plain Debian suite.
pub fn line_for(host: &[Archive], suite: &str, components: &[String]) -> Result<String> {
    let security = suite.ends_with("-security");
    let is_debian_suite = |s: &str| {
        let base = s.split('-').next().unwrap_or(s);
        [
            "bookworm",
            "trixie",
            "forky",
            "sid",
            "stable",
            "testing",
            "unstable",
            "oldstable",
        ]
        .contains(&base)
    };
    let archive = host.iter().find(|a| {
        a.suites
            .iter()
            .any(|s| is_debian_suite(s) && s.ends_with("-security") == security)
    });
    let Some(a) = archive else {
        bail!(
            "this machine's apt configuration (/etc/apt/sources.list*) names no Debian archive for {} suites, which the image's `{suite}` comes from",
            if security { "security" } else { "regular" }
        );
    };
    let keyring = a
        .signed_by
        .clone()
        .unwrap_or_else(|| "/usr/share/keyrings/debian-archive-keyring.gpg".to_owned());
    Ok(format!(
        "deb [signed-by={keyring}] {} {suite} {}",
        a.uri,
        components.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: https://other.example/node\nSuites: nodistro\nComponents: main\n";

    #[test]
    fn lines_come_from_the_hosts_archives() {
        let host = parse_deb822(DEB822);
        assert_eq!(host.len(), 3);
        let main = vec!["main".to_owned()];
        assert_eq!(
            line_for(&host, "trixie", &main).unwrap(),
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie main"
        );
        assert!(line_for(&host, "bookworm-security", &main)
            .unwrap()
            .contains("http://mirror.example/debian-security bookworm-security main"));
    }

    #[test]
    fn one_line_format_and_missing_archives() {
        let host = parse_one_line("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\ndeb-src http://m.example/debian bookworm main\n");
        assert_eq!(host.len(), 1);
        assert_eq!(host[0].signed_by.as_deref(), Some("/k.gpg"));
        let err = line_for(&host, "bookworm-security", &["main".into()]).unwrap_err();
        assert!(err
            .to_string()
            .contains("names no Debian archive for security suites"));
    }
}
