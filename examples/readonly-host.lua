-- readonly-host.lua: run a command on a read-only view of the host, with a
-- private /tmp, home directories hidden and no network.
--
--   nsrun examples/readonly-host.lua [COMMAND [ARG]...]      (as any user)
--
-- The bubblewrap equivalent: bwrap --unshare-all --ro-bind / / --proc /proc
--   --dev /dev --tmpfs /tmp --tmpfs /home --tmpfs /root --tmpfs /run CMD
local sandbox = require "nsrun.sandbox"

local argv = { ... }
if #argv == 0 then
  argv = { "sh", "-c", [[
    echo "user $(id -u) on $(hostname)"
    echo "network links: $(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
    echo "home: $(ls -A /home | wc -l) entries"
    touch /etc/nsrun-test 2>&1 | sed 's/^/write to \/etc: /'
    echo hello > /tmp/scratch && echo "private /tmp works: $(cat /tmp/scratch)"
  ]] }
end

return sandbox.spawn {
  argv = argv,
  binds = { { "/", "/", ro = true } },
  proc = "/proc",
  dev = "/dev",
  sys = "/sys",
  tmpfs = { "/tmp", "/home", "/root", "/run" },
  hostname = "readonly",
  net = "none",
}:wait()
