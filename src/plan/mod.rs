//! Spec + probed disks → an ordered list of actions. Pure: no I/O, printable, JSON-able.
//! Everything that decides *what* happens to a disk lives here; `apply` only carries it out.

mod actions;

pub use actions::*;
