//! `ns.ttyname`: the name of a terminal, for a sandbox that shows its
//! program's terminal (`tty = true`) as /dev/console.

use mlua::{Lua, Table};

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "ttyname", |_, a| {
        let fd = a.integer(1)?;
        let fd = i32::try_from(fd)
            .ok()
            .filter(|f| *f >= 0)
            .ok_or_else(|| a.bad(1, format!("not an fd number: {fd}")))?;
        Ok(crate::sys::pty::ttyname(fd))
    })?;
    Ok(())
}
