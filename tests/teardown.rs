//! What a forked child may not do to its parent (issue 14): run the
//! parent's teardown, hold the parent's error pipe; and what a failed
//! exec, a trace or a mount namespace of the recipe's may not leave
//! behind.

mod common;

use std::time::Duration;

use common::nsrun;

// A process `setup` forks in the background does not hold the spawn's
// error pipe: `spawn` returns at the exec. The background process waits
// on a FIFO that the recipe opens only once `spawn` has returned, so
// before the fix the two waited on each other until the run was killed.
both!(
    fn background_fork_in_setup_does_not_hold_spawn(as_) {
        let d = nsrun(as_)
            .recipe(
                r#"
local ns = require "nsrun"
local T = require "testlib"
local fifo = T.dir .. "/go"
local p = ns.spawn{argv = {"true"}, setup = function()
  ns.fork(function()
    local f = assert(io.open(fifo, "r"))
    f:read("a")
    f:close()
  end)
end}
T.ok("spawn.returned")
local w = assert(io.open(fifo, "w"))
w:write("go\n")
w:close()
T.eq("spawn.code", p:wait().code, 0)
"#,
            )
            .fifo("go")
            .timeout(Duration::from_secs(15))
            .run();
        d.oks(&["spawn.returned", "spawn.code"]);
    }
);

// A forked child (ns.fork, a spawn's fn or setup) that calls
// `os.exit(code, true)` or collects garbage never runs the parent's
// finalizers: a `__gc` of the recipe's, a cgroup's teardown (root: the
// parent's cgroup and the process in it stay). os.exit still flushes the
// child's buffered output and reads its code as Lua does.
both!(
    fn children_never_run_the_parents_teardown(as_) {
        let d = nsrun(as_)
            .recipe(
                r#"
local ns = require "nsrun"
local T = require "testlib"
local marker = T.dir .. "/gc."
T.put("pid", ns.getpid())
-- The parent's own finalizer: it must run in the parent only (a child
-- that drops the value and collects it runs it, as Lua would).
sentinel = setmetatable({}, {__gc = function()
  local f = io.open(marker .. ns.getpid(), "w")
  if f then f:close() end
end})
local function no_marker(name)
  for _, e in ipairs(ns.readdir(T.dir)) do
    local name_ = type(e) == "table" and e.name or e
    if name_:find("^gc%.") then error("FAIL " .. name .. ": a finalizer ran in a child: " .. name_) end
  end
  T.ok(name)
end

T.eq("fork.exit_close", ns.fork(function() os.exit(7, true) end):wait().code, 7)
T.eq("fork.gc_then_exit", ns.fork(function()
  collectgarbage()
  collectgarbage()
  os.exit(7, true)
end):wait().code, 7)
T.eq("fork.exit_false", ns.fork(function() os.exit(false, true) end):wait().code, 1)
T.eq("fork.exit_true", ns.fork(function() os.exit(true, true) end):wait().code, 0)
T.eq("fork.exit_string", ns.fork(function() os.exit("3") end):wait().code, 3)
T.eq("fork.exit_bad", ns.fork(function() os.exit(3.5) end):wait().code, 1)
T.eq("spawn_fn.exit_close", ns.spawn{fn = function() os.exit(7, true) end}:wait().code, 7)
pcall(ns.spawn, {argv = {"true"}, setup = function() os.exit(7, true) end})
local r = ns.run{fn = function() io.write("flushed") os.exit(0, true) end, stdout = "pipe"}
T.eq("fork.exit_flushes", r.stdout, "flushed")
no_marker("no_finalizer_in_children")

if not T.user then
  local cg = ns.cgroup{pids = 50}
  local sleeper = ns.spawn{argv = {"sleep", "30"}}
  cg:add(sleeper)
  T.eq("cg.fork", ns.fork(function()
    cg = nil
    collectgarbage()
    collectgarbage()
    os.exit(0, true)
  end):wait().code, 0)
  T.eq("cg.close_in_child", ns.fork(function()
    local ok, e = pcall(cg.close, cg)
    return (not ok and tostring(e):find("only the process that made it", 1, true)) and 0 or 1
  end):wait().code, 0)
  T.eq("cg.process_alive", sleeper:try_wait(), nil)
  for _, p in ipairs(cg.paths) do T.check("cg.dir_kept", ns.readdir(p) ~= nil, p) end
  T.eq("cg.still_has_it", cg:pids()[1], sleeper.pid)
  cg:close()
  T.eq("cg.closed_kills", sleeper:wait().signal, 9)
end
sentinel = nil
collectgarbage()
T.check("parent_finalizer_runs", T.exists(marker .. ns.getpid()))
print("done")
"#,
            )
            .run();
        let mut oks = vec![
            "fork.exit_close",
            "fork.gc_then_exit",
            "fork.exit_false",
            "fork.exit_true",
            "fork.exit_string",
            "fork.exit_bad",
            "spawn_fn.exit_close",
            "fork.exit_flushes",
            "no_finalizer_in_children",
            "parent_finalizer_runs",
        ];
        if as_ == common::As::Root {
            oks.extend([
                "cg.fork",
                "cg.close_in_child",
                "cg.process_alive",
                "cg.dir_kept",
                "cg.still_has_it",
                "cg.closed_kills",
            ]);
        }
        d.finished(&oks);
    }
);

// `--trace` with a pid namespace, its stderr read up to the first line and
// then closed (`2>&1 | head -1`): the processes between clone and exec,
// which share memory with the init, took the logger's lock and died of
// SIGPIPE in the write, and the init then waited on that lock for good
// (4 hangs in 5). Now each of 5 runs ends well within 10 s.
both!(
    fn trace_to_a_closed_reader_does_not_hang(as_) {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        use std::time::Instant;
        let code = r#"require("nsrun").run{argv={"true"}, namespaces="user,pid"}"#;
        for i in 0..5 {
            let mut cmd = match as_ {
                common::As::Root => Command::new(common::binary(as_)),
                common::As::User => {
                    let mut c = Command::new("setpriv");
                    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
                    c.arg(common::binary(as_));
                    c
                }
            };
            let mut child = cmd
                .args(["--trace", "-e", code])
                .current_dir("/")
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .expect("start nsrun");
            let start = Instant::now();
            let mut err = child.stderr.take().unwrap();
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while err.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
                line.push(b[0]);
            }
            drop(err);
            let mut status = None;
            while start.elapsed() < Duration::from_secs(10) {
                if let Some(st) = child.try_wait().unwrap() {
                    status = Some(st);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // Whatever is left of the run (an init that hung) goes.
            // SAFETY: killing the process group we made.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            assert!(
                status.is_some(),
                "run {i} hung after its reader went away (first line {:?})",
                String::from_utf8_lossy(&line)
            );
            assert!(
                String::from_utf8_lossy(&line).starts_with("nsrun["),
                "run {i}: no trace line first: {:?}",
                String::from_utf8_lossy(&line)
            );
        }
    }
);

// A failed ns.exec gives back what it changed: the working directory, the
// close-on-exec flags of the recipe's fds, and SIGPIPE ignored (at its
// default, a later write to a closed pipe killed nsrun with 141 instead
// of raising).
both!(
    fn failed_exec_changes_nothing(as_) {
        let d = nsrun(as_)
            .recipe(
                r#"
local ns = require "nsrun"
local T = require "testlib"
local function fds()
  local p = io.popen("ls /proc/self/fd | wc -l")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end
local keep = assert(io.open(T.dir .. "/kept", "w"))
local before = fds()
T.errno("missing", "ENOENT", ns.exec, {"/nonexistent/program"}, {cwd = "/"})
T.check("cwd_kept", T.exists("recipe.lua"), "the working directory changed")
T.errno("bad_cwd", "ENOENT", ns.exec, {"true"}, {cwd = "/nonexistent"})
T.check("cwd_kept_bad_cwd", T.exists("recipe.lua"), "the working directory changed")
T.eq("fds_inherited", fds(), before)
keep:close()
-- A pipe whose reader is gone: the write raises.
local p = ns.spawn{argv = {"sh", "-c", "exec 0<&-; echo closed"}, stdin = "pipe", stdout = "pipe"}
T.eq("reader_gone", p.stdout:read("l"), "closed")
local ok, e = pcall(function() p.stdin:write("x") end)
T.check("epipe_raises", not ok and tostring(e):find("pipe", 1, true), tostring(e))
p:wait()
print("done")
"#,
            )
            .run();
        d.finished(&[
            "missing",
            "cwd_kept",
            "bad_cwd",
            "cwd_kept_bad_cwd",
            "fds_inherited",
            "reader_gone",
            "epipe_raises",
        ]);
    }
);

// A mount namespace a recipe makes with ns.clone or ns.unshare is private
// by default, as unshare(1) makes it: a mount made inside no longer
// propagates back through a shared mount (the host's /run/netns); the
// `propagation` option keeps the old behaviour on request. All of it runs
// in a private mount namespace of the recipe's own.
both!(
    fn new_mount_namespaces_are_private(as_) {
        let d = nsrun(as_)
            .recipe(
                r#"
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir
T.isolate("mount")
ns.mkdir(D .. "/shared")
ns.mount("tmpfs", D .. "/shared", "tmpfs")
ns.mount(nil, D .. "/shared", nil, "shared")
for _, n in ipairs{"clone", "clone_shared", "unshare", "unshare_shared", "unshare_bad"} do
  ns.mkdir(D .. "/shared/" .. n)
end
local function mount_in(name)
  ns.mount("tmpfs", D .. "/shared/" .. name, "tmpfs")
  return 0
end
T.eq("clone.code", ns.clone("mount", function() return mount_in("clone") end):wait().code, 0)
T.check("clone.private", not T.mounted(D .. "/shared/clone"), "the clone's mount reached us")
T.eq("clone_shared.code", ns.clone("mount", function() return mount_in("clone_shared") end,
  {propagation = "unchanged"}):wait().code, 0)
T.check("clone_shared.propagates", T.mounted(D .. "/shared/clone_shared"), "no propagation")
T.child("unshare", function()
  ns.unshare("mount")
  return mount_in("unshare")
end)
T.check("unshare.private", not T.mounted(D .. "/shared/unshare"), "the child's mount reached us")
T.child("unshare_shared", function()
  ns.unshare("mount", {propagation = "shared"})
  return mount_in("unshare_shared")
end)
T.check("unshare_shared.propagates", T.mounted(D .. "/shared/unshare_shared"), "no propagation")
T.errmsg("unshare.bad_propagation", "propagation must be", ns.unshare, "uts", {propagation = "sideways"})
T.errmsg("clone.bad_key", "propagaton", ns.clone, "uts", function() end, {propagaton = "private"})
print("done")
"#,
            )
            .run();
        d.finished(&[
            "clone.code",
            "clone.private",
            "clone_shared.code",
            "clone_shared.propagates",
            "unshare",
            "unshare.private",
            "unshare_shared",
            "unshare_shared.propagates",
            "unshare.bad_propagation",
            "clone.bad_key",
        ]);
    }
);

// The shell of os.execute and io.popen starts with SIGPIPE at its default
// (an ignored signal stays ignored across exec: a `yes | head -1` would run
// on). nsrun handles SIGPIPE with a handler that does nothing, which gives
// it EPIPE errors as ignoring would, and which exec resets.
both!(
    fn os_execute_children_get_default_sigpipe(as_) {
        let d = nsrun(as_)
            .recipe(
                r#"
local ns = require "nsrun"
local T = require "testlib"
local function ignores_sigpipe(status)
  local mask = tonumber(status:match("SigIgn:%s*(%x+)"), 16)
  return mask & (1 << 12) ~= 0
end
local function handles_sigpipe(status)
  local mask = tonumber(status:match("SigCgt:%s*(%x+)"), 16)
  return mask & (1 << 12) ~= 0
end
T.check("nsrun.ignores", handles_sigpipe(ns.read_file("/proc/self/status"))
  and not ignores_sigpipe(ns.read_file("/proc/self/status")))
T.check("execute.ok", os.execute("cat /proc/self/status > " .. T.dir .. "/st"))
T.check("execute.default", not ignores_sigpipe(ns.read_file(T.dir .. "/st")), "os.execute's child ignores SIGPIPE")
local p = io.popen("cat /proc/self/status")
local st = p:read("a")
p:close()
T.check("popen.default", not ignores_sigpipe(st), "io.popen's child ignores SIGPIPE")
T.check("nsrun.still_ignores", handles_sigpipe(ns.read_file("/proc/self/status")))
T.check("execute.error", not pcall(os.execute, {}))
print("done")
"#,
            )
            .run();
        d.finished(&[
            "nsrun.ignores",
            "execute.ok",
            "execute.default",
            "popen.default",
            "nsrun.still_ignores",
            "execute.error",
        ]);
    }
);
