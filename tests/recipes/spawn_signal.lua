-- A signal to nsrun while it waits in p:wait() reaches the program.
-- Arguments: the mode (plain, init, noinit) and the signal name (TERM, ...).
-- The program traps the signal, says so and exits 7; it creates `ready`
-- in the run directory once its trap is set (and nsrun is in p:wait()).

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local mode, sig = ...
local opts = {
  plain = { namespaces = S.kinds("") },
  init = { namespaces = S.kinds("pid") },
  noinit = { namespaces = S.kinds("pid"), init = false },
  relay = { namespaces = S.kinds("time,pid") },
}
local o = assert(opts[mode], "mode plain, init or noinit")
o.stdin = "null"
o.argv = {
  "sh", "-c",
  "trap 'echo trapped " .. sig .. "; exit 7' " .. sig .. "\n" ..
  -- nsrun enters p:wait() right after spawn returns; the pause makes sure.
  "sleep 0.2\n" ..
  "touch \"$NSRUN_TEST_DIR/ready\"\n" ..
  "i=0; while [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done\n" ..
  "echo 'no signal came'; exit 3",
}
local p = ns.spawn(o)
local st = p:wait()
T.eq("code", st.code, 7)
T.eq("signal", st.signal, nil)
T.ok("all")
return st
