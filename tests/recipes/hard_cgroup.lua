-- Cgroups (root: making one needs a writable, delegated cgroup tree). The
-- paths of every cgroup made are printed as `val cg.N=PATH` so the Rust
-- side checks they are all gone afterwards.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

T.put("pid", ns.getpid())
if T.user then
  -- Unprivileged: a clear error with a hint, and nothing left behind.
  local e = T.errno("user.refused", "EACCES", ns.cgroup, { pids = 10 })
  T.has("user.hint", tostring(e), "delegated")
  T.has("user.op", e.op, "cgroup: mkdir")
  e = T.raises("user.spawn", ns.run, { argv = { "true" }, namespaces = "user", cgroup = { pids = 10 } })
  T.has("user.spawn.hint", tostring(e), "delegated")
  print("done")
  return
end

local seen = 0
local function remember(paths)
  for _, p in ipairs(paths) do
    seen = seen + 1
    T.put("cg." .. seen, p)
  end
end

-- ns.cgroup as a value.
local cg = ns.cgroup { pids = 50, memory = "128M", cpu = 1 }
remember(cg.paths)
T.check("value.name", cg.name:match("^nsrun%-%d+%-%d+$") ~= nil, cg.name)
for _, p in ipairs(cg.paths) do T.check("value.exists." .. p, ns.readdir(p) ~= nil) end
local p = ns.spawn { argv = { "sleep", "30" } }
cg:add(p)
T.check("value.pids", cg:pids()[1] == p.pid, table.concat(cg:pids(), " "))
local s = cg:stats()
T.eq("value.stats.pids", s.pids_current, 1)
T.check("value.stats.memory", type(s.memory_current) == "number")
cg:set("pids", 5)
cg:set("memory", "64M")
cg:set("cpu", 0.5)
cg:set("pids", "max")
T.errmsg("value.set.unknown", "unknown limit 'pid' (did you mean 'pids'?)", cg.set, cg, "pid", 3)
cg:close()
-- Closing killed what was in it.
local st = p:wait()
T.eq("value.close.killed", st.signal, 9)
T.errmsg("value.closed", "the cgroup is closed", cg.add, cg, 1)
cg:close() -- twice is fine

-- <close> removes it at the end of the scope.
local kept
do
  local c <close> = ns.cgroup {}
  kept = c.paths
  remember(kept)
end
for i, path in ipairs(kept) do T.check("tbc.gone." .. i, not T.exists(path .. "/cgroup.procs"), path) end

-- pids = 20: a bounded fork bomb hits the limit; the host is fine.
local BOMB = [[
my $n = 0;
for (1..60) {
  my $p = fork;
  if (!defined $p) { print "fail $n ", 0+$!, "\n"; exit 0 }
  if ($p == 0) { sleep 3; exit 0 }
  $n++;
}
print "all $n\n";
]]
local bp = ns.spawn { argv = { "perl", "-e", BOMB }, namespaces = "pid", cgroup = { pids = 20 }, stdout = "pipe", timeout = 30 }
local out = bp.stdout:read("a")
st = bp:wait()
local made, errno = out:match("^fail (%d+) (%d+)")
T.check("pids.fork_failed", made ~= nil, out)
T.eq("pids.eagain", errno, "11")
T.check("pids.at_most_20", tonumber(made) < 20, out)
T.eq("pids.exit", st.code, 0)
local stats = bp:cgroup_stats()
T.check("pids.stats", stats and stats.pids_current ~= nil)
T.eq("host.still_forks", ns.run({ argv = { "true" } }).code, 0)

-- memory: a hog is killed by the OOM killer, and the status says so.
local hog = ns.spawn {
  argv = { "perl", "-e", 'my $x = "a" x (200 * 1024 * 1024); print "survived\n"' },
  namespaces = "pid",
  cgroup = { memory = "32M" },
  stdout = "pipe",
  timeout = 30,
}
local hout = hog.stdout:read("a")
st = hog:wait()
T.eq("memory.killed", st.signal, 9)
T.eq("memory.not_timed_out", st.timed_out, false)
T.lacks("memory.not_survived", hout, "survived")
stats = hog:cgroup_stats()
T.check("memory.peak", stats.memory_peak and stats.memory_peak <= 34 * 1024 * 1024, tostring(stats.memory_peak))
if stats.oom_kills then T.check("memory.oom_kills", stats.oom_kills >= 1, tostring(stats.oom_kills)) end

-- cpu = 0.2: two seconds of a busy loop use well under a second of CPU.
local busy = ns.spawn { argv = { "timeout", "2", "sh", "-c", "while :; do :; done" }, cgroup = { cpu = 0.2 } }
busy:wait()
stats = busy:cgroup_stats()
T.check("cpu.usage", stats.cpu_usec and stats.cpu_usec < 900000 and stats.cpu_usec > 100000, tostring(stats.cpu_usec))

-- A new cgroup namespace sees the new cgroup as its root.
local r = ns.run { argv = { "cat", "/proc/self/cgroup" }, namespaces = "cgroup", cgroup = { pids = 10 } }
for line in r.stdout:gmatch("[^\n]+") do
  local ctl, path = line:match("^%d+:([^:]*):(.*)$")
  if ctl == "pids" or ctl == "memory" or ctl == "" then T.eq("cgroupns." .. ctl, path, "/") end
end
-- ... also with a user namespace (the cgroup namespace is unshared late).
r = ns.run { argv = { "cat", "/proc/self/cgroup" }, namespaces = "user,cgroup,pid", cgroup = { pids = 10 } }
T.check("cgroupns.user", r.stdout:find("pids:/\n", 1, true) ~= nil, r.stdout)
-- Without the namespace the program sees where it is.
r = ns.run { argv = { "cat", "/proc/self/cgroup" }, cgroup = { pids = 10 } }
T.check("no_cgroupns", r.stdout:find("pids:/.*nsrun%-%d+%-%d+") ~= nil, r.stdout)

-- A daemon left behind in the cgroup is killed when the program ends.
r = ns.run { argv = { "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!" }, cgroup = { pids = 10 } }
local daemon = tonumber(r.stdout)
T.check("daemon.killed", not T.exists("/proc/" .. daemon .. "/cmdline") or
  not ns.read_file("/proc/" .. daemon .. "/cmdline"):find("sleep"), r.stdout)

T.eq("unlimited", ns.run({ argv = { "true" }, cgroup = { memory = "unlimited", pids = "max" } }).code, 0)
T.errmsg("bad.memory", "bad size '12Q'", ns.cgroup, { memory = "12Q" })
T.errmsg("bad.key", "unknown option 'pid' (did you mean 'pids'?)", ns.cgroup, { pid = 3 })
print("done")
