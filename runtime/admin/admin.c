/* statefun-c: Apache License 2.0.
 *
 * The admin listener (see admin.h): its thread and loop, the routing of
 * requests, and the three answers (health, Prometheus metrics, the state of
 * one address). Everything but the lifecycle calls runs on the admin thread.
 *
 * Why a thread of its own rather than the I/O thread's loop (io.h offers
 * on_start/on_stop for that):
 *   - /v1/state reads the state backend synchronously, and a RocksDB read
 *     that misses the block cache waits for the disk; on the I/O loop that
 *     wait would delay every ingress acknowledgement and egress read. Here
 *     it delays only the admin request that asked for it.
 *   - The runtime has no I/O thread when the module declares neither an
 *     ingress nor an egress, but health and metrics are wanted all the same.
 *   - Binding on the calling thread in sf_admin_new reports a busy admin
 *     port at start-up, before any worker runs, as sf_io_new does for the
 *     ingress and egress ports.
 * The cost is one mostly idle thread.
 *
 * Metrics (Prometheus text format 0.0.4; counters end in _total):
 *   statefun_function_messages_in_total            counter  per function_type
 *   statefun_function_messages_out_local_total     counter  per function_type
 *   statefun_function_delayed_messages_total       counter  per function_type
 *   statefun_function_egress_records_total         counter  per function_type
 *   statefun_function_invocations_total            counter  per function_type
 *   statefun_function_invocation_failures_total    counter  per function_type
 *   statefun_function_backlog_messages             gauge    per function_type
 *   statefun_function_blocked_addresses            gauge    per function_type
 *   statefun_function_remote_latency_seconds       histogram per remote function_type
 *   statefun_ingress_accepted_total                counter  (with an ingress)
 *   statefun_ingress_rejected_total                counter  per reason (with an ingress)
 *   statefun_egress_records_*                      counters and a gauge (with an egress)
 *   statefun_endpoint_healthy                      gauge    per endpoint
 *   statefun_ingress_to_commit_seconds             histogram (with an ingress: routing to commit)
 *   statefun_checkpoints_total, statefun_checkpoint_failures_total   counters
 *   statefun_checkpoint_last_{pause,duration}_seconds, _last_bytes   gauges
 *   statefun_checkpoint_{pause,duration}_seconds_total               counters
 *   statefun_restore_duration_seconds              gauge    (0 when nothing was restored)
 * Function types appear once a worker has routed a message to them.
 */
#include "admin.h"

#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "ingress.h"
#include "log.h"
#include "message.h"
#include "sf_http.h"
#include "sf_proto.h"
#include "text.h"
#include "xalloc.h"

struct sf_admin_s {
    sf_rt_t *rt;
    uv_loop_t loop;
    uv_async_t stop_async;
    sf_http_server_t *server; /* NULL once closing */
    uv_thread_t thread;
    uint16_t port;
    bool started; /* the thread runs (or ran) */
    bool stopped; /* every handle is closed and the thread joined */
};

static const char text_plain[] = "text/plain; charset=utf-8";
static const char metrics_type[] = "text/plain; version=0.0.4; charset=utf-8";
static const char json_ctype[] = "application/json";

/* ------------------------------------------------------------------------ */
/* Output helpers                                                             */

/* Appends printf output to |out|; a sticky error in |*err| (SF_ENOMEM). */
static void outf(sf_buf_t *out, int *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void outf(sf_buf_t *out, int *err, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*err)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sf_buf_reserve(out, (size_t)n + 1) != 0) {
        *err = SF_ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf((char *)out->base + out->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out->len += (size_t)n;
}

/* Appends |s| as one line's worth of text: control characters become spaces. */
static void out_oneline(sf_buf_t *out, int *err, const char *s)
{
    size_t i, start = out->len, n = strlen(s);
    if (*err)
        return;
    if (sf_buf_append(out, s, n) != 0) {
        *err = SF_ENOMEM;
        return;
    }
    for (i = start; i < out->len; i++)
        if (out->base[i] < 0x20 || out->base[i] == 0x7f)
            out->base[i] = ' ';
}

/* Appends |s| escaped as a Prometheus label value (backslash, quote, newline). */
static void out_label_value(sf_buf_t *out, int *err, const char *s)
{
    for (; *s && !*err; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '"')
            esc = "\\\"";
        else if (*s == '\n')
            esc = "\\n";
        if (sf_buf_append(out, esc ? esc : s, esc ? 2 : 1) != 0)
            *err = SF_ENOMEM;
    }
}

/* The "# HELP" and "# TYPE" lines of a family. */
static void out_family(sf_buf_t *out, int *err, const char *name, const char *type,
                       const char *help)
{
    outf(out, err, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Answers |req| with |status| and a one-line text body. */
static void reply_line(sf_http_request_t *req, int status, const sf_http_header_t *extra,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void reply_line(sf_http_request_t *req, int status, const sf_http_header_t *extra,
                       const char *fmt, ...)
{
    char body[512];
    sf_http_header_t h[2] = {{"content-type", 12, text_plain, sizeof text_plain - 1}};
    va_list ap;
    int n, i;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof body - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof body - 2)
        n = (int)sizeof body - 2;
    /* Whatever came from the request cannot add lines. */
    for (i = 0; i < n; i++)
        if ((unsigned char)body[i] < 0x20 || body[i] == 0x7f)
            body[i] = ' ';
    body[n++] = '\n';
    if (extra)
        h[1] = *extra;
    sf_http_respond(req, status, h, extra ? 2 : 1, body, (size_t)n);
}

static void reply_buf(sf_http_request_t *req, int status, const char *type, const sf_buf_t *b)
{
    sf_http_header_t h = {"content-type", 12, type, strlen(type)};
    sf_http_respond(req, status, &h, 1, b->base, b->len);
}

/* ------------------------------------------------------------------------ */
/* /healthz                                                                   */

/* "ns/name" or "ns/" followed by a star, for messages. */
static void pattern_text(const sf_fn_pattern_t *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", p->ns ? p->ns : "", p->name ? p->name : "*");
}

int sf_admin_render_health(sf_rt_t *rt, sf_buf_t *out)
{
    sf_buf_t reasons;
    size_t i;
    int err = 0, status;

    sf_buf_init(&reasons, NULL);
    for (i = 0; i < rt->mod->nendpoints; i++) {
        const sf_endpoint_spec_t *ep = &rt->mod->endpoints[i];
        uint32_t n = atomic_load(&rt->unhealthy[i]);
        char fns[300];
        if (n == 0)
            continue;
        pattern_text(&ep->functions, fns, sizeof fns);
        outf(&reasons, &err, "endpoint ");
        out_oneline(&reasons, &err, ep->url_template);
        outf(&reasons, &err,
             " unhealthy: no successful call within the call timeout (%llu ms) for functions "
             "%s; retries continue (%u worker%s)\n",
             (unsigned long long)ep->call_timeout_ms, fns, n, n == 1 ? "" : "s");
    }
    if (atomic_load(&rt->stopping))
        outf(&reasons, &err, "the runtime is stopping\n");
    status = reasons.len == 0 && !err ? 200 : 503;
    if (status == 200)
        sf_buf_append(out, "ok\n", 3);
    else if (sf_buf_append(out, "degraded\n", 9) == 0)
        sf_buf_append(out, reasons.base, reasons.len);
    sf_buf_dispose(&reasons);
    return status;
}

/* ------------------------------------------------------------------------ */
/* /metrics                                                                   */

typedef struct fn_family_s {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    int64_t (*get)(const sf_fn_metrics_t *m);
} fn_family_t;

/* Counters are unsigned 64-bit; real ones never come near 2^63. */
static int64_t get_in(const sf_fn_metrics_t *m)
{
    return (int64_t)atomic_load(&m->messages_in);
}
static int64_t get_out(const sf_fn_metrics_t *m)
{
    return (int64_t)atomic_load(&m->out_local);
}
static int64_t get_delayed(const sf_fn_metrics_t *m)
{
    return (int64_t)atomic_load(&m->out_delayed);
}
static int64_t get_egress(const sf_fn_metrics_t *m)
{
    return (int64_t)atomic_load(&m->egress);
}
static int64_t get_inv(const sf_fn_metrics_t *m)
{
    return (int64_t)atomic_load(&m->invocations);
}
static int64_t get_fail(const sf_fn_metrics_t *m)
{
    return (int64_t)atomic_load(&m->failures);
}
static int64_t get_backlog(const sf_fn_metrics_t *m)
{
    return atomic_load(&m->backlog);
}
static int64_t get_blocked(const sf_fn_metrics_t *m)
{
    return atomic_load(&m->blocked);
}

static const fn_family_t fn_families[] = {
    {"statefun_function_messages_in_total", "counter",
     "Messages delivered to functions of the type (in successful invocation batches).", get_in},
    {"statefun_function_messages_out_local_total", "counter",
     "Messages functions of the type sent to function addresses of this runtime.", get_out},
    {"statefun_function_delayed_messages_total", "counter",
     "Delayed messages functions of the type scheduled.", get_delayed},
    {"statefun_function_egress_records_total", "counter",
     "Egress records functions of the type produced.", get_egress},
    {"statefun_function_invocations_total", "counter",
     "Invocation batches of the type that succeeded.", get_inv},
    {"statefun_function_invocation_failures_total", "counter",
     "Failed invocation attempts of the type (remote: error status, timeout or malformed "
     "reply; embedded: an error from the function); each is retried.",
     get_fail},
    {"statefun_function_backlog_messages", "gauge",
     "Messages of the type waiting in address backlogs behind an invocation in flight.",
     get_backlog},
    {"statefun_function_blocked_addresses", "gauge",
     "Addresses of the type over maxNumBatchRequests backlogged messages (backpressured).",
     get_blocked},
};

/* Whether an endpoint (rather than an embedded module) serves type "ns/type". */
static bool is_remote(const sf_rt_t *rt, const char *name)
{
    char ns[128];
    const char *slash = strchr(name, '/');
    sf_fn_binding_t b;
    if (!slash || (size_t)(slash - name) >= sizeof ns)
        return false;
    memcpy(ns, name, (size_t)(slash - name));
    ns[slash - name] = '\0';
    return sf_module_find_function(rt->mod, ns, slash + 1, &b) == 0 && b.endpoint;
}

/* "function_type=\"ns/type\"" for slot |m|. */
static void out_fn_label(sf_buf_t *out, int *err, const sf_fn_metrics_t *m)
{
    outf(out, err, "function_type=\"");
    out_label_value(out, err, m->name);
    outf(out, err, "\"");
}

static void render_latency(sf_rt_t *rt, uint32_t nfn, sf_buf_t *out, int *err)
{
    static const uint64_t bounds[SF_LATENCY_BUCKETS] = SF_LATENCY_BOUNDS_US;
    static const char name[] = "statefun_function_remote_latency_seconds";
    uint32_t i;
    size_t b;

    if (rt->mod->nendpoints == 0)
        return; /* embedded functions only: no remote calls to measure */
    out_family(out, err, name, "histogram",
               "Round trip of successful remote invocation requests, in seconds.");
    for (i = 0; i < nfn; i++) {
        const sf_fn_metrics_t *m = &rt->fn_metrics[i];
        uint64_t cum = 0;
        if (!is_remote(rt, m->name))
            continue;
        for (b = 0; b < SF_LATENCY_BUCKETS; b++) {
            cum += atomic_load(&m->latency_buckets[b]);
            outf(out, err, "%s_bucket{", name);
            out_fn_label(out, err, m);
            if (bounds[b] == UINT64_MAX)
                outf(out, err, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
            else
                outf(out, err, ",le=\"%g\"} %llu\n", (double)bounds[b] / 1e6,
                     (unsigned long long)cum);
        }
        outf(out, err, "%s_sum{", name);
        out_fn_label(out, err, m);
        outf(out, err, "} %.6f\n", (double)atomic_load(&m->latency_sum_us) / 1e6);
        /* The +Inf bucket, so that _count equals it even while workers add. */
        outf(out, err, "%s_count{", name);
        out_fn_label(out, err, m);
        outf(out, err, "} %llu\n", (unsigned long long)cum);
    }
}

static void render_io(sf_rt_t *rt, sf_buf_t *out, int *err)
{
    sf_io_stats_t st;
    static const struct {
        const char *reason;
        size_t off;
    } rejected[] = {
        {"bad_request", offsetof(sf_io_stats_t, ingress_bad_request)},
        {"not_found", offsetof(sf_io_stats_t, ingress_not_found)},
        {"method_not_allowed", offsetof(sf_io_stats_t, ingress_bad_method)},
        {"unsupported_media_type", offsetof(sf_io_stats_t, ingress_unsupported_type)},
        {"backpressure", offsetof(sf_io_stats_t, ingress_backpressured)},
        {"shutting_down", offsetof(sf_io_stats_t, ingress_shutting_down)},
        {"failed", offsetof(sf_io_stats_t, ingress_failed)},
    };
    static const struct {
        const char *reason;
        size_t off;
    } dropped[] = {
        {"overflow", offsetof(sf_io_stats_t, egress_dropped_overflow)},
        {"invalid", offsetof(sf_io_stats_t, egress_invalid)},
        {"unknown_topic", offsetof(sf_io_stats_t, egress_unknown_topic)},
        {"unknown_egress", offsetof(sf_io_stats_t, egress_unknown_egress)},
    };
    size_t i;

    if (!rt->io)
        return;
    sf_io_stats(rt->io, &st);
#define STAT(off) (*(const uint64_t *)((const char *)&st + (off)))
    if (rt->mod->ingress) {
        out_family(out, err, "statefun_ingress_accepted_total", "counter",
                   "Ingress requests answered 200 (messages durably accepted).");
        outf(out, err, "statefun_ingress_accepted_total %llu\n",
             (unsigned long long)st.ingress_accepted);
        out_family(out, err, "statefun_ingress_parked_total", "counter",
                   "Ingress requests that waited for a backpressured key group (then answered "
                   "200, or 503 after the wait).");
        outf(out, err, "statefun_ingress_parked_total %llu\n",
             (unsigned long long)st.ingress_parked);
        out_family(out, err, "statefun_ingress_rejected_total", "counter",
                   "Ingress requests refused, by reason (413 and 431 are answered by the HTTP "
                   "transport and not counted).");
        for (i = 0; i < SF_ARRAY_SIZE(rejected); i++)
            outf(out, err, "statefun_ingress_rejected_total{reason=\"%s\"} %llu\n",
                 rejected[i].reason, (unsigned long long)STAT(rejected[i].off));
    }
    if (rt->mod->egress) {
        out_family(out, err, "statefun_egress_records_in_total", "counter",
                   "Egress records appended to a topic.");
        outf(out, err, "statefun_egress_records_in_total %llu\n",
             (unsigned long long)st.egress_records_in);
        out_family(out, err, "statefun_egress_records_out_total", "counter",
                   "Egress records consumed by GET /{topic}.");
        outf(out, err, "statefun_egress_records_out_total %llu\n",
             (unsigned long long)st.egress_records_out);
        out_family(out, err, "statefun_egress_records_dropped_total", "counter",
                   "Egress records dropped, by reason (overflow: to keep a topic in bounds).");
        for (i = 0; i < SF_ARRAY_SIZE(dropped); i++)
            outf(out, err, "statefun_egress_records_dropped_total{reason=\"%s\"} %llu\n",
                 dropped[i].reason, (unsigned long long)STAT(dropped[i].off));
        out_family(out, err, "statefun_egress_records_dropped_unread_total", "counter",
                   "Egress records dropped for overflow before anyone read them.");
        outf(out, err, "statefun_egress_records_dropped_unread_total %llu\n",
             (unsigned long long)st.egress_dropped_unread);
        out_family(out, err, "statefun_egress_records_retained", "gauge",
                   "Egress records kept in memory over all topics.");
        outf(out, err, "statefun_egress_records_retained %llu\n",
             (unsigned long long)st.egress_retained);
    }
#undef STAT
}

static void render_endpoints(sf_rt_t *rt, sf_buf_t *out, int *err)
{
    size_t i;
    if (rt->mod->nendpoints == 0)
        return;
    out_family(out, err, "statefun_endpoint_healthy", "gauge",
               "1 while the endpoint is healthy, 0 while some worker saw no successful call "
               "within its call timeout.");
    for (i = 0; i < rt->mod->nendpoints; i++) {
        const sf_endpoint_spec_t *ep = &rt->mod->endpoints[i];
        char fns[300];
        pattern_text(&ep->functions, fns, sizeof fns);
        outf(out, err, "statefun_endpoint_healthy{endpoint=\"");
        out_label_value(out, err, ep->url_template);
        outf(out, err, "\",functions=\"");
        out_label_value(out, err, fns);
        outf(out, err, "\"} %d\n", atomic_load(&rt->unhealthy[i]) == 0 ? 1 : 0);
    }
}

static void render_commit(sf_rt_t *rt, sf_buf_t *out, int *err)
{
    static const uint64_t bounds[SF_COMMIT_BUCKETS] = SF_COMMIT_BOUNDS_US;
    static const char name[] = "statefun_ingress_to_commit_seconds";
    uint64_t cum = 0;
    size_t b;
    out_family(out, err, name, "histogram",
               "time from the ingress routing a message to the commit of the batch that "
               "processed it");
    for (b = 0; b < SF_COMMIT_BUCKETS; b++) {
        cum += atomic_load_explicit(&rt->commit_buckets[b], memory_order_relaxed);
        if (bounds[b] == UINT64_MAX)
            outf(out, err, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        else
            outf(out, err, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b] / 1e6,
                 (unsigned long long)cum);
    }
    outf(out, err, "%s_sum %.6f\n%s_count %llu\n", name,
         atomic_load(&rt->commit_sum_us) / 1e6, name,
         (unsigned long long)atomic_load(&rt->commit_count));
}

static void render_checkpoints(sf_rt_t *rt, sf_buf_t *out, int *err)
{
    out_family(out, err, "statefun_checkpoints_total", "counter", "completed checkpoints");
    outf(out, err, "statefun_checkpoints_total %llu\n",
         (unsigned long long)atomic_load(&rt->checkpoints));
    out_family(out, err, "statefun_checkpoint_failures_total", "counter", "failed checkpoints");
    outf(out, err, "statefun_checkpoint_failures_total %llu\n",
         (unsigned long long)atomic_load(&rt->checkpoint_failures));
    out_family(out, err, "statefun_checkpoint_last_pause_seconds", "gauge",
               "how long the workers stood still for the last checkpoint");
    outf(out, err, "statefun_checkpoint_last_pause_seconds %.6f\n",
         atomic_load(&rt->checkpoint_pause_us) / 1e6);
    out_family(out, err, "statefun_checkpoint_last_commit_hold_seconds", "gauge",
               "after the last checkpoint's pause: how long the workers ran with their "
               "commits held while the store was checkpointed");
    outf(out, err, "statefun_checkpoint_last_commit_hold_seconds %.6f\n",
         atomic_load(&rt->checkpoint_hold_us) / 1e6);
    out_family(out, err, "statefun_checkpoint_last_duration_seconds", "gauge",
               "start to durable MANIFEST of the last checkpoint");
    outf(out, err, "statefun_checkpoint_last_duration_seconds %.6f\n",
         atomic_load(&rt->checkpoint_duration_us) / 1e6);
    out_family(out, err, "statefun_checkpoint_last_bytes", "gauge",
               "size of the files of the last checkpoint");
    outf(out, err, "statefun_checkpoint_last_bytes %llu\n",
         (unsigned long long)atomic_load(&rt->checkpoint_bytes));
    out_family(out, err, "statefun_checkpoint_pause_seconds_total", "counter",
               "pauses of all checkpoints");
    outf(out, err, "statefun_checkpoint_pause_seconds_total %.6f\n",
         atomic_load(&rt->checkpoint_pause_us_sum) / 1e6);
    out_family(out, err, "statefun_checkpoint_duration_seconds_total", "counter",
               "durations of all checkpoints");
    outf(out, err, "statefun_checkpoint_duration_seconds_total %.6f\n",
         atomic_load(&rt->checkpoint_duration_us_sum) / 1e6);
    out_family(out, err, "statefun_restore_duration_seconds", "gauge",
               "how long restoring the last checkpoint took at start (0: nothing restored)");
    outf(out, err, "statefun_restore_duration_seconds %.6f\n",
         atomic_load(&rt->restore_us) / 1e6);
}

int sf_admin_render_metrics(sf_rt_t *rt, sf_buf_t *out)
{
    /* Slots are claimed under a lock and published by the count: every slot
     * below it has its name. */
    uint32_t nfn = atomic_load(&rt->nfn_metrics), i;
    size_t f;
    int err = 0;

    for (f = 0; f < SF_ARRAY_SIZE(fn_families); f++) {
        out_family(out, &err, fn_families[f].name, fn_families[f].type, fn_families[f].help);
        for (i = 0; i < nfn; i++) {
            const sf_fn_metrics_t *m = &rt->fn_metrics[i];
            outf(out, &err, "%s{", fn_families[f].name);
            out_fn_label(out, &err, m);
            outf(out, &err, "} %lld\n", (long long)fn_families[f].get(m));
        }
    }
    render_latency(rt, nfn, out, &err);
    render_io(rt, out, &err);
    render_endpoints(rt, out, &err);
    if (rt->mod && rt->mod->ingress)
        render_commit(rt, out, &err);
    render_checkpoints(rt, out, &err);
    return err;
}

/* ------------------------------------------------------------------------ */
/* /v1/state                                                                  */

typedef struct state_scan_s {
    json_t *states;
    sf_arena_t arena;
    int err; /* SF_ENOMEM, or SF_EPROTO for a name that is not UTF-8 */
    /* the scan, run on the owner (scan_on_owner) */
    sf_rt_t *rt;
    uint16_t kg;
    const sf_addr_t *addr;
    int64_t now;
    int rc;
} state_scan_t;

/* The JSON value of a built-in type's bytes, or NULL (then: base64). */
static json_t *builtin_value(state_scan_t *s, const char *type, const uint8_t *d, size_t len)
{
    static const char p[] = "io.statefun.types/";
    const char *t;

    if (strncmp(type, p, sizeof p - 1) != 0)
        return NULL;
    t = type + sizeof p - 1;
    if (strcmp(t, "bool") == 0) {
        bool v;
        return sf_proto_decode_bool(d, len, &v) == 0 ? json_boolean(v) : NULL;
    } else if (strcmp(t, "int") == 0) {
        int32_t v;
        return sf_proto_decode_int(d, len, &v) == 0 ? json_integer(v) : NULL;
    } else if (strcmp(t, "long") == 0) {
        int64_t v;
        return sf_proto_decode_long(d, len, &v) == 0 ? json_integer(v) : NULL;
    } else if (strcmp(t, "float") == 0) {
        /* JSON has no NaN or infinity: those go as base64. jansson writes
         * reals with 17 significant digits, which read back exactly. */
        float v;
        return sf_proto_decode_float(d, len, &v) == 0 && isfinite(v) ? json_real(v) : NULL;
    } else if (strcmp(t, "double") == 0) {
        double v;
        return sf_proto_decode_double(d, len, &v) == 0 && isfinite(v) ? json_real(v) : NULL;
    } else if (strcmp(t, "string") == 0) {
        char *v;
        size_t vlen;
        json_t *j;
        sf_arena_reset(&s->arena);
        if (sf_proto_decode_string(&s->arena, d, len, &v, &vlen) != 0)
            return NULL;
        j = json_stringn(v, vlen); /* NULL when not UTF-8: base64 then */
        return j;
    }
    return NULL;
}

static json_t *base64_value(const uint8_t *d, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *b = sf_xmalloc(cap);
    json_t *j;
    int n = EVP_EncodeBlock((unsigned char *)b, d, (int)len);
    j = json_stringn(b, (size_t)(n < 0 ? 0 : n));
    free(b);
    return j;
}

static int on_state(const sf_state_entry_t *e, void *ud)
{
    state_scan_t *s = ud;
    json_t *o, *v;
    const char *key;
    int rc = 0;

    if (!sf_text_utf8_valid((const uint8_t *)e->name, e->name_len) ||
        !sf_text_utf8_valid((const uint8_t *)e->value.type_name, strlen(e->value.type_name))) {
        s->err = SF_EPROTO;
        return 1;
    }
    if (!(o = json_object())) {
        s->err = SF_ENOMEM;
        return 1;
    }
    rc |= json_object_set_new(o, "typename", json_string(e->value.type_name));
    if ((v = builtin_value(s, e->value.type_name, e->value.data, e->value.len))) {
        key = "value";
    } else {
        v = base64_value(e->value.data, e->value.len);
        key = "base64";
    }
    rc |= json_object_set_new(o, key, v);
    if (e->value.ttl_mode != SF_STATE_TTL_NONE)
        rc |= json_object_set_new(o, "expires_at_ms", json_integer(e->value.expire_at_ms));
    rc |= json_object_setn_new(s->states, e->name, e->name_len, o);
    if (rc != 0) {
        s->err = SF_ENOMEM;
        return 1;
    }
    return 0;
}

static void scan_on_owner(sf_worker_t *w, void *arg)
{
    state_scan_t *s = arg;
    s->rc = sf_state_scan_address(s->rt->state, sf_dispatch_batch(w), s->kg, s->addr, s->now,
                                  on_state, s);
}

int sf_admin_render_state(sf_rt_t *rt, const char *addr_s, size_t len, sf_buf_t *out)
{
    state_scan_t s = {0};
    sf_addr_t addr;
    json_t *root = NULL;
    char *text = NULL;
    uint16_t kg;
    int rc, err = 0, status = 500;

    if (sf_addr_parse(addr_s, len, &addr) != 0) {
        outf(out, &err, "not an address: namespace/type/id\n");
        return 404;
    }
    kg = sf_key_group(addr_s, len, rt->opts->max_parallelism);
    sf_arena_init(&s.arena, NULL);
    root = json_object();
    s.states = json_object();
    if (!root || !s.states ||
        json_object_set_new(root, "address", json_stringn(addr_s, len)) != 0) {
        json_decref(s.states);
        outf(out, &err, "cannot encode the address as JSON\n");
        goto out;
    }
    /*
     * The scan runs on the worker that owns the key group, between two of its
     * loop callbacks: no commit of that worker is under way, and only its
     * commits write its key groups, so the address is seen as of its last
     * commit, never half of one. (From this thread a read could meet a value
     * RocksDB is overwriting in place: docs/state.md.)
     */
    s.kg = kg;
    s.addr = &addr;
    s.now = sf_wall_ms();
    s.rt = rt;
    rc = sf_worker_call(sf_workers_owner(&rt->workers, kg), scan_on_owner, &s);
    if (rc == 0)
        rc = s.rc;
    if (json_object_set_new(root, "states", s.states) != 0) {
        outf(out, &err, "out of memory\n");
        goto out;
    }
    if (rc < 0) {
        sf_log_warn("admin: reading the state of %.*s failed: %s", (int)len, addr_s,
                    sf_strerror(rc));
        outf(out, &err, "reading the state failed: %s\n", sf_strerror(rc));
        goto out;
    }
    if (s.err) {
        outf(out, &err, "%s\n",
             s.err == SF_EPROTO ? "a state name or typename is not UTF-8" : "out of memory");
        goto out;
    }
    if (json_object_size(s.states) == 0) {
        outf(out, &err, "no state for address ");
        out_oneline(out, &err, addr_s);
        outf(out, &err, "\n");
        status = 404;
        goto out;
    }
    if (!(text = json_dumps(root, JSON_COMPACT))) {
        outf(out, &err, "out of memory\n");
        goto out;
    }
    outf(out, &err, "%s\n", text);
    status = err ? 500 : 200;
out:
    free(text);
    json_decref(root);
    sf_arena_dispose(&s.arena);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                   */

typedef enum { ROUTE_NONE, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_STATE, ROUTE_SAVEPOINT } route_t;

static route_t route_of(const char *path, size_t len)
{
    static const char state[] = "/v1/state";
    if (len == 8 && memcmp(path, "/healthz", 8) == 0)
        return ROUTE_HEALTH;
    if (len == 8 && memcmp(path, "/metrics", 8) == 0)
        return ROUTE_METRICS;
    if (len == 14 && memcmp(path, "/v1/savepoints", 14) == 0)
        return ROUTE_SAVEPOINT;
    if (len >= sizeof state - 1 && memcmp(path, state, sizeof state - 1) == 0 &&
        (len == sizeof state - 1 || path[sizeof state - 1] == '/'))
        return ROUTE_STATE;
    return ROUTE_NONE;
}

static void serve_state(sf_admin_t *a, sf_http_request_t *req, const char *path)
{
    /* The ingress's parser: the same %-decoding and checks as PUT /{ns}/{type}/{id}. */
    const char *rest = path + strlen("/v1/state"), *why = NULL;
    char *addr = sf_xmalloc(strlen(rest) + 1);
    sf_addr_t parsed;
    sf_buf_t b;
    int status;

    if (sf_ingress_parse_path(rest, addr, &parsed, &why) != 0) {
        reply_line(req, 400, NULL, "%s (GET /v1/state/{namespace}/{type}/{id})", why);
        free(addr);
        return;
    }
    sf_buf_init(&b, NULL);
    status = sf_admin_render_state(a->rt, addr, strlen(addr), &b);
    reply_buf(req, status, status == 200 ? json_ctype : text_plain, &b);
    sf_buf_dispose(&b);
    free(addr);
}

/* POST /v1/savepoints with the target directory as the body: takes a
 * savepoint (the admin thread waits for the main thread to finish it). */
static void serve_savepoint(sf_admin_t *a, sf_http_request_t *req)
{
    size_t len;
    const uint8_t *body = sf_http_request_body(req, &len);
    char dir[4096];
    int rv;
    while (len && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' '))
        len--;
    if (len == 0 || len >= sizeof dir || memchr(body, '\0', len)) {
        reply_line(req, 400, NULL, "POST /v1/savepoints takes the savepoint directory as the body");
        return;
    }
    memcpy(dir, body, len);
    dir[len] = '\0';
    rv = sf_rt_savepoint(a->rt, dir);
    if (rv == 0)
        reply_line(req, 200, NULL, "%s", dir);
    else
        reply_line(req, rv == SF_EEXIST ? 409 : 500, NULL, "savepoint to %s failed: %s", dir,
                   sf_strerror(rv));
}

static void on_request(sf_http_request_t *req, void *user_data)
{
    static const sf_http_header_t allow_get = {"allow", 5, "GET", 3};
    sf_admin_t *a = user_data;
    const char *method = sf_http_request_method(req);
    const char *path = sf_http_request_path(req);
    size_t plen = strcspn(path, "?#");
    route_t r = route_of(path, plen);
    sf_buf_t b;
    int status;

    if (r == ROUTE_NONE) {
        reply_line(req, 404, NULL,
                   "no such resource %.*s: the admin API serves GET /healthz, /metrics and "
                   "/v1/state/{namespace}/{type}/{id}",
                   (int)(plen > 200 ? 200 : plen), path);
        return;
    }
    if (r == ROUTE_SAVEPOINT) {
        static const sf_http_header_t allow_post = {"allow", 5, "POST", 4};
        if (strcmp(method, "POST") != 0)
            reply_line(req, 405, &allow_post, "savepoints are taken with POST");
        else
            serve_savepoint(a, req);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        reply_line(req, 405, &allow_get, "the admin API takes GET, not %.16s", method);
        return;
    }
    switch (r) {
    case ROUTE_HEALTH:
        sf_buf_init(&b, NULL);
        status = sf_admin_render_health(a->rt, &b);
        reply_buf(req, status, text_plain, &b);
        sf_buf_dispose(&b);
        break;
    case ROUTE_METRICS:
        sf_buf_init(&b, NULL);
        if (sf_admin_render_metrics(a->rt, &b) != 0)
            reply_line(req, 500, NULL, "out of memory");
        else
            reply_buf(req, 200, metrics_type, &b);
        sf_buf_dispose(&b);
        break;
    default:
        serve_state(a, req, path);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                  */

static void on_stop_async(uv_async_t *h)
{
    sf_admin_t *a = h->data;
    if (a->server) {
        sf_http_server_close(a->server, NULL, NULL);
        a->server = NULL;
    }
    uv_close((uv_handle_t *)&a->stop_async, NULL);
}

static void admin_main(void *arg)
{
    sf_admin_t *a = arg;
    sf_log_set_tag("admin");
    uv_run(&a->loop, UV_RUN_DEFAULT);
}

/* Closes everything on the calling thread (the loop runs nowhere else). */
static void close_here(sf_admin_t *a)
{
    int rc;
    on_stop_async(&a->stop_async);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&a->loop);
    SF_ASSERT(rc == 0);
}

int sf_admin_new(sf_rt_t *rt, const char *host, uint16_t port, sf_admin_t **out)
{
    sf_http_server_config_t sc;
    sf_admin_t *a = sf_xcalloc(1, sizeof *a);
    int rc;

    a->rt = rt;
    if ((rc = uv_loop_init(&a->loop)) < 0) {
        free(a);
        return sf_err_from_uv(rc);
    }
    if ((rc = uv_async_init(&a->loop, &a->stop_async, on_stop_async)) < 0) {
        uv_loop_close(&a->loop);
        free(a);
        return sf_err_from_uv(rc);
    }
    a->stop_async.data = a;
    memset(&sc, 0, sizeof sc);
    sc.host = host;
    sc.port = port;
    sc.max_body_bytes = 64 * 1024; /* GET only: bodies are never read */
    if ((rc = sf_http_server_new(&a->loop, &sc, on_request, a, &a->server)) != 0) {
        sf_log_error("admin: cannot listen on %s:%u: %s", host, (unsigned)port, sf_strerror(rc));
        a->server = NULL;
        close_here(a);
        free(a);
        return rc;
    }
    a->port = sf_http_server_port(a->server);
    *out = a;
    return 0;
}

uint16_t sf_admin_port(const sf_admin_t *admin)
{
    return admin->port;
}

int sf_admin_start(sf_admin_t *admin)
{
    int rc;
    SF_ASSERT(!admin->started && !admin->stopped);
    if ((rc = uv_thread_create(&admin->thread, admin_main, admin)) < 0)
        return sf_err_from_uv(rc);
    admin->started = true;
    return 0;
}

void sf_admin_stop(sf_admin_t *admin)
{
    int rc;
    if (admin->stopped)
        return;
    if (admin->started) {
        atomic_thread_fence(memory_order_seq_cst); /* MACHINE.md: before uv_async_send */
        uv_async_send(&admin->stop_async);
        uv_thread_join(&admin->thread);
        rc = uv_loop_close(&admin->loop);
        SF_ASSERT(rc == 0);
    } else {
        close_here(admin);
    }
    admin->stopped = true;
}

void sf_admin_free(sf_admin_t *admin)
{
    if (!admin)
        return;
    sf_admin_stop(admin);
    free(admin);
}
