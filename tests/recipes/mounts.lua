-- mount (positional and table form), bind (ro, rec, create), umount
-- (plain, busy, detach), pivot_root (one and two arguments) and chroot.
-- Everything happens in a private mount namespace (inside a user namespace
-- when unprivileged) under the run directory D.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

T.isolate("mount")
T.ok("isolated")

-- Positional mount.
ns.mkdir(D .. "/m1")
ns.mount("tmpfs", D .. "/m1", "tmpfs", "nosuid,nodev", "size=1m,mode=0755")
T.eq("mount.fstype", T.fstype(D .. "/m1"), "tmpfs")
T.has("mount.nosuid", T.opts(D .. "/m1"), ",nosuid,")
T.has("mount.nodev", T.opts(D .. "/m1"), ",nodev,")
ns.write_file(D .. "/m1/inside", "in the tmpfs")
T.eq("mount.write", ns.read_file(D .. "/m1/inside"), "in the tmpfs")

-- Table form, flags as a list.
ns.mkdir(D .. "/m2")
ns.mount{source = "nsrun-test", target = D .. "/m2", fstype = "tmpfs", flags = {"noexec", "nosuid"}, data = "size=1m"}
T.eq("mount_table.fstype", T.fstype(D .. "/m2"), "tmpfs")
T.eq("mount_table.source", T.source(D .. "/m2"), "nsrun-test")
T.has("mount_table.noexec", T.opts(D .. "/m2"), ",noexec,")
ns.write_file(D .. "/m2/f", "x")

-- Remount read-only.
ns.mount(nil, D .. "/m2", nil, "remount,ro,noexec,nosuid")
T.has("remount.ro", T.opts(D .. "/m2"), ",ro,")
T.errno("remount.erofs", "EROFS", ns.write_file, D .. "/m2/f", "y")
T.eq("remount.content_kept", ns.read_file(D .. "/m2/f"), "x")

-- Mount failures.
T.errno("mount.enoent", "ENOENT", ns.mount, "tmpfs", D .. "/nope", "tmpfs")
T.errno("mount.enodev", "ENODEV", ns.mount, "none", D .. "/m1", "nsrunnosuchfs")

-- Bind read-only.
ns.mkdir(D .. "/src")
ns.write_file(D .. "/src/file", "hello")
ns.mkdir(D .. "/ro")
ns.bind(D .. "/src", D .. "/ro", {ro = true})
T.check("bind_ro.mounted", T.mounted(D .. "/ro"))
T.eq("bind_ro.read", ns.read_file(D .. "/ro/file"), "hello")
local e = T.errno("bind_ro.erofs", "EROFS", ns.write_file, D .. "/ro/new", "x")
T.has("bind_ro.hint", e.hint, "read-only")
T.errno("bind_ro.mkdir", "EROFS", ns.mkdir, D .. "/ro/dir")
T.errno("bind_ro.overwrite", "EROFS", ns.write_file, D .. "/ro/file", "changed")
ns.write_file(D .. "/src/file2", "via source")
T.eq("bind_ro.source_writable", ns.read_file(D .. "/ro/file2"), "via source")

-- Bind read-write.
ns.mkdir(D .. "/rw")
ns.bind(D .. "/src", D .. "/rw")
ns.write_file(D .. "/rw/via_bind", "z")
T.eq("bind_rw.write_through", ns.read_file(D .. "/src/via_bind"), "z")

-- Bind with create: a missing directory target (and its parents) …
ns.bind(D .. "/src", D .. "/made/deep/dir", {create = true})
T.check("bind_create.dir_mounted", T.mounted(D .. "/made/deep/dir"))
T.eq("bind_create.dir_content", ns.read_file(D .. "/made/deep/dir/file"), "hello")
-- … and a missing file target.
ns.bind(D .. "/src/file", D .. "/madefile/f", {create = true, ro = true})
T.check("bind_create.file_mounted", T.mounted(D .. "/madefile/f"))
T.eq("bind_create.file_content", ns.read_file(D .. "/madefile/f"), "hello")
T.errno("bind_create.file_ro", "EROFS", ns.write_file, D .. "/madefile/f", "x")

-- Without create, a missing target is an error and nothing is made.
e = T.errno("bind.missing_target", "ENOENT", ns.bind, D .. "/src", D .. "/nope")
T.has("bind.missing_target_hint", e.hint, "create")
T.check("bind.missing_target_not_made", not T.exists(D .. "/nope"))
T.errno("bind.missing_source", "ENOENT", ns.bind, D .. "/nosrc", D .. "/rw")
T.errno("bind.missing_source_create", "ENOENT", ns.bind, D .. "/nosrc", D .. "/nope2", {create = true})
T.check("bind.missing_source_create_not_made", not T.exists(D .. "/nope2"))

-- rec (default true) carries mounts below the source along.
ns.mkdir(D .. "/tree/sub", "0755", {parents = true})
ns.mount("tmpfs", D .. "/tree/sub", "tmpfs", nil, "size=1m")
ns.write_file(D .. "/tree/sub/m", "sub")
ns.mkdir(D .. "/rec_yes")
ns.bind(D .. "/tree", D .. "/rec_yes")
T.eq("bind_rec.default", ns.read_file(D .. "/rec_yes/sub/m"), "sub")
ns.mkdir(D .. "/rec_no")
ns.bind(D .. "/tree", D .. "/rec_no", {rec = false})
T.check("bind_rec.false", not T.exists(D .. "/rec_no/sub/m"))
ns.mkdir(D .. "/rec_ro")
ns.bind(D .. "/tree", D .. "/rec_ro", {ro = true})
T.errno("bind_ro.recursive", "EROFS", ns.write_file, D .. "/rec_ro/sub/x", "x")

-- A bind through mount flags.
ns.mkdir(D .. "/mb")
ns.mount(D .. "/src", D .. "/mb", nil, {"bind"})
T.eq("mount_bind_flag", ns.read_file(D .. "/mb/file"), "hello")

-- umount.
ns.umount(D .. "/mb")
T.check("umount.gone", not T.mounted(D .. "/mb"))
T.check("umount.content_gone", not T.exists(D .. "/mb/file"))
T.errno("umount.not_mounted", "EINVAL", ns.umount, D .. "/mb")
T.errno("umount.missing", "ENOENT", ns.umount, D .. "/nope")

-- A busy mount needs "detach".
ns.mkdir(D .. "/busy")
ns.mount("tmpfs", D .. "/busy", "tmpfs")
ns.chdir(D .. "/busy")
e = T.errno("umount.busy", "EBUSY", ns.umount, D .. "/busy")
T.has("umount.busy_hint", e.hint, "detach")
ns.umount(D .. "/busy", "detach")
T.check("umount.detach", not T.mounted(D .. "/busy"))
ns.chdir(D)
ns.mount("tmpfs", D .. "/busy", "tmpfs")
ns.umount(D .. "/busy", {"detach"})
T.check("umount.detach_list", not T.mounted(D .. "/busy"))

-- pivot_root with one argument: the old root is gone afterwards.
ns.mkdir(D .. "/newroot")
ns.mount("tmpfs", D .. "/newroot", "tmpfs")
ns.write_file(D .. "/newroot/marker", "new root")
-- pivot_root moves every process of the mount namespace whose root is the
-- old root, so each child takes a mount namespace of its own first.
T.child("pivot1", function()
  ns.unshare("mount")
  ns.pivot_root(D .. "/newroot")
  assert(ns.read_file("/marker") == "new root", "/marker is not the new root's")
  assert(ns.read_file("marker") == "new root", "the cwd is not the new /")
  local names = table.concat(ns.readdir("/"), ",")
  assert(names == "marker", "/ holds " .. names)
  assert(not T.exists("/etc/passwd"), "/etc/passwd of the old root is still visible")
  assert(not T.exists("/proc/self/mountinfo"), "/proc of the old root is still visible")
  assert(not T.exists(D .. "/src/file"), "the old root's files are still visible")
  local ok = pcall(ns.chdir, "/..")
  assert(ok and not T.exists("/etc/passwd"), "/.. leads out of the new root")
end)
T.check("pivot1.parent_unaffected", T.exists("/etc/passwd"))
-- The one-argument form on a missing directory fails cleanly.
T.child("pivot1.missing", function()
  ns.unshare("mount")
  T.errno("pivot1.enoent", "ENOENT", ns.pivot_root, D .. "/no-such-root")
  assert(T.exists("/etc/passwd"), "the root changed")
end)

-- pivot_root with two arguments: the old root sits at put_old.
ns.mkdir(D .. "/nr2")
ns.mount("tmpfs", D .. "/nr2", "tmpfs")
ns.mkdir(D .. "/nr2/old")
ns.write_file(D .. "/nr2/marker2", "two")
T.child("pivot2", function()
  ns.unshare("mount")
  ns.pivot_root(D .. "/nr2", D .. "/nr2/old")
  ns.chdir("/")
  assert(ns.read_file("/marker2") == "two", "/marker2 is not the new root's")
  assert(T.exists("/old/etc/passwd"), "the old root is not at /old")
  local mounts = T.mounts("/old/proc/self/mountinfo")
  assert(mounts["/"] and mounts["/"]:match(" %- tmpfs "), "/ is not the tmpfs")
  assert(mounts["/old"], "/old is not a mount point")
  ns.umount("/old", "detach")
  assert(not T.exists("/old/etc/passwd"), "the old root is still at /old after umount")
end)
-- new_root must be a mount point (here: a directory inside the tmpfs m1).
ns.mkdir(D .. "/m1/sub/old", "0755", {parents = true})
local pe = T.errno("pivot2.einval", "EINVAL", ns.pivot_root, D .. "/m1/sub", D .. "/m1/sub/old")
T.has("pivot2.hint", pe.hint, "mount point")

-- chroot.
ns.mkdir(D .. "/chr")
ns.write_file(D .. "/chr/hello", "chrooted")
T.child("chroot", function()
  ns.chroot(D .. "/chr")
  ns.chdir("/")
  assert(ns.read_file("/hello") == "chrooted", "/hello is not the chroot's")
  assert(not T.exists("/etc/passwd"), "the old root is visible")
end)
T.errno("chroot.enoent", "ENOENT", ns.chroot, D .. "/nochr")
T.errno("chroot.enotdir", "ENOTDIR", ns.chroot, D .. "/src/file")

print("done")
