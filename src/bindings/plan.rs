//! `--plan` for Lua's own libraries: `os` and `io` reach the kernel
//! without passing the door (`sys::ops`), so under `--plan` the calls that
//! change the system are replaced by ones that record a step and answer as
//! a success would, and a planned child's reads of stdin find EOF (under
//! `--plan` its code runs inside nsrun, whose stdin is not its own).
//!
//! What each call does under `--plan`:
//!
//! | call                          | recorded as                 | returns                      |
//! |-------------------------------|-----------------------------|------------------------------|
//! | `os.remove(p)`                | `os.remove("p")`            | `true`                       |
//! | `os.rename(a, b)`             | `os.rename("a", "b")`       | `true`                       |
//! | `os.execute(cmd)`             | `os.execute("cmd")`         | `true, "exit", 0`            |
//! | `os.execute()`                | nothing (asks for a shell)  | `true`                       |
//! | `os.tmpname()`                | `os.tmpname()`              | a name no file has           |
//! | `os.exit(c)` in the recipe    | `os.exit(c)`                | ends the run: plan, code `c` |
//! | `os.exit(c)` in a child's fn  | `os.exit(c)`                | ends the child's part, `c`   |
//! | `io.open(p, m)`, `m` not r/rb | `io.open("p", "m")`         | a file on /dev/null          |
//! | `io.popen(cmd, m)`            | `io.popen("cmd", "m")`      | a file on /dev/null (EOF)    |
//! | `io.output(p)`                | `io.output("p")`            | a file on /dev/null          |
//!
//! `os.exit` in the recipe's own process needs the command line's hook
//! (`ops::set_plan_exit`); without it (an embedder) it is refused with an
//! error that names the call.

use std::cell::Cell;

use mlua::{Lua, MultiValue, Value};

use crate::sys::ops;

/// Raised to end a planned child's part at its `os.exit`, and recognised
/// by the code that runs that part.
const CHILD_EXIT: &str = "os.exit in a planned child: its part ends here";

thread_local! {
    /// The code of the last planned child's `os.exit`, until taken.
    static CHILD_CODE: Cell<Option<i32>> = const { Cell::new(None) };
}

const GUARD: &str = r##"
local record, role, exit_run, child_exit = ...
local open, popen, output = io.open, io.popen, io.output
local stdin, type, error, tointeger = io.stdin, type, error, math.tointeger

local function null(mode) return open("/dev/null", mode) end

os.remove = function(path)
  record("os.remove", path)
  return true
end
os.rename = function(from, to)
  record("os.rename", from, to)
  return true
end
os.execute = function(cmd)
  -- Without a command it only asks whether there is a shell.
  if cmd == nil then return true end
  record("os.execute", cmd)
  return true, "exit", 0
end
local tmp = 0
os.tmpname = function()
  tmp = tmp + 1
  record("os.tmpname")
  return "/tmp/lua_planned_" .. tmp
end
os.exit = function(code)
  if code == nil or code == true then
    code = 0
  elseif code == false then
    code = 1
  elseif tointeger(code) == nil then
    error("bad argument #1 to 'exit' (number has no integer representation)", 2)
  end
  code = tointeger(code)
  record("os.exit", code)
  if role() == "parent" then
    exit_run(code)
    error("os.exit(" .. code .. ") under --plan: not performed (no plan to end the run with)", 2)
  end
  child_exit(code)
  error(CHILD_EXIT, 0)
end
io.open = function(path, mode)
  if mode == nil or mode == "r" or mode == "rb" then return open(path, mode) end
  -- /dev/null checks the mode as the real call would.
  local f, e, n = null(mode)
  if f then record("io.open", path, mode) end
  return f, e, n
end
io.popen = function(cmd, mode)
  mode = mode or "r"
  if mode ~= "r" and mode ~= "w" then
    error("bad argument #2 to 'popen' (invalid mode)", 2)
  end
  record("io.popen", cmd, mode)
  return null(mode)
end
io.output = function(file)
  if type(file) == "string" then
    record("io.output", file)
    return output(null("w"))
  end
  return output(file)
end

-- A planned child's code runs in nsrun: its stdin is not the child's.
local function planned_stdin(f)
  return rawequal(f, stdin) and role() ~= "parent"
end
local function eof(...)
  local n = select("#", ...)
  if n == 0 then return nil end
  local out = {}
  for i = 1, n do
    local fmt = select(i, ...)
    if type(fmt) == "string" and fmt:gsub("^%*", ""):sub(1, 1) == "a" then
      out[i] = ""
    else
      return table.unpack(out, 1, i)
    end
  end
  return table.unpack(out, 1, n)
end
local methods = getmetatable(stdin).__index
local read, lines = methods.read, methods.lines
methods.read = function(f, ...)
  if planned_stdin(f) then return eof(...) end
  return read(f, ...)
end
methods.lines = function(f, ...)
  if planned_stdin(f) then return function() return nil end end
  return lines(f, ...)
end
local ioread, iolines, input = io.read, io.lines, io.input
io.read = function(...)
  if planned_stdin(input()) then return eof(...) end
  return ioread(...)
end
io.lines = function(name, ...)
  if name == nil and planned_stdin(input()) then return function() return nil end end
  return iolines(name, ...)
end
"##;

/// `name(arg, …)` with strings quoted as the door's steps show them.
fn call_text(name: &str, args: &MultiValue) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("{:?}", String::from_utf8_lossy(&s.as_bytes())),
            Value::Nil => "nil".into(),
            Value::Boolean(b) => b.to_string(),
            Value::Integer(n) => n.to_string(),
            Value::Number(n) => n.to_string(),
            other => other.type_name().to_string(),
        })
        .collect();
    format!("{name}({})", shown.join(", "))
}

/// Replace the calls of `os` and `io` that change the system with ones
/// that record (see the module's table). For a state made while planning.
pub(crate) fn guard_stdlib(lua: &Lua) -> mlua::Result<()> {
    let record = lua.create_function(|_, (name, args): (String, MultiValue)| {
        ops::record(|| call_text(&name, &args));
        Ok(())
    })?;
    let role = lua.create_function(|_, ()| Ok(ops::role().unwrap_or("parent")))?;
    let exit_run = lua.create_function(|_, code: i32| {
        ops::plan_exit(code);
        Ok(())
    })?;
    let child_exit = lua.create_function(|_, code: i32| {
        CHILD_CODE.with(|c| c.set(Some(code)));
        Ok(())
    })?;
    let src = GUARD.replace("CHILD_EXIT", &format!("{CHILD_EXIT:?}"));
    lua.load(src)
        .set_name("=nsrun.plan")
        .call((record, role, exit_run, child_exit))
}

/// The exit code of a planned child whose part ended at `os.exit`, given
/// the message of the error that ended it.
pub(crate) fn child_exit(message: &str) -> Option<i32> {
    if !message.contains(CHILD_EXIT) {
        return None;
    }
    CHILD_CODE.with(Cell::take)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned_lua() -> Lua {
        let lua = Lua::new();
        guard_stdlib(&lua).unwrap();
        lua
    }

    #[test]
    fn steps_are_recorded_and_answer_as_success() {
        ops::plan_begin();
        let lua = planned_lua();
        let r: (bool, bool, String, i64, bool) = lua
            .load(
                r#"local a = os.remove("/nonexistent/x")
                   local ok, how, code = os.execute("rm -rf /nonexistent")
                   local f = assert(io.open("/nonexistent/y", "w"))
                   local wrote = f:write("data") ~= nil
                   f:close()
                   return a, ok, how, code, wrote"#,
            )
            .eval()
            .unwrap();
        let steps = ops::plan_end();
        assert_eq!(r, (true, true, "exit".into(), 0, true));
        let calls: Vec<&str> = steps.iter().map(|s| s.call.as_str()).collect();
        assert_eq!(
            calls,
            [
                r#"os.remove("/nonexistent/x")"#,
                r#"os.execute("rm -rf /nonexistent")"#,
                r#"io.open("/nonexistent/y", "w")"#,
            ]
        );
    }

    #[test]
    fn a_planned_child_reads_eof_and_its_exit_ends_only_its_part() {
        ops::plan_begin();
        let lua = planned_lua();
        let read = ops::in_role("child", || {
            lua.load(r#"return io.read("a"), io.read("l"), io.stdin:read("a", "n")"#)
                .eval::<(String, Option<String>, String, Option<i64>)>()
                .unwrap()
        });
        assert_eq!(read, ("".into(), None, "".into(), None));
        let e = ops::in_role("child", || lua.load("os.exit(7)").exec().unwrap_err());
        assert_eq!(child_exit(&e.to_string()), Some(7));
        assert_eq!(child_exit(&e.to_string()), None, "taken once");
        // The recipe's own process has no hook here: refused, by name.
        let e = lua.load("os.exit(3)").exec().unwrap_err().to_string();
        assert!(e.contains("os.exit(3) under --plan"), "{e}");
        let steps = ops::plan_end();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].process, "child");
        assert_eq!(steps[0].call, "os.exit(7)");
    }
}
