/* statefun-c: Apache License 2.0.
 *
 * The playground ingress (see ingress.h): request checks, message building,
 * per-turn batches and their persist -> route -> answer sequence. Runs on the
 * I/O thread.
 *
 * A batch lives from the first request of a loop turn until every request of
 * it is answered. Closed batches wait in a FIFO; only its head may finish, so
 * messages are routed and requests answered in arrival order whatever order
 * the persist hook completes them in.
 *
 * A request whose key group is not accepting is parked: it waits in a FIFO
 * that is retried when a worker says it takes messages again
 * (sf_ingress_room) and by a 1 ms timer while it is not empty (for the wait's
 * end, and key groups that unblock without a wake-up), and joins a batch once its
 * key group accepts again, after every earlier parked request of that key
 * group. A client that pushes harder than the workers go is slowed, not sent
 * to retry: a 503 costs the client, the I/O thread and the retry CPU that the
 * workers need. The wait and the parked requests are bounded (io.h).
 */
#include "ingress.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sf_proto.h"
#include "text.h"
#include "xalloc.h"

struct sf_ingress_batch_s {
    sf_ingress_batch_t *next;  /* the next closed batch */
    sf_ingress_t *ing;
    sf_msg_fifo_t chain;       /* the messages, in arrival order */
    sf_http_request_t **reqs;  /* the requests, same order */
    size_t nreqs, cap;
    bool in_persist;           /* inside the persist hook call */
    bool done;                 /* persisted (or failed): may finish */
    int status;                /* 0 or why it failed */
};

struct sf_ingress_parked_s {
    sf_ingress_parked_t *next;
    sf_http_request_t *req;
    sf_msg_t *m;
    uint64_t since_ms;
};

/* How often the parked requests are retried. */
#define UNPARK_TICK_MS 1

static const sf_http_header_t allow_put_post = {"allow", 5, "PUT, POST", 9};

/* ------------------------------------------------------------------------ */
/* Pure parsers                                                               */

static const char bad_path[] = "the path must be /{namespace}/{type}/{id}";

/* Decodes one path segment to |out|; checks what every part needs. */
static ssize_t decode_part(const char *s, size_t len, char *out, bool is_name, const char **why,
                           const char *what_empty)
{
    ssize_t n = sf_pct_decode(s, len, out);
    ssize_t i;
    if (n < 0) {
        *why = "malformed %-escape in the path";
        return SF_EINVAL;
    }
    if (n == 0) {
        *why = what_empty;
        return SF_EINVAL;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == 0) {
            *why = "the path contains a NUL byte (%00)";
            return SF_EINVAL;
        }
        if (is_name && (c == '/' || c < 0x20 || c == 0x7f)) {
            *why = "namespace and type may not contain '/' (%2F) or control characters";
            return SF_EINVAL;
        }
    }
    if (!sf_text_utf8_valid((const uint8_t *)out, (size_t)n)) {
        *why = "the path is not UTF-8 once %-decoded";
        return SF_EINVAL;
    }
    return n;
}

int sf_ingress_parse_path(const char *path, char *out, sf_addr_t *addr, const char **why)
{
    size_t len = strcspn(path, "?#");
    const char *end = path + len, *p = path + 1, *s1, *s2;
    ssize_t nns, ntype, nid;
    char *o = out;

    if (len == 0 || path[0] != '/') {
        *why = bad_path;
        return SF_EINVAL;
    }
    s1 = memchr(p, '/', (size_t)(end - p));
    s2 = s1 ? memchr(s1 + 1, '/', (size_t)(end - s1 - 1)) : NULL;
    if (!s2) {
        *why = "the path must be /{namespace}/{type}/{id}: a part is missing";
        return SF_EINVAL;
    }
    nns = decode_part(p, (size_t)(s1 - p), o, true, why, "the namespace is empty");
    if (nns < 0)
        return SF_EINVAL;
    o[nns] = '/';
    ntype = decode_part(s1 + 1, (size_t)(s2 - s1 - 1), o + nns + 1, true, why,
                        "the function type is empty");
    if (ntype < 0)
        return SF_EINVAL;
    o[nns + 1 + ntype] = '/';
    nid = decode_part(s2 + 1, (size_t)(end - s2 - 1), o + nns + 1 + ntype + 1, false, why,
                      "the id is empty");
    if (nid < 0)
        return SF_EINVAL;
    o[nns + 1 + ntype + 1 + nid] = '\0';
    addr->ns = o;
    addr->ns_len = (size_t)nns;
    addr->type = o + nns + 1;
    addr->type_len = (size_t)ntype;
    addr->id = o + nns + 1 + ntype + 1;
    addr->id_len = (size_t)nid;
    return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

int sf_ingress_content_type(const char *v, size_t len, const char **type_name,
                            size_t *type_name_len, const char **why)
{
    const char *semi, *tn;
    size_t mlen, tlen;
    if (!v)
        return SF_INGRESS_BODY_STRING;
    while (len > 0 && is_space(*v)) {
        v++;
        len--;
    }
    semi = memchr(v, ';', len);
    mlen = semi ? (size_t)(semi - v) : len;
    while (mlen > 0 && is_space(v[mlen - 1]))
        mlen--;
    if (mlen == 0 || sf_text_ieq(v, mlen, "text/plain") ||
        sf_text_ieq(v, mlen, "application/x-www-form-urlencoded"))
        return SF_INGRESS_BODY_STRING;
    if (mlen >= 16 && strncasecmp(v, "application/vnd.", 16) == 0) {
        const char *slash = NULL, *q;
        tn = v + 16;
        tlen = mlen - 16;
        for (q = tn; q < tn + tlen; q++)
            if (*q == '/')
                slash = q;
        if (!slash || slash == tn || slash == tn + tlen - 1) {
            *why = "the typename in Content-Type: application/vnd.{typename} must look like "
                   "namespace/name";
            return SF_EINVAL;
        }
        *type_name = tn;
        *type_name_len = tlen;
        return SF_INGRESS_BODY_TYPED;
    }
    *why = "unsupported Content-Type: send application/vnd.{typename} for a typed value, or "
           "text/plain for a string";
    return SF_EUNSUPPORTED;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                    */

static void on_flush(uv_check_t *h);
static void on_keep_awake(uv_idle_t *h) { (void)h; }

static void arm(sf_ingress_t *ing)
{
    if (ing->armed)
        return;
    ing->armed = true;
    uv_check_start(&ing->flush, on_flush);
    uv_idle_start(&ing->keep_awake, on_keep_awake);
}

static void disarm(sf_ingress_t *ing)
{
    if (!ing->armed)
        return;
    ing->armed = false;
    uv_check_stop(&ing->flush);
    uv_idle_stop(&ing->keep_awake);
}

static void batch_add(sf_ingress_t *ing, sf_http_request_t *req, sf_msg_t *m)
{
    sf_ingress_batch_t *b = ing->cur;
    if (!b) {
        b = sf_xcalloc(1, sizeof(*b));
        b->ing = ing;
        sf_msg_fifo_init(&b->chain);
        ing->cur = b;
        arm(ing);
    }
    if (b->nreqs == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->reqs = sf_xrealloc(b->reqs, b->cap * sizeof(*b->reqs));
    }
    b->reqs[b->nreqs++] = req;
    sf_msg_fifo_push(&b->chain, m);
}

/* Routes and answers a finished batch, then frees it. */
static void batch_finish(sf_ingress_t *ing, sf_ingress_batch_t *b)
{
    size_t i;
    int status = b->status;
    if (status == 0) {
        status = ing->hooks->route(ing->hooks->ud, &b->chain);
        SF_ASSERT(status <= 0);
    }
    if (status == 0) {
        SF_ASSERT(b->chain.count == 0);
        for (i = 0; i < b->nreqs; i++)
            sf_http_respond(b->reqs[i], 200, NULL, 0, NULL, 0);
        sf__io_count(ing->ctr, SF__IO_IN_ACCEPTED, b->nreqs);
    } else {
        sf_log_error("ingress: %zu messages not accepted: %s", b->nreqs, sf_strerror(status));
        sf_msg_fifo_clear(&b->chain);
        for (i = 0; i < b->nreqs; i++)
            sf__io_reply(b->reqs[i], 503, &sf__io_retry_after, 1,
                         "the message could not be accepted: %s", sf_strerror(status));
        sf__io_count(ing->ctr, SF__IO_IN_FAILED, b->nreqs);
    }
    free(b->reqs);
    free(b);
}

static void finish_ready(sf_ingress_t *ing)
{
    sf_ingress_batch_t *b;
    while ((b = ing->oldest) != NULL && b->done) {
        ing->oldest = b->next;
        if (!ing->oldest)
            ing->newest = NULL;
        ing->inflight--;
        batch_finish(ing, b);
    }
    if (ing->closing && ing->inflight == 0 && ing->on_idle) {
        void (*cb)(void *) = ing->on_idle;
        ing->on_idle = NULL;
        cb(ing->on_idle_arg);
    }
}

static void on_persisted(void *token, int status)
{
    sf_ingress_batch_t *b = token;
    SF_ASSERT(!b->done);
    b->done = true;
    b->status = status > 0 ? 0 : status;
    if (!b->in_persist)
        finish_ready(b->ing);
}

/* Closes the open batch: persist (or not), then finish what is ready. */
static void close_batch(sf_ingress_t *ing)
{
    sf_ingress_batch_t *b = ing->cur;
    disarm(ing);
    if (!b)
        return;
    ing->cur = NULL;
    if (ing->newest)
        ing->newest->next = b;
    else
        ing->oldest = b;
    ing->newest = b;
    ing->inflight++;
    if (ing->hooks->persist) {
        int rc;
        b->in_persist = true;
        rc = ing->hooks->persist(ing->hooks->ud, &b->chain, on_persisted, b);
        b->in_persist = false;
        if (rc < 0) {
            SF_ASSERT(!b->done);
            b->done = true;
            b->status = rc;
        }
    } else {
        b->done = true;
    }
    finish_ready(ing);
}

static void on_flush(uv_check_t *h)
{
    close_batch(h->data);
}

/* ------------------------------------------------------------------------ */
/* Parked requests                                                            */

static bool accepting(const sf_ingress_t *ing, uint16_t kg)
{
    return !ing->hooks->accepting || ing->hooks->accepting(ing->hooks->ud, kg);
}

static void on_unpark(uv_timer_t *h);

/* Parks |req| and |m| behind the requests of their key group that wait; false
 * when the wait is full (the caller answers 503). */
static bool park(sf_ingress_t *ing, sf_http_request_t *req, sf_msg_t *m)
{
    sf_ingress_parked_t *p;
    if (ing->nparked >= SF_IO_MAX_PARKED ||
        ing->parked_bytes + m->value_len > SF_IO_MAX_PARKED_BYTES)
        return false;
    if (!ing->kgs)
        ing->kgs = sf_xcalloc(ing->max_parallelism, sizeof *ing->kgs);
    p = sf_xmalloc(sizeof *p);
    p->next = NULL;
    p->req = req;
    p->m = m;
    p->since_ms = uv_now(ing->loop);
    *ing->parked_tail = p;
    ing->parked_tail = &p->next;
    if (ing->nparked++ == 0)
        uv_timer_start(&ing->unpark, on_unpark, UNPARK_TICK_MS, UNPARK_TICK_MS);
    ing->parked_bytes += m->value_len;
    ing->kgs[m->key_group].parked++;
    sf__io_count(ing->ctr, SF__IO_IN_PARKED, 1);
    return true;
}

static void refuse_backpressured(sf_ingress_t *ing, sf_http_request_t *req, const sf_msg_t *m)
{
    /* The target is namespace/type/id, and only the id may hold a '/'. */
    const char *t = sf_msg_target(m), *slash = strchr(t, '/');
    int type_len = slash && (slash = strchr(slash + 1, '/')) ? (int)(slash - t) : (int)strlen(t);
    sf__io_count(ing->ctr, SF__IO_IN_BACKPRESSURED, 1);
    sf__io_reply(req, 503, &sf__io_retry_after, 1,
                 "backpressure: the function type %.*s is busy (key group %u)", type_len, t,
                 (unsigned)m->key_group);
}

static void refuse_shutting_down(sf_ingress_t *ing, sf_http_request_t *req)
{
    sf__io_count(ing->ctr, SF__IO_IN_SHUTTING_DOWN, 1);
    sf__io_reply(req, 503, &sf__io_retry_after, 1, "the runtime is shutting down");
}

/* One pass over the parked requests: each joins the batch once its key group
 * accepts (and no earlier one of that key group stays), or is answered 503
 * once it waited too long or when the ingress stops (|stopping|). */
static void unpark_pass(sf_ingress_t *ing, bool stopping)
{
    uint64_t now = uv_now(ing->loop);
    sf_ingress_parked_t **pp = &ing->parked, *p;
    uint32_t pass;
    if (ing->nparked == 0)
        return;
    pass = ++ing->pass;
    while ((p = *pp) != NULL) {
        sf_ingress_kg_t *kg = &ing->kgs[p->m->key_group];
        bool admit = false, refuse = stopping;
        if (!refuse && kg->kept_pass != pass) {
            admit = accepting(ing, p->m->key_group);
            refuse = !admit && now - p->since_ms >= ing->max_park_ms;
        }
        if (!admit && !refuse) {
            kg->kept_pass = pass;
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        ing->nparked--;
        ing->parked_bytes -= p->m->value_len;
        kg->parked--;
        if (admit) {
            batch_add(ing, p->req, p->m);
        } else {
            if (stopping)
                refuse_shutting_down(ing, p->req);
            else
                refuse_backpressured(ing, p->req, p->m);
            sf_msg_free(p->m);
        }
        free(p);
    }
    ing->parked_tail = pp;
    if (ing->nparked == 0)
        uv_timer_stop(&ing->unpark);
}

static void unpark_now(sf_ingress_t *ing)
{
    unpark_pass(ing, ing->closing ||
                         atomic_load_explicit(ing->shutting_down, memory_order_relaxed));
}

static void on_unpark(uv_timer_t *h) { unpark_now(h->data); }

static void on_room(uv_async_t *h) { unpark_now(h->data); }

void sf_ingress_room(sf_ingress_t *ing)
{
    atomic_thread_fence(memory_order_seq_cst); /* MACHINE.md: before uv_async_send */
    uv_async_send(&ing->room);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                   */

static void on_request(sf_http_request_t *req, void *user_data)
{
    sf_ingress_t *ing = user_data;
    const char *method = sf_http_request_method(req), *path = sf_http_request_path(req);
    const char *why = NULL, *ct, *type_name = SF_TYPE_STRING;
    size_t ct_len = 0, tn_len = strlen(SF_TYPE_STRING), body_len = 0, path_len;
    const uint8_t *body, *value;
    size_t value_len;
    sf_addr_t addr;
    sf_msg_init_t init;
    sf_msg_t *m;
    int kind;

    if (ing->closing || atomic_load_explicit(ing->shutting_down, memory_order_relaxed)) {
        refuse_shutting_down(ing, req);
        return;
    }
    if (strcmp(method, "PUT") != 0 && strcmp(method, "POST") != 0) {
        sf__io_count(ing->ctr, SF__IO_IN_BAD_METHOD, 1);
        sf__io_reply(req, 405, &allow_put_post, 1, "the ingress takes PUT or POST, not %.16s",
                     method);
        return;
    }
    path_len = strlen(path);
    if (path_len + 1 > ing->pathcap) {
        ing->pathcap = path_len + 1 > 256 ? path_len + 1 : 256;
        ing->pathbuf = sf_xrealloc(ing->pathbuf, ing->pathcap);
    }
    if (sf_ingress_parse_path(path, ing->pathbuf, &addr, &why) < 0) {
        sf__io_count(ing->ctr, SF__IO_IN_BAD_REQUEST, 1);
        sf__io_reply(req, 400, NULL, 0, "%s", why);
        return;
    }
    if (ing->hooks->serves &&
        !ing->hooks->serves(ing->hooks->ud, addr.ns, addr.ns_len, addr.type, addr.type_len)) {
        sf__io_count(ing->ctr, SF__IO_IN_NOT_FOUND, 1);
        sf__io_reply(req, 404, NULL, 0, "no endpoint or embedded module serves the function "
                     "type %.*s/%.*s", (int)addr.ns_len, addr.ns, (int)addr.type_len, addr.type);
        return;
    }
    ct = sf_http_request_header(req, "content-type", &ct_len);
    kind = sf_ingress_content_type(ct, ct_len, &type_name, &tn_len, &why);
    if (kind < 0) {
        bool unsupported = kind == SF_EUNSUPPORTED;
        sf__io_count(ing->ctr, unsupported ? SF__IO_IN_UNSUPPORTED_TYPE : SF__IO_IN_BAD_REQUEST,
                     1);
        sf__io_reply(req, unsupported ? 415 : 400, NULL, 0, "%s", why);
        return;
    }
    body = sf_http_request_body(req, &body_len);
    if (kind == SF_INGRESS_BODY_STRING) {
        if (body_len > 0 && memchr(body, 0, body_len)) {
            sf__io_count(ing->ctr, SF__IO_IN_BAD_REQUEST, 1);
            sf__io_reply(req, 400, NULL, 0, "a text body may not contain NUL bytes");
            return;
        }
        if (!sf_text_utf8_valid(body, body_len)) {
            sf__io_count(ing->ctr, SF__IO_IN_BAD_REQUEST, 1);
            sf__io_reply(req, 400, NULL, 0,
                         "a text body must be UTF-8 (or send Content-Type: "
                         "application/vnd.{typename} for bytes)");
            return;
        }
        sf_buf_reset(&ing->scratch);
        if (sf_proto_encode_string((const char *)body, body_len, &ing->scratch) < 0)
            sf__panic(__FILE__, __LINE__, "out of memory");
        value = ing->scratch.base;
        value_len = ing->scratch.len;
    } else {
        value = body;
        value_len = body_len;
    }

    memset(&init, 0, sizeof(init));
    init.kind = SF_MSG_INVOKE;
    init.target = ing->pathbuf;
    init.target_len = addr.ns_len + 1 + addr.type_len + 1 + addr.id_len;
    init.type_name = type_name;
    init.type_name_len = tn_len;
    init.value = value;
    init.value_len = value_len;
    if (sf_msg_new(&init, ing->max_parallelism, &m) < 0) {
        /* sf_ingress_parse_path checked what sf_msg_new checks. */
        sf__io_count(ing->ctr, SF__IO_IN_BAD_REQUEST, 1);
        sf__io_reply(req, 400, NULL, 0, "%s", bad_path);
        return;
    }
    if ((ing->kgs && ing->kgs[m->key_group].parked) || !accepting(ing, m->key_group)) {
        if (!park(ing, req, m)) {
            refuse_backpressured(ing, req, m);
            sf_msg_free(m);
        }
        return;
    }
    batch_add(ing, req, m);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                 */

int sf_ingress_init(sf_ingress_t *ing, uv_loop_t *loop, const sf_io_ingress_config_t *cfg,
                    const sf_io_hooks_t *hooks, sf__io_counters_t *ctr,
                    const _Atomic bool *shutting_down, uint32_t max_parallelism)
{
    sf_http_server_config_t sc;
    int rc;

    memset(ing, 0, sizeof(*ing));
    ing->loop = loop;
    ing->hooks = hooks;
    ing->ctr = ctr;
    ing->shutting_down = shutting_down;
    ing->max_parallelism = max_parallelism;
    ing->parked_tail = &ing->parked;
    ing->max_park_ms = cfg->max_park_ms ? cfg->max_park_ms : SF_IO_DEFAULT_PARK_MS;
    sf_buf_init(&ing->scratch, NULL);

    memset(&sc, 0, sizeof(sc));
    sc.host = cfg->host ? cfg->host : "127.0.0.1";
    sc.port = cfg->port;
    sc.max_body_bytes = cfg->max_body_bytes ? cfg->max_body_bytes : SF_IO_DEFAULT_MAX_BODY;
    rc = sf_http_server_new(loop, &sc, on_request, ing, &ing->server);
    if (rc < 0) {
        sf_log_error("ingress: cannot listen on %s:%u: %s", sc.host, (unsigned)sc.port,
                     sf_strerror(rc));
        ing->server = NULL;
        sf_buf_dispose(&ing->scratch);
        return rc;
    }
    ing->port = sf_http_server_port(ing->server);
    uv_check_init(loop, &ing->flush);
    uv_idle_init(loop, &ing->keep_awake);
    uv_timer_init(loop, &ing->unpark);
    uv_async_init(loop, &ing->room, on_room);
    ing->room.data = ing;
    ing->flush.data = ing;
    ing->keep_awake.data = ing;
    ing->unpark.data = ing;
    ing->handles_open = true;
    return 0;
}

void sf_ingress_drain(sf_ingress_t *ing, void (*on_idle)(void *arg), void *arg)
{
    ing->closing = true;
    ing->on_idle = on_idle;
    ing->on_idle_arg = arg;
    unpark_pass(ing, true);
    close_batch(ing);
    finish_ready(ing); /* calls on_idle when nothing is in flight */
}

void sf_ingress_close(sf_ingress_t *ing)
{
    SF_ASSERT(ing->inflight == 0 && ing->cur == NULL);
    ing->closing = true;
    unpark_pass(ing, true);
    if (ing->server) {
        sf_http_server_close(ing->server, NULL, NULL);
        ing->server = NULL;
    }
    if (ing->handles_open) {
        ing->handles_open = false;
        disarm(ing);
        uv_close((uv_handle_t *)&ing->flush, NULL);
        uv_close((uv_handle_t *)&ing->keep_awake, NULL);
        uv_close((uv_handle_t *)&ing->unpark, NULL);
        uv_close((uv_handle_t *)&ing->room, NULL);
    }
}

void sf_ingress_dispose(sf_ingress_t *ing)
{
    SF_ASSERT(ing->nparked == 0);
    free(ing->kgs);
    ing->kgs = NULL;
    sf_buf_dispose(&ing->scratch);
    free(ing->pathbuf);
    ing->pathbuf = NULL;
}
