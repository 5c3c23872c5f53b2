-- Call every ns.* function (and methods of the values they return) with
-- random arguments inside a throwaway sandbox. The only outcomes allowed
-- are a result or a Lua error with a message: never a crash or a hang.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local seed, calls = tonumber(arg[1]) or 1, tonumber(arg[2]) or 2000

-- exec would replace the fuzzer, fork/clone run a random function in a copy
-- of it, and kill could signal the fuzzer itself: those are exercised by
-- their own tests.
local SKIP = { exec = true, fork = true, clone = true, kill = true }
local words = { "user", "mount", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time", "bind", "rec", "ro",
  "private", "detach", "self", "root", "deny", "allow", "TERM", "/", "/tmp", "/tmp/x", "/proc", "/dev/null",
  "tmpfs", "proc", "0755", "64M", "", "a,b", "user,pid", "\0", ("x"):rep(5000), "../..", "/proc/self/ns/net",
  "argv", "fn", "namespaces", "hostname", "setup", "timeout", "uid_map", "join", "stdin", "stdout", "keep_fds",
  "env", "lower", "size", "mode", "content", "file", "parents", "/bin/true", "true" }

local function rnd_value(depth)
  local k = math.random(1, depth > 2 and 7 or 9)
  if k == 1 then return nil
  elseif k == 2 then return math.random() < 0.5
  elseif k == 3 then
    local ints = { 0, 1, -1, 2, 42, 65534, 2 ^ 31, -(2 ^ 31), math.maxinteger, math.mininteger, 4095, 99999 }
    return math.floor(ints[math.random(#ints)])
  elseif k == 4 then
    local fl = { 0.5, -1.5, 1 / 0, -1 / 0, 0 / 0, 1e300 }
    return fl[math.random(#fl)]
  elseif k == 5 or k == 6 then return words[math.random(#words)]
  elseif k == 7 then
    local n, s = math.random(0, 12), {}
    for i = 1, n do s[i] = string.char(math.random(0, 255)) end
    return table.concat(s)
  elseif k == 8 then
    local t = {}
    for i = 1, math.random(0, 4) do t[i] = rnd_value(depth + 1) end
    for _ = 1, math.random(0, 3) do
      local key = words[math.random(#words)]
      if key ~= "" and key ~= "\0" then t[key] = rnd_value(depth + 1) end
    end
    return t
  else
    return function() return rnd_value(3) end
  end
end

local function fuzz()
  math.randomseed(seed)
  local names = {}
  for name, f in pairs(ns) do
    if type(f) == "function" and not SKIP[name] then names[#names + 1] = name end
  end
  table.sort(names)
  local values, ok_n, err_n = {}, 0, 0
  for i = 1, calls do
    local name = names[math.random(#names)]
    local args = {}
    local n = math.random(0, 5)
    for j = 1, n do args[j] = rnd_value(0) end
    local r = table.pack(pcall(ns[name], table.unpack(args, 1, n)))
    if r[1] then
      ok_n = ok_n + 1
      for j = 2, r.n do
        if type(r[j]) == "userdata" then values[#values + 1] = r[j] end
      end
    else
      err_n = err_n + 1
      local e = r[2]
      local msg = type(e) == "table" and e.message or e
      if type(msg) ~= "string" or #msg == 0 then
        error(("call %d: %s(...) raised a %s without a message"):format(i, name, type(e)))
      end
      if msg:find("panicked") then error("a panic surfaced: " .. msg) end
    end
    -- Methods of the values made so far, with random arguments too.
    if #values > 0 and math.random() < 0.2 then
      local v = values[math.random(#values)]
      for _, m in ipairs { "close", "enter", "kind", "inode", "fd", "pid" } do
        local okm, f = pcall(function() return v[m] end)
        if okm and type(f) == "function" and m ~= "enter" then
          pcall(f, v, rnd_value(0))
        end
      end
      pcall(tostring, v)
    end
  end
  io.write(("fuzz seed %d: %d calls, %d returned, %d raised\n"):format(seed, calls, ok_n, err_n))
  return 0
end

local r = sandbox.run {
  fn = fuzz,
  binds = { { "/usr", "/usr", ro = true } },
  symlinks = { ["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64" },
  tmpfs = { "/tmp" }, proc = "/proc", dev = "/dev",
  timeout = 60,
}
io.write(r.stdout, r.stderr)
assert(not r.timed_out, "the fuzzer hung")
return r.code
