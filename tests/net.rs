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
        run(as_, include_str!("recipes/net_tcp.lua"), &[]).finished(&[
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
