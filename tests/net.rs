//! Networking over netlink (`ns.net`), as root and as uid 65534 inside
//! user+net namespaces. Every link and address is made in the test's own
//! network namespaces: the host's interfaces are never touched, and the
//! tests check they are as before.

mod common;

use common::{run, As};

/// The host's interfaces, from the test process's network namespace.
fn host_links() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("read /sys/class/net")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

both!(
    fn links_veth_addresses_routes(as_) {
        let before = host_links();
        let mut names = vec![
            "new.only_lo",
            "new.lo_down",
            "new.lo_no_addrs",
            "new.lo_index",
            "new.lo_mtu",
            "lo_up.up",
            "lo_up.addrs",
            "veth.names",
            "veth.down",
            "veth.exists",
            "veth.exists_message",
            "veth.bad_option",
            "veth.bad_arg",
            "up",
            "down",
            "enodev.up",
            "enodev.up_message",
            "enodev.hint",
            "enodev.addr",
            "enodev.delete",
            "enodev.move",
            "enodev.route",
            "addr.v4",
            "addr.v6",
            "addr.ip_sees",
            "addr.exists",
            "addr.bad",
            "addr.bad_prefix",
            "route.v4",
            "route.v4_default",
            "route.v4_dev",
            "route.v6",
            "route.v6_default",
            "route.exists",
            "route.needs",
            "route.family",
            "route.bad_via",
            "route.unreachable",
            "route.unreachable_hint",
            "route.host_bits",
            "route_del.v4",
            "route_del.v6",
            "route_del.others_stay",
            "route_del.missing",
            "addr_del.gone",
            "addr_del.others_stay",
            "addr_del.missing",
            "set.mtu",
            "set.mac",
            "set.mac_ip",
            "set.bad_mac",
            "set.bad_mtu",
            "set.nothing",
            "move.pid_gone",
            "move.pid_there",
            "veth.peer_netns_handle",
            "veth.peer_netns_path",
            "veth.peer_netns_pid",
            "veth.peer_netns_process",
            "move.handle_path_process",
            "move.wrong_kind",
            "move.not_ns",
            "move.needs_target",
            "delete.here",
            "delete.peers_gone",
        ];
        if as_ == As::User {
            names.extend(["eperm.host_veth", "eperm.hint", "eperm.host_lo"]);
        }
        run(as_, include_str!("recipes/net_links.lua"), &[]).finished(&names);
        assert_eq!(host_links(), before, "the host's interfaces changed");
    }
);

both!(
    fn tcp_across_a_veth_pair(as_) {
        let before = host_links();
        common::nsrun(as_)
            .recipe(include_str!("recipes/net_tcp.lua"))
            .with_socat()
            .run()
            .finished(&[
            "two_namespaces",
            "in_a",
            "tcp.v4",
            "tcp.v4_server",
            "tcp.v6",
            "tcp.v6_server",
            "tcp.isolated",
        ]);
        assert_eq!(host_links(), before, "the host's interfaces changed");
    }
);

/// The host's /run/netns: whether it exists, and the names in it.
fn host_netns() -> Option<Vec<String>> {
    let d = std::fs::read_dir("/run/netns").ok()?;
    let mut v: Vec<String> = d
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Some(v)
}

both!(
    fn netns_module_and_ip_netns(as_) {
        let (links, netns_names) = (host_links(), host_netns());
        let mut names = vec![
            "path",
            "list.ours",
            "ip_list.ours",
            "open.kind",
            "not_ours",
            "dir.shared",
            "add.exists",
            "add.bad_name",
            "add.bad_type",
            "setns.ours",
            "ip_exec.ours",
            "exec.ours",
            "exec.code",
            "spawn.ours",
            "exec.bad_argv",
            "delete.missing",
            "delete.stale",
            "no_mounts_left",
        ];
        if as_ == As::Root {
            names.extend([
            "list.theirs",
            "exec.theirs_only_lo",
            "exec.theirs_lo",
            "setns.theirs",
            "ip_exec.theirs",
            "delete.theirs",
            "ip_list.theirs_gone",
            "ip_delete.ours",
            ]);
        } else {
            names.extend(["delete.ours", "ip_list.ours_gone"]);
        }
        run(as_, include_str!("recipes/net_netns.lua"), &[]).finished(&names);
        assert_eq!(host_links(), links, "the host's interfaces changed");
        assert_eq!(host_netns(), netns_names, "the host's /run/netns changed");
    }
);

/// `--plan` records the netlink requests and performs none; `--trace`
/// logs each with its outcome.
#[test]
fn plan_and_trace_show_netlink_requests() {
    let before = host_links();
    let recipe = "local ns = require 'nsrun'\n\
                  ns.unshare('net')\n\
                  ns.net.lo_up()\n\
                  ns.net.veth('nsp0', 'nsp1')\n\
                  ns.net.addr('nsp0', '10.200.0.1/24')\n\
                  ns.net.up('nsp0')\n\
                  ns.net.route('default', {via = '10.200.0.254'})\n";
    let plan = common::run_cli(As::Root, &["--plan", "-e", recipe]);
    plan.success();
    for step in [
        "parent  unshare(net)",
        "parent  netlink(up lo)",
        "parent  netlink(veth nsp0/nsp1)",
        "parent  netlink(addr 10.200.0.1/24 on nsp0)",
        "parent  netlink(route default via 10.200.0.254)",
    ] {
        plan.stderr_has(step);
    }
    let trace = common::run_cli(As::Root, &["--trace", "-e", recipe]);
    trace.success();
    trace.stderr_has("netlink(veth nsp0/nsp1) = ok");
    trace.stderr_has("netlink(route default via 10.200.0.254) = ok");
    assert_eq!(host_links(), before, "the host's interfaces changed");
}

/// The `socat` stand-in the TCP recipes run (tests/common/socat.rs), against
/// ends written here: it connects and copies to stdout, serves a command's
/// output, and refuses what it does not know, naming it.
#[test]
fn socat_stand_in() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Command, Stdio};
    let socat = common::socat_dir().join(common::socat::NAME);

    // -u TCP:… -: what the peer sends, on stdout; our side sees the end.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let client = Command::new(&socat)
        .args([
            "-u",
            &format!("TCP:127.0.0.1:{port},retry=3,interval=0.1"),
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut s, _) = l.accept().unwrap();
    let mut nothing = Vec::new();
    s.read_to_end(&mut nothing).unwrap();
    assert!(nothing.is_empty(), "sent {nothing:?}");
    s.write_all(b"from the harness\n").unwrap();
    drop(s);
    let out = client.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"from the harness\n");

    // TCP-LISTEN:… SYSTEM:…: one connection, the command's output.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&socat)
        .args([
            &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
            "SYSTEM:echo served by $0",
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => panic!("connect: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "served by /bin/sh\n");
    assert!(server.wait().unwrap().success());

    // Nothing to connect to: an error, exit 1.
    let out = Command::new(&socat)
        .args(["-u", &format!("TCP:127.0.0.1:{port}"), "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connect to 127.0.0.1:"),
        "{out:?}"
    );
    for bad in [
        &["-u", "UDP:127.0.0.1:9", "-"][..],
        &["-u", "TCP:localhost:9", "-"],
        &["-u", "TCP:127.0.0.1:9,fork", "-"],
        &["TCP:127.0.0.1:9", "-"],
    ] {
        let out = Command::new(&socat).args(bad).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {err}");
        assert!(
            err.starts_with("socat (the tests' stand-in): "),
            "{bad:?}: {err}"
        );
    }
}
