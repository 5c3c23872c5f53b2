//! System calls nsrun.oci needs and the public API does not offer: a lock
//! per container id, device nodes with their owner, and personality(2).
//! Shipped-module helpers only (see `shipped_helpers`), not `ns.*`.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use mlua::{Lua, Table, UserData, UserDataMethods};

/// An exclusive flock(2) on a lock file; released by `unlock` (or when
/// collected, or when the process ends).
struct Lock(Option<File>);

impl UserData for Lock {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method_mut("unlock", |_, this, ()| {
            this.0.take();
            Ok(())
        });
        m.add_meta_method_mut(mlua::MetaMethod::Close, |_, this, _: mlua::MultiValue| {
            this.0.take();
            Ok(())
        });
    }
}

fn errno_msg(what: String, e: std::io::Error) -> mlua::Error {
    mlua::Error::runtime(format!("{what}: {e}"))
}

/// Lock `path` (created 0600 if missing), waiting for another holder.
/// A holder may unlink the file before it lets go (delete): a waiter that
/// then gets the lock of the unlinked file tries again on the new one, so
/// that two processes never both think they hold the lock of one id.
fn lock(path: &str) -> mlua::Result<Lock> {
    if crate::sys::ops::record(|| format!("flock({path:?}, LOCK_EX)")) {
        return Ok(Lock(None));
    }
    loop {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode_0600()
            .open(path)
            .map_err(|e| errno_msg(format!("lock {path}: open"), e))?;
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(errno_msg(format!("lock {path}: flock"), e));
            }
        }
        let held = f
            .metadata()
            .map_err(|e| errno_msg(format!("lock {path}: fstat"), e))?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                return Ok(Lock(Some(f)))
            }
            _ => continue,
        }
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // Close-on-exec (std's default) keeps it from every process we start.
        self.mode(0o600)
    }
}

fn cpath(path: &str) -> mlua::Result<CString> {
    CString::new(std::path::Path::new(path).as_os_str().as_bytes())
        .map_err(|_| mlua::Error::runtime(format!("{path:?}: a path without NUL bytes expected")))
}

/// mknod(2): `kind` is "c" (or "u"), "b" or "p".
fn mknod(path: &str, kind: &str, major: u32, minor: u32, mode: u32) -> mlua::Result<()> {
    let t = match kind {
        "c" | "u" => libc::S_IFCHR,
        "b" => libc::S_IFBLK,
        "p" => libc::S_IFIFO,
        other => {
            return Err(mlua::Error::runtime(format!(
                "mknod {path}: type must be c, u, b or p, got {other:?}"
            )))
        }
    };
    if crate::sys::ops::record(|| format!("mknod({path:?}, {kind} {major}:{minor}, {mode:o})")) {
        return Ok(());
    }
    let c = cpath(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), t | (mode & 0o7777), dev) } != 0 {
        return Err(errno_msg(
            format!("mknod {path} ({kind} {major}:{minor})"),
            std::io::Error::last_os_error(),
        ));
    }
    // The umask took bits off.
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::chmod(c.as_ptr(), mode & 0o7777) } != 0 {
        return Err(errno_msg(
            format!("chmod {path} {mode:o}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn chown(path: &str, uid: u32, gid: u32) -> mlua::Result<()> {
    if crate::sys::ops::record(|| format!("lchown({path:?}, {uid}, {gid})")) {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| errno_msg(format!("chown {path} {uid}:{gid}"), e))
}

/// personality(2) with an OCI domain name.
fn personality(domain: &str) -> mlua::Result<()> {
    let persona: libc::c_ulong = match domain {
        "LINUX" => 0,
        "LINUX32" => 0x0008,
        other => {
            return Err(mlua::Error::runtime(format!(
                "linux.personality.domain must be LINUX or LINUX32, got {other:?}"
            )))
        }
    };
    if crate::sys::ops::record(|| format!("personality({domain})")) {
        return Ok(());
    }
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(errno_msg(
            format!("personality {domain}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

pub(crate) fn add(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set("lock", lua.create_function(|_, path: String| lock(&path))?)?;
    t.set(
        "mknod",
        lua.create_function(|_, (p, k, ma, mi, mo): (String, String, u32, u32, u32)| {
            mknod(&p, &k, ma, mi, mo)
        })?,
    )?;
    t.set(
        "chown",
        lua.create_function(|_, (p, u, g): (String, u32, u32)| chown(&p, u, g))?,
    )?;
    t.set(
        "personality",
        lua.create_function(|_, d: String| personality(&d))?,
    )?;
    // A pause while the kernel finishes with a process or a cgroup.
    t.set(
        "sleep",
        lua.create_function(|_, secs: f64| {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.clamp(0.0, 10.0)));
            Ok(())
        })?,
    )?;
    // Whether a path names something (symlinks followed): one stat, where
    // ns.realpath reads every component's link; it runs some thirty times
    // a start (cgroup levels, state files).
    t.set(
        "exists",
        lua.create_function(|_, p: String| {
            Ok(std::path::Path::new(&p).try_exists().unwrap_or(false))
        })?,
    )?;
    Ok(())
}
