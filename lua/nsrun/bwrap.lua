--- nsrun.bwrap: bubblewrap's command line, as a recipe.
---
--- `nsrun bwrap [OPTIONS...] [--] COMMAND [ARGS...]` (or nsrun run under
--- the name `bwrap`) takes bubblewrap 0.11's options and runs them as one
--- ordered `nsrun.sandbox` table: the options that build the file system
--- become `steps`, applied in the order given, as bubblewrap applies them.
---
--- ```lua
--- local bwrap = require "nsrun.bwrap"
--- local t, extra = bwrap.parse{"--ro-bind", "/", "/", "--proc", "/proc", "true"}
--- print(table.concat(bwrap.to_argv(t), " "))
--- ```
---
--- What differs from bubblewrap, on purpose: `--remount-ro` is recursive
--- (a read-only / leaves no tmpfs below it writable); every sandbox gets
--- a seccomp rule against TIOCSTI/TIOCLINUX and a session keyring of its
--- own; the sandbox dies with nsrun (bubblewrap's leaves it running unless
--- --die-with-parent).
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local planning, helpers = ...
planning = planning == true

local M = {}

--- The bubblewrap release whose command line this follows.
M.BWRAP_VERSION = "0.11.0"

local HELP = [[
    --help                       Print this help
    --version                    Print version
    --args FD                    Parse NUL-separated args from FD
    --argv0 VALUE                Set argv[0] to the value VALUE before running the program
    --level-prefix               Prepend e.g. <3> to diagnostic messages
    --unshare-all                Unshare every namespace we support by default
    --share-net                  Retain the network namespace (can only combine with --unshare-all)
    --unshare-user               Create new user namespace (may be automatically implied if not setuid)
    --unshare-user-try           Create new user namespace if possible else continue by skipping it
    --unshare-ipc                Create new ipc namespace
    --unshare-pid                Create new pid namespace
    --unshare-net                Create new network namespace
    --unshare-uts                Create new uts namespace
    --unshare-cgroup             Create new cgroup namespace
    --unshare-cgroup-try         Create new cgroup namespace if possible else continue by skipping it
    --userns FD                  Use this user namespace (cannot combine with --unshare-user)
    --userns2 FD                 After setup switch to this user namespace, only useful with --userns
    --disable-userns             Disable further use of user namespaces inside sandbox
    --assert-userns-disabled     Fail unless further use of user namespace inside sandbox is disabled
    --pidns FD                   Use this pid namespace (as parent namespace if using --unshare-pid)
    --uid UID                    Custom uid in the sandbox (requires --unshare-user or --userns)
    --gid GID                    Custom gid in the sandbox (requires --unshare-user or --userns)
    --hostname NAME              Custom hostname in the sandbox (requires --unshare-uts)
    --chdir DIR                  Change directory to DIR
    --clearenv                   Unset all environment variables
    --setenv VAR VALUE           Set an environment variable
    --unsetenv VAR               Unset an environment variable
    --lock-file DEST             Take a lock on DEST while sandbox is running
    --sync-fd FD                 Keep this fd open while sandbox is running
    --bind SRC DEST              Bind mount the host path SRC on DEST
    --bind-try SRC DEST          Equal to --bind but ignores non-existent SRC
    --dev-bind SRC DEST          Bind mount the host path SRC on DEST, allowing device access
    --dev-bind-try SRC DEST      Equal to --dev-bind but ignores non-existent SRC
    --ro-bind SRC DEST           Bind mount the host path SRC readonly on DEST
    --ro-bind-try SRC DEST       Equal to --ro-bind but ignores non-existent SRC
    --bind-fd FD DEST            Bind open directory or path fd on DEST
    --ro-bind-fd FD DEST         Bind open directory or path fd read-only on DEST
    --remount-ro DEST            Remount DEST as readonly (recursively, in nsrun)
    --overlay-src SRC            Read files from SRC in the following overlay
    --overlay RWSRC WORKDIR DEST Mount overlayfs on DEST, with RWSRC as the host path for writes and
                                 WORKDIR an empty directory on the same filesystem as RWSRC
    --tmp-overlay DEST           Mount overlayfs on DEST, with writes going to an invisible tmpfs
    --ro-overlay DEST            Mount overlayfs read-only on DEST
    --exec-label LABEL           Exec label for the sandbox
    --file-label LABEL           File label for temporary sandbox content
    --proc DEST                  Mount new procfs on DEST
    --dev DEST                   Mount new dev on DEST
    --tmpfs DEST                 Mount new tmpfs on DEST
    --mqueue DEST                Mount new mqueue on DEST
    --dir DEST                   Create dir at DEST
    --file FD DEST               Copy from FD to destination DEST
    --bind-data FD DEST          Copy from FD to file which is bind-mounted on DEST
    --ro-bind-data FD DEST       Copy from FD to file which is readonly bind-mounted on DEST
    --symlink SRC DEST           Create symlink at DEST with target SRC
    --seccomp FD                 Load and use seccomp rules from FD (not repeatable)
    --add-seccomp-fd FD          Load and use seccomp rules from FD (repeatable)
    --block-fd FD                Block on FD until some data to read is available
    --userns-block-fd FD         Block on FD until the user namespace is ready
    --info-fd FD                 Write information about the running container to FD
    --json-status-fd FD          Write container status to FD as multiple JSON documents
    --new-session                Create a new terminal session
    --die-with-parent            Kills with SIGKILL child process (COMMAND) when bwrap or bwrap's parent dies.
    --as-pid-1                   Do not install a reaper process with PID=1
    --cap-add CAP                Add cap CAP when running as privileged user
    --cap-drop CAP               Drop cap CAP when running as privileged user
    --perms OCTAL                Set permissions of next argument (--bind-data, --file, etc.)
    --size BYTES                 Set size of next argument (only for --tmpfs)
    --chmod OCTAL PATH           Change permissions of PATH (must already exist)
]]

-- A bubblewrap usage error: the message bwrap would print, and whether
-- the usage text follows it.
local Usage = {}
Usage.__index = Usage
Usage.__tostring = function(e) return "bwrap: " .. e.msg end
local function die(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, Usage), 0)
end

local WORDS = { "an argument", "two arguments", "three arguments" }

-- How many arguments each option takes.
local NARGS = {}
for _, o in ipairs { "--help", "--version", "--level-prefix", "--unshare-all", "--share-net", "--unshare-user",
  "--unshare-user-try", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup",
  "--unshare-cgroup-try", "--disable-userns", "--assert-userns-disabled", "--clearenv", "--new-session",
  "--die-with-parent", "--as-pid-1" } do
  NARGS[o] = 0
end
for _, o in ipairs { "--args", "--argv0", "--userns", "--userns2", "--pidns", "--uid", "--gid", "--hostname",
  "--chdir", "--unsetenv", "--lock-file", "--sync-fd", "--remount-ro", "--overlay-src", "--tmp-overlay",
  "--ro-overlay", "--exec-label", "--file-label", "--proc", "--dev", "--tmpfs", "--mqueue", "--dir", "--seccomp",
  "--add-seccomp-fd", "--block-fd", "--userns-block-fd", "--info-fd", "--json-status-fd", "--cap-add",
  "--cap-drop", "--perms", "--size" } do
  NARGS[o] = 1
end
for _, o in ipairs { "--setenv", "--bind", "--bind-try", "--dev-bind", "--dev-bind-try", "--ro-bind",
  "--ro-bind-try", "--bind-fd", "--ro-bind-fd", "--file", "--bind-data", "--ro-bind-data", "--symlink",
  "--chmod" } do
  NARGS[o] = 2
end
NARGS["--overlay"] = 3

-- Options after which --perms applies, and their default modes.
local PERMS_DEFAULT = { ["--file"] = "0666", ["--bind-data"] = "0600", ["--ro-bind-data"] = "0600",
  ["--tmpfs"] = "0755", ["--dir"] = "0755", ["--chmod"] = false }

local function fd_of(opt, s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 0 or tostring(n) ~= s then die("Invalid fd: %s", s) end
  return n
end

local function id_of(opt, s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 0 or n > 0xfffffffe then die("Invalid %s: %s", opt:sub(3), s) end
  return n
end

local function octal(opt, s)
  local n = s:match("^[0-7]+$") and tonumber(s, 8)
  if not n or n > 4095 then die("%s takes an octal argument <= 07777", opt) end
  return ("0%o"):format(n)
end

-- Paths inside the sandbox: bubblewrap takes "usr" as "/usr".
local function inside(p)
  if p:sub(1, 1) ~= "/" then p = "/" .. p end
  return p
end

-- Sources on the host: relative ones are relative to the caller's
-- directory (bubblewrap resolves them there too).
local function host(p, cwd)
  if p:sub(1, 1) == "/" then return p end
  return (cwd or ns.getcwd()) .. "/" .. p
end

-- Everything a caller hands bubblewrap through an fd is read now, in the
-- parent, whole.
local function slurp(fd)
  local f = ns.fdopen(fd, "r")
  local data = f:read("a") or ""
  f:close()
  return data
end

local CAP_NAMES = {
  "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
  "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
  "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
  "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
  "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
  "checkpoint_restore",
}
local CAP_SET = {}
for _, c in ipairs(CAP_NAMES) do CAP_SET[c] = true end

local function cap_of(s)
  if s:upper() == "ALL" then return "ALL" end
  local c = s:lower():gsub("^cap_", "")
  if not CAP_SET[c] then die("unknown cap: %s", s) end
  return c
end

-- The capabilities we hold now (CapEff), by name: what bubblewrap run by
-- root starts the sandbox with.
local function own_caps()
  local set = {}
  local f = io.open("/proc/self/status")
  local text = f and f:read("a") or ""
  if f then f:close() end
  local hex = text:match("CapEff:%s*(%x+)")
  if not hex then return set end
  -- Bits from the right, 4 at a time (Lua's integers hold 64 bits).
  local bit = 0
  for j = #hex, 1, -1 do
    local nib = tonumber(hex:sub(j, j), 16)
    for b = 0, 3 do
      if nib & (1 << b) ~= 0 and CAP_NAMES[bit + b + 1] then set[CAP_NAMES[bit + b + 1]] = true end
    end
    bit = bit + 4
  end
  return set
end

--- Parse bubblewrap's arguments (the ones after `bwrap`) into a sandbox
--- table for `nsrun.sandbox` and what only a run can use (`extra`: the fds
--- to report on or wait for). Raises a table whose `msg` is bubblewrap's
--- message on a usage error.
---@param argv string[]
---@return table sandbox, table extra
function M.parse(argv)
  local args = {}
  for i, a in ipairs(argv) do args[i] = a end
  local root_caller = ns.getuid() == 0
  local cwd_ok, cwd = pcall(ns.getcwd)
  cwd = cwd_ok and cwd or nil
  local t = { steps = {}, seccomp = false, unmask = true, set_pwd = true }
  local x = { lock_files = {}, seccomp = {}, keep_fds = {} }
  -- Known before any message: it marks warnings too.
  for _, a in ipairs(args) do
    if a == "--" or a:sub(1, 1) ~= "-" then break end
    if a == "--level-prefix" then x.level_prefix = true end
  end
  local unshare = {}
  local unshare_try = {}
  local overlay_src = {}
  local env, env_cleared = {}, false
  local caps = root_caller and own_caps() or {}
  local caps_given = false
  local pending_perms, pending_size, perms_opt, size_opt
  local i = 1
  local function step(s) t.steps[#t.steps + 1] = s end
  while i <= #args do
    local a = args[i]
    if a == "--" then
      i = i + 1
      break
    end
    if a:sub(1, 1) ~= "-" then break end
    local n = NARGS[a]
    if not n then die("Unknown option %s", a) end
    if #args - i < n then die("%s takes %s", a, WORDS[n]) end
    local v1, v2, v3 = args[i + 1], args[i + 2], args[i + 3]
    -- --perms and --size qualify the option right after them only.
    if pending_perms and a ~= "--perms" and PERMS_DEFAULT[a] == nil then
      die("--perms must be followed by an option that creates a file")
    end
    if pending_size and a ~= "--size" and a ~= "--perms" and a ~= "--tmpfs" then
      die("--size must be followed by --tmpfs")
    end
    local perms = pending_perms
    if PERMS_DEFAULT[a] ~= nil then pending_perms = nil end
    if a == "--help" then
      x.help = true
    elseif a == "--version" then
      x.version = true
    elseif a == "--args" then
      -- NUL-separated arguments, in place of this option.
      local data = slurp(fd_of(a, v1))
      local more = {}
      for s in data:gmatch("([^\0]*)\0") do more[#more + 1] = s end
      -- Options only, as bubblewrap reads them: what follows a word that
      -- is none (a command) is not taken from there.
      local j, keep = 1, {}
      while j <= #more do
        local w = more[j]
        if w == "--" or w:sub(1, 1) ~= "-" then break end
        local k = NARGS[w]
        if not k then break end
        for m = j, math.min(j + k, #more) do keep[#keep + 1] = more[m] end
        j = j + 1 + k
      end
      for m = #keep, 1, -1 do table.insert(args, i + 2, keep[m]) end
    elseif a == "--argv0" then
      t.argv0 = v1
    elseif a == "--level-prefix" then
      x.level_prefix = true
    elseif a == "--unshare-all" then
      for _, k in ipairs { "ipc", "pid", "net", "uts" } do unshare[k] = true end
      unshare_try.user, unshare_try.cgroup = true, true
    elseif a == "--share-net" then
      x.share_net = true
    elseif a:match("^%-%-unshare%-") then
      local kind, try = a:match("^%-%-unshare%-(%a+)(%-?t?r?y?)$")
      if try == "-try" then unshare_try[kind] = true else unshare[kind] = true end
    elseif a == "--userns" or a == "--userns2" or a == "--pidns" then
      local fd = fd_of(a, v1)
      x[a:sub(3)] = fd
    elseif a == "--disable-userns" then
      t.disable_userns = true
    elseif a == "--assert-userns-disabled" then
      x.assert_userns_disabled = true
    elseif a == "--uid" or a == "--gid" then
      t[a:sub(3)] = id_of(a, v1)
    elseif a == "--hostname" then
      t.hostname = v1
    elseif a == "--chdir" then
      t.chdir = inside(v1)
    elseif a == "--clearenv" then
      env, env_cleared = {}, true
    elseif a == "--setenv" then
      env[v1] = v2
    elseif a == "--unsetenv" then
      env[v1] = false
    elseif a == "--lock-file" then
      x.lock_files[#x.lock_files + 1] = inside(v1)
    elseif a == "--sync-fd" then
      x.sync_fd = fd_of(a, v1)
      x.keep_fds[#x.keep_fds + 1] = x.sync_fd
    elseif a:match("^%-%-[a-z]*%-?bind%-?t?r?y?$") then
      local ro, dev, try = a:find("ro-", 1, true) ~= nil, a:find("dev-", 1, true) ~= nil, a:sub(-4) == "-try"
      if not try and not planning then
        local found, e = pcall(ns.realpath, host(v1, cwd))
        if not found and type(e) ~= "string" and e.errno == "ENOENT" then
          die("Can't find source path %s: No such file or directory", v1)
        end
      end
      step { "bind", host(v1, cwd), inside(v2), ro = ro or nil, dev = dev or nil, try = try or nil }
    elseif a == "--bind-fd" or a == "--ro-bind-fd" then
      local fd = fd_of(a, v1)
      -- The fd's own file, whatever path led to it: /proc/self/fd/N is
      -- what the mount follows.
      -- The fd's file by its path, which the child's copy of our mount
      -- namespace resolves as we do (a mount of another namespace cannot
      -- be bound through the fd itself).
      local ok, path = pcall(ns.realpath, "/proc/self/fd/" .. fd)
      if not ok or path:sub(1, 1) ~= "/" then die("Can't find source path for fd %d", fd) end
      step { "bind", path, inside(v2), ro = (a == "--ro-bind-fd") or nil }
    elseif a == "--remount-ro" then
      step { "remount_ro", inside(v1) }
    elseif a == "--overlay-src" then
      overlay_src[#overlay_src + 1] = host(v1, cwd)
    elseif a == "--overlay" or a == "--tmp-overlay" or a == "--ro-overlay" then
      if #overlay_src == 0 then die("%s requires at least one --overlay-src", a) end
      -- overlayfs lists the top layer first; bubblewrap's later sources go on top.
      local lower = {}
      for j = #overlay_src, 1, -1 do lower[#lower + 1] = overlay_src[j] end
      local s = { "overlay", inside(a == "--overlay" and v3 or v1), lower = lower }
      if a == "--overlay" then
        s.upper, s.work = host(v1, cwd), host(v2, cwd)
      elseif a == "--tmp-overlay" then
        s.tmpfs = true
      elseif #lower < 2 then
        die("--ro-overlay requires at least two --overlay-src")
      end
      step(s)
      overlay_src = {}
    elseif a == "--exec-label" or a == "--file-label" then
      -- What bubblewrap says on a host without SELinux.
      die("labeling not supported on this system")
    elseif a == "--proc" then
      -- Decided once the namespaces are known (below).
      step { "proc", inside(v1) }
    elseif a == "--dev" then
      -- /dev/shm a plain directory, as bubblewrap makes it.
      step { "dev", inside(v1), shm = false }
      x.needs_devpts = true
    elseif a == "--mqueue" then
      step { "mqueue", inside(v1) }
    elseif a == "--tmpfs" then
      step { "tmpfs", inside(v1), size = pending_size, mode = perms or PERMS_DEFAULT[a] }
      pending_size = nil
    elseif a == "--dir" then
      step { "dir", inside(v1), mode = perms or PERMS_DEFAULT[a] }
    elseif a == "--file" or a == "--bind-data" or a == "--ro-bind-data" then
      local data = slurp(fd_of(a, v1))
      local s = { "file", inside(v2), data, mode = perms or PERMS_DEFAULT[a] }
      if a ~= "--file" then s.bind, s.ro = true, (a == "--ro-bind-data") or nil end
      step(s)
    elseif a == "--symlink" then
      step { "symlink", v1, inside(v2) }
    elseif a == "--chmod" then
      step { "chmod", inside(v2), octal(a, v1) }
    elseif a == "--seccomp" or a == "--add-seccomp-fd" then
      if a == "--seccomp" and x.seccomp_single then
        -- bubblewrap's own words, and its rule: the last one counts.
        io.stderr:write((x.level_prefix and "<4>" or "") .. "bwrap: Only the last --seccomp option will take effect\n")
        x.seccomp = {}
      end
      x.seccomp_single = x.seccomp_single or a == "--seccomp"
      x.seccomp_added = x.seccomp_added or a == "--add-seccomp-fd"
      if x.seccomp_single and x.seccomp_added then die("--seccomp cannot be combined with --add-seccomp-fd") end
      x.seccomp[#x.seccomp + 1] = slurp(fd_of(a, v1))
    elseif a == "--block-fd" or a == "--userns-block-fd" or a == "--info-fd" or a == "--json-status-fd" then
      x[a:sub(3):gsub("%-", "_")] = fd_of(a, v1)
    elseif a == "--new-session" then
      t.new_session = true
    elseif a == "--die-with-parent" then
      t.die_with_parent = true
    elseif a == "--as-pid-1" then
      t.as_pid_1 = true
    elseif a == "--cap-add" or a == "--cap-drop" then
      caps_given = true
      local c = cap_of(v1)
      local add = a == "--cap-add"
      if c == "ALL" then
        caps = {}
        if add then
          for _, name in ipairs(CAP_NAMES) do caps[name] = true end
        end
      else
        caps[c] = add or nil
      end
    elseif a == "--perms" then
      if pending_perms then die("--perms given twice for the same destination") end
      pending_perms = octal(a, v1)
      perms_opt = a
    elseif a == "--size" then
      if pending_size then die("--size given twice for the same destination") end
      local ok = v1:match("^%d+$")
      if not ok then die("Invalid size %s", v1) end
      pending_size = math.tointeger(tonumber(v1))
      size_opt = a
    end
    i = i + 1 + n
  end
  if pending_perms then die("--perms must be followed by an option that creates a file") end
  if pending_size then die("--size must be followed by --tmpfs") end
  if #overlay_src > 0 then die("--overlay-src must be followed by another --overlay-src or one of --overlay, --tmp-overlay, or --ro-overlay") end
  local _ = perms_opt, size_opt
  t.argv = {}
  for j = i, #args do t.argv[#t.argv + 1] = args[j] end

  -- Namespaces as bubblewrap decides them: the mount namespace always; a
  -- user namespace when asked, or tried, or whenever the caller is not
  -- root (that is what lets it do the rest).
  if x.share_net then unshare.net = nil end
  if x.userns and (unshare.user or unshare_try.user) then
    die("--userns not compatible --unshare-user")
  end
  if x.pidns and unshare.pid then
    die("--pidns with --unshare-pid (a pid namespace nested in a given one) is not supported by nsrun bwrap")
  end
  local kinds = { "mount" }
  local want_user = unshare.user or unshare_try.user or (not root_caller and not x.userns)
  if want_user then kinds[#kinds + 1] = "user" end
  for _, k in ipairs { "ipc", "pid", "net", "uts", "cgroup" } do
    if unshare[k] then kinds[#kinds + 1] = k end
  end
  t.namespaces = kinds
  -- (The try form decided now, so the info fd names what was made.)
  if unshare_try.cgroup and not unshare.cgroup and pcall(ns.id, "cgroup") then
    kinds[#kinds + 1] = "cgroup"
  end
  local join = {}
  if x.userns then join.user = "/proc/self/fd/" .. x.userns end
  if x.pidns then join.pid = "/proc/self/fd/" .. x.pidns end
  if next(join) then t.join = join end
  if (t.uid or t.gid) and not (want_user or x.userns) then
    die("Specifying --%s requires --unshare-user or --userns", t.uid and "uid" or "gid")
  end
  if t.hostname and not unshare.uts then die("Specifying --hostname requires --unshare-uts") end
  if t.as_pid_1 and not unshare.pid then die("Specifying --as-pid-1 requires --unshare-pid") end
  if t.disable_userns and not (unshare.user or unshare_try.user) then die("--disable-userns requires --unshare-user") end
  if x.userns_block_fd and not want_user then die("--userns-block-fd requires --unshare-user") end
  if x.userns_block_fd and not x.info_fd then die("--userns-block-fd requires --info-fd") end
  if x.userns2 and not x.userns then die("--userns2 requires --userns") end
  if x.assert_userns_disabled and t.disable_userns then
    -- bubblewrap checks that this combination holds anyway; nothing to add.
    x.assert_userns_disabled = nil
  end
  if x.userns_block_fd then
    -- The caller writes the maps (bubblewrap's demos/userns-block-fd.py).
    t.uid_map, t.gid_map = "none", "none"
  end
  if want_user then t.setgroups = "deny" end
  -- With --dev, as bubblewrap: root of the new user namespace for the
  -- set-up (the caller mapped to 0: devpts needs root mapped), and the
  -- program in one nested in it, as the sandbox's uid there (mapped to
  -- that 0). The sandbox's mounts then belong to a namespace the program
  -- has no capability in.
  if want_user and x.needs_devpts and not x.userns_block_fd then
    local uid, gid = t.uid or ns.getuid(), t.gid or ns.getgid()
    if uid ~= 0 then
      t.uid_map = { { 0, ns.getuid(), 1 } }
      t.gid_map = { { 0, ns.getgid(), 1 } }
      t.nested_user = { uid = uid, gid = gid }
      t.uid, t.gid = nil, nil
    end
  end
  -- --proc: a procfs of its own with a pid namespace to show; else the
  -- host's, bound (a new procfs needs one).
  local own_pid = unshare.pid or x.pidns
  local steps = {}
  for _, st in ipairs(t.steps) do
    if st[1] == "proc" then
      if own_pid then
        steps[#steps + 1] = st
      else
        steps[#steps + 1] = { "bind", "/proc", st[2], rec = false }
      end
      -- bubblewrap's covers: old subdirectories that could do harm, made
      -- read-only where its set-up could write them (root's; /proc/sys
      -- itself refuses write access to everyone, so it stays as it is).
      if root_caller then
        for _, sub in ipairs { "sysrq-trigger", "irq", "bus" } do
          steps[#steps + 1] = { "remount_ro", (st[2]:gsub("/+$", "")) .. "/" .. sub, rec = false, try = true }
        end
      end
    else
      steps[#steps + 1] = st
    end
  end
  t.steps = steps
  -- bubblewrap's sandbox outlives it unless --die-with-parent.
  t.die_with_parent = t.die_with_parent or false

  -- Capabilities: root keeps its own (less --cap-drop), anyone else gets
  -- none (plus --cap-add, which needs a user namespace of its own).
  if caps_given and not root_caller and not want_user and not x.userns then
    die("--cap-add in setuid mode can be used only by root")
  end
  local list = {}
  for c in pairs(caps) do list[#list + 1] = c end
  table.sort(list)
  -- Root without --cap-add/--cap-drop: bubblewrap leaves the sets alone.
  if root_caller and not caps_given then
    -- Left as they are; in a user namespace of its own, where the kernel
    -- hands out every capability, bounded to root's own as bubblewrap does.
    t.caps = want_user and { bounding = list } or false
  elseif root_caller and not want_user then
    -- bubblewrap run by root without a user namespace sets the sets, not
    -- the bounding one.
    t.caps = { sets = list }
  else
    t.caps = { keep = list }
  end

  if next(env) or env_cleared then
    t.env, t.clear_env = env, env_cleared or nil
  end
  if #x.seccomp > 0 then t.seccomp = { bpf = x.seccomp } end
  if #x.lock_files > 0 then t.lock_files = x.lock_files end
  if #x.keep_fds > 0 then t.keep_fds = x.keep_fds end
  -- The HOME the program gets ($HOME after --setenv/--unsetenv/--clearenv).
  local home = os.getenv("HOME")
  if env_cleared then home = nil end
  if env.HOME ~= nil then home = env.HOME or nil end
  x.cwd, x.home = cwd, home
  return t, x
end

-- The namespace kinds bubblewrap's info reports, with its names, in its
-- order.
local INFO_NS = { { "cgroup", "cgroup-namespace" }, { "ipc", "ipc-namespace" }, { "mount", "mnt-namespace" },
  { "net", "net-namespace" }, { "pid", "pid-namespace" }, { "uts", "uts-namespace" } }

local function info_fields(pid, kinds)
  local new = {}
  for _, k in ipairs(kinds) do new[k] = true end
  local f = { { "child-pid", pid } }
  for _, e in ipairs(INFO_NS) do
    if new[e[1]] then
      local ok, id = pcall(ns.id, e[1], pid)
      if ok then f[#f + 1] = { e[2], id } end
    end
  end
  return f
end

local function write_fd(fd, s, keep_open)
  local f = ns.fdopen(fd, "w")
  f:write(s)
  if not keep_open then f:close() end
  return f
end

--- The sandbox table and run-time extras as ns.spawn options: the
--- sandbox's own, with bubblewrap's waits and reports around them.
---@param t table
---@param x table
---@return table
function M.options(t, x)
  local opts = {}
  for k, v in pairs(t) do opts[k] = v end
  local cwd, home = x.cwd, x.home
  local block, userns2, assert_disabled = x.block_fd, x.userns2, x.assert_userns_disabled
  local userns2_handle = userns2 and not planning and ns.open("/proc/self/fd/" .. userns2)
  local block_file
  if block and not planning then block_file = ns.fdopen(block, "r") end
  local own_setup = opts.setup
  opts.setup = function()
    if not t.chdir then
      -- bubblewrap's rule: the caller's directory if the sandbox has it,
      -- else $HOME, else /.
      if not (cwd and pcall(ns.chdir, cwd)) and not (home and pcall(ns.chdir, home)) then
        ns.chdir("/")
      end
    end
    if userns2_handle then ns.setns(userns2_handle, "user") end
    if assert_disabled and pcall(ns.unshare, "user") then
      error("creation of new user namespaces was not disabled as requested", 0)
    end
    if own_setup then own_setup() end
    if block_file then block_file:read(1) end
  end
  local info, status = x.info_fd, x.json_status_fd
  local userns_block = x.userns_block_fd
  -- Only we write the reports and wait for the caller's maps: a reader of
  -- the info fd sees end of file once we close ours.
  local pfds = {}
  for _, fd in ipairs { info, status, userns_block } do pfds[#pfds + 1] = fd end
  if #pfds > 0 then opts.parent_fds = pfds end
  if (info or status or userns_block) and not planning then
    local kinds = t.namespaces
    opts.before_start = function(p)
      local f = info_fields(p.pid, kinds)
      if info then
        local lines = {}
        for _, e in ipairs(f) do lines[#lines + 1] = ("    %q: %d"):format(e[1], e[2]) end
        write_fd(info, "{\n" .. table.concat(lines, ",\n") .. "\n}\n")
      end
      if status then
        local parts = {}
        for _, e in ipairs(f) do parts[#parts + 1] = ("%q: %d"):format(e[1], e[2]) end
        x.status_file = write_fd(status, "{ " .. table.concat(parts, ", ") .. " }\n", true)
      end
      if userns_block then
        -- The caller writes the maps now, and says so with a byte.
        local b = ns.fdopen(userns_block, "r")
        b:read(1)
        b:close()
      end
    end
  end
  return opts
end

--- A sandbox table (as `parse` makes, or written by hand with `steps`) as
--- bubblewrap's command line: what `nsrun bwrap` would take to build it.
---@param t table
---@return string[]
function M.to_argv(t)
  local out = {}
  local function add(...)
    for _, v in ipairs { ... } do out[#out + 1] = tostring(v) end
  end
  local kinds = {}
  local function set(v)
    if type(v) == "string" then
      for k in v:gmatch("[^,%s]+") do kinds[k] = true end
    elseif type(v) == "table" then
      for _, k in ipairs(v) do kinds[k] = true end
    end
  end
  if t.namespaces == nil then
    for _, k in ipairs { "user", "ipc", "pid", "net", "uts", "cgroup" } do kinds[k] = true end
    if t.net == "host" then kinds.net = nil end
  else
    set(t.namespaces)
  end
  for _, k in ipairs { "user", "ipc", "pid", "net", "uts", "cgroup" } do
    if kinds[k] then add("--unshare-" .. k) end
  end
  local try = {}
  if type(t.namespaces_try) == "table" then
    for _, k in ipairs(t.namespaces_try) do try[k] = true end
  elseif type(t.namespaces_try) == "string" then
    for k in t.namespaces_try:gmatch("[^,%s]+") do try[k] = true end
  end
  for _, k in ipairs { "user", "cgroup" } do
    if try[k] then add("--unshare-" .. k .. "-try") end
  end
  if t.uid then add("--uid", t.uid) end
  if t.gid then add("--gid", t.gid) end
  if t.hostname then add("--hostname", t.hostname) end
  if t.clear_env then add("--clearenv") end
  if type(t.env) == "table" then
    local names = {}
    for k in pairs(t.env) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      if t.env[k] == false then add("--unsetenv", k) else add("--setenv", k, t.env[k]) end
    end
  end
  if type(t.unsetenv) == "table" then
    for _, k in ipairs(t.unsetenv) do add("--unsetenv", k) end
  end
  local root = type(t.root) == "table" and t.root[1] or t.root
  if root then
    if type(t.root) == "table" then
      add("--overlay-src", root, "--tmp-overlay", "/")
    else
      add("--bind", root, "/")
    end
  end
  -- The keyed options first, parents before children, as the sandbox
  -- applies them; then the ordered steps.
  local mounts = {}
  local function m(depth_of, ...) mounts[#mounts + 1] = { d = depth_of, i = #mounts + 1, a = { ... } } end
  local function depth(p) return select(2, p:gsub("/[^/]", "")) end
  for _, b in ipairs(type(t.binds) == "table" and t.binds or {}) do
    local src, dst = b[1] or b.source, b[2] or b.dest or b[1] or b.source
    local name = (b.dev and "--dev-bind") or (b.ro and "--ro-bind") or "--bind"
    m(depth(dst), name .. (b.try and "-try" or ""), src, dst)
  end
  for _, e in ipairs(type(t.tmpfs) == "table" and t.tmpfs or (t.tmpfs and { t.tmpfs } or {})) do
    local p = type(e) == "table" and (e[1] or e.path) or e
    local a = {}
    if type(e) == "table" and e.mode then a[#a + 1] = "--perms"; a[#a + 1] = e.mode end
    if type(e) == "table" and e.size then a[#a + 1] = "--size"; a[#a + 1] = e.size end
    a[#a + 1] = "--tmpfs"; a[#a + 1] = p
    m(depth(p), table.unpack(a))
  end
  for _, k in ipairs { "proc", "dev", "mqueue" } do
    if t[k] then m(depth(t[k]), "--" .. k, t[k]) end
  end
  table.sort(mounts, function(a, b)
    if a.d ~= b.d then return a.d < b.d end
    return a.i < b.i
  end)
  for _, e in ipairs(mounts) do add(table.unpack(e.a)) end
  for _, d in ipairs(type(t.dirs) == "table" and t.dirs or {}) do
    local p = type(d) == "table" and (d[1] or d.path) or d
    if type(d) == "table" and d.mode then add("--perms", d.mode) end
    add("--dir", p)
  end
  local links = {}
  for link, target in pairs(type(t.symlinks) == "table" and t.symlinks or {}) do links[#links + 1] = { link, target } end
  table.sort(links, function(a, b) return a[1] < b[1] end)
  for _, l in ipairs(links) do add("--symlink", l[2], l[1]) end
  for _, s in ipairs(type(t.steps) == "table" and t.steps or {}) do
    local k = s[1]
    if k == "bind" then
      add((s.dev and "--dev-bind") or (s.ro and "--ro-bind") or "--bind")
      out[#out] = out[#out] .. (s.try and "-try" or "")
      add(s[2], s[3])
    elseif k == "tmpfs" then
      if s.mode and s.mode ~= PERMS_DEFAULT["--tmpfs"] then add("--perms", s.mode) end
      if s.size then add("--size", s.size) end
      add("--tmpfs", s[2])
    elseif k == "overlay" then
      local lower = s.lower or {}
      for j = #lower, 1, -1 do add("--overlay-src", lower[j]) end
      if s.upper then
        add("--overlay", s.upper, s.work, s[2])
      elseif s.tmpfs then
        add("--tmp-overlay", s[2])
      else
        add("--ro-overlay", s[2])
      end
    elseif k == "proc" or k == "dev" or k == "mqueue" or k == "dir" or k == "remount_ro" then
      if k == "dir" and s.mode and s.mode ~= PERMS_DEFAULT["--dir"] then add("--perms", s.mode) end
      add("--" .. k:gsub("_", "-"), s[2])
    elseif k == "symlink" then
      add("--symlink", s[2], s[3])
    elseif k == "chmod" then
      add("--chmod", s[3], s[2])
    elseif k == "file" then
      -- The content goes through an fd the caller must provide.
      add("--" .. (s.bind and (s.ro and "ro-bind-data" or "bind-data") or "file"), "FD", s[2])
    end
  end
  for _, p in ipairs(type(t.remount_ro) == "table" and t.remount_ro or (t.remount_ro and { t.remount_ro } or {})) do
    add("--remount-ro", p)
  end
  if type(t.caps) == "table" then
    if t.caps.keep then
      add("--cap-drop", "ALL")
      for _, c in ipairs(t.caps.keep) do add("--cap-add", c) end
    elseif t.caps.drop then
      for _, c in ipairs(t.caps.drop) do add("--cap-drop", c) end
    end
  end
  if t.disable_userns then add("--disable-userns") end
  if t.chdir then add("--chdir", t.chdir) end
  if t.new_session then add("--new-session") end
  if t.die_with_parent ~= false then add("--die-with-parent") end
  if t.as_pid_1 then add("--as-pid-1") end
  if t.argv0 then add("--argv0", t.argv0) end
  if type(t.argv) == "table" and #t.argv > 0 then
    add("--")
    for _, v in ipairs(t.argv) do add(v) end
  end
  return out
end

local function usage(argv0, out)
  out:write(("usage: %s [OPTIONS...] [--] COMMAND [ARGS...]\n\n"):format(argv0))
  out:write(HELP)
end

--- `nsrun bwrap`: run bubblewrap's command line; returns the exit status.
---@param argv0 string the name to show in the usage line
---@param argv string[]
---@return integer
function M.main(argv0, argv)
  local level_prefix = false
  for _, a in ipairs(argv) do
    if a == "--" or a:sub(1, 1) ~= "-" then break end
    if a == "--level-prefix" then level_prefix = true end
  end
  local function complain(msg)
    io.stderr:write((level_prefix and "<3>" or "") .. "bwrap: " .. msg .. "\n")
  end
  local ok, t, x = pcall(M.parse, argv)
  if not ok then
    if getmetatable(t) == Usage then
      complain(t.msg)
      return 1
    end
    complain(tostring(t))
    return 1
  end
  if x.help then
    usage(argv0, io.stdout)
    return 0
  end
  if x.version then
    io.stdout:write(("bubblewrap %s (nsrun bwrap)\n"):format(M.BWRAP_VERSION))
    return 0
  end
  if #t.argv == 0 then
    usage(argv0, io.stderr)
    return 1
  end
  if t.die_with_parent then helpers.die_with_parent() end
  local spawn_ok, p = pcall(sandbox.spawn, M.options(t, x))
  if not spawn_ok then
    -- The user's paths and words, not where in nsrun it happened.
    local msg = tostring(p):gsub("^sandbox: ", ""):gsub("^spawn: ", ""):gsub("^setup: ", "")
      :gsub("%[nsrun%.%a+%]:%d+: ", ""):gsub(" in root /newroot", "")
    complain(msg)
    return 1
  end
  local st = p:wait()
  if x.status_file then
    x.status_file:write(('{ "exit-code": %d }\n'):format(st.code))
    x.status_file:close()
  end
  return st.code
end

return M
