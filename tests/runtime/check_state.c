/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/state: every test body runs against both backends
 * (loop index 0 = RocksDB, 1 = memory) with a clock the test controls:
 * values with typenames, atomic batches, TTL in both modes (expired values
 * are neither returned nor kept), timers in fire order across key groups and
 * their cancellation by token, surviving close and reopen (memory: through a
 * snapshot), key-group range scans, log records, checkpoint and restore into
 * a fresh directory, workers writing concurrently on their own key
 * groups, one key overwritten in place with values that shrink and grow, and
 * the options RocksDB recorded for the runtime's settings.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "testutil.h"
#include "vcache.h"

static const char *const kinds[] = {"rocksdb", "memory"};

typedef struct {
    const char *kind;
    char *tmp;          /* the test's temporary directory */
    char dir[512];      /* the live RocksDB directory */
    uint32_t maxp;
    int reopens;
    sf_state_backend_t *b;
    sf_state_batch_t *batch;
} fx_t;

static sf_addr_t addr(const char *ns, const char *type, const char *id)
{
    sf_addr_t a = {ns, strlen(ns), type, strlen(type), id, strlen(id)};
    return a;
}

static void fx_open(fx_t *f, int i, uint32_t maxp)
{
    memset(f, 0, sizeof *f);
    f->kind = kinds[i];
    f->maxp = maxp;
    f->tmp = sf_test_mkdtemp("state");
    ck_assert_ptr_nonnull(f->tmp);
    snprintf(f->dir, sizeof f->dir, "%s/db", f->tmp);
    ck_assert_int_eq(sf_state_open(f->kind, f->dir, maxp, &f->b), 0);
    ck_assert_str_eq(sf_state_kind(f->b), f->kind);
    ck_assert_uint_eq(sf_state_max_parallelism(f->b), maxp);
    ck_assert_int_eq(sf_state_batch_new(f->b, &f->batch), 0);
}

static void fx_close(fx_t *f)
{
    sf_state_batch_free(f->batch);
    sf_state_close(f->b);
    sf_test_rmtree(f->tmp);
}

/* Close and open again: RocksDB reopens its directory, memory goes through a
 * checkpoint snapshot (its only way to outlive the process). */
static void fx_reopen(fx_t *f)
{
    sf_state_options_t o;
    char cp[600];
    sf_state_batch_free(f->batch);
    sf_state_options_init(&o);
    o.kind = f->kind;
    o.dir = f->dir;
    o.max_parallelism = f->maxp;
    if (strcmp(f->kind, "memory") == 0) {
        snprintf(cp, sizeof cp, "%s/reopen-%d", f->tmp, f->reopens++);
        ck_assert_int_eq(sf_state_checkpoint(f->b, cp), 0);
        sf_state_close(f->b);
        ck_assert_int_eq(sf_state_open_from(&o, cp, &f->b), 0);
    } else {
        sf_state_close(f->b);
        ck_assert_int_eq(sf_state_open2(&o, &f->b), 0);
    }
    ck_assert_int_eq(sf_state_batch_new(f->b, &f->batch), 0);
}

static void put(fx_t *f, uint16_t kg, const char *id, const char *name, const char *type_name,
                const char *data, sf_state_ttl_mode mode, int64_t ttl, int64_t now)
{
    sf_addr_t a = addr("ns", "fn", id);
    ck_assert_int_eq(sf_state_batch_put(f->batch, kg, &a, name, type_name, (const uint8_t *)data,
                                        strlen(data), mode, ttl, now),
                     0);
    ck_assert_int_eq(sf_state_batch_commit(f->batch), 0);
}

/* Reads a state; returns 1/0 and copies the data as a string into |out|. */
static int get(fx_t *f, sf_state_batch_t *batch, uint16_t kg, const char *id, const char *name,
               int64_t now, int flags, char *out, sf_state_value_t *v)
{
    sf_addr_t a = addr("ns", "fn", id);
    sf_state_value_t tmp;
    sf_buf_t buf;
    int rv;
    sf_buf_init(&buf, NULL);
    if (!v)
        v = &tmp;
    rv = sf_state_get(f->b, batch, kg, &a, name, now, flags, &buf, v);
    if (rv == 1 && out) {
        memcpy(out, v->data, v->len);
        out[v->len] = '\0';
    }
    if (rv == 1)
        v->type_name = NULL; /* the buffer goes away */
    sf_buf_dispose(&buf);
    return rv;
}

/* Options for a RocksDB store in |dir| with 16 key groups; the rest as defaulted. */
static void rocks_options(sf_state_options_t *o, const char *dir)
{
    sf_state_options_init(o);
    o->kind = "rocksdb";
    o->dir = dir;
    o->max_parallelism = 16;
}

static int count_cb(const sf_state_entry_t *e, void *ud)
{
    (*(int *)ud)++;
    return 0;
}

/* ------------------------------------------------------------------------ */

START_TEST(test_put_get_delete)
{
    fx_t f;
    sf_addr_t a = addr("ns", "fn", "a");
    sf_state_value_t v;
    sf_buf_t buf;
    char out[64];
    int n = 0;
    fx_open(&f, _i, 128);
    sf_buf_init(&buf, NULL);

    put(&f, 3, "a", "seen", "io.statefun.types/int", "1234", SF_STATE_TTL_NONE, 0, 1000);
    ck_assert_int_eq(sf_state_get(f.b, NULL, 3, &a, "seen", 1000, 0, &buf, &v), 1);
    ck_assert_str_eq(v.type_name, "io.statefun.types/int");
    ck_assert_uint_eq(v.len, 4);
    ck_assert(memcmp(v.data, "1234", 4) == 0);
    ck_assert_int_eq(v.ttl_mode, SF_STATE_TTL_NONE);
    ck_assert_int_eq(v.expire_at_ms, 0);

    /* Other names, addresses and key groups are absent. */
    ck_assert_int_eq(get(&f, NULL, 3, "a", "other", 1000, 0, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, NULL, 3, "b", "seen", 1000, 0, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, NULL, 4, "a", "seen", 1000, 0, NULL, NULL), 0);

    /* A second state, then an overwrite with another type and size. */
    put(&f, 3, "a", "name", "io.statefun.types/string", "alice", SF_STATE_TTL_NONE, 0, 1000);
    put(&f, 3, "a", "seen", "com.example/Counter", "a much longer value than before",
        SF_STATE_TTL_NONE, 0, 1001);
    ck_assert_int_eq(sf_state_get(f.b, NULL, 3, &a, "seen", 1002, 0, &buf, &v), 1);
    ck_assert_str_eq(v.type_name, "com.example/Counter");
    ck_assert_uint_eq(v.len, strlen("a much longer value than before"));
    ck_assert_int_eq(get(&f, NULL, 3, "a", "name", 1000, 0, out, NULL), 1);
    ck_assert_str_eq(out, "alice");

    /* An empty value is a value. */
    put(&f, 3, "a", "empty", "io.statefun.types/string", "", SF_STATE_TTL_NONE, 0, 1000);
    ck_assert_int_eq(sf_state_get(f.b, NULL, 3, &a, "empty", 1000, 0, &buf, &v), 1);
    ck_assert_uint_eq(v.len, 0);

    ck_assert_int_eq(sf_state_scan_address(f.b, NULL, 3, &a, 1000, count_cb, &n), 0);
    ck_assert_int_eq(n, 3);

    ck_assert_int_eq(sf_state_batch_delete(f.batch, 3, &a, "seen"), 0);
    ck_assert_int_eq(sf_state_batch_delete(f.batch, 3, &a, "never-there"), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, NULL, 3, "a", "seen", 1000, 0, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, NULL, 3, "a", "name", 1000, 0, NULL, NULL), 1);
    n = 0;
    ck_assert_int_eq(sf_state_scan_address(f.b, NULL, 3, &a, 1000, count_cb, &n), 0);
    ck_assert_int_eq(n, 2);

    /* Key groups out of range. */
    ck_assert_int_eq(sf_state_get(f.b, NULL, 128, &a, "seen", 0, 0, &buf, &v), SF_EINVAL);
    ck_assert_int_eq(sf_state_batch_put(f.batch, 128, &a, "x", "t", NULL, 0, 0, 0, 0), SF_EINVAL);
    ck_assert_int_eq(sf_state_batch_put(f.batch, 1, &a, "x", "t", NULL, 0, 7, 0, 0), SF_EINVAL);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 0);

    sf_buf_dispose(&buf);
    fx_close(&f);
}
END_TEST

/* The _at calls with an address's prefix read and write the same keys as the
 * calls that take the key group and the address; a prefix that is not a
 * state prefix, or names a key group out of range, is refused. */
START_TEST(test_prefix_calls)
{
    fx_t f;
    sf_addr_t a = addr("ns", "fn", "a-rather-longer-id-than-most");
    uint8_t pre[128], bad[128];
    size_t plen = sf_state_prefix_len(&a);
    sf_state_value_t v;
    sf_buf_t buf;
    char out[64];
    fx_open(&f, _i, 128);
    sf_buf_init(&buf, NULL);
    ck_assert_uint_le(plen, sizeof pre);
    sf_state_prefix(pre, 5, &a);
    /* kg (2 bytes), kind, then lp(ns) lp(type) lp(id). */
    ck_assert_uint_eq(plen, 3 + 3 + 3 + 1 + strlen(a.id));

    ck_assert_int_eq(sf_state_batch_put_at(f.batch, pre, plen, "seen", "t/x", (const uint8_t *)"42",
                                           2, SF_STATE_TTL_NONE, 0, 1000),
                     0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, NULL, 5, "a-rather-longer-id-than-most", "seen", 1000, 0, out, NULL),
                     1);
    ck_assert_str_eq(out, "42");
    ck_assert_int_eq(get(&f, NULL, 4, "a-rather-longer-id-than-most", "seen", 1000, 0, NULL, NULL),
                     0);

    put(&f, 5, "a-rather-longer-id-than-most", "name", "t/s", "bob", SF_STATE_TTL_NONE, 0, 1000);
    ck_assert_int_eq(sf_state_get_at(f.b, f.batch, pre, plen, "name", 1000, 0, &buf, &v), 1);
    ck_assert_uint_eq(v.len, 3);
    ck_assert(memcmp(v.data, "bob", 3) == 0);
    ck_assert_str_eq(v.type_name, "t/s");

    ck_assert_int_eq(sf_state_batch_delete_at(f.batch, pre, plen, "seen"), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, NULL, 5, "a-rather-longer-id-than-most", "seen", 1000, 0, NULL, NULL),
                     0);

    /* Not a state prefix: a timer kind, too short, a key group out of range. */
    memcpy(bad, pre, plen);
    bad[2] = 0x02; /* a timer key */
    ck_assert_int_eq(sf_state_get_at(f.b, NULL, bad, plen, "name", 1000, 0, &buf, &v), SF_EINVAL);
    ck_assert_int_eq(sf_state_get_at(f.b, NULL, pre, 3, "name", 1000, 0, &buf, &v), SF_EINVAL);
    sf_state_prefix(bad, 128, &a);
    ck_assert_int_eq(sf_state_batch_put_at(f.batch, bad, plen, "x", "t", NULL, 0, 0, 0, 0),
                     SF_EINVAL);
    ck_assert_int_eq(sf_state_batch_delete_at(f.batch, bad, plen, "x"), SF_EINVAL);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 0);

    sf_buf_dispose(&buf);
    fx_close(&f);
}
END_TEST

START_TEST(test_batch_atomic)
{
    fx_t f;
    char id[16];
    int i;
    sf_buf_t buf;
    fx_open(&f, _i, 16);
    sf_buf_init(&buf, NULL);

    for (i = 0; i < 50; i++) {
        sf_addr_t a;
        snprintf(id, sizeof id, "id%d", i);
        a = addr("ns", "fn", id);
        ck_assert_int_eq(sf_state_batch_put(f.batch, (uint16_t)(i % 16), &a, "v", "t/x",
                                            (const uint8_t *)id, strlen(id), 0, 0, 0),
                         0);
    }
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 1, "k", 1, "egress", 6), 0);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 51);
    /* Nothing is visible before the commit. */
    for (i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "id%d", i);
        ck_assert_int_eq(get(&f, NULL, (uint16_t)(i % 16), id, "v", 0, 0, NULL, NULL), 0);
    }
    ck_assert_int_eq(sf_state_log_get(f.b, 1, "k", 1, &buf), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 0);
    for (i = 0; i < 50; i++) {
        char out[16];
        snprintf(id, sizeof id, "id%d", i);
        ck_assert_int_eq(get(&f, NULL, (uint16_t)(i % 16), id, "v", 0, 0, out, NULL), 1);
        ck_assert_str_eq(out, id);
    }
    ck_assert_int_eq(sf_state_log_get(f.b, 1, "k", 1, &buf), 1);
    ck_assert_uint_eq(buf.len, 6);

    /* A cleared batch commits nothing; the batch is reusable afterwards. */
    put(&f, 2, "x", "v", "t", "before", 0, 0, 0);
    {
        sf_addr_t a = addr("ns", "fn", "x");
        ck_assert_int_eq(sf_state_batch_put(f.batch, 2, &a, "v", "t", (const uint8_t *)"no", 2,
                                            0, 0, 0),
                         0);
        ck_assert_int_eq(sf_state_batch_delete(f.batch, 2, &a, "v"), 0);
        sf_state_batch_clear(f.batch);
        ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
        ck_assert_int_eq(get(&f, NULL, 2, "x", "v", 0, 0, NULL, NULL), 1);
        /* Within a batch the last write wins. */
        ck_assert_int_eq(sf_state_batch_put(f.batch, 2, &a, "v", "t", (const uint8_t *)"one", 3,
                                            0, 0, 0),
                         0);
        ck_assert_int_eq(sf_state_batch_put(f.batch, 2, &a, "v", "t", (const uint8_t *)"two", 3,
                                            0, 0, 0),
                         0);
        ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    }
    {
        char out[16];
        ck_assert_int_eq(get(&f, NULL, 2, "x", "v", 0, 0, out, NULL), 1);
        ck_assert_str_eq(out, "two");
    }
    sf_buf_dispose(&buf);
    fx_close(&f);
}
END_TEST

START_TEST(test_ttl_after_write)
{
    fx_t f;
    sf_state_value_t v;
    int n;
    fx_open(&f, _i, 8);

    put(&f, 1, "a", "s", "t", "x", SF_STATE_TTL_AFTER_WRITE, 500, 1000);
    ck_assert_int_eq(get(&f, NULL, 1, "a", "s", 1200, SF_STATE_GET_TOUCH, NULL, &v), 1);
    ck_assert_int_eq(v.ttl_mode, SF_STATE_TTL_AFTER_WRITE);
    ck_assert_int_eq(v.ttl_ms, 500);
    ck_assert_int_eq(v.expire_at_ms, 1500);
    /* Reads do not extend an AFTER_WRITE value. */
    ck_assert_int_eq(get(&f, NULL, 1, "a", "s", 1499, SF_STATE_GET_TOUCH, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 1500);
    ck_assert_int_eq(get(&f, NULL, 1, "a", "s", 1500, 0, NULL, NULL), 0);
    /* It was deleted, not just hidden: an earlier clock does not find it. */
    ck_assert_int_eq(get(&f, NULL, 1, "a", "s", 1000, 0, NULL, NULL), 0);

    /* A write starts the period again. */
    put(&f, 1, "a", "s", "t", "x", SF_STATE_TTL_AFTER_WRITE, 500, 1000);
    put(&f, 1, "a", "s", "t", "y", SF_STATE_TTL_AFTER_WRITE, 500, 1400);
    ck_assert_int_eq(get(&f, NULL, 1, "a", "s", 1800, 0, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 1900);

    /* An expired read through a batch deletes with that batch. */
    put(&f, 1, "b", "s", "t", "x", SF_STATE_TTL_AFTER_WRITE, 100, 1000);
    ck_assert_int_eq(get(&f, f.batch, 1, "b", "s", 2000, 0, NULL, NULL), 0);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 1);
    ck_assert_int_eq(get(&f, NULL, 1, "b", "s", 1000, 0, NULL, NULL), 1);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, NULL, 1, "b", "s", 1000, 0, NULL, NULL), 0);

    /* Scans skip expired values. */
    put(&f, 2, "c", "short", "t", "x", SF_STATE_TTL_AFTER_WRITE, 100, 0);
    put(&f, 2, "c", "long", "t", "x", SF_STATE_TTL_NONE, 0, 0);
    {
        sf_addr_t a = addr("ns", "fn", "c");
        n = 0;
        ck_assert_int_eq(sf_state_scan_address(f.b, NULL, 2, &a, 50, count_cb, &n), 0);
        ck_assert_int_eq(n, 2);
        n = 0;
        ck_assert_int_eq(sf_state_scan_address(f.b, NULL, 2, &a, 100, count_cb, &n), 0);
        ck_assert_int_eq(n, 1);
        n = 0;
        ck_assert_int_eq(sf_state_scan_range(f.b, 0, 8, 100, count_cb, &n), 0);
        ck_assert_int_eq(n, 2); /* "long" and a/s */
    }

    /* A TTL of zero means none. */
    put(&f, 3, "d", "s", "t", "x", SF_STATE_TTL_AFTER_WRITE, 0, 0);
    ck_assert_int_eq(get(&f, NULL, 3, "d", "s", INT64_MAX / 2, 0, NULL, &v), 1);
    ck_assert_int_eq(v.ttl_mode, SF_STATE_TTL_NONE);
    fx_close(&f);
}
END_TEST

START_TEST(test_ttl_after_invoke)
{
    fx_t f;
    sf_state_value_t v;
    fx_open(&f, _i, 8);

    put(&f, 5, "a", "s", "t", "x", SF_STATE_TTL_AFTER_INVOKE, 500, 1000);
    /* An invocation at 1400 moves the expiry to 1900. */
    ck_assert_int_eq(get(&f, NULL, 5, "a", "s", 1400, SF_STATE_GET_TOUCH, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 1900);
    /* A peek does not. */
    ck_assert_int_eq(get(&f, NULL, 5, "a", "s", 1899, 0, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 1900);
    ck_assert_int_eq(get(&f, NULL, 5, "a", "s", 1899, SF_STATE_GET_TOUCH, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 2399);
    ck_assert_int_eq(get(&f, NULL, 5, "a", "s", 2398, 0, NULL, NULL), 1);
    ck_assert_int_eq(get(&f, NULL, 5, "a", "s", 2399, SF_STATE_GET_TOUCH, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, NULL, 5, "a", "s", 1000, 0, NULL, NULL), 0);

    /* The refresh of an invocation commits with its batch. */
    put(&f, 5, "b", "s", "t", "x", SF_STATE_TTL_AFTER_INVOKE, 100, 0);
    ck_assert_int_eq(get(&f, f.batch, 5, "b", "s", 50, SF_STATE_GET_TOUCH, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 150);
    ck_assert_int_eq(get(&f, NULL, 5, "b", "s", 99, 0, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 100);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, NULL, 5, "b", "s", 149, 0, NULL, &v), 1);
    ck_assert_int_eq(v.expire_at_ms, 150);
    ck_assert_int_eq(get(&f, NULL, 5, "b", "s", 150, 0, NULL, NULL), 0);
    fx_close(&f);
}
END_TEST

START_TEST(test_ttl_reclaim)
{
    /* Values nobody reads again still leave: memory sweeps them, RocksDB's
     * compaction filter drops them. */
    fx_t f;
    char id[16];
    int i, n, rounds;
    fx_open(&f, _i, 8);
    for (i = 0; i < 200; i++) {
        sf_addr_t a;
        snprintf(id, sizeof id, "id%d", i);
        a = addr("ns", "fn", id);
        ck_assert_int_eq(sf_state_batch_put(f.batch, (uint16_t)(i % 8), &a, "v", "t",
                                            (const uint8_t *)"x", 1,
                                            i < 150 ? SF_STATE_TTL_AFTER_WRITE : 0, 10, 0),
                         0);
    }
    {
        sf_addr_t s = addr("ns", "fn", "sender");
        ck_assert_int_eq(sf_state_batch_timer_schedule(f.batch, 1, &s, "tok", 5,
                                                       (const uint8_t *)"m", 1),
                         0);
        ck_assert_int_eq(sf_state_batch_log_put(f.batch, 0, "k", 1, "v", 1), 0);
    }
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    /* A small budget works in slices and gets there. */
    for (rounds = 0; rounds < 1000; rounds++) {
        ck_assert_int_ge(sf_state_reclaim(f.b, 0, 8, 1000, 7), 0);
        n = 0;
        ck_assert_int_eq(sf_state_scan_range(f.b, 0, 8, 0, count_cb, &n), 0);
        if (strcmp(f.kind, "rocksdb") == 0 || n == 50)
            break;
    }
    ck_assert_int_eq(sf_state_compact(f.b), 0);
    /* Scanning with clock 0 would show any value still stored. */
    n = 0;
    ck_assert_int_eq(sf_state_scan_range(f.b, 0, 8, 0, count_cb, &n), 0);
    ck_assert_int_eq(n, 50);
    /* Timers and log records are not state values: untouched. */
    {
        int64_t next;
        sf_buf_t buf;
        sf_buf_init(&buf, NULL);
        ck_assert_int_eq(sf_state_timers_next(f.b, 0, 8, &next), 1);
        ck_assert_int_eq(next, 5);
        ck_assert_int_eq(sf_state_log_get(f.b, 0, "k", 1, &buf), 1);
        sf_buf_dispose(&buf);
    }
    fx_close(&f);
}
END_TEST

/* Timers ----------------------------------------------------------------- */

typedef struct {
    uint16_t kg;
    int64_t fire_at;
    char sender[32];
    char token[32];
    char msg[32];
} fired_t;

typedef struct {
    fired_t t[64];
    int n;
} fired_list_t;

static int fired_cb(const sf_state_timer_t *t, void *ud)
{
    fired_list_t *l = ud;
    fired_t *r;
    ck_assert_int_lt(l->n, 64);
    r = &l->t[l->n++];
    r->kg = t->key_group;
    r->fire_at = t->fire_at_ms;
    snprintf(r->sender, sizeof r->sender, "%.*s/%.*s/%.*s", (int)t->sender.ns_len, t->sender.ns,
             (int)t->sender.type_len, t->sender.type, (int)t->sender.id_len, t->sender.id);
    snprintf(r->token, sizeof r->token, "%.*s", (int)t->token_len, t->token ? t->token : "");
    snprintf(r->msg, sizeof r->msg, "%.*s", (int)t->msg_len, (const char *)t->msg);
    return 0;
}

static void sched(fx_t *f, uint16_t kg, const char *sender, const char *token, int64_t at,
                  const char *msg, int expect)
{
    sf_addr_t s = addr("ns", "fn", sender);
    ck_assert_int_eq(sf_state_batch_timer_schedule(f->batch, kg, &s, token, at,
                                                   (const uint8_t *)msg, strlen(msg)),
                     expect);
}

static int cancel(fx_t *f, uint16_t kg, const char *sender, const char *token)
{
    sf_addr_t s = addr("ns", "fn", sender);
    return sf_state_batch_timer_cancel(f->batch, kg, &s, token);
}

static int pop(fx_t *f, uint32_t lo, uint32_t hi, int64_t now, size_t max, fired_list_t *l)
{
    memset(l, 0, sizeof *l);
    return (int)sf_state_timers_pop(f->b, lo, hi, now, max, fired_cb, l);
}

START_TEST(test_timers_fire_order)
{
    fx_t f;
    fired_list_t l;
    int64_t next;
    fx_open(&f, _i, 16);

    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 16, &next), 0);
    sched(&f, 5, "e", NULL, 300, "m300", 0);
    sched(&f, 2, "b", NULL, 100, "m100", 0);
    sched(&f, 9, "c", NULL, 200, "m200a", 0);
    sched(&f, 2, "b", "", 200, "m200b", 0);
    sched(&f, 12, "d", NULL, 50, "m50", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 10, &next), 1);
    ck_assert_int_eq(next, 100);
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 16, &next), 1);
    ck_assert_int_eq(next, 50);

    ck_assert_int_eq(pop(&f, 0, 10, 99, 100, &l), 0);
    ck_assert_int_eq(pop(&f, 0, 10, 250, 100, &l), 3);
    ck_assert_str_eq(l.t[0].msg, "m100");
    ck_assert_uint_eq(l.t[0].kg, 2);
    ck_assert_str_eq(l.t[0].sender, "ns/fn/b");
    ck_assert_str_eq(l.t[0].token, "");
    /* Equal fire times go in schedule order, across key groups. */
    ck_assert_str_eq(l.t[1].msg, "m200a");
    ck_assert_uint_eq(l.t[1].kg, 9);
    ck_assert_str_eq(l.t[2].msg, "m200b");
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 10, &next), 1);
    ck_assert_int_eq(next, 300);
    ck_assert_int_eq(pop(&f, 0, 10, 250, 100, &l), 0);
    ck_assert_int_eq(pop(&f, 0, 10, 1000, 1, &l), 1);
    ck_assert_str_eq(l.t[0].msg, "m300");
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 10, &next), 0);
    /* Key group 12 belongs to another range. */
    ck_assert_int_eq(pop(&f, 10, 16, 1000, 10, &l), 1);
    ck_assert_str_eq(l.t[0].msg, "m50");
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 16, &next), 0);

    /* |max| bounds a pop; the rest stays due, still in order. */
    sched(&f, 1, "a", NULL, 10, "x0", 0);
    sched(&f, 3, "a", NULL, 10, "x1", 0);
    sched(&f, 1, "a", NULL, 10, "x2", 0);
    sched(&f, 3, "a", NULL, 11, "x3", 0);
    sched(&f, 1, "a", NULL, 9, "x4", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(pop(&f, 0, 16, 20, 2, &l), 2);
    ck_assert_str_eq(l.t[0].msg, "x4");
    ck_assert_str_eq(l.t[1].msg, "x0");
    ck_assert_int_eq(pop(&f, 0, 16, 20, 10, &l), 3);
    ck_assert_str_eq(l.t[0].msg, "x1");
    ck_assert_str_eq(l.t[1].msg, "x2");
    ck_assert_str_eq(l.t[2].msg, "x3");

    /* A timer earlier than what was already popped (a clock that went back)
     * is still found. */
    ck_assert_int_eq(pop(&f, 0, 16, 5000, 10, &l), 0);
    sched(&f, 1, "a", NULL, 15, "late", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 16, &next), 1);
    ck_assert_int_eq(next, 15);
    ck_assert_int_eq(pop(&f, 0, 16, 15, 10, &l), 1);
    ck_assert_str_eq(l.t[0].msg, "late");

    /* Many timers through one key group, popped in small slices. */
    {
        int i, total = 0, rounds = 0;
        char m[16];
        for (i = 0; i < 300; i++) {
            snprintf(m, sizeof m, "q%03d", i);
            sched(&f, 6, "q", NULL, 6000 + i / 3, m, 0);
        }
        ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
        while (total < 300 && rounds++ < 1000) {
            int k, got;
            ck_assert_int_eq(sf_state_timers_next(f.b, 0, 16, &next), 1);
            got = pop(&f, 0, 16, next + 1, 7, &l);
            for (k = 0; k < got; k++) {
                snprintf(m, sizeof m, "q%03d", total + k);
                ck_assert_str_eq(l.t[k].msg, m);
            }
            total += got;
        }
        ck_assert_int_eq(total, 300);
        ck_assert_int_eq(sf_state_timers_next(f.b, 0, 16, &next), 0);
    }

    ck_assert_int_eq(sf_state_timers_pop(f.b, 0, 17, 0, 1, fired_cb, &l), SF_EINVAL);
    sched(&f, 1, "a", NULL, -1, "neg", SF_EINVAL);
    fx_close(&f);
}
END_TEST

START_TEST(test_timer_tokens)
{
    fx_t f;
    fired_list_t l;
    int64_t next;
    fx_open(&f, _i, 8);

    /* Cancel before firing. */
    sched(&f, 1, "A", "t1", 100, "m1", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(cancel(&f, 1, "A", "t1"), 1);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(pop(&f, 0, 8, 1000, 10, &l), 0);
    /* Unknown, already cancelled: no-ops. */
    ck_assert_int_eq(cancel(&f, 1, "A", "nope"), 0);
    ck_assert_int_eq(cancel(&f, 1, "A", "t1"), 0);
    ck_assert_int_eq(cancel(&f, 1, "A", NULL), 0);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 0);

    /* Already fired: a no-op, and the token is free again. */
    sched(&f, 1, "A", "t2", 100, "m2", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(pop(&f, 0, 8, 200, 10, &l), 1);
    ck_assert_str_eq(l.t[0].token, "t2");
    ck_assert_int_eq(cancel(&f, 1, "A", "t2"), 0);
    sched(&f, 1, "A", "t2", 300, "m2again", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    /* A token is unique per sender among pending timers. */
    sched(&f, 1, "A", "t3", 500, "a3", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    sched(&f, 1, "A", "t3", 600, "dup", SF_EEXIST);
    sched(&f, 1, "B", "t3", 500, "b3", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    /* ... also inside one batch. */
    sched(&f, 1, "A", "t4", 400, "a4", 0);
    sched(&f, 1, "A", "t4", 400, "a4dup", SF_EEXIST);
    /* A delayed message and its cancellation in the same reply. */
    ck_assert_int_eq(cancel(&f, 1, "A", "t4"), 1);
    ck_assert_int_eq(cancel(&f, 1, "A", "t4"), 0);
    /* Cancel and schedule again (replace) in one batch. */
    ck_assert_int_eq(cancel(&f, 1, "A", "t3"), 1);
    sched(&f, 1, "A", "t3", 700, "a3moved", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    ck_assert_int_eq(pop(&f, 0, 8, 650, 10, &l), 2);
    ck_assert_str_eq(l.t[0].msg, "m2again");
    ck_assert_str_eq(l.t[1].msg, "b3");
    ck_assert_str_eq(l.t[1].sender, "ns/fn/B");
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 8, &next), 1);
    ck_assert_int_eq(next, 700);
    ck_assert_int_eq(pop(&f, 0, 8, 800, 10, &l), 1);
    ck_assert_str_eq(l.t[0].msg, "a3moved");
    ck_assert_str_eq(l.t[0].token, "t3");
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 8, &next), 0);

    /* After a cancellation the estimate may be early but never late. */
    sched(&f, 2, "C", "t5", 100, "c5", 0);
    sched(&f, 2, "C", NULL, 900, "c9", 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(cancel(&f, 2, "C", "t5"), 1);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 8, &next), 1);
    ck_assert_int_le(next, 900);
    ck_assert_int_eq(pop(&f, 0, 8, next, 10, &l), next == 900 ? 1 : 0);
    if (l.n == 0) {
        ck_assert_int_eq(sf_state_timers_next(f.b, 0, 8, &next), 1);
        ck_assert_int_eq(next, 900);
    }
    fx_close(&f);
}
END_TEST

/* A savepoint takes back one caller's operations (state, timers and their
 * tokens) out of a batch that others share, and keeps the rest. */
START_TEST(test_batch_savepoint)
{
    fx_t f;
    fired_list_t l;
    sf_addr_t a = addr("ns", "fn", "a"), b = addr("ns", "fn", "b");
    char out[16];
    fx_open(&f, _i, 8);

    ck_assert_int_eq(sf_state_batch_put(f.batch, 1, &a, "v", "t", (const uint8_t *)"a1", 2, 0, 0,
                                        0),
                     0);
    sf_state_batch_savepoint(f.batch);
    ck_assert_int_eq(sf_state_batch_put(f.batch, 2, &b, "v", "t", (const uint8_t *)"b1", 2, 0, 0,
                                        0),
                     0);
    sched(&f, 2, "b", "tok", 100, "mb", 0);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 4);
    sf_state_batch_rollback(f.batch);
    ck_assert_uint_eq(sf_state_batch_count(f.batch), 1);
    /* The rolled-back token is free again within the same batch. */
    sched(&f, 2, "b", "tok", 200, "mb2", 0);
    sf_state_batch_savepoint(f.batch);
    ck_assert_int_eq(sf_state_batch_put(f.batch, 3, &b, "w", "t", (const uint8_t *)"kept", 4, 0,
                                        0, 0),
                     0);
    sf_state_batch_release(f.batch);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    ck_assert_int_eq(get(&f, NULL, 1, "a", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "a1");
    ck_assert_int_eq(get(&f, NULL, 2, "b", "v", 0, 0, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, NULL, 3, "b", "w", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "kept");
    /* Only the second timer exists. */
    ck_assert_int_eq(pop(&f, 0, 8, 150, 10, &l), 0);
    ck_assert_int_eq(pop(&f, 0, 8, 250, 10, &l), 1);
    fx_close(&f);
}
END_TEST

static int timer_count_cb(const sf_state_timer_t *t, void *ud)
{
    (*(int *)ud)++;
    return 0;
}

START_TEST(test_reopen)
{
    fx_t f;
    fired_list_t l;
    sf_buf_t buf;
    char out[32];
    int64_t next;
    int n = 0;
    fx_open(&f, _i, 32);
    sf_buf_init(&buf, NULL);

    put(&f, 7, "a", "s", "io.statefun.types/string", "kept", 0, 0, 0);
    put(&f, 7, "a", "ttl", "t", "x", SF_STATE_TTL_AFTER_INVOKE, 1000, 0);
    sched(&f, 7, "a", "tok", 500, "first", 0);
    sched(&f, 20, "b", NULL, 500, "second", 0);
    sched(&f, 20, "b", "other", 600, "third", 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 3, "pos", 3, "42", 2), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    fx_reopen(&f);
    ck_assert_int_eq(get(&f, NULL, 7, "a", "s", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "kept");
    ck_assert_int_eq(get(&f, NULL, 7, "a", "ttl", 999, 0, NULL, NULL), 1);
    ck_assert_int_eq(sf_state_log_get(f.b, 3, "pos", 3, &buf), 1);
    ck_assert(buf.len == 2 && memcmp(buf.base, "42", 2) == 0);
    ck_assert_int_eq(sf_state_timers_next(f.b, 0, 32, &next), 1);
    ck_assert_int_eq(next, 500);
    ck_assert_int_eq(sf_state_timers_scan(f.b, 0, 32, timer_count_cb, &n), 0);
    ck_assert_int_eq(n, 3);
    /* Tokens survive; new timers never reuse a sequence number. */
    sched(&f, 7, "a", "tok", 900, "dup", SF_EEXIST);
    sched(&f, 20, "b", NULL, 500, "fourth", 0);
    sched(&f, 7, "a", NULL, 500, "fifth", 0);
    ck_assert_int_eq(cancel(&f, 20, "b", "other"), 1);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    fx_reopen(&f);
    ck_assert_int_eq(pop(&f, 0, 32, 1000, 10, &l), 4);
    ck_assert_str_eq(l.t[0].msg, "first");
    ck_assert_str_eq(l.t[1].msg, "second");
    ck_assert_str_eq(l.t[2].msg, "fourth");
    ck_assert_str_eq(l.t[3].msg, "fifth");
    sf_state_batch_free(f.batch);
    f.batch = NULL;

    /* max_parallelism is fixed for the life of a store. */
    {
        sf_state_options_t o;
        sf_state_backend_t *b2 = NULL;
        char cp[600];
        sf_state_options_init(&o);
        o.kind = f.kind;
        o.dir = f.dir;
        o.max_parallelism = 64;
        if (strcmp(f.kind, "memory") == 0) {
            snprintf(cp, sizeof cp, "%s/cp-maxp", f.tmp);
            ck_assert_int_eq(sf_state_checkpoint(f.b, cp), 0);
            ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), SF_EINVAL);
        } else {
            sf_state_close(f.b);
            f.b = NULL;
            ck_assert_int_eq(sf_state_open2(&o, &b2), SF_EINVAL);
        }
        ck_assert_ptr_null(b2);
    }
    sf_buf_dispose(&buf);
    fx_close(&f);
}
END_TEST

typedef struct {
    int n;
    int bad;
    uint32_t lo, hi;
    int stop_after;
} range_ctx_t;

static int range_cb(const sf_state_entry_t *e, void *ud)
{
    range_ctx_t *c = ud;
    if (e->key_group < c->lo || e->key_group >= c->hi)
        c->bad++;
    if (e->addr.ns_len != 2 || memcmp(e->addr.ns, "ns", 2) != 0)
        c->bad++;
    if (e->value.len != e->addr.id_len || memcmp(e->value.data, e->addr.id, e->addr.id_len) != 0)
        c->bad++;
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

START_TEST(test_range_scan)
{
    fx_t f;
    range_ctx_t c;
    char id[16];
    uint32_t kg;
    fx_open(&f, _i, 32);
    for (kg = 0; kg < 32; kg++) {
        sf_addr_t a;
        snprintf(id, sizeof id, "id%u", kg);
        a = addr("ns", "fn", id);
        ck_assert_int_eq(sf_state_batch_put(f.batch, (uint16_t)kg, &a, "v1", "t",
                                            (const uint8_t *)id, strlen(id), 0, 0, 0),
                         0);
        ck_assert_int_eq(sf_state_batch_put(f.batch, (uint16_t)kg, &a, "v2", "t",
                                            (const uint8_t *)id, strlen(id), 0, 0, 0),
                         0);
    }
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    memset(&c, 0, sizeof c);
    c.lo = 8;
    c.hi = 16;
    ck_assert_int_eq(sf_state_scan_range(f.b, 8, 16, 0, range_cb, &c), 0);
    ck_assert_int_eq(c.n, 16);
    ck_assert_int_eq(c.bad, 0);
    memset(&c, 0, sizeof c);
    c.hi = 32;
    ck_assert_int_eq(sf_state_scan_range(f.b, 0, 32, 0, range_cb, &c), 0);
    ck_assert_int_eq(c.n, 64);
    ck_assert_int_eq(c.bad, 0);
    /* The callback stops a scan and its value comes back. */
    memset(&c, 0, sizeof c);
    c.hi = 32;
    c.stop_after = 5;
    ck_assert_int_eq(sf_state_scan_range(f.b, 0, 32, 0, range_cb, &c), 7);
    ck_assert_int_eq(c.n, 5);
    ck_assert_int_eq(sf_state_scan_range(f.b, 4, 33, 0, range_cb, &c), SF_EINVAL);
    ck_assert_int_eq(sf_state_scan_range(f.b, 5, 4, 0, range_cb, &c), SF_EINVAL);

    /* An address whose id is a prefix of another's keeps to itself. */
    put(&f, 3, "ab", "s", "t", "ab", 0, 0, 0);
    put(&f, 3, "a", "bs", "t", "a", 0, 0, 0);
    {
        sf_addr_t a = addr("ns", "fn", "a");
        int n = 0;
        ck_assert_int_eq(sf_state_scan_address(f.b, NULL, 3, &a, 0, count_cb, &n), 0);
        ck_assert_int_eq(n, 1);
    }
    fx_close(&f);
}
END_TEST

typedef struct {
    char keys[8][16];
    int n;
} log_list_t;

static int log_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *ud)
{
    log_list_t *l = ud;
    snprintf(l->keys[l->n++], 16, "%.*s=%.*s", (int)klen, (const char *)key, (int)vlen,
             (const char *)val);
    return 0;
}

START_TEST(test_log_records)
{
    fx_t f;
    log_list_t l;
    sf_buf_t buf;
    fx_open(&f, _i, 4);
    sf_buf_init(&buf, NULL);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 1, "b", 1, "2", 1), 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 1, "a", 1, "1", 1), 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 1, "c", 1, "3", 1), 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 2, "a", 1, "other", 5), 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 255, "z", 1, "", 0), 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 1, "", 0, "", 0), SF_EINVAL);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(sf_state_log_scan(f.b, 1, NULL, 0, 0, log_cb, &l), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.keys[0], "a=1");
    ck_assert_str_eq(l.keys[1], "b=2");
    ck_assert_str_eq(l.keys[2], "c=3");
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(sf_state_log_scan(f.b, 1, "b", 1, 0, log_cb, &l), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.keys[0], "b=2");
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(sf_state_log_scan(f.b, 1, NULL, 0, 1, log_cb, &l), 0);
    ck_assert_int_eq(l.n, 1);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(sf_state_log_scan(f.b, 255, NULL, 0, 0, log_cb, &l), 0);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.keys[0], "z=");

    ck_assert_int_eq(sf_state_log_get(f.b, 2, "a", 1, &buf), 1);
    ck_assert(buf.len == 5 && memcmp(buf.base, "other", 5) == 0);
    ck_assert_int_eq(sf_state_log_get(f.b, 255, "z", 1, &buf), 1);
    ck_assert_uint_eq(buf.len, 0);
    ck_assert_int_eq(sf_state_batch_log_delete(f.batch, 1, "b", 1), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(sf_state_log_get(f.b, 1, "b", 1, &buf), 0);
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(sf_state_log_scan(f.b, 1, NULL, 0, 0, log_cb, &l), 0);
    ck_assert_int_eq(l.n, 2);
    sf_buf_dispose(&buf);
    fx_close(&f);
}
END_TEST

START_TEST(test_checkpoint_restore)
{
    fx_t f;
    sf_state_options_t o;
    sf_state_backend_t *b2;
    fired_list_t l;
    sf_buf_t buf;
    char cp[600], live2[600], out[32];
    fx_open(&f, _i, 16);
    sf_buf_init(&buf, NULL);
    snprintf(cp, sizeof cp, "%s/cp-1", f.tmp);
    snprintf(live2, sizeof live2, "%s/live2", f.tmp);

    put(&f, 4, "a", "s", "t", "v1", 0, 0, 0);
    sched(&f, 4, "a", "tok", 100, "timer", 0);
    ck_assert_int_eq(sf_state_batch_log_put(f.batch, 0, "k", 1, "v", 1), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(sf_state_checkpoint(f.b, cp), 0);
    ck_assert_int_eq(sf_state_checkpoint(f.b, cp), SF_EEXIST);

    /* Work after the checkpoint is not in it. */
    put(&f, 4, "a", "s", "t", "v2", 0, 0, 0);
    put(&f, 4, "a", "s2", "t", "new", 0, 0, 0);
    ck_assert_int_eq(sf_state_batch_log_delete(f.batch, 0, "k", 1), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(pop(&f, 0, 16, 1000, 10, &l), 1);

    sf_state_options_init(&o);
    o.kind = f.kind;
    o.max_parallelism = 16;
    o.dir = live2;
    ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), 0);
    {
        fx_t g = f;
        g.b = b2;
        ck_assert_int_eq(get(&g, NULL, 4, "a", "s", 0, 0, out, NULL), 1);
        ck_assert_str_eq(out, "v1");
        ck_assert_int_eq(get(&g, NULL, 4, "a", "s2", 0, 0, NULL, NULL), 0);
        ck_assert_int_eq(sf_state_log_get(b2, 0, "k", 1, &buf), 1);
        ck_assert_int_eq(sf_state_batch_new(b2, &g.batch), 0);
        ck_assert_int_eq(cancel(&g, 4, "a", "tok"), 1);
        ck_assert_int_eq(sf_state_batch_commit(g.batch), 0);
        sf_state_batch_free(g.batch);
    }
    sf_state_close(b2);

    /* The checkpoint stays intact: restoring again gives the same store,
     * here over the live directory of the first store. */
    sf_state_batch_free(f.batch);
    f.batch = NULL;
    sf_state_close(f.b);
    f.b = NULL;
    o.dir = f.dir;
    ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), 0);
    {
        fx_t g = f;
        g.b = b2;
        ck_assert_int_eq(get(&g, NULL, 4, "a", "s", 0, 0, out, NULL), 1);
        ck_assert_str_eq(out, "v1");
        ck_assert_int_eq(pop(&g, 0, 16, 1000, 10, &l), 1);
        ck_assert_str_eq(l.t[0].msg, "timer");
    }
    sf_state_close(b2);

    /* Missing and damaged checkpoints are refused. */
    {
        char bad[700];
        snprintf(bad, sizeof bad, "%s/nothing", f.tmp);
        ck_assert_int_eq(sf_state_open_from(&o, bad, &b2), SF_ENOTFOUND);
    }
    if (strcmp(f.kind, "memory") == 0) {
        char snap[700];
        size_t len;
        char *data;
        snprintf(snap, sizeof snap, "%s/memory.snapshot", cp);
        data = sf_test_read_file(snap, &len);
        ck_assert_ptr_nonnull(data);
        data[len / 2] ^= 0x20;
        ck_assert_int_eq(sf_test_write_file(snap, data, len), 0);
        ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), SF_ESTATE);
        ck_assert_int_eq(sf_test_write_file(snap, data, len / 2), 0);
        ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), SF_ESTATE);
        free(data);
    } else {
        /* A directory with foreign files is not replaced. */
        char foreign[700], file[800];
        snprintf(foreign, sizeof foreign, "%s/foreign", f.tmp);
        ck_assert_int_eq(mkdir(foreign, 0755), 0);
        snprintf(file, sizeof file, "%s/precious.txt", foreign);
        ck_assert_int_eq(sf_test_write_file(file, "x", 1), 0);
        o.dir = foreign;
        ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), SF_EINVAL);
        ck_assert_int_eq(access(file, F_OK), 0);
    }
    sf_buf_dispose(&buf);
    fx_close(&f);
}
END_TEST

/* Workers: each thread writes and reads its own key groups. */
typedef struct {
    sf_state_backend_t *b;
    uint16_t kg_lo, kg_hi;
    int ok;
} worker_arg_t;

static int fired_cb_noop(const sf_state_timer_t *t, void *ud) { return 0; }

static void *worker_main(void *p)
{
    worker_arg_t *w = p;
    sf_state_batch_t *batch;
    sf_state_value_t v;
    sf_buf_t buf;
    char id[32];
    int i, ok = 1;
    sf_buf_init(&buf, NULL);
    sf_state_batch_new(w->b, &batch);
    for (i = 0; i < 3000; i++) {
        uint16_t kg = (uint16_t)(w->kg_lo + i % (w->kg_hi - w->kg_lo));
        sf_addr_t a;
        snprintf(id, sizeof id, "w%u-%d", w->kg_lo, i);
        a = addr("ns", "fn", id);
        sf_state_batch_put(batch, kg, &a, "v", "t", (const uint8_t *)id, strlen(id), 0, 0, 0);
        if (i % 10 == 0)
            sf_state_batch_timer_schedule(batch, kg, &a, id, i, (const uint8_t *)"m", 1);
        if (i % 4 == 3 && sf_state_batch_commit(batch) != 0)
            ok = 0;
    }
    if (sf_state_batch_commit(batch) != 0)
        ok = 0;
    for (i = 0; i < 3000; i++) {
        uint16_t kg = (uint16_t)(w->kg_lo + i % (w->kg_hi - w->kg_lo));
        sf_addr_t a;
        snprintf(id, sizeof id, "w%u-%d", w->kg_lo, i);
        a = addr("ns", "fn", id);
        if (sf_state_get(w->b, NULL, kg, &a, "v", 0, 0, &buf, &v) != 1 || v.len != strlen(id))
            ok = 0;
    }
    if (sf_state_timers_pop(w->b, w->kg_lo, w->kg_hi, 100000, 1000, fired_cb_noop, NULL) != 300)
        ok = 0;
    sf_state_batch_free(batch);
    sf_buf_dispose(&buf);
    w->ok = ok;
    return NULL;
}

START_TEST(test_concurrent_workers)
{
    fx_t f;
    pthread_t t[2];
    worker_arg_t w[2] = {{NULL, 0, 8, 0}, {NULL, 8, 16, 0}};
    int i, n = 0;
    fx_open(&f, _i, 16);
    for (i = 0; i < 2; i++) {
        w[i].b = f.b;
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert(w[i].ok);
    }
    ck_assert_int_eq(sf_state_scan_range(f.b, 0, 16, 0, count_cb, &n), 0);
    ck_assert_int_eq(n, 6000);
    fx_close(&f);
}
END_TEST

/* One key overwritten over and over with values that shrink and grow (RocksDB
 * overwrites a value inside its memtable when the new one is no larger), with
 * flushes in between: every read gives the last value whole, by get and by scan,
 * and so does a reopen. */
static int last_value_cb(const sf_state_entry_t *e, void *ud)
{
    char *out = ud;
    memcpy(out, e->value.data, e->value.len);
    out[e->value.len] = '\0';
    return 0;
}

START_TEST(test_overwrite_in_place)
{
    fx_t f;
    sf_addr_t a = addr("ns", "fn", "hot");
    char v[32], out[32];
    int i;
    fx_open(&f, _i, 16);
    for (i = 0; i < 3000; i++) {
        size_t len = (size_t)1 + (size_t)((i * 7) % 17);
        memset(v, 'a' + i % 26, len);
        v[len] = '\0';
        ck_assert_int_eq(sf_state_batch_put(f.batch, 5, &a, "v", "t", (const uint8_t *)v, len,
                                            SF_STATE_TTL_NONE, 0, 0),
                         0);
        ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
        ck_assert_int_eq(get(&f, NULL, 5, "hot", "v", 0, 0, out, NULL), 1);
        ck_assert_str_eq(out, v);
        out[0] = '\0';
        ck_assert_int_eq(sf_state_scan_address(f.b, NULL, 5, &a, 0, last_value_cb, out), 0);
        ck_assert_str_eq(out, v);
        if (i % 1000 == 999)
            ck_assert_int_eq(sf_state_flush(f.b), 0);
    }
    fx_reopen(&f);
    ck_assert_int_eq(get(&f, NULL, 5, "hot", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, v);
    fx_close(&f);
}
END_TEST

/* Reads through the worker's batch (RocksDB: its read cache) see exactly what was
 * committed: not what a rolled-back or uncommitted part of the batch wrote, a value
 * deleted or overwritten by a later commit, an expired value as absent, and absent
 * keys that a commit then creates. */
START_TEST(test_batch_reads)
{
    fx_t f;
    sf_addr_t a = addr("ns", "fn", "a");
    sf_state_value_t v;
    char out[32];
    fx_open(&f, _i, 8);

    ck_assert_int_eq(get(&f, f.batch, 1, "a", "v", 0, 0, NULL, NULL), 0); /* absent, now cached */
    put(&f, 1, "a", "v", "t", "one", SF_STATE_TTL_NONE, 0, 0);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "one");

    /* Staged, then rolled back, then committed without it. */
    sf_state_batch_savepoint(f.batch);
    ck_assert_int_eq(sf_state_batch_put(f.batch, 1, &a, "v", "t", (const uint8_t *)"two", 3,
                                        SF_STATE_TTL_NONE, 0, 0),
                     0);
    sf_state_batch_rollback(f.batch);
    ck_assert_int_eq(sf_state_batch_put(f.batch, 1, &a, "w", "t", (const uint8_t *)"x", 1,
                                        SF_STATE_TTL_NONE, 0, 0),
                     0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "one");

    /* Staged and not yet committed: reads give the committed value. */
    ck_assert_int_eq(sf_state_batch_put(f.batch, 1, &a, "v", "t", (const uint8_t *)"three", 5,
                                        SF_STATE_TTL_NONE, 0, 0),
                     0);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "one");
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "three");
    ck_assert_int_eq(get(&f, NULL, 1, "a", "v", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "three");

    /* Deleted. */
    ck_assert_int_eq(sf_state_batch_delete(f.batch, 1, &a, "v"), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "v", 0, 0, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "w", 0, 0, out, NULL), 1);
    ck_assert_str_eq(out, "x");

    /* A TTL'd value read through the batch expires on time. */
    put(&f, 1, "a", "t", "t", "brief", SF_STATE_TTL_AFTER_WRITE, 100, 1000);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "t", 1050, 0, out, &v), 1);
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "t", 1100, 0, NULL, NULL), 0);
    ck_assert_int_eq(sf_state_batch_commit(f.batch), 0); /* the expiry's delete */
    ck_assert_int_eq(get(&f, f.batch, 1, "a", "t", 0, 0, NULL, NULL), 0);
    ck_assert_int_eq(get(&f, NULL, 1, "a", "t", 0, 0, NULL, NULL), 0);
    fx_close(&f);
}
END_TEST

/* The read cache on its own: values and absences come back as put, never another
 * key's; a set keeps the entry used last; a value too large, or one over the byte
 * budget, is not cached and drops the key's older entry. */
START_TEST(test_vcache)
{
    sf__vcache_t *c = sf__vcache_new(8, 600, 8);
    static uint8_t big[SF__VCACHE_MAX_VALUE + 1];
    sf_buf_t buf;
    char k[16], val[16];
    int i, hits = 0;
    sf_buf_init(&buf, NULL);

    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"k", 1, &buf), -1);
    sf__vcache_put(c, (const uint8_t *)"k", 1, NULL, 0);
    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"k", 1, &buf), 0);
    sf__vcache_put(c, (const uint8_t *)"k", 1, (const uint8_t *)"v1", 2);
    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"k", 1, &buf), 1);
    ck_assert_uint_eq(buf.len, 2);
    ck_assert(memcmp(buf.base, "v1", 2) == 0);

    /* 100 keys through 8 entries: whatever is still cached is right. */
    for (i = 0; i < 100; i++) {
        int n = snprintf(k, sizeof k, "key%d", i), m = snprintf(val, sizeof val, "val%d", i);
        sf__vcache_put(c, (const uint8_t *)k, (size_t)n, (const uint8_t *)val, (size_t)m);
    }
    for (i = 0; i < 100; i++) {
        int n = snprintf(k, sizeof k, "key%d", i), m = snprintf(val, sizeof val, "val%d", i), rv;
        sf_buf_reset(&buf);
        rv = sf__vcache_get(c, (const uint8_t *)k, (size_t)n, &buf);
        ck_assert_int_ne(rv, 0);
        if (rv == 1) {
            hits++;
            ck_assert_uint_eq(buf.len, (size_t)m);
            ck_assert(memcmp(buf.base, val, (size_t)m) == 0);
        }
    }
    ck_assert_int_gt(hits, 0);
    ck_assert_int_le(hits, 8);
    ck_assert_uint_le(sf__vcache_bytes(c), 600);

    /* Too large: the key's older entry goes. */
    sf__vcache_put(c, (const uint8_t *)"key99", 5, (const uint8_t *)"old", 3);
    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"key99", 5, &buf), 1);
    sf__vcache_put(c, (const uint8_t *)"key99", 5, big, sizeof big);
    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"key99", 5, &buf), -1);
    /* Over the budget: not cached either. */
    sf__vcache_put(c, (const uint8_t *)"key98", 5, big, 700);
    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"key98", 5, &buf), -1);
    ck_assert_uint_le(sf__vcache_bytes(c), 600);

    sf__vcache_clear(c);
    ck_assert_uint_eq(sf__vcache_bytes(c), 0);
    ck_assert_int_eq(sf__vcache_get(c, (const uint8_t *)"k", 1, &buf), -1);
    sf__vcache_free(c);
    sf_buf_dispose(&buf);
}
END_TEST

static void collect_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                       void *ud)
{
    sf_buf_t *out = ud;
    char line[64];
    int n = snprintf(line, sizeof line, "%.*s=%.*s;", (int)klen, (const char *)key,
                     val ? (int)vlen : 2, val ? (const char *)val : "--");
    sf_buf_append(out, line, (size_t)n);
}

static int vc_get(sf__vcache_t *c, const char *k, char *out)
{
    sf_buf_t buf;
    int rv;
    sf_buf_init(&buf, NULL);
    rv = sf__vcache_get(c, (const uint8_t *)k, strlen(k), &buf);
    if (rv == 1) {
        memcpy(out, buf.base, buf.len);
        out[buf.len] = '\0';
    }
    sf_buf_dispose(&buf);
    return rv;
}

/* Write-back entries: a dirty entry displaced by another dirty one is spilled
 * first, a store read never displaces one, a transaction that is not kept puts
 * back exactly what was there (values, absences, dirtiness), and the dirty
 * entries are handed out until marked clean. */
START_TEST(test_vcache_dirty)
{
    sf__vcache_t *c = sf__vcache_new(2, 4096, 4); /* one set of two entries */
    sf_buf_t spilled, dirty;
    char v[64];
    sf_buf_init(&spilled, NULL);
    sf_buf_init(&dirty, NULL);

    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"a", 1, (const uint8_t *)"1", 1,
                                          collect_kv, &spilled), 0);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"b", 1, NULL, 0, collect_kv,
                                          &spilled), 0);
    ck_assert_uint_eq(sf__vcache_dirty(c), 2);
    /* A read of another key finds no room and caches nothing. */
    sf__vcache_put(c, (const uint8_t *)"r", 1, (const uint8_t *)"x", 1);
    ck_assert_int_eq(vc_get(c, "r", v), -1);
    ck_assert_int_eq(vc_get(c, "a", v), 1);
    ck_assert_str_eq(v, "1");
    /* "a" was used last: "b" (a delete) is spilled for "c". */
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"c", 1, (const uint8_t *)"3", 1,
                                          collect_kv, &spilled), 0);
    ck_assert_uint_eq(spilled.len, 5);
    ck_assert(memcmp(spilled.base, "b=--;", 5) == 0);
    ck_assert_int_eq(vc_get(c, "b", v), -1);

    /* A transaction not kept: the overwrite, the spill and the new key all go back. */
    sf_buf_reset(&spilled);
    sf__vcache_begin(c);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"a", 1,
                                          (const uint8_t *)"a much longer value", 19, collect_kv,
                                          &spilled), 0);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"d", 1, (const uint8_t *)"4", 1,
                                          collect_kv, &spilled), 0);
    ck_assert_int_eq(vc_get(c, "d", v), 1);
    ck_assert_int_eq(vc_get(c, "c", v), -1);
    sf__vcache_end(c, false);
    ck_assert_int_eq(vc_get(c, "a", v), 1);
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(vc_get(c, "c", v), 1);
    ck_assert_str_eq(v, "3");
    ck_assert_int_eq(vc_get(c, "d", v), -1);
    ck_assert_uint_eq(sf__vcache_dirty(c), 2);
    /* A kept one stays. */
    sf__vcache_begin(c);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"a", 1, (const uint8_t *)"5", 1,
                                          collect_kv, &spilled), 0);
    sf__vcache_end(c, true);
    ck_assert_int_eq(vc_get(c, "a", v), 1);
    ck_assert_str_eq(v, "5");

    /* Too large for the cache: the caller writes it, and no older entry stays. */
    {
        static uint8_t big[SF__VCACHE_MAX_VALUE + 1];
        ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"a", 1, big, sizeof big,
                                              collect_kv, &spilled), -1);
        ck_assert_int_eq(vc_get(c, "a", v), -1);
        ck_assert_uint_eq(sf__vcache_dirty(c), 1);
    }

    /* Clearing forgets clean entries only; the dirty are handed out until marked clean. */
    sf__vcache_clear(c);
    ck_assert_int_eq(vc_get(c, "c", v), 1);
    sf__vcache_each_prefix(c, (const uint8_t *)"c", 1, collect_kv, &dirty);
    ck_assert_uint_eq(dirty.len, 4);
    sf_buf_reset(&dirty);
    {
        uint32_t gen = sf__vcache_sweep(c);
        /* Written after the sweep began: not its business. */
        ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"n", 1, NULL, 0, collect_kv,
                                              &spilled), 0);
        ck_assert_uint_eq(sf__vcache_each_dirty(c, gen, 0, 10, collect_kv, &dirty),
                          sf__vcache_end_pos(c));
        ck_assert_uint_eq(dirty.len, 4);
        ck_assert(memcmp(dirty.base, "c=3;", 4) == 0);
        sf__vcache_mark_clean(c, gen, 0, sf__vcache_end_pos(c));
        ck_assert_uint_eq(sf__vcache_dirty(c), 1);
        gen = sf__vcache_sweep(c);
        sf_buf_reset(&dirty);
        sf__vcache_each_dirty(c, gen, 0, 10, collect_kv, &dirty);
        ck_assert_uint_eq(dirty.len, 5);
        ck_assert(memcmp(dirty.base, "n=--;", 5) == 0);
        sf__vcache_mark_clean(c, gen, 0, sf__vcache_end_pos(c));
        ck_assert_uint_eq(sf__vcache_dirty(c), 0);
        sf_buf_reset(&dirty);
        sf__vcache_each_dirty(c, sf__vcache_sweep(c), 0, 10, collect_kv, &dirty);
        ck_assert_uint_eq(dirty.len, 0);
    }
    /* Clean now, so a read may replace it. */
    sf__vcache_clear(c);
    ck_assert_int_eq(vc_get(c, "c", v), -1);
    sf__vcache_free(c);

    /* The dirty bound: past it, a key not dirty yet is cached clean, to be written
     * through by the caller; a dirty one stays dirty. */
    c = sf__vcache_new(64, 4096, 2);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"a", 1, (const uint8_t *)"1", 1,
                                          collect_kv, &spilled), 0);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"b", 1, (const uint8_t *)"2", 1,
                                          collect_kv, &spilled), 0);
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"c", 1, (const uint8_t *)"3", 1,
                                          collect_kv, &spilled), 1);
    ck_assert_int_eq(vc_get(c, "c", v), 1);
    ck_assert_str_eq(v, "3");
    ck_assert_int_eq(sf__vcache_put_dirty(c, (const uint8_t *)"a", 1, (const uint8_t *)"4", 1,
                                          collect_kv, &spilled), 0);
    ck_assert_uint_eq(sf__vcache_dirty(c), 2);
    sf__vcache_free(c);
    sf_buf_dispose(&spilled);
    sf_buf_dispose(&dirty);
}
END_TEST

/* A whole write-back sweep in steps of |max|; returns the number of steps. */
static int sweep(sf_state_batch_t *batch, size_t max, size_t *written)
{
    size_t cursor = 0, n;
    int rv, steps = 0;
    *written = 0;
    do {
        rv = sf_state_batch_write_back(batch, &cursor, max, &n);
        ck_assert_int_ge(rv, 0);
        ck_assert_uint_le(n, max);
        *written += n;
        steps++;
    } while (rv == 0 && steps < 1000000);
    return steps;
}

/* Write-back (RocksDB without a WAL): what a batch commits is read through it
 * (gets and scans) but not from the store until it is written back; more
 * addresses than the cache holds spill to the store on their own; a rolled-back
 * write never arrives; a checkpoint after the write-back holds every value. */
START_TEST(test_write_back)
{
    enum { N = 150000 };
    sf_state_options_t o;
    sf_state_backend_t *b, *b2;
    sf_state_batch_t *batch, *other;
    sf_addr_t a = addr("ns", "fn", "a");
    char *tmp = sf_test_mkdtemp("state-wb"), live[600], cp[600], live2[600], id[32], val[32];
    size_t written = 0;
    int i, n = 0;
    ck_assert_ptr_nonnull(tmp);
    snprintf(live, sizeof live, "%s/db", tmp);
    snprintf(cp, sizeof cp, "%s/cp", tmp);
    snprintf(live2, sizeof live2, "%s/db2", tmp);
    rocks_options(&o, live);
    o.write_back = true;
    ck_assert_int_eq(sf_state_open2(&o, &b), SF_EINVAL); /* a WAL would lose the caches */
    o.wal = false;
    ck_assert_int_eq(sf_state_open2(&o, &b), 0);
    ck_assert_int_eq(sf_state_batch_new(b, &batch), 0);
    ck_assert_int_eq(sf_state_batch_new(b, &other), 0);
    {
        fx_t f = {.b = b, .batch = batch};
        put(&f, 4, "a", "s", "t", "v1", SF_STATE_TTL_NONE, 0, 0);
        ck_assert_int_eq(get(&f, batch, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v1");
        ck_assert_int_eq(get(&f, NULL, 4, "a", "s", 0, 0, NULL, NULL), 0);
        ck_assert_int_eq(get(&f, other, 4, "a", "s", 0, 0, NULL, NULL), 0);
        ck_assert_int_eq(sf_state_scan_address(b, batch, 4, &a, 0, count_cb, &n), 0);
        ck_assert_int_eq(n, 1);
        n = 0;
        ck_assert_int_eq(sf_state_scan_address(b, NULL, 4, &a, 0, count_cb, &n), 0);
        ck_assert_int_eq(n, 0);
        /* Rolled back: neither cached nor written. */
        sf_state_batch_savepoint(batch);
        ck_assert_int_eq(sf_state_batch_put(batch, 4, &a, "s", "t", (const uint8_t *)"no", 2,
                                            SF_STATE_TTL_NONE, 0, 0), 0);
        sf_state_batch_rollback(batch);
        ck_assert_int_eq(sf_state_batch_commit(batch), 0);
        ck_assert_int_eq(get(&f, batch, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v1");
        ck_assert_int_eq(sweep(batch, 512, &written), 1);
        ck_assert_uint_eq(written, 1);
        ck_assert_int_eq(get(&f, NULL, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v1");
        sweep(batch, 512, &written);
        ck_assert_uint_eq(written, 0);
        /* Closed to new dirty entries: a new key goes to the store with its commit,
         * a dirty one stays in the cache; open again, new keys stay cached. */
        put(&f, 4, "a", "s", "t", "v2", SF_STATE_TTL_NONE, 0, 0);
        sf_state_batch_close_dirty(batch, true);
        ck_assert_int_eq(sf_state_batch_put(batch, 4, &a, "s", "t", (const uint8_t *)"v3", 2,
                                            SF_STATE_TTL_NONE, 0, 0), 0);
        ck_assert_int_eq(sf_state_batch_put(batch, 4, &a, "c", "t", (const uint8_t *)"c1", 2,
                                            SF_STATE_TTL_NONE, 0, 0), 0);
        ck_assert_int_eq(sf_state_batch_commit(batch), 0);
        ck_assert_int_eq(get(&f, NULL, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v1");
        ck_assert_int_eq(get(&f, NULL, 4, "a", "c", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "c1");
        ck_assert_int_eq(get(&f, batch, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v3");
        sf_state_batch_close_dirty(batch, false);
        put(&f, 4, "a", "d", "t", "d1", SF_STATE_TTL_NONE, 0, 0);
        ck_assert_int_eq(get(&f, NULL, 4, "a", "d", 0, 0, NULL, NULL), 0);
        ck_assert_int_eq(sweep(batch, 512, &written), 1);
        ck_assert_uint_eq(written, 2);
        ck_assert_int_eq(get(&f, NULL, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v3");
    }
    /* More addresses than the cache has entries: most spill at commit. */
    for (i = 0; i < N; i++) {
        sf_addr_t x;
        snprintf(id, sizeof id, "x%d", i);
        snprintf(val, sizeof val, "v%d", i);
        x = addr("ns", "fn", id);
        ck_assert_int_eq(sf_state_batch_put(batch, (uint16_t)(i % 16), &x, "s", "t",
                                            (const uint8_t *)val, strlen(val),
                                            SF_STATE_TTL_NONE, 0, 0), 0);
        if (i % 1000 == 999)
            ck_assert_int_eq(sf_state_batch_commit(batch), 0);
    }
    ck_assert_int_eq(sf_state_batch_commit(batch), 0);
    ck_assert_int_gt(sweep(batch, 1000, &written), 1); /* in steps of at most 1 000 */
    ck_assert_uint_gt(written, 1000);
    ck_assert_uint_lt(written, N);
    ck_assert_int_eq(sf_state_checkpoint(b, cp), 0);
    sf_state_batch_free(other);
    sf_state_batch_free(batch);
    sf_state_close(b);

    o.dir = live2;
    ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), 0);
    {
        fx_t f = {.b = b2};
        for (i = 0; i < N; i += 7) {
            char want[32];
            snprintf(id, sizeof id, "x%d", i);
            snprintf(want, sizeof want, "v%d", i);
            ck_assert_int_eq(get(&f, NULL, (uint16_t)(i % 16), id, "s", 0, 0, val, NULL), 1);
            ck_assert_str_eq(val, want);
        }
        ck_assert_int_eq(get(&f, NULL, 4, "a", "s", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "v3");
        ck_assert_int_eq(get(&f, NULL, 4, "a", "d", 0, 0, val, NULL), 1);
        ck_assert_str_eq(val, "d1");
    }
    sf_state_close(b2);
    sf_test_rmtree(tmp);
}
END_TEST

/* Counts the files of |dir| ending in |suffix|, and adds up their bytes in |*bytes|. */
static int count_files(const char *dir, const char *suffix, off_t *bytes)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t m = strlen(suffix);
    int n = 0;
    *bytes = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[1200];
        struct stat st;
        if (len < m || strcmp(e->d_name + len - m, suffix) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ck_assert_int_eq(stat(path, &st), 0);
        *bytes += st.st_size;
        n++;
    }
    closedir(d);
    return n;
}

/* RocksDB without a WAL to replay (the runtime with checkpoints on): a checkpoint
 * holds every commit before it, also those after the last flush, which only the
 * memtables hold: loop 0 without any log (the checkpoint flushes them into a second
 * table), loop 1 with checkpoint_wal (the checkpoint copies them from the log and
 * has one table only). Values, timers and log records committed just before it come
 * back from it, also when read through a new batch (an empty read cache). */
START_TEST(test_checkpoint_without_wal)
{
    sf_state_options_t o;
    sf_state_backend_t *b, *b2;
    sf_state_batch_t *batch;
    sf_addr_t a = addr("ns", "fn", "a"), z = addr("ns", "fn", "z");
    sf_state_value_t v;
    sf_buf_t buf;
    char *tmp = sf_test_mkdtemp("state-nowal"), live[600], cp[600], live2[600];
    off_t log_bytes, sst_bytes;
    int i;
    ck_assert_ptr_nonnull(tmp);
    snprintf(live, sizeof live, "%s/db", tmp);
    snprintf(cp, sizeof cp, "%s/cp", tmp);
    snprintf(live2, sizeof live2, "%s/db2", tmp);
    sf_buf_init(&buf, NULL);
    rocks_options(&o, live);
    o.wal = false;
    o.checkpoint_wal = _i == 1;
    ck_assert_int_eq(sf_state_open2(&o, &b), 0);
    ck_assert_int_eq(sf_state_batch_new(b, &batch), 0);
    ck_assert_int_eq(sf_state_batch_put(batch, 4, &z, "s", "t", (const uint8_t *)"flushed", 7,
                                        SF_STATE_TTL_NONE, 0, 0),
                     0);
    ck_assert_int_eq(sf_state_batch_commit(batch), 0);
    ck_assert_int_eq(sf_state_flush(b), 0);
    for (i = 0; i < 100; i++) {
        char val[16];
        int n = snprintf(val, sizeof val, "v%d", i);
        ck_assert_int_eq(sf_state_batch_put(batch, 4, &a, "s", "t", (const uint8_t *)val,
                                            (size_t)n, SF_STATE_TTL_NONE, 0, 0),
                         0);
        ck_assert_int_eq(sf_state_batch_commit(batch), 0);
    }
    ck_assert_int_eq(sf_state_batch_log_put(batch, 0, "k", 1, "log", 3), 0);
    ck_assert_int_eq(sf_state_batch_commit(batch), 0);
    ck_assert_int_eq(sf_state_checkpoint(b, cp), 0);
    sf_state_batch_free(batch);
    sf_state_close(b);

    ck_assert_int_eq(count_files(cp, ".sst", &sst_bytes), _i == 1 ? 1 : 2);
    count_files(cp, ".log", &log_bytes);
    if (_i == 1)
        ck_assert_int_gt(log_bytes, 100 * 20); /* the 100 commits since the flush */
    else
        ck_assert_int_eq(log_bytes, 0);

    o.dir = live2;
    ck_assert_int_eq(sf_state_open_from(&o, cp, &b2), 0);
    ck_assert_int_eq(sf_state_batch_new(b2, &batch), 0);
    ck_assert_int_eq(sf_state_get(b2, batch, 4, &a, "s", 0, 0, &buf, &v), 1);
    ck_assert_uint_eq(v.len, 3);
    ck_assert(memcmp(v.data, "v99", 3) == 0);
    ck_assert_int_eq(sf_state_get(b2, batch, 4, &z, "s", 0, 0, &buf, &v), 1);
    ck_assert_uint_eq(v.len, 7);
    sf_buf_reset(&buf);
    ck_assert_int_eq(sf_state_log_get(b2, 0, "k", 1, &buf), 1);
    ck_assert_uint_eq(buf.len, 3);
    sf_state_batch_free(batch);
    sf_state_close(b2);
    sf_buf_dispose(&buf);
    sf_test_rmtree(tmp);
}
END_TEST

/* The RocksDB options the runtime opens with (write-back, a log for checkpoints
 * only), as RocksDB wrote them to its OPTIONS file: preallocation is off (set through
 * the option-string parser), and the settings made after it are there too. */
START_TEST(test_rocksdb_options)
{
    static const char *const want[] = {
        "allow_fallocate=false",
        "manual_wal_flush=true",
        "max_bytes_for_level_base=33554432",
        "level0_file_num_compaction_trigger=8",
        "inplace_update_support=false",
        "compaction_filter=statefun.ttl",
        "cache_index_and_filter_blocks=false",
    };
    sf_state_options_t o;
    sf_state_backend_t *b;
    char *tmp = sf_test_mkdtemp("state-opts"), live[600], path[1200] = "", *text;
    DIR *d;
    struct dirent *e;
    size_t i, len;
    ck_assert_ptr_nonnull(tmp);
    snprintf(live, sizeof live, "%s/db", tmp);
    rocks_options(&o, live);
    o.write_back = true;
    o.wal = false;
    o.checkpoint_wal = true;
    ck_assert_int_eq(sf_state_open2(&o, &b), 0);
    sf_state_close(b);
    ck_assert_ptr_nonnull(d = opendir(live));
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "OPTIONS-", 8) == 0)
            snprintf(path, sizeof path, "%s/%s", live, e->d_name);
    closedir(d);
    ck_assert_str_ne(path, "");
    ck_assert_ptr_nonnull(text = sf_test_read_file(path, &len));
    for (i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "%s: no %s", path, want[i]);
    free(text);
    sf_test_rmtree(tmp);
}
END_TEST

Suite *sf_runtime_state_suite(void)
{
    Suite *s = suite_create("runtime_state");
    TCase *tc = tcase_create("backends");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_put_get_delete, 0, 2);
    tcase_add_loop_test(tc, test_prefix_calls, 0, 2);
    tcase_add_loop_test(tc, test_batch_atomic, 0, 2);
    tcase_add_loop_test(tc, test_ttl_after_write, 0, 2);
    tcase_add_loop_test(tc, test_ttl_after_invoke, 0, 2);
    tcase_add_loop_test(tc, test_ttl_reclaim, 0, 2);
    tcase_add_loop_test(tc, test_timers_fire_order, 0, 2);
    tcase_add_loop_test(tc, test_timer_tokens, 0, 2);
    tcase_add_loop_test(tc, test_batch_savepoint, 0, 2);
    tcase_add_loop_test(tc, test_reopen, 0, 2);
    tcase_add_loop_test(tc, test_range_scan, 0, 2);
    tcase_add_loop_test(tc, test_log_records, 0, 2);
    tcase_add_loop_test(tc, test_checkpoint_restore, 0, 2);
    tcase_add_loop_test(tc, test_concurrent_workers, 0, 2);
    tcase_add_loop_test(tc, test_overwrite_in_place, 0, 2);
    tcase_add_loop_test(tc, test_batch_reads, 0, 2);
    tcase_add_test(tc, test_vcache);
    tcase_add_test(tc, test_vcache_dirty);
    tcase_add_test(tc, test_write_back);
    tcase_add_loop_test(tc, test_checkpoint_without_wal, 0, 2);
    tcase_add_test(tc, test_rocksdb_options);
    suite_add_tcase(s, tc);
    return s;
}
