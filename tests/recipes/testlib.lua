-- Helpers for the integration-test recipes. The Rust side copies this file
-- next to every recipe.lua, so `local T = require "testlib"` works.
--
-- A check prints `ok NAME` when it holds and raises `FAIL NAME: ...` (so
-- the recipe exits 1 with the reason on stderr) when it does not; the Rust
-- test asserts the `ok` lines it expects, so a recipe that stops early fails.

local ns = require "nsrun"
local T = {}

T.dir = assert(os.getenv("NSRUN_TEST_DIR"), "NSRUN_TEST_DIR is not set")
-- Whether nsrun was started unprivileged (it stays true after T.root()).
T.user = ns.geteuid() ~= 0
T.uid, T.gid = ns.getuid(), ns.getgid()

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end
T.show = show

local function fail(name, msg)
  error("FAIL " .. name .. ": " .. msg, 3)
end

function T.ok(name)
  print("ok " .. name)
end

-- `val KEY=VALUE`, read by Done::value on the Rust side.
function T.put(key, value)
  print("val " .. key .. "=" .. tostring(value))
end

function T.check(name, cond, msg)
  if not cond then fail(name, msg or "condition is false") end
  T.ok(name)
end

function T.eq(name, got, want)
  if got ~= want then fail(name, "got " .. show(got) .. ", want " .. show(want)) end
  T.ok(name)
end

function T.ne(name, got, other)
  if got == other then fail(name, "got " .. show(got) .. ", which it must not be") end
  T.ok(name)
end

-- `s` contains `sub` (plain text).
function T.has(name, s, sub)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    fail(name, show(s) .. " does not contain " .. show(sub))
  end
  T.ok(name)
end

function T.lacks(name, s, sub)
  if type(s) == "string" and s:find(sub, 1, true) then
    fail(name, show(s) .. " contains " .. show(sub))
  end
  T.ok(name)
end

-- Call f(...) and return the error it raises (it must raise).
function T.raises(name, f, ...)
  local ok, e = pcall(f, ...)
  if ok then fail(name, "no error was raised") end
  T.ok(name)
  return e
end

-- Call f(...); it must raise an nsrun system error with this errno. The
-- error's fields and string form are checked too. Returns the error.
function T.errno(name, want, f, ...)
  local ok, e = pcall(f, ...)
  if ok then fail(name, "no error was raised (expected " .. want .. ")") end
  if type(e) ~= "table" then fail(name, "error is a " .. type(e) .. ", not a table: " .. show(e)) end
  if e.errno ~= want then fail(name, "errno " .. show(e.errno) .. ", want " .. want .. " (" .. tostring(e) .. ")") end
  if type(e.code) ~= "number" or e.code <= 0 then fail(name, "code " .. show(e.code)) end
  if type(e.op) ~= "string" or e.op == "" then fail(name, "op " .. show(e.op)) end
  if type(e.message) ~= "string" or not e.message:find("(" .. want .. ")", 1, true) then
    fail(name, "message " .. show(e.message) .. " lacks (" .. want .. ")")
  end
  local s = tostring(e)
  if not s:find(e.message, 1, true) then fail(name, "tostring " .. show(s) .. " lacks the message") end
  T.ok(name)
  return e
end

-- Call f(...); it must raise an error whose string form contains `sub`.
function T.errmsg(name, sub, f, ...)
  local ok, e = pcall(f, ...)
  if ok then fail(name, "no error was raised (expected " .. show(sub) .. ")") end
  local s = tostring(e)
  if not s:find(sub, 1, true) then fail(name, show(s) .. " does not contain " .. show(sub)) end
  T.ok(name)
  return e
end

-- Wait (bounded) until cond() is true.
function T.wait_until(what, cond, seconds)
  local deadline = os.time() + (seconds or 10)
  while not cond() do
    if os.time() > deadline then error("timed out waiting for " .. what, 2) end
  end
end

function T.exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

-- Become root in a new user namespace when unprivileged (a no-op as root).
function T.root()
  if ns.geteuid() == 0 then return end
  local uid, gid = ns.geteuid(), ns.getegid()
  ns.unshare("user")
  ns.uid_map("self", {{0, uid, 1}})
  ns.setgroups("self", "deny")
  ns.gid_map("self", {{0, gid, 1}})
end

-- T.root(), then new namespaces of `kinds` (default "mount") with all
-- mounts made private, so nothing done here reaches the host.
function T.isolate(kinds)
  T.root()
  ns.unshare(kinds or "mount")
  ns.mount(nil, "/", nil, "rec,private")
end

-- Write the maps of a child in a new user namespace: root inside is us.
function T.map(pid)
  ns.uid_map(pid, {{0, T.uid, 1}})
  ns.setgroups(pid, "deny")
  ns.gid_map(pid, {{0, T.gid, 1}})
end

-- In a child whose maps the parent writes: wait for both (T.map writes
-- the gid map last).
function T.wait_mapped()
  T.wait_until("the id maps", function() return ns.getuid() == 0 and ns.getgid() == 0 end)
end

-- ns.clone that also works unprivileged: then "user" is added, the parent
-- maps the child to root and the child waits for that before running fn.
function T.clone(kinds, fn)
  if ns.geteuid() == 0 then return ns.clone(kinds, fn) end
  local p = ns.clone("user," .. kinds, function()
    T.wait_mapped()
    return fn()
  end)
  T.map(p.pid)
  return p
end

-- Run fn in a forked child (for things that change the whole process, such
-- as pivot_root) and check it exits 0.
function T.child(name, fn)
  local st = ns.fork(fn):wait()
  if st.code ~= 0 then fail(name, "child exited with code " .. tostring(st.code)) end
  T.ok(name)
end

-- The mounts of this process's mount namespace (or those listed in another
-- mountinfo file): a table from mount point to its mountinfo line.
function T.mounts(file)
  local set = {}
  for line in ns.read_file(file or "/proc/self/mountinfo"):gmatch("[^\n]+") do
    local fields = {}
    for f in line:gmatch("%S+") do fields[#fields + 1] = f end
    set[fields[5]] = line
  end
  return set
end

function T.mounted(path)
  return T.mounts()[path] ~= nil
end

-- The file system type, source and per-mount options of the mount at path.
function T.fstype(path)
  local line = T.mounts()[path]
  return line and line:match(" %- (%S+) ")
end

function T.source(path)
  local line = T.mounts()[path]
  return line and line:match(" %- %S+ (%S+)")
end

function T.opts(path)
  local line = T.mounts()[path]
  return line and ("," .. line:match("^%S+ %S+ %S+ %S+ %S+ (%S+)") .. ",")
end

function T.hostname()
  return (ns.read_file("/proc/sys/kernel/hostname"):gsub("\n$", ""))
end

function T.domainname()
  return (ns.read_file("/proc/sys/kernel/domainname"):gsub("\n$", ""))
end

-- The namespaces of a sandbox: `kinds` as root, "user," .. kinds when
-- unprivileged (a new user namespace is what makes the rest possible).
-- kinds("") is no namespace at all as root and just "user" unprivileged.
function T.kinds(kinds)
  if T.user then
    if kinds == "" then return "user" end
    return "user," .. kinds
  end
  if kinds == "" then return nil end
  return kinds
end

return T
