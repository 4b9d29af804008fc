/* statefun-c: Apache License 2.0.
 *
 * A worker's mailbox: a lock-free multi-producer, single-consumer queue of
 * messages, rung with a uv_async_t. Producers push whole chains (one atomic
 * exchange and one wake-up per chain, never per message); the consumer takes
 * everything at once with one atomic exchange and gets it back in FIFO order
 * per producer. That is the only ordering the runtime needs: messages from
 * one sender to one address stay in order.
 *
 * Threading: sf_mailbox_push is "any thread"; init, drain and close are
 * "loop thread only" (the consumer's loop).
 */
#ifndef SF_MAILBOX_H
#define SF_MAILBOX_H

#include <stdatomic.h>
#include <uv.h>

#include "message.h"

typedef struct sf_mailbox_s sf_mailbox_t;
typedef void (*sf_mailbox_cb)(sf_mailbox_t *mb);

struct sf_mailbox_s {
    void *data;                       /* public: the owner */
    _Atomic(sf_msg_link_t *) _top;    /* private: LIFO of pushed messages */
    uv_async_t _async;                /* private */
    sf_mailbox_cb _cb;                /* private */
};

/** Initializes |mb| on |loop|; |cb| runs on that loop after pushes. */
int sf_mailbox_init(uv_loop_t *loop, sf_mailbox_t *mb, sf_mailbox_cb cb);
/**
 * Moves every message of |chain| into |mb| (|chain| is left empty) and wakes
 * the consumer. Any thread.
 */
void sf_mailbox_push(sf_mailbox_t *mb, sf_msg_fifo_t *chain);
/** Takes every queued message, in FIFO order, into |out| (appended). */
void sf_mailbox_drain(sf_mailbox_t *mb, sf_msg_fifo_t *out);
/** Closes the async handle; frees the messages still queued. */
void sf_mailbox_close(sf_mailbox_t *mb, uv_close_cb cb);

#endif
