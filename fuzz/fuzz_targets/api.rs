//! cargo-fuzz target: random calls to the whole Lua API (every `ns.*`,
//! `ns.net.*`, `ns.spawn`/`ns.run`, `sandbox.*`, and methods of what they
//! return) under plan mode. See `fuzz/driver/api.rs` for what is decoded
//! and what counts as a failure: an error without a message, a change to
//! the fuzzing process, or a panic (libFuzzer reports it as a crash).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../driver/api.rs"]
mod driver;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = driver::run(data) {
        panic!("{v}");
    }
});
