//! Namespace handles and what a namespace may be named by (a target).

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd};

use mlua::{Lua, MetaMethod, UserData, UserDataFields, UserDataMethods, Value};

use crate::bindings::args::{check_keys, opt_str, Args, Fail, R};
use crate::sys::namespace::NsHandle;

/// A namespace handle: an open namespace file. Closing it (or `<close>`,
/// or collection) releases the file descriptor.
pub(crate) struct Handle(pub RefCell<Option<NsHandle>>);

impl Handle {
    pub(crate) fn with<T>(&self, f: impl FnOnce(&NsHandle) -> T) -> R<T> {
        match &*self.0.borrow() {
            Some(h) => Ok(f(h)),
            None => Err(Fail::Msg("namespace handle is closed".into())),
        }
    }
}

impl UserData for Handle {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("kind", |_, this| {
            Ok(this.0.borrow().as_ref().map(|h| h.kind().name()))
        });
        fields.add_field_method_get("inode", |_, this| {
            Ok(this.0.borrow().as_ref().map(|h| h.inode()))
        });
        fields.add_field_method_get("fd", |_, this| {
            Ok(this.0.borrow().as_ref().map(|h| h.as_fd().as_raw_fd()))
        });
        fields.add_field_method_get("path", |_, this| {
            Ok(this.0.borrow().as_ref().map(|h| h.path().to_string()))
        });
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            crate::bindings::add(lua, &m, "close", |_, a| {
                let ud = a.userdata::<Handle>(1, "namespace handle")?;
                ud.borrow::<Handle>()?.0.borrow_mut().take();
                Ok(())
            })?;
            crate::bindings::add(lua, &m, "enter", |_, a| {
                let ud = a.userdata::<Handle>(1, "namespace handle")?;
                let h = ud.borrow::<Handle>()?;
                h.with(|h| h.enter())??;
                Ok(())
            })?;
            Ok(m)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match &*this.0.borrow() {
                Some(h) => format!("namespace {}:[{}]", h.kind(), h.inode()),
                None => "namespace (closed)".to_string(),
            })
        });
        // A function, not a method: Lua also calls a handle's __eq for
        // `process == handle`, with the process first, and that must be
        // false rather than a "bad self" error.
        methods.add_meta_function(
            MetaMethod::Eq,
            |_, (a, b): (mlua::AnyUserData, mlua::AnyUserData)| {
                let (Ok(a), Ok(b)) = (a.borrow::<Handle>(), b.borrow::<Handle>()) else {
                    return Ok(false);
                };
                let a = a.0.borrow();
                let b = b.0.borrow();
                Ok(match (a.as_ref(), b.as_ref()) {
                    (Some(a), Some(b)) => a.inode() == b.inode() && a.dev() == b.dev(),
                    _ => false,
                })
            },
        );
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            this.0.borrow_mut().take();
            Ok(())
        });
    }
}

/// What a namespace target may be: a pid, a path, or a handle.
pub(crate) enum Target {
    Pid(i32),
    Path(String),
    Handle(mlua::AnyUserData),
}

pub(crate) fn target(a: &Args, i: usize) -> R<Target> {
    match a.get(i) {
        Value::Integer(_) | Value::Number(_) => Ok(Target::Pid(a.pid(i)?.unwrap_or(0))),
        v => target_of(v).ok_or_else(|| {
            a.bad(
                i,
                format!(
                    "pid, process, path or namespace handle expected, got {}",
                    crate::bindings::args::typename(v)
                ),
            )
        }),
    }
}

/// A pid, path or handle given as a value (an option's); None when it is
/// none of them.
pub(crate) fn target_of(v: &Value) -> Option<Target> {
    match v {
        Value::UserData(u) if u.is::<Handle>() => Some(Target::Handle(u.clone())),
        // A process value stands for its pid, so `{peer_netns = p}` works.
        Value::UserData(u) if u.is::<super::process::Process>() => {
            let p = u.borrow::<super::process::Process>().ok()?;
            let pid = p.child.borrow().pid();
            Some(Target::Pid(pid))
        }
        Value::String(s) => {
            let s = s.to_string_lossy();
            match s.parse::<i32>() {
                Ok(p) if p > 0 => Some(Target::Pid(p)),
                _ => Some(Target::Path(s)),
            }
        }
        Value::Integer(n) if *n > 0 && *n <= i32::MAX as i64 => Some(Target::Pid(*n as i32)),
        _ => None,
    }
}

/// The `propagation` option of the table at `i` (ns.unshare, ns.clone)
/// for a new mount namespace: private unless asked otherwise, as with
/// `unshare(1)`.
pub(crate) fn propagation(a: &Args, i: usize, fname: &str) -> R<crate::Propagation> {
    let Some(t) = a.opt_table(i)? else {
        return Ok(crate::Propagation::Private);
    };
    check_keys(&t, fname, &["propagation"])?;
    match opt_str(&t, fname, "propagation")? {
        Some(p) => p.parse().map_err(|e| a.fail(e)),
        None => Ok(crate::Propagation::Private),
    }
}

pub(crate) fn new_handle(lua: &Lua, h: NsHandle) -> mlua::Result<mlua::AnyUserData> {
    lua.create_userdata(Handle(RefCell::new(Some(h))))
}
