-- fork, wait, try_wait, kill (function and method), exec, the getters.
-- arg[1] is the pid of the test process, nsrun's parent.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

-- Getters.
local stat = ns.read_file("/proc/self/stat")
local spid, sppid = stat:match("^(%d+) %b() %S+ (%d+)")
T.eq("getpid", ns.getpid(), tonumber(spid))
T.eq("getppid", ns.getppid(), tonumber(sppid))
T.eq("getppid.test_process", ns.getppid(), tonumber(arg[1]))
local status = ns.read_file("/proc/self/status")
local ruid, euid = status:match("\nUid:%s+(%d+)%s+(%d+)")
local rgid, egid = status:match("\nGid:%s+(%d+)%s+(%d+)")
T.eq("getuid", ns.getuid(), tonumber(ruid))
T.eq("geteuid", ns.geteuid(), tonumber(euid))
T.eq("getgid", ns.getgid(), tonumber(rgid))
T.eq("getegid", ns.getegid(), tonumber(egid))
T.put("uid", ns.getuid())
T.put("gid", ns.getgid())
T.put("pid", ns.getpid())

-- fork: exit codes.
local function code_of(f) return ns.fork(f):wait() end
local st = code_of(function() end)
T.eq("fork.none.code", st.code, 0)
T.eq("fork.none.success", st.success, true)
T.eq("fork.none.signal", st.signal, nil)
T.eq("fork.none.core", st.core_dumped, false)
T.eq("fork.none.timed_out", st.timed_out, false)
st = code_of(function() return 7 end)
T.eq("fork.seven", st.code, 7)
T.eq("fork.seven.success", st.success, false)
T.eq("fork.true", code_of(function() return true end).code, 0)
T.eq("fork.false", code_of(function() return false end).code, 1)
T.eq("fork.status_table", code_of(function() return {code = 4} end).code, 4)
T.eq("fork.error", code_of(function() error("boom in child") end).code, 1)
T.eq("fork.error_table", code_of(function() ns.read_file(D .. "/missing") end).code, 1)
T.eq("fork.os_exit", code_of(function() os.exit(9) end).code, 9)

-- The child has its own pid, and we are its parent.
local me = ns.getpid()
local p = ns.fork(function()
  if ns.getpid() == me then return 2 end
  if ns.getppid() ~= me then return 3 end
  return 0
end)
T.check("fork.pid", math.type(p.pid) == "integer" and p.pid ~= me)
T.eq("fork.parent", p:wait().code, 0)
T.eq("fork.wait_again", p:wait().code, 0)
T.has("fork.tostring", tostring(p), "process " .. p.pid)

-- The child works on a copy: changes do not come back.
local x = 1
ns.fork(function() x = 2 end):wait()
T.eq("fork.copy", x, 1)

-- try_wait: nil while running, then the status.
local sleeper = ns.fork(function() ns.exec({"sleep", "30"}) end)
T.eq("try_wait.running", sleeper:try_wait(), nil)
-- kill by name (the method), default and explicit.
T.check("kill.method", sleeper:kill("TERM"))
st = sleeper:wait()
T.eq("kill.term.signal", st.signal, 15)
T.eq("kill.term.code", st.code, 128 + 15)
T.eq("kill.term.success", st.success, false)
T.eq("try_wait.done", sleeper:try_wait().code, 143)
T.eq("kill.after_reaped", sleeper:kill("KILL"), false)

-- ns.kill by name with SIG prefix, by number, lower case.
local function killed_by(sig)
  local c = ns.fork(function() ns.exec({"sleep", "30"}) end)
  ns.kill(c.pid, sig)
  return c:wait()
end
st = killed_by("SIGKILL")
T.eq("kill.sigkill.signal", st.signal, 9)
T.eq("kill.sigkill.code", st.code, 137)
st = killed_by(10)
T.eq("kill.number.signal", st.signal, 10)
T.eq("kill.number.code", st.code, 138)
T.eq("kill.lower_case", killed_by("int").signal, 2)
T.eq("kill.term_name", killed_by("TERM").code, 143)

-- Default signal of the method is TERM.
local c = ns.fork(function() ns.exec({"sleep", "30"}) end)
c:kill()
T.eq("kill.method_default", c:wait().signal, 15)

-- Bad signals.
c = ns.fork(function() ns.exec({"sleep", "30"}) end)
T.errmsg("kill.bad_name", "unknown signal 'SIGNOPE'", ns.kill, c.pid, "SIGNOPE")
T.errmsg("kill.bad_name_method", "unknown signal 'BOGUS'", c.kill, c, "BOGUS")
T.errmsg("kill.bad_number", "out of range", ns.kill, c.pid, 1000)
T.eq("kill.bad_left_alive", c:try_wait(), nil)
ns.kill(c.pid, 0) -- signal 0 only checks
T.eq("kill.zero_left_alive", c:try_wait(), nil)
c:kill("KILL")
c:wait()

-- A child that kills itself.
T.eq("self_kill", code_of(function() ns.kill(ns.getpid(), "HUP") end).code, 128 + 1)

-- exec: env replaces the environment, cwd and argv0 apply.
st = code_of(function()
  ns.exec({"env"}, {env = {NSRUN_A = "one", NSRUN_B = 2}})
end)
T.eq("exec.env", st.code, 0)
st = code_of(function()
  ns.exec({"/bin/sh", "-c", 'echo "argv0=$0 pwd=$(pwd) foo=$FOO"'}, {env = {FOO = "bar"}, cwd = "/", argv0 = "my-argv0"})
end)
T.eq("exec.sh", st.code, 0)
st = code_of(function() ns.exec({"/bin/echo", "echo-with-args", "a b"}) end)
T.eq("exec.echo", st.code, 0)
st = code_of(function()
  ns.exec({"/bin/echo", "echo-with-options"}, {env = {X = "1"}, cwd = "/", argv0 = "echo0"})
end)
T.eq("exec.echo_options", st.code, 0)
st = code_of(function()
  ns.exec({"cat", "/proc/self/cmdline"}, {argv0 = "fancy-cat"})
end)
print() -- cat wrote no newline
T.eq("exec.argv0_cmdline", st.code, 0)
st = code_of(function() ns.exec({"sh", "-c", "exit 5"}) end)
T.eq("exec.status", st.code, 5)
st = code_of(function() ns.exec({"echo", 42, "path-searched"}) end)
T.eq("exec.path_search", st.code, 0)
st = code_of(function() ns.exec({"sh", "-c", "echo inherited=$NSRUN_TEST_DIR"}) end)
T.eq("exec.inherits_env", st.code, 0)

-- exec failures raise (the process is not replaced).
local e = T.errno("exec.missing", "ENOENT", ns.exec, {"nsrun-no-such-program"})
T.has("exec.missing_hint", e.hint, "PATH")
T.has("exec.missing_message", e.message, "nsrun-no-such-program")
T.errno("exec.missing_path", "ENOENT", ns.exec, {"/nonexistent-nsrun-dir/prog"})
ns.write_file(D .. "/not-executable", "#!/bin/sh\n", "0644")
e = T.errno("exec.eacces", "EACCES", ns.exec, {D .. "/not-executable"})
T.check("exec.eacces_hint", e.hint ~= nil)
T.errno("exec.bad_cwd", "ENOENT", ns.exec, {"true"}, {cwd = "/nonexistent-nsrun-dir"})
print("done")
