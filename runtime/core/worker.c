/* statefun-c: Apache License 2.0.
 *
 * Worker threads, their loops and the message pump (see worker.h).
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void pump(sf_worker_t *w);
static void finish_calls(sf_worker_t *w, bool run);

static void flush_outboxes(sf_worker_t *w)
{
    uint32_t i;
    for (i = 0; i < w->group->n; i++)
        if (w->_outbox[i].head)
            sf_mailbox_push(&w->group->w[i]->_mailbox, &w->_outbox[i]);
}

static void on_idle(uv_idle_t *h)
{
    sf_worker_t *w = h->data;
    pump(w);
}

static void commit_point(sf_worker_t *w)
{
    /* Held: on_release commits once the hold ends. */
    if (w->group->commit && !sf_workers_commits_held(w->group))
        w->group->commit(w);
}

static void on_release(uv_async_t *h)
{
    sf_worker_t *w = h->data;
    commit_point(w);
    flush_outboxes(w);
}

void sf_workers_hold_commits(sf_workers_t *g, bool hold)
{
    uint32_t i;
    atomic_store_explicit(&g->_hold, hold, memory_order_release);
    if (!hold)
        for (i = 0; i < g->n; i++)
            uv_async_send(&g->w[i]->_release);
}

/* After the turn's I/O callbacks (function replies, mail): commit what they
 * staged and send on what the commit routed. */
static void on_turn(uv_check_t *h)
{
    sf_worker_t *w = h->data;
    commit_point(w);
    flush_outboxes(w);
}

static void pump(sf_worker_t *w)
{
    unsigned budget = SF_WORKER_BUDGET;
    sf_msg_t *m;
    uint64_t n = 0;

    sf_mailbox_drain(&w->_mailbox, &w->_inbox);
    while (budget-- && (m = sf_msg_fifo_pop(&w->_inbox)) != NULL) {
        w->group->deliver(w, m);
        if ((++n & (SF_WORKER_COMMIT_EVERY - 1)) == 0) {
            commit_point(w);
            /* Now, not at the slice's end: the other workers start on what
             * this commit released while this one goes on (worker.h). */
            flush_outboxes(w);
            if (atomic_load_explicit(&w->_call_waiting, memory_order_acquire))
                finish_calls(w, true);
        }
        /* A pause waits for this slice to end: keep that wait short. */
        if ((n & 31) == 0 &&
            atomic_load_explicit(&w->group->_pausing, memory_order_relaxed))
            break;
    }
    if (n)
        atomic_fetch_add_explicit(&w->delivered, n, memory_order_relaxed);
    commit_point(w);
    flush_outboxes(w);
    if (w->_inbox.head) {
        if (!w->_pump_armed) {
            w->_pump_armed = true;
            uv_idle_start(&w->_pump, on_idle);
        }
    } else if (w->_pump_armed) {
        w->_pump_armed = false;
        uv_idle_stop(&w->_pump);
    }
}

static void on_mail(sf_mailbox_t *mb)
{
    pump(mb->data);
}

void sf_worker_kick(sf_worker_t *w)
{
    if (!w->_pump_armed) {
        w->_pump_armed = true;
        uv_idle_start(&w->_pump, on_idle);
    }
}

void sf_worker_route(sf_worker_t *w, sf_msg_t *m)
{
    sf_worker_t *owner = sf_workers_owner(w->group, m->key_group);
    atomic_fetch_add_explicit(&owner->load, 1, memory_order_relaxed);
    if (owner == w) {
        sf_msg_fifo_push(&w->_inbox, m);
        sf_worker_kick(w);
    } else {
        sf_msg_fifo_push(&w->_outbox[owner->id], m);
        /* Flushed at the end of the current pump; if we are not inside one
         * (a timer or an HTTP reply), the kick makes one run this turn. */
        sf_worker_kick(w);
    }
}

void sf_workers_route_chain(sf_workers_t *g, sf_msg_fifo_t *chain)
{
    /* Called once per loop turn of the I/O thread: no allocation unless
     * there are many workers. */
    sf_msg_fifo_t local[32];
    sf_msg_fifo_t *per = g->n <= 32 ? local : sf_xmalloc(g->n * sizeof *per);
    sf_msg_t *m;
    uint32_t i;
    for (i = 0; i < g->n; i++)
        sf_msg_fifo_init(&per[i]);
    while ((m = sf_msg_fifo_pop(chain)) != NULL)
        sf_msg_fifo_push(&per[sf_key_group_owner(m->key_group, g->n, g->max_parallelism)], m);
    for (i = 0; i < g->n; i++)
        if (per[i].head) {
            atomic_fetch_add_explicit(&g->w[i]->load, (int64_t)per[i].count,
                                      memory_order_relaxed);
            sf_mailbox_push(&g->w[i]->_mailbox, &per[i]);
        }
    if (per != local)
        free(per);
}

static void on_closed(uv_handle_t *h) { (void)h; }

/* The pause, on one mutex and a condition variable per wait, with as few
 * wake-ups as it can: (1) every paused thread counts itself stopped and waits until all
 * are (then nothing is pushed into a mailbox any more); (2) each runs its
 * callback and counts itself done: the last one wakes the pausing thread,
 * whose sf_workers_pause returns; (3) sf_workers_resume moves |_go| to the
 * pause's generation and wakes them all, without waiting for them to run. */
static void pause_stop(sf_workers_t *g)
{
    uint64_t gen;
    uv_mutex_lock(&g->_lock);
    gen = g->_gen;
    if (++g->_stopped == g->_parties)
        uv_cond_broadcast(&g->_all_stopped);
    while (g->_stopped < g->_parties && g->_gen == gen)
        uv_cond_wait(&g->_all_stopped, &g->_lock);
    uv_mutex_unlock(&g->_lock);
}

static void pause_done_and_wait(sf_workers_t *g)
{
    uint64_t gen;
    uv_mutex_lock(&g->_lock);
    gen = g->_gen;
    if (++g->_done == g->_parties)
        uv_cond_signal(&g->_all_done);
    while (g->_go != gen)
        uv_cond_wait(&g->_go_cond, &g->_lock);
    uv_mutex_unlock(&g->_lock);
}

static void on_pause(uv_async_t *h)
{
    sf_worker_t *w = h->data;
    sf_workers_t *g = w->group;
    sf_msg_fifo_t out;
    uint32_t i;

    pause_stop(g);
    /* Everyone stands still: the mailbox holds all it will get. Keep the
     * order of delivery: inbox first, then what the mailbox had. */
    sf_mailbox_drain(&w->_mailbox, &w->_inbox);
    /* The outboxes: their messages were sent after everything their
     * destinations already hold. Borrowed as one chain, split back below. */
    sf_msg_fifo_init(&out);
    for (i = 0; i < g->n; i++)
        sf_msg_fifo_splice(&out, &w->_outbox[i]);
    g->_pause_cb(w, &w->_inbox, &out, g->_pause_arg);
    {
        sf_msg_t *m;
        while ((m = sf_msg_fifo_pop(&out)) != NULL)
            sf_msg_fifo_push(&w->_outbox[sf_workers_owner(g, m->key_group)->id], m);
    }
    if (w->_inbox.head)
        sf_worker_kick(w);
    pause_done_and_wait(g);
}

static void on_extra_pause(uv_async_t *h)
{
    sf_pause_extra_t *x = h->data;
    pause_stop(x->_g);
    if (x->cb)
        x->cb(x->arg);
    pause_done_and_wait(x->_g);
}

int sf_pause_extra_init(sf_workers_t *g, sf_pause_extra_t *x, uv_loop_t *loop)
{
    x->_g = g;
    x->async.data = x;
    g->_extra = x;
    g->_parties = g->n + 1;
    return sf_err_from_uv(uv_async_init(loop, &x->async, on_extra_pause));
}

uint64_t sf_workers_pause(sf_workers_t *g, sf_worker_pause_cb cb, void *arg)
{
    uint64_t start = uv_hrtime();
    uint32_t i;
    g->_pause_cb = cb;
    g->_pause_arg = arg;
    uv_mutex_lock(&g->_lock);
    /* Every thread of the last pause has counted itself done: the counts
     * are free again (a slow one may still be leaving its wait on _go). */
    g->_gen++;
    g->_stopped = 0;
    g->_done = 0;
    uv_mutex_unlock(&g->_lock);
    atomic_store(&g->_pausing, true);
    if (g->_extra)
        uv_async_send(&g->_extra->async);
    for (i = 0; i < g->n; i++)
        uv_async_send(&g->w[i]->_pause);
    uv_mutex_lock(&g->_lock);
    while (g->_done < g->_parties)
        uv_cond_wait(&g->_all_done, &g->_lock);
    uv_mutex_unlock(&g->_lock);
    atomic_store(&g->_pausing, false);
    return (uv_hrtime() - start) / 1000;
}

void sf_workers_resume(sf_workers_t *g)
{
    uv_mutex_lock(&g->_lock);
    g->_go = g->_gen;
    uv_cond_broadcast(&g->_go_cond);
    uv_mutex_unlock(&g->_lock);
}

struct sf_worker_call_s {
    sf_worker_call_fn fn;
    sf_worker_step_fn step; /* instead of |fn|: run once a loop turn until it returns true */
    void *arg;
    int rv;
    bool done;
    sf_worker_call_t *next;
};

/* Queues |c| on |w| (or marks it cancelled when |w| takes no calls). */
static void call_post(sf_worker_t *w, sf_worker_call_t *c)
{
    uv_mutex_lock(&w->_call_lock);
    if (!w->_accepting) {
        c->rv = SF_ECANCELED;
        c->done = true;
    } else {
        c->next = w->_calls;
        w->_calls = c;
        atomic_store_explicit(&w->_call_waiting, true, memory_order_release);
        /* Under the lock: on_stop closes the handle only after taking it. */
        uv_async_send(&w->_call);
    }
    uv_mutex_unlock(&w->_call_lock);
}

static int call_wait(sf_worker_t *w, sf_worker_call_t *c)
{
    uv_mutex_lock(&w->_call_lock);
    while (!c->done)
        uv_cond_wait(&w->_call_done, &w->_call_lock);
    uv_mutex_unlock(&w->_call_lock);
    return c->rv;
}

int sf_worker_call(sf_worker_t *w, sf_worker_call_fn fn, void *arg)
{
    sf_worker_call_t c = {fn, NULL, arg, 0, false, NULL};
    call_post(w, &c);
    return call_wait(w, &c);
}

void sf_workers_step_each(sf_workers_t *g, sf_worker_step_fn step, void *const *args, int *rvs)
{
    sf_worker_call_t *c = sf_xcalloc(g->n, sizeof *c);
    size_t i;
    for (i = 0; i < g->n; i++) {
        c[i].step = step;
        c[i].arg = args[i];
        c[i].done = args[i] == NULL;
        if (args[i])
            call_post(g->w[i], &c[i]);
    }
    for (i = 0; i < g->n; i++) {
        int rv = call_wait(g->w[i], &c[i]);
        if (rvs)
            rvs[i] = rv;
    }
    free(c);
}

/* Runs |c| once; whether it is finished (a step call may want another turn). */
static bool run_call(sf_worker_t *w, sf_worker_call_t *c)
{
    if (c->step)
        return c->step(w, c->arg);
    c->fn(w, c->arg);
    return true;
}

/* Marks the calls of |list| done with |rv|. Under the call lock. */
static void calls_done(sf_worker_call_t *list, int rv)
{
    sf_worker_call_t *c, *next;
    for (c = list; c; c = next) {
        next = c->next;
        c->rv = rv;
        c->done = true;
    }
}

/* Runs (|run|) or cancels the waiting calls, oldest first, and wakes their callers;
 * a step call that is not finished waits for the next turn. A call lives on its
 * caller's stack: once it is marked done it is not touched again. */
static void finish_calls(sf_worker_t *w, bool run)
{
    sf_worker_call_t *list, *c, *next, *fifo = NULL, *again = NULL, **again_tail = &again;
    uv_mutex_lock(&w->_call_lock);
    list = w->_calls;
    w->_calls = NULL;
    atomic_store_explicit(&w->_call_waiting, false, memory_order_relaxed);
    if (!run)
        w->_accepting = false;
    uv_mutex_unlock(&w->_call_lock);
    for (c = list; c; c = next) { /* newest first: reverse */
        next = c->next;
        c->next = fifo;
        fifo = c;
    }
    if (run) {
        sf_worker_call_t **link = &fifo;
        while ((c = *link) != NULL) {
            if (run_call(w, c)) {
                link = &c->next;
                continue;
            }
            *link = c->next; /* again in the next turn */
            c->next = NULL;
            *again_tail = c;
            again_tail = &c->next;
        }
    }
    uv_mutex_lock(&w->_call_lock);
    calls_done(fifo, run ? 0 : SF_ECANCELED);
    if (again && !w->_accepting) { /* stopped meanwhile */
        calls_done(again, SF_ECANCELED);
    } else if (again) {
        *again_tail = w->_calls;
        w->_calls = again;
        atomic_store_explicit(&w->_call_waiting, true, memory_order_relaxed);
        uv_async_send(&w->_call);
    }
    uv_cond_broadcast(&w->_call_done);
    uv_mutex_unlock(&w->_call_lock);
}

static void on_call(uv_async_t *h) { finish_calls(h->data, true); }

static void on_stop(uv_async_t *h)
{
    sf_worker_t *w = h->data;
    sf_msg_fifo_t rest;
    uint32_t i;
    if (w->group->on_stop)
        w->group->on_stop(w);
    /* Undelivered messages are dropped here: a graceful stop takes a
     * checkpoint first, and the ingress log replays them after a restart. */
    sf_msg_fifo_init(&rest);
    sf_msg_fifo_splice(&rest, &w->_inbox);
    for (i = 0; i < w->group->n; i++)
        sf_msg_fifo_splice(&rest, &w->_outbox[i]);
    sf_msg_fifo_clear(&rest);
    uv_idle_stop(&w->_pump);
    uv_close((uv_handle_t *)&w->_pump, on_closed);
    uv_close((uv_handle_t *)&w->_turn, on_closed);
    uv_close((uv_handle_t *)&w->_release, on_closed);
    uv_close((uv_handle_t *)&w->_stop, on_closed);
    uv_close((uv_handle_t *)&w->_pause, on_closed);
    finish_calls(w, false); /* before the handle closes: sf_worker_call sends under the lock */
    uv_close((uv_handle_t *)&w->_call, on_closed);
    sf_mailbox_close(&w->_mailbox, on_closed);
}

static void run(void *arg)
{
    sf_worker_t *w = arg;
    if (w->group->on_start)
        w->group->on_start(w);
    pump(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int sf_workers_init(sf_workers_t *g, uint32_t n, uint32_t max_parallelism,
                    sf_worker_deliver_cb deliver, sf_worker_start_cb on_start,
                    sf_worker_stop_cb on_stop_cb, void *data)
{
    uint32_t i;
    if (n == 0 || n > max_parallelism || max_parallelism > 65536)
        return SF_EINVAL;
    memset(g, 0, sizeof *g);
    g->n = n;
    g->_parties = n;
    uv_mutex_init(&g->_lock);
    uv_cond_init(&g->_all_stopped);
    uv_cond_init(&g->_all_done);
    uv_cond_init(&g->_go_cond);
    g->max_parallelism = max_parallelism;
    g->deliver = deliver;
    g->on_start = on_start;
    g->on_stop = on_stop_cb;
    g->data = data;
    g->w = sf_xcalloc(n, sizeof *g->w);
    for (i = 0; i < n; i++) {
        sf_worker_t *w = sf_xcalloc(1, sizeof *w);
        int rv;
        g->w[i] = w;
        w->id = i;
        w->group = g;
        w->kg_begin = sf_key_group_range_start(i, n, max_parallelism);
        w->kg_end = sf_key_group_range_start(i + 1, n, max_parallelism);
        if ((rv = uv_loop_init(&w->loop)) != 0)
            return sf_err_from_uv(rv);
        w->_mailbox.data = w;
        sf_mailbox_init(&w->loop, &w->_mailbox, on_mail);
        uv_idle_init(&w->loop, &w->_pump);
        w->_pump.data = w;
        uv_check_init(&w->loop, &w->_turn);
        w->_turn.data = w;
        uv_check_start(&w->_turn, on_turn);
        uv_unref((uv_handle_t *)&w->_turn);
        uv_async_init(&w->loop, &w->_release, on_release);
        w->_release.data = w;
        uv_async_init(&w->loop, &w->_stop, on_stop);
        w->_stop.data = w;
        uv_async_init(&w->loop, &w->_pause, on_pause);
        w->_pause.data = w;
        uv_async_init(&w->loop, &w->_call, on_call);
        w->_call.data = w;
        uv_mutex_init(&w->_call_lock);
        atomic_init(&w->_call_waiting, false);
        uv_cond_init(&w->_call_done);
        sf_msg_fifo_init(&w->_inbox);
        w->_outbox = sf_xcalloc(n, sizeof *w->_outbox);
    }
    return SF_OK;
}

int sf_workers_start(sf_workers_t *g)
{
    uint32_t i;
    for (i = 0; i < g->n; i++) {
        sf_worker_t *w = g->w[i];
        int rv;
        uv_mutex_lock(&w->_call_lock);
        w->_accepting = true; /* calls wait in the queue until the loop runs */
        uv_mutex_unlock(&w->_call_lock);
        if ((rv = uv_thread_create(&w->_thread, run, w)) != 0) {
            finish_calls(w, false);
            return sf_err_from_uv(rv);
        }
        w->_started = true;
    }
    return SF_OK;
}

void sf_workers_stop(sf_workers_t *g)
{
    uint32_t i;
    for (i = 0; i < g->n; i++)
        if (g->w[i]->_started) {
            atomic_thread_fence(memory_order_seq_cst);
            uv_async_send(&g->w[i]->_stop);
        }
    for (i = 0; i < g->n; i++)
        if (g->w[i]->_started) {
            uv_thread_join(&g->w[i]->_thread);
            g->w[i]->_started = false;
        }
}

void sf_workers_dispose(sf_workers_t *g)
{
    uint32_t i;
    for (i = 0; i < g->n; i++) {
        sf_worker_t *w = g->w[i];
        if (!w)
            continue;
        if (!uv_is_closing((uv_handle_t *)&w->_stop)) {
            /* Never started: close the handles on the loop here. */
            uv_close((uv_handle_t *)&w->_pump, on_closed);
            uv_close((uv_handle_t *)&w->_turn, on_closed);
            uv_close((uv_handle_t *)&w->_release, on_closed);
            uv_close((uv_handle_t *)&w->_stop, on_closed);
            uv_close((uv_handle_t *)&w->_pause, on_closed);
            uv_close((uv_handle_t *)&w->_call, on_closed);
            sf_mailbox_close(&w->_mailbox, on_closed);
        }
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        /* What other workers sent after this one stopped. */
        sf_mailbox_drain(&w->_mailbox, &w->_inbox);
        sf_msg_fifo_clear(&w->_inbox);
        uv_cond_destroy(&w->_call_done);
        uv_mutex_destroy(&w->_call_lock);
        free(w->_outbox);
        free(w);
    }
    free(g->w);
    uv_cond_destroy(&g->_all_stopped);
    uv_cond_destroy(&g->_all_done);
    uv_cond_destroy(&g->_go_cond);
    uv_mutex_destroy(&g->_lock);
    memset(g, 0, sizeof *g);
}
