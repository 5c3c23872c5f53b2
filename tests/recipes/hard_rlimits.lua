-- Resource limits: nofile, fsize, as, cpu, soft/hard pairs, bad values.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

local K = H.kinds("")
local function sh(opts, script)
  return H.run(opts, { argv = { "sh", "-c", script }, namespaces = K })
end

local r = sh({ rlimits = { nofile = 16 } }, "ulimit -Sn; ulimit -Hn")
T.eq("nofile.shown", r.stdout, "16\n16\n")
-- Opening 30 files: the 14th or so fails with EMFILE (24).
r = H.perl({ namespaces = K, rlimits = { nofile = 16 } },
  'my @f; for (1..30) { open(my $h, "<", "/dev/null") or do { print scalar(@f), " ", 0+$!, "\\n"; exit 0 }; push @f, $h } print "all\\n"')
local n, errno = r.stdout:match("^(%d+) (%d+)\n$")
T.eq("nofile.emfile", errno, "24")
T.check("nofile.count", tonumber(n) and tonumber(n) <= 13, r.stdout)

r = sh({ rlimits = { nofile = { 32, 64 } } }, "ulimit -Sn; ulimit -Hn")
T.eq("nofile.pair", r.stdout, "32\n64\n")

-- fsize: the writer dies of SIGXFSZ (25) and the file stops at the limit.
local f = T.dir .. "/big"
r = ns.run { argv = { "head", "-c", "65536", "/dev/zero" }, stdout = f, namespaces = K, rlimits = { fsize = "4K" } }
T.eq("fsize.signal", r.signal, 25)
T.eq("fsize.size", #ns.read_file(f), 4096)

-- as: a 200 MiB string does not fit in 64 MiB of address space.
r = H.perl({ namespaces = K, rlimits = { as = "64M" } }, 'my $x = "a" x (200 * 1024 * 1024); print "survived\\n"')
T.ne("as.fails", r.code, 0)
T.lacks("as.not_survived", r.stdout, "survived")
r = H.perl({ namespaces = K, rlimits = { as = "1G" } }, 'my $x = "a" x (20 * 1024 * 1024); print "survived\\n"')
T.eq("as.control", r.stdout, "survived\n")

-- cpu: a busy loop gets SIGXCPU (24) after a second of CPU time (at the
-- hard limit it would be SIGKILL).
r = sh({ rlimits = { cpu = { 1, 5 } }, timeout = 20 }, "while :; do :; done")
T.eq("cpu.signal", r.signal, 24)
T.eq("cpu.not_timed_out", r.timed_out, false)
r = sh({ rlimits = { cpu = 1 }, timeout = 20 }, "trap '' XCPU; while :; do :; done")
T.eq("cpu.hard.signal", r.signal, 9)

-- core = 0 and a stack size in bytes.
r = sh({ rlimits = { core = 0, stack = "8M" } }, "ulimit -c; ulimit -s")
T.eq("core_stack", r.stdout, "0\n8192\n")

-- Raising a hard limit needs CAP_SYS_RESOURCE in the host's user
-- namespace: root usually has it (not on every CI machine), root of a
-- user namespace never has it.
local caps = tonumber(ns.read_file("/proc/self/status"):match("CapEff:%s*(%x+)"), 16)
if caps & (1 << 24) == 0 then
  local e = T.errno("raise.refused", "EPERM", ns.run, { argv = { "true" }, namespaces = K, rlimits = { nofile = 1 << 30 } })
  T.has("raise.hint", tostring(e), "CAP_SYS_RESOURCE")
  T.ok("raise")
else
  r = sh({ rlimits = { core = "unlimited", nofile = 1000000 } }, "ulimit -c; ulimit -n")
  T.eq("raise", r.stdout, "unlimited\n1000000\n")
end

T.errmsg("bad.name", "unknown resource limit 'nofiles' (did you mean 'nofile'?)",
  ns.run, { argv = { "true" }, rlimits = { nofiles = 1 } })
T.errmsg("bad.size", "bad size '1X'", ns.run, { argv = { "true" }, rlimits = { as = "1X" } })
T.errmsg("bad.negative", "rlimits.nofile: a non-negative number", ns.run, { argv = { "true" }, rlimits = { nofile = -1 } })
T.errmsg("bad.count_string", "rlimits.nofile: a count or \"unlimited\" expected, got '64M'",
  ns.run, { argv = { "true" }, rlimits = { nofile = "64M" } })
T.errmsg("bad.pair", "the soft limit 64 is above the hard limit 32",
  ns.run, { argv = { "true" }, rlimits = { nofile = { 64, 32 } } })
T.errmsg("bad.pair_len", "a pair must be {soft, hard}",
  ns.run, { argv = { "true" }, rlimits = { nofile = { 64 } } })
print("done")
