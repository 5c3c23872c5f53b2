//! Pseudo-terminals for `tty = true`: a new pair, its window size, and
//! our own terminal in raw mode for as long as we relay, restored on
//! every way out (drop, error, panic).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, Once};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// A new terminal: our master end and the program's slave end.
pub(crate) struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// The size a terminal has when ours does not give one (`stty size`
/// would otherwise say "0 0", which full-screen programs take badly).
const DEFAULT_SIZE: (u16, u16) = (24, 80);

impl Pty {
    /// Open a pair on the host's /dev/ptmx. The slave comes from the
    /// master itself (TIOCGPTPEER), never from a path that a process in
    /// another mount namespace could have replaced. Neither end becomes
    /// our controlling terminal. `like` is a terminal whose size and
    /// modes the new one starts with (ours, when we relay).
    pub(crate) fn open(like: Option<RawFd>) -> Result<Pty> {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: open(2) of a constant path.
        let m = unsafe { libc::open(c"/dev/ptmx".as_ptr(), flags) };
        if m < 0 {
            return Err(Error::sys("open /dev/ptmx (tty = true)", Errno::last()));
        }
        // SAFETY: a new fd that nothing else owns.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        // SAFETY: ioctls on the master we just opened (unlockpt, then the peer).
        let unlock = 0i32;
        if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) } < 0 {
            return Err(Error::sys("unlock the new pty (TIOCSPTLCK)", Errno::last()));
        }
        let s = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, flags) };
        if s < 0 {
            return Err(Error::sys(
                "open the pty's slave (TIOCGPTPEER)",
                Errno::last(),
            ));
        }
        // SAFETY: as above.
        let slave = unsafe { OwnedFd::from_raw_fd(s) };
        let pty = Pty { master, slave };
        let mut size = libc::winsize {
            ws_row: DEFAULT_SIZE.0,
            ws_col: DEFAULT_SIZE.1,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        if let Some(fd) = like {
            if let Some(w) = window_size(fd).filter(|w| w.ws_row > 0 && w.ws_col > 0) {
                size = w;
            }
            // The program sees the keys (erase, interrupt, …) our
            // terminal has; ours goes raw and passes them on as bytes.
            if let Ok(t) = nix::sys::termios::tcgetattr(unsafe_borrow(fd)) {
                let _ = nix::sys::termios::tcsetattr(
                    &pty.slave,
                    nix::sys::termios::SetArg::TCSANOW,
                    &t,
                );
            }
        }
        set_size(pty.master.as_raw_fd(), &size)?;
        Ok(pty)
    }
}

fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for the duration of one call on an fd the caller
    // holds open (our standard streams).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Whether `fd` is a terminal.
pub(crate) fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only queries.
    unsafe { libc::isatty(fd) == 1 }
}

/// The window size of terminal `fd`.
pub(crate) fn window_size(fd: RawFd) -> Option<libc::winsize> {
    let mut w = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w) } == 0).then_some(w)
}

/// Set the window size of the terminal whose master is `fd`: the kernel
/// sends SIGWINCH to its foreground process group.
pub(crate) fn set_size(fd: RawFd, w: &libc::winsize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, w) } < 0 {
        return Err(Error::sys(
            "set the terminal's size (TIOCSWINSZ)",
            Errno::last(),
        ));
    }
    Ok(())
}

/// The modes our terminal had before raw mode, for the panic hook.
static SAVED: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);
static HOOK: Once = Once::new();

fn restore(fd: RawFd, t: &libc::termios) {
    // SAFETY: tcsetattr from a termios tcgetattr filled. TCSAFLUSH would
    // drop what the user typed after the program ended; TCSANOW keeps it.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) };
}

/// Our terminal in raw mode; its modes come back when this is dropped
/// (errors and panics unwind through it) or, should a panic not unwind,
/// in the panic hook.
pub(crate) struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Raw mode on `fd`, when it is a terminal.
    pub(crate) fn enter(fd: RawFd) -> Result<Option<RawMode>> {
        if !is_tty(fd) {
            return Ok(None);
        }
        // SAFETY: termios is plain data that tcgetattr fills.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::tcgetattr(fd, &mut saved) } < 0 {
            return Err(Error::sys("tcgetattr on our terminal", Errno::last()));
        }
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if let Ok(Some((fd, t))) = SAVED.lock().map(|s| *s) {
                    restore(fd, &t);
                }
                prev(info)
            }));
        });
        if let Ok(mut s) = SAVED.lock() {
            *s = Some((fd, saved));
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: as above.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } < 0 {
            let e = Errno::last();
            if let Ok(mut s) = SAVED.lock() {
                *s = None;
            }
            return Err(Error::sys("put our terminal in raw mode (tcsetattr)", e));
        }
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore(self.fd, &self.saved);
        if let Ok(mut s) = SAVED.lock() {
            *s = None;
        }
    }
}

/// The path of the terminal on `fd` as this process sees it (ttyname(3):
/// /proc/self/fd checked against the device number, else a search of
/// /dev/pts and /dev), or `None` when it is not a terminal or has no name
/// here.
pub(crate) fn ttyname(fd: RawFd) -> Option<String> {
    let mut buf = [0 as libc::c_char; 4096];
    // SAFETY: ttyname_r writes a NUL-terminated name into buf.
    if unsafe { libc::ttyname_r(fd, buf.as_mut_ptr(), buf.len()) } != 0 {
        return None;
    }
    // SAFETY: NUL-terminated by ttyname_r.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}
