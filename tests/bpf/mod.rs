//! A classic-BPF interpreter with the kernel's seccomp rules, to check what
//! a compiled filter answers for calls this machine cannot make (x32 is off
//! here) or that a test should not make (mount on the host).
//!
//! Used by `tests/hardening.rs` and, through `#[path]`, by the unit tests of
//! `src/sys/seccomp.rs`. It follows `kernel/seccomp.c` and
//! `net/core/filter.c` (`seccomp_check_filter`, `bpf_check_classic`,
//! `seccomp_run_filters`): every instruction seccomp accepts is implemented,
//! and anything else (or a malformed program the kernel would refuse) panics,
//! so that a test cannot pass on an instruction it did not understand.

#![allow(dead_code)] // each user takes a different part

use seccompiler::sock_filter;

/// AUDIT_ARCH_X86_64 (also reported for x32 calls).
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// AUDIT_ARCH_I386: an int 0x80 call from a 64-bit process.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// AUDIT_ARCH_AARCH64.
pub const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;

/// The arch value of the machine the tests run on.
pub fn native_arch() -> u32 {
    if cfg!(target_arch = "x86_64") {
        AUDIT_ARCH_X86_64
    } else if cfg!(target_arch = "aarch64") {
        AUDIT_ARCH_AARCH64
    } else {
        panic!("no AUDIT_ARCH value for this architecture in the test interpreter")
    }
}

/// `struct seccomp_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data {
    pub nr: i32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    /// A call of this machine's architecture.
    pub fn call(nr: i64, args: &[u64]) -> Data {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Data {
            nr: nr as i32,
            arch: native_arch(),
            ip: 0x7fff_0000_1000,
            args: a,
        }
    }

    /// The bytes a filter reads: the struct in native byte order.
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.ip.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// What the kernel does with a call, from a filter's return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    KillProcess,
    KillThread,
    Trap(u16),
    Errno(u16),
    UserNotif,
    Trace(u16),
    Log,
    Allow,
}

const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

impl Verdict {
    /// As `__seccomp_filter` reads a return value; an action it does not
    /// know kills the process.
    pub fn of(ret: u32) -> Verdict {
        let data = (ret & RET_DATA) as u16;
        match ret & RET_ACTION_FULL {
            0x8000_0000 => Verdict::KillProcess,
            0x0000_0000 => Verdict::KillThread,
            0x0003_0000 => Verdict::Trap(data),
            0x0005_0000 => Verdict::Errno(data),
            0x7fc0_0000 => Verdict::UserNotif,
            0x7ff0_0000 => Verdict::Trace(data),
            0x7ffc_0000 => Verdict::Log,
            0x7fff_0000 => Verdict::Allow,
            _ => Verdict::KillProcess,
        }
    }
}

/// The kernel's checks at install time (`bpf_check_classic` and
/// `seccomp_check_filter`); panics with the reason it would refuse.
pub fn check(prog: &[sock_filter]) {
    let len = prog.len();
    assert!(len > 0 && len <= 4096, "program length {len} (1..=4096)");
    for (pc, i) in prog.iter().enumerate() {
        let left = len - pc - 1;
        match i.code & 0x07 {
            BPF_LD | BPF_LDX => {
                let mode = i.code & 0xe0;
                assert_eq!(
                    i.code & 0x18,
                    BPF_W,
                    "pc {pc}: only word loads ({:#x})",
                    i.code
                );
                match (i.code & 0x07, mode) {
                    (BPF_LD, BPF_ABS) => {
                        assert!(
                            i.k % 4 == 0 && i.k < 64,
                            "pc {pc}: ld [{}] outside seccomp_data or unaligned",
                            i.k
                        );
                    }
                    (_, BPF_IMM) | (_, BPF_LEN) => {}
                    (_, BPF_MEM) => assert!(i.k < 16, "pc {pc}: M[{}]", i.k),
                    _ => panic!("pc {pc}: load mode {mode:#x} refused by seccomp"),
                }
            }
            BPF_ST | BPF_STX => assert!(i.k < 16, "pc {pc}: M[{}]", i.k),
            BPF_ALU => {
                let op = i.code & 0xf0;
                assert!(
                    [
                        BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH,
                        BPF_NEG, BPF_MOD, BPF_XOR
                    ]
                    .contains(&op),
                    "pc {pc}: alu op {op:#x}"
                );
                if i.code & 0x08 == BPF_K && (op == BPF_DIV || op == BPF_MOD) {
                    assert!(i.k != 0, "pc {pc}: division by constant zero");
                }
                if i.code & 0x08 == BPF_K && (op == BPF_LSH || op == BPF_RSH) {
                    assert!(i.k < 32, "pc {pc}: shift by {}", i.k);
                }
            }
            BPF_JMP => {
                let op = i.code & 0xf0;
                if op == BPF_JA {
                    assert!(
                        (i.k as usize) < left,
                        "pc {pc}: ja {} out of the program",
                        i.k
                    );
                } else {
                    assert!(
                        [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET].contains(&op),
                        "pc {pc}: jump op {op:#x}"
                    );
                    assert!(
                        (i.jt as usize) < left && (i.jf as usize) < left,
                        "pc {pc}: jump {}/{} out of the program",
                        i.jt,
                        i.jf
                    );
                }
            }
            BPF_RET => {
                let src = i.code & 0x18;
                assert!(src == BPF_K || src == BPF_A, "pc {pc}: ret source {src:#x}");
            }
            BPF_MISC => {
                let op = i.code & 0xf8;
                assert!(op == BPF_TAX || op == BPF_TXA, "pc {pc}: misc op {op:#x}");
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(
        prog[len - 1].code & 0x07,
        BPF_RET,
        "the program must end with ret"
    );
}

/// Run one program on `d`; its return value.
pub fn run(prog: &[sock_filter], d: &Data) -> u32 {
    check(prog);
    let data = d.bytes();
    let word = |k: u32| {
        let k = k as usize;
        u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
    };
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [None::<u32>; 16];
    let mut pc = 0usize;
    loop {
        let i = &prog[pc];
        pc += 1;
        let src = |x: u32| if i.code & 0x08 == BPF_X { x } else { i.k };
        match i.code & 0x07 {
            BPF_LD | BPF_LDX => {
                let v = match i.code & 0xe0 {
                    BPF_ABS => word(i.k),
                    BPF_IMM => i.k,
                    BPF_LEN => 64,
                    BPF_MEM => mem[i.k as usize]
                        .unwrap_or_else(|| panic!("pc {}: M[{}] read before written", pc - 1, i.k)),
                    _ => unreachable!(),
                };
                if i.code & 0x07 == BPF_LD {
                    a = v
                } else {
                    x = v
                }
            }
            BPF_ST => mem[i.k as usize] = Some(a),
            BPF_STX => mem[i.k as usize] = Some(x),
            BPF_ALU => {
                let v = src(x);
                a = match i.code & 0xf0 {
                    BPF_ADD => a.wrapping_add(v),
                    BPF_SUB => a.wrapping_sub(v),
                    BPF_MUL => a.wrapping_mul(v),
                    // Classic BPF ends the program with 0 on a division by
                    // a zero X.
                    BPF_DIV if v == 0 => return 0,
                    BPF_DIV => a / v,
                    BPF_MOD if v == 0 => return 0,
                    BPF_MOD => a % v,
                    BPF_OR => a | v,
                    BPF_AND => a & v,
                    BPF_LSH => a.checked_shl(v).unwrap_or(0),
                    BPF_RSH => a.checked_shr(v).unwrap_or(0),
                    BPF_NEG => a.wrapping_neg(),
                    BPF_XOR => a ^ v,
                    _ => unreachable!(),
                };
            }
            BPF_JMP => {
                let v = src(x);
                let taken = match i.code & 0xf0 {
                    BPF_JA => {
                        pc += i.k as usize;
                        continue;
                    }
                    BPF_JEQ => a == v,
                    BPF_JGT => a > v,
                    BPF_JGE => a >= v,
                    BPF_JSET => a & v != 0,
                    _ => unreachable!(),
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            BPF_RET => {
                return match i.code & 0x18 {
                    BPF_K => i.k,
                    _ => a,
                }
            }
            BPF_MISC => {
                if i.code & 0xf8 == BPF_TAX {
                    x = a
                } else {
                    a = x
                }
            }
            _ => unreachable!(),
        }
    }
}

/// What the kernel does when all of `progs` are installed, in that order:
/// it runs every one and keeps the most severe answer (the lowest action,
/// read as a signed number); on a tie the one installed last wins.
pub fn verdict<P: AsRef<[sock_filter]>>(progs: &[P], d: &Data) -> Verdict {
    let action = |r: u32| (r & RET_ACTION_FULL) as i32;
    let mut ret = 0x7fff_0000u32; // SECCOMP_RET_ALLOW
    for p in progs.iter().rev() {
        let cur = run(p.as_ref(), d);
        if action(cur) < action(ret) {
            ret = cur;
        }
    }
    Verdict::of(ret)
}

// linux/bpf_common.h
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_ADD: u16 = 0x00;
const BPF_SUB: u16 = 0x10;
const BPF_MUL: u16 = 0x20;
const BPF_DIV: u16 = 0x30;
const BPF_OR: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_NEG: u16 = 0x80;
const BPF_MOD: u16 = 0x90;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;

#[cfg(test)]
mod selftest {
    //! The interpreter against hand-written programs whose answers are
    //! known, so that a bug here cannot make a filter look right.
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    #[test]
    fn ops() {
        // nr 7 with arg0's low word 0x30 -> errno (0x30 & 0x10) | 2 = 0x12.
        let p = [
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
            i(BPF_JMP | BPF_JEQ | BPF_K, 0, 8, 7),
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 16),
            i(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0x10),
            i(BPF_ST, 0, 0, 3),
            i(BPF_LDX | BPF_W | BPF_IMM, 0, 0, 2),
            i(BPF_LD | BPF_MEM, 0, 0, 3),
            i(BPF_ALU | BPF_OR | BPF_X, 0, 0, 0),
            i(BPF_ALU | BPF_OR | BPF_K, 0, 0, 0x0005_0000),
            i(BPF_RET | BPF_A, 0, 0, 0),
            i(BPF_RET | BPF_K, 0, 0, 0x7fff_0000),
        ];
        assert_eq!(
            Verdict::of(run(&p, &Data::call(7, &[0x30]))),
            Verdict::Errno(0x12)
        );
        assert_eq!(
            Verdict::of(run(&p, &Data::call(8, &[0x30]))),
            Verdict::Allow
        );
        // jset, jgt, ja, tax/txa.
        let p = [
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 24),
            i(BPF_JMP | BPF_JSET | BPF_K, 0, 3, 0x4),
            i(BPF_MISC | BPF_TAX, 0, 0, 0),
            i(BPF_MISC | BPF_TXA, 0, 0, 0),
            i(BPF_JMP | BPF_JA, 0, 0, 1),
            i(BPF_RET | BPF_K, 0, 0, 0x7fff_0000),
            i(BPF_JMP | BPF_JGT | BPF_K, 0, 1, 100),
            i(BPF_RET | BPF_K, 0, 0, 0x8000_0000),
            i(BPF_RET | BPF_K, 0, 0, 0x0005_0001),
        ];
        let v = |arg1| Verdict::of(run(&p, &Data::call(0, &[0, arg1])));
        assert_eq!(v(0), Verdict::Allow);
        assert_eq!(v(0x4), Verdict::Errno(1));
        assert_eq!(v(0x104), Verdict::KillProcess);
        // The high half of a 64-bit argument is its own word.
        assert_eq!(v(0x1_0000_0004), Verdict::Errno(1));
    }

    #[test]
    fn precedence() {
        let ret = |k| vec![i(BPF_RET | BPF_K, 0, 0, k)];
        let d = Data::call(0, &[]);
        let allow = ret(0x7fff_0000);
        let log = ret(0x7ffc_0000);
        let e1 = ret(0x0005_0001);
        let e2 = ret(0x0005_0002);
        let kill = ret(0x8000_0000);
        assert_eq!(verdict(&[allow.clone(), log.clone()], &d), Verdict::Log);
        assert_eq!(verdict(&[log, e1.clone()], &d), Verdict::Errno(1));
        // Equal actions: the program installed last decides.
        assert_eq!(verdict(&[e1.clone(), e2.clone()], &d), Verdict::Errno(2));
        assert_eq!(verdict(&[e2, e1.clone()], &d), Verdict::Errno(1));
        assert_eq!(verdict(&[kill, e1, allow], &d), Verdict::KillProcess);
    }

    #[test]
    #[should_panic(expected = "out of the program")]
    fn refuses_a_jump_out() {
        run(
            &[
                i(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 0),
                i(BPF_RET | BPF_K, 0, 0, 0),
            ],
            &Data::call(0, &[]),
        );
    }

    #[test]
    #[should_panic(expected = "outside seccomp_data")]
    fn refuses_a_load_past_the_data() {
        run(
            &[
                i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 64),
                i(BPF_RET | BPF_K, 0, 0, 0),
            ],
            &Data::call(0, &[]),
        );
    }

    #[test]
    #[should_panic(expected = "load mode")]
    fn refuses_what_seccomp_refuses() {
        // BPF_IND: packet-relative loads are not for seccomp.
        run(
            &[
                i(BPF_LD | BPF_W | 0x40, 0, 0, 0),
                i(BPF_RET | BPF_K, 0, 0, 0),
            ],
            &Data::call(0, &[]),
        );
    }
}
