--- nsrun.sandbox: a declarative, bubblewrap-like sandbox on top of ns.spawn.
---
--- ```lua
--- local sandbox = require "nsrun.sandbox"
--- local r = sandbox.run{
---   argv = {"sh", "-c", "id; ls /"},
---   binds = {{"/usr", "/usr", ro = true}, {"/etc", "/etc", ro = true}},
---   symlinks = {["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64"},
---   tmpfs = {"/tmp"}, proc = "/proc", dev = "/dev",
--- }
--- ```
---
--- Without `root`, the sandbox starts, as bubblewrap does, from an empty
--- tmpfs that binds, files, symlinks, … fill. How it is built (bubblewrap's
--- own sequence): in the child's private mount namespace a tmpfs goes on
--- /tmp and becomes the root with the host's root below it at /oldroot;
--- the new root is assembled at /newroot with every source taken from
--- /oldroot, and a last pivot_root into /newroot drops the rest.
local ns = require "nsrun"
-- nsrun loads this module with whether the run is a --plan one, and the
-- checks it must make as the Rust side does.
local planning, helpers = ...
planning = planning == true

-- What every set-up calls in the child, made now in the parent: nsrun
-- makes module functions on first use, and one made in a freshly forked
-- child dirties pages the kernel must copy there.
for _, f in ipairs { "mount", "mkdir", "pivot_root", "chdir", "bind", "mount_proc", "mount_dev", "root", "ttyname" } do
  local _ = ns[f]
end

local M = {}

local ALL = { "user", "mount", "pid", "uts", "ipc", "net", "cgroup" }

-- Options of the sandbox itself, and those passed on to ns.spawn as they
-- are: every option ns.spawn takes (its own list, so a new one reaches the
-- sandbox too) but the sandbox's own. mount_proc is the sandbox's: ns.spawn
-- would mount it before set-up, on the host's tree the last pivot drops.
local OWN = {
  "root", "binds", "tmpfs", "proc", "dev", "mqueue", "sys", "dirs", "files", "symlinks",
  "unmask",
  "chmod", "remount_ro", "overlay", "net", "namespaces", "namespaces_try", "chdir",
  "as_pid_1", "cap_add", "cap_drop", "setup", "unsetenv", "mount_proc", "steps",
}
local NOT_PASSED = {}
for _, k in ipairs(OWN) do NOT_PASSED[k] = true end
local PASS = {}
for _, k in ipairs(ns.spawn_options()) do
  if not NOT_PASSED[k] then PASS[#PASS + 1] = k end
end

local known = {}
local known_sorted = {}
for _, k in ipairs(OWN) do known[k] = true end
for _, k in ipairs(PASS) do known[k] = true end
for k in pairs(known) do known_sorted[#known_sorted + 1] = k end
table.sort(known_sorted)

local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- " (did you mean 'x'?)" for the closest of `names` (sorted, so that of
-- two names as close the first wins, the same on every run), or "".
local function suggest(k, names)
  local best, bd = nil, 3
  for _, name in ipairs(names) do
    local d = distance(tostring(k), name)
    if d < bd then best, bd = name, d end
  end
  return best and (" (did you mean '" .. best .. "'?)") or ""
end

local function check_keys(opts, level)
  for k in pairs(opts) do
    if type(k) ~= "string" or not known[k] then
      error("sandbox: unknown option '" .. tostring(k) .. "'" .. suggest(k, known_sorted), level + 1)
    end
  end
end

-- The keys an entry of a list option may have besides its positional
-- ones: a typo there would otherwise be dropped without a word. `names`
-- is sorted; `npos` positional fields are allowed.
local function check_entry(t, what, names, npos, level)
  -- pairs() order varies from run to run: report the same key each time.
  local bad = {}
  for k in pairs(t) do
    local ok = math.type(k) == "integer" and k >= 1 and k <= npos
    if not ok then
      ok = false
      for _, n in ipairs(names) do if k == n then ok = true end end
    end
    if not ok then bad[#bad + 1] = tostring(k) end
  end
  if #bad > 0 then
    table.sort(bad)
    error(("sandbox: %s: unknown key '%s'%s (valid: %s)"):format(what, bad[1], suggest(bad[1], names),
      table.concat(names, ", ")), level + 1)
  end
end

-- Namespace kinds as lists or comma strings, as everywhere in nsrun, by
-- their canonical names (the sandbox looks for "mount" and "net").
local KINDS = { "cgroup", "ipc", "mount", "net", "pid", "time", "user", "uts" }
local ALIAS = { mnt = "mount", network = "net" }
local function kinds(v, what, level)
  if v == nil then return {} end
  if type(v) ~= "string" and type(v) ~= "table" then
    error(("sandbox: %s must be a list or a comma string of namespace kinds, got %s"):format(what, type(v)), level + 1)
  end
  local items = v
  if type(v) == "string" then
    items = {}
    for k in v:gmatch("[^,]+") do items[#items + 1] = k end
  end
  local out = {}
  for i, k in ipairs(items) do
    local name = type(k) == "string" and k:match("^%s*(.-)%s*$")
    name = name and (ALIAS[name] or name)
    local ok = false
    for _, n in ipairs(KINDS) do if name == n then ok = true end end
    if not ok then
      error(("sandbox: %s[%d]: unknown namespace kind '%s'%s (valid: %s)"):format(what, i, tostring(k),
        suggest(k, KINDS), table.concat(KINDS, ", ")), level + 1)
    end
    out[#out + 1] = name
  end
  return out
end

-- A tmpfs size, checked now by the rule the mount itself applies
-- (src/sys/size.rs), so a bad one is reported before anything starts.
local function size(s, what, level)
  if s == nil then return nil end
  if math.type(s) == "integer" and s > 0 then return s end
  if type(s) ~= "string" then
    error(("sandbox: %s: size must be a number of bytes or a string like \"64M\", got %s"):format(what,
      tostring(s)), level + 1)
  end
  local _, why = helpers.tmpfs_size(s)
  if why then error(("sandbox: %s: %s"):format(what, why), level + 1) end
  return s
end

-- A source on the host that must be there: said now with the user's path,
-- not by the child with the paths set-up sees. (realpath: it opens
-- nothing, so neither a FIFO nor a large directory costs anything, and only
-- ENOENT says "missing".)
local function exists(p, what, level)
  -- Under --plan the steps before were only recorded: a source the recipe
  -- makes first is not there yet.
  if planning then return end
  local ok, e = pcall(ns.realpath, p)
  if not ok and type(e) ~= "string" and e.errno == "ENOENT" then
    error(("sandbox: %s %s does not exist (ENOENT)"):format(what, p), level + 1)
  end
end

local function list(v, what, level)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" then
    error(("sandbox: %s must be a list, got %s"):format(what, type(v)), level + 1)
  end
  return v
end

-- A table keyed by path (files, symlinks, chmod), or nothing.
local function map(v, what, level)
  if v == nil then return {} end
  if type(v) ~= "table" then
    error(("sandbox: %s must be a table keyed by path, got %s"):format(what, type(v)), level + 1)
  end
  return v
end

local function abs(p, what, level)
  if type(p) ~= "string" or p:sub(1, 1) ~= "/" then
    error(("sandbox: %s must be an absolute path, got %s"):format(what, tostring(p)), level + 1)
  end
  return p
end

-- A mode as the octal string the file functions take ("0644"); numbers
-- are refused as they are there (Lua has no octal literals: 0644 is 644).
local function octal(m, what, level)
  if m == nil then return nil end
  if type(m) == "number" then
    error(("sandbox: %s: a mode is an octal string such as \"0755\", got the number %s"):format(what, tostring(m)),
      level + 1)
  end
  local n = type(m) == "string" and tonumber((m:gsub("^0o", "")), 8)
  if not n or n > 4095 then error(("sandbox: %s: bad mode %s (octal, e.g. \"0755\")"):format(what, tostring(m)), level + 1) end
  return ("0%o"):format(n)
end

local function depth(p) return select(2, p:gsub("/[^/]", "")) end

-- What runc and podman lock down in a container's /proc and /sys (moby's
-- defaults), relative to where they are mounted: read-only, so root in the
-- sandbox writes no host-wide sysctl and triggers no sysrq; masked (an
-- empty read-only file or directory), so kernel memory, the host's keys
-- and timers stay unseen. Entries the kernel lacks are skipped.
local PROC_READONLY = { "sys", "sysrq-trigger", "irq", "bus", "fs" }
local PROC_MASKED = { "kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats",
  "acpi", "scsi", "asound" }
local SYS_MASKED = { "firmware", "devices/virtual/powercap" }

--- Turn sandbox options into the ns.spawn options that build it.
---@param opts table
---@param level integer
---@return table
local function build(opts, level)
  if type(opts) ~= "table" then
    error("sandbox: options table expected, got " .. type(opts), level + 1)
  end
  check_keys(opts, level + 1)
  if opts.mount_proc ~= nil then
    -- ns.spawn's mount_proc (true or a path) is the sandbox's proc there.
    local at = opts.mount_proc
    if at == true then at = "/proc" elseif at == false then at = nil end
    if at ~= nil and type(at) ~= "string" then
      error("sandbox: mount_proc must be true or a path, got " .. type(at), level + 1)
    end
    if at and opts.proc ~= nil and opts.proc ~= at then
      error(("sandbox: mount_proc = %s and proc = %s: give one"):format(at, tostring(opts.proc)), level + 1)
    end
    local copy = {}
    for k, v in pairs(opts) do copy[k] = v end
    copy.mount_proc, copy.proc = nil, opts.proc or at
    opts = copy
  end
  if opts.net == "veth" then
    error("sandbox: net = \"veth\" is not available in this version yet", level + 1)
  end
  local usernet = opts.net == "pasta" or opts.net == "slirp4netns"
  if opts.net ~= nil and opts.net ~= "none" and opts.net ~= "host" and not usernet then
    error("sandbox: net must be \"none\", \"host\", \"pasta\", \"slirp4netns\" or \"veth\", got "
      .. tostring(opts.net), level + 1)
  end
  local spawn = {}
  for _, k in ipairs(PASS) do spawn[k] = opts[k] end

  -- Namespaces: all of them unless said otherwise; the net one stays the
  -- host's with net = "host". The try forms are taken where the kernel has them.
  local wanted = opts.namespaces ~= nil and kinds(opts.namespaces, "namespaces", level + 1) or ALL
  local chosen = {}
  for _, k in ipairs(wanted) do
    if not (k == "net" and opts.net == "host") then chosen[#chosen + 1] = k end
  end
  for _, k in ipairs(kinds(opts.namespaces_try, "namespaces_try", level + 1)) do
    if pcall(ns.id, k) then chosen[#chosen + 1] = k end
  end
  local has = {}
  for _, k in ipairs(chosen) do has[k] = true end
  if not has.mount then
    error("sandbox: needs a mount namespace (\"mount\" in namespaces)", level + 1)
  end
  spawn.namespaces = chosen
  -- A user-mode network (ns.spawn's net): /etc/resolv.conf in the sandbox
  -- names the tool's DNS forwarder (the tool that will run: pasta falls
  -- back to slirp4netns), unless the recipe puts its own there.
  local resolv
  if usernet then
    spawn.net = opts.net
    local ok, u = pcall(ns.usernet, opts.net)
    if not ok then error("sandbox: " .. tostring(u):gsub("^.-usernet: ", ""), level + 1) end
    resolv = "nameserver " .. u.dns .. "\n"
  end

  -- The safe defaults (README, "Security model"): the program is the
  -- caller, with nothing more. Its uid and gid are the caller's, each
  -- mapped to itself, or those asked for, the caller mapped to them (as
  -- bubblewrap's --uid/--gid do); no capability in any set unless kept
  -- by name; no_new_privs; the seccomp preset; the terminal-injection
  -- guard; a session keyring of its own.
  if has.user then
    for _, id in ipairs { { "uid", "uid_map", ns.getuid }, { "gid", "gid_map", ns.getgid } } do
      local key, map, own = id[1], id[2], id[3]
      local want = opts[key]
      if want ~= nil and (math.type(want) ~= "integer" or want < 0 or want > 0xfffffffe) then
        error(("sandbox: %s must be an id (an integer from 0), got %s"):format(key, tostring(want)), level + 1)
      end
      if opts[map] == nil then
        spawn[map] = { { want or own(), own(), 1 } }
        -- Already that id once the map is written: nothing to switch.
        spawn[key] = nil
      end
    end
  end
  if opts.caps == nil and not (opts.cap_add or opts.cap_drop) then spawn.caps = { keep = {} } end
  if opts.no_new_privs == nil then spawn.no_new_privs = true end
  if opts.no_new_privs == false and (opts.seccomp == nil or opts.tty_guard == nil) then
    -- Without no_new_privs a filter needs CAP_SYS_ADMIN, which the program
    -- no longer has when filters go on: say so now rather than in the child.
    error("sandbox: no_new_privs = false needs seccomp = false and tty_guard = false "
      .. "(a filter can only be installed with no_new_privs once the capabilities are gone)", level + 1)
  end
  if opts.seccomp == nil then
    spawn.seccomp = "default"
  elseif opts.seccomp == false then
    spawn.seccomp = nil
  end
  if opts.tty_guard == nil then spawn.tty_guard = true end
  if opts.new_keyring == nil then spawn.new_keyring = true end
  if opts.as_pid_1 then spawn.init = false end
  if opts.chdir then spawn.cwd = abs(opts.chdir, "chdir", level + 1) end
  if opts.unsetenv then
    spawn.env = spawn.env or {}
    for _, name in ipairs(list(opts.unsetenv, "unsetenv", level + 1)) do spawn.env[name] = false end
  end
  if opts.cap_add or opts.cap_drop then
    if opts.caps then error("sandbox: give caps or cap_add/cap_drop, not both", level + 1) end
    if opts.cap_add and opts.cap_drop then
      error("sandbox: give cap_add (keep only these) or cap_drop (all but these), not both", level + 1)
    end
    -- bwrap's --cap-add keeps just the named capabilities; --cap-drop drops them.
    spawn.caps = opts.cap_add and { keep = opts.cap_add } or { drop = opts.cap_drop }
  end

  -- Validate everything now, in the parent, so a mistake is reported
  -- before anything starts.
  local binds = {}
  for i, b in ipairs(list(opts.binds, "binds", level + 1)) do
    if type(b) ~= "table" then error(("sandbox: binds[%d] must be {source, dest, ro=, dev=, try=}"):format(i), level + 1) end
    local src = abs(b[1] or b.source, ("binds[%d] source"):format(i), level + 1)
    local dst = abs(b[2] or b.dest or src, ("binds[%d] dest"):format(i), level + 1)
    check_entry(b, ("binds[%d]"):format(i), { "dest", "dev", "ro", "source", "try" }, 2, level + 1)
    if not b.try then exists(src, ("binds[%d] source"):format(i), level + 1) end
    binds[#binds + 1] = { src = src, dst = dst, ro = b.ro, dev = b.dev, try = b.try }
  end
  -- An entry of a list option: a string (its path) or a table.
  local function entry(v, what, form)
    if type(v) == "string" then return { v } end
    if type(v) ~= "table" then
      error(("sandbox: %s must be a path or %s, got %s"):format(what, form, type(v)), level + 2)
    end
    return v
  end
  local tmpfs = {}
  for i, t in ipairs(list(opts.tmpfs, "tmpfs", level + 1)) do
    t = entry(t, ("tmpfs[%d]"):format(i), "{path, size=, mode=}")
    check_entry(t, ("tmpfs[%d]"):format(i), { "mode", "path", "size" }, 1, level + 1)
    local path = abs(t[1] or t.path, ("tmpfs[%d]"):format(i), level + 1)
    tmpfs[#tmpfs + 1] = { path = path, size = size(t.size, ("tmpfs[%d] (%s)"):format(i, path), level + 1),
      mode = octal(t.mode, ("tmpfs[%d]"):format(i), level + 1) }
  end
  local overlays = {}
  for i, o in ipairs(list(opts.overlay, "overlay", level + 1)) do
    o = entry(o, ("overlay[%d]"):format(i), "{dest, lower=, upper=, work=, tmpfs=}")
    check_entry(o, ("overlay[%d]"):format(i), { "dest", "lower", "tmpfs", "upper", "work" }, 1, level + 1)
    local dest = abs(o[1] or o.dest, ("overlay[%d] dest"):format(i), level + 1)
    local lower = list(o.lower, "overlay lower", level + 1)
    if #lower == 0 then error(("sandbox: overlay[%d] needs lower"):format(i), level + 1) end
    if (o.upper == nil) ~= (o.work == nil) then
      error(("sandbox: overlay[%d] (%s): upper and work go together"):format(i, dest), level + 1)
    end
    for j, l in ipairs(lower) do
      exists(abs(l, ("overlay[%d] lower[%d]"):format(i, j), level + 1), ("overlay[%d] lower"):format(i), level + 1)
    end
    for _, k in ipairs { "upper", "work" } do
      if o[k] ~= nil then
        exists(abs(o[k], ("overlay[%d] %s"):format(i, k), level + 1), ("overlay[%d] %s"):format(i, k), level + 1)
      end
    end
    overlays[#overlays + 1] = { dest = dest, lower = lower, upper = o.upper, work = o.work, tmpfs = o.tmpfs }
  end
  local dirs = {}
  for i, d in ipairs(list(opts.dirs, "dirs", level + 1)) do
    d = entry(d, ("dirs[%d]"):format(i), "{path, mode=}")
    check_entry(d, ("dirs[%d]"):format(i), { "mode", "path" }, 1, level + 1)
    dirs[#dirs + 1] = { path = abs(d[1] or d.path, ("dirs[%d]"):format(i), level + 1),
      mode = octal(d.mode, ("dirs[%d]"):format(i), level + 1) }
  end
  local files = {}
  for path, f in pairs(map(opts.files, "files", level + 1)) do
    abs(path, "files key", level + 1)
    if type(f) == "string" then f = { content = f } end
    if type(f) ~= "table" or type(f.content) ~= "string" then
      error(("sandbox: files[%q] must be a string or {content=, mode=}"):format(path), level + 1)
    end
    check_entry(f, ("files[%q]"):format(path), { "content", "mode" }, 0, level + 1)
    files[#files + 1] = { path = path, content = f.content, mode = octal(f.mode, "files mode", level + 1) or "0644" }
  end
  table.sort(files, function(a, b) return a.path < b.path end)
  local links = {}
  for link, target in pairs(map(opts.symlinks, "symlinks", level + 1)) do
    if type(target) ~= "string" then
      error(("sandbox: symlinks[%q] must be the link's target (a string), got %s"):format(tostring(link), type(target)), level + 1)
    end
    links[#links + 1] = { link = abs(link, "symlinks key", level + 1), target = target }
  end
  table.sort(links, function(a, b) return a.link < b.link end)
  local chmods = {}
  for path, mode in pairs(map(opts.chmod, "chmod", level + 1)) do
    chmods[#chmods + 1] = { path = abs(path, "chmod key", level + 1), mode = octal(mode, "chmod", level + 1) }
  end
  local ro = list(opts.remount_ro, "remount_ro", level + 1)
  for _, p in ipairs(ro) do abs(p, "remount_ro", level + 1) end
  -- steps: the set-up as an ordered list, each applied where it stands
  -- (bubblewrap's command-line order), after the keyed options above.
  local STEP_FORMS = {
    bind = { "{\"bind\", source, dest, ro=, dev=, try=, rec=}", { "dev", "rec", "ro", "try" }, 3 },
    tmpfs = { "{\"tmpfs\", path, size=, mode=}", { "mode", "size" }, 2 },
    overlay = { "{\"overlay\", dest, lower=, upper=, work=, tmpfs=}", { "lower", "tmpfs", "upper", "work" }, 2 },
    proc = { "{\"proc\", path}", {}, 2 },
    dev = { "{\"dev\", path, shm=}", { "shm" }, 2 },
    mqueue = { "{\"mqueue\", path}", {}, 2 },
    sys = { "{\"sys\", path}", {}, 2 },
    dir = { "{\"dir\", path, mode=}", { "mode" }, 2 },
    file = { "{\"file\", path, content, mode=, bind=, ro=}", { "bind", "mode", "ro" }, 3 },
    symlink = { "{\"symlink\", target, link}", {}, 3 },
    chmod = { "{\"chmod\", path, mode}", {}, 3 },
    remount_ro = { "{\"remount_ro\", path, rec=, try=}", { "rec", "try" }, 2 },
  }
  local step_kinds = {}
  for k in pairs(STEP_FORMS) do step_kinds[#step_kinds + 1] = k end
  table.sort(step_kinds)
  local steps = {}
  for i, st in ipairs(list(opts.steps, "steps", level + 1)) do
    local what = ("steps[%d]"):format(i)
    if type(st) ~= "table" or type(st[1]) ~= "string" then
      error(("sandbox: %s must be a table whose first item is a kind (%s)"):format(what, table.concat(step_kinds, ", ")), level + 1)
    end
    local kind = st[1]
    local form = STEP_FORMS[kind]
    if not form then
      local hint = suggest(kind, step_kinds)
      error(("sandbox: %s: unknown step '%s'%s; known: %s"):format(what, kind,
        hint or "", table.concat(step_kinds, ", ")), level + 1)
    end
    what = ("%s (%s)"):format(what, kind)
    check_entry(st, what, form[2], form[3], level + 1)
    for j = 2, form[3] do
      if type(st[j]) ~= "string" then
        error(("sandbox: %s must be %s"):format(what, form[1]), level + 1)
      end
    end
    local step = { kind = kind }
    if kind == "bind" then
      step.src, step.dst = abs(st[2], what .. " source", level + 1), abs(st[3], what .. " dest", level + 1)
      step.ro, step.dev, step.try, step.rec = st.ro, st.dev, st.try, st.rec
      if not st.try then exists(step.src, what .. " source", level + 1) end
    elseif kind == "tmpfs" then
      step.path = abs(st[2], what, level + 1)
      step.size = size(st.size, ("%s (%s)"):format(what, step.path), level + 1)
      step.mode = octal(st.mode, what, level + 1)
    elseif kind == "overlay" then
      step.dest = abs(st[2], what .. " dest", level + 1)
      step.lower = list(st.lower, what .. " lower", level + 1)
      if #step.lower == 0 then error(("sandbox: %s needs lower"):format(what), level + 1) end
      if (st.upper == nil) ~= (st.work == nil) then
        error(("sandbox: %s (%s): upper and work go together"):format(what, step.dest), level + 1)
      end
      for j, l in ipairs(step.lower) do
        exists(abs(l, ("%s lower[%d]"):format(what, j), level + 1), what .. " lower", level + 1)
      end
      step.upper, step.work, step.tmpfs = st.upper, st.work, st.tmpfs
    elseif kind == "dir" then
      step.path, step.mode = abs(st[2], what, level + 1), octal(st.mode, what, level + 1)
    elseif kind == "file" then
      step.path, step.content = abs(st[2], what, level + 1), st[3]
      step.mode = octal(st.mode, what, level + 1) or "0644"
      -- bind: the file is made on the set-up's own tmpfs and bound on
      -- path (bubblewrap's --bind-data), so it goes where a file could not
      -- be written (a read-only root); ro makes that bind read-only.
      step.bind, step.ro = st.bind, st.ro
      if st.ro and not st.bind then
        error(("sandbox: %s: ro = true needs bind = true (a written file is as writable as its directory)"):format(what), level + 1)
      end
    elseif kind == "symlink" then
      step.target, step.link = st[2], abs(st[3], what .. " link", level + 1)
    elseif kind == "chmod" then
      step.path, step.mode = abs(st[2], what, level + 1), octal(st[3], what, level + 1)
    else
      step.path = abs(st[2], what, level + 1)
      if kind == "remount_ro" then step.rec, step.try = st.rec, st.try end
      if kind == "dev" then step.shm = st.shm end
    end
    steps[#steps + 1] = step
  end
  -- root = DIR (bound as it is, writable: set-up writes into it), or
  -- {DIR, ro = true} / {DIR, overlay = "tmpfs"}: an overlay whose upper
  -- layer is a tmpfs, so mount points, files and the program's writes
  -- land there and vanish with the sandbox, never in DIR; ro then makes
  -- that root read-only once set-up is done.
  local root, root_ro, root_overlay = opts.root, nil, nil
  if type(root) == "table" then
    check_entry(root, "root", { "overlay", "ro" }, 1, level + 1)
    if root.overlay ~= nil and root.overlay ~= "tmpfs" then
      error(("sandbox: root.overlay must be \"tmpfs\", got %s"):format(tostring(root.overlay)), level + 1)
    end
    root_ro, root_overlay = root.ro == true, root.overlay ~= nil or root.ro == true
    root = root[1]
  end
  root = root and abs(root, "root", level + 1)
  if root then exists(root, "root", level + 1) end
  if root_overlay and root:find("[,:\\]") then
    error(("sandbox: root %s: an overlay's layer may not contain ',', ':' or '\\'"):format(root), level + 1)
  end
  -- Where proc, dev, mqueue and sysfs go: absolute paths, checked here
  -- rather than failing in the child.
  for _, k in ipairs { "proc", "dev", "mqueue", "sys" } do
    if opts[k] ~= nil then abs(opts[k], k, level + 1) end
  end
  -- unmask = true leaves /proc and /sys as the kernel makes them; a list
  -- (podman's --security-opt unmask=) names the paths to leave alone.
  local keep = {}
  if opts.unmask == true then
    keep = true
  elseif opts.unmask ~= nil and opts.unmask ~= false then
    local valid = {}
    for _, spec in ipairs { { opts.proc, PROC_READONLY }, { opts.proc, PROC_MASKED }, { opts.sys, SYS_MASKED } } do
      if spec[1] then
        for _, p in ipairs(spec[2]) do valid[(spec[1]:gsub("/+$", "")) .. "/" .. p] = true end
      end
    end
    for i, p in ipairs(list(opts.unmask, "unmask", level + 1)) do
      if type(p) ~= "string" or not valid[p] then
        local names = {}
        for v in pairs(valid) do names[#names + 1] = v end
        table.sort(names)
        error(("sandbox: unmask[%d]: %s is not a path the sandbox masks or makes read-only (%s)")
          :format(i, tostring(p), #names > 0 and "valid: " .. table.concat(names, " ")
            or "nothing is: give proc or sys"), level + 1)
      end
      keep[p] = true
    end
  end
  -- The lock-down list for a mount at `at`, without what unmask keeps.
  local function locked(at, names)
    if keep == true or not at then return {} end
    local out = {}
    for _, p in ipairs(names) do
      if not keep[(at:gsub("/+$", "")) .. "/" .. p] then out[#out + 1] = p end
    end
    return out
  end
  -- The keyed options as steps: every mount in one list, parents before
  -- children whatever option they came from (a tmpfs on /usr must not
  -- hide a bind on /usr/lib), among equals in the order given; then dirs,
  -- files, symlinks, chmod, remount_ro.
  local keyed = {}
  local function add(kind, entries)
    for _, st in ipairs(entries) do
      st.kind = kind
      keyed[#keyed + 1] = st
    end
  end
  add("bind", binds)
  add("tmpfs", tmpfs)
  add("overlay", overlays)
  for _, k in ipairs { "proc", "dev", "mqueue", "sys" } do
    if opts[k] then keyed[#keyed + 1] = { kind = k, path = opts[k] } end
  end
  local function dest(st) return st.dst or st.dest or st.path end
  for i, st in ipairs(keyed) do st.i = i end
  table.sort(keyed, function(a, b)
    local da, db = depth(dest(a)), depth(dest(b))
    if da ~= db then return da < db end
    return a.i < b.i
  end)
  add("dir", dirs)
  add("file", files)
  add("symlink", links)
  add("chmod", chmods)
  for _, p in ipairs(ro) do keyed[#keyed + 1] = { kind = "remount_ro", path = p } end
  local userxattr = has.user or nil

  local user_setup = opts.setup
  if user_setup ~= nil and type(user_setup) ~= "function" then
    error("sandbox: option 'setup' must be a function, got " .. type(user_setup), level + 1)
  end

  -- Whether the recipe puts a resolv.conf of its own in place.
  local own_resolv = false
  for _, list_ in ipairs { keyed, steps } do
    for _, st in ipairs(list_) do
      if (st.dst or st.dest or st.path or st.link) == "/etc/resolv.conf" then own_resolv = true end
    end
  end

  local function parent_of(p) return p:match("^(.*)/[^/]*$") end
  local old = "/oldroot"
  -- Files bound in (step "file" with bind) are made on the set-up's tmpfs.
  local data_n = 0
  -- tty = true: the program's terminal is on the standard streams left
  -- unset (sandbox.run makes stdout and stderr pipes); a /dev of the
  -- sandbox's own shows it as console (as bubblewrap binds the caller's),
  -- so that `tty` can name it.
  local console, console_src = {}, nil
  if opts.tty then
    for i, k in ipairs { "stdin", "stdout", "stderr" } do
      if opts[k] == nil and not (i == 1 and opts.input ~= nil) then console[#console + 1] = i - 1 end
    end
  end

  -- One step of set-up, in the new root `R`; sources are the recipe's own
  -- paths, at /oldroot.
  local function apply(R, st)
    local k = st.kind
    local function mkparents(p)
      local dir = parent_of(p)
      if dir and dir ~= "" then R:mkdir(dir, "0755", { parents = true }) end
    end
    if k == "bind" then
      R:bind(old .. st.src, st.dst, { ro = st.ro, create = true, nosuid = true, nodev = not st.dev, try = st.try,
        rec = st.rec ~= false })
    elseif k == "tmpfs" then
      R:tmpfs(st.path, { size = st.size, mode = st.mode })
    elseif k == "overlay" then
      local lower = {}
      for i, l in ipairs(st.lower) do lower[i] = old .. l end
      R:overlay(st.dest, { lower = lower, upper = st.upper and old .. st.upper,
        work = st.work and old .. st.work, tmpfs_upper = st.tmpfs, userxattr = userxattr })
    elseif k == "proc" then
      R:mount_proc(st.path, { readonly = locked(st.path, PROC_READONLY), mask = locked(st.path, PROC_MASKED) })
    elseif k == "dev" then
      R:mount_dev(st.path, { from = old .. "/dev", shm = st.shm ~= false })
      if console_src then
        R:bind(old .. console_src, st.path .. "/console", { create = true, nosuid = true, rec = false })
      end
    elseif k == "mqueue" then
      R:mount_mqueue(st.path)
    elseif k == "sys" then
      R:mount_sysfs(st.path, { from = old .. "/sys", mask = locked(st.path, SYS_MASKED) })
    elseif k == "dir" then
      R:mkdir(st.path, st.mode or "0755", { parents = true })
    elseif k == "file" and st.bind then
      data_n = data_n + 1
      local tmp = ("/.data-%d"):format(data_n)
      ns.write_file(tmp, st.content, st.mode)
      R:bind(tmp, st.path, { ro = st.ro, create = true, nosuid = true, nodev = true })
    elseif k == "file" then
      mkparents(st.path)
      R:write_file(st.path, st.content, st.mode)
    elseif k == "symlink" then
      mkparents(st.link)
      R:symlink(st.target, st.link)
    elseif k == "chmod" then
      R:chmod(st.path, st.mode)
    elseif st.try then
      -- Only what is there (bubblewrap's covers of /proc: kernels differ).
      local ok, e = pcall(R.remount_ro, R, st.path, { rec = st.rec ~= false })
      if not ok and not (type(e) == "table" and e.errno == "ENOENT") then error(e, 0) end
    else
      R:remount_ro(st.path, { rec = st.rec ~= false })
    end
  end

  spawn.setup = function()
    -- Its name on the host's tree (/dev/pts/N), before that is /oldroot.
    for _, fd in ipairs(console) do console_src = console_src or ns.ttyname(fd) end
    -- A tmpfs at /tmp becomes the root for the build; the host's root
    -- stays reachable at /oldroot until the last pivot.
    ns.mount("tmpfs", "/tmp", "tmpfs", "nosuid,nodev", "mode=0755")
    ns.mkdir("/tmp/newroot")
    ns.mkdir("/tmp/oldroot")
    ns.pivot_root("/tmp", "/tmp/oldroot")
    ns.chdir("/")
    local new = "/newroot"
    -- (A bind on / first would cover a tmpfs base at once.)
    local first = keyed[1] or steps[1]
    if root and root_overlay then
      -- The upper layer on the set-up's tmpfs, which the last pivot
      -- detaches with everything else: the changes go with the sandbox.
      ns.mkdir("/.upper")
      ns.mkdir("/.work")
      ns.mount("overlay", new, "overlay", "nosuid,nodev",
        "lowerdir=" .. old .. root .. ",upperdir=/.upper,workdir=/.work" .. (userxattr and ",userxattr" or ""))
    elseif root then
      -- The image may hold set-user-id programs and device nodes of its
      -- own: neither works in the sandbox, as with every bind.
      ns.bind(old .. root, new, { rec = true, nosuid = true, nodev = true })
    elseif not (first and first.kind == "bind" and depth(first.dst) == 0) then
      ns.mount("tmpfs", new, "tmpfs", "nosuid,nodev", "mode=0755")
    end
    -- From here on every path inside the new root is resolved inside it:
    -- the root and the directories bound into it are content nobody
    -- vouches for, and a symlink in them must not lead set-up to the host.
    -- Sources stay plain paths: they are the recipe's own, at /oldroot.
    local R <close> = ns.root(new)
    for _, st in ipairs(keyed) do apply(R, st) end
    for _, st in ipairs(steps) do apply(R, st) end
    if resolv and not own_resolv then
      -- Bound over whatever the root has there (a read-only /etc from
      -- the host included), from the build's tmpfs.
      ns.write_file("/resolv.conf", resolv, "0644")
      R:bind("/resolv.conf", "/etc/resolv.conf", { ro = true, create = true, nosuid = true, nodev = true })
    end
    R:close()
    if root_ro then
      -- Only the root mount: what set-up mounted on it keeps its own mode.
      ns.mount(nil, new, nil, "remount,bind,ro,nosuid,nodev")
    end
    -- The last pivot makes every mount private (so nothing it drops can
    -- propagate to the host, whatever `propagation` says) and detaches the
    -- tmpfs base with the host's tree below it at once: one umount, each
    -- of which waits for an RCU grace period (~0.1 ms), where bubblewrap
    -- does two.
    ns.pivot_root(new)
    if user_setup then user_setup() end
  end
  return spawn
end

-- Under --plan, the bubblewrap command line the table stands for, as a
-- note in the plan (what cannot be said there is left out of it).
local function note_bwrap(opts)
  if not planning or type(opts) ~= "table" then return end
  local ok, argv = pcall(M.to_bwrap, opts)
  if not ok then return end
  local words = {}
  for i, w in ipairs(argv) do
    if w:match("^[%w%./_:=,@+-]+$") then
      words[i] = w
    elseif w:find("[%c]") then
      -- One line per step: control characters as the shell's $'…' writes them.
      words[i] = "$'" .. w:gsub("[\\'%c]", function(c)
        return ({ ["\n"] = "\\n", ["\t"] = "\\t", ["\\"] = "\\\\", ["'"] = "\\'" })[c]
          or ("\\x%02x"):format(c:byte())
      end) .. "'"
    else
      words[i] = "'" .. w:gsub("'", "'\\''") .. "'"
    end
  end
  helpers.plan_note("as bubblewrap: bwrap " .. table.concat(words, " "))
end

--- Start the sandbox; returns a process as ns.spawn does.
---@param opts table sandbox options (see the README's bwrap table)
---@return nsrun.Process
function M.spawn(opts)
  local spawn = build(opts, 2)
  note_bwrap(opts)
  return ns.spawn(spawn)
end

--- Start the sandbox, wait, and capture: returns what ns.run returns.
---@param opts table sandbox options
---@return nsrun.Status
function M.run(opts)
  local spawn = build(opts, 2)
  note_bwrap(opts)
  return ns.run(spawn)
end

--- A sandbox table from bubblewrap's command line (the arguments after
--- `bwrap`): what `nsrun bwrap` runs. The second result holds what only a
--- run can use (the fds bubblewrap reports on or waits for).
---@param argv string[]
---@return table sandbox, table extra
function M.from_bwrap(argv)
  return require("nsrun.bwrap").parse(argv)
end

--- The bubblewrap command line (a list of arguments) that builds this
--- sandbox: `nsrun bwrap` takes it, and so does bubblewrap where it has
--- the options.
---@param t table sandbox options
---@return string[]
function M.to_bwrap(t)
  return require("nsrun.bwrap").to_argv(t)
end

-- ---------------------------------------------------------------------------
-- A sandbox table as an OCI bundle's config.json.

local OCI_NS = { user = "user", mount = "mount", pid = "pid", uts = "uts", ipc = "ipc", net = "network",
  cgroup = "cgroup", time = "time" }
local ERRNO = { EPERM = 1, ENOENT = 2, EACCES = 13, EINVAL = 22, ENOSYS = 38 }
-- What a config.json cannot say: the content of the root is the bundle's.
local NO_OCI = { "files", "symlinks", "dirs", "chmod", "overlay", "steps", "setup", "fn", "before_start",
  "cap_drop", "landlock", "channel", "ports", "unmask", "nested_user", "gate", "lock_files" }

local function oci_cap(name)
  name = tostring(name):upper()
  return name:match("^CAP_") and name or ("CAP_" .. name)
end

local function oci_fail(fmt, ...)
  error("sandbox.to_oci: " .. fmt:format(...), 3)
end

--- The OCI runtime spec's config.json (as a table: `ns.json.encode` it)
--- that runs this sandbox: process (args, env, cwd, user, capabilities,
--- rlimits, noNewPrivileges), namespaces and maps, hostname, mounts from
--- binds, tmpfs, proc, dev, mqueue and sys, /proc's lock-down as masked
--- and read-only paths, seccomp when it is a names list. The sandbox
--- needs a `root` (a bundle's root file system); what config.json cannot
--- say (files, symlinks, overlays, a setup function…) is an error.
---@param t table sandbox options
---@return table
function M.to_oci(t)
  if type(t) ~= "table" then oci_fail("a sandbox table expected, got %s", type(t)) end
  for _, k in ipairs(NO_OCI) do
    if t[k] ~= nil then oci_fail("%s has no form in config.json (put it in the root file system)", k) end
  end
  if type(t.argv) ~= "table" or #t.argv == 0 then oci_fail("argv (the program) is needed") end
  local root, root_ro = t.root, false
  if type(root) == "table" then root, root_ro = root[1], root.ro == true end
  if type(root) ~= "string" then oci_fail("root (the root file system's directory) is needed") end
  local own_uid, own_gid = ns.getuid(), ns.getgid()
  local args, env = {}, {}
  for i, a in ipairs(t.argv) do args[i] = a end
  local names = {}
  for k, v in pairs(t.env or {}) do if v ~= false then names[#names + 1] = k end end
  table.sort(names)
  for _, k in ipairs(names) do env[#env + 1] = k .. "=" .. tostring(t.env[k]) end
  local caps = {}
  if t.cap_add then for _, c in ipairs(t.cap_add) do caps[#caps + 1] = oci_cap(c) end end
  if t.caps then
    if not t.caps.keep then oci_fail("caps: only {keep = {…}} has a form in config.json") end
    for _, c in ipairs(t.caps.keep) do caps[#caps + 1] = oci_cap(c) end
  end
  local process = {
    terminal = false,
    args = args,
    env = ns.json.array(env),
    cwd = t.chdir or t.cwd or "/",
    user = { uid = t.uid or own_uid, gid = t.gid or own_gid },
    capabilities = { bounding = ns.json.array(caps), effective = ns.json.array(caps),
      permitted = ns.json.array(caps) },
    noNewPrivileges = t.no_new_privs ~= false,
  }
  if t.groups then process.user.additionalGids = t.groups end
  if t.rlimits then
    local rl, keys = {}, {}
    for k in pairs(t.rlimits) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = t.rlimits[k]
      local soft, hard = v, v
      if type(v) == "table" then soft, hard = v[1], v[2] end
      if math.type(soft) ~= "integer" or math.type(hard) ~= "integer" then
        oci_fail("rlimits.%s: only counts (integers) have a form in config.json", k)
      end
      rl[#rl + 1] = { type = "RLIMIT_" .. k:upper(), soft = soft, hard = hard }
    end
    process.rlimits = rl
  end

  -- Namespaces: all unless said (net = "host" keeps the host's).
  local linux = { namespaces = ns.json.array {} }
  local wanted = t.namespaces or ALL
  if type(wanted) == "string" then
    local l = {}
    for k in wanted:gmatch("[^,%s]+") do l[#l + 1] = k end
    wanted = l
  end
  local has = {}
  for _, k in ipairs(wanted) do
    k = ALIAS[k] or k
    if not OCI_NS[k] then oci_fail("namespaces: unknown kind %s", tostring(k)) end
    if not (k == "net" and t.net == "host") then
      has[k] = true
      linux.namespaces[#linux.namespaces + 1] = { type = OCI_NS[k] }
    end
  end
  if t.net ~= nil and t.net ~= "none" and t.net ~= "host" then
    oci_fail("net = %s has no form in config.json (an engine sets the network up)", tostring(t.net))
  end
  if has.user then
    -- The sandbox's own default: the caller mapped to the ids asked for.
    linux.uidMappings = { { containerID = t.uid or own_uid, hostID = own_uid, size = 1 } }
    linux.gidMappings = { { containerID = t.gid or own_gid, hostID = own_gid, size = 1 } }
  end

  local mounts = {}
  local function add(m, path)
    m.destination, m.i = path, #mounts + 1
    mounts[#mounts + 1] = m
  end
  for _, b in ipairs(t.binds or {}) do
    local src, dst = b[1] or b.source, b[2] or b.dest or b[1] or b.source
    if not (b.try and not pcall(ns.realpath, src)) then
      local o = { "rbind", b.ro and "ro" or "rw", "nosuid" }
      if not b.dev then o[#o + 1] = "nodev" end
      add({ type = "bind", source = src, options = o }, dst)
    end
  end
  for _, e in ipairs(t.tmpfs or {}) do
    if type(e) == "string" then e = { e } end
    local o = { "nosuid", "nodev", "mode=" .. (e.mode and tostring(e.mode) or "755") }
    if e.size then o[#o + 1] = "size=" .. tostring(e.size) end
    add({ type = "tmpfs", source = "tmpfs", options = o }, e[1] or e.path)
  end
  if t.proc then add({ type = "proc", source = "proc" }, t.proc) end
  if t.dev then
    add({ type = "tmpfs", source = "tmpfs", options = { "nosuid", "strictatime", "mode=755", "size=65536k" } }, t.dev)
    add({ type = "devpts", source = "devpts",
      options = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" } }, t.dev .. "/pts")
  end
  if t.mqueue then add({ type = "mqueue", source = "mqueue", options = { "nosuid", "noexec", "nodev" } }, t.mqueue) end
  if t.sys then add({ type = "sysfs", source = "sysfs", options = { "nosuid", "noexec", "nodev", "ro" } }, t.sys) end
  table.sort(mounts, function(a, b)
    local da, db = depth(a.destination), depth(b.destination)
    if da ~= db then return da < db end
    return a.i < b.i
  end)
  for _, m in ipairs(mounts) do m.i = nil end
  if t.proc then
    local masked, ro = {}, {}
    for _, p in ipairs(PROC_MASKED) do masked[#masked + 1] = t.proc .. "/" .. p end
    for _, p in ipairs(PROC_READONLY) do ro[#ro + 1] = t.proc .. "/" .. p end
    if t.sys then for _, p in ipairs(SYS_MASKED) do masked[#masked + 1] = t.sys .. "/" .. p end end
    linux.maskedPaths, linux.readonlyPaths = masked, ro
  end

  -- seccomp: a names list only (the preset, "default", is nsrun's own).
  local sc = t.seccomp
  if type(sc) == "table" then
    if sc.bpf then oci_fail("seccomp.bpf has no form in config.json") end
    local errno = ERRNO[sc.errno or "EPERM"] or oci_fail("seccomp.errno %s: not one to_oci knows", tostring(sc.errno))
    local action = ({ errno = "SCMP_ACT_ERRNO", kill = "SCMP_ACT_KILL_PROCESS", log = "SCMP_ACT_LOG" })
    local default = sc.default or "allow"
    if default == "allow" then
      local deny = sc.deny or {}
      local a = action[sc.action or "errno"] or oci_fail("seccomp.action %s", tostring(sc.action))
      linux.seccomp = { defaultAction = "SCMP_ACT_ALLOW",
        syscalls = { { names = ns.json.array(deny), action = a, errnoRet = a == "SCMP_ACT_ERRNO" and errno or nil } } }
    else
      local a = action[default] or oci_fail("seccomp.default %s", tostring(default))
      linux.seccomp = { defaultAction = a, defaultErrnoRet = a == "SCMP_ACT_ERRNO" and errno or nil,
        syscalls = { { names = ns.json.array(sc.allow or {}), action = "SCMP_ACT_ALLOW" } } }
    end
  end

  local doc = {
    ociVersion = "1.2.0",
    process = process,
    root = { path = root, readonly = root_ro },
    mounts = ns.json.array(mounts),
    linux = linux,
  }
  if t.hostname then doc.hostname = t.hostname end
  return doc
end

--- The ns.spawn options a sandbox table stands for (for inspection).
---@param opts table sandbox options
---@return table
function M.options(opts)
  local spawn = build(opts, 2) -- (not a tail call: errors name the caller's line)
  return spawn
end

return M
