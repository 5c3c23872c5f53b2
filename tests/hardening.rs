//! Hardening and limits (issue 6): capabilities, seccomp, rlimits,
//! cgroups, disable_userns and time offsets, and an escape battery, each
//! as root and as uid 65534.
//!
//! The recipes are `tests/recipes/hard_*.lua`; each run directory also gets
//! `hard_lib.lua` (their shared helpers) next to `testlib.lua`. They need
//! perl (for system calls a shell cannot make), as Debian has in its base.

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::{nsrun, As, Done};

const LIB: &str = include_str!("recipes/hard_lib.lua");

fn run_recipe(as_: As, recipe: &str, args: &[&str]) -> Done {
    nsrun(as_)
        .recipe(recipe)
        .file("hard_lib.lua", LIB.as_bytes())
        .args(args)
        .run()
}

/// The directories named `nsrun-*` in every cgroup hierarchy below the
/// cgroup this test process is in (what a leak would look like).
fn nsrun_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return out;
    };
    for l in mounts.lines() {
        let Some((a, b)) = l.split_once(" - ") else {
            continue;
        };
        if !b.starts_with("cgroup") {
            continue;
        }
        let mnt = a.split(' ').nth(4).unwrap_or("");
        walk(Path::new(mnt), 0, &mut out);
    }
    out.sort();
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > 4 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("nsrun-") {
                out.push(p.to_string_lossy().into_owned());
            }
            walk(&p, depth + 1, out);
        }
    }
}

both!(
    /// keep, drop and the default, in all five capability sets.
    fn capabilities(as_) {
        let d = run_recipe(as_, include_str!("recipes/hard_caps.lua"), &[]);
        d.finished(&[
            "keep.nonroot.CapInh",
            "keep.nonroot.CapPrm",
            "keep.nonroot.CapEff",
            "keep.nonroot.CapBnd",
            "keep.nonroot.CapAmb",
            "default.nonroot.CapEff",
            "default.nonroot.CapBnd",
            "keep.root.CapBnd",
            "keep.root.CapAmb",
            "keep.none.CapEff",
            "drop.sys_admin_gone",
            "drop.bounding",
            "default.root_full",
            "drop.mount_fails",
            "control.mount_works",
            "nnp.set",
            "nnp.unset",
            "unknown",
            "both",
        ]);
    }
);

both!(
    /// Denied calls get the chosen errno, kill rules SIGSYS (signal 31),
    /// the "default" preset blocks mount, ptrace and new user namespaces.
    fn seccomp(as_) {
        let d = run_recipe(as_, include_str!("recipes/hard_seccomp.lua"), &[]);
        d.finished(&[
            "control.mkdir",
            "errno.EACCES",
            "errno.ENOTSUP",
            "errno.default_EPERM",
            "kill.signal",
            "kill.code",
            "kill.pidns.signal",
            "log.runs",
            "deny.getppid.killed",
            "allowlist.exec_denied.msg",
            "preset.nnp",
            "preset.mode",
            "preset.unshare_user",
            "preset.mount",
            "preset.unshare_uts_allowed",
            "preset.ptrace",
            "preset.clone3",
            "unknown",
        ]);
        if as_ == As::Root {
            d.assert_oks(&["nnp_false.root", "nnp_false.root.mode"]);
        }
    }
);

both!(
    /// nofile, fsize, as and cpu limits bite; pairs, sizes, bad values.
    fn rlimits(as_) {
        let d = run_recipe(as_, include_str!("recipes/hard_rlimits.lua"), &[]);
        d.finished(&[
            "nofile.shown",
            "nofile.emfile",
            "nofile.count",
            "nofile.pair",
            "fsize.signal",
            "fsize.size",
            "as.fails",
            "as.control",
            "cpu.signal",
            "cpu.hard.signal",
            "core_stack",
            "raise",
            "bad.name",
            "bad.size",
            "bad.negative",
            "bad.count_string",
            "bad.pair",
            "bad.pair_len",
        ]);
    }
);

both!(
    /// Root: ns.cgroup values, a fork bomb against pids = 20, a memory hog
    /// against 32M, a cpu quota, the cgroup namespace, and every cgroup
    /// gone afterwards. Unprivileged: a clear error with a hint.
    fn cgroups(as_) {
        let before = nsrun_cgroups();
        let d = run_recipe(as_, include_str!("recipes/hard_cgroup.lua"), &[]);
        if as_ == As::User {
            d.finished(&["user.refused", "user.hint", "user.op", "user.spawn.hint"]);
        } else {
            d.finished(&[
                "value.name",
                "value.pids",
                "value.stats.pids",
                "value.close.killed",
                "value.closed",
                "value.set.unknown",
                "pids.fork_failed",
                "pids.eagain",
                "pids.at_most_20",
                "pids.stats",
                "host.still_forks",
                "memory.killed",
                "memory.not_timed_out",
                "memory.not_survived",
                "memory.peak",
                "cpu.usage",
                "cgroupns.pids",
                "cgroupns.user",
                "no_cgroupns",
                "daemon.killed",
                "unlimited",
                "bad.memory",
                "bad.key",
            ]);
            let made: Vec<String> = d
                .values()
                .into_iter()
                .filter(|(k, _)| k.starts_with("cg."))
                .map(|(_, v)| v)
                .collect();
            assert!(made.len() >= 2, "no cgroup paths printed\n{}", d.report());
            for p in &made {
                assert!(!Path::new(p).exists(), "cgroup {p} is left\n{}", d.report());
            }
        }
        // Nothing this run made is left (others' runs may be in flight:
        // compare by nsrun's names, which carry nsrun's pid).
        let after = nsrun_cgroups();
        let left: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
        let ours = format!("nsrun-{}-", d.value("pid"));
        let leaked: Vec<&&String> = left.iter().filter(|p| p.contains(&ours)).collect();
        assert!(leaked.is_empty(), "cgroups left: {leaked:?}\n{}", d.report());
    }
);

both!(
    /// disable_userns stops nested user namespaces; time offsets show in
    /// uptime and CLOCK_MONOTONIC.
    fn userns_and_time(as_) {
        let d = run_recipe(as_, include_str!("recipes/hard_userns.lua"), &[]);
        d.finished(&[
            "control.nested",
            "disabled.unshare",
            "disabled.unshare.msg",
            "disabled.syscall",
            "disabled.uid",
            "disabled.sysctl_locked",
            "disabled.nonroot",
            "disabled.with_seccomp",
            "needs_user",
            "time.uptime",
            "time.uptime_p",
            "time.monotonic",
        ]);
    }
);

both!(
    /// Every escape attempt from a locked-down sandbox fails (and works
    /// in its control without the lock-down); the host's loopback listener
    /// is reached only by the control.
    fn escape_battery(as_) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let d = run_recipe(as_, include_str!("recipes/hard_escape.lua"), &[&port]);
        d.finished(&[
            "all_blocked",
            "escape.net.host_loopback",
            "control.net.host_loopback",
            "escape.tty.tiocsti_pty",
            "tty.nothing_injected",
        ]);
        if as_ == As::Root {
            d.assert_oks(&["control.tty.tiocsti_pty", "tty.control_injected"]);
        }
        let attempts: u32 = d.value("attempts").parse().unwrap();
        let blocked: u32 = d.value("blocked").parse().unwrap();
        eprintln!("escape battery as {}: {attempts} attempts, {blocked} blocked", as_.name());
        assert!(attempts >= 17, "{}", d.report());
        assert_eq!(attempts, blocked, "{}", d.report());
        let mut accepted = 0;
        while listener.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, 1, "only the control may connect\n{}", d.report());
    }
);

both!(
    /// Landlock: reads below `ro`, writes below `rw`, nothing elsewhere.
    fn landlock(as_) {
        let d = run_recipe(as_, include_str!("recipes/hard_landlock.lua"), &[]);
        d.finished(&[
            "ro.read",
            "rw.write",
            "outside.read",
            "outside.read.msg",
            "ro.write",
            "outside.mkdir",
            "outside.mkdir.none",
            "nnp",
            "control.read",
            "bad.key",
            "bad.path",
        ]);
    }
);
