//! `ns.mount`, `ns.bind`, `ns.umount`, `ns.pivot_root`, `ns.chroot`.

use mlua::{Lua, Table, Value};

use super::args::{check_keys, names_of, opt_bool, opt_str, typename, Args, R};
use crate::sys::mount::{self as sysmount, BindOpts};

fn flags_value(a: &Args, v: &Value, what: &str) -> R<nix::mount::MsFlags> {
    if v.is_nil() {
        return Ok(nix::mount::MsFlags::empty());
    }
    let names = names_of(v).ok_or_else(|| {
        a.fail(format!(
            "{what} must be a string or list of strings, got {}",
            typename(v)
        ))
    })?;
    sysmount::parse_flags(&names).map_err(|e| a.fail(e))
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "mount", |_, a| {
        let (source, target, fstype, flags, data) = if let Value::Table(t) = a.get(1) {
            check_keys(t, "mount", &["source", "target", "fstype", "flags", "data"])?;
            let target = opt_str(t, "mount", "target")?
                .ok_or_else(|| a.fail("the options table needs a 'target'"))?;
            (
                opt_str(t, "mount", "source")?,
                target,
                opt_str(t, "mount", "fstype")?,
                flags_value(a, &t.get::<Value>("flags")?, "flags")?,
                opt_str(t, "mount", "data")?,
            )
        } else {
            (
                a.opt_string(1)?,
                a.string(2)?,
                a.opt_string(3)?,
                flags_value(a, a.get(4), "argument #4 (flags)")?,
                a.opt_string(5)?,
            )
        };
        sysmount::mount(
            source.as_deref(),
            &target,
            fstype.as_deref(),
            flags,
            data.as_deref(),
        )?;
        Ok(())
    })?;
    super::add(lua, m, "bind", |_, a| {
        let source = a.string(1)?;
        let target = a.string(2)?;
        let mut opts = BindOpts::default();
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "bind", &["ro", "rec", "create"])?;
            opts.ro = opt_bool(&t, "bind", "ro", false)?;
            opts.rec = opt_bool(&t, "bind", "rec", true)?;
            opts.create = opt_bool(&t, "bind", "create", false)?;
        }
        sysmount::bind(&source, &target, opts)?;
        Ok(())
    })?;
    super::add(lua, m, "umount", |_, a| {
        let target = a.string(1)?;
        let flags = if a.is_nil(2) {
            nix::mount::MntFlags::empty()
        } else {
            sysmount::parse_umount_flags(&a.names(2)?).map_err(|e| a.fail(e))?
        };
        sysmount::umount(&target, flags)?;
        Ok(())
    })?;
    super::add(lua, m, "pivot_root", |_, a| {
        let new_root = a.string(1)?;
        match a.opt_string(2)? {
            Some(put_old) => sysmount::pivot_root(&new_root, &put_old)?,
            None => sysmount::pivot_into(&new_root)?,
        }
        Ok(())
    })?;
    super::add(lua, m, "chroot", |_, a| {
        sysmount::chroot(&a.string(1)?)?;
        Ok(())
    })?;
    Ok(())
}
