//! Holding up: many sandboxes in turn and at once leave the host's fds,
//! memory and mount table flat and no zombie behind; recipes that are not
//! Lua, empty, huge or binary give a clear error.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

fn nsrun(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn two_thousand_in_turn_and_fifty_at_once() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let out = nsrun(&[
        "-e",
        r#"local ns = require "nsrun"
           local function fds() return #ns.readdir("/proc/self/fd") end
           local function rss()
             return tonumber(ns.read_file("/proc/self/status"):match("VmRSS:%s+(%d+)"))
           end
           local function mounts() return select(2, ns.read_file("/proc/self/mountinfo"):gsub("\n", "")) end
           local opts = {argv = {"/bin/sh", "-c", "exit $0", "0"}, namespaces = "user,mount,pid,ipc,uts",
                         setup = function() ns.mount("proc", "/proc", "proc") end}
           -- Warm up, then measure.
           for _ = 1, 50 do assert(ns.spawn(opts):wait().code == 0) end
           collectgarbage() collectgarbage()
           local f0, r0, m0 = fds(), rss(), mounts()
           for i = 1, 2000 do
             opts.argv[4] = tostring(i % 7)
             local st = ns.spawn(opts):wait()
             assert(st.code == i % 7, ("spawn %d: code %d"):format(i, st.code))
           end
           -- 50 at once, five times.
           for round = 1, 5 do
             local ps = {}
             for i = 1, 50 do
               opts.argv[4] = tostring(i % 5)
               ps[i] = ns.spawn(opts)
             end
             for i = 50, 1, -1 do
               local st = ps[i]:wait()
               assert(st.code == i % 5, ("round %d, %d: code %d"):format(round, i, st.code))
             end
           end
           collectgarbage() collectgarbage()
           local f1, r1, m1 = fds(), rss(), mounts()
           print(("fds %d -> %d, rss %d -> %d KiB, mounts %d -> %d"):format(f0, f1, r0, r1, m0, m1))
           assert(f1 == f0, "fds grew")
           assert(m1 == m0, "mounts grew")
           assert(r1 - r0 < 2048, "rss grew by more than 2 MiB")
           -- No zombie: every child was reaped.
           for _, name in ipairs(ns.readdir("/proc")) do
             if tonumber(name) then
               local ok, stat = pcall(ns.read_file, "/proc/" .. name .. "/stat")
               if ok then
                 local _, ppid = stat:match("%) (%a) (%d+)")
                 assert(tonumber(ppid) ~= ns.getpid(), "a child of nsrun is left: " .. name)
               end
             end
           end
           print("done")"#,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("done\n"), "{stdout}");
    eprintln!("{}", stdout.lines().next().unwrap_or(""));
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        mountinfo
    );
}

#[test]
fn recipes_that_are_not_lua_give_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "binary.lua",
            (0..=255u8).cycle().take(3000).collect(),
            "binary.lua:",
        ),
        (
            "bytecode.lua",
            b"\x1bLua\x54\x00\x19\x93".to_vec(),
            "a precompiled Lua chunk",
        ),
        (
            "prose.lua",
            b"This is not a recipe, just words.\n".to_vec(),
            "prose.lua:1:",
        ),
        ("unclosed.lua", b"local t = {\n".to_vec(), "unclosed.lua:2:"),
    ];
    for (name, data, want) in &cases {
        std::fs::write(d.join(name), data).unwrap();
        let p = d.join(name);
        let out = nsrun(&[p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.starts_with("nsrun: ") && err.contains(want),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // Empty: runs, does nothing.
    std::fs::write(d.join("empty.lua"), b"").unwrap();
    let out = nsrun(&[d.join("empty.lua").to_str().unwrap()]);
    assert!(out.status.success());
    // Huge: 12 MB of source still runs.
    let huge = "x = 1\n".repeat(2_000_000) + "return 7\n";
    std::fs::write(d.join("huge.lua"), huge).unwrap();
    let out = nsrun(&[d.join("huge.lua").to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A directory, and a missing file.
    for p in [d.to_str().unwrap(), "/nonexistent/recipe.lua"] {
        let out = nsrun(&[p]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            err.starts_with(&format!("nsrun: cannot read {p}: ")),
            "{err}"
        );
        assert_eq!(err.matches("os error").count(), 1, "said once: {err}");
    }
}
