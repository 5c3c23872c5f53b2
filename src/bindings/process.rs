//! `ns.fork`, `ns.clone`, `ns.exec`, `ns.kill` and process values.

use std::cell::Cell;

use mlua::{Function, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::args::{check_keys, opt_str, typename, Args, R};
use crate::sys::namespace::{self as sysns, Namespace, Namespaces};
use crate::sys::process::{self, ExecOpts, ExitStatus, Forked};

/// A child process started by `fork`/`clone`.
pub(crate) struct Process {
    pid: i32,
    status: Cell<Option<ExitStatus>>,
}

pub(crate) fn status_table(lua: &Lua, st: &ExitStatus) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("code", st.shell_code())?;
    t.set("signal", st.signal)?;
    t.set("core_dumped", st.core_dumped)?;
    t.set("timed_out", false)?;
    t.set("success", st.success())?;
    Ok(t)
}

fn this(a: &Args) -> R<mlua::AnyUserData> {
    a.userdata::<Process>(1, "process")
}

fn signal(a: &Args, i: usize, default: i32) -> R<i32> {
    match a.get(i) {
        Value::Nil => Ok(default),
        Value::String(s) => {
            process::parse_signal(&s.to_string_lossy()).map_err(|e| a.bad(i, e))
        }
        _ => {
            let n = a.integer(i)?;
            if !(0..=64).contains(&n) {
                return Err(a.bad(i, format!("signal number out of range: {n}")));
            }
            Ok(n as i32)
        }
    }
}

impl UserData for Process {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("pid", |_, this| Ok(this.pid));
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            super::add(lua, &m, "wait", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let st = match p.status.get() {
                    Some(st) => st,
                    None => {
                        let st = process::wait(p.pid, false)?.expect("blocking wait returns a status");
                        p.status.set(Some(st));
                        st
                    }
                };
                Ok(status_table(lua, &st)?)
            })?;
            super::add(lua, &m, "try_wait", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let st = match p.status.get() {
                    Some(st) => Some(st),
                    None => process::wait(p.pid, true)?,
                };
                p.status.set(st);
                Ok(match st {
                    Some(st) => Value::Table(status_table(lua, &st)?),
                    None => Value::Nil,
                })
            })?;
            super::add(lua, &m, "kill", |_, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let sig = signal(a, 2, libc::SIGTERM)?;
                if p.status.get().is_some() {
                    return Ok(false); // reaped: the pid may belong to someone else now
                }
                process::kill(p.pid, sig)?;
                Ok(true)
            })?;
            super::add(lua, &m, "ns", |lua, a| {
                let ud = this(a)?;
                let p = ud.borrow::<Process>()?;
                let kind: Namespace = a.string(2)?.parse().map_err(|e| a.fail(e))?;
                let h = sysns::open_kind(kind, Some(p.pid))?;
                Ok(super::namespace::new_handle(lua, h)?)
            })?;
            Ok(m)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match this.status.get() {
                Some(st) => format!("process {} (exited, code {})", this.pid, st.shell_code()),
                None => format!("process {}", this.pid),
            })
        });
    }
}

/// Run `f` in a freshly forked child and leave: its integer result is the
/// exit code; an uncaught error prints the message and traceback, code 1.
fn run_child(lua: &Lua, f: &Function) -> ! {
    let code = match super::call_traced(lua, f, ()) {
        Ok(Ok(vals)) => super::exit_code_of(vals.front()),
        Ok(Err(u)) => {
            eprintln!("nsrun: {}\n{}", u.message, u.traceback);
            1
        }
        Err(e) => {
            eprintln!("nsrun: {e}");
            1
        }
    };
    process::exit_child(code)
}

fn fork_with(lua: &Lua, kinds: Namespaces, f: &Function) -> R<mlua::AnyUserData> {
    match process::fork(kinds)? {
        Forked::Child => run_child(lua, f),
        Forked::Parent(pid) => Ok(lua.create_userdata(Process {
            pid,
            status: Cell::new(None),
        })?),
    }
}

fn exec_opts(a: &Args, i: usize) -> R<ExecOpts> {
    let mut o = ExecOpts::default();
    let Some(t) = a.opt_table(i)? else {
        return Ok(o);
    };
    check_keys(&t, "exec", &["env", "cwd", "argv0"])?;
    o.cwd = opt_str(&t, "exec", "cwd")?;
    o.argv0 = opt_str(&t, "exec", "argv0")?;
    match t.get::<Value>("env")? {
        Value::Nil => {}
        Value::Table(env) => {
            let mut vars = Vec::new();
            for pair in env.pairs::<Value, Value>() {
                let (k, v) = pair?;
                match (&k, &v) {
                    (Value::String(k), Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
                        let v = match v {
                            Value::String(s) => s.to_string_lossy(),
                            other => other.to_string()?,
                        };
                        vars.push((k.to_string_lossy(), v));
                    }
                    _ => {
                        return Err(a.fail(format!(
                            "env must map names to strings, got {} = {}",
                            typename(&k),
                            typename(&v)
                        )))
                    }
                }
            }
            vars.sort();
            o.env = Some(vars);
        }
        other => return Err(a.fail(format!("env must be a table, got {}", typename(&other)))),
    }
    Ok(o)
}

pub(crate) fn argv(a: &Args, i: usize) -> R<Vec<String>> {
    let t = a.table(i)?;
    let mut out = Vec::new();
    for v in t.sequence_values::<Value>() {
        match v? {
            Value::String(s) => out.push(s.to_string_lossy()),
            Value::Integer(n) => out.push(n.to_string()),
            Value::Number(n) => out.push(n.to_string()),
            other => return Err(a.bad(i, format!("argv entries must be strings, got {}", typename(&other)))),
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
        Err::<(), _>(process::exec(&argv, &opts).into())
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
