-- A started process's pipes (issue 14, items 5, 11 and 15): wait closes our
-- end of stdin and the pipes, the timeout holds for every blocking call on
-- the process and its pipes, `<close>` on processes and pipes, and a forked
-- child never tears down what it inherited.
-- Argument: the part to run ("stdin", "timeout", "fds", "close").

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local part = ...
local K = S.kinds("")

-- Seconds `f` took, and what it returned.
local function timed(f, ...)
  local t0 = S.now()
  local r = table.pack(f(...))
  return S.now() - t0, table.unpack(r, 1, r.n)
end

if part == "stdin" then
  -- wait closes our end of stdin although the recipe holds the pipe.
  local p = ns.spawn { argv = { "cat" }, namespaces = K, stdin = "pipe", stdout = "null" }
  local w = p.stdin
  w:write("some input")
  local took, st = timed(p.wait, p)
  T.eq("wait.code", st.code, 0)
  T.check("wait.at_once", took < 3, "wait took " .. took .. " s")
  local e = T.raises("wait.write_after", w.write, w, "more")
  T.has("wait.write_after.message", tostring(e), "closed when its process was waited for")

  -- What the process wrote before it was waited for is still there.
  p = ns.spawn { argv = { "sh", "-c", "cat; echo done" }, namespaces = K, stdin = "pipe", stdout = "pipe" }
  p.stdin:write("in:")
  T.eq("rest.code", p:wait().code, 0)
  T.eq("rest.read", p.stdout:read("a"), "in:done\n")
  T.eq("rest.eof", p.stdout:read("l"), nil)

  -- Also with try_wait, once it returns a status.
  p = ns.spawn { argv = { "sh", "-c", "echo one; echo two" }, namespaces = K, stdout = "pipe" }
  local got
  for _ = 1, 500 do
    got = p:try_wait()
    if got then break end
    os.execute("sleep 0.01")
  end
  T.eq("try_wait.code", got and got.code, 0)
  T.eq("try_wait.lines", p.stdout:read("L") .. p.stdout:read("l"), "one\ntwo")

  -- output() keeps what a read took in but did not return.
  p = ns.spawn { argv = { "printf", "a\\nb\\nc\\n" }, namespaces = K, stdout = "pipe", stderr = "pipe" }
  T.eq("output.first_line", p.stdout:read("l"), "a")
  local _, out, err = p:output()
  T.eq("output.rest", out, "b\nc\n")
  T.eq("output.stderr", err, "")

  -- lines(), as Lua's files have it.
  p = ns.spawn { argv = { "printf", "x\\ny\\nz" }, namespaces = K, stdout = "pipe" }
  local lines = {}
  for l in p.stdout:lines() do lines[#lines + 1] = l end
  T.eq("lines", table.concat(lines, ","), "x,y,z")
  T.eq("lines.code", p:wait().code, 0)
  S.no_children("stdin.no_child_left")
  T.ok("all")
  return
end

if part == "timeout" then
  -- read("a") of a process that outlives its timeout.
  local p = ns.spawn { argv = { "sh", "-c", "echo early; exec sleep 6" }, namespaces = K, stdout = "pipe", timeout = 1 }
  local took, got = timed(p.stdout.read, p.stdout, "a")
  T.check("read.in_time", took < 4, "read took " .. took .. " s")
  T.eq("read.what_came", got, "early\n")
  local st = p:wait()
  T.eq("read.timed_out", st.timed_out, true)
  T.eq("read.killed", st.signal, 9)

  -- lines(), read(n) and read("l") keep it too.
  p = ns.spawn { argv = { "sh", "-c", "echo 1; exec sleep 6" }, namespaces = K, stdout = "pipe", timeout = 1 }
  local lines = {}
  took = timed(function()
    for l in p.stdout:lines() do lines[#lines + 1] = l end
  end)
  T.check("lines.in_time", took < 4, "lines took " .. took .. " s")
  T.eq("lines.what_came", table.concat(lines, ","), "1")
  T.eq("lines.timed_out", p:wait().timed_out, true)
  p = ns.spawn { argv = { "sleep", "6" }, namespaces = K, stdout = "pipe", timeout = 1 }
  took, got = timed(p.stdout.read, p.stdout, 10)
  T.check("count.in_time", took < 4, "read(10) took " .. took .. " s")
  T.eq("count.eof", got, nil)
  T.eq("count.timed_out", p:wait().timed_out, true)

  -- ns.run and output(): a background job holding stdout open after the
  -- process ended is killed with it at the deadline.
  local st2
  took, st2 = timed(ns.run, { argv = { "sh", "-c", "sleep 6 & echo $!" }, namespaces = K, timeout = 1 })
  T.check("run.in_time", took < 4, "ns.run took " .. took .. " s")
  T.eq("run.timed_out", st2.timed_out, true)
  local bg = st2.stdout:match("^(%d+)\n$")
  T.check("run.stdout", bg ~= nil, "stdout " .. T.show(st2.stdout))
  T.check("run.background_killed", bg and S.dead(bg, 2), "the background sleep lives on")
  p = ns.spawn { argv = { "sh", "-c", "sleep 6 & echo hi" }, namespaces = K, stdout = "pipe", stderr = "pipe", timeout = 1 }
  local out
  took, st, out = timed(p.output, p)
  T.check("output.in_time", took < 4, "output took " .. took .. " s")
  T.eq("output.timed_out", st.timed_out, true)
  T.eq("output.stdout", out, "hi\n")

  -- Writing more than the process takes.
  p = ns.spawn { argv = { "cat" }, namespaces = K, stdin = "pipe", stdout = "pipe", timeout = 2 }
  local ok, e
  took, ok, e = timed(pcall, p.stdin.write, p.stdin, string.rep("x", 4 << 20))
  T.check("write.in_time", took < 5, "write took " .. took .. " s")
  T.eq("write.raised", ok, false)
  T.has("write.message", tostring(e), "timed out after 2 s")
  T.eq("write.timed_out", p:wait().timed_out, true)
  e = T.raises("write.again", p.stdin.write, p.stdin, "x")

  -- A process that ended in time is not marked, however late it is read.
  p = ns.spawn { argv = { "echo", "late" }, namespaces = K, stdout = "pipe", timeout = 0.3 }
  ns.spawn({ argv = { "sleep", "0.6" } }):wait()
  T.eq("late.read", p.stdout:read("a"), "late\n")
  T.eq("late.not_timed_out", p:wait().timed_out, false)
  p = ns.spawn { argv = { "echo", "late" }, namespaces = K, stdout = "pipe", timeout = 0.3 }
  ns.spawn({ argv = { "sleep", "0.6" } }):wait()
  st, out = p:output()
  T.eq("late.output", out, "late\n")
  T.eq("late.output.not_timed_out", st.timed_out, false)
  S.no_children("timeout.no_child_left")
  T.ok("all")
  return
end

if part == "fds" then
  -- Waiting closes the pipes: no fd waits for a garbage collection.
  local function fds() return #ns.readdir("/proc/self/fd") end
  collectgarbage("stop")
  local before = fds()
  for i = 1, 60 do
    local p = ns.spawn { argv = { "cat" }, namespaces = K, stdin = "pipe", stdout = "pipe", stderr = "pipe" }
    p.stdin:write("x" .. i)
    if i % 2 == 0 then
      T.eq("fds.code." .. i, p:wait().code, 0)
      T.eq("fds.read." .. i, p.stdout:read("a"), "x" .. i)
    else
      local _, out = p:output()
      T.eq("fds.output." .. i, out, "x" .. i)
    end
  end
  T.eq("fds.flat", fds(), before)
  collectgarbage("restart")
  S.no_children("fds.no_child_left")
  T.ok("all")
  return
end

if part == "close" then
  -- <close> on a process kills and reaps it; on a pipe, closes it.
  local kept
  do
    local p <close> = ns.spawn { argv = { "sleep", "30" }, namespaces = K, stdout = "pipe" }
    kept = p
  end
  local st = kept:try_wait()
  T.eq("process.killed", st and st.signal, 9)
  T.errmsg("process.pipe_closed", "the pipe is closed", kept.stdout.read, kept.stdout, "a")
  local p = ns.spawn { argv = { "true" }, namespaces = K, stdout = "pipe" }
  do
    local r <close> = p.stdout
  end
  T.errmsg("pipe.closed", "the pipe is closed", p.stdout.read, p.stdout, "a")
  T.eq("pipe.wait", p:wait().code, 0)
  -- A process that ended is reaped, not killed.
  do
    local q <close> = ns.spawn { argv = { "true" }, namespaces = K }
    kept = q
    ns.spawn({ argv = { "sleep", "0.2" } }):wait()
  end
  T.eq("ended.code", kept:try_wait().code, 0)

  -- A forked child's copies are not its to close: neither `<close>` nor
  -- the finalizers of os.exit(code, true) touch the parent's process.
  local opts = { argv = { "sleep", "30" }, namespaces = K, stdin = "pipe", stdout = "pipe" }
  if not T.user then opts.cgroup = { pids = 10 } end
  p = ns.spawn(opts)
  local c = ns.fork(function()
    local q <close> = p
    local w <close> = p.stdin
    return 0
  end)
  T.eq("fork.close.code", c:wait().code, 0)
  T.eq("fork.close.alive", p:try_wait(), nil)
  c = ns.fork(function() os.exit(0, true) end)
  T.eq("fork.exit.code", c:wait().code, 0)
  T.eq("fork.exit.alive", p:try_wait(), nil)
  p.stdin:write("still ours\n")
  T.eq("fork.kill", p:kill("KILL"), true)
  T.eq("fork.wait", p:wait().signal, 9)
  S.no_children("close.no_child_left")
  T.ok("all")
  return
end

error("unknown part " .. tostring(part))
