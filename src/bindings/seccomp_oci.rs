//! `ns.seccomp_oci(profile)`: an OCI `linux.seccomp` table compiled to BPF
//! bytes for `ns.spawn{seccomp = {bpf = …}}`.

use mlua::{Lua, Table, Value};

use super::args::{check_keys, typename, Args, R};
use crate::sys::seccomp::oci::{self, Arg, Profile, SyscallRule};

const PROFILE_KEYS: &[&str] = &[
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
];
const RULE_KEYS: &[&str] = &["names", "action", "errnoRet", "args"];
const ARG_KEYS: &[&str] = &["index", "value", "valueTwo", "op"];

/// `t[key]`, JSON's null (ns.json.null) as nil: an engine may write
/// `"args": null`.
fn get(t: &Table, key: &str) -> R<Value> {
    Ok(match t.get::<Value>(key)? {
        Value::LightUserData(p) if p.0.is_null() => Value::Nil,
        v => v,
    })
}

fn string(a: &Args, t: &Table, key: &str, what: &str) -> R<Option<String>> {
    match get(t, key)? {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_string_lossy())),
        other => Err(a.fail(format!(
            "{what}.{key} must be a string, got {}",
            typename(&other)
        ))),
    }
}

/// A whole number from 0 to 2^64-1. ns.json.decode gives numbers above
/// 2^63-1 as floats: an integral one is taken as it is, and 2^64, what
/// 18446744073709551615 (all bits set) rounds to, as that.
fn number(a: &Args, t: &Table, key: &str, what: &str) -> R<Option<u64>> {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    match get(t, key)? {
        Value::Nil => Ok(None),
        Value::Integer(n) if n >= 0 => Ok(Some(n as u64)),
        Value::Number(f) if f >= 0.0 && f.fract() == 0.0 && f < TWO_64 => Ok(Some(f as u64)),
        Value::Number(f) if f == TWO_64 => Ok(Some(u64::MAX)),
        other => Err(a.fail(format!(
            "{what}.{key} must be a whole number from 0 to 18446744073709551615, got {}",
            match other {
                Value::Integer(n) => n.to_string(),
                Value::Number(f) => f.to_string(),
                o => typename(&o).to_string(),
            }
        ))),
    }
}

/// A list (JSON array) of tables or strings, by `each`.
fn list<T>(
    a: &Args,
    t: &Table,
    key: &str,
    what: &str,
    mut each: impl FnMut(Value, &str) -> R<T>,
) -> R<Vec<T>> {
    let l = match get(t, key)? {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(l) => l,
        other => {
            return Err(a.fail(format!(
                "{what}.{key} must be a list, got {}",
                typename(&other)
            )))
        }
    };
    let n = l.raw_len();
    if l.pairs::<Value, Value>().count() != n {
        return Err(a.fail(format!("{what}.{key} must be a list")));
    }
    (0..n)
        .map(|i| each(l.raw_get(i + 1)?, &format!("{what}.{key}[{i}]")))
        .collect()
}

fn table(a: &Args, v: Value, what: &str, keys: &[&str]) -> R<Table> {
    match v {
        Value::Table(t) => {
            check_keys(&t, &format!("{}: {what}", a.name()), keys)?;
            Ok(t)
        }
        other => Err(a.fail(format!("{what} must be a table, got {}", typename(&other)))),
    }
}

fn text(a: &Args, v: Value, what: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.to_string_lossy()),
        other => Err(a.fail(format!("{what} must be a string, got {}", typename(&other)))),
    }
}

/// The Lua table as a [`Profile`]; positions in messages are the JSON
/// document's (from 0), as in `jq '.linux.seccomp.syscalls[3]'`.
fn profile(a: &Args, t: &Table) -> R<Profile> {
    const W: &str = "linux.seccomp";
    check_keys(t, &format!("{}: {W}", a.name()), PROFILE_KEYS)?;
    let syscalls = list(a, t, "syscalls", W, |v, w| {
        let r = table(a, v, w, RULE_KEYS)?;
        Ok(SyscallRule {
            names: list(a, &r, "names", w, |v, w| text(a, v, w))?,
            action: string(a, &r, "action", w)?
                .ok_or_else(|| a.fail(format!("{w}.action is missing")))?,
            errno_ret: number(a, &r, "errnoRet", w)?,
            args: list(a, &r, "args", w, |v, w| {
                let c = table(a, v, w, ARG_KEYS)?;
                Ok(Arg {
                    index: number(a, &c, "index", w)?
                        .ok_or_else(|| a.fail(format!("{w}.index is missing")))?,
                    value: number(a, &c, "value", w)?.unwrap_or(0),
                    value_two: number(a, &c, "valueTwo", w)?.unwrap_or(0),
                    op: string(a, &c, "op", w)?
                        .ok_or_else(|| a.fail(format!("{w}.op is missing")))?,
                })
            })?,
        })
    })?;
    Ok(Profile {
        default_action: string(a, t, "defaultAction", W)?
            .ok_or_else(|| a.fail(format!("{W}.defaultAction is missing")))?,
        default_errno: number(a, t, "defaultErrnoRet", W)?,
        architectures: list(a, t, "architectures", W, |v, w| text(a, v, w))?,
        flags: list(a, t, "flags", W, |v, w| text(a, v, w))?,
        listener_path: string(a, t, "listenerPath", W)?,
        syscalls,
    })
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "seccomp_oci", |lua, a| {
        let t = a.table(1)?;
        let p = profile(a, &t)?;
        let c = oci::compile(&p).map_err(|e| a.fail(e))?;
        let info = lua.create_table()?;
        info.set("instructions", c.program.len())?;
        info.set(
            "skipped",
            lua.create_sequence_from(c.skipped.iter().cloned())?,
        )?;
        info.set(
            "ignored_flags",
            lua.create_sequence_from(c.ignored_flags.iter().cloned())?,
        )?;
        Ok((lua.create_string(c.bytes())?, info))
    })
}
