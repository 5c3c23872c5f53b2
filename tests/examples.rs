//! The examples do what their comments say, as root and as uid 65534.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

// veth-pair.lua and pod.lua run socat; the tests give them a stand-in.
#[allow(dead_code)]
#[path = "common/socat.rs"]
mod socat;

/// A copy of the binary and the examples that uid 65534 can read.
fn stage() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("nsrun");
    std::fs::copy(BIN, &bin).unwrap();
    for e in [
        "hello.lua",
        "readonly-root.lua",
        "nsenter.lua",
        "veth-pair.lua",
        "pod.lua",
        "readonly-host.lua",
        "rootfs.lua",
        "shell.lua",
    ] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(e);
        std::fs::copy(src, dir.path().join(e)).unwrap();
        std::fs::set_permissions(dir.path().join(e), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

fn run(user: bool, dir: &Path, bin: &Path, args: &[&str]) -> Output {
    let once = || {
        let mut c = if user {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin);
            c
        } else {
            Command::new(bin)
        };
        // The directory first: its `socat` is the stand-in, where a test put one.
        c.current_dir(dir)
            .env("PATH", socat::path_with(dir))
            .args(args)
            .output()
    };
    // A freshly copied binary can be "busy" while another test thread that
    // forked during the copy has not exec'd yet: run again then (the exec
    // fails with ETXTBSY directly, or setpriv reports it on stderr).
    for _ in 0..20 {
        match once() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {}
            Err(e) => panic!("cannot run {}: {e}", bin.display()),
            Ok(out) if String::from_utf8_lossy(&out.stderr).contains("Text file busy") => {}
            Ok(out) => return out,
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    once().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn hello_shows_uid_0_its_hostname_and_only_its_processes() {
    let (dir, bin) = stage();
    for user in [false, true] {
        let o = run(user, dir.path(), &bin, &["hello.lua"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "user={user}: {out}{err}");
        assert!(out.starts_with("uid 0 (outside: "), "{out}");
        assert!(out.contains(", pid 1, hostname hello\n"), "{out}");
        let procs: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("processes"))
            .skip(1)
            .collect();
        assert_eq!(procs.len(), 1, "only PID 1 is visible: {out}");
        assert!(procs[0].trim_start().starts_with("1 "), "{out}");
        let outside = if user { "65534" } else { "0" };
        assert!(out.contains(&format!("(outside: {outside})")), "{out}");
    }
}

#[test]
fn readonly_root_refuses_writes_and_keeps_tmp_private() {
    let (dir, bin) = stage();
    for user in [false, true] {
        let o = run(
            user,
            dir.path(),
            &bin,
            &[
                "readonly-root.lua",
                "sh",
                "-c",
                "hostname; id -u; echo x > /tmp/f && cat /tmp/f; ls /tmp; touch /usr/nsrun-x",
            ],
        );
        let (out, err) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "touch fails: user={user}: {out}{err}"
        );
        assert_eq!(out, "sandbox\n0\nx\nf\n", "user={user}: {err}");
        assert!(err.contains("Read-only file system"), "{err}");
        assert!(!Path::new("/usr/nsrun-x").exists());
    }
}

#[test]
fn nsenter_joins_a_running_process() {
    let (dir, bin) = stage();
    for user in [false, true] {
        // A target in its own user, uts and net namespaces.
        let mut target = if user {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            c.arg("unshare");
            c
        } else {
            Command::new("unshare")
        };
        let mut t = target
            .args([
                "-Urun",
                "--fork",
                "sh",
                "-c",
                "hostname target-box; exec sleep 30",
            ])
            .spawn()
            .unwrap();
        // Wait for the hostname to be set inside.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let pid = loop {
            let kids =
                std::fs::read_to_string(format!("/proc/{}/task/{}/children", t.id(), t.id()))
                    .unwrap_or_default();
            if let Some(p) = kids.split_whitespace().next() {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                if comm.trim() == "sleep" {
                    break p.to_string();
                }
            }
            assert!(std::time::Instant::now() < deadline, "target did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let o = run(
            user,
            dir.path(),
            &bin,
            &["nsenter.lua", &pid, "sh", "-c", "hostname; id -u"],
        );
        let _ = t.kill();
        let _ = t.wait();
        // SAFETY: kill has no memory-safety preconditions. (Not kill(1):
        // procps may not be installed.)
        unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
        let (out, err) = text(&o);
        assert!(o.status.success(), "user={user}: {out}{err}");
        assert_eq!(out, "target-box\n0\n", "user={user}: {err}");
    }
}

/// The host's interfaces: the network examples must leave them alone.
fn host_links() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn veth_pair_carries_tcp_between_two_sandboxes() {
    let (dir, bin) = stage();
    socat::install(dir.path());
    let before = host_links();
    for user in [false, true] {
        let o = run(user, dir.path(), &bin, &["veth-pair.lua"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "user={user}: {out}{err}");
        assert!(
            out.contains("a: a0  up   10.200.0.1/24\n"),
            "user={user}: {out}"
        );
        assert!(
            out.ends_with("b got: hello from 10.200.0.1\n"),
            "user={user}: {out}{err}"
        );
    }
    assert_eq!(host_links(), before, "the host's interfaces changed");
}

#[test]
fn pod_shares_net_and_ipc() {
    let (dir, bin) = stage();
    socat::install(dir.path());
    for user in [false, true] {
        let o = run(user, dir.path(), &bin, &["pod.lua"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "user={user}: {out}{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "user={user}: {out}{err}");
        let server = lines[0].strip_prefix("server: ").unwrap();
        let client = lines[1].strip_prefix("client: ").unwrap();
        assert_eq!(server, client, "the two share net and ipc: {out}");
        assert_eq!(lines[2], "hello from pod on 127.0.0.1", "{out}");
    }
}

#[test]
fn readonly_host_and_rootfs() {
    let (dir, bin) = stage();
    for user in [false, true] {
        let o = run(user, dir.path(), &bin, &["readonly-host.lua"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "user={user}: {out}{err}");
        // The sandbox's default: the program is the caller, mapped to itself.
        let uid = if user { 65534 } else { 0 };
        assert!(out.contains(&format!("user {uid} on readonly\n")), "{out}");
        assert!(
            out.contains("network links: lo \n"),
            "no network but lo: {out}"
        );
        assert!(out.contains("home: 0 entries\n"), "home hidden: {out}");
        assert!(
            out.contains("/etc/nsrun-test': Read-only file system"),
            "{out}"
        );
        assert!(out.contains("private /tmp works: hello\n"), "{out}");

        let o = run(
            user,
            dir.path(),
            &bin,
            &[
                "rootfs.lua",
                "--",
                "sh",
                "-c",
                "id -u; ls /; cat /etc/hostname",
            ],
        );
        let (out, err) = text(&o);
        assert!(o.status.success(), "user={user}: {out}{err}");
        assert_eq!(
            out, "0\nbin\ndev\netc\nlib\nlib64\nproc\nroot\nsbin\ntmp\nusr\nrootfs\n",
            "{err}"
        );
    }
}

/// examples/shell.lua from a pipe (its terminal side is tests/tty.rs): a
/// command runs as uid 1000 in /home/user, a private home it may write,
/// with /usr read-only, and the command's status is nsrun's.
#[test]
fn shell_runs_a_command_in_its_sandbox() {
    let (dir, bin) = stage();
    for user in [false, true] {
        let script = "id -u; pwd; echo x > note && cat note; touch /usr/x; exit 5";
        let o = run(user, dir.path(), &bin, &["shell.lua", "sh", "-c", script]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(5), "user={user}: {out}{err}");
        assert!(
            out.starts_with("1000\n/home/user\nx\n"),
            "user={user}: {out}{err}"
        );
        assert!(
            err.contains("/usr/x': Read-only file system"),
            "user={user}: {err}"
        );
    }
}
