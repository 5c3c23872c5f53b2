//! `net = "pasta"` / `"slirp4netns"` and `ports`, without touching the
//! machine's network: each test makes its own network namespace ("up",
//! where nsrun runs) with a veth pair to a second one ("another host",
//! where a TCP server of this test binary answers on 10.77.0.3:7000), and
//! runs nsrun from a thread that entered "up" (a network namespace is a
//! per-thread attribute, and a child inherits its forking thread's).

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{As, Done, Running};

/// A new network namespace with its loopback up, held by an fd.
fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        // SAFETY: unshare of this thread only (a fresh one that ends here).
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare net"
        );
        let f = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        ip(&["link", "set", "lo", "up"]);
        OwnedFd::from(f)
    })
    .join()
    .unwrap()
}

/// Run `f` on a thread of its own in network namespace `ns`.
fn in_netns<T: Send>(ns: &OwnedFd, f: impl FnOnce() -> T + Send) -> T {
    let fd = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns of this (scoped, fresh) thread only.
            assert_eq!(
                unsafe { libc::setns(fd, libc::CLONE_NEWNET) },
                0,
                "setns net"
            );
            f()
        })
        .join()
        .unwrap()
    })
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?}: {st}");
}

/// The two namespaces and the peer's server; all gone on drop.
struct Lab {
    up: OwnedFd,
    _peer: OwnedFd,
    stop: Arc<AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

const PEER_SERVER: &str = "10.77.0.3:7000";

impl Lab {
    fn new() -> Lab {
        let (up, peer) = (new_netns(), new_netns());
        let peer_path = format!("/proc/{}/fd/{}", std::process::id(), peer.as_raw_fd());
        in_netns(&up, || {
            ip(&[
                "link", "add", "nsr-a", "type", "veth", "peer", "name", "nsr-b", "netns",
                &peer_path,
            ]);
            ip(&["addr", "add", "10.77.0.1/24", "dev", "nsr-a"]);
            ip(&["link", "set", "nsr-a", "up"]);
            ip(&["route", "add", "default", "via", "10.77.0.2"]);
        });
        let stop = Arc::new(AtomicBool::new(false));
        let listener = in_netns(&peer, || {
            ip(&["addr", "add", "10.77.0.2/24", "dev", "nsr-b"]);
            ip(&["addr", "add", "10.77.0.3/24", "dev", "nsr-b"]);
            ip(&["link", "set", "nsr-b", "up"]);
            // Bound here, the socket is the peer's for good.
            let l = TcpListener::bind(PEER_SERVER).expect("bind the peer's server");
            l.set_nonblocking(true).unwrap();
            l
        });
        let flag = stop.clone();
        let server = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(b"hello-from-peer\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Lab {
            up,
            _peer: peer,
            stop,
            server: Some(server),
        }
    }

    /// Run nsrun (built by `f`) from the "up" namespace to its end.
    fn run(&self, f: impl FnOnce() -> Done + Send) -> Done {
        in_netns(&self.up, f)
    }

    fn spawn(&self, f: impl FnOnce() -> Running + Send) -> Running {
        in_netns(&self.up, f)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}

/// Skip (with a reason) where the tool is truly missing; fail where
/// /dev/net/tun is closed to the unprivileged user (a set-up step).
fn have(as_: As, tool: &str) -> bool {
    let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(tool).exists());
    if !found {
        eprintln!("SKIP: {tool} is not installed (scripts/deps.sh installs it)");
        return false;
    }
    if as_ == As::User {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o777);
        assert_eq!(
            mode.ok(),
            Some(0o666),
            "/dev/net/tun must be mode 0666 for the unprivileged user (.ci/run sets it)"
        );
    }
    true
}

/// Whether process `pid` exists and is not a zombie (PID 1 of this
/// machine does not reap orphans: a dead tool may stay one).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

/// The sandbox's shell script: out to the peer's server, its DNS
/// configuration, then a server on port 80 for the published port.
const OUT_IN: &str = r#"
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"
local net, port = arg[1], arg[2]
local bin = os.getenv("PATH"):match("^[^:]+")
local u = ns.usernet(net)
T.eq("tool", u.tool, net)
local p = sandbox.spawn{
  -- (No half-close towards the peer: pasta of this Debian version then
  -- loses the peer's end of the connection.)
  argv = {"sh", "-c", "socat TCP:10.77.0.3:7000 SYSTEM:'head -n1 >&2' && cat /etc/resolv.conf && " ..
    "exec socat TCP-LISTEN:8000 SYSTEM:'echo hello-from-sandbox'"},
  binds = {{"/usr", "/usr", ro = true}, {bin, bin, ro = true}},
  symlinks = {["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64"},
  proc = "/proc", dev = "/dev", tmpfs = {"/tmp"},
  net = net, ports = {"127.0.0.1:" .. port .. ":8000"}, stdout = "pipe", stderr = "pipe",
}
local tool = p:net_pid()
T.check("tool runs", tool and io.open("/proc/" .. tool .. "/stat"), "no tool")
-- In through the published port, once the sandbox's server listens.
local got = ""
for _ = 1, 200 do
  got = ns.run{argv = {"socat", "-u", "TCP:127.0.0.1:" .. port, "-"}}.stdout
  if got ~= "" then break end
  ns.run{argv = {"sleep", "0.05"}}
end
T.eq("inbound", got, "hello-from-sandbox\n")
local st, out, err = p:output()
T.eq("status", st.code, 0)
T.eq("outbound", err, "hello-from-peer\n")
T.eq("resolv.conf", out, "nameserver " .. u.dns .. "\n")
-- Reaped with the sandbox: killed and reaped itself.
T.eq("tool gone", io.open("/proc/" .. tool .. "/stat"), nil)
T.eq("net_pid", p:net_pid(), nil)
print("done")
"#;

fn out_in(as_: As, net: &str, port: &str) {
    if !have(as_, net) {
        return;
    }
    let lab = Lab::new();
    let d = lab.run(|| {
        common::nsrun(as_)
            .recipe(OUT_IN)
            .args(&[net, port])
            .with_socat()
            .run()
    });
    d.finished(&[
        "tool",
        "tool runs",
        "inbound",
        "status",
        "outbound",
        "resolv.conf",
        "tool gone",
        "net_pid",
    ]);
}

both!(
    /// The sandbox reaches a server on another host through pasta, a
    /// server in the sandbox is reached through a published port, its
    /// /etc/resolv.conf names pasta's forwarder, and pasta is gone once
    /// the sandbox is reaped.
    fn pasta_out_in_dns(as_) {
        out_in(as_, "pasta", if as_ == As::Root { "18080" } else { "18081" });
    }
);

both!(
    /// The same through slirp4netns.
    fn slirp4netns_out_in_dns(as_) {
        out_in(as_, "slirp4netns", if as_ == As::Root { "18082" } else { "18083" });
    }
);

both!(
    /// ns.spawn without a mount namespace (as root without a user
    /// namespace either) reaches out through either tool, and slirp4netns
    /// answers a published port from another host too (pasta of this
    /// Debian version loses replies to non-loopback clients).
    fn ns_spawn_and_a_port_from_another_host(as_) {
        if !have(as_, "slirp4netns") || !have(as_, "pasta") {
            return;
        }
        let lab = Lab::new();
        let recipe = r#"
            local ns = require "nsrun"
            local T = require "testlib"
            local kinds = T.user and {"user", "net"} or {"net"}
            for _, net in ipairs {"pasta", "slirp4netns"} do
              local r = ns.run{argv = {"socat", "TCP:10.77.0.3:7000", "SYSTEM:head -n1 >&2"},
                namespaces = kinds, net = net}
              T.eq("outbound " .. net, r.stderr, "hello-from-peer\n")
            end
            local p = ns.spawn{argv = {"socat", "TCP-LISTEN:80", "SYSTEM:echo hello-from-sandbox"},
              namespaces = kinds, net = "slirp4netns", ports = {{host = 18090, guest = 80}}}
            T.put("pid", p.pid)
            io.stdout:flush()
            -- Ready once socat listens in the sandbox: slirp4netns takes a
            -- connection to the published port before that and loses it,
            -- and socat serves only one.
            for _ = 1, 400 do
              local f = io.open("/proc/" .. p.pid .. "/net/tcp")
              local s = f and f:read("a") or ""
              if f then f:close() end
              if s:find(":0050 00000000:0000 0A", 1, true) then break end
              os.execute("sleep 0.05")
            end
            local f = io.open("ready", "w") f:close()
            T.eq("status", p:wait().code, 0)
            print("done")"#;
        let mut r = lab.spawn(|| {
            common::nsrun(as_)
                .recipe(recipe)
                .with_socat()
                .spawn()
        });
        r.wait_for_file("ready");
        // From the other host, to "up"'s address.
        let deadline = Instant::now() + Duration::from_secs(20);
        let got = in_netns(&lab._peer, || loop {
            let mut s = String::new();
            if let Ok(mut c) = TcpStream::connect("10.77.0.1:18090") {
                use std::io::Read;
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = c.read_to_string(&mut s);
            }
            if !s.is_empty() || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        });
        let d = r.wait();
        assert_eq!(got, "hello-from-sandbox\n", "{}", d.report());
        d.finished(&["outbound pasta", "outbound slirp4netns", "status"]);
    }
);

/// The recipe of the lifetime tests: a sandbox that would sleep long,
/// its pid in a file, then the wait.
const LONG: &str = r#"
local ns = require "nsrun"
local net = arg[1]
local p = ns.spawn{argv = {"sleep", "1000"}, namespaces = {"user", "net", "pid"}, net = net}
local f = io.open("pid.tmp", "w") f:write(p:net_pid()) f:close()
os.rename("pid.tmp", "pid")
p:wait()
"#;

fn dies_with_nsrun(as_: As, net: &str) {
    if !have(as_, net) {
        return;
    }
    let lab = Lab::new();
    let mut r = lab.spawn(|| common::nsrun(as_).recipe(LONG).args(&[net]).spawn());
    r.wait_for_file("pid");
    let tool: i32 = std::fs::read_to_string(r.dir().join("pid"))
        .unwrap()
        .parse()
        .unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{tool}/comm")).unwrap_or_default();
    assert!(
        alive(tool) && (comm.starts_with("pas") || comm.starts_with("slirp4netns")),
        "the tool {tool} ({comm:?}) runs"
    );
    // SAFETY: SIGKILL to the nsrun we started.
    unsafe { libc::kill(r.pid(), libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(tool) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = alive(tool);
    if left {
        // SAFETY: cleaning up what the test found.
        unsafe { libc::kill(tool, libc::SIGKILL) };
    }
    assert!(!left, "{net} ({tool}) outlived a SIGKILLed nsrun");
    drop(r);
}

both!(
    /// SIGKILL of nsrun takes pasta with it (PR_SET_PDEATHSIG).
    fn pasta_dies_with_nsrun(as_) {
        dies_with_nsrun(as_, "pasta");
    }
);

both!(
    /// SIGKILL of nsrun takes slirp4netns with it.
    fn slirp4netns_dies_with_nsrun(as_) {
        dies_with_nsrun(as_, "slirp4netns");
    }
);

both!(
    /// A port in use, a bad port spec, a missing tool, net without a new
    /// network namespace: each named, nothing left behind; pasta falls
    /// back to slirp4netns where it is missing.
    fn errors_are_named(as_) {
        if !have(as_, "pasta") || !have(as_, "slirp4netns") {
            return;
        }
        let lab = Lab::new();
        let port = if as_ == As::Root { 18100 } else { 18101 };
        // Taken in "up" by the test itself.
        let held = in_netns(&lab.up, || TcpListener::bind(("127.0.0.1", port)).unwrap());
        let recipe = r#"
            local ns = require "nsrun"
            local T = require "testlib"
            local port = tonumber(arg[1])
            local kinds = {"user", "net"}
            for _, net in ipairs {"pasta", "slirp4netns"} do
              T.errmsg("in use " .. net, "ports: 127.0.0.1:" .. port .. ":80/tcp: cannot publish: the port is in use",
                ns.run, {argv = {"true"}, namespaces = kinds, net = net, ports = {"127.0.0.1:" .. port .. ":80"}})
            end
            T.errmsg("bad spec", "ports[2]: bad port spec '80:x'", ns.run,
              {argv = {"true"}, namespaces = kinds, net = "pasta", ports = {"81:80", "80:x"}})
            T.errmsg("bad table", "ports[1].host must be a port number from 1 to 65535, got 0", ns.run,
              {argv = {"true"}, namespaces = kinds, net = "pasta", ports = {{host = 0}}})
            T.errmsg("bad net", "net must be \"pasta\" or \"slirp4netns\", got 'slirp'", ns.run,
              {argv = {"true"}, namespaces = kinds, net = "slirp"})
            T.errmsg("needs net ns", "net = 'pasta' connects a new network namespace: add \"net\" to namespaces",
              ns.run, {argv = {"true"}, namespaces = {"user"}, net = "pasta"})
            T.errmsg("ports need net", "ports need net = \"pasta\" or \"slirp4netns\"", ns.run,
              {argv = {"true"}, namespaces = kinds, ports = {"80"}})
            T.errmsg("sandbox bad net", "sandbox: net must be", require("nsrun.sandbox").run,
              {argv = {"true"}, net = "pastaa"})
            if T.user then
              T.errmsg("low port", "ports: 80:80/tcp: cannot publish: ports below 1024 need privilege", ns.run,
                {argv = {"true"}, namespaces = kinds, net = "pasta", ports = {"80"}})
            else
              T.ok("low port")
            end
            print("done")"#;
        let d = lab.run(|| {
            common::nsrun(as_)
                .recipe(recipe)
                .args(&[&port.to_string()])
                .run()
        });
        d.finished(&[
            "in use pasta",
            "in use slirp4netns",
            "bad spec",
            "bad table",
            "bad net",
            "needs net ns",
            "ports need net",
            "sandbox bad net",
            "low port",
        ]);
        drop(held);

        // No pasta, no slirp4netns on PATH: named with its package;
        // only slirp4netns: pasta falls back to it.
        let dir = tempfile_dir();
        std::os::unix::fs::symlink("/usr/bin/slirp4netns", dir.join("slirp4netns")).unwrap();
        let broken = dir.join("broken");
        std::fs::create_dir(&broken).unwrap();
        std::fs::write(broken.join("pasta"), "#!/bin/sh\necho boom >&2\nexit 3\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let p = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(broken.join("pasta"), p).unwrap();
        }
        let empty = dir.join("empty");
        std::fs::create_dir(&empty).unwrap();
        // (The unprivileged run starts through setpriv, found on that PATH.)
        for d in [&dir, &empty, &broken] {
            std::os::unix::fs::symlink("/usr/bin/setpriv", d.join("setpriv")).unwrap();
        }
        let recipe = r#"
            local ns = require "nsrun"
            local T = require "testlib"
            T.errmsg("missing", "net = 'pasta' needs pasta (Debian: apt install passt)", ns.usernet, "pasta")
            T.errmsg("missing run", "net = 'pasta' needs pasta (Debian: apt install passt)", ns.run,
              {argv = {"/bin/true"}, namespaces = {"user", "net"}, net = "pasta"})
            T.errmsg("missing slirp", "net = 'slirp4netns' needs slirp4netns (Debian: apt install slirp4netns)",
              ns.usernet, "slirp4netns")
            print("done")"#;
        lab.run(|| {
            common::nsrun(as_)
                .recipe(recipe)
                .env("PATH", empty.to_str().unwrap())
                .run()
        })
        .finished(&["missing", "missing run", "missing slirp"]);
        let recipe = r#"
            local ns = require "nsrun"
            local T = require "testlib"
            T.eq("fallback", ns.usernet("pasta").tool, "slirp4netns")
            local r = ns.run{argv = {"/bin/cat", "/proc/net/dev"}, namespaces = {"user", "net"}, net = "pasta"}
            T.has("tap0", r.stdout, "tap0:")
            print("done")"#;
        lab.run(|| {
            common::nsrun(as_)
                .recipe(recipe)
                .env("PATH", dir.to_str().unwrap())
                .run()
        })
        .finished(&["fallback", "tap0"]);
        // A tool that fails to start: its words and its status, and the
        // sandbox's process reaped.
        let recipe = r#"
            local ns = require "nsrun"
            local T = require "testlib"
            T.errmsg("tool fails", "net = 'pasta': pasta failed to start (exit status 3): boom", ns.run,
              {argv = {"/bin/true"}, namespaces = {"user", "net"}, net = "pasta"})
            print("done")"#;
        lab.run(|| {
            common::nsrun(as_)
                .recipe(recipe)
                .env("PATH", broken.to_str().unwrap())
                .run()
        })
        .finished(&["tool fails"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
);

/// A directory every user can read, removed by the caller.
fn tempfile_dir() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "nsrun-usernet-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}
