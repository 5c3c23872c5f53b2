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

-- no_new_privs = false with a filter: only with CAP_SYS_ADMIN.
if not T.user then
  st = H.status { seccomp = { deny = { "mount" } }, no_new_privs = false }
  T.eq("nnp_false.root", st.NoNewPrivs, "0")
  T.eq("nnp_false.root.mode", st.Seccomp, "2")
end

T.errmsg("unknown", "unknown system call 'mkdri' (did you mean 'mkdir'?)",
  ns.run, { argv = { "true" }, seccomp = { deny = { "mkdri" } } })
print("done")
