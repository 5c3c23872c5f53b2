//! Names of clone and mount flags, for trace lines and for parsing.
//!
//! A leaf: [`super::ops`] formats its trace lines with these while
//! [`super::namespace`] and [`super::mount`] call `ops`, so the names
//! live here rather than in either of those.

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

/// `CLONE_NEWTIME`, which nix does not name.
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(0x80);

/// The `CLONE_NEW*` flags by the names recipes use, in
/// [`super::namespace::Namespace::ALL`] order (a test there checks they agree).
pub(crate) const NAMESPACE_FLAGS: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mount", CloneFlags::CLONE_NEWNS),
    ("time", CLONE_NEWTIME),
];

/// Mount flags by name, as recipes write them.
pub(crate) const MOUNT_FLAGS: &[(&str, MsFlags)] = &[
    ("bind", MsFlags::MS_BIND),
    ("rec", MsFlags::MS_REC),
    ("ro", MsFlags::MS_RDONLY),
    ("rdonly", MsFlags::MS_RDONLY),
    ("rw", MsFlags::empty()),
    ("nosuid", MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC),
    ("remount", MsFlags::MS_REMOUNT),
    ("private", MsFlags::MS_PRIVATE),
    ("slave", MsFlags::MS_SLAVE),
    ("shared", MsFlags::MS_SHARED),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("move", MsFlags::MS_MOVE),
    ("relatime", MsFlags::MS_RELATIME),
    ("noatime", MsFlags::MS_NOATIME),
    ("strictatime", MsFlags::MS_STRICTATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME),
    ("lazytime", MsFlags::MS_LAZYTIME),
    ("sync", MsFlags::MS_SYNCHRONOUS),
    ("dirsync", MsFlags::MS_DIRSYNC),
    ("silent", MsFlags::MS_SILENT),
    ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// `user|pid|…` for trace lines and messages.
pub fn clone_flags_names(flags: CloneFlags) -> String {
    let mut names: Vec<&str> = NAMESPACE_FLAGS
        .iter()
        .filter(|(_, f)| flags.contains(*f))
        .map(|(n, _)| *n)
        .collect();
    let rest = flags.bits() & !NAMESPACE_FLAGS.iter().fold(0, |a, (_, f)| a | f.bits());
    let rest_s;
    if rest != 0 {
        rest_s = format!("{rest:#x}");
        names.push(&rest_s);
    }
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// `bind|rec|ro` for trace lines.
pub fn mount_flags_names(flags: MsFlags) -> String {
    let mut left = flags;
    let mut names = Vec::new();
    for (n, v) in MOUNT_FLAGS {
        if !v.is_empty() && v.bits().count_ones() == 1 && left.contains(*v) {
            names.push(n.to_string());
            left.remove(*v);
        }
    }
    if !left.is_empty() {
        names.push(format!("{:#x}", left.bits()));
    }
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}
