//! `ns.uid_map`, `ns.gid_map`, `ns.setgroups`.

use mlua::{Lua, Table};

use super::values::id_ranges;
use crate::sys::idmap::{self, IdKind};

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "uid_map", |_, a| {
        idmap::write_map(a.pid(1)?, IdKind::Uid, &id_ranges(a, 2)?)?;
        Ok(())
    })?;
    super::add(lua, m, "gid_map", |_, a| {
        idmap::write_map(a.pid(1)?, IdKind::Gid, &id_ranges(a, 2)?)?;
        Ok(())
    })?;
    super::add(lua, m, "setgroups", |_, a| {
        let allow = match a.string(2)?.as_str() {
            "allow" => true,
            "deny" => false,
            other => return Err(a.bad(2, format!("\"allow\" or \"deny\" expected, got '{other}'"))),
        };
        idmap::setgroups(a.pid(1)?, allow)?;
        Ok(())
    })?;
    Ok(())
}
