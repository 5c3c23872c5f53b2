//! The main process's last steps: its lock-down, in the order the kernel's
//! rules force, and the exec (or the recipe's `fn`).

use std::ffi::OsString;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{getegid, geteuid};

use super::child::{close_fds, proc_write, set_pdeathsig, ChildCtx};
use super::{IdMap, Spawn};
use crate::error::{Context, Error, Result};
use crate::sys::caps as syscaps;
use crate::sys::idmap::IdKind;
use crate::sys::namespace::Namespace;
use crate::sys::ops;
use crate::sys::process::{self, exit_child, ExecOpts};
use crate::sys::seccomp;

impl Spawn<'_> {
    /// The main process's last steps before exec, in the order the kernel
    /// rules force: resource limits while still privileged; the
    /// user-namespace sysctl while root of the sandbox's user namespace;
    /// the identity switch (keeping capabilities across it when some are
    /// to stay); the nested user namespace of disable_userns; dropping
    /// capabilities; `before_filters` (closing fds, the working directory,
    /// signal dispositions); no_new_privs; Landlock (its paths opened as
    /// the sandbox sees them); and the seccomp filter last, so that
    /// nothing nsrun still does is filtered: after it comes only execve.
    pub(super) fn lock_down(
        &self,
        proc_fd: Option<&OwnedFd>,
        filters: &[seccompiler::BpfProgram],
        parent: libc::pid_t,
        before_filters: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        for r in &self.rlimits {
            r.apply()?;
        }
        if self.disable_userns {
            // As bubblewrap does: allow one user namespace below the
            // sandbox's and make it right away; the program runs in that
            // one, whose root cannot raise the limit set outside it.
            proc_write(proc_fd, "sys/user/max_user_namespaces", "1")?;
        }
        let target = syscaps::target(self.caps, self.uid);
        if target.is_some() && self.uid.is_some_and(|u| u != 0) {
            syscaps::keep_across_setuid()?;
        }
        if let Some(g) = &self.groups {
            crate::sys::cred::setgroups(g)?;
        }
        if let Some(g) = self.gid {
            crate::sys::cred::setgid(g)?;
        }
        if let Some(u) = self.uid {
            crate::sys::cred::setuid(u)?;
        }
        if self.disable_userns || self.nested_user.is_some() {
            // The ids just switched to; under --plan nothing switched, so
            // the ids we would have in the new user namespace.
            let uid = self.uid.unwrap_or_else(|| self.id_now(IdKind::Uid));
            let gid = self.gid.unwrap_or_else(|| self.id_now(IdKind::Gid));
            // Inside the nested namespace: the ids asked for, or the same.
            let (in_uid, in_gid) = self.nested_user.unwrap_or((uid, gid));
            ops::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .op(|| "unshare user (nested user namespace)".into())?;
            // A uid switch made us non-dumpable, which makes /proc/self
            // belong to root, who is not mapped in the new namespace yet:
            // become dumpable again to write our own maps (exec sets it anew).
            ops::prctl(
                || "prctl(PR_SET_DUMPABLE, 1)".into(),
                libc::PR_SET_DUMPABLE,
                1,
                0,
            )
            .op(|| "prctl PR_SET_DUMPABLE".into())?;
            proc_write(proc_fd, "self/uid_map", &format!("{in_uid} {uid} 1\n"))?;
            proc_write(proc_fd, "self/setgroups", "deny")?;
            proc_write(proc_fd, "self/gid_map", &format!("{in_gid} {gid} 1\n"))?;
        }
        if self.die_with_parent && (self.uid.is_some() || self.gid.is_some()) {
            // A credential change clears the parent-death signal.
            set_pdeathsig(parent)?;
        }
        if self.new_session {
            ops::act(|| "setsid()".into(), || nix::unistd::setsid().map(drop))
                .op(|| "setsid".into())?;
        }
        self.enter_tty()?;
        if self.new_keyring {
            // Before the capabilities go: nothing needs them, but the
            // filter about to come may refuse keyctl.
            ops::act(
                || "keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)".into(),
                || {
                    // SAFETY: keyctl with a null name makes an anonymous keyring.
                    let rc = unsafe {
                        libc::syscall(
                            libc::SYS_keyctl,
                            1, /* KEYCTL_JOIN_SESSION_KEYRING */
                            std::ptr::null::<libc::c_char>(),
                        )
                    };
                    Errno::result(rc).map(drop)
                },
            )
            .op(|| "keyctl join a new session keyring".into())?;
        }
        if let Some(want) = target {
            let bounding = !matches!(self.caps, Some(syscaps::Caps::Sets(_)));
            syscaps::apply_with(want, bounding)?;
        }
        if let Some(syscaps::Caps::Bound(m)) = self.caps {
            syscaps::drop_bounding(m)?;
        }
        before_filters()?;
        if self
            .no_new_privs
            .unwrap_or(self.seccomp.is_some() || self.landlock.is_some())
        {
            seccomp::no_new_privs()?;
        }
        if let Some(l) = &self.landlock {
            l.apply()?;
        }
        if let Some(p) = &self.seccomp {
            seccomp::install(filters, &p.describe())?;
        }
        Ok(())
    }

    /// Our uid or gid here: in a real start, as the kernel says; under
    /// `--plan`, the one the new user namespace's map would give us.
    fn id_now(&self, kind: IdKind) -> u32 {
        let own = match kind {
            IdKind::Uid => geteuid().as_raw(),
            IdKind::Gid => getegid().as_raw(),
        };
        if !ops::planning() || !self.namespaces.contains(Namespace::User) {
            return own;
        }
        let map = match kind {
            IdKind::Uid => self.uid_map.as_ref(),
            IdKind::Gid => self.gid_map.as_ref(),
        };
        match map.unwrap_or(&IdMap::Root) {
            IdMap::Root => 0,
            IdMap::Same => own,
            IdMap::Ranges(r) => r
                .iter()
                .find(|x| own >= x.outside && own - x.outside < x.count)
                .map_or(own, |x| x.inside + (own - x.outside)),
        }
    }

    /// Lock down and exec (or run `fn`). Returns only with the error that
    /// stopped it, or under `--plan` with the planned exit code.
    pub(super) fn become_main(&mut self, cx: &ChildCtx) -> Result<i32> {
        // Locks still held here (no init) are the program's to keep.
        self.keep_fds.extend(std::mem::take(&mut self.locks_held));
        let keep = &self.keep_fds;
        let (err_fd, prepared) = (cx.err_fd, cx.prepared);
        let running_lua = self.func.is_some();
        self.lock_down(cx.proc_fd.as_ref(), cx.filters, cx.parent, || {
            // Nothing but 0-2 and keep_fds may reach the program: closed
            // now, not at exec, so that no fd of ours can be the way out
            // while we still resolve the working directory
            // (`cwd = "/proc/self/fd/N"`, runc's CVE-2024-21626). The
            // error pipe stays (close-on-exec) to report failures. A
            // function's Lua values own some fds: there they are only
            // marked close-on-exec.
            let gate = self.gate_fd;
            let proc_raw = cx
                .proc_fd
                .as_ref()
                .map_or(err_fd, std::os::fd::AsRawFd::as_raw_fd);
            let also: &[RawFd] = match gate {
                Some(ref g) => std::slice::from_ref(g),
                None => &[],
            };
            match running_lua {
                true => close_fds("main", keep, also, true)?,
                // (Our /proc fd stays too, close-on-exec: it is owned, and
                // closed with it should the exec fail.)
                false => close_fds(
                    "main",
                    keep,
                    &[err_fd, gate.unwrap_or(err_fd), proc_raw],
                    false,
                )?,
            }
            for &fd in keep {
                ops::act(
                    || format!("fcntl({fd}, F_SETFD, 0)"),
                    || {
                        // SAFETY: clearing FD_CLOEXEC on an fd the caller asked to keep.
                        Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
                    },
                )
                .op(|| format!("keep_fds: fd {fd}"))?;
            }
            if let Some(p) = prepared {
                p.enter_cwd()?;
            }
            // Rust's runtime ignores SIGPIPE, and an ignored signal stays
            // ignored across exec: give the program the default.
            ops::act(
                || "signal(SIGPIPE, SIG_DFL)".into(),
                || {
                    process::default_sigpipe();
                    Ok(())
                },
            )
            .op(|| "signal SIGPIPE".into())?;
            if let Some(g) = gate {
                if let Some(p) = prepared {
                    // Said now: after the gate nobody hears it.
                    p.check_found()?;
                }
                wait_at_gate(err_fd, g)?;
            }
            Ok(())
        })?;
        if let Some(f) = self.func.as_mut() {
            if ops::planning() {
                return Ok(f());
            }
            // No exec will close the pipes: close them, so the parent's
            // spawn returns now rather than when the function ends.
            let _ = nix::unistd::close(cx.err_fd);
            let _ = nix::unistd::close(cx.status_fd);
            exit_child(f());
        }
        match cx.prepared {
            // The filter is on: nothing but the exec itself from here.
            // Only where the filter lets it may a failed exec look into
            // the file to say why (a missing interpreter).
            Some(p) => match p
                .exec_ready_diagnosing(self.seccomp.as_ref().map_or(true, |s| s.allows_unnamed()))
            {
                Error::Planned => Ok(0),
                e => Err(e),
            },
            None => Err(Error::Invalid("nothing to run".into())),
        }
    }

    /// The exec of `argv`, its strings converted ahead.
    pub(super) fn prepared(&self) -> Result<process::Prepared> {
        process::Prepared::new(
            &self.argv,
            &ExecOpts {
                env: Some(self.environment()),
                cwd: self.cwd.clone(),
                argv0: self.argv0.clone(),
                pwd: self.set_pwd,
            },
        )
    }

    /// Ours, or none with `clear_env`, changed by `env`: bytes as they are.
    fn environment(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = match self.clear_env {
            true => Vec::new(),
            false => std::env::vars_os().collect(),
        };
        for (k, v) in &self.env {
            env.retain(|(ek, _)| ek != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        env
    }
}

/// Tell the parent we are set up (it returns from `spawn`), then wait
/// until a byte comes through the gate FIFO (`start`). A FIFO that never
/// had a writer polls as empty, not as hung up, so this waits for the
/// first writer.
fn wait_at_gate(err_fd: RawFd, gate: RawFd) -> Result<()> {
    ops::act(
        || "write(error pipe, ready)".into(),
        || {
            // SAFETY: the error pipe is open until our exec.
            let fd = unsafe { BorrowedFd::borrow_raw(err_fd) };
            nix::unistd::write(fd, super::message::READY).map(drop)
        },
    )
    .op(|| "report ready".into())?;
    ops::act(
        || format!("poll({gate}, POLLIN) and read 1 byte (the gate)"),
        || loop {
            let mut p = libc::pollfd {
                fd: gate,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, -1) };
            if n < 0 {
                match Errno::last() {
                    Errno::EINTR => continue,
                    e => return Err(e),
                }
            }
            let mut b = [0u8; 1];
            // SAFETY: reading into our buffer from the gate fd.
            match unsafe { libc::read(gate, b.as_mut_ptr().cast(), 1) } {
                1 => {
                    // SAFETY: ours, not needed after this.
                    unsafe { libc::close(gate) };
                    return Ok(());
                }
                // A writer came and went without a byte: the FIFO polls
                // as hung up until the next one, so do not spin.
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        },
    )
    .op(|| "wait at the gate".into())
}
