/* statefun-c: Apache License 2.0.
 *
 * The function server of the runtime's end-to-end tests
 * (tests/runtime/check_e2e_*.c): C SDK functions behind the transport's HTTP
 * server, with behaviours a test switches at run time.
 *
 *   e2e_fn [--listen HOST:PORT] [--ttl MS] [--mode ok|fail|hang]
 *          (defaults: 127.0.0.1:0, 1200 ms, ok)
 *
 * Prints "listening on HOST:PORT" once it listens; stops on SIGTERM/SIGINT.
 * Single-threaded (one libuv loop).
 *
 * Functions (namespace e2e.fns):
 *   seq/ID    message "LANE SEQ" (or "SEQ": lane 0). Keeps the last SEQ of
 *             each lane in the string state "lanes" ("s0,s1,..."), counts
 *             messages in "count", and counts in "bad" every message whose
 *             SEQ is not the lane's last + 1. Being state, these count each
 *             message as the runtime committed it: exactly once, in order.
 *   ttl/ID    states "w" (AFTER_WRITE) and "i" (AFTER_INVOKE), both --ttl.
 *             "set": writes both; "noop": nothing; "peek": egress record
 *             "w=V i=V" ("-" for no value) to topic "ttl".
 *   delay/ID  counts commands in "n"; "after MS TOKEN TAG" sends TAG to
 *             sink/ID after MS ("-": no token); "aftercancel MS TOKEN TAG"
 *             sends it and cancels it in the same reply; "cancel TOKEN".
 *   sink/ID   sends "ID:TEXT" to topic "out".
 *   blob/ID   "get": sends "ID:len=N" (N: bytes of the string state "b") to
 *             topic "out"; anything else is stored in "b".
 *
 * Control (any method; every other path is a function call):
 *   /ctl/mode/ok     answer calls (the default)
 *   /ctl/mode/fail   answer calls 500
 *   /ctl/mode/garbage  answer calls 200 with bytes that are no FromFunction
 *   /ctl/mode/violate  answer calls with the function's reply (state
 *                    mutations and all) plus an outgoing message without a
 *                    target, which the protocol forbids: the runtime must
 *                    apply none of it
 *   /ctl/mode/hang   never answer calls (they are answered 500 once the mode
 *                    changes, long after the runtime gave up on them)
 *   /ctl/slow/MS     delay every answer by MS (0: none)
 *   /ctl/stats       "calls=N ok=N failed=N hung=N invocations=N maxbatch=N
 *                    multi=N" (multi: calls carrying more than one message)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sf_http.h"
#include "sf_proto.h"
#include "statefun/sf.h"

#define MAX_LANES 64

typedef enum { MODE_OK, MODE_FAIL, MODE_GARBAGE, MODE_HANG, MODE_VIOLATE } fn_mode_t;

/* An answer delayed by /ctl/slow. */
typedef struct delayed_s {
    struct delayed_s *prev, *next;
    uv_timer_t timer;
    sf_http_request_t *req;
    int status;
    size_t len;
    uint8_t body[];
} delayed_t;

/* A call held by /ctl/mode/hang. */
typedef struct held_s {
    struct held_s *next;
    sf_http_request_t *req;
} held_t;

static struct {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    sf_http_server_t *server;
    sf_functions_t *fns;
    sf_handler_t *handler;
    sf_arena_t arena;
    fn_mode_t mode;
    unsigned slow_ms;
    int64_t ttl_ms;
    delayed_t *delayed;
    held_t *held;
    unsigned long calls, ok, failed, hung, invocations, maxbatch, multi;
} g;

/* ------------------------------------------------------------------------ */
/* Functions                                                                  */

static int fn_seq(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    const char *text, *lanes_s = NULL, *p;
    long lanes[MAX_LANES] = {0};
    unsigned lane = 0, nlanes = 0, i;
    long seq;
    int32_t count = 0, bad = 0;
    char buf[MAX_LANES * 12], *o;
    int rv;

    (void)ud;
    if ((rv = sf_message_as_string(msg, &text, NULL)) != 0)
        return rv;
    if (sscanf(text, "%u %ld", &lane, &seq) != 2) {
        lane = 0;
        if (sscanf(text, "%ld", &seq) != 1)
            return SF_EINVAL;
    }
    if (lane >= MAX_LANES)
        return SF_EINVAL;
    if ((rv = sf_storage_get_string(ctx, "lanes", &lanes_s, NULL)) < 0 ||
        (rv = sf_storage_get_int(ctx, "count", &count)) < 0 ||
        (rv = sf_storage_get_int(ctx, "bad", &bad)) < 0)
        return rv;
    for (p = lanes_s; p && *p && nlanes < MAX_LANES;) {
        lanes[nlanes++] = strtol(p, (char **)&p, 10);
        if (*p == ',')
            p++;
    }
    if (lane >= nlanes)
        nlanes = lane + 1;
    if (seq != lanes[lane] + 1)
        bad++;
    lanes[lane] = seq;
    count++;
    for (i = 0, o = buf; i < nlanes; i++)
        o += sprintf(o, "%s%ld", i ? "," : "", lanes[i]);
    if ((rv = sf_storage_set_string(ctx, "lanes", buf, (size_t)(o - buf))) != 0 ||
        (rv = sf_storage_set_int(ctx, "count", count)) != 0 ||
        (rv = sf_storage_set_int(ctx, "bad", bad)) != 0)
        return rv;
    return 0;
}

static int fn_ttl(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    const char *text, *w = NULL, *i = NULL;
    char out[256];
    int rv;

    (void)ud;
    if ((rv = sf_message_as_string(msg, &text, NULL)) != 0)
        return rv;
    if (strcmp(text, "set") == 0) {
        if ((rv = sf_storage_set_string(ctx, "w", "x", 1)) != 0)
            return rv;
        return sf_storage_set_string(ctx, "i", "x", 1);
    }
    if (strcmp(text, "noop") == 0)
        return 0;
    if (strcmp(text, "peek") != 0)
        return SF_EINVAL;
    if ((rv = sf_storage_get_string(ctx, "w", &w, NULL)) < 0 ||
        (rv = sf_storage_get_string(ctx, "i", &i, NULL)) < 0)
        return rv;
    snprintf(out, sizeof out, "w=%s i=%s", w ? w : "-", i ? i : "-");
    return sf_send_egress_playground(ctx, NULL, "ttl", out, strlen(out));
}

static int fn_delay(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    const char *text;
    char cmd[32], token[128], tag[128];
    long ms = 0;
    int32_t n = 0;
    int rv;

    (void)ud;
    if ((rv = sf_message_as_string(msg, &text, NULL)) != 0)
        return rv;
    if ((rv = sf_storage_get_int(ctx, "n", &n)) < 0 ||
        (rv = sf_storage_set_int(ctx, "n", n + 1)) != 0)
        return rv;
    if (sscanf(text, "%31s", cmd) != 1)
        return SF_EINVAL;
    if (strcmp(cmd, "cancel") == 0) {
        if (sscanf(text, "%*s %127s", token) != 1)
            return SF_EINVAL;
        return sf_cancel_delayed(ctx, token);
    }
    if (sscanf(text, "%*s %ld %127s %127s", &ms, token, tag) != 3)
        return SF_EINVAL;
    rv = sf_send_after_string(ctx, ms, "e2e.fns/sink", sf_self(ctx)->id,
                              strcmp(token, "-") == 0 ? NULL : token, tag);
    if (rv != 0)
        return rv;
    if (strcmp(cmd, "aftercancel") == 0)
        return sf_cancel_delayed(ctx, token);
    return strcmp(cmd, "after") == 0 ? 0 : SF_EINVAL;
}

static int fn_sink(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    const char *text;
    char out[512];
    int rv;

    (void)ud;
    if ((rv = sf_message_as_string(msg, &text, NULL)) != 0)
        return rv;
    snprintf(out, sizeof out, "%s:%s", sf_self(ctx)->id, text);
    return sf_send_egress_playground(ctx, NULL, "out", out, strlen(out));
}

static int fn_blob(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    const char *text, *b = NULL;
    size_t len, blen = 0;
    char out[256];
    int rv;

    (void)ud;
    if ((rv = sf_message_as_string(msg, &text, &len)) != 0)
        return rv;
    if (strcmp(text, "get") != 0)
        return sf_storage_set_string(ctx, "b", text, len);
    if ((rv = sf_storage_get_string(ctx, "b", &b, &blen)) < 0)
        return rv;
    snprintf(out, sizeof out, "%s:len=%zu", sf_self(ctx)->id, blen);
    return sf_send_egress_playground(ctx, NULL, "out", out, strlen(out));
}

static int register_fns(sf_functions_t *fns)
{
    const sf_value_spec_t seq_specs[] = {SF_SPEC_STRING("lanes"), SF_SPEC_INT("count"),
                                         SF_SPEC_INT("bad")};
    const sf_value_spec_t ttl_specs[] = {
        {"w", SF_TYPE_STRING, SF_EXPIRE_AFTER_WRITE, g.ttl_ms},
        {"i", SF_TYPE_STRING, SF_EXPIRE_AFTER_INVOKE, g.ttl_ms},
    };
    const sf_value_spec_t delay_specs[] = {SF_SPEC_INT("n")};
    const sf_value_spec_t blob_specs[] = {SF_SPEC_STRING("b")};
    int rv;
    if ((rv = sf_functions_bind(fns, "e2e.fns/seq", fn_seq, NULL, seq_specs, 3)) != 0 ||
        (rv = sf_functions_bind(fns, "e2e.fns/ttl", fn_ttl, NULL, ttl_specs, 2)) != 0 ||
        (rv = sf_functions_bind(fns, "e2e.fns/delay", fn_delay, NULL, delay_specs, 1)) != 0 ||
        (rv = sf_functions_bind(fns, "e2e.fns/blob", fn_blob, NULL, blob_specs, 1)) != 0)
        return rv;
    return sf_functions_bind(fns, "e2e.fns/sink", fn_sink, NULL, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* Serving                                                                    */

static const sf_http_header_t ct_octets = {"content-type", 12, "application/octet-stream", 24};
static const sf_http_header_t ct_text = {"content-type", 12, "text/plain", 10};

static void reply_text(sf_http_request_t *req, int status, const char *text)
{
    sf_http_respond(req, status, &ct_text, 1, text, strlen(text));
}

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void delayed_unlink(delayed_t *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        g.delayed = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

static void on_delayed(uv_timer_t *t)
{
    delayed_t *d = t->data;
    delayed_unlink(d);
    sf_http_respond(d->req, d->status, &ct_octets, 1, d->body, d->len);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void answer(sf_http_request_t *req, int status, const uint8_t *body, size_t len)
{
    delayed_t *d;
    if (g.slow_ms == 0) {
        sf_http_respond(req, status, &ct_octets, 1, body, len);
        return;
    }
    d = malloc(sizeof *d + len);
    if (!d) {
        reply_text(req, 500, "out of memory");
        return;
    }
    d->req = req;
    d->status = status;
    d->len = len;
    memcpy(d->body, body, len);
    d->prev = NULL;
    d->next = g.delayed;
    if (g.delayed)
        g.delayed->prev = d;
    g.delayed = d;
    uv_timer_init(&g.loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_delayed, g.slow_ms, 0);
}

/* Answers the calls held by the hang mode (the runtime gave up on them). */
static void release_held(void)
{
    while (g.held) {
        held_t *h = g.held;
        g.held = h->next;
        reply_text(h->req, 500, "held by the hang mode");
        free(h);
    }
}

static void on_control(sf_http_request_t *req, const char *path)
{
    char text[256];
    if (strcmp(path, "/ctl/stats") == 0) {
        snprintf(text, sizeof text,
                 "calls=%lu ok=%lu failed=%lu hung=%lu invocations=%lu maxbatch=%lu multi=%lu\n",
                 g.calls, g.ok, g.failed, g.hung, g.invocations, g.maxbatch, g.multi);
        reply_text(req, 200, text);
        return;
    }
    if (strncmp(path, "/ctl/mode/", 10) == 0) {
        const char *m = path + 10;
        if (strcmp(m, "ok") == 0)
            g.mode = MODE_OK;
        else if (strcmp(m, "fail") == 0)
            g.mode = MODE_FAIL;
        else if (strcmp(m, "garbage") == 0)
            g.mode = MODE_GARBAGE;
        else if (strcmp(m, "hang") == 0)
            g.mode = MODE_HANG;
        else if (strcmp(m, "violate") == 0)
            g.mode = MODE_VIOLATE;
        else {
            reply_text(req, 400, "modes: ok, fail, garbage, hang, violate\n");
            return;
        }
        if (g.mode != MODE_HANG)
            release_held();
        reply_text(req, 200, "ok\n");
        return;
    }
    if (strncmp(path, "/ctl/slow/", 10) == 0) {
        g.slow_ms = (unsigned)strtoul(path + 10, NULL, 10);
        reply_text(req, 200, "ok\n");
        return;
    }
    reply_text(req, 404, "unknown control path\n");
}

/* Answers the reply |out| (one FromFunction field: invocation_result, 100)
 * with one more outgoing message without a target inside that result, after
 * its state mutations. Wire level: a second occurrence of field 100 would
 * replace the first (it is a oneof member), not merge with it. An
 * IncompleteInvocationContext goes unchanged. */
static void violate(sf_http_request_t *req, const uint8_t *out, size_t out_len)
{
    uint8_t *body;
    size_t len = 0, i = 2, n = 0;
    unsigned shift = 0;

    /* An IncompleteInvocationContext (field 101: aa 06) goes as it is. */
    if (out_len >= 2 && out[0] == 0xaa && out[1] == 0x06) {
        answer(req, 200, out, out_len);
        return;
    }
    /* tag 100/length-delimited = varint 802 = a2 06, then the length */
    if (out_len < 3 || out[0] != 0xa2 || out[1] != 0x06) {
        reply_text(req, 500, "violate: the reply is no invocation_result");
        return;
    }
    while (i < out_len && shift < 35) {
        len |= (size_t)(out[i] & 0x7f) << shift;
        shift += 7;
        if (!(out[i++] & 0x80))
            break;
    }
    if (i + len != out_len || !(body = malloc(out_len + 16))) {
        reply_text(req, 500, "violate: cannot rewrite the reply");
        return;
    }
    body[n++] = 0xa2;
    body[n++] = 0x06;
    for (size_t v = len + 2; ; v >>= 7) {
        body[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f)
            break;
    }
    memcpy(body + n, out + i, len);
    n += len;
    body[n++] = 0x12; /* outgoing_messages (2), length-delimited */
    body[n++] = 0x00; /* an empty Invocation: no target */
    answer(req, 200, body, n);
    free(body);
}

static void on_request(sf_http_request_t *req, void *ud)
{
    const char *path = sf_http_request_path(req);
    const uint8_t *body, *out;
    size_t len, out_len;
    sf_pb_to_function_t *tf;
    held_t *h;
    int rv;

    (void)ud;
    if (strncmp(path, "/ctl/", 5) == 0) {
        on_control(req, path);
        return;
    }
    g.calls++;
    if (g.mode == MODE_FAIL) {
        g.failed++;
        reply_text(req, 500, "failing on purpose");
        return;
    }
    if (g.mode == MODE_GARBAGE) {
        /* A truncated varint: no protobuf parser accepts it. */
        static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff};
        g.failed++;
        sf_http_respond(req, 200, &ct_octets, 1, garbage, sizeof garbage);
        return;
    }
    if (g.mode == MODE_HANG) {
        g.hung++;
        if (!(h = malloc(sizeof *h))) {
            reply_text(req, 500, "out of memory");
            return;
        }
        h->req = req;
        h->next = g.held;
        g.held = h;
        return;
    }
    body = sf_http_request_body(req, &len);
    sf_arena_reset(&g.arena);
    tf = sf_proto_to_function_unpack(&g.arena, body, len);
    if (tf && tf->invocation) {
        unsigned long n = tf->invocation->n_invocations;
        g.invocations += n;
        if (n > g.maxbatch)
            g.maxbatch = n;
        if (n > 1)
            g.multi++;
    }
    rv = sf_handler_invoke(g.handler, body, len, &out, &out_len);
    if (rv == 0 && g.mode == MODE_VIOLATE) {
        g.failed++;
        violate(req, out, out_len);
        return;
    }
    if (rv == 0) {
        g.ok++;
        answer(req, 200, out, out_len);
        return;
    }
    g.failed++;
    fprintf(stderr, "e2e_fn: %s\n", sf_handler_reason(g.handler));
    reply_text(req,
               rv == SF_EPROTO      ? 400
               : rv == SF_ENOTFOUND ? 404
                                    : 500,
               sf_handler_reason(g.handler));
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    (void)s;
    release_held();
    while (g.delayed) {
        delayed_t *d = g.delayed;
        delayed_unlink(d);
        sf_http_respond(d->req, 503, &ct_octets, 1, NULL, 0);
        uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
    }
    if (g.server) {
        sf_http_server_close(g.server, NULL, NULL);
        g.server = NULL;
    }
    uv_close((uv_handle_t *)&g.sigterm, NULL);
    uv_close((uv_handle_t *)&g.sigint, NULL);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    char host[256];
    sf_http_server_config_t sc;
    unsigned port = 0;
    int i, rv;

    g.ttl_ms = 1200;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen = argv[i + 1];
        else if (strcmp(argv[i], "--ttl") == 0)
            g.ttl_ms = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--mode") == 0 && strcmp(argv[i + 1], "fail") == 0)
            g.mode = MODE_FAIL;
        else if (strcmp(argv[i], "--mode") == 0 && strcmp(argv[i + 1], "hang") == 0)
            g.mode = MODE_HANG;
        else if (strcmp(argv[i], "--mode") == 0 && strcmp(argv[i + 1], "ok") == 0)
            g.mode = MODE_OK;
        else
            break;
    }
    if (i != argc || sscanf(listen, "%255[^:]:%u", host, &port) != 2 || port > 65535) {
        fprintf(stderr, "usage: e2e_fn [--listen HOST:PORT] [--ttl MS] [--mode ok|fail|hang]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((rv = sf_functions_create(NULL, register_fns, &g.fns)) != 0 ||
        (rv = sf_handler_new(g.fns, &g.handler)) != 0) {
        fprintf(stderr, "e2e_fn: %s\n", sf_strerror(rv));
        return 1;
    }
    sf_arena_init(&g.arena, NULL);
    uv_loop_init(&g.loop);
    memset(&sc, 0, sizeof sc);
    sc.host = host;
    sc.port = (uint16_t)port;
    if ((rv = sf_http_server_new(&g.loop, &sc, on_request, NULL, &g.server)) != 0) {
        fprintf(stderr, "e2e_fn: cannot listen on %s: %s\n", listen, sf_strerror(rv));
        return 1;
    }
    uv_signal_init(&g.loop, &g.sigterm);
    uv_signal_init(&g.loop, &g.sigint);
    uv_signal_start(&g.sigterm, on_signal, SIGTERM);
    uv_signal_start(&g.sigint, on_signal, SIGINT);
    printf("listening on %s:%u\n", host, (unsigned)sf_http_server_port(g.server));
    fflush(stdout);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    sf_arena_dispose(&g.arena);
    sf_handler_free(g.handler);
    sf_functions_free(g.fns);
    return 0;
}
