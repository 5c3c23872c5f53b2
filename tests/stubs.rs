//! `lua/types/nsrun.lua`, the LuaLS stubs of `require "nsrun"`, must
//! describe the module the bindings actually register, both ways: nothing
//! registered in Rust may be missing from the stubs, and nothing declared
//! in the stubs may be missing from Rust.
//!
//! What is compared (the stub file's header gives its line conventions):
//!
//! - module functions and values: the keys of `require "nsrun"` in the
//!   built `nsrun` binary (`nsrun -e`) against `function ns.NAME(` and
//!   `ns.NAME =` lines;
//! - methods and fields of the userdata types Process, Pipe, NsHandle,
//!   Cgroup and Root
//!   against `function Process:NAME(` and the `---@field` lines of their
//!   `---@class`. mlua protects userdata metatables (`getmetatable` gives
//!   `false`), so Lua code in the binary cannot list them: the test builds
//!   the same module in-process (`nsrun::Host`), opens Lua's `debug`
//!   library into it and reads the method and field-getter tables behind
//!   each type's `__index`. The binary is then asked whether every declared
//!   method and field is really there on a live value;
//! - the keys of the options tables (ns.spawn/ns.run's `KEYS`, bind, mkdir,
//!   exec, the table form of mount, `time_offsets`, `caps`, `seccomp`,
//!   `cgroup`, `landlock` and ns.cgroup's), taken from the
//!   "unknown option ...; known: ..." error each function raises, against
//!   the `---@field`s of nsrun.SpawnOpts, nsrun.BindOpts, ...;
//! - the keys of an `ns.run` status and of a system-call error value
//!   against nsrun.Status and nsrun.Error.
//!
//! A second test checks that every stub function and method is documented
//! (a description and a `---@param` per argument), and a third that the
//! stubs, `examples/*.lua` and `tests/recipes/*.lua` compile
//! (`nsrun --check`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use nsrun::mlua::{self, Function, Table};

/// The stub file, relative to the repository root.
const STUBS: &str = "lua/types/nsrun.lua";

/// The userdata types: the local a stub file declares methods on, and its
/// class name.
const USERDATA: &[(&str, &str)] = &[
    ("Process", "nsrun.Process"),
    ("Pipe", "nsrun.Pipe"),
    ("NsHandle", "nsrun.NsHandle"),
    ("Cgroup", "nsrun.Cgroup"),
    ("Root", "nsrun.Root"),
    ("Channel", "nsrun.Channel"),
];

/// Classes whose `---@field`s are checked against what nsrun reports.
const CHECKED_CLASSES: &[&str] = &[
    "nsrun.Process",
    "nsrun.Pipe",
    "nsrun.NsHandle",
    "nsrun.Cgroup",
    "nsrun.Root",
    "nsrun.Channel",
    "nsrun.SpawnOpts",
    "nsrun.TimeOffsets",
    "nsrun.CapsOpts",
    "nsrun.SeccompOpts",
    "nsrun.CgroupOpts",
    "nsrun.LandlockOpts",
    "nsrun.BindOpts",
    "nsrun.MkdirOpts",
    "nsrun.ExecOpts",
    "nsrun.MountOpts",
    "nsrun.VethOpts",
    "nsrun.RouteOpts",
    "nsrun.SetnsOpts",
    "nsrun.Status",
    "nsrun.Error",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// One item of the API, named the way messages show it: `ns.mount()`,
/// `ns.version`, `nsrun.Process:wait()`, `nsrun.Process.pid`.
type Item = String;

fn function(name: &str) -> Item {
    format!("ns.{name}()")
}
fn value(name: &str) -> Item {
    format!("ns.{name}")
}
fn method(class: &str, name: &str) -> Item {
    format!("{class}:{name}()")
}
fn field(class: &str, name: &str) -> Item {
    format!("{class}.{name}")
}

/// A function or method declaration of the stub file.
struct Decl {
    line: usize,
    item: Item,
    params: Vec<String>,
    /// The `---` lines right above it.
    doc: Vec<String>,
}

/// What the stub file declares.
#[derive(Default)]
struct Stubs {
    items: BTreeSet<Item>,
    decls: Vec<Decl>,
    /// Lines that look like declarations but follow no convention.
    unrecognised: Vec<String>,
}

fn parse_stubs(text: &str) -> Stubs {
    let locals: BTreeMap<&str, &str> = USERDATA.iter().copied().collect();
    let mut s = Stubs::default();
    let mut class: Option<String> = None;
    let mut doc: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(d) = line.strip_prefix("---") {
            if let Some(c) = d.strip_prefix("@class ") {
                class = c
                    .split_whitespace()
                    .next()
                    .map(|c| c.trim_end_matches(':').into());
            } else if let (Some(c), Some(f)) = (&class, d.strip_prefix("@field ")) {
                let name = f.split_whitespace().next().unwrap_or("");
                let name = name.trim_end_matches('?');
                if is_ident(name) {
                    s.items.insert(field(c, name));
                } else {
                    s.unrecognised.push(format!("{STUBS}:{n}: {line}"));
                }
            }
            doc.push(d.to_string());
            continue;
        }
        class = None;
        let this_doc = std::mem::take(&mut doc);
        if let Some(rest) = line.strip_prefix("function ") {
            let parsed = rest.split_once('(').and_then(|(name, args)| {
                let args = args.split_once(')')?.0;
                let params = args
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>();
                let item = if let Some(f) = name.strip_prefix("ns.") {
                    // `ns.NAME` or a subtable's `ns.SUB.NAME`.
                    f.split('.').all(is_ident).then(|| function(f))?
                } else {
                    let (local, m) = name.split_once(':')?;
                    let class = locals.get(local)?;
                    is_ident(m).then(|| method(class, m))?
                };
                Some((item, params))
            });
            match parsed {
                Some((item, params)) => {
                    s.items.insert(item.clone());
                    s.decls.push(Decl {
                        line: n,
                        item,
                        params,
                        doc: this_doc,
                    });
                }
                None => s.unrecognised.push(format!("{STUBS}:{n}: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("ns.") {
            match rest.split_once('=') {
                // `ns.NAME = …`, or a subtable's value `ns.SUB.NAME = …`.
                Some((name, _)) if name.trim().split('.').all(is_ident) => {
                    s.items.insert(value(name.trim()));
                }
                _ => s.unrecognised.push(format!("{STUBS}:{n}: {line}")),
            }
        }
    }
    s
}

fn read_stubs() -> Stubs {
    let path = root().join(STUBS);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_stubs(&text)
}

/// Records `KIND\tA\tB` printed by the Lua probes.
fn records(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let mut next = || f.next().unwrap_or("").to_string();
            (next(), next(), next())
        })
        .collect()
}

/// Run in the `nsrun` binary: list the module, the option keys, the keys
/// of a status and of an error, and look up each name given as an
/// argument (`Process:wait`, `NsHandle.kind`) on a live value.
const BINARY_PROBE: &str = r#"
local ns = require "nsrun"
local out = {}
local function emit(...) out[#out + 1] = table.concat({...}, "\t") end

for k, v in pairs(ns) do
  emit("module", k, type(v))
  -- Subtables such as ns.net: their functions as `net.up`.
  if type(v) == "table" then
    for k2, v2 in pairs(v) do emit("module", k .. "." .. k2, type(v2)) end
  end
end

-- Each function names the keys it knows when given one it does not.
local function known(class, f, ...)
  local ok, err = pcall(f, ...)
  local keys = not ok and tostring(err):match("known: ([%w_, ]+)$")
  if keys then
    for key in keys:gmatch("[%w_]+") do emit("field", class, key) end
  else
    emit("error", class, "no 'known: ...' list of keys in: " .. tostring(err))
  end
end
local BAD = {zz_not_an_option = true}
known("nsrun.SpawnOpts", ns.spawn, BAD)
known("nsrun.TimeOffsets", ns.spawn, {argv = {"/nonexistent/nsrun-probe"}, time_offsets = BAD})
known("nsrun.CapsOpts", ns.spawn, {argv = {"/nonexistent/nsrun-probe"}, caps = BAD})
known("nsrun.SeccompOpts", ns.spawn, {argv = {"/nonexistent/nsrun-probe"}, seccomp = BAD})
known("nsrun.CgroupOpts", ns.spawn, {argv = {"/nonexistent/nsrun-probe"}, cgroup = BAD})
known("nsrun.CgroupOpts", ns.cgroup, BAD)
known("nsrun.LandlockOpts", ns.spawn, {argv = {"/nonexistent/nsrun-probe"}, landlock = BAD})
known("nsrun.BindOpts", ns.bind, "/nonexistent/a", "/nonexistent/b", BAD)
known("nsrun.MkdirOpts", ns.mkdir, "/nonexistent/a", nil, BAD)
known("nsrun.ExecOpts", ns.exec, {"/nonexistent/nsrun-probe"}, BAD)
known("nsrun.MountOpts", ns.mount, BAD)
known("nsrun.SetnsOpts", ns.setns, "/proc/self/ns/net", nil, BAD)
known("nsrun.VethOpts", ns.net.veth, "nsrun-probe0", "nsrun-probe1", BAD)
known("nsrun.RouteOpts", ns.net.route, "default", BAD)

-- A status with every key: killed by a signal, output captured.
local st = ns.run{fn = function() ns.kill(ns.getpid(), "KILL") end}
for k in pairs(st) do emit("field", "nsrun.Status", k) end
-- An error value with every key: a failed system call that has a hint.
local ok, e = pcall(function() ns.kill(2147483647, 0) end)
if type(e) == "table" then
  for k in pairs(e) do emit("field", "nsrun.Error", k) end
else
  emit("error", "nsrun.Error", "ns.kill(2147483647, 0) raised " .. tostring(e))
end

local forked = ns.fork(function() end)
local piped = ns.spawn{argv = {"true"}, stdin = "pipe", stdout = "pipe", stderr = "pipe",
  channel = 3}
-- p.tty needs a stream left to the terminal (and our stdin not one).
local with_tty = ns.spawn{argv = {"true"}, tty = true, stdout = "null", stderr = "null"}
local handle = ns.open("net")
-- The tests run as root, so a cgroup can be made.
local cg = ns.cgroup{}
local root = ns.root("/")
local chan = ns.socketpair()
local methods_on = {Process = forked, Pipe = piped.stdout, NsHandle = handle, Cgroup = cg, Root = root, Channel = chan}
local fields_on = {Process = piped, Pipe = piped.stdout, NsHandle = handle, Cgroup = cg, Root = root, Channel = chan}
for _, probe in ipairs({...}) do
  local class, sep, name = probe:match("^(%w+)([:.])([%w_]+)$")
  local ud = (sep == ":" and methods_on or fields_on)[class]
  if probe == "Process.tty" then ud = with_tty end
  local got, v = pcall(function() return ud[name] end)
  emit("probe", probe, got and type(v) or "error")
end
forked:wait()
piped:wait()
with_tty:wait()
handle:close()
cg:close()
root:close()
print(table.concat(out, "\n"))
"#;

/// Run in an in-process host that has Lua's `debug` library: list the
/// methods and field getters of each userdata type. Behind a userdata's
/// `__index` mlua keeps either the methods table itself or a closure
/// whose upvalues `__index`/`methods` and `field_getters` hold them.
const MEMBERS_PROBE: &str = r#"
local debug = ...
local ns = require "nsrun"
local out = {}
local function emit(...) out[#out + 1] = table.concat({...}, "\t") end

local function members(class, ud)
  local mt = debug.getmetatable(ud)
  local index = type(mt) == "table" and rawget(mt, "__index")
  local found = false
  local function add(kind, t)
    for k in pairs(t) do emit(kind, class, k) end
    if kind == "method" then found = true end
  end
  if type(index) == "table" then
    add("method", index)
  elseif type(index) == "function" then
    for i = 1, 255 do
      local name, v = debug.getupvalue(index, i)
      if name == nil then break end
      if type(v) == "table" then
        if name == "field_getters" then add("field", v)
        elseif name == "__index" or name == "methods" then add("method", v) end
      end
    end
  end
  if not found then
    emit("error", class, "found no methods table behind __index (" .. type(index) ..
      "): mlua's userdata layout changed; update MEMBERS_PROBE in tests/stubs.rs")
  end
end

local p = ns.spawn{argv = {"true"}, stdin = "pipe", stdout = "pipe", stderr = "pipe"}
local h = ns.open("net")
members("nsrun.Process", p)
members("nsrun.Pipe", p.stdout)
members("nsrun.NsHandle", h)
local cg = ns.cgroup{}
members("nsrun.Cgroup", cg)
cg:close()
local r = ns.root("/")
members("nsrun.Root", r)
r:close()
members("nsrun.Channel", (ns.socketpair()))
p:wait()
h:close()
return table.concat(out, "\n")
"#;

fn run_binary_probe(probes: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nsrun"))
        .arg("-e")
        .arg(BINARY_PROBE)
        .args(probes)
        .current_dir(root())
        .output()
        .expect("run nsrun");
    assert!(
        out.status.success(),
        "nsrun -e PROBE failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// [`members_probe`] in a forked copy of this test process: the probe
/// starts processes, and nsrun refuses to fork one with threads (the test
/// harness's).
fn run_members_probe() -> String {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child runs the probe single-threaded and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let out = std::panic::catch_unwind(members_probe).unwrap_or_else(|_| "PANIC".into());
        // SAFETY: writing our buffer to the pipe, then leaving at once.
        unsafe {
            libc::close(fds[0]);
            let mut b = out.as_bytes();
            while !b.is_empty() {
                let n = libc::write(fds[1], b.as_ptr().cast(), b.len());
                if n <= 0 {
                    break;
                }
                b = &b[n as usize..];
            }
            libc::_exit(0)
        }
    }
    // SAFETY: our copy of the write end; the read end is ours to own.
    unsafe { libc::close(fds[1]) };
    let mut out = String::new();
    use std::io::Read;
    // SAFETY: the read end, owned from here on.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    f.read_to_string(&mut out).expect("read the probe's output");
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(
        out != "PANIC",
        "the members probe panicked (see its stderr)"
    );
    out
}

fn members_probe() -> String {
    let host = nsrun::Host::new().expect("a Lua host");
    let lua = host.lua();
    // SAFETY: luaopen_debug is Lua's own loader of the debug library (from
    // the Lua that mlua links); called as a function it only builds and
    // returns the library table. The unrestricted access that makes mlua
    // call `debug` unsafe stays inside this test's Lua state.
    let open_debug =
        unsafe { lua.create_c_function(mlua::ffi::luaopen_debug) }.expect("wrap luaopen_debug");
    let debug: Table = open_debug.call(()).expect("open the debug library");
    let probe: Function = lua
        .load(MEMBERS_PROBE)
        .set_name("=tests/stubs.rs")
        .into_function()
        .expect("compile MEMBERS_PROBE");
    probe.call(debug).expect("run MEMBERS_PROBE")
}

fn list(items: &BTreeSet<Item>) -> String {
    items.iter().fold(String::new(), |mut s, i| {
        let _ = writeln!(s, "    {i}");
        s
    })
}

/// What the bindings register, by [`Item`], and the declared methods and
/// fields the binary did not find on a live value.
struct Registered {
    items: BTreeSet<Item>,
    absent_in_binary: BTreeSet<Item>,
}

fn registered(declared: &BTreeSet<Item>) -> Registered {
    // The binary looks up each declared method and userdata field, given
    // as `Process:wait` or `NsHandle.kind`, on a live value.
    let mut probes = BTreeMap::new();
    for &(local, class) in USERDATA {
        for item in declared {
            if let Some(m) = item.strip_prefix(&format!("{class}:")) {
                probes.insert(format!("{local}:{}", m.trim_end_matches("()")), item);
            } else if let Some(f) = item.strip_prefix(&format!("{class}.")) {
                probes.insert(format!("{local}.{f}"), item);
            }
        }
    }
    let binary = run_binary_probe(&probes.keys().cloned().collect::<Vec<_>>());
    let members = run_members_probe();

    let mut r = Registered {
        items: BTreeSet::new(),
        absent_in_binary: BTreeSet::new(),
    };
    let mut problems = Vec::new();
    for (kind, a, b) in records(&binary).into_iter().chain(records(&members)) {
        match kind.as_str() {
            "module" if b == "function" => {
                r.items.insert(function(&a));
            }
            "module" => {
                r.items.insert(value(&a));
            }
            "method" => {
                r.items.insert(method(&a, &b));
            }
            "field" => {
                r.items.insert(field(&a, &b));
            }
            "probe" => {
                let found = if a.contains(':') {
                    b == "function"
                } else {
                    b != "nil" && b != "error"
                };
                if !found {
                    r.absent_in_binary.insert(probes[&a].clone());
                }
            }
            _ => problems.push(format!("{a}: {b}")),
        }
    }
    assert!(
        problems.is_empty(),
        "the probes could not read the API:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        r.items.iter().any(|i| i.starts_with("ns.")) && r.items.len() > 40,
        "the probes found too little to compare:\n{binary}\n{members}"
    );
    r
}

#[test]
fn stubs_match_bindings() {
    let stubs = read_stubs();
    let checked = |item: &Item| {
        item.starts_with("ns.")
            || CHECKED_CLASSES
                .iter()
                .any(|c| item.starts_with(&format!("{c}.")) || item.starts_with(&format!("{c}:")))
    };
    let declared: BTreeSet<Item> = stubs.items.iter().filter(|i| checked(i)).cloned().collect();
    let Registered {
        items: registered,
        absent_in_binary,
    } = registered(&declared);

    let missing_from_stubs: BTreeSet<Item> = registered.difference(&declared).cloned().collect();
    let missing_from_rust: BTreeSet<Item> = declared.difference(&registered).cloned().collect();
    // Only what the in-process listing did not already report.
    let absent_in_binary: BTreeSet<Item> = absent_in_binary
        .difference(&missing_from_rust)
        .cloned()
        .collect();

    let mut report = String::new();
    if !missing_from_stubs.is_empty() {
        let _ = write!(
            report,
            "\n  registered in Rust, missing from {STUBS}:\n{}",
            list(&missing_from_stubs)
        );
    }
    if !missing_from_rust.is_empty() {
        let _ = write!(
            report,
            "\n  declared in {STUBS}, not registered in Rust:\n{}",
            list(&missing_from_rust)
        );
    }
    if !absent_in_binary.is_empty() {
        let _ = write!(
            report,
            "\n  declared in {STUBS}, but nil on a live value in the nsrun binary:\n{}",
            list(&absent_in_binary)
        );
    }
    if !stubs.unrecognised.is_empty() {
        let _ = write!(
            report,
            "\n  lines of {STUBS} that follow none of its header's conventions:\n    {}\n",
            stubs.unrecognised.join("\n    ")
        );
    }
    assert!(
        report.is_empty(),
        "{STUBS} is out of sync with the Lua bindings (src/bindings/*.rs).\n\
         Functions are `function ns.NAME(...) end`, methods `function Process:NAME(...) end`,\n\
         fields `---@field NAME TYPE` under their `---@class` (see the stub file's header).\n{report}"
    );
}

#[test]
fn stubs_are_documented() {
    let stubs = read_stubs();
    assert!(
        stubs.decls.len() > 40,
        "only {} functions found in {STUBS}",
        stubs.decls.len()
    );
    let mut bad = Vec::new();
    for d in &stubs.decls {
        let described = d
            .doc
            .iter()
            .any(|l| !l.trim().is_empty() && !l.starts_with('@'));
        if !described {
            bad.push(format!("{STUBS}:{}: {} has no description", d.line, d.item));
        }
        let documented: BTreeSet<&str> = d
            .doc
            .iter()
            .filter_map(|l| l.strip_prefix("@param "))
            .filter_map(|p| p.split_whitespace().next())
            .map(|p| p.trim_end_matches('?'))
            .collect();
        for p in &d.params {
            if !documented.contains(p.as_str()) {
                bad.push(format!(
                    "{STUBS}:{}: {} has no ---@param for '{p}'",
                    d.line, d.item
                ));
            }
        }
        for p in &documented {
            if !d.params.iter().any(|q| q == p) {
                bad.push(format!(
                    "{STUBS}:{}: {} documents '{p}', which is not a parameter",
                    d.line, d.item
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "badly documented stubs:\n  {}",
        bad.join("\n  ")
    );
}

fn lua_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "lua"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn lua_files_compile() {
    let mut files = vec![root().join(STUBS)];
    files.extend(lua_files("examples"));
    files.extend(lua_files("tests/recipes"));
    files.extend(lua_files("lua/nsrun"));
    assert!(files.len() > 3, "no Lua files found: {files:?}");
    let mut bad = Vec::new();
    for f in &files {
        let out = Command::new(env!("CARGO_BIN_EXE_nsrun"))
            .arg("--check")
            .arg(f)
            .output()
            .expect("run nsrun --check");
        if !out.status.success() {
            bad.push(format!(
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "nsrun --check failed:\n  {}",
        bad.join("\n  ")
    );
}

/// The stdlib modules (`lua/nsrun/*.lua`, plain Lua shipped in the binary)
/// document each public function as the stubs do: a description and a
/// `---@param` per argument, nothing documented that is not an argument.
#[test]
fn stdlib_is_documented() {
    let files = lua_files("lua/nsrun");
    assert!(!files.is_empty(), "no stdlib modules found");
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut doc: Vec<&str> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(d) = line.strip_prefix("---") {
                doc.push(d);
                continue;
            }
            let this_doc = std::mem::take(&mut doc);
            let Some(rest) = line.strip_prefix("function M.") else {
                continue;
            };
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            let args = args.split_once(')').map_or("", |a| a.0);
            let params: BTreeSet<&str> = args
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let documented: BTreeSet<&str> = this_doc
                .iter()
                .filter_map(|l| l.strip_prefix("@param "))
                .filter_map(|p| p.split_whitespace().next())
                .map(|p| p.trim_end_matches('?'))
                .collect();
            let at = format!("{}:{}: M.{name}", f.display(), i + 1);
            if !this_doc
                .iter()
                .any(|l| !l.trim().is_empty() && !l.starts_with('@'))
            {
                bad.push(format!("{at} has no description"));
            }
            if params != documented {
                bad.push(format!(
                    "{at}: parameters {params:?}, ---@param for {documented:?}"
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "stdlib documentation:\n  {}",
        bad.join("\n  ")
    );
}
