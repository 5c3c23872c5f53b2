//! The kernel-facing layer. Knows nothing of Lua.
//!
//! Every call that changes kernel state goes through [`ops`], so it can be
//! traced in one place.

pub mod caps;
pub mod cgroup;
pub mod channel;
pub mod child;
pub mod cred;
pub mod deadline;
pub mod exec;
pub mod flags;
pub mod fs;
pub mod idmap;
pub mod init;
pub mod landlock;
pub mod mount;
pub mod namespace;
pub mod net;
pub mod ops;
pub mod process;
pub(crate) mod pty;
pub mod raw;
pub mod rlimit;
pub mod rooted;
pub mod seccomp;
pub mod size;
pub mod spawn;
pub mod usernet;
