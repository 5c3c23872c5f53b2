//! Small file operations, so recipes need no shell.
//!
//! Paths are bytes (`Path`): a recipe's Lua strings reach the kernel as
//! they are, whatever their encoding.

use std::ffi::OsString;
use std::path::Path;

use nix::errno::Errno;

use super::ops;
use crate::error::{Context, Error, Result};

/// mkdir(2); with `parents`, like `mkdir -p` (existing directories are fine).
pub fn mkdir(path: impl AsRef<Path>, mode: u32, parents: bool) -> Result<()> {
    let path = path.as_ref();
    if !parents {
        ops::mkdir(path, mode).op(|| format!("mkdir {}", path.display()))?;
        return exact_mode(path, mode);
    }
    let mut todo = Vec::new();
    let mut p = path;
    loop {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(Error::sys(format!("mkdir {}", p.display()), Errno::ENOTDIR)),
            Err(_) => todo.push(p),
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    // Every directory made here gets the mode asked for.
    for d in todo.into_iter().rev() {
        match ops::mkdir(d, mode) {
            Ok(()) => exact_mode(d, mode)?,
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkdir {}", d.display()), e)),
        }
    }
    Ok(())
}

/// The process's umask. umask(2) can only read it by setting it (and
/// back), which `--plan` must not do: there it is read from
/// /proc/self/status (Linux 4.7+), or taken as the usual 022.
pub(crate) fn umask() -> u32 {
    if ops::planning() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        return status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
            .unwrap_or(0o022);
    }
    // SAFETY: umask is process-wide but nsrun is single-threaded; read and restore.
    unsafe {
        let m = libc::umask(0);
        libc::umask(m);
        m as u32
    }
}

/// mkdir(2) trims the mode by the umask and drops the sticky and set-id
/// bits; a rootfs needs its /tmp at 1777, so say the mode again.
fn exact_mode(path: &Path, mode: u32) -> Result<()> {
    if mode & 0o7000 != 0 || mode & umask() != 0 {
        ops::chmod(path, mode).op(|| format!("chmod {}", path.display()))?;
    }
    Ok(())
}

/// chdir(2).
pub fn chdir(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    ops::chdir(path).op(|| format!("chdir {}", path.display()))
}

/// chmod(2).
pub fn chmod(path: impl AsRef<Path>, mode: u32) -> Result<()> {
    let path = path.as_ref();
    ops::chmod(path, mode).op(|| format!("chmod {}", path.display()))
}

/// symlink(2). An existing link with the same target is accepted, so
/// recipes can be re-run; any other existing file is an error.
pub fn symlink(target: impl AsRef<Path>, linkpath: impl AsRef<Path>) -> Result<()> {
    let (target, linkpath) = (target.as_ref(), linkpath.as_ref());
    let what = || format!("symlink {} -> {}", linkpath.display(), target.display());
    match ops::symlink(target, linkpath) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => match std::fs::read_link(linkpath) {
            Ok(t) if t == target => Ok(()),
            _ => Err(Error::sys(what(), Errno::EEXIST)),
        },
        Err(e) => Err(Error::sys(what(), e)),
    }
}

/// Create or truncate `path` and write `data`; `mode` for a new file
/// (default 0644), applied exactly (not trimmed by the umask).
pub fn write_file(path: impl AsRef<Path>, data: &[u8], mode: Option<u32>) -> Result<()> {
    let path = path.as_ref();
    ops::write_file(path, data, mode, true).op(|| format!("write {}", path.display()))
}

/// Read a whole file.
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).op(|| format!("read {}", path.display()))
}

/// The names in a directory, sorted (as bytes), without `.` and `..`.
pub fn readdir(path: impl AsRef<Path>) -> Result<Vec<OsString>> {
    let path = path.as_ref();
    let mut names: Vec<OsString> = std::fs::read_dir(path)
        .op(|| format!("readdir {}", path.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    Ok(names)
}

/// A sealed memfd holding `data`, read from its start (`input` as stdin).
/// A pipe would need nsrun to write while the process runs, or block once
/// 64 KiB are in it; the memfd is filled before the start and never
/// blocks. Sealed, neither the process nor anyone it hands the fd to can
/// change what it was given.
pub fn sealed_memfd(name: &str, data: &[u8]) -> Result<std::os::fd::OwnedFd> {
    use std::io::{Seek, SeekFrom, Write};
    let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let cname = std::ffi::CString::new(name)
        .map_err(|_| Error::Invalid(format!("memfd name {name:?} contains a NUL byte")))?;
    // SAFETY: memfd_create with a C string; the fd is owned just below.
    let raw =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    Errno::result(raw).op(|| format!("memfd_create {name}"))?;
    // SAFETY: a new fd, ours alone.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    f.write_all(data)
        .map_err(io)
        .op(|| format!("write {name}"))?;
    f.seek(SeekFrom::Start(0))
        .map_err(io)
        .op(|| format!("seek {name}"))?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on the fd we own.
    Errno::result(unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::F_ADD_SEALS,
            seals,
        )
    })
    .op(|| format!("seal {name}"))?;
    Ok(f.into())
}

/// A connected `AF_UNIX` socket pair of type `ty` (`SOCK_STREAM`,
/// `SOCK_SEQPACKET`), both ends close-on-exec.
pub(crate) fn unix_socketpair(
    ty: libc::c_int,
) -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair(2) fills two fds on success.
    let rc =
        unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    let name = if ty == libc::SOCK_SEQPACKET {
        "SOCK_SEQPACKET"
    } else {
        "SOCK_STREAM"
    };
    nix::errno::Errno::result(rc)
        .map_err(|e| Error::sys(format!("socketpair(AF_UNIX, {name})"), e))?;
    // SAFETY: two fresh fds of ours.
    Ok(unsafe {
        (
            std::os::fd::FromRawFd::from_raw_fd(fds[0]),
            std::os::fd::FromRawFd::from_raw_fd(fds[1]),
        )
    })
}

/// Take over `fd`, an fd the caller handed nsrun (`--info-fd 5`): it is
/// marked close-on-exec and becomes the returned file's. Refuses 0-2 and
/// an fd that is not open.
pub fn adopt_fd(fd: i32) -> Result<std::fs::File> {
    if fd <= 2 {
        return Err(Error::Invalid(format!(
            "fd must be 3 or more (0-2 are the standard streams), got {fd}"
        )));
    }
    adopt(fd).map(std::fs::File::from)
}

/// Take over `fd`, a socket the caller handed nsrun (`ns.channel(fd)`, a
/// channel's end a parent passed on), close-on-exec from now on. An fd
/// that is not open, or no socket, stays the caller's and is refused.
pub fn adopt_socket(fd: i32) -> Result<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only asks whether it is open.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Error::Invalid(format!("fd {fd} is not open")));
    }
    // SAFETY: open (checked above) while this borrow lives.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if !nix::sys::stat::fstat(b).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK) {
        return Err(Error::Invalid(format!("fd {fd} is not a socket")));
    }
    adopt(fd)
}

/// Own `fd` from now on, close-on-exec as every fd nsrun holds: a program
/// it starts gets it only by asking (keep_fds, channel).
fn adopt(fd: i32) -> Result<std::os::fd::OwnedFd> {
    // SAFETY: F_SETFD only sets the close-on-exec flag.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(Error::Invalid(format!("fd {fd} is not open (EBADF)")));
    }
    // SAFETY: the caller gives the fd up (documented on both callers).
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Open the gate FIFO at `path` (`Spawn::gate`): one byte in, without
/// waiting for a reader. Ok(false) when nobody waits there (ENXIO: the
/// process is gone). Under `--plan` only recorded.
pub fn open_gate(path: &Path) -> Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if ops::record(|| format!("open({path:?}, O_WRONLY|O_NONBLOCK) and write 1 byte")) {
        return Ok(true);
    }
    let r = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .and_then(|mut f| f.write_all(b"0"));
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(false),
        Err(e) => Err(Error::sys(
            format!("open gate {}", path.display()),
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )),
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// An exclusive flock(2) on `path` (created 0600, close-on-exec), waiting
/// for another holder; held while the file is open. A holder may unlink the
/// file before it lets go: a waiter that then holds the lock of an unlinked
/// file tries again on the new one, so two never both hold one path's lock.
/// Under `--plan` only recorded (None).
pub fn lock_file(path: &Path) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    if ops::record(|| format!("flock({path:?}, LOCK_EX)")) {
        return Ok(None);
    }
    loop {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::sys(format!("lock {}: open", path.display()), io_errno(&e)))?;
        loop {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = Errno::last();
            if e != Errno::EINTR {
                return Err(Error::sys(format!("lock {}: flock", path.display()), e));
            }
        }
        let held = f
            .metadata()
            .map_err(|e| Error::sys(format!("lock {}: fstat", path.display()), io_errno(&e)))?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(Some(f)),
            _ => continue,
        }
    }
}

/// mknod(2) of a device node or FIFO (`kind` "c" or "u", "b", "p") with
/// exactly `mode` (the umask's bits put back). Under `--plan` only recorded.
pub fn mknod(path: &Path, kind: &str, major: u32, minor: u32, mode: u32) -> Result<()> {
    use nix::sys::stat::{Mode, SFlag};
    let t = match kind {
        "c" | "u" => SFlag::S_IFCHR,
        "b" => SFlag::S_IFBLK,
        "p" => SFlag::S_IFIFO,
        other => {
            return Err(Error::Invalid(format!(
                "mknod {}: type must be c, u, b or p, got {other:?}",
                path.display()
            )))
        }
    };
    if ops::record(|| format!("mknod({path:?}, {kind} {major}:{minor}, {mode:o})")) {
        return Ok(());
    }
    let perm = Mode::from_bits_truncate((mode & 0o7777) as libc::mode_t);
    nix::sys::stat::mknod(path, t, perm, libc::makedev(major, minor)).map_err(|e| {
        Error::sys(
            format!("mknod {} ({kind} {major}:{minor})", path.display()),
            e,
        )
    })?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        perm,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| Error::sys(format!("chmod {} {mode:o}", path.display()), e))
}

/// lchown(2). Under `--plan` only recorded.
pub fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    if ops::record(|| format!("lchown({path:?}, {uid}, {gid})")) {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| {
        Error::sys(
            format!("chown {} {uid}:{gid}", path.display()),
            io_errno(&e),
        )
    })
}
