-- A set-user-id root program inside `root = DIR` (arg[1], prepared by the
-- test as root): the sandbox binds the root nosuid, so a uid 1000 sandbox
-- stays euid 1000. The control runs the same file from the host's file
-- system (no nosuid) and gets euid 0 — as root only: unprivileged, the
-- file's owner (host root) is not mapped and the kernel ignores the bit.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local img = arg[1]
local uid_map, gid_map
if T.user then
  uid_map, gid_map = { { 1000, T.uid, 1 } }, { { 1000, T.gid, 1 } }
else
  uid_map, gid_map = { { 0, 0, 1 }, { 1000, 1000, 1 } }, { { 0, 0, 1 }, { 1000, 1000, 1 } }
end
local function box(argv)
  -- no_new_privs would stop the set-user-id bit by itself: off, so only
  -- nosuid is tested.
  return sandbox.run { root = img, binds = { { "/usr", "/usr", ro = true } }, proc = "/proc",
    uid = 1000, gid = 1000, uid_map = uid_map, gid_map = gid_map, no_new_privs = false, seccomp = false, tty_guard = false, argv = argv }
end
local r = box { "/suid-id", "-u" }
T.eq("nosuid.euid", r.stdout, "1000\n")
r = box { "cat", "/proc/self/mountinfo" }
local top
for line in r.stdout:gmatch("[^\n]+") do
  local point, opts = line:match("^%S+ %S+ %S+ %S+ (%S+) (%S+)")
  if point == "/" then top = "," .. opts .. "," end
end
T.check("nosuid.mount_flags", top and top:find(",nosuid,") and top:find(",nodev,"), r.stdout .. r.stderr)
if not T.user then
  r = ns.run { namespaces = { "user", "mount", "pid" }, uid_map = uid_map, gid_map = gid_map,
    uid = 1000, gid = 1000, no_new_privs = false, seccomp = false, tty_guard = false, argv = { img .. "/suid-id", "-u" } }
  T.eq("control.euid0", r.stdout, "0\n")
end
print("done")
