//! `cargo xtask bench …`: numbers, printed; our path and a plain baseline side by side in
//! one run where there is a baseline. Nothing here asserts: the tests do that.

mod image;
mod provision;
mod restore_restic;
mod restore_usb;

pub use image::image;
pub use provision::provision;
pub use restore_restic::restore_restic;
pub use restore_usb::restore_usb;
