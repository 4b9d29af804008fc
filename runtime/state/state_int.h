/* statefun-c: Apache License 2.0.
 *
 * Internals shared by backend.c (the semantics: TTL, timers, tokens, scans)
 * and the two stores behind it, rocksdb_store.c and memory_store.c. A store
 * is an ordered map of byte keys (codec.h) with point reads, bounded scans,
 * atomic batches and checkpoints; everything above that is common code, so
 * both backends behave the same by construction.
 *
 * Threading: as backend.h. The store functions are "any thread" under the
 * key group contract; a store batch belongs to one thread.
 */
#ifndef SF_STATE_INT_H
#define SF_STATE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "codec.h"

/** Store scan callback: return 0 to go on, nonzero to stop. */
typedef int (*sf__kv_cb)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                         void *user_data);

typedef struct sf__store_vt_s {
    const char *kind;
    void (*close)(sf_state_backend_t *b);
    /* Appends the value of |key| to |out|. Returns 1, 0 (absent) or SF_ESTATE. */
    int (*get)(sf_state_backend_t *b, const uint8_t *key, size_t klen, sf_buf_t *out);
    /*
     * Calls |cb| for keys in [lo, hi) in key order (memory: state keys of a
     * key group in no set order), at most |limit| (0: all). Both bounds share
     * their first three bytes (one key group and kind) or start with 0xFF.
     * The callback may call into the backend. Returns 0, the callback's
     * nonzero value, or SF_ESTATE.
     */
    int (*scan)(sf_state_backend_t *b, const uint8_t *lo, size_t lolen, const uint8_t *hi,
                size_t hilen, size_t limit, sf__kv_cb cb, void *user_data);
    void (*batch_init)(sf_state_batch_t *batch);
    void (*batch_dispose)(sf_state_batch_t *batch);
    void (*batch_clear)(sf_state_batch_t *batch);
    /* |val| NULL: delete. */
    void (*batch_op)(sf_state_batch_t *batch, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen);
    /* Applies the batch atomically. Returns 0 or SF_ESTATE; does not clear. */
    int (*batch_write)(sf_state_batch_t *batch);
    /* The one-level savepoint of the store's batch (sf_state_batch_savepoint):
     * set, go back to it, or forget it. */
    void (*batch_savepoint)(sf_state_batch_t *batch);
    void (*batch_rollback)(sf_state_batch_t *batch);
    void (*batch_release)(sf_state_batch_t *batch);
    ssize_t (*reclaim)(sf_state_backend_t *b, uint32_t kg_lo, uint32_t kg_hi, int64_t now,
                       size_t budget);
    int (*compact)(sf_state_backend_t *b);
    /* Writes memtables out (RocksDB), blocking; NULL: nothing to do. */
    int (*flush)(sf_state_backend_t *b);
    int (*checkpoint)(sf_state_backend_t *b, const char *dir);
    /* See sf_state_checkpoint_concurrent. */
    bool checkpoint_concurrent;
    /* A worker's batch keeps a read cache of the state it reads and commits (vcache.h):
     * worth it when a get costs more than a hash lookup. Needs batch_iterate. */
    bool cache_reads;
    /* Calls |cb| for each operation of the batch, in order (|val| NULL: a delete). */
    void (*batch_iterate)(sf_state_batch_t *batch, sf__kv_cb cb, void *user_data);
} sf__store_vt_t;

/* The earliest-timer cache per key group: a lower bound of the first pending
 * fire time, UNKNOWN (recompute with one seek) or NONE. */
#define SF__TMIN_UNKNOWN INT64_MIN
#define SF__TMIN_NONE INT64_MAX

struct sf_state_backend_s {
    const sf__store_vt_t *vt;
    void *store;                      /* the implementation's state */
    uint32_t max_parallelism;
    _Atomic int64_t *timer_min;       /* [max_parallelism] */
    /* Per key group: every pending timer fires at or after timer_floor[kg].
     * Seeks start there, above the tombstones of timers already popped. */
    _Atomic int64_t *timer_floor;     /* [max_parallelism] */
    /* Timer sequence numbers: handed out from |seq_next|; numbers below
     * |seq_reserved| are recorded in the store (meta "timer_seq"), so none is
     * reused after a restart. Reserving takes |seq_lock|. */
    _Atomic uint64_t seq_next;
    _Atomic uint64_t seq_reserved;
    pthread_mutex_t seq_lock;
    _Atomic int64_t clock;            /* latest now_ms given to sf_state_reclaim */
    bool write_back;                  /* sf_state_options_t.write_back, with a cache */
};

struct sf_state_batch_s {
    sf_state_backend_t *backend;
    void *impl;                       /* the store's batch */
    size_t count;
    sf__sbuf_t key;                   /* encoding scratch */
    sf__sbuf_t val;
    sf__sbuf_t key2;
    /* Tokens touched by this batch, newest last: records of
     * [state:1 (1 pending, 0 gone)] [klen:4] [token key] [timer key: 19 when pending]. */
    sf__sbuf_t tokens;
    /* Timers scheduled by this batch: (kg, fire_at) pairs for the cache. */
    sf__sbuf_t scheduled;
    sf_buf_t tmp;                     /* store reads made while building the batch */
    /* The state cache (vcache.h; NULL: none): takes the batch's state writes once
     * they are committed. */
    struct sf__vcache_s *cache;
    /* Write-back: the state writes staged for the cache, not the store: records of
     * [klen, vlen: two host uint32, vlen UINT32_MAX for a delete] [key] [value]. */
    sf__sbuf_t staged;
    size_t nstore;                    /* operations in the store's batch */
    uint32_t sweep;                   /* write-back: the cache's sweep under way */
    struct sf_state_batch_s *out;     /* write-back: the batch sf_state_batch_write_back
                                         writes with (made on first use) */
    /* The savepoint: the lengths above when it was set (the store keeps its own). */
    struct {
        size_t count, tokens, scheduled, impl, staged, nstore;
    } sp;
};

/** Opens the RocksDB store on |opts->dir| into |b->store| (b->vt set). */
int sf__rocks_open(sf_state_backend_t *b, const sf_state_options_t *opts);
/** Replaces |opts->dir| with the files of the checkpoint |cpdir|. */
int sf__rocks_restore(const sf_state_options_t *opts, const char *cpdir);
/** Opens an empty memory store into |b->store| (b->vt set). */
int sf__mem_open(sf_state_backend_t *b, const sf_state_options_t *opts);
/** Loads the snapshot in |cpdir| into the empty memory store of |b|. */
int sf__mem_load(sf_state_backend_t *b, const char *cpdir);

/** Writes one key (|val| NULL: deletes it) at once. */
int sf__store_write1(sf_state_backend_t *b, const uint8_t *key, size_t klen, const uint8_t *val,
                     size_t vlen);

/** The decision of the RocksDB compaction filter: true drops |key|. */
bool sf__expired_entry(sf_state_backend_t *b, const uint8_t *key, size_t klen, const uint8_t *v,
                       size_t vlen);

/** sf_fs_mkdirs (fs.h), logging a failure. Returns 0, SF_EINVAL or SF_EIO. */
int sf__mkdirs(const char *dir);

#endif /* SF_STATE_INT_H */
