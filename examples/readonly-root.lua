-- readonly-root.lua: what `bwrap --unshare-all --ro-bind / / --dev-bind /dev /dev
-- --proc /proc --tmpfs /tmp --hostname sandbox CMD` does, out of primitives.
--
--   nsrun examples/readonly-root.lua [COMMAND [ARG]...]      (as any user)
--
-- A new root on a tmpfs: every top-level directory of the host bound
-- read-only, /dev bound, a fresh /proc and /tmp, then pivot_root into it.
local ns = require "nsrun"

local argv = { ... }
if #argv == 0 then argv = { "sh", "-c", "id; hostname; ls /; touch /usr/x" } end

local function setup()
  local root = "/tmp"                 -- any directory will do: a tmpfs goes on top
  ns.mount("tmpfs", root, "tmpfs", "nosuid,nodev", "mode=0755")
  for _, name in ipairs(ns.readdir("/")) do
    local special = { proc = true, dev = true, tmp = true, sys = true }
    if not special[name] then
      local ok = pcall(ns.bind, "/" .. name, root .. "/" .. name, { ro = true, create = true })
      if not ok then io.stderr:write("skipped /" .. name .. "\n") end
    end
  end
  ns.bind("/dev", root .. "/dev", { create = true })
  ns.mkdir(root .. "/proc")
  ns.mount("proc", root .. "/proc", "proc", "nosuid,nodev,noexec")
  ns.mkdir(root .. "/tmp", "1777")
  ns.mount("tmpfs", root .. "/tmp", "tmpfs", "nosuid,nodev")
  ns.pivot_root(root)                 -- binds, makes private, pivots, drops the old root
end

return ns.spawn {
  argv = argv,
  namespaces = "user,mount,pid,uts,ipc,net,cgroup",
  hostname = "sandbox",
  setup = setup,
}:wait()
