//! Sizes as people write them: `4096`, `64M`, `1.5G`, `unlimited`. One
//! parser for tmpfs sizes, cgroup limits and rlimits, so a size valid in
//! one place is valid in all.

use crate::error::{Error, Result};

/// What `"unlimited"` (or `"infinity"`) parses to: `u64::MAX`, which is
/// also `RLIM_INFINITY`.
pub const UNLIMITED: u64 = u64::MAX;

/// A tmpfs size: [`parse_size`]'s, but neither 0 nor [`UNLIMITED`], which
/// a tmpfs does not take as a limit.
pub fn tmpfs_size(s: &str) -> Result<u64> {
    match parse_size(s)? {
        0 | UNLIMITED => Err(Error::Invalid(format!(
            "bad size '{s}': a tmpfs needs more than 0 bytes and no \"unlimited\" (leave size \
             out for the kernel's default, half of the memory)"
        ))),
        n => Ok(n),
    }
}

/// Parse a size: a number of bytes, or with a unit `K`, `M`, `G` or `T`
/// (powers of 1024; `KB`, `KiB` and lower case work too), or `"unlimited"`
/// / `"infinity"` ([`UNLIMITED`]). With a unit the number may have a
/// fraction (`"1.5G"`), rounded down to whole bytes; without one it may
/// not (there are no fractions of a byte).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    if matches!(t, "unlimited" | "infinity") {
        return Ok(UNLIMITED);
    }
    let bad = |why: &str| {
        Error::Invalid(format!(
            "bad size '{s}': {why} (a number of bytes, optionally with K, M, G or T, e.g. \"256M\" or \"1.5G\")"
        ))
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u128 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(bad("unknown unit")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 18 {
        return Err(bad("not a number"));
    }
    if !frac.is_empty() && mult == 1 {
        return Err(bad("a fraction of a byte"));
    }
    let whole: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad("not a number"))?
    };
    let scale = 10u128.pow(frac.len() as u32);
    let part: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad("not a number"))?
    };
    let bytes = whole
        .checked_mul(mult)
        .and_then(|w| w.checked_add(part * mult / scale))
        .filter(|b| *b < u128::from(UNLIMITED))
        .ok_or_else(|| bad("too large"))?;
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size(" 64M ").unwrap(), 64 << 20);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size(".5M").unwrap(), 1 << 19);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("unlimited").unwrap(), UNLIMITED);
        assert_eq!(parse_size("infinity").unwrap(), UNLIMITED);
        assert_eq!(UNLIMITED, libc::RLIM_INFINITY);
    }

    #[test]
    fn bad_sizes() {
        for s in [
            "",
            "12Q",
            "-1",
            "1.5",
            "1..5M",
            ".M",
            "M",
            "1e3",
            "16777216T",
            "0x10",
        ] {
            let e = parse_size(s).unwrap_err().to_string();
            assert!(e.starts_with(&format!("bad size '{s}'")), "{s}: {e}");
        }
    }
}
