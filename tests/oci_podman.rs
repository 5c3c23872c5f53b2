//! podman 4.3 (Debian) driving `nsrun-oci` as its OCI runtime, through
//! conmon, as a real engine does: `podman --runtime PATH/nsrun-oci run …`.
//!
//! podman gets a configuration and storage of its own under a temporary
//! directory (cgroupfs manager, file events logger, lower ulimits: the
//! facts of this machine in MACHINE-FACTS.md); its image is made here from
//! Debian's busybox-static with `podman import` (nothing is pulled). The
//! test process is a child subreaper, as a podman service would be, so that
//! nothing conmon leaves is orphaned to the machine's PID 1, which does not
//! reap. All cases run in one test, in order, on one podman set-up; at the
//! end the storage is removed and the host is checked to be as it was
//! (mounts, cgroups, processes).

mod common;
mod oci_bundle;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::As;
use oci_bundle::{stdout, subreaper, text, BUSYBOX};

const IMAGE: &str = "localhost/nsrun-oci-test-busybox:latest";

struct Podman {
    dir: tempfile::TempDir,
    /// The runtime as podman is given it: a link named nsrun-oci.
    runtime: PathBuf,
}

/// Reap what conmon left to us (its double fork makes us its parent).
fn reap_orphans() {
    loop {
        let mut st = 0;
        // SAFETY: reaping any exited child; no std Command is outstanding
        // when this runs.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

impl Podman {
    fn new() -> Podman {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt install busybox-static (scripts/deps.sh does)"
        );
        let dir = common::run_dir(As::Root);
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let runtime = bin.join("nsrun-oci");
        std::os::unix::fs::symlink(common::binary(As::Root), &runtime).unwrap();
        for sub in ["graph", "runroot", "tmp", "engine-tmp", "volumes"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/runroot\"\ngraphroot = \"{0}/graph\"\n",
                d.display()
            ),
        )
        .unwrap();
        // Two engine configurations: podman passes `--log-format=json --log
        // FILE` only to runtimes named in runtime_supports_json; under
        // another name no global flag at all, and it reads errors from
        // stderr. Both are what nsrun-oci must answer.
        for (name, json) in [("containers.conf", true), ("containers-plain.conf", false)] {
            let supports = if json {
                "runtime_supports_json = [\"crun\", \"runc\", \"nsrun-oci\"]\n"
            } else {
                ""
            };
            std::fs::write(
                d.join(name),
                format!(
                    "[containers]\n\
                     default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
                     [engine]\n\
                     cgroup_manager = \"cgroupfs\"\n\
                     events_logger = \"file\"\n\
                     events_logfile_path = \"{0}/events.log\"\n\
                     tmp_dir = \"{0}/engine-tmp\"\n\
                     volume_path = \"{0}/volumes\"\n\
                     {supports}",
                    d.display()
                ),
            )
            .unwrap();
        }
        let p = Podman { dir, runtime };
        // The image: busybox-static as a root file system.
        let root = d.join("image");
        for sub in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "run"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for c in [
            "sh", "echo", "cat", "ls", "id", "sleep", "true", "touch", "grep", "mount", "tty",
            "env", "sort", "stty", "readlink", "seq", "mkdir", "stat", "hostname",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
        // A pod's infra ("pause") container.
        std::fs::write(root.join("bin/pause"), "#!/bin/sh\nexec sleep 1000000\n").unwrap();
        std::fs::set_permissions(
            root.join("bin/pause"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let tar = d.join("image.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success(), "tar of the image's root");
        let o = p.podman(&["import", tar.to_str().unwrap(), IMAGE]);
        assert!(o.status.success(), "podman import: {}", text(&o));
        p
    }

    fn command(&self, conf: &str) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join(conf))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("TMPDIR", d.join("tmp"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("NOTIFY_SOCKET")
            .current_dir(d)
            .stdin(Stdio::null());
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        let o = self
            .command("containers.conf")
            .args(args)
            .output()
            .expect("run podman");
        reap_orphans();
        o
    }

    /// `podman --runtime nsrun-oci ARGS`, with the engine configuration
    /// `conf`.
    fn with(&self, conf: &str, args: &[&str]) -> Output {
        let o = self
            .command(conf)
            .arg("--runtime")
            .arg(&self.runtime)
            .args(&args[..1])
            .args(if args[0] == "run" {
                &["--security-opt", "seccomp=unconfined"][..]
            } else {
                &[][..]
            }) // TEMP
            .args(&args[1..])
            .output()
            .expect("run podman");
        reap_orphans();
        o
    }

    fn runtime(&self, args: &[&str]) -> Output {
        self.with("containers.conf", args)
    }

    /// `podman run --rm --network none IMAGE ARGS…` under nsrun-oci.
    fn run(&self, opts: &[&str], args: &[&str]) -> Output {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(opts);
        a.push(IMAGE);
        a.extend_from_slice(args);
        self.runtime(&a)
    }

    fn status_of(&self, name: &str) -> String {
        let o = self.podman(&["inspect", "--format", "{{.State.Status}}", name]);
        stdout(&o).trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.runtime(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.podman(&["rmi", "--all", "--force"]);
        let _ = self.podman(&["system", "reset", "--force"]);
        // What the overlay driver may keep mounted in its own directory.
        let base = self.dir.path().to_string_lossy().to_string();
        for l in common::host_mounts().iter().rev() {
            let mp = common::mount_point(l);
            if mp.starts_with(&base) {
                if let Ok(c) = std::ffi::CString::new(mp) {
                    // SAFETY: a valid C string.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
        // conmons that are still going away.
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            reap_orphans();
            let mut st = 0;
            // SAFETY: polling for any child left.
            let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if r < 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Host state the engine may leave: cgroups podman made under
/// libpod_parent, and the runtimes' state directories.
fn libpod_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    for ctl in ["memory", "pids", "cpu", "freezer"] {
        let d = format!("/sys/fs/cgroup/{ctl}/libpod_parent");
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with("libpod-") {
                    out.push(format!("{d}/{n}"));
                }
            }
        }
    }
    out
}

/// A container's cgroup memory limit as podman's cgroupfs manager made it.
fn check(name: &str, ok: bool, what: &str, failures: &mut Vec<String>) {
    if !ok {
        failures.push(format!("{name}: {what}"));
    }
}

#[test]
fn podman_runs_containers_through_nsrun_oci() {
    if !Path::new("/usr/bin/podman").exists() {
        panic!("podman is missing: apt install podman conmon (scripts/deps.sh does)");
    }
    subreaper();
    let mounts_before = common::host_mounts();
    let cgroups_before = libpod_cgroups();
    // What podman (root) keeps outside its configured directories, and the
    // runtime's default state directory (podman passes no --root): removed
    // afterwards when this test made them.
    let mut made: Vec<PathBuf> = ["/run/containers", "/var/lib/containers", "/run/nsrun-oci"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| !p.exists())
        .collect();
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = ctl.path().join("libpod_parent");
        if !d.exists() {
            made.push(d);
        }
    }
    let mut f = Vec::new();
    {
        let p = Podman::new();
        cases(&p, &mut f);
    }
    reap_orphans();
    for p in &made {
        if p.starts_with("/sys/fs/cgroup") {
            let _ = std::fs::remove_dir(p.join("conmon"));
            let _ = std::fs::remove_dir(p);
        } else {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    let mounts_after = common::host_mounts();
    let added: Vec<&String> = mounts_after
        .iter()
        .filter(|l| !mounts_before.contains(l))
        .collect();
    check(
        "cleanup",
        added.is_empty(),
        &format!("mounts left on the host: {added:?}"),
        &mut f,
    );
    let left: Vec<String> = libpod_cgroups()
        .into_iter()
        .filter(|c| !cgroups_before.contains(c))
        .collect();
    check(
        "cleanup",
        left.is_empty(),
        &format!("container cgroups left on the host: {left:?}"),
        &mut f,
    );
    assert!(
        f.is_empty(),
        "{} case(s) failed:\n{}",
        f.len(),
        f.join("\n\n")
    );
}

fn cases(p: &Podman, f: &mut Vec<String>) {
    // Output and exit codes.
    let o = p.run(&[], &["echo", "hello from nsrun-oci"]);
    check(
        "echo",
        o.status.success() && stdout(&o) == "hello from nsrun-oci\n",
        &text(&o),
        f,
    );
    let o = p.run(&[], &["sh", "-c", "exit 7"]);
    check("exit 7", o.status.code() == Some(7), &text(&o), f);

    // A missing program: create fails with the words podman maps to 127,
    // through the JSON log (a known runtime name) and through stderr (an
    // unknown one, which gets no --log).
    for conf in ["containers.conf", "containers-plain.conf"] {
        let o = p.with(
            conf,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                IMAGE,
                "/no/such/program",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        check(
            &format!("missing program ({conf})"),
            o.status.code() == Some(127)
                && (err.contains("no such file or directory")
                    || err.contains("executable file not found")),
            &text(&o),
            f,
        );
    }

    // No fd of conmon's or podman's reaches the container (3 is ls's own).
    let o = p.run(&[], &["ls", "/proc/self/fd"]);
    check(
        "fds",
        o.status.success() && stdout(&o) == "0\n1\n2\n3\n",
        &text(&o),
        f,
    );

    // Environment, user, read-only root, volumes, tmpfs.
    let o = p.run(&["-e", "FOO=bar"], &["sh", "-c", "echo $FOO; env"]);
    let out = stdout(&o);
    check(
        "-e",
        o.status.success()
            && out.starts_with("bar\n")
            && !out.contains("_OCI_")
            && !out.contains("_CONTAINERS_"),
        &text(&o),
        f,
    );
    let o = p.run(&["--user", "65534:65534"], &["id"]);
    check(
        "--user",
        o.status.success() && stdout(&o).starts_with("uid=65534(nobody) gid=65534(nobody)"),
        &text(&o),
        f,
    );
    let o = p.run(
        &["--read-only"],
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo root=$?; touch /tmp/y && echo tmp=ok",
        ],
    );
    check(
        "--read-only",
        stdout(&o).contains("Read-only file system")
            && stdout(&o).contains("root=1")
            && stdout(&o).contains("tmp=ok"),
        &text(&o),
        f,
    );
    let vol = p.dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "from the host\n").unwrap();
    let ro = format!("{}:/vol:ro", vol.display());
    let rw = format!("{}:/rw", vol.display());
    let o = p.run(
        &["-v", &ro, "-v", &rw],
        &[
            "sh",
            "-c",
            "cat /vol/f; touch /vol/g 2>/dev/null || echo ro-refused; echo written > /rw/h",
        ],
    );
    check(
        "-v",
        o.status.success()
            && stdout(&o) == "from the host\nro-refused\n"
            && std::fs::read_to_string(vol.join("h")).ok().as_deref() == Some("written\n"),
        &text(&o),
        f,
    );
    let o = p.run(
        &["--tmpfs", "/scratch"],
        &[
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts; echo x > /scratch/f && cat /scratch/f",
        ],
    );
    check(
        "--tmpfs",
        o.status.success()
            && stdout(&o).starts_with("tmpfs /scratch tmpfs")
            && stdout(&o).ends_with("x\n"),
        &text(&o),
        f,
    );

    // A namespaced sysctl, set though /proc/sys is read-only in it.
    let o = p.run(
        &["--sysctl", "net.ipv4.ping_group_range=0 0"],
        &["cat", "/proc/sys/net/ipv4/ping_group_range"],
    );
    check(
        "--sysctl",
        o.status.success() && stdout(&o) == "0\t0\n",
        &text(&o),
        f,
    );

    // A terminal: the pty's master end goes to conmon over its console
    // socket; the container's stdio is the slave, /dev/console.
    let o = p.run(&["-t"], &["sh", "-c", "tty; stty size"]);
    check(
        "-t",
        o.status.success() && stdout(&o).starts_with("/dev/console\r\n"),
        &text(&o),
        f,
    );

    // Limits: podman's cgroupfs manager hands cgroupsPath and resources;
    // the container sees its own limits.
    let o = p.run(
        &["--memory", "64m", "--pids-limit", "50"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
        ],
    );
    check(
        "--memory --pids-limit",
        o.status.success() && stdout(&o) == "67108864\n50\n",
        &text(&o),
        f,
    );
    let o = p.run(
        &["--cgroupns", "private", "--memory", "32m"],
        &[
            "sh",
            "-c",
            "grep memory /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
    );
    check(
        "--cgroupns private",
        o.status.success() && stdout(&o).ends_with(":memory:/\n33554432\n"),
        &text(&o),
        f,
    );

    // A pod: its containers join the infra container's network, ipc and
    // uts namespaces by path (/proc/PID/ns/…), as Kubernetes pods do.
    let o = p.runtime(&[
        "pod",
        "create",
        "--name",
        "nsrun-oci-test-pod",
        "--network",
        "none",
        "--infra-image",
        IMAGE,
        "--infra-command",
        "/bin/pause",
    ]);
    check("pod create", o.status.success(), &text(&o), f);
    if o.status.success() {
        let show = "hostname; for n in net ipc uts; do stat -L -c %i /proc/self/ns/$n; done";
        let a = p.run(&["--pod", "nsrun-oci-test-pod"], &["sh", "-c", show]);
        let b = p.run(&["--pod", "nsrun-oci-test-pod"], &["sh", "-c", show]);
        let alone = p.run(&[], &["sh", "-c", show]);
        check(
            "pod: shared namespaces",
            a.status.success()
                && stdout(&a).starts_with("nsrun-oci-test-pod\n")
                && stdout(&a) == stdout(&b)
                && stdout(&alone)
                    .lines()
                    .skip(1)
                    .zip(stdout(&a).lines().skip(1))
                    .all(|(x, y)| x != y),
            &format!("{}\n{}\n{}", text(&a), text(&b), text(&alone)),
            f,
        );
        let o = p.runtime(&["pod", "rm", "--force", "--time", "0", "nsrun-oci-test-pod"]);
        check("pod rm", o.status.success(), &text(&o), f);
    }

    // A long-running container: exec (plain and with a terminal), pause,
    // unpause, stop (TERM ignored by PID 1, then KILL), start again, kill.
    let name = "nsrun-oci-test-long";
    let o = p.runtime(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]);
    check("run -d", o.status.success(), &text(&o), f);
    if o.status.success() {
        check(
            "running",
            p.status_of(name) == "running",
            &p.status_of(name),
            f,
        );
        let o = p.runtime(&[
            "exec",
            name,
            "sh",
            "-c",
            "echo exec-ok; cat /proc/1/cmdline",
        ]);
        check(
            "exec",
            o.status.success() && stdout(&o) == "exec-ok\nsleep\u{0}1000\u{0}",
            &text(&o),
            f,
        );
        // A program that is gone before the runtime has exited: its
        // status is conmon's to collect (the runtime must not reap it).
        for _ in 0..5 {
            let o = p.runtime(&["exec", name, "sh", "-c", "exit 3"]);
            check("exec exit code", o.status.code() == Some(3), &text(&o), f);
        }
        let o = p.runtime(&["exec", "-t", name, "tty"]);
        check(
            "exec -t",
            o.status.success() && stdout(&o).starts_with("/dev/pts/"),
            &text(&o),
            f,
        );
        let o = p.runtime(&["pause", name]);
        check(
            "pause",
            o.status.success() && p.status_of(name) == "paused",
            &format!("{}\nstatus {}", text(&o), p.status_of(name)),
            f,
        );
        let o = p.runtime(&["unpause", name]);
        check(
            "unpause",
            o.status.success() && p.status_of(name) == "running",
            &text(&o),
            f,
        );
        let o = p.runtime(&["top", name]);
        check(
            "top",
            o.status.success() && stdout(&o).contains("sleep 1000"),
            &text(&o),
            f,
        );
        let t = Instant::now();
        let o = p.runtime(&["stop", "-t", "1", name]);
        check(
            "stop",
            o.status.success()
                && p.status_of(name) == "exited"
                && t.elapsed() < Duration::from_secs(10),
            &text(&o),
            f,
        );
        let o = p.podman(&["inspect", "--format", "{{.State.ExitCode}}", name]);
        check("stop's exit code", stdout(&o).trim() == "137", &text(&o), f);
        let o = p.runtime(&["start", name]);
        check(
            "start again",
            o.status.success() && p.status_of(name) == "running",
            &text(&o),
            f,
        );
        let o = p.runtime(&["kill", name]);
        let o2 = p.runtime(&["wait", name]);
        check(
            "kill",
            o.status.success() && stdout(&o2).trim() == "137",
            &format!("{}\n{}", text(&o), text(&o2)),
            f,
        );
        let o = p.runtime(&["rm", name]);
        check("rm", o.status.success(), &text(&o), f);
    }
}
