-- The escape battery against one configuration (issue 13, point 6):
-- tests/escape.rs runs this once per configuration, as root and as uid
-- 65534, with a pty as nsrun's stdin and controlling terminal.
--
--   recipe.lua config=A fixtures=DIR abstract=NAME disk=/dev/vda ATTEMPT:CONTROL ...
--
-- For each ATTEMPT it runs tests/escape/attacks.pl in the configuration and
-- prints `R ATTEMPT VERDICT DETAIL`; before that, unless CONTROL is "none",
-- the same attempt where it must work (`C ATTEMPT VERDICT DETAIL`):
--   same    the same configuration, aimed at what the program owns
--   open    a plain process on the host (ns.run without namespaces)
--   caps    root of new user, mount, pid and uts namespaces: every
--           capability there, no filter
--   setuid  a plain process as uid 65534 on the host
-- VERDICT is worked, stopped, cannot (the kernel lacks something) or broken
-- (the attempt itself failed). What each must be is tests/escape.rs's table;
-- this recipe only runs and reports.
--
-- The fixtures directory (made by the test): escape/attacks.pl; ro/ (bound
-- read-only); hidden/under-mask (bound, then masked by a tmpfs); suid/cat
-- (setuid root); tmp/ (scratch); marker (a host-only file, never bound);
-- rootfs/ (the root = DIR of configuration C, with its own suid/cat).

local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local opt, wanted = {}, {}
for _, a in ipairs(arg) do
  local k, v = a:match("^(%w+)=(.*)$")
  if k then
    opt[k] = v
  else
    local name, control = a:match("^([%w._]+):(%w+)$")
    assert(name, "bad argument " .. a)
    wanted[#wanted + 1] = { name = name, control = control }
  end
end
local config, F = assert(opt.config), assert(opt.fixtures)

-- The secret PID 1 must not give away: one copy in nsrun's environment, one
-- only in this Lua state (a string no environment holds).
local secret = assert(os.getenv("NSRUN_TEST_SECRET"), "NSRUN_TEST_SECRET is not set")
local lua_secret = "NSRUNSECRET-" .. secret:sub(13):reverse()

-- Files the recipe holds open while it starts sandboxes: none of them may
-- reach a program (fds.leak), and the handle's fd is the one kept_fds names.
local held_file = assert(io.open(F .. "/marker", "r"))
local held_handle = ns.open("net")

-- Where things are, inside a sandbox and on the host.
local INSIDE = {
  RO = "/ro", TMP = "/tmp", MASKED = "/masked", PROG = "/escape/attacks.pl",
  SUID = "/suid/cat", DEV = "/dev",
}
local HOST = {
  RO = F .. "/ro", TMP = F .. "/tmp", MASKED = F .. "/hidden", PROG = F .. "/escape/attacks.pl",
  SUID = F .. "/suid/cat", DEV = F .. "/tmp",
}

local function box(over)
  local o = {
    binds = {
      { "/usr", "/usr", ro = true },
      { F .. "/escape", "/escape", ro = true },
      { F .. "/ro", "/ro", ro = true },
      { F .. "/hidden", "/masked", ro = true },
      { F .. "/suid", "/suid", ro = true },
    },
    symlinks = { ["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64", ["/sbin"] = "usr/sbin" },
    tmpfs = { "/tmp", "/masked" },
    proc = "/proc", dev = "/dev", sys = "/sys",
  }
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

-- The read-only bind and the mask, for configurations on the host's tree.
local function masks()
  ns.bind(HOST.RO, HOST.RO, { ro = true })
  ns.tmpfs(HOST.MASKED)
end

local CONFIGS = {
  -- A. nsrun.sandbox with its defaults.
  A = { run = sandbox.run, paths = INSIDE, opts = function() return box() end },
  -- B. uid 0 with the preset.
  B = { run = sandbox.run, paths = INSIDE, opts = function() return box { uid = 0, seccomp = "default" } end },
  -- C. A root directory given (its own /bin links and setuid binary).
  C = {
    run = sandbox.run, paths = INSIDE,
    opts = function()
      local o = box { root = F .. "/rootfs", symlinks = {} }
      table.remove(o.binds) -- rootfs/suid is the root's own
      return o
    end,
  },
  -- D. The host's network.
  D = { run = sandbox.run, paths = INSIDE, opts = function() return box { net = "host" } end },
  -- E. ns.spawn with its documented defaults (and a /proc of its own).
  E = {
    run = ns.run, paths = HOST,
    opts = function() return { namespaces = "user,mount,pid", mount_proc = "/proc", setup = masks } end,
  },
}
local CONTROLS = {
  open = { run = ns.run, paths = HOST, opts = function() return {} end },
  caps = {
    run = ns.run, paths = HOST,
    opts = function() return { namespaces = "user,mount,pid,uts", mount_proc = "/proc", setup = masks } end,
  },
  -- (Unprivileged, nsrun is uid 65534 already: a uid switch to itself
  -- would only add a capability drop it may not make.)
  setuid = { run = ns.run, paths = HOST, opts = function() return T.user and {} or { uid = 65534, gid = 65534 } end },
}
local cfg = assert(CONFIGS[config], "unknown configuration " .. config)

local host_keyring = "unknown"

local function environment(paths, mode)
  return {
    PATH = "/usr/bin:/bin",
    ESC_RO = paths.RO, ESC_TMP = paths.TMP, ESC_MASKED = paths.MASKED, ESC_SUID = paths.SUID,
    ESC_DEV = paths.DEV,
    ESC_MARKER = F .. "/marker",
    ESC_NSRUN = tostring(ns.getpid()),
    ESC_ABSTRACT = opt.abstract,
    ESC_HOST_KEYRING = host_keyring,
    ESC_HOST_UTS = tostring(ns.id("uts")),
    ESC_DISK = opt.disk,
    ESC_INJECT = mode == "control" and "CONTROL-TIOCSTI" or "ESCAPED-BY-TIOCSTI",
  }
end

-- Attempts that are another attacks.pl attempt with an option added to
-- the configuration (not to their controls).
local VARIANTS = {
  ["cwd.proc_fd_nouserns"] = { perl = "cwd.proc_fd", opts = { disable_userns = true } },
  ["userns.unshare_disabled"] = { perl = "userns.unshare", opts = { disable_userns = true } },
}

-- Options some attempts add to the configuration they run in.
local function extra(name, c)
  if name == "tty.tiocsti" then return { stdin = "inherit" } end
  if name == "fds.leak" then return { keep_fds = { held_handle.fd }, env = { ESC_KEEP = tostring(held_handle.fd) } } end
  if name == "setuid.exec" and not T.user and c ~= CONFIGS.B and c ~= CONFIGS.E and c.paths == INSIDE then
    -- As root, the program runs as uid 1000 next to a mapped root, so a
    -- setuid-root binary has an owner to switch to (B keeps uid 0).
    local map = { { 0, 0, 1 }, { 1000, 1000, 1 } }
    return { uid = 1000, gid = 1000, uid_map = map, gid_map = map }
  end
  return {}
end

-- Run attacks.pl ATTEMPT [control] in configuration `c`; returns the
-- verdict, its detail and the run's exit code.
local function run(c, perl_name, mode, more)
  local o = c.opts()
  o.argv = { "perl", c.paths.PROG, perl_name, mode }
  o.clear_env = true
  o.env = environment(c.paths, mode)
  o.stdin = "null"
  o.timeout = 30
  for k, v in pairs(more or {}) do
    if k == "env" then
      for ek, ev in pairs(v) do o.env[ek] = ev end
    else
      o[k] = v
    end
  end
  local ok, r = pcall(c.run, o)
  if not ok then return "nostart", tostring(r):gsub("%s+", " "), nil end
  local word, detail = r.stdout:match("VERDICT %S+ (%S+) ([^\n]*)")
  local code = r.code
  if r.timed_out then return "broken", "timed out", code end
  if not word then
    if r.signal then return "stopped", "killed by signal " .. r.signal, code end
    return "broken", ("no verdict (code %s): %s"):format(tostring(code), (r.stdout .. r.stderr):gsub("%s+", " ")), code
  end
  local want = ({ [0] = "worked", [1] = "stopped", [2] = "cannot", [4] = "broken" })[code]
  if perl_name == "status.forge" and mode ~= "control" then
    -- Judged by what nsrun reports: the program exited 3.
    if code == 3 then return "stopped", detail .. "; nsrun reported 3", code end
    if code == 0 then return "worked", detail .. "; nsrun reported 0 (forged)", code end
    return "broken", detail .. "; nsrun reported " .. tostring(code), code
  end
  if want ~= word then return "broken", ("%s, but exit code %s"):format(detail, tostring(code)), code end
  return word, detail, code
end

local function report(kind, name, word, detail)
  print(("%s %s %s %s"):format(kind, name, word, detail))
end

-- 13. chdir to /proc/self/fd/N, N = 3..20: the start must fail or the
-- program must stay inside the sandbox.
local function cwd_attempt(c, more)
  -- First without the chdir: the configuration must start, or every
  -- refusal below would be a pass for a reason of its own.
  local word0, detail0 = run(c, "cwd.proc_fd", "attack", more)
  if word0 ~= "stopped" then return "broken", "without the chdir: " .. word0 .. " " .. detail0 end
  local worked, failed, inside, why = {}, 0, {}, nil
  for n = 3, 20 do
    local o = {}
    for k, v in pairs(more) do o[k] = v end
    o[c.run == sandbox.run and "chdir" or "cwd"] = "/proc/self/fd/" .. n
    local word, detail = run(c, "cwd.proc_fd", "attack", o)
    if word == "nostart" then
      failed = failed + 1
      why = why or detail
    elseif word == "worked" then
      worked[#worked + 1] = n .. " (" .. detail .. ")"
    elseif word == "stopped" then
      inside[#inside + 1] = n .. " (" .. (detail:match("^cwd (%S+)") or detail) .. ")"
    else
      return "broken", ("fd %d: %s"):format(n, detail)
    end
  end
  local summary = ("%d starts refused (%s); inside the sandbox: %s"):format(failed, why or "-",
    #inside > 0 and table.concat(inside, ", ") or "none")
  if #worked > 0 then return "worked", "escaped with fd " .. table.concat(worked, ", ") .. "; " .. summary end
  return "stopped", summary
end

for _, w in ipairs(wanted) do
  local name = w.name
  local variant = VARIANTS[name]
  local perl_name = variant and variant.perl or name
  -- The control first: keyring.session learns the host's keyring from it.
  if w.control ~= "none" then
    local ctl = w.control == "same" and cfg or assert(CONTROLS[w.control], "unknown control " .. w.control)
    local more = extra(name, ctl)
    if perl_name == "cwd.proc_fd" then more.cwd = F end
    local word, detail = run(ctl, perl_name, "control", more)
    if word == "nostart" then word, detail = "broken", "the control did not start: " .. detail end
    if name == "keyring.session" then host_keyring = detail:match("id=(%d+)") or host_keyring end
    report("C", name, word, detail)
  else
    report("C", name, "none", "-")
  end
  local word, detail
  local more = extra(name, cfg)
  for k, v in pairs(variant and variant.opts or {}) do more[k] = v end
  if perl_name == "cwd.proc_fd" then
    word, detail = cwd_attempt(cfg, more)
  else
    word, detail = run(cfg, perl_name, "attack", more)
    -- A sandbox that does not start stops nothing: that is a failure.
    if word == "nostart" then word, detail = "broken", "the sandbox did not start: " .. detail end
  end
  report("R", name, word, detail)
end

-- (Alive to the end: the init forked for every sandbox above held them.)
T.put("lua_secret_len", #lua_secret)
held_file:close()
held_handle:close()
print("done")
