-- disable_userns and time namespace offsets.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

-- Control: without it, a nested user namespace can be made.
local r = ns.run { argv = { "unshare", "-U", "true" }, namespaces = "user,mount,pid" }
T.eq("control.nested", r.code, 0)

local locked = { namespaces = "user,mount,pid", disable_userns = true }
r = H.run(locked, { argv = { "unshare", "-U", "true" } })
T.ne("disabled.unshare", r.code, 0)
T.has("disabled.unshare.msg", r.stderr, "No space left on device")
-- Directly: unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER) fail with ENOSPC.
r = H.perl(locked, 'syscall(272, 0x10000000) == -1 and print 0+$!, "\\n"')
T.eq("disabled.syscall", r.stdout, "28\n")
-- Other namespaces still work (uts in a nested unshare fails only for
-- lack of privilege over the outer namespaces, not for the limit).
r = H.run(locked, { argv = { "id", "-u" } })
T.eq("disabled.uid", r.stdout, "0\n")
-- Raising the limit from inside changes only the inner namespace's own
-- sysctl: the outer one (1, used up) still applies.
r = H.run(locked, { argv = { "sh", "-c", "echo 100 > /proc/sys/user/max_user_namespaces; unshare -U true" } })
T.ne("disabled.sysctl_locked", r.code, 0)
T.has("disabled.sysctl_locked.msg", r.stderr, "No space left on device")
-- With a non-root uid and setup mounts (the /proc opened before setup).
local o = H.nonroot()
o.namespaces = "user,mount,pid"
o.disable_userns = true
o.setup = function() ns.mount("proc", "/proc", "proc", "nosuid,nodev,noexec") end
r = H.run(o, { argv = { "sh", "-c", "id -u; unshare -U true 2>/dev/null; echo $?" } })
T.eq("disabled.nonroot", r.stdout, (T.user and T.uid or 1000) .. "\n1\n")
-- Also with the seccomp preset on top.
r = H.run(locked, { argv = { "unshare", "-U", "true" }, seccomp = "default" })
T.ne("disabled.with_seccomp", r.code, 0)

T.errmsg("needs_user", 'disable_userns requires a new user namespace: add "user" to namespaces',
  ns.run, { argv = { "true" }, namespaces = "pid", disable_userns = true })

-- Time namespace: uptime and CLOCK_BOOTTIME move by the offset.
local host_up = tonumber(ns.read_file("/proc/uptime"):match("^(%S+)"))
local OFF = 10 * 86400
r = ns.run { argv = { "cat", "/proc/uptime" }, namespaces = H.kinds("time"), time_offsets = { boottime = OFF, monotonic = 3600 } }
local up = tonumber(r.stdout:match("^(%S+)"))
T.check("time.uptime", up and up - host_up >= OFF - 5 and up - host_up <= OFF + 30, r.stdout .. " vs " .. host_up)
r = ns.run { argv = { "uptime", "-p" }, namespaces = H.kinds("time"), time_offsets = { boottime = OFF } }
T.has("time.uptime_p", r.stdout, "week")
r = H.perl({ namespaces = H.kinds("time"), time_offsets = { monotonic = 3600 } },
  'my $t = pack("qq", 0, 0); syscall(228, 1, $t); my ($s) = unpack("qq", $t); print "$s\\n"')
local mono = tonumber(r.stdout)
local r0 = H.perl({ namespaces = H.kinds("") },
  'my $t = pack("qq", 0, 0); syscall(228, 1, $t); my ($s) = unpack("qq", $t); print "$s\\n"')
T.check("time.monotonic", mono and mono - tonumber(r0.stdout) >= 3595, r.stdout .. " vs " .. r0.stdout)
print("done")
