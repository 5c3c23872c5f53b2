//! The one door: every operation that changes kernel state goes through here.
//!
//! Keeping them in one place lets `--trace` log each call with its outcome in
//! a single spot, and lets `--plan` record the calls instead of performing
//! them.
//! Read-only queries (stat, readlink, getuid) are not routed here.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

use super::flags::{clone_flags_names, mount_flags_names};

fn outcome<T>(r: &nix::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// Whether operations are traced (`--trace`, `RUST_LOG=nsrun::ops=trace`).
pub fn tracing() -> bool {
    log::log_enabled!(target: "nsrun::ops", log::Level::Trace)
}

fn traced<T>(r: nix::Result<T>, call: impl FnOnce() -> String) -> nix::Result<T> {
    if tracing() {
        trace_line(&format!("{} = {}", call(), outcome(&r)));
    }
    r
}

/// Log one line of `--trace`. With a trace fd (the CLI's), one raw
/// write(2) of the whole line, that takes no lock and survives a reader
/// that went away: it runs between clone and exec, in processes that
/// share their memory (and so every lock) with a supervisor, with SIGPIPE
/// at its default. Without one (an embedder's logger), through `log`.
pub fn trace_line(msg: &str) {
    match trace_fd() {
        Some(fd) => {
            let line = format!("nsrun[{}]: {msg}\n", std::process::id());
            write_unkillable(fd, line.as_bytes());
        }
        None => log::trace!(target: "nsrun::ops", "{msg}"),
    }
}

/// Write all of `buf` to `fd` with raw write(2)s, giving up at the first
/// error: SIGPIPE is blocked meanwhile and one it raised is taken back,
/// so a reader that went away cannot kill the writer (pipes have no
/// MSG_NOSIGNAL). Allocates nothing.
pub fn write_unkillable(fd: std::os::fd::RawFd, mut buf: &[u8]) {
    // SAFETY: signal-set and mask calls on sets on our stack, and write(2)
    // of a live buffer.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        // One already pending is someone else's: leave it.
        libc::sigpending(&mut pending);
        let ours = libc::sigismember(&pending, libc::SIGPIPE) == 0;
        let mut broken = false;
        while !buf.is_empty() {
            let n = libc::write(fd, buf.as_ptr().cast(), buf.len());
            if n > 0 {
                buf = &buf[n as usize..];
            } else if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            } else {
                broken = n < 0 && *libc::__errno_location() == libc::EPIPE;
                break;
            }
        }
        if broken && ours {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// An [`std::io::Write`] over [`write_unkillable`], for a logger that
/// writes where `--trace` does: its lock is then never held by a process
/// that died in the write.
#[derive(Debug)]
pub struct TraceWriter(pub std::fs::File);

impl std::io::Write for TraceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_unkillable(self.0.as_raw_fd(), buf);
        // A reader that went away loses the line; the writer goes on.
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where `--plan` keeps the operations a recipe would perform.
struct Planner {
    steps: Vec<Step>,
    /// Where the plan mounted something (by `mount`), for the checks that
    /// would see a mount point there in a real run.
    mounted: Vec<std::path::PathBuf>,
    role: Vec<&'static str>,
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The process it would run in: `parent`, `child`, `init`, …
    pub process: String,
    /// The call, as `--trace` shows it.
    pub call: String,
}

static TRACE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Name the fd `--trace` writes to. Processes that close the recipe's fds
/// (an init, a relay) keep this one, so their operations show too; the
/// program can then reach it through /proc/1/fd, which is why it is only
/// set while tracing.
pub fn set_trace_fd(fd: std::os::fd::RawFd) {
    TRACE_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
}

/// The fd set by [`set_trace_fd`].
pub fn trace_fd() -> Option<std::os::fd::RawFd> {
    let fd = TRACE_FD.load(std::sync::atomic::Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

thread_local! {
    static PLAN: std::cell::RefCell<Option<Planner>> = const { std::cell::RefCell::new(None) };
    /// Whether PLAN holds a plan: read on every door call, and a plain
    /// flag, so that a run without `--plan` never sets up PLAN (whose
    /// destructor registration costs a start page faults and a lock).
    static PLANNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The pid that planned children get: never a real one.
pub const PLANNED_PID: libc::pid_t = i32::MAX;

/// Start recording instead of performing (`--plan`).
pub fn plan_begin() {
    PLANNING.with(|f| f.set(true));
    PLAN.with(|p| {
        *p.borrow_mut() = Some(Planner {
            steps: Vec::new(),
            mounted: Vec::new(),
            role: vec!["parent"],
        })
    });
}

/// Stop recording and return the plan.
pub fn plan_end() -> Vec<Step> {
    PLANNING.with(|f| f.set(false));
    PLAN.with(|p| p.borrow_mut().take().map(|p| p.steps).unwrap_or_default())
}

/// Whether operations are being recorded rather than performed.
pub fn planning() -> bool {
    PLANNING.with(|f| f.get())
}

/// Run `f` with the plan's steps attributed to process `role`.
pub fn in_role<T>(role: &'static str, f: impl FnOnce() -> T) -> T {
    if !planning() {
        return f();
    }
    PLAN.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.role.push(role);
        }
    });
    let r = f();
    PLAN.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.role.pop();
        }
    });
    r
}

/// From here on, attribute the plan's steps to process `role` (the
/// current process forked and goes on as a new one); returns the old role.
pub fn set_role(role: &'static str) -> &'static str {
    if !planning() {
        return role;
    }
    PLAN.with(
        |p| match p.borrow_mut().as_mut().and_then(|p| p.role.last_mut()) {
            Some(top) => std::mem::replace(top, role),
            None => role,
        },
    )
}

/// The process the plan's steps are attributed to now (`parent`,
/// `child`, …), or `None` when not planning.
pub fn role() -> Option<&'static str> {
    PLAN.with(|p| {
        p.borrow()
            .as_ref()
            .map(|p| p.role.last().copied().unwrap_or("parent"))
    })
}

/// What ends a planned run early (`os.exit` in the recipe's own process):
/// the command line prints the plan and exits with the code. Without one
/// (an embedder), `os.exit` under `--plan` is refused.
static PLAN_EXIT: std::sync::OnceLock<fn(i32)> = std::sync::OnceLock::new();

/// Set what [`plan_exit`] calls; the first setting wins.
pub fn set_plan_exit(f: fn(i32)) {
    let _ = PLAN_EXIT.set(f);
}

/// End a planned run with `code` through the hook of [`set_plan_exit`].
/// Returns only when there is none.
pub fn plan_exit(code: i32) {
    if let Some(f) = PLAN_EXIT.get() {
        f(code);
    }
}

/// Whether the plan so far mounted something on `path` (with `mount`).
pub fn planned_mount_at(path: &std::path::Path) -> bool {
    if !planning() {
        return false;
    }
    PLAN.with(|p| {
        p.borrow()
            .as_ref()
            .is_some_and(|p| p.mounted.iter().any(|m| m == path))
    })
}

/// Record `call` if planning; true when it was recorded (and so must not
/// be performed).
pub fn record(call: impl FnOnce() -> String) -> bool {
    if !planning() {
        return false;
    }
    PLAN.with(|p| match p.borrow_mut().as_mut() {
        Some(p) => {
            let call = call().replace(&PLANNED_PID.to_string(), "$CHILD");
            let process = p.role.last().copied().unwrap_or("parent").to_string();
            p.steps.push(Step { process, call });
            true
        }
        None => false,
    })
}

/// Perform `real` (tracing it), or under `--plan` only record it.
fn door<T: Default>(
    real: impl FnOnce() -> nix::Result<T>,
    call: impl FnOnce() -> String,
) -> nix::Result<T> {
    door_or(T::default(), real, call)
}

fn door_or<T>(
    fake: T,
    real: impl FnOnce() -> nix::Result<T>,
    call: impl FnOnce() -> String,
) -> nix::Result<T> {
    if planning() {
        record(call);
        return Ok(fake);
    }
    traced(real(), call)
}

fn q(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("{s:?}"),
        None => "NULL".into(),
    }
}

pub fn unshare(flags: CloneFlags) -> nix::Result<()> {
    door(
        || nix::sched::unshare(flags),
        || format!("unshare({})", clone_flags_names(flags)),
    )
}

pub fn setns(fd: BorrowedFd<'_>, flags: CloneFlags) -> nix::Result<()> {
    door(
        || nix::sched::setns(fd, flags),
        || format!("setns({}, {})", fd.as_raw_fd(), clone_flags_names(flags)),
    )
}

pub fn mount(
    source: Option<&Path>,
    target: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    let target = target.as_ref();
    if planning()
        && !flags.intersects(
            MsFlags::MS_REMOUNT
                | MsFlags::MS_PRIVATE
                | MsFlags::MS_SLAVE
                | MsFlags::MS_SHARED
                | MsFlags::MS_UNBINDABLE,
        )
    {
        PLAN.with(|p| {
            if let Some(p) = p.borrow_mut().as_mut() {
                p.mounted.push(target.to_path_buf());
            }
        });
    }
    door(
        || nix::mount::mount(source, target, fstype, flags, data),
        || {
            format!(
                "mount({}, {:?}, {}, {}, {})",
                source.map_or("NULL".into(), |s| format!("{s:?}")),
                target,
                q(fstype),
                mount_flags_names(flags),
                q(data)
            )
        },
    )
}

/// The bare mount_setattr(2) (not traced: callers go through the door),
/// for a path, or with `AT_EMPTY_PATH` an fd, `dirfd`.
pub(crate) fn raw_mount_setattr(
    dirfd: std::os::fd::RawFd,
    path: &std::ffi::CStr,
    at_flags: libc::c_int,
    set: u64,
    clear: u64,
) -> libc::c_long {
    /// `struct mount_attr`, version 0.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a valid C string and a correctly sized struct that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            at_flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    }
}

/// mount_setattr(2), used to change attributes of a whole tree at once
/// (the remount dance cannot do that atomically and trips over locked flags).
pub fn mount_setattr(
    target: impl AsRef<Path>,
    recursive: bool,
    set: u64,
    clear: u64,
) -> nix::Result<()> {
    let target = target.as_ref();
    let real = || {
        let path = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
        Errno::result(raw_mount_setattr(libc::AT_FDCWD, &path, flags, set, clear)).map(drop)
    };
    door(real, || {
        format!("mount_setattr({target:?}, recursive={recursive}, set={set:#x}, clear={clear:#x})")
    })
}

pub fn umount2(target: impl AsRef<Path>, flags: MntFlags) -> nix::Result<()> {
    let target = target.as_ref();
    door(
        || nix::mount::umount2(target, flags),
        || format!("umount2({target:?}, {flags:?})"),
    )
}

pub fn pivot_root(new_root: impl AsRef<Path>, put_old: impl AsRef<Path>) -> nix::Result<()> {
    let new_root = new_root.as_ref();
    let put_old = put_old.as_ref();
    door(
        || nix::unistd::pivot_root(new_root, put_old),
        || format!("pivot_root({new_root:?}, {put_old:?})"),
    )
}

pub fn chroot(path: impl AsRef<Path>) -> nix::Result<()> {
    let path = path.as_ref();
    door(|| nix::unistd::chroot(path), || format!("chroot({path:?})"))
}

pub fn chdir(path: impl AsRef<Path>) -> nix::Result<()> {
    let path = path.as_ref();
    door(|| nix::unistd::chdir(path), || format!("chdir({path:?})"))
}

pub fn sethostname(name: &str) -> nix::Result<()> {
    door(
        || nix::unistd::sethostname(name),
        || format!("sethostname({name:?})"),
    )
}

pub fn setdomainname(name: &str) -> nix::Result<()> {
    let real = || {
        // SAFETY: pointer and length describe `name`.
        let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        Errno::result(rc).map(drop)
    };
    door(real, || format!("setdomainname({name:?})"))
}

pub fn mkdir(path: impl AsRef<Path>, mode: u32) -> nix::Result<()> {
    let path = path.as_ref();
    let m = nix::sys::stat::Mode::from_bits_truncate(mode);
    door(
        || nix::unistd::mkdir(path, m),
        || format!("mkdir({path:?}, {mode:#o})"),
    )
}

pub fn chmod(path: impl AsRef<Path>, mode: u32) -> nix::Result<()> {
    let path = path.as_ref();
    let m = nix::sys::stat::Mode::from_bits_truncate(mode);
    door(
        || {
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                path,
                m,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        },
        || format!("chmod({path:?}, {mode:#o})"),
    )
}

pub fn symlink(target: impl AsRef<Path>, linkpath: impl AsRef<Path>) -> nix::Result<()> {
    let target = target.as_ref();
    let linkpath = linkpath.as_ref();
    door(
        || nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, linkpath),
        || format!("symlink({target:?}, {linkpath:?})"),
    )
}

/// Create or truncate `path` and write all of `data`.
pub fn write_file(
    path: impl AsRef<Path>,
    data: &[u8],
    mode: Option<u32>,
    truncate: bool,
) -> nix::Result<()> {
    let path = path.as_ref();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let real = || {
        (|| {
            let mut o = std::fs::OpenOptions::new();
            o.write(true);
            if truncate {
                o.create(true).truncate(true).mode(mode.unwrap_or(0o644));
            }
            let mut f = o.open(path)?;
            // One write: /proc files such as uid_map must get their content in a
            // single write(2) call. A created file needs none for no content
            // (a mount point: /dev has six).
            if !(data.is_empty() && truncate) {
                let n = f.write(data)?;
                if n != data.len() {
                    f.write_all(&data[n..])?;
                }
            }
            if let (Some(m), true) = (mode, truncate) {
                // The umask trimmed the mode given to open; say what was asked.
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(m))?;
            }
            Ok::<_, std::io::Error>(())
        })()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    };
    door(real, || {
        let shown = String::from_utf8_lossy(&data[..data.len().min(64)]);
        format!("write({path:?}, {shown:?})")
    })
}

pub fn unlink(path: impl AsRef<Path>) -> nix::Result<()> {
    let path = path.as_ref();
    door(|| nix::unistd::unlink(path), || format!("unlink({path:?})"))
}

/// A fork-style clone: no new stack, so the child continues on a copy of
/// the caller's stack exactly like fork(2) (as bubblewrap's raw_clone does).
/// Returns 0 in the child. Under `--plan` it forks nothing and returns
/// [`PLANNED_PID`]: the callers then run the child's part inline.
///
/// Crate-private: see [`super::process::fork`] for what the child may do.
pub(crate) fn clone(flags: CloneFlags) -> nix::Result<libc::pid_t> {
    if record(|| format!("clone({})", clone_flags_names(flags))) {
        return Ok(PLANNED_PID);
    }
    // SAFETY: with a null stack pointer clone behaves like fork; the host is
    // single-threaded, so the child inherits no lock held by another thread.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    let r = Errno::result(rc).map(|p| p as libc::pid_t);
    if matches!(r, Ok(0)) {
        return r;
    }
    traced(r, || format!("clone({})", clone_flags_names(flags)))
}

pub fn kill(pid: Pid, sig: i32) -> nix::Result<()> {
    let real = || {
        // SAFETY: plain kill(2).
        let rc = unsafe { libc::kill(pid.as_raw(), sig) };
        Errno::result(rc).map(drop)
    };
    door(real, || format!("kill({pid}, {sig})"))
}

pub fn setresuid(uid: Uid) -> nix::Result<()> {
    door(
        || nix::unistd::setresuid(uid, uid, uid),
        || format!("setresuid({uid}, {uid}, {uid})"),
    )
}

pub fn setresgid(gid: Gid) -> nix::Result<()> {
    door(
        || nix::unistd::setresgid(gid, gid, gid),
        || format!("setresgid({gid}, {gid}, {gid})"),
    )
}

pub fn setgroups(groups: &[Gid]) -> nix::Result<()> {
    door(
        || nix::unistd::setgroups(groups),
        || format!("setgroups({groups:?})"),
    )
}

/// Under `--plan`, records the exec and returns `Ok` (a real exec never does).
/// execve(2) with NULL-terminated pointer arrays made ahead (`argv` names
/// the arguments for the trace): nothing is allocated, so a child sharing
/// the parent's memory leaves nothing behind in it.
///
/// Crate-private: the pointers must point into `argv` and live strings
/// (see [`super::exec::Prepared`]), which nothing here can check.
pub(crate) fn execve(
    path: &CString,
    argv: &[CString],
    argv_ptrs: &[*const libc::c_char],
    env_ptrs: &[*const libc::c_char],
) -> nix::Result<()> {
    if record(|| format!("execve({path:?}, {argv:?})")) {
        return Ok(());
    }
    if tracing() {
        trace_line(&format!("execve({path:?}, {argv:?})"));
    }
    debug_assert!(argv_ptrs.last().is_some_and(|p| p.is_null()));
    debug_assert!(env_ptrs.last().is_some_and(|p| p.is_null()));
    // SAFETY: NUL-terminated strings in NULL-terminated arrays; execve
    // returns only on failure.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    let r = Err::<(), _>(Errno::last());
    // Only reached on failure.
    traced(r, || format!("execve({path:?})"))
}

/// A state-changing netlink request (`real` opens a socket, sends it and
/// waits for the ack). `call` describes it for the trace and the plan.
pub fn netlink(
    real: impl FnOnce() -> nix::Result<()>,
    call: impl FnOnce() -> String,
) -> nix::Result<()> {
    door(real, || format!("netlink({})", call()))
}

/// The door for the hardening calls (prctl, capset, setrlimit, seccomp,
/// cgroup files) that have no dedicated wrapper here: perform `real`
/// (traced), or under `--plan` only record `call`.
pub fn act<T: Default>(
    call: impl FnOnce() -> String,
    real: impl FnOnce() -> nix::Result<T>,
) -> nix::Result<T> {
    door(real, call)
}

/// prctl(2) with integer arguments; `call` names it for `--trace`/`--plan`
/// (`prctl(PR_CAPBSET_DROP, CAP_CHOWN)`).
pub fn prctl(
    call: impl FnOnce() -> String,
    option: libc::c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
) -> nix::Result<()> {
    act(call, || {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
        Errno::result(rc).map(drop)
    })
}
