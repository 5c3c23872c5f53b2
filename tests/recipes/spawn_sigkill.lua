-- Sandboxes for the SIGKILL test: each runs `sleep 100`; their pids go to
-- `pids` in the run directory as "what pid" lines, then nsrun waits until
-- the test kills it.

local ns = require "nsrun"
local S = require "spawn_lib"

local lines = {}
local function add(what, pid) lines[#lines + 1] = what .. " " .. pid end
local sleep = { "sleep", "100" }

-- pid + mount, with the init: the init and the program under it.
local a = ns.spawn { argv = sleep, namespaces = S.kinds("pid,mount,uts,ipc"), stdin = "null" }
add("init", a.pid)
add("init.main", S.child_of(a.pid))
-- The program as PID 1.
local b = ns.spawn { argv = sleep, namespaces = S.kinds("pid"), init = false, stdin = "null" }
add("pid1", b.pid)
-- No pid namespace.
local c = ns.spawn { argv = sleep, namespaces = S.kinds("mount,uts"), stdin = "null" }
add("plain", c.pid)
-- A time namespace: the process is forked once more behind a relay.
local d = ns.spawn { argv = sleep, namespaces = S.kinds("time"), stdin = "null" }
add("relay", d.pid)
add("relay.main", S.child_of(d.pid))
-- In a new session.
local e = ns.spawn { argv = sleep, namespaces = S.kinds("ipc"), new_session = true, stdin = "null" }
add("session", e.pid)

S.publish("pids", table.concat(lines, "\n") .. "\n")
a:wait()
print("not killed")
