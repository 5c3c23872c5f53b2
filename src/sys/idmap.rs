//! uid/gid maps and the setgroups switch of user namespaces.

use std::process::Command;

use nix::unistd::{getegid, geteuid};

use super::ops;
use crate::error::{Context, Error, Result};

/// One line of an id map: `count` ids starting at `inside` map to ids
/// starting at `outside` in the parent namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id in the parent namespace.
    pub outside: u32,
    /// How many ids.
    pub count: u32,
}

fn is_own_single(kind: IdKind, ranges: &[IdRange]) -> bool {
    ranges.len() == 1 && ranges[0].count == 1 && ranges[0].outside == kind.own_id()
}

/// Which map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// `uid_map`, written with `newuidmap`.
    Uid,
    /// `gid_map`, written with `newgidmap`.
    Gid,
}

impl IdKind {
    fn file(self) -> &'static str {
        match self {
            IdKind::Uid => "uid_map",
            IdKind::Gid => "gid_map",
        }
    }
    fn helper(self) -> &'static str {
        match self {
            IdKind::Uid => "newuidmap",
            IdKind::Gid => "newgidmap",
        }
    }
    fn own_id(self) -> u32 {
        match self {
            IdKind::Uid => geteuid().as_raw(),
            IdKind::Gid => getegid().as_raw(),
        }
    }
}

/// A process to act on: `None` is this process.
pub type Target = Option<i32>;

fn proc_dir(pid: Target) -> String {
    match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".into(),
    }
}

fn validate(ranges: &[IdRange]) -> Result<()> {
    if ranges.is_empty() {
        return Err(Error::Invalid("an id map needs at least one range".into()));
    }
    if ranges.len() > 340 {
        return Err(Error::Invalid(format!(
            "an id map holds at most 340 ranges, got {}",
            ranges.len()
        )));
    }
    for (i, r) in ranges.iter().enumerate() {
        if r.count == 0 {
            return Err(Error::Invalid(format!("id range #{} has count 0", i + 1)));
        }
        for o in &ranges[..i] {
            if r.inside < o.inside.saturating_add(o.count)
                && o.inside < r.inside.saturating_add(r.count)
            {
                return Err(Error::Invalid(format!(
                    "id range #{} overlaps an earlier range inside the namespace",
                    i + 1
                )));
            }
        }
    }
    Ok(())
}

/// A map as the kernel reads it: one `inside outside count` line per range.
fn render(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

/// A child's maps, checked and rendered before it exists, for a parent that
/// writes them while the child runs in its memory: then it may not allocate
/// (see [`super::raw`]). Only for a parent privileged over its own user
/// namespace, which writes any single or multiple range itself, never
/// through `newuidmap`.
pub struct Prewritten {
    uid: String,
    gid: String,
    deny_setgroups: bool,
}

impl Prewritten {
    /// Whether we may write any child's maps ourselves: privileged over our
    /// own user namespace, as root normally is. Otherwise some maps go
    /// through newuidmap/newgidmap, which a parent beside a child sharing
    /// its memory cannot run.
    pub fn possible() -> bool {
        use caps::{CapSet, Capability};
        geteuid().is_root()
            && caps::read(None, CapSet::Effective).is_ok_and(|set| {
                set.contains(&Capability::CAP_SETUID) && set.contains(&Capability::CAP_SETGID)
            })
    }

    /// Check and render `uid` and `gid`.
    pub fn new(uid: &[IdRange], gid: &[IdRange], deny_setgroups: bool) -> Result<Prewritten> {
        validate(uid)?;
        validate(gid)?;
        Ok(Prewritten {
            uid: render(uid),
            gid: render(gid),
            deny_setgroups,
        })
    }

    /// uid_map, setgroups, gid_map of process `pid`, in the order the
    /// kernel requires, with no allocation: on failure, the file and errno,
    /// for [`Prewritten::error`] once allocating is safe again.
    pub fn write(&self, pid: i32) -> std::result::Result<(), (&'static str, nix::errno::Errno)> {
        let mut buf = [0u8; 64];
        let mut one = |file: &'static str, data: &[u8]| {
            super::raw::write_file(super::raw::proc_path(&mut buf, pid, file), data)
                .map_err(|e| (file, e))
        };
        one("uid_map", self.uid.as_bytes())?;
        if self.deny_setgroups {
            one("setgroups", b"deny")?;
        }
        one("gid_map", self.gid.as_bytes())
    }

    /// The error [`Prewritten::write`] reported, as [`write_map`] would give it.
    pub fn error(pid: i32, (file, errno): (&'static str, nix::errno::Errno)) -> Error {
        Error::sys(format!("write /proc/{pid}/{file}"), errno)
    }
}

/// Write a uid or gid map of process `pid`.
///
/// A single range the caller may write itself (root, or its own id with
/// count 1) is written directly. Anything else goes through the setuid
/// helpers `newuidmap`/`newgidmap`, which check `/etc/subuid` and
/// `/etc/subgid`. Those cannot act on the calling process once it is inside
/// the new user namespace, so `pid` must then be another process.
pub fn write_map(pid: Target, kind: IdKind, ranges: &[IdRange]) -> Result<()> {
    validate(ranges)?;
    let path = format!("{}/{}", proc_dir(pid), kind.file());
    // One range may be within what the kernel lets us write ourselves (our
    // own id, or anything when privileged over the parent namespace). Our
    // ids as seen from inside a fresh namespace say nothing about that, so
    // try it and fall back to the setuid helper on EPERM.
    if ranges.len() == 1 || geteuid().is_root() {
        match ops::write_file(&path, render(ranges).as_bytes(), None, false) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EPERM) if pid.is_some() && !is_own_single(kind, ranges) => {}
            Err(e) => return Err(Error::sys(format!("write {path}"), e)),
        }
    }
    let Some(pid) = pid else {
        return Err(Error::Invalid(format!(
            "this {} needs {} (several ranges, or ids other than your own), which cannot map \
             the calling process from inside its new user namespace: map it from the parent \
             (ns.fork/ns.clone, then ns.{}(child.pid, …)) or use ns.spawn{{{}=…}}",
            kind.file(),
            kind.helper(),
            kind.file(),
            kind.file()
        )));
    };
    if ops::record(|| {
        let args: Vec<String> = ranges
            .iter()
            .map(|r| format!("{} {} {}", r.inside, r.outside, r.count))
            .collect();
        format!("run {} {pid} {}", kind.helper(), args.join(" "))
    }) {
        return Ok(());
    }
    let mut cmd = Command::new(kind.helper());
    cmd.arg(pid.to_string());
    for r in ranges {
        cmd.args([
            r.inside.to_string(),
            r.outside.to_string(),
            r.count.to_string(),
        ]);
    }
    if super::ops::tracing() {
        super::ops::trace_line(&format!("run {cmd:?}"));
    }
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Invalid(format!(
                "{} not found: mapping several ranges or other users' ids needs it \
                 (Debian/Ubuntu: apt install uidmap)",
                kind.helper()
            ))
        } else {
            Error::Invalid(format!("running {}: {e}", kind.helper()))
        }
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Invalid(format!(
            "{} {pid} failed: {} (are the ranges in /etc/{}?)",
            kind.helper(),
            msg.trim(),
            if kind == IdKind::Uid {
                "subuid"
            } else {
                "subgid"
            }
        )));
    }
    Ok(())
}

/// Write `deny` or `allow` to `/proc/<pid>/setgroups`.
pub fn setgroups(pid: Target, allow: bool) -> Result<()> {
    let path = format!("{}/setgroups", proc_dir(pid));
    let v: &[u8] = if allow { b"allow" } else { b"deny" };
    ops::write_file(&path, v, None, false).op(|| format!("write {path}"))
}
