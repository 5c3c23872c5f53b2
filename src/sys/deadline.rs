//! A started process's timeout, shared by its handle and its pipes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::process;

/// A started process's `timeout`, shared by the process handle and the
/// pipes to it: whichever blocking call notices it passed kills the
/// process (its group when it leads one) and every later call sees it.
#[derive(Debug)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
    pid: i32,
    group: bool,
    expired: AtomicBool,
    /// Set once the process is reaped: its pid may be someone else's now.
    reaped: AtomicBool,
}

impl Deadline {
    pub(crate) fn new(timeout: Duration, pid: i32, group: bool) -> Option<Deadline> {
        // A deadline past what Instant can hold is no deadline.
        Some(Deadline {
            at: Instant::now().checked_add(timeout)?,
            timeout,
            pid,
            group,
            expired: AtomicBool::new(false),
            reaped: AtomicBool::new(false),
        })
    }

    /// Whether its time is up (the process may not be killed yet: a
    /// call that would block past it kills it, see [`Deadline::expire`]).
    pub fn passed(&self) -> bool {
        self.expired() || Instant::now() >= self.at
    }

    /// The time left as a poll(2) timeout: milliseconds, rounded up so a
    /// poll does not wake just before the deadline and spin; 0 once passed.
    pub fn poll_ms(&self) -> i32 {
        let left = self.at.saturating_duration_since(Instant::now());
        left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
    }

    /// Note that the process was reaped, so [`Deadline::expire`] kills
    /// its pid no more.
    pub(crate) fn mark_reaped(&self) {
        self.reaped.store(true, Ordering::SeqCst);
    }

    /// Whether it passed and the process was killed.
    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    /// The timeout it was started with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Mark it passed and SIGKILL the process: its group when it leads
    /// one, even once it was reaped, since what it left behind (a
    /// background job holding a pipe open) belongs to the run too. The
    /// group id stays in use while any member lives; only an empty group's
    /// number could come back, and that takes a wrap of the pid space.
    pub fn expire(&self) {
        if self.expired.swap(true, Ordering::SeqCst) {
            return;
        }
        let target = match (self.group, self.reaped.load(Ordering::SeqCst)) {
            (true, _) => -self.pid,
            (false, false) => self.pid,
            (false, true) => return,
        };
        if let Err(e) = process::kill(target, libc::SIGKILL) {
            if e.errno() != Some(Errno::ESRCH) {
                log::warn!("timeout: {e}");
            }
        }
    }
}
