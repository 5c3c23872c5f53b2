//! fork, clone's processes, wait, kill, exec and the getters.

mod common;

use common::{nsrun, run};

both!(
    fn fork_wait_kill_exec(as_) {
        let me = std::process::id().to_string();
        let d = run(as_, include_str!("recipes/process.lua"), &[&me]);
        d.finished(&[
            "getpid",
            "getppid",
            "getppid.test_process",
            "getuid",
            "geteuid",
            "getgid",
            "getegid",
            "fork.none.code",
            "fork.none.success",
            "fork.none.timed_out",
            "fork.seven",
            "fork.true",
            "fork.false",
            "fork.status_table",
            "fork.error",
            "fork.error_table",
            "fork.os_exit",
            "fork.parent",
            "fork.wait_again",
            "fork.copy",
            "try_wait.running",
            "kill.method",
            "kill.term.signal",
            "kill.term.code",
            "try_wait.done",
            "kill.after_reaped",
            "kill.sigkill.signal",
            "kill.sigkill.code",
            "kill.number.signal",
            "kill.number.code",
            "kill.lower_case",
            "kill.term_name",
            "kill.method_default",
            "kill.bad_name",
            "kill.bad_name_method",
            "kill.bad_number",
            "kill.bad_left_alive",
            "kill.zero_left_alive",
            "self_kill",
            "exec.env",
            "exec.sh",
            "exec.echo",
            "exec.echo_options",
            "exec.argv0_cmdline",
            "exec.status",
            "exec.path_search",
            "exec.inherits_env",
            "exec.missing",
            "exec.missing_hint",
            "exec.missing_path",
            "exec.eacces",
            "exec.bad_cwd",
        ]);
        assert_eq!(d.value("uid"), as_.uid().to_string());
        assert_eq!(d.value("gid"), as_.gid().to_string());
        // exec'd programs wrote to the same stdout.
        let lines: Vec<&str> = d.stdout.lines().collect();
        let i = lines.iter().position(|l| l.starts_with("NSRUN_")).unwrap_or_else(|| panic!("{}", d.report()));
        assert_eq!(&lines[i..i + 2], ["NSRUN_A=one", "NSRUN_B=2"], "env replaced\n{}", d.report());
        assert!(!lines[i + 2].contains('='), "more environment than given\n{}", d.report());
        d.stdout_has("\nargv0=my-argv0 pwd=/ foo=bar\n")
            .stdout_has("\necho-with-args a b\n")
            .stdout_has("\necho-with-options\n")
            .stdout_has("\nfancy-cat\0/proc/self/cmdline\0\n")
            .stdout_has("\n42 path-searched\n")
            .stdout_has(&format!("\ninherited={}\n", d.dir.path().display()));
        // The children's uncaught errors: message, traceback, exit 1.
        d.stderr_has("nsrun: recipe.lua:")
            .stderr_has(": boom in child\n")
            .stderr_has("stack traceback")
            .stderr_has("No such file or directory (ENOENT)");
    }
);

both!(
    fn exec_replaces_nsrun(as_) {
        let d = run(
            as_,
            "local ns = require 'nsrun'\nio.write('before ')\nns.exec({'sh', '-c', 'echo replaced; exit 3'})\nprint('not reached')\n",
            &[],
        );
        d.assert_code(3).stdout_is("before replaced\n").stderr_is("");
        let d = run(as_, "local ns = require 'nsrun'\nns.exec({'nsrun-no-such-program'})\n", &[]);
        d.fails_with("recipe.lua:2: exec nsrun-no-such-program: No such file or directory (ENOENT)")
            .stderr_has("hint: ");
    }
);

both!(
    fn fork_child_error_report(as_) {
        let d = run(
            as_,
            "local ns = require 'nsrun'\nlocal p = ns.fork(function()\n  print('in child')\n  error('child failed')\nend)\nlocal st = p:wait()\nprint('code', st.code, st.success)\n",
            &[],
        );
        d.success()
            .stdout_is("in child\ncode\t1\tfalse\n")
            .stderr_has("nsrun: recipe.lua:4: child failed\n")
            .stderr_has("stack traceback");
    }
);

both!(
    fn output_is_not_duplicated_by_fork(as_) {
        // Pending output of the parent must not be written again by children.
        let d = nsrun(as_)
            .recipe("local ns = require 'nsrun'\nio.write('once ')\nfor i = 1, 3 do ns.fork(function() io.write(i, ' ') end):wait() end\nprint('end')\n")
            .run();
        d.success().stdout_is("once 1 2 3 end\n");
    }
);
