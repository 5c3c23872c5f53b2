-- nsrun.netns and `ip netns`, both ways. Runs in a private mount namespace
-- (unprivileged: with a user namespace) with a tmpfs on /run, so neither
-- the host's mounts nor its /run/netns see anything: both tools use the
-- same /run/netns path, inside.
local ns = require "nsrun"
local T = require "testlib"
local netns = require "nsrun.netns"

T.isolate("mount")
ns.mount("tmpfs", "/run", "tmpfs", "nosuid,nodev", "mode=0755")

local function ip(...)
  local r = ns.run{argv = {"ip", ...}}
  assert(r.code == 0, "ip " .. table.concat({...}, " ") .. ": " .. r.stderr)
  return r.stdout
end
local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

local ours = "nsrun-t" .. ns.getpid()
local theirs = "nsrun-i" .. ns.getpid()
local before = T.mounts()

-- Ours, seen by ip.
netns.add(ours)
T.eq("path", netns.path(ours), "/run/netns/" .. ours)
T.check("list.ours", has(netns.list(), ours))
T.has("ip_list.ours", ip("netns", "list"), ours)
T.eq("open.kind", ns.open(netns.path(ours)).kind, "net")
T.ne("not_ours", ns.open(netns.path(ours)).inode, ns.id("net"))
T.check("dir.shared", (T.mounts()["/run/netns"] or ""):find("shared:", 1, true), "not a shared mount")
T.errmsg("add.exists", "File exists", netns.add, ours)
T.errmsg("add.bad_name", "invalid network namespace name 'a/b'", netns.add, "a/b")
T.errmsg("add.bad_type", "bad argument #1 to 'add' (string expected, got number)", netns.add, 1)
T.child("setns.ours", function()
  ns.setns(netns.path(ours), "net")
  ns.net.lo_up()
  ns.net.veth("nsrx0", "nsrx1")
end)
T.has("ip_exec.ours", ip("netns", "exec", ours, "ip", "-o", "link"), "nsrx0")
local r = netns.exec(ours, {"ip", "-o", "link"})
T.has("exec.ours", r.stdout, "nsrx1")
T.eq("exec.code", r.code, 0)
local p = netns.spawn(ours, {"true"})
T.eq("spawn.ours", p:wait().code, 0)
T.errmsg("exec.bad_argv", "bad argument #2 to 'exec' (table expected, got string)", netns.exec, ours, "ip")

-- Theirs, seen by us. `ip netns add` returns to its first network
-- namespace with setns, which the host's user namespace owns: as root only.
if not T.user then
  ip("netns", "add", theirs)
  T.check("list.theirs", has(netns.list(), theirs))
  r = netns.exec(theirs, {"ip", "-o", "link"})
  T.eq("exec.theirs_only_lo", select(2, r.stdout:gsub("\n", "")), 1)
  T.has("exec.theirs_lo", r.stdout, "lo:")
  T.child("setns.theirs", function()
    ns.setns(netns.path(theirs))
    local l = ns.net.links()
    assert(#l == 1 and l[1].name == "lo" and not l[1].up, "not a fresh namespace")
  end)
  T.has("ip_exec.theirs", ip("netns", "exec", theirs, "ip", "-o", "link"), "lo:")

  -- Each deletes the other's.
  netns.delete(theirs)
  T.check("delete.theirs", not has(netns.list(), theirs) and not T.exists("/run/netns/" .. theirs))
  T.lacks("ip_list.theirs_gone", ip("netns", "list"), theirs)
  ip("netns", "delete", ours)
  T.check("ip_delete.ours", not has(netns.list(), ours) and not T.exists("/run/netns/" .. ours))
else
  netns.delete(ours)
  T.check("delete.ours", not has(netns.list(), ours) and not T.exists("/run/netns/" .. ours))
  T.lacks("ip_list.ours_gone", ip("netns", "list"), ours)
end

-- Deleting a name that is not there fails; a stale file (no longer a mount
-- point) is removed.
T.errmsg("delete.missing", "cannot remove namespace file /run/netns/" .. ours, netns.delete, ours)
ns.write_file("/run/netns/" .. ours, "")
netns.delete(ours)
T.check("delete.stale", not T.exists("/run/netns/" .. ours))

-- Nothing left: no mount under /run/netns but the directory's own.
local after = T.mounts()
for mp in pairs(after) do
  if mp ~= "/run/netns" and not before[mp] then error("left a mount at " .. mp) end
end
T.ok("no_mounts_left")
print("done")
