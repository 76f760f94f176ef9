//! Ctrl-C, SIGTERM and SIGHUP all ask the running command to stop cleanly (`run` takes SIGHUP
//! as "reload" instead).
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

#[derive(Clone)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn install() -> Result<Stop> {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        ctrlc::set_handler(move || f.store(true, Ordering::SeqCst))
            .context("installing the signal handler")?;
        Ok(Stop(flag))
    }

    /// A stop that only `request` (or whoever holds the flag) triggers.
    pub fn from_flag(flag: Arc<AtomicBool>) -> Stop {
        Stop(flag)
    }

    /// Asks everything that watches this flag to stop, as a signal would.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits for a stop, calling `report(false)` every `interval` meanwhile, then `report(true)`.
    pub fn report_until_stopped(
        &self,
        interval: Option<Duration>,
        report: impl FnMut(bool) -> Result<()>,
    ) -> Result<()> {
        self.watch_until_stopped(interval, report, || Ok(()))
    }

    /// As report_until_stopped, and calls `watch` every second: its error ends the wait.
    pub fn watch_until_stopped(
        &self,
        interval: Option<Duration>,
        mut report: impl FnMut(bool) -> Result<()>,
        mut watch: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        const TICK: Duration = Duration::from_secs(1);
        let mut next = interval.map(|i| Instant::now() + i);
        loop {
            let wait = next.map_or(TICK, |t| t.saturating_duration_since(Instant::now()).min(TICK));
            if self.sleep(wait) {
                return report(true);
            }
            watch()?;
            if let (Some(t), Some(i)) = (next, interval) {
                if Instant::now() >= t {
                    report(false)?;
                    next = Some(t + i);
                }
            }
        }
    }

    /// Sleeps up to `d`, waking early when a stop is requested. Returns true if stopping.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while !self.requested() {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
        true
    }
}
