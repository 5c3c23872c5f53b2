//! Channels (issue 16, part 3): Lua values and fds between a recipe and
//! what it started (`channel = true` for a function, `channel = N` for a
//! program), the primitives under them, a dead peer seen as closed, the
//! broker example, and `--plan`, as root and as uid 65534. The recipe is
//! `tests/recipes/channel.lua`; its first argument names the part.

mod common;

use std::time::Duration;

use common::{nsrun, As, Done};

const RECIPE: &str = include_str!("recipes/channel.lua");

fn part(as_: As, name: &str) -> Done {
    let bin = common::binary(as_).to_string_lossy().into_owned();
    nsrun(as_)
        .recipe(RECIPE)
        .args(&[name, &bin])
        .timeout(Duration::from_secs(60))
        .run()
}

both!(
    /// nil, booleans, integers (to the extremes), floats (inf, NaN, the
    /// smallest), strings with any bytes (1 MiB too), nested tables with
    /// keys of each kind, an empty message: each arrives as it was sent,
    /// in a pair and through a child function, 200 messages in order;
    /// a closed channel reads and sends as `nil, "closed"`.
    fn values_round_trip(as_) {
        part(as_, "values").finished(&[
            "pair", "child", "order", "big_fds", "pair.empty", "closed.recv", "closed.send",
            "closed.fd", "no_channel.arg", "no_channel.field", "close.attr",
        ]);
    }
);

both!(
    /// What cannot go is an error naming its type and where it stands
    /// (`value #2.x.y[2] is a function`), and nothing of it is sent;
    /// bad `channel` options and arguments are named.
    fn bad_values_are_named(as_) {
        part(as_, "errors").finished(&[
            "fn", "nested", "key", "thread", "cycle", "userdata", "closed_file",
            "nothing_sent", "shared", "timeout", "opt.fd2", "opt.type", "opt.fn_fd",
            "opt.keep", "channel.notsock", "send_fds.bad", "send_fds.empty",
        ]);
    }
);

both!(
    /// A sandbox whose root is an empty tmpfs cannot open a host file by
    /// path, but reads it through an fd the recipe sends; a pipe, a
    /// channel and a namespace handle cross too and arrive as a file, a
    /// channel and a handle. `ns.send_fds`/`ns.recv_fds` carry raw bytes
    /// and fds.
    fn fds_cross_into_an_empty_root(as_) {
        part(as_, "fds").finished(&[
            "fds.by_path", "fds.file.text", "fds.pipe.text", "fds.chan", "fds.chan.msg",
            "fds.handle.kind", "fds.handle.inode", "fds.code", "prim.data", "prim.file",
            "prim.closed",
        ]);
    }
);

both!(
    /// A child killed while the recipe waits in `recv` without a timeout
    /// reads as closed (no hang); so does a program that exits before
    /// reading, and a child sees the recipe's end closed. The process's
    /// `timeout` holds for a `recv` waiting on it; a recv timeout returns
    /// `nil, "timeout"`.
    fn dead_peer_is_closed(as_) {
        part(as_, "dead").finished(&[
            "dead.why", "dead.signal", "dead.prog.recv", "dead.prog.code",
            "dead.child_sees", "dead.closed_by_child", "dead.closed_by_program.pid",
            "dead.closed_by_program.pid,time", "dead.closed_by_child.running", "deadline.recv", "deadline.timed_out", "timeout.why",
            "timeout.after",
        ]);
    }
);

both!(
    /// `channel = 3`: perl speaks the documented format on fd 3; the
    /// program gets the socket on the fd asked and no other fd of ours;
    /// nsrun inside takes it with `ns.channel(3)`.
    fn program_on_an_fd(as_) {
        part(as_, "program").finished(&[
            "perl.string", "perl.int", "perl.int.type", "perl.stdout", "perl.code",
            "fd5.socket", "fd5.list", "input.code", "input.fd3", "input.stdout", "sandbox.fd3", "sandbox.code", "nsrun.who", "nsrun.echo", "nsrun.code",
        ]);
    }
);

both!(
    /// examples/broker.lua: the sandbox sees nothing by path, gets the
    /// allowed file through the broker and is refused the other.
    fn broker_example(as_) {
        let src = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/broker.lua"),
        )
        .unwrap();
        let d = nsrun(as_)
            .recipe(&src)
            .args(&["/etc/os-release", "/etc/shadow", "/etc/hostname"])
            .timeout(Duration::from_secs(60))
            .run();
        d.success();
        let host = std::fs::read_to_string("/etc/os-release").unwrap();
        let first = host.lines().next().unwrap();
        for want in [
            "inside: /etc/os-release by path: not there".to_string(),
            format!("inside: /etc/os-release through the broker: {first}"),
            "inside: /etc/shadow refused: not allowed".to_string(),
        ] {
            assert!(d.stdout.contains(&want), "missing {want:?}\n{}", d.report());
        }
        assert!(
            d.stdout.contains("inside: /etc/hostname through the broker: "),
            "{}",
            d.report()
        );
    }
);

both!(
    /// Under `--plan` a channel is as a planned pipe: the planned child's
    /// end reads closed, the recipe's reads closed and swallows sends;
    /// no program is started.
    fn plan_reads_closed(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            local p = ns.spawn{fn = function(ch)
                local v, why = ch:recv(5)
                print("child " .. tostring(v) .. " " .. tostring(why))
                return 0
            end, channel = true, namespaces = "user,pid"}
            print("send " .. tostring(p.channel:send("x")))
            print("recv " .. tostring(select(2, p.channel:recv(5))))
            local q = ns.spawn{argv = {"sh", "-c", "echo started > started.txt"}, channel = 3}
            print("prog " .. tostring(select(2, q.channel:recv(5))) .. " " .. q:wait().code)
            print("done")"#;
        let d = nsrun(as_).recipe(recipe).args(&[]).run();
        let d2 = common::nsrun(as_)
            .file("r.lua", recipe.as_bytes())
            .args(&["--plan", "r.lua"])
            .run();
        d.success();
        d2.success();
        for l in ["child nil closed", "send true", "recv closed", "prog closed 0", "done"] {
            assert!(d2.stdout.contains(l), "plan: missing {l:?}\n{}", d2.report());
        }
        assert!(d2.stderr.contains("dup2(channel, 3)"), "{}", d2.report());
        assert!(!d2.path("started.txt").exists(), "a planned program ran");
    }
);
