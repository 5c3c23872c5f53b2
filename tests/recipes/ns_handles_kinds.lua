-- Namespace handles of every kind: ns.open and p:ns, their fields,
-- tostring, ==, close, and joining a child's namespaces through them with
-- spawn{join=} and ns.setns.
local ns = require "nsrun"
local T = require "testlib"

local KINDS = {"user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time"}
local p = ns.spawn{argv = {"sleep", "30"}, namespaces = table.concat(KINDS, ","), init = false}
local function proc(k) return k == "mount" and "mnt" or k end

for _, k in ipairs(KINDS) do
  local h <close> = ns.open(k)
  T.eq("open." .. k, h.kind, k)
  T.eq("open_id." .. k, h.inode, ns.id(k))
  T.eq("open_path." .. k, h.path, "/proc/self/ns/" .. proc(k))
  T.check("open_fd." .. k, math.type(h.fd) == "integer" and h.fd > 2)
  T.eq("tostring." .. k, tostring(h), "namespace " .. k .. ":[" .. h.inode .. "]")
  T.check("eq." .. k, h == ns.open(k))
  local c = p:ns(k)
  T.eq("child." .. k, c.kind, k)
  T.check("child_ne." .. k, c ~= h, "the child's " .. k .. " namespace is ours")
  -- What the program itself runs in (time: behind the relay that made it).
  local want = c.inode
  -- spawn{join=}: a program started in the child's namespace of this kind
  -- (and its user namespace, whose capabilities the join needs).
  local join = {user = p:ns("user")}
  join[k] = c
  local r = ns.run{argv = {"readlink", "/proc/self/ns/" .. proc(k)}, join = join}
  T.eq("join." .. k, r.stdout, proc(k) .. ":[" .. want .. "]\n")
  T.child("setns." .. k, function()
    if k ~= "user" then ns.setns(p:ns("user")) end
    ns.setns(c, k)
    local f = (k == "pid") and "/proc/self/ns/pid_for_children" or "/proc/self/ns/" .. proc(k)
    assert(ns.open(f).inode == want, "not joined")
  end)
  c:close()
  T.eq("closed." .. k, tostring(c), "namespace (closed)")
  T.eq("closed_kind." .. k, c.kind, nil)
end
p:kill("KILL")
p:wait()
print("done")
