/* statefun-c: Apache License 2.0.
 *
 * One egress topic kept in memory: an append-only sequence of records with
 * offsets (0, 1, 2, ...), a visibility mark and one shared read cursor, as the
 * StateFun playground egress has.
 *
 *     base            cursor             visible             end
 *      |  read already  |  unread, visible  |  appended, hidden  |
 *
 * Appending and making visible are separate steps: an at-least-once egress
 * publishes every record as soon as it is appended, while an exactly-once one
 * (the checkpoint issue) will publish up to the offset that the completed
 * checkpoint covers. Only visible records are read.
 *
 * The topic is bounded: past |max_records| records or |max_bytes| payload
 * bytes the oldest records are dropped (counted in |dropped|, and in
 * |dropped_unread| when nobody had read them), so a topic nobody reads cannot
 * exhaust memory. The newest record is always kept.
 *
 * Threading: a topic belongs to the I/O thread; no function is thread-safe.
 */
#ifndef SF_IO_TOPIC_H
#define SF_IO_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One record: its payload bytes (UTF-8 text, not NUL-terminated). */
typedef struct sf_topic_rec_s {
    size_t len;
    char data[];
} sf_topic_rec_t;

typedef struct sf_topic_s {
    char *name;              /* read-only, owned */
    uint64_t base;           /* read-only: offset of the oldest record kept */
    uint64_t end;            /* read-only: offset the next append gets */
    uint64_t visible;        /* read-only: records below it can be read */
    uint64_t cursor;         /* read-only: the next unread offset (>= base once read) */
    uint64_t dropped;        /* read-only: records dropped to stay in bounds */
    uint64_t dropped_unread; /* read-only: of those, dropped visible and unread or hidden */
    size_t bytes;            /* read-only: payload bytes kept */
    size_t max_records;      /* read-only */
    size_t max_bytes;        /* read-only */
    /* private: ring of end - base records; record at offset o is at
     * _ring[(_head + (o - base)) % _cap]. */
    sf_topic_rec_t **_ring;
    size_t _cap;
    size_t _head;
} sf_topic_t;

/**
 * Initializes an empty topic named |name| (copied) keeping at most
 * |max_records| (>= 1) records and |max_bytes| payload bytes.
 */
void sf_topic_init(sf_topic_t *t, const char *name, size_t max_records, size_t max_bytes);
/** Frees every record and the name. */
void sf_topic_dispose(sf_topic_t *t);

/**
 * Makes the empty, never appended topic |t| start at |offset|: the next
 * append gets it (a topic restored from the durable store continues its
 * offsets).
 */
void sf_topic_start_at(sf_topic_t *t, uint64_t offset);

/**
 * Drops every record below |offset| (counted in |dropped|, and in
 * |dropped_unread| as sf_topic_append counts); when |offset| is past |end|,
 * the offsets in between are skipped (counted the same way: they existed
 * elsewhere, in the durable store) and the next append gets |offset|.
 */
void sf_topic_skip(sf_topic_t *t, uint64_t offset);

/**
 * Sets the read cursor to |cursor| (at most |end|). A cursor below |base|
 * is fine: a pop starts at |base|. Used to restore the durable cursor.
 */
void sf_topic_set_cursor(sf_topic_t *t, uint64_t cursor);

/** Records kept (visible or not). */
static inline uint64_t sf_topic_count(const sf_topic_t *t) { return t->end - t->base; }

/**
 * Appends a copy of |len| bytes at |data| as a hidden record and returns its
 * offset. Drops the oldest records first when the bounds require it.
 */
uint64_t sf_topic_append(sf_topic_t *t, const void *data, size_t len);

/** Makes every record below |upto| visible (clamped to |end|; never shrinks). */
void sf_topic_publish(sf_topic_t *t, uint64_t upto);

/**
 * The visible record at |offset|, or NULL when it was dropped, is hidden or
 * does not exist yet. Borrowed: valid until the next append.
 */
const sf_topic_rec_t *sf_topic_get(const sf_topic_t *t, uint64_t offset);

/** Visible records not read yet. */
uint64_t sf_topic_unread(const sf_topic_t *t);

/**
 * Takes the oldest unread visible record and advances the cursor past it;
 * sets |*offset|. NULL when there is none. Borrowed as sf_topic_get.
 */
const sf_topic_rec_t *sf_topic_pop(sf_topic_t *t, uint64_t *offset);

#endif /* SF_IO_TOPIC_H */
