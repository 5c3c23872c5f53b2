-- Stdio of ns.spawn/ns.run (issue 15): `input = "bytes"`, another
-- process's pipe as a stream (`a | b`), Lua files as streams.
-- Argument: the part to run ("input", "pipes", "files").

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

local part = ...
local K = S.kinds("")

if part == "input" then
  -- 1 MiB, every byte value, NULs included: far past a 64 KiB pipe buffer,
  -- which a parent writing before it reads would block on for good.
  local chunk = {}
  for i = 0, 255 do chunk[#chunk + 1] = string.char(i) end
  local big = string.rep(table.concat(chunk), 4096)
  T.eq("input.size", #big, 1 << 20)
  local r = ns.run { argv = { "cat" }, namespaces = K, input = big, timeout = 60 }
  T.eq("input.code", r.code, 0)
  T.eq("input.len", #r.stdout, #big)
  T.check("input.intact", r.stdout == big, "cat gave back other bytes")

  -- ns.spawn too: no stdin pipe for the recipe, the program reads it all.
  local p = ns.spawn { argv = { "wc", "-c" }, namespaces = K, input = big, stdout = "pipe" }
  T.eq("spawn.no_stdin_pipe", p.stdin, nil)
  T.eq("spawn.count", p.stdout:read("a"), tostring(1 << 20) .. "\n")
  T.eq("spawn.code", p:wait().code, 0)

  -- Empty input: end of file at once (not the terminal's stdin).
  r = ns.run { argv = { "cat" }, namespaces = K, input = "", timeout = 20 }
  T.eq("empty.out", r.stdout, "")

  -- What the program was given it cannot change.
  r = ns.run { argv = { "sh", "-c", "echo x >&0 || echo refused; cat" }, namespaces = K, input = "abc" }
  T.eq("sealed.out", r.stdout, "refused\nabc")

  local e = T.raises("both", ns.run, { argv = { "true" }, stdin = "null", input = "x" })
  T.has("both.message", tostring(e), "give stdin or input, not both")
  e = T.raises("not_string", ns.run, { argv = { "true" }, input = 3 })
  T.has("not_string.message", tostring(e), "input must be a string")
  -- A bare word is still refused as a stdin path (it needs a '/').
  e = T.raises("word", ns.run, { argv = { "true" }, stdin = "data" })
  T.has("word.message", tostring(e), "unknown stdio kind 'data'")

  -- The sandbox passes it on.
  local sandbox = require "nsrun.sandbox"
  local st = sandbox.run {
    argv = { "/usr/bin/cat" }, input = "via sandbox", stdout = "pipe",
    binds = { { "/usr", "/usr", ro = true } },
    symlinks = { ["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64" },
  }
  T.eq("sandbox.out", st.stdout, "via sandbox")
  S.no_children("input.no_children")
elseif part == "pipes" then
  -- printf | tr: b reads what a writes; b ends once a does, so nsrun
  -- kept no copy of the write end... nor of the read end.
  local a = ns.spawn { argv = { "printf", "hello pipe" }, namespaces = K, stdout = "pipe" }
  local b = ns.spawn { argv = { "tr", "a-z", "A-Z" }, namespaces = K, stdin = a.stdout, stdout = "pipe", timeout = 20 }
  T.eq("pipe.out", b.stdout:read("a"), "HELLO PIPE")
  T.eq("pipe.codes", a:wait().code + b:wait().code, 0)
  local e = T.raises("pipe.given", a.stdout.read, a.stdout, "a")
  T.has("pipe.given.message", tostring(e), "given to another process")
  -- Given once: not twice.
  e = T.raises("pipe.twice", ns.run, { argv = { "true" }, stdin = a.stdout })
  T.has("pipe.twice.message", tostring(e), "stdin: the pipe")

  -- Another process's stdin as stdout, 1 MiB through it: c has a timeout,
  -- so nsrun's end is non-blocking; the writer must get it blocking.
  local c = ns.spawn { argv = { "wc", "-c" }, namespaces = K, stdin = "pipe", stdout = "pipe", timeout = 30 }
  local r = ns.run { argv = { "head", "-c", "1048576", "/dev/zero" }, namespaces = K, stdout = c.stdin }
  T.eq("into_stdin.code", r.code, 0)
  T.eq("into_stdin.stderr", r.stderr, "")
  T.eq("into_stdin.count", c.stdout:read("a"), "1048576\n")
  T.eq("into_stdin.wc", c:wait().code, 0)

  -- Three stages, input at the head.
  local p1 = ns.spawn { argv = { "tr", "a-z", "A-Z" }, namespaces = K, input = "one\ntwo\nthree\n", stdout = "pipe" }
  local p2 = ns.spawn { argv = { "sort", "-r" }, namespaces = K, stdin = p1.stdout, stdout = "pipe" }
  local r3 = ns.run { argv = { "head", "-n", "2" }, namespaces = K, stdin = p2.stdout, timeout = 20 }
  T.eq("three.out", r3.stdout, "TWO\nTHREE\n")
  p1:wait(); p2:wait()

  -- The wrong ends are refused, saying which they are.
  local d = ns.spawn { argv = { "cat" }, namespaces = K, stdin = "pipe", stdout = "pipe" }
  e = T.raises("wrong.stdout", ns.run, { argv = { "true" }, stdout = d.stdout })
  T.has("wrong.stdout.message", tostring(e), "stdout: the read end of a pipe")
  e = T.raises("wrong.stdin", ns.run, { argv = { "true" }, stdin = d.stdin })
  T.has("wrong.stdin.message", tostring(e), "stdin: the write end of a pipe")
  -- Still the recipe's after a refusal, and after a spawn that failed.
  e = T.raises("failed_spawn", ns.spawn, { argv = { "/nonexistent/x" }, stdout = d.stdin })
  d.stdin:write("still mine")
  d.stdin:close()
  T.eq("kept.out", d.stdout:read("a"), "still mine")
  d:wait()

  -- What the recipe already read out of a pipe would be lost: refused.
  local f = ns.spawn { argv = { "printf", "ab\ncd\n" }, namespaces = K, stdout = "pipe" }
  T.eq("partial.first", f.stdout:read("l"), "ab")
  e = T.raises("partial", ns.run, { argv = { "cat" }, stdin = f.stdout })
  T.has("partial.message", tostring(e), "already read")
  T.eq("partial.rest", f.stdout:read("a"), "cd\n")
  f:wait()
  S.no_children("pipes.no_children")
elseif part == "files" then
  local path = T.dir .. "/out.txt"
  local f = assert(io.open(path, "w"))
  -- Buffered by Lua: flushed before the process writes after it.
  f:write("first\n")
  local r = ns.run { argv = { "echo", "from child" }, namespaces = K, stdout = f, stderr = f }
  T.eq("file.code", r.code, 0)
  T.eq("file.captured", r.stdout, nil)
  f:write("last\n")
  f:close()
  T.eq("file.content", assert(io.open(path)):read("a"), "first\nfrom child\nlast\n")

  -- As stdin.
  local g = assert(io.open(path, "r"))
  r = ns.run { argv = { "wc", "-l" }, namespaces = K, stdin = g }
  g:close()
  T.eq("file.stdin", r.stdout, "3\n")

  -- io.stderr is a Lua file too.
  r = ns.run { argv = { "true" }, namespaces = K, stderr = io.stderr }
  T.eq("stderr.code", r.code, 0)

  local e = T.raises("closed", ns.run, { argv = { "true" }, stdout = f })
  T.has("closed.message", tostring(e), "stdout: the file is closed")
  e = T.raises("table", ns.run, { argv = { "true" }, stdout = {} })
  T.has("table.message", tostring(e), "a pipe or a Lua file, got table")
  S.no_children("files.no_children")
end
T.ok("all")
