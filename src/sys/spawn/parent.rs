//! The parent's side of a start: everything that can fail is done before
//! the clone; then the clone (fork or shared memory, see [`Start`]), the
//! id maps, the cgroup, `before_start`, and the wait for the child's exec
//! or its error. Under `--plan` the same steps are walked, the child's
//! inline after the parent's.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use nix::unistd::{getegid, geteuid};

use super::child::{catch, ChildCtx, Join};
use super::clone_plan::{ClonePlan, Request, Start};
use super::message::{pipe, read_all, read_first, report, status_channel, Message, READY};
use super::stdio::{open_stdio, StdioFds};
use super::{IdMap, JoinTarget, Spawn};
use crate::error::{Context, Error, Result};
use crate::sys::cgroup::Cgroup;
use crate::sys::child::Child;
use crate::sys::idmap::{self, IdKind, IdRange};
use crate::sys::init;
use crate::sys::namespace::{self as sysns, Namespace};
use crate::sys::ops;
use crate::sys::process::{self, exit_child};
use crate::sys::seccomp::Policy;

impl Spawn<'_> {
    /// Start the process. Returns once it has exec'd (or started `fn`), or
    /// with the error that stopped it, having reaped it.
    pub fn spawn(mut self) -> Result<Child> {
        self.validate()?;
        if self.tty_guard {
            // One more rule in the program's filter, or a filter of its own.
            self.seccomp = Some(match self.seccomp.take() {
                Some(p) => p.with_tty_guard(),
                None => Policy::tty_guard(),
            });
        }
        let planning = ops::planning();
        // Opened now, not blocking (a reader needs no writer yet), and
        // inherited: the child waits on it once set up.
        let gate = match &self.gate {
            Some(p) if !planning => Some(open_gate(p)?),
            _ => None,
        };
        self.gate_fd = gate.as_ref().map(|f| f.as_raw_fd());
        if !planning {
            process::refuse_if_threaded("spawn")?;
        }
        if let Some(c) = self.channel.as_mut() {
            c.prepare()?;
            if let Some(at) = c.at {
                self.keep_fds.push(at);
            }
        }
        // Everything that can fail in the parent is done before the clone.
        let joins = self.open_joins(planning)?;
        let mut stdio = open_stdio(&self.stdio)?;
        let tty_master = self.open_tty(&mut stdio)?;
        let prepared = match self.func {
            Some(_) => None,
            None => Some(self.prepared()?),
        };
        let maps = self.id_maps();
        let usernet = self.prepare_usernet(planning)?;
        // Compiled here: the child only installs (and allocates nothing).
        let filters = match &self.seccomp {
            Some(p) => p.compile()?,
            None => Vec::new(),
        };
        let plan = ClonePlan::new(&Request {
            namespaces: self.namespaces,
            joins: joins.iter().map(|(k, _)| *k).collect(),
            init: self.use_init(),
            // (Lock files are opened by a child that allocates: a fork.)
            runs_lua: self.func.is_some()
                || self.setup.is_some()
                || self.before_start.is_some()
                || !self.lock_files.is_empty()
                // (A gated child reports "ready" before its exec: the
                // parent must read that, which a memory-sharing start
                // does not.)
                || self.gate.is_some()
                // (A nested user namespace is made, and its maps written
                // with formatted strings, in the child: a fork.)
                || self.disable_userns
                || self.nested_user.is_some(),
            parent_maps: maps.as_ref().is_some_and(|m| !m.by_child),
            cgroup: self.cgroup.is_some(),
            before_start: self.before_start.is_some(),
            usernet: usernet.is_some(),
            prewrite: !ops::tracing() && !planning && idmap::Prewritten::possible(),
        });
        let prewritten = match (&maps, plan.start) {
            (Some(m), Start::Alongside) => {
                Some(idmap::Prewritten::new(&m.uid, &m.gid, m.deny_setgroups)?)
            }
            _ => None,
        };
        let cgroup = self.cgroup.as_ref().map(Cgroup::create).transpose()?;

        let (sync_r, sync_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // Taken (closed) beside a child that shares our memory.
        let (mut sync_w, mut err_w) = (Some(sync_w), Some(err_w));
        let (status_r, status_w) = status_channel()?;
        if plan.init || !self.namespaces.is_empty() || !joins.is_empty() {
            // Where the command line a supervisor (PID 1, or a relay) wipes
            // lies: read from /proc while it is still the host's. (Its
            // filter it compiles itself, once the program runs: off the
            // path of the start.)
            init::note_arg_area();
        }
        let own_maps = maps.as_ref().filter(|m| m.by_child);
        // The child's parent as it sees us (see set_pdeathsig).
        let me = match plan.at_clone.contains(Namespace::Pid) {
            true => 0,
            false => nix::unistd::getpid().as_raw(),
        };
        // Set beside a child that shares our memory: the map write that
        // failed, and the child's error message.
        let mut alongside_failed = None;
        let mut alongside_msg = [0u8; 4096];
        let mut alongside_len = None;
        // Under --plan: the parts of the child's context it runs with,
        // inline, once our steps are recorded.
        let mut planned = None;
        let pid = if planning && plan.start != Start::Fork {
            // Recorded as it would be made; the child's steps run inline below.
            process::spawn_vm(plan.at_clone, &mut || {})?;
            planned = Some((joins, stdio.child.each_mut().map(Option::take), stdio.kinds));
            ops::PLANNED_PID
        } else if plan.start == Start::Fork {
            match process::fork(plan.at_clone)? {
                process::Forked::Parent(pid) if !planning => pid,
                process::Forked::Parent(pid) => {
                    planned = Some((joins, stdio.child.each_mut().map(Option::take), stdio.kinds));
                    pid
                }
                process::Forked::Child => {
                    drop(sync_w);
                    drop(err_r);
                    drop(status_r);
                    let err_fd = err_w.take().expect("error pipe").into_raw_fd();
                    let cx = ChildCtx {
                        sync_r: Some(sync_r),
                        err_fd,
                        status_fd: status_w.into_raw_fd(),
                        joins,
                        stdio,
                        prepared: prepared.as_ref(),
                        filters: &filters,
                        proc_fd: None,
                        self_maps: own_maps,
                        parent: me,
                    };
                    let r = catch(|| self.child(&plan, cx));
                    // child() only returns with an error.
                    report(err_fd, &r.unwrap_err());
                    exit_child(127)
                }
            }
        } else {
            let raw = |f: &OwnedFd| f.as_raw_fd();
            let (sync_r_fd, sync_w_fd, err_r_fd, err_w_fd, status_r_fd, status_w_fd) = (
                raw(&sync_r),
                sync_w.as_ref().map_or(-1, raw),
                raw(&err_r),
                err_w.as_ref().map_or(-1, raw),
                raw(&status_r),
                raw(&status_w),
            );
            let (stdio_fds, stdio_kinds) = (stdio.raw(), stdio.kinds);
            let (prepared, filters) = (prepared.as_ref(), filters.as_slice());
            let plan_ref = &plan;
            let mut run = || {
                // Our own fd table: close our copies of the parent's ends.
                for fd in [sync_w_fd, err_r_fd, status_r_fd] {
                    // SAFETY: closing our copy only.
                    unsafe { libc::close(fd) };
                }
                let cx = ChildCtx {
                    // SAFETY: these fds are ours in our own fd table; the
                    // parent's OwnedFds close the parent's copies.
                    sync_r: Some(unsafe { OwnedFd::from_raw_fd(sync_r_fd) }),
                    err_fd: err_w_fd,
                    status_fd: status_w_fd,
                    joins: Vec::new(),
                    stdio: unsafe { StdioFds::from_raw(stdio_fds, stdio_kinds) },
                    prepared,
                    filters,
                    proc_fd: None,
                    self_maps: own_maps,
                    parent: me,
                };
                let r = catch(|| self.child(plan_ref, cx));
                report(err_w_fd, &r.unwrap_err());
                exit_child(127)
            };
            match &prewritten {
                None => process::spawn_vm(plan.at_clone, &mut run)?,
                Some(pw) => {
                    let mut meanwhile = |pid: i32| {
                        // Our copy, so the end of file is the child's.
                        if let Some(fd) = err_w.take() {
                            crate::sys::raw::close(fd);
                        }
                        match pw.write(pid) {
                            Ok(()) => {
                                if let Some(fd) = &sync_w {
                                    let _ = crate::sys::raw::write(fd.as_raw_fd(), b"g");
                                }
                            }
                            Err(e) => {
                                alongside_failed = Some(e);
                                // No byte but end of file: the child leaves.
                                if let Some(fd) = sync_w.take() {
                                    crate::sys::raw::close(fd);
                                }
                            }
                        }
                    };
                    let (pid, n) = process::spawn_vm_alongside(
                        plan.at_clone,
                        &mut run,
                        &mut meanwhile,
                        err_r_fd,
                        &mut alongside_msg,
                    )?;
                    alongside_len = Some(n);
                    pid
                }
            }
        };
        // Only the child holds these now: its exec (or death) is our end of file.
        drop(err_w);
        drop(status_w);
        let group = self.timeout.is_some() && !self.namespaces.contains(Namespace::Pid);
        let parent_ends = std::mem::take(&mut stdio.parent);
        let (mut child, planned_cgroup) = match planned.is_some() {
            true => (Child::planned(0), cgroup),
            false => (
                Child::started(pid, status_r, parent_ends, self.timeout, group, cgroup),
                None,
            ),
        };
        drop(stdio.child);
        if let Some(m) = tty_master {
            if let Err(e) = child.set_tty(m.fd, m.relay) {
                child.abort();
                return Err(e);
            }
        }

        // The child's error message, if it sent one before its exec.
        let msg = match alongside_len {
            // Beside a memory-sharing child the maps are written already.
            Some(n) => {
                if let Some(e) = alongside_failed {
                    child.abort();
                    return Err(idmap::Prewritten::error(pid, e));
                }
                alongside_msg[..n].to_vec()
            }
            None => {
                let parent_side = (|| -> Result<()> {
                    if let Some(m) = maps.as_ref().filter(|m| !m.by_child) {
                        m.write(Some(pid))?;
                    }
                    if let Some(cg) = child.cgroup().or(planned_cgroup.as_ref()) {
                        cg.add(pid)?;
                    }
                    if let Some(f) = self.before_start.as_mut() {
                        f(pid)?;
                    }
                    if let Some(u) = &usernet {
                        // The network namespace is the child's since the
                        // clone; the tool joins it while the child waits.
                        let userns = plan.at_clone.contains(Namespace::User);
                        if !ops::record(|| u.describe(pid, userns)) {
                            child.attach_usernet(u.start(pid, userns)?);
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = parent_side {
                    child.abort();
                    return Err(e);
                }
                // Let the child go on; then EOF on the error pipe means it exec'd.
                if let Some(fd) = sync_w.as_ref().filter(|_| plan.parent_acts) {
                    let _ = nix::unistd::write(fd, b"g");
                }
                if let Some((joins, child_ends, kinds)) = planned {
                    let code = self.plan_child(
                        &plan,
                        joins,
                        (child_ends, kinds),
                        sync_r,
                        &prepared,
                        &filters,
                        own_maps,
                        me,
                    )?;
                    drop(sync_w);
                    if let Some(mut cg) = planned_cgroup {
                        cg.close()?;
                    }
                    let mut planned = Child::planned(code);
                    planned.set_channel(self.channel.as_mut().map(|c| c.started()));
                    if let Some(t) = child.tty.take() {
                        planned.tty = Some(t);
                    }
                    return Ok(planned);
                }
                if gate.is_some() {
                    // Set up and waiting at the gate, or failed on the way.
                    let msg = read_first(&err_r);
                    drop(sync_w);
                    if msg == READY {
                        return Ok(child);
                    }
                    child.abort();
                    if msg.is_empty() {
                        return Err(Error::Invalid(
                            "the process ended before it reached its gate".into(),
                        ));
                    }
                    return Err(Message::decode(&msg).into_error());
                }
                let msg = read_all(err_r);
                // Held until now: a child that maps itself takes EOF here for our death.
                drop(sync_w);
                msg
            }
        };
        if !msg.is_empty() {
            child.abort();
            return Err(Message::decode(&msg).into_error());
        }
        child.set_channel(self.channel.as_mut().map(|c| c.started()));
        Ok(child)
    }

    /// `--plan`: the child's steps, walked inline in role `child` once the
    /// parent's are recorded.
    #[allow(clippy::too_many_arguments)]
    fn plan_child(
        &mut self,
        plan: &ClonePlan,
        joins: Vec<(Namespace, Join)>,
        (child_ends, kinds): ([Option<OwnedFd>; 3], [&'static str; 3]),
        sync_r: OwnedFd,
        prepared: &Option<process::Prepared>,
        filters: &[seccompiler::BpfProgram],
        own_maps: Option<&IdMaps>,
        me: libc::pid_t,
    ) -> Result<i32> {
        let cx = ChildCtx {
            sync_r: Some(sync_r),
            err_fd: -1,
            status_fd: -1,
            joins,
            stdio: StdioFds {
                child: child_ends,
                parent: [None, None, None],
                kinds,
            },
            prepared: prepared.as_ref(),
            filters,
            proc_fd: None,
            self_maps: own_maps,
            parent: me,
        };
        ops::in_role("child", || self.child(plan, cx))
    }

    /// The network tool to start (`net`), found now, and the ports it
    /// publishes checked free (not under `--plan`, which binds nothing).
    fn prepare_usernet(&self, planning: bool) -> Result<Option<crate::sys::usernet::Prepared>> {
        use crate::sys::usernet;
        let Some(n) = self.net else {
            return Ok(None);
        };
        let (net, exe) = usernet::resolve(n)?;
        if !planning {
            usernet::check_ports(&self.ports)?;
        }
        Ok(Some(usernet::Prepared {
            net,
            exe,
            ports: self.ports.clone(),
        }))
    }

    /// The namespaces to join, opened now (named only, under `--plan`),
    /// in the order the kernel needs them: user first.
    fn open_joins(&mut self, planning: bool) -> Result<Vec<(Namespace, Join)>> {
        let mut v = Vec::new();
        let mut list = std::mem::take(&mut self.join);
        list.sort_by_key(|(k, _)| Namespace::ALL.iter().position(|x| x == k));
        for (k, t) in list {
            let j = match t {
                JoinTarget::Pid(p) if planning => Join::Planned(k.proc_path(Some(p))),
                JoinTarget::Path(p) if planning => Join::Planned(p),
                JoinTarget::Pid(p) => Join::Open(sysns::open_kind(k, Some(p))?),
                JoinTarget::Path(p) => Join::Open(sysns::open_path(&p, Some(k))?),
                JoinTarget::Handle(h) => {
                    if h.kind() != k {
                        return Err(Error::Invalid(format!(
                            "join: the handle for {k} is a {} namespace",
                            h.kind()
                        )));
                    }
                    match planning {
                        true => Join::Planned(h.path().to_string()),
                        false => Join::Open(h),
                    }
                }
            };
            v.push((k, j));
        }
        Ok(v)
    }

    /// The id maps of a new user namespace, and who writes them.
    fn id_maps(&self) -> Option<IdMaps> {
        if !self.namespaces.contains(Namespace::User) {
            return None;
        }
        let uid = resolve_map(self.uid_map.as_ref().unwrap_or(&IdMap::Root), IdKind::Uid);
        let gid = resolve_map(self.gid_map.as_ref().unwrap_or(&IdMap::Root), IdKind::Gid);
        let deny_setgroups = !self.setgroups_allow.unwrap_or(geteuid().is_root());
        // A process in a new user namespace may write its own maps when
        // each is one line mapping its own id, the gid one once setgroups
        // is denied (user_namespaces(7)). Then the child needs nothing
        // from us before it goes on, and a start saves waiting for a wake-up.
        let own_single =
            |r: &[IdRange], id: u32| matches!(r, [one] if one.outside == id && one.count == 1);
        let by_child = deny_setgroups
            && own_single(&uid, geteuid().as_raw())
            && own_single(&gid, getegid().as_raw())
            && self.cgroup.is_none()
            && self.before_start.is_none();
        Some(IdMaps {
            uid,
            gid,
            deny_setgroups,
            by_child,
        })
    }
}

/// A new user namespace's maps.
pub(crate) struct IdMaps {
    uid: Vec<IdRange>,
    gid: Vec<IdRange>,
    deny_setgroups: bool,
    /// Written by the child itself (`None` in [`IdMaps::write`]).
    by_child: bool,
}

impl IdMaps {
    /// uid_map, setgroups, gid_map, in the order the kernel requires, for
    /// process `pid` (`None`: the caller).
    pub(crate) fn write(&self, pid: idmap::Target) -> Result<()> {
        if self.uid.is_empty() && self.gid.is_empty() {
            // Both "none": someone else (the caller, in `before_start`)
            // writes them.
            return Ok(());
        }
        idmap::write_map(pid, IdKind::Uid, &self.uid)?;
        if self.deny_setgroups {
            idmap::setgroups(pid, false)?;
        }
        idmap::write_map(pid, IdKind::Gid, &self.gid)
    }
}

fn resolve_map(m: &IdMap, kind: IdKind) -> Vec<IdRange> {
    let own = match kind {
        IdKind::Uid => geteuid().as_raw(),
        IdKind::Gid => getegid().as_raw(),
    };
    match m {
        IdMap::Root => vec![IdRange {
            inside: 0,
            outside: own,
            count: 1,
        }],
        IdMap::Same => vec![IdRange {
            inside: own,
            outside: own,
            count: 1,
        }],
        IdMap::Ranges(r) => r.clone(),
    }
}

/// The gate FIFO, for reading without waiting for a writer.
fn open_gate(path: &std::ffi::OsStr) -> Result<OwnedFd> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let p = std::path::Path::new(path);
    let meta = std::fs::metadata(p).op(|| format!("gate {}", p.display()))?;
    if !meta.file_type().is_fifo() {
        return Err(Error::Invalid(format!(
            "gate {} is not a FIFO (make one with mkfifo)",
            p.display()
        )));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .op(|| format!("open gate {}", p.display()))?;
    Ok(OwnedFd::from(f))
}
