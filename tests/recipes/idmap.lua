-- uid_map, gid_map, setgroups; setuid, setgid, setgroups_list in a user
-- namespace with a mapping.
local ns = require "nsrun"
local T = require "testlib"

local function map_text(pid, which)
  local t = ns.read_file("/proc/" .. pid .. "/" .. which)
  return (t:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

if T.user then
  -- Map ourselves to root, step by step, in a child.
  T.child("self_map", function()
    ns.unshare("user")
    assert(ns.getuid() == 65534, "an unmapped uid reads as the overflow uid")
    ns.uid_map("self", {{0, T.uid, 1}})
    assert(ns.getuid() == 0 and ns.geteuid() == 0, "uid " .. ns.getuid())
    assert(map_text("self", "uid_map") == "0 " .. T.uid .. " 1", map_text("self", "uid_map"))
    local e = T.errno("gid_map.needs_deny", "EPERM", ns.gid_map, "self", {{0, T.gid, 1}})
    assert(e.hint and e.hint:find("setgroups", 1, true), "hint " .. tostring(e.hint))
    ns.setgroups("self", "deny")
    assert(ns.read_file("/proc/self/setgroups") == "deny\n", "setgroups not deny")
    ns.gid_map("self", {{inside = 0, outside = T.gid, count = 1}})
    assert(ns.getgid() == 0 and ns.getegid() == 0, "gid " .. ns.getgid())
    T.errno("uid_map.only_once", "EPERM", ns.uid_map, "self", {{0, T.uid, 1}})
    -- Identity switches within the mapping.
    ns.setgid(0)
    ns.setuid(0)
    T.errno("setgroups_list.denied", "EPERM", ns.setgroups_list, {0})
    local e2 = T.errno("setuid.unmapped", "EINVAL", ns.setuid, 1000)
    assert(e2.hint and e2.hint:find("mapped", 1, true), "hint " .. tostring(e2.hint))
    T.errno("setgid.unmapped", "EINVAL", ns.setgid, 1000)
  end)

  -- Ids other than our own need newuidmap, which cannot map the caller
  -- from inside its new user namespace.
  T.child("helper_needed", function()
    ns.unshare("user")
    T.errmsg("uid_map.other_id", "newuidmap", ns.uid_map, "self", {{0, 0, 1}})
  end)

  -- From the parent, several ranges go through newuidmap; without
  -- /etc/subuid entries it fails and says so. Where the setuid helper is
  -- not installed (package uidmap), that is what the message says: the
  -- test says which it expects (NSRUN_TEST_NEWUIDMAP).
  local p = ns.clone("user", function()
    T.wait_until("never", function() return false end, 5)
  end)
  local e = T.errmsg("uid_map.helper_fails", "newuidmap", ns.uid_map, p.pid, {{0, T.uid, 1}, {1, 100000, 10}})
  if os.getenv("NSRUN_TEST_NEWUIDMAP") == "missing" then
    T.has("uid_map.helper_missing", tostring(e), "newuidmap not found")
    T.has("uid_map.helper_package", tostring(e), "apt install uidmap")
  else
    T.has("uid_map.helper_message", tostring(e), "subuid")
  end
  p:kill("KILL")
  p:wait()
end

-- A child in a new user namespace mapped by its parent switches identity.
local p = ns.clone("user", function()
  T.wait_mapped()
  if T.user then
    ns.setgid(0)
    ns.setuid(0)
    assert(ns.getuid() == 0 and ns.getgid() == 0)
    return 0
  end
  assert(map_text("self", "uid_map") == "0 0 1 1000 5000 10", map_text("self", "uid_map"))
  assert(map_text("self", "gid_map") == "0 0 1 1000 6000 10", map_text("self", "gid_map"))
  ns.setgid(1005)
  ns.setgroups_list({1001, 1002})
  ns.setuid(1003)
  assert(ns.getuid() == 1003 and ns.geteuid() == 1003, "uid " .. ns.getuid())
  assert(ns.getgid() == 1005 and ns.getegid() == 1005, "gid " .. ns.getgid())
  local groups = ns.read_file("/proc/self/status"):match("\nGroups:%s*([^\n]*)")
  assert(groups:gsub("%s+$", "") == "1001 1002", "groups " .. T.show(groups))
  -- Having left uid 0, no way back.
  T.errno("setuid.no_way_back", "EPERM", ns.setuid, 0)
  return 0
end)
if T.user then
  T.map(p.pid)
else
  ns.uid_map(p.pid, {{0, 0, 1}, {inside = 1000, outside = 5000, count = 10}})
  ns.setgroups(p.pid, "allow")
  ns.gid_map(p.pid, {{0, 0, 1}, {1000, 6000, 10}})
end
T.eq("identity", p:wait().code, 0)
print("done")
