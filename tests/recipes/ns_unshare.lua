-- ns.unshare with lists, comma strings and aliases; sethostname and
-- setdomainname in the new uts namespace.
local ns = require "nsrun"
local T = require "testlib"

local kinds = {"user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time"}
local initial_user = ns.id("user")
T.root()
if T.user then
  T.ne("user.new", ns.id("user"), initial_user)
  T.eq("user.root_inside", ns.getuid(), 0)
end
local before = {}
for _, k in ipairs(kinds) do before[k] = ns.id(k) end
local host, domain = T.hostname(), T.domainname()

ns.unshare({"uts", "ipc"})
T.ne("list.uts", ns.id("uts"), before.uts)
T.ne("list.ipc", ns.id("ipc"), before.ipc)
T.eq("list.net_kept", ns.id("net"), before.net)

ns.unshare("net, cgroup")
T.ne("comma.net", ns.id("net"), before.net)
T.ne("comma.cgroup", ns.id("cgroup"), before.cgroup)

ns.unshare("mnt")
T.ne("alias.mnt", ns.id("mount"), before.mount)
T.eq("alias.uts_kept", ns.id("uts"), ns.open("uts").inode)

ns.sethostname("nsrun-unshared")
T.eq("sethostname", T.hostname(), "nsrun-unshared")
ns.setdomainname("nsrun-domain")
T.eq("setdomainname", T.domainname(), "nsrun-domain")
T.errno("sethostname.too_long", "EINVAL", ns.sethostname, string.rep("x", 65))
T.put("host", host)
T.put("domain", domain)

-- pid and time apply to the children.
ns.unshare("pid,time")
T.eq("pid.self_kept", ns.id("pid"), before.pid)
T.eq("time.self_kept", ns.id("time"), before.time)
local p = ns.fork(function()
  if ns.getpid() ~= 1 then return 2 end
  if ns.id("pid") == before.pid then return 3 end
  if ns.id("time") == before.time then return 4 end
  return 0
end)
T.eq("pid_time.child", p:wait().code, 0)
print("done")
