//! Error values, argument checking and error reports.

mod common;

use common::{guarded, run, As};

const ERRORS: &str = include_str!("recipes/errors.lua");
const EPERM: &str = include_str!("recipes/eperm.lua");

both!(
    fn error_values_and_argument_checks(as_) {
        run(as_, ERRORS, &[]).finished(&[
            "value.errno",
            "value.message",
            "value.where",
            "value.tostring",
            "rethrow.errno",
            "enoent.open",
            "enoent.id_of_dead_pid",
            "esrch.kill_dead_pid",
            "bad.mount",
            "bad.wait_self",
            "val.kill_signal_name",
            "kind.unshare",
            "kind.clone",
            "kind.persist_no_file",
            "mean.bind",
            "mean.umount_flag",
            "mean.unrelated_no_suggestion",
            "handle.closed",
        ]);
    }
);

/// Unprivileged and without a user namespace, privileged calls fail with
/// EPERM and a hint.
#[test]
fn eperm_without_user_namespace_user() {
    guarded(|| {
        run(As::User, EPERM, &[]).finished(&[
            "mount",
            "mount.hint",
            "mount.message",
            "bind",
            "umount",
            "pivot_root",
            "chroot",
            "sethostname",
            "sethostname.hint",
            "setdomainname",
            "unshare",
            "unshare.message",
            "unshare_net",
            "clone",
            "setns",
            "setuid",
            "setgroups_list",
            "kill_init",
            "persist",
            "persist.no_leftover_file",
            "still_unprivileged",
        ]);
    });
}

both!(
    fn uncaught_bad_argument(as_) {
        let d = run(as_, "local ns = require \"nsrun\"\n\nns.mount(\"tmpfs\", 42)\n", &[]);
        d.fails_with("recipe.lua:3: bad argument #2 to 'mount' (string expected, got number)");
        let d = run(as_, "local ns = require \"nsrun\"\nlocal p = ns.fork(function() end)\np:wait()\nns.kill(p)\n", &[]);
        d.fails_with("recipe.lua:4: bad argument #1 to 'kill' (number expected, got userdata)");
    }
);

both!(
    fn uncaught_unknown_kind(as_) {
        let d = run(as_, "local ns = require \"nsrun\"\nns.unshare(\"user,netz\")\n", &[]);
        d.fails_with(
            "recipe.lua:2: unshare: unknown namespace kind 'netz' \
             (valid: user, mount, pid, uts, ipc, net, cgroup, time)",
        );
    }
);

both!(
    fn uncaught_misspelt_option(as_) {
        let d = run(
            as_,
            "local ns = require \"nsrun\"\n\n\nns.bind(\"/a\", \"/b\", {ro = true, creat = true})\n",
            &[],
        );
        d.assert_code(1);
        let first = d.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("nsrun: recipe.lua:4: bind: unknown option 'creat' (did you mean 'create'?)"),
            "{}",
            d.report()
        );
    }
);

both!(
    fn error_where_is_the_calling_line(as_) {
        let d = run(
            as_,
            "local ns = require \"nsrun\"\n\
             local function f()\n\
             \x20 local s = ns.read_file(\"/nonexistent-nsrun-file\")\n\
             \x20 return s\n\
             end\n\
             local ok, e = pcall(f)\n\
             print(e.where)\n\
             print(tostring(e))\n\
             local ok2, e2 = pcall(ns.read_file, \"/nonexistent-nsrun-file\")\n\
             print(e2.errno)\n",
            &[],
        );
        // (A tail call `return ns.read_file(...)` would leave no caller line.)
        d.success().stdout_is(
            "recipe.lua:3\n\
             recipe.lua:3: read /nonexistent-nsrun-file: No such file or directory (ENOENT)\n\
             ENOENT\n",
        );
    }
);

both!(
    fn error_in_child_of_fork(as_) {
        let d = run(
            as_,
            "local ns = require \"nsrun\"\n\
             local p = ns.fork(function()\n\
             \x20 ns.chdir(\"/nonexistent-nsrun-dir\")\n\
             end)\n\
             print(p:wait().code)\n",
            &[],
        );
        d.success()
            .stdout_is("1\n")
            .stderr_has("nsrun: recipe.lua:3: chdir /nonexistent-nsrun-dir: No such file or directory (ENOENT)")
            .stderr_has("stack traceback");
    }
);
