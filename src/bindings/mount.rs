//! `ns.mount`, `ns.bind`, `ns.umount`, `ns.pivot_root`, `ns.chroot`.

use mlua::{Lua, Table, Value};

use super::args::{check_keys, names_of, opt_bool, opt_path, opt_str, typename, Args, R};
use super::values::{from_opt, overlay_opts_with, tmpfs_opts};
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

fn overlay_opts(a: &Args, i: usize) -> R<sysmount::OverlayOpts> {
    Ok(overlay_opts_with(a, i, &[])?.0)
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "mount", |_, a| {
        let (source, target, fstype, flags, data) = if let Value::Table(t) = a.get(1) {
            check_keys(t, "mount", &["source", "target", "fstype", "flags", "data"])?;
            let target = opt_path(t, "mount", "target")?
                .ok_or_else(|| a.fail("the options table needs a 'target'"))?;
            (
                opt_path(t, "mount", "source")?,
                target,
                opt_str(t, "mount", "fstype")?,
                flags_value(a, &t.get::<Value>("flags")?, "flags")?,
                opt_str(t, "mount", "data")?,
            )
        } else {
            (
                a.opt_path(1)?,
                a.path(2)?,
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
        let source = a.path(1)?;
        let target = a.path(2)?;
        let mut opts = BindOpts::default();
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "bind", &["ro", "rec", "create", "nosuid", "nodev"])?;
            opts.ro = opt_bool(&t, "bind", "ro", false)?;
            opts.nosuid = opt_bool(&t, "bind", "nosuid", false)?;
            opts.nodev = opt_bool(&t, "bind", "nodev", false)?;
            opts.rec = opt_bool(&t, "bind", "rec", true)?;
            opts.create = opt_bool(&t, "bind", "create", false)?;
        }
        sysmount::bind(&source, &target, opts)?;
        Ok(())
    })?;
    super::add(lua, m, "umount", |_, a| {
        let target = a.path(1)?;
        let flags = if a.is_nil(2) {
            nix::mount::MntFlags::empty()
        } else {
            sysmount::parse_umount_flags(&a.names(2)?).map_err(|e| a.fail(e))?
        };
        sysmount::umount(&target, flags)?;
        Ok(())
    })?;
    super::add(lua, m, "pivot_root", |_, a| {
        let new_root = a.path(1)?;
        match a.opt_path(2)? {
            Some(put_old) => sysmount::pivot_root(&new_root, &put_old)?,
            None => sysmount::pivot_into(&new_root)?,
        }
        Ok(())
    })?;
    super::add(lua, m, "tmpfs", |_, a| {
        let target = a.path(1)?;
        let (size, mode) = tmpfs_opts(a, 2)?;
        sysmount::mount_point(&target, false)?;
        sysmount::tmpfs(&target, size, mode)?;
        Ok(())
    })?;
    super::add(lua, m, "mount_dev", |_, a| {
        let from = from_opt(a, 2, "mount_dev", "/dev")?;
        sysmount::dev(&a.path_str(1)?, &from)?;
        Ok(())
    })?;
    super::add(lua, m, "mount_proc", |_, a| {
        sysmount::proc(&a.path_str(1)?)?;
        Ok(())
    })?;
    super::add(lua, m, "mount_sysfs", |_, a| {
        let from = from_opt(a, 2, "mount_sysfs", "/sys")?;
        sysmount::sysfs(&a.path_str(1)?, &from)?;
        Ok(())
    })?;
    super::add(lua, m, "mount_mqueue", |_, a| {
        sysmount::mqueue(&a.path_str(1)?)?;
        Ok(())
    })?;
    super::add(lua, m, "mount_point", |_, a| {
        let path = a.path(1)?;
        let mut file = false;
        if let Some(t) = a.opt_table(2)? {
            check_keys(&t, "mount_point", &["file"])?;
            file = opt_bool(&t, "mount_point", "file", false)?;
        }
        sysmount::mount_point(&path, file)?;
        Ok(())
    })?;
    super::add(lua, m, "remount_ro", |_, a| {
        let path = a.path(1)?;
        let mut rec = true;
        if let Some(t) = a.opt_table(2)? {
            check_keys(&t, "remount_ro", &["rec"])?;
            rec = opt_bool(&t, "remount_ro", "rec", true)?;
        }
        sysmount::make_readonly(&path, rec)?;
        Ok(())
    })?;
    super::add(lua, m, "overlay", |_, a| {
        let target = a.path_str(1)?;
        let o = overlay_opts(a, 2)?;
        sysmount::overlay(&target, &o)?;
        Ok(())
    })?;
    super::add(lua, m, "chroot", |_, a| {
        sysmount::chroot(a.path(1)?)?;
        Ok(())
    })?;
    Ok(())
}
