//! The `net` and `ports` options of `ns.spawn`/`ns.run`: a user-mode
//! network (pasta, slirp4netns) for the new network namespace.

use mlua::{Lua, Table, Value};

use super::args::{check_keys, typename, Args, R};
use crate::sys::spawn::Spawn;
use crate::sys::usernet::{self, Port, Proto, UserNet};

/// One entry of `ports`: `"[ADDR:]HOST:GUEST[/PROTO]"` or
/// `{host =, guest =, proto =, addr =}`.
fn port(a: &Args, i: usize, v: Value) -> R<Port> {
    let what = format!("ports[{i}]");
    match v {
        Value::String(s) => s
            .to_str()?
            .parse::<Port>()
            .map_err(|e| a.fail(format!("{what}: {e}"))),
        Value::Table(t) => {
            check_keys(&t, &what, &["addr", "guest", "host", "proto"])?;
            let num = |key: &str| -> R<Option<u16>> {
                match t.get::<Value>(key)? {
                    Value::Nil => Ok(None),
                    Value::Integer(n) if (1..=65535).contains(&n) => Ok(Some(n as u16)),
                    other => Err(a.fail(format!(
                        "{what}.{key} must be a port number from 1 to 65535, got {}",
                        match other {
                            Value::Integer(n) => n.to_string(),
                            o => typename(&o).to_string(),
                        }
                    ))),
                }
            };
            let host = num("host")?.ok_or_else(|| a.fail(format!("{what}: host is missing")))?;
            let guest = num("guest")?.unwrap_or(host);
            let proto = match t.get::<Option<String>>("proto")? {
                None => Proto::Tcp,
                Some(p) => p.parse().map_err(|e| a.fail(format!("{what}: {e}")))?,
            };
            let addr = match t.get::<Option<String>>("addr")? {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| {
                    a.fail(format!("{what}.addr: '{s}' is not an IP address"))
                })?),
            };
            Ok(Port {
                host,
                guest,
                proto,
                addr,
            })
        }
        other => Err(a.fail(format!(
            "{what} must be a string like \"8080:80\" or {{host =, guest =, proto =, addr =}}, got {}",
            typename(&other)
        ))),
    }
}

/// Apply `net` and `ports` from `opts` to `sp`.
pub(crate) fn apply<'l>(a: &Args, opts: &Table, mut sp: Spawn<'l>) -> R<Spawn<'l>> {
    match opts.get::<Value>("net")? {
        Value::Nil => {}
        Value::String(s) => {
            let n: UserNet = s.to_str()?.parse().map_err(|e| a.fail(e))?;
            sp = sp.net(n);
        }
        other => {
            return Err(a.fail(format!(
                "net must be \"pasta\" or \"slirp4netns\", got {}",
                typename(&other)
            )))
        }
    }
    match opts.get::<Value>("ports")? {
        Value::Nil => {}
        Value::Table(t) => {
            for (i, v) in t.sequence_values::<Value>().enumerate() {
                sp = sp.port(port(a, i + 1, v?)?);
            }
        }
        other => {
            return Err(a.fail(format!(
                "ports must be a list like {{\"8080:80\"}}, got {}",
                typename(&other)
            )))
        }
    }
    Ok(sp)
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    // Which tool `net = NAME` runs (pasta falls back to slirp4netns), its
    // path and its DNS forwarder's address inside: what a recipe writes
    // into the sandbox's /etc/resolv.conf.
    super::add(lua, m, "usernet", |lua, a| {
        let n: UserNet = a.string(1)?.parse().map_err(|e| a.bad(1, e))?;
        let (tool, path) = usernet::resolve(n).map_err(|e| a.fail(e))?;
        let t = lua.create_table()?;
        t.set("tool", tool.name())?;
        t.set("path", path.to_string_lossy().into_owned())?;
        t.set("dns", tool.dns())?;
        Ok(t)
    })
}
