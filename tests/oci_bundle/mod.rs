//! What the `nsrun oci` tests share: a bundle made from Debian's
//! busybox-static with config.json from `nsrun oci spec` (`--rootless` for
//! the unprivileged user), the runtime run as either user, and the test
//! process as a child subreaper, as conmon and containerd's shim are.
//! Each test file adds the helpers only it needs; `both!` (root and uid
//! 65534) is common's.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{self, As};

pub const BUSYBOX: &str = "/bin/busybox";

/// busybox applets the bundles' programs and hooks call.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "id", "hostname", "sleep", "true", "touch", "grep", "ps",
    "readlink", "stat", "head", "wc", "uname", "mkdir", "chmod", "linux32", "linux64", "swapoff",
];

pub fn subreaper() {
    // SAFETY: prctl with an integer argument.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
}

pub struct Bundle {
    pub as_: As,
    pub dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle whose process is `args`, without a terminal.
    pub fn new(as_: As, args: &[&str]) -> Bundle {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt install busybox-static (scripts/deps.sh does)"
        );
        let b = Bundle {
            as_,
            dir: common::run_dir(as_),
        };
        let root = b.path().join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "run"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for c in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
        }
        chown_r(as_, b.path());
        let p = b.path().to_str().unwrap().to_string();
        let mut spec = vec!["spec", "--bundle", &p];
        if matches!(as_, As::User) {
            spec.push("--rootless");
        }
        let o = b.oci(&spec);
        assert!(o.status.success(), "spec: {}", text(&o));
        b.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        });
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_root(&self) -> PathBuf {
        self.path().join("state")
    }

    pub fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let p = self.path().join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&p, serde_json::to_string_pretty(&c).unwrap()).unwrap();
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644));
    }

    /// `nsrun oci --root STATE ARGS` as the bundle's user, in the bundle.
    pub fn command(&self, args: &[&str]) -> Command {
        let bin = common::binary(self.as_);
        let mut c = match self.as_ {
            As::Root => Command::new(&bin),
            As::User => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(&bin);
                c
            }
        };
        c.arg("oci")
            .arg("--root")
            .arg(self.state_root())
            .args(args)
            .current_dir(self.path())
            // An engine's variable: it must not reach the container.
            .env("_OCI_SYNCPIPE", "3")
            .stdin(Stdio::null());
        c
    }

    pub fn oci(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nsrun oci")
    }

    /// A command whose container keeps its stdio, as conmon's pipes:
    /// the file `name` here, so that nothing waits for the container's
    /// end to read them. Its success and what it wrote.
    pub fn to_file(&self, args: &[&str], name: &str) -> (bool, String) {
        let out = self.path().join(name);
        let f = std::fs::File::create(&out).unwrap();
        let st = self
            .command(args)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .expect("run nsrun oci");
        (
            st.success(),
            std::fs::read_to_string(&out).unwrap_or_default(),
        )
    }

    /// `create` (or exec --detach…) with `args`, files as stdio.
    pub fn create(&self, args: &[&str]) -> (bool, String) {
        self.to_file(args, "create.out")
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        let o = self.oci(&["state", id]);
        assert!(o.status.success(), "state: {}", text(&o));
        serde_json::from_slice(&o.stdout).expect("state is JSON")
    }

    pub fn pid(&self, id: &str) -> i32 {
        self.state(id)["pid"].as_i64().unwrap() as i32
    }
}

pub fn chown_r(as_: As, p: &Path) {
    let _ = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", as_.uid(), as_.gid()))
        .arg(p)
        .status();
}

pub fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}--- stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Wait for an adopted child: its exit code, 128 + the signal that killed it.
pub fn reap(pid: i32) -> i32 {
    let mut st = 0;
    // SAFETY: waiting for our own (adopted) child.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(r, pid, "waitpid({pid})");
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        128 + libc::WTERMSIG(st)
    }
}

pub fn ppid_of(pid: i32) -> i32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}
