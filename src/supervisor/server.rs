//! The helper's side: one thread, one epoll loop over the control socket
//! and the pidfds of the jobs it started; the same in each worker.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::{AtomicI32, Ordering};

use super::wire::{self, Bytes, JobRequest, Received, Reply, Request, Status, WireError};
use crate::error::{Error, Result};
use crate::sys::child::Child;
use crate::sys::namespace::Namespaces;
use crate::sys::process::{self, Forked};
use crate::sys::spawn::remote::FdReq;
use crate::sys::spawn::Spawn;

/// The largest request (a spawn with a long environment fits easily).
const REQUEST_MAX: usize = 1 << 20;

/// The most processes serving requests at once.
const MAX_WORKERS: usize = 8;

/// A started job: its handle and the connection its status goes to.
struct Job {
    child: Child,
    conn: OwnedFd,
    /// A copy of its pidfd in the epoll set. Taken out explicitly when the
    /// job ends: an epoll entry lives as long as the open file, which the
    /// host's copy of the pidfd keeps open, and a stale, always-ready
    /// entry under a reused fd number would spin the loop.
    watch: Option<OwnedFd>,
}

/// The write end of the pipe SIGTERM wakes the loop with, and the pid it
/// is for (a child between its fork and exec runs the handler too).
static WAKE: AtomicI32 = AtomicI32::new(-1);
static SUPERVISOR: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_term(_: libc::c_int) {
    // SAFETY: getpid and write are async-signal-safe.
    unsafe {
        if libc::getpid() == SUPERVISOR.load(Ordering::Relaxed) {
            libc::write(WAKE.load(Ordering::Relaxed), b"t".as_ptr().cast(), 1);
        }
    }
}

/// SIGTERM (the parent-death signal too) ends the loop as the host's end
/// of file does: jobs killed and reaped, cgroups removed.
fn handle_term() -> Option<OwnedFd> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).ok()?;
    // SAFETY: getpid has no preconditions.
    SUPERVISOR.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    WAKE.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w);
    // SAFETY: installing a handler that only makes async-signal-safe calls.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_term as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
    Some(r)
}

/// Serve the host on control socket `fd` until it is gone, then kill and
/// reap every job and exit.
pub(crate) fn serve(fd: RawFd) -> ! {
    // SAFETY: the fd the host passed us, ours alone.
    let ctl = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD on our own fd: no program we start gets it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Named so tools (and tests) can tell it from the host.
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"nsrun-super".as_ptr(), 0, 0, 0) };
    if wire::send_bytes(ctl.as_fd(), wire::HELLO.as_bytes(), &[]).is_err() {
        std::process::exit(1);
    }
    let workers = start_workers();
    let term = handle_term();
    let ep = match Epoll::new(&ctl, term.as_ref()) {
        Ok(ep) => ep,
        Err(_) => std::process::exit(1),
    };
    let mut jobs: Vec<Job> = Vec::new();
    // One buffer for every request: a megabyte made once, not per request.
    let mut buf = Vec::with_capacity(REQUEST_MAX);
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    'serve: loop {
        let mut timeout = -1;
        for j in &jobs {
            let t = match (j.child.exit_fd(), j.child.deadline()) {
                // No pidfd (a kernel before 5.3): look now and then.
                (None, _) => 50,
                (_, Some(d)) => d.poll_ms(),
                _ => -1,
            };
            if t >= 0 && (timeout < 0 || t < timeout) {
                timeout = t;
            }
        }
        // SAFETY: events is a valid array of that many entries.
        let n = unsafe {
            libc::epoll_wait(
                ep.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as _,
                timeout,
            )
        };
        if n < 0 && nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            break;
        }
        let ready = &events[..n.max(0) as usize];
        // Ended jobs first: a reaped job's pidfd is closed (which takes it
        // out of the epoll set) before its number can come back.
        let mut left = Vec::with_capacity(jobs.len());
        for mut j in jobs.drain(..) {
            let due = match &j.watch {
                Some(w) => ready.iter().any(|e| e.u64 == w.as_raw_fd() as u64),
                None => true,
            } || j.child.deadline().is_some_and(|d| d.passed());
            if due {
                let st = match j.child.try_wait() {
                    Ok(None) => {
                        left.push(j);
                        continue;
                    }
                    Ok(Some(st)) => Some(st),
                    // Its host learns it from the connection's end of file.
                    Err(_) => None,
                };
                if let Some(w) = j.watch.take() {
                    ep.del(w.as_raw_fd());
                }
                if let Some(st) = st {
                    let s = Status::new(st, j.child.timed_out());
                    // A host that dropped the handle no longer listens.
                    let _ = wire::send(j.conn.as_fd(), &s, &[]);
                }
                continue;
            }
            left.push(j);
        }
        jobs = left;
        for e in ready {
            match e.u64 {
                TERM => break 'serve,
                // One request per wake-up: the next one wakes an idle
                // worker, or this one again once it is back here.
                CTL => match wire::recv(ctl.as_fd(), &mut buf, REQUEST_MAX, false) {
                    Ok(Received::Nothing) => {}
                    Ok(Received::Eof) => break 'serve,
                    Ok(Received::Message(fds)) => {
                        if let Some(mut job) = serve_one(&buf, fds) {
                            job.watch = job
                                .child
                                .exit_fd()
                                .and_then(|f| f.try_clone_to_owned().ok())
                                .filter(|w| {
                                    let fd = w.as_raw_fd();
                                    ep.add(fd, libc::EPOLLIN as u32, fd as u64)
                                });
                            jobs.push(job);
                        }
                    }
                    // A request too large: its sender gets EOF on its
                    // connection.
                    Err(_) => {}
                },
                _ => {}
            }
        }
    }
    // The host is gone: nothing it started may outlive it.
    for j in &jobs {
        let _ = j.child.kill(libc::SIGKILL);
    }
    for mut j in jobs {
        if let Ok(st) = j.child.wait() {
            // A host that only dropped the Supervisor still holds handles.
            let _ = wire::send(j.conn.as_fd(), &Status::new(st, j.child.timed_out()), &[]);
        }
    }
    // Workers saw the same end of file; a SIGTERM covers one that did not.
    for w in workers {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(w, libc::SIGTERM);
            libc::waitpid(w, std::ptr::null_mut(), 0);
        }
    }
    std::process::exit(0)
}

/// Fork a worker per further core, each serving the same control socket
/// with a loop of its own (a request wakes one idle worker): a spawn keeps its worker waiting until the program has
/// started, and meanwhile another worker starts the next one. Each is a
/// copy of this fresh, single-threaded helper, never of the host. The
/// pids of the workers, in the first process; none in a worker.
fn start_workers() -> Vec<i32> {
    let n = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    // SAFETY: getpid has no preconditions.
    let main = unsafe { libc::getpid() };
    let mut pids = Vec::new();
    for _ in 1..n {
        // SAFETY: this process has one thread; the child goes on with the
        // same loop and leaves through exit.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: our own process.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
                    if libc::getppid() != main {
                        libc::_exit(0);
                    }
                }
                return Vec::new();
            }
            pid if pid > 0 => pids.push(pid),
            _ => break,
        }
    }
    pids
}

/// Tokens of the epoll set that are not a job's exit fd.
const CTL: u64 = u64::MAX;
const TERM: u64 = u64::MAX - 1;

/// The loop's epoll set: the control socket (exclusive: a request wakes
/// one idle worker, not all of them), the SIGTERM pipe, the jobs' pidfds.
struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new(ctl: &OwnedFd, term: Option<&OwnedFd>) -> Result<Epoll> {
        // SAFETY: epoll_create1 returns a new fd or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        let fd = nix::errno::Errno::result(fd).map_err(|e| Error::sys("epoll_create1", e))?;
        // SAFETY: a fresh fd of ours.
        let ep = Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        let excl = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;
        if !ep.add(ctl.as_raw_fd(), excl, CTL) {
            // Before Linux 4.5: every worker wakes for every request.
            ep.add(ctl.as_raw_fd(), libc::EPOLLIN as u32, CTL);
        }
        if let Some(t) = term {
            ep.add(t.as_raw_fd(), libc::EPOLLIN as u32, TERM);
        }
        Ok(ep)
    }

    fn del(&self, fd: RawFd) {
        // SAFETY: removing an fd of ours; the event is ignored.
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> bool {
        let mut e = libc::epoll_event { events, u64: token };
        // SAFETY: a valid event for an open fd.
        unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut e) == 0 }
    }
}

/// Start what one request asks; the answer goes back on its connection.
fn serve_one(data: &[u8], mut fds: Vec<OwnedFd>) -> Option<Job> {
    if fds.is_empty() {
        // No connection to answer on: not a host of ours.
        return None;
    }
    let conn = fds.remove(0);
    let started = wire::parse::<Request>(data, "request").and_then(|req| {
        if !req.cwd.0.is_empty() {
            let dir = std::path::PathBuf::from(std::ffi::OsString::from_vec(req.cwd.0));
            std::env::set_current_dir(&dir).map_err(|e| {
                Error::Invalid(format!(
                    "the supervisor cannot enter the host's working directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        match req.job {
            JobRequest::Spawn(r) => Spawn::from_request(*r, &fds)?.spawn(),
            JobRequest::Recipe {
                path,
                args,
                env,
                stdio,
            } => run_recipe(path, args, env, stdio, &fds),
        }
    });
    // The passed streams are the child's now (spawn dups them).
    drop(fds);
    match started {
        Ok(child) => {
            let reply = Reply::Started {
                pid: child.pid(),
                group: child.leads_group(),
            };
            let pidfd: Vec<RawFd> = child.pidfd().map(|f| f.as_raw_fd()).into_iter().collect();
            let _ = wire::send(conn.as_fd(), &reply, &pidfd);
            Some(Job {
                child,
                conn,
                watch: None,
            })
        }
        Err(e) => {
            let _ = wire::send(conn.as_fd(), &Reply::Failed(WireError::from(&e)), &[]);
            None
        }
    }
}

/// Fork a process that runs the recipe in a Lua state of its own.
fn run_recipe(
    path: Bytes,
    args: Vec<String>,
    env: Vec<(Bytes, Bytes)>,
    stdio: [FdReq; 3],
    fds: &[OwnedFd],
) -> Result<Child> {
    // Opened here, so a bad path is the caller's error, not a child's.
    let mut streams: [Option<OwnedFd>; 3] = [None, None, None];
    for (i, s) in stdio.iter().enumerate() {
        streams[i] = match s {
            FdReq::Inherit => None,
            FdReq::Null => Some(open(b"/dev/null", i > 0)?),
            FdReq::Path(p) => Some(open(&p.0, i > 0)?),
            FdReq::Passed(n) => Some(
                fds.get(*n)
                    .ok_or_else(|| Error::Invalid(format!("recipe stdio {i}: no passed fd {n}")))?
                    .try_clone()
                    .map_err(|e| Error::Invalid(format!("recipe stdio {i}: {e}")))?,
            ),
        };
    }
    // SAFETY: getpid has no preconditions.
    let supervisor = unsafe { libc::getpid() };
    match process::fork(Namespaces::empty())? {
        Forked::Parent(pid) => Ok(Child::from_pid(pid)),
        Forked::Child => {
            // SAFETY: in the freshly forked, single-threaded child: fd and
            // prctl calls on our own process.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if libc::getppid() != supervisor {
                    libc::_exit(1);
                }
                for (i, s) in streams.iter().enumerate() {
                    if let Some(s) = s {
                        if libc::dup2(s.as_raw_fd(), i as RawFd) < 0 {
                            libc::_exit(1);
                        }
                    }
                }
                // The control socket and the other jobs' connections are
                // the supervisor's, never a recipe's.
                if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                    for fd in 3..1024 {
                        libc::close(fd);
                    }
                }
            }
            std::mem::forget(streams);
            // SAFETY: the default disposition, in our own process.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_DFL) };
            for (k, _) in std::env::vars_os() {
                std::env::remove_var(k);
            }
            for (Bytes(k), Bytes(v)) in env {
                if !k.is_empty() && !k.contains(&b'=') && !k.contains(&0) && !v.contains(&0) {
                    std::env::set_var(
                        std::ffi::OsString::from_vec(k),
                        std::ffi::OsString::from_vec(v),
                    );
                }
            }
            let path = std::ffi::OsString::from_vec(path.0);
            let code = match crate::Host::new()
                .map_err(crate::RunError::from)
                .and_then(|h| h.run_file(&path, &args))
            {
                Ok(c) => c & 0xff,
                Err(e) => {
                    eprintln!("nsrun: {e}");
                    1
                }
            };
            process::exit_child(code)
        }
    }
}

fn open(path: &[u8], write: bool) -> Result<OwnedFd> {
    let p = std::path::PathBuf::from(std::ffi::OsString::from_vec(path.to_vec()));
    let mut o = std::fs::OpenOptions::new();
    match write {
        true => o.write(true).create(true).truncate(true),
        false => o.read(true),
    };
    o.open(&p)
        .map(OwnedFd::from)
        .map_err(|e| Error::Invalid(format!("recipe stdio {}: {e}", p.display())))
}
