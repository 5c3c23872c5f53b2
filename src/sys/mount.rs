//! Mounts: mount(2) with named flags, bind mounts, umount, pivot_root, chroot.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::flags::MOUNT_FLAGS as FLAG_NAMES;
use super::{fs, ops};
use crate::error::{Context, Error, Result};

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

pub use super::flags::mount_flags_names as flags_names;

/// What a mount(2) call is for, as people say it: `mount tmpfs on /tmp`,
/// `bind /usr on /mnt`, `make / rprivate`.
fn describe(source: Option<&Path>, target: &Path, fstype: Option<&str>, flags: MsFlags) -> String {
    let target = target.display();
    let source = source.map(|s| s.display().to_string());
    let source = source.as_deref();
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
    source: Option<&Path>,
    target: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let target = target.as_ref();
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
    /// No set-user-id programs through this bind.
    pub nosuid: bool,
    /// No device nodes through this bind.
    pub nodev: bool,
}

impl Default for BindOpts {
    fn default() -> Self {
        BindOpts {
            ro: false,
            rec: true,
            create: false,
            nosuid: false,
            nodev: false,
        }
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// Bind `source` on `target`. Either all of it happens or, on an error,
/// the bind is undone.
pub fn bind(source: impl AsRef<Path>, target: impl AsRef<Path>, opts: BindOpts) -> Result<()> {
    let (source, target) = (source.as_ref(), target.as_ref());
    if opts.create && std::fs::symlink_metadata(target).is_err() {
        // Under --plan earlier steps were only recorded, so the source may
        // not be there yet: plan for a directory.
        let is_dir = match std::fs::metadata(source) {
            Ok(m) => m.is_dir(),
            Err(_) if ops::planning() => true,
            Err(e) => {
                return Err(Error::sys(
                    format!("bind {} on {}", source.display(), target.display()),
                    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)),
                ))
            }
        };
        if is_dir {
            fs::mkdir(target, 0o755, true)?;
        } else {
            if let Some(parent) = Path::new(target).parent() {
                fs::mkdir(parent, 0o755, true)?;
            }
            fs::write_file(target, b"", Some(0o444))?;
        }
    }
    let mut flags = MsFlags::MS_BIND;
    if opts.rec {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None, flags, None)?;
    let mut attrs = 0;
    for (on, bit) in [
        (opts.ro, MOUNT_ATTR_RDONLY),
        (opts.nosuid, MOUNT_ATTR_NOSUID),
        (opts.nodev, MOUNT_ATTR_NODEV),
    ] {
        if on {
            attrs |= bit;
        }
    }
    if attrs != 0 {
        if let Err(e) = set_attrs(target, opts.rec, attrs) {
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
pub fn make_readonly(target: impl AsRef<Path>, rec: bool) -> Result<()> {
    set_attrs(target.as_ref(), rec, MOUNT_ATTR_RDONLY)
}

fn set_attrs(target: &Path, rec: bool, attrs: u64) -> Result<()> {
    match ops::mount_setattr(target, rec, attrs, 0) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSYS) => {
            let st = nix::sys::statvfs::statvfs(target)
                .op(|| format!("statvfs {}", target.display()))?;
            use nix::sys::statvfs::FsFlags;
            let mut f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            for (bit, flag) in [
                (MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
                (MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
                (MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
            ] {
                if attrs & bit != 0 {
                    f |= flag;
                }
            }
            for (a, b) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                // ST_RELATIME (1 << 12); nix names it for glibc only.
                (FsFlags::from_bits_retain(1 << 12), MsFlags::MS_RELATIME),
            ] {
                if st.flags().contains(a) {
                    f |= b;
                }
            }
            mount(None, target, None, f, None)
        }
        Err(e) => Err(Error::sys(format!("mount_setattr {}", target.display()), e)),
    }
}

/// umount2(2).
pub fn umount(target: impl AsRef<Path>, flags: MntFlags) -> Result<()> {
    let target = target.as_ref();
    ops::umount2(target, flags).op(|| format!("umount {}", target.display()))
}

/// pivot_root(2) as the kernel has it.
pub fn pivot_root(new_root: impl AsRef<Path>, put_old: impl AsRef<Path>) -> Result<()> {
    let (new_root, put_old) = (new_root.as_ref(), put_old.as_ref());
    ops::pivot_root(new_root, put_old)
        .op(|| format!("pivot_root {} {}", new_root.display(), put_old.display()))
}

/// The whole safe pivot: make every mount private so nothing propagates
/// back to the host, bind `new_root` on itself unless it is a mount point
/// already, pivot with `pivot_root(".", ".")` so no put_old directory is
/// needed, detach the old root, and chdir to the new `/`.
pub fn pivot_into(new_root: impl AsRef<Path>) -> Result<()> {
    let new_root = new_root.as_ref();
    let shown = new_root.display();
    mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    // The bind would copy the whole tree below new_root (a sandbox's: the
    // host's mounts again), only for the umount below to drop the original.
    // Under --plan nothing was mounted: the plan's own mounts tell.
    let mounted = match ops::planning() {
        true => ops::planned_mount_at(new_root),
        false => is_mount_root(new_root),
    };
    if !mounted {
        mount(
            Some(new_root),
            new_root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
    }
    ops::chdir(new_root).op(|| format!("chdir {shown}"))?;
    ops::pivot_root(".", ".").op(|| format!("pivot_root {shown}"))?;
    ops::umount2(".", MntFlags::MNT_DETACH).op(|| "umount old root".to_string())?;
    ops::chdir("/").op(|| "chdir /".to_string())
}

/// Whether `path` is the root of a mount (statx's STATX_ATTR_MOUNT_ROOT,
/// Linux 5.8). False when the kernel cannot say, which costs only a bind.
fn is_mount_root(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statx fills the zeroed buffer we own.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            &mut st,
        )
    };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    rc == 0 && st.stx_attributes_mask & bit != 0 && st.stx_attributes & bit != 0
}

/// chroot(2).
pub fn chroot(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    ops::chroot(path).op(|| format!("chroot {}", path.display()))
}

/// Create a mount point for `target`: a 0755 directory, or with `file` an
/// empty 0444 file, along with missing parent directories. Existing ones
/// are left as they are.
pub fn mount_point(target: impl AsRef<Path>, file: bool) -> Result<()> {
    let target = target.as_ref();
    if std::fs::symlink_metadata(target).is_ok() {
        return Ok(());
    }
    if file {
        if let Some(parent) = target.parent() {
            fs::mkdir(parent, 0o755, true)?;
        }
        fs::write_file(target, b"", Some(0o444))
    } else {
        fs::mkdir(target, 0o755, true)
    }
}

/// A tmpfs on `target` with an optional size limit and root mode.
pub fn tmpfs(target: impl AsRef<Path>, size: Option<u64>, mode: Option<u32>) -> Result<()> {
    let mut data = Vec::new();
    if let Some(s) = size {
        data.push(format!("size={s}"));
    }
    data.push(format!("mode={:o}", mode.unwrap_or(0o755)));
    mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&data.join(",")),
    )
}

/// The device nodes a minimal /dev binds from the host.
pub const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The symlinks of a minimal /dev (name, target); `ptmx` leads into the
/// devpts instance mounted on `pts`.
pub const DEV_LINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
    ("ptmx", "pts/ptmx"),
];

/// A minimal /dev on `target`, as bubblewrap's `--dev` makes it: a tmpfs
/// with null, zero, full, random, urandom and tty bound from the host (a
/// user namespace cannot mknod), the fd/stdin/stdout/stderr/core links, a
/// private devpts instance with its ptmx, and a tmpfs on shm. `host_dev`
/// is where the host's /dev is seen from here (`/dev` unless pivoted).
pub fn dev(target: &str, host_dev: &str) -> Result<()> {
    mount_point(target, false)?;
    mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )?;
    for node in DEV_NODES {
        let path = format!("{target}/{node}");
        // On the tmpfs just mounted: nothing to look for, no parent to make.
        fs::write_file(&path, b"", Some(0o444))?;
        mount(
            Some(Path::new(&format!("{host_dev}/{node}"))),
            &path,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    for (link, to) in DEV_LINKS {
        fs::symlink(to, format!("{target}/{link}"))?;
    }
    let pts = format!("{target}/pts");
    fs::mkdir(&pts, 0o755, false)?;
    mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    )?;
    let shm = format!("{target}/shm");
    fs::mkdir(&shm, 0o755, false)?;
    tmpfs(&shm, None, Some(0o1777))
}

/// A fresh proc on `target` (it shows the pid namespace of the caller).
pub fn proc(target: &str) -> Result<()> {
    mount_point(target, false)?;
    proc_on(target)
}

/// A fresh proc on `target`, which must exist: for a mount point outside
/// any tmpfs of ours, where creating it would leave a directory on the
/// host's filesystem (mkdir is not confined by a mount namespace).
pub fn proc_on(target: &str) -> Result<()> {
    mount(
        Some(Path::new("proc")),
        target,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
}

/// A read-only sysfs on `target`. sysfs may only be mounted by the owner
/// of the network namespace, so without a new net namespace the host's is
/// bound read-only instead (from `host_sys`, `/sys` unless pivoted).
pub fn sysfs(target: &str, host_sys: &str) -> Result<()> {
    mount_point(target, false)?;
    let f = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    match mount(Some(Path::new("sysfs")), target, Some("sysfs"), f, None) {
        Ok(()) => Ok(()),
        Err(Error::Sys {
            errno: nix::errno::Errno::EPERM,
            ..
        }) => bind(
            host_sys,
            target,
            BindOpts {
                ro: true,
                ..BindOpts::default()
            },
        ),
        Err(e) => Err(e),
    }
}

/// A POSIX message queue file system on `target` (needs a new ipc namespace).
pub fn mqueue(target: &str) -> Result<()> {
    mount_point(target, false)?;
    mount(
        Some(Path::new("mqueue")),
        target,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
}

/// The checks of an overlay's options that need no system call.
pub fn overlay_check(o: &OverlayOpts) -> Result<()> {
    if o.lower.is_empty() {
        return Err(Error::Invalid(
            "overlay needs at least one lower directory".into(),
        ));
    }
    if o.lower.len() == 1 && o.upper.is_none() && !o.tmpfs_upper {
        return Err(Error::Invalid(
            "a read-only overlay needs two or more lower directories (or give upper/work or tmpfs_upper)".into(),
        ));
    }
    for l in &o.lower {
        if l.contains(':') || l.contains(',') {
            return Err(Error::Invalid(format!(
                "overlay: the path '{l}' may not contain ':' or ','"
            )));
        }
    }
    if o.upper.is_some() != o.work.is_some() {
        return Err(Error::Invalid("overlay: upper and work go together".into()));
    }
    Ok(())
}

/// Whether this process is in a user namespace other than the initial one
/// (as far as /proc tells: false where it is not mounted).
pub fn in_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// Options of [`overlay`].
#[derive(Clone, Debug, Default)]
pub struct OverlayOpts {
    /// Lower layers, top first.
    pub lower: Vec<String>,
    /// The writable layer; with `work`. Neither: read-only overlay, or
    /// with `tmpfs_upper` a throwaway writable one.
    pub upper: Option<String>,
    /// The overlay's work directory, on the same file system as `upper`.
    pub work: Option<String>,
    /// Put upper and work on a fresh tmpfs (writes vanish with the sandbox).
    pub tmpfs_upper: bool,
}

/// overlayfs on `target`. In a user namespace the kernel (5.11+) allows it
/// with `userxattr`, which is added when not running as root of the
/// initial namespace.
pub fn overlay(target: &str, o: &OverlayOpts) -> Result<()> {
    overlay_check(o)?;
    mount_point(target, false)?;
    let (upper, work) = if o.tmpfs_upper {
        // The scratch tmpfs lives on a directory beside nothing visible: on
        // the target itself, before the overlay covers it.
        let scratch = target;
        tmpfs(scratch, None, Some(0o755))?;
        fs::mkdir(format!("{scratch}/upper"), 0o755, false)?;
        fs::mkdir(format!("{scratch}/work"), 0o755, false)?;
        (
            Some(format!("{scratch}/upper")),
            Some(format!("{scratch}/work")),
        )
    } else {
        (o.upper.clone(), o.work.clone())
    };
    let mut data = format!("lowerdir={}", o.lower.join(":"));
    match (&upper, &work) {
        (Some(u), Some(w)) => data.push_str(&format!(",upperdir={u},workdir={w}")),
        (None, None) => {}
        _ => return Err(Error::Invalid("overlay: upper and work go together".into())),
    }
    if in_userns() {
        data.push_str(",userxattr");
    }
    mount(
        Some(Path::new("overlay")),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )
}
