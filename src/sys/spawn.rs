//! One call that starts a program in new namespaces correctly: the
//! plain-Rust face of `ns.spawn`.
//!
//! ```
//! use nsrun::{Namespace, Spawn, Stdio};
//! // Root of a new user namespace, PID 1's child in a new pid namespace.
//! let mut child = Spawn::new(["/bin/sh", "-c", "id -u; echo $$"])
//!     .namespaces([Namespace::User, Namespace::Pid, Namespace::Mount])
//!     .map_root()
//!     .stdout(Stdio::Pipe)
//!     .spawn()?;
//! let (status, out, _err) = child.output()?;
//! assert!(status.success());
//! assert_eq!(String::from_utf8_lossy(&out), "0\n2\n"); // the init is PID 1
//! # Ok::<(), nsrun::Error>(())
//! ```
//!
//! Locked down: no capabilities, a seccomp filter, resource limits.
//!
//! ```
//! use nsrun::{Caps, Namespace, Rlimit, SeccompAction, SeccompPolicy, Spawn, Stdio};
//! let deny = SeccompPolicy::new().deny(&["mount".into()], SeccompAction::Errno(libc::EPERM))?;
//! let mut child = Spawn::new(["/bin/sh", "-c", "grep -E '^(CapEff|Seccomp):' /proc/self/status; ulimit -n"])
//!     .namespaces([Namespace::User])
//!     .caps(Caps::Keep(0))
//!     .seccomp(deny)
//!     .rlimit(Rlimit::new("nofile", 32, 32)?)
//!     .stdout(Stdio::Pipe)
//!     .spawn()?;
//! let (status, out, _err) = child.output()?;
//! assert!(status.success());
//! assert_eq!(
//!     String::from_utf8_lossy(&out),
//!     "CapEff:\t0000000000000000\nSeccomp:\t2\n32\n"
//! );
//! # Ok::<(), nsrun::Error>(())
//! ```
//!
//! The process tree: the parent clones child C with the namespace flags
//! clone can take. C waits on a pipe until the parent has written its id
//! maps, then joins namespaces, unshares the ones that cannot be had from
//! clone (time; all of them after joining a user namespace) and, if it did,
//! forks once more and stays behind as a relay. The process in all the
//! namespaces sets up stdio, mounts, hostname and runs `setup`; with a new
//! pid namespace and `init`, it forks the main process and supervises it as
//! PID 1. The main process switches identity, closes stray fds and execs.
//! Every failure before exec travels back on a CLOEXEC pipe (EOF means the
//! exec happened), and the parent raises it after reaping what it started.
//! A child C that runs no Lua and execs itself (no init, no relay, no
//! joins) is not forked but shares the parent's memory until its exec:
//! with the parent suspended when it has nothing to do, or beside it,
//! writing C's maps with raw system calls only, when that is all it does
//! (`process::spawn_vm`, `process::spawn_vm_alongside`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::signal::Signal;
use nix::unistd::{getegid, geteuid};

use super::caps::{self as syscaps, Caps};
use super::cgroup::{Cgroup, Limits, Stats};
use super::idmap::{self, IdKind, IdRange};
use super::init;
use super::mount;
use super::namespace::{self as sysns, Namespace, Namespaces, NsHandle};
use super::ops;
use super::process::{self, exit_child, ExecOpts, ExitStatus};
use super::rlimit::Rlimit;
use super::seccomp::{self, Policy};
use crate::error::{Context, Error, Result};

/// Where a standard stream of the child goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stdio {
    /// The parent's.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe to the parent.
    Pipe,
    /// A file (opened for reading for stdin; created or truncated otherwise).
    Path(String),
    /// One of the parent's fds.
    Fd(RawFd),
}

/// How `/` propagates in a new mount namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Host mounts still arrive, none leave (the default).
    #[default]
    Slave,
    /// Nothing arrives or leaves.
    Private,
    /// Shared with the host both ways.
    Shared,
    /// Left as inherited.
    Unchanged,
}

impl Propagation {
    fn flag(self) -> Option<MsFlags> {
        match self {
            Propagation::Slave => Some(MsFlags::MS_SLAVE),
            Propagation::Private => Some(MsFlags::MS_PRIVATE),
            Propagation::Shared => Some(MsFlags::MS_SHARED),
            Propagation::Unchanged => None,
        }
    }
}

impl std::str::FromStr for Propagation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "slave" => Propagation::Slave,
            "private" => Propagation::Private,
            "shared" => Propagation::Shared,
            "unchanged" => Propagation::Unchanged,
            other => {
                return Err(Error::Invalid(format!(
                    "propagation must be \"slave\", \"private\", \"shared\" or \"unchanged\", got '{other}'"
                )))
            }
        })
    }
}

/// An id map request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMap {
    /// Map the caller to 0.
    Root,
    /// Map the caller to itself.
    Same,
    /// Explicit ranges.
    Ranges(Vec<IdRange>),
}

/// What to do in the child instead of exec.
pub type ChildFn<'a> = Box<dyn FnMut() -> i32 + 'a>;
/// A hook run in the child before exec; an `Err` is raised in the parent.
pub type SetupFn<'a> = Box<dyn FnMut() -> std::result::Result<(), Error> + 'a>;
/// A hook run in the parent with the child's pid before it goes on.
pub type BeforeStartFn<'a> = Box<dyn FnMut(i32) -> std::result::Result<(), Error> + 'a>;

/// A namespace to join.
pub enum JoinTarget {
    /// That process's namespace of the kind.
    Pid(i32),
    /// A namespace file (`/proc/42/ns/net`, `/run/netns/x`).
    Path(String),
    /// An open handle.
    Handle(NsHandle),
}

/// Builder for an isolated process. See the module docs.
pub struct Spawn<'a> {
    argv: Vec<String>,
    func: Option<ChildFn<'a>>,
    namespaces: Namespaces,
    join: Vec<(Namespace, JoinTarget)>,
    uid_map: Option<IdMap>,
    gid_map: Option<IdMap>,
    setgroups_allow: Option<bool>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    hostname: Option<String>,
    domainname: Option<String>,
    time_offsets: Option<(i64, i64)>,
    env: Vec<(String, Option<String>)>,
    clear_env: bool,
    cwd: Option<String>,
    argv0: Option<String>,
    stdio: [Stdio; 3],
    keep_fds: Vec<RawFd>,
    init: Option<bool>,
    die_with_parent: bool,
    new_session: bool,
    propagation: Propagation,
    mount_proc: Option<String>,
    timeout: Option<Duration>,
    setup: Option<SetupFn<'a>>,
    before_start: Option<BeforeStartFn<'a>>,
    caps: Option<Caps>,
    no_new_privs: Option<bool>,
    seccomp: Option<Policy>,
    rlimits: Vec<Rlimit>,
    cgroup: Option<Limits>,
    disable_userns: bool,
    landlock: Option<super::landlock::Rules>,
    new_keyring: bool,
    tty_guard: bool,
}

impl<'a> Spawn<'a> {
    /// A process that will exec `argv` (PATH is searched).
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Spawn {
            argv: argv.into_iter().map(Into::into).collect(),
            func: None,
            namespaces: Namespaces::empty(),
            join: Vec::new(),
            uid_map: None,
            gid_map: None,
            setgroups_allow: None,
            uid: None,
            gid: None,
            groups: None,
            hostname: None,
            domainname: None,
            time_offsets: None,
            env: Vec::new(),
            clear_env: false,
            cwd: None,
            argv0: None,
            stdio: [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
            keep_fds: Vec::new(),
            init: None,
            die_with_parent: true,
            new_session: false,
            propagation: Propagation::Slave,
            mount_proc: None,
            timeout: None,
            setup: None,
            before_start: None,
            caps: None,
            no_new_privs: None,
            seccomp: None,
            rlimits: Vec::new(),
            cgroup: None,
            disable_userns: false,
            landlock: None,
            new_keyring: false,
            tty_guard: false,
        }
    }

    /// A process that runs `f` instead of exec; its result is the exit code.
    pub fn func(f: impl FnMut() -> i32 + 'a) -> Self {
        let mut s = Spawn::new(Vec::<String>::new());
        s.func = Some(Box::new(f));
        s
    }

    /// New namespaces of these kinds.
    pub fn namespaces(mut self, kinds: impl IntoIterator<Item = Namespace>) -> Self {
        for k in kinds {
            self.namespaces.insert(k);
        }
        self
    }
    /// Join an existing namespace of `kind` instead of creating one.
    pub fn join(mut self, kind: Namespace, target: JoinTarget) -> Self {
        self.join.push((kind, target));
        self
    }
    /// Map the caller's uid and gid to 0 (the default with a new user namespace).
    pub fn map_root(mut self) -> Self {
        self.uid_map = Some(IdMap::Root);
        self.gid_map = Some(IdMap::Root);
        self
    }
    /// The uid map.
    pub fn uid_map(mut self, m: IdMap) -> Self {
        self.uid_map = Some(m);
        self
    }
    /// The gid map.
    pub fn gid_map(mut self, m: IdMap) -> Self {
        self.gid_map = Some(m);
        self
    }
    /// `setgroups` allow (true) or deny (false; the default when unprivileged).
    pub fn setgroups(mut self, allow: bool) -> Self {
        self.setgroups_allow = Some(allow);
        self
    }
    /// Switch to this uid inside.
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }
    /// Switch to this gid inside.
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }
    /// Supplementary groups inside.
    pub fn groups(mut self, g: Vec<u32>) -> Self {
        self.groups = Some(g);
        self
    }
    /// Host name (needs a new uts namespace).
    pub fn hostname(mut self, h: impl Into<String>) -> Self {
        self.hostname = Some(h.into());
        self
    }
    /// Domain name (needs a new uts namespace).
    pub fn domainname(mut self, h: impl Into<String>) -> Self {
        self.domainname = Some(h.into());
        self
    }
    /// Offsets of the monotonic and boot-time clocks in seconds (needs time).
    pub fn time_offsets(mut self, monotonic: i64, boottime: i64) -> Self {
        self.time_offsets = Some((monotonic, boottime));
        self
    }
    /// Set (`Some`) or remove (`None`) an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: Option<String>) -> Self {
        self.env.push((k.into(), v));
        self
    }
    /// Start from an empty environment.
    pub fn clear_env(mut self, yes: bool) -> Self {
        self.clear_env = yes;
        self
    }
    /// Working directory inside.
    pub fn cwd(mut self, d: impl Into<String>) -> Self {
        self.cwd = Some(d.into());
        self
    }
    /// `argv[0]` as the program sees it.
    pub fn argv0(mut self, a: impl Into<String>) -> Self {
        self.argv0 = Some(a.into());
        self
    }
    /// Standard input.
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdio[0] = s;
        self
    }
    /// Standard output.
    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdio[1] = s;
        self
    }
    /// Standard error.
    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stdio[2] = s;
        self
    }
    /// Fds beyond 0–2 to pass on; all others are closed.
    pub fn keep_fds(mut self, fds: Vec<RawFd>) -> Self {
        self.keep_fds = fds;
        self
    }
    /// Run an init as PID 1 (default: whenever the pid namespace is new).
    pub fn init(mut self, yes: bool) -> Self {
        self.init = Some(yes);
        self
    }
    /// Kill the child when this process dies (default true).
    pub fn die_with_parent(mut self, yes: bool) -> Self {
        self.die_with_parent = yes;
        self
    }
    /// setsid() in the child (no controlling terminal: no TIOCSTI).
    pub fn new_session(mut self, yes: bool) -> Self {
        self.new_session = yes;
        self
    }
    /// How `/` propagates in a new mount namespace, set (recursively)
    /// before anything is mounted. Default [`Propagation::Slave`].
    pub fn propagation(mut self, p: Propagation) -> Self {
        self.propagation = p;
        self
    }
    /// Mount a fresh proc (nosuid, nodev, noexec) on `target` in the new
    /// mount namespace before `setup` runs, as `unshare --mount-proc` does:
    /// with a new pid namespace it shows that one. Needs a new mount
    /// namespace; the mount point must exist.
    pub fn mount_proc(mut self, target: impl Into<String>) -> Self {
        self.mount_proc = Some(target.into());
        self
    }
    /// Kill the whole tree after this long.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Run `f` in the child after namespaces and maps, before exec.
    pub fn setup(mut self, f: impl FnMut() -> std::result::Result<(), Error> + 'a) -> Self {
        self.setup = Some(Box::new(f));
        self
    }
    /// Run `f` in the parent with the child's pid before the child goes on.
    pub fn before_start(
        mut self,
        f: impl FnMut(i32) -> std::result::Result<(), Error> + 'a,
    ) -> Self {
        self.before_start = Some(Box::new(f));
        self
    }

    /// The capabilities the program keeps (default: none when `uid` is
    /// not 0, else unchanged).
    pub fn caps(mut self, c: Caps) -> Self {
        self.caps = Some(c);
        self
    }
    /// PR_SET_NO_NEW_PRIVS before exec (default: true with a seccomp filter).
    pub fn no_new_privs(mut self, yes: bool) -> Self {
        self.no_new_privs = Some(yes);
        self
    }
    /// A seccomp filter, installed last, right before exec.
    pub fn seccomp(mut self, p: Policy) -> Self {
        self.seccomp = Some(p);
        self
    }
    /// A resource limit (setrlimit) for the program.
    pub fn rlimit(mut self, r: Rlimit) -> Self {
        self.rlimits.push(r);
        self
    }
    /// Run in a fresh cgroup with these limits, removed when it is reaped.
    pub fn cgroup(mut self, l: Limits) -> Self {
        self.cgroup = Some(l);
        self
    }
    /// Forbid further user namespaces in the sandbox (needs "user"): like
    /// bubblewrap's --disable-userns.
    pub fn disable_userns(mut self, yes: bool) -> Self {
        self.disable_userns = yes;
        self
    }

    /// Landlock file system rules for the program (no_new_privs defaults
    /// to true with them).
    pub fn landlock(mut self, r: super::landlock::Rules) -> Self {
        self.landlock = Some(r);
        self
    }

    /// Give the program a new, empty session keyring instead of the
    /// caller's (whose keys it could otherwise read or use).
    pub fn new_keyring(mut self, yes: bool) -> Self {
        self.new_keyring = yes;
        self
    }

    /// Install a filter of its own that refuses the terminal ioctls that
    /// push input into a terminal's queue (`TIOCSTI`, `TIOCLINUX`), so
    /// the program cannot type commands into the caller's shell through
    /// an inherited terminal (bubblewrap's CVE-2017-5226), whatever other
    /// filter it has.
    pub fn tty_guard(mut self, yes: bool) -> Self {
        self.tty_guard = yes;
        self
    }

    fn use_init(&self) -> bool {
        self.namespaces.contains(Namespace::Pid) && self.init.unwrap_or(true)
    }

    /// Check the whole request before the first system call.
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.func.is_none() && self.argv.is_empty() {
            return bad("spawn needs argv (a program to run) or fn".into());
        }
        let ns = self.namespaces;
        let joins = |k| self.join.iter().any(|(j, _)| *j == k);
        for (name, set) in [
            ("hostname", self.hostname.is_some()),
            ("domainname", self.domainname.is_some()),
        ] {
            if set && !ns.contains(Namespace::Uts) {
                return bad(format!(
                    "{name} requires a new uts namespace: add \"uts\" to namespaces"
                ));
            }
        }
        if self.mount_proc.is_some() && !ns.contains(Namespace::Mount) {
            return bad(
                "mount_proc requires a new mount namespace (else it would mount on the host's): add \"mount\" to namespaces".into(),
            );
        }
        if let Some(t) = self.mount_proc.as_deref().filter(|t| !t.starts_with('/')) {
            return bad(format!(
                "mount_proc must be an absolute path (an existing directory), got '{t}'"
            ));
        }
        if self.time_offsets.is_some() && !ns.contains(Namespace::Time) {
            return bad(
                "time_offsets requires a new time namespace: add \"time\" to namespaces".into(),
            );
        }
        if (self.uid_map.is_some() || self.gid_map.is_some()) && !ns.contains(Namespace::User) {
            return bad(
                "uid_map/gid_map require a new user namespace: add \"user\" to namespaces".into(),
            );
        }
        for (k, _) in &self.join {
            if ns.contains(*k) {
                return bad(format!("the {k} namespace is both joined and created new"));
            }
        }
        if joins(Namespace::Pid) && self.init == Some(true) {
            return bad("init = true needs a new pid namespace, not a joined one".into());
        }
        if self.init == Some(true) && !ns.contains(Namespace::Pid) {
            return bad(
                "init = true requires a new pid namespace: add \"pid\" to namespaces".into(),
            );
        }
        if self.disable_userns && !ns.contains(Namespace::User) {
            return bad(
                "disable_userns requires a new user namespace: add \"user\" to namespaces".into(),
            );
        }
        if let Some(l) = &self.landlock {
            // Fail closed here, before anything starts, when the kernel
            // cannot enforce what was asked.
            l.check()?;
        }
        for fd in &self.keep_fds {
            if *fd < 3 {
                return bad(format!(
                    "keep_fds: {fd} is a standard stream; use stdin/stdout/stderr"
                ));
            }
            // SAFETY: F_GETFD only queries.
            if unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0 {
                return bad(format!("keep_fds: fd {fd} is not open"));
            }
        }
        Ok(())
    }

    /// Start the process. Returns once it has exec'd (or started `fn`), or
    /// with the error that stopped it, having reaped it.
    pub fn spawn(mut self) -> Result<Child> {
        self.validate()?;
        if self.tty_guard {
            // One more rule in the program's filter, or a filter of its own.
            self.seccomp = Some(match self.seccomp.take() {
                Some(p) => p.with_tty_guard(),
                None => Policy::tty_guard(),
            });
        }
        if ops::planning() {
            return self.plan();
        }
        // Everything that can fail in the parent is done before the clone.
        let joins: Vec<(Namespace, NsHandle)> = {
            let mut v = Vec::new();
            let mut list = std::mem::take(&mut self.join);
            list.sort_by_key(|(k, _)| Namespace::ALL.iter().position(|x| x == k));
            for (k, t) in list {
                let h = match t {
                    JoinTarget::Pid(p) => sysns::open_kind(k, Some(p))?,
                    JoinTarget::Path(p) => sysns::open_path(&p, Some(k))?,
                    JoinTarget::Handle(h) => {
                        if h.kind() != k {
                            return Err(Error::Invalid(format!(
                                "join: the handle for {k} is a {} namespace",
                                h.kind()
                            )));
                        }
                        h
                    }
                };
                v.push((k, h));
            }
            v
        };
        let mut stdio = open_stdio(&self.stdio)?;
        let prepared = match self.func {
            Some(_) => None,
            None => Some(self.prepared()?),
        };
        let maps = self.id_maps();
        // Whether we have anything to do between the clone and the child's
        // going on; if not, it does not wait for us.
        let parent_acts = maps.as_ref().is_some_and(|m| !m.by_child)
            || self.cgroup.is_some()
            || self.before_start.is_some();
        // Compiled here: the child only installs (and allocates nothing).
        let filters = match &self.seccomp {
            Some(p) => p.compile()?,
            None => Vec::new(),
        };
        let cgroup = self.cgroup.as_ref().map(Cgroup::create).transpose()?;

        let (sync_r, sync_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // Taken (closed) beside a child that shares our memory.
        let (mut sync_w, mut err_w) = (Some(sync_w), Some(err_w));
        let (status_r, status_w) = status_channel()?;
        if self.use_init() || !self.namespaces.is_empty() || !joins.is_empty() {
            // Where the command line a supervisor (PID 1, or a relay) wipes
            // lies: read from /proc while it is still the host's. (Its
            // filter it compiles itself, once the program runs: off the
            // path of the start.)
            init::note_arg_area();
        }

        // New kinds that clone can create directly. After joining a user
        // namespace every new kind must be made from inside it, by unshare.
        let joining_user = joins.iter().any(|(k, _)| *k == Namespace::User);
        let mut at_clone = self.namespaces;
        at_clone.remove(Namespace::Time);
        if self.cgroup.is_some() {
            // A cgroup namespace's root is its creator's cgroup at that
            // moment: create it only once the parent has moved the child
            // into the new cgroup, so the sandbox sees that one as "/".
            at_clone.remove(Namespace::Cgroup);
        }
        if joining_user || !joins.is_empty() && !self.namespaces.contains(Namespace::User) {
            at_clone = Namespaces::empty();
        }
        let mut late = self.namespaces;
        for k in at_clone.iter() {
            late.remove(k);
        }
        late.remove(Namespace::User); // only ever at clone, or joined
        if !joins.is_empty() && self.namespaces.contains(Namespace::User) {
            // New user namespace at clone; the joins and the other kinds
            // then happen inside it.
            at_clone = [Namespace::User].into_iter().collect();
            late = self.namespaces;
            late.remove(Namespace::User);
        }

        // A child that runs no Lua and execs itself (no init, no relay) can
        // share our memory until it execs instead of copying it, as
        // posix_spawn does: no page tables to copy, no page copied on write
        // on either side, no code page to fault in again.
        let vm_child = self.func.is_none()
            && self.setup.is_none()
            && self.before_start.is_none()
            && !self.use_init()
            && joins.is_empty()
            && late.is_empty();
        // When we have nothing to do for it, we are suspended meanwhile
        // (CLONE_VFORK), so nothing of ours changes under it. When all we do
        // is write its maps, we write them beside it, with raw system calls
        // only (see spawn_vm_alongside), having rendered them ahead. Not
        // under --trace, whose lines are formatted on the heap.
        let shares_memory = vm_child && !parent_acts;
        let prewritten = match &maps {
            Some(m)
                if vm_child
                    && !m.by_child
                    && self.cgroup.is_none()
                    && !ops::tracing()
                    && idmap::Prewritten::possible() =>
            {
                Some(idmap::Prewritten::new(&m.uid, &m.gid, m.deny_setgroups)?)
            }
            _ => None,
        };
        let own_maps = maps.as_ref().filter(|m| m.by_child);
        // Set beside a child that shares our memory: the map write that
        // failed, and the child's error message.
        let mut alongside_failed = None;
        let mut alongside_msg = [0u8; 4096];
        let mut alongside_len = None;
        let pid = if shares_memory || prewritten.is_some() {
            let raw = |f: &OwnedFd| f.as_raw_fd();
            let (sync_r_fd, sync_w_fd, err_r_fd, err_w_fd, status_r_fd, status_w_fd) = (
                raw(&sync_r),
                sync_w.as_ref().map_or(-1, raw),
                raw(&err_r),
                err_w.as_ref().map_or(-1, raw),
                raw(&status_r),
                raw(&status_w),
            );
            let stdio_fds = stdio.raw();
            let (prepared, filters) = (prepared.as_ref(), filters.as_slice());
            let mut run = || {
                // Our own fd table: close our copies of the parent's ends.
                for fd in [sync_w_fd, err_r_fd, status_r_fd] {
                    // SAFETY: closing our copy only.
                    unsafe { libc::close(fd) };
                }
                let r = self.child(ChildCtx {
                    // SAFETY: these fds are ours in our own fd table; the
                    // parent's OwnedFds close the parent's copies.
                    sync_r: Some(unsafe { OwnedFd::from_raw_fd(sync_r_fd) }),
                    err_fd: err_w_fd,
                    status_fd: status_w_fd,
                    joins: Vec::new(),
                    late,
                    stdio: unsafe { StdioFds::from_raw(stdio_fds) },
                    prepared,
                    filters,
                    proc_fd: None,
                    self_maps: own_maps,
                    wait_for_parent: parent_acts,
                });
                report(err_w_fd, &r.unwrap_err());
                exit_child(127)
            };
            match &prewritten {
                None => process::spawn_vm(at_clone, &mut run)?,
                Some(pw) => {
                    let mut meanwhile = |pid: i32| {
                        // Our copy, so the end of file is the child's.
                        if let Some(fd) = err_w.take() {
                            super::raw::close(fd);
                        }
                        match pw.write(pid) {
                            Ok(()) => {
                                if let Some(fd) = &sync_w {
                                    let _ = super::raw::write(fd.as_raw_fd(), b"g");
                                }
                            }
                            Err(e) => {
                                alongside_failed = Some(e);
                                // No byte but end of file: the child leaves.
                                if let Some(fd) = sync_w.take() {
                                    super::raw::close(fd);
                                }
                            }
                        }
                    };
                    let (pid, n) = process::spawn_vm_alongside(
                        at_clone,
                        &mut run,
                        &mut meanwhile,
                        err_r_fd,
                        &mut alongside_msg,
                    )?;
                    alongside_len = Some(n);
                    pid
                }
            }
        } else {
            match process::fork(at_clone)? {
                process::Forked::Parent(pid) => pid,
                process::Forked::Child => {
                    drop(sync_w);
                    drop(err_r);
                    drop(status_r);
                    let err_fd = err_w.take().expect("error pipe").into_raw_fd();
                    let r = self.child(ChildCtx {
                        sync_r: Some(sync_r),
                        err_fd,
                        status_fd: status_w.into_raw_fd(),
                        joins,
                        late,
                        stdio,
                        prepared: prepared.as_ref(),
                        filters: &filters,
                        proc_fd: None,
                        self_maps: own_maps,
                        wait_for_parent: parent_acts,
                    });
                    // child() only returns with an error.
                    report(err_fd, &r.unwrap_err());
                    exit_child(127)
                }
            }
        };
        drop(sync_r);
        drop(err_w);
        drop(status_w);
        let mut child = Child {
            pid,
            pidfd: pidfd_open(pid),
            status_pipe: Some(File::from(status_r)),
            stdin: stdio.parent[0].take().map(File::from),
            stdout: stdio.parent[1].take().map(File::from),
            stderr: stdio.parent[2].take().map(File::from),
            // A deadline past what Instant can hold is no deadline.
            deadline: self.timeout.and_then(|t| Instant::now().checked_add(t)),
            status: None,
            timed_out: false,
            group: self.timeout.is_some() && !self.namespaces.contains(Namespace::Pid),
            observer: false,
            cgroup,
            cgroup_stats: None,
        };
        drop(stdio.child);

        // The child's error message, if it sent one before its exec.
        let msg = match alongside_len {
            // Beside a memory-sharing child the maps are written already.
            Some(n) => {
                if let Some(e) = alongside_failed {
                    child.abort();
                    return Err(idmap::Prewritten::error(pid, e));
                }
                alongside_msg[..n].to_vec()
            }
            None => {
                let parent_side = (|| -> Result<()> {
                    if let Some(m) = maps.as_ref().filter(|m| !m.by_child) {
                        m.write(Some(pid))?;
                    }
                    if let Some(cg) = &child.cgroup {
                        cg.add(pid)?;
                    }
                    if let Some(f) = self.before_start.as_mut() {
                        f(pid)?;
                    }
                    Ok(())
                })();
                if let Err(e) = parent_side {
                    child.abort();
                    return Err(e);
                }
                // Let the child go on; then EOF on the error pipe means it exec'd.
                if let Some(fd) = sync_w.as_ref().filter(|_| parent_acts) {
                    let _ = nix::unistd::write(fd, b"g");
                }
                let msg = read_all(err_r);
                // Held until now: a child that maps itself takes EOF here for our death.
                drop(sync_w);
                msg
            }
        };
        if !msg.is_empty() {
            child.abort();
            return Err(decode_error(&msg));
        }
        Ok(child)
    }

    /// `--plan`: record, in order and for the process that would do it,
    /// every operation of a start, running `setup` (and `fn`) inline.
    fn plan(mut self) -> Result<Child> {
        let joins: Vec<(Namespace, String)> = self
            .join
            .iter()
            .map(|(k, t)| {
                let what = match t {
                    JoinTarget::Pid(p) => k.proc_path(Some(*p)),
                    JoinTarget::Path(p) => p.clone(),
                    JoinTarget::Handle(h) => h.path().to_string(),
                };
                (*k, what)
            })
            .collect();
        let mut at_clone = self.namespaces;
        at_clone.remove(Namespace::Time);
        let mut late = Namespaces::empty();
        if !joins.is_empty() {
            at_clone = self
                .namespaces
                .iter()
                .filter(|k| *k == Namespace::User)
                .collect();
        }
        for k in self.namespaces.iter() {
            if !at_clone.contains(k) {
                late.insert(k);
            }
        }
        if self.cgroup.is_some() && at_clone.contains(Namespace::Cgroup) {
            // As in spawn: the cgroup namespace only after the move.
            at_clone.remove(Namespace::Cgroup);
            late.insert(Namespace::Cgroup);
        }
        let filters = match &self.seccomp {
            Some(p) => p.compile()?,
            None => Vec::new(),
        };
        let mut cgroup = self.cgroup.as_ref().map(Cgroup::create).transpose()?;
        let pid = ops::clone(at_clone.flags()).op(|| "clone".into())?;
        let maps = self.id_maps();
        if let Some(m) = maps.as_ref().filter(|m| !m.by_child) {
            m.write(Some(pid))?;
        }
        if let Some(cg) = &cgroup {
            cg.add(pid)?;
        }
        if let Some(f) = self.before_start.as_mut() {
            f(pid)?;
        }
        let code = ops::in_role("child", || -> Result<i32> {
            if let Some(m) = maps.as_ref().filter(|m| m.by_child) {
                m.write(None)?;
            }
            for (k, what) in &joins {
                ops::record(|| format!("setns({what:?}, {k})"));
            }
            if !late.is_empty() {
                sysns::unshare(late)?;
            }
            if late.contains(Namespace::Time) {
                self.set_time_offsets()?;
            }
            if self.namespaces.contains(Namespace::Mount) {
                self.set_propagation()?;
            }
            self.inside()?;
            let role = if self.use_init() {
                ops::clone(nix::sched::CloneFlags::empty()).op(|| "clone".into())?;
                ops::in_role("init", || {
                    ops::record(|| {
                        "supervise: reap orphans, forward signals, exit with main's status".into()
                    })
                });
                "main"
            } else {
                "child"
            };
            ops::in_role(role, || -> Result<i32> {
                let cwd = self.cwd.clone();
                self.lock_down(None, &filters, || {
                    ops::record(|| "close_range(3, ~0)".into());
                    if let Some(d) = &cwd {
                        ops::record(|| format!("chdir({d:?})"));
                    }
                    Ok(())
                })?;
                if let Some(f) = self.func.as_mut() {
                    return Ok(f());
                }
                let _ = self.prepared()?.exec();
                Ok(0)
            })
        })?;
        if let Some(cg) = cgroup.as_mut() {
            cg.close()?;
        }
        Ok(Child::planned(code))
    }

    fn child(&mut self, mut cx: ChildCtx) -> Result<std::convert::Infallible> {
        if self.die_with_parent {
            set_pdeathsig()?;
        }
        if self.timeout.is_some() && !self.namespaces.contains(Namespace::Pid) {
            // Without a pid namespace to tear down, a timeout kills our
            // process group: lead one, so relay, program and descendants
            // are all in it.
            let _ =
                nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
        }
        // A mount namespace from the clone is ours already: settle its
        // propagation while the parent writes our maps, which it does not need.
        let mount_at_clone =
            self.namespaces.contains(Namespace::Mount) && !cx.late.contains(Namespace::Mount);
        if mount_at_clone {
            self.set_propagation()?;
        }
        let sync = File::from(cx.sync_r.take().expect("sync pipe"));
        if cx.wait_for_parent {
            // Wait until the parent wrote our maps. EOF instead of a byte
            // means the parent died before that: leave, whatever the race
            // with PR_SET_PDEATHSIG was.
            let mut b = [0u8; 1];
            match (&sync).read(&mut b) {
                Ok(1) => {}
                _ => exit_child(1),
            }
        } else if self.die_with_parent && hung_up(&sync) {
            // The parent holds its end until we exec: a hang-up now means
            // it died before PR_SET_PDEATHSIG could take hold.
            exit_child(1);
        }
        drop(sync);
        if let Some(m) = cx.self_maps.take() {
            m.write(None)?;
        }
        if self.disable_userns {
            // Opened now, before `setup` may pivot away from the host's
            // /proc: the sysctl and our own id maps are written through it.
            let fd = nix::fcntl::open(
                "/proc",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .op(|| "open /proc".into())?;
            cx.proc_fd = Some(fd);
        }
        for (_, h) in &cx.joins {
            h.enter()?;
        }
        // Joining a pid namespace, like unsharing one, moves only our
        // children into it (nsenter forks for the same reason).
        let joined_pid = cx.joins.iter().any(|(k, _)| *k == Namespace::Pid);
        cx.joins.clear();
        if !cx.late.is_empty() {
            sysns::unshare(cx.late)?;
        }
        if cx.late.contains(Namespace::Time) {
            self.set_time_offsets()?;
        }
        if cx.late.contains(Namespace::Pid) || cx.late.contains(Namespace::Time) || joined_pid {
            // Unshared (or joined) pid and time namespaces hold only our children:
            // fork into them and stay behind as a relay.
            init::block();
            // SAFETY: a child with a relay is a fork, never one sharing
            // nsrun's memory (see `vm_child` in spawn).
            unsafe { init::seal() };
            match process::fork(Namespaces::empty())? {
                process::Forked::Parent(inner) => {
                    let _ = nix::unistd::close(cx.err_fd);
                    init::supervise(inner, Some(cx.status_fd))
                }
                process::Forked::Child => {
                    init::unblock();
                    // In a joined pid namespace we are visible to its
                    // processes until our exec: stay sealed, unless Lua
                    // code of the recipe's runs here as the sandbox's own.
                    if self.setup.is_some() || self.func.is_some() {
                        init::unseal_forked();
                    }
                    if self.die_with_parent {
                        set_pdeathsig()?;
                    }
                }
            }
        }
        cx.stdio.apply()?;
        if self.namespaces.contains(Namespace::Mount) && !mount_at_clone {
            self.set_propagation()?;
        }
        self.inside()?;
        if self.use_init() {
            // The init never execs: drop the recipe's fds before the
            // program exists, so it cannot find them in /proc/1/fd even
            // for a moment. What the main process needs stays. Not with
            // `fn`: the main process goes on running Lua, whose values
            // (handles, pipes) own some of those fds.
            if self.func.is_none() {
                let mut keep = self.keep_fds.clone();
                keep.extend([cx.err_fd, cx.status_fd]);
                keep.extend(cx.proc_fd.as_ref().map(|f| f.as_raw_fd()));
                init::close_all_but(&keep, &[], false)?;
            }
            init::block();
            // Before the program exists: from its first instruction on,
            // PID 1's memory, fds and environment are closed to it.
            // SAFETY: a child with an init is a fork, never one sharing
            // nsrun's memory (see `vm_child` in spawn).
            unsafe { init::seal() };
            // disable_userns makes the main process dumpable again to
            // write its own maps; in our memory that would undo the seal.
            if self.func.is_none() && !self.disable_userns {
                // The main process only gets ready and execs: it can borrow
                // our memory until then rather than copy it.
                let (err_fd, status_fd) = (cx.err_fd, cx.status_fd);
                let mut main = || {
                    init::unblock();
                    let r = match self.die_with_parent {
                        true => set_pdeathsig().and_then(|_| self.become_main(&cx)),
                        false => self.become_main(&cx),
                    };
                    report(err_fd, &r.unwrap_err());
                    exit_child(127)
                };
                let pid = process::spawn_vm(Namespaces::empty(), &mut main)?;
                let _ = nix::unistd::close(err_fd);
                init::supervise(pid, Some(status_fd))
            }
            match process::fork(Namespaces::empty())? {
                process::Forked::Parent(main) => {
                    let _ = nix::unistd::close(cx.err_fd);
                    init::supervise(main, Some(cx.status_fd))
                }
                process::Forked::Child => {
                    init::unblock();
                    if self.func.is_some() {
                        init::unseal_forked();
                    }
                    if self.die_with_parent {
                        set_pdeathsig()?;
                    }
                }
            }
        }
        self.become_main(&cx)
    }

    /// The id maps of a new user namespace, and who writes them.
    fn id_maps(&self) -> Option<IdMaps> {
        if !self.namespaces.contains(Namespace::User) {
            return None;
        }
        let uid = resolve_map(self.uid_map.as_ref().unwrap_or(&IdMap::Root), IdKind::Uid);
        let gid = resolve_map(self.gid_map.as_ref().unwrap_or(&IdMap::Root), IdKind::Gid);
        let deny_setgroups = !self.setgroups_allow.unwrap_or(geteuid().is_root());
        // A process in a new user namespace may write its own maps when
        // each is one line mapping its own id, the gid one once setgroups
        // is denied (user_namespaces(7)). Then the child needs nothing
        // from us before it goes on, and a start saves waiting for a wake-up.
        let own_single =
            |r: &[IdRange], id: u32| matches!(r, [one] if one.outside == id && one.count == 1);
        let by_child = deny_setgroups
            && own_single(&uid, geteuid().as_raw())
            && own_single(&gid, getegid().as_raw())
            && self.cgroup.is_none()
            && self.before_start.is_none();
        Some(IdMaps {
            uid,
            gid,
            deny_setgroups,
            by_child,
        })
    }

    /// The offsets of a time namespace just unshared (before any process
    /// lives in it).
    fn set_time_offsets(&self) -> Result<()> {
        let (mono, boot) = self.time_offsets.unwrap_or((0, 0));
        let text = format!("monotonic {mono} 0\nboottime {boot} 0\n");
        ops::write_file("/proc/self/timens_offsets", text.as_bytes(), None, false)
            .op(|| "write /proc/self/timens_offsets".into())
    }

    /// The steps inside all the namespaces, before the init and the
    /// lock-down, shared by a real start and its `--plan`.
    fn inside(&mut self) -> Result<()> {
        if let Some(h) = &self.hostname {
            sysns::sethostname(h)?;
        }
        if let Some(d) = &self.domainname {
            sysns::setdomainname(d)?;
        }
        if let Some(t) = &self.mount_proc {
            mount::proc_on(t)?;
        }
        if let Some(f) = self.setup.as_mut() {
            f()?;
        }
        Ok(())
    }

    /// Before anything is mounted: nothing may propagate back to the
    /// host, while the host's later mounts still reach us (by default).
    fn set_propagation(&self) -> Result<()> {
        if let Some(p) = self.propagation.flag() {
            mount::mount(None, "/", None, MsFlags::MS_REC | p, None)?;
        }
        Ok(())
    }

    /// The main process's last steps before exec, in the order the kernel
    /// rules force: resource limits while still privileged; the
    /// user-namespace sysctl while root of the sandbox's user namespace;
    /// the identity switch (keeping capabilities across it when some are
    /// to stay); the nested user namespace of disable_userns; dropping
    /// capabilities; closing fds (`close_fds`); no_new_privs; Landlock
    /// (its paths opened as the sandbox sees them); and the seccomp filter
    /// last, so that nothing nsrun still does is filtered.
    fn lock_down(
        &self,
        proc_fd: Option<&OwnedFd>,
        filters: &[seccompiler::BpfProgram],
        before_filters: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        for r in &self.rlimits {
            r.apply()?;
        }
        if self.disable_userns {
            // As bubblewrap does: allow one user namespace below the
            // sandbox's and make it right away; the program runs in that
            // one, whose root cannot raise the limit set outside it.
            proc_write(proc_fd, "sys/user/max_user_namespaces", "1")?;
        }
        let target = syscaps::target(self.caps, self.uid);
        if target.is_some() && self.uid.is_some_and(|u| u != 0) {
            syscaps::keep_across_setuid()?;
        }
        if let Some(g) = &self.groups {
            super::cred::setgroups(g)?;
        }
        if let Some(g) = self.gid {
            super::cred::setgid(g)?;
        }
        if let Some(u) = self.uid {
            super::cred::setuid(u)?;
        }
        if self.disable_userns {
            // The ids just switched to (under --plan nothing switched).
            let uid = self.uid.unwrap_or_else(|| geteuid().as_raw());
            let gid = self.gid.unwrap_or_else(|| getegid().as_raw());
            ops::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .op(|| "unshare user (disable_userns)".into())?;
            // A uid switch made us non-dumpable, which makes /proc/self
            // belong to root, who is not mapped in the new namespace yet:
            // become dumpable again to write our own maps (exec sets it anew).
            ops::prctl(
                || "prctl(PR_SET_DUMPABLE, 1)".into(),
                libc::PR_SET_DUMPABLE,
                1,
                0,
            )
            .op(|| "prctl PR_SET_DUMPABLE".into())?;
            proc_write(proc_fd, "self/uid_map", &format!("{uid} {uid} 1\n"))?;
            proc_write(proc_fd, "self/setgroups", "deny")?;
            proc_write(proc_fd, "self/gid_map", &format!("{gid} {gid} 1\n"))?;
        }
        if self.die_with_parent && (self.uid.is_some() || self.gid.is_some()) {
            // A credential change clears the parent-death signal.
            set_pdeathsig()?;
        }
        if self.new_session {
            ops::act(|| "setsid()".into(), || nix::unistd::setsid().map(drop))
                .op(|| "setsid".into())?;
        }
        if self.new_keyring {
            // Before the capabilities go: nothing needs them, but the
            // filter about to come may refuse keyctl.
            ops::act(
                || "keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)".into(),
                || {
                    // SAFETY: keyctl with a null name makes an anonymous keyring.
                    let rc = unsafe {
                        libc::syscall(
                            libc::SYS_keyctl,
                            1, /* KEYCTL_JOIN_SESSION_KEYRING */
                            std::ptr::null::<libc::c_char>(),
                        )
                    };
                    Errno::result(rc).map(drop)
                },
            )
            .op(|| "keyctl join a new session keyring".into())?;
        }
        if let Some(want) = target {
            syscaps::apply(want)?;
        }
        before_filters()?;
        if self
            .no_new_privs
            .unwrap_or(self.seccomp.is_some() || self.landlock.is_some())
        {
            seccomp::no_new_privs()?;
        }
        if let Some(l) = &self.landlock {
            l.apply()?;
        }
        if let Some(p) = &self.seccomp {
            seccomp::install(filters, &p.describe())?;
        }
        Ok(())
    }

    fn become_main(&mut self, cx: &ChildCtx) -> Result<std::convert::Infallible> {
        let keep = &self.keep_fds;
        let (err_fd, prepared) = (cx.err_fd, cx.prepared);
        let running_lua = self.func.is_some();
        self.lock_down(cx.proc_fd.as_ref(), cx.filters, || {
            // Nothing but 0-2 and keep_fds may reach the program: closed
            // now, not at exec, so that no fd of ours can be the way out
            // while we still resolve the working directory
            // (`cwd = "/proc/self/fd/N"`, runc's CVE-2024-21626). The
            // error pipe stays (close-on-exec) to report failures. A
            // function's Lua values own some fds: there they are only
            // marked close-on-exec.
            match running_lua {
                true => init::close_all_but(keep, &[], true)?,
                false => init::close_all_but(keep, &[err_fd], false)?,
            }
            for fd in keep {
                // SAFETY: clearing FD_CLOEXEC on an fd the caller asked to keep.
                unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) };
            }
            if let Some(p) = prepared {
                p.enter_cwd()?;
            }
            process::default_sigpipe();
            Ok(())
        })?;
        if let Some(f) = self.func.as_mut() {
            // No exec will close the pipes: close them, so the parent's
            // spawn returns now rather than when the function ends.
            let _ = nix::unistd::close(cx.err_fd);
            let _ = nix::unistd::close(cx.status_fd);
            exit_child(f());
        }
        match cx.prepared {
            // The filter is on: nothing but the exec itself from here.
            Some(p) => Err(
                p.exec_ready_diagnosing(self.seccomp.as_ref().map_or(true, |s| s.allows_unnamed()))
            ),
            None => Err(Error::Invalid("nothing to run".into())),
        }
    }

    /// The exec of `argv`, its strings converted ahead.
    fn prepared(&self) -> Result<process::Prepared> {
        process::Prepared::new(
            &self.argv,
            &ExecOpts {
                // TODO(bytes): spawn builder
                env: Some(
                    self.environment()
                        .into_iter()
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect(),
                ),
                cwd: self.cwd.clone().map(Into::into),
                argv0: self.argv0.clone().map(Into::into),
            },
        )
    }

    fn environment(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = if self.clear_env {
            Vec::new()
        } else {
            std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect()
        };
        for (k, v) in &self.env {
            env.retain(|(ek, _)| ek != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        env
    }
}

/// What the child gets. It borrows what the parent made ahead: a child
/// that shares the parent's memory (see `spawn`) must not leave anything
/// behind in it.
struct ChildCtx<'p> {
    sync_r: Option<OwnedFd>,
    err_fd: RawFd,
    status_fd: RawFd,
    joins: Vec<(Namespace, NsHandle)>,
    late: Namespaces,
    stdio: StdioFds,
    prepared: Option<&'p process::Prepared>,
    filters: &'p [seccompiler::BpfProgram],
    proc_fd: Option<OwnedFd>,
    /// Maps the child writes itself (uid, gid), rather than waiting for the parent's.
    self_maps: Option<&'p IdMaps>,
    /// Whether to wait for the parent's byte (it writes maps, moves us
    /// into a cgroup or runs before_start first).
    wait_for_parent: bool,
}

/// Read a pipe to EOF (read_to_end would first fstat and lseek it for a
/// size hint: two system calls on every start).
fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match nix::unistd::read(&fd, &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => return out,
        }
    }
}

/// A new user namespace's maps.
struct IdMaps {
    uid: Vec<IdRange>,
    gid: Vec<IdRange>,
    deny_setgroups: bool,
    /// Written by the child itself (`None` in [`IdMaps::write`]).
    by_child: bool,
}

impl IdMaps {
    /// uid_map, setgroups, gid_map, in the order the kernel requires, for
    /// process `pid` (`None`: the caller).
    fn write(&self, pid: idmap::Target) -> Result<()> {
        idmap::write_map(pid, IdKind::Uid, &self.uid)?;
        if self.deny_setgroups {
            idmap::setgroups(pid, false)?;
        }
        idmap::write_map(pid, IdKind::Gid, &self.gid)
    }
}

/// Whether every write end of `pipe` is closed.
fn hung_up(pipe: &File) -> bool {
    let mut p = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLHUP != 0
}

/// Write `data` to `rel` below /proc: through `proc_fd` (a /proc opened
/// before setup could hide it) when given.
fn proc_write(proc_fd: Option<&OwnedFd>, rel: &str, data: &str) -> Result<()> {
    let shown = format!("/proc/{rel}");
    ops::act(
        || format!("write({shown:?}, {data:?})"),
        || {
            use std::io::Write;
            let fd = match proc_fd {
                Some(d) => nix::fcntl::openat(
                    d,
                    rel,
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )?,
                None => nix::fcntl::open(
                    shown.as_str(),
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )?,
            };
            let mut f = File::from(fd);
            // /proc files take their content in one write(2).
            match f.write(data.as_bytes()) {
                Ok(n) if n == data.len() => Ok(()),
                Ok(_) => Err(Errno::EIO),
                Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
            }
        },
    )
    .op(|| format!("write {shown}"))
}

fn set_pdeathsig() -> Result<()> {
    // Through the door: under --plan the child's steps run in nsrun itself.
    ops::prctl(
        || "prctl(PR_SET_PDEATHSIG, SIGKILL)".into(),
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
    )
    .op(|| "prctl PR_SET_PDEATHSIG".into())
}

/// The channel PID 1 reports the main process's status on: a socket, not
/// a pipe, since a pipe can be opened anew through `/proc/PID/fd/N` by
/// anyone who can see that directory, and a socket cannot.
fn status_channel() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair(2) fills two fds on success.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    Errno::result(rc).op(|| "socketpair".into())?;
    // SAFETY: two fresh fds of ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).op(|| "pipe".into())
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn resolve_map(m: &IdMap, kind: IdKind) -> Vec<IdRange> {
    let own = match kind {
        IdKind::Uid => geteuid().as_raw(),
        IdKind::Gid => getegid().as_raw(),
    };
    match m {
        IdMap::Root => vec![IdRange {
            inside: 0,
            outside: own,
            count: 1,
        }],
        IdMap::Same => vec![IdRange {
            inside: own,
            outside: own,
            count: 1,
        }],
        IdMap::Ranges(r) => r.clone(),
    }
}

/// Child → parent error message: `S<errno>\0<op>` or `M<text>`.
fn report(fd: RawFd, e: &Error) {
    let msg = match e {
        Error::Sys { op, errno } => format!("S{}\0{op}", *errno as i32),
        other => format!("M{other}"),
    };
    // SAFETY: writing a local buffer to our pipe; a pipe write of this size
    // is atomic.
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len().min(4000)) };
}

fn decode_error(b: &[u8]) -> Error {
    let s = String::from_utf8_lossy(b);
    if let Some(rest) = s.strip_prefix('S') {
        if let Some((num, op)) = rest.split_once('\0') {
            if let Ok(n) = num.parse::<i32>() {
                return Error::sys(op.to_string(), Errno::from_raw(n));
            }
        }
    }
    Error::Child(s.strip_prefix('M').unwrap_or(&s).to_string())
}

/// The child's ends and the parent's ends of the standard streams.
struct StdioFds {
    child: [Option<OwnedFd>; 3],
    parent: [Option<OwnedFd>; 3],
}

fn open_stdio(spec: &[Stdio; 3]) -> Result<StdioFds> {
    let mut out = StdioFds {
        child: [None, None, None],
        parent: [None, None, None],
    };
    for (i, s) in spec.iter().enumerate() {
        let write = i > 0;
        let (c, p) = match s {
            Stdio::Inherit => (None, None),
            Stdio::Null => {
                let f = std::fs::OpenOptions::new()
                    .read(!write)
                    .write(write)
                    .open("/dev/null")
                    .op(|| "open /dev/null".into())?;
                (Some(OwnedFd::from(f)), None)
            }
            Stdio::Pipe => {
                let (r, w) = pipe()?;
                if write {
                    (Some(w), Some(r))
                } else {
                    (Some(r), Some(w))
                }
            }
            Stdio::Path(p) => {
                let mut o = std::fs::OpenOptions::new();
                if write {
                    o.write(true).create(true).truncate(true);
                } else {
                    o.read(true);
                }
                let f = o.open(p).op(|| format!("open {p}"))?;
                (Some(OwnedFd::from(f)), None)
            }
            Stdio::Fd(fd) => {
                let d = nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) })
                    .op(|| format!("dup fd {fd}"))?;
                (Some(d), None)
            }
        };
        out.child[i] = c;
        out.parent[i] = p;
    }
    Ok(out)
}

impl StdioFds {
    /// The fd numbers, for a child with its own copy of the fd table.
    fn raw(&self) -> [[Option<RawFd>; 3]; 2] {
        let r = |a: &[Option<OwnedFd>; 3]| a.each_ref().map(|f| f.as_ref().map(|f| f.as_raw_fd()));
        [r(&self.child), r(&self.parent)]
    }

    /// Owned again from [`StdioFds::raw`].
    ///
    /// # Safety
    /// Only in a process whose fd table is a copy: the fds are closed
    /// there while the original owner closes its own.
    unsafe fn from_raw(fds: [[Option<RawFd>; 3]; 2]) -> StdioFds {
        // SAFETY: per the contract above.
        let o = |a: [Option<RawFd>; 3]| a.map(|f| f.map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        StdioFds {
            child: o(fds[0]),
            parent: o(fds[1]),
        }
    }

    fn apply(&mut self) -> Result<()> {
        for (i, fd) in self.child.iter_mut().enumerate() {
            if let Some(fd) = fd.take() {
                // SAFETY: dup2 onto a standard stream; dup2 clears CLOEXEC.
                let rc = unsafe { libc::dup2(fd.as_raw_fd(), i as RawFd) };
                Errno::result(rc).op(|| format!("dup2 onto fd {i}"))?;
            }
        }
        for fd in self.parent.iter_mut() {
            fd.take();
        }
        Ok(())
    }
}

/// A started process.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    pidfd: Option<OwnedFd>,
    status_pipe: Option<File>,
    /// Its standard input, with `Stdio::Pipe`.
    pub stdin: Option<File>,
    /// Its standard output, with `Stdio::Pipe`.
    pub stdout: Option<File>,
    /// Its standard error, with `Stdio::Pipe`.
    pub stderr: Option<File>,
    deadline: Option<Instant>,
    status: Option<ExitStatus>,
    timed_out: bool,
    group: bool,
    /// A view of a process someone else reaps (`before_start`'s argument).
    observer: bool,
    /// Its cgroup, removed once it is reaped.
    cgroup: Option<Cgroup>,
    cgroup_stats: Option<Stats>,
}

impl Child {
    /// A view of process `pid` that may signal it and open its namespaces
    /// but never waits for it: its owner does.
    pub fn observer(pid: i32) -> Child {
        let mut c = Child::from_pid(pid);
        c.pidfd = None;
        c.observer = true;
        c
    }

    /// The stand-in for a child that `--plan` did not start: it "exited"
    /// with `code`.
    pub fn planned(code: i32) -> Child {
        let mut c = Child::from_pid(ops::PLANNED_PID);
        c.pidfd = None;
        c.status = Some(ExitStatus {
            code: Some(code),
            signal: None,
            core_dumped: false,
        });
        c
    }

    /// Adopt a child this process forked by other means (`ns.fork`).
    pub fn from_pid(pid: i32) -> Child {
        Child {
            pid,
            pidfd: pidfd_open(pid),
            status_pipe: None,
            stdin: None,
            stdout: None,
            stderr: None,
            deadline: None,
            status: None,
            timed_out: false,
            group: false,
            observer: false,
            cgroup: None,
            cgroup_stats: None,
        }
    }

    /// Its pid (in our pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the timeout killed it.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The status, once known.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// What its cgroup used: while it runs, or as it was when it was reaped.
    pub fn cgroup_stats(&self) -> Option<Stats> {
        self.cgroup
            .as_ref()
            .map(Cgroup::stats)
            .or(self.cgroup_stats)
    }

    /// Send `sig` (to the whole group when it leads one). No-op once reaped.
    pub fn kill(&self, sig: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let target = if self.group { -self.pid } else { self.pid };
        match process::kill(target, sig) {
            Err(e) if e.errno() == Some(Errno::ESRCH) => Ok(()),
            other => other,
        }
    }

    fn abort(&mut self) {
        let _ = self.kill(libc::SIGKILL);
        let _ = self.reap(false);
    }

    /// Wait for it to end, forwarding SIGINT, SIGTERM, SIGHUP, SIGQUIT,
    /// SIGUSR1 and SIGUSR2 that reach us, and enforcing the timeout.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let mut bufs = [Vec::new(), Vec::new()];
        self.event_loop([None, None], &mut bufs)
    }

    /// Wait while reading `files` (stdout, stderr) into `bufs`; returns
    /// once the process is reaped and every file reached EOF. Signals that
    /// reach us meanwhile are passed on rather than killing us (our death
    /// would SIGKILL the child through its parent-death signal).
    fn event_loop(
        &mut self,
        mut files: [Option<File>; 2],
        bufs: &mut [Vec<u8>; 2],
    ) -> Result<ExitStatus> {
        self.not_observer()?;
        use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        self.stdin.take(); // a child reading stdin must see EOF
        let mut forward = SigSet::empty();
        for s in init::FORWARDED {
            forward.add(s);
        }
        let mut old = SigSet::empty();
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forward), Some(&mut old));
        let r = (|| {
            let sfd =
                SignalFd::with_flags(&forward, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                    .op(|| "signalfd".into())?;
            loop {
                if self.status.is_none() {
                    self.reap(true)?;
                }
                if let (Some(st), true) = (self.status, files.iter().all(Option::is_none)) {
                    return Ok(st);
                }
                if self.status.is_none()
                    && self.pidfd.is_none()
                    && files.iter().all(Option::is_none)
                {
                    // No pidfd (kernel before 5.3): wait blocking.
                    return self.reap(false).map(|s| s.expect("blocking reap"));
                }
                let mut timeout_ms = -1;
                if let (Some(d), None) = (self.deadline, self.status) {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.timed_out = true;
                        self.deadline = None;
                        self.kill(libc::SIGKILL)?;
                        continue;
                    }
                    timeout_ms = left.as_millis().min(i32::MAX as u128) as i32;
                }
                let pollin = |fd: RawFd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let mut fds = vec![pollin(sfd.as_raw_fd())];
                if let (Some(p), None) = (&self.pidfd, self.status) {
                    fds.push(pollin(p.as_raw_fd()));
                } else if self.status.is_none() && timeout_ms < 0 {
                    // Without a pidfd, look again now and then.
                    timeout_ms = 50;
                }
                let first_file = fds.len();
                let mut which = Vec::new();
                for (i, f) in files.iter().enumerate() {
                    if let Some(f) = f {
                        fds.push(pollin(f.as_raw_fd()));
                        which.push(i);
                    }
                }
                // SAFETY: fds is a valid pollfd array.
                let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout_ms) };
                if rc < 0 && Errno::last() != Errno::EINTR {
                    return Err(Error::sys("poll", Errno::last()));
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    let _ = self.kill(sig);
                    if let Ok(s) = Signal::try_from(sig) {
                        log::debug!("forwarded {s} to {}", self.pid);
                    }
                }
                for (k, i) in which.into_iter().enumerate() {
                    if fds[first_file + k].revents == 0 {
                        continue;
                    }
                    let f = files[i].as_ref().expect("polled file");
                    // Straight into the buffer's spare room: a 64 KiB array
                    // on the stack would fault in 16 fresh pages on every
                    // wait, pipes or not.
                    let buf = &mut bufs[i];
                    buf.reserve(65536);
                    let spare = buf.spare_capacity_mut();
                    // SAFETY: read writes at most spare.len() bytes into
                    // memory the Vec owns.
                    let n = unsafe {
                        libc::read(f.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len())
                    };
                    match n {
                        0 => files[i] = None,
                        // SAFETY: the kernel initialised n bytes past len.
                        n if n > 0 => unsafe { buf.set_len(buf.len() + n as usize) },
                        _ if Errno::last() == Errno::EINTR => {}
                        _ => files[i] = None,
                    }
                }
            }
        })();
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        r
    }

    /// Reap if it ended (`nohang`) or wait for it; records the status.
    fn reap(&mut self, nohang: bool) -> Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let Some(mut st) = process::wait(self.pid, nohang)? else {
            return Ok(None);
        };
        // The supervisor wrote the main process's own status (it cannot die
        // of the same signal itself as PID 1).
        if let Some(mut p) = self.status_pipe.take() {
            let mut b = [0u8; 8];
            if p.read_exact(&mut b).is_ok() {
                let (code, sig, core) = init::decode(&b);
                st = if sig != 0 {
                    ExitStatus {
                        code: None,
                        signal: Some(sig),
                        core_dumped: core,
                    }
                } else {
                    ExitStatus {
                        code: Some(code),
                        signal: None,
                        core_dumped: false,
                    }
                };
            }
        }
        self.status = Some(st);
        self.pidfd.take();
        if let Some(mut cg) = self.cgroup.take() {
            self.cgroup_stats = Some(cg.stats());
            // Anything still in it (a daemon the program left) goes too.
            if let Err(e) = cg.close() {
                log::warn!("removing cgroup {}: {e}", cg.name());
            }
        }
        Ok(Some(st))
    }

    fn not_observer(&self) -> Result<()> {
        if self.observer {
            return Err(Error::Invalid(format!(
                "process {} is still starting and is waited for by whoever spawned it",
                self.pid
            )));
        }
        Ok(())
    }

    /// Without waiting: the status if it has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.not_observer()?;
        if let Some(d) = self.deadline {
            if Instant::now() >= d && self.status.is_none() {
                self.timed_out = true;
                self.kill(libc::SIGKILL)?;
                return self.reap(false);
            }
        }
        self.reap(true)
    }

    /// Read stdout and stderr to the end (both at once, so neither pipe
    /// can fill up and block the child) while waiting for it.
    pub fn output(&mut self) -> Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
        let mut bufs = [Vec::new(), Vec::new()];
        let files = [self.stdout.take(), self.stderr.take()];
        let st = self.event_loop(files, &mut bufs)?;
        let [out, err] = bufs;
        Ok((st, out, err))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Reap it if it already ended, so no zombie stays for long.
        if self.status.is_none() && !self.observer {
            let _ = process::wait(self.pid, true);
        }
    }
}
