-- 10 MB through pipes, both ways, with and without a sandbox with init.

local ns = require "nsrun"
local T = require "testlib"
local S = require "spawn_lib"

-- 10 MiB that is not one short pattern repeated: numbered 256-byte records
-- holding every byte value (NUL and newline included).
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
bytes = table.concat(bytes)
local parts = {}
for i = 1, 40960 do parts[i] = string.format("%07d", i) .. bytes:sub(i % 7 + 1, i % 7 + 249) end
local data = table.concat(parts)
assert(#data == 10 * 1024 * 1024)
local path = T.dir .. "/data"
ns.write_file(path, data)

local function same(name, got, want)
  if got ~= want then
    local at = 1
    if type(got) == "string" then
      while at <= #got and got:byte(at) == want:byte(at) do at = at + 1 end
    end
    T.check(name, false, "got " .. (type(got) == "string" and #got .. " bytes" or tostring(got))
      .. ", want " .. #want .. "; first difference at byte " .. at)
  end
  T.ok(name)
end

for _, m in ipairs { { name = "plain", kinds = S.kinds("") }, { name = "init", kinds = S.kinds("pid") } } do
  local n, k = m.name, m.kinds
  -- ns.run captures 10 MB of stdout.
  local st = ns.run { argv = { "cat", path }, namespaces = k }
  T.eq(n .. ".run.code", st.code, 0)
  same(n .. ".run.stdout", st.stdout, data)
  T.eq(n .. ".run.stderr", st.stderr, "")

  -- Both streams at once, stderr first: neither may block the other.
  st = ns.run { argv = { "sh", "-c", 'cat "$1" >&2; cat "$1"', "sh", path }, namespaces = k }
  T.eq(n .. ".both.code", st.code, 0)
  same(n .. ".both.stdout", st.stdout, data)
  same(n .. ".both.stderr", st.stderr, data)

  -- 10 MB into stdin, out into a file.
  local copy = T.dir .. "/copy-" .. n
  local p = ns.spawn { argv = { "cat" }, namespaces = k, stdin = "pipe", stdout = copy }
  T.eq(n .. ".stdin.type", type(p.stdin), "userdata")
  T.eq(n .. ".stdin.no_stdout_pipe", p.stdout, nil)
  p.stdin:write(data)
  p.stdin:close()
  T.eq(n .. ".stdin.code", p:wait().code, 0)
  same(n .. ".stdin.copy", ns.read_file(copy), data)

  -- In by one pipe, counted, out by another.
  p = ns.spawn { argv = { "wc", "-c" }, namespaces = k, stdin = "pipe", stdout = "pipe" }
  p.stdin:write(data:sub(1, 5 * 1024 * 1024), data:sub(5 * 1024 * 1024 + 1))
  p.stdin:close()
  T.eq(n .. ".wc", p.stdout:read("a"), "10485760\n")
  T.eq(n .. ".wc.code", p:wait().code, 0)

  -- Reading the stdout pipe of a spawned process.
  p = ns.spawn { argv = { "cat", path }, namespaces = k, stdout = "pipe" }
  same(n .. ".read_a", p.stdout:read("a"), data)
  T.eq(n .. ".read_a.eof", p.stdout:read("a"), "")
  T.eq(n .. ".read_a.code", p:wait().code, 0)

  -- p:output()
  p = ns.spawn { argv = { "sh", "-c", 'cat "$1"; echo done >&2', "sh", path }, namespaces = k,
    stdout = "pipe", stderr = "pipe" }
  local ost, out, err = p:output()
  T.eq(n .. ".output.code", ost.code, 0)
  same(n .. ".output.stdout", out, data)
  T.eq(n .. ".output.stderr", err, "done\n")
end
S.no_children("no child left")
T.ok("all")
