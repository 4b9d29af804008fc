/* statefun-c: Apache License 2.0.
 *
 * Tests of sdk-c/src/sf_server.c in process: server options, the loop-based
 * server driven by the transport's own client over HTTP/1.1 and HTTP/2
 * (status codes, content type, per-function paths), start failures that
 * leave nothing behind, closing (uv_loop_close() == 0 afterwards), and
 * sf_serve stopping on SIGTERM.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "sf_http.h"
#include "sf_proto.h"
#include "failmalloc.h"
#include "statefun/sf.h"
#include "testutil.h"

/* A counter function: "n" counts the messages of the address. */
static int count_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    int32_t n = 0;
    int rv = sf_storage_get_int(ctx, "n", &n);
    if (rv < 0)
        return rv;
    return sf_storage_set_int(ctx, "n", n + 1);
}

static sf_functions_t *test_functions(void)
{
    static const sf_value_spec_t specs[] = {SF_SPEC_INT("n")};
    sf_functions_t *fns;
    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/count", count_fn, NULL, specs, 1), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/other", count_fn, NULL, specs, 1), 0);
    return fns;
}

/* A packed ToFunction for t.fns/|type|/a with "n" = 4. */
static void request_bytes(const char *type, sf_buf_t *out)
{
    sf_pb_to_function_t tf = SF_PB_TO_FUNCTION_INIT;
    sf_pb_batch_request_t batch = SF_PB_BATCH_REQUEST_INIT;
    sf_pb_address_t target = SF_PB_ADDRESS_INIT;
    sf_pb_persisted_value_t pv = SF_PB_PERSISTED_VALUE_INIT, *pvs[1] = {&pv};
    sf_pb_typed_value_t sv = SF_PB_TYPED_VALUE_INIT, arg = SF_PB_TYPED_VALUE_INIT;
    sf_pb_to_invocation_t inv = SF_PB_TO_INVOCATION_INIT, *invs[1] = {&inv};
    sf_buf_t v;

    sf_buf_init(&v, NULL);
    ck_assert_int_eq(sf_proto_encode_int(4, &v), 0);
    target.namespace_ = "t.fns";
    target.type = (char *)type;
    target.id = "a";
    sv.typename_ = SF_TYPE_INT;
    sv.has_value = 1;
    sv.value.data = v.base;
    sv.value.len = v.len;
    pv.state_name = "n";
    pv.state_value = &sv;
    arg.typename_ = "x/y";
    arg.has_value = 1;
    inv.argument = &arg;
    batch.target = &target;
    batch.n_state = 1;
    batch.state = pvs;
    batch.n_invocations = 1;
    batch.invocations = invs;
    tf.request_case = SF_PB_TO_FUNCTION_INVOCATION;
    tf.invocation = &batch;
    sf_buf_init(out, NULL);
    ck_assert_int_eq(sf_proto_to_function_pack(&tf, out), 0);
    sf_buf_dispose(&v);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                    */

START_TEST(test_options)
{
    sf_server_options_t *o;
    ck_assert_int_eq(sf_server_options_new(NULL, NULL), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_new(NULL, &o), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:0"), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "[::1]:8000"), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "localhost:65535"), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "unix:/tmp/x.sock"), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "unix:"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:65536"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:8x"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, ":80"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, "::1:80"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, "[]:80"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_listen(o, NULL), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_path(o, "/fn/{function.name}"), 0);
    ck_assert_int_eq(sf_server_options_set_path(o, "fn"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_path(o, "/a?b"), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_path(o, NULL), 0);
    ck_assert_int_eq(sf_server_options_set_tls(o, "c.pem", NULL), SF_EINVAL);
    ck_assert_int_eq(sf_server_options_set_tls(o, "c.pem", "k.pem"), 0);
    ck_assert_int_eq(sf_server_options_set_tls(o, NULL, NULL), 0);
    ck_assert_int_eq(sf_server_options_set_max_body(o, 10), 0);
    sf_server_options_free(o);
    sf_server_options_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A server on a test loop, driven by the transport's client                  */

typedef struct {
    const char *method;
    const char *path;
    const char *body_type; /* function type to build a request for, or NULL: empty body */
    int want_status;
} call_t;

typedef struct {
    uv_loop_t loop;
    sf_functions_t *fns;
    sf_server_t *srv;
    sf_http_client_t *client;
    sf_http_url_t url;
    const call_t *calls;
    size_t ncalls, next;
    sf_buf_t body;
    int closed;
    int answered_ok;
} drive_t;

static void next_call(drive_t *d);

static void on_server_closed(sf_server_t *srv, void *ud)
{
    drive_t *d = ud;
    d->closed++;
}

static void on_client_closed(sf_http_client_t *c, void *ud)
{
    drive_t *d = ud;
    d->closed++;
}

static void on_response(int err, const sf_http_response_t *res, void *ud)
{
    drive_t *d = ud;
    const call_t *c = &d->calls[d->next];
    ck_assert_int_eq(err, 0);
    ck_assert_msg(res->status == c->want_status, "%s %s: %d, want %d", c->method, c->path,
                  res->status, c->want_status);
    if (res->status == 200) {
        size_t i;
        sf_arena_t arena;
        sf_pb_from_function_t *ff;
        int32_t n;
        bool ct = false;
        for (i = 0; i < res->nheaders; i++)
            if (res->headers[i].namelen == 12 &&
                strncasecmp(res->headers[i].name, "content-type", 12) == 0)
                ct = res->headers[i].valuelen == 24 &&
                     memcmp(res->headers[i].value, "application/octet-stream", 24) == 0;
        ck_assert(ct);
        sf_arena_init(&arena, NULL);
        ff = sf_proto_from_function_unpack(&arena, res->body, res->body_len);
        ck_assert_ptr_nonnull(ff);
        ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
        ck_assert_uint_eq(ff->invocation_result->n_state_mutations, 1);
        ck_assert_int_eq(sf_proto_decode_int(
                             ff->invocation_result->state_mutations[0]->state_value->value.data,
                             ff->invocation_result->state_mutations[0]->state_value->value.len, &n),
                         0);
        ck_assert_int_eq(n, 5);
        sf_arena_dispose(&arena);
        d->answered_ok++;
    } else {
        /* Errors carry a one-line reason. */
        ck_assert_uint_gt(res->body_len, 1);
        ck_assert_int_eq(res->body[res->body_len - 1], '\n');
    }
    d->next++;
    next_call(d);
}

static void next_call(drive_t *d)
{
    char url[256];
    const call_t *c;
    if (d->next == d->ncalls) {
        sf_http_client_close(d->client, on_client_closed, d);
        sf_server_close(d->srv, on_server_closed, d);
        return;
    }
    c = &d->calls[d->next];
    sf_http_url_dispose(&d->url, NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)sf_server_port(d->srv), c->path);
    ck_assert_int_eq(sf_http_url_parse(url, NULL, &d->url), 0);
    sf_buf_dispose(&d->body);
    sf_buf_init(&d->body, NULL);
    if (c->body_type)
        request_bytes(c->body_type, &d->body);
    ck_assert_int_eq(sf_http_client_request(d->client, c->method, &d->url, NULL, 0, d->body.base,
                                            d->body.len, on_response, d),
                     0);
}

static void drive(sf_http_protocol proto, const char *path_opt, const call_t *calls, size_t n)
{
    sf_server_options_t *o;
    sf_http_client_config_t cc;
    drive_t d;

    memset(&d, 0, sizeof d);
    ck_assert_int_eq(uv_loop_init(&d.loop), 0);
    d.fns = test_functions();
    d.calls = calls;
    d.ncalls = n;
    sf_buf_init(&d.body, NULL);
    ck_assert_int_eq(sf_server_options_new(NULL, &o), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:0"), 0);
    ck_assert_int_eq(sf_server_options_set_path(o, path_opt), 0);
    ck_assert_int_eq(sf_server_start(&d.loop, d.fns, o, &d.srv), 0);
    sf_server_options_free(o);
    ck_assert_uint_gt(sf_server_port(d.srv), 0);
    memset(&cc, 0, sizeof cc);
    cc.protocol = proto;
    ck_assert_int_eq(sf_http_client_new(&d.loop, &cc, &d.client), 0);
    next_call(&d);
    ck_assert_int_eq(uv_run(&d.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(d.closed, 2);
    ck_assert_uint_eq(d.next, n);
    ck_assert_int_eq(uv_loop_close(&d.loop), 0);
    sf_http_url_dispose(&d.url, NULL);
    sf_buf_dispose(&d.body);
    sf_functions_free(d.fns);
}

START_TEST(test_server_any_path)
{
    static const call_t calls[] = {
        {"POST", "/", "count", 200},  {"POST", "/anything?x=1", "other", 200},
        {"GET", "/", NULL, 405},      {"POST", "/", NULL, 400},
        {"POST", "/", "nobody", 404}, {"POST", "/", "count", 200},
    };
    drive(SF_HTTP_PROTO_HTTP1, NULL, calls, SF_ARRAY_SIZE(calls));
    drive(SF_HTTP_PROTO_H2C, NULL, calls, SF_ARRAY_SIZE(calls));
}
END_TEST

START_TEST(test_server_paths)
{
    static const call_t fixed[] = {
        {"POST", "/statefun", "count", 200},
        {"POST", "/statefun?q", "other", 200},
        {"POST", "/", "count", 404},
        {"POST", "/statefunx", "count", 404},
    };
    static const call_t per_fn[] = {
        {"POST", "/fn/count", "count", 200}, {"POST", "/fn/other", "other", 200},
        {"POST", "/fn/other", "count", 404}, {"POST", "/fn/nobody", "count", 404},
        {"PUT", "/fn/count", "count", 405},  {"POST", "/fn/count", "count", 200},
    };
    drive(SF_HTTP_PROTO_HTTP1, "/statefun", fixed, SF_ARRAY_SIZE(fixed));
    drive(SF_HTTP_PROTO_H2C, "/fn/{function.name}", per_fn, SF_ARRAY_SIZE(per_fn));
}
END_TEST

START_TEST(test_server_start_failures)
{
    uv_loop_t loop;
    sf_functions_t *fns = test_functions(), *dup;
    sf_server_options_t *o;
    sf_server_t *a, *b;
    char listen[64];

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(sf_server_options_new(NULL, &o), 0);
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:0"), 0);
    ck_assert_int_eq(sf_server_start(&loop, fns, o, &a), 0);
    /* The same port again: in use. */
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)sf_server_port(a));
    ck_assert_int_eq(sf_server_options_set_listen(o, listen), 0);
    ck_assert_int_eq(sf_server_start(&loop, fns, o, &b), SF_EEXIST);
    ck_assert_ptr_null(b);
    /* Unreadable certificate. */
    ck_assert_int_eq(sf_server_options_set_listen(o, "127.0.0.1:0"), 0);
    ck_assert_int_eq(sf_server_options_set_tls(o, "/nonexistent/cert.pem", "/nonexistent/k.pem"),
                     0);
    ck_assert_int_eq(sf_server_start(&loop, fns, o, &b), SF_ETLS);
    ck_assert_int_eq(sf_server_options_set_tls(o, NULL, NULL), 0);
    /* Two namespaces with the same name cannot share a per-function path. */
    ck_assert_int_eq(sf_functions_new(NULL, &dup), 0);
    ck_assert_int_eq(sf_functions_bind(dup, "a/f", count_fn, NULL, NULL, 0), 0);
    ck_assert_int_eq(sf_functions_bind(dup, "b/f", count_fn, NULL, NULL, 0), 0);
    ck_assert_int_eq(sf_server_options_set_path(o, "/{function.name}"), 0);
    ck_assert_int_eq(sf_server_start(&loop, dup, o, &b), SF_EINVAL);
    ck_assert_int_eq(sf_server_start(NULL, dup, o, &b), SF_EINVAL);
    sf_server_options_free(o);
    sf_server_close(a, NULL, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    sf_functions_free(dup);
    sf_functions_free(fns);
}
END_TEST

/* Allocation failures while starting a server leave nothing behind. */
START_TEST(test_server_start_failmalloc)
{
    sf_test_failmalloc_t fm;
    static const sf_value_spec_t specs[] = {SF_SPEC_INT("n")};
    long n;

    sf_test_failmalloc_init(&fm);
    for (n = 0;; n++) {
        uv_loop_t loop;
        sf_functions_t *fns = NULL;
        sf_server_options_t *o = NULL;
        sf_server_t *srv = NULL;
        int rv;

        ck_assert_int_eq(uv_loop_init(&loop), 0);
        fm.countdown = n;
        fm.failures = 0;
        rv = sf_functions_new(&fm.mem, &fns);
        if (rv == 0)
            rv = sf_functions_bind(fns, "t.fns/count", count_fn, NULL, specs, 1);
        if (rv == 0)
            rv = sf_server_options_new(&fm.mem, &o);
        if (rv == 0)
            rv = sf_server_options_set_listen(o, "127.0.0.1:0");
        if (rv == 0)
            rv = sf_server_options_set_path(o, "/fn/{function.name}");
        if (rv == 0)
            rv = sf_server_start(&loop, fns, o, &srv);
        if (srv)
            sf_server_close(srv, NULL, NULL);
        ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        sf_server_options_free(o);
        sf_functions_free(fns);
        ck_assert_int_eq(fm.live, 0);
        if (fm.failures == 0) {
            ck_assert_int_eq(rv, 0);
            break;
        }
        ck_assert_msg(rv == SF_ENOMEM, "allocation %ld failed: got %d", n, rv);
    }
    ck_assert_int_gt(n, 5);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* sf_serve                                                                   */

typedef struct {
    sf_functions_t *fns;
    sf_server_options_t *opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char address[128];
    int rv;
} serve_arg_t;

static void on_ready(const char *address, void *ud)
{
    serve_arg_t *a = ud;
    pthread_mutex_lock(&a->mu);
    snprintf(a->address, sizeof a->address, "%s", address);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void *serve_thread(void *ud)
{
    serve_arg_t *a = ud;
    a->rv = sf_serve(a->fns, a->opts);
    return NULL;
}

START_TEST(test_serve_stops_on_sigterm)
{
    serve_arg_t a;
    pthread_t t;
    sf_buf_t req;
    char *dir = sf_test_mkdtemp("serve"), path[512];

    memset(&a, 0, sizeof a);
    a.rv = -12345;
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    a.fns = test_functions();
    ck_assert_int_eq(sf_server_options_new(NULL, &a.opts), 0);
    ck_assert_int_eq(sf_server_options_set_listen(a.opts, "127.0.0.1:0"), 0);
    ck_assert_int_eq(sf_server_options_set_ready_cb(a.opts, on_ready, &a), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, serve_thread, &a), 0);
    pthread_mutex_lock(&a.mu);
    while (!a.address[0])
        pthread_cond_wait(&a.cv, &a.mu);
    pthread_mutex_unlock(&a.mu);

    request_bytes("count", &req);
    snprintf(path, sizeof path, "%s/req.bin", dir);
    ck_assert_int_eq(sf_test_write_file(path, req.base, req.len), 0);
    sf_buf_dispose(&req);
    ck_assert_int_eq(sf_test_sh("test \"$(curl -s --max-time 10 --http2-prior-knowledge -o "
                                "/dev/null -w '%%{http_code}' --data-binary @'%s' http://%s/)\" = "
                                "200",
                                path, a.address),
                     0);
    /* libuv's handler runs on whichever thread takes the signal and wakes
     * the serving loop through its signal pipe. */
    kill(getpid(), SIGTERM);
    pthread_join(t, NULL);
    ck_assert_int_eq(a.rv, 0);
    sf_server_options_free(a.opts);
    sf_functions_free(a.fns);
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
    sf_test_rmtree(dir);
}
END_TEST

Suite *sf_sdk_server_suite(void)
{
    Suite *s = suite_create("sdk_server");
    TCase *tc = tcase_create("server");
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_server_any_path);
    tcase_add_test(tc, test_server_paths);
    tcase_add_test(tc, test_server_start_failures);
    tcase_add_test(tc, test_server_start_failmalloc);
    tcase_add_test(tc, test_serve_stops_on_sigterm);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
