//! Lua bindings: one file per area, each with `register(lua, &module)`.
//!
//! Rust callbacks cannot raise an arbitrary Lua value through mlua (it turns
//! every error into a string or its own userdata), yet API.md wants system
//! errors to be tables with `op`, `errno`, … So every function is a raw Rust
//! callback that, on failure, returns a private sentinel and the error value,
//! wrapped in a two-line Lua closure that raises it with `error`.

mod args;
mod cred;
mod fs;
mod hardening;
mod idmap;
mod mount;
mod namespace;
mod net;
mod process;
mod spawn;

use std::ffi::c_void;

use mlua::{Function, IntoLuaMulti, LightUserData, Lua, MultiValue, Table, Value};

pub(crate) use args::{Args, Fail};

static SENTINEL: u8 = 0;

fn sentinel() -> Value {
    Value::LightUserData(LightUserData(&SENTINEL as *const u8 as *mut c_void))
}

const GLUE: &str = r#"
local ERR, tostring = ...
local error = error
local function pass(first, ...)
  if first == ERR then error((...), 0) end
  return first, ...
end
local function wrap(f)
  return function(...) return pass(f(...)) end
end
local errmeta = {
  __name = "nsrun.Error",
  __tostring = function(e)
    local s = e.message
    if e.where then s = e.where .. ": " .. s end
    if e.hint then s = s .. "\nhint: " .. e.hint end
    return s
  end,
}
return wrap, errmeta
"#;

const WRAP_KEY: &str = "nsrun.wrap";
const ERRMETA_KEY: &str = "nsrun.errmeta";

fn init_glue(lua: &Lua) -> mlua::Result<()> {
    let (wrap, meta): (Function, Table) = lua
        .load(GLUE)
        .set_name("=nsrun")
        .call((sentinel(), lua.globals().get::<Function>("tostring")?))?;
    lua.set_named_registry_value(WRAP_KEY, wrap)?;
    lua.set_named_registry_value(ERRMETA_KEY, meta)
}

/// `recipe.lua:12`: where the Lua code that called us stands. Level 0 is
/// the Rust callback, 1 the wrapping closure, 2 its caller.
fn caller_where(lua: &Lua) -> Option<String> {
    lua.inspect_stack(2, |d| {
        let line = d.current_line()?;
        let src = d.source().short_src.map(|s| s.to_string())?;
        Some(format!("{src}:{line}"))
    })
    .flatten()
}

/// Turn a failure into the value to raise.
fn fail_value(lua: &Lua, fail: Fail) -> mlua::Result<Value> {
    let at = |msg: String| match caller_where(lua) {
        Some(w) => format!("{w}: {msg}"),
        None => msg,
    };
    Ok(match fail {
        Fail::Sys(e @ crate::Error::Sys { .. }) => {
            let t = lua.create_table()?;
            let errno = e.errno().expect("Sys has an errno");
            t.set("op", e.op())?;
            t.set("errno", format!("{errno:?}"))?;
            t.set("code", errno as i32)?;
            t.set("message", e.to_string())?;
            t.set("hint", e.hint())?;
            t.set("where", caller_where(lua))?;
            t.set_metatable(Some(lua.named_registry_value::<Table>(ERRMETA_KEY)?))?;
            Value::Table(t)
        }
        Fail::Sys(e) => Value::String(lua.create_string(at(e.to_string()))?),
        Fail::Msg(m) => Value::String(lua.create_string(at(m))?),
        // Errors coming back out of Lua code we called already carry their
        // position; keep them as they were.
        Fail::Lua(mlua::Error::RuntimeError(m)) => Value::String(lua.create_string(m)?),
        Fail::Lua(mlua::Error::CallbackError { cause, .. }) => {
            Value::String(lua.create_string(cause.to_string())?)
        }
        Fail::Lua(e) => Value::String(lua.create_string(at(e.to_string()))?),
    })
}

/// Make a Lua function from a Rust one that takes [`Args`] and fails with a
/// [`Fail`]; errors are raised as proper Lua error values.
pub(crate) fn function<F, R>(lua: &Lua, name: &'static str, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &Args) -> Result<R, Fail> + 'static,
    R: IntoLuaMulti,
{
    let raw = lua.create_function(move |lua, mv: MultiValue| {
        let args = Args::new(name, mv);
        match f(lua, &args) {
            Ok(r) => r.into_lua_multi(lua),
            Err(fail) => Ok(MultiValue::from_vec(vec![
                sentinel(),
                fail_value(lua, fail)?,
            ])),
        }
    })?;
    lua.named_registry_value::<Function>(WRAP_KEY)?.call(raw)
}

/// Add [`function`] `name` to table `t`.
pub(crate) fn add<F, R>(lua: &Lua, t: &Table, name: &'static str, f: F) -> mlua::Result<()>
where
    F: Fn(&Lua, &Args) -> Result<R, Fail> + 'static,
    R: IntoLuaMulti,
{
    t.set(name, function(lua, name, f)?)
}

/// An error that escaped a protected call: its message and the traceback.
pub(crate) struct Uncaught {
    pub message: String,
    pub traceback: String,
}

/// Call `f` with a message handler that records the traceback where the
/// error happened (it is gone once the stack unwinds).
pub(crate) fn call_traced(
    lua: &Lua,
    f: &Function,
    args: impl IntoLuaMulti,
) -> mlua::Result<Result<MultiValue, Uncaught>> {
    let handler = lua.create_function(|lua, e: Value| {
        let msg: String = lua.globals().get::<Function>("tostring")?.call(e)?;
        let tb = lua.traceback(None, 1)?;
        let t = lua.create_table()?;
        t.set("message", msg)?;
        t.set("traceback", tb)?;
        Ok(t)
    })?;
    let xpcall: Function = lua.globals().get("xpcall")?;
    let mut args = args.into_lua_multi(lua)?;
    args.push_front(Value::Function(handler));
    args.push_front(Value::Function(f.clone()));
    let mut out = xpcall.call::<MultiValue>(args)?;
    let ok = matches!(out.pop_front(), Some(Value::Boolean(true)));
    if ok {
        return Ok(Ok(out));
    }
    Ok(Err(match out.pop_front() {
        Some(Value::Table(t)) => Uncaught {
            message: t.get("message")?,
            traceback: t.get("traceback")?,
        },
        other => Uncaught {
            message: format!("{other:?}"),
            traceback: String::new(),
        },
    }))
}

/// The exit code a recipe's or a child function's result stands for:
/// an integer, a status table's `code`, true/false, or 0.
pub(crate) fn exit_code_of(v: Option<&Value>) -> i32 {
    match v {
        Some(Value::Integer(n)) => (*n & 0xff) as i32,
        Some(Value::Number(n)) if n.fract() == 0.0 => ((*n as i64) & 0xff) as i32,
        Some(Value::Boolean(b)) => i32::from(!*b),
        Some(Value::Table(t)) => match t.get::<Value>("code") {
            Ok(Value::Integer(n)) => (n & 0xff) as i32,
            _ => 0,
        },
        _ => 0,
    }
}

/// Build the `nsrun` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    init_glue(lua)?;
    let m = lua.create_table()?;
    namespace::register(lua, &m)?;
    mount::register(lua, &m)?;
    fs::register(lua, &m)?;
    idmap::register(lua, &m)?;
    cred::register(lua, &m)?;
    process::register(lua, &m)?;
    spawn::register(lua, &m)?;
    net::register(lua, &m)?;
    hardening::register(lua, &m)?;
    m.set("version", env!("CARGO_PKG_VERSION"))?;
    Ok(m)
}
