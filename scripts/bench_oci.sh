#!/usr/bin/env bash
# nsrun as an OCI runtime, side by side with crun and runc (Debian's):
# `RUNTIME run` of one bundle whose process is `true`, and `podman
# --runtime RUNTIME run --rm --network none IMAGE true` for each. Prints
# markdown tables and the issue's two targets (nsrun-oci at most 0.8x crun
# on the direct run; no slower than crun under podman).
#
#   scripts/bench_oci.sh            (as root; NSRUN=path picks the binary,
#                                    else target/release/nsrun is built)
#
# The bundle and the image are made here from Debian's busybox-static;
# podman gets its own configuration and storage in a temporary directory.
# RUNS (default 200) and PODMAN_RUNS (default 30) are the timed rounds.
#
# This host's cgroups are hybrid, and crun refuses to run while the v2 tree
# holds any controller (here hugetlb). So the script runs in a mount
# namespace of its own where each such controller is mounted as a v1
# hierarchy, which moves it off the v2 tree for as long as that mount
# lives (the kernel moves it back once the namespace is gone). Every
# runtime runs in that same namespace. The script is a child subreaper
# too, so the conmons podman leaves are reaped here, not orphaned to a
# PID 1 that does not reap.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPTS=$PWD/scripts

if [ "${1:-}" != --inner ]; then
  [ "$(id -u)" = 0 ] || { echo "bench_oci.sh: run as root" >&2; exit 1; }
  for t in crun runc podman busybox python3 unshare; do
    command -v "$t" >/dev/null || { echo "bench_oci.sh: needs $t (scripts/deps.sh installs it)" >&2; exit 1; }
  done
  if [ -z "${NSRUN:-}" ]; then
    cargo build --release --quiet
    NSRUN=$PWD/target/release/nsrun
  fi
  export NSRUN
  exec python3 - "$0" <<'PY'
import ctypes, os, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("bench_oci.sh: PR_SET_CHILD_SUBREAPER failed")
# unshare execs bash in this same process: bash is the subreaper and reaps.
os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "bash", sys.argv[1], "--inner"])
PY
fi

WORK=$(mktemp -d)
P=()
# What the runtimes and podman keep outside the work directory (their
# state directories, podman's cgroup parent and blob cache): removed at
# the end when this run made them.
MADE=()
for d in /run/crun /run/runc /run/nsrun-oci /run/containers /var/lib/containers; do
  [ -e "$d" ] || MADE+=("$d")
done
for c in /sys/fs/cgroup/*/; do
  [ -e "${c}libpod_parent" ] || MADE+=("${c}libpod_parent")
done
cleanup() {
  exec 2>/dev/null
  [ ${#P[@]} -gt 0 ] && { "${P[@]}" rm --all --force --time 0; "${P[@]}" rmi --all --force; "${P[@]}" system reset --force; } >/dev/null 2>&1 || true
  wait || true
  for d in "${MADE[@]}"; do
    case $d in
      /sys/fs/cgroup/*) rmdir "$d/conmon" "$d" || true ;;
      *) rm -rf "$d" ;;
    esac
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 0755 "$WORK"

# Controllers the v2 tree holds, moved to v1 hierarchies here (see above).
if [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    mkdir -p "$WORK/v1-$c"
    mount -t cgroup -o "$c" none "$WORK/v1-$c"
  done
fi

# The runtimes: nsrun under the name engines call it by.
mkdir "$WORK/bin"
cp "$NSRUN" "$WORK/bin/nsrun"
ln -s nsrun "$WORK/bin/nsrun-oci"
OCI=$WORK/bin/nsrun-oci

# The bundle: busybox-static, `runc spec`'s config (its ociVersion is one
# all three accept), `true` as the process, no terminal.
B=$WORK/bundle
mkdir -p "$B/rootfs"/{bin,proc,dev,sys,tmp,etc}
cp "$(command -v busybox)" "$B/rootfs/bin/busybox"
for c in sh true echo; do ln -s busybox "$B/rootfs/bin/$c"; done
(cd "$B" && runc spec)
python3 - "$B/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY

echo "nsrun: $(basename "$NSRUN") $("$NSRUN" --version 2>/dev/null | head -1); $(crun --version | head -1); $(runc --version | head -1)"
echo

table() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys
rs = json.load(open(sys.argv[1]))["results"]
work = os.environ["WORK"] + "/"
crun = next((r["median"] for r in rs if "crun" in r["command"]), None)
print("| command | median ms | mean ± σ ms | vs crun |")
print("|---|---:|---:|---:|")
for r in rs:
    c = r["command"].replace(work, "")
    ratio = f"{r['median'] / crun:.2f}×" if crun else ""
    print(f"| `{c}` | {r['median']*1e3:.2f} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | {ratio} |")
oci = next((r["median"] for r in rs if "nsrun-oci" in r["command"]), None)
if oci and crun:
    limit = float(sys.argv[2])
    print(f"\ntarget: nsrun-oci / crun = {oci / crun:.2f}× (limit {limit:.2f}×): {'met' if oci / crun <= limit else '**not met**'}")
PY
}

export WORK
cd "$WORK"
printf '### `RUNTIME run` of a bundle (`true`), cgroups and namespaces as `runc spec` asks\n\n'
python3 "$SCRIPTS/interleave.py" --warmup 20 --runs "${RUNS:-200}" --export-json direct.json \
  "crun run -b $B c-crun" "runc run -b $B c-runc" "$OCI run -b $B c-nsrun"
table direct.json 0.8

# podman: its own configuration and storage, the image imported from the
# bundle's root file system.
mkdir -p "$WORK/pm"/{graph,runroot,tmp,engine-tmp,volumes}
cat > "$WORK/pm/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$WORK/pm/runroot"
graphroot = "$WORK/pm/graph"
EOF
cat > "$WORK/pm/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/pm/events.log"
tmp_dir = "$WORK/pm/engine-tmp"
volume_path = "$WORK/pm/volumes"
runtime_supports_json = ["crun", "runc", "nsrun-oci"]
EOF
export CONTAINERS_CONF=$WORK/pm/containers.conf CONTAINERS_STORAGE_CONF=$WORK/pm/storage.conf TMPDIR=$WORK/pm/tmp
P=(podman)
tar -C "$B/rootfs" -cf "$WORK/image.tar" .
podman import "$WORK/image.tar" localhost/nsrun-bench:latest >/dev/null 2>&1
printf '\n### `podman --runtime RUNTIME run --rm --network none IMAGE true` (podman 4.3, conmon, cgroupfs)\n\n'
python3 "$SCRIPTS/interleave.py" --warmup 3 --runs "${PODMAN_RUNS:-30}" --export-json podman.json \
  "podman --runtime /usr/bin/crun run --rm --network none localhost/nsrun-bench true" \
  "podman --runtime $(command -v runc) run --rm --network none localhost/nsrun-bench true" \
  "podman --runtime $OCI run --rm --network none localhost/nsrun-bench true"
table podman.json 1.0
