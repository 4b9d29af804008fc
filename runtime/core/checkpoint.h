/* statefun-c: Apache License 2.0.
 *
 * Checkpoints (docs/checkpointing.md): the coordinator that pauses the
 * workers, has each write its pending work into the state store, takes the
 * state backend's checkpoint, and completes it with a MANIFEST written last;
 * finding the newest complete checkpoint at start (verifying its files) and
 * garbage-collecting old ones.
 *
 * Layout: STATE_DIR/checkpoints/chk-NNNNNNNNNNNNNNNNNNNN/{state/, MANIFEST}
 * (savepoints use the same layout in a directory the user names).
 *
 * Threading: the coordinator functions run on one non-worker thread (the
 * main thread's loop); they block it for the duration of a checkpoint.
 */
#ifndef SF_CHECKPOINT_H
#define SF_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "rt.h"

/** What a checkpoint's MANIFEST says. */
typedef struct sf_manifest_s {
    uint64_t id;
    int64_t time_ms;
    uint64_t routed_upto;    /* ingress log offset: below it, all was routed */
    uint32_t max_parallelism;
    uint32_t workers;
    char backend[16];        /* "rocksdb" or "memory" */
    uint64_t bytes;          /* sum of the file sizes */
    uint64_t pending;        /* pending messages recorded */
} sf_manifest_t;

/** Measurements of one checkpoint. */
typedef struct sf_checkpoint_stats_s {
    uint64_t pause_us;       /* workers stopped */
    uint64_t hold_us;        /* after the pause: workers run, commits held (store checkpoint) */
    uint64_t duration_us;    /* start to MANIFEST durable */
    uint64_t bytes;          /* files of the checkpoint */
    uint64_t new_bytes;      /* of which not hard-linked from the previous one */
} sf_checkpoint_stats_t;

typedef struct sf_checkpointer_s sf_checkpointer_t;

/**
 * Creates the coordinator for |rt|, whose next checkpoint gets id
 * |next_id|, keeping the newest |retained| checkpoints under
 * STATE_DIR/checkpoints. Main thread.
 */
sf_checkpointer_t *sf_checkpointer_new(sf_rt_t *rt, uint64_t next_id, uint32_t retained);
void sf_checkpointer_free(sf_checkpointer_t *c);
/**
 * The smallest ingress offset a retained checkpoint may replay from: the
 * ingress log must keep every record at or above it. Reads the MANIFESTs of
 * the retained checkpoints. Main thread.
 */
uint64_t sf_checkpointer_oldest_routed(sf_checkpointer_t *c);

/**
 * Appends to |chain| the pending work recorded in checkpoint |path| taken
 * with |workers| workers, in the order recovery must route it. Returns 0,
 * SF_EIO or SF_ESTATE (a file that does not decode).
 */
int sf_checkpoint_read_pending(const char *path, uint32_t workers, uint32_t maxp,
                               sf_msg_fifo_t *chain);

/** Removes |dir| and everything under it (no symlinks followed). */
void sf_checkpoint_remove_dir(const char *dir);

/** The id the next checkpoint will get. */
uint64_t sf_checkpointer_next_id(const sf_checkpointer_t *c);

/**
 * Takes a checkpoint into STATE_DIR/checkpoints (|dir| NULL) or into |dir|
 * (a savepoint: a directory that must not exist and is never collected).
 * The ingress offset the I/O thread had routed up to at the pause is
 * recorded in the manifest. The workers must be running.
 * Returns 0 and fills |stats| (may be NULL), or a negative SF_E* after logging
 * why (a partial checkpoint directory is removed).
 */
int sf_checkpointer_take(sf_checkpointer_t *c, const char *dir, sf_checkpoint_stats_t *stats);

/**
 * Finds the newest complete checkpoint under STATE_DIR/checkpoints: a
 * MANIFEST that parses and files that match their sizes and checksums. Torn
 * or corrupt ones are logged and skipped. Returns 1 and sets |*path| (caller
 * frees) and |m|, 0 when there is none, or a negative SF_E*.
 */
int sf_checkpoint_find_latest(const char *state_dir, char **path, sf_manifest_t *m);

/**
 * Reads and verifies the checkpoint in |path|. Returns 0 and fills |m|,
 * SF_ENOTFOUND (no MANIFEST) or SF_ESTATE (a file is missing, has another
 * size or checksum, or the MANIFEST does not parse).
 */
int sf_checkpoint_verify(const char *path, sf_manifest_t *m);

#endif
