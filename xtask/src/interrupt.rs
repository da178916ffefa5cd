//! Ctrl-C handling. The default SIGINT action kills the process on the spot, leaving loop
//! devices attached and file systems mounted. Instead a signal only raises a flag: the
//! child program that received the same signal fails, its error unwinds through the
//! guards in `disks`, and `check` stops the work between steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context, Result};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

pub fn install() -> Result<()> {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(flag))
            .with_context(|| format!("installing the handler for signal {signal}"))?;
    }
    Ok(())
}

/// Fails once an interrupt has been received.
pub fn check() -> Result<()> {
    if FLAG.get().is_some_and(|flag| flag.load(Ordering::SeqCst)) {
        bail!("interrupted");
    }
    Ok(())
}
