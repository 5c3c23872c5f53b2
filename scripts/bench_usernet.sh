#!/usr/bin/env bash
# The user-mode network (net = "pasta" / "slirp4netns"), measured: TCP
# throughput from the sandbox to another host and back with iperf3, through
# nsrun and with the same tool started by hand, and the start-up cost of
# net = "pasta". Prints a markdown table.
#
#   scripts/bench_usernet.sh            (as root; builds nsrun in release mode)
#
# Touches no real network: the "other host" is a network namespace of the
# script's own joined by a veth pair to a second one, where nsrun and the
# by-hand runs happen. Needs iperf3, passt (pasta) and slirp4netns (apt
# install iperf3 passt slirp4netns); a tool that is missing gets a note
# instead of its rows. SECONDS_PER_RUN (default 5) is iperf3's -t, REPS
# (default 3) how many runs of each (alternating nsrun and by hand; the
# median is shown), STARTS (default 20) the number of starts timed.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${SECONDS_PER_RUN:-5}
STARTS=${STARTS:-20}
REPS=${REPS:-3}
[ "$(id -u)" = 0 ] || { echo "bench_usernet.sh: run as root (it makes network namespaces)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "bench_usernet.sh: needs iperf3 (apt install iperf3)" >&2; exit 1; }

NSRUN=${NSRUN:-}
if [ -z "$NSRUN" ]; then
  cargo build --release --quiet
  NSRUN=$PWD/target/release/nsrun
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  # (bash reports a job killed by a signal on its own stderr.)
  exec 2>/dev/null
  for p in "${PIDS[@]}"; do kill -9 "$p" || true; done
  wait || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Two network namespaces held by sleeping processes: "up" (where nsrun runs)
# and "peer" (another host, 10.77.0.3), joined by a veth pair.
# (Started here, not in $(…): the pids must reach PIDS for the clean-up.)
unshare --net sleep 100000 </dev/null >/dev/null 2>&1 & UP=$!; PIDS+=($UP)
unshare --net sleep 100000 </dev/null >/dev/null 2>&1 & PEER=$!; PIDS+=($PEER)
sleep 0.2
in_up() { nsenter --net=/proc/$UP/ns/net "$@"; }
in_peer() { nsenter --net=/proc/$PEER/ns/net "$@"; }
for p in $UP $PEER; do
  [ "$(readlink /proc/$p/ns/net)" != "$(readlink /proc/self/ns/net)" ] || { echo "no new netns" >&2; exit 1; }
done
in_up ip link add nsr-a type veth peer name nsr-b netns /proc/$PEER/ns/net
in_up sh -c 'ip link set lo up; ip addr add 10.77.0.1/24 dev nsr-a; ip link set nsr-a up; ip route add default via 10.77.0.2'
in_peer sh -c 'ip link set lo up; ip addr add 10.77.0.2/24 dev nsr-b; ip addr add 10.77.0.3/24 dev nsr-b; ip link set nsr-b up'
# nsenter execs iperf3 itself: $! is the server.
nsenter --net=/proc/$PEER/ns/net iperf3 -s -B 10.77.0.3 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.3

# Gbit/s of an iperf3 JSON report (what the receiver got).
gbits() { python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null \
  || sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | tail -1 | awk '{printf "%.2f", $1/1e9}'; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

cat > "$WORK/iperf.lua" <<'LUA'
local ns = require "nsrun"
local net, t, rev = arg[1], arg[2], arg[3]
local argv = {"iperf3", "-J", "-c", "10.77.0.3", "-t", t}
if rev == "R" then argv[#argv + 1] = "-R" end
local r = ns.run{argv = argv, namespaces = {"user", "net"}, net = net}
io.write(r.stdout)
os.exit(r.code)
LUA

# The tool by hand: a namespace holder, the tool for it, iperf3 in it.
by_hand() {
  local tool=$1 rev=$2
  in_up bash -s "$tool" "$T" "$rev" <<'SH'
tool=$1 t=$2 rev=$3
unshare --user --map-root-user --net sleep 100000 & H=$!
sleep 0.1
ready=$(mktemp -u); mkfifo "$ready"
case $tool in
  pasta) pasta --config-net -f -q --runas 0 --no-map-gw -t none -u none -T none -U none \
           --pid "$ready" --netns /proc/$H/ns/net --userns /proc/$H/ns/user 2>/dev/null & P=$! ;;
  slirp4netns) slirp4netns --configure --mtu=65520 --disable-host-loopback --ready-fd=4 \
           --netns-type=path --userns-path=/proc/$H/ns/user /proc/$H/ns/net tap0 4>"$ready" 2>/dev/null & P=$! ;;
esac
head -c1 "$ready" >/dev/null; rm -f "$ready"
nsenter -t $H -U -n --preserve-credentials iperf3 -J -c 10.77.0.3 -t "$t" ${rev:+-R}
kill $P $H; wait 2>/dev/null
SH
}

echo "# User-mode network ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
echo
echo "iperf3 -t $T, TCP, sandbox to another host (a veth away) and back, Gbit/s as received, median of $REPS."
echo
echo "| tool | direction | through nsrun | by hand |"
echo "|---|---|---|---|"
for tool in pasta slirp4netns; do
  if ! command -v $tool >/dev/null; then
    echo "| $tool | | not installed | |"
    continue
  fi
  for dir in out back; do
    rev=""; [ $dir = back ] && rev=R
    as=() bs=()
    for _ in $(seq "$REPS"); do
      as+=("$(in_up "$NSRUN" "$WORK/iperf.lua" $tool "$T" "$rev" | gbits)")
      bs+=("$(by_hand $tool "$rev" | gbits)")
    done
    a=$(median "${as[@]}") b=$(median "${bs[@]}")
    label="sandbox → host"; [ $dir = back ] && label="host → sandbox"
    echo "| $tool | $label | $a | $b |"
  done
done

# Start-up: `true` in a new user+net namespace, without and with a tool.
cat > "$WORK/start.lua" <<'LUA'
local ns = require "nsrun"
local net, n = arg[1], tonumber(arg[2])
local opts = {argv = {"true"}, namespaces = {"user", "net"}, net = net ~= "none" and net or nil}
for _ = 1, n do assert(ns.run(opts).code == 0) end
LUA
ms() { # mean wall-clock ms of one start, over $STARTS in one nsrun
  local s e
  s=$(date +%s%N); in_up "$NSRUN" "$WORK/start.lua" "$1" "$STARTS"; e=$(date +%s%N)
  awk -v d=$((e - s)) -v n="$STARTS" 'BEGIN { printf "%.1f", d / n / 1e6 }'
}
# By hand: a holder, the tool for it until ready, \`true\` in it, the tool
# killed and reaped, the holder too; $STARTS times.
hand_ms() {
  local s e
  s=$(date +%s%N)
  in_up bash -s "$1" "$STARTS" <<'SH'
tool=$1 n=$2
for _ in $(seq "$n"); do
  unshare --user --map-root-user --net sleep 100000 & H=$!
  until [ "$(readlink /proc/$H/ns/net)" != "$(readlink /proc/self/ns/net)" ] \
    && [ "$(readlink /proc/$H/ns/user)" != "$(readlink /proc/self/ns/user)" ]; do :; done
  ready=$(mktemp -u); mkfifo "$ready"
  case $tool in
    pasta) pasta --config-net -f -q --runas 0 --no-map-gw -t none -u none -T none -U none \
             --pid "$ready" --netns /proc/$H/ns/net --userns /proc/$H/ns/user 2>/dev/null & P=$! ;;
    slirp4netns) slirp4netns --configure --mtu=65520 --disable-host-loopback --ready-fd=4 \
             --netns-type=path --userns-path=/proc/$H/ns/user /proc/$H/ns/net tap0 4>"$ready" 2>/dev/null & P=$! ;;
  esac
  head -c1 "$ready" >/dev/null; rm -f "$ready"
  nsenter -t $H -U -n --preserve-credentials true
  kill -9 $P $H; wait $P $H 2>/dev/null
done
SH
  e=$(date +%s%N)
  awk -v d=$((e - s)) -v n="$STARTS" 'BEGIN { printf "%.1f", d / n / 1e6 }'
}
echo
echo "Start-up: \`ns.run{argv = {\"true\"}, namespaces = {\"user\", \"net\"}, net = …}\`, mean of $STARTS in one nsrun, ms."
echo
echo "| net | through nsrun | the tool by hand |"
echo "|---|---|---|"
echo "| (none) | $(ms none) | |"
for tool in pasta slirp4netns; do
  command -v $tool >/dev/null && echo "| $tool | $(ms $tool) | $(hand_ms $tool) |"
done
if command -v podman >/dev/null; then
  echo
  echo "podman is present: compare \`podman run --rm --network pasta IMAGE true\` by hand (an image is needed)."
else
  echo
  echo "podman is not installed: no podman --network pasta row."
fi
