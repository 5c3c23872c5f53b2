-- shell.lua: an interactive shell in a sandbox, on a terminal of its own:
-- the host's /usr read-only, a private home, /tmp and /dev, no network.
--
--   nsrun examples/shell.lua [SHELL [ARG]...]          (as any user)
--
-- Run from a terminal, nsrun relays it (raw; window size passed on; the
-- terminal's modes come back when the shell ends); Ctrl-C and Ctrl-Z reach
-- the shell's jobs through the sandbox's own terminal, which `tty` names
-- as /dev/console. The shell's exit status is nsrun's.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"

local argv = { ... }
if #argv == 0 then argv = { "/bin/bash", "--norc", "--noprofile", "-i" } end

return sandbox.spawn {
  argv = argv,
  -- Not from a pipe: the streams are then passed on as they are.
  tty = ns.ttyname(0) ~= nil,
  binds = { { "/usr", "/usr", ro = true } },
  -- Debian's merged /usr: the rest of the root is links into it.
  symlinks = { ["/bin"] = "usr/bin", ["/sbin"] = "usr/sbin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64" },
  proc = "/proc",
  dev = "/dev",
  tmpfs = { "/tmp", "/home/user" },
  files = { ["/etc/passwd"] = "user:x:1000:1000:user:/home/user:/bin/bash\n",
            ["/etc/group"] = "user:x:1000:\n" },
  uid = 1000, gid = 1000,
  chdir = "/home/user",
  hostname = "sandbox",
  net = "none",
  clear_env = true,
  env = { HOME = "/home/user", USER = "user", TERM = os.getenv("TERM") or "xterm",
          PATH = "/usr/local/bin:/usr/bin:/bin", PS1 = "sandbox$ " },
}:wait()
