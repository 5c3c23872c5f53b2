//! Option values more than one area takes: argv, env, id maps, and the
//! option tables of tmpfs, overlay and `from`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use mlua::{Table, Value};

use crate::bindings::args::{check_keys, names_of, opt_bool, opt_str, typename, Args, R};
use crate::sys::idmap::IdRange;
use crate::sys::mount as sysmount;

/// An environment table: names to strings; `false` removes a variable.
/// Environment changes: a name and its value, `None` to remove it.
pub(crate) type EnvChanges = Vec<(OsString, Option<OsString>)>;

pub(crate) fn env_table(a: &Args, v: Value) -> R<Option<EnvChanges>> {
    let env = match v {
        Value::Nil => return Ok(None),
        Value::Table(t) => t,
        other => return Err(a.fail(format!("env must be a table, got {}", typename(&other)))),
    };
    let mut vars = Vec::new();
    for pair in env.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = &k else {
            return Err(a.fail(format!("env keys must be strings, got {}", typename(&k))));
        };
        let k = OsStr::from_bytes(&k.as_bytes()).to_os_string();
        let shown = std::path::Path::new(&k).display().to_string();
        if k.is_empty() || k.as_bytes().contains(&b'=') || k.as_bytes().contains(&0) {
            return Err(a.fail(format!("env: bad variable name '{shown}'")));
        }
        let k_shown = shown;
        let v = match v {
            Value::String(s) if s.as_bytes().contains(&0) => {
                return Err(a.fail(format!("env.{k_shown} contains a NUL byte")))
            }
            Value::String(s) => Some(OsStr::from_bytes(&s.as_bytes()).to_os_string()),
            Value::Integer(n) => Some(n.to_string().into()),
            Value::Number(n) => Some(n.to_string().into()),
            Value::Boolean(false) => None,
            other => {
                return Err(a.fail(format!(
                    "env.{k_shown} must be a string (or false to remove it), got {}",
                    typename(&other)
                )))
            }
        };
        vars.push((k, v));
    }
    vars.sort();
    Ok(Some(vars))
}

pub(crate) fn argv(a: &Args, i: usize) -> R<Vec<OsString>> {
    argv_of(a, i, &a.table(i)?)
}

/// argv from a table; `i` names the argument in messages.
pub(crate) fn argv_of(a: &Args, i: usize, t: &Table) -> R<Vec<OsString>> {
    let mut out = Vec::new();
    for v in t.sequence_values::<Value>() {
        match v? {
            Value::String(s) if s.as_bytes().contains(&0) => {
                return Err(a.bad(i, format!("argv[{}] contains a NUL byte", out.len() + 1)))
            }
            Value::String(s) => out.push(OsStr::from_bytes(&s.as_bytes()).to_os_string()),
            Value::Integer(n) => out.push(n.to_string().into()),
            Value::Number(n) => out.push(n.to_string().into()),
            other => {
                return Err(a.bad(
                    i,
                    format!("argv entries must be strings, got {}", typename(&other)),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(a.bad(i, "argv is empty: it needs at least the program"));
    }
    Ok(out)
}

fn id_field(a: &Args, i: usize, t: &Table, pos: usize, name: &str) -> R<u32> {
    let v = match t.raw_get::<Value>(pos)? {
        Value::Nil => t.raw_get::<Value>(name)?,
        v => v,
    };
    match v {
        Value::Integer(n) if (0..=u32::MAX as i64).contains(&n) => Ok(n as u32),
        Value::Number(n) if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n) => {
            Ok(n as u32)
        }
        other => Err(a.bad(
            i,
            format!(
                "map '{name}' must be an id from 0 to 4294967295, got {}",
                typename(&other)
            ),
        )),
    }
}

/// `{{inside, outside, count}, …}` or `{{inside=, outside=, count=}, …}`;
/// a single range may be given without the outer table.
pub(crate) fn id_ranges(a: &Args, i: usize) -> R<Vec<IdRange>> {
    id_ranges_of(a, i, a.table(i)?)
}

/// [`id_ranges`] from a table already taken out of the arguments.
pub(crate) fn id_ranges_of(a: &Args, i: usize, t: Table) -> R<Vec<IdRange>> {
    if t.is_empty() {
        return Err(a.bad(
            i,
            "an id map needs at least one {inside, outside, count} range",
        ));
    }
    let list: Vec<Table> = match t.raw_get::<Value>(1)? {
        Value::Table(_) => t
            .sequence_values::<Value>()
            .map(|v| match v? {
                Value::Table(t) => Ok(t),
                other => Err(a.bad(
                    i,
                    format!("map entries must be tables, got {}", typename(&other)),
                )),
            })
            .collect::<R<_>>()?,
        _ => vec![t],
    };
    list.iter()
        .map(|r| {
            Ok(IdRange {
                inside: id_field(a, i, r, 1, "inside")?,
                outside: id_field(a, i, r, 2, "outside")?,
                count: id_field(a, i, r, 3, "count")?,
            })
        })
        .collect()
}

/// The options table of `tmpfs` at argument `i`: size and mode.
pub(crate) fn tmpfs_opts(a: &Args, i: usize) -> R<(Option<u64>, Option<u32>)> {
    let (mut size, mut mode) = (None, None);
    if let Some(t) = a.opt_table(i)? {
        check_keys(&t, "tmpfs", &["size", "mode"])?;
        size = match t.get::<Value>("size")? {
            Value::Nil => None,
            Value::Integer(n) if n > 0 => Some(n as u64),
            Value::String(s) => {
                let s = s
                    .to_str()
                    .map_err(|_| a.fail("size is not valid UTF-8"))?
                    .to_string();
                Some(crate::sys::size::tmpfs_size(&s).map_err(|e| a.fail(e))?)
            }
            other => {
                return Err(a.fail(format!(
                    "size must be a number of bytes or a string like \"64M\", got {}",
                    typename(&other)
                )))
            }
        };
        mode = crate::bindings::args::mode_of(&t.get::<Value>("mode")?)
            .map_err(|m| a.fail_in("tmpfs", m))?;
    }
    Ok((size, mode))
}

/// The options table of `overlay` at argument `i`; `extra` names keys the
/// caller reads itself.
pub(crate) fn overlay_opts_with(
    a: &Args,
    i: usize,
    extra: &[&str],
) -> R<(sysmount::OverlayOpts, Table)> {
    let t = a.table(i)?;
    let mut keys = vec!["lower", "upper", "work", "tmpfs_upper"];
    keys.extend_from_slice(extra);
    check_keys(&t, "overlay", &keys)?;
    let lower = match t.get::<Value>("lower")? {
        Value::String(s) => vec![s.to_string_lossy()],
        v => names_of(&v).ok_or_else(|| {
            a.fail("overlay: lower must be a directory or a list of them (top first)")
        })?,
    };
    let o = sysmount::OverlayOpts {
        lower,
        upper: opt_str(&t, "overlay", "upper")?,
        work: opt_str(&t, "overlay", "work")?,
        tmpfs_upper: opt_bool(&t, "overlay", "tmpfs_upper", false)?,
    };
    Ok((o, t))
}

/// `{from = "/oldroot/dev"}`: where the host's directory is seen from here.
pub(crate) fn from_opt(a: &Args, i: usize, fname: &str, default: &str) -> R<String> {
    Ok(match a.opt_table(i)? {
        Some(t) => {
            check_keys(&t, fname, &["from"])?;
            opt_str(&t, fname, "from")?.unwrap_or_else(|| default.to_string())
        }
        None => default.to_string(),
    })
}
