//! Debian packages without touching the build host's apt configuration: each source of
//! rescue.toml gets its own sources list, package lists and cache under
//! target/image-cache/apt/<name>/, passed to apt-get/apt-cache with `-o` options.
//! Dependencies are resolved here (not by apt) so that the exclude list prunes whole
//! branches: a live root in RAM has no use for dpkg, debconf or perl.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::run_quiet;

/// One package source with its private apt state.
pub struct AptRoot {
    pub name: String,
    dir: PathBuf,
}

/// A package as `apt-get download --print-uris` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

impl AptRoot {
    pub fn new(cache: &Path, name: &str) -> AptRoot {
        AptRoot {
            name: name.to_owned(),
            dir: cache.join("apt").join(name),
        }
    }

    fn opts(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            format!("Dir::Etc::SourceList={d}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".to_owned(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            // Keep apt's binary cache of the lists between calls (Debian's container
            // images switch it off in apt.conf.d/docker-clean): without it each of the
            // build's apt-cache calls parses every Packages file again, ~1 s apiece.
            "Dir::Cache::pkgcache=pkgcache.bin".to_owned(),
            "Dir::Cache::srcpkgcache=srcpkgcache.bin".to_owned(),
            // No pinning of the host, no dpkg status of the host: only these lists count.
            "Dir::Etc::Preferences=/dev/null".to_owned(),
            "Dir::Etc::PreferencesParts=/dev/null".to_owned(),
            "Dir::State::status=/dev/null".to_owned(),
            "APT::Architectures=amd64".to_owned(),
            "APT::Architecture=amd64".to_owned(),
            // Only Packages files are needed: no translations, no AppStream metadata.
            "Acquire::Languages=none".to_owned(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_owned(),
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".to_owned(),
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".to_owned(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_owned(), o])
        .collect()
    }

    /// Write the sources list and fetch the package lists unless lists for exactly these
    /// lines are already there (or `refresh` asks for new ones).
    pub fn prepare(&self, sh: &Shell, lines: &[String], refresh: bool) -> Result<()> {
        let list = lines.join("\n") + "\n";
        let stamp = self.dir.join("updated-for");
        let fresh = fs::read_to_string(&stamp).is_ok_and(|s| s == list);
        if fresh && !refresh {
            return Ok(());
        }
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(self.dir.join(sub))
                .with_context(|| format!("creating {}", self.dir.join(sub).display()))?;
        }
        fs::write(self.dir.join("sources.list"), &list)
            .with_context(|| format!("writing {}", self.dir.join("sources.list").display()))?;
        println!("image: apt-get update for source `{}`", self.name);
        let opts = self.opts();
        run_quiet(cmd!(sh, "apt-get {opts...} update"))
            .with_context(|| format!("fetching the package lists of source `{}`", self.name))?;
        fs::write(&stamp, &list).with_context(|| format!("writing {}", stamp.display()))?;
        Ok(())
    }

    /// The packages of `names` that these lists know as real packages (not virtual).
    pub fn existing(&self, sh: &Shell, names: &[String]) -> Result<BTreeSet<String>> {
        let opts = self.opts();
        let out = run_quiet(cmd!(
            sh,
            "apt-cache {opts...} show --no-all-versions {names...}"
        ))?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix("Package: "))
            .map(|s| s.trim().to_owned())
            .collect())
    }

    /// Fail with one sentence naming the packages of `names` that this source lacks.
    pub fn require(&self, sh: &Shell, names: &[String]) -> Result<()> {
        let found = self.existing(sh, names)?;
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !found.contains(*n))
            .map(String::as_str)
            .collect();
        match missing.as_slice() {
            [] => Ok(()),
            [one] => bail!(
                "Debian package `{one}` does not exist in source `{}` (images/rescue.toml)",
                self.name
            ),
            many => bail!(
                "Debian packages {} do not exist in source `{}` (images/rescue.toml)",
                many.iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.name
            ),
        }
    }

    fn depends(&self, sh: &Shell, names: &[String]) -> Result<BTreeMap<String, Vec<Group>>> {
        let opts = self.opts();
        let out = run_quiet(cmd!(
            sh,
            "apt-cache {opts...} depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances {names...}"
        ))?;
        Ok(parse_depends(&out))
    }

    /// The closure of `roots` over Depends and Pre-Depends. Packages in `provided` (already
    /// chosen from another source) end a branch; so do excluded ones.
    pub fn resolve(
        &self,
        sh: &Shell,
        roots: &[String],
        provided: &BTreeSet<String>,
        exclude: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>> {
        self.require(sh, roots)?;
        let mut chosen: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = roots.to_vec();
        while !todo.is_empty() {
            todo.retain(|n| !chosen.contains(n) && !provided.contains(n));
            todo.sort();
            todo.dedup();
            if todo.is_empty() {
                break;
            }
            let deps = self.depends(sh, &todo)?;
            chosen.extend(todo.iter().cloned());
            let mut next = Vec::new();
            for name in &todo {
                for group in deps.get(name).map(Vec::as_slice).unwrap_or_default() {
                    let pick = choose(group, |n| chosen.contains(n) || provided.contains(n), exclude)
                        .with_context(|| {
                            format!(
                                "package `{name}` of source `{}` depends on {}, which nothing in that source provides",
                                self.name,
                                group.describe()
                            )
                        })?;
                    if let Some(pick) = pick {
                        next.push(pick);
                    }
                }
            }
            todo = next;
        }
        Ok(chosen)
    }

    /// File name, size and SHA-256 of the candidate version of each package.
    pub fn downloads(&self, sh: &Shell, names: &[String]) -> Result<BTreeMap<String, Download>> {
        let opts = self.opts();
        let out = run_quiet(cmd!(
            sh,
            "apt-get {opts...} download --print-uris {names...}"
        ))?;
        let mut found = BTreeMap::new();
        for line in out.lines() {
            if let Some(d) = parse_print_uri(line) {
                let pkg = d.file.split('_').next().unwrap_or_default().to_owned();
                found.insert(pkg, d);
            }
        }
        for name in names {
            if !found.contains_key(name) {
                bail!(
                    "apt-get names no download for package `{name}` of source `{}`",
                    self.name
                );
            }
        }
        Ok(found)
    }

    /// Make sure each package is in `debs` (verified by size and SHA-256), downloading
    /// only what is missing. Returns the paths, in the order of `names`.
    pub fn fetch(&self, sh: &Shell, names: &[String], debs: &Path) -> Result<Vec<PathBuf>> {
        fs::create_dir_all(debs).with_context(|| format!("creating {}", debs.display()))?;
        let wanted = self.downloads(sh, names)?;
        let mut missing = Vec::new();
        for (pkg, d) in &wanted {
            if !cached(&debs.join(&d.file), d)? {
                missing.push(pkg.clone());
            }
        }
        if !missing.is_empty() {
            println!(
                "image: downloading {} packages from source `{}`",
                missing.len(),
                self.name
            );
            let opts = self.opts();
            let _dir = sh.push_dir(debs);
            run_quiet(cmd!(sh, "apt-get {opts...} download {missing...}"))
                .with_context(|| format!("downloading from source `{}`", self.name))?;
        }
        let mut paths = Vec::new();
        for name in names {
            let d = &wanted[name];
            let path = debs.join(&d.file);
            if !cached(&path, d)? {
                bail!(
                    "{} does not match the size and SHA-256 the package lists give",
                    path.display()
                );
            }
            paths.push(path);
        }
        Ok(paths)
    }
}

fn cached(path: &Path, want: &Download) -> Result<bool> {
    match fs::metadata(path) {
        Ok(m) if m.len() == want.size => {}
        _ => return Ok(false),
    }
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)) == want.sha256)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `'URI' FILE SIZE SHA256:HEX`, one line per package of `apt-get download --print-uris`.
fn parse_print_uri(line: &str) -> Option<Download> {
    let mut words = line.split_whitespace();
    let _uri = words.next()?.strip_prefix('\'')?;
    let file = words.next()?.to_owned();
    let size = words.next()?.parse().ok()?;
    let sha256 = words.next()?.strip_prefix("SHA256:")?.to_owned();
    Some(Download { file, size, sha256 })
}

/// One dependency: alternatives, each either a real package or a virtual one with the
/// packages that provide it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Group(pub Vec<Alt>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alt {
    pub name: String,
    pub providers: Option<Vec<String>>,
}

impl Group {
    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|a| format!("`{}`", a.name))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Parse `apt-cache depends` output: a package name at column 0, `  Depends: x` lines
/// (` |Depends:` when the next line is an alternative), `<virtual>` names followed by
/// their providers indented by four spaces.
pub fn parse_depends(out: &str) -> BTreeMap<String, Vec<Group>> {
    let mut all: BTreeMap<String, Vec<Group>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut open = false; // the last item ended with `|`: the next one joins its group
    for line in out.lines() {
        if !line.starts_with(' ') {
            let name = line.trim().to_owned();
            all.entry(name.clone()).or_default();
            current = Some(name);
            open = false;
            continue;
        }
        let Some(pkg) = current.as_ref() else {
            continue;
        };
        let groups = all.entry(pkg.clone()).or_default();
        if let Some(provider) = line.strip_prefix("    ") {
            if let Some(Alt {
                providers: Some(p), ..
            }) = groups.last_mut().and_then(|g| g.0.last_mut())
            {
                p.push(strip_arch(provider.trim()));
            }
            continue;
        }
        let alt_mark = line.starts_with(" |");
        let item = line.trim_start_matches([' ', '|']);
        let Some((kind, target)) = item.split_once(": ") else {
            continue;
        };
        if kind != "Depends" && kind != "PreDepends" {
            continue;
        }
        let target = target.trim();
        let alt = match target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            Some(virt) => Alt {
                name: strip_arch(virt),
                providers: Some(Vec::new()),
            },
            None => Alt {
                name: strip_arch(target),
                providers: None,
            },
        };
        if open {
            if let Some(g) = groups.last_mut() {
                g.0.push(alt);
            }
        } else {
            groups.push(Group(vec![alt]));
        }
        open = alt_mark;
    }
    all
}

fn strip_arch(name: &str) -> String {
    name.split(':').next().unwrap_or(name).to_owned()
}

/// Which package satisfies `group`: one already chosen if any; else the first real
/// alternative that is not excluded; else the first non-excluded provider of a virtual one.
/// `Ok(None)` when only excluded packages would do (the dependency is dropped); an error
/// when nothing provides it at all.
pub fn choose(
    group: &Group,
    have: impl Fn(&str) -> bool,
    exclude: &BTreeSet<String>,
) -> Result<Option<String>> {
    let candidates = || {
        group.0.iter().flat_map(|a| match &a.providers {
            None => vec![a.name.clone()],
            Some(p) => p.clone(),
        })
    };
    if group.0.iter().any(|a| have(&a.name)) || candidates().any(|c| have(&c)) {
        return Ok(None);
    }
    if let Some(pick) = candidates().find(|c| !exclude.contains(c)) {
        return Ok(Some(pick));
    }
    let excluded_somewhere = group.0.iter().any(|a| exclude.contains(&a.name))
        || candidates().any(|c| exclude.contains(&c));
    if excluded_somewhere {
        return Ok(None);
    }
    bail!("no package provides it")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\
ca-certificates
  Depends: openssl
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
util-linux
  PreDepends: libblkid1
  PreDepends: libsystemd0
    libelogind0
  Depends: util-linux-extra
restic
  Depends: libc6:any
  Depends: <nothing-provides-this>
";

    #[test]
    fn depends_output_parses_into_groups() {
        let deps = parse_depends(OUT);
        let ca = &deps["ca-certificates"];
        assert_eq!(ca.len(), 2);
        assert_eq!(ca[1].0.len(), 2, "debconf | debconf-2.0 is one group");
        assert_eq!(
            ca[1].0[1].providers.as_deref(),
            Some(&["cdebconf".to_owned(), "debconf".to_owned()][..])
        );
        let ul = &deps["util-linux"];
        // A real package followed by an indented line is a real package (the line lists
        // what else provides it); only `<...>` names are virtual.
        assert_eq!(ul[1].0[0].name, "libsystemd0");
        assert_eq!(ul[1].0[0].providers, None);
        assert_eq!(deps["restic"][0].0[0].name, "libc6");
    }

    #[test]
    fn choosing_respects_have_and_exclude() {
        let deps = parse_depends(OUT);
        let exclude: BTreeSet<String> = ["debconf".to_owned(), "cdebconf".to_owned()].into();
        let none = |_: &str| false;
        let ca = &deps["ca-certificates"];
        assert_eq!(
            choose(&ca[0], none, &exclude).unwrap().as_deref(),
            Some("openssl")
        );
        assert_eq!(
            choose(&ca[1], none, &exclude).unwrap(),
            None,
            "only excluded ones"
        );
        assert_eq!(
            choose(&ca[1], none, &BTreeSet::new()).unwrap().as_deref(),
            Some("debconf")
        );
        assert_eq!(choose(&ca[0], |n| n == "openssl", &exclude).unwrap(), None);
        let err = choose(&deps["restic"][1], none, &exclude).unwrap_err();
        assert!(err.to_string().contains("no package provides it"));
    }

    #[test]
    fn print_uris_lines_parse() {
        let line = "'http://mirror.example/debian/pool/main/g/gdisk/gdisk_1.0.9-2.1_amd64.deb' gdisk_1.0.9-2.1_amd64.deb 221100 SHA256:8a86";
        assert_eq!(
            parse_print_uri(line),
            Some(Download {
                file: "gdisk_1.0.9-2.1_amd64.deb".into(),
                size: 221100,
                sha256: "8a86".into()
            })
        );
        assert_eq!(parse_print_uri("Reading package lists..."), None);
    }
}
