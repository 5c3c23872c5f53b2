-- Run unprivileged, without a user namespace: everything that needs a
-- capability fails with EPERM and a hint, and leaves nothing behind.
local ns = require "nsrun"
local T = require "testlib"

assert(ns.geteuid() ~= 0, "this recipe must run unprivileged")

local function eperm(name, hint, f)
  local e = T.errno(name, "EPERM", f)
  T.eq(name .. ".code", e.code, 1)
  T.check(name .. ".where", type(e.where) == "string" and e.where:match("^recipe%.lua:%d+$"), T.show(e.where))
  T.has(name .. ".hint", e.hint, hint)
  T.has(name .. ".tostring", tostring(e), "\nhint: " .. e.hint)
  return e
end

local e = eperm("mount", "CAP_SYS_ADMIN", function() ns.mount("tmpfs", T.dir, "tmpfs") end)
T.eq("mount.message", e.message, "mount tmpfs on " .. T.dir .. ": Operation not permitted (EPERM)")
eperm("mount_table", "CAP_SYS_ADMIN", function() ns.mount{source = "tmpfs", target = T.dir, fstype = "tmpfs"} end)
eperm("bind", "CAP_SYS_ADMIN", function() ns.bind(T.dir, T.dir) end)
eperm("umount", "CAP_SYS_ADMIN", function() ns.umount("/proc") end)
eperm("pivot_root", "CAP_SYS_ADMIN", function() ns.pivot_root(T.dir) end)
eperm("chroot", "CAP_SYS_ADMIN", function() ns.chroot(T.dir) end)

e = eperm("sethostname", "unshare \"user,uts\"", function() ns.sethostname("nsrun-eperm") end)
T.eq("sethostname.message", e.message, "sethostname nsrun-eperm: Operation not permitted (EPERM)")
eperm("setdomainname", "unshare \"user,uts\"", function() ns.setdomainname("nsrun-eperm") end)

e = eperm("unshare", "CAP_SYS_ADMIN", function() ns.unshare("mount") end)
T.eq("unshare.message", e.message, "unshare mount: Operation not permitted (EPERM)")
eperm("unshare_net", "CAP_SYS_ADMIN", function() ns.unshare({"net", "uts"}) end)
eperm("clone", "CAP_SYS_ADMIN", function() ns.clone("net", function() return 0 end) end)
eperm("setns", "CAP_SYS_ADMIN", function() ns.setns(ns.open("uts")) end)

eperm("setuid", "mapped", function() ns.setuid(0) end)
eperm("setgid", "mapped", function() ns.setgid(0) end)
eperm("setgroups_list", "mapped", function() ns.setgroups_list({}) end)

local e2 = T.errno("kill_init", "EPERM", function() ns.kill(1, 0) end)
T.eq("kill_init.code", e2.code, 1)

-- persist fails and removes the placeholder file it created.
local pe = T.errno("persist", "EPERM", function() ns.persist("net", "self", T.dir .. "/netns") end)
T.check("persist.no_leftover_file", not T.exists(T.dir .. "/netns"))

-- Nothing changed.
T.eq("still_unprivileged", ns.geteuid(), T.uid)

-- persist is a bind mount: the same hint as for mount.
T.has("persist.hint", pe.hint, "CAP_SYS_ADMIN")
print("done")
