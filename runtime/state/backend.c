/* statefun-c: Apache License 2.0.
 *
 * The state backend's semantics over a store (state_int.h): values with
 * typenames and TTL, atomic batches, delayed messages with cancellation
 * tokens, key-group scans, log records, checkpoints and restore. The two
 * stores (RocksDB and memory) only keep bytes; everything a user can observe
 * is decided here, once.
 *
 * Invariants:
 *  - A token key exists exactly while its timer is pending (scheduled,
 *    neither fired nor cancelled); both are written and removed together in
 *    one store batch.
 *  - timer_min[kg] is never later than the first pending timer of kg (or is
 *    UNKNOWN): commits lower it, pops reset it to UNKNOWN after removing.
 *  - timer_floor[kg] is never later than the first pending timer of kg:
 *    commits lower it, pops raise it past what they removed. Timer seeks
 *    start at the floor, so they do not walk over the tombstones that popped
 *    timers leave at the head of a key group in RocksDB.
 *  - Timer sequence numbers below seq_reserved are recorded in the store
 *    before any of them is used.
 *
 * Threading: see backend.h.
 */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "fs.h"
#include "log.h"
#include "state_int.h"
#include "vcache.h"
#include "xalloc.h"

/* Sequence numbers reserved per store write. */
#define SEQ_BLOCK 65536u

#define META_MAXP "max_parallelism"
#define META_SEQ "timer_seq"

/* ------------------------------------------------------------------------ */
/* Files                                                                      */

int sf__mkdirs(const char *dir)
{
    int rv = sf_fs_mkdirs(dir);
    if (rv != 0)
        sf_log_error("state: cannot create directory %s: %s", dir, strerror(errno));
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                             */

void sf_state_options_init(sf_state_options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->kind = "rocksdb";
    opts->max_parallelism = 128;
    opts->block_cache_bytes = (size_t)256 << 20;
    opts->write_buffer_bytes = (size_t)32 << 20;
    opts->max_write_buffers = 3;
    opts->background_jobs = 2;
    opts->sync_commits = false;
    opts->checkpoint_flush_bytes = UINT64_MAX;
    opts->wal = true;
}

static void batch_setup(sf_state_batch_t *batch, sf_state_backend_t *b)
{
    batch->backend = b;
    batch->impl = NULL;
    batch->count = 0;
    sf__sbuf_init(&batch->key);
    sf__sbuf_init(&batch->val);
    sf__sbuf_init(&batch->key2);
    sf__sbuf_init(&batch->tokens);
    sf__sbuf_init(&batch->scheduled);
    sf_buf_init(&batch->tmp, NULL);
    batch->cache = NULL;
    sf__sbuf_init(&batch->staged);
    batch->nstore = 0;
    batch->out = NULL;
    batch->sweep = 0;
    b->vt->batch_init(batch);
}

static void batch_teardown(sf_state_batch_t *batch)
{
    batch->backend->vt->batch_dispose(batch);
    sf__sbuf_dispose(&batch->key);
    sf__sbuf_dispose(&batch->val);
    sf__sbuf_dispose(&batch->key2);
    sf__sbuf_dispose(&batch->tokens);
    sf__sbuf_dispose(&batch->scheduled);
    sf_buf_dispose(&batch->tmp);
    sf__vcache_free(batch->cache);
    sf__sbuf_dispose(&batch->staged);
    if (batch->out) {
        batch_teardown(batch->out);
        free(batch->out);
    }
}

int sf__store_write1(sf_state_backend_t *b, const uint8_t *key, size_t klen, const uint8_t *val,
                     size_t vlen)
{
    sf_state_batch_t batch;
    int rv;
    batch_setup(&batch, b);
    b->vt->batch_op(&batch, key, klen, val, vlen);
    rv = b->vt->batch_write(&batch);
    batch_teardown(&batch);
    return rv;
}

static int meta_get_u64(sf_state_backend_t *b, const char *name, uint64_t *out)
{
    sf__sbuf_t k;
    sf_buf_t v;
    int rv;
    sf__sbuf_init(&k);
    sf_buf_init(&v, NULL);
    sf__key_meta(&k, name);
    rv = b->vt->get(b, k.p, k.len, &v);
    if (rv == 1) {
        if (v.len != 8) {
            sf_log_error("state: corrupt meta record %s", name);
            rv = SF_ESTATE;
        } else {
            *out = sf__get_be64(v.base);
        }
    }
    sf_buf_dispose(&v);
    sf__sbuf_dispose(&k);
    return rv;
}

static int meta_put_u64(sf_state_backend_t *b, const char *name, uint64_t val)
{
    sf__sbuf_t k;
    uint8_t v[8];
    int rv;
    sf__sbuf_init(&k);
    sf__key_meta(&k, name);
    sf__put_be64(v, val);
    rv = sf__store_write1(b, k.p, k.len, v, sizeof v);
    sf__sbuf_dispose(&k);
    return rv;
}

/* Checks or records max_parallelism and loads the timer sequence. */
static int finish_open(sf_state_backend_t *b)
{
    uint64_t v = 0;
    int rv = meta_get_u64(b, META_MAXP, &v);
    if (rv < 0)
        return rv;
    if (rv == 1 && v != b->max_parallelism) {
        sf_log_error("state: the store was created with max parallelism %llu, not %u "
                     "(it is fixed for the life of a state directory)",
                     (unsigned long long)v, b->max_parallelism);
        return SF_EINVAL;
    }
    if (rv == 0 && (rv = meta_put_u64(b, META_MAXP, b->max_parallelism)) != 0)
        return rv;
    v = 0;
    if ((rv = meta_get_u64(b, META_SEQ, &v)) < 0)
        return rv;
    atomic_store(&b->seq_next, v);
    atomic_store(&b->seq_reserved, v);
    return 0;
}

static int backend_new(const sf_state_options_t *opts, sf_state_backend_t **out)
{
    sf_state_backend_t *b;
    uint32_t i;
    if (!opts->kind || opts->max_parallelism == 0 ||
        opts->max_parallelism > SF_STATE_MAX_PARALLELISM)
        return SF_EINVAL;
    if (strcmp(opts->kind, "rocksdb") != 0 && strcmp(opts->kind, "memory") != 0) {
        sf_log_error("state: unknown backend \"%s\" (rocksdb or memory)", opts->kind);
        return SF_EINVAL;
    }
    if (strcmp(opts->kind, "rocksdb") == 0 && (!opts->dir || !*opts->dir)) {
        sf_log_error("state: the rocksdb backend needs a directory");
        return SF_EINVAL;
    }
    if (strcmp(opts->kind, "rocksdb") == 0 && opts->write_back && opts->wal) {
        /* A WAL replay would bring back the store without what the caches held. */
        sf_log_error("state: write-back needs the WAL off");
        return SF_EINVAL;
    }
    b = sf_xcalloc(1, sizeof *b);
    b->max_parallelism = opts->max_parallelism;
    b->timer_min = sf_xmalloc(sizeof *b->timer_min * opts->max_parallelism);
    b->timer_floor = sf_xmalloc(sizeof *b->timer_floor * opts->max_parallelism);
    for (i = 0; i < opts->max_parallelism; i++) {
        atomic_init(&b->timer_min[i], SF__TMIN_UNKNOWN);
        atomic_init(&b->timer_floor[i], 0);
    }
    pthread_mutex_init(&b->seq_lock, NULL);
    atomic_init(&b->clock, 0);
    b->write_back = opts->write_back;
    *out = b;
    return 0;
}

static void backend_free(sf_state_backend_t *b)
{
    if (b->vt && b->store)
        b->vt->close(b);
    pthread_mutex_destroy(&b->seq_lock);
    free(b->timer_min);
    free(b->timer_floor);
    free(b);
}

int sf_state_open2(const sf_state_options_t *opts, sf_state_backend_t **out)
{
    sf_state_backend_t *b;
    int rv = backend_new(opts, &b);
    if (rv != 0)
        return rv;
    if (strcmp(opts->kind, "rocksdb") == 0)
        rv = sf__rocks_open(b, opts);
    else
        rv = sf__mem_open(b, opts);
    if (rv == 0)
        rv = finish_open(b);
    if (rv != 0) {
        backend_free(b);
        return rv;
    }
    *out = b;
    return 0;
}

int sf_state_open(const char *kind, const char *dir, uint32_t max_parallelism,
                  sf_state_backend_t **out)
{
    sf_state_options_t o;
    sf_state_options_init(&o);
    o.kind = kind;
    o.dir = dir;
    o.max_parallelism = max_parallelism;
    return sf_state_open2(&o, out);
}

int sf_state_open_from(const sf_state_options_t *opts, const char *checkpoint_dir,
                       sf_state_backend_t **out)
{
    sf_state_backend_t *b;
    int rv;
    if (!checkpoint_dir || !opts->kind)
        return SF_EINVAL;
    if (strcmp(opts->kind, "rocksdb") == 0) {
        if (!opts->dir || !*opts->dir)
            return SF_EINVAL;
        if ((rv = sf__rocks_restore(opts, checkpoint_dir)) != 0)
            return rv;
        return sf_state_open2(opts, out);
    }
    if ((rv = backend_new(opts, &b)) != 0)
        return rv;
    rv = sf__mem_open(b, opts);
    if (rv == 0)
        rv = sf__mem_load(b, checkpoint_dir);
    if (rv == 0)
        rv = finish_open(b);
    if (rv != 0) {
        backend_free(b);
        return rv;
    }
    *out = b;
    return 0;
}

void sf_state_close(sf_state_backend_t *b)
{
    if (b)
        backend_free(b);
}

const char *sf_state_kind(const sf_state_backend_t *b) { return b->vt->kind; }

uint32_t sf_state_max_parallelism(const sf_state_backend_t *b) { return b->max_parallelism; }

/* ------------------------------------------------------------------------ */
/* Batches                                                                    */

int sf_state_batch_new(sf_state_backend_t *b, sf_state_batch_t **out)
{
    sf_state_batch_t *batch = sf_xmalloc(sizeof *batch);
    batch_setup(batch, b);
    if (b->vt->cache_reads)
        batch->cache = sf__vcache_new(SF__VCACHE_SLOTS, SF__VCACHE_BUDGET, SF__VCACHE_DIRTY);
    *out = batch;
    return 0;
}

void sf_state_batch_free(sf_state_batch_t *batch)
{
    if (!batch)
        return;
    batch_teardown(batch);
    free(batch);
}

void sf_state_batch_clear(sf_state_batch_t *batch)
{
    batch->backend->vt->batch_clear(batch);
    batch->count = 0;
    batch->tokens.len = 0;
    batch->scheduled.len = 0;
    batch->staged.len = 0;
    batch->nstore = 0;
}

size_t sf_state_batch_count(const sf_state_batch_t *batch) { return batch->count; }

void sf_state_batch_savepoint(sf_state_batch_t *batch)
{
    batch->sp.count = batch->count;
    batch->sp.tokens = batch->tokens.len;
    batch->sp.scheduled = batch->scheduled.len;
    batch->sp.staged = batch->staged.len;
    batch->sp.nstore = batch->nstore;
    batch->backend->vt->batch_savepoint(batch);
}

void sf_state_batch_rollback(sf_state_batch_t *batch)
{
    batch->backend->vt->batch_rollback(batch);
    batch->count = batch->sp.count;
    batch->tokens.len = batch->sp.tokens;
    batch->scheduled.len = batch->sp.scheduled;
    batch->staged.len = batch->sp.staged;
    batch->nstore = batch->sp.nstore;
}

void sf_state_batch_release(sf_state_batch_t *batch) { batch->backend->vt->batch_release(batch); }

static bool is_state_key(const uint8_t *key, size_t klen)
{
    return klen >= 3 && key[0] != SF__PREFIX_GLOBAL && key[2] == SF__KIND_STATE;
}

static bool writes_back(const sf_state_batch_t *batch)
{
    return batch->cache && batch->backend->write_back;
}

/* Adds an operation to the store's batch. */
static void store_op(sf_state_batch_t *batch, const uint8_t *key, size_t klen, const uint8_t *val,
                     size_t vlen)
{
    batch->backend->vt->batch_op(batch, key, klen, val, vlen);
    batch->nstore++;
}

static void batch_op(sf_state_batch_t *batch, const sf__sbuf_t *key, const uint8_t *val,
                     size_t vlen)
{
    batch->count++;
    if (writes_back(batch) && is_state_key(key->p, key->len)) {
        uint32_t h[2] = {(uint32_t)key->len, val ? (uint32_t)vlen : UINT32_MAX};
        sf__sbuf_put(&batch->staged, h, sizeof h);
        sf__sbuf_put(&batch->staged, key->p, key->len);
        if (val)
            sf__sbuf_put(&batch->staged, val, vlen);
        return;
    }
    store_op(batch, key->p, key->len, val, vlen);
}

static int cache_state_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                          void *ud)
{
    if (is_state_key(key, klen))
        sf__vcache_put(ud, key, klen, val, vlen);
    return 0;
}

/* sf__vcache_kv_cb: adds the key to the store's batch |ud| (a spilled dirty entry,
 * or a value a write-back sweep writes). */
static void store_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *ud)
{
    store_op(ud, key, klen, val, vlen);
}

/* Write-back, before the store's batch is written: the staged state writes go
 * to the cache as dirty entries (a transaction, ended by the caller); what the
 * cache has no room for goes to the store's batch. */
static void stage_into_cache(sf_state_batch_t *batch)
{
    const uint8_t *p = batch->staged.p, *end = p + batch->staged.len;
    sf__vcache_begin(batch->cache);
    while (p < end) {
        uint32_t h[2];
        const uint8_t *key = p + sizeof h, *val;
        size_t klen, n;
        memcpy(h, p, sizeof h);
        klen = h[0];
        val = h[1] == UINT32_MAX ? NULL : key + klen;
        n = val ? h[1] : 0;
        if (sf__vcache_put_dirty(batch->cache, key, klen, val, n, store_kv, batch) != 0)
            store_op(batch, key, klen, val, n);
        p = key + klen + n;
    }
}

/* After a commit: the read cache takes the batch's state writes, read back from
 * the store's batch in order (or, when the commit failed, forgets everything:
 * the store may hold either version). */
static void cache_written(sf_state_batch_t *batch, bool committed)
{
    if (!batch->cache)
        return;
    if (committed)
        batch->backend->vt->batch_iterate(batch, cache_state_kv, batch->cache);
    else
        sf__vcache_clear(batch->cache);
}

/* Lowers |*slot| to |v| (UNKNOWN, the smallest value, is never replaced). */
static void atomic_lower(_Atomic int64_t *slot, int64_t v)
{
    int64_t cur = atomic_load(slot);
    while (v < cur && !atomic_compare_exchange_weak(slot, &cur, v))
        ;
}

int sf_state_batch_commit(sf_state_batch_t *batch)
{
    sf_state_backend_t *b = batch->backend;
    const uint8_t *p, *end;
    int rv;
    if (batch->count == 0)
        return 0;
    if (writes_back(batch))
        stage_into_cache(batch);
    rv = batch->nstore > 0 ? b->vt->batch_write(batch) : 0;
    if (writes_back(batch))
        sf__vcache_end(batch->cache, rv == 0);
    else
        cache_written(batch, rv == 0);
    if (rv != 0)
        return rv;
    for (p = batch->scheduled.p, end = p + batch->scheduled.len; p < end; p += 10) {
        uint16_t kg = sf__get_be16(p);
        int64_t fire_at = (int64_t)sf__get_be64(p + 2);
        atomic_lower(&b->timer_floor[kg], fire_at);
        atomic_lower(&b->timer_min[kg], fire_at);
    }
    sf_state_batch_clear(batch);
    return 0;
}

void sf_state_batch_close_dirty(sf_state_batch_t *batch, bool closed)
{
    if (writes_back(batch))
        sf__vcache_close_dirty(batch->cache, closed);
}

int sf_state_batch_write_back(sf_state_batch_t *batch, size_t *cursor, size_t max,
                              size_t *written)
{
    sf_state_backend_t *b = batch->backend;
    sf_state_batch_t *out = batch->out;
    size_t n = 0, from = *cursor, to;
    int rv = 0;

    if (written)
        *written = 0;
    if (!writes_back(batch) || sf__vcache_dirty(batch->cache) == 0)
        return 1;
    if (!out) {
        out = batch->out = sf_xmalloc(sizeof *out);
        batch_setup(out, b);
    }
    if (from == 0)
        batch->sweep = sf__vcache_sweep(batch->cache);
    to = sf__vcache_each_dirty(batch->cache, batch->sweep, from, max, store_kv, out);
    n = out->nstore;
    if (n > 0 && (rv = b->vt->batch_write(out)) != 0) {
        sf_state_batch_clear(out);
        return rv;
    }
    sf_state_batch_clear(out);
    sf__vcache_mark_clean(batch->cache, batch->sweep, from, to);
    *cursor = to;
    if (written)
        *written = n;
    return to >= sf__vcache_end_pos(batch->cache) ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                     */

static int check_kg(const sf_state_backend_t *b, uint32_t kg)
{
    return kg < b->max_parallelism ? 0 : SF_EINVAL;
}

static int check_range(const sf_state_backend_t *b, uint32_t lo, uint32_t hi)
{
    return lo <= hi && hi <= b->max_parallelism ? 0 : SF_EINVAL;
}

/* Whether |prefix| is a state key's prefix as the _at calls take it: its
 * kind a state's, its key group in range. */
static int check_prefix(const sf_state_backend_t *b, const uint8_t *prefix, size_t plen)
{
    return plen > 3 && prefix[2] == SF__KIND_STATE ? check_kg(b, sf__get_be16(prefix)) : SF_EINVAL;
}

size_t sf_state_prefix_len(const sf_addr_t *addr)
{
    return 3 + sf__lp_len(addr->ns_len) + sf__lp_len(addr->type_len) + sf__lp_len(addr->id_len);
}

void sf_state_prefix(uint8_t *out, uint16_t kg, const sf_addr_t *addr)
{
    sf__sbuf_t k;
    sf__sbuf_init(&k);
    sf__key_addr_prefix(&k, kg, addr);
    memcpy(out, k.p, k.len);
    sf__sbuf_dispose(&k);
}

/* Initializes |p| to the prefix of |addr| in key group |kg|, or to nothing
 * (SF_EINVAL: |kg| out of range). Dispose of it either way. */
static int prefix_of(const sf_state_backend_t *b, sf__sbuf_t *p, uint16_t kg, const sf_addr_t *addr)
{
    sf__sbuf_init(p);
    if (check_kg(b, kg) != 0)
        return SF_EINVAL;
    sf__key_addr_prefix(p, kg, addr);
    return 0;
}

/* |k| := the key of state |name| after |prefix|. */
static void state_key_at(sf__sbuf_t *k, const uint8_t *prefix, size_t plen, const char *name)
{
    k->len = 0;
    sf__sbuf_put(k, prefix, plen);
    sf__sbuf_lp(k, name, strlen(name));
}

int sf_state_batch_put_at(sf_state_batch_t *batch, const uint8_t *prefix, size_t plen,
                          const char *name, const char *type_name, const uint8_t *data, size_t len,
                          sf_state_ttl_mode mode, int64_t ttl_ms, int64_t now_ms)
{
    if (check_prefix(batch->backend, prefix, plen) != 0 ||
        (unsigned)mode > SF_STATE_TTL_AFTER_INVOKE)
        return SF_EINVAL;
    if (ttl_ms <= 0)
        mode = SF_STATE_TTL_NONE;
    state_key_at(&batch->key, prefix, plen, name);
    batch->val.len = 0;
    sf__enc_value(&batch->val, mode, mode ? ttl_ms : 0, mode ? now_ms + ttl_ms : 0, type_name,
                  strlen(type_name), data, len);
    batch_op(batch, &batch->key, batch->val.p, batch->val.len);
    return 0;
}

int sf_state_batch_put(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *addr,
                       const char *name, const char *type_name, const uint8_t *data, size_t len,
                       sf_state_ttl_mode mode, int64_t ttl_ms, int64_t now_ms)
{
    sf__sbuf_t p;
    int rv = prefix_of(batch->backend, &p, kg, addr);
    if (rv == 0)
        rv = sf_state_batch_put_at(batch, p.p, p.len, name, type_name, data, len, mode, ttl_ms,
                                   now_ms);
    sf__sbuf_dispose(&p);
    return rv;
}

int sf_state_batch_delete_at(sf_state_batch_t *batch, const uint8_t *prefix, size_t plen,
                             const char *name)
{
    if (check_prefix(batch->backend, prefix, plen) != 0)
        return SF_EINVAL;
    state_key_at(&batch->key, prefix, plen, name);
    batch_op(batch, &batch->key, NULL, 0);
    return 0;
}

int sf_state_batch_delete(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *addr,
                          const char *name)
{
    sf__sbuf_t p;
    int rv = prefix_of(batch->backend, &p, kg, addr);
    if (rv == 0)
        rv = sf_state_batch_delete_at(batch, p.p, p.len, name);
    sf__sbuf_dispose(&p);
    return rv;
}

/* Writes |key| -> |val| (NULL: deletes) through |batch|, or at once. */
static int write_through(sf_state_backend_t *b, sf_state_batch_t *batch, const sf__sbuf_t *key,
                         const uint8_t *val, size_t vlen)
{
    if (batch) {
        batch_op(batch, key, val, vlen);
        return 0;
    }
    return sf__store_write1(b, key->p, key->len, val, vlen);
}

int sf_state_get_at(sf_state_backend_t *b, sf_state_batch_t *batch, const uint8_t *prefix,
                    size_t plen, const char *name, int64_t now_ms, int flags, sf_buf_t *buf,
                    sf_state_value_t *out)
{
    sf__sbuf_t key;
    sf__state_key_t k;
    int rv;
    if (check_prefix(b, prefix, plen) != 0)
        return SF_EINVAL;
    sf__sbuf_init(&key);
    state_key_at(&key, prefix, plen, name);
    sf_buf_reset(buf);
    if (!batch || !batch->cache || (rv = sf__vcache_get(batch->cache, key.p, key.len, buf)) < 0) {
        rv = b->vt->get(b, key.p, key.len, buf);
        if (batch && batch->cache && rv >= 0)
            sf__vcache_put(batch->cache, key.p, key.len, rv == 1 ? buf->base : NULL, buf->len);
    }
    if (rv != 1)
        goto out;
    if (sf__dec_value(buf->base, buf->len, out) != 0) {
        if (sf__parse_state_key(key.p, key.len, &k) == 0)
            sf_log_error("state: corrupt value of %.*s/%.*s/%.*s state %s", (int)k.addr.ns_len,
                         k.addr.ns, (int)k.addr.type_len, k.addr.type, (int)k.addr.id_len,
                         k.addr.id, name);
        rv = SF_ESTATE;
        goto out;
    }
    if (out->ttl_mode != SF_STATE_TTL_NONE && out->expire_at_ms <= now_ms) {
        /* Expired: never returned, and its space is reclaimed now. */
        rv = write_through(b, batch, &key, NULL, 0);
        goto out;
    }
    if ((flags & SF_STATE_GET_TOUCH) && out->ttl_mode == SF_STATE_TTL_AFTER_INVOKE &&
        now_ms + out->ttl_ms > out->expire_at_ms) {
        out->expire_at_ms = now_ms + out->ttl_ms;
        sf__value_set_expire(buf->base, buf->len, out->expire_at_ms);
        rv = write_through(b, batch, &key, buf->base, buf->len);
        if (rv == 0)
            rv = 1;
    }
out:
    sf__sbuf_dispose(&key);
    return rv;
}

int sf_state_get(sf_state_backend_t *b, sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *addr,
                 const char *name, int64_t now_ms, int flags, sf_buf_t *buf, sf_state_value_t *out)
{
    sf__sbuf_t p;
    int rv = prefix_of(b, &p, kg, addr);
    if (rv == 0)
        rv = sf_state_get_at(b, batch, p.p, p.len, name, now_ms, flags, buf, out);
    sf__sbuf_dispose(&p);
    return rv;
}

typedef struct {
    int64_t now;
    sf_state_entry_cb cb;
    void *user_data;
    int corrupt;
    struct sf__vcache_s *cache; /* entries it holds are passed over in the store */
    int stop;                   /* the callback's nonzero value */
} scan_ctx_t;

static int scan_state_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                         void *ud)
{
    scan_ctx_t *c = ud;
    sf__state_key_t k;
    sf_state_entry_t e;
    if (c->cache && sf__vcache_holds(c->cache, key, klen))
        return 0;
    if (sf__parse_state_key(key, klen, &k) != 0 || sf__dec_value(val, vlen, &e.value) != 0) {
        sf_log_error("state: corrupt state entry skipped");
        c->corrupt = 1;
        return 0;
    }
    if (e.value.ttl_mode != SF_STATE_TTL_NONE && e.value.expire_at_ms <= c->now)
        return 0;
    e.key_group = k.kg;
    e.addr = k.addr;
    e.name = k.name;
    e.name_len = k.name_len;
    return c->cb(&e, c->user_data);
}

static int scan_states(sf_state_backend_t *b, sf__sbuf_t *lo, sf__sbuf_t *hi, scan_ctx_t *c)
{
    int rv = b->vt->scan(b, lo->p, lo->len, hi->p, hi->len, 0, scan_state_kv, c);
    if (rv == 0 && c->corrupt)
        rv = SF_ESTATE;
    return rv;
}

/* A cached entry of the scanned address, after the store's (each_prefix callback). */
static void scan_cached_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                           void *ud)
{
    scan_ctx_t *c = ud;
    if (c->stop || !val)
        return;
    c->stop = scan_state_kv(key, klen, val, vlen, c);
}

int sf_state_scan_address(sf_state_backend_t *b, sf_state_batch_t *batch, uint16_t kg,
                          const sf_addr_t *addr, int64_t now_ms, sf_state_entry_cb cb,
                          void *user_data)
{
    sf__sbuf_t lo, hi;
    scan_ctx_t c = {now_ms, cb, user_data, 0, batch ? batch->cache : NULL, 0};
    int rv;
    if (check_kg(b, kg) != 0)
        return SF_EINVAL;
    sf__sbuf_init(&lo);
    sf__sbuf_init(&hi);
    sf__key_addr_prefix(&lo, kg, addr);
    sf__sbuf_put(&hi, lo.p, lo.len);
    sf__key_prefix_end(&hi);
    rv = scan_states(b, &lo, &hi, &c);
    if (rv == 0 && c.cache) {
        struct sf__vcache_s *cache = c.cache;
        c.cache = NULL;
        sf__vcache_each_prefix(cache, lo.p, lo.len, scan_cached_kv, &c);
        rv = c.stop ? c.stop : c.corrupt ? SF_ESTATE : 0;
    }
    sf__sbuf_dispose(&lo);
    sf__sbuf_dispose(&hi);
    return rv;
}

/* Scans the |kind| records of each key group in [kg_lo, kg_hi), one range per key group
 * (a key group's kinds are interleaved, so the whole range is not one key range), stopping
 * at the first nonzero result, or with SF_ESTATE after a key group that set |*corrupt|
 * (NULL: no such check). */
static int scan_kind_range(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, uint8_t kind,
                           sf__kv_cb kv, void *ctx, const int *corrupt)
{
    sf__sbuf_t lo, hi;
    uint32_t kg;
    int rv = 0;
    if (check_range(b, kg_lo, kg_hi) != 0)
        return SF_EINVAL;
    sf__sbuf_init(&lo);
    sf__sbuf_init(&hi);
    for (kg = kg_lo; kg < kg_hi && rv == 0; kg++) {
        lo.len = hi.len = 0;
        sf__key_kind(&lo, (uint16_t)kg, kind);
        sf__key_kind(&hi, (uint16_t)kg, (uint8_t)(kind + 1));
        rv = b->vt->scan(b, lo.p, lo.len, hi.p, hi.len, 0, kv, ctx);
        if (rv == 0 && corrupt != NULL && *corrupt)
            rv = SF_ESTATE;
    }
    sf__sbuf_dispose(&lo);
    sf__sbuf_dispose(&hi);
    return rv;
}

int sf_state_scan_range(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now_ms,
                        sf_state_entry_cb cb, void *user_data)
{
    scan_ctx_t c = {now_ms, cb, user_data, 0, NULL, 0};
    return scan_kind_range(b, kg_lo, kg_hi, SF__KIND_STATE, scan_state_kv, &c, &c.corrupt);
}

bool sf__expired_entry(sf_state_backend_t *b, const uint8_t *key, size_t klen, const uint8_t *v,
                       size_t vlen)
{
    int64_t clock = atomic_load_explicit(&b->clock, memory_order_relaxed);
    if (clock <= 0 || klen < 3 || key[0] == SF__PREFIX_GLOBAL || key[2] != SF__KIND_STATE)
        return false;
    return sf__value_expired(v, vlen, clock);
}

ssize_t sf_state_reclaim(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now_ms,
                         size_t budget)
{
    int64_t cur = atomic_load(&b->clock);
    if (check_range(b, kg_lo, kg_hi) != 0)
        return SF_EINVAL;
    while (now_ms > cur && !atomic_compare_exchange_weak(&b->clock, &cur, now_ms))
        ;
    return b->vt->reclaim(b, kg_lo, kg_hi, now_ms, budget);
}

int sf_state_compact(sf_state_backend_t *b) { return b->vt->compact(b); }

int sf_state_flush(sf_state_backend_t *b) { return b->vt->flush ? b->vt->flush(b) : 0; }

/* ------------------------------------------------------------------------ */
/* Timers                                                                     */

/* Hands out a timer sequence number, recording a new block when needed. */
static int next_seq(sf_state_backend_t *b, uint64_t *out)
{
    uint64_t s = atomic_fetch_add(&b->seq_next, 1);
    int rv = 0;
    if (s >= atomic_load(&b->seq_reserved)) {
        pthread_mutex_lock(&b->seq_lock);
        if (s >= atomic_load(&b->seq_reserved)) {
            uint64_t upto = s + SEQ_BLOCK;
            rv = meta_put_u64(b, META_SEQ, upto);
            if (rv == 0)
                atomic_store(&b->seq_reserved, upto);
        }
        pthread_mutex_unlock(&b->seq_lock);
    }
    *out = s;
    return rv;
}

/*
 * Looks |tkey| up among the tokens this batch touched. Returns 1 (pending in
 * this batch; |timer_key| gets its 19-byte timer key), 0 (cancelled in this
 * batch) or -1 (not touched).
 */
static int token_overlay_find(const sf_state_batch_t *batch, const sf__sbuf_t *tkey,
                              uint8_t *timer_key)
{
    const uint8_t *p = batch->tokens.p, *end = p + batch->tokens.len;
    int found = -1;
    while (p < end) {
        uint8_t st = p[0];
        uint32_t klen;
        memcpy(&klen, p + 1, 4);
        if (klen == tkey->len && memcmp(p + 5, tkey->p, klen) == 0) {
            found = st;
            if (st)
                memcpy(timer_key, p + 5 + klen, 19);
        }
        p += 5 + klen + (st ? 19 : 0);
    }
    return found;
}

static void token_overlay_add(sf_state_batch_t *batch, const sf__sbuf_t *tkey,
                              const uint8_t *timer_key)
{
    uint32_t klen = (uint32_t)tkey->len;
    sf__sbuf_byte(&batch->tokens, timer_key ? 1 : 0);
    sf__sbuf_put(&batch->tokens, &klen, 4);
    sf__sbuf_put(&batch->tokens, tkey->p, tkey->len);
    if (timer_key)
        sf__sbuf_put(&batch->tokens, timer_key, 19);
}

/*
 * Finds the pending timer named by the token key in batch->key2, first in
 * the batch, then in the store. Returns 1 (|timer_key| set), 0 or SF_ESTATE.
 */
static int token_lookup(sf_state_batch_t *batch, uint16_t kg, uint8_t *timer_key)
{
    sf_state_backend_t *b = batch->backend;
    sf__sbuf_t tk;
    int rv = token_overlay_find(batch, &batch->key2, timer_key);
    if (rv >= 0)
        return rv;
    sf_buf_reset(&batch->tmp);
    rv = b->vt->get(b, batch->key2.p, batch->key2.len, &batch->tmp);
    if (rv != 1)
        return rv;
    if (batch->tmp.len != 16) {
        sf_log_error("state: corrupt timer token record in key group %u", kg);
        return SF_ESTATE;
    }
    sf__sbuf_init(&tk);
    sf__key_timer(&tk, kg, (int64_t)sf__get_be64(batch->tmp.base),
                  sf__get_be64(batch->tmp.base + 8));
    memcpy(timer_key, tk.p, 19);
    sf__sbuf_dispose(&tk);
    return 1;
}

int sf_state_batch_timer_schedule(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *sender,
                                  const char *token, int64_t fire_at_ms, const uint8_t *msg,
                                  size_t len)
{
    sf_state_backend_t *b = batch->backend;
    size_t tlen = token ? strlen(token) : 0;
    uint8_t timer_key[19], tval[16];
    uint64_t seq;
    int rv;
    if (check_kg(b, kg) != 0 || fire_at_ms < 0 || fire_at_ms == INT64_MAX)
        return SF_EINVAL;
    if (tlen == 0)
        token = NULL;
    if (token) {
        batch->key2.len = 0;
        sf__key_token(&batch->key2, kg, sender, token, tlen);
        rv = token_lookup(batch, kg, timer_key);
        if (rv != 0)
            return rv == 1 ? SF_EEXIST : rv;
    }
    if ((rv = next_seq(b, &seq)) != 0)
        return rv;
    batch->key.len = 0;
    batch->val.len = 0;
    sf__key_timer(&batch->key, kg, fire_at_ms, seq);
    sf__enc_timer(&batch->val, sender, token, tlen, msg, len);
    batch_op(batch, &batch->key, batch->val.p, batch->val.len);
    if (token) {
        sf__put_be64(tval, (uint64_t)fire_at_ms);
        sf__put_be64(tval + 8, seq);
        batch_op(batch, &batch->key2, tval, sizeof tval);
        token_overlay_add(batch, &batch->key2, batch->key.p);
    }
    sf__sbuf_be16(&batch->scheduled, kg);
    sf__sbuf_be64(&batch->scheduled, (uint64_t)fire_at_ms);
    return 0;
}

int sf_state_batch_timer_cancel(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *sender,
                                const char *token)
{
    uint8_t timer_key[19];
    int rv;
    if (check_kg(batch->backend, kg) != 0)
        return SF_EINVAL;
    if (!token || !*token)
        return 0;
    batch->key2.len = 0;
    sf__key_token(&batch->key2, kg, sender, token, strlen(token));
    rv = token_lookup(batch, kg, timer_key);
    if (rv != 1)
        return rv;
    store_op(batch, timer_key, sizeof timer_key, NULL, 0);
    batch->count++;
    batch_op(batch, &batch->key2, NULL, 0);
    token_overlay_add(batch, &batch->key2, NULL);
    return 1;
}

static int first_timer_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                          void *ud)
{
    uint16_t kg;
    uint64_t seq;
    (void)val;
    (void)vlen;
    if (sf__parse_timer_key(key, klen, &kg, (int64_t *)ud, &seq) != 0)
        return SF_ESTATE;
    return 1;
}

/* The first pending fire time of |kg| (exact when recomputed), or NONE. */
static int tmin_get(sf_state_backend_t *b, uint16_t kg, int64_t *out)
{
    int64_t v = atomic_load(&b->timer_min[kg]), first = SF__TMIN_NONE;
    sf__sbuf_t lo, hi;
    int rv;
    if (v != SF__TMIN_UNKNOWN) {
        *out = v;
        return 0;
    }
    sf__sbuf_init(&lo);
    sf__sbuf_init(&hi);
    sf__key_timer(&lo, kg, atomic_load(&b->timer_floor[kg]), 0);
    sf__key_kind(&hi, kg, SF__KIND_TIMER + 1);
    rv = b->vt->scan(b, lo.p, lo.len, hi.p, hi.len, 1, first_timer_kv, &first);
    sf__sbuf_dispose(&lo);
    sf__sbuf_dispose(&hi);
    if (rv < 0)
        return SF_ESTATE;
    atomic_store(&b->timer_min[kg], first);
    *out = first;
    return 0;
}

int sf_state_timers_next(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi,
                         int64_t *fire_at_ms)
{
    int64_t best = SF__TMIN_NONE, v;
    uint32_t kg;
    int rv;
    if (check_range(b, kg_lo, kg_hi) != 0)
        return SF_EINVAL;
    for (kg = kg_lo; kg < kg_hi; kg++) {
        if ((rv = tmin_get(b, (uint16_t)kg, &v)) != 0)
            return rv;
        if (v < best)
            best = v;
    }
    if (best == SF__TMIN_NONE)
        return 0;
    *fire_at_ms = best;
    return 1;
}

/* A due timer collected by a pop: where its key and value are in |data|. */
typedef struct {
    int64_t fire_at;
    uint64_t seq;
    uint16_t kg;
    uint32_t group;   /* index of its key group in pop_ctx_t.groups */
    size_t off;
    size_t klen;
    size_t vlen;
} due_t;

/* A key group a pop looked at. */
typedef struct {
    uint16_t kg;
    size_t collected;
    size_t popped;
    int64_t last_popped;
} pop_group_t;

typedef struct {
    sf_buf_t data;
    sf_buf_t due;     /* due_t[] */
    sf_buf_t groups;  /* pop_group_t[] */
} pop_ctx_t;

static int collect_due_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                          void *ud)
{
    pop_ctx_t *c = ud;
    pop_group_t *g = (pop_group_t *)(c->groups.base + c->groups.len) - 1;
    due_t d;
    if (sf__parse_timer_key(key, klen, &d.kg, &d.fire_at, &d.seq) != 0) {
        sf_log_error("state: corrupt timer key");
        return SF_ESTATE;
    }
    d.group = (uint32_t)(c->groups.len / sizeof *g - 1);
    d.off = c->data.len;
    d.klen = klen;
    d.vlen = vlen;
    sf__buf_put(&c->data, key, klen);
    sf__buf_put(&c->data, val, vlen);
    sf__buf_put(&c->due, &d, sizeof d);
    g->collected++;
    return 0;
}

static int due_cmp(const void *x, const void *y)
{
    const due_t *a = x, *b = y;
    if (a->fire_at != b->fire_at)
        return a->fire_at < b->fire_at ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return (int)a->kg - (int)b->kg;
}

ssize_t sf_state_timers_pop(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi,
                            int64_t now_ms, size_t max, sf_state_timer_cb cb, void *user_data)
{
    pop_ctx_t c;
    sf__sbuf_t lo, hi;
    sf_state_batch_t batch;
    sf_state_timer_t t;
    pop_group_t *groups;
    due_t *due = NULL;
    size_t n = 0, ngroups, i;
    int64_t first;
    uint32_t kg;
    ssize_t rv = 0;

    if (check_range(b, kg_lo, kg_hi) != 0)
        return SF_EINVAL;
    if (max == 0 || now_ms < 0)
        return 0;
    if (now_ms > INT64_MAX - 2)
        now_ms = INT64_MAX - 2; /* no timer fires that late */
    sf_buf_init(&c.data, NULL);
    sf_buf_init(&c.due, NULL);
    sf_buf_init(&c.groups, NULL);
    sf__sbuf_init(&lo);
    sf__sbuf_init(&hi);
    batch_setup(&batch, b);

    /* Collect up to |max| due timers from every key group with one due. */
    for (kg = kg_lo; kg < kg_hi; kg++) {
        pop_group_t g = {(uint16_t)kg, 0, 0, 0};
        if ((rv = tmin_get(b, (uint16_t)kg, &first)) != 0)
            goto out;
        if (first > now_ms)
            continue;
        sf__buf_put(&c.groups, &g, sizeof g);
        lo.len = hi.len = 0;
        sf__key_timer(&lo, (uint16_t)kg, atomic_load(&b->timer_floor[kg]), 0);
        sf__key_timer(&hi, (uint16_t)kg, now_ms + 1, 0);
        if ((rv = b->vt->scan(b, lo.p, lo.len, hi.p, hi.len, max, collect_due_kv, &c)) != 0) {
            rv = SF_ESTATE;
            goto out;
        }
    }
    groups = (pop_group_t *)c.groups.base;
    ngroups = c.groups.len / sizeof *groups;
    due = (due_t *)c.due.base;
    n = c.due.len / sizeof *due;
    if (n > 0) {
        /* The first |max| in fire order across the key groups go. */
        qsort(due, n, sizeof *due, due_cmp);
        if (n > max)
            n = max;
        for (i = 0; i < n; i++) {
            const uint8_t *k = c.data.base + due[i].off;
            if (sf__dec_timer(k, due[i].klen, k + due[i].klen, due[i].vlen, &t) != 0) {
                sf_log_error("state: corrupt timer in key group %u dropped", due[i].kg);
            } else if (t.token) {
                batch.key2.len = 0;
                sf__key_token(&batch.key2, t.key_group, &t.sender, t.token, t.token_len);
                b->vt->batch_op(&batch, batch.key2.p, batch.key2.len, NULL, 0);
            }
            b->vt->batch_op(&batch, k, due[i].klen, NULL, 0);
            groups[due[i].group].popped++;
            groups[due[i].group].last_popped = due[i].fire_at;
        }
        if ((rv = b->vt->batch_write(&batch)) != 0)
            goto out;
    }
    for (i = 0; i < ngroups; i++) {
        pop_group_t *g = &groups[i];
        int64_t floor = atomic_load(&b->timer_floor[g->kg]);
        /* Drained up to now, or up to the last timer removed. */
        if (g->popped == g->collected && g->collected < max)
            floor = now_ms + 1 > floor ? now_ms + 1 : floor;
        else if (g->popped > 0 && g->last_popped > floor)
            floor = g->last_popped;
        atomic_store(&b->timer_floor[g->kg], floor);
        atomic_store(&b->timer_min[g->kg], SF__TMIN_UNKNOWN);
    }
    for (i = 0; i < n; i++) {
        const uint8_t *k = c.data.base + due[i].off;
        if (sf__dec_timer(k, due[i].klen, k + due[i].klen, due[i].vlen, &t) == 0)
            cb(&t, user_data);
    }
    rv = (ssize_t)n;
out:
    batch_teardown(&batch);
    sf__sbuf_dispose(&lo);
    sf__sbuf_dispose(&hi);
    sf_buf_dispose(&c.data);
    sf_buf_dispose(&c.due);
    sf_buf_dispose(&c.groups);
    return rv;
}

typedef struct {
    sf_state_timer_cb cb;
    void *user_data;
} tscan_ctx_t;

static int scan_timer_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                         void *ud)
{
    tscan_ctx_t *c = ud;
    sf_state_timer_t t;
    if (sf__dec_timer(key, klen, val, vlen, &t) != 0) {
        sf_log_error("state: corrupt timer skipped");
        return 0;
    }
    return c->cb(&t, c->user_data);
}

int sf_state_timers_scan(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi,
                         sf_state_timer_cb cb, void *user_data)
{
    tscan_ctx_t c = {cb, user_data};
    return scan_kind_range(b, kg_lo, kg_hi, SF__KIND_TIMER, scan_timer_kv, &c, NULL);
}

/* ------------------------------------------------------------------------ */
/* Log records                                                                */

int sf_state_batch_log_put(sf_state_batch_t *batch, uint8_t column, const void *key, size_t klen,
                           const void *val, size_t vlen)
{
    if (klen == 0)
        return SF_EINVAL;
    batch->key.len = 0;
    sf__key_log(&batch->key, column, key, klen);
    /* A non-NULL pointer marks a put even for an empty value. */
    batch_op(batch, &batch->key, vlen ? val : (const uint8_t *)"", vlen);
    return 0;
}

int sf_state_batch_log_delete(sf_state_batch_t *batch, uint8_t column, const void *key,
                              size_t klen)
{
    if (klen == 0)
        return SF_EINVAL;
    batch->key.len = 0;
    sf__key_log(&batch->key, column, key, klen);
    batch_op(batch, &batch->key, NULL, 0);
    return 0;
}

int sf_state_log_get(sf_state_backend_t *b, uint8_t column, const void *key, size_t klen,
                     sf_buf_t *buf)
{
    sf__sbuf_t k;
    int rv;
    if (klen == 0)
        return SF_EINVAL;
    sf__sbuf_init(&k);
    sf__key_log(&k, column, key, klen);
    sf_buf_reset(buf);
    rv = b->vt->get(b, k.p, k.len, buf);
    sf__sbuf_dispose(&k);
    return rv;
}

typedef struct {
    sf_state_log_cb cb;
    void *user_data;
} lscan_ctx_t;

static int scan_log_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *ud)
{
    lscan_ctx_t *c = ud;
    return c->cb(key + 3, klen - 3, val, vlen, c->user_data);
}

int sf_state_log_scan(sf_state_backend_t *b, uint8_t column, const void *from, size_t from_len,
                      size_t limit, sf_state_log_cb cb, void *user_data)
{
    lscan_ctx_t c = {cb, user_data};
    sf__sbuf_t lo, hi;
    int rv;
    sf__sbuf_init(&lo);
    sf__sbuf_init(&hi);
    sf__key_log(&lo, column, NULL, 0);
    sf__sbuf_put(&hi, lo.p, lo.len);
    sf__key_prefix_end(&hi);
    if (from)
        sf__sbuf_put(&lo, from, from_len);
    rv = b->vt->scan(b, lo.p, lo.len, hi.p, hi.len, limit, scan_log_kv, &c);
    sf__sbuf_dispose(&lo);
    sf__sbuf_dispose(&hi);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                                */

bool sf_state_checkpoint_concurrent(const sf_state_backend_t *b)
{
    return b->vt->checkpoint_concurrent;
}

int sf_state_checkpoint(sf_state_backend_t *b, const char *dir)
{
    struct stat st;
    if (!dir || !*dir)
        return SF_EINVAL;
    if (stat(dir, &st) == 0)
        return SF_EEXIST;
    return b->vt->checkpoint(b, dir);
}
