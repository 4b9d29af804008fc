/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/io over real HTTP on loopback: the I/O thread is started
 * with test hooks (which collect routed messages, refuse key groups, delay
 * or fail persisting), and curl talks to it over HTTP/1.1 and HTTP/2 prior
 * knowledge; the batching test uses the project's own HTTP/2 client.
 *
 * Covered: every ingress status code and its one-line reason, typed and
 * string bodies as routed messages, backpressure and shutdown 503s, the
 * persist hook (answers wait for it, failures answer 503), batching of one
 * loop turn; egress pops in order, 404 and 405, JSON variants and dropped
 * records, long polls answered by a record pushed from this thread, offset
 * reads as NDJSON, topic bounds, and the stop answering waiting polls.
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io.h"
#include "message.h"
#include "sf_http.h"
#include "sf_proto.h"
#include "testutil.h"

#define MAXP 128

/* ------------------------------------------------------------------------ */
/* Test hooks (run on the I/O thread)                                         */

enum { PERSIST_NONE = 0, PERSIST_ASYNC = 1, PERSIST_FAIL_SYNC = 2, PERSIST_FAIL_ASYNC = 3 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sf_msg_fifo_t routed;         /* under mu */
static int route_calls;              /* under mu */
static int routed_before_persisted;  /* under mu: messages routed before their batch's done */
static _Atomic bool accept_all;
static _Atomic int route_error;
static _Atomic int persist_calls;
static _Atomic int persist_done;
static _Atomic int start_calls, stop_calls;
static int persist_mode;

/* PERSIST_ASYNC: completions wait for a timer on the I/O loop. */
static uv_timer_t persist_timer;
static struct {
    sf_io_persist_done_cb done;
    void *token;
} pending_persist[256];
static int npending_persist;

static int hook_route(void *ud, sf_msg_fifo_t *chain)
{
    int err = atomic_load(&route_error);
    if (err)
        return err;
    pthread_mutex_lock(&mu);
    route_calls++;
    if (persist_mode == PERSIST_ASYNC && atomic_load(&persist_done) == 0)
        routed_before_persisted += (int)chain->count;
    sf_msg_fifo_splice(&routed, chain);
    pthread_mutex_unlock(&mu);
    return 0;
}

static bool hook_serves(void *ud, const char *ns, size_t ns_len, const char *type, size_t type_len)
{
    return !(type_len == 7 && memcmp(type, "missing", 7) == 0);
}

static bool hook_accepting(void *ud, uint16_t key_group) { return atomic_load(&accept_all); }

static void on_persist_timer(uv_timer_t *h)
{
    int i, n = npending_persist;
    npending_persist = 0;
    for (i = 0; i < n; i++) {
        atomic_fetch_add(&persist_done, 1);
        pending_persist[i].done(pending_persist[i].token,
                                persist_mode == PERSIST_FAIL_ASYNC ? SF_EIO : 0);
    }
}

static int hook_persist(void *ud, const sf_msg_fifo_t *chain, sf_io_persist_done_cb done,
                        void *token)
{
    atomic_fetch_add(&persist_calls, 1);
    ck_assert_uint_gt(chain->count, 0);
    if (persist_mode == PERSIST_FAIL_SYNC)
        return SF_EIO;
    ck_assert_int_lt(npending_persist, 256);
    pending_persist[npending_persist].done = done;
    pending_persist[npending_persist].token = token;
    npending_persist++;
    if (!uv_is_active((uv_handle_t *)&persist_timer))
        uv_timer_start(&persist_timer, on_persist_timer, 150, 0);
    return 0;
}

static void hook_start(void *ud, uv_loop_t *loop)
{
    atomic_fetch_add(&start_calls, 1);
    uv_timer_init(loop, &persist_timer);
}

static void hook_stop(void *ud, uv_loop_t *loop)
{
    atomic_fetch_add(&stop_calls, 1);
    ck_assert_int_eq(npending_persist, 0); /* the stop waits for batches in flight */
    uv_close((uv_handle_t *)&persist_timer, NULL);
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                    */

static sf_io_t *io;
static char *tmpdir;
static uint16_t in_port, eg_port;

typedef struct {
    int persist_mode;
    size_t max_records;
    bool hold; /* exactly-once records wait for checkpoints */
    uint32_t max_park_ms;
} opts_t;

static void start_io_opts(const opts_t *o)
{
    static const char *const topics[] = {"greetings", "other", "a b"};
    sf_io_ingress_config_t in = {
        .host = "127.0.0.1", .port = 0, .max_body_bytes = 1024, .max_park_ms = o->max_park_ms};
    sf_io_egress_config_t eg = {.host = "127.0.0.1",
                                .port = 0,
                                .topics = topics,
                                .ntopics = 3,
                                .exactly_once = o->hold,
                                .hold_for_checkpoints = o->hold,
                                .max_records_per_topic = o->max_records};
    sf_io_config_t cfg = {.ingress = &in, .egress = &eg, .max_parallelism = MAXP};
    sf_io_hooks_t hooks = {.route = hook_route,
                           .serves = hook_serves,
                           .accepting = hook_accepting,
                           .persist = o->persist_mode ? hook_persist : NULL,
                           .on_start = hook_start,
                           .on_stop = hook_stop};
    sf_msg_fifo_init(&routed);
    route_calls = 0;
    routed_before_persisted = 0;
    atomic_store(&accept_all, true);
    atomic_store(&route_error, 0);
    atomic_store(&persist_calls, 0);
    atomic_store(&persist_done, 0);
    atomic_store(&start_calls, 0);
    atomic_store(&stop_calls, 0);
    persist_mode = o->persist_mode;
    npending_persist = 0;
    tmpdir = sf_test_mkdtemp("sf-io");
    ck_assert_ptr_nonnull(tmpdir);
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &io), 0);
    in_port = sf_io_ingress_port(io);
    eg_port = sf_io_egress_port(io);
    ck_assert_uint_ne(in_port, 0);
    ck_assert_uint_ne(eg_port, 0);
    ck_assert_uint_ne(in_port, eg_port);
    ck_assert_int_eq(sf_io_start(io), 0);
}

static void start_io(void)
{
    opts_t o = {0};
    start_io_opts(&o);
}

static void stop_io(void)
{
    sf_io_free(io);
    io = NULL;
    ck_assert_int_eq(atomic_load(&start_calls), 1);
    ck_assert_int_eq(atomic_load(&stop_calls), 1);
    sf_msg_fifo_clear(&routed);
    sf_test_rmtree(tmpdir);
    tmpdir = NULL;
}

static sf_msg_t *take_routed(void)
{
    sf_msg_t *m;
    pthread_mutex_lock(&mu);
    m = sf_msg_fifo_pop(&routed);
    pthread_mutex_unlock(&mu);
    return m;
}

static size_t routed_count(void)
{
    size_t n;
    pthread_mutex_lock(&mu);
    n = routed.count;
    pthread_mutex_unlock(&mu);
    return n;
}

/* ------------------------------------------------------------------------ */
/* curl                                                                       */

typedef struct {
    int status;
    char version[8];
    char *body;
    size_t body_len;
    char *headers;
    FILE *pipe;
    int tag;
    uint64_t started_ms;
} resp_t;

static int next_tag;

/* Starts curl with |args| in the background. */
static void curl_start(resp_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void curl_start(resp_t *r, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    memset(r, 0, sizeof(*r));
    r->tag = next_tag++;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd),
             "curl -sS --max-time 20 -o %s/body%d -D %s/hdrs%d "
             "-w '%%{http_code} %%{http_version}' %s",
             tmpdir, r->tag, tmpdir, r->tag, args);
    r->started_ms = sf_now_ms();
    r->pipe = popen(cmd, "r");
    ck_assert_ptr_nonnull(r->pipe);
}

/* Waits for curl; fills status, version, body and headers. */
static void curl_finish(resp_t *r)
{
    char out[64] = "", path[512];
    size_t n = fread(out, 1, sizeof(out) - 1, r->pipe);
    out[n] = '\0';
    ck_assert_int_eq(pclose(r->pipe), 0);
    ck_assert_int_eq(sscanf(out, "%d %7s", &r->status, r->version), 2);
    snprintf(path, sizeof(path), "%s/body%d", tmpdir, r->tag);
    r->body = sf_test_read_file(path, &r->body_len);
    if (!r->body) { /* curl writes no file for an empty body */
        r->body = calloc(1, 1);
        r->body_len = 0;
    }
    snprintf(path, sizeof(path), "%s/hdrs%d", tmpdir, r->tag);
    r->headers = sf_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(r->headers);
}

static void curl(resp_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void curl(resp_t *r, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    curl_start(r, "%s", args);
    curl_finish(r);
}

static void resp_free(resp_t *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

/* The value of header |name| in |r| (lowercase compare), copied into |out|. */
static bool resp_header(const resp_t *r, const char *name, char *out, size_t outlen)
{
    const char *line = r->headers;
    size_t nlen = strlen(name);
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vl = len - nlen - 1;
            while (vl && *v == ' ') {
                v++;
                vl--;
            }
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            snprintf(out, outlen, "%.*s", (int)vl, v);
            return true;
        }
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

/* An error answer: |status|, one line of text ending in a newline. */
static void assert_error(const resp_t *r, int status)
{
    char ct[128];
    ck_assert_msg(r->status == status, "status %d, wanted %d (body %.*s)", r->status, status,
                  (int)r->body_len, r->body);
    ck_assert_uint_gt(r->body_len, 1);
    ck_assert_int_eq(r->body[r->body_len - 1], '\n');
    ck_assert_ptr_null(memchr(r->body, '\n', r->body_len - 1));
    ck_assert(resp_header(r, "content-type", ct, sizeof(ct)));
    ck_assert_msg(strncmp(ct, "text/plain", 10) == 0, "content-type %s", ct);
}

static const char *const protos[] = {"--http1.1", "--http2-prior-knowledge"};
static const char *const versions[] = {"1.1", "2"};

static char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    ck_assert_int_eq(sf_test_write_file(path, data, len), 0);
    return path;
}

/* ------------------------------------------------------------------------ */
/* Ingress                                                                    */

START_TEST(test_ingress_typed_and_string)
{
    static const uint8_t bin[] = {0x08, 0x00, 0xff, 0x10, 'x', 0x00};
    const char *proto = protos[_i], *version = versions[_i];
    resp_t r;
    sf_msg_t *m;
    char *binpath;
    start_io();
    binpath = strdup(write_tmp("bin", bin, sizeof(bin)));

    /* A typed value: the raw bytes, the id decoded. */
    curl(&r, "%s -X PUT -H 'Content-Type: application/vnd.com.example/Foo' --data-binary @%s "
         "http://127.0.0.1:%u/ns/fn/a%%2Fb%%20c",
         proto, binpath, in_port);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.version, version);
    resp_free(&r);
    m = take_routed();
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->kind, SF_MSG_INVOKE);
    ck_assert_str_eq(sf_msg_target(m), "ns/fn/a/b c");
    ck_assert_ptr_null(sf_msg_caller(m));
    ck_assert_str_eq(sf_msg_typename(m), "com.example/Foo");
    ck_assert_uint_eq(m->value_len, sizeof(bin));
    ck_assert_int_eq(memcmp(sf_msg_value(m), bin, sizeof(bin)), 0);
    ck_assert_uint_eq(m->key_group, sf_key_group("ns/fn/a/b c", 11, MAXP));
    sf_msg_free(m);

    /* Strings: text/plain with a charset, no Content-Type, curl -d's default. */
    {
        static const char *const ct_args[] = {"-H 'Content-Type: text/plain; charset=utf-8'",
                                              "-H 'Content-Type:'", ""};
        size_t k;
        for (k = 0; k < SF_ARRAY_SIZE(ct_args); k++) {
            sf_arena_t arena;
            char *s = NULL;
            size_t slen = 0;
            curl(&r, "%s -X POST %s --data-binary 'h\xc3\xa9llo %zu' http://127.0.0.1:%u/ns/fn/joe",
                 proto, ct_args[k], k, in_port);
            ck_assert_int_eq(r.status, 200);
            resp_free(&r);
            m = take_routed();
            ck_assert_ptr_nonnull(m);
            ck_assert_str_eq(sf_msg_target(m), "ns/fn/joe");
            ck_assert_str_eq(sf_msg_typename(m), "io.statefun.types/string");
            sf_arena_init(&arena, NULL);
            ck_assert_int_eq(sf_proto_decode_string(&arena, sf_msg_value(m), m->value_len, &s,
                                                    &slen),
                             0);
            ck_assert_uint_eq(slen, 8);
            ck_assert_int_eq(memcmp(s, "h\xc3\xa9llo ", 7), 0);
            ck_assert_int_eq(s[7], (char)('0' + k));
            sf_arena_dispose(&arena);
            sf_msg_free(m);
        }
    }
    /* An empty typed body is a value of zero bytes. */
    curl(&r, "%s -X PUT -H 'Content-Type: application/vnd.x/y' --data-binary '' "
         "http://127.0.0.1:%u/ns/fn/empty",
         proto, in_port);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    m = take_routed();
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->value_len, 0);
    sf_msg_free(m);
    ck_assert_ptr_null(take_routed());
    {
        sf_io_stats_t st;
        sf_io_stats(io, &st);
        ck_assert_uint_eq(st.ingress_accepted, 5);
    }
    free(binpath);
    stop_io();
}
END_TEST

START_TEST(test_ingress_errors)
{
    const char *proto = protos[_i];
    resp_t r;
    char h[128];
    sf_io_stats_t st;
    char big[2000];
    char *bigpath;
    start_io();

    /* 400: malformed paths, typename and text bodies. */
    curl(&r, "%s -X PUT -d x http://127.0.0.1:%u/ns/fn", proto, in_port);
    assert_error(&r, 400);
    resp_free(&r);
    curl(&r, "%s -X PUT -d x http://127.0.0.1:%u/ns/fn/", proto, in_port);
    assert_error(&r, 400);
    resp_free(&r);
    curl(&r, "%s -X PUT -d x 'http://127.0.0.1:%u/ns/fn/a%%zz'", proto, in_port);
    assert_error(&r, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "escape"));
    resp_free(&r);
    curl(&r, "%s -X PUT -d x 'http://127.0.0.1:%u/ns/fn/a%%00'", proto, in_port);
    assert_error(&r, 400);
    resp_free(&r);
    curl(&r, "%s -X PUT -H 'Content-Type: application/vnd.nonamespace' -d x "
         "http://127.0.0.1:%u/ns/fn/id",
         proto, in_port);
    assert_error(&r, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "typename"));
    resp_free(&r);
    curl(&r, "%s -X PUT -H 'Content-Type: text/plain' --data-binary @%s "
         "http://127.0.0.1:%u/ns/fn/id",
         proto, write_tmp("latin1", "caf\xe9", 4), in_port);
    assert_error(&r, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "UTF-8"));
    resp_free(&r);
    curl(&r, "%s -X PUT -H 'Content-Type: text/plain' --data-binary @%s "
         "http://127.0.0.1:%u/ns/fn/id",
         proto, write_tmp("nul", "a\0b", 3), in_port);
    assert_error(&r, 400);
    resp_free(&r);

    /* 404: nobody serves ns/missing. */
    curl(&r, "%s -X PUT -d x http://127.0.0.1:%u/ns/missing/id", proto, in_port);
    assert_error(&r, 404);
    ck_assert_ptr_nonnull(strstr(r.body, "ns/missing"));
    resp_free(&r);

    /* 405: other methods, with Allow. */
    curl(&r, "%s http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    assert_error(&r, 405);
    ck_assert(resp_header(&r, "allow", h, sizeof(h)));
    ck_assert_str_eq(h, "PUT, POST");
    resp_free(&r);
    curl(&r, "%s -X DELETE http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    assert_error(&r, 405);
    resp_free(&r);

    /* 413: over max_body_bytes (1024 here); curl 7.88 reports HTTP/2's
     * early answer with a reset as a failure, so HTTP/1.1 only. */
    memset(big, 'x', sizeof(big));
    bigpath = write_tmp("big", big, sizeof(big));
    if (_i == 0) {
        curl(&r, "%s -X PUT --data-binary @%s http://127.0.0.1:%u/ns/fn/id", proto, bigpath,
             in_port);
        ck_assert_int_eq(r.status, 413);
        resp_free(&r);
    }

    /* 415: a media type that is neither typed nor text. */
    curl(&r, "%s -X PUT -H 'Content-Type: application/json' -d '{}' "
         "http://127.0.0.1:%u/ns/fn/id",
         proto, in_port);
    assert_error(&r, 415);
    resp_free(&r);

    ck_assert_uint_eq(routed_count(), 0);
    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.ingress_accepted, 0);
    ck_assert_uint_eq(st.ingress_bad_request, 7);
    ck_assert_uint_eq(st.ingress_not_found, 1);
    ck_assert_uint_eq(st.ingress_bad_method, 2);
    ck_assert_uint_eq(st.ingress_unsupported_type, 1);
    ck_assert_uint_eq(st.ingress_backpressured, 0);
    stop_io();
}
END_TEST

/* The ingress counters that backpressure and stopping move. */
static void expect_waits(uint64_t accepted, uint64_t parked, uint64_t backpressured,
                         uint64_t shutting_down)
{
    sf_io_stats_t st;
    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.ingress_accepted, accepted);
    ck_assert_uint_eq(st.ingress_parked, parked);
    ck_assert_uint_eq(st.ingress_backpressured, backpressured);
    ck_assert_uint_eq(st.ingress_shutting_down, shutting_down);
}

START_TEST(test_ingress_backpressure_and_shutdown)
{
    const char *proto = protos[_i];
    opts_t o = {.max_park_ms = 300};
    resp_t r;
    char h[64];
    start_io_opts(&o);
    /* A key group that stays backpressured: the request waits max_park_ms,
     * then is answered 503. */
    atomic_store(&accept_all, false);
    curl(&r, "%s -X PUT -d x http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    assert_error(&r, 503);
    ck_assert_uint_ge(sf_now_ms() - r.started_ms, 290);
    ck_assert(resp_header(&r, "retry-after", h, sizeof(h)));
    ck_assert_str_eq(h, "1");
    ck_assert_ptr_nonnull(strstr(r.body, "backpressure: the function type ns/fn is busy"));
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 0);

    atomic_store(&accept_all, true);
    curl(&r, "%s -X PUT -d x http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 1);

    sf_io_shutdown(io);
    curl(&r, "%s -X PUT -d x http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    assert_error(&r, 503);
    ck_assert(resp_header(&r, "retry-after", h, sizeof(h)));
    ck_assert_ptr_nonnull(strstr(r.body, "shutting down"));
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 1);

    expect_waits(1, 1, 1, 1);
    stop_io();
}
END_TEST

/* Waits (bounded) until |n| requests have been parked in all. */
static void wait_parked(uint64_t n)
{
    sf_io_stats_t st;
    int i;
    for (i = 0; i < 2000; i++) {
        sf_io_stats(io, &st);
        if (st.ingress_parked >= n)
            return;
        usleep(5000);
    }
    ck_abort_msg("%llu requests parked, not %llu", (unsigned long long)st.ingress_parked,
                 (unsigned long long)n);
}

/* Requests to a backpressured key group wait for it, and join in the order
 * they came once it accepts; a shutdown answers the waiting ones 503. */
START_TEST(test_ingress_park)
{
    const char *proto = protos[_i];
    opts_t o = {.max_park_ms = 20000};
    resp_t a, b, c;
    sf_msg_t *m;
    start_io_opts(&o);
    atomic_store(&accept_all, false);
    curl_start(&a, "%s -X PUT -d first http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    wait_parked(1);
    curl_start(&b, "%s -X PUT -d second http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    wait_parked(2);
    usleep(100 * 1000);
    ck_assert_uint_eq(routed_count(), 0);
    atomic_store(&accept_all, true);
    curl_finish(&a);
    curl_finish(&b);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(b.status, 200);
    ck_assert_uint_ge(sf_now_ms() - a.started_ms, 100);
    resp_free(&a);
    resp_free(&b);
    ck_assert_uint_eq(routed_count(), 2);
    m = take_routed();
    ck_assert_uint_eq(m->value_len, 2 + 5); /* the string wrapper: tag, length, bytes */
    ck_assert_mem_eq(sf_msg_value(m) + 2, "first", 5);
    sf_msg_free(m);
    m = take_routed();
    ck_assert_uint_eq(m->value_len, 2 + 6);
    ck_assert_mem_eq(sf_msg_value(m) + 2, "second", 6);
    sf_msg_free(m);

    atomic_store(&accept_all, false);
    curl_start(&c, "%s -X PUT -d third http://127.0.0.1:%u/ns/fn/id", proto, in_port);
    wait_parked(3);
    sf_io_shutdown(io);
    curl_finish(&c);
    assert_error(&c, 503);
    ck_assert_ptr_nonnull(strstr(c.body, "shutting down"));
    ck_assert_uint_lt(sf_now_ms() - c.started_ms, 10000);
    resp_free(&c);
    ck_assert_uint_eq(routed_count(), 0);
    expect_waits(2, 3, 0, 1);
    stop_io();
}
END_TEST

START_TEST(test_ingress_persist)
{
    opts_t o = {.persist_mode = PERSIST_ASYNC};
    resp_t r;
    uint64_t t0;
    start_io_opts(&o);
    t0 = sf_now_ms();
    curl(&r, "--http2-prior-knowledge -X PUT -d x http://127.0.0.1:%u/ns/fn/id", in_port);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    /* The answer waited for the log (the hook completes after 150 ms), and
     * the message was routed only after it. */
    ck_assert_uint_ge(sf_now_ms() - t0, 140);
    ck_assert_int_eq(atomic_load(&persist_calls), 1);
    ck_assert_int_eq(atomic_load(&persist_done), 1);
    ck_assert_uint_eq(routed_count(), 1);
    pthread_mutex_lock(&mu);
    ck_assert_int_eq(routed_before_persisted, 0);
    pthread_mutex_unlock(&mu);

    /* A stop while a batch is being persisted waits for it: the request in
     * flight is answered 200 and its message routed. */
    curl_start(&r, "--http1.1 -X PUT -d y http://127.0.0.1:%u/ns/fn/id2", in_port);
    {
        int waited;
        for (waited = 0; waited < 5000 && atomic_load(&persist_calls) < 2; waited += 5)
            usleep(5000);
        ck_assert_int_eq(atomic_load(&persist_calls), 2);
    }
    sf_io_stop(io);
    curl_finish(&r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 2);
    stop_io();
}
END_TEST

START_TEST(test_ingress_failures)
{
    opts_t o = {.persist_mode = PERSIST_FAIL_SYNC};
    resp_t r;
    sf_io_stats_t st;
    char h[64];

    /* The log refuses at once. */
    start_io_opts(&o);
    curl(&r, "--http1.1 -X PUT -d x http://127.0.0.1:%u/ns/fn/id", in_port);
    assert_error(&r, 503);
    ck_assert(resp_header(&r, "retry-after", h, sizeof(h)));
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 0);
    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.ingress_failed, 1);
    stop_io();

    /* The log fails later. */
    o.persist_mode = PERSIST_FAIL_ASYNC;
    start_io_opts(&o);
    curl(&r, "--http2-prior-knowledge -X PUT -d x http://127.0.0.1:%u/ns/fn/id", in_port);
    assert_error(&r, 503);
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 0);
    stop_io();

    /* Routing fails. */
    o.persist_mode = PERSIST_NONE;
    start_io_opts(&o);
    atomic_store(&route_error, SF_ECANCELED);
    curl(&r, "--http1.1 -X PUT -d x http://127.0.0.1:%u/ns/fn/id", in_port);
    assert_error(&r, 503);
    resp_free(&r);
    atomic_store(&route_error, 0);
    curl(&r, "--http1.1 -X PUT -d x http://127.0.0.1:%u/ns/fn/id", in_port);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_uint_eq(routed_count(), 1);
    stop_io();
}
END_TEST

/* Batching: many requests written in one go over one HTTP/2 connection reach
 * |route| in fewer calls than requests, in order. */
enum { BATCH_N = 64 };
static int batch_answered, batch_ok;

static void on_batch_resp(int err, const sf_http_response_t *res, void *user_data)
{
    batch_answered++;
    if (err == 0 && res->status == 200)
        batch_ok++;
}

static void on_client_closed(sf_http_client_t *c, void *user_data) { *(int *)user_data = 1; }

START_TEST(test_ingress_batching)
{
    uv_loop_t loop;
    sf_http_client_t *client = NULL;
    sf_http_client_config_t cc = {.protocol = SF_HTTP_PROTO_H2C};
    sf_http_url_t urls[BATCH_N];
    static const sf_http_header_t hdr = {"content-type", 12, "application/vnd.t/n", 19};
    int i, closed = 0;
    uint64_t deadline;

    start_io();
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(sf_http_client_new(&loop, &cc, &client), 0);
    /* Warm the connection up first so the requests go out together. */
    {
        char u[128];
        snprintf(u, sizeof(u), "http://127.0.0.1:%u/ns/fn/warm", in_port);
        ck_assert_int_eq(sf_http_url_parse(u, NULL, &urls[0]), 0);
        ck_assert_int_eq(sf_http_client_request(client, "PUT", &urls[0], &hdr, 1, "w", 1,
                                                on_batch_resp, NULL),
                         0);
        deadline = sf_now_ms() + 10000;
        while (batch_answered < 1 && sf_now_ms() < deadline)
            uv_run(&loop, UV_RUN_ONCE);
        ck_assert_int_eq(batch_ok, 1);
        sf_http_url_dispose(&urls[0], NULL);
        sf_msg_free(take_routed());
        pthread_mutex_lock(&mu);
        route_calls = 0;
        pthread_mutex_unlock(&mu);
        batch_answered = batch_ok = 0;
    }
    for (i = 0; i < BATCH_N; i++) {
        char u[128], body[16];
        int n = snprintf(body, sizeof(body), "%d", i);
        snprintf(u, sizeof(u), "http://127.0.0.1:%u/ns/fn/id%d", in_port, i);
        ck_assert_int_eq(sf_http_url_parse(u, NULL, &urls[i]), 0);
        ck_assert_int_eq(sf_http_client_request(client, "POST", &urls[i], &hdr, 1, body,
                                                (size_t)n, on_batch_resp, NULL),
                         0);
    }
    deadline = sf_now_ms() + 10000;
    while (batch_answered < BATCH_N && sf_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(batch_ok, BATCH_N);
    sf_http_client_close(client, on_client_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    for (i = 0; i < BATCH_N; i++)
        sf_http_url_dispose(&urls[i], NULL);

    ck_assert_uint_eq(routed_count(), BATCH_N);
    pthread_mutex_lock(&mu);
    ck_assert_msg(route_calls < BATCH_N / 2, "route called %d times for %d requests",
                  route_calls, BATCH_N);
    pthread_mutex_unlock(&mu);
    /* In order: the requests of one connection are dispatched as they come. */
    for (i = 0; i < BATCH_N; i++) {
        sf_msg_t *m = take_routed();
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        ck_assert_uint_eq(m->value_len, strlen(want));
        ck_assert_int_eq(memcmp(sf_msg_value(m), want, m->value_len), 0);
        sf_msg_free(m);
    }
    stop_io();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Egress                                                                     */

static void push_msg(uint8_t kind, const char *target, const char *json)
{
    sf_msg_init_t init;
    sf_msg_t *m;
    sf_msg_fifo_t chain;
    memset(&init, 0, sizeof(init));
    init.kind = kind;
    init.target = target;
    init.target_len = strlen(target);
    init.type_name = SF_IO_EGRESS_RECORD_TYPE;
    init.type_name_len = strlen(SF_IO_EGRESS_RECORD_TYPE);
    init.value = (const uint8_t *)json;
    init.value_len = strlen(json);
    ck_assert_int_eq(sf_msg_new(&init, MAXP, &m), 0);
    sf_msg_fifo_init(&chain);
    sf_msg_fifo_push(&chain, m);
    sf_io_egress_push(io, &chain);
    ck_assert_ptr_null(chain.head);
}

static void push_record(const char *topic, const char *payload)
{
    char json[512];
    snprintf(json, sizeof(json), "{\"topic\":\"%s\",\"payload\":\"%s\"}", topic, payload);
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS, json);
}

/* Waits until the I/O thread has handled |n| records in all (kept or not). */
static void wait_handled(uint64_t n)
{
    sf_io_stats_t st;
    uint64_t deadline = sf_now_ms() + 10000, seen = 0;
    while (sf_now_ms() < deadline) {
        sf_io_stats(io, &st);
        seen = st.egress_records_in + st.egress_invalid + st.egress_unknown_topic +
               st.egress_unknown_egress;
        if (seen >= n)
            return;
        usleep(2000);
    }
    ck_abort_msg("only %llu of %llu egress records handled", (unsigned long long)seen,
                 (unsigned long long)n);
}

static void expect_pop(const char *proto, const char *topic, const char *payload, long offset)
{
    resp_t r;
    char h[64];
    curl(&r, "%s 'http://127.0.0.1:%u/%s'", proto, eg_port, topic);
    ck_assert_msg(r.status == 200, "status %d body %.*s", r.status, (int)r.body_len, r.body);
    ck_assert_uint_eq(r.body_len, strlen(payload));
    ck_assert_int_eq(memcmp(r.body, payload, r.body_len), 0);
    ck_assert(resp_header(&r, "content-type", h, sizeof(h)));
    ck_assert_str_eq(h, "text/plain; charset=utf-8");
    ck_assert(resp_header(&r, "x-statefun-offset", h, sizeof(h)));
    ck_assert_int_eq(atol(h), offset);
    resp_free(&r);
}

START_TEST(test_egress_pop)
{
    const char *proto = protos[_i];
    resp_t r;
    sf_io_stats_t st;
    start_io();
    push_record("greetings", "r0");
    push_record("greetings", "r1");
    push_record("other", "o0");
    push_record("greetings", "r2");
    push_record("a b", "spaced");
    wait_handled(5);

    expect_pop(proto, "greetings", "r0", 0);
    expect_pop(proto, "greetings", "r1", 1);
    expect_pop(proto, "other", "o0", 0);
    expect_pop(proto, "greetings", "r2", 2);
    expect_pop(proto, "a%20b", "spaced", 0);
    curl(&r, "%s http://127.0.0.1:%u/greetings", proto, eg_port);
    assert_error(&r, 404);
    ck_assert_str_eq(r.version, versions[_i]);
    resp_free(&r);

    /* Unknown topic, other methods: 405. */
    curl(&r, "%s http://127.0.0.1:%u/nope", proto, eg_port);
    assert_error(&r, 405);
    ck_assert_ptr_nonnull(strstr(r.body, "greetings"));
    resp_free(&r);
    curl(&r, "%s http://127.0.0.1:%u/", proto, eg_port);
    assert_error(&r, 405);
    resp_free(&r);
    curl(&r, "%s -X POST -d x http://127.0.0.1:%u/greetings", proto, eg_port);
    assert_error(&r, 405);
    resp_free(&r);
    /* A bad query on a known topic: 400. */
    curl(&r, "%s 'http://127.0.0.1:%u/greetings?wait=forever'", proto, eg_port);
    assert_error(&r, 400);
    resp_free(&r);

    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.egress_records_in, 5);
    ck_assert_uint_eq(st.egress_records_out, 5);
    ck_assert_uint_eq(st.egress_retained, 5); /* read records stay for offset reads */
    stop_io();
}
END_TEST

START_TEST(test_egress_json_variants)
{
    sf_io_stats_t st;
    resp_t r;
    start_io();
    /* As Go, Python, JavaScript and pretty printers write them. */
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS,
             "{\"topic\":\"greetings\",\"payload\":\"Hello \\u003cJoe\\u003e \\u0026 co\"}\n");
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS,
             "{\"topic\": \"greetings\", \"payload\": \"caf\\u00e9 \\\"quoted\\\"\"}");
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS,
             "{\r\n  \"payload\" : \"line1\\nline2\",\r\n  \"topic\" : \"greetings\"\r\n}\r\n");
    /* Dropped: not JSON, no payload, an unknown topic, another egress, not an
     * egress message at all. */
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS, "topic=greetings");
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS, "{\"topic\":\"greetings\"}");
    push_msg(SF_MSG_EGRESS, SF_IO_PLAYGROUND_EGRESS, "{\"topic\":\"nope\",\"payload\":\"x\"}");
    push_msg(SF_MSG_EGRESS, "com.example/other-egress",
             "{\"topic\":\"greetings\",\"payload\":\"x\"}");
    push_msg(SF_MSG_INVOKE, "ns/fn/id", "{\"topic\":\"greetings\",\"payload\":\"x\"}");
    wait_handled(8);

    expect_pop("--http1.1", "greetings", "Hello <Joe> & co", 0);
    expect_pop("--http1.1", "greetings", "caf\xc3\xa9 \"quoted\"", 1);
    expect_pop("--http1.1", "greetings", "line1\nline2", 2);
    curl(&r, "--http1.1 http://127.0.0.1:%u/greetings", eg_port);
    assert_error(&r, 404);
    resp_free(&r);

    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.egress_records_in, 3);
    ck_assert_uint_eq(st.egress_invalid, 2);
    ck_assert_uint_eq(st.egress_unknown_topic, 1);
    ck_assert_uint_eq(st.egress_unknown_egress, 2);
    stop_io();
}
END_TEST

START_TEST(test_egress_long_poll)
{
    const char *proto = protos[_i];
    resp_t r;
    uint64_t elapsed;
    start_io();

    /* Answered by a record pushed from this thread 100 ms later. */
    curl_start(&r, "%s 'http://127.0.0.1:%u/greetings?wait=10s'", proto, eg_port);
    usleep(100 * 1000);
    push_record("greetings", "late");
    curl_finish(&r);
    elapsed = sf_now_ms() - r.started_ms;
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 4);
    ck_assert_int_eq(memcmp(r.body, "late", 4), 0);
    ck_assert_msg(elapsed >= 100 && elapsed < 5000, "elapsed %llu ms",
                  (unsigned long long)elapsed);
    resp_free(&r);

    /* Nothing comes: 404 after the wait. */
    curl_start(&r, "%s 'http://127.0.0.1:%u/greetings?wait=300ms'", proto, eg_port);
    curl_finish(&r);
    elapsed = sf_now_ms() - r.started_ms;
    assert_error(&r, 404);
    ck_assert_msg(elapsed >= 290 && elapsed < 5000, "elapsed %llu ms",
                  (unsigned long long)elapsed);
    resp_free(&r);

    /* Two waiters, two records: one each, in order. */
    {
        resp_t a, b;
        curl_start(&a, "%s 'http://127.0.0.1:%u/other?wait=10s'", proto, eg_port);
        usleep(150 * 1000);
        curl_start(&b, "%s 'http://127.0.0.1:%u/other?wait=10s'", proto, eg_port);
        usleep(150 * 1000);
        push_record("other", "first");
        push_record("other", "second");
        curl_finish(&a);
        curl_finish(&b);
        ck_assert_int_eq(a.status, 200);
        ck_assert_int_eq(b.status, 200);
        ck_assert(a.body_len == 5 && memcmp(a.body, "first", 5) == 0);
        ck_assert(b.body_len == 6 && memcmp(b.body, "second", 6) == 0);
        resp_free(&a);
        resp_free(&b);
    }
    stop_io();
}
END_TEST

/* Parses an NDJSON body into offsets and payloads; returns the line count. */
static int parse_ndjson(const resp_t *r, long *offsets, char payloads[][32], int max)
{
    const char *p = r->body, *end = r->body + r->body_len;
    int n = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        json_error_t err;
        json_t *j;
        ck_assert_ptr_nonnull(eol);
        j = json_loadb(p, (size_t)(eol - p), 0, &err);
        ck_assert_msg(j != NULL, "line %d: %s", n, err.text);
        ck_assert_int_lt(n, max);
        ck_assert(json_is_integer(json_object_get(j, "offset")));
        ck_assert(json_is_string(json_object_get(j, "payload")));
        offsets[n] = (long)json_integer_value(json_object_get(j, "offset"));
        snprintf(payloads[n], 32, "%s", json_string_value(json_object_get(j, "payload")));
        json_decref(j);
        n++;
        p = eol + 1;
    }
    return n;
}

START_TEST(test_egress_offsets)
{
    const char *proto = protos[_i];
    resp_t r;
    long offs[16];
    char pl[16][32];
    char h[64];
    int n, k;
    start_io();
    for (k = 0; k < 5; k++) {
        char p[16];
        snprintf(p, sizeof(p), "p%d <\\\"%d\\\">", k, k);
        push_record("greetings", p);
    }
    wait_handled(5);

    curl(&r, "%s 'http://127.0.0.1:%u/greetings?from=1&max=2'", proto, eg_port);
    ck_assert_int_eq(r.status, 200);
    ck_assert(resp_header(&r, "content-type", h, sizeof(h)));
    ck_assert_str_eq(h, "application/x-ndjson");
    n = parse_ndjson(&r, offs, pl, 16);
    ck_assert_int_eq(n, 2);
    ck_assert(offs[0] == 1 && offs[1] == 2);
    ck_assert_str_eq(pl[0], "p1 <\"1\">");
    ck_assert_str_eq(pl[1], "p2 <\"2\">");
    /* The exact line shape. */
    ck_assert_int_eq(strncmp(r.body, "{\"offset\": 1, \"payload\": \"p1 <\\\"1\\\">\"}\n", 38), 0);
    resp_free(&r);

    /* Reads do not consume: from the cursor, everything. */
    curl(&r, "%s 'http://127.0.0.1:%u/greetings?max=100'", proto, eg_port);
    n = parse_ndjson(&r, offs, pl, 16);
    ck_assert_int_eq(n, 5);
    ck_assert(offs[0] == 0 && offs[4] == 4);
    resp_free(&r);
    expect_pop(proto, "greetings", "p0 <\"0\">", 0);
    curl(&r, "%s 'http://127.0.0.1:%u/greetings?max=100'", proto, eg_port);
    n = parse_ndjson(&r, offs, pl, 16);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(offs[0], 1);
    resp_free(&r);
    curl(&r, "%s 'http://127.0.0.1:%u/greetings?from=0'", proto, eg_port);
    ck_assert_int_eq(parse_ndjson(&r, offs, pl, 16), 5);
    resp_free(&r);

    /* Past the end: empty; with wait, empty after the wait or the record. */
    curl(&r, "%s 'http://127.0.0.1:%u/greetings?from=10'", proto, eg_port);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    resp_free(&r);
    curl(&r, "%s 'http://127.0.0.1:%u/greetings?from=5&wait=200ms'", proto, eg_port);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    resp_free(&r);
    curl_start(&r, "%s 'http://127.0.0.1:%u/greetings?from=5&wait=10s'", proto, eg_port);
    usleep(100 * 1000);
    push_record("greetings", "p5");
    curl_finish(&r);
    ck_assert_int_eq(r.status, 200);
    n = parse_ndjson(&r, offs, pl, 16);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(offs[0], 5);
    ck_assert_str_eq(pl[0], "p5");
    resp_free(&r);
    stop_io();
}
END_TEST

START_TEST(test_egress_bounds)
{
    opts_t o = {.max_records = 3};
    sf_io_stats_t st;
    resp_t r;
    long offs[8];
    char pl[8][32];
    start_io_opts(&o);
    push_record("greetings", "r0");
    push_record("greetings", "r1");
    push_record("greetings", "r2");
    push_record("greetings", "r3");
    push_record("greetings", "r4");
    wait_handled(5);
    expect_pop("--http1.1", "greetings", "r2", 2);
    curl(&r, "--http1.1 'http://127.0.0.1:%u/greetings?from=0'", eg_port);
    ck_assert_int_eq(parse_ndjson(&r, offs, pl, 8), 3);
    ck_assert_int_eq(offs[0], 2);
    resp_free(&r);
    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.egress_records_in, 5);
    ck_assert_uint_eq(st.egress_dropped_overflow, 2);
    ck_assert_uint_eq(st.egress_dropped_unread, 2);
    ck_assert_uint_eq(st.egress_retained, 3);
    stop_io();
}
END_TEST

/* Exactly-once: records show once the checkpoint after them is published. */
START_TEST(test_egress_exactly_once)
{
    opts_t o = {.hold = true};
    resp_t r;
    sf_io_stats_t st;
    start_io_opts(&o);
    push_record("greetings", "r0");
    push_record("other", "o0");
    sf_io_egress_barrier(io, 1);
    push_record("greetings", "r1"); /* after the barrier: the next checkpoint's */
    wait_handled(3);
    curl(&r, "--http1.1 http://127.0.0.1:%u/greetings", eg_port);
    assert_error(&r, 404);
    resp_free(&r);
    curl(&r, "--http1.1 'http://127.0.0.1:%u/greetings?from=0'", eg_port);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    resp_free(&r);

    /* A publish with no barrier of its own covers nothing new. */
    sf_io_egress_publish(io, 0);
    sf_io_egress_publish(io, 1);
    expect_pop("--http1.1", "greetings", "r0", 0);
    expect_pop("--http1.1", "other", "o0", 0);
    curl(&r, "--http1.1 http://127.0.0.1:%u/greetings", eg_port);
    assert_error(&r, 404);
    resp_free(&r);

    /* A long poll answered by the publish; checkpoint 2 failed (no publish),
     * checkpoint 3's publish covers its records too. */
    curl_start(&r, "--http2-prior-knowledge 'http://127.0.0.1:%u/greetings?wait=10s'", eg_port);
    sf_io_egress_barrier(io, 2);
    push_record("greetings", "r2");
    usleep(100 * 1000);
    sf_io_egress_barrier(io, 3);
    push_record("greetings", "r3");
    sf_io_egress_publish(io, 3);
    curl_finish(&r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.body_len == 2 && memcmp(r.body, "r1", 2) == 0);
    resp_free(&r);
    expect_pop("--http1.1", "greetings", "r2", 2);
    curl(&r, "--http1.1 http://127.0.0.1:%u/greetings", eg_port);
    assert_error(&r, 404); /* r3 came after barrier 3 */
    resp_free(&r);
    sf_io_stats(io, &st);
    ck_assert_uint_eq(st.egress_records_in, 5);
    ck_assert_uint_eq(st.egress_invalid + st.egress_unknown_egress, 0);
    stop_io();
}
END_TEST

START_TEST(test_stop_answers_long_poll)
{
    resp_t r;
    start_io();
    curl_start(&r, "--http1.1 'http://127.0.0.1:%u/greetings?wait=10s'", eg_port);
    usleep(200 * 1000);
    sf_io_stop(io);
    curl_finish(&r);
    assert_error(&r, 503);
    ck_assert_uint_lt(sf_now_ms() - r.started_ms, 5000);
    resp_free(&r);
    stop_io();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                 */

START_TEST(test_lifecycle)
{
    static const char *const topics[] = {"t"};
    static const char *const dup_topics[] = {"t", "t"};
    sf_io_ingress_config_t in = {.port = 0};
    sf_io_egress_config_t eg = {.topics = topics, .ntopics = 1};
    sf_io_config_t cfg = {.ingress = &in, .egress = &eg, .max_parallelism = MAXP};
    sf_io_hooks_t hooks = {.route = hook_route};
    sf_io_hooks_t no_route = {0};
    sf_io_t *a = NULL, *b = NULL;
    sf_msg_fifo_t chain;
    sf_msg_t *m;

    /* Never started: records pushed are freed, handles closed, loop closed. */
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &a), 0);
    ck_assert_uint_ne(sf_io_ingress_port(a), 0);
    sf_msg_fifo_init(&chain);
    {
        sf_msg_init_t init = {.kind = SF_MSG_EGRESS,
                              .target = SF_IO_PLAYGROUND_EGRESS,
                              .target_len = strlen(SF_IO_PLAYGROUND_EGRESS),
                              .type_name = "x/y",
                              .type_name_len = 3,
                              .value = (const uint8_t *)"{}",
                              .value_len = 2};
        ck_assert_int_eq(sf_msg_new(&init, MAXP, &m), 0);
    }
    sf_msg_fifo_push(&chain, m);
    sf_io_egress_push(a, &chain);

    /* A port in use. */
    in.port = sf_io_ingress_port(a);
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &b), SF_EEXIST);
    in.port = 0;
    eg.port = sf_io_ingress_port(a);
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &b), SF_EEXIST);
    eg.port = 0;
    sf_io_free(a);

    /* Bad configurations. */
    ck_assert_int_eq(sf_io_new(&cfg, &no_route, &b), SF_EINVAL);
    cfg.max_parallelism = 0;
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &b), SF_EINVAL);
    cfg.max_parallelism = MAXP;
    eg.topics = dup_topics;
    eg.ntopics = 2;
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &b), SF_EINVAL);
    eg.ntopics = 0;
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &b), SF_EINVAL);

    /* Egress only, started and stopped twice over. */
    cfg.ingress = NULL;
    eg.topics = topics;
    eg.ntopics = 1;
    ck_assert_int_eq(sf_io_new(&cfg, &no_route, &b), 0);
    ck_assert_uint_eq(sf_io_ingress_port(b), 0);
    ck_assert_int_eq(sf_io_start(b), 0);
    sf_io_shutdown(b);
    sf_io_stop(b);
    sf_io_stop(b);
    sf_io_free(b);
}
END_TEST

Suite *sf_runtime_io_http_suite(void)
{
    Suite *s = suite_create("runtime_io_http");
    TCase *tc = tcase_create("ingress");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_ingress_typed_and_string, 0, 2);
    tcase_add_loop_test(tc, test_ingress_errors, 0, 2);
    tcase_add_loop_test(tc, test_ingress_backpressure_and_shutdown, 0, 2);
    tcase_add_loop_test(tc, test_ingress_park, 0, 2);
    tcase_add_test(tc, test_ingress_persist);
    tcase_add_test(tc, test_ingress_failures);
    tcase_add_test(tc, test_ingress_batching);
    suite_add_tcase(s, tc);
    tc = tcase_create("egress");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_egress_pop, 0, 2);
    tcase_add_test(tc, test_egress_json_variants);
    tcase_add_loop_test(tc, test_egress_long_poll, 0, 2);
    tcase_add_loop_test(tc, test_egress_offsets, 0, 2);
    tcase_add_test(tc, test_egress_bounds);
    tcase_add_test(tc, test_egress_exactly_once);
    tcase_add_test(tc, test_stop_answers_long_poll);
    suite_add_tcase(s, tc);
    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_lifecycle);
    suite_add_tcase(s, tc);
    return s;
}
