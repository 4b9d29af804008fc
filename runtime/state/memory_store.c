/* statefun-c: Apache License 2.0.
 *
 * The memory store: the keys and values of codec.h kept in process memory,
 * durable only through checkpoint snapshots.
 *
 * Per key group: a lock, a hash table of addresses (open addressing, linear
 * probing, backward-shift deletion) whose entries hold the address's states
 * as a short list, and a skip list for the ordered kinds (timers, tokens).
 * States are what the hot path reads and writes, so they get O(1) lookups;
 * all states of an address are one lookup away. Meta and log records share
 * one skip list under one lock, outside the key groups.
 *
 * Locks: a key group's lock covers its table, list and sweep cursor. Workers
 * touch only their own key groups, so the locks are uncontended; they exist
 * so that admin reads and checkpoints from other threads are safe. At most
 * one lock is held at a time. Scans copy what they find under the lock and
 * call back after releasing it, so callbacks may call into the backend.
 *
 * Snapshot file ("memory.snapshot" in the checkpoint directory):
 *   "SFSTMEM1"  then records  lp-int(klen) key lp-int(vlen) value
 *   then a 0 byte (no key is empty), the record count (8 bytes BE) and the
 *   XXH3-64 of every byte before it (8 bytes BE).
 *
 * Threading: "any thread" under the key group contract of backend.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs.h"
#include "log.h"
#include "skiplist.h"
#include "state_int.h"
#include "xalloc.h"

#define SNAPSHOT_NAME "memory.snapshot"
#define SNAPSHOT_MAGIC "SFSTMEM1"

/* One state of an address: its name, then its encoded value. */
typedef struct mem_val_s {
    struct mem_val_s *next;
    uint32_t name_len;
    uint32_t vlen;
    uint8_t bytes[];
} mem_val_t;

/* An address with states: lp(ns) lp(type) lp(id) as its key. */
typedef struct mem_addr_s {
    uint64_t hash;
    mem_val_t *vals;
    uint32_t klen;
    uint8_t key[];
} mem_addr_t;

typedef struct mem_kg_s {
    pthread_mutex_t lock;
    mem_addr_t **slots;   /* NULL until the first state */
    size_t cap;           /* power of two */
    size_t count;
    size_t sweep;         /* next slot to examine for expired values */
    sf__skiplist_t ordered;
} mem_kg_t;

typedef struct mem_s {
    uint32_t nkg;
    mem_kg_t *kgs;
    pthread_mutex_t global_lock;
    sf__skiplist_t global;   /* meta and log records */
    _Atomic uint32_t sweep_rotor;
} mem_t;

/* ------------------------------------------------------------------------ */
/* The address table of one key group                                        */

static ssize_t table_find(const mem_kg_t *g, const uint8_t *key, size_t klen, uint64_t hash)
{
    size_t mask, i;
    if (!g->slots)
        return -1;
    mask = g->cap - 1;
    for (i = hash & mask; g->slots[i]; i = (i + 1) & mask) {
        const mem_addr_t *a = g->slots[i];
        if (a->hash == hash && a->klen == klen && memcmp(a->key, key, klen) == 0)
            return (ssize_t)i;
    }
    return -1;
}

static void table_place(mem_addr_t **slots, size_t cap, mem_addr_t *a)
{
    size_t mask = cap - 1, i;
    for (i = a->hash & mask; slots[i]; i = (i + 1) & mask)
        ;
    slots[i] = a;
}

static void table_grow(mem_kg_t *g)
{
    size_t cap = g->cap ? g->cap * 2 : 16, i;
    mem_addr_t **slots = sf_xcalloc(cap, sizeof *slots);
    for (i = 0; i < g->cap; i++)
        if (g->slots[i])
            table_place(slots, cap, g->slots[i]);
    free(g->slots);
    g->slots = slots;
    g->cap = cap;
}

static mem_addr_t *table_insert(mem_kg_t *g, const uint8_t *key, size_t klen, uint64_t hash)
{
    mem_addr_t *a;
    if ((g->count + 1) * 4 > g->cap * 3)
        table_grow(g);
    a = sf_xmalloc(sizeof *a + klen);
    a->hash = hash;
    a->vals = NULL;
    a->klen = (uint32_t)klen;
    memcpy(a->key, key, klen);
    table_place(g->slots, g->cap, a);
    g->count++;
    return a;
}

/* Removes slot |i| and shifts the following cluster back (no tombstones). */
static void table_remove_at(mem_kg_t *g, size_t i)
{
    size_t mask = g->cap - 1, j = i;
    free(g->slots[i]);
    g->slots[i] = NULL;
    g->count--;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (!g->slots[j])
            break;
        home = g->slots[j]->hash & mask;
        /* Move the entry back unless its home lies cyclically in (i, j]. */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            g->slots[i] = g->slots[j];
            g->slots[j] = NULL;
            i = j;
        }
    }
}

static void free_vals(mem_val_t *v)
{
    while (v) {
        mem_val_t *next = v->next;
        free(v);
        v = next;
    }
}

static void kg_dispose(mem_kg_t *g)
{
    size_t i;
    for (i = 0; i < g->cap; i++) {
        if (g->slots[i]) {
            free_vals(g->slots[i]->vals);
            free(g->slots[i]);
        }
    }
    free(g->slots);
    g->slots = NULL;
    g->cap = g->count = 0;
    sf__sl_dispose(&g->ordered);
    pthread_mutex_destroy(&g->lock);
}

/* ------------------------------------------------------------------------ */
/* Point operations (the caller holds the lock)                              */

static mem_kg_t *kg_of(mem_t *m, const uint8_t *key, size_t klen)
{
    uint16_t kg;
    if (klen < 3 || key[0] == SF__PREFIX_GLOBAL)
        return NULL;
    kg = sf__get_be16(key);
    return kg < m->nkg ? &m->kgs[kg] : NULL;
}

static pthread_mutex_t *lock_of(mem_t *m, const uint8_t *key, size_t klen)
{
    mem_kg_t *g = kg_of(m, key, klen);
    return g ? &g->lock : &m->global_lock;
}

static mem_val_t *state_find(mem_kg_t *g, const sf__state_key_t *k, mem_addr_t **addr_out,
                             ssize_t *slot_out)
{
    uint64_t h = XXH3_64bits(k->addr_key, k->addr_key_len);
    ssize_t i = table_find(g, k->addr_key, k->addr_key_len, h);
    mem_val_t *v;
    *slot_out = i;
    *addr_out = i >= 0 ? g->slots[i] : NULL;
    if (i < 0)
        return NULL;
    for (v = g->slots[i]->vals; v; v = v->next)
        if (v->name_len == k->name_len && memcmp(v->bytes, k->name, k->name_len) == 0)
            return v;
    return NULL;
}

static int op_get(mem_t *m, const uint8_t *key, size_t klen, sf_buf_t *out)
{
    mem_kg_t *g = kg_of(m, key, klen);
    sf__skiplist_t *sl = g ? &g->ordered : &m->global;
    sf__sl_node_t *n;
    if (g && key[2] == SF__KIND_STATE) {
        sf__state_key_t k;
        mem_addr_t *a;
        ssize_t slot;
        mem_val_t *v;
        if (sf__parse_state_key(key, klen, &k) != 0)
            return SF_ESTATE;
        if (!(v = state_find(g, &k, &a, &slot)))
            return 0;
        sf__buf_put(out, v->bytes + v->name_len, v->vlen);
        return 1;
    }
    if (!(n = sf__sl_get(sl, key, klen)))
        return 0;
    sf__buf_put(out, sf__sl_val(n), n->vlen);
    return 1;
}

static mem_val_t *val_new(const char *name, size_t name_len, const uint8_t *val, size_t vlen)
{
    mem_val_t *v = sf_xmalloc(sizeof *v + name_len + vlen);
    v->next = NULL;
    v->name_len = (uint32_t)name_len;
    v->vlen = (uint32_t)vlen;
    memcpy(v->bytes, name, name_len);
    if (vlen)
        memcpy(v->bytes + name_len, val, vlen);
    return v;
}

static int state_put(mem_kg_t *g, const uint8_t *key, size_t klen, const uint8_t *val,
                     size_t vlen)
{
    sf__state_key_t k;
    mem_addr_t *a;
    mem_val_t *v, **pp;
    ssize_t slot;
    if (sf__parse_state_key(key, klen, &k) != 0)
        return SF_ESTATE;
    v = state_find(g, &k, &a, &slot);
    if (v && v->vlen == vlen) {
        memcpy(v->bytes + v->name_len, val, vlen);
        return 0;
    }
    if (!a)
        a = table_insert(g, k.addr_key, k.addr_key_len,
                         XXH3_64bits(k.addr_key, k.addr_key_len));
    for (pp = &a->vals; *pp && *pp != v; pp = &(*pp)->next)
        ;
    /* Replaces |v| in place in the list, or appends. */
    *pp = val_new(k.name, k.name_len, val, vlen);
    if (v) {
        (*pp)->next = v->next;
        free(v);
    }
    return 0;
}

static int state_del(mem_kg_t *g, const uint8_t *key, size_t klen)
{
    sf__state_key_t k;
    mem_addr_t *a;
    mem_val_t *v, **pp;
    ssize_t slot;
    if (sf__parse_state_key(key, klen, &k) != 0)
        return SF_ESTATE;
    if (!(v = state_find(g, &k, &a, &slot)))
        return 0;
    for (pp = &a->vals; *pp != v; pp = &(*pp)->next)
        ;
    *pp = v->next;
    free(v);
    if (!a->vals)
        table_remove_at(g, (size_t)slot);
    return 0;
}

/* Applies one put (|val| non-NULL) or delete; the caller holds the lock. */
static int op_apply(mem_t *m, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    mem_kg_t *g = kg_of(m, key, klen);
    if (klen == 0 || (key[0] != SF__PREFIX_GLOBAL && !g))
        return SF_ESTATE;
    if (g && key[2] == SF__KIND_STATE)
        return val ? state_put(g, key, klen, val, vlen) : state_del(g, key, klen);
    if (val)
        sf__sl_put(g ? &g->ordered : &m->global, key, klen, val, vlen);
    else
        sf__sl_del(g ? &g->ordered : &m->global, key, klen);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Store operations                                                           */

static int mem_get(sf_state_backend_t *b, const uint8_t *key, size_t klen, sf_buf_t *out)
{
    mem_t *m = b->store;
    pthread_mutex_t *l = lock_of(m, key, klen);
    int rv;
    pthread_mutex_lock(l);
    rv = op_get(m, key, klen, out);
    pthread_mutex_unlock(l);
    return rv;
}

/* Scan results, copied under the lock: [klen:4][vlen:4] key value ... */
typedef struct {
    sf_buf_t buf;
    size_t n;
    size_t limit;
    const uint8_t *lo, *hi;
    size_t lolen, hilen;
} collect_t;

static bool in_range(const collect_t *c, const uint8_t *key, size_t klen)
{
    return sf__bytes_cmp(key, klen, c->lo, c->lolen) >= 0 &&
           sf__bytes_cmp(key, klen, c->hi, c->hilen) < 0;
}

static bool collect(collect_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen)
{
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    sf__buf_put(&c->buf, &kl, 4);
    sf__buf_put(&c->buf, &vl, 4);
    sf__buf_put(&c->buf, key, klen);
    sf__buf_put(&c->buf, val, vlen);
    c->n++;
    return c->limit && c->n >= c->limit;
}

/* Collects the states of |a| in range; returns true at the limit. */
static bool collect_addr(collect_t *c, uint16_t kg, const mem_addr_t *a, sf__sbuf_t *key)
{
    const mem_val_t *v;
    for (v = a->vals; v; v = v->next) {
        key->len = 0;
        sf__key_kind(key, kg, SF__KIND_STATE);
        sf__sbuf_put(key, a->key, a->klen);
        sf__sbuf_lp(key, v->bytes, v->name_len);
        if (in_range(c, key->p, key->len) &&
            collect(c, key->p, key->len, v->bytes + v->name_len, v->vlen))
            return true;
    }
    return false;
}

static void collect_states(mem_kg_t *g, uint16_t kg, collect_t *c)
{
    sf__sbuf_t key;
    sf_addr_t addr;
    ssize_t used;
    size_t i;
    sf__sbuf_init(&key);
    /* A bound that is exactly an address prefix is one lookup. */
    used = c->lolen > 3 ? sf__parse_addr(c->lo + 3, c->lolen - 3, &addr) : -1;
    if (used >= 0 && (size_t)used == c->lolen - 3) {
        ssize_t slot = table_find(g, c->lo + 3, (size_t)used, XXH3_64bits(c->lo + 3, (size_t)used));
        if (slot >= 0)
            collect_addr(c, kg, g->slots[slot], &key);
    } else {
        for (i = 0; i < g->cap; i++)
            if (g->slots[i] && collect_addr(c, kg, g->slots[i], &key))
                break;
    }
    sf__sbuf_dispose(&key);
}

static void collect_list(const sf__skiplist_t *sl, collect_t *c)
{
    sf__sl_node_t *n;
    for (n = sf__sl_find_ge(sl, c->lo, c->lolen); n; n = sf__sl_next(n)) {
        if (sf__bytes_cmp(sf__sl_key(n), n->klen, c->hi, c->hilen) >= 0)
            break;
        if (collect(c, sf__sl_key(n), n->klen, sf__sl_val(n), n->vlen))
            break;
    }
}

static int mem_scan(sf_state_backend_t *b, const uint8_t *lo, size_t lolen, const uint8_t *hi,
                    size_t hilen, size_t limit, sf__kv_cb cb, void *user_data)
{
    mem_t *m = b->store;
    collect_t c = {.n = 0, .limit = limit, .lo = lo, .lolen = lolen, .hi = hi, .hilen = hilen};
    mem_kg_t *g = kg_of(m, lo, lolen);
    const uint8_t *p, *end;
    int rv = 0;
    if (!g && (lolen == 0 || lo[0] != SF__PREFIX_GLOBAL))
        return SF_ESTATE;
    sf_buf_init(&c.buf, NULL);
    if (g) {
        pthread_mutex_lock(&g->lock);
        if (lo[2] == SF__KIND_STATE)
            collect_states(g, sf__get_be16(lo), &c);
        else
            collect_list(&g->ordered, &c);
        pthread_mutex_unlock(&g->lock);
    } else {
        pthread_mutex_lock(&m->global_lock);
        collect_list(&m->global, &c);
        pthread_mutex_unlock(&m->global_lock);
    }
    for (p = c.buf.base, end = p + c.buf.len; p && p < end && rv == 0;) {
        uint32_t kl, vl;
        memcpy(&kl, p, 4);
        memcpy(&vl, p + 4, 4);
        rv = cb(p + 8, kl, p + 8 + kl, vl, user_data);
        p += 8 + kl + vl;
    }
    sf_buf_dispose(&c.buf);
    return rv;
}

/* A batch is a log of operations: [op:1][klen:4][vlen:4] key value ... */
static void mem_batch_init(sf_state_batch_t *batch)
{
    sf_buf_t *log = sf_xmalloc(sizeof *log);
    sf_buf_init(log, NULL);
    batch->impl = log;
}

static void mem_batch_dispose(sf_state_batch_t *batch)
{
    sf_buf_dispose(batch->impl);
    free(batch->impl);
    batch->impl = NULL;
}

static void mem_batch_clear(sf_state_batch_t *batch) { sf_buf_reset(batch->impl); }

static void mem_batch_op(sf_state_batch_t *batch, const uint8_t *key, size_t klen,
                         const uint8_t *val, size_t vlen)
{
    sf_buf_t *log = batch->impl;
    uint8_t op = val ? 1 : 0;
    uint32_t kl = (uint32_t)klen, vl = val ? (uint32_t)vlen : 0;
    sf__buf_put(log, &op, 1);
    sf__buf_put(log, &kl, 4);
    sf__buf_put(log, &vl, 4);
    sf__buf_put(log, key, klen);
    if (vl)
        sf__buf_put(log, val, vl);
}

static void mem_batch_savepoint(sf_state_batch_t *batch)
{
    batch->sp.impl = ((sf_buf_t *)batch->impl)->len;
}

static void mem_batch_rollback(sf_state_batch_t *batch)
{
    ((sf_buf_t *)batch->impl)->len = batch->sp.impl;
}

static void mem_batch_release(sf_state_batch_t *batch) { (void)batch; }

static int mem_batch_write(sf_state_batch_t *batch)
{
    mem_t *m = batch->backend->store;
    sf_buf_t *log = batch->impl;
    const uint8_t *p = log->base, *end = p + log->len;
    pthread_mutex_t *held = NULL;
    int rv = 0;
    /* One lock at a time, taken again only when the key group changes. */
    while (p && p < end) {
        uint32_t kl, vl;
        const uint8_t *key, *val;
        pthread_mutex_t *l;
        memcpy(&kl, p + 1, 4);
        memcpy(&vl, p + 5, 4);
        key = p + 9;
        val = p[0] ? key + kl : NULL;
        l = lock_of(m, key, kl);
        if (l != held) {
            if (held)
                pthread_mutex_unlock(held);
            pthread_mutex_lock(l);
            held = l;
        }
        if (op_apply(m, key, kl, val, vl) != 0)
            rv = SF_ESTATE;
        p = key + kl + vl;
    }
    if (held)
        pthread_mutex_unlock(held);
    if (rv != 0)
        sf_log_error("state: memory batch held a malformed key");
    return rv;
}

/* Frees expired values of one key group from its cursor on; returns the
 * addresses examined. Sets |*done| when the cursor went round. */
static size_t sweep_kg(mem_kg_t *g, int64_t now, size_t budget, bool *done)
{
    size_t examined = 0;
    *done = false;
    while (examined < budget) {
        mem_addr_t *a;
        mem_val_t **pp;
        if (g->sweep >= g->cap) {
            g->sweep = 0;
            *done = true;
            break;
        }
        a = g->slots[g->sweep];
        if (!a) {
            g->sweep++;
            continue;
        }
        examined++;
        for (pp = &a->vals; *pp;) {
            mem_val_t *v = *pp;
            if (sf__value_expired(v->bytes + v->name_len, v->vlen, now)) {
                *pp = v->next;
                free(v);
            } else {
                pp = &v->next;
            }
        }
        if (a->vals)
            g->sweep++;
        else
            table_remove_at(g, g->sweep); /* the slot may now hold a shifted entry */
    }
    return examined;
}

static ssize_t mem_reclaim(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now,
                           size_t budget)
{
    mem_t *m = b->store;
    uint32_t n = kg_hi - kg_lo, i, start;
    size_t examined = 0;
    if (n == 0)
        return 0;
    /* Start at a rotating key group so a small budget reaches them all. */
    start = atomic_fetch_add(&m->sweep_rotor, 1) % n;
    for (i = 0; i < n && examined < budget; i++) {
        mem_kg_t *g = &m->kgs[kg_lo + (start + i) % n];
        bool done;
        pthread_mutex_lock(&g->lock);
        examined += sweep_kg(g, now, budget - examined, &done);
        pthread_mutex_unlock(&g->lock);
    }
    return (ssize_t)examined;
}

static int mem_compact(sf_state_backend_t *b)
{
    (void)b;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                  */

/* The snapshot writer: records gather in a 1 MiB buffer that is hashed and
 * written in one call when full. */
typedef struct {
    int fd;
    XXH3_state_t *xx;
    sf__sbuf_t out;
    uint64_t count;
    int err;
} snap_t;

static void snap_flush(snap_t *s)
{
    const uint8_t *p = s->out.p;
    size_t n = s->out.len;
    XXH3_64bits_update(s->xx, p, n);
    while (n > 0 && !s->err) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->err = 1;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    s->out.len = 0;
}

static void snap_record(snap_t *s, const uint8_t *key, size_t klen, const uint8_t *val,
                        size_t vlen)
{
    sf__sbuf_lp(&s->out, key, klen);
    sf__sbuf_lp(&s->out, val, vlen);
    if (s->out.len >= (1u << 20))
        snap_flush(s);
    s->count++;
}

static void snap_list(snap_t *s, const sf__skiplist_t *sl)
{
    sf__sl_node_t *n;
    for (n = sf__sl_first(sl); n; n = sf__sl_next(n))
        snap_record(s, sf__sl_key(n), n->klen, sf__sl_val(n), n->vlen);
}

static int mem_checkpoint(sf_state_backend_t *b, const char *dir)
{
    mem_t *m = b->store;
    snap_t s = {-1, NULL, {0}, 0, 0};
    sf__sbuf_t key;
    uint8_t trailer[8];
    char *path;
    size_t n;
    uint32_t kg;
    int rv = SF_EIO;

    if (mkdir(dir, 0755) != 0) {
        sf_log_error("state: cannot create checkpoint %s: %s", dir, strerror(errno));
        return errno == EEXIST ? SF_EEXIST : SF_EIO;
    }
    n = strlen(dir) + sizeof SNAPSHOT_NAME + 2;
    path = sf_xmalloc(n);
    snprintf(path, n, "%s/%s", dir, SNAPSHOT_NAME);
    s.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s.fd < 0)
        goto out;
    s.xx = XXH3_createState();
    SF_ASSERT(s.xx != NULL);
    XXH3_64bits_reset(s.xx);
    sf__sbuf_init(&s.out);
    sf__sbuf_init(&key);
    sf__sbuf_put(&s.out, SNAPSHOT_MAGIC, 8);
    for (kg = 0; kg < m->nkg; kg++) {
        mem_kg_t *g = &m->kgs[kg];
        size_t i;
        pthread_mutex_lock(&g->lock);
        for (i = 0; i < g->cap; i++) {
            const mem_addr_t *a = g->slots[i];
            const mem_val_t *v;
            for (v = a ? a->vals : NULL; v; v = v->next) {
                key.len = 0;
                sf__key_kind(&key, (uint16_t)kg, SF__KIND_STATE);
                sf__sbuf_put(&key, a->key, a->klen);
                sf__sbuf_lp(&key, v->bytes, v->name_len);
                snap_record(&s, key.p, key.len, v->bytes + v->name_len, v->vlen);
            }
        }
        snap_list(&s, &g->ordered);
        pthread_mutex_unlock(&g->lock);
    }
    sf__sbuf_dispose(&key);
    pthread_mutex_lock(&m->global_lock);
    snap_list(&s, &m->global);
    pthread_mutex_unlock(&m->global_lock);
    /* The end: a 0 byte (no key is empty), the count, then the checksum of
     * everything before the checksum. */
    sf__sbuf_byte(&s.out, 0);
    sf__sbuf_be64(&s.out, s.count);
    snap_flush(&s);
    sf__put_be64(trailer, XXH3_64bits_digest(s.xx));
    sf__sbuf_put(&s.out, trailer, 8);
    XXH3_64bits_reset(s.xx); /* the checksum itself is not hashed; keep the writer simple */
    snap_flush(&s);
    sf__sbuf_dispose(&s.out);
    if (!s.err && fdatasync(s.fd) == 0)
        rv = 0;
out:
    if (s.fd >= 0 && close(s.fd) != 0)
        rv = SF_EIO;
    if (s.xx)
        XXH3_freeState(s.xx);
    if (rv == 0)
        rv = sf_fs_fsync_dir(dir);
    if (rv != 0)
        sf_log_error("state: cannot write snapshot %s: %s", path, strerror(errno));
    free(path);
    return rv;
}

int sf__mem_load(sf_state_backend_t *b, const char *cpdir)
{
    mem_t *m = b->store;
    size_t n = strlen(cpdir) + sizeof SNAPSHOT_NAME + 2, len;
    char *path = sf_xmalloc(n);
    const uint8_t *base = NULL, *p, *end;
    uint64_t count = 0, want;
    struct stat st;
    int fd, rv = SF_ESTATE;

    snprintf(path, n, "%s/%s", cpdir, SNAPSHOT_NAME);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sf_log_error("state: no memory snapshot %s: %s", path, strerror(errno));
        rv = errno == ENOENT ? SF_ENOTFOUND : SF_EIO;
        goto out;
    }
    if (fstat(fd, &st) != 0 || st.st_size < 8 + 17) {
        sf_log_error("state: snapshot %s is truncated", path);
        goto out;
    }
    len = (size_t)st.st_size;
    base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
        base = NULL;
        rv = SF_EIO;
        goto out;
    }
    if (memcmp(base, SNAPSHOT_MAGIC, 8) != 0 ||
        XXH3_64bits(base, len - 8) != sf__get_be64(base + len - 8)) {
        sf_log_error("state: snapshot %s is corrupt (checksum mismatch)", path);
        goto out;
    }
    want = sf__get_be64(base + len - 16);
    p = base + 8;
    end = base + len - 17;
    while (p < end) {
        const uint8_t *key, *val;
        size_t kl, vl;
        if (sf__read_lp(&p, end, &key, &kl) != 0 || kl == 0 ||
            sf__read_lp(&p, end, &val, &vl) != 0)
            break;
        if (op_apply(m, key, kl, val, vl) != 0)
            break;
        count++;
    }
    if (p != end || base[len - 17] != 0 || count != want) {
        sf_log_error("state: snapshot %s is malformed", path);
        goto out;
    }
    rv = 0;
out:
    if (base)
        munmap((void *)base, len);
    if (fd >= 0)
        close(fd);
    free(path);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                             */

static void mem_close(sf_state_backend_t *b)
{
    mem_t *m = b->store;
    uint32_t i;
    for (i = 0; i < m->nkg; i++)
        kg_dispose(&m->kgs[i]);
    free(m->kgs);
    sf__sl_dispose(&m->global);
    pthread_mutex_destroy(&m->global_lock);
    free(m);
    b->store = NULL;
}

static const sf__store_vt_t mem_vt = {
    .kind = "memory",
    .close = mem_close,
    .get = mem_get,
    .scan = mem_scan,
    .batch_init = mem_batch_init,
    .batch_dispose = mem_batch_dispose,
    .batch_clear = mem_batch_clear,
    .batch_op = mem_batch_op,
    .batch_write = mem_batch_write,
    .batch_savepoint = mem_batch_savepoint,
    .batch_rollback = mem_batch_rollback,
    .batch_release = mem_batch_release,
    .reclaim = mem_reclaim,
    .compact = mem_compact,
    .checkpoint = mem_checkpoint,
};

int sf__mem_open(sf_state_backend_t *b, const sf_state_options_t *opts)
{
    mem_t *m = sf_xcalloc(1, sizeof *m);
    uint32_t i;
    m->nkg = opts->max_parallelism;
    m->kgs = sf_xcalloc(m->nkg, sizeof *m->kgs);
    for (i = 0; i < m->nkg; i++) {
        pthread_mutex_init(&m->kgs[i].lock, NULL);
        sf__sl_init(&m->kgs[i].ordered, 0x9E3779B97F4A7C15ull * (i + 1));
    }
    pthread_mutex_init(&m->global_lock, NULL);
    sf__sl_init(&m->global, 42);
    atomic_init(&m->sweep_rotor, 0);
    b->vt = &mem_vt;
    b->store = m;
    return 0;
}
