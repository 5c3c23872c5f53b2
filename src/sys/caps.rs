//! Capabilities of the sandboxed program: what stays in the bounding,
//! permitted, effective, inheritable and ambient sets when it execs.

use std::str::FromStr;

use caps::Capability;
use nix::errno::Errno;

use super::ops;
use crate::error::{suggest, Context, Error, Result};

/// Which capabilities the program keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caps {
    /// Only these (a mask of `1 << cap`).
    Keep(u64),
    /// All but these.
    Drop(u64),
    /// Only the bounding set: every capability outside the mask leaves
    /// it; the other sets stay as they are. A program run as uid 0 then
    /// holds exactly these after its exec (bubblewrap run by root in a
    /// user namespace of its own).
    Bound(u64),
    /// Only these in the permitted, effective, inheritable and ambient
    /// sets, the bounding set left as it is (bubblewrap run by root
    /// without a user namespace, with --cap-add/--cap-drop).
    Sets(u64),
}

/// A capability by name: `"CAP_NET_ADMIN"`, `"net_admin"` (any case).
pub fn parse(name: &str) -> Result<Capability> {
    let canon = caps::to_canonical(name.trim());
    Capability::from_str(&canon).map_err(|_| {
        let all = names();
        let short: Vec<String> = all
            .iter()
            .map(|n| n.trim_start_matches("CAP_").to_ascii_lowercase())
            .collect();
        let hint = suggest(&canon, all.iter().map(String::as_str))
            .map(|s| s.to_string())
            .or_else(|| {
                suggest(&name.to_ascii_lowercase(), short.iter().map(String::as_str))
                    .map(|s| format!("CAP_{}", s.to_ascii_uppercase()))
            })
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        Error::Invalid(format!("unknown capability '{name}'{hint}"))
    })
}

/// Every capability name nsrun knows, sorted by number.
pub fn names() -> Vec<String> {
    let mut v: Vec<Capability> = caps::all().into_iter().collect();
    v.sort_by_key(|c| c.index());
    v.iter().map(|c| c.to_string()).collect()
}

/// The mask of a list of names.
pub fn mask_of<S: AsRef<str>>(names: &[S]) -> Result<u64> {
    names
        .iter()
        .try_fold(0u64, |m, n| Ok(m | parse(n.as_ref())?.bitmask()))
}

/// The names in a mask, for messages and `--plan`.
pub fn mask_names(mask: u64) -> String {
    let v: Vec<String> = (0..64)
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| {
            caps::all()
                .into_iter()
                .find(|c| c.index() == i)
                .map(|c| c.to_string())
                .unwrap_or_else(|| format!("cap{i}"))
        })
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

/// The capabilities this kernel knows (those `PR_CAPBSET_READ` accepts).
fn supported() -> u64 {
    caps::runtime::thread_all_supported()
        .iter()
        .fold(0, |m, c| m | c.bitmask())
}

/// The set the program ends up with, or `None` to leave the sets alone:
/// as asked, or by default none at all when it runs as non-root inside.
pub fn target(spec: Option<Caps>, uid: Option<u32>) -> Option<u64> {
    match spec {
        Some(Caps::Keep(m)) => Some(m),
        Some(Caps::Drop(m)) => Some(!m),
        Some(Caps::Bound(_)) => None,
        Some(Caps::Sets(m)) => Some(m),
        None if uid.is_some_and(|u| u != 0) => Some(0),
        None => None,
    }
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const VERSION_3: u32 = 0x2008_0522;

/// (effective, permitted, inheritable) of this thread.
fn capget() -> Result<(u64, u64, u64)> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: a v3 header and two data structs, as capget(2) wants.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    Errno::result(rc).op(|| "capget".into())?;
    let join = |f: fn(&Data) -> u32| f(&d[0]) as u64 | (f(&d[1]) as u64) << 32;
    Ok((
        join(|d| d.effective),
        join(|d| d.permitted),
        join(|d| d.inheritable),
    ))
}

fn capset(eff: u64, perm: u64, inh: u64) -> Result<()> {
    ops::act(
        || {
            format!(
                "capset(effective={}, permitted={}, inheritable={})",
                mask_names(eff),
                mask_names(perm),
                mask_names(inh)
            )
        },
        || {
            let h = Header {
                version: VERSION_3,
                pid: 0,
            };
            let split = |e: u64, p: u64, i: u64, hi: bool| {
                let s = if hi { 32 } else { 0 };
                Data {
                    effective: (e >> s) as u32,
                    permitted: (p >> s) as u32,
                    inheritable: (i >> s) as u32,
                }
            };
            let d = [split(eff, perm, inh, false), split(eff, perm, inh, true)];
            // SAFETY: a v3 header and two data structs, as capset(2) wants.
            let rc = unsafe { libc::syscall(libc::SYS_capset, &h, d.as_ptr()) };
            Errno::result(rc).map(drop)
        },
    )
    .op(|| "capset".into())
}

/// Before switching to a non-root uid: keep the permitted set across the
/// switch (the kernel clears it otherwise, and the ambient set with it),
/// so [`apply`] still has something to keep.
pub fn keep_across_setuid() -> Result<()> {
    ops::prctl(
        || "prctl(PR_SET_KEEPCAPS, 1)".into(),
        libc::PR_SET_KEEPCAPS,
        1,
        0,
    )
    .op(|| "prctl PR_SET_KEEPCAPS".into())
}

/// Reduce every set to `want` (within what this process has): bounding
/// first (it needs CAP_SETPCAP, so while effective still holds it), then
/// permitted, effective and inheritable in one capset, then ambient —
/// which is what carries capabilities across exec for a non-root uid.
pub fn apply(want: u64) -> Result<()> {
    apply_with(want, true)
}

/// [`apply`], with or without the bounding set ([`Caps::Sets`]).
pub fn apply_with(want: u64, bounding: bool) -> Result<()> {
    let all = supported();
    let want = want & all;
    let (_, perm, inh) = if ops::planning() {
        (all, all, 0)
    } else {
        capget()?
    };
    // After a uid switch with PR_SET_KEEPCAPS the effective set is empty:
    // raise it from the permitted set to be allowed to drop the rest.
    capset(perm, perm, inh)?;
    if bounding {
        drop_bounding(want)?;
    }
    let keep = want & perm;
    capset(keep, keep, keep)?;
    ops::prctl(
        || "prctl(PR_CAP_AMBIENT, CLEAR_ALL)".into(),
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .op(|| "prctl PR_CAP_AMBIENT_CLEAR_ALL".into())?;
    for i in 0..64u32 {
        if keep & (1u64 << i) != 0 {
            ops::prctl(
                || format!("prctl(PR_CAP_AMBIENT, RAISE, {})", mask_names(1u64 << i)),
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                i as libc::c_ulong,
            )
            .op(|| format!("prctl PR_CAP_AMBIENT_RAISE {}", mask_names(1u64 << i)))?;
        }
    }
    Ok(())
}

/// The bounding set down to `keep` (needs CAP_SETPCAP in the effective
/// set): what [`Caps::Bound`] does alone, and [`apply`] first.
pub fn drop_bounding(keep: u64) -> Result<()> {
    let all = supported();
    for i in 0..64u32 {
        let bit = 1u64 << i;
        if all & bit == 0 || keep & bit != 0 {
            continue;
        }
        // Dropping one already gone succeeds: no PR_CAPBSET_READ first
        // (one system call less for each of some 41 capabilities).
        ops::prctl(
            || format!("prctl(PR_CAPBSET_DROP, {})", mask_names(bit)),
            libc::PR_CAPBSET_DROP,
            i as libc::c_ulong,
            0,
        )
        .op(|| format!("prctl PR_CAPBSET_DROP {}", mask_names(bit)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(parse("net_admin").unwrap(), Capability::CAP_NET_ADMIN);
        assert_eq!(parse("CAP_SYS_ADMIN").unwrap(), Capability::CAP_SYS_ADMIN);
        let e = parse("net_admn").unwrap_err().to_string();
        assert!(e.contains("did you mean 'CAP_NET_ADMIN'"), "{e}");
        assert_eq!(mask_of(&["chown", "kill"]).unwrap(), 1 | (1 << 5));
        assert_eq!(mask_names(1 | (1 << 5)), "CAP_CHOWN,CAP_KILL");
    }
}
