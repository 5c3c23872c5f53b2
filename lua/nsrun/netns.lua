-- nsrun.netns: named network namespaces, compatible with `ip netns` both
-- ways. A name is a file /run/netns/NAME onto which the namespace's nsfs
-- file is bind-mounted; `ip netns list/exec/delete` see what `add` makes
-- here, and this module sees what `ip netns add` makes.
--
--   local netns = require "nsrun.netns"
--   netns.add("blue")
--   netns.exec("blue", {"ip", "link"}, {stdout = "inherit"})
--   netns.delete("blue")
--
-- Like `ip netns`, it needs the right to mount in the mount namespace
-- /run/netns lives in (root, or root of a user namespace that owns a
-- mount namespace of its own).
local ns = require "nsrun"

local M = {}

---The directory the names live in (iproute2's NETNS_RUN_DIR). Change it
---only to keep a set of names apart from ip's, e.g. in tests.
M.dir = "/run/netns"

-- `level` is error's: 3 blames the caller of the function that calls this.
local function check_name(name, fname, level)
  level = level or 3
  if type(name) ~= "string" then
    error(string.format("bad argument #1 to '%s' (string expected, got %s)", fname, type(name)), level)
  end
  -- ip refuses the same: a name is one path component.
  if name == "" or name == "." or name == ".." or name:find("/", 1, true) or #name > 255 then
    error(string.format("%s: invalid network namespace name '%s'", fname, name), level)
  end
end

---The path of a named network namespace: `/run/netns/NAME`, usable
---wherever nsrun takes a namespace (`ns.setns`, `join = {net = ...}`,
---`ns.net.move`, `peer_netns`).
---@param name string
---@return string path
function M.path(name)
  check_name(name, "path")
  return M.dir .. "/" .. name
end

-- Make the directory a shared mount point, as `ip netns add` does: the
-- bind mounts made in it then propagate to every mount namespace that has
-- a copy of it, so a name made here is usable from those too (and one
-- made there, here). Not a mount point yet: bind it onto itself first.
local function shared_dir()
  ns.mkdir(M.dir, "0755", {parents = true})
  local ok, e = pcall(ns.mount, nil, M.dir, nil, "rec,shared")
  if not ok and type(e) == "table" and e.errno == "EINVAL" then
    ns.bind(M.dir, M.dir, {rec = true})
    ok, e = pcall(ns.mount, nil, M.dir, nil, "rec,shared")
  end
  if not ok then error(e, 0) end
end

---Create a new network namespace named `name` (`ip netns add NAME`).
---Its loopback is down, as ip leaves it.
---@param name string
function M.add(name)
  check_name(name, "add")
  local path = M.dir .. "/" .. name
  shared_dir()
  -- Anything but "no such file" means a file is there (ip makes them mode 0).
  local f, err = io.open(path, "r")
  if f then f:close() end
  if f or not tostring(err):find("No such file", 1, true) then
    error(string.format("add: cannot create namespace file %s: File exists", path), 2)
  end
  -- A child makes the namespace, so the caller keeps its own; it waits
  -- on its stdin while we bind its namespace here (so a failure is ours
  -- to raise, with the errno), then ends.
  local child = ns.spawn{fn = function() io.read("a") return 0 end, namespaces = "net", stdin = "pipe"}
  local ok, e = pcall(ns.persist, "net", child.pid, path)
  child.stdin:close()
  child:wait()
  if not ok then error(e, 2) end
end

---Delete a named network namespace (`ip netns delete NAME`): detach the
---mount and remove the file. The namespace itself lives on while a
---process is in it or holds it open.
---@param name string
function M.delete(name)
  check_name(name, "delete")
  local path = M.dir .. "/" .. name
  -- As ip does: a file that is no longer a mount point (stale) is removed
  -- all the same, and only a missing file is an error.
  pcall(ns.umount, path, "detach")
  local ok, err = os.remove(path)
  if not ok then
    error(string.format("delete: cannot remove namespace file %s: %s", path, err), 2)
  end
end

---The names, sorted (`ip netns list`).
---@return string[] names
function M.list()
  local ok, entries = pcall(ns.readdir, M.dir)
  if not ok then
    -- No directory yet: no names (ip prints nothing either).
    if type(entries) == "table" and entries.errno == "ENOENT" then return {} end
    error(entries, 0)
  end
  local names = {}
  for _, e in ipairs(entries) do
    local n = type(e) == "table" and e.name or e
    if n ~= "." and n ~= ".." then names[#names + 1] = n end
  end
  table.sort(names)
  return names
end

-- Called by exec and spawn: errors at level 4 blame their caller.
local function spawn_opts(name, argv, opts, fname)
  check_name(name, fname, 4)
  if type(argv) ~= "table" then
    error(string.format("bad argument #2 to '%s' (table expected, got %s)", fname, type(argv)), 4)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("bad argument #3 to '%s' (table expected, got %s)", fname, type(opts)), 4)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.argv = argv
  local join = {}
  for k, v in pairs(o.join or {}) do join[k] = v end
  join.net = M.dir .. "/" .. name
  o.join = join
  return o
end

---Run `argv` in a named network namespace and wait (`ip netns exec NAME
---CMD`): `ns.run` with `join = {net = path}` added to `opts`, so it
---returns the status with `stdout` and `stderr` captured unless `opts`
---says otherwise.
---@param name string
---@param argv string[]
---@param opts? nsrun.SpawnOpts
---@return nsrun.Status status
function M.exec(name, argv, opts)
  return ns.run(spawn_opts(name, argv, opts, "exec"))
end

---Start `argv` in a named network namespace and return the process
---(`ns.spawn` with `join = {net = path}` added to `opts`).
---@param name string
---@param argv string[]
---@param opts? nsrun.SpawnOpts
---@return nsrun.Process
function M.spawn(name, argv, opts)
  return ns.spawn(spawn_opts(name, argv, opts, "spawn"))
end

return M
