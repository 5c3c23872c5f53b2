-- The escape battery: in a locked-down sandbox (user, pid, mount, net, ipc
-- and uts namespaces; a non-root uid; no capabilities; seccomp "default";
-- new_session) try the usual ways out. Every attempt must fail; each has a
-- control showing it would work without the lock-down, so no attempt
-- passes for a reason of its own.
--
-- arg[1]: a TCP port on the host's 127.0.0.1 that the test listens on.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

local port = assert(tonumber(arg[1]), "usage: hard_escape.lua PORT")
local host_pid = ns.getpid()
local ro = T.dir .. "/ro"
ns.mkdir(ro)
ns.chmod(ro, "0777")

local id = H.nonroot()
local box = {
  namespaces = "user,pid,mount,net,ipc,uts",
  uid_map = id.uid_map, gid_map = id.gid_map, uid = id.uid, gid = id.gid,
  caps = { keep = {} },
  seccomp = "default",
  new_session = true,
  setup = function()
    ns.mount("proc", "/proc", "proc", "nosuid,nodev,noexec")
    ns.bind(ro, ro, { ro = true })
  end,
  timeout = 20,
}
-- The control: the same program without the lock-down (host namespaces,
-- or for privileged attempts root of a plain user+mount namespace).
local open = { timeout = 20 }
local privileged = { namespaces = "user,mount,pid", timeout = 20 }

local attempts, blocked = 0, 0
local function attempt(name, argv, control_opts)
  attempts = attempts + 1
  local r = H.run(box, { argv = argv })
  local detail = (r.stdout .. r.stderr):gsub("\n", " | ")
  if r.code ~= 0 then
    blocked = blocked + 1
    print(("attempt %-22s blocked (code %d: %s)"):format(name, r.code, detail))
  else
    print(("attempt %-22s ESCAPED (%s)"):format(name, detail))
  end
  T.ne("escape." .. name, r.code, 0)
  if control_opts then
    local c = H.run(control_opts, { argv = argv })
    T.eq("control." .. name, c.code, 0)
  end
end

local function perl(code) return { "perl", "-e", code } end

-- 1. mount, by the mount tool and by the system call.
attempt("mount.tool", { "mount", "-t", "tmpfs", "none", "/mnt" }, privileged)
attempt("mount.syscall", perl('my ($s, $t, $f) = ("none", "/mnt", "tmpfs"); syscall(165, $s, $t, $f, 0, 0) == 0 or die "mount: $!\\n"'), privileged)
-- 2. ptrace a host process (nsrun itself) and the sandbox's own init.
attempt("ptrace.host", perl(('syscall(101, 16, %d, 0, 0) == 0 or die "ptrace: $!\\n"'):format(host_pid)))
attempt("ptrace.init", perl('syscall(101, 16, 1, 0, 0) == 0 or die "ptrace: $!\\n"'))
-- 3. see or signal host processes.
-- The sandbox may see its init and this perl, nothing more; nsrun's own
-- pid must not exist there.
local SEE = ([[
opendir(my $d, "/proc") or die; my $n = grep { /^\d+$/ } readdir($d);
my $host = -e "/proc/%d" ? 1 : 0;
print "processes $n, nsrun's pid visible: $host\n";
exit(($host || $n > 2) ? 0 : 1);
]]):format(host_pid)
attempt("see.host_processes", perl(SEE), open)
attempt("signal.host", perl(('kill(0, %d) or die "kill: $!\\n"'):format(host_pid)), open)
-- 4. write through a read-only bind, and remount it read-write.
attempt("write.ro_bind", { "sh", "-c", "echo x > " .. ro .. "/f" }, open)
attempt("remount.rw", { "mount", "-o", "remount,rw", ro }, nil)
-- 5. reach the host's network on loopback.
local CONNECT = ([[
use IO::Socket::INET;
IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => %d, Proto => "tcp", Timeout => 3)
  or die "connect: $!\n";
]]):format(port)
attempt("net.host_loopback", perl(CONNECT), open)
-- 6. push input into the terminal: there is no controlling terminal
--    (new_session), and TIOCSTI on the inherited fds fails.
attempt("tty.open", perl('open(my $t, "+<", "/dev/tty") or die "open /dev/tty: $!\\n"'))
attempt("tty.tiocsti", perl('my $c = "x"; for my $fd (0, 1, 2) { open(my $h, "+<&=", $fd) or next; exit 0 if ioctl($h, 0x5412, $c) } die "TIOCSTI: $!\\n"'))
--    And a real terminal: a pty whose slave is the controlling terminal of
--    another session (as the user's terminal would be) is the sandbox's
--    stdin. Neither TIOCSTI nor stealing it with TIOCSCTTY may work; the
--    holder reports what reached the terminal (its echo on the master).
local HOLDER = [[
use POSIX;
open(my $m, "+<", "/dev/ptmx") or die "ptmx: $!\n";
my $u = pack("i", 0); ioctl($m, 0x40045431, $u) or die "unlockpt: $!\n";
my $n = pack("i", 0); ioctl($m, 0x80045430, $n) or die "ptsname: $!\n";
my $pts = "/dev/pts/" . unpack("i", $n);
my $pid = fork // die;
if ($pid == 0) { POSIX::setsid(); open(my $s, "+<", $pts) or die "$pts: $!\n"; sleep 30; exit 0 }
sleep 1 until -e "/proc/$pid" && `cat /proc/$pid/stat` =~ /^\d+ \(.*?\) \S+ \d+ \d+ (\d+)/ && $1 == $pid;
$| = 1; print "$pts\n";
my $got = ""; my $rin = ""; vec($rin, fileno($m), 1) = 1;
my $end = time + 3;
while (time < $end) { my $r = $rin; if (select($r, undef, undef, 0.2)) { sysread($m, my $b, 100) or last; $got .= $b } }
print "got [$got]\n"; kill 9, $pid; waitpid($pid, 0);
]]
local holder = ns.spawn { argv = { "perl", "-e", HOLDER }, stdout = "pipe", timeout = 30 }
local pts = holder.stdout:read("l")
T.check("tty.pts", pts and pts:match("^/dev/pts/%d+$") ~= nil, tostring(pts))
local INJECT = 'my $ok = 0; for my $c (split //, $ARGV[0]) { $ok++ if ioctl(STDIN, 0x5412, $c) } ' ..
  'my $one = pack("i", 1); $ok++ if ioctl(STDIN, 0x540E, $one); exit($ok ? 0 : 1)'
attempts = attempts + 1
local r = H.run(box, { argv = { "perl", "-e", INJECT, "ESCAPE" }, stdin = pts })
if r.code ~= 0 then blocked = blocked + 1 end
print(("attempt %-22s %s (code %d)"):format("tty.tiocsti_pty", r.code ~= 0 and "blocked" or "ESCAPED", r.code))
T.ne("escape.tty.tiocsti_pty", r.code, 0)
if not T.user then
  -- Control: CAP_SYS_ADMIN may push into any terminal.
  r = H.run(open, { argv = { "perl", "-e", 'for my $c (split //, $ARGV[0]) { ioctl(STDIN, 0x5412, $c) or die "TIOCSTI: $!\\n" }', "CTRL" }, stdin = pts })
  T.eq("control.tty.tiocsti_pty", r.code, 0)
end
local report = holder.stdout:read("a")
holder:wait()
T.lacks("tty.nothing_injected", report, "ESCAPE")
if not T.user then T.has("tty.control_injected", report, "CTRL") end

-- 7. gain privileges: setuid binaries (no_new_privs ignores the bit) and
--    setuid(0) itself.
attempt("setuid.su", { "su", "-c", "id -u", "root" })
attempt("setuid.mount_binary", { "/usr/bin/mount", "-t", "tmpfs", "none", "/mnt" })
attempt("setuid.syscall", perl('$< = 0; $> = 0; $> == 0 or die "setuid: $!\\n"'), privileged)
-- 8. a new user namespace to regain capabilities.
attempt("userns.unshare", { "unshare", "-Ur", "true" }, privileged)
-- 9. capabilities: any at all.
attempt("caps.any", perl('open(my $f, "<", "/proc/self/status") or die; while (<$f>) { exit 0 if /^Cap(Eff|Prm|Amb|Bnd):\\s*0*[1-9a-f]/ } exit 1'), privileged)

print(("escape attempts: %d, blocked: %d"):format(attempts, blocked))
T.put("attempts", attempts)
T.put("blocked", blocked)
T.eq("all_blocked", blocked, attempts)
print("done")
