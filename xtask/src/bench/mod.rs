//! `cargo xtask bench …`: numbers, printed; our path and a plain baseline side by side in
//! one run where there is a baseline, each figure next to its target with "met" or
//! "missed". Nothing here asserts: the tests do that.

mod breakdown;
mod data;
mod image;
mod provision;
mod restore_restic;
mod restore_usb;
mod scale;
mod side_by_side;

pub use data::DataSet;
pub use image::image;
pub use provision::provision;
pub use restore_restic::restore_restic;
pub use restore_usb::restore_usb;
pub use scale::scale;

/// How a figure compares with its target.
fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}
