/* statefun-c: Apache License 2.0.
 *
 * The per-worker dispatcher: delivers messages to addresses with the
 * semantics of SPEC section 7.
 *
 * - At most one batch in flight per address; messages that arrive meanwhile
 *   wait in the address's backlog and go, all together and in order, as the
 *   next batch. Past maxNumBatchRequests backlogged messages the address is
 *   blocked: its key group's flag tells the ingress to answer 503.
 * - Each request carries every state registered for the function type. An
 *   IncompleteInvocationContext registers the missing specs and the same
 *   batch is sent again.
 * - The mutations, delayed messages and egress records of a reply are
 *   staged whole (or not at all) into the worker's commit group; the
 *   worker's commit point writes the group in one state batch, then routes
 *   the outgoing messages and hands egress records to the I/O thread.
 * - A failed attempt (transport error, non-200, a reply that does not parse)
 *   is retried with capped exponential backoff, the address kept blocked and
 *   its messages in order; past the endpoint's call timeout the endpoint is
 *   reported unhealthy and retries go on.
 * - Delayed messages live in the state backend's timers of the sender's key
 *   group; one uv timer per worker fires them.
 *
 * Threading: everything runs on the owning worker's thread; the callbacks
 * are installed with sf_workers_init by the runtime.
 */
#ifndef SF_DISPATCH_H
#define SF_DISPATCH_H

#include "rt.h"
#include "worker.h"

/** sf_worker_start_cb: creates the worker's dispatcher (w->data). */
void sf_dispatch_start(sf_worker_t *w);
/** sf_worker_deliver_cb: takes ownership of |m|. */
void sf_dispatch_deliver(sf_worker_t *w, sf_msg_t *m);
/** sf_worker_stop_cb: closes the dispatcher's handles; frees it once closed. */
void sf_dispatch_stop(sf_worker_t *w);
/**
 * sf_worker_commit_cb: commits the replies staged since the last commit
 * point in one state batch, then completes them: routes their messages,
 * hands their egress records on, and starts the next batch of each address
 * with a backlog. Replies staged meanwhile (an embedded function answers at
 * once) form the next group. A failed commit fails (and retries) every reply
 * of the group.
 */
void sf_dispatch_commit(sf_worker_t *w);

/**
 * The log column holding exactly-once egress records until they are
 * published: key [epoch u64][worker u32][seq u64] big-endian, value the
 * record as an SF_MSG_EGRESS message in its stable encoding. The epoch is the
 * id of the checkpoint that will cover the record (sf_rt_t.epoch).
 */
#define SF_LOG_COL_EGRESS 2
#define SF_EGRESS_KEY_LEN 20
void sf_egress_key(uint8_t key[SF_EGRESS_KEY_LEN], uint64_t epoch, uint32_t worker, uint64_t seq);
/** The epoch of an egress record's key (0 for a key of another length). */
uint64_t sf_egress_key_epoch(const uint8_t *key, size_t klen);

/** What sf_dispatch_snapshot takes and reports. */
typedef struct sf_snapshot_arg_s {
    uint64_t id;          /* the checkpoint */
    sf_buf_t *local;      /* [workers]: per worker, the messages for it */
    sf_buf_t *out;        /* [workers]: per worker, what it sent to others */
    _Atomic uint64_t messages; /* pending messages recorded */
} sf_snapshot_arg_t;

/**
 * sf_worker_pause_cb for a checkpoint (|arg| is an sf_snapshot_arg_t):
 * appends the worker's pending work, in its stable encoding, to
 * local[w->id] — every address's in-flight batch, then its backlog, then
 * |local| — and |out| to out[w->id]. Recovery routes every worker's local
 * part before any out part, which keeps each sender's order. Memory only:
 * the coordinator writes the buffers out after the pause. Worker thread,
 * during a pause.
 */
void sf_dispatch_snapshot(sf_worker_t *w, const sf_msg_fifo_t *local, const sf_msg_fifo_t *out,
                          void *arg);

/**
 * The worker's state batch: what reads of its key groups go through (with
 * write-back its cache holds state newer than the store). Worker thread.
 */
sf_state_batch_t *sf_dispatch_batch(sf_worker_t *w);

/**
 * sf_worker_step_fn for a checkpoint (|arg| is an sf_write_back_arg_t,
 * zeroed): writes the state the worker's batch caches back into the store
 * (sf_state_batch_write_back), SF_WRITE_BACK_STEP values a step (a loop turn
 * or a commit point), so that the worker goes on between steps; all at once
 * while commits are held. Worker thread.
 */
#define SF_WRITE_BACK_STEP 64
typedef struct sf_write_back_arg_s {
    bool close_dirty; /* in: sf_state_batch_close_dirty with this, first */
    size_t cursor; /* where the next step starts */
    int rv;        /* 0, or SF_ESTATE (the sweep stopped) */
    size_t n;      /* values written */
} sf_write_back_arg_t;
bool sf_dispatch_write_back(sf_worker_t *w, void *arg);

/** Retry backoff: first delay, cap (milliseconds). */
#define SF_RETRY_MIN_MS 10
#define SF_RETRY_MAX_MS 2000

/** Idle activations a worker keeps for addresses that get their next message soon. */
#define SF_DISPATCH_IDLE_ACTS 4096

/** Expired-state reclaim: how often, and how many addresses per slice. */
#define SF_RECLAIM_INTERVAL_MS 1000
#define SF_RECLAIM_BUDGET 2000

#endif
