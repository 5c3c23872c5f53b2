-- What the options do: stdio, env, cwd, argv0, identity, names, time
-- offsets, new_session, join, fn, before_start and the process methods.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local K = S.kinds("")
local function sh(script, o)
  o = o or {}
  o.argv = { "sh", "-c", script }
  if o.namespaces == nil then o.namespaces = K end
  return ns.run(o)
end

-- stdio --------------------------------------------------------------------
ns.write_file(T.dir .. "/input", "from a file\n")
local st = sh("cat; echo to-err >&2", { stdin = T.dir .. "/input", stdout = T.dir .. "/out", stderr = "null" })
T.eq("stdio.path.code", st.code, 0)
T.eq("stdio.path.no_capture", st.stdout, nil)
T.eq("stdio.null.no_capture", st.stderr, nil)
T.eq("stdio.path.out", ns.read_file(T.dir .. "/out"), "from a file\n")
-- A path for stdout is created or truncated.
sh("echo short", { stdout = T.dir .. "/out" })
T.eq("stdio.path.truncated", ns.read_file(T.dir .. "/out"), "short\n")
st = sh("cat; echo $?", { stdin = "null" })
T.eq("stdio.null.stdin", st.stdout, "0\n")
-- inherit: nsrun's own stdout and stderr (checked by the Rust side).
st = sh("echo inherited-out; echo inherited-err >&2", { stdout = "inherit", stderr = "inherit" })
T.eq("stdio.inherit.no_capture", st.stdout, nil)
-- An fd number: nsrun's stdout (fd 1).
st = sh("echo via-fd-1", { stdout = 1 })
T.eq("stdio.fd.code", st.code, 0)
-- spawn's default is inherit: no pipes.
local p = ns.spawn { argv = { "true" }, namespaces = K }
T.eq("stdio.default.stdout", p.stdout, nil)
T.eq("stdio.default.stdin", p.stdin, nil)
local ost, o, e = p:output()
T.eq("stdio.default.output", ost.code .. tostring(o) .. tostring(e), "0nilnil")
-- Reading lines and counts.
p = ns.spawn { argv = { "sh", "-c", "echo a; echo b; printf xyz" }, stdout = "pipe", namespaces = K }
T.eq("read.l", p.stdout:read("l"), "a")
T.eq("read.L", p.stdout:read("L"), "b\n")
T.eq("read.n", p.stdout:read(2), "xy")
T.eq("read.a", p.stdout:read("a"), "z")
T.eq("read.eof", p.stdout:read("l"), nil)
T.eq("read.code", p:wait().code, 0)
-- A count far above what comes: what there is, not an abort allocating it.
p = ns.spawn { argv = { "printf", "abc" }, stdout = "pipe", namespaces = K }
T.eq("read.huge_count", p.stdout:read(math.maxinteger), "abc")
T.eq("read.huge_count.eof", p.stdout:read(math.maxinteger), nil)
T.eq("read.huge_count.code", p:wait().code, 0)

-- env, cwd, argv0 --------------------------------------------------------------
st = sh('echo "$NSRUN_TEST_FOO|${NSRUN_TEST_DIR:-unset}|$0"; pwd',
  { env = { NSRUN_TEST_FOO = "bar", NSRUN_TEST_DIR = false }, cwd = "/tmp" })
T.eq("env.set_remove.cwd", st.stdout, "bar|unset|sh\n/tmp\n")
st = ns.run { argv = { "/usr/bin/env" }, clear_env = true, env = { A = "1", B = 2 }, namespaces = K }
T.eq("env.clear", st.stdout, "A=1\nB=2\n")
st = ns.run { argv = { "sh", "-c", "echo $0; tr '\\0' ' ' </proc/$$/cmdline" }, argv0 = "mysh", namespaces = K }
T.eq("argv0", st.stdout, "mysh\nmysh -c echo $0; tr '\\0' ' ' </proc/$$/cmdline ")

-- identity -------------------------------------------------------------------
if T.user then
  T.eq("id.default_root", sh("id -u; id -g", { namespaces = "user" }).stdout, "0\n0\n")
  T.eq("id.self", sh("id -u; id -g", { namespaces = "user", uid_map = "self", gid_map = "self" }).stdout,
    T.uid .. "\n" .. T.gid .. "\n")
  T.eq("id.ranges", sh("id -u", { namespaces = "user", uid_map = { { 0, T.uid, 1 } } }).stdout, "0\n")
  T.eq("id.setgroups", sh("cat /proc/self/setgroups", { namespaces = "user" }).stdout, "deny\n")
else
  T.eq("id.uid_gid", sh("id -u; id -g; id -G", { uid = 1234, gid = 2345, groups = { 3456 } }).stdout,
    "1234\n2345\n2345 3456\n")
  T.eq("id.user_ns_root", sh("id -u", { namespaces = "user" }).stdout, "0\n")
end

-- names and clocks -----------------------------------------------------------------
local host = T.hostname()
st = ns.run { argv = { "sh", "-c", "hostname; cat /proc/sys/kernel/domainname" },
  namespaces = S.kinds("uts"), hostname = "box", domainname = "example.org" }
T.eq("uts.names", st.stdout, "box\nexample.org\n")
T.eq("uts.host_unchanged", T.hostname(), host)
local up = tonumber(ns.read_file("/proc/uptime"):match("^(%S+)"))
st = ns.run { argv = { "cat", "/proc/uptime" }, namespaces = S.kinds("time"), time_offsets = { boottime = 100000 } }
local inner = tonumber(st.stdout:match("^(%S+)"))
T.check("time.boottime", inner and inner >= up + 100000 - 1 and inner < up + 100000 + 30, st.stdout .. " vs " .. up)

-- sessions ---------------------------------------------------------------------
local stat = "read -r pid comm st ppid pgrp sid rest </proc/$$/stat; echo $pid $sid"
local a, b = sh(stat, { new_session = true }).stdout:match("(%d+) (%d+)")
T.eq("session.new", a, b)
a, b = sh(stat).stdout:match("(%d+) (%d+)")
T.ne("session.kept", a, b)

-- join -------------------------------------------------------------------------
local other = ns.spawn { argv = { "sleep", "100" }, namespaces = S.kinds("net,uts"), hostname = "joined", stdin = "null" }
local net = other:ns("net")
T.eq("ns.inode", net.inode, ns.id("net", other.pid))
T.ne("ns.new", net.inode, ns.id("net"))
local join = T.user and { user = other.pid, net = net, uts = "/proc/" .. other.pid .. "/ns/uts" }
  or { net = net, uts = "/proc/" .. other.pid .. "/ns/uts" }
st = ns.run { argv = { "sh", "-c", "readlink /proc/self/ns/net; hostname" }, join = join }
T.eq("join", st.stdout, "net:[" .. net.inode .. "]\njoined\n")
-- Joining, and new namespaces besides.
st = ns.run { argv = { "sh", "-c", "readlink /proc/self/ns/net; echo $$" }, join = join, namespaces = "pid" }
T.eq("join.and_new", st.stdout, "net:[" .. net.inode .. "]\n2\n")
st = ns.run { argv = { "sh", "-c", "readlink /proc/self/ns/net; echo $$" }, join = join, namespaces = "pid", init = false }
T.eq("join.and_new.noinit", st.stdout, "net:[" .. net.inode .. "]\n1\n")
other:kill("KILL")
T.eq("join.other", other:wait().code, 137)

-- fn -------------------------------------------------------------------------
T.eq("fn.pid_init", ns.spawn { fn = function() return ns.getpid() end, namespaces = S.kinds("pid") }:wait().code, 2)
T.eq("fn.pid_noinit", ns.spawn { fn = function() return ns.getpid() end, namespaces = S.kinds("pid"), init = false }:wait().code, 1)
p = ns.spawn { fn = function() io.write("from fn\n") io.stdout:flush() return 5 end, stdout = "pipe", namespaces = K }
T.eq("fn.stdout", p.stdout:read("a"), "from fn\n")
T.eq("fn.code", p:wait().code, 5)
T.eq("fn.error", ns.spawn { fn = function() error("in fn") end, stderr = "null", namespaces = K }:wait().code, 1)

-- before_start ------------------------------------------------------------------
local seen
p = ns.spawn { argv = { "sleep", "100" }, namespaces = S.kinds("pid"), init = false, stdin = "null",
  before_start = function(q)
    -- The child exists and has not gone on to exec yet.
    seen = { pid = q.pid, comm = ns.read_file("/proc/" .. q.pid .. "/comm") }
  end }
T.eq("before_start.pid", seen.pid, p.pid)
T.eq("before_start.before_exec", seen.comm, "nsrun\n")
T.eq("before_start.after", ns.read_file("/proc/" .. p.pid .. "/comm"), "sleep\n")

-- process methods ------------------------------------------------------------------
T.eq("pid.type", math.type(p.pid), "integer")
T.eq("tostring.running", tostring(p), "process " .. p.pid)
T.eq("try_wait.running", p:try_wait(), nil)
T.eq("kill.running", p:kill("KILL"), true)
local w = p:wait()
T.eq("wait.code", w.code, 137)
T.eq("try_wait.after", p:try_wait().code, 137)
T.eq("kill.after", p:kill(), false)
T.eq("tostring.exited", tostring(p), "process " .. p.pid .. " (exited, code 137)")
T.errmsg("kill.bad_signal", "", function() return p:kill("NOPE") end)

S.no_children("no child left")
T.ok("all")
