/* statefun-c: Apache License 2.0.
 *
 * The durable egress store (docs/checkpointing.md, "Egress"): the records of
 * the playground egress topics with their offsets, each topic's read cursor,
 * and the id of the last checkpoint whose exactly-once records were
 * published. It is a small RocksDB database of its own (STATE_DIR/egress/),
 * apart from the state store, because recovery never rolls it back: what a
 * reader was shown stays shown, whichever state backend runs (the memory
 * backend too keeps its egress here).
 *
 * Layout (default column family; numbers big-endian, so keys sort by them):
 *
 *     'P'                             -> u64 published epoch
 *     'T' u16 len, name               -> u64 base, u64 end, u64 cursor
 *     'R' u16 len, name, u64 offset   -> the payload bytes
 *
 * A topic holds the records base .. end-1, contiguous. Offsets are never
 * reused, across restarts too: |end| is stored and only grows. |cursor| is
 * the oldest offset GET /{topic} has not consumed; trimming may pass it
 * (records dropped unread), so readers clamp it to |base|.
 *
 * Writes go through a batch that one synced RocksDB write (WAL fdatasync)
 * applies atomically: once sf_egress_store_commit returns 0 the batch
 * survives kill -9 and power loss. Appended records get their offsets in the
 * commit, under the store's lock (held across the write), so committers on
 * different threads (the main thread publishing a checkpoint's records, the
 * I/O thread's group commits) get contiguous offsets in commit order.
 *
 * Threading: every function is "any thread"; a batch belongs to one thread
 * at a time. Commits are serialized; reads take the lock only to copy a
 * topic's meta and iterate without it (RocksDB iterators are consistent).
 */
#ifndef SF_EGRESS_STORE_H
#define SF_EGRESS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** The longest topic name the store keeps (keys carry it). */
#define SF_EGRESS_STORE_MAX_TOPIC 1024u

typedef struct sf_egress_store_s sf_egress_store_t;
typedef struct sf_egress_store_batch_s sf_egress_store_batch_t;

/** A topic's meta (sf_egress_store_info). */
typedef struct sf_egress_store_info_s {
    uint64_t base;   /* oldest record kept */
    uint64_t end;    /* the offset the next record gets */
    uint64_t cursor; /* oldest record not consumed (may be below base) */
} sf_egress_store_info_t;

/**
 * Opens (creating it and its parents when missing) the store in |dir|. With
 * |sync| every commit fdatasyncs the WAL (the runtime always passes true;
 * false survives kill -9 but not power loss, for benchmarks). Returns 0 and
 * sets |*out| (close with sf_egress_store_close), SF_EIO (|dir| cannot be
 * created) or SF_ESTATE (RocksDB failed; its text is logged).
 */
int sf_egress_store_open(const char *dir, bool sync, sf_egress_store_t **out);

/** Closes and frees |s| (NULL is fine). Every batch of |s| must be freed first. */
void sf_egress_store_close(sf_egress_store_t *s);

/**
 * The index of topic |name| (|len| bytes), created empty (offsets from 0)
 * when the store has never seen it; an index is stable while |s| is open.
 * Returns the index (>= 0) or SF_EINVAL (empty or longer than
 * SF_EGRESS_STORE_MAX_TOPIC).
 */
int sf_egress_store_topic(sf_egress_store_t *s, const char *name, size_t len);

/** Copies the meta of topic |topic| into |out|. */
void sf_egress_store_info(sf_egress_store_t *s, uint32_t topic, sf_egress_store_info_t *out);

/** The epoch of the last commit that set one (sf_egress_store_batch_epoch); 0 at first. */
uint64_t sf_egress_store_published_epoch(sf_egress_store_t *s);

/** Read callback: return 0 to go on, nonzero to stop. |data| is valid during the call. */
typedef int (*sf_egress_store_read_cb)(uint64_t offset, const void *data, size_t len,
                                       void *user_data);

/**
 * Calls |cb| for the records of |topic| from offset |from| (or the oldest
 * kept, if later) in offset order, at most |max| of them (0: no limit), as
 * committed when the call began. Returns the number of records given to |cb|
 * (>= 0), or SF_ESTATE.
 */
ssize_t sf_egress_store_read(sf_egress_store_t *s, uint32_t topic, uint64_t from, size_t max,
                             sf_egress_store_read_cb cb, void *user_data);

/* ------------------------------------------------------------------------ */
/* Batches                                                                    */

/** Creates an empty batch for |s| (aborts on out-of-memory, never fails). */
sf_egress_store_batch_t *sf_egress_store_batch_new(sf_egress_store_t *s);
/** Frees |b| (NULL is fine). */
void sf_egress_store_batch_free(sf_egress_store_batch_t *b);
/** Drops everything in |b|, keeping its memory. */
void sf_egress_store_batch_clear(sf_egress_store_batch_t *b);
/** Whether |b| holds no operation. */
bool sf_egress_store_batch_empty(const sf_egress_store_batch_t *b);

/** Appends a copy of the record |data|/|len| to |topic|; its offset is set by the commit. */
void sf_egress_store_batch_append(sf_egress_store_batch_t *b, uint32_t topic, const void *data,
                                  size_t len);
/**
 * Sets the cursor of |topic| to |cursor| (clamped to the topic's end at
 * commit time); the last value given in a batch wins.
 */
void sf_egress_store_batch_cursor(sf_egress_store_batch_t *b, uint32_t topic, uint64_t cursor);
/**
 * Deletes the records of |topic| below |below| (clamped to the topic's end;
 * the newest record may go too). Bounded retention: the I/O thread trims
 * what its topic bounds drop.
 */
void sf_egress_store_batch_trim(sf_egress_store_batch_t *b, uint32_t topic, uint64_t below);
/** Records |epoch| as the published epoch in the same write. */
void sf_egress_store_batch_epoch(sf_egress_store_batch_t *b, uint64_t epoch);

/**
 * Applies |b| in one synced write. On success the records' offsets are set
 * (sf_egress_store_batch_rec) and |b| keeps its contents until cleared. On
 * failure nothing is applied and the store is unchanged (no offset is
 * consumed). Returns 0 or SF_ESTATE (logged).
 */
int sf_egress_store_commit(sf_egress_store_batch_t *b);

/** The records appended to |b|, in append order. */
size_t sf_egress_store_batch_count(const sf_egress_store_batch_t *b);

/**
 * Record |i| of |b|: topic, offset (valid after a successful commit) and
 * payload (borrowed from |b| until it is cleared or freed).
 */
void sf_egress_store_batch_rec(const sf_egress_store_batch_t *b, size_t i, uint32_t *topic,
                               uint64_t *offset, const void **data, size_t *len);

#endif /* SF_EGRESS_STORE_H */
