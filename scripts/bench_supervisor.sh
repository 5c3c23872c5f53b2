#!/usr/bin/env bash
# The Supervisor's figures (issue 18), as a markdown table on stdout:
# spawn latency direct (a single-threaded host) against through the
# supervisor, and jobs per second with 1, 2, 8 and 32 threads calling it
# at once, with how busy all cores were meanwhile.
#
#   scripts/bench_supervisor.sh [JOBS] [-- ARGV...]     (default 500 jobs of /bin/true)
#
# Builds examples/bench_supervisor.rs in release mode first. Run it on an
# otherwise idle machine: other load shows up in every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example bench_supervisor
exec target/release/examples/bench_supervisor "$@"
