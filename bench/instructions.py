#!/usr/bin/env python3
# statefun-c: Apache License 2.0.
"""Instructions the runtime executes per message, counted by valgrind's
callgrind: a figure that does not move with this machine's load, for judging a
change to the hot path before timing it.

    python3 bench/instructions.py [--build build-bench] [--hops 20,120] [--top 25]

It runs the embedded 1 000-pair ping-pong of `bench.py embedded` (each pair on
two workers, every hop a message, an invocation and a commit) twice under
`valgrind --tool=callgrind`, with the two numbers of --hops per pair, and
divides the difference of the two runs' instruction totals by the difference of
their message counts: start-up, the triggers' HTTP requests, the stop and its
final checkpoint are the same in both runs and cancel out. Checkpoints are
every 60 s, so that none falls inside a run (under callgrind a run is 50-100
times slower). Each run checks every pair's count through /v1/state, as
bench.py does. --top N also prints the N functions with the most instructions
per message (the same difference, per function).
Needs valgrind (`make deps` installs it).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

NPAIRS = 1000
LINE = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[.*\])?$")


def run(build, hops, tmp):
    """One run under callgrind; returns (messages, its callgrind output file)."""
    procs = bench.Procs(tmp)
    out = os.path.join(tmp, "callgrind-%d.out" % hops)
    rt = bench.Runtime(procs, build, bench.embedded_yaml(build),
                       extra=["--checkpoint-interval", "60s"], name="statefun-%d" % hops)
    rt.argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + rt.argv
    rt.start()
    try:
        pp = bench.PongPairs(rt, tmp, hops, n=NPAIRS)
        pp.trigger()
        # Polled once a second: the admin API's own instructions would otherwise
        # grow with the run's length and count as the messages'.
        bench.wait_until(lambda: rt.processed("bench/pong") >= pp.sent, 1200,
                         "%d messages processed" % pp.sent, 1.0)
        pp.verify()
        messages = pp.sent
        procs.stop(rt.p, timeout=300)
    finally:
        procs.stop_all()
    return messages, out


def per_function(path):
    """{function: instructions} and the total, from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                           path], check=True, capture_output=True, text=True).stdout
    funcs, total = {}, None
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if m.group(2).strip() == "PROGRAM TOTALS":
            total = n
        else:
            name = m.group(2).split(":")[-1]
            funcs[name] = funcs.get(name, 0) + n
    if total is None:
        raise RuntimeError("no totals in " + path)
    return funcs, total


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--hops", default="20,120", help="hops per pair of the two runs")
    ap.add_argument("--top", type=int, default=0, help="print the N costliest functions")
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.hops.split(","))
    if not 0 < lo < hi:
        ap.error("--hops takes two numbers, the first smaller")
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (make deps)")
    tmp = tempfile.mkdtemp(prefix="sf-instructions-")
    try:
        (m1, f1), (m2, f2) = run(args.build, lo, tmp), run(args.build, hi, tmp)
        (fn1, t1), (fn2, t2) = per_function(f1), per_function(f2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dm = m2 - m1
    print("instructions per message: %.0f  (%d - %d instructions over %d - %d messages)"
          % ((t2 - t1) / dm, t2, t1, m2, m1))
    if args.top:
        diff = sorted(((fn2.get(k, 0) - fn1.get(k, 0), k) for k in set(fn1) | set(fn2)),
                      reverse=True)
        for n, name in diff[:args.top]:
            print("%8.0f  %5.1f%%  %s" % (n / dm, 100.0 * n / (t2 - t1), name))


if __name__ == "__main__":
    main()
