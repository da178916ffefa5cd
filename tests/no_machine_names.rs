//! lifeboat is for Atlantis and machines like it: no name of the Atlantis spec (its machine
//! name and host, disk serials, partition names and labels, subvolume names, the restic tag)
//! may be written into the code outside its tests. The names are read from
//! configs/atlantis.toml itself (with the toml crate, not lifeboat's spec reader), so the
//! list follows the spec.

use std::path::{Path, PathBuf};

/// Names of the spec that are not Atlantis's but what such layouts call things on any
/// machine; the code may know them. Each with the reason.
const CONVENTIONS: &[(&str, &str)] = &[
    (
        "@snapshots",
        "the snapshot container btrbk and snapper write into",
    ),
    (
        "@home",
        "the home subvolume's name in every distribution's Btrfs layout",
    ),
    ("boot", "a partition name for /boot, and a word"),
    ("swap", "a partition name for swap, and a word"),
    ("EFI system partition", "the GPT type's own name"),
    (
        "Basic data partition",
        "the name Windows gives its partition",
    ),
    ("BOOT", "UEFI's fallback path is EFI/BOOT/BOOTX64.EFI"),
    (
        "ESP0",
        "the design's name for the first disk's ESP (docs/DESIGN)",
    ),
    ("ESP1", "the design's name for the mirror ESP (docs/DESIGN)"),
];

/// Every name configs/atlantis.toml gives: (name, what it is in the spec).
fn spec_names(root: &Path) -> Vec<(String, String)> {
    let path = root.join("configs/atlantis.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let spec: toml::Table = toml::from_str(&text).unwrap();
    let mut names = Vec::new();
    let mut add = |name: Option<&toml::Value>, what: &str| {
        if let Some(name) = name.and_then(toml::Value::as_str) {
            if !CONVENTIONS.iter().any(|(c, _)| *c == name) {
                names.push((name.to_owned(), what.to_owned()));
            }
        }
    };
    let machine = &spec["machine"];
    add(machine.get("name"), "machine name");
    add(machine.get("host"), "host name");
    for disk in spec["disk"].as_array().unwrap() {
        let m = disk.get("match");
        add(m.and_then(|m| m.get("serial")), "disk serial");
        add(m.and_then(|m| m.get("wwn")), "disk WWN");
        for part in disk.get("partition").and_then(|p| p.as_array()).unwrap() {
            add(part.get("label"), "filesystem label");
            add(part.get("name"), "partition name");
            for sub in part
                .get("subvolume")
                .and_then(|s| s.as_array())
                .into_iter()
                .flatten()
            {
                add(sub.get("name"), "subvolume name");
            }
        }
    }
    add(spec.get("restic").and_then(|r| r.get("tag")), "restic tag");
    names.sort();
    names.dedup();
    // The host is the machine name in small letters; in any case it is one name.
    if let (Some(m), Some(h)) = (
        names.iter().position(|(_, w)| w == "machine name"),
        names.iter().position(|(_, w)| w == "host name"),
    ) {
        if names[m].0.eq_ignore_ascii_case(&names[h].0) {
            names[m].1 = "machine and host name".into();
            names.remove(h);
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The directory a file's submodules live in (`src/a/mod.rs`, `src/lib.rs` -> their own
/// directory; `src/a/b.rs` -> `src/a/b/`).
fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap().to_path_buf();
    match file.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => parent,
        _ => parent.join(file.file_stem().unwrap()),
    }
}

/// How a line changes the brace depth, with braces inside string and char literals and
/// comments left out (a test's `"{"` must not end the module early).
fn brace_delta(line: &str, in_string: &mut Option<usize>) -> i64 {
    let b = line.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(hashes) = *in_string {
            if hashes == usize::MAX {
                // Ordinary string: ends at an unescaped quote.
                if b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == b'"' {
                    *in_string = None;
                }
            } else if b[i] == b'"'
                && b[i + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|c| **c == b'#')
                    .count()
                    == hashes
            {
                *in_string = None;
                i += hashes;
            }
            i += 1;
            continue;
        }
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => break,
            b'"' => *in_string = Some(usize::MAX),
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) == Some(&b'"') {
                    *in_string = Some(hashes);
                    i += hashes + 2;
                    continue;
                }
            }
            b'\'' => {
                // A char literal ('{', '\'', '\u{7b}'); a lifetime has no closing quote.
                if b.get(i + 1) == Some(&b'\\') {
                    if let Some(end) = b[i + 2..].iter().position(|c| *c == b'\'') {
                        i += end + 3;
                        continue;
                    }
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                    continue;
                }
            }
            b'{' => depth += 1,
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    depth
}

/// The file's lines outside `#[cfg(test)]` items (numbered from 1), and the files the
/// file declares as test-only modules (`#[cfg(test)] mod tests;`).
fn non_test_lines(file: &Path, text: &str) -> (Vec<(usize, String)>, Vec<PathBuf>) {
    let mut kept = Vec::new();
    let mut test_files = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut in_string = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if in_string.is_none() && line.trim() == "#[cfg(test)]" {
            // Skip further attributes, then the item: to its `;` or its closing brace.
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim_start().starts_with("#[") {
                j += 1;
            }
            let item = lines.get(j).copied().unwrap_or("");
            let item = item.trim();
            let unexported = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .find_map(|v| item.strip_prefix(v))
                .unwrap_or(item);
            if let Some(name) = unexported
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
            {
                let dir = module_dir(file);
                test_files.push(dir.join(format!("{name}.rs")));
                test_files.push(dir.join(name));
                i = j + 1;
                continue;
            }
            let mut depth = 0;
            let mut opened = false;
            while j < lines.len() {
                depth += brace_delta(lines[j], &mut in_string);
                opened |= lines[j].contains('{');
                j += 1;
                if (opened && depth <= 0 && in_string.is_none())
                    || (!opened && lines[j - 1].trim_end().ends_with(';'))
                {
                    break;
                }
            }
            i = j;
            continue;
        }
        brace_delta(line, &mut in_string);
        kept.push((i + 1, line.to_owned()));
        i += 1;
    }
    (kept, test_files)
}

/// Whether `name` occurs in `line` as a whole word: not inside a longer name
/// (`LINUX_DATA` is not the tag `LINUX`). Machine and host name compare in any case.
fn occurs(line: &str, name: &str, any_case: bool) -> bool {
    let (hay, needle) = if any_case {
        (line.to_lowercase(), name.to_lowercase())
    } else {
        (line.to_owned(), name.to_owned())
    };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = hay[from..].find(&needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let starts_word = needle.chars().next().is_some_and(word);
        let ends_word = needle.chars().next_back().is_some_and(word);
        let inside_a_word =
            (starts_word && before.is_some_and(word)) || (ends_word && after.is_some_and(word));
        if !inside_a_word {
            return true;
        }
        from = start + 1;
    }
    false
}

#[test]
fn no_name_of_the_atlantis_spec_is_in_the_code_outside_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = spec_names(root);
    // The spec names more than a dozen things; an empty list would pass anything.
    for want in ["Atlantis", "LINPOOL", "LINBKUP", "ATLANTIS-DISK1", "LINUX"] {
        assert!(
            names.iter().any(|(n, _)| n == want),
            "{want} not read from the spec: {names:?}"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut test_only = Vec::new();
    let mut found = Vec::new();
    let mut read = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let (lines, tests) = non_test_lines(file, &text);
        test_only.extend(tests);
        read.push((file.clone(), lines));
    }
    for (file, lines) in &read {
        if test_only.iter().any(|t| file == t || file.starts_with(t)) {
            continue;
        }
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        for (number, line) in lines {
            for (name, what) in &names {
                let any_case = what.contains("machine") || what.contains("host");
                if occurs(line, name, any_case) {
                    found.push(format!("{rel}:{number}: {what} {name:?}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} line(s) of src/ outside tests name what configs/atlantis.toml names; the code must \
         take such names from the spec:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_scanner_sees_through_test_modules_and_literals() {
    let text = "fn a() {}\n\
                #[cfg(test)]\n\
                mod tests {\n    const S: &str = \"}\";\n    const C: char = '}';\n    fn f() { let _ = r#\"{\"#; }\n}\n\
                const REAL: &str = \"LINPOOL\";\n\
                #[cfg(test)]\n\
                mod more;\n\
                #[cfg(test)]\n\
                pub(crate) mod util;\n";
    let (kept, tests) = non_test_lines(Path::new("src/x/mod.rs"), text);
    let numbers: Vec<usize> = kept.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [1, 8]);
    assert!(tests.contains(&PathBuf::from("src/x/more.rs")), "{tests:?}");
    assert!(tests.contains(&PathBuf::from("src/x/util.rs")), "{tests:?}");
    assert!(occurs("label \"LINPOOL\" here", "LINPOOL", false));
    assert!(!occurs("the LINUX_DATA type", "LINUX", false));
    assert!(occurs("like configs/atlantis.toml", "Atlantis", true));
    assert!(occurs("@rootTW.2026", "@rootTW", false));
    assert!(!occurs("@rootTWX", "@rootTW", false));
}
