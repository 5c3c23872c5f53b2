-- Soak (issue 8, point 1): N sandboxes in turn, then ROUNDS times AT_ONCE
-- sandboxes at once, all through nsrun.sandbox: every namespace, the host's
-- root read-only, their own /proc, /dev and /tmp. Every status must be the
-- one asked for, and this process (the host) must end with the fds, mount
-- table and (within BOUND_KB) RSS it had after warming up, with no child,
-- zombie or other process of its process group left.
-- Arguments: N ROUNDS AT_ONCE BOUND_KB.

local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local N, ROUNDS, AT_ONCE, BOUND_KB = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
assert(N and ROUNDS and AT_ONCE and BOUND_KB, "usage: soak_sandboxes.lua N ROUNDS AT_ONCE BOUND_KB")

local function fds() return #ns.readdir("/proc/self/fd") end
local function rss() return tonumber(ns.read_file("/proc/self/status"):match("VmRSS:%s+(%d+)")) end
local function mounts() return ns.read_file("/proc/self/mountinfo") end
local function uptime() return tonumber(ns.read_file("/proc/uptime"):match("^(%S+)")) end
local function settle() collectgarbage() collectgarbage() end
local function lines(s) return select(2, s:gsub("\n", "")) end

local me = ns.getpid()
-- The comm field may hold ") ", so anchor on the last one.
local function stat_of(pid)
  local ok, s = pcall(ns.read_file, "/proc/" .. pid .. "/stat")
  if not ok then return nil end -- gone meanwhile
  local state, ppid, pgrp = s:match(".*%) (%a) (%d+) (%d+)")
  return state, tonumber(ppid), tonumber(pgrp)
end
local _, _, pgrp = stat_of("self")
-- The stray check relies on it (the tests start nsrun in its own group).
T.eq("process group leader", pgrp, me)

-- Children of this process (zombies included) and anything else in its
-- process group: every sandbox process starts in it, so once all are
-- waited for there must be none.
local function strays()
  local out = {}
  for _, name in ipairs(ns.readdir("/proc")) do
    local pid = tonumber(name)
    if pid and pid ~= me then
      local state, ppid, pg = stat_of(name)
      if state and (ppid == me or pg == pgrp) then out[#out + 1] = ("%d(%s)"):format(pid, state) end
    end
  end
  return out
end
local function no_strays(when)
  local s = strays()
  if #s > 0 then error(("FAIL strays %s: %s"):format(when, table.concat(s, " ")), 0) end
end

-- Sandbox i: an exit code that varies with i, or every 17th a death by
-- SIGTERM; every 50th names a program that does not exist (the start fails
-- and must leave nothing behind either).
local function expected(i)
  if i % 50 == 25 then return { missing = true } end
  if i % 17 == 0 then return { code = 128 + 15, signal = 15 } end
  return { code = (i * 7) % 256 }
end

local function options(i, e, capture)
  local script = e.signal and 'echo "$0"; kill -TERM $$' or 'echo "$0"; exit "$1"'
  local o = {
    argv = { e.missing and "/nonexistent/soak" or "/bin/sh", "-c", script, tostring(i), tostring(e.code) },
    binds = { { "/", "/", ro = true } },
    proc = "/proc", dev = "/dev", tmpfs = { "/tmp" },
    hostname = "soak",
  }
  if not capture then o.stdout = "null" end
  return o
end

local function check(i, st, e, out)
  if st.code ~= e.code or st.signal ~= e.signal or st.success ~= (e.code == 0 and not e.signal)
      or st.timed_out then
    error(("FAIL status of sandbox %d: code %s signal %s success %s timed_out %s; want code %s signal %s")
      :format(i, tostring(st.code), tostring(st.signal), tostring(st.success), tostring(st.timed_out),
        tostring(e.code), tostring(e.signal)), 0)
  end
  if out ~= nil and (st.stdout ~= i .. "\n" or st.stderr ~= "") then
    error(("FAIL output of sandbox %d: %q / %q"):format(i, tostring(st.stdout), tostring(st.stderr)), 0)
  end
end

local function missing(i, ok, err)
  if ok or type(err) ~= "table" or err.errno ~= "ENOENT" then
    error(("FAIL sandbox %d with a missing program: %s"):format(i, tostring(err)), 0)
  end
end

-- One sandbox in turn: every third through sandbox.run (output captured
-- and checked), the others through sandbox.spawn and :wait().
local function one(i)
  local e = expected(i)
  local capture = i % 3 == 0
  if e.missing then
    local ok, err = pcall(capture and sandbox.run or sandbox.spawn, options(i, e, capture))
    return missing(i, ok, err)
  end
  if capture then
    local st = sandbox.run(options(i, e, true))
    check(i, st, e, st.stdout)
  else
    check(i, sandbox.spawn(options(i, e, false)):wait(), e)
  end
end

-- Warm up (allocator pools, Lua's string table), then measure.
for i = 1, 100 do one(i) end
settle()
local f0, r0, m0, t0 = fds(), rss(), mounts(), uptime()
local rss_at = {}
for i = 1, N do
  one(i)
  if i % 2000 == 0 then
    no_strays("after sandbox " .. i)
    settle()
    rss_at[#rss_at + 1] = ("%d:%d"):format(i, rss())
  end
end
T.ok("statuses in turn")
local t1 = uptime()

-- AT_ONCE at once, ROUNDS times; waited for in reverse order of start, so
-- most of them are reaped long after they ended.
for round = 1, ROUNDS do
  local ps = {}
  for j = 1, AT_ONCE do
    local i = round * 1000 + j
    local e = expected(i)
    if e.missing then
      missing(i, pcall(sandbox.spawn, options(i, e, false)))
    else
      ps[#ps + 1] = { i = i, e = e, p = sandbox.spawn(options(i, e, false)) }
    end
  end
  for k = #ps, 1, -1 do check(ps[k].i, ps[k].p:wait(), ps[k].e) end
  no_strays("after round " .. round)
end
T.ok("statuses at once")
local t2 = uptime()

settle()
local f1, r1, m1 = fds(), rss(), mounts()
T.put("in_turn", N)
T.put("at_once", ROUNDS .. "x" .. AT_ONCE)
T.put("seconds_in_turn", ("%.1f"):format(t1 - t0))
T.put("seconds_at_once", ("%.1f"):format(t2 - t1))
T.put("fds", f0 .. " -> " .. f1)
T.put("rss_kb", r0 .. " -> " .. r1)
T.put("rss_kb_every_2000", table.concat(rss_at, " "))
T.put("mounts", lines(m0) .. " -> " .. lines(m1))
T.eq("fds flat", f1, f0)
T.check("mounts flat", m1 == m0, "the mount table changed:\n" .. m0 .. "\n--- now:\n" .. m1)
T.check("rss bounded", r1 - r0 <= BOUND_KB, ("RSS grew by %d KiB (bound %d)"):format(r1 - r0, BOUND_KB))
no_strays("at the end")
T.ok("no strays")
print("done")
