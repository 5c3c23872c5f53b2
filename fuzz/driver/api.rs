//! The API fuzz driver: bytes in, a short program of calls to the whole Lua
//! API out, run in a fresh [`nsrun::Host`] under plan mode (the library side
//! of `--plan`), which records every state-changing operation instead of
//! performing it, so fuzzing never mounts, signals or unshares on the host.
//!
//! Shared, through `#[path]`, by the cargo-fuzz target
//! (`fuzz/fuzz_targets/api.rs`) and the stable test `tests/fuzz_api.rs`, so
//! `cargo test` runs the same code over the seed corpus and pseudo-random
//! inputs without nightly or libFuzzer.
//!
//! The calls: every `ns.*` and `ns.net.*` function, `ns.spawn`/`ns.run` and
//! `sandbox.run`/`spawn`/`options` with option tables whose keys are the
//! real ones (values mostly of a fitting shape, sometimes of any type, so
//! validation and what lies behind it are both reached), and the methods and
//! fields of the values earlier calls returned (processes, namespace
//! handles, cgroups). Each call goes through `pcall`; the allowed outcomes
//! are a result or an error whose message is a non-empty string. Anything
//! else is a [`Violation`]. A panic in nsrun is a crash under libFuzzer,
//! whose panic hook aborts; without it mlua hands the panic to `pcall` as a
//! userdata error, which fails the message check.
//!
//! After the program, the process must be as it was: same fds (no leak),
//! mount table, cwd, root, credentials, capabilities, umask, no_new_privs,
//! seccomp, rlimits, namespaces, cgroup, hostname, parent-death signal and
//! dumpable flag: plan mode must not have performed anything.
//!
//! Strings with random bytes never contain `/`: the read-only calls
//! (`read_file`, `readdir`, `open`) are performed for real even when
//! planning, and a random path could name a FIFO or `/dev/zero`, where
//! reading blocks or never ends just as Lua's own `io.open(p):read("a")`
//! would. Paths come from a fixed list instead.

#![allow(dead_code)] // the test and the fuzz target use different parts

use std::collections::BTreeMap;
use std::fmt::Write as _;

use nsrun::mlua::{self, Function, Lua, MultiValue, Table, Value};

/// At most this many calls per input: longer programs find little more and
/// slow every execution down.
const MAX_CALLS: usize = 48;
/// Values kept from earlier results, to pass on or call methods of.
const POOL: usize = 24;
/// How deep option tables nest.
const MAX_DEPTH: u32 = 3;

/// What one input did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Calls made.
    pub calls: usize,
    /// Calls that returned.
    pub ok: usize,
    /// Calls that raised an error with a message.
    pub err: usize,
    /// Per target (`ns.mount`, `sandbox.run`, `:wait`, …): (calls, returned).
    pub per_target: BTreeMap<String, (usize, usize)>,
    /// Operations the plan recorded.
    pub planned_ops: usize,
}

impl Report {
    /// Add another input's figures.
    pub fn add(&mut self, o: &Report) {
        self.calls += o.calls;
        self.ok += o.ok;
        self.err += o.err;
        self.planned_ops += o.planned_ops;
        for (k, (c, r)) in &o.per_target {
            let e = self.per_target.entry(k.clone()).or_default();
            e.0 += c;
            e.1 += r;
        }
    }
}

/// An outcome that is not allowed, with the calls that led to it.
#[derive(Debug)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------
// Bytes → choices. Past the end every choice is 0, so any input decodes.

struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => self.byte() as usize % n,
            _ => (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n,
        }
    }
    fn chance(&mut self, one_in: u8) -> bool {
        self.byte() % one_in == 0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| v << 8 | u64::from(self.byte()))
    }
    fn done(&self) -> bool {
        self.data.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Vocabulary.

const PATHS: &[&str] = &[
    "/",
    "/tmp",
    "/tmp/nsrun-fuzz",
    "/usr",
    "/usr/bin",
    "/etc",
    "/etc/hostname",
    "/proc",
    "/proc/self/ns/net",
    "/proc/self/ns/user",
    "/proc/self/ns/mnt",
    "/proc/self/ns/pid",
    "/proc/1/ns/uts",
    "/proc/self/mountinfo",
    "/proc/self/status",
    "/sys",
    "/sys/fs/cgroup",
    "/dev",
    "/dev/null",
    "/bin/true",
    "/bin/sh",
    "/oldroot",
    "/newroot",
    "/run/netns/fuzz",
    "/nonexistent/x",
    "/tmp/../..",
    "relative/path",
    ".",
    "..",
    "",
    "/tmp\0x",
    "//double//slash/",
    "/proc/2147483647/ns/net",
];

const WORDS: &[&str] = &[
    "user",
    "mount",
    "mnt",
    "pid",
    "uts",
    "ipc",
    "net",
    "cgroup",
    "time",
    "user,pid",
    "mount,uts,ipc",
    "user,mount,pid,uts,ipc,net,cgroup,time",
    "bogus",
    "a,b",
    ",,",
    "bind",
    "rec",
    "ro",
    "rec,private",
    "private",
    "slave",
    "shared",
    "unchanged",
    "nosuid,nodev,noexec",
    "detach",
    "lazy",
    "remount,ro,bind",
    "self",
    "root",
    "deny",
    "allow",
    "TERM",
    "KILL",
    "SIGUSR1",
    "0",
    "tmpfs",
    "proc",
    "sysfs",
    "overlay",
    "mode=0755",
    "size=1M",
    "0755",
    "1777",
    "0o644",
    "99999",
    "64M",
    "1G",
    "unlimited",
    "max",
    "lo",
    "eth0",
    "veth-fuzz",
    "a-very-long-interface-name",
    "10.0.0.1/24",
    "10.0.0.2",
    "fd00::1/64",
    "fd00::2",
    "0.0.0.0/0",
    "default",
    "300.1.1.1/99",
    "none",
    "host",
    "veth",
    "inherit",
    "null",
    "pipe",
    "a",
    "l",
    "L",
    "*a",
    "n",
    "net_bind_service",
    "sys_admin",
    "CAP_CHOWN",
    "all",
    "ptrace",
    "mount",
    "read",
    "errno",
    "kill",
    "log",
    "EPERM",
    "ENOSYS",
    "nofile",
    "as",
    "core",
    "nproc",
    "stack",
    "memory",
    "pids",
    "cpu",
    "cpu.weight",
    "memory.max",
    "fuzz-host",
    "\u{e9}t\u{e9}",
    "x\0y",
];

/// Every key an option table of the API knows, and a few it does not:
/// `ns.spawn`'s from nsrun itself (so a new option is fuzzed at once),
/// then these.
static KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    nsrun::SPAWN_OPTION_KEYS
        .iter()
        .chain(OTHER_KEYS)
        .copied()
        .collect()
});

const OTHER_KEYS: &[&str] = &[
    // nsrun.sandbox
    "root",
    "binds",
    "tmpfs",
    "proc",
    "dev",
    "mqueue",
    "sys",
    "dirs",
    "files",
    "symlinks",
    "chmod",
    "remount_ro",
    "overlay",
    "net",
    "namespaces_try",
    "chdir",
    "as_pid_1",
    "cap_add",
    "cap_drop",
    "unsetenv",
    // options of single functions
    "ro",
    "rec",
    "create",
    "nosuid",
    "nodev",
    "parents",
    "preserve_credentials",
    "size",
    "mode",
    "lower",
    "upper",
    "work",
    "tmpfs_upper",
    "file",
    "from",
    "source",
    "target",
    "fstype",
    "flags",
    "data",
    "peer_netns",
    "via",
    "memory",
    "pids",
    "cpu",
    "keep",
    "drop",
    "default",
    "allow",
    "deny",
    "errno",
    "action",
    "rw",
    "monotonic",
    "boottime",
    "content",
    "try",
    "dest",
    "path",
    // unknown ones, for the "did you mean" path
    "argvv",
    "namespace",
    "",
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    7,
    9,
    15,
    64,
    255,
    256,
    1000,
    0o755,
    0o7777,
    0o10000,
    65534,
    65535,
    65536,
    i32::MAX as i64,
    i32::MIN as i64,
    u32::MAX as i64,
    u32::MAX as i64 + 1,
    i64::MAX,
    i64::MIN,
];

const FLOATS: &[f64] = &[
    0.5,
    -0.5,
    1.0,
    1e-9,
    1e300,
    -1e300,
    9.3e18,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

/// The callbacks fuzzed calls may get (as `fn`, `setup`, `before_start`,
/// or any argument). They end quickly and raise only string errors: a
/// callback raising a message-less value would be the caller's doing.
const PRELUDE: &str = r#"
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local pcall, type, tostring, rawget = pcall, type, tostring, rawget

local function outcome(ok, ...)
  if ok then return "ok", ... end
  local e = ...
  local msg = e
  if type(e) == "table" then msg = rawget(e, "message") end
  if type(msg) ~= "string" or msg == "" then
    local shown_ok, shown = pcall(tostring, e)
    return "bad", "an error without a message: " .. type(e) .. " " .. (shown_ok and shown or "?")
  end
  return "err", msg
end

local function call(f, ...) return outcome(pcall(f, ...)) end
local function method(v, name, ...)
  return outcome(pcall(function(...) return v[name](v, ...) end, ...))
end
local function field(v, name) return outcome(pcall(function() return v[name] end)) end
local function show(v) return outcome(pcall(tostring, v)) end
local function same(a, b) return outcome(pcall(function() return a == b end)) end

local callbacks = {
  function() end,
  function() return 3 end,
  function() return true end,
  function() return false end,
  function() return { code = 4 } end,
  function() error("fuzz: raised by a callback") end,
  function() error("fuzz: raised by a callback", 0) end,
  function() return ns.getpid() end,
  function() ns.mount("proc", "/proc", "proc") end,
  function() ns.unshare("user,mount") return 0 end,
  function(p) if type(p) == "userdata" then return p.pid end end,
  function(p) if type(p) == "userdata" then p:kill("TERM") end end,
  function(p) if type(p) == "userdata" then return p:ns("net") end end,
}
-- Lua's pairs, not a raw walk: the module may make its functions on first
-- use and list them through __pairs.
-- ns.spawn_options only lists names: nothing to fuzz, and leaving it out
-- keeps the picks the seed corpus was made with. ns.fdopen and ns.channel
-- take over an fd the caller hands them (and close it), as
-- sandbox.from_bwrap does with bubblewrap's fd options: given random
-- numbers they would close this process's own fds, which is their
-- contract, not a bug to find. ns.recv_fds and ns.send_fds block until
-- the peer sends or reads, as documented: one input would wait forever.
local skip = { spawn_options = true, fdopen = true, channel = true, from_bwrap = true,
  recv_fds = true, send_fds = true }
local api = {}
local function add(prefix, t)
  for k, v in pairs(t) do
    if type(v) == "function" and not skip[k] then api[#api + 1] = { prefix .. k, v } end
  end
end
add("ns.", ns)
add("ns.net.", ns.net)
add("sandbox.", sandbox)
table.sort(api, function(a, b) return a[1] < b[1] end)
return api, call, method, field, show, same, callbacks
"#;

/// What a function's arguments are, to build fitting ones.
#[derive(Clone, Copy)]
enum Arg {
    Path,
    Kinds,
    Kind,
    KindOrPath,
    Pid,
    Target,
    Ranges,
    Mode,
    Opts,
    Func,
    Argv,
    Int,
    Ints,
    Signal,
    Name,
    Flags,
    FsType,
    Data,
    AllowDeny,
    Ifname,
    Cidr,
    RouteDest,
}

fn signature(name: &str) -> Option<&'static [Arg]> {
    use Arg::*;
    Some(match name {
        "ns.bind" => &[Path, Path, Opts],
        "ns.chdir" | "ns.chroot" | "ns.read_file" | "ns.readdir" | "ns.unpersist"
        | "ns.mount_proc" | "ns.mount_mqueue" => &[Path],
        "ns.chmod" => &[Path, Mode],
        "ns.clone" => &[Kinds, Func],
        "ns.exec" => &[Argv, Opts],
        "ns.fork" => &[Func],
        "ns.uid_map" | "ns.gid_map" => &[Pid, Ranges],
        "ns.id" => &[Kind, Pid],
        "ns.open" => &[KindOrPath, Pid],
        "ns.kill" => &[Pid, Signal],
        "ns.mkdir" => &[Path, Mode, Opts],
        "ns.mount" => &[Data, Path, FsType, Flags, Data],
        "ns.mount_dev" | "ns.mount_sysfs" | "ns.mount_point" | "ns.remount_ro" | "ns.tmpfs"
        | "ns.overlay" => &[Path, Opts],
        "ns.persist" => &[Kind, Pid, Path],
        "ns.pivot_root" | "ns.symlink" => &[Path, Path],
        "ns.setdomainname" | "ns.sethostname" => &[Name],
        "ns.setuid" | "ns.setgid" => &[Int],
        "ns.setgroups" => &[Pid, AllowDeny],
        "ns.setgroups_list" => &[Ints],
        "ns.setns" => &[Target, Kinds, Opts],
        "ns.umount" => &[Path, Flags],
        "ns.unshare" => &[Kinds],
        "ns.write_file" => &[Path, Data, Mode],
        "ns.cgroup" | "ns.spawn" | "ns.run" | "sandbox.run" | "sandbox.spawn"
        | "sandbox.options" => &[Opts],
        "ns.net.up" | "ns.net.down" | "ns.net.delete" => &[Ifname],
        "ns.net.veth" => &[Ifname, Ifname, Opts],
        "ns.net.move" => &[Ifname, Target],
        "ns.net.addr" => &[Ifname, Cidr],
        "ns.net.route" => &[RouteDest, Opts],
        _ => return None,
    })
}

const METHODS: &[&str] = &[
    "wait",
    "try_wait",
    "kill",
    "ns",
    "output",
    "cgroup_stats",
    "close",
    "enter",
    "add",
    "set",
    "stats",
    "pids",
    "read",
    "write",
];

const FIELDS: &[&str] = &[
    "pid", "stdin", "stdout", "stderr", "kind", "inode", "fd", "path", "name", "paths", "code",
    "signal", "success", "stdout",
];

// ---------------------------------------------------------------------------
// The program.

/// Makes one value and how to show it.
type Make<D> = fn(&mut D) -> mlua::Result<(Value, String)>;

struct Driver<'a> {
    lua: &'a Lua,
    b: Bytes<'a>,
    /// (name, function) of every API function, sorted by name.
    api: Vec<(String, Function)>,
    callbacks: Vec<Function>,
    call: Function,
    method: Function,
    field: Function,
    show: Function,
    same: Function,
    /// Earlier results and how they were shown.
    pool: Vec<(Value, String)>,
    next_slot: usize,
    trace: String,
    report: Report,
}

fn quote(s: &[u8]) -> String {
    let mut o = String::from("\"");
    for &c in s.iter().take(48) {
        match c {
            b'"' | b'\\' => {
                o.push('\\');
                o.push(c as char);
            }
            0x20..=0x7e => o.push(c as char),
            _ => {
                let _ = write!(o, "\\{c}");
            }
        }
    }
    if s.len() > 48 {
        let _ = write!(o, "...({} bytes)", s.len());
    }
    o.push('"');
    o
}

impl<'a> Driver<'a> {
    fn string(&self, s: &[u8]) -> mlua::Result<(Value, String)> {
        Ok((Value::String(self.lua.create_string(s)?), quote(s)))
    }

    fn path(&mut self) -> mlua::Result<(Value, String)> {
        let p = self.b.pick(PATHS);
        if self.b.chance(16) {
            // Past NAME_MAX and PATH_MAX in one name, or deep. (Not both:
            // `mkdir{parents}` of 2000 levels plans 2000 mkdirs of 4 KiB
            // paths, which only slows fuzzing down.)
            let long = if self.b.chance(2) {
                format!("/tmp/{}", "x".repeat(5000))
            } else {
                format!("/tmp/{}", "d/".repeat(40))
            };
            return self.string(long.as_bytes());
        }
        self.string(p.as_bytes())
    }

    fn random_string(&mut self) -> mlua::Result<(Value, String)> {
        let n = self.b.below(24);
        let s: Vec<u8> = (0..n)
            .map(|_| match self.b.byte() {
                b'/' => b'_',
                c => c,
            })
            .collect();
        self.string(&s)
    }

    fn function(&mut self) -> (Value, String) {
        if self.b.chance(3) {
            let i = self.b.below(self.api.len());
            let (name, f) = &self.api[i];
            return (Value::Function(f.clone()), name.clone());
        }
        let i = self.b.below(self.callbacks.len());
        (
            Value::Function(self.callbacks[i].clone()),
            format!("callback{i}"),
        )
    }

    fn pooled(&mut self) -> Option<(Value, String)> {
        if self.pool.is_empty() {
            return None;
        }
        let i = self.b.below(self.pool.len());
        Some(self.pool[i].clone())
    }

    /// Any value at all.
    /// `n` more arbitrary arguments, and how each is shown.
    fn push_values(
        &mut self,
        n: usize,
        depth: u32,
        args: &mut Vec<Value>,
        shown: &mut Vec<String>,
    ) -> mlua::Result<()> {
        for _ in 0..n {
            let (v, s) = self.value(depth)?;
            args.push(v);
            shown.push(s);
        }
        Ok(())
    }

    fn value(&mut self, depth: u32) -> mlua::Result<(Value, String)> {
        let kinds = if depth >= MAX_DEPTH { 10 } else { 13 };
        Ok(match self.b.below(kinds) {
            0 => (Value::Nil, "nil".into()),
            1 => {
                let v = self.b.chance(2);
                (Value::Boolean(v), v.to_string())
            }
            2 => {
                let v = i64::from(self.b.byte()) - 8;
                (Value::Integer(v), v.to_string())
            }
            3 => {
                let v = self.b.pick(INTS);
                (Value::Integer(v), v.to_string())
            }
            4 => {
                let v = self.b.u64() as i64;
                (Value::Integer(v), v.to_string())
            }
            5 => {
                let v = if self.b.chance(4) {
                    f64::from_bits(self.b.u64())
                } else {
                    self.b.pick(FLOATS)
                };
                (Value::Number(v), format!("{v:?}"))
            }
            6 | 7 => {
                let w = self.b.pick(WORDS);
                self.string(w.as_bytes())?
            }
            8 => self.path()?,
            9 => match self.pooled() {
                Some(v) => v,
                None => self.random_string()?,
            },
            10 => self.random_string()?,
            11 => self.function(),
            _ => self.table(depth + 1)?,
        })
    }

    /// A table: a list part and keys from [`KEYS`] with values that mostly
    /// fit the key.
    fn table(&mut self, depth: u32) -> mlua::Result<(Value, String)> {
        let t = self.lua.create_table()?;
        let mut shown = Vec::new();
        for i in 1..=self.b.below(4) {
            let (v, s) = self.value(depth)?;
            t.raw_set(i, v)?;
            shown.push(s);
        }
        for _ in 0..self.b.below(6) {
            let k = self.b.pick(&KEYS);
            let (v, s) = self.keyed(k, depth)?;
            t.raw_set(k, v)?;
            shown.push(format!("[{}] = {s}", quote(k.as_bytes())));
        }
        Ok((Value::Table(t), format!("{{{}}}", shown.join(", "))))
    }

    fn list<F>(&mut self, max: usize, mut item: F) -> mlua::Result<(Value, String)>
    where
        F: FnMut(&mut Self) -> mlua::Result<(Value, String)>,
    {
        let t = self.lua.create_table()?;
        let mut shown = Vec::new();
        for i in 1..=self.b.below(max + 1) {
            let (v, s) = item(self)?;
            t.raw_set(i, v)?;
            shown.push(s);
        }
        Ok((Value::Table(t), format!("{{{}}}", shown.join(", "))))
    }

    fn record<const N: usize>(
        &mut self,
        fields: [(&str, Make<Self>); N],
    ) -> mlua::Result<(Value, String)> {
        let t = self.lua.create_table()?;
        let mut shown = Vec::new();
        for (k, f) in fields {
            if self.b.chance(2) {
                let (v, s) = f(self)?;
                t.raw_set(k, v)?;
                shown.push(format!("{k} = {s}"));
            }
        }
        Ok((Value::Table(t), format!("{{{}}}", shown.join(", "))))
    }

    /// A table of up to two entries under keys picked from `keys` (a key
    /// may come twice: the later value stays).
    fn picked(&mut self, keys: &[&str], value: Make<Self>) -> mlua::Result<(Value, String)> {
        let t = self.lua.create_table()?;
        let mut shown = Vec::new();
        for _ in 0..self.b.below(3) {
            let k = self.b.pick(keys);
            let (v, s) = value(self)?;
            t.raw_set(k, v)?;
            shown.push(format!("{k} = {s}"));
        }
        Ok((Value::Table(t), format!("{{{}}}", shown.join(", "))))
    }

    fn word_of(&mut self, words: &[&str]) -> mlua::Result<(Value, String)> {
        let w = self.b.pick(words);
        self.string(w.as_bytes())
    }

    fn int_of(&mut self, ints: &[i64]) -> (Value, String) {
        let v = self.b.pick(ints);
        (Value::Integer(v), v.to_string())
    }

    fn boolean(&mut self) -> (Value, String) {
        let v = self.b.chance(2);
        (Value::Boolean(v), v.to_string())
    }

    fn kinds(&mut self) -> mlua::Result<(Value, String)> {
        const KINDS: &[&str] = &[
            "user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time",
        ];
        if self.b.chance(2) {
            self.word_of(&[
                "user,mount",
                "user,mount,pid",
                "mount,pid,uts,ipc",
                "user,mount,pid,uts,ipc,net,cgroup,time",
                "net",
                "time,user",
                "",
                "mount,bogus",
            ])
        } else {
            self.list(4, |d| d.word_of(KINDS))
        }
    }

    fn target(&mut self) -> mlua::Result<(Value, String)> {
        match self.b.below(4) {
            0 => Ok(self.int_of(&[1, 2, i32::MAX as i64, -5, 0])),
            1 => self.path(),
            _ => match self.pooled() {
                Some(v) => Ok(v),
                None => self.path(),
            },
        }
    }

    fn size(&mut self) -> mlua::Result<(Value, String)> {
        if self.b.chance(2) {
            self.word_of(&[
                "64M",
                "1G",
                "512k",
                "unlimited",
                "max",
                "1.5G",
                "-1",
                "huge",
            ])
        } else {
            Ok(self.int_of(&[0, 1, 4096, 1 << 20, i64::MAX, -1]))
        }
    }

    fn mode(&mut self) -> mlua::Result<(Value, String)> {
        if self.b.chance(2) {
            self.word_of(&["0755", "1777", "0o600", "8", "", "77777"])
        } else {
            Ok(self.int_of(&[0o755, 0o4755, 0o10000, -1]))
        }
    }

    /// A value for option `key`: usually of the shape the API takes there,
    /// one time in four any value, so type checks are reached too.
    fn keyed(&mut self, key: &str, depth: u32) -> mlua::Result<(Value, String)> {
        if depth >= MAX_DEPTH || self.b.chance(4) {
            return self.value(depth + 1);
        }
        let d = depth + 1;
        match key {
            "argv" => self.list(3, |s| {
                s.word_of(&[
                    "/bin/true",
                    "/bin/sh",
                    "-c",
                    "exit 3",
                    "true",
                    "/nonexistent",
                    "",
                ])
            }),
            "fn" | "setup" | "before_start" => Ok(self.function()),
            "namespaces" | "namespaces_try" => self.kinds(),
            "join" => self.picked(&["net", "user", "mount", "pid", "uts", "bogus"], |s| {
                s.target()
            }),
            "uid_map" | "gid_map" => match self.b.below(3) {
                0 => self.word_of(&["root", "self", "other"]),
                _ => self.list(2, |s| {
                    s.list(3, |s| Ok(s.int_of(&[0, 1, 1000, 65534, 100000, 65536, -1])))
                }),
            },
            "uid" | "gid" => Ok(self.int_of(&[0, 1, 1000, 65534, -1, u32::MAX as i64 + 1])),
            "groups" | "keep_fds" => self.list(3, |s| Ok(s.int_of(&[0, 1, 2, 3, 100, 65534, -1]))),
            "setgroups" => self.word_of(&["allow", "deny", "maybe"]),
            "hostname" | "domainname" | "argv0" => self.word_of(&[
                "fuzz-host",
                "",
                "a-name-longer-than-sixty-four-characters-which-the-kernel-refuses-xx",
                "x\0y",
            ]),
            "time_offsets" => self.record([
                ("monotonic", |s: &mut Self| {
                    Ok(s.int_of(&[0, 10, -10, i64::MAX]))
                }),
                ("boottime", |s: &mut Self| {
                    Ok(s.int_of(&[0, 86400, i64::MIN]))
                }),
            ]),
            "env" => {
                let t = self.lua.create_table()?;
                let mut shown = Vec::new();
                for _ in 0..self.b.below(3) {
                    let k = self.b.pick(&["PATH", "HOME", "A", "", "B=C"]);
                    let (v, s) = match self.b.below(3) {
                        0 => (Value::Boolean(false), "false".into()),
                        _ => self.word_of(&["/usr/bin", "x", ""])?,
                    };
                    t.raw_set(k, v)?;
                    shown.push(format!("{k} = {s}"));
                }
                Ok((Value::Table(t), format!("{{{}}}", shown.join(", "))))
            }
            "stdin" | "stdout" | "stderr" => match self.b.below(3) {
                0 => Ok(self.int_of(&[0, 1, 2, 99, -1])),
                1 => self.path(),
                _ => self.word_of(&["null", "pipe", "inherit", ""]),
            },
            "clear_env"
            | "init"
            | "die_with_parent"
            | "new_session"
            | "no_new_privs"
            | "disable_userns"
            | "as_pid_1"
            | "rec"
            | "create"
            | "nosuid"
            | "nodev"
            | "parents"
            | "preserve_credentials"
            | "tmpfs_upper"
            | "file"
            | "try" => Ok(self.boolean()),
            "timeout" => {
                let v = self.b.pick(&[0.001, 1.0, 30.0, 0.0, -1.0, f64::NAN, 1e30]);
                Ok((Value::Number(v), format!("{v:?}")))
            }
            "propagation" => self.word_of(&["private", "slave", "shared", "unchanged", "rprivate"]),
            "caps" => match self.b.below(3) {
                0 => self.record([("keep", |s: &mut Self| s.caps())]),
                1 => self.record([("drop", |s: &mut Self| s.caps())]),
                _ => self.record([
                    ("keep", |s: &mut Self| s.caps()),
                    ("drop", |s: &mut Self| s.caps()),
                ]),
            },
            "cap_add" | "cap_drop" | "keep" | "drop" => self.caps(),
            "seccomp" => {
                if self.b.chance(3) {
                    self.word_of(&["default", "strict"])
                } else {
                    self.record([
                        ("default", |s: &mut Self| {
                            s.word_of(&["allow", "errno", "kill", "log", "deny"])
                        }),
                        ("action", |s: &mut Self| {
                            s.word_of(&["allow", "errno", "kill", "log"])
                        }),
                        ("deny", |s: &mut Self| s.syscalls()),
                        ("allow", |s: &mut Self| s.syscalls()),
                        ("errno", |s: &mut Self| {
                            s.word_of(&["EPERM", "ENOSYS", "1", "EBOGUS", "4096"])
                        }),
                    ])
                }
            }
            "rlimits" => {
                self.picked(
                    &["nofile", "as", "core", "nproc", "NOFILE", "bogus"],
                    |s| match s.b.chance(3) {
                        true => s.list(3, |s| s.size()),
                        false => s.size(),
                    },
                )
            }
            "cgroup" => self.record([
                ("memory", |s: &mut Self| s.size()),
                ("pids", |s: &mut Self| s.size()),
                ("cpu", |s: &mut Self| {
                    let v = s.b.pick(&[0.5, 2.0, 0.0, -1.0, f64::INFINITY]);
                    Ok((Value::Number(v), format!("{v:?}")))
                }),
            ]),
            "memory" | "pids" | "size" => self.size(),
            "cpu" => {
                let v = self.b.pick(&[0.5, 2.0, 0.0, -1.0, f64::INFINITY]);
                Ok((Value::Number(v), format!("{v:?}")))
            }
            "landlock" => self.record([
                ("ro", |s: &mut Self| s.list(3, |s| s.path())),
                ("rw", |s: &mut Self| s.list(3, |s| s.path())),
            ]),
            "binds" => self.list(3, |s| {
                let (t, shown) = s.record([
                    ("ro", |s: &mut Self| Ok(s.boolean())),
                    ("dev", |s: &mut Self| Ok(s.boolean())),
                    ("try", |s: &mut Self| Ok(s.boolean())),
                ])?;
                let Value::Table(t) = t else { unreachable!() };
                let (src, a) = s.path()?;
                let (dst, b) = s.path()?;
                t.raw_set(1, src)?;
                t.raw_set(2, dst)?;
                Ok((Value::Table(t), format!("{{{a}, {b}, {shown}}}")))
            }),
            "tmpfs" | "dirs" if self.b.chance(2) => self.list(3, |s| {
                if s.b.chance(2) {
                    s.path()
                } else {
                    let (t, shown) = s.record([
                        ("size", |s: &mut Self| s.size()),
                        ("mode", |s: &mut Self| s.mode()),
                    ])?;
                    let Value::Table(t) = t else { unreachable!() };
                    let (p, ps) = s.path()?;
                    t.raw_set(1, p)?;
                    Ok((Value::Table(t), format!("{{{ps}, {shown}}}")))
                }
            }),
            "files" | "symlinks" | "chmod" => {
                let t = self.lua.create_table()?;
                let mut shown = Vec::new();
                for _ in 0..self.b.below(3) {
                    let (k, ks) = self.path()?;
                    let (v, vs) = match key {
                        "files" if self.b.chance(2) => self.record([
                            ("content", |s: &mut Self| s.word_of(&["hello\n", ""])),
                            ("mode", |s: &mut Self| s.mode()),
                        ])?,
                        "chmod" => self.mode()?,
                        _ => self.path()?,
                    };
                    if !k.is_nil() {
                        t.raw_set(k, v)?;
                    }
                    shown.push(format!("[{ks}] = {vs}"));
                }
                Ok((Value::Table(t), format!("{{{}}}", shown.join(", "))))
            }
            "overlay" => self.list(2, |s| {
                let (t, shown) = s.record([
                    ("lower", |s: &mut Self| s.list(3, |s| s.path())),
                    ("upper", |s: &mut Self| s.path()),
                    ("work", |s: &mut Self| s.path()),
                    ("tmpfs", |s: &mut Self| Ok(s.boolean())),
                ])?;
                let Value::Table(t) = t else { unreachable!() };
                let (p, ps) = s.path()?;
                t.raw_set(1, p)?;
                Ok((Value::Table(t), format!("{{{ps}, {shown}}}")))
            }),
            "remount_ro" | "lower" | "ro" | "rw" | "dirs" | "unsetenv" | "tmpfs" => {
                if self.b.chance(2) {
                    self.path()
                } else {
                    self.list(3, |s| s.path())
                }
            }
            "net" => self.word_of(&["none", "host", "veth", "bridge"]),
            "mode" => self.mode(),
            "flags" => self.word_of(&["rec,private", "bind", "ro,remount,bind", "bogus", ""]),
            "fstype" => self.word_of(&["tmpfs", "proc", "sysfs", "overlay", "nofs"]),
            "data" | "content" => self.word_of(&["mode=0755", "size=1M", "", "x\0y"]),
            "peer_netns" => self.target(),
            "via" => self.word_of(&["10.0.0.1", "fd00::1", "not-an-address"]),
            "errno" => self.word_of(&["EPERM", "ENOSYS", "1", "EBOGUS"]),
            "action" | "default" => self.word_of(&["allow", "errno", "kill", "log", "bogus"]),
            "allow" | "deny" => self.syscalls(),
            "monotonic" | "boottime" => Ok(self.int_of(&[0, 10, -10, i64::MAX])),
            "mount_proc" if self.b.chance(2) => Ok(self.boolean()),
            "root" | "proc" | "dev" | "mqueue" | "sys" | "chdir" | "cwd" | "upper" | "work"
            | "mount_proc" | "from" | "source" | "target" | "dest" | "path" => self.path(),
            _ => self.value(d),
        }
    }

    fn arg(&mut self, arg: Arg) -> mlua::Result<(Value, String)> {
        const KINDS: &[&str] = &[
            "user", "mount", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time", "bogus",
        ];
        match arg {
            Arg::Path => self.path(),
            Arg::Kinds => self.kinds(),
            Arg::Kind => self.word_of(KINDS),
            Arg::KindOrPath if self.b.chance(2) => self.word_of(KINDS),
            Arg::KindOrPath => self.path(),
            Arg::Pid => match self.b.below(3) {
                0 => self.word_of(&["self", "1", "other"]),
                1 => Ok(self.int_of(&[1, 2, i32::MAX as i64, 0, -1, u32::MAX as i64])),
                _ => match self.pooled() {
                    Some(v) => Ok(v),
                    None => Ok((Value::Nil, "nil".into())),
                },
            },
            Arg::Target => self.target(),
            Arg::Ranges => self.keyed("uid_map", 1),
            Arg::Mode => self.mode(),
            Arg::Opts => self.table(0),
            Arg::Func => Ok(self.function()),
            Arg::Argv => self.keyed("argv", 1),
            Arg::Int => Ok(self.int_of(&[0, 1, 1000, 65534, -1, u32::MAX as i64])),
            Arg::Ints => self.keyed("groups", 1),
            Arg::Signal => {
                if self.b.chance(2) {
                    self.word_of(&["TERM", "KILL", "SIGUSR1", "usr2", "0", "BOGUS", ""])
                } else {
                    Ok(self.int_of(&[0, 9, 15, 64, 65, -1]))
                }
            }
            Arg::Name => self.keyed("hostname", 1),
            Arg::Flags => self.keyed("flags", 1),
            Arg::FsType => self.keyed("fstype", 1),
            Arg::Data => match self.b.below(3) {
                0 => Ok((Value::Nil, "nil".into())),
                1 => self.path(),
                _ => self.keyed("data", 1),
            },
            Arg::AllowDeny => self.word_of(&["allow", "deny", "maybe"]),
            Arg::Ifname => self.word_of(&[
                "lo",
                "eth0",
                "veth-fuzz",
                "a-very-long-interface-name",
                "",
                "x y",
            ]),
            Arg::Cidr => self.word_of(&[
                "10.0.0.1/24",
                "fd00::1/64",
                "10.0.0.1",
                "10.0.0.1/33",
                "fd00::1/129",
                "300.1.1.1/8",
                "",
            ]),
            Arg::RouteDest => self.word_of(&["default", "10.1.0.0/16", "fd01::/48", "bogus"]),
        }
    }

    fn caps(&mut self) -> mlua::Result<(Value, String)> {
        const CAPS: &[&str] = &[
            "net_bind_service",
            "CAP_SYS_ADMIN",
            "chown",
            "all",
            "cap_bogus",
            "",
        ];
        if self.b.chance(3) {
            self.word_of(&["chown,net_raw", "all", ""])
        } else {
            self.list(3, |s| s.word_of(CAPS))
        }
    }

    fn syscalls(&mut self) -> mlua::Result<(Value, String)> {
        const CALLS: &[&str] = &[
            "ptrace",
            "mount",
            "read",
            "write",
            "@mount",
            "bogus_call",
            "",
        ];
        if self.b.chance(3) {
            self.word_of(&["ptrace,mount", "read"])
        } else {
            self.list(3, |s| s.word_of(CALLS))
        }
    }

    /// Run one call through a pcall wrapper and judge its outcome.
    fn judge(
        &mut self,
        target: &str,
        shown: &str,
        wrapper: &Function,
        args: MultiValue,
    ) -> Result<(), Violation> {
        self.report.calls += 1;
        let _ = writeln!(self.trace, "{:>3}. {shown}", self.report.calls);
        let mut out = wrapper
            .call::<MultiValue>(args)
            .map_err(|e| self.violation(&format!("the call itself failed outside Lua: {e}")))?;
        let kind = match out.pop_front() {
            Some(Value::String(s)) => s.to_string_lossy(),
            other => return Err(self.violation(&format!("no outcome from the wrapper: {other:?}"))),
        };
        let entry = self
            .report
            .per_target
            .entry(target.to_string())
            .or_default();
        entry.0 += 1;
        match kind.as_str() {
            "ok" => {
                entry.1 += 1;
                self.report.ok += 1;
                for v in out {
                    if !v.is_nil() {
                        let shown = format!("<result of call {}>", self.report.calls);
                        if self.pool.len() < POOL {
                            self.pool.push((v, shown));
                        } else {
                            self.pool[self.next_slot % POOL] = (v, shown);
                            self.next_slot += 1;
                        }
                    }
                }
                Ok(())
            }
            "err" => {
                self.report.err += 1;
                let msg = match out.front() {
                    Some(Value::String(s)) => s.to_string_lossy(),
                    _ => String::new(),
                };
                if msg.contains("panicked") {
                    return Err(self.violation(&format!("a panic surfaced as an error: {msg}")));
                }
                Ok(())
            }
            _ => {
                let msg = match out.front() {
                    Some(Value::String(s)) => s.to_string_lossy(),
                    other => format!("{other:?}"),
                };
                Err(self.violation(&msg))
            }
        }
    }

    fn violation(&self, what: &str) -> Violation {
        Violation(format!("{what}\nthe calls:\n{}", self.trace))
    }

    fn step(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        match self.b.below(10) {
            // Any API function with any arguments.
            0..=3 => {
                let i = self.b.below(self.api.len());
                let (name, f) = self.api[i].clone();
                let mut args = vec![Value::Function(f)];
                let mut shown = Vec::new();
                match signature(&name) {
                    // Mostly the arguments the function takes, so calls get
                    // past the first check; sometimes fewer, or any value.
                    Some(sig) if !self.b.chance(4) => {
                        let n = if self.b.chance(8) {
                            self.b.below(sig.len() + 1)
                        } else {
                            sig.len()
                        };
                        for arg in &sig[..n] {
                            let (v, s) = if self.b.chance(8) {
                                self.value(0)?
                            } else {
                                self.arg(*arg)?
                            };
                            args.push(v);
                            shown.push(s);
                        }
                    }
                    _ => {
                        let n = self.b.below(5);
                        self.push_values(n, 0, &mut args, &mut shown)?;
                    }
                }
                let call = self.call.clone();
                let text = format!("{name}({})", shown.join(", "));
                self.judge(&name, &text, &call, MultiValue::from_vec(args))?;
            }
            // The starters, with an option table built from their keys.
            4..=6 => {
                const STARTERS: &[&str] = &[
                    "ns.spawn",
                    "ns.run",
                    "sandbox.run",
                    "sandbox.spawn",
                    "sandbox.options",
                ];
                let name = self.b.pick(STARTERS);
                let f = self
                    .api
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, f)| f.clone())
                    .ok_or("a starter is missing from the API")?;
                let (opts, mut shown) = self.table(0)?;
                if let Value::Table(t) = &opts {
                    // Most starts need a program or a function.
                    if self.b.byte() % 4 != 0 && t.raw_get::<Value>("argv")?.is_nil() {
                        let (v, s) = if self.b.chance(2) {
                            self.keyed("argv", 1)?
                        } else {
                            self.function()
                        };
                        let k = if matches!(v, Value::Function(_)) {
                            "fn"
                        } else {
                            "argv"
                        };
                        t.raw_set(k, v)?;
                        // The table is shown as made, with this key last.
                        shown = format!("{shown} + {{{k} = {s}}}");
                    }
                }
                let call = self.call.clone();
                let text = format!("{name}({shown})");
                self.judge(
                    name,
                    &text,
                    &call,
                    MultiValue::from_vec(vec![Value::Function(f), opts]),
                )?;
            }
            // A method of an earlier result.
            7 | 8 => {
                let Some((v, vs)) = self.pooled() else {
                    return Ok(());
                };
                let m = self.b.pick(METHODS);
                let mut args = vec![v, Value::String(self.lua.create_string(m)?)];
                let mut shown = Vec::new();
                let n = self.b.below(3);
                self.push_values(n, 1, &mut args, &mut shown)?;
                let method = self.method.clone();
                let text = format!("{vs}:{m}({})", shown.join(", "));
                self.judge(&format!(":{m}"), &text, &method, MultiValue::from_vec(args))?;
            }
            // A field, the string form, or equality of earlier results.
            _ => {
                let Some((v, vs)) = self.pooled() else {
                    return Ok(());
                };
                match self.b.below(3) {
                    0 => {
                        let f = self.b.pick(FIELDS);
                        let k = Value::String(self.lua.create_string(f)?);
                        let field = self.field.clone();
                        self.judge(
                            &format!(".{f}"),
                            &format!("{vs}.{f}"),
                            &field,
                            MultiValue::from_vec(vec![v, k]),
                        )?;
                    }
                    1 => {
                        let show = self.show.clone();
                        self.judge(
                            "tostring",
                            &format!("tostring({vs})"),
                            &show,
                            MultiValue::from_vec(vec![v]),
                        )?;
                    }
                    _ => {
                        let (w, ws) = self.pooled().unwrap_or((Value::Nil, "nil".into()));
                        let same = self.same.clone();
                        self.judge(
                            "==",
                            &format!("{vs} == {ws}"),
                            &same,
                            MultiValue::from_vec(vec![v, w]),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Build the driver's view of a fresh host: the API's functions, the
/// wrappers and the callbacks.
fn driver<'a>(lua: &'a Lua, data: &'a [u8]) -> mlua::Result<Driver<'a>> {
    let (list, call, method, field, show, same, callbacks): (
        Table,
        Function,
        Function,
        Function,
        Function,
        Function,
        Table,
    ) = lua.load(PRELUDE).set_name("=fuzz").call(())?;
    let api = list
        .sequence_values::<Table>()
        .map(|e| {
            let e = e?;
            Ok((e.get::<String>(1)?, e.get::<Function>(2)?))
        })
        .collect::<mlua::Result<Vec<(String, Function)>>>()?;
    Ok(Driver {
        lua,
        b: Bytes { data },
        api,
        callbacks: callbacks
            .sequence_values::<Function>()
            .collect::<mlua::Result<_>>()?,
        call,
        method,
        field,
        show,
        same,
        pool: Vec::new(),
        next_slot: 0,
        trace: String::new(),
        report: Report::default(),
    })
}

/// The names of every function the driver can call, as it names them
/// (`ns.mount`, `ns.net.up`, `sandbox.run`), from a fresh host.
pub fn targets() -> Vec<String> {
    let host = nsrun::Host::new().expect("a host");
    let d = driver(host.lua(), &[]).expect("the fuzz prelude loads");
    d.api.iter().map(|(n, _)| n.clone()).collect()
}

// ---------------------------------------------------------------------------
// The process state plan mode must leave as it was.

#[derive(Debug, PartialEq, Eq)]
struct Snapshot(Vec<(&'static str, String)>);

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
}

/// The mount table is the machine's: other programs mount and unmount
/// meanwhile (tests of another checkout, systemd), which would show up as
/// changes. As root, this thread gets a private copy (a mount namespace of
/// its own, propagation cut both ways), so the check sees only what is done
/// here and nothing done here could reach the host. Unprivileged, the
/// shared table is compared as it is.
fn private_mount_table() {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if DONE.with(|d| d.replace(true)) {
        return;
    }
    // SAFETY: geteuid has no preconditions; unshare and mount take valid
    // flags and C strings. A thread may unshare its mount namespace (it
    // implies CLONE_FS, which a thread may unshare too).
    unsafe {
        if libc::geteuid() != 0 {
            return;
        }
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        );
        let root = c"/";
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "making / private: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn snapshot() -> Snapshot {
    let mut v = Vec::new();
    let fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            let mut names: Vec<String> = d
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        })
        .unwrap_or_default();
    // read_dir's own fd shows up in the listing; it is the same every time.
    v.push(("open fds", fds.join(" ")));
    v.push(("mount table", read("/proc/thread-self/mountinfo")));
    v.push((
        "cwd",
        format!("{:?}", std::env::current_dir().map_err(|e| e.to_string())),
    ));
    v.push((
        "root",
        format!("{:?}", std::fs::read_link("/proc/thread-self/root").ok()),
    ));
    let status = read("/proc/thread-self/status");
    let keep = [
        "Umask",
        "Uid",
        "Gid",
        "Groups",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ];
    let creds: Vec<&str> = status
        .lines()
        .filter(|l| keep.iter().any(|k| l.starts_with(&format!("{k}:"))))
        .collect();
    v.push(("credentials, umask, seccomp", creds.join("\n")));
    v.push(("rlimits", read("/proc/self/limits")));
    v.push(("cgroup", read("/proc/thread-self/cgroup")));
    v.push(("hostname", read("/proc/sys/kernel/hostname")));
    v.push(("domainname", read("/proc/sys/kernel/domainname")));
    let mut nss = Vec::new();
    for k in ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time"] {
        nss.push(format!(
            "{k}:{:?}",
            std::fs::read_link(format!("/proc/thread-self/ns/{k}")).ok()
        ));
    }
    v.push(("namespaces", nss.join(" ")));
    v.push(("parent-death signal", pdeathsig().to_string()));
    // SAFETY: PR_GET_DUMPABLE takes no pointer.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    v.push(("dumpable", dumpable.to_string()));
    Snapshot(v)
}

fn pdeathsig() -> libc::c_int {
    let mut sig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer.
    unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut sig as *mut libc::c_int) };
    sig
}

fn differences(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = String::new();
    for ((k, a), (_, b)) in before.0.iter().zip(&after.0) {
        if a == b {
            continue;
        }
        let _ = writeln!(out, "{k} changed:");
        if a.lines().count() > 1 || b.lines().count() > 1 {
            for l in a.lines().filter(|l| !b.lines().any(|m| m == *l)) {
                let _ = writeln!(out, "  - {l}");
            }
            for l in b.lines().filter(|l| !a.lines().any(|m| m == *l)) {
                let _ = writeln!(out, "  + {l}");
            }
        } else {
            let _ = writeln!(out, "  before: {a:?}\n  after:  {b:?}");
        }
    }
    out
}

/// Decode `data` into calls and run them on a fresh host in plan mode.
/// Panics from nsrun propagate to the caller.
pub fn run(data: &[u8]) -> Result<Report, Violation> {
    private_mount_table();
    let before = snapshot();
    nsrun::sys::ops::plan_begin();
    let result = run_planned(data);
    let steps = nsrun::sys::ops::plan_end();
    let mut report = result?;
    report.planned_ops = steps.len();
    if let Some(s) = steps.iter().find(|s| s.call.is_empty()) {
        return Err(Violation(format!("a planned step without a call: {s:?}")));
    }
    let after = snapshot();
    if after != before {
        return Err(Violation(format!(
            "plan mode changed this process:\n{}",
            differences(&before, &after)
        )));
    }
    Ok(report)
}

fn run_planned(data: &[u8]) -> Result<Report, Violation> {
    let host = nsrun::Host::new().map_err(|e| Violation(format!("Host::new: {e}")))?;
    let mut d = driver(host.lua(), data).map_err(|e| Violation(format!("the prelude: {e}")))?;
    while !d.b.done() && d.report.calls < MAX_CALLS {
        if let Err(e) = d.step() {
            let msg = e.to_string();
            return Err(match e.downcast::<Violation>() {
                Ok(v) => *v,
                Err(_) => d.violation(&format!("the driver failed: {msg}")),
            });
        }
    }
    let report = std::mem::take(&mut d.report);
    // Values that clean up when collected (cgroups, handles) go while still
    // planning, as with `nsrun --plan`.
    drop(d);
    drop(host);
    Ok(report)
}

impl std::error::Error for Violation {}
