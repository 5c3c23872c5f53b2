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

/// A policy as plain data, for the Supervisor.
pub(crate) mod wire;

/// The OCI runtime spec's profile, compiled.
pub mod oci;

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
    // Errno's names are its Debug form; compared without allocating, as
    // this runs on every start that uses the preset.
    struct Eq<'a>(&'a [u8], bool);
    impl std::fmt::Write for Eq<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match self.0.strip_prefix(s.as_bytes()) {
                Some(rest) => self.0 = rest,
                None => self.1 = false,
            }
            Ok(())
        }
    }
    let named = |e: Errno| {
        use std::fmt::Write;
        let mut w = Eq(up.as_bytes(), true);
        let _ = write!(w, "{e:?}");
        w.1 && w.0.is_empty()
    };
    let errnos = || {
        (1..200)
            .map(Errno::from_raw)
            .filter(|e| *e != Errno::UnknownErrno)
    };
    if let Some(e) = errnos().find(|e| named(*e)) {
        return Ok(e as i32);
    }
    let known: Vec<(String, i32)> = errnos().map(|e| (format!("{e:?}"), e as i32)).collect();
    let hint = suggest(&up, known.iter().map(|(k, _)| k.as_str()))
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    Err(Error::Invalid(format!("unknown errno '{name}'{hint}")))
}

/// Calls newer than the `syscalls` crate's table (it stops at 461,
/// lsm_list_modules). Since Linux 5.1 a new call gets the same number on
/// every architecture nsrun builds for, so one table serves them all.
const NEWER: &[(&str, i64)] = &[
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];

/// A system call number by name (of the architecture nsrun runs on).
pub fn syscall(name: &str) -> Result<i64> {
    if let Ok(s) = Sysno::from_str(name) {
        return Ok(s.id() as i64);
    }
    if let Some((_, nr)) = NEWER.iter().find(|(n, _)| *n == name) {
        return Ok(*nr);
    }
    let hint = suggest(
        name,
        Sysno::iter()
            .map(|s| s.name())
            .chain(NEWER.iter().map(|(n, _)| *n)),
    )
    .map(|s| format!(" (did you mean '{s}'?)"))
    .unwrap_or_default();
    Err(Error::Invalid(format!(
        "unknown system call '{name}'{hint}"
    )))
}

/// A condition on one argument (by index) of a matched call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    /// Every bit of the mask is set in the 64-bit argument.
    HasBits(u8, u64),
    /// The low 32 bits equal this. For an `int` argument the kernel
    /// ignores the high half, so comparing all 64 bits would let junk
    /// there slip past the rule.
    Is32(u8, u32),
    /// The low 32 bits are none of these (an `unsigned int` argument).
    NotIn32(u8, &'static [u32]),
}

/// One matched call, with or without a condition on an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    name: String,
    nr: i64,
    cond: Option<Cond>,
}

impl Rule {
    fn new(name: &str, cond: Option<Cond>) -> Result<Rule> {
        Ok(Rule {
            name: name.to_string(),
            nr: syscall(name)?,
            cond,
        })
    }

    /// Rules for the names this architecture has; the others are left out
    /// (a call that does not exist cannot be made).
    fn existing(names: &[&str], cond: Option<Cond>) -> Vec<Rule> {
        names
            .iter()
            .filter_map(|n| Rule::new(n, cond.clone()).ok())
            .collect()
    }

    fn describe(&self) -> String {
        match &self.cond {
            None => self.name.clone(),
            Some(Cond::HasBits(a, m)) => format!("{}(arg{a}&{m:#x})", self.name),
            Some(Cond::Is32(a, v)) => format!("{}(arg{a}={v:#x})", self.name),
            Some(Cond::NotIn32(a, vs)) => {
                let vs: Vec<String> = vs.iter().map(|v| format!("{v:#x}")).collect();
                format!("{}(arg{a} not {})", self.name, vs.join("|"))
            }
        }
    }

    fn to_seccomp(&self) -> std::result::Result<SeccompRule, seccompiler::BackendError> {
        use SeccompCmpArgLen::{Dword, Qword};
        let conds = match &self.cond {
            None => Vec::new(),
            Some(Cond::HasBits(a, m)) => {
                vec![SeccompCondition::new(
                    *a,
                    Qword,
                    SeccompCmpOp::MaskedEq(*m),
                    *m,
                )?]
            }
            Some(Cond::Is32(a, v)) => {
                vec![SeccompCondition::new(
                    *a,
                    Dword,
                    SeccompCmpOp::Eq,
                    u64::from(*v),
                )?]
            }
            Some(Cond::NotIn32(a, vs)) => vs
                .iter()
                .map(|v| SeccompCondition::new(*a, Dword, SeccompCmpOp::Ne, u64::from(*v)))
                .collect::<std::result::Result<_, _>>()?,
        };
        SeccompRule::new(conds)
    }
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
    /// Programs compiled elsewhere (bubblewrap's `--seccomp FD`), installed
    /// as they are after ours.
    raw: Vec<Vec<(u16, u8, u8, u32)>>,
    /// A program of it denies TIOCSTI and TIOCLINUX already.
    tty_guarded: bool,
}

/// The calls `seccomp = "default"` denies outright. Why each one is there
/// is written down in one place, the README's table "`seccomp =
/// "default"`: what it denies and why" (section "Hardening and limits");
/// change the two together. The preset also denies, by argument: clone
/// and unshare with CLONE_NEWUSER, personality with an unsafe persona,
/// ioctl with TIOCSTI or TIOCLINUX; and answers clone3 with ENOSYS (see
/// [`Policy::preset_default`]).
pub const DEFAULT_DENY: &[&str] = &[
    // Mounts, old and new API.
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "mount_setattr",
    // Other processes' memory and files.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    // Namespaces.
    "setns",
    // io_uring.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // Kernel code and attack surface.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    // Keyrings.
    "keyctl",
    "add_key",
    "request_key",
    // File handles.
    "open_by_handle_at",
    "name_to_handle_at",
    // The whole machine.
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "fanotify_init",
    // Clocks.
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    // Hardware.
    "iopl",
    "ioperm",
    // Obsolete, kept away from kernels that still have them.
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
];

/// Personas `personality` may set under the preset, as moby allows: Linux
/// (0), PER_LINUX32 (8), UNAME26 (0x20000), both, and the query
/// 0xffffffff. Every other flag weakens exploit mitigations
/// (ADDR_NO_RANDOMIZE turns ASLR off for what the program execs,
/// READ_IMPLIES_EXEC makes data executable, MMAP_PAGE_ZERO maps page 0).
pub const SAFE_PERSONAS: &[u32] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// What nsrun's own PID 1 in the sandbox may call ([`Policy::init`]): it
/// reaps (wait4, waitid), reads a signalfd, forwards signals (kill),
/// writes its status and perhaps an error, exits, and when it ends by a
/// signal re-raises it (rt_sigaction, rt_sigprocmask, getpid, kill); the
/// rest is what Rust's runtime and allocator need.
pub const INIT_ALLOW: &[&str] = &[
    "read",
    "write",
    "writev",
    "wait4",
    "waitid",
    "kill",
    "getpid",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    // A --trace line is written with SIGPIPE blocked, and one it raised
    // taken back (ops::write_unkillable).
    "rt_sigpending",
    "rt_sigtimedwait",
    "close",
    "exit",
    "exit_group",
    "restart_syscall",
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "madvise",
    "futex",
    "sigaltstack",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "sched_yield",
    "getrandom",
];

/// x32 system calls are x86_64's with this bit set in the number, and the
/// kernel reports them under the same AUDIT_ARCH_X86_64: a filter that
/// checks only x86_64 numbers lets `0x40000000 | nr` through.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes (linux/bpf_common.h): class | size/op | mode/source.
/// BPF_LD | BPF_W | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JEQ | BPF_K.
const BPF_JMP_JEQ_K: u16 = 0x15;
/// BPF_JMP | BPF_JGE | BPF_K.
const BPF_JMP_JGE_K: u16 = 0x35;
/// BPF_RET | BPF_K.
const BPF_RET_K: u16 = 0x06;
/// BPF_JMP | BPF_JA (its offset is the 32-bit k).
const BPF_JMP_JA: u16 = 0x05;
/// AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// offsetof(struct seccomp_data, arch) and nr.
const DATA_ARCH: u32 = 4;
const DATA_NR: u32 = 0;
/// BPF_MAXINSNS: the kernel refuses longer programs.
const BPF_MAXINSNS: usize = 4096;

fn ioctl_tty_rules() -> Vec<Rule> {
    // TIOCSTI pushes bytes into a terminal's input queue, TIOCLINUX
    // (TIOCL_PASTESEL) pastes the console selection into it: either way a
    // program that shares the caller's terminal types into the caller's
    // shell (bubblewrap CVE-2017-5226, snapd CVE-2023-1523).
    [libc::TIOCSTI, libc::TIOCLINUX]
        .iter()
        .flat_map(|cmd| Rule::existing(&["ioctl"], Some(Cond::Is32(1, *cmd as u32))))
        .collect()
}

impl Policy {
    /// `default` for every call; refine with [`Policy::deny`] and
    /// [`Policy::allow`].
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Whether every call not named is allowed (only deny lists): then a
    /// failed exec may still open files to say why it failed.
    pub fn allows_unnamed(&self) -> bool {
        self.programs.iter().all(|p| p.otherwise == Action::Allow)
    }

    /// Whether the policy has no program at all (installing it would do
    /// nothing).
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty() && self.raw.is_empty()
    }

    /// A classic BPF program compiled by someone else (libseccomp's
    /// `seccomp_export_bpf`, as bubblewrap's `--seccomp FD` takes it): the
    /// kernel's `struct sock_filter` array in native byte order. It is
    /// installed as it is: what it lets through is its author's business,
    /// but it runs beside nsrun's own programs, and the kernel obeys the
    /// strictest answer.
    pub fn raw(bytes: &[u8]) -> Result<Policy> {
        const INSN: usize = 8;
        if bytes.is_empty() || bytes.len() % INSN != 0 {
            return Err(Error::Invalid(format!(
                "a compiled seccomp program is a whole number of 8-byte instructions, got {} bytes",
                bytes.len()
            )));
        }
        let n = bytes.len() / INSN;
        if n > BPF_MAXINSNS {
            return Err(Error::Invalid(format!(
                "a compiled seccomp program has at most {BPF_MAXINSNS} instructions, got {n}"
            )));
        }
        let prog = bytes
            .chunks_exact(INSN)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        Ok(Policy {
            raw: vec![prog],
            ..Policy::default()
        })
    }

    fn rules(names: &[String]) -> Result<Vec<Rule>> {
        names.iter().map(|n| Rule::new(n, None)).collect()
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

    /// The predefined policy (`seccomp = "default"`): [`DEFAULT_DENY`],
    /// new user namespaces (clone/unshare with CLONE_NEWUSER),
    /// `personality` with a persona outside [`SAFE_PERSONAS`] and `ioctl`
    /// with TIOCSTI or TIOCLINUX fail with `errno`; clone3, whose flags
    /// live in memory a filter cannot read, fails with ENOSYS so that libc
    /// falls back to clone. The README's table says why each is there.
    pub fn preset_default(errno: i32) -> Policy {
        let mut rules = Rule::existing(DEFAULT_DENY, None);
        rules.extend(Rule::existing(
            &["clone", "unshare"],
            Some(Cond::HasBits(0, libc::CLONE_NEWUSER as u64)),
        ));
        rules.extend(Rule::existing(
            &["personality"],
            Some(Cond::NotIn32(0, SAFE_PERSONAS)),
        ));
        rules.extend(ioctl_tty_rules());
        let mut programs = vec![Program {
            rules,
            on_match: Action::Errno(errno),
            otherwise: Action::Allow,
        }];
        let clone3 = Rule::existing(&["clone3"], None);
        if !clone3.is_empty() {
            programs.push(Program {
                rules: clone3,
                on_match: Action::Errno(libc::ENOSYS),
                otherwise: Action::Allow,
            });
        }
        Policy {
            programs,
            raw: Vec::new(),
            tty_guarded: true,
        }
    }

    /// `ioctl` with TIOCSTI or TIOCLINUX fails with EPERM; everything else
    /// is allowed. Meant for every sandbox, with or without a `seccomp`
    /// option, so that no program can type into the terminal it shares
    /// with the caller (see [`Policy::with_tty_guard`]).
    pub fn tty_guard() -> Policy {
        Policy {
            programs: vec![Program {
                rules: ioctl_tty_rules(),
                on_match: Action::Errno(libc::EPERM),
                otherwise: Action::Allow,
            }],
            raw: Vec::new(),
            tty_guarded: true,
        }
    }

    /// This policy plus [`Policy::tty_guard`], unless it has that rule
    /// already (the preset does): one program less for every system call.
    pub fn with_tty_guard(self) -> Policy {
        if self.tty_guarded {
            self
        } else {
            self.and(Policy::tty_guard())
        }
    }

    /// The filter of nsrun's own PID 1 in the sandbox: [`INIT_ALLOW`] and
    /// `extra` run, any other call kills it (SIGSYS). The init is the
    /// program's first target (issue 13), so it gets only what it needs,
    /// and a kill rather than an errno: an init that makes a call it never
    /// makes has been taken over. `extra` is for calls a changed init
    /// needs; name each at the call site.
    pub fn init(extra: &[&str]) -> Result<Policy> {
        let mut rules = Rule::existing(INIT_ALLOW, None);
        for n in extra {
            rules.push(Rule::new(n, None)?);
        }
        Ok(Policy {
            programs: vec![Program {
                rules,
                on_match: Action::Allow,
                otherwise: Action::Kill,
            }],
            raw: Vec::new(),
            tty_guarded: true,
        })
    }

    /// Add the programs of `other`.
    pub fn and(mut self, other: Policy) -> Policy {
        self.programs.extend(other.programs);
        self.raw.extend(other.raw);
        self.tty_guarded |= other.tty_guarded;
        self
    }

    /// Compile to BPF (in the parent, before the fork: the child then only
    /// installs). On x86_64 every program also kills the process on any
    /// x32 system call ([`X32_SYSCALL_BIT`]).
    pub fn compile(&self) -> Result<Vec<BpfProgram>> {
        self.compile_with(true)
    }

    /// [`Policy::compile`], with or without the dispatch prefix
    /// ([`dispatch_prefix`]; the tests compare the two).
    fn compile_with(&self, dispatch: bool) -> Result<Vec<BpfProgram>> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
            Error::Invalid(format!(
                "seccomp is not supported on this architecture: {e}"
            ))
        })?;
        let bad = |e: seccompiler::BackendError| Error::Invalid(format!("seccomp: {e}"));
        let mut out: Vec<BpfProgram> = self
            .programs
            .iter()
            .map(|p| {
                let (on_match, otherwise) = (p.on_match.to_seccomp(), p.otherwise.to_seccomp());
                // With the search in front, the calls it decides by number
                // alone need no rule behind it.
                let prefix = match cfg!(target_arch = "x86_64") && dispatch {
                    true => dispatch_prefix(
                        &p.rules,
                        u32::from(on_match.clone()),
                        u32::from(otherwise.clone()),
                    ),
                    false => None,
                };
                let unconditional: std::collections::BTreeSet<i64> = p
                    .rules
                    .iter()
                    .filter(|r| r.cond.is_none())
                    .map(|r| r.nr)
                    .collect();
                let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
                for r in p.rules.iter().filter(|r| !unconditional.contains(&r.nr)) {
                    map.entry(r.nr)
                        .or_default()
                        .push(r.to_seccomp().map_err(bad)?);
                }
                if prefix.is_none() {
                    // An unconditional rule (an empty list) wins over
                    // conditional ones for the same call.
                    for nr in &unconditional {
                        map.insert(*nr, Vec::new());
                    }
                }
                let f = SeccompFilter::new(map, otherwise, on_match, arch).map_err(bad)?;
                let mut prog = BpfProgram::try_from(f).map_err(bad)?;
                if cfg!(target_arch = "x86_64") {
                    reject_x32(&mut prog)?;
                }
                Ok(match prefix {
                    Some(mut head) if head.len() + prog.len() <= BPF_MAXINSNS => {
                        head.extend(prog);
                        head
                    }
                    _ => prog,
                })
            })
            .collect::<Result<_>>()?;
        out.extend(self.raw.iter().map(|p| {
            p.iter()
                .map(|&(code, jt, jf, k)| seccompiler::sock_filter { code, jt, jf, k })
                .collect()
        }));
        Ok(out)
    }

    /// A one-line description of each program, for `--plan` and `--trace`.
    pub fn describe(&self) -> Vec<String> {
        let x32 = if cfg!(target_arch = "x86_64") {
            ", x32 calls Kill"
        } else {
            ""
        };
        let mut out: Vec<String> = self
            .programs
            .iter()
            .map(|p| {
                let names: Vec<String> = p.rules.iter().map(Rule::describe).collect();
                format!(
                    "[{}] -> {:?}, else {:?}{x32}",
                    names.join(" "),
                    p.on_match,
                    p.otherwise
                )
            })
            .collect();
        out.extend(
            self.raw
                .iter()
                .map(|p| format!("a compiled program of {} instructions", p.len())),
        );
        out
    }
}

/// Insert, right after seccompiler's architecture check, a test that kills
/// the process on any x32 call (seccompiler checks the architecture, which
/// x32 shares with x86_64, but not this bit).
///
/// KILL_PROCESS whatever the program's own actions: an errno would leave a
/// probing program free to go on, and no x32 program can run under a filter
/// written with x86_64 numbers anyway, so there is nothing to keep working.
/// The number -1 (0xffffffff) is let through to the program's own rules, as
/// libseccomp does: it is no x32 call but what a tracer writes to skip one,
/// and the kernel answers it with ENOSYS.
fn reject_x32(p: &mut BpfProgram) -> Result<()> {
    let insn = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    let arch_check = p.len() >= 3
        && p[0].code == BPF_LD_W_ABS
        && p[0].k == DATA_ARCH
        && p[1].code == BPF_JMP_JEQ_K
        && (p[1].jt, p[1].jf) == (1, 0)
        && p[2].code == BPF_RET_K;
    if !arch_check {
        // Inserting elsewhere could break the program's jumps.
        return Err(Error::Invalid(
            "seccomp: the compiled filter does not start with the architecture check \
             nsrun expects (a new seccompiler?); refusing to install it without the x32 rule"
                .into(),
        ));
    }
    // The arch check's jump lands on index 3 (jt = 1), where this goes:
    // no jump crosses the insertion, so none needs fixing.
    let x32 = [
        insn(BPF_LD_W_ABS, 0, 0, DATA_NR),
        // Below the bit: on to the program's own rules.
        insn(BPF_JMP_JGE_K, 0, 2, X32_SYSCALL_BIT),
        insn(BPF_JMP_JEQ_K, 1, 0, u32::MAX),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    p.splice(3..3, x32);
    if p.len() > BPF_MAXINSNS {
        return Err(Error::Invalid(format!(
            "seccomp: the filter has {} instructions, more than the kernel's {BPF_MAXINSNS}",
            p.len()
        )));
    }
    Ok(())
}

/// Put a binary search over the program's system call numbers in front of
/// it: after some 8 comparisons a number no rule names gets `otherwise`, a
/// number named without a condition `on_match`, and only those with
/// conditions on their arguments go on into seccompiler's program,
/// unchanged, which tests them one after the other.
///
/// Why: when a filter is attached, the kernel runs it for every system
/// call number of the architecture to find those it always allows (its
/// action cache). Through seccompiler's linear chain that is each of ~450
/// numbers past every rule: 154 µs to attach the default preset (303
/// instructions) on the machine the benchmarks ran on, against 15 µs for
/// a one-rule filter, all on the path of every sandbox's start. libseccomp
/// emits such a tree for the same reason; seccompiler does not.
///
/// The prefix repeats the architecture and x32 checks, as it looks at the
/// number first. If its jumps would not fit the 8-bit offsets of classic
/// BPF (a list of well over a hundred calls), the program is left as it is.
fn dispatch_prefix(rules: &[Rule], on_match: u32, otherwise: u32) -> Option<BpfProgram> {
    #[derive(Clone, Copy)]
    enum To {
        Next,
        Skip(usize),
        /// Into seccompiler's program (just past the prefix).
        Rules,
        /// The `ret otherwise` that ends the prefix.
        Otherwise,
        /// The `ret on_match` after it.
        Match,
    }
    // (number, whether only its arguments decide)
    fn tree(nrs: &[(u32, bool)], out: &mut Vec<(u16, To, To, u32)>) {
        let hit = |conditional: bool| if conditional { To::Rules } else { To::Match };
        match nrs {
            [] => out.push((BPF_JMP_JA, To::Otherwise, To::Otherwise, 0)),
            [..] if nrs.len() <= 3 => {
                for (i, (n, c)) in nrs.iter().enumerate() {
                    let miss = if i + 1 == nrs.len() {
                        To::Otherwise
                    } else {
                        To::Next
                    };
                    out.push((BPF_JMP_JEQ_K, hit(*c), miss, *n));
                }
            }
            _ => {
                let mid = nrs.len() / 2;
                let mut left = Vec::new();
                tree(&nrs[..mid], &mut left);
                out.push((BPF_JMP_JGE_K, To::Skip(left.len()), To::Next, nrs[mid].0));
                out.extend(left);
                tree(&nrs[mid..], out);
            }
        }
    }
    // An unconditional rule wins over conditional ones for the same call
    // (as in compile).
    let mut named: BTreeMap<u32, bool> = BTreeMap::new();
    for r in rules {
        // A number that is no u32: nothing to search.
        let n = u32::try_from(r.nr).ok()?;
        let c = named.entry(n).or_insert(true);
        *c &= r.cond.is_some();
    }
    let sorted: Vec<(u32, bool)> = named.into_iter().collect();
    let mut body = Vec::new();
    tree(&sorted, &mut body);
    let insn = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    // The checks seccompiler and reject_x32 make, before the number is used.
    let mut head = vec![
        insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
        insn(BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        insn(BPF_LD_W_ABS, 0, 0, DATA_NR),
        insn(BPF_JMP_JGE_K, 0, 2, X32_SYSCALL_BIT),
        insn(BPF_JMP_JEQ_K, 1, 0, u32::MAX),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    let start = head.len();
    let ret_otherwise = start + body.len();
    let ret_match = ret_otherwise + 1;
    let rules = ret_match + 1;
    let off = |at: usize, to: To| -> usize {
        let target = match to {
            To::Next => at + 1,
            To::Skip(n) => at + 1 + n,
            To::Rules => rules,
            To::Otherwise => ret_otherwise,
            To::Match => ret_match,
        };
        target - at - 1
    };
    for (i, (code, jt, jf, k)) in body.into_iter().enumerate() {
        let at = start + i;
        if code == BPF_JMP_JA {
            head.push(insn(code, 0, 0, off(at, jt) as u32));
            continue;
        }
        // Beyond a conditional jump's reach: no prefix.
        let (t, f) = (
            u8::try_from(off(at, jt)).ok()?,
            u8::try_from(off(at, jf)).ok()?,
        );
        head.push(insn(code, t, f, k));
    }
    head.push(insn(BPF_RET_K, 0, 0, otherwise));
    head.push(insn(BPF_RET_K, 0, 0, on_match));
    Some(head)
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
#[path = "../../tests/bpf/mod.rs"]
mod bpf;

#[cfg(test)]
mod tests {
    use super::bpf::{self, Data, Verdict};
    use super::*;

    fn nr(name: &str) -> i64 {
        syscall(name).unwrap()
    }

    /// What the compiled `p` answers for `name(args...)`.
    fn answer(p: &Policy, name: &str, args: &[u64]) -> Verdict {
        bpf::verdict(&p.compile().unwrap(), &Data::call(nr(name), args))
    }

    /// The binary search in front changes no answer: every policy kind,
    /// every number up to past the last call, x32 and -1, with arguments
    /// that the conditional rules look at.
    #[test]
    fn dispatch_changes_no_answer() {
        let policies = [
            Policy::preset_default(libc::EPERM),
            Policy::init(&[]).unwrap(),
            Policy::tty_guard(),
            Policy::new()
                .deny(&["ptrace".into(), "mount".into()], Action::Kill)
                .unwrap(),
            Policy::new()
                .allow(
                    &["read".into(), "write".into(), "execve".into()],
                    Action::Errno(1),
                )
                .unwrap(),
            Policy::new().all(Action::Kill),
        ];
        let args: [&[u64]; 5] = [
            &[],
            &[libc::CLONE_NEWUSER as u64],
            &[0, libc::TIOCSTI],
            &[0x0040_0000],
            &[0xffff_ffff],
        ];
        for p in &policies {
            let (fast, slow) = (
                p.compile_with(true).unwrap(),
                p.compile_with(false).unwrap(),
            );
            let code = |ps: &[BpfProgram]| -> Vec<(u16, u8, u8, u32)> {
                ps.iter()
                    .flatten()
                    .map(|i| (i.code, i.jt, i.jf, i.k))
                    .collect()
            };
            assert_ne!(code(&fast), code(&slow), "no prefix");
            fast.iter().for_each(|f| bpf::check(f));
            let nrs = (-1..520).chain((0..520).map(|n| n | i64::from(X32_SYSCALL_BIT)));
            for n in nrs {
                for a in args {
                    let d = Data::call(n, a);
                    assert_eq!(
                        bpf::verdict(&fast, &d),
                        bpf::verdict(&slow, &d),
                        "{:?}: nr {n:#x} args {a:?}",
                        p.describe()
                    );
                }
            }
        }
    }

    /// The same for a raw number (x32 calls, -1).
    fn answer_nr(p: &Policy, n: i64) -> Verdict {
        bpf::verdict(&p.compile().unwrap(), &Data::call(n, &[]))
    }

    const EPERM: Verdict = Verdict::Errno(libc::EPERM as u16);
    // The ioctl numbers of x86_64 and the generic table (libc's type for
    // them differs between glibc and musl).
    const TIOCSTI: u64 = 0x5412;
    const TIOCLINUX: u64 = 0x541c;
    const TCGETS: u64 = 0x5401;

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
        // Newer than the syscalls crate: from nsrun's own table.
        assert_eq!(syscall("open_tree_attr").unwrap(), 467);
        let e = syscall("open_tree_atr").unwrap_err().to_string();
        assert!(e.contains("did you mean 'open_tree_attr'"), "{e}");
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
        assert!(Policy::new().is_empty());
        assert!(!Policy::tty_guard().is_empty());
    }

    /// On x86_64 every name of the preset is a real call: none is left out
    /// because a table lacks it.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn preset_names_all_known() {
        for n in DEFAULT_DENY.iter().chain(INIT_ALLOW) {
            assert!(syscall(n).is_ok(), "{n} unknown");
        }
    }

    #[test]
    fn preset_answers() {
        let p = Policy::preset_default(libc::EPERM);
        for n in DEFAULT_DENY {
            if syscall(n).is_ok() {
                assert_eq!(answer(&p, n, &[]), EPERM, "{n}");
            }
        }
        for n in [
            "read", "openat", "execve", "wait4", "kill", "ioctl", "chroot",
        ] {
            assert_eq!(answer(&p, n, &[]), Verdict::Allow, "{n}");
        }
        let newuser = libc::CLONE_NEWUSER as u64;
        let newns = libc::CLONE_NEWNS as u64;
        assert_eq!(answer(&p, "unshare", &[newuser]), EPERM);
        assert_eq!(answer(&p, "unshare", &[newuser | newns]), EPERM);
        assert_eq!(answer(&p, "unshare", &[newns]), Verdict::Allow);
        assert_eq!(answer(&p, "clone", &[newuser | 17]), EPERM);
        assert_eq!(answer(&p, "clone", &[17]), Verdict::Allow);
        assert_eq!(
            answer(&p, "clone3", &[]),
            Verdict::Errno(libc::ENOSYS as u16)
        );
        for persona in SAFE_PERSONAS {
            let got = answer(&p, "personality", &[u64::from(*persona)]);
            assert_eq!(got, Verdict::Allow, "personality({persona:#x})");
        }
        // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, with and
        // without a safe persona under them.
        for bad in [0x004_0000u64, 0x040_0000, 0x010_0000, 0x004_0008] {
            assert_eq!(answer(&p, "personality", &[bad]), EPERM, "{bad:#x}");
        }
        // The kernel reads an unsigned int: junk in the high half neither
        // helps nor hurts.
        assert_eq!(answer(&p, "personality", &[0x1_0000_0000]), Verdict::Allow);
        assert_eq!(answer(&p, "personality", &[0x1_0004_0000]), EPERM);
        assert_eq!(answer(&p, "ioctl", &[0, TIOCSTI]), EPERM);
        assert_eq!(answer(&p, "ioctl", &[0, TIOCSTI | 1 << 32]), EPERM);
        assert_eq!(answer(&p, "ioctl", &[0, TIOCLINUX]), EPERM);
        assert_eq!(answer(&p, "ioctl", &[0, TCGETS]), Verdict::Allow);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x32_rejected_everywhere() {
        let x32 = |name: &str| i64::from(X32_SYSCALL_BIT) | nr(name);
        let policies = [
            Policy::preset_default(libc::EPERM),
            Policy::new()
                .deny(&["mount".into()], Action::Errno(libc::EACCES))
                .unwrap(),
            Policy::new()
                .allow(&["read".into(), "mount".into()], Action::Errno(1))
                .unwrap(),
            Policy::new().all(Action::Log),
            Policy::tty_guard(),
            Policy::init(&[]).unwrap(),
        ];
        for p in &policies {
            for prog in p.compile().unwrap() {
                let one = [prog];
                let v = bpf::verdict(&one, &Data::call(x32("mount"), &[]));
                assert_eq!(v, Verdict::KillProcess, "{:?}", p.describe());
                let v = bpf::verdict(&one, &Data::call(x32("read"), &[]));
                assert_eq!(v, Verdict::KillProcess, "{:?}", p.describe());
            }
            // -1 is no x32 call: the program's own rules answer it, as
            // they answer a call none of them names.
            assert_eq!(
                answer_nr(p, -1),
                answer(p, "uname", &[]),
                "{:?}",
                p.describe()
            );
        }
    }

    #[test]
    fn tty_guard() {
        let p = Policy::tty_guard();
        assert_eq!(answer(&p, "ioctl", &[0, TIOCSTI]), EPERM);
        assert_eq!(answer(&p, "ioctl", &[7, TIOCLINUX]), EPERM);
        // The kernel compares the command as 32 bits; so does the rule.
        assert_eq!(answer(&p, "ioctl", &[0, TIOCSTI | 0xdead << 32]), EPERM);
        assert_eq!(answer(&p, "ioctl", &[0, TCGETS]), Verdict::Allow);
        assert_eq!(answer(&p, "mount", &[]), Verdict::Allow);
        // Added once: the preset has the rule already.
        let preset = Policy::preset_default(libc::EPERM);
        assert_eq!(preset.clone().with_tty_guard(), preset);
        let deny = Policy::new().deny(&["mount".into()], Action::Kill).unwrap();
        let guarded = deny.clone().with_tty_guard();
        assert_eq!(guarded.programs.len(), 2);
        assert_eq!(guarded.clone().with_tty_guard(), guarded);
        assert_eq!(answer(&guarded, "ioctl", &[0, TIOCSTI]), EPERM);
        assert_eq!(answer(&guarded, "mount", &[]), Verdict::KillProcess);
        assert_eq!(
            answer(&Policy::new().with_tty_guard(), "ioctl", &[0, TIOCSTI]),
            EPERM
        );
    }

    #[test]
    fn init_policy() {
        let p = Policy::init(&[]).unwrap();
        for n in [
            "ptrace", "open", "openat", "mount", "execve", "fork", "setns",
        ] {
            if syscall(n).is_ok() {
                assert_eq!(answer(&p, n, &[]), Verdict::KillProcess, "{n}");
            }
        }
        for n in INIT_ALLOW {
            assert_eq!(answer(&p, n, &[]), Verdict::Allow, "{n}");
        }
        let e = Policy::init(&["wiat4"]).unwrap_err().to_string();
        assert!(e.contains("did you mean 'wait4'"), "{e}");
        let more = Policy::init(&["signalfd4"]).unwrap();
        assert_eq!(answer(&more, "signalfd4", &[]), Verdict::Allow);
        assert_eq!(answer(&more, "openat", &[]), Verdict::KillProcess);
    }

    #[test]
    fn wrong_arch_killed() {
        let wrong = if cfg!(target_arch = "x86_64") {
            bpf::AUDIT_ARCH_I386
        } else {
            bpf::AUDIT_ARCH_X86_64
        };
        for p in [Policy::preset_default(libc::EPERM), Policy::tty_guard()] {
            let mut d = Data::call(nr("read"), &[]);
            d.arch = wrong;
            assert_eq!(
                bpf::verdict(&p.compile().unwrap(), &d),
                Verdict::KillProcess
            );
        }
    }

    #[test]
    fn described() {
        let d = Policy::preset_default(libc::EPERM).describe().join("\n");
        for part in [
            "mount_setattr",
            "clone(arg0&0x10000000)",
            "personality(arg0 not 0x0|0x8|0x20000|0x20008|0xffffffff)",
            "ioctl(arg1=0x5412)",
            "ioctl(arg1=0x541c)",
        ] {
            assert!(d.contains(part), "{part} missing from {d}");
        }
    }
}
