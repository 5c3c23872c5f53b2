-- Argument "program": no fd beyond 0-2 reaches the program, except those in
-- keep_fds. Argument "sandbox": none of the recipe's open files reaches any
-- process of the sandbox, the init (or relay) included: the program could
-- open them through /proc/1/fd.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local what = ...

-- Open things nsrun's children must not get: a file (without O_CLOEXEC,
-- as Lua opens it), a namespace handle, the pipes of a running child.
local marker = T.dir .. "/marker-file"
local f = assert(io.open(marker, "w"))
f:write("secret\n")
f:flush()
local h = ns.open("net")
local other = ns.spawn { argv = { "cat" }, stdin = "pipe", stdout = "pipe", stderr = "pipe" }
T.check("nsrun has more fds", #ns.readdir("/proc/self/fd") >= 8)

local proc = function() ns.mount("proc", "/proc", "proc") end

if what == "program" then
  for _, m in ipairs(S.modes()) do
    local function run(script, keep)
      return ns.run {
        argv = { "sh", "-c", script },
        namespaces = m.namespaces, setup = m.setup, init = m.init,
        keep_fds = keep, stdin = "null",
      }
    end
    -- ls is a child of the shell: it lists the shell's fds, as exec'd.
    local st = run("ls /proc/$$/fd")
    T.eq(m.name .. ".only_0_1_2", st.stdout, "0\n1\n2\n")
    T.eq(m.name .. ".only_0_1_2.stderr", st.stderr, "")

    st = run("ls /proc/$$/fd; readlink /proc/$$/fd/" .. h.fd, { h.fd })
    T.eq(m.name .. ".keep_fds", st.stdout, "0\n1\n2\n" .. h.fd .. "\nnet:[" .. h.inode .. "]\n")
    T.eq(m.name .. ".keep_fds.stderr", st.stderr, "")
  end
elseif what == "sandbox" then
  -- Every fd of every other process in the sandbox, as the program sees it.
  local script = [[
    for p in /proc/[0-9]*; do
      [ "$p" = /proc/$$ ] && continue
      [ -e "$p/status" ] && echo "process ${p#/proc/}"
      for fd in "$p"/fd/*; do echo "$fd $(readlink "$fd")"; done 2>/dev/null
    done
  ]]
  local modes = {
    { name = "init", namespaces = S.kinds("pid,mount") },
    { name = "relay", namespaces = S.kinds("time,pid,mount") },
  }
  for _, m in ipairs(modes) do
    local st = ns.run { argv = { "sh", "-c", script }, namespaces = m.namespaces, setup = proc, stdin = "null" }
    T.eq(m.name .. ".code", st.code, 0)
    T.has(m.name .. ".sees_pid_1", st.stdout, "process 1\n")
    T.lacks(m.name .. ".no_recipe_file", st.stdout, "marker-file")
    T.lacks(m.name .. ".no_ns_handle", st.stdout, "net:[")
    -- Nor can the program read the recipe's file through another process
    -- (regular files only: reading a pipe could block).
    st = ns.run {
      argv = { "sh", "-c", 'for fd in /proc/[0-9]*/fd/*; do [ -f "$fd" ] && cat "$fd"; done 2>/dev/null; true' },
      namespaces = m.namespaces, setup = proc, stdin = "null",
    }
    T.lacks(m.name .. ".no_content", st.stdout, "secret")
  end
else
  error("argument: program or sandbox")
end

other.stdin:close()
T.eq("other.code", other:wait().code, 0)
h:close()
f:close()
T.ok("all")
