/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/config/module.c: real StateFun module files load
 * unchanged; every kind and field lands in sf_module_t; every class of error
 * is reported with its exact file and line, all of them, not just the first;
 * the lookup picks the most specific `functions` match.
 *
 * Inline YAML is loaded as "t.yaml"; line numbers in the expectations count
 * from the first line of each string.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "module.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                    */

static char dump_buf[8192];

/* All diagnostics as text, for failure messages. */
static const char *dump(const sf_diags_t *d)
{
    size_t i, used = 0;

    dump_buf[0] = '\0';
    for (i = 0; i < d->len && used < sizeof dump_buf; i++)
        used += (size_t)snprintf(dump_buf + used, sizeof dump_buf - used, "\n  %s:%d: %s%s",
                                 d->items[i].source, d->items[i].line,
                                 d->items[i].severity == SF_DIAG_WARNING ? "warning: " : "",
                                 d->items[i].msg);
    return dump_buf;
}

static const sf_diag_t *find(const sf_diags_t *d, sf_diag_severity sev, const char *source,
                             int line, const char *needle)
{
    size_t i;

    for (i = 0; i < d->len; i++) {
        const sf_diag_t *g = &d->items[i];
        if (g->severity == sev && g->line == line && strcmp(g->source, source) == 0 &&
            strstr(g->msg, needle))
            return g;
    }
    return NULL;
}

#define EXPECT_ERR_IN(d, file, line, needle)                                                       \
    ck_assert_msg(find((d), SF_DIAG_ERROR, (file), (line), (needle)) != NULL,                      \
                  "no error at %s:%d containing \"%s\"; got:%s", (file), (line), (needle),         \
                  dump(d))
#define EXPECT_WARN_IN(d, file, line, needle)                                                      \
    ck_assert_msg(find((d), SF_DIAG_WARNING, (file), (line), (needle)) != NULL,                    \
                  "no warning at %s:%d containing \"%s\"; got:%s", (file), (line), (needle),       \
                  dump(d))
#define EXPECT_ERR(d, line, needle) EXPECT_ERR_IN(d, "t.yaml", line, needle)
#define EXPECT_WARN(d, line, needle) EXPECT_WARN_IN(d, "t.yaml", line, needle)
#define EXPECT_CLEAN(d) ck_assert_msg((d)->len == 0, "unexpected diagnostics:%s", dump(d))
#define EXPECT_NERRORS(d, n)                                                                       \
    ck_assert_msg((d)->nerrors == (n), "expected %d errors, got %zu:%s", (int)(n), (d)->nerrors,   \
                  dump(d))

/* Loads |yaml| as t.yaml (relative paths from |dir|) and runs the cross checks. */
static sf_module_t *load_in(sf_diags_t *d, const char *dir, const char *yaml)
{
    sf_module_t *m = sf_module_new();

    sf_diags_init(d);
    sf_module_add_string(m, "t.yaml", dir, yaml, strlen(yaml), d);
    sf_module_finish(m, d);
    return m;
}

static sf_module_t *load(sf_diags_t *d, const char *yaml)
{
    return load_in(d, NULL, yaml);
}

/* Loads files from tests/runtime/modules; their diagnostics name the full path. */
static sf_module_t *load_files(sf_diags_t *d, const char *const *names, size_t n, char **paths)
{
    const char *p[8];
    size_t i;
    sf_module_t *m;

    ck_assert_uint_le(n, 8);
    for (i = 0; i < n; i++) {
        paths[i] = malloc(1024);
        snprintf(paths[i], 1024, "%s/tests/runtime/modules/%s", sf_test_src(), names[i]);
        p[i] = paths[i];
    }
    sf_diags_init(d);
    sf_module_load(p, n, d, &m);
    return m;
}

static void free_all(sf_module_t *m, sf_diags_t *d)
{
    sf_module_free(m);
    sf_diags_dispose(d);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ------------------------------------------------------------------------ */
/* Real files                                                                 */

START_TEST(test_playground_greeter)
{
    const char *names[] = {"greeter.yaml"};
    char *paths[1];
    sf_diags_t d;
    sf_module_t *m = load_files(&d, names, 1, paths);
    const sf_endpoint_spec_t *e;

    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->nfiles, 1);
    ck_assert_uint_eq(m->ndocuments, 3);
    ck_assert_uint_eq(m->nendpoints, 1);
    e = &m->endpoints[0];
    ck_assert_str_eq(e->loc.file, paths[0]);
    ck_assert_int_eq(e->loc.line, 1);
    ck_assert_int_eq(e->version, 2);
    ck_assert_str_eq(e->functions.ns, "greeter.fns");
    ck_assert_ptr_null(e->functions.name);
    ck_assert_int_eq(e->functions.loc.line, 3);
    ck_assert_str_eq(e->url_template, "http://functions:8000/");
    ck_assert(!e->url_templated && !e->url_tls && !e->url_unix);
    ck_assert_int_eq(e->transport, SF_TRANSPORT_ASYNC);
    ck_assert_int_eq(e->protocol, SF_HTTP_PROTO_AUTO);
    ck_assert_uint_eq(e->call_timeout_ms, 120000);
    ck_assert_uint_eq(e->connect_timeout_ms, 20000);
    ck_assert_uint_eq(e->read_timeout_ms, 10000);
    ck_assert_uint_eq(e->write_timeout_ms, 10000);
    ck_assert_uint_eq(e->max_num_batch_requests, 1000);
    ck_assert_uint_eq(e->pool_ttl_ms, SF_ENDPOINT_DEFAULT_POOL_TTL_MS);
    ck_assert_uint_eq(e->pool_size, SF_ENDPOINT_DEFAULT_POOL_SIZE);
    ck_assert_uint_eq(e->payload_max_bytes, SF_ENDPOINT_DEFAULT_PAYLOAD_MAX);
    ck_assert_ptr_null(e->trust_cacerts);
    ck_assert_ptr_nonnull(m->ingress);
    ck_assert_int_eq(m->ingress->loc.line, 10);
    ck_assert_str_eq(m->ingress->host, "127.0.0.1");
    ck_assert_uint_eq(m->ingress->port, 8090);
    ck_assert_ptr_nonnull(m->egress);
    ck_assert_int_eq(m->egress->loc.line, 14);
    ck_assert_uint_eq(m->egress->port, 8091);
    ck_assert_uint_eq(m->egress->ntopics, 1);
    ck_assert_str_eq(m->egress->topics[0], "greetings");
    ck_assert(m->egress->exactly_once);
    ck_assert_uint_eq(m->nembedded, 0);
    ck_assert_uint_eq(m->nsettings, 0);
    free(paths[0]);
    free_all(m, &d);
}
END_TEST

START_TEST(test_statefun_forms)
{
    const char *names[] = {"statefun-forms.yaml"};
    char *paths[1];
    sf_diags_t d;
    sf_module_t *m = load_files(&d, names, 1, paths);
    const sf_endpoint_spec_t *e;

    /* Only the warning for maxRetries, which StateFun ignores as well. */
    ck_assert_uint_eq(d.nerrors, 0);
    ck_assert_uint_eq(d.nwarnings, 1);
    EXPECT_WARN_IN(&d, paths[0], 40, "'maxRetries'");
    ck_assert_uint_eq(m->ndocuments, 7);
    ck_assert_uint_eq(m->nendpoints, 5);

    e = &m->endpoints[0]; /* v1 with timeouts under spec, Flink duration words */
    ck_assert_int_eq(e->version, 1);
    ck_assert_int_eq(e->transport, SF_TRANSPORT_OKHTTP);
    ck_assert(e->url_templated);
    ck_assert_uint_eq(e->max_num_batch_requests, 10000);
    ck_assert_uint_eq(e->call_timeout_ms, 60000);
    ck_assert_uint_eq(e->connect_timeout_ms, 30000);
    ck_assert_uint_eq(e->read_timeout_ms, 20000);
    ck_assert_uint_eq(e->write_timeout_ms, 10000);

    e = &m->endpoints[1]; /* io.statefun.endpoints/http, an exact function */
    ck_assert_int_eq(e->version, 1);
    ck_assert_str_eq(e->functions.ns, "com.example.old");
    ck_assert_str_eq(e->functions.name, "hello");

    e = &m->endpoints[2]; /* v2 okhttp */
    ck_assert_int_eq(e->version, 2);
    ck_assert_int_eq(e->transport, SF_TRANSPORT_OKHTTP);
    ck_assert_uint_eq(e->call_timeout_ms, 60000);
    ck_assert_uint_eq(e->read_timeout_ms, 10000);
    ck_assert_uint_eq(e->write_timeout_ms, 10000); /* "10000": milliseconds */

    e = &m->endpoints[3];
    ck_assert_str_eq(e->functions.name, "command-interpreter-fn");
    ck_assert_str_eq(e->url_template, "http://localhost:8000");

    e = &m->endpoints[4];
    ck_assert_int_eq(e->transport, SF_TRANSPORT_ASYNC);
    ck_assert_uint_eq(m->egress->ntopics, 2);
    free(paths[0]);
    free_all(m, &d);
}
END_TEST

START_TEST(test_full_file)
{
    const char *names[] = {"full.yaml"};
    char *paths[1];
    sf_diags_t d;
    sf_module_t *m = load_files(&d, names, 1, paths);
    const sf_endpoint_spec_t *e;
    const sf_embedded_spec_t *em;
    static const struct {
        sf_opt_id opt;
        const char *value;
        int line;
    } want[] = {
        {SF_OPT_STATE_DIR, "/var/lib/statefun", 3},
        {SF_OPT_STATE_BACKEND, "memory", 4},
        {SF_OPT_WORKERS, "3", 5},
        {SF_OPT_MAX_PARALLELISM, "64", 6},
        {SF_OPT_CHECKPOINT_INTERVAL, "250ms", 7},
        {SF_OPT_ADMIN, "127.0.0.1:9081", 8},
        {SF_OPT_LOG_LEVEL, "debug", 9},
    };
    size_t i;

    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->nsettings, SF_ARRAY_SIZE(want));
    for (i = 0; i < SF_ARRAY_SIZE(want); i++) {
        ck_assert_int_eq(m->settings[i].opt, want[i].opt);
        ck_assert_str_eq(m->settings[i].value, want[i].value);
        ck_assert_int_eq(m->settings[i].line, want[i].line);
        ck_assert_str_eq(m->settings[i].file, paths[0]);
    }

    ck_assert_uint_eq(m->nendpoints, 2);
    e = &m->endpoints[0];
    ck_assert_int_eq(e->loc.line, 11);
    ck_assert(e->url_templated && e->url_tls && !e->url_unix);
    ck_assert_uint_eq(e->max_num_batch_requests, 250);
    ck_assert_uint_eq(e->call_timeout_ms, 90000);
    ck_assert_uint_eq(e->connect_timeout_ms, 5000);
    ck_assert_uint_eq(e->read_timeout_ms, 7000);
    ck_assert_uint_eq(e->write_timeout_ms, 8000);
    ck_assert_uint_eq(e->pool_ttl_ms, 30000);
    ck_assert_uint_eq(e->pool_size, 8);
    ck_assert_uint_eq(e->payload_max_bytes, 1048576);
    ck_assert(ends_with(e->trust_cacerts, "tests/runtime/modules/certs/ca.pem"));
    ck_assert(ends_with(e->client_cert, "tests/runtime/modules/certs/client.pem"));
    ck_assert(ends_with(e->client_key, "tests/runtime/modules/certs/client.key"));
    ck_assert_str_eq(e->client_key_password, "secret");
    ck_assert_int_eq(e->protocol, SF_HTTP_PROTO_H2);
    e = &m->endpoints[1];
    ck_assert(e->url_unix && !e->url_tls);
    ck_assert_int_eq(e->protocol, SF_HTTP_PROTO_HTTP1);
    ck_assert_str_eq(e->functions.name, "special");

    ck_assert_uint_eq(m->nembedded, 1);
    em = &m->embedded[0];
    ck_assert_int_eq(em->loc.line, 39);
    ck_assert_int_eq(em->library[0], '/'); /* resolved to an absolute path */
    ck_assert(ends_with(em->library, "tests/runtime/modules/lib/libfull.so"));
    ck_assert_uint_eq(em->nfunctions, 2);
    ck_assert_str_eq(em->functions[0].ns, "full.embedded");
    ck_assert_ptr_null(em->functions[0].name);
    ck_assert_str_eq(em->functions[1].ns, "other.embedded");
    ck_assert_str_eq(em->functions[1].name, "counter");
    ck_assert_int_eq(em->functions[1].loc.line, 44);

    ck_assert_str_eq(m->ingress->host, "0.0.0.0");
    ck_assert_uint_eq(m->ingress->port, 18090);
    ck_assert_uint_eq(m->egress->port, 18091);
    ck_assert(!m->egress->exactly_once);
    ck_assert_uint_eq(m->egress->ntopics, 2);
    ck_assert_str_eq(m->egress->topics[1], "receipts");
    free(paths[0]);
    free_all(m, &d);
}
END_TEST

START_TEST(test_kafka_not_yet_supported)
{
    const char *names[] = {"kafka.yaml"};
    char *paths[1];
    sf_diags_t d;
    sf_module_t *m = load_files(&d, names, 1, paths);

    EXPECT_NERRORS(&d, 4);
    EXPECT_ERR_IN(&d, paths[0], 7, "kind 'io.statefun.kafka.v1/ingress' is not yet supported");
    EXPECT_ERR_IN(&d, paths[0], 20, "kind 'io.statefun.kafka.v1/egress' is not yet supported");
    EXPECT_ERR_IN(&d, paths[0], 28, "kind 'io.statefun.kafka/ingress' is not yet supported");
    EXPECT_ERR_IN(&d, paths[0], 32, "kind 'io.statefun.kinesis.v1/egress' is not supported");
    ck_assert_ptr_null(find(&d, SF_DIAG_ERROR, paths[0], 7, "unknown"));
    /* The good document is still read. */
    ck_assert_uint_eq(m->nendpoints, 1);
    free(paths[0]);
    free_all(m, &d);
}
END_TEST

START_TEST(test_errors_file_and_syntax_all_reported)
{
    const char *names[] = {"errors.yaml", "syntax.yaml", "missing.yaml", "greeter.yaml"};
    char *paths[4];
    sf_diags_t d;
    sf_module_t *m = load_files(&d, names, 4, paths);
    size_t i;

    EXPECT_ERR_IN(&d, paths[0], 3, "'greeter' is not a function pattern");
    EXPECT_ERR_IN(&d, paths[0], 4, "unsupported URL scheme 'ftp'");
    EXPECT_ERR_IN(&d, paths[0], 5, "'maxNumBatchRequests' must be a whole number, got 'lots'");
    EXPECT_ERR_IN(&d, paths[0], 8, "bad duration '2 fortnights'");
    EXPECT_ERR_IN(&d, paths[0], 10, "unknown field 'bogus' in 'transport'");
    EXPECT_ERR_IN(&d, paths[0], 12, "unknown kind 'io.statefun.nope/x'");
    EXPECT_ERR_IN(&d, paths[0], 17, "'port' is out of range: 70000 (allowed 0..65535)");
    EXPECT_ERR_IN(&d, paths[0], 20, "missing required field 'topics'");
    EXPECT_ERR_IN(&d, paths[0], 22, "'deliverySemantic' must be exactly-once or at-least-once");
    EXPECT_ERR_IN(&d, paths[0], 25, "runtime option 'workers': expected a whole number");
    EXPECT_ERR_IN(&d, paths[0], 26, "unknown runtime option 'frobnicate'");
    EXPECT_ERR_IN(&d, paths[1], 7, "YAML syntax error: did not find expected ',' or ']'");
    EXPECT_ERR_IN(&d, paths[2], 0, "cannot open");
    /* The documents before the syntax error and the good file still count. */
    ck_assert_ptr_nonnull(m->ingress);
    ck_assert_str_eq(m->ingress->loc.file, paths[1]);
    ck_assert_uint_eq(m->nendpoints, 1);
    ck_assert_str_eq(m->endpoints[0].loc.file, paths[3]);
    /* greeter.yaml's ingress is the second one (syntax.yaml's came first). */
    EXPECT_ERR_IN(&d, paths[3], 10, "only one io.statefun.playground.v1/ingress");
    EXPECT_NERRORS(&d, 14);
    for (i = 0; i < 4; i++)
        free(paths[i]);
    free_all(m, &d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Endpoints                                                                  */

START_TEST(test_endpoint_minimal_defaults)
{
    sf_diags_t d;
    sf_module_t *m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                              "spec:\n"
                              "  functions: ns/fn\n"
                              "  urlPathTemplate: http://127.0.0.1:9000/{function.name}/x\n");
    const sf_endpoint_spec_t *e;
    char *url;

    EXPECT_CLEAN(&d);
    e = &m->endpoints[0];
    ck_assert_int_eq(e->transport, SF_TRANSPORT_ASYNC);
    ck_assert_uint_eq(e->call_timeout_ms, 60000);
    ck_assert_uint_eq(e->connect_timeout_ms, 10000);
    ck_assert_uint_eq(e->read_timeout_ms, 10000);
    ck_assert_uint_eq(e->write_timeout_ms, 10000);
    ck_assert_uint_eq(e->max_num_batch_requests, 1000);
    url = sf_endpoint_url_for(e, "greet");
    ck_assert_str_eq(url, "http://127.0.0.1:9000/greet/x");
    free(url);
    free_all(m, &d);
}
END_TEST

START_TEST(test_endpoint_timeouts)
{
    sf_diags_t d;
    sf_module_t *m;

    /* transport.timeouts.call wins over transport.call (as StateFun), with a warning. */
    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    call: 5s\n"
                 "    timeouts:\n"
                 "      call: 30s\n");
    ck_assert_uint_eq(d.nerrors, 0);
    EXPECT_WARN(&d, 6, "overridden by transport.timeouts.call");
    ck_assert_uint_eq(m->endpoints[0].call_timeout_ms, 30000);
    free_all(m, &d);

    /* A short call timeout clamps the defaulted ones... */
    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    call: 2s\n");
    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->endpoints[0].connect_timeout_ms, 2000);
    ck_assert_uint_eq(m->endpoints[0].read_timeout_ms, 2000);
    free_all(m, &d);

    /* ...but explicit ones larger than the call timeout are errors, as in StateFun. */
    m = load(&d, "kind: io.statefun.endpoints.v1/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  timeouts:\n"
                 "    call: 2s\n"
                 "    connect: 3s\n"
                 "    read: 4s\n"
                 "    write: 5s\n");
    EXPECT_ERR(&d, 7, "connect timeout cannot be larger than the call timeout");
    EXPECT_ERR(&d, 8, "read timeout cannot be larger");
    EXPECT_ERR(&d, 9, "write timeout cannot be larger");
    EXPECT_NERRORS(&d, 3);
    ck_assert_uint_eq(m->nendpoints, 0);
    free_all(m, &d);

    /* Zero and malformed durations. */
    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    timeouts:\n"
                 "      call: 0\n"
                 "      connect: 1.5s\n"
                 "      read: [1s]\n"
                 "      write:\n"
                 "      idle: 3s\n");
    EXPECT_ERR(&d, 7, "'timeouts.call' must be larger than 0");
    EXPECT_ERR(&d, 8, "fractional");
    EXPECT_ERR(&d, 9, "'timeouts.read' must be a duration such as 10s or 2m, got a list");
    EXPECT_ERR(&d, 10, "'timeouts.write' has no value");
    EXPECT_ERR(&d, 11, "unknown field 'idle' in 'timeouts' (known: call, connect, read, write)");
    EXPECT_NERRORS(&d, 5);
    free_all(m, &d);
}
END_TEST

START_TEST(test_endpoint_transport_fields)
{
    sf_diags_t d;
    sf_module_t *m;

    /* okhttp takes only timeouts (and our protocol). */
    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    pool_size: 3\n"
                 "    type: io.statefun.transports.v1/okhttp\n"
                 "    call: 3s\n");
    EXPECT_ERR(&d, 6,
               "'pool_size' does not belong in 'transport' "
               "(io.statefun.transports.v1/okhttp)");
    EXPECT_ERR(&d, 8, "use timeouts.call");
    EXPECT_NERRORS(&d, 2);
    free_all(m, &d);

    /* Unknown transport types, bad values of the async fields. */
    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    type: my.custom/http.transport.type\n"
                 "    property1: value1\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns2/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    pool_size: 0\n"
                 "    payload_max_bytes: 1MB\n"
                 "    pool_ttl: forever\n"
                 "    client_key_password: {a: b}\n"
                 "    protocol: h3\n");
    EXPECT_ERR(&d, 6, "unsupported transport type 'my.custom/http.transport.type'");
    EXPECT_ERR(&d, 14, "'transport.pool_size' is out of range: 0");
    EXPECT_ERR(&d, 15, "'transport.payload_max_bytes' must be a whole number, got '1MB'");
    EXPECT_ERR(&d, 16, "'transport.pool_ttl': bad duration 'forever'");
    EXPECT_ERR(&d, 17, "'transport.client_key_password' must be a string, got a mapping");
    EXPECT_ERR(&d, 18, "'transport.protocol' must be one of auto, http1, h2c, h2; got 'h3'");
    EXPECT_NERRORS(&d, 6);
    free_all(m, &d);

    /* transport as a scalar; an empty transport is the defaults. */
    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport: async\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns2/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n");
    EXPECT_ERR(&d, 5, "'transport' must be a mapping, got a scalar");
    EXPECT_NERRORS(&d, 1);
    ck_assert_uint_eq(m->nendpoints, 1);
    free_all(m, &d);
}
END_TEST

START_TEST(test_endpoint_version_specific_fields)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: ns/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  timeouts:\n"
                 "    call: 1m\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v1/http\n"
                 "spec:\n"
                 "  functions: ns2/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    type: io.statefun.transports.v1/async\n");
    EXPECT_ERR(&d, 5, "it goes under 'transport'");
    EXPECT_ERR(&d, 12, "io.statefun.endpoints.v1/http has no transport");
    EXPECT_NERRORS(&d, 2);
    free_all(m, &d);
}
END_TEST

START_TEST(test_endpoint_urls_and_protocol)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: a/*\n"
                 "  urlPathTemplate: ftp://h/\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: b/*\n"
                 "  urlPathTemplate: functions:8000/statefun\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: c/*\n"
                 "  urlPathTemplate: http+unix:///run/no-socket-here/fn\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: d/*\n"
                 "  urlPathTemplate: http://h/\n"
                 "  transport:\n"
                 "    protocol: h2\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: e/*\n"
                 "  urlPathTemplate: https://h/\n"
                 "  transport:\n"
                 "    protocol: h2c\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: f/*\n"
                 "  urlPathTemplate: http://h:99999/\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: g/*\n"
                 "  urlPathTemplate: https+unix:///run/fn.sock/{function.name}\n"
                 "  transport:\n"
                 "    protocol: H2C\n");
    EXPECT_ERR(&d, 4, "unsupported URL scheme 'ftp'");
    EXPECT_ERR(&d, 9, "has no scheme");
    EXPECT_ERR(&d, 14, "is not a valid URL (a unix socket URL names a path ending in .sock");
    EXPECT_ERR(&d, 21, "'transport.protocol: h2' needs an https URL");
    EXPECT_ERR(&d, 28, "'transport.protocol: h2c' is plaintext HTTP/2");
    EXPECT_ERR(&d, 33, "is not a valid URL");
    EXPECT_ERR(&d, 40, "h2c");
    EXPECT_NERRORS(&d, 7);
    ck_assert_uint_eq(m->nendpoints, 0);
    free_all(m, &d);

    /* The four schemes, with the function name anywhere. */
    m = load(&d,
             "kind: io.statefun.endpoints.v2/http\n"
             "spec: {functions: a/*, urlPathTemplate: 'HTTP://h/{function.name}'}\n"
             "---\n"
             "kind: io.statefun.endpoints.v2/http\n"
             "spec: {functions: b/*, urlPathTemplate: 'https://h:8443'}\n"
             "---\n"
             "kind: io.statefun.endpoints.v2/http\n"
             "spec: {functions: c/*, urlPathTemplate: 'http+unix:///tmp/a.sock'}\n"
             "---\n"
             "kind: io.statefun.endpoints.v2/http\n"
             "spec: {functions: d/*, urlPathTemplate: 'https+unix:///tmp/a.sock/x/{function.name}',"
             " transport: {protocol: h2}}\n");
    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->nendpoints, 4);
    ck_assert(m->endpoints[1].url_tls && !m->endpoints[1].url_unix);
    ck_assert(m->endpoints[2].url_unix && !m->endpoints[2].url_tls);
    ck_assert(m->endpoints[3].url_unix && m->endpoints[3].url_tls);
    free_all(m, &d);
}
END_TEST

START_TEST(test_endpoint_tls_files)
{
    char *dir = sf_test_mkdtemp("tls"), path[512];
    sf_diags_t d;
    sf_module_t *m;

    snprintf(path, sizeof path, "%s/ca.pem", dir);
    ck_assert_int_eq(sf_test_write_file(path, "x", 1), 0);
    m = load_in(&d, dir,
                "kind: io.statefun.endpoints.v2/http\n"
                "spec:\n"
                "  functions: a/*\n"
                "  urlPathTemplate: https://h/\n"
                "  transport:\n"
                "    trust_cacerts: ca.pem\n"
                "    client_cert: classpath:client.pem\n"
                "    client_key: no-such.key\n"
                "---\n"
                "kind: io.statefun.endpoints.v2/http\n"
                "spec:\n"
                "  functions: b/*\n"
                "  urlPathTemplate: https://h/\n"
                "  transport:\n"
                "    client_cert: file:ca.pem\n"
                "---\n"
                "kind: io.statefun.endpoints.v2/http\n"
                "spec:\n"
                "  functions: c/*\n"
                "  urlPathTemplate: http://h/\n"
                "  transport:\n"
                "    trust_cacerts: ca.pem\n");
    EXPECT_ERR(&d, 7, "classpath: resources do not exist in statefun-c");
    EXPECT_ERR(&d, 8, "'transport.client_key': cannot read");
    EXPECT_ERR(&d, 14, "client_cert and client_key go together");
    EXPECT_NERRORS(&d, 3);
    EXPECT_WARN(&d, 21, "TLS settings are ignored");
    ck_assert_uint_eq(m->nendpoints, 1);
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    ck_assert_str_eq(m->endpoints[0].trust_cacerts, path);
    free_all(m, &d);
    sf_test_rmtree(dir);
}
END_TEST

START_TEST(test_endpoint_types_and_required)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: [a/b, c/d]\n"
                 "  urlPathTemplate: {url: http://h/}\n"
                 "  maxNumBatchRequests: 0\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  maxNumBatchRequests: -3\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec: [functions, urlPathTemplate]\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "---\n"
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: a/b\n"
                 "  urlPathTemplate: ''\n"
                 "  maxNumBatchRequests: 3000000000\n");
    EXPECT_ERR(&d, 3, "'functions' must be a string, got a list");
    EXPECT_ERR(&d, 4, "'urlPathTemplate' must be a string, got a mapping");
    EXPECT_ERR(&d, 5, "'maxNumBatchRequests' is out of range: 0");
    EXPECT_ERR(&d, 9, "'maxNumBatchRequests' must not be negative, got '-3'");
    EXPECT_ERR(&d, 8, "missing required field 'functions'"); /* on the spec: line */
    EXPECT_ERR(&d, 8, "missing required field 'urlPathTemplate'");
    EXPECT_ERR(&d, 12, "the spec of io.statefun.endpoints.v2/http must be a mapping, got a list");
    EXPECT_ERR(&d, 14, "document of kind 'io.statefun.endpoints.v2/http' has no 'spec'");
    EXPECT_ERR(&d, 19, "'urlPathTemplate' is empty");
    EXPECT_ERR(&d, 20, "out of range: 3000000000");
    EXPECT_NERRORS(&d, 10);
    free_all(m, &d);
}
END_TEST

START_TEST(test_function_patterns)
{
    static const char *const bad[] = {"a",    "a/",    "/b",  "a/b/c", "a*/b",
                                      "a/b*", "a b/c", "*/*", "a/**",  "a/ b"};
    size_t i;

    for (i = 0; i < SF_ARRAY_SIZE(bad); i++) {
        char yaml[256];
        sf_diags_t d;
        sf_module_t *m;

        snprintf(yaml, sizeof yaml,
                 "kind: io.statefun.endpoints.v2/http\n"
                 "spec:\n"
                 "  functions: '%s'\n"
                 "  urlPathTemplate: http://h/\n",
                 bad[i]);
        m = load(&d, yaml);
        EXPECT_ERR(&d, 3, "is not a function pattern (expected namespace/name or namespace/*)");
        EXPECT_NERRORS(&d, 1);
        ck_assert_uint_eq(m->nendpoints, 0);
        free_all(m, &d);
    }
}
END_TEST

START_TEST(test_ignored_real_fields_warn)
{
    sf_diags_t d;
    sf_module_t *m = load(&d, "kind: io.statefun.endpoints.v1/http\n"
                              "spec:\n"
                              "  functions: a/*\n"
                              "  urlPathTemplate: http://h/\n"
                              "  maxRetries: 5\n");

    ck_assert_uint_eq(d.nerrors, 0);
    EXPECT_WARN(&d, 5,
                "field 'maxRetries' in the spec of io.statefun.endpoints.v1/http is "
                "ignored");
    ck_assert_uint_eq(m->nendpoints, 1);
    free_all(m, &d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Ingress, egress, embedded                                                  */

START_TEST(test_playground_io)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "kind: io.statefun.playground.v1/ingress\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec:\n"
                 "  topics: [t1]\n"
                 "  host: localhost\n"
                 "  port: 0\n");
    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->ingress->port, 8090); /* every default */
    ck_assert_str_eq(m->ingress->host, "127.0.0.1");
    ck_assert_str_eq(m->egress->host, "127.0.0.1");
    ck_assert_uint_eq(m->egress->port, 0);
    free_all(m, &d);

    m = load(&d, "kind: io.statefun.playground.v1/ingress\n"
                 "spec:\n"
                 "  port: -1\n"
                 "  host: functions\n"
                 "  path: /x\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec:\n"
                 "  port: http\n"
                 "  topics: greetings\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec:\n"
                 "  topics: []\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec:\n"
                 "  topics:\n"
                 "    - ok\n"
                 "    - a/b\n"
                 "    - ok\n"
                 "    - [x]\n"
                 "  deliverySemantic: {type: exactly-once}\n");
    EXPECT_ERR(&d, 3, "'port' must not be negative");
    EXPECT_ERR(&d, 4, "'host' must be an IP address to listen on");
    EXPECT_ERR(&d, 5,
               "unknown field 'path' in the spec of io.statefun.playground.v1/ingress "
               "(known: port, host)");
    EXPECT_ERR(&d, 9, "'port' must be a whole number, got 'http'");
    EXPECT_ERR(&d, 10, "'topics' must be a list of topic names, got a scalar");
    EXPECT_ERR(&d, 14, "'topics' is empty");
    EXPECT_ERR(&d, 20, "topic 'a/b' cannot be used in a URL path");
    EXPECT_WARN(&d, 21, "topic 'ok' is listed twice");
    EXPECT_ERR(&d, 22, "'topics[]' must be a string, got a list");
    EXPECT_ERR(&d, 23, "'deliverySemantic' must be a string, got a mapping");
    EXPECT_NERRORS(&d, 9);
    ck_assert_ptr_null(m->ingress);
    ck_assert_ptr_null(m->egress);
    free_all(m, &d);
}
END_TEST

START_TEST(test_only_one_ingress_egress_and_ports)
{
    sf_diags_t d;
    sf_module_t *m;
    sf_options_t o;
    char err[128];

    m = load(&d, "kind: io.statefun.playground.v1/ingress\n"
                 "spec: {port: 9000}\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/ingress\n"
                 "spec: {port: 9001}\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec: {port: 9000, host: 0.0.0.0, topics: [t]}\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec: {port: 9002, topics: [t]}\n");
    EXPECT_ERR(&d, 4, "only one io.statefun.playground.v1/ingress is allowed (first at t.yaml:1)");
    EXPECT_ERR(&d, 10, "only one io.statefun.playground.v1/egress is allowed (first at t.yaml:7)");
    EXPECT_ERR(&d, 7, "egress port 9000 is already used by the ingress at t.yaml:1");
    EXPECT_NERRORS(&d, 3);

    /* The admin listener may not take the ingress or egress port either. */
    sf_options_init(&o);
    ck_assert_int_eq(sf_options_set(&o, SF_OPT_ADMIN, "127.0.0.1:9000", SF_OPT_SRC_CLI, "--admin",
                                    err, sizeof err),
                     0);
    sf_diags_dispose(&d);
    sf_diags_init(&d);
    ck_assert_int_eq(sf_module_check_options(m, &o, &d), SF_EINVAL);
    EXPECT_ERR(&d, 1,
               "ingress port 9000 is also the admin port (--admin 127.0.0.1:9000, from "
               "--admin)");
    EXPECT_ERR(&d, 7, "egress port 9000 is also the admin port");
    sf_options_dispose(&o);
    free_all(m, &d);
}
END_TEST

START_TEST(test_embedded)
{
    char *dir = sf_test_mkdtemp("emb"), path[512];
    sf_diags_t d;
    sf_module_t *m;

    snprintf(path, sizeof path, "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/sub/libx.so", dir);
    ck_assert_int_eq(sf_test_write_file(path, "x", 1), 0);
    m = load_in(&d, dir,
                "kind: statefun.c.v1/embedded\n"
                "spec:\n"
                "  library: sub/libx.so\n"
                "  functions: emb/*\n"
                "---\n"
                "kind: statefun.c.v1/embedded\n"
                "spec:\n"
                "  library: libmissing.so\n"
                "  functions: [other/a, bad]\n"
                "---\n"
                "kind: statefun.c.v1/embedded\n"
                "spec:\n"
                "  library: sub\n"
                "  functions: []\n"
                "---\n"
                "kind: statefun.c.v1/embedded\n"
                "spec:\n"
                "  functions: x/*\n"
                "  entry: sf_module_init\n");
    EXPECT_ERR(&d, 8, "library 'libmissing.so' not found (looked at ");
    EXPECT_ERR(&d, 9, "'bad' is not a function pattern");
    EXPECT_ERR(&d, 13, "library 'sub' is not a regular file");
    EXPECT_ERR(&d, 14, "'functions' is an empty list");
    EXPECT_ERR(&d, 17, "missing required field 'library'");
    EXPECT_ERR(&d, 19, "unknown field 'entry'");
    EXPECT_NERRORS(&d, 6);
    ck_assert_uint_eq(m->nembedded, 1);
    ck_assert(ends_with(m->embedded[0].library, "/sub/libx.so"));
    ck_assert_int_eq(m->embedded[0].library[0], '/');
    ck_assert_uint_eq(m->embedded[0].nfunctions, 1);
    free_all(m, &d);

    /* A file on disk: the library is found next to the YAML, from any cwd. */
    snprintf(path, sizeof path, "%s/sub/m.yaml", dir);
    {
        const char *text = "kind: statefun.c.v1/embedded\n"
                           "spec: {library: libx.so, functions: emb/*}\n";
        ck_assert_int_eq(sf_test_write_file(path, text, strlen(text)), 0);
    }
    m = sf_module_new();
    sf_diags_init(&d);
    ck_assert_int_eq(sf_module_add_file(m, path, &d), 0);
    EXPECT_CLEAN(&d);
    ck_assert(ends_with(m->embedded[0].library, "/sub/libx.so"));
    free_all(m, &d);
    sf_test_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Runtime sections                                                           */

START_TEST(test_runtime_sections)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "runtime:\n"
                 "  stateDir: /data\n"
                 "  checkpoint-interval: 10 sec\n"
                 "---\n"
                 "kind: statefun.c.v1/runtime\n"
                 "spec:\n"
                 "  maxParallelism: 256\n");
    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->nsettings, 3);
    ck_assert_int_eq(m->settings[0].opt, SF_OPT_STATE_DIR);
    ck_assert_str_eq(m->settings[0].value, "/data");
    ck_assert_int_eq(m->settings[0].line, 2);
    ck_assert_int_eq(m->settings[1].opt, SF_OPT_CHECKPOINT_INTERVAL);
    ck_assert_str_eq(m->settings[1].value, "10 sec");
    ck_assert_int_eq(m->settings[2].opt, SF_OPT_MAX_PARALLELISM);
    ck_assert_int_eq(m->settings[2].line, 7);
    free_all(m, &d);

    m = load(&d, "runtime:\n"
                 "  workers: 0\n"
                 "  --workers: 2\n"
                 "  state_dir: /x\n"
                 "  admin: [127.0.0.1, 8081]\n"
                 "  log-level: loud\n"
                 "other: 1\n"
                 "---\n"
                 "runtime:\n"
                 "  stateBackend: memory\n"
                 "---\n"
                 "runtime:\n"
                 "  state-backend: rocksdb\n"
                 "---\n"
                 "runtime: [workers]\n");
    EXPECT_ERR(&d, 2, "runtime option 'workers': 0 is out of range (1..32768)");
    EXPECT_ERR(&d, 3, "unknown runtime option '--workers'");
    EXPECT_ERR(&d, 4, "unknown runtime option 'state_dir' (known: state-dir, ");
    EXPECT_ERR(&d, 5, "'admin' must be a string, got a list");
    EXPECT_ERR(&d, 6, "runtime option 'log-level': 'loud' is not one of");
    EXPECT_ERR(&d, 7, "a runtime document holds only 'runtime:' (unexpected 'other')");
    EXPECT_ERR(&d, 13, "runtime option 'state-backend' is already set at t.yaml:10");
    EXPECT_ERR(&d, 15, "the runtime section must be a mapping");
    EXPECT_NERRORS(&d, 8);
    free_all(m, &d);
}
END_TEST

START_TEST(test_runtime_settings_resolve_with_options)
{
    sf_diags_t d;
    sf_module_t *m = load(&d, "runtime:\n"
                              "  workers: 2\n"
                              "  logLevel: debug\n");
    sf_options_t o;

    EXPECT_CLEAN(&d);
    sf_options_init(&o);
    ck_assert_int_eq(sf_options_resolve(&o, m->settings, m->nsettings, NULL, 0, NULL, NULL, &d), 0);
    ck_assert_uint_eq(o.workers, 2);
    ck_assert_int_eq(o.log_level, SF_LOG_DEBUG);
    ck_assert_str_eq(o.origin[SF_OPT_WORKERS], "t.yaml:2");
    sf_options_dispose(&o);
    free_all(m, &d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Documents and YAML                                                         */

START_TEST(test_document_shapes)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "# only a comment\n"
                 "---\n"
                 "---\n"
                 "- a list\n"
                 "---\n"
                 "spec: {}\n"
                 "---\n"
                 "version: \"3.0\"\n"
                 "module:\n"
                 "  meta: {type: remote}\n"
                 "---\n"
                 "kind: IO.statefun.endpoints.v2/HTTP\n"
                 "spec: {}\n"
                 "---\n"
                 "kind: [a]\n"
                 "spec: {}\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/ingress\n"
                 "spec: {}\n"
                 "meta: {}\n"
                 "---\n"
                 "kind: io.statefun.playground.v1/ingress\n"
                 "kind: io.statefun.playground.v1/egress\n"
                 "spec: {port: 1, port: 2}\n");
    EXPECT_ERR(&d, 4, "a module document must be a mapping with 'kind' and 'spec', got a list");
    EXPECT_ERR(&d, 6, "document has no 'kind'");
    EXPECT_WARN(&d, 8, "the StateFun 3.0 module format (version:/module:) is deprecated");
    EXPECT_ERR(&d, 10, "'module.spec' must be a mapping");
    EXPECT_ERR(&d, 12,
               "unknown kind 'IO.statefun.endpoints.v2/HTTP' (did you mean "
               "'io.statefun.endpoints.v2/http'?)");
    EXPECT_ERR(&d, 15, "'kind' must be a string, got a list");
    EXPECT_ERR(&d, 20, "unknown top-level field 'meta'");
    EXPECT_ERR(&d, 23, "duplicate key 'kind' (first at line 22)");
    EXPECT_ERR(&d, 24, "duplicate key 'port' (first at line 24)");
    EXPECT_ERR(&d, 22,
               "only one io.statefun.playground.v1/ingress is allowed (first at "
               "t.yaml:18)");
    EXPECT_NERRORS(&d, 9);
    free_all(m, &d);

    /* Nothing at all, or only comments: valid, and empty. */
    m = load(&d, "");
    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->ndocuments, 0);
    free_all(m, &d);
    m = load(&d, "# nothing\n---\n# still nothing\n");
    EXPECT_CLEAN(&d);
    ck_assert_uint_eq(m->ndocuments, 0);
    free_all(m, &d);
}
END_TEST

START_TEST(test_yaml_syntax_errors)
{
    sf_diags_t d;
    sf_module_t *m;

    m = load(&d, "kind: io.statefun.playground.v1/ingress\n"
                 "spec:\n"
                 "\tport: 8090\n");
    EXPECT_ERR(&d, 3, "YAML syntax error: found character that cannot start any token");
    EXPECT_NERRORS(&d, 1);
    free_all(m, &d);

    m = load(&d, "kind: io.statefun.playground.v1/ingress\n"
                 "spec:\n"
                 "  port: 8090\n"
                 " bad: indentation\n");
    EXPECT_NERRORS(&d, 1);
    ck_assert_str_eq(d.items[0].source, "t.yaml");
    ck_assert_int_eq(d.items[0].line, 4);
    ck_assert_ptr_nonnull(strstr(d.items[0].msg, "YAML syntax error"));
    free_all(m, &d);

    /* Aliases are followed; an undefined one is an error with its line. */
    m = load(&d, "kind: io.statefun.playground.v1/egress\n"
                 "spec:\n"
                 "  topics: &t [a, b]\n"
                 "---\n"
                 "x: *nope\n");
    EXPECT_ERR(&d, 5, "YAML syntax error");
    free_all(m, &d);

    /* Invalid UTF-8 is reported by the reader. */
    m = load(&d, "kind: io.statefun.playground.v1/ingress\nspec: {host: \"\xff\xfe\"}\n");
    EXPECT_NERRORS(&d, 1);
    ck_assert_ptr_nonnull(strstr(d.items[0].msg, "YAML"));
    free_all(m, &d);
}
END_TEST

START_TEST(test_duplicate_patterns_across_files)
{
    sf_module_t *m = sf_module_new();
    sf_diags_t d;
    const char *a = "kind: io.statefun.endpoints.v2/http\n"
                    "spec: {functions: shop/*, urlPathTemplate: 'http://a/'}\n"
                    "---\n"
                    "kind: io.statefun.endpoints.v2/http\n"
                    "spec: {functions: shop/cart, urlPathTemplate: 'http://b/'}\n";
    const char *b = "\n"
                    "kind: io.statefun.endpoints.v1/http\n"
                    "spec:\n"
                    "  functions: shop/*\n"
                    "  urlPathTemplate: http://c/\n"
                    "---\n"
                    "kind: statefun.c.v1/embedded\n"
                    "spec:\n"
                    "  library: /bin/sh\n"
                    "  functions: [shop/cart, other/*]\n";

    sf_diags_init(&d);
    sf_module_add_string(m, "a.yaml", NULL, a, strlen(a), &d);
    sf_module_add_string(m, "b.yaml", NULL, b, strlen(b), &d);
    ck_assert_int_eq(sf_module_finish(m, &d), SF_EINVAL);
    EXPECT_ERR_IN(&d, "b.yaml", 4,
                  "functions 'shop/*' are already served by an endpoint at "
                  "a.yaml:2");
    EXPECT_ERR_IN(&d, "b.yaml", 10,
                  "functions 'shop/cart' are already served by an endpoint at "
                  "a.yaml:5");
    EXPECT_NERRORS(&d, 2);
    free_all(m, &d);
}
END_TEST

START_TEST(test_legacy_format_file)
{
    const char *names[] = {"legacy-3.0.yaml"};
    char *paths[1];
    sf_diags_t d;
    sf_module_t *m = load_files(&d, names, 1, paths);
    const sf_endpoint_spec_t *e;

    EXPECT_WARN_IN(&d, paths[0], 3, "deprecated");
    EXPECT_ERR_IN(&d, paths[0], 20, "kind 'io.statefun.kafka/ingress' is not yet supported");
    EXPECT_ERR_IN(&d, paths[0], 33, "kind 'io.statefun.kafka/egress' is not yet supported");
    EXPECT_NERRORS(&d, 2);
    ck_assert_uint_eq(m->nendpoints, 1);
    e = &m->endpoints[0];
    ck_assert_int_eq(e->version, 1);
    ck_assert_int_eq(e->loc.line, 11); /* the meta.kind line */
    ck_assert_str_eq(e->functions.ns, "legacy.fns");
    ck_assert_uint_eq(e->call_timeout_ms, 120000);
    free(paths[0]);
    free_all(m, &d);
}
END_TEST

START_TEST(test_legacy_format_inline)
{
    sf_diags_t d;
    sf_module_t *m;

    /* 3.1: the same shape, endpoints with a v2 transport; playground kinds work too. */
    m = load(&d, "version: '3.1'\n"
                 "module:\n"
                 "  meta: {type: remote}\n"
                 "  spec:\n"
                 "    endpoints:\n"
                 "      - endpoint:\n"
                 "          meta: {kind: http}\n"
                 "          spec:\n"
                 "            functions: a/*\n"
                 "            urlPathTemplate: http://h/\n"
                 "            transport: {timeouts: {call: 10s}}\n"
                 "    ingresses:\n"
                 "      - ingress:\n"
                 "          meta: {type: io.statefun.playground.v1/ingress, id: x/y}\n"
                 "          spec: {port: 9000}\n");
    ck_assert_uint_eq(d.nerrors, 0);
    ck_assert_uint_eq(m->nendpoints, 1);
    ck_assert_int_eq(m->endpoints[0].version, 2);
    ck_assert_uint_eq(m->endpoints[0].call_timeout_ms, 10000);
    ck_assert_uint_eq(m->ingress->port, 9000);
    free_all(m, &d);

    /* Older formats and malformed items. */
    m = load(&d, "version: \"2.0\"\n"
                 "module: {meta: {type: remote}, spec: {functions: []}}\n"
                 "---\n"
                 "version: \"3.0\"\n"
                 "module:\n"
                 "  meta: {type: embedded}\n"
                 "  spec: {}\n"
                 "---\n"
                 "version: \"3.0\"\n"
                 "module:\n"
                 "  spec:\n"
                 "    routers: []\n"
                 "    endpoints:\n"
                 "      - function: {}\n"
                 "      - endpoint: {meta: {}}\n"
                 "      - endpoint:\n"
                 "          meta: {kind: grpc}\n"
                 "          spec: {}\n"
                 "    egresses: {a: b}\n");
    EXPECT_ERR(&d, 1, "module format version '2.0' is not supported");
    EXPECT_ERR(&d, 6, "module.meta.type must be 'remote'");
    EXPECT_ERR(&d, 12, "unknown field 'routers' in 'module.spec'");
    EXPECT_ERR(&d, 14, "each item of 'endpoints' must be 'endpoint: {meta: ..., spec: ...}'");
    EXPECT_ERR(&d, 15, "'endpoint' has no meta.kind");
    EXPECT_ERR(&d, 17, "unknown kind 'grpc'");
    EXPECT_ERR(&d, 19, "'egresses' must be a list, got a mapping");
    EXPECT_NERRORS(&d, 7);
    free_all(m, &d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Lookup and summary                                                         */

START_TEST(test_lookup_most_specific)
{
    sf_diags_t d;
    sf_module_t *m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                              "spec: {functions: shop/*, urlPathTemplate: 'http://all/'}\n"
                              "---\n"
                              "kind: io.statefun.endpoints.v2/http\n"
                              "spec: {functions: shop/cart, urlPathTemplate: 'http://cart/'}\n"
                              "---\n"
                              "kind: io.statefun.endpoints.v2/http\n"
                              "spec: {functions: pay/charge, urlPathTemplate: 'http://pay/'}\n"
                              "---\n"
                              "kind: statefun.c.v1/embedded\n"
                              "spec: {library: /bin/sh, functions: [pay/*, shop/stock, inv/*]}\n");
    sf_fn_binding_t b;

    EXPECT_CLEAN(&d);
    /* Exact over namespace, among endpoints. */
    ck_assert_int_eq(sf_module_find_function(m, "shop", "cart", &b), 0);
    ck_assert_ptr_eq(b.endpoint, &m->endpoints[1]);
    ck_assert_ptr_null(b.embedded);
    ck_assert_int_eq(sf_module_find_function(m, "shop", "basket", &b), 0);
    ck_assert_ptr_eq(b.endpoint, &m->endpoints[0]);
    /* Exact embedded over an endpoint's namespace. */
    ck_assert_int_eq(sf_module_find_function(m, "shop", "stock", &b), 0);
    ck_assert_ptr_eq(b.embedded, &m->embedded[0]);
    ck_assert_ptr_null(b.endpoint);
    ck_assert_ptr_eq(sf_module_find_endpoint(m, "shop", "stock"), &m->endpoints[0]);
    /* Exact endpoint over an embedded namespace. */
    ck_assert_int_eq(sf_module_find_function(m, "pay", "charge", &b), 0);
    ck_assert_ptr_eq(b.endpoint, &m->endpoints[2]);
    ck_assert_int_eq(sf_module_find_function(m, "pay", "refund", &b), 0);
    ck_assert_ptr_eq(b.embedded, &m->embedded[0]);
    ck_assert_ptr_eq(sf_module_find_embedded(m, "inv", "x"), &m->embedded[0]);
    ck_assert_ptr_null(sf_module_find_embedded(m, "shop", "cart"));
    /* No match: namespaces are whole names, not prefixes. */
    ck_assert_int_eq(sf_module_find_function(m, "sho", "cart", &b), SF_ENOTFOUND);
    ck_assert_int_eq(sf_module_find_function(m, "shop.x", "cart", &b), SF_ENOTFOUND);
    ck_assert_int_eq(sf_module_find_function(m, "nobody", "x", &b), SF_ENOTFOUND);
    ck_assert_ptr_null(b.endpoint);
    ck_assert_ptr_null(b.embedded);
    ck_assert_ptr_null(sf_module_find_endpoint(m, "inv", "x"));
    free_all(m, &d);
}
END_TEST

START_TEST(test_url_for_and_summary)
{
    sf_diags_t d;
    sf_module_t *m = load(&d, "kind: io.statefun.endpoints.v2/http\n"
                              "spec:\n"
                              "  functions: a/*\n"
                              "  urlPathTemplate: http://h/{function.name}/x/{function.name}\n"
                              "---\n"
                              "runtime: {workers: 1}\n");
    char *url, buf[256];

    EXPECT_CLEAN(&d);
    url = sf_endpoint_url_for(&m->endpoints[0], "greeter");
    ck_assert_str_eq(url, "http://h/greeter/x/greeter");
    free(url);
    ck_assert_str_eq(sf_fn_pattern_format(&m->endpoints[0].functions, buf, sizeof buf), "a/*");
    ck_assert_str_eq(sf_module_summary(m, buf, sizeof buf),
                     "1 file, 2 documents: 1 endpoint, 0 embedded modules, no ingress, "
                     "no egress, 1 runtime option");
    free_all(m, &d);
}
END_TEST

Suite *sf_runtime_module_suite(void)
{
    Suite *s = suite_create("runtime_module");
    TCase *tc = tcase_create("module");

    tcase_add_test(tc, test_playground_greeter);
    tcase_add_test(tc, test_statefun_forms);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_kafka_not_yet_supported);
    tcase_add_test(tc, test_errors_file_and_syntax_all_reported);
    tcase_add_test(tc, test_endpoint_minimal_defaults);
    tcase_add_test(tc, test_endpoint_timeouts);
    tcase_add_test(tc, test_endpoint_transport_fields);
    tcase_add_test(tc, test_endpoint_version_specific_fields);
    tcase_add_test(tc, test_endpoint_urls_and_protocol);
    tcase_add_test(tc, test_endpoint_tls_files);
    tcase_add_test(tc, test_endpoint_types_and_required);
    tcase_add_test(tc, test_function_patterns);
    tcase_add_test(tc, test_ignored_real_fields_warn);
    tcase_add_test(tc, test_playground_io);
    tcase_add_test(tc, test_only_one_ingress_egress_and_ports);
    tcase_add_test(tc, test_embedded);
    tcase_add_test(tc, test_runtime_sections);
    tcase_add_test(tc, test_runtime_settings_resolve_with_options);
    tcase_add_test(tc, test_document_shapes);
    tcase_add_test(tc, test_yaml_syntax_errors);
    tcase_add_test(tc, test_duplicate_patterns_across_files);
    tcase_add_test(tc, test_legacy_format_file);
    tcase_add_test(tc, test_legacy_format_inline);
    tcase_add_test(tc, test_lookup_most_specific);
    tcase_add_test(tc, test_url_for_and_summary);
    suite_add_tcase(s, tc);
    return s;
}
