-- Helpers shared by the spawn_*.lua recipes (tests/spawn.rs copies this
-- file next to each of them as spawn_lib.lua).

local ns = require "nsrun"
local T = require "testlib"
local S = {}

-- The namespaces of a sandbox (see testlib.kinds).
S.kinds = T.kinds

-- The four ways a program can be started: without a pid namespace, under
-- the init, as PID 1, and behind a relay (a time namespace); each with a
-- fresh /proc where it has a pid namespace.
function S.modes()
  local proc = function() ns.mount("proc", "/proc", "proc") end
  return {
    { name = "plain", namespaces = S.kinds("") },
    { name = "init", namespaces = S.kinds("pid,mount"), setup = proc },
    { name = "noinit", namespaces = S.kinds("pid,mount"), setup = proc, init = false },
    { name = "relay", namespaces = S.kinds("time,pid,mount"), setup = proc },
  }
end

-- The pids of nsrun's children (zombies included: they are children until reaped).
function S.children()
  local out = {}
  for _, t in ipairs(ns.readdir("/proc/self/task")) do
    for pid in ns.read_file("/proc/self/task/" .. t .. "/children"):gmatch("%d+") do
      out[#out + 1] = pid
    end
  end
  return out
end

-- Check nsrun has no child left, not even a zombie.
function S.no_children(name)
  local c = S.children()
  T.check(name, #c == 0, "nsrun still has children: " .. table.concat(c, " "))
end

-- The line of the caller (there is no debug library: error() finds it).
function S.line()
  local _, e = pcall(error, "@", 3)
  return assert(tonumber(e:match(":(%d+): @$")), e)
end

-- Seconds since boot, to 1/100 s (Lua itself only has whole seconds).
function S.now()
  return tonumber(ns.read_file("/proc/uptime"):match("^(%S+)"))
end

-- The state letter of a process, or nil when it is gone.
function S.state(pid)
  local ok, s = pcall(ns.read_file, "/proc/" .. pid .. "/stat")
  if not ok then return nil end
  return s:match("%) (%a)")
end

-- Wait (at most `seconds`) until process `pid` is gone or a zombie.
function S.dead(pid, seconds)
  local deadline = S.now() + (seconds or 2)
  while true do
    local st = S.state(pid)
    if st == nil or st == "Z" or st == "X" then return true end
    if S.now() > deadline then return false end
    os.execute("sleep 0.02")
  end
end

-- The first child of `pid` (the main process under an init or a relay).
function S.child_of(pid)
  local path = "/proc/" .. pid .. "/task/" .. pid .. "/children"
  local c
  T.wait_until("a child of " .. pid, function()
    c = ns.read_file(path):match("%d+")
    return c ~= nil
  end)
  return c
end

-- Write a file of the run directory in one step (the Rust side polls for it).
function S.publish(name, text)
  local tmp = T.dir .. "/." .. name .. ".tmp"
  ns.write_file(tmp, text)
  assert(os.rename(tmp, T.dir .. "/" .. name))
end

-- Lines of a string, as a list.
function S.lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

return S
