# The escape battery's attack programs (driven by tests/escape.rs through
# tests/recipes/escape.lua). Plain perl-base: raw system calls through
# syscall(), no compiled helpers.
#
#   perl attacks.pl ATTEMPT [control]
#
# prints one line `VERDICT ATTEMPT worked|stopped|cannot DETAIL` and exits
#   0  the attack WORKED (the way out was open),
#   1  it was stopped,
#   2  it cannot run here (the kernel lacks what it needs; DETAIL says what),
#   4  the attempt itself broke (a bug in the test, not a verdict).
# `status.forge` is judged by the exit status nsrun reports instead: it
# exits 3 whatever it did.
#
# With `control`, the same method is aimed where it must work: at a process
# the program itself starts (PID 1 attempts), at a file it opened itself
# (fds), or simply run in a configuration without the lock-down (the
# recipe chooses which).
#
# Never harmful, even when a lock-down is missing: /proc/1/mem, /proc/1/exe
# and sysfs files are only opened, never written; a block device is only
# made (and removed at once) in a scratch directory, and a disk only opened
# read-only; the hostname is written only in a uts namespace that is not the
# host's; a ptrace attach is undone at once.
#
# The environment (set by the recipe) says where things are:
#   ESC_RO      a read-only bind of a host directory
#   ESC_TMP     a writable scratch directory
#   ESC_MASKED  a path a tmpfs masks (a file "under-mask" lies below it)
#   ESC_MARKER  a host-only file (absolute host path), never bound
#   ESC_NSRUN   nsrun's host pid
#   ESC_ABSTRACT  an abstract unix socket listening on the host
#   ESC_HOST_KEYRING  the host's session keyring id (keyring.session)
#   ESC_HOST_UTS  the host's uts namespace inode (procsys.hostname)
#   ESC_SUID    a setuid-root copy of cat
#   ESC_DEV     where mknod is tried
#   ESC_DISK    a host disk (opened read-only)
#   ESC_KEEP    fds the sandbox was asked to keep (comma list)
#   ESC_INJECT  the text TIOCSTI tries to push

use strict;
use warnings;
no warnings "portable";    # 64-bit addresses in /proc/PID/maps
use POSIX ();
use Fcntl qw(O_RDONLY O_WRONLY O_RDWR);
use Errno ();

$| = 1;

my ($ATTEMPT, $MODE) = @ARGV;
$MODE //= "attack";
my $CONTROL = $MODE eq "control";
die "usage: attacks.pl ATTEMPT [control]\n" unless defined $ATTEMPT;

my $SECRET_RE = qr/NSRUNSECRET-[0-9a-f]{32}/;

# x86_64 system call numbers and constants.
my %NR = (
    mknod => 133, ptrace => 101, mount => 165, umount2 => 166, keyctl => 250,
    unshare => 272, io_uring_setup => 425, open_tree => 428, fsopen => 430,
    fspick => 433, mount_setattr => 442,
);
my $AT_FDCWD = -100;
my $AT_RECURSIVE = 0x8000;
my $OPEN_TREE_CLONE = 1;
my $MOUNT_ATTR_RDONLY = 1;
my $MS_REMOUNT = 32;
my $MS_BIND = 4096;
my $CLONE_NEWUSER = 0x10000000;
my $PTRACE_ATTACH = 16;
my $PTRACE_DETACH = 17;
my $WALL = 0x40000000;
my $TIOCSTI = 0x5412;

sub verdict {
    my ($code, $detail) = @_;
    my $word = { 0 => "worked", 1 => "stopped", 2 => "cannot", 4 => "broken" }->{$code};
    $detail =~ s/\s+/ /g;
    $detail = substr($detail, 0, 300) . "..." if length $detail > 300;
    print "VERDICT $ATTEMPT $word $detail\n";
    exit $code;
}
sub worked  { verdict(0, $_[0]) }
sub stopped { verdict(1, $_[0]) }
sub cannot  { verdict(2, $_[0]) }
sub broken  { verdict(4, $_[0]) }

# An errno as its name: "EPERM".
sub ename {
    my $n = 0 + $!;
    for my $name (sort keys %!) { return $name if $!{$name} }
    return "errno $n";
}

sub env { my $v = $ENV{ $_[0] }; defined $v or broken("$_[0] is not set"); $v }

sub slurp {
    my ($path) = @_;
    open(my $f, "<", $path) or return (undef, ename());
    binmode $f;
    local $/;
    my $s = <$f>;
    return (defined $s ? $s : "", undef);
}

# ---------------------------------------------------------------------------
# The target of the PID 1 attempts: PID 1, or in the control a child the
# program starts itself, holding a token in its environment and
# "recipe.lua" on its command line, as the init would if it leaked them.

my $CONTROL_TOKEN = "NSRUNSECRET-" . join("", map { sprintf "%x", int(rand(16)) } 1 .. 32);
my @children;
END { local $?; kill 9, @children if @children; waitpid($_, 0) for @children; }

sub spawn_target {
    my $pid = fork // broken("fork: $!");
    if ($pid == 0) {
        $ENV{NSRUN_CONTROL_SECRET} = $CONTROL_TOKEN;
        exec { "perl" } "perl", "-e", "sleep 30", "recipe.lua" or POSIX::_exit(127);
    }
    push @children, $pid;
    # Until it runs the exec'd program.
    for (1 .. 500) {
        my ($c) = slurp("/proc/$pid/cmdline");
        return $pid if defined $c && $c =~ /recipe\.lua/;
        select(undef, undef, undef, 0.01);
    }
    broken("the control child did not start");
}

sub target { $CONTROL ? spawn_target() : 1 }

# Scan every readable mapping of PID's memory for tokens.
sub scan_memory {
    my ($pid) = @_;
    open(my $maps, "<", "/proc/$pid/maps") or return (undef, "maps: " . ename());
    my @ranges;
    while (<$maps>) {
        my ($lo, $hi, $perm, $name) = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/ or next;
        next unless substr($perm, 0, 1) eq "r";
        next if $name =~ /^\[(vvar|vvar_vclock|vsyscall)\]$/;
        push @ranges, [hex $lo, hex $hi];
    }
    sysopen(my $mem, "/proc/$pid/mem", O_RDONLY) or return (undef, "mem: " . ename());
    my (%found, $read, $errors);
    for my $r (@ranges) {
        my ($lo, $hi) = @$r;
        next if $hi - $lo > 512 * 1024 * 1024;
        my $tail = "";
        for (my $at = $lo; $at < $hi; $at += 1 << 20) {
            my $len = $hi - $at < (1 << 20) ? $hi - $at : 1 << 20;
            sysseek($mem, $at, 0) or do { $errors++; last };
            my $n = sysread($mem, my $buf, $len);
            if (!defined $n || $n <= 0) { $errors++; last }
            $read += $n;
            my $s = $tail . $buf;
            $found{$1} = 1 while $s =~ /($SECRET_RE)/g;
            $tail = substr($s, -64);
        }
    }
    return ([sort keys %found], "read $read bytes of " . scalar(@ranges) . " ranges");
}

my %ATTEMPTS;

# 1. PID 1 ------------------------------------------------------------------

$ATTEMPTS{"pid1.mem_write"} = sub {
    my $pid = target();
    # Opened read-write and closed: nothing is ever written.
    if (sysopen(my $m, "/proc/$pid/mem", O_RDWR)) { close $m; worked("opened /proc/$pid/mem read-write") }
    stopped("open /proc/$pid/mem O_RDWR: " . ename());
};

$ATTEMPTS{"pid1.mem_secret"} = sub {
    my $pid = target();
    my ($found, $how) = scan_memory($pid);
    defined $found or stopped("/proc/$pid/$how");
    worked("found @$found in /proc/$pid/mem ($how)") if @$found;
    stopped("no token in /proc/$pid/mem ($how)");
};

$ATTEMPTS{"pid1.environ"} = sub {
    my $pid = target();
    my ($s, $err) = slurp("/proc/$pid/environ");
    defined $s or stopped("read /proc/$pid/environ: $err");
    my @t = $s =~ /($SECRET_RE)/g;
    worked("/proc/$pid/environ holds @t") if @t;
    stopped("/proc/$pid/environ (" . length($s) . " bytes) holds no token");
};

$ATTEMPTS{"pid1.cmdline"} = sub {
    my $pid = target();
    my ($s, $err) = slurp("/proc/$pid/cmdline");
    defined $s or stopped("read /proc/$pid/cmdline: $err");
    (my $show = substr($s, 0, 120)) =~ s/\0/ /g;
    worked("/proc/$pid/cmdline shows the recipe: $show") if $s =~ /recipe\.lua|$SECRET_RE/;
    stopped("/proc/$pid/cmdline is [$show]");
};

$ATTEMPTS{"pid1.fd"} = sub {
    my $pid = target();
    if ($CONTROL) {
        # Something of its own to find there, as the init's status pipe.
        pipe(my $r, my $w) or broken("pipe: $!");
        my $kid = fork // broken("fork: $!");
        if ($kid == 0) { close $r; sleep 30; POSIX::_exit(0) }
        push @children, $kid;
        close $w;
        $pid = $kid;
        select(undef, undef, undef, 0.05);
    }
    my (@seen, @opened);
    if (opendir(my $d, "/proc/$pid/fd")) {
        @seen = sort grep { /^\d+$/ } readdir($d);
    } else {
        my $e = ename();
        # The fds one by one, in case only the listing is refused.
        for my $fd (0 .. 64) {
            push @opened, $fd if open(my $f, "<", "/proc/$pid/fd/$fd");
        }
        worked("ls /proc/$pid/fd: $e, but opened @opened") if @opened;
        stopped("ls /proc/$pid/fd: $e, and no /proc/$pid/fd/N opens");
    }
    my @links;
    for my $fd (@seen) {
        push @opened, $fd if open(my $f, "<", "/proc/$pid/fd/$fd");
        my $l = readlink("/proc/$pid/fd/$fd");
        push @links, "$fd -> $l" if defined $l;
    }
    # The numbers alone give nothing away: what counts is reaching an fd
    # (opening it) or learning what it is (its link). A program that runs
    # as the init's owner (kuid 0 when root maps itself) may list them.
    worked("ls /proc/$pid/fd: @seen; opened: @opened; links: @links") if @opened || @links;
    stopped(@seen ? "ls /proc/$pid/fd: @seen, but none opens or reads" : "/proc/$pid/fd is empty");
};

$ATTEMPTS{"pid1.exe"} = sub {
    my $pid = target();
    my $link = readlink("/proc/$pid/exe");
    my $rl = defined $link ? $link : "readlink: " . ename();
    # CVE-2019-5736 reopened the init's binary for writing through this
    # link; here it is only opened for reading: the link must not be usable.
    if (sysopen(my $f, "/proc/$pid/exe", O_RDONLY)) { close $f; worked("opened /proc/$pid/exe ($rl)") }
    stopped("open /proc/$pid/exe: " . ename() . " ($rl)");
};

sub attach {
    my ($pid) = @_;
    my $r = syscall($NR{ptrace}, $PTRACE_ATTACH, $pid, 0, 0);
    return "ptrace attach $pid: " . ename() if $r != 0;
    # Undo it at once: wait for the attach stop, then let go.
    waitpid($pid, $WALL);
    syscall($NR{ptrace}, $PTRACE_DETACH, $pid, 0, 0);
    return undef;
}

$ATTEMPTS{"pid1.ptrace"} = sub {
    my $pid = target();
    my $err = attach($pid);
    defined $err ? stopped($err) : worked("attached to $pid (and detached)");
};

$ATTEMPTS{"sibling.ptrace"} = sub {
    # A sleep and the attacker, both children of this program: the attacker
    # is not the sleep's parent.
    my $sleep = fork // broken("fork: $!");
    if ($sleep == 0) { exec { "sleep" } "sleep", "30" or POSIX::_exit(127) }
    push @children, $sleep;
    select(undef, undef, undef, 0.05);
    my $kid = fork // broken("fork: $!");
    if ($kid == 0) {
        # The errno is the status.
        my $r = syscall($NR{ptrace}, $PTRACE_ATTACH, $sleep, 0, 0);
        POSIX::_exit(0 + $!) if $r != 0;
        waitpid($sleep, $WALL);
        syscall($NR{ptrace}, $PTRACE_DETACH, $sleep, 0, 0);
        POSIX::_exit(0);
    }
    waitpid($kid, 0);
    my $st = $?;
    worked("attached to the sibling sleep $sleep (and detached)") if $st == 0;
    stopped("sibling attach: killed by signal " . ($st & 127)) if $st & 127;
    $! = $st >> 8;
    stopped("ptrace attach to the sibling sleep $sleep: " . ename());
};

# 2. Exit status forgery -----------------------------------------------------

$ATTEMPTS{"status.forge"} = sub {
    my $forged = pack("l< l<", 0, 0);
    if ($CONTROL) {
        # The method: write through /proc/PID/fd/N to a pipe a child holds,
        # and see the bytes come out.
        pipe(my $r, my $w) or broken("pipe: $!");
        my $kid = fork // broken("fork: $!");
        if ($kid == 0) { close $r; sleep 30; POSIX::_exit(0) }
        push @children, $kid;
        my $n = fileno($w);
        close $w;
        select(undef, undef, undef, 0.05);
        open(my $via, ">", "/proc/$kid/fd/$n") or stopped("open /proc/$kid/fd/$n: " . ename());
        syswrite($via, $forged);
        close $via;
        sysread($r, my $got, 8);
        ($got // "") eq $forged ? worked("8 bytes reached the pipe through /proc/$kid/fd/$n")
                                : stopped("the bytes did not arrive");
    }
    my @hit;
    if (opendir(my $d, "/proc/1/fd")) {
        for my $fd (grep { /^\d+$/ } readdir($d)) {
            if (open(my $f, ">>", "/proc/1/fd/$fd")) {
                push @hit, $fd if defined syswrite($f, $forged);
                close $f;
            }
        }
    }
    # (The recipe judges by the status nsrun reports.)
    print "VERDICT $ATTEMPT exit3 wrote a forged status to /proc/1/fd/[@hit], exiting 3\n";
    exit 3;
};

# 3. Mounts, the new mount API, io_uring --------------------------------------

# Write a file into DIR: whether a read-only mount still stands.
sub try_write {
    my ($dir) = @_;
    my $p = "$dir/escaped-write";
    if (open(my $f, ">", $p)) { print $f "x\n"; close $f; unlink $p; return 1 }
    return 0;
}

$ATTEMPTS{"mount.tmpfs"} = sub {
    my $t = env("ESC_TMP");
    my ($src, $type) = ("none", "tmpfs");    # (syscall wants variables)
    my $r = syscall($NR{mount}, $src, $t, $type, 0, 0);
    if ($r == 0) { syscall($NR{umount2}, $t, 2); worked("mounted a tmpfs on $t") }
    stopped("mount tmpfs on $t: " . ename());
};

$ATTEMPTS{"mount.umount_mask"} = sub {
    my $m = env("ESC_MASKED");
    my $before = -e "$m/under-mask" ? "visible" : "hidden";
    my $r = syscall($NR{umount2}, $m, 0);
    my $e = ename();
    my $after = -e "$m/under-mask" ? "visible" : "hidden";
    $r == 0 ? worked("umount $m: the masked file was $before, is $after")
            : stopped("umount $m: $e (masked file $after)");
};

$ATTEMPTS{"mount.remount_rw"} = sub {
    my $ro = env("ESC_RO");
    try_write($ro) and broken("$ro is writable before the attempt");
    # mount -o remount,bind,rw RO
    my $r = syscall($NR{mount}, 0, $ro, 0, $MS_REMOUNT | $MS_BIND, 0);
    my $e = ename();
    my $w = try_write($ro);
    ($r == 0 || $w) ? worked("remount,bind,rw $ro: " . ($r == 0 ? "ok" : $e) . ($w ? ", wrote into it" : ""))
                    : stopped("remount,bind,rw $ro: $e");
};

$ATTEMPTS{"mount.setattr_rw"} = sub {
    my $ro = env("ESC_RO");
    try_write($ro) and broken("$ro is writable before the attempt");
    my $attr = pack("Q<4", 0, $MOUNT_ATTR_RDONLY, 0, 0);
    my $r = syscall($NR{mount_setattr}, $AT_FDCWD, $ro, 0, $attr, length $attr);
    my $e = ename();
    cannot("mount_setattr: ENOSYS (kernel before 5.12)") if $r != 0 && $e eq "ENOSYS" && $CONTROL;
    my $w = try_write($ro);
    ($r == 0 || $w) ? worked("mount_setattr cleared MOUNT_ATTR_RDONLY on $ro" . ($w ? ", wrote into it" : ""))
                    : stopped("mount_setattr on $ro: $e");
};

sub fd_call {
    my ($what, $r) = @_;
    my $e = ename();
    if ($r >= 0) { POSIX::close($r); worked("$what gave fd $r") }
    cannot("$what: ENOSYS") if $e eq "ENOSYS" && $CONTROL;
    stopped("$what: $e");
}

# (syscall() wants its string arguments in variables.)
my ($TMPFS, $ROOT) = ("tmpfs", "/");
$ATTEMPTS{"mount.fsopen"} = sub { fd_call("fsopen(tmpfs)", syscall($NR{fsopen}, $TMPFS, 0)) };
$ATTEMPTS{"mount.fspick"} = sub { fd_call("fspick(/)", syscall($NR{fspick}, $AT_FDCWD, $ROOT, 0)) };
$ATTEMPTS{"mount.open_tree"} = sub {
    fd_call("open_tree(/, OPEN_TREE_CLONE)", syscall($NR{open_tree}, $AT_FDCWD, $ROOT, $OPEN_TREE_CLONE | $AT_RECURSIVE));
};
$ATTEMPTS{"io_uring.setup"} = sub {
    my ($off) = slurp("/proc/sys/kernel/io_uring_disabled");
    cannot("kernel.io_uring_disabled = 2") if $CONTROL && defined $off && $off =~ /^2/;
    my $params = "\0" x 120;
    fd_call("io_uring_setup", syscall($NR{io_uring_setup}, 4, $params));
};

# 4. Files ---------------------------------------------------------------------

$ATTEMPTS{"file.ro_write"} = sub {
    my $ro = env("ESC_RO");
    try_write($ro) ? worked("wrote into $ro") : stopped("write into $ro: " . ename());
};

$ATTEMPTS{"file.host_read"} = sub {
    my $m = env("ESC_MARKER");
    my @tried;
    for my $p ($m, "/proc/1/root$m", "/proc/1/cwd" . ("/.." x 20) . $m, "/oldroot$m") {
        my ($s, $err) = slurp($p);
        worked("read the host-only file as $p") if defined $s && $s =~ /^NSRUN-HOST-ONLY-MARKER/;
        push @tried, "$p: " . ($err // "other content");
    }
    stopped(join("; ", @tried));
};

# 5. /proc and /sys --------------------------------------------------------------

$ATTEMPTS{"procsys.hostname"} = sub {
    # Only ever in a uts namespace of its own: a missing lock-down must not
    # rename the host.
    my $host = env("ESC_HOST_UTS");
    my $mine = readlink("/proc/self/ns/uts") // "";
    my ($ino) = $mine =~ /\[(\d+)\]/;
    broken("refusing: in the host's uts namespace ($mine)") if !defined $ino || $ino eq $host;
    if (open(my $f, ">", "/proc/sys/kernel/hostname")) {
        if (defined syswrite($f, "escaped\n")) { close $f; worked("wrote /proc/sys/kernel/hostname") }
    }
    stopped("write /proc/sys/kernel/hostname: " . ename());
};

$ATTEMPTS{"sys.write"} = sub {
    # Opened for writing and closed: never written.
    my @files = ("/sys/kernel/profiling", "/sys/kernel/rcu_expedited");
    cannot("this kernel has none of @files") if $CONTROL && !grep { -e } @files;
    my @tried;
    my $open = sub {
        my ($how) = (@_, "");
        for my $p (@files) {
            if (sysopen(my $f, $p, O_WRONLY)) { close $f; worked("${how}opened $p for writing") }
            push @tried, "$p: " . ename();
        }
    };
    $open->();
    # A read-only sysfs: make it read-write, as a root with capabilities
    # could (the superblock, then the mount), and try again.
    my $sys = "/sys";
    my $sb = syscall($NR{mount}, 0, $sys, 0, $MS_REMOUNT, 0) == 0 ? "ok" : ename();
    my $mnt = syscall($NR{mount}, 0, $sys, 0, $MS_REMOUNT | $MS_BIND, 0) == 0 ? "ok" : ename();
    $open->("after remounting /sys read-write, ");
    stopped(join("; ", @tried) . "; remount /sys rw: $sb, bind: $mnt");
};

$ATTEMPTS{"sys.firmware"} = sub {
    cannot("this host has no /sys/firmware") if $CONTROL && !-d "/sys/firmware";
    opendir(my $d, "/sys/firmware") or stopped("/sys/firmware: " . ename());
    my @e = grep { !/^\.\.?$/ } readdir($d);
    @e ? worked("/sys/firmware lists @e") : stopped("/sys/firmware is empty");
};

$ATTEMPTS{"proc.kcore"} = sub {
    # /proc/kcore where the kernel has it; else /proc/timer_list, from the
    # same list of files runc and podman mask.
    my @tried;
    for my $p ("/proc/kcore", "/proc/timer_list") {
        if (!-e $p) { push @tried, "$p: absent"; next }
        if (sysopen(my $f, $p, O_RDONLY)) {
            my $n = sysread($f, my $b, 4096);
            worked("read $n bytes of $p") if $n;
            push @tried, "$p: empty";
        } else {
            push @tried, "$p: " . ename();
        }
    }
    cannot("this kernel has neither file") if $CONTROL && !grep { !/absent/ } @tried;
    stopped(join("; ", @tried));
};

$ATTEMPTS{"proc.keys"} = sub {
    cannot("this kernel has no /proc/keys") if $CONTROL && !-e "/proc/keys";
    my ($s, $err) = slurp("/proc/keys");
    defined $s or stopped("/proc/keys: $err");
    my @l = split /\n/, $s;
    @l ? worked(scalar(@l) . " keys in /proc/keys, e.g. $l[0]") : stopped("/proc/keys is empty");
};

# 6. User namespaces -----------------------------------------------------------

$ATTEMPTS{"userns.unshare"} = sub {
    my $r = syscall($NR{unshare}, $CLONE_NEWUSER);
    $r == 0 ? worked("unshare(CLONE_NEWUSER)") : stopped("unshare(CLONE_NEWUSER): " . ename());
};

# 7. The session keyring ----------------------------------------------------------

$ATTEMPTS{"keyring.session"} = sub {
    # KEYCTL_GET_KEYRING_ID(KEY_SPEC_SESSION_KEYRING, create = 0)
    my $id = syscall($NR{keyctl}, 0, -3, 0);
    cannot("keyctl: ENOSYS (a kernel without keys)") if $id < 0 && $CONTROL && ename() eq "ENOSYS";
    stopped("KEYCTL_GET_KEYRING_ID(\@s): " . ename()) if $id < 0;
    my $buf = "\0" x 512;
    my $n = syscall($NR{keyctl}, 6, $id, $buf, 512);
    my $desc = $n > 0 ? substr($buf, 0, $n - 1) : "describe: " . ename();
    if ($CONTROL) {
        $n > 0 ? worked("session keyring id=$id ($desc)") : stopped("session keyring id=$id: $desc");
    }
    my $host = env("ESC_HOST_KEYRING");
    $id == $host ? worked("the host's session keyring $id ($desc)")
                 : stopped("a session keyring of its own: $id, not the host's $host ($desc)");
};

# 8. Abstract unix sockets ----------------------------------------------------------

$ATTEMPTS{"abstract.connect"} = sub {
    require IO::Socket::UNIX;
    my $name = env("ESC_ABSTRACT");
    my $s = IO::Socket::UNIX->new(Type => Socket::SOCK_STREAM(), Peer => "\0$name");
    $s ? worked("connected to \@$name") : stopped("connect \@$name: " . ename());
};

# 9. Host processes --------------------------------------------------------------

sub nsrun_visible {
    my $pid = env("ESC_NSRUN");
    my ($comm) = slurp("/proc/$pid/comm");
    return defined $comm && $comm =~ /^nsrun/ ? $pid : undef;
}

$ATTEMPTS{"host.see"} = sub {
    opendir(my $d, "/proc") or stopped("/proc: " . ename());
    my @pids = grep { /^\d+$/ } readdir($d);
    my $n = @pids;
    my $pid = nsrun_visible();
    worked("sees nsrun (pid $pid) among $n processes") if defined $pid;
    worked("sees $n processes") if $n > 20;
    stopped("sees $n processes (@pids), not nsrun");
};

$ATTEMPTS{"host.signal"} = sub {
    my $pid = env("ESC_NSRUN");
    my ($comm) = slurp("/proc/$pid/comm");
    broken("pid $pid is a process of the sandbox ($comm)") if defined $comm && $comm !~ /^nsrun/;
    kill(0, $pid) ? worked("kill(0) reached nsrun's pid $pid") : stopped("kill(0, $pid): " . ename());
};

# 10. setuid binaries ----------------------------------------------------------------

sub creds {
    my ($status) = @_;
    my ($euid) = $status =~ /^Uid:\s+\d+\s+(\d+)/m;
    my ($eff) = $status =~ /^CapEff:\s+([0-9a-f]+)/m;
    return ($euid, hex($eff // "0"));
}

$ATTEMPTS{"setuid.exec"} = sub {
    my $suid = env("ESC_SUID");
    -e $suid or broken("$suid is missing");
    my ($mine) = slurp("/proc/self/status");
    my ($euid0, $cap0) = creds($mine);
    open(my $p, "-|", $suid, "/proc/self/status") or stopped("run $suid: " . ename());
    my $out = do { local $/; <$p> } // "";
    close $p;
    $? == 0 or stopped("$suid: status $?: $out");
    my ($euid1, $cap1) = creds($out);
    defined $euid1 or broken("no Uid line from $suid: $out");
    my $gain = ($euid1 == 0 && $euid0 != 0) || ($cap1 & ~$cap0);
    my $d = sprintf("euid %d -> %d, CapEff %x -> %x", $euid0, $euid1, $cap0, $cap1);
    $gain ? worked("$suid gave $d") : stopped("$suid gave nothing: $d");
};

# 11. Device nodes ----------------------------------------------------------------------

$ATTEMPTS{"dev.mknod"} = sub {
    my $dir = env("ESC_DEV");
    my $p = "$dir/escape-blk";
    # mknod DIR/escape-blk b 8 0; removed at once, never opened.
    my $r = syscall($NR{mknod}, $p, 0060000 | 0600, (8 << 8) | 0);
    my $e = ename();
    if ($r == 0) { unlink $p; worked("made block device 8:0 at $p") }
    stopped("mknod $p b 8 0: $e");
};

$ATTEMPTS{"dev.disk"} = sub {
    my $disk = env("ESC_DISK");
    cannot("the host has no block device its root may open") if $CONTROL && $disk eq "none";
    my @cands = $disk eq "none" ? () : ($disk);
    if (!$CONTROL && opendir(my $d, "/dev")) {
        push @cands, map { "/dev/$_" } grep { -b "/dev/$_" } readdir($d);
    }
    my @tried;
    for my $p (@cands) {
        if (sysopen(my $f, $p, O_RDONLY)) { close $f; worked("opened $p read-only") }
        push @tried, "$p: " . ename();
    }
    stopped(join("; ", @tried));
};

# 12. TIOCSTI ----------------------------------------------------------------------------

$ATTEMPTS{"tty.tiocsti"} = sub {
    my $text = env("ESC_INJECT");
    my @how;
    my @fhs = (["stdin", \*STDIN]);
    if (open(my $t, "+<", "/dev/tty")) { push @fhs, ["/dev/tty", $t] } else { push @how, "/dev/tty: " . ename() }
    for my $h (@fhs) {
        my ($name, $fh) = @$h;
        my $pushed = 0;
        for my $c (split //, $text) { $pushed++ if ioctl($fh, $TIOCSTI, $c) }
        worked("TIOCSTI pushed $pushed characters through $name") if $pushed;
        push @how, "$name: " . ename();
    }
    # EIO for all: the kernel has TIOCSTI off for whoever lacks CAP_SYS_ADMIN.
    cannot("TIOCSTI is off on this kernel (dev.tty.legacy_tiocsti = 0): @how")
        if $CONTROL && !grep { !/EIO$/ } grep { !m{^/dev/tty:} } @how;
    stopped("TIOCSTI: " . join("; ", @how));
};

# 13. cwd ---------------------------------------------------------------------------------

$ATTEMPTS{"cwd.proc_fd"} = sub {
    # Started in a cwd the sandbox was told to use: from outside the root,
    # ".." climbs to the host's / and the marker is there.
    my $m = env("ESC_MARKER");
    my $cwd = readlink("/proc/self/cwd") // "?";
    my ($s) = slurp(("../" x 30) . substr($m, 1));
    worked("cwd $cwd reaches the host-only file") if defined $s && $s =~ /^NSRUN-HOST-ONLY-MARKER/;
    # Or the cwd is the host's /proc (a detached mount: ".." stays there).
    my $pid = env("ESC_NSRUN");
    my ($comm) = slurp("./$pid/comm");
    worked("cwd $cwd is the host's /proc: nsrun's pid $pid is there") if defined $comm && $comm =~ /^nsrun/;
    stopped("cwd $cwd: the host-only file is not there");
};

# 14. Leaked fds ---------------------------------------------------------------------------

$ATTEMPTS{"fds.leak"} = sub {
    my %allowed = map { $_ => 1 } (0, 1, 2, grep { length } split /,/, ($ENV{ESC_KEEP} // ""));
    my $own;
    if ($CONTROL) { open($own, "<", "/proc/self/status") or broken("open: $!") }
    opendir(my $d, "/proc/self/fd") or broken("/proc/self/fd: $!");
    my (@extra, @missing);
    my %seen;
    for my $fd (grep { /^\d+$/ } readdir($d)) {
        my $to = readlink("/proc/self/fd/$fd") // "gone";
        next if $to eq "gone";                      # the listing's own fd, closed
        next if $to =~ m{^/proc/\d+/fd$};           # the listing's own fd
        $seen{$fd} = 1;
        push @extra, "$fd -> $to" unless $allowed{$fd};
    }
    @missing = grep { !$seen{$_} && $_ > 2 } keys %allowed;
    broken("kept fds missing: @missing") if @missing;
    @extra ? worked("fds beyond stdio and keep_fds: " . join(", ", @extra))
           : stopped("only " . join(",", sort { $a <=> $b } keys %seen));
};

my $f = $ATTEMPTS{$ATTEMPT} or broken("unknown attempt $ATTEMPT");
$f->();
broken("no verdict");
