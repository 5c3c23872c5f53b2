//! Building inside a directory whose contents nobody vouches for.
//!
//! A sandbox's new root is an unpacked image, or a tree that holds binds
//! of the user's own directories: either may hold symlinks, and a process
//! outside may swap a directory for one while set-up runs. A path string
//! handed to mount(2), mkdir(2) or open(2) is walked by the kernel with the
//! caller's root, so `etc -> /oldroot/etc` made set-up write the host's
//! files (runc CVE-2021-30465, CVE-2024-45310, CVE-2025-31133).
//!
//! A [`Root`] holds an `O_PATH` fd of the directory and resolves every
//! path given to it with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`:
//! absolute symlinks and `..` stay inside, `/proc/self/...` links are
//! refused. Mounts attach through the resolved fd with the new mount API
//! (`open_tree`, `fsopen`/`fsmount`, `move_mount` with empty paths), so no
//! path is walked a second time between the check and the use.
//!
//! Every call that changes something goes through [`ops::act`], so `--plan`
//! records it and `--trace` logs it; under `--plan` no fd is opened
//! (`Fd` is `None`) and the steps are only recorded.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::mount::{OverlayOpts, DEV_LINKS, DEV_NODES};
use super::ops;
use crate::error::{Error, Result};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;
const OPEN_TREE_CLONE: u32 = 0x1;
const FSOPEN_CLOEXEC: u32 = 0x1;
const FSMOUNT_CLOEXEC: u32 = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_FD: u32 = 5;
const FSCONFIG_CMD_CREATE: u32 = 6;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `struct open_how` (libc's is `non_exhaustive`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// An fd a call made; `None` under `--plan`, where nothing is opened.
type Fd = Option<OwnedFd>;

/// The number to pass for `fd`; -1 (never used: planned calls are only
/// recorded) under `--plan`.
fn raw(fd: &Fd) -> RawFd {
    fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
}

fn cstr(s: &str) -> nix::Result<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// A system call that returns a new fd, through the door.
fn new_fd(call: impl FnOnce() -> String, f: impl FnOnce() -> libc::c_long) -> nix::Result<Fd> {
    ops::act(call, || {
        let fd = Errno::result(f())?;
        // SAFETY: the kernel just gave us this fd; nobody else owns it.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    })
}

/// A system call that returns 0 or -1, through the door.
fn unit(call: impl FnOnce() -> String, f: impl FnOnce() -> libc::c_long) -> nix::Result<()> {
    ops::act(call, || Errno::result(f()).map(drop))
}

/// openat2 with the root's resolution rules. EAGAIN (a rename or mount
/// raced a `..`, which the kernel cannot then vouch for) is retried.
fn openat2(dirfd: RawFd, path: &str, flags: i32, mode: u32) -> nix::Result<Fd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    let mut tries = 0;
    loop {
        let r = new_fd(
            || format!("openat2({dirfd}, {path:?}, {flags:#o}, in_root)"),
            // SAFETY: a NUL-terminated path and a correctly sized open_how.
            || unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dirfd,
                    c.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            },
        );
        match r {
            Err(Errno::EAGAIN) if tries < 32 => tries += 1,
            r => return r,
        }
    }
}

/// openat of one name in `dirfd`, never following a final symlink: for a
/// directory this set-up just made, so a symlink swapped in is refused.
fn openat_here(dirfd: RawFd, name: &str, flags: i32, mode: u32) -> nix::Result<Fd> {
    let c = cstr(name)?;
    new_fd(
        || format!("openat({dirfd}, {name:?}, {flags:#o}|nofollow)"),
        // SAFETY: a NUL-terminated path.
        || unsafe {
            libc::openat(
                dirfd,
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode,
            ) as libc::c_long
        },
    )
}

fn mkdirat(dirfd: RawFd, name: &str, mode: u32) -> nix::Result<()> {
    let c = cstr(name)?;
    unit(
        || format!("mkdirat({dirfd}, {name:?}, {mode:#o})"),
        // SAFETY: a NUL-terminated path.
        || unsafe { libc::mkdirat(dirfd, c.as_ptr(), mode as libc::mode_t) as libc::c_long },
    )
}

fn symlinkat(target: &str, dirfd: RawFd, name: &str) -> nix::Result<()> {
    let (t, c) = (cstr(target)?, cstr(name)?);
    unit(
        || format!("symlinkat({target:?}, {dirfd}, {name:?})"),
        // SAFETY: NUL-terminated paths.
        || unsafe { libc::symlinkat(t.as_ptr(), dirfd, c.as_ptr()) as libc::c_long },
    )
}

/// chmod of what `fd` (an O_PATH fd) stands for: fchmodat2 (Linux 6.6) takes
/// AT_EMPTY_PATH, so nothing is walked again.
fn fchmod_path(fd: &Fd, mode: u32) -> nix::Result<()> {
    let d = raw(fd);
    unit(
        || format!("fchmodat2({d}, \"\", {mode:#o}, AT_EMPTY_PATH)"),
        // SAFETY: an empty NUL-terminated path.
        || unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                d,
                c"".as_ptr(),
                mode,
                libc::AT_EMPTY_PATH,
            )
        },
    )
}

fn open_tree(dirfd: RawFd, path: &str, flags: u32) -> nix::Result<Fd> {
    let c = cstr(path)?;
    let flags = flags | OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    new_fd(
        || format!("open_tree({dirfd}, {path:?}, {flags:#x})"),
        // SAFETY: a NUL-terminated path.
        || unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c.as_ptr(), flags) },
    )
}

/// move_mount of the detached tree `from` onto `to_path` in `to` (the fd
/// itself when `to_path` is empty).
fn move_mount(from: &Fd, to: &Fd, to_path: &str) -> nix::Result<()> {
    let c = cstr(to_path)?;
    let (f, t) = (raw(from), raw(to));
    let mut flags = MOVE_MOUNT_F_EMPTY_PATH;
    if to_path.is_empty() {
        flags |= MOVE_MOUNT_T_EMPTY_PATH;
    }
    unit(
        || format!("move_mount({f}, \"\", {t}, {to_path:?}, {flags:#x})"),
        // SAFETY: NUL-terminated paths.
        || unsafe { libc::syscall(libc::SYS_move_mount, f, c"".as_ptr(), t, c.as_ptr(), flags) },
    )
}

/// mount_setattr on `fd` itself; `rec` for the whole tree below it.
fn setattr(fd: &Fd, rec: bool, set: u64) -> nix::Result<()> {
    let d = raw(fd);
    let flags = libc::AT_EMPTY_PATH | if rec { libc::AT_RECURSIVE } else { 0 };
    unit(
        || format!("mount_setattr({d}, \"\", {flags:#x}, set={set:#x})"),
        || super::ops::raw_mount_setattr(d, c"", flags, set, 0),
    )
}

/// A value of an fsconfig call.
enum Param<'a> {
    Flag,
    Str(&'a str),
    Fd(&'a Fd),
}

/// A new, detached file system of `fstype` with `params`, mounted with
/// `attrs` (MOUNT_ATTR_*): fsopen, fsconfig…, fsmount.
fn new_mount(fstype: &str, params: &[(&str, Param<'_>)], attrs: u64) -> nix::Result<Fd> {
    let t = cstr(fstype)?;
    let fs = new_fd(
        || format!("fsopen({fstype:?})"),
        // SAFETY: a NUL-terminated name.
        || unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) },
    )?;
    let fsfd = raw(&fs);
    for (key, value) in params {
        let k = cstr(key)?;
        let (cmd, v, aux, shown) = match value {
            Param::Flag => (FSCONFIG_SET_FLAG, None, 0, String::new()),
            Param::Str(s) => (FSCONFIG_SET_STRING, Some(cstr(s)?), 0, format!("={s}")),
            Param::Fd(fd) => (FSCONFIG_SET_FD, None, raw(fd), format!("=fd {}", raw(fd))),
        };
        let vp = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        unit(
            || format!("fsconfig({fsfd}, {key}{shown})"),
            // SAFETY: NUL-terminated key and value (or null where none).
            || unsafe { libc::syscall(libc::SYS_fsconfig, fsfd, cmd, k.as_ptr(), vp, aux) },
        )?;
    }
    unit(
        || format!("fsconfig({fsfd}, create)"),
        // SAFETY: the create command takes no key or value.
        || unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd,
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        },
    )?;
    new_fd(
        || format!("fsmount({fsfd}, attrs={attrs:#x})"),
        // SAFETY: plain integers.
        || unsafe { libc::syscall(libc::SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, attrs) },
    )
}

/// Whether `fd` is a directory (planned fds are taken for one).
fn is_dir(fd: &Fd) -> nix::Result<bool> {
    match fd {
        None => Ok(true),
        Some(fd) => {
            let st = nix::sys::stat::fstat(fd)?;
            Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        }
    }
}

/// The type of `name` in `dirfd` (no symlink followed): Some(true) for a
/// directory, None when missing. Under `--plan`: a file.
fn kind_at(dirfd: &Fd, name: &str) -> nix::Result<Option<bool>> {
    let Some(d) = dirfd else {
        return Ok(Some(false));
    };
    match nix::sys::stat::fstatat(d, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st.st_mode & libc::S_IFMT == libc::S_IFDIR)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `(parent, name)` of a path in a root; the parent of a single name is
/// the root itself, and the root has no name.
fn split(path: &str) -> (&str, &str) {
    let p = path.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => ("/", p),
    }
}

/// Whether `path` names the root itself, whatever it is spelt like.
fn is_top(path: &str) -> bool {
    path.split('/').all(|c| c.is_empty() || c == ".")
}

/// Paths of a lock-down: relative to the mount they are in, no `..`.
fn relative(p: &str) -> Result<&str> {
    let r = p.trim_start_matches('/');
    if r.is_empty() || r.split('/').any(|c| c == "..") {
        return Err(Error::Invalid(format!(
            "'{p}' is not a path inside the mount (no '..', not the mount itself)"
        )));
    }
    Ok(r)
}

/// Options of [`Root::bind`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RootBind {
    /// The plain bind options (`create` makes the target like the source).
    pub opts: super::mount::BindOpts,
    /// A missing source is no error: nothing is bound.
    pub try_: bool,
}

/// What to lock down in a fresh proc or sysfs, relative to its top.
#[derive(Clone, Debug, Default)]
pub struct Lockdown {
    /// Bound onto themselves read-only, with everything below them.
    pub readonly: Vec<String>,
    /// Covered by an empty read-only file, or directory for a directory.
    pub mask: Vec<String>,
}

/// A directory every path of which is resolved inside it.
#[derive(Debug)]
pub struct Root {
    fd: Fd,
    path: String,
    /// A tiny read-only tmpfs holding the empty file `f` and directory `d`
    /// that masks are cloned from; made on first use and shared.
    empty: Option<Fd>,
    umask: u32,
}

impl Root {
    /// Open `path` (the caller's own path, resolved as usual) as a root.
    pub fn open(path: &str) -> Result<Root> {
        Ok(Root {
            fd: Self::open_fd(path)?,
            path: path.to_string(),
            empty: None,
            // Read once per root: set-up does not change it.
            umask: super::fs::umask(),
        })
    }

    fn open_fd(path: &str) -> Result<Fd> {
        let c = cstr(path).map_err(|e| Error::sys(format!("open root {path}"), e))?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        new_fd(
            || format!("open({path:?}, O_PATH|O_DIRECTORY)"),
            // SAFETY: a NUL-terminated path.
            || unsafe { libc::open(c.as_ptr(), flags) as libc::c_long },
        )
        .map_err(|e| Error::sys(format!("open root {path}"), e))
    }

    /// The directory, as the caller gave it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The fd of the directory (None under `--plan`).
    pub fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Whether the umask trims `mode` (or it has set-id or sticky bits,
    /// which mkdir and open never set): then it is set again.
    fn trimmed(&self, mode: u32) -> bool {
        mode & 0o7000 != 0 || mode & self.umask != 0
    }

    fn fail(&self, what: impl std::fmt::Display, e: Errno) -> Error {
        Error::sys(format!("{what} in root {}", self.path), e)
    }

    /// Resolve `path` inside the root.
    fn at(&self, path: &str, flags: i32, mode: u32) -> nix::Result<Fd> {
        openat2(raw(&self.fd), path, flags, mode)
    }

    /// The directory `path`; with `create`, missing ones (parents too) are
    /// made with that mode.
    fn dir(&self, path: &str, create: Option<u32>) -> nix::Result<Fd> {
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let mode = match (self.at(path, flags, 0), create) {
            (Err(Errno::ENOENT), Some(mode)) => mode,
            (r, _) => return r,
        };
        let comps: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        // The deepest ancestor there is, from the bottom: most of a path
        // usually exists.
        let mut n = comps.len();
        let mut fd = loop {
            if n == 0 {
                return Err(Errno::ENOENT);
            }
            n -= 1;
            let prefix = comps[..n].join("/");
            match self.at(if n == 0 { "/" } else { &prefix }, flags, 0) {
                Err(Errno::ENOENT) => continue,
                r => break r?,
            }
        };
        let exact = self.trimmed(mode);
        for c in &comps[n..] {
            if *c == ".." {
                // Below a directory that did not exist: nothing to go up to
                // that the kernel could vouch for.
                return Err(Errno::ENOENT);
            }
            let made = match mkdirat(raw(&fd), c, mode) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => return Err(e),
            };
            // Opened without following: a symlink put in its place since
            // the mkdir is refused (ENOTDIR), not followed.
            let next = openat_here(raw(&fd), c, flags, 0)?;
            if made && exact {
                fchmod_path(&next, mode)?;
            }
            fd = next;
        }
        Ok(fd)
    }

    /// Open the root's directory again after a mount went on top of it:
    /// the old fd still stands for what is now hidden below.
    fn reopen(&mut self) -> Result<()> {
        self.fd = Self::open_fd(&self.path)?;
        Ok(())
    }

    /// Attach the detached tree `tree` on `target` (resolved from `path`).
    fn attach(&mut self, tree: &Fd, target: &Fd, path: &str) -> nix::Result<()> {
        move_mount(tree, target, "")?;
        if is_top(path) {
            self.reopen().map_err(|e| e.errno().unwrap_or(Errno::EIO))?;
        }
        Ok(())
    }

    /// `mkdir`; with `parents`, like `mkdir -p` (existing directories are
    /// fine). Modes are applied exactly.
    pub fn mkdir(&self, path: &str, mode: u32, parents: bool) -> Result<()> {
        let r = if parents {
            self.dir(path, Some(mode)).map(drop)
        } else {
            let (parent, name) = split(path);
            (|| {
                if name.is_empty() {
                    return Err(Errno::EEXIST);
                }
                let pfd = self.dir(parent, None)?;
                mkdirat(raw(&pfd), name, mode)?;
                if self.trimmed(mode) {
                    let fd = openat_here(raw(&pfd), name, libc::O_PATH | libc::O_DIRECTORY, 0)?;
                    fchmod_path(&fd, mode)?;
                }
                Ok(())
            })()
        };
        r.map_err(|e| self.fail(format_args!("mkdir {path}"), e))
    }

    /// Create or truncate `path` and write `data`; never through a final
    /// symlink (ELOOP). `mode` for a new file (default 0644), exactly.
    pub fn write_file(&self, path: &str, data: &[u8], mode: Option<u32>) -> Result<()> {
        let fd = raw(&self.fd);
        let real = || {
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW;
            let how = OpenHow {
                flags: (flags | libc::O_CLOEXEC) as u64,
                mode: mode.unwrap_or(0o644) as u64,
                resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            };
            let c = cstr(path)?;
            let f = loop {
                // SAFETY: a NUL-terminated path and a correctly sized open_how.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_openat2,
                        fd,
                        c.as_ptr(),
                        &how as *const OpenHow,
                        std::mem::size_of::<OpenHow>(),
                    )
                };
                match Errno::result(rc) {
                    Err(Errno::EAGAIN) => continue,
                    // SAFETY: the kernel just gave us this fd.
                    r => break std::fs::File::from(unsafe { OwnedFd::from_raw_fd(r? as RawFd) }),
                }
            };
            use std::io::Write;
            (&f).write_all(data)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            if let Some(m) = mode {
                // Also for a file that was there: say what was asked.
                nix::sys::stat::fchmod(&f, nix::sys::stat::Mode::from_bits_retain(m))?;
            }
            Ok(())
        };
        ops::act(
            || {
                let shown = String::from_utf8_lossy(&data[..data.len().min(64)]);
                format!("write({fd}, {path:?} in_root, {shown:?})")
            },
            real,
        )
        .map_err(|e| self.fail(format_args!("write {path}"), e))
    }

    /// A symlink at `path` to `target` (taken as it is: it is the
    /// sandbox's business where it points). The same link again is fine.
    pub fn symlink(&self, target: &str, path: &str) -> Result<()> {
        let (parent, name) = split(path);
        (|| {
            if name.is_empty() {
                return Err(Errno::EEXIST);
            }
            let pfd = self.dir(parent, None)?;
            match symlinkat(target, raw(&pfd), name) {
                Err(Errno::EEXIST) => match &pfd {
                    Some(p) => match nix::fcntl::readlinkat(p, name) {
                        Ok(t) if t == std::ffi::OsStr::new(target) => Ok(()),
                        _ => Err(Errno::EEXIST),
                    },
                    None => Ok(()),
                },
                r => r,
            }
        })()
        .map_err(|e| self.fail(format_args!("symlink {path} -> {target}"), e))
    }

    /// chmod of `path` (a final symlink is followed, inside the root).
    pub fn chmod(&self, path: &str, mode: u32) -> Result<()> {
        (|| {
            let fd = self.at(path, libc::O_PATH, 0)?;
            match fchmod_path(&fd, mode) {
                Err(Errno::ENOSYS) => {
                    // Before Linux 6.6: open it for real to fchmod it.
                    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
                    let fd = self.at(path, flags, 0)?;
                    unit(
                        || format!("fchmod({}, {mode:#o})", raw(&fd)),
                        // SAFETY: plain integers.
                        || unsafe { libc::fchmod(raw(&fd), mode) as libc::c_long },
                    )
                }
                r => r,
            }
        })()
        .map_err(|e| self.fail(format_args!("chmod {path}"), e))
    }

    /// The mount target `path`: what is there, or with `create` a new
    /// directory (`Some(true)`) or empty 0444 file, parents included.
    fn target(&self, path: &str, create: Option<bool>) -> nix::Result<Fd> {
        match (self.at(path, libc::O_PATH, 0), create) {
            (Err(Errno::ENOENT), Some(true)) => self.dir(path, Some(0o755)),
            (Err(Errno::ENOENT), Some(false)) => {
                let (parent, name) = split(path);
                let pfd = self.dir(parent, Some(0o755))?;
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
                match openat_here(raw(&pfd), name, flags, 0o444) {
                    Ok(f) => {
                        if self.trimmed(0o444) {
                            fchmod_path(&f, 0o444)?;
                        }
                        Ok(f)
                    }
                    Err(Errno::EEXIST) => self.at(path, libc::O_PATH, 0),
                    Err(e) => Err(e),
                }
            }
            (r, _) => r,
        }
    }

    /// Bind `source` (the caller's path, resolved as usual) on `dest`
    /// inside the root. Returns false when `try_` and there is no source.
    pub fn bind(&mut self, source: &str, dest: &str, o: RootBind) -> Result<bool> {
        let op = format!("bind {source} on {dest}");
        let mut flags = 0;
        if o.opts.rec {
            flags |= libc::AT_RECURSIVE as u32;
        }
        let tree = match open_tree(libc::AT_FDCWD, source, flags) {
            Err(Errno::ENOENT) if o.try_ => return Ok(false),
            r => r.map_err(|e| self.fail(&op, e))?,
        };
        (|| {
            let mut attrs = 0;
            for (on, bit) in [
                (o.opts.ro, MOUNT_ATTR_RDONLY),
                (o.opts.nosuid, MOUNT_ATTR_NOSUID),
                (o.opts.nodev, MOUNT_ATTR_NODEV),
            ] {
                if on {
                    attrs |= bit;
                }
            }
            if attrs != 0 {
                setattr(&tree, o.opts.rec, attrs)?;
            }
            let create = if o.opts.create {
                Some(is_dir(&tree)?)
            } else {
                None
            };
            let target = self.target(dest, create)?;
            self.attach(&tree, &target, dest)
        })()
        .map_err(|e| self.fail(&op, e))?;
        Ok(true)
    }

    /// A tmpfs (nosuid, nodev) on `path`, made if missing.
    pub fn tmpfs(&mut self, path: &str, size: Option<u64>, mode: Option<u32>) -> Result<()> {
        let size = size.map(|s| s.to_string());
        let mode = format!("{:o}", mode.unwrap_or(0o755));
        let mut params = vec![("mode", Param::Str(&mode))];
        if let Some(s) = &size {
            params.push(("size", Param::Str(s)));
        }
        (|| {
            let target = self.dir(path, Some(0o755))?;
            let m = new_mount("tmpfs", &params, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?;
            self.attach(&m, &target, path)
        })()
        .map_err(|e| self.fail(format_args!("mount tmpfs on {path}"), e))
    }

    /// The read-only tmpfs masks come from.
    fn empty(&mut self) -> nix::Result<&Fd> {
        if self.empty.is_none() {
            let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
            let m = new_mount("tmpfs", &[("mode", Param::Str("555"))], attrs)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            drop(openat_here(raw(&m), "f", flags, 0o444)?);
            mkdirat(raw(&m), "d", 0o555)?;
            setattr(&m, false, MOUNT_ATTR_RDONLY)?;
            self.empty = Some(m);
        }
        Ok(self.empty.as_ref().expect("made above"))
    }

    /// Lock down the fresh mount `base` (a proc or sysfs of ours: the
    /// relative walks below go through nothing anyone else controls).
    /// What is not there is skipped: kernels differ.
    fn lock_down(&mut self, base: &Fd, l: &Lockdown) -> nix::Result<()> {
        for p in &l.readonly {
            let flags = (libc::AT_RECURSIVE | libc::AT_SYMLINK_NOFOLLOW) as u32;
            let tree = match open_tree(raw(base), p, flags) {
                Err(Errno::ENOENT) => continue,
                r => r?,
            };
            setattr(&tree, true, MOUNT_ATTR_RDONLY)?;
            move_mount(&tree, base, p)?;
        }
        for p in &l.mask {
            let Some(dir) = kind_at(base, p)? else {
                continue;
            };
            let empty = self.empty()?;
            let tree = open_tree(raw(empty), if dir { "d" } else { "f" }, 0)?;
            move_mount(&tree, base, p)?;
        }
        Ok(())
    }

    fn check(l: &Lockdown) -> Result<()> {
        for p in l.readonly.iter().chain(&l.mask) {
            relative(p)?;
        }
        Ok(())
    }

    fn clean(l: &Lockdown) -> Lockdown {
        let f = |v: &Vec<String>| {
            v.iter()
                .map(|p| p.trim_start_matches('/').to_string())
                .collect()
        };
        Lockdown {
            readonly: f(&l.readonly),
            mask: f(&l.mask),
        }
    }

    /// A fresh proc (nosuid, nodev, noexec) on `path`, made if missing,
    /// then `lock` applied to it.
    pub fn proc(&mut self, path: &str, lock: &Lockdown) -> Result<()> {
        Self::check(lock)?;
        let lock = Self::clean(lock);
        (|| {
            let target = self.dir(path, Some(0o755))?;
            let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
            let m = new_mount("proc", &[], attrs)?;
            self.attach(&m, &target, path)?;
            self.lock_down(&m, &lock)
        })()
        .map_err(|e| self.fail(format_args!("mount proc on {path}"), e))
    }

    /// A read-only sysfs on `path`, or where sysfs may not be mounted (no
    /// network namespace of our own) the host's from `from`, bound
    /// read-only; then `mask` covered.
    pub fn sysfs(&mut self, path: &str, from: &str, mask: &[String]) -> Result<()> {
        let lock = Lockdown {
            readonly: Vec::new(),
            mask: mask.to_vec(),
        };
        Self::check(&lock)?;
        let lock = Self::clean(&lock);
        (|| {
            let target = self.dir(path, Some(0o755))?;
            let attrs =
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
            let m = match new_mount("sysfs", &[], attrs) {
                Err(Errno::EPERM) => {
                    let t = open_tree(libc::AT_FDCWD, from, libc::AT_RECURSIVE as u32)?;
                    setattr(&t, true, attrs)?;
                    t
                }
                r => r?,
            };
            self.attach(&m, &target, path)?;
            self.lock_down(&m, &lock)
        })()
        .map_err(|e| self.fail(format_args!("mount sysfs on {path}"), e))
    }

    /// A POSIX message queue file system on `path` (needs an ipc namespace
    /// of one's own).
    pub fn mqueue(&mut self, path: &str) -> Result<()> {
        (|| {
            let target = self.dir(path, Some(0o755))?;
            let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
            let m = new_mount("mqueue", &[], attrs)?;
            self.attach(&m, &target, path)
        })()
        .map_err(|e| self.fail(format_args!("mount mqueue on {path}"), e))
    }

    /// A minimal /dev on `path`, as bubblewrap's `--dev`: see
    /// [`super::mount::dev`]. `from` is where the host's /dev is seen.
    pub fn dev(&mut self, path: &str, from: &str, shm: bool) -> Result<()> {
        (|| {
            let target = self.dir(path, Some(0o755))?;
            let m = new_mount(
                "tmpfs",
                &[("mode", Param::Str("755"))],
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            )?;
            self.attach(&m, &target, path)?;
            // The tmpfs is new and ours: names in it are walked plainly.
            let here = raw(&m);
            for node in DEV_NODES {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
                drop(openat_here(here, node, flags, 0o444)?);
                let t = open_tree(libc::AT_FDCWD, &format!("{from}/{node}"), 0)?;
                move_mount(&t, &m, node)?;
            }
            for (link, to) in DEV_LINKS {
                symlinkat(to, here, link)?;
            }
            mkdirat(here, "pts", 0o755)?;
            let pts = new_mount(
                "devpts",
                &[
                    ("newinstance", Param::Flag),
                    ("ptmxmode", Param::Str("0666")),
                    ("mode", Param::Str("620")),
                ],
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            )?;
            move_mount(&pts, &m, "pts")?;
            mkdirat(here, "shm", 0o755)?;
            if !shm {
                // A plain directory, as bubblewrap's --dev leaves it.
                return Ok(());
            }
            let shm = new_mount(
                "tmpfs",
                &[("mode", Param::Str("1777"))],
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            )?;
            move_mount(&shm, &m, "shm")
        })()
        .map_err(|e| self.fail(format_args!("mount dev on {path}"), e))
    }

    /// overlayfs on `path` (nosuid, nodev). The layers are the caller's
    /// paths; a tmpfs upper is a detached tmpfs handed over by fd, so it
    /// is never reachable by path at all. `userxattr` (needed in a user
    /// namespace) is guessed from /proc when not given.
    pub fn overlay(&mut self, path: &str, o: &OverlayOpts, userxattr: Option<bool>) -> Result<()> {
        super::mount::overlay_check(o)?;
        let userxattr = userxattr.unwrap_or_else(super::mount::in_userns);
        let lower = o.lower.join(":");
        (|| {
            let target = self.dir(path, Some(0o755))?;
            let mut params = vec![("lowerdir", Param::Str(&lower))];
            // The scratch tmpfs's own fd must stay open until the overlay
            // holds it: closing the last fd of a detached mount unmounts it,
            // whatever other fds still point into it.
            let (scratch, scratch_upper, scratch_work);
            if o.tmpfs_upper {
                scratch = new_mount("tmpfs", &[("mode", Param::Str("755"))], 0)?;
                let s = &scratch;
                mkdirat(raw(s), "upper", 0o755)?;
                mkdirat(raw(s), "work", 0o755)?;
                let dir = libc::O_PATH | libc::O_DIRECTORY;
                scratch_upper = openat_here(raw(s), "upper", dir, 0)?;
                scratch_work = openat_here(raw(s), "work", dir, 0)?;
                params.push(("upperdir", Param::Fd(&scratch_upper)));
                params.push(("workdir", Param::Fd(&scratch_work)));
            } else if let (Some(u), Some(w)) = (&o.upper, &o.work) {
                params.push(("upperdir", Param::Str(u)));
                params.push(("workdir", Param::Str(w)));
            }
            if userxattr {
                params.push(("userxattr", Param::Flag));
            }
            let m = new_mount("overlay", &params, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)?;
            self.attach(&m, &target, path)
        })()
        .map_err(|e| self.fail(format_args!("mount overlay on {path}"), e))
    }

    /// A file system of any type on `path` (a directory, made if
    /// missing): `options` as mount(8) takes them — `ro`, `nosuid`,
    /// `nodev`, `noexec`, `noatime`, `strictatime`, `nodiratime`,
    /// `nosymfollow`, `relatime`, `rw` are the mount's attributes, anything
    /// else (`mode=620`, `newinstance`, `gid=5`) goes to the file system
    /// as a parameter. What an OCI bundle's `mounts` list (devpts, cgroup2,
    /// …) needs beyond the dedicated calls.
    pub fn mount_fs(
        &mut self,
        path: &str,
        fstype: &str,
        source: Option<&str>,
        options: &[String],
    ) -> Result<()> {
        let mut attrs = 0;
        let mut params: Vec<(String, Option<String>)> = Vec::new();
        for o in options {
            match o.as_str() {
                "ro" | "rdonly" => attrs |= MOUNT_ATTR_RDONLY,
                "nosuid" => attrs |= MOUNT_ATTR_NOSUID,
                "nodev" => attrs |= MOUNT_ATTR_NODEV,
                "noexec" => attrs |= MOUNT_ATTR_NOEXEC,
                "noatime" => attrs |= MOUNT_ATTR_NOATIME,
                "strictatime" => attrs |= MOUNT_ATTR_STRICTATIME,
                "nodiratime" => attrs |= MOUNT_ATTR_NODIRATIME,
                "nosymfollow" => attrs |= MOUNT_ATTR_NOSYMFOLLOW,
                // The defaults.
                "rw" | "relatime" | "suid" | "dev" | "exec" | "atime" | "defaults" => {}
                kv => match kv.split_once('=') {
                    Some((k, v)) => params.push((k.to_string(), Some(v.to_string()))),
                    None => params.push((kv.to_string(), None)),
                },
            }
        }
        if let Some(src) = source.filter(|s| !s.is_empty()) {
            params.push(("source".into(), Some(src.to_string())));
        }
        let op = format!("mount {fstype} on {path}");
        (|| {
            let p: Vec<(&str, Param<'_>)> = params
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str(),
                        match v {
                            Some(v) => Param::Str(v),
                            None => Param::Flag,
                        },
                    )
                })
                .collect();
            let target = self.dir(path, Some(0o755))?;
            let m = new_mount(fstype, &p, attrs)?;
            self.attach(&m, &target, path)
        })()
        .map_err(|e| self.fail(&op, e))
    }

    /// Cover `path` with an empty read-only file or directory, whichever
    /// it is (OCI's `maskedPaths`); false when nothing is there.
    pub fn mask(&mut self, path: &str) -> Result<bool> {
        (|| {
            let target = match self.at(path, libc::O_PATH, 0) {
                Err(Errno::ENOENT) => return Ok(false),
                r => r?,
            };
            let dir = is_dir(&target)?;
            let empty = self.empty()?;
            let tree = open_tree(raw(empty), if dir { "d" } else { "f" }, 0)?;
            self.attach(&tree, &target, path)?;
            Ok(true)
        })()
        .map_err(|e| self.fail(format_args!("mask {path}"), e))
    }

    /// Make `path` read-only, with every mount below it unless `rec` is
    /// false. A path that is not the top of a mount is first bound onto
    /// itself, so only it (not the whole mount it is in) changes.
    pub fn remount_ro(&mut self, path: &str, rec: bool) -> Result<()> {
        (|| {
            let fd = self.at(path, libc::O_PATH, 0)?;
            match setattr(&fd, rec, MOUNT_ATTR_RDONLY) {
                Err(Errno::EINVAL) => {
                    let flags = libc::AT_EMPTY_PATH as u32
                        | if rec { libc::AT_RECURSIVE as u32 } else { 0 };
                    let tree = open_tree(raw(&fd), "", flags)?;
                    setattr(&tree, rec, MOUNT_ATTR_RDONLY)?;
                    self.attach(&tree, &fd, path)
                }
                r => r,
            }
        })()
        .map_err(|e| self.fail(format_args!("mount -o remount,ro {path}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        assert_eq!(split("/etc/hostname"), ("/etc", "hostname"));
        assert_eq!(split("/etc/"), ("/", "etc"));
        assert_eq!(split("/"), ("/", ""));
        assert_eq!(split("a"), ("/", "a"));
        assert!(is_top("/") && is_top("/./") && is_top("") && !is_top("/a"));
        assert!(relative("/sys").is_ok() && relative("../x").is_err() && relative("/").is_err());
    }
}
