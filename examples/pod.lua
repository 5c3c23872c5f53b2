-- pod.lua: two processes sharing one network and one IPC namespace, as the
-- containers of a Kubernetes pod do: one listens on 127.0.0.1 inside the
-- pod, the other connects to it there.
--
--   nsrun examples/pod.lua                  (as root or as any user; needs socat)
--
-- The pod's loopback is its own: the host's 127.0.0.1 never sees the
-- connection.
local ns = require "nsrun"

local unprivileged = ns.geteuid() ~= 0
-- The first process makes the pod's namespaces (and, unprivileged, a user
-- namespace that owns them); its setup brings the pod's loopback up.
local kinds = unprivileged and "user,net,ipc,uts" or "net,ipc,uts"
local server = ns.spawn{
  argv = {"socat", "TCP-LISTEN:7001,bind=127.0.0.1,reuseaddr",
          "SYSTEM:echo hello from $(hostname) on 127.0.0.1"},
  namespaces = kinds,
  hostname = "pod",
  setup = function() ns.net.lo_up() end,
  timeout = 20,
}

-- The second joins them through handles of the first (user first: the
-- others are joined with its capabilities).
local join = {net = server:ns("net"), ipc = server:ns("ipc"), uts = server:ns("uts")}
if unprivileged then join.user = server:ns("user") end
print(string.format("server: net net:[%d] ipc ipc:[%d]", ns.id("net", server.pid), ns.id("ipc", server.pid)))
local client = ns.run{
  argv = {"sh", "-c", 'echo "client: net $(readlink /proc/self/ns/net) ipc $(readlink /proc/self/ns/ipc)"; '
    .. "exec socat -u TCP:127.0.0.1:7001,retry=100,interval=0.1 -"},
  join = join,
  timeout = 20,
}
io.write(client.stdout or "")
if client.code ~= 0 then io.stderr:write(client.stderr) end
for _, h in pairs(join) do h:close() end
local st = server:wait()
return client.code ~= 0 and client or st
