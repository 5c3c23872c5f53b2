#!/usr/bin/env bash
# Run the test suite, as root (each test runs as root and as uid 65534):
#
#   scripts/test.sh [cargo test options...]
#
# First the tools the tests run (scripts/deps.sh: on Debian as root, the
# missing ones are installed with apt-get; elsewhere it says which are
# missing). Then it checks that the library builds without the
# default feature `cli` (what an embedder builds), runs the doc tests
# with the feature `tokio`, and runs `cargo test` with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

cargo check --quiet --lib --no-default-features
# The optional `tokio` feature's examples (Child::wait_async on a direct
# child); tests/supervisor.rs builds and runs examples/server.rs with it.
cargo test --quiet --doc --features tokio
exec cargo test "$@"
