//! `tty = true`: the program's own terminal. The pair is opened by the
//! parent before the clone, on the host's /dev/ptmx, so that the master
//! is ours without passing fds back; the slave becomes the streams left
//! to inherit, and the program's controlling terminal in a new session.
//! A sandbox with a /dev of its own has a devpts instance of its own for
//! the terminals its programs open, and binds this slave on /dev/console
//! (as bubblewrap binds the caller's), so that `tty` names it.
//!
//! The program holds no fd of the caller's terminal and its session has
//! another controlling terminal: TIOCSTI into the caller's terminal
//! would need CAP_SYS_ADMIN in the initial user namespace.

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::stdio::StdioFds;
use super::{Spawn, Stdio};
use crate::error::{Context, Error, Result};
use crate::sys::ops;
use crate::sys::pty::{self, Pty};

/// The parent's end of a new terminal, for the `Child`.
pub(super) struct Master {
    pub fd: OwnedFd,
    /// Relayed to our terminal while waiting (our stdin is one).
    pub relay: bool,
}

impl Spawn<'_> {
    /// The first standard stream the terminal becomes (left to inherit):
    /// the one made the controlling terminal.
    pub(super) fn tty_stream(&self) -> Option<usize> {
        if !self.tty {
            return None;
        }
        self.stdio.iter().position(|s| *s == Stdio::Inherit)
    }

    pub(super) fn validate_tty(&self) -> Result<()> {
        if self.tty && self.tty_stream().is_none() {
            return Err(Error::Invalid(
                "tty = true gives the program a terminal as the stdin, stdout or stderr left \
                 unset, but all three are set (ns.run makes stdout and stderr pipes, input is \
                 stdin): leave at least one unset"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Open the terminal and put its slave on every stream left to
    /// inherit. Under `--plan` nothing is opened: the planned child gets
    /// /dev/null and the recipe a /dev/null master.
    pub(super) fn open_tty(&self, stdio: &mut StdioFds) -> Result<Option<Master>> {
        if !self.tty {
            return Ok(None);
        }
        let relay = !self.tty_master && pty::is_tty(0);
        let opened = ops::act(
            || "open(\"/dev/ptmx\") (tty = true)".into(),
            || {
                Pty::open(relay.then_some(0))
                    .map(Some)
                    .map_err(|e| e.errno().unwrap_or(Errno::EIO))
            },
        )
        .op(|| "tty = true: open a new pty".into())?;
        let (master, slave) = match opened {
            Some(p) => (p.master, p.slave),
            None => {
                let null = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                    .op(|| "open /dev/null".into())?;
                let null = OwnedFd::from(null);
                (null.try_clone().op(|| "dup".into())?, null)
            }
        };
        for (i, s) in self.stdio.iter().enumerate() {
            if *s == Stdio::Inherit {
                stdio.child[i] = Some(slave.try_clone().op(|| "dup the pty slave".into())?);
                stdio.kinds[i] = "tty";
            }
        }
        Ok(Some(Master {
            fd: master,
            relay: relay && !ops::planning(),
        }))
    }

    /// In the main process, before its lock-down's filters: a new session
    /// whose controlling terminal is the new one.
    pub(super) fn enter_tty(&self) -> Result<()> {
        let Some(fd) = self.tty_stream() else {
            return Ok(());
        };
        if !self.new_session {
            ops::act(|| "setsid()".into(), || nix::unistd::setsid().map(drop))
                .op(|| "tty: setsid".into())?;
        }
        ops::act(
            || format!("ioctl({fd}, TIOCSCTTY, 0)"),
            || {
                // SAFETY: TIOCSCTTY on a standard stream, no pointer argument.
                Errno::result(unsafe { libc::ioctl(fd as i32, libc::TIOCSCTTY, 0) }).map(drop)
            },
        )
        .op(|| "tty: make the new terminal the controlling one (TIOCSCTTY)".into())
    }
}
