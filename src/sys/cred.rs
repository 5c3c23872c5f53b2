//! Identity: user and group ids, supplementary groups.

use std::io::Read;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::ops;
use crate::error::{Context, Result};

/// Switch real, effective and saved uid.
pub fn setuid(uid: u32) -> Result<()> {
    ops::setresuid(Uid::from_raw(uid)).op(|| format!("setuid {uid}"))
}

/// Switch real, effective and saved gid.
pub fn setgid(gid: u32) -> Result<()> {
    ops::setresgid(Gid::from_raw(gid)).op(|| format!("setgid {gid}"))
}

/// Set the supplementary groups.
pub fn setgroups(groups: &[u32]) -> Result<()> {
    let g: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    ops::setgroups(&g).op(|| format!("setgroups {groups:?}"))
}

/// This process's pid.
pub fn getpid() -> i32 {
    nix::unistd::getpid().as_raw()
}
/// The parent's pid (0 when the parent is outside our pid namespace).
pub fn getppid() -> i32 {
    nix::unistd::getppid().as_raw()
}
/// Real uid.
pub fn getuid() -> u32 {
    nix::unistd::getuid().as_raw()
}
/// Effective uid.
pub fn geteuid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
/// Real gid.
pub fn getgid() -> u32 {
    nix::unistd::getgid().as_raw()
}
/// Effective gid.
pub fn getegid() -> u32 {
    nix::unistd::getegid().as_raw()
}

/// What [`become_ns_root`] needs to know from before the user namespace
/// is joined ([`before_joining_user_ns`]).
#[derive(Debug)]
pub struct BeforeJoin {
    /// The supplementary groups were dropped while still privileged.
    cleared: bool,
    /// Our own `/proc/PID` directory, opened before the join: after joining
    /// the target's mount namespace `/proc` may be the container's, where
    /// our pid has no entry.
    proc_self: Option<OwnedFd>,
}

/// Call before joining a user namespace whose root we will become: drop
/// the supplementary groups while we may (as nsenter does), since in a
/// namespace whose `setgroups` is "deny" (every rootless container) no one
/// can drop them after joining.
pub fn before_joining_user_ns() -> BeforeJoin {
    let cleared = ops::setgroups(&[]).is_ok();
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let proc_self = nix::fcntl::open("/proc/self", flags, Mode::empty()).ok();
    BeforeJoin { cleared, proc_self }
}

/// Whether the user namespace we are in has `setgroups` "deny", read
/// through the `/proc` we had before joining.
fn setgroups_denied(before: &BeforeJoin) -> bool {
    let fd = match &before.proc_self {
        Some(dir) => nix::fcntl::openat(
            dir,
            "setgroups",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
        None => nix::fcntl::open(
            "/proc/self/setgroups",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
    };
    let mut s = String::new();
    fd.ok()
        .and_then(|fd| std::fs::File::from(fd).read_to_string(&mut s).ok())
        .is_some_and(|_| s.trim() == "deny")
}

/// After joining a user namespace, become its root as nsenter does unless
/// told `--preserve-credentials`: drop the supplementary groups (they mean
/// nothing inside), then gid and uid 0. Without this a process keeps the
/// ids its outside ids map to, or the overflow id where they are not
/// mapped, and has no capabilities after its next exec.
///
/// Dropping the groups is refused inside where `setgroups` is "deny"; as
/// nsenter, that is an error only if they could not be dropped before the
/// join either, and not even then where it is "deny" (an unprivileged
/// caller's groups then stay, shown inside as the overflow gid).
pub fn become_ns_root(before: &BeforeJoin) -> Result<()> {
    if let Err(e) = ops::setgroups(&[]) {
        let denied = e == nix::errno::Errno::EPERM && setgroups_denied(before);
        if !(before.cleared || denied) {
            return Err(crate::Error::sys(
                "setgroups [] after joining a user namespace",
                e,
            ));
        }
    }
    ops::setresgid(Gid::from_raw(0))
        .op(|| "setgid 0 after joining a user namespace (keep the ids with preserve_credentials = true)".into())?;
    ops::setresuid(Uid::from_raw(0))
        .op(|| "setuid 0 after joining a user namespace (keep the ids with preserve_credentials = true)".into())
}
