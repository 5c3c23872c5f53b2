-- TCP across a veth pair between two sandboxes, each in a network
-- namespace of its own; the addresses exist only in those namespaces.
-- The two namespaces are made by the recipe and kept as handles.
local ns = require "nsrun"
local T = require "testlib"

T.root()
ns.unshare("net")
local a = ns.open("net")
ns.unshare("net")
local b = ns.open("net")
T.ne("two_namespaces", a.inode, b.inode)

ns.net.veth("tb0", "ta0", {peer_netns = a})
ns.net.lo_up()
ns.net.addr("tb0", "10.200.0.2/24")
ns.net.addr("tb0", "fd00:200::2/64")
ns.net.up("tb0")
ns.setns(a)
T.eq("in_a", ns.id("net"), a.inode)
ns.net.lo_up()
ns.net.addr("ta0", "10.200.0.1/24")
ns.net.addr("ta0", "fd00:200::1/64")
ns.net.up("ta0")

local function serve(addr, port, reply)
  local tcp = addr:find(":", 1, true) and "TCP6" or "TCP"
  return ns.spawn{
    argv = {"socat", tcp .. "-LISTEN:" .. port .. ",bind=" .. addr .. ",reuseaddr", "SYSTEM:echo " .. reply},
    join = {net = a},
    timeout = 20,
  }
end
local function connect(addr, port)
  local tcp = addr:find(":", 1, true) and "TCP6" or "TCP"
  return ns.run{
    argv = {"socat", "-u", tcp .. ":" .. addr .. ":" .. port .. ",retry=100,interval=0.1", "-"},
    join = {net = b},
    timeout = 20,
  }
end

local server = serve("10.200.0.1", 7000, "pong4")
local r = connect("10.200.0.1", 7000)
T.eq("tcp.v4", r.stdout, "pong4\n")
T.eq("tcp.v4_server", server:wait().code, 0)

server = serve("[fd00:200::1]", 7001, "pong6")
r = connect("[fd00:200::1]", 7001)
T.eq("tcp.v6", r.stdout, "pong6\n")
T.eq("tcp.v6_server", server:wait().code, 0)

-- The server's address is not reachable from a third namespace.
local c = ns.run{argv = {"socat", "-u", "TCP:10.200.0.1:7000,connect-timeout=1", "-"}, namespaces = "net"}
T.ne("tcp.isolated", c.code, 0)
a:close()
b:close()
print("done")
