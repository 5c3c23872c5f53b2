-- A hostile root: symlinks in a `root = DIR` that point at a canary
-- directory outside it, and every set-up option aimed through them. The
-- canary must stay as it was; the controls show the old way (plain
-- ns.write_file, ns.chmod, ns.bind on /newroot/...) does reach it, so the
-- test cannot pass by accident. The Rust side checks the canary again and
-- the host's mount table.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local C = T.dir .. "/canary"            -- outside the root
local R = T.dir .. "/root"              -- the image nobody vouches for
ns.mkdir(C)
ns.write_file(C .. "/f", "orig\n", "0644")
ns.mkdir(C .. "/sub")
ns.mkdir(R)
ns.mkdir(R .. "/proc")

-- Where each link leads, as the set-up process saw paths before: its root
-- is the build tmpfs, the host below it at /oldroot, the new root at
-- /newroot (so `..` from the root reaches the build tmpfs).
local LINKS = {
  abs = "/oldroot" .. C,                                -- absolute, into /oldroot
  host = C,                                             -- the host's own path
  rel = ("../"):rep(12) .. "oldroot" .. C,              -- relative, up and out
  magic = "proc/self/root/oldroot" .. C,                -- through /proc/self/root
  cwd = "proc/self/cwd/oldroot" .. C,                   -- through /proc/self/cwd
  procabs = "/proc/self/root/oldroot" .. C,             -- the same, absolute
}
for name, target in pairs(LINKS) do ns.symlink(target, R .. "/" .. name) end

-- The canary as a string: names, modes, contents.
local function snapshot()
  local out = {}
  local r = ns.run { argv = { "sh", "-c", "cd '" .. C .. "' && find . -printf '%p %m %y\\n' | sort && cat f" } }
  assert(r.code == 0, r.stderr)
  out[#out + 1] = r.stdout
  return table.concat(out)
end
local clean = snapshot()

-- Controls: the old way, in a child set up as the sandbox's set-up was
-- (build tmpfs as root, host at /oldroot, the image bound at /newroot,
-- a proc in it), reaches the canary through each kind of link.
local st = ns.spawn { namespaces = T.kinds("mount,pid"), fn = function()
  ns.mount(nil, "/", nil, "rec,private")
  ns.mount("tmpfs", "/tmp", "tmpfs", "nosuid,nodev", "mode=0755")
  ns.mkdir("/tmp/newroot"); ns.mkdir("/tmp/oldroot")
  ns.pivot_root("/tmp", "/tmp/oldroot"); ns.chdir("/")
  ns.bind("/oldroot" .. R, "/newroot", { rec = true })
  ns.mount_proc("/newroot/proc")
  for _, name in ipairs { "abs", "rel", "magic", "cwd" } do
    ns.write_file("/newroot/" .. name .. "/ctl-" .. name, "reached\n")
  end
  ns.chmod("/newroot/abs/f", "0666")
  ns.bind("/oldroot/usr", "/newroot/rel/sub")
  assert(ns.read_file("/oldroot" .. C .. "/sub/bin/sh") ~= "", "bind through the link")
  print("control child done")
end }:wait()
T.eq("control.child", st.code, 0)
for _, name in ipairs { "abs", "rel", "magic", "cwd" } do
  T.eq("control.write_through_" .. name, ns.read_file(C .. "/ctl-" .. name), "reached\n")
  assert(os.remove(C .. "/ctl-" .. name))
end
local r = ns.run { argv = { "stat", "-c", "%a", C .. "/f" } }
T.eq("control.chmod_reached", r.stdout, "666\n")
ns.chmod(C .. "/f", "0644")
T.eq("control.restored", snapshot(), clean)

-- The attacks: each set-up option through each link, one sandbox each
-- (the first error stops a set-up). A proc at /proc makes the magic links
-- real while files, dirs, … are made.
local attacks = {
  files = function(l) return { files = { ["/" .. l .. "/f"] = "pwned\n" } } end,
  files_new = function(l) return { files = { ["/" .. l .. "/new"] = "pwned\n" } } end,
  dirs = function(l) return { dirs = { "/" .. l .. "/newdir" } } end,
  chmod = function(l) return { chmod = { ["/" .. l .. "/f"] = "0666" } } end,
  chmod_dir = function(l) return { chmod = { ["/" .. l] = "0777" } } end,
  symlinks = function(l) return { symlinks = { ["/" .. l .. "/newlink"] = "x" } } end,
  binds = function(l) return { binds = { { "/usr", "/" .. l .. "/bound", ro = true } } } end,
  binds_over = function(l) return { binds = { { "/usr", "/" .. l .. "/sub" } } } end,
  binds_file = function(l) return { binds = { { "/etc/hostname", "/" .. l .. "/f" } } } end,
  tmpfs = function(l) return { tmpfs = { "/" .. l .. "/t" } } end,
  tmpfs_over = function(l) return { tmpfs = { "/" .. l .. "/sub" } } end,
  remount_ro = function(l) return { remount_ro = { "/" .. l } } end,
  proc = function(l) return { proc = "/" .. l .. "/p" } end,
  dev = function(l) return { dev = "/" .. l .. "/d" } end,
  mqueue = function(l) return { mqueue = "/" .. l .. "/mq" } end,
  sys = function(l) return { sys = "/" .. l .. "/s" } end,
  overlay = function(l) return { overlay = { { "/" .. l .. "/o", lower = { "/usr", "/etc" } } } } end,
}
local names = {}
for k in pairs(attacks) do names[#names + 1] = k end
table.sort(names)
local failed, refused_in_root, ran = 0, 0, 0
for _, what in ipairs(names) do
  for link in pairs(LINKS) do
    local o = attacks[what](link)
    o.root = R
    o.fn = function() return 0 end
    if what ~= "proc" then o.proc = "/proc" end
    local ok, res = pcall(sandbox.run, o)
    ran = ran + 1
    if not ok then
      failed = failed + 1
      if tostring(res):find(" in root /newroot", 1, true) then refused_in_root = refused_in_root + 1 end
    end
    local now = snapshot()
    if now ~= clean then
      error(("FAIL attack.%s.%s: the canary changed:\n%s\nwas:\n%s\nerror: %s"):format(
        what, link, now, clean, tostring(res)))
    end
  end
end
T.ok("attacks.canary_untouched")
T.put("attacks", ran)
T.put("refused", failed)
T.check("attacks.refused_in_root", refused_in_root > 0, "no error named the root")
-- A root whose links lead nowhere harmful still works: a file through a
-- link that stays inside.
ns.symlink("inside", R .. "/in")
ns.mkdir(R .. "/inside")
r = sandbox.run { root = R, fn = function() return 0 end, files = { ["/in/ok"] = "fine\n" }, chmod = { ["/in/ok"] = "0600" } }
T.eq("inside.ran", r.code, 0)
T.eq("inside.written", ns.read_file(R .. "/inside/ok"), "fine\n")
r = ns.run { argv = { "stat", "-c", "%a", R .. "/inside/ok" } }
T.eq("inside.chmod", r.stdout, "600\n")
print("done")
