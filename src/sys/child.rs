//! A started process: waiting for it with its pipes, its timeout, the
//! signals it is sent and the cgroup it leaves behind.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::cgroup::{Cgroup, Stats};
pub use super::deadline::Deadline;
use super::init;
use super::ops;
use super::process::{self, ExitStatus};
use crate::error::{Context, Error, Result};

mod relay;

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
    /// Shared with whatever reads or writes its pipes, so every blocking
    /// call on them keeps the same deadline.
    deadline: Option<Arc<Deadline>>,
    status: Option<ExitStatus>,
    group: bool,
    /// A view of a process someone else reaps (`before_start`'s argument).
    observer: bool,
    /// Its cgroup, removed once it is reaped.
    cgroup: Option<Cgroup>,
    cgroup_stats: Option<Stats>,
    /// The process that started it: only there may it be killed, reaped
    /// or its cgroup removed (a forked child inherits a copy of this).
    owner: u32,
    /// Our end of its channel (`Spawn::channel`, `Spawn::func_channel`).
    channel: Option<super::channel::Channel>,
    /// The network tool serving its network namespace (`net`), stopped
    /// once it is reaped.
    usernet: Option<super::usernet::Tool>,
    /// With `tty`: the master end of its terminal, and whether waiting
    /// relays it to our own terminal (see `relay.rs`).
    tty_master: Option<OwnedFd>,
    relay: bool,
    /// With `tty` and no terminal of ours to relay to: the master end of
    /// its terminal, to read what it shows and type to it.
    pub tty: Option<File>,
    /// Started by a [`Supervisor`](crate::Supervisor), which reaps it: its
    /// status arrives on this connection instead of from waitpid.
    remote: Option<OwnedFd>,
    /// The supervisor killed it at its timeout.
    remote_timed_out: bool,
}

/// At most this much is read from a pipe once its process is gone or
/// timed out: what was written until then, not what a process that escaped
/// the kill goes on writing.
const DRAIN_LIMIT: usize = 16 << 20;

/// Read what `fd` holds now, without waiting, into `buf` (at most
/// [`DRAIN_LIMIT`] bytes).
pub(crate) fn drain(fd: RawFd, buf: &mut Vec<u8>) {
    let mut got = 0;
    while got < DRAIN_LIMIT {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, 0) };
        if rc < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if rc <= 0 {
            return;
        }
        match read_into(fd, buf) {
            Ok(n) if n > 0 => got += n,
            Err(Errno::EINTR) => {}
            _ => return,
        }
    }
}

/// Poll entries (POLLIN) for the output pipes still open, added to `fds`;
/// which of `files` each stands for, in order.
pub(super) fn poll_files(fds: &mut Vec<libc::pollfd>, files: &[Option<File>; 2]) -> Vec<usize> {
    let mut which = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if let Some(f) = f {
            fds.push(libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            which.push(i);
        }
    }
    which
}

/// Read into `bufs` what the poll (`polled`: the entries [`poll_files`]
/// made) says is ready; a pipe at its end, or failing, is let go.
pub(super) fn read_ready(
    polled: &[libc::pollfd],
    which: &[usize],
    files: &mut [Option<File>; 2],
    bufs: &mut [Vec<u8>; 2],
) {
    for (p, &i) in polled.iter().zip(which) {
        if p.revents == 0 {
            continue;
        }
        let Some(f) = files[i].as_ref() else { continue };
        match read_into(f.as_raw_fd(), &mut bufs[i]) {
            Ok(0) => files[i] = None,
            Ok(_) | Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => files[i] = None,
        }
    }
}

/// One read(2) straight into the spare room of `buf` (64 KiB made room
/// for): a 64 KiB array on the stack would fault in 16 fresh pages on
/// every call.
pub(crate) fn read_into(fd: RawFd, buf: &mut Vec<u8>) -> std::result::Result<usize, Errno> {
    buf.reserve(65536);
    let spare = buf.spare_capacity_mut();
    // SAFETY: read writes at most spare.len() bytes into memory the Vec owns.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel initialised n bytes past len.
    unsafe { buf.set_len(buf.len() + n as usize) };
    Ok(n as usize)
}

impl Child {
    /// A view of process `pid` that may signal it and open its namespaces
    /// but never waits for it: its owner does.
    pub fn observer(pid: i32) -> Child {
        let mut c = Child::bare(pid, None);
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
        // No pidfd_open: there is no such process.
        let mut c = Child::bare(ops::PLANNED_PID, None);
        c.stdin = null(true);
        c.stdout = null(false);
        c.stderr = null(false);
        c.status = Some(ExitStatus {
            code: Some(code),
            signal: None,
            core_dumped: false,
        });
        c
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
        let mut c = Child::bare(pid, pidfd_open(pid));
        c.status_pipe = Some(File::from(status_pipe));
        (c.stdin, c.stdout, c.stderr) = (stdin, stdout, stderr);
        c.deadline = timeout.and_then(|t| Deadline::new(t, pid, group).map(Arc::new));
        c.group = group;
        c.cgroup = cgroup;
        c
    }

    /// Adopt a child this process forked by other means (`ns.fork`).
    pub fn from_pid(pid: i32) -> Child {
        Child::bare(pid, pidfd_open(pid))
    }

    /// A handle of `pid` with nothing attached: what each kind of handle
    /// starts from.
    fn bare(pid: i32, pidfd: Option<OwnedFd>) -> Child {
        Child {
            pid,
            pidfd,
            status_pipe: None,
            stdin: None,
            stdout: None,
            stderr: None,
            deadline: None,
            status: None,
            group: false,
            observer: false,
            cgroup: None,
            cgroup_stats: None,
            owner: std::process::id(),
            channel: None,
            usernet: None,
            tty_master: None,
            relay: false,
            tty: None,
            remote: None,
            remote_timed_out: false,
        }
    }

    /// Our end of its channel, if it was started with one.
    pub fn channel(&mut self) -> Option<&mut super::channel::Channel> {
        self.channel.as_mut()
    }

    /// Take our end of its channel (to keep it beyond the process).
    pub fn take_channel(&mut self) -> Option<super::channel::Channel> {
        self.channel.take()
    }

    pub(crate) fn set_channel(&mut self, mut c: Option<super::channel::Channel>) {
        if let Some(c) = c.as_mut() {
            c.set_deadline(self.deadline.clone());
        }
        self.channel = c;
    }

    /// Its deadline (with `timeout`), to share with readers and writers of
    /// its pipes: one that takes `stdout` and reads it keeps the timeout by
    /// polling for at most [`Deadline::poll_ms`] and, when time is up,
    /// calling [`Deadline::expire`].
    pub fn deadline(&self) -> Option<Arc<Deadline>> {
        self.deadline.clone()
    }

    /// Whether this process started it (rather than inheriting the handle
    /// through a fork): only the owner may kill, reap or clean up after it.
    pub fn is_owner(&self) -> bool {
        self.owner == std::process::id()
    }

    /// Whether it is a view of a process someone else waits for.
    pub fn is_observer(&self) -> bool {
        self.observer
    }

    /// Give it up: from now on it is a view like [`Child::observer`]'s,
    /// neither reaped nor killed when the handle goes. An OCI runtime's
    /// caller (a subreaper) must get the exit of a process that ends
    /// before the runtime does, which a reap at our exit would take.
    pub fn release(&mut self) {
        self.observer = true;
    }

    /// The cgroup it was started in, while it runs.
    pub(crate) fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// Tie a network tool's life to this process's.
    pub(crate) fn attach_usernet(&mut self, t: super::usernet::Tool) {
        self.usernet = Some(t);
    }

    /// The pid of the network tool serving it (`net`), while it runs.
    pub fn usernet_pid(&self) -> Option<i32> {
        self.usernet.as_ref().map(|t| t.pid())
    }

    /// Its pid (in our pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the timeout killed it.
    pub fn timed_out(&self) -> bool {
        self.remote_timed_out || self.deadline.as_ref().is_some_and(|d| d.expired())
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
        // A planned child "ended" at once; the signal still goes in the plan.
        if self.status.is_some() && self.pid != ops::PLANNED_PID {
            return Ok(());
        }
        if let (Some(pidfd), false, true) = (&self.pidfd, self.group, self.remote.is_some()) {
            // Not our child: its pid may be reused once the supervisor has
            // reaped it, its pidfd never is.
            return crate::supervisor::pidfd_kill(pidfd.as_fd(), sig, self.pid);
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
        if self.relay {
            return self.relay_loop([None, None], &mut bufs);
        }
        self.event_loop([None, None], &mut bufs)
    }

    /// Wait while reading `files` (stdout, stderr) into `bufs`; returns
    /// once the process is reaped and every file reached EOF. Signals that
    /// reach us meanwhile are passed on rather than killing us (our death
    /// would SIGKILL the child through its parent-death signal).
    ///
    /// The deadline holds until the files are done too: a background job
    /// can keep a pipe open long after the process itself ended. Once it
    /// passed, what the pipes hold is read and they are closed.
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
                let mut timeout_ms = -1;
                if let Some(d) = &self.deadline {
                    if !d.expired() {
                        timeout_ms = d.poll_ms();
                    } else if let Some(st) = self.status {
                        // Killed: what the pipes hold now is all we wait for.
                        for (f, buf) in files.iter_mut().zip(bufs.iter_mut()) {
                            if let Some(f) = f.take() {
                                drain(f.as_raw_fd(), buf);
                            }
                        }
                        return Ok(st);
                    }
                }
                if self.status.is_none()
                    && self.pidfd.is_none()
                    && files.iter().all(Option::is_none)
                    && timeout_ms < 0
                {
                    // No pidfd (kernel before 5.3) and no deadline: wait blocking.
                    return self.reap(false).map(|s| s.expect("blocking reap"));
                }
                let pollin = |fd: RawFd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let mut fds = vec![pollin(sfd.as_raw_fd())];
                if let (Some(p), None) = (self.remote.as_ref().or(self.pidfd.as_ref()), self.status)
                {
                    fds.push(pollin(p.as_raw_fd()));
                } else if self.status.is_none() {
                    // Without a pidfd, look again now and then.
                    timeout_ms = if timeout_ms < 0 {
                        50
                    } else {
                        timeout_ms.min(50)
                    };
                }
                let first_file = fds.len();
                let which = poll_files(&mut fds, &files);
                // SAFETY: fds is a valid pollfd array.
                let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout_ms) };
                if rc < 0 && Errno::last() != Errno::EINTR {
                    return Err(Error::sys("poll", Errno::last()));
                }
                if let Some(d) = self
                    .deadline
                    .as_ref()
                    .filter(|d| !d.expired() && d.passed())
                {
                    // Past the deadline, only a process that ended and
                    // pipes whose every writer is gone (their end of file
                    // is near) are let be.
                    let writers_left = fds[first_file..]
                        .iter()
                        .any(|p| p.revents & libc::POLLHUP == 0);
                    if self.status.is_none() || writers_left {
                        d.expire();
                    }
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    let _ = self.kill(sig);
                    if let Ok(s) = Signal::try_from(sig) {
                        log::debug!("forwarded {s} to {}", self.pid);
                    }
                }
                read_ready(&fds[first_file..], &which, &mut files, bufs);
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
        if let Some(conn) = &self.remote {
            let Some((st, timed_out)) = crate::supervisor::remote_status(conn.as_fd(), nohang)?
            else {
                return Ok(None);
            };
            self.status = Some(st);
            self.remote_timed_out = timed_out;
            self.pidfd.take();
            self.remote.take();
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
        if let Some(d) = &self.deadline {
            d.mark_reaped();
        }
        // Not held past the reaping: a recipe may keep thousands of ended
        // handles. AsFd gives an fd that is always ready instead.
        self.pidfd.take();
        // The network outlives the program by nothing.
        self.usernet.take();
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
        if let Some(st) = self.reap(true)? {
            return Ok(Some(st));
        }
        match &self.deadline {
            Some(d) if d.passed() => {
                // Killed now or by a pipe's call before: it ends at once.
                d.expire();
                self.reap(false)
            }
            _ => Ok(None),
        }
    }

    /// Read stdout and stderr to the end (both at once, so neither pipe
    /// can fill up and block the child) while waiting for it.
    pub fn output(&mut self) -> Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
        let mut bufs = [Vec::new(), Vec::new()];
        let files = [self.stdout.take(), self.stderr.take()];
        let st = match self.relay {
            true => self.relay_loop(files, &mut bufs)?,
            false => self.event_loop(files, &mut bufs)?,
        };
        let [out, err] = bufs;
        Ok((st, out, err))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.is_owner() {
            // A forked child's copy: the cgroup and the process are the
            // parent's to clean up, not ours to remove or reap.
            std::mem::forget(self.cgroup.take());
            return;
        }
        // Reap it if it already ended, so no zombie stays for long.
        if self.status.is_none()
            && !self.observer
            && self.remote.is_none()
            && self.pid != ops::PLANNED_PID
        {
            let _ = process::wait(self.pid, true);
        }
    }
}

impl Child {
    /// The handle of a process a supervisor started and reaps: `conn`
    /// brings its status, `pidfd` (a non-child's) lets us signal it.
    pub(crate) fn supervised(
        pid: i32,
        pidfd: Option<OwnedFd>,
        conn: OwnedFd,
        stdio: [Option<File>; 3],
        group: bool,
    ) -> Child {
        let [stdin, stdout, stderr] = stdio;
        let mut c = Child::from_pid(pid);
        c.pidfd = pidfd;
        c.remote = Some(conn);
        c.group = group;
        (c.stdin, c.stdout, c.stderr) = (stdin, stdout, stderr);
        c
    }

    /// Whether signals go to its whole process group.
    pub(crate) fn leads_group(&self) -> bool {
        self.group
    }

    /// Its pidfd, when the kernel gave one (5.3 and later): poll it, or
    /// send it signals with `pidfd_send_signal`. For a child a
    /// [`Supervisor`](crate::Supervisor) started, readable means it ended,
    /// not that its status is here yet: poll [`Child::exit_fd`] for that.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// The fd that becomes readable when [`Child::try_wait`] has the
    /// status to give: the pidfd of a child this process started, the
    /// connection to the supervisor for one it started. For an event loop
    /// (tokio's `AsyncFd`, poll): wait for readable, then `try_wait`.
    /// `None` once the status is in (both are closed then), and without
    /// a pidfd (a kernel before 5.3).
    pub fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.remote
            .as_ref()
            .or(self.pidfd.as_ref())
            .map(|f| f.as_fd())
    }
}

/// [`Child::exit_fd`]; a child without one (reaped already, a `--plan`
/// stand-in, an observer, a kernel without pidfds) gives an fd that always reads as
/// ready, so a loop waiting on it goes on to `try_wait` at once.
impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.exit_fd().unwrap_or_else(always_ready)
    }
}

impl AsRawFd for Child {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The read end of a pipe whose write end is closed: readable (end of
/// file) for good, and nothing a reader does changes that.
fn always_ready<'a>() -> BorrowedFd<'a> {
    static FD: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    let fd = FD.get_or_init(|| match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok((r, _w)) => r,
        // No fd left for a pipe: /dev/null, which poll(2) also reports
        // readable; failing that, nothing is left to give.
        Err(_) => std::fs::File::open("/dev/null")
            .map(OwnedFd::from)
            .unwrap_or_else(|_| std::process::abort()),
    });
    fd.as_fd()
}

pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
