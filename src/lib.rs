//! nsrun: build Linux containers and sandboxes out of the kernel's own
//! parts, from Lua recipes or from Rust.
//!
//! The [`Host`] runs recipes; the [`sys`] layer is usable on its own.

mod bindings;
pub mod error;
mod host;
// The prompt needs rustyline, a dependency only the command line has.
#[cfg(feature = "cli")]
mod repl;
pub mod supervisor;
pub mod sys;

/// The keys `ns.spawn`/`ns.run` take, for tools that generate option
/// tables (the fuzz driver) and so never fall behind a new option.
#[doc(hidden)]
pub const SPAWN_OPTION_KEYS: &[&str] = bindings::spawn::KEYS;

pub use error::{Error, Result};
pub use host::{Host, RunError};
/// The mlua crate nsrun is built on, so embedders use the same version.
pub use mlua;
pub use supervisor::Supervisor;
pub use sys::caps::Caps;
pub use sys::cgroup::{Cgroup, Limits as CgroupLimits, Stats as CgroupStats};
pub use sys::child::Child;
pub use sys::idmap::IdRange;
pub use sys::namespace::{Namespace, Namespaces};
pub use sys::process::ExitStatus;
pub use sys::rlimit::Rlimit;
pub use sys::seccomp::{Action as SeccompAction, Policy as SeccompPolicy};
pub use sys::spawn::{IdMap, JoinTarget, Propagation, Spawn, Stdio};
pub use sys::usernet::{Port, Proto as PortProto, UserNet};
