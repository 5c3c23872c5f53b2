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

mod child;
mod clone_plan;
mod exec;
mod message;
mod parent;
pub(crate) mod remote;
mod stdio;
mod tty;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use nix::mount::MsFlags;

use super::caps::Caps;
use super::cgroup::Limits;
use super::idmap::IdRange;
use super::namespace::{Namespace, Namespaces, NsHandle};
use super::rlimit::Rlimit;
use super::seccomp::Policy;
use super::usernet::{Port, UserNet};
use crate::error::{Error, Result};

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
    Path(PathBuf),
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
    argv: Vec<OsString>,
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
    env: Vec<(OsString, Option<OsString>)>,
    clear_env: bool,
    cwd: Option<OsString>,
    argv0: Option<OsString>,
    stdio: [Stdio; 3],
    keep_fds: Vec<RawFd>,
    lock_files: Vec<OsString>,
    parent_fds: Vec<RawFd>,
    gate: Option<OsString>,
    /// The gate FIFO, opened by the parent before the clone.
    gate_fd: Option<RawFd>,
    /// The lock files' fds once the child has taken them.
    locks_held: Vec<RawFd>,
    set_pwd: bool,
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
    nested_user: Option<(u32, u32)>,
    landlock: Option<super::landlock::Rules>,
    new_keyring: bool,
    tty_guard: bool,
    channel: Option<super::channel::SpawnChannel>,
    net: Option<UserNet>,
    ports: Vec<Port>,
    tty: bool,
    tty_master: bool,
}

impl<'a> Spawn<'a> {
    /// A process that will exec `argv` (PATH is searched).
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
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
            lock_files: Vec::new(),
            parent_fds: Vec::new(),
            gate: None,
            gate_fd: None,
            locks_held: Vec::new(),
            set_pwd: false,
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
            nested_user: None,
            landlock: None,
            new_keyring: false,
            tty_guard: false,
            channel: None,
            net: None,
            ports: Vec::new(),
            tty: false,
            tty_master: false,
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
    pub fn env(mut self, k: impl Into<OsString>, v: Option<OsString>) -> Self {
        self.env.push((k.into(), v));
        self
    }
    /// Start from an empty environment.
    pub fn clear_env(mut self, yes: bool) -> Self {
        self.clear_env = yes;
        self
    }
    /// Working directory inside.
    pub fn cwd(mut self, d: impl Into<OsString>) -> Self {
        self.cwd = Some(d.into());
        self
    }
    /// `argv[0]` as the program sees it.
    pub fn argv0(mut self, a: impl Into<OsString>) -> Self {
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

    /// Files (paths inside, after `setup`) to hold a shared `fcntl` lock
    /// on while the sandbox runs (bubblewrap's `--lock-file`): taken by
    /// PID 1 when there is an init, which the program cannot close, else
    /// by the program's process, whose fd then stays open across the exec.
    pub fn lock_files(mut self, paths: Vec<OsString>) -> Self {
        self.lock_files = paths;
        self
    }

    /// Fds only the parent uses (a report it writes while the child
    /// waits): the child closes its copies first thing, so that a reader
    /// at their other end sees end of file when the parent closes its own.
    pub fn parent_fds(mut self, fds: Vec<RawFd>) -> Self {
        self.parent_fds = fds;
        self
    }

    /// Stop right before the exec — set-up, identity and capabilities
    /// done, only the seccomp filters and the exec left — until a byte
    /// is written into the FIFO at `path` (what an OCI runtime's `create`
    /// and `start` do). [`Spawn::spawn`] returns as soon as the process
    /// waits there, and the process does not die with us: it is meant to
    /// outlive the caller. The program is looked up before the gate, so a
    /// missing one is still an error of `spawn`.
    pub fn gate(mut self, path: impl Into<OsString>) -> Self {
        self.gate = Some(path.into());
        self.die_with_parent = false;
        self
    }

    /// Set `PWD` to the directory the program starts in (what bubblewrap
    /// does): the one `cwd` names, or the one `setup` left it in.
    pub fn set_pwd(mut self, yes: bool) -> Self {
        self.set_pwd = yes;
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
    /// Run the program in a user namespace nested in the new one, as uid
    /// `uid` and gid `gid` there, mapped to the ids it has once the maps
    /// are written: the sandbox's namespaces then belong to a user
    /// namespace in which the program holds no capability, whatever it
    /// gets in its own. What bubblewrap does for an unprivileged caller
    /// (the outer map makes it root for the set-up, the inner one gives
    /// the program its uid). Needs a new user namespace.
    pub fn nested_user(mut self, uid: u32, gid: u32) -> Self {
        self.nested_user = Some((uid, gid));
        self
    }

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

    /// A channel to the program: its end on fd `fd` (3 or more), ours
    /// from [`Child::channel`](super::child::Child::channel). The message
    /// format is in [`super::channel`].
    pub fn channel(mut self, fd: RawFd) -> Self {
        self.channel = Some(super::channel::SpawnChannel::new(Some(fd)));
        self
    }

    /// A process that runs `f` with its end of a channel; ours is
    /// [`Child::channel`](super::child::Child::channel).
    pub fn func_channel(mut f: impl FnMut(super::channel::Channel) -> i32 + 'a) -> Self {
        let sc = super::channel::SpawnChannel::new(None);
        let theirs = sc
            .theirs
            .as_ref()
            .map_or(-1, std::os::fd::AsRawFd::as_raw_fd);
        let mut s = Spawn::func(move || {
            if theirs < 0 {
                return f(super::channel::Channel::planned());
            }
            if !super::ops::planning() {
                // SAFETY: in the child, which leaves by _exit: the
                // SpawnChannel's copy of the fd is never dropped here, so
                // the function's channel is its only owner (and closing
                // it is seen by the peer).
                let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(theirs) };
                return f(super::channel::Channel::from_fd(fd));
            }
            // Under --plan the function runs in nsrun, whose SpawnChannel
            // still owns (and closes) the original: a copy.
            // SAFETY: the fd stays open while the function may run.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(theirs) };
            f(fd.try_clone_to_owned().map_or_else(
                |_| super::channel::Channel::planned(),
                super::channel::Channel::from_fd,
            ))
        });
        s.channel = Some(sc);
        s
    }

    /// Connect the new network namespace (needs "net") to ours through
    /// `pasta`, or `slirp4netns` where pasta is missing; see
    /// [`net`](Self::net).
    ///
    /// ```no_run
    /// use nsrun::{Namespace, Spawn};
    /// let mut child = Spawn::new(["python3", "-m", "http.server", "8000"])
    ///     .namespaces([Namespace::User, Namespace::Net])
    ///     .net_pasta()
    ///     .ports(["127.0.0.1:8080:8000"])?
    ///     .spawn()?;
    /// child.wait()?; // pasta is stopped once the server is reaped
    /// # Ok::<(), nsrun::Error>(())
    /// ```
    pub fn net_pasta(self) -> Self {
        self.net(UserNet::Pasta)
    }
    /// Connect the new network namespace (needs "net") to ours through a
    /// user-mode network stack: the tool is started once the namespace
    /// exists, before the program runs, and killed when it is reaped.
    pub fn net(mut self, n: UserNet) -> Self {
        self.net = Some(n);
        self
    }
    /// Publish a port of the sandbox on ours (needs [`net`](Self::net)).
    pub fn port(mut self, p: Port) -> Self {
        self.ports.push(p);
        self
    }
    /// Publish ports (`"8080:80"`, `"127.0.0.1:5353:53/udp"`, as `podman run -p`).
    pub fn ports<I, S>(mut self, specs: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for s in specs {
            self.ports.push(s.as_ref().parse()?);
        }
        Ok(self)
    }
    /// A new pseudo-terminal for the program: its slave on every standard
    /// stream left to inherit, the controlling terminal of a new session.
    /// When our stdin is a terminal, [`Child::wait`](crate::Child::wait)
    /// relays it (raw, window size passed on, restored after); otherwise
    /// the master is [`Child::tty`](crate::Child::tty).
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use nsrun::{Namespace, Spawn};
    /// let mut child = Spawn::new(["/bin/sh", "-c", "read x; echo \"$x\"; stty size; tty -s && echo ctty"])
    ///     .namespaces([Namespace::User])
    ///     .tty(true)
    ///     .tty_master(true)
    ///     .spawn()?;
    /// child.resize(30, 100)?;
    /// let mut master = child.tty.take().expect("the master");
    /// master.write_all(b"hello\n")?;
    /// // Up to the end of file (EIO once the program closed its terminal).
    /// let screen: Vec<String> = BufReader::new(master)
    ///     .lines()
    ///     .map_while(Result::ok)
    ///     .map(|l| l.trim_end_matches('\r').to_string())
    ///     .collect();
    /// // The terminal's echo of what we typed, then the program's lines.
    /// assert_eq!(screen, ["hello", "hello", "30 100", "ctty"]);
    /// assert_eq!(child.wait()?.code, Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tty(mut self, yes: bool) -> Self {
        self.tty = yes;
        self
    }

    /// With [`Spawn::tty`]: never relay, even when our stdin is a
    /// terminal; the master is always [`Child::tty`](crate::Child::tty),
    /// for a caller that drives the program itself.
    pub fn tty_master(mut self, yes: bool) -> Self {
        self.tty_master = yes;
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
        if self.nested_user.is_some() && !ns.contains(Namespace::User) {
            return bad(
                "nested_user requires a new user namespace: add \"user\" to namespaces".into(),
            );
        }
        if self.disable_userns && !ns.contains(Namespace::User) {
            return bad(
                "disable_userns requires a new user namespace: add \"user\" to namespaces".into(),
            );
        }
        super::usernet::validate(self.net, &self.ports, ns, !self.join.is_empty())?;
        if let Some(l) = &self.landlock {
            // Fail closed here, before anything starts, when the kernel
            // cannot enforce what was asked.
            l.check()?;
        }
        if self.lock_files.len() > super::init::MAX_HELD {
            return bad(format!(
                "lock_files: at most {} files, got {}",
                super::init::MAX_HELD,
                self.lock_files.len()
            ));
        }
        if let Some(at) = self.channel.as_ref().and_then(|c| c.at) {
            if self.func.is_some() {
                return bad("channel: a function gets its channel as its argument (Spawn::func_channel), not on an fd".into());
            }
            if at < 3 {
                return bad(format!(
                    "channel: fd {at} is a standard stream (or not an fd); give 3 or more"
                ));
            }
            if self.keep_fds.contains(&at) {
                return bad(format!("channel: fd {at} is also in keep_fds"));
            }
        }
        self.validate_tty()?;
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
}
