//! The steps of the started processes before the main one's lock-down:
//! the first child (waits for its maps, joins, unshares), the relay it may
//! leave behind, and the process in all the namespaces (stdio, propagation,
//! hostname, `/proc`, `setup`, PID 1).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;

use super::clone_plan::ClonePlan;
use super::message::report;
use super::parent::IdMaps;
use super::stdio::StdioFds;
use super::Spawn;
use crate::error::{Context, Error, Result};
use crate::sys::init;
use crate::sys::mount;
use crate::sys::namespace::{self as sysns, Namespace, NsHandle};
use crate::sys::ops;
use crate::sys::process::{self, exit_child};

/// A namespace to join: opened by the parent, or under `--plan` only named.
pub(crate) enum Join {
    Open(NsHandle),
    Planned(String),
}

/// What the child gets. It borrows what the parent made ahead: a child
/// that shares the parent's memory (see `spawn`) must not leave anything
/// behind in it.
pub(crate) struct ChildCtx<'p> {
    pub sync_r: Option<OwnedFd>,
    pub err_fd: RawFd,
    pub status_fd: RawFd,
    pub joins: Vec<(Namespace, Join)>,
    pub stdio: StdioFds,
    pub prepared: Option<&'p process::Prepared>,
    pub filters: &'p [seccompiler::BpfProgram],
    pub proc_fd: Option<OwnedFd>,
    /// Maps the child writes itself (uid, gid), rather than waiting for the parent's.
    pub self_maps: Option<&'p IdMaps>,
    /// Our parent's pid as we see it, for the parent-death check: 0 when
    /// it lies outside our pid namespace.
    pub parent: libc::pid_t,
}

impl Spawn<'_> {
    /// The first child's steps, to the exec. Returns only with the error
    /// that stopped it, or under `--plan` with the planned run's exit code.
    pub(super) fn child(&mut self, plan: &ClonePlan, mut cx: ChildCtx) -> Result<i32> {
        for &fd in &self.parent_fds {
            ops::act(
                || format!("close({fd})"),
                || {
                    // SAFETY: the caller gave this fd to the parent alone.
                    unsafe { libc::close(fd) };
                    Ok::<(), Errno>(())
                },
            )
            .op(|| format!("parent_fds: close {fd}"))?;
        }
        if self.die_with_parent {
            set_pdeathsig(cx.parent)?;
        }
        if let Some(c) = &self.channel {
            c.in_child()?;
        }
        // (A terminal's new session, made later, leads a group of its own:
        // a group leader could not make it.)
        if self.timeout.is_some()
            && !self.namespaces.contains(Namespace::Pid)
            && (self.tty_stream().is_none() || plan.relay)
        {
            // Without a pid namespace to tear down, a timeout kills our
            // process group: lead one, so relay, program and descendants
            // are all in it.
            ops::act(
                || "setpgid(0, 0)".into(),
                || {
                    nix::unistd::setpgid(
                        nix::unistd::Pid::from_raw(0),
                        nix::unistd::Pid::from_raw(0),
                    )
                },
            )
            .op(|| "setpgid".into())?;
        }
        // A mount namespace from the clone is ours already: settle its
        // propagation while the parent writes our maps, which it does not need.
        let mount_at_clone = plan.at_clone.contains(Namespace::Mount);
        if mount_at_clone {
            self.set_propagation()?;
        }
        let sync = File::from(cx.sync_r.take().expect("sync pipe"));
        if plan.parent_acts {
            // Wait until the parent wrote our maps. EOF instead of a byte
            // means the parent died before that: leave, whatever the race
            // with PR_SET_PDEATHSIG was. (Under --plan the byte is there.)
            let mut b = [0u8; 1];
            match (&sync).read(&mut b) {
                Ok(1) => {}
                _ => exit_child(1),
            }
        } else if self.die_with_parent && hung_up(&sync) {
            // The parent holds its end until we exec: a hang-up now means
            // it died before PR_SET_PDEATHSIG could take hold.
            exit_child(1);
        }
        drop(sync);
        if let Some(m) = cx.self_maps.take() {
            m.write(None)?;
        }
        if self.disable_userns || self.nested_user.is_some() {
            // Opened now, before `setup` may pivot away from the host's
            // /proc: the sysctl and our own id maps are written through it.
            let fd = nix::fcntl::open(
                "/proc",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .op(|| "open /proc".into())?;
            cx.proc_fd = Some(fd);
        }
        for (k, j) in &cx.joins {
            match j {
                Join::Open(h) => h.enter()?,
                Join::Planned(what) => {
                    ops::record(|| format!("setns({what:?}, {k})"));
                }
            }
        }
        cx.joins.clear();
        if !plan.late.is_empty() {
            sysns::unshare(plan.late)?;
        }
        if plan.late.contains(Namespace::Time) {
            self.set_time_offsets()?;
        }
        if plan.relay {
            // Unshared (or joined) pid and time namespaces hold only our
            // children: fork into them and stay behind as a relay. In a
            // joined pid namespace we are visible to its processes until
            // our exec: stay sealed, unless Lua code of the recipe's runs
            // here as the sandbox's own.
            let me = nix::unistd::getpid().as_raw();
            // SAFETY: a child with a relay is a fork, never one sharing
            // nsrun's memory (see `ClonePlan::start`).
            unsafe { init::fork_supervised(true, Some(cx.status_fd), Some(cx.err_fd), "relay")? };
            ops::set_role("inner");
            if self.setup.is_some() || self.func.is_some() {
                init::unseal_forked();
            }
            cx.parent = match plan.relay_into_pid {
                // The relay is outside the pid namespace we were forked into.
                true => 0,
                false => me,
            };
            if self.die_with_parent {
                set_pdeathsig(cx.parent)?;
            }
        }
        cx.stdio.apply()?;
        if self.namespaces.contains(Namespace::Mount) && !mount_at_clone {
            self.set_propagation()?;
        }
        // Only we, who exec, may hold the error pipe: a process `setup`
        // forks closes its copy.
        process::set_error_pipe(cx.err_fd);
        let inside = self.inside();
        process::set_error_pipe(-1);
        inside?;
        self.take_locks(plan.init)?;
        if plan.init {
            if self.new_session {
                // PID 1 leads the new session, and the program is in it,
                // as with bubblewrap: no terminal of the caller's either
                // way.
                ops::act(|| "setsid()".into(), || nix::unistd::setsid().map(drop))
                    .op(|| "setsid".into())?;
                self.new_session = false;
            }
            return self.become_init(cx);
        }
        self.become_main(&cx)
    }

    /// Fork the main process and stay behind as its PID 1.
    fn become_init(&mut self, mut cx: ChildCtx) -> Result<i32> {
        // The init never execs: drop the recipe's fds before the program
        // exists, so it cannot find them in /proc/1/fd even for a moment.
        // What the main process needs stays. Not with `fn`: the main
        // process goes on running Lua, whose values (handles, pipes) own
        // some of those fds.
        if self.func.is_none() {
            let mut keep = self.keep_fds.clone();
            keep.extend([cx.err_fd, cx.status_fd]);
            keep.extend(&self.locks_held);
            keep.extend(self.gate_fd);
            keep.extend(cx.proc_fd.as_ref().map(|f| f.as_raw_fd()));
            close_fds("init", &keep, &[], false)?;
        }
        // The locks are PID 1's for the sandbox's life; the main process
        // must not hold them (fcntl locks are not inherited anyway).
        init::hold(&self.locks_held);
        self.locks_held.clear();
        // The main process's parent: PID 1 of the new pid namespace, or
        // 2 behind a time namespace's relay that is PID 1.
        cx.parent = nix::unistd::getpid().as_raw();
        // disable_userns makes the main process dumpable again to write its
        // own maps; in our memory that would undo the seal.
        if self.func.is_some() || self.disable_userns || self.nested_user.is_some() {
            // SAFETY: a child with an init is a fork, never one sharing
            // nsrun's memory (see `ClonePlan::start`).
            unsafe { init::fork_supervised(true, Some(cx.status_fd), Some(cx.err_fd), "init")? };
            ops::set_role("main");
            if self.func.is_some() {
                init::unseal_forked();
            }
            if self.die_with_parent {
                set_pdeathsig(cx.parent)?;
            }
            return self.become_main(&cx);
        }
        // The main process only gets ready and execs: it can borrow our
        // memory until then rather than copy it.
        init::block();
        // Before the program exists: from its first instruction on, PID 1's
        // memory, fds and environment are closed to it.
        // SAFETY: as above.
        unsafe { init::seal() };
        let (err_fd, status_fd) = (cx.err_fd, cx.status_fd);
        let die_with_parent = self.die_with_parent;
        let mut main = || {
            let r = self.main_of_init(&cx, die_with_parent);
            report(err_fd, &r.unwrap_err());
            exit_child(127)
        };
        let pid = process::spawn_vm(sysns::Namespaces::empty(), &mut main)?;
        if !ops::planning() {
            // SAFETY: closing our copy of the error pipe.
            unsafe { libc::close(err_fd) };
            init::supervise(pid, Some(status_fd))
        }
        ops::in_role("init", init::supervise_planned);
        ops::set_role("main");
        self.main_of_init(&cx, die_with_parent)
    }

    /// The main process of an init, sharing its memory until the exec.
    fn main_of_init(&mut self, cx: &ChildCtx, die_with_parent: bool) -> Result<i32> {
        init::unblock();
        if die_with_parent {
            set_pdeathsig(cx.parent)?;
        }
        self.become_main(cx)
    }

    /// The offsets of a time namespace just unshared (before any process
    /// lives in it).
    fn set_time_offsets(&self) -> Result<()> {
        let (mono, boot) = self.time_offsets.unwrap_or((0, 0));
        let text = format!("monotonic {mono} 0\nboottime {boot} 0\n");
        ops::write_file("/proc/self/timens_offsets", text.as_bytes(), None, false)
            .op(|| "write /proc/self/timens_offsets".into())
    }

    /// The steps inside all the namespaces, before the init and the
    /// lock-down.
    fn inside(&mut self) -> Result<()> {
        if let Some(h) = &self.hostname {
            sysns::sethostname(h)?;
        }
        if let Some(d) = &self.domainname {
            sysns::setdomainname(d)?;
        }
        if let Some(t) = &self.mount_proc {
            mount::proc_on(t)?;
        }
        if let Some(f) = self.setup.as_mut() {
            f()?;
        }
        Ok(())
    }

    /// Take the shared locks of `lock_files`, in the root `setup` left
    /// (bubblewrap's `--lock-file`). With an init, PID 1 holds them and
    /// they close at the program's exec; without one they stay open
    /// across it, as the program's process is the one holding them.
    fn take_locks(&mut self, init: bool) -> Result<()> {
        for path in &self.lock_files {
            let p = std::path::Path::new(path);
            let flags = match init {
                true => libc::O_RDONLY | libc::O_CLOEXEC,
                false => libc::O_RDONLY,
            };
            let fd = ops::act(
                || format!("open({p:?}, O_RDONLY) and fcntl(F_SETLK, F_RDLCK)"),
                || {
                    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(
                        path.as_os_str(),
                    ))
                    .map_err(|_| Errno::EINVAL)?;
                    // SAFETY: open(2) of a NUL-terminated path.
                    let fd = Errno::result(unsafe { libc::open(c.as_ptr(), flags) })?;
                    // SAFETY: a zeroed flock is valid; then filled.
                    let mut l: libc::flock = unsafe { std::mem::zeroed() };
                    l.l_type = libc::F_RDLCK as libc::c_short;
                    l.l_whence = libc::SEEK_SET as libc::c_short;
                    // SAFETY: F_SETLK with a valid flock on our fd.
                    if let Err(e) = Errno::result(unsafe { libc::fcntl(fd, libc::F_SETLK, &l) }) {
                        // SAFETY: our fd.
                        unsafe { libc::close(fd) };
                        return Err(e);
                    }
                    Ok(fd)
                },
            )
            .op(|| format!("lock file {}", p.display()))?;
            // Under --plan nothing was opened.
            if fd >= 0 && !ops::planning() {
                self.locks_held.push(fd);
            }
        }
        Ok(())
    }

    /// Before anything is mounted: nothing may propagate back to the
    /// host, while the host's later mounts still reach us (by default).
    fn set_propagation(&self) -> Result<()> {
        if let Some(p) = self.propagation.flag() {
            mount::mount(None, "/", None, MsFlags::MS_REC | p, None)?;
        }
        Ok(())
    }
}

/// Close every fd from 3 up but `keep` (`cloexec_only`: mark them
/// close-on-exec instead), through the door so `--plan` and `--trace`
/// show it.
pub(super) fn close_fds(
    who: &str,
    keep: &[RawFd],
    also: &[RawFd],
    cloexec_only: bool,
) -> Result<()> {
    let how = if cloexec_only {
        "mark close-on-exec"
    } else {
        "close"
    };
    ops::act(
        // Not the numbers: they differ between a run and its plan.
        || format!("{how} fds from 3 but {}", keep.len() + also.len()),
        || {
            // SAFETY: a start's child, forked or sharing nsrun's memory
            // with nsrun suspended: none of the fds closed is used by
            // anything that runs before the exec.
            init::close_all_but(keep, also, cloexec_only)
                .map_err(|e| e.errno().unwrap_or(Errno::EIO))
        },
    )
    .op(|| format!("{who}: {how} fds"))
}

/// Whether every write end of `pipe` is closed.
fn hung_up(pipe: &File) -> bool {
    let mut p = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLHUP != 0
}

/// Write `data` to `rel` below /proc: through `proc_fd` (a /proc opened
/// before setup could hide it) when given.
pub(super) fn proc_write(proc_fd: Option<&OwnedFd>, rel: &str, data: &str) -> Result<()> {
    let shown = format!("/proc/{rel}");
    ops::act(
        || format!("write({shown:?}, {data:?})"),
        || {
            use std::io::Write;
            let fd = match proc_fd {
                Some(d) => nix::fcntl::openat(
                    d,
                    rel,
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )?,
                None => nix::fcntl::open(
                    shown.as_str(),
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )?,
            };
            let mut f = File::from(fd);
            // /proc files take their content in one write(2).
            match f.write(data.as_bytes()) {
                Ok(n) if n == data.len() => Ok(()),
                Ok(_) => Err(Errno::EIO),
                Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
            }
        },
    )
    .op(|| format!("write {shown}"))
}

/// PR_SET_PDEATHSIG, then make sure the parent did not die before it took
/// hold (we would then never get the signal): `parent` is its pid as we
/// see it. A parent outside our pid namespace shows as 0 whether it lives
/// or not; there the pipe to the parent tells instead (see `child`), or
/// the relay, which holds the same signal, does.
pub(super) fn set_pdeathsig(parent: libc::pid_t) -> Result<()> {
    // Through the door: under --plan the child's steps run in nsrun itself.
    ops::prctl(
        || "prctl(PR_SET_PDEATHSIG, SIGKILL)".into(),
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
    )
    .op(|| "prctl PR_SET_PDEATHSIG".into())?;
    // 0: our parent lies outside our pid namespace — one we were made in
    // because the caller had joined it (`ns.setns` of a pid namespace
    // before the spawn, as an OCI exec does). Nothing to compare then; the
    // sync pipe tells of its death.
    let now = if parent == 0 || ops::planning() {
        parent
    } else {
        nix::unistd::getppid().as_raw()
    };
    if now != parent && now != 0 {
        exit_child(1);
    }
    Ok(())
}

/// A panic in a started process must not unwind into the parent's code
/// that forked it: it becomes the error report.
pub(super) fn catch(f: impl FnOnce() -> Result<i32>) -> Result<i32> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Error::Child(format!("nsrun panicked in the child: {what}")))
        }
    }
}
