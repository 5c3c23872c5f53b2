//! `tty = true` through a real terminal: the harness opens a pty pair,
//! runs nsrun on the slave end as its stdin, stdout, stderr and
//! controlling terminal, types on the master and reads the screen. As
//! root and as uid 65534. Every wait has a timeout; a run still going at
//! the end is killed with its process group.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::As;

/// nsrun on a terminal of the test's.
struct Term {
    master: OwnedFd,
    /// Our copy of nsrun's terminal: its modes and input queue are looked at.
    slave: OwnedFd,
    child: Option<Child>,
    screen: Vec<u8>,
    /// Where the last `expect` matched: later ones look after it.
    mark: usize,
    dir: tempfile::TempDir,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn termios(fd: &OwnedFd) -> libc::termios {
    // SAFETY: termios is plain data that tcgetattr fills.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t
}

fn same_modes(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_cc == b.c_cc
}

impl Term {
    /// A run directory with `recipe` (and `files` beside it), and a new
    /// terminal of `rows`x`cols`.
    fn new(as_: As, recipe: &str, files: &[(&str, &[u8])], (rows, cols): (u16, u16)) -> Term {
        let dir = common::run_dir(as_);
        let mut all = vec![("recipe.lua", recipe.as_bytes())];
        all.extend_from_slice(files);
        for (name, data) in all {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            std::os::unix::fs::chown(&p, Some(as_.uid()), Some(as_.gid())).unwrap();
        }
        let pty = nix::pty::openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let master = pty.master;
        // SAFETY: fcntl on our master.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Term {
            master,
            slave: pty.slave,
            child: None,
            screen: Vec::new(),
            mark: 0,
            dir,
        }
    }

    /// Start nsrun as `as_` with `args` on the terminal, as its stdout,
    /// stderr, controlling terminal and (unless `stdin_null`) stdin.
    fn run(&mut self, as_: As, args: &[&str], stdin_null: bool) {
        let mut cmd = match as_ {
            As::Root => Command::new(common::binary(as_)),
            As::User => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(common::binary(as_));
                c
            }
        };
        let io = |f: &OwnedFd| Stdio::from(f.try_clone().unwrap());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("NSRUN_TEST_DIR", self.dir.path())
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("TERM", "dumb")
            .env_remove("RUST_LOG")
            .stdin(if stdin_null {
                Stdio::null()
            } else {
                io(&self.slave)
            })
            .stdout(io(&self.slave))
            .stderr(io(&self.slave));
        let ctty = if stdin_null { 1 } else { 0 };
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(ctty, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("start nsrun"));
    }

    /// [`Term::new`], then [`Term::run`] of `recipe.lua`.
    fn start(
        as_: As,
        recipe: &str,
        files: &[(&str, &[u8])],
        size: (u16, u16),
        stdin_null: bool,
    ) -> Term {
        let mut t = Term::new(as_, recipe, files, size);
        t.run(as_, &["recipe.lua"], stdin_null);
        t
    }

    /// Read what the screen got, for up to `ms`.
    fn pump(&mut self, ms: i32) {
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, ms) } <= 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: read(2) into a stack buffer.
            let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), 4096) };
            if n <= 0 {
                return;
            }
            self.screen.extend_from_slice(&buf[..n as usize]);
        }
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen).into_owned()
    }

    /// Wait until the screen shows `what` after the last match.
    fn expect(&mut self, what: &str, within: Duration) {
        let end = Instant::now() + within;
        loop {
            let hay = &self.screen[self.mark..];
            if let Some(i) = hay.windows(what.len()).position(|w| w == what.as_bytes()) {
                self.mark += i + what.len();
                return;
            }
            if Instant::now() > end {
                panic!("the screen never showed {what:?}:\n{}", self.shown());
            }
            self.pump(100);
        }
    }

    fn type_(&mut self, keys: &str) {
        let b = keys.as_bytes();
        // SAFETY: write(2) from a live slice.
        let n = unsafe { libc::write(self.master.as_raw_fd(), b.as_ptr().cast(), b.len()) };
        assert_eq!(n, b.len() as isize, "typing {keys:?}");
    }

    /// Resize the terminal from outside: the kernel sends SIGWINCH to
    /// its foreground group, nsrun.
    fn resize(&self, rows: u16, cols: u16) {
        // SAFETY: TIOCSWINSZ reads one winsize.
        assert_eq!(
            unsafe {
                libc::ioctl(
                    self.master.as_raw_fd(),
                    libc::TIOCSWINSZ,
                    &winsize(rows, cols),
                )
            },
            0
        );
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// nsrun's exit code (128+N for signal N), within `within`.
    fn wait(&mut self, within: Duration) -> i32 {
        let end = Instant::now() + within;
        loop {
            self.pump(50);
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                self.pump(50);
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            if Instant::now() > end {
                panic!("nsrun did not end within {within:?}:\n{}", self.shown());
            }
        }
    }

    /// Bytes waiting in nsrun's terminal's input queue (typed or injected,
    /// read by nobody).
    fn queued(&self) -> i32 {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        assert_eq!(
            unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut n) },
            0
        );
        n
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: nsrun leads its own session, hence group.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

const SEC: Duration = Duration::from_secs(1);

fn shell_example() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shell.lua")).unwrap()
}

both!(
    /// examples/shell.lua on a 40x120 terminal: the prompt; `tty` names
    /// /dev/console; `stty size` shows the size set outside, and the new
    /// one after the outer terminal is resized (SIGWINCH to nsrun, passed
    /// on); Ctrl-C ends a `sleep` but not the shell, Ctrl-Z stops one
    /// (job control); `exit 3` is nsrun's status 3; the terminal's modes
    /// are what they were before.
    fn shell_session(as_) {
        let shell = shell_example();
        let shell = String::from_utf8(shell).unwrap();
        let mut t = Term::start(as_, &shell, &[], (40, 120), false);
        let before = termios(&t.slave);
        t.expect("sandbox$ ", 20 * SEC);
        t.type_("tty; stty size; id -u\r");
        t.expect("/dev/console", 5 * SEC);
        t.expect("40 120", 5 * SEC);
        t.expect("1000", 5 * SEC);
        t.expect("sandbox$ ", 5 * SEC);
        // A devpts instance of the sandbox's own for the terminals opened
        // inside (not the one /dev/console, our pty, comes from).
        t.type_("test $(stat -c %d /dev/pts/ptmx) != $(stat -c %d /dev/console) && script -qc 'echo own-$((6*7))' /dev/null\r");
        t.expect("own-42", 5 * SEC);
        t.expect("sandbox$ ", 5 * SEC);
        // Raw while the shell runs: our terminal passes every key on.
        assert_eq!(termios(&t.slave).c_lflag & libc::ICANON, 0, "our terminal is raw");
        t.resize(50, 132);
        std::thread::sleep(Duration::from_millis(200));
        t.type_("stty size\r");
        t.expect("50 132", 5 * SEC);
        t.expect("sandbox$ ", 5 * SEC);
        t.type_("sleep 60; echo not-interrupted\r");
        t.expect("sleep 60", 5 * SEC);
        std::thread::sleep(Duration::from_millis(500));
        let typed = Instant::now();
        t.type_("\x03");
        t.expect("sandbox$ ", 10 * SEC);
        t.type_("echo alive $?\r");
        t.expect("alive 130", 5 * SEC);
        assert!(typed.elapsed() < 20 * SEC);
        t.type_("sleep 60\r");
        t.expect("sleep 60", 5 * SEC);
        std::thread::sleep(Duration::from_millis(500));
        t.type_("\x1a");
        t.expect("Stopped", 10 * SEC);
        t.expect("sandbox$ ", 5 * SEC);
        t.type_("kill -9 %1; sleep 0.2; jobs\r");
        t.expect("Killed", 10 * SEC);
        t.expect("sandbox$ ", 5 * SEC);
        t.type_("exit 3\r");
        assert_eq!(t.wait(20 * SEC), 3, "{}", t.shown());
        assert!(!t.shown().contains("\nnot-interrupted"), "{}", t.shown());
        assert!(same_modes(&before, &termios(&t.slave)), "the terminal's modes changed");
    }
);

both!(
    /// SIGTERM to nsrun while it relays: passed on to the program, which
    /// ends; nsrun ends and the terminal's modes come back.
    fn modes_restored_after_a_signal(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            local st = ns.spawn{argv = {"sleep", "60"}, tty = true, namespaces = {"user", "pid"}}:wait()
            print("signal " .. tostring(st.signal))
        "#;
        let mut t = Term::start(as_, recipe, &[], (24, 80), false);
        let before = termios(&t.slave);
        let end = Instant::now() + 20 * SEC;
        while termios(&t.slave).c_lflag & libc::ICANON != 0 {
            assert!(Instant::now() < end, "our terminal never went raw:\n{}", t.shown());
            t.pump(50);
        }
        // SAFETY: a signal to the nsrun we started.
        unsafe { libc::kill(t.pid(), libc::SIGTERM) };
        assert_eq!(t.wait(10 * SEC), 0, "{}", t.shown());
        t.expect("signal 15", SEC);
        assert!(same_modes(&before, &termios(&t.slave)), "the terminal's modes changed");
    }
);

both!(
    /// Without a terminal of ours: `p.tty` is the master. The program has
    /// a terminal on stdin/stdout/stderr as its controlling one, of the
    /// default size (24x80) and then of the size `p:resize` sets; what
    /// the recipe writes it reads; its output and status come back.
    fn master_for_the_recipe(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            local p = ns.spawn{
              argv = {"sh", "-c", [[
                test -t 0 && test -t 1 && test -t 2 && echo all-terminals
                stty size
                read x; echo "got:$x"
                read y; stty size
                exec 3</dev/tty && echo has-ctty
                exit 4]]},
              tty = true, namespaces = {"user", "pid", "mount"}, timeout = 30,
            }
            assert(p.stdin == nil and p.stdout == nil)
            assert(tostring(p.tty) == "tty (master end)", tostring(p.tty))
            local function want(s)
              for line in p.tty:lines() do
                if line:find(s, 1, true) then return end
              end
              error("never saw " .. s)
            end
            want("all-terminals")
            want("24 80")
            p.tty:write("hello\n")
            want("got:hello")
            p:resize(33, 99)
            p.tty:write("go\n")
            want("33 99")
            want("has-ctty")
            local st = p:wait()
            print("code " .. st.code)
            local ok, err = pcall(p.resize, p, 0, 10)
            print("resize 0: " .. tostring(err))
        "#;
        let d = common::run(as_, recipe, &[]);
        d.success().stdout_has("code 4").stdout_has("rows must be 1 to 65535");
    }
);

both!(
    /// The program cannot type into the caller's terminal. Control: without
    /// `tty` it shares nsrun's terminal, and TIOCSTI on its stdout puts
    /// bytes in that terminal's input queue. Attack: with `tty = true` it
    /// tries TIOCSTI on its fds, on /dev/tty and on nsrun's stdout through
    /// /proc; nothing reaches our terminal's queue. (nsrun's stdin is
    /// /dev/null: nsrun reads nothing of our terminal either way.)
    fn no_tiocsti_into_the_callers_terminal(as_) {
        let perl = r#"
            my $n = 0;
            my @fh;
            my $pp = getppid();
            for my $fd (0, 1, 2) { my $h; open($h, "+<&=", $fd) and push @fh, $h }
            for my $path ("/dev/tty", "/proc/$pp/fd/1") { my $h; open($h, "+<", $path) and push @fh, $h }
            my $c = "\n";
            for my $h (@fh) { $n++ if ioctl($h, 0x5412, $c) }
            print STDERR "tried " . scalar(@fh) . " injected $n\n";
        "#;
        let recipe = format!(
            r#"
            local ns = require "nsrun"
            local tty = arg[1] == "attack"
            local p = ns.spawn{{argv = {{"perl", "-e", {perl:?}}}, tty = tty, namespaces = {{"user"}}}}
            if tty then io.stderr:write(p.tty:read("a")) end
            print("code " .. p:wait().code)
        "#
        );
        let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
            .map_or(true, |s| s.trim() != "0");
        for mode in ["control", "attack"] {
            let recipe = recipe.replace("arg[1]", &format!("{mode:?}"));
            let mut t = Term::start(as_, &recipe, &[], (24, 80), true);
            assert_eq!(t.wait(20 * SEC), 0, "{mode}: {}", t.shown());
            t.expect("tried", SEC);
            let queued = t.queued();
            match mode {
                "control" if legacy => assert!(queued > 0, "control: nothing injected:\n{}", t.shown()),
                "control" => {}
                _ => assert_eq!(queued, 0, "attack: {queued} bytes injected:\n{}", t.shown()),
            }
        }
    }
);

both!(
    /// `--plan` of examples/shell.lua from a terminal opens no pty and
    /// leaves the terminal's modes alone; the plan names the pty.
    fn plan_opens_no_terminal(as_) {
        let shell = shell_example();
        let shell = String::from_utf8(shell).unwrap();
        let mut t = Term::new(as_, &shell, &[], (24, 80));
        let before = termios(&t.slave);
        t.run(as_, &["--plan", "recipe.lua"], false);
        assert_eq!(t.wait(20 * SEC), 0, "{}", t.shown());
        assert!(t.shown().contains("/dev/ptmx"), "the plan names the pty:\n{}", t.shown());
        assert!(same_modes(&before, &termios(&t.slave)), "--plan changed the terminal's modes");
    }
);

both!(
    /// `tty = "master"` from a terminal: no relay (our terminal stays as it
    /// was, nothing typed reaches the program), `p.tty` is the recipe's.
    /// Bad values and a terminal with no stream left to it are refused by
    /// name, before anything starts.
    fn master_mode_and_errors(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            local p = ns.spawn{argv = {"sh", "-c", "read x; echo got:$x"}, tty = "master", namespaces = {"user"}}
            p.tty:write("typed-by-recipe\n")
            for line in p.tty:lines() do
              if line:find("^got:") then io.stderr:write("program " .. line .. "\n") break end
            end
            print("code " .. p:wait().code)
            for _, bad in ipairs { "yes", 1 } do
              local ok, e = pcall(ns.spawn, {argv = {"true"}, tty = bad})
              print("bad: " .. tostring(e))
            end
            local ok, e = pcall(ns.spawn, {argv = {"true"}, tty = true, stdin = "null", stdout = "null", stderr = "null"})
            print("all given: " .. tostring(e))
        "#;
        let mut t = Term::start(as_, recipe, &[], (24, 80), false);
        let before = termios(&t.slave);
        assert_eq!(t.wait(20 * SEC), 0, "{}", t.shown());
        let screen = t.shown();
        assert!(screen.contains("program got:typed-by-recipe"), "{screen}");
        assert!(screen.contains("code 0"), "{screen}");
        assert!(screen.contains("tty must be true, false or \"master\""), "{screen}");
        assert!(screen.contains("got 'yes'") && screen.contains("got number"), "{screen}");
        assert!(screen.contains("all given: ") && screen.contains("leave at least one unset"), "{screen}");
        assert!(same_modes(&before, &termios(&t.slave)), "the terminal's modes changed");
    }
);
