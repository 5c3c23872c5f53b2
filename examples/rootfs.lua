-- rootfs.lua: run a command in a separate root directory.
--
--   nsrun examples/rootfs.lua [ROOTFS] [-- COMMAND [ARG]...]   (as any user)
--
-- With ROOTFS (for example a tree made by `debootstrap bookworm ROOTFS`) that
-- directory becomes /. Without, a minimal root is assembled from the host's
-- /usr, read-only, with its own /etc/passwd and /etc/group.
local sandbox = require "nsrun.sandbox"
local ns = require "nsrun"

local root, argv = nil, {}
local i = 1
if arg[1] and arg[1] ~= "--" then root, i = arg[1], 2 end
if arg[i] == "--" then i = i + 1 end
for j = i, #arg do argv[#argv + 1] = arg[j] end
if #argv == 0 then argv = { "sh", "-c", "cat /etc/os-release 2>/dev/null | head -1; id; ls /" } end

local opts = {
  argv = argv,
  proc = "/proc",
  dev = "/dev",
  tmpfs = { "/tmp" },
  hostname = "rootfs",
  env = { PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME = "/root" },
  chdir = "/",
  -- Root of the container, as podman's default: the caller mapped to uid 0,
  -- still with no capabilities (a sandbox keeps none unless named in caps).
  uid = 0, gid = 0,
}
if root then
  -- Resolved here, in the caller's directory (the kernel's idea of it:
  -- $PWD may be unset, or stale after a chdir).
  root = ns.realpath(root)
  opts.root = root
else
  opts.binds = { { "/usr", "/usr", ro = true } }
  opts.symlinks = { ["/bin"] = "usr/bin", ["/sbin"] = "usr/sbin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64" }
  opts.files = {
    ["/etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n",
    ["/etc/group"] = "root:x:0:\nnogroup:x:65534:\n",
    ["/etc/hostname"] = "rootfs\n",
  }
  opts.dirs = { { "/root", mode = "0700" } }
end

return sandbox.spawn(opts):wait()
