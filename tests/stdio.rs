//! Stdio of `ns.spawn`/`ns.run` (issue 15): `input = "bytes"` (any size),
//! another process's pipe as stdin/stdout (`a | b`), Lua files as streams.
//!
//! The recipe is `tests/recipes/stdio.lua`, one part per test.

mod common;

use common::{nsrun, Done};

const LIB: &str = include_str!("recipes/spawn_lib.lua");

fn part(as_: common::As, name: &str) -> Done {
    nsrun(as_)
        .recipe(include_str!("recipes/stdio.lua"))
        .file("spawn_lib.lua", LIB.as_bytes())
        .args(&[name])
        .run()
}

both!(
    /// 1 MiB of every byte value through `cat` comes back intact (a
    /// parent writing a pipe first would block at 64 KiB); the program
    /// cannot write to it; `stdin` with it, or not a string, is refused.
    fn input_any_size(as_) {
        part(as_, "input").oks(&[
            "input.size",
            "input.code",
            "input.len",
            "input.intact",
            "spawn.no_stdin_pipe",
            "spawn.count",
            "spawn.code",
            "empty.out",
            "sealed.out",
            "both",
            "both.message",
            "not_string",
            "not_string.message",
            "word",
            "word.message",
            "sandbox.out",
            "input.no_children",
            "all",
        ]);
    }
);

both!(
    /// `stdin = a.stdout` (printf | tr) and `stdout = c.stdin`: the pipe
    /// is the new process's alone (readers see end of file, the recipe's
    /// use of it is an error); a 1 MiB write into a pipe nsrun had made
    /// non-blocking works; wrong ends and half-read pipes are refused.
    fn pipes_between_processes(as_) {
        part(as_, "pipes").oks(&[
            "pipe.out",
            "pipe.codes",
            "pipe.given",
            "pipe.given.message",
            "pipe.twice",
            "pipe.twice.message",
            "into_stdin.code",
            "into_stdin.stderr",
            "into_stdin.count",
            "into_stdin.wc",
            "three.out",
            "wrong.stdout",
            "wrong.stdout.message",
            "wrong.stdin",
            "wrong.stdin.message",
            "failed_spawn",
            "kept.out",
            "partial.first",
            "partial",
            "partial.message",
            "partial.rest",
            "pipes.no_children",
            "all",
        ]);
    }
);

both!(
    /// A Lua file (`io.open`) as stdout gets the output after what Lua
    /// had buffered; as stdin it is read; a closed one is refused.
    fn lua_files(as_) {
        part(as_, "files").oks(&[
            "file.code",
            "file.captured",
            "file.content",
            "file.stdin",
            "stderr.code",
            "closed",
            "closed.message",
            "table",
            "table.message",
            "files.no_children",
            "all",
        ]);
    }
);
