//! Lua's own `os.exit`, made safe for the processes nsrun forks, and the
//! SIGPIPE disposition the programs Lua's `os.execute` and `io.popen` start
//! inherit.
//!
//! `os.exit(code, true)` closes the Lua state, which runs every finalizer:
//! in a forked child (`ns.fork`, a spawn's `setup` or `fn`) those belong
//! to the parent (its cgroups, its processes). There it flushes Lua's
//! buffered output and leaves with `_exit`, as a child's function that
//! returns does.
//!
//! An ignored SIGPIPE (Rust's runtime ignores it) stays ignored across
//! exec: `os.execute("yes | head -1")` would never end. A handler that does
//! nothing gives nsrun the same EPIPE errors, and exec resets a handled
//! signal to its default, so every program started by any means gets the
//! default, as `std::process::Command` gives it.

use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::sys::process;

/// Replace `os.exit` of `lua`, whose main process is this one, and turn an
/// ignored SIGPIPE into a handled one.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    process::sigpipe_handled();
    let main_pid = std::process::id();
    let os: Table = lua.globals().get("os")?;
    let exit: Function = os.get("exit")?;
    let wrapped = lua.create_function(move |lua, args: MultiValue| {
        if std::process::id() == main_pid {
            return exit.call::<MultiValue>(args);
        }
        // Lua's own reading of the argument.
        let code = match args.front().cloned().unwrap_or(Value::Nil) {
            Value::Nil | Value::Boolean(true) => 0,
            Value::Boolean(false) => 1,
            v => {
                let why = match v {
                    Value::Number(_) => "number has no integer representation".to_string(),
                    ref o => format!("number expected, got {}", o.type_name()),
                };
                match lua.coerce_integer(v)? {
                    Some(n) => n as i32,
                    None => {
                        return Err(mlua::Error::runtime(format!(
                            "bad argument #1 to 'exit' ({why})"
                        )))
                    }
                }
            }
        };
        process::exit_child(code)
    })?;
    os.set("exit", wrapped)
}
