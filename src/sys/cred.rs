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
