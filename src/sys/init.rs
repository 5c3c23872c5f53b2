//! The supervisor that runs as PID 1 of a new pid namespace (and as the
//! relay in front of a process that had to be forked once more, for a time
//! namespace or after joining namespaces): it reaps every child, forwards
//! signals to the main process and leaves with the main process's status.

use std::os::fd::RawFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::process::exit_child;

/// The signals passed on to the main process.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The set the supervisor blocks (and reads from a signalfd): the forwarded
/// ones and SIGCHLD.
pub fn supervised_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(sig);
    }
    s.add(Signal::SIGCHLD);
    s
}

/// Block the supervised signals before forking the main process, so none
/// arrives unhandled between the fork and the supervisor's loop.
pub fn block() {
    let _ = supervised_set().thread_block();
}

/// Undo [`block`] in the main process before it execs (the mask survives exec).
pub fn unblock() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// The raw wait status encoded for the status pipe.
fn encode(st: WaitStatus) -> Option<[u8; 8]> {
    let (code, sig): (i32, i32) = match st {
        WaitStatus::Exited(_, c) => (c, 0),
        WaitStatus::Signaled(_, s, core) => (0, s as i32 | if core { 0x100 } else { 0 }),
        _ => return None,
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&code.to_le_bytes());
    b[4..].copy_from_slice(&sig.to_le_bytes());
    Some(b)
}

/// Decode a status written by [`supervise`]: (code, signal, core dumped).
pub fn decode(b: &[u8; 8]) -> (i32, i32, bool) {
    let code = i32::from_le_bytes(b[..4].try_into().unwrap_or_default());
    let sig = i32::from_le_bytes(b[4..].try_into().unwrap_or_default());
    (code, sig & 0xff, sig & 0x100 != 0)
}

/// Supervise `main` until it ends, then write its status to `status_fd`
/// (when given) and exit with its shell code. Signals must already be
/// blocked with [`block`].
pub fn supervise(main: i32, status_fd: Option<RawFd>) -> ! {
    // The supervisor never execs, so it would hold every fd the recipe had
    // open for the sandbox's whole life; it needs none but the status pipe.
    close_fds_except(status_fd);
    let sfd = match SignalFd::with_flags(&supervised_set(), SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("nsrun: init: signalfd: {e}");
            exit_child(1)
        }
    };
    loop {
        // Reap everything that has ended: orphans re-parented to us as
        // PID 1, and the main process.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) if st.pid() == Some(Pid::from_raw(main)) => finish(st, status_fd),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break, // ECHILD: nothing left
            }
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD {
                    // SAFETY: plain kill(2) to our own child.
                    unsafe { libc::kill(main, sig) };
                }
            }
            Ok(None) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("nsrun: init: reading signals: {e}");
                exit_child(1)
            }
        }
    }
}

fn close_fds_except(keep: Option<RawFd>) {
    close_all_but(keep.as_slice());
}

/// Close every fd from 3 up except those in `keep`.
pub fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .chain(super::ops::trace_fd().as_ref())
        .filter(|k| **k >= 3)
        .map(|k| *k as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = 3u32;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if lo < k {
            // SAFETY: closing fds nothing else in this process uses.
            unsafe { libc::syscall(libc::SYS_close_range, lo, k - 1, 0u32) };
        }
        lo = k.saturating_add(1);
    }
}

fn finish(st: WaitStatus, status_fd: Option<RawFd>) -> ! {
    if let (Some(fd), Some(bytes)) = (status_fd, encode(st)) {
        // SAFETY: writing 8 bytes from a local buffer to a pipe we own.
        unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
    match st {
        WaitStatus::Exited(_, c) => exit_child(c),
        WaitStatus::Signaled(_, s, _) => {
            // Die of the same signal, so our parent sees it. As PID 1 of a
            // pid namespace the kernel ignores this; the exit code and the
            // status pipe tell instead.
            // kill(getpid()), not raise(): musl's raise signals the thread
            // id it cached at start-up, which in a process forked by a raw
            // clone(2) like this one is our parent's.
            // SAFETY: restoring the default action, unblocking, signalling
            // ourselves.
            unsafe {
                libc::signal(s as i32, libc::SIG_DFL);
            }
            unblock();
            // SAFETY: kill(2) of our own pid.
            unsafe { libc::kill(libc::getpid(), s as i32) };
            exit_child(128 + s as i32)
        }
        _ => exit_child(1),
    }
}
