/* statefun-c: Apache License 2.0.
 *
 * A worker's table of activations: the in-memory record of every address
 * that has work (a batch in flight, a backlog, a retry pending). An
 * activation is created when the first message for an address arrives and
 * dropped when the address goes idle, so memory follows the working set, not
 * the number of addresses with state.
 *
 * The table is a chained hash table with intrusive nodes and power-of-two
 * buckets; growth rehashes a bounded number of buckets per operation
 * (Redis dictRehash) so no single message pays for a full rehash.
 *
 * Threading: loop thread only (each worker owns its table).
 */
#ifndef SF_ACTMAP_H
#define SF_ACTMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sf_actmap_node_s {
    struct sf_actmap_node_s *next;
    uint64_t hash;
    const char *key; /* owned by the containing object */
    size_t key_len;
} sf_actmap_node_t;

typedef struct sf_actmap_s {
    sf_actmap_node_t **_tab[2];
    size_t _size[2];    /* buckets, power of two or 0 */
    size_t _used[2];
    size_t _rehash_idx; /* next bucket of _tab[0] to move; SIZE_MAX: not rehashing */
} sf_actmap_t;

void sf_actmap_init(sf_actmap_t *m);
/** Frees the buckets only; the nodes belong to their containers. */
void sf_actmap_dispose(sf_actmap_t *m);
uint64_t sf_actmap_hash(const char *key, size_t len);
/** Returns the node with |key|, or NULL. */
sf_actmap_node_t *sf_actmap_get(sf_actmap_t *m, const char *key, size_t len, uint64_t hash);
/** Inserts |node| (its key, key_len and hash set; the key must be absent). */
void sf_actmap_put(sf_actmap_t *m, sf_actmap_node_t *node);
/** Unlinks |node| (which must be in the table). */
void sf_actmap_del(sf_actmap_t *m, sf_actmap_node_t *node);
size_t sf_actmap_count(const sf_actmap_t *m);

/** Visits every node; |fn| may not modify the table. */
void sf_actmap_foreach(sf_actmap_t *m, void (*fn)(sf_actmap_node_t *node, void *ud), void *ud);

#endif
