-- ns.setns by pid (all kinds that differ, user first), by pid with kinds,
-- by path and by handle, into a child's uts namespace; and wrong kinds.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

local host = T.hostname()
local h0 = ns.open("uts")
local p = T.clone("uts", function()
  ns.sethostname("nsrun-child")
  ns.write_file(D .. "/child-ready", "")
  ns.exec({"sleep", "30"})
end)
T.wait_until("the child", function() return T.exists(D .. "/child-ready") end)
T.ne("child.uts", ns.id("uts", p.pid), ns.id("uts"))

-- Each join happens in a forked helper: joining cannot be undone.
T.child("pid.all", function()
  ns.setns(p.pid)
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
  assert(ns.id("uts") == ns.id("uts", p.pid), "not in the child's uts namespace")
  if T.user then
    assert(ns.id("user") == ns.id("user", p.pid), "not in the child's user namespace")
    assert(ns.getuid() == 0, "not root in the child's user namespace")
  end
  assert(ns.id("net") == ns.id("net", p.pid), "net differs")
end)

T.child("pid.kinds", function()
  ns.setns(p.pid, T.user and "user,uts" or "uts")
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
end)

T.child("pid.kinds_list", function()
  ns.setns(p.pid, T.user and {"uts", "user"} or {"uts"})
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
end)

T.child("path", function()
  if T.user then ns.setns("/proc/" .. p.pid .. "/ns/user") end
  ns.setns("/proc/" .. p.pid .. "/ns/uts")
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
end)

T.child("path.kind", function()
  if T.user then ns.setns("/proc/" .. p.pid .. "/ns/user", "user") end
  ns.setns("/proc/" .. p.pid .. "/ns/uts", "uts")
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
end)

T.child("handle", function()
  if T.user then ns.setns(p:ns("user")) end
  local h = p:ns("uts")
  ns.setns(h)
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
  ns.setns(h, "uts")
  if not T.user then
    -- Back to the host's uts namespace through the handle opened earlier.
    ns.setns(h0)
    assert(T.hostname() == host, "not back in the host's uts namespace")
  end
end)

T.child("open_handle", function()
  if T.user then ns.setns(ns.open("user", p.pid)) end
  ns.open("uts", p.pid):enter()
  assert(T.hostname() == "nsrun-child", "hostname " .. T.hostname())
end)

-- Wrong kinds are refused clearly, before anything is joined.
T.errmsg("wrong.path", "is a net namespace, not a uts namespace", ns.setns, "/proc/self/ns/net", "uts")
T.errmsg("wrong.handle", "the handle is a uts namespace, not net", ns.setns, ns.open("uts"), "net")
T.errmsg("wrong.not_ns", "not a namespace file", ns.setns, "/etc/passwd")
T.errmsg("wrong.several", "a single namespace kind", ns.setns, "/proc/self/ns/net", "net,uts")
T.eq("wrong.nothing_joined", ns.id("uts"), h0.inode)

-- Joining our own process's namespaces is a no-op.
ns.setns(ns.getpid())
T.eq("self.noop", ns.id("uts"), h0.inode)

T.check("child.kill", p:kill("KILL"))
T.eq("child.killed", p:wait().code, 137)
T.eq("host.unchanged", T.hostname(), host)
print("done")
