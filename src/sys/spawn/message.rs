//! What travels between the parent and the processes it starts before
//! their exec: a typed report on the error pipe (end of file without one
//! means the exec happened), and the pipes and socket that carry it.

use std::os::fd::{OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::{Context, Error, Result};

/// A child's report of why it did not exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A system call failed: the operation and its errno.
    Sys { op: String, errno: i32 },
    /// Any other failure, as its message.
    Failed(String),
}

impl Message {
    const SYS: u8 = b'S';
    const FAILED: u8 = b'M';
    /// One pipe write of at most PIPE_BUF bytes is atomic.
    const MAX: usize = 4000;

    pub(crate) fn of(e: &Error) -> Message {
        match e {
            Error::Sys { op, errno } => Message::Sys {
                op: op.clone(),
                errno: *errno as i32,
            },
            other => Message::Failed(other.to_string()),
        }
    }

    /// `S<errno>\0<op>` or `M<text>`, cut to one atomic pipe write.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            Message::Sys { op, errno } => {
                b.push(Self::SYS);
                b.extend_from_slice(errno.to_string().as_bytes());
                b.push(0);
                b.extend_from_slice(op.as_bytes());
            }
            Message::Failed(text) => {
                b.push(Self::FAILED);
                b.extend_from_slice(text.as_bytes());
            }
        }
        b.truncate(Self::MAX);
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Message {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match b.split_first() {
            Some((&Self::SYS, rest)) => {
                let mut parts = rest.splitn(2, |c| *c == 0);
                let num = parts.next().and_then(|n| std::str::from_utf8(n).ok());
                match (num.and_then(|n| n.parse().ok()), parts.next()) {
                    (Some(errno), Some(op)) => Message::Sys {
                        op: text(op),
                        errno,
                    },
                    _ => Message::Failed(text(b)),
                }
            }
            Some((&Self::FAILED, rest)) => Message::Failed(text(rest)),
            _ => Message::Failed(text(b)),
        }
    }

    pub(crate) fn into_error(self) -> Error {
        match self {
            Message::Sys { op, errno } => Error::sys(op, Errno::from_raw(errno)),
            Message::Failed(text) => Error::Child(text),
        }
    }
}

/// Report `e` on the error pipe `fd`. Allocates: a child sharing nsrun's
/// memory only gets here on its way out, with nsrun suspended.
pub(crate) fn report(fd: RawFd, e: &Error) {
    let msg = Message::of(e).encode();
    // SAFETY: writing a local buffer to our pipe; a pipe write of this size
    // is atomic.
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
}

/// Read a pipe to EOF (read_to_end would first fstat and lseek it for a
/// size hint: two system calls on every start).
/// What a child writes on the error pipe when it waits at its gate
/// ([`super::Spawn::gate`]): set up, not yet exec'd.
pub(crate) const READY: &[u8] = b"R";

/// The first report on the error pipe (one atomic write), or nothing at
/// end of file.
pub(crate) fn read_first(fd: &OwnedFd) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(n) => return buf[..n].to_vec(),
            Err(Errno::EINTR) => {}
            Err(_) => return Vec::new(),
        }
    }
}

pub(crate) fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match nix::unistd::read(&fd, &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => return out,
        }
    }
}

/// The channel PID 1 reports the main process's status on: a socket, not
/// a pipe, since a pipe can be opened anew through `/proc/PID/fd/N` by
/// anyone who can see that directory, and a socket cannot.
pub(crate) fn status_channel() -> Result<(OwnedFd, OwnedFd)> {
    crate::sys::fs::unix_socketpair(libc::SOCK_SEQPACKET)
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).op(|| "pipe".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_pipe() {
        for m in [
            Message::Sys {
                op: "mount /proc".into(),
                errno: libc::EPERM,
            },
            Message::Failed("setup: recipe.lua:3: boom".into()),
            Message::Failed(String::new()),
        ] {
            assert_eq!(Message::decode(&m.encode()), m);
        }
        // Whatever else arrives is shown, not lost.
        assert_eq!(Message::decode(b"S12x"), Message::Failed("S12x".into()));
        let long = Message::Failed("x".repeat(10_000)).encode();
        assert_eq!(long.len(), Message::MAX);
    }

    #[test]
    fn a_system_error_keeps_its_errno() {
        let e = Message::decode(&Message::of(&Error::sys("setns", Errno::EINVAL)).encode())
            .into_error();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
    }
}
