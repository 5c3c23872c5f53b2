-- ns.open, ns.id, handles (fields, equality, close, <close>), p:ns().
local ns = require "nsrun"
local T = require "testlib"

local kinds = {"user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time"}
for _, k in ipairs(kinds) do
  local h = ns.open(k)
  T.eq("open." .. k .. ".kind", h.kind, k)
  T.eq("open." .. k .. ".inode", h.inode, ns.id(k))
  T.eq("open." .. k .. ".path", h.path, "/proc/self/ns/" .. (k == "mount" and "mnt" or k))
  T.check("open." .. k .. ".fd", math.type(h.fd) == "integer" and h.fd > 2, T.show(h.fd))
  T.check("open." .. k .. ".eq", ns.open(k) == h)
  T.put("id." .. k, ns.id(k))
  h:close()
end

T.check("eq.same_kind", ns.open("net") == ns.open("net"))
T.check("eq.other_kind", ns.open("net") ~= ns.open("uts"))
T.check("eq.not_a_handle", ns.open("net") ~= "net")
T.eq("alias.mnt_kind", ns.open("mnt").kind, "mount")
T.eq("alias.mnt_id", ns.id("mnt"), ns.id("mount"))
T.eq("open.path_kind", ns.open("/proc/self/ns/uts").kind, "uts")
T.check("open.path_eq", ns.open("/proc/self/ns/uts") == ns.open("uts"))
T.eq("open.path_field", ns.open("/proc/self/ns/uts").path, "/proc/self/ns/uts")
T.eq("open.by_pid", ns.open("net", ns.getpid()).inode, ns.id("net"))
T.eq("open.by_pid_path", ns.open("net", ns.getpid()).path, "/proc/" .. ns.getpid() .. "/ns/net")
T.eq("open.self_string", ns.open("net", "self").inode, ns.id("net"))
T.eq("id.by_pid", ns.id("net", ns.getpid()), ns.id("net"))
T.check("id.integer", math.type(ns.id("net")) == "integer")
T.eq("tostring", tostring(ns.open("net")), "namespace net:[" .. ns.id("net") .. "]")
T.errmsg("open.not_a_namespace", "not a namespace file", ns.open, "/etc/passwd")
-- A FIFO (the test makes one) is refused at once: the open used to wait
-- for a writer forever.
T.errmsg("open.fifo", "not a namespace file", ns.open, T.dir .. "/fifo")
T.errmsg("setns.fifo", "not a namespace file", ns.setns, T.dir .. "/fifo")

-- close releases the descriptor; the handle then reads as closed.
local h = ns.open("ipc")
local fd = h.fd
T.check("close.fd_open", T.exists("/proc/self/fd/" .. fd))
h:close()
T.check("close.fd_closed", not T.exists("/proc/self/fd/" .. fd))
T.eq("close.kind", h.kind, nil)
T.eq("close.fd", h.fd, nil)
T.eq("close.tostring", tostring(h), "namespace (closed)")
T.check("close.twice", pcall(h.close, h))
T.check("close.not_equal", h ~= ns.open("ipc"))
do
  local hc <close> = ns.open("uts")
  fd = hc.fd
  T.check("tbc.open", T.exists("/proc/self/fd/" .. fd))
end
T.check("tbc.closed", not T.exists("/proc/self/fd/" .. fd))

-- A child in a new net namespace: different id, handles through p:ns.
local outer = ns.id("net")
local p = T.clone("net", function() ns.exec({"sleep", "30"}) end)
T.ne("child.net_id", ns.id("net", p.pid), outer)
T.check("child.ns_eq_open", p:ns("net") == ns.open("net", p.pid))
T.check("child.ns_ne_ours", p:ns("net") ~= ns.open("net"))
T.eq("child.ns_kind", p:ns("net").kind, "net")
T.eq("child.ns_inode", p:ns("net").inode, ns.id("net", p.pid))
T.check("child.uts_same", p:ns("uts") == ns.open("uts"))
T.check("child.alias", p:ns("mnt") == ns.open("mount", p.pid))
-- Lua asks the handle's __eq with the process first: false, not an error.
T.eq("eq.process_first", p == ns.open("net"), false)
T.eq("eq.process_second", ns.open("net") == p, false)
T.check("child.kill", p:kill("KILL"))
T.eq("child.killed", p:wait().signal, 9)
print("done")
