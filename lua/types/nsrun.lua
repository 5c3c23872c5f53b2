---@meta nsrun

-- LuaLS type stubs for `local ns = require "nsrun"`: the module nsrun's
-- Rust bindings (src/bindings/*.rs) register. Nothing here runs; nsrun
-- ships the module inside its binary. `.luarc.json` at the repository root
-- points lua-language-server at this directory.
--
-- tests/stubs.rs keeps this file and the bindings in sync, both ways. It
-- reads this file line by line, so keep to these conventions:
--
--   * A module function is one line `function ns.NAME(ARGS) end`; a
--     function of a subtable `function ns.SUB.NAME(ARGS) end`.
--   * A module value that is not a function is `ns.NAME = VALUE` (so a
--     subtable is `ns.SUB = {}`).
--   * A method is one line `function CLASS:NAME(ARGS) end`, CLASS being
--     one of the locals `Process`, `Pipe`, `NsHandle`, `Cgroup`, `Root` or
--     `Channel` (the userdata types nsrun.Process, nsrun.Pipe,
--     nsrun.NsHandle, nsrun.Cgroup, nsrun.Root, nsrun.Channel).
--   * A field is a `---@field NAME TYPE ...` line in the block of `---`
--     lines that starts at its `---@class nsrun.CLASS` line. The test
--     compares the fields of these classes with what the binary reports:
--     nsrun.Process, nsrun.NsHandle (userdata fields), nsrun.Status (keys of
--     an ns.run result), nsrun.Error (keys of a system-call error) and the
--     options tables nsrun.SpawnOpts, nsrun.BindOpts, nsrun.MkdirOpts,
--     nsrun.ExecOpts, nsrun.MountOpts, nsrun.TimeOffsets, nsrun.VethOpts,
--     nsrun.RouteOpts, nsrun.SetnsOpts (the keys their function accepts).
--   * Every function and method has a one-line description, `---@param`
--     for each argument and `---@return` for each result (none: it returns
--     nothing).
--
-- The stdlib modules nsrun.sandbox and nsrun.netns are plain Lua with their
-- own annotations (lua/nsrun/sandbox.lua, lua/nsrun/netns.lua).

------------------------------------------------------------------------
-- Names and small types
------------------------------------------------------------------------

---A namespace kind. `"mnt"` is the same as `"mount"` and `"network"` the
---same as `"net"`.
---@alias nsrun.Kind
---| "user"
---| "mount"
---| "mnt"
---| "pid"
---| "uts"
---| "ipc"
---| "net"
---| "network"
---| "cgroup"
---| "time"

---A set of namespace kinds: a list `{"user", "pid"}` or a comma string
---`"user,pid"` (a single kind is a one-element comma string).
---@alias nsrun.Kinds nsrun.Kind[] | nsrun.Kind | string

---A mount flag name; case does not matter and an `ms_` prefix is allowed.
---@alias nsrun.MountFlag
---| "bind"
---| "rec"
---| "ro"
---| "rdonly"
---| "rw"
---| "nosuid"
---| "nodev"
---| "noexec"
---| "remount"
---| "private"
---| "slave"
---| "shared"
---| "unbindable"
---| "move"
---| "relatime"
---| "noatime"
---| "strictatime"
---| "nodiratime"
---| "lazytime"
---| "sync"
---| "dirsync"
---| "silent"
---| "rbind"
---| "rprivate"
---| "rslave"
---| "rshared"
---| "runbindable"

---Mount flags: a list `{"bind", "rec", "ro"}` or a comma string `"bind,rec,ro"`.
---@alias nsrun.MountFlags nsrun.MountFlag[] | nsrun.MountFlag | string

---A umount2(2) flag name.
---@alias nsrun.UmountFlag "detach" | "force" | "expire" | "nofollow"

---umount flags: a list or a comma string.
---@alias nsrun.UmountFlags nsrun.UmountFlag[] | nsrun.UmountFlag | string

---A process id, or `"self"` for the calling process.
---@alias nsrun.Pid integer | "self"

---A signal: a number (0 to 64) or a name with or without `SIG` (`"TERM"`, `"SIGKILL"`).
---@alias nsrun.Signal integer | string

---A file mode: an octal string (`"0755"`, `"755"`, `"1777"`). Numbers are refused: Lua has no
---octal literals, so `0755` would be the decimal 755 (mode 01363).
---@alias nsrun.Mode string

---A namespace to join: a pid, a path (`/proc/42/ns/net`, a persisted file), a handle, or a process (its pid).
---@alias nsrun.NsTarget integer | string | nsrun.NsHandle | nsrun.Process

---One id-map range `{inside, outside, count}`.
---@alias nsrun.IdRange integer[] | nsrun.IdRangeNamed

---An id map: a list of ranges; a single range may be given on its own.
---@alias nsrun.IdMap nsrun.IdRange[] | nsrun.IdRange

---An id map for ns.spawn: `"root"` maps the caller to 0, `"self"` maps it to itself.
---@alias nsrun.SpawnIdMap "root" | "self" | nsrun.IdMap

---Where a child's standard stream goes: `"inherit"`, `"null"`, `"pipe"`, a path, or an fd number.
---@alias nsrun.Stdio "inherit" | "null" | "pipe" | string | integer | nsrun.Pipe | file*

---What a child function may return to set its exit code: an integer, a
---status (its `code`), `true` (0) / `false` (1), or nothing (0).
---@alias nsrun.ExitValue integer | boolean | nsrun.Status | nil

---An environment: names to values; `false` removes the variable.
---@alias nsrun.Env table<string, string | number | false>

---A Pipe:read format: `"a"` all, `"l"` a line without its newline, `"L"`
---with it (a leading `*` is allowed), or a byte count.
---@alias nsrun.ReadFormat "a" | "l" | "L" | "*a" | "*l" | "*L" | integer

------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------

---One id-map range with named fields.
---@class nsrun.IdRangeNamed
---@field inside integer first id inside the namespace
---@field outside integer first id outside (in the parent user namespace)
---@field count integer number of ids

---Options of ns.spawn and ns.run. All are optional except one of `argv`/`fn`.
---@class nsrun.SpawnOpts
---@field argv? string[] program and arguments; `PATH` is searched
---@field fn? fun(): nsrun.ExitValue a function to run in the child instead of exec; its result is the exit code
---@field namespaces? nsrun.Kinds kinds to create new
---@field join? table<nsrun.Kind, nsrun.NsTarget> kinds to join instead of creating, e.g. `{net = handle}`
---@field uid_map? nsrun.SpawnIdMap uid map; default `"root"` when `"user"` is new
---@field gid_map? nsrun.SpawnIdMap gid map; default `"root"` when `"user"` is new
---@field setgroups? "deny" | "allow" default `"deny"` when unprivileged
---@field uid? integer uid to switch to inside, after the maps
---@field gid? integer gid to switch to inside, after the maps
---@field groups? integer[] supplementary groups inside
---@field hostname? string needs `"uts"`
---@field domainname? string needs `"uts"`
---@field time_offsets? nsrun.TimeOffsets clock offsets; needs `"time"`
---@field setup? fun() run in the child after namespaces and maps, before exec (mounts go here)
---@field before_start? fun(proc: nsrun.Process) run in the parent once the child exists, before it goes on (the process is waiting: do not :wait() it here)
---@field env? nsrun.Env variables to set (`false` removes one)
---@field clear_env? boolean start from an empty environment
---@field cwd? string working directory inside
---@field argv0? string `argv[0]` as the program sees it
---@field stdin? nsrun.Stdio default `"inherit"`; another process's `stdout` pipe makes a pipeline (that pipe is then the new process's alone)
---@field input? string bytes for stdin (a sealed memfd, any size, never blocks); not with `stdin`
---@field stdout? nsrun.Stdio default `"inherit"` (`"pipe"` for ns.run)
---@field stderr? nsrun.Stdio default `"inherit"` (`"pipe"` for ns.run)
---@field keep_fds? integer[] fds beyond 0-2 to pass on; every other fd is closed in the child
---@field lock_files? string[] paths (inside, after setup) to hold a shared fcntl lock on while the sandbox runs (bubblewrap's --lock-file); PID 1 holds them when there is an init
---@field parent_fds? integer[] fds only the parent uses (a report it writes while the child waits): the child closes its copies first thing
---@field set_pwd? boolean set PWD to the directory the program starts in (default false)
---@field nested_user? {uid: integer, gid: integer} run the program in a user namespace nested in the new one, as these ids there (mapped to its ids after the maps): the sandbox's namespaces then belong to one it holds no capability in (bubblewrap's way for unprivileged callers)
---@field gate? string a FIFO: the process stops right before its exec (set up, seccomp and exec left) until a byte is written into it; spawn returns once it waits there, and it does not die with nsrun (an OCI runtime's create/start)
---@field init? boolean a small init as PID 1 (default true when `"pid"` is new)
---@field die_with_parent? boolean kill the child if nsrun dies (default true)
---@field new_session? boolean setsid() in the child
---@field timeout? number seconds; then the process tree is killed and the status says `timed_out`
---@field mount_proc? boolean|string a fresh proc on /proc (or this existing absolute path) before `setup`, as `unshare --mount-proc`; needs "mount"
---@field propagation? "slave"|"private"|"shared"|"unchanged" how `/` propagates in a new mount namespace, set before anything is mounted (default "slave": host mounts arrive, none leave)
---@field caps? nsrun.CapsOpts capabilities to keep or drop (default: none when `uid` is not 0)
---@field no_new_privs? boolean PR_SET_NO_NEW_PRIVS before exec (default true with `seccomp`)
---@field seccomp? "default"|nsrun.SeccompOpts a seccomp filter, installed last, right before exec; `"default"` is the preset (README: what it denies and why); on x86_64 every filter also kills x32 calls
---@field rlimits? table<nsrun.RlimitName, integer|string|(integer|string)[]> resource limits: a count, a size such as `"256M"`, `"unlimited"`, or `{soft, hard}`
---@field cgroup? nsrun.CgroupOpts a fresh cgroup with limits, removed when the process is reaped
---@field disable_userns? boolean forbid further user namespaces in the sandbox (needs `"user"`)
---@field new_keyring? boolean a new, empty session keyring for the program instead of the caller's
---@field tty_guard? boolean refuse the ioctls TIOCSTI and TIOCLINUX (typing into a terminal), with or without another filter
---@field tty? boolean|"master" a new pseudo-terminal: its slave on each of stdin/stdout/stderr left unset (or `"inherit"`), the controlling terminal of a new session. With nsrun's stdin a terminal, `wait` relays it (raw, window size passed on, modes restored); otherwise, or with `"master"`, the master is `p.tty`
---@field landlock? nsrun.LandlockOpts Landlock: files only below these paths, TCP only to these ports, sockets and signals kept in; an error if the kernel's ABI cannot enforce it
---@field channel? boolean|integer a channel to the child: with `fn`, `true` hands the function its end as its argument; with `argv`, the program gets its end on this fd (3 or more; `true` is 3); ours is `p.channel`
---@field net? "pasta"|"slirp4netns" connect the new network namespace (needs "net", no `join`) to the caller's network through that user-mode network tool (pasta falls back to slirp4netns where it is missing); it runs until the process is reaped
---@field ports? (string|nsrun.PortOpts)[] ports published from the caller's network, as `podman run -p`: `"8080:80"`, `"127.0.0.1:8443:443"`, `"5353:53/udp"` (needs `net`)

---A published port.
---@class nsrun.PortOpts
---@field host integer the port on the caller's side
---@field guest? integer the port inside (default: `host`)
---@field proto? "tcp"|"udp" default `"tcp"`
---@field addr? string the caller's address to listen on (default: all)

---What `net = NAME` runs: the tool, its path, and its DNS forwarder's address inside.
---@class nsrun.UserNet
---@field tool "pasta"|"slirp4netns"
---@field path string
---@field dns string `"169.254.1.1"` (pasta) or `"10.0.2.3"` (slirp4netns)

---Capabilities: names such as `"CAP_NET_ADMIN"` or `"net_admin"`.
---@class nsrun.CapsOpts
---@field bounding? string[] only the bounding set, down to these; the other sets stay (a uid-0 program then has exactly these after exec)
---@field sets? string[] only these in the permitted, effective, inheritable and ambient sets; the bounding set stays as it is
---@field keep? string[] keep only these, in every set (bounding, permitted, effective, inheritable, ambient)
---@field drop? string[] keep all but these

---A seccomp filter. Calls in `deny` get `action`; with `allow`, every call
---not listed gets `default`.
---@class nsrun.SeccompOpts
---@field default? "allow"|"errno"|"kill"|"log" what unlisted calls get (default `"allow"`)
---@field allow? string[] system calls that run
---@field deny? string[] system calls that get `action`
---@field errno? string the errno of the `"errno"` actions (default `"EPERM"`)
---@field action? "errno"|"kill"|"log" what denied calls get (default `"errno"`)
---@field bpf? string|string[] compiled classic BPF programs (the kernel's sock_filter array, as libseccomp's seccomp_export_bpf writes it), installed as they are

---@alias nsrun.RlimitName "as"|"core"|"cpu"|"data"|"fsize"|"locks"|"memlock"|"msgqueue"|"nice"|"nofile"|"nproc"|"rss"|"rtprio"|"rttime"|"sigpending"|"stack"

---Landlock rules: paths as the sandbox sees them (after `setup`). Only
---what is given is restricted (no `ro`/`rw`: files are not; no
---`tcp_connect`: connects are not). Needs Landlock ABI 1 (Linux 5.13) for
---`ro`/`rw`, 4 (6.7) for `tcp_*`, 6 (6.12) for `scope`; else ns.spawn fails.
---@class nsrun.LandlockOpts
---@field ro? string[] read files, list directories and execute below these
---@field rw? string[] anything below these
---@field tcp_bind? integer[] TCP bind only to these ports (1-65535; `{}`: none)
---@field tcp_connect? integer[] TCP connect only to these ports (1-65535; `{}`: none)
---@field scope? ("abstract_unix"|"signal")[] no connecting to abstract unix sockets, no signals, outside the sandbox's Landlock domain

---Cgroup limits.
---@class nsrun.CgroupOpts
---@field memory? integer|string bytes, or a size such as `"256M"`
---@field pids? integer most tasks at once
---@field cpu? number CPUs' worth of time (0.5 = half of one)

---What a cgroup used; a field is nil when the host cannot tell.
---@class nsrun.CgroupStats
---@field memory_peak? integer most bytes in use at once
---@field memory_current? integer bytes in use now
---@field pids_current? integer tasks in it now
---@field cpu_usec? integer CPU time used, in microseconds
---@field oom_kills? integer processes the OOM killer killed in it

---A cgroup made by ns.cgroup (v2, or one directory per v1 controller
---where that is what the host has). `local cg <close> = ns.cgroup{...}`
---removes it at the end of the scope; so does garbage collection.
---@class nsrun.Cgroup
---@field name string its directory name
---@field paths string[] its directories
local Cgroup = {}

---Move a process into it.
---@param pid integer|nsrun.Process
function Cgroup:add(pid) end

---Change a limit.
---@param key "memory"|"pids"|"cpu"
---@param value integer|number|string a number, a size such as `"256M"`, or `"max"`
function Cgroup:set(key, value) end

---What it used so far.
---@return nsrun.CgroupStats
function Cgroup:stats() end

---The pids in it.
---@return integer[]
function Cgroup:pids() end

---Kill every process left in it and remove it.
function Cgroup:close() end

---Clock offsets of a new time namespace, in seconds.
---@class nsrun.TimeOffsets
---@field monotonic? integer offset of CLOCK_MONOTONIC
---@field boottime? integer offset of CLOCK_BOOTTIME

---Options of ns.bind.
---@class nsrun.BindOpts
---@field ro? boolean read-only (default false)
---@field rec? boolean recursive, with the mounts below (default true)
---@field create? boolean create the target file or directory if missing (default false)
---@field nosuid? boolean no set-user-id programs through the bind (default false)
---@field nodev? boolean no device nodes through the bind (default false)

---Options of Root:bind: those of ns.bind and `try`.
---@class nsrun.RootBindOpts
---@field ro? boolean read-only (default false)
---@field rec? boolean recursive, with the mounts below (default true)
---@field create? boolean create the target file or directory (like the source) and its parents if missing (default false)
---@field nosuid? boolean no set-user-id programs through the bind (default false)
---@field nodev? boolean no device nodes through the bind (default false)
---@field try? boolean a missing source is no error: nothing is bound (default false)

---Options of ns.mkdir.
---@class nsrun.MkdirOpts
---@field parents? boolean create missing parents, like `mkdir -p`

---Options of ns.exec.
---@class nsrun.ExecOpts
---@field env? nsrun.Env the whole environment, replacing ours (`false` entries are left out)
---@field cwd? string directory to change to first
---@field argv0? string `argv[0]` as the program sees it

---The table form of ns.mount.
---@class nsrun.MountOpts
---@field source? string
---@field target string
---@field fstype? string
---@field flags? nsrun.MountFlags
---@field data? string

---How a process ended. `code` follows the shell: 128+N when killed by signal N.
---@class nsrun.Status
---@field code integer exit code, or 128+signal
---@field signal? integer the signal that killed it
---@field core_dumped boolean
---@field timed_out boolean killed because the `timeout` ran out
---@field success boolean exited 0 and did not time out
---@field stdout? string ns.run only: what it wrote (nil unless stdout was a pipe)
---@field stderr? string ns.run only: what it wrote (nil unless stderr was a pipe)

---The value a failed system call raises (argument mistakes raise plain
---strings). `tostring(e)` gives `where: message` and a `hint:` line.
---@class nsrun.Error
---@field op string the operation and its main arguments, e.g. `mount tmpfs on /tmp`
---@field errno string the errno name, e.g. `"EPERM"`
---@field code integer the errno number
---@field message string e.g. `mount tmpfs on /tmp: Operation not permitted (EPERM)`
---@field hint? string the usual cause, where one is known
---@field where? string the caller's position, e.g. `recipe.lua:12`

------------------------------------------------------------------------
-- Userdata
------------------------------------------------------------------------

---A child process, from ns.fork, ns.clone or ns.spawn.
---`local p <close> = ns.spawn{…}` kills and reaps it at the end of the
---scope if it still runs, and closes its pipes.
---@class nsrun.Process
---@field pid integer
---@field stdin? nsrun.Pipe write end, when stdin was `"pipe"`
---@field stdout? nsrun.Pipe read end, when stdout was `"pipe"`
---@field stderr? nsrun.Pipe read end, when stderr was `"pipe"`
---@field channel? nsrun.Channel our end, with the `channel` option
---@field tty? nsrun.Pipe the master end of its terminal, read and written (`tty = "master"`, or `tty = true` when nsrun's stdin is not a terminal); end of file once every slave end is closed
local Process = {}

---Wait for the process to end: closes our end of its stdin first, and its
---pipes once it is reaped (reads then return what it wrote, then EOF).
---@return nsrun.Status
function Process:wait() end

---The pid of the network tool serving it (`net`), until it is reaped; else nil.
---@return integer?
function Process:net_pid() end

---The status if the process has ended, else nil; does not block.
---@return nsrun.Status?
function Process:try_wait() end

---Leave the process to whoever adopts it when this program exits (a child
---subreaper such as conmon or containerd's shim): this handle never waits
---for it again, not even to reap it when collected, so its exit status
---stays for the adopter. `wait` then fails.
function Process:disown() end

---Send a signal (default TERM); false if the process was already reaped.
---@param sig? nsrun.Signal
---@return boolean sent
function Process:kill(sig) end

---A handle for one of the process's namespaces; for pid and time the one its children get where that differs (a spawned program behind the relay that unshared them).
---@param kind nsrun.Kind
---@return nsrun.NsHandle
function Process:ns(kind) end


---Read its piped stdout and stderr to the end, then wait.
---@return nsrun.Status status
---@return string? stdout nil unless stdout was a pipe
---@return string? stderr nil unless stderr was a pipe
function Process:output() end

---Set the size of its terminal (`tty = true`); the program gets SIGWINCH.
---@param rows integer 1 to 65535
---@param cols integer 1 to 65535
function Process:resize(rows, cols) end

---What its cgroup (the `cgroup` option) used: while it runs, or at its end.
---@return nsrun.CgroupStats? stats nil without the `cgroup` option
function Process:cgroup_stats() end

---One end of a pipe to a child (`p.stdin`, `p.stdout`, `p.stderr`);
---`local out <close> = p.stdout` closes it at the end of the scope.
---@class nsrun.Pipe
local Pipe = {}

---Read from the read end; nil at end of file. With the process's `timeout`
---passed, it is killed and the read returns what came.
---@param fmt? nsrun.ReadFormat default `"l"`
---@return string?
function Pipe:read(fmt) end

---An iterator over reads of `fmt`, for `for line in p.stdout:lines() do`.
---@param fmt? nsrun.ReadFormat default `"l"`
---@return fun(): string?
function Pipe:lines(fmt) end

---Write strings to the write end; raises "timed out after N s" when the
---process's `timeout` passes first (it is killed).
---@param ... string
---@return nsrun.Pipe self
function Pipe:write(...) end

---Close this end (a child reading stdin sees end of file).
function Pipe:close() end

---One end of a channel (`p.channel`, the argument of a spawned `fn` with
---`channel = true`, ns.socketpair, ns.channel): messages of Lua values
---(nil, booleans, numbers, strings, tables without cycles) and fds (Lua
---files, pipes, channels, namespace handles). A received fd is a channel
---(one sent as a channel), a namespace handle (a namespace file) or else a
---Lua file opened as its access mode allows. A peer that closed or died
---reads as `nil, "closed"`. `local c <close> = ...` closes it. The wire
---format (for programs that are not Lua) is in the README.
---@class nsrun.Channel
local Channel = {}

---Send one message of one value or more; `nil, "closed"` when the peer is
---gone. A value that cannot go raises an error naming it (`value #2.x[3] is a function`).
---@param ... any
---@return true|nil sent
---@return "closed"? why
function Channel:send(...) end

---Receive one message: its values; `nil, "closed"` once the peer is gone
---(or this end closed), `nil, "timeout"` when nothing came in time.
---@param timeout? number seconds (default: wait as long as it takes)
---@return any ...
function Channel:recv(timeout) end

---Close this end: the peer reads the channel as closed.
function Channel:close() end

---The socket's fd number; nil once closed.
---@return integer?
function Channel:fd() end

---An open namespace file. Its fields are nil once it is closed. Handles
---compare equal (`==`) when they are the same namespace; `tostring` gives
---`namespace net:[4026531840]`; `local h <close> = ns.open("net")` closes it.
---Options of ns.setns.
---@class nsrun.SetnsOpts
---@field preserve_credentials? boolean keep the uid, gid and groups after joining a user namespace (nsenter --preserve-credentials); default false: become uid/gid 0 there

---Options of ns.net.veth.
---@class nsrun.VethOpts
---@field peer_netns? nsrun.NsTarget create the peer end directly in this network namespace

---Options of ns.net.route.
---@class nsrun.RouteOpts
---@field via? string the gateway, an IPv4 or IPv6 address
---@field dev? string the outgoing interface

---A link as ns.net.links lists it.
---@class nsrun.Link
---@field name string
---@field index integer
---@field up boolean administratively up
---@field mtu integer
---@field mac? string the hardware address (`"02:00:5e:10:00:01"`), where the link has one
---@field addrs string[] `"10.0.0.1/24"`, `"fd00::1/64"`, IPv4 first

---@class nsrun.NsHandle
---@field kind? nsrun.Kind canonical kind name (`"mount"`, never `"mnt"`)
---@field inode? integer the namespace's inode number
---@field fd? integer the open file descriptor
---@field path? string the file it was opened from
local NsHandle = {}

---Close the handle and its file descriptor.
function NsHandle:close() end

---Join this namespace (setns).
function NsHandle:enter() end

---A directory to build in whose contents nobody vouches for (an unpacked
---image, a tree holding the user's binds), from ns.root. Every path given
---to its methods is resolved inside it (openat2 RESOLVE_IN_ROOT |
---RESOLVE_NO_MAGICLINKS): absolute symlinks and `..` stay inside, magic
---links such as `/proc/self/root` are refused, and mounts attach through
---the resolved fd, so neither a symlink nor one swapped in meanwhile leads
---outside. Sources (of bind, overlay layers, `from`) are the caller's own
---paths, resolved as usual. `local r <close> = ns.root(dir)` closes it.
---@class nsrun.Root
---@field path? string the directory, as given (nil once closed)
---@field fd? integer the O_PATH file descriptor (nil once closed or under --plan)
local Root = {}

---Close the handle and its file descriptors.
function Root:close() end

---Create a directory inside the root (mode default 0755, applied exactly).
---@param path string
---@param mode? nsrun.Mode
---@param opts? nsrun.MkdirOpts
function Root:mkdir(path, mode, opts) end

---Create or truncate a file inside the root and write `data`; a final symlink is refused (ELOOP), never followed.
---@param path string
---@param data string
---@param mode? nsrun.Mode default 0644, applied exactly
function Root:write_file(path, data, mode) end

---Create a symlink inside the root (an existing one with the same target is fine).
---@param target string where it points (taken as it is)
---@param linkpath string
function Root:symlink(target, linkpath) end

---chmod a path inside the root (a final symlink is followed, inside the root).
---@param path string
---@param mode nsrun.Mode
function Root:chmod(path, mode) end

---Bind `source` (the caller's path) on `dest` inside the root, with open_tree and move_mount; all or nothing. Returns false when `try` and the source is missing.
---@param source string
---@param dest string
---@param opts? nsrun.RootBindOpts
---@return boolean bound
function Root:bind(source, dest, opts) end

---A tmpfs (nosuid,nodev) on `path` inside the root, made if missing.
---@param path string
---@param opts? {size?: integer|string, mode?: string}
function Root:tmpfs(path, opts) end

---A fresh proc (nosuid,nodev,noexec) on `path` inside the root; `readonly` paths of it are bound onto themselves read-only (recursively), `mask` paths covered by an empty read-only file or directory; missing ones are skipped.
---@param path string
---@param opts? {readonly?: string[], mask?: string[]} paths relative to the proc, e.g. `{"sys"}`, `{"kcore"}`
function Root:mount_proc(path, opts) end

---A minimal /dev on `path` inside the root (see ns.mount_dev).
---@param path string
---@param opts? {from?: string} where the host's /dev is seen from here (default "/dev")
function Root:mount_dev(path, opts) end

---A POSIX message queue file system on `path` inside the root.
---@param path string
function Root:mount_mqueue(path) end

---A read-only sysfs on `path` inside the root (the host's bound read-only where sysfs may not be mounted); `mask` paths of it covered.
---@param path string
---@param opts? {from?: string, mask?: string[]} `from`: the host's /sys seen from here; `mask`: relative paths, e.g. `{"firmware"}`
function Root:mount_sysfs(path, opts) end

---overlayfs (nosuid,nodev) on `path` inside the root; the layers are the caller's paths; a `tmpfs_upper` is handed over by fd and never reachable by path.
---@param path string
---@param opts {lower: string|string[], upper?: string, work?: string, tmpfs_upper?: boolean, userxattr?: boolean} `userxattr` (needed in a user namespace) is guessed from /proc when nil
function Root:overlay(path, opts) end

---Make `path` inside the root read-only with every mount below it (unless `rec = false`); a path that is not the top of a mount is bound onto itself first.
---@param path string
---@param opts? {rec?: boolean}
function Root:remount_ro(path, opts) end

---Mount a file system of any type on `path` inside the root (a directory, made if missing):
---`options` as mount(8) takes them; `ro nosuid nodev noexec noatime strictatime nodiratime
---nosymfollow` are the mount's attributes, the rest (`mode=620`, `newinstance`, `gid=5`) the file
---system's parameters (what an OCI bundle's devpts or cgroup2 mount needs).
---@param path string
---@param opts {type: string, source?: string, options?: string[]}
function Root:mount(path, opts) end

---Cover `path` inside the root with an empty read-only file or directory, whichever it is
---(OCI's maskedPaths). Returns false when nothing is there.
---@param path string
---@return boolean
function Root:mask(path) end

------------------------------------------------------------------------
-- The module
------------------------------------------------------------------------

---@class nsrun
local ns = {}

---The nsrun version, e.g. `"0.1.0"`.
---@type string
ns.version = ""

---The option names `ns.spawn` and `ns.run` accept, sorted (`sandbox.run`
---passes those it does not handle itself on to `ns.spawn`).
---@return string[]
function ns.spawn_options() end

-- Namespaces

---Move the calling process into new namespaces (unshare(2)); a new pid namespace takes effect for its next child. A new mount namespace is made private first (`mount / rec,private`, as `unshare(1)` does), so nothing mounted in it reaches the host; `opts.propagation` chooses otherwise.
---@param kinds nsrun.Kinds
---@param opts? nsrun.NewMountOpts
function ns.unshare(kinds, opts) end

---@class nsrun.NewMountOpts
---@field propagation? "private"|"slave"|"shared"|"unchanged" how `/` of a new mount namespace propagates (default "private": nothing arrives from the host, nothing leaves)

---Join namespaces (setns(2)) of a pid (the given kinds, or all that differ, user first and mount last), a namespace file, or a handle; after joining a user namespace become its root (uid/gid 0, no groups) as nsenter does.
---@param target nsrun.NsTarget
---@param kinds? nsrun.Kinds for a path or handle: the one kind it must be
---@param opts? nsrun.SetnsOpts
function ns.setns(target, kinds, opts) end

---Open a namespace handle: `/proc/<pid or self>/ns/<kind>`, or a namespace file path.
---@param kind_or_path nsrun.Kind | string
---@param pid? nsrun.Pid default `"self"`; only with a kind
---@return nsrun.NsHandle
function ns.open(kind_or_path, pid) end

---A namespace's inode number, for comparing.
---@param kind nsrun.Kind
---@param pid? nsrun.Pid default `"self"`
---@return integer inode
function ns.id(kind, pid) end

---Keep a namespace alive by bind-mounting its file onto `path` (created if missing), as `unshare --net=FILE` does. For pid and time, the process's `*_for_children` namespace where it differs from its own (the one `unshare` just made); a mount namespace only from outside it (its creator).
---@param kind nsrun.Kind
---@param pid? nsrun.Pid nil or `"self"` for the calling process
---@param path string
function ns.persist(kind, pid, path) end

---Undo ns.persist: detach the mount at `path`.
---@param path string
function ns.unpersist(path) end

---Set the hostname (needs a uts namespace of one's own).
---@param name string
function ns.sethostname(name) end

---Set the NIS domain name (needs a uts namespace of one's own).
---@param name string
function ns.setdomainname(name) end

-- Mounts

---mount(2); source, fstype, flags and data may be nil. Also `ns.mount{target=, ...}`.
---@param source string?
---@param target string
---@param fstype? string
---@param flags? nsrun.MountFlags
---@param data? string
---@overload fun(opts: nsrun.MountOpts)
function ns.mount(source, target, fstype, flags, data) end

---Bind-mount `source` on `target` (recursive unless `rec = false`); all or nothing.
---@param source string
---@param target string
---@param opts? nsrun.BindOpts
function ns.bind(source, target, opts) end

---umount2(2).
---@param target string
---@param flags? nsrun.UmountFlags
function ns.umount(target, flags) end

---A tmpfs on `target` (created as a 0755 directory if missing), nosuid,nodev.
---@param target string
---@param opts? {size?: integer|string, mode?: string} size in bytes or "64M"; root mode, octal
function ns.tmpfs(target, opts) end

---A minimal /dev on `target`: null zero full random urandom tty bound from the host, fd/stdin/stdout/stderr/core links, devpts with ptmx, shm.
---@param target string
---@param opts? {from?: string} where the host's /dev is seen from here (default "/dev")
function ns.mount_dev(target, opts) end

---A fresh proc (nosuid,nodev,noexec) on `target`.
---@param target string
function ns.mount_proc(target) end

---A read-only sysfs on `target`; the host's bound read-only when sysfs may not be mounted (no net namespace of one's own).
---@param target string
---@param opts? {from?: string} where the host's /sys is seen from here (default "/sys")
function ns.mount_sysfs(target, opts) end

---A POSIX message queue file system on `target` (needs an ipc namespace of one's own).
---@param target string
function ns.mount_mqueue(target) end

---Create a mount point: a 0755 directory, or with `file = true` an empty 0444 file, with missing parents.
---@param path string
---@param opts? {file?: boolean}
function ns.mount_point(path, opts) end

---Make the mount at `path` (and, unless `rec = false`, every mount below it) read-only.
---@param path string
---@param opts? {rec?: boolean}
function ns.remount_ro(path, opts) end

---overlayfs on `target`: `lower` top first; `upper` with `work` for a writable one, `tmpfs_upper` for a throwaway writable one, neither (two or more lowers) for a read-only one. Rootless where the kernel allows (userxattr).
---@param target string
---@param opts {lower: string|string[], upper?: string, work?: string, tmpfs_upper?: boolean}
function ns.overlay(target, opts) end

---A root handle for `dir`: every path given to its methods is resolved inside `dir`, so no symlink in it leads outside (see nsrun.Root).
---@param dir string the caller's own path of the directory
---@return nsrun.Root
function ns.root(dir) end

---pivot_root(2); with one argument the whole safe dance (private, bind, pivot, detach the old root, chdir "/").
---@param new_root string
---@param put_old? string
function ns.pivot_root(new_root, put_old) end

---chroot(2).
---@param path string
function ns.chroot(path) end

-- Files

---Change the working directory.
---@param path string
function ns.chdir(path) end

---Create a directory (mode default 0755, applied exactly).
---@param path string
---@param mode? nsrun.Mode
---@param opts? nsrun.MkdirOpts
function ns.mkdir(path, mode, opts) end

---Change a file's mode.
---@param path string
---@param mode nsrun.Mode
function ns.chmod(path, mode) end

---Create the symbolic link `linkpath` pointing to `target`.
---@param target string
---@param linkpath string
function ns.symlink(target, linkpath) end

---Create or truncate a file and write `data` (mode of a new file default 0644, applied exactly).
---@param path string
---@param data string
---@param mode? nsrun.Mode
function ns.write_file(path, data, mode) end

---Read a whole file.
---@param path string
---@return string data
function ns.read_file(path) end

---The names in a directory, sorted, without `.` and `..`.
---@param path string
---@return string[] names
function ns.readdir(path) end

---Make a FIFO (named pipe) at `path` (mode default "0600"; what a `gate` waits on).
---@param path string
---@param mode? string octal, e.g. "0600"
function ns.mkfifo(path, mode) end

---The working directory, as the kernel knows it (`$PWD` may be unset or stale).
---@return string dir
function ns.getcwd() end

---JSON: `decode(text)` (null is `ns.json.null`, arrays stay arrays), `encode(value [, {indent = true}])`
---(keys sorted), `array(t)` marks a table to encode as an array even when empty.
---@class nsrun.Json
ns.json = {}

---JSON null, as `decode` gives it and `encode` takes it.
---@type lightuserdata
ns.json.null = nil

---Parse JSON text: objects and arrays become tables (arrays marked, so they encode as
---arrays again), null becomes `ns.json.null`. Bad JSON raises an error naming the line and column.
---@param text string
---@return any
function ns.json.decode(text) end

---JSON text of a value (keys sorted; `indent = true` for one key per line). Functions,
---userdata and tables that contain themselves are refused.
---@param value any
---@param opts? {indent?: boolean}
---@return string
function ns.json.encode(value, opts) end

---Mark a table (a new one without `t`) to encode as a JSON array, even when empty.
---@param t? table
---@return table
function ns.json.array(t) end

---An fd the caller handed nsrun (`--info-fd 5`) as a pipe value (`read`, `lines`,
---`write`, `close`). The fd becomes the value's: its `close()` closes the fd, which is
---how the reader at the other end sees end of file. Marked close-on-exec.
---@param fd integer 3 or more
---@param mode? "r"|"w" default "r"
---@return nsrun.Pipe
function ns.fdopen(fd, mode) end

---`path` made absolute, every symlink, `.` and `..` resolved (realpath(3)); an error if it does not exist.
---@param path string
---@return string resolved
function ns.realpath(path) end

-- Ids

---Write `/proc/<pid>/uid_map` (through newuidmap when needed).
---@param pid nsrun.Pid
---@param maps nsrun.IdMap
function ns.uid_map(pid, maps) end

---Write `/proc/<pid>/gid_map` (through newgidmap when needed).
---@param pid nsrun.Pid
---@param maps nsrun.IdMap
function ns.gid_map(pid, maps) end

---Write `/proc/<pid>/setgroups`.
---@param pid nsrun.Pid
---@param value "deny" | "allow"
function ns.setgroups(pid, value) end

---Switch the uid (setresuid).
---@param uid integer
function ns.setuid(uid) end

---Switch the gid (setresgid).
---@param gid integer
function ns.setgid(gid) end

---Set the supplementary groups (setgroups(2)).
---@param gids integer[]
function ns.setgroups_list(gids) end

---The calling process's pid.
---@return integer
function ns.getpid() end

---The parent's pid.
---@return integer
function ns.getppid() end

---The real uid.
---@return integer
function ns.getuid() end

---The effective uid.
---@return integer
function ns.geteuid() end

---The real gid.
---@return integer
function ns.getgid() end

---The effective gid.
---@return integer
function ns.getegid() end

-- Processes

---Send a signal (default TERM) to a process.
---@param pid integer
---@param sig? nsrun.Signal
function ns.kill(pid, sig) end

---The name of the terminal on `fd` as this process sees it (ttyname(3)),
---or nil when it is none or has no name here. The sandbox uses it to bind
---its program's terminal (`tty = true`) on its /dev/console.
---@param fd integer
---@return string?
function ns.ttyname(fd) end

---Replace this process (execve with PATH search); returns only by raising.
---@param argv string[]
---@param opts? nsrun.ExecOpts
function ns.exec(argv, opts) end

---Fork; the child runs `fn` and exits with its result (1 and a traceback on an uncaught error).
---@param fn fun(): nsrun.ExitValue
---@return nsrun.Process
function ns.fork(fn) end

---Like ns.fork, but the child starts in new namespaces of these kinds; a new mount namespace is made private before `fn` runs (see ns.unshare).
---@param kinds nsrun.Kinds
---@param fn fun(): nsrun.ExitValue
---@param opts? nsrun.NewMountOpts
---@return nsrun.Process
function ns.clone(kinds, fn, opts) end

---Two connected channel ends (an AF_UNIX stream socket pair).
---@return nsrun.Channel a
---@return nsrun.Channel b
function ns.socketpair() end

---A channel over an open socket fd, which it takes over (fd 3 of a program
---started with `channel = 3`).
---@param fd integer
---@return nsrun.Channel
function ns.channel(fd) end

---Send bytes with fds (SCM_RIGHTS) in one sendmsg(2), no framing; returns
---the count of bytes sent.
---@param sock nsrun.Channel|file*|integer the socket
---@param data string one byte at least when there are fds
---@param fds? (file*|nsrun.Pipe|nsrun.Channel|nsrun.NsHandle|integer)[]
---@return integer sent
function ns.send_fds(sock, data, fds) end

---Receive bytes and the fds that came with them in one recvmsg(2); the fds
---as namespace handles or Lua files; `nil, "closed"` at end of stream.
---@param sock nsrun.Channel|file*|integer the socket
---@param maxlen? integer at most this many bytes (default 65536)
---@return string? data
---@return (file*|nsrun.NsHandle)[]|"closed" fds
function ns.recv_fds(sock, maxlen) end

---Start a child in the namespaces asked for, with maps, setup and stdio; errors before the exec are raised here.
---@param opts nsrun.SpawnOpts
---@return nsrun.Process
function ns.spawn(opts) end

---Spawn, capture stdout and stderr (pipes by default) and wait.
---@param opts nsrun.SpawnOpts
---@return nsrun.Status status with `stdout` and `stderr`
function ns.run(opts) end

---Which tool `net = name` would run (pasta falls back to slirp4netns),
---its path, and where its DNS forwarder answers inside: what to write
---into a sandbox's `/etc/resolv.conf`. An error names a missing tool and
---its Debian package.
---@param name "pasta"|"slirp4netns"
---@return nsrun.UserNet
function ns.usernet(name) end

-- Networking (over netlink, in the calling process's network namespace)

---Links, addresses and routes of the caller's network namespace.
---@class nsrun.net
ns.net = {}

---Bring an interface up (`ip link set IFNAME up`).
---@param ifname string
function ns.net.up(ifname) end

---Bring an interface down.
---@param ifname string
function ns.net.down(ifname) end

---Bring the loopback interface `lo` up (a new network namespace starts with it down).
function ns.net.lo_up() end

---Create a veth pair `name` <-> `peer`, the peer optionally made directly in another network namespace.
---@param name string
---@param peer string
---@param opts? nsrun.VethOpts
function ns.net.veth(name, peer, opts) end

---Move an interface into another network namespace (a pid, a namespace file such as /run/netns/NAME, or a handle).
---@param ifname string
---@param netns nsrun.NsTarget
function ns.net.move(ifname, netns) end

---Add an address with its prefix length, IPv4 or IPv6 (`"10.0.0.1/24"`, `"fd00::1/64"`; without one, /32 or /128); IPv6 ones skip DAD.
---@param ifname string
---@param cidr string
function ns.net.addr(ifname, cidr) end

---Add a route to `"default"` or a prefix such as `"10.1.0.0/16"` (IPv4 or IPv6) in the main table; `"default"` is IPv6 when `via` is, `"::/0"` names it with `dev` alone.
---@param dest string
---@param opts nsrun.RouteOpts
function ns.net.route(dest, opts) end

---Delete a route added by ns.net.route (`ip route del`): the same destination, and `via`/`dev` to tell routes apart.
---@param dest string
---@param opts nsrun.RouteOpts
function ns.net.route_del(dest, opts) end

---Remove an address from an interface (`ip addr del CIDR dev IFNAME`).
---@param ifname string
---@param cidr string
function ns.net.addr_del(ifname, cidr) end

---Set an interface's MTU (68 to 65535) and/or hardware address (`ip link set IFNAME mtu N address MAC`).
---@param ifname string
---@param opts {mtu?: integer, mac?: string}
function ns.net.set(ifname, opts) end

---Delete an interface (both ends of a veth pair go).
---@param ifname string
function ns.net.delete(ifname) end

---The links of the caller's network namespace, by index.
---@return nsrun.Link[]
function ns.net.links() end

---Make a fresh cgroup below this process's own, with limits.
---@param opts? nsrun.CgroupOpts
---@return nsrun.Cgroup
function ns.cgroup(opts) end

---Compile an OCI seccomp profile (`linux.seccomp` of a bundle's
---config.json, as a table) into one BPF program for
---`ns.spawn{seccomp = {bpf = …}}`: each rule's action and errnoRet,
---64-bit argument conditions, runc's and libseccomp's precedence; names
---this architecture lacks are skipped; calls of another architecture kill.
---@param profile table `{defaultAction =, defaultErrnoRet =, architectures =, flags =, syscalls = {{names =, action =, errnoRet =, args = {{index =, value =, valueTwo =, op =}}}}}`
---@return string bpf the program (the kernel's sock_filter array)
---@return {instructions: integer, skipped: string[], ignored_flags: string[]} info names skipped, flags accepted but not applied
function ns.seccomp_oci(profile) end

return ns
