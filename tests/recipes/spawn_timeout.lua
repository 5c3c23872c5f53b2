-- `timeout`: the process tree is killed when it runs out, and the status
-- says so. Returns the first timed-out status (nsrun exits 137).
-- With the argument "relay": the same for a process behind a relay (a new
-- time namespace without a new pid namespace), and p:kill on it.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local what = ...

local function timed_out(name, st, t0, at_least)
  local took = S.now() - t0
  T.eq(name .. ".timed_out", st.timed_out, true)
  T.eq(name .. ".success", st.success, false)
  T.eq(name .. ".signal", st.signal, 9)
  T.eq(name .. ".code", st.code, 137)
  T.check(name .. ".not_early", took >= at_least - 0.05, "ended after " .. took .. " s")
  T.check(name .. ".not_late", took < at_least + 2, "ended after " .. took .. " s")
end

if what == "relay" then
  -- The programs end by themselves after 4 s, so a timeout or kill that
  -- does not land shows as lateness instead of a hang; they leave a file
  -- behind if they were not killed.
  local survived = T.dir .. "/survived"
  local prog = { "sh", "-c", "sleep 4; echo >\"$1\"", "sh", survived }
  local t0 = S.now()
  local p = ns.spawn { argv = prog, timeout = 1, namespaces = S.kinds("time"), stdin = "null" }
  local st = p:wait()
  timed_out("relay.wait", st, t0, 1)
  T.eq("relay.wait.killed", T.exists(survived), false)

  t0 = S.now()
  st = ns.run { argv = prog, timeout = 1, namespaces = S.kinds("time,mount"), stdin = "null" }
  timed_out("relay.run", st, t0, 1)
  T.eq("relay.run.killed", T.exists(survived), false)

  -- p:kill reaches it too (it has a timeout it will not reach).
  t0 = S.now()
  p = ns.spawn { argv = prog, timeout = 60, namespaces = S.kinds("time"), stdin = "null" }
  T.eq("relay.kill.sent", p:kill("KILL"), true)
  st = p:wait()
  T.eq("relay.kill.code", st.code, 137)
  T.eq("relay.kill.timed_out", st.timed_out, false)
  T.check("relay.kill.at_once", S.now() - t0 < 1, "ended after " .. (S.now() - t0) .. " s")
  T.eq("relay.kill.killed", T.exists(survived), false)
  S.no_children("relay.no_child_left")
  T.ok("all")
  return
end

-- timeout = 1 stops sleep 100, in a sandbox and without namespaces.
local t0 = S.now()
local p = ns.spawn { argv = { "sleep", "100" }, timeout = 1, namespaces = S.kinds(""), stdin = "null" }
local first = p:wait()
timed_out("plain", first, t0, 1)
T.eq("plain.wait_again", p:wait().timed_out, true)
T.eq("plain.kill_after", p:kill(), false)

t0 = S.now()
p = ns.spawn { argv = { "sleep", "100" }, timeout = 1, namespaces = S.kinds("pid,mount"), stdin = "null" }
timed_out("init", p:wait(), t0, 1)

t0 = S.now()
p = ns.spawn { argv = { "sleep", "100" }, timeout = 1, namespaces = S.kinds("pid"), init = false, stdin = "null" }
timed_out("noinit", p:wait(), t0, 1)

-- ns.run: the output up to then is kept; the whole tree goes, also the
-- background process that holds the pipe open (without a pid namespace).
t0 = S.now()
local st = ns.run {
  argv = { "sh", "-c", "echo $$; sleep 100 & echo $!; echo started >&2; wait" },
  timeout = 0.5,
  namespaces = S.kinds(""),
  stdin = "null",
}
timed_out("run.plain", st, t0, 0.5)
local pids = S.lines(st.stdout)
T.eq("run.plain.stdout", #pids, 2)
T.eq("run.plain.stderr", st.stderr, "started\n")
for i, pid in ipairs(pids) do
  T.check("run.plain.tree." .. i, S.dead(pid, 2), "process " .. pid .. " lives on")
end

t0 = S.now()
st = ns.run {
  argv = { "sh", "-c", "echo started; sleep 100 & sleep 100" },
  timeout = 0.5,
  namespaces = S.kinds("pid"),
  stdin = "null",
}
timed_out("run.init", st, t0, 0.5)
T.eq("run.init.stdout", st.stdout, "started\n")

-- try_wait notices the deadline too.
t0 = S.now()
p = ns.spawn { argv = { "sleep", "100" }, timeout = 0.3, namespaces = S.kinds(""), stdin = "null" }
local got
for _ = 1, 200 do
  got = p:try_wait()
  if got then break end
  os.execute("sleep 0.02")
end
T.check("try_wait.ended", got ~= nil, "try_wait never returned a status")
timed_out("try_wait", got, t0, 0.3)

-- output() on a spawned process with a timeout.
t0 = S.now()
p = ns.spawn {
  argv = { "sh", "-c", "echo out; echo err >&2; exec sleep 100" },
  timeout = 0.5, namespaces = S.kinds("pid"), stdin = "null", stdout = "pipe", stderr = "pipe",
}
local ost, out, err = p:output()
timed_out("output", ost, t0, 0.5)
T.eq("output.stdout", out, "out\n")
T.eq("output.stderr", err, "err\n")

-- A process that ends in time is not marked.
st = ns.run { argv = { "sh", "-c", "exit 3" }, timeout = 5, namespaces = S.kinds("pid") }
T.eq("in_time.timed_out", st.timed_out, false)
T.eq("in_time.code", st.code, 3)
st = ns.run { argv = { "true" }, timeout = 5 }
T.eq("in_time.success", st.success, true)
T.eq("in_time.timed_out2", st.timed_out, false)

S.no_children("no child left")
T.ok("all")
return first
