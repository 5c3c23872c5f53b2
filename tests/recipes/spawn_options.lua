-- Validation of the options table of ns.spawn and ns.run: every mistake is
-- raised at the call, before any child exists, setup runs or the program
-- starts.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local ran = T.dir .. "/program-ran"
local setup_ran = T.dir .. "/setup-ran"
local setup = function() ns.write_file(setup_ran, "x") end
local K = S.kinds("")

-- name, function (spawn or run), options, text the message must contain
local cases = {
  { "unknown.namespace", ns.spawn, { namespace = "pid" }, "spawn: unknown option 'namespace' (did you mean 'namespaces'?)" },
  { "unknown.stdot", ns.spawn, { stdot = "pipe" }, "unknown option 'stdot' (did you mean 'stdout'?)" },
  { "unknown.keepfds", ns.spawn, { keepfds = { 3 } }, "unknown option 'keepfds' (did you mean 'keep_fds'?)" },
  { "unknown.timout", ns.spawn, { timout = 3 }, "unknown option 'timout' (did you mean 'timeout'?)" },
  { "unknown.run", ns.run, { stdot = "pipe" }, "run: unknown option 'stdot' (did you mean 'stdout'?)" },
  { "unknown.lists_known", ns.spawn, { xyzzy = 1 }, "unknown option 'xyzzy'" },
  { "hostname_needs_uts", ns.spawn, { hostname = "box" }, 'hostname requires a new uts namespace: add "uts" to namespaces' },
  { "hostname_needs_uts.run", ns.run, { hostname = "box" }, 'hostname requires a new uts namespace' },
  { "domainname_needs_uts", ns.spawn, { domainname = "example" }, 'add "uts" to namespaces' },
  { "time_offsets_need_time", ns.spawn, { time_offsets = { monotonic = 5 } }, 'time_offsets requires a new time namespace: add "time" to namespaces' },
  { "time_offsets.keys", ns.spawn, { namespaces = S.kinds("time"), time_offsets = { realtime = 5 } }, "unknown option 'realtime'" },
  { "uid_map_needs_user", ns.spawn, { namespaces = "pid", uid_map = "root" }, 'uid_map/gid_map require a new user namespace: add "user" to namespaces' },
  { "uid_map.bad", ns.spawn, { namespaces = "user", uid_map = "me" }, 'uid_map: "root", "self", "none" or a list of {inside, outside, count} expected' },
  { "init_needs_pid", ns.spawn, { init = true }, 'init = true requires a new pid namespace: add "pid" to namespaces' },
  { "init.type", ns.spawn, { init = "yes" }, "init must be a boolean, got string" },
  { "keep_fds.standard", ns.spawn, { keep_fds = { 1 } }, "keep_fds: 1 is a standard stream; use stdin/stdout/stderr" },
  { "keep_fds.closed", ns.spawn, { keep_fds = { 987 } }, "keep_fds: fd 987 is not open" },
  { "argv.string", ns.spawn, { argv = "true" }, 'argv must be a list, e.g. {"true"}' },
  { "argv.empty", ns.spawn, { argv = {} }, "argv is empty" },
  { "argv.and_fn", ns.spawn, { fn = function() return 0 end }, "give argv or fn, not both" },
  { "timeout.zero", ns.spawn, { timeout = 0 }, "timeout must be a positive number of seconds" },
  { "timeout.negative", ns.run, { timeout = -1 }, "timeout must be a positive number of seconds" },
  { "timeout.string", ns.spawn, { timeout = "1" }, "timeout must be a positive number of seconds" },
  -- These two panicked (Duration::from_secs_f64, Instant + Duration).
  { "timeout.huge", ns.spawn, { timeout = 1e30 }, "timeout must be at most 3153600000 seconds (100 years), got 1e30" },
  { "timeout.maxinteger", ns.run, { timeout = math.maxinteger }, "timeout must be at most 3153600000 seconds" },
  { "timeout.inf", ns.run, { timeout = math.huge }, "timeout must be at most 3153600000 seconds (100 years), got inf" },
  { "stdout.type", ns.spawn, { stdout = true }, 'stdout must be "inherit", "null", "pipe", a path, an fd number, a pipe or a Lua file, got boolean' },
  { "stdin.empty_path", ns.spawn, { stdin = "" }, "stdin: empty path" },
  { "namespaces.unknown", ns.spawn, { namespaces = "pdi" }, "unknown namespace kind 'pdi'" },
  { "join.and_new", ns.spawn, { namespaces = S.kinds("net"), join = { net = 1 } }, "the net namespace is both joined and created new" },
  { "join.type", ns.spawn, { join = "net" }, "join must be a table like {net = handle}" },
  { "setgroups.value", ns.spawn, { setgroups = "maybe" }, 'setgroups must be "allow" or "deny"' },
  { "env.value", ns.spawn, { env = { FOO = {} } }, "env.FOO must be a string (or false to remove it)" },
  { "die_with_parent.type", ns.spawn, { die_with_parent = "no" }, "option 'die_with_parent' must be a boolean" },
  { "caps.empty", ns.spawn, { caps = {} }, "caps: needs keep = {...} or drop = {...}" },
  { "caps.unknown", ns.spawn, { caps = { keep = { "net_admn" } } }, "unknown capability 'net_admn' (did you mean 'CAP_NET_ADMIN'?)" },
  { "seccomp.unknown", ns.run, { seccomp = { deny = { "mout" } } }, "unknown system call 'mout' (did you mean 'mount'?)" },
  { "seccomp.errno", ns.run, { seccomp = { deny = { "mount" }, errno = "EPRM" } }, "unknown errno 'EPRM' (did you mean 'EPERM'?)" },
  { "seccomp.action", ns.run, { seccomp = { deny = { "mount" }, action = "kil" } }, "unknown action 'kil' (did you mean 'kill'?)" },
  { "seccomp.preset", ns.run, { seccomp = "strict" }, "seccomp must be \"default\", false or a table" },
  { "rlimits.unknown", ns.spawn, { rlimits = { nofiles = 3 } }, "unknown resource limit 'nofiles' (did you mean 'nofile'?)" },
  { "rlimits.size", ns.spawn, { rlimits = { as = "12Q" } }, "bad size '12Q'" },
  { "rlimits.pair", ns.spawn, { rlimits = { nofile = { 64, 32 } } }, "soft limit 64 is above the hard limit 32" },
  { "cgroup.key", ns.spawn, { cgroup = { memroy = "1M" } }, "unknown option 'memroy' (did you mean 'memory'?)" },
  { "cgroup.cpu", ns.spawn, { cgroup = { cpu = -1 } }, "cgroup.cpu: a positive number of CPUs" },
}

for _, c in ipairs(cases) do
  local name, f, opts, want = c[1], c[2], c[3], c[4]
  if opts.argv == nil and opts.fn == nil then opts.argv = { "touch", ran } end
  if opts.fn then opts.argv = { "touch", ran } end
  if opts.namespaces == nil then opts.namespaces = K end
  opts.setup = setup
  local L = S.line() + 1
  local e = T.errmsg(name, want, function() local r = f(opts) return r end)
  T.check(name .. ".where", tostring(e):sub(1, #("recipe.lua:" .. L .. ": ")) == "recipe.lua:" .. L .. ": ", T.show(e))
  T.eq(name .. ".setup_not_run", T.exists(setup_ran), false)
  T.eq(name .. ".program_not_run", T.exists(ran), false)
  S.no_children(name .. ".no_child")
end

-- The unknown-option message lists what is known.
local e = T.raises("known", ns.spawn, { argv = { "true" }, stdot = 1 })
for _, k in ipairs { "argv", "namespaces", "stdout", "keep_fds", "timeout", "setup", "before_start" } do
  T.has("known." .. k, e, k)
end
-- Neither argv nor fn; no table at all.
T.errmsg("neither", "needs argv (a program to run) or fn (a function)", ns.spawn, {})
T.raises("no_table", ns.spawn, "true")
T.raises("no_table.run", ns.run)

-- With correct options it runs (and setup did run then).
local st = ns.run { argv = { "touch", ran }, namespaces = K, setup = setup }
T.eq("valid.code", st.code, 0)
T.eq("valid.setup_ran", T.exists(setup_ran), true)
T.eq("valid.program_ran", T.exists(ran), true)
T.ok("all")
