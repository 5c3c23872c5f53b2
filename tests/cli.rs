//! The command line: running recipes, `-e`, `-`, `--check`, arguments,
//! exit codes, error reports, `--version`, `--help`.

mod common;

use common::{nsrun, run, run_cli};

both!(
    fn version(as_) {
        let d = run_cli(as_, &["--version"]);
        d.success()
            .stdout_is(&format!("nsrun {}\n", env!("CARGO_PKG_VERSION")));
    }
);

both!(
    fn help(as_) {
        let d = run_cli(as_, &["--help"]);
        d.success()
            .stdout_has("Usage: nsrun")
            .stdout_has("-e <CHUNK>")
            .stdout_has("--check")
            .stdout_has("RECIPE");
    }
);

both!(
    fn no_recipe_is_an_error(as_) {
        let d = run_cli(as_, &[]);
        d.assert_code(1).stderr_has("nsrun: no recipe given");
    }
);

both!(
    fn missing_recipe_file(as_) {
        let d = run_cli(as_, &["no-such-recipe.lua"]);
        d.assert_code(1)
            .stderr_has("nsrun: cannot read no-such-recipe.lua:");
    }
);

both!(
    fn args_and_varargs(as_) {
        let d = run(
            as_,
            "local ns = require \"nsrun\"\n\
             print(arg[0], arg[1], arg[2], arg[3], #arg)\n\
             print(select('#', ...), ...)\n\
             print(type(ns.version))\n",
            &["a", "b c", "--flag"],
        );
        d.success()
            .stdout_is("recipe.lua\ta\tb c\t--flag\t3\n3\ta\tb c\t--flag\nstring\n");
    }
);

both!(
    fn hyphen_args_go_to_the_recipe(as_) {
        let d = run(as_, "print(...)", &["-x", "--long", "-"]);
        d.success().stdout_is("-x\t--long\t-\n");
    }
);

both!(
    fn nsrun_flags_after_the_recipe_go_to_the_recipe(as_) {
        // As with `lua script.lua -v`: everything after the recipe is the
        // recipe's, even when it looks like one of nsrun's own options.
        let d = run(as_, "print(...)", &["-v", "--check", "-e", "x"]);
        d.success().stdout_is("-v\t--check\t-e\tx\n");
        let d = run(as_, "print(...)", &["--help"]);
        d.success().stdout_is("--help\n");
    }
);

both!(
    fn chunk_with_e(as_) {
        let d = run_cli(
            as_,
            &["-e", "local ns = require 'nsrun' print(ns.getuid(), ...) return 4", "x", "y"],
        );
        d.assert_code(4)
            .stdout_is(&format!("{}\tx\ty\n", as_.uid()));
        let d = run_cli(as_, &["-e", "error('bad')"]);
        d.fails_with("(command line):1: bad");
    }
);

both!(
    fn recipe_from_stdin(as_) {
        let d = nsrun(as_)
            .args(&["-", "p", "q"])
            .stdin(b"local a, b = ...\nprint(a, b, arg[1], arg[2])\nreturn 6\n")
            .run();
        d.assert_code(6).stdout_is("p\tq\tp\tq\n");
        let d = nsrun(as_)
            .args(&["-"])
            .stdin(b"\n\nerror('from stdin')\n")
            .run();
        d.fails_with("stdin:3: from stdin");
    }
);

both!(
    fn shebang_line_is_skipped(as_) {
        let d = run(as_, "#!/usr/bin/env nsrun\nprint('hi')\nerror('x')\n", &[]);
        // Line numbers still count the shebang line.
        d.assert_code(1).stdout_is("hi\n").stderr_has("nsrun: recipe.lua:3: x");
    }
);

both!(
    fn check_good_and_bad(as_) {
        let good = "print('ran')\nreturn 5\n";
        let d = nsrun(as_).recipe(good).run();
        d.assert_code(5).stdout_is("ran\n");
        // --check compiles only: nothing runs, exit 0.
        let d = nsrun(as_).args(&["--check", "recipe.lua"]).file("recipe.lua", good.as_bytes()).run();
        d.success().stdout_is("").stderr_is("");
        let bad = "print('ran')\nlocal x = = 1\n";
        let d = nsrun(as_).args(&["--check", "recipe.lua"]).file("recipe.lua", bad.as_bytes()).run();
        d.assert_code(1).stdout_is("");
        assert!(
            d.stderr.starts_with("nsrun: recipe.lua:2:"),
            "--check on a bad file\n{}",
            d.report()
        );
        // --check with -e and with stdin.
        run_cli(as_, &["--check", "-e", "print('ran')"]).success().stdout_is("");
        run_cli(as_, &["--check", "-e", "x ="]).assert_code(1).stderr_has("nsrun: (command line):1:");
        nsrun(as_).args(&["--check", "-"]).stdin(b"print('ran')").run().success().stdout_is("");
        nsrun(as_).args(&["--check", "-"]).stdin(b"\nfor").run().assert_code(1).stderr_has("nsrun: stdin:2:");
    }
);

both!(
    fn syntax_error(as_) {
        let d = run(as_, "print('never')\n\nlocal x = = 1\n", &[]);
        d.assert_code(1).stdout_is("");
        assert!(
            d.stderr.starts_with("nsrun: recipe.lua:3:") && d.stderr.contains("near '='"),
            "syntax error report\n{}",
            d.report()
        );
    }
);

both!(
    fn return_codes(as_) {
        let cases: &[(&str, i32)] = &[
            ("return 0", 0),
            ("return 7", 7),
            ("return 7.0", 7),
            ("return {code = 9, success = false}", 9),
            ("return false", 1),
            ("return true", 0),
            ("return nil", 0),
            ("print('no return')", 0),
            // Not an exit code: an error (tests/types.rs checks the message).
            ("return 'a string'", 1),
            (
                "local ns = require 'nsrun' return ns.fork(function() return 12 end):wait()",
                12,
            ),
        ];
        for (src, code) in cases {
            let d = run(as_, src, &[]);
            assert_eq!(d.code(), *code, "{src}\n{}", d.report());
        }
    }
);

both!(
    fn os_exit_flushes_output(as_) {
        let d = run(as_, "print('line')\nio.write('partial')\nos.exit(3)\nprint('not reached')\n", &[]);
        d.assert_code(3).stdout_is("line\npartial");
        let d = run(as_, "io.write('x')\nos.exit(true)\n", &[]);
        d.assert_code(0).stdout_is("x");
        let d = run(as_, "os.exit(false)\n", &[]);
        d.assert_code(1);
    }
);

both!(
    fn uncaught_errors(as_) {
        // A string error: position and message, no traceback without -v.
        let src = "local ns = require \"nsrun\"\nprint('before')\nerror('boom')\n";
        let d = run(as_, src, &[]);
        d.fails_with("recipe.lua:3: boom")
            .stdout_is("before\n")
            .stderr_lacks("stack traceback");
        // With -v the traceback follows.
        let d = nsrun(as_).args(&["-v", "recipe.lua"]).file("recipe.lua", src.as_bytes()).run();
        d.fails_with("recipe.lua:3: boom")
            .stderr_has("stack traceback")
            .stderr_has("recipe.lua:3: in main chunk");
        // An error raised in a function shows where it was raised.
        let d = run(as_, "local function f()\n  error('deep')\nend\nf()\n", &[]);
        d.fails_with("recipe.lua:2: deep");
        // A non-string error value.
        let d = run(as_, "error({})", &[]);
        d.assert_code(1).stderr_has("nsrun: ");
        let d = run(as_, "error(setmetatable({}, {__tostring = function() return 'custom' end}))", &[]);
        d.fails_with("custom");
    }
);

both!(
    fn system_error_uncaught(as_) {
        let src = "local ns = require \"nsrun\"\n\nns.mount(\"tmpfs\", \"/nonexistent-nsrun-dir/x\", \"tmpfs\")\n";
        let d = run(as_, src, &[]);
        d.fails_with(
            "recipe.lua:3: mount tmpfs on /nonexistent-nsrun-dir/x: No such file or directory (ENOENT)",
        )
        .stderr_has("\nhint: ")
        .stderr_lacks("stack traceback");
        let d = nsrun(as_).args(&["-v", "recipe.lua"]).file("recipe.lua", src.as_bytes()).run();
        d.fails_with(
            "recipe.lua:3: mount tmpfs on /nonexistent-nsrun-dir/x: No such file or directory (ENOENT)",
        )
        .stderr_has("stack traceback")
        .stderr_has("recipe.lua:3:");
    }
);

both!(
    fn recipes_can_require_neighbours(as_) {
        let d = nsrun(as_)
            .recipe("local m = require 'helper'\nprint(m.answer)\n")
            .file("helper.lua", b"return {answer = 42}\n")
            .run();
        d.success().stdout_is("42\n");
    }
);

both!(
    fn quiet_and_verbose_conflict(as_) {
        let d = run_cli(as_, &["-q", "-v", "-e", "print(1)"]);
        d.assert_code(2).stderr_has("cannot be used with");
    }
);

both!(
    /// The module's functions are made on first use: each is made once,
    /// `pairs` lists all of them before and after use, and a name that is
    /// not one stays nil.
    fn module_functions_are_made_once(as_) {
        let d = run(
            as_,
            "local ns = require \"nsrun\"\n\
             local function names(t)\n\
               local n = {}\n\
               for k, v in pairs(t) do n[#n + 1] = k .. ':' .. type(v) end\n\
               table.sort(n) return table.concat(n, ' ')\n\
             end\n\
             local before, net_before = names(ns), names(ns.net)\n\
             local f = ns.getpid\n\
             print(f == ns.getpid, ns.getpid() > 0, rawget(ns, 'getpid') == f)\n\
             print(ns.no_such_function, ns.net.no_such_function)\n\
             print(before == names(ns), net_before == names(ns.net))\n\
             print(before:find('spawn:function') ~= nil, before:find('version:string') ~= nil,\n\
                   net_before:find('veth:function') ~= nil)\n",
            &[],
        );
        d.success()
            .stdout_is("true\ttrue\ttrue\nnil\tnil\ntrue\ttrue\ntrue\ttrue\ttrue\n");
    }
);
