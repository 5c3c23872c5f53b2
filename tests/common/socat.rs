//! A stand-in for `socat`, so that the networking recipes and examples are
//! tested on a machine without it (the examples are written for users, who
//! have or install socat; the tests must not need it).
//!
//! The test binary itself is the stand-in: [`install`] copies it into a
//! directory as `socat`, the test puts that directory first on the PATH
//! nsrun runs with, and a binary started under that name runs [`main`]
//! from its `.init_array`, before the test harness's own `main`.
//!
//! It knows the part of socat's syntax the recipes and examples use:
//!
//! ```text
//! socat -u ADDRESS ADDRESS               from the first to the second
//! socat ADDRESS SYSTEM:COMMAND            (either order)
//!   TCP-LISTEN:PORT[,bind=IP][,reuseaddr]   also TCP4-LISTEN, TCP6-LISTEN; one connection
//!   TCP:IP:PORT[,retry=N][,interval=SECONDS][,connect-timeout=SECONDS]   also TCP4, TCP6
//!   SYSTEM:COMMAND    sh -c COMMAND, its stdin and stdout the other address
//!   -                 stdin and stdout
//! ```
//!
//! and refuses anything else with a message naming it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The name the stand-in answers to.
pub const NAME: &str = "socat";

/// Copy the running test binary to `dir/socat` (mode 0755, so uid 65534
/// runs it too) and return that path.
pub fn install(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let to = dir.join(NAME);
    std::fs::copy(&exe, &to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", exe.display(), to.display()));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

/// A PATH for nsrun with `dir` (holding the stand-in) first, then the
/// system's directories, all searchable by every user.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        dir.display()
    )
}

// The hook runs in every process of this test binary: it returns at once
// unless the binary was started as `socat`. Read from /proc, not from
// std::env::args: on musl, std fills those in only in main, and on glibc
// the order of .init_array entries is the linker's.
#[used]
#[link_section = ".init_array"]
static RUN_AS_SOCAT: extern "C" fn() = run_as_socat;

extern "C" fn run_as_socat() {
    let Ok(cmdline) = std::fs::read("/proc/self/cmdline") else {
        return;
    };
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.first().and_then(|a| Path::new(a).file_name()) != Some(NAME.as_ref()) {
        return;
    }
    let code = match main(&args[1..]) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("socat (the tests' stand-in): {e}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// One side of the connection, before it is opened.
#[derive(Debug)]
enum Address {
    Listen(SocketAddr),
    Connect {
        to: SocketAddr,
        retry: u32,
        interval: Duration,
        timeout: Option<Duration>,
    },
    System(String),
    Stdio,
}

/// An opened side: where to read, where to write, and the socket (if it is
/// one) to half-close once everything is written.
struct End {
    read: Box<dyn Read + Send>,
    write: Box<dyn Write + Send>,
    socket: Option<TcpStream>,
}

fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{name}={v}: not a number of seconds"))
}

fn socket_addr(spec: &str, what: &str) -> Result<SocketAddr, String> {
    spec.parse()
        .map_err(|_| format!("{what} {spec:?}: want IP:PORT ([IPv6]:PORT), no host names"))
}

fn parse(spec: &str) -> Result<Address, String> {
    if spec == "-" || spec.eq_ignore_ascii_case("stdio") {
        return Ok(Address::Stdio);
    }
    let (kind, rest) = spec
        .split_once(':')
        .ok_or_else(|| format!("address {spec:?}: want KIND:..."))?;
    let kind = kind.to_ascii_uppercase();
    if kind == "SYSTEM" {
        return Ok(Address::System(rest.to_string()));
    }
    let mut parts = rest.split(',');
    let first = parts.next().unwrap_or("");
    let options: Vec<(&str, Option<&str>)> = parts
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        })
        .collect();
    let unknown = |o: &str| format!("address {spec:?}: option {o:?} is not supported");
    match kind.as_str() {
        "TCP-LISTEN" | "TCP4-LISTEN" | "TCP6-LISTEN" => {
            let port: u16 = first
                .parse()
                .map_err(|_| format!("address {spec:?}: bad port {first:?}"))?;
            let mut bind = if kind == "TCP6-LISTEN" {
                "[::]"
            } else {
                "0.0.0.0"
            };
            for (k, v) in options {
                match (k, v) {
                    ("bind", Some(v)) => bind = v,
                    // std sets SO_REUSEADDR on every listening socket.
                    ("reuseaddr", None) => {}
                    _ => return Err(unknown(k)),
                }
            }
            Ok(Address::Listen(socket_addr(
                &format!("{bind}:{port}"),
                "bind address",
            )?))
        }
        "TCP" | "TCP4" | "TCP6" => {
            let to = socket_addr(first, "address")?;
            let (mut retry, mut interval, mut timeout) = (0, Duration::from_secs(1), None);
            for (k, v) in options {
                match (k, v) {
                    ("retry", Some(v)) => {
                        retry = v.parse().map_err(|_| format!("retry={v}: not a count"))?
                    }
                    ("interval", Some(v)) => interval = seconds(k, v)?,
                    ("connect-timeout", Some(v)) => timeout = Some(seconds(k, v)?),
                    _ => return Err(unknown(k)),
                }
            }
            Ok(Address::Connect {
                to,
                retry,
                interval,
                timeout,
            })
        }
        _ => Err(format!("address type {kind:?} is not supported")),
    }
}

fn socket_end(s: TcpStream) -> Result<End, String> {
    let clone = |s: &TcpStream| s.try_clone().map_err(|e| format!("dup socket: {e}"));
    Ok(End {
        read: Box::new(clone(&s)?),
        write: Box::new(clone(&s)?),
        socket: Some(s),
    })
}

/// Open a side that is not `SYSTEM:`: accept one connection, connect, or
/// take stdin and stdout.
fn open(a: &Address) -> Result<End, String> {
    match a {
        Address::Listen(at) => {
            let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
            let (s, _) = l.accept().map_err(|e| format!("accept on {at}: {e}"))?;
            socket_end(s)
        }
        Address::Connect {
            to,
            retry,
            interval,
            timeout,
        } => {
            let mut left = *retry;
            loop {
                let r = match timeout {
                    Some(t) => TcpStream::connect_timeout(to, *t),
                    None => TcpStream::connect(to),
                };
                match r {
                    Ok(s) => return socket_end(s),
                    Err(e) if left == 0 => return Err(format!("connect to {to}: {e}")),
                    Err(_) => {
                        left -= 1;
                        std::thread::sleep(*interval);
                    }
                }
            }
        }
        Address::Stdio => Ok(End {
            read: Box::new(std::io::stdin()),
            write: Box::new(std::io::stdout()),
            socket: None,
        }),
        Address::System(_) => unreachable!("SYSTEM is run, not opened"),
    }
}

/// Copy `from` to `to` until end of input, then half-close `to`'s socket
/// so its peer sees the end too.
fn pump(mut from: Box<dyn Read + Send>, to: &mut End) -> Result<(), String> {
    std::io::copy(&mut from, &mut to.write).map_err(|e| format!("copy: {e}"))?;
    to.write.flush().map_err(|e| format!("flush: {e}"))?;
    if let Some(s) = &to.socket {
        let _ = s.shutdown(Shutdown::Write);
    }
    Ok(())
}

/// `socat ARGS`, with `args` the arguments after the program name.
pub fn main(args: &[String]) -> Result<(), String> {
    let (unidirectional, addrs) = match args {
        [u, a, b] if u == "-u" => (true, [a, b]),
        [a, b] => (false, [a, b]),
        _ => return Err(format!("usage: socat [-u] ADDRESS ADDRESS (got {args:?})")),
    };
    let a = parse(addrs[0])?;
    let b = parse(addrs[1])?;
    match (&a, &b) {
        (Address::System(cmd), other) | (other, Address::System(cmd)) => {
            if matches!(other, Address::System(_)) {
                return Err("two SYSTEM addresses".into());
            }
            // As socat does, the command's stdin and stdout are the other
            // side itself, so it sees the end of the connection.
            let end = open(other)?;
            let fd = |s: &TcpStream| -> Result<Stdio, String> {
                let s = s.try_clone().map_err(|e| format!("dup socket: {e}"))?;
                Ok(Stdio::from(OwnedFd::from(s)))
            };
            let (stdin, stdout) = match &end.socket {
                Some(s) => (fd(s)?, fd(s)?),
                None => (Stdio::inherit(), Stdio::inherit()),
            };
            drop(end);
            let st = Command::new("/bin/sh")
                .args(["-c", cmd])
                .stdin(stdin)
                .stdout(stdout)
                .status()
                .map_err(|e| format!("sh -c {cmd:?}: {e}"))?;
            if !st.success() {
                eprintln!("socat (the tests' stand-in): sh -c {cmd:?}: {st}");
            }
            Ok(())
        }
        _ if unidirectional => {
            let first = open(&a)?;
            // Nothing goes to the first side: say so, as a peer reading
            // until our end would otherwise wait for good.
            if let Some(s) = &first.socket {
                let _ = s.shutdown(Shutdown::Write);
            }
            let mut second = open(&b)?;
            pump(first.read, &mut second)
        }
        // Not needed so far: both ways at once, and socat's rules for
        // when that ends.
        _ => Err("without -u, one address must be SYSTEM".into()),
    }
}
