//! Names that lifeboat joins onto a directory: a subvolume's name from a send stream or from
//! the backup drive, the spec's `host`. Each must be exactly one path component, or
//! `dir.join(name)` lands somewhere else (`Path::join` with an absolute name replaces the
//! directory; `..` climbs out of it). [`check`] is the one rule; [`SingleComponent`] is a
//! name that passed it.

use std::fmt;

/// Btrfs (like most Linux filesystems) allows names of up to 255 bytes.
pub const NAME_MAX: usize = 255;

/// Why a name is not one path component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("cannot contain '/'")]
    Slash,
    #[error("is not a name")]
    Dot,
    /// A newline in a subvolume name would also split a line of `btrfs subvolume list`.
    #[error("contains a control character")]
    Control,
    #[error("is {0} bytes long; Btrfs allows {NAME_MAX}")]
    TooLong(usize),
    /// Bytes that are no UTF-8: lifeboat could not name the subvolume it receives.
    #[error("is not UTF-8")]
    NotUtf8,
}

/// Is `name` one path component: not empty, no `/`, not `.` or `..`, no control
/// characters (NUL included), at most [`NAME_MAX`] bytes?
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.contains('/') {
        Err(NameError::Slash)
    } else if name == "." || name == ".." {
        Err(NameError::Dot)
    } else if name.chars().any(char::is_control) {
        Err(NameError::Control)
    } else if name.len() > NAME_MAX {
        Err(NameError::TooLong(name.len()))
    } else {
        Ok(())
    }
}

/// A name that passed [`check`]: safe to join onto a directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SingleComponent(String);

impl SingleComponent {
    pub fn new(name: impl Into<String>) -> Result<SingleComponent, NameError> {
        let name = name.into();
        check(&name)?;
        Ok(SingleComponent(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for SingleComponent {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SingleComponent {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for SingleComponent {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl fmt::Display for SingleComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for SingleComponent {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<SingleComponent> for String {
    fn eq(&self, other: &SingleComponent) -> bool {
        *self == other.0
    }
}

impl PartialEq<String> for SingleComponent {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_component_or_why_not() {
        for good in [
            "@home",
            "atlantis",
            "@home.20261120T0300",
            "..hidden",
            "a b",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        assert_eq!(check(""), Err(NameError::Empty));
        assert_eq!(check("/mnt/other/@home"), Err(NameError::Slash));
        assert_eq!(check("../../x"), Err(NameError::Slash));
        assert_eq!(check("a/"), Err(NameError::Slash));
        assert_eq!(check("."), Err(NameError::Dot));
        assert_eq!(check(".."), Err(NameError::Dot));
        assert_eq!(check("a\nID 5 path x"), Err(NameError::Control));
        assert_eq!(check("a\0b"), Err(NameError::Control));
        assert_eq!(check(&"x".repeat(256)), Err(NameError::TooLong(256)));
        assert!(SingleComponent::new("x".repeat(255)).is_ok());
        assert_eq!(
            SingleComponent::new("..").unwrap_err().to_string(),
            "is not a name"
        );
    }
}
