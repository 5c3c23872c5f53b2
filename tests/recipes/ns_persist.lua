-- ns.persist / ns.unpersist. As root this runs in the host's mount
-- namespace (the test holds the others off meanwhile); unprivileged, in a
-- mount namespace of its own.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

if T.user then T.isolate("mount") end

-- Keep a child's net namespace alive after the child is gone.
local p = T.clone("net", function() ns.exec({"sleep", "30"}) end)
local id = ns.id("net", p.pid)
ns.persist("net", p.pid, D .. "/netns")
T.check("persist.mounted", T.mounted(D .. "/netns"))
T.eq("persist.nsfs", T.fstype(D .. "/netns"), "nsfs")
p:kill("KILL")
T.eq("persist.child_gone", p:wait().signal, 9)
local h = ns.open(D .. "/netns")
T.eq("persist.kind", h.kind, "net")
T.eq("persist.same_namespace", h.inode, id)
h:close()
T.child("persist.join", function()
  ns.setns(D .. "/netns", "net")
  assert(ns.id("net") == id, "not in the persisted namespace")
end)
ns.unpersist(D .. "/netns")
T.check("unpersist.unmounted", not T.mounted(D .. "/netns"))
T.check("unpersist.file_removed", not T.exists(D .. "/netns"))
T.errno("unpersist.again", "ENOENT", ns.unpersist, D .. "/netns")

-- Our own uts namespace onto an existing file: the file stays afterwards.
local uts = ns.id("uts")
ns.write_file(D .. "/utsfile", "keep me")
ns.persist("uts", "self", D .. "/utsfile")
T.eq("persist.existing_file", ns.open(D .. "/utsfile").inode, uts)
T.eq("persist.existing_kind", ns.open(D .. "/utsfile").kind, "uts")
ns.unpersist(D .. "/utsfile")
T.check("unpersist.existing_unmounted", not T.mounted(D .. "/utsfile"))
T.eq("unpersist.existing_kept", ns.read_file(D .. "/utsfile"), "keep me")
T.errno("unpersist.not_mounted", "EINVAL", ns.unpersist, D .. "/utsfile")

-- Where the file cannot be made.
local e = T.errno("persist.enoent", "ENOENT", ns.persist, "uts", "self", D .. "/no/such/file")
T.check("persist.enoent_hint", e.hint ~= nil, "no hint")
print("done")
