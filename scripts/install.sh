#!/usr/bin/env bash
# Build and install nsrun as a static binary (cargo install, into ~/.cargo/bin).
#
#   scripts/install.sh [cargo install options...]
#
# --locked: the crate versions are Cargo.lock's, the ones the tests ran
# with (cargo install otherwise resolves the newest compatible ones).
#
# It links against musl when it can: that needs the Rust target
# <arch>-unknown-linux-musl (added here with rustup when missing) and
# musl-gcc for the bundled Lua (Debian: apt install musl-tools). glibc's
# start-up asks the CPU for its cache sizes some 60 times with cpuid, and on
# a VM every cpuid traps to the hypervisor: 0.7 ms of every nsrun start on
# the machine the benchmarks ran on; musl's start-up asks nothing. Without
# either, it builds a static glibc binary, says so, and that works the same.
set -euo pipefail
cd "$(dirname "$0")/.."

musl="$(uname -m)-unknown-linux-musl"
have_musl_target() {
  rustup target list --installed 2>/dev/null | grep -qx "$musl" && return 0
  command -v rustup >/dev/null || return 1
  echo "install.sh: adding the Rust target $musl" >&2
  timeout 300 rustup target add "$musl" >&2
}

# Where cargo install puts the binary: --root DIR, else CARGO_INSTALL_ROOT,
# else CARGO_HOME, else ~/.cargo.
bindir="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin"
prev=""
for a in "$@"; do
  case "$a" in --root=*) bindir="${a#--root=}/bin" ;; esac
  [ "$prev" = "--root" ] && bindir="$a/bin"
  prev=$a
done

# nsrun-oci: the OCI runtime's name (nsrun dispatches on it), since engines
# take a runtime as the path to one binary. (A `bwrap` link would shadow
# bubblewrap: make it by hand where that is wanted.)
link_oci() {
  ln -sf nsrun "$bindir/nsrun-oci"
  echo "install.sh: $bindir/nsrun-oci -> nsrun" >&2
}

if command -v musl-gcc >/dev/null && have_musl_target; then
  echo "install.sh: static musl build ($musl)" >&2
  cargo install --locked --path . --target "$musl" "$@"
  link_oci
  exit 0
fi

if ! command -v musl-gcc >/dev/null; then
  why="musl-gcc is missing (Debian: apt install musl-tools)"
else
  why="the Rust target $musl could not be added"
fi
host=$(rustc -vV | sed -n 's/^host: //p')
echo "install.sh: $why: static glibc build ($host), which starts ~0.7 ms slower on a VM" >&2
# Packed relocations: the static PIE relocates itself reading 2 KiB, not
# 128 (binutils 2.38 and glibc 2.36 or later).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
  cargo install --locked --path . --target "$host" "$@"
link_oci
