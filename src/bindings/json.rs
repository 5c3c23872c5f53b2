//! `ns.json`: JSON for recipes (and the OCI runtime, whose `config.json`
//! and state are JSON), through serde_json and mlua's serde support.
//!
//! JSON `null` is `ns.json.null` (so a key that holds null is still there);
//! arrays come back marked as arrays, so `[]` encodes as `[]` again and not
//! as `{}`. Objects encode with their keys sorted, so output is the same on
//! every run.

use mlua::{Lua, LuaSerdeExt, SerializeOptions, Table, Value};

use super::args::typename;

/// How Lua values become JSON and back.
fn options() -> SerializeOptions {
    SerializeOptions::new()
        .set_array_metatable(true)
        .serialize_none_to_null(true)
        .serialize_unit_to_null(true)
}

/// Register `ns.json`.
pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    let json = lua.create_table()?;
    json.set("null", lua.null())?;
    super::add(lua, &json, "decode", |lua, a| {
        let text = a.bytes(1)?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| a.fail(format!("not JSON: {e}")))?;
        Ok(lua.to_value_with(&v, options())?)
    })?;
    super::add(lua, &json, "encode", |_, a| {
        let v: Value = a.get(1).clone();
        let pretty = match a.get(2).clone() {
            Value::Nil => false,
            Value::Table(t) => {
                super::args::check_keys(&t, "encode", &["indent"])?;
                super::args::opt_bool(&t, "encode", "indent", false)?
            }
            other => {
                return Err(a.fail(format!(
                    "options must be a table like {{indent = true}}, got {}",
                    typename(&other)
                )))
            }
        };
        let s = v
            .to_serializable()
            .sort_keys(true)
            .encode_empty_tables_as_array(false);
        let out = match pretty {
            true => serde_json::to_string_pretty(&s),
            false => serde_json::to_string(&s),
        };
        // serde's message names what could not be encoded (a function, a
        // userdata, a table that contains itself).
        out.map_err(|e| a.fail(format!("cannot encode as JSON: {e}")))
    })?;
    super::add(lua, &json, "array", |lua, a| {
        let t: Table = match a.get(1).clone() {
            Value::Nil => lua.create_table()?,
            Value::Table(t) => t,
            other => return Err(a.fail(format!("a table expected, got {}", typename(&other)))),
        };
        t.set_metatable(Some(lua.array_metatable()))?;
        Ok(t)
    })?;
    m.set("json", json)
}
