//! `ns.fork`, `ns.clone`, `ns.exec`, `ns.kill` and process values.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;

use mlua::{
    AnyUserData, Function, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value,
};

use super::args::{check_keys, opt_path, typename, Args, R};
use crate::error::Context;
use crate::sys::namespace::{self as sysns, Namespace, Namespaces};
use crate::sys::process::{self, ExecOpts, ExitStatus, Forked};
use crate::sys::spawn::Child;

/// A child process: from `fork`/`clone` or `spawn`.
pub(crate) struct Process {
    pub child: RefCell<Child>,
    pub stdin: Option<AnyUserData>,
    pub stdout: Option<AnyUserData>,
    pub stderr: Option<AnyUserData>,
}

impl Process {
    pub fn create(lua: &Lua, mut child: Child) -> mlua::Result<AnyUserData> {
        let stdin = child
            .stdin
            .take()
            .map(|f| lua.create_userdata(Pipe::writer(f)))
            .transpose()?;
        let stdout = child
            .stdout
            .take()
            .map(|f| lua.create_userdata(Pipe::reader(f)))
            .transpose()?;
        let stderr = child
            .stderr
            .take()
            .map(|f| lua.create_userdata(Pipe::reader(f)))
            .transpose()?;
        lua.create_userdata(Process {
            child: RefCell::new(child),
            stdin,
            stdout,
            stderr,
        })
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
    let mut child = p.child.borrow_mut();
    // Hand the pipe ends back to the child for the joint read.
    if let Some(u) = &p.stdout {
        child.stdout = u.borrow::<Pipe>()?.take_file();
    }
    if let Some(u) = &p.stderr {
        child.stderr = u.borrow::<Pipe>()?.take_file();
    }
    if let Some(u) = &p.stdin {
        u.borrow::<Pipe>()?.take_file();
    }
    let had = (child.stdout.is_some(), child.stderr.is_some());
    let (st, out, err) = child.output()?;
    let t = status_table(lua, &st, child.timed_out())?;
    let out = if had.0 {
        Value::String(lua.create_string(out)?)
    } else {
        Value::Nil
    };
    let err = if had.1 {
        Value::String(lua.create_string(err)?)
    } else {
        Value::Nil
    };
    Ok((t, out, err))
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
                let mut c = p.child.borrow_mut();
                let st = c.wait()?;
                Ok(status_table(lua, &st, c.timed_out())?)
            })?;
            super::add(lua, &m, "try_wait", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let mut c = p.child.borrow_mut();
                Ok(match c.try_wait()? {
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
    }
}

/// One end of a pipe to a child: `read(fmt)`, `write(...)`, `close()`.
pub(crate) enum Pipe {
    Reader(RefCell<Option<BufReader<File>>>),
    Writer(RefCell<Option<File>>),
}

impl Pipe {
    fn reader(f: File) -> Self {
        Pipe::Reader(RefCell::new(Some(BufReader::new(f))))
    }
    fn writer(f: File) -> Self {
        Pipe::Writer(RefCell::new(Some(f)))
    }
    /// Take the file out (closing this end for Lua). Buffered but unread
    /// data of a reader is lost, so output() is meant for unread pipes.
    fn take_file(&self) -> Option<File> {
        match self {
            Pipe::Reader(r) => r.borrow_mut().take().map(BufReader::into_inner),
            Pipe::Writer(w) => w.borrow_mut().take(),
        }
    }
}

fn pipe_read(lua: &Lua, a: &Args) -> R<Value> {
    let ud = a.userdata::<Pipe>(1, "pipe")?;
    let p = ud.borrow::<Pipe>()?;
    let Pipe::Reader(r) = &*p else {
        return Err(a.fail("this is the write end of a pipe"));
    };
    let mut r = r.borrow_mut();
    let Some(r) = r.as_mut() else {
        return Err(a.fail("the pipe is closed"));
    };
    let io = |e: std::io::Error| {
        let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        super::Fail::from(crate::Error::sys("read from pipe", errno))
    };
    match a.get(2) {
        Value::Integer(n) if *n >= 0 => {
            // The buffer grows with what arrives: allocating the count up
            // front aborted the process on read(math.maxinteger).
            let mut buf = Vec::new();
            r.by_ref()
                .take(*n as u64)
                .read_to_end(&mut buf)
                .map_err(io)?;
            if buf.is_empty() && *n > 0 {
                return Ok(Value::Nil);
            }
            Ok(Value::String(lua.create_string(buf)?))
        }
        v => {
            let fmt = match v {
                Value::Nil => "l".to_string(),
                Value::String(s) => s.to_string_lossy().trim_start_matches('*').to_string(),
                _ => return Err(a.bad(2, "invalid format")),
            };
            match fmt.as_str() {
                "a" => {
                    let mut buf = Vec::new();
                    r.read_to_end(&mut buf).map_err(io)?;
                    Ok(Value::String(lua.create_string(buf)?))
                }
                "l" | "L" => {
                    let mut buf = Vec::new();
                    if r.read_until(b'\n', &mut buf).map_err(io)? == 0 {
                        return Ok(Value::Nil);
                    }
                    if fmt == "l" && buf.last() == Some(&b'\n') {
                        buf.pop();
                    }
                    Ok(Value::String(lua.create_string(buf)?))
                }
                other => Err(a.bad(
                    2,
                    format!("invalid format '{other}' (use \"a\", \"l\", \"L\" or a count)"),
                )),
            }
        }
    }
}

impl UserData for Pipe {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            super::add(lua, &m, "read", pipe_read)?;
            super::add(lua, &m, "write", |_, a| {
                let ud = a.userdata::<Pipe>(1, "pipe")?;
                let p = ud.borrow::<Pipe>()?;
                let Pipe::Writer(w) = &*p else {
                    return Err(a.fail("this is the read end of a pipe"));
                };
                let mut w = w.borrow_mut();
                let Some(f) = w.as_mut() else {
                    return Err(a.fail("the pipe is closed"));
                };
                let mut i = 2;
                while !a.is_nil(i) || i == 2 {
                    let data = a.bytes(i)?;
                    f.write_all(&data).op(|| "write to pipe".into())?;
                    i += 1;
                }
                Ok(ud.clone())
            })?;
            super::add(lua, &m, "close", |_, a| {
                let ud = a.userdata::<Pipe>(1, "pipe")?;
                ud.borrow::<Pipe>()?.take_file();
                Ok(())
            })?;
            Ok(m)
        });
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match this {
                Pipe::Reader(_) => "pipe (read end)",
                Pipe::Writer(_) => "pipe (write end)",
            })
        });
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            this.take_file();
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
        Ok(Err(u)) => {
            eprintln!("nsrun: {}\n{}", u.message, u.traceback);
            1
        }
        Err(e) => {
            eprintln!("nsrun: {e}");
            1
        }
    };
    code
}

fn fork_with(lua: &Lua, kinds: Namespaces, f: &Function) -> R<AnyUserData> {
    if crate::sys::ops::planning() {
        // Nothing is forked: record the clone and run the child's part
        // here, its operations recorded as the child's.
        process::fork(kinds)?;
        let code = crate::sys::ops::in_role("child", || child_code(lua, f));
        return Ok(Process::create(lua, Child::planned(code))?);
    }
    match process::fork(kinds)? {
        Forked::Child => run_child(lua, f),
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
        fork_with(lua, Namespaces::empty(), &f)
    })?;
    super::add(lua, m, "clone", |lua, a| {
        let kinds = a.kinds(1)?;
        let f = a.function(2)?;
        fork_with(lua, kinds, &f)
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
