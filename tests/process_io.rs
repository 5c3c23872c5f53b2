//! A started process's pipes (issue 14, items 5, 11 and 15): `wait` closes
//! our end of stdin and the pipes, `timeout` holds for every blocking call
//! on the process and its pipes, `<close>` on processes and pipes, and a
//! forked child never tears down the processes it inherited.
//!
//! The recipe is `tests/recipes/process_io.lua`, one part per test.

mod common;

use common::{nsrun, Done};

const LIB: &str = include_str!("recipes/spawn_lib.lua");

fn part(as_: common::As, name: &str) -> Done {
    nsrun(as_)
        .recipe(include_str!("recipes/process_io.lua"))
        .file("spawn_lib.lua", LIB.as_bytes())
        .args(&[name])
        .run()
}

both!(
    /// `wait` ends although the recipe holds the stdin pipe (it used to
    /// hang), and later writes say why they fail; what came out before
    /// the wait is still read; `output()` keeps what a read buffered.
    fn wait_closes_stdin(as_) {
        part(as_, "stdin").oks(&[
            "wait.code",
            "wait.at_once",
            "wait.write_after",
            "wait.write_after.message",
            "rest.code",
            "rest.read",
            "rest.eof",
            "try_wait.code",
            "try_wait.lines",
            "output.first_line",
            "output.rest",
            "output.stderr",
            "lines",
            "lines.code",
            "stdin.no_child_left",
            "all",
        ]);
    }
);

both!(
    /// `timeout = 1` cuts pipe reads, `lines()`, `ns.run` and `output()`
    /// with a background job holding stdout (all took 6 s), and a write
    /// the process does not take (it blocked for good); a process that
    /// ended in time is not marked however late it is read.
    fn timeout_holds_for_pipes(as_) {
        part(as_, "timeout").oks(&[
            "read.in_time",
            "read.what_came",
            "read.timed_out",
            "read.killed",
            "lines.in_time",
            "lines.what_came",
            "lines.timed_out",
            "count.in_time",
            "count.eof",
            "count.timed_out",
            "run.in_time",
            "run.timed_out",
            "run.stdout",
            "run.background_killed",
            "output.in_time",
            "output.timed_out",
            "output.stdout",
            "write.in_time",
            "write.raised",
            "write.message",
            "write.timed_out",
            "write.again",
            "late.read",
            "late.not_timed_out",
            "late.output",
            "late.output.not_timed_out",
            "timeout.no_child_left",
            "all",
        ]);
    }
);

both!(
    /// 60 spawns with three pipes each, the collector stopped: the fd
    /// count stays flat (the pipes used to wait for a collection).
    fn waiting_closes_the_pipes(as_) {
        part(as_, "fds").oks(&["fds.flat", "fds.no_child_left", "all"]);
    }
);

both!(
    /// `<close>` kills and reaps a running process, reaps an ended one,
    /// closes a pipe; a forked child's `<close>` and `os.exit(0, true)`
    /// leave the parent's process (and, as root, its cgroup) alone.
    fn close_and_forked_copies(as_) {
        part(as_, "close").oks(&[
            "process.killed",
            "process.pipe_closed",
            "pipe.closed",
            "pipe.wait",
            "ended.code",
            "fork.close.code",
            "fork.close.alive",
            "fork.exit.code",
            "fork.exit.alive",
            "fork.kill",
            "fork.wait",
            "close.no_child_left",
            "all",
        ]);
    }
);
