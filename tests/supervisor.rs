//! The Supervisor (issue 18): a multi-threaded host starts sandboxes and
//! Lua recipes through a clean helper process.
//!
//! This test process is itself a multi-threaded host (the test harness
//! runs tests on threads), running as root; the tokio example
//! (`examples/server.rs`, built here with `--features tokio`) is the host
//! for the runs as root and as uid 65534.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::As;
use nsrun::{Namespace, Spawn, Stdio, Supervisor};

fn supervisor() -> Supervisor {
    Supervisor::start_exec(env!("CARGO_BIN_EXE_nsrun")).expect("start the supervisor")
}

/// A second thread for as long as the test runs, so this process is
/// multi-threaded whatever the harness does.
fn park_a_thread() -> std::thread::JoinHandle<()> {
    std::thread::spawn(|| std::thread::sleep(Duration::from_secs(3600)))
}

/// Whether process `pid` is gone (or a zombie).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X'])),
    }
}

fn wait_gone(pids: &[i32], within: Duration) -> Vec<i32> {
    let end = Instant::now() + within;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| !gone(*p)).collect();
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_threaded_host_cannot_spawn_directly() {
    let _t = park_a_thread();
    let e = Spawn::new(["/bin/true"])
        .namespaces([Namespace::User])
        .spawn()
        .expect_err("a direct spawn from a multi-threaded process must be refused");
    let m = e.to_string();
    assert!(
        m.contains("cannot fork a process that has") && m.contains("Supervisor"),
        "{m}"
    );
}

#[test]
fn many_threads_spawn_at_once() {
    let _t = park_a_thread();
    let sup = Arc::new(supervisor());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let sup = sup.clone();
            std::thread::spawn(move || {
                for k in 0..10 {
                    let n = t * 10 + k;
                    let mut c = sup
                        .spawn(
                            Spawn::new([
                                "/bin/sh".to_string(),
                                "-c".into(),
                                "echo \"$1 $$\"; exit $(($1 % 5))".into(),
                                "sh".into(),
                                n.to_string(),
                            ])
                            .namespaces([Namespace::User, Namespace::Pid])
                            .init(false)
                            .stdout(Stdio::Pipe),
                        )
                        .unwrap_or_else(|e| panic!("spawn {n}: {e}"));
                    let (st, out, _) = c.output().unwrap();
                    // PID 1 of its own pid namespace.
                    assert_eq!(String::from_utf8_lossy(&out), format!("{n} 1\n"), "job {n}");
                    assert_eq!(st.code, Some(n % 5), "job {n}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn statuses_outputs_and_arguments_come_back() {
    let sup = supervisor();
    let mut kids: Vec<_> = (0..20)
        .map(|i| {
            let c = sup
                .spawn(
                    Spawn::new([
                        "/bin/sh".to_string(),
                        "-c".into(),
                        "read h < /proc/sys/kernel/hostname; echo \"$1 $h $FOO\"; exit $1".into(),
                        "sh".into(),
                        i.to_string(),
                    ])
                    .namespaces([Namespace::User, Namespace::Uts])
                    .hostname(format!("h{i}"))
                    .env("FOO", Some(format!("foo{i}").into()))
                    .stdout(Stdio::Pipe),
                )
                .unwrap();
            (i, c)
        })
        .collect();
    for (i, c) in kids.iter_mut() {
        let (st, out, _) = c.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out), format!("{i} h{i} foo{i}\n"));
        assert_eq!(st.code, Some(*i));
    }
}

#[test]
fn the_hosts_cwd_and_environment_as_they_are_now() {
    let sup = supervisor();
    let mut c = sup
        .spawn(Spawn::new(["/bin/sh", "-c", "pwd; echo \"$PATH\""]).stdout(Stdio::Pipe))
        .unwrap();
    let (st, out, _) = c.output().unwrap();
    assert!(st.success());
    let want = format!(
        "{}\n{}\n",
        std::env::current_dir().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    assert_eq!(String::from_utf8_lossy(&out), want);
    // clear_env: nothing of the host's.
    let mut c = sup
        .spawn(
            Spawn::new(["/usr/bin/env"])
                .clear_env(true)
                .env("ONLY", Some("this".into()))
                .stdout(Stdio::Pipe),
        )
        .unwrap();
    let (_, out, _) = c.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "ONLY=this\n");
}

#[test]
fn try_wait_exit_fd_and_kill() {
    let sup = supervisor();
    let mut c = sup
        .spawn(Spawn::new(["/bin/sh", "-c", "sleep 0.3; exit 3"]))
        .unwrap();
    assert_eq!(c.try_wait().unwrap(), None, "still running");
    assert!(c.pidfd().is_some(), "a pidfd came back");
    let mut p = libc::pollfd {
        fd: c.exit_fd().expect("an exit fd").as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    assert_eq!(n, 1, "the exit fd becomes readable");
    assert_eq!(c.try_wait().unwrap().and_then(|s| s.code), Some(3));
    // Ended: its fds are closed, and AsFd reads as ready at once.
    assert!(c.exit_fd().is_none());
    let mut p = libc::pollfd {
        fd: c.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 0) }, 1);

    let mut c = sup.spawn(Spawn::new(["/bin/sleep", "100"])).unwrap();
    c.kill(libc::SIGKILL).unwrap();
    let st = c.wait().unwrap();
    assert_eq!(st.signal, Some(libc::SIGKILL));
    assert!(!c.timed_out());
}

#[test]
fn the_supervisor_keeps_the_timeout() {
    let sup = supervisor();
    let t = Instant::now();
    let mut c = sup
        .spawn(Spawn::new(["/bin/sleep", "100"]).timeout(Duration::from_millis(300)))
        .unwrap();
    let st = c.wait().unwrap();
    assert!(c.timed_out(), "{st:?}");
    assert_eq!(st.signal, Some(libc::SIGKILL));
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn what_cannot_cross_is_refused_by_name() {
    let sup = supervisor();
    let e = sup.spawn(Spawn::func(|| 0)).err().unwrap().to_string();
    assert!(
        e.contains("Spawn::func") && e.contains("cannot cross"),
        "{e}"
    );
    let e = sup
        .spawn(Spawn::new(["/bin/true"]).setup(|| Ok(())))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("setup") && e.contains("cannot cross"), "{e}");
    // Errors the supervisor finds come back as they are.
    let e = sup
        .spawn(Spawn::new(["/nonexistent/program"]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/program"), "{e}");
    // And it still serves after them.
    let mut c = sup.spawn(Spawn::new(["/bin/true"])).unwrap();
    assert!(c.wait().unwrap().success());
}

#[test]
fn recipes_run_in_a_lua_state_of_their_own() {
    let _t = park_a_thread();
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("r.lua");
    std::fs::write(
        &recipe,
        r#"local ns = require "nsrun"
           local st = ns.run{argv = {"/bin/sh", "-c", "echo inside $(id -u)"},
                             namespaces = {"user"}}
           io.write(st.stdout, " args=", table.concat({...}, ","), " pid=", ns.getpid() > 1 and "ok" or "?", "\n")
           return #{...} + 40"#,
    )
    .unwrap();
    let sup = supervisor();
    let mut c = sup
        .run_recipe_stdio(
            &recipe,
            &["a", "b"],
            [Stdio::Null, Stdio::Pipe, Stdio::Pipe],
        )
        .unwrap();
    let (st, out, err) = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        "inside 0\n args=a,b pid=ok\n",
        "stderr: {}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(st.code, Some(42));

    std::fs::write(&recipe, "local x = = 1").unwrap();
    let mut c = sup
        .run_recipe_stdio(
            &recipe,
            &[] as &[&str],
            [Stdio::Null, Stdio::Pipe, Stdio::Pipe],
        )
        .unwrap();
    let (st, _, err) = c.output().unwrap();
    assert_eq!(st.code, Some(1));
    let err = String::from_utf8_lossy(&err);
    assert!(err.contains("r.lua:1:"), "{err}");
}

#[test]
fn dropping_the_supervisor_ends_its_jobs() {
    let sup = supervisor();
    let helper = sup.pid();
    let mut pids = vec![helper];
    let mut kids = Vec::new();
    for _ in 0..3 {
        let c = sup
            .spawn(Spawn::new(["/bin/sleep", "100"]).die_with_parent(false))
            .unwrap();
        pids.push(c.pid());
        kids.push(c);
    }
    // Its workers too.
    pids.extend(tree(helper));
    assert!(pids.len() > 4, "{pids:?}");
    drop(sup);
    assert_eq!(wait_gone(&pids, Duration::from_secs(10)), Vec::<i32>::new());
    for mut k in kids {
        // The status came before the supervisor left.
        assert_eq!(k.wait().unwrap().signal, Some(libc::SIGKILL));
    }
}

#[test]
fn a_killed_supervisor_is_an_error_not_a_hang() {
    let sup = supervisor();
    let mut kids: Vec<_> = (0..4)
        .map(|_| sup.spawn(Spawn::new(["/bin/sleep", "100"])).unwrap())
        .collect();
    let mut pids = tree(sup.pid());
    pids.extend(kids.iter().map(|k| k.pid()));
    // SAFETY: killing the helper this test started.
    unsafe { libc::kill(sup.pid(), libc::SIGKILL) };
    for k in kids.iter_mut() {
        match k.wait() {
            // A worker that saw its parent die still reports its job's end.
            Ok(st) => assert!(st.signal.is_some(), "{st:?}"),
            Err(e) => assert!(e.to_string().contains("supervisor went away"), "{e}"),
        }
    }
    assert_eq!(wait_gone(&pids, Duration::from_secs(10)), Vec::<i32>::new());
    let e = sup
        .spawn(Spawn::new(["/bin/true"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is gone"), "{e}");
}

// ---------------------------------------------------------------------------
// No secret of the host's memory reaches the supervisor or a sandbox.

/// The readable memory of process `pid`, region by region: whether
/// `needle` is in it, and how many bytes were read.
fn memory_holds(pid: i32, needle: &[u8]) -> (bool, usize) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let Ok(mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return (false, 0);
    };
    let mut read = 0;
    let mut buf = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut at = a;
        while at < b {
            // Overlap chunks so a needle across a boundary is found.
            let n = ((b - at) as usize).min(buf.len());
            let Ok(got) = mem.read_at(&mut buf[..n], at) else {
                break;
            };
            if got == 0 {
                break;
            }
            read += got;
            if buf[..got].windows(needle.len()).any(|w| w == needle) {
                return (true, read);
            }
            if got < needle.len() || at + (got as u64) >= b {
                break;
            }
            at += (got - needle.len()) as u64;
        }
    }
    (false, read)
}

/// `pid` and every process below it.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<i32>().ok());
            if ppid == Some(parent) && !all.contains(&p) {
                all.push(p);
            }
        }
        i += 1;
    }
    all
}

#[test]
fn a_sandbox_cannot_read_a_secret_of_the_hosts_memory() {
    let mut raw = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut raw)
        .unwrap();
    let secret: Vec<u8> = raw
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .chain(*b"-host-secret")
        .collect();
    let secret = std::hint::black_box(secret);

    // The control: a helper that is a fork of this process (not a fresh
    // program) holds the secret, and the scan finds it there.
    let (r, w) = nix::unistd::pipe().unwrap();
    let (r_fd, w_fd) = (r.as_raw_fd(), w.as_raw_fd());
    let mut cmd = Command::new("/bin/true");
    // SAFETY: close and read are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_NAME, c"secret-control".as_ptr(), 0, 0, 0);
            libc::close(w_fd);
            let mut b = 0u8;
            libc::read(r_fd, (&mut b as *mut u8).cast(), 1);
            Err(std::io::Error::from_raw_os_error(libc::ECANCELED))
        });
    }
    let spawner = std::thread::spawn(move || cmd.spawn().err());
    let forked = (0..500)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            tree(std::process::id() as i32)
                .into_iter()
                .skip(1)
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "secret-control")
                })
        })
        .expect("the forked control process");
    let (found, n) = memory_holds(forked, &secret);
    drop(w);
    drop(r);
    assert!(spawner.join().unwrap().is_some());
    assert!(
        found,
        "the scan must find the secret in a fork of the host ({n} bytes read)"
    );

    let sup = supervisor();
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("wait.lua");
    std::fs::write(&recipe, "io.read('a'); return 0").unwrap();
    let mut lua = sup
        .run_recipe_stdio(
            &recipe,
            &[] as &[&str],
            [Stdio::Pipe, Stdio::Null, Stdio::Null],
        )
        .unwrap();
    let mut sandbox = sup
        .spawn(
            Spawn::new(["/bin/sh", "-c", "cat >/dev/null"])
                .namespaces([Namespace::User, Namespace::Pid, Namespace::Mount])
                .stdin(Stdio::Pipe),
        )
        .unwrap();
    // Every process of the supervisor's tree: it, the recipe's Lua
    // process, the sandbox's init and shell.
    let mut procs = tree(sup.pid());
    for _ in 0..200 {
        if procs.len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        procs = tree(sup.pid());
    }
    assert!(procs.len() >= 4, "{procs:?}");
    for p in &procs {
        let (found, n) = memory_holds(*p, &secret);
        assert!(n > 4096, "process {p}: only {n} bytes read");
        assert!(!found, "process {p} holds the host's secret");
    }
    lua.stdin.take().unwrap().write_all(b"").unwrap();
    sandbox.stdin.take();
    assert!(lua.wait().unwrap().success());
    assert!(sandbox.wait().unwrap().success());
    drop(secret);
}

// ---------------------------------------------------------------------------
// The tokio example, as root and as uid 65534.

/// `examples/server.rs`, built once with `--features tokio` (plain
/// `cargo test` leaves it out: it requires the feature), and a copy
/// uid 65534 can run.
fn server(as_: As) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--example",
                "server",
                "--features",
                "tokio",
                "--message-format=json",
                "--manifest-path",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run cargo build --example server");
        assert!(out.status.success(), "cargo build --example server failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let exe = text
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"server\""))
            .find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                Some(PathBuf::from(v["executable"].as_str()?))
            })
            .expect("the example's executable in cargo's output");
        let copy = common::base().join("server");
        std::fs::copy(&exe, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    });
    let _ = as_;
    built.clone()
}

/// The example as `as_`, in a session of its own.
fn server_cmd(as_: As, args: &[&str]) -> Command {
    let bin = server(as_);
    let mut c = match as_ {
        As::Root => Command::new(&bin),
        As::User => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin);
            c
        }
    };
    c.args(args).current_dir(common::base());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c
}

/// Live processes of session `sid`, after a grace period; any found are
/// killed.
fn session_leftovers(sid: i32) -> Vec<(i32, String)> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let left = common::live_where(common::Group::Session, sid);
        if left.is_empty() || Instant::now() > end {
            for (p, _) in &left {
                // SAFETY: killing what the test started.
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

both!(fn the_tokio_example_runs_200_jobs(as_) {
    let child = server_cmd(as_, &["200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{so}{se}");
    assert!(so.starts_with("200 jobs in ") && so.contains(", 0 wrong"), "{so}{se}");
    assert_eq!(session_leftovers(sid), vec![]);
});

both!(fn the_tokio_example_without_the_supervisor_is_refused(as_) {
    let out = server_cmd(as_, &["--direct"]).output().unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        se.contains("cannot fork a process that has") && se.contains("threads"),
        "{se}"
    );
});

both!(fn killing_the_host_leaves_nothing_behind(as_) {
    let mut child = server_cmd(as_, &["6", "--sleep", "100"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sid = child.id() as i32;
    // The supervisor and the six sandboxes' sleeps are running.
    let end = Instant::now() + Duration::from_secs(30);
    let running = loop {
        let live = common::live_where(common::Group::Session, sid);
        let sleeps = live.iter().filter(|(_, c)| c == "sleep").count();
        let sup = live.iter().any(|(_, c)| c == "nsrun-super");
        if (sleeps == 6 && sup) || Instant::now() > end {
            break live;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        running.iter().filter(|(_, c)| c == "sleep").count() == 6,
        "{running:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(session_leftovers(sid), vec![]);
});

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Embedding in threaded and async programs: the Supervisor\n")
        .nth(1)
        .expect("the README's supervisor section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("its rust block");
    assert_eq!(
        format!("{block}\n"),
        include_str!("../examples/server.rs"),
        "README.md's copy of examples/server.rs differs from the file"
    );
}

#[test]
fn hardening_crosses_to_the_supervisor() {
    use nsrun::{Caps, Rlimit, SeccompAction, SeccompPolicy};
    let sup = supervisor();
    let deny = SeccompPolicy::new()
        .deny(&["mount".into()], SeccompAction::Errno(libc::EPERM))
        .unwrap();
    let mut c = sup
        .spawn(
            Spawn::new([
                "/bin/sh",
                "-c",
                "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; ulimit -n",
            ])
            .namespaces([Namespace::User])
            .caps(Caps::Keep(0))
            .seccomp(deny)
            .rlimit(Rlimit::new("nofile", 32, 32).unwrap())
            .stdout(Stdio::Pipe),
        )
        .unwrap();
    let (st, out, _) = c.output().unwrap();
    assert!(st.success());
    assert_eq!(
        String::from_utf8_lossy(&out),
        "CapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n32\n"
    );
    // The filter is the one asked for: mount fails with EPERM, not ENOSYS
    // or a kill.
    let mut c = sup
        .spawn(
            Spawn::new(["/bin/sh", "-c", "unshare -m true 2>&1; echo $?"])
                .namespaces([Namespace::User])
                .seccomp(
                    SeccompPolicy::new()
                        .deny(&["unshare".into()], SeccompAction::Errno(libc::EACCES))
                        .unwrap(),
                )
                .stdout(Stdio::Pipe),
        )
        .unwrap();
    let (_, out, _) = c.output().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("Permission denied") && out.ends_with("1\n"),
        "{out}"
    );
}

#[test]
fn arguments_need_not_be_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let sup = supervisor();
    let arg = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff");
    let mut c = sup
        .spawn(
            Spawn::new([std::ffi::OsStr::new("/bin/echo"), arg])
                .env("K\u{e9}", Some(std::ffi::OsStr::from_bytes(b"\xfe").into()))
                .stdout(Stdio::Pipe),
        )
        .unwrap();
    let (_, out, _) = c.output().unwrap();
    assert_eq!(out, b"caf\xe9 \xff\n");
}

/// CPU time (user + system) the supervisor and its workers used so far.
fn supervisor_cpu(pid: i32) -> Duration {
    let ticks: u64 = tree(pid)
        .into_iter()
        .filter_map(|p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let (head, rest) = s.rsplit_once(')')?;
            head.ends_with("(nsrun-super").then(|| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>()
            })
        })
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[test]
fn ended_jobs_leave_the_supervisor_idle() {
    let sup = supervisor();
    // Handles kept and not waited for: the host holds its copies of their
    // pidfds after the supervisor reaped them and closed its own.
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(sup.spawn(Spawn::new(["/bin/true"])).unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = supervisor_cpu(sup.pid());
    let mut slow: Vec<_> = (0..4)
        .map(|_| sup.spawn(Spawn::new(["/bin/sleep", "1"])).unwrap())
        .collect();
    for c in slow.iter_mut() {
        assert!(c.wait().unwrap().success());
    }
    let used = supervisor_cpu(sup.pid()) - before;
    // Waiting is sleeping: a loop woken by a stale, always-ready entry
    // would burn the whole second.
    assert!(
        used < Duration::from_millis(300),
        "the supervisor used {used:?}"
    );
    for mut c in held {
        assert!(c.wait().unwrap().success());
    }
}
