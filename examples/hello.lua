-- hello.lua: a rootless container out of the kernel's parts.
--
--   nsrun examples/hello.lua            (as any user)
--
-- New user, mount, uts and pid namespaces; uid 0 inside; its own hostname;
-- a fresh /proc that shows only its own processes.
local ns = require "nsrun"

local uid, gid = ns.getuid(), ns.getgid()

-- Become root of a new user namespace: map our own ids to 0. An
-- unprivileged process must deny setgroups before it may write gid_map.
ns.unshare("user")
ns.uid_map("self", {{0, uid, 1}})
ns.setgroups("self", "deny")
ns.gid_map("self", {{0, gid, 1}})

-- The new pid namespace takes effect for our children: the next fork is
-- its PID 1. The new mount namespace starts private (as with unshare(1)):
-- nothing mounted here leaks back to the host.
ns.unshare("mount,uts,pid")

local child = ns.fork(function()
  ns.sethostname("hello")
  ns.mount("proc", "/proc", "proc", "nosuid,nodev,noexec")

  print(("uid %d (outside: %d), gid %d, pid %d, hostname %s"):format(
    ns.getuid(), uid, ns.getgid(), ns.getpid(),
    ns.read_file("/proc/sys/kernel/hostname"):gsub("\n", "")))
  print("processes I can see:")
  for _, name in ipairs(ns.readdir("/proc")) do
    local pid = tonumber(name)
    -- A process may be gone between the listing and the read.
    local ok, cmdline = pcall(ns.read_file, "/proc/" .. name .. "/cmdline")
    if pid and ok then
      print(("  %5d  %s"):format(pid, (cmdline:gsub("%z", " "))))
    end
  end
end)

return child:wait()
