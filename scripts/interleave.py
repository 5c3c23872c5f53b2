#!/usr/bin/env python3
"""Time commands side by side, interleaved: each round runs every command
once, in turn, so a change in machine load (a VM's neighbours, a build in
the background) hits all of them alike. hyperfine runs one command's runs
back to back, which turns such drift into a false ratio.

    interleave.py --runs N --warmup W --export-json FILE CMD...

Writes hyperfine's JSON shape (results: command, median, mean, stddev,
min, max, times in seconds). Commands are split like a shell would, but
run without one; a command that fails stops the run.
"""
import argparse, json, os, shlex, shutil, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=300)
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--export-json", required=True)
ap.add_argument("commands", nargs="+")
a = ap.parse_args()

argvs = []
for c in a.commands:
    argv = shlex.split(c)
    prog = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if prog is None:
        sys.exit(f"interleave: {argv[0]}: not found")
    argvs.append((prog, argv))
null = os.open(os.devnull, os.O_RDWR)
io = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)]
times = [[] for _ in argvs]
for r in range(a.warmup + a.runs):
    for i, (prog, argv) in enumerate(argvs):
        t = time.perf_counter()
        pid = os.posix_spawn(prog, argv, os.environ, file_actions=io)
        _, status = os.waitpid(pid, 0)
        d = time.perf_counter() - t
        if status != 0:
            sys.exit(f"interleave: {a.commands[i]!r} failed (wait status {status})")
        if r >= a.warmup:
            times[i].append(d)
json.dump({"results": [
    {"command": c, "median": statistics.median(t), "mean": statistics.fmean(t),
     "stddev": statistics.stdev(t), "min": min(t), "max": max(t), "times": t}
    for c, t in zip(a.commands, times)]}, open(a.export_json, "w"))
