//! Reading the guest's serial console: which expected lines have appeared (and when),
//! forbidden text, and the run script's exit status. Pure: lines in, verdict out.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The rescue image's init prints these (rootfs/init).
pub const RUN_EXIT: &str = "LIFEBOAT-RUN-EXIT";
pub const MENU_READY: &str = "LIFEBOAT-MENU-READY";

/// How many of the last console lines an error shows.
const TAIL: usize = 25;

/// In an `expect` line, `{sha256:NAME}` stands for a sha256 in hex that the guest prints:
/// the first line naming NAME takes it from the console, every later one (in this boot or
/// a later one) must show the same value. A checksum printed before a wipe is compared
/// with the one the restored system prints, neither known to the harness in advance.
pub const CAPTURE_OPEN: &str = "{sha256:";

/// Values taken by `{sha256:NAME}`, by NAME.
pub type Captures = BTreeMap<String, String>;

/// One entry of a boot's `expect`: a line, or lines that may come in any order (work
/// the guest does side by side finishes in no fixed order), all after the entry before
/// and before the entry after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Expect {
    Line(String),
    AnyOrder(Vec<String>),
}

impl Expect {
    pub fn lines(&self) -> &[String] {
        match self {
            Expect::Line(line) => std::slice::from_ref(line),
            Expect::AnyOrder(lines) => lines,
        }
    }

    pub fn lines_mut(&mut self) -> &mut [String] {
        match self {
            Expect::Line(line) => std::slice::from_mut(line),
            Expect::AnyOrder(lines) => lines,
        }
    }
}

/// The placeholder of an `expect` line, if any: (text before, NAME, text after).
pub fn placeholder(expect: &str) -> Option<(&str, &str, &str)> {
    let at = expect.find(CAPTURE_OPEN)?;
    let rest = &expect[at + CAPTURE_OPEN.len()..];
    let end = rest.find('}')?;
    Some((&expect[..at], &rest[..end], &rest[end + 1..]))
}

/// Whether `line` holds `before`, 64 lower-case hex digits, then `after`: the digits.
fn find_sha256<'a>(line: &'a str, before: &str, after: &str) -> Option<&'a str> {
    line.match_indices(before).find_map(|(at, _)| {
        let start = at + before.len();
        let digits = line.get(start..start + 64)?;
        let hex = digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let tail = &line[start + 64..];
        let ends = !tail.starts_with(|c: char| c.is_ascii_hexdigit());
        (hex && ends && tail.starts_with(after)).then_some(digits)
    })
}

#[derive(Debug)]
pub struct Watcher {
    /// The entries of `expect`, each as its lines.
    expect: Vec<Vec<String>>,
    /// The entry being waited for, and which of its lines have appeared.
    step: usize,
    found: Vec<bool>,
    forbid: Vec<String>,
    /// Expected lines found so far, with the time they appeared.
    pub reached: Vec<(String, Duration)>,
    /// The status of the run script, once LIFEBOAT-RUN-EXIT has been printed.
    pub run_exit: Option<i32>,
    /// When the menu was ready: QEMU's clock, and the guest kernel's uptime the init's
    /// marker line carries.
    pub menu_ready: Option<Duration>,
    pub menu_uptime: Option<f64>,
    /// What `{sha256:NAME}` placeholders took, from earlier boots and this one.
    pub captures: Captures,
    tail: VecDeque<String>,
}

impl Watcher {
    #[cfg(test)]
    pub fn new(expect: &[String], forbid: &[String]) -> Watcher {
        let expect: Vec<Expect> = expect.iter().cloned().map(Expect::Line).collect();
        Watcher::with_captures(&expect, forbid, Captures::new())
    }

    /// A watcher that knows the values earlier boots' placeholders took.
    pub fn with_captures(expect: &[Expect], forbid: &[String], captures: Captures) -> Watcher {
        let expect: Vec<Vec<String>> = expect
            .iter()
            .map(|e| e.lines().iter().map(|l| normalize(l)).collect())
            .collect();
        let found = vec![false; expect.first().map_or(0, Vec::len)];
        Watcher {
            expect,
            step: 0,
            found,
            forbid: forbid.iter().map(|f| normalize(f)).collect(),
            reached: Vec::new(),
            run_exit: None,
            menu_ready: None,
            menu_uptime: None,
            captures,
            tail: VecDeque::new(),
        }
    }

    /// One console line, `at` after QEMU started. Err: the forbidden text it holds.
    pub fn feed(&mut self, raw: &str, at: Duration) -> Result<(), String> {
        let line = normalize(raw);
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        if let Some(bad) = self.forbid.iter().find(|f| line.contains(f.as_str())) {
            return Err(format!(
                "the console printed forbidden text `{bad}`: {line}"
            ));
        }
        if let Some(rest) = line.strip_prefix(RUN_EXIT) {
            self.run_exit = Some(rest.trim().parse().unwrap_or(-1));
        }
        if let Some(rest) = line.strip_prefix(MENU_READY) {
            if self.menu_ready.is_none() {
                self.menu_ready = Some(at);
                self.menu_uptime = rest.trim().parse().ok();
            }
        }
        let Some(step) = self.expect.get(self.step) else {
            return Ok(());
        };
        // A line satisfies at most one expectation: the first of the entry's lines
        // not seen yet that it holds.
        let hit =
            (0..step.len()).find(|&i| !self.found[i] && seen(&step[i], &line, &mut self.captures));
        if let Some(i) = hit {
            self.found[i] = true;
            self.reached.push((step[i].clone(), at));
            if self.found.iter().all(|&f| f) {
                self.step += 1;
                self.found = vec![false; self.expect.get(self.step).map_or(0, Vec::len)];
            }
        }
        Ok(())
    }

    pub fn all_expected(&self) -> bool {
        self.step == self.expect.len()
    }

    /// The expected lines not seen yet of the entry waited for, if any, in backquotes.
    pub fn waiting_for(&self) -> Option<String> {
        let step = self.expect.get(self.step)?;
        let missing: Vec<String> = step
            .iter()
            .zip(&self.found)
            .filter(|(_, &f)| !f)
            .map(|(l, _)| format!("`{l}`"))
            .collect();
        Some(if step.len() == 1 {
            missing.concat()
        } else {
            format!("{} (in any order)", missing.join(", "))
        })
    }

    /// The last console lines, for error messages.
    pub fn tail(&self) -> String {
        self.tail
            .iter()
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether `line` holds the expected line `expect`; a `{sha256:NAME}` seen for the first
/// time takes its value from `line`.
fn seen(expect: &str, line: &str, captures: &mut Captures) -> bool {
    match placeholder(expect) {
        None => line.contains(expect),
        Some((before, name, after)) => match captures.get(name) {
            Some(value) => line.contains(&format!("{before}{value}{after}")),
            None => match find_sha256(line, before, after) {
                Some(value) => {
                    captures.insert(name.to_owned(), value.to_owned());
                    true
                }
                None => false,
            },
        },
    }
}

/// Without terminal escape sequences and carriage returns, whitespace runs as one space,
/// trimmed: what a person reads on the console.
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte; other escapes: ESC and one character.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            c if c.is_whitespace() => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn escapes_and_spacing_do_not_matter() {
        assert_eq!(
            normalize("\u{1b}[2K\u{1b}[1A  1   2048\t1050623 \r"),
            "1 2048 1050623"
        );
        assert_eq!(normalize("\u{1b}7a\u{1b}8b"), "ab");
    }

    #[test]
    fn expected_lines_count_only_in_order() {
        let mut w = Watcher::new(&s(&["first", "second  line"]), &[]);
        let t = Duration::from_secs(1);
        w.feed("second line", t).unwrap();
        assert_eq!(w.waiting_for().as_deref(), Some("`first`"));
        w.feed("the first one", t).unwrap();
        assert!(!w.all_expected());
        w.feed("  second   line here", Duration::from_secs(2))
            .unwrap();
        assert!(w.all_expected());
        assert_eq!(w.reached[1].1, Duration::from_secs(2));
        assert_eq!(w.waiting_for(), None);
    }

    #[test]
    fn lines_of_an_any_order_entry_come_in_any_order_between_their_neighbours() {
        let any = |v: &[&str]| Expect::AnyOrder(s(v));
        let expect = [
            Expect::Line("start".into()),
            any(&["@home: done", "@root: done"]),
            Expect::Line("end".into()),
        ];
        let mut w = Watcher::with_captures(&expect, &[], Captures::new());
        let t = Duration::ZERO;
        // Before `start`, the entry's lines do not count.
        w.feed("@root: done", t).unwrap();
        w.feed("start", t).unwrap();
        w.feed("end", t).unwrap();
        assert_eq!(
            w.waiting_for().as_deref(),
            Some("`@home: done`, `@root: done` (in any order)")
        );
        w.feed("@root: done", t).unwrap();
        assert_eq!(
            w.waiting_for().as_deref(),
            Some("`@home: done` (in any order)")
        );
        // `end` before the whole entry appeared does not count either.
        w.feed("end", t).unwrap();
        w.feed("@home: done", t).unwrap();
        assert!(!w.all_expected());
        w.feed("end", t).unwrap();
        assert!(w.all_expected());
        let order: Vec<&str> = w.reached.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(order, ["start", "@root: done", "@home: done", "end"]);

        // One line satisfies one expectation, even where two lines of an entry match it.
        let mut w = Watcher::with_captures(&[any(&["done", "done"])], &[], Captures::new());
        w.feed("done", t).unwrap();
        assert!(!w.all_expected());
        w.feed("done", t).unwrap();
        assert!(w.all_expected());
    }

    #[test]
    fn markers_and_forbidden_text() {
        let mut w = Watcher::new(&s(&["x"]), &s(&["Kernel panic"]));
        w.feed("LIFEBOAT-MENU-READY 7.08", Duration::from_millis(9500))
            .unwrap();
        assert_eq!(w.menu_ready, Some(Duration::from_millis(9500)));
        assert_eq!(w.menu_uptime, Some(7.08));
        w.feed("LIFEBOAT-RUN-EXIT 3", Duration::ZERO).unwrap();
        assert_eq!(w.run_exit, Some(3));
        let err = w
            .feed("[ 1.0] Kernel panic - not syncing", Duration::ZERO)
            .unwrap_err();
        assert!(err.contains("Kernel panic"), "{err}");
        assert!(w.tail().contains("| LIFEBOAT-RUN-EXIT 3"));
    }

    #[test]
    fn a_checksum_is_taken_once_and_must_come_back_the_same() {
        let a = "a".repeat(64);
        let b = format!("{}1", "b".repeat(63));
        let mut w = Watcher::new(
            &s(&["before {sha256:home} end", "after {sha256:home}"]),
            &[],
        );
        let t = Duration::ZERO;
        // Not a sha256 (too short, upper case, longer): nothing taken.
        w.feed(&format!("before {} end", &a[..63]), t).unwrap();
        w.feed(&format!("before {} end", a.to_uppercase()), t)
            .unwrap();
        w.feed(&format!("before {a}0 end"), t).unwrap();
        assert!(w.captures.is_empty());
        w.feed(&format!("HOME before {a} end"), t).unwrap();
        assert_eq!(w.captures["home"], a);
        // Another value later does not count; the same one does.
        w.feed(&format!("after {b}"), t).unwrap();
        assert_eq!(w.waiting_for().as_deref(), Some("`after {sha256:home}`"));
        w.feed(&format!("after {a}"), t).unwrap();
        assert!(w.all_expected());

        // A later boot starts with what was taken and must show the same value.
        let mut next = Watcher::with_captures(
            &[Expect::Line("X {sha256:home}".into())],
            &[],
            w.captures.clone(),
        );
        next.feed(&format!("X {b}"), t).unwrap();
        assert!(!next.all_expected());
        next.feed(&format!("X {a}"), t).unwrap();
        assert!(next.all_expected());
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let mut w = Watcher::new(&s(&["never"]), &[]);
        for n in 0..100 {
            w.feed(&format!("line {n}"), Duration::ZERO).unwrap();
        }
        let tail = w.tail();
        assert!(tail.contains("line 99") && tail.contains("line 75"));
        assert!(!tail.contains("line 74"));
    }
}
