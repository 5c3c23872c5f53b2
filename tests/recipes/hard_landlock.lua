-- Landlock: file system access only below the listed paths; TCP binds and
-- connects only to listed ports; abstract unix sockets and signals kept
-- inside the sandbox. The sandboxes share the host's network (no "net"
-- namespace) so that the test's loopback listeners are reachable.
--
-- arg[1]: this kernel's Landlock ABI (0: none); arg[2], arg[3]: loopback
-- ports the test listens on (the first is listed, the second not); arg[4],
-- arg[5]: free loopback ports for bind (likewise); arg[6]: the name of an
-- abstract unix socket the test listens on.
-- Where the kernel lacks an ABI, the part that needs it checks the
-- fail-closed error instead and prints why it was skipped.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

local abi = assert(tonumber(arg[1]), "usage: hard_landlock.lua ABI PORT_OK PORT_NO BIND_OK BIND_NO ABSTRACT")
local port_ok, port_no = assert(tonumber(arg[2])), assert(tonumber(arg[3]))
local bind_ok, bind_no = assert(tonumber(arg[4])), assert(tonumber(arg[5]))
local abstract = assert(arg[6])

-- Each prints the errno it got (0: it worked).
local CONNECT = [[
use Socket; socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
print((connect($s, pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) ? 0 : 0+$!), "\n")]]
local BIND = [[
use Socket; socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
print((bind($s, pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) ? 0 : 0+$!), "\n")]]
local UNIX = [[
use Socket; socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
print((connect($s, pack_sockaddr_un("\0" . $ARGV[0])) ? 0 : 0+$!), "\n")]]
local KILL = [[print((kill($ARGV[0], $ARGV[1]) ? 0 : 0+$!), "\n")]]
local EACCES, EPERM = "13\n", "1\n"

-- Whether the kernel has ABI `need` for `what`; if not, the request must
-- fail in the parent with the fail-closed error.
local function have(need, what, opts)
  if abi >= need then return true end
  print(("skip %s: needs Landlock ABI %d, this kernel has %d"):format(what, need, abi))
  local has = abi == 0 and "this kernel has" or ("this kernel has ABI " .. abi)
  T.errmsg(what .. ".fails_closed", ("landlock: %s Landlock ABI %d"):format(what == "fs" and "ro/rw need" or what .. " needs", need),
    ns.run, { argv = { "true" }, landlock = opts })
  T.errmsg(what .. ".fails_closed.has", has, ns.run, { argv = { "true" }, landlock = opts })
  return false
end

-- File system.
local rw = T.dir .. "/rw"
ns.mkdir(rw)
ns.write_file(T.dir .. "/secret", "s3cret\n")
if have(1, "fs", { ro = { "/" } }) then
  local ll = {
    namespaces = H.kinds(""),
    landlock = { ro = { "/usr", "/bin", "/lib", "/lib64", "/etc", "/proc" }, rw = { rw, "/dev/null" } },
  }
  local function sh(script) return H.run(ll, { argv = { "sh", "-c", script } }) end

  local r = sh("cat /etc/hostname >/dev/null && echo read-ok")
  T.eq("ro.read", r.stdout, "read-ok\n")
  r = sh("echo x > " .. rw .. "/f && cat " .. rw .. "/f")
  T.eq("rw.write", r.stdout, "x\n")
  r = sh("cat " .. T.dir .. "/secret")
  T.ne("outside.read", r.code, 0)
  T.has("outside.read.msg", r.stderr, "Permission denied")
  r = sh("echo x > /etc/nsrun-landlock-test")
  T.ne("ro.write", r.code, 0)
  r = sh("mkdir " .. T.dir .. "/newdir")
  T.ne("outside.mkdir", r.code, 0)
  T.eq("outside.mkdir.none", T.exists(T.dir .. "/newdir"), false)
  T.eq("nnp", H.status(ll).NoNewPrivs, "1")
  -- Control: without landlock the secret is readable.
  r = H.run({ namespaces = H.kinds("") }, { argv = { "cat", T.dir .. "/secret" } })
  T.eq("control.read", r.stdout, "s3cret\n")
  T.errmsg("bad.path", "landlock: open /nonexistent/nsrun", ns.run,
    { argv = { "true" }, landlock = { ro = { "/nonexistent/nsrun" } } })
end

-- TCP: connect and bind only to the listed ports.
if have(4, "tcp_connect", { tcp_connect = { port_ok } }) then
  local box = { landlock = { tcp_connect = { port_ok } } }
  T.eq("connect.listed", H.perl(box, CONNECT, port_ok).stdout, "0\n")
  T.eq("connect.unlisted", H.perl(box, CONNECT, port_no).stdout, EACCES)
  -- Controls: no landlock, and landlock without tcp_connect (the network
  -- is not restricted then).
  T.eq("control.connect", H.perl({}, CONNECT, port_no).stdout, "0\n")
  T.eq("control.connect.fs_only", H.perl({ landlock = { ro = { "/" } } }, CONNECT, port_no).stdout, "0\n")
  -- tcp_connect leaves bind alone.
  T.eq("connect.bind_free", H.perl(box, BIND, bind_no).stdout, "0\n")
end
if have(4, "tcp_bind", { tcp_bind = { bind_ok } }) then
  local box = { landlock = { tcp_bind = { bind_ok } } }
  T.eq("bind.listed", H.perl(box, BIND, bind_ok).stdout, "0\n")
  T.eq("bind.unlisted", H.perl(box, BIND, bind_no).stdout, EACCES)
  T.eq("control.bind", H.perl({}, BIND, bind_no).stdout, "0\n")
  -- An empty list: no bind at all.
  T.eq("bind.none", H.perl({ landlock = { tcp_bind = {} } }, BIND, bind_ok).stdout, EACCES)
end

-- Scopes.
if have(6, "scope", { scope = { "signal" } }) then
  T.eq("scope.abstract_unix", H.perl({ landlock = { scope = { "abstract_unix" } } }, UNIX, abstract).stdout, EPERM)
  T.eq("control.abstract_unix.other_scope", H.perl({ landlock = { scope = { "signal" } } }, UNIX, abstract).stdout, "0\n")
  T.eq("control.abstract_unix", H.perl({}, UNIX, abstract).stdout, "0\n")

  -- die_with_parent (the default) ends it should a check below fail.
  local victim = ns.spawn { argv = { "sleep", "30" } }
  local pid = tostring(victim.pid)
  local sig = { landlock = { scope = { "signal" } } }
  T.eq("scope.signal.probe", H.perl(sig, KILL, "0", pid).stdout, EPERM)
  T.eq("scope.signal.term", H.perl(sig, KILL, "TERM", pid).stdout, EPERM)
  T.eq("scope.signal.victim_alive", victim:try_wait(), nil)
  -- Control: another scope only; the signal arrives.
  T.eq("control.signal", H.perl({ landlock = { scope = { "abstract_unix" } } }, KILL, "TERM", pid).stdout, "0\n")
  T.eq("control.signal.victim_killed", victim:wait().signal, 15)
end

-- What the kernel is never asked: bad values are refused first.
T.errmsg("bad.key", "unknown option 'rww' (did you mean 'rw'?)", ns.run, { argv = { "true" }, landlock = { rww = {} } })
T.errmsg("bad.port.zero", "landlock.tcp_bind[1]: a port is a whole number from 1 to 65535, got 0", ns.run,
  { argv = { "true" }, landlock = { tcp_bind = { 0 } } })
T.errmsg("bad.port.big", "landlock.tcp_connect[2]: a port is a whole number from 1 to 65535, got 70000", ns.run,
  { argv = { "true" }, landlock = { tcp_connect = { 80, 70000 } } })
T.errmsg("bad.port.string", "got '80'", ns.run, { argv = { "true" }, landlock = { tcp_connect = { "80" } } })
T.errmsg("bad.port.fraction", "got 1.5", ns.run, { argv = { "true" }, landlock = { tcp_connect = { 1.5 } } })
T.errmsg("bad.port.not_list", "landlock.tcp_connect must be a list of ports", ns.run,
  { argv = { "true" }, landlock = { tcp_connect = 80 } })
T.errmsg("bad.scope", "unknown scope 'signl' (did you mean 'signal'?)", ns.run,
  { argv = { "true" }, landlock = { scope = { "signl" } } })
T.errmsg("bad.empty", "landlock: nothing to restrict", ns.run, { argv = { "true" }, landlock = {} })
print("done")
