//! `ns.spawn` and `ns.run` (issue 3, point 6): exit codes with and without
//! init, signals to nsrun, SIGKILL of nsrun, orphans, timeouts, fds, large
//! pipes, failures before exec, validation of the options, and a long loop
//! of spawns that must leave the host process flat.
//!
//! The recipes are `tests/recipes/spawn_*.lua`; each run directory also gets
//! `spawn_lib.lua` (their shared helpers) next to `testlib.lua`.

mod common;

use std::time::{Duration, Instant};

use common::{nsrun, As, Done, Nsrun};

const LIB: &str = include_str!("recipes/spawn_lib.lua");

/// A run of `recipe` (the text of a spawn_*.lua) with the helpers beside it.
fn with_lib(as_: As, recipe: &str) -> Nsrun {
    nsrun(as_)
        .recipe(recipe)
        .file("spawn_lib.lua", LIB.as_bytes())
}

/// Run `recipe` with `args` to the end.
fn run_recipe(as_: As, recipe: &str, args: &[&str]) -> Done {
    with_lib(as_, recipe).args(args).run()
}

/// Assert the recipe ran to its end (`ok all`), exit 0, no failed check,
/// and the `ok` lines `names`.
#[track_caller]
fn finished(d: &Done, names: &[&str]) {
    let mut all = names.to_vec();
    all.push("all");
    d.oks(&all);
}

/// `namespaces = ...` in Lua source for a sandbox of `kinds` (see S.kinds).
fn kinds(as_: As, kinds: &str) -> String {
    match (as_, kinds) {
        (As::Root, "") => "nil".to_string(),
        (As::Root, k) => format!("{k:?}"),
        (As::User, "") => "\"user\"".to_string(),
        (As::User, k) => format!("\"user,{k}\""),
    }
}

// ---------------------------------------------------------------------------
// Exit codes.

both!(
    /// Statuses of exit 0/1/42 and of death by signal (128+N), from spawn,
    /// run and fn: without a pid namespace, with the init, as PID 1, and
    /// behind a relay.
    fn exit_codes(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_exit_codes.lua"), &[]);
        finished(
            &d,
            &[
                "plain.spawn.0.code",
                "plain.run.42.code",
                "plain.fn.1.code",
                "plain.kill9.code",
                "plain.term.code",
                "plain.self_term.signal",
                "init.spawn.42.code",
                "init.run.1.code",
                "init.fn.42.code",
                "init.wait2.code",
                "init.kill9.signal",
                "init.term.code",
                "init.usr1.code",
                "init.self_term.code",
                "init.self_hup.code",
                "init.self_kill.code",
                "noinit.spawn.42.code",
                "noinit.run.0.success",
                "noinit.kill9.code",
                "noinit.trapped_term.code",
                "noinit.reaped",
                "relay.spawn.42.code",
                "relay.run.1.code",
                "relay.fn.42.code",
                "relay.term.code",
                "relay.self_term.code",
                "relay.kill9.code",
                "relay_init.run.42.code",
                "relay_init.term.code",
                "relay_init.self_hup.code",
                "relay_init.kill9.code",
                "relay_init.reaped",
            ],
        );
    }
);

both!(
    /// A recipe returning a status makes nsrun exit with its code, 128+N
    /// for a signal.
    fn recipe_returns_the_status(as_) {
        for (k, init) in [("", "nil"), ("pid", "nil"), ("pid", "false")] {
            let ns = kinds(as_, k);
            for (script, want) in [
                ("exit 0", 0),
                ("exit 1", 1),
                ("exit 42", 42),
                ("kill -TERM $$", 143),
                ("kill -USR2 $$", 140),
            ] {
                if init == "false" && script.starts_with("kill") {
                    continue; // PID 1 does not get signals it has no handler for
                }
                let src = format!(
                    "local ns = require \"nsrun\"\n\
                     return ns.run{{argv = {{\"sh\", \"-c\", {script:?}}}, namespaces = {ns}, init = {init}}}\n"
                );
                let d = nsrun(as_).recipe(&src).run();
                d.assert_code(want).stderr_is("");
            }
            // A SIGKILLed PID 1 too.
            let src = format!(
                "local ns = require \"nsrun\"\n\
                 local p = ns.spawn{{argv = {{\"sleep\", \"100\"}}, namespaces = {ns}, init = {init}}}\n\
                 p:kill(9)\n\
                 return p:wait()\n"
            );
            nsrun(as_).recipe(&src).run().assert_code(137).stderr_is("");
        }
    }
);

// ---------------------------------------------------------------------------
// Signals to nsrun.

/// Start the signal recipe in `mode`, send `sig` to nsrun once the program
/// is ready, and check the program got it (it exits 7 after saying so).
fn signal_reaches_program(as_: As, mode: &str, name: &str, sig: i32) {
    let mut r = with_lib(as_, include_str!("recipes/spawn_signal.lua"))
        .args(&[mode, name])
        .spawn();
    r.wait_for_file("ready");
    // SAFETY: kill(2) on the nsrun we started.
    assert_eq!(unsafe { libc::kill(r.pid(), sig) }, 0, "kill nsrun");
    let d = r.wait();
    d.assert_code(7)
        .stdout_has(&format!("trapped {name}\n"))
        .assert_oks(&["code", "signal", "all"]);
    assert!(
        !d.stdout.contains("no signal came"),
        "{mode}/{name}\n{}",
        d.report()
    );
}

both!(
    /// SIGTERM to nsrun reaches the program: without a pid namespace,
    /// through the init, and to a program that is PID 1 itself.
    fn sigterm_reaches_the_program(as_) {
        for mode in ["plain", "init", "noinit", "relay"] {
            signal_reaches_program(as_, mode, "TERM", libc::SIGTERM);
        }
    }
);

both!(
    /// The other forwarded signals, through the init.
    fn forwarded_signals(as_) {
        for (name, sig) in [
            ("INT", libc::SIGINT),
            ("HUP", libc::SIGHUP),
            ("QUIT", libc::SIGQUIT),
            ("USR1", libc::SIGUSR1),
            ("USR2", libc::SIGUSR2),
        ] {
            signal_reaches_program(as_, "init", name, sig);
        }
    }
);

// ---------------------------------------------------------------------------
// SIGKILL to nsrun.

/// (state, start time) of a process from /proc/PID/stat, or None.
fn proc_stat(pid: i32) -> Option<(String, String, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    // Fields after the comm: state is 3 (index 0), starttime is 22 (index 19).
    Some((comm, rest.first()?.to_string(), rest.get(19)?.parse().ok()?))
}

/// Whether the process that had `start` as start time is gone (or a zombie,
/// which is dead and only waits for its new parent to reap it).
fn gone(pid: i32, start: u64) -> bool {
    match proc_stat(pid) {
        None => true,
        Some((_, state, st)) => st != start || state == "Z" || state == "X",
    }
}

both!(
    /// SIGKILL to nsrun kills all its sandboxes within a second.
    fn sigkill_kills_the_sandboxes(as_) {
        let mut r = with_lib(as_, include_str!("recipes/spawn_sigkill.lua")).spawn();
        r.wait_for_file("pids");
        let text = std::fs::read_to_string(r.dir().join("pids")).unwrap();
        let mut procs = Vec::new();
        for line in text.lines() {
            let (what, pid) = line.split_once(' ').unwrap();
            let pid: i32 = pid.parse().unwrap();
            let (comm, state, start) =
                proc_stat(pid).unwrap_or_else(|| panic!("{what} {pid} is not running"));
            assert_ne!(state, "Z", "{what} {pid} is a zombie already");
            let want = if what == "init" || what == "relay" {
                "nsrun"
            } else {
                "sleep"
            };
            assert_eq!(comm, want, "{what} {pid}");
            procs.push((what.to_string(), pid, start));
        }
        assert_eq!(procs.len(), 7, "{text}");

        // SAFETY: kill(2) on the nsrun we started.
        assert_eq!(unsafe { libc::kill(r.pid(), libc::SIGKILL) }, 0);
        let t0 = Instant::now();
        let mut left = procs.clone();
        while !left.is_empty() && t0.elapsed() < Duration::from_secs(1) {
            left.retain(|(_, pid, start)| !gone(*pid, *start));
            std::thread::sleep(Duration::from_millis(5));
        }
        let d = r.wait();
        assert!(
            left.is_empty(),
            "still running 1 s after SIGKILL to nsrun: {left:?}\n{}",
            d.report()
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(d.status.signal(), Some(libc::SIGKILL), "{}", d.report());
        assert!(!d.stdout.contains("not killed"), "{}", d.report());
    }
);

// ---------------------------------------------------------------------------
// Orphans.

both!(
    /// 100 orphaned grandchildren (and 100 more killed while adopted by
    /// the init) leave no zombie in the sandbox and nothing on the host.
    fn orphans_leave_no_zombie(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_zombies.lua"), &[]);
        finished(
            &d,
            &[
                "code",
                "adopted",
                "no zombie in the sandbox",
                "only init and the program left",
                "no child left",
            ],
        );
    }
);

// ---------------------------------------------------------------------------
// Timeouts.

both!(
    /// `timeout = 1` stops `sleep 100` and the status says so; the whole
    /// tree is killed; a recipe returning that status exits 137.
    fn timeout_stops_the_tree(as_) {
        let t0 = Instant::now();
        let d = run_recipe(as_, include_str!("recipes/spawn_timeout.lua"), &[]);
        d.assert_code(137).assert_oks(&[
            "plain.timed_out",
            "plain.signal",
            "plain.code",
            "plain.not_early",
            "plain.not_late",
            "plain.wait_again",
            "plain.kill_after",
            "init.timed_out",
            "init.not_late",
            "noinit.timed_out",
            "noinit.not_late",
            "run.plain.timed_out",
            "run.plain.stdout",
            "run.plain.tree.1",
            "run.plain.tree.2",
            "run.init.timed_out",
            "run.init.stdout",
            "try_wait.ended",
            "try_wait.timed_out",
            "output.timed_out",
            "output.stdout",
            "output.stderr",
            "in_time.timed_out",
            "in_time.code",
            "no child left",
            "all",
        ]);
        d.stderr_is("");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "took {:?}\n{}",
            t0.elapsed(),
            d.report()
        );
    }
);

both!(
    /// The timeout and p:kill also stop a process behind a relay (a new
    /// time namespace without a new pid namespace).
    fn timeout_and_kill_behind_a_relay(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_timeout.lua"), &["relay"]);
        finished(
            &d,
            &[
                "relay.wait.timed_out",
                "relay.wait.code",
                "relay.wait.not_early",
                "relay.wait.not_late",
                "relay.wait.killed",
                "relay.run.timed_out",
                "relay.run.not_late",
                "relay.run.killed",
                "relay.kill.sent",
                "relay.kill.code",
                "relay.kill.timed_out",
                "relay.kill.at_once",
                "relay.kill.killed",
                "relay.no_child_left",
            ],
        );
    }
);

// ---------------------------------------------------------------------------
// File descriptors.

both!(
    /// No fd beyond 0–2 reaches the program, `keep_fds` does: without a
    /// pid namespace, under the init, as PID 1, behind a relay.
    fn fds_are_closed_and_keep_fds_pass(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_fds.lua"), &["program"]);
        finished(
            &d,
            &[
                "nsrun has more fds",
                "plain.only_0_1_2",
                "plain.keep_fds",
                "init.only_0_1_2",
                "init.keep_fds",
                "noinit.only_0_1_2",
                "noinit.keep_fds",
                "relay.only_0_1_2",
                "relay.keep_fds",
                "other.code",
            ],
        );
    }
);

both!(
    /// The recipe's open files (a file, a namespace handle, another
    /// child's pipes) reach no process of the sandbox: not the program, and
    /// not the init or relay either, whose fds the program can open
    /// through /proc.
    fn recipe_fds_do_not_reach_the_sandbox(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_fds.lua"), &["sandbox"]);
        finished(
            &d,
            &[
                "init.sees_pid_1",
                "init.no_recipe_file",
                "init.no_ns_handle",
                "init.no_content",
                "relay.sees_pid_1",
                "relay.no_recipe_file",
                "relay.no_ns_handle",
                "relay.no_content",
                "other.code",
            ],
        );
    }
);

// ---------------------------------------------------------------------------
// Pipes.

both!(
    /// 10 MB through the pipes: captured by ns.run (stdout and stderr at
    /// once), written to stdin, read with :read("a") and :output().
    fn ten_megabytes_through_a_pipe(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_pipe.lua"), &[]);
        let mut names = Vec::new();
        for m in ["plain", "init"] {
            for c in [
                "run.stdout",
                "both.stdout",
                "both.stderr",
                "stdin.copy",
                "wc",
                "read_a",
                "output.stdout",
                "output.stderr",
            ] {
                names.push(format!("{m}.{c}"));
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        finished(&d, &names);
    }
);

both!(
    /// Closing the stdin pipe gives the program EOF, with or without a
    /// relay in front of it (time namespace, new namespaces after joins).
    fn stdin_pipe_reaches_eof(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_stdin_eof.lua"), &[]);
        let mut names = Vec::new();
        for m in ["plain", "init", "time_pid", "join", "join_pid", "time"] {
            for c in ["stdout", "timed_out", "code"] {
                names.push(format!("{m}.{c}"));
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        finished(&d, &names);
    }
);

// ---------------------------------------------------------------------------
// Failures before exec.

both!(
    /// A missing program (named, ENOENT), a failing mount and an error() in
    /// setup (with the recipe's file:line), errors in before_start: raised
    /// in the parent, the program never runs and no child is left.
    fn failures_before_exec(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_errors.lua"), &[]);
        let mut names = Vec::new();
        for m in ["plain", "mount", "init", "noinit", "time"] {
            for c in [
                "missing.names_it",
                "missing.where",
                "missing.no_child",
                "missing_run.where",
                "missing_path.names_it",
                "not_executable",
                "cwd.names_it",
                "setup_error.message",
                "setup_error.no_child",
                "setup_error_run.message",
                "before_start.message",
                "before_start.child_gone",
                "before_start.no_child",
                "program_never_ran",
                "after.stdout",
            ] {
                names.push(format!("{m}.{c}"));
            }
            if m != "plain" {
                names.push(format!("{m}.mount.prefix"));
                names.push(format!("{m}.mount.errno"));
                names.push(format!("{m}.mount.no_child"));
            }
        }
        if as_ == As::Root {
            // Maps the kernel refuses, written beside a child that shares
            // our memory: raised, and no child left.
            for c in ["uid", "gid", "gid_deny"] {
                for k in ["user", "user,mount,pid"] {
                    for check in ["", ".file", ".where", ".no_child"] {
                        names.push(format!("badmap.{c}.{k}{check}"));
                    }
                }
            }
            names.push("badmap.program_never_ran".into());
            names.push("badmap.after".into());
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        finished(&d, &names);
    }
);

both!(
    /// An uncaught error from setup ends nsrun with exit code 1 and the
    /// message once, with both locations; no child is left behind.
    fn uncaught_setup_error(as_) {
        let ns = kinds(as_, "pid,mount");
        let src = format!(
            "local ns = require \"nsrun\"\n\
             ns.spawn{{argv = {{\"true\"}}, namespaces = {ns}, setup = function()\n\
             \x20 error(\"boom\")\n\
             end}}\n\
             print(\"not reached\")\n"
        );
        let d = nsrun(as_).recipe(&src).run();
        d.fails_with("recipe.lua:2: spawn: setup: recipe.lua:3: boom")
            .stderr_is("nsrun: recipe.lua:2: spawn: setup: recipe.lua:3: boom\n")
            .stdout_is("");

        let src = format!(
            "local ns = require \"nsrun\"\n\
             ns.run{{argv = {{\"no-such-program-nsrun\"}}, namespaces = {ns}, env = {{PATH = \"/usr/bin:/bin\"}}}}\n"
        );
        let d = nsrun(as_).recipe(&src).run();
        d.assert_code(1)
            .stderr_has("nsrun: recipe.lua:2: exec no-such-program-nsrun: No such file or directory (ENOENT)\n")
            .stdout_is("");
    }
);

// ---------------------------------------------------------------------------
// Validation of the options.

both!(
    /// Unknown keys with "did you mean", "hostname requires uts" and every
    /// other mistake in the options: raised at the call with its location,
    /// before setup or the program runs, leaving no child.
    fn options_are_validated(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_options.lua"), &[]);
        finished(
            &d,
            &[
                "unknown.namespace",
                "unknown.namespace.where",
                "unknown.namespace.no_child",
                "unknown.stdot",
                "unknown.keepfds",
                "unknown.timout",
                "unknown.run",
                "hostname_needs_uts",
                "hostname_needs_uts.where",
                "hostname_needs_uts.setup_not_run",
                "hostname_needs_uts.program_not_run",
                "hostname_needs_uts.no_child",
                "hostname_needs_uts.run",
                "domainname_needs_uts",
                "time_offsets_need_time",
                "uid_map_needs_user",
                "init_needs_pid",
                "keep_fds.standard",
                "keep_fds.closed",
                "argv.string",
                "argv.and_fn",
                "timeout.zero",
                "timeout.negative",
                "timeout.huge",
                "timeout.maxinteger",
                "timeout.inf",
                "join.and_new",
                "caps.empty",
                "caps.unknown",
                "seccomp.unknown",
                "seccomp.errno",
                "seccomp.action",
                "seccomp.preset",
                "rlimits.unknown",
                "rlimits.size",
                "rlimits.pair",
                "cgroup.key",
                "cgroup.cpu",
                "known.before_start",
                "neither",
                "no_table",
                "valid.setup_ran",
                "valid.program_ran",
            ],
        );
    }
);

// ---------------------------------------------------------------------------
// Resources.

both!(
    /// 1000 spawns (of five kinds, failures included) leave the fd count and
    /// the RSS of nsrun flat.
    fn a_thousand_spawns_leave_the_host_flat(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_loop.lua"), &["1000"]);
        finished(&d, &["fds flat", "rss flat", "no child left"]);
        eprintln!(
            "{}: 1000 spawns in {} s, RSS {} -> {} kB, fds {} -> {}",
            as_.name(),
            d.value("seconds"),
            d.value("rss_before_kb"),
            d.value("rss_after_kb"),
            d.value("fds_before"),
            d.value("fds_after")
        );
    }
);

// ---------------------------------------------------------------------------
// The other options.

both!(
    /// stdio ("null", paths, fds, inherit, pipes), env/clear_env/cwd/argv0,
    /// identity, hostname, time offsets, new_session, join, fn,
    /// before_start and the process methods.
    fn options_do_what_they_say(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_features.lua"), &[]);
        finished(
            &d,
            &[
                "stdio.path.out",
                "stdio.path.truncated",
                "stdio.null.stdin",
                "stdio.null.no_capture",
                "stdio.inherit.no_capture",
                "stdio.fd.code",
                "stdio.default.output",
                "read.l",
                "read.n",
                "read.eof",
                "read.huge_count",
                "read.huge_count.eof",
                "env.set_remove.cwd",
                "env.clear",
                "argv0",
                "uts.names",
                "uts.host_unchanged",
                "time.boottime",
                "session.new",
                "session.kept",
                "ns.inode",
                "join",
                "join.and_new",
                "join.and_new.noinit",
                "fn.pid_init",
                "fn.pid_noinit",
                "fn.stdout",
                "fn.code",
                "fn.error",
                "before_start.pid",
                "before_start.before_exec",
                "before_start.after",
                "try_wait.running",
                "kill.running",
                "try_wait.after",
                "kill.after",
                "tostring.exited",
            ],
        );
        let ids: &[&str] = match as_ {
            As::Root => &["id.uid_gid", "id.user_ns_root"],
            As::User => &["id.default_root", "id.self", "id.ranges", "id.setgroups"],
        };
        d.assert_oks(ids)
            .stdout_has("\ninherited-out\n")
            .stdout_has("\nvia-fd-1\n")
            .stderr_is("inherited-err\n");
    }
);

both!(
    /// The program gets SIGPIPE at its default action and no signal
    /// blocked, though nsrun ignores SIGPIPE and blocks signals it forwards.
    fn program_starts_with_default_signals(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_signals.lua"), &[]);
        let mut names = Vec::new();
        for m in ["plain", "init", "noinit", "relay"] {
            for c in ["code", "ignored", "blocked"] {
                names.push(format!("{m}.{c}"));
            }
        }
        names.push("yes.sigpipe".into());
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        finished(&d, &names);
    }
);

both!(
    /// `mount_proc`: a fresh proc before setup, at /proc or a path, showing
    /// the new pid namespace, refused without a new mount namespace.
    fn mount_proc_option(as_) {
        let d = run_recipe(as_, include_str!("recipes/spawn_mount_proc.lua"), &[]);
        finished(
            &d,
            &[
                "init.runs",
                "init.only_the_sandbox",
                "init.new_pid_ns",
                "noinit.runs",
                "noinit.only_the_sandbox",
                "noinit.new_pid_ns",
                "before_setup",
                "path",
                "relative",
                "missing",
                "missing.names_it",
                "missing.not_created",
                "missing.no_child",
                "needs_mount",
                "bad_value",
                "without_pid",
                "host_proc",
            ],
        );
    }
);

/// A timeout past what `Instant` can hold is no deadline, not a panic
/// (found by the fuzz driver; the Lua side refuses such timeouts earlier).
/// And a process with more than one thread (this test harness) is refused
/// a fork, with a message that says why.
#[test]
fn rust_api_huge_timeout_and_threads() {
    let spawn = || {
        let mut c = nsrun::Spawn::new(["/bin/true"])
            .timeout(Duration::MAX)
            .spawn()?;
        let st = c.wait()?;
        Ok::<_, nsrun::Error>(st.success() && !c.timed_out())
    };
    // The harness runs tests on threads of its own.
    let e = spawn().expect_err("a threaded process must not fork");
    assert!(e.to_string().contains("threads"), "{e}");
    // A single-threaded process may: our own fork of the harness.
    // SAFETY: the child only runs the spawn and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = matches!(spawn(), Ok(true));
        // SAFETY: leaving the forked test process at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "status {st:#x}"
    );
}
