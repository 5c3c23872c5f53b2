//! Lua's own `os.exit`, `os.execute` and `io.popen`, made safe for the
//! processes nsrun forks and the programs they start.
//!
//! `os.exit(code, true)` closes the Lua state, which runs every finalizer:
//! in a forked child (`ns.fork`, a spawn's `setup` or `fn`) those belong
//! to the parent (its cgroups, its processes). There it flushes Lua's
//! buffered output and leaves with `_exit`, as a child's function that
//! returns does.
//!
//! nsrun ignores SIGPIPE (Rust's runtime does), and an ignored signal stays
//! ignored across exec: `os.execute("yes | head -1")` would then never end.
//! The shell they start gets the default, as `std::process::Command` and
//! nsrun's own spawns give it.

use mlua::{Lua, Value};

use crate::sys::process;

const OSLIB: (&[u8], &str) = (
    include_bytes!(concat!(env!("OUT_DIR"), "/oslib.luac")),
    include_str!("oslib.lua"),
);

/// Replace `os.exit`, `os.execute` and `io.popen` of `lua`, whose main
/// process is this one.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let main_pid = std::process::id();
    let leave_child = lua.create_function(move |lua, code: Value| {
        if std::process::id() == main_pid {
            return Ok(None);
        }
        // Lua's own reading of the argument.
        let code = match code {
            Value::Nil | Value::Boolean(true) => 0,
            Value::Boolean(false) => 1,
            v => {
                let why = match v {
                    Value::Number(_) => "number has no integer representation".to_string(),
                    ref o => format!("number expected, got {}", o.type_name()),
                };
                match lua.coerce_integer(v)? {
                    Some(n) => n as i32,
                    None => return Ok(Some(why)),
                }
            }
        };
        process::exit_child(code)
    })?;
    let unignore = lua.create_function(|_, ()| Ok(process::sigpipe_unignore()))?;
    let reignore = lua.create_function(|_, was_ignored: bool| {
        if was_ignored {
            process::sigpipe_ignore();
        }
        Ok(())
    })?;
    let g = lua.globals();
    super::load_shipped(lua, "=nsrun.oslib", OSLIB.0, OSLIB.1)?.call::<()>((
        g.get::<Value>("os")?,
        g.get::<Value>("io")?,
        leave_child,
        unignore,
        reignore,
    ))
}
