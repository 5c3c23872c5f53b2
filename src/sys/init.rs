//! The supervisor that runs as PID 1 of a new pid namespace (and as the
//! relay in front of a process that had to be forked once more, for a time
//! namespace or after joining namespaces): it reaps every child, forwards
//! signals to the main process and leaves with the main process's status.

use std::os::fd::RawFd;
use std::sync::OnceLock;

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
    let _ = super::ops::act(
        || "sigprocmask(SIG_BLOCK, supervised)".into(),
        || supervised_set().thread_block(),
    );
}

/// Undo [`block`] in the main process before it execs (the mask survives exec).
pub fn unblock() {
    let _ = super::ops::act(
        || "sigprocmask(SIG_SETMASK, {})".into(),
        || nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None),
    );
}

/// Fork a process that goes on, while this one stays behind as its
/// supervisor ([`supervise`]: a relay, or PID 1) and never returns here.
/// `seal`: [`seal`] the supervisor before the fork, so it is closed to
/// whatever the new process becomes. `status_fd` is where the supervisor
/// reports; `drop_fd` (the error pipe) is closed in the supervisor only.
///
/// Under `--plan` nothing forks: the supervisor's part is recorded as
/// process `role` and the caller goes on as the new process.
///
/// # Safety
/// With `seal`, as [`seal`]: the process must be a fork of nsrun, not one
/// sharing its memory.
pub(crate) unsafe fn fork_supervised(
    seal: bool,
    status_fd: Option<RawFd>,
    drop_fd: Option<RawFd>,
    role: &'static str,
) -> crate::error::Result<()> {
    block();
    if seal {
        // SAFETY: per this function's contract.
        unsafe { self::seal() };
    }
    match super::process::fork(super::namespace::Namespaces::empty())? {
        super::process::Forked::Parent(pid) if pid != super::ops::PLANNED_PID => {
            if let Some(fd) = drop_fd {
                // SAFETY: closing our copy of the error pipe.
                unsafe { libc::close(fd) };
            }
            supervise(pid, status_fd)
        }
        super::process::Forked::Parent(_) => {
            super::ops::in_role(role, supervise_planned);
        }
        super::process::Forked::Child => {}
    }
    unblock();
    Ok(())
}

/// What [`supervise`] does, recorded under `--plan`.
pub(crate) fn supervise_planned() {
    close_fds_except(None);
    let _ = lock_down(&filter().unwrap_or_default());
    supervising();
}

/// The mark, in `--trace` and `--plan`, of a supervisor's loop starting.
fn supervising() {
    let _ = super::ops::act(
        || "supervise: reap orphans, forward signals, exit with main's status".into(),
        || Ok(()),
    );
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

/// The supervisor's own filter ([`super::seccomp::Policy::init`]),
/// compiled by the supervisor itself once the main process runs: a fork of
/// its own memory, off the path of the program's start.
fn filter() -> crate::error::Result<Vec<seccompiler::BpfProgram>> {
    super::seccomp::Policy::init(&[])?.compile()
}

/// Where this process's command line and environment strings lie
/// (`/proc/self/stat` fields 48 to 51), read once in the parent so that
/// supervisors forked from it can wipe their copies without /proc.
pub(crate) fn note_arg_area() {
    let _ = arg_area();
}

fn arg_area() -> Option<[usize; 4]> {
    static AREA: OnceLock<Option<[usize; 4]>> = OnceLock::new();
    *AREA.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces: field 3 is
        // the first after the closing parenthesis.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        let n = |i: usize| f.get(i - 3)?.trim().parse::<usize>().ok();
        let a = [n(48)?, n(49)?, n(50)?, n(51)?];
        (a[0] < a[1] && a[2] <= a[3] && a[3] - a[0] < 1 << 24).then_some(a)
    })
}

/// Make a process that will supervise the sandbox's program unreachable
/// from it, before that program exists: not dumpable, so `/proc/PID/mem`,
/// `environ`, `fd/`, `exe`, `maps` and ptrace need CAP_SYS_PTRACE in the
/// user namespace that owns our memory, which is the one nsrun started in
/// (memory is owned by the namespace of the last exec, and we are a fork
/// of nsrun), never one the sandbox's root holds capabilities in. Only we
/// can make ourselves dumpable again. Our command line stays readable by
/// anyone (`/proc/PID/cmdline` takes no ptrace check): wipe it, and the
/// environment, so neither the recipe's arguments nor nsrun's variables
/// can be read there.
///
/// The mark is per memory: a child cloned with `CLONE_VM` shares it until
/// it execs (which sets it anew), and a forked child inherits it.
///
/// # Safety
/// The process must be a fork of nsrun (not sharing memory with it): the
/// command line and environment strings are overwritten in place.
pub(crate) unsafe fn seal() {
    let _ = super::ops::prctl(
        || "prctl(PR_SET_DUMPABLE, 0)".into(),
        libc::PR_SET_DUMPABLE,
        0,
        0,
    );
    let _ = super::ops::act(
        || "wipe the command line and environment".into(),
        || {
            // SAFETY: per this function's contract.
            unsafe { wipe_arg_area() };
            Ok(())
        },
    );
}

/// [`seal`]'s wipe.
///
/// # Safety
/// As [`seal`].
unsafe fn wipe_arg_area() {
    if let Some([arg0, arg1, env0, env1]) = arg_area() {
        const NAME: &[u8] = b"nsrun-init\0";
        // SAFETY: the ranges the kernel reports for our own command line
        // and environment, writable stack memory of this (forked) process.
        unsafe {
            std::ptr::write_bytes(arg0 as *mut u8, 0, arg1 - arg0);
            std::ptr::copy_nonoverlapping(
                NAME.as_ptr(),
                arg0 as *mut u8,
                NAME.len().min(arg1 - arg0),
            );
            std::ptr::write_bytes(env0 as *mut u8, 0, env1 - env0);
        }
    }
}

/// Undo [`seal`]'s mark in a forked child that goes on as the sandbox's
/// own process (Lua `setup` or `fn`, which may write its own `/proc/self`
/// files): its memory is its own copy.
pub(crate) fn unseal_forked() {
    let _ = super::ops::prctl(
        || "prctl(PR_SET_DUMPABLE, 1)".into(),
        libc::PR_SET_DUMPABLE,
        1,
        0,
    );
}

/// The supervisor's lock-down, once the main process runs: no capability
/// in any set (nor the bounding set, so no exec could regain one),
/// no_new_privs, and a filter that allows only what supervising needs
/// ([`super::seccomp::INIT_ALLOW`]). A supervisor is part of the sandbox, so its program is
/// its attacker: whatever it made us do, we could do no more than it.
fn lock_down(filter: &[seccompiler::BpfProgram]) -> crate::error::Result<()> {
    super::caps::apply(0)?;
    super::seccomp::no_new_privs()?;
    super::seccomp::install(
        filter,
        &["nsrun init: allow ".to_string() + &super::seccomp::INIT_ALLOW.join(" ")],
    )
}

/// Supervise `main` until it ends, then write its status to `status_fd`
/// (when given) and exit with its shell code. Signals must already be
/// blocked with [`block`] before `main` was started, and a supervisor of
/// a sandbox's program sealed (`seal`, crate-private). It locks itself
/// down with the supervisor's own seccomp filter, which it compiles
/// itself, when it can.
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
    let filter = match filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nsrun: init: {e}");
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(main, libc::SIGKILL) };
            exit_child(125)
        }
    };
    if let Err(e) = lock_down(&filter) {
        // Fail closed: no sandbox with an init stronger than its program.
        eprintln!("nsrun: init: lock-down: {e}");
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(main, libc::SIGKILL) };
        exit_child(125)
    }
    supervising();
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

/// Fds PID 1 holds for the sandbox's life (the shared locks of
/// `lock_files`): set before the main process starts, read when PID 1
/// closes everything else. Fixed slots: PID 1 allocates nothing there.
static HELD: [std::sync::atomic::AtomicI32; MAX_HELD] =
    [const { std::sync::atomic::AtomicI32::new(-1) }; MAX_HELD];

/// How many fds [`hold`] keeps.
pub(crate) const MAX_HELD: usize = 16;

/// Keep `fds` open in PID 1 (at most [`MAX_HELD`]).
pub(crate) fn hold(fds: &[RawFd]) {
    for (slot, fd) in HELD.iter().zip(fds) {
        slot.store(*fd, std::sync::atomic::Ordering::Relaxed);
    }
}

fn close_fds_except(keep: Option<RawFd>) {
    let mut held = [-1; MAX_HELD];
    let mut n = 0;
    for slot in &HELD {
        let fd = slot.load(std::sync::atomic::Ordering::Relaxed);
        if fd >= 0 {
            held[n] = fd;
            n += 1;
        }
    }
    let held = &held[..n];
    // A supervisor with fds it cannot close would hold the recipe's files
    // for the sandbox's life: leave rather than run like that.
    let r = super::ops::act(
        || "close fds but the status channel".into(),
        || {
            close_all_but(keep.as_slice(), held, false)
                .map_err(|e| e.errno().unwrap_or(nix::errno::Errno::EIO))
        },
    );
    if let Err(e) = r {
        eprintln!("nsrun: init: closing fds: {e}");
        exit_child(125)
    }
}

/// Close every fd from 3 up except those in `keep`, `also` and the `--trace` fd;
/// with `cloexec_only`, mark them close-on-exec instead (for a process
/// that goes on running Lua, whose values own some of them). It allocates
/// nothing: it runs in children that share their parent's memory.
///
/// `close_range(2)` does it in one call; where the kernel lacks it (before
/// 5.9, or 5.11 for the close-on-exec flag), the fds listed in
/// `/proc/self/fd` are closed one by one, as bubblewrap does, and if that
/// cannot be read either, every number up to the fd limit.
pub(crate) fn close_all_but(
    keep: &[RawFd],
    also: &[RawFd],
    cloexec_only: bool,
) -> crate::error::Result<()> {
    let trace = super::ops::trace_fd().unwrap_or(-1);
    let kept = |fd: RawFd| fd == trace || keep.contains(&fd) || also.contains(&fd);
    // The gaps between kept fds, lowest first, found without sorting.
    let next_kept = |after: i64| -> i64 {
        keep.iter()
            .chain(also)
            .copied()
            .chain(std::iter::once(trace))
            .map(i64::from)
            .filter(|k| *k > after)
            .min()
            .unwrap_or(i64::from(u32::MAX) + 1)
    };
    let flags = if cloexec_only {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    let mut lo: i64 = 3;
    let mut ranged = true;
    while lo <= i64::from(u32::MAX) {
        let k = next_kept(lo - 1);
        if lo < k {
            // SAFETY: closing (or flagging) fds nothing else in this
            // process uses any more.
            let rc =
                unsafe { libc::syscall(libc::SYS_close_range, lo as u32, (k - 1) as u32, flags) };
            if rc != 0 {
                ranged = false;
                break;
            }
        }
        lo = k + 1;
    }
    if ranged {
        return Ok(());
    }
    let one = |fd: RawFd| {
        if fd >= 3 && !kept(fd) {
            // SAFETY: as above, one fd at a time.
            unsafe {
                match cloexec_only {
                    true => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
                    false => libc::close(fd),
                }
            };
        }
    };
    if close_listed(&one).is_ok() {
        return Ok(());
    }
    close_up_to_limit(&one)
}

/// The last resort: every fd number from 3 up to the fd limit (at most 2^20).
fn close_up_to_limit(one: &dyn Fn(RawFd)) -> crate::error::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(crate::error::Error::sys(
            "close stray fds (close_range, /proc/self/fd and getrlimit all failed)",
            nix::errno::Errno::last(),
        ));
    }
    for fd in 3..lim.rlim_cur.min(1 << 20) as RawFd {
        one(fd);
    }
    Ok(())
}

/// Apply `one` to each fd listed in `/proc/self/fd`, read with getdents64
/// into a buffer on the stack.
fn close_listed(one: &dyn Fn(RawFd)) -> Result<(), ()> {
    // SAFETY: a NUL-terminated literal path.
    let dir = unsafe {
        libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return Err(());
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: a buffer of that size.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            // SAFETY: our own directory fd.
            unsafe { libc::close(dir) };
            return if n == 0 { Ok(()) } else { Err(()) };
        }
        let mut off = 0usize;
        while off + 19 < n as usize {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let mut fd: i64 = 0;
            let mut digits = 0;
            for b in name.iter().take_while(|b| **b != 0) {
                if !b.is_ascii_digit() {
                    digits = 0;
                    break;
                }
                fd = fd * 10 + i64::from(b - b'0');
                digits += 1;
            }
            if digits > 0 && fd != i64::from(dir) && fd <= i64::from(i32::MAX) {
                one(fd as RawFd);
            }
            if reclen == 0 {
                break;
            }
            off += reclen;
        }
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
            // Not through the door: how the program ended is no step of
            // the plan.
            let _ = SigSet::empty().thread_set_mask();
            // SAFETY: kill(2) of our own pid.
            unsafe { libc::kill(libc::getpid(), s as i32) };
            exit_child(128 + s as i32)
        }
        _ => exit_child(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each fallback of [`close_all_but`], in a forked child: it closes
    /// fds 3.. but the kept one, which the child checks with F_GETFD.
    #[test]
    fn fallbacks_close_all_but_the_kept() {
        for listed in [true, false] {
            // SAFETY: the child makes only system calls and leaves with _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                // SAFETY: dup/fcntl/_exit on our own fds.
                unsafe {
                    let fds = [libc::dup(0), libc::dup(0), libc::dup(0)];
                    let keep = fds[1];
                    let one = |fd: RawFd| {
                        if fd >= 3 && fd != keep {
                            libc::close(fd);
                        }
                    };
                    let ok = match listed {
                        true => close_listed(&one).is_ok(),
                        false => close_up_to_limit(&one).is_ok(),
                    };
                    let open = |fd| libc::fcntl(fd, libc::F_GETFD) >= 0;
                    let right = ok && open(keep) && !open(fds[0]) && !open(fds[2]);
                    libc::_exit(if right { 0 } else { 1 });
                }
            }
            let mut st = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            assert!(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                "fallback (listed = {listed}) left an fd open or closed the kept one"
            );
        }
    }
}
