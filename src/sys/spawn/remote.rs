//! A [`Spawn`] as plain data, for the [`Supervisor`](crate::Supervisor):
//! what crosses its socket is this request and the fds it names, never
//! a closure. A child module of `spawn`, so it reads the builder's fields
//! as they are and no accessor has to be added for each.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{IdMap, JoinTarget, Propagation, Spawn, Stdio};
use crate::error::{Error, Result};
use crate::supervisor::wire::Bytes;
use crate::sys::caps::Caps;
use crate::sys::cgroup::Limits;
use crate::sys::idmap::IdRange;
use crate::sys::landlock::{Rules, Scope};
use crate::sys::namespace::Namespace;
use crate::sys::rlimit::Rlimit;
use crate::sys::seccomp::wire::PolicyWire;
use crate::sys::seccomp::Policy;

/// Where a standard stream of the remote child goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum FdReq {
    /// The supervisor's own (what the host had when it started it).
    Inherit,
    /// `/dev/null`.
    Null,
    /// A file the supervisor opens.
    Path(Bytes),
    /// The fd at this index among those passed with the request.
    Passed(usize),
}

/// An id map: root, same, or ranges (inside, outside, count).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum MapReq {
    Root,
    Same,
    Ranges(Vec<(u32, u32, u32)>),
}

/// Everything of a [`Spawn`] that is plain data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpawnRequest {
    argv: Vec<Bytes>,
    namespaces: Vec<String>,
    /// Namespace kind, and a pid or a path.
    join: Vec<(String, Option<i32>, Option<String>)>,
    uid_map: Option<MapReq>,
    gid_map: Option<MapReq>,
    setgroups_allow: Option<bool>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    hostname: Option<String>,
    domainname: Option<String>,
    time_offsets: Option<(i64, i64)>,
    env: Vec<(Bytes, Option<Bytes>)>,
    clear_env: bool,
    cwd: Option<Bytes>,
    argv0: Option<Bytes>,
    pub(crate) stdio: [FdReq; 3],
    init: Option<bool>,
    die_with_parent: bool,
    new_session: bool,
    propagation: String,
    mount_proc: Option<String>,
    timeout_ns: Option<u64>,
    /// "keep" or "drop", and the mask.
    caps: Option<(bool, u64)>,
    #[serde(default)]
    caps_bound: Option<u64>,
    #[serde(default)]
    caps_sets: Option<u64>,
    no_new_privs: Option<bool>,
    seccomp: Option<PolicyWire>,
    rlimits: Vec<(String, u64, u64)>,
    cgroup: Option<(Option<u64>, Option<u64>, Option<f64>)>,
    disable_userns: bool,
    landlock: Option<LandlockReq>,
    new_keyring: bool,
    tty_guard: bool,
    #[serde(default)]
    lock_files: Vec<Bytes>,
    #[serde(default)]
    set_pwd: bool,
    #[serde(default)]
    gate: Option<Bytes>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LandlockReq {
    fs: bool,
    ro: Vec<String>,
    rw: Vec<String>,
    tcp_bind: Option<Vec<u16>>,
    tcp_connect: Option<Vec<u16>>,
    scope: Vec<String>,
}

/// The host's side of a request: what to send and what to keep.
pub(crate) struct Outgoing {
    pub(crate) request: SpawnRequest,
    /// Sent with the request; `FdReq::Passed(i)` names `fds[i]`.
    pub(crate) fds: Vec<RawFd>,
    /// Keeps the fds made for the request (the child's pipe ends) open
    /// until they are sent.
    pub(crate) keep: Vec<OwnedFd>,
    /// The host's ends of `Stdio::Pipe` streams.
    pub(crate) parent: [Option<File>; 3],
}

fn bytes(s: &OsString) -> Bytes {
    Bytes(s.as_bytes().to_vec())
}

fn os(b: Bytes) -> OsString {
    OsString::from_vec(b.0)
}

fn map_req(m: &IdMap) -> MapReq {
    match m {
        IdMap::Root => MapReq::Root,
        IdMap::Same => MapReq::Same,
        IdMap::Ranges(r) => {
            MapReq::Ranges(r.iter().map(|r| (r.inside, r.outside, r.count)).collect())
        }
    }
}

fn id_map(m: MapReq) -> IdMap {
    match m {
        MapReq::Root => IdMap::Root,
        MapReq::Same => IdMap::Same,
        MapReq::Ranges(r) => IdMap::Ranges(
            r.into_iter()
                .map(|(inside, outside, count)| IdRange {
                    inside,
                    outside,
                    count,
                })
                .collect(),
        ),
    }
}

/// The standard streams of a request: what each is, the fds to pass,
/// the fds made for it (kept open until sent) and the host's pipe ends.
#[allow(clippy::type_complexity)]
pub(crate) fn outgoing_stdio(
    spec: &[Stdio; 3],
) -> Result<([FdReq; 3], Vec<RawFd>, Vec<OwnedFd>, [Option<File>; 3])> {
    let mut fds = Vec::new();
    let mut keep = Vec::new();
    let mut parent: [Option<File>; 3] = [None, None, None];
    let mut stdio = [FdReq::Inherit, FdReq::Inherit, FdReq::Inherit];
    for (i, s) in spec.iter().enumerate() {
        stdio[i] = match s {
            // The host's stream as it is now, not the one the
            // supervisor inherited when it started.
            Stdio::Inherit => {
                // SAFETY: F_GETFD only queries.
                if unsafe { libc::fcntl(i as RawFd, libc::F_GETFD) } < 0 {
                    // A closed stream stays closed to the program: it
                    // reads /dev/null rather than whatever the
                    // supervisor happens to have there.
                    FdReq::Null
                } else {
                    fds.push(i as RawFd);
                    FdReq::Passed(fds.len() - 1)
                }
            }
            Stdio::Null => FdReq::Null,
            Stdio::Path(p) => FdReq::Path(Bytes(p.as_os_str().as_bytes().to_vec())),
            Stdio::Fd(fd) => {
                // SAFETY: F_GETFD only queries.
                if unsafe { libc::fcntl(*fd, libc::F_GETFD) } < 0 {
                    return Err(Error::Invalid(format!(
                        "supervisor spawn: stdio fd {fd} is not open"
                    )));
                }
                fds.push(*fd);
                FdReq::Passed(fds.len() - 1)
            }
            Stdio::Pipe => {
                let (r, w) = super::message::pipe()?;
                let (mine, theirs) = if i == 0 { (w, r) } else { (r, w) };
                parent[i] = Some(File::from(mine));
                fds.push(theirs.as_raw_fd());
                keep.push(theirs);
                FdReq::Passed(fds.len() - 1)
            }
        };
    }
    Ok((stdio, fds, keep, parent))
}

fn cannot_cross(what: &str, hint: &str) -> Error {
    Error::Invalid(format!(
        "supervisor spawn: {what} cannot cross to the supervisor (a separate process); {hint}"
    ))
}

impl Spawn<'_> {
    /// The request for a supervisor, with the fds it passes: what cannot
    /// leave this process (closures, open namespace handles, fds kept by
    /// number) is refused by name.
    pub(crate) fn into_request(mut self) -> Result<Outgoing> {
        self.validate()?;
        if self.func.is_some() {
            return Err(cannot_cross(
                "Spawn::func (a Rust closure)",
                "run a program (argv), or a Lua recipe with Supervisor::run_recipe",
            ));
        }
        if self.setup.is_some() || self.before_start.is_some() {
            return Err(cannot_cross(
                "setup/before_start (Rust closures)",
                "do that set-up in a Lua recipe with Supervisor::run_recipe",
            ));
        }
        if !self.keep_fds.is_empty() || !self.parent_fds.is_empty() {
            return Err(cannot_cross(
                "keep_fds/parent_fds (fds named by their number)",
                "pass data through stdin/stdout/stderr",
            ));
        }
        // What holds an end of its own in this process (a channel, a
        // terminal's master, a network tool's life) is not sent yet:
        // refused by name rather than dropped.
        for (set, what) in [
            (self.channel.is_some(), "channel"),
            (self.tty || self.tty_master, "tty"),
            (self.net.is_some() || !self.ports.is_empty(), "net/ports"),
        ] {
            if set {
                return Err(cannot_cross(
                    what,
                    "spawn it directly from a single-threaded process, or from a Lua recipe with Supervisor::run_recipe",
                ));
            }
        }
        let mut join = Vec::new();
        for (k, t) in std::mem::take(&mut self.join) {
            join.push(match t {
                JoinTarget::Pid(p) => (k.name().to_string(), Some(p), None),
                JoinTarget::Path(p) => (k.name().to_string(), None, Some(p)),
                JoinTarget::Handle(_) => {
                    return Err(cannot_cross(
                        "an open namespace handle (JoinTarget::Handle)",
                        "join by pid or by path (/proc/PID/ns/KIND, /run/netns/NAME)",
                    ))
                }
            });
        }
        let (stdio, fds, keep, parent) = outgoing_stdio(&self.stdio)?;
        let request = SpawnRequest {
            argv: self.argv.iter().map(bytes).collect(),
            namespaces: self.namespaces.iter().map(|k| k.name().into()).collect(),
            join,
            uid_map: self.uid_map.as_ref().map(map_req),
            gid_map: self.gid_map.as_ref().map(map_req),
            setgroups_allow: self.setgroups_allow,
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.take(),
            hostname: self.hostname.take(),
            domainname: self.domainname.take(),
            time_offsets: self.time_offsets,
            // The host's environment as it is now, as a direct spawn
            // inherits it: the supervisor has none of its own.
            env: (!self.clear_env)
                .then(std::env::vars_os)
                .into_iter()
                .flatten()
                .map(|(k, v)| (bytes(&k), Some(bytes(&v))))
                .chain(
                    self.env
                        .iter()
                        .map(|(k, v)| (bytes(k), v.as_ref().map(bytes))),
                )
                .collect(),
            clear_env: true,
            cwd: self.cwd.as_ref().map(bytes),
            argv0: self.argv0.as_ref().map(bytes),
            stdio,
            init: self.init,
            die_with_parent: self.die_with_parent,
            new_session: self.new_session,
            propagation: match self.propagation {
                Propagation::Slave => "slave",
                Propagation::Private => "private",
                Propagation::Shared => "shared",
                Propagation::Unchanged => "unchanged",
            }
            .into(),
            mount_proc: self.mount_proc.take(),
            timeout_ns: self
                .timeout
                .map(|t| t.as_nanos().min(u64::MAX as u128) as u64),
            caps: self.caps.and_then(|c| match c {
                Caps::Keep(m) => Some((true, m)),
                Caps::Drop(m) => Some((false, m)),
                Caps::Bound(_) | Caps::Sets(_) => None,
            }),
            caps_sets: match self.caps {
                Some(Caps::Sets(m)) => Some(m),
                _ => None,
            },
            caps_bound: match self.caps {
                Some(Caps::Bound(m)) => Some(m),
                _ => None,
            },
            no_new_privs: self.no_new_privs,
            seccomp: self.seccomp.as_ref().map(Policy::to_wire),
            rlimits: self
                .rlimits
                .iter()
                .map(|r| (r.name().to_string(), r.soft, r.hard))
                .collect(),
            cgroup: self.cgroup.map(|l| (l.memory, l.pids, l.cpu)),
            disable_userns: self.disable_userns,
            landlock: self.landlock.take().map(|r| LandlockReq {
                fs: r.fs,
                ro: r.ro,
                rw: r.rw,
                tcp_bind: r.tcp_bind,
                tcp_connect: r.tcp_connect,
                scope: r.scope.iter().map(|s| s.name().to_string()).collect(),
            }),
            new_keyring: self.new_keyring,
            tty_guard: self.tty_guard,
            lock_files: self.lock_files.iter().map(bytes).collect(),
            set_pwd: self.set_pwd,
            gate: self.gate.as_ref().map(bytes),
        };
        Ok(Outgoing {
            request,
            fds,
            keep,
            parent,
        })
    }

    /// The builder again, in the supervisor; `fds` are those that came
    /// with the request, and must stay open until `spawn` returns.
    pub(crate) fn from_request(r: SpawnRequest, fds: &[OwnedFd]) -> Result<Spawn<'static>> {
        let mut s = Spawn::new(r.argv.into_iter().map(os));
        for n in &r.namespaces {
            s.namespaces.insert(n.parse::<Namespace>()?);
        }
        for (k, pid, path) in r.join {
            let k = k.parse::<Namespace>()?;
            let t = match (pid, path) {
                (Some(p), _) => JoinTarget::Pid(p),
                (None, Some(p)) => JoinTarget::Path(p),
                (None, None) => return Err(Error::Invalid(format!("join {k}: no target"))),
            };
            s.join.push((k, t));
        }
        s.uid_map = r.uid_map.map(id_map);
        s.gid_map = r.gid_map.map(id_map);
        s.setgroups_allow = r.setgroups_allow;
        s.uid = r.uid;
        s.gid = r.gid;
        s.groups = r.groups;
        s.hostname = r.hostname;
        s.domainname = r.domainname;
        s.time_offsets = r.time_offsets;
        s.env = r.env.into_iter().map(|(k, v)| (os(k), v.map(os))).collect();
        s.clear_env = r.clear_env;
        s.cwd = r.cwd.map(os);
        s.argv0 = r.argv0.map(os);
        for (i, f) in r.stdio.into_iter().enumerate() {
            s.stdio[i] = match f {
                FdReq::Inherit => Stdio::Inherit,
                FdReq::Null => Stdio::Null,
                FdReq::Path(p) => Stdio::Path(os(p).into()),
                FdReq::Passed(n) => match fds.get(n) {
                    Some(fd) => Stdio::Fd(fd.as_raw_fd()),
                    None => {
                        return Err(Error::Invalid(format!(
                            "supervisor request: stdio {i} names passed fd {n}, but {} came",
                            fds.len()
                        )))
                    }
                },
            };
        }
        s.init = r.init;
        s.die_with_parent = r.die_with_parent;
        s.new_session = r.new_session;
        s.propagation = r.propagation.parse()?;
        s.mount_proc = r.mount_proc;
        s.timeout = r.timeout_ns.map(Duration::from_nanos);
        s.caps = r
            .caps
            .map(|(keep, m)| if keep { Caps::Keep(m) } else { Caps::Drop(m) })
            .or(r.caps_bound.map(Caps::Bound))
            .or(r.caps_sets.map(Caps::Sets));
        s.no_new_privs = r.no_new_privs;
        s.seccomp = r.seccomp.map(Policy::from_wire).transpose()?;
        s.rlimits = r
            .rlimits
            .iter()
            .map(|(n, soft, hard)| Rlimit::new(n, *soft, *hard))
            .collect::<Result<_>>()?;
        s.cgroup = r
            .cgroup
            .map(|(memory, pids, cpu)| Limits { memory, pids, cpu });
        s.disable_userns = r.disable_userns;
        s.landlock = match r.landlock {
            None => None,
            Some(l) => Some(Rules {
                fs: l.fs,
                ro: l.ro,
                rw: l.rw,
                tcp_bind: l.tcp_bind,
                tcp_connect: l.tcp_connect,
                scope: l
                    .scope
                    .iter()
                    .map(|n| Scope::parse(n))
                    .collect::<Result<_>>()?,
            }),
        };
        s.new_keyring = r.new_keyring;
        s.tty_guard = r.tty_guard;
        s.lock_files = r.lock_files.into_iter().map(os).collect();
        s.set_pwd = r.set_pwd;
        if let Some(g) = r.gate {
            s = s.gate(os(g));
            s.die_with_parent = r.die_with_parent;
        }
        Ok(s)
    }
}
