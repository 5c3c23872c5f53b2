//! A fresh cgroup per sandbox: memory, pids and cpu limits, statistics, and
//! removal (after killing what is left in it).
//!
//! Hosts differ: a pure cgroup v2 host has one tree with every controller;
//! others (this project's CI among them) keep memory, pids and cpu on v1,
//! each controller in its own hierarchy, with only a few (or none) on the
//! v2 tree. So each controller is looked up on its own: on v2 when the v2
//! cgroup we are in offers it, else on its v1 hierarchy. One `Cgroup` is
//! then one directory per hierarchy used, all with the same name, made
//! below the cgroup this process is in.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::ops;
use crate::error::{Context, Error, Result};

/// Limits for a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Bytes of memory (swap included where the host accounts it).
    pub memory: Option<u64>,
    /// Number of tasks.
    pub pids: Option<u64>,
    /// CPUs' worth of time (0.5 = half a CPU).
    pub cpu: Option<f64>,
}

/// What a cgroup used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// The most memory in use at once (bytes).
    pub memory_peak: Option<u64>,
    /// Memory in use now (bytes).
    pub memory_current: Option<u64>,
    /// Tasks in it now.
    pub pids_current: Option<u64>,
    /// CPU time used (microseconds).
    pub cpu_usec: Option<u64>,
    /// Processes the kernel's OOM killer killed in it.
    pub oom_kills: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctl {
    Memory,
    Pids,
    Cpu,
    /// v1 only: cpu time accounting lives in its own hierarchy.
    Cpuacct,
}

impl Ctl {
    fn name(self) -> &'static str {
        match self {
            Ctl::Memory => "memory",
            Ctl::Pids => "pids",
            Ctl::Cpu => "cpu",
            Ctl::Cpuacct => "cpuacct",
        }
    }
}

/// One directory of the cgroup: on v2 (all its controllers) or on the v1
/// hierarchy of one controller.
#[derive(Debug, Clone)]
struct Dir {
    path: PathBuf,
    v2: bool,
    ctls: Vec<Ctl>,
}

/// A cgroup made by nsrun. [`Cgroup::close`] (or drop) kills what is left
/// in it and removes it, in the process that made it only: a forked child
/// holds a copy of the value, whose teardown would kill the parent's
/// sandbox and remove the parent's directories.
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    dirs: Vec<Dir>,
    closed: bool,
    /// The pid of the process that made it, the only one that removes it.
    owner: u32,
}

/// Where the controllers are: (v2 dir of ours, its controllers), and per
/// v1 controller its mount point joined with our path there.
struct Layout {
    v2: Option<(PathBuf, Vec<String>)>,
    v1: Vec<(String, PathBuf)>,
}

fn layout() -> Result<Layout> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").op(|| "read /proc/self/cgroup".into())?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo")
        .op(|| "read /proc/self/mountinfo".into())?;
    Ok(parse_layout(&cg, &mi, |dir| {
        std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default()
    }))
}

/// [`layout`] from the text of /proc/self/cgroup and /proc/self/mountinfo;
/// `controllers` reads a v2 directory's cgroup.controllers.
fn parse_layout(cg: &str, mi: &str, controllers: impl Fn(&Path) -> String) -> Layout {
    // mountinfo: id parent maj:min root mountpoint opts ... - fstype source superopts
    let mounts: Vec<(String, String, String, String)> = mi
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            let f: Vec<&str> = a.split(' ').collect();
            let g: Vec<&str> = b.split(' ').collect();
            Some((
                f.get(3)?.to_string(),
                f.get(4)?.to_string(),
                g.first()?.to_string(),
                g.get(2).unwrap_or(&"").to_string(),
            ))
        })
        .collect();
    // Our cgroup path relative to a mount whose root is `root`.
    let under = |mnt: &str, root: &str, path: &str| -> PathBuf {
        let rel = path.strip_prefix(root).unwrap_or(path);
        let mut p = PathBuf::from(mnt);
        p.push(rel.trim_start_matches('/'));
        p
    };
    let mut out = Layout {
        v2: None,
        v1: Vec::new(),
    };
    for line in cg.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctls.is_empty() {
            if let Some((root, mnt, _, _)) = mounts.iter().find(|m| m.2 == "cgroup2") {
                let dir = under(mnt, root, path);
                let avail = controllers(&dir)
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                out.v2 = Some((dir, avail));
            }
            continue;
        }
        for c in ctls.split(',') {
            let found = mounts
                .iter()
                .find(|m| m.2 == "cgroup" && m.3.split(',').any(|o| o == c));
            if let Some((root, mnt, _, _)) = found {
                out.v1.push((c.to_string(), under(mnt, root, path)));
            }
        }
    }
    out
}

/// A limit as the cgroup files take it: u64::MAX (what "unlimited" parses
/// to) is "max".
fn count(n: u64) -> String {
    if n == u64::MAX {
        "max".into()
    } else {
        n.to_string()
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Whether this process has looked for stale cgroups yet.
static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Remove the cgroups an nsrun that is gone left in `parent`: those named
/// `nsrun-PID-N` whose PID no longer exists (a SIGKILLed nsrun runs no
/// teardown). Only empty ones go (rmdir refuses the others): what still
/// runs there is somebody's, and a live PID's are never touched, even if
/// the pid was reused, which at worst leaves one behind.
fn sweep_stale(parent: &Path) {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("nsrun-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(p, seq)| seq.parse::<u32>().ok().and(p.parse::<i32>().ok()))
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = pid > 0 && unsafe { libc::kill(pid, 0) } != 0 && Errno::last() == Errno::ESRCH;
        if gone {
            let path = e.path();
            match ops::act(
                || format!("rmdir({path:?})"),
                || {
                    std::fs::remove_dir(&path)
                        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
                },
            ) {
                Ok(()) => log::info!(
                    "removed stale cgroup {} (nsrun {pid} is gone)",
                    path.display()
                ),
                Err(err) => log::debug!("stale cgroup {}: {err}", path.display()),
            }
        }
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    ops::write_file(path, value.as_bytes(), None, false)
        .op(|| format!("cgroup: write {value:?} to {}", path.display()))
}

fn read_u64(path: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let t = s.split_whitespace().next()?;
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

/// `key value` lines (cpu.stat, memory.events, memory.oom_control).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Cgroup {
    /// Make a cgroup with these limits below the one this process is in.
    /// A controller a limit needs must exist; the others are used where
    /// the host has them (for [`Cgroup::stats`]).
    pub fn create(limits: &Limits) -> Result<Cgroup> {
        let name = format!(
            "nsrun-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let lay = layout()?;
        if !ops::planning() && !SWEPT.swap(true, Ordering::Relaxed) {
            for parent in lay
                .v2
                .iter()
                .map(|(p, _)| p)
                .chain(lay.v1.iter().map(|(_, p)| p))
            {
                sweep_stale(parent);
            }
        }
        let want = [Ctl::Memory, Ctl::Pids, Ctl::Cpu, Ctl::Cpuacct];
        let needed = |c: Ctl| match c {
            Ctl::Memory => limits.memory.is_some(),
            Ctl::Pids => limits.pids.is_some(),
            Ctl::Cpu => limits.cpu.is_some(),
            Ctl::Cpuacct => false,
        };
        let mut cg = Cgroup {
            name: name.clone(),
            dirs: Vec::new(),
            closed: false,
            owner: std::process::id(),
        };
        let mut v2_ctls = Vec::new();
        let mut v1: Vec<(PathBuf, Ctl)> = Vec::new();
        for c in want {
            let on_v2 = lay
                .v2
                .as_ref()
                .is_some_and(|(_, a)| a.iter().any(|x| x == c.name()));
            if on_v2 {
                v2_ctls.push(c);
            } else if let Some((_, p)) = lay.v1.iter().find(|(n, _)| n == c.name()) {
                // cpu and cpuacct co-mounted: one directory for both.
                if !v1.iter().any(|(q, _)| q == p) {
                    v1.push((p.clone(), c));
                }
            } else if needed(c) && c != Ctl::Cpuacct {
                return Err(Error::Invalid(format!(
                    "cgroup: the {} controller is not available on this host \
                     (neither on the cgroup v2 tree nor as a v1 hierarchy)",
                    c.name()
                )));
            }
        }
        // On v2 a cgroup exists even without controllers (it still counts
        // cpu time and can be killed as a whole): use it whenever there is a
        // v2 tree and nothing else gives statistics.
        let use_v2 = !v2_ctls.is_empty() || (v1.is_empty() && lay.v2.is_some());
        let made = (|| -> Result<()> {
            if use_v2 {
                let (parent, _) = lay.v2.as_ref().expect("v2 layout");
                if !v2_ctls.is_empty() {
                    // Controllers must be enabled for the parent's children.
                    let list: Vec<String> = v2_ctls
                        .iter()
                        .filter(|c| **c != Ctl::Cpuacct)
                        .map(|c| format!("+{}", c.name()))
                        .collect();
                    let sc = parent.join("cgroup.subtree_control");
                    let on = std::fs::read_to_string(&sc).unwrap_or_default();
                    let missing: Vec<&String> = list
                        .iter()
                        .filter(|c| !on.split_whitespace().any(|o| o == &c[1..]))
                        .collect();
                    if !missing.is_empty() {
                        let s: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                        write(&sc, &s.join(" "))?;
                    }
                }
                let path = parent.join(&name);
                mkdir(&path)?;
                cg.dirs.push(Dir {
                    path,
                    v2: true,
                    ctls: v2_ctls.clone(),
                });
            }
            for (p, c) in &v1 {
                let path = p.join(&name);
                match mkdir(&path) {
                    Ok(()) => {}
                    Err(e) if !needed(*c) => {
                        log::debug!("cgroup: skipping {}: {e}", c.name());
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                // cpu,cpuacct may share one hierarchy.
                let mut ctls = vec![*c];
                if *c == Ctl::Cpu && lay.v1.iter().any(|(n, q)| n == "cpuacct" && q == p) {
                    ctls.push(Ctl::Cpuacct);
                }
                cg.dirs.push(Dir {
                    path,
                    v2: false,
                    ctls,
                });
            }
            for (k, v) in [
                ("memory", limits.memory.map(count)),
                ("pids", limits.pids.map(count)),
                ("cpu", limits.cpu.map(|c| c.to_string())),
            ] {
                if let Some(v) = v {
                    cg.set(k, &v)?;
                }
            }
            Ok(())
        })();
        match made {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.close();
                Err(e)
            }
        }
    }

    /// Its name (the last path component of each of its directories).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directories.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    fn dir(&self, c: Ctl) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.ctls.contains(&c))
    }

    /// Put process `pid` into it (every hierarchy).
    pub fn add(&self, pid: i32) -> Result<()> {
        self.open()?;
        for d in &self.dirs {
            write(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Invalid(format!("cgroup {} is closed", self.name)));
        }
        Ok(())
    }

    /// Set a limit: `memory` (bytes), `pids` (a count or "max"), `cpu`
    /// (CPUs, e.g. "0.5", or "max").
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        self.open()?;
        let unlimited = matches!(value, "max" | "unlimited");
        let (ctl, invalid) = match key {
            "memory" => (Ctl::Memory, !unlimited && value.parse::<u64>().is_err()),
            "pids" => (Ctl::Pids, !unlimited && value.parse::<u64>().is_err()),
            "cpu" => (
                Ctl::Cpu,
                !unlimited && !value.parse::<f64>().is_ok_and(|c| c > 0.0 && c.is_finite()),
            ),
            other => {
                let hint = crate::error::suggest(other, ["memory", "pids", "cpu"])
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(Error::Invalid(format!(
                    "cgroup: unknown limit '{other}'{hint}; known: memory, pids, cpu"
                )));
            }
        };
        if invalid {
            return Err(Error::Invalid(format!("cgroup: bad {key} limit '{value}'")));
        }
        let Some(d) = self.dir(ctl) else {
            return Err(Error::Invalid(format!(
                "cgroup: the {key} controller is not available for this cgroup"
            )));
        };
        const PERIOD: u64 = 100_000;
        match (ctl, d.v2) {
            (Ctl::Memory, true) => {
                write(
                    &d.path.join("memory.max"),
                    if unlimited { "max" } else { value },
                )?;
                // A hog must hit the limit, not swap its way past it.
                let swap = d.path.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, if unlimited { "max" } else { "0" })?;
                }
            }
            (Ctl::Memory, false) => {
                let v = if unlimited { "-1" } else { value };
                let memsw = d.path.join("memory.memsw.limit_in_bytes");
                // memsw must stay >= limit: lower the limit first when
                // tightening, raise memsw first when loosening.
                if unlimited && memsw.exists() {
                    write(&memsw, v)?;
                }
                write(&d.path.join("memory.limit_in_bytes"), v)?;
                if !unlimited && memsw.exists() {
                    write(&memsw, v)?;
                }
            }
            (Ctl::Pids, _) => write(
                &d.path.join("pids.max"),
                if unlimited { "max" } else { value },
            )?,
            (Ctl::Cpu, true) => {
                let v = if unlimited {
                    format!("max {PERIOD}")
                } else {
                    let q = (value.parse::<f64>().unwrap_or(1.0) * PERIOD as f64) as u64;
                    format!("{} {PERIOD}", q.max(1000))
                };
                write(&d.path.join("cpu.max"), &v)?;
            }
            (Ctl::Cpu, false) => {
                write(&d.path.join("cpu.cfs_period_us"), &PERIOD.to_string())?;
                let v = if unlimited {
                    "-1".to_string()
                } else {
                    let q = (value.parse::<f64>().unwrap_or(1.0) * PERIOD as f64) as u64;
                    q.max(1000).to_string()
                };
                write(&d.path.join("cpu.cfs_quota_us"), &v)?;
            }
            (Ctl::Cpuacct, _) => unreachable!("not settable"),
        }
        Ok(())
    }

    /// What it used so far (what the host can tell).
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        if let Some(d) = self.dir(Ctl::Memory) {
            if d.v2 {
                s.memory_peak = read_u64(&d.path.join("memory.peak"));
                s.memory_current = read_u64(&d.path.join("memory.current"));
                s.oom_kills = keyed(&d.path.join("memory.events"), "oom_kill");
            } else {
                s.memory_peak = read_u64(&d.path.join("memory.max_usage_in_bytes"));
                s.memory_current = read_u64(&d.path.join("memory.usage_in_bytes"));
                s.oom_kills = keyed(&d.path.join("memory.oom_control"), "oom_kill");
            }
        }
        if let Some(d) = self.dir(Ctl::Pids) {
            s.pids_current = read_u64(&d.path.join("pids.current"));
        }
        if let Some(d) = self.dirs.iter().find(|d| d.v2) {
            s.cpu_usec = keyed(&d.path.join("cpu.stat"), "usage_usec");
        }
        if s.cpu_usec.is_none() {
            if let Some(d) = self.dir(Ctl::Cpuacct) {
                s.cpu_usec = read_u64(&d.path.join("cpuacct.usage")).map(|ns| ns / 1000);
            }
        }
        s
    }

    /// The pids in it (any hierarchy).
    pub fn pids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .dirs
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.path.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Kill everything in it, then remove its directories. Idempotent.
    /// In another process than the one that made it (a forked child) it
    /// only lets go of this copy, and says so.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if std::process::id() != self.owner {
            return Err(Error::Invalid(format!(
                "cgroup {}: only the process that made it (pid {}) removes it; \
                 this copy in process {} is closed without touching it",
                self.name,
                self.owner,
                std::process::id()
            )));
        }
        if ops::planning() {
            for d in &self.dirs {
                ops::record(|| format!("rmdir({:?})", d.path));
            }
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut first_err = None;
        for d in self.dirs.iter().rev() {
            loop {
                let pids: Vec<i32> = std::fs::read_to_string(d.path.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                if pids.is_empty() {
                    break;
                }
                let kill = d.path.join("cgroup.kill");
                if d.v2 && kill.exists() {
                    let _ = write(&kill, "1");
                } else {
                    for p in pids {
                        let _ = ops::kill(nix::unistd::Pid::from_raw(p), libc::SIGKILL);
                    }
                }
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // A killed task leaves the cgroup a moment after it is reaped.
            loop {
                let p = &d.path;
                let r = ops::act(
                    || format!("rmdir({p:?})"),
                    || {
                        use std::os::unix::ffi::OsStrExt;
                        let c = std::ffi::CString::new(p.as_os_str().as_bytes())
                            .map_err(|_| Errno::EINVAL)?;
                        // SAFETY: a valid C string.
                        match Errno::result(unsafe { libc::rmdir(c.as_ptr()) }) {
                            Err(Errno::ENOENT) => Ok(()),
                            r => r.map(drop),
                        }
                    },
                );
                match r {
                    Ok(()) => break,
                    Err(Errno::EBUSY) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => {
                        first_err
                            .get_or_insert(Error::sys(format!("cgroup: rmdir {}", p.display()), e));
                        break;
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn mkdir(path: &Path) -> Result<()> {
    ops::mkdir(path, 0o755).op(|| format!("cgroup: mkdir {}", path.display()))
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI_HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
33 30 0:29 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids";

    #[test]
    fn hybrid_host() {
        let cg = "8:pids:/\n4:memory:/api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let l = parse_layout(cg, MI_HYBRID, |_| "hugetlb\n".into());
        let (dir, avail) = l.v2.expect("v2");
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/unified/"));
        assert_eq!(avail, vec!["hugetlb"]);
        let get = |c: &str| l.v1.iter().find(|(n, _)| n == c).map(|(_, p)| p.clone());
        assert_eq!(
            get("memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/api/abc"))
        );
        assert_eq!(get("pids"), Some(PathBuf::from("/sys/fs/cgroup/pids/")));
        assert_eq!(get("cpu"), Some(PathBuf::from("/sys/fs/cgroup/cpu/")));
    }

    #[test]
    fn pure_v2_host_in_a_container() {
        // The container's cgroup namespace root is mounted at /sys/fs/cgroup.
        let mi = "40 30 0:27 /system.slice/box /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        let cg = "0::/system.slice/box/sub\n";
        let l = parse_layout(cg, mi, |d| {
            assert_eq!(d, Path::new("/sys/fs/cgroup/sub"));
            "cpuset cpu io memory pids\n".into()
        });
        let (dir, avail) = l.v2.expect("v2");
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/sub"));
        assert!(avail.iter().any(|c| c == "memory"));
        assert!(l.v1.is_empty());
    }
}
