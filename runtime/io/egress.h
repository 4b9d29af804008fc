/* statefun-c: Apache License 2.0.
 *
 * The playground egress (io.statefun.playground.v1/egress, SPEC 5.2): the
 * records functions send to the egress, kept per topic in memory (topic.h)
 * and read over HTTP/1.1 or h2c.
 *
 * Records. Workers push SF_MSG_EGRESS messages whose target is the egress
 * name (io.statefun.playground/egress); the value is JSON
 * {"topic": "...", "payload": "..."}, whatever the typename says (the SDKs
 * use io.statefun.playground/EgressRecord). It is parsed with jansson, so any
 * whitespace, escapes such as \u003c and a trailing newline are fine. A
 * payload that is not a JSON string is kept as its compact JSON text. A
 * record that is not such JSON, names a topic the egress does not list, or
 * is not addressed to this egress is dropped: it is counted (sf_io_stats:
 * egress_invalid, egress_unknown_topic, egress_unknown_egress) and logged as
 * a warning with the egress name (the first ten of each kind, then every
 * thousandth, so a misbehaving function cannot flood the log). Dropping
 * rather than keeping matches StateFun, whose playground egress fails the
 * record, and a reader could do nothing with it anyway.
 *
 * Visibility. Appending and publishing are separate steps (topic.h). An
 * at-least-once egress, or an exactly-once one that does not hold records
 * for checkpoints (hold_for_checkpoints false: checkpoints are off), publishes
 * each record as it is appended. Otherwise the coordinator calls
 * sf_io_egress_barrier(id) while the workers are paused for checkpoint id,
 * and sf_io_egress_publish(id) once it completed. Both travel as marker
 * messages through the records' own mailbox, which keeps one total order of
 * pushes: since the workers are paused, every record before the barrier was
 * produced before the checkpoint and every record after it later. The
 * barrier notes each topic's end offset; the publish makes each topic
 * visible up to the newest noted offset of a barrier <= id. Without a
 * durable store the records are kept in memory only (a restart loses them).
 *
 * Durability (a store directory in the config; what the runtime runs). The
 * topics live in the durable egress store (runtime/egress/store.h) and the
 * in-memory topics mirror what it keeps, loaded at init. Records from the
 * mailbox (at-least-once, or exactly-once while checkpoints are off) join
 * the open commit; exactly-once records arrive already stored, written by
 * sf_egress_publish_durable on the main thread together with the published
 * epoch, and the I/O thread reads what it misses from the store (a marker
 * through the mailbox wakes it). A GET pop claims the next record and moves
 * the in-memory cursor; its 200 waits for the commit that makes the cursor
 * durable. Group commit: one open commit collects the records, pops, cursor
 * moves and trims of a loop turn; a uv_check_t hands it to libuv's thread
 * pool (one synced RocksDB write) unless a commit is in flight, in which case
 * it goes as soon as that one completes. Only then are the records visible
 * and the pops answered. A failed write loses the commit's at-least-once
 * records (logged), answers its pops and those waiting 503 and puts the
 * cursors back where they durably are. Retention: what the topic bounds drop
 * from memory is trimmed from the store in the next commit, so the store
 * keeps the same newest records, read or not, which offset reads serve
 * after a restart too.
 *
 * HTTP (GET only; other methods 405; an unknown topic 405, as the StateFun
 * playground answers):
 *   GET /{topic}                 the oldest unread record: 200 with the
 *                                payload as body (text/plain; charset=utf-8,
 *                                header X-Statefun-Offset), and the topic's
 *                                read cursor moves past it; 404 when none
 *   GET /{topic}?wait=5s         the same, but waits up to that long for a
 *                                record (durations as StateFun writes them,
 *                                at most SF_IO_MAX_WAIT_MS); 404 after the
 *                                wait. Waiting readers are served in arrival
 *                                order, one record each.
 *   GET /{topic}?from=N&max=M    reads without consuming: 200 with one NDJSON
 *                                line {"offset": N, "payload": "..."} per
 *                                visible record from offset N (default: the
 *                                read cursor; records already dropped are
 *                                skipped), at most M (default 100, at most
 *                                10000) lines; 200 with an empty body when
 *                                there is none. With wait=, waits for at
 *                                least one record.
 * Unknown query parameters are ignored; a malformed value is a 400.
 *
 * Threading: I/O thread only, except the pure parsers (any thread).
 */
#ifndef SF_IO_EGRESS_H
#define SF_IO_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "io.h"
#include "io_int.h"
#include "mailbox.h"
#include "sf_http.h"
#include "store.h"
#include "topic.h"

/** A parsed egress record (sf_egress_record_parse). */
typedef struct sf_egress_record_s {
    const char *topic;   /* borrowed from the parsed JSON */
    size_t topic_len;
    const char *payload; /* borrowed, UTF-8 */
    size_t payload_len;
    void *_json;         /* private: the parsed document */
    char *_text;         /* private: a non-string payload as JSON text */
} sf_egress_record_t;

/**
 * Parses the JSON record |value| (|len| bytes) into |out|; release it with
 * sf_egress_record_dispose. Returns 0, or SF_EINVAL with a one-line reason in
 * |why| (|whylen| bytes).
 */
int sf_egress_record_parse(const uint8_t *value, size_t len, sf_egress_record_t *out, char *why,
                           size_t whylen);
void sf_egress_record_dispose(sf_egress_record_t *r);

/** What a GET asks for (sf_egress_parse_target). */
typedef struct sf_egress_query_s {
    const char *topic; /* the decoded topic, in the caller's buffer */
    size_t topic_len;
    bool read;         /* from= or max= given: read without consuming */
    bool has_from;
    uint64_t from;
    uint64_t max;      /* lines for a read (default SF_IO_DEFAULT_READ_MAX) */
    uint64_t wait_ms;  /* 0: do not wait */
} sf_egress_query_t;

/**
 * Parses the path "/{topic}[?query]" of a GET into |q|, decoding the topic
 * into |buf| (room for strlen(|path|) + 1 bytes). Returns 0, or SF_EINVAL with
 * a reason in |why| (|whylen| bytes).
 */
int sf_egress_parse_target(const char *path, char *buf, sf_egress_query_t *q, char *why,
                           size_t whylen);

typedef struct sf_egress_waiter_s sf_egress_waiter_t;

/** A barrier's note: the end offset of a topic at checkpoint |id|. */
typedef struct sf_egress_mark_s {
    uint64_t id;
    uint64_t end;
} sf_egress_mark_t;

typedef struct sf_egress_topic_s {
    sf_topic_t log;
    sf_egress_waiter_t *wait_head, *wait_tail; /* long polls, oldest first */
    bool touched;             /* got visible records in the current drain */
    sf_egress_mark_t *marks;  /* barriers not published yet, oldest first */
    size_t nmarks, marks_cap;
    /* Durable mode only. */
    uint32_t sid;             /* the store's topic index */
    uint64_t durable_cursor;  /* the cursor as last committed */
    uint64_t sub_cursor;      /* the cursor as last handed to a commit */
    uint64_t trimmed;         /* records below it are trimmed or being trimmed */
} sf_egress_topic_t;

/** The marker messages of sf_egress_mark. */
typedef enum {
    SF_EGRESS_MARK_BARRIER = 0,
    SF_EGRESS_MARK_PUBLISH = 1,
    SF_EGRESS_MARK_STORED = 2, /* durable mode: the store has new records */
} sf_egress_mark_kind;

typedef struct sf_egress_commit_s sf_egress_commit_t;

typedef struct sf_egress_s {
    /* All private: the I/O object embeds it. */
    uv_loop_t *loop;
    sf__io_counters_t *ctr;
    char *name;
    bool hold;                /* exactly-once records wait for a publish */
    sf_egress_topic_t *topics;
    size_t ntopics;
    char *topic_list;         /* "a, b, c" for error messages */
    sf_http_server_t *server;
    uint16_t port;
    sf_mailbox_t mailbox;
    uv_idle_t more;           /* drains again next turn after a long drain */
    bool handles_open;
    bool closing;
    char *pathbuf;
    size_t pathcap;
    sf_buf_t out;             /* response scratch */
    uint64_t warned[3];       /* drops logged, per kind */
    /* Durable mode (|store| not NULL). */
    sf_egress_store_t *store;      /* owned */
    uv_check_t commit_check;       /* hands the open commit over at the end of a turn */
    sf_egress_commit_t *open;      /* collecting */
    sf_egress_commit_t *inflight;  /* being written, or NULL */
    sf_egress_commit_t *commits;   /* the two of them */
    bool catch_up;                 /* the store has records the topics have not */
} sf_egress_t;

/**
 * Binds the listener on |loop| and opens the mailbox; with |cfg->store_dir|
 * opens the durable store and loads the topics from it. Returns 0, SF_EINVAL
 * (bad config, or hold_for_checkpoints with a store), the store's error or
 * the transport's (nothing is left open then). Runs on the thread creating
 * the I/O object.
 */
int sf_egress_init(sf_egress_t *eg, uv_loop_t *loop, const sf_io_egress_config_t *cfg,
                   sf__io_counters_t *ctr);

/** Pushes |chain| into the mailbox. Any thread (see sf_io_egress_push). */
void sf_egress_push(sf_egress_t *eg, sf_msg_fifo_t *chain);

/**
 * Pushes a barrier or publish marker for checkpoint |id| into the mailbox
 * (no-op unless the egress holds records). Any thread.
 */
void sf_egress_mark(sf_egress_t *eg, sf_egress_mark_kind kind, uint64_t id);

/**
 * Durable mode: stores the exactly-once records of |chain| (the messages
 * workers produced, sf_msg_t of kind SF_MSG_EGRESS) as checkpoint |epoch|'s,
 * in one synced write that also records |epoch| as published, and wakes the
 * I/O thread to serve them. When |epoch| is not above the published epoch,
 * the records were stored before (a restart republishing a checkpoint) and
 * are dropped. Records that are not for this egress, not JSON
 * {"topic", "payload"} or for an unknown topic go to the I/O thread, which
 * counts, logs and drops them. Without a store the chain is pushed as
 * sf_egress_push does. Takes the messages of |chain| in every case (it is
 * left empty). Returns 0, or SF_ESTATE when the write failed (nothing is
 * stored; the caller keeps its copy and retries later). Any thread but the
 * I/O thread (it blocks on the write); one caller at a time.
 */
int sf_egress_publish_durable(sf_egress_t *eg, sf_msg_fifo_t *chain, uint64_t epoch);

/** The store's published epoch (0 without a store). Any thread. */
uint64_t sf_egress_published_epoch(sf_egress_t *eg);

/**
 * Handles the records queued, answers the long polls 503 and from now on
 * answers every GET 503.
 */
void sf_egress_quiesce(sf_egress_t *eg);

/**
 * Quiesces if needed and closes the listener and every handle. Commits still
 * to be written are written (the loop runs until they are).
 */
void sf_egress_close(sf_egress_t *eg);

/** Frees the topics and buffers and closes the store; after the loop closed the handles. */
void sf_egress_dispose(sf_egress_t *eg);

#endif /* SF_IO_EGRESS_H */
