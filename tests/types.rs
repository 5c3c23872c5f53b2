//! Issue 14, items 7, 8, 13 and 14: bytes end to end, wrong types refused,
//! exit codes, error values and messages that say what is wrong.

mod common;

use common::{run, As};
use std::os::unix::ffi::OsStrExt;

const TYPES: &str = include_str!("recipes/types.lua");

both!(
    fn bytes_types_and_messages(as_) {
        let d = run(as_, TYPES, &[]);
        d.finished(&[
            "bytes.read_file",
            "bytes.readdir",
            "bytes.chdir",
            "bytes.mount_child",
            "bytes.mount_private",
            "bytes.argv_env",
            "bytes.spawn_code",
            "bytes.spawn_argv_env",
            "bytes.spawn_cwd_file",
            "nul.write_file",
            "nul.mkdir",
            "nul.mount",
            "nul.argv",
            "type.setup",
            "type.before_start",
            "type.groups",
            "type.sandbox_setup",
            "stdio.typo",
            "stdio.word",
            "stdio.nothing_made",
            "stdio.path",
            "mode.number",
            "mode.decimal",
            "mode.tmpfs",
            "mode.nothing_made",
            "mode.sandbox",
            "prefix.tmpfs",
            "prefix.tmpfs_once",
            "prefix.pipe",
            "prefix.pipe_message",
            "size.zero",
            "size.bad",
            "size.fraction",
            "sandbox.keys",
            "sandbox.suggest_stable",
            "ifname.long",
            "ifname.veth",
            "pidns.dead_init",
        ]);
        // The names on disk are exactly the bytes the recipe gave.
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(d.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        names.sort();
        for want in [&b"nb\xff"[..], b"d\xfe", b"l\xfc", b"ex\xf9", b"out"] {
            assert!(names.iter().any(|n| n == want), "{want:?} missing in {names:?}\n{}", d.report());
        }
        let link = std::fs::read_link(d.dir.path().join(std::ffi::OsStr::from_bytes(b"l\xfc"))).unwrap();
        assert_eq!(link.as_os_str().as_bytes(), b"t\xfd");
        assert!(!names.iter().any(|n| n.starts_with(b"pipe")), "{names:?}");
    }
);

both!(
    fn recipe_results_that_are_no_exit_code(as_) {
        for (ret, msg) in [
            ("256", "the recipe returned 256, not an exit code (an integer from 0 to 255)"),
            ("-1", "the recipe returned -1, not an exit code (an integer from 0 to 255)"),
            ("3.5", "the recipe returned 3.5, not an exit code (an integer from 0 to 255)"),
            ("\"7\"", "the recipe returned the string \"7\", not an exit code"),
            ("{}", "the recipe returned a table without an integer 'code'"),
            ("{code = 300}", "the recipe returned a table whose code is 300, not an exit code"),
        ] {
            let d = run(as_, &format!("return {ret}\n"), &[]);
            d.assert_code(1).stderr_has(&format!("nsrun: recipe.lua: {msg}"));
        }
        for (ret, code) in [("7", 7), ("255", 255), ("3.0", 3), ("true", 0), ("false", 1), ("nil", 0), ("{code = 4}", 4)] {
            run(as_, &format!("return {ret}\n"), &[]).assert_code(code);
        }
        // A child function's result is held to the same rule.
        run(as_, "local ns = require 'nsrun'\nreturn ns.fork(function() return 300 end):wait().code\n", &[])
            .assert_code(1)
            .stderr_has("nsrun: the child's function returned 300, not an exit code");
    }
);

both!(
    fn error_tables_print_their_fields(as_) {
        run(as_, "error({code = 3, why = \"x\"})\n", &[])
            .fails_with("error value {code = 3, why = \"x\"}");
        run(as_, "error(setmetatable({}, {__tostring = function() return 'mine' end}))\n", &[])
            .fails_with("mine");
        // Raised in setup, in the child: the parent still gets the fields.
        let d = run(
            as_,
            "local ns = require 'nsrun'\n\
             local ok, e = pcall(ns.spawn, {argv = {'true'}, setup = function() error({code = 3}) end})\n\
             assert(not ok)\nprint(e)\n\
             ok, e = pcall(ns.spawn, {argv = {'true'}, setup = function()\n\
               error(setmetatable({}, {__tostring = function() return 'custom' end})) end})\n\
             print(e)\n",
            &[],
        );
        d.success()
            .stdout_has("spawn: setup: error value {code = 3}")
            .stdout_has("spawn: setup: custom");
    }
);

/// A dynamically linked program in a root without its ELF interpreter:
/// the message names the interpreter, not "no such program".
#[test]
fn missing_elf_interpreter_is_named() {
    common::guarded(|| {
        for as_ in [As::Root, As::User] {
            let d = common::nsrun(as_)
                .recipe(
                    "local ns = require 'nsrun'\nlocal T = require 'testlib'\n\
                     ns.mkdir(T.dir .. '/r/bin', '0755', {parents = true})\n\
                     ns.write_file(T.dir .. '/r/bin/true', ns.read_file('/bin/true'), '0755')\n\
                     ns.write_file(T.dir .. '/r/bin/script', '#!/no/such/shell\\n', '0755')\n\
                     for _, prog in ipairs {'/bin/true', '/bin/script'} do\n\
                       local ok, e = pcall(ns.run, {argv = {prog}, namespaces = 'user,mount',\n\
                         setup = function() ns.chroot(T.dir .. '/r') end})\n\
                       print(e.message)\n print(e.hint)\n\
                     end\n",
                )
                .run();
            d.success()
                .stdout_has(
                    "exec /bin/true: its interpreter /lib64/ld-linux-x86-64.so.2 is missing",
                )
                .stdout_has("the interpreter it names is not")
                .stdout_has("exec /bin/script: its interpreter /no/such/shell is missing");
        }
    });
}
