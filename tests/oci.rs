//! `nsrun oci`: runc's command line on a bundle made from Debian's
//! busybox-static, as root (a `runc spec` bundle) and as uid 65534 (`spec
//! --rootless`). The test process is a child subreaper, as conmon and
//! containerd's shim are: a container whose `create` has returned is its
//! child, and it reaps it.

mod common;
mod oci_bundle;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::As;
use oci_bundle::*;

both!(
    /// create leaves the process set up and waiting, writes the pid file,
    /// and leaves nothing of the runtime as its parent; start releases it
    /// (once); kill, delete, and delete --force of a gone id.
    fn lifecycle(as_) {
        subreaper();
        let b = Bundle::new(as_, &["sh", "-c", "echo started; sleep 30"]);
        let pidfile = b.path().join("pid");
        let (ok, out) = b.create(&["create", "--bundle", b.path().to_str().unwrap(), "--pid-file",
            pidfile.to_str().unwrap(), "c1"]);
        assert!(ok, "create: {out}");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let out = std::fs::read_to_string(b.path().join("create.out")).unwrap();
        assert!(!out.contains("started"), "ran before start: {out}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
        let st = b.state("c1");
        assert_eq!(st["status"], "created");
        assert_eq!(st["pid"], pid);
        assert_eq!(st["id"], "c1");
        assert_eq!(st["ociVersion"], "1.2.0");
        // Adopted by us, the subreaper: no runtime process in between.
        assert_eq!(ppid_of(pid), std::process::id() as i32);
        let o = b.oci(&["list", "--format", "json"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("\"c1\""), "{}", text(&o));

        let o = b.oci(&["start", "c1"]);
        assert!(o.status.success(), "start: {}", text(&o));
        assert_eq!(b.state("c1")["status"], "running");
        // The program runs with create's stdio.
        let t = std::time::Instant::now();
        while !std::fs::read_to_string(b.path().join("create.out")).unwrap().contains("started") {
            assert!(t.elapsed().as_secs() < 10, "the program never wrote to create's stdout");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let o = b.oci(&["start", "c1"]);
        assert!(!o.status.success(), "a second start must fail: {}", text(&o));
        let o = b.oci(&["ps", "--format", "json", "c1"]);
        let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
        assert!(pids.contains(&pid), "{}", text(&o));

        let o = b.oci(&["delete", "c1"]);
        assert!(!o.status.success(), "delete of a running container: {}", text(&o));
        let o = b.oci(&["kill", "c1", "9"]);
        assert!(o.status.success(), "kill: {}", text(&o));
        assert_eq!(reap(pid), 137);
        assert_eq!(b.state("c1")["status"], "stopped");
        let o = b.oci(&["delete", "c1"]);
        assert!(o.status.success(), "delete: {}", text(&o));
        let o = b.oci(&["state", "c1"]);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"), "{}", text(&o));
        let o = b.oci(&["delete", "--force", "c1"]);
        assert!(o.status.success(), "delete --force of a gone id: {}", text(&o));
    }
);

both!(
    /// run: the container's stdio is the runtime's, its environment is
    /// process.env alone (no engine variable), its exit status is run's.
    fn run_status_stdio_env(as_) {
        let b = Bundle::new(as_, &["sh", "-c", "echo out; echo err >&2; env; hostname; exit 7"]);
        b.edit(|c| c["hostname"] = "box".into());
        let o = b.oci(&["run", "--bundle", b.path().to_str().unwrap(), "r1"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(7), "{}", text(&o));
        assert!(out.contains("out\n") && out.contains("box\n"), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("err"), "{}", text(&o));
        assert!(out.contains("TERM=xterm"), "{}", text(&o));
        assert!(!out.contains("_OCI_SYNCPIPE"), "an engine variable reached the container: {}", text(&o));
        // Gone after run.
        assert!(!b.state_root().join("r1").exists());
    }
);

both!(
    /// A missing program fails at create with runc's words (podman makes
    /// that exit 127), logged as a JSON line, and leaves nothing behind.
    fn missing_program(as_) {
        let b = Bundle::new(as_, &["no-such-program"]);
        let log = b.path().join("log.json");
        let (ok, err) = b.create(&["--log", log.to_str().unwrap(), "--log-format=json", "create",
            "--bundle", b.path().to_str().unwrap(), "m1"]);
        assert!(!ok, "{err}");
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        let line = std::fs::read_to_string(&log).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
        assert_eq!(v["level"], "error");
        assert!(v["msg"].as_str().unwrap().contains("executable file not found"), "{line}");
        assert!(v["time"].is_string());
        assert!(!b.state_root().join("m1").exists(), "state left behind");
        let b = Bundle::new(as_, &["/bin/nope"]);
        let o = b.oci(&["run", "m2"]);
        // (podman matches these words without regard to case.)
        assert!(
            String::from_utf8_lossy(&o.stderr).to_lowercase().contains("no such file or directory"),
            "{}",
            text(&o)
        );
        assert!(!o.status.success());
        assert!(!b.state_root().join("m2").exists(), "state left behind");
    }
);

both!(
    /// maskedPaths (a file and a directory of the image) and
    /// readonlyPaths (/proc/sys); control: without them both are there
    /// and a write to /proc/sys is not refused as read-only.
    fn masked_and_readonly_paths(as_) {
        let b = Bundle::new(as_, &["sh", "-c",
            "cat /etc/secret; ls /etc/secrets; echo 1 > /proc/sys/kernel/ns_last_pid && echo wrote || echo refused"]);
        std::fs::write(b.path().join("rootfs/etc/secret"), "s3cret\n").unwrap();
        std::fs::create_dir(b.path().join("rootfs/etc/secrets")).unwrap();
        std::fs::write(b.path().join("rootfs/etc/secrets/key"), "k").unwrap();
        let _ = Command::new("chown").arg("-R").arg(format!("{}:{}", as_.uid(), as_.gid()))
            .arg(b.path().join("rootfs/etc")).status();
        b.edit(|c| {
            let m = c["linux"]["maskedPaths"].as_array_mut().unwrap();
            m.push("/etc/secret".into());
            m.push("/etc/secrets".into());
        });
        let o = b.oci(&["run", "p1"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", text(&o));
        assert!(!out.contains("s3cret") && !out.contains("key"), "not masked: {}", text(&o));
        assert!(out.contains("refused"), "/proc/sys writable: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"), "{}", text(&o));
        b.edit(|c| {
            c["linux"]["maskedPaths"] = serde_json::json!([]);
            c["linux"]["readonlyPaths"] = serde_json::json!([]);
        });
        let o = b.oci(&["run", "p2"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("s3cret") && out.contains("key"), "control: {}", text(&o));
        // Refused still (the container's capabilities do not reach it),
        // but not by a read-only mount.
        assert!(!String::from_utf8_lossy(&o.stderr).contains("Read-only file system"), "control: {}", text(&o));
    }
);

both!(
    /// No fd of the runtime's reaches the container but its stdio.
    fn no_stray_fds(as_) {
        let b = Bundle::new(as_, &["ls", "/proc/self/fd"]);
        let mut c = b.command(&["run", "f1"]);
        // An fd the runtime inherits (as from conmon or the shim).
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        // SAFETY: clearing close-on-exec on our own fd for the child.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        let o = c.output().unwrap();
        let fds: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().split_whitespace().collect();
        // 0-2, and the directory ls reads.
        assert_eq!(fds.len(), 4, "{}", text(&o));
        drop(f);
    }
);

#[test]
fn unknown_flags_and_commands() {
    let bin = common::binary(As::Root);
    let o = Command::new(&bin).args(["oci", "frob"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown command frob"));
    let o = Command::new(&bin)
        .args(["oci", "delete", "--nope", "x"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown flag --nope"));
    let o = Command::new(&bin)
        .args(["oci", "--version"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("spec: 1.2.0"));
    let o = Command::new(&bin)
        .args(["oci", "features"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ociVersionMax"], "1.2.0");
    // What an engine checks before it asks for them (containerd 2 reads it).
    assert_eq!(v["hooks"].as_array().map(Vec::len), Some(6), "{v}");
    let caps = v["linux"]["capabilities"].as_array().unwrap();
    assert!(
        caps.iter().any(|c| c == "CAP_SYS_ADMIN") && caps.len() >= 40,
        "{v}"
    );
}

both!(
    /// exec joins the container (its namespaces, its cgroups) as nsenter
    /// does, so no runtime process stays as the new process's parent
    /// (--detach: adopted by us, the subreaper); pause/resume through the
    /// freezer and update of the resources (root: cgroups are made under
    /// cgroupsPath; uid 65534 has no delegated tree here: named errors).
    fn exec_pause_update(as_) {
        subreaper();
        let b = Bundle::new(as_, &["sh", "-c", "echo up; sleep 30"]);
        let cg = format!("/nsrun-oci-test-{}-{}", std::process::id(), as_.uid());
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = cg.clone().into();
            c["linux"]["resources"] = serde_json::json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}});
        });
        let (ok, out) = b.create(&["create", "x1"]);
        assert!(ok, "create: {out}");
        let pid = b.state("x1")["pid"].as_i64().unwrap() as i32;
        assert!(b.oci(&["start", "x1"]).status.success());
        let o = b.oci(&["exec", "x1", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"]);
        assert!(o.status.success(), "exec: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("nsrun\n"), "not in the container's uts namespace: {}", text(&o));
        assert!(out.contains("sleep 30"), "not in the container's pid namespace: {}", text(&o));
        let pidfile = b.path().join("exec.pid");
        // (Its stdio is ours, as create's: a file, or we would wait for its end.)
        let (ok, out) = b.create(&["exec", "--detach", "--pid-file", pidfile.to_str().unwrap(), "x1", "sleep", "30"]);
        assert!(ok, "exec --detach: {out}");
        let epid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
        assert_eq!(ppid_of(epid), std::process::id() as i32, "a runtime process stayed as the parent");
        let o = b.oci(&["ps", "--format", "json", "x1"]);
        let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
        assert!(pids.contains(&pid) && pids.contains(&epid), "{pids:?}: {}", text(&o));
        match as_ {
            As::Root => {
                let mem = format!("/sys/fs/cgroup/memory{cg}");
                if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
                    let limit = std::fs::read_to_string(format!("{mem}/memory.limit_in_bytes")).unwrap();
                    assert_eq!(limit.trim(), "67108864");
                    let procs = std::fs::read_to_string(format!("{mem}/cgroup.procs")).unwrap();
                    assert!(procs.contains(&epid.to_string()), "exec'd process not in the cgroup: {procs}");
                    let o = b.oci(&["update", "--memory", "33554432", "x1"]);
                    assert!(o.status.success(), "update: {}", text(&o));
                    let limit = std::fs::read_to_string(format!("{mem}/memory.limit_in_bytes")).unwrap();
                    assert_eq!(limit.trim(), "33554432");
                    // kubelet's in-place resize: LinuxResources on stdin.
                    let mut c = b.command(&["update", "--resources", "-", "x1"]);
                    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
                    let mut child = c.spawn().unwrap();
                    {
                        use std::io::Write;
                        let mut stdin = child.stdin.take().unwrap();
                        stdin.write_all(br#"{"memory": {"limit": 50331648}, "pids": {"limit": 32}}"#).unwrap();
                    }
                    let o = child.wait_with_output().unwrap();
                    assert!(o.status.success(), "update --resources -: {}", text(&o));
                    let limit = std::fs::read_to_string(format!("{mem}/memory.limit_in_bytes")).unwrap();
                    assert_eq!(limit.trim(), "50331648");
                    let pids = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{cg}/pids.max")).unwrap();
                    assert_eq!(pids.trim(), "32");
                } else {
                    eprintln!("skipped the cgroup v1 file checks: no /sys/fs/cgroup/memory here");
                }
                assert!(b.oci(&["pause", "x1"]).status.success());
                assert_eq!(b.state("x1")["status"], "paused");
                assert!(b.oci(&["resume", "x1"]).status.success());
                assert_eq!(b.state("x1")["status"], "running");
            }
            As::User => {
                let o = b.oci(&["pause", "x1"]);
                assert!(!o.status.success());
                assert!(String::from_utf8_lossy(&o.stderr).contains("no freezer cgroup"), "{}", text(&o));
            }
        }
        assert!(b.oci(&["kill", "--all", "x1", "KILL"]).status.success());
        // The exec'd process first: the container's PID 1 ends only once
        // every process of its pid namespace is reaped, and that one is
        // ours to reap (as it is the shim's).
        assert_eq!(reap(epid), 137);
        assert_eq!(reap(pid), 137);
        assert!(b.oci(&["delete", "x1"]).status.success());
        if matches!(as_, As::Root) {
            assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory{cg}")).exists(), "cgroup left behind");
            for c in ["memory", "pids", "cpu", "cpuacct", "freezer", "blkio", "cpuset"] {
                let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}{cg}"));
            }
        }
    }
);

both!(
    /// linux.sysctl: namespaced settings reach the container even though
    /// readonlyPaths makes /proc/sys read-only (they are written first,
    /// as runc does); a setting that is not namespaced, or whose namespace
    /// the container shares with the host, is refused before anything
    /// starts, and the host's value stays.
    fn sysctl(as_) {
        let b = Bundle::new(as_, &["sh", "-c", "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni"]);
        b.edit(|c| {
            c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ping_group_range": "0 0", "kernel.shmmni": "1234"});
        });
        let o = b.oci(&["run", "s1"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "0\t0\n1234\n", "{}", text(&o));
        let host = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
        let want = if host.trim() == "17" { "18" } else { "17" };
        b.edit(|c| c["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": want}));
        let o = b.oci(&["run", "s2"]);
        assert!(!o.status.success(), "a host-wide sysctl was accepted: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("not in a separate kernel namespace"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(), host);
        // A net setting with the host's network namespace would be the host's.
        b.edit(|c| {
            c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ping_group_range": "0 0"});
            let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
            nss.retain(|n| n["type"] != "network");
        });
        let before = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
        let o = b.oci(&["run", "s3"]);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("needs a net namespace"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap(), before);
        assert!(!b.state_root().join("s3").exists(), "state left behind");
    }
);

/// delete --force of a container without a pid namespace of its own,
/// paused: its init's children would outlive the init, so every process
/// of its cgroup is killed (the freezer thawed for the kill to land), and
/// the cgroup goes. (Root: uid 65534 has no cgroups here.)
#[test]
fn delete_force_kills_the_whole_cgroup() {
    common::guarded(|| {
        subreaper();
        let b = Bundle::new(As::Root, &["sh", "-c", "sleep 100 & sleep 100"]);
        let cg = format!("/nsrun-oci-test-rest-{}", std::process::id());
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = cg.clone().into();
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid");
        });
        let (ok, out) = b.create(&["create", "r1"]);
        assert!(ok, "create: {out}");
        assert!(b.oci(&["start", "r1"]).status.success());
        let procs = format!("/sys/fs/cgroup/pids{cg}/cgroup.procs");
        let mut pids = Vec::new();
        for _ in 0..200 {
            pids = std::fs::read_to_string(&procs)
                .unwrap_or_default()
                .split_whitespace()
                .map(|p| p.parse::<i32>().unwrap())
                .collect();
            if pids.len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // The init (sh, which execs its last command) and the sleep it left
        // in the background.
        assert_eq!(pids.len(), 2, "{pids:?}");
        assert!(b.oci(&["pause", "r1"]).status.success());
        let o = b.oci(&["delete", "--force", "r1"]);
        assert!(o.status.success(), "{}", text(&o));
        for pid in pids {
            // Ours to reap (adopted): each killed, none left running.
            assert_eq!(reap(pid), 137, "pid {pid}");
        }
        assert!(
            !std::path::Path::new(&format!("/sys/fs/cgroup/pids{cg}")).exists(),
            "cgroup left"
        );
    });
}

both!(
    /// exec --process FILE (what conmon and the shim hand over): its
    /// args, env, cwd, rlimits and umask apply to the new process, and
    /// its exit status is exec's.
    fn exec_process_file(as_) {
        subreaper();
        let b = Bundle::new(as_, &["sleep", "30"]);
        let (ok, out) = b.create(&["create", "p1"]);
        assert!(ok, "create: {out}");
        let pid = b.state("p1")["pid"].as_i64().unwrap() as i32;
        assert!(b.oci(&["start", "p1"]).status.success());
        let proc_json = b.path().join("process.json");
        let process = serde_json::json!({
            "args": ["sh", "-c", "ulimit -n; umask; pwd; echo $GREETING; exit 5"],
            "env": ["PATH=/bin", "GREETING=hello"],
            "cwd": "/tmp",
            "user": {"uid": 0, "gid": 0, "umask": 23},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 123}],
        });
        std::fs::write(&proc_json, process.to_string()).unwrap();
        let o = b.oci(&["exec", "--process", proc_json.to_str().unwrap(), "p1"]);
        assert_eq!(o.status.code(), Some(5), "exec's status is the program's: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "123\n0027\n/tmp\nhello\n", "{}", text(&o));
        // A command with --env, the config's env on top of which it goes
        // being absent (it was indexed as a list regardless).
        b.edit(|c| {
            c["process"].as_object_mut().unwrap().remove("env");
        });
        let st_file = b.state_root().join("p1/state.json");
        let mut st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&st_file).unwrap()).unwrap();
        st["config"]["process"].as_object_mut().unwrap().remove("env");
        std::fs::write(&st_file, st.to_string()).unwrap();
        let o = b.oci(&["exec", "--env", "A=b", "p1", "/bin/sh", "-c", "echo $A"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "b\n", "{}", text(&o));
        assert!(b.oci(&["kill", "p1", "9"]).status.success());
        assert_eq!(reap(pid), 137);
        assert!(b.oci(&["delete", "p1"]).status.success());
    }
);

both!(
    /// process.terminal: the container gets a terminal of its own whose
    /// master end goes to the engine over --console-socket (SCM_RIGHTS),
    /// sized as consoleSize says; without a socket, create says what is
    /// missing.
    fn console_socket(as_) {
        subreaper();
        let b = Bundle::new(as_, &["sh", "-c", "tty; stty size; echo done"]);
        b.edit(|c| {
            c["process"]["terminal"] = true.into();
            c["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
        });
        let (ok, out) = b.create(&["create", "t0"]);
        assert!(!ok && out.contains("--console-socket"), "{out}");
        let path = b.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let taker = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let (_, fds) =
                nsrun::sys::channel::recv_fds(std::os::fd::AsFd::as_fd(&s), &mut buf, 4096).unwrap();
            fds
        });
        let (ok, out) = b.create(&["create", "--console-socket", path.to_str().unwrap(), "t1"]);
        assert!(ok, "create: {out}");
        let mut fds = taker.join().unwrap();
        assert_eq!(fds.len(), 1, "one fd over the console socket");
        let master = std::fs::File::from(fds.remove(0));
        let pid = b.state("t1")["pid"].as_i64().unwrap() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut master = master;
            let mut all = Vec::new();
            let mut buf = [0u8; 1024];
            // EIO once the last slave end is closed.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(all);
        });
        assert!(b.oci(&["start", "t1"]).status.success());
        let screen = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the terminal's output");
        let screen = String::from_utf8_lossy(&screen);
        assert!(screen.contains("/dev/"), "tty names no terminal: {screen:?}");
        assert!(screen.contains("30 100"), "consoleSize not applied: {screen:?}");
        assert!(screen.contains("done"), "{screen:?}");
        assert_eq!(reap(pid), 0);
        assert!(b.oci(&["delete", "t1"]).status.success());
    }
);

both!(
    /// exec --detach of a program that ends at once: its exit is ours (the
    /// subreaper's, as it is containerd's shim's) to reap, not taken by
    /// the runtime's own exit (the shim then waited forever for it).
    fn detached_exec_exit_is_the_callers(as_) {
        subreaper();
        let b = Bundle::new(as_, &["sleep", "30"]);
        let (ok, out) = b.create(&["create", "d1"]);
        assert!(ok, "create: {out}");
        let pid = b.state("d1")["pid"].as_i64().unwrap() as i32;
        assert!(b.oci(&["start", "d1"]).status.success());
        for i in 0..5 {
            let pidfile = b.path().join(format!("e{i}.pid"));
            let (ok, out) = b.create(&["exec", "--detach", "--pid-file", pidfile.to_str().unwrap(),
                "d1", "true"]);
            assert!(ok, "exec --detach #{i}: {out}");
            let epid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
            assert_eq!(reap(epid), 0, "exec #{i}");
        }
        assert!(b.oci(&["kill", "d1", "KILL"]).status.success());
        assert_eq!(reap(pid), 137);
        assert!(b.oci(&["delete", "d1"]).status.success());
    }
);

both!(
    /// The capabilities of uid 0 are the bounding set, with nothing
    /// inheritable or ambient, as runc leaves them; another uid (root
    /// only: the rootless bundle maps uid 0 alone) holds none. A network
    /// namespace of the container's own has its loopback up.
    fn capabilities_and_loopback(as_) {
        let probe = ["sh", "-c", "busybox ip link show lo; grep ^Cap /proc/self/status"];
        let b = Bundle::new(as_, &probe);
        let o = b.oci(&["run", "c1"]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let cap = |out: &str, k: &str| -> u64 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or_else(|| panic!("no {k} in {out}"))
        };
        assert!(out.contains("LOOPBACK,UP"), "loopback down: {}", text(&o));
        assert_ne!(cap(&out, "CapEff"), 0, "{out}");
        assert_eq!(cap(&out, "CapEff"), cap(&out, "CapBnd"), "{out}");
        assert_eq!(cap(&out, "CapInh"), 0, "{out}");
        assert_eq!(cap(&out, "CapAmb"), 0, "{out}");
        if as_ == As::Root {
            b.edit(|c| c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000}));
            let o = b.oci(&["run", "c2"]);
            assert!(o.status.success(), "{}", text(&o));
            let out = String::from_utf8_lossy(&o.stdout).to_string();
            for k in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
                assert_eq!(cap(&out, k), 0, "uid 1000 holds capabilities ({k}): {out}");
            }
        }
    }
);
