-- veth-pair.lua: two sandboxes, each in a network namespace of its own,
-- joined by a veth pair; one serves TCP, the other connects to it.
--
--   nsrun examples/veth-pair.lua            (as root or as any user; needs socat)
--
--   server  10.200.0.1/24 [a0] <--- veth ---> [b0] 10.200.0.2/24  client
--
-- The addresses exist only inside the two namespaces: nothing on the
-- host's own interfaces changes, and no traffic leaves them.
local ns = require "nsrun"

-- Unprivileged, become root of a user namespace of our own first: the
-- network namespaces made below then belong to it, so we may configure
-- them and put links in them. (A sandbox with a user namespace of its own
-- could not be reached from its sibling's: moving a link needs
-- CAP_NET_ADMIN over the namespace it goes to.)
if ns.geteuid() ~= 0 then
  local uid, gid = ns.getuid(), ns.getgid()
  ns.unshare("user")
  ns.uid_map("self", {{0, uid, 1}})
  ns.setgroups("self", "deny")
  ns.gid_map("self", {{0, gid, 1}})
end

-- Make the two network namespaces and keep them as handles: a namespace
-- lives while a handle to it is open, and ns.spawn joins handles.
ns.unshare("net")
local a <close> = ns.open("net")
ns.unshare("net")
local b <close> = ns.open("net")

-- Now in b: make the pair with its a-end created directly in a.
ns.net.veth("b0", "a0", {peer_netns = a})
ns.net.lo_up()
ns.net.addr("b0", "10.200.0.2/24")
ns.net.up("b0")
ns.setns(a)
ns.net.lo_up()
ns.net.addr("a0", "10.200.0.1/24")
ns.net.up("a0")

for _, l in ipairs(ns.net.links()) do
  print(string.format("a: %-3s %-4s %s", l.name, l.up and "up" or "down", table.concat(l.addrs, " ")))
end

-- The server answers one connection and exits.
local server = ns.spawn{
  argv = {"socat", "TCP-LISTEN:7000,bind=10.200.0.1,reuseaddr", "SYSTEM:echo hello from 10.200.0.1"},
  join = {net = a},
  namespaces = "uts,ipc",
  timeout = 20,
}
-- The client retries until the server listens.
local r = ns.run{
  argv = {"socat", "-u", "TCP:10.200.0.1:7000,retry=100,interval=0.1", "-"},
  join = {net = b},
  namespaces = "uts,ipc",
  timeout = 20,
}
io.write("b got: ", r.stdout or "(nothing: --plan runs nothing)\n")
if r.code ~= 0 then io.stderr:write(r.stderr) end
local st = server:wait()
return r.code ~= 0 and r or st
