#!/usr/bin/env bash
# Start-up and memory benchmarks, side by side in one run.
#
#   scripts/bench.sh            (builds nsrun in release mode first)
#
# Needs python3, hyperfine, GNU time, gnuplot and a C compiler for the C
# baseline bench/rawclone.c (apt install hyperfine time lua5.4 gcc
# util-linux bubblewrap gnuplot-nox), and for the musl build that
# scripts/install.sh installs, musl-tools and `rustup target add
# x86_64-unknown-linux-musl`; it writes bench/report.md and bench/report.png.
# Rows whose tool is missing are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPTS=$PWD/scripts

# The builds: the static one the README installs (scripts/install.sh: musl
# where it can, else glibc), the static glibc one, and the dynamically
# linked one a plain `cargo install` makes.
HOST=$(rustc -vV | sed -n 's/^host: //p')
MUSL="$(uname -m)-unknown-linux-musl"
# The report (this output as markdown) and a chart go to bench/ (or $BENCH_OUT).
OUT=${BENCH_OUT:-$PWD/bench}
mkdir -p "$OUT"
exec > >(tee "$OUT/report.md")
echo "# nsrun benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
echo

cargo build --release --quiet
RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" cargo build --release --quiet \
  --target "$HOST" --target-dir target/static
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp target/release/nsrun "$WORK/nsrun-dyn"
cp "target/static/$HOST/release/nsrun" "$WORK/nsrun-glibc"
if command -v musl-gcc >/dev/null && rustup target list --installed 2>/dev/null | grep -qx "$MUSL" \
  && cargo build --release --quiet --target "$MUSL" --target-dir target/musl; then
  cp "target/musl/$MUSL/release/nsrun" "$WORK/nsrun"
  echo "nsrun = static musl build (as scripts/install.sh installs it); nsrun-glibc = static glibc build;"
else
  cp "$WORK/nsrun-glibc" "$WORK/nsrun"
  echo "note: no musl-gcc or no $MUSL target: nsrun = the static glibc build (scripts/install.sh's fallback);"
fi
chmod 0755 "$WORK" "$WORK"/nsrun*
echo "nsrun-dyn = dynamically linked glibc build"

RAW=""
if command -v cc >/dev/null; then
  cc -O2 -o "$WORK/rawclone" bench/rawclone.c && RAW="$WORK/rawclone"
else
  echo "note: no C compiler (cc): rawclone rows skipped"
fi

cat > "$WORK/clone.lua" <<'LUA'
local ns = require "nsrun"
local p = ns.clone("user,mount,pid,uts,ipc,cgroup", function()
  ns.mount(nil, "/", nil, "rec,private")
  ns.mount("proc", "/proc", "proc", "nosuid,nodev,noexec")
end)
return p:wait()
LUA
# spawn.lua N [VARIANT]: N spawns of /bin/true with /proc.
#   (none)  mount_proc = true, as unshare --mount-proc mounts it;
#   deny    and setgroups = "deny", as unshare -r does: as root, nsrun keeps
#           setgroups allowed by default (API.md), so the parent writes the
#           gid map while the child waits; with "deny" the child maps itself;
#   setup   the mount in a Lua setup function run in the child instead.
cat > "$WORK/spawn.lua" <<'LUA'
local ns = require "nsrun"
local n, variant = tonumber(arg[1]) or 1, arg[2]
local opts = {argv = {"/bin/true"}, namespaces = "user,mount,pid,uts,ipc,cgroup", init = false}
if variant == "setup" then
  opts.setup = function() ns.mount("proc", "/proc", "proc", "nosuid,nodev,noexec") end
else
  opts.mount_proc = true
  if variant == "deny" then opts.setgroups = "deny" end
end
for _ = 1, n do
  local st = ns.spawn(opts):wait()
  if not st.success then error("spawn failed: " .. st.code) end
end
LUA
cat > "$WORK/sandbox.lua" <<'LUA'
local sandbox = require "nsrun.sandbox"
return sandbox.spawn{argv = {"/bin/true"}, binds = {{"/", "/", ro = true}},
                     proc = "/proc", dev = "/dev"}:wait()
LUA
# The same with only what the bwrap command line below does: nsrun's
# defaults add the seccomp preset, the TIOCSTI guard, a session keyring and
# the /proc masks, which bwrap has no default for.
cat > "$WORK/sandbox-same.lua" <<'LUA'
local sandbox = require "nsrun.sandbox"
return sandbox.spawn{argv = {"/bin/true"}, binds = {{"/", "/", ro = true}},
                     proc = "/proc", dev = "/dev",
                     seccomp = false, tty_guard = false, new_keyring = false, unmask = true}:wait()
LUA
chmod 0644 "$WORK/clone.lua" "$WORK/spawn.lua" "$WORK/sandbox.lua" "$WORK/sandbox-same.lua"

AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# The report names the copies in $WORK by their file names: no path of the
# machine it ran on.
export WORK
cd "$WORK"

section() { printf '\n## %s\n\n' "$1"; }

# bench NAME CMD...: interleave.py (every command once per round, in turn,
# so load drift on a VM hits all alike), then a table of medians (the
# targets are about medians; means on a VM carry outliers) with each row's
# ratio to rawclone and to unshare (run as the same user) where those rows exist.
bench() {
  local name=$1; shift
  python3 "$SCRIPTS/interleave.py" --warmup 20 --runs "${RUNS:-300}" --export-json "$name.json" "$@"
  python3 - "$name.json" <<'PY'
import json, os, sys
rs = json.load(open(sys.argv[1]))["results"]
def user(c): return "setpriv" in c
ref = {}
for r in rs:
    for key in ("rawclone", "unshare", "lua5.4"):
        if key in r["command"] and not (key == "unshare" and "bwrap" in r["command"]):
            ref[(key, user(r["command"]))] = r["median"]
print("| command | median ms | mean ± σ ms | vs rawclone | vs unshare | vs lua5.4 |")
print("|---|---:|---:|---:|---:|---:|")
for r in rs:
    c, m = r["command"], r["median"]
    cols = []
    for key in ("rawclone", "unshare", "lua5.4"):
        b = ref.get((key, user(c)))
        cols.append(f"{m / b:.2f}×" if b else "")
    name = c.replace("setpriv --reuid=65534 --regid=65534 --clear-groups ", "[uid 65534] ")
    name = name.replace(os.environ["WORK"] + "/", "")
    print(f"| `{name}` | {m*1e3:.2f} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | " + " | ".join(cols) + " |")
PY
}

section "start-up: nsrun -e '' vs lua5.4 -e ''"
cmds=("$WORK/nsrun -e ''" "$WORK/nsrun-glibc -e ''" "$WORK/nsrun-dyn -e ''")
command -v lua5.4 >/dev/null && cmds+=("lua5.4 -e ''") || echo "note: lua5.4 missing"
bench startup "${cmds[@]}"

section "clone into user,mount,pid,uts,ipc,cgroup + /proc, as root and uid 65534"
cmds=("$WORK/nsrun clone.lua" "${AS_USER[*]} $WORK/nsrun clone.lua")
[ -n "$RAW" ] && cmds+=("$RAW UmpuiCP" "${AS_USER[*]} $RAW UmpuiCP")
cmds+=("unshare -Urmpuif --mount-proc /bin/true" "${AS_USER[*]} unshare -Urmpuif --mount-proc /bin/true")
bench clone "${cmds[@]}"

section "ns.spawn /bin/true in user,mount,pid,uts,ipc,cgroup + /proc (init = false)"
echo "spawn.lua 1: mount_proc = true (as unshare --mount-proc); \"deny\": and setgroups = \"deny\" (as unshare -r);"
echo "\"setup\": the mount in a Lua setup function"
echo
cmds=("$WORK/nsrun spawn.lua 1" "${AS_USER[*]} $WORK/nsrun spawn.lua 1" "$WORK/nsrun spawn.lua 1 deny"
      "$WORK/nsrun spawn.lua 1 setup" "${AS_USER[*]} $WORK/nsrun spawn.lua 1 setup"
      "$WORK/nsrun-glibc spawn.lua 1" "${AS_USER[*]} $WORK/nsrun-glibc spawn.lua 1" "$WORK/nsrun-dyn spawn.lua 1")
[ -n "$RAW" ] && cmds+=("$RAW UmpuiCP" "${AS_USER[*]} $RAW UmpuiCP")
cmds+=("unshare -Urmpuif --mount-proc /bin/true" "${AS_USER[*]} unshare -Urmpuif --mount-proc /bin/true")
bench spawn "${cmds[@]}"

section "sandbox.run /bin/true (host ro, /proc, /dev, all namespaces) vs bwrap, as uid 65534"
if command -v bwrap >/dev/null; then
  # For scale, the C floor: rawclone into the same seven namespaces with
  # /proc, and no other filesystem work (no pivot, no read-only root, no /dev, no init).
  floor=()
  [ -n "$RAW" ] && floor=("${AS_USER[*]} $RAW UmpuinCP")
  bench sandbox "${AS_USER[*]} $WORK/nsrun sandbox-same.lua" "${AS_USER[*]} $WORK/nsrun sandbox.lua" \
    "${AS_USER[*]} $WORK/nsrun-glibc sandbox-same.lua" \
    "${AS_USER[*]} bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /bin/true" \
    "${AS_USER[*]} $WORK/nsrun bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /bin/true" \
    "bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /bin/true" \
    "$WORK/nsrun bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /bin/true" "${floor[@]}"
  python3 - sandbox.json <<'PY'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
# (bwrap itself: "bwrap --" without "nsrun"; uid 65534 unless said.)
def m(key, u=True):
    return next(x["median"] for x in rs if key in x["command"] and ("setpriv" in x["command"]) == u
                and (key != "bwrap --" or "nsrun" not in x["command"]))
mu = m
for who, u in (("uid 65534", True), ("root", False)):
    print(f"nsrun bwrap / bwrap (median), the same command line, {who}: {mu('nsrun bwrap', u) / mu('bwrap --', u):.2f}×")
print(f"\nnsrun / bwrap (median), the same lock-down: {m('nsrun sandbox-same') / m('bwrap --'):.2f}×")
print(f"nsrun / bwrap (median), nsrun's defaults (+ seccomp preset, TIOCSTI guard, keyring, /proc masks): {m('nsrun sandbox.lua') / m('bwrap --'):.2f}×")
if any("rawclone" in x["command"] for x in rs):
    print(f"C floor (rawclone UmpuinCP) / bwrap: {m('rawclone') / m('bwrap --'):.2f}×")
PY
else
  echo "note: bwrap missing: row skipped"
fi

section "500 spawns in one recipe (per spawn) vs one whole rawclone run"
hyperfine -N --warmup 1 --runs 5 --style none --export-json loop.json \
  "$WORK/nsrun spawn.lua 500" "${AS_USER[*]} $WORK/nsrun spawn.lua 500" >/dev/null
python3 - loop.json clone.json <<'PY'
import json, sys
raw = {("setpriv" in r["command"]): r["median"] for r in json.load(open(sys.argv[2]))["results"] if "rawclone" in r["command"]}
print("| loop | median per spawn ms | vs one whole rawclone run (same user) |")
print("|---|---:|---:|")
for r in json.load(open(sys.argv[1]))["results"]:
    per = r["median"] / 500
    b = raw.get("setpriv" in r["command"])
    who = "uid 65534" if "setpriv" in r["command"] else "root"
    print(f"| 500 spawns, {who} | {per*1e3:.3f} | " + (f"{per / b:.2f}×" if b else "") + " |")
PY

section "peak RSS (KiB, GNU time)"
if [ -x /usr/bin/time ]; then
  rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1; }
  printf '| command | max RSS KiB |\n|---|---|\n'
  printf '| nsrun -e %s | %s |\n' "''" "$(rss "$WORK/nsrun" -e '')"
  printf '| nsrun-dyn -e %s | %s |\n' "''" "$(rss "$WORK/nsrun-dyn" -e '')"
  printf '| nsrun-dyn spawn.lua (root) | %s |\n' "$(rss "$WORK/nsrun-dyn" spawn.lua)"
  printf '| nsrun clone.lua (root) | %s |\n' "$(rss "$WORK/nsrun" clone.lua)"
  printf '| nsrun clone.lua (uid 65534) | %s |\n' "$(rss "${AS_USER[@]}" "$WORK/nsrun" clone.lua)"
  RSS_SPAWN=$(rss "$WORK/nsrun" spawn.lua)
  RSS_SPAWN_USER=$(rss "${AS_USER[@]}" "$WORK/nsrun" spawn.lua)
  RSS_LOOP=$(rss "$WORK/nsrun" spawn.lua 500)
  export RSS_SPAWN RSS_SPAWN_USER RSS_LOOP
  printf '| nsrun spawn.lua (root) | %s |\n' "$RSS_SPAWN"
  printf '| nsrun spawn.lua (uid 65534) | %s |\n' "$RSS_SPAWN_USER"
  printf '| nsrun spawn.lua 500 (root) | %s |\n' "$RSS_LOOP"
  printf '| nsrun-glibc spawn.lua 500 (root) | %s |\n' "$(rss "$WORK/nsrun-glibc" spawn.lua 500)"
  command -v lua5.4 >/dev/null && printf '| lua5.4 -e %s | %s |\n' "''" "$(rss lua5.4 -e '')"
  [ -n "$RAW" ] && printf '| rawclone UmpuiCP | %s |\n' "$(rss "$RAW" UmpuiCP)"
else
  echo "note: GNU time (/usr/bin/time) missing: RSS rows skipped"
fi

section "user-mode network (net = \"pasta\" / \"slirp4netns\"): iperf3 and start-up, through nsrun and by hand"
if [ "$(id -u)" = 0 ] && command -v iperf3 >/dev/null; then
  # Its own network namespaces and veth pair; no real network is touched.
  NSRUN="$WORK/nsrun" "$SCRIPTS/bench_usernet.sh" || echo "note: bench_usernet.sh failed"
else
  echo "note: needs root and iperf3 (apt install iperf3 passt slirp4netns): rows skipped"
fi

section "the Supervisor (issue 18): spawn latency direct vs through it, jobs/s for 1-32 callers"
"$SCRIPTS/bench_supervisor.sh" 2000 || echo "note: bench_supervisor.sh failed"

section "an OCI runtime (issue 17): nsrun-oci vs crun and runc, direct and under podman"
if [ "$(id -u)" = 0 ] && command -v crun >/dev/null && command -v runc >/dev/null && command -v podman >/dev/null; then
  NSRUN="$WORK/nsrun" "$SCRIPTS/bench_oci.sh" || echo "note: bench_oci.sh failed"
else
  echo "note: needs root, crun, runc and podman (scripts/deps.sh installs them): rows skipped"
fi

section "targets (issues 2, 3, 4), from the tables above"
# Every target in one table: value, limit, met or not.
python3 - <<'PY'
import json, os
def results(name):
    try:
        return json.load(open(name + ".json"))["results"]
    except OSError:
        return []
def med(name, pred):
    return next((r["median"] for r in results(name) if pred(r["command"])), None)
user = lambda c: "setpriv" in c
rows = []
def row(what, value, limit, fmt="{:.2f}×"):
    if value is None:
        rows.append(f"| {what} | (not measured) | {fmt.format(limit)} | |")
    else:
        rows.append(f"| {what} | {fmt.format(value)} | ≤ {fmt.format(limit)} | {'yes' if value <= limit else '**no**'} |")
ratio = lambda a, b: a / b if a and b else None
row("`nsrun -e ''` vs `lua5.4 -e ''`",
    ratio(med("startup", lambda c: "nsrun -e" in c), med("startup", lambda c: c.startswith("lua5.4"))), 2.0)
for who, u in (("root", False), ("uid 65534", True)):
    n = med("spawn", lambda c: c.endswith("spawn.lua 1") and user(c) == u)
    row(f"spawn, {who}: vs rawclone", ratio(n, med("spawn", lambda c: "rawclone" in c and user(c) == u)), 1.3)
    row(f"spawn, {who}: vs unshare", ratio(n, med("spawn", lambda c: "unshare" in c and user(c) == u)), 1.0)
row("spawn, root, setgroups = deny: vs unshare",
    ratio(med("spawn", lambda c: c.endswith("spawn.lua 1 deny")), med("spawn", lambda c: "unshare" in c and not user(c))), 1.0)
for r in results("loop"):
    u = user(r["command"])
    row(f"500 spawns, {'uid 65534' if u else 'root'}: per spawn vs one rawclone run",
        ratio(r["median"] / 500, med("spawn", lambda c: "rawclone" in c and user(c) == u)), 1.0)
for who, u in (("uid 65534", True), ("root", False)):
    row(f"`nsrun bwrap` vs `bwrap`, the same command line ({who})",
        ratio(med("sandbox", lambda c: "nsrun bwrap" in c and user(c) == u),
              med("sandbox", lambda c: "bwrap --" in c and "nsrun" not in c and user(c) == u)), 0.7)
row("sandbox.run vs bwrap, the same lock-down (uid 65534)",
    ratio(med("sandbox", lambda c: "nsrun sandbox-same" in c),
          med("sandbox", lambda c: "bwrap --" in c and "nsrun" not in c and user(c))), 0.8)
for k, what in (("RSS_SPAWN", "peak RSS, spawn (root)"), ("RSS_SPAWN_USER", "peak RSS, spawn (uid 65534)"),
                ("RSS_LOOP", "peak RSS, 500 spawns (root)")):
    v = os.environ.get(k)
    row(what, int(v) if v else None, 4096, "{} KiB")
print("| target | measured | limit | met |")
print("|---|---:|---:|---|")
print("\n".join(rows))
PY

section "chart"
# One bar per command, median milliseconds, grouped by comparison.
python3 - "$OUT/chart.dat" startup.json clone.json spawn.json sandbox.json <<'PY'
import json, os, sys
out = open(sys.argv[1], "w")
for f in sys.argv[2:]:
    if not os.path.exists(f):
        continue
    for r in json.load(open(f))["results"]:
        c = r["command"].replace("setpriv --reuid=65534 --regid=65534 --clear-groups ", "[65534] ")
        c = c.replace(os.environ["WORK"] + "/", "")
        c = c.replace("--unshare-all --ro-bind / / --proc /proc --dev /dev ", "")
        out.write('"%s: %s" %.3f\n' % (f[:-5], c[:48], r["median"] * 1e3))
PY
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 1200,700 font ",9" noenhanced
set output "$OUT/report.png"
set title "nsrun start-up, median of many runs (ms; lower is better)"
set style fill solid 0.7
set boxwidth 0.7
set xtics rotate by -50 scale 0
set ylabel "ms"
set yrange [0:*]
set rmargin 14
set bmargin 16
set grid ytics
unset key
plot "$OUT/chart.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
     "" using 0:2:(sprintf("%.2f", \$2)) with labels offset 0,0.6
GP
  echo "chart: $(realpath --relative-to="$SCRIPTS/.." "$OUT/report.png")"
else
  echo "note: gnuplot missing (apt install gnuplot-nox): no chart"
fi
