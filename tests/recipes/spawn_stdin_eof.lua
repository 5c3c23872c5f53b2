-- Closing the stdin pipe gives the program EOF, also when a relay stands in
-- front of it (a new time namespace; new namespaces besides joined ones).
-- Each case has a timeout, so a program left waiting for EOF shows up as
-- timed_out instead of hanging the test.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local other = ns.spawn { argv = { "sleep", "100" }, namespaces = S.kinds("net"), stdin = "null" }
local join = T.user and { user = other.pid, net = other.pid } or { net = other.pid }

-- (With "time" but no new pid namespace the timeout is the weakest, so
-- that case comes last: a relay keeping stdin open shows up before.)
local cases = {
  { name = "plain", namespaces = S.kinds("") },
  { name = "init", namespaces = S.kinds("pid") },
  { name = "time_pid", namespaces = S.kinds("time,pid") },
  { name = "join", join = join },
  { name = "join_pid", join = join, namespaces = "pid" },
  { name = "time", namespaces = S.kinds("time") },
}
for _, c in ipairs(cases) do
  local p = ns.spawn { argv = { "cat" }, namespaces = c.namespaces, join = c.join,
    stdin = "pipe", stdout = "pipe", timeout = 2 }
  p.stdin:write("hello ", c.name)
  p.stdin:close()
  local st, out = p:output()
  T.eq(c.name .. ".stdout", out, "hello " .. c.name)
  T.eq(c.name .. ".timed_out", st.timed_out, false)
  T.eq(c.name .. ".code", st.code, 0)
end
other:kill("KILL")
other:wait()
S.no_children("no child left")
T.ok("all")
