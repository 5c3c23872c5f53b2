//! Landlock: limit the sandboxed program's file system access to listed
//! paths, its TCP binds and connects to listed ports, and scope its
//! abstract unix sockets and signals to the sandbox; on top of (and
//! independent from) the namespaces. Raw system calls.
//!
//! It fails closed: a request the kernel cannot enforce (no Landlock, or an
//! ABI older than what was asked for) is an error before anything starts,
//! never a sandbox that quietly restricts less. The rights handled are
//! those of the ABI nsrun uses, the lower of the kernel's and
//! [`KNOWN_ABI`], so a newer kernel adds nothing nsrun did not ask for.

use std::collections::BTreeMap;
use std::ffi::CString;

use nix::errno::Errno;

use super::ops;
use crate::error::{suggest, Context, Error, Result};

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;

/// Rights that make sense on a file (not a directory) rule.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
/// Read-only access: read and execute files, list directories.
const RO: u64 = EXECUTE | READ_FILE | READ_DIR;

/// LANDLOCK_ACCESS_NET_BIND_TCP, LANDLOCK_ACCESS_NET_CONNECT_TCP.
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;

/// LANDLOCK_RULE_PATH_BENEATH, LANDLOCK_RULE_NET_PORT.
const RULE_PATH_BENEATH: u32 = 1;
const RULE_NET_PORT: u32 = 2;

/// The newest Landlock ABI whose rights nsrun knows and uses: 6 (Linux
/// 6.12, scoping). ABI 7 (6.15) adds only audit-log flags.
pub const KNOWN_ABI: i64 = 6;

/// The first kernel of each ABI, for messages.
fn kernel_of(abi: i64) -> &'static str {
    match abi {
        1 => "5.13",
        2 => "5.19",
        3 => "6.2",
        4 => "6.7",
        5 => "6.10",
        6 => "6.12",
        _ => "6.15",
    }
}

/// What a Landlock domain keeps to itself (`landlock_ruleset_attr.scoped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET: no connecting to abstract unix
    /// sockets made outside the sandbox's domain (the host's, with a shared
    /// network namespace).
    AbstractUnix,
    /// LANDLOCK_SCOPE_SIGNAL: no signals to processes outside the domain.
    Signal,
}

impl Scope {
    /// The names `scope = {...}` takes.
    pub const NAMES: &'static [&'static str] = &["abstract_unix", "signal"];

    /// A scope by name, with a "did you mean" for a typo.
    pub fn parse(name: &str) -> Result<Scope> {
        match name {
            "abstract_unix" => Ok(Scope::AbstractUnix),
            "signal" => Ok(Scope::Signal),
            other => {
                let hint = suggest(other, Scope::NAMES.iter().copied())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                Err(Error::Invalid(format!(
                    "landlock.scope: unknown scope '{other}'{hint}; known: {}",
                    Scope::NAMES.join(", ")
                )))
            }
        }
    }

    /// Its name in `scope = {...}`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::AbstractUnix => "abstract_unix",
            Scope::Signal => "signal",
        }
    }

    fn bit(self) -> u64 {
        match self {
            Scope::AbstractUnix => 1 << 0,
            Scope::Signal => 1 << 1,
        }
    }
}

/// What the program may do. Each kind of access is restricted only when
/// asked for: file system access when `fs` is set, binds when `tcp_bind`
/// is `Some`, connects when `tcp_connect` is `Some`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Restrict file system access to `ro` and `rw` (even when both are
    /// empty: then nothing is reachable).
    pub fs: bool,
    /// Read (and execute) below these.
    pub ro: Vec<String>,
    /// Anything below these.
    pub rw: Vec<String>,
    /// TCP bind only to these ports.
    pub tcp_bind: Option<Vec<u16>>,
    /// TCP connect only to these ports.
    pub tcp_connect: Option<Vec<u16>>,
    /// What stays inside the sandbox's domain.
    pub scope: Vec<Scope>,
}

/// The kernel's Landlock ABI version, or why there is none: ENOSYS (not
/// built in) or EOPNOTSUPP (built in, not enabled at boot).
fn probe() -> std::result::Result<i64, Errno> {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    Errno::result(v)
}

/// The Landlock ABI version of this kernel (0: none).
pub fn abi() -> i64 {
    probe().unwrap_or(0)
}

/// Every file system right ABI `abi` knows.
fn handled(abi: i64) -> u64 {
    let mut m = (1u64 << 13) - 1; // v1: execute .. make_sym
    if abi >= 2 {
        m |= REFER;
    }
    if abi >= 3 {
        m |= TRUNCATE;
    }
    if abi >= 5 {
        m |= IOCTL_DEV;
    }
    m
}

/// `landlock_ruleset_attr`, as of ABI 6.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

fn names_of_net(bits: u64) -> String {
    let mut v = Vec::new();
    if bits & NET_BIND_TCP != 0 {
        v.push("bind");
    }
    if bits & NET_CONNECT_TCP != 0 {
        v.push("connect");
    }
    v.join(",")
}

impl Rules {
    /// The ABI these rules need, and the option that needs it.
    pub fn needs(&self) -> (i64, &'static str) {
        if !self.scope.is_empty() {
            (6, "scope")
        } else if self.tcp_connect.is_some() {
            (4, "tcp_connect")
        } else if self.tcp_bind.is_some() {
            (4, "tcp_bind")
        } else {
            (1, "ro/rw")
        }
    }

    /// Whether the rules restrict anything at all.
    pub fn is_empty(&self) -> bool {
        !self.fs && self.tcp_bind.is_none() && self.tcp_connect.is_none() && self.scope.is_empty()
    }

    /// Check this kernel can enforce the rules; the ABI nsrun will use.
    /// Called in the parent before anything starts, and again by
    /// [`Rules::apply`].
    pub fn check(&self) -> Result<i64> {
        self.check_against(probe())
    }

    fn check_against(&self, kernel: std::result::Result<i64, Errno>) -> Result<i64> {
        if self.is_empty() {
            return Err(Error::Invalid(
                "landlock: nothing to restrict: give ro/rw, tcp_bind, tcp_connect or scope".into(),
            ));
        }
        let (need, what) = self.needs();
        let verb = if what == "ro/rw" { "need" } else { "needs" };
        let has = match kernel {
            Ok(v) if v >= need => return Ok(v.min(KNOWN_ABI)),
            Ok(v) => format!("ABI {v}"),
            Err(Errno::EOPNOTSUPP) => {
                "Landlock built in but not enabled (add landlock to the lsm= boot option)".into()
            }
            Err(_) => "no Landlock".into(),
        };
        Err(Error::Invalid(format!(
            "landlock: {what} {verb} Landlock ABI {need} (kernel {}+); this kernel has {has}",
            kernel_of(need)
        )))
    }

    /// The ruleset attribute for ABI `abi`.
    fn attr(&self, abi: i64) -> RulesetAttr {
        let mut net = 0;
        if self.tcp_bind.is_some() {
            net |= NET_BIND_TCP;
        }
        if self.tcp_connect.is_some() {
            net |= NET_CONNECT_TCP;
        }
        RulesetAttr {
            handled_access_fs: if self.fs { handled(abi) } else { 0 },
            handled_access_net: net,
            scoped: self.scope.iter().fold(0, |m, s| m | s.bit()),
        }
    }

    /// One line for `--plan`/`--trace`: the ABI used and what is handled.
    pub fn describe(&self, abi: i64) -> String {
        let a = self.attr(abi);
        let mut parts = vec![format!("ABI {abi}")];
        if self.fs {
            parts.push(format!("fs={:#x}", a.handled_access_fs));
        }
        if a.handled_access_net != 0 {
            parts.push(format!("net={}", names_of_net(a.handled_access_net)));
        }
        if !self.scope.is_empty() {
            let s: Vec<&str> = self.scope.iter().map(|s| s.name()).collect();
            parts.push(format!("scoped={}", s.join(",")));
        }
        parts.join(", ")
    }

    /// Restrict the calling process (it needs no_new_privs or
    /// CAP_SYS_ADMIN). The paths are opened now, as the process sees them.
    pub fn apply(&self) -> Result<()> {
        // Queried under --plan too: the query changes nothing, and the
        // plan should say which ABI a real run would use.
        let abi = self.check()?;
        let attr = self.attr(abi);
        // The kernel takes the struct up to the fields it knows; pass what
        // this ABI has, so an older kernel never sees a field it lacks.
        let size = match abi {
            ..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        let fd = ops::act(
            || format!("landlock_create_ruleset({})", self.describe(abi)),
            || {
                // SAFETY: a valid attribute struct, `size` at most its size.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_landlock_create_ruleset,
                        &attr as *const RulesetAttr,
                        size,
                        0u32,
                    )
                };
                Errno::result(rc).map(|fd| fd as i32)
            },
        )
        .op(|| format!("landlock_create_ruleset (ABI {abi})"))?;
        let r = self.add_all(fd, attr.handled_access_fs);
        let r = r.and_then(|()| {
            ops::act(
                || "landlock_restrict_self()".into(),
                || {
                    // SAFETY: fd is our ruleset.
                    Errno::result(unsafe {
                        libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32)
                    })
                    .map(drop)
                },
            )
            .op(|| "landlock_restrict_self".into())
        });
        if fd >= 0 && !ops::planning() {
            // SAFETY: closing the ruleset fd we made.
            unsafe { libc::close(fd) };
        }
        r
    }

    fn add_all(&self, ruleset: i32, all: u64) -> Result<()> {
        if self.fs {
            for (paths, rights) in [(&self.ro, RO & all), (&self.rw, all)] {
                for p in paths {
                    add_path_rule(ruleset, p, rights)?;
                }
            }
        }
        // One rule per port with every access it is listed for.
        let mut ports: BTreeMap<u16, u64> = BTreeMap::new();
        for (list, bit) in [
            (&self.tcp_bind, NET_BIND_TCP),
            (&self.tcp_connect, NET_CONNECT_TCP),
        ] {
            for p in list.iter().flatten() {
                *ports.entry(*p).or_default() |= bit;
            }
        }
        for (port, access) in ports {
            add_port_rule(ruleset, port, access)?;
        }
        Ok(())
    }
}

fn add_port_rule(ruleset: i32, port: u16, access: u64) -> Result<()> {
    #[repr(C)]
    struct NetPort {
        allowed_access: u64,
        port: u64,
    }
    let attr = NetPort {
        allowed_access: access,
        port: u64::from(port),
    };
    ops::act(
        || format!("landlock_add_rule(tcp {port}: {})", names_of_net(access)),
        || {
            // SAFETY: LANDLOCK_RULE_NET_PORT with its struct.
            Errno::result(unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    RULE_NET_PORT,
                    &attr as *const NetPort,
                    0u32,
                )
            })
            .map(drop)
        },
    )
    .op(|| format!("landlock_add_rule tcp port {port}"))
}

fn add_path_rule(ruleset: i32, path: &str, rights: u64) -> Result<()> {
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let c =
        CString::new(path).map_err(|_| Error::Invalid(format!("landlock: bad path {path:?}")))?;
    let planning = ops::planning();
    // SAFETY: a valid C string; O_PATH opens without access checks on the file.
    let fd = if planning {
        -1
    } else {
        unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) }
    };
    if fd < 0 && !planning {
        return Err(Error::sys(format!("landlock: open {path}"), Errno::last()));
    }
    let mut rights = rights;
    if !planning {
        // SAFETY: fstat on our fd into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            rights &= FILE_RIGHTS;
        }
    }
    let attr = PathBeneath {
        allowed_access: rights,
        parent_fd: fd,
    };
    let r = ops::act(
        || format!("landlock_add_rule({path:?}, {rights:#x})"),
        || {
            // SAFETY: LANDLOCK_RULE_PATH_BENEATH with its packed struct.
            Errno::result(unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    RULE_PATH_BENEATH,
                    &attr as *const PathBeneath,
                    0u32,
                )
            })
            .map(drop)
        },
    )
    .op(|| format!("landlock_add_rule {path}"));
    if fd >= 0 {
        // SAFETY: closing the fd we opened.
        unsafe { libc::close(fd) };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(connect: &[u16]) -> Rules {
        Rules {
            tcp_connect: Some(connect.to_vec()),
            ..Rules::default()
        }
    }

    #[test]
    fn fails_closed() {
        let fs = Rules {
            fs: true,
            ro: vec!["/usr".into()],
            ..Rules::default()
        };
        assert_eq!(fs.check_against(Ok(1)).unwrap(), 1);
        assert_eq!(fs.check_against(Ok(9)).unwrap(), KNOWN_ABI);
        let e = fs
            .check_against(Err(Errno::ENOSYS))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "landlock: ro/rw need Landlock ABI 1 (kernel 5.13+); this kernel has no Landlock"
        );
        let e = fs
            .check_against(Err(Errno::EOPNOTSUPP))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not enabled"), "{e}");
        let e = net(&[443]).check_against(Ok(3)).unwrap_err().to_string();
        assert_eq!(
            e,
            "landlock: tcp_connect needs Landlock ABI 4 (kernel 6.7+); this kernel has ABI 3"
        );
        assert_eq!(net(&[443]).check_against(Ok(4)).unwrap(), 4);
        let scoped = Rules {
            scope: vec![Scope::Signal],
            ..net(&[])
        };
        let e = scoped.check_against(Ok(5)).unwrap_err().to_string();
        assert!(
            e.starts_with("landlock: scope needs Landlock ABI 6 (kernel 6.12+)"),
            "{e}"
        );
        let e = Rules::default()
            .check_against(Ok(7))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing to restrict"), "{e}");
    }

    #[test]
    fn handles_only_what_was_asked() {
        let r = Rules {
            tcp_bind: Some(vec![]),
            scope: vec![Scope::AbstractUnix],
            ..Rules::default()
        };
        let a = r.attr(6);
        assert_eq!(
            (a.handled_access_fs, a.handled_access_net, a.scoped),
            (0, NET_BIND_TCP, 1)
        );
        assert_eq!(r.describe(6), "ABI 6, net=bind, scoped=abstract_unix");
        let fs = Rules {
            fs: true,
            ..Rules::default()
        };
        assert_eq!(fs.attr(3).handled_access_fs, handled(3));
        assert_eq!(fs.attr(3).handled_access_net, 0);
    }

    #[test]
    fn scope_names() {
        assert_eq!(Scope::parse("signal").unwrap(), Scope::Signal);
        let e = Scope::parse("abstract_unx").unwrap_err().to_string();
        assert!(e.contains("did you mean 'abstract_unix'"), "{e}");
    }
}
