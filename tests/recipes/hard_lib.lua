-- Helpers shared by the hard_*.lua recipes (tests/hardening.rs copies this
-- file next to each of them as hard_lib.lua).

local ns = require "nsrun"
local T = require "testlib"
local H = {}

-- The namespaces of a sandbox (see testlib.kinds).
H.kinds = T.kinds

-- A non-root identity inside a new user namespace: as root, uid/gid 1000
-- mapped next to 0; unprivileged, our own ids mapped to themselves (the
-- only map an unprivileged process may write).
function H.nonroot()
  if T.user then
    return { uid_map = "self", gid_map = "self", uid = T.uid, gid = T.gid }
  end
  return {
    uid_map = { { 0, 0, 1 }, { 1000, 1000, 1 } },
    gid_map = { { 0, 0, 1 }, { 1000, 1000, 1 } },
    uid = 1000,
    gid = 1000,
  }
end

-- ns.run with `base` and `extra` merged (extra wins).
function H.run(base, extra)
  local o = {}
  for k, v in pairs(base or {}) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return ns.run(o)
end

-- The Cap* lines of /proc/self/status of a program run with `opts`:
-- {CapInh = "0000...", ...}, plus NoNewPrivs and Seccomp.
function H.status(opts)
  local r = H.run(opts, { argv = { "cat", "/proc/self/status" } })
  if r.code ~= 0 then error("cat /proc/self/status: " .. tostring(r.code) .. " " .. r.stderr, 2) end
  local out = {}
  for k, v in r.stdout:gmatch("(%w+):%s*([^\n]*)") do out[k] = v end
  return out
end

-- A mask as /proc/self/status prints it.
function H.hex(mask)
  return string.format("%016x", mask)
end

-- Run perl code in a sandbox with `opts`; returns the run's result.
function H.perl(opts, code, ...)
  return H.run(opts, { argv = { "perl", "-e", code, ... } })
end

return H
