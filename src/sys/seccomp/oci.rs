//! The OCI runtime spec's seccomp profile (`linux.seccomp` of a bundle's
//! config.json) compiled into one classic BPF program, with the meaning
//! runc gives it through libseccomp.
//!
//! One program written here rather than seccompiler's: seccompiler's
//! filter has one action for a match and one for the rest, while a profile
//! gives every rule its own action (and errno). Filters stacked per action
//! would answer two ERRNO rules by install order, not by the profile; a
//! single program says exactly what it means.
//!
//! What a call gets, for each system call number (runc's rules, then
//! libseccomp's):
//! - rules whose action equals the default action (errno included) are
//!   dropped, as runc drops them;
//! - names this architecture does not have are skipped (runc logs and goes
//!   on: podman's profile lists `_llseek`, an i386 call);
//! - a rule's conditions are ANDed; if two of them test the same argument,
//!   runc adds each condition of that rule as a rule of its own (ORed), and
//!   so does this;
//! - an unconditional rule decides the call alone; if there are several,
//!   the first one (libseccomp keeps the first and drops later ones, and
//!   drops the conditional rules of the same call);
//! - otherwise the matching conditional rules decide; if several match
//!   with different actions, the most severe wins (kill process > kill
//!   thread > trap > errno > trace > log > allow) and, between two errno
//!   values, the earlier rule. (libseccomp answers overlapping conditional
//!   rules by the order of its decision tree, which it does not document;
//!   no profile of docker, podman or containerd has such overlaps.)
//! - no rule matches: the default action.
//!
//! Comparisons are of all 64 bits; SCMP_CMP_MASKED_EQ is `arg & value ==
//! valueTwo & value` (libseccomp masks both sides). tests/oci_seccomp.rs
//! compares the answers with libseccomp's own program, call by call; they
//! differ only where libseccomp 2.5.4 merges the rules of a split wrongly
//! (`arg0 <= 16` or `arg0 < 2^64-1` misses 0xffffffff there).
//!
//! Calls of another architecture (i386's `int 0x80`, x32's numbers) kill
//! the process, whatever `architectures` lists: the numbers here are the
//! native table's, so letting such calls through or answering them with the
//! default action could allow what the profile denies.

use seccompiler::sock_filter;

use super::{BPF_JMP_JA, BPF_JMP_JEQ_K, BPF_JMP_JGE_K, BPF_LD_W_ABS, BPF_MAXINSNS};
use super::{BPF_RET_K, DATA_ARCH, DATA_NR, X32_SYSCALL_BIT};
use crate::error::{Error, Result};

/// BPF_JMP | BPF_JGT | BPF_K.
const BPF_JMP_JGT_K: u16 = 0x25;
/// BPF_ALU | BPF_AND | BPF_K.
const BPF_ALU_AND_K: u16 = 0x54;
/// offsetof(struct seccomp_data, args).
const DATA_ARGS: u32 = 16;

/// `linux.seccomp`, as config.json says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// `defaultAction` (`SCMP_ACT_…`).
    pub default_action: String,
    /// `defaultErrnoRet`.
    pub default_errno: Option<u64>,
    /// `architectures` (`SCMP_ARCH_…`).
    pub architectures: Vec<String>,
    /// `flags` (`SECCOMP_FILTER_FLAG_…`).
    pub flags: Vec<String>,
    /// `listenerPath`: a seccomp agent's socket.
    pub listener_path: Option<String>,
    /// `syscalls`.
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of `syscalls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallRule {
    /// `names`.
    pub names: Vec<String>,
    /// `action`.
    pub action: String,
    /// `errnoRet`.
    pub errno_ret: Option<u64>,
    /// `args`.
    pub args: Vec<Arg>,
}

/// One entry of a rule's `args`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arg {
    /// `index`: which argument, 0 to 5.
    pub index: u64,
    /// `value`.
    pub value: u64,
    /// `valueTwo` (SCMP_CMP_MASKED_EQ: `arg & value == valueTwo & value`, as libseccomp).
    pub value_two: u64,
    /// `op` (`SCMP_CMP_…`).
    pub op: String,
}

/// The program, with what was left out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The kernel's `struct sock_filter` array.
    pub program: Vec<sock_filter>,
    /// Names this architecture has no call for (skipped, as runc does).
    pub skipped: Vec<String>,
    /// Flags accepted but not applied: nsrun installs its filters without
    /// flags (TSYNC has nothing to do in a single-threaded child; LOG and
    /// SPEC_ALLOW change logging and a mitigation, not what is allowed).
    pub ignored_flags: Vec<String>,
}

impl Compiled {
    /// The program as bytes, for `seccomp = {bpf = …}` ([`super::Policy::raw`]).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.program.len() * 8);
        for i in &self.program {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }
}

/// A seccomp return action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Trace(u16),
    Log,
    Allow,
}

impl Act {
    fn ret(self) -> u32 {
        match self {
            Act::KillProcess => 0x8000_0000,
            Act::KillThread => 0,
            Act::Trap => 0x0003_0000,
            Act::Errno(e) => 0x0005_0000 | u32::from(e),
            Act::Trace(e) => 0x7ff0_0000 | u32::from(e),
            Act::Log => 0x7ffc_0000,
            Act::Allow => 0x7fff_0000,
        }
    }

    /// The kernel's precedence between filters (`seccomp_run_filters`),
    /// used here between overlapping rules.
    fn severity(self) -> u8 {
        match self {
            Act::KillProcess => 6,
            Act::KillThread => 5,
            Act::Trap => 4,
            Act::Errno(_) => 3,
            Act::Trace(_) => 2,
            Act::Log => 1,
            Act::Allow => 0,
        }
    }
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
];

/// An action by name; `errno` is errnoRet (EPERM when absent, as runc).
fn action(name: &str, errno: Option<u64>, what: &str) -> Result<Act> {
    let code = || -> Result<u16> {
        match errno {
            None => Ok(libc::EPERM as u16),
            // libseccomp takes errnos below MAX_ERRNO (4095) only: runc
            // fails on a larger one, so does this.
            Some(e) if e < 4095 => Ok(e as u16),
            Some(e) => Err(Error::Invalid(format!(
                "{what}: errno {e} is out of range (0 to 4094)"
            ))),
        }
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Act::Allow,
        "SCMP_ACT_ERRNO" => Act::Errno(code()?),
        // libseccomp's SCMP_ACT_KILL is the thread's.
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Act::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Act::KillProcess,
        "SCMP_ACT_TRAP" => Act::Trap,
        "SCMP_ACT_LOG" => Act::Log,
        // With no tracer attached the kernel fails the call with ENOSYS;
        // with one, the tracer sees errnoRet as the event's data (runc's
        // meaning).
        "SCMP_ACT_TRACE" => Act::Trace(code()?),
        "SCMP_ACT_NOTIFY" => {
            return Err(Error::Invalid(format!(
                "{what}: SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which nsrun does not support"
            )))
        }
        other => {
            let hint = crate::error::suggest(other, ACTIONS.iter().copied())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "{what}: unknown action '{other}'{hint}; known: {}, SCMP_ACT_NOTIFY (not supported)",
                ACTIONS.join(", ")
            )));
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// A 64-bit comparison of argument `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

fn cond(a: &Arg, what: &str) -> Result<Cond> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => {
            let hint = crate::error::suggest(other, OPS.iter().copied())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "{what}: unknown op '{other}'{hint}; known: {}",
                OPS.join(", ")
            )));
        }
    };
    if a.index > 5 {
        return Err(Error::Invalid(format!(
            "{what}: index {} is out of range (a system call has arguments 0 to 5)",
            a.index
        )));
    }
    Ok(Cond {
        index: a.index as u8,
        op,
        value: a.value,
        value_two: a.value_two,
    })
}

/// One rule for one call: all of `conds` hold -> `act`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    conds: Vec<Cond>,
    act: Act,
}

const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
];

/// Every call's number by name: [`super::syscall`] searches its table for
/// each name and, for an unknown one, makes a "did you mean"; for a
/// podman profile (some 400 names, 80 unknown) that took 30 ms.
fn numbers() -> std::collections::HashMap<&'static str, i64> {
    syscalls::Sysno::iter()
        .map(|s| (s.name(), s.id() as i64))
        .chain(super::NEWER.iter().copied())
        .collect()
}

/// This machine's AUDIT_ARCH value.
fn native_arch() -> Result<u32> {
    if cfg!(target_arch = "x86_64") {
        Ok(super::AUDIT_ARCH_X86_64)
    } else if cfg!(target_arch = "aarch64") {
        // EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
        Ok(0xc000_00b7)
    } else {
        Err(Error::Invalid(format!(
            "linux.seccomp is not supported on {} yet",
            std::env::consts::ARCH
        )))
    }
}

/// Compile `p` (see the module's documentation for what it means).
pub fn compile(p: &Profile) -> Result<Compiled> {
    let arch = native_arch()?;
    let default = action(
        if p.default_action.is_empty() {
            "SCMP_ACT_ALLOW"
        } else {
            &p.default_action
        },
        p.default_errno,
        "linux.seccomp.defaultAction",
    )?;
    for (i, a) in p.architectures.iter().enumerate() {
        if !a.starts_with("SCMP_ARCH_") || a.len() <= "SCMP_ARCH_".len() {
            return Err(Error::Invalid(format!(
                "linux.seccomp.architectures[{i}]: '{a}' is no architecture (SCMP_ARCH_X86_64, …)"
            )));
        }
    }
    let mut ignored_flags = Vec::new();
    for (i, f) in p.flags.iter().enumerate() {
        if !FLAGS.contains(&f.as_str()) {
            return Err(Error::Invalid(format!(
                "linux.seccomp.flags[{i}]: unknown flag '{f}'; known: {}",
                FLAGS.join(", ")
            )));
        }
        ignored_flags.push(f.clone());
    }
    if p.listener_path.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(Error::Invalid(
            "linux.seccomp.listenerPath: seccomp agents (SCMP_ACT_NOTIFY) are not supported by nsrun"
                .into(),
        ));
    }
    let table = numbers();
    // Per call number: its rules, in the profile's order.
    let mut calls: std::collections::BTreeMap<u32, Vec<Rule>> = Default::default();
    let (mut named, mut unknown, mut skipped) = (0usize, 0usize, Vec::new());
    for (i, r) in p.syscalls.iter().enumerate() {
        let what = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&r.action, r.errno_ret, &what)?;
        let conds = r
            .args
            .iter()
            .enumerate()
            .map(|(j, a)| cond(a, &format!("{what}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = [false; 6];
        let repeats = conds
            .iter()
            .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
        let rules: Vec<Rule> = if repeats {
            conds
                .iter()
                .map(|c| Rule {
                    conds: vec![*c],
                    act,
                })
                .collect()
        } else {
            vec![Rule { conds, act }]
        };
        for (j, name) in r.names.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::Invalid(format!(
                    "{what}.names[{j}]: an empty system call name"
                )));
            }
            named += 1;
            let nr = match table.get(name.as_str()) {
                Some(nr) => *nr,
                None => {
                    unknown += 1;
                    if !skipped.contains(name) {
                        skipped.push(name.clone());
                    }
                    continue;
                }
            };
            if act == default {
                continue;
            }
            let nr = u32::try_from(nr)
                .map_err(|_| Error::Invalid(format!("{what}: system call number {nr}")))?;
            calls.entry(nr).or_default().extend(rules.iter().cloned());
        }
    }
    if named > 0 && unknown == named {
        return Err(Error::Invalid(format!(
            "linux.seccomp: none of the {named} system call names is known on {} (a profile for another architecture?)",
            std::env::consts::ARCH
        )));
    }
    // What each call's rules say, in the order they are tried.
    let calls: Vec<(u32, Vec<Rule>)> = calls
        .into_iter()
        .map(|(nr, rules)| {
            let tried = match rules.iter().find(|r| r.conds.is_empty()) {
                Some(first) => vec![first.clone()],
                None => {
                    let mut rs = rules;
                    // Stable: equal severity keeps the profile's order.
                    rs.sort_by_key(|r| std::cmp::Reverse(r.act.severity()));
                    rs
                }
            };
            (nr, tried)
        })
        .collect();
    let program = assemble(&emit(arch, default, &calls))?;
    Ok(Compiled {
        program,
        skipped,
        ignored_flags,
    })
}

/// A jump target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    /// The next instruction.
    Next,
    /// The one after it.
    Skip1,
    Label(usize),
}

#[derive(Debug, Clone, Copy)]
enum Ins {
    Load(u32),
    And(u32),
    Jump(u16, u32, To, To),
    Ja(usize),
    Ret(u32),
    Label(usize),
}

struct Code {
    ins: Vec<Ins>,
    labels: usize,
}

impl Code {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn push(&mut self, i: Ins) {
        self.ins.push(i);
    }

    /// Falls through when argument `c.index` passes `c`, jumps to `fail`
    /// otherwise. Each 64-bit compare is two 32-bit ones, high half first
    /// (seccomp_data holds the argument in native byte order; both
    /// architectures here are little-endian).
    fn cond(&mut self, c: &Cond, fail: usize) {
        let lo = DATA_ARGS + 8 * u32::from(c.index);
        let hi = lo + 4;
        let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
        let f = To::Label(fail);
        let pass = self.label();
        let p = To::Label(pass);
        use Ins::{Jump, Load};
        match c.op {
            Op::Eq => {
                self.push(Load(hi));
                self.push(Jump(BPF_JMP_JEQ_K, vh, To::Next, f));
                self.push(Load(lo));
                self.push(Jump(BPF_JMP_JEQ_K, vl, To::Next, f));
            }
            Op::Ne => {
                self.push(Load(hi));
                self.push(Jump(BPF_JMP_JEQ_K, vh, To::Next, p));
                self.push(Load(lo));
                self.push(Jump(BPF_JMP_JEQ_K, vl, f, To::Next));
            }
            Op::MaskedEq => {
                let (mh, ml) = (vh, vl);
                // libseccomp masks the operand too: bits of valueTwo
                // outside the mask are ignored, not a mismatch.
                let w = c.value_two & c.value;
                let (wh, wl) = ((w >> 32) as u32, w as u32);
                self.push(Load(hi));
                self.push(Ins::And(mh));
                self.push(Jump(BPF_JMP_JEQ_K, wh, To::Next, f));
                self.push(Load(lo));
                self.push(Ins::And(ml));
                self.push(Jump(BPF_JMP_JEQ_K, wl, To::Next, f));
            }
            // arg > v (or >=): high half above; or equal and the low half
            // above (or not below).
            Op::Gt | Op::Ge => {
                let low = if c.op == Op::Gt {
                    BPF_JMP_JGT_K
                } else {
                    BPF_JMP_JGE_K
                };
                self.push(Load(hi));
                self.push(Jump(BPF_JMP_JGT_K, vh, p, To::Next));
                self.push(Jump(BPF_JMP_JEQ_K, vh, To::Next, f));
                self.push(Load(lo));
                self.push(Jump(low, vl, To::Next, f));
            }
            // arg < v is not arg >= v; arg <= v is not arg > v.
            Op::Lt | Op::Le => {
                let low = if c.op == Op::Le {
                    BPF_JMP_JGT_K
                } else {
                    BPF_JMP_JGE_K
                };
                self.push(Load(hi));
                self.push(Jump(BPF_JMP_JGT_K, vh, f, To::Next));
                self.push(Jump(BPF_JMP_JEQ_K, vh, To::Next, p));
                self.push(Load(lo));
                self.push(Jump(low, vl, f, To::Next));
            }
        }
        self.push(Ins::Label(pass));
    }

    /// A binary search over `nrs` (sorted), the accumulator holding the
    /// call's number: each found number jumps to its body, any other
    /// returns `default`. Conditional jumps only ever skip one
    /// instruction (an unconditional jump, whose reach is 32 bits), so no
    /// profile is too large for BPF's 8-bit offsets.
    fn search(&mut self, nrs: &[(u32, usize)], default: u32) {
        if nrs.len() <= 4 {
            for (nr, body) in nrs {
                self.push(Ins::Jump(BPF_JMP_JEQ_K, *nr, To::Next, To::Skip1));
                self.push(Ins::Ja(*body));
            }
            self.push(Ins::Ret(default));
            return;
        }
        let mid = nrs.len() / 2;
        let right = self.label();
        self.push(Ins::Jump(BPF_JMP_JGE_K, nrs[mid].0, To::Next, To::Skip1));
        self.push(Ins::Ja(right));
        self.search(&nrs[..mid], default);
        self.push(Ins::Label(right));
        self.search(&nrs[mid..], default);
    }
}

fn emit(arch: u32, default: Act, calls: &[(u32, Vec<Rule>)]) -> Vec<Ins> {
    let mut c = Code {
        ins: Vec::new(),
        labels: 0,
    };
    let kill = Act::KillProcess.ret();
    c.push(Ins::Load(DATA_ARCH));
    c.push(Ins::Jump(BPF_JMP_JEQ_K, arch, To::Skip1, To::Next));
    c.push(Ins::Ret(kill));
    c.push(Ins::Load(DATA_NR));
    if cfg!(target_arch = "x86_64") {
        // x32's numbers (above the bit) die; -1, what a tracer writes to
        // skip a call, is no x32 call and goes on (as in Policy::compile).
        let past = c.label();
        c.push(Ins::Jump(
            BPF_JMP_JGE_K,
            X32_SYSCALL_BIT,
            To::Next,
            To::Label(past),
        ));
        c.push(Ins::Jump(
            BPF_JMP_JEQ_K,
            u32::MAX,
            To::Label(past),
            To::Next,
        ));
        c.push(Ins::Ret(kill));
        c.push(Ins::Label(past));
    }
    let bodies: Vec<(u32, usize)> = calls.iter().map(|(nr, _)| (*nr, c.label())).collect();
    c.search(&bodies, default.ret());
    for ((_, rules), (_, body)) in calls.iter().zip(&bodies) {
        c.push(Ins::Label(*body));
        for r in rules {
            let fail = c.label();
            for cd in &r.conds {
                c.cond(cd, fail);
            }
            c.push(Ins::Ret(r.act.ret()));
            c.push(Ins::Label(fail));
            if r.conds.is_empty() {
                break;
            }
        }
        c.push(Ins::Ret(default.ret()));
    }
    c.ins
}

/// Labels resolved into offsets.
fn assemble(code: &[Ins]) -> Result<Vec<sock_filter>> {
    let mut at = Vec::new();
    let mut n = 0usize;
    for i in code {
        match i {
            Ins::Label(l) => {
                if at.len() <= *l {
                    at.resize(*l + 1, usize::MAX);
                }
                at[*l] = n;
            }
            _ => n += 1,
        }
    }
    if n > BPF_MAXINSNS {
        return Err(Error::Invalid(format!(
            "linux.seccomp: the profile compiles to {n} BPF instructions, more than the kernel's {BPF_MAXINSNS}"
        )));
    }
    let too_far = || Error::Invalid("linux.seccomp: internal error: a jump out of reach".into());
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut out = Vec::with_capacity(n);
    for i in code {
        let pc = out.len();
        let off = |to: To| -> Result<u8> {
            let target = match to {
                To::Next => pc + 1,
                To::Skip1 => pc + 2,
                To::Label(l) => at[l],
            };
            target
                .checked_sub(pc + 1)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or_else(too_far)
        };
        match *i {
            Ins::Label(_) => {}
            Ins::Load(k) => out.push(insn(BPF_LD_W_ABS, 0, 0, k)),
            Ins::And(k) => out.push(insn(BPF_ALU_AND_K, 0, 0, k)),
            Ins::Ret(k) => out.push(insn(BPF_RET_K, 0, 0, k)),
            Ins::Jump(code, k, t, f) => out.push(insn(code, off(t)?, off(f)?, k)),
            Ins::Ja(l) => {
                let d = at[l].checked_sub(pc + 1).ok_or_else(too_far)?;
                out.push(insn(BPF_JMP_JA, 0, 0, d as u32));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::bpf::{self, Data, Verdict};
    use super::*;

    fn nr(name: &str) -> i64 {
        super::super::syscall(name).unwrap()
    }

    fn rule(
        names: &[&str],
        action: &str,
        errno: Option<u64>,
        args: &[(u64, &str, u64, u64)],
    ) -> SyscallRule {
        SyscallRule {
            names: names.iter().map(|s| s.to_string()).collect(),
            action: action.into(),
            errno_ret: errno,
            args: args
                .iter()
                .map(|&(index, op, value, value_two)| Arg {
                    index,
                    value,
                    value_two,
                    op: op.into(),
                })
                .collect(),
        }
    }

    fn profile(default: &str, errno: Option<u64>, rules: Vec<SyscallRule>) -> Profile {
        Profile {
            default_action: default.into(),
            default_errno: errno,
            architectures: vec!["SCMP_ARCH_X86_64".into()],
            syscalls: rules,
            ..Profile::default()
        }
    }

    fn answer(c: &Compiled, name: &str, args: &[u64]) -> Verdict {
        bpf::verdict(&[&c.program], &Data::call(nr(name), args))
    }

    #[test]
    fn actions_and_default() {
        let p = profile(
            "SCMP_ACT_ERRNO",
            Some(38),
            vec![
                rule(&["read", "write", "_llseek"], "SCMP_ACT_ALLOW", None, &[]),
                rule(&["mkdir"], "SCMP_ACT_ERRNO", Some(1), &[]),
                rule(&["mkdirat"], "SCMP_ACT_ERRNO", None, &[]),
                rule(&["ptrace"], "SCMP_ACT_KILL", None, &[]),
                rule(&["kill"], "SCMP_ACT_KILL_PROCESS", None, &[]),
                rule(&["tkill"], "SCMP_ACT_TRAP", None, &[]),
                rule(&["uname"], "SCMP_ACT_LOG", None, &[]),
                rule(&["getpid"], "SCMP_ACT_TRACE", Some(5), &[]),
                // The default's own action and errno: dropped, as runc does.
                rule(&["getppid"], "SCMP_ACT_ERRNO", Some(38), &[]),
            ],
        );
        let c = compile(&p).unwrap();
        assert_eq!(c.skipped, vec!["_llseek".to_string()]);
        assert_eq!(answer(&c, "read", &[]), Verdict::Allow);
        assert_eq!(answer(&c, "mkdir", &[]), Verdict::Errno(1));
        assert_eq!(
            answer(&c, "mkdirat", &[]),
            Verdict::Errno(libc::EPERM as u16)
        );
        assert_eq!(answer(&c, "ptrace", &[]), Verdict::KillThread);
        assert_eq!(answer(&c, "kill", &[]), Verdict::KillProcess);
        assert_eq!(answer(&c, "tkill", &[]), Verdict::Trap(0));
        assert_eq!(answer(&c, "uname", &[]), Verdict::Log);
        assert_eq!(answer(&c, "getpid", &[]), Verdict::Trace(5));
        assert_eq!(answer(&c, "getppid", &[]), Verdict::Errno(38));
        assert_eq!(answer(&c, "openat", &[]), Verdict::Errno(38));
        let x32 = i64::from(X32_SYSCALL_BIT) | nr("read");
        if cfg!(target_arch = "x86_64") {
            let v = bpf::verdict(&[&c.program], &Data::call(x32, &[]));
            assert_eq!(v, Verdict::KillProcess);
        }
        assert_eq!(
            bpf::verdict(&[&c.program], &Data::call(-1, &[])),
            Verdict::Errno(38)
        );
        let mut other = Data::call(nr("read"), &[]);
        other.arch = bpf::AUDIT_ARCH_I386;
        assert_eq!(bpf::verdict(&[&c.program], &other), Verdict::KillProcess);
    }

    /// Every operator against values around its operand, high and low
    /// halves apart, compared with the 64-bit answer.
    #[test]
    fn operators_are_64_bit() {
        let vals: [u64; 9] = [
            0,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0x2_0000_0000,
            0xffff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            0x1_ffff_ffff,
        ];
        type Holds = fn(u64, u64, u64) -> bool;
        let ops: [(&str, Holds); 7] = [
            ("SCMP_CMP_EQ", |a, v, _| a == v),
            ("SCMP_CMP_NE", |a, v, _| a != v),
            ("SCMP_CMP_LT", |a, v, _| a < v),
            ("SCMP_CMP_LE", |a, v, _| a <= v),
            ("SCMP_CMP_GT", |a, v, _| a > v),
            ("SCMP_CMP_GE", |a, v, _| a >= v),
            ("SCMP_CMP_MASKED_EQ", |a, m, w| a & m == w & m),
        ];
        for (op, f) in ops {
            for v in vals {
                // Bits outside the mask too.
                let two = (v & 0x1_0000_0001) | 0x10;
                let p = profile(
                    "SCMP_ACT_ALLOW",
                    None,
                    vec![rule(
                        &["personality"],
                        "SCMP_ACT_ERRNO",
                        Some(7),
                        &[(2, op, v, two)],
                    )],
                );
                let c = compile(&p).unwrap();
                for a in vals {
                    let want = if f(a, v, two) {
                        Verdict::Errno(7)
                    } else {
                        Verdict::Allow
                    };
                    assert_eq!(
                        answer(&c, "personality", &[0, 0, a]),
                        want,
                        "{op} {a:#x} vs {v:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn conditions_and_or() {
        let p = profile(
            "SCMP_ACT_ALLOW",
            None,
            vec![
                // Both must hold.
                rule(
                    &["socket"],
                    "SCMP_ACT_ERRNO",
                    Some(13),
                    &[(0, "SCMP_CMP_EQ", 2, 0), (1, "SCMP_CMP_EQ", 1, 0)],
                ),
                // The same argument twice: either (runc's split).
                rule(
                    &["personality"],
                    "SCMP_ACT_ERRNO",
                    Some(1),
                    &[(0, "SCMP_CMP_EQ", 8, 0), (0, "SCMP_CMP_EQ", 9, 0)],
                ),
            ],
        );
        let c = compile(&p).unwrap();
        assert_eq!(answer(&c, "socket", &[2, 1]), Verdict::Errno(13));
        assert_eq!(answer(&c, "socket", &[2, 2]), Verdict::Allow);
        assert_eq!(answer(&c, "socket", &[1, 1]), Verdict::Allow);
        assert_eq!(answer(&c, "personality", &[8]), Verdict::Errno(1));
        assert_eq!(answer(&c, "personality", &[9]), Verdict::Errno(1));
        assert_eq!(answer(&c, "personality", &[0]), Verdict::Allow);
    }

    #[test]
    fn overlaps() {
        let p = profile(
            "SCMP_ACT_ERRNO",
            Some(38),
            vec![
                // libseccomp: the first unconditional rule decides.
                rule(&["setns"], "SCMP_ACT_ALLOW", None, &[]),
                rule(&["setns"], "SCMP_ACT_ERRNO", Some(1), &[]),
                // ...and drops conditional ones, before or after it.
                rule(
                    &["chroot"],
                    "SCMP_ACT_KILL",
                    None,
                    &[(0, "SCMP_CMP_EQ", 0, 0)],
                ),
                rule(&["chroot"], "SCMP_ACT_ALLOW", None, &[]),
                // Conditional only: the most severe match, then the first.
                rule(
                    &["ioctl"],
                    "SCMP_ACT_ALLOW",
                    None,
                    &[(0, "SCMP_CMP_GE", 0, 0)],
                ),
                rule(
                    &["ioctl"],
                    "SCMP_ACT_ERRNO",
                    Some(5),
                    &[(1, "SCMP_CMP_EQ", 3, 0)],
                ),
                rule(
                    &["ioctl"],
                    "SCMP_ACT_ERRNO",
                    Some(6),
                    &[(1, "SCMP_CMP_GE", 3, 0)],
                ),
                rule(
                    &["ioctl"],
                    "SCMP_ACT_KILL_PROCESS",
                    None,
                    &[(1, "SCMP_CMP_EQ", 9, 0)],
                ),
            ],
        );
        let c = compile(&p).unwrap();
        assert_eq!(answer(&c, "setns", &[]), Verdict::Allow);
        assert_eq!(answer(&c, "chroot", &[0]), Verdict::Allow);
        assert_eq!(answer(&c, "ioctl", &[0, 0]), Verdict::Allow);
        assert_eq!(answer(&c, "ioctl", &[0, 3]), Verdict::Errno(5));
        assert_eq!(answer(&c, "ioctl", &[0, 4]), Verdict::Errno(6));
        assert_eq!(answer(&c, "ioctl", &[0, 9]), Verdict::KillProcess);
    }

    #[test]
    fn errors_name_the_rule() {
        let bad = |r: SyscallRule| {
            compile(&profile(
                "SCMP_ACT_ALLOW",
                None,
                vec![rule(&["read"], "SCMP_ACT_ALLOW", None, &[]), r],
            ))
            .unwrap_err()
            .to_string()
        };
        let e = bad(rule(
            &["mkdir"],
            "SCMP_ACT_ERRNO",
            None,
            &[(6, "SCMP_CMP_EQ", 0, 0)],
        ));
        assert!(
            e.contains("syscalls[1].args[0]") && e.contains("index 6"),
            "{e}"
        );
        let e = bad(rule(
            &["mkdir"],
            "SCMP_ACT_ERRNO",
            None,
            &[(0, "SCMP_CMP_EQQ", 0, 0)],
        ));
        assert!(
            e.contains("syscalls[1].args[0]") && e.contains("SCMP_CMP_EQ'?"),
            "{e}"
        );
        let e = bad(rule(&["mkdir"], "SCMP_ACT_NOTIFY", None, &[]));
        assert!(
            e.contains("syscalls[1]") && e.contains("not support"),
            "{e}"
        );
        let e = bad(rule(&["mkdir"], "SCMP_ACT_ERNO", None, &[]));
        assert!(e.contains("SCMP_ACT_ERRNO'?"), "{e}");
        let e = bad(rule(&["mkdir"], "SCMP_ACT_ERRNO", Some(70000), &[]));
        assert!(e.contains("syscalls[1]") && e.contains("70000"), "{e}");
        let e = compile(&profile(
            "SCMP_ACT_ERRNO",
            None,
            vec![rule(
                &["_llseek", "arm_fadvise64_64", "_llseek"],
                "SCMP_ACT_ALLOW",
                None,
                &[],
            )],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("none of the 3"), "{e}");
        let mut p = profile("SCMP_ACT_ALLOW", None, vec![]);
        p.flags = vec!["SECCOMP_FILTER_FLAG_LOG".into()];
        assert_eq!(compile(&p).unwrap().ignored_flags, p.flags);
        p.flags = vec!["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".into()];
        assert!(compile(&p).unwrap_err().to_string().contains("flags[0]"));
    }

    /// A long list: the search reaches every call, and the kernel would
    /// take the program.
    #[test]
    fn many_calls() {
        let names: Vec<&str> = syscalls::Sysno::iter().map(|s| s.name()).collect();
        let p = profile(
            "SCMP_ACT_KILL_PROCESS",
            None,
            vec![rule(&names, "SCMP_ACT_ALLOW", None, &[])],
        );
        let c = compile(&p).unwrap();
        bpf::check(&c.program);
        for n in &names {
            assert_eq!(answer(&c, n, &[]), Verdict::Allow, "{n}");
        }
        assert_eq!(
            bpf::verdict(&[&c.program], &Data::call(1000, &[])),
            Verdict::KillProcess
        );
        assert_eq!(c.bytes().len(), c.program.len() * 8);
    }
}
