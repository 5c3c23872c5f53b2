//! The hardening options of `ns.spawn` (`caps`, `seccomp`, `rlimits`,
//! `cgroup`) and `ns.cgroup`: Lua values → the `sys` types.

use std::cell::RefCell;

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use super::args::{check_keys, names_of, typename, Args, R};
use super::values::{stats_table, Process};
use crate::sys::caps::{self as syscaps, Caps};
use crate::sys::cgroup::{Cgroup, Limits};
use crate::sys::rlimit::{self, Rlimit};
use crate::sys::seccomp::{self, Action, Policy};

/// Keys of a `seccomp` table.
pub(crate) const SECCOMP_KEYS: &[&str] = &["default", "allow", "deny", "errno", "action", "bpf"];
/// Keys of a `cgroup` table (and of `ns.cgroup`'s options).
pub(crate) const CGROUP_KEYS: &[&str] = &["memory", "pids", "cpu"];

fn names(a: &Args, v: Value, what: &str) -> R<Vec<String>> {
    names_of(&v).ok_or_else(|| a.fail(format!("{what} must be a list or a comma string of names")))
}

/// `caps = {keep = {...}}` or `{drop = {...}}`.
pub(crate) fn caps(a: &Args, v: Value) -> R<Option<Caps>> {
    let t = match v {
        // false: leave the sets as they are (bubblewrap run by root).
        Value::Nil | Value::Boolean(false) => return Ok(None),
        Value::Table(t) => t,
        other => {
            return Err(a.fail(format!(
                "caps must be false or a table like {{keep = {{\"net_bind_service\"}}}} or {{drop = {{...}}}}, got {}",
                typename(&other)
            )))
        }
    };
    check_keys(&t, "caps", &["keep", "drop", "bounding", "sets"])?;
    let keep = t.get::<Value>("keep")?;
    let drop = t.get::<Value>("drop")?;
    let mask = |v: Value, what: &str| -> R<u64> {
        let n = names(a, v, what)?;
        syscaps::mask_of(&n).map_err(|e| a.fail(format!("{what}: {e}")))
    };
    let bounding = t.get::<Value>("bounding")?;
    let sets = t.get::<Value>("sets")?;
    let given = [&keep, &drop, &bounding, &sets]
        .iter()
        .filter(|v| !v.is_nil())
        .count();
    if given > 1 {
        return Err(
            a.fail("caps: give keep or drop, not both (one of keep, drop, bounding or sets)")
        );
    }
    if !bounding.is_nil() {
        return Ok(Some(Caps::Bound(mask(bounding, "caps.bounding")?)));
    }
    if !sets.is_nil() {
        return Ok(Some(Caps::Sets(mask(sets, "caps.sets")?)));
    }
    match (keep.is_nil(), drop.is_nil()) {
        (false, true) => Ok(Some(Caps::Keep(mask(keep, "caps.keep")?))),
        (true, false) => Ok(Some(Caps::Drop(mask(drop, "caps.drop")?))),
        (false, false) => Err(a.fail("caps: give keep or drop, not both")),
        (true, true) => Err(a.fail("caps: needs keep = {...} or drop = {...}")),
    }
}

fn action(a: &Args, name: &str, errno: i32, key: &str) -> R<Action> {
    Ok(match name {
        "allow" => Action::Allow,
        "errno" => Action::Errno(errno),
        "kill" => Action::Kill,
        "log" => Action::Log,
        other => {
            let hint = crate::error::suggest(other, ["allow", "errno", "kill", "log"])
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(a.fail(format!(
                "seccomp.{key}: unknown action '{other}'{hint}; known: allow, errno, kill, log"
            )));
        }
    })
}

/// `seccomp = "default"` or `{default =, allow =, deny =, errno =, action =}`.
pub(crate) fn seccomp(a: &Args, v: Value) -> R<Option<Policy>> {
    let t = match v {
        Value::Nil | Value::Boolean(false) => return Ok(None),
        Value::String(s) if s.to_string_lossy() == "default" => {
            return Ok(Some(Policy::preset_default(libc_eperm())))
        }
        Value::Table(t) => t,
        other => {
            return Err(a.fail(format!(
                "seccomp must be \"default\", false or a table like {{default = \"allow\", deny = {{\"ptrace\"}}}}, got {}",
                match &other {
                    Value::String(s) => format!("'{}'", s.to_string_lossy()),
                    o => typename(o).to_string(),
                }
            )))
        }
    };
    check_keys(&t, "seccomp", SECCOMP_KEYS)?;
    // Compiled programs (a string of sock_filter bytes, or a list of them).
    let mut raw = Policy::new();
    match t.get::<Value>("bpf")? {
        Value::Nil => {}
        Value::String(s) => {
            raw = Policy::raw(&s.as_bytes()).map_err(|e| a.fail(format!("seccomp.bpf: {e}")))?
        }
        Value::Table(l) => {
            for (i, v) in l.sequence_values::<mlua::String>().enumerate() {
                let v = v.map_err(|_| {
                    a.fail(format!(
                        "seccomp.bpf[{}] must be a string of BPF bytes",
                        i + 1
                    ))
                })?;
                raw = raw.and(
                    Policy::raw(&v.as_bytes())
                        .map_err(|e| a.fail(format!("seccomp.bpf[{}]: {e}", i + 1)))?,
                );
            }
        }
        other => {
            return Err(a.fail(format!(
                "seccomp.bpf must be a string of compiled BPF or a list of them, got {}",
                typename(&other)
            )))
        }
    }
    if !raw.is_empty()
        && ["default", "allow", "deny", "errno", "action"]
            .iter()
            .all(|k| t.get::<Value>(*k).map(|v| v.is_nil()).unwrap_or(false))
    {
        return Ok(Some(raw));
    }
    let str_of = |key: &str| -> R<Option<String>> {
        match t.get::<Value>(key)? {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_string_lossy())),
            Value::Integer(n) => Ok(Some(n.to_string())),
            other => Err(a.fail(format!(
                "seccomp.{key} must be a string, got {}",
                typename(&other)
            ))),
        }
    };
    let errno = match str_of("errno")? {
        Some(e) => seccomp::parse_errno(&e).map_err(|e| a.fail(format!("seccomp.errno: {e}")))?,
        None => libc_eperm(),
    };
    let default = action(
        a,
        str_of("default")?.as_deref().unwrap_or("allow"),
        errno,
        "default",
    )?;
    let deny_action = action(
        a,
        str_of("action")?.as_deref().unwrap_or("errno"),
        errno,
        "action",
    )?;
    let list = |key: &str| -> R<Option<Vec<String>>> {
        match t.get::<Value>(key)? {
            Value::Nil => Ok(None),
            v => Ok(Some(names(a, v, &format!("seccomp.{key}"))?)),
        }
    };
    let allow = list("allow")?;
    let deny = list("deny")?;
    let wrap = |k: &'static str| move |e: crate::Error| a.fail(format!("seccomp.{k}: {e}"));
    let mut p = Policy::new();
    if let Some(d) = deny {
        if deny_action == Action::Allow {
            return Err(a.fail("seccomp.action: denied calls need an action other than allow"));
        }
        p = p.deny(&d, deny_action).map_err(wrap("deny"))?;
    }
    p = match allow {
        Some(l) => p.allow(&l, default).map_err(wrap("allow"))?,
        None => p.all(default),
    };
    Ok(Some(p.and(raw)))
}

fn libc_eperm() -> i32 {
    seccomp::parse_errno("EPERM").unwrap_or(1)
}

fn size_or_count(a: &Args, v: &Value, what: &str, bytes: bool) -> R<u64> {
    match v {
        Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 1.8e19 => Ok(*n as u64),
        Value::String(s) => {
            let s = s.to_string_lossy();
            if bytes || matches!(s.as_str(), "unlimited" | "infinity" | "max") {
                let s = if s == "max" {
                    "unlimited".to_string()
                } else {
                    s
                };
                rlimit::parse_size(&s).map_err(|e| a.fail(format!("{what}: {e}")))
            } else {
                s.parse::<u64>().map_err(|_| {
                    a.fail(format!(
                        "{what}: a count or \"unlimited\" expected, got '{s}'"
                    ))
                })
            }
        }
        other => Err(a.fail(format!(
            "{what}: a non-negative number{} expected, got {}",
            if bytes {
                " or a size like \"256M\""
            } else {
                ""
            },
            match other {
                Value::Integer(n) => n.to_string(),
                Value::Number(n) => n.to_string(),
                o => typename(o).to_string(),
            }
        ))),
    }
}

/// `rlimits = {nofile = 64, as = "256M", core = {0, 0}, ...}`.
pub(crate) fn rlimits(a: &Args, v: Value) -> R<Vec<Rlimit>> {
    let t = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(t) => t,
        other => return Err(a.fail(format!("rlimits must be a table, got {}", typename(&other)))),
    };
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = k else {
            return Err(a.fail("rlimits: keys must be limit names such as nofile"));
        };
        let name = k.to_string_lossy();
        // Checked first, for the "did you mean" message.
        Rlimit::new(&name, 0, 0).map_err(|e| a.fail(format!("rlimits: {e}")))?;
        let bytes = Rlimit::is_size(&name.to_ascii_lowercase());
        let what = format!("rlimits.{name}");
        let (soft, hard) = match &v {
            Value::Table(p) => {
                let s: Value = p.get(1)?;
                let h: Value = p.get(2)?;
                if h.is_nil() || p.raw_len() != 2 {
                    return Err(a.fail(format!("{what}: a pair must be {{soft, hard}}")));
                }
                (
                    size_or_count(a, &s, &what, bytes)?,
                    size_or_count(a, &h, &what, bytes)?,
                )
            }
            _ => {
                let n = size_or_count(a, &v, &what, bytes)?;
                (n, n)
            }
        };
        out.push(Rlimit::new(&name, soft, hard).map_err(|e| a.fail(e))?);
    }
    Ok(out)
}

/// `cgroup = {memory = "256M", pids = 64, cpu = 0.5}`.
pub(crate) fn cgroup(a: &Args, v: Value) -> R<Option<Limits>> {
    let t = match v {
        Value::Nil => return Ok(None),
        Value::Table(t) => t,
        other => return Err(a.fail(format!("cgroup must be a table, got {}", typename(&other)))),
    };
    check_keys(&t, "cgroup", CGROUP_KEYS)?;
    let mut l = Limits::default();
    let mem = t.get::<Value>("memory")?;
    if !mem.is_nil() {
        l.memory = Some(size_or_count(a, &mem, "cgroup.memory", true)?);
    }
    let pids = t.get::<Value>("pids")?;
    if !pids.is_nil() {
        l.pids = Some(size_or_count(a, &pids, "cgroup.pids", false)?);
    }
    match t.get::<Value>("cpu")? {
        Value::Nil => {}
        Value::Integer(n) if n > 0 => l.cpu = Some(n as f64),
        Value::Number(n) if n > 0.0 && n.is_finite() => l.cpu = Some(n),
        other => {
            return Err(a.fail(format!(
                "cgroup.cpu: a positive number of CPUs (0.5 = half of one) expected, got {}",
                typename(&other)
            )))
        }
    }
    Ok(Some(l))
}

/// Keys of a `landlock` table.
pub(crate) const LANDLOCK_KEYS: &[&str] = &["ro", "rw", "tcp_bind", "tcp_connect", "scope"];

/// `tcp_bind = {8080, 8443}`: whole numbers from 1 to 65535.
fn ports(a: &Args, v: Value, key: &str) -> R<Option<Vec<u16>>> {
    let t = match v {
        Value::Nil => return Ok(None),
        Value::Table(t) => t,
        other => {
            return Err(a.fail(format!(
                "landlock.{key} must be a list of ports like {{443, 8080}}, got {}",
                typename(&other)
            )))
        }
    };
    let mut out = Vec::new();
    for (i, v) in t.sequence_values::<Value>().enumerate() {
        let v = v?;
        let port = match &v {
            Value::Integer(n) => Some(*n),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(*n as i64),
            _ => None,
        };
        match port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
            Some(p) => out.push(p),
            None => {
                let shown = match &v {
                    Value::Integer(n) => n.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => format!("'{}'", s.to_string_lossy()),
                    o => typename(o).to_string(),
                };
                return Err(a.fail(format!(
                    "landlock.{key}[{}]: a port is a whole number from 1 to 65535, got {shown}",
                    i + 1
                )));
            }
        }
    }
    if out.len() != t.raw_len() || t.pairs::<Value, Value>().count() != out.len() {
        return Err(a.fail(format!(
            "landlock.{key} must be a list of ports like {{443, 8080}}"
        )));
    }
    Ok(Some(out))
}

/// `landlock = {ro =, rw =, tcp_bind =, tcp_connect =, scope =}`. Checked
/// against the kernel here, in the parent before anything starts: a
/// request this kernel cannot enforce is an error, never a weaker sandbox.
pub(crate) fn landlock(a: &Args, v: Value) -> R<Option<crate::sys::landlock::Rules>> {
    use crate::sys::landlock::{Rules, Scope};
    let t = match v {
        Value::Nil => return Ok(None),
        Value::Table(t) => t,
        other => {
            return Err(a.fail(format!(
                "landlock must be a table like {{ro = {{\"/usr\"}}, rw = {{\"/tmp\"}}, tcp_connect = {{443}}}}, got {}",
                typename(&other)
            )))
        }
    };
    check_keys(&t, "landlock", LANDLOCK_KEYS)?;
    let list = |key: &str| -> R<Option<Vec<String>>> {
        match t.get::<Value>(key)? {
            Value::Nil => Ok(None),
            v => Ok(Some(names(a, v, &format!("landlock.{key}"))?)),
        }
    };
    let ro = list("ro")?;
    let rw = list("rw")?;
    let mut scope = Vec::new();
    for n in list("scope")?.unwrap_or_default() {
        let s = Scope::parse(&n).map_err(|e| a.fail(e))?;
        scope.push(s);
    }
    scope.sort();
    scope.dedup();
    let rules = Rules {
        fs: ro.is_some() || rw.is_some(),
        ro: ro.unwrap_or_default(),
        rw: rw.unwrap_or_default(),
        tcp_bind: ports(a, t.get("tcp_bind")?, "tcp_bind")?,
        tcp_connect: ports(a, t.get("tcp_connect")?, "tcp_connect")?,
        scope,
    };
    rules.check().map_err(|e| a.fail(e))?;
    Ok(Some(rules))
}

/// `ns.cgroup(opts)`.
pub(crate) struct CgroupValue(RefCell<Option<Cgroup>>);

fn this_cg(a: &Args) -> R<AnyUserData> {
    a.userdata::<CgroupValue>(1, "cgroup")
}

fn with_cg<T>(a: &Args, f: impl FnOnce(&mut Cgroup) -> R<T>) -> R<T> {
    let ud = this_cg(a)?;
    let v = ud.borrow::<CgroupValue>()?;
    let mut g = v.0.borrow_mut();
    match g.as_mut() {
        Some(c) => f(c),
        None => Err(a.fail("the cgroup is closed")),
    }
}

impl UserData for CgroupValue {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| {
            Ok(this.0.borrow().as_ref().map(|c| c.name().to_string()))
        });
        fields.add_field_method_get("paths", |_, this| {
            Ok(this.0.borrow().as_ref().map(|c| {
                c.paths()
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            }))
        });
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            super::add(lua, &m, "add", |_, a| {
                let pid = match a.get(2) {
                    Value::UserData(u) if u.is::<Process>() => {
                        u.borrow::<Process>()?.child.borrow().pid()
                    }
                    _ => {
                        let n = a.integer(2)?;
                        i32::try_from(n)
                            .ok()
                            .filter(|p| *p > 0)
                            .ok_or_else(|| a.bad(2, format!("pid must be positive, got {n}")))?
                    }
                };
                with_cg(a, |c| Ok(c.add(pid)?))
            })?;
            super::add(lua, &m, "set", |_, a| {
                let key = a.string(2)?;
                let v = a.get(3).clone();
                let value = match key.as_str() {
                    "memory" => size_or_count(a, &v, "memory", true)?.to_string(),
                    "pids" => size_or_count(a, &v, "pids", false)?.to_string(),
                    _ => match &v {
                        Value::Integer(n) => n.to_string(),
                        Value::Number(n) => n.to_string(),
                        Value::String(s) => s.to_string_lossy(),
                        o => return Err(a.bad(3, format!("number expected, got {}", typename(o)))),
                    },
                };
                // u64::MAX is how "unlimited" comes back from parse_size.
                let value = if value == u64::MAX.to_string() {
                    "max".to_string()
                } else {
                    value
                };
                with_cg(a, |c| Ok(c.set(&key, &value)?))
            })?;
            super::add(lua, &m, "stats", |lua, a| {
                let s = with_cg(a, |c| Ok(c.stats()))?;
                Ok(stats_table(lua, &s)?)
            })?;
            super::add(lua, &m, "pids", |_, a| with_cg(a, |c| Ok(c.pids())))?;
            super::add(lua, &m, "close", |_, a| {
                let ud = this_cg(a)?;
                let v = ud.borrow::<CgroupValue>()?;
                let taken = v.0.borrow_mut().take();
                if let Some(mut c) = taken {
                    c.close()?;
                }
                Ok(())
            })?;
            Ok(m)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match this.0.borrow().as_ref() {
                Some(c) => format!("cgroup {}", c.name()),
                None => "cgroup (closed)".into(),
            })
        });
        // `local cg <close> = ns.cgroup{...}`; errors are ignored here as in
        // a finalizer: use :close() to see them.
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            if let Some(mut c) = this.0.borrow_mut().take() {
                let _ = c.close();
            }
            Ok(())
        });
    }
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "cgroup", |lua, a| {
        let opts = match a.opt_table(1)? {
            Some(t) => Value::Table(t),
            None => Value::Table(lua.create_table()?),
        };
        let l = cgroup(a, opts)?.unwrap_or_default();
        let c = Cgroup::create(&l)?;
        Ok(lua.create_userdata(CgroupValue(RefCell::new(Some(c))))?)
    })
}
