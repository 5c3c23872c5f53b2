-- ns.setns into a rootless container, as `unshare -r --pid --fork
-- --mount-proc` makes one: its setgroups is "deny" and its /proc is its
-- own, so neither dropping the groups after the join nor reading our own
-- /proc/self/setgroups there can work; nsenter enters it all the same.
local ns = require "nsrun"
local T = require "testlib"

local kinds = {"user", "mount", "pid", "net"}
-- init = false: the target is the program itself, which an unprivileged
-- caller may reach (the init nsrun would put there seals itself).
local p = ns.spawn{
  argv = {"sleep", "30"},
  namespaces = "user,mount,pid,net",
  setgroups = "deny",
  init = false,
  mount_proc = "/proc",
}
T.eq("target.setgroups", ns.read_file("/proc/" .. p.pid .. "/setgroups"), "deny\n")
T.own_user = ns.id("user")
local want = {}
for _, k in ipairs(kinds) do
  want[k] = ns.id(k, p.pid)
  T.ne("target.own_" .. k, want[k], ns.id(k))
end

-- In the container: its namespaces, root with no supplementary groups,
-- its /proc (where we are not pid 1, the sleep is).
local function inside()
  for _, k in ipairs(kinds) do
    assert(ns.id(k) == want[k], k .. " namespace not joined")
  end
  assert(ns.getuid() == 0 and ns.getgid() == 0, "ids " .. ns.getuid() .. ":" .. ns.getgid())
  local groups = ns.read_file("/proc/self/status"):match("\nGroups:([^\n]*)")
  assert(groups and groups:match("^%s*$"), "supplementary groups kept: " .. tostring(groups))
  assert(ns.read_file("/proc/1/comm") == "sleep\n", "/proc is not the container's")
  return 0
end

local function join_then(f)
  return function()
    f()
    -- Joining a pid namespace moves only our children into it.
    return ns.fork(inside):wait().code
  end
end

T.child("join.all", join_then(function() ns.setns(p.pid) end))
T.child("join.kinds", join_then(function() ns.setns(p.pid, "user,mount,pid,net") end))
T.child("join.handles", join_then(function()
  local hs = {}
  for _, k in ipairs(kinds) do hs[#hs + 1] = p:ns(k) end
  for _, h in ipairs(hs) do ns.setns(h) end
end))
T.child("join.paths", join_then(function()
  -- Mount last: after it, /proc is the container's, without our pids.
  for _, k in ipairs({"user", "net", "pid", "mnt"}) do
    ns.setns("/proc/" .. p.pid .. "/ns/" .. k)
  end
end))

if T.user then
  -- An init seals itself against the namespaces it runs in (and so
  -- against us): refused, rather than joining none of them and going on.
  local q = ns.spawn{argv = {"sleep", "30"}, namespaces = "user,pid"}
  T.errmsg("sealed.init", "Permission denied", ns.setns, q.pid)
  T.eq("sealed.nothing_joined", ns.id("user"), T.own_user)
  q:kill("KILL")
  q:wait()
end

p:kill("KILL")
p:wait()
-- A pid whose namespace files cannot be read or do not exist is an error,
-- not a silent join of nothing.
T.errmsg("gone.pid", "(process " .. p.pid .. "): No such file or directory", ns.setns, p.pid)
print("done")
