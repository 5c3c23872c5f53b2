//! The values several binding areas share: processes and their pipes,
//! namespace handles and targets, status tables, and the conversions of
//! option values more than one area takes (argv, env, id maps, mount
//! options). Area modules (`process`, `namespace`, `spawn`, `hardening`,
//! `net`, …) depend on these and not on each other, so each can be read,
//! and changed, on its own. The one exception is one-way: `spawn`, the
//! conversion of `ns.spawn`'s table, takes its hardening options through
//! `hardening`'s conversions.

mod namespace;
mod options;
mod pipe;
mod process;

pub(crate) use namespace::{new_handle, propagation, target, target_of, Handle, Target};
pub(crate) use options::{
    argv, argv_of, env_table, from_opt, id_ranges, id_ranges_of, overlay_opts_with, tmpfs_opts,
};
pub(crate) use pipe::Pipe;
pub(crate) use process::child_code_with;
pub(crate) use process::{child_code, output, run_child, signal, stats_table, Process};
