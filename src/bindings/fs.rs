//! `ns.chdir`, `ns.mkdir`, `ns.symlink`, `ns.write_file`, `ns.read_file`, `ns.chmod`,
//! `ns.readdir`.

use mlua::{Lua, Table};

use super::args::{check_keys, opt_bool, Args, R};
use crate::error::Context;
use crate::sys::fs;

fn mode(a: &Args, i: usize) -> R<Option<u32>> {
    super::args::mode_of(a.get(i)).map_err(|m| a.bad(i, m))
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "chdir", |_, a| {
        fs::chdir(&a.path(1)?)?;
        Ok(())
    })?;
    super::add(lua, m, "mkdir", |_, a| {
        let path = a.path(1)?;
        let mode = mode(a, 2)?.unwrap_or(0o755);
        let mut parents = false;
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "mkdir", &["parents"])?;
            parents = opt_bool(&t, "mkdir", "parents", false)?;
        }
        fs::mkdir(&path, mode, parents)?;
        Ok(())
    })?;
    super::add(lua, m, "chmod", |_, a| {
        let path = a.path(1)?;
        let m = mode(a, 2)?.ok_or_else(|| a.bad(2, "mode expected, got no value"))?;
        fs::chmod(&path, m)?;
        Ok(())
    })?;
    super::add(lua, m, "symlink", |_, a| {
        fs::symlink(&a.path(1)?, &a.path(2)?)?;
        Ok(())
    })?;
    super::add(lua, m, "write_file", |_, a| {
        let path = a.path(1)?;
        let data = a.bytes(2)?;
        fs::write_file(&path, &data, mode(a, 3)?)?;
        Ok(())
    })?;
    super::add(lua, m, "read_file", |lua, a| {
        let data = fs::read_file(&a.path(1)?)?;
        Ok(lua.create_string(data)?)
    })?;
    super::add(lua, m, "mkfifo", |_, a| {
        let path = a.path(1)?;
        let mode = mode(a, 2)?.unwrap_or(0o600);
        crate::sys::ops::act(
            || format!("mkfifo({}, {mode:o})", path.display()),
            || nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(mode)),
        )
        .op(|| format!("mkfifo {}", path.display()))?;
        Ok(())
    })?;
    // An fd the caller handed us (`--info-fd 5`), as a pipe value: it
    // becomes the value's, so its close() is the fd's close, which is how
    // the reader at the other end sees end of file.
    super::add(lua, m, "fdopen", |lua, a| {
        let fd = a.integer(1)?;
        let mode = a.opt_string(2)?.unwrap_or_else(|| "r".into());
        let write = match mode.as_str() {
            "r" => false,
            "w" => true,
            other => return Err(a.fail(format!("mode must be \"r\" or \"w\", got '{other}'"))),
        };
        let fd = i32::try_from(fd).map_err(|_| a.fail(format!("bad fd {fd}")))?;
        let f = crate::sys::fs::adopt_fd(fd).map_err(|e| a.fail(e))?;
        Ok(lua.create_userdata(super::values::Pipe::new(f, write, None))?)
    })?;
    // The kernel's answers, not $PWD's (unset, or stale after a chdir).
    super::add(lua, m, "getcwd", |lua, _| {
        use std::os::unix::ffi::OsStrExt;
        let d = std::env::current_dir().op(|| "getcwd".into())?;
        Ok(lua.create_string(d.as_os_str().as_bytes())?)
    })?;
    super::add(lua, m, "realpath", |lua, a| {
        use std::os::unix::ffi::OsStrExt;
        let p = a.path(1)?;
        let r = std::fs::canonicalize(&p).op(|| format!("realpath {}", p.display()))?;
        Ok(lua.create_string(r.as_os_str().as_bytes())?)
    })?;
    super::add(lua, m, "readdir", |lua, a| {
        use std::os::unix::ffi::OsStrExt;
        let names = fs::readdir(a.path(1)?)?;
        let names = names
            .iter()
            .map(|n| lua.create_string(n.as_bytes()))
            .collect::<mlua::Result<Vec<_>>>()?;
        Ok(lua.create_sequence_from(names)?)
    })?;
    Ok(())
}
