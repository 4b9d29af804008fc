/* statefun-c: Apache License 2.0.
 *
 * The playground egress (see egress.h): the mailbox that brings records from
 * the workers, record parsing (jansson), the topics, and the GET handlers
 * with their long polls. Runs on the I/O thread; only sf_egress_push runs
 * anywhere.
 *
 * A long poll is a waiter linked in its topic's FIFO with its own timer. It
 * ends exactly once: answered by a record, by its timer, or by the close; it
 * is unlinked then and freed in its timer's close callback.
 */
#include "egress.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "log.h"
#include "text.h"
#include "xalloc.h"

#define MAX_DRAIN_ROUNDS 8

struct sf_egress_waiter_s {
    sf_egress_waiter_t *prev, *next;
    sf_egress_t *eg;
    sf_egress_topic_t *topic;
    sf_http_request_t *req;
    uv_timer_t timer;
    bool read;     /* a read without consuming (else a pop) */
    uint64_t from; /* first offset of a read */
    uint64_t max;  /* lines of a read */
};

static const sf_http_header_t allow_get = {"allow", 5, "GET", 3};
static const sf_http_header_t ct_text = {"content-type", 12, "text/plain; charset=utf-8", 25};
static const sf_http_header_t ct_ndjson = {"content-type", 12, "application/x-ndjson", 20};

/* ------------------------------------------------------------------------ */
/* Pure parsers                                                               */

int sf_egress_record_parse(const uint8_t *value, size_t len, sf_egress_record_t *out, char *why,
                           size_t whylen)
{
    json_error_t err;
    json_t *root, *topic, *payload;

    memset(out, 0, sizeof(*out));
    root = json_loadb((const char *)value, len, JSON_ALLOW_NUL, &err);
    if (!root) {
        snprintf(why, whylen, "not JSON: %s at line %d column %d", err.text, err.line,
                 err.column);
        return SF_EINVAL;
    }
    if (!json_is_object(root)) {
        snprintf(why, whylen, "not a JSON object");
        goto fail;
    }
    topic = json_object_get(root, "topic");
    if (!json_is_string(topic)) {
        snprintf(why, whylen, "no string field \"topic\"");
        goto fail;
    }
    payload = json_object_get(root, "payload");
    if (!payload) {
        snprintf(why, whylen, "no field \"payload\"");
        goto fail;
    }
    out->_json = root;
    out->topic = json_string_value(topic);
    out->topic_len = json_string_length(topic);
    if (json_is_string(payload)) {
        out->payload = json_string_value(payload);
        out->payload_len = json_string_length(payload);
    } else {
        out->_text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!out->_text)
            sf__panic(__FILE__, __LINE__, "out of memory");
        out->payload = out->_text;
        out->payload_len = strlen(out->_text);
    }
    return 0;
fail:
    json_decref(root);
    return SF_EINVAL;
}

void sf_egress_record_dispose(sf_egress_record_t *r)
{
    if (r->_json)
        json_decref(r->_json);
    free(r->_text);
    memset(r, 0, sizeof(*r));
}

/* A decimal uint64 without sign or spaces. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    if (len == 0 || len > 20)
        return SF_EINVAL;
    for (i = 0; i < len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return SF_EINVAL;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SF_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sf_egress_parse_target(const char *path, char *buf, sf_egress_query_t *q, char *why,
                           size_t whylen)
{
    size_t plen = strcspn(path, "?#");
    const char *pos, *end, *key, *val;
    size_t klen, vlen;
    ssize_t n;

    memset(q, 0, sizeof(*q));
    q->max = SF_IO_DEFAULT_READ_MAX;
    if (plen == 0 || path[0] != '/') {
        snprintf(why, whylen, "the path must be /{topic}");
        return SF_EINVAL;
    }
    n = sf_text_pct_decode(path + 1, plen - 1, buf);
    if (n < 0) {
        snprintf(why, whylen, "malformed %%-escape in the path");
        return SF_EINVAL;
    }
    buf[n] = '\0';
    q->topic = buf;
    q->topic_len = (size_t)n;
    if (path[plen] != '?')
        return 0;
    pos = path + plen + 1;
    end = pos + strcspn(pos, "#");
    while (sf_text_query_next(&pos, end, &key, &klen, &val, &vlen)) {
        char v[64];
        ssize_t vn;
        bool is_wait = klen == 4 && memcmp(key, "wait", 4) == 0;
        bool is_from = klen == 4 && memcmp(key, "from", 4) == 0;
        bool is_max = klen == 3 && memcmp(key, "max", 3) == 0;
        if (!is_wait && !is_from && !is_max)
            continue; /* unknown parameters are ignored */
        if (vlen >= sizeof(v) || (vn = sf_text_pct_decode(val, vlen, v)) < 0) {
            snprintf(why, whylen, "malformed value of %.*s", (int)klen, key);
            return SF_EINVAL;
        }
        v[vn] = '\0';
        /* '+' means a space in a query ("wait=10+sec"). */
        for (ssize_t i = 0; i < vn; i++)
            if (v[i] == '+')
                v[i] = ' ';
        if (is_wait) {
            char err[96];
            if (sf_duration_parse(v, &q->wait_ms, err, sizeof(err)) < 0) {
                snprintf(why, whylen, "wait: %s", err);
                return SF_EINVAL;
            }
            if (q->wait_ms > SF_IO_MAX_WAIT_MS) {
                snprintf(why, whylen, "wait: at most %u seconds", SF_IO_MAX_WAIT_MS / 1000);
                return SF_EINVAL;
            }
        } else if (is_from) {
            if (parse_u64(v, (size_t)vn, &q->from) < 0) {
                snprintf(why, whylen, "from: expected an offset (a non-negative integer)");
                return SF_EINVAL;
            }
            q->has_from = true;
            q->read = true;
        } else {
            if (parse_u64(v, (size_t)vn, &q->max) < 0 || q->max == 0 ||
                q->max > SF_IO_MAX_READ_MAX) {
                snprintf(why, whylen, "max: expected an integer from 1 to %u",
                         SF_IO_MAX_READ_MAX);
                return SF_EINVAL;
            }
            q->read = true;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                    */

static sf_egress_topic_t *find_topic(sf_egress_t *eg, const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < eg->ntopics; i++) {
        const char *n = eg->topics[i].log.name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return &eg->topics[i];
    }
    return NULL;
}

/* The first offset a read from |from| sees. */
static uint64_t read_start(const sf_topic_t *t, uint64_t from)
{
    return from < t->base ? t->base : from;
}

/* Appends one NDJSON line {"offset": N, "payload": "..."}. */
static void append_line(sf_buf_t *out, uint64_t offset, const sf_topic_rec_t *r)
{
    json_t *s = json_stringn_nocheck(r->data, r->len);
    char *text;
    if (!s)
        sf__panic(__FILE__, __LINE__, "out of memory");
    text = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    if (!text || sf_buf_appendf(out, "{\"offset\": %llu, \"payload\": %s}\n",
                                (unsigned long long)offset, text) < 0)
        sf__panic(__FILE__, __LINE__, "out of memory");
    free(text);
}

/*
 * Answers |req| from |t| if there is something to answer with: a pop takes
 * the next unread record; a read needs one visible record at or after
 * |from|. Returns false (|req| untouched) when it has to wait.
 */
static bool try_answer(sf_egress_t *eg, sf_egress_topic_t *t, sf_http_request_t *req, bool read,
                       uint64_t from, uint64_t max)
{
    sf_topic_t *log = &t->log;
    if (!read) {
        uint64_t off;
        const sf_topic_rec_t *r = sf_topic_pop(log, &off);
        char offs[24];
        sf_http_header_t h[2] = {ct_text, {"x-statefun-offset", 17, offs, 0}};
        if (!r)
            return false;
        h[1].valuelen = (size_t)snprintf(offs, sizeof(offs), "%llu", (unsigned long long)off);
        sf_http_respond(req, 200, h, 2, r->data, r->len);
        sf__io_count(eg->ctr, SF__IO_EG_OUT, 1);
        return true;
    } else {
        uint64_t o = read_start(log, from), stop;
        if (o >= log->visible)
            return false;
        stop = log->visible - o > max ? o + max : log->visible;
        sf_buf_reset(&eg->out);
        for (; o < stop; o++)
            append_line(&eg->out, o, sf_topic_get(log, o));
        sf_http_respond(req, 200, &ct_ndjson, 1, eg->out.base, eg->out.len);
        return true;
    }
}

static void on_waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Unlinks |w| and frees it once its timer is closed; |w->req| is answered. */
static void waiter_end(sf_egress_waiter_t *w)
{
    sf_egress_topic_t *t = w->topic;
    if (w->prev)
        w->prev->next = w->next;
    else
        t->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        t->wait_tail = w->prev;
    w->req = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_waiter_closed);
}

static void on_wait_timeout(uv_timer_t *h)
{
    sf_egress_waiter_t *w = h->data;
    if (w->read)
        sf_http_respond(w->req, 200, &ct_ndjson, 1, NULL, 0);
    else
        sf__io_reply(w->req, 404, NULL, 0, "no record arrived in topic %s in time",
                     w->topic->log.name);
    waiter_end(w);
}

static void add_waiter(sf_egress_t *eg, sf_egress_topic_t *t, sf_http_request_t *req, bool read,
                       uint64_t from, uint64_t max, uint64_t wait_ms)
{
    sf_egress_waiter_t *w = sf_xcalloc(1, sizeof(*w));
    w->eg = eg;
    w->topic = t;
    w->req = req;
    w->read = read;
    w->from = from;
    w->max = max;
    uv_timer_init(eg->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_wait_timeout, wait_ms, 0);
    w->prev = t->wait_tail;
    if (t->wait_tail)
        t->wait_tail->next = w;
    else
        t->wait_head = w;
    t->wait_tail = w;
}

/* Serves the waiters of |t| that new records satisfy, in arrival order. */
static void serve_waiters(sf_egress_t *eg, sf_egress_topic_t *t)
{
    sf_egress_waiter_t *w = t->wait_head, *next;
    for (; w; w = next) {
        next = w->next;
        if (try_answer(eg, t, w->req, w->read, w->from, w->max))
            waiter_end(w);
    }
}

static void on_request(sf_http_request_t *req, void *user_data)
{
    sf_egress_t *eg = user_data;
    const char *method = sf_http_request_method(req), *path = sf_http_request_path(req);
    size_t path_len = strlen(path);
    sf_egress_query_t q;
    sf_egress_topic_t *t;
    char why[160];
    int rc;

    if (strcmp(method, "GET") != 0) {
        sf__io_reply(req, 405, &allow_get, 1, "the egress serves GET only, not %.16s", method);
        return;
    }
    if (path_len + 1 > eg->pathcap) {
        eg->pathcap = path_len + 1 > 256 ? path_len + 1 : 256;
        eg->pathbuf = sf_xrealloc(eg->pathbuf, eg->pathcap);
    }
    rc = sf_egress_parse_target(path, eg->pathbuf, &q, why, sizeof(why));
    if (!q.topic) {
        sf__io_reply(req, 400, NULL, 0, "%s", why);
        return;
    }
    t = find_topic(eg, q.topic, q.topic_len);
    if (!t) {
        sf__io_reply(req, 405, NULL, 0, "unknown topic '%.*s' (topics: %s)",
                     (int)(q.topic_len > 100 ? 100 : q.topic_len), q.topic, eg->topic_list);
        return;
    }
    if (rc < 0) {
        sf__io_reply(req, 400, NULL, 0, "%s", why);
        return;
    }
    if (eg->closing) {
        sf__io_reply(req, 503, &sf__io_retry_after, 1, "the runtime is shutting down");
        return;
    }
    if (q.read && !q.has_from)
        q.from = t->log.cursor;
    if (try_answer(eg, t, req, q.read, q.from, q.max))
        return;
    if (q.wait_ms > 0)
        add_waiter(eg, t, req, q.read, q.from, q.max, q.wait_ms);
    else if (q.read)
        sf_http_respond(req, 200, &ct_ndjson, 1, NULL, 0);
    else
        sf__io_reply(req, 404, NULL, 0, "no unread record in topic %s", t->log.name);
}

/* ------------------------------------------------------------------------ */
/* Records from the workers                                                   */

enum { DROP_EGRESS = 0, DROP_INVALID = 1, DROP_TOPIC = 2 };

/* Whether to log the |kind| drop now: the first ten, then every thousandth. */
static bool should_warn(sf_egress_t *eg, int kind)
{
    uint64_t n = ++eg->warned[kind];
    return n <= 10 || n % 1000 == 0;
}

/* Typenames of the marker messages; a marker also carries the I/O object's
 * own egress name as target and the checkpoint id in |seq|. */
#define MARK_BARRIER_TYPE "statefun.c.internal/egress-barrier"
#define MARK_PUBLISH_TYPE "statefun.c.internal/egress-publish"

static bool is_type(const sf_msg_t *m, const char *type_name)
{
    size_t n = strlen(type_name);
    return m->typename_len == n && memcmp(sf_msg_typename(m), type_name, n) == 0;
}

static void handle_barrier(sf_egress_t *eg, uint64_t id)
{
    size_t i;
    for (i = 0; i < eg->ntopics; i++) {
        sf_egress_topic_t *t = &eg->topics[i];
        if (t->nmarks == t->marks_cap) {
            t->marks_cap = t->marks_cap ? t->marks_cap * 2 : 4;
            t->marks = sf_xrealloc(t->marks, t->marks_cap * sizeof(*t->marks));
        }
        t->marks[t->nmarks].id = id;
        t->marks[t->nmarks].end = t->log.end;
        t->nmarks++;
    }
}

static void handle_publish(sf_egress_t *eg, uint64_t id)
{
    size_t i;
    for (i = 0; i < eg->ntopics; i++) {
        sf_egress_topic_t *t = &eg->topics[i];
        size_t k = 0;
        uint64_t visible = t->log.visible;
        while (k < t->nmarks && t->marks[k].id <= id)
            k++;
        if (k == 0)
            continue;
        sf_topic_publish(&t->log, t->marks[k - 1].end);
        memmove(t->marks, t->marks + k, (t->nmarks - k) * sizeof(*t->marks));
        t->nmarks -= k;
        if (t->log.visible != visible)
            t->touched = true;
    }
}

static void handle_record(sf_egress_t *eg, sf_msg_t *m)
{
    const char *target = sf_msg_target(m);
    size_t nlen = strlen(eg->name);
    sf_egress_record_t rec;
    sf_egress_topic_t *t;
    uint64_t dropped, dropped_unread, off;
    char why[160];

    if (m->kind == SF_MSG_EGRESS && m->target_len == nlen && memcmp(target, eg->name, nlen) == 0 &&
        m->value_len == 0 && !m->has_caller) {
        if (is_type(m, MARK_BARRIER_TYPE)) {
            handle_barrier(eg, m->seq);
            return;
        }
        if (is_type(m, MARK_PUBLISH_TYPE)) {
            handle_publish(eg, m->seq);
            return;
        }
    }
    if (m->kind != SF_MSG_EGRESS || m->target_len != nlen || memcmp(target, eg->name, nlen) != 0) {
        sf__io_count(eg->ctr, SF__IO_EG_UNKNOWN_EGRESS, 1);
        if (should_warn(eg, DROP_EGRESS))
            sf_log_warn("egress %s: dropping a message for '%.100s' (%" PRIu64 " so far)",
                        eg->name, target, eg->warned[DROP_EGRESS]);
        return;
    }
    if (sf_egress_record_parse(sf_msg_value(m), m->value_len, &rec, why, sizeof(why)) < 0) {
        sf__io_count(eg->ctr, SF__IO_EG_INVALID, 1);
        if (should_warn(eg, DROP_INVALID))
            sf_log_warn("egress %s: dropping a record of type %.100s that is not JSON "
                        "{\"topic\", \"payload\"}: %s (%" PRIu64 " so far)",
                        eg->name, sf_msg_typename(m), why, eg->warned[DROP_INVALID]);
        return;
    }
    t = find_topic(eg, rec.topic, rec.topic_len);
    if (!t) {
        sf__io_count(eg->ctr, SF__IO_EG_UNKNOWN_TOPIC, 1);
        if (should_warn(eg, DROP_TOPIC))
            sf_log_warn("egress %s: dropping a record for topic '%.*s', which the egress does "
                        "not list (topics: %s; %" PRIu64 " so far)",
                        eg->name, (int)(rec.topic_len > 100 ? 100 : rec.topic_len), rec.topic,
                        eg->topic_list, eg->warned[DROP_TOPIC]);
        sf_egress_record_dispose(&rec);
        return;
    }
    dropped = t->log.dropped;
    dropped_unread = t->log.dropped_unread;
    off = sf_topic_append(&t->log, rec.payload, rec.payload_len);
    if (!eg->hold) {
        sf_topic_publish(&t->log, off + 1);
        t->touched = true;
    }
    sf_egress_record_dispose(&rec);
    sf__io_count(eg->ctr, SF__IO_EG_IN, 1);
    if (t->log.dropped != dropped) {
        sf__io_count(eg->ctr, SF__IO_EG_DROPPED_OVERFLOW, t->log.dropped - dropped);
        sf__io_count(eg->ctr, SF__IO_EG_DROPPED_UNREAD, t->log.dropped_unread - dropped_unread);
    }
}

static void update_retained(sf_egress_t *eg)
{
    uint64_t n = 0;
    size_t i;
    for (i = 0; i < eg->ntopics; i++)
        n += sf_topic_count(&eg->topics[i].log);
    sf__io_set(eg->ctr, SF__IO_EG_RETAINED, n);
}

static void on_more(uv_idle_t *h);

/* Takes what the mailbox holds (re-checking until empty, MACHINE.md), then
 * answers the long polls the new records satisfy. */
static void drain(sf_egress_t *eg)
{
    int rounds;
    size_t i;
    bool any = false;
    for (rounds = 0; rounds < MAX_DRAIN_ROUNDS; rounds++) {
        sf_msg_fifo_t q;
        sf_msg_t *m;
        sf_msg_fifo_init(&q);
        sf_mailbox_drain(&eg->mailbox, &q);
        if (!q.head)
            break;
        any = true;
        while ((m = sf_msg_fifo_pop(&q)) != NULL) {
            handle_record(eg, m);
            sf_msg_free(m);
        }
    }
    if (rounds == MAX_DRAIN_ROUNDS && !eg->closing)
        uv_idle_start(&eg->more, on_more);
    else
        uv_idle_stop(&eg->more);
    if (!any)
        return;
    for (i = 0; i < eg->ntopics; i++) {
        if (eg->topics[i].touched) {
            eg->topics[i].touched = false;
            serve_waiters(eg, &eg->topics[i]);
        }
    }
    update_retained(eg);
}

static void on_more(uv_idle_t *h) { drain(h->data); }

static void on_mail(sf_mailbox_t *mb) { drain(mb->data); }

void sf_egress_push(sf_egress_t *eg, sf_msg_fifo_t *chain)
{
    sf_mailbox_push(&eg->mailbox, chain);
}

void sf_egress_mark(sf_egress_t *eg, sf_egress_mark_kind kind, uint64_t id)
{
    const char *tn = kind == SF_EGRESS_MARK_BARRIER ? MARK_BARRIER_TYPE : MARK_PUBLISH_TYPE;
    sf_msg_init_t init;
    sf_msg_fifo_t chain;
    sf_msg_t *m;
    if (!eg->hold)
        return;
    memset(&init, 0, sizeof(init));
    init.kind = SF_MSG_EGRESS;
    init.target = eg->name;
    init.target_len = strlen(eg->name);
    init.type_name = tn;
    init.type_name_len = strlen(tn);
    SF_ASSERT(sf_msg_new(&init, 1, &m) == 0);
    m->seq = id;
    sf_msg_fifo_init(&chain);
    sf_msg_fifo_push(&chain, m);
    sf_mailbox_push(&eg->mailbox, &chain);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                 */

int sf_egress_init(sf_egress_t *eg, uv_loop_t *loop, const sf_io_egress_config_t *cfg,
                   sf__io_counters_t *ctr)
{
    sf_http_server_config_t sc;
    size_t i, j, list_len = 1;
    int rc;

    memset(eg, 0, sizeof(*eg));
    eg->loop = loop;
    eg->ctr = ctr;
    sf_buf_init(&eg->out, NULL);
    if (cfg->ntopics == 0) {
        sf_log_error("egress: no topics");
        return SF_EINVAL;
    }
    for (i = 0; i < cfg->ntopics; i++) {
        if (!cfg->topics[i] || !cfg->topics[i][0]) {
            sf_log_error("egress: empty topic name");
            return SF_EINVAL;
        }
        for (j = 0; j < i; j++)
            if (strcmp(cfg->topics[i], cfg->topics[j]) == 0) {
                sf_log_error("egress: topic %s listed twice", cfg->topics[i]);
                return SF_EINVAL;
            }
        list_len += strlen(cfg->topics[i]) + 2;
    }
    eg->name = sf_xstrdup(cfg->name ? cfg->name : SF_IO_PLAYGROUND_EGRESS);
    eg->hold = cfg->exactly_once && cfg->hold_for_checkpoints;
    eg->ntopics = cfg->ntopics;
    eg->topics = sf_xcalloc(cfg->ntopics, sizeof(*eg->topics));
    eg->topic_list = sf_xcalloc(1, list_len);
    for (i = 0; i < cfg->ntopics; i++) {
        sf_topic_init(&eg->topics[i].log, cfg->topics[i],
                      cfg->max_records_per_topic ? cfg->max_records_per_topic
                                                 : SF_IO_DEFAULT_TOPIC_RECORDS,
                      cfg->max_bytes_per_topic ? cfg->max_bytes_per_topic
                                               : SF_IO_DEFAULT_TOPIC_BYTES);
        if (i)
            strcat(eg->topic_list, ", ");
        strcat(eg->topic_list, cfg->topics[i]);
    }

    memset(&sc, 0, sizeof(sc));
    sc.host = cfg->host ? cfg->host : "127.0.0.1";
    sc.port = cfg->port;
    rc = sf_http_server_new(loop, &sc, on_request, eg, &eg->server);
    if (rc < 0) {
        sf_log_error("egress %s: cannot listen on %s:%u: %s", eg->name, sc.host,
                     (unsigned)sc.port, sf_strerror(rc));
        eg->server = NULL;
        sf_egress_dispose(eg);
        return rc;
    }
    eg->port = sf_http_server_port(eg->server);
    rc = sf_mailbox_init(loop, &eg->mailbox, on_mail);
    if (rc < 0) {
        /* The caller runs the loop to finish closing the server. */
        sf_http_server_close(eg->server, NULL, NULL);
        eg->server = NULL;
        sf_egress_dispose(eg);
        return rc;
    }
    eg->mailbox.data = eg;
    uv_idle_init(loop, &eg->more);
    eg->more.data = eg;
    eg->handles_open = true;
    return 0;
}

void sf_egress_quiesce(sf_egress_t *eg)
{
    size_t i;
    if (eg->closing)
        return;
    eg->closing = true;
    if (!eg->handles_open)
        return;
    drain(eg);
    for (i = 0; i < eg->ntopics; i++) {
        sf_egress_topic_t *t = &eg->topics[i];
        while (t->wait_head) {
            sf_egress_waiter_t *w = t->wait_head;
            sf__io_reply(w->req, 503, &sf__io_retry_after, 1, "the runtime is shutting down");
            waiter_end(w);
        }
    }
}

void sf_egress_close(sf_egress_t *eg)
{
    sf_egress_quiesce(eg);
    if (eg->handles_open) {
        eg->handles_open = false;
        drain(eg); /* frees what was pushed since (pushes should have stopped) */
        sf_mailbox_close(&eg->mailbox, NULL);
        uv_close((uv_handle_t *)&eg->more, NULL);
    }
    if (eg->server) {
        sf_http_server_close(eg->server, NULL, NULL);
        eg->server = NULL;
    }
}

void sf_egress_dispose(sf_egress_t *eg)
{
    size_t i;
    for (i = 0; i < eg->ntopics; i++) {
        sf_topic_dispose(&eg->topics[i].log);
        free(eg->topics[i].marks);
    }
    free(eg->topics);
    eg->topics = NULL;
    eg->ntopics = 0;
    free(eg->topic_list);
    eg->topic_list = NULL;
    free(eg->name);
    eg->name = NULL;
    free(eg->pathbuf);
    eg->pathbuf = NULL;
    sf_buf_dispose(&eg->out);
}
