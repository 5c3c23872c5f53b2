-- nsenter.lua: run a command inside a running process's namespaces.
--
--   nsrun examples/nsenter.lua PID [COMMAND [ARG]...]
--
-- Like `nsenter -t PID -a`: joins every namespace in which PID differs
-- from us, user first (so the rest can be joined with its capabilities)
-- and mount last.
local ns = require "nsrun"

local pid = tonumber(arg[1])
if not pid then
  io.stderr:write("usage: nsrun examples/nsenter.lua PID [COMMAND [ARG]...]\n")
  return 2
end
local argv = { table.unpack(arg, 2) }
if #argv == 0 then argv = { os.getenv("SHELL") or "/bin/sh" } end

ns.setns(pid)

-- Joining a pid namespace only moves our future children into it, so the
-- command runs in a child.
local p = ns.fork(function()
  ns.chdir("/")
  ns.exec(argv)
end)
return p:wait()
