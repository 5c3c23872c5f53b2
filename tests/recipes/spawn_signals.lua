-- The program starts with SIGPIPE at its default action and no signal
-- blocked, though nsrun itself ignores SIGPIPE (it wants EPIPE from writes
-- to a pipe whose reader left; `yes | head` inside the sandbox must still
-- see `yes` die of SIGPIPE) and blocks signals while it waits.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local proc = function() ns.mount("proc", "/proc", "proc") end
for _, m in ipairs(S.modes()) do
  local r = ns.run {
    argv = { "sh", "-c", "grep -E '^Sig(Ign|Blk):' /proc/self/status" },
    namespaces = m.namespaces, setup = m.setup, init = m.init, stdin = "null",
  }
  T.check(m.name .. ".code", r.code == 0, "code " .. tostring(r.code) .. ": " .. r.stderr)
  -- Only SIGPIPE: what nsrun's own parent ignored (a shell's background
  -- job ignores SIGINT and SIGQUIT) is rightly passed on, as nohup relies on.
  local ign = tonumber(r.stdout:match("SigIgn:%s+(%x+)"), 16)
  T.check(m.name .. ".ignored", ign and ign & (1 << (13 - 1)) == 0, r.stdout)
  T.check(m.name .. ".blocked", r.stdout:match("SigBlk:%s+(%x+)") == "0000000000000000", r.stdout)
end
-- The same through a pipeline's real status: yes must die of SIGPIPE (141).
local r = ns.run { argv = { "bash", "-c", "yes | head -c 1 >/dev/null; echo ${PIPESTATUS[0]}" },
  namespaces = S.kinds("pid,mount"), setup = proc }
T.check("yes.sigpipe", r.stdout == "141\n", "yes ended with " .. r.stdout)
T.ok("all")
