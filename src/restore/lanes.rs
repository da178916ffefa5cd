//! Work done side by side: up to `n` threads take items from one queue, in its order. After
//! a failure the other threads finish the item they hold and take no more; the first error
//! is returned. Receives of independent subvolumes and restic restores of independent
//! paths run this way (each item is one subvolume, its own steps in order).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Result};

pub fn run<T: Send>(
    n: usize,
    items: Vec<T>,
    work: &(dyn Fn(T) -> Result<()> + Sync),
) -> Result<()> {
    let queue = Mutex::new(items.into_iter());
    let failed = AtomicBool::new(false);
    let lane = || -> Result<()> {
        loop {
            if failed.load(Ordering::SeqCst) {
                return Ok(());
            }
            let next = queue.lock().map_err(|_| anyhow!("a lane panicked"))?.next();
            let Some(item) = next else { return Ok(()) };
            if let Err(err) = work(item) {
                failed.store(true, Ordering::SeqCst);
                return Err(err);
            }
        }
    };
    std::thread::scope(|scope| {
        let running: Vec<_> = (0..n.max(1)).map(|_| scope.spawn(lane)).collect();
        let mut first = Ok(());
        for handle in running {
            let done = handle
                .join()
                .unwrap_or_else(|_| Err(anyhow!("a lane panicked")));
            if first.is_ok() {
                first = done;
            }
        }
        first
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_and_a_failure_stops_new_work() {
        let seen = Mutex::new(Vec::new());
        run(2, (0..50).collect(), &|i: u32| {
            seen.lock().unwrap().push(i);
            Ok(())
        })
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());

        let taken = Mutex::new(0);
        let err = run(2, (0..50).collect(), &|i: u32| {
            *taken.lock().unwrap() += 1;
            if i == 3 {
                anyhow::bail!("item 3 failed");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "item 3 failed");
        assert!(*taken.lock().unwrap() < 10, "{}", taken.lock().unwrap());
    }
}
