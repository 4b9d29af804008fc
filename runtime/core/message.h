/* statefun-c: Apache License 2.0.
 *
 * The runtime's unit of work: a message to an address. One allocation holds
 * the header and every string and byte of the message (target, caller,
 * typename, value), so a message moves between queues by pointer and is freed
 * once. A message has exactly one owner at a time: the mailbox, a backlog,
 * an in-flight batch, or the code holding the pointer.
 *
 * Addresses are kept as "namespace/type/id" strings: namespace and type
 * cannot contain '/', the id may. The key group of the target is computed
 * once, when the message is created.
 *
 * Messages have a stable binary encoding (sf_msg_encode/sf_msg_decode) used
 * wherever they are written down: delayed messages, checkpointed backlogs,
 * the ingress log.
 *
 * Threading: a message may be created on one thread and freed on another;
 * it carries no reference to any loop.
 */
#ifndef SF_MESSAGE_H
#define SF_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sf_common.h"

/** An address as three borrowed slices of one string. */
typedef struct sf_addr_s {
    const char *ns;
    size_t ns_len;
    const char *type;
    size_t type_len;
    const char *id;
    size_t id_len;
} sf_addr_t;

/**
 * Splits "namespace/type/id" into |out|. Returns 0, or SF_EINVAL when a part
 * is missing or empty.
 */
int sf_addr_parse(const char *s, size_t len, sf_addr_t *out);

/**
 * The key group of the address string "namespace/type/id" among
 * |max_parallelism| groups: XXH3-64 of the whole string, modulo. Stable across
 * runs, versions and machines (XXH3 is specified), so state directories stay
 * valid.
 */
uint16_t sf_key_group(const char *addr, size_t len, uint32_t max_parallelism);

/** The first key group owned by |worker| of |nworkers| (contiguous ranges). */
uint32_t sf_key_group_range_start(uint32_t worker, uint32_t nworkers, uint32_t max_parallelism);
/** The worker owning key group |kg|. */
uint32_t sf_key_group_owner(uint32_t kg, uint32_t nworkers, uint32_t max_parallelism);

typedef enum {
    SF_MSG_INVOKE = 0,  /* deliver to the target function "ns/type/id" */
    SF_MSG_EGRESS = 1,  /* a record for the egress "ns/name" (the target) */
} sf_msg_kind;

/** Intrusive singly-linked list link used by mailboxes and backlogs. */
typedef struct sf_msg_link_s {
    struct sf_msg_link_s *next;
} sf_msg_link_t;

typedef struct sf_msg_s {
    sf_msg_link_t link;      /* private to the queue holding the message */
    uint64_t seq;            /* read-write: ordering/replay sequence set by the producer */
    uint64_t accepted_us;    /* read-write: when the ingress routed it (monotonic µs), else 0;
                                not encoded */
    uint16_t key_group;      /* read-only: of the target */
    uint8_t kind;            /* read-only: sf_msg_kind */
    uint8_t has_caller;      /* read-only */
    uint32_t target_len;     /* read-only */
    uint32_t caller_len;     /* read-only */
    uint32_t typename_len;   /* read-only */
    uint32_t value_len;      /* read-only */
    /* target '\0' caller '\0' typename '\0' value follow */
    char _data[];
} sf_msg_t;

static inline const char *sf_msg_target(const sf_msg_t *m) { return m->_data; }
static inline const char *sf_msg_caller(const sf_msg_t *m)
{
    return m->has_caller ? m->_data + m->target_len + 1 : NULL;
}
static inline const char *sf_msg_typename(const sf_msg_t *m)
{
    return m->_data + m->target_len + 1 + m->caller_len + 1;
}
static inline const uint8_t *sf_msg_value(const sf_msg_t *m)
{
    return (const uint8_t *)m->_data + m->target_len + 1 + m->caller_len + 1 + m->typename_len + 1;
}

/** The parts of a message to build. Strings need not be NUL-terminated. */
typedef struct sf_msg_init_s {
    sf_msg_kind kind;        /* SF_MSG_INVOKE (0) or SF_MSG_EGRESS */
    const char *target;      /* "ns/type/id", or "ns/name" for an egress */
    size_t target_len;
    const char *caller;      /* NULL: no caller (from an ingress) */
    size_t caller_len;
    const char *type_name;
    size_t type_name_len;
    const uint8_t *value;
    size_t value_len;
} sf_msg_init_t;

/**
 * Allocates a message (with sf_xmalloc-style abort on OOM: the runtime is not
 * a library) after validating the target address. Returns 0 and sets |*out|,
 * or SF_EINVAL for a malformed target. An egress record's key group is 0.
 */
int sf_msg_new(const sf_msg_init_t *init, uint32_t max_parallelism, sf_msg_t **out);
/** Builds a message from three address parts (as in a protobuf Address). */
int sf_msg_new_parts(const char *ns, const char *type, const char *id, const char *caller_ns,
                     const char *caller_type, const char *caller_id, const char *type_name,
                     const uint8_t *value, size_t value_len, uint32_t max_parallelism,
                     sf_msg_t **out);
void sf_msg_free(sf_msg_t *m);

/** Appends the stable encoding of |m| to |out|. Returns 0 or SF_ENOMEM. */
int sf_msg_encode(const sf_msg_t *m, sf_buf_t *out);
/**
 * Decodes a message written by sf_msg_encode; |*consumed| gets the bytes
 * used. Returns 0, or SF_EPROTO for bytes that are not a message.
 */
int sf_msg_decode(const uint8_t *data, size_t len, uint32_t max_parallelism, sf_msg_t **out,
                  size_t *consumed);

/* A FIFO of messages linked through their |link| (no allocation). */
typedef struct sf_msg_fifo_s {
    sf_msg_link_t *head;
    sf_msg_link_t *tail;
    size_t count;
} sf_msg_fifo_t;

static inline void sf_msg_fifo_init(sf_msg_fifo_t *q)
{
    q->head = q->tail = NULL;
    q->count = 0;
}
static inline void sf_msg_fifo_push(sf_msg_fifo_t *q, sf_msg_t *m)
{
    m->link.next = NULL;
    if (q->tail)
        q->tail->next = &m->link;
    else
        q->head = &m->link;
    q->tail = &m->link;
    q->count++;
}
static inline sf_msg_t *sf_msg_fifo_pop(sf_msg_fifo_t *q)
{
    sf_msg_link_t *l = q->head;
    if (!l)
        return NULL;
    q->head = l->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    l->next = NULL;
    return sf_container_of(l, sf_msg_t, link);
}
/** Moves all of |src| to the end of |dst|. */
static inline void sf_msg_fifo_splice(sf_msg_fifo_t *dst, sf_msg_fifo_t *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    dst->count += src->count;
    sf_msg_fifo_init(src);
}
/** Frees every message of |q|. */
void sf_msg_fifo_clear(sf_msg_fifo_t *q);

#endif /* SF_MESSAGE_H */
