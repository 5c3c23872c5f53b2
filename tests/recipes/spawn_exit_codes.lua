-- Exit codes and statuses of ns.spawn / ns.run: 0, 1, 42 and 128+N, with
-- no pid namespace, with the init (the default with "pid") and without it.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local modes = {
  { name = "plain", kinds = S.kinds("") },
  { name = "init", kinds = S.kinds("pid") },
  { name = "noinit", kinds = S.kinds("pid"), init = false },
  -- A new time namespace puts a relay in front of the process.
  { name = "relay", kinds = S.kinds("time") },
  { name = "relay_init", kinds = S.kinds("time,pid") },
}

local function status(name, st, code, signal)
  T.eq(name .. ".type", type(st), "table")
  T.eq(name .. ".code", st.code, code)
  T.eq(name .. ".signal", st.signal, signal)
  T.eq(name .. ".success", st.success, code == 0)
  T.eq(name .. ".timed_out", st.timed_out, false)
  T.eq(name .. ".core_dumped", st.core_dumped, false)
end

for _, m in ipairs(modes) do
  local function o(t)
    t.namespaces, t.init, t.stdin = m.kinds, m.init, "null"
    return t
  end
  local n = m.name
  for _, c in ipairs { 0, 1, 42 } do
    local sh = { "sh", "-c", "exit " .. c }
    status(n .. ".spawn." .. c, ns.spawn(o { argv = sh }):wait(), c, nil)
    local st = ns.run(o { argv = sh })
    status(n .. ".run." .. c, st, c, nil)
    T.eq(n .. ".run." .. c .. ".stdout", st.stdout, "")
    T.eq(n .. ".run." .. c .. ".stderr", st.stderr, "")
    status(n .. ".fn." .. c, ns.spawn(o { fn = function() return c end }):wait(), c, nil)
  end
  -- A wait after the end gives the same status again.
  local p = ns.spawn(o { argv = { "sh", "-c", "exit 42" } })
  status(n .. ".wait1", p:wait(), 42, nil)
  status(n .. ".wait2", p:wait(), 42, nil)

  -- Killed from outside: SIGKILL reaches even a PID 1.
  p = ns.spawn(o { argv = { "sleep", "100" } })
  T.eq(n .. ".kill9.sent", p:kill("KILL"), true)
  status(n .. ".kill9", p:wait(), 137, 9)

  if m.init ~= false then
    -- (A PID 1 gets only the signals it has a handler for: the program
    -- itself being PID 1, a plain sleep ignores SIGTERM.)
    p = ns.spawn(o { argv = { "sleep", "100" } })
    p:kill("TERM")
    status(n .. ".term", p:wait(), 143, 15)
    p = ns.spawn(o { argv = { "sleep", "100" } })
    p:kill(10)
    status(n .. ".usr1", p:wait(), 138, 10)
    -- The program kills itself: the init passes on how it died.
    status(n .. ".self_term", ns.run(o { argv = { "sh", "-c", "kill -TERM $$" } }), 143, 15)
    status(n .. ".self_hup", ns.run(o { argv = { "sh", "-c", "kill -HUP $$" } }), 129, 1)
    status(n .. ".self_kill", ns.run(o { argv = { "sh", "-c", "kill -KILL $$" } }), 137, 9)
  else
    -- As PID 1 with a handler, SIGTERM from outside does reach it.
    p = ns.spawn(o { argv = { "sh", "-c", "trap 'exit 99' TERM; while :; do sleep 0.02; done" } })
    -- Give sh the time to install its trap before the signal is sent.
    T.wait_until("the trap", function()
      local cgt = ns.read_file("/proc/" .. p.pid .. "/status"):match("SigCgt:%s*(%x+)")
      return cgt and tonumber(cgt:sub(-4), 16) & (1 << 14) ~= 0
    end)
    p:kill("TERM")
    status(n .. ".trapped_term", p:wait(), 99, nil)
  end
  S.no_children(n .. ".reaped")
end
T.ok("all")
