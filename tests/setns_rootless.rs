//! `ns.setns` and `examples/nsenter.lua` against a rootless container
//! (setgroups "deny", its own /proc), as root and as uid 65534.

mod common;

use common::{nsrun, run, As};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

both!(
    fn setns_enters_a_rootless_container(as_) {
        let mut names = vec![
            "target.setgroups",
            "join.all",
            "join.kinds",
            "join.handles",
            "join.paths",
            "gone.pid",
        ];
        if as_ == As::User {
            names.extend(["sealed.init", "sealed.nothing_joined"]);
        }
        run(as_, include_str!("recipes/setns_rootless.lua"), &[]).finished(&names);
    }
);

/// `unshare -r --pid --fork --mount-proc sleep 30` as `as_`.
fn rootless_container(as_: As) -> Child {
    let mut c = if as_ == As::User {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
        ]);
        c
    } else {
        Command::new("unshare")
    };
    c.args(["-r", "--pid", "--fork", "--mount-proc", "sleep", "30"])
        // unshare complains when its sleep is killed.
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The pid of the container's sleep, once it runs (None after 5 s).
fn sleep_in(t: &Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let children = format!("/proc/{0}/task/{0}/children", t.id());
    while Instant::now() < deadline {
        let kids = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(p) = kids.split_whitespace().next() {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                return p.parse().ok();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

both!(
    fn nsenter_example_enters_a_rootless_container(as_) {
        let mut t = rootless_container(as_);
        let Some(pid) = sleep_in(&t) else {
            let _ = t.kill();
            let _ = t.wait();
            panic!("the container did not start");
        };
        let user_ns = std::fs::metadata(format!("/proc/{pid}/ns/user")).unwrap().ino();
        let pid_s = pid.to_string();
        let d = nsrun(as_)
            .recipe(include_str!("../examples/nsenter.lua"))
            .args(&[
                &pid_s,
                "sh",
                "-c",
                "id -u; id -G; cat /proc/1/comm; readlink /proc/self/ns/user",
            ])
            .run();
        // SAFETY: kill has no memory-safety preconditions. The sleep is
        // the container's pid 1: unshare then exits.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = t.wait();
        d.success()
            .stdout_is(&format!("0\n0\nsleep\nuser:[{user_ns}]\n"));
    }
);
