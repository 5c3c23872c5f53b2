--- nsrun.oci: an OCI runtime (runc's command line) written on nsrun's API.
---
--- `nsrun oci [GLOBAL FLAGS] COMMAND [FLAGS] ID`, or nsrun under the name
--- `nsrun-oci`: what podman (through conmon), containerd's shim and so
--- Kubernetes call. A bundle's `config.json` becomes `ns.spawn` options: the
--- namespaces, maps and identity, a `setup` that builds the root from the
--- bundle's `mounts` inside the root (`ns.root`, symlinks never leave it),
--- masks and read-only paths, and a `gate`: `create` leaves the container
--- process set up and waiting right before its exec, `start` opens the gate.
---
--- ```lua
--- local oci = require "nsrun.oci"
--- return oci.run("/path/to/bundle", "c1")   -- create + start + wait
--- ```
local ns = require "nsrun"
local planning, helpers = ...
planning = planning == true

local M = {}

M.OCI_VERSION = "1.2.0"

-- ---------------------------------------------------------------------------
-- Errors and logs.

-- A runtime error: the message the engine shows (podman maps "executable
-- file not found" to 127).
local Fail = {}
Fail.__index = Fail
Fail.__tostring = function(e) return e.msg end
local function fail(fmt, ...)
  error(setmetatable({ msg = select("#", ...) > 0 and fmt:format(...) or fmt }, Fail), 0)
end

local function now_rfc3339()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- ---------------------------------------------------------------------------
-- Files.

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, data)
  local f, e = io.open(path, "wb")
  if not f then fail("write %s: %s", path, e) end
  f:write(data)
  f:close()
end

local exists = helpers.exists

-- An OCI "KEY=VALUE" list as a table (entries without "=" are skipped).
local function env_of(list)
  local env = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match("^([^=]*)=(.*)$")
    if k then env[k] = v end
  end
  return env
end

local function join(dir, p)
  if p:sub(1, 1) == "/" then return p end
  return (dir:gsub("/+$", "")) .. "/" .. p
end

-- ---------------------------------------------------------------------------
-- State: ROOT/ID/state.json, and ROOT/ID/exec.fifo while created.

local function default_root()
  if ns.geteuid() == 0 then return "/run/nsrun-oci" end
  local xdg = os.getenv("XDG_RUNTIME_DIR")
  if xdg and xdg ~= "" then return xdg .. "/nsrun-oci" end
  return "/tmp/nsrun-oci-" .. ns.geteuid()
end

local function valid_id(id)
  if type(id) ~= "string" or id == "" or not id:match("^[%w][%w%._%-]*$") or #id > 1024 then
    fail("invalid container id %q: letters, digits, '.', '_' and '-', starting with a letter or digit", tostring(id))
  end
  return id
end

-- /proc/PID/stat: the state letter and the start time (to tell a reused pid).
local function proc_stat(pid)
  local s = read("/proc/" .. pid .. "/stat")
  if not s then return nil end
  local rest = s:match("%) (.*)$")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- rest starts at field 3 (state); starttime is field 22.
  return fields[1], fields[20]
end

-- The JSON document in `text`, or a runtime error naming `what` (nil
-- text: `missing` says why it is not there).
local function json_of(text, what, missing)
  if not text then fail("%s", missing) end
  local ok, v = pcall(ns.json.decode, text)
  if not ok then fail("%s: %s", what, tostring(v)) end
  return v
end

local function load_state(root, id)
  return json_of(read(root .. "/" .. id .. "/state.json"), ("container %s: its state is damaged"):format(id),
    ("container %s does not exist"):format(id))
end

local function freezer_state(st)
  local dir = st.cgroups and st.cgroups.freezer
  if not dir then return nil end
  local s = read(dir .. "/freezer.state") or read(dir .. "/cgroup.freeze")
  if not s then return nil end
  s = s:gsub("%s+$", "")
  return (s == "FROZEN" or s == "1") and "paused" or nil
end

-- The live status: stopped once the process is gone (or a zombie, or its
-- pid is another process's now), paused when frozen, created while it
-- waits at the gate, else running.
local function status(root, st)
  local state, start = proc_stat(st.pid)
  if not state or state == "Z" or state == "X" or (st.starttime and start ~= st.starttime) then
    return "stopped"
  end
  if freezer_state(st) then return "paused" end
  if exists(root .. "/" .. st.id .. "/exec.fifo") then return "created" end
  return "running"
end

local function state_doc(root, st)
  return {
    ociVersion = M.OCI_VERSION,
    id = st.id,
    status = status(root, st),
    pid = st.pid,
    bundle = st.bundle,
    annotations = st.annotations or setmetatable({}, {}),
    created = st.created,
    owner = st.owner,
  }
end

-- ---------------------------------------------------------------------------
-- config.json -> ns.spawn options.

local NS_KIND = { pid = "pid", network = "net", mount = "mount", ipc = "ipc", uts = "uts", user = "user",
  cgroup = "cgroup", time = "time" }

local function maps(list)
  if not list then return nil end
  local out = {}
  for i, m in ipairs(list) do
    out[i] = { m.containerID, m.hostID, m.size }
  end
  return out
end

local function cap_names(list)
  local out = {}
  for _, c in ipairs(list or {}) do out[#out + 1] = c end
  return out
end

-- process.capabilities as runc leaves them after the exec: uid 0 holds
-- the bounding set with empty inheritable and ambient sets; any other uid
-- only its ambient set. (nsrun's `keep` fills every set, the ambient one
-- too, which handed `ctr task exec --user 1000` every capability.)
local function caps_of(c, uid)
  if not c then return { keep = {} } end
  if (uid or 0) ~= 0 then return { keep = cap_names(c.ambient) } end
  return { bounding = cap_names(c.bounding or c.permitted or c.effective) }
end

local RLIMIT = {
  RLIMIT_AS = "as", RLIMIT_CORE = "core", RLIMIT_CPU = "cpu", RLIMIT_DATA = "data", RLIMIT_FSIZE = "fsize",
  RLIMIT_LOCKS = "locks", RLIMIT_MEMLOCK = "memlock", RLIMIT_MSGQUEUE = "msgqueue", RLIMIT_NICE = "nice",
  RLIMIT_NOFILE = "nofile", RLIMIT_NPROC = "nproc", RLIMIT_RSS = "rss", RLIMIT_RTPRIO = "rtprio",
  RLIMIT_RTTIME = "rttime", RLIMIT_SIGPENDING = "sigpending", RLIMIT_STACK = "stack",
}

local function rlimits_of(list)
  if not list then return nil end
  local out = {}
  for _, r in ipairs(list) do
    local name = RLIMIT[r.type]
    if not name then fail("process.rlimits: unknown type %s", tostring(r.type)) end
    out[name] = { r.soft, r.hard }
  end
  return out
end

-- linux.sysctl may set only what belongs to a namespace of the
-- container's own (runc's rule): anything else would change the host.
local IPC_SYSCTL = { ["kernel.msgmax"] = 1, ["kernel.msgmnb"] = 1, ["kernel.msgmni"] = 1, ["kernel.sem"] = 1,
  ["kernel.shmall"] = 1, ["kernel.shmmax"] = 1, ["kernel.shmmni"] = 1, ["kernel.shm_rmid_forced"] = 1 }
local function check_sysctls(sysctl, separate)
  for k, v in pairs(sysctl) do
    if type(k) ~= "string" or type(v) ~= "string" or k:find("%.%.") or k:find("/") or k:find("^%.") then
      fail("linux.sysctl: %s = %s: a dotted name and a string value expected", tostring(k), tostring(v))
    end
    local kind
    if IPC_SYSCTL[k] or k:match("^fs%.mqueue%.") then
      kind = "ipc"
    elseif k:match("^net%.") then
      kind = "net"
    elseif k == "kernel.hostname" or k == "kernel.domainname" then
      kind = "uts"
    else
      fail("linux.sysctl %s is not in a separate kernel namespace: it would change the host", k)
    end
    if not separate(kind) then
      fail("linux.sysctl %s needs a %s namespace of the container's own (it would change the host's)", k, kind)
    end
  end
end

-- The OCI seccomp profile, compiled exactly (ns.seccomp_oci: actions,
-- errnos and argument conditions as runc and libseccomp mean them; names
-- this architecture lacks are skipped) and installed as it is.
local function seccomp_of(s)
  if not s then return nil end
  local ok, bpf = pcall(ns.seccomp_oci, s)
  if not ok then fail("%s", tostring(bpf)) end
  return { bpf = bpf }
end

-- nsrun installs the filter after setting the capabilities, and without
-- CAP_SYS_ADMIN the kernel takes one only under no_new_privs: set it then,
-- whatever noNewPrivileges says (runc installs before dropping them).
-- With CAP_SYS_ADMIN kept, noNewPrivileges is followed as runc does.
local function seccomp_nnp(nnp, caps)
  if nnp then return true end
  for _, c in ipairs(caps or {}) do
    if c == "CAP_SYS_ADMIN" then return false end
  end
  return true
end

-- The `cgroup` mount: the container's own cgroups, as runc mounts them.
-- With a cgroup namespace of its own the kernel shows each hierarchy from
-- the container's cgroup (it was moved there before the namespace was
-- made); without one, each of the container's directories is bound on
-- its controller's name. Rootless without cgroups of its own, the host's
-- tree read-only.
local CG = "/sys/fs/cgroup"
local function mount_cgroups(R, dest, ro, ctx)
  local dirs, own_ns = ctx.cgroups, ctx.cgroupns
  if not dirs then
    R:bind(CG, dest, { ro = true, rec = true, create = true, nosuid = true, nodev = true })
    return
  end
  if dirs.unified then
    if own_ns then
      R:mount(dest, { type = "cgroup2", source = "cgroup", options = { "nosuid", "nodev", "noexec" } })
    else
      R:bind(dirs.unified, dest, { create = true, rec = false, nosuid = true, nodev = true })
    end
  else
    R:tmpfs(dest, { mode = "0755" })
    for _, name in ipairs(ns.readdir(CG)) do
      local host = CG .. "/" .. name
      local real = ns.realpath(host)
      -- A hierarchy of several controllers (cpu,cpuacct) is one directory
      -- with a link per controller.
      local mine
      for c in name:gmatch("[^,]+") do mine = mine or dirs[c] end
      if real ~= host then
        R:symlink((real:match("[^/]+$")), dest .. "/" .. name)
      elseif mine then
        if own_ns then
          local opts = { "nosuid", "nodev", "noexec" }
          for c in name:gmatch("[^,]+") do opts[#opts + 1] = c end
          R:mount(dest .. "/" .. name, { type = "cgroup", source = "cgroup", options = opts })
        else
          R:bind(mine, dest .. "/" .. name, { create = true, rec = false, nosuid = true, nodev = true })
        end
      end
    end
  end
  if ro then R:remount_ro(dest) end
end

-- A bundle's mount options, split as nsrun takes them.
local PROPAGATION = { private = 1, rprivate = 1, slave = 1, rslave = 1, shared = 1, rshared = 1,
  unbindable = 1, runbindable = 1 }

local function mount_step(R, m, bundle, ctx)
  local dest = m.destination
  if type(dest) ~= "string" or dest:sub(1, 1) ~= "/" then
    fail("mounts: destination must be an absolute path, got %s", tostring(dest))
  end
  local opts, bind, rec = {}, m.type == "bind", false
  local ro, nosuid, nodev = false, false, false
  for _, o in ipairs(m.options or {}) do
    if o == "bind" then bind = true
    elseif o == "rbind" then bind, rec = true, true
    elseif o == "ro" then ro = true; opts[#opts + 1] = o
    elseif o == "nosuid" then nosuid = true; opts[#opts + 1] = o
    elseif o == "nodev" then nodev = true; opts[#opts + 1] = o
    elseif o == "idmap" or o == "ridmap" then
      fail("mounts: %s: idmapped mounts (%s) are not supported by nsrun oci", dest, o)
    elseif PROPAGATION[o] or o == "tmpcopyup" then
      -- Propagation is set once pivoted (propagation_steps).
    else
      opts[#opts + 1] = o
    end
  end
  if bind then
    local src = join(bundle, m.source or "")
    R:bind(src, dest, { ro = ro, rec = rec, create = true, nosuid = nosuid, nodev = nodev })
  elseif m.type == "proc" then
    R:mount_proc(dest)
  elseif m.type == "sysfs" then
    R:mount_sysfs(dest, { from = "/sys" })
  elseif m.type == "mqueue" then
    R:mount_mqueue(dest)
  elseif m.type == "cgroup" or m.type == "cgroup2" then
    mount_cgroups(R, dest, ro, ctx)
  elseif m.type == "tmpfs" and dest == "/dev" then
    -- The devices a container gets (null, zero, full, random, urandom,
    -- tty, console's place, pts, shm, ptmx), bound from the host's as a
    -- rootless runtime must.
    R:mount_dev("/dev", { from = "/dev" })
  elseif m.type == "devpts" and dest == "/dev/pts" then
    -- mount_dev has made a devpts instance of the container's own.
  else
    R:mount(dest, { type = m.type or "none", source = m.source, options = opts })
  end
end

-- ---------------------------------------------------------------------------
-- What the container's own process does in its set-up besides the mounts:
-- hooks that run in its namespaces, device nodes, personality.

-- Each hook of `list` in turn, the state on its stdin (its path as it is,
-- args[1] its argv[0], env its whole environment, timeout in seconds):
-- nil, or why one failed.
local function hooks_failure(list, state, what)
  for i, h in ipairs(list or {}) do
    local argv = { h.path }
    for j = 2, #(h.args or {}) do argv[j] = h.args[j] end
    local ok, r = pcall(ns.run, { argv = argv, argv0 = h.args and h.args[1] or h.path, env = env_of(h.env), clear_env = true,
      input = ns.json.encode(state), timeout = h.timeout, stdout = "inherit" })
    if not ok then return ("%s hook #%d (%s) failed: %s"):format(what, i, tostring(h.path), tostring(r)) end
    if not r.success then
      return ("%s hook #%d (%s) failed: %s%s"):format(what, i, h.path,
        r.timed_out and "timed out" or ("exit status " .. tostring(r.code)), r.stderr ~= "" and (": " .. r.stderr) or "")
    end
  end
end

-- createContainer hooks, from the container's set-up: its namespaces, the
-- runtime's paths (not pivoted yet). The state names the process as the
-- runtime sees it: the host's /proc is still the one in sight.
local function create_container_hooks(list, state)
  if not list or #list == 0 then return end
  local doc = {}
  for k, v in pairs(state or {}) do doc[k] = v end
  doc.pid = math.tointeger(tonumber(ns.realpath("/proc/self"):match("(%d+)$")))
  local why = hooks_failure(list, doc, "createContainer")
  if why then error(why, 0) end
end

local DEVICE_TYPE = { c = true, u = true, b = true, p = true }

local function check_devices(list)
  for i, d in ipairs(list or {}) do
    if type(d.path) ~= "string" or d.path:sub(1, 1) ~= "/" then
      fail("linux.devices[%d]: path must be an absolute path, got %s", i, tostring(d.path))
    end
    if not DEVICE_TYPE[d.type] then
      fail("linux.devices[%d] (%s): type must be c, u, b or p, got %s", i, d.path, tostring(d.type))
    end
    if d.type ~= "p" and not (math.tointeger(d.major) and math.tointeger(d.minor)) then
      fail("linux.devices[%d] (%s): major and minor numbers expected", i, d.path)
    end
  end
end

-- In a user namespace no device node can be made: each is bound from the
-- host's same path instead, as runc does (mode and owner are the host's).
local function bind_devices(R, list)
  for _, d in ipairs(list or {}) do
    R:bind(d.path, d.path, { create = true, rec = false })
  end
end

-- Privileged: made where the container sees them (after the pivot), with
-- the mode and owner asked. One that exists already (mount_dev's) stays.
local function mknod_devices(list)
  for _, d in ipairs(list or {}) do
    if not exists(d.path) then
      local dir = d.path:match("^(.+)/[^/]+$")
      if dir then ns.mkdir(dir, "0755", { parents = true }) end
      helpers.mknod(d.path, d.type, math.tointeger(d.major) or 0, math.tointeger(d.minor) or 0,
        math.tointeger(d.fileMode) or tonumber("666", 8))
      if d.uid or d.gid then helpers.chown(d.path, math.tointeger(d.uid) or 0, math.tointeger(d.gid) or 0) end
    end
  end
end

-- rootfsPropagation and the mounts' own propagation options (rslave,
-- shared…): nil when none asks for more than nsrun's default (every
-- mount private once pivoted to), else the list of {dest, flag} to set
-- after the pivot, "/" first.
local function propagation_steps(linux, mounts)
  local steps, wanted = {}, false
  local rp = linux.rootfsPropagation
  if rp ~= nil and rp ~= "" then
    if not PROPAGATION[rp] then
      fail("linux.rootfsPropagation must be shared, slave, private or unbindable (or r…), got %s", tostring(rp))
    end
    steps[#steps + 1] = { "/", rp }
    wanted = wanted or not rp:match("private$")
  end
  for _, m in ipairs(mounts) do
    for _, o in ipairs(m.options or {}) do
      if PROPAGATION[o] then
        steps[#steps + 1] = { m.destination, o }
        wanted = wanted or not o:match("private$")
      end
    end
  end
  return wanted and steps or nil
end

-- The pivot when propagation matters: the namespace's mounts stay slaves
-- of the host's (ns.pivot_root would make them all private), the old root
-- goes without its unmount reaching the host (runc's way), then each
-- mount gets the propagation it asked for.
local function pivot_keeping_propagation(rootfs, steps)
  ns.mount(rootfs, rootfs, nil, "rbind")
  ns.chdir(rootfs)
  ns.pivot_root(".", ".")
  ns.mount(nil, ".", nil, "rslave")
  ns.umount(".", "detach")
  ns.chdir("/")
  for _, st in ipairs(steps) do ns.mount(nil, st[1], nil, st[2]) end
end

--- The ns.spawn options a bundle's config.json stands for.
---@param config table the decoded config.json
---@param bundle string the bundle directory
---@param extra? table {gate=, stdio=…} added as they are
---@return table
function M.spawn_options(config, bundle, extra)
  if type(config) ~= "table" then fail("config.json: an object expected") end
  local p = config.process
  if type(p) ~= "table" or type(p.args) ~= "table" or #p.args == 0 then
    fail("config.json: process.args must name the program to run")
  end
  if p.terminal and not (extra and extra.console_socket) then
    fail("process.terminal = true needs --console-socket (where the engine takes the terminal's master end)")
  end
  local linux = config.linux or {}
  for _, k in ipairs { "intelRdt", "mountLabel" } do
    if linux[k] ~= nil then fail("linux.%s is not supported on this host", k) end
  end
  local hooks = config.hooks or {}
  check_devices(linux.devices)
  if p.apparmorProfile or p.selinuxLabel then
    fail("process.%s: neither AppArmor nor SELinux is enabled on this host",
      p.apparmorProfile and "apparmorProfile" or "selinuxLabel")
  end
  local root = config.root and config.root.path or "rootfs"
  local rootfs = join(bundle, root)
  if not exists(rootfs) then fail("root.path %s does not exist", rootfs) end
  rootfs = ns.realpath(rootfs)

  local o = { argv = {}, clear_env = true, env = env_of(p.env) }
  for i, a in ipairs(p.args) do o.argv[i] = a end
  o.cwd = p.cwd or "/"
  local user = p.user or {}
  o.uid, o.gid = user.uid, user.gid
  if user.additionalGids then o.groups = user.additionalGids end
  if p.noNewPrivileges ~= nil then o.no_new_privs = p.noNewPrivileges end
  o.caps = caps_of(p.capabilities, o.uid)
  o.rlimits = rlimits_of(p.rlimits)
  o.seccomp = seccomp_of(linux.seccomp)
  if o.seccomp then o.no_new_privs = seccomp_nnp(o.no_new_privs, o.caps.keep or o.caps.bounding) end
  o.tty_guard = false

  -- Namespaces: new, or joined by path (a pod's containers join its pause
  -- container's).
  o.namespaces, o.join = {}, {}
  for _, n in ipairs(linux.namespaces or {}) do
    local kind = NS_KIND[n.type]
    if not kind then fail("linux.namespaces: unknown type %s", tostring(n.type)) end
    if n.path and n.path ~= "" then o.join[kind] = n.path else o.namespaces[#o.namespaces + 1] = kind end
  end
  if not next(o.join) then o.join = nil end
  local new = {}
  for _, k in ipairs(o.namespaces) do new[k] = true end
  if not new.mount then fail("linux.namespaces: nsrun needs a new mount namespace for the container") end
  if new.user then
    o.uid_map = maps(linux.uidMappings) or "self"
    o.gid_map = maps(linux.gidMappings) or "self"
  end
  if new.pid then o.init = false end
  if config.hostname and config.hostname ~= "" then
    if not new.uts then fail("hostname needs a new uts namespace") end
    o.hostname = config.hostname
  end
  if config.domainname and config.domainname ~= "" then o.domainname = config.domainname end
  if linux.timeOffsets then
    o.time_offsets = {
      monotonic = linux.timeOffsets.monotonic and linux.timeOffsets.monotonic.secs or 0,
      boottime = linux.timeOffsets.boottime and linux.timeOffsets.boottime.secs or 0,
    }
  end
  o.propagation = "private"
  local prop_steps = propagation_steps(linux, config.mounts or {})
  -- Slaves of the host's mounts, so that what the host mounts below a
  -- slave or shared mount reaches the container.
  if prop_steps then o.propagation = "slave" end

  local mounts = config.mounts or {}
  local masked, readonly = linux.maskedPaths or {}, linux.readonlyPaths or {}
  local sysctl = linux.sysctl or {}
  check_sysctls(sysctl, function(kind) return new[kind] or (o.join and o.join[kind]) end)
  local umask = user.umask
  local oom = p.oomScoreAdj
  local root_ro = config.root and config.root.readonly
  local terminal = p.terminal
  local ctx = { cgroups = extra and extra.cgroups, cgroupns = new.cgroup }
  local devices, persona = linux.devices, linux.personality
  local in_userns = new.user or (o.join and o.join.user)
  local hook_state = extra and extra.hook_state
  o.setup = function()
    -- runc brings the loopback up in a network namespace it makes; with
    -- no CNI (ctr run) it is the container's only link.
    if new.net then ns.net.lo_up() end
    -- The terminal's host name, while the host's /dev/pts is in sight: it
    -- is bound on the container's /dev/console, so that tty names it.
    local console = terminal and ns.ttyname(0)
    if oom then
      local f = io.open("/proc/self/oom_score_adj", "w")
      if f then f:write(tostring(oom)); f:close() end
    end
    -- Before readonlyPaths make /proc/sys read-only (runc's order).
    -- The host's /proc serves: each of these files is the namespace's of
    -- the process that writes it, and only namespaced ones are allowed.
    for k, v in pairs(sysctl) do
      local path = "/proc/sys/" .. k:gsub("%.", "/")
      local f, e = io.open(path, "w")
      if not f then error(("linux.sysctl %s: %s"):format(k, e), 0) end
      local ok, werr = f:write(v)
      local cok, cerr = f:close()
      if not ok or not cok then error(("linux.sysctl %s = %s: %s"):format(k, v, werr or cerr), 0) end
    end
    local R <close> = ns.root(rootfs)
    for _, m in ipairs(mounts) do mount_step(R, m, bundle, ctx) end
    if console then R:bind(console, "/dev/console", { create = true, rec = false }) end
    for _, path in ipairs(masked) do R:mask(path) end
    for _, path in ipairs(readonly) do
      if pcall(R.remount_ro, R, path) == false then
        -- Missing paths are skipped, as runc does.
      end
    end
    if in_userns then bind_devices(R, devices) end
    create_container_hooks(hooks.createContainer, hook_state)
    R:close()
    if prop_steps then pivot_keeping_propagation(rootfs, prop_steps) else ns.pivot_root(rootfs) end
    if not in_userns then mknod_devices(devices) end
    if persona then helpers.personality(persona.domain or "LINUX") end
    if root_ro then ns.mount(nil, "/", nil, "remount,bind,ro") end
    if umask then helpers.umask(umask) end
  end
  for k, v in pairs(extra or {}) do o[k] = v end
  o.console_socket, o.cgroups, o.hook_state = nil, nil, nil
  if p.terminal then
    -- A terminal of its own; the master end goes to the engine.
    o.tty = "master"
  end
  return o
end

-- The terminal's master end to the engine (--console-socket), with the
-- size config.json asks for.
local function hand_console(p, socket, size)
  if size and size.height and size.width then p:resize(size.height, size.width) end
  helpers.send_console(socket, p.tty, "console")
  p.tty:close()
end

-- ---------------------------------------------------------------------------
-- Hooks: the state on stdin, at the points the spec names.

local function run_hooks(list, state, what)
  local why = hooks_failure(list, state, what)
  if why then fail("%s", why) end
end

-- startContainer hooks: in the container's namespaces (their paths are
-- the container's), as part of start, before the program runs. A child
-- of ours joins them (this process keeps the host's view, to open the
-- gate); why one failed comes back through a file of the state directory.
local function start_container_hooks(g, st)
  local list = st.hooks and st.hooks.startContainer
  if not list or #list == 0 then return end
  local errfile = g.root .. "/" .. st.id .. "/hook.err"
  local state = state_doc(g.root, st)
  local child = ns.fork(function()
    local f = io.open(errfile, "w")
    local ok, e = pcall(function()
      ns.setns(st.pid)
      return hooks_failure(list, state, "startContainer")
    end)
    local why = (not ok) and ("startContainer hooks: " .. tostring(e)) or e
    if f and why then f:write(why) end
    if f then f:close() end
    return why and 1 or 0
  end)
  local r = child:wait()
  local why = read(errfile)
  os.remove(errfile)
  if not r.success then
    fail("%s", (why and why ~= "") and why or ("startContainer hooks: exit status " .. tostring(r.code)))
  end
end

-- ---------------------------------------------------------------------------
-- Commands.

local function config_of(bundle)
  return json_of(read(bundle .. "/config.json"), bundle .. "/config.json",
    ("cannot read %s/config.json"):format(bundle))
end

local function remove_tree(dir)
  for _, n in ipairs((pcall(ns.readdir, dir)) and ns.readdir(dir) or {}) do
    os.remove(dir .. "/" .. n)
  end
  os.remove(dir)
end

-- ---------------------------------------------------------------------------
-- Cgroups: linux.cgroupsPath under each v1 controller this host mounts (or
-- the v2 tree where it is unified), the resources written there.

local V1 = { "memory", "pids", "cpu", "cpuacct", "freezer", "blkio", "cpuset", "devices", "hugetlb" }

-- "slice:prefix:name" (systemd's form) as a path, as runc's cgroupfs
-- manager would take it.
local function cgroup_path(p, id)
  -- Without one, a level of its own at the top, as runc and crun make
  -- (theirs is the bare id): nothing shared between containers to make,
  -- and to remove when the last one goes.
  if not p or p == "" then return "/nsrun-oci-" .. id end
  local slice, prefix, name = p:match("^([^:/]*):([^:]*):([^:]*)$")
  if slice then
    return "/" .. (slice ~= "" and slice or "system.slice") .. "/" .. (prefix ~= "" and (prefix .. "-") or "") .. name .. ".scope"
  end
  return p:sub(1, 1) == "/" and p or ("/" .. p)
end

local function unified()
  return exists(CG .. "/cgroup.controllers") and not exists(CG .. "/memory")
end

local function put(dir, file, value)
  if value == nil then return end
  local f, e = io.open(dir .. "/" .. file, "w")
  if not f then fail("cgroup %s/%s: %s", dir, file, e) end
  local ok, werr = f:write(tostring(value))
  local cok, cerr = f:close()
  if not ok or not cok then fail("cgroup %s/%s = %s: %s", dir, file, tostring(value), werr or cerr) end
end

local function int(v) return v and math.tointeger(v) or nil end

-- Resources this host may have no controller for: said on stderr and
-- skipped, as the rest still applies.
local function skipped(what, why)
  io.stderr:write(("nsrun-oci: %s not applied: %s\n"):format(what, why))
end

-- A linux.resources.devices rule as the v1 devices controller takes it.
local function device_rule(d, i)
  local t = d.type or "a"
  if t ~= "a" and t ~= "c" and t ~= "b" then
    fail("linux.resources.devices[%d]: type must be a, c or b, got %s", i, tostring(t))
  end
  local function n(x)
    if x == nil or x == -1 then return "*" end
    return tostring(math.tointeger(x) or fail("linux.resources.devices[%d]: a device number expected", i))
  end
  local access = d.access or "rwm"
  if not access:match("^[rwm]+$") then
    fail("linux.resources.devices[%d]: access must be made of r, w and m, got %s", i, access)
  end
  return ("%s %s:%s %s"):format(t, n(d.major), n(d.minor), access)
end

local function blkio_devices(list)
  local out = {}
  for _, d in ipairs(list or {}) do
    out[#out + 1] = ("%d:%d %d"):format(int(d.major) or 0, int(d.minor) or 0, int(d.rate) or int(d.weight) or 0)
  end
  return out
end

-- devices, in order ("a" clears the list, as runc writes them).
local function set_device_rules(dirs, r)
  if not (r and r.devices and #r.devices > 0) then return end
  if dirs.devices then
    for i, d in ipairs(r.devices) do
      put(dirs.devices, d.allow and "devices.allow" or "devices.deny", device_rule(d, i))
    end
  else
    skipped("linux.resources.devices", dirs.unified and "cgroup v2 controls devices with a BPF program, which nsrun does not load"
      or "no devices controller (v1) on this host")
  end
end

-- hugepageLimits and blockIO, where this host has the controller (and
-- the device rules unless `devices_later`).
local function set_more_resources(dirs, r, devices_later)
  if not devices_later then set_device_rules(dirs, r) end
  for _, h in ipairs(r.hugepageLimits or {}) do
    if dirs.hugetlb then
      put(dirs.hugetlb, "hugetlb." .. h.pageSize .. ".limit_in_bytes", int(h.limit))
    elseif dirs.unified and exists(dirs.unified .. "/hugetlb." .. h.pageSize .. ".max") then
      put(dirs.unified, "hugetlb." .. h.pageSize .. ".max", int(h.limit))
    else
      skipped("linux.resources.hugepageLimits " .. tostring(h.pageSize),
        "no hugetlb controller in the hierarchy the container's cgroups are in (on this host it may be on cgroup v2 alone)")
    end
  end
  local b = r.blockIO
  if b then
    local d = dirs.blkio
    if d then
      if b.weight then
        local f = (exists(d .. "/blkio.weight") and "blkio.weight") or (exists(d .. "/blkio.bfq.weight") and "blkio.bfq.weight")
        if f then put(d, f, int(b.weight)) else skipped("linux.resources.blockIO.weight", "no blkio.weight here (no CFQ or BFQ scheduler)") end
      end
      if b.leafWeight then skipped("linux.resources.blockIO.leafWeight", "gone from the kernel") end
      for key, file in pairs { throttleReadBpsDevice = "blkio.throttle.read_bps_device",
        throttleWriteBpsDevice = "blkio.throttle.write_bps_device",
        throttleReadIOPSDevice = "blkio.throttle.read_iops_device",
        throttleWriteIOPSDevice = "blkio.throttle.write_iops_device",
        weightDevice = "blkio.weight_device" } do
        for _, line in ipairs(blkio_devices(b[key])) do
          if exists(d .. "/" .. file) then put(d, file, line) else skipped("linux.resources.blockIO." .. key, "no " .. file .. " here") end
        end
      end
    elseif dirs.unified then
      if b.weight then
        if exists(dirs.unified .. "/io.weight") then put(dirs.unified, "io.weight", "default " .. int(b.weight))
        else skipped("linux.resources.blockIO.weight", "no io.weight here") end
      end
      for key, kind in pairs { throttleReadBpsDevice = "rbps", throttleWriteBpsDevice = "wbps",
        throttleReadIOPSDevice = "riops", throttleWriteIOPSDevice = "wiops" } do
        for _, d in ipairs(b[key] or {}) do
          put(dirs.unified, "io.max", ("%d:%d %s=%d"):format(int(d.major) or 0, int(d.minor) or 0, kind, int(d.rate) or 0))
        end
      end
    else
      skipped("linux.resources.blockIO", "no blkio controller on this host")
    end
  end
end

-- LinuxResources into the cgroups of `dirs` (controller -> directory).
local function set_resources(dirs, r, devices_later)
  if not r then return end
  set_more_resources(dirs, r, devices_later)
  local m, pids, cpu = r.memory or {}, r.pids or {}, r.cpu or {}
  if dirs.unified then
    local d = dirs.unified
    if m.limit then put(d, "memory.max", m.limit < 0 and "max" or int(m.limit)) end
    if pids.limit then put(d, "pids.max", pids.limit <= 0 and "max" or int(pids.limit)) end
    if cpu.quota or cpu.period then
      put(d, "cpu.max", ((cpu.quota and cpu.quota > 0) and int(cpu.quota) or "max") .. " " .. (int(cpu.period) or 100000))
    end
    if cpu.shares then put(d, "cpu.weight", math.max(1, math.min(10000, 1 + ((int(cpu.shares) - 2) * 9999) // 262142))) end
    if cpu.cpus then put(d, "cpuset.cpus", cpu.cpus) end
    return
  end
  if dirs.memory then
    if m.limit then put(dirs.memory, "memory.limit_in_bytes", int(m.limit)) end
    if m.reservation then put(dirs.memory, "memory.soft_limit_in_bytes", int(m.reservation)) end
  end
  if dirs.pids and pids.limit then put(dirs.pids, "pids.max", pids.limit <= 0 and "max" or int(pids.limit)) end
  if dirs.cpu then
    if cpu.shares then put(dirs.cpu, "cpu.shares", int(cpu.shares)) end
    if cpu.period then put(dirs.cpu, "cpu.cfs_period_us", int(cpu.period)) end
    if cpu.quota then put(dirs.cpu, "cpu.cfs_quota_us", int(cpu.quota)) end
  end
  if dirs.cpuset then
    if cpu.cpus then put(dirs.cpuset, "cpuset.cpus", cpu.cpus) end
    if cpu.mems then put(dirs.cpuset, "cpuset.mems", cpu.mems) end
  end
end

-- Make the container's cgroups (nil where we may not: rootless without a
-- delegated tree, as runc does), set the resources, put `pid` in.
-- The container's cgroups, and the levels above them that were made for
-- it (`made`, top first; a level another container still uses stays).
local function remove_cgroups(dirs, made)
  for _, d in pairs(dirs or {}) do
    -- Empty once its processes are gone; the kernel may take a moment.
    for _ = 1, 50 do
      if os.remove(d) or not exists(d) then break end
      helpers.sleep(0.01)
    end
  end
  for i = #(made or {}), 1, -1 do os.remove(made[i]) end
end

-- `path` under `base`, each missing level made (and listed in `made`, to
-- remove on failure); a new cpuset level gets its parent's cpus and mems,
-- without which no task may join it.
local function mkcg(base, path, made)
  local d = base
  for part in path:gmatch("[^/]+") do
    local parent = d
    d = d .. "/" .. part
    if not exists(d) then
      local ok = pcall(ns.mkdir, d, "0755")
      if not ok then return nil end
      made[#made + 1] = d
      if base:match("/cpuset$") then
        for _, f in ipairs { "cpuset.cpus", "cpuset.mems" } do
          put(d, f, ((read(parent .. "/" .. f) or ""):gsub("%s+$", "")))
        end
      end
    end
  end
  return d
end

-- Make the container's cgroups (nil where we may not: rootless without a
-- delegated tree, as runc does) and set the resources; the process is
-- put in by `before_start`, before it goes on (and before its cgroup
-- namespace is made). On any failure what was made is removed again.
local function make_cgroups(path, resources)
  local dirs, made = {}, {}
  local ok, err = pcall(function()
    if unified() then
      dirs.unified = mkcg(CG, path, made)
    else
      for _, c in ipairs(V1) do
        local base = CG .. "/" .. c
        if exists(base .. "/cgroup.procs") then dirs[c] = mkcg(base, path, made) end
      end
    end
    if not next(dirs) then return end
    -- The device rules once the container's /dev is made (as runc sets
    -- them), or its own mknod would be refused.
    set_resources(dirs, resources, true)
    -- The process is put in later, by its parent: may it be?
    for _, d in pairs(dirs) do
      local f, e = io.open(d .. "/cgroup.procs", "a")
      if not f then fail("cgroup %s: %s", d, e) end
      f:close()
    end
  end)
  if not ok then
    -- Deepest first.
    for i = #made, 1, -1 do os.remove(made[i]) end
    -- Rootless without a delegated tree: no cgroups, as runc does.
    if ns.geteuid() ~= 0 then return nil end
    error(err, 0)
  end
  return next(dirs) and dirs or nil, made
end

local function write_pid(file, pid)
  if file then write(file, tostring(pid)) end
end

-- --preserve-fds N: fds 3 .. 3+N-1 pass on to the process (every other
-- one is closed in it).
local function preserved_fds(n)
  if n == nil then return nil end
  local count = math.tointeger(tonumber(n))
  if not count or count < 0 then fail("--preserve-fds: a count of fds expected, got %q", tostring(n)) end
  if count == 0 then return nil end
  local fds = {}
  for i = 1, count do fds[i] = 2 + i end
  return fds
end

-- One command at a time for one id: create, start, kill, delete, update,
-- pause and resume each hold an exclusive lock on ROOT/.ID.lock (not a
-- container's name: ids start with a letter or digit). The lock file goes
-- when, at its release, there is no container of that id.
local function lock_id(g, id, make_root)
  valid_id(id)
  if make_root then
    ns.mkdir(g.root, "0711", { parents = true })
  elseif not exists(g.root) then
    -- Nothing to keep consistent; the command says the id does not exist.
    return nil
  end
  local path = g.root .. "/." .. id .. ".lock"
  local lock = helpers.lock(path)
  return setmetatable({}, { __close = function()
    if lock then
      if not exists(g.root .. "/" .. id) then os.remove(path) end
      lock:unlock()
      lock = nil
    end
  end })
end

-- create and run share this: the container up to its gate (or, without
-- one, started).
-- `gate`: true (create: the process waits for `start`), or "hooked"
-- (run: only when startContainer hooks must run first; else it goes
-- straight on to its program, with no rendezvous to pay for).
local function make(g, id, o, gate)
  local bundle = o.bundle or ns.getcwd()
  bundle = ns.realpath(bundle)
  local config = config_of(bundle)
  if gate == "hooked" then
    local sc = config.hooks and config.hooks.startContainer
    gate = sc ~= nil and #sc > 0
  end
  local dir = g.root .. "/" .. valid_id(id)
  ns.mkdir(g.root, "0711", { parents = true })
  local ok, e = pcall(ns.mkdir, dir, "0711")
  if not ok then
    if type(e) == "table" and e.errno == "EEXIST" then fail("container with id %s already exists", id) end
    error(e, 0)
  end
  local fifo = dir .. "/exec.fifo"
  local started, p, cgroups, made
  local ok2, err = pcall(function()
    local extra = {}
    if gate then
      ns.mkfifo(fifo, "0600")
      extra.gate = fifo
    end
    extra.console_socket = o["console-socket"]
    extra.keep_fds = preserved_fds(o["preserve-fds"])
    local linux = config.linux or {}
    cgroups, made = make_cgroups(cgroup_path(linux.cgroupsPath, id), linux.resources)
    extra.cgroups = cgroups
    local state = { ociVersion = M.OCI_VERSION, id = id, status = "creating", bundle = bundle,
      annotations = config.annotations }
    extra.hook_state = state
    -- prestart and createRuntime: once the namespaces exist (the state
    -- names the process), before the set-up and its pivot_root; then
    -- createContainer runs from inside the set-up.
    local hooks = config.hooks or {}
    local hooked = (hooks.prestart and #hooks.prestart > 0) or (hooks.createRuntime and #hooks.createRuntime > 0)
    if cgroups or hooked then
      extra.before_start = function(child)
        -- Placed before it goes on: its set-up, its cgroup namespace and
        -- its program are in its cgroups from the start.
        for _, d in pairs(cgroups or {}) do put(d, "cgroup.procs", child.pid) end
        if hooked then
          state.pid = child.pid
          local why = hooks_failure(hooks.prestart, state, "prestart")
            or hooks_failure(hooks.createRuntime, state, "createRuntime")
          if why then error(why, 0) end
        end
      end
    end
    local opts = M.spawn_options(config, bundle, extra)
    p = ns.spawn(opts)
    if cgroups then set_device_rules(cgroups, linux.resources) end
    if config.process.terminal then hand_console(p, o["console-socket"], config.process.consoleSize) end
    local _, starttime = proc_stat(p.pid)
    local st = { id = id, pid = p.pid, starttime = starttime, bundle = bundle, created = now_rfc3339(),
      annotations = config.annotations, owner = tostring(ns.getuid()), hooks = config.hooks,
      cgroups = cgroups, cgroups_made = cgroups and made or nil, config = config }
    write(dir .. "/state.json", ns.json.encode(st))
    write_pid(o["pid-file"], p.pid)
    started = st
  end)
  if not ok2 then
    if p then
      pcall(p.kill, p, "KILL")
      pcall(p.wait, p)
    end
    if cgroups then remove_cgroups(cgroups, made) end
    remove_tree(dir)
    error(err, 0)
  end
  return started, p, dir, gate
end

local CMD = {}

function CMD.create(g, o, args)
  local id = args[1] or fail("create needs a container id")
  local _ <close> = lock_id(g, id, true)
  local _, p = make(g, id, o, true)
  -- The engine adopts it as we exit and takes its status, whenever it ends.
  p:disown()
  return 0
end

local function start(g, id)
  local st = load_state(g.root, id)
  local s = status(g.root, st)
  if s ~= "created" then fail("cannot start a container that is %s", s) end
  local fifo = g.root .. "/" .. id .. "/exec.fifo"
  local hooked, hook_err = pcall(start_container_hooks, g, st)
  if not hooked then
    -- The spec's way: the container is stopped, delete (poststop) follows.
    pcall(ns.kill, st.pid, 9)
    error(hook_err, 0)
  end
  local ok, why = helpers.open_gate(fifo)
  if not ok then fail("cannot start container %s: %s", id, why) end
  os.remove(fifo)
  local hooks = st.hooks or {}
  local state = state_doc(g.root, st)
  run_hooks(hooks.poststart, state, "poststart")
  return st
end

function CMD.start(g, _, args)
  local id = args[1] or fail("start needs a container id")
  local _ <close> = lock_id(g, id)
  start(g, id)
  return 0
end

function CMD.state(g, _, args)
  local id = args[1] or fail("state needs a container id")
  io.stdout:write(ns.json.encode(state_doc(g.root, load_state(g.root, id)), { indent = true }), "\n")
  return 0
end

local SIGNALS = { HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 7, FPE = 8, KILL = 9,
  USR1 = 10, SEGV = 11, USR2 = 12, PIPE = 13, ALRM = 14, TERM = 15, STKFLT = 16, CHLD = 17, CONT = 18,
  STOP = 19, TSTP = 20, TTIN = 21, TTOU = 22, URG = 23, XCPU = 24, XFSZ = 25, VTALRM = 26, PROF = 27,
  WINCH = 28, IO = 29, PWR = 30, SYS = 31 }
local function signal_of(s)
  if s == nil then return 15 end
  local n = math.tointeger(tonumber(s))
  if n and n > 0 and n < 65 then return n end
  local name = tostring(s):upper():gsub("^SIG", "")
  return SIGNALS[name] or fail("unknown signal %q", tostring(s))
end

-- The container's processes: those in its pid namespace when it has one
-- of its own, else its init alone.
-- The processes in the container's cgroups (nil without cgroups).
local function cgroup_pids(st)
  local cg = st.cgroups and (st.cgroups.unified or st.cgroups.pids or st.cgroups.freezer or st.cgroups.memory)
  local text = cg and read(cg .. "/cgroup.procs")
  if not text then return nil end
  local out = {}
  for n in text:gmatch("%d+") do out[#out + 1] = math.tointeger(tonumber(n)) end
  table.sort(out)
  return out
end

local function pids_of(st)
  local in_cgroups = cgroup_pids(st)
  if in_cgroups then return in_cgroups end
  local ok, want = pcall(ns.id, "pid", st.pid)
  if not ok then return {} end
  local mine = ns.id("pid")
  if want == mine then return { st.pid } end
  local out = {}
  for _, n in ipairs(ns.readdir("/proc")) do
    local pid = math.tointeger(tonumber(n))
    if pid then
      local ok2, id = pcall(ns.id, "pid", pid)
      if ok2 and id == want then out[#out + 1] = pid end
    end
  end
  table.sort(out)
  return out
end

function CMD.kill(g, o, args)
  local id = args[1] or fail("kill needs a container id")
  local sig = signal_of(args[2])
  local _ <close> = lock_id(g, id)
  local st = load_state(g.root, id)
  local s = status(g.root, st)
  -- runc's words: containerd's shim takes "container not running" for a
  -- process already gone (delete --force of a stopped task kills first).
  if s == "stopped" then fail("cannot kill container %s: container not running", id) end
  local targets = o.all and pids_of(st) or { st.pid }
  for _, pid in ipairs(targets) do pcall(ns.kill, pid, sig) end
  return 0
end

local function wait_gone(st, seconds)
  local t = os.time() + seconds
  while os.time() <= t do
    local state, start = proc_stat(st.pid)
    if not state or state == "Z" or start ~= st.starttime then return true end
    helpers.sleep(0.01)
  end
  return false
end

-- What is left in the container's cgroups once its init is gone (without
-- a pid namespace of its own its children outlive it), killed as runc
-- does; a frozen cgroup is thawed so the kill lands. Only through the
-- cgroups: a bare pid of a stopped container may be another process's.
local function kill_the_rest(st)
  local cg = st.cgroups
  if not cg then return end
  for _, pid in ipairs(cgroup_pids(st) or {}) do pcall(ns.kill, pid, 9) end
  if cg.freezer then
    pcall(put, cg.freezer, "freezer.state", "THAWED")
  elseif cg.unified then
    pcall(put, cg.unified, "cgroup.freeze", "0")
  end
end

function CMD.delete(g, o, args)
  local id = args[1] or fail("delete needs a container id")
  local _ <close> = lock_id(g, id)
  local ok, st = pcall(load_state, g.root, id)
  if not ok then
    if o.force then return 0 end
    error(st, 0)
  end
  local s = status(g.root, st)
  if s ~= "stopped" then
    if not o.force then fail("cannot delete container %s that is not stopped: %s", id, s) end
    pcall(ns.kill, st.pid, 9)
    kill_the_rest(st)
    wait_gone(st, 5)
  else
    kill_the_rest(st)
  end
  local state = state_doc(g.root, st)
  state.status = "stopped"
  remove_cgroups(st.cgroups, st.cgroups_made)
  remove_tree(g.root .. "/" .. id)
  run_hooks(st.hooks and st.hooks.poststop, state, "poststop")
  return 0
end

local function freeze(g, id, on)
  local _ <close> = lock_id(g, id)
  local st = load_state(g.root, id)
  local s = status(g.root, st)
  if on and s ~= "running" then fail("container %s is not running: %s", id, s) end
  if not on and s ~= "paused" then fail("container %s is not paused: %s", id, s) end
  local cg = st.cgroups or {}
  if cg.freezer then
    put(cg.freezer, "freezer.state", on and "FROZEN" or "THAWED")
  elseif cg.unified then
    put(cg.unified, "cgroup.freeze", on and "1" or "0")
  else
    fail("container %s has no freezer cgroup (rootless without a delegated cgroup tree)", id)
  end
  return 0
end

function CMD.pause(g, _, args)
  return freeze(g, args[1] or fail("pause needs a container id"), true)
end

function CMD.resume(g, _, args)
  return freeze(g, args[1] or fail("resume needs a container id"), false)
end

-- update --resources FILE (or - for stdin: kubelet's in-place resize),
-- or the single-value flags.
function CMD.update(g, o, args)
  local id = args[1] or fail("update needs a container id")
  local _ <close> = lock_id(g, id)
  local st = load_state(g.root, id)
  if not st.cgroups then fail("container %s has no cgroups to update (rootless without a delegated tree)", id) end
  local r = {}
  if o.resources then
    local text = o.resources == "-" and io.stdin:read("a") or read(o.resources)
    r = json_of(text, "update: --resources", ("update: cannot read %s"):format(o.resources))
  end
  local function num(k) return o[k] and (math.tointeger(tonumber(o[k])) or fail("update: --%s: a number expected", k)) end
  r.memory = r.memory or {}
  r.memory.limit = num("memory") or r.memory.limit
  r.pids = r.pids or {}
  r.pids.limit = num("pids-limit") or r.pids.limit
  r.cpu = r.cpu or {}
  r.cpu.shares = num("cpu-shares") or r.cpu.shares
  r.cpu.quota = num("cpu-quota") or r.cpu.quota
  r.cpu.period = num("cpu-period") or r.cpu.period
  if o["blkio-weight"] then
    r.blockIO = r.blockIO or {}
    r.blockIO.weight = num("blkio-weight")
  end
  set_resources(st.cgroups, r)
  return 0
end

-- exec: a new process in the container, nsenter's way: this process joins
-- the container's namespaces (user first, mount last) and starts it there,
-- so no relay of the runtime stays as its parent.
function CMD.exec(g, o, args)
  local id = args[1] or fail("exec needs a container id")
  local st = load_state(g.root, id)
  local s = status(g.root, st)
  if s ~= "running" and s ~= "created" then fail("cannot exec in a container that is %s", s) end
  local proc
  if o.process then
    proc = json_of(read(o.process), "exec: --process " .. o.process,
      ("exec: cannot read --process %s"):format(o.process))
  else
    if #args < 2 then fail("exec needs a command (or --process FILE)") end
    local base = (st.config or {}).process or {}
    proc = { args = {}, env = {}, cwd = o.cwd or base.cwd, user = base.user,
      capabilities = base.capabilities, noNewPrivileges = base.noNewPrivileges }
    for j = 2, #args do proc.args[#proc.args + 1] = args[j] end
    -- The container's environment, then --env on top (a config without
    -- one is fine).
    for _, kv in ipairs(base.env or {}) do proc.env[#proc.env + 1] = kv end
    for _, kv in ipairs(o.env or {}) do proc.env[#proc.env + 1] = kv end
  end
  local terminal = proc.terminal or o.tty
  if terminal and not o["console-socket"] then
    fail("exec with a terminal needs --console-socket (where the engine takes the terminal's master end)")
  end
  if type(proc.args) ~= "table" or #proc.args == 0 then fail("exec: process.args must name the program") end
  local opts = { argv = {}, clear_env = true, env = env_of(proc.env), cwd = proc.cwd or "/" }
  for i, a in ipairs(proc.args) do opts.argv[i] = a end
  local user = proc.user or {}
  opts.uid, opts.gid, opts.groups = user.uid, user.gid, user.additionalGids
  opts.caps = caps_of(proc.capabilities, opts.uid)
  if proc.noNewPrivileges ~= nil then opts.no_new_privs = proc.noNewPrivileges end
  opts.rlimits = rlimits_of(proc.rlimits)
  if user.umask then
    local mask = user.umask
    opts.setup = function() helpers.umask(mask) end
  end
  local linux = (st.config or {}).linux or {}
  opts.seccomp = seccomp_of(linux.seccomp)
  if opts.seccomp then opts.no_new_privs = seccomp_nnp(opts.no_new_privs, opts.caps.keep or opts.caps.bounding) end
  opts.tty_guard = false
  opts.die_with_parent = not o.detach
  opts.keep_fds = preserved_fds(o["preserve-fds"])
  -- Host files first: once in the container's mount namespace they are
  -- out of sight.
  local pidfile = o["pid-file"] and (io.open(o["pid-file"], "w") or fail("exec: cannot write %s", o["pid-file"]))
  local procs = {}
  for _, d in pairs(st.cgroups or {}) do
    procs[#procs + 1] = io.open(d .. "/cgroup.procs", "w")
  end
  opts.before_start = function(p)
    for _, f in ipairs(procs) do f:write(tostring(p.pid)); f:flush() end
  end
  if terminal then opts.tty = "master" end
  -- The engine's socket, before the container's mount namespace hides it.
  local console = terminal and helpers.console_connect(o["console-socket"])
  ns.setns(st.pid)
  local p = ns.spawn(opts)
  if terminal then hand_console(p, console, proc.consoleSize) end
  for _, f in ipairs(procs) do f:close() end
  if pidfile then pidfile:write(tostring(p.pid)); pidfile:close() end
  if o.detach then
    -- The caller reaps it: a process that ends before we exit must not be
    -- reaped by our own exit (the shim would wait for it forever).
    p:disown()
    return 0
  end
  return p:wait().code
end


function CMD.run(g, o, args)
  local id = args[1] or fail("run needs a container id")
  local lock <close> = lock_id(g, id, true)
  local st, p, dir, gated = make(g, id, o, "hooked")
  local ok, e = pcall(function()
    if gated then return start(g, id) end
    local poststart = st.hooks and st.hooks.poststart
    if poststart and #poststart > 0 then run_hooks(poststart, state_doc(g.root, st), "poststart") end
  end)
  if not ok then
    pcall(p.kill, p, "KILL")
    remove_tree(dir)
    error(e, 0)
  end
  if o.detach then
    p:disown()
    return 0
  end
  -- Not held while it runs: kill and the like must get through.
  getmetatable(lock).__close()
  local r = p:wait()
  local _ <close> = lock_id(g, id)
  local state = state_doc(g.root, st)
  state.status = "stopped"
  remove_cgroups(st.cgroups, st.cgroups_made)
  remove_tree(dir)
  run_hooks(st.hooks and st.hooks.poststop, state, "poststop")
  return r.code
end

function CMD.list(g, o)
  local rows = {}
  for _, id in ipairs((pcall(ns.readdir, g.root)) and ns.readdir(g.root) or {}) do
    local ok, st = pcall(load_state, g.root, id)
    if ok then rows[#rows + 1] = state_doc(g.root, st) end
  end
  table.sort(rows, function(a, b) return a.id < b.id end)
  if o.quiet then
    for _, r in ipairs(rows) do io.stdout:write(r.id, "\n") end
  elseif o.format == "json" then
    io.stdout:write(ns.json.encode(ns.json.array(rows)), "\n")
  else
    io.stdout:write(("%-20s %-8s %-10s %-40s %s\n"):format("ID", "PID", "STATUS", "BUNDLE", "CREATED"))
    for _, r in ipairs(rows) do
      io.stdout:write(("%-20s %-8d %-10s %-40s %s\n"):format(r.id, r.pid, r.status, r.bundle, r.created or ""))
    end
  end
  return 0
end

function CMD.ps(g, o, args)
  local id = args[1] or fail("ps needs a container id")
  local st = load_state(g.root, id)
  local pids = status(g.root, st) == "stopped" and {} or pids_of(st)
  if o.format == "json" then
    io.stdout:write(ns.json.encode(ns.json.array(pids)), "\n")
  else
    io.stdout:write("PID\n")
    for _, pid in ipairs(pids) do io.stdout:write(pid, "\n") end
  end
  return 0
end

function CMD.spec(_, o)
  local bundle = o.bundle or ns.getcwd()
  local path = bundle .. "/config.json"
  if exists(path) then fail("File %s exists. Remove it first", path) end
  local rootless = o.rootless
  local caps = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" }
  local namespaces = { { type = "pid" }, { type = "network" }, { type = "ipc" }, { type = "uts" }, { type = "mount" } }
  if rootless then namespaces[#namespaces + 1] = { type = "user" } end
  local spec = {
    ociVersion = M.OCI_VERSION,
    process = {
      terminal = true,
      user = { uid = 0, gid = 0 },
      args = { "sh" },
      env = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" },
      cwd = "/",
      capabilities = { bounding = caps, effective = caps, permitted = caps },
      rlimits = { { type = "RLIMIT_NOFILE", hard = 1024, soft = 1024 } },
      noNewPrivileges = true,
    },
    root = { path = "rootfs", readonly = true },
    hostname = "nsrun",
    mounts = {
      { destination = "/proc", type = "proc", source = "proc" },
      { destination = "/dev", type = "tmpfs", source = "tmpfs", options = { "nosuid", "strictatime", "mode=755", "size=65536k" } },
      { destination = "/dev/pts", type = "devpts", source = "devpts",
        options = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" } },
      { destination = "/dev/shm", type = "tmpfs", source = "shm", options = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" } },
      { destination = "/dev/mqueue", type = "mqueue", source = "mqueue", options = { "nosuid", "noexec", "nodev" } },
      { destination = "/sys", type = rootless and "none" or "sysfs", source = rootless and "/sys" or "sysfs",
        options = rootless and { "rbind", "nosuid", "noexec", "nodev", "ro" } or { "nosuid", "noexec", "nodev", "ro" } },
    },
    linux = {
      namespaces = namespaces,
      maskedPaths = { "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" },
      readonlyPaths = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" },
    },
  }
  if rootless then
    spec.linux.uidMappings = { { containerID = 0, hostID = ns.geteuid(), size = 1 } }
    spec.linux.gidMappings = { { containerID = 0, hostID = ns.getegid(), size = 1 } }
  end
  write(path, ns.json.encode(spec, { indent = true }) .. "\n")
  return 0
end

function CMD.features()
  local ns_list = ns.json.array { "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts" }
  local doc = {
    ociVersionMin = "1.0.0",
    ociVersionMax = M.OCI_VERSION,
    hooks = ns.json.array { "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
      "poststop" },
    mountOptions = ns.json.array { "bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "noatime",
      "strictatime", "nodiratime", "nosymfollow", "relatime", "private", "rprivate", "slave", "rslave",
      "shared", "rshared", "unbindable", "runbindable" },
    linux = {
      namespaces = ns_list,
      capabilities = ns.json.array { "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
        "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
        "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE" },
      cgroup = { v1 = true, v2 = true, systemd = false, systemdUser = false },
      seccomp = { enabled = true, actions = ns.json.array { "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE" },
        operators = ns.json.array { "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
          "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ" },
        archs = ns.json.array { "SCMP_ARCH_X86_64" } },
      apparmor = { enabled = false },
      selinux = { enabled = false },
    },
    annotations = { ["org.opencontainers.runc.version"] = "nsrun-oci " .. ns.version },
  }
  io.stdout:write(ns.json.encode(doc, { indent = true }), "\n")
  return 0
end

-- ---------------------------------------------------------------------------
-- The command line: runc's, flags in any order, `--flag value` and
-- `--flag=value`.

local GLOBAL = { root = 1, log = 1, ["log-format"] = 1, ["systemd-cgroup"] = 0, debug = 0, rootless = 1,
  criu = 1, help = 0, h = 0, version = 0, v = 0 }
local FLAGS = {
  create = { bundle = 1, b = 1, ["pid-file"] = 1, ["console-socket"] = 1, ["no-pivot"] = 0,
    ["no-new-keyring"] = 0, ["preserve-fds"] = 1 },
  run = { bundle = 1, b = 1, ["pid-file"] = 1, ["console-socket"] = 1, ["no-pivot"] = 0,
    ["no-new-keyring"] = 0, ["preserve-fds"] = 1, detach = 0, d = 0, keep = 0 },
  start = {}, state = {},
  kill = { all = 0, a = 0 },
  delete = { force = 0, f = 0 },
  list = { format = 1, f = 1, quiet = 0, q = 0 },
  ps = { format = 1, f = 1 },
  spec = { bundle = 1, b = 1, rootless = 0 },
  features = {},
  pause = {}, resume = {},
  update = { resources = 1, r = 1, memory = 1, ["pids-limit"] = 1, ["cpu-shares"] = 1, ["cpu-quota"] = 1,
    ["cpu-period"] = 1, ["blkio-weight"] = 1 },
  exec = { process = 1, p = 1, detach = 0, d = 0, ["pid-file"] = 1, ["console-socket"] = 1, tty = 0, t = 0,
    cwd = 1, env = 1, e = 1, user = 1, u = 1, ["no-new-privs"] = 0, cap = 1, ["preserve-fds"] = 1,
    ["process-label"] = 1, ["apparmor"] = 1, ["ignore-paused"] = 0, cgroup = 1 },
}
local ALIAS = { b = "bundle", d = "detach", a = "all", f = nil, q = "quiet", h = "help", v = "version",
  r = "resources", p = "process", t = "tty", e = "env", u = "user" }
-- Flags that may be given more than once.
local MULTI = { env = true }

local function parse_flags(argv, i, known, cmd)
  local o, args = {}, {}
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do args[#args + 1] = argv[j] end
      break
    end
    local name, value = a:match("^%-%-?([%w%-]+)=(.*)$")
    if not name then name = a:match("^%-%-?([%w%-]+)$") end
    if name and a:sub(1, 1) == "-" then
      local n = known[name]
      if n == nil then fail("%s: unknown flag %s", cmd or "nsrun-oci", a) end
      if n == 1 and value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then fail("%s: flag %s needs a value", cmd or "nsrun-oci", a) end
      end
      local key = ALIAS[name] or name
      if name == "f" then key = (cmd == "delete") and "force" or "format" end
      if MULTI[key] then
        o[key] = o[key] or {}
        table.insert(o[key], value)
      else
        o[key] = n == 1 and value or true
      end
    elseif cmd then
      args[#args + 1] = a
      if cmd == "exec" then
        -- After the id: the command and its own arguments, flags or not.
        for j = i + 1, #argv do args[#args + 1] = argv[j] end
        break
      end
    else
      return o, i
    end
    i = i + 1
  end
  return o, args
end

local function logger(g)
  return function(msg)
    io.stderr:write(msg, "\n")
    if g.log then
      local f = io.open(g.log, "a")
      if f then
        if g["log-format"] == "json" then
          f:write(ns.json.encode { level = "error", msg = msg, time = now_rfc3339() }, "\n")
        else
          f:write(("time=%q level=error msg=%q\n"):format(now_rfc3339(), msg))
        end
        f:close()
      end
    end
  end
end

local USAGE = [[usage: %s [global options] command [command options] [arguments...]

A runc-compatible OCI runtime written as a recipe (nsrun's nsrun.oci).

commands: create, start, state, kill, delete, run, exec, list, ps, pause, resume, update, spec, features
global options: --root DIR, --log FILE, --log-format text|json, --systemd-cgroup, --debug
]]

--- `nsrun oci …` / `nsrun-oci …`: returns the exit status.
---@param argv0 string
---@param argv string[]
---@return integer
function M.main(argv0, argv)
  -- One short command: what it allocates is freed at exit, and a
  -- collector's sweeps would only make it (and the pages a fork copies)
  -- slower. A long `run` or `exec` that waits holds little garbage.
  collectgarbage("stop")
  local g = { root = default_root() }
  local ok, code = pcall(function()
    local o, i = parse_flags(argv, 1, GLOBAL, nil)
    for k, v in pairs(o) do g[k] = v end
    if g["log-format"] and g["log-format"] ~= "json" and g["log-format"] ~= "text" then
      fail("--log-format must be text or json, got %s", g["log-format"])
    end
    if g.version then
      io.stdout:write(("nsrun-oci version %s\nspec: %s\n"):format(ns.version, M.OCI_VERSION))
      return 0
    end
    local cmd = argv[i]
    if g.help or not cmd then
      io.stdout:write(USAGE:format(argv0))
      return g.help and 0 or 1
    end
    local known = FLAGS[cmd]
    if not known then
      fail("unknown command %s (%s)", cmd,
        "create, start, state, kill, delete, run, exec, list, ps, pause, resume, update, spec, features")
    end
    local co, args = parse_flags(argv, i + 1, known, cmd)
    return CMD[cmd](g, co, args)
  end)
  if ok then return code end
  local msg = getmetatable(code) == Fail and code.msg or tostring(code)
  -- An engine shows this to its user: where in this module it was raised
  -- says nothing to them.
  msg = msg:gsub("^%[nsrun%.oci%]:%d+: ", "")
  logger(g)(msg)
  return 1
end

--- Run a bundle as `nsrun oci run` does: create, start, wait; returns the
--- container's exit status.
---@param bundle string
---@param id string
---@param opts? {root?: string}
---@return integer
function M.run(bundle, id, opts)
  opts = opts or {}
  return CMD.run({ root = opts.root or default_root() }, { bundle = bundle }, { id })
end

return M
