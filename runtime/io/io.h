/* statefun-c: Apache License 2.0.
 *
 * The runtime's I/O thread: one thread with its own libuv loop that runs the
 * playground ingress and egress listeners (SPEC 5.2), and lets the runtime
 * run more listeners (the admin API) on the same loop through on_start and
 * on_stop.
 *
 * The I/O thread knows nothing of functions or workers. The runtime passes
 * hooks: |serves| says whether a function type exists (404 otherwise),
 * |accepting| whether a key group takes more messages (503 otherwise),
 * |persist| writes accepted messages to the durable ingress log, and |route|
 * hands them to the workers.
 *
 * Ingress, one request: method (405) -> path (400) -> |serves| (404) ->
 * Content-Type (400, 415) -> message -> |accepting| -> joins the batch of
 * this loop turn. A request to a key group that is not accepting waits (is
 * parked) until it is, in arrival order per key group, for at most
 * max_park_ms; then, or when too many wait, it is answered 503. The body limit (413) is enforced by the HTTP transport.
 * Once per loop turn (a uv_check_t) the batch is closed: |persist| is called
 * with its messages; when it reports success the messages are routed and
 * every request of the batch is answered 200. Batches are finished in the
 * order they were closed, so messages reach the workers in arrival order
 * even when the log completes them out of order. Without a persist hook the
 * batch is routed and answered at once.
 *
 * Egress: workers push SF_MSG_EGRESS messages with sf_io_egress_push; the I/O
 * thread parses each record (JSON {"topic", "payload"}) and appends it to
 * its topic, kept in memory (topic.h), where GET /{topic} reads it. See
 * egress.h for the HTTP surface and what happens to bad records.
 *
 * Lifecycle: sf_io_new binds the listeners (so the ports are known and
 * errors reported before anything runs), sf_io_start starts the thread,
 * sf_io_shutdown makes the ingress answer 503 "shutting down" while the
 * runtime finishes (egress reads go on), sf_io_stop closes everything and
 * joins the thread, sf_io_free frees.
 *
 * Threading: each function says which thread may call it. Hooks run on the
 * I/O thread.
 */
#ifndef SF_IO_H
#define SF_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "message.h"

/** The egress name functions address in the playground. */
#define SF_IO_PLAYGROUND_EGRESS "io.statefun.playground/egress"
/** The typename of the playground's egress records. */
#define SF_IO_EGRESS_RECORD_TYPE "io.statefun.playground/EgressRecord"

/** Default body limit of an ingress request (over it: 413). */
#define SF_IO_DEFAULT_MAX_BODY (4u * 1024 * 1024)
/** Default bounds of one egress topic kept in memory. */
#define SF_IO_DEFAULT_TOPIC_RECORDS 100000u
#define SF_IO_DEFAULT_TOPIC_BYTES (64u * 1024 * 1024)
/** The longest long poll (GET /{topic}?wait=...); longer waits are a 400. */
#define SF_IO_MAX_WAIT_MS (5u * 60 * 1000)
/** How long a request waits for a backpressured key group by default. */
#define SF_IO_DEFAULT_PARK_MS 1000u
/** Requests that may wait at once, and the bytes of their messages. */
#define SF_IO_MAX_PARKED 4096u
#define SF_IO_MAX_PARKED_BYTES (64u << 20)
/** How long sf_io_stop lets its last answers leave before closing connections. */
#define SF_IO_STOP_GRACE_MS 100u
/** Records one offset read returns when |max| is not given, and at most. */
#define SF_IO_DEFAULT_READ_MAX 100u
#define SF_IO_MAX_READ_MAX 10000u

/** The io.statefun.playground.v1/ingress listener. */
typedef struct sf_io_ingress_config_s {
    const char *host;      /* IP literal; NULL: "127.0.0.1" */
    uint16_t port;         /* 0 picks a free port (see sf_io_ingress_port) */
    size_t max_body_bytes; /* 0: SF_IO_DEFAULT_MAX_BODY */
    /* How long a request to a backpressured key group waits for room before
     * it is answered 503; 0: SF_IO_DEFAULT_PARK_MS. */
    uint32_t max_park_ms;
} sf_io_ingress_config_t;

/** The io.statefun.playground.v1/egress listener. */
typedef struct sf_io_egress_config_s {
    const char *name;              /* the egress "ns/name"; NULL: SF_IO_PLAYGROUND_EGRESS */
    const char *host;              /* IP literal; NULL: "127.0.0.1" */
    uint16_t port;                 /* 0 picks a free port (see sf_io_egress_port) */
    const char *const *topics;     /* at least one, unique, non-empty */
    size_t ntopics;
    bool exactly_once;             /* deliverySemantic: exactly-once (default) or at-least-once */
    /**
     * With exactly_once: records become visible only through
     * sf_io_egress_barrier + sf_io_egress_publish, i.e. once the checkpoint
     * that produced them completed. false (and always for at-least-once):
     * visible as soon as they arrive. Set it only when checkpoints are taken,
     * or exactly-once records would never show.
     */
    bool hold_for_checkpoints;
    size_t max_records_per_topic;  /* 0: SF_IO_DEFAULT_TOPIC_RECORDS */
    size_t max_bytes_per_topic;    /* 0: SF_IO_DEFAULT_TOPIC_BYTES */
    /**
     * The durable egress store's directory (STATE_DIR/egress; created when
     * missing). Records, read cursors and the published epoch survive
     * restarts there; a record becomes visible and a GET pop is answered
     * only once written (synced). Incompatible with hold_for_checkpoints
     * (exactly-once records come through sf_io_egress_publish_durable).
     * NULL: topics in memory only. See egress.h.
     */
    const char *store_dir;
} sf_io_egress_config_t;

/** Everything the I/O thread serves. Strings are copied by sf_io_new. */
typedef struct sf_io_config_s {
    const sf_io_ingress_config_t *ingress; /* NULL: no ingress */
    const sf_io_egress_config_t *egress;   /* NULL: no egress */
    uint32_t max_parallelism;              /* key groups (to compute a message's) */
} sf_io_config_t;

/**
 * Tells the I/O thread how the log write of a batch ended: |status| 0 when
 * the messages are durable, or a negative SF_E* code (the requests are then
 * answered 503 and the messages dropped). Call it exactly once per successful
 * persist call, on the I/O thread, from inside the persist hook or later.
 */
typedef void (*sf_io_persist_done_cb)(void *token, int status);

/** The runtime's side. Every hook runs on the I/O thread; NULL hooks are noted. */
typedef struct sf_io_hooks_s {
    void *ud; /* passed first to every hook */
    /**
     * Takes the messages of |chain| (which it leaves empty) to the workers.
     * Returns 0, or a negative code and then leaves |chain| untouched (the
     * requests are answered 503). Required when there is an ingress.
     */
    int (*route)(void *ud, sf_msg_fifo_t *chain);
    /** Whether some endpoint or embedded module serves ns/type. NULL: all. */
    bool (*serves)(void *ud, const char *ns, size_t ns_len, const char *type, size_t type_len);
    /** False while |key_group| is backpressured (503). NULL: always true. */
    bool (*accepting)(void *ud, uint16_t key_group);
    /**
     * Makes |chain| durable (the ingress log). |chain| is borrowed: read it
     * during the call only (it is routed later). Returns 0 and then calls
     * |done|(|token|, status) exactly once, or returns a negative code and
     * never calls |done|. NULL: batches are accepted at once.
     */
    int (*persist)(void *ud, const sf_msg_fifo_t *chain, sf_io_persist_done_cb done, void *token);
    /** Runs on the I/O thread before it serves anything. NULL: nothing. */
    void (*on_start)(void *ud, uv_loop_t *loop);
    /**
     * Runs on the I/O thread when it stops; must close every handle the
     * runtime opened on |loop|. NULL: nothing.
     */
    void (*on_stop)(void *ud, uv_loop_t *loop);
} sf_io_hooks_t;

/** A snapshot of the counters (sf_io_stats). Monotonic unless said otherwise. */
typedef struct sf_io_stats_s {
    uint64_t ingress_accepted;         /* answered 200 */
    uint64_t ingress_bad_request;      /* 400: malformed path, content type or body */
    uint64_t ingress_not_found;        /* 404: no function serves the type */
    uint64_t ingress_bad_method;       /* 405 */
    uint64_t ingress_unsupported_type; /* 415 */
    uint64_t ingress_backpressured;    /* 503: the target's key group was blocked */
    uint64_t ingress_parked;           /* waited for a blocked key group (then 200 or 503) */
    uint64_t ingress_shutting_down;    /* 503: after sf_io_shutdown */
    uint64_t ingress_failed;           /* 503: persist or route failed */
    /* 413 and 431 are answered by the HTTP transport and not counted here. */
    uint64_t egress_records_in;        /* records appended to a topic */
    uint64_t egress_records_out;       /* records consumed by GET /{topic} */
    uint64_t egress_dropped_overflow;  /* dropped to keep a topic in bounds */
    uint64_t egress_dropped_unread;    /* of those, never read */
    uint64_t egress_invalid;           /* not JSON {"topic", "payload"} (dropped) */
    uint64_t egress_unknown_topic;     /* for a topic the egress does not list (dropped) */
    uint64_t egress_unknown_egress;    /* not for this egress, or not SF_MSG_EGRESS (dropped) */
    uint64_t egress_retained;          /* gauge: records kept in memory over all topics */
} sf_io_stats_t;

typedef struct sf_io_s sf_io_t;

/**
 * Creates the I/O object, its loop and listeners (bound now, on the calling
 * thread; the thread starts with sf_io_start). Copies |config| and |hooks|.
 * Returns 0 and sets |*out|; SF_EINVAL for a bad config (no route hook with
 * an ingress, no topics, duplicate topics, max_parallelism 0), SF_EEXIST
 * when a port is in use, or another negative code from the transport.
 */
int sf_io_new(const sf_io_config_t *config, const sf_io_hooks_t *hooks, sf_io_t **out);

/** The bound ingress / egress port (0 when there is none). Any thread. */
uint16_t sf_io_ingress_port(const sf_io_t *io);
uint16_t sf_io_egress_port(const sf_io_t *io);

/**
 * Starts the I/O thread (it calls on_start, then serves). Returns 0 or a
 * negative code. Call once, from the thread that called sf_io_new.
 */
int sf_io_start(sf_io_t *io);

/**
 * From now on the ingress answers every request 503 "shutting down" (with
 * Retry-After); batches already accepted finish normally. Egress reads go
 * on. Any thread; idempotent.
 */
void sf_io_shutdown(sf_io_t *io);

/**
 * Shuts down, answers waiting long polls 503, calls on_stop, closes every
 * listener and handle, waits for batches still being persisted, and joins
 * the thread. No sf_io_egress_push may start once sf_io_stop has been
 * called. Any thread except the I/O thread; idempotent.
 */
void sf_io_stop(sf_io_t *io);

/** Stops if needed and frees everything. Same thread rules as sf_io_stop. */
void sf_io_free(sf_io_t *io);

/**
 * Any thread, once sf_io_new returned and until sf_io_stop: a key group may
 * take messages again, so the ingress retries its parked requests now rather
 * than at its next 1 ms tick. Cheap when called often (one pending wake-up).
 */
void sf_io_ingress_room(sf_io_t *io);

/**
 * Hands a chain of egress records to the I/O thread (one wake-up per chain)
 * and leaves |chain| empty; the I/O thread takes ownership of the messages.
 * Any thread, between sf_io_new and sf_io_stop. Records pushed before the
 * thread starts are handled once it runs.
 */
void sf_io_egress_push(sf_io_t *io, sf_msg_fifo_t *chain);

/**
 * Closes checkpoint |id|'s share of the egress records: every record pushed
 * before this call is visible once checkpoint |id| (or a later one) is
 * published. Call while the workers are paused for that checkpoint, so that
 * no record of the next one has been pushed yet. Ids increase. A no-op
 * unless the egress holds records for checkpoints. Any thread, like
 * sf_io_egress_push (it travels through the same mailbox, after the records).
 */
void sf_io_egress_barrier(sf_io_t *io, uint64_t id);

/**
 * Checkpoint |id| completed: the records before its barrier (and before any
 * earlier barrier) become visible, and long polls waiting for them are
 * answered. Barriers of checkpoints that failed are covered by the next
 * publish. A no-op unless the egress holds records. Any thread.
 */
void sf_io_egress_publish(sf_io_t *io, uint64_t id);

/**
 * With a durable store: stores checkpoint |epoch|'s exactly-once records
 * (the SF_MSG_EGRESS messages of |chain|, which is left empty) with |epoch|
 * as the published epoch in one synced write, then makes them visible; does
 * nothing with them when |epoch| is not above the published epoch (they were
 * published before a restart). Without a store: sf_io_egress_push. Returns 0
 * or SF_ESTATE (nothing stored: retry with a later epoch). Blocks on the
 * write: the main thread, one caller at a time, before or while the I/O
 * thread runs (not after sf_io_stop).
 */
int sf_io_egress_publish_durable(sf_io_t *io, sf_msg_fifo_t *chain, uint64_t epoch);

/** The durable store's published epoch; 0 without a store or egress. Any thread. */
uint64_t sf_io_egress_published_epoch(sf_io_t *io);

/** Copies the counters into |out|. Any thread (each value read atomically). */
void sf_io_stats(const sf_io_t *io, sf_io_stats_t *out);

/** The I/O loop, for handles opened in on_start. I/O thread only. */
uv_loop_t *sf_io_loop(sf_io_t *io);

#endif /* SF_IO_H */
