//! `ns.spawn` and `ns.run`: a thin conversion of an options table onto
//! [`crate::Spawn`].

use std::time::Duration;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use mlua::{AnyUserData, Function, Lua, Table, Value};

use super::args::{
    check_keys, names_of, opt_bool, opt_path, opt_str, parse_kinds, typename, Args, Fail, R,
};
use super::hardening;
use super::values::{self, target, Handle, Pipe, Process, Target};
use crate::sys::namespace::Namespace;
use crate::sys::spawn::{IdMap, JoinTarget, Spawn, Stdio};

/// The keys of `ns.spawn`/`ns.run` option tables.
pub(crate) const KEYS: &[&str] = &[
    "argv",
    "fn",
    "namespaces",
    "join",
    "uid_map",
    "gid_map",
    "setgroups",
    "uid",
    "gid",
    "groups",
    "hostname",
    "domainname",
    "time_offsets",
    "setup",
    "before_start",
    "env",
    "clear_env",
    "cwd",
    "argv0",
    "stdin",
    "input",
    "stdout",
    "stderr",
    "keep_fds",
    "lock_files",
    "parent_fds",
    "gate",
    "nested_user",
    "set_pwd",
    "init",
    "die_with_parent",
    "new_session",
    "timeout",
    "propagation",
    "mount_proc",
    "caps",
    "no_new_privs",
    "seccomp",
    "rlimits",
    "cgroup",
    "disable_userns",
    "landlock",
    "new_keyring",
    "tty_guard",
    "channel",
    "net",
    "ports",
    "tty",
];

/// An option that is a list of fd numbers (`keep_fds`, `parent_fds`).
fn fd_list(a: &Args, opts: &Table, key: &str) -> R<Option<Vec<RawFd>>> {
    let v = opts.get::<Value>(key)?;
    expect(a, &v, key, "a list of fd numbers")?;
    let Value::Table(t) = v else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for x in t.sequence_values::<i64>() {
        let x = x.map_err(|_| a.fail(format!("{key} must be a list of fd numbers")))?;
        out.push(RawFd::try_from(x).map_err(|_| a.fail(format!("{key}: bad fd {x}")))?);
    }
    Ok(Some(out))
}

fn id_map(a: &Args, v: Value, key: &str) -> R<Option<IdMap>> {
    Ok(match v {
        Value::Nil => None,
        Value::String(s) => match s.to_string_lossy().as_str() {
            "root" => Some(IdMap::Root),
            "self" => Some(IdMap::Same),
            // The caller writes it (bubblewrap's --userns-block-fd): nobody
            // here does.
            "none" => Some(IdMap::Ranges(Vec::new())),
            other => return Err(a.fail(format!("{key}: \"root\", \"self\", \"none\" or a list of {{inside, outside, count}} expected, got '{other}'"))),
        },
        Value::Table(t) => Some(IdMap::Ranges(values::id_ranges_of(a, 1, t)?)),
        other => return Err(a.fail(format!("{key} must be \"root\", \"self\" or a table, got {}", typename(&other)))),
    })
}

/// What a spawn's stdio borrows from Lua until the process is started:
/// pipes of other processes it takes over, and the fd of `input`.
#[derive(Default)]
struct Held {
    pipes: Vec<AnyUserData>,
    fds: Vec<OwnedFd>,
}

impl Held {
    /// The process started with its copies: the pipes given to it are no
    /// longer ours, so that it alone holds that end (a reader sees end of
    /// file once the writer ends).
    fn give_up(mut self) -> mlua::Result<()> {
        for u in std::mem::take(&mut self.pipes) {
            u.borrow::<Pipe>()?.give_up();
        }
        Ok(())
    }
}

/// The fd of a Lua file (`io.open(...)`, `io.stdout`), flushed so that
/// what Lua buffered comes before what the process writes; `None` if `v`
/// is not a file, `Some(None)` for a closed one.
impl Drop for Held {
    /// Not started: the pipes stay the recipe's, as they were.
    fn drop(&mut self) {
        for u in &self.pipes {
            if let Ok(p) = u.borrow::<Pipe>() {
                p.unlend();
            }
        }
    }
}

pub(crate) fn lua_file_fd(lua: &Lua, v: &Value) -> mlua::Result<Option<Option<RawFd>>> {
    // SAFETY: luaL_testudata checks the metatable is io's "FILE*", so the
    // block is a luaL_Stream { FILE *f; lua_CFunction closef }, whose
    // closef is NULL once the file is closed.
    let r: Value = unsafe {
        lua.exec_raw(v.clone(), |l| {
            let p = mlua::ffi::luaL_testudata(l, 1, c"FILE*".as_ptr());
            let out = if p.is_null() {
                None
            } else {
                let stream = p as *const [*mut libc::c_void; 2];
                if (*stream)[1].is_null() {
                    Some(-1)
                } else {
                    let f = (*stream)[0] as *mut libc::FILE;
                    libc::fflush(f);
                    Some(libc::fileno(f) as i64)
                }
            };
            mlua::ffi::lua_settop(l, 0);
            match out {
                None => mlua::ffi::lua_pushnil(l),
                Some(n) => mlua::ffi::lua_pushinteger(l, n),
            }
        })?
    };
    Ok(match r {
        Value::Integer(n) if n >= 0 => Some(Some(n as RawFd)),
        Value::Integer(_) => Some(None),
        _ => None,
    })
}

fn stdio(lua: &Lua, a: &Args, v: Value, key: &str, default: Stdio, held: &mut Held) -> R<Stdio> {
    Ok(match v {
        Value::Nil => default,
        Value::String(s) => match s.as_bytes().as_ref() {
            b"inherit" => Stdio::Inherit,
            b"null" => Stdio::Null,
            b"pipe" => Stdio::Pipe,
            b"" => return Err(a.fail(format!("{key}: empty path"))),
            // A file is named by a path with a '/' ("./out", "/tmp/log"),
            // so that a misspelt kind ("pipe ", "nul") is an error rather
            // than a file created under that name.
            path if path.contains(&b'/') => {
                super::args::path_of(path).map_err(|m| a.fail(format!("{key}: {m}")))?;
                Stdio::Path(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path)))
            }
            _ => {
                let word = s.to_string_lossy();
                let hint = crate::error::suggest(word.trim(), ["inherit", "null", "pipe"])
                    .map(|k| format!(" (did you mean \"{k}\"?)"))
                    .unwrap_or_default();
                return Err(a.fail(format!(
                    "{key}: unknown stdio kind '{word}'{hint}: \"inherit\", \"null\", \"pipe\", \
                     a path containing a '/' (\"./{}\") or an fd number",
                    word.trim()
                )));
            }
        },
        Value::Integer(n) if (0..=i32::MAX as i64).contains(&n) => Stdio::Fd(n as i32),
        Value::UserData(u) if u.is::<Pipe>() => {
            let p = u.borrow::<Pipe>()?;
            // stdin reads what another process writes (its stdout);
            // stdout/stderr write to what another process reads (its stdin).
            let want_write = key != "stdin";
            let fd = p
                .lend(want_write)
                .map_err(|m| a.fail(format!("{key}: {m}")))?;
            drop(p);
            held.pipes.push(u);
            Stdio::Fd(fd)
        }
        ref other @ Value::UserData(_) => match lua_file_fd(lua, other)? {
            Some(Some(fd)) => Stdio::Fd(fd),
            Some(None) => return Err(a.fail(format!("{key}: the file is closed"))),
            None => {
                return Err(a.fail(format!(
                    "{key} must be \"inherit\", \"null\", \"pipe\", a path, an fd number, \
                     a pipe or a Lua file, got {}",
                    typename(other)
                )))
            }
        },
        other => {
            return Err(a.fail(format!(
                "{key} must be \"inherit\", \"null\", \"pipe\", a path, an fd number, \
                 a pipe or a Lua file, got {}",
                typename(&other)
            )))
        }
    })
}

/// Refuse an option of the wrong type (rather than skip it): `setup`
/// must be a function, `groups` a table, … `want` names the type.
fn expect(a: &Args, v: &Value, key: &str, want: &str) -> R<()> {
    let ok = match v {
        Value::Nil => true,
        Value::Function(_) => want == "a function",
        Value::Table(_) => want.starts_with("a list"),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(a.fail(format!(
        "option '{key}' must be {want}, got {}",
        typename(v)
    )))
}

fn int_field(a: &Args, t: &Table, key: &str) -> R<Option<i64>> {
    match t.get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::Integer(n) => Ok(Some(n)),
        Value::Number(n) if n.fract() == 0.0 => Ok(Some(n as i64)),
        other => Err(a.fail(format!(
            "{key} must be an integer, got {}",
            typename(&other)
        ))),
    }
}

fn id_field(a: &Args, t: &Table, key: &str) -> R<Option<u32>> {
    int_field(a, t, key)?
        .map(|n| u32::try_from(n).map_err(|_| a.fail(format!("{key} out of range: {n}"))))
        .transpose()
}

/// The longest `timeout`: past it the deadline would overflow `Instant`
/// (and `Duration::from_secs_f64` panics on 1e30); no sandbox needs more.
const MAX_TIMEOUT_SECS: i64 = 100 * 365 * 86400;

fn too_long(a: &Args, got: String) -> Fail {
    a.fail(format!(
        "timeout must be at most {MAX_TIMEOUT_SECS} seconds (100 years), got {got}"
    ))
}

/// Turn `opts` into a Spawn. `defaults_pipe` makes stdout/stderr pipes
/// unless given (`ns.run`).
fn build<'l>(
    lua: &'l Lua,
    a: &Args,
    opts: &Table,
    defaults_pipe: bool,
    held: &mut Held,
) -> R<Spawn<'l>> {
    let fname = a.name();
    check_keys(opts, fname, KEYS)?;
    let func: Option<Function> = match opts.get::<Value>("fn")? {
        Value::Nil => None,
        Value::Function(f) => Some(f),
        other => return Err(a.fail(format!("fn must be a function, got {}", typename(&other)))),
    };
    let argv = match opts.get::<Value>("argv")? {
        Value::Nil => None,
        Value::Table(t) => Some(values::argv_of(a, 1, &t)?),
        Value::String(s) => {
            return Err(a.fail(format!(
                "argv must be a list, e.g. {{\"{}\"}}",
                s.to_string_lossy()
            )))
        }
        other => {
            return Err(a.fail(format!(
                "argv must be a list of strings, got {}",
                typename(&other)
            )))
        }
    };
    let channel = super::channel::option(a, opts.get("channel")?, func.is_some())?;
    let mut sp = match (argv, func) {
        (Some(_), Some(_)) => return Err(a.fail("give argv or fn, not both")),
        (None, None) => return Err(a.fail("needs argv (a program to run) or fn (a function)")),
        (Some(argv), None) => Spawn::new(argv),
        (None, Some(f)) if channel.is_some() => {
            Spawn::func_channel(move |ch| match super::channel::wrap(lua, ch) {
                Ok(ch) => values::child_code_with(lua, &f, ch),
                Err(e) => {
                    eprintln!("nsrun: channel: {e}");
                    1
                }
            })
        }
        (None, Some(f)) => Spawn::func(move || values::child_code(lua, &f)),
    };
    if let Some(Some(fd)) = channel {
        sp = sp.channel(fd);
    }
    let kinds = match opts.get::<Value>("namespaces")? {
        Value::Nil => Vec::new(),
        v => {
            let names = names_of(&v)
                .ok_or_else(|| a.fail("namespaces must be a list or a comma string"))?;
            parse_kinds(&names).map_err(|e| a.fail(e))?.iter().collect()
        }
    };
    sp = sp.namespaces(kinds);
    if let Value::Table(join) = opts.get::<Value>("join")? {
        for pair in join.pairs::<String, Value>() {
            let (k, v) = pair?;
            let kind: Namespace = k.parse().map_err(|e| a.fail(format!("join: {e}")))?;
            // A process nsrun started: its supervisor is sealed, which
            // closes its /proc/PID/ns to an unprivileged caller; its
            // namespaces are taken as `p:ns()` takes them.
            if let Value::UserData(u) = &v {
                if let Ok(p) = u.borrow::<Process>() {
                    let pid = p.child.borrow().pid();
                    if !crate::sys::ops::planning() {
                        let h = crate::sys::namespace::open_of_started(kind, pid)?;
                        sp = sp.join(kind, JoinTarget::Handle(h));
                        continue;
                    }
                }
            }
            let one = Args::new(fname, mlua::MultiValue::from_vec(vec![v]));
            let t = match target(&one, 1).map_err(|_| {
                a.fail(format!(
                    "join.{k}: a pid, process, path or namespace handle expected"
                ))
            })? {
                Target::Pid(p) => JoinTarget::Pid(p),
                Target::Path(p) => JoinTarget::Path(p),
                Target::Handle(u) => {
                    let h = u.borrow::<Handle>()?;
                    let inner = h.0.borrow();
                    let h = inner
                        .as_ref()
                        .ok_or_else(|| a.fail(format!("join.{k}: the handle is closed")))?;
                    JoinTarget::Path(format!(
                        "/proc/self/fd/{}",
                        std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(h))
                    ))
                }
            };
            sp = sp.join(kind, t);
        }
    } else if !opts.get::<Value>("join")?.is_nil() {
        return Err(a.fail("join must be a table like {net = handle}"));
    }
    if let Some(m) = id_map(a, opts.get("uid_map")?, "uid_map")? {
        sp = sp.uid_map(m);
    }
    if let Some(m) = id_map(a, opts.get("gid_map")?, "gid_map")? {
        sp = sp.gid_map(m);
    }
    match opt_str(opts, fname, "setgroups")?.as_deref() {
        None => {}
        Some("allow") => sp = sp.setgroups(true),
        Some("deny") => sp = sp.setgroups(false),
        Some(other) => {
            return Err(a.fail(format!(
                "setgroups must be \"allow\" or \"deny\", got '{other}'"
            )))
        }
    }
    if let Some(u) = id_field(a, opts, "uid")? {
        sp = sp.uid(u);
    }
    if let Some(g) = id_field(a, opts, "gid")? {
        sp = sp.gid(g);
    }
    let groups = opts.get::<Value>("groups")?;
    expect(a, &groups, "groups", "a list of gids")?;
    if let Value::Table(g) = groups {
        let mut v = Vec::new();
        for x in g.sequence_values::<i64>() {
            let x = x.map_err(|_| a.fail("groups must be a list of gids"))?;
            v.push(u32::try_from(x).map_err(|_| a.fail(format!("group out of range: {x}")))?);
        }
        sp = sp.groups(v);
    }
    if let Some(h) = opt_str(opts, fname, "hostname")? {
        sp = sp.hostname(h);
    }
    if let Some(d) = opt_str(opts, fname, "domainname")? {
        sp = sp.domainname(d);
    }
    match opts.get::<Value>("time_offsets")? {
        Value::Nil => {}
        Value::Table(t) => {
            check_keys(&t, "time_offsets", &["monotonic", "boottime"])?;
            let m = int_field(a, &t, "monotonic")?.unwrap_or(0);
            let b = int_field(a, &t, "boottime")?.unwrap_or(0);
            sp = sp.time_offsets(m, b);
        }
        other => {
            return Err(a.fail(format!(
                "time_offsets must be a table, got {}",
                typename(&other)
            )))
        }
    }
    if let Some(env) = values::env_table(a, opts.get("env")?)? {
        for (k, v) in env {
            sp = sp.env(k, v);
        }
    }
    sp = sp.clear_env(opt_bool(opts, fname, "clear_env", false)?);
    if let Some(c) = opt_path(opts, fname, "cwd")? {
        sp = sp.cwd(c);
    }
    if let Some(c) = opt_path(opts, fname, "argv0")? {
        sp = sp.argv0(c);
    }
    let out_default = if defaults_pipe {
        Stdio::Pipe
    } else {
        Stdio::Inherit
    };
    let stdin = match opts.get::<Value>("input")? {
        Value::Nil => stdio(lua, a, opts.get("stdin")?, "stdin", Stdio::Inherit, held)?,
        Value::String(data) => {
            if !opts.get::<Value>("stdin")?.is_nil() {
                return Err(a.fail("give stdin or input, not both"));
            }
            let fd =
                crate::sys::fs::sealed_memfd("nsrun-input", &data.as_bytes()).map_err(Fail::Sys)?;
            let raw = fd.as_raw_fd();
            held.fds.push(fd);
            Stdio::Fd(raw)
        }
        other => {
            return Err(a.fail(format!(
                "input must be a string (the bytes for stdin), got {}",
                typename(&other)
            )))
        }
    };
    sp = sp
        .stdin(stdin)
        .stdout(stdio(
            lua,
            a,
            opts.get("stdout")?,
            "stdout",
            out_default.clone(),
            held,
        )?)
        .stderr(stdio(
            lua,
            a,
            opts.get("stderr")?,
            "stderr",
            out_default,
            held,
        )?);
    if let Some(v) = fd_list(a, opts, "keep_fds")? {
        sp = sp.keep_fds(v);
    }
    let locks = opts.get::<Value>("lock_files")?;
    expect(a, &locks, "lock_files", "a list of paths")?;
    if let Value::Table(k) = locks {
        let mut v = Vec::new();
        for x in k.sequence_values::<mlua::String>() {
            let x = x.map_err(|_| a.fail("lock_files must be a list of paths"))?;
            v.push(std::ffi::OsStr::from_bytes(&x.as_bytes()).to_os_string());
        }
        sp = sp.lock_files(v);
    }
    if let Some(v) = fd_list(a, opts, "parent_fds")? {
        sp = sp.parent_fds(v);
    }
    match opts.get::<Value>("nested_user")? {
        Value::Nil => {}
        Value::Table(t) => {
            check_keys(&t, "nested_user", &["uid", "gid"])?;
            let id = |k: &str| -> R<u32> {
                match t.get::<Value>(k)? {
                    Value::Integer(n) if (0..=0xfffffffe).contains(&n) => Ok(n as u32),
                    other => Err(a.fail(format!(
                        "nested_user.{k} must be an id (an integer from 0), got {}",
                        typename(&other)
                    ))),
                }
            };
            sp = sp.nested_user(id("uid")?, id("gid")?);
        }
        other => {
            return Err(a.fail(format!(
                "nested_user must be a table like {{uid = 1000, gid = 1000}}, got {}",
                typename(&other)
            )))
        }
    }
    sp = sp.set_pwd(opt_bool(opts, fname, "set_pwd", false)?);
    match opts.get::<Value>("init")? {
        Value::Nil => {}
        Value::Boolean(b) => sp = sp.init(b),
        other => return Err(a.fail(format!("init must be a boolean, got {}", typename(&other)))),
    }
    // A process with a gate is meant to outlive us (an OCI container).
    let gate = opt_path(opts, fname, "gate")?;
    sp = sp
        .die_with_parent(opt_bool(opts, fname, "die_with_parent", gate.is_none())?)
        .new_session(opt_bool(opts, fname, "new_session", false)?);
    if let Some(g) = gate {
        let dwp = opt_bool(opts, fname, "die_with_parent", false)?;
        sp = sp.gate(g).die_with_parent(dwp);
    }
    match opts.get::<Value>("timeout")? {
        Value::Nil => {}
        Value::Integer(n) if n > 0 && n <= MAX_TIMEOUT_SECS => {
            sp = sp.timeout(Duration::from_secs(n as u64))
        }
        Value::Number(n) if n > 0.0 && n <= MAX_TIMEOUT_SECS as f64 => {
            sp = sp.timeout(Duration::from_secs_f64(n))
        }
        Value::Integer(n) if n > 0 => return Err(too_long(a, n.to_string())),
        Value::Number(n) if n > 0.0 => return Err(too_long(a, format!("{n:e}"))),
        other => {
            return Err(a.fail(format!(
                "timeout must be a positive number of seconds, got {}",
                typename(&other)
            )))
        }
    }
    match opts.get::<Value>("mount_proc")? {
        Value::Nil | Value::Boolean(false) => {}
        Value::Boolean(true) => sp = sp.mount_proc("/proc"),
        Value::String(t) => sp = sp.mount_proc(t.to_str()?.to_string()),
        other => {
            return Err(a.fail(format!(
                "mount_proc must be true or a path, got {}",
                typename(&other)
            )))
        }
    }
    if let Some(p) = opt_str(opts, fname, "propagation")? {
        sp = sp.propagation(p.parse().map_err(|e| a.fail(e))?);
    }
    if let Some(c) = hardening::caps(a, opts.get("caps")?)? {
        sp = sp.caps(c);
    }
    if !opts.get::<Value>("no_new_privs")?.is_nil() {
        // Unset, the default follows seccomp: keep "not given" apart.
        sp = sp.no_new_privs(opt_bool(opts, fname, "no_new_privs", false)?);
    }
    if let Some(p) = hardening::seccomp(a, opts.get("seccomp")?)? {
        sp = sp.seccomp(p);
    }
    for r in hardening::rlimits(a, opts.get("rlimits")?)? {
        sp = sp.rlimit(r);
    }
    if let Some(l) = hardening::cgroup(a, opts.get("cgroup")?)? {
        sp = sp.cgroup(l);
    }
    sp = sp
        .disable_userns(opt_bool(opts, fname, "disable_userns", false)?)
        .new_keyring(opt_bool(opts, fname, "new_keyring", false)?)
        .tty_guard(opt_bool(opts, fname, "tty_guard", false)?);
    match opts.get::<Value>("tty")? {
        Value::Nil | Value::Boolean(false) => {}
        Value::Boolean(true) => sp = sp.tty(true),
        Value::String(s) if s.as_bytes() == b"master" => sp = sp.tty(true).tty_master(true),
        other => {
            return Err(a.fail(format!(
                "tty must be true, false or \"master\" (never relay: the master is p.tty), got {}",
                match &other {
                    Value::String(s) => format!("'{}'", s.to_string_lossy()),
                    v => typename(v).to_string(),
                }
            )))
        }
    }
    if let Some(l) = hardening::landlock(a, opts.get("landlock")?)? {
        sp = sp.landlock(l);
    }
    sp = super::usernet::apply(a, opts, sp)?;
    let setup = opts.get::<Value>("setup")?;
    expect(a, &setup, "setup", "a function")?;
    if let Value::Function(f) = setup {
        sp = sp.setup(move || {
            // In a forked child, a collection marks every object of the
            // heap it shares copy-on-write with nsrun: each page it writes
            // is copied. The child only runs setup and execs or leaves:
            // collect nothing there. (Under --plan setup runs in nsrun.)
            if !crate::sys::ops::planning() {
                lua.gc_stop();
            }
            match super::call_traced(lua, &f, ()) {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(u)) => Err(crate::Error::Child(format!("setup: {}", u.message))),
                Err(e) => Err(crate::Error::Child(format!("setup: {e}"))),
            }
        });
    }
    let before_start = opts.get::<Value>("before_start")?;
    expect(a, &before_start, "before_start", "a function")?;
    if let Value::Function(f) = before_start {
        sp = sp.before_start(move |pid| {
            // The process as a value (pid, :ns(kind), :kill()); it is
            // waiting for us, so :wait() here would never return.
            let p = Process::create(lua, crate::sys::child::Child::observer(pid))
                .map_err(|e| crate::Error::Invalid(e.to_string()))?;
            match super::call_traced(lua, &f, p) {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(u)) => Err(crate::Error::Child(format!("before_start: {}", u.message))),
                Err(e) => Err(crate::Error::Child(format!("before_start: {e}"))),
            }
        });
    }
    Ok(sp)
}

fn spawn_err(a: &Args, e: crate::Error) -> Fail {
    match e {
        crate::Error::Child(m) | crate::Error::Invalid(m) => a.fail(m),
        other => Fail::Sys(other),
    }
}

pub(crate) fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    // The sandbox passes these on to ns.spawn: it reads them from here
    // rather than keeping a copy that could drift.
    super::add(lua, m, "spawn_options", |lua, _| {
        let mut keys = KEYS.to_vec();
        keys.sort_unstable();
        Ok(lua.create_sequence_from(keys)?)
    })?;
    super::add(lua, m, "spawn", |lua, a| {
        let opts = a.table(1)?;
        let mut held = Held::default();
        let child = build(lua, a, &opts, false, &mut held)?
            .spawn()
            .map_err(|e| spawn_err(a, e))?;
        held.give_up()?;
        Ok(Process::create(lua, child)?)
    })?;
    super::add(lua, m, "run", |lua, a| {
        let opts = a.table(1)?;
        let mut held = Held::default();
        let child = build(lua, a, &opts, true, &mut held)?
            .spawn()
            .map_err(|e| spawn_err(a, e))?;
        held.give_up()?;
        let ud = Process::create(lua, child)?;
        let (t, out, err) = values::output(lua, &ud)?;
        t.set("stdout", out)?;
        t.set("stderr", err)?;
        Ok(t)
    })?;
    Ok(())
}
