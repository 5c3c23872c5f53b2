//! nsrun-oci driven by containerd 1.6 as a real client: `ctr run
//! --runc-binary …/nsrun-oci`, so that the runc v2 shim calls nsrun with
//! runc's command line (see /work/shared/design/oci-invocations.txt).
//!
//! One private containerd per test process (own root, state, sockets and
//! config.toml under a temp dir; no CRI plugin) runs in a mount namespace
//! of its own with a tmpfs on /run: the shim's snapshot mounts and its
//! sockets under /run/containerd never reach the host's mount table or
//! /run. Its TMPDIR (the shim's console sockets and exec process files)
//! is under the temp dir too. The test process is a child subreaper, as
//! containerd's shims expect of their parent's side: they and the
//! containers they leave are ours to reap.
//!
//! The image is made here from Debian's busybox-static: a rootfs tarball,
//! `podman import` into a private storage (vfs: no mounts), `podman
//! save`, `ctr images import`. Nothing is pulled.
//!
//! The cases run in sequence in one test (containerd starts once); each
//! names itself in its failure, and all run even when one fails. At the
//! end: every task and container removed, containerd and its shims
//! stopped, the containers' cgroups gone, the host's mount table and /run
//! as they were.

mod common;
mod oci_bundle;

use std::os::unix::fs::PermissionsExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::As;
use oci_bundle::{stdout, subreaper, text, BUSYBOX};

const IMAGE: &str = "localhost/nsrun-busybox:test";
/// Controllers containerd's cgroupsPath (/<namespace>/<id>) lands under
/// on a v1 or hybrid host; "unified" is the v2 tree's root.
const CGROUP_CONTROLLERS: &[&str] = &[
    "memory",
    "pids",
    "cpu",
    "cpuacct",
    "cpu,cpuacct",
    "freezer",
    "blkio",
    "cpuset",
    "devices",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "unified",
    "",
];

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", text(o));
}

/// Run `c` with files for its output, not pipes: a daemon it leaves
/// behind (a shim) would hold a pipe open and `output()` would wait for it.
fn output_via_files(mut c: Command, dir: &Path) -> Output {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let (o, e) = (dir.join(format!("out.{n}")), dir.join(format!("err.{n}")));
    let status = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap_or_else(|err| panic!("run {c:?}: {err}"));
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

fn tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The fields 3.. of /proc/PID/stat (state first), None once it is gone.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split(' ').map(String::from).collect())
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Reap the zombies among our children (shims and containers adopted by
/// us, the subreaper), one by one: no wait(-1) that could take a child
/// another part of the test waits for.
fn reap_zombie_children() {
    let me = std::process::id() as i32;
    for pid in pids() {
        if let Some(f) = stat_fields(pid) {
            if f[0] == "Z" && f[1] == me.to_string() {
                let mut st = 0;
                // SAFETY: waiting for a zombie child of ours.
                unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            }
        }
    }
}

fn live_children() -> Vec<(i32, String)> {
    let me = std::process::id().to_string();
    pids()
        .into_iter()
        .filter_map(|pid| {
            let f = stat_fields(pid)?;
            (f[0] != "Z" && f[1] == me).then(|| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                (pid, comm.trim().to_string())
            })
        })
        .collect()
}

fn in_mount_ns(ns: &str) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/ns/mnt")).is_ok_and(|l| l.to_string_lossy() == ns)
                && stat_fields(*p).is_some_and(|f| f[0] != "Z")
        })
        .collect()
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: a signal to a process of this test's containerd.
    unsafe { libc::kill(pid, sig) };
}

/// The cgroup directories the namespace `ns` has under each hierarchy.
fn cgroup_dirs(ns: &str) -> Vec<PathBuf> {
    CGROUP_CONTROLLERS
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c).join(ns))
        .filter(|p| p.is_dir())
        .collect()
}

/// Remove a cgroup tree, deepest first (rmdir: a cgroup's files go with it).
fn remove_cgroup_tree(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..100 {
        if std::fs::remove_dir(d).is_ok() || !d.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Containerd {
    dir: tempfile::TempDir,
    ns: String,
    child: Option<Child>,
    /// containerd's mount namespace (its shims share it).
    mnt_ns: String,
    /// Its mount table once the image is in: what it must be again once
    /// every task is deleted.
    mounts_idle: Vec<String>,
    exec_ids: AtomicUsize,
}

impl Containerd {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn sock(&self) -> PathBuf {
        self.path("containerd.sock")
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.path("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("nsrun-ctr-")
            .tempdir_in("/tmp")
            .expect("a temp dir");
        let mut c = Containerd {
            dir,
            ns: format!("nsrun-test-{}", std::process::id()),
            child: None,
            mnt_ns: String::new(),
            mounts_idle: Vec::new(),
            exec_ids: AtomicUsize::new(0),
        };
        for d in ["root", "state", "fifo", "tmp", "bin", "io", "share"] {
            std::fs::create_dir_all(c.path(d)).unwrap();
        }
        std::os::unix::fs::symlink(common::binary(As::Root), c.path("bin/nsrun-oci")).unwrap();
        let image = c.build_image();

        let d = c.dir.path().display().to_string();
        let conf = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "{d}/root/overlayfs"
"#
        );
        std::fs::write(c.path("config.toml"), conf).unwrap();
        let log = std::fs::File::create(c.path("containerd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o mode=0755 nsrun-containerd /run && exec containerd --config \"$1\"")
            .arg("sh")
            .arg(c.path("config.toml"))
            .env("TMPDIR", c.path("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd (apt install containerd; scripts/deps.sh does)");
        let pid = child.id() as i32;
        c.child = Some(child);
        let t = Instant::now();
        loop {
            if let Some(st) = c.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited at start ({st}):\n{}", c.log_tail());
            }
            if c.sock().exists() && c.ctr(&["version"]).status.success() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "containerd did not answer on {} within 20 s:\n{}",
                c.sock().display(),
                c.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c.mnt_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let o = c.ctr(&["images", "import", image.to_str().unwrap()]);
        ok(&o, "ctr images import");
        let o = c.ctr(&["images", "ls", "-q"]);
        assert!(
            stdout(&o).contains(IMAGE),
            "image not imported: {}",
            text(&o)
        );
        c.mounts_idle = c.mounts();
        c
    }

    /// busybox-static as an image: rootfs tarball -> podman import (a
    /// private vfs storage, in a mount namespace with /run of its own) ->
    /// podman save (docker-archive).
    fn build_image(&self) -> PathBuf {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt install busybox-static (scripts/deps.sh does)"
        );
        let rootfs = self.path("image/rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "run", "mnt"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for a in String::from_utf8_lossy(&list.stdout).lines() {
            if a != "busybox" && !a.is_empty() {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
            }
        }
        let tar = self.path("image/rootfs.tar");
        let o = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        ok(&o, "tar the rootfs");

        let pm = self.path("podman");
        for d in ["graph", "run", "tmp", "home"] {
            std::fs::create_dir_all(pm.join(d)).unwrap();
        }
        let p = pm.display();
        std::fs::write(
            pm.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{p}/graph\"\nrunroot = \"{p}/run\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            pm.join("containers.conf"),
            format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 events_logfile_path = \"{p}/events.log\"\ntmp_dir = \"{p}/tmp\"\n\
                 static_dir = \"{p}/graph/libpod\"\nvolume_path = \"{p}/graph/volumes\"\n\
                 image_copy_tmp_dir = \"{p}/tmp\"\n"
            ),
        )
        .unwrap();
        let out = self.path("image/image.tar");
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o mode=0755 nsrun-podman /run && \
                 podman import --change 'CMD [\"/bin/sh\"]' \"$1\" \"$2\" >/dev/null && \
                 podman save --format docker-archive -o \"$3\" \"$2\"",
            )
            .arg("sh")
            .arg(&tar)
            .arg(IMAGE)
            .arg(&out)
            .env("CONTAINERS_STORAGE_CONF", pm.join("storage.conf"))
            .env("CONTAINERS_CONF", pm.join("containers.conf"))
            .env("TMPDIR", pm.join("tmp"))
            .env("HOME", pm.join("home"))
            .env("XDG_CONFIG_HOME", pm.join("home"))
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("run podman (apt install podman; scripts/deps.sh does)");
        ok(&o, "podman import + save");
        out
    }

    /// The mounts of containerd's mount table under the temp dir (a
    /// container's rootfs), sorted: the host's others come and go with
    /// other tests.
    fn mounts(&self) -> Vec<String> {
        let pid = self.child.as_ref().map(|c| c.id()).unwrap_or(0);
        let d = self.dir.path().display().to_string();
        let mut v: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap_or_default()
            .lines()
            .filter(|l| common::mount_point(l).starts_with(&d))
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    fn ctr_command(&self) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "30", "ctr", "-a"])
            .arg(self.sock())
            .args(["-n", &self.ns]);
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        let mut c = self.ctr_command();
        c.args(args);
        output_via_files(c, &self.path("io"))
    }

    /// `ctr run` with nsrun-oci as the runtime: OPTS, then the image, the
    /// id and the command.
    fn run(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Output {
        let mut c = self.ctr_command();
        c.arg("run")
            .arg("--fifo-dir")
            .arg(self.path("fifo"))
            .arg("--runc-binary")
            .arg(self.path("bin/nsrun-oci"))
            .args(opts)
            .arg(IMAGE)
            .arg(id)
            .args(cmd);
        output_via_files(c, &self.path("io"))
    }

    fn exec(&self, id: &str, opts: &[&str], cmd: &[&str]) -> Output {
        let n = self.exec_ids.fetch_add(1, Ordering::Relaxed);
        let mut c = self.ctr_command();
        c.args(["task", "exec", "--exec-id", &format!("e{n}"), "--fifo-dir"])
            .arg(self.path("fifo"))
            .args(opts)
            .arg(id)
            .args(cmd);
        output_via_files(c, &self.path("io"))
    }

    /// (pid, status) of a task in `ctr task ls`.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let o = self.ctr(&["task", "ls"]);
        stdout(&o).lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    #[track_caller]
    fn wait_status(&self, id: &str, want: &str) -> i32 {
        let t = Instant::now();
        loop {
            let now = self.task(id);
            if let Some((pid, s)) = &now {
                if s == want {
                    return *pid;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "task {id} is not {want} after 10 s: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run `cmd` in the task until its output contains `want`.
    #[track_caller]
    fn wait_exec(&self, id: &str, cmd: &[&str], want: &str) {
        let t = Instant::now();
        loop {
            let o = self.exec(id, &[], cmd);
            if stdout(&o).contains(want) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{cmd:?} in {id} never printed {want:?}: {}",
                text(&o)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL to a task, then its delete and its container's removal; its
    /// cgroup (/<namespace>/<id>) must be gone with it.
    #[track_caller]
    fn remove(&self, id: &str) {
        ok(
            &self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]),
            "task kill -a -s SIGKILL",
        );
        self.wait_status(id, "STOPPED");
        ok(&self.ctr(&["task", "delete", id]), "task delete");
        ok(&self.ctr(&["containers", "rm", id]), "containers rm");
        self.assert_no_cgroup(id);
    }

    #[track_caller]
    fn assert_no_cgroup(&self, id: &str) {
        for d in cgroup_dirs(&self.ns) {
            assert!(!d.join(id).exists(), "{} left behind", d.join(id).display());
        }
    }

    /// Everything stopped and removed; what could not be is left as
    /// found for the checks to name.
    fn stop(&mut self) {
        if self.child.is_some() && self.sock().exists() {
            let tasks = stdout(&self.ctr(&["task", "ls", "-q"]));
            for id in tasks.lines().filter(|l| !l.is_empty()) {
                let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
                let _ = self.ctr(&["task", "delete", "--force", id]);
            }
            let containers = stdout(&self.ctr(&["containers", "ls", "-q"]));
            for id in containers.lines().filter(|l| !l.is_empty()) {
                let _ = self.ctr(&["containers", "rm", id]);
            }
        }
        // Containers whose tasks did not go: by their cgroups.
        for d in cgroup_dirs(&self.ns) {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    let procs = std::fs::read_to_string(e.path().join("cgroup.procs"));
                    for p in procs.unwrap_or_default().lines() {
                        if let Ok(p) = p.parse() {
                            kill(p, libc::SIGKILL);
                        }
                    }
                }
            }
        }
        if let Some(mut child) = self.child.take() {
            kill(child.id() as i32, libc::SIGTERM);
            let t = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if t.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The shims (they outlive containerd by design), in its mount
        // namespace.
        if !self.mnt_ns.is_empty() {
            let t = Instant::now();
            loop {
                let left = in_mount_ns(&self.mnt_ns);
                if left.is_empty() || t.elapsed() > Duration::from_secs(5) {
                    break;
                }
                for p in left {
                    kill(p, libc::SIGKILL);
                }
                reap_zombie_children();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for d in cgroup_dirs(&self.ns) {
            remove_cgroup_tree(&d);
        }
        reap_zombie_children();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// The cases.

fn echo(c: &Containerd) {
    let o = c.run(&["--rm"], "echo", &["echo", "hello from nsrun-oci"]);
    ok(&o, "ctr run echo");
    assert_eq!(stdout(&o), "hello from nsrun-oci\n", "{}", text(&o));
}

fn exit_code(c: &Containerd) {
    let o = c.run(&["--rm"], "exit7", &["sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "ctr run's status: {}", text(&o));
    let o = c.run(&["--rm"], "exit0", &["true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn missing_executable(c: &Containerd) {
    let o = c.run(&["--rm"], "miss1", &["no-such-program"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        text(&o)
    );
    let o = c.run(&["--rm"], "miss2", &["/no/such/file"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("no such file"), "{}", text(&o));
    let o = c.ctr(&["containers", "ls", "-q"]);
    assert!(
        !stdout(&o).contains("miss"),
        "a failed run left its container: {}",
        text(&o)
    );
    c.assert_no_cgroup("miss1");
}

/// `ctr run -t`: the shim hands create a console socket; ctr wants a
/// terminal of its own, which `script` gives it.
fn tty(c: &Containerd) {
    let cmd = format!(
        "ctr -a {} -n {} run --fifo-dir {} --runc-binary {} -t --rm {IMAGE} tty1 \
         sh -c 'tty; echo tty-ok'",
        c.sock().display(),
        c.ns,
        c.path("fifo").display(),
        c.path("bin/nsrun-oci").display()
    );
    let mut s = Command::new("timeout");
    s.args(["-k", "5", "60", "script", "-qec", &cmd, "/dev/null"]);
    let o = output_via_files(s, &c.path("io"));
    ok(&o, "ctr run -t (under script)");
    let out = stdout(&o);
    assert!(out.contains("tty-ok"), "{}", text(&o));
    assert!(
        out.contains("/dev/") && !out.contains("not a tty"),
        "no terminal: {}",
        text(&o)
    );
    // (No check of its size: ctr sizes the console after the start, and
    // under runc too `stty size` may run before, on a 0x0 terminal.)

    // task exec -t: exec's own --console-socket.
    ok(&c.run(&["-d"], "tty2", &["sleep", "1000"]), "ctr run -d");
    c.wait_status("tty2", "RUNNING");
    let cmd = format!(
        "ctr -a {} -n {} task exec -t --exec-id et --fifo-dir {} tty2 \
         sh -c 'tty; echo exec-tty-ok'",
        c.sock().display(),
        c.ns,
        c.path("fifo").display(),
    );
    let mut s = Command::new("timeout");
    s.args(["-k", "5", "60", "script", "-qec", &cmd, "/dev/null"]);
    let o = output_via_files(s, &c.path("io"));
    ok(&o, "ctr task exec -t (under script)");
    let out = stdout(&o);
    assert!(out.contains("exec-tty-ok"), "{}", text(&o));
    assert!(out.contains("/dev/pts/"), "no terminal: {}", text(&o));
    c.remove("tty2");
}

/// run -d, exec (as root and as another uid: its capabilities), ps,
/// pause/resume, kill (SIGTERM trapped by PID 1, then SIGKILL), delete.
fn lifecycle(c: &Containerd) {
    let o = c.run(
        &["-d"],
        "life",
        &[
            "sh",
            "-c",
            "trap 'echo term > /tmp/term' TERM; echo ready > /tmp/ready; while :; do sleep 0.1; done",
        ],
    );
    ok(&o, "ctr run -d");
    let pid = c.wait_status("life", "RUNNING");
    c.wait_exec("life", &["cat", "/tmp/ready"], "ready");

    let o = c.exec(
        "life",
        &[],
        &["sh", "-c", "echo from-exec; cat /proc/1/cmdline"],
    );
    ok(&o, "task exec");
    assert!(stdout(&o).contains("from-exec"), "{}", text(&o));
    assert!(
        stdout(&o).contains("trap"),
        "exec is not in the container's pid namespace: {}",
        text(&o)
    );

    // As uid 0: the bounding set, nothing inheritable or ambient (runc's
    // result).
    let o = c.exec("life", &[], &["grep", "^Cap", "/proc/self/status"]);
    ok(&o, "task exec grep Cap");
    let caps = |o: &Output, k: &str| -> u64 {
        stdout(o)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {k} in {}", text(o)))
    };
    assert_ne!(caps(&o, "CapEff"), 0, "{}", text(&o));
    assert_eq!(caps(&o, "CapEff"), caps(&o, "CapBnd"), "{}", text(&o));
    assert_eq!(caps(&o, "CapInh"), 0, "{}", text(&o));
    assert_eq!(caps(&o, "CapAmb"), 0, "{}", text(&o));
    // As uid 1000 (ctr task exec --user): no capability at all.
    let o = c.exec(
        "life",
        &["--user", "1000:1000"],
        &["sh", "-c", "id -u; id -g; grep ^Cap /proc/self/status"],
    );
    ok(&o, "task exec --user 1000:1000");
    assert!(stdout(&o).starts_with("1000\n1000\n"), "{}", text(&o));
    for k in ["CapEff", "CapPrm", "CapAmb", "CapInh"] {
        assert_eq!(
            caps(&o, k),
            0,
            "uid 1000 holds capabilities ({k}): {}",
            text(&o)
        );
    }

    let o = c.ctr(&["task", "ps", "life"]);
    ok(&o, "task ps");
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "task ps lacks the init pid {pid}: {}",
        text(&o)
    );

    ok(&c.ctr(&["task", "pause", "life"]), "task pause");
    c.wait_status("life", "PAUSED");
    let freezer = format!("/sys/fs/cgroup/freezer/{}/life/freezer.state", c.ns);
    if let Ok(s) = std::fs::read_to_string(&freezer) {
        assert_eq!(s.trim(), "FROZEN", "{freezer}");
    }
    ok(&c.ctr(&["task", "resume", "life"]), "task resume");
    c.wait_status("life", "RUNNING");
    c.wait_exec("life", &["echo", "thawed"], "thawed");

    // SIGTERM: PID 1 traps it and goes on.
    ok(&c.ctr(&["task", "kill", "life"]), "task kill (SIGTERM)");
    c.wait_exec("life", &["cat", "/tmp/term"], "term");
    assert_eq!(c.task("life").map(|t| t.1).as_deref(), Some("RUNNING"));
    ok(
        &c.ctr(&["task", "kill", "-s", "SIGKILL", "life"]),
        "task kill -s SIGKILL",
    );
    c.wait_status("life", "STOPPED");
    ok(&c.ctr(&["task", "delete", "life"]), "task delete");
    assert!(c.task("life").is_none(), "task still listed after delete");
    ok(&c.ctr(&["containers", "rm", "life"]), "containers rm");
    c.assert_no_cgroup("life");
    assert!(
        stat_fields(pid).map_or(true, |f| f[0] == "Z"),
        "init {pid} still alive"
    );
}

/// kill -a: the signal reaches every process of the container, not its
/// PID 1 alone (which traps SIGTERM and stays).
fn kill_all(c: &Containerd) {
    let o = c.run(
        &["-d"],
        "killall",
        &[
            "sh",
            "-c",
            "trap 'echo t' TERM; sleep 1000 & sleep 1001 & echo ready > /tmp/ready; \
             while :; do sleep 0.1; done",
        ],
    );
    ok(&o, "ctr run -d");
    c.wait_status("killall", "RUNNING");
    c.wait_exec("killall", &["cat", "/tmp/ready"], "ready");
    let sleepers = || -> Vec<i32> {
        let o = c.ctr(&["task", "ps", "killall"]);
        stdout(&o)
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<i32>().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"sleep\x00100"))
                    && stat_fields(*p).is_some_and(|f| f[0] != "Z")
            })
            .collect()
    };
    assert_eq!(sleepers().len(), 2, "the two sleeps in task ps");
    ok(
        &c.ctr(&["task", "kill", "-a", "killall"]),
        "task kill -a (SIGTERM)",
    );
    let t = Instant::now();
    while !sleepers().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "kill -a did not reach the sleeps"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.task("killall").map(|t| t.1).as_deref(), Some("RUNNING"));
    c.remove("killall");
}

/// `task delete --force` of a task that ended by itself: the shim kills
/// first and takes runc's "container not running" for "already gone".
fn delete_force_stopped(c: &Containerd) {
    let o = c.run(&["-d"], "ended", &["sh", "-c", "exit 3"]);
    ok(&o, "ctr run -d");
    c.wait_status("ended", "STOPPED");
    let o = c.ctr(&["task", "delete", "--force", "ended"]);
    ok(&o, "task delete --force of a stopped task");
    assert!(stderr(&o).contains("exit code 3"), "{}", text(&o));
    ok(&c.ctr(&["containers", "rm", "ended"]), "containers rm");
    c.assert_no_cgroup("ended");
}

fn env(c: &Containerd) {
    let o = c.run(
        &["--rm", "--env", "FOO=bar baz"],
        "env1",
        &["sh", "-c", "echo \"[$FOO]\""],
    );
    ok(&o, "ctr run --env");
    assert_eq!(stdout(&o), "[bar baz]\n", "{}", text(&o));
}

fn read_only(c: &Containerd) {
    let probe = ["sh", "-c", "touch /probe && echo wrote || echo refused"];
    let o = c.run(&["--rm", "--read-only"], "ro1", &probe);
    ok(&o, "ctr run --read-only");
    assert_eq!(stdout(&o), "refused\n", "{}", text(&o));
    assert!(stderr(&o).contains("Read-only file system"), "{}", text(&o));
    let o = c.run(&["--rm"], "rw1", &probe);
    assert_eq!(
        stdout(&o),
        "wrote\n",
        "control, without --read-only: {}",
        text(&o)
    );
}

fn bind_mount(c: &Containerd) {
    let share = c.path("share");
    std::fs::write(share.join("f"), "shared-data\n").unwrap();
    let probe = [
        "sh",
        "-c",
        "cat /mnt/share/f; touch /mnt/share/new && echo wrote || echo refused",
    ];
    let m = |o: &str| {
        format!(
            "type=bind,src={},dst=/mnt/share,options=rbind:{o}",
            share.display()
        )
    };
    let o = c.run(&["--rm", "--mount", &m("ro")], "bind1", &probe);
    ok(&o, "ctr run --mount …rbind:ro");
    assert_eq!(stdout(&o), "shared-data\nrefused\n", "{}", text(&o));
    assert!(!share.join("new").exists());
    let o = c.run(&["--rm", "--mount", &m("rw")], "bind2", &probe);
    assert_eq!(
        stdout(&o),
        "shared-data\nwrote\n",
        "control, rbind:rw: {}",
        text(&o)
    );
    assert!(
        share.join("new").exists(),
        "the write did not reach the host's directory"
    );
}

/// --memory-limit: the limit on the container's memory cgroup, which is
/// /<namespace>/<id> (no cgroup is mounted inside: read from the host).
fn memory_limit(c: &Containerd) {
    let o = c.run(
        &["-d", "--memory-limit", "67108864"],
        "mem1",
        &["sleep", "1000"],
    );
    ok(&o, "ctr run -d --memory-limit");
    let pid = c.wait_status("mem1", "RUNNING");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{}/mem1", c.ns);
    let limit = if let Some(l) = cg.lines().find(|l| l.split(':').nth(1) == Some("memory")) {
        let path = l.split(':').nth(2).unwrap();
        assert_eq!(path, want, "{cg}");
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"))
    } else {
        let path = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        assert_eq!(path, want, "{cg}");
        std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max"))
    };
    assert_eq!(limit.unwrap().trim(), "67108864");
    c.remove("mem1");
}

/// --with-ns network:/proc/PID/ns/net: a second container joins the
/// first one's network namespace by path, as a pod's containers join
/// its sandbox's; a container with a network namespace of its own has
/// its loopback up, as under runc.
fn join_netns(c: &Containerd) {
    let o = c.run(&["-d"], "pod", &["sleep", "1000"]);
    ok(&o, "ctr run -d (the pod's sandbox)");
    let pid = c.wait_status("pod", "RUNNING");
    let netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let netns = netns.to_string_lossy();
    let with = format!("network:/proc/{pid}/ns/net");
    let o = c.run(
        &["--rm", "--with-ns", &with],
        "member",
        &["sh", "-c", "readlink /proc/self/ns/net; ip link show lo"],
    );
    ok(&o, "ctr run --with-ns network:…");
    assert_eq!(stdout(&o).lines().next(), Some(&*netns), "{}", text(&o));
    let o = c.run(
        &["--rm"],
        "alone",
        &["sh", "-c", "readlink /proc/self/ns/net; ip link show lo"],
    );
    ok(&o, "ctr run (a network namespace of its own)");
    let own = stdout(&o);
    let first = own.lines().next().unwrap_or("");
    assert!(first.starts_with("net:[") && first != netns, "{}", text(&o));
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        first,
        host.to_string_lossy(),
        "the host's network namespace"
    );
    assert!(own.contains("LOOPBACK,UP"), "loopback down: {}", text(&o));
    // A pod sharing its process namespace: pid (and ipc, uts) by path.
    let with = |k: &str| format!("{k}:/proc/{pid}/ns/{k}");
    let o = c.run(
        &[
            "--rm",
            "--with-ns",
            &with("pid"),
            "--with-ns",
            &with("ipc"),
            "--with-ns",
            &with("uts"),
        ],
        "sharer",
        &["ps"],
    );
    ok(&o, "ctr run --with-ns pid:…");
    assert!(
        stdout(&o).contains("sleep 1000"),
        "the pod's process is not in sight: {}",
        text(&o)
    );
    c.remove("pod");
}

/// `ctr run --seccomp`: containerd's default profile, which names the
/// calls of every x86 ABI (chown32, …): runc skips the names this
/// architecture lacks.
fn seccomp(c: &Containerd) {
    let probe = ["grep", "^Seccomp:", "/proc/self/status"];
    let o = c.run(&["--rm"], "sec0", &probe);
    assert_eq!(
        stdout(&o),
        "Seccomp:\t0\n",
        "control, no --seccomp: {}",
        text(&o)
    );
    let o = c.run(&["--rm", "--seccomp"], "sec1", &probe);
    ok(&o, "ctr run --seccomp");
    assert_eq!(stdout(&o), "Seccomp:\t2\n", "{}", text(&o));
}

/// Once every task is deleted containerd's mount table is as it was: no
/// rootfs left mounted by a delete that failed.
fn no_mounts_left(c: &Containerd) {
    assert_eq!(
        c.mounts(),
        c.mounts_idle,
        "containerd's mount table after every task went"
    );
}

#[allow(clippy::type_complexity)]
const CASES: &[(&str, fn(&Containerd))] = &[
    ("echo", echo),
    ("exit_code", exit_code),
    ("missing_executable", missing_executable),
    ("tty", tty),
    ("lifecycle", lifecycle),
    ("kill_all", kill_all),
    ("delete_force_stopped", delete_force_stopped),
    ("env", env),
    ("read_only", read_only),
    ("bind_mount", bind_mount),
    ("memory_limit", memory_limit),
    ("join_netns", join_netns),
    ("seccomp", seccomp),
    ("no_mounts_left", no_mounts_left),
];

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

#[test]
fn containerd_runs_nsrun_oci() {
    for t in [
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "podman",
        "unshare",
        "script",
        "tar",
    ] {
        assert!(
            tool(t),
            "{t} is missing: scripts/deps.sh installs the OCI engines"
        );
    }
    common::base();
    subreaper();
    let mounts_before = common::host_mounts();
    let run_containerd = Path::new("/run/containerd").exists();
    // podman (making the image) keeps its blob-info cache for root here,
    // whatever its storage configuration says: removed again if it is ours.
    let var_lib_containers = Path::new("/var/lib/containers").exists();
    let t0 = Instant::now();
    let mut failures = Vec::new();
    let (dir, ns, mnt_ns);
    {
        let mut c = Containerd::start();
        eprintln!("setup (image, containerd): {:.2?}", t0.elapsed());
        for (name, case) in CASES {
            let t = Instant::now();
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| case(&c)));
            eprintln!(
                "case {name}: {} in {:.2?}",
                if r.is_ok() { "ok" } else { "FAILED" },
                t.elapsed()
            );
            if let Err(e) = r {
                failures.push(format!("case {name}: {}", panic_text(&*e)));
            }
        }
        dir = c.dir.path().to_path_buf();
        ns = c.ns.clone();
        mnt_ns = c.mnt_ns.clone();
        let t = Instant::now();
        c.stop();
        eprintln!("teardown: {:.2?}", t.elapsed());
    }
    eprintln!("total: {:.2?}", t0.elapsed());

    // The host as it was.
    let d = dir.display().to_string();
    let added: Vec<String> = common::host_mounts()
        .into_iter()
        .filter(|l| !mounts_before.contains(l))
        .collect();
    let ours: Vec<&String> = added
        .iter()
        .filter(|l| l.contains(&d) || l.contains("containerd") || l.contains(&ns))
        .collect();
    if !added.is_empty() {
        // Other test processes may mount meanwhile; ours are named below.
        eprintln!(
            "note: the host's mount table changed meanwhile:\n{}",
            added.join("\n")
        );
    }
    assert!(ours.is_empty(), "mounts left on the host: {ours:#?}");
    assert!(
        in_mount_ns(&mnt_ns).is_empty(),
        "containerd or its shims still run"
    );
    let children = live_children();
    assert!(children.is_empty(), "processes left: {children:?}");
    assert!(
        cgroup_dirs(&ns).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&ns)
    );
    if !var_lib_containers {
        let _ = std::fs::remove_dir_all("/var/lib/containers");
    }
    assert_eq!(
        Path::new("/run/containerd").exists(),
        run_containerd,
        "/run/containerd"
    );
    assert!(!dir.exists(), "{d} left behind");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
