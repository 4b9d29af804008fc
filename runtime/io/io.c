/* statefun-c: Apache License 2.0.
 *
 * The I/O thread (see io.h): its loop, the start and the two-step stop, the
 * counters, and the one-line text answers shared by ingress and egress.
 *
 * Stop sequence, on the I/O thread (woken by an async handle): mark shutting
 * down; drain the ingress (close the open batch and wait until every closed
 * batch is persisted, routed and answered); answer the long polls 503; call
 * on_stop; wait SF_IO_STOP_GRACE_MS so that the answers just given leave
 * (closing an HTTP server aborts its connections and drops unsent output);
 * close the listeners and the remaining handles. uv_run then returns because
 * nothing is left, and the thread ends. When the thread was never started,
 * the same sequence runs on the caller's thread, without the grace period
 * (nothing was answered).
 */
#include "io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "ingress.h"
#include "io_int.h"
#include "log.h"
#include "xalloc.h"

struct sf_io_s {
    uv_loop_t loop;
    sf_io_hooks_t hooks;
    sf__io_counters_t ctr;
    _Atomic bool shutting_down;
    bool has_ingress;
    bool has_egress;
    sf_ingress_t ingress;
    sf_egress_t egress;
    uv_async_t stop_async;
    uv_timer_t grace;
    uv_thread_t thread;
    bool started;  /* the thread runs (or ran) */
    bool stopping; /* the stop sequence began (I/O thread) */
    bool stopped;  /* the loop has no handle left and the thread is joined */
};

const sf_http_header_t sf__io_retry_after = {"retry-after", 11, "1", 1};

void sf__io_reply(sf_http_request_t *req, int status, const sf_http_header_t *extra,
                  size_t nextra, const char *fmt, ...)
{
    char body[512];
    sf_http_header_t h[4] = {{"content-type", 12, "text/plain; charset=utf-8", 25}};
    va_list ap;
    int n, i;

    SF_ASSERT(nextra < SF_ARRAY_SIZE(h));
    va_start(ap, fmt);
    n = vsnprintf(body, sizeof(body) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof(body) - 2)
        n = (int)sizeof(body) - 2;
    /* One line: whatever came from the request cannot add lines. */
    for (i = 0; i < n; i++)
        if ((unsigned char)body[i] < 0x20 || body[i] == 0x7f)
            body[i] = ' ';
    body[n++] = '\n';
    for (i = 0; i < (int)nextra; i++)
        h[1 + i] = extra[i];
    sf_http_respond(req, status, h, 1 + nextra, body, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* Stopping                                                                   */

static void close_all(sf_io_t *io)
{
    if (io->has_ingress)
        sf_ingress_close(&io->ingress);
    if (io->has_egress)
        sf_egress_close(&io->egress);
    uv_close((uv_handle_t *)&io->grace, NULL);
    uv_close((uv_handle_t *)&io->stop_async, NULL);
}

static void on_grace(uv_timer_t *h)
{
    close_all(h->data);
}

static void finish_stop(void *arg)
{
    sf_io_t *io = arg;
    if (io->has_egress)
        sf_egress_quiesce(&io->egress);
    if (io->started && io->hooks.on_stop)
        io->hooks.on_stop(io->hooks.ud, &io->loop);
    if (io->started)
        uv_timer_start(&io->grace, on_grace, SF_IO_STOP_GRACE_MS, 0);
    else
        close_all(io);
}

static void on_stop_async(uv_async_t *h)
{
    sf_io_t *io = h->data;
    if (io->stopping)
        return;
    io->stopping = true;
    atomic_store(&io->shutting_down, true);
    if (io->has_ingress)
        sf_ingress_drain(&io->ingress, finish_stop, io);
    else
        finish_stop(io);
}

/* Closes what is open on the calling thread (the loop must not run elsewhere),
 * runs the loop until every handle is closed and closes it. */
static void close_here(sf_io_t *io)
{
    on_stop_async(&io->stop_async);
    uv_run(&io->loop, UV_RUN_DEFAULT);
}

static void io_main(void *arg)
{
    sf_io_t *io = arg;
    sf_log_set_tag("io");
    if (io->hooks.on_start)
        io->hooks.on_start(io->hooks.ud, &io->loop);
    uv_run(&io->loop, UV_RUN_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                 */

static void io_release(sf_io_t *io)
{
    int rc = uv_loop_close(&io->loop);
    if (rc != 0)
        sf_log_error("io: a handle was left open on the I/O loop: %s", uv_strerror(rc));
    SF_ASSERT(rc == 0);
    if (io->has_ingress)
        sf_ingress_dispose(&io->ingress);
    if (io->has_egress)
        sf_egress_dispose(&io->egress);
    free(io);
}

int sf_io_new(const sf_io_config_t *config, const sf_io_hooks_t *hooks, sf_io_t **out)
{
    sf_io_t *io;
    int rc;

    if (config->max_parallelism == 0 || config->max_parallelism > 65536 ||
        (config->ingress && !hooks->route))
        return SF_EINVAL;
    io = sf_xcalloc(1, sizeof(*io));
    io->hooks = *hooks;
    atomic_init(&io->shutting_down, false);
    rc = uv_loop_init(&io->loop);
    if (rc < 0) {
        free(io);
        return sf_err_from_uv(rc);
    }
    rc = uv_async_init(&io->loop, &io->stop_async, on_stop_async);
    if (rc < 0) {
        uv_loop_close(&io->loop);
        free(io);
        return sf_err_from_uv(rc);
    }
    io->stop_async.data = io;
    uv_timer_init(&io->loop, &io->grace);
    io->grace.data = io;
    if (config->ingress) {
        rc = sf_ingress_init(&io->ingress, &io->loop, config->ingress, &io->hooks, &io->ctr,
                             &io->shutting_down, config->max_parallelism);
        if (rc < 0)
            goto fail;
        io->has_ingress = true;
    }
    if (config->egress) {
        rc = sf_egress_init(&io->egress, &io->loop, config->egress, &io->ctr);
        if (rc < 0)
            goto fail;
        io->has_egress = true;
    }
    *out = io;
    return 0;
fail:
    close_here(io);
    io_release(io);
    return rc;
}

uint16_t sf_io_ingress_port(const sf_io_t *io) { return io->has_ingress ? io->ingress.port : 0; }

uint16_t sf_io_egress_port(const sf_io_t *io) { return io->has_egress ? io->egress.port : 0; }

int sf_io_start(sf_io_t *io)
{
    int rc;
    SF_ASSERT(!io->started && !io->stopped);
    rc = uv_thread_create(&io->thread, io_main, io);
    if (rc < 0)
        return sf_err_from_uv(rc);
    io->started = true;
    return 0;
}

void sf_io_shutdown(sf_io_t *io)
{
    atomic_store(&io->shutting_down, true);
}

void sf_io_stop(sf_io_t *io)
{
    if (io->stopped)
        return;
    if (io->started) {
        atomic_thread_fence(memory_order_seq_cst); /* MACHINE.md: before uv_async_send */
        uv_async_send(&io->stop_async);
        uv_thread_join(&io->thread);
    } else {
        close_here(io);
    }
    io->stopped = true;
}

void sf_io_free(sf_io_t *io)
{
    if (!io)
        return;
    sf_io_stop(io);
    io_release(io);
}

void sf_io_egress_push(sf_io_t *io, sf_msg_fifo_t *chain)
{
    if (!io->has_egress) {
        if (chain->head)
            sf_log_warn("io: %zu egress records dropped: the module defines no egress",
                        chain->count);
        sf_msg_fifo_clear(chain);
        return;
    }
    sf_egress_push(&io->egress, chain);
}

int sf_io_egress_publish_durable(sf_io_t *io, sf_msg_fifo_t *chain, uint64_t epoch)
{
    if (!io->has_egress) {
        sf_io_egress_push(io, chain);
        return 0;
    }
    return sf_egress_publish_durable(&io->egress, chain, epoch);
}

uint64_t sf_io_egress_published_epoch(sf_io_t *io)
{
    return io->has_egress ? sf_egress_published_epoch(&io->egress) : 0;
}

void sf_io_egress_barrier(sf_io_t *io, uint64_t id)
{
    if (io->has_egress)
        sf_egress_mark(&io->egress, SF_EGRESS_MARK_BARRIER, id);
}

void sf_io_egress_publish(sf_io_t *io, uint64_t id)
{
    if (io->has_egress)
        sf_egress_mark(&io->egress, SF_EGRESS_MARK_PUBLISH, id);
}

void sf_io_stats(const sf_io_t *io, sf_io_stats_t *out)
{
    const sf__io_counters_t *c = &io->ctr;
    out->ingress_accepted = sf__io_get(c, SF__IO_IN_ACCEPTED);
    out->ingress_bad_request = sf__io_get(c, SF__IO_IN_BAD_REQUEST);
    out->ingress_not_found = sf__io_get(c, SF__IO_IN_NOT_FOUND);
    out->ingress_bad_method = sf__io_get(c, SF__IO_IN_BAD_METHOD);
    out->ingress_unsupported_type = sf__io_get(c, SF__IO_IN_UNSUPPORTED_TYPE);
    out->ingress_backpressured = sf__io_get(c, SF__IO_IN_BACKPRESSURED);
    out->ingress_parked = sf__io_get(c, SF__IO_IN_PARKED);
    out->ingress_shutting_down = sf__io_get(c, SF__IO_IN_SHUTTING_DOWN);
    out->ingress_failed = sf__io_get(c, SF__IO_IN_FAILED);
    out->egress_records_in = sf__io_get(c, SF__IO_EG_IN);
    out->egress_records_out = sf__io_get(c, SF__IO_EG_OUT);
    out->egress_dropped_overflow = sf__io_get(c, SF__IO_EG_DROPPED_OVERFLOW);
    out->egress_dropped_unread = sf__io_get(c, SF__IO_EG_DROPPED_UNREAD);
    out->egress_invalid = sf__io_get(c, SF__IO_EG_INVALID);
    out->egress_unknown_topic = sf__io_get(c, SF__IO_EG_UNKNOWN_TOPIC);
    out->egress_unknown_egress = sf__io_get(c, SF__IO_EG_UNKNOWN_EGRESS);
    out->egress_retained = sf__io_get(c, SF__IO_EG_RETAINED);
}

void sf_io_ingress_room(sf_io_t *io)
{
    if (io->has_ingress)
        sf_ingress_room(&io->ingress);
}

uv_loop_t *sf_io_loop(sf_io_t *io) { return &io->loop; }
