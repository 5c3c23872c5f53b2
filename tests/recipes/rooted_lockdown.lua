-- The sandbox's /proc and /sys locked down like runc's, unmask to turn it
-- off, remount_ro recursive, and mounts ordered parents first. Writes go
-- only to namespaced sysctls (the sandbox's own uts namespace): a test
-- never writes a host-wide one.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local function sh(script, extra)
  local o = {
    binds = { { "/usr", "/usr", ro = true } },
    symlinks = { ["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64", ["/sbin"] = "usr/sbin" },
    proc = "/proc", hostname = "box", argv = { "sh", "-c", script },
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return sandbox.run(o)
end
-- Mount point -> options, from a sandbox's mountinfo.
local function mounts(text)
  local m = {}
  for line in text:gmatch("[^\n]+") do
    local f = {}
    for x in line:gmatch("%S+") do f[#f + 1] = x end
    if f[5] then m[f[5]] = "," .. f[6] .. "," end
  end
  return m
end
local MI = "cat /proc/self/mountinfo; echo ===; "

local r = sh(MI .. "stat -c %a /proc/timer_list; wc -c < /proc/keys; echo x > /proc/sys/kernel/hostname; cat /proc/sys/kernel/hostname")
local mi, rest = r.stdout:match("^(.-)===\n(.*)$")
assert(mi, r.stdout .. r.stderr)
local m = mounts(mi)
T.check("proc.sys_ro", m["/proc/sys"] and m["/proc/sys"]:find(",ro,"), mi)
T.check("proc.irq_ro", m["/proc/irq"] and m["/proc/irq"]:find(",ro,"), mi)
T.check("proc.masked_mode", rest:match("^444\n"), rest)
T.check("proc.keys_empty", rest:match("^444\n0\n"), rest)
if not T.user then
  -- Root of a user namespace mapped to the host's root: without the
  -- lock-down this write works (see unmask below).
  T.check("proc.write_erofs", r.stderr:find("Read%-only file system") and rest:match("\nbox\n$"), rest .. r.stderr)
end
if T.exists("/proc/kcore") then
  r = sh("wc -c < /proc/kcore")
  T.eq("proc.kcore_empty", r.stdout, "0\n")
else
  print("skip proc.kcore_empty: this kernel has no /proc/kcore")
end

r = sh(MI .. "stat -c %a /proc/timer_list; echo boxy > /proc/sys/kernel/hostname; cat /proc/sys/kernel/hostname", { unmask = true })
mi, rest = r.stdout:match("^(.-)===\n(.*)$")
assert(mi, r.stdout .. r.stderr)
m = mounts(mi)
T.check("unmask.sys_rw", m["/proc/sys"] == nil and not m["/proc/keys"], mi)
T.check("unmask.timer_list", rest:match("^400\n"), rest)
if not T.user then
  T.check("unmask.write_works", rest:match("\nboxy\n$"), rest .. r.stderr)
end
r = sh(MI, { unmask = { "/proc/timer_list", "/proc/sys" } })
m = mounts(r.stdout)
T.check("unmask.some", not m["/proc/timer_list"] and not m["/proc/sys"] and m["/proc/keys"] and m["/proc/irq"], r.stdout)
T.errmsg("unmask.bad_path", "unmask[1]: /proc/bogus is not a path the sandbox masks", sandbox.run,
  { argv = { "true" }, proc = "/proc", unmask = { "/proc/bogus" } })
T.errmsg("unmask.needs_proc", "nothing is: give proc or sys", sandbox.run,
  { argv = { "true" }, unmask = { "/proc/kcore" } })

r = sh(MI .. "ls -A /sys/firmware | wc -l; touch /sys/x; echo rc=$?", { sys = "/sys" })
mi, rest = r.stdout:match("^(.-)===\n(.*)$")
m = mounts(mi or "")
T.check("sys.firmware_masked", m["/sys/firmware"] and m["/sys/firmware"]:find(",ro,") and m["/sys"]:find(",ro,")
  and rest:match("^0\nrc=1\n$"), r.stdout .. r.stderr)

r = sh("touch /tmp/x && echo wrote", { tmpfs = { "/tmp" } })
T.eq("remount_ro.control", r.stdout, "wrote\n")
r = sh("touch /tmp/x && echo wrote; touch /y; echo done", { tmpfs = { "/tmp" }, remount_ro = { "/" } })
T.check("remount_ro.recursive", r.stdout == "done\n" and r.stderr:find("/tmp/x': Read%-only file system"), r.stdout .. r.stderr)

-- A tmpfs given after a bind below it still goes first: it would hide it.
r = sh("ls /opt/share | grep -c .", { binds = { { "/usr", "/usr", ro = true }, { "/usr/share", "/opt/share", ro = true } },
  tmpfs = { "/opt" } })
T.check("mounts.order", tonumber(r.stdout) and tonumber(r.stdout) > 0, r.stdout .. r.stderr)
print("done")
