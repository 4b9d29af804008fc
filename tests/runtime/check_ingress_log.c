/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/log/ingress_log.c: append and replay round trips across
 * segment rolls, offsets across reopen, torn tails cut at open, a writer
 * killed with SIGKILL mid-stream (every acknowledged record survives),
 * group commit (one write and one fdatasync for many appends of one turn),
 * truncation, a failed write (RLIMIT_FSIZE), the lock, sf_ilog_sync, and
 * the shape of the I/O thread's persist hook.
 *
 * Each test runs its own loop on the test thread; the log's writer and
 * syncer threads are joined by sf_ilog_stop.
 */
#include <check.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "ingress_log.h"
#include "io.h"
#include "testutil.h"

#define MAXP 128

/* The I/O thread's hooks take these functions as they are. */
static int (*const persist_shape)(void *, const sf_msg_fifo_t *, sf_io_persist_done_cb,
                                  void *) = sf_ilog_persist;
static void (*const on_start_shape)(void *, uv_loop_t *) = sf_ilog_on_start;
static void (*const on_stop_shape)(void *, uv_loop_t *) = sf_ilog_on_stop;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */

/* A message whose content follows from |i| (its expected offset). */
static sf_msg_t *mk_msg(uint64_t i, size_t vlen)
{
    char id[32];
    uint8_t *value = malloc(vlen + 1);
    sf_msg_t *m;
    size_t k;
    snprintf(id, sizeof id, "id%" PRIu64, i);
    for (k = 0; k < vlen; k++)
        value[k] = (uint8_t)(i * 31 + k);
    ck_assert_int_eq(
        sf_msg_new_parts("ns", "fn", id, NULL, NULL, NULL, "t/v", value, vlen, MAXP, &m), 0);
    free(value);
    return m;
}

/* True when |m| is the message mk_msg(m->seq, vlen) built. */
static bool msg_ok(const sf_msg_t *m, size_t vlen)
{
    char target[64];
    size_t k;
    snprintf(target, sizeof target, "ns/fn/id%" PRIu64, m->seq);
    if (strcmp(sf_msg_target(m), target) != 0 || m->value_len != vlen ||
        strcmp(sf_msg_typename(m), "t/v") != 0 || sf_msg_caller(m) != NULL)
        return false;
    for (k = 0; k < vlen; k++)
        if (sf_msg_value(m)[k] != (uint8_t)(m->seq * 31 + k))
            return false;
    return true;
}

typedef struct done_s {
    int calls;
    int status;
} done_t;

static int g_done_total;

static void on_done(void *token, int status)
{
    done_t *d = token;
    d->calls++;
    d->status = status;
    g_done_total++;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs |loop| until *|count| >= |want| or 30 s pass. */
static void run_until(uv_loop_t *loop, const int *count, int want)
{
    uv_timer_t t;
    uint64_t end = uv_hrtime() + 30000000000ull;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_tick, 1, 1);
    while (*count < want && uv_hrtime() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    ck_assert_int_ge(*count, want);
}

typedef struct fix_s {
    uv_loop_t loop;
    sf_ilog_config_t cfg;
    sf_ilog_t *log;
    char *dir;      /* the temporary root */
    char path[512]; /* the log directory inside it */
} fix_t;

static void fix_init(fix_t *f, sf_ilog_fsync mode, uint64_t segment_bytes)
{
    memset(f, 0, sizeof *f);
    g_done_total = 0;
    f->dir = sf_test_mkdtemp("ilog");
    snprintf(f->path, sizeof f->path, "%s/state/ingress", f->dir);
    sf_ilog_config_init(&f->cfg);
    f->cfg.dir = f->path;
    f->cfg.fsync = mode;
    f->cfg.segment_bytes = segment_bytes;
    f->cfg.max_parallelism = MAXP;
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
}

static void fix_open(fix_t *f)
{
    ck_assert_int_eq(sf_ilog_open(&f->cfg, &f->log), 0);
    ck_assert_int_eq(sf_ilog_start(f->log, &f->loop), 0);
}

/* Stops and frees the log; the loop stays. */
static void fix_close(fix_t *f)
{
    if (!f->log)
        return;
    sf_ilog_stop(f->log);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    sf_ilog_free(f->log);
    f->log = NULL;
}

static void fix_dispose(fix_t *f)
{
    fix_close(f);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    sf_test_rmtree(f->dir);
}

/* Appends |n| fresh messages (value |vlen| bytes) as one chain and frees
 * them after the call (the chain is borrowed). Returns the first offset. */
static uint64_t append_n(sf_ilog_t *log, size_t n, size_t vlen, done_t *d)
{
    uint64_t first = sf_ilog_next_offset(log);
    sf_msg_fifo_t chain;
    size_t i;
    sf_msg_fifo_init(&chain);
    for (i = 0; i < n; i++)
        sf_msg_fifo_push(&chain, mk_msg(first + i, vlen));
    ck_assert_int_eq(sf_ilog_append(log, &chain, on_done, d), 0);
    for (i = 0; i < n; i++) {
        sf_msg_t *m = sf_msg_fifo_pop(&chain);
        ck_assert_uint_eq(m->seq, first + i);
        sf_msg_free(m);
    }
    return first;
}

/* Replay collector. */
typedef struct coll_s {
    sf_msg_t **v;
    size_t n, cap;
    size_t vlen;
    int bad;
} coll_t;

static int collect(void *ud, sf_msg_t *m)
{
    coll_t *c = ud;
    if (!msg_ok(m, c->vlen))
        c->bad++;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = m;
    return 0;
}

static void coll_free(coll_t *c)
{
    size_t i;
    for (i = 0; i < c->n; i++)
        sf_msg_free(c->v[i]);
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* Replays |log| from |from| and checks the records are |first|..|end|-1. */
static void expect_replay(sf_ilog_t *log, uint64_t from, uint64_t first, uint64_t end, size_t vlen)
{
    coll_t c = {.vlen = vlen};
    size_t i;
    ck_assert_int_eq(sf_ilog_replay(log, from, collect, &c), 0);
    ck_assert_int_eq(c.bad, 0);
    ck_assert_uint_eq(c.n, end - first);
    for (i = 0; i < c.n; i++)
        ck_assert_uint_eq(c.v[i]->seq, first + i);
    coll_free(&c);
}

static size_t count_segments(const char *dir)
{
    char cmd[600];
    FILE *p;
    size_t n = 0;
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '^[0-9]\\{20\\}\\.log$'", dir);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%zu", &n), 1);
    pclose(p);
    return n;
}

/* The path of the newest segment file. */
static void last_segment(const char *dir, char *out, size_t len)
{
    char cmd[600], name[64];
    FILE *p;
    snprintf(cmd, sizeof cmd, "ls %s | grep '^[0-9]\\{20\\}\\.log$' | sort | tail -n 1", dir);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(name, (int)sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = '\0';
    ck_assert_int_lt(snprintf(out, len, "%s/%s", dir, name), (int)len);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                      */

START_TEST(test_hook_shapes_and_config)
{
    sf_ilog_fsync m;
    sf_ilog_config_t c;
    sf_ilog_t *log;
    ck_assert_ptr_nonnull(persist_shape);
    ck_assert_ptr_nonnull(on_start_shape);
    ck_assert_ptr_nonnull(on_stop_shape);
    ck_assert_int_eq(sf_ilog_fsync_parse("always", &m), 0);
    ck_assert_int_eq(m, SF_ILOG_FSYNC_ALWAYS);
    ck_assert_int_eq(sf_ilog_fsync_parse("interval", &m), 0);
    ck_assert_int_eq(m, SF_ILOG_FSYNC_INTERVAL);
    ck_assert_int_eq(sf_ilog_fsync_parse("never", &m), 0);
    ck_assert_int_eq(m, SF_ILOG_FSYNC_NEVER);
    ck_assert_int_eq(sf_ilog_fsync_parse("sometimes", &m), SF_EINVAL);
    ck_assert_str_eq(sf_ilog_fsync_name(SF_ILOG_FSYNC_INTERVAL), "interval");
    sf_ilog_config_init(&c);
    ck_assert_int_eq(c.fsync, SF_ILOG_FSYNC_INTERVAL);
    ck_assert_uint_eq(c.fsync_interval_ms, 5);
    ck_assert_int_eq(sf_ilog_open(&c, &log), SF_EINVAL); /* no dir */
    c.dir = "/tmp/x";
    c.max_parallelism = 0;
    ck_assert_int_eq(sf_ilog_open(&c, &log), SF_EINVAL);
}
END_TEST

START_TEST(test_roundtrip_across_rolls)
{
    fix_t f;
    done_t d[60];
    sf_ilog_stats_t st;
    size_t turn, total = 0;
    memset(d, 0, sizeof d);
    fix_init(&f, SF_ILOG_FSYNC_INTERVAL, 4096);
    fix_open(&f);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), 0);
    /* 60 turns of 1..40 records: one append per turn. */
    for (turn = 0; turn < 60; turn++) {
        size_t n = 1 + (turn * 7) % 40;
        ck_assert_uint_eq(append_n(f.log, n, 100, &d[turn]), total);
        total += n;
        run_until(&f.loop, &g_done_total, (int)turn + 1);
        ck_assert_int_eq(d[turn].calls, 1);
        ck_assert_int_eq(d[turn].status, 0);
    }
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.records, total);
    ck_assert_uint_eq(st.next_offset, total);
    ck_assert_uint_eq(st.written_offset, total);
    ck_assert_uint_gt(st.segments_created, 5);
    ck_assert_uint_eq(st.segments, st.segments_created);
    ck_assert_uint_eq(count_segments(f.path), st.segments);
    /* Replay while open, then after a reopen. */
    expect_replay(f.log, 0, 0, total, 100);
    fix_close(&f);
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), total);
    expect_replay(f.log, 0, 0, total, 100);
    expect_replay(f.log, 537, 537, total, 100);
    expect_replay(f.log, total - 1, total - 1, total, 100);
    expect_replay(f.log, total, total, total, 100);
    expect_replay(f.log, total + 100, total, total, 100);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.torn_bytes, 0);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

START_TEST(test_offsets_monotonic_across_reopen)
{
    fix_t f;
    done_t d = {0}, d2 = {0}, d3 = {0};
    fix_init(&f, SF_ILOG_FSYNC_ALWAYS, 0);
    fix_open(&f);
    ck_assert_uint_eq(append_n(f.log, 10, 20, &d), 0);
    run_until(&f.loop, &d.calls, 1);
    fix_close(&f);

    fix_open(&f);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), 10);
    ck_assert_uint_eq(append_n(f.log, 5, 20, &d2), 10);
    run_until(&f.loop, &d2.calls, 1);
    ck_assert_int_eq(d2.status, 0);
    fix_close(&f);

    /* A checkpoint that counted offsets up to 100 as consumed moves them on. */
    f.cfg.first_offset = 100;
    fix_open(&f);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), 100);
    ck_assert_uint_eq(append_n(f.log, 3, 20, &d3), 100);
    run_until(&f.loop, &d3.calls, 1);
    fix_close(&f);

    f.cfg.first_offset = 0;
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), 103);
    {
        coll_t c = {.vlen = 20};
        size_t i;
        ck_assert_int_eq(sf_ilog_replay(f.log, 0, collect, &c), 0);
        ck_assert_int_eq(c.bad, 0);
        ck_assert_uint_eq(c.n, 18);
        for (i = 0; i < 15; i++)
            ck_assert_uint_eq(c.v[i]->seq, i);
        for (i = 15; i < 18; i++)
            ck_assert_uint_eq(c.v[i]->seq, 100 + i - 15);
        coll_free(&c);
    }
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

/* Writes 20 records, damages the last segment with |damage|, reopens. */
static void torn_case(int damage)
{
    fix_t f;
    done_t d = {0};
    sf_ilog_stats_t st;
    char seg[600];
    off_t size;
    int fd;
    uint64_t expect_next = 20;

    fix_init(&f, SF_ILOG_FSYNC_INTERVAL, 0);
    fix_open(&f);
    append_n(f.log, 20, 50, &d);
    run_until(&f.loop, &d.calls, 1);
    fix_close(&f);
    last_segment(f.path, seg, sizeof seg);
    size = file_size(seg);
    if (damage == 0) {
        /* Garbage after the last record. */
        static const char junk[] = "\x13\x00\x00\x00garbage that is not a record";
        fd = open(seg, O_WRONLY | O_APPEND);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, junk, sizeof junk - 1), (ssize_t)sizeof junk - 1);
        close(fd);
    } else if (damage == 1) {
        /* Cut in the middle of the last record. */
        ck_assert_int_eq(truncate(seg, size - 5), 0);
        expect_next = 19;
    } else if (damage == 2) {
        /* A flipped byte in the last record's payload: the checksum fails. */
        uint8_t b;
        fd = open(seg, O_RDWR);
        ck_assert_int_eq(pread(fd, &b, 1, size - 3), 1);
        b ^= 0x40;
        ck_assert_int_eq(pwrite(fd, &b, 1, size - 3), 1);
        close(fd);
        expect_next = 19;
    } else {
        /* Only 3 bytes of a header after the last record. */
        fd = open(seg, O_WRONLY | O_APPEND);
        ck_assert_int_eq(write(fd, "\x40\0\0", 3), 3);
        close(fd);
    }
    fix_open(&f);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), expect_next);
    if (damage == 0)
        ck_assert_uint_eq(st.torn_bytes, 32);
    else if (damage == 3)
        ck_assert_uint_eq(st.torn_bytes, 3);
    else
        ck_assert_uint_gt(st.torn_bytes, 0);
    ck_assert_int_eq(file_size(seg), damage == 1   ? size - 5 - (off_t)st.torn_bytes
                                     : damage == 2 ? size - (off_t)st.torn_bytes
                                                   : size);
    expect_replay(f.log, 0, 0, expect_next, 50);
    /* Appends go on right after the last intact record. */
    {
        done_t d2 = {0};
        ck_assert_uint_eq(append_n(f.log, 4, 50, &d2), expect_next);
        run_until(&f.loop, &d2.calls, 1);
        ck_assert_int_eq(d2.status, 0);
    }
    expect_replay(f.log, 0, 0, expect_next + 4, 50);
    fix_close(&f);
    fix_open(&f);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.torn_bytes, 0);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), expect_next + 4);
    fix_dispose(&f);
}

START_TEST(test_torn_tail_garbage)
{
    torn_case(0);
}
END_TEST
START_TEST(test_torn_tail_cut_record)
{
    torn_case(1);
}
END_TEST
START_TEST(test_torn_tail_bad_checksum)
{
    torn_case(2);
}
END_TEST
START_TEST(test_torn_tail_partial_header)
{
    torn_case(3);
}
END_TEST

START_TEST(test_group_commit)
{
    fix_t f;
    done_t d[50];
    sf_ilog_stats_t st;
    int i;
    memset(d, 0, sizeof d);
    fix_init(&f, SF_ILOG_FSYNC_ALWAYS, 0);
    fix_open(&f);
    /* 50 appends in one loop turn (as from 50 concurrent requests)... */
    for (i = 0; i < 50; i++) {
        uint64_t next = sf_ilog_next_offset(f.log);
        ck_assert_uint_eq(append_n(f.log, 1 + (size_t)(i % 3), 100, &d[i]), next);
    }
    /* ...complete later, on the loop, never inside the call. */
    ck_assert_int_eq(g_done_total, 0);
    run_until(&f.loop, &g_done_total, 50);
    for (i = 0; i < 50; i++) {
        ck_assert_int_eq(d[i].calls, 1);
        ck_assert_int_eq(d[i].status, 0);
    }
    sf_ilog_stats(f.log, &st);
    /* ...and share ONE write and ONE fdatasync. */
    ck_assert_uint_eq(st.appends, 50);
    ck_assert_uint_eq(st.batches, 1);
    ck_assert_uint_eq(st.writes, 1);
    ck_assert_uint_eq(st.syncs, 1);
    ck_assert_uint_eq(st.durable_offset, st.next_offset);
    /* An empty chain completes too, without a write. */
    {
        done_t e = {0};
        sf_msg_fifo_t empty;
        sf_msg_fifo_init(&empty);
        g_done_total = 0;
        ck_assert_int_eq(sf_ilog_persist(f.log, &empty, on_done, &e), 0);
        run_until(&f.loop, &e.calls, 1);
        ck_assert_int_eq(e.status, 0);
        sf_ilog_stats(f.log, &st);
        ck_assert_uint_eq(st.writes, 1);
    }
    fix_dispose(&f);
}
END_TEST

/* Turns pile up while the writer is busy: fewer writes than turns. */
static int g_turns_left;
static done_t g_pile[200];
static void on_pile_idle(uv_idle_t *h)
{
    sf_ilog_t *log = h->data;
    if (g_turns_left == 0) {
        uv_idle_stop(h);
        return;
    }
    g_turns_left--;
    append_n(log, 2, 100, &g_pile[g_turns_left]);
}

START_TEST(test_group_commit_across_turns)
{
    fix_t f;
    uv_idle_t idle;
    sf_ilog_stats_t st;
    fix_init(&f, SF_ILOG_FSYNC_ALWAYS, 0);
    fix_open(&f);
    memset(g_pile, 0, sizeof g_pile);
    g_turns_left = 200;
    uv_idle_init(&f.loop, &idle);
    idle.data = f.log;
    uv_idle_start(&idle, on_pile_idle);
    run_until(&f.loop, &g_done_total, 200);
    uv_close((uv_handle_t *)&idle, NULL);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.batches, 200);
    ck_assert_uint_lt(st.writes, 200);
    ck_assert_uint_eq(st.writes, st.syncs);
    expect_replay(f.log, 0, 0, 400, 100);
    fix_dispose(&f);
}
END_TEST

START_TEST(test_truncate_before)
{
    fix_t f;
    done_t d[50];
    sf_ilog_stats_t st;
    size_t i, nseg;
    ssize_t k;
    memset(d, 0, sizeof d);
    fix_init(&f, SF_ILOG_FSYNC_NEVER, 2048);
    fix_open(&f);
    for (i = 0; i < 50; i++) {
        append_n(f.log, 10, 60, &d[i]);
        run_until(&f.loop, &d[i].calls, 1);
    }
    nseg = count_segments(f.path);
    ck_assert_uint_gt(nseg, 10);
    ck_assert_uint_eq(sf_ilog_first_offset(f.log), 0);
    ck_assert_int_eq(sf_ilog_truncate_before(f.log, 0), 0);
    k = sf_ilog_truncate_before(f.log, 250);
    ck_assert_int_gt(k, 0);
    ck_assert_uint_eq(count_segments(f.path), nseg - (size_t)k);
    ck_assert_uint_le(sf_ilog_first_offset(f.log), 250);
    ck_assert_uint_gt(sf_ilog_first_offset(f.log), 200);
    /* Everything from 250 on is still there. */
    {
        coll_t c = {.vlen = 60};
        ck_assert_int_eq(sf_ilog_replay(f.log, 0, collect, &c), 0);
        ck_assert_int_eq(c.bad, 0);
        ck_assert_uint_eq(c.v[0]->seq, sf_ilog_first_offset(f.log));
        ck_assert_uint_eq(c.v[c.n - 1]->seq, 499);
        coll_free(&c);
    }
    expect_replay(f.log, 250, 250, 500, 60);
    /* The last segment stays, even past the end. */
    k = sf_ilog_truncate_before(f.log, 10000);
    ck_assert_int_gt(k, 0);
    ck_assert_uint_eq(count_segments(f.path), 1);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.segments, 1);
    ck_assert_uint_eq(st.segments_deleted, nseg - 1);
    fix_close(&f);
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), 500);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

START_TEST(test_stop_completes_and_cancels)
{
    fix_t f;
    done_t d = {0}, d2 = {0};
    sf_msg_fifo_t chain;
    fix_init(&f, SF_ILOG_FSYNC_INTERVAL, 0);
    fix_open(&f);
    append_n(f.log, 7, 10, &d);
    /* Stop before the loop ever ran: the batch is written, done is called. */
    sf_ilog_stop(f.log);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.status, 0);
    sf_msg_fifo_init(&chain);
    ck_assert_int_eq(sf_ilog_append(f.log, &chain, on_done, &d2), SF_ECANCELED);
    sf_ilog_stop(f.log); /* idempotent */
    uv_run(&f.loop, UV_RUN_DEFAULT);
    /* interval mode synced at stop; sync after stop returns at once. */
    ck_assert_int_eq(sf_ilog_sync(f.log), 0);
    {
        sf_ilog_stats_t st;
        sf_ilog_stats(f.log, &st);
        ck_assert_uint_eq(st.durable_offset, 7);
    }
    sf_ilog_free(f.log);
    f.log = NULL;
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    expect_replay(f.log, 0, 0, 7, 10);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

START_TEST(test_lock)
{
    fix_t f;
    sf_ilog_t *other;
    fix_init(&f, SF_ILOG_FSYNC_INTERVAL, 0);
    fix_open(&f);
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &other), SF_EEXIST);
    fix_dispose(&f);
}
END_TEST

START_TEST(test_interval_and_sync)
{
    fix_t f;
    done_t d = {0}, d2 = {0};
    sf_ilog_stats_t st;
    uint64_t end;
    /* A long interval: acknowledged records wait for sf_ilog_sync. */
    fix_init(&f, SF_ILOG_FSYNC_INTERVAL, 0);
    f.cfg.fsync_interval_ms = 60000;
    fix_open(&f);
    append_n(f.log, 5, 10, &d);
    run_until(&f.loop, &d.calls, 1);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.written_offset, 5);
    ck_assert_uint_eq(st.durable_offset, 0);
    ck_assert_uint_eq(st.syncs, 0);
    ck_assert_int_eq(sf_ilog_sync(f.log), 0);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.durable_offset, 5);
    ck_assert_uint_eq(st.syncs, 1);
    fix_close(&f);

    /* The default interval: synced within a few milliseconds, off the ack path. */
    f.cfg.fsync_interval_ms = 0;
    fix_open(&f);
    append_n(f.log, 5, 10, &d2);
    run_until(&f.loop, &d2.calls, 1);
    end = uv_hrtime() + 5000000000ull;
    do {
        usleep(1000);
        sf_ilog_stats(f.log, &st);
    } while (st.durable_offset < 10 && uv_hrtime() < end);
    ck_assert_uint_eq(st.durable_offset, 10);
    fix_dispose(&f);
}
END_TEST

START_TEST(test_never_sync_covers_rolled_segments)
{
    fix_t f;
    done_t d[20];
    sf_ilog_stats_t st;
    int i;
    memset(d, 0, sizeof d);
    fix_init(&f, SF_ILOG_FSYNC_NEVER, 1024);
    fix_open(&f);
    for (i = 0; i < 20; i++) {
        append_n(f.log, 5, 50, &d[i]);
        run_until(&f.loop, &d[i].calls, 1);
    }
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.syncs, 0);
    ck_assert_uint_gt(st.segments, 3);
    ck_assert_int_eq(sf_ilog_sync(f.log), 0);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.durable_offset, 100);
    /* One sync per segment (the rolled ones through new descriptors). */
    ck_assert_uint_eq(st.syncs, st.segments);
    fix_close(&f);
    /* Reopened in `never` mode, the older segments count as unsynced until a sync. */
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.durable_offset, 0);
    ck_assert_int_eq(sf_ilog_sync(f.log), 0);
    sf_ilog_stats(f.log, &st);
    ck_assert_uint_eq(st.durable_offset, 100);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

START_TEST(test_write_error_fails_batch)
{
    fix_t f;
    done_t d = {0}, d2 = {0}, d3 = {0};
    struct rlimit old, lim;
    struct sigaction sa, oldsa;
    int status1;
    uint64_t first2;

    fix_init(&f, SF_ILOG_FSYNC_ALWAYS, 0);
    fix_open(&f);
    append_n(f.log, 3, 100, &d);
    run_until(&f.loop, &d.calls, 1);
    ck_assert_int_eq(d.status, 0);

    /* The segment may not grow past 256 KiB: a 400 KiB batch fails half-way. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigaction(SIGXFSZ, &sa, &oldsa), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    append_n(f.log, 100, 4000, &d2);
    run_until(&f.loop, &d2.calls, 1);
    status1 = d2.status;
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &oldsa, NULL);
    ck_assert_int_eq(status1, SF_EIO);

    /* The log goes on; the failed offsets are a gap, never reused. */
    first2 = append_n(f.log, 2, 100, &d3);
    ck_assert_uint_eq(first2, 103);
    run_until(&f.loop, &d3.calls, 1);
    ck_assert_int_eq(d3.status, 0);
    {
        coll_t c = {.vlen = 100};
        sf_ilog_stats_t st;
        /* (mixed value sizes: only the offsets are checked here) */
        ck_assert_int_eq(sf_ilog_replay(f.log, 0, collect, &c), 0);
        ck_assert_int_eq(c.bad, 0);
        ck_assert_uint_eq(c.n, 5);
        ck_assert_uint_eq(c.v[2]->seq, 2);
        ck_assert_uint_eq(c.v[3]->seq, 103);
        ck_assert_uint_eq(c.v[4]->seq, 104);
        coll_free(&c);
        sf_ilog_stats(f.log, &st);
        ck_assert_uint_eq(st.write_errors, 1);
    }
    fix_close(&f);
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), 105);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

START_TEST(test_replay_skips_corrupt_middle_segment)
{
    fix_t f;
    done_t d[10];
    char seg[600];
    coll_t c = {.vlen = 100};
    int fd;
    size_t i;
    memset(d, 0, sizeof d);
    fix_init(&f, SF_ILOG_FSYNC_INTERVAL, 1500);
    fix_open(&f);
    for (i = 0; i < 10; i++) {
        append_n(f.log, 10, 100, &d[i]);
        run_until(&f.loop, &d[i].calls, 1);
    }
    fix_close(&f);
    /* Damage the second segment (offsets 10..19) at its 4th record. */
    snprintf(seg, sizeof seg, "%s/%020d.log", f.path, 10);
    fd = open(seg, O_RDWR);
    ck_assert_int_ge(fd, 0);
    {
        uint8_t b = 0;
        off_t at = 3 * (file_size(seg) / 10) + 20;
        ck_assert_int_eq(pread(fd, &b, 1, at), 1);
        b ^= 1;
        ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    }
    close(fd);
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    ck_assert_int_eq(sf_ilog_replay(f.log, 0, collect, &c), 0);
    ck_assert_int_eq(c.bad, 0);
    /* 10..12 survive, 13..19 are skipped, the rest follows. */
    ck_assert_uint_eq(c.n, 93);
    ck_assert_uint_eq(c.v[12]->seq, 12);
    ck_assert_uint_eq(c.v[13]->seq, 20);
    coll_free(&c);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}
END_TEST

/* Another thread syncs, truncates and replays while the loop appends. */
typedef struct side_s {
    sf_ilog_t *log;
    _Atomic int stop;
    _Atomic int syncs, truncs, replays, errors;
} side_t;

static int count_only(void *ud, sf_msg_t *m)
{
    (*(size_t *)ud)++;
    sf_msg_free(m);
    return 0;
}

static void side_main(void *arg)
{
    side_t *s = arg;
    while (!atomic_load(&s->stop)) {
        uint64_t next = sf_ilog_next_offset(s->log);
        size_t n = 0;
        if (sf_ilog_sync(s->log) != 0)
            s->errors++;
        s->syncs++;
        if (next > 200 && sf_ilog_truncate_before(s->log, next - 200) < 0)
            s->errors++;
        s->truncs++;
        if (sf_ilog_replay(s->log, next > 100 ? next - 100 : 0, count_only, &n) != 0)
            s->errors++;
        s->replays++;
    }
}

static done_t g_conc[400];
static int g_conc_left;
static void on_conc_idle(uv_idle_t *h)
{
    if (g_conc_left == 0) {
        uv_idle_stop(h);
        return;
    }
    g_conc_left--;
    append_n(h->data, 3, 100, &g_conc[g_conc_left]);
}

START_TEST(test_concurrent_sync_truncate_replay)
{
    static const sf_ilog_fsync modes[] = {SF_ILOG_FSYNC_INTERVAL, SF_ILOG_FSYNC_NEVER,
                                          SF_ILOG_FSYNC_ALWAYS};
    size_t k;
    for (k = 0; k < SF_ARRAY_SIZE(modes); k++) {
        fix_t f;
        uv_idle_t idle;
        uv_thread_t th;
        side_t side;
        uint64_t first;
        fix_init(&f, modes[k], 2048);
        fix_open(&f);
        memset(&side, 0, sizeof side);
        side.log = f.log;
        ck_assert_int_eq(uv_thread_create(&th, side_main, &side), 0);
        memset(g_conc, 0, sizeof g_conc);
        g_conc_left = 400;
        uv_idle_init(&f.loop, &idle);
        idle.data = f.log;
        uv_idle_start(&idle, on_conc_idle);
        run_until(&f.loop, &g_done_total, 400);
        uv_close((uv_handle_t *)&idle, NULL);
        /* Let the other thread go round a few times more (valgrind runs one
         * thread at a time), then truncate from here too. */
        {
            uint64_t end = uv_hrtime() + 10000000000ull;
            int seen = atomic_load(&side.replays);
            while (atomic_load(&side.replays) < seen + 3 && uv_hrtime() < end)
                usleep(1000);
        }
        atomic_store(&side.stop, 1);
        uv_thread_join(&th);
        ck_assert_int_eq(side.errors, 0);
        ck_assert_int_gt(side.syncs, 0);
        ck_assert_int_ge(sf_ilog_truncate_before(f.log, 1000), 0);
        first = sf_ilog_first_offset(f.log);
        ck_assert_uint_gt(first, 0);
        expect_replay(f.log, first, first, 1200, 100);
        fix_dispose(&f);
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A writer killed with SIGKILL                                               */

typedef struct child_s {
    sf_ilog_t *log;
    int out;      /* pipe to the parent */
    int inflight; /* appends whose done has not run */
    uint64_t rnd;
} child_t;

typedef struct child_tok_s {
    child_t *c;
    uint64_t first;
    size_t n;
} child_tok_t;

static void child_done(void *token, int status)
{
    child_tok_t *t = token;
    char buf[32 * 24];
    size_t i, len = 0;
    if (status != 0)
        _exit(3);
    /* Acknowledged: tell the parent every offset. */
    for (i = 0; i < t->n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%" PRIu64 "\n", t->first + i);
    if (write(t->c->out, buf, len) != (ssize_t)len)
        _exit(4);
    t->c->inflight--;
    free(t);
}

static void child_idle(uv_idle_t *h)
{
    child_t *c = h->data;
    sf_msg_fifo_t chain;
    child_tok_t *t;
    size_t i;
    if (c->inflight >= 16)
        return;
    c->rnd = c->rnd * 6364136223846793005ull + 1442695040888963407ull;
    t = malloc(sizeof *t);
    t->c = c;
    t->n = 1 + (size_t)(c->rnd >> 59); /* 1..32 */
    t->first = sf_ilog_next_offset(c->log);
    sf_msg_fifo_init(&chain);
    for (i = 0; i < t->n; i++) {
        sf_msg_t *m;
        char id[32];
        uint8_t value[300];
        size_t k;
        snprintf(id, sizeof id, "id%" PRIu64, t->first + i);
        for (k = 0; k < sizeof value; k++)
            value[k] = (uint8_t)((t->first + i) * 31 + k);
        if (sf_msg_new_parts("ns", "fn", id, NULL, NULL, NULL, "t/v", value, sizeof value, MAXP,
                             &m) != 0)
            _exit(5);
        sf_msg_fifo_push(&chain, m);
    }
    if (sf_ilog_append(c->log, &chain, child_done, t) != 0)
        _exit(6);
    c->inflight++;
    sf_msg_fifo_clear(&chain);
}

static void child_main(const sf_ilog_config_t *cfg, int out)
{
    uv_loop_t loop;
    uv_idle_t idle;
    child_t c = {0};
    c.out = out;
    c.rnd = (uint64_t)getpid();
    if (uv_loop_init(&loop) != 0 || sf_ilog_open(cfg, &c.log) != 0 ||
        sf_ilog_start(c.log, &loop) != 0)
        _exit(2);
    uv_idle_init(&loop, &idle);
    idle.data = &c;
    uv_idle_start(&idle, child_idle);
    uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
    _exit(7);
}

static void crash_case(sf_ilog_fsync mode)
{
    fix_t f;
    int fds[2];
    pid_t pid;
    char buf[65536], line[32];
    size_t linelen = 0, nacked = 0, acked_cap = 4096;
    uint64_t *acked = malloc(acked_cap * sizeof *acked), end;
    coll_t c = {.vlen = 300};
    sf_ilog_stats_t st;
    size_t i, j;
    int wstatus;
    bool killed = false;

    fix_init(&f, mode, 256 * 1024);
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(&f.cfg, fds[1]);
    }
    close(fds[1]);
    /* Read acknowledged offsets; kill the child mid-stream. */
    end = uv_hrtime() + 20000000000ull;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        ssize_t n;
        if (!killed && (nacked >= 3000 || uv_hrtime() > end)) {
            kill(pid, SIGKILL);
            killed = true;
        }
        if (poll(&p, 1, 100) == 0)
            continue;
        n = read(fds[0], buf, sizeof buf);
        if (n <= 0)
            break; /* the child is gone and the pipe drained */
        for (i = 0; i < (size_t)n; i++) {
            if (buf[i] != '\n') {
                if (linelen < sizeof line - 1)
                    line[linelen++] = buf[i];
                continue;
            }
            line[linelen] = '\0';
            linelen = 0;
            if (nacked == acked_cap) {
                acked_cap *= 2;
                acked = realloc(acked, acked_cap * sizeof *acked);
            }
            acked[nacked++] = strtoull(line, NULL, 10);
        }
    }
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
    ck_assert_uint_ge(nacked, 100);

    /* Reopen: every acknowledged record is there and intact. */
    ck_assert_int_eq(sf_ilog_open(&f.cfg, &f.log), 0);
    ck_assert_int_eq(sf_ilog_replay(f.log, 0, collect, &c), 0);
    ck_assert_int_eq(c.bad, 0);
    ck_assert_uint_ge(c.n, nacked);
    for (i = 1; i < c.n; i++)
        ck_assert_uint_eq(c.v[i]->seq, c.v[i - 1]->seq + 1);
    /* Offsets are contiguous from 0 and acknowledged in order. */
    for (j = 0; j < nacked; j++) {
        ck_assert_uint_eq(acked[j], j);
        ck_assert_uint_eq(c.v[acked[j]]->seq, acked[j]);
    }
    ck_assert_uint_eq(sf_ilog_next_offset(f.log), c.n);
    sf_ilog_stats(f.log, &st);
    fprintf(stderr, "ilog crash (%s): %zu acknowledged, %zu on disk, %" PRIu64 " torn bytes\n",
            sf_ilog_fsync_name(mode), nacked, c.n, st.torn_bytes);
    coll_free(&c);
    free(acked);
    sf_ilog_free(f.log);
    f.log = NULL;
    fix_dispose(&f);
}

START_TEST(test_kill9_interval)
{
    crash_case(SF_ILOG_FSYNC_INTERVAL);
}
END_TEST
START_TEST(test_kill9_always)
{
    crash_case(SF_ILOG_FSYNC_ALWAYS);
}
END_TEST
START_TEST(test_kill9_never)
{
    crash_case(SF_ILOG_FSYNC_NEVER);
}
END_TEST

Suite *sf_runtime_ingress_log_suite(void)
{
    Suite *s = suite_create("runtime_ingress_log");
    TCase *tc = tcase_create("ingress_log");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_hook_shapes_and_config);
    tcase_add_test(tc, test_roundtrip_across_rolls);
    tcase_add_test(tc, test_offsets_monotonic_across_reopen);
    tcase_add_test(tc, test_torn_tail_garbage);
    tcase_add_test(tc, test_torn_tail_cut_record);
    tcase_add_test(tc, test_torn_tail_bad_checksum);
    tcase_add_test(tc, test_torn_tail_partial_header);
    tcase_add_test(tc, test_group_commit);
    tcase_add_test(tc, test_group_commit_across_turns);
    tcase_add_test(tc, test_truncate_before);
    tcase_add_test(tc, test_stop_completes_and_cancels);
    tcase_add_test(tc, test_lock);
    tcase_add_test(tc, test_interval_and_sync);
    tcase_add_test(tc, test_never_sync_covers_rolled_segments);
    tcase_add_test(tc, test_write_error_fails_batch);
    tcase_add_test(tc, test_replay_skips_corrupt_middle_segment);
    tcase_add_test(tc, test_concurrent_sync_truncate_replay);
    tcase_add_test(tc, test_kill9_interval);
    tcase_add_test(tc, test_kill9_always);
    tcase_add_test(tc, test_kill9_never);
    suite_add_tcase(s, tc);
    return s;
}
