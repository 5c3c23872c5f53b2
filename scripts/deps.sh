#!/usr/bin/env bash
# Install the tools the tests run that this machine lacks: on Debian as
# root with apt-get (quietly; a second run finds them all and does
# nothing); elsewhere it names what is missing. scripts/test.sh and
# .ci/run both run it.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool:package. setpriv runs every test as uid 65534; newuidmap/newgidmap
# (setuid) map ids other than one's own; ip is what the networking tests
# check nsrun against; uptime reads the time namespace's boot time; perl
# drives the escape tests; strace watches that --plan performs nothing;
# cc (and the C library's headers) builds the
# bundled Lua; pasta and slirp4netns are what net = "pasta" runs, iperf3
# what scripts/bench_usernet.sh measures them with; busybox(-static) is the
# root file system of the OCI tests' bundles and images; podman (with conmon),
# containerd (ctr) are the engines that drive nsrun-oci in tests/oci_podman.rs
# and tests/oci_containerd.rs, crun and runc what scripts/bench.sh compares
# it with.
tools="setpriv:util-linux unshare:util-linux nsenter:util-linux mount:mount umount:mount
  newuidmap:uidmap newgidmap:uidmap ip:iproute2 uptime:procps perl:perl-base strace:strace
  cc:gcc pasta:passt slirp4netns:slirp4netns iperf3:iperf3 busybox:busybox-static
  podman:podman conmon:conmon containerd:containerd ctr:containerd crun:crun runc:runc"

# The PATH the tests give nsrun, after the caller's.
search="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
missing="" packages=""
for t in $tools; do
  tool=${t%%:*} pkg=${t#*:}
  if ! PATH=$search command -v "$tool" >/dev/null; then
    missing="$missing $tool"
    case " $packages " in *" $pkg "*) ;; *) packages="$packages $pkg" ;; esac
  fi
done
# gcc alone, without its recommendations, cannot link a C program.
case " $packages " in *" gcc "*) packages="$packages libc6-dev" ;; esac

if [ -n "$packages" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
    echo "test.sh: installing$packages (apt-get) for$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "test.sh: missing$missing (Debian packages:$packages); tests that run them may fail" >&2
  fi
fi

# Unprivileged tests run the binary as uid 65534: let it through the
# sysctls that gate user namespaces where the kernel has them.
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/kernel/unprivileged_userns_clone ]; then
  echo 1 > /proc/sys/kernel/unprivileged_userns_clone
fi

# Machine set-up udev does on a desktop (Debian's rule makes it 0666):
# pasta and slirp4netns open /dev/net/tun as the unprivileged test user too.
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
  chmod 0666 /dev/net/tun
fi
