//! What nsrun.oci needs and the public API does not offer: a lock per
//! container id, device nodes with their owner, personality(2), a cheap
//! existence check and a pause. Shipped-module helpers only (see
//! `shipped_helpers`), not `ns.*`; the system calls are `sys`'s.

use std::fs::File;
use std::path::Path;

use mlua::{Lua, Table, UserData, UserDataMethods};

use crate::sys::{fs, process};

/// A runtime error with the message as it is (the module adds context).
fn lua_err(e: crate::Error) -> mlua::Error {
    mlua::Error::runtime(e.to_string())
}

/// An exclusive flock(2) on a lock file; released by `unlock` (or when
/// closed or collected, or when the process ends).
struct Lock(Option<File>);

impl UserData for Lock {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method_mut("unlock", |_, this, ()| {
            this.0.take();
            Ok(())
        });
        m.add_meta_method_mut(mlua::MetaMethod::Close, |_, this, _: mlua::MultiValue| {
            this.0.take();
            Ok(())
        });
    }
}

pub(crate) fn add(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set(
        "lock",
        lua.create_function(|_, path: String| {
            Ok(Lock(fs::lock_file(Path::new(&path)).map_err(lua_err)?))
        })?,
    )?;
    t.set(
        "mknod",
        lua.create_function(|_, (p, k, ma, mi, mo): (String, String, u32, u32, u32)| {
            fs::mknod(Path::new(&p), &k, ma, mi, mo).map_err(lua_err)
        })?,
    )?;
    t.set(
        "chown",
        lua.create_function(|_, (p, u, g): (String, u32, u32)| {
            fs::lchown(Path::new(&p), u, g).map_err(lua_err)
        })?,
    )?;
    t.set(
        "personality",
        lua.create_function(|_, d: String| process::personality(&d).map_err(lua_err))?,
    )?;
    // A pause while the kernel finishes with a process or a cgroup.
    t.set(
        "sleep",
        lua.create_function(|_, secs: f64| {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.clamp(0.0, 10.0)));
            Ok(())
        })?,
    )?;
    // Whether a path names something (symlinks followed): one stat, where
    // ns.realpath reads every component's link; it runs some thirty times
    // a start (cgroup levels, state files).
    t.set(
        "exists",
        lua.create_function(|_, p: String| Ok(Path::new(&p).try_exists().unwrap_or(false)))?,
    )?;
    Ok(())
}
