//! Identity: `ns.setuid`, `ns.setgid`, `ns.setgroups_list` and the getters.

use mlua::{Lua, Table, Value};

use super::args::{typename, Args, R};
use crate::sys::cred;

fn id(a: &Args, i: usize) -> R<u32> {
    let n = a.integer(i)?;
    u32::try_from(n).map_err(|_| a.bad(i, format!("id out of range: {n}")))
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "setuid", |_, a| {
        cred::setuid(id(a, 1)?)?;
        Ok(())
    })?;
    super::add(lua, m, "setgid", |_, a| {
        cred::setgid(id(a, 1)?)?;
        Ok(())
    })?;
    super::add(lua, m, "setgroups_list", |_, a| {
        let t = a.table(1)?;
        let mut groups = Vec::new();
        for v in t.sequence_values::<Value>() {
            match v? {
                Value::Integer(n) if (0..=u32::MAX as i64).contains(&n) => groups.push(n as u32),
                other => {
                    return Err(a.bad(1, format!("group ids expected, got {}", typename(&other))))
                }
            }
        }
        cred::setgroups(&groups)?;
        Ok(())
    })?;
    type Getter = (&'static str, fn() -> i64);
    let getters: [Getter; 6] = [
        ("getpid", || cred::getpid().into()),
        ("getppid", || cred::getppid().into()),
        ("getuid", || cred::getuid().into()),
        ("geteuid", || cred::geteuid().into()),
        ("getgid", || cred::getgid().into()),
        ("getegid", || cred::getegid().into()),
    ];
    for (name, f) in getters {
        m.set(name, lua.create_function(move |_, ()| Ok(f()))?)?;
    }
    Ok(())
}
