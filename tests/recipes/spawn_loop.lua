-- A long loop of spawns leaves nsrun's fd count and RSS flat: spawn + wait,
-- ns.run with its pipes, :output(), pipes read by hand, and failed spawns.
-- Argument: how many rounds to measure.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local rounds = tonumber((...)) or 1000
local K = S.kinds("")

local function rss()
  return tonumber(ns.read_file("/proc/self/status"):match("VmRSS:%s*(%d+) kB"))
end
local function fds()
  return #ns.readdir("/proc/self/fd")
end

local function one(i)
  local k = i % 5
  if k == 0 then
    local st = ns.spawn { argv = { "/bin/true" }, namespaces = K }:wait()
    if st.code ~= 0 then error("true: " .. st.code) end
  elseif k == 1 then
    local st = ns.run { argv = { "/bin/echo", i }, namespaces = K }
    if st.stdout ~= i .. "\n" then error("echo: " .. T.show(st.stdout)) end
  elseif k == 2 then
    local ok, e = pcall(ns.spawn, { argv = { "/nonexistent/program" }, namespaces = K })
    if ok or e.errno ~= "ENOENT" then error("missing program: " .. tostring(e)) end
  elseif k == 3 then
    local p = ns.spawn { argv = { "/bin/cat" }, namespaces = K, stdin = "pipe", stdout = "pipe", stderr = "null" }
    p.stdin:write("x" .. i)
    p.stdin:close()
    if p.stdout:read("a") ~= "x" .. i then error("cat") end
    if p:wait().code ~= 0 then error("cat code") end
  else
    local p = ns.spawn { argv = { "/bin/sh", "-c", "echo o; echo e >&2; exit 3" }, namespaces = K,
      stdout = "pipe", stderr = "pipe" }
    local st, o, e = p:output()
    if st.code ~= 3 or o ~= "o\n" or e ~= "e\n" then error("output") end
  end
end

local function settle()
  collectgarbage()
  collectgarbage()
end

-- Warm up (allocator pools, Lua's string table), then measure.
for i = 1, 200 do one(i) end
settle()
local rss0, fds0 = rss(), fds()
local t0 = S.now()
for i = 1, rounds do one(i) end
settle()
local rss1, fds1 = rss(), fds()
T.put("seconds", S.now() - t0)
T.put("rss_before_kb", rss0)
T.put("rss_after_kb", rss1)
T.put("fds_before", fds0)
T.put("fds_after", fds1)
T.eq("fds flat", fds1, fds0)
T.check("rss flat", rss1 - rss0 <= 1024, "RSS grew by " .. (rss1 - rss0) .. " kB over " .. rounds .. " spawns")
S.no_children("no child left")
T.ok("all")
