//! The network for unprivileged users: a new network namespace connected
//! to the caller's through a user-mode network stack run by an existing
//! tool, `pasta` (Debian's passt, what podman 5 uses) or `slirp4netns`,
//! with published ports as `podman run -p` takes them.
//!
//! The tool is started by the parent once the child's network namespace
//! exists (it is made at the clone) and before the child goes on: the
//! child waits on its sync pipe until the tool says it is ready (pasta
//! writes its pid file, slirp4netns its ready fd). The tool's life is tied
//! to the sandbox's: it is killed and reaped when the sandbox's process is
//! reaped (or its handle dropped), and it dies with nsrun itself, even by
//! SIGKILL, through PR_SET_PDEATHSIG set between its fork and its exec.
//!
//! DNS: pasta forwards queries sent to [`PASTA_DNS`] to the caller's
//! resolver, slirp4netns those sent to [`SLIRP_DNS`]; the sandbox writes
//! `/etc/resolv.conf` pointing there (see [`UserNet::dns`]).

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::namespace::{Namespace, Namespaces};
use super::process;
use crate::error::{Error, Result};

/// The address pasta's DNS forwarder answers on inside (podman's choice).
pub const PASTA_DNS: &str = "169.254.1.1";
/// The address slirp4netns's DNS forwarder answers on inside.
pub const SLIRP_DNS: &str = "10.0.2.3";

/// Where the tool finds the child's namespaces.
const NETNS_FD: RawFd = 5;
const USERNS_FD: RawFd = 6;

/// How long a tool may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Which tool connects the new network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNet {
    /// `pasta`, or `slirp4netns` where pasta is missing.
    Pasta,
    /// `slirp4netns`.
    Slirp4netns,
}

impl UserNet {
    /// The tool's name as `net = ...` gives it.
    pub fn name(self) -> &'static str {
        match self {
            UserNet::Pasta => "pasta",
            UserNet::Slirp4netns => "slirp4netns",
        }
    }

    /// The address of the tool's DNS forwarder inside the namespace.
    pub fn dns(self) -> &'static str {
        match self {
            UserNet::Pasta => PASTA_DNS,
            UserNet::Slirp4netns => SLIRP_DNS,
        }
    }

    fn package(self) -> &'static str {
        match self {
            UserNet::Pasta => "passt",
            UserNet::Slirp4netns => "slirp4netns",
        }
    }
}

impl fmt::Display for UserNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for UserNet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pasta" => Ok(UserNet::Pasta),
            "slirp4netns" => Ok(UserNet::Slirp4netns),
            other => Err(Error::Invalid(format!(
                "net must be \"pasta\" or \"slirp4netns\", got '{other}'"
            ))),
        }
    }
}

/// A published port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(Error::Invalid(format!(
                "proto must be \"tcp\" or \"udp\", got '{other}'"
            ))),
        }
    }
}

/// A port published from the caller's network to the sandbox's, as
/// `podman run -p [ADDR:]HOST:GUEST[/PROTO]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The port on the caller's side.
    pub host: u16,
    /// The port inside.
    pub guest: u16,
    /// TCP or UDP.
    pub proto: Proto,
    /// The caller's address to listen on (default: all).
    pub addr: Option<IpAddr>,
}

impl Port {
    /// TCP `host` outside to `guest` inside, on every address.
    pub fn tcp(host: u16, guest: u16) -> Port {
        Port {
            host,
            guest,
            proto: Proto::Tcp,
            addr: None,
        }
    }

    /// A port number from its text (1–65535).
    pub fn number(what: &str, s: &str) -> Result<u16> {
        match s.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::Invalid(format!(
                "{what} must be a port number from 1 to 65535, got '{s}'"
            ))),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            Some(a) => write!(f, "{a}:")?,
            None => {}
        }
        write!(f, "{}:{}/{}", self.host, self.guest, self.proto.name())
    }
}

impl std::str::FromStr for Port {
    type Err = Error;
    /// `GUEST`, `HOST:GUEST`, `ADDR:HOST:GUEST` (`[V6]:HOST:GUEST`), each
    /// with an optional `/tcp` or `/udp`. A lone port is the same number
    /// on both sides.
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::Invalid(format!(
                "bad port spec '{spec}': {why} (expected [ADDR:]HOST:GUEST[/tcp|/udp], e.g. \"8080:80\")"
            ))
        };
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p.parse::<Proto>().map_err(|e| bad(e.to_string()))?),
            None => (spec, Proto::Tcp),
        };
        let (addr, ports) = if let Some(v6) = rest.strip_prefix('[') {
            let (a, p) = v6
                .split_once("]:")
                .ok_or_else(|| bad("an IPv6 address in brackets must be followed by ':'".into()))?;
            (Some(a), p)
        } else {
            match rest.matches(':').count() {
                0 | 1 => (None, rest),
                2 => {
                    let (a, p) = rest.split_once(':').expect("two colons");
                    (Some(a), p)
                }
                _ => return Err(bad("too many ':' (an IPv6 address goes in brackets)".into())),
            }
        };
        let addr = addr
            .map(|a| {
                a.parse::<IpAddr>()
                    .map_err(|_| bad(format!("'{a}' is not an IP address")))
            })
            .transpose()?;
        let (host, guest) = match ports.split_once(':') {
            Some((h, g)) => (h, g),
            None => (ports, ports),
        };
        Ok(Port {
            host: Port::number("the host port", host).map_err(|e| bad(e.to_string()))?,
            guest: Port::number("the guest port", guest).map_err(|e| bad(e.to_string()))?,
            proto,
            addr,
        })
    }
}

/// Check a request for a tool against the rest of the spawn: the tool
/// serves a network namespace made at the clone.
pub(crate) fn validate(
    net: Option<UserNet>,
    ports: &[Port],
    namespaces: Namespaces,
    joins: bool,
) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(m));
    let Some(net) = net else {
        if !ports.is_empty() {
            return bad("ports need net = \"pasta\" or \"slirp4netns\"".into());
        }
        return Ok(());
    };
    if !namespaces.contains(Namespace::Net) {
        return bad(format!(
            "net = '{net}' connects a new network namespace: add \"net\" to namespaces"
        ));
    }
    if joins {
        // With joins the new namespaces are made after them, inside the
        // child, where the parent could not yet reach the network one.
        return bad(format!("net = '{net}' cannot be combined with join"));
    }
    for (i, a) in ports.iter().enumerate() {
        if let Some(b) = ports[..i]
            .iter()
            .find(|b| b.host == a.host && b.proto == a.proto && b.addr == a.addr)
        {
            return bad(format!("ports: {a} and {b} publish the same host port"));
        }
    }
    Ok(())
}

/// Where a tool is, searched on PATH as exec would (the default search
/// path without one).
fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(tool))
        .find(|p| {
            // Executable by us: a file only root may run would fail later.
            let c = CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
            // SAFETY: a valid C string.
            p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
        })
}

/// The tool that will run and its path. `pasta` falls back to
/// slirp4netns where pasta is missing and slirp4netns is not.
pub(crate) fn resolve(net: UserNet) -> Result<(UserNet, PathBuf)> {
    if let Some(p) = find(net.name()) {
        return Ok((net, p));
    }
    if net == UserNet::Pasta {
        if let Some(p) = find(UserNet::Slirp4netns.name()) {
            log::info!("net = 'pasta': pasta is missing, using {}", p.display());
            return Ok((UserNet::Slirp4netns, p));
        }
    }
    Err(Error::Invalid(format!(
        "net = '{net}' needs {net} (Debian: apt install {})",
        net.package()
    )))
}

/// Bind each host port once (and let it go), so a port in use is named
/// here, before anything starts, rather than in the tool's words.
pub(crate) fn check_ports(ports: &[Port]) -> Result<()> {
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
    for p in ports {
        let at = SocketAddr::new(p.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), p.host);
        let r = match p.proto {
            Proto::Tcp => TcpListener::bind(at).map(drop),
            Proto::Udp => UdpSocket::bind(at).map(drop),
        };
        if let Err(e) = r {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            let why = match errno {
                Errno::EADDRINUSE => "the port is in use".to_string(),
                Errno::EACCES => format!(
                    "ports below {} need privilege (sysctl net.ipv4.ip_unprivileged_port_start)",
                    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "1024".into())
                ),
                Errno::EADDRNOTAVAIL => "the address is not one of this host's".to_string(),
                e => format!("{} ({e:?})", e.desc()),
            };
            return Err(Error::Invalid(format!("ports: {p}: cannot publish: {why}")));
        }
    }
    Ok(())
}

/// A tool ready to start: what to run for the child's namespaces.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub net: UserNet,
    pub exe: PathBuf,
    pub ports: Vec<Port>,
}

impl Prepared {
    /// The tool's arguments (`userns`: the child has a new user namespace,
    /// which the tool joins): the ready fd is 3, the exit fd 4, the
    /// child's network namespace fd 5 and its user namespace fd 6, all
    /// opened by us (a tool that drops its privileges before it opens a
    /// path could no longer open a root-owned child's namespaces);
    /// `api` is slirp4netns's API socket.
    fn argv(&self, userns: bool, api: Option<&Path>) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![self.net.name().into()];
        let mut add = |s: &str| v.push(s.into());
        let netns = format!("/proc/self/fd/{NETNS_FD}");
        let user = format!("/proc/self/fd/{USERNS_FD}");
        match self.net {
            UserNet::Pasta => {
                for a in ["--config-net", "--foreground", "--quiet"] {
                    add(a);
                }
                // Its pid file is our pipe: the pid arrives once it is ready.
                add("--pid");
                add("/proc/self/fd/3");
                if nix::unistd::geteuid().is_root() {
                    // Run by root it would switch to nobody, who may not
                    // join the sandbox's namespaces.
                    add("--runas");
                    add("0");
                }
                add("--netns");
                add(&netns);
                if userns {
                    add("--userns");
                    add(&user);
                }
                add("--dns-forward");
                add(PASTA_DNS);
                // The sandbox reaches the outside, not our loopback.
                add("--no-map-gw");
                for (proto, flag) in [(Proto::Tcp, "-t"), (Proto::Udp, "-u")] {
                    let mine: Vec<_> = self.ports.iter().filter(|p| p.proto == proto).collect();
                    if mine.is_empty() {
                        add(flag);
                        add("none");
                    }
                    for p in mine {
                        add(flag);
                        let at = p.addr.map(|a| format!("{a}/")).unwrap_or_default();
                        add(&format!("{at}{}:{}", p.host, p.guest));
                    }
                }
                // Nothing from the namespace to ours unless published.
                for a in ["-T", "none", "-U", "none"] {
                    add(a);
                }
            }
            UserNet::Slirp4netns => {
                for a in [
                    "--configure",
                    "--mtu=65520",
                    "--disable-host-loopback",
                    "--ready-fd=3",
                    "--exit-fd=4",
                    "--netns-type=path",
                ] {
                    add(a);
                }
                if userns {
                    add(&format!("--userns-path={user}"));
                }
                if let Some(api) = api {
                    v.push(OsString::from("--api-socket"));
                    v.push(api.as_os_str().to_owned());
                }
                v.push(netns.into());
                v.push("tap0".into());
            }
        }
        v
    }

    /// What `--plan` shows for the start.
    pub fn describe(&self, pid: i32, userns: bool) -> String {
        let api = matches!(self.net, UserNet::Slirp4netns) && !self.ports.is_empty();
        let argv = self.argv(userns, api.then(|| Path::new("$API")));
        let words: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
        let user = match userns {
            true => format!(", fd {USERNS_FD} = /proc/{pid}/ns/user"),
            false => String::new(),
        };
        format!(
            "start {} ({}) with fd {NETNS_FD} = /proc/{pid}/ns/net{user}, and wait until it is ready",
            self.net,
            words.join(" ")
        )
    }

    /// Start the tool for child `pid` and wait until it is ready.
    pub fn start(&self, pid: i32, userns: bool) -> Result<Tool> {
        let api_dir = match (self.net, self.ports.is_empty()) {
            (UserNet::Slirp4netns, false) => Some(TempDir::new()?),
            _ => None,
        };
        let api = api_dir.as_ref().map(|d| d.0.join("api.sock"));
        let argv = self.argv(userns, api.as_deref());
        let netns = super::namespace::open_kind(Namespace::Net, Some(pid))?;
        let user = match userns {
            true => Some(super::namespace::open_kind(Namespace::User, Some(pid))?),
            false => None,
        };
        use std::os::fd::AsFd;
        let raw = |h: &super::namespace::NsHandle| h.as_fd().as_raw_fd();
        let ns_fds = [raw(&netns), user.as_ref().map_or(raw(&netns), raw)];
        let mut tool = spawn_tool(self.net, &self.exe, &argv, ns_fds)?;
        drop((netns, user));
        tool.wait_ready()?;
        if let Some(api) = &api {
            for p in &self.ports {
                tool.add_hostfwd(api, p)?;
            }
        }
        Ok(tool)
    }
}

/// A private directory for slirp4netns's API socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let template = base.join("nsrun-slirp-XXXXXX");
        let mut bytes = template.as_os_str().as_bytes().to_vec();
        bytes.push(0);
        // SAFETY: a NUL-terminated buffer mkdtemp fills in.
        let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
        if p.is_null() {
            return Err(Error::sys(
                format!("mkdtemp {}", template.display()),
                Errno::last(),
            ));
        }
        bytes.pop();
        Ok(TempDir(PathBuf::from(OsStr::from_bytes(&bytes))))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running network tool. Dropping it kills and reaps it.
#[derive(Debug)]
pub struct Tool {
    pid: i32,
    net: UserNet,
    /// Where it writes when it is ready (pasta: its pid; slirp4netns: "1").
    ready: Option<OwnedFd>,
    /// Its standard error, read back when it fails.
    stderr: OwnedFd,
    /// slirp4netns leaves when this closes (besides its death signal).
    _exit_w: Option<OwnedFd>,
    /// The process that started it: only it kills and reaps it.
    owner: u32,
    reaped: bool,
}

fn cstr(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::Invalid(format!("a NUL byte in {}", s.to_string_lossy())))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))
}

/// Fork, tie the child's life to ours, and exec the tool with stdin and
/// stdout on /dev/null, stderr in a memfd, the ready pipe on fd 3, the
/// exit pipe on fd 4 and the namespaces `ns_fds` on 5 and 6; every other
/// fd closed.
fn spawn_tool(net: UserNet, exe: &Path, argv: &[OsString], ns_fds: [RawFd; 2]) -> Result<Tool> {
    let exe_c = cstr(exe.as_os_str())?;
    let args: Vec<CString> = argv.iter().map(|a| cstr(a)).collect::<Result<_>>()?;
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let stderr = nix::sys::memfd::memfd_create(
        c"nsrun-usernet-stderr",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(|e| Error::sys("memfd_create", e))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| {
            Error::sys(
                "open /dev/null",
                Errno::from_raw(e.raw_os_error().unwrap_or(5)),
            )
        })?;
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    let parent = nix::unistd::getpid().as_raw();
    let from = [
        null.as_raw_fd(),
        null.as_raw_fd(),
        stderr.as_raw_fd(),
        ready_w.as_raw_fd(),
        exit_r.as_raw_fd(),
        ns_fds[0],
        ns_fds[1],
    ];
    match process::fork(Namespaces::empty())? {
        process::Forked::Child => {
            // SAFETY: a single-threaded fork (spawn refuses threads) that
            // only makes system calls on memory prepared above and execs
            // or leaves through _exit.
            unsafe { tool_child(parent, &from, &exe_c, &ptrs) }
        }
        process::Forked::Parent(pid) => Ok(Tool {
            pid,
            net,
            ready: Some(ready_r),
            stderr,
            _exit_w: Some(exit_w),
            owner: std::process::id(),
            reaped: false,
        }),
    }
}

/// The tool's child side, to its exec.
///
/// # Safety
/// Only in a freshly forked child of a single-threaded process.
unsafe fn tool_child(
    parent: i32,
    from: &[RawFd; 7],
    exe: &CString,
    argv: &[*const libc::c_char],
) -> Result<Tool> {
    let fail = |what: &[u8]| -> ! {
        let e = Errno::last_raw();
        libc::write(2, what.as_ptr().cast(), what.len());
        let msg = Errno::from_raw(e).desc().as_bytes();
        libc::write(2, b": ".as_ptr().cast(), 2);
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::write(2, b"\n".as_ptr().cast(), 1);
        libc::_exit(127)
    };
    // Dies with nsrun, however nsrun ends; if nsrun is gone already, leave.
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    if libc::getppid() != parent {
        libc::_exit(1);
    }
    // Out of the terminal's process group: Ctrl-C goes to the sandbox,
    // whose network must stay up meanwhile.
    libc::setpgid(0, 0);
    // Moved out of the way first, so no target clobbers a later source.
    let mut high = [0; 7];
    for (h, f) in high.iter_mut().zip(from) {
        *h = libc::fcntl(*f, libc::F_DUPFD_CLOEXEC, 10);
        if *h < 0 {
            fail(b"nsrun: dup");
        }
    }
    for (target, h) in high.iter().enumerate() {
        if libc::dup2(*h, target as RawFd) < 0 {
            fail(b"nsrun: dup2");
        }
    }
    libc::syscall(libc::SYS_close_range, 7u32, u32::MAX, 0u32);
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut all);
    libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    libc::execv(exe.as_ptr(), argv.as_ptr());
    fail(b"nsrun: exec the network tool")
}

impl Tool {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Which tool it is.
    pub fn net(&self) -> UserNet {
        self.net
    }

    /// What it wrote on stderr, less the noise of a missing syslog.
    fn stderr_text(&self) -> String {
        let Ok(fd) = self.stderr.try_clone() else {
            return String::new();
        };
        let mut f = std::fs::File::from(fd);
        let mut s = String::new();
        use std::io::Seek;
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.take(64 * 1024).read_to_string(&mut s);
        let lines: Vec<&str> = s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Failed to send") && !l.contains("syslog"))
            .filter(|l| !l.starts_with("WARNING: Support for seccomp"))
            .collect();
        lines.join("; ")
    }

    /// The error for a tool that failed: its status and its words.
    fn failed(&mut self, what: &str) -> Error {
        let st = self.stop();
        let said = self.stderr_text();
        let how = match st {
            Some(process::ExitStatus {
                signal: Some(sig), ..
            }) => format!("killed by signal {sig}"),
            Some(st) => format!("exit status {}", st.code.unwrap_or(-1)),
            None => "gone".into(),
        };
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        Error::Child(format!(
            "net = '{}': {} {what} ({how}){said}",
            self.net, self.net
        ))
    }

    /// Wait until the tool writes on its ready pipe; its end of file
    /// means it died first.
    fn wait_ready(&mut self) -> Result<()> {
        let ready = self.ready.take().expect("ready pipe");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stop();
                return Err(Error::Child(format!(
                    "net = '{}': {} did not get ready within {} s",
                    self.net,
                    self.net,
                    READY_TIMEOUT.as_secs()
                )));
            }
            let mut p = libc::pollfd {
                fd: ready.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as i32 + 1) };
            if rc < 0 && Errno::last() != Errno::EINTR {
                let e = Errno::last();
                self.stop();
                return Err(Error::sys("poll the network tool's ready pipe", e));
            }
            if rc <= 0 {
                continue;
            }
            let mut b = [0u8; 32];
            // SAFETY: reading into a local buffer.
            let n = unsafe { libc::read(ready.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
            match n {
                n if n > 0 => return Ok(()),
                0 => return Err(self.failed("failed to start")),
                _ if Errno::last() == Errno::EINTR => {}
                _ => {
                    let e = Errno::last();
                    self.stop();
                    return Err(Error::sys("read the network tool's ready pipe", e));
                }
            }
        }
    }

    /// Publish `p` through slirp4netns's API socket.
    fn add_hostfwd(&mut self, api: &Path, p: &Port) -> Result<()> {
        let addr = match p.addr {
            Some(a) => a.to_string(),
            None => "0.0.0.0".into(),
        };
        let req = format!(
            "{{\"execute\":\"add_hostfwd\",\"arguments\":{{\"proto\":\"{}\",\"host_addr\":\"{addr}\",\"host_port\":{},\"guest_port\":{}}}}}",
            p.proto.name(),
            p.host,
            p.guest
        );
        let talk = || -> std::io::Result<String> {
            let mut s = std::os::unix::net::UnixStream::connect(api)?;
            s.set_read_timeout(Some(READY_TIMEOUT))?;
            s.write_all(req.as_bytes())?;
            s.shutdown(std::net::Shutdown::Write)?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        };
        match talk() {
            Ok(out) if out.contains("\"return\"") => Ok(()),
            Ok(out) => {
                self.stop();
                let why = if out.contains("slirp_add_hostfwd failed") {
                    "the port is in use".to_string()
                } else {
                    out.trim().to_string()
                };
                Err(Error::Invalid(format!(
                    "ports: {p}: slirp4netns cannot publish it: {why}"
                )))
            }
            Err(e) => Err(self.failed(&format!("did not answer on its API socket ({e})"))),
        }
    }

    /// Kill and reap it (once; only in the process that started it).
    pub(crate) fn stop(&mut self) -> Option<process::ExitStatus> {
        if self.reaped || self.owner != std::process::id() {
            return None;
        }
        self.reaped = true;
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        process::wait(self.pid, false).ok().flatten()
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let p: Port = "8080:80".parse().unwrap();
        assert_eq!(p, Port::tcp(8080, 80));
        let p: Port = "127.0.0.1:8443:443/udp".parse().unwrap();
        assert_eq!(p.addr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((p.host, p.guest, p.proto), (8443, 443, Proto::Udp));
        let p: Port = "[::1]:8080:80".parse().unwrap();
        assert_eq!(p.addr, Some("::1".parse().unwrap()));
        assert_eq!(p.to_string(), "[::1]:8080:80/tcp");
        assert_eq!("53/udp".parse::<Port>().unwrap().to_string(), "53:53/udp");
        for bad in [
            "",
            "x:80",
            "0:80",
            "8080:70000",
            "1.2.3:80:80",
            "80/sctp",
            "a:b:c:d",
            "[::1:80",
        ] {
            let e = bad.parse::<Port>().unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn validate_needs_a_new_net_namespace() {
        let net: Namespaces = [Namespace::Net].into_iter().collect();
        assert!(validate(Some(UserNet::Pasta), &[], net, false).is_ok());
        let e = validate(Some(UserNet::Pasta), &[], Namespaces::empty(), false).unwrap_err();
        assert!(e.to_string().contains("add \"net\""), "{e}");
        let e = validate(None, &[Port::tcp(1, 1)], net, false).unwrap_err();
        assert!(e.to_string().contains("ports need net"), "{e}");
        let two = [Port::tcp(8080, 80), Port::tcp(8080, 81)];
        let e = validate(Some(UserNet::Pasta), &two, net, false).unwrap_err();
        assert!(e.to_string().contains("same host port"), "{e}");
        assert!(validate(Some(UserNet::Pasta), &[], net, true).is_err());
    }
}
