-- 100 orphaned grandchildren under the init leave no zombie, in the
-- sandbox or on the host. The program (with its own /proc) makes 100
-- orphans that end at once and 100 that run on, checks the init adopted
-- the live ones, kills them, and waits until its /proc shows only the
-- init and itself.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local script = [[
i=0
while [ $i -lt 100 ]; do (sleep 0 &); i=$((i+1)); done
i=0
while [ $i -lt 100 ]; do (exec tail -f /dev/null </dev/null >/dev/null 2>&1 &); i=$((i+1)); done
# (A subshell may not have exited yet, nor its child exec'd tail: look
# again until all are there, or for three seconds.)
tries=0
while :; do
  pids=""; n=0
  for s in /proc/[0-9]*/stat; do
    read -r pid comm st ppid rest 2>/dev/null <"$s" || continue
    if [ "$comm" = "(tail)" ] && [ "$ppid" = 1 ] && [ "$st" != Z ]; then
      pids="$pids $pid"; n=$((n+1))
    fi
  done
  [ $n -ge 100 ] && break
  tries=$((tries+1))
  [ $tries -gt 150 ] && break
  sleep 0.02
done
echo "adopted=$n"
kill -KILL $pids
tries=0
while :; do
  z=0; live=0
  for s in /proc/[0-9]*/stat; do
    read -r pid comm st rest 2>/dev/null <"$s" || continue
    live=$((live+1))
    [ "$st" = Z ] && z=$((z+1))
  done
  [ $z = 0 ] && [ $live = 2 ] && break
  tries=$((tries+1))
  [ $tries -gt 150 ] && break
  sleep 0.02
done
echo "zombies=$z"
echo "procs=$live"
echo "mypid=$$"
]]

local st = ns.run {
  argv = { "sh", "-c", script },
  namespaces = S.kinds("pid,mount"),
  stdin = "null",
  setup = function() ns.mount("proc", "/proc", "proc") end,
}
T.eq("code", st.code, 0)
T.eq("stderr", st.stderr, "")
local out = st.stdout
T.has("adopted", out, "adopted=100\n")
T.has("no zombie in the sandbox", out, "zombies=0\n")
T.has("only init and the program left", out, "procs=2\n")
T.has("the program is not PID 1", out, "mypid=2\n")
-- nsrun reaped its child and nothing else is left to it.
S.no_children("no child left")
T.ok("all")
