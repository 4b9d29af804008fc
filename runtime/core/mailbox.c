/* statefun-c: Apache License 2.0.
 *
 * The MPSC mailbox (see mailbox.h). A push reverses its chain and links it on
 * top of the LIFO with one compare-and-swap; the consumer exchanges the top
 * with NULL and reverses what it got, which restores FIFO order for every
 * producer. libuv 1.44's uv_async_send reads its pending flag without a
 * fence, so a seq-cst fence comes first (MACHINE.md), and the consumer drains
 * until the LIFO is empty.
 */
#include "mailbox.h"

static void on_async(uv_async_t *h)
{
    sf_mailbox_t *mb = h->data;
    mb->_cb(mb);
}

int sf_mailbox_init(uv_loop_t *loop, sf_mailbox_t *mb, sf_mailbox_cb cb)
{
    atomic_init(&mb->_top, NULL);
    mb->_cb = cb;
    mb->_async.data = mb;
    return sf_err_from_uv(uv_async_init(loop, &mb->_async, on_async));
}

void sf_mailbox_push(sf_mailbox_t *mb, sf_msg_fifo_t *chain)
{
    sf_msg_link_t *first = chain->head, *prev = NULL, *cur = first, *top;
    if (!first)
        return;
    /* Reverse: the chain's last message ends up on top. */
    while (cur) {
        sf_msg_link_t *next = cur->next;
        cur->next = prev;
        prev = cur;
        cur = next;
    }
    /* |prev| is the new top; |first| is now the chain's bottom. */
    top = atomic_load_explicit(&mb->_top, memory_order_relaxed);
    do {
        first->next = top;
    } while (!atomic_compare_exchange_weak_explicit(&mb->_top, &top, prev, memory_order_release,
                                                    memory_order_relaxed));
    sf_msg_fifo_init(chain);
    atomic_thread_fence(memory_order_seq_cst);
    uv_async_send(&mb->_async);
}

void sf_mailbox_drain(sf_mailbox_t *mb, sf_msg_fifo_t *out)
{
    sf_msg_link_t *l = atomic_exchange_explicit(&mb->_top, NULL, memory_order_acquire);
    sf_msg_fifo_t tmp;
    sf_msg_fifo_init(&tmp);
    /* Reverse the LIFO into FIFO order. */
    while (l) {
        sf_msg_link_t *next = l->next;
        l->next = tmp.head;
        tmp.head = l;
        if (!tmp.tail)
            tmp.tail = l;
        tmp.count++;
        l = next;
    }
    sf_msg_fifo_splice(out, &tmp);
}

void sf_mailbox_close(sf_mailbox_t *mb, uv_close_cb cb)
{
    sf_msg_fifo_t rest;
    sf_msg_fifo_init(&rest);
    sf_mailbox_drain(mb, &rest);
    sf_msg_fifo_clear(&rest);
    uv_close((uv_handle_t *)&mb->_async, cb);
}
