//! The prototyping tools: the REPL (through a pseudo-terminal), --trace,
//! the man page and shell completions.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

struct Pty {
    master: std::fs::File,
    child: std::process::Child,
    seen: String,
}

impl Pty {
    fn start(home: &std::path::Path) -> Pty {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let child = Command::new(BIN)
            .env("HOME", home)
            .env_remove("XDG_STATE_HOME")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("start nsrun");
        let master = std::fs::File::from(pty.master);
        // SAFETY: making our end non-blocking.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Pty {
            master,
            child,
            seen: String::new(),
        }
    }

    /// Read until `want` shows up after what was already consumed.
    fn expect(&mut self, want: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.seen.find(want) {
                let upto = self.seen[..i + want.len()].to_string();
                self.seen = self.seen[i + want.len()..].to_string();
                return upto;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {want:?}; saw {:?}",
                self.seen
            );
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn line(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }
}

#[test]
fn repl_evaluates_prints_and_survives_errors() {
    let home = tempfile::tempdir().unwrap();
    let mut p = Pty::start(home.path());
    p.expect("> ");
    p.line("ns.getpid()");
    let out = p.expect("> ");
    let pid = p.child.id().to_string();
    assert!(
        out.contains(&pid),
        "ns.getpid() should print {pid}: {out:?}"
    );

    p.line("error('oops')");
    let out = p.expect("> ");
    assert!(out.contains("stdin:1: oops"), "the error is shown: {out:?}");

    // A statement over several lines, then its use.
    p.line("function twice(x)");
    p.expect(">> ");
    p.line("return 2 * x end");
    p.expect("> ");
    p.line("twice(21)");
    let out = p.expect("> ");
    assert!(out.contains("42"), "multi-line function works: {out:?}");

    // Still one thread: user namespaces stay possible from the prompt.
    p.line("#ns.readdir('/proc/self/task')");
    let out = p.expect("> ");
    assert!(
        out.contains("\r\n1\r\n"),
        "the REPL is single-threaded: {out:?}"
    );

    p.master.write_all(&[4]).unwrap(); // Ctrl-D
    let st = p.child.wait().unwrap();
    assert!(st.success(), "Ctrl-D leaves with 0: {st:?}");
    assert!(
        home.path().join(".local/state/nsrun/history").exists(),
        "history is saved"
    );
}

#[test]
fn trace_shows_the_proc_mount_and_stays_out_of_captured_stderr() {
    let out = Command::new(BIN)
        .args(["--trace", "-e"])
        .arg(
            r#"local ns = require "nsrun"
               local r = ns.run{argv = {"sh", "-c", "echo to-stderr >&2"},
                 namespaces = "user,mount,pid", setup = function()
                   ns.mount("proc", "/proc", "proc", "nosuid,nodev,noexec") end}
               io.write("captured:", r.stderr)"#,
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"mount("proc", "/proc", "proc", nosuid|nodev|noexec, NULL) = ok"#),
        "the trace shows the /proc mount: {stderr}"
    );
    assert!(stderr.contains("clone(user|pid|mount) = ok"), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("nsrun[1]: mount(")),
        "child operations are traced with the child's pid: {stderr}"
    );
    // The init closes the recipe's fds before it starts the program, the
    // trace's own excepted: its steps and the program's exec show too.
    assert!(
        stderr.contains("nsrun[1]: clone(vm|vfork) = ok"),
        "the init's start of the main process is traced: {stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("nsrun[2]: execve(")),
        "the main process's exec is traced: {stderr}"
    );
    assert_eq!(
        stdout, "captured:to-stderr\n",
        "no trace line in the captured stderr"
    );
}

#[test]
fn without_trace_nothing_is_logged() {
    let out = Command::new(BIN)
        .args(["-e", "require'nsrun'.unshare('user')"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn man_page_and_completions() {
    let out = Command::new(BIN).arg("man").output().unwrap();
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(man.contains(".TH nsrun 1"), "{man}");
    assert!(man.contains("\\-\\-trace"), "options are in the man page");
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        "XDG_STATE_HOME",
        ".SH FILES",
        ".SH \"THE LUA API\"",
    ] {
        assert!(man.contains(section), "man page lacks {section}");
    }
    // The words are commands wherever nsrun runs: a recipe named `man`
    // in the current directory runs as ./man.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("man"), "print('recipe') return 7").unwrap();
    let out = Command::new(BIN)
        .arg("man")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH nsrun 1"));
    let out = Command::new(BIN)
        .arg("./man")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "recipe\n");
    // `nsrun types`: the stubs an editor needs, as shipped.
    let out = Command::new(BIN).arg("types").output().unwrap();
    assert!(out.status.success());
    let stubs = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/lua/types/nsrun.lua")).unwrap();
    assert_eq!(out.stdout, stubs);
    for (shell, mark) in [
        ("bash", "_nsrun()"),
        ("zsh", "#compdef nsrun"),
        ("fish", "complete -c nsrun"),
    ] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains(mark), "{shell} completions: {s}");
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash, zsh, fish"));
}

fn plan_section(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let i = s.find("plan: ").expect("a plan is printed");
    s[i..].to_string()
}

#[test]
fn plan_of_hello_matches_the_golden_file_and_performs_nothing() {
    let root = env!("CARGO_MANIFEST_DIR");
    // The recipe compares every namespace id of the process before and
    // after running hello.lua, and the host's hostname: under --plan
    // nothing may have changed.
    let out = Command::new(BIN)
        .current_dir(root)
        .args(["--plan", "-e"])
        .arg(
            r#"local ns = require "nsrun"
               local kinds = {"user","mount","pid","uts","ipc","net","cgroup","time"}
               local before = {}
               for _, k in ipairs(kinds) do before[k] = ns.id(k) end
               local host = ns.read_file("/proc/sys/kernel/hostname")
               local st = dofile("examples/hello.lua")
               for _, k in ipairs(kinds) do
                 assert(ns.id(k) == before[k], k .. " namespace changed under --plan")
               end
               assert(ns.read_file("/proc/sys/kernel/hostname") == host, "hostname changed")
               assert(st.code == 0, "planned child status " .. st.code)
               print("unchanged")"#,
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("unchanged\n"), "{stdout}");
    let golden = std::fs::read_to_string(format!("{root}/tests/golden/hello.plan")).unwrap();
    assert_eq!(
        plan_section(&out.stderr),
        golden,
        "plan of examples/hello.lua as root"
    );
}

#[test]
fn plan_of_a_spawn_marks_parent_child_init_and_main() {
    let out = Command::new(BIN)
        .args(["--plan=json", "-e"])
        .arg(
            r#"local ns = require "nsrun"
               local r = ns.run{argv = {"id"}, namespaces = "user,mount,pid,uts",
                 hostname = "box", setup = function() ns.mount("tmpfs", "/tmp", "tmpfs") end}
               assert(r.code == 0)
               -- One line of its own ids, setgroups denied: the child maps itself.
               assert(ns.run{argv = {"true"}, namespaces = "user", setgroups = "deny"}.code == 0)"#,
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The plan has a stream of its own: stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    for want in [
        r#"{"step":1,"process":"parent","call":"clone(user|uts|pid|mount)"}"#,
        r#""process":"parent","call":"write(\"/proc/$CHILD/uid_map\""#,
        r#""process":"child","call":"sethostname(\"box\")"}"#,
        r#""process":"child","call":"mount(\"tmpfs\", \"/tmp\", \"tmpfs\", 0, NULL)"}"#,
        r#""process":"init","call":"supervise"#,
        r#""process":"main","call":"execve(\"id\", [\"id\"])"}"#,
        r#""process":"child","call":"write(\"/proc/self/uid_map\", \"0 0 1\\n\")"}"#,
        r#""process":"child","call":"write(\"/proc/self/setgroups\", \"deny\")"}"#,
    ] {
        assert!(last.contains(want), "missing {want} in {last}");
    }
    assert!(
        last.starts_with(r#"{"plan":["#) && last.ends_with("]}"),
        "{last}"
    );
}

#[test]
fn plan_as_an_unprivileged_user_needs_no_privilege() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("nsrun");
    std::fs::copy(BIN, &bin).unwrap();
    let script = dir.path().join("r.lua");
    std::fs::write(
        &script,
        r#"local ns = require "nsrun"
           ns.mount("tmpfs", "/mnt", "tmpfs")   -- would be EPERM for real
           ns.sethostname("nope")
           print("done")"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [dir.path(), bin.as_path(), script.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = retry_busy(|| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("--plan")
            .arg(&script)
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "done\n");
    assert!(
        stderr.starts_with("plan: 2 operations, none performed\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"parent  mount("tmpfs", "/mnt", "tmpfs", 0, NULL)"#),
        "{stderr}"
    );
}

/// A freshly copied binary can be "busy" for a moment: another test thread
/// that forked while the copy was open for writing still holds the fd until
/// its exec. Run again then.
fn retry_busy(mut f: impl FnMut() -> std::process::Output) -> std::process::Output {
    for _ in 0..20 {
        let out = f();
        if !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn plan_of_a_sandbox_runs_its_setup_in_place() {
    let out = Command::new(BIN)
        .args(["--plan", "-e"])
        .arg(
            r#"local sandbox = require "nsrun.sandbox"
               local r = sandbox.run{argv = {"true"}, binds = {{"/usr", "/usr", ro = true}},
                 tmpfs = {{"/tmp", size = "8M"}}, proc = "/proc", dev = "/dev", hostname = "box"}
               assert(r.code == 0)"#,
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        r#"parent  clone(user|cgroup|ipc|uts|net|pid|mount)"#,
        r#"child   mount("tmpfs", "/tmp", "tmpfs", nosuid|nodev, "mode=0755")"#,
        r#"child   pivot_root("/tmp", "/tmp/oldroot")"#,
        // Inside the new root, through fds it resolved (ns.root).
        r#"child   open_tree(-100, "/oldroot/usr", 0x88001)"#,
        r#"child   openat2(-1, "/usr", 0o10000000, in_root)"#,
        r#"child   fsconfig(-1, size=8388608)"#,
        r#"child   fsopen("devpts")"#,
        r#"child   pivot_root(".", ".")"#,
        r#"main    execve("true", ["true"])"#,
    ] {
        let plan = String::from_utf8_lossy(&out.stderr);
        assert!(plan.contains(want), "missing {want} in\n{plan}");
    }
}
