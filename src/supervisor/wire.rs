//! What travels between a host and its supervisor: JSON messages on
//! SOCK_SEQPACKET sockets (one message per send, never split or merged,
//! so many threads may send on one socket at once), fds beside them by
//! SCM_RIGHTS.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sys::process::ExitStatus;
use crate::sys::spawn::remote::{FdReq, SpawnRequest};

/// The first message on the control socket: the helper runs and speaks
/// this protocol.
pub(crate) const HELLO: &str = "nsrun-supervisor 1";

/// The most fds one message carries (the kernel's SCM_MAX_FD is 253).
const MAX_FDS: usize = 8;

/// A request on the control socket. Its first fd is the connection the
/// answer and the status come back on; the fds its stdio names follow.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    /// The host's working directory now (empty: unknown), which relative
    /// paths of the request are resolved against.
    pub(crate) cwd: Bytes,
    pub(crate) job: JobRequest,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum JobRequest {
    Spawn(Box<SpawnRequest>),
    Recipe {
        path: Bytes,
        args: Vec<String>,
        /// The host's environment now: the recipe's.
        env: Vec<(Bytes, Bytes)>,
        stdio: [FdReq; 3],
    },
}

/// The supervisor's answer to a request (the pidfd rides along).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Started { pid: i32, group: bool },
    Failed(WireError),
}

/// An [`Error`] as data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    Sys { op: String, errno: i32 },
    Invalid(String),
    Child(String),
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        match e {
            Error::Sys { op, errno } => WireError::Sys {
                op: op.clone(),
                errno: *errno as i32,
            },
            Error::Invalid(m) => WireError::Invalid(m.clone()),
            other => WireError::Child(other.to_string()),
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Sys { op, errno } => Error::sys(op, Errno::from_raw(errno)),
            WireError::Invalid(m) => Error::Invalid(m),
            WireError::Child(m) => Error::Child(m),
        }
    }
}

/// How the child ended, sent once the supervisor reaped it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Status {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) core_dumped: bool,
    pub(crate) timed_out: bool,
}

impl Status {
    pub(crate) fn new(st: ExitStatus, timed_out: bool) -> Status {
        Status {
            code: st.code,
            signal: st.signal,
            core_dumped: st.core_dumped,
            timed_out,
        }
    }
    pub(crate) fn exit_status(&self) -> ExitStatus {
        ExitStatus {
            code: self.code,
            signal: self.signal,
            core_dumped: self.core_dumped,
        }
    }
}

/// A SEQPACKET socket pair, close-on-exec.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    crate::sys::fs::unix_socketpair(libc::SOCK_SEQPACKET)
}

/// Send `msg` as JSON with `fds`. A peer that is gone is EPIPE, never
/// SIGPIPE.
pub(crate) fn send<T: Serialize>(sock: BorrowedFd, msg: &T, fds: &[RawFd]) -> Result<()> {
    let data =
        serde_json::to_vec(msg).map_err(|e| Error::Invalid(format!("supervisor message: {e}")))?;
    send_bytes(sock, &data, fds)
}

pub(crate) fn send_bytes(sock: BorrowedFd, data: &[u8], fds: &[RawFd]) -> Result<()> {
    if fds.len() > MAX_FDS {
        return Err(Error::Invalid(format!(
            "supervisor message: {} fds, at most {MAX_FDS}",
            fds.len()
        )));
    }
    match crate::sys::channel::sendmsg_fds(sock, data, fds) {
        Ok(_) => Ok(()),
        Err(Errno::EMSGSIZE) => Err(Error::Invalid(format!(
            "supervisor message of {} bytes is larger than a socket message may be",
            data.len()
        ))),
        Err(e) => Err(Error::sys("sendmsg to the supervisor's socket", e)),
    }
}

/// What one receive gave.
pub(crate) enum Received {
    /// A message (in the buffer) and the fds that came with it.
    Message(Vec<OwnedFd>),
    /// The peer closed its end.
    Eof,
    /// Nothing yet (only when not blocking).
    Nothing,
}

/// Receive one message of at most `max` bytes into `data` (its old
/// contents are dropped; its memory is reused, never zeroed).
pub(crate) fn recv(
    sock: BorrowedFd,
    data: &mut Vec<u8>,
    max: usize,
    block: bool,
) -> Result<Received> {
    data.clear();
    data.reserve(max);
    let room = data.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: room.as_mut_ptr().cast(),
        iov_len: room.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid; fields are filled below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    let flags = libc::MSG_CMSG_CLOEXEC | if block { 0 } else { libc::MSG_DONTWAIT };
    let n = loop {
        // SAFETY: msg points at live buffers.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) };
        if n >= 0 {
            break n as usize;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN if !block => return Ok(Received::Nothing),
            e => return Err(Error::sys("recvmsg from the supervisor's socket", e)),
        }
    };
    // SAFETY: msg was just filled by recvmsg, cbuf still alive.
    let fds = unsafe { crate::sys::channel::received_fds(&msg) };
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(Error::Invalid(format!(
            "a supervisor message was cut short (more than {max} bytes or {} fds)",
            cbuf.len()
        )));
    }
    if n == 0 && fds.is_empty() {
        return Ok(Received::Eof);
    }
    // SAFETY: the kernel wrote n bytes into the spare capacity.
    unsafe { data.set_len(n) };
    Ok(Received::Message(fds))
}

/// Parse a JSON message.
pub(crate) fn parse<'a, T: Deserialize<'a>>(data: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(data)
        .map_err(|e| Error::Invalid(format!("a malformed {what} from the supervisor: {e}")))
}

/// A byte string (a path, an argument, an environment entry) on the wire:
/// a JSON string when it is UTF-8, as it nearly always is, else an array
/// of bytes. Plain `Vec<u8>` would be an array of numbers, four times the
/// size to send and parse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(t) => s.serialize_str(t),
            Err(_) => s.collect_seq(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Bytes, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Bytes, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_strings_cross_as_strings_or_arrays() {
        for b in [
            &b"/usr/bin/env"[..],
            b"",
            b"caf\xc3\xa9",
            b"\xff\xfe not utf-8",
        ] {
            let j = serde_json::to_string(&Bytes(b.to_vec())).unwrap();
            assert_eq!(j.starts_with('"'), std::str::from_utf8(b).is_ok(), "{j}");
            assert_eq!(serde_json::from_str::<Bytes>(&j).unwrap().0, b);
        }
    }
}
