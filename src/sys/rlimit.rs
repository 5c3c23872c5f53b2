//! Resource limits (setrlimit) for a sandboxed program.

use nix::errno::Errno;

use super::ops;
use crate::error::{suggest, Context, Error, Result};

/// setrlimit's resource argument: glibc gives it a type of its own, musl an int.
#[cfg(target_env = "gnu")]
pub type Resource = libc::__rlimit_resource_t;
/// setrlimit's resource argument: glibc gives it a type of its own, musl an int.
#[cfg(not(target_env = "gnu"))]
pub type Resource = libc::c_int;

/// The limits nsrun knows by name, as `ns.spawn{rlimits = {...}}` spells them.
pub const NAMES: &[(&str, Resource, bool)] = &[
    // (name, resource, measured in bytes)
    ("as", libc::RLIMIT_AS, true),
    ("core", libc::RLIMIT_CORE, true),
    ("cpu", libc::RLIMIT_CPU, false),
    ("data", libc::RLIMIT_DATA, true),
    ("fsize", libc::RLIMIT_FSIZE, true),
    ("locks", libc::RLIMIT_LOCKS, false),
    ("memlock", libc::RLIMIT_MEMLOCK, true),
    ("msgqueue", libc::RLIMIT_MSGQUEUE, true),
    ("nice", libc::RLIMIT_NICE, false),
    ("nofile", libc::RLIMIT_NOFILE, false),
    ("nproc", libc::RLIMIT_NPROC, false),
    ("rss", libc::RLIMIT_RSS, true),
    ("rtprio", libc::RLIMIT_RTPRIO, false),
    ("rttime", libc::RLIMIT_RTTIME, false),
    ("sigpending", libc::RLIMIT_SIGPENDING, false),
    ("stack", libc::RLIMIT_STACK, true),
];

/// "No limit".
pub const INFINITY: u64 = libc::RLIM_INFINITY;

/// One limit to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// Index into [`NAMES`].
    which: usize,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl Rlimit {
    /// A limit by name (`"nofile"`, `"as"`, also `"RLIMIT_NOFILE"`); soft
    /// must not exceed hard.
    pub fn new(name: &str, soft: u64, hard: u64) -> Result<Rlimit> {
        let n = name.to_ascii_lowercase();
        let n = n.strip_prefix("rlimit_").unwrap_or(&n);
        let Some(which) = NAMES.iter().position(|(k, _, _)| *k == n) else {
            let hint = suggest(n, NAMES.iter().map(|(k, _, _)| *k))
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "unknown resource limit '{name}'{hint}; known: {}",
                NAMES
                    .iter()
                    .map(|(k, _, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if soft > hard {
            return Err(Error::Invalid(format!(
                "rlimit {n}: the soft limit {soft} is above the hard limit {hard}"
            )));
        }
        Ok(Rlimit { which, soft, hard })
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        NAMES[self.which].0
    }

    /// Whether it is measured in bytes (so "256M" makes sense for it).
    pub fn is_size(name: &str) -> bool {
        NAMES.iter().any(|(k, _, b)| *k == name && *b)
    }

    /// setrlimit(2) it on the calling process.
    pub fn apply(&self) -> Result<()> {
        let (name, res, _) = NAMES[self.which];
        let show = |v: u64| {
            if v == INFINITY {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        ops::act(
            || {
                format!(
                    "setrlimit({name}, {}, {})",
                    show(self.soft),
                    show(self.hard)
                )
            },
            || {
                let lim = libc::rlimit {
                    rlim_cur: self.soft,
                    rlim_max: self.hard,
                };
                // SAFETY: a valid rlimit struct.
                Errno::result(unsafe { libc::setrlimit(res, &lim) }).map(drop)
            },
        )
        .op(|| format!("setrlimit {name}"))
    }
}

pub use super::size::parse_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Rlimit::new("nofile", 1, 2).is_ok());
        assert!(Rlimit::new("RLIMIT_AS", 1, 2).is_ok());
        let e = Rlimit::new("nofiles", 1, 2).unwrap_err().to_string();
        assert!(e.contains("did you mean 'nofile'"), "{e}");
        assert!(Rlimit::new("cpu", 3, 2).is_err());
    }
}
