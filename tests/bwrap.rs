//! `nsrun bwrap` side by side with Debian's `bwrap` (0.8): the same command
//! line under both, as root and as uid 65534, comparing what the program
//! inside sees (ids, maps, namespaces, capabilities, environment, cwd,
//! files, mounts) and what the caller gets back (exit status, messages, the
//! info-fd and json-status-fd documents).
//!
//! Each run gets its own directory `$D` (bound into the sandbox at the same
//! path); outputs are compared after replacing that path with `$D`,
//! namespace ids with `KIND:host` or `KIND:new` (against the test process's
//! own), and pids and namespace ids in the info/status documents with
//! `N` (their keys and order are compared). Known, intended
//! differences are left out of what the scripts print: the `Seccomp` lines
//! of /proc/self/status (nsrun adds a TIOCSTI filter), PID 1's exe, comm
//! and cmdline, the session keyring. `--remount-ro` is recursive in nsrun
//! and not in bubblewrap: tested as that, not as equality.
//!
//! Options bubblewrap 0.8 lacks (`--argv0`, `--level-prefix`, the overlays)
//! and its behaviour changed since (`--symlink` over the same link) are
//! tested against bubblewrap 0.11's documented behaviour.
//!
//! Both tools are run with their user's ids set in the forked child
//! (setgroups, setresgid, setresuid: what `setpriv --reuid --regid
//! --clear-groups` does) so that argv[0] can be chosen: `bwrap` prints it
//! in its usage line.
//!
//! `BWRAP_SELF_CHECK=1 cargo test --test bwrap` runs Debian's bwrap on both
//! sides, a check of the tests themselves: all pass but those of nsrun-only
//! behaviour (0.11 options, the recursive --remount-ro, --symlink over the
//! same link).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{As, Group, NOBODY};

// ---------------------------------------------------------------------------
// The tools.

/// Which implementation runs a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    /// Debian's /usr/bin/bwrap, argv[0] "bwrap".
    Bwrap,
    /// `nsrun bwrap ...`.
    Nsrun,
    /// A symbolic link named `bwrap` to the nsrun binary.
    Link,
}

/// A directory holding `bwrap`, a link to the (readable) nsrun copy.
fn link_path() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let d = common::base().join("bwlink");
        std::fs::create_dir(&d).expect("create the link directory");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let l = d.join("bwrap");
        std::os::unix::fs::symlink(common::base().join("nsrun"), &l).expect("link bwrap");
        l
    })
    .clone()
}

/// The host's namespaces as `readlink /proc/self/ns/*` gives them.
fn host_ns() -> &'static Vec<String> {
    static NS: OnceLock<Vec<String>> = OnceLock::new();
    NS.get_or_init(|| {
        std::fs::read_dir("/proc/self/ns")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Run directories.

/// A fresh directory under the test base, owned by the run's user, removed
/// on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(as_: As) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = common::base().join(format!("bw-{:05}", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&p).expect("create a run directory");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&p, Some(as_.uid()), Some(as_.gid())).unwrap();
        Dir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn s(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // Read-only modes from --perms/--chmod do not stop root.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// A command line and its run.

/// The files and dirs every script finds: a minimal root from the host's
/// /usr and /etc, a fresh /proc and /dev, and the run directory.
const ROOT: &[&str] = &[
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--symlink",
    "usr/sbin",
    "/sbin",
    "--ro-bind",
    "/etc",
    "/etc",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--bind",
    "$D",
    "$D",
];

/// Prints each mount as `POINT FSTYPE ro|rw` (the per-mount flag).
const MOUNTS: &str = r#"awk '{for(i=7;i<=NF;i++) if($i=="-") break; split($6,o,","); print "mount", $5, $(i+1), o[1]}' /proc/self/mountinfo"#;

/// Prints each namespace as `NAME LINK`.
const NS: &str = r#"for f in /proc/self/ns/*; do echo "ns ${f##*/} $(readlink $f)"; done"#;

/// Prints the ids, maps, capabilities and no_new_privs.
const IDENTITY: &str = r#"id; echo uid_map; cat /proc/self/uid_map; echo gid_map; cat /proc/self/gid_map; echo "setgroups $(cat /proc/self/setgroups)"; grep -E '^(Cap|NoNewPrivs)' /proc/self/status"#;

/// Lists a tree: path, type, mode, owner, group, size (for files), link
/// target.
fn tree(paths: &str) -> String {
    format!(
        r#"find {paths} -printf 'file %p %y %m %u %g %l\n' | sort; for f in $(find {paths} -type f); do echo "size $f $(stat -c %s $f)"; done"#
    )
}

#[derive(Clone, Default)]
struct Cmd {
    /// The arguments after the tool name; `$D` is the run directory.
    args: Vec<String>,
    /// Data the tool reads from fd N (a pipe written then closed).
    inputs: Vec<(i32, Vec<u8>)>,
    /// Fds the tool writes to (pipes read to their end).
    outputs: Vec<i32>,
    /// The environment (besides PATH and HOME=$D); `$D` expands.
    env: Vec<(String, String)>,
    /// The cwd (default `$D`).
    cwd: Option<String>,
    /// Files to make in the run directory before the run: (name, content);
    /// a name ending in `/` is a directory.
    files: Vec<(String, String)>,
    /// Symbolic links to make in the run directory: (name, target).
    links: Vec<(String, String)>,
}

fn cmd(args: &[&str]) -> Cmd {
    Cmd {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Cmd::default()
    }
}

/// `ROOT`, then `opts`, then `sh -c script`.
fn sh(opts: &[&str], script: &str) -> Cmd {
    let mut a: Vec<&str> = ROOT.to_vec();
    a.extend_from_slice(opts);
    a.extend_from_slice(&["sh", "-c", script]);
    cmd(&a)
}

impl Cmd {
    fn input(mut self, fd: i32, data: &[u8]) -> Self {
        self.inputs.push((fd, data.to_vec()));
        self
    }
    fn output(mut self, fd: i32) -> Self {
        self.outputs.push(fd);
        self
    }
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    fn cwd(mut self, d: &str) -> Self {
        self.cwd = Some(d.into());
        self
    }
    fn file(mut self, name: &str, content: &str) -> Self {
        self.files.push((name.into(), content.into()));
        self
    }
    fn link(mut self, name: &str, target: &str) -> Self {
        self.links.push((name.into(), target.into()));
        self
    }
}

/// One run's result, normalised.
struct Ran {
    tool: Tool,
    what: String,
    /// `exit N` or `signal N`.
    status: String,
    stdout: String,
    stderr: String,
    /// What the tool wrote to each output fd.
    fds: BTreeMap<i32, String>,
    dir: Dir,
}

impl Ran {
    fn report(&self) -> String {
        format!(
            "--- {:?}: {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}--- fds: {:?}\n---",
            self.tool, self.what, self.status, self.stdout, self.stderr, self.fds
        )
    }
    #[track_caller]
    fn assert_status(&self, s: &str) -> &Self {
        assert_eq!(self.status, s, "status\n{}", self.report());
        self
    }
    #[track_caller]
    fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n{}",
            self.report()
        );
        self
    }
    #[track_caller]
    fn stdout_lacks(&self, s: &str) -> &Self {
        assert!(
            !self.stdout.contains(s),
            "stdout has {s:?}\n{}",
            self.report()
        );
        self
    }
    #[track_caller]
    fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n{}",
            self.report()
        );
        self
    }
}

/// Replace namespace links (`KIND:[N]`) by `KIND:host` when the test
/// process has that one, else `KIND:new`.
fn norm_ns(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(":[") {
        let Some(j) = rest[i..].find(']') else { break };
        let digits = &rest[i + 2..i + j];
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |k| k + 1);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&rest[..i + 2]);
            rest = &rest[i + 2..];
            continue;
        }
        let link = &rest[start..i + j + 1];
        let kind = &rest[start..i];
        out.push_str(&rest[..start]);
        if host_ns().iter().any(|h| h == link) {
            out.push_str(&format!("{kind}:host"));
        } else {
            out.push_str(&format!("{kind}:new"));
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// Numbers of the info/status documents that change from run to run.
fn norm_json(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    // `"KEY": NUMBER` where KEY is child-pid or ends in -namespace.
    while let Some(i) = rest.find("\": ") {
        let key_start = rest[..i].rfind('"').map_or(0, |k| k + 1);
        let key = &rest[key_start..i];
        let after = &rest[i + 3..];
        let n = after.bytes().take_while(|b| b.is_ascii_digit()).count();
        out.push_str(&rest[..i + 3]);
        if n > 0 && (key == "child-pid" || key.ends_with("-namespace")) {
            out.push('N');
            rest = &after[n..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn drop_lines(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("Seccomp:") && !l.starts_with("Seccomp_filters:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A started tool: wait for it with [`Started::wait`].
struct Started {
    tool: Tool,
    what: String,
    child: std::process::Child,
    pgid: i32,
    out: Option<std::thread::JoinHandle<Vec<u8>>>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
    readers: Vec<(i32, std::thread::JoinHandle<Vec<u8>>)>,
    dir: Option<Dir>,
    timeout: Duration,
}

/// Live processes of process group `pgid`, or working in `dir` (a
/// sandbox's program may have left the group: --new-session).
fn live(pgid: i32, dir: &Path) -> Vec<(i32, String)> {
    let mut v = common::live_where(Group::Process, pgid);
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z'));
        if cwd.starts_with(dir) && !zombie && !v.iter().any(|(p, _)| *p == pid) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            v.push((pid, comm.trim().to_string()));
        }
    }
    v
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new fds we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Start `c` with `tool` as `as_`; `raw` are more fds to hand over (target
/// number, the caller's fd), which the caller keeps.
fn start(tool: Tool, as_: As, c: &Cmd, raw: &[(i32, RawFd)]) -> Started {
    let dir = Dir::new(as_);
    let d = dir.s();
    let x = |s: &str| s.replace("$D", &d);
    for (name, content) in &c.files {
        let p = dir.path().join(name);
        if let Some(dname) = name.strip_suffix('/') {
            std::fs::create_dir_all(dir.path().join(dname)).unwrap();
        } else {
            std::fs::write(&p, content).unwrap();
        }
        std::os::unix::fs::chown(&p, Some(as_.uid()), Some(as_.gid())).unwrap();
    }
    // BWRAP_SELF_CHECK=1 runs bwrap on both sides: a check of the tests
    // themselves (those of nsrun-only behaviour then fail, as they must).
    let self_check = std::env::var_os("BWRAP_SELF_CHECK").is_some();
    for (name, target) in &c.links {
        std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
    }
    let (bin, argv0) = match tool {
        Tool::Bwrap => (PathBuf::from("/usr/bin/bwrap"), "bwrap"),
        _ if self_check => (PathBuf::from("/usr/bin/bwrap"), "bwrap"),
        Tool::Nsrun => (common::binary(as_), "nsrun"),
        Tool::Link => (link_path(), "bwrap"),
    };
    let mut command = Command::new(&bin);
    command.arg0(argv0);
    if tool == Tool::Nsrun && !self_check {
        command.arg("bwrap");
    }
    command.args(c.args.iter().map(|a| x(a)));
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", &d)
        .envs(c.env.iter().map(|(k, v)| (k, x(v))))
        .current_dir(x(c.cwd.as_deref().unwrap_or("$D")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);

    // The fds to hand over: (source, target).
    let mut keep: Vec<OwnedFd> = Vec::new();
    let mut pairs: Vec<(RawFd, i32)> = raw.iter().map(|&(t, s)| (s, t)).collect();
    let mut writers = Vec::new();
    for (fd, data) in &c.inputs {
        let (r, w) = pipe();
        pairs.push((r.as_raw_fd(), *fd));
        keep.push(r);
        let data = data.clone();
        writers.push(move || {
            let mut w = std::fs::File::from(w);
            let _ = w.write_all(&data);
        });
    }
    let mut read_ends = Vec::new();
    for fd in &c.outputs {
        let (r, w) = pipe();
        pairs.push((w.as_raw_fd(), *fd));
        keep.push(w);
        read_ends.push((*fd, r));
    }
    assert!(pairs.len() <= 16, "too many fds");
    let mut srcs = [0i32; 16];
    let mut dsts = [0i32; 16];
    for (i, (s, t)) in pairs.iter().enumerate() {
        srcs[i] = *s;
        dsts[i] = *t;
    }
    let n = pairs.len();
    let user = as_ == As::User;
    // SAFETY: only async-signal-safe calls on stack data in the child.
    unsafe {
        command.pre_exec(move || {
            let err = std::io::Error::last_os_error;
            // Out of the way first, so that no source is a target.
            let mut tmp = [0i32; 16];
            for i in 0..n {
                tmp[i] = libc::fcntl(srcs[i], libc::F_DUPFD_CLOEXEC, 200);
                if tmp[i] < 0 {
                    return Err(err());
                }
            }
            for i in 0..n {
                // dup2 leaves the new fd without FD_CLOEXEC: inherited.
                if libc::dup2(tmp[i], dsts[i]) < 0 {
                    return Err(err());
                }
                libc::close(tmp[i]);
            }
            if user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(NOBODY, NOBODY, NOBODY) != 0
                    || libc::setresuid(NOBODY, NOBODY, NOBODY) != 0)
            {
                return Err(err());
            }
            Ok(())
        });
    }
    let what = format!("{} as {}: {:?}", bin.display(), as_.name(), command);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    drop(keep);
    for w in writers {
        std::thread::spawn(w);
    }
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let readers = read_ends
        .into_iter()
        .map(|(fd, r)| (fd, reader(Box::new(std::fs::File::from(r)))))
        .collect();
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    Started {
        tool,
        what,
        pgid: child.id() as i32,
        child,
        out: Some(out),
        err: Some(err),
        readers,
        dir: Some(dir),
        timeout: Duration::from_secs(30),
    }
}

impl Started {
    fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Wait for `name` to appear in the run directory.
    fn wait_for(&mut self, name: &str) {
        let p = self.dir().join(name);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !p.exists() {
            if let Ok(Some(_)) = self.child.try_wait() {
                let r = self.finish();
                panic!("{name} never appeared\n{}", r.report());
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("timed out waiting for {name}: {}", self.what);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        // SAFETY: the process group we created.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    fn finish(&mut self) -> Ran {
        let st = self.child.wait().unwrap();
        let status = match (st.code(), st.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => format!("{st}"),
        };
        let dir = self.dir.take().unwrap();
        let d = dir.s();
        let norm = |b: Vec<u8>| {
            let s = String::from_utf8_lossy(&b).replace(&d, "$D");
            drop_lines(&norm_ns(&s))
        };
        let stdout = norm(self.out.take().unwrap().join().unwrap_or_default());
        let stderr = norm(self.err.take().unwrap().join().unwrap_or_default());
        let fds = std::mem::take(&mut self.readers)
            .into_iter()
            .map(|(fd, h)| {
                let b = h.join().unwrap_or_default();
                (fd, norm_json(&String::from_utf8_lossy(&b)))
            })
            .collect();
        Ran {
            tool: self.tool,
            what: self.what.clone(),
            status,
            stdout,
            stderr,
            fds,
            dir,
        }
    }

    /// Wait for the end (killing it after its timeout), check that nothing
    /// is left in its process group, and return what it did.
    fn wait(mut self) -> Ran {
        let deadline = Instant::now() + self.timeout;
        while self.running() {
            if Instant::now() > deadline {
                self.kill();
                let r = self.finish();
                panic!("timed out, killed\n{}", r.report());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let dir = self.dir().to_path_buf();
        let mut left = live(self.pgid, &dir);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = live(self.pgid, &dir);
        }
        // SAFETY: the process group we created, and processes found in
        // our run directory.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
            for (pid, _) in &left {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        let r = self.finish();
        assert!(
            left.is_empty(),
            "left processes behind: {left:?}\n{}",
            r.report()
        );
        r
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.dir.is_some() {
            self.kill();
        }
    }
}

fn run(tool: Tool, as_: As, c: &Cmd) -> Ran {
    start(tool, as_, c, &[]).wait()
}

/// Run `c` under bwrap and under `nsrun bwrap`.
fn side_by_side(as_: As, c: &Cmd) -> (Ran, Ran) {
    (run(Tool::Bwrap, as_, c), run(Tool::Nsrun, as_, c))
}

/// How two runs differ, if they do.
fn differs(b: &Ran, n: &Ran) -> Option<String> {
    if b.status == n.status && b.stdout == n.stdout && b.stderr == n.stderr && b.fds == n.fds {
        return None;
    }
    Some(format!(
        "{:?} and {:?} differ\nstdout diff (- first, + second):\n{}stderr diff:\n{}\n{}\n{}",
        b.tool,
        n.tool,
        line_diff(&b.stdout, &n.stdout),
        line_diff(&b.stderr, &n.stderr),
        b.report(),
        n.report()
    ))
}

/// Assert both runs look the same to the caller and the program.
#[track_caller]
fn assert_same(b: &Ran, n: &Ran) {
    if let Some(d) = differs(b, n) {
        panic!("{d}");
    }
}

/// Run `c` both ways, assert the same, and return bwrap's run for more
/// checks (that the script showed what it is meant to).
#[track_caller]
fn same(as_: As, c: &Cmd) -> Ran {
    let (b, n) = side_by_side(as_, c);
    assert_same(&b, &n);
    b
}

/// Run `c` both ways and assert both fail as bubblewrap does: exit 1,
/// nothing on stdout, a `bwrap: ` message naming `key` (the wording may
/// differ: the exact messages are compared only for the command line's own
/// errors, in `errors`).
#[track_caller]
fn same_failure(as_: As, c: &Cmd, key: &str) {
    let (b, n) = side_by_side(as_, c);
    for r in [&b, &n] {
        let ok = r.status == "exit 1"
            && r.stdout.is_empty()
            && r.stderr.starts_with("bwrap: ")
            && r.stderr.contains(key);
        assert!(
            ok,
            "expected a failure naming {key:?} from both\n{}\n{}",
            b.report(),
            n.report()
        );
    }
}

/// Differences over several command lines, reported together at the end
/// (one failing variant does not hide the others).
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    /// Run `c` both ways, note any difference, return bwrap's run.
    fn same(&mut self, as_: As, c: &Cmd) -> Ran {
        let (b, n) = side_by_side(as_, c);
        if let Some(d) = differs(&b, &n) {
            let opts: Vec<&str> = c.args.iter().skip(ROOT.len()).map(|s| s.as_str()).collect();
            self.0.push(format!("=== {opts:?}\n{d}"));
        }
        b
    }

    #[track_caller]
    fn done(self) {
        assert!(
            self.0.is_empty(),
            "{} command line(s) differ:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// A crude diff: lines only in one side, in order.
fn line_diff(a: &str, b: &str) -> String {
    let al: Vec<&str> = a.lines().collect();
    let bl: Vec<&str> = b.lines().collect();
    let mut s = String::new();
    for l in &al {
        if !bl.contains(l) {
            s.push_str(&format!("- {l}\n"));
        }
    }
    for l in &bl {
        if !al.contains(l) {
            s.push_str(&format!("+ {l}\n"));
        }
    }
    if s.is_empty() && a != b {
        s.push_str("(same lines, different order or count)\n");
    }
    s
}

// ---------------------------------------------------------------------------
// The command line itself.

both!(fn help_and_usage(as_) {
    // --help: the usage line on stdout, exit 0.
    let b = run(Tool::Bwrap, as_, &cmd(&["--help"]));
    let l = run(Tool::Link, as_, &cmd(&["--help"]));
    let n = run(Tool::Nsrun, as_, &cmd(&["--help"]));
    let usage = "usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]";
    for r in [&b, &l] {
        r.assert_status("exit 0");
        assert_eq!(r.stdout.lines().next(), Some(usage), "{}", r.report());
    }
    n.assert_status("exit 0");
    let first = n.stdout.lines().next().unwrap_or("");
    assert!(
        first.starts_with("usage: ") && first.ends_with(" [OPTIONS...] [--] COMMAND [ARGS...]"),
        "{}",
        n.report()
    );
    // The 0.11 options are in the help.
    for o in ["--argv0", "--level-prefix", "--overlay-src", "--tmp-overlay", "--clearenv", "--bind-fd"] {
        n.stdout_has(o);
    }
});

both!(fn errors(as_) {
    // (arguments, first stderr line bwrap gives)
    let cases: &[(&[&str], &str)] = &[
        (&["--foo", "true"], "bwrap: Unknown option --foo"),
        (&["--bind", "/x"], "bwrap: --bind takes two arguments"),
        (&["--unshare-all"], "usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]"),
        (&[], "usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]"),
        (&["--hostname", "x", "true"], "bwrap: Specifying --hostname requires --unshare-uts"),
        (&["--as-pid-1", "true"], "bwrap: Specifying --as-pid-1 requires --unshare-pid"),
        (&["--cap-add", "CAP_FOO", "true"], "bwrap: unknown cap: CAP_FOO"),
        (&["--perms", "999", "--dir", "/d", "true"], "bwrap: --perms takes an octal argument <= 07777"),
    ];
    for (args, first) in cases {
        let c = cmd(args);
        let b = run(Tool::Bwrap, as_, &c);
        b.assert_status("exit 1");
        assert_eq!(b.stderr.lines().next(), Some(*first), "{}", b.report());
        // The link is bwrap to the letter (same argv[0]).
        let l = run(Tool::Link, as_, &c);
        l.assert_status("exit 1");
        assert_eq!(l.stderr.lines().next(), Some(*first), "{}", l.report());
        assert_eq!(l.stdout, "", "{}", l.report());
        // Under `nsrun bwrap`, same messages (the usage line may name nsrun).
        let n = run(Tool::Nsrun, as_, &c);
        n.assert_status("exit 1");
        let nf = n.stderr.lines().next().unwrap_or("");
        if first.starts_with("usage: ") {
            assert!(nf.starts_with("usage: "), "{}", n.report());
        } else {
            assert_eq!(nf, *first, "{}", n.report());
        }
    }
});

both!(fn exit_status(as_) {
    let mut ck = Checks::default();
    for opts in [&[][..], &["--unshare-pid"], &["--unshare-all"], &["--unshare-pid", "--as-pid-1"]] {
        ck.same(as_, &sh(opts, "exit 7")).assert_status("exit 7");
        // As pid 1, the shell ignores a signal it has no handler for.
        let want = if opts.contains(&"--as-pid-1") { "exit 0" } else { "exit 143" };
        ck.same(as_, &sh(opts, "kill -TERM $$")).assert_status(want);
        ck.same(as_, &sh(opts, "echo out; echo err >&2; exit 0"))
            .assert_status("exit 0")
            .stdout_has("out");
    }
    let mut a = ROOT.to_vec();
    a.push("/nonexistent");
    same_failure(as_, &cmd(&a), "/nonexistent: No such file or directory");
    ck.done();
});

// ---------------------------------------------------------------------------
// Identity and namespaces.

both!(fn identity_and_namespaces(as_) {
    let mut ck = Checks::default();
    let variants: &[&[&str]] = &[
        &[],
        &["--unshare-user"],
        &["--unshare-user-try"],
        &["--unshare-ipc"],
        &["--unshare-pid"],
        &["--unshare-net"],
        &["--unshare-uts"],
        &["--unshare-cgroup"],
        &["--unshare-cgroup-try"],
        &["--unshare-all"],
        &["--unshare-all", "--share-net"],
        &["--unshare-user", "--uid", "5", "--gid", "6"],
        &["--unshare-all", "--uid", "0", "--gid", "0"],
        &["--unshare-user", "--uid", "1000"],
    ];
    let script = format!("{IDENTITY}; {NS}");
    for v in variants {
        let b = ck.same(as_, &sh(v, &script));
        b.assert_status("exit 0").stdout_has("uid_map");
        // The scripts do tell the variants apart.
        if v.contains(&"--unshare-net") {
            b.stdout_has("ns net net:new");
        }
        if *v == ["--unshare-all", "--share-net"] {
            b.stdout_has("ns net net:host").stdout_has("ns uts uts:new");
        }
        if v.contains(&"5") {
            b.stdout_has("uid=5(games) gid=6(disk)");
        }
    }
    ck.done();
});

both!(fn hostname(as_) {
    same(as_, &sh(&["--unshare-uts", "--hostname", "sandbox-x"], "cat /proc/sys/kernel/hostname; uname -n"))
        .stdout_has("sandbox-x\nsandbox-x\n");
    same(as_, &sh(&["--unshare-all", "--hostname", "h2"], "uname -n")).stdout_has("h2");
});

// ---------------------------------------------------------------------------
// Environment and cwd.

/// `env` as the command itself (no shell adding variables), sorted.
fn env_cmd(opts: &[&str]) -> Cmd {
    let mut a: Vec<&str> = ROOT.to_vec();
    a.extend_from_slice(opts);
    a.push("env");
    cmd(&a).env("FOO", "foo").env("BAR", "bar")
}

fn sorted(s: &str) -> String {
    let mut l: Vec<&str> = s.lines().collect();
    l.sort();
    l.join("\n")
}

#[track_caller]
fn same_env(as_: As, c: &Cmd) -> String {
    let (b, n) = side_by_side(as_, c);
    assert_eq!(b.status, "exit 0", "{}", b.report());
    assert_eq!(
        sorted(&b.stdout),
        sorted(&n.stdout),
        "env differs\n{}\n{}",
        b.report(),
        n.report()
    );
    assert_eq!(n.status, "exit 0", "{}", n.report());
    assert_eq!(b.stderr, n.stderr, "{}\n{}", b.report(), n.report());
    sorted(&b.stdout)
}

both!(fn env_and_cwd(as_) {
    // The caller's cwd exists inside: kept, PWD set.
    let e = same_env(as_, &env_cmd(&[]));
    assert!(e.contains("PWD=$D") && e.contains("FOO=foo"), "{e}");
    // --chdir.
    assert!(same_env(as_, &env_cmd(&["--chdir", "/usr/bin"])).contains("PWD=/usr/bin"));
    // The cwd is not inside: $HOME.
    let e = same_env(as_, &env_cmd(&[]).cwd("/var").env("HOME", "$D"));
    assert!(e.contains("PWD=$D"), "{e}");
    // ... the $HOME --setenv gives.
    let e = same_env(as_, &env_cmd(&["--setenv", "HOME", "/usr"]).cwd("/var"));
    assert!(e.contains("PWD=/usr"), "{e}");
    // Neither cwd nor $HOME inside: /.
    let e = same_env(as_, &env_cmd(&[]).cwd("/var").env("HOME", "/root/nowhere"));
    assert!(e.contains("PWD=/\n") || e.ends_with("PWD=/"), "{e}");
    // A stale $PWD is not used. (Where $PWD names the cwd through a
    // symbolic link, bwrap 0.8 gives the canonical path and newer ones may
    // keep $PWD's spelling: not tested.)
    let e = same_env(as_, &env_cmd(&[]).file("real/", "").cwd("$D/real").env("PWD", "/usr"));
    assert!(e.contains("PWD=$D/real"), "{e}");
    // --setenv / --unsetenv, in order.
    let e = same_env(as_, &env_cmd(&["--setenv", "A", "1", "--unsetenv", "FOO", "--setenv", "FOO", "2", "--unsetenv", "BAR"]));
    assert!(e.contains("A=1") && e.contains("FOO=2") && !e.contains("BAR="), "{e}");
    let e = same_env(as_, &env_cmd(&["--setenv", "A", "1", "--unsetenv", "A"]));
    assert!(!e.contains("A=1"), "{e}");
    // The program's cwd, seen by the shell.
    same(as_, &sh(&["--chdir", "/etc"], "pwd; echo $PWD")).stdout_has("/etc\n/etc\n");
    same(as_, &sh(&[], "pwd")).stdout_has("$D\n");
    // A --chdir that does not exist.
    same_failure(as_, &sh(&["--chdir", "/nowhere"], "pwd"), "/nowhere");
});

both!(fn clearenv(as_) {
    // "Unset all environment variables, except for PWD and any that are
    // subsequently set by --setenv": it acts where it stands, and before
    // the cwd is chosen (no $HOME left to fall back to).
    let e = same_env(as_, &env_cmd(&["--setenv", "B", "2", "--clearenv", "--setenv", "A", "1"]));
    assert_eq!(e, "A=1\nPWD=$D");
    let e = same_env(as_, &env_cmd(&["--clearenv"]).cwd("/var"));
    assert_eq!(e, "PWD=/");
    let e = same_env(as_, &env_cmd(&["--clearenv", "--setenv", "HOME", "/usr"]).cwd("/var"));
    assert_eq!(e, "HOME=/usr\nPWD=/usr");
});

// ---------------------------------------------------------------------------
// Mounts and files.

both!(fn binds(as_) {
    let script = format!(
        "{MOUNTS}; {}; cat /b/a /r/a; touch /b/w && echo b-writable; touch /r/w; touch /db/x; echo /n: $(stat -c %t,%T /n); ls /m /m2 /m3 2>&1; true",
        tree("/b /r /viasl")
    );
    let c = sh(
        &[
            "--bind", "$D/src", "/b",
            "--ro-bind", "$D/src", "/r",
            "--dev-bind", "/dev/null", "/n",
            "--dev-bind", "$D/src", "/db",
            "--bind-try", "$D/missing", "/m",
            "--ro-bind-try", "$D/missing", "/m2",
            "--dev-bind-try", "$D/missing", "/m3",
            "--ro-bind-try", "$D/src/sub", "/r2",
            "--ro-bind", "$D/srclink", "/viasl",
        ],
        &script,
    )
    .file("src/", "")
    .file("src/sub/", "")
    .file("src/a", "hello\n")
    .link("srclink", "src");
    same(as_, &c)
        .stdout_has("mount /viasl ext4 ro")
        .stdout_has("mount /r ext4 ro")
        .stdout_has("b-writable")
        .stdout_has("mount /r2 ")
        .stdout_has("/n: 1,3");
    // A missing source without -try.
    for o in ["--bind", "--ro-bind", "--dev-bind"] {
        same_failure(as_, &sh(&[o, "$D/missing", "/m"], "true"), "$D/missing");
    }
    // Binds in the order given: a tmpfs after a bind hides it, before it
    // does not.
    let script = format!("{MOUNTS}; echo \"in t: $(ls /t)\"; ls /t/x");
    let c = sh(&["--bind", "$D/src", "/t/x", "--tmpfs", "/t"], &script)
        .file("src/", "")
        .file("src/f", "");
    same(as_, &c).stdout_has("in t: \n").assert_status("exit 2");
    let c = sh(&["--tmpfs", "/t", "--bind", "$D/src", "/t/x"], &script)
        .file("src/", "")
        .file("src/f", "");
    same(as_, &c).stdout_has("in t: x\nf\n").assert_status("exit 0");
});

both!(fn bind_fd(as_) {
    // --bind-fd / --ro-bind-fd with an fd of a host directory.
    for o in ["--bind-fd", "--ro-bind-fd"] {
        let mut ran = Vec::new();
        for tool in [Tool::Bwrap, Tool::Nsrun] {
            let f = std::fs::File::open("/usr/share/common-licenses").unwrap();
            let c = sh(&[o, "40", "/fd"], &format!("{MOUNTS}; ls /fd | head -3; touch /fd/w; true"));
            ran.push(start(tool, as_, &c, &[(40, f.as_raw_fd())]).wait());
        }
        assert_same(&ran[0], &ran[1]);
        ran[0].stdout_has("mount /fd ext4 ").stdout_has("Apache");
    }
});

both!(fn remount_ro(as_) {
    // bwrap's --remount-ro is not recursive: the tmpfs under it stays
    // writable. nsrun's is, by design; both make the target read-only.
    let c = sh(
        &["--bind", "$D/src", "/x", "--tmpfs", "/x/t", "--remount-ro", "/x"],
        &format!("{MOUNTS}; touch /x/f 2>/dev/null && echo x-rw || echo x-ro; touch /x/t/f 2>/dev/null && echo t-rw || echo t-ro"),
    )
    .file("src/", "");
    let (b, n) = side_by_side(as_, &c);
    b.assert_status("exit 0")
        .stdout_has("mount /x ext4 ro")
        .stdout_has("mount /x/t tmpfs rw")
        .stdout_has("x-ro\nt-rw");
    n.assert_status("exit 0")
        .stdout_has("mount /x ext4 ro")
        .stdout_has("mount /x/t tmpfs ro")
        .stdout_has("x-ro\nt-ro");
    // On a path without mounts below, the same.
    let c = sh(&["--bind", "$D/src", "/x", "--remount-ro", "/x"], &format!("{MOUNTS}; touch /x/f"))
        .file("src/", "");
    same(as_, &c).stdout_has("mount /x ext4 ro").assert_status("exit 1");
});

both!(fn proc_dev(as_) {
    let mut ck = Checks::default();
    // The base root has --proc /proc and --dev /dev: compare all mounts
    // and the whole of /dev.
    let script = format!(
        "{MOUNTS}; find /dev -printf '%p %y %m %l\\n' | sort; ls /proc/self/ > /dev/null && echo proc-ok; echo x > /dev/null && echo null-ok; head -c1 /dev/zero | od -An -tx1"
    );
    for opts in [&[][..], &["--unshare-pid"], &["--unshare-all"]] {
        ck.same(as_, &sh(opts, &script))
            .stdout_has("mount /proc proc rw")
            .stdout_has("mount /dev tmpfs rw")
            .stdout_has("/dev/ptmx l")
            .stdout_has("proc-ok\nnull-ok");
    }
    // /proc and /dev elsewhere.
    ck.same(as_, &sh(&["--proc", "/p2", "--dev", "/d2"], &format!("{MOUNTS}; ls /d2 | sort")))
        .stdout_has("mount /p2 proc")
        .stdout_has("mount /d2 tmpfs");
    ck.done();
});

both!(fn tmpfs_and_mqueue(as_) {
    let script = format!(
        "{MOUNTS}; {}; stat -f -c 'blocks %b %S' /s; touch /t/f /p/f && echo writable",
        tree("/t /s /p")
    );
    same(
        as_,
        &sh(
            &["--tmpfs", "/t", "--size", "1048576", "--tmpfs", "/s", "--perms", "0700", "--tmpfs", "/p"],
            &script,
        ),
    )
    .stdout_has("mount /t tmpfs rw")
    .stdout_has("blocks 256 4096")
    .stdout_has("file /p d 700")
    .stdout_has("writable");
    // --size applies to --tmpfs only.
    same_failure(as_, &sh(&["--size", "100", "--dir", "/x"], "true"), "--size");
    same(as_, &sh(&["--unshare-ipc", "--mqueue", "/mq"], MOUNTS))
        .stdout_has("mount /mq mqueue rw");
});

both!(fn dirs_files_symlinks(as_) {
    let script = format!(
        "{}; cat /f1 /f2 /bd /rbd /d1/f3; echo more >> /bd && echo bd-writable; echo more >> /rbd; echo more >> /f1 && echo f1-writable; {MOUNTS} | grep -E ' /(bd|rbd|d1|f1)'; readlink /sl /sl2; ls /sl/sh",
        tree("/d1 /d2 /d3 /p1 /q1 /dx /f1 /f2 /bd /rbd /sl /sl2")
    );
    let c = sh(
        &[
            "--dir", "/d1",
            "--perms", "0700", "--dir", "/d2",
            "--dir", "/d3/deeper",
            "--perms", "0700", "--dir", "/p1/p2/p3",
            "--perms", "0750", "--dir", "/q1/q2",
            "--dir", "/dx", "--perms", "0700", "--dir", "/dx",
            "--file", "40", "/f1",
            "--perms", "0600", "--file", "41", "/f2",
            "--file", "42", "/d1/f3",
            "--bind-data", "43", "/bd",
            "--perms", "0640", "--ro-bind-data", "44", "/rbd",
            "--symlink", "/usr/bin", "/sl",
            "--symlink", "relative/target", "/sl2",
            "--chmod", "0750", "/d1",
            "--chmod", "0444", "/f1",
        ],
        &script,
    )
    .input(40, b"file one\n")
    .input(41, b"file two\n")
    .input(42, b"file three\n")
    .input(43, b"bind data\n")
    .input(44, b"ro bind data\n");
    same(as_, &c)
        .stdout_has("file /d2 d 700")
        .stdout_has("file /p1 d 700")
        .stdout_has("file /q1 d 750")
        .stdout_has("file /dx d 755")
        .stdout_has("file /d1 d 750")
        .stdout_has("file /f2 f 600")
        .stdout_has("file /f1 f 444")
        .stdout_has("file /rbd f 640")
        .stdout_has("file /sl l 777")
        .stdout_has("bd-writable")
        .stdout_has("mount /rbd ")
        .stdout_has("ro bind data");
    // --chmod of a missing path.
    same_failure(as_, &sh(&["--chmod", "0700", "/nothere"], "true"), "/nothere");
    // A symlink over an existing, different one fails. Over the same one
    // it succeeds since bubblewrap 0.9 (0.8 fails: nsrun only).
    let r = run(Tool::Nsrun, as_, &sh(&["--symlink", "a", "/l", "--symlink", "a", "/l"], "readlink /l"));
    r.assert_status("exit 0").stdout_has("a\n");
    same_failure(as_, &sh(&["--symlink", "a", "/l", "--symlink", "b", "/l"], "readlink /l"), "/l");
});

both!(fn args_fd(as_) {
    // Options from fd 40, NUL-separated, inserted where --args stands.
    let c = sh(&["--args", "40", "--setenv", "Y", "after"], "echo $X $Y; cat /from-args")
        .input(40, b"--setenv\0X\0from args\0--dir\0/from-args-dir\0--file\x0041\0/from-args\0")
        .input(41, b"content\n");
    same(as_, &c).stdout_has("from args after\ncontent");
    // Options only: the command after them is not taken from the fd.
    let mut a = ROOT.to_vec();
    a.extend_from_slice(&["--args", "40"]);
    let c = cmd(&a).input(40, b"sh\0-c\0echo from fd\0");
    let (b, n) = side_by_side(as_, &c);
    b.assert_status("exit 1");
    n.assert_status("exit 1");
});

// ---------------------------------------------------------------------------
// Status fds.

both!(fn info_and_json_status(as_) {
    let mut ck = Checks::default();
    for opts in [&[][..], &["--unshare-net"], &["--unshare-all"], &["--unshare-all", "--share-net"], &["--unshare-user", "--unshare-pid"]] {
        let mut o = opts.to_vec();
        o.extend_from_slice(&["--info-fd", "40", "--json-status-fd", "41"]);
        let b = ck.same(as_, &sh(&o, "exit 3").output(40).output(41));
        b.assert_status("exit 3");
        assert!(b.fds[&40].contains("\"child-pid\": N"), "{}", b.report());
        assert!(b.fds[&41].contains("{ \"exit-code\": 3 }"), "{}", b.report());
    }
    // Killed by a signal: the status document has 128+N.
    let b = ck.same(as_, &sh(&["--unshare-pid", "--json-status-fd", "41"], "kill -KILL $$").output(41));
    b.assert_status("exit 137");
    ck.done();
});

// ---------------------------------------------------------------------------
// Fds that control the sandbox.

both!(fn block_fd(as_) {
    for tool in [Tool::Bwrap, Tool::Nsrun] {
        let (r, w) = pipe();
        let c = sh(&["--block-fd", "40"], "touch $D/ran");
        let mut s = start(tool, as_, &c, &[(40, r.as_raw_fd())]);
        drop(r);
        std::thread::sleep(Duration::from_millis(500));
        assert!(!s.dir().join("ran").exists(), "{tool:?}: the program ran before the block fd was written");
        assert!(s.running(), "{tool:?} ended while blocked");
        std::fs::File::from(w).write_all(b"x").unwrap();
        let ran = s.wait();
        ran.assert_status("exit 0");
        assert!(ran.dir.path().join("ran").exists(), "{}", ran.report());
    }
});

/// Read `fd` to its end (with a timeout: the end comes when the tool closes
/// its copy).
fn read_to_end_timeout(fd: OwnedFd, t: Duration) -> Vec<u8> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::fs::File::from(fd).read_to_end(&mut b);
        let _ = tx.send(b);
    });
    rx.recv_timeout(t)
        .expect("the info fd was not closed in time")
}

fn child_pid(info: &str) -> i32 {
    let i = info
        .find("\"child-pid\": ")
        .expect("child-pid in the info document")
        + 13;
    info[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

both!(fn userns_block_fd(as_) {
    // As bubblewrap's demos/userns-block-fd.py: the caller reads the info
    // document, writes the child's maps itself, then lets it go on.
    let mut outs = Vec::new();
    for tool in [Tool::Bwrap, Tool::Nsrun] {
        let (ir, iw) = pipe();
        let (br, bw) = pipe();
        let c = sh(
            &["--unshare-user", "--unshare-pid", "--userns-block-fd", "40", "--info-fd", "41"],
            IDENTITY,
        );
        let s = start(tool, as_, &c, &[(40, br.as_raw_fd()), (41, iw.as_raw_fd())]);
        drop(br);
        drop(iw);
        let info = String::from_utf8_lossy(&read_to_end_timeout(ir, Duration::from_secs(20))).into_owned();
        let pid = child_pid(&info);
        let uid = as_.uid();
        std::fs::write(format!("/proc/{pid}/uid_map"), format!("0 {uid} 1\n")).unwrap();
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").unwrap();
        std::fs::write(format!("/proc/{pid}/gid_map"), format!("0 {uid} 1\n")).unwrap();
        std::fs::File::from(bw).write_all(b"1").unwrap();
        let mut r = s.wait();
        r.assert_status("exit 0").stdout_has("uid=0(root)");
        // The info document, as the other fds are compared.
        r.fds.insert(41, norm_json(&info));
        outs.push(r);
    }
    assert_same(&outs[0], &outs[1]);
});

/// Whether `fd` has reached its end (the other side is closed), waiting at
/// most `ms`.
fn hung_up(fd: &OwnedFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0 && p.revents & libc::POLLHUP != 0
}

both!(fn sync_fd(as_) {
    for tool in [Tool::Bwrap, Tool::Nsrun] {
        let (r, w) = pipe();
        let c = sh(&["--sync-fd", "40"], "touch $D/started; while [ ! -e $D/stop ]; do sleep 0.02; done");
        let mut s = start(tool, as_, &c, &[(40, w.as_raw_fd())]);
        drop(w);
        s.wait_for("started");
        assert!(!hung_up(&r, 300), "{tool:?}: the sync fd was closed while the sandbox runs");
        std::fs::write(s.dir().join("stop"), "").unwrap();
        let ran = s.wait();
        ran.assert_status("exit 0");
        assert!(hung_up(&r, 3000), "{tool:?}: the sync fd is still open after the end");
    }
});

/// Try to take a POSIX write lock on `p`: true if it was free.
fn can_write_lock(p: &Path) -> bool {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap();
    // SAFETY: zeroed flock is a valid value.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = libc::F_WRLCK as _;
    l.l_whence = libc::SEEK_SET as _;
    // SAFETY: a valid fd and flock.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &l) };
    r == 0
}

both!(fn lock_file(as_) {
    for tool in [Tool::Bwrap, Tool::Nsrun] {
        let c = sh(
            &["--lock-file", "$D/lock"],
            "touch $D/started; while [ ! -e $D/stop ]; do sleep 0.02; done",
        )
        .file("lock", "");
        let mut s = start(tool, as_, &c, &[]);
        s.wait_for("started");
        let lock = s.dir().join("lock");
        assert!(!can_write_lock(&lock), "{tool:?}: the lock file is not locked while the sandbox runs");
        std::fs::write(s.dir().join("stop"), "").unwrap();
        let ran = s.wait();
        ran.assert_status("exit 0");
        assert!(can_write_lock(&ran.dir.path().join("lock")), "{tool:?}: still locked after the end");
    }
});

/// A compiled cBPF program (native byte order) that fails the given system
/// calls with `errno`, allowing the rest.
fn seccomp_deny(calls: &[i64], errno: u32) -> Vec<u8> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
    let rules = calls.iter().map(|&c| (c, vec![])).collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .expect("a seccompiler target arch");
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch,
    )
    .unwrap();
    let prog: BpfProgram = f.try_into().unwrap();
    let mut out = Vec::new();
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

both!(fn seccomp(as_) {
    let mkdir = seccomp_deny(&[libc::SYS_mkdir, libc::SYS_mkdirat], libc::EPERM as u32);
    let chmod = seccomp_deny(&[libc::SYS_chmod, libc::SYS_fchmodat, libc::SYS_fchmod], libc::EACCES as u32);
    let script = "mkdir $D/new; echo mkdir=$?; touch $D/f; chmod 600 $D/f; echo chmod=$?";
    same(as_, &sh(&[], script)).stdout_has("mkdir=0").stdout_has("chmod=0");
    same(as_, &sh(&["--seccomp", "40"], script).input(40, &mkdir))
        .stdout_has("mkdir=1")
        .stderr_has("Operation not permitted")
        .stdout_has("chmod=0");
    same(as_, &sh(&["--add-seccomp-fd", "40", "--add-seccomp-fd", "41"], script).input(40, &mkdir).input(41, &chmod))
        .stdout_has("mkdir=1")
        .stdout_has("chmod=1")
        .stderr_has("Permission denied");
    // --seccomp twice: the last one only.
    same(as_, &sh(&["--seccomp", "40", "--seccomp", "41"], script).input(40, &mkdir).input(41, &chmod))
        .stdout_has("mkdir=0")
        .stdout_has("chmod=1");
    // --seccomp and --add-seccomp-fd do not combine.
    same_failure(as_, &sh(&["--seccomp", "40", "--add-seccomp-fd", "41"], script).input(40, &mkdir).input(41, &chmod), "seccomp");
    // Not a whole number of instructions.
    same_failure(as_, &sh(&["--seccomp", "40"], "true").input(40, b"abc"), "");
});

// ---------------------------------------------------------------------------
// Capabilities, sessions, pid 1.

both!(fn capabilities(as_) {
    let mut ck = Checks::default();
    let script = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status";
    let variants: &[&[&str]] = &[
        &["--cap-drop", "ALL"],
        &["--cap-drop", "ALL", "--cap-add", "CAP_NET_ADMIN"],
        &["--cap-add", "CAP_NET_ADMIN", "--cap-drop", "ALL"],
        &["--cap-drop", "CAP_SYS_ADMIN"],
        &["--unshare-user", "--cap-add", "ALL"],
        &["--unshare-user", "--cap-add", "cap_chown"],
        &["--unshare-all", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_NET_RAW"],
        &["--unshare-user", "--uid", "0", "--cap-drop", "ALL", "--cap-add", "CAP_SETUID"],
    ];
    for v in variants {
        ck.same(as_, &sh(v, script)).assert_status("exit 0").stdout_has("CapBnd");
    }
    ck.same(as_, &sh(&["--unshare-user", "--cap-drop", "ALL", "--cap-add", "CAP_NET_ADMIN"], script))
        .stdout_has("CapEff:\t0000000000001000");
    ck.done();
});

both!(fn session_and_pid1(as_) {
    let mut ck = Checks::default();
    // The program's session: its own, pid 1's (bubblewrap's reaper calls
    // setsid for --new-session in a pid namespace), one outside the pid
    // namespace (0), or the caller's.
    let leader = r#"set -- $(cat /proc/$$/stat); case $6 in $$) echo own;; 1) echo pid1s;; 0) echo outside;; *) echo callers;; esac"#;
    for v in [&[][..], &["--new-session"], &["--unshare-pid"], &["--unshare-pid", "--new-session"]] {
        let b = ck.same(as_, &sh(v, leader));
        let new = b.stdout == "own\n" || b.stdout == "pid1s\n";
        assert_eq!(new, v.contains(&"--new-session"), "{}", b.report());
    }
    ck.same(as_, &sh(&["--unshare-pid"], "echo $$")).stdout_has("2\n");
    ck.same(as_, &sh(&["--unshare-pid", "--as-pid-1"], "echo $$; ps -o pid= -p 1 | tr -d ' '")).stdout_has("1\n");
    ck.same(as_, &sh(&["--unshare-all", "--as-pid-1"], "echo $$")).stdout_has("1\n");
    ck.done();
});

both!(fn die_with_parent(as_) {
    for tool in [Tool::Bwrap, Tool::Nsrun] {
        for (opts, dies) in [(&["--die-with-parent", "--unshare-pid"][..], true), (&["--unshare-pid"], false), (&["--die-with-parent"], true)] {
            // exec: the death signal is for bwrap's child only, which a
            // shell's own children would outlive.
            let c = sh(opts, "touch $D/started; exec sleep 30");
            let mut s = start(tool, as_, &c, &[]);
            s.wait_for("started");
            std::thread::sleep(Duration::from_millis(100));
            let pgid = s.pgid;
            // SAFETY: the tool's own pid, our child.
            unsafe { libc::kill(pgid, libc::SIGKILL) };
            let _ = s.child.wait();
            // Dying takes a moment (a chain of death signals): wait for it,
            // or give it that moment when it should not happen.
            if !dies {
                std::thread::sleep(Duration::from_millis(300));
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            let dir = s.dir().to_path_buf();
            let mut left = live(pgid, &dir);
            while !left.is_empty() && Instant::now() < deadline && dies {
                std::thread::sleep(Duration::from_millis(20));
                left = live(pgid, &dir);
            }
            // SAFETY: the process group we created, and processes found
            // in our run directory.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
                for (pid, _) in &left {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
            if dies {
                assert!(left.is_empty(), "{tool:?} {opts:?}: the sandbox outlived its parent: {left:?}");
            } else {
                assert!(!left.is_empty(), "{tool:?} {opts:?}: without --die-with-parent the program lives on: {left:?}");
            }
            let r = s.finish();
            drop(r);
        }
    }
});

// ---------------------------------------------------------------------------
// User namespaces.

both!(fn disable_userns(as_) {
    let script = "cat /proc/sys/user/max_user_namespaces; unshare -U true; echo unshare=$?";
    same(as_, &sh(&["--unshare-user", "--disable-userns"], script))
        .stdout_has("unshare=1")
        .stderr_has("unshare failed");
    same(as_, &sh(&["--unshare-user"], script)).stdout_has("unshare=0");
    same(as_, &sh(&["--unshare-user", "--disable-userns", "--assert-userns-disabled"], "echo ran"))
        .stdout_has("ran");
    same_failure(as_, &sh(&["--unshare-user", "--assert-userns-disabled"], "echo ran"), "user namespaces");
    same_failure(as_, &sh(&["--disable-userns"], "true"), "--disable-userns");
});

/// A `sleep` in its own user and pid namespaces (`unshare -U -r -p -f`),
/// killed with its process group when dropped.
struct Holder {
    unshare: std::process::Child,
    /// The sleep's pid.
    pid: i32,
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: the process group we created.
        unsafe { libc::kill(-(self.unshare.id() as i32), libc::SIGKILL) };
        let _ = self.unshare.wait();
    }
}

/// Start a [`Holder`] as `as_`.
fn ns_holder(as_: As) -> Holder {
    let mut c = Command::new("unshare");
    c.args(["-U", "-r", "-p", "-f", "sleep", "60"])
        .stdin(Stdio::null())
        .process_group(0);
    if as_ == As::User {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            c.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(NOBODY, NOBODY, NOBODY) != 0
                    || libc::setresuid(NOBODY, NOBODY, NOBODY) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut holder = Holder {
        unshare: c.spawn().expect("start unshare"),
        pid: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.unshare.id()))
                .unwrap_or_default();
        if let Some(p) = kids.split_whitespace().next() {
            let pid: i32 = p.parse().unwrap();
            // Past unshare's fork: the child has exec'd sleep.
            if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                == "sleep"
            {
                holder.pid = pid;
                return holder;
            }
        }
        assert!(Instant::now() < deadline, "unshare did not start sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
}

both!(fn join_namespaces(as_) {
    let holder = ns_holder(as_);
    let pid = holder.pid;
    let user = std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap();
    let pidns = std::fs::File::open(format!("/proc/{pid}/ns/pid")).unwrap();
    let fds = [(40, user.as_raw_fd()), (41, pidns.as_raw_fd())];
    let cases: &[(&[&str], &str)] = &[
        (&["--userns", "40"], "readlink /proc/self/ns/user; id -u"),
        (&["--userns", "40", "--pidns", "41"], "readlink /proc/self/ns/user; cat /proc/1/comm"),
    ];
    let mut fails = Vec::new();
    // A pid namespace nested in a given one: bubblewrap makes it; nsrun
    // refuses it by name (documented in the README's table).
    let nested = sh(&["--userns", "40", "--pidns", "41", "--unshare-pid"], "readlink /proc/self/ns/user; echo $$");
    let b = start(Tool::Bwrap, as_, &nested, &fds).wait();
    let n = start(Tool::Nsrun, as_, &nested, &fds).wait();
    if b.status != "exit 0" || !b.stdout.contains("user:new") {
        fails.push(format!("bwrap itself, nested: {}", b.report()));
    }
    if n.status != "exit 1" || !n.stderr.contains("bwrap: --pidns with --unshare-pid") {
        fails.push(format!("nsrun should refuse a nested pid namespace by name: {}", n.report()));
    }
    for (opts, script) in cases {
        let c = sh(opts, script);
        let b = start(Tool::Bwrap, as_, &c, &fds).wait();
        let n = start(Tool::Nsrun, as_, &c, &fds).wait();
        // The target namespace is not the host's: both print KIND:new, so
        // check the id itself on bwrap's raw output too.
        if !b.stdout.contains("user:new") || b.status != "exit 0" {
            fails.push(format!("bwrap itself: {}", b.report()));
        }
        if let Some(d) = differs(&b, &n) {
            fails.push(format!("{opts:?}: {d}"));
        }
    }
    drop(holder);
    assert!(fails.is_empty(), "{}", fails.join("\n"));
});

// ---------------------------------------------------------------------------
// bubblewrap 0.11 options bwrap 0.8 lacks: their documented behaviour.

both!(fn argv0(as_) {
    let mut a = ROOT.to_vec();
    a.extend_from_slice(&["--argv0", "foo", "cat", "/proc/self/cmdline"]);
    let r = run(Tool::Nsrun, as_, &cmd(&a));
    r.assert_status("exit 0");
    assert_eq!(r.stdout, "foo\0/proc/self/cmdline\0\n", "{}", r.report());
    let r = run(Tool::Nsrun, as_, &sh(&["--argv0", "bar"], "echo $0"));
    r.assert_status("exit 0").stdout_has("bar\n");
});

both!(fn level_prefix(as_) {
    let c = sh(&["--bind", "$D/missing", "/m"], "true");
    let b = run(Tool::Bwrap, as_, &c);
    b.assert_status("exit 1");
    let n = run(Tool::Nsrun, as_, &c);
    assert_eq!(n.stderr, b.stderr, "{}\n{}", b.report(), n.report());
    let mut a = vec!["--level-prefix"];
    a.extend_from_slice(&c.args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let n = run(Tool::Nsrun, as_, &cmd(&a));
    n.assert_status("exit 1");
    assert_eq!(n.stderr, format!("<3>{}", b.stderr), "{}", n.report());
    let n = run(Tool::Nsrun, as_, &cmd(&["--level-prefix", "--foo", "true"]));
    n.assert_status("exit 1");
    assert!(n.stderr.starts_with("<3>bwrap: Unknown option --foo"), "{}", n.report());
    // A warning is <4>: the one for a repeated --seccomp.
    let deny = seccomp_deny(&[libc::SYS_mkdir, libc::SYS_mkdirat], libc::EPERM as u32);
    let c = sh(&["--seccomp", "40", "--seccomp", "41"], "true").input(40, &deny).input(41, &deny);
    let b = run(Tool::Bwrap, as_, &c);
    b.assert_status("exit 0").stderr_has("bwrap: Only the last --seccomp option will take effect");
    let mut c = c;
    c.args.insert(0, "--level-prefix".into());
    let n = run(Tool::Nsrun, as_, &c);
    n.assert_status("exit 0");
    assert_eq!(n.stderr, format!("<4>{}", b.stderr), "{}", n.report());
});

both!(fn overlays(as_) {
    let check = "cat /o/shared; cat /o/a; echo new > /o/b && echo wrote; echo changed > /o/a && echo changed; ls /o | sort | tr '\\n' ' '; echo";
    let base = |opts: &[&str]| {
        sh(opts, &format!("{MOUNTS} | grep ' /o '; {check}"))
            .file("lower/", "")
            .file("lower/a", "lower a\n")
            .file("lower/shared", "from lower\n")
            .file("lower2/", "")
            .file("lower2/shared", "from lower2\n")
            .file("lower2/c", "lower2 c\n")
            .file("upper/", "")
            .file("work/", "")
    };
    // --tmp-overlay: writes land in a tmpfs; the source is untouched.
    let r = run(Tool::Nsrun, as_, &base(&["--overlay-src", "$D/lower", "--tmp-overlay", "/o"]));
    r.assert_status("exit 0").stdout_has("mount /o overlay rw").stdout_has("from lower\nlower a\nwrote\nchanged\na b shared");
    assert_eq!(std::fs::read_to_string(r.dir.path().join("lower/a")).unwrap(), "lower a\n");
    assert!(!r.dir.path().join("lower/b").exists());
    // Several sources, stacked: the first given is the lowest, so a path
    // in both is read from the last. --ro-overlay: nothing can be written.
    let r = run(Tool::Nsrun, as_, &base(&["--overlay-src", "$D/lower", "--overlay-src", "$D/lower2", "--ro-overlay", "/o"]));
    // An overlay without an upper layer is read-only by nature: bubblewrap
    // does not add MS_RDONLY, so the mount flag stays rw.
    r.assert_status("exit 0")
        .stdout_has("mount /o overlay ")
        .stderr_has("Read-only file system")
        .stdout_has("from lower2\nlower a\na c shared")
        .stdout_lacks("wrote")
        .stdout_lacks("changed");
    // --overlay RWSRC WORKDIR DEST: writes land in RWSRC.
    let r = run(Tool::Nsrun, as_, &base(&["--overlay-src", "$D/lower", "--overlay", "$D/upper", "$D/work", "/o"]));
    r.assert_status("exit 0").stdout_has("mount /o overlay rw").stdout_has("wrote\nchanged");
    assert_eq!(std::fs::read_to_string(r.dir.path().join("upper/b")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(r.dir.path().join("upper/a")).unwrap(), "changed\n");
    assert_eq!(std::fs::read_to_string(r.dir.path().join("lower/a")).unwrap(), "lower a\n");
    // An overlay without --overlay-src is an error, and so is --ro-overlay
    // with one only.
    for opts in [&["--tmp-overlay", "/o"][..], &["--overlay-src", "$D/lower", "--ro-overlay", "/o"]] {
        let r = run(Tool::Nsrun, as_, &base(opts));
        r.assert_status("exit 1").stderr_has("bwrap: ");
    }
});

both!(fn labels(as_) {
    for o in ["--exec-label", "--file-label"] {
        let c = sh(&[o, "system_u:object_r:x:s0"], "echo ran");
        let b = run(Tool::Bwrap, as_, &c);
        b.assert_status("exit 1").stderr_has("bwrap: ");
        let n = run(Tool::Nsrun, as_, &c);
        n.assert_status("exit 1").stderr_has("bwrap: ");
        assert_eq!(n.stdout, "", "{}", n.report());
        assert!(n.stderr.to_lowercase().contains("label") || n.stderr.contains("SELinux"), "{}", n.report());
    }
});

// ---------------------------------------------------------------------------
// The `bwrap` link.

both!(fn link_is_nsrun_bwrap(as_) {
    let c = sh(&["--unshare-all", "--hostname", "l"], &format!("{IDENTITY}; {NS}; {MOUNTS}; uname -n"));
    let l = run(Tool::Link, as_, &c);
    let n = run(Tool::Nsrun, as_, &c);
    let b = run(Tool::Bwrap, as_, &c);
    assert_same(&b, &l);
    assert_same(&n, &l);
});

// ---------------------------------------------------------------------------
// Whole command lines as people write them.

both!(fn typical_command_lines(as_) {
    let mut ck = Checks::default();
    // The benchmark's: the host's root read-only, fresh /proc and /dev.
    let script = "id -u; pwd; ls -A /tmp; touch /etc/x; echo $?; touch $D/w && echo rw";
    ck.same(
        as_,
        &cmd(&[
            "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
            "--dev", "/dev", "--tmpfs", "/tmp", "--bind", "$D", "$D", "--chdir", "$D", "sh", "-c",
            script,
        ]),
    )
    .assert_status("exit 0")
    .stdout_has("rw");
    // A build sandbox: a read-only project, a writable output, no network.
    ck.same(
        as_,
        &cmd(&[
            "--unshare-all", "--new-session", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin",
            "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc",
            "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", "$D/src", "/src", "--bind",
            "$D/out", "/out", "--chdir", "/src", "--clearenv", "--setenv", "PATH", "/usr/bin",
            "sh", "-c", "cat main.c > /out/copy && echo built; touch x; ls /out; env | sort",
        ])
        .file("src/", "")
        .file("src/main.c", "int main(){}\n")
        .file("out/", ""),
    );
    ck.done();
});
