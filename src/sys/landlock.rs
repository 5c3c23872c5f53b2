//! Landlock: limit the sandboxed program's file system access to listed
//! paths, on top of (and independent from) the mount namespace. Raw system
//! calls; the rights handled follow the kernel's Landlock ABI version, so
//! an older kernel restricts what it knows and a newer one adds nothing
//! nsrun did not ask for.

use std::ffi::CString;

use nix::errno::Errno;

use super::ops;
use crate::error::{Context, Error, Result};

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;

/// Rights that make sense on a file (not a directory) rule.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
/// Read-only access: read and execute files, list directories.
const RO: u64 = EXECUTE | READ_FILE | READ_DIR;

/// Which paths the program may use, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Read (and execute) below these.
    pub ro: Vec<String>,
    /// Anything below these.
    pub rw: Vec<String>,
}

/// The Landlock ABI version of this kernel (0: none).
pub fn abi() -> i64 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// Every file system right the kernel's ABI version knows.
fn handled(abi: i64) -> u64 {
    let mut m = (1u64 << 13) - 1; // v1: execute .. make_sym
    if abi >= 2 {
        m |= REFER;
    }
    if abi >= 3 {
        m |= TRUNCATE;
    }
    if abi >= 5 {
        m |= IOCTL_DEV;
    }
    m
}

impl Rules {
    /// Restrict the calling process (it needs no_new_privs or
    /// CAP_SYS_ADMIN). The paths are opened now, as the process sees them.
    pub fn apply(&self) -> Result<()> {
        let abi = if ops::planning() { 5 } else { abi() };
        if abi == 0 {
            return Err(Error::Invalid(
                "landlock: this kernel does not support Landlock (or it is disabled)".into(),
            ));
        }
        let all = handled(abi);
        #[repr(C)]
        struct RulesetAttr {
            handled_access_fs: u64,
        }
        let attr = RulesetAttr {
            handled_access_fs: all,
        };
        let fd = ops::act(
            || format!("landlock_create_ruleset(fs={all:#x})"),
            || {
                // SAFETY: a valid attribute struct and its size.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_landlock_create_ruleset,
                        &attr as *const RulesetAttr,
                        std::mem::size_of::<RulesetAttr>(),
                        0u32,
                    )
                };
                Errno::result(rc).map(|fd| fd as i32)
            },
        )
        .op(|| "landlock_create_ruleset".into())?;
        let r = self.add_all(fd, all);
        let r = r.and_then(|()| {
            ops::act(
                || "landlock_restrict_self()".into(),
                || {
                    // SAFETY: fd is our ruleset.
                    Errno::result(unsafe {
                        libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32)
                    })
                    .map(drop)
                },
            )
            .op(|| "landlock_restrict_self".into())
        });
        if fd >= 0 && !ops::planning() {
            // SAFETY: closing the ruleset fd we made.
            unsafe { libc::close(fd) };
        }
        r
    }

    fn add_all(&self, ruleset: i32, all: u64) -> Result<()> {
        for (paths, rights) in [(&self.ro, RO & all), (&self.rw, all)] {
            for p in paths {
                add_rule(ruleset, p, rights)?;
            }
        }
        Ok(())
    }
}

fn add_rule(ruleset: i32, path: &str, rights: u64) -> Result<()> {
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let c =
        CString::new(path).map_err(|_| Error::Invalid(format!("landlock: bad path {path:?}")))?;
    let planning = ops::planning();
    // SAFETY: a valid C string; O_PATH opens without access checks on the file.
    let fd = if planning {
        -1
    } else {
        unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) }
    };
    if fd < 0 && !planning {
        return Err(Error::sys(format!("landlock: open {path}"), Errno::last()));
    }
    let mut rights = rights;
    if !planning {
        // SAFETY: fstat on our fd into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            rights &= FILE_RIGHTS;
        }
    }
    let attr = PathBeneath {
        allowed_access: rights,
        parent_fd: fd,
    };
    let r = ops::act(
        || format!("landlock_add_rule({path:?}, {rights:#x})"),
        || {
            // SAFETY: LANDLOCK_RULE_PATH_BENEATH (1) with its packed struct.
            Errno::result(unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    1u32,
                    &attr as *const PathBeneath,
                    0u32,
                )
            })
            .map(drop)
        },
    )
    .op(|| format!("landlock_add_rule {path}"));
    if fd >= 0 {
        // SAFETY: closing the fd we opened.
        unsafe { libc::close(fd) };
    }
    r
}
