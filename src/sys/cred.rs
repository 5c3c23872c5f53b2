//! Identity: user and group ids, supplementary groups.

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

/// After joining a user namespace, become its root as nsenter does unless
/// told `--preserve-credentials`: drop the supplementary groups (they mean
/// nothing inside; refused where `/proc/self/setgroups` is "deny", which
/// nsenter tolerates too), then gid and uid 0. Without this a process keeps
/// the ids its outside ids map to, or the overflow id where they are not
/// mapped, and has no capabilities after its next exec.
pub fn become_ns_root() -> Result<()> {
    if let Err(e) = ops::setgroups(&[]) {
        let denied = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() == "deny")
            .unwrap_or(false);
        if !(e == nix::errno::Errno::EPERM && denied) {
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
