-- Error values and argument checking. Runs as root and unprivileged; the
-- calls here fail before they could change anything.
local ns = require "nsrun"
local T = require "testlib"

-- A failed system call raises a table with op, errno, code, message,
-- hint, where and a __tostring.
local e = T.errno("value.errno", "ENOENT", function()
  ns.mount("tmpfs", "/nonexistent-nsrun-dir/x", "tmpfs")
end)
T.eq("value.type", type(e), "table")
T.eq("value.code", e.code, 2)
T.eq("value.message", e.message, "mount tmpfs on /nonexistent-nsrun-dir/x: No such file or directory (ENOENT)")
T.check("value.op", type(e.op) == "string" and e.op:sub(1, 5) == "mount", T.show(e.op))
T.check("value.where", type(e.where) == "string" and e.where:match("^recipe%.lua:%d+$"), T.show(e.where))
T.has("value.hint", e.hint, "does not exist")
T.eq("value.tostring", tostring(e), e.where .. ": " .. e.message .. "\nhint: " .. e.hint)
T.eq("value.name", getmetatable(e).__name, "nsrun.Error")

-- An error without a known cause has no hint line.
local e2 = T.errno("nohint.errno", "ENOENT", function() ns.read_file("/nonexistent-nsrun-file") end)
T.eq("nohint.message", e2.message, "read /nonexistent-nsrun-file: No such file or directory (ENOENT)")
if e2.hint == nil then
  T.lacks("nohint.tostring", tostring(e2), "hint:")
else
  T.has("nohint.tostring", tostring(e2), "\nhint: " .. e2.hint)
end

-- Re-raising keeps the value.
local ok, e3 = pcall(function()
  local _, inner = pcall(ns.read_file, "/nonexistent-nsrun-file")
  error(inner)
end)
T.check("rethrow.failed", not ok)
T.eq("rethrow.errno", type(e3) == "table" and e3.errno, "ENOENT")

-- Several ENOENT paths.
T.errno("enoent.chdir", "ENOENT", function() ns.chdir("/nonexistent-nsrun-dir") end)
T.errno("enoent.mkdir", "ENOENT", function() ns.mkdir("/nonexistent-nsrun-dir/sub") end)
T.errno("enoent.chmod", "ENOENT", function() ns.chmod("/nonexistent-nsrun-dir", "0755") end)
T.errno("enoent.write_file", "ENOENT", function() ns.write_file("/nonexistent-nsrun-dir/f", "x") end)
T.errno("enoent.open", "ENOENT", function() ns.open("/nonexistent-nsrun-dir/ns") end)
T.errno("enoent.setns_path", "ENOENT", function() ns.setns("/nonexistent-nsrun-dir/ns") end)
T.errno("enoent.chroot", "ENOENT", function() ns.chroot("/nonexistent-nsrun-dir") end)
local gone = ns.fork(function() return 0 end)
gone:wait()
T.errno("enoent.id_of_dead_pid", "ENOENT", function() ns.id("net", gone.pid) end)
T.errno("enoent.open_of_dead_pid", "ENOENT", function() ns.open("uts", gone.pid) end)
T.errno("esrch.kill_dead_pid", "ESRCH", function() ns.kill(gone.pid, 0) end)

-- Wrong argument types: Lua's own message, with the caller's position.
local function badarg(name, want, f)
  local ok, err = pcall(f)
  if ok then error("FAIL " .. name .. ": no error", 2) end
  local s = tostring(err)
  local rest = s:match("^recipe%.lua:%d+: (.*)$")
  if rest ~= want then
    error("FAIL " .. name .. ": got " .. T.show(s) .. ", want recipe.lua:LINE: " .. T.show(want), 2)
  end
  T.ok(name)
end
badarg("bad.mount", "bad argument #2 to 'mount' (string expected, got number)",
  function() ns.mount("tmpfs", 42) end)
badarg("bad.mount_noarg", "bad argument #2 to 'mount' (string expected, got no value)",
  function() ns.mount("tmpfs") end)
badarg("bad.sethostname", "bad argument #1 to 'sethostname' (string expected, got number)",
  function() ns.sethostname(42) end)
badarg("bad.setdomainname", "bad argument #1 to 'setdomainname' (string expected, got table)",
  function() ns.setdomainname({}) end)
badarg("bad.unshare", "bad argument #1 to 'unshare' (string or list of strings expected, got number)",
  function() ns.unshare(42) end)
badarg("bad.unshare_list", "bad argument #1 to 'unshare' (string or list of strings expected, got table)",
  function() ns.unshare({"net", 5}) end)
badarg("bad.bind", "bad argument #2 to 'bind' (string expected, got no value)",
  function() ns.bind("/a") end)
badarg("bad.bind_opts", "bad argument #3 to 'bind' (table expected, got string)",
  function() ns.bind("/a", "/b", "ro") end)
badarg("bad.umount", "bad argument #1 to 'umount' (string expected, got nil)",
  function() ns.umount(nil, "detach") end)
badarg("bad.pivot_root", "bad argument #2 to 'pivot_root' (string expected, got number)",
  function() ns.pivot_root("/a", 1) end)
badarg("bad.chroot", "bad argument #1 to 'chroot' (string expected, got boolean)",
  function() ns.chroot(true) end)
badarg("bad.chdir", "bad argument #1 to 'chdir' (string expected, got no value)",
  function() ns.chdir() end)
badarg("bad.mkdir", "bad argument #1 to 'mkdir' (string expected, got number)",
  function() ns.mkdir(1) end)
badarg("bad.mkdir_opts", "bad argument #3 to 'mkdir' (table expected, got boolean)",
  function() ns.mkdir("/x", "0755", true) end)
badarg("bad.symlink", "bad argument #2 to 'symlink' (string expected, got no value)",
  function() ns.symlink("target") end)
badarg("bad.write_file", "bad argument #2 to 'write_file' (string expected, got table)",
  function() ns.write_file("x", {}) end)
badarg("bad.read_file", "bad argument #1 to 'read_file' (string expected, got number)",
  function() ns.read_file(3) end)
badarg("bad.kill", "bad argument #1 to 'kill' (number expected, got string)",
  function() ns.kill("x") end)
badarg("bad.fork", "bad argument #1 to 'fork' (function expected, got number)",
  function() ns.fork(1) end)
badarg("bad.clone", "bad argument #2 to 'clone' (function expected, got no value)",
  function() ns.clone("net") end)
badarg("bad.exec", "bad argument #1 to 'exec' (table expected, got string)",
  function() ns.exec("ls") end)
badarg("bad.exec_opts", "bad argument #2 to 'exec' (table expected, got string)",
  function() ns.exec({"ls"}, "x") end)
badarg("bad.setuid", "bad argument #1 to 'setuid' (number expected, got string)",
  function() ns.setuid("root") end)
badarg("bad.setgid", "bad argument #1 to 'setgid' (number expected, got no value)",
  function() ns.setgid() end)
badarg("bad.setgroups_list", "bad argument #1 to 'setgroups_list' (table expected, got number)",
  function() ns.setgroups_list(0) end)
badarg("bad.uid_map", "bad argument #2 to 'uid_map' (table expected, got number)",
  function() ns.uid_map("self", 5) end)
badarg("bad.gid_map", "bad argument #2 to 'gid_map' (table expected, got no value)",
  function() ns.gid_map("self") end)
badarg("bad.setgroups", "bad argument #2 to 'setgroups' (string expected, got boolean)",
  function() ns.setgroups("self", false) end)
badarg("bad.persist", "bad argument #3 to 'persist' (string expected, got no value)",
  function() ns.persist("net", "self") end)
badarg("bad.unpersist", "bad argument #1 to 'unpersist' (string expected, got number)",
  function() ns.unpersist(1) end)
badarg("bad.open", "bad argument #1 to 'open' (string expected, got no value)",
  function() ns.open() end)
badarg("bad.id", "bad argument #1 to 'id' (string expected, got number)",
  function() ns.id(1) end)
badarg("bad.setns", "bad argument #1 to 'setns' (pid, process, path or namespace handle expected, got table)",
  function() ns.setns({}) end)
badarg("bad.wait_self", "bad argument #1 to 'wait' (process expected, got no value)",
  function() gone.wait() end)

-- Bad values.
T.errmsg("val.setuid_range", "id out of range", function() ns.setuid(-1) end)
T.errmsg("val.mode", "bad mode '999'", function() ns.mkdir(T.dir .. "/m", "999") end)
T.errmsg("val.mode_range", "bad mode '10000'", function() ns.chmod(T.dir, "10000") end)
T.errmsg("val.pid", "pid must be positive", function() ns.id("net", -1) end)
T.errmsg("val.setgroups", "\"allow\" or \"deny\" expected, got 'maybe'",
  function() ns.setgroups("self", "maybe") end)
T.errmsg("val.uid_map_field", "map 'outside' must be an id", function() ns.uid_map("self", {{0, "x", 1}}) end)
T.errmsg("val.uid_map_empty", "bad argument #2 to 'uid_map'", function() ns.uid_map("self", {}) end)
T.errmsg("val.uid_map_count", "count 0", function() ns.uid_map("self", {{0, 0, 0}}) end)
T.errmsg("val.uid_map_overlap", "overlaps", function() ns.uid_map("self", {{0, 0, 10}, {5, 100, 10}}) end)
T.errmsg("val.exec_empty", "argv is empty", function() ns.exec({}) end)
T.errmsg("val.exec_env", "exec: env", function() ns.exec({"true"}, {env = {1, 2}}) end)
T.errmsg("val.mount_flags_type", "must be a string or list of strings, got number",
  function() ns.mount("tmpfs", T.dir, "tmpfs", 5) end)
T.errmsg("val.mount_table_target", "needs a 'target'", function() ns.mount{source = "tmpfs"} end)
T.errmsg("val.kill_signal_name", "bad argument #2 to 'kill' (unknown signal 'NOPE'",
  function() ns.kill(ns.getpid(), "NOPE") end)
T.errmsg("val.kill_signal_number", "signal number out of range", function() ns.kill(ns.getpid(), 99) end)
T.errmsg("val.bind_opt_type", "option 'ro' must be a boolean, got string",
  function() ns.bind("/a", "/b", {ro = "yes"}) end)
T.errmsg("val.opt_key_type", "option keys must be strings", function() ns.bind("/a", "/b", {[true] = 1}) end)

-- Unknown namespace kinds name the valid ones.
local function lists_kinds(name, f)
  local err = T.errmsg(name, "unknown namespace kind 'bogus'", f)
  local s = tostring(err)
  for _, k in ipairs{"user", "mount", "pid", "uts", "ipc", "net", "cgroup", "time"} do
    if not s:find(k, 1, true) then error("FAIL " .. name .. ": " .. T.show(s) .. " does not list " .. k, 2) end
  end
  T.check(name .. ".where", s:match("^recipe%.lua:%d+: "), s)
end
lists_kinds("kind.unshare", function() ns.unshare("bogus") end)
lists_kinds("kind.unshare_list", function() ns.unshare({"uts", "bogus"}) end)
lists_kinds("kind.unshare_comma", function() ns.unshare("uts,bogus") end)
lists_kinds("kind.clone", function() ns.clone("bogus", function() end) end)
lists_kinds("kind.open", function() ns.open("bogus") end)
lists_kinds("kind.id", function() ns.id("bogus") end)
lists_kinds("kind.setns", function() ns.setns(ns.getpid(), "bogus") end)
lists_kinds("kind.persist", function() ns.persist("bogus", "self", T.dir .. "/p") end)
lists_kinds("kind.process_ns", function() gone:ns("bogus") end)
T.check("kind.persist_no_file", not T.exists(T.dir .. "/p"))

-- Misspelt option keys and flag names suggest the right one.
T.errmsg("mean.bind", "bind: unknown option 'recc' (did you mean 'rec'?)",
  function() ns.bind("/a", "/b", {recc = true}) end)
T.errmsg("mean.mount", "unknown option 'targte' (did you mean 'target'?)",
  function() ns.mount{source = "tmpfs", targte = "/x", fstype = "tmpfs"} end)
T.errmsg("mean.mkdir", "unknown option 'parent' (did you mean 'parents'?)",
  function() ns.mkdir(T.dir .. "/x", "0755", {parent = true}) end)
T.errmsg("mean.exec", "unknown option 'argv_0' (did you mean 'argv0'?)",
  function() ns.exec({"true"}, {argv_0 = "x"}) end)
T.errmsg("mean.mount_flag", "unknown mount flag 'nosiud' (did you mean 'nosuid'?)",
  function() ns.mount("tmpfs", T.dir, "tmpfs", "nodev,nosiud") end)
T.errmsg("mean.umount_flag", "unknown umount flag 'detatch' (did you mean 'detach'?)",
  function() ns.umount(T.dir, "detatch") end)
local far = T.errmsg("mean.unrelated", "unknown option 'zzzzzzzz'",
  function() ns.bind("/a", "/b", {zzzzzzzz = true}) end)
T.lacks("mean.unrelated_no_suggestion", tostring(far), "did you mean")

-- Closed handles.
local h = ns.open("net")
h:close()
T.errmsg("handle.closed", "closed", function() h:enter() end)

print("done")
