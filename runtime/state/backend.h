/* statefun-c: Apache License 2.0.
 *
 * The state backend: where the functions' values, the delayed messages
 * (timers) and the small records of other layers (egress records, ingress
 * positions) live between checkpoints. Two implementations sit behind one
 * vtable: RocksDB (the default, durable, one instance shared by every worker)
 * and memory (durable only through checkpoint snapshots). docs/state.md
 * describes the key layout, the TTL and timer semantics and the RocksDB
 * tuning.
 *
 * Keys start with the key group (the caller computes it with sf_key_group),
 * so that a range of key groups is a range of keys and all states of one
 * address are adjacent. Time is always passed in by the caller as wall-clock
 * milliseconds since the epoch (it must survive restarts; tests pass their
 * own clock).
 *
 * Writes go through a batch (sf_state_batch_t) that is applied atomically by
 * sf_state_batch_commit; a batch is reused after a commit, so the hot path
 * does not allocate per message.
 *
 * Threading: a backend is "any thread": workers call it from their loop
 * threads concurrently. The contract that makes this cheap: state, timer and
 * token operations on one key group come from one thread at a time (the
 * worker that owns it, or any thread while the workers are paused); the
 * memory backend keeps one lock per key group, never a global one, on the hot
 * path. A batch belongs to one thread at a time. Reads do not see uncommitted
 * batches, except that timer tokens scheduled or cancelled earlier in the same
 * batch are seen by that batch. With write-back, the state a batch committed
 * is seen through that batch (its owner's reads and scans) and, after
 * sf_state_batch_write_back, by everyone.
 */
#ifndef SF_STATE_BACKEND_H
#define SF_STATE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message.h"
#include "sf_common.h"

/** The largest max_parallelism (as in Flink: key groups fit in 15 bits). */
#define SF_STATE_MAX_PARALLELISM 32768

typedef struct sf_state_backend_s sf_state_backend_t;
typedef struct sf_state_batch_s sf_state_batch_t;

/** Expiration modes; the numbers are those of the protocol's ExpirationSpec.Mode. */
typedef enum {
    SF_STATE_TTL_NONE = 0,
    SF_STATE_TTL_AFTER_WRITE = 1,  /* expires |ttl_ms| after the last write */
    SF_STATE_TTL_AFTER_INVOKE = 2, /* expires |ttl_ms| after the last read or write */
} sf_state_ttl_mode;

/** Open options. Initialize with sf_state_options_init, then set fields. */
typedef struct sf_state_options_s {
    const char *kind;          /* "rocksdb" (default) or "memory" */
    const char *dir;           /* rocksdb: the live database directory (created with
                                  parents); memory: unused, may be NULL */
    uint32_t max_parallelism;  /* key groups, 1..SF_STATE_MAX_PARALLELISM (default 128);
                                  recorded in the store and checked when reopening */
    /* RocksDB tuning (docs/state.md explains the defaults). */
    size_t block_cache_bytes;  /* shared LRU cache for data, index and filter blocks */
    size_t write_buffer_bytes; /* one memtable */
    int max_write_buffers;     /* memtables kept in memory (active + flushing) */
    int background_jobs;       /* flush and compaction threads */
    bool sync_commits;         /* fdatasync the WAL on every commit (off: the WAL reaches
                                  the OS on every commit and survives kill -9) */
    uint64_t checkpoint_flush_bytes; /* flush memtables before a checkpoint when the live WAL
                                        is at least this big (0: always; UINT64_MAX: never,
                                        the WAL is copied into the checkpoint instead) */
    bool wal;                  /* rocksdb: write a WAL (default), which a reopen of the live
                                  store replays. Off when every restart starts from a
                                  checkpoint (the runtime with checkpoints on). Off needs
                                  !sync_commits. */
    bool checkpoint_wal;       /* rocksdb without |wal|: log the commits all the same, for
                                  checkpoints only: a checkpoint copies the commits since the
                                  last flush from the log instead of flushing them into a new
                                  level-0 table, which every get would search
                                  (docs/state.md). The log is buffered and written out by the
                                  checkpoint, so the live store must never be reopened. */
    bool write_back;           /* rocksdb without |wal|: a worker batch keeps the state it
                                  commits in its cache and writes it to the store only when
                                  the cache has no room for it or at sf_state_batch_write_back
                                  (before each checkpoint). Memory: ignored. */
} sf_state_options_t;

/** Fills |opts| with the defaults (kind "rocksdb", no dir, 128 key groups). */
void sf_state_options_init(sf_state_options_t *opts);

/**
 * Opens the backend |kind| ("rocksdb" or "memory") on |dir| with default
 * tuning. Equivalent to sf_state_open2 with those three fields set.
 */
int sf_state_open(const char *kind, const char *dir, uint32_t max_parallelism,
                  sf_state_backend_t **out);

/**
 * Opens a backend. A RocksDB store is created when |opts->dir| holds none;
 * an existing one keeps its contents (states, timers, log records). The
 * memory backend always starts empty.
 *
 * Returns 0 and sets |*out| (free with sf_state_close), or:
 *   SF_EINVAL  unknown kind, no dir for RocksDB, bad max_parallelism, or a
 *              store recorded with another max_parallelism (logged);
 *   SF_ESTATE  RocksDB failed to open (its text is logged).
 */
int sf_state_open2(const sf_state_options_t *opts, sf_state_backend_t **out);

/**
 * Restores the checkpoint in |checkpoint_dir| (written by sf_state_checkpoint
 * with the same kind) and opens it. RocksDB: the live directory |opts->dir| is
 * replaced by the checkpoint's files (immutable table files hard-linked, the
 * small rest copied), so the checkpoint itself stays untouched and can be
 * restored again; an existing |opts->dir| must be a RocksDB directory or
 * empty, and no open backend may be using it. Memory: the snapshot file is read and its checksum verified. Key
 * groups are not tied to workers, so the restored store may be served by any
 * number of workers.
 *
 * Returns 0 and sets |*out|, or SF_EINVAL (as for sf_state_open2, or
 * |opts->dir| is neither empty nor a RocksDB directory), SF_ENOTFOUND (no
 * checkpoint there), SF_ESTATE (corrupt snapshot, RocksDB failure), SF_EIO.
 */
int sf_state_open_from(const sf_state_options_t *opts, const char *checkpoint_dir,
                       sf_state_backend_t **out);

/** Closes and frees |b| (NULL is fine). Every batch of |b| must be freed first. */
void sf_state_close(sf_state_backend_t *b);

/** "rocksdb" or "memory". */
const char *sf_state_kind(const sf_state_backend_t *b);
/** The number of key groups the store was created with. */
uint32_t sf_state_max_parallelism(const sf_state_backend_t *b);

/* ------------------------------------------------------------------------ */
/* Values                                                                     */

/** A value as read. Every pointer is borrowed from the caller's buffer. */
typedef struct sf_state_value_s {
    const char *type_name;      /* NUL-terminated */
    const uint8_t *data;
    size_t len;
    sf_state_ttl_mode ttl_mode;
    int64_t ttl_ms;             /* 0 when ttl_mode is NONE */
    int64_t expire_at_ms;       /* 0 when ttl_mode is NONE */
} sf_state_value_t;

/** Flags of sf_state_get. */
enum {
    /* Count this read as an invocation: AFTER_INVOKE values are refreshed
     * (expire |ttl_ms| after |now_ms|). Without it the read is a peek (the
     * admin API). */
    SF_STATE_GET_TOUCH = 1,
};

/**
 * Reads the value of state |name| of |addr| (in key group |kg|) at time
 * |now_ms|. The bytes are copied into |buf| (reset first; reuse it across
 * calls) and |out| points into it until |buf| changes.
 *
 * An expired value reads as absent and is deleted: through |batch| when one
 * is given (committed with it), else at once. With SF_STATE_GET_TOUCH an
 * AFTER_INVOKE value is rewritten with its new expiry, also through |batch|
 * when given.
 *
 * Returns 1 (found), 0 (absent or expired), SF_EINVAL (|kg| out of range) or
 * SF_ESTATE. Any thread (see the key group contract above).
 */
int sf_state_get(sf_state_backend_t *b, sf_state_batch_t *batch, uint16_t kg,
                 const sf_addr_t *addr, const char *name, int64_t now_ms, int flags,
                 sf_buf_t *buf, sf_state_value_t *out);

/**
 * Every state key of |addr| in key group |kg| starts with the same bytes, its
 * prefix: sf_state_prefix writes its sf_state_prefix_len(addr) bytes to |out|.
 * The _at calls take a prefix where the others take |kg| and |addr|, and only
 * append the state's name: a caller that reads and writes one address again
 * and again (the dispatcher's activations) encodes the address once.
 */
size_t sf_state_prefix_len(const sf_addr_t *addr);
void sf_state_prefix(uint8_t *out, uint16_t kg, const sf_addr_t *addr);

/** sf_state_get with |addr|'s prefix (sf_state_prefix). SF_EINVAL for a bad one. */
int sf_state_get_at(sf_state_backend_t *b, sf_state_batch_t *batch, const uint8_t *prefix,
                    size_t plen, const char *name, int64_t now_ms, int flags, sf_buf_t *buf,
                    sf_state_value_t *out);

/** One state as seen by a scan. Pointers are valid during the callback only. */
typedef struct sf_state_entry_s {
    uint16_t key_group;
    sf_addr_t addr;             /* slices, not NUL-terminated */
    const char *name;           /* not NUL-terminated */
    size_t name_len;
    sf_state_value_t value;
} sf_state_entry_t;

/** Scan callback: return 0 to continue, anything else to stop the scan. */
typedef int (*sf_state_entry_cb)(const sf_state_entry_t *e, void *user_data);

/**
 * Calls |cb| for every unexpired state of |addr| (a peek: nothing is touched
 * or deleted), as |batch| (NULL: none) sees it: with write-back, what its
 * cache holds is newer than the store. RocksDB gives them in name order
 * (with a batch's cache: the cached ones last); memory in no set order.
 * Returns 0, the callback's nonzero value if it stopped the scan, SF_EINVAL or
 * SF_ESTATE.
 */
int sf_state_scan_address(sf_state_backend_t *b, sf_state_batch_t *batch, uint16_t kg,
                          const sf_addr_t *addr, int64_t now_ms, sf_state_entry_cb cb,
                          void *user_data);

/**
 * Calls |cb| for every unexpired state of the key groups [kg_lo, kg_hi), key
 * group by key group (within one, in key order for RocksDB and in no set order
 * for memory). Used to restore with another worker count and by the admin API.
 * Returns as sf_state_scan_address.
 */
int sf_state_scan_range(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now_ms,
                        sf_state_entry_cb cb, void *user_data);

/**
 * Reclaims the space of expired values in [kg_lo, kg_hi) examining at most
 * about |budget| addresses, so a worker can call it from its loop in slices.
 * Memory: expired values are freed (a cursor per key group carries on at the
 * next call). RocksDB: |now_ms| becomes the clock of the compaction filter,
 * which drops expired values whenever RocksDB compacts (budget unused). So
 * each worker calls it periodically (say every second) for its own range with
 * either backend; without it, expired values that nobody reads stay stored.
 * Returns the number of entries examined (>= 0). Any thread.
 */
ssize_t sf_state_reclaim(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now_ms,
                         size_t budget);

/**
 * RocksDB: flushes and compacts everything now (blocking; tests and admin
 * only). Memory: nothing. Returns 0 or SF_ESTATE.
 */
int sf_state_compact(sf_state_backend_t *b);

/**
 * RocksDB: writes the memtables to table files and waits (so that a
 * checkpoint right after it has only a small WAL to copy). Memory: nothing.
 * Blocking; any thread; commits may go on meanwhile. Returns 0 or SF_ESTATE.
 */
int sf_state_flush(sf_state_backend_t *b);

/* ------------------------------------------------------------------------ */
/* Batches                                                                    */

/**
 * Creates an empty batch for |b|. Returns 0 and sets |*out| (free with
 * sf_state_batch_free). The runtime aborts on out-of-memory, so this does
 * not fail today.
 */
int sf_state_batch_new(sf_state_backend_t *b, sf_state_batch_t **out);
/** Frees |batch| (NULL is fine); uncommitted operations are dropped. */
void sf_state_batch_free(sf_state_batch_t *batch);
/** Drops every operation, keeping the memory for reuse. */
void sf_state_batch_clear(sf_state_batch_t *batch);
/** The number of operations in |batch| (a key written twice counts twice). */
size_t sf_state_batch_count(const sf_state_batch_t *batch);

/**
 * A savepoint, so that one caller's operations can be taken back out of a
 * batch that others share (several replies committed together). One level:
 * every sf_state_batch_savepoint is followed by exactly one
 * sf_state_batch_rollback (drops every operation added since) or
 * sf_state_batch_release (keeps them), before the next savepoint, commit or
 * clear.
 */
void sf_state_batch_savepoint(sf_state_batch_t *batch);
void sf_state_batch_rollback(sf_state_batch_t *batch);
void sf_state_batch_release(sf_state_batch_t *batch);

/**
 * Write-back (sf_state_options_t.write_back): writes state values that
 * |batch| committed into its cache only to the store, so that a sweep of
 * calls makes the store hold all that was committed before the sweep began
 * (every worker batch sweeps before sf_state_checkpoint). A sweep starts with
 * |*cursor| 0; each call writes at most |max| values (one store write), from
 * |*cursor| on, and moves |*cursor| past them, so a worker's loop can go on
 * between calls. Sets |*written| to the number written (NULL: not wanted).
 * Batch's thread; it ignores what |batch| stages. Returns 1 when the sweep is
 * complete, 0 when it is not yet, or SF_ESTATE (the values stay cached, to
 * be written again; |*cursor| does not move).
 */
int sf_state_batch_write_back(sf_state_batch_t *batch, size_t *cursor, size_t max,
                              size_t *written);

/**
 * Write-back: closes (|closed|) or opens |batch|'s cache to new dirty entries.
 * While closed, a committed state value whose key is not dirty already goes
 * to the store with the commit (as past the dirty bound). Before a
 * checkpoint's pause, so that its write-back while commits are held is small.
 * Without write-back it does nothing. Batch's thread.
 */
void sf_state_batch_close_dirty(sf_state_batch_t *batch, bool closed);

/**
 * Applies every operation of |batch| atomically (one RocksDB WriteBatch, or
 * one pass over the memory maps with each key group locked while it is
 * written), then clears it. Returns 0 or SF_ESTATE (the batch is kept, so the
 * caller may retry or clear it). An empty batch commits at no cost.
 */
int sf_state_batch_commit(sf_state_batch_t *batch);

/**
 * Sets state |name| of |addr| to |type_name| and |data|/|len|, written at
 * |now_ms|. With |mode| AFTER_WRITE or AFTER_INVOKE and |ttl_ms| > 0 the value
 * expires at |now_ms| + |ttl_ms|; |ttl_ms| <= 0 means no expiry. Returns 0 or
 * SF_EINVAL (bad key group or mode).
 */
int sf_state_batch_put(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *addr,
                       const char *name, const char *type_name, const uint8_t *data, size_t len,
                       sf_state_ttl_mode mode, int64_t ttl_ms, int64_t now_ms);

/** Deletes state |name| of |addr| (absent is fine). Returns 0 or SF_EINVAL. */
int sf_state_batch_delete(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *addr,
                          const char *name);

/** sf_state_batch_put and _delete with |addr|'s prefix (sf_state_prefix). */
int sf_state_batch_put_at(sf_state_batch_t *batch, const uint8_t *prefix, size_t plen,
                          const char *name, const char *type_name, const uint8_t *data, size_t len,
                          sf_state_ttl_mode mode, int64_t ttl_ms, int64_t now_ms);
int sf_state_batch_delete_at(sf_state_batch_t *batch, const uint8_t *prefix, size_t plen,
                             const char *name);

/* ------------------------------------------------------------------------ */
/* Timers: delayed messages                                                   */

/**
 * Schedules the opaque message |msg|/|len| (the runtime's encoding of target
 * and argument) to fire at |fire_at_ms|, on behalf of |sender|, whose key
 * group |kg| holds the timer (as in StateFun, where the delayed message lives
 * in the sender's keyed state; the worker owning the sender fires it).
 * |token| (NUL-terminated, NULL or "" for none) names it for cancellation; a
 * token is unique per sender among pending timers.
 *
 * Returns 0, SF_EEXIST when |sender| has a pending timer with |token| (nothing
 * is scheduled; StateFun fails the job here, we let the caller log it and go
 * on), SF_EINVAL (bad key group, negative time) or SF_ESTATE.
 */
int sf_state_batch_timer_schedule(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *sender,
                                  const char *token, int64_t fire_at_ms, const uint8_t *msg,
                                  size_t len);

/**
 * Cancels the pending timer of |sender| named |token|. Returns 1 (it will not
 * fire once the batch commits), 0 (unknown token, already fired or cancelled:
 * a no-op), SF_EINVAL or SF_ESTATE.
 */
int sf_state_batch_timer_cancel(sf_state_batch_t *batch, uint16_t kg, const sf_addr_t *sender,
                                const char *token);

/** A timer as popped or scanned. Pointers are valid during the callback only. */
typedef struct sf_state_timer_s {
    uint16_t key_group;
    int64_t fire_at_ms;
    uint64_t seq;               /* schedule order among timers of equal fire time */
    sf_addr_t sender;
    const char *token;          /* NULL when none; not NUL-terminated */
    size_t token_len;
    const uint8_t *msg;
    size_t msg_len;
} sf_state_timer_t;

/** Timer callback: return 0 to continue, nonzero to stop (scans only). */
typedef int (*sf_state_timer_cb)(const sf_state_timer_t *t, void *user_data);

/**
 * Removes up to |max| timers of the key groups [kg_lo, kg_hi) due at |now_ms|
 * (fire time <= now) and hands them to |cb| in fire order (fire time, then
 * schedule order) across the key groups. The removal is committed before the
 * first callback, so a timer fires once; from then on the caller owns the
 * message (it belongs in the caller's checkpointed pending work). The
 * callback's return value is ignored; it may call into the backend.
 * Returns the number popped (>= 0), SF_EINVAL or SF_ESTATE (nothing popped).
 */
ssize_t sf_state_timers_pop(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi,
                            int64_t now_ms, size_t max, sf_state_timer_cb cb, void *user_data);

/**
 * Sets |*fire_at_ms| to the earliest pending fire time in [kg_lo, kg_hi), so
 * the owner can arm one loop timer. It is never later than the truth and may
 * be earlier after a cancellation (a pop then finds nothing and the next call
 * is exact). Returns 1, 0 (no timer pending), SF_EINVAL or SF_ESTATE.
 */
int sf_state_timers_next(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi,
                         int64_t *fire_at_ms);

/**
 * Calls |cb| for every pending timer of [kg_lo, kg_hi), key group by key
 * group, each in fire order, without removing them. Returns 0, the callback's
 * nonzero value, SF_EINVAL or SF_ESTATE.
 */
int sf_state_timers_scan(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi,
                         sf_state_timer_cb cb, void *user_data);

/* ------------------------------------------------------------------------ */
/* Log records of other layers                                                */

/*
 * A generic ordered key-value space in 256 columns, outside the key groups,
 * committed with the same batches: egress records, ingress log positions,
 * runtime metadata. Keys sort bytewise (use big-endian numbers).
 */

/** Puts |val| under |key| of |column|. Returns 0 or SF_EINVAL (empty key). */
int sf_state_batch_log_put(sf_state_batch_t *batch, uint8_t column, const void *key, size_t klen,
                           const void *val, size_t vlen);
/** Deletes |key| of |column| (absent is fine). Returns 0 or SF_EINVAL. */
int sf_state_batch_log_delete(sf_state_batch_t *batch, uint8_t column, const void *key,
                              size_t klen);

/**
 * Reads |key| of |column| into |buf| (reset first). Returns 1, 0 (absent),
 * SF_EINVAL or SF_ESTATE.
 */
int sf_state_log_get(sf_state_backend_t *b, uint8_t column, const void *key, size_t klen,
                     sf_buf_t *buf);

/** Log scan callback: return 0 to continue, nonzero to stop. */
typedef int (*sf_state_log_cb)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                               void *user_data);

/**
 * Calls |cb| for the records of |column| with key >= |from|/|from_len| (NULL:
 * from the first), in key order, at most |limit| of them (0: no limit).
 * Returns 0, the callback's nonzero value, or SF_ESTATE.
 */
int sf_state_log_scan(sf_state_backend_t *b, uint8_t column, const void *from, size_t from_len,
                      size_t limit, sf_state_log_cb cb, void *user_data);

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                                */

/**
 * Writes a checkpoint of everything committed so far into |dir|, which must
 * not exist (it is created; its parent must exist); with write-back, after
 * sf_state_batch_write_back of every batch. RocksDB:
 * rocksdb_checkpoint_create, hard-linking table files (incremental in space:
 * files shared with earlier checkpoints are not copied) and copying the live
 * WAL, fsynced by RocksDB. Memory: one snapshot file with an XXH3-64 checksum,
 * fsynced, then the directory. Call it while no batch commits (the runtime's
 * coordinated pause, or commits held). Blocking: run it off the loop.
 * Returns 0, SF_EEXIST (|dir| exists), SF_EIO or SF_ESTATE.
 */
int sf_state_checkpoint(sf_state_backend_t *b, const char *dir);

/**
 * Whether sf_state_checkpoint may run while other threads read the store and
 * write the odd record outside batches (a timer sequence reservation). True
 * for RocksDB (its checkpoint is consistent at one instant); false for the
 * memory store, whose snapshot walks the maps: checkpoint it with everyone
 * stopped.
 */
bool sf_state_checkpoint_concurrent(const sf_state_backend_t *b);

#endif /* SF_STATE_BACKEND_H */
