//! A clean helper process that does every fork for a multi-threaded host
//! (issue 18), as Chromium's zygote does for its sandbox.
//!
//! A process with threads cannot fork safely (the child inherits locks the
//! other threads hold) nor create a user namespace, so [`Spawn::spawn`]
//! refuses it. A [`Supervisor`] is a separate, single-threaded process,
//! started by executing a binary afresh (so it holds none of the host's
//! memory: no secret of the host can reach a sandbox through it). Any
//! thread sends it a request (a [`Spawn`] as plain data, or a Lua recipe
//! to run) over a unix socket, with the stdio fds passed by `SCM_RIGHTS`;
//! it forks the job, answers with the pid and a pidfd, reaps the job and
//! sends back its exit status on the request's own connection. It forks a
//! worker per further core (copies of itself, single-threaded too), so a
//! start that is under way does not hold up the next.
//!
//! The helper is one of two binaries:
//! - the program itself ([`Supervisor::start`], which executes
//!   `/proc/self/exe`): its `main` must call
//!   [`Supervisor::serve_if_helper`] first thing;
//! - the `nsrun` command ([`Supervisor::start_exec`]), which needs no
//!   change to the program.
//!
//! It dies with the host: its control socket reaches end of file when the
//! host is gone (and with a parent-death signal when started from the
//! main thread), and it kills every job it started before it exits.

#[cfg(feature = "tokio")]
mod asyncio;
mod server;
pub(crate) mod wire;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::sys::child::Child;
use crate::sys::process::ExitStatus;
use crate::sys::spawn::remote::outgoing_stdio;
use crate::sys::spawn::{Spawn, Stdio};
use wire::{JobRequest, Received, Reply, Request, Status};

/// The environment variable that makes a process the helper: the number
/// of its end of the control socket.
pub const HELPER_ENV: &str = "NSRUN_SUPERVISOR_FD";

/// How long a freshly executed helper may take to answer.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest answer or status message.
const REPLY_MAX: usize = 16 << 10;

/// A helper process that starts sandboxes for a multi-threaded host.
/// `Sync`: share it between threads (`Arc<Supervisor>`), every call is
/// one request on the shared socket and an answer on a connection of its
/// own.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // First: when this process is the helper, it serves and never returns.
///     nsrun::Supervisor::serve_if_helper();
///     let sup = std::sync::Arc::new(nsrun::Supervisor::start()?);
///     let workers: Vec<_> = (0..4)
///         .map(|i| {
///             let sup = sup.clone();
///             std::thread::spawn(move || {
///                 let mut child = sup.spawn(
///                     nsrun::Spawn::new(["sh", "-c", &format!("echo job {i}")])
///                         .namespaces([nsrun::Namespace::User, nsrun::Namespace::Pid])
///                         .stdout(nsrun::Stdio::Pipe),
///                 )?;
///                 child.output()
///             })
///         })
///         .collect();
///     for w in workers {
///         let (status, out, _) = w.join().unwrap()?;
///         print!("{status:?}: {}", String::from_utf8_lossy(&out));
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Supervisor {
    ctl: OwnedFd,
    pid: i32,
    process: Mutex<Option<std::process::Child>>,
}

impl Supervisor {
    /// If this process was started as a supervisor (by
    /// [`Supervisor::start`]), serve the host and exit when it is gone;
    /// otherwise return at once. Call it first in `main`, before any
    /// thread or runtime starts.
    pub fn serve_if_helper() {
        let Some(v) = std::env::var_os(HELPER_ENV) else {
            return;
        };
        let fd: RawFd = match v.to_str().and_then(|s| s.parse().ok()) {
            Some(fd) if fd >= 3 => fd,
            _ => {
                eprintln!("nsrun supervisor: {HELPER_ENV}={v:?} is not an fd number");
                std::process::exit(1);
            }
        };
        // Not for the programs the helper starts. SAFETY: the helper has
        // one thread (it was just executed and serves before any other).
        unsafe { std::env::remove_var(HELPER_ENV) };
        server::serve(fd)
    }

    /// Start the helper by executing this program again
    /// (`/proc/self/exe`) with [`HELPER_ENV`] set: its `main` must call
    /// [`Supervisor::serve_if_helper`] before anything else. Works from
    /// any thread, with any number of threads running (fork and exec as
    /// std's `Command` does them).
    pub fn start() -> Result<Supervisor> {
        Supervisor::start_exec("/proc/self/exe")
    }

    /// Start the helper by executing `program`: the `nsrun` command, or a
    /// program whose `main` calls [`Supervisor::serve_if_helper`] first.
    pub fn start_exec(program: impl AsRef<Path>) -> Result<Supervisor> {
        let program = program.as_ref();
        if std::env::var_os(HELPER_ENV).is_some() {
            return Err(Error::Invalid(format!(
                "Supervisor::start in a process that {HELPER_ENV} marks as the helper: call \
                 nsrun::Supervisor::serve_if_helper() first thing in main, before \
                 Supervisor::start"
            )));
        }
        let (mine, theirs) = wire::socketpair()?;
        let theirs_fd = theirs.as_raw_fd();
        // SAFETY: getpid and gettid have no preconditions.
        let (host, main_thread) = unsafe { (libc::getpid(), libc::gettid() == libc::getpid()) };
        let mut cmd = std::process::Command::new(program);
        // Nothing of the host's but what a request carries: each brings
        // the host's environment and working directory as they are then.
        cmd.env_clear().env(HELPER_ENV, "3");
        // SAFETY: between fork and exec only async-signal-safe calls.
        unsafe {
            cmd.pre_exec(move || {
                let rc = if theirs_fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(theirs_fd, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A parent-death signal fires when the thread that forked
                // exits, so only the main thread's (which lives as long
                // as the process) is the host's death. Others rely on
                // the socket's end of file.
                if main_thread {
                    // SIGTERM, which it handles: it kills what it started
                    // and removes their cgroups before it exits.
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
                    if libc::getppid() != host {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                }
                Ok(())
            });
        }
        let mut proc_ = cmd.spawn().map_err(|e| {
            Error::sys(
                format!("start the supervisor {}", program.display()),
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
        drop(theirs);
        let pid = proc_.id() as i32;
        let gone = |proc_: &mut std::process::Child, why: &str| {
            let _ = proc_.kill();
            let st = proc_.wait().map(|s| format!(" ({s})")).unwrap_or_default();
            Error::Child(format!(
                "the supervisor {} {why}{st}: the nsrun command, or a program whose main \
                 calls nsrun::Supervisor::serve_if_helper() first, must serve as the helper",
                program.display()
            ))
        };
        let mut p = libc::pollfd {
            fd: mine.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, HELLO_TIMEOUT.as_millis() as i32) };
        if n == 0 {
            return Err(gone(&mut proc_, "did not answer"));
        }
        let mut d = Vec::new();
        match wire::recv(mine.as_fd(), &mut d, REPLY_MAX, false) {
            Ok(Received::Message(_)) if d == wire::HELLO.as_bytes() => {}
            Ok(Received::Message(..)) => {
                return Err(gone(&mut proc_, "answered in another protocol"))
            }
            Ok(_) | Err(_) => return Err(gone(&mut proc_, "exited before answering")),
        }
        Ok(Supervisor {
            ctl: mine,
            pid,
            process: Mutex::new(Some(proc_)),
        })
    }

    /// The helper's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Start `spawn` in the supervisor: from any thread, any number at
    /// once. Everything plain data crosses (argv, environment, namespaces,
    /// maps, ids, mounts of proc, limits, capabilities, seccomp policies,
    /// landlock, cgroup, timeout, init); stdio pipes come back to this
    /// process, other streams are passed as fds. What cannot cross is
    /// refused by name: closures (`func`, `setup`, `before_start`),
    /// `keep_fds` and open namespace handles.
    ///
    /// The child's parent is the supervisor, which reaps it and sends its
    /// status: [`Child::wait`], [`Child::try_wait`] and
    /// [`Child::exit_fd`] work as for a direct child, and [`Child::kill`]
    /// signals it through its pidfd. Its timeout is the supervisor's to
    /// keep; its cgroup is removed there too.
    pub fn spawn(&self, spawn: Spawn<'_>) -> Result<Child> {
        let out = spawn.into_request()?;
        self.request(
            JobRequest::Spawn(Box::new(out.request)),
            out.fds,
            out.keep,
            out.parent,
        )
    }

    /// Run the Lua recipe at `path` with `args` in a process the
    /// supervisor forks: its own Lua state, never one in this process's
    /// threads. The recipe's standard streams are this process's.
    pub fn run_recipe<S: AsRef<str>>(&self, path: impl AsRef<Path>, args: &[S]) -> Result<Child> {
        self.run_recipe_stdio(path, args, [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit])
    }

    /// [`Supervisor::run_recipe`] with its stdin, stdout and stderr
    /// (`Stdio::Pipe` gives this process the other end, as for a spawn).
    /// The recipe's exit code is the status's: what it returns, 1 for an
    /// error (its message on the recipe's stderr).
    pub fn run_recipe_stdio<S: AsRef<str>>(
        &self,
        path: impl AsRef<Path>,
        args: &[S],
        stdio: [Stdio; 3],
    ) -> Result<Child> {
        let path = path.as_ref();
        // The helper's working directory is the one this process had when
        // it started it.
        let abs = std::path::absolute(path)
            .map_err(|e| Error::Invalid(format!("recipe path {}: {e}", path.display())))?;
        let (stdio, fds, keep, parent) = outgoing_stdio(&stdio)?;
        let req = JobRequest::Recipe {
            path: wire::Bytes(abs.as_os_str().as_bytes().to_vec()),
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            env: std::env::vars_os()
                .map(|(k, v)| (wire::Bytes(k.into_vec()), wire::Bytes(v.into_vec())))
                .collect(),
            stdio,
        };
        self.request(req, fds, keep, parent)
    }

    fn request(
        &self,
        job: JobRequest,
        stdio_fds: Vec<RawFd>,
        keep: Vec<OwnedFd>,
        parent: [Option<std::fs::File>; 3],
    ) -> Result<Child> {
        let req = Request {
            cwd: wire::Bytes(
                std::env::current_dir()
                    .map(|d| d.into_os_string().into_vec())
                    .unwrap_or_default(),
            ),
            job,
        };
        let (conn, theirs) = wire::socketpair()?;
        let mut fds = vec![theirs.as_raw_fd()];
        fds.extend(stdio_fds);
        wire::send(self.ctl.as_fd(), &req, &fds).map_err(|e| self.gone_error(e))?;
        // Only the supervisor holds these now.
        drop(theirs);
        drop(keep);
        let mut d = Vec::new();
        match wire::recv(conn.as_fd(), &mut d, REPLY_MAX, true)? {
            Received::Message(fds) => match wire::parse::<Reply>(&d, "answer")? {
                Reply::Started { pid, group } => {
                    let pidfd = fds.into_iter().next();
                    Ok(Child::supervised(pid, pidfd, conn, parent, group))
                }
                Reply::Failed(e) => Err(e.into()),
            },
            _ => Err(self.gone_error(Error::Child("no answer".into()))),
        }
    }

    fn gone_error(&self, e: Error) -> Error {
        match e.errno() {
            Some(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) | None => {
                Error::Child(format!(
                    "the supervisor (pid {}) is gone: it exited or was killed ({e}); start a new one",
                    self.pid
                ))
            }
            _ => e,
        }
    }
}

impl Drop for Supervisor {
    /// Close the control socket: the helper kills what it still runs,
    /// reaps it and exits; then it is reaped here.
    fn drop(&mut self) {
        // SAFETY: shutting down our own socket, which drop closes after.
        unsafe { libc::shutdown(self.ctl.as_raw_fd(), libc::SHUT_RDWR) };
        if let Ok(mut g) = self.process.lock() {
            if let Some(mut p) = g.take() {
                let _ = p.wait();
            }
        }
    }
}

/// A status message from a supervisor's connection, if one is there
/// (`nohang`) or once it comes: the status, and whether its timeout
/// killed it.
pub(crate) fn remote_status(conn: BorrowedFd, nohang: bool) -> Result<Option<(ExitStatus, bool)>> {
    let mut d = Vec::new();
    match wire::recv(conn, &mut d, REPLY_MAX, !nohang)? {
        Received::Nothing => Ok(None),
        Received::Eof => Err(Error::Child(
            "the supervisor went away before it reported how the process ended".into(),
        )),
        Received::Message(_) => {
            let st: Status = wire::parse(&d, "status")?;
            Ok(Some((st.exit_status(), st.timed_out)))
        }
    }
}

/// Signal a process that is not our child through its pidfd.
pub(crate) fn pidfd_kill(pidfd: BorrowedFd, sig: i32, pid: i32) -> Result<()> {
    // SAFETY: pidfd_send_signal with a null info is kill(2) on the pidfd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match Errno::result(rc) {
        Ok(_) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(Error::sys(format!("pidfd_send_signal {pid} {sig}"), e)),
    }
}

/// Shared between threads is what it is for.
const _: fn() = || {
    fn sync<T: Send + Sync>() {}
    sync::<Supervisor>();
};
