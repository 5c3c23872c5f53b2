//! Channels: a Unix socket pair carrying framed values and file
//! descriptors between nsrun and a process it started.
//!
//! # Wire format (version 1)
//!
//! The socket is an `AF_UNIX`, `SOCK_STREAM` one. Each message is one
//! frame:
//!
//! ```text
//! u32 LE  length L of the body (bytes after this 8-byte header), at most 64 MiB
//! u32 LE  number F of file descriptors sent with the frame, at most 253
//! L bytes body: the message's values, one after the other, until its end
//! ```
//!
//! The F descriptors travel as one `SCM_RIGHTS` control message of the
//! `sendmsg(2)` that carries the frame's first byte; a reader collects
//! them as they come and gives each frame the next F in order.
//!
//! A value is a tag byte and its data (all integers little-endian):
//!
//! | tag | value | data |
//! |-----|-------|------|
//! | 0 | nil | — |
//! | 1 | false | — |
//! | 2 | true | — |
//! | 3 | integer | i64 |
//! | 4 | float | f64 (IEEE 754 bits) |
//! | 5 | string (bytes) | u32 length, the bytes |
//! | 6 | table | u32 count of pairs, then key and value of each |
//! | 7 | fd | u32 index among the frame's F fds, u8 kind (0 file, 1 channel, 2 namespace) |
//!
//! Tables nest at most 100 deep and carry no cycles (the sender refuses
//! them); a table's keys are never nil. The fd kind is a hint of what the
//! sender had: the receiver makes a channel of kind 1, a namespace handle
//! of an fd the kernel says is a namespace, and a file of anything else.
//! A program that is not Lua needs nothing more than this to take part:
//! it reads 8 bytes, then L more, as the perl below does.
//!
//! ```
//! use std::time::Duration;
//! use nsrun::sys::channel::{Recv, Value};
//! use nsrun::{Namespace, Spawn};
//! // A program gets its end on the fd asked for: perl echoes one frame.
//! let echo = r#"open(my $c, "+<&=", 3) or die; binmode $c;
//!     read($c, my $h, 8) == 8 or die; my ($l) = unpack("V", $h);
//!     read($c, my $b, $l) == $l or die; syswrite($c, pack("VV", $l, 0) . $b)"#;
//! let mut child = Spawn::new(["perl", "-e", echo]).channel(3).spawn()?;
//! let ch = child.channel().expect("a channel");
//! ch.send(&[Value::Str(b"echo".to_vec()), Value::Int(7)])?;
//! let Recv::Message(got) = ch.recv(Some(Duration::from_secs(10)))? else {
//!     panic!("no answer")
//! };
//! assert!(matches!(&got[..], [Value::Str(s), Value::Int(7)] if s == b"echo"));
//! assert!(matches!(ch.recv(None)?, Recv::Closed)); // it exited
//! assert!(child.wait()?.success());
//!
//! // A function gets its end as its argument.
//! let mut child = Spawn::func_channel(|mut ch| match ch.recv(None) {
//!     Ok(Recv::Message(v)) => ch.send(&v).map_or(1, |_| 0),
//!     _ => 2,
//! })
//! .namespaces([Namespace::User, Namespace::Pid])
//! .spawn()?;
//! let ch = child.channel().expect("a channel");
//! ch.send(&[Value::Float(0.5)])?;
//! let Recv::Message(got) = ch.recv(Some(Duration::from_secs(10)))? else {
//!     panic!("no answer")
//! };
//! assert!(matches!(&got[..], [Value::Float(f)] if *f == 0.5));
//! assert!(child.wait()?.success());
//! # Ok::<(), nsrun::Error>(())
//! ```

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// The largest body a frame may have: a peer that claims more is broken
/// (or hostile) and must not make us allocate it.
pub const MAX_FRAME: usize = 64 << 20;
/// The most fds one frame may carry (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;
/// How deep tables may nest.
pub const MAX_DEPTH: usize = 100;

const HEADER: usize = 8;

/// A value a channel carries.
#[derive(Debug)]
pub enum Value {
    /// nil.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string: any bytes.
    Str(Vec<u8>),
    /// A table: its pairs, in no order.
    Table(Vec<(Value, Value)>),
    /// A file descriptor and what the sender had.
    Fd(OwnedFd, FdKind),
}

/// What a passed fd was on the sender's side (a hint for the receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A file, pipe, socket or anything else: received as a file.
    File,
    /// A channel end: received as a channel.
    Channel,
    /// A namespace file: received as a namespace handle.
    Namespace,
}

impl FdKind {
    fn code(self) -> u8 {
        match self {
            FdKind::File => 0,
            FdKind::Channel => 1,
            FdKind::Namespace => 2,
        }
    }
    fn from_code(c: u8) -> Option<FdKind> {
        Some(match c {
            0 => FdKind::File,
            1 => FdKind::Channel,
            2 => FdKind::Namespace,
            _ => return None,
        })
    }
}

/// What a receive found.
#[derive(Debug)]
pub enum Recv {
    /// One message's values.
    Message(Vec<Value>),
    /// The peer is gone (closed its end, or died), or our end was closed.
    Closed,
    /// Nothing whole came within the timeout.
    TimedOut,
}

/// A connected `AF_UNIX` stream socket pair, both ends close-on-exec.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    crate::sys::fs::unix_socketpair(libc::SOCK_STREAM)
}

/// One `sendmsg(2)` of `data` with `fds` as `SCM_RIGHTS`: the count of
/// bytes sent (maybe fewer than all; the fds went with the first).
/// Never raises SIGPIPE: a gone peer is `EPIPE`.
pub fn send_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(Error::Invalid(format!(
            "at most {MAX_FDS} fds go in one message, got {}",
            fds.len()
        )));
    }
    if data.is_empty() {
        if fds.is_empty() {
            return Ok(0);
        }
        // A stream socket sends no control data without a byte to carry it.
        return Err(Error::Invalid(
            "fds go with data: give one byte at least".into(),
        ));
    }
    sendmsg_fds(sock, data, fds).map_err(|e| Error::sys("sendmsg on the channel", e))
}

/// sendmsg(2) of `data` with `fds` as SCM_RIGHTS (MSG_NOSIGNAL, EINTR
/// retried): the bytes sent, or the errno. The one place a message with
/// fds is put together, for channels and the supervisor's socket alike.
pub(crate) fn sendmsg_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[RawFd],
) -> std::result::Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) } as usize;
    // u64s keep the control buffer aligned for cmsghdr; on the stack for
    // MAX_FDS (253) fds at the most: 1032 bytes.
    let mut control = [0u64; 160];
    if space > std::mem::size_of_val(&control) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: msghdr is plain data; every pointer set below stays valid
    // for the call, and the control buffer holds `space` bytes.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(c) as *mut RawFd,
                fds.len(),
            );
        }
        loop {
            let n = libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
            if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            break n;
        }
    };
    Errno::result(n).map(|n| n as usize)
}

/// The fds a received message carries (SCM_RIGHTS), now ours.
///
/// # Safety
/// `msg` is a header recvmsg(2) just filled, its control buffer alive.
pub(crate) unsafe fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: walking the control data the kernel wrote, within
    // msg_controllen (the caller's promise).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    fds
}

/// One `recvmsg(2)` into the spare room of `buf` (at least `max` bytes
/// made room for): the count of bytes read (0: the peer is gone) and the
/// fds that came, close-on-exec. More fds than [`MAX_FDS`] in one
/// message is an error (the kernel closed the rest).
pub fn recv_fds(
    sock: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<(usize, Vec<OwnedFd>)> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len().min(max),
    };
    // SAFETY: CMSG_SPACE is arithmetic.
    let space =
        unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: as in send_fds; the kernel writes at most iov_len bytes and
    // msg_controllen bytes of control data.
    let (n, msg) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            break n;
        };
        (n, msg)
    };
    if n < 0 {
        return Err(Error::sys("recvmsg on the channel", Errno::last()));
    }
    // SAFETY: msg was just filled by recvmsg; the kernel wrote n bytes
    // into the spare room.
    let fds = unsafe {
        let fds = received_fds(&msg);
        buf.set_len(buf.len() + n as usize);
        fds
    };
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(Error::Invalid(format!(
            "the peer sent more than {MAX_FDS} fds in one message (the rest were closed)"
        )));
    }
    Ok((n as usize, fds))
}

/// Encode `values` as one frame: the bytes and the fds to send with it.
pub fn encode(values: &[Value]) -> Result<(Vec<u8>, Vec<RawFd>)> {
    let mut out = vec![0u8; HEADER];
    let mut fds = Vec::new();
    for v in values {
        put(&mut out, &mut fds, v, 0)?;
    }
    let body = out.len() - HEADER;
    if body > MAX_FRAME {
        return Err(Error::Invalid(format!(
            "the message is {body} bytes, more than a channel takes ({MAX_FRAME})"
        )));
    }
    if fds.len() > MAX_FDS {
        return Err(Error::Invalid(format!(
            "the message holds {} fds, more than one message takes ({MAX_FDS})",
            fds.len()
        )));
    }
    out[..4].copy_from_slice(&(body as u32).to_le_bytes());
    out[4..8].copy_from_slice(&(fds.len() as u32).to_le_bytes());
    Ok((out, fds))
}

fn put(out: &mut Vec<u8>, fds: &mut Vec<RawFd>, v: &Value, depth: usize) -> Result<()> {
    if out.len() > MAX_FRAME + HEADER {
        // Stop early: a table shared many times over can grow without end.
        return Err(Error::Invalid(format!(
            "the message is more than a channel takes ({MAX_FRAME} bytes)"
        )));
    }
    match v {
        Value::Nil => out.push(0),
        Value::Bool(b) => out.push(if *b { 2 } else { 1 }),
        Value::Int(n) => {
            out.push(3);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(4);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            let len = u32::try_from(s.len())
                .ok()
                .filter(|n| (*n as usize) <= MAX_FRAME)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "a string of {} bytes is more than a channel takes ({MAX_FRAME})",
                        s.len()
                    ))
                })?;
            out.push(5);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s);
        }
        Value::Table(pairs) => {
            if depth >= MAX_DEPTH {
                return Err(Error::Invalid(format!(
                    "tables nest more than {MAX_DEPTH} deep"
                )));
            }
            out.push(6);
            out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
            for (k, v) in pairs {
                put(out, fds, k, depth + 1)?;
                put(out, fds, v, depth + 1)?;
            }
        }
        Value::Fd(fd, kind) => {
            out.push(7);
            out.extend_from_slice(&(fds.len() as u32).to_le_bytes());
            out.push(kind.code());
            fds.push(fd.as_raw_fd());
        }
    }
    Ok(())
}

/// Decode one frame's body with its fds (taken in order).
pub fn decode(body: &[u8], fds: Vec<OwnedFd>) -> Result<Vec<Value>> {
    let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    let mut r = Reader { b: body, pos: 0 };
    let mut out = Vec::new();
    while r.pos < body.len() {
        out.push(r.value(&mut fds, 0)?);
    }
    Ok(out)
}

struct Reader<'b> {
    b: &'b [u8],
    pos: usize,
}

fn bad(m: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("channel: a malformed message from the peer: {m}"))
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| bad("it ends inside a value"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn value(&mut self, fds: &mut [Option<OwnedFd>], depth: usize) -> Result<Value> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            0 => Value::Nil,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::Int(self.u64()? as i64),
            4 => Value::Float(f64::from_bits(self.u64()?)),
            5 => {
                let n = self.u32()? as usize;
                Value::Str(self.take(n)?.to_vec())
            }
            6 => {
                if depth >= MAX_DEPTH {
                    return Err(bad(format!("tables nest more than {MAX_DEPTH} deep")));
                }
                let n = self.u32()? as usize;
                // Each pair takes 2 bytes at least: a count past what is
                // left is a lie, not a reason to allocate.
                if n > (self.b.len() - self.pos) / 2 {
                    return Err(bad("a table counts more pairs than the message holds"));
                }
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.value(fds, depth + 1)?;
                    if matches!(k, Value::Nil) {
                        return Err(bad("a table key is nil"));
                    }
                    let v = self.value(fds, depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Table(pairs)
            }
            7 => {
                let i = self.u32()? as usize;
                let kind = self.take(1)?[0];
                let kind = FdKind::from_code(kind).ok_or_else(|| bad(format!("fd kind {kind}")))?;
                let fd = fds
                    .get_mut(i)
                    .ok_or_else(|| bad(format!("fd #{i} was not sent")))?
                    .take()
                    .ok_or_else(|| bad(format!("fd #{i} is used twice")))?;
                Value::Fd(fd, kind)
            }
            t => return Err(bad(format!("unknown tag {t}"))),
        })
    }
}

/// One end of a channel: messages of values and fds (see the module
/// docs for the format).
#[derive(Debug)]
pub struct Channel {
    fd: Option<OwnedFd>,
    /// Read but not yet a whole frame.
    buf: Vec<u8>,
    /// Fds received, not yet handed to a frame.
    fds: VecDeque<OwnedFd>,
    /// Under `--plan`: the stand-in for a process not started. Nothing
    /// arrives (it reads as closed); what is sent goes nowhere.
    planned: bool,
    /// The `timeout` of the process at the other end: a wait past it
    /// kills the process, and the channel then reads as closed.
    deadline: Option<std::sync::Arc<super::deadline::Deadline>>,
}

impl Channel {
    /// Two connected ends.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair()?;
        Ok((Channel::from_fd(a), Channel::from_fd(b)))
    }

    /// A channel over a connected stream socket (e.g. fd 3 of a program
    /// started with [`crate::Spawn::channel`]).
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel {
            fd: Some(fd),
            buf: Vec::new(),
            fds: VecDeque::new(),
            planned: false,
            deadline: None,
        }
    }

    /// The channel of a process `--plan` did not start: it reads as
    /// closed, and sends are swallowed (as the pipes of such a process).
    pub fn planned() -> Channel {
        Channel {
            fd: None,
            buf: Vec::new(),
            fds: VecDeque::new(),
            planned: true,
            deadline: None,
        }
    }

    /// Keep the deadline of the process at the other end: a `recv` that
    /// would wait past it kills the process (and then reads closed).
    pub fn set_deadline(&mut self, d: Option<std::sync::Arc<super::deadline::Deadline>>) {
        self.deadline = d;
    }

    /// Whether this is the stand-in of [`Channel::planned`].
    pub fn is_planned(&self) -> bool {
        self.planned
    }

    /// The socket, while open.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// Close our end: the peer reads the channel as closed.
    pub fn close(&mut self) {
        self.fd = None;
        self.buf = Vec::new();
        self.fds.clear();
    }

    /// Give up the socket (the channel is closed after).
    pub fn into_fd(mut self) -> Option<OwnedFd> {
        self.fd.take()
    }

    /// Send one message. `false`: the peer is gone (or our end is
    /// closed); nothing was sent.
    pub fn send(&mut self, values: &[Value]) -> Result<bool> {
        let (frame, fds) = encode(values)?;
        self.send_frame(&frame, &fds)
    }

    /// Send a frame [`encode`] made.
    pub fn send_frame(&mut self, frame: &[u8], fds: &[RawFd]) -> Result<bool> {
        if self.planned {
            return Ok(true);
        }
        let Some(sock) = self.fd.as_ref() else {
            return Ok(false);
        };
        let mut sent = 0;
        let mut first = true;
        while sent < frame.len() {
            let with = if first { fds } else { &[] };
            match send_fds(sock.as_fd(), &frame[sent..], with) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.errno(), Some(Errno::EPIPE | Errno::ECONNRESET)) => {
                    return Ok(false)
                }
                Err(e) => return Err(e),
            }
            first = false;
        }
        Ok(true)
    }

    /// Receive one message, waiting at most `timeout` (forever: `None`).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Recv> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(m) = self.whole_frame()? {
                return Ok(Recv::Message(m));
            }
            let Some(sock) = self.fd.as_ref() else {
                return Ok(Recv::Closed);
            };
            let raw = sock.as_raw_fd();
            let mut ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Rounded up: a poll of 0 ms for 0.4 ms left would spin.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            if let Some(d) = self.deadline.as_ref().filter(|d| !d.expired()) {
                if d.passed() {
                    // Killed: its end closes, which the next read sees.
                    d.expire();
                } else {
                    let left = d.poll_ms();
                    ms = if ms < 0 { left } else { ms.min(left) };
                }
            }
            let mut p = libc::pollfd {
                fd: raw,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, ms) };
            if rc < 0 {
                if Errno::last() == Errno::EINTR {
                    continue;
                }
                return Err(Error::sys("poll on the channel", Errno::last()));
            }
            if rc == 0 {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Recv::TimedOut);
                }
                continue;
            }
            // The rest of a frame whose length is known, in one read if
            // the socket holds it (a large message in few system calls).
            let want = match self.buf.get(..4) {
                Some(h) => {
                    let len = u32::from_le_bytes(h.try_into().expect("4 bytes")) as usize;
                    (HEADER + len.min(MAX_FRAME)).saturating_sub(self.buf.len())
                }
                None => 0,
            };
            match recv_fds(sock.as_fd(), &mut self.buf, want.clamp(1 << 16, 4 << 20)) {
                Ok((0, _)) => {
                    // What is left is a frame the peer never finished.
                    self.close();
                    return Ok(Recv::Closed);
                }
                Ok((_, fds)) => {
                    self.fds.extend(fds);
                    // Fds come with their frame's first byte, so a peer
                    // that is ahead by more than a frame's worth is
                    // trying to fill our fd table.
                    if self.fds.len() > 2 * MAX_FDS {
                        self.close();
                        return Err(bad(format!(
                            "more than {} fds sent ahead of their frames; the channel was closed",
                            2 * MAX_FDS
                        )));
                    }
                }
                Err(e) if e.errno() == Some(Errno::ECONNRESET) => {
                    self.close();
                    return Ok(Recv::Closed);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next message, if the buffer holds all of it.
    fn whole_frame(&mut self) -> Result<Option<Vec<Value>>> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        let nfds = u32::from_le_bytes(self.buf[4..8].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME || nfds > MAX_FDS {
            self.close();
            return Err(bad(format!(
                "a frame of {len} bytes with {nfds} fds (at most {MAX_FRAME} and {MAX_FDS}); \
                 the channel was closed"
            )));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        // The fds of a frame arrive with its first byte, so by now.
        if self.fds.len() < nfds {
            self.close();
            return Err(bad(format!(
                "a frame announced {nfds} fds but {} came; the channel was closed",
                self.fds.len()
            )));
        }
        let fds: Vec<OwnedFd> = self.fds.drain(..nfds).collect();
        let r = decode(&self.buf[HEADER..HEADER + len], fds);
        self.buf.drain(..HEADER + len);
        if self.buf.is_empty() {
            // A large message's room goes back.
            self.buf = Vec::new();
        }
        r.map(Some)
    }
}

impl AsRawFd for Channel {
    /// The socket's fd, -1 once closed.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }
}

/// What [`crate::Spawn`] does for a channel: the ends, made before the
/// start, and where the process's end goes.
pub(crate) struct SpawnChannel {
    /// Ours (the parent's); closed in the child.
    pub ours: Option<Channel>,
    /// The process's; closed in the parent once it started.
    pub theirs: Option<OwnedFd>,
    /// The fd the program gets it on (`None`: where it is, for a function
    /// that was handed it).
    pub at: Option<RawFd>,
    /// A copy of `theirs` holding `at` in the parent while the process
    /// starts, so that no fd the start makes takes that number.
    pub placeholder: Option<OwnedFd>,
    /// An error making the pair, raised by `spawn`.
    pub error: Option<Error>,
}

impl SpawnChannel {
    /// A new pair; the program's end on fd `at`, or (`None`) left where
    /// it is for a function that is handed it.
    pub(crate) fn new(at: Option<RawFd>) -> SpawnChannel {
        let mut s = SpawnChannel {
            ours: None,
            theirs: None,
            at,
            placeholder: None,
            error: None,
        };
        match socketpair() {
            Ok((a, b)) => {
                s.ours = Some(Channel::from_fd(a));
                s.theirs = Some(b);
            }
            Err(e) => s.error = Some(e),
        }
        s
    }

    /// Before the clone: hold fd `at`, so it is free of the start's own fds.
    pub(crate) fn prepare(&mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if crate::sys::ops::planning() {
            // No process will hold the other end: a planned function
            // reads its channel as closed, as a planned pipe reads EOF.
            self.ours = None;
        }
        let (Some(at), Some(theirs)) = (self.at, self.theirs.as_ref()) else {
            return Ok(());
        };
        // SAFETY: F_GETFD only queries.
        if unsafe { libc::fcntl(at, libc::F_GETFD) } < 0 {
            // SAFETY: dup3 onto a free fd number, which the OwnedFd then owns.
            let rc = unsafe { libc::dup3(theirs.as_raw_fd(), at, libc::O_CLOEXEC) };
            if rc < 0 {
                return Err(Error::sys(format!("dup3 onto fd {at}"), Errno::last()));
            }
            // SAFETY: dup3 made fd `at`.
            self.placeholder = Some(unsafe { OwnedFd::from_raw_fd(at) });
        }
        Ok(())
    }

    /// In the child, first thing: our copy of the parent's end goes (so
    /// the parent's death reads as closed), the process's end goes on
    /// `at`. Raw calls only: a child may share the parent's memory.
    pub(crate) fn in_child(&self) -> Result<()> {
        if !crate::sys::ops::planning() {
            if let Some(o) = self.ours.as_ref().and_then(|c| c.fd.as_ref()) {
                // SAFETY: closing the child's copy in its own fd table.
                unsafe { libc::close(o.as_raw_fd()) };
            }
        }
        let (Some(at), Some(theirs)) = (self.at, self.theirs.as_ref()) else {
            return Ok(());
        };
        let raw = theirs.as_raw_fd();
        crate::sys::ops::act(
            || format!("dup2(channel, {at})"),
            || {
                // SAFETY: dup2 onto the fd the program gets the channel on;
                // the start keeps that number free of its own fds (prepare).
                Errno::result(unsafe { libc::dup2(raw, at) }).map(drop)
            },
        )
        .map_err(|e| Error::sys(format!("dup2 the channel onto fd {at}"), e))
    }

    /// In the parent once the process started: its end and the
    /// placeholder go; ours is the process's channel.
    pub(crate) fn started(&mut self) -> Channel {
        self.theirs = None;
        self.placeholder = None;
        self.ours.take().unwrap_or_else(Channel::planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_a_pair() {
        let (mut a, mut b) = Channel::pair().unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        let vals = vec![
            Value::Nil,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(1.5),
            Value::Str(b"a\0b".to_vec()),
            Value::Table(vec![(Value::Int(1), Value::Str(b"x".to_vec()))]),
            Value::Fd(r, FdKind::File),
        ];
        assert!(a.send(&vals).unwrap());
        let Recv::Message(got) = b.recv(Some(Duration::from_secs(5))).unwrap() else {
            panic!("no message")
        };
        assert_eq!(got.len(), 7);
        assert!(matches!(got[6], Value::Fd(_, FdKind::File)));
        drop(a);
        assert!(matches!(b.recv(None).unwrap(), Recv::Closed));
    }

    #[test]
    fn a_lying_peer_is_an_error_not_an_allocation() {
        assert!(decode(&[6, 0xff, 0xff, 0xff, 0xff], Vec::new()).is_err());
        assert!(decode(&[5, 0xff, 0xff, 0xff, 0x7f], Vec::new()).is_err());
        assert!(decode(&[7, 0, 0, 0, 0, 0], Vec::new()).is_err());
        assert!(decode(&[9], Vec::new()).is_err());
        let mut deep = vec![];
        for _ in 0..200 {
            deep.extend_from_slice(&[6, 1, 0, 0, 0, 2]);
        }
        assert!(decode(&deep, Vec::new()).is_err());
    }

    #[test]
    fn recv_times_out() {
        let (_a, mut b) = Channel::pair().unwrap();
        let t = Instant::now();
        assert!(matches!(
            b.recv(Some(Duration::from_millis(50))).unwrap(),
            Recv::TimedOut
        ));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }
}
