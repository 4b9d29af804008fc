#!/usr/bin/env python3
# statefun-c: Apache License 2.0.
#
# Summarizes a `perf record --call-graph dwarf` profile of the runtime (and of
# the remote function process, when it was recorded too) the way
# docs/benchmarks.md "Where the time goes" reports it:
#
#   * the share of each thread, named by its role (worker, I/O thread,
#     RocksDB background, remote function process);
#   * the time per area (RocksDB write, RocksDB get, nghttp2, protobuf,
#     malloc, kernel socket writes, waits and wake-ups, ...), for all threads
#     and per role; an area such as "RocksDB write" takes everything below
#     rocksdb_write in the stack, the others are decided by the sampled frame;
#   * inside rocksdb_write and rocksdb_get_pinned: WAL append, memtable insert,
#     write-group coordination, memtable or table lookups;
#   * with --messages N (the messages processed while perf recorded), CPU
#     microseconds per message per area.
#
# Usage: python3 bench/perf_areas.py [--freq HZ] [--messages N] PERF_DATA
# Standard library only; runs `perf script`.
import argparse
import collections
import re
import subprocess

# Areas that take the whole call below them; the outermost one in a stack wins.
SWALLOW = [
    (lambda s: s == "rocksdb_write", "RocksDB write (WAL append + memtable insert)"),
    (lambda s: s.startswith("rocksdb_get"), "RocksDB get"),
    (lambda s: s.startswith("rocksdb_checkpoint") or s == "sf_state_checkpoint", "checkpoint"),
    (lambda s: s == "protobuf_c_message_unpack", "protobuf unpack"),
    (lambda s: s in ("protobuf_c_message_pack", "protobuf_c_message_get_packed_size",
                     "protobuf_c_message_pack_to_buffer"), "protobuf pack"),
    (lambda s: "fdatasync" in s or s == "fsync", "fdatasync"),
]
MALLOC = re.compile(r"^(__GI___libc_)?(malloc|free|calloc|realloc|cfree.*|_int_malloc|_int_free|"
                    r"_int_realloc|malloc_consolidate|unlink_chunk.*|tcache_.*|operator new.*|"
                    r"operator delete.*|__libc_calloc|__libc_malloc|__libc_free|sysmalloc)$")
# Inside rocksdb_write / rocksdb_get_pinned: the first pattern found below it.
ROCKS_PARTS = [
    ("WriteToWAL", "WAL append (a write(2) per commit)"),
    ("MemTable::Add", "memtable insert (skiplist)"),
    ("WriteThread", "write-group coordination (WriteThread)"),
    ("PreprocessWrite", "PreprocessWrite (flush and stall checks)"),
    ("MemTable::Get", "memtable lookup"),
    ("Version::Get", "table lookup (filters, index, data blocks)"),
]
OWN_DSOS = ("statefun", "counter", "libcounter.so", "inlined")


def load(path):
    """[(comm, tid, [(symbol, dso)] leaf first)] from perf script."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,ip,sym,dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    samples, cur = [], None
    for line in out.splitlines():
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        if not line.startswith("\t"):  # a sample's header: "comm tid"
            m = re.match(r"\s*(.*?)\s+(\d+)\s*$", line)
            if m:
                cur = (m.group(1), int(m.group(2)), [])
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*)\s+\((.*)\)\s*$", line)
        if m and cur is not None:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1).strip())
            cur[2].append((sym, m.group(2).split("/")[-1]))
    if cur:
        samples.append(cur)
    return samples


def roles(samples):
    """{tid: role}, from the thread's name and the functions on its stacks."""
    names = collections.defaultdict(set)
    comms = {}
    for comm, tid, st in samples:
        comms[tid] = comm
        names[tid].update(s for s, _ in st)
    out = {}
    for tid, ns in names.items():
        comm = comms[tid]
        if comm.startswith("rocksdb"):
            out[tid] = "RocksDB background (%s)" % comm
        elif comm == "counter":
            out[tid] = "remote function process"
        elif ns & {"pump", "send_batch", "sf_mailbox_drain"}:
            out[tid] = "worker"
        elif any(n.startswith("sf__io") or "ingress" in n for n in ns):
            out[tid] = "I/O thread (ingress, admin)"
        else:
            out[tid] = "other (%s: ingress log, checkpointer, ...)" % comm
    return out


def area(st):
    for s, _ in reversed(st):
        for pred, name in SWALLOW:
            if pred(s):
                return name
    if not st:
        return "?"
    s, d = st[0]
    if MALLOC.match(s):
        return "malloc/free"
    if d == "[kernel.kallsyms]":
        for s2, d2 in st:
            if d2 != "[kernel.kallsyms]":
                if re.search(r"write|send", s2):
                    return "kernel: socket/file write"
                if re.search(r"read|recv", s2):
                    return "kernel: socket/file read"
                if re.search(r"epoll|futex|cond_wait|sem_|poll|nanosleep|lll_lock|mutex", s2):
                    return "kernel: waits and wake-ups (epoll, futex, scheduling)"
                return "kernel: page faults, interrupts"
        return "kernel: other"
    if re.match(r"__(mem|str)|mem(cpy|cmp|move|set)", s):
        return "libc memcpy/memcmp/str*"
    if "nghttp2" in d:
        return "nghttp2 (library)"
    if "libuv" in d:
        return "libuv"
    if "pthread" in s or "futex" in s or "lll_" in s:
        return "pthread locks"
    if d in OWN_DSOS:
        return "own code (runtime, SDK, function)"
    if "rocksdb" in d:
        return "RocksDB (other: compaction, flush)"
    return "other: " + d


def table(title, counter, total, per_msg):
    print("\n## " + title)
    for k, v in counter.most_common():
        extra = "  %6.2f us/msg" % (v * per_msg) if per_msg else ""
        print("%6.1f%%%s  %s" % (100.0 * v / total, extra, k))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--freq", type=float, default=499, help="perf record -F value")
    ap.add_argument("--messages", type=int, default=0,
                    help="messages processed while perf recorded (for us/msg)")
    ap.add_argument("data")
    args = ap.parse_args()
    samples = load(args.data)
    n = len(samples)
    if not n:
        raise SystemExit("no samples in " + args.data)
    role = roles(samples)
    per_msg = 1e6 / args.freq / args.messages if args.messages else 0
    print("%d samples = %.2f CPU-seconds" % (n, n / args.freq))

    by_role = collections.Counter(role[tid] for _, tid, _ in samples)
    table("threads by role", by_role, n, per_msg)
    table("areas, all threads", collections.Counter(area(st) for _, _, st in samples), n,
          per_msg)
    for r, _ in by_role.most_common():
        c = collections.Counter(area(st) for _, tid, st in samples if role[tid] == r)
        table("areas, %s (share of the role)" % r, c, by_role[r], 0)
    for root in ("rocksdb_write", "rocksdb_get_pinned"):
        c = collections.Counter()
        for _, _, st in samples:
            names = [s for s, _ in st]
            if root not in names:
                continue
            below = names[:names.index(root)]
            c[next((lab for pat, lab in ROCKS_PARTS if any(pat in x for x in below)),
                   "the rest")] += 1
        if c:
            table("inside %s (%.1f%% of all samples)" % (root, 100.0 * sum(c.values()) / n),
                  c, sum(c.values()), per_msg)


if __name__ == "__main__":
    main()
