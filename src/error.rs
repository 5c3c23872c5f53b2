//! Errors of the system layer: an operation, its arguments and the errno.

use nix::errno::Errno;

/// An error from nsrun's system layer.
///
/// `Display` reads like `mount tmpfs on /tmp: Operation not permitted (EPERM)`;
/// [`Error::hint`] adds the usual cause where one is known.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{op}: {} ({errno:?})", errno.desc())]
    Sys {
        /// The operation and its main arguments, e.g. `mount tmpfs on /tmp`.
        op: String,
        /// What the kernel said.
        errno: Errno,
    },
    /// The request itself is wrong (an unknown name, a bad size, …).
    #[error("{0}")]
    Invalid(String),
    /// A child process failed before it could run its program.
    #[error("{0}")]
    Child(String),
    /// Under `--plan`: the operation (an exec) was recorded, not performed.
    #[error("planned, not performed")]
    Planned,
}

/// Result type of the system layer.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failed system call.
    pub fn sys(op: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            op: op.into(),
            errno,
        }
    }

    /// The errno of a failed system call.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The operation that failed with its main arguments
    /// (`mount tmpfs on /tmp`), or `invalid` / `child`.
    pub fn op(&self) -> &str {
        match self {
            Error::Sys { op, .. } => op,
            Error::Invalid(_) => "invalid",
            Error::Child(_) => "child",
            Error::Planned => "planned",
        }
    }

    /// The common cause of this error, where one is known.
    pub fn hint(&self) -> Option<&'static str> {
        let Error::Sys { op, errno } = self else {
            return None;
        };
        let verb = op.split_whitespace().next().unwrap_or("");
        let user_ns = op.contains("user");
        Some(match (*errno, verb) {
            (Errno::ELOOP | Errno::EXDEV, _) if op.contains(" in root ") => {
                "the path leads outside the root through a symlink: inside a root every \
                 symlink resolves as if the root were /, magic links (/proc/self/...) are \
                 refused, and a file is never written through a final symlink"
            }
            (Errno::ENOTDIR, _) if op.contains(" in root ") => {
                "a part of the path is not a directory inside the root (a symlink there \
                 may point to something outside it, which is not followed)"
            }
            (Errno::EDQUOT, "keyctl") => {
                "the user's key quota is used up (kernel.keys.maxkeys, maxbytes; a session \
                 keyring is freed when its last process ends): give new_keyring = false, or \
                 raise the sysctl"
            }
            (Errno::EPERM, "unshare" | "clone") if user_ns => {
                "creating a user namespace was refused: check sysctl user.max_user_namespaces \
                 and kernel.unprivileged_userns_clone, and that the process is not chrooted \
                 or threaded"
            }
            (Errno::EPERM, "unshare" | "clone" | "setns") => {
                "this needs CAP_SYS_ADMIN: run as root, or create a user namespace first \
                 (put \"user\" in the kinds)"
            }
            (Errno::EPERM, "mount") if op.starts_with("mount proc ") => {
                "a proc may only be mounted by the user namespace that owns its pid \
                 namespace: create a new pid namespace too (\"pid\" in the kinds)"
            }
            (Errno::EPERM, "mount" | "umount" | "pivot_root" | "chroot" | "bind" | "persist") => {
                "mounting needs CAP_SYS_ADMIN in the user namespace that owns the mount \
                 namespace: run as root, or unshare \"user,mount\" first"
            }
            (Errno::EPERM, "sethostname" | "setdomainname") => {
                "needs CAP_SYS_ADMIN over the uts namespace: unshare \"user,uts\" first"
            }
            (Errno::EPERM, "write") if op.contains("gid_map") => {
                "an unprivileged process must write \"deny\" to setgroups before gid_map \
                 (ns.setgroups(pid, \"deny\")), and may map only its own gid"
            }
            (Errno::EPERM, "write") if op.contains("uid_map") => {
                "an unprivileged process may map only its own uid with count 1; more needs \
                 newuidmap (package uidmap) and an entry in /etc/subuid"
            }
            (Errno::EPERM, "setuid" | "setgid" | "setgroups") => {
                "the id must be mapped in this user namespace and the process needs \
                 CAP_SETUID/CAP_SETGID; setgroups also needs /proc/self/setgroups \"allow\""
            }
            (Errno::EINVAL, "setuid" | "setgid" | "setgroups") => {
                "the id is not mapped in this user namespace: write uid_map/gid_map first"
            }
            (Errno::ENOMEM, "clone") if op.contains("whose init has exited") => {
                "a pid namespace lives as long as its init (its PID 1): once that has \
                 exited, no process can be made in it (the kernel says ENOMEM). Join a pid \
                 namespace only while its init runs (keep the process that made it, or \
                 init = true, alive), or make a new one"
            }
            (Errno::ENOSPC, "unshare" | "clone") => {
                "the namespace limit was reached (sysctl user.max_*_namespaces)"
            }
            (Errno::ENOSPC, "mount" | "bind") => {
                "too many mounts in this namespace (sysctl fs.mount-max)"
            }
            (Errno::EINVAL, "pivot_root") => {
                "new_root must be a mount point other than / and no mount on the way may be \
                 shared: the one-argument form ns.pivot_root(dir) takes care of both"
            }
            (Errno::EINVAL, "setns") => {
                "the file is not a namespace of that kind, or the process is already in it, \
                 or it is threaded (joining a user namespace)"
            }
            (Errno::EINVAL, "unshare" | "clone") if user_ns => {
                "a threaded process cannot create a user namespace"
            }
            (Errno::ENODEV, "up" | "down" | "addr" | "route" | "move" | "delete") => {
                "no interface of that name in this network namespace: ns.net.links() lists \
                 them (a moved interface is gone from here)"
            }
            (Errno::EPERM, "up" | "down" | "addr" | "route" | "move" | "delete" | "veth") => {
                "this needs CAP_NET_ADMIN over the network namespace: run as root, or \
                 unshare \"user,net\" first"
            }
            (Errno::ENETUNREACH | Errno::ENETDOWN, "route") => {
                "the gateway must be on a network an interface here reaches: give the \
                 interface an address in its subnet and bring it up first"
            }
            (Errno::EEXIST, "veth" | "addr" | "route") => {
                "it exists already: pick another name, or delete the old one first"
            }
            (Errno::EINVAL, "persist") if op.contains("/ns/mnt") => {
                "a mount namespace can be persisted only from an older mount namespace, never \
                 from inside itself: persist it from its creator, e.g. \
                 ns.persist(\"mount\", child.pid, path) in the parent (as unshare --mount=FILE does), \
                 onto a file in a private mount"
            }
            (Errno::EACCES | Errno::EPERM | Errno::EROFS, "cgroup:") => {
                "making a cgroup needs write access to the cgroup tree: run as root, or inside \
                 a cgroup delegated to this user (systemd-run --user --scope -p Delegate=yes, \
                 or a cgroup chowned to the user)"
            }
            (Errno::EBUSY, "cgroup:") if op.contains("subtree_control") => {
                "cgroup v2 allows no processes in a cgroup that hands controllers to its \
                 children: run nsrun in a leaf of a delegated subtree"
            }
            (Errno::EPERM, "prctl") if op.contains("CAPBSET") => {
                "dropping from the bounding set needs CAP_SETPCAP: add \"user\" to namespaces"
            }
            (Errno::EACCES, "seccomp") => {
                "installing a seccomp filter needs no_new_privs (the default with seccomp) or \
                 CAP_SYS_ADMIN"
            }
            (Errno::EPERM, "setrlimit") => "raising a hard limit needs CAP_SYS_RESOURCE",
            (Errno::EBUSY, "umount") => "the mount is in use: try the \"detach\" flag",
            (Errno::EBUSY, "pivot_root") => "new_root or put_old is busy or the same mount",
            (Errno::ENOENT, "exec") if op.contains(": its interpreter ") => {
                "the program is there but the interpreter it names is not (a dynamically \
                 linked program needs its ELF loader, e.g. /lib64/ld-linux-x86-64.so.2, and \
                 its libraries in the same root; a script needs the program on its #! line)"
            }
            (Errno::ENOENT, "exec") => "no such program: check the name and PATH",
            (Errno::EACCES, "exec") => "the file is not executable, or on a noexec mount",
            (Errno::ENOENT, "mount" | "bind" | "pivot_root" | "chroot" | "persist") => {
                "the source or target does not exist (ns.mkdir it, or use create = true)"
            }
            (Errno::ENODEV, "mount") => "the kernel does not know that filesystem type",
            (Errno::EROFS, _) => "the file system is mounted read-only",
            (Errno::EACCES, _) => "permission denied by file modes or an LSM",
            (Errno::ESRCH, _) => "no such process (it may have exited)",
            _ => return None,
        })
    }
}

/// Attach an operation description to a nix result.
pub trait Context<T> {
    /// Turn an `Errno` into an [`Error::Sys`] naming the operation.
    fn op(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(op(), e))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            Error::sys(op(), errno)
        })
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance; names are short, so the simple table is fine.
fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
