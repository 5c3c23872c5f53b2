//! Small file operations, so recipes need no shell.

use std::path::Path;

use nix::errno::Errno;

use super::ops;
use crate::error::{Context, Error, Result};

/// mkdir(2); with `parents`, like `mkdir -p` (existing directories are fine).
pub fn mkdir(path: &str, mode: u32, parents: bool) -> Result<()> {
    if !parents {
        ops::mkdir(path, mode).op(|| format!("mkdir {path}"))?;
        return exact_mode(path, mode);
    }
    let mut todo = Vec::new();
    let mut p = Path::new(path);
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
        let d = d.to_string_lossy();
        match ops::mkdir(&d, mode) {
            Ok(()) => exact_mode(&d, mode)?,
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkdir {d}"), e)),
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
fn exact_mode(path: &str, mode: u32) -> Result<()> {
    if mode & 0o7000 != 0 || mode & umask() != 0 {
        ops::chmod(path, mode).op(|| format!("chmod {path}"))?;
    }
    Ok(())
}

/// chdir(2).
pub fn chdir(path: &str) -> Result<()> {
    ops::chdir(path).op(|| format!("chdir {path}"))
}

/// chmod(2).
pub fn chmod(path: &str, mode: u32) -> Result<()> {
    ops::chmod(path, mode).op(|| format!("chmod {path}"))
}

/// symlink(2). An existing link with the same target is accepted, so
/// recipes can be re-run; any other existing file is an error.
pub fn symlink(target: &str, linkpath: &str) -> Result<()> {
    match ops::symlink(target, linkpath) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => match std::fs::read_link(linkpath) {
            Ok(t) if t == Path::new(target) => Ok(()),
            _ => Err(Error::sys(
                format!("symlink {linkpath} -> {target}"),
                Errno::EEXIST,
            )),
        },
        Err(e) => Err(Error::sys(format!("symlink {linkpath} -> {target}"), e)),
    }
}

/// Create or truncate `path` and write `data`; `mode` for a new file
/// (default 0644), applied exactly (not trimmed by the umask).
pub fn write_file(path: &str, data: &[u8], mode: Option<u32>) -> Result<()> {
    ops::write_file(path, data, mode, true).op(|| format!("write {path}"))
}

/// Write `data` to an existing file without creating or truncating it
/// (for `/proc` and `/sys` files).
pub fn write_existing(path: &str, data: &[u8]) -> Result<()> {
    ops::write_file(path, data, None, false).op(|| format!("write {path}"))
}

/// Read a whole file.
pub fn read_file(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).op(|| format!("read {path}"))
}

/// The names in a directory, sorted, without `.` and `..`.
pub fn readdir(path: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .op(|| format!("readdir {path}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}
