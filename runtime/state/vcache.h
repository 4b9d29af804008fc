/* statefun-c: Apache License 2.0.
 *
 * A batch's state cache: the encoded values of state keys its thread last
 * read or committed, so that a worker reading the state of an address it
 * invoked a moment ago does not search the store again (RocksDB: a memtable
 * skip-list search per get, most of a hot address's cost). Absent keys are
 * cached too.
 *
 * Two modes, chosen by the backend (docs/state.md):
 * - write-through: every commit writes the store, and the cache takes what it
 *   wrote afterwards (sf__vcache_put): every entry is "clean";
 * - write-back: a commit's state writes go to the cache only, as "dirty"
 *   entries (sf__vcache_put_dirty), and reach the store when a dirty entry is
 *   displaced (handed to a spill callback, which adds it to the commit's store
 *   batch) or when the owner writes every dirty entry back (a checkpoint).
 *   A hot address is then written to the store once per checkpoint, not once
 *   per message.
 *
 * Coherence: a worker's state keys change only through its own batch (its
 * key groups are its own), so the cache is always as new as the store or
 * newer. Values the store drops on its own (expired TTL) stay cached with
 * their expiry, which the reader checks anyway.
 *
 * Bounded: a fixed table of 2-way sets, values up to SF__VCACHE_MAX_VALUE
 * bytes, and at most about |budget| bytes of keys and values in all. A read
 * never displaces a dirty entry; what does not fit is not cached (and any
 * older entry of its key is dropped, or for a dirty write, returned to the
 * caller to write to the store itself).
 *
 * Transactions: between sf__vcache_begin and sf__vcache_end every change is
 * logged, so that sf__vcache_end(c, false) puts back exactly what was there
 * (a commit whose store write failed must leave the cache as it found it).
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
/* A worker batch's cache: 64k entries, at most 32 MiB, of which at most 4 096
 * dirty (docs/state.md). */
#define SF__VCACHE_SLOTS 65536
#define SF__VCACHE_BUDGET ((size_t)32 << 20)
#define SF__VCACHE_DIRTY 4096

typedef struct sf__vcache_s sf__vcache_t;

/** Receives a key and its value (NULL: absent, a delete). */
typedef void (*sf__vcache_kv_cb)(const uint8_t *key, size_t klen, const uint8_t *val,
                                 size_t vlen, void *user_data);

/**
 * A cache of |slots| entries (rounded up to a power of two) and |budget|
 * bytes, at most |dirty| of them dirty.
 */
sf__vcache_t *sf__vcache_new(size_t slots, size_t budget, size_t dirty);
/** Frees |c| (NULL is fine), dirty entries included. */
void sf__vcache_free(sf__vcache_t *c);

/**
 * Looks |key| up. Returns 1 (value appended to |out|), 0 (cached as absent)
 * or -1 (not cached).
 */
int sf__vcache_get(sf__vcache_t *c, const uint8_t *key, size_t klen, sf_buf_t *out);

/** Whether |c| has an entry for |key| (a value or absent); a peek: nothing is touched. */
bool sf__vcache_holds(sf__vcache_t *c, const uint8_t *key, size_t klen);

/**
 * Caches |key| -> |val| (NULL: absent) as the store holds it, or drops a
 * clean older entry of |key| when it does not fit. Never displaces or
 * replaces a dirty entry (a caller that read the store for a dirty key has a
 * bug: it is logged and aborts).
 */
void sf__vcache_put(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                    size_t vlen);

/**
 * Caches the committed write |key| -> |val| (NULL: deleted) as dirty. A dirty
 * entry of another key that it displaces is first handed to |spill|. Returns
 * 0; or 1 when the cache holds as many dirty entries as it may and |key| is
 * not one of them: it is cached clean, and the caller must write it to the
 * store; or -1 when the write does not fit (too big, or over the budget):
 * then no entry of |key| is left and the caller must write it to the store.
 * (The dirty bound keeps what a checkpoint writes back small: with more
 * addresses than that, the ones written first stay dirty until the next
 * write-back and the rest are written through.)
 */
int sf__vcache_put_dirty(sf__vcache_t *c, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, sf__vcache_kv_cb spill, void *user_data);

/**
 * Closes (|closed|) or opens the cache to new dirty entries: while closed,
 * sf__vcache_put_dirty keeps dirty only the keys that are dirty already (as past
 * the dirty bound). A checkpoint closes it for the moments before its pause,
 * so that little is left to write back while commits are held.
 */
void sf__vcache_close_dirty(sf__vcache_t *c, bool closed);

/** Starts logging changes (one level; not while one is open). */
void sf__vcache_begin(sf__vcache_t *c);
/** Ends the transaction: keeps its changes (|keep|) or puts back what was there. */
void sf__vcache_end(sf__vcache_t *c, bool keep);

/**
 * Begins a sweep: returns its number, which the calls below take, so that
 * they pass over entries written since it began (a sweep that went after
 * every new write might not end while its owner goes on writing; what it
 * passes over stays dirty for the next sweep).
 */
uint32_t sf__vcache_sweep(sf__vcache_t *c);
/**
 * Hands the dirty entries not written since sweep |gen| began, from position |from| on, to
 * |cb| (they stay dirty), at most |max| of them, and returns the position
 * after the last one looked at: a sweep starts at 0 and is complete when the
 * result is sf__vcache_end_pos(c). Positions are the table's slots, so a
 * sweep may go on while the cache changes between calls.
 */
size_t sf__vcache_each_dirty(sf__vcache_t *c, uint32_t gen, size_t from, size_t max,
                             sf__vcache_kv_cb cb, void *user_data);
/** Marks those entries at positions [from, to) clean (after the caller wrote them). */
void sf__vcache_mark_clean(sf__vcache_t *c, uint32_t gen, size_t from, size_t to);
/** The position after the last entry. */
size_t sf__vcache_end_pos(const sf__vcache_t *c);
/** The number of dirty entries. */
size_t sf__vcache_dirty(const sf__vcache_t *c);

/** Hands every entry whose key starts with |prefix| to |cb|, dirty or clean. */
void sf__vcache_each_prefix(sf__vcache_t *c, const uint8_t *prefix, size_t plen,
                            sf__vcache_kv_cb cb, void *user_data);

/** Forgets every clean entry; dirty ones stay. */
void sf__vcache_clear(sf__vcache_t *c);

/** Bytes of keys and values held. */
size_t sf__vcache_bytes(const sf__vcache_t *c);

#endif
