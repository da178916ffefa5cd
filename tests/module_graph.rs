//! The top-level modules of `src/` form layers: no module reaches, through `crate::…`, a
//! module that reaches it back. A circle means neither side can be read, tested or moved
//! on its own (the layering is in docs/architecture.md).
//!
//! The graph is read from the source at test time: every `crate::NAME` path (in `use`
//! lines, `use crate::{a, b::c}` groups spanning lines, and paths in code) and every
//! `super::` chain that climbs to the crate root, in code that is compiled outside tests.
//! Comments, string literals, `#[cfg(test)]` items and files only test modules declare do
//! not count: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Where one module names another: the file (relative to the crate) and its line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    file: String,
    line: usize,
}

/// For each top-level module, the other top-level modules it names, each with every place.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    /// Literals and lifetimes: they only need to keep their place.
    Other,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust source as tokens, without comments; literals kept only as placeholders.
fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_start(&c, i) {
            // r"…", r#"…"#, br#"…"#: no escapes, ends at a quote and as many hashes.
            let hashes = len - if c[i] == 'b' { 3 } else { 2 };
            let start_line = line;
            i += len;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            out.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
        } else if ch == '"' || (ch == 'b' && c.get(i + 1) == Some(&'"')) {
            let start_line = line;
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if c.get(i) == Some(&'\n') {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
        } else if ch == '\'' || (ch == 'b' && c.get(i + 1) == Some(&'\'')) {
            let q = if ch == 'b' { i + 1 } else { i };
            if c.get(q + 1) == Some(&'\\') {
                // An escaped char literal: '\n', '\'', '\u{1F600}'.
                i = q + 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(q + 2) == Some(&'\'') {
                i = q + 3;
            } else {
                // A lifetime or a label: 'a, 'static.
                i = q + 1;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
            }
            out.push(Token {
                tok: Tok::Other,
                line,
            });
        } else if ident_char(ch) {
            let start = i;
            if ch == 'r' && c.get(i + 1) == Some(&'#') {
                i += 2;
            }
            let word_start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            let tok = if ch.is_ascii_digit() {
                Tok::Other
            } else {
                Tok::Ident(c[word_start..i].iter().collect())
            };
            debug_assert!(i > start);
            out.push(Token { tok, line });
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The length of the opening of a raw string at `i` (`r"`, `r##"`, `br#"`), if one starts there.
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    j += 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(j + 1 - i)
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

fn is_ident(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(w), .. }) if w == word)
}

/// The index just past the bracket group that opens at `i` (`(`, `[` or `{`).
fn skip_group(toks: &[Token], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < toks.len() {
        match toks[j].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    toks.len()
}

/// Whether the attribute `#[…]` at `i` is exactly `#[cfg(test)]`; `inner` for `#![…]`.
fn is_cfg_test(toks: &[Token], i: usize) -> Option<bool> {
    if !is_punct(toks.get(i), '#') {
        return None;
    }
    let inner = is_punct(toks.get(i + 1), '!');
    let at = if inner { i + 2 } else { i + 1 };
    let shape = ["[", "cfg", "(", "test", ")", "]"];
    let matches = shape
        .iter()
        .enumerate()
        .all(|(k, want)| match &toks.get(at + k) {
            Some(Token {
                tok: Tok::Ident(w), ..
            }) => w == want,
            Some(Token {
                tok: Tok::Punct(p), ..
            }) => want.len() == 1 && want.starts_with(*p),
            _ => false,
        });
    matches.then_some(inner)
}

const ITEM_KEYWORDS: [&str; 15] = [
    "fn",
    "mod",
    "use",
    "impl",
    "struct",
    "enum",
    "union",
    "const",
    "static",
    "type",
    "trait",
    "unsafe",
    "async",
    "extern",
    "macro_rules",
];

/// The index just past the item, field, statement or match arm that starts at `i`.
fn skip_annotated(toks: &[Token], mut i: usize) -> usize {
    // Further attributes on the same thing.
    while is_punct(toks.get(i), '#') && is_punct(toks.get(i + 1), '[') {
        i = skip_group(toks, i + 1);
    }
    let mut k = i;
    if is_ident(toks.get(k), "pub") {
        k += 1;
        if is_punct(toks.get(k), '(') {
            k = skip_group(toks, k);
        }
    }
    let item = matches!(&toks.get(k), Some(Token { tok: Tok::Ident(w), .. }) if ITEM_KEYWORDS.contains(&w.as_str()));
    let mut j = i;
    while j < toks.len() {
        match toks[j].tok {
            Tok::Punct('{') if item => return skip_group(toks, j),
            Tok::Punct('(' | '[' | '{') => j = skip_group(toks, j),
            // The end of the enclosing group: a field or an arm ended without a comma.
            Tok::Punct(')' | ']' | '}') => return j,
            Tok::Punct(';') => return j + 1,
            Tok::Punct(',') if !item => return j + 1,
            _ => j += 1,
        }
    }
    j
}

/// The tokens of code compiled outside tests; `None` when the whole file is `#![cfg(test)]`.
fn strip_tests(toks: Vec<Token>) -> Option<Vec<Token>> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        match is_cfg_test(&toks, i) {
            Some(true) => return None,
            Some(false) => i = skip_annotated(&toks, i + 7),
            None => {
                out.push(toks[i].clone());
                i += 1;
            }
        }
    }
    Some(out)
}

/// A module file and where it sits: its module path from the crate root.
struct ModFile {
    path: PathBuf,
    module: Vec<String>,
    /// Where the files of its `mod x;` children live.
    child_dir: PathBuf,
}

/// Every non-test file of the top-level module `name`, following its `mod x;` declarations.
fn module_files(src: &Path, name: &str) -> Vec<(ModFile, Vec<Token>)> {
    let root = if src.join(format!("{name}.rs")).is_file() {
        src.join(format!("{name}.rs"))
    } else {
        src.join(name).join("mod.rs")
    };
    let mut queue = VecDeque::from([ModFile {
        path: root,
        module: vec![name.to_string()],
        child_dir: src.join(name),
    }]);
    let mut out = Vec::new();
    while let Some(file) = queue.pop_front() {
        let text = fs::read_to_string(&file.path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.path.display()));
        let Some(toks) = strip_tests(lex(&text)) else {
            continue;
        };
        // `mod x;` at file level (inline `mod x { … }` blocks with file children are not used).
        let mut depth = 0usize;
        for (i, t) in toks.iter().enumerate() {
            match t.tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => depth = depth.saturating_sub(1),
                Tok::Ident(ref w) if w == "mod" && depth == 0 => {
                    if let (
                        Some(Token {
                            tok: Tok::Ident(child),
                            ..
                        }),
                        true,
                    ) = (toks.get(i + 1), is_punct(toks.get(i + 2), ';'))
                    {
                        let flat = file.child_dir.join(format!("{child}.rs"));
                        let path = if flat.is_file() {
                            flat
                        } else {
                            file.child_dir.join(child).join("mod.rs")
                        };
                        let mut module = file.module.clone();
                        module.push(child.clone());
                        queue.push_back(ModFile {
                            path,
                            module,
                            child_dir: file.child_dir.join(child),
                        });
                    }
                }
                _ => {}
            }
        }
        out.push((file, toks));
    }
    out
}

/// The top-level modules a file's code names, each with its line. `module` is the file's
/// module path (`["restore", "source", "usb"]`), so `super::…` chains can be resolved.
fn references(toks: &[Token], module: &[String]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    // Inline modules (`mod x { … }`) deepen the module path for `super::`.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" && is_punct(toks.get(i + 2), '{') => {
                inline.push(depth);
            }
            Tok::Ident(w) if (w == "crate" || w == "super") && !after_path_sep(toks, i) => {
                // How far up the path climbs: `crate` to the root, each `super` one level.
                let mut at = i;
                let mut level = module.len() + inline.len();
                if w == "crate" {
                    level = 0;
                    at += 1;
                } else {
                    while is_ident(toks.get(at), "super") && is_path_sep(toks, at + 1) {
                        level = level.saturating_sub(1);
                        at += 3;
                    }
                    at -= 2;
                }
                if level == 0 && is_path_sep(toks, at) {
                    collect_heads(toks, at + 2, &mut out);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_path_sep(toks: &[Token], i: usize) -> bool {
    is_punct(toks.get(i), ':') && is_punct(toks.get(i + 1), ':')
}

fn after_path_sep(toks: &[Token], i: usize) -> bool {
    i >= 2 && is_path_sep(toks, i - 2)
}

/// The first segment after `crate::` at `i`: a name, or each name of a `{a, b::c}` group.
fn collect_heads(toks: &[Token], i: usize, out: &mut Vec<(String, usize)>) {
    match toks.get(i) {
        Some(Token {
            tok: Tok::Ident(w),
            line,
        }) if w != "self" => out.push((w.clone(), *line)),
        Some(Token {
            tok: Tok::Punct('{'),
            ..
        }) => {
            let end = skip_group(toks, i);
            let mut depth = 0usize;
            let mut expect_head = true;
            for t in &toks[i + 1..end.saturating_sub(1)] {
                match &t.tok {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => depth -= 1,
                    Tok::Punct(',') if depth == 0 => expect_head = true,
                    Tok::Ident(w) if expect_head && depth == 0 => {
                        if w != "self" {
                            out.push((w.clone(), t.line));
                        }
                        expect_head = false;
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// The names of the top-level modules: every `X.rs` and `X/` directly under src/.
fn top_modules(src: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(src).expect("reading src/") {
        let path = entry.expect("listing src/").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "main" && stem != "lib" {
                names.insert(stem.to_string());
            }
        } else if path.is_dir() && path.join("mod.rs").is_file() {
            names.insert(name.to_string());
        }
    }
    names
}

fn read_graph(crate_dir: &Path) -> Graph {
    let src = crate_dir.join("src");
    let names = top_modules(&src);
    let mut graph = Graph::new();
    for name in &names {
        let edges = graph.entry(name.clone()).or_default();
        for (file, toks) in module_files(&src, name) {
            let rel = file
                .path
                .strip_prefix(crate_dir)
                .unwrap_or(&file.path)
                .display()
                .to_string();
            for (to, line) in references(&toks, &file.module) {
                if &to != name && names.contains(&to) {
                    edges.entry(to).or_default().push(Site {
                        file: rel.clone(),
                        line,
                    });
                }
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan), each sorted.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// A shortest circle through `start` inside `comp`: `[start, …, start]`.
fn shortest_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    comp: &[String],
    start: &str,
) -> Vec<String> {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.to_string()];
                let mut at = v;
                while at != start {
                    path.push(at.to_string());
                    at = came_from[at];
                }
                path.push(start.to_string());
                path.reverse();
                return path;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

fn plain(graph: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    graph
        .iter()
        .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
        .collect()
}

/// One message per circle: a shortest circle with the place of each step, then every
/// edge inside the circle's component (any one of them removed may be the fix).
fn explain(graph: &Graph) -> Option<String> {
    let simple = plain(graph);
    let found = circles(&simple);
    if found.is_empty() {
        return None;
    }
    let mut msg = String::new();
    for comp in &found {
        let cycle = shortest_cycle(&simple, comp, &comp[0]);
        let _ = writeln!(
            msg,
            "src/ modules import each other in a circle: {}",
            cycle.join(" -> ")
        );
        for pair in cycle.windows(2) {
            let sites = &graph[&pair[0]][&pair[1]];
            let more = match sites.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            let _ = writeln!(
                msg,
                "  {} -> {}: {}:{}{more}",
                pair[0], pair[1], sites[0].file, sites[0].line
            );
        }
        let _ = writeln!(
            msg,
            "All {} modules of this circle reach each other ({}); the edges among them:",
            comp.len(),
            comp.join(", ")
        );
        for from in comp {
            for (to, sites) in &graph[from] {
                if comp.contains(to) {
                    let _ = writeln!(
                        msg,
                        "    {from} -> {to}: {}:{}",
                        sites[0].file, sites[0].line
                    );
                }
            }
        }
    }
    Some(msg)
}

#[test]
fn src_modules_form_layers_without_circles() {
    let graph = read_graph(Path::new(env!("CARGO_MANIFEST_DIR")));
    // The reader must have seen the crate, or an empty graph would pass.
    let edges: usize = graph.values().map(BTreeMap::len).sum();
    assert!(
        graph.len() >= 20,
        "only {} modules found: {:?}",
        graph.len(),
        graph.keys()
    );
    assert!(edges >= 40, "only {edges} edges found: {graph:?}");
    for (from, to) in [
        ("commands", "restore"),
        ("restore", "btrfs"),
        ("apply", "exec"),
    ] {
        assert!(
            graph[from].contains_key(to),
            "{from} -> {to} not seen: {:?}",
            graph[from]
        );
    }
    if let Some(msg) = explain(&graph) {
        panic!("{msg}");
    }
}

fn hand_made(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in edges {
        g.entry(a.to_string()).or_default().insert(b.to_string());
        g.entry(b.to_string()).or_default();
    }
    g
}

#[test]
fn the_circle_finder_sees_circles_and_only_circles() {
    let layered = hand_made(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]);
    assert!(circles(&layered).is_empty());

    let g = hand_made(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
        ("b", "a"),
        ("x", "a"),
    ]);
    assert_eq!(
        circles(&g),
        vec![vec!["a", "b", "c"], vec!["d", "e"]]
            .into_iter()
            .map(|c| c.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    let comp: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    assert_eq!(shortest_cycle(&g, &comp, "a"), ["a", "b", "a"]);
    assert_eq!(shortest_cycle(&g, &comp, "c"), ["c", "a", "b", "c"]);
}

#[test]
fn references_are_read_from_code_outside_tests_only() {
    let src = r##"
//! Mentions crate::commented in a doc comment.
use crate::{
    alpha,
    beta::{One, Two},
    self,
};
use crate::gamma::Thing;
/* crate::blocked /* nested crate::blocked2 */ still comment crate::blocked3 */
fn f<'a>(x: &'a str) -> char {
    let _ = "crate::in_string";
    let _ = r#"crate::in_raw "quoted" "#;
    let _ = crate::delta::call(x);
    let _ = something::crate_like::x;
    '"'
}
#[cfg(test)]
fn only_in_tests() { crate::test_only_fn::x(); }
struct S {
    #[cfg(test)]
    probe: crate::test_only_field::T,
    kept: crate::epsilon::T,
}
#[cfg(test)]
mod tests {
    use crate::test_only_mod;
    fn g() { let _ = "}"; crate::test_only_mod2::x(); }
}
fn h() { super::zeta::x(); }
"##;
    let toks = strip_tests(lex(src)).expect("not a test-only file");
    let found = references(&toks, &["top".to_string()]);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    );
    // Each name carries the line it is written on, also inside a group spanning lines.
    let lines: Vec<usize> = found.iter().map(|(_, l)| *l).collect();
    assert_eq!(lines, [4, 5, 8, 13, 22, 29]);

    // `super::super::x` from a module two levels deep reaches the root; one `super` does not.
    let deep = lex("use super::super::root_mod::X; use super::sibling::Y;");
    let deep_refs = references(&deep, &["top".to_string(), "child".to_string()]);
    assert_eq!(deep_refs, [("root_mod".to_string(), 1)]);

    assert!(strip_tests(lex("#![cfg(test)]\nuse crate::x;")).is_none());
}

/// Where a command file reaches past the library into its siblings: `super::…` (the
/// `commands` module and so every other command file) or `crate::commands::…`.
fn sibling_uses(toks: &[Token]) -> Vec<usize> {
    (0..toks.len())
        .filter(|&i| {
            (is_ident(toks.get(i), "super") && is_path_sep(toks, i + 1))
                || (is_ident(toks.get(i), "crate")
                    && is_path_sep(toks, i + 1)
                    && is_ident(toks.get(i + 3), "commands"))
        })
        .map(|i| toks[i].line)
        .collect()
}

/// A command turns its flags into one library call: what two commands share lives in the
/// library, so no command file takes anything from `commands` (outside its tests).
#[test]
fn command_files_import_nothing_from_each_other() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut files = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "mod.rs") {
            continue;
        }
        files += 1;
        let Some(toks) = strip_tests(lex(&std::fs::read_to_string(&path).unwrap())) else {
            continue;
        };
        for line in sibling_uses(&toks) {
            found.push(format!("{}:{line}", path.display()));
        }
    }
    assert!(
        files >= 10,
        "only {files} command files in {}",
        dir.display()
    );
    assert!(
        found.is_empty(),
        "command files take from the commands module instead of the library: {found:?}"
    );
    // The check itself sees both forms, and not the same words in a test module.
    let sample = "use super::x;\nfn f() { crate::commands::y(); crate::ui::z(); }\n\
                  #[cfg(test)]\nmod tests { use super::*; }\n";
    let toks = strip_tests(lex(sample)).unwrap();
    assert_eq!(sibling_uses(&toks), [1, 2]);
}
