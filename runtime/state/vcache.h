/* statefun-c: Apache License 2.0.
 *
 * A batch's read cache: the encoded values of state keys its thread last read
 * or committed, so that a worker reading the state of an address it invoked a
 * moment ago does not search the store again (RocksDB: a memtable skip-list
 * search per get, most of a hot address's cost). Absent keys are cached too.
 *
 * Coherence: a worker's state keys change only through its own batch (its
 * key groups are its own), so the cache is updated with what each commit
 * wrote, after the commit. Values the store drops on its own (expired TTL,
 * reclaimed) stay cached with their expiry, which the reader checks anyway.
 *
 * Bounded: a fixed table of 2-way sets, values up to SF__VCACHE_MAX_VALUE
 * bytes, and at most |budget| bytes of keys and values in all; what does not
 * fit is not cached (and any older entry of its key is dropped).
 *
 * Threading: one thread, the batch's.
 */
#ifndef SF_STATE_VCACHE_H
#define SF_STATE_VCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sf_common.h"

#define SF__VCACHE_MAX_VALUE 4096
/* A worker batch's cache: 64k entries, at most 32 MiB (docs/state.md). */
#define SF__VCACHE_SLOTS 65536
#define SF__VCACHE_BUDGET ((size_t)32 << 20)

typedef struct sf__vcache_s sf__vcache_t;

/** A cache of |slots| entries (rounded up to a power of two) and |budget| bytes. */
sf__vcache_t *sf__vcache_new(size_t slots, size_t budget);
void sf__vcache_free(sf__vcache_t *c);

/**
 * Looks |key| up. Returns 1 (value appended to |out|), 0 (cached as absent)
 * or -1 (not cached).
 */
int sf__vcache_get(sf__vcache_t *c, const uint8_t *key, size_t klen, sf_buf_t *out);

/** Caches |key| -> |val| (NULL: absent), or drops |key| when it does not fit. */
void sf__vcache_put(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen);

/** Forgets everything. */
void sf__vcache_clear(sf__vcache_t *c);

/** Bytes of keys and values held. */
size_t sf__vcache_bytes(const sf__vcache_t *c);

#endif
