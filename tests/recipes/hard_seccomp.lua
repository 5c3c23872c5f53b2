-- Seccomp: a denied call fails with the chosen errno, a kill rule ends the
-- process with SIGSYS, the "default" preset, allow lists, no_new_privs.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

local K = H.kinds("")
local dir = T.dir .. "/made"
-- perl's mkdir, printing the errno it got (0: it worked).
local MKDIR = 'if (mkdir($ARGV[0])) { print "0\\n"; rmdir($ARGV[0]) } else { print 0+$!, "\\n" }'

local r = H.perl({ namespaces = K }, MKDIR, dir)
T.eq("control.mkdir", r.stdout, "0\n")

r = H.perl({ namespaces = K, seccomp = { deny = { "mkdir", "mkdirat" }, errno = "EACCES" } }, MKDIR, dir)
T.eq("errno.EACCES", r.stdout, "13\n")
T.eq("errno.exit", r.code, 0)

r = H.perl({ namespaces = K, seccomp = { deny = { "mkdir", "mkdirat" }, errno = "ENOTSUP" } }, MKDIR, dir)
T.eq("errno.ENOTSUP", r.stdout, "95\n")

r = H.perl({ namespaces = K, seccomp = { deny = { "mkdir", "mkdirat" } } }, MKDIR, dir)
T.eq("errno.default_EPERM", r.stdout, "1\n")

r = H.perl({ namespaces = K, seccomp = { deny = { "mkdir", "mkdirat" }, action = "kill" } }, MKDIR, dir)
T.eq("kill.signal", r.signal, 31)
T.eq("kill.code", r.code, 128 + 31)
T.eq("kill.not_success", r.success, false)

-- Killed behind the init of a pid namespace: the status still says SIGSYS.
r = H.perl({ namespaces = H.kinds("pid"), seccomp = { deny = { "mkdir", "mkdirat" }, action = "kill" } }, MKDIR, dir)
T.eq("kill.pidns.signal", r.signal, 31)

-- log: the call runs.
r = H.perl({ namespaces = K, seccomp = { deny = { "mkdir", "mkdirat" }, action = "log" } }, MKDIR, dir)
T.eq("log.runs", r.stdout, "0\n")

-- A call perl makes only when asked: killed there, not at start-up.
local PPID = 'my $p = getppid(); print(($p < 0 ? 0 : 1), "\\n")'
T.eq("control.getppid", H.perl({ namespaces = K }, PPID).stdout, "1\n")
r = H.perl({ namespaces = K, seccomp = { deny = { "getppid" }, action = "kill" } }, PPID)
T.eq("deny.getppid.killed", r.signal, 31)

-- default = "errno" with an allow list that lacks execve: the exec fails
-- and spawn says so in the parent.
local e = T.raises("allowlist.exec_denied", ns.run, {
  argv = { "true" },
  namespaces = K,
  seccomp = { default = "errno", errno = "ENOSYS", allow = { "write", "exit_group", "close", "chdir", "fcntl" } },
})
T.has("allowlist.exec_denied.msg", tostring(e), "ENOSYS")

-- The preset: no mount, ptrace, new user namespaces; no_new_privs is on.
local preset = { namespaces = H.kinds("mount"), seccomp = "default" }
local st = H.status(preset)
T.eq("preset.nnp", st.NoNewPrivs, "1")
T.eq("preset.mode", st.Seccomp, "2")
r = H.run(preset, { argv = { "unshare", "-U", "true" } })
T.ne("preset.unshare_user", r.code, 0)
T.has("preset.unshare_user.msg", r.stderr, "Operation not permitted")
r = H.run(preset, { argv = { "mount", "-t", "tmpfs", "none", "/mnt" } })
T.ne("preset.mount", r.code, 0)
-- unshare without CLONE_NEWUSER still works (the argument condition).
r = H.run(preset, { argv = { "unshare", "-u", "true" } })
T.eq("preset.unshare_uts_allowed", r.code, 0)
-- ptrace (PTRACE_TRACEME = 0) fails with EPERM.
r = H.perl(preset, 'syscall(101, 0, 0, 0, 0) == -1 and print 0+$!, "\\n"')
T.eq("preset.ptrace", r.stdout, "1\n")
-- clone3 answers ENOSYS so that libc falls back to clone.
r = H.perl(preset, 'syscall(435, 0, 0) == -1 and print 0+$!, "\\n"')
T.eq("preset.clone3", r.stdout, "38\n")

-- The rest of the preset, call by call, against the kernel: each call once
-- in a sandbox with the preset and once in the same sandbox without it. The
-- arguments make each call fail in a way of its own without the filter
-- (EBADF, EFAULT, ENOTTY...) or succeed harmlessly, so EPERM can only be
-- the filter's. x86_64 numbers; arg[1] is the architecture.
if arg[1] ~= "x86_64" then
  print("skip preset.calls: the call numbers below are x86_64's, this is " .. tostring(arg[1]))
else
  local CALLS = [[
my @calls = (
  ["fsopen", 430, "tmpfs", 0],
  ["fspick", 433, -100, "/", 0],
  ["open_tree", 428, -100, "/", 0],
  ["fsconfig", 431, -1, 0, 0, 0, 0],
  ["fsmount", 432, -1, 0, 0],
  ["move_mount", 429, -1, "", -1, "", 0],
  ["mount_setattr", 442, -1, "", 0, 0, 0],
  ["open_tree_attr", 467, -1, "", 0, 0, 0],
  ["io_uring_setup", 425, 1, 0],
  ["io_uring_enter", 426, -1, 0, 0, 0, 0, 0],
  ["io_uring_register", 427, -1, 0, 0, 0],
  ["pidfd_getfd", 438, -1, 0, 0],
  ["keyctl", 250, 0, -3, 0],
  ["setns", 308, -1, 0],
  ["bpf", 321, -1, 0, 0],
  ["perf_event_open", 298, 0, 0, -1, -1, 0],
  ["process_vm_readv", 310, $$, 0, 0, 0, 0, 0],
  ["name_to_handle_at", 303, -100, "/", 0, 0, 0],
  ["personality.addr_no_randomize", 135, 0x0040000],
  ["ioctl.tiocsti", 16, 0, 0x5412, 0],
  ["ioctl.tioclinux", 16, 0, 0x541C, 0],
);
for my $c (@calls) {
  # syscall's first argument is a scalar: the number, then the rest.
  my ($name, $nr, @args) = @$c;
  $! = 0;
  my $r = syscall($nr, @args);
  print "$name ", ($r == -1 ? 0+$! : 0), "\n";
}
# Allowed by the preset: the persona query, and an ioctl that is not TIOCSTI.
$! = 0; my $q = syscall(135, 0xffffffff); print "personality.query ", ($q == -1 ? 0+$! : 0), "\n";
$! = 0; my $t = syscall(16, 0, 0x5401, 0); print "ioctl.tcgets ", ($t == -1 ? 0+$! : 0), "\n";
]]
  local function errnos(opts)
    local r = H.perl(opts, CALLS)
    if r.code ~= 0 then error("the calls did not run: " .. r.code .. " " .. r.stderr) end
    local out = {}
    for name, e in r.stdout:gmatch("(%S+) (%d+)\n") do out[name] = tonumber(e) end
    return out
  end
  local box = { namespaces = H.kinds("mount") }
  local with = errnos({ namespaces = box.namespaces, seccomp = "default" })
  local without = errnos(box)
  for name, e in pairs(with) do
    if name == "personality.query" or name == "ioctl.tcgets" then
      T.eq("preset.allows." .. name, e, without[name])
    else
      T.eq("preset.denies." .. name, e, 1)
      T.ne("control.preset." .. name, without[name], 1)
    end
  end
  T.eq("preset.calls_counted", #(function() local l = {} for k in pairs(with) do l[#l + 1] = k end return l end)(), 23)

  -- x32: the number with bit 30 set. This kernel may have x32 off (then
  -- the call fails with ENOSYS); under a filter the process is killed
  -- before the kernel looks, whatever the filter's own rules.
  local X32 = 'syscall(0x40000000 + 39); print "survived\n"'
  r = H.perl({ namespaces = K }, X32)
  T.eq("control.x32", r.signal, nil)
  T.eq("x32.preset", H.perl({ namespaces = K, seccomp = "default" }, X32).signal, 31)
  T.eq("x32.deny_list", H.perl({ namespaces = K, seccomp = { deny = { "mount" } } }, X32).signal, 31)
  T.eq("x32.allow_log", H.perl({ namespaces = K, seccomp = { default = "log", allow = { "read" } } }, X32).signal, 31)
end

-- no_new_privs = false with a filter: only with CAP_SYS_ADMIN.
if not T.user then
  st = H.status { seccomp = { deny = { "mount" } }, no_new_privs = false }
  T.eq("nnp_false.root", st.NoNewPrivs, "0")
  T.eq("nnp_false.root.mode", st.Seccomp, "2")
end

T.errmsg("unknown", "unknown system call 'mkdri' (did you mean 'mkdir'?)",
  ns.run, { argv = { "true" }, seccomp = { deny = { "mkdri" } } })
print("done")
