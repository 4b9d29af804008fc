/* statefun-c: Apache License 2.0.
 *
 * Tests of the admin listener (runtime/admin/admin.c) in-process: a runtime
 * object assembled by hand (a module from YAML text, the memory state
 * backend, no workers and no I/O thread) whose counters the tests set
 * directly, served by a real sf_admin_t on a free port and asked with curl
 * over HTTP/1.1 and h2c. What is checked: /healthz ok and degraded (an
 * unhealthy endpoint, a stopping runtime), the exact Prometheus lines
 * (counters, gauges, a cumulative histogram, label escaping, the endpoint
 * gauge), the JSON of an address's states for every built-in type, base64
 * for the rest, TTL, %-decoded ids, and the 400/404/405 answers.
 * check_admin_e2e.c runs the same through a real `statefun run`.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "rt.h"
#include "sf_proto.h"
#include "testutil.h"

static const char module_yaml[] = "kind: io.statefun.endpoints.v2/http\n"
                                  "spec:\n"
                                  "  functions: fns/*\n"
                                  "  urlPathTemplate: http://127.0.0.1:1/fns\n"
                                  "  transport:\n"
                                  "    timeouts:\n"
                                  "      call: 2s\n"
                                  "      connect: 1s\n"
                                  "      read: 1s\n"
                                  "      write: 1s\n";

static sf_options_t opts;
static sf_module_t *mod;
static sf_rt_t *rt;
static sf_admin_t *admin;
static char *tmp;

static void drop_msg(sf_worker_t *w, sf_msg_t *m)
{
    (void)w;
    sf_msg_free(m);
}

static void setup(void)
{
    sf_diags_t d;

    sf_options_init(&opts);
    opts.max_parallelism = 128;
    sf_diags_init(&d);
    mod = sf_module_new();
    ck_assert_int_eq(
        sf_module_add_string(mod, "admin.yaml", NULL, module_yaml, strlen(module_yaml), &d), 0);
    ck_assert_int_eq(sf_module_finish(mod, &d), 0);
    sf_diags_dispose(&d);
    ck_assert_uint_eq(mod->nendpoints, 1);

    rt = calloc(1, sizeof *rt);
    ck_assert_ptr_nonnull(rt);
    rt->opts = &opts;
    rt->mod = mod;
    pthread_mutex_init(&rt->fn_metrics_lock, NULL);
    rt->unhealthy = calloc(mod->nendpoints + 1, sizeof *rt->unhealthy);
    rt->blocked_kg = calloc(opts.max_parallelism, sizeof *rt->blocked_kg);
    ck_assert_int_eq(sf_state_open("memory", NULL, opts.max_parallelism, &rt->state), 0);
    /* Workers that deliver nothing: the state API reads on the owner's thread. */
    ck_assert_int_eq(sf_workers_init(&rt->workers, 2, opts.max_parallelism, drop_msg, NULL, NULL,
                                     rt),
                     0);
    ck_assert_int_eq(sf_workers_start(&rt->workers), 0);
    admin = NULL;
    tmp = sf_test_mkdtemp("admin");
    ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
    sf_admin_free(admin);
    admin = NULL;
    sf_workers_stop(&rt->workers);
    sf_workers_dispose(&rt->workers);
    sf_state_close(rt->state);
    free((void *)rt->unhealthy);
    free((void *)rt->blocked_kg);
    pthread_mutex_destroy(&rt->fn_metrics_lock);
    free(rt);
    sf_module_free(mod);
    sf_options_dispose(&opts);
    sf_test_rmtree(tmp);
}

static void start_admin(void)
{
    ck_assert_int_eq(sf_admin_new(rt, "127.0.0.1", 0, &admin), 0);
    ck_assert_uint_gt(sf_admin_port(admin), 0);
    ck_assert_int_eq(sf_admin_start(admin), 0);
}

/*
 * Runs curl against the admin with |args| before the URL (method, protocol)
 * and returns the body (caller frees); sets |*status| (0: no answer).
 */
static char *fetch(int *status, const char *args, const char *path)
{
    char cmd[2048], out[1024], code[16] = "";
    FILE *p;
    char *body;

    snprintf(out, sizeof out, "%s/body", tmp);
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 10 %s -o '%s' -w '%%{http_code}' 'http://127.0.0.1:%u%s'", args,
             out, (unsigned)sf_admin_port(admin), path);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    if (!fgets(code, sizeof code, p))
        code[0] = '\0';
    pclose(p);
    *status = atoi(code);
    body = sf_test_read_file(out, NULL);
    remove(out);
    return body ? body : strdup("");
}

/* Whether |text| has |line| as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;
    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
        p++;
    }
    return false;
}

#define ck_assert_line(text, ...)                                                                  \
    do {                                                                                           \
        char l_[512];                                                                              \
        snprintf(l_, sizeof l_, __VA_ARGS__);                                                      \
        ck_assert_msg(has_line((text), l_), "no line '%s' in:\n%s", l_, (text));                   \
    } while (0)

/* ------------------------------------------------------------------------ */
/* /healthz                                                                   */

START_TEST(test_health_render)
{
    sf_buf_t b;
    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_admin_render_health(rt, &b), 200);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.base, "ok\n", 3), 0);

    atomic_store(&rt->unhealthy[0], 2);
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_admin_render_health(rt, &b), 503);
    sf_buf_append(&b, "", 1);
    ck_assert_str_eq((char *)b.base,
                     "degraded\nendpoint http://127.0.0.1:1/fns unhealthy: no successful call "
                     "within the call timeout (2000 ms) for functions fns/*; retries continue "
                     "(2 workers)\n");

    atomic_store(&rt->unhealthy[0], 0);
    atomic_store(&rt->stopping, 1);
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_admin_render_health(rt, &b), 503);
    sf_buf_append(&b, "", 1);
    ck_assert_str_eq((char *)b.base, "degraded\nthe runtime is stopping\n");
    sf_buf_dispose(&b);
}
END_TEST

START_TEST(test_health_http)
{
    int status;
    char *body;

    start_admin();
    body = fetch(&status, "", "/healthz");
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "ok\n");
    free(body);

    atomic_store(&rt->unhealthy[0], 1);
    body = fetch(&status, "--http2-prior-knowledge", "/healthz");
    ck_assert_int_eq(status, 503);
    ck_assert_msg(strncmp(body, "degraded\nendpoint http://127.0.0.1:1/fns unhealthy: ", 52) == 0,
                  "%s", body);
    free(body);

    atomic_store(&rt->unhealthy[0], 0);
    body = fetch(&status, "--http2-prior-knowledge", "/healthz?verbose=1");
    ck_assert_int_eq(status, 200);
    free(body);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* /metrics                                                                   */

/*
 * Checks the text format's shape: every sample belongs to a family declared
 * by "# HELP" then "# TYPE" lines before it, counter families end in _total,
 * and every line ends with a newline.
 */
static void check_exposition(const char *text)
{
    char family[256] = "", type[32] = "";
    const char *p = text;
    bool help_seen = false;

    ck_assert(text[0] && text[strlen(text) - 1] == '\n');
    while (*p) {
        const char *eol = strchr(p, '\n');
        char line[1024];
        size_t n = (size_t)(eol - p);
        ck_assert_uint_lt(n, sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p = eol + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%255s", family), 1);
            help_seen = true;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[256];
            ck_assert(help_seen);
            ck_assert_int_eq(sscanf(line + 7, "%255s %31s", name, type), 2);
            ck_assert_str_eq(name, family);
            if (strcmp(type, "counter") == 0)
                ck_assert_msg(strlen(family) > 6 &&
                                  strcmp(family + strlen(family) - 6, "_total") == 0,
                              "counter %s does not end in _total", family);
            help_seen = false;
        } else {
            size_t fl = strlen(family), nl = strcspn(line, "{ ");
            char *end;
            ck_assert_msg(line[0] != '#' && line[0] != '\0', "stray line '%s'", line);
            ck_assert_msg(type[0], "sample before any TYPE: %s", line);
            if (strcmp(type, "histogram") == 0)
                ck_assert_msg(nl > fl && strncmp(line, family, fl) == 0 &&
                                  (strcmp(line + fl, "_sum") == 0 || line[fl] == '_'),
                              "'%s' is not in family %s", line, family);
            else
                ck_assert_msg(nl == fl && strncmp(line, family, fl) == 0,
                              "'%s' is not in family %s", line, family);
            /* The value parses as a number. */
            strtod(strrchr(line, ' ') + 1, &end);
            ck_assert_msg(*end == '\0', "bad value in '%s'", line);
        }
    }
}

START_TEST(test_metrics_render)
{
    sf_fn_metrics_t *m = sf_rt_fn_metrics(rt, "fns/remote");
    sf_fn_metrics_t *q = sf_rt_fn_metrics(rt, "other/q\"uo\\te");
    sf_buf_t b;
    const char *L = "function_type=\"fns/remote\"";

    atomic_store(&m->messages_in, 5);
    atomic_store(&m->out_local, 4);
    atomic_store(&m->out_delayed, 3);
    atomic_store(&m->egress, 2);
    atomic_store(&m->invocations, 7);
    atomic_store(&m->failures, 1);
    atomic_store(&m->backlog, 9);
    atomic_store(&m->blocked, 1);
    atomic_store(&m->latency_buckets[0], 1);  /* <= 250 us */
    atomic_store(&m->latency_buckets[2], 2);  /* <= 1 ms */
    atomic_store(&m->latency_buckets[11], 1); /* > 1 s */
    atomic_store(&m->latency_sum_us, 2500000);
    atomic_store(&m->latency_count, 4);
    atomic_store(&q->messages_in, 11);

    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_admin_render_metrics(rt, &b), 0);
    sf_buf_append(&b, "", 1);
    const char *t = (const char *)b.base;
    check_exposition(t);

    ck_assert_line(t, "# TYPE statefun_function_messages_in_total counter");
    ck_assert_line(t, "statefun_function_messages_in_total{%s} 5", L);
    ck_assert_line(t, "statefun_function_messages_out_local_total{%s} 4", L);
    ck_assert_line(t, "statefun_function_delayed_messages_total{%s} 3", L);
    ck_assert_line(t, "statefun_function_egress_records_total{%s} 2", L);
    ck_assert_line(t, "statefun_function_invocations_total{%s} 7", L);
    ck_assert_line(t, "statefun_function_invocation_failures_total{%s} 1", L);
    ck_assert_line(t, "# TYPE statefun_function_backlog_messages gauge");
    ck_assert_line(t, "statefun_function_backlog_messages{%s} 9", L);
    ck_assert_line(t, "statefun_function_blocked_addresses{%s} 1", L);
    /* Label values escape quotes and backslashes. */
    ck_assert_line(t,
                   "statefun_function_messages_in_total{function_type=\"other/q\\\"uo\\\\te\"} 11");

    /* The histogram is cumulative, in seconds, for remote types only. */
    ck_assert_line(t, "# TYPE statefun_function_remote_latency_seconds histogram");
    ck_assert_line(t, "statefun_function_remote_latency_seconds_bucket{%s,le=\"0.00025\"} 1", L);
    ck_assert_line(t, "statefun_function_remote_latency_seconds_bucket{%s,le=\"0.0005\"} 1", L);
    ck_assert_line(t, "statefun_function_remote_latency_seconds_bucket{%s,le=\"0.001\"} 3", L);
    ck_assert_line(t, "statefun_function_remote_latency_seconds_bucket{%s,le=\"1\"} 3", L);
    ck_assert_line(t, "statefun_function_remote_latency_seconds_bucket{%s,le=\"+Inf\"} 4", L);
    ck_assert_line(t, "statefun_function_remote_latency_seconds_sum{%s} 2.500000", L);
    ck_assert_line(t, "statefun_function_remote_latency_seconds_count{%s} 4", L);
    ck_assert_ptr_null(strstr(t, "latency_seconds_bucket{function_type=\"other/"));

    ck_assert_line(t, "# TYPE statefun_endpoint_healthy gauge");
    ck_assert_line(t, "statefun_endpoint_healthy{endpoint=\"http://127.0.0.1:1/fns\","
                      "functions=\"fns/*\"} 1");
    /* No I/O thread: no ingress or egress metrics, and no placeholders. */
    ck_assert_ptr_null(strstr(t, "statefun_ingress"));
    ck_assert_ptr_null(strstr(t, "statefun_egress"));
    /* Checkpoint metrics are real and always there. */
    ck_assert_line(t, "# TYPE statefun_checkpoints_total counter");
    ck_assert_line(t, "statefun_checkpoints_total 0");
    ck_assert_line(t, "statefun_checkpoint_last_pause_seconds 0.000000");

    atomic_store(&rt->unhealthy[0], 1);
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_admin_render_metrics(rt, &b), 0);
    sf_buf_append(&b, "", 1);
    ck_assert_line((const char *)b.base,
                   "statefun_endpoint_healthy{endpoint=\"http://127.0.0.1:1/fns\","
                   "functions=\"fns/*\"} 0");
    sf_buf_dispose(&b);
}
END_TEST

START_TEST(test_metrics_http)
{
    int status;
    char *body;
    sf_fn_metrics_t *m;

    start_admin();
    body = fetch(&status, "", "/metrics");
    ck_assert_int_eq(status, 200);
    check_exposition(body);
    /* No function type has been used yet: families without samples. */
    ck_assert_ptr_null(strstr(body, "function_type="));
    free(body);

    m = sf_rt_fn_metrics(rt, "fns/a");
    atomic_store(&m->messages_in, 42);
    body = fetch(&status, "--http2-prior-knowledge", "/metrics");
    ck_assert_int_eq(status, 200);
    check_exposition(body);
    ck_assert_line(body, "statefun_function_messages_in_total{function_type=\"fns/a\"} 42");
    free(body);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* /v1/state                                                                  */

static const char addr_s[] = "fns/remote/a b/c\xc3\xa9";

static void put(sf_state_batch_t *batch, const char *name, const char *type, const sf_buf_t *v,
                sf_state_ttl_mode mode, int64_t ttl_ms)
{
    sf_addr_t a;
    ck_assert_int_eq(sf_addr_parse(addr_s, strlen(addr_s), &a), 0);
    ck_assert_int_eq(sf_state_batch_put(batch, sf_key_group(addr_s, strlen(addr_s), 128), &a, name,
                                        type, v->base, v->len, mode, ttl_ms, sf_wall_ms()),
                     0);
}

static void put_states(void)
{
    sf_state_batch_t *batch;
    sf_buf_t v;
    static const uint8_t raw[] = {0, 1, 2, 0xff};
    static const uint8_t bad_int[] = {0xff};

    ck_assert_int_eq(sf_state_batch_new(rt->state, &batch), 0);
    sf_buf_init(&v, NULL);
    sf_proto_encode_bool(true, &v);
    put(batch, "b", "io.statefun.types/bool", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_int(-7, &v);
    put(batch, "i", "io.statefun.types/int", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_long(INT64_C(1) << 40, &v);
    put(batch, "l", "io.statefun.types/long", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_float(1.5f, &v);
    put(batch, "f", "io.statefun.types/float", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_double(0.1, &v);
    put(batch, "d", "io.statefun.types/double", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_double(NAN, &v);
    put(batch, "nan", "io.statefun.types/double", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_string("h\xc3\xa9llo \"q\"", 11, &v);
    put(batch, "s", "io.statefun.types/string", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_buf_append(&v, raw, sizeof raw);
    put(batch, "raw", "com.example/Blob", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_buf_append(&v, bad_int, sizeof bad_int);
    put(batch, "bad", "io.statefun.types/int", &v, SF_STATE_TTL_NONE, 0);
    sf_buf_reset(&v);
    sf_proto_encode_int(3, &v);
    put(batch, "ttl", "io.statefun.types/int", &v, SF_STATE_TTL_AFTER_WRITE, 3600000);
    ck_assert_int_eq(sf_state_batch_commit(batch), 0);
    sf_state_batch_free(batch);
    sf_buf_dispose(&v);
}

/* The state named |name| of |root|, which must exist. */
static json_t *state_of(json_t *root, const char *name)
{
    json_t *s = json_object_get(json_object_get(root, "states"), name);
    ck_assert_msg(s != NULL, "no state %s", name);
    ck_assert_msg(json_object_get(s, "expires_at_ms") == NULL || strcmp(name, "ttl") == 0,
                  "state %s has an expiry", name);
    return s;
}

START_TEST(test_state_json)
{
    int status;
    char *body;
    json_t *root, *s, *v;
    json_error_t jerr;
    int64_t before = sf_wall_ms();

    put_states();
    start_admin();
    /* The id is %-decoded as the ingress does it: space, '/' and UTF-8. */
    body = fetch(&status, "", "/v1/state/fns/remote/a%20b/c%C3%A9");
    ck_assert_int_eq(status, 200);
    root = json_loads(body, 0, &jerr);
    ck_assert_msg(root != NULL, "not JSON (%s): %s", jerr.text, body);
    ck_assert_str_eq(json_string_value(json_object_get(root, "address")), addr_s);
    ck_assert_uint_eq(json_object_size(json_object_get(root, "states")), 10);

    s = state_of(root, "b");
    ck_assert_str_eq(json_string_value(json_object_get(s, "typename")), "io.statefun.types/bool");
    ck_assert(json_is_true(json_object_get(s, "value")));
    ck_assert_int_eq(json_integer_value(json_object_get(state_of(root, "i"), "value")), -7);
    ck_assert_int_eq(json_integer_value(json_object_get(state_of(root, "l"), "value")), INT64_C(1)
                                                                                            << 40);
    ck_assert(json_real_value(json_object_get(state_of(root, "f"), "value")) == 1.5);
    ck_assert(json_real_value(json_object_get(state_of(root, "d"), "value")) == 0.1);
    ck_assert_str_eq(json_string_value(json_object_get(state_of(root, "s"), "value")),
                     "h\xc3\xa9llo \"q\"");

    /* Other types, undecodable built-ins and NaN: base64 of the raw bytes. */
    s = state_of(root, "raw");
    ck_assert_str_eq(json_string_value(json_object_get(s, "typename")), "com.example/Blob");
    ck_assert_ptr_null(json_object_get(s, "value"));
    ck_assert_str_eq(json_string_value(json_object_get(s, "base64")), "AAEC/w==");
    s = state_of(root, "bad");
    ck_assert_ptr_null(json_object_get(s, "value"));
    ck_assert_str_eq(json_string_value(json_object_get(s, "base64")), "/w==");
    s = state_of(root, "nan");
    ck_assert_ptr_null(json_object_get(s, "value"));
    ck_assert_ptr_nonnull(json_string_value(json_object_get(s, "base64")));

    /* A value with a TTL says when it expires. */
    s = state_of(root, "ttl");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "value")), 3);
    v = json_object_get(s, "expires_at_ms");
    ck_assert(json_is_integer(v));
    ck_assert_int_ge(json_integer_value(v), before + 3600000);
    ck_assert_int_le(json_integer_value(v), sf_wall_ms() + 3600000);
    json_decref(root);
    free(body);

    /* The same over h2c. */
    body = fetch(&status, "--http2-prior-knowledge", "/v1/state/fns/remote/a%20b/c%C3%A9?x=1");
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(body, "\"address\":\"fns/remote/a b/c"));
    free(body);
}
END_TEST

START_TEST(test_state_errors)
{
    int status;
    char *body;

    put_states();
    start_admin();
    body = fetch(&status, "", "/v1/state/fns/remote/a%20b");
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(body, "no state for address fns/remote/a b\n");
    free(body);
    body = fetch(&status, "", "/v1/state/fns/remote");
    ck_assert_int_eq(status, 400);
    ck_assert_ptr_nonnull(strstr(body, "{namespace}/{type}/{id}"));
    ck_assert_ptr_eq(strchr(body, '\n'), body + strlen(body) - 1); /* one line */
    free(body);
    body = fetch(&status, "", "/v1/state/fns/remote/%zz");
    ck_assert_int_eq(status, 400);
    free(body);
    body = fetch(&status, "", "/v1/state");
    ck_assert_int_eq(status, 400);
    free(body);
    body = fetch(&status, "-X DELETE", "/v1/state/fns/remote/a%20b/c%C3%A9");
    ck_assert_int_eq(status, 405);
    ck_assert_str_eq(body, "the admin API takes GET, not DELETE\n");
    free(body);
    body = fetch(&status, "-X POST --http2-prior-knowledge", "/metrics");
    ck_assert_int_eq(status, 405);
    free(body);
    body = fetch(&status, "", "/v1/statex/a/b/c");
    ck_assert_int_eq(status, 404);
    free(body);
    body = fetch(&status, "-X POST", "/nothing/here");
    ck_assert_int_eq(status, 404);
    ck_assert_ptr_nonnull(strstr(body, "/healthz"));
    free(body);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                  */

START_TEST(test_port_in_use)
{
    sf_admin_t *other = NULL;
    start_admin();
    ck_assert_int_eq(sf_admin_new(rt, "127.0.0.1", sf_admin_port(admin), &other), SF_EEXIST);
    ck_assert_ptr_null(other);
}
END_TEST

START_TEST(test_stop_without_start)
{
    ck_assert_int_eq(sf_admin_new(rt, "127.0.0.1", 0, &admin), 0);
    sf_admin_stop(admin);
    sf_admin_stop(admin);
}
END_TEST

START_TEST(test_stop_with_open_connection)
{
    /* A keep-alive connection, answered and still open, when the admin stops. */
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    struct sockaddr_in sa;
    char buf[256];
    ssize_t n;
    int fd;

    start_admin();
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(sf_admin_port(admin));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    n = read(fd, buf, sizeof buf - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "200 OK"));
    sf_admin_stop(admin);
    /* The server closed its end. */
    ck_assert_int_eq(read(fd, buf, sizeof buf), 0);
    close(fd);
}
END_TEST

Suite *sf_runtime_admin_suite(void)
{
    Suite *s = suite_create("runtime_admin");
    TCase *tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_health_render);
    tcase_add_test(tc, test_health_http);
    tcase_add_test(tc, test_metrics_render);
    tcase_add_test(tc, test_metrics_http);
    tcase_add_test(tc, test_state_json);
    tcase_add_test(tc, test_state_errors);
    tcase_add_test(tc, test_port_in_use);
    tcase_add_test(tc, test_stop_without_start);
    tcase_add_test(tc, test_stop_with_open_connection);
    suite_add_tcase(s, tc);
    return s;
}
