-- Checks of nsrun.sandbox modelled on bubblewrap's own test suite.
-- Each check prints "ok NAME" or raises "FAIL NAME: ...".
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local work = arg[1]                -- a scratch directory of the test, writable by us

local function check(name, cond, detail)
  if not cond then error(("FAIL %s: %s"):format(name, tostring(detail)), 2) end
  print("ok " .. name)
end

-- The host as a base: /usr and friends read-only.
local base = {
  binds = { { "/usr", "/usr", ro = true }, { "/etc", "/etc", ro = true } },
  symlinks = { ["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64", ["/sbin"] = "usr/sbin" },
}
local function box(extra)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(extra) do
    if k == "binds" then
      local b = {}
      for _, x in ipairs(base.binds) do b[#b + 1] = x end
      for _, x in ipairs(v) do b[#b + 1] = x end
      o.binds = b
    elseif k == "symlinks" then
      local l = {}
      for a, t in pairs(base.symlinks) do l[a] = t end
      for a, t in pairs(v) do l[a] = t end
      o.symlinks = l
    else
      o[k] = v
    end
  end
  return sandbox.run(o)
end
local function sh(script, extra)
  extra = extra or {}
  extra.argv = { "sh", "-c", script }
  return box(extra)
end

-- Read-only binds refuse writes with EROFS, read-write ones accept.
ns.write_file(work .. "/rw/file", "host\n")
local r = sh("echo new > /ro/file; echo rc=$?; echo new > /rw/file && cat /rw/file",
  { binds = { { work .. "/rw", "/ro", ro = true }, { work .. "/rw", "/rw" } } })
check("ro_bind.erofs", r.stderr:find("Read%-only file system"), r.stderr)
check("ro_bind.rc", r.stdout:find("rc=[12]\n"), r.stdout)
check("rw_bind.write", r.stdout:find("new\n$"), r.stdout)
check("rw_bind.host_sees", ns.read_file(work .. "/rw/file") == "new\n", ns.read_file(work .. "/rw/file"))

-- /dev holds exactly the expected nodes.
r = sh("ls -A /dev | tr '\\n' ' '; ls -A /dev/pts | tr '\\n' ' '", { dev = "/dev" })
check("dev.nodes", r.stdout == "core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ptmx ",
  r.stdout .. r.stderr)
r = sh("echo hi > /dev/null && head -c 4 /dev/zero | wc -c && readlink /dev/fd && test -c /dev/pts/ptmx && echo pty",
  { dev = "/dev", proc = "/proc" })
check("dev.works", r.stdout == "4\n/proc/self/fd\npty\n", r.stdout .. r.stderr)

-- /proc shows only the sandbox's processes.
r = sh("ls /proc | grep -c '^[0-9]'", { proc = "/proc" })
check("proc.only_sandbox", tonumber(r.stdout) and tonumber(r.stdout) <= 4, r.stdout .. r.stderr)

-- The old root is gone.
r = sh("test -e /oldroot || test -e /newroot; echo $?; grep -c . /proc/self/mountinfo", { proc = "/proc" })
check("oldroot.gone", r.stdout:match("^1\n"), r.stdout .. r.stderr)
check("oldroot.few_mounts", tonumber(r.stdout:match("\n(%d+)")) < 20, r.stdout)

-- Symlinks: the same one twice is fine; a conflicting one is refused.
r = sh("readlink /x", { symlinks = { ["/x"] = "target" } })
check("symlink.made", r.stdout == "target\n", r.stdout .. r.stderr)
local ok, err = pcall(ns.symlink, "a", work .. "/link")
ok, err = pcall(ns.symlink, "a", work .. "/link")
check("symlink.idempotent", ok, err)
ok, err = pcall(ns.symlink, "b", work .. "/link")
check("symlink.conflict", not ok and err.errno == "EEXIST", err)

-- tmpfs size and mode honoured; bogus sizes refused with a clear message.
r = sh("stat -c %a /t; df -k /t | tail -1 | awk '{print $2}'", { tmpfs = { { "/t", size = "1M", mode = "1777" } } })
check("tmpfs.mode_size", r.stdout == "1777\n1024\n", r.stdout .. r.stderr)
for _, bad in ipairs { "12Q", "-5", "lots", "0" } do
  ok, err = pcall(sh, "true", { tmpfs = { { "/t", size = bad } } })
  check("tmpfs.bogus_" .. bad, not ok and tostring(err):find("bad size '" .. bad .. "'", 1, true), err)
end

-- Created mount points: 0755 directories, 0444 files, unless a mode is given.
ns.write_file(work .. "/afile", "x")
r = sh("stat -c '%a %n' /deep /deep/er /made /made700",
  { binds = { { work .. "/rw", "/deep/er/dir" }, { work .. "/afile", "/deep/file" } },
    dirs = { "/made", { "/made700", mode = "0700" } } })
check("mount_points.modes", r.stdout == "755 /deep\n755 /deep/er\n755 /made\n700 /made700\n", r.stdout .. r.stderr)
-- The mount points themselves, seen before anything covers them.
ns.mount_point(work .. "/mp/a/dir")
ns.mount_point(work .. "/mp/b/file", { file = true })
r = ns.run { argv = { "stat", "-c", "%a", work .. "/mp/a", work .. "/mp/a/dir", work .. "/mp/b/file" } }
check("mount_points.made", r.stdout == "755\n755\n444\n", r.stdout .. r.stderr)

-- Files: content and mode.
r = sh("cat /etc2/greeting; stat -c %a /etc2/greeting /etc2/secret",
  { files = { ["/etc2/greeting"] = "hello\n", ["/etc2/secret"] = { content = "s", mode = "0600" } } })
check("files.content_mode", r.stdout == "hello\n644\n600\n", r.stdout .. r.stderr)

-- Bind over a symlink destination: the bind lands on what it points to.
r = sh("cat /lnk/file", { symlinks = { ["/lnk"] = "real" }, dirs = { "/real" },
  binds = { { work .. "/rw", "/real" } } })
check("bind.through_symlink", r.stdout == "new\n", r.stdout .. r.stderr)

-- remount_ro and chmod.
r = sh("touch /w/f; echo $?; stat -c %a /w", { tmpfs = { "/w" }, remount_ro = { "/w" }, chmod = { ["/w"] = "0711" } })
check("remount_ro", r.stdout:match("^1\n"), r.stdout .. r.stderr)
check("chmod", r.stdout:match("\n711\n$"), r.stdout)

-- Overlay: layering and writes to the upper directory.
ns.mkdir(work .. "/lower1"); ns.mkdir(work .. "/lower2")
ns.write_file(work .. "/lower1/a", "top\n"); ns.write_file(work .. "/lower2/a", "bottom\n")
ns.write_file(work .. "/lower2/b", "only-bottom\n")
ns.mkdir(work .. "/upper"); ns.mkdir(work .. "/ovwork")
r = sh("cat /o/a /o/b; echo new > /o/c && cat /o/c",
  { overlay = { { "/o", lower = { work .. "/lower1", work .. "/lower2" }, upper = work .. "/upper", work = work .. "/ovwork" } } })
if r.stderr:find("overlay") and r.code ~= 0 then
  print("skip overlay.rw: the kernel refused a rootless overlay here: " .. r.stderr)
else
  check("overlay.layers", r.stdout == "top\nonly-bottom\nnew\n", r.stdout .. r.stderr)
  check("overlay.upper_written", ns.read_file(work .. "/upper/c") == "new\n", "upper/c")
end
r = sh("echo x > /o/t && cat /o/t /o/a", { overlay = { { "/o", lower = { work .. "/lower2" }, tmpfs = true } } })
check("overlay.tmpfs_upper", r.stdout == "x\nbottom\n", r.stdout .. r.stderr)
r = sh("cat /o/a; echo y > /o/z", { overlay = { { "/o", lower = { work .. "/lower1", work .. "/lower2" } } } })
check("overlay.readonly", r.stdout == "top\n" and r.stderr:find("Read%-only"), r.stdout .. r.stderr)

-- A host file the user may not read stays unreadable inside.
if ns.getuid() ~= 0 then
  r = sh("cat /host/etc/shadow", { binds = { { "/", "/host", ro = true } } })
  check("host.unreadable_stays", r.code ~= 0 and r.stderr:find("Permission denied"), r.stdout .. r.stderr)
end

-- bwrap's --cap-add / --cap-drop and --seccomp pass on to ns.spawn.
r = sh("grep CapEff /proc/self/status", { cap_add = { "net_admin" }, proc = "/proc" })
check("caps.cap_add", r.stdout == "CapEff:\t0000000000001000\n", r.stdout .. r.stderr)
r = sh("unshare -U true; echo rc=$?", { seccomp = "default" })
check("seccomp.default", r.stdout:find("rc=1"), r.stdout .. r.stderr)

-- Options are checked before anything starts.
ok, err = pcall(sandbox.run, { argv = { "true" }, bindz = {} })
check("options.did_you_mean", not ok and tostring(err):find("did you mean 'binds'"), err)
ok, err = pcall(sandbox.run, { argv = { "true" }, binds = { { "relative", "/x" } } })
check("options.absolute", not ok and tostring(err):find("absolute path"), err)
-- Malformed nested options get a message naming them, not a Lua error
-- from inside the library; with the caller's line (options() too).
for _, c in ipairs {
  { { overlay = { 5 } }, "overlay%[1%] must be a path or" },
  { { tmpfs = { 5 } }, "tmpfs%[1%] must be a path or" },
  { { dirs = { true } }, "dirs%[1%] must be a path or" },
  { { symlinks = { ["/a"] = 5 } }, 'symlinks%["/a"%] must be the link\'s target' },
  { { files = 5 }, "files must be a table keyed by path" },
  { { chmod = "0755" }, "chmod must be a table keyed by path" },
  { { proc = 5 }, "proc must be an absolute path" },
  { { dev = true }, "dev must be an absolute path" },
} do
  local opts = c[1]
  opts.argv = { "true" }
  ok, err = pcall(sandbox.run, opts)
  check("options.nested " .. c[2], not ok and tostring(err):find("sandbox: " .. c[2]), err)
end
ok, err = pcall(function() sandbox.options { argv = { "true" }, tmpfs = { 5 } } end)
check("options.where", not ok and tostring(err):find("checks.lua:%d+: sandbox: tmpfs"), err)

-- Namespaces as a comma string (as everywhere in nsrun), aliases too.
r = sh("echo $$", { namespaces = "user, mount,pid" })
check("namespaces.comma_string", r.stdout == "1\n" or r.stdout == "2\n", r.stdout .. r.stderr)
r = sh("echo ok", { namespaces = { "user", "mnt" } })
check("namespaces.alias", r.stdout == "ok\n", r.stdout .. r.stderr)

-- Typos inside entries, bad sizes, an upper without work and a missing
-- source: refused in the parent (no child ran, so no "setup:"), naming
-- the entry and the user's paths, never set-up's /oldroot or /newroot.
ns.mkdir(work .. "/ov_up")
for _, c in ipairs {
  { { tmpfs = { { "/t", sise = "1M" } } }, "tmpfs[1]: unknown key 'sise' (did you mean 'size'?)" },
  { { dirs = { "/a", { "/d", mod = "0700" } } }, "dirs[2]: unknown key 'mod' (did you mean 'mode'?)" },
  { { files = { ["/f"] = { content = "x", mod = "0600" } } }, 'files["/f"]: unknown key \'mod\' (did you mean \'mode\'?)' },
  { { binds = { { "/usr", "/u", ro = true, tyr = true } } }, "binds[3]: unknown key 'tyr' (did you mean 'try'?)" },
  { { overlay = { { "/o", lower = { "/usr" }, tmpf = true } } }, "overlay[1]: unknown key 'tmpf' (did you mean 'tmpfs'?)" },
  { { namespaces_try = { "cgruop" } }, "namespaces_try[1]: unknown namespace kind 'cgruop' (did you mean 'cgroup'?)" },
  { { namespaces = "user,mount,pdi" }, "namespaces[3]: unknown namespace kind 'pdi' (did you mean 'pid'?)" },
  { { tmpfs = { { "/t", size = "12Q" } } }, "tmpfs[1] (/t): bad size '12Q': unknown unit" },
  { { tmpfs = { "/a", { "/t", size = "1.5" } } }, "tmpfs[2] (/t): bad size '1.5': a fraction of a byte" },
  { { tmpfs = { { "/t", size = "unlimited" } } }, "tmpfs[1] (/t): bad size 'unlimited'" },
  { { overlay = { { "/o", lower = { "/usr" }, upper = work .. "/ov_up" } } }, "overlay[1] (/o): upper and work go together" },
  { { binds = { { work .. "/nonexistent", "/x" } } }, "binds[3] source " .. work .. "/nonexistent does not exist (ENOENT)" },
  { { overlay = { { "/o", lower = { "/usr", work .. "/nolower" } } } }, "overlay[1] lower " .. work .. "/nolower does not exist" },
  { { root = work .. "/noroot" }, "root " .. work .. "/noroot does not exist" },
} do
  local opts = c[1]
  opts.argv = { "true" }
  -- The same message every time, whatever order pairs() walks the entry in.
  for _ = 1, 3 do
    ok, err = pcall(box, opts)
    local msg = tostring(err)
    check("options.parent " .. c[2], not ok and msg:find("sandbox: " .. c[2], 1, true)
      and not msg:find("setup") and not msg:find("/oldroot") and not msg:find("/newroot"), msg)
  end
end
-- A try bind's source may be missing; a valid size still works.
r = sh("echo ok", { binds = { { work .. "/nonexistent", "/x", try = true } }, tmpfs = { { "/t", size = 4096 } } })
check("options.try_missing", r.stdout == "ok\n", r.stdout .. r.stderr)

-- mount_proc (true or a path) is the sandbox's proc; landlock passes on
-- to ns.spawn and sees the sandbox's paths.
r = sh("ls /proc | grep -c '^[0-9]'; test -r /proc/self/status && echo status", { mount_proc = true })
check("mount_proc.true", r.stdout:match("^%d\nstatus\n$") and tonumber(r.stdout:match("^%d")) <= 4, r.stdout .. r.stderr)
r = sh("test -r /p/self/status && echo p; test -e /proc/self || echo noproc", { mount_proc = "/p" })
check("mount_proc.path", r.stdout == "p\nnoproc\n", r.stdout .. r.stderr)
ok, err = pcall(box, { argv = { "true" }, mount_proc = true, proc = "/p" })
check("mount_proc.conflict", not ok and tostring(err):find("mount_proc = /proc and proc = /p: give one", 1, true), err)
r = sh("touch /t/a; echo $?; touch /u/a; echo $?",
  { tmpfs = { "/t", "/u" }, landlock = { ro = { "/" }, rw = { "/t" } } })
if r.code == 0 and r.stdout == "0\n0\n" then
  print("skip landlock: no Landlock in this kernel")
else
  check("landlock.passed_on", r.stdout == "0\n1\n" and r.stderr:find("Permission denied"), r.stdout .. r.stderr)
end

-- remount_ro is recursive: the mounts below the path turn read-only too,
-- also for "/" (bwrap's --remount-ro /).
r = sh("touch /w/f; echo $?; touch /w/sub/f; echo $?; touch /w/sub/deeper/f; echo $?",
  { tmpfs = { "/w", "/w/sub", "/w/sub/deeper" }, remount_ro = { "/w" } })
check("remount_ro.recursive", r.stdout == "1\n1\n1\n", r.stdout .. r.stderr)
r = sh("touch /t/f; echo $?; touch /w/sub/f; echo $?",
  { tmpfs = { "/t", "/w", "/w/sub" }, binds = { { work .. "/rw", "/w/sub/b" } }, remount_ro = { "/" } })
check("remount_ro.root_recursive", r.stdout == "1\n1\n", r.stdout .. r.stderr)
r = sh("touch /w/sub/b/g; echo $?", { tmpfs = { "/w", "/w/sub" }, binds = { { work .. "/rw", "/w/sub/b" } },
  remount_ro = { "/w/sub" } })
check("remount_ro.bind_below", r.stdout == "1\n", r.stdout .. r.stderr)
-- steps: the set-up in the order given (bubblewrap's command-line order),
-- after the keyed options: a later mount hides an earlier one below it,
-- and the other way round a mount lands in the one before it.
ns.write_file(work .. "/stepfile", "from the host\n")
r = sh("cat /mnt/x/stepfile 2>/dev/null || echo hidden", { steps = {
  { "bind", work, "/mnt/x" }, { "tmpfs", "/mnt" } } })
check("steps.later_hides_earlier", r.stdout == "hidden\n", r.stdout .. r.stderr)
r = sh("cat /mnt/x/stepfile; cat /mnt/made/f; ls -ld /mnt/made | cut -c1-10; readlink /mnt/l", { steps = {
  { "tmpfs", "/mnt" }, { "bind", work, "/mnt/x", ro = true }, { "dir", "/mnt/made", mode = "0700" },
  { "file", "/mnt/made/f", "written\n" }, { "symlink", "made/f", "/mnt/l" } } })
check("steps.in_order", r.stdout == "from the host\nwritten\ndrwx------\nmade/f\n", r.stdout .. r.stderr)
r = sh("touch /mnt/x/new; echo $?", { steps = { { "tmpfs", "/mnt" }, { "dir", "/mnt/x" }, { "remount_ro", "/mnt" } } })
check("steps.remount_ro", r.stdout == "1\n", r.stdout .. r.stderr)
local function refused(name, want, steps)
  local ok, e = pcall(sandbox.run, { argv = { "true" }, steps = steps })
  check(name, not ok and tostring(e):find(want, 1, true) and not tostring(e):find("/oldroot", 1, true), tostring(e))
end
refused("steps.unknown_kind", "unknown step 'tmpf' (did you mean 'tmpfs'?)", { { "tmpf", "/t" } })
refused("steps.missing_arg", "steps[1] (bind) must be {\"bind\", source, dest", { { "bind", "/usr" } })
refused("steps.bad_key", "steps[1] (tmpfs)", { { "tmpfs", "/t", sise = "1M" } })
refused("steps.missing_source", "does not exist", { { "bind", work .. "/nowhere", "/x" } })
refused("steps.not_a_table", "steps[1] must be a table whose first item is a kind", { "tmpfs" })
print("all done")
