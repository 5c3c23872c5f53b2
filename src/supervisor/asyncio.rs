//! Child handles for tokio (the `tokio` feature): await a child's exit
//! and its pipes without a thread per child.

use std::future::poll_fn;
use std::os::fd::{FromRawFd, OwnedFd};
use std::task::Poll;

use nix::errno::Errno;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::unix::pipe;

use crate::error::{Error, Result};
use crate::sys::child::Child;
use crate::sys::process::ExitStatus;

fn io_error(op: &str, e: std::io::Error) -> Error {
    Error::sys(op, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// A timerfd that becomes readable in `ms` milliseconds.
fn timer(ms: i32) -> Result<OwnedFd> {
    // SAFETY: timerfd_create returns a new fd or -1.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    };
    let fd = Errno::result(fd).map_err(|e| Error::sys("timerfd_create", e))?;
    // SAFETY: a fresh fd of ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let ms = ms.max(1) as i64;
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000) * 1_000_000,
        },
    };
    // SAFETY: a valid itimerspec; the old value is not asked for.
    let rc = unsafe {
        libc::timerfd_settime(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            0,
            &spec,
            std::ptr::null_mut(),
        )
    };
    Errno::result(rc).map_err(|e| Error::sys("timerfd_settime", e))?;
    Ok(fd)
}

/// `fd` in the current runtime's reactor, for reading.
fn register(fd: OwnedFd, what: &str) -> Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the fd, so it stays open while registered.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| io_error(&format!("register {what} with tokio"), e.into()))
}

impl Child {
    /// Wait for it to end on the tokio runtime this is called from (IO
    /// enabled), without blocking a thread: awaits [`Child::exit_fd`],
    /// then [`Child::try_wait`]. A timeout is kept as [`Child::wait`]
    /// keeps it. Unlike `wait` it does not pass on signals that reach this
    /// process, and it leaves stdin open.
    ///
    /// ```
    /// use std::time::Duration;
    /// // A current-thread runtime starts no thread: a direct spawn works.
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    /// rt.block_on(async {
    ///     let mut quick = nsrun::Spawn::new(["/bin/sh", "-c", "exit 7"]).spawn()?;
    ///     let mut slow = nsrun::Spawn::new(["/bin/sleep", "10"])
    ///         .timeout(Duration::from_millis(200))
    ///         .spawn()?;
    ///     assert_eq!(quick.wait_async().await?.code, Some(7));
    ///     assert_eq!(slow.wait_async().await?.signal, Some(libc::SIGKILL));
    ///     assert!(slow.timed_out());
    ///     Ok::<(), nsrun::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait_async(&mut self) -> Result<ExitStatus> {
        if let Some(st) = self.try_wait()? {
            return Ok(st);
        }
        let fd = match self.exit_fd() {
            Some(f) => f
                .try_clone_to_owned()
                .map_err(|e| io_error("dup the child's exit fd", e))?,
            // No pidfd (a kernel before 5.3): nothing to await; waiting
            // blocks this worker thread.
            None => return self.wait(),
        };
        let exit = register(fd, "the child's exit fd")?;
        let deadline = match self.deadline() {
            Some(d) if !d.expired() => Some(register(timer(d.poll_ms())?, "a timerfd")?),
            _ => None,
        };
        loop {
            // Readiness is cleared before try_wait looks: an exit after
            // the look is a fresh edge that wakes us again.
            poll_fn(|cx| {
                let mut woke = false;
                for fd in std::iter::once(&exit).chain(deadline.as_ref()) {
                    if let Poll::Ready(r) = fd.poll_read_ready(cx) {
                        r?.clear_ready();
                        woke = true;
                    }
                }
                match woke {
                    true => Poll::Ready(Ok::<(), std::io::Error>(())),
                    false => Poll::Pending,
                }
            })
            .await
            .map_err(|e| io_error("await the child's exit", e))?;
            if let Some(st) = self.try_wait()? {
                return Ok(st);
            }
        }
    }

    /// Its stdin (with `Stdio::Pipe`) as a tokio pipe; takes it from
    /// [`Child::stdin`]. On a runtime with IO enabled.
    pub fn stdin_async(&mut self) -> Option<Result<pipe::Sender>> {
        self.stdin
            .take()
            .map(|f| pipe::Sender::from_file(f).map_err(|e| io_error("async stdin", e)))
    }

    /// Its stdout (with `Stdio::Pipe`) as a tokio pipe; takes it from
    /// [`Child::stdout`].
    pub fn stdout_async(&mut self) -> Option<Result<pipe::Receiver>> {
        self.stdout
            .take()
            .map(|f| pipe::Receiver::from_file(f).map_err(|e| io_error("async stdout", e)))
    }

    /// Its stderr (with `Stdio::Pipe`) as a tokio pipe; takes it from
    /// [`Child::stderr`].
    pub fn stderr_async(&mut self) -> Option<Result<pipe::Receiver>> {
        self.stderr
            .take()
            .map(|f| pipe::Receiver::from_file(f).map_err(|e| io_error("async stderr", e)))
    }
}
