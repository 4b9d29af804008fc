/* statefun-c: Apache License 2.0.
 *
 * The durable ingress log (docs/ingress-log.md): the playground ingress
 * answers 200 only after a message is appended here, and recovery replays
 * the log from the offset recorded in the last complete checkpoint.
 *
 * On disk: a directory (STATE_DIR/ingress/) of segment files named by the
 * first offset they may hold, "%020llu.log". A segment is a sequence of
 * records framed as
 *
 *     [u32 length LE][u32 XXH32(payload, seed 0) LE][payload: length bytes]
 *
 * where the payload is the message's stable encoding (sf_msg_encode) whose
 * |seq| field is the record's offset. Offsets are record sequence numbers:
 * u64, strictly increasing through the log and never reused across restarts
 * (a write that failed may leave a gap, never a repeat). A segment holds the
 * offsets from its name up to the next segment's name.
 *
 * Writing: the I/O thread calls sf_ilog_append (or the persist-hook-shaped
 * sf_ilog_persist). Every append of one loop turn goes into one batch; at
 * the start of the next turn (a uv_idle_t) the batch is handed to the log's
 * writer thread, which gathers every batch waiting for it (group commit:
 * batches pile up while a previous write or fdatasync runs) into ONE
 * pwritev() and, in `always` mode, ONE fdatasync(). The done callbacks then
 * run on the loop (a uv_async_t), in append order. The loop never blocks on
 * the disk. A syncer thread runs the periodic fdatasync of `interval` mode
 * and sf_ilog_sync requests, so acknowledgements never wait for it.
 *
 *   always    done after write() + fdatasync(): survives kill -9 and power loss
 *   interval  done after write() (survives kill -9: the bytes are in the page
 *             cache); fdatasync at most |fsync_interval_ms| (default 5 ms)
 *             after the first unsynced write: a power loss loses at most that
 *             window of acknowledged messages
 *   never     done after write(); the kernel writes back when it likes
 *
 * Opening scans the last segment, cuts a torn tail (a partial record or one
 * whose checksum fails, left by a crash mid-write) with a log line saying
 * how many bytes were dropped, and positions the next offset after the last
 * intact record.
 *
 * Threading: each function says who may call it. The log owns two threads
 * (writer and syncer) between sf_ilog_start and sf_ilog_stop; the loop side
 * (append, done callbacks) belongs to the loop given to sf_ilog_start.
 */
#ifndef SF_INGRESS_LOG_H
#define SF_INGRESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "message.h"
#include "sf_common.h"

/** What an acknowledged append survives; see the file comment. */
typedef enum {
    SF_ILOG_FSYNC_ALWAYS = 0,
    SF_ILOG_FSYNC_INTERVAL = 1,
    SF_ILOG_FSYNC_NEVER = 2,
} sf_ilog_fsync;

/** The default fsync interval of SF_ILOG_FSYNC_INTERVAL. */
#define SF_ILOG_DEFAULT_FSYNC_INTERVAL_MS 5u
/** The default segment size: a new segment starts once a write would pass it. */
#define SF_ILOG_DEFAULT_SEGMENT_BYTES (64ull * 1024 * 1024)
/** The largest record payload (an append of a bigger message fails with SF_ETOOBIG). */
#define SF_ILOG_MAX_RECORD (256u * 1024 * 1024)
/** The bytes of a record's frame before the payload. */
#define SF_ILOG_FRAME_BYTES 8u

typedef struct sf_ilog_config_s {
    const char *dir;            /* created (with parents) if missing; copied */
    sf_ilog_fsync fsync;        /* default SF_ILOG_FSYNC_INTERVAL */
    uint32_t fsync_interval_ms; /* SF_ILOG_FSYNC_INTERVAL only; 0: the default */
    uint64_t segment_bytes;     /* 0: SF_ILOG_DEFAULT_SEGMENT_BYTES */
    uint32_t max_parallelism;   /* to decode messages (their key group); required */
    /**
     * Offsets continue at or above this value. Recovery passes the offset
     * recorded by the checkpoint it restores, so that a log that lost its
     * unsynced tail (power loss in `interval` or `never` mode) never hands
     * out offsets the checkpoint already counts as consumed.
     */
    uint64_t first_offset;
} sf_ilog_config_t;

/** Fills |c| with the defaults (dir NULL, interval mode, 128 key groups). */
void sf_ilog_config_init(sf_ilog_config_t *c);

/** Parses "always", "interval" or "never". Returns 0 or SF_EINVAL. */
int sf_ilog_fsync_parse(const char *text, sf_ilog_fsync *out);
/** "always", "interval" or "never". */
const char *sf_ilog_fsync_name(sf_ilog_fsync mode);

/**
 * Tells the appender how its append ended: |status| 0 when the records are
 * written (and synced, in `always` mode), or a negative SF_E* code (nothing
 * of the append counts as accepted). Same shape as sf_io_persist_done_cb.
 */
typedef void (*sf_ilog_done_cb)(void *token, int status);

/**
 * Takes ownership of |msg| (its |seq| is its offset). Returns 0 to go on, or
 * a negative code that stops the replay and is returned by it.
 */
typedef int (*sf_ilog_replay_cb)(void *user_data, sf_msg_t *msg);

/** A snapshot of the counters (sf_ilog_stats); monotonic unless a gauge. */
typedef struct sf_ilog_stats_s {
    uint64_t records;          /* records appended */
    uint64_t appends;          /* sf_ilog_append calls that returned 0 */
    uint64_t batches;          /* loop-turn batches handed to the writer */
    uint64_t writes;           /* pwritev system calls */
    uint64_t syncs;            /* fdatasync calls on segments */
    uint64_t bytes;            /* bytes written */
    uint64_t write_errors;     /* writes or syncs that failed */
    uint64_t segments_created; /* by this process */
    uint64_t segments_deleted; /* by sf_ilog_truncate_before */
    uint64_t torn_bytes;       /* dropped from a torn tail by sf_ilog_open */
    uint64_t next_offset;      /* gauge: the offset of the next record */
    uint64_t written_offset;   /* gauge: every record below is written */
    uint64_t durable_offset;   /* gauge: every record below is fdatasynced */
    uint64_t segments;         /* gauge: segment files */
} sf_ilog_stats_t;

typedef struct sf_ilog_s sf_ilog_t;

/**
 * Opens (creating if needed) the log in |config->dir|: takes an exclusive
 * lock on the directory, scans the last segment, truncates its torn tail
 * (logged at warn level with the number of bytes dropped) and positions the
 * next offset. The last segment is fdatasynced (in every mode), so records
 * that survived a kill -9 in the page cache are durable from now on.
 * Any thread; the log is then used as the functions below say.
 *
 * Returns 0 and sets |*out|, or SF_EINVAL (bad config), SF_EEXIST (another
 * process or object holds the directory), SF_EIO (a file operation failed;
 * logged), SF_EPROTO (the last intact record does not decode: not a log
 * this version wrote).
 */
int sf_ilog_open(const sf_ilog_config_t *config, sf_ilog_t **out);

/**
 * Starts the writer and syncer threads and binds the loop side to |loop|
 * (an idle and an async handle). Call once, on |loop|'s thread (the I/O
 * thread's on_start hook). Returns 0 or a negative code.
 */
int sf_ilog_start(sf_ilog_t *log, uv_loop_t *loop);

/**
 * Appends every message of |chain| (borrowed: read during the call only;
 * each message's |seq| is set to its offset, in chain order) and calls
 * |done|(|token|, status) exactly once, later, on the loop. Appends of one
 * loop turn share a write. An empty chain completes with 0. Loop thread only,
 * between sf_ilog_start and sf_ilog_stop.
 *
 * Returns 0, or (and |done| is never called) SF_ECANCELED after
 * sf_ilog_stop, SF_ETOOBIG for a message over SF_ILOG_MAX_RECORD, SF_ENOMEM,
 * or the error that made the log unusable (a failed fdatasync: SF_EIO).
 */
int sf_ilog_append(sf_ilog_t *log, const sf_msg_fifo_t *chain, sf_ilog_done_cb done, void *token);

/**
 * sf_ilog_append with the shape of sf_io_hooks_t.persist (|log| is the
 * sf_ilog_t). Same thread and contract.
 */
int sf_ilog_persist(void *log, const sf_msg_fifo_t *chain, sf_ilog_done_cb done, void *token);
/** sf_ilog_start and sf_ilog_stop with the shapes of on_start / on_stop. */
void sf_ilog_on_start(void *log, uv_loop_t *loop);
void sf_ilog_on_stop(void *log, uv_loop_t *loop);

/**
 * Finishes: hands over the open batch, lets the writer write everything
 * (and, in `interval` mode, fdatasync it), joins both threads, calls the
 * done callbacks still owed (from inside this call), and closes the loop
 * handles. Later appends fail with SF_ECANCELED. Loop thread only; not from
 * a done callback. The loop must run once more (to close the handles)
 * before sf_ilog_free. Idempotent.
 */
void sf_ilog_stop(sf_ilog_t *log);

/**
 * Closes the files and frees |log| (NULL is fine). Call after sf_ilog_stop
 * and after the loop ran the handles' close callbacks, or when the log was
 * never started. Any thread.
 */
void sf_ilog_free(sf_ilog_t *log);

/**
 * Calls |cb| with every record at or above offset |from|, in offset order,
 * each decoded into a new message (owned by |cb|). Reads what was written
 * when the call began. A corrupt stretch of a segment that is not the last
 * (possible only after a power loss in `never` mode, or a damaged disk) is
 * logged at error level, skipped, and the replay goes on with the next
 * segment. Any thread; meant for recovery, before sf_ilog_start.
 *
 * Returns 0, |cb|'s negative code, SF_EIO (a read failed), or SF_EPROTO (an
 * intact record that does not decode, or offsets out of order).
 */
int sf_ilog_replay(sf_ilog_t *log, uint64_t from, sf_ilog_replay_cb cb, void *user_data);

/**
 * Deletes the segments whose records are all below |offset| (after a
 * checkpoint that no longer needs them). The last segment is never deleted.
 * Any thread. Returns the number of segments deleted, or SF_EIO when an
 * unlink failed (logged; the segment is forgotten anyway).
 */
ssize_t sf_ilog_truncate_before(sf_ilog_t *log, uint64_t offset);

/**
 * Blocks until every record written before the call is fdatasynced, in any
 * mode (the checkpoint coordinator may use it). Any thread except the
 * loop's. Returns 0, the log's error, or SF_ECANCELED when the log stopped.
 */
int sf_ilog_sync(sf_ilog_t *log);

/** The offset the next record gets. Any thread. */
uint64_t sf_ilog_next_offset(const sf_ilog_t *log);
/**
 * A lower bound of the offsets still on disk (the first segment's name, or
 * the next offset when the log is empty). Recovery checks that it is not
 * above the checkpoint's offset. Any thread.
 */
uint64_t sf_ilog_first_offset(sf_ilog_t *log);

/** Copies the counters into |out|. Any thread. */
void sf_ilog_stats(const sf_ilog_t *log, sf_ilog_stats_t *out);

#endif /* SF_INGRESS_LOG_H */
