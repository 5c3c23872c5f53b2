//! `ns.net`: links, addresses and routes of the calling process's network
//! namespace, over netlink.

use std::os::fd::AsFd;

use mlua::{Lua, Table, Value};

use super::args::{check_keys, opt_str, typename, Args, Fail, R};
use super::values::{target_of, Handle, Target};
use crate::sys::namespace::{self as sysns, Namespace};
use crate::sys::net::{self as sysnet, Cidr, NetnsRef, RouteSpec};

/// Run `f` with the network namespace `v` stands for: a pid, a path to a
/// namespace file, or a handle (which must be of a net namespace).
fn with_netns<T>(fname: &str, v: &Value, f: impl FnOnce(NetnsRef<'_>) -> crate::Result<T>) -> R<T> {
    let t = target_of(v).ok_or_else(|| {
        Fail::Msg(format!(
            "{fname}: network namespace expected (a pid, a path such as /run/netns/NAME, or a \
             handle), got {}",
            typename(v)
        ))
    })?;
    match t {
        Target::Pid(p) => Ok(f(NetnsRef::Pid(p))?),
        Target::Path(p) => {
            let h = sysns::open_path(&p, Some(Namespace::Net))?;
            Ok(f(NetnsRef::Fd(h.as_fd()))?)
        }
        Target::Handle(u) => {
            let h = u.borrow::<Handle>()?;
            h.with(|h| {
                if h.kind() != Namespace::Net {
                    return Err(crate::Error::Invalid(format!(
                        "{fname}: the handle is a {} namespace, not net",
                        h.kind()
                    )));
                }
                f(NetnsRef::Fd(h.as_fd()))
            })?
            .map_err(Fail::from)
        }
    }
}

fn cidr(a: &Args, i: usize) -> R<Cidr> {
    a.string(i)?.parse().map_err(|e| a.bad(i, e))
}

/// `DEST, {via = GW, dev = DEV}` of `ns.net.route` and `ns.net.route_del`.
fn route_args(a: &Args, fname: &str) -> R<(Option<Cidr>, RouteSpec)> {
    let dest = a.string(1)?;
    let dest = if dest == "default" {
        None
    } else {
        Some(cidr(a, 1)?)
    };
    let t = a.table(2)?;
    check_keys(&t, fname, &["via", "dev"])?;
    let via = match opt_str(&t, fname, "via")? {
        Some(v) => Some(
            v.parse()
                .map_err(|_| a.fail(format!("'via' must be an IPv4 or IPv6 address, got '{v}'")))?,
        ),
        None => None,
    };
    let spec = RouteSpec {
        via,
        dev: opt_str(&t, fname, "dev")?,
    };
    Ok((dest, spec))
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    let net = lua.create_table()?;
    super::add(lua, &net, "up", |_, a| {
        sysnet::up(&a.string(1)?)?;
        Ok(())
    })?;
    super::add(lua, &net, "down", |_, a| {
        sysnet::down(&a.string(1)?)?;
        Ok(())
    })?;
    super::add(lua, &net, "lo_up", |_, _| {
        sysnet::up("lo")?;
        Ok(())
    })?;
    super::add(lua, &net, "veth", |_, a| {
        let name = a.string(1)?;
        let peer = a.string(2)?;
        match a.opt_table(3)? {
            Some(t) => {
                check_keys(&t, "veth", &["peer_netns"])?;
                match t.get::<Value>("peer_netns")? {
                    Value::Nil => sysnet::veth(&name, &peer, None)?,
                    v => with_netns("veth", &v, |n| sysnet::veth(&name, &peer, Some(n)))?,
                }
            }
            None => sysnet::veth(&name, &peer, None)?,
        }
        Ok(())
    })?;
    super::add(lua, &net, "move", |_, a| {
        let name = a.string(1)?;
        if a.is_nil(2) {
            return Err(a.bad(2, "network namespace expected, got no value"));
        }
        with_netns("move", a.get(2), |n| sysnet::move_to(&name, n))?;
        Ok(())
    })?;
    super::add(lua, &net, "addr", |_, a| {
        let name = a.string(1)?;
        sysnet::addr(&name, cidr(a, 2)?)?;
        Ok(())
    })?;
    super::add(lua, &net, "route", |_, a| {
        let (dest, spec) = route_args(a, "route")?;
        sysnet::route(dest, &spec)?;
        Ok(())
    })?;
    super::add(lua, &net, "route_del", |_, a| {
        let (dest, spec) = route_args(a, "route_del")?;
        sysnet::route_del(dest, &spec)?;
        Ok(())
    })?;
    super::add(lua, &net, "addr_del", |_, a| {
        let name = a.string(1)?;
        sysnet::addr_del(&name, cidr(a, 2)?)?;
        Ok(())
    })?;
    super::add(lua, &net, "set", |_, a| {
        let name = a.string(1)?;
        let t = a.table(2)?;
        check_keys(&t, "set", &["mtu", "mac"])?;
        let mtu = match t.get::<Value>("mtu")? {
            Value::Nil => None,
            Value::Integer(n) if (68..=65535).contains(&n) => Some(n as u32),
            v => {
                return Err(a.fail(format!(
                    "'mtu' must be an integer from 68 to 65535, got {}",
                    super::args::typename(&v)
                )))
            }
        };
        let mac = match opt_str(&t, "set", "mac")? {
            Some(m) => Some(sysnet::parse_mac(&m)?),
            None => None,
        };
        if mtu.is_none() && mac.is_none() {
            return Err(a.fail("set: give 'mtu' and/or 'mac'"));
        }
        sysnet::set_link(&name, mtu, mac)?;
        Ok(())
    })?;
    super::add(lua, &net, "delete", |_, a| {
        sysnet::delete(&a.string(1)?)?;
        Ok(())
    })?;
    super::add(lua, &net, "links", |lua, _| {
        let out = lua.create_table()?;
        for l in sysnet::links()? {
            let t = lua.create_table()?;
            t.set("name", l.name)?;
            t.set("index", l.index)?;
            t.set("up", l.up)?;
            t.set("mtu", l.mtu)?;
            if let Some(mac) = &l.mac {
                t.set("mac", sysnet::format_mac(mac))?;
            }
            t.set("addrs", lua.create_sequence_from(l.addrs)?)?;
            out.push(t)?;
        }
        Ok(out)
    })?;
    m.set("net", net)
}
