/* statefun-c: Apache License 2.0.
 *
 * ilog_bench: appends/s of the durable ingress log (runtime/log) with
 * 100-byte messages, in each fsync mode, with B messages per loop turn (one
 * append per turn, as the ingress persists one batch per turn) and at most
 * K batches waiting for their done callback (K = 1: every batch waits for
 * the previous one; larger K: the writer gathers several turns per write).
 * It prints one line per (mode, B, K): records/s, the write and fdatasync
 * calls, records per write, and the p50/p99 time from append to done.
 *
 *   ilog_bench [--modes always,interval,never] [--batches 1,4,16,64,256]
 *              [--inflight 1,16] [--seconds S] [--value-size V] [--dir DIR]
 *
 * Each run uses a fresh log directory under DIR (default: a temporary
 * directory under /tmp, removed at the end). Runs on one loop thread plus
 * the log's writer and syncer threads, like the I/O thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ingress_log.h"

#define MAX_LIST 16

typedef struct run_s {
    uv_loop_t loop;
    uv_idle_t idle;
    uv_timer_t stop_timer;
    sf_ilog_t *log;
    sf_msg_fifo_t chain; /* the B messages, reused every turn */
    size_t inflight, max_inflight;
    bool stopping;
    uint64_t *lat; /* ns per completed batch */
    size_t nlat, lat_cap;
    uint64_t done_batches, failed;
} run_t;

typedef struct tok_s {
    run_t *r;
    uint64_t t0;
} tok_t;

static void on_idle(uv_idle_t *h);

static void on_done(void *token, int status)
{
    tok_t *t = token;
    run_t *r = t->r;
    if (status != 0)
        r->failed++;
    if (r->nlat == r->lat_cap) {
        r->lat_cap = r->lat_cap ? 2 * r->lat_cap : 4096;
        r->lat = realloc(r->lat, r->lat_cap * sizeof *r->lat);
    }
    r->lat[r->nlat++] = uv_hrtime() - t->t0;
    r->done_batches++;
    free(t);
    if (r->inflight-- == r->max_inflight && !r->stopping)
        uv_idle_start(&r->idle, on_idle);
}

/* One append per loop turn while fewer than K batches wait. */
static void on_idle(uv_idle_t *h)
{
    run_t *r = h->data;
    tok_t *t = malloc(sizeof *t);
    t->r = r;
    t->t0 = uv_hrtime();
    if (sf_ilog_append(r->log, &r->chain, on_done, t) != 0) {
        fprintf(stderr, "append failed\n");
        exit(1);
    }
    if (++r->inflight == r->max_inflight)
        uv_idle_stop(h);
}

static void on_stop_timer(uv_timer_t *h)
{
    run_t *r = h->data;
    r->stopping = true;
    uv_idle_stop(&r->idle);
    uv_close((uv_handle_t *)&r->idle, NULL);
    uv_close((uv_handle_t *)h, NULL);
    sf_ilog_stop(r->log); /* completes what is in flight */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t parse_list(const char *s, unsigned *out)
{
    size_t n = 0;
    while (*s && n < MAX_LIST) {
        out[n++] = (unsigned)strtoul(s, (char **)&s, 10);
        if (*s == ',')
            s++;
    }
    return n;
}

static void bench(const char *root, sf_ilog_fsync mode, unsigned batch, unsigned inflight,
                  double seconds, size_t vsize)
{
    static unsigned seq;
    char dir[4096];
    sf_ilog_config_t cfg;
    sf_ilog_stats_t st;
    run_t r;
    uint8_t *value = calloc(1, vsize + 1);
    uint64_t t0, t1;
    double secs;
    unsigned i;

    memset(&r, 0, sizeof r);
    snprintf(dir, sizeof dir, "%s/run-%u", root, seq++);
    sf_ilog_config_init(&cfg);
    cfg.dir = dir;
    cfg.fsync = mode;
    if (sf_ilog_open(&cfg, &r.log) != 0) {
        fprintf(stderr, "cannot open %s\n", dir);
        exit(1);
    }
    memset(value, 'x', vsize);
    sf_msg_fifo_init(&r.chain);
    for (i = 0; i < batch; i++) {
        char id[32];
        sf_msg_t *m;
        snprintf(id, sizeof id, "user-%u", i);
        if (sf_msg_new_parts("bench", "counter", id, NULL, NULL, NULL, "io.statefun.types/string",
                             value, vsize, 128, &m) != 0)
            exit(1);
        sf_msg_fifo_push(&r.chain, m);
    }
    uv_loop_init(&r.loop);
    sf_ilog_start(r.log, &r.loop);
    r.max_inflight = inflight;
    uv_idle_init(&r.loop, &r.idle);
    r.idle.data = &r;
    uv_timer_init(&r.loop, &r.stop_timer);
    r.stop_timer.data = &r;
    uv_idle_start(&r.idle, on_idle);
    uv_timer_start(&r.stop_timer, on_stop_timer, (uint64_t)(seconds * 1000), 0);
    t0 = uv_hrtime();
    uv_run(&r.loop, UV_RUN_DEFAULT);
    t1 = uv_hrtime();
    secs = (double)(t1 - t0) / 1e9;
    sf_ilog_stats(r.log, &st);
    qsort(r.lat, r.nlat, sizeof *r.lat, cmp_u64);
    printf("%-8s %5u %4u %11.0f %9" PRIu64 " %9" PRIu64 " %9.1f %9.1f %9.1f %9.1f%s\n",
           sf_ilog_fsync_name(mode), batch, inflight, (double)st.records / secs, st.writes,
           st.syncs, st.writes ? (double)st.records / (double)st.writes : 0.0,
           r.nlat ? (double)r.lat[r.nlat / 2] / 1e3 : 0.0,
           r.nlat ? (double)r.lat[r.nlat * 99 / 100] / 1e3 : 0.0,
           (double)st.bytes / secs / 1048576.0, r.failed ? " FAILED" : "");
    fflush(stdout);
    sf_ilog_free(r.log);
    uv_loop_close(&r.loop);
    sf_msg_fifo_clear(&r.chain);
    free(r.lat);
    free(value);
    {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
    }
}

int main(int argc, char **argv)
{
    const char *modes = "always,interval,never", *root = NULL;
    unsigned batches[MAX_LIST], inflights[MAX_LIST];
    size_t nb = parse_list("1,4,16,64,256", batches), ni = parse_list("1,16", inflights);
    double seconds = 1.0;
    size_t vsize = 100, bi, ii;
    char tmp[] = "/tmp/sf-ilog-bench-XXXXXX";
    int i, m;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--modes") == 0)
            modes = v;
        else if (strcmp(a, "--batches") == 0)
            nb = parse_list(v, batches);
        else if (strcmp(a, "--inflight") == 0)
            ni = parse_list(v, inflights);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--value-size") == 0)
            vsize = (size_t)atol(v);
        else if (strcmp(a, "--dir") == 0)
            root = v;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!root) {
        if (!mkdtemp(tmp)) {
            perror("mkdtemp");
            return 1;
        }
    }
    printf("# ingress log: %zu-byte values, %.1f s per run, dir %s\n", vsize, seconds,
           root ? root : tmp);
    printf("%-8s %5s %4s %11s %9s %9s %9s %9s %9s %9s\n", "mode", "batch", "K", "records/s",
           "writes", "syncs", "rec/write", "p50_us", "p99_us", "MiB/s");
    for (m = 0; m <= SF_ILOG_FSYNC_NEVER; m++) {
        if (!strstr(modes, sf_ilog_fsync_name((sf_ilog_fsync)m)))
            continue;
        for (ii = 0; ii < ni; ii++)
            for (bi = 0; bi < nb; bi++)
                bench(root ? root : tmp, (sf_ilog_fsync)m, batches[bi], inflights[ii], seconds,
                      vsize);
    }
    if (!root)
        rmdir(tmp);
    return 0;
}
