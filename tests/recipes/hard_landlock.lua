-- Landlock: file system access only below the listed paths.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

local rw = T.dir .. "/rw"
ns.mkdir(rw)
ns.write_file(T.dir .. "/secret", "s3cret\n")
local ll = {
  namespaces = H.kinds(""),
  landlock = { ro = { "/usr", "/bin", "/lib", "/lib64", "/etc", "/proc" }, rw = { rw, "/dev/null" } },
}
local function sh(script) return H.run(ll, { argv = { "sh", "-c", script } }) end

local r = sh("cat /etc/hostname >/dev/null && echo read-ok")
T.eq("ro.read", r.stdout, "read-ok\n")
r = sh("echo x > " .. rw .. "/f && cat " .. rw .. "/f")
T.eq("rw.write", r.stdout, "x\n")
r = sh("cat " .. T.dir .. "/secret")
T.ne("outside.read", r.code, 0)
T.has("outside.read.msg", r.stderr, "Permission denied")
r = sh("echo x > /etc/nsrun-landlock-test")
T.ne("ro.write", r.code, 0)
r = sh("mkdir " .. T.dir .. "/newdir")
T.ne("outside.mkdir", r.code, 0)
T.eq("outside.mkdir.none", T.exists(T.dir .. "/newdir"), false)
T.eq("nnp", H.status(ll).NoNewPrivs, "1")
-- Control: without landlock the secret is readable.
r = H.run({ namespaces = H.kinds("") }, { argv = { "cat", T.dir .. "/secret" } })
T.eq("control.read", r.stdout, "s3cret\n")

T.errmsg("bad.key", "unknown option 'rww' (did you mean 'rw'?)", ns.run, { argv = { "true" }, landlock = { rww = {} } })
T.errmsg("bad.path", "landlock: open /nonexistent/nsrun", ns.run,
  { argv = { "true" }, landlock = { ro = { "/nonexistent/nsrun" } } })
print("done")
