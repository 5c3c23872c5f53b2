-- ns.setns into a user namespace: root there by default (as nsenter), the
-- ids kept with preserve_credentials. The target maps our uid to 1000, and
-- (as root) uid 0 inside to an unused id outside.
local ns = require "nsrun"
local T = require "testlib"

local uid, gid = ns.getuid(), ns.getgid()
local p = ns.spawn{
  argv = {"sleep", "30"},
  namespaces = "user",
  uid_map = T.user and {{1000, uid, 1}} or {{0, 100000, 1}, {1000, uid, 1}},
  gid_map = T.user and {{1000, gid, 1}} or {{0, 100000, 1}, {1000, gid, 1}},
}

local function ids() return ns.getuid() .. ":" .. ns.getgid() end

if T.user then
  -- Root is not mapped there: the switch fails, and says how to keep the ids.
  T.child("creds.default_unmapped", function()
    local ok, e = pcall(ns.setns, p.pid, "user")
    assert(not ok, "joined and became root where root is not mapped")
    assert(tostring(e):find("setgid 0 after joining a user namespace", 1, true), tostring(e))
    assert(tostring(e):find("preserve_credentials", 1, true), tostring(e))
  end)
else
  T.child("creds.default_root", function()
    ns.setns(p.pid, "user")
    assert(ids() == "0:0", "ids " .. ids())
  end)
  T.child("creds.default_root_handle", function()
    ns.setns(p:ns("user"))
    assert(ids() == "0:0", "ids " .. ids())
  end)
end
T.child("creds.preserve_pid", function()
  ns.setns(p.pid, "user", {preserve_credentials = true})
  assert(ids() == "1000:1000", "ids " .. ids())
end)
T.child("creds.preserve_path", function()
  ns.setns("/proc/" .. p.pid .. "/ns/user", nil, {preserve_credentials = true})
  assert(ids() == "1000:1000", "ids " .. ids())
end)
T.child("creds.preserve_handle", function()
  ns.setns(p:ns("user"), "user", {preserve_credentials = true})
  assert(ids() == "1000:1000", "ids " .. ids())
end)
T.errmsg("creds.bad_option", "unknown option 'preserve_credential' (did you mean 'preserve_credentials'?)",
  ns.setns, p.pid, "user", {preserve_credential = true})
T.errmsg("creds.bad_type", "option 'preserve_credentials' must be a boolean",
  ns.setns, p.pid, "user", {preserve_credentials = 1})
-- Wrong kinds, for every kind: a clear message and nothing joined.
for _, k in ipairs({"user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time"}) do
  local other = k == "net" and "uts" or "net"
  T.errmsg("wrong_kind." .. k, "is a " .. other .. " namespace, not a " .. k .. " namespace",
    ns.setns, "/proc/self/ns/" .. other, k)
end
T.eq("ids.unchanged", ids(), uid .. ":" .. gid)
p:kill("KILL")
p:wait()
print("done")
