//! Pipes to a child process: reads in Lua's formats and writes, both
//! keeping the process's deadline.

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, MetaMethod, UserData, UserDataFields, UserDataMethods, Value};
use nix::errno::Errno;

use crate::bindings::args::{Args, Fail, R};
use crate::sys::child::{self, Deadline};

/// One end of a pipe to a child: `read(fmt)`, `lines(fmt)`, `write(...)`,
/// `close()`. Every call that may block keeps the process's deadline.
pub(crate) struct Pipe {
    write: bool,
    /// A terminal's master end (`p.tty`): read and written both.
    duplex: bool,
    end: RefCell<End>,
    deadline: Option<Arc<Deadline>>,
    /// The process that made it: only there does `<close>` act.
    owner: u32,
}

/// Where a pipe end stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Closed by `close()`: using it is an error.
    Closed,
    /// Closed because the process was waited for (or timed out): reads
    /// return what was left, then end of file; writes fail.
    Finished,
    /// Given to another process as its stdin/stdout/stderr.
    Given,
}

struct End {
    file: Option<File>,
    /// Read from the pipe but not yet returned (readers).
    buf: Vec<u8>,
    pos: usize,
    state: State,
}

impl End {
    /// Give back the read buffer's spare room: Lua's collector does not
    /// see it, and a loop of spawns would hold one 64 KiB buffer per pipe
    /// until a collection.
    fn release(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        } else {
            self.buf.shrink_to_fit();
        }
    }
}

/// How to read: Lua's formats.
#[derive(Clone, Copy)]
enum Fmt {
    All,
    Line { keep_newline: bool },
    Count(u64),
}

impl Pipe {
    pub(crate) fn new(f: File, write: bool, deadline: Option<Arc<Deadline>>) -> Self {
        if write && deadline.is_some() {
            // Writes wait in poll(2), with the time left, never in write(2):
            // only our end of the pipe is non-blocking.
            let fd = f.as_raw_fd();
            // SAFETY: fcntl on an fd we own.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        Pipe {
            write,
            duplex: false,
            end: RefCell::new(End {
                file: Some(f),
                buf: Vec::new(),
                pos: 0,
                state: State::Open,
            }),
            deadline,
            owner: std::process::id(),
        }
    }

    /// A terminal's master end: reads are a reader's (the last slave end
    /// closed is end of file), writes a writer's, and it cannot be given.
    pub(super) fn duplex(f: File, deadline: Option<Arc<Deadline>>) -> Self {
        let mut p = Pipe::new(f, true, deadline);
        p.duplex = true;
        p
    }

    /// The process was waited for: keep what a reader holds now, close.
    pub(super) fn finish(&self) {
        let mut e = self.end.borrow_mut();
        if e.state != State::Open {
            return;
        }
        if let Some(f) = e.file.take() {
            if !self.write || self.duplex {
                child::drain(f.as_raw_fd(), &mut e.buf);
            }
        }
        e.release();
        e.state = State::Finished;
    }

    /// `close()`: nothing more goes through it.
    pub(super) fn close(&self) {
        let mut e = self.end.borrow_mut();
        e.file = None;
        e.buf = Vec::new();
        e.pos = 0;
        e.state = State::Closed;
    }

    /// The fd to give another process as a standard stream (`stdin =
    /// p.stdout`); the pipe stays ours until [`Pipe::give_up`], so that a
    /// spawn that fails leaves it as it was. `write` is the end wanted.
    pub(crate) fn lend(&self, write: bool) -> Result<i32, String> {
        let e = self.end.borrow();
        if self.duplex {
            return Err(
                "a terminal's master end (p.tty) cannot be given to another process".into(),
            );
        }
        if write != self.write {
            return Err(match self.write {
                true => "the write end of a pipe (a process's stdin) cannot be read from",
                false => {
                    "the read end of a pipe (a process's stdout or stderr) cannot be written to"
                }
            }
            .into());
        }
        let Some(f) = &e.file else {
            return Err(match e.state {
                State::Given => "the pipe was already given to another process".into(),
                State::Open => "the pipe is at end of file".into(),
                other => Self::closed_message(other).into(),
            });
        };
        if e.pos < e.buf.len() {
            // Those bytes left the pipe: the next process would miss them.
            return Err("the pipe holds data already read from it (read it first)".into());
        }
        let fd = f.as_raw_fd();
        drop(e);
        if self.write && self.deadline.is_some() {
            self.set_nonblock(false);
        }
        Ok(fd)
    }

    /// The fd while the pipe is open (a channel sends a copy of it).
    pub(crate) fn raw_fd(&self) -> Option<i32> {
        self.end.borrow().file.as_ref().map(|f| f.as_raw_fd())
    }

    /// Undo [`Pipe::lend`] when the process was not started.
    pub(crate) fn unlend(&self) {
        if self.write && self.deadline.is_some() {
            self.set_nonblock(true);
        }
    }

    /// A process started with the pipe's fd: ours is closed, so that the
    /// other end sees the new process as the only reader or writer.
    pub(crate) fn give_up(&self) {
        let mut e = self.end.borrow_mut();
        e.file = None;
        e.buf = Vec::new();
        e.pos = 0;
        e.state = State::Given;
    }

    /// Our end is non-blocking only while we write to it with a deadline:
    /// a process given it expects it blocking (the flag is on the open
    /// file, shared with its copy).
    fn set_nonblock(&self, on: bool) {
        let e = self.end.borrow();
        let Some(f) = &e.file else { return };
        let fd = f.as_raw_fd();
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            let fl = if on {
                fl | libc::O_NONBLOCK
            } else {
                fl & !libc::O_NONBLOCK
            };
            libc::fcntl(fd, libc::F_SETFL, fl);
        }
    }

    /// For `output()`: what was read but not returned, and the file;
    /// `None` when it was closed by `close()`.
    pub(super) fn take_rest(&self) -> Option<(Vec<u8>, Option<File>)> {
        let mut e = self.end.borrow_mut();
        if matches!(e.state, State::Closed | State::Given) || (self.write && !self.duplex) {
            return None;
        }
        let pos = e.pos;
        let mut rest = std::mem::take(&mut e.buf);
        rest.drain(..pos);
        e.pos = 0;
        e.state = State::Finished;
        Some((rest, e.file.take()))
    }

    fn closed_message(state: State) -> &'static str {
        match state {
            State::Finished => "the pipe was closed when its process was waited for",
            State::Given => "the pipe was given to another process as its stdio",
            _ => "the pipe is closed",
        }
    }

    /// Wait until `fd` is ready for `events`, at most until the deadline;
    /// false once it passed and the process was killed. Past the deadline
    /// only a pipe whose other end is closed for good (an ended process)
    /// is let be: anything else would block or go on past it.
    fn ready(&self, fd: i32, events: libc::c_short) -> Result<bool, Errno> {
        let Some(d) = &self.deadline else {
            return Ok(true);
        };
        loop {
            if d.expired() {
                return Ok(false);
            }
            let mut p = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, d.poll_ms()) };
            if rc < 0 && Errno::last() != Errno::EINTR {
                return Err(Errno::last());
            }
            let closed = p.revents & (libc::POLLHUP | libc::POLLERR) != 0;
            if d.passed() && !closed {
                d.expire();
                return Ok(false);
            }
            if rc > 0 {
                return Ok(true);
            }
        }
    }

    /// Read more into the buffer: the count read, 0 at end of file. Once
    /// the deadline passed, what the pipe holds then is the rest.
    fn fill(&self, e: &mut End) -> Result<usize, Errno> {
        loop {
            let Some(f) = &e.file else {
                return Ok(0);
            };
            let fd = f.as_raw_fd();
            if e.pos > 0 && (e.pos == e.buf.len() || e.pos >= 1 << 16) {
                // What was handed out goes: a long stream read line by
                // line would otherwise pile up here.
                let pos = e.pos;
                e.buf.drain(..pos);
                e.pos = 0;
            }
            if !self.ready(fd, libc::POLLIN)? {
                let before = e.buf.len();
                child::drain(fd, &mut e.buf);
                e.file = None;
                e.state = State::Finished;
                return Ok(e.buf.len() - before);
            }
            match child::read_into(fd, &mut e.buf) {
                Ok(0) => {
                    e.file = None;
                    return Ok(0);
                }
                Ok(n) => return Ok(n),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                // A terminal whose every slave end closed: its end of file.
                Err(Errno::EIO) if self.duplex => return Ok(0),
                Err(err) => return Err(err),
            }
        }
    }

    /// Read as `fmt` says: `None` at end of file (a string, maybe empty,
    /// for `All`).
    fn read(&self, fmt: Fmt) -> Result<Option<Vec<u8>>, Errno> {
        let mut e = self.end.borrow_mut();
        let r = self.read_from(&mut e, fmt);
        if e.pos == e.buf.len() {
            e.release();
        }
        r
    }

    fn read_from(&self, e: &mut End, fmt: Fmt) -> Result<Option<Vec<u8>>, Errno> {
        let take = |e: &mut End, n: usize| {
            let out = e.buf[e.pos..e.pos + n].to_vec();
            e.pos += n;
            out
        };
        match fmt {
            Fmt::All => {
                while self.fill(e)? > 0 {}
                let n = e.buf.len() - e.pos;
                Ok(Some(take(e, n)))
            }
            Fmt::Count(n) => {
                while ((e.buf.len() - e.pos) as u64) < n && self.fill(e)? > 0 {}
                let have = e.buf.len() - e.pos;
                if have == 0 && n > 0 {
                    return Ok(None);
                }
                Ok(Some(take(e, have.min(n as usize))))
            }
            Fmt::Line { keep_newline } => {
                let mut searched = 0;
                loop {
                    let avail = &e.buf[e.pos..];
                    if let Some(i) = avail[searched..].iter().position(|b| *b == b'\n') {
                        let mut line = take(e, searched + i + 1);
                        if !keep_newline {
                            line.pop();
                        }
                        return Ok(Some(line));
                    }
                    // Counted from e.pos, which fill may move (with the
                    // unread bytes): the count stays right.
                    searched = avail.len();
                    if self.fill(e)? == 0 {
                        let n = e.buf.len() - e.pos;
                        return Ok((n > 0).then(|| take(e, n)));
                    }
                }
            }
        }
    }

    fn write_all(&self, mut data: &[u8]) -> Result<(), Fail> {
        let e = self.end.borrow();
        let Some(f) = &e.file else {
            return Err(Fail::Msg(Self::closed_message(e.state).into()));
        };
        let fd = f.as_raw_fd();
        while !data.is_empty() {
            if let Some(d) = self.deadline.as_ref().filter(|d| d.passed()) {
                d.expire();
                return Err(Fail::Msg(timed_out(d)));
            }
            // SAFETY: write(2) from a valid slice.
            let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
            if n >= 0 {
                data = &data[n as usize..];
                continue;
            }
            match Errno::last() {
                Errno::EINTR => {}
                Errno::EAGAIN => {
                    if !self
                        .ready(fd, libc::POLLOUT)
                        .map_err(|e| Fail::Sys(crate::Error::sys("poll", e)))?
                    {
                        let d = self.deadline.as_ref().expect("a deadline");
                        return Err(Fail::Msg(timed_out(d)));
                    }
                }
                err => return Err(Fail::Sys(crate::Error::sys("write to pipe", err))),
            }
        }
        Ok(())
    }
}

fn timed_out(d: &Deadline) -> String {
    format!(
        "timed out after {} s (the process was killed)",
        d.timeout().as_secs_f64()
    )
}

fn pipe_of(a: &Args) -> R<AnyUserData> {
    a.userdata::<Pipe>(1, "pipe")
}

fn fmt_of(a: &Args, i: usize) -> R<Fmt> {
    match a.get(i) {
        Value::Nil => Ok(Fmt::Line {
            keep_newline: false,
        }),
        Value::Integer(n) if *n >= 0 => Ok(Fmt::Count(*n as u64)),
        Value::String(s) => match s.to_string_lossy().trim_start_matches('*') {
            "a" => Ok(Fmt::All),
            "l" => Ok(Fmt::Line {
                keep_newline: false,
            }),
            "L" => Ok(Fmt::Line { keep_newline: true }),
            other => Err(a.bad(
                i,
                format!("invalid format '{other}' (use \"a\", \"l\", \"L\" or a count)"),
            )),
        },
        _ => Err(a.bad(i, "invalid format (use \"a\", \"l\", \"L\" or a count)")),
    }
}

/// A read of `fmt` from the pipe `ud`, as Lua values.
fn pipe_read(lua: &Lua, a: &Args, ud: &AnyUserData, fmt: Fmt) -> R<Value> {
    let p = ud.borrow::<Pipe>()?;
    if p.write && !p.duplex {
        return Err(a.fail("this is the write end of a pipe"));
    }
    let state = p.end.borrow().state;
    if matches!(state, State::Closed | State::Given) {
        return Err(a.fail(Pipe::closed_message(state)));
    }
    if matches!(fmt, Fmt::Count(0)) {
        return Ok(Value::String(lua.create_string("")?));
    }
    match p.read(fmt) {
        Ok(Some(b)) => Ok(Value::String(lua.create_string(b)?)),
        Ok(None) => Ok(Value::Nil),
        Err(e) => Err(crate::Error::sys("read from pipe", e).into()),
    }
}

impl UserData for Pipe {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            crate::bindings::add(lua, &m, "read", |lua, a| {
                let ud = pipe_of(a)?;
                let fmt = fmt_of(a, 2)?;
                pipe_read(lua, a, &ud, fmt)
            })?;
            crate::bindings::add(lua, &m, "lines", |lua, a| {
                let ud = pipe_of(a)?;
                let fmt = fmt_of(a, 2)?;
                crate::bindings::function(lua, "lines", move |lua, a| pipe_read(lua, a, &ud, fmt))
                    .map_err(Into::into)
            })?;
            crate::bindings::add(lua, &m, "write", |_, a| {
                let ud = pipe_of(a)?;
                let p = ud.borrow::<Pipe>()?;
                if !p.write {
                    return Err(a.fail("this is the read end of a pipe"));
                }
                let mut i = 2;
                while !a.is_nil(i) || i == 2 {
                    let data = a.bytes(i)?;
                    p.write_all(&data).map_err(|f| match f {
                        Fail::Msg(m) => a.fail(m),
                        other => other,
                    })?;
                    i += 1;
                }
                Ok(ud.clone())
            })?;
            crate::bindings::add(lua, &m, "close", |_, a| {
                let ud = pipe_of(a)?;
                ud.borrow::<Pipe>()?.close();
                Ok(())
            })?;
            Ok(m)
        });
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match (this.duplex, this.write) {
                (true, _) => "tty (master end)",
                (_, false) => "pipe (read end)",
                (_, true) => "pipe (write end)",
            })
        });
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            // A forked child's copy of the value is not its to close.
            if this.owner == std::process::id() {
                this.close();
            }
            Ok(())
        });
    }
}
