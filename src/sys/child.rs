//! A started process: waiting for it with its pipes, its timeout, the
//! signals it is sent and the cgroup it leaves behind.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::cgroup::{Cgroup, Stats};
use super::init;
use super::ops;
use super::process::{self, ExitStatus};
use crate::error::{Context, Error, Result};

/// A started process.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    pidfd: Option<OwnedFd>,
    status_pipe: Option<File>,
    /// Its standard input, with `Stdio::Pipe`.
    pub stdin: Option<File>,
    /// Its standard output, with `Stdio::Pipe`.
    pub stdout: Option<File>,
    /// Its standard error, with `Stdio::Pipe`.
    pub stderr: Option<File>,
    deadline: Option<Instant>,
    status: Option<ExitStatus>,
    timed_out: bool,
    group: bool,
    /// A view of a process someone else reaps (`before_start`'s argument).
    observer: bool,
    /// Its cgroup, removed once it is reaped.
    cgroup: Option<Cgroup>,
    cgroup_stats: Option<Stats>,
}

impl Child {
    /// A view of process `pid` that may signal it and open its namespaces
    /// but never waits for it: its owner does.
    pub fn observer(pid: i32) -> Child {
        let mut c = Child::from_pid(pid);
        c.pidfd = None;
        c.observer = true;
        c
    }

    /// The stand-in for a child that `--plan` did not start: it "exited"
    /// with `code`. Its pipes are /dev/null, so a recipe that talks to it
    /// finds what a real pipe to a finished child gives: its stdout and
    /// stderr read as EOF (`ns.run` returns `""`) and writes to its stdin
    /// are swallowed, never nsrun's own stdin or stdout.
    pub fn planned(code: i32) -> Child {
        let null = |write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .ok()
        };
        Child {
            // No pidfd_open: there is no such process.
            pid: ops::PLANNED_PID,
            pidfd: None,
            status_pipe: None,
            stdin: null(true),
            stdout: null(false),
            stderr: null(false),
            deadline: None,
            status: Some(ExitStatus {
                code: Some(code),
                signal: None,
                core_dumped: false,
            }),
            timed_out: false,
            group: false,
            observer: false,
            cgroup: None,
            cgroup_stats: None,
        }
    }

    /// The handle of a process [`Spawn`](super::spawn::Spawn) started.
    pub(crate) fn started(
        pid: i32,
        status_pipe: OwnedFd,
        stdio: [Option<OwnedFd>; 3],
        timeout: Option<std::time::Duration>,
        group: bool,
        cgroup: Option<Cgroup>,
    ) -> Child {
        let [stdin, stdout, stderr] = stdio.map(|f| f.map(File::from));
        Child {
            pid,
            pidfd: pidfd_open(pid),
            status_pipe: Some(File::from(status_pipe)),
            stdin,
            stdout,
            stderr,
            // A deadline past what Instant can hold is no deadline.
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            status: None,
            timed_out: false,
            group,
            observer: false,
            cgroup,
            cgroup_stats: None,
        }
    }

    /// Adopt a child this process forked by other means (`ns.fork`).
    pub fn from_pid(pid: i32) -> Child {
        Child {
            pid,
            pidfd: pidfd_open(pid),
            status_pipe: None,
            stdin: None,
            stdout: None,
            stderr: None,
            deadline: None,
            status: None,
            timed_out: false,
            group: false,
            observer: false,
            cgroup: None,
            cgroup_stats: None,
        }
    }

    /// The cgroup it was started in, while it runs.
    pub(crate) fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// Its pid (in our pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the timeout killed it.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The status, once known.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// What its cgroup used: while it runs, or as it was when it was reaped.
    pub fn cgroup_stats(&self) -> Option<Stats> {
        self.cgroup
            .as_ref()
            .map(Cgroup::stats)
            .or(self.cgroup_stats)
    }

    /// Send `sig` (to the whole group when it leads one). No-op once reaped.
    pub fn kill(&self, sig: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let target = if self.group { -self.pid } else { self.pid };
        match process::kill(target, sig) {
            Err(e) if e.errno() == Some(Errno::ESRCH) => Ok(()),
            other => other,
        }
    }

    pub(crate) fn abort(&mut self) {
        let _ = self.kill(libc::SIGKILL);
        let _ = self.reap(false);
    }

    /// Wait for it to end, forwarding SIGINT, SIGTERM, SIGHUP, SIGQUIT,
    /// SIGUSR1 and SIGUSR2 that reach us, and enforcing the timeout.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let mut bufs = [Vec::new(), Vec::new()];
        self.event_loop([None, None], &mut bufs)
    }

    /// Wait while reading `files` (stdout, stderr) into `bufs`; returns
    /// once the process is reaped and every file reached EOF. Signals that
    /// reach us meanwhile are passed on rather than killing us (our death
    /// would SIGKILL the child through its parent-death signal).
    fn event_loop(
        &mut self,
        mut files: [Option<File>; 2],
        bufs: &mut [Vec<u8>; 2],
    ) -> Result<ExitStatus> {
        self.not_observer()?;
        if let (ops::PLANNED_PID, Some(st)) = (self.pid, self.status) {
            // Never started: its /dev/null pipes hold nothing, and no
            // signal mask or signalfd of nsrun's may change under --plan.
            return Ok(st);
        }
        use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        self.stdin.take(); // a child reading stdin must see EOF
        let mut forward = SigSet::empty();
        for s in init::FORWARDED {
            forward.add(s);
        }
        let mut old = SigSet::empty();
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forward), Some(&mut old));
        let r = (|| {
            let sfd =
                SignalFd::with_flags(&forward, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                    .op(|| "signalfd".into())?;
            loop {
                if self.status.is_none() {
                    self.reap(true)?;
                }
                if let (Some(st), true) = (self.status, files.iter().all(Option::is_none)) {
                    return Ok(st);
                }
                if self.status.is_none()
                    && self.pidfd.is_none()
                    && files.iter().all(Option::is_none)
                {
                    // No pidfd (kernel before 5.3): wait blocking.
                    return self.reap(false).map(|s| s.expect("blocking reap"));
                }
                let mut timeout_ms = -1;
                if let (Some(d), None) = (self.deadline, self.status) {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.timed_out = true;
                        self.deadline = None;
                        self.kill(libc::SIGKILL)?;
                        continue;
                    }
                    timeout_ms = left.as_millis().min(i32::MAX as u128) as i32;
                }
                let pollin = |fd: RawFd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let mut fds = vec![pollin(sfd.as_raw_fd())];
                if let (Some(p), None) = (&self.pidfd, self.status) {
                    fds.push(pollin(p.as_raw_fd()));
                } else if self.status.is_none() && timeout_ms < 0 {
                    // Without a pidfd, look again now and then.
                    timeout_ms = 50;
                }
                let first_file = fds.len();
                let mut which = Vec::new();
                for (i, f) in files.iter().enumerate() {
                    if let Some(f) = f {
                        fds.push(pollin(f.as_raw_fd()));
                        which.push(i);
                    }
                }
                // SAFETY: fds is a valid pollfd array.
                let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout_ms) };
                if rc < 0 && Errno::last() != Errno::EINTR {
                    return Err(Error::sys("poll", Errno::last()));
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    let _ = self.kill(sig);
                    if let Ok(s) = Signal::try_from(sig) {
                        log::debug!("forwarded {s} to {}", self.pid);
                    }
                }
                for (k, i) in which.into_iter().enumerate() {
                    if fds[first_file + k].revents == 0 {
                        continue;
                    }
                    let f = files[i].as_ref().expect("polled file");
                    // Straight into the buffer's spare room: a 64 KiB array
                    // on the stack would fault in 16 fresh pages on every
                    // wait, pipes or not.
                    let buf = &mut bufs[i];
                    buf.reserve(65536);
                    let spare = buf.spare_capacity_mut();
                    // SAFETY: read writes at most spare.len() bytes into
                    // memory the Vec owns.
                    let n = unsafe {
                        libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len())
                    };
                    match n {
                        0 => files[i] = None,
                        // SAFETY: the kernel initialised n bytes past len.
                        n if n > 0 => unsafe { buf.set_len(buf.len() + n as usize) },
                        _ if Errno::last() == Errno::EINTR => {}
                        _ => files[i] = None,
                    }
                }
            }
        })();
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        r
    }

    /// Reap if it ended (`nohang`) or wait for it; records the status.
    fn reap(&mut self, nohang: bool) -> Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let Some(mut st) = process::wait(self.pid, nohang)? else {
            return Ok(None);
        };
        // The supervisor wrote the main process's own status (it cannot die
        // of the same signal itself as PID 1).
        if let Some(mut p) = self.status_pipe.take() {
            let mut b = [0u8; 8];
            if p.read_exact(&mut b).is_ok() {
                let (code, sig, core) = init::decode(&b);
                st = if sig != 0 {
                    ExitStatus {
                        code: None,
                        signal: Some(sig),
                        core_dumped: core,
                    }
                } else {
                    ExitStatus {
                        code: Some(code),
                        signal: None,
                        core_dumped: false,
                    }
                };
            }
        }
        self.status = Some(st);
        self.pidfd.take();
        if let Some(mut cg) = self.cgroup.take() {
            self.cgroup_stats = Some(cg.stats());
            // Anything still in it (a daemon the program left) goes too.
            if let Err(e) = cg.close() {
                log::warn!("removing cgroup {}: {e}", cg.name());
            }
        }
        Ok(Some(st))
    }

    fn not_observer(&self) -> Result<()> {
        if self.observer {
            return Err(Error::Invalid(format!(
                "process {} is still starting and is waited for by whoever spawned it",
                self.pid
            )));
        }
        Ok(())
    }

    /// Without waiting: the status if it has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.not_observer()?;
        if let Some(d) = self.deadline {
            if Instant::now() >= d && self.status.is_none() {
                self.timed_out = true;
                self.kill(libc::SIGKILL)?;
                return self.reap(false);
            }
        }
        self.reap(true)
    }

    /// Read stdout and stderr to the end (both at once, so neither pipe
    /// can fill up and block the child) while waiting for it.
    pub fn output(&mut self) -> Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
        let mut bufs = [Vec::new(), Vec::new()];
        let files = [self.stdout.take(), self.stderr.take()];
        let st = self.event_loop(files, &mut bufs)?;
        let [out, err] = bufs;
        Ok((st, out, err))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Reap it if it already ended, so no zombie stays for long.
        if self.status.is_none() && !self.observer && self.pid != ops::PLANNED_PID {
            let _ = process::wait(self.pid, true);
        }
    }
}

pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
