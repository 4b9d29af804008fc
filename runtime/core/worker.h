/* statefun-c: Apache License 2.0.
 *
 * A worker: one thread running its own libuv loop and owning a contiguous
 * range of key groups. Everything about the addresses of those key groups
 * (activations, backlogs, in-flight batches, timers, HTTP clients) belongs to
 * the worker and is touched only by its thread.
 *
 * Message flow: a message for key group kg goes to the worker that owns kg.
 * Messages from the worker's own functions go straight to its inbox;
 * messages for other workers collect in per-destination outboxes and leave
 * as one chain per destination at every commit point of a pump (every
 * SF_WORKER_COMMIT_EVERY deliveries and at the slice's end): one wake-up per
 * batch, never per message, and early enough that the other worker runs the
 * first batch while this one makes the next (flushed once per slice of up to
 * SF_WORKER_BUDGET, two workers ping-ponging took turns, each idle half the
 * time: docs/benchmarks.md). Other threads (the I/O thread, other workers)
 * push into the worker's mailbox.
 *
 * The pump drains the mailbox into the inbox and delivers at most
 * SF_WORKER_BUDGET messages per loop turn; when work remains it re-arms an
 * idle handle, so timers and I/O still run between slices.
 *
 * Threading: sf_worker_send_from is "any thread" (it pushes into the
 * mailbox); everything else is "worker thread only" unless said otherwise.
 */
#ifndef SF_WORKER_H
#define SF_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "actmap.h"
#include "mailbox.h"
#include "message.h"

#define SF_WORKER_BUDGET 4096
#define SF_WORKER_MAX_LOAD 4096
/* The pump calls the group's commit hook after this many deliveries (and at
 * the end of every slice): the most work one commit waits for. */
#define SF_WORKER_COMMIT_EVERY 256

typedef struct sf_worker_s sf_worker_t;
typedef struct sf_workers_s sf_workers_t;

/** Delivers |m| (owned by the callee from now on) on |w|'s thread. */
typedef void (*sf_worker_deliver_cb)(sf_worker_t *w, sf_msg_t *m);
/** Runs on |w|'s thread once its loop starts (and before any delivery). */
typedef void (*sf_worker_start_cb)(sf_worker_t *w);
/** Runs on |w|'s thread when stopping; must close the caller's handles. */
typedef void (*sf_worker_stop_cb)(sf_worker_t *w);
/**
 * The commit point: runs on |w|'s thread after every SF_WORKER_COMMIT_EVERY
 * deliveries, at the end of every pump slice and once per loop turn after
 * I/O callbacks, so that work staged by deliveries and replies is written
 * together (one state commit per group, not per message). Messages it routes
 * leave with the outbox flush that follows it.
 */
typedef void (*sf_worker_commit_cb)(sf_worker_t *w);
/**
 * Runs on |w|'s thread during a pause, once every worker has stopped (see
 * sf_workers_pause). |local| holds the messages for |w| not yet delivered
 * (its inbox, then what its mailbox had); |out| the messages |w| sent to
 * other workers that are still in its outboxes. Every message in |out| was
 * sent after every message for the same destination in that worker's
 * |local|. The callee reads them without taking them.
 */
typedef void (*sf_worker_pause_cb)(sf_worker_t *w, const sf_msg_fifo_t *local,
                                   const sf_msg_fifo_t *out, void *arg);

/** A function another thread runs on a worker's thread (sf_worker_call). */
typedef void (*sf_worker_call_fn)(sf_worker_t *w, void *arg);
typedef struct sf_worker_call_s sf_worker_call_t;

struct sf_worker_s {
    void *data;                 /* public: the dispatcher's per-worker state */
    uint32_t id;                /* read-only */
    uint32_t kg_begin, kg_end;  /* read-only: owned key groups [begin, end) */
    sf_workers_t *group;        /* read-only */
    uv_loop_t loop;             /* read-only: the worker's own loop */

    _Atomic uint64_t delivered; /* read-only, any thread: messages delivered */
    /* read-only, any thread: messages routed to this worker and not yet
     * completed (queued, backlogged or in flight). The ingress stops
     * accepting for a worker whose load is over SF_WORKER_MAX_LOAD, which
     * bounds the work a checkpoint must record. */
    _Atomic int64_t load;

    /* private */
    uv_thread_t _thread;
    sf_mailbox_t _mailbox;
    uv_idle_t _pump;
    uv_check_t _turn;           /* the commit point after each turn's I/O */
    uv_async_t _release;        /* commits are no longer held */
    uv_async_t _stop;
    uv_async_t _pause;
    uv_async_t _call;           /* calls are waiting */
    uv_mutex_t _call_lock;      /* guards the three below */
    uv_cond_t _call_done;
    sf_worker_call_t *_calls;   /* waiting calls, newest first */
    bool _accepting;            /* between start and stop: calls are taken */
    _Atomic bool _call_waiting; /* _calls is not empty: the pump runs them at its
                                   commit points too (a slice can be long) */
    sf_msg_fifo_t _inbox;
    sf_msg_fifo_t *_outbox;     /* [group->n] */
    bool _pump_armed;
    bool _started;
};

/**
 * Another thread that must stand still during a pause (the I/O thread, so
 * that no message enters a mailbox meanwhile). Initialize |async| on that
 * thread's loop with sf_pause_extra_init before the loop runs; |cb| runs on
 * that thread while everyone stands still.
 */
typedef struct sf_pause_extra_s {
    uv_async_t async;          /* private */
    sf_workers_t *_g;          /* private */
    void (*cb)(void *arg);     /* public: may be NULL */
    void *arg;                 /* public */
} sf_pause_extra_t;

/** All workers of a runtime, and what they share (immutable once started). */
struct sf_workers_s {
    uint32_t n;
    uint32_t max_parallelism;
    sf_worker_t **w;
    sf_worker_deliver_cb deliver;
    sf_worker_start_cb on_start;
    sf_worker_stop_cb on_stop;
    sf_worker_commit_cb commit; /* public: may be NULL; set before sf_workers_start */
    /* public: may be NULL; set before sf_workers_start. Runs on a worker's
     * thread when it takes messages again: its load falls below
     * SF_WORKER_MAX_LOAD (sf_worker_done), or its dispatcher unblocks a key
     * group. */
    void (*on_room)(sf_workers_t *g);
    void *data;                 /* public: the runtime */

    /* private: the pause in progress (set by the pausing thread) */
    sf_pause_extra_t *_extra;  /* at most one other thread pauses with the workers */
    _Atomic bool _pausing;     /* a pause is requested: pumps end their slice early */
    /* The rendezvous of a pause (worker.c): under _lock, threads count
     * themselves in |_stopped| then |_done|; a paused thread waits until
     * |_go| reaches the pause's generation |_gen|. One condition variable
     * per wait, so that each wake-up reaches only the threads it concerns. */
    uv_mutex_t _lock;
    uv_cond_t _all_stopped;     /* paused threads wait for each other */
    uv_cond_t _all_done;        /* the pausing thread waits for them */
    uv_cond_t _go_cond;         /* paused threads wait for the go */
    uint32_t _parties;         /* threads that pause: workers + extra */
    uint32_t _stopped, _done;
    uint64_t _gen, _go;
    _Atomic bool _hold;        /* commit points do nothing (sf_workers_hold_commits) */
    sf_worker_pause_cb _pause_cb;
    void *_pause_arg;
};

/**
 * Creates |n| workers over |max_parallelism| key groups (threads not started).
 * Returns 0 or SF_EINVAL (n == 0 or n > max_parallelism).
 */
int sf_workers_init(sf_workers_t *g, uint32_t n, uint32_t max_parallelism,
                    sf_worker_deliver_cb deliver, sf_worker_start_cb on_start,
                    sf_worker_stop_cb on_stop, void *data);
/** Starts every worker's thread. */
int sf_workers_start(sf_workers_t *g);
/** Asks every worker to stop and joins the threads. Any thread but a worker's. */
void sf_workers_stop(sf_workers_t *g);
/** Frees what sf_workers_init allocated (after stop). */
void sf_workers_dispose(sf_workers_t *g);

/** The worker owning key group |kg|. */
static inline sf_worker_t *sf_workers_owner(sf_workers_t *g, uint32_t kg)
{
    return g->w[sf_key_group_owner(kg, g->n, g->max_parallelism)];
}

/**
 * Routes |m| from worker |w| (worker thread only): into w's own inbox when w
 * owns it, else into the outbox for its owner, flushed at the end of the
 * pump. Takes ownership of |m|.
 */
void sf_worker_route(sf_worker_t *w, sf_msg_t *m);

/**
 * Routes a chain of messages from a thread that is not a worker (ingress,
 * timers of the I/O thread): one mailbox push per destination worker. Takes
 * ownership of every message of |chain|. Any thread.
 */
void sf_workers_route_chain(sf_workers_t *g, sf_msg_fifo_t *chain);

/**
 * Stops every worker at a safe point (between two loop callbacks), then runs
 * |cb| on each worker's thread while all of them stand still (so no message
 * moves between workers meanwhile), and returns once every |cb| is done.
 * The workers stay stopped until sf_workers_resume. Returns the pause's
 * duration so far in microseconds. Any thread but a worker's; the workers
 * must be running.
 */
uint64_t sf_workers_pause(sf_workers_t *g, sf_worker_pause_cb cb, void *arg);
/**
 * Registers |x| (one at most) to pause with the workers: initializes its
 * async handle on |loop|, which must not be running yet. Main thread, before
 * the first pause. Close x->async on its loop when that thread stops.
 */
int sf_pause_extra_init(sf_workers_t *g, sf_pause_extra_t *x, uv_loop_t *loop);

/** Lets the workers go on after sf_workers_pause. Same thread. */
void sf_workers_resume(sf_workers_t *g);

/**
 * Holds (|hold| true) or releases the workers' commits. While held the
 * workers run, but their commit points do nothing: replies stay staged and
 * nothing a worker does writes the state store (see
 * sf_workers_commits_held), so the store can be checkpointed while the
 * workers go on. A release makes every worker commit at once. Any thread but
 * a worker's; to take effect at a known point, hold between
 * sf_workers_pause and sf_workers_resume.
 */
void sf_workers_hold_commits(sf_workers_t *g, bool hold);

/** Whether commits are held: a worker must not write the state store then. */
static inline bool sf_workers_commits_held(sf_workers_t *g)
{
    return atomic_load_explicit(&g->_hold, memory_order_acquire);
}

/** |n| messages routed to |w| are completed (processed, or dropped). */
static inline void sf_worker_done(sf_worker_t *w, size_t n)
{
    int64_t was = atomic_fetch_sub_explicit(&w->load, (int64_t)n, memory_order_relaxed);
    if (was >= SF_WORKER_MAX_LOAD && was - (int64_t)n < SF_WORKER_MAX_LOAD && w->group->on_room)
        w->group->on_room(w->group);
}

/**
 * Runs |fn| on |w|'s thread, between two of its loop callbacks or at a commit
 * point of a long pump slice (right after the commit), and returns once it
 * has run: 0, or SF_ECANCELED when the worker is not running (not
 * started or stopping). A way for another thread to read what only the worker
 * may touch (the admin API reads an address's state on its owner, where no
 * commit can change it meanwhile). Waits while the workers are paused. Any
 * thread but a worker's.
 */
int sf_worker_call(sf_worker_t *w, sf_worker_call_fn fn, void *arg);

/**
 * A step of work that a worker runs once a loop turn, with its loop going on
 * in between, until it returns true (done).
 */
typedef bool (*sf_worker_step_fn)(sf_worker_t *w, void *arg);

/**
 * Runs |step| with |args|[i] on worker i's thread (none when |args|[i] is
 * NULL), on every worker at once, once a loop turn until it returns true, and
 * returns when every one is done; |rvs|[i] (|rvs| NULL: not wanted) is worker
 * i's result (0, or SF_ECANCELED when the worker stopped first; 0 for a worker
 * skipped). Any thread but a worker's.
 */
void sf_workers_step_each(sf_workers_t *g, sf_worker_step_fn step, void *const *args, int *rvs);

/** Makes sure the pump runs again in this turn (e.g. after re-queueing). */
void sf_worker_kick(sf_worker_t *w);

#endif
