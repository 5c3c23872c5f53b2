//! Hardening and limits (issue 6): capabilities, seccomp, rlimits,
//! cgroups, disable_userns and time offsets, and an escape battery, each
//! as root and as uid 65534.
//!
//! The recipes are `tests/recipes/hard_*.lua`; each run directory also gets
//! `hard_lib.lua` (their shared helpers) next to `testlib.lua`. They need
//! perl (for system calls a shell cannot make), as Debian has in its base.

mod bpf;
mod common;

use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;

use bpf::{Data, Verdict};
use common::{nsrun, As, Done};
use nsrun::sys::landlock as ll;
use nsrun::sys::seccomp::{self as sc, Action, Policy, X32_SYSCALL_BIT};

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
        let d = run_recipe(
            as_,
            include_str!("recipes/hard_seccomp.lua"),
            &[std::env::consts::ARCH],
        );
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
        if cfg!(target_arch = "x86_64") {
            let mut calls = vec![
                "preset.allows.personality.query",
                "preset.allows.ioctl.tcgets",
                "preset.calls_counted",
                "control.x32",
                "x32.preset",
                "x32.deny_list",
                "x32.allow_log",
            ];
            let denied = [
                "fsopen",
                "fspick",
                "open_tree",
                "fsconfig",
                "fsmount",
                "move_mount",
                "mount_setattr",
                "open_tree_attr",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
                "pidfd_getfd",
                "keyctl",
                "setns",
                "bpf",
                "perf_event_open",
                "process_vm_readv",
                "name_to_handle_at",
                "personality.addr_no_randomize",
                "ioctl.tiocsti",
                "ioctl.tioclinux",
            ];
            let names: Vec<String> = denied
                .iter()
                .flat_map(|n| [format!("preset.denies.{n}"), format!("control.preset.{n}")])
                .collect();
            calls.extend(names.iter().map(String::as_str));
            d.assert_oks(&calls);
        }
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

// The ioctl numbers of x86_64 and the generic table (libc's type for them
// differs between glibc and musl).
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541c;
const TCGETS: u64 = 0x5401;

/// A free loopback TCP port (free when this returns; the recipe binds it
/// right away).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Connections waiting on a non-blocking listener, taken.
fn accepted<T>(mut accept: impl FnMut() -> std::io::Result<T>) -> usize {
    let mut n = 0;
    while accept().is_ok() {
        n += 1;
    }
    n
}

both!(
    /// Landlock: reads below `ro`, writes below `rw`, nothing elsewhere;
    /// TCP connect and bind only to listed ports; abstract unix sockets
    /// and signals kept inside the sandbox. Each against a control without
    /// the rule, with the host's network shared so that the test's own
    /// listeners are reachable. What this kernel's ABI lacks is skipped
    /// with a reason, and then the request must fail in the parent.
    fn landlock(as_) {
        let abi = ll::abi();
        let port_ok = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        let port_no = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        for l in [&port_ok, &port_no] {
            l.set_nonblocking(true).unwrap();
        }
        let name = format!("nsrun-test-landlock-{}-{}", std::process::id(), as_.name());
        let unix = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap())
            .expect("listen on an abstract unix socket");
        unix.set_nonblocking(true).unwrap();
        let s = |p: u16| p.to_string();
        let args = [
            abi.to_string(),
            s(port_ok.local_addr().unwrap().port()),
            s(port_no.local_addr().unwrap().port()),
            s(free_port()),
            s(free_port()),
            name,
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let d = run_recipe(as_, include_str!("recipes/hard_landlock.lua"), &args);
        let mut want = vec![
            "bad.key",
            "bad.port.zero",
            "bad.port.big",
            "bad.port.string",
            "bad.port.fraction",
            "bad.port.not_list",
            "bad.scope",
            "bad.empty",
        ];
        let parts: [(i64, &str, &[&str]); 4] = [
            (
                1,
                "fs",
                &[
                    "ro.read",
                    "rw.write",
                    "outside.read",
                    "outside.read.msg",
                    "ro.write",
                    "outside.mkdir",
                    "outside.mkdir.none",
                    "nnp",
                    "control.read",
                    "bad.path",
                ],
            ),
            (
                4,
                "tcp_connect",
                &[
                    "connect.listed",
                    "connect.unlisted",
                    "control.connect",
                    "control.connect.fs_only",
                    "connect.bind_free",
                ],
            ),
            (
                4,
                "tcp_bind",
                &["bind.listed", "bind.unlisted", "control.bind", "bind.none"],
            ),
            (
                6,
                "scope",
                &[
                    "scope.abstract_unix",
                    "control.abstract_unix.other_scope",
                    "control.abstract_unix",
                    "scope.signal.probe",
                    "scope.signal.term",
                    "scope.signal.victim_alive",
                    "control.signal",
                    "control.signal.victim_killed",
                ],
            ),
        ];
        let mut fails_closed = Vec::new();
        for (need, what, oks) in parts {
            if abi >= need {
                want.extend_from_slice(oks);
            } else {
                eprintln!("skip landlock {what} as {}: this kernel has Landlock ABI {abi}, {what} needs {need}; checking the fail-closed error instead", as_.name());
                fails_closed.push(format!("{what}.fails_closed"));
                fails_closed.push(format!("{what}.fails_closed.has"));
            }
        }
        want.extend(fails_closed.iter().map(String::as_str));
        d.finished(&want);
        if abi >= 4 {
            // The allowed connect on the listed port, the two controls on
            // the other: nothing more got through.
            assert_eq!(accepted(|| port_ok.accept()), 1, "{}", d.report());
            assert_eq!(accepted(|| port_no.accept()), 2, "{}", d.report());
        }
        if abi >= 6 {
            assert_eq!(accepted(|| unix.accept()), 2, "only the controls may connect\n{}", d.report());
        }
    }
);

both!(
    /// `--plan` states the Landlock ABI a real run would use and the rules.
    fn landlock_plan(as_) {
        let abi = ll::abi();
        let recipe = "local ns = require 'nsrun'\n\
            ns.spawn{argv = {'true'}, landlock = {ro = {'/usr'}, tcp_connect = {443}, tcp_bind = {443, 8080}, scope = {'signal', 'abstract_unix'}}}";
        let d = common::run_cli(as_, &["--plan", "-e", recipe]);
        if abi < 6 {
            eprintln!("skip landlock_plan: this kernel has Landlock ABI {abi}, the recipe needs 6");
            d.assert_code(1).stderr_has("this kernel has");
            return;
        }
        d.success();
        let used = abi.min(ll::KNOWN_ABI);
        for part in [
            format!("landlock_create_ruleset(ABI {used}, fs=0x"),
            "net=bind,connect, scoped=abstract_unix,signal)".to_string(),
            "landlock_add_rule(tcp 443: bind,connect)".to_string(),
            "landlock_add_rule(tcp 8080: bind)".to_string(),
        ] {
            d.stderr_has(&part);
        }
    }
);

/// The compiled filters, run by the test's BPF interpreter: x32 calls,
/// a wrong architecture, the preset's argument rules, for every kind of
/// program nsrun compiles (this kernel has x32 off, so it cannot show
/// them itself).
#[test]
fn seccomp_compiled_filters() {
    let nr = |n: &str| sc::syscall(n).unwrap();
    let errno = Action::Errno(libc::EPERM);
    let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let policies: Vec<(&str, Policy)> = vec![
        ("preset", Policy::preset_default(libc::EPERM)),
        (
            "deny errno",
            Policy::new().deny(&names(&["mount"]), errno).unwrap(),
        ),
        (
            "deny kill",
            Policy::new()
                .deny(&names(&["mount"]), Action::Kill)
                .unwrap(),
        ),
        (
            "deny log",
            Policy::new().deny(&names(&["mount"]), Action::Log).unwrap(),
        ),
        (
            "allow list",
            Policy::new()
                .allow(&names(&["read", "ioctl", "personality", "unshare"]), errno)
                .unwrap(),
        ),
        ("all errno", Policy::new().all(errno)),
        ("all kill", Policy::new().all(Action::Kill)),
        ("tty_guard", Policy::tty_guard()),
        ("init", Policy::init(&[]).unwrap()),
    ];
    for (what, p) in &policies {
        let progs = p.compile().unwrap();
        assert!(!progs.is_empty(), "{what}");
        let v = |d: Data| bpf::verdict(&progs, &d);
        let call = |n: &str, args: &[u64]| v(Data::call(nr(n), args));
        // Whatever the program: x32 calls and a foreign architecture die.
        if cfg!(target_arch = "x86_64") {
            for n in ["mount", "read", "ioctl"] {
                let x32 = Data::call(i64::from(X32_SYSCALL_BIT) | nr(n), &[]);
                assert_eq!(v(x32), Verdict::KillProcess, "{what}: x32 {n}");
            }
        }
        let mut foreign = Data::call(nr("read"), &[]);
        foreign.arch = bpf::AUDIT_ARCH_I386;
        assert_eq!(v(foreign), Verdict::KillProcess, "{what}: wrong arch");
        // Each program on its own, too: none may leave the x32 hole to
        // another.
        if cfg!(target_arch = "x86_64") {
            for prog in &progs {
                let x32 = Data::call(i64::from(X32_SYSCALL_BIT) | nr("mount"), &[]);
                assert_eq!(
                    bpf::verdict(std::slice::from_ref(prog), &x32),
                    Verdict::KillProcess,
                    "{what}"
                );
            }
        }
        let read = call("read", &[0, 0, 0]);
        match *what {
            "all errno" => assert_eq!(read, Verdict::Errno(1), "{what}"),
            "all kill" => assert_eq!(read, Verdict::KillProcess, "{what}"),
            _ => assert_eq!(read, Verdict::Allow, "{what}: read"),
        }
    }
    // The preset's argument rules.
    let p = Policy::preset_default(libc::EPERM).compile().unwrap();
    let call = |n: &str, args: &[u64]| bpf::verdict(&p, &Data::call(nr(n), args));
    let eperm = Verdict::Errno(libc::EPERM as u16);
    assert_eq!(call("personality", &[0x0]), Verdict::Allow);
    assert_eq!(call("personality", &[0xffff_ffff]), Verdict::Allow);
    assert_eq!(
        call("personality", &[0x004_0000]),
        eperm,
        "ADDR_NO_RANDOMIZE"
    );
    assert_eq!(call("ioctl", &[0, TIOCSTI]), eperm);
    assert_eq!(call("ioctl", &[0, TIOCLINUX]), eperm);
    assert_eq!(call("ioctl", &[0, TCGETS]), Verdict::Allow);
    assert_eq!(call("unshare", &[libc::CLONE_NEWUSER as u64]), eperm);
    assert_eq!(call("unshare", &[libc::CLONE_NEWNS as u64]), Verdict::Allow);
    assert_eq!(call("mount_setattr", &[]), eperm);
    assert_eq!(call("io_uring_setup", &[]), eperm);
    assert_eq!(call("clone3", &[]), Verdict::Errno(libc::ENOSYS as u16));
    // The init's allow list.
    let init = Policy::init(&[]).unwrap().compile().unwrap();
    for n in ["ptrace", "open", "openat", "mount", "execve"] {
        let got = bpf::verdict(&init, &Data::call(nr(n), &[]));
        assert_eq!(got, Verdict::KillProcess, "init: {n}");
    }
    assert_eq!(
        bpf::verdict(&init, &Data::call(nr("wait4"), &[])),
        Verdict::Allow
    );
}

/// What the kernel does with a call under `progs`: install them in a
/// fresh child and make it.
fn kernel_answer(progs: &[seccompiler::BpfProgram], nr: i64, args: [u64; 6]) -> Verdict {
    let mut fds = [0; 2];
    // SAFETY: a pipe for the child's errno.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child makes only async-signal-safe system calls (this
    // test process has threads) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: system calls on memory prepared before the fork.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(100);
            }
            for p in progs {
                #[repr(C)]
                struct Fprog {
                    len: libc::c_ushort,
                    filter: *const seccompiler::sock_filter,
                }
                let f = Fprog {
                    len: p.len() as libc::c_ushort,
                    filter: p.as_ptr(),
                };
                if libc::syscall(libc::SYS_seccomp, 1u32, 0u32, &f as *const Fprog) != 0 {
                    libc::_exit(101);
                }
            }
            let r = libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
            let e: i32 = if r == -1 {
                *libc::__errno_location()
            } else {
                0
            };
            libc::write(fds[1], (&e as *const i32).cast(), 4);
            libc::_exit(0);
        }
    }
    // SAFETY: our pipe's ends; the child is ours to reap.
    unsafe {
        libc::close(fds[1]);
        let mut e: i32 = -1;
        let n = libc::read(fds[0], (&mut e as *mut i32).cast(), 4);
        libc::close(fds[0]);
        let mut st = 0;
        assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
        if libc::WIFSIGNALED(st) {
            assert_eq!(
                libc::WTERMSIG(st),
                libc::SIGSYS,
                "child died of another signal"
            );
            return Verdict::KillProcess;
        }
        assert_eq!(
            libc::WEXITSTATUS(st),
            0,
            "the child could not install the filters"
        );
        assert_eq!(n, 4);
        match e {
            0 => Verdict::Allow,
            e => Verdict::Errno(e as u16),
        }
    }
}

/// The interpreter agrees with the kernel: each case's filters are
/// installed in a child that makes the call, and where the interpreter
/// says allow the kernel's own answer must not be the filter's errno.
/// EXFULL marks the preset's answers (no kernel path here returns it).
#[test]
#[cfg(target_arch = "x86_64")]
fn seccomp_interpreter_matches_kernel() {
    let nr = |n: &str| sc::syscall(n).unwrap();
    let exfull = libc::EXFULL;
    let preset = Policy::preset_default(exfull).compile().unwrap();
    let tty = Policy::tty_guard().compile().unwrap();
    let init = Policy::init(&[]).unwrap().compile().unwrap();
    let allow = Policy::new()
        .allow(
            &[
                "exit_group".to_string(),
                "getpid".to_string(),
                "write".to_string(),
            ],
            Action::Errno(exfull),
        )
        .unwrap()
        .compile()
        .unwrap();
    let a = |v: &[u64]| {
        let mut out = [0u64; 6];
        out[..v.len()].copy_from_slice(v);
        out
    };
    let bad_fd = u64::MAX; // -1
    let cases: Vec<(&str, &[seccompiler::BpfProgram], i64, [u64; 6])> = vec![
        (
            "preset unshare(NEWUSER)",
            &preset,
            nr("unshare"),
            a(&[libc::CLONE_NEWUSER as u64]),
        ),
        ("preset unshare(0)", &preset, nr("unshare"), a(&[0])),
        (
            "preset personality query",
            &preset,
            nr("personality"),
            a(&[0xffff_ffff]),
        ),
        (
            "preset personality(ADDR_NO_RANDOMIZE)",
            &preset,
            nr("personality"),
            a(&[0x004_0000]),
        ),
        (
            "preset ioctl TIOCSTI",
            &preset,
            nr("ioctl"),
            a(&[bad_fd, TIOCSTI]),
        ),
        (
            "preset ioctl TIOCSTI, junk high half",
            &preset,
            nr("ioctl"),
            a(&[bad_fd, TIOCSTI | 1 << 32]),
        ),
        (
            "preset ioctl TCGETS",
            &preset,
            nr("ioctl"),
            a(&[bad_fd, TCGETS]),
        ),
        (
            "preset mount_setattr",
            &preset,
            nr("mount_setattr"),
            a(&[bad_fd]),
        ),
        (
            "preset open_tree_attr",
            &preset,
            nr("open_tree_attr"),
            a(&[bad_fd]),
        ),
        (
            "preset io_uring_setup",
            &preset,
            nr("io_uring_setup"),
            a(&[1, 0]),
        ),
        ("preset clone3", &preset, nr("clone3"), a(&[0, 0])),
        ("preset getpid", &preset, nr("getpid"), a(&[])),
        (
            "preset x32 getpid",
            &preset,
            i64::from(X32_SYSCALL_BIT) | nr("getpid"),
            a(&[]),
        ),
        ("preset -1", &preset, -1, a(&[])),
        (
            "tty_guard TIOCSTI",
            &tty,
            nr("ioctl"),
            a(&[bad_fd, TIOCSTI]),
        ),
        (
            "tty_guard TIOCLINUX",
            &tty,
            nr("ioctl"),
            a(&[bad_fd, TIOCLINUX]),
        ),
        ("tty_guard TCGETS", &tty, nr("ioctl"), a(&[bad_fd, TCGETS])),
        (
            "tty_guard x32 ioctl",
            &tty,
            i64::from(X32_SYSCALL_BIT) | nr("ioctl"),
            a(&[]),
        ),
        ("init getpid", &init, nr("getpid"), a(&[])),
        ("init openat", &init, nr("openat"), a(&[bad_fd, 0])),
        ("allow list getpid", &allow, nr("getpid"), a(&[])),
        ("allow list getppid", &allow, nr("getppid"), a(&[])),
    ];
    // ENOSYS is also the kernel's answer to -1, so only clone3's exact case checks it.
    let filter_errnos = [exfull, libc::EPERM];
    for (what, progs, n, args) in cases {
        let mut d = Data::call(n, &args);
        d.args = args;
        let interp = bpf::verdict(progs, &d);
        let kernel = kernel_answer(progs, n, args);
        match interp {
            Verdict::Allow => assert!(
                !matches!(kernel, Verdict::KillProcess)
                    && !matches!(kernel, Verdict::Errno(e) if filter_errnos.contains(&i32::from(e))),
                "{what}: the interpreter allows, the kernel says {kernel:?}"
            ),
            _ => assert_eq!(kernel, interp, "{what}"),
        }
        eprintln!("{what}: {interp:?} (kernel: {kernel:?})");
    }
}

/// The system calls `/bin/true` makes from its exec on, as strace names
/// them (execve included).
fn syscalls_of_true() -> Option<Vec<String>> {
    let dir = tempfile::tempdir().ok()?;
    let log = dir.path().join("log");
    let st = std::process::Command::new("strace")
        .args(["-qq", "-f", "-o"])
        .arg(&log)
        .arg("/bin/true")
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    let mut calls: Vec<String> = std::fs::read_to_string(&log)
        .ok()?
        .lines()
        .filter_map(|l| {
            let call = l.split_once(' ').map_or(l, |(_, c)| c).trim_start();
            let name = call.split('(').next()?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| name.to_string())
        })
        .collect();
    calls.sort();
    calls.dedup();
    Some(calls)
}

both!(
    /// The filter is the last thing before execve: an allow-list of
    /// exactly what `/bin/true` calls (with execve) lets it run, with a
    /// working directory to enter, new namespaces, a pid namespace's init
    /// and a sandbox's set-up before it. Nothing nsrun does after the
    /// filter (a chdir, a signal disposition) is left to be killed.
    /// Control: the same list without `exit_group` kills the program.
    fn seccomp_allow_list_of_exactly_the_program(as_) {
        let Some(calls) = syscalls_of_true() else {
            eprintln!("skip seccomp_allow_list_of_exactly_the_program: strace cannot run /bin/true here");
            return;
        };
        assert!(calls.iter().any(|c| c == "execve"), "{calls:?}");
        let list = |skip: &str| {
            calls
                .iter()
                .filter(|c| c.as_str() != skip)
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let recipe = format!(
            r#"local ns = require "nsrun"
               local T = require "testlib"
               local exact = {{ {exact} }}
               local short = {{ {short} }}
               local function run(allow, extra)
                 local o = {{ argv = {{"/bin/true"}}, cwd = "/",
                   seccomp = {{ default = "kill", allow = allow }} }}
                 for k, v in pairs(extra or {{}}) do o[k] = v end
                 return ns.run(o)
               end
               T.eq("exact.plain", run(exact).code, 0)
               T.eq("exact.userns", run(exact, {{ namespaces = "user,mount,uts" }}).code, 0)
               T.eq("exact.init", run(exact, {{ namespaces = "user,mount,pid" }}).code, 0)
               T.eq("exact.relay", run(exact, {{ namespaces = "user,pid,time" }}).code, 0)
               T.eq("exact.fn_setup", run(exact, {{ namespaces = "user,mount",
                 setup = function() ns.mount("tmpfs", "/mnt", "tmpfs") end }}).code, 0)
               local sandbox = require "nsrun.sandbox"
               T.eq("exact.sandbox", sandbox.run{{ argv = {{"/bin/true"}}, cwd = "/",
                 binds = {{ {{"/", "/", ro = true}} }},
                 tty_guard = false, seccomp = {{ default = "kill", allow = exact }} }}.code, 0)
               local r = run(short)
               T.eq("short.killed", r.signal, 31)
               print("done")"#,
            exact = list(""),
            short = list("exit_group"),
        );
        common::run(as_, &recipe, &[]).finished(&[
            "exact.plain",
            "exact.userns",
            "exact.init",
            "exact.relay",
            "exact.fn_setup",
            "exact.sandbox",
            "short.killed",
        ]);
    }
);

/// A SIGKILLed nsrun leaves its cgroups behind: the next nsrun that makes
/// one removes those (empty) whose nsrun is gone, and leaves a live one's.
#[test]
fn stale_cgroups_of_a_dead_nsrun_are_removed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skip stale_cgroups: needs root");
        return;
    }
    // Where nsrun makes its cgroups here (v2, or each v1 hierarchy's).
    let probe = common::run(
        As::Root,
        r#"local ns = require "nsrun"
           local cg = ns.cgroup{pids = 16}
           print("val dir=" .. cg.paths[1])
           cg:close()
           print("done")"#,
        &[],
    );
    probe.success();
    let made = probe.value("dir");
    let parent = Path::new(&made).parent().unwrap().to_path_buf();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = parent.join(format!("nsrun-{dead}-0"));
    let live = parent.join(format!("nsrun-{}-9999", std::process::id()));
    if std::fs::create_dir(&stale).is_err() || std::fs::create_dir(&live).is_err() {
        let _ = std::fs::remove_dir(&stale);
        let _ = std::fs::remove_dir(&live);
        eprintln!(
            "skip stale_cgroups: cannot make cgroups in {}",
            parent.display()
        );
        return;
    }
    let d = common::run(
        As::Root,
        r#"local ns = require "nsrun"
           local r = ns.run{argv = {"true"}, cgroup = {pids = 16}}
           assert(r.code == 0, r.code)
           print("done")"#,
        &[],
    );
    let stale_left = stale.exists();
    let live_left = live.exists();
    let _ = std::fs::remove_dir(&stale);
    let _ = std::fs::remove_dir(&live);
    d.success();
    assert!(
        !stale_left,
        "{} (nsrun {dead} is gone) was left",
        stale.display()
    );
    assert!(
        live_left,
        "{} (a live process's) was removed",
        live.display()
    );
}
