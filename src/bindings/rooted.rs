//! `ns.root(dir)`: a handle whose methods resolve every path inside `dir`
//! (see `sys/rooted.rs`), with the option tables of the plain `ns.*`
//! functions they mirror.

use std::cell::RefCell;

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::args::{check_keys, names_of, opt_bool, typename, Args, Fail, R};
use super::values::{overlay_opts_with, tmpfs_opts};
use crate::sys::mount::BindOpts;
use crate::sys::rooted::{Lockdown, Root, RootBind};

/// A root handle; closing it (or `<close>`, or collection) releases its fd.
pub(crate) struct RootHandle(RefCell<Option<Root>>);

/// `self` of a method, open.
fn with<T>(a: &Args, f: impl FnOnce(&mut Root) -> R<T>) -> R<T> {
    let ud: AnyUserData = a.userdata::<RootHandle>(1, "root handle")?;
    let h = ud.borrow::<RootHandle>()?;
    let mut r = h.0.borrow_mut();
    match r.as_mut() {
        Some(root) => f(root),
        None => Err(Fail::Msg(format!(
            "{}: the root handle is closed",
            a.name()
        ))),
    }
}

fn mode(a: &Args, i: usize) -> R<Option<u32>> {
    super::args::mode_of(a.get(i)).map_err(|m| a.bad(i, m))
}

/// A list of names from option `key` of `t` (nil: none).
fn list(t: &Table, fname: &str, key: &str) -> R<Vec<String>> {
    match t.get::<Value>(key)? {
        Value::Nil => Ok(Vec::new()),
        v => names_of(&v).ok_or_else(|| {
            Fail::Msg(format!(
                "{fname}: option '{key}' must be a list of paths, got {}",
                typename(&v)
            ))
        }),
    }
}

impl UserData for RootHandle {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("path", |_, this| {
            Ok(this.0.borrow().as_ref().map(|r| r.path().to_string()))
        });
        fields.add_field_method_get("fd", |_, this| {
            Ok(this.0.borrow().as_ref().and_then(Root::fd))
        });
        fields.add_meta_field_with("__index", methods);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match &*this.0.borrow() {
                Some(r) => format!("root {}", r.path()),
                None => "root (closed)".to_string(),
            })
        });
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            this.0.borrow_mut().take();
            Ok(())
        });
    }
}

fn methods(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    super::add(lua, &m, "close", |_, a| {
        let ud = a.userdata::<RootHandle>(1, "root handle")?;
        ud.borrow::<RootHandle>()?.0.borrow_mut().take();
        Ok(())
    })?;
    super::add(lua, &m, "mkdir", |_, a| {
        let path = a.path_str(2)?;
        let mode = mode(a, 3)?.unwrap_or(0o755);
        let mut parents = false;
        if let Some(t) = a.opt_table(4)? {
            check_keys(&t, "mkdir", &["parents"])?;
            parents = opt_bool(&t, "mkdir", "parents", false)?;
        }
        with(a, |r| Ok(r.mkdir(&path, mode, parents)?))
    })?;
    super::add(lua, &m, "write_file", |_, a| {
        let path = a.path_str(2)?;
        let data = a.bytes(3)?;
        let mode = mode(a, 4)?;
        with(a, |r| Ok(r.write_file(&path, &data, mode)?))
    })?;
    super::add(lua, &m, "symlink", |_, a| {
        let (target, path) = (a.path_str(2)?, a.path_str(3)?);
        with(a, |r| Ok(r.symlink(&target, &path)?))
    })?;
    super::add(lua, &m, "chmod", |_, a| {
        let path = a.path_str(2)?;
        let m = mode(a, 3)?.ok_or_else(|| a.bad(3, "mode expected, got no value"))?;
        with(a, |r| Ok(r.chmod(&path, m)?))
    })?;
    super::add(lua, &m, "bind", |_, a| {
        let (source, dest) = (a.path_str(2)?, a.path_str(3)?);
        let mut o = RootBind {
            opts: BindOpts::default(),
            try_: false,
        };
        if let Some(t) = a.opt_table(4)? {
            check_keys(
                &t,
                "bind",
                &["ro", "rec", "create", "nosuid", "nodev", "try"],
            )?;
            o.opts.ro = opt_bool(&t, "bind", "ro", false)?;
            o.opts.nosuid = opt_bool(&t, "bind", "nosuid", false)?;
            o.opts.nodev = opt_bool(&t, "bind", "nodev", false)?;
            o.opts.rec = opt_bool(&t, "bind", "rec", true)?;
            o.opts.create = opt_bool(&t, "bind", "create", false)?;
            o.try_ = opt_bool(&t, "bind", "try", false)?;
        }
        with(a, |r| Ok(r.bind(&source, &dest, o)?))
    })?;
    super::add(lua, &m, "tmpfs", |_, a| {
        let path = a.path_str(2)?;
        let (size, mode) = tmpfs_opts(a, 3)?;
        with(a, |r| Ok(r.tmpfs(&path, size, mode)?))
    })?;
    super::add(lua, &m, "mount_proc", |_, a| {
        let path = a.path_str(2)?;
        let mut lock = Lockdown::default();
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "mount_proc", &["readonly", "mask"])?;
            lock.readonly = list(&t, "mount_proc", "readonly")?;
            lock.mask = list(&t, "mount_proc", "mask")?;
        }
        with(a, |r| Ok(r.proc(&path, &lock)?))
    })?;
    super::add(lua, &m, "mount_sysfs", |_, a| {
        let path = a.path_str(2)?;
        let (mut from, mut mask) = ("/sys".to_string(), Vec::new());
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "mount_sysfs", &["from", "mask"])?;
            from = super::args::opt_str(&t, "mount_sysfs", "from")?.unwrap_or(from);
            mask = list(&t, "mount_sysfs", "mask")?;
        }
        with(a, |r| Ok(r.sysfs(&path, &from, &mask)?))
    })?;
    super::add(lua, &m, "mount_dev", |_, a| {
        let path = a.path_str(2)?;
        let (mut from, mut shm) = ("/dev".to_string(), true);
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "mount_dev", &["from", "shm"])?;
            if let Some(f) = super::args::opt_str(&t, "mount_dev", "from")? {
                from = f;
            }
            shm = opt_bool(&t, "mount_dev", "shm", true)?;
        }
        with(a, |r| Ok(r.dev(&path, &from, shm)?))
    })?;
    super::add(lua, &m, "mount_mqueue", |_, a| {
        let path = a.path_str(2)?;
        with(a, |r| Ok(r.mqueue(&path)?))
    })?;
    super::add(lua, &m, "overlay", |_, a| {
        let path = a.path_str(2)?;
        let (o, t) = overlay_opts_with(a, 3, &["userxattr"])?;
        let userxattr = match t.get::<Value>("userxattr")? {
            Value::Nil => None,
            _ => Some(opt_bool(&t, "overlay", "userxattr", false)?),
        };
        with(a, |r| Ok(r.overlay(&path, &o, userxattr)?))
    })?;
    super::add(lua, &m, "remount_ro", |_, a| {
        let path = a.path_str(2)?;
        let mut rec = true;
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "remount_ro", &["rec"])?;
            rec = opt_bool(&t, "remount_ro", "rec", true)?;
        }
        with(a, |r| Ok(r.remount_ro(&path, rec)?))
    })?;
    super::add(lua, &m, "mount", |_, a| {
        let path = a.path_str(2)?;
        let t = a.opt_table(3)?.ok_or_else(|| {
            a.bad(
                3,
                "options expected: {type = \"devpts\", source =, options = {…}}",
            )
        })?;
        check_keys(&t, "mount", &["type", "source", "options"])?;
        let fstype = super::args::opt_str(&t, "mount", "type")?
            .ok_or_else(|| a.fail("mount: option 'type' is required (the file system type)"))?;
        let source = super::args::opt_str(&t, "mount", "source")?;
        let options = list(&t, "mount", "options")?;
        with(a, |r| {
            Ok(r.mount_fs(&path, &fstype, source.as_deref(), &options)?)
        })
    })?;
    super::add(lua, &m, "mask", |_, a| {
        let path = a.path_str(2)?;
        with(a, |r| Ok(r.mask(&path)?))
    })?;
    Ok(m)
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "root", |lua, a| {
        let root = Root::open(&a.path_str(1)?)?;
        Ok(lua.create_userdata(RootHandle(RefCell::new(Some(root))))?)
    })
}
