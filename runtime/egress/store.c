/* statefun-c: Apache License 2.0.
 *
 * The durable egress store (see store.h): one RocksDB database, a table of
 * topics with their meta (copied in memory, the truth being the 'T' keys),
 * and batches that get their offsets when committed. A commit holds the
 * store's mutex across the synced write, so offsets and meta follow commit
 * order; the I/O thread commits from libuv's thread pool and the main thread
 * from its loop, never from a loop callback that must not block.
 *
 * Errors from RocksDB's char **errptr are logged with their text, freed with
 * rocksdb_free and returned as SF_ESTATE.
 *
 * Threading: any thread (see store.h).
 */
#include "store.h"

#include <errno.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fs.h"
#include "log.h"
#include "sf_common.h"
#include "xalloc.h"

/* Trims of more records than this are one range deletion rather than point
 * deletions (a range tombstone per commit would slow iterators down). */
#define TRIM_POINT_MAX 512u
#define KEY_MAX (1 + 2 + SF_EGRESS_STORE_MAX_TOPIC + 8)

typedef struct stopic_s {
    char *name;
    size_t len;
    sf_egress_store_info_t meta;
    /* Scratch of the commit in progress (under the lock). */
    sf_egress_store_info_t next;
    bool touched;
} stopic_t;

struct sf_egress_store_s {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    uv_mutex_t lock;
    stopic_t *topics; /* under |lock| (the array may move when a topic is added) */
    size_t ntopics, cap;
    uint64_t published; /* under |lock| */
};

typedef struct op_s {
    uint32_t topic;
    uint64_t value;
} op_t;

typedef struct rec_s {
    uint32_t topic;
    uint64_t offset;
    size_t at; /* in |payload| */
    size_t len;
} rec_t;

struct sf_egress_store_batch_s {
    sf_egress_store_t *s;
    rec_t *recs;
    size_t nrecs, recs_cap;
    sf_buf_t payload;
    op_t *cursors, *trims;
    size_t ncursors, cursors_cap, ntrims, trims_cap;
    bool has_epoch;
    uint64_t epoch;
    rocksdb_writebatch_t *wb;
};

static int rerr(const char *what, char *err)
{
    sf_log_error("egress store: rocksdb %s: %s", what, err ? err : "unknown error");
    rocksdb_free(err);
    return SF_ESTATE;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* 'T' or 'R' key prefix of |t| into |k|; returns its length. */
static size_t key_prefix(uint8_t *k, char tag, const stopic_t *t)
{
    k[0] = (uint8_t)tag;
    k[1] = (uint8_t)(t->len >> 8);
    k[2] = (uint8_t)t->len;
    memcpy(k + 3, t->name, t->len);
    return 3 + t->len;
}

static size_t rec_key(uint8_t *k, const stopic_t *t, uint64_t offset)
{
    size_t n = key_prefix(k, 'R', t);
    put_u64(k + n, offset);
    return n + 8;
}

/* Adds a topic to the table (under the lock or before sharing). */
static uint32_t add_topic(sf_egress_store_t *s, const char *name, size_t len,
                          const sf_egress_store_info_t *meta)
{
    stopic_t *t;
    if (s->ntopics == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->topics = sf_xrealloc(s->topics, s->cap * sizeof *s->topics);
    }
    t = &s->topics[s->ntopics];
    memset(t, 0, sizeof *t);
    t->name = sf_xstrndup(name, len);
    t->len = len;
    if (meta)
        t->meta = *meta;
    return (uint32_t)s->ntopics++;
}

/* Reads the published epoch and every topic's meta. */
static int load(sf_egress_store_t *s)
{
    rocksdb_iterator_t *it;
    char *err = NULL, *v;
    size_t vlen;
    v = rocksdb_get(s->db, s->ropts, "P", 1, &vlen, &err);
    if (err)
        return rerr("get", err);
    if (v && vlen == 8)
        s->published = get_u64((const uint8_t *)v);
    rocksdb_free(v);
    it = rocksdb_create_iterator(s->db, s->ropts);
    for (rocksdb_iter_seek(it, "T", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl, nl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it, &vl);
        sf_egress_store_info_t m;
        if (kl < 1 || k[0] != 'T')
            break;
        nl = kl >= 3 ? (size_t)k[1] << 8 | k[2] : 0;
        if (kl != 3 + nl || nl == 0 || vl != 24) {
            sf_log_warn("egress store: skipping a malformed topic entry");
            continue;
        }
        m.base = get_u64(val);
        m.end = get_u64(val + 8);
        m.cursor = get_u64(val + 16);
        add_topic(s, (const char *)k + 3, nl, &m);
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? rerr("iterate", err) : 0;
}

int sf_egress_store_open(const char *dir, bool sync, sf_egress_store_t **out)
{
    sf_egress_store_t *s;
    char *err = NULL;
    int rv;

    if (sf_fs_mkdirs(dir) != 0) {
        sf_log_error("egress store: cannot create %s: %s", dir, strerror(errno));
        return SF_EIO;
    }
    s = sf_xcalloc(1, sizeof *s);
    uv_mutex_init(&s->lock);
    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, 1);
    /* A small database: records are bounded per topic and mostly short-lived. */
    rocksdb_options_set_write_buffer_size(s->opts, 16u << 20);
    rocksdb_options_set_max_background_jobs(s->opts, 2);
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_keep_log_file_num(s->opts, 2);
    rocksdb_options_set_max_log_file_size(s->opts, 1u << 20);
    s->ropts = rocksdb_readoptions_create();
    s->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts, sync ? 1 : 0);
    s->db = rocksdb_open(s->opts, dir, &err);
    if (err) {
        rv = rerr("open", err);
        sf_log_error("egress store: cannot open %s", dir);
        goto fail;
    }
    if ((rv = load(s)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    sf_egress_store_close(s);
    return rv;
}

void sf_egress_store_close(sf_egress_store_t *s)
{
    size_t i;
    if (!s)
        return;
    if (s->db)
        rocksdb_close(s->db);
    rocksdb_readoptions_destroy(s->ropts);
    rocksdb_writeoptions_destroy(s->wopts);
    rocksdb_options_destroy(s->opts);
    for (i = 0; i < s->ntopics; i++)
        free(s->topics[i].name);
    free(s->topics);
    uv_mutex_destroy(&s->lock);
    free(s);
}

int sf_egress_store_topic(sf_egress_store_t *s, const char *name, size_t len)
{
    size_t i;
    uint32_t idx;
    if (len == 0 || len > SF_EGRESS_STORE_MAX_TOPIC)
        return SF_EINVAL;
    uv_mutex_lock(&s->lock);
    for (i = 0; i < s->ntopics; i++)
        if (s->topics[i].len == len && memcmp(s->topics[i].name, name, len) == 0)
            break;
    idx = i < s->ntopics ? (uint32_t)i : add_topic(s, name, len, NULL);
    uv_mutex_unlock(&s->lock);
    return (int)idx;
}

void sf_egress_store_info(sf_egress_store_t *s, uint32_t topic, sf_egress_store_info_t *out)
{
    uv_mutex_lock(&s->lock);
    SF_ASSERT(topic < s->ntopics);
    *out = s->topics[topic].meta;
    uv_mutex_unlock(&s->lock);
}

uint64_t sf_egress_store_published_epoch(sf_egress_store_t *s)
{
    uint64_t v;
    uv_mutex_lock(&s->lock);
    v = s->published;
    uv_mutex_unlock(&s->lock);
    return v;
}

ssize_t sf_egress_store_read(sf_egress_store_t *s, uint32_t topic, uint64_t from, size_t max,
                             sf_egress_store_read_cb cb, void *user_data)
{
    uint8_t lo[KEY_MAX], hi[KEY_MAX];
    size_t lolen, hilen;
    sf_egress_store_info_t m;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    char *err = NULL;
    ssize_t n = 0;

    uv_mutex_lock(&s->lock);
    SF_ASSERT(topic < s->ntopics);
    m = s->topics[topic].meta;
    lolen = rec_key(lo, &s->topics[topic], from > m.base ? from : m.base);
    hilen = rec_key(hi, &s->topics[topic], m.end);
    uv_mutex_unlock(&s->lock);
    if (from >= m.end)
        return 0;
    ro = rocksdb_readoptions_create();
    /* The bound keeps the iterator off the keys past the topic's end. */
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
    it = rocksdb_create_iterator(s->db, ro);
    for (rocksdb_iter_seek(it, (const char *)lo, lolen); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl != lolen)
            continue;
        n++;
        if (cb(get_u64(k + kl - 8), v, vl, user_data) != 0)
            break;
        if (max && (size_t)n >= max)
            break;
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err ? rerr("iterate", err) : n;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                    */

sf_egress_store_batch_t *sf_egress_store_batch_new(sf_egress_store_t *s)
{
    sf_egress_store_batch_t *b = sf_xcalloc(1, sizeof *b);
    b->s = s;
    sf_buf_init(&b->payload, NULL);
    b->wb = rocksdb_writebatch_create();
    return b;
}

void sf_egress_store_batch_free(sf_egress_store_batch_t *b)
{
    if (!b)
        return;
    free(b->recs);
    free(b->cursors);
    free(b->trims);
    sf_buf_dispose(&b->payload);
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void sf_egress_store_batch_clear(sf_egress_store_batch_t *b)
{
    b->nrecs = b->ncursors = b->ntrims = 0;
    b->payload.len = 0;
    b->has_epoch = false;
    rocksdb_writebatch_clear(b->wb);
}

bool sf_egress_store_batch_empty(const sf_egress_store_batch_t *b)
{
    return b->nrecs == 0 && b->ncursors == 0 && b->ntrims == 0 && !b->has_epoch;
}

void sf_egress_store_batch_append(sf_egress_store_batch_t *b, uint32_t topic, const void *data,
                                  size_t len)
{
    rec_t *r;
    if (b->nrecs == b->recs_cap) {
        b->recs_cap = b->recs_cap ? 2 * b->recs_cap : 16;
        b->recs = sf_xrealloc(b->recs, b->recs_cap * sizeof *b->recs);
    }
    r = &b->recs[b->nrecs++];
    r->topic = topic;
    r->offset = 0;
    r->at = b->payload.len;
    r->len = len;
    if (len && sf_buf_append(&b->payload, data, len) != 0)
        sf__panic(__FILE__, __LINE__, "out of memory");
}

static void add_op(op_t **ops, size_t *n, size_t *cap, uint32_t topic, uint64_t value)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        *ops = sf_xrealloc(*ops, *cap * sizeof **ops);
    }
    (*ops)[*n].topic = topic;
    (*ops)[(*n)++].value = value;
}

void sf_egress_store_batch_cursor(sf_egress_store_batch_t *b, uint32_t topic, uint64_t cursor)
{
    add_op(&b->cursors, &b->ncursors, &b->cursors_cap, topic, cursor);
}

void sf_egress_store_batch_trim(sf_egress_store_batch_t *b, uint32_t topic, uint64_t below)
{
    add_op(&b->trims, &b->ntrims, &b->trims_cap, topic, below);
}

void sf_egress_store_batch_epoch(sf_egress_store_batch_t *b, uint64_t epoch)
{
    b->has_epoch = true;
    b->epoch = epoch;
}

size_t sf_egress_store_batch_count(const sf_egress_store_batch_t *b) { return b->nrecs; }

void sf_egress_store_batch_rec(const sf_egress_store_batch_t *b, size_t i, uint32_t *topic,
                               uint64_t *offset, const void **data, size_t *len)
{
    const rec_t *r;
    SF_ASSERT(i < b->nrecs);
    r = &b->recs[i];
    *topic = r->topic;
    *offset = r->offset;
    *data = b->payload.base + r->at;
    *len = r->len;
}

/* Adds the deletion of |t|'s records [lo, hi) to |wb|. */
static void trim_range(rocksdb_writebatch_t *wb, const stopic_t *t, uint64_t lo, uint64_t hi)
{
    uint8_t k[KEY_MAX], k2[KEY_MAX];
    size_t kl, kl2;
    if (hi - lo > TRIM_POINT_MAX) {
        kl = rec_key(k, t, lo);
        kl2 = rec_key(k2, t, hi);
        rocksdb_writebatch_delete_range(wb, (const char *)k, kl, (const char *)k2, kl2);
        return;
    }
    for (; lo < hi; lo++) {
        kl = rec_key(k, t, lo);
        rocksdb_writebatch_delete(wb, (const char *)k, kl);
    }
}

int sf_egress_store_commit(sf_egress_store_batch_t *b)
{
    sf_egress_store_t *s = b->s;
    uint8_t k[KEY_MAX], meta[24], ep[8];
    char *err = NULL;
    size_t i, kl;

    if (sf_egress_store_batch_empty(b))
        return 0;
    rocksdb_writebatch_clear(b->wb);
    uv_mutex_lock(&s->lock);
    for (i = 0; i < s->ntopics; i++) {
        s->topics[i].next = s->topics[i].meta;
        s->topics[i].touched = false;
    }
    for (i = 0; i < b->nrecs; i++) {
        rec_t *r = &b->recs[i];
        stopic_t *t;
        SF_ASSERT(r->topic < s->ntopics);
        t = &s->topics[r->topic];
        r->offset = t->next.end++;
        t->touched = true;
        kl = rec_key(k, t, r->offset);
        rocksdb_writebatch_put(b->wb, (const char *)k, kl, (const char *)b->payload.base + r->at,
                               r->len);
    }
    for (i = 0; i < b->ncursors; i++) {
        stopic_t *t;
        SF_ASSERT(b->cursors[i].topic < s->ntopics);
        t = &s->topics[b->cursors[i].topic];
        t->next.cursor = b->cursors[i].value < t->next.end ? b->cursors[i].value : t->next.end;
        t->touched = true;
    }
    for (i = 0; i < b->ntrims; i++) {
        stopic_t *t;
        uint64_t below;
        SF_ASSERT(b->trims[i].topic < s->ntopics);
        t = &s->topics[b->trims[i].topic];
        below = b->trims[i].value < t->next.end ? b->trims[i].value : t->next.end;
        if (below > t->next.base) {
            trim_range(b->wb, t, t->next.base, below);
            t->next.base = below;
            t->touched = true;
        }
    }
    for (i = 0; i < s->ntopics; i++) {
        stopic_t *t = &s->topics[i];
        if (!t->touched)
            continue;
        put_u64(meta, t->next.base);
        put_u64(meta + 8, t->next.end);
        put_u64(meta + 16, t->next.cursor);
        kl = key_prefix(k, 'T', t);
        rocksdb_writebatch_put(b->wb, (const char *)k, kl, (const char *)meta, sizeof meta);
    }
    if (b->has_epoch) {
        put_u64(ep, b->epoch);
        rocksdb_writebatch_put(b->wb, "P", 1, (const char *)ep, sizeof ep);
    }
    rocksdb_write(s->db, s->wopts, b->wb, &err);
    if (!err) {
        for (i = 0; i < s->ntopics; i++)
            s->topics[i].meta = s->topics[i].next;
        if (b->has_epoch)
            s->published = b->epoch;
    }
    uv_mutex_unlock(&s->lock);
    rocksdb_writebatch_clear(b->wb);
    return err ? rerr("write", err) : 0;
}
