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
 *
 * Durable mode (egress.h): two commit objects take turns, one collecting
 * (|open|) while the other is written on libuv's thread pool (|inflight|).
 * A claimed pop keeps a copy of its record, since the topic may drop the
 * record before the commit completes.
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

/* A pop waiting for its cursor to be durable; the record is copied. */
typedef struct pop_s {
    struct pop_s *next;
    sf_http_request_t *req;
    uint64_t offset;
    size_t len;
    char data[];
} pop_t;

struct sf_egress_commit_s {
    uv_work_t work;
    sf_egress_t *eg;
    sf_egress_store_batch_t *batch; /* records, cursor moves, trims */
    pop_t *pops, *pops_tail;        /* answered once the batch is written */
    uint64_t *cursor;               /* [ntopics]: cursor written, or UINT64_MAX */
    uint64_t *trim;                 /* [ntopics]: trimmed below, or UINT64_MAX */
    int status;
};

/* Records the catch-up reads from the store per topic and loop turn. */
#define CATCH_UP_MAX 4096u

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
    n = sf_pct_decode(path + 1, plen - 1, buf);
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
        if (vlen >= sizeof(v) || (vn = sf_pct_decode(val, vlen, v)) < 0) {
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

/*
 * Appends the |len| bytes at |s| (UTF-8: a record's payload came out of a JSON parse or
 * dump) as a JSON string, escaped as jansson's json_dumps escapes one: '"', '\\' and the
 * control characters, nothing else. Written here so that a read builds its lines in
 * |out| without a jansson string and a dump per record.
 */
static void append_json_string(sf_buf_t *out, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, run = 0;
    int rc = sf_buf_append(out, "\"", 1);
    for (i = 0; i < len && rc == 0; i++) {
        uint8_t c = s[i];
        char esc[6] = {'\\', 0};
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = sf_buf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (rc == 0)
            rc = sf_buf_append(out, esc, n);
    }
    if (rc == 0)
        rc = sf_buf_append(out, s + run, len - run);
    if (rc == 0)
        rc = sf_buf_append(out, "\"", 1);
    if (rc < 0)
        sf__panic(__FILE__, __LINE__, "out of memory");
}

/* Appends one NDJSON line {"offset": N, "payload": "..."}. */
static void append_line(sf_buf_t *out, uint64_t offset, const sf_topic_rec_t *r)
{
    if (sf_buf_appendf(out, "{\"offset\": %llu, \"payload\": ", (unsigned long long)offset) < 0)
        sf__panic(__FILE__, __LINE__, "out of memory");
    append_json_string(out, (const uint8_t *)r->data, r->len);
    if (sf_buf_append(out, "}\n", 2) < 0)
        sf__panic(__FILE__, __LINE__, "out of memory");
}

/*
 * Answers |req| from |t| if there is something to answer with: a pop takes
 * the next unread record; a read needs one visible record at or after
 * |from|. Returns false (|req| untouched) when it has to wait.
 */
static void want_commit(sf_egress_t *eg);

/* Durable mode: takes the next unread record for |req|, answered once the
 * moved cursor is written. False when there is none. */
static bool claim_pop(sf_egress_t *eg, sf_egress_topic_t *t, sf_http_request_t *req)
{
    sf_egress_commit_t *c = eg->open;
    uint64_t off;
    const sf_topic_rec_t *r = sf_topic_pop(&t->log, &off);
    pop_t *p;
    if (!r)
        return false;
    p = sf_xmalloc(sizeof(*p) + r->len);
    p->next = NULL;
    p->req = req;
    p->offset = off;
    p->len = r->len;
    memcpy(p->data, r->data, r->len);
    if (c->pops_tail)
        c->pops_tail->next = p;
    else
        c->pops = p;
    c->pops_tail = p;
    want_commit(eg);
    return true;
}

static bool try_answer(sf_egress_t *eg, sf_egress_topic_t *t, sf_http_request_t *req, bool read,
                       uint64_t from, uint64_t max)
{
    sf_topic_t *log = &t->log;
    if (!read && eg->store)
        return claim_pop(eg, t, req);
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
#define MARK_STORED_TYPE "statefun.c.internal/egress-stored"

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

/* Counts what the topic bounds dropped since |dropped|/|dropped_unread|. */
static void count_drops(sf_egress_t *eg, const sf_egress_topic_t *t, uint64_t dropped,
                        uint64_t dropped_unread)
{
    if (t->log.dropped != dropped) {
        sf__io_count(eg->ctr, SF__IO_EG_DROPPED_OVERFLOW, t->log.dropped - dropped);
        sf__io_count(eg->ctr, SF__IO_EG_DROPPED_UNREAD, t->log.dropped_unread - dropped_unread);
    }
}

/* Appends a record to the in-memory topic (visible at once unless held). */
static void mem_append(sf_egress_t *eg, sf_egress_topic_t *t, const void *data, size_t len)
{
    uint64_t dropped = t->log.dropped, dropped_unread = t->log.dropped_unread, off;
    off = sf_topic_append(&t->log, data, len);
    if (!eg->hold) {
        sf_topic_publish(&t->log, off + 1);
        t->touched = true;
    }
    sf__io_count(eg->ctr, SF__IO_EG_IN, 1);
    count_drops(eg, t, dropped, dropped_unread);
}

static void handle_record(sf_egress_t *eg, sf_msg_t *m)
{
    const char *target = sf_msg_target(m);
    size_t nlen = strlen(eg->name);
    sf_egress_record_t rec;
    sf_egress_topic_t *t;
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
        if (is_type(m, MARK_STORED_TYPE)) {
            eg->catch_up = true;
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
    if (eg->store) {
        /* Visible once the commit has written it. */
        sf_egress_store_batch_append(eg->open->batch, t->sid, rec.payload, rec.payload_len);
        want_commit(eg);
    } else {
        mem_append(eg, t, rec.payload, rec.payload_len);
    }
    sf_egress_record_dispose(&rec);
}

static void update_retained(sf_egress_t *eg)
{
    uint64_t n = 0;
    size_t i;
    for (i = 0; i < eg->ntopics; i++)
        n += sf_topic_count(&eg->topics[i].log);
    sf__io_set(eg->ctr, SF__IO_EG_RETAINED, n);
}

/* Answers the long polls of the topics that got visible records. */
static void serve_touched(sf_egress_t *eg)
{
    size_t i;
    for (i = 0; i < eg->ntopics; i++) {
        if (eg->topics[i].touched) {
            eg->topics[i].touched = false;
            serve_waiters(eg, &eg->topics[i]);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Durable mode: catching up with the store                                   */

static void on_more(uv_idle_t *h);

typedef struct catch_up_s {
    sf_egress_t *eg;
    sf_egress_topic_t *t;
} catch_up_t;

static int on_stored_record(uint64_t offset, const void *data, size_t len, void *ud)
{
    catch_up_t *cu = ud;
    sf_topic_t *log = &cu->t->log;
    if (offset < log->end)
        return 0; /* already here */
    if (offset > log->end) {
        uint64_t dropped = log->dropped, dropped_unread = log->dropped_unread;
        sf_topic_skip(log, offset);
        count_drops(cu->eg, cu->t, dropped, dropped_unread);
    }
    mem_append(cu->eg, cu->t, data, len);
    return 0;
}

/* Reads into the topics the records the store has and they have not (those
 * the main thread published), at most CATCH_UP_MAX per topic; leaves
 * |catch_up| set when some are left for the next turn. */
static void catch_up(sf_egress_t *eg)
{
    bool more = false;
    size_t i;
    eg->catch_up = false;
    for (i = 0; i < eg->ntopics; i++) {
        sf_egress_topic_t *t = &eg->topics[i];
        sf_egress_store_info_t info;
        catch_up_t cu = {eg, t};
        uint64_t from;
        sf_egress_store_info(eg->store, t->sid, &info);
        if (info.end <= t->log.end)
            continue;
        /* Records the bounds would drop at once are not read at all. */
        from = t->log.end;
        if (info.end - from > t->log.max_records)
            from = info.end - t->log.max_records;
        if (sf_egress_store_read(eg->store, t->sid, from, CATCH_UP_MAX, on_stored_record, &cu) <
            0) {
            sf_log_error("egress %s: cannot read topic %s from the store", eg->name,
                         t->log.name);
            more = true;
            continue;
        }
        if (t->log.end < info.end)
            more = true;
    }
    eg->catch_up = more;
}

/* ------------------------------------------------------------------------ */
/* Durable mode: group commit                                                 */

static void commit_work(uv_work_t *w)
{
    sf_egress_commit_t *c = sf_container_of(w, sf_egress_commit_t, work);
    c->status = sf_egress_store_commit(c->batch);
}

static void commit_done(uv_work_t *w, int status);

/* Whether the open commit has something to write. */
static bool open_pending(const sf_egress_t *eg)
{
    size_t i;
    if (eg->open->pops || !sf_egress_store_batch_empty(eg->open->batch))
        return true;
    for (i = 0; i < eg->ntopics; i++)
        if (eg->topics[i].log.base > eg->topics[i].trimmed)
            return true;
    return false;
}

/* Hands the open commit to the thread pool, with the cursor moves and trims
 * since the last one, unless a commit is in flight or there is nothing. */
static void submit(sf_egress_t *eg)
{
    sf_egress_commit_t *c = eg->open;
    size_t i;
    int rc;
    if (eg->inflight || !open_pending(eg))
        return;
    for (i = 0; i < eg->ntopics; i++) {
        sf_egress_topic_t *t = &eg->topics[i];
        c->cursor[i] = c->trim[i] = UINT64_MAX;
        if (t->log.cursor != t->sub_cursor) {
            sf_egress_store_batch_cursor(c->batch, t->sid, t->log.cursor);
            c->cursor[i] = t->sub_cursor = t->log.cursor;
        }
        if (t->log.base > t->trimmed) {
            sf_egress_store_batch_trim(c->batch, t->sid, t->log.base);
            c->trim[i] = t->trimmed = t->log.base;
        }
    }
    eg->inflight = c;
    eg->open = c == &eg->commits[0] ? &eg->commits[1] : &eg->commits[0];
    rc = uv_queue_work(eg->loop, &c->work, commit_work, commit_done);
    SF_ASSERT(rc == 0); /* fails only for a NULL work callback */
}

static void on_commit_check(uv_check_t *h)
{
    sf_egress_t *eg = h->data;
    uv_check_stop(h);
    submit(eg);
}

/* Something joined the open commit: hand it over at the end of this turn. */
static void want_commit(sf_egress_t *eg)
{
    if (eg->handles_open)
        uv_check_start(&eg->commit_check, on_commit_check);
    else
        submit(eg); /* closing: no turn end to wait for */
}

/* Answers and frees the pops of |c|: 200 with the record, or |status|. */
static void answer_pops(sf_egress_t *eg, sf_egress_commit_t *c, int status)
{
    pop_t *p, *next;
    for (p = c->pops; p; p = next) {
        next = p->next;
        if (status == 200) {
            char offs[24];
            sf_http_header_t h[2] = {ct_text, {"x-statefun-offset", 17, offs, 0}};
            h[1].valuelen =
                (size_t)snprintf(offs, sizeof(offs), "%llu", (unsigned long long)p->offset);
            sf_http_respond(p->req, 200, h, 2, p->data, p->len);
            sf__io_count(eg->ctr, SF__IO_EG_OUT, 1);
        } else {
            sf__io_reply(p->req, 503, &sf__io_retry_after, 1,
                         "the egress store could not record the read");
        }
        free(p);
    }
    c->pops = c->pops_tail = NULL;
}

static void commit_done(uv_work_t *w, int status)
{
    sf_egress_commit_t *c = sf_container_of(w, sf_egress_commit_t, work);
    sf_egress_t *eg = c->eg;
    size_t i, n = sf_egress_store_batch_count(c->batch);
    (void)status; /* never canceled: uv_cancel is not used */
    eg->inflight = NULL;
    if (c->status == 0) {
        for (i = 0; i < n; i++) {
            uint32_t sid;
            uint64_t off;
            const void *data;
            size_t len, k;
            sf_egress_store_batch_rec(c->batch, i, &sid, &off, &data, &len);
            for (k = 0; k < eg->ntopics && eg->topics[k].sid != sid; k++)
                ;
            SF_ASSERT(k < eg->ntopics);
            if (off == eg->topics[k].log.end)
                mem_append(eg, &eg->topics[k], data, len);
            else if (off > eg->topics[k].log.end)
                eg->catch_up = true; /* published records came first: read them */
        }
        for (i = 0; i < eg->ntopics; i++)
            if (c->cursor[i] != UINT64_MAX)
                eg->topics[i].durable_cursor = c->cursor[i];
        answer_pops(eg, c, 200);
    } else {
        if (n)
            sf_log_error("egress %s: %zu at-least-once records lost: the egress store could "
                         "not write them",
                         eg->name, n);
        /* The claimed records were not durably read: they are served again. */
        answer_pops(eg, c, 503);
        answer_pops(eg, eg->open, 503);
        for (i = 0; i < eg->ntopics; i++) {
            sf_egress_topic_t *t = &eg->topics[i];
            sf_egress_store_info_t info;
            sf_topic_set_cursor(&t->log, t->durable_cursor);
            t->sub_cursor = t->durable_cursor;
            sf_egress_store_info(eg->store, t->sid, &info);
            t->trimmed = info.base; /* the next commit trims again */
        }
    }
    sf_egress_store_batch_clear(c->batch);
    if (eg->catch_up)
        catch_up(eg);
    if (eg->catch_up && eg->handles_open && !eg->closing)
        uv_idle_start(&eg->more, on_more);
    serve_touched(eg);
    update_retained(eg);
    submit(eg); /* what gathered meanwhile */
}

/* ------------------------------------------------------------------------ */

/* Takes what the mailbox holds (re-checking until empty, MACHINE.md), then
 * answers the long polls the new records satisfy. */
static void drain(sf_egress_t *eg)
{
    int rounds;
    bool again;
    for (rounds = 0; rounds < MAX_DRAIN_ROUNDS; rounds++) {
        sf_msg_fifo_t q;
        sf_msg_t *m;
        sf_msg_fifo_init(&q);
        sf_mailbox_drain(&eg->mailbox, &q);
        if (!q.head)
            break;
        while ((m = sf_msg_fifo_pop(&q)) != NULL) {
            handle_record(eg, m);
            sf_msg_free(m);
        }
    }
    if (eg->store && eg->catch_up)
        catch_up(eg);
    again = rounds == MAX_DRAIN_ROUNDS || eg->catch_up;
    if (again && !eg->closing && eg->handles_open)
        uv_idle_start(&eg->more, on_more);
    else if (eg->handles_open)
        uv_idle_stop(&eg->more);
    serve_touched(eg);
    update_retained(eg);
    if (eg->store && open_pending(eg))
        want_commit(eg); /* trims of records the bounds dropped */
}

static void on_more(uv_idle_t *h) { drain(h->data); }

static void on_mail(sf_mailbox_t *mb) { drain(mb->data); }

void sf_egress_push(sf_egress_t *eg, sf_msg_fifo_t *chain)
{
    sf_mailbox_push(&eg->mailbox, chain);
}

void sf_egress_mark(sf_egress_t *eg, sf_egress_mark_kind kind, uint64_t id)
{
    const char *tn = kind == SF_EGRESS_MARK_BARRIER   ? MARK_BARRIER_TYPE
                     : kind == SF_EGRESS_MARK_PUBLISH ? MARK_PUBLISH_TYPE
                                                      : MARK_STORED_TYPE;
    sf_msg_init_t init;
    sf_msg_fifo_t chain;
    sf_msg_t *m;
    if (kind == SF_EGRESS_MARK_STORED ? !eg->store : !eg->hold)
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
/* Durable mode: publishing a checkpoint's records (main thread)              */

int sf_egress_publish_durable(sf_egress_t *eg, sf_msg_fifo_t *chain, uint64_t epoch)
{
    size_t nlen = strlen(eg->name);
    sf_egress_store_batch_t *b;
    sf_msg_fifo_t rejected;
    sf_msg_t *m;
    int rv;

    if (!eg->store) {
        sf_egress_push(eg, chain);
        return 0;
    }
    if (epoch <= sf_egress_store_published_epoch(eg->store)) {
        sf_msg_fifo_clear(chain); /* published before a restart */
        return 0;
    }
    /* Only immutable fields of |eg| are read here (names, store indexes). */
    sf_msg_fifo_init(&rejected);
    b = sf_egress_store_batch_new(eg->store);
    while ((m = sf_msg_fifo_pop(chain)) != NULL) {
        sf_egress_record_t rec;
        sf_egress_topic_t *t = NULL;
        char why[160];
        if (m->kind == SF_MSG_EGRESS && m->target_len == nlen &&
            memcmp(sf_msg_target(m), eg->name, nlen) == 0 &&
            sf_egress_record_parse(sf_msg_value(m), m->value_len, &rec, why, sizeof(why)) == 0) {
            t = find_topic(eg, rec.topic, rec.topic_len);
            if (t)
                sf_egress_store_batch_append(b, t->sid, rec.payload, rec.payload_len);
            sf_egress_record_dispose(&rec);
        }
        if (t)
            sf_msg_free(m);
        else
            sf_msg_fifo_push(&rejected, m); /* the I/O thread counts and logs it */
    }
    sf_egress_store_batch_epoch(b, epoch);
    rv = sf_egress_store_commit(b);
    sf_egress_store_batch_free(b);
    if (rv != 0) {
        sf_msg_fifo_clear(&rejected);
        return rv;
    }
    if (rejected.head)
        sf_mailbox_push(&eg->mailbox, &rejected);
    sf_egress_mark(eg, SF_EGRESS_MARK_STORED, epoch);
    return 0;
}

uint64_t sf_egress_published_epoch(sf_egress_t *eg)
{
    return eg->store ? sf_egress_store_published_epoch(eg->store) : 0;
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                 */

static int on_loaded_record(uint64_t offset, const void *data, size_t len, void *ud)
{
    sf_topic_t *log = ud;
    if (offset > log->end)
        sf_topic_skip(log, offset);
    sf_topic_publish(log, sf_topic_append(log, data, len) + 1);
    return 0;
}

/* Opens the store and loads each topic's newest records (within the bounds)
 * and its cursor. */
static int open_store(sf_egress_t *eg, const char *dir)
{
    size_t i;
    int rc = sf_egress_store_open(dir, true, &eg->store);
    if (rc < 0)
        return rc;
    eg->commits = sf_xcalloc(2, sizeof(*eg->commits));
    for (i = 0; i < 2; i++) {
        eg->commits[i].eg = eg;
        eg->commits[i].batch = sf_egress_store_batch_new(eg->store);
        eg->commits[i].cursor = sf_xcalloc(eg->ntopics, sizeof(uint64_t));
        eg->commits[i].trim = sf_xcalloc(eg->ntopics, sizeof(uint64_t));
    }
    eg->open = &eg->commits[0];
    for (i = 0; i < eg->ntopics; i++) {
        sf_egress_topic_t *t = &eg->topics[i];
        sf_egress_store_info_t info;
        uint64_t from;
        int sid = sf_egress_store_topic(eg->store, t->log.name, strlen(t->log.name));
        if (sid < 0) {
            sf_log_error("egress %s: topic name %.100s is too long for the store", eg->name,
                         t->log.name);
            return sid;
        }
        t->sid = (uint32_t)sid;
        sf_egress_store_info(eg->store, t->sid, &info);
        from = info.base;
        if (info.end - from > t->log.max_records)
            from = info.end - t->log.max_records;
        sf_topic_start_at(&t->log, from);
        if (sf_egress_store_read(eg->store, t->sid, from, 0, on_loaded_record, &t->log) < 0)
            return SF_ESTATE;
        if (t->log.end < info.end)
            sf_topic_skip(&t->log, info.end); /* records missing: none left to read */
        sf_topic_set_cursor(&t->log, info.cursor);
        t->durable_cursor = t->sub_cursor = t->log.cursor;
        t->trimmed = info.base;
        if (info.end > 0)
            sf_log_info("egress %s: topic %s: %llu records kept from offset %llu, %llu unread",
                        eg->name, t->log.name, (unsigned long long)sf_topic_count(&t->log),
                        (unsigned long long)t->log.base,
                        (unsigned long long)sf_topic_unread(&t->log));
    }
    return 0;
}

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
    if (cfg->store_dir && cfg->exactly_once && cfg->hold_for_checkpoints) {
        sf_log_error("egress: hold_for_checkpoints does not go with a durable store");
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
    if (cfg->store_dir && (rc = open_store(eg, cfg->store_dir)) < 0) {
        sf_egress_dispose(eg);
        return rc;
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
    uv_check_init(loop, &eg->commit_check);
    eg->commit_check.data = eg;
    eg->handles_open = true;
    if (eg->store && open_pending(eg))
        uv_check_start(&eg->commit_check, on_commit_check); /* trims after loading */
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
        uv_close((uv_handle_t *)&eg->commit_check, NULL);
        if (eg->store)
            submit(eg); /* the loop runs until the last commit is written */
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
    if (eg->commits) {
        for (i = 0; i < 2; i++) {
            SF_ASSERT(eg->commits[i].pops == NULL);
            sf_egress_store_batch_free(eg->commits[i].batch);
            free(eg->commits[i].cursor);
            free(eg->commits[i].trim);
        }
        free(eg->commits);
        eg->commits = NULL;
    }
    sf_egress_store_close(eg->store);
    eg->store = NULL;
}
