//! Lua bindings: one file per area, each with `register(lua, &module)`.
//!
//! Rust callbacks cannot raise an arbitrary Lua value through mlua (it turns
//! every error into a string or its own userdata), yet API.md wants system
//! errors to be tables with `op`, `errno`, … So every function is a raw Rust
//! callback that, on failure, returns a private sentinel and the error value,
//! wrapped in a two-line Lua closure that raises it with `error`.

mod args;
pub(crate) mod channel;
mod cred;
mod fs;
mod hardening;
mod idmap;
mod json;
mod mount;
mod namespace;
mod net;
mod oci_helpers;
pub(crate) mod oslib;
pub(crate) mod plan;
mod process;
mod rooted;
mod seccomp_oci;
pub(crate) mod spawn;
mod tty;
mod usernet;
mod values;

use std::collections::HashMap;
use std::ffi::c_void;

use mlua::{Function, IntoLuaMulti, LightUserData, Lua, MultiValue, Table, Value};

pub(crate) use args::{typename, Args, Fail};

static SENTINEL: u8 = 0;

fn sentinel() -> Value {
    Value::LightUserData(LightUserData(&SENTINEL as *const u8 as *mut c_void))
}

/// The Lua half of the error glue, as bytecode (build.rs) and source.
const GLUE: (&[u8], &str) = (
    include_bytes!(concat!(env!("OUT_DIR"), "/glue.luac")),
    include_str!("glue.lua"),
);

const WRAP_KEY: &str = "nsrun.wrap";
const ERRMETA_KEY: &str = "nsrun.errmeta";

/// A chunk nsrun ships, from the bytecode build.rs made, or from its
/// source when this Lua rejects that (a build whose target differs from
/// the build machine).
pub(crate) fn load_shipped(
    lua: &Lua,
    name: &str,
    bytecode: &[u8],
    source: &str,
) -> mlua::Result<Function> {
    let chunk = |c: &[u8], mode| lua.load(c).set_name(name).set_mode(mode).into_function();
    chunk(bytecode, mlua::ChunkMode::Binary)
        .or_else(|_| chunk(source.as_bytes(), mlua::ChunkMode::Text))
}

fn init_glue(lua: &Lua) -> mlua::Result<()> {
    let (wrap, meta): (Function, Table) = load_shipped(lua, "=nsrun", GLUE.0, GLUE.1)?
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

/// Add [`function`] `name` to the module table `t`, made on first use:
/// creating all of them costs `require "nsrun"` about 90 µs, most of what a
/// recipe spends in Lua before its first spawn, and a recipe uses a few.
/// `pairs` on `t` makes the rest (see [`LAZY_META`]).
pub(crate) fn add<F, R>(lua: &Lua, t: &Table, name: &'static str, f: F) -> mlua::Result<()>
where
    F: Fn(&Lua, &Args) -> Result<R, Fail> + 'static,
    R: IntoLuaMulti,
{
    if lua.app_data_ref::<Pending>().is_none() {
        lua.set_app_data(Pending::default());
    }
    let mut p = lua.app_data_mut::<Pending>().expect("just set");
    p.0.entry(t.to_pointer() as usize)
        .or_default()
        .insert(name, Box::new(move |lua| function(lua, name, f)));
    drop(p);
    if t.metatable().is_none() {
        t.set_metatable(Some(lua.named_registry_value::<Table>(LAZY_META)?))?;
    }
    Ok(())
}

/// Functions not made yet: by module table (its address), then by name.
#[derive(Default)]
struct Pending(HashMap<usize, HashMap<&'static str, PendingFn>>);

type PendingFn = Box<dyn FnOnce(&Lua) -> mlua::Result<Function>>;

/// The registry key of the metatable of module tables: `__index` makes a
/// pending function and stores it in the table; `__pairs` makes them all
/// first, so iteration sees the whole module.
const LAZY_META: &str = "nsrun.lazy";

fn make(lua: &Lua, t: &Table, name: &str) -> mlua::Result<Option<Function>> {
    // Taken out before it runs: making it calls into Lua.
    let ctor = lua
        .app_data_mut::<Pending>()
        .and_then(|mut p| p.0.get_mut(&(t.to_pointer() as usize))?.remove(name));
    let Some(ctor) = ctor else {
        return Ok(None);
    };
    let f = ctor(lua)?;
    t.raw_set(name, &f)?;
    Ok(Some(f))
}

fn init_lazy(lua: &Lua) -> mlua::Result<()> {
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        lua.create_function(|lua, (t, k): (Table, Value)| match k {
            Value::String(s) => Ok(make(lua, &t, &s.to_str()?)?.map(Value::Function)),
            _ => Ok(None),
        })?,
    )?;
    meta.set(
        "__pairs",
        lua.create_function(|lua, t: Table| {
            let names: Vec<&'static str> = lua
                .app_data_ref::<Pending>()
                .and_then(|p| {
                    Some(
                        p.0.get(&(t.to_pointer() as usize))?
                            .keys()
                            .copied()
                            .collect(),
                    )
                })
                .unwrap_or_default();
            for n in names {
                make(lua, &t, n)?;
            }
            let next: Function = lua.globals().get("next")?;
            Ok((next, t, Value::Nil))
        })?,
    )?;
    lua.set_named_registry_value(LAZY_META, meta)
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
    // Made once: in a freshly forked child (setup) every allocation dirties
    // a page the kernel must then copy.
    const HANDLER: &str = "nsrun.traceback_handler";
    let handler = match lua.named_registry_value::<Option<Function>>(HANDLER)? {
        Some(h) => h,
        None => {
            let h = lua.create_function(|lua, e: Value| {
                let msg = describe_error(lua, &e)?;
                let tb = lua.traceback(None, 1)?;
                let t = lua.create_table()?;
                t.set("message", msg)?;
                t.set("traceback", tb)?;
                Ok(t)
            })?;
            lua.set_named_registry_value(HANDLER, &h)?;
            h
        }
    };
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
/// nothing (0), an integer from 0 to 255, a table's integer `code` (a
/// process status), true (0) or false (1). Anything else is refused
/// rather than read as 0 or cut to 8 bits: `return 256` would exit 0,
/// and `return "7"` looks like 7 but is not a number.
pub(crate) fn exit_code_of(v: Option<&Value>) -> Result<i32, String> {
    let code = |n: i64, what: &str| {
        u8::try_from(n)
            .map(i32::from)
            .map_err(|_| format!("{what} {n}, not an exit code (an integer from 0 to 255)"))
    };
    match v {
        None | Some(Value::Nil) => Ok(0),
        Some(Value::Integer(n)) => code(*n, "returned"),
        Some(Value::Number(n)) if n.fract() == 0.0 && n.abs() < 1e18 => code(*n as i64, "returned"),
        Some(Value::Number(n)) => Err(format!(
            "returned {n}, not an exit code (an integer from 0 to 255)"
        )),
        Some(Value::Boolean(b)) => Ok(i32::from(!*b)),
        Some(Value::Table(t)) => match t.get::<Value>("code") {
            Ok(Value::Integer(n)) => code(n, "returned a table whose code is"),
            _ => {
                Err("returned a table without an integer 'code' (a process status has one)".into())
            }
        },
        Some(Value::String(s)) => Err(format!(
            "returned the string {:?}, not an exit code: return a number (tonumber(s))",
            s.to_string_lossy()
        )),
        Some(other) => Err(format!(
            "returned a {}, not an exit code (an integer from 0 to 255)",
            typename(other)
        )),
    }
}

/// How an error value that is not a string reads: its `__tostring`, or
/// for a plain table its fields (`{code = 3, why = "x"}`) rather than
/// `table: 0x55…`.
fn describe_error(lua: &Lua, e: &Value) -> mlua::Result<String> {
    let tostring = lua.globals().get::<Function>("tostring")?;
    let Value::Table(t) = e else {
        return tostring.call(e);
    };
    if t.metatable()
        .is_some_and(|m| m.contains_key("__tostring").unwrap_or(false))
    {
        return tostring.call(e);
    }
    let mut fields = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let show = |v: &Value| -> mlua::Result<String> {
            Ok(match v {
                Value::String(s) => format!("{:?}", s.to_string_lossy()),
                Value::Table(_) => "{…}".into(),
                other => tostring.call(other)?,
            })
        };
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            other => format!("[{}]", show(other)?),
        };
        fields.push(format!("{key} = {}", show(&v)?));
    }
    fields.sort();
    Ok(format!("error value {{{}}}", fields.join(", ")))
}

/// Build the `nsrun` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    init_glue(lua)?;
    init_lazy(lua)?;
    let m = lua.create_table()?;
    namespace::register(lua, &m)?;
    mount::register(lua, &m)?;
    fs::register(lua, &m)?;
    idmap::register(lua, &m)?;
    cred::register(lua, &m)?;
    process::register(lua, &m)?;
    spawn::register(lua, &m)?;
    usernet::register(lua, &m)?;
    net::register(lua, &m)?;
    json::register(lua, &m)?;
    hardening::register(lua, &m)?;
    seccomp_oci::register(lua, &m)?;
    rooted::register(lua, &m)?;
    channel::register(lua, &m)?;
    tty::register(lua, &m)?;
    m.set("version", env!("CARGO_PKG_VERSION"))?;

    Ok(m)
}

/// A connection to an OCI engine's console socket, and its path.
struct ConsoleConn(Option<std::os::unix::net::UnixStream>, String);
impl mlua::UserData for ConsoleConn {}

/// What the shipped modules get from nsrun besides the public API: checks
/// they must make exactly as the Rust side does (one copy of each rule).
pub(crate) fn shipped_helpers(lua: &Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    // A tmpfs size as a mount takes it: the bytes, or nil and why not.
    t.set(
        "tmpfs_size",
        lua.create_function(|_, s: String| {
            Ok(match crate::sys::size::tmpfs_size(&s) {
                Ok(n) => (Some(n), None),
                Err(e) => (None, Some(e.to_string())),
            })
        })?,
    )?;
    // nsrun itself killed when its parent dies (bubblewrap's
    // --die-with-parent covers "bwrap or bwrap's parent"). Not under
    // --plan, which changes nothing.
    t.set(
        "die_with_parent",
        lua.create_function(|_, ()| {
            crate::sys::process::die_with_parent().map_err(mlua::Error::runtime)
        })?,
    )?;
    // Open a gate (Spawn::gate) at `path`: a byte into the FIFO without
    // waiting for a reader. nil and why when nobody waits there (ENXIO:
    // the process is gone) or it is no FIFO.
    t.set(
        "open_gate",
        lua.create_function(|_, path: String| {
            Ok(
                match crate::sys::fs::open_gate(std::path::Path::new(&path)) {
                    Ok(true) => (true, None),
                    Ok(false) => (
                        false,
                        Some("nothing waits at the gate (the process is gone)".to_string()),
                    ),
                    Err(e) => (false, Some(e.to_string())),
                },
            )
        })?,
    )?;
    // An OCI --console-socket: connect to the unix socket at `path` and
    // send it the terminal's master end (`v`: a pipe or file value) by
    // SCM_RIGHTS, with its name as the data, as runc does.
    t.set(
        "send_console",
        lua.create_function(|lua, (to, v, name): (Value, Value, String)| {
            // `to`: the socket's path, or a connection made before (an
            // exec connects before it enters the container's mounts).
            let path = match &to {
                Value::String(s) => s.to_string_lossy(),
                Value::UserData(u) => match u.borrow::<ConsoleConn>() {
                    Ok(c) => c.1.clone(),
                    Err(_) => {
                        return Err(mlua::Error::runtime(
                            "send_console: a path or a connection expected",
                        ))
                    }
                },
                _ => {
                    return Err(mlua::Error::runtime(
                        "send_console: a path or a connection expected",
                    ))
                }
            };
            if crate::sys::ops::record(|| {
                format!("connect({path:?}) and sendmsg(SCM_RIGHTS, master)")
            }) {
                return Ok(());
            }
            let fd = match channel::fd_of(lua, &v) {
                Ok(Some((fd, _))) => fd,
                _ => {
                    return Err(mlua::Error::runtime(
                        "send_console: the terminal's master end expected",
                    ))
                }
            };
            let sock = match &to {
                Value::UserData(u) => u.borrow_mut::<ConsoleConn>()?.0.take().ok_or_else(|| {
                    mlua::Error::runtime("send_console: that connection was used")
                })?,
                _ => std::os::unix::net::UnixStream::connect(&path)
                    .map_err(|e| mlua::Error::runtime(format!("--console-socket {path}: {e}")))?,
            };
            crate::sys::channel::send_fds(std::os::fd::AsFd::as_fd(&sock), name.as_bytes(), &[fd])
                .map_err(|e| mlua::Error::runtime(format!("--console-socket {path}: {e}")))?;
            Ok(())
        })?,
    )?;
    // A connection to an OCI --console-socket, made now (see send_console).
    t.set(
        "console_connect",
        lua.create_function(|lua, path: String| {
            if crate::sys::ops::planning() {
                return lua.create_userdata(ConsoleConn(None, path));
            }
            let sock = std::os::unix::net::UnixStream::connect(&path)
                .map_err(|e| mlua::Error::runtime(format!("--console-socket {path}: {e}")))?;
            lua.create_userdata(ConsoleConn(Some(sock), path))
        })?,
    )?;
    // umask(2) of the calling process (OCI's process.user.umask, set in
    // the container's set-up); returns the old one.
    t.set(
        "umask",
        lua.create_function(|_, m: u32| Ok(crate::sys::process::umask(m)))?,
    )?;
    // A note in the plan (`# …`): what a --plan run shows beside its
    // steps, such as the bubblewrap command line a sandbox stands for.
    t.set(
        "plan_note",
        lua.create_function(|_, s: mlua::String| {
            crate::sys::ops::record(|| format!("# {}", s.to_string_lossy()));
            Ok(())
        })?,
    )?;
    oci_helpers::add(lua, &t)?;
    Ok(t)
}
