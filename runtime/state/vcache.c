/* statefun-c: Apache License 2.0.
 *
 * The batch state cache (see vcache.h): open 2-way sets indexed by an XXH3
 * hash of the key; each entry owns one allocation holding its key, then its
 * value. A set replaces a clean entry before a dirty one, and of two alike
 * the one not used since the other was.
 *
 * The transaction log is a byte buffer of records, each the entry's index
 * and its whole former contents (a copy of the key and value), appended
 * before each change of an entry in the transaction; ending without keeping
 * writes them back newest first, so each entry ends as it was before its
 * first change.
 */
#include "vcache.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "codec.h"
#include "log.h"
#include "xalloc.h"

#define ABSENT UINT32_MAX

typedef struct {
    uint64_t hash;
    uint8_t *data; /* key, then value; NULL: empty entry */
    uint32_t klen;
    uint32_t vlen; /* ABSENT: the key has no value */
    size_t cap;    /* bytes allocated at |data| (0 when empty) */
    uint64_t used; /* the cache's clock at the last hit or fill */
    bool dirty;    /* newer than the store */
    uint32_t gen;  /* the sweep under way when it was last written */
} entry_t;

/* A transaction log record: the entry as it was, then its key and value
 * (none for an empty entry). */
typedef struct {
    size_t index;
    entry_t was; /* data: unused */
} undo_t;

struct sf__vcache_s {
    entry_t *e;
    size_t mask; /* sets - 1; entries = 2 * sets */
    size_t bytes, budget;
    size_t ndirty, max_dirty;
    bool closed;   /* no new dirty entries (sf__vcache_close_dirty) */
    uint64_t clock;
    uint32_t gen;  /* sweeps begun (sf__vcache_sweep) */
    bool in_tx;
    sf__sbuf_t undo;
};

sf__vcache_t *sf__vcache_new(size_t slots, size_t budget, size_t dirty)
{
    sf__vcache_t *c = sf_xcalloc(1, sizeof *c);
    size_t sets = 1;
    while (sets * 2 < slots)
        sets <<= 1;
    c->e = sf_xcalloc(sets * 2, sizeof *c->e);
    c->mask = sets - 1;
    c->budget = budget;
    c->max_dirty = dirty;
    sf__sbuf_init(&c->undo);
    return c;
}

static size_t entries(const sf__vcache_t *c) { return c->mask * 2 + 2; }

static size_t value_len(const entry_t *x) { return x->vlen == ABSENT ? 0 : x->vlen; }

/* The bytes of key and value |x| holds (0 when it is empty). */
static size_t held(const entry_t *x) { return x->cap ? x->klen + value_len(x) : 0; }

/* Hands |x|'s key and value (NULL: absent) to |cb|. */
static void emit(const entry_t *x, sf__vcache_kv_cb cb, void *user_data)
{
    cb(x->data, x->klen, x->vlen == ABSENT ? NULL : x->data + x->klen, value_len(x), user_data);
}

static void drop(sf__vcache_t *c, entry_t *x)
{
    c->bytes -= x->cap;
    c->ndirty -= x->dirty;
    free(x->data);
    memset(x, 0, sizeof *x);
}

void sf__vcache_clear(sf__vcache_t *c)
{
    size_t i;
    for (i = 0; i < entries(c); i++)
        if (c->e[i].data && !c->e[i].dirty)
            drop(c, &c->e[i]);
}

void sf__vcache_free(sf__vcache_t *c)
{
    size_t i;
    if (!c)
        return;
    for (i = 0; i < entries(c); i++)
        free(c->e[i].data);
    free(c->e);
    sf__sbuf_dispose(&c->undo);
    free(c);
}

size_t sf__vcache_bytes(const sf__vcache_t *c) { return c->bytes; }

void sf__vcache_close_dirty(sf__vcache_t *c, bool closed) { c->closed = closed; }

size_t sf__vcache_dirty(const sf__vcache_t *c) { return c->ndirty; }

/* The entry holding |key| in its set, or NULL; |*set| is the set's first entry. */
static entry_t *find(sf__vcache_t *c, const uint8_t *key, size_t klen, uint64_t h, entry_t **set)
{
    entry_t *s = &c->e[(h & c->mask) * 2];
    int i;
    *set = s;
    for (i = 0; i < 2; i++)
        if (s[i].data && s[i].hash == h && s[i].klen == klen &&
            memcmp(s[i].data, key, klen) == 0)
            return &s[i];
    return NULL;
}

/* Logs |x| as it is now, when a transaction is open. */
static void log_entry(sf__vcache_t *c, entry_t *x)
{
    undo_t u;
    if (!c->in_tx)
        return;
    u.index = (size_t)(x - c->e);
    u.was = *x;
    u.was.data = NULL;
    sf__sbuf_put(&c->undo, &u, sizeof u);
    if (held(x))
        sf__sbuf_put(&c->undo, x->data, held(x));
}

/* Sets |x| to |key| -> |val| (NULL: absent), reusing its allocation when it
 * is big enough. */
static void fill(sf__vcache_t *c, entry_t *x, uint64_t h, const uint8_t *key, size_t klen,
                 const uint8_t *val, size_t vlen, bool dirty)
{
    size_t need = klen + (val ? vlen : 0);
    if (need > x->cap) {
        free(x->data);
        x->data = sf_xmalloc(need);
        c->bytes += need - x->cap;
        x->cap = need;
    }
    memcpy(x->data, key, klen);
    if (val && vlen)
        memcpy(x->data + klen, val, vlen);
    x->hash = h;
    x->klen = (uint32_t)klen;
    x->vlen = val ? (uint32_t)vlen : ABSENT;
    x->used = ++c->clock;
    x->gen = c->gen;
    c->ndirty += (size_t)dirty - (size_t)x->dirty;
    x->dirty = dirty;
}

/* Whether |key| -> |val| may be cached in place of what |x| holds. */
static bool fits(const sf__vcache_t *c, const entry_t *x, size_t klen, const uint8_t *val,
                 size_t vlen)
{
    size_t need = klen + (val ? vlen : 0);
    return !(val && vlen > SF__VCACHE_MAX_VALUE) && klen < UINT32_MAX && vlen < UINT32_MAX &&
           c->bytes - x->cap + (need > x->cap ? need : x->cap) <= c->budget;
}

/* The way to fill for a key not in |set|: an empty one, else a clean one (the
 * older of two), else (|dirty_too|) the older dirty one, else NULL. */
static entry_t *victim(entry_t *set, bool dirty_too)
{
    entry_t *a = &set[0], *b = &set[1];
    if (!a->data || !b->data)
        return !a->data ? a : b;
    if (a->dirty != b->dirty)
        return a->dirty ? b : a;
    if (a->dirty && !dirty_too)
        return NULL;
    return a->used <= b->used ? a : b;
}

bool sf__vcache_holds(sf__vcache_t *c, const uint8_t *key, size_t klen)
{
    entry_t *set;
    return find(c, key, klen, XXH3_64bits(key, klen), &set) != NULL;
}

int sf__vcache_get(sf__vcache_t *c, const uint8_t *key, size_t klen, sf_buf_t *out)
{
    uint64_t h = XXH3_64bits(key, klen);
    entry_t *set, *x = find(c, key, klen, h, &set);
    if (!x)
        return -1;
    x->used = ++c->clock;
    if (x->vlen == ABSENT)
        return 0;
    sf__buf_put(out, x->data + x->klen, x->vlen);
    return 1;
}

/* Caches |key| -> |val|: as read from the store (!|write|), or as a committed
 * write (dirty, within the bounds). A clean fill never displaces a dirty entry;
 * a dirty one displaced by a write goes to |spill| first. Returns as
 * sf__vcache_put_dirty. */
static int place(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                 size_t vlen, bool write, sf__vcache_kv_cb spill, void *user_data)
{
    uint64_t h = XXH3_64bits(key, klen);
    entry_t *set, *x = find(c, key, klen, h, &set);
    bool same = x != NULL;
    /* Past the dirty bound only a key that is dirty already stays so. */
    bool dirty = write && ((!c->closed && c->ndirty < c->max_dirty) || (x && x->dirty));

    if (!write && x && x->dirty) {
        sf_log_error("state cache: a store read would replace a newer value");
        abort();
    }
    if (!x && !(x = victim(set, dirty)))
        return -1; /* both ways hold dirty entries */
    if (!fits(c, x, klen, val, vlen)) {
        /* An older entry of this key must not outlive the write (the caller
         * writes the newer value to the store). */
        if (same) {
            log_entry(c, x);
            drop(c, x);
        }
        return -1;
    }
    log_entry(c, x);
    if (!same && x->data && x->dirty) /* only a dirty write takes a dirty way */
        emit(x, spill, user_data);
    fill(c, x, h, key, klen, val, vlen, dirty);
    return write && !dirty ? 1 : 0;
}

void sf__vcache_put(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen)
{
    place(c, key, klen, val, vlen, false, NULL, NULL);
}

int sf__vcache_put_dirty(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, sf__vcache_kv_cb spill, void *user_data)
{
    return place(c, key, klen, val, vlen, true, spill, user_data);
}

void sf__vcache_begin(sf__vcache_t *c)
{
    c->undo.len = 0;
    c->in_tx = true;
}

static size_t record_next(const sf__vcache_t *c, size_t off)
{
    undo_t u;
    memcpy(&u, c->undo.p + off, sizeof u);
    return off + sizeof u + held(&u.was);
}

void sf__vcache_end(sf__vcache_t *c, bool keep)
{
    size_t n = 0, i, off;
    size_t *at = NULL;

    c->in_tx = false;
    if (keep || c->undo.len == 0) {
        c->undo.len = 0;
        return;
    }
    /* The records (not aligned) are walked forward to find them, then applied
     * newest first. */
    for (off = 0; off < c->undo.len; off = record_next(c, off))
        n++;
    at = sf_xmalloc(n * sizeof *at);
    for (i = 0, off = 0; i < n; i++, off = record_next(c, off))
        at[i] = off;
    while (n-- > 0) {
        undo_t u;
        entry_t *x;
        memcpy(&u, c->undo.p + at[n], sizeof u);
        x = &c->e[u.index];
        if (!u.was.cap) {
            drop(c, x);
            continue;
        }
        fill(c, x, u.was.hash, c->undo.p + at[n] + sizeof u, u.was.klen,
             u.was.vlen == ABSENT ? NULL : c->undo.p + at[n] + sizeof u + u.was.klen,
             value_len(&u.was), u.was.dirty);
        x->used = u.was.used;
        x->gen = u.was.gen;
    }
    free(at);
    c->undo.len = 0;
}

size_t sf__vcache_end_pos(const sf__vcache_t *c) { return entries(c); }

uint32_t sf__vcache_sweep(sf__vcache_t *c) { return ++c->gen; }

/* Whether a sweep begun as |gen| writes |x|: dirty before it began. */
static bool swept(const entry_t *x, uint32_t gen)
{
    return x->data && x->dirty && (int32_t)(x->gen - gen) < 0;
}

size_t sf__vcache_each_dirty(sf__vcache_t *c, uint32_t gen, size_t from, size_t max,
                             sf__vcache_kv_cb cb, void *user_data)
{
    size_t i, n = 0;
    for (i = from; i < entries(c) && n < max; i++) {
        entry_t *x = &c->e[i];
        if (swept(x, gen)) {
            emit(x, cb, user_data);
            n++;
        }
    }
    return i;
}

void sf__vcache_mark_clean(sf__vcache_t *c, uint32_t gen, size_t from, size_t to)
{
    size_t i;
    for (i = from; i < to && i < entries(c); i++)
        if (swept(&c->e[i], gen)) {
            c->e[i].dirty = false;
            c->ndirty--;
        }
}

void sf__vcache_each_prefix(sf__vcache_t *c, const uint8_t *prefix, size_t plen,
                            sf__vcache_kv_cb cb, void *user_data)
{
    size_t i;
    for (i = 0; i < entries(c); i++) {
        entry_t *x = &c->e[i];
        if (x->data && x->klen >= plen && memcmp(x->data, prefix, plen) == 0)
            emit(x, cb, user_data);
    }
}
