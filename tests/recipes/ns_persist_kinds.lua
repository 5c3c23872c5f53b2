-- ns.persist for every kind: the namespaces outlive the process that made
-- them, can be joined from the files, and are released by ns.unpersist.
-- Runs in a private mount namespace of its own (and, unprivileged, a user
-- namespace) so the persisting mounts never reach the host.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

T.isolate("mount")
local uid, gid = ns.getuid(), ns.getgid()

-- A child in new namespaces of most kinds that then unshares pid and time:
-- those two are then only its children's (pid_for_children,
-- time_for_children), which is what persist keeps for them. A pid
-- namespace can be opened only once its init exists, and lives only while
-- that init does: the child forks one, which stays when the child goes.
local p = ns.clone("user,uts,ipc,net,mount,cgroup", function()
  T.wait_mapped()
  ns.unshare("pid")
  ns.unshare("time")
  local init = ns.fork(function()
    while not T.exists(D .. "/stop") do os.execute("sleep 0.05") end
    return 0
  end)
  ns.write_file(D .. "/init-pid", tostring(init.pid))
  ns.write_file(D .. "/ready", "")
  while not T.exists(D .. "/go") do os.execute("sleep 0.05") end
  return 0
end)
ns.uid_map(p.pid, {{0, uid, 1}})
ns.setgroups(p.pid, "deny")
ns.gid_map(p.pid, {{0, gid, 1}})
T.wait_until("the child", function() return T.exists(D .. "/ready") end)

local KINDS = {"user", "uts", "ipc", "net", "mount", "cgroup", "pid", "time"}
local want = {}
for _, k in ipairs(KINDS) do
  local f = "/proc/" .. p.pid .. "/ns/" .. (k == "mount" and "mnt" or k)
  if k == "pid" or k == "time" then f = f .. "_for_children" end
  want[k] = ns.open(f).inode
  T.ne("child." .. k, want[k], ns.id(k))
  ns.persist(k, p.pid, D .. "/ns-" .. k)
  T.eq("persist." .. k, ns.open(D .. "/ns-" .. k).inode, want[k])
end
T.ne("pid.own_differs", ns.id("pid", p.pid), want.pid)

-- Not from inside: a process cannot persist its own mount namespace.
local e = T.errno("persist.own_mount", "EINVAL", ns.persist, "mount", "self", D .. "/ns-own")
T.has("persist.own_mount_hint", e.hint or "", "from its creator")
T.check("persist.own_mount_cleaned", not T.exists(D .. "/ns-own"))

-- The creator goes; the namespaces stay.
ns.write_file(D .. "/go", "")
T.eq("creator.gone", p:wait().code, 0)
for _, k in ipairs(KINDS) do
  local h = ns.open(D .. "/ns-" .. k)
  T.eq("survives." .. k, h.kind, k)
  T.eq("survives_same." .. k, h.inode, want[k])
  h:close()
end

-- Join them from the files. The user namespace first: the others belong to
-- it, and joining it makes us its root.
T.child("join.all", function()
  ns.setns(D .. "/ns-user", "user")
  assert(ns.getuid() == 0, "not root in the joined user namespace")
  for _, k in ipairs({"uts", "ipc", "net", "cgroup", "pid", "time", "mount"}) do
    ns.setns(D .. "/ns-" .. k, k)
  end
  for _, k in ipairs({"user", "uts", "ipc", "net", "cgroup", "mount"}) do
    assert(ns.id(k) == want[k], k .. " not joined")
  end
  assert(ns.open("/proc/self/ns/pid_for_children").inode == want.pid, "pid not joined")
  assert(ns.open("/proc/self/ns/time_for_children").inode == want.time, "time not joined")
  -- Our children are now in the persisted pid namespace (its init is pid 1).
  local c = ns.fork(function() return (ns.getpid() > 1 and ns.id("pid") == want.pid) and 0 or 1 end)
  assert(c:wait().code == 0, "a child is not in the persisted pid namespace")
end)

-- Without its init a pid namespace is over: still there, no longer usable.
local init = tonumber(ns.read_file(D .. "/init-pid"))
ns.write_file(D .. "/stop", "")
T.wait_until("the pid namespace's init to end", function()
  local ok, st = pcall(ns.read_file, "/proc/" .. init .. "/stat")
  return not ok or st:match("^%d+ %b() (%a)") == "Z"
end)
T.child("pid.dead", function()
  ns.setns(D .. "/ns-user", "user")
  ns.setns(D .. "/ns-pid", "pid")
  local ok, e = pcall(ns.fork, function() return 0 end)
  assert(not ok and e.errno == "ENOMEM", "fork into a dead pid namespace: " .. tostring(e))
end)

-- util-linux both ways: nsenter joins what we persisted, and we join and
-- release what `unshare --net=FILE` persisted (it wants the file to exist).
local r = ns.run{argv = {"nsenter", "--net=" .. D .. "/ns-net", "readlink", "/proc/self/ns/net"}}
T.eq("nsenter.ours", r.stdout, "net:[" .. want.net .. "]\n")
ns.write_file(D .. "/uns-net", "")
r = ns.run{argv = {"unshare", "--net=" .. D .. "/uns-net", "true"}}
T.eq("unshare_file.code", r.code, 0)
local theirs = ns.open(D .. "/uns-net")
T.eq("unshare_file.kind", theirs.kind, "net")
T.ne("unshare_file.new", theirs.inode, ns.id("net"))
T.child("unshare_file.join", function()
  ns.setns(D .. "/uns-net", "net")
  assert(ns.id("net") == theirs.inode, "not joined")
  local l = ns.net.links()
  assert(#l == 1 and l[1].name == "lo", "not a fresh network namespace")
end)
theirs:close()
ns.unpersist(D .. "/uns-net")
T.check("unshare_file.released", not T.mounted(D .. "/uns-net") and not T.exists(D .. "/uns-net"))

for _, k in ipairs(KINDS) do
  ns.unpersist(D .. "/ns-" .. k)
  T.check("released." .. k, not T.mounted(D .. "/ns-" .. k) and not T.exists(D .. "/ns-" .. k))
end
print("done")
