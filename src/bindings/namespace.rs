//! `ns.unshare`, `ns.setns`, `ns.open`, `ns.id`, `ns.persist`, hostnames
//! (namespace handles are in [`super::values`]).

use mlua::{Lua, Table};

use super::args::{check_keys, opt_bool, Args, R};
use super::values::{new_handle, propagation, target, Handle, Target};
use crate::sys::cred;
use crate::sys::namespace::{self as sysns, Namespace};

fn one_kind(a: &Args, i: usize) -> R<Option<Namespace>> {
    if a.is_nil(i) {
        return Ok(None);
    }
    let kinds = a.kinds(i)?;
    let mut it = kinds.iter();
    match (it.next(), it.next()) {
        (Some(k), None) => Ok(Some(k)),
        _ => Err(a.bad(i, "a single namespace kind expected for a path or handle")),
    }
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "unshare", |_, a| {
        let kinds = a.kinds(1)?;
        let prop = propagation(a, 2, "unshare")?;
        sysns::unshare(kinds)?;
        if kinds.contains(Namespace::Mount) {
            sysns::set_propagation(prop)?;
        }
        Ok(())
    })?;
    super::add(lua, m, "setns", |_, a| {
        let mut preserve = false;
        if let Some(t) = a.opt_table(3)? {
            check_keys(&t, "setns", &["preserve_credentials"])?;
            preserve = opt_bool(&t, "setns", "preserve_credentials", false)?;
        }
        // Groups are dropped before a user namespace is joined (and the
        // rest of becoming its root done after), so which kinds will be
        // joined must be known before any is.
        let prepare = |user: bool| (user && !preserve).then(cred::before_joining_user_ns);
        let before = match target(a, 1)? {
            Target::Pid(pid) => {
                let kinds = if a.is_nil(2) { None } else { Some(a.kinds(2)?) };
                let handles = sysns::open_pid(pid, kinds)?;
                let before = prepare(handles.iter().any(|h| h.kind() == Namespace::User));
                sysns::enter_all(&handles)?;
                before
            }
            Target::Path(p) => {
                let h = sysns::open_path(&p, one_kind(a, 2)?)?;
                let before = prepare(h.kind() == Namespace::User);
                h.enter()?;
                before
            }
            Target::Handle(u) => {
                let want = one_kind(a, 2)?;
                let h = u.borrow::<Handle>()?;
                h.with(|h| match want {
                    Some(k) if k != h.kind() => Err(crate::Error::Invalid(format!(
                        "setns: the handle is a {} namespace, not {k}",
                        h.kind()
                    ))),
                    _ => {
                        let before = prepare(h.kind() == Namespace::User);
                        h.enter().map(|()| before)
                    }
                })??
            }
        };
        // nsenter's default: root of the user namespace just joined.
        if let Some(before) = before {
            cred::become_ns_root(&before)?;
        }
        Ok(())
    })?;
    super::add(lua, m, "open", |lua, a| {
        let first = a.string(1)?;
        let h = match first.parse::<Namespace>() {
            Ok(kind) => sysns::open_kind(kind, a.pid(2)?)?,
            Err(_) if first.contains('/') => sysns::open_path(&first, None)?,
            Err(e) => return Err(a.fail(e)),
        };
        Ok(new_handle(lua, h)?)
    })?;
    super::add(lua, m, "id", |_, a| {
        let k: Namespace = a.string(1)?.parse().map_err(|e| a.fail(e))?;
        Ok(sysns::id(k, a.pid(2)?)?)
    })?;
    super::add(lua, m, "persist", |_, a| {
        let k: Namespace = a.string(1)?.parse().map_err(|e| a.fail(e))?;
        let pid = a.pid(2)?;
        let path = a.path(3)?;
        sysns::persist_kind(k, pid, &path)?;
        Ok(())
    })?;
    super::add(lua, m, "unpersist", |_, a| {
        sysns::unpersist(&a.path(1)?)?;
        Ok(())
    })?;
    super::add(lua, m, "sethostname", |_, a| {
        let name = a.string(1)?;
        sysns::sethostname(&name)?;
        Ok(())
    })?;
    super::add(lua, m, "setdomainname", |_, a| {
        let name = a.string(1)?;
        sysns::setdomainname(&name)?;
        Ok(())
    })?;
    Ok(())
}
