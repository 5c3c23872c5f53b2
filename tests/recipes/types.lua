-- Bytes end to end, wrong types refused, messages that say what is wrong.
-- Runs as root and unprivileged; the Rust side checks names on disk.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

-- Paths are bytes: a name that is not UTF-8 reaches the kernel unchanged.
ns.write_file(D .. "/nb\255", "x")
ns.mkdir(D .. "/d\254")
ns.symlink("t\253", D .. "/l\252")
ns.chmod(D .. "/nb\255", "0600")
T.eq("bytes.read_file", ns.read_file(D .. "/nb\255"), "x")
local seen = {}
for _, n in ipairs(ns.readdir(D)) do seen[n] = true end
T.check("bytes.readdir", seen["nb\255"] and seen["d\254"] and seen["l\252"], T.show(ns.readdir(D)))
ns.chdir(D .. "/d\254")
ns.chdir(D)
T.ok("bytes.chdir")

-- A mount on a non-UTF-8 target, in a mount namespace of its own.
local st = T.clone("mount", function()
  ns.mount(nil, "/", nil, "rec,private")
  ns.tmpfs(D .. "/d\254")
  ns.write_file(D .. "/d\254/inside", "y")
  ns.bind(D .. "/d\254", D .. "/d\254", {ro = true})
  return 0
end):wait()
T.eq("bytes.mount_child", st.code, 0)
T.check("bytes.mount_private", not T.exists(D .. "/d\254/inside"))

-- ns.exec's argv and env are bytes too, and so are ns.spawn's (argv, env,
-- cwd, a file target).
ns.fork(function()
  ns.exec({"sh", "-c", 'printf %s "$1$V" > "$2"', "sh", "a\250", D .. "/ex\249"},
    {env = {V = "v\248", PATH = "/usr/bin:/bin"}})
end):wait()
T.eq("bytes.argv_env", ns.read_file(D .. "/ex\249"), "a\250v\248")
ns.mkdir(D .. "/cwd\247")
local r = ns.run{argv = {"sh", "-c", 'printf %s "$1$V" > "$2"; pwd', "sh", "s\246", D .. "/sp\245"},
  env = {V = "w\244"}, cwd = D .. "/cwd\247", stdout = D .. "/out\243"}
T.eq("bytes.spawn_code", r.code, 0)
T.eq("bytes.spawn_argv_env", ns.read_file(D .. "/sp\245"), "s\246w\244")
T.eq("bytes.spawn_cwd_file", ns.read_file(D .. "/out\243"), D .. "/cwd\247\n")

-- A NUL byte in a path is named, not EINVAL or EIO.
T.errmsg("nul.write_file", "path contains a NUL byte", ns.write_file, D .. "/a\0b", "x")
T.errmsg("nul.mkdir", "path contains a NUL byte", ns.mkdir, D .. "/a\0b")
T.errmsg("nul.mount", "path contains a NUL byte", ns.mount, "none", "/a\0b", "tmpfs")
T.errmsg("nul.argv", "contains a NUL byte", ns.run, {argv = {"echo", "a\0b"}})

-- Options of the wrong type are errors naming the key and the type.
T.errmsg("type.setup", "option 'setup' must be a function, got table",
  ns.spawn, {argv = {"true"}, setup = {}})
T.errmsg("type.before_start", "option 'before_start' must be a function, got number",
  ns.spawn, {argv = {"true"}, before_start = 42})
T.errmsg("type.groups", "option 'groups' must be a list of gids, got number",
  ns.spawn, {argv = {"true"}, groups = 5})
T.errmsg("type.sandbox_setup", "option 'setup' must be a function, got table",
  require("nsrun.sandbox").run, {argv = {"true"}, setup = {}})

-- A misspelt stdio kind is no file name.
T.errmsg("stdio.typo", "unknown stdio kind 'pipe ' (did you mean \"pipe\"?)",
  ns.spawn, {argv = {"true"}, stdout = "pipe "})
T.errmsg("stdio.word", "unknown stdio kind 'out.txt'", ns.spawn, {argv = {"true"}, stdout = "out.txt"})
T.check("stdio.nothing_made", not T.exists("pipe ") and not T.exists(D .. "/pipe "))
ns.run{argv = {"echo", "hi"}, stdout = D .. "/out"}
T.eq("stdio.path", ns.read_file(D .. "/out"), "hi\n")

-- Numeric modes are refused with the string to write instead.
T.errmsg("mode.number", 'write it as "0755"', ns.mkdir, D .. "/m", 0755)
T.errmsg("mode.decimal", 'write it as "0755"', ns.mkdir, D .. "/m", 493)
T.errmsg("mode.tmpfs", 'got the number 1777', ns.tmpfs, D .. "/m", {mode = 1777})
T.check("mode.nothing_made", not T.exists(D .. "/m"))
T.errmsg("mode.sandbox", "a mode is an octal string",
  require("nsrun.sandbox").run, {argv = {"true"}, tmpfs = {{"/tmp", mode = 1777}}})

-- One prefix per message.
local e = T.errmsg("prefix.tmpfs", "tmpfs: bad mode '999'", ns.tmpfs, D .. "/m", {mode = "999"})
T.lacks("prefix.tmpfs_once", tostring(e), "tmpfs: tmpfs:")
-- A reader that closes its end while the process runs on (a pipe is
-- closed for us once its process is waited for).
local p = ns.spawn{argv = {"sh", "-c", "exec 0<&-; exec sleep 30"}, stdin = "pipe"}
local e2 = T.errno("prefix.pipe", "EPIPE", function() p.stdin:write(("x"):rep(1 << 17)) end)
p:kill()
p:wait()
T.eq("prefix.pipe_message", e2.message, "write to pipe: Broken pipe (EPIPE)")

-- One size parser: tmpfs takes what cgroups and rlimits take.
T.errmsg("size.zero", "bad size '0': a tmpfs needs more than 0 bytes", ns.tmpfs, D .. "/m", {size = "0"})
T.errmsg("size.bad", "bad size '1.5'", ns.tmpfs, D .. "/m", {size = "1.5"})
st = T.clone("mount", function()
  ns.mount(nil, "/", nil, "rec,private")
  ns.mkdir(D .. "/sz")
  ns.tmpfs(D .. "/sz", {size = "1.5M"})
  local line = T.mounts()[D .. "/sz"] or ""
  return line:find("size=1536k", 1, true) and 0 or 1
end):wait()
T.eq("size.fraction", st.code, 0)

-- sandbox.run takes every ns.spawn option it does not handle itself.
local sandbox = require "nsrun.sandbox"
for _, k in ipairs(ns.spawn_options()) do
  local ok, err = pcall(sandbox.run, {[k] = 0, argv = {"true"}})
  if not ok and tostring(err):find("unknown option", 1, true) and k ~= "mount_proc" then
    error("sandbox refuses ns.spawn's option " .. k .. ": " .. tostring(err))
  end
end
T.ok("sandbox.keys")
-- Its did-you-mean is the same every time (no hash order).
local first
for _ = 1, 20 do
  local _, err = pcall(sandbox.run, {argv = {"true"}, set = 1})
  first = first or err
  if err ~= first then error("did-you-mean changes: " .. T.show(first) .. " vs " .. T.show(err)) end
end
T.ok("sandbox.suggest_stable")

-- Interface names: the limit is named.
T.clone("net", function()
  T.errmsg("ifname.long", "interface name 'abcdefghijklmnop' is longer than 15 bytes",
    ns.net.up, "abcdefghijklmnop")
  T.errmsg("ifname.veth", "is longer than 15 bytes", ns.net.veth, "abcdefghijklmnop", "x")
  return 0
end):wait()

-- Joining a pid namespace whose init is gone: said so, not "Out of memory".
local q = ns.spawn{argv = {"sleep", "100"}, namespaces = T.user and "user,pid" or "pid", init = false}
local h = q:ns("pid")
local u = T.user and q:ns("user") or nil
q:kill(9)
q:wait()
T.errmsg("pidns.dead_init", "into a pid namespace whose init has exited",
  ns.run, {argv = {"true"}, join = {pid = h, user = u}})
h:close()
if u then u:close() end
print("done")
