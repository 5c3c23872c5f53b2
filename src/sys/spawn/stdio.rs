//! The standard streams of a started process: opened by the parent before
//! the clone, put in place by the process in all the namespaces.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::message::pipe;
use super::Stdio;
use crate::error::{Context, Result};
use crate::sys::ops;

/// The child's ends and the parent's ends of the standard streams.
pub(crate) struct StdioFds {
    pub(crate) child: [Option<OwnedFd>; 3],
    pub(crate) parent: [Option<OwnedFd>; 3],
    /// What each child end is, for `--trace` and `--plan` (whose fd
    /// numbers differ).
    pub(crate) kinds: [&'static str; 3],
}

/// Open what `spec` names. Under `--plan` a file target is not created
/// (nor truncated): it is recorded, and the planned child gets /dev/null.
pub(crate) fn open_stdio(spec: &[Stdio; 3]) -> Result<StdioFds> {
    let mut out = StdioFds {
        child: [None, None, None],
        parent: [None, None, None],
        kinds: ["", "", ""],
    };
    let null = |write: bool| -> Result<OwnedFd> {
        let f = std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .op(|| "open /dev/null".into())?;
        Ok(OwnedFd::from(f))
    };
    for (i, s) in spec.iter().enumerate() {
        let write = i > 0;
        let (c, p) = match s {
            Stdio::Inherit => (None, None),
            Stdio::Null => (Some(null(write)?), None),
            Stdio::Pipe => {
                let (r, w) = pipe()?;
                if write {
                    (Some(w), Some(r))
                } else {
                    (Some(r), Some(w))
                }
            }
            Stdio::Path(p) => {
                let how = if write {
                    "O_WRONLY|O_CREAT|O_TRUNC"
                } else {
                    "O_RDONLY"
                };
                let opened = ops::act(
                    || format!("open({p:?}, {how})"),
                    || {
                        let mut o = std::fs::OpenOptions::new();
                        match write {
                            true => o.write(true).create(true).truncate(true),
                            false => o.read(true),
                        };
                        o.open(p)
                            .map(|f| Some(OwnedFd::from(f)))
                            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
                    },
                )
                .op(|| format!("open {}", p.display()))?;
                // Under --plan nothing was opened: the planned child gets /dev/null.
                match opened {
                    Some(f) => (Some(f), None),
                    None => (Some(null(write)?), None),
                }
            }
            Stdio::Fd(fd) => {
                // SAFETY: dup only reads the fd the caller named; validate
                // checked nothing about it, so a closed one fails here.
                let d = nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) })
                    .op(|| format!("dup fd {fd}"))?;
                (Some(d), None)
            }
        };
        out.kinds[i] = match s {
            Stdio::Inherit => "",
            Stdio::Null => "/dev/null",
            Stdio::Pipe => "pipe",
            Stdio::Path(_) => "file",
            Stdio::Fd(_) => "fd",
        };
        out.child[i] = c;
        out.parent[i] = p;
    }
    Ok(out)
}

impl StdioFds {
    /// The fd numbers, for a child with its own copy of the fd table.
    pub(crate) fn raw(&self) -> [[Option<RawFd>; 3]; 2] {
        let r = |a: &[Option<OwnedFd>; 3]| a.each_ref().map(|f| f.as_ref().map(|f| f.as_raw_fd()));
        [r(&self.child), r(&self.parent)]
    }

    /// Owned again from [`StdioFds::raw`].
    ///
    /// # Safety
    /// Only in a process whose fd table is a copy: the fds are closed
    /// there while the original owner closes its own.
    pub(crate) unsafe fn from_raw(
        fds: [[Option<RawFd>; 3]; 2],
        kinds: [&'static str; 3],
    ) -> StdioFds {
        // SAFETY: per the contract above.
        let o = |a: [Option<RawFd>; 3]| a.map(|f| f.map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        StdioFds {
            child: o(fds[0]),
            parent: o(fds[1]),
            kinds,
        }
    }

    /// Put the child's ends on fds 0-2 and close the parent's ends.
    pub(crate) fn apply(&mut self) -> Result<()> {
        for (i, fd) in self.child.iter_mut().enumerate() {
            if let Some(fd) = fd.take() {
                let raw = fd.as_raw_fd();
                let kind = self.kinds[i];
                ops::act(
                    || format!("dup2({kind}, {i})"),
                    || {
                        // SAFETY: dup2 onto a standard stream; dup2 clears CLOEXEC.
                        let rc = unsafe { libc::dup2(raw, i as RawFd) };
                        Errno::result(rc).map(drop)
                    },
                )
                .op(|| format!("dup2 onto fd {i}"))?;
            }
        }
        if !ops::planning() {
            // Under --plan these are the planned process's pipes, still
            // nsrun's to hand out.
            for fd in self.parent.iter_mut() {
                fd.take();
            }
        }
        Ok(())
    }
}
