-- A racer: a process swaps a directory of the root for a symlink to a
-- canary outside it (two renames each way) in a tight loop while the
-- recipe runs N sandbox set-ups aimed through that directory. Set-ups may
-- fail (ENOENT, ENOTDIR when one catches the swap mid-way); the canary
-- must stay untouched and no mount may leak (checked by the Rust side).
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local n = tonumber(arg[1]) or 1000
local C = T.dir .. "/canary"
local R = T.dir .. "/root"
ns.mkdir(C)
ns.write_file(C .. "/f", "orig\n", "0644")
ns.mkdir(C .. "/sub")
ns.mkdir(R)
ns.mkdir(R .. "/d")
-- The symlink the racer swaps in: absolute into /oldroot, where the host
-- was during the old set-up.
ns.symlink("/oldroot" .. C, R .. "/s")

-- renameat2(RENAME_EXCHANGE) swaps the two atomically, so there is always
-- exactly one directory and one symlink and `d` flips between them
-- (separate renames let set-up's mkdir fill the gap and end the race).
local racer = ns.spawn { argv = { "perl", "-e",
  "my ($d, $s) = @ARGV; while (1) { syscall(316, -100, $d, -100, $s, 2) == 0 or die \"renameat2: $!\" }",
  R .. "/d", R .. "/s" } }
local ok, errs, other = 0, 0, {}
local t0 = os.clock()
for i = 1, n do
  local good, res = pcall(sandbox.run, {
    root = R, fn = function() return 0 end, namespaces = { "user", "mount" },
    files = { ["/d/f"] = "pwned\n" }, dirs = { "/d/sub/x" }, chmod = { ["/d/f"] = "0666" },
    symlinks = { ["/d/link"] = "x" },
    binds = { { "/usr", "/d/b", ro = true } }, tmpfs = { "/d/sub" },
  })
  if good and res.code == 0 then
    ok = ok + 1
  else
    errs = errs + 1
    local e = good and ("code " .. res.code) or tostring(res):match("%(E%u+%)") or tostring(res)
    other[e] = (other[e] or 0) + 1
  end
  if i % 100 == 0 and ns.read_file(C .. "/f") ~= "orig\n" then
    racer:kill("KILL"); racer:wait()
    error("FAIL racer: the canary was written after " .. i .. " set-ups")
  end
end
local alive = racer:try_wait() == nil
racer:kill("KILL")
racer:wait()
T.put("set_ups", n)
T.put("ok", ok)
T.put("failed", errs)
for e, c in pairs(other) do T.put("error " .. e, c) end
T.put("seconds", os.clock() - t0)
-- The racer was still swapping at the end, and set-ups met its symlink.
T.check("racer.swapped", alive and errs > 0, "the racer ended early, or no set-up met its symlink")
local names = ns.readdir(C)
T.eq("racer.canary_untouched", table.concat(names, ",") .. ":" .. ns.read_file(C .. "/f"), "f,sub:orig\n")
print("done")
