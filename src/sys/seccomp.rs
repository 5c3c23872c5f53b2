//! A seccomp filter for the sandboxed program, compiled with seccompiler
//! (pure Rust, no libseccomp) and installed last, right before exec.
//!
//! Each list becomes its own BPF program; the kernel runs all of them and
//! the most severe answer wins (kill > trap > errno > log > allow), which is
//! exactly "deny these, and of the rest allow only those".

use std::collections::BTreeMap;
use std::str::FromStr;

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use syscalls::Sysno;

use super::ops;
use crate::error::{suggest, Context, Error, Result};

/// What happens to a matching system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It runs.
    Allow,
    /// It fails with this errno.
    Errno(i32),
    /// The process dies of SIGSYS.
    Kill,
    /// It runs and the kernel logs it.
    Log,
}

impl Action {
    fn to_seccomp(self) -> SeccompAction {
        match self {
            Action::Allow => SeccompAction::Allow,
            Action::Errno(e) => SeccompAction::Errno(e as u32),
            Action::Kill => SeccompAction::KillProcess,
            Action::Log => SeccompAction::Log,
        }
    }
}

/// An errno by name (`"EPERM"`, `"eperm"`) or number.
pub fn parse_errno(name: &str) -> Result<i32> {
    if let Ok(n) = name.parse::<i32>() {
        if (1..4096).contains(&n) {
            return Ok(n);
        }
    }
    let mut up = name.to_ascii_uppercase();
    // Linux's aliases, which Errno's names leave out.
    for (alias, real) in [
        ("ENOTSUP", "EOPNOTSUPP"),
        ("EWOULDBLOCK", "EAGAIN"),
        ("EDEADLOCK", "EDEADLK"),
    ] {
        if up == alias {
            up = real.into();
        }
    }
    let known: Vec<(String, i32)> = (1..200)
        .map(Errno::from_raw)
        .filter(|e| *e != Errno::UnknownErrno)
        .map(|e| (format!("{e:?}"), e as i32))
        .collect();
    if let Some((_, n)) = known.iter().find(|(k, _)| *k == up) {
        return Ok(*n);
    }
    let hint = suggest(&up, known.iter().map(|(k, _)| k.as_str()))
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    Err(Error::Invalid(format!("unknown errno '{name}'{hint}")))
}

/// A system call number by name (of the architecture nsrun runs on).
pub fn syscall(name: &str) -> Result<i64> {
    match Sysno::from_str(name) {
        Ok(s) => Ok(s.id() as i64),
        Err(_) => {
            let hint = suggest(name, Sysno::iter().map(|s| s.name()))
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            Err(Error::Invalid(format!(
                "unknown system call '{name}'{hint}"
            )))
        }
    }
}

/// One matched call: a syscall, optionally only when its first argument
/// has all bits of a mask set (clone/unshare with CLONE_NEWUSER).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    name: String,
    nr: i64,
    arg0_mask: Option<u64>,
}

/// One BPF program: rules that get `on_match`, everything else `otherwise`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Program {
    rules: Vec<Rule>,
    on_match: Action,
    otherwise: Action,
}

/// A whole seccomp policy: one or more programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    programs: Vec<Program>,
}

/// The calls `seccomp = "default"` denies: the ones that escape or widen
/// a sandbox (mounts, ptrace, kernel keyrings, BPF, kexec, perf,
/// userfaultfd) and making or joining further user namespaces.
pub const DEFAULT_DENY: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "setns",
];

impl Policy {
    /// `default` for every call; refine with [`Policy::deny`] and
    /// [`Policy::allow`].
    pub fn new() -> Policy {
        Policy::default()
    }

    fn rules(names: &[String]) -> Result<Vec<Rule>> {
        names
            .iter()
            .map(|n| {
                Ok(Rule {
                    name: n.clone(),
                    nr: syscall(n)?,
                    arg0_mask: None,
                })
            })
            .collect()
    }

    /// `names` get `action`; the rest what other programs say (allow).
    pub fn deny(mut self, names: &[String], action: Action) -> Result<Policy> {
        if action == Action::Allow {
            return Err(Error::Invalid(
                "seccomp: a deny list needs an action other than allow".into(),
            ));
        }
        self.programs.push(Program {
            rules: Self::rules(names)?,
            on_match: action,
            otherwise: Action::Allow,
        });
        Ok(self)
    }

    /// Only `names` run; every other call gets `default`.
    pub fn allow(mut self, names: &[String], default: Action) -> Result<Policy> {
        if default == Action::Allow {
            return Ok(self);
        }
        self.programs.push(Program {
            rules: Self::rules(names)?,
            on_match: Action::Allow,
            otherwise: default,
        });
        Ok(self)
    }

    /// Everything gets `action` (a default with no allow list).
    pub fn all(mut self, action: Action) -> Policy {
        if action != Action::Allow {
            self.programs.push(Program {
                rules: Vec::new(),
                on_match: Action::Allow,
                otherwise: action,
            });
        }
        self
    }

    /// The predefined policy (`seccomp = "default"`): [`DEFAULT_DENY`] and
    /// new user namespaces (clone/unshare with CLONE_NEWUSER) fail with
    /// `errno`; clone3, whose flags live in memory a filter cannot read,
    /// fails with ENOSYS so that libc falls back to clone.
    pub fn preset_default(errno: i32) -> Policy {
        let mut rules: Vec<Rule> = DEFAULT_DENY
            .iter()
            .filter_map(|n| syscall(n).ok().map(|nr| (n, nr)))
            .map(|(n, nr)| Rule {
                name: n.to_string(),
                nr,
                arg0_mask: None,
            })
            .collect();
        for n in ["clone", "unshare"] {
            if let Ok(nr) = syscall(n) {
                rules.push(Rule {
                    name: n.into(),
                    nr,
                    arg0_mask: Some(libc::CLONE_NEWUSER as u64),
                });
            }
        }
        let mut programs = vec![Program {
            rules,
            on_match: Action::Errno(errno),
            otherwise: Action::Allow,
        }];
        if let Ok(nr) = syscall("clone3") {
            programs.push(Program {
                rules: vec![Rule {
                    name: "clone3".into(),
                    nr,
                    arg0_mask: None,
                }],
                on_match: Action::Errno(libc::ENOSYS),
                otherwise: Action::Allow,
            });
        }
        Policy { programs }
    }

    /// Add the programs of `other`.
    pub fn and(mut self, other: Policy) -> Policy {
        self.programs.extend(other.programs);
        self
    }

    /// Compile to BPF (in the parent, before the fork: the child then only
    /// installs).
    pub fn compile(&self) -> Result<Vec<BpfProgram>> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
            Error::Invalid(format!(
                "seccomp is not supported on this architecture: {e}"
            ))
        })?;
        let bad = |e: seccompiler::BackendError| Error::Invalid(format!("seccomp: {e}"));
        self.programs
            .iter()
            .map(|p| {
                let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
                for r in &p.rules {
                    let rules = map.entry(r.nr).or_default();
                    if let Some(mask) = r.arg0_mask {
                        let c = SeccompCondition::new(
                            0,
                            SeccompCmpArgLen::Qword,
                            SeccompCmpOp::MaskedEq(mask),
                            mask,
                        )
                        .map_err(bad)?;
                        rules.push(SeccompRule::new(vec![c]).map_err(bad)?);
                    }
                }
                // An unconditional rule (an empty list) wins over
                // conditional ones for the same call.
                for r in &p.rules {
                    if r.arg0_mask.is_none() {
                        map.insert(r.nr, Vec::new());
                    }
                }
                let f = SeccompFilter::new(
                    map,
                    p.otherwise.to_seccomp(),
                    p.on_match.to_seccomp(),
                    arch,
                )
                .map_err(bad)?;
                BpfProgram::try_from(f).map_err(bad)
            })
            .collect()
    }

    /// A one-line description of each program, for `--plan` and `--trace`.
    pub fn describe(&self) -> Vec<String> {
        self.programs
            .iter()
            .map(|p| {
                let names: Vec<String> = p
                    .rules
                    .iter()
                    .map(|r| match r.arg0_mask {
                        Some(m) => format!("{}(arg0&{m:#x})", r.name),
                        None => r.name.clone(),
                    })
                    .collect();
                format!(
                    "[{}] -> {:?}, else {:?}",
                    names.join(" "),
                    p.on_match,
                    p.otherwise
                )
            })
            .collect()
    }
}

/// PR_SET_NO_NEW_PRIVS: exec can no longer grant privileges (setuid bits,
/// file capabilities); needed to install a filter without CAP_SYS_ADMIN.
pub fn no_new_privs() -> Result<()> {
    ops::prctl(
        || "prctl(PR_SET_NO_NEW_PRIVS, 1)".into(),
        libc::PR_SET_NO_NEW_PRIVS,
        1,
        0,
    )
    .op(|| "prctl PR_SET_NO_NEW_PRIVS".into())
}

/// Install compiled programs on the calling thread; `what` describes each
/// ([`Policy::describe`]).
pub fn install(programs: &[BpfProgram], what: &[String]) -> Result<()> {
    for (i, p) in programs.iter().enumerate() {
        ops::act(
            || {
                let d = what.get(i).map(String::as_str).unwrap_or("?");
                format!("seccomp(SET_MODE_FILTER, {d})")
            },
            || {
                #[repr(C)]
                struct Fprog {
                    len: libc::c_ushort,
                    filter: *const seccompiler::sock_filter,
                }
                let prog = Fprog {
                    len: p.len() as libc::c_ushort,
                    filter: p.as_ptr(),
                };
                // SAFETY: a valid sock_fprog pointing at `p`, which outlives the call.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0u32,
                        &prog as *const Fprog,
                    )
                };
                Errno::result(rc).map(drop)
            },
        )
        .op(|| "seccomp install filter".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_errno("EPERM").unwrap(), libc::EPERM);
        assert_eq!(parse_errno("enosys").unwrap(), libc::ENOSYS);
        assert!(parse_errno("EPRM")
            .unwrap_err()
            .to_string()
            .contains("EPERM"));
        assert_eq!(syscall("mount").unwrap(), libc::SYS_mount);
        let e = syscall("mout").unwrap_err().to_string();
        assert!(e.contains("did you mean 'mount'"), "{e}");
    }

    #[test]
    fn compiles() {
        assert_eq!(
            Policy::preset_default(libc::EPERM).compile().unwrap().len(),
            2
        );
        let p = Policy::new()
            .deny(&["ptrace".into()], Action::Kill)
            .unwrap()
            .allow(&["read".into(), "write".into()], Action::Errno(libc::EPERM))
            .unwrap();
        assert_eq!(p.compile().unwrap().len(), 2);
        // A default with no list: one program with no rules.
        assert_eq!(Policy::new().all(Action::Kill).compile().unwrap().len(), 1);
        assert!(Policy::new()
            .all(Action::Allow)
            .compile()
            .unwrap()
            .is_empty());
    }
}
