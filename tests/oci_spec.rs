//! `nsrun oci`: the parts of the OCI runtime spec beyond the lifecycle
//! (tests/oci.rs): the hooks that run inside the container, --preserve-fds,
//! one command at a time per id, linux.devices and the devices cgroup,
//! personality, blockIO. As root (a `spec` bundle) and as uid 65534 (`spec
//! --rootless`); the test process is a child subreaper, as conmon is.

mod common;
mod oci_bundle;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::As;
use oci_bundle::*;

/// A spec bundle with the directory the hooks log to: `log_dir()` on the
/// host, `/hooklog` inside once `bind_log` binds it.
fn bundle(as_: As, args: &[&str]) -> Bundle {
    let b = Bundle::new(as_, args);
    std::fs::create_dir_all(b.path().join("rootfs/hooklog")).unwrap();
    std::fs::create_dir_all(b.log_dir()).unwrap();
    chown_r(as_, b.path());
    b
}

impl Bundle {
    /// A host directory the hooks and the container both write to (bound
    /// on /hooklog inside).
    fn log_dir(&self) -> PathBuf {
        self.path().join("log")
    }

    /// `create ID`, its output in a file of its own (two may run at once).
    fn create_id(&self, id: &str) -> (bool, String) {
        self.to_file(&["create", id], &format!("create-{id}.out"))
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir().join(name)).unwrap_or_default()
    }

    /// The log directory on /hooklog inside.
    fn bind_log(&self) {
        let src = self.log_dir().to_str().unwrap().to_string();
        self.edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
                "destination": "/hooklog", "type": "bind", "source": src, "options": ["rbind", "rw"]
            }))
        });
    }

    /// No lock file, no state: nothing of the runtime's is left.
    fn assert_clean(&self) {
        let left: Vec<String> = std::fs::read_dir(self.state_root())
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "left in the state root: {left:?}");
    }
}

/// A hook: `sh -c SCRIPT` with the host's shell (`/bin/sh` inside the
/// container for startContainer, whose path is the container's).
fn hook(script: &str) -> serde_json::Value {
    serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

both!(
    /// All six hooks, each with the state on its stdin, in the spec's
    /// order: prestart, createRuntime, createContainer (in the
    /// container's namespaces, with the runtime's paths) at create;
    /// startContainer (in the container: its paths) at start before the
    /// program; poststart after it; poststop at delete.
    fn hooks_order(as_) {
        subreaper();
        let b = bundle(as_, &["sh", "-c", "cat /hooklog/order > /hooklog/seen; echo main >> /hooklog/order; sleep 1"]);
        b.bind_log();
        let log = b.log_dir().to_str().unwrap().to_string();
        let host = |name: &str| hook(&format!("echo {name} >> {log}/order; cat > {log}/{name}.json; hostname > {log}/{name}.host"));
        b.edit(|c| {
            c["hostname"] = "inside".into();
            c["hooks"] = serde_json::json!({
                "prestart": [host("prestart")],
                "createRuntime": [host("createRuntime")],
                "createContainer": [host("createContainer")],
                "startContainer": [hook("echo startContainer >> /hooklog/order; cat > /hooklog/startContainer.json; hostname > /hooklog/startContainer.host")],
                "poststart": [host("poststart")],
                "poststop": [host("poststop")],
            });
        });
        let (ok, out) = b.create_id("h1");
        assert!(ok, "create: {out}");
        assert_eq!(b.log("order"), "prestart\ncreateRuntime\ncreateContainer\n");
        let pid = b.pid("h1");
        let o = b.oci(&["start", "h1"]);
        assert!(o.status.success(), "start: {}", text(&o));
        assert_eq!(reap(pid), 0);
        // The program ran after startContainer (poststart, run once the
        // program is let go, may come before its first line or not).
        let seen = b.log("seen");
        assert!(seen.starts_with("prestart\ncreateRuntime\ncreateContainer\nstartContainer\n"), "{seen:?}");
        let o = b.oci(&["delete", "h1"]);
        assert!(o.status.success(), "delete: {}", text(&o));
        let order: Vec<String> = b.log("order").lines().map(String::from).collect();
        let (program, hooks): (Vec<String>, Vec<String>) = order.into_iter().partition(|l| l == "main");
        assert_eq!(program.len(), 1);
        assert_eq!(hooks, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]);
        for (name, status) in [("prestart", "creating"), ("createRuntime", "creating"), ("createContainer", "creating"),
            ("startContainer", "created"), ("poststart", "running"), ("poststop", "stopped")] {
            let v: serde_json::Value = serde_json::from_str(&b.log(&format!("{name}.json")))
                .unwrap_or_else(|e| panic!("{name}'s stdin: {e}: {:?}", b.log(&format!("{name}.json"))));
            assert_eq!(v["id"], "h1", "{name}: {v}");
            assert_eq!(v["pid"], pid, "{name}: {v}");
            assert_eq!(v["status"], status, "{name}: {v}");
            assert_eq!(v["ociVersion"], "1.2.0", "{name}: {v}");
        }
        // In the container's namespaces: createContainer and startContainer.
        assert_eq!(b.log("createContainer.host"), "inside\n");
        assert_eq!(b.log("startContainer.host"), "inside\n");
        assert_ne!(b.log("createRuntime.host"), "inside\n");
        b.assert_clean();
    }
);

both!(
    /// A failing or timed-out createContainer hook fails create with its
    /// name and leaves nothing behind; a failing startContainer hook fails
    /// start before the program runs and stops the container.
    fn hook_failures(as_) {
        subreaper();
        let b = bundle(as_, &["sh", "-c", "echo ran > /hooklog/ran"]);
        b.bind_log();
        b.edit(|c| c["hooks"] = serde_json::json!({"createContainer": [hook("echo nope >&2; exit 3")]}));
        let (ok, out) = b.create_id("f1");
        assert!(!ok, "{out}");
        assert!(out.contains("createContainer hook #1 (/bin/sh) failed: exit status 3: nope"), "{out}");
        b.assert_clean();
        b.edit(|c| c["hooks"] = serde_json::json!({"createContainer": [
            {"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]}));
        let t = Instant::now();
        let (ok, out) = b.create_id("f2");
        assert!(!ok && out.contains("timed out"), "{out}");
        assert!(t.elapsed() < Duration::from_secs(10), "the timeout was not kept: {:?}", t.elapsed());
        b.assert_clean();

        let log = b.log_dir().to_str().unwrap().to_string();
        b.edit(|c| c["hooks"] = serde_json::json!({
            "startContainer": [hook("exit 4")],
            "poststop": [hook(&format!("echo poststop > {log}/poststop"))],
        }));
        let (ok, out) = b.create_id("f3");
        assert!(ok, "create: {out}");
        let pid = b.pid("f3");
        let o = b.oci(&["start", "f3"]);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("startContainer hook #1 (/bin/sh) failed: exit status 4"),
            "{}", text(&o));
        assert_eq!(reap(pid), 137);
        assert_eq!(b.log("ran"), "", "the program ran");
        assert_eq!(b.state("f3")["status"], "stopped");
        let o = b.oci(&["delete", "f3"]);
        assert!(o.status.success(), "delete: {}", text(&o));
        assert_eq!(b.log("poststop"), "poststop\n");
        b.assert_clean();
    }
);

/// Open `n` files named pf3, pf4, … on fds 3, 4, … of `c`'s process.
fn with_fds(c: &mut Command, dir: &Path, n: i32) -> Vec<std::fs::File> {
    let files: Vec<std::fs::File> = (0..n)
        .map(|i| std::fs::File::create(dir.join(format!("pf{}", 3 + i))).unwrap())
        .collect();
    let raw: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: dup2 only, async-signal-safe, between fork and exec.
    unsafe {
        c.pre_exec(move || {
            // Above every target first, so no source is overwritten.
            let high: Vec<i32> = raw
                .iter()
                .map(|&fd| libc::fcntl(fd, libc::F_DUPFD, 100))
                .collect();
            for (i, &fd) in high.iter().enumerate() {
                if fd < 0 || libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            Ok(())
        });
    }
    files
}

both!(
    /// --preserve-fds N: fds 3 .. 3+N-1 reach the container's process (run
    /// and exec), the next one does not.
    fn preserve_fds(as_) {
        subreaper();
        let b = bundle(as_, &["ls", "-l", "/proc/self/fd/"]);
        let mut c = b.command(&["run", "--preserve-fds", "3", "p1"]);
        let _files = with_fds(&mut c, b.path(), 4);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        for f in ["pf3", "pf4", "pf5"] {
            assert!(out.contains(f), "{f} did not reach the container: {}", text(&o));
        }
        assert!(!out.contains("pf6"), "fd 6 reached the container: {}", text(&o));
        // Control: without the flag, none does.
        let mut c = b.command(&["run", "p2"]);
        let _files = with_fds(&mut c, b.path(), 4);
        let o = c.output().unwrap();
        assert!(!String::from_utf8_lossy(&o.stdout).contains("pf"), "{}", text(&o));

        b.edit(|c| c["process"]["args"] = serde_json::json!(["sleep", "30"]));
        let (ok, out) = b.create_id("p3");
        assert!(ok, "create: {out}");
        let pid = b.pid("p3");
        assert!(b.oci(&["start", "p3"]).status.success());
        let mut c = b.command(&["exec", "--preserve-fds", "2", "p3", "ls", "-l", "/proc/self/fd/"]);
        let _files = with_fds(&mut c, b.path(), 3);
        let o = c.output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", text(&o));
        assert!(out.contains("pf3") && out.contains("pf4"), "exec: {}", text(&o));
        assert!(!out.contains("pf5"), "exec: fd 5 reached the process: {}", text(&o));
        assert!(b.oci(&["kill", "p3", "KILL"]).status.success());
        assert_eq!(reap(pid), 137);
        assert!(b.oci(&["delete", "p3"]).status.success());
        let o = b.oci(&["run", "--preserve-fds", "x", "p4"]);
        assert!(String::from_utf8_lossy(&o.stderr).contains("--preserve-fds: a count of fds expected"), "{}", text(&o));
        b.assert_clean();
    }
);

/// Run `a` and `b` at once; their results.
fn together(a: Command, b: Command) -> (Output, Output) {
    let run = |mut c: Command| std::thread::spawn(move || c.output().unwrap());
    let (ta, tb) = (run(a), run(b));
    (ta.join().unwrap(), tb.join().unwrap())
}

both!(
    /// One command at a time per id: of two creates of one id exactly one
    /// succeeds and the container is whole; of two starts (each slowed by
    /// a startContainer hook) exactly one starts it; a delete during a
    /// create waits for it (and finds it created, not half made).
    fn concurrent_commands(as_) {
        subreaper();
        let b = bundle(as_, &["sleep", "30"]);
        b.edit(|c| c["hooks"] = serde_json::json!({"createRuntime": [hook("sleep 0.5")]}));
        let f = |n: &str| std::fs::File::create(b.path().join(n)).unwrap();
        let mut c1 = b.command(&["create", "k1"]);
        c1.stdout(f("a.out")).stderr(f("a.err"));
        let mut c2 = b.command(&["create", "k1"]);
        c2.stdout(f("b.out")).stderr(f("b.err"));
        let (o1, o2) = together(c1, c2);
        let errs = format!("{}\n{}", std::fs::read_to_string(b.path().join("a.err")).unwrap(),
            std::fs::read_to_string(b.path().join("b.err")).unwrap());
        assert!(o1.status.success() != o2.status.success(), "not exactly one create succeeded: {errs}");
        assert!(errs.contains("container with id k1 already exists"), "{errs}");
        let st = b.state("k1");
        assert_eq!(st["status"], "created");
        let pid = st["pid"].as_i64().unwrap() as i32;

        // Two starts: both pass the status check without a lock (the hook
        // holds them before the gate).
        b.edit(|c| c["hooks"] = serde_json::json!({"startContainer": [hook("sleep 1")]}));
        let o = b.oci(&["delete", "--force", "k1"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(reap(pid), 137);
        let (ok, out) = b.create_id("k2");
        assert!(ok, "create: {out}");
        let pid = b.pid("k2");
        let (o1, o2) = together(b.command(&["start", "k2"]), b.command(&["start", "k2"]));
        assert!(o1.status.success() != o2.status.success(),
            "not exactly one start succeeded:\n{}\n{}", text(&o1), text(&o2));
        let loser = if o1.status.success() { &o2 } else { &o1 };
        assert!(String::from_utf8_lossy(&loser.stderr).contains("cannot start a container that is running"),
            "{}", text(loser));
        assert!(b.oci(&["kill", "k2", "KILL"]).status.success());
        assert_eq!(reap(pid), 137);
        assert!(b.oci(&["delete", "k2"]).status.success());

        // A delete while create is in its prestart hook (before any state
        // is written) waits, then finds a created container.
        b.edit(|c| c["hooks"] = serde_json::json!({"prestart": [hook("sleep 1")]}));
        let mut c = b.command(&["create", "k3"]);
        c.stdout(f("c.out")).stderr(f("c.err"));
        let creating = std::thread::spawn(move || c.status().unwrap());
        std::thread::sleep(Duration::from_millis(400));
        let o = b.oci(&["delete", "k3"]);
        assert!(creating.join().unwrap().success(), "create: {}",
            std::fs::read_to_string(b.path().join("c.err")).unwrap());
        assert!(!o.status.success(), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("that is not stopped: created"), "{}", text(&o));
        let pid = b.pid("k3");
        assert!(b.oci(&["delete", "--force", "k3"]).status.success());
        assert_eq!(reap(pid), 137);
        b.assert_clean();
    }
);

both!(
    /// personality LINUX32: `uname -m` says i686; control: x86_64.
    fn personality(as_) {
        let b = bundle(as_, &["uname", "-m"]);
        let o = b.oci(&["run", "u1"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "x86_64\n", "{}", text(&o));
        b.edit(|c| c["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"}));
        let o = b.oci(&["run", "u2"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "i686\n", "{}", text(&o));
        b.edit(|c| c["linux"]["personality"] = serde_json::json!({"domain": "PDP11"}));
        let o = b.oci(&["run", "u3"]);
        assert!(String::from_utf8_lossy(&o.stderr).contains("must be LINUX or LINUX32"), "{}", text(&o));
        b.assert_clean();
    }
);

/// The container's v1 cgroup directory of `controller`, if this host has it.
fn v1(controller: &str, path: &str) -> Option<PathBuf> {
    let base = Path::new("/sys/fs/cgroup").join(controller);
    base.join("cgroup.procs")
        .exists()
        .then(|| base.join(path.trim_start_matches('/')))
}

both!(
    /// linux.devices: as root a node made with its mode and owner (and the
    /// devices cgroup denying it: EPERM at open though the node is there;
    /// control: allowed); rootless, the host's node bound.
    fn devices(as_) {
        match as_ {
            As::Root => {
                let cg = format!("/nsrun-oci-spec-{}", std::process::id());
                let b = bundle(as_, &["sh", "-c",
                    "stat -c '%t:%T %a %u:%g' /dev/mydev; head -c 4 /dev/mydev | wc -c; head -c 4 /dev/null | wc -c"]);
                b.edit(|c| {
                    c["linux"]["devices"] = serde_json::json!([{"path": "/dev/mydev", "type": "c", "major": 1,
                        "minor": 5, "fileMode": 0o640, "uid": 0, "gid": 3}]);
                    c["linux"]["cgroupsPath"] = cg.clone().into();
                });
                let o = b.oci(&["run", "d1"]);
                let out = String::from_utf8_lossy(&o.stdout);
                assert!(o.status.success(), "{}", text(&o));
                assert!(out.starts_with("1:5 640 0:3\n4\n0\n"), "{}", text(&o));
                if v1("devices", &cg).is_none() {
                    eprintln!("skipped the devices cgroup part: no v1 devices controller here");
                    return;
                }
                b.edit(|c| c["linux"]["resources"] = serde_json::json!({"devices": [
                    {"allow": true, "access": "rwm"},
                    {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]}));
                let o = b.oci(&["run", "d2"]);
                let out = String::from_utf8_lossy(&o.stdout);
                assert!(out.starts_with("1:5 640 0:3\n0\n0\n"), "{}", text(&o));
                assert!(String::from_utf8_lossy(&o.stderr).contains("Operation not permitted"), "{}", text(&o));
                assert!(v1("devices", &cg).map_or(true, |d| !d.exists()), "devices cgroup left behind");
                b.assert_clean();
            }
            As::User => {
                // Rootless: bound from the host (its node, mode and owner).
                let b = bundle(as_, &["stat", "-c", "%F %t:%T", "/dev/kmsg"]);
                b.edit(|c| {
                    c["linux"]["devices"] = serde_json::json!([{"path": "/dev/kmsg", "type": "c", "major": 1,
                        "minor": 11, "fileMode": 0o644}]);
                    c["linux"]["resources"] = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
                });
                let o = b.oci(&["run", "d3"]);
                assert!(o.status.success(), "{}", text(&o));
                assert_eq!(String::from_utf8_lossy(&o.stdout), "character special file 1:b\n", "{}", text(&o));
                b.assert_clean();
            }
        }
    }
);

#[test]
fn blockio_and_hugepages_root() {
    common::guarded(|| {
        subreaper();
        let Some(dir) = v1("blkio", "/probe") else {
            eprintln!("skipped: no v1 blkio controller here");
            return;
        };
        let cg = format!("/nsrun-oci-spec-blkio-{}", std::process::id());
        let dir = dir.parent().unwrap().join(cg.trim_start_matches('/'));
        let b = bundle(As::Root, &["sleep", "30"]);
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = cg.clone().into();
            c["linux"]["resources"] = serde_json::json!({
                "blockIO": {"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1048576}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
        });
        let (ok, out) = b.create_id("b1");
        assert!(ok, "create: {out}");
        let pid = b.pid("b1");
        let read = || std::fs::read_to_string(dir.join("blkio.throttle.read_bps_device")).unwrap();
        assert_eq!(read(), "7:0 1048576\n");
        if !Path::new("/sys/fs/cgroup/hugetlb/cgroup.procs").exists() {
            assert!(out.contains("hugepageLimits 2MB not applied"), "{out}");
        }
        let res = b.path().join("res.json");
        std::fs::write(&res, r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 2097152}]}}"#).unwrap();
        let o = b.oci(&["update", "--resources", res.to_str().unwrap(), "b1"]);
        assert!(o.status.success(), "update: {}", text(&o));
        assert_eq!(read(), "7:0 2097152\n");
        assert!(b.oci(&["delete", "--force", "b1"]).status.success());
        assert_eq!(reap(pid), 137);
        assert!(!dir.exists(), "blkio cgroup left behind");
        b.assert_clean();
    });
}

/// mount(8) on the host, for the propagation test.
fn host_mount(args: &[&str]) {
    let st = Command::new("mount").args(args).status().unwrap();
    assert!(st.success(), "mount {args:?}");
}

macro_rules! both_exclusive {
    ($(#[$meta:meta])* fn $name:ident($as_:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($as_: As) $body

            #[test]
            fn root() {
                common::guarded_exclusive(|| body(As::Root));
            }

            #[test]
            fn user() {
                common::guarded_exclusive(|| body(As::User));
            }
        }
    };
}

both_exclusive!(
    /// rootfsPropagation and a bind mount's rslave: what the host mounts
    /// below a shared directory afterwards reaches the running container;
    /// control: rprivate (nsrun's default), it does not. idmap is refused
    /// by name rather than ignored.
    fn propagation(as_) {
        subreaper();
        let b = bundle(as_, &["sleep", "30"]);
        let shared = b.path().join("shared");
        std::fs::create_dir_all(shared.join("sub")).unwrap();
        std::fs::create_dir_all(b.path().join("rootfs/shared")).unwrap();
        chown_r(as_, b.path());
        let s = shared.to_str().unwrap().to_string();
        host_mount(&["--bind", &s, &s]);
        host_mount(&["--make-shared", &s]);
        let mut seen = Vec::new();
        for (i, prop) in ["rslave", "rprivate"].into_iter().enumerate() {
            let id = format!("m{i}");
            b.edit(|c| {
                let m = c["mounts"].as_array_mut().unwrap();
                m.retain(|m| m["destination"] != "/shared");
                m.push(serde_json::json!({"destination": "/shared", "type": "bind", "source": s,
                    "options": ["rbind", prop]}));
                c["linux"]["rootfsPropagation"] = prop.into();
            });
            let (ok, out) = b.create_id(&id);
            assert!(ok, "create: {out}");
            let pid = b.pid(&id);
            assert!(b.oci(&["start", &id]).status.success());
            let sub = format!("{s}/sub");
            host_mount(&["-t", "tmpfs", "tmpfs", &sub]);
            std::fs::write(shared.join("sub/marker"), "arrived").unwrap();
            let o = b.oci(&["exec", &id, "cat", "/shared/sub/marker"]);
            seen.push(String::from_utf8_lossy(&o.stdout).to_string());
            let _ = Command::new("umount").arg(&sub).status();
            assert!(b.oci(&["kill", &id, "KILL"]).status.success());
            assert_eq!(reap(pid), 137);
            assert!(b.oci(&["delete", &id]).status.success());
        }
        let _ = Command::new("umount").arg(&s).status();
        assert_eq!(seen, ["arrived", ""], "rslave, then rprivate");

        b.edit(|c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.retain(|m| m["destination"] != "/shared");
            m.push(serde_json::json!({"destination": "/shared", "type": "bind", "source": s,
                "options": ["rbind", "idmap"]}));
        });
        let o = b.oci(&["run", "m3"]);
        assert!(String::from_utf8_lossy(&o.stderr).contains("/shared: idmapped mounts (idmap) are not supported"),
            "{}", text(&o));
        b.assert_clean();
    }
);

/// The recipe of `to_oci_same_output`: a sandbox on the bundle's rootfs,
/// run; its table as the bundle's config.json.
const TO_OCI: &str = r#"
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local bundle = ...
local t = {
  argv = {"sh", "-c", "id; hostname; grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status; " ..
    "cat /data/f; (echo x > /data/g) 2>/dev/null || echo ro; mkdir /tmp/d 2>&1 || true; ulimit -n; " ..
    "wc -c < /proc/timer_list; echo \"X=$X\"; pwd"},
  root = bundle .. "/rootfs",
  binds = {{bundle .. "/data", "/data", ro = true}},
  tmpfs = {"/tmp"}, proc = "/proc", dev = "/dev",
  hostname = "box",
  chdir = "/tmp",
  rlimits = {nofile = 64},
  seccomp = {default = "allow", deny = {"mkdir"}},
  clear_env = true, env = {PATH = "/bin", X = "1"},
}
local r = sandbox.run(t)
io.stdout:write(r.stdout, r.stderr)
ns.write_file(bundle .. "/config.json", ns.json.encode(sandbox.to_oci(t), {indent = true}), "0644")
"#;

both!(
    /// sandbox.to_oci: a sandbox table's config.json runs under `nsrun oci
    /// run` (and, as root, under runc) with the sandbox's output: ids,
    /// hostname, capabilities, no_new_privs, seccomp, a read-only bind,
    /// a tmpfs, rlimits, the masked /proc, env and cwd. What config.json
    /// cannot say is refused by name.
    fn to_oci_same_output(as_) {
        let b = bundle(as_, &["true"]);
        std::fs::create_dir_all(b.path().join("data")).unwrap();
        std::fs::write(b.path().join("data/f"), "data\n").unwrap();
        std::fs::write(b.path().join("to_oci.lua"), TO_OCI).unwrap();
        std::fs::remove_file(b.path().join("config.json")).unwrap();
        chown_r(as_, b.path());
        // Not `oci`: the recipe.
        let bin = common::binary(as_);
        let mut c = match as_ {
            As::Root => Command::new(&bin),
            As::User => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
                c
            }
        };
        let o = c.arg("to_oci.lua").arg(b.path()).current_dir(b.path()).stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "recipe: {}", text(&o));
        let want = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(want.contains("box\n") && want.contains("data\nro\n") && want.contains("\n64\n0\nX=1\n/tmp\n"),
            "the sandbox itself: {want}");
        assert!(want.contains("Operation not permitted"), "seccomp: {want}");
        let o = b.oci(&["run", "--bundle", b.path().to_str().unwrap(), "o1"]);
        let got = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(got, want, "nsrun oci run: {}", text(&o));
        if as_ == As::Root && Path::new("/usr/sbin/runc").exists() {
            let state = b.path().join("runc-state");
            let o = Command::new("runc").arg("--root").arg(&state)
                .args(["run", "--bundle", b.path().to_str().unwrap(), "o2"])
                .stdin(Stdio::null()).output().unwrap();
            let got = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            assert_eq!(got, want, "runc run: {}", text(&o));
        }
        b.assert_clean();

        let o = common::run(as_, r#"
            local sandbox = require "nsrun.sandbox"
            sandbox.to_oci{argv = {"true"}, root = "/", files = {["/x"] = "y"}}"#, &[]);
        assert!(o.stderr.contains("sandbox.to_oci: files has no form in config.json"), "{}", o.report());
    }
);
