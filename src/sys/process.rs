//! Processes: fork-style clone, wait, kill, leaving a child (exec is in
//! [`super::exec`], re-exported here).

use std::io::Write;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use super::exec::{exec, ExecOpts, Prepared};
use super::namespace::{Namespace, Namespaces, CLONE_NEWTIME};
use super::ops;
use crate::error::{Context, Error, Result};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Whether it left a core dump.
    pub core_dumped: bool,
}

impl ExitStatus {
    /// The code a shell would report: the exit code, or 128 + the signal.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => 0,
        }
    }
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Flush Rust's and C's buffered output, so a child does not write out the
/// parent's pending text a second time (Lua's print goes through C stdio).
pub fn flush_stdio() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fflush(NULL) flushes every C stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// Leave a child process at once: no destructors, no atexit handlers, no
/// Lua state teardown: those belong to the parent.
pub fn exit_child(code: i32) -> ! {
    flush_stdio();
    // SAFETY: _exit never returns and touches no shared state.
    unsafe { libc::_exit(code) }
}

/// The write end of the error pipe of the spawn whose child this process
/// is, or -1: the one fd that only the process about to exec may hold,
/// since the parent waits for its end of file.
static ERROR_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Name the error pipe's write end in a spawn's child while the recipe's
/// code (`setup`) runs, and -1 after: any process [`fork`] makes in that
/// window (a background `ns.fork`) closes its copy, so the parent's
/// `spawn` returns at the exec, not when that one exits. Spawn's own
/// forks (relay, init) come outside the window: their children are the
/// ones that exec and report on the pipe.
pub(crate) fn set_error_pipe(fd: RawFd) {
    ERROR_PIPE.store(fd, Ordering::Relaxed);
}

/// In a freshly forked child: close our copy of the error pipe, which
/// belongs to the process that forked us.
fn drop_error_pipe() {
    let fd = ERROR_PIPE.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: our own copy of the fd, named by set_error_pipe.
        unsafe { libc::close(fd) };
    }
}

/// The number of threads of this process. procfs counts them in the
/// link count of `/proc/self/task` (2 + threads): one stat, cheaper than
/// reading and parsing `/proc/self/status`, whose `Threads:` line is the
/// fallback.
pub(crate) fn threads() -> Result<usize> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata("/proc/self/task") {
        if m.nlink() > 2 {
            return Ok(m.nlink() as usize - 2);
        }
    }
    let status =
        std::fs::read_to_string("/proc/self/status").op(|| "read /proc/self/status".into())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok())
        .ok_or_else(|| Error::Invalid("/proc/self/status has no Threads: line".into()))
}

/// Refuse to fork (`what` names the call) unless this process has one
/// thread: a fork copies only the calling thread, and a lock another one
/// holds (the allocator's, stdio's, a logger's) stays held in the child
/// for good, which hangs or corrupts it. Where /proc cannot tell (not
/// mounted, or another pid namespace's), it lets the fork go on: nsrun's
/// own processes there are single-threaded.
pub(crate) fn refuse_if_threaded(what: &str) -> Result<()> {
    match threads() {
        Ok(n) if n > 1 => Err(Error::Invalid(format!(
            "{what}: nsrun cannot fork a process that has {n} threads: the child would inherit \
             locks held by the other threads (the allocator's, stdio's); start \
             processes before starting threads, or through a single-threaded helper process \
             (nsrun::Supervisor)"
        ))),
        _ => Ok(()),
    }
}

/// Which side of a fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the child.
    Child,
    /// In the parent, with the child's pid.
    Parent(i32),
}

/// Fork, the child starting in new namespaces of `kinds`.
///
/// clone(2) cannot put a child in a new time namespace (its flag bit is the
/// exit signal's), and unshare(CLONE_NEWTIME) only moves the caller's future
/// children. So with `time`, the direct child unshares it and forks the real
/// child, then waits and passes on its exit status: the returned pid is that
/// of the waiting process.
///
/// Crate-private: the child is a copy of a process that may hold locks
/// (the allocator's, stdio's) taken by other threads, which it could then
/// never take. Callers make sure the process is single-threaded
/// ([`refuse_if_threaded`], or a recipe host, which has one thread), and
/// the child leaves only through [`exit_child`] or exec: never by
/// returning into its caller's teardown.
pub(crate) fn fork(kinds: Namespaces) -> Result<Forked> {
    flush_stdio();
    let mut clone_kinds = kinds;
    clone_kinds.remove(Namespace::Time);
    let pid = ops::clone(clone_kinds.flags()).map_err(|e| clone_error(kinds, e))?;
    if pid != 0 {
        return Ok(Forked::Parent(pid));
    }
    drop_error_pipe();
    // Rust's handlers for SIGSEGV/SIGBUS (stack overflow detection) would
    // swallow those signals sent to a Lua child; let them kill it.
    // SAFETY: resetting dispositions to the default.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
    if kinds.contains(Namespace::Time) {
        if let Err(e) = ops::unshare(CLONE_NEWTIME) {
            eprintln!("nsrun: {}", Error::sys("unshare time", e));
            exit_child(1);
        }
        // Stay behind as a supervisor: signals sent to us reach the real
        // child, and it dies with us. Not sealed (unlike spawn's
        // supervisors): the recipe writes our id maps through /proc/PID
        // after this, and what runs below is the recipe's own Lua function.
        // SAFETY: not sealing, so no contract to keep.
        if let Err(e) = unsafe { super::init::fork_supervised(false, None, None, "relay") } {
            eprintln!("nsrun: time namespace relay: {e}");
            exit_child(1);
        }
        // SAFETY: prctl with an int argument.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    }
    Ok(Forked::Child)
}

/// Run `f` in a child that shares our memory until it execs
/// (`CLONE_VM | CLONE_VFORK`, as posix_spawn does), on a stack of its own;
/// we are suspended meanwhile. For a child that only gets ready and execs:
/// a fork would copy our page tables and then every page either side
/// writes. `f` must end in exec or [`exit_child`]; if it returns, the child
/// exits with 127. What `f` changes in memory stays changed for us, and it
/// must not unwind.
/// `kinds` are namespaces for the child to start in.
///
/// Crate-private, as its contract cannot be checked: two processes run on
/// one heap, so `f` must neither allocate while another thread could hold
/// the allocator's lock nor leave anything half-changed in memory.
pub(crate) fn spawn_vm(kinds: Namespaces, f: &mut dyn FnMut()) -> Result<i32> {
    let (pid, _stack) = clone_vm(kinds, true, f)?;
    Ok(pid)
}

/// As [`spawn_vm`], but we run on beside the child, in the same memory:
/// for a child that needs something from us before it goes on (its id
/// maps, which only a process outside its user namespace may write).
/// `meanwhile(pid)` runs then; we return once `done`, a pipe whose only
/// write end left is the child's (close-on-exec), reads end of file: the
/// child has exec'd or exited, and left our memory. What it wrote there
/// (one message of at most `msg.len()` bytes) is in `msg`; the length is
/// returned with the pid.
///
/// Until that end of file, both processes run one C library on one heap
/// and one `errno`, with no lock between them, so `meanwhile` must not
/// allocate, free, or call anything that sets `errno`: raw system calls
/// ([`super::raw`]) and the stack only. It must also release the child
/// (it waits on something `meanwhile` writes or closes), or this never
/// returns.
///
/// Crate-private for the same reasons as [`spawn_vm`].
pub(crate) fn spawn_vm_alongside(
    kinds: Namespaces,
    f: &mut dyn FnMut(),
    meanwhile: &mut dyn FnMut(i32),
    done: std::os::fd::RawFd,
    msg: &mut [u8],
) -> Result<(i32, usize)> {
    let (pid, stack) = clone_vm(kinds, false, f)?;
    if stack.is_none() {
        // Planned, not started: nobody to act beside.
        return Ok((pid, 0));
    }
    meanwhile(pid);
    let n = super::raw::read_to_end(done, msg);
    // Only now: the child ran on it until the end of file.
    drop(stack);
    Ok((pid, n))
}

/// The stack of a child cloned with `CLONE_VM`, unmapped on drop.
struct VmStack(*mut libc::c_void);

impl VmStack {
    const SIZE: usize = 1 << 20;
    const GUARD: usize = 4096;
}

impl Drop for VmStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by the child (see callers).
        unsafe { libc::munmap(self.0, Self::SIZE + Self::GUARD) };
    }
}

/// The pid and the stack; under `--plan`, pid 0 and none.
fn clone_vm(kinds: Namespaces, vfork: bool, f: &mut dyn FnMut()) -> Result<(i32, Option<VmStack>)> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: arg is the &mut dyn FnMut() stored at the top of our
        // stack mapping below, alive until we exec or exit.
        let f = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
        f();
        exit_child(127)
    }
    // Its exec would flush our buffered output to where its stdout goes.
    flush_stdio();
    let mut flags = libc::CLONE_VM | kinds.flags().bits();
    if vfork {
        flags |= libc::CLONE_VFORK;
    }
    let shown = |kinds: Namespaces| {
        let head = if vfork { "vm|vfork" } else { "vm" };
        match kinds.is_empty() {
            true => format!("clone({head})"),
            false => format!("clone({head}|{kinds})"),
        }
    };
    ops::act(
        || shown(kinds),
        || {
            // SAFETY: a fresh private mapping; only pages the child touches
            // are ever backed.
            let mem = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    VmStack::SIZE + VmStack::GUARD,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if mem == libc::MAP_FAILED {
                return Err(Errno::last());
            }
            let stack = VmStack(mem);
            // SAFETY: the lowest page of our mapping becomes the guard. The
            // reference to `f` goes at the top of the mapping, not in a
            // frame of ours: without CLONE_VFORK we return (and reuse this
            // frame) while the child may not have read it yet. The child's
            // stack starts below it, 16-byte aligned. With CLONE_VFORK clone
            // returns only once the child has exec'd or exited; without, the
            // caller keeps `stack`, and the closure `f` refers to, until the
            // child's end of file.
            let pid = unsafe {
                libc::mprotect(mem, VmStack::GUARD, libc::PROT_NONE);
                let top = mem.cast::<u8>().add(VmStack::SIZE + VmStack::GUARD);
                let slot = top.sub(64).cast::<&mut dyn FnMut()>();
                slot.write(f);
                libc::clone(trampoline, slot.cast(), flags | libc::SIGCHLD, slot.cast())
            };
            if pid < 0 {
                // No child: errno is ours alone.
                Err(Errno::last())
            } else {
                Ok((pid, Some(stack)))
            }
        },
    )
    .map_err(|e| clone_error(kinds, e))
}

/// A failed clone(2), named. ENOMEM there most often does not mean
/// memory: a process that joined a pid namespace (setns) whose init has
/// exited can make no process in it, and the kernel says ENOMEM.
fn clone_error(kinds: Namespaces, e: Errno) -> Error {
    let op = if kinds.is_empty() {
        "clone".to_string()
    } else {
        format!("clone {kinds}")
    };
    if e == Errno::ENOMEM && pid_namespace_joined() {
        return Error::sys(
            format!("{op} into a pid namespace whose init has exited"),
            e,
        );
    }
    Error::sys(op, e)
}

/// Whether our children would start in another pid namespace than ours
/// (after setns to a pid namespace, or unshare of one).
fn pid_namespace_joined() -> bool {
    let ino = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    match (
        ino("/proc/self/ns/pid"),
        ino("/proc/self/ns/pid_for_children"),
    ) {
        (Ok(a), Ok(b)) => a != b,
        _ => false,
    }
}

/// waitpid(2), retrying on EINTR. With `nohang`, `None` while it runs.
pub fn wait(pid: i32, nohang: bool) -> Result<Option<ExitStatus>> {
    let flags = if nohang {
        Some(WaitPidFlag::WNOHANG)
    } else {
        None
    };
    loop {
        match waitpid(Pid::from_raw(pid), flags) {
            Ok(WaitStatus::Exited(_, code)) => {
                return Ok(Some(ExitStatus {
                    code: Some(code),
                    signal: None,
                    core_dumped: false,
                }))
            }
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                return Ok(Some(ExitStatus {
                    code: None,
                    signal: Some(sig as i32),
                    core_dumped: core,
                }))
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("wait {pid}"), e)),
        }
    }
}

/// A signal by number, or by name with or without `SIG` (`TERM`, `SIGKILL`).
pub fn parse_signal(name: &str) -> Result<i32> {
    let up = name.trim().to_ascii_uppercase();
    let full = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| {
            Error::Invalid(format!(
                "unknown signal '{name}' (e.g. TERM, KILL, INT, HUP, USR1)"
            ))
        })
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) -> Result<()> {
    ops::kill(Pid::from_raw(pid), sig).op(|| format!("kill {pid}"))
}

/// Rust's runtime (and nsrun's main) ignore SIGPIPE, and an ignored
/// signal stays ignored across exec: give a program the default, as
/// std::process::Command does.
pub fn default_sigpipe() {
    // SAFETY: restoring a default disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// If SIGPIPE is ignored, handle it with a handler that does nothing
/// instead: writes to a pipe whose reader left still fail with EPIPE, and
/// an exec (ours, `os.execute`'s shell, anyone's) resets a handled signal
/// to its default where an ignored one would stay ignored.
pub fn sigpipe_handled() {
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: querying, then setting, a disposition; the handler is
    // async-signal-safe (it does nothing).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) != 0
            || old.sa_sigaction != libc::SIG_IGN
        {
            return;
        }
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
        new.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGPIPE, &new, std::ptr::null_mut());
    }
}

/// Be killed (SIGKILL) when our parent dies, as a sandbox's processes are
/// when nsrun dies (bubblewrap's --die-with-parent covers "bwrap or
/// bwrap's parent"). A parent gone already, before the call took hold,
/// is taken for dead now. Nothing under `--plan`.
pub fn die_with_parent() -> Result<()> {
    if ops::planning() {
        return Ok(());
    }
    let before = nix::unistd::getppid();
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    nix::errno::Errno::result(rc).map_err(|e| Error::sys("prctl PR_SET_PDEATHSIG", e))?;
    if nix::unistd::getppid() != before {
        // SAFETY: raising a signal on ourselves.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    Ok(())
}

/// umask(2): set it, return the old one (under `--plan` recorded; 022
/// returned).
pub fn umask(mask: u32) -> u32 {
    if ops::record(|| format!("umask({mask:o})")) {
        return 0o022;
    }
    // SAFETY: umask(2) cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// personality(2) with an OCI domain name (LINUX, LINUX32). Under `--plan`
/// only recorded.
pub fn personality(domain: &str) -> Result<()> {
    let persona: libc::c_ulong = match domain {
        "LINUX" => 0,
        "LINUX32" => 0x0008,
        other => {
            return Err(Error::Invalid(format!(
                "linux.personality.domain must be LINUX or LINUX32, got {other:?}"
            )))
        }
    };
    if ops::record(|| format!("personality({domain})")) {
        return Ok(());
    }
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(Error::sys(format!("personality {domain}"), Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_counted_and_refused() {
        // The test harness runs this on a thread of its own already.
        assert!(threads().expect("threads") >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let during = threads().expect("threads");
        let refused = refuse_if_threaded("spawn");
        drop(tx);
        t.join().unwrap();
        // Other tests of this harness start and end threads meanwhile: only
        // that there are at least two (the harness's and ours) is sure.
        assert!(during >= 2, "{during} threads with one of ours running");
        let msg = refused
            .expect_err("a threaded process must be refused")
            .to_string();
        assert!(msg.contains(" threads") && msg.contains("spawn"), "{msg}");
    }
}
