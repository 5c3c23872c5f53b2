//! `ns.fork`, `ns.clone`, `ns.exec`, `ns.kill` and process values.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use mlua::{
    AnyUserData, Function, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value,
};
use nix::errno::Errno;

use super::args::{check_keys, opt_path, typename, Args, Fail, R};
use crate::sys::child::{self, Child, Deadline};
use crate::sys::namespace::{self as sysns, Namespace, Namespaces};
use crate::sys::process::{self, ExecOpts, ExitStatus, Forked};

/// A child process: from `fork`/`clone` or `spawn`.
pub(crate) struct Process {
    pub child: RefCell<Child>,
    pub stdin: Option<AnyUserData>,
    pub stdout: Option<AnyUserData>,
    pub stderr: Option<AnyUserData>,
}

impl Process {
    pub fn create(lua: &Lua, mut child: Child) -> mlua::Result<AnyUserData> {
        let deadline = child.deadline();
        let pipe = |f: Option<File>, write: bool| {
            f.map(|f| lua.create_userdata(Pipe::new(f, write, deadline.clone())))
                .transpose()
        };
        let stdin = pipe(child.stdin.take(), true)?;
        let stdout = pipe(child.stdout.take(), false)?;
        let stderr = pipe(child.stderr.take(), false)?;
        lua.create_userdata(Process {
            child: RefCell::new(child),
            stdin,
            stdout,
            stderr,
        })
    }

    fn pipes(&self) -> impl Iterator<Item = &AnyUserData> {
        [&self.stdin, &self.stdout, &self.stderr]
            .into_iter()
            .flatten()
    }

    /// Our end of its stdin goes first, as std's `Child::wait` does: a
    /// child reading it must see end of file, or waiting would never end.
    fn close_stdin(&self) -> mlua::Result<()> {
        if let Some(u) = &self.stdin {
            u.borrow::<Pipe>()?.finish();
        }
        Ok(())
    }

    /// Once it is reaped, the pipes from it keep what they hold and close,
    /// so a loop of spawns does not run out of fds before a collection.
    fn finish_pipes(&self) -> mlua::Result<()> {
        if self.child.borrow().status().is_some() {
            for u in self.pipes() {
                u.borrow::<Pipe>()?.finish();
            }
        }
        Ok(())
    }

    /// `wait`, with the pipes closed around it.
    fn wait(&self) -> R<ExitStatus> {
        self.close_stdin()?;
        let st = self.child.borrow_mut().wait()?;
        self.finish_pipes()?;
        Ok(st)
    }

    /// `<close>`: a process still running is killed and reaped, and the
    /// pipes are closed. Only in the process that started it: a forked
    /// child's copy of the value must leave the parent's child alone.
    fn close(&self) -> mlua::Result<()> {
        {
            let mut c = self.child.borrow_mut();
            if !c.is_owner() {
                return Ok(());
            }
            for u in self.pipes() {
                u.borrow::<Pipe>()?.close();
            }
            if !c.is_observer() && c.status().is_none() {
                c.abort();
            }
        }
        Ok(())
    }
}

pub(crate) fn status_table(lua: &Lua, st: &ExitStatus, timed_out: bool) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("code", st.shell_code())?;
    t.set("signal", st.signal)?;
    t.set("core_dumped", st.core_dumped)?;
    t.set("timed_out", timed_out)?;
    t.set("success", st.success() && !timed_out)?;
    Ok(t)
}

fn this(a: &Args) -> R<AnyUserData> {
    a.userdata::<Process>(1, "process")
}

fn signal(a: &Args, i: usize, default: i32) -> R<i32> {
    match a.get(i) {
        Value::Nil => Ok(default),
        Value::String(s) => process::parse_signal(&s.to_string_lossy()).map_err(|e| a.bad(i, e)),
        _ => {
            let n = a.integer(i)?;
            if !(0..=64).contains(&n) {
                return Err(a.bad(i, format!("signal number out of range: {n}")));
            }
            Ok(n as i32)
        }
    }
}

/// `p:output()` and `ns.run`: read both pipes to the end, then wait.
pub(crate) fn output(lua: &Lua, ud: &AnyUserData) -> R<(Table, Value, Value)> {
    let p = ud.borrow::<Process>()?;
    p.close_stdin()?;
    // Hand the pipe ends back to the child for the joint read; what an
    // earlier read took in but did not return comes first.
    let take = |u: &Option<AnyUserData>| -> mlua::Result<Option<(Vec<u8>, Option<File>)>> {
        match u {
            Some(u) => Ok(u.borrow::<Pipe>()?.take_rest()),
            None => Ok(None),
        }
    };
    let (out, err) = (take(&p.stdout)?, take(&p.stderr)?);
    let had = (out.is_some(), err.is_some());
    let (out_rest, out_file) = out.unwrap_or_default();
    let (err_rest, err_file) = err.unwrap_or_default();
    let mut child = p.child.borrow_mut();
    child.stdout = out_file;
    child.stderr = err_file;
    let (st, out, err) = child.output()?;
    let t = status_table(lua, &st, child.timed_out())?;
    let string = |had: bool, mut rest: Vec<u8>, more: Vec<u8>| -> mlua::Result<Value> {
        if !had {
            return Ok(Value::Nil);
        }
        if rest.is_empty() {
            rest = more;
        } else {
            rest.extend_from_slice(&more);
        }
        Ok(Value::String(lua.create_string(rest)?))
    };
    Ok((
        t,
        string(had.0, out_rest, out)?,
        string(had.1, err_rest, err)?,
    ))
}

impl UserData for Process {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("pid", |_, this| Ok(this.child.borrow().pid()));
        fields.add_field_method_get("stdin", |_, this| Ok(this.stdin.clone()));
        fields.add_field_method_get("stdout", |_, this| Ok(this.stdout.clone()));
        fields.add_field_method_get("stderr", |_, this| Ok(this.stderr.clone()));
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            super::add(lua, &m, "wait", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let st = p.wait()?;
                let timed_out = p.child.borrow().timed_out();
                Ok(status_table(lua, &st, timed_out)?)
            })?;
            super::add(lua, &m, "try_wait", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let st = p.child.borrow_mut().try_wait()?;
                p.finish_pipes()?;
                let c = p.child.borrow();
                Ok(match st {
                    Some(st) => Value::Table(status_table(lua, &st, c.timed_out())?),
                    None => Value::Nil,
                })
            })?;
            super::add(lua, &m, "kill", |_, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let sig = signal(a, 2, libc::SIGTERM)?;
                let c = p.child.borrow();
                if c.status().is_some() {
                    return Ok(false); // reaped: the pid may belong to someone else now
                }
                c.kill(sig)?;
                Ok(true)
            })?;
            super::add(lua, &m, "ns", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let kind: Namespace = a.string(2)?.parse().map_err(|e| a.fail(e))?;
                // For pid and time the namespace its children get where that
                // differs (the program's, behind a relay that unshared them).
                let pid = p.child.borrow().pid();
                // Under --plan the child was never started: stand in with
                // our own namespace so the recipe can go on planning.
                let pid = (pid != crate::sys::ops::PLANNED_PID).then_some(pid);
                let h = match pid {
                    Some(pid) => sysns::open_of_started(kind, pid)?,
                    None => sysns::open_path(&sysns::persist_source(kind, None), Some(kind))?,
                };
                Ok(super::namespace::new_handle(lua, h)?)
            })?;
            super::add(lua, &m, "output", |lua, a| output(lua, &this(a)?))?;
            super::add(lua, &m, "cgroup_stats", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let s = p.child.borrow().cgroup_stats();
                Ok(match s {
                    Some(s) => Value::Table(super::hardening::stats_table(lua, &s)?),
                    None => Value::Nil,
                })
            })?;
            Ok(m)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            let c = this.child.borrow();
            Ok(match c.status() {
                Some(st) => format!("process {} (exited, code {})", c.pid(), st.shell_code()),
                None => format!("process {}", c.pid()),
            })
        });
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| this.close());
    }
}

/// One end of a pipe to a child: `read(fmt)`, `lines(fmt)`, `write(...)`,
/// `close()`. Every call that may block keeps the process's deadline.
pub(crate) struct Pipe {
    write: bool,
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
    fn new(f: File, write: bool, deadline: Option<Arc<Deadline>>) -> Self {
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

    /// The process was waited for: keep what a reader holds now, close.
    fn finish(&self) {
        let mut e = self.end.borrow_mut();
        if e.state != State::Open {
            return;
        }
        if let Some(f) = e.file.take() {
            if !self.write {
                child::drain(f.as_raw_fd(), &mut e.buf);
            }
        }
        e.release();
        e.state = State::Finished;
    }

    /// `close()`: nothing more goes through it.
    fn close(&self) {
        let mut e = self.end.borrow_mut();
        e.file = None;
        e.buf = Vec::new();
        e.pos = 0;
        e.state = State::Closed;
    }

    /// For `output()`: what was read but not returned, and the file;
    /// `None` when it was closed by `close()`.
    fn take_rest(&self) -> Option<(Vec<u8>, Option<File>)> {
        let mut e = self.end.borrow_mut();
        if e.state == State::Closed || self.write {
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
                err => return Err(Fail::Sys(crate::Error::sys("write", err))),
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
    if p.write {
        return Err(a.fail("this is the write end of a pipe"));
    }
    let state = p.end.borrow().state;
    if state == State::Closed {
        return Err(a.fail(Pipe::closed_message(state)));
    }
    if matches!(fmt, Fmt::Count(0)) {
        return Ok(Value::String(lua.create_string("")?));
    }
    match p.read(fmt) {
        Ok(Some(b)) => Ok(Value::String(lua.create_string(b)?)),
        Ok(None) => Ok(Value::Nil),
        Err(e) => Err(crate::Error::sys("read", e).into()),
    }
}

impl UserData for Pipe {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            super::add(lua, &m, "read", |lua, a| {
                let ud = pipe_of(a)?;
                let fmt = fmt_of(a, 2)?;
                pipe_read(lua, a, &ud, fmt)
            })?;
            super::add(lua, &m, "lines", |lua, a| {
                let ud = pipe_of(a)?;
                let fmt = fmt_of(a, 2)?;
                super::function(lua, "lines", move |lua, a| pipe_read(lua, a, &ud, fmt))
                    .map_err(Into::into)
            })?;
            super::add(lua, &m, "write", |_, a| {
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
            super::add(lua, &m, "close", |_, a| {
                let ud = pipe_of(a)?;
                ud.borrow::<Pipe>()?.close();
                Ok(())
            })?;
            Ok(m)
        });
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match this.write {
                false => "pipe (read end)",
                true => "pipe (write end)",
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

/// Run `f` in a freshly forked child and leave: its integer result is the
/// exit code; an uncaught error prints the message and traceback, code 1.
pub(crate) fn run_child(lua: &Lua, f: &Function) -> ! {
    process::exit_child(child_code(lua, f))
}

/// Call a child's function: its exit code, or 1 after printing an error.
pub(crate) fn child_code(lua: &Lua, f: &Function) -> i32 {
    let code = match super::call_traced(lua, f, ()) {
        Ok(Ok(vals)) => super::exit_code_of(vals.front()).unwrap_or_else(|m| {
            eprintln!("nsrun: the child's function {m}");
            1
        }),
        Ok(Err(u)) => match super::plan::child_exit(&u.message) {
            // Under --plan: the child's os.exit, not a failure.
            Some(code) => code,
            None => {
                eprintln!("nsrun: {}\n{}", u.message, u.traceback);
                1
            }
        },
        Err(e) => {
            eprintln!("nsrun: {e}");
            1
        }
    };
    code
}

/// `prop`: how a new mount namespace propagates, set in the child first.
fn fork_with(
    lua: &Lua,
    kinds: Namespaces,
    prop: crate::Propagation,
    f: &Function,
) -> R<AnyUserData> {
    let new_mount = kinds.contains(crate::Namespace::Mount);
    if crate::sys::ops::planning() {
        // Nothing is forked: record the clone and run the child's part
        // here, its operations recorded as the child's.
        process::fork(kinds)?;
        let code = crate::sys::ops::in_role("child", || {
            if new_mount {
                if let Err(e) = crate::sys::namespace::set_propagation(prop) {
                    eprintln!("nsrun: {e}");
                    return 1;
                }
            }
            child_code(lua, f)
        });
        return Ok(Process::create(lua, Child::planned(code))?);
    }
    match process::fork(kinds)? {
        Forked::Child => {
            if new_mount {
                if let Err(e) = crate::sys::namespace::set_propagation(prop) {
                    eprintln!("nsrun: {e}");
                    process::exit_child(1);
                }
            }
            run_child(lua, f)
        }
        Forked::Parent(pid) => Ok(Process::create(lua, Child::from_pid(pid))?),
    }
}

/// An environment table: names to strings; `false` removes a variable.
/// Environment changes: a name and its value, `None` to remove it.
pub(crate) type EnvChanges = Vec<(OsString, Option<OsString>)>;

pub(crate) fn env_table(a: &Args, v: Value) -> R<Option<EnvChanges>> {
    let env = match v {
        Value::Nil => return Ok(None),
        Value::Table(t) => t,
        other => return Err(a.fail(format!("env must be a table, got {}", typename(&other)))),
    };
    let mut vars = Vec::new();
    for pair in env.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = &k else {
            return Err(a.fail(format!("env keys must be strings, got {}", typename(&k))));
        };
        let k = OsStr::from_bytes(&k.as_bytes()).to_os_string();
        let shown = std::path::Path::new(&k).display().to_string();
        if k.is_empty() || k.as_bytes().contains(&b'=') || k.as_bytes().contains(&0) {
            return Err(a.fail(format!("env: bad variable name '{shown}'")));
        }
        let k_shown = shown;
        let v = match v {
            Value::String(s) if s.as_bytes().contains(&0) => {
                return Err(a.fail(format!("env.{k_shown} contains a NUL byte")))
            }
            Value::String(s) => Some(OsStr::from_bytes(&s.as_bytes()).to_os_string()),
            Value::Integer(n) => Some(n.to_string().into()),
            Value::Number(n) => Some(n.to_string().into()),
            Value::Boolean(false) => None,
            other => {
                return Err(a.fail(format!(
                    "env.{k_shown} must be a string (or false to remove it), got {}",
                    typename(&other)
                )))
            }
        };
        vars.push((k, v));
    }
    vars.sort();
    Ok(Some(vars))
}

fn exec_opts(a: &Args, i: usize) -> R<ExecOpts> {
    let mut o = ExecOpts::default();
    let Some(t) = a.opt_table(i)? else {
        return Ok(o);
    };
    check_keys(&t, "exec", &["env", "cwd", "argv0"])?;
    o.cwd = opt_path(&t, "exec", "cwd")?.map(Into::into);
    o.argv0 = opt_path(&t, "exec", "argv0")?.map(Into::into);
    o.env = env_table(a, t.get("env")?)?.map(|vars| {
        vars.into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect()
    });
    Ok(o)
}

pub(crate) fn argv(a: &Args, i: usize) -> R<Vec<OsString>> {
    argv_of(a, i, &a.table(i)?)
}

/// argv from a table; `i` names the argument in messages.
pub(crate) fn argv_of(a: &Args, i: usize, t: &Table) -> R<Vec<OsString>> {
    let mut out = Vec::new();
    for v in t.sequence_values::<Value>() {
        match v? {
            Value::String(s) if s.as_bytes().contains(&0) => {
                return Err(a.bad(i, format!("argv[{}] contains a NUL byte", out.len() + 1)))
            }
            Value::String(s) => out.push(OsStr::from_bytes(&s.as_bytes()).to_os_string()),
            Value::Integer(n) => out.push(n.to_string().into()),
            Value::Number(n) => out.push(n.to_string().into()),
            other => {
                return Err(a.bad(
                    i,
                    format!("argv entries must be strings, got {}", typename(&other)),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(a.bad(i, "argv is empty: it needs at least the program"));
    }
    Ok(out)
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "fork", |lua, a| {
        let f = a.function(1)?;
        fork_with(lua, Namespaces::empty(), crate::Propagation::Unchanged, &f)
    })?;
    super::add(lua, m, "clone", |lua, a| {
        let kinds = a.kinds(1)?;
        let f = a.function(2)?;
        let prop = super::namespace::propagation(a, 3, "clone")?;
        fork_with(lua, kinds, prop, &f)
    })?;
    super::add(lua, m, "exec", |_, a| {
        let argv = argv(a, 1)?;
        let opts = exec_opts(a, 2)?;
        match process::exec(&argv, &opts) {
            crate::Error::Planned => Ok(()),
            e => Err(e.into()),
        }
    })?;
    super::add(lua, m, "kill", |_, a| {
        let pid = a.integer(1)?;
        let pid = i32::try_from(pid).map_err(|_| a.bad(1, "pid out of range"))?;
        let sig = signal(a, 2, libc::SIGTERM)?;
        process::kill(pid, sig)?;
        Ok(())
    })?;
    Ok(())
}
