//! `ns.fork`, `ns.clone`, `ns.exec`, `ns.kill` (process values are in
//! [`super::values`]).

use mlua::{AnyUserData, Function, Lua, Table};

use super::args::{check_keys, opt_path, Args, R};
use super::values::{argv, child_code, env_table, run_child, signal, Process};
use crate::sys::child::Child;
use crate::sys::namespace::Namespaces;
use crate::sys::process::{self, ExecOpts, Forked};

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

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "fork", |lua, a| {
        let f = a.function(1)?;
        fork_with(lua, Namespaces::empty(), crate::Propagation::Unchanged, &f)
    })?;
    super::add(lua, m, "clone", |lua, a| {
        let kinds = a.kinds(1)?;
        let f = a.function(2)?;
        let prop = super::values::propagation(a, 3, "clone")?;
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
