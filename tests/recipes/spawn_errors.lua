-- Failures before exec are raised by ns.spawn / ns.run in the parent, with
-- the child's message and the recipe's file:line, and leave no child.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local ran = T.dir .. "/program-ran"
local PATH = { PATH = "/usr/local/bin:/usr/bin:/bin" }
local function at(line) return "recipe.lua:" .. line .. ": " end

local modes = {
  { name = "plain", kinds = S.kinds("") },
  { name = "mount", kinds = S.kinds("mount") },
  { name = "init", kinds = S.kinds("pid,mount,uts,ipc,net") },
  { name = "noinit", kinds = S.kinds("pid,mount"), init = false },
  { name = "time", kinds = S.kinds("time,mount") },
}

for _, m in ipairs(modes) do
  local n, k, init = m.name, m.kinds, m.init

  -- A missing program: its name and ENOENT, raised where spawn was called.
  local L = S.line() + 1
  local e = T.errno(n .. ".missing", "ENOENT", function() local p = ns.spawn { argv = { "no-such-program-nsrun" }, namespaces = k, init = init, env = PATH } return p end)
  T.has(n .. ".missing.names_it", tostring(e), "no-such-program-nsrun")
  T.has(n .. ".missing.op", e.op, "no-such-program-nsrun")
  T.eq(n .. ".missing.where", e.where, "recipe.lua:" .. L)
  S.no_children(n .. ".missing.no_child")

  L = S.line() + 1
  e = T.errno(n .. ".missing_run", "ENOENT", function() local st = ns.run { argv = { "no-such-program-nsrun", "x" }, namespaces = k, init = init, env = PATH } return st end)
  T.has(n .. ".missing_run.names_it", tostring(e), "no-such-program-nsrun")
  T.eq(n .. ".missing_run.where", e.where, "recipe.lua:" .. L)
  S.no_children(n .. ".missing_run.no_child")

  e = T.errno(n .. ".missing_path", "ENOENT", function() local p = ns.spawn { argv = { "/nonexistent-dir/prog" }, namespaces = k, init = init } return p end)
  T.has(n .. ".missing_path.names_it", tostring(e), "/nonexistent-dir/prog")
  S.no_children(n .. ".missing_path.no_child")

  -- Not executable.
  e = T.errno(n .. ".not_executable", "EACCES", function() local p = ns.spawn { argv = { T.dir .. "/recipe.lua" }, namespaces = k, init = init } return p end)
  T.has(n .. ".not_executable.names_it", tostring(e), "recipe.lua")
  S.no_children(n .. ".not_executable.no_child")

  -- A missing working directory.
  e = T.errno(n .. ".cwd", "ENOENT", function() local p = ns.spawn { argv = { "touch", ran }, cwd = "/nonexistent-cwd", namespaces = k, init = init } return p end)
  T.has(n .. ".cwd.names_it", tostring(e), "/nonexistent-cwd")
  S.no_children(n .. ".cwd.no_child")

  -- error() in setup: the recipe's file:line of the error, after "spawn: setup:".
  L = S.line() + 1
  e = T.raises(n .. ".setup_error", function() local p = ns.spawn { argv = { "touch", ran }, namespaces = k, init = init, setup = function() error("boom") end } return p end)
  T.eq(n .. ".setup_error.message", e, at(L) .. "spawn: setup: " .. at(L) .. "boom")
  S.no_children(n .. ".setup_error.no_child")

  L = S.line() + 1
  e = T.raises(n .. ".setup_error_run", function() local st = ns.run { argv = { "touch", ran }, namespaces = k, init = init, setup = function() error("boom " .. 42) end } return st end)
  -- (ns.run is spawn + wait: its message may name either.)
  T.check(n .. ".setup_error_run.message", e == at(L) .. "run: setup: " .. at(L) .. "boom 42"
    or e == at(L) .. "spawn: setup: " .. at(L) .. "boom 42", T.show(e))
  S.no_children(n .. ".setup_error_run.no_child")

  -- A system error in setup keeps the call's own message and location.
  if n ~= "plain" then
    local ML = S.line() + 2
    local setup = function()
      ns.mount("tmpfs", "/nonexistent-nsrun-target", "tmpfs") -- the line in the message
    end
    L = S.line() + 1
    e = T.raises(n .. ".mount", function() local p = ns.spawn { argv = { "touch", ran }, namespaces = k, init = init, setup = setup } return p end)
    T.has(n .. ".mount.prefix", e, at(L) .. "spawn: setup: " .. at(ML) .. "mount tmpfs on /nonexistent-nsrun-target:")
    T.has(n .. ".mount.errno", e, "(ENOENT)")
    S.no_children(n .. ".mount.no_child")
  end

  -- error() in before_start (run in the parent, the child waiting).
  local child
  L = S.line() + 1
  e = T.raises(n .. ".before_start", function() local p = ns.spawn { argv = { "touch", ran }, namespaces = k, init = init, before_start = function(p) child = p.pid error("no thanks") end } return p end)
  T.eq(n .. ".before_start.message", e, at(L) .. "spawn: before_start: " .. at(L) .. "no thanks")
  T.check(n .. ".before_start.child_gone", child and S.state(child) == nil, "child " .. tostring(child) .. " is " .. tostring(child and S.state(child)))
  S.no_children(n .. ".before_start.no_child")

  -- The program never ran.
  T.eq(n .. ".program_never_ran", T.exists(ran), false)

  -- And spawning works as before afterwards.
  local st = ns.run { argv = { "echo", "fine" }, namespaces = k, init = init }
  T.eq(n .. ".after.stdout", st.stdout, "fine\n")
end

-- Maps the kernel refuses (an outside id of -1), raised with the file and
-- errno and no child left. As root the parent writes them beside a child
-- that shares its memory until exec (the gid map too, with setgroups
-- allowed); as another user through the same path as every map.
if not T.user then
  for _, c in ipairs {
    { name = "uid", uid_map = { { 0, 4294967295, 1 } } },
    { name = "gid", gid_map = { { 0, 4294967295, 1 } } },
    { name = "gid_deny", gid_map = { { 0, 4294967295, 1 } }, setgroups = "deny" },
  } do
    for _, kinds in ipairs { "user", "user,mount,pid" } do
      local n = "badmap." .. c.name .. "." .. kinds
      local L = S.line() + 2
      local e = T.errno(n, "EINVAL", function()
        local p = ns.spawn { argv = { "touch", ran }, namespaces = kinds, init = false, uid_map = c.uid_map, gid_map = c.gid_map, setgroups = c.setgroups }
        return p
      end)
      T.has(n .. ".file", e.op, c.name == "uid" and "/uid_map" or "/gid_map")
      T.eq(n .. ".where", e.where, "recipe.lua:" .. L)
      S.no_children(n .. ".no_child")
    end
  end
  T.eq("badmap.program_never_ran", T.exists(ran), false)
  local st = ns.run { argv = { "id", "-u" }, namespaces = "user,mount,pid", init = false }
  T.eq("badmap.after", st.stdout, "0\n")
end

S.no_children("no child left")
T.ok("all")
