#!/usr/bin/env python3
# statefun-c: Apache License 2.0.
"""Steady runs of the state-scale workload on a state directory loaded before,
without loading it again (the load takes 2-3 minutes): for comparing builds or
settings on the same 10M addresses, run after run.

    BENCH_KEEP=1 python3 bench/bench.py --build build-bench state-scale   # prints "kept DIR"
    python3 bench/scale_rerun.py --build build-bench --state DIR/statefun-state \\
        [--dist uniform|zipf] [--runs 3] [--messages 300000]

Each invocation copies the state directory (the original is left as it was),
starts one runtime on the copy the way bench.py does, and sends --runs runs of
--messages messages to bench/blob over the loaded addresses with the same
client as state-scale (one h2load connection x 100 streams). Per run it prints
the messages accepted and refused, messages/s (first request to the last
commit), the CPU share of each runtime thread (from /proc), the runtime's CPU time per
message (all its threads) and the CPU of the client (h2load and its output
filter); at the end the runtime's VmHWM.
Environment variables reach the runtime (for switches of an experimental build).
"""
import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def thread_cpu(pid):
    """CPU seconds of each thread of |pid|, by "tid:name"."""
    out, tick = {}, os.sysconf("SC_CLK_TCK")
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        out["%s:%s" % (t, s[s.index("(") + 1:s.rindex(")")])] = (int(rest[11]) + int(rest[12])) / tick
    return out


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--state", required=True, help="a loaded state directory (kept by bench.py)")
    ap.add_argument("--addresses", type=int, default=10000000, help="addresses it holds")
    ap.add_argument("--dist", choices=("uniform", "zipf"), default="uniform")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="sf-bench-rerun-")
    procs = bench.Procs(tmp)
    rng = random.Random(args.seed)
    try:
        rt = bench.Runtime(procs, build, bench.embedded_yaml(build))
        subprocess.check_call(["cp", "-a", args.state, rt.state])
        rt.start()
        body = bench.write_body(tmp, "one", b"1")
        uris = os.path.join(tmp, "uris")
        for r in range(args.runs):
            if args.dist == "uniform":
                ids = [rng.randrange(args.addresses) for _ in range(args.messages)]
            else:
                ids = bench.zipf_ids(rng, args.addresses, args.messages)
            bench.scale_write_uris(uris, rt.ingress, "bench/blob", ids)
            base = rt.processed("bench/blob")
            c0, k0, t0 = thread_cpu(rt.p.pid), children_cpu(), time.monotonic()
            ok, refused = bench.scale_h2load(uris, len(ids), body)
            k1 = children_cpu()
            t1 = rt.wait_processed(base + ok, "bench/blob", timeout=600)
            c1, d = thread_cpu(rt.p.pid), t1 - t0
            print("%s run %d: %d accepted, %d refused, %.0f msg/s" % (
                args.dist, r, ok, len(refused), ok / d))
            print("   runtime threads: " + ", ".join(
                "%s %.0f%%" % (k, 100 * (c1[k] - c0.get(k, 0)) / d) for k in sorted(c1)
                if c1[k] - c0.get(k, 0) > 0.02 * d))
            print("   client (h2load + filter): %.0f%% of a core" % (100 * (k1 - k0) / d))
            # CPU time per message is steadier than msg/s on a shared machine: other
            # tenants slow the run down but take no CPU time from the runtime's threads.
            print("   runtime CPU: %.1f us/msg" % (
                1e6 * sum(c1[k] - c0.get(k, 0) for k in c1) / ok))
        print("VmHWM %.0f MiB" % (bench.proc_status_kib(rt.p.pid, "VmHWM") / 1024.0))
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
