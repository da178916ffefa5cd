//! Spec + probed disks → an ordered list of actions. Pure: no I/O, printable, JSON-able.
//! Everything that decides *what* happens to a disk lives here; `apply` only carries it out.

mod actions;
pub mod bind;
mod error;
pub mod layout;
mod provision;
mod render;
#[cfg(test)]
pub(crate) mod testutil;

pub use actions::*;
pub use bind::{bind, Binding, BoundBy};
pub use error::PlanError;
pub use provision::{plan, Scope};
#[cfg(test)]
mod tests;
