/* statefun-c: Apache License 2.0.
 *
 * The skip list of skiplist.h: levels drawn with probability 1/4 from a
 * xorshift generator seeded by the owner, so 16 levels serve billions of
 * keys. Single-threaded; the owner locks.
 */
#include "skiplist.h"

#include <stdlib.h>
#include <string.h>

#include "sf_common.h"
#include "xalloc.h"

int sf__bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static sf__sl_node_t *node_new(int height, const uint8_t *key, size_t klen, const uint8_t *val,
                               size_t vlen)
{
    sf__sl_node_t *n = sf_xmalloc(sizeof *n + sizeof n->next[0] * (size_t)height + klen + vlen);
    uint8_t *p;
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    n->height = (uint8_t)height;
    p = (uint8_t *)&n->next[height];
    if (klen)
        memcpy(p, key, klen);
    if (vlen)
        memcpy(p + klen, val, vlen);
    return n;
}

void sf__sl_init(sf__skiplist_t *sl, uint64_t seed)
{
    sl->head = node_new(SF__SL_MAX_HEIGHT, NULL, 0, NULL, 0);
    memset(sl->head->next, 0, sizeof sl->head->next[0] * SF__SL_MAX_HEIGHT);
    sl->height = 1;
    sl->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    sl->count = 0;
}

void sf__sl_dispose(sf__skiplist_t *sl)
{
    sf__sl_node_t *n, *next;
    if (!sl->head)
        return;
    for (n = sl->head->next[0]; n; n = next) {
        next = n->next[0];
        free(n);
    }
    free(sl->head);
    sl->head = NULL;
    sl->count = 0;
}

static int random_height(sf__skiplist_t *sl)
{
    uint64_t x = sl->rng;
    int h = 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sl->rng = x;
    while (h < SF__SL_MAX_HEIGHT && (x & 3) == 0) {
        h++;
        x >>= 2;
    }
    return h;
}

/* Fills |prev| with the last node before |key| on every level. */
static sf__sl_node_t *find_prev(const sf__skiplist_t *sl, const uint8_t *key, size_t klen,
                                sf__sl_node_t **prev)
{
    sf__sl_node_t *x = sl->head;
    for (int i = sl->height - 1; i >= 0; i--) {
        sf__sl_node_t *n;
        while ((n = x->next[i]) != NULL && sf__bytes_cmp(sf__sl_key(n), n->klen, key, klen) < 0)
            x = n;
        if (prev)
            prev[i] = x;
    }
    return x->next[0];
}

sf__sl_node_t *sf__sl_find_ge(const sf__skiplist_t *sl, const uint8_t *key, size_t klen)
{
    return find_prev(sl, key, klen, NULL);
}

sf__sl_node_t *sf__sl_get(const sf__skiplist_t *sl, const uint8_t *key, size_t klen)
{
    sf__sl_node_t *n = find_prev(sl, key, klen, NULL);
    if (n && sf__bytes_cmp(sf__sl_key(n), n->klen, key, klen) == 0)
        return n;
    return NULL;
}

void sf__sl_put(sf__skiplist_t *sl, const uint8_t *key, size_t klen, const uint8_t *val,
                size_t vlen)
{
    sf__sl_node_t *prev[SF__SL_MAX_HEIGHT], *n, *old;
    int h, i;
    old = find_prev(sl, key, klen, prev);
    if (old && sf__bytes_cmp(sf__sl_key(old), old->klen, key, klen) == 0) {
        if (old->vlen == vlen) {
            if (vlen)
                memcpy((uint8_t *)sf__sl_val(old), val, vlen);
            return;
        }
        /* Same key, new size: a node of the same height takes its place. */
        n = node_new(old->height, key, klen, val, vlen);
        for (i = 0; i < old->height; i++) {
            n->next[i] = old->next[i];
            prev[i]->next[i] = n;
        }
        free(old);
        return;
    }
    h = random_height(sl);
    if (h > sl->height) {
        for (i = sl->height; i < h; i++)
            prev[i] = sl->head;
        sl->height = h;
    }
    n = node_new(h, key, klen, val, vlen);
    for (i = 0; i < h; i++) {
        n->next[i] = prev[i]->next[i];
        prev[i]->next[i] = n;
    }
    sl->count++;
}

bool sf__sl_del(sf__skiplist_t *sl, const uint8_t *key, size_t klen)
{
    sf__sl_node_t *prev[SF__SL_MAX_HEIGHT], *n;
    int i;
    n = find_prev(sl, key, klen, prev);
    if (!n || sf__bytes_cmp(sf__sl_key(n), n->klen, key, klen) != 0)
        return false;
    for (i = 0; i < n->height; i++)
        prev[i]->next[i] = n->next[i];
    free(n);
    while (sl->height > 1 && !sl->head->next[sl->height - 1])
        sl->height--;
    sl->count--;
    return true;
}
