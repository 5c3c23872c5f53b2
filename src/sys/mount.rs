//! Mounts: mount(2) with named flags, bind mounts, umount, pivot_root, chroot.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::{fs, ops};
use crate::error::{Context, Error, Result};

const FLAG_NAMES: &[(&str, MsFlags)] = &[
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

const UMOUNT_NAMES: &[(&str, MntFlags)] = &[
    ("detach", MntFlags::MNT_DETACH),
    ("force", MntFlags::MNT_FORCE),
    ("expire", MntFlags::MNT_EXPIRE),
    ("nofollow", MntFlags::UMOUNT_NOFOLLOW),
];

fn unknown(what: &str, name: &str, valid: &[&str]) -> Error {
    let hint = crate::error::suggest(name, valid.iter().copied())
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    Error::Invalid(format!(
        "unknown {what} '{name}'{hint}; valid: {}",
        valid.join(" ")
    ))
}

/// Parse mount flag names (`bind`, `rec`, `ro`, …).
pub fn parse_flags<S: AsRef<str>>(names: &[S]) -> Result<MsFlags> {
    let mut f = MsFlags::empty();
    for n in names {
        let n = n.as_ref().trim().to_ascii_lowercase();
        let n = n.strip_prefix("ms_").unwrap_or(&n);
        match FLAG_NAMES.iter().find(|(k, _)| *k == n) {
            Some((_, v)) => f |= *v,
            None => {
                let valid: Vec<&str> = FLAG_NAMES.iter().map(|(k, _)| *k).collect();
                return Err(unknown("mount flag", n, &valid));
            }
        }
    }
    Ok(f)
}

/// Parse umount flag names (`detach`, `force`, `expire`, `nofollow`).
pub fn parse_umount_flags<S: AsRef<str>>(names: &[S]) -> Result<MntFlags> {
    let mut f = MntFlags::empty();
    for n in names {
        let n = n.as_ref().trim().to_ascii_lowercase();
        match UMOUNT_NAMES.iter().find(|(k, _)| *k == n) {
            Some((_, v)) => f |= *v,
            None => {
                let valid: Vec<&str> = UMOUNT_NAMES.iter().map(|(k, _)| *k).collect();
                return Err(unknown("umount flag", &n, &valid));
            }
        }
    }
    Ok(f)
}

/// `bind|rec|ro` for trace lines.
pub fn flags_names(flags: MsFlags) -> String {
    let mut left = flags;
    let mut names = Vec::new();
    for (n, v) in FLAG_NAMES {
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

/// What a mount(2) call is for, as people say it: `mount tmpfs on /tmp`,
/// `bind /usr on /mnt`, `make / rprivate`.
fn describe(source: Option<&str>, target: &str, fstype: Option<&str>, flags: MsFlags) -> String {
    let prop =
        MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE;
    if flags.intersects(prop) && !flags.contains(MsFlags::MS_BIND) {
        return format!(
            "mount --make-{} {target}",
            flags_names(flags).replace('|', ",")
        );
    }
    if flags.contains(MsFlags::MS_REMOUNT) {
        return format!(
            "mount -o remount,{} {target}",
            flags_names(flags).replace('|', ",")
        );
    }
    if flags.contains(MsFlags::MS_MOVE) {
        return format!("mount --move {} {target}", source.unwrap_or("?"));
    }
    if flags.contains(MsFlags::MS_BIND) {
        return format!("bind {} on {target}", source.unwrap_or("?"));
    }
    format!("mount {} on {target}", source.or(fstype).unwrap_or("none"))
}

/// mount(2).
pub fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    ops::mount(source, target, fstype, flags, data).op(|| describe(source, target, fstype, flags))
}

/// Options of [`bind`].
#[derive(Clone, Copy, Debug)]
pub struct BindOpts {
    /// Make the bind (and, with `rec`, every mount under it) read-only.
    pub ro: bool,
    /// Bind the whole tree under `source`, not just its top mount.
    pub rec: bool,
    /// Create the target (a directory or an empty file, like the source) if missing.
    pub create: bool,
}

impl Default for BindOpts {
    fn default() -> Self {
        BindOpts {
            ro: false,
            rec: true,
            create: false,
        }
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Bind `source` on `target`. Either all of it happens or, on an error,
/// the bind is undone.
pub fn bind(source: &str, target: &str, opts: BindOpts) -> Result<()> {
    if opts.create && std::fs::symlink_metadata(target).is_err() {
        let meta = std::fs::metadata(source).op(|| format!("bind {source} on {target}"))?;
        if meta.is_dir() {
            fs::mkdir(target, 0o755, true)?;
        } else {
            if let Some(parent) = Path::new(target).parent() {
                fs::mkdir(&parent.to_string_lossy(), 0o755, true)?;
            }
            fs::write_file(target, b"", Some(0o444))?;
        }
    }
    let mut flags = MsFlags::MS_BIND;
    if opts.rec {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None, flags, None)?;
    if opts.ro {
        if let Err(e) = make_readonly(target, opts.rec) {
            let _ = ops::umount2(target, MntFlags::MNT_DETACH);
            return Err(e);
        }
    }
    Ok(())
}

/// Make the mount at `target` (and with `rec` every mount below it)
/// read-only. mount_setattr changes only the read-only bit, so the flags a
/// user namespace may not clear (nosuid, nodev, …) stay as they are; the
/// old remount path has to copy them over by hand.
pub fn make_readonly(target: &str, rec: bool) -> Result<()> {
    match ops::mount_setattr(target, rec, MOUNT_ATTR_RDONLY, 0) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSYS) => {
            let st = nix::sys::statvfs::statvfs(target).op(|| format!("statvfs {target}"))?;
            use nix::sys::statvfs::FsFlags;
            let mut f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            for (a, b) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.flags().contains(a) {
                    f |= b;
                }
            }
            mount(None, target, None, f, None)
        }
        Err(e) => Err(Error::sys(format!("mount -o remount,ro {target}"), e)),
    }
}

/// umount2(2).
pub fn umount(target: &str, flags: MntFlags) -> Result<()> {
    ops::umount2(target, flags).op(|| format!("umount {target}"))
}

/// pivot_root(2) as the kernel has it.
pub fn pivot_root(new_root: &str, put_old: &str) -> Result<()> {
    ops::pivot_root(new_root, put_old).op(|| format!("pivot_root {new_root} {put_old}"))
}

/// The whole safe pivot: make every mount private so nothing propagates
/// back to the host, bind `new_root` on itself so it is a mount point,
/// pivot with `pivot_root(".", ".")` so no put_old directory is needed,
/// detach the old root, and chdir to the new `/`.
pub fn pivot_into(new_root: &str) -> Result<()> {
    mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    mount(
        Some(new_root),
        new_root,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    ops::chdir(new_root).op(|| format!("chdir {new_root}"))?;
    ops::pivot_root(".", ".").op(|| format!("pivot_root {new_root}"))?;
    ops::umount2(".", MntFlags::MNT_DETACH).op(|| "umount old root".to_string())?;
    ops::chdir("/").op(|| "chdir /".to_string())
}

/// chroot(2).
pub fn chroot(path: &str) -> Result<()> {
    ops::chroot(path).op(|| format!("chroot {path}"))
}
