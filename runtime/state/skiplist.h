/* statefun-c: Apache License 2.0.
 *
 * An ordered map of byte strings (keys compared bytewise, shorter first on a
 * common prefix) as a skip list: O(log n) find, insert and delete, and
 * in-order iteration from any key. The memory store keeps timers, timer
 * tokens, meta and log records in skip lists, where order matters.
 *
 * Each node is one allocation holding its links, key and value. Nodes are
 * freed on delete and replaced on a put whose value changes size.
 *
 * Threading: none; the owner locks.
 */
#ifndef SF_STATE_SKIPLIST_H
#define SF_STATE_SKIPLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF__SL_MAX_HEIGHT 16

typedef struct sf__sl_node_s {
    uint32_t klen;
    uint32_t vlen;
    uint8_t height;
    struct sf__sl_node_s *next[]; /* [height], then key, then value */
} sf__sl_node_t;

typedef struct sf__skiplist_s {
    sf__sl_node_t *head;          /* sentinel of full height */
    int height;                   /* levels in use */
    uint64_t rng;
    size_t count;
} sf__skiplist_t;

static inline const uint8_t *sf__sl_key(const sf__sl_node_t *n)
{
    return (const uint8_t *)&n->next[n->height];
}
static inline const uint8_t *sf__sl_val(const sf__sl_node_t *n) { return sf__sl_key(n) + n->klen; }
static inline sf__sl_node_t *sf__sl_first(const sf__skiplist_t *sl) { return sl->head->next[0]; }
static inline sf__sl_node_t *sf__sl_next(const sf__sl_node_t *n) { return n->next[0]; }

/** Bytewise comparison, a proper prefix sorting first. */
int sf__bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

void sf__sl_init(sf__skiplist_t *sl, uint64_t seed);
void sf__sl_dispose(sf__skiplist_t *sl);
/** The first node with key >= |key|, or NULL. */
sf__sl_node_t *sf__sl_find_ge(const sf__skiplist_t *sl, const uint8_t *key, size_t klen);
/** The node with exactly |key|, or NULL. */
sf__sl_node_t *sf__sl_get(const sf__skiplist_t *sl, const uint8_t *key, size_t klen);
/** Inserts or replaces |key| -> |val|. */
void sf__sl_put(sf__skiplist_t *sl, const uint8_t *key, size_t klen, const uint8_t *val,
                size_t vlen);
/** Removes |key|. Returns true when it was there. */
bool sf__sl_del(sf__skiplist_t *sl, const uint8_t *key, size_t klen);

#endif /* SF_STATE_SKIPLIST_H */
