//! The escape battery against every configuration (issue 13, point 6).
//!
//! Five configurations, each as root and as uid 65534: `nsrun.sandbox` with
//! its defaults (A), with `uid = 0` and the seccomp preset (B), with a
//! given `root` (C), with `net = "host"` (D), and `ns.spawn` with its
//! documented defaults (E). In each, the attack programs of
//! `tests/escape/attacks.pl` try the ways out; [`TABLE`] says, in one
//! place, which configuration must stop which attempt and which allows it
//! by design. Every attempt has a control — the same method where it must
//! work — so no attempt passes by accident.
//!
//! The recipe is `tests/recipes/escape.lua`; nsrun runs with a pty as its
//! stdin and controlling terminal (as from a user's shell), a secret token
//! in its environment, and an abstract unix socket listening on the host.
//! `tests/escape/TABLE.md` is the table for the README, checked against
//! [`TABLE`] so the two cannot drift.
//!
//! `cargo test --test escape -- --nocapture` prints each run's results.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::As;

// ---------------------------------------------------------------------------
// The table.

/// What a configuration must do with an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    /// The attempt must fail.
    Blocked,
    /// The configuration allows it by design (and it must work: that is
    /// checked too).
    Allowed,
    /// Not run: the configuration makes no claim about it (or running it
    /// could touch the host; see the note).
    NotRun,
}
use Cell::{Allowed as A, Blocked as B, NotRun as N};

impl Cell {
    fn word(self) -> &'static str {
        match self {
            B => "blocked",
            A => "allowed",
            N => "—",
        }
    }
}

/// Where an attempt's control runs: the same method where it must work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    /// The same configuration, aimed at something the program owns (a
    /// child it started, a file it opened).
    Same,
    /// A plain process on the host.
    Open,
    /// Root of new user, mount, pid and uts namespaces, no filter.
    Caps,
    /// A plain process as uid 65534 on the host.
    Setuid,
    /// A plain process on the host, as root only: uid 65534 may not do it
    /// anywhere (the reason is the string).
    OpenRoot(&'static str),
    /// [`Control::Caps`], as root only (the reason is the string).
    CapsRoot(&'static str),
}

impl Control {
    /// The recipe's name for it, for a run as `as_`.
    fn arg(self, as_: As) -> &'static str {
        match (self, as_) {
            (Control::Same, _) => "same",
            (Control::Open, _) => "open",
            (Control::Caps, _) => "caps",
            (Control::Setuid, _) => "setuid",
            (Control::OpenRoot(_), As::Root) => "open",
            (Control::CapsRoot(_), As::Root) => "caps",
            (Control::OpenRoot(_) | Control::CapsRoot(_), As::User) => "none",
        }
    }

    /// Its name in the table's control column.
    fn word(self) -> &'static str {
        match self {
            Control::Same => "own target",
            Control::Open => "host",
            Control::Caps => "userns root",
            Control::Setuid => "host, uid 65534",
            Control::OpenRoot(_) => "host, root only",
            Control::CapsRoot(_) => "userns root, root only",
        }
    }
}

/// One attempt: its number in the brief, its name (that of attacks.pl),
/// what it does, its control, and a cell per configuration A–E.
struct Attempt {
    area: u8,
    name: &'static str,
    what: &'static str,
    control: Control,
    cells: [Cell; 5],
}

/// The configurations, in the order of [`Attempt::cells`].
const CONFIGS: [(&str, &str); 5] = [
    ("A", "`sandbox.run` defaults"),
    ("B", "`uid = 0, seccomp = \"default\"`"),
    (
        "C",
        "`root = DIR` (a directory with a setuid-root binary in it)",
    ),
    ("D", "`net = \"host\"`"),
    ("E", "`ns.spawn` defaults"),
];

const DEV_ROOT: &str = "uid 65534 may not make or open a block device on the host either";

/// Which configuration stops which attack: the single source of truth,
/// asserted by the runs and mirrored in tests/escape/TABLE.md.
#[rustfmt::skip]
const TABLE: &[Attempt] = &[
    Attempt { area: 1, name: "pid1.mem_write", what: "open `/proc/1/mem` read-write", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "pid1.mem_secret", what: "find nsrun's secret in `/proc/1/mem`", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "pid1.environ", what: "the secret in `/proc/1/environ`", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "pid1.cmdline", what: "the recipe in `/proc/1/cmdline`", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "pid1.fd", what: "open `/proc/1/fd/*` or read where they lead", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "pid1.exe", what: "open `/proc/1/exe` (CVE-2019-5736)", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "pid1.ptrace", what: "ptrace-attach PID 1", control: Control::Open, cells: [B, B, B, B, B] },
    Attempt { area: 1, name: "sibling.ptrace", what: "ptrace-attach a sibling process", control: Control::Open, cells: [B, B, B, B, A] },
    Attempt { area: 2, name: "status.forge", what: "forge the exit status through `/proc/1/fd`", control: Control::Same, cells: [B, B, B, B, B] },
    Attempt { area: 3, name: "mount.tmpfs", what: "mount a tmpfs", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "mount.umount_mask", what: "umount a tmpfs that masks a path", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "mount.remount_rw", what: "`mount -o remount,bind,rw` a read-only bind", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "mount.setattr_rw", what: "`mount_setattr` clearing `MOUNT_ATTR_RDONLY`", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "mount.fsopen", what: "`fsopen(\"tmpfs\")`", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "mount.fspick", what: "`fspick(\"/\")`", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "mount.open_tree", what: "`open_tree(\"/\", OPEN_TREE_CLONE)`", control: Control::Caps, cells: [B, B, B, B, A] },
    Attempt { area: 3, name: "io_uring.setup", what: "`io_uring_setup`", control: Control::Open, cells: [B, B, B, B, A] },
    Attempt { area: 4, name: "file.ro_write", what: "write through a read-only bind", control: Control::Open, cells: [B, B, B, B, B] },
    Attempt { area: 4, name: "file.host_read", what: "read a host file that was not bound", control: Control::Open, cells: [B, B, B, B, A] },
    Attempt { area: 5, name: "procsys.hostname", what: "write `/proc/sys/kernel/hostname` (own uts namespace)", control: Control::CapsRoot("only the host's uid 0 may write `/proc/sys`"), cells: [B, B, B, B, N] },
    Attempt { area: 5, name: "sys.write", what: "open a `/sys/kernel` file for writing", control: Control::OpenRoot("sysfs files belong to the host's root"), cells: [B, B, B, B, N] },
    Attempt { area: 5, name: "sys.firmware", what: "list `/sys/firmware`", control: Control::Open, cells: [B, B, B, B, N] },
    Attempt { area: 5, name: "proc.kcore", what: "read `/proc/kcore` (else `/proc/timer_list`)", control: Control::OpenRoot("both files are root's, mode 0400"), cells: [B, B, B, B, N] },
    Attempt { area: 5, name: "proc.keys", what: "read `/proc/keys`", control: Control::Open, cells: [B, B, B, B, N] },
    Attempt { area: 6, name: "userns.unshare", what: "`unshare(CLONE_NEWUSER)`", control: Control::Open, cells: [B, B, B, B, A] },
    Attempt { area: 6, name: "userns.unshare_disabled", what: "the same with `disable_userns = true`", control: Control::Open, cells: [B, B, B, B, B] },
    Attempt { area: 7, name: "keyring.session", what: "reach the caller's session keyring", control: Control::Open, cells: [B, B, B, B, A] },
    Attempt { area: 8, name: "abstract.connect", what: "connect to a host abstract unix socket", control: Control::Open, cells: [B, B, B, A, A] },
    Attempt { area: 9, name: "host.see", what: "see nsrun's host process in `/proc`", control: Control::Open, cells: [B, B, B, B, B] },
    Attempt { area: 9, name: "host.signal", what: "signal nsrun's host process", control: Control::Open, cells: [B, B, B, B, B] },
    Attempt { area: 10, name: "setuid.exec", what: "gain euid 0 or capabilities from a setuid-root binary", control: Control::Setuid, cells: [B, B, B, B, N] },
    Attempt { area: 11, name: "dev.mknod", what: "`mknod /dev/x b 8 0`", control: Control::OpenRoot(DEV_ROOT), cells: [B, B, B, B, N] },
    Attempt { area: 11, name: "dev.disk", what: "open a host disk (read-only)", control: Control::OpenRoot(DEV_ROOT), cells: [B, B, B, B, N] },
    Attempt { area: 12, name: "tty.tiocsti", what: "push input into the terminal with TIOCSTI", control: Control::Open, cells: [B, B, B, B, N] },
    Attempt { area: 13, name: "cwd.proc_fd", what: "`chdir = \"/proc/self/fd/N\"` (CVE-2024-21626)", control: Control::Open, cells: [B, B, B, B, N] },
    Attempt { area: 13, name: "cwd.proc_fd_nouserns", what: "the same with `disable_userns = true`", control: Control::Open, cells: [B, B, B, B, N] },
    Attempt { area: 14, name: "fds.leak", what: "fds beyond stdio and `keep_fds`", control: Control::Same, cells: [B, B, B, B, B] },
];

/// Notes under the table (in TABLE.md too).
const NOTES: &[&str] = &[
    "A: `sandbox.run` with `/usr` bound read-only, `/bin`, `/lib*`, `/sbin` as symlinks, `proc = \"/proc\"`, \
     `dev = \"/dev\"`, `sys = \"/sys\"`, `tmpfs = {\"/tmp\"}`; B, C, D change one thing each. \
     E: `ns.spawn{namespaces = \"user,mount,pid\", mount_proc = \"/proc\"}`: root of its user namespace \
     with every capability there and no filter, so it may mount, trace its siblings and make user \
     namespaces (documented); what must hold there is PID 1, the exit status, fds and the host's processes.",
    "Controls, the same method where it must work: *own target*, in the same configuration \
     against a child the program started or a file it opened; *host*, a plain process on the \
     host; *userns root*, root of new user, mount, pid and uts namespaces with no filter; \
     *host, uid 65534*, a plain process switched to uid 65534; *root only*: run only when \
     nsrun runs as root, for the reason given.",
    "—: not run. The configuration makes no claim about it; `procsys.hostname` is never tried \
     without a uts namespace of the sandbox's own (it would rename the host).",
    "`setuid.exec` as root in A, C and D runs the program as uid 1000 with root mapped, so a \
     setuid-root binary has an owner to become; B keeps uid 0 (only capabilities could be gained).",
    "Every run holds a file opened with `io.open` and a namespace handle (`ns.open`, kept through \
     `keep_fds` in `fds.leak`), and starts from a pty that is nsrun's controlling terminal.",
    "`proc.kcore`: this kernel may lack `/proc/kcore`; then `/proc/timer_list` (same mask list) stands in.",
];

const TABLE_MD: &str = include_str!("escape/TABLE.md");
const ATTACKS: &str = include_str!("escape/attacks.pl");
const RECIPE: &str = include_str!("recipes/escape.lua");

/// The table as markdown (what tests/escape/TABLE.md must say).
fn markdown() -> String {
    let mut s = String::from(
        "# Which configuration stops which attack\n\n\
         The escape battery (`cargo test --test escape`, as root and as uid 65534; the \
         attacks are `tests/escape/attacks.pl`). This copy must match `TABLE` in \
         `tests/escape.rs`, which the runs assert (a test compares the two).\n\n",
    );
    s.push_str("| configuration | |\n|---|---|\n");
    for (k, what) in CONFIGS {
        s.push_str(&format!("| {k} | {what} |\n"));
    }
    s.push_str("\n| # | attempt | what | A | B | C | D | E | control |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for a in TABLE {
        let cells: Vec<&str> = a.cells.iter().map(|c| c.word()).collect();
        let control = match a.control {
            Control::OpenRoot(why) | Control::CapsRoot(why) => {
                format!("{} ({why})", a.control.word())
            }
            c => c.word().to_string(),
        };
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {control} |\n",
            a.area,
            a.name,
            a.what,
            cells.join(" | ")
        ));
    }
    s.push('\n');
    for n in NOTES {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

#[test]
fn table_markdown_matches() {
    let want = markdown();
    println!("{want}");
    assert!(
        TABLE_MD == want,
        "tests/escape/TABLE.md differs from TABLE in tests/escape.rs; it should read:\n{want}"
    );
}

#[test]
fn table_is_complete() {
    // Every attempt of attacks.pl is in the table and the other way round
    // (the variants are attempts of attacks.pl with another option; see
    // VARIANTS in escape.lua).
    let mut names: Vec<&str> = ATTACKS
        .lines()
        .filter_map(|l| l.strip_prefix("$ATTEMPTS{\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    names.extend(["cwd.proc_fd_nouserns", "userns.unshare_disabled"]);
    for v in ["cwd.proc_fd_nouserns", "userns.unshare_disabled"] {
        assert!(
            RECIPE.contains(&format!("[\"{v}\"] = {{ perl =")),
            "{v} is not a variant in escape.lua"
        );
    }
    names.sort_unstable();
    let mut table: Vec<&str> = TABLE.iter().map(|a| a.name).collect();
    table.sort_unstable();
    assert_eq!(names, table);
    // Areas 1 to 14 of the brief all have an attempt.
    for area in 1..=14 {
        assert!(
            TABLE.iter().any(|a| a.area == area),
            "no attempt for {area}"
        );
    }
}

// ---------------------------------------------------------------------------
// Fixtures.

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The directory the recipe's configurations are built from (see
/// tests/recipes/escape.lua), removed when dropped.
struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    fn new(as_: As) -> Fixtures {
        let dir = tempfile::Builder::new()
            .prefix("escape-")
            .tempdir_in(common::base())
            .expect("fixtures directory");
        let d = dir.path();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let own = |p: &Path| std::os::unix::fs::chown(p, Some(as_.uid()), Some(as_.gid())).unwrap();
        mode(d, 0o755);
        for sub in ["escape", "ro", "hidden", "suid", "tmp"] {
            std::fs::create_dir(d.join(sub)).unwrap();
            mode(&d.join(sub), 0o755);
        }
        // The user's own: the open control writes into ro, the scratch is its.
        own(&d.join("ro"));
        own(&d.join("tmp"));
        std::fs::write(d.join("escape/attacks.pl"), ATTACKS).unwrap();
        std::fs::write(d.join("hidden/under-mask"), "masked\n").unwrap();
        std::fs::write(
            d.join("marker"),
            format!("NSRUN-HOST-ONLY-MARKER {}\n", random_hex(8)),
        )
        .unwrap();
        // A root directory for C: mount points, /bin and /lib links, and a
        // setuid binary of its own.
        let root = d.join("rootfs");
        std::fs::create_dir(&root).unwrap();
        mode(&root, 0o755);
        for sub in [
            "usr", "escape", "ro", "masked", "proc", "dev", "sys", "tmp", "suid",
        ] {
            std::fs::create_dir(root.join(sub)).unwrap();
            mode(&root.join(sub), 0o755);
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ] {
            std::os::unix::fs::symlink(to, root.join(link)).unwrap();
        }
        for suid in [d.join("suid/cat"), root.join("suid/cat")] {
            std::fs::copy("/usr/bin/cat", &suid).unwrap();
            std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
            mode(&suid, 0o4755);
        }
        Fixtures { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A host disk the test (root) can open read-only: a block device of the
/// host's /dev, real disks before loop devices (some hosts refuse even root
/// their root disk: then a loop device stands in); "none" if there is none.
fn host_disk() -> String {
    use std::os::unix::fs::FileTypeExt;
    let mut devs: Vec<String> = std::fs::read_dir("/dev")
        .expect("read /dev")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_block_device()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    devs.sort_by_key(|n| {
        let virt = ["loop", "zram", "ram"].iter().any(|p| n.starts_with(p));
        (virt, n.clone())
    });
    devs.iter()
        .map(|n| format!("/dev/{n}"))
        .find(|p| std::fs::File::open(p).is_ok())
        .unwrap_or_else(|| "none".into())
}

// ---------------------------------------------------------------------------
// A pty: nsrun's stdin and controlling terminal.

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

fn open_pty() -> Pty {
    // SAFETY: plain libc calls on fds we own; every fd is close-on-exec
    // from the start (other tests fork meanwhile).
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0, "grantpt");
        assert_eq!(libc::unlockpt(m), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(
            s >= 0,
            "open the pty slave: {}",
            std::io::Error::last_os_error()
        );
        Pty {
            master,
            slave: OwnedFd::from_raw_fd(s),
        }
    }
}

/// Read the master until every slave fd is closed (EIO).
fn drain(master: OwnedFd) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    tty: String,
}

/// Run the recipe as `as_` in a session of its own whose controlling
/// terminal is a fresh pty (also its stdin). Leaves nothing running.
fn run_on_pty(as_: As, args: &[String], env: &[(&str, &str)]) -> Output {
    let dir = common::run_dir(as_);
    for (name, data) in [("testlib.lua", common::TESTLIB), ("recipe.lua", RECIPE)] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        std::os::unix::fs::chown(&p, Some(as_.uid()), Some(as_.gid())).unwrap();
    }
    let pty = open_pty();
    let bin = common::binary(as_);
    let mut cmd = match as_ {
        As::Root => Command::new(&bin),
        As::User => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={}", common::NOBODY),
                format!("--regid={}", common::NOBODY),
                "--clear-groups".to_string(),
            ]);
            c.arg(&bin);
            c
        }
    };
    cmd.arg("recipe.lua")
        .args(args)
        .current_dir(dir.path())
        .env("NSRUN_TEST_DIR", dir.path())
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().copied())
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A session as a login gives one: its own session keyring, a
    // controlling terminal.
    // SAFETY: setsid, ioctl and keyctl are async-signal-safe; fd 0 is the
    // slave by now (std sets up stdio before these run).
    unsafe {
        cmd.pre_exec(|| {
            // KEYCTL_JOIN_SESSION_KEYRING(NULL): a new anonymous one.
            if libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) < 0
                || libc::setsid() < 0
                || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start nsrun");
    drop(cmd); // our copy of the slave: the master sees EIO once nsrun's are gone
    let sid = child.id() as i32;
    let tty = drain(pty.master);
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // What is left of the session goes, and is a failure.
    let mut left = Vec::new();
    let grace = Instant::now() + Duration::from_secs(3);
    loop {
        let now = common::live_where(common::Group::Session, sid);
        if now.is_empty() {
            break;
        }
        if status.is_none() || Instant::now() > grace {
            left = now;
            for (pid, _) in &left {
                // SAFETY: killing processes of the session we made.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = Output {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        tty: tty.join().unwrap_or_default(),
    };
    let report = format!(
        "--- nsrun as {} {args:?}\n--- stdout:\n{}--- stderr:\n{}---",
        as_.name(),
        o.stdout,
        o.stderr
    );
    assert!(status.is_some(), "timed out, killed\n{report}");
    assert!(
        left.is_empty(),
        "left running (now killed): {left:?}\n{report}"
    );
    o
}

// ---------------------------------------------------------------------------
// One configuration, one user.

#[derive(Debug, Clone)]
struct Seen {
    word: String,
    detail: String,
}

fn parse(stdout: &str, kind: &str) -> BTreeMap<String, Seen> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(kind).and_then(|l| l.strip_prefix(' ')))
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let (name, word) = (it.next()?, it.next()?);
            Some((
                name.to_string(),
                Seen {
                    word: word.to_string(),
                    detail: it.next().unwrap_or("").to_string(),
                },
            ))
        })
        .collect()
}

fn battery(as_: As, config: usize) {
    let (key, what) = CONFIGS[config];
    let fixtures = Fixtures::new(as_);
    let abstract_name = format!(
        "nsrun-escape-{}-{key}-{}",
        std::process::id(),
        random_hex(6)
    );
    let listener =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap())
            .expect("listen on an abstract unix socket");
    let secret = format!("NSRUNSECRET-{}", random_hex(16));
    let lua_secret = format!(
        "NSRUNSECRET-{}",
        secret[12..].chars().rev().collect::<String>()
    );
    let disk = host_disk();
    let run: Vec<&Attempt> = TABLE.iter().filter(|a| a.cells[config] != N).collect();
    let mut args = vec![
        format!("config={key}"),
        format!("fixtures={}", fixtures.path().display()),
        format!("abstract={abstract_name}"),
        format!("disk={disk}"),
    ];
    args.extend(
        run.iter()
            .map(|a| format!("{}:{}", a.name, a.control.arg(as_))),
    );

    let started = Instant::now();
    let out = run_on_pty(as_, &args, &[("NSRUN_TEST_SECRET", &secret)]);
    drop(listener);
    let results = parse(&out.stdout, "R");
    let controls = parse(&out.stdout, "C");
    let report = format!(
        "--- stdout:\n{}--- stderr:\n{}--- tty:\n{}\n---",
        out.stdout, out.stderr, out.tty
    );
    assert_eq!(
        out.stdout.lines().last(),
        Some("done"),
        "the recipe did not finish (code {:?})\n{report}",
        out.code
    );

    let mut problems = Vec::new();
    let mut lines = vec![format!(
        "escape battery, configuration {key} ({what}) as {}, {:.1}s:",
        as_.name(),
        started.elapsed().as_secs_f64()
    )];
    for a in &run {
        let want = a.cells[config];
        let got = results.get(a.name);
        let ctl = controls.get(a.name);
        let (word, detail) = got.map_or(("missing", ""), |s| (s.word.as_str(), s.detail.as_str()));
        let (cword, cdetail) =
            ctl.map_or(("missing", ""), |s| (s.word.as_str(), s.detail.as_str()));
        let mut note = String::new();
        // The control: the method must be real.
        match (a.control, as_, cword) {
            (Control::OpenRoot(why) | Control::CapsRoot(why), As::User, "none") => {
                note = format!("no control as uid 65534: {why}")
            }
            (_, _, "worked") => {}
            (_, _, "cannot") => note = format!("this kernel cannot run it: {cdetail}"),
            _ => problems.push(format!(
                "{}: the control did not work: {cword} {cdetail}",
                a.name
            )),
        }
        let ok = match (want, word) {
            (B, "stopped") => true,
            // A kernel without the feature stops it too: only where its
            // control said so.
            (B, "cannot") => cword == "cannot",
            (A, "worked") => true,
            _ => false,
        };
        let shown = match word {
            "worked" if want == B => "ESCAPED",
            "worked" => "allowed",
            "stopped" => "blocked",
            w => w,
        };
        if !ok {
            problems.push(format!(
                "{}: expected {}, got {shown}: {detail}",
                a.name,
                want.word()
            ));
        }
        lines.push(format!(
            "  {:<24} {:<8} {:<8} {}{}",
            a.name,
            want.word(),
            shown,
            detail,
            if note.is_empty() {
                String::new()
            } else {
                format!(" [{note}]")
            }
        ));
    }
    // The terminal saw the control's keystrokes, and no others.
    if run.iter().any(|a| a.name == "tty.tiocsti") {
        if !out.tty.contains("CONTROL-TIOCSTI") {
            problems.push(format!(
                "tty: the control's TIOCSTI did not reach the terminal: {:?}",
                out.tty
            ));
        }
        if out.tty.contains("ESCAPED-BY-TIOCSTI")
            && TABLE
                .iter()
                .any(|a| a.name == "tty.tiocsti" && a.cells[config] == B)
        {
            problems.push("tty: the sandbox's TIOCSTI reached the terminal".into());
        }
    }
    // The secret found in PID 1's memory: which copy.
    if let Some(s) = results.get("pid1.mem_secret") {
        if s.detail.contains(&lua_secret) {
            lines.push("  (the Lua-only copy of the secret was in PID 1's memory)".into());
        }
    }
    eprintln!("{}", lines.join("\n"));
    assert!(
        problems.is_empty(),
        "configuration {key} ({what}) as {}:\n  {}\n{report}",
        as_.name(),
        problems.join("\n  ")
    );
}

both!(
    /// A: `sandbox.run` with its defaults.
    fn defaults(as_) {
        battery(as_, 0);
    }
);

both!(
    /// B: `uid = 0` with `seccomp = "default"`.
    fn uid0_preset(as_) {
        battery(as_, 1);
    }
);

both!(
    /// C: a given `root = DIR`.
    fn given_root(as_) {
        battery(as_, 2);
    }
);

both!(
    /// D: `net = "host"`.
    fn host_net(as_) {
        battery(as_, 3);
    }
);

both!(
    /// E: `ns.spawn` with its documented defaults.
    fn spawn_defaults(as_) {
        battery(as_, 4);
    }
);
