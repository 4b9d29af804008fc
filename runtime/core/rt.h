/* statefun-c: Apache License 2.0.
 *
 * The running runtime: what every thread shares. Everything here is set up on
 * the main thread before any worker or the I/O thread starts and is read-only
 * afterwards, except the atomics (backpressure flags and metrics), which any
 * thread updates.
 */
#ifndef SF_RT_H
#define SF_RT_H

#include <stdatomic.h>
#include <stdint.h>

#include "embedded.h"
#include "io.h"
#include "module.h"
#include "options.h"
#include "backend.h"
#include "worker.h"

/** Per-function-type counters, summed over workers (any thread adds). */
typedef struct sf_fn_metrics_s {
    char name[128];                  /* "ns/type" */
    _Atomic uint64_t messages_in;    /* delivered to the function */
    _Atomic uint64_t out_local;      /* messages sent to addresses of this process */
    _Atomic uint64_t out_delayed;    /* delayed messages scheduled */
    _Atomic uint64_t egress;         /* egress records produced */
    _Atomic uint64_t invocations;    /* batches invoked successfully */
    _Atomic uint64_t failures;       /* failed attempts (status, timeout, malformed reply) */
    _Atomic int64_t backlog;         /* gauge: messages waiting in backlogs */
    _Atomic int64_t blocked;         /* gauge: addresses over maxNumBatchRequests */
    _Atomic uint64_t latency_buckets[16]; /* remote round trip, see SF_LATENCY_BOUNDS_US */
    _Atomic uint64_t latency_sum_us;
    _Atomic uint64_t latency_count;
} sf_fn_metrics_t;

#define SF_MAX_FN_METRICS 256
#define SF_LATENCY_BUCKETS 12
/* Upper bounds of the latency histogram buckets in microseconds (last: +Inf). */
#define SF_LATENCY_BOUNDS_US                                                                       \
    {250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, UINT64_MAX}

struct sf_checkpointer_s;
struct sf_ilog_s;
struct sf_checkpoint_stats_s;

/* Ingress-to-commit latency histogram: upper bounds in microseconds. */
#define SF_COMMIT_BUCKETS 14
#define SF_COMMIT_BOUNDS_US                                                                        \
    {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,      \
     UINT64_MAX}

typedef struct sf_rt_s {
    const sf_options_t *opts;
    const sf_module_t *mod;
    sf_state_backend_t *state;
    sf_workers_t workers;
    sf_io_t *io;
    struct sf_admin_s *admin;        /* the --admin listener (runtime/admin/admin.h) */
    sf_embedded_t **embedded;        /* parallel to mod->embedded */
    _Atomic uint32_t *blocked_kg;    /* [max_parallelism]: blocked addresses per key group */
    _Atomic uint32_t *unhealthy;     /* [mod->nendpoints]: workers that see it failing */
    _Atomic int stopping;
    /* Metrics per function type: slots claimed once, never freed. */
    sf_fn_metrics_t fn_metrics[SF_MAX_FN_METRICS];
    _Atomic uint32_t nfn_metrics;
    /* From the ingress routing a message to the commit of the batch that
     * processed it (state mutations applied). */
    _Atomic uint64_t commit_buckets[SF_COMMIT_BUCKETS];
    _Atomic uint64_t commit_sum_us;
    _Atomic uint64_t commit_count;
    pthread_mutex_t fn_metrics_lock; /* only for claiming a slot */
    /* Checkpoints: the coordinator (main thread) and its metrics. */
    struct sf_checkpointer_s *checkpointer;
    struct sf_ilog_s *ilog;                /* the durable ingress log (checkpoints on) */
    _Atomic uint64_t epoch;                /* id of the next checkpoint: tags egress records */
    sf_pause_extra_t io_pause;             /* the I/O thread's part in a pause */
    uint64_t routed_upto;                  /* I/O thread: ingress offsets below were routed */
    uint64_t routed_upto_at_pause;         /* its value at the last pause (read after it) */
    /* Savepoint requests from other threads, served on the main loop. */
    uv_async_t savepoint_async;
    uv_mutex_t savepoint_lock;
    uv_cond_t savepoint_cond;
    const char *savepoint_dir;             /* the request in progress, under the lock */
    int savepoint_rv;
    bool savepoint_done;
    bool savepoint_ready;                  /* the main loop serves requests */
    _Atomic uint64_t checkpoints;          /* completed */
    _Atomic uint64_t checkpoint_failures;
    _Atomic uint64_t checkpoint_pause_us;  /* last */
    _Atomic uint64_t checkpoint_hold_us;   /* last */
    _Atomic uint64_t checkpoint_duration_us; /* last */
    _Atomic uint64_t checkpoint_bytes;     /* last */
    _Atomic uint64_t checkpoint_pause_us_sum;
    _Atomic uint64_t checkpoint_duration_us_sum;
    _Atomic uint64_t restore_us;           /* restoring the checkpoint at start */
} sf_rt_t;

/**
 * What serves function type |ns|/|type| (NUL-terminated): an endpoint
 * (|*ep| set) or an embedded library that binds the type (|*lib| set).
 * Returns true when one does. An embedded library serves only the types it
 * binds, whatever its pattern says. Any thread (everything read is
 * immutable once the runtime runs).
 */
bool sf_rt_find_function(const sf_rt_t *rt, const char *ns, const char *type,
                         const sf_endpoint_spec_t **ep, const sf_embedded_t **lib);

/** The metrics slot of function type |name| ("ns/type"); claims one. Any thread. */
sf_fn_metrics_t *sf_rt_fn_metrics(sf_rt_t *rt, const char *name);

/**
 * Takes a savepoint into |dir| (which must not exist; never collected) on
 * the main thread and waits for it. Blocks the calling thread for the
 * checkpoint's duration. Any thread but the main and worker threads.
 * Returns 0 or a negative SF_E*.
 */
int sf_rt_savepoint(sf_rt_t *rt, const char *dir);

/** Records a completed checkpoint in the metrics. Main thread. */
void sf_rt_checkpoint_done(sf_rt_t *rt, const struct sf_checkpoint_stats_s *st);

/** Wall-clock milliseconds since the epoch (state and timers survive restarts). */
int64_t sf_wall_ms(void);

#endif
