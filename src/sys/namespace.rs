//! Namespace kinds, and creating, joining, naming and persisting namespaces.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::str::FromStr;

use nix::fcntl::{open, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use super::ops;
use crate::error::{Context, Error, Result};

pub use super::flags::CLONE_NEWTIME;

/// A kind of Linux namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// User and group ids, capabilities.
    User,
    /// Control group root.
    Cgroup,
    /// System V IPC, POSIX message queues.
    Ipc,
    /// Host and domain name.
    Uts,
    /// Network devices, stacks, ports.
    Net,
    /// Process ids.
    Pid,
    /// Mount points.
    Mount,
    /// Boot-time and monotonic clocks.
    Time,
}

impl Namespace {
    /// Every kind, in the order nsenter joins them: user first so the others
    /// can be joined with its capabilities, mount late because it changes
    /// what `/proc` paths resolve to.
    pub const ALL: [Namespace; 8] = [
        Namespace::User,
        Namespace::Cgroup,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Time,
    ];

    /// The name recipes use.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
            Namespace::Mount => "mount",
            Namespace::Time => "time",
        }
    }

    /// The file name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            other => other.name(),
        }
    }

    /// The `CLONE_NEW*` flag.
    pub fn flag(self) -> CloneFlags {
        match self {
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Time => CLONE_NEWTIME,
        }
    }

    /// The kind whose `CLONE_NEW*` flag is `flag`.
    pub fn from_flag(flag: i32) -> Option<Namespace> {
        Self::ALL.into_iter().find(|k| k.flag().bits() == flag)
    }

    /// `/proc/<pid>/ns/<kind>`, `pid` `None` meaning this process.
    pub fn proc_path(self, pid: Option<i32>) -> String {
        match pid {
            Some(p) => format!("/proc/{p}/ns/{}", self.proc_name()),
            None => format!("/proc/self/ns/{}", self.proc_name()),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Namespace {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "user" => Namespace::User,
            "mount" | "mnt" => Namespace::Mount,
            "pid" => Namespace::Pid,
            "uts" => Namespace::Uts,
            "ipc" => Namespace::Ipc,
            "net" | "network" => Namespace::Net,
            "cgroup" => Namespace::Cgroup,
            "time" => Namespace::Time,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown namespace kind '{other}' (valid: user, mount, pid, uts, ipc, net, cgroup, time)"
                )))
            }
        })
    }
}

/// Several namespace kinds; iterates in [`Namespace::ALL`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Namespaces(u8);

impl Namespaces {
    /// No kind.
    pub const fn empty() -> Self {
        Namespaces(0)
    }
    fn bit(k: Namespace) -> u8 {
        1 << Namespace::ALL.iter().position(|x| *x == k).unwrap_or(0)
    }
    /// Add a kind.
    pub fn insert(&mut self, k: Namespace) {
        self.0 |= Self::bit(k);
    }
    /// Remove a kind.
    pub fn remove(&mut self, k: Namespace) {
        self.0 &= !Self::bit(k);
    }
    /// Whether `k` is in the set.
    pub fn contains(self, k: Namespace) -> bool {
        self.0 & Self::bit(k) != 0
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The kinds, user first and mount, time last.
    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
    /// The union of their `CLONE_NEW*` flags.
    pub fn flags(self) -> CloneFlags {
        self.iter().fold(CloneFlags::empty(), |a, k| a | k.flag())
    }
}

impl FromIterator<Namespace> for Namespaces {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        let mut s = Namespaces::empty();
        for k in iter {
            s.insert(k);
        }
        s
    }
}

impl fmt::Display for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(|k| k.name()).collect();
        f.write_str(&names.join(","))
    }
}

pub use super::flags::clone_flags_names as flags_names;

/// unshare(2) the given kinds.
pub fn unshare(kinds: Namespaces) -> Result<()> {
    ops::unshare(kinds.flags()).op(|| format!("unshare {kinds}"))
}

/// Make every mount of the mount namespace we are in propagate as `p`
/// (`MS_REC` on `/`). A new mount namespace starts with its creator's
/// propagation, on most hosts shared (systemd's): what is mounted inside
/// would show up on the host (in its /run/netns, say) and the other way
/// round. `unshare(1)` makes a new one private; so do `ns.unshare` and
/// `ns.clone` by default.
pub fn set_propagation(p: crate::Propagation) -> Result<()> {
    use crate::Propagation as P;
    let (flag, name) = match p {
        P::Private => (MsFlags::MS_PRIVATE, "private"),
        P::Slave => (MsFlags::MS_SLAVE, "slave"),
        P::Shared => (MsFlags::MS_SHARED, "shared"),
        P::Unchanged => return Ok(()),
    };
    ops::mount(None, "/", None, MsFlags::MS_REC | flag, None)
        .op(|| format!("make the new mount namespace {name} (mount / rec,{name})"))
}

/// An open namespace file: keeps the namespace alive while it is open.
#[derive(Debug)]
pub struct NsHandle {
    fd: OwnedFd,
    kind: Namespace,
    ino: u64,
    dev: u64,
    path: String,
}

impl NsHandle {
    /// The namespace's kind.
    pub fn kind(&self) -> Namespace {
        self.kind
    }
    /// Its inode number, the id `ls -l /proc/self/ns` shows.
    pub fn inode(&self) -> u64 {
        self.ino
    }
    /// The device of the nsfs file system (with the inode, a unique id).
    pub fn dev(&self) -> u64 {
        self.dev
    }
    /// The path it was opened from.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Join it (setns(2)).
    pub fn enter(&self) -> Result<()> {
        ops::setns(self.fd.as_fd(), self.kind.flag())
            .op(|| format!("setns {} {}", self.kind, self.path))
    }
}

impl AsFd for NsHandle {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)

/// Open a namespace file. With `expect`, a file of another kind is refused;
/// without, its kind is asked of the kernel.
pub fn open_path(path: &str, expect: Option<Namespace>) -> Result<NsHandle> {
    // Any path may be given: O_NONBLOCK keeps a FIFO from blocking the open
    // until a writer comes (it is then refused below as not a namespace),
    // O_NOCTTY keeps a terminal from becoming ours. Neither matters to a
    // namespace file.
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd = open(path, flags, Mode::empty()).op(|| format!("open namespace {path}"))?;
    let meta = std::fs::File::from(fd.try_clone().op(|| format!("dup {path}"))?)
        .metadata()
        .op(|| format!("stat {path}"))?;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns a CLONE_NEW* value.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), NS_GET_NSTYPE as _) };
    let kind = if rc < 0 {
        return Err(Error::Invalid(format!(
            "{path} is not a namespace file (open one under /proc/PID/ns/ or a persisted one)"
        )));
    } else {
        Namespace::from_flag(rc)
            .ok_or_else(|| Error::Invalid(format!("{path}: unknown namespace type {rc:#x}")))?
    };
    if let Some(want) = expect {
        if want != kind {
            return Err(Error::Invalid(format!(
                "{path} is a {kind} namespace, not a {want} namespace"
            )));
        }
    }
    Ok(NsHandle {
        fd,
        kind,
        ino: meta.ino(),
        dev: meta.dev(),
        path: path.to_string(),
    })
}

/// A handle of an open fd that the kernel says is a namespace (one a
/// channel brought); the fd back when it is not one.
pub fn handle_of_fd(fd: OwnedFd) -> std::result::Result<NsHandle, OwnedFd> {
    // SAFETY: NS_GET_NSTYPE takes no argument; on any other file it fails.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), NS_GET_NSTYPE as _) };
    let Some(kind) = (rc >= 0).then(|| Namespace::from_flag(rc)).flatten() else {
        return Err(fd);
    };
    let Ok(meta) = nix::sys::stat::fstat(&fd) else {
        return Err(fd);
    };
    Ok(NsHandle {
        path: format!("{kind}:[{}]", meta.st_ino),
        fd,
        kind,
        ino: meta.st_ino,
        dev: meta.st_dev,
    })
}

/// Open `/proc/<pid or self>/ns/<kind>`.
pub fn open_kind(kind: Namespace, pid: Option<i32>) -> Result<NsHandle> {
    open_path(&kind.proc_path(pid), Some(kind))
}

/// The inode number of a process's namespace of `kind`.
pub fn id(kind: Namespace, pid: Option<i32>) -> Result<u64> {
    let path = kind.proc_path(pid);
    std::fs::metadata(&path)
        .map(|m| m.ino())
        .op(|| format!("stat {path}"))
}

/// Open the namespaces of process `pid` to join (with [`enter_all`]): the
/// kinds given, or every kind in which it differs from us, in joining
/// order. All files are opened before any is joined, because joining the
/// user or mount namespace can take away access to the others.
pub fn open_pid(pid: i32, kinds: Option<Namespaces>) -> Result<Vec<NsHandle>> {
    let mut handles = Vec::new();
    let explicit = kinds.is_some();
    for kind in kinds.unwrap_or(Namespaces(0xff)).iter() {
        let path = kind.proc_path(Some(pid));
        if !explicit {
            // Only a kind the kernel lacks may be skipped: a file we may
            // not read (another user's process, or one that made itself
            // undumpable) must fail, not leave us silently where we were.
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let dir = format!("/proc/{pid}/ns");
                    std::fs::symlink_metadata(&dir).op(|| format!("stat {dir} (process {pid})"))?;
                    continue;
                }
                _ => {}
            }
        }
        let h = open_path(&path, Some(kind))?;
        let ours = id(kind, None).ok();
        if ours == Some(h.ino) {
            // setns into our own user namespace fails with EINVAL; joining
            // any other we are already in is a no-op, so skip them all.
            continue;
        }
        handles.push(h);
    }
    Ok(handles)
}

/// Join handles in order; returns the kinds joined.
pub fn enter_all(handles: &[NsHandle]) -> Result<Namespaces> {
    let mut joined = Namespaces::empty();
    for h in handles {
        h.enter()?;
        joined.insert(h.kind);
    }
    Ok(joined)
}

/// Keep a namespace alive by bind-mounting its file onto `path`, which is
/// created as an empty file if it does not exist (as `unshare --net=FILE`
/// and `ip netns add` do).
pub fn persist(src: &str, path: &Path) -> Result<()> {
    let shown = path.display();
    let created = if path.exists() {
        false
    } else {
        ops::write_file(path, b"", Some(0o444), true)
            .op(|| format!("persist {shown}: create the file"))?;
        true
    };
    let r = ops::mount(Some(Path::new(src)), path, None, MsFlags::MS_BIND, None)
        .op(|| format!("persist {src} on {shown}"));
    if r.is_err() && created {
        let _ = ops::unlink(path);
    }
    r
}

/// The namespace file [`persist_kind`] binds for `kind` of process `pid`.
///
/// For pid and time namespaces a process's own namespace and the one its
/// children get can differ: after `unshare("pid")` the caller stays in its
/// old pid namespace and only `pid_for_children` names the new one. That
/// new one is what a recipe means (it is what `unshare --pid=FILE` keeps,
/// and the caller's own is older and usually someone else's), so where the
/// two differ the `*_for_children` file is used. The own namespace can
/// still be had through `persist("/proc/PID/ns/pid", path)`.
pub fn persist_source(kind: Namespace, pid: Option<i32>) -> String {
    let own = kind.proc_path(pid);
    if matches!(kind, Namespace::Pid | Namespace::Time) {
        let children = format!("{own}_for_children");
        let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
        if let (Some(a), Some(b)) = (ino(&own), ino(&children)) {
            if a != b {
                return children;
            }
        }
    }
    own
}

/// A handle on namespace `kind` of a process nsrun started (see
/// [`persist_source`] for pid and time). nsrun's supervisors (a PID 1, a
/// relay) are sealed against the sandbox's program, which closes their
/// `/proc/PID/ns` to an unprivileged caller too (EACCES): then the
/// namespace is taken from the process they supervise, their child, which
/// lives in the same ones (or, under `disable_userns`, in a user namespace
/// nested in theirs).
pub fn open_of_started(kind: Namespace, pid: i32) -> Result<NsHandle> {
    match open_path(&persist_source(kind, Some(pid)), Some(kind)) {
        Err(Error::Sys {
            errno: nix::errno::Errno::EACCES,
            ..
        }) => {
            let children = format!("/proc/{pid}/task/{pid}/children");
            let child = std::fs::read_to_string(&children)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the {kind} namespace of process {pid}: its supervisor is sealed and its program is gone"
                    ))
                })?;
            open_path(&persist_source(kind, Some(child)), Some(kind))
        }
        r => r,
    }
}

/// Persist namespace `kind` of process `pid` (None: this process) onto
/// `path`; see [`persist_source`] for which pid and time namespace.
/// A mount namespace can only be persisted from an older mount namespace
/// (the kernel refuses anything that could make a reference loop), so it
/// is the creator, not the process inside, that persists it.
pub fn persist_kind(kind: Namespace, pid: Option<i32>, path: &Path) -> Result<()> {
    persist(&persist_source(kind, pid), path)
}

/// Undo [`persist`]: detach the bind mount and remove the file if it is the
/// empty placeholder `persist` made.
pub fn unpersist(path: &Path) -> Result<()> {
    ops::umount2(path, MntFlags::MNT_DETACH).op(|| format!("umount {}", path.display()))?;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.is_file() && m.len() == 0 {
            let _ = ops::unlink(path);
        }
    }
    Ok(())
}

/// sethostname(2) (needs a uts namespace of one's own to be harmless).
pub fn sethostname(name: &str) -> Result<()> {
    ops::sethostname(name).op(|| format!("sethostname {name}"))
}

/// setdomainname(2).
pub fn setdomainname(name: &str) -> Result<()> {
    ops::setdomainname(name).op(|| format!("setdomainname {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_agree_with_kinds() {
        assert_eq!(
            super::super::flags::NAMESPACE_FLAGS.len(),
            Namespace::ALL.len()
        );
        for (k, (name, flag)) in Namespace::ALL
            .iter()
            .zip(super::super::flags::NAMESPACE_FLAGS)
        {
            assert_eq!((k.name(), k.flag()), (name, flag));
            assert_eq!(flags_names(k.flag()), k.name());
        }
        assert_eq!(
            flags_names(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS),
            "user|mount"
        );
    }
}
