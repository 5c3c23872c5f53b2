-- ns.net in a network namespace of the recipe's own (as root, and
-- unprivileged inside user+net namespaces): links, up/down, veth pairs,
-- moves, addresses (v4 and v6), routes, deletes, and their errors.
local ns = require "nsrun"
local T = require "testlib"

-- Unprivileged in the host's network namespace: refused, with a hint
-- (never tried as root: that would touch the host's links).
if T.user then
  local e = T.errno("eperm.host_veth", "EPERM", ns.net.veth, "nsrp0", "nsrp1")
  T.has("eperm.hint", e.hint or "", "CAP_NET_ADMIN")
  T.errno("eperm.host_lo", "EPERM", ns.net.up, "lo")
end

T.isolate("net,mount")

local function link(name)
  for _, l in ipairs(ns.net.links()) do
    if l.name == name then return l end
  end
end
local function names()
  local out = {}
  for _, l in ipairs(ns.net.links()) do out[#out + 1] = l.name end
  table.sort(out)
  return table.concat(out, ",")
end
local function ip(...)
  local r = ns.run{argv = {"ip", ...}}
  assert(r.code == 0, "ip " .. table.concat({...}, " ") .. ": " .. r.stderr)
  return r.stdout
end

-- A new network namespace has only lo, and it is down.
T.eq("new.only_lo", names(), "lo")
local lo = link("lo")
T.eq("new.lo_down", lo.up, false)
T.eq("new.lo_no_addrs", #lo.addrs, 0)
T.eq("new.lo_index", lo.index, 1)
T.check("new.lo_mtu", lo.mtu > 0, "mtu " .. tostring(lo.mtu))
ns.net.lo_up()
lo = link("lo")
T.eq("lo_up.up", lo.up, true)
T.eq("lo_up.addrs", table.concat(lo.addrs, " "), "127.0.0.1/8 ::1/128")

-- A veth pair: both ends here, down.
ns.net.veth("nsr0", "nsr1")
T.eq("veth.names", names(), "lo,nsr0,nsr1")
T.eq("veth.down", link("nsr0").up, false)
local e = T.errno("veth.exists", "EEXIST", ns.net.veth, "nsr0", "nsr1")
T.has("veth.exists_message", tostring(e), "veth nsr0/nsr1: File exists (EEXIST)")
T.errmsg("veth.bad_option", "unknown option 'peer_ns' (did you mean 'peer_netns'?)",
  ns.net.veth, "nsr8", "nsr9", {peer_ns = 1})
T.errmsg("veth.bad_arg", "bad argument #2 to 'veth' (string expected, got number)", ns.net.veth, "x", 1)

-- up and down.
ns.net.up("nsr0")
T.eq("up", link("nsr0").up, true)
ns.net.down("nsr0")
T.eq("down", link("nsr0").up, false)
ns.net.up("nsr0")
ns.net.up("nsr1")

-- Unknown interfaces: ENODEV naming the operation and the interface.
e = T.errno("enodev.up", "ENODEV", ns.net.up, "nosuch0")
T.has("enodev.up_message", tostring(e), "up nosuch0: No such device (ENODEV)")
T.check("enodev.hint", e.hint and e.hint:find("links", 1, true), "hint " .. tostring(e.hint))
T.errno("enodev.addr", "ENODEV", ns.net.addr, "nosuch0", "10.9.9.9/24")
T.errno("enodev.delete", "ENODEV", ns.net.delete, "nosuch0")
T.errno("enodev.move", "ENODEV", ns.net.move, "nosuch0", ns.getpid())
T.errno("enodev.route", "ENODEV", ns.net.route, "10.7.0.0/16", {dev = "nosuch0"})

-- Addresses, IPv4 and IPv6.
ns.net.addr("nsr0", "10.200.0.1/24")
ns.net.addr("nsr0", "fd00:200::1/64")
local a = link("nsr0").addrs
T.eq("addr.v4", a[1], "10.200.0.1/24")
T.eq("addr.v6", a[2], "fd00:200::1/64")
T.has("addr.ip_sees", ip("-o", "addr", "show", "dev", "nsr0"), "inet 10.200.0.1/24")
T.errno("addr.exists", "EEXIST", ns.net.addr, "nsr0", "10.200.0.1/24")
T.errmsg("addr.bad", "is not an address with a prefix length", ns.net.addr, "nsr0", "10.200.0.300/24")
T.errmsg("addr.bad_prefix", "is not an address with a prefix length", ns.net.addr, "nsr0", "10.0.0.1/33")

-- Routes, IPv4 and IPv6, via a gateway or straight onto a link.
ns.net.route("10.1.0.0/16", {via = "10.200.0.2"})
ns.net.route("default", {via = "10.200.0.2", dev = "nsr0"})
ns.net.route("10.9.0.0/16", {dev = "nsr0"})
ns.net.route("fd00:1::/48", {via = "fd00:200::2"})
ns.net.route("default", {via = "fd00:200::2"})
local r4, r6 = ip("-4", "route"), ip("-6", "route")
T.has("route.v4", r4, "10.1.0.0/16 via 10.200.0.2 dev nsr0")
T.has("route.v4_default", r4, "default via 10.200.0.2 dev nsr0")
T.has("route.v4_dev", r4, "10.9.0.0/16 dev nsr0 scope link")
T.has("route.v6", r6, "fd00:1::/48 via fd00:200::2 dev nsr0")
T.has("route.v6_default", r6, "default via fd00:200::2 dev nsr0")
T.errno("route.exists", "EEXIST", ns.net.route, "10.1.0.0/16", {via = "10.200.0.2"})
T.errmsg("route.needs", "needs 'via' (a gateway) or 'dev'", ns.net.route, "10.2.0.0/16", {})
T.errmsg("route.family", "not of the same address family", ns.net.route, "10.2.0.0/16", {via = "fd00::1"})
T.errmsg("route.bad_via", "'via' must be an IPv4 or IPv6 address", ns.net.route, "10.2.0.0/16", {via = "gw"})
e = T.errno("route.unreachable", "ENETUNREACH", ns.net.route, "10.3.0.0/16", {via = "192.0.2.1"})
T.has("route.unreachable_hint", e.hint or "", "in its subnet")
T.errmsg("route.host_bits", "host bits set; did you mean 10.4.0.0/16?", ns.net.route, "10.4.1.2/16", {dev = "nsr0"})

-- Deleting routes and addresses; MTU and hardware address.
ns.net.route_del("10.9.0.0/16", {dev = "nsr0"})
ns.net.route_del("fd00:1::/48", {via = "fd00:200::2"})
r4, r6 = ip("-4", "route"), ip("-6", "route")
T.lacks("route_del.v4", r4, "10.9.0.0/16")
T.lacks("route_del.v6", r6, "fd00:1::/48")
T.has("route_del.others_stay", r4, "10.1.0.0/16 via 10.200.0.2 dev nsr0")
T.errno("route_del.missing", "ESRCH", ns.net.route_del, "10.9.0.0/16", {dev = "nsr0"})
ns.net.addr("nsr0", "10.201.0.1/24")
ns.net.addr_del("nsr0", "10.201.0.1/24")
T.lacks("addr_del.gone", table.concat(link("nsr0").addrs, " "), "10.201.0.1")
T.has("addr_del.others_stay", table.concat(link("nsr0").addrs, " "), "10.200.0.1/24")
T.errno("addr_del.missing", "EADDRNOTAVAIL", ns.net.addr_del, "nsr0", "10.201.0.1/24")
ns.net.set("nsr0", {mtu = 1280, mac = "02:00:5e:10:00:01"})
T.eq("set.mtu", link("nsr0").mtu, 1280)
T.eq("set.mac", link("nsr0").mac, "02:00:5e:10:00:01")
T.has("set.mac_ip", ip("link", "show", "nsr0"), "link/ether 02:00:5e:10:00:01")
T.errmsg("set.bad_mac", "not a MAC address", ns.net.set, "nsr0", {mac = "02:00"})
T.errmsg("set.bad_mtu", "'mtu' must be an integer from 68 to 65535", ns.net.set, "nsr0", {mtu = 10})
T.errmsg("set.nothing", "give 'mtu' and/or 'mac'", ns.net.set, "nsr0", {})

-- Moving a link into another network namespace: by pid, by handle, by path.
-- Root (of our own user namespace when unprivileged) already, so no user
-- namespace is needed for the child.
local p = ns.clone("net", function() ns.exec({"sleep", "30"}) end)
local h = p:ns("net")
local function links_in(target)
  local path = T.dir .. "/links-" .. ns.getpid()
  local st = ns.fork(function()
    ns.setns(target, "net")
    local out = {}
    for _, l in ipairs(ns.net.links()) do out[#out + 1] = l.name end
    table.sort(out)
    ns.write_file(path, table.concat(out, ","))
  end):wait()
  assert(st.code == 0, "listing the links in the child failed")
  local s = ns.read_file(path)
  os.remove(path)
  return s
end
ns.net.move("nsr1", p.pid)
T.eq("move.pid_gone", names(), "lo,nsr0")
T.eq("move.pid_there", links_in(h), "lo,nsr1")
ns.net.veth("nsr2", "nsr3", {peer_netns = h})
T.eq("veth.peer_netns_handle", links_in(h), "lo,nsr1,nsr3")
ns.net.veth("nsr4", "nsr5", {peer_netns = "/proc/" .. p.pid .. "/ns/net"})
T.eq("veth.peer_netns_path", links_in(h), "lo,nsr1,nsr3,nsr5")
ns.net.veth("nsr6", "nsr7", {peer_netns = p.pid})
T.eq("veth.peer_netns_pid", links_in(h), "lo,nsr1,nsr3,nsr5,nsr7")
ns.net.veth("nsrc", "nsrd", {peer_netns = p})
T.eq("veth.peer_netns_process", links_in(h), "lo,nsr1,nsr3,nsr5,nsr7,nsrd")
ns.net.veth("nsr8", "nsr9")
ns.net.move("nsr9", h)
ns.net.veth("nsra", "nsrb")
ns.net.move("nsrb", "/proc/" .. p.pid .. "/ns/net")
ns.net.veth("nsre", "nsrf")
ns.net.move("nsrf", p)
T.eq("move.handle_path_process", links_in("/proc/" .. p.pid .. "/ns/net"), "lo,nsr1,nsr3,nsr5,nsr7,nsr9,nsrb,nsrd,nsrf")
T.errmsg("move.wrong_kind", "the handle is a uts namespace, not net", ns.net.move, "nsr0", ns.open("uts"))
T.errmsg("move.not_ns", "not a namespace file", ns.net.move, "nsr0", "/etc/passwd")
T.errmsg("move.needs_target", "bad argument #2 to 'move'", ns.net.move, "nsr0")

-- Deleting one end of a pair removes both.
for _, n in ipairs({"nsr0", "nsr2", "nsr4", "nsr6", "nsr8", "nsra", "nsrc", "nsre"}) do ns.net.delete(n) end
T.eq("delete.here", names(), "lo")
T.eq("delete.peers_gone", links_in(h), "lo")
h:close()
p:kill("KILL")
p:wait()
print("done")
