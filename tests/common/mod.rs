//! Helpers for the integration tests: run the built `nsrun` binary as root
//! and as an unprivileged user, capture what it prints, and check that the
//! host is left as it was (no mounts, no processes, no files).
//!
//! Every test runs twice, as root and as uid/gid 65534 (through
//! `setpriv --reuid=65534 --regid=65534 --clear-groups`), so the test
//! process itself must run as root.
//!
//! Each run gets a fresh directory holding `recipe.lua` (so messages read
//! `recipe.lua:LINE:`) and `testlib.lua` (the Lua-side helpers in
//! `tests/recipes/testlib.lua`); `nsrun` runs with that directory as its
//! cwd and `NSRUN_TEST_DIR` set to its absolute path. For the unprivileged
//! run the directory belongs to uid 65534.

#![allow(dead_code)] // each test file uses a different part of this

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod socat;

/// The unprivileged user and group the `User` runs use.
pub const NOBODY: u32 = 65534;

/// How long one run of `nsrun` may take before it is killed (unless the
/// run says otherwise with [`Nsrun::timeout`]).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Who runs `nsrun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    /// uid 0 with all capabilities.
    Root,
    /// uid/gid 65534, no supplementary groups, no capabilities.
    User,
}

impl As {
    /// The uid nsrun runs with.
    pub fn uid(self) -> u32 {
        match self {
            As::Root => 0,
            As::User => NOBODY,
        }
    }
    /// The gid nsrun runs with.
    pub fn gid(self) -> u32 {
        self.uid()
    }
    /// `"root"` or `"user"`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            As::Root => "root",
            As::User => "user",
        }
    }
}

/// Generate `mod NAME { fn root(); fn user(); }` running one body both ways,
/// each wrapped in [`guarded`] (the host's mounts must not change).
///
/// ```ignore
/// both!(fn hostname(as_) { common::run(as_, "...", &[]).success(); });
/// ```
#[macro_export]
macro_rules! both {
    ($(#[$meta:meta])* fn $name:ident($as_:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($as_: $crate::common::As) $body

            #[test]
            fn root() {
                $crate::common::guarded(|| body($crate::common::As::Root));
            }

            #[test]
            fn user() {
                $crate::common::guarded(|| body($crate::common::As::User));
            }
        }
    };
}

// ---------------------------------------------------------------------------
// The directories and the binary copy.

/// The directory of this test process: the copy of the binary for the
/// unprivileged runs, and one subdirectory per run. Removed at exit.
static BASE: Mutex<Option<TempDir>> = Mutex::new(None);
static BASE_PATH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_base() {
    if let Ok(mut g) = BASE.lock() {
        if let Some(d) = g.take() {
            let path = d.path().to_path_buf();
            if let Err(e) = d.close() {
                eprintln!("warning: could not remove {}: {e}", path.display());
            }
        }
    }
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "the nsrun integration tests must run as root: each test runs once as root and once \
             as uid 65534 through setpriv (run `sudo -E cargo test` or test in a VM/container)"
        );
    }
}

/// The per-process base directory (mode 0755), with `nsrun` copied in.
pub fn base() -> &'static Path {
    BASE_PATH.get_or_init(|| {
        require_root();
        let d = tempfile::Builder::new()
            .prefix("nsrun-test-")
            .tempdir()
            .expect("create the test base directory");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = d.path().join("nsrun");
        std::fs::copy(env!("CARGO_BIN_EXE_nsrun"), &copy).expect("copy the nsrun binary");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = d.path().to_path_buf();
        *BASE.lock().unwrap() = Some(d);
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(remove_base) };
        path
    })
}

/// The binary `As` runs: the build output for root, the readable copy for
/// the unprivileged user (the build tree may not be readable by it).
pub fn binary(as_: As) -> PathBuf {
    match as_ {
        As::Root => PathBuf::from(env!("CARGO_BIN_EXE_nsrun")),
        As::User => base().join("nsrun"),
    }
}

/// The directory holding the `socat` stand-in ([`socat`]), made once per
/// test process.
pub fn socat_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = base().join("bin");
        std::fs::create_dir(&d).expect("create the stand-ins' directory");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        socat::install(&d);
        d
    })
}

/// A fresh run directory: 0755, owned by the user the run is for.
pub fn run_dir(as_: As) -> TempDir {
    let d = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(base())
        .expect("create a run directory");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(d.path(), Some(as_.uid()), Some(as_.gid())).unwrap();
    d
}

/// The Lua helpers every run directory gets as `testlib.lua`.
pub const TESTLIB: &str = include_str!("../recipes/testlib.lua");

// ---------------------------------------------------------------------------
// Host state: mounts and processes.

/// Serialises tests that change the host's own mount table (they take the
/// write side) against the ones that check it did not change.
static HOST_MOUNTS: RwLock<()> = RwLock::new(());

/// The lines of this (the test) process's `/proc/self/mountinfo`.
pub fn host_mounts() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// The mount point (field 5) of a mountinfo line.
pub fn mount_point(line: &str) -> &str {
    line.split(' ').nth(4).unwrap_or("")
}

/// Whether `path` is a mount point in the test process's mount namespace.
pub fn host_has_mount_at(path: &Path) -> bool {
    let p = path.to_string_lossy();
    host_mounts().iter().any(|l| mount_point(l) == p)
}

fn check_mounts_unchanged(before: &[String]) {
    let after = host_mounts();
    if after == before {
        return;
    }
    let added: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    let removed: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    // Undo leaked mounts under our own directory so cleanup can proceed.
    if let Some(b) = BASE_PATH.get() {
        let b = b.to_string_lossy().to_string();
        for l in added.iter().rev() {
            let mp = mount_point(l);
            if mp.starts_with(&b) {
                if let Ok(c) = std::ffi::CString::new(mp) {
                    // SAFETY: valid C string.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
    }
    panic!(
        "the host's mount table changed during the test\nadded:\n{}\nremoved:\n{}",
        added.iter().map(|s| format!("  {s}\n")).collect::<String>(),
        removed
            .iter()
            .map(|s| format!("  {s}\n"))
            .collect::<String>()
    );
}

/// Run `f` and check the host's mount table is the same afterwards. Tests
/// run in parallel, so this holds the shared side of [`HOST_MOUNTS`].
pub fn guarded(f: impl FnOnce()) {
    let _g = HOST_MOUNTS.read().unwrap_or_else(|e| e.into_inner());
    let before = host_mounts();
    f();
    check_mounts_unchanged(&before);
}

/// Run `f` alone (no other test checks the mount table meanwhile) and check
/// the host's mount table is the same afterwards: for tests whose recipe
/// mounts in the host's mount namespace (persist as root).
pub fn guarded_exclusive(f: impl FnOnce()) {
    let _g = HOST_MOUNTS.write().unwrap_or_else(|e| e.into_inner());
    let before = host_mounts();
    f();
    check_mounts_unchanged(&before);
}

/// Live (non-zombie) processes in process group `pgid`: (pid, comm).
fn live_members(pgid: i32) -> Vec<(i32, String)> {
    live_where(Group::Process, pgid)
}

/// Which group of processes [`live_where`] lists.
#[allow(dead_code)]
pub enum Group {
    /// By process group id.
    Process,
    /// By session id.
    Session,
}

/// Live (not zombie) processes of process group or session `id`, with
/// their command names, read from /proc.
pub fn live_where(group: Group, id: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp session ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.len() < 4 {
            continue;
        }
        let field = match group {
            Group::Process => rest[2],
            Group::Session => rest[3],
        };
        if field.parse::<i32>() == Ok(id) && rest[0] != "Z" && rest[0] != "X" {
            out.push((pid, stat[open + 1..close].to_string()));
        }
    }
    out
}

/// Processes `nsrun` left behind (they stay in its process group), after a
/// grace period for them to end; any found are killed.
fn leftovers(pgid: i32) -> Vec<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = live_members(pgid);
        if left.is_empty() {
            return left;
        }
        if Instant::now() > deadline {
            // SAFETY: kill a process group we created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Running nsrun.

/// A command line for `nsrun`, built up and then run.
pub struct Nsrun {
    as_: As,
    recipe: Option<String>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    files: Vec<(String, Vec<u8>)>,
    fifos: Vec<String>,
    env: Vec<(String, String)>,
    umask: Option<u32>,
    timeout: Duration,
}

/// Start building a run of `nsrun` as `as_`.
pub fn nsrun(as_: As) -> Nsrun {
    Nsrun {
        as_,
        recipe: None,
        args: Vec::new(),
        stdin: None,
        files: Vec::new(),
        fifos: Vec::new(),
        env: Vec::new(),
        umask: None,
        timeout: TIMEOUT,
    }
}

/// Run `recipe` (written to `recipe.lua`) with `args`, as `as_`.
pub fn run(as_: As, recipe: &str, args: &[&str]) -> Done {
    nsrun(as_).recipe(recipe).args(args).run()
}

/// Run `nsrun` with a raw command line (no recipe file is added to it).
pub fn run_cli(as_: As, args: &[&str]) -> Done {
    nsrun(as_).args(args).run()
}

impl Nsrun {
    /// Write `src` to `recipe.lua` and put `recipe.lua` first on the command line.
    pub fn recipe(mut self, src: &str) -> Self {
        self.recipe = Some(src.to_string());
        self
    }
    /// Add arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    /// Feed `data` on standard input (default: /dev/null).
    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Some(data.to_vec());
        self
    }
    /// Put another file into the run directory.
    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.files.push((name.to_string(), data.to_vec()));
        self
    }
    /// Make a FIFO in the run directory (see [`Running::release`]).
    pub fn fifo(mut self, name: &str) -> Self {
        self.fifos.push(name.to_string());
        self
    }
    /// Run with the `socat` stand-in ([`socat`]) first on the PATH, for
    /// recipes that run `socat`.
    pub fn with_socat(self) -> Self {
        let path = socat::path_with(socat_dir());
        self.env("PATH", &path)
    }
    /// Set an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Run it with this umask (default: the test process's).
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// Kill it if it runs longer than `t` (default: a minute); for the
    /// soak runs, which take minutes by design.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Start it.
    pub fn spawn(self) -> Running {
        let dir = run_dir(self.as_);
        let own = |p: &Path| {
            std::os::unix::fs::chown(p, Some(self.as_.uid()), Some(self.as_.gid())).unwrap();
        };
        let mut files = vec![("testlib.lua".to_string(), TESTLIB.as_bytes().to_vec())];
        if let Some(src) = &self.recipe {
            files.push(("recipe.lua".to_string(), src.as_bytes().to_vec()));
        }
        files.extend(self.files.iter().cloned());
        for (name, data) in &files {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            own(&p);
        }
        for name in &self.fifos {
            let p = dir.path().join(name);
            let c = std::ffi::CString::new(p.to_string_lossy().as_bytes()).unwrap();
            // SAFETY: valid C string.
            assert_eq!(
                unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
                0,
                "mkfifo {}",
                p.display()
            );
            own(&p);
        }

        let bin = binary(self.as_);
        let mut cmd = match self.as_ {
            As::Root => Command::new(&bin),
            As::User => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={NOBODY}"),
                    format!("--regid={NOBODY}"),
                    "--clear-groups".to_string(),
                ]);
                c.arg(&bin);
                c
            }
        };
        if self.recipe.is_some() {
            cmd.arg("recipe.lua");
        }
        cmd.args(&self.args)
            .current_dir(dir.path())
            .env("NSRUN_TEST_DIR", dir.path())
            // A PATH every user can search: with an unsearchable directory
            // in it (such as ~root/.cargo/bin) a failed PATH search gives
            // EACCES rather than ENOENT, as with execvp.
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(mask) = self.umask {
            // SAFETY: umask is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        let what = format!("nsrun as {} ({:?})", self.as_.name(), cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let pgid = child.id() as i32;
        if let Some(data) = self.stdin {
            let mut w = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = w.write_all(&data);
            });
        }
        let reader = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        };
        let out = reader(Box::new(child.stdout.take().unwrap()));
        let err = reader(Box::new(child.stderr.take().unwrap()));
        Running {
            as_: self.as_,
            what,
            child,
            pgid,
            out: Some(out),
            err: Some(err),
            dir: Some(dir),
            timeout: self.timeout,
        }
    }

    /// Run it to the end.
    pub fn run(self) -> Done {
        self.spawn().wait()
    }
}

/// A running `nsrun`.
pub struct Running {
    as_: As,
    what: String,
    child: std::process::Child,
    pgid: i32,
    out: Option<std::thread::JoinHandle<Vec<u8>>>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
    dir: Option<TempDir>,
    timeout: Duration,
}

impl Running {
    /// Its pid (that of nsrun itself: setpriv execs it).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Wait until the recipe creates `name` in the run directory.
    pub fn wait_for_file(&mut self, name: &str) {
        let p = self.dir().join(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.exists() {
            if let Ok(Some(st)) = self.child.try_wait() {
                // SAFETY: kill what is left of the process group we created.
                unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
                let done = self.finish(st);
                panic!("nsrun exited before creating {name}\n{}", done.report());
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("timed out waiting for {name}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Let a recipe blocked reading FIFO `name` go on (write "go", close).
    pub fn release(&mut self, name: &str) {
        let p = self.dir().join(name);
        let c = std::ffi::CString::new(p.to_string_lossy().as_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // SAFETY: valid C string; the fd is closed below.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
            if fd >= 0 {
                // SAFETY: fd is ours.
                unsafe {
                    libc::write(fd, b"go".as_ptr().cast(), 2);
                    libc::close(fd);
                }
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("timed out waiting for the recipe to open {name}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        // SAFETY: kill the process group we created.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    fn finish(&mut self, status: ExitStatus) -> Done {
        let stdout = self.out.take().unwrap().join().unwrap_or_default();
        let stderr = self.err.take().unwrap().join().unwrap_or_default();
        Done {
            as_: self.as_,
            what: self.what.clone(),
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            dir: self.dir.take().unwrap(),
        }
    }

    /// Wait for it to end (killing it after its timeout), check it left no
    /// process behind, and return what it did.
    pub fn wait(mut self) -> Done {
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => panic!("{}: wait: {e}", self.what),
            }
            if Instant::now() > deadline {
                self.kill();
                let st = self.child.wait().unwrap();
                let done = self.finish(st);
                panic!(
                    "timed out after {:?}, killed\n{}",
                    self.timeout,
                    done.report()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Before reading the output to its end: a leftover process may hold
        // the pipes open.
        let left = leftovers(self.pgid);
        let done = self.finish(status);
        if !left.is_empty() {
            panic!(
                "nsrun exited but left processes running (now killed): {left:?}\n{}",
                done.report()
            );
        }
        done
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.dir.is_some() {
            // Dropped without wait (a panic): do not leave it running.
            self.kill();
        }
    }
}

/// A finished run: exit status, output and the run directory (removed when
/// this is dropped).
pub struct Done {
    pub as_: As,
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub dir: TempDir,
}

impl Done {
    /// The exit code; a death by signal is reported as a failure.
    #[track_caller]
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "nsrun was killed by signal {:?}\n{}",
                self.status.signal(),
                self.report()
            ),
        }
    }

    /// Everything about the run, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- {}\n--- status: {}\n--- stdout:\n{}--- stderr:\n{}---",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    /// The run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Assert the exit code.
    #[track_caller]
    pub fn assert_code(&self, want: i32) -> &Self {
        let got = self.code();
        assert_eq!(
            got,
            want,
            "exit code {got}, expected {want}\n{}",
            self.report()
        );
        self
    }

    /// Assert exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.assert_code(0)
    }

    /// Assert exit code 0 and an `ok NAME` line on stdout for each name.
    #[track_caller]
    pub fn oks(&self, names: &[&str]) -> &Self {
        self.success();
        self.assert_oks(names)
    }

    /// Assert the recipe ran to its end: exit code 0, a last stdout line
    /// `done`, no failed check, and an `ok NAME` line for each name.
    #[track_caller]
    pub fn finished(&self, names: &[&str]) -> &Self {
        self.success();
        assert_eq!(
            self.stdout.lines().last(),
            Some("done"),
            "the recipe did not reach its end\n{}",
            self.report()
        );
        self.assert_oks(names)
    }

    /// Assert an `ok NAME` line on stdout for each name (any exit code).
    #[track_caller]
    pub fn assert_oks(&self, names: &[&str]) -> &Self {
        let lines: Vec<&str> = self.stdout.lines().collect();
        let missing: Vec<&&str> = names
            .iter()
            .filter(|n| !lines.contains(&format!("ok {n}").as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "missing `ok` lines for {missing:?}\n{}",
            self.report()
        );
        assert!(
            !self.stdout.contains("FAIL"),
            "a check failed\n{}",
            self.report()
        );
        self
    }

    /// Assert stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n{}",
            self.report()
        );
        self
    }

    /// Assert stdout is exactly `s`.
    #[track_caller]
    pub fn stdout_is(&self, s: &str) -> &Self {
        assert_eq!(self.stdout, s, "stdout differs\n{}", self.report());
        self
    }

    /// Assert stderr contains `s`.
    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n{}",
            self.report()
        );
        self
    }

    /// Assert stderr does not contain `s`.
    #[track_caller]
    pub fn stderr_lacks(&self, s: &str) -> &Self {
        assert!(
            !self.stderr.contains(s),
            "stderr has {s:?}\n{}",
            self.report()
        );
        self
    }

    /// Assert stderr is exactly `s`.
    #[track_caller]
    pub fn stderr_is(&self, s: &str) -> &Self {
        assert_eq!(self.stderr, s, "stderr differs\n{}", self.report());
        self
    }

    /// Assert a failure: exit code 1 and the first stderr line is
    /// `nsrun: ` followed by `msg`.
    #[track_caller]
    pub fn fails_with(&self, msg: &str) -> &Self {
        self.assert_code(1);
        let first = self.stderr.lines().next().unwrap_or("");
        assert_eq!(
            first,
            format!("nsrun: {msg}"),
            "first stderr line\n{}",
            self.report()
        );
        self
    }

    /// `key=value` lines the recipe printed (`T.put` in testlib.lua).
    pub fn values(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("val "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One `val KEY=VALUE` the recipe printed.
    #[track_caller]
    pub fn value(&self, key: &str) -> String {
        match self.values().get(key) {
            Some(v) => v.clone(),
            None => panic!("the recipe printed no value {key:?}\n{}", self.report()),
        }
    }
}

/// The mode bits (0o7777) of a file.
pub fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// The host's hostname and domain name.
pub fn host_names() -> (String, String) {
    let r = |p| std::fs::read_to_string(p).unwrap().trim_end().to_string();
    (
        r("/proc/sys/kernel/hostname"),
        r("/proc/sys/kernel/domainname"),
    )
}
