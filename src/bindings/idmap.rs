//! `ns.uid_map`, `ns.gid_map`, `ns.setgroups`.

use mlua::{Lua, Table, Value};

use super::args::{typename, Args, R};
use crate::sys::idmap::{self, IdKind, IdRange};

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
pub(crate) fn ranges(a: &Args, i: usize) -> R<Vec<IdRange>> {
    ranges_of(a, i, a.table(i)?)
}

/// [`ranges`] from a table already taken out of the arguments.
pub(crate) fn ranges_of(a: &Args, i: usize, t: Table) -> R<Vec<IdRange>> {
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

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "uid_map", |_, a| {
        idmap::write_map(a.pid(1)?, IdKind::Uid, &ranges(a, 2)?)?;
        Ok(())
    })?;
    super::add(lua, m, "gid_map", |_, a| {
        idmap::write_map(a.pid(1)?, IdKind::Gid, &ranges(a, 2)?)?;
        Ok(())
    })?;
    super::add(lua, m, "setgroups", |_, a| {
        let allow = match a.string(2)?.as_str() {
            "allow" => true,
            "deny" => false,
            other => return Err(a.bad(2, format!("\"allow\" or \"deny\" expected, got '{other}'"))),
        };
        idmap::setgroups(a.pid(1)?, allow)?;
        Ok(())
    })?;
    Ok(())
}
