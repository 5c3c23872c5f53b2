-- mount_proc: a fresh proc before setup (as unshare --mount-proc), at /proc
-- or a given path, showing the new pid namespace; refused without a new
-- mount namespace (it would mount on the host's) and for a bad value.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

for _, init in ipairs({ true, false }) do
  local name = init and "init" or "noinit"
  local r = ns.run { argv = { "sh", "-c", "ls /proc | grep -c '^[0-9]'; cat /proc/self/stat | cut -d' ' -f1" },
    namespaces = S.kinds("pid,mount"), mount_proc = true, init = init }
  local count, pid = r.stdout:match("^(%d+)\n(%d+)\n$")
  T.check(name .. ".runs", r.code == 0, r.stderr)
  -- The shell, ls and grep, and the init when there is one.
  T.check(name .. ".only_the_sandbox", tonumber(count) and tonumber(count) <= 4, r.stdout)
  T.check(name .. ".new_pid_ns", pid ~= nil and tonumber(pid) < 10, r.stdout)
end

-- Mounted before setup: setup sees it.
local seen
local r = ns.run { argv = { "true" }, namespaces = S.kinds("pid,mount"), mount_proc = true,
  setup = function() seen = ns.read_file("/proc/1/stat"):match("^1 ") ~= nil; if not seen then error("no fresh proc in setup") end end }
T.check("before_setup", r.code == 0, r.stderr)

-- Another path.
local dir = T.dir .. "/p"
ns.mkdir(dir)
r = ns.run { argv = { "sh", "-c", "test -e " .. dir .. "/1/stat && ! test -e /proc/1/environ.x" },
  namespaces = S.kinds("pid,mount"), mount_proc = dir }
T.check("path", r.code == 0, r.stderr)

-- A path must be absolute and exist: it is not created (that would leave a
-- directory on the host's filesystem).
T.errmsg("relative", "mount_proc must be an absolute path",
  ns.spawn, { argv = { "true" }, namespaces = S.kinds("pid,mount"), mount_proc = "proc" })
local missing = T.dir .. "/no-such-dir"
local e = T.errno("missing", "ENOENT", ns.spawn,
  { argv = { "true" }, namespaces = S.kinds("pid,mount"), mount_proc = missing })
T.has("missing.names_it", tostring(e), missing)
T.eq("missing.not_created", T.exists(missing), false)
S.no_children("missing.no_child")
T.errmsg("needs_mount", "mount_proc requires a new mount namespace",
  ns.spawn, { argv = { "true" }, namespaces = S.kinds("pid"), mount_proc = true })
T.errmsg("bad_value", "mount_proc must be true or a path",
  ns.spawn, { argv = { "true" }, namespaces = S.kinds("pid,mount"), mount_proc = 5 })
-- Without a new pid namespace: root may show the host's; unprivileged, the
-- kernel refuses and the hint says what is missing.
if T.user then
  T.errmsg("without_pid", "create a new pid namespace too",
    ns.spawn, { argv = { "true" }, namespaces = "user,mount", mount_proc = true })
else
  T.check("without_pid", ns.run { argv = { "true" }, namespaces = "mount", mount_proc = true }.code == 0)
end
-- The host's /proc is untouched.
T.check("host_proc", tonumber(ns.read_file("/proc/self/stat"):match("^(%d+)")) == ns.getpid())
T.ok("all")
