//! Channels in Lua: `ns.socketpair()`, `ns.channel(fd)`, the primitives
//! `ns.send_fds`/`ns.recv_fds`, and the Channel value (`p.channel`, a
//! spawned function's argument) with `send`, `recv`, `close`, `fd`.
//!
//! What goes: nil, booleans, numbers, strings, tables of those (no
//! cycles), and fds: Lua files, pipes, channels, namespace handles. What
//! comes: the same values; an fd becomes a channel (one sent as a
//! channel), a namespace handle (one the kernel says is a namespace), or
//! else a Lua file opened as the fd's access mode allows ("r", "w", "a",
//! "r+"), usable as a process's stdio.

use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields, UserDataMethods,
    Value,
};

use super::args::{typename, Args, Fail, R};
use super::values::{new_handle, Handle, Pipe};
use crate::sys::channel::{self, Channel, FdKind, Recv, Value as Wire};

/// A channel end as a Lua value.
pub(crate) struct LuaChannel(pub RefCell<Channel>);

/// Make `ch` a Lua value.
pub(crate) fn wrap(lua: &Lua, ch: Channel) -> mlua::Result<AnyUserData> {
    lua.create_userdata(LuaChannel(RefCell::new(ch)))
}

/// Where a value stands in what was sent, for messages:
/// `argument #2.files[3]`.
fn key_path(path: &str, k: &Value) -> String {
    match k {
        Value::String(s) => {
            let s = s.to_string_lossy();
            let ident = !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match ident {
                true => format!("{path}.{s}"),
                false => format!("{path}[{s:?}]"),
            }
        }
        Value::Integer(n) => format!("{path}[{n}]"),
        Value::Number(n) => format!("{path}[{n}]"),
        Value::Boolean(b) => format!("{path}[{b}]"),
        other => format!("{path}[<{}>]", typename(other)),
    }
}

/// The fd a userdata carries, and what it is; `Err` names why it cannot go.
pub(crate) fn fd_of(lua: &Lua, v: &Value) -> Result<Option<(RawFd, FdKind)>, String> {
    let Value::UserData(u) = v else {
        return Ok(None);
    };
    if let Ok(c) = u.borrow::<LuaChannel>() {
        let c = c.0.borrow();
        return match c.fd() {
            Some(fd) => Ok(Some((fd.as_raw_fd(), FdKind::Channel))),
            None => Err("a closed channel".into()),
        };
    }
    if let Ok(p) = u.borrow::<Pipe>() {
        return match p.raw_fd() {
            Some(fd) => Ok(Some((fd, FdKind::File))),
            None => Err("a closed pipe".into()),
        };
    }
    if let Ok(h) = u.borrow::<Handle>() {
        return match h.0.borrow().as_ref() {
            Some(h) => Ok(Some((h.as_fd().as_raw_fd(), FdKind::Namespace))),
            None => Err("a closed namespace handle".into()),
        };
    }
    match super::spawn::lua_file_fd(lua, v) {
        Ok(Some(Some(fd))) => Ok(Some((fd, FdKind::File))),
        Ok(Some(None)) => Err("a closed file".into()),
        _ => Ok(None),
    }
}

/// A Lua value as the wire has it; fds are copied (the copies go with
/// the message and close after). `stack` holds the tables being walked.
fn to_wire(lua: &Lua, v: &Value, path: &str, stack: &mut Vec<usize>) -> Result<Wire, String> {
    Ok(match v {
        Value::Nil => Wire::Nil,
        Value::Boolean(b) => Wire::Bool(*b),
        Value::Integer(n) => Wire::Int(*n),
        Value::Number(n) => Wire::Float(*n),
        Value::String(s) => Wire::Str(s.as_bytes().to_vec()),
        Value::Table(t) => {
            let id = t.to_pointer() as usize;
            if stack.contains(&id) {
                return Err(format!("{path} is a table that contains itself (a cycle)"));
            }
            if stack.len() >= channel::MAX_DEPTH {
                return Err(format!(
                    "{path}: tables nest more than {} deep",
                    channel::MAX_DEPTH
                ));
            }
            stack.push(id);
            let mut pairs = Vec::new();
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, val) = pair.map_err(|e| format!("{path}: {e}"))?;
                let here = key_path(path, &k);
                let kw = to_wire(lua, &k, &format!("{here} (the key)"), stack)?;
                pairs.push((kw, to_wire(lua, &val, &here, stack)?));
            }
            stack.pop();
            Wire::Table(pairs)
        }
        Value::UserData(_) => match fd_of(lua, v).map_err(|m| format!("{path} is {m}"))? {
            Some((fd, kind)) => {
                // SAFETY: the fd is open while its Lua value is.
                let b = unsafe { BorrowedFd::borrow_raw(fd) };
                let copy = b
                    .try_clone_to_owned()
                    .map_err(|e| format!("{path}: dup fd {fd}: {e}"))?;
                Wire::Fd(copy, kind)
            }
            None => {
                let what = lua
                    .globals()
                    .get::<mlua::Function>("tostring")
                    .and_then(|f| f.call::<String>(v.clone()))
                    .unwrap_or_else(|_| "userdata".into());
                return Err(format!(
                    "{path} is a userdata ({what}), which a channel cannot carry \
                     (only files, pipes, channels and namespace handles go as fds)"
                ));
            }
        },
        other => {
            return Err(format!(
                "{path} is a {}, which a channel cannot carry",
                typename(other)
            ))
        }
    })
}

/// The Lua stream block of io's files (lauxlib's `luaL_Stream`).
#[repr(C)]
struct LStream {
    f: *mut libc::FILE,
    closef: Option<mlua::ffi::lua_CFunction>,
}

/// `file:close()` of a file made here, as io's own.
unsafe extern "C-unwind" fn close_file(l: *mut mlua::ffi::lua_State) -> c_int {
    let p = mlua::ffi::luaL_checkudata(l, 1, c"FILE*".as_ptr()) as *mut LStream;
    let ok = libc::fclose((*p).f) == 0;
    mlua::ffi::luaL_fileresult(l, ok as c_int, std::ptr::null())
}

/// A Lua file over `fd`, opened as its access mode allows.
pub(crate) fn lua_file(lua: &Lua, fd: OwnedFd) -> mlua::Result<Value> {
    // SAFETY: F_GETFL only queries.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    let mode = match fl & libc::O_ACCMODE {
        libc::O_RDONLY => c"r",
        libc::O_WRONLY if fl & libc::O_APPEND != 0 => c"a",
        libc::O_WRONLY => c"w",
        _ => c"r+",
    };
    let raw = fd.into_raw_fd();
    // SAFETY: fdopen takes the fd over (closed by fclose).
    let f = unsafe { libc::fdopen(raw, mode.as_ptr()) };
    if f.is_null() {
        let e = std::io::Error::last_os_error();
        // SAFETY: fdopen failed: the fd is still ours.
        unsafe { libc::close(raw) };
        return Err(mlua::Error::runtime(format!(
            "fdopen of a received fd: {e}"
        )));
    }
    // SAFETY: a userdata of luaL_Stream's layout with io's metatable, as
    // io.open makes; the metatable is checked to exist (io is loaded).
    let v: Value = unsafe {
        lua.exec_raw((), |l| {
            mlua::ffi::lua_settop(l, 0);
            mlua::ffi::luaL_getmetatable(l, c"FILE*".as_ptr());
            let have = mlua::ffi::lua_type(l, -1) == mlua::ffi::LUA_TTABLE;
            mlua::ffi::lua_settop(l, 0);
            if !have {
                libc::fclose(f);
                mlua::ffi::lua_pushnil(l);
                return;
            }
            let p =
                mlua::ffi::lua_newuserdatauv(l, std::mem::size_of::<LStream>(), 0) as *mut LStream;
            p.write(LStream {
                f,
                closef: Some(close_file),
            });
            mlua::ffi::luaL_setmetatable(l, c"FILE*".as_ptr());
        })?
    };
    if v.is_nil() {
        return Err(mlua::Error::runtime(
            "a received fd cannot become a Lua file: the io library is not loaded",
        ));
    }
    Ok(v)
}

/// A received fd as a Lua value: a channel, a namespace handle or a file.
fn fd_value(lua: &Lua, fd: OwnedFd, kind: FdKind) -> mlua::Result<Value> {
    let fd = match crate::sys::namespace::handle_of_fd(fd) {
        Ok(h) => return Ok(Value::UserData(new_handle(lua, h)?)),
        Err(fd) => fd,
    };
    if kind == FdKind::Channel && is_socket(fd.as_fd()) {
        return Ok(Value::UserData(wrap(lua, Channel::from_fd(fd))?));
    }
    lua_file(lua, fd)
}

fn is_socket(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

fn from_wire(lua: &Lua, v: Wire) -> mlua::Result<Value> {
    Ok(match v {
        Wire::Nil => Value::Nil,
        Wire::Bool(b) => Value::Boolean(b),
        Wire::Int(n) => Value::Integer(n),
        Wire::Float(f) => Value::Number(f),
        Wire::Str(s) => Value::String(lua.create_string(s)?),
        Wire::Table(pairs) => {
            let t = lua.create_table_with_capacity(0, pairs.len())?;
            for (k, v) in pairs {
                let k = from_wire(lua, k)?;
                // NaN keys cannot be; a float key that is an integer is one.
                if matches!(k, Value::Number(n) if n.is_nan()) {
                    return Err(mlua::Error::runtime(
                        "channel: a malformed message from the peer: a NaN table key",
                    ));
                }
                t.raw_set(k, from_wire(lua, v)?)?;
            }
            Value::Table(t)
        }
        Wire::Fd(fd, kind) => fd_value(lua, fd, kind)?,
    })
}

fn this(a: &Args) -> R<AnyUserData> {
    a.userdata::<LuaChannel>(1, "channel")
}

/// The timeout argument `i`: seconds, `nil` for none.
fn timeout_arg(a: &Args, i: usize) -> R<Option<Duration>> {
    let secs = match a.get(i) {
        Value::Nil => return Ok(None),
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        other => {
            return Err(a.bad(
                i,
                format!("timeout in seconds expected, got {}", typename(other)),
            ))
        }
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(a.bad(i, format!("timeout must be 0 to 1e9 seconds, got {secs}")));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

fn closed(lua: &Lua, why: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(why)?),
    ]))
}

fn send(lua: &Lua, a: &Args) -> R<MultiValue> {
    let ud = this(a)?;
    let n = a.len();
    if n < 2 {
        // A message of no values would read as nil, like a closed channel.
        return Err(a.fail("nothing to send: give one value or more"));
    }
    let mut vals = Vec::with_capacity(n.saturating_sub(1));
    let mut stack = Vec::new();
    for i in 2..=n {
        let v = to_wire(lua, a.get(i), &format!("value #{}", i - 1), &mut stack)
            .map_err(|m| a.fail(m))?;
        vals.push(v);
    }
    let c = ud.borrow::<LuaChannel>()?;
    let sent = c.0.borrow_mut().send(&vals).map_err(|e| match e {
        crate::Error::Invalid(m) => a.fail(m),
        other => Fail::Sys(other),
    })?;
    match sent {
        true => Ok(MultiValue::from_vec(vec![Value::Boolean(true)])),
        false => Ok(closed(lua, "closed")?),
    }
}

fn recv(lua: &Lua, a: &Args) -> R<MultiValue> {
    let ud = this(a)?;
    let timeout = timeout_arg(a, 2)?;
    let c = ud.borrow::<LuaChannel>()?;
    let got = c.0.borrow_mut().recv(timeout).map_err(|e| match e {
        crate::Error::Invalid(m) => a.fail(m),
        other => Fail::Sys(other),
    })?;
    drop(c);
    match got {
        Recv::Message(vals) => {
            let mut out = Vec::with_capacity(vals.len());
            for v in vals {
                out.push(from_wire(lua, v)?);
            }
            Ok(MultiValue::from_vec(out))
        }
        Recv::Closed => Ok(closed(lua, "closed")?),
        Recv::TimedOut => Ok(closed(lua, "timeout")?),
    }
}

impl UserData for LuaChannel {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| {
            let m = lua.create_table()?;
            crate::bindings::add(lua, &m, "send", send)?;
            crate::bindings::add(lua, &m, "recv", recv)?;
            crate::bindings::add(lua, &m, "close", |_, a| {
                let ud = this(a)?;
                ud.borrow::<LuaChannel>()?.0.borrow_mut().close();
                Ok(())
            })?;
            crate::bindings::add(lua, &m, "fd", |_, a| {
                let ud = this(a)?;
                let c = ud.borrow::<LuaChannel>()?;
                let fd = c.0.borrow().fd().map(|f| f.as_raw_fd());
                Ok(fd)
            })?;
            Ok(m)
        });
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            let c = this.0.borrow();
            Ok(match (c.fd(), c.is_planned()) {
                (_, true) => "channel (planned)".to_string(),
                (Some(fd), _) => format!("channel (fd {})", fd.as_raw_fd()),
                (None, _) => "channel (closed)".to_string(),
            })
        });
        // Closing is of this process's copy only (never a shutdown), so a
        // forked child's `<close>` leaves the parent's channel alone.
        methods.add_meta_method(MetaMethod::Close, |_, this, ()| {
            this.0.borrow_mut().close();
            Ok(())
        });
    }
}

/// The socket argument `i` of the primitives: a channel, a Lua file or
/// an fd number.
fn sock_arg(lua: &Lua, a: &Args, i: usize) -> R<RawFd> {
    match a.get(i) {
        Value::Integer(n) if (0..=i32::MAX as i64).contains(n) => Ok(*n as RawFd),
        v @ Value::UserData(_) => match fd_of(lua, v).map_err(|m| a.bad(i, m))? {
            Some((fd, _)) => Ok(fd),
            None => Err(a.bad(i, "a channel, a Lua file or an fd number expected")),
        },
        other => Err(a.bad(
            i,
            format!(
                "a channel, a Lua file or an fd number expected, got {}",
                typename(other)
            ),
        )),
    }
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    super::add(lua, m, "socketpair", |lua, _| {
        let (x, y) = Channel::pair()?;
        Ok((wrap(lua, x)?, wrap(lua, y)?))
    })?;
    super::add(lua, m, "channel", |lua, a| {
        let n = a.integer(1)?;
        let fd = RawFd::try_from(n).map_err(|_| a.bad(1, format!("bad fd {n}")))?;
        let owned = crate::sys::fs::adopt_socket(fd).map_err(|e| a.bad(1, e.to_string()))?;
        Ok(wrap(lua, Channel::from_fd(owned))?)
    })?;
    super::add(lua, m, "send_fds", |lua, a| {
        let sock = sock_arg(lua, a, 1)?;
        let data = a.bytes(2)?;
        let mut copies: Vec<OwnedFd> = Vec::new();
        match a.get(3) {
            Value::Nil => {}
            Value::Table(t) => {
                for (i, v) in t.clone().sequence_values::<Value>().enumerate() {
                    let v = v?;
                    let fd = match &v {
                        Value::Integer(n) => RawFd::try_from(*n).ok().filter(|fd| *fd >= 0),
                        _ => fd_of(lua, &v)
                            .map_err(|m| a.bad(3, format!("fds[{}] is {m}", i + 1)))?
                            .map(|(fd, _)| fd),
                    };
                    let fd = fd.ok_or_else(|| {
                        a.bad(
                            3,
                            format!(
                                "fds[{}]: a file, pipe, channel, namespace handle or fd number expected, got {}",
                                i + 1,
                                typename(&v)
                            ),
                        )
                    })?;
                    // SAFETY: a copy of an fd the caller named; a closed one fails.
                    let b = unsafe { BorrowedFd::borrow_raw(fd) };
                    copies.push(
                        b.try_clone_to_owned()
                            .map_err(|e| a.bad(3, format!("fds[{}]: fd {fd}: {e}", i + 1)))?,
                    );
                }
            }
            other => {
                return Err(a.bad(
                    3,
                    format!("a list of fds expected, got {}", typename(other)),
                ))
            }
        }
        let raw: Vec<RawFd> = copies.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: the caller's fd, open while this call runs (or EBADF).
        let b = unsafe { BorrowedFd::borrow_raw(sock) };
        let n = channel::send_fds(b, &data, &raw).map_err(|e| match e {
            crate::Error::Invalid(m) => a.fail(m),
            other => Fail::Sys(other),
        })?;
        Ok(n)
    })?;
    super::add(lua, m, "recv_fds", |lua, a| {
        let sock = sock_arg(lua, a, 1)?;
        let max = match a.get(2) {
            Value::Nil => 65536,
            _ => {
                let n = a.integer(2)?;
                usize::try_from(n)
                    .ok()
                    .filter(|n| (1..=channel::MAX_FRAME).contains(n))
                    .ok_or_else(|| {
                        a.bad(
                            2,
                            format!("maxlen must be 1 to {}, got {n}", channel::MAX_FRAME),
                        )
                    })?
            }
        };
        let mut buf = Vec::new();
        // SAFETY: the caller's fd, open while this call runs (or EBADF).
        let b = unsafe { BorrowedFd::borrow_raw(sock) };
        let (n, fds) = channel::recv_fds(b, &mut buf, max).map_err(|e| match e {
            crate::Error::Invalid(m) => a.fail(m),
            other => Fail::Sys(other),
        })?;
        if n == 0 && fds.is_empty() {
            return Ok(closed(lua, "closed")?);
        }
        let list = lua.create_table()?;
        for fd in fds {
            list.raw_push(fd_value(lua, fd, FdKind::File)?)?;
        }
        Ok(MultiValue::from_vec(vec![
            Value::String(lua.create_string(&buf)?),
            Value::Table(list),
        ]))
    })?;
    Ok(())
}

/// `ns.spawn`'s `channel` option: `None` without one; for a function
/// `Some(None)` (it gets the channel as its argument); for a program the
/// fd it gets its end on (`true`: 3).
pub(crate) fn option(a: &Args, v: Value, is_fn: bool) -> R<Option<Option<RawFd>>> {
    Ok(match v {
        Value::Nil | Value::Boolean(false) => None,
        Value::Boolean(true) if is_fn => Some(None),
        Value::Boolean(true) => Some(Some(3)),
        Value::Integer(_) if is_fn => {
            return Err(
                a.fail("channel: a function gets its channel as its argument: give channel = true")
            )
        }
        Value::Integer(n) if (3..=i32::MAX as i64).contains(&n) => Some(Some(n as RawFd)),
        Value::Integer(n) => {
            return Err(a.fail(format!(
                "channel: fd {n} is a standard stream or not an fd: give 3 or more"
            )))
        }
        other => {
            return Err(a.fail(format!(
                "channel must be true or an fd number (3 or more), got {}",
                typename(&other)
            )))
        }
    })
}
