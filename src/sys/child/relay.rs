//! Waiting for a process with a terminal of its own (`tty = true`) while
//! ours is relayed to it: our terminal raw, keys to its master, its
//! screen to our stdout, window size changes passed on.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::{drain, poll_files, read_into, read_ready, Child};
use crate::error::{Context, Error, Result};
use crate::sys::init;
use crate::sys::process::ExitStatus;
use crate::sys::pty::{self, RawMode};

/// Keys typed ahead of what the program reads: at most this much is held
/// before we stop reading our terminal.
const AHEAD: usize = 1 << 16;

impl Child {
    /// Give it its terminal's master end: relayed to our terminal when
    /// `relay`, else the recipe's as [`Child::tty`].
    pub(crate) fn set_tty(&mut self, master: OwnedFd, relay: bool) -> Result<()> {
        if !relay {
            let copy = master.try_clone().op(|| "dup the pty master".into())?;
            self.tty = Some(File::from(copy));
        }
        self.tty_master = Some(master);
        self.relay = relay;
        Ok(())
    }

    /// Whether waiting relays its terminal to ours.
    pub fn tty_relayed(&self) -> bool {
        self.relay
    }

    /// Set the size of its terminal (`tty`); the kernel tells the
    /// program with SIGWINCH.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        if self.pid == crate::sys::ops::PLANNED_PID {
            crate::sys::ops::record(|| format!("ioctl(tty, TIOCSWINSZ, {rows}x{cols})"));
            return Ok(());
        }
        let Some(m) = &self.tty_master else {
            return Err(Error::Invalid(
                "resize: the process has no terminal of its own (spawn it with tty = true)".into(),
            ));
        };
        let w = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        pty::set_size(m.as_raw_fd(), &w)
    }

    /// `event_loop` with the terminal relayed: our stdin goes raw and to
    /// the master, the master to our stdout, SIGWINCH becomes the
    /// master's new size, and the forwarded signals go to the process
    /// (Ctrl-C is a byte on the way: the program's terminal makes it a
    /// SIGINT for its foreground group). Our terminal's modes come back
    /// however this returns.
    pub(super) fn relay_loop(
        &mut self,
        mut files: [Option<File>; 2],
        bufs: &mut [Vec<u8>; 2],
    ) -> Result<ExitStatus> {
        self.not_observer()?;
        let master = self
            .tty_master
            .as_ref()
            .map(|m| m.as_raw_fd())
            .ok_or_else(|| Error::Invalid("no terminal to relay".into()))?;
        self.stdin.take();
        let mut handled = SigSet::empty();
        for s in init::FORWARDED {
            handled.add(s);
        }
        // Our size follows the terminal's; a stop from outside (kill
        // -TSTP) or one for touching the terminal from the background
        // would leave it raw under a stopped nsrun.
        for s in [
            Signal::SIGWINCH,
            Signal::SIGTSTP,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
        ] {
            handled.add(s);
        }
        let mut old = SigSet::empty();
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), Some(&mut old));
        let r = (|| {
            let sfd =
                SignalFd::with_flags(&handled, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                    .op(|| "signalfd".into())?;
            set_nonblock(master)?;
            // Taken after the signals are ours: a SIGTSTP cannot stop us raw.
            let raw = RawMode::enter(0)?;
            if raw.is_some() {
                // The size may have changed since the spawn.
                if let Some(w) = pty::window_size(0) {
                    let _ = pty::set_size(master, &w);
                }
            }
            let mut keys: Vec<u8> = Vec::new();
            let mut stdin_open = raw.is_some();
            let mut master_open = true;
            loop {
                if self.status.is_none() {
                    self.reap(true)?;
                }
                if let Some(st) = self.status {
                    // What it showed last, and what the pipes hold.
                    if master_open {
                        copy_out(master, 1, true);
                    }
                    for (f, buf) in files.iter_mut().zip(bufs.iter_mut()) {
                        if let Some(f) = f.take() {
                            drain(f.as_raw_fd(), buf);
                        }
                    }
                    drop(raw);
                    return Ok(st);
                }
                let mut timeout_ms = -1;
                if let Some(d) = &self.deadline {
                    if d.expired() {
                        timeout_ms = 50;
                    } else {
                        timeout_ms = d.poll_ms();
                    }
                }
                let poll = |fd: RawFd, events: libc::c_short| libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                };
                let mut fds = vec![poll(sfd.as_raw_fd(), libc::POLLIN)];
                match &self.pidfd {
                    Some(p) => fds.push(poll(p.as_raw_fd(), libc::POLLIN)),
                    None => {
                        timeout_ms = if timeout_ms < 0 {
                            50
                        } else {
                            timeout_ms.min(50)
                        }
                    }
                }
                let stdin_at = fds.len();
                if stdin_open && keys.len() < AHEAD {
                    fds.push(poll(0, libc::POLLIN));
                }
                let master_at = fds.len();
                if master_open {
                    let mut ev = libc::POLLIN;
                    if !keys.is_empty() {
                        ev |= libc::POLLOUT;
                    }
                    fds.push(poll(master, ev));
                }
                let files_at = fds.len();
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
                    d.expire();
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    if sig == libc::SIGWINCH {
                        if let Some(w) = pty::window_size(0) {
                            let _ = pty::set_size(master, &w);
                        }
                    } else if init::FORWARDED.iter().any(|s| *s as i32 == sig) {
                        let _ = self.kill(sig);
                    }
                }
                if fds.len() > stdin_at && stdin_at < master_at && fds[stdin_at].revents != 0 {
                    match read_into(0, &mut keys) {
                        Ok(0) => stdin_open = false,
                        Ok(_) | Err(Errno::EINTR | Errno::EAGAIN) => {}
                        Err(_) => stdin_open = false,
                    }
                }
                if master_open && master_at < files_at {
                    let rev = fds[master_at].revents;
                    if rev & libc::POLLOUT != 0 && !keys.is_empty() {
                        // SAFETY: write(2) from a live buffer.
                        let n = unsafe { libc::write(master, keys.as_ptr().cast(), keys.len()) };
                        if n > 0 {
                            keys.drain(..n as usize);
                        }
                    }
                    if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                        && !copy_out(master, 1, false)
                    {
                        // Every slave closed: nothing more to show or type.
                        master_open = false;
                        keys.clear();
                    }
                }
                read_ready(&fds[files_at..], &which, &mut files, bufs);
            }
        })();
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        r
    }
}

/// Copy what the master `from` holds to `to` (once, or with `all` until
/// it holds nothing more, at most [`super::DRAIN_LIMIT`] bytes: a process
/// left behind may write on). False once every slave end is closed.
fn copy_out(from: RawFd, to: RawFd, all: bool) -> bool {
    let mut buf = [0u8; 4096];
    let mut copied = 0;
    loop {
        // SAFETY: read(2) into a stack buffer.
        let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            // Our terminal gone (EIO, EPIPE): the output goes nowhere, but
            // the program is still read so that it never blocks.
            let _ = write_all(to, &buf[..n as usize]);
            copied += n as usize;
            if all && copied < super::DRAIN_LIMIT {
                continue;
            }
            return true;
        }
        if n == 0 {
            return false;
        }
        return match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN => true,
            // EIO: the last slave end closed.
            _ => false,
        };
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        // SAFETY: write(2) from a live slice.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 1000) };
                    continue;
                }
                e => return Err(e),
            }
        }
        data = &data[n as usize..];
    }
    Ok(())
}

fn set_nonblock(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on an fd we own.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(Error::sys(
            "fcntl O_NONBLOCK on the pty master",
            Errno::last(),
        ));
    }
    Ok(())
}
