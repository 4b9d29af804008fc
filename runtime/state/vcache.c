/* statefun-c: Apache License 2.0.
 *
 * The batch read cache (see vcache.h): open 2-way sets indexed by an XXH3
 * hash of the key; each entry owns one allocation holding its key, then its
 * value. A set replaces the entry not used since the other one was.
 */
#include "vcache.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "codec.h"
#include "xalloc.h"

#define ABSENT UINT32_MAX

typedef struct {
    uint64_t hash;
    uint8_t *data; /* key, then value; NULL: empty entry */
    uint32_t klen;
    uint32_t vlen; /* ABSENT: the key has no value */
    size_t cap;    /* bytes allocated at |data| (0 when empty) */
    uint64_t used; /* the cache's clock at the last hit or fill */
} entry_t;

struct sf__vcache_s {
    entry_t *e;
    size_t mask; /* sets - 1; entries = 2 * sets */
    size_t bytes, budget;
    uint64_t clock;
};

sf__vcache_t *sf__vcache_new(size_t slots, size_t budget)
{
    sf__vcache_t *c = sf_xcalloc(1, sizeof *c);
    size_t sets = 1;
    while (sets * 2 < slots)
        sets <<= 1;
    c->e = sf_xcalloc(sets * 2, sizeof *c->e);
    c->mask = sets - 1;
    c->budget = budget;
    return c;
}

void sf__vcache_clear(sf__vcache_t *c)
{
    size_t i;
    for (i = 0; i <= c->mask * 2 + 1; i++) {
        free(c->e[i].data);
        memset(&c->e[i], 0, sizeof c->e[i]);
    }
    c->bytes = 0;
}

void sf__vcache_free(sf__vcache_t *c)
{
    if (!c)
        return;
    sf__vcache_clear(c);
    free(c->e);
    free(c);
}

size_t sf__vcache_bytes(const sf__vcache_t *c) { return c->bytes; }

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

static void drop(sf__vcache_t *c, entry_t *x)
{
    c->bytes -= x->cap;
    free(x->data);
    memset(x, 0, sizeof *x);
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

void sf__vcache_put(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen)
{
    uint64_t h = XXH3_64bits(key, klen);
    entry_t *set, *x = find(c, key, klen, h, &set);
    size_t need = klen + (val ? vlen : 0), cap;

    if (!x) /* the empty entry, else the one used longer ago */
        x = !set[0].data ? &set[0] : !set[1].data ? &set[1] : set[0].used <= set[1].used ? &set[0]
                                                                                       : &set[1];
    cap = x->cap;
    if ((val && vlen > SF__VCACHE_MAX_VALUE) || klen > UINT32_MAX - 1 ||
        c->bytes - cap + (need > cap ? need : cap) > c->budget) {
        /* Does not fit. An older entry of this key must not outlive the write. */
        if (x->data && x->hash == h && x->klen == klen && memcmp(x->data, key, klen) == 0)
            drop(c, x);
        return;
    }
    if (need > cap) {
        free(x->data);
        x->data = sf_xmalloc(need);
        c->bytes += need - cap;
        x->cap = need;
    }
    memcpy(x->data, key, klen);
    if (val && vlen)
        memcpy(x->data + klen, val, vlen);
    x->hash = h;
    x->klen = (uint32_t)klen;
    x->vlen = val ? (uint32_t)vlen : ABSENT;
    x->used = ++c->clock;
}
