//! Process values (`ns.fork`, `ns.spawn`), their status tables, and
//! running a child's Lua function.

use std::cell::RefCell;
use std::fs::File;

use mlua::{
    AnyUserData, Function, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use super::pipe::Pipe;
use crate::bindings::args::{Args, R};
use crate::sys::cgroup::Stats;
use crate::sys::child::Child;
use crate::sys::namespace::{self as sysns, Namespace};
use crate::sys::process::{self, ExitStatus};

/// A child process: from `fork`/`clone` or `spawn`.
pub(crate) struct Process {
    pub child: RefCell<Child>,
    pub stdin: Option<AnyUserData>,
    pub stdout: Option<AnyUserData>,
    pub stderr: Option<AnyUserData>,
    /// Our end of its channel (`channel = true` or an fd number).
    pub channel: Option<AnyUserData>,
    /// With `tty = true` and no terminal of ours to relay: its master end.
    pub tty: Option<AnyUserData>,
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
        let channel = child
            .take_channel()
            .map(|c| crate::bindings::channel::wrap(lua, c))
            .transpose()?;
        let tty = child
            .tty
            .take()
            .map(|f| lua.create_userdata(Pipe::duplex(f, deadline.clone())))
            .transpose()?;
        lua.create_userdata(Process {
            child: RefCell::new(child),
            stdin,
            stdout,
            stderr,
            channel,
            tty,
        })
    }

    fn pipes(&self) -> impl Iterator<Item = &AnyUserData> {
        [&self.stdin, &self.stdout, &self.stderr, &self.tty]
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

pub(crate) fn signal(a: &Args, i: usize, default: i32) -> R<i32> {
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
        fields.add_field_method_get("channel", |_, this| Ok(this.channel.clone()));
        fields.add_field_method_get("tty", |_, this| Ok(this.tty.clone()));
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            crate::bindings::add(lua, &m, "wait", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let st = p.wait()?;
                let timed_out = p.child.borrow().timed_out();
                Ok(status_table(lua, &st, timed_out)?)
            })?;
            crate::bindings::add(lua, &m, "net_pid", |_, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let pid = p.child.borrow().usernet_pid();
                Ok(pid)
            })?;
            crate::bindings::add(lua, &m, "try_wait", |lua, a| {
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
            crate::bindings::add(lua, &m, "kill", |_, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let sig = signal(a, 2, libc::SIGTERM)?;
                let c = p.child.borrow();
                // Reaped: the pid may belong to someone else now. (A
                // planned child "ended" at once; its signal is planned.)
                if c.status().is_some() && c.pid() != crate::sys::ops::PLANNED_PID {
                    return Ok(false);
                }
                c.kill(sig)?;
                Ok(true)
            })?;
            crate::bindings::add(lua, &m, "ns", |lua, a| {
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
            crate::bindings::add(lua, &m, "release", |_, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                p.child.borrow_mut().release();
                Ok(())
            })?;
            crate::bindings::add(lua, &m, "output", |lua, a| output(lua, &this(a)?))?;
            crate::bindings::add(lua, &m, "resize", |_, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let mut size = [0u16; 2];
                for (k, (i, what)) in [(2, "rows"), (3, "cols")].into_iter().enumerate() {
                    let n = a.integer(i)?;
                    size[k] = u16::try_from(n)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| a.bad(i, format!("{what} must be 1 to 65535, got {n}")))?;
                }
                p.child.borrow().resize(size[0], size[1])?;
                Ok(())
            })?;
            crate::bindings::add(lua, &m, "cgroup_stats", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let s = p.child.borrow().cgroup_stats();
                Ok(match s {
                    Some(s) => Value::Table(stats_table(lua, &s)?),
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

/// Statistics as a table (absent fields: the host cannot tell).
pub(crate) fn stats_table(lua: &Lua, s: &Stats) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("memory_peak", s.memory_peak)?;
    t.set("memory_current", s.memory_current)?;
    t.set("pids_current", s.pids_current)?;
    t.set("cpu_usec", s.cpu_usec)?;
    t.set("oom_kills", s.oom_kills)?;
    Ok(t)
}

/// Run `f` in a freshly forked child and leave: its integer result is the
/// exit code; an uncaught error prints the message and traceback, code 1.
pub(crate) fn run_child(lua: &Lua, f: &Function) -> ! {
    process::exit_child(child_code(lua, f))
}

/// Call a child's function: its exit code, or 1 after printing an error.
pub(crate) fn child_code(lua: &Lua, f: &Function) -> i32 {
    child_code_with(lua, f, ())
}

/// [`child_code`] of `f` called with `args`.
pub(crate) fn child_code_with(lua: &Lua, f: &Function, args: impl mlua::IntoLuaMulti) -> i32 {
    let code = match crate::bindings::call_traced(lua, f, args) {
        Ok(Ok(vals)) => crate::bindings::exit_code_of(vals.front()).unwrap_or_else(|m| {
            eprintln!("nsrun: the child's function {m}");
            1
        }),
        Ok(Err(u)) => match crate::bindings::plan::child_exit(&u.message) {
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
