-- ns.clone with each kind gives the child a new namespace of that kind;
-- with "pid" the child is pid 1.
local ns = require "nsrun"
local T = require "testlib"

local kinds = {"user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time"}
for _, k in ipairs(kinds) do
  local outer = ns.id(k)
  local p = T.clone(k, function()
    if ns.id(k) == outer then
      io.stderr:write("still in the parent's " .. k .. " namespace\n")
      return 2
    end
    return 0
  end)
  T.check("clone." .. k .. ".pid", math.type(p.pid) == "integer" and p.pid > 0)
  T.eq("clone." .. k, p:wait().code, 0)
end

-- All at once, as a list.
local before = {}
for _, k in ipairs(kinds) do before[k] = ns.id(k) end
local list = {"mount", "uts", "ipc", "net", "pid", "cgroup", "time"}
if ns.geteuid() ~= 0 then table.insert(list, 1, "user") end
local p = ns.clone(list, function()
  if T.user then T.wait_mapped() end
  for _, k in ipairs(kinds) do
    if k ~= "user" or T.user then
      if ns.id(k) == before[k] then
        io.stderr:write("same " .. k .. "\n")
        return 2
      end
    end
  end
  return 0
end)
if T.user then T.map(p.pid) end
T.eq("clone.all", p:wait().code, 0)

-- A new pid namespace: the child is pid 1, its parent is outside (0), and
-- its own children count from 2.
p = T.clone("pid", function()
  if ns.getpid() ~= 1 then return 2 end
  if ns.getppid() ~= 0 then return 3 end
  local g = ns.fork(function()
    if ns.getpid() ~= 2 or ns.getppid() ~= 1 then return 5 end
    return 0
  end)
  return g:wait().code
end)
T.eq("clone.pid_is_1", p:wait().code, 0)

-- The child's result is its exit code, as with fork.
T.eq("clone.code", T.clone("uts", function() return 7 end):wait().code, 7)
T.eq("clone.error", T.clone("uts", function() error("in clone") end):wait().code, 1)
print("done")
