-- mkdir, chmod, chdir, symlink, write_file, read_file in the run directory.
-- The Rust side checks modes and link targets afterwards.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

-- mkdir: mode as an octal string, applied as given.
ns.mkdir(D .. "/a", "0700")
ns.mkdir(D .. "/b", "0755")
ns.mkdir(D .. "/c") -- default 0755
T.errno("mkdir.eexist", "EEXIST", ns.mkdir, D .. "/a")
T.errno("mkdir.enoent", "ENOENT", ns.mkdir, D .. "/x/y/z")
T.check("mkdir.enoent_nothing_made", not T.exists(D .. "/x"))

-- mkdir with parents, like mkdir -p: repeatable, refuses a file on the way.
ns.mkdir(D .. "/p/q/r", "0750", {parents = true})
ns.mkdir(D .. "/p/q/r", "0750", {parents = true})
ns.mkdir(D .. "/p", nil, {parents = true})
T.ok("mkdir.parents_repeat")
ns.write_file(D .. "/p/q/r/file", "deep")
T.eq("mkdir.parents", ns.read_file(D .. "/p/q/r/file"), "deep")
T.errno("mkdir.parents_enotdir", "ENOTDIR", ns.mkdir, D .. "/p/q/r/file/sub", nil, {parents = true})

-- chmod.
ns.mkdir(D .. "/m")
ns.chmod(D .. "/m", "0711")
ns.write_file(D .. "/mf", "x")
ns.chmod(D .. "/mf", "2644") -- 0644 | setgid
T.errno("chmod.enoent", "ENOENT", ns.chmod, D .. "/nope", "0755")

-- write_file / read_file: binary data, exact mode, truncation.
local blob = {}
for i = 0, 255 do blob[#blob + 1] = string.char(i) end
blob = table.concat(blob) .. "\0end"
ns.write_file(D .. "/blob", blob, "0600")
T.eq("file.roundtrip", ns.read_file(D .. "/blob"), blob)
ns.write_file(D .. "/blob", "short")
T.eq("file.truncated", ns.read_file(D .. "/blob"), "short")
ns.write_file(D .. "/empty", "")
T.eq("file.empty", ns.read_file(D .. "/empty"), "")
ns.write_file(D .. "/default_mode", "d")
ns.write_file(D .. "/exec_mode", "#!/bin/sh\necho exec-mode-ok\n", "0755")
T.errno("file.read_missing", "ENOENT", ns.read_file, D .. "/missing")
T.errno("file.read_dir", "EISDIR", ns.read_file, D .. "/a")
T.errno("file.write_dir", "EISDIR", ns.write_file, D .. "/a", "x")
if T.user then
  local e = T.errno("file.eacces", "EACCES", ns.write_file, "/etc/nsrun-test-not-allowed", "x")
  T.has("file.eacces_hint", e.hint, "permission")
  T.errno("file.read_eacces", "EACCES", ns.read_file, "/etc/shadow")
end

-- read_file of /proc files.
T.has("file.proc", ns.read_file("/proc/self/status"), "Pid:")

-- symlink: the same target again is fine, another is EEXIST.
ns.symlink("target-one", D .. "/link")
ns.symlink("target-one", D .. "/link")
T.ok("symlink.idempotent")
local e = T.errno("symlink.other_target", "EEXIST", ns.symlink, "target-two", D .. "/link")
T.has("symlink.message", e.message, D .. "/link")
T.errno("symlink.over_file", "EEXIST", ns.symlink, "x", D .. "/blob")
T.errno("symlink.enoent", "ENOENT", ns.symlink, "x", D .. "/nope/link")
ns.symlink("p/q/r/file", D .. "/rel")
T.eq("symlink.follow", ns.read_file(D .. "/rel"), "deep")

-- chdir: relative paths resolve from there.
ns.chdir(D .. "/p/q")
T.eq("chdir.relative", ns.read_file("r/file"), "deep")
ns.write_file("written-relative", "rel")
ns.chdir("..")
T.eq("chdir.dotdot", ns.read_file("q/written-relative"), "rel")
T.errno("chdir.enotdir", "ENOTDIR", ns.chdir, D .. "/blob")

-- readdir: sorted names, without . and ..
T.eq("readdir", table.concat(ns.readdir(D .. "/p/q"), ","), "r,written-relative")
T.eq("readdir.relative", table.concat(ns.readdir("q/r"), ","), "file")
T.eq("readdir.empty", #ns.readdir(D .. "/c"), 0)
T.errno("readdir.enoent", "ENOENT", ns.readdir, D .. "/missing")
T.errno("readdir.enotdir", "ENOTDIR", ns.readdir, D .. "/blob")

-- The kernel's working directory and resolved paths, whatever $PWD says
-- (the test runs us with a $PWD that is not our directory).
ns.chdir(D)
T.eq("getcwd", ns.getcwd(), ns.realpath(D))
ns.mkdir(D .. "/realdir")
ns.symlink("realdir", D .. "/rlink")
T.eq("realpath.link", ns.realpath(D .. "/rlink/../rlink"), ns.realpath(D) .. "/realdir")
T.eq("realpath.relative", ns.realpath("rlink"), ns.realpath(D) .. "/realdir")
T.errno("realpath.enoent", "ENOENT", ns.realpath, D .. "/nowhere")
print("done")
