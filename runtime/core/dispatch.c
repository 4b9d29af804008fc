/* statefun-c: Apache License 2.0.
 *
 * The per-worker dispatcher (see dispatch.h): activations, batches,
 * invocation of remote and embedded functions, applying replies, retries
 * and delayed messages. Worker thread only.
 */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sf_http.h"
#include "sf_proto.h"
#include "xalloc.h"

/* A registered state spec of a function type, learned from the function. */
typedef struct spec_s {
    char *name;
    char *type_name;
    sf_state_ttl_mode mode;
    int64_t ttl_ms;
} spec_t;

typedef struct wctx_s wctx_t;

/* A function type as one worker sees it. */
typedef struct fn_s {
    sf_actmap_node_t node; /* key: "ns/type" */
    char *name;
    char *ns, *type;
    const sf_endpoint_spec_t *ep;     /* remote, or NULL */
    size_t ep_index;
    sf_http_url_t url;                /* remote */
    const sf_embedded_t *lib;         /* embedded, or NULL */
    uint32_t max_batch;
    spec_t *specs;
    size_t nspecs;
    sf_fn_metrics_t *metrics;
} fn_t;

/* An address with work: a batch in flight, a backlog or a retry pending.
 * One allocation: the struct, then the address string, NUL-terminated
 * copies of its three parts (for the protocol structs) and its state keys'
 * prefix (encoded once for every read and write of its states). */
typedef struct act_s {
    sf_actmap_node_t node; /* key: the address string */
    char *addr;            /* points into _strs */
    size_t addr_len;
    sf_addr_t parts;       /* slices of addr */
    char *ns, *type, *id;  /* point into _strs */
    uint8_t *kprefix;      /* sf_state_prefix, in _strs */
    size_t kprefix_len;
    uint16_t kg;
    fn_t *fn;
    wctx_t *wc;
    sf_msg_fifo_t backlog;
    sf_msg_fifo_t batch;   /* in flight (or waiting for a retry) */
    bool inflight;         /* a request is outstanding */
    bool blocked;          /* counted in the key group's blocked flag */
    uint32_t attempts;
    size_t sent_nspecs;    /* states carried by the last request */
    uint64_t chain_start_ms;
    uint64_t sent_at_us;
    uv_timer_t *retry;
    /* Replied and staged, waiting for the worker's next commit point: */
    struct act_s *next_staged;  /* the group's list */
    uint32_t staged_routed;     /* messages it added to wc->routed */
    uint32_t staged_egress;     /* records it added to wc->egress and wc->held */
    /* Idle (nothing queued, in flight or staged), kept for the next message: */
    bool idle;
    struct act_s *idle_prev, *idle_next; /* wc's idle list, oldest first */
    char _strs[];                        /* addr '\0' ns '\0' type '\0' id '\0' kprefix */
} act_t;

struct wctx_s {
    sf_worker_t *w;
    sf_rt_t *rt;
    sf_actmap_t acts;
    /* Idle activations stay in |acts| (an address that gets a message every few
     * milliseconds is not parsed and allocated again each time), at most
     * SF_DISPATCH_IDLE_ACTS of them; past that the oldest goes. */
    act_t *idle_head, *idle_tail;
    size_t nidle;
    sf_actmap_t fns;
    sf_http_client_t **clients; /* [mod->nendpoints], created on first use */
    bool *unhealthy;            /* [mod->nendpoints]: this worker reported it */
    sf_state_batch_t *batch;
    sf_buf_t vbuf;
    sf_buf_t reqbuf;
    sf_buf_t msgbuf;
    sf_arena_t req_arena;       /* the ToFunction being built */
    sf_arena_t resp_arena;      /* the FromFunction being applied */
    uv_timer_t timer;           /* delayed messages */
    uv_timer_t reclaim;         /* expired state, reclaimed in slices */
    int64_t timer_at;           /* wall ms the timer is armed for; 0: not armed */
    /* The commit group: replies staged in |batch| since the last commit
     * point (oldest first), and their side effects, released once the
     * batch is committed. */
    act_t *staged;
    act_t **staged_tail;
    sf_msg_fifo_t routed;       /* outgoing messages */
    sf_msg_fifo_t egress;       /* records delivered at once */
    sf_msg_fifo_t held;         /* exactly-once records, keyed at the commit */
    int pending_closes;
    bool stopping;
    uint64_t egress_seq;        /* key sequence of exactly-once egress records */
};

static void send_batch(act_t *a);
static void start_batch(act_t *a);

static uint64_t mono_us(void) { return uv_hrtime() / 1000; }

/* ------------------------------------------------------------------------ */
/* Function types                                                             */

/* The function type of the address |p| (slices of one "ns/type/id" string,
 * so "ns/type" is its prefix), created on first use. */
static fn_t *fn_lookup(wctx_t *wc, const sf_addr_t *p)
{
    const char *key = p->ns;
    size_t len = p->ns_len + 1 + p->type_len;
    uint64_t h = sf_actmap_hash(key, len);
    sf_actmap_node_t *n;
    const sf_endpoint_spec_t *ep;
    const sf_embedded_t *lib;
    fn_t *fn;

    if ((n = sf_actmap_get(&wc->fns, key, len, h)) != NULL)
        return sf_container_of(n, fn_t, node);

    fn = sf_xcalloc(1, sizeof *fn);
    fn->name = sf_xstrndup(key, len);
    fn->ns = sf_xstrndup(p->ns, p->ns_len);
    fn->type = sf_xstrndup(p->type, p->type_len);
    fn->node.key = fn->name;
    fn->node.key_len = len;
    fn->node.hash = h;
    fn->max_batch = SF_ENDPOINT_DEFAULT_MAX_BATCH;
    if (sf_rt_find_function(wc->rt, fn->ns, fn->type, &ep, &lib)) {
        if (ep) {
            char *url = sf_endpoint_url_for(ep, fn->type);
            fn->ep = ep;
            fn->ep_index = (size_t)(ep - wc->rt->mod->endpoints);
            fn->max_batch = ep->max_num_batch_requests;
            if (sf_http_url_parse(url, NULL, &fn->url) != 0) {
                sf_log_error("function %s: bad endpoint URL %s", fn->name, url);
                fn->ep = NULL;
            }
            free(url);
        } else {
            fn->lib = lib;
        }
    }
    fn->metrics = sf_rt_fn_metrics(wc->rt, fn->name);
    sf_actmap_put(&wc->fns, &fn->node);
    return fn;
}

static void fn_free(sf_actmap_node_t *n, void *ud)
{
    fn_t *fn = sf_container_of(n, fn_t, node);
    size_t i;
    (void)ud;
    for (i = 0; i < fn->nspecs; i++) {
        free(fn->specs[i].name);
        free(fn->specs[i].type_name);
    }
    free(fn->specs);
    if (fn->ep)
        sf_http_url_dispose(&fn->url, NULL);
    free(fn->name);
    free(fn->ns);
    free(fn->type);
    free(fn);
}

static spec_t *fn_spec(fn_t *fn, const char *name)
{
    size_t i;
    for (i = 0; i < fn->nspecs; i++)
        if (strcmp(fn->specs[i].name, name) == 0)
            return &fn->specs[i];
    return NULL;
}

/* Registers the specs of an IncompleteInvocationContext. */
static void fn_register(fn_t *fn, act_t *a, const sf_pb_incomplete_context_t *ic)
{
    size_t i;
    for (i = 0; i < ic->n_missing_values; i++) {
        const sf_pb_value_spec_t *s = ic->missing_values[i];
        const char *tn = s->type_typename ? s->type_typename : "";
        spec_t *cur;
        if (!s->state_name || !*s->state_name)
            continue;
        if ((cur = fn_spec(fn, s->state_name)) != NULL) {
            if (strcmp(cur->type_name, tn) != 0)
                sf_log_error("address %s: state '%s' was registered with type %s; the function "
                             "now declares %s (kept %s)",
                             a->addr, s->state_name, cur->type_name, tn, cur->type_name);
            continue;
        }
        fn->specs = sf_xrealloc(fn->specs, (fn->nspecs + 1) * sizeof *fn->specs);
        cur = &fn->specs[fn->nspecs++];
        cur->name = sf_xstrdup(s->state_name);
        cur->type_name = sf_xstrdup(tn);
        cur->mode = SF_STATE_TTL_NONE;
        cur->ttl_ms = 0;
        if (s->expiration_spec && s->expiration_spec->mode != SF_PB_EXPIRE_NONE &&
            s->expiration_spec->expire_after_millis > 0) {
            cur->mode = s->expiration_spec->mode == SF_PB_EXPIRE_AFTER_INVOKE
                            ? SF_STATE_TTL_AFTER_INVOKE
                            : SF_STATE_TTL_AFTER_WRITE;
            cur->ttl_ms = s->expiration_spec->expire_after_millis;
        }
        sf_log_debug("function %s: registered state '%s' (%s)", fn->name, cur->name,
                     cur->type_name);
    }
}

/* ------------------------------------------------------------------------ */
/* Activations                                                                */

static void set_blocked(act_t *a, bool blocked)
{
    if (a->blocked == blocked)
        return;
    a->blocked = blocked;
    if (atomic_fetch_add(&a->wc->rt->blocked_kg[a->kg], blocked ? 1u : (uint32_t)-1) == 1 &&
        !blocked && a->wc->w->group->on_room)
        a->wc->w->group->on_room(a->wc->w->group); /* the key group takes messages again */
    atomic_fetch_add(&a->fn->metrics->blocked, blocked ? 1 : -1);
}

static void idle_unlink(act_t *a)
{
    wctx_t *wc = a->wc;
    *(a->idle_prev ? &a->idle_prev->idle_next : &wc->idle_head) = a->idle_next;
    *(a->idle_next ? &a->idle_next->idle_prev : &wc->idle_tail) = a->idle_prev;
    a->idle_prev = a->idle_next = NULL;
    a->idle = false;
    wc->nidle--;
}

static act_t *act_get(wctx_t *wc, const char *addr, size_t len, uint16_t kg)
{
    uint64_t h = sf_actmap_hash(addr, len);
    sf_actmap_node_t *n = sf_actmap_get(&wc->acts, addr, len, h);
    sf_addr_t parts;
    size_t plen;
    act_t *a;
    if (n) {
        a = sf_container_of(n, act_t, node);
        if (a->idle)
            idle_unlink(a);
        return a;
    }
    /* The parts together are the address less its two slashes. */
    memset(&parts, 0, sizeof parts);
    sf_addr_parse(addr, len, &parts);
    plen = sf_state_prefix_len(&parts);
    a = sf_xcalloc(1, sizeof *a + 2 * len + 2 + plen);
    a->addr = a->_strs;
    memcpy(a->addr, addr, len);
    a->addr[len] = '\0';
    a->addr_len = len;
    sf_addr_parse(a->addr, len, &a->parts);
    a->ns = a->addr + len + 1;
    memcpy(a->ns, a->parts.ns, a->parts.ns_len);
    a->ns[a->parts.ns_len] = '\0';
    a->type = a->ns + a->parts.ns_len + 1;
    memcpy(a->type, a->parts.type, a->parts.type_len);
    a->type[a->parts.type_len] = '\0';
    a->id = a->type + a->parts.type_len + 1;
    memcpy(a->id, a->parts.id, a->parts.id_len);
    a->id[a->parts.id_len] = '\0';
    a->kprefix = (uint8_t *)a->id + a->parts.id_len + 1;
    a->kprefix_len = plen;
    sf_state_prefix(a->kprefix, kg, &a->parts);
    a->kg = kg;
    a->wc = wc;
    sf_msg_fifo_init(&a->backlog);
    sf_msg_fifo_init(&a->batch);
    a->node.key = a->addr;
    a->node.key_len = len;
    a->node.hash = h;
    a->fn = fn_lookup(wc, &a->parts);
    sf_actmap_put(&wc->acts, &a->node);
    return a;
}

static void on_timer_closed(uv_handle_t *h) { free(h); }

static void act_free(act_t *a)
{
    if (a->fn)
        atomic_fetch_sub(&a->fn->metrics->backlog, (int64_t)a->backlog.count);
    if (a->fn)
        set_blocked(a, false);
    sf_msg_fifo_clear(&a->backlog);
    sf_msg_fifo_clear(&a->batch);
    if (a->retry)
        uv_close((uv_handle_t *)a->retry, on_timer_closed);
    free(a);
}

/* Makes the activation idle when it has nothing left to do; drops the oldest
 * idle one past SF_DISPATCH_IDLE_ACTS. */
static void act_maybe_release(act_t *a)
{
    wctx_t *wc = a->wc;
    if (a->idle || a->inflight || a->batch.head || a->backlog.head ||
        (a->retry && uv_is_active((uv_handle_t *)a->retry)))
        return;
    set_blocked(a, false);
    a->idle = true;
    a->idle_next = NULL;
    a->idle_prev = wc->idle_tail;
    *(wc->idle_tail ? &wc->idle_tail->idle_next : &wc->idle_head) = a;
    wc->idle_tail = a;
    if (++wc->nidle > SF_DISPATCH_IDLE_ACTS) {
        act_t *old = wc->idle_head;
        idle_unlink(old);
        sf_actmap_del(&wc->acts, &old->node);
        act_free(old);
    }
}

/* ------------------------------------------------------------------------ */
/* Building the request                                                       */

/* The caller of |m| as a protocol Address in |ar|, or NULL. */
static sf_pb_address_t *caller_pb(sf_arena_t *ar, const sf_msg_t *m)
{
    sf_pb_address_t *a = sf_arena_alloc(ar, sizeof *a);
    if (!a || sf_proto_address_parse(ar, sf_msg_caller(m), m->caller_len, a) != 0)
        return NULL;
    return a;
}

/* Builds the ToFunction for the activation's batch in wc->req_arena. Returns
 * NULL when the state backend fails (the attempt is retried). */
static sf_pb_to_function_t *build_request(act_t *a, int64_t now)
{
    wctx_t *wc = a->wc;
    sf_arena_t *ar = &wc->req_arena;
    fn_t *fn = a->fn;
    sf_pb_to_function_t *tf = sf_arena_alloc(ar, sizeof *tf);
    sf_pb_batch_request_t *br = sf_arena_alloc(ar, sizeof *br);
    sf_pb_address_t *target = sf_arena_alloc(ar, sizeof *target);
    sf_pb_to_function_t tf0 = SF_PB_TO_FUNCTION_INIT;
    sf_pb_batch_request_t br0 = SF_PB_BATCH_REQUEST_INIT;
    sf_pb_address_t ad0 = SF_PB_ADDRESS_INIT;
    sf_msg_link_t *l;
    size_t i;

    *tf = tf0;
    *br = br0;
    *target = ad0;
    target->namespace_ = a->ns;
    target->type = a->type;
    target->id = a->id;
    br->target = target;
    tf->request_case = SF_PB_TO_FUNCTION_INVOCATION;
    tf->invocation = br;

    br->n_state = fn->nspecs;
    a->sent_nspecs = fn->nspecs;
    br->state = sf_arena_alloc(ar, (fn->nspecs ? fn->nspecs : 1) * sizeof *br->state);
    for (i = 0; i < fn->nspecs; i++) {
        sf_pb_persisted_value_t pv0 = SF_PB_PERSISTED_VALUE_INIT, *pv;
        sf_pb_typed_value_t tv0 = SF_PB_TYPED_VALUE_INIT, *tv;
        sf_state_value_t v;
        int rv;
        pv = sf_arena_alloc(ar, sizeof *pv);
        tv = sf_arena_alloc(ar, sizeof *tv);
        *pv = pv0;
        *tv = tv0;
        pv->state_name = fn->specs[i].name;
        pv->state_value = tv;
        tv->typename_ = fn->specs[i].type_name;
        rv = sf_state_get_at(wc->rt->state, wc->batch, a->kprefix, a->kprefix_len,
                             fn->specs[i].name, now, SF_STATE_GET_TOUCH, &wc->vbuf, &v);
        if (rv < 0) {
            sf_log_error("address %s: reading state '%s' failed: %s", a->addr,
                         fn->specs[i].name, sf_strerror(rv));
            return NULL;
        }
        if (rv == 1) {
            tv->has_value = 1;
            tv->value.len = v.len;
            tv->value.data = sf_arena_alloc(ar, v.len ? v.len : 1);
            memcpy(tv->value.data, v.data, v.len);
        }
        br->state[i] = pv;
    }

    br->n_invocations = a->batch.count;
    br->invocations = sf_arena_alloc(ar, a->batch.count * sizeof *br->invocations);
    for (i = 0, l = a->batch.head; l; l = l->next, i++) {
        sf_msg_t *m = sf_container_of(l, sf_msg_t, link);
        sf_pb_to_invocation_t inv0 = SF_PB_TO_INVOCATION_INIT, *inv;
        sf_pb_typed_value_t tv0 = SF_PB_TYPED_VALUE_INIT, *tv;
        inv = sf_arena_alloc(ar, sizeof *inv);
        tv = sf_arena_alloc(ar, sizeof *tv);
        *inv = inv0;
        *tv = tv0;
        if (m->has_caller)
            inv->caller = caller_pb(ar, m);
        tv->typename_ = (char *)sf_msg_typename(m);
        tv->has_value = 1;
        tv->value.data = (uint8_t *)sf_msg_value(m);
        tv->value.len = m->value_len;
        inv->argument = tv;
        br->invocations[i] = inv;
    }
    /* AFTER_INVOKE refreshes queued by the reads stay in wc->batch: the
     * worker's next commit point writes them. */
    return tf;
}

/* ------------------------------------------------------------------------ */
/* Applying the reply                                                         */

static void arm_timer(wctx_t *wc);

/* Whether records for egress |name| wait for the checkpoint (exactly-once). */
static bool egress_exactly_once(const sf_rt_t *rt, const char *name)
{
    return rt->opts->checkpoint_interval_ms > 0 && rt->mod->egress &&
           rt->mod->egress->exactly_once && strcmp(name, SF_IO_PLAYGROUND_EGRESS) == 0;
}

uint64_t sf_egress_key_epoch(const uint8_t *key, size_t klen)
{
    uint64_t epoch = 0;
    size_t i;
    if (klen != SF_EGRESS_KEY_LEN)
        return 0;
    for (i = 0; i < 8; i++)
        epoch = epoch << 8 | key[i];
    return epoch;
}

void sf_egress_key(uint8_t key[SF_EGRESS_KEY_LEN], uint64_t epoch, uint32_t worker, uint64_t seq)
{
    int i;
    for (i = 0; i < 8; i++) {
        key[i] = (uint8_t)(epoch >> (56 - 8 * i));
        key[12 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    for (i = 0; i < 4; i++)
        key[8 + i] = (uint8_t)(worker >> (24 - 8 * i));
}

static int msg_from_pb(wctx_t *wc, act_t *a, const sf_pb_address_t *t,
                       const sf_pb_typed_value_t *arg, sf_msg_t **out)
{
    if (!t || !t->namespace_ || !t->type || !t->id || !arg)
        return SF_EPROTO;
    return sf_msg_new_parts(t->namespace_, t->type, t->id, a->ns, a->type, a->id,
                            arg->typename_ ? arg->typename_ : "", arg->value.data, arg->value.len,
                            wc->rt->opts->max_parallelism, out);
}

/* The messages and records of one reply, until it is staged whole. */
typedef struct outputs_s {
    sf_msg_fifo_t routed;
    sf_msg_fifo_t egress;
    sf_msg_fifo_t held;
} outputs_t;

/* Stages the side effects of |r|: state, timers and cancellations in
 * wc->batch, messages and egress records in |out|. Returns 0 or SF_EPROTO (a
 * reply that violates the protocol; the caller takes back what was staged). */
static int stage_result(act_t *a, const sf_pb_invocation_response_t *r, int64_t now,
                        outputs_t *out)
{
    wctx_t *wc = a->wc;
    size_t i;
    int rv;

    for (i = 0; i < r->n_state_mutations; i++) {
        const sf_pb_mutation_t *m = r->state_mutations[i];
        spec_t *s;
        if (!m->state_name || !*m->state_name)
            return SF_EPROTO;
        s = fn_spec(a->fn, m->state_name);
        if (m->mutation_type == SF_PB_MUTATION_DELETE) {
            rv = sf_state_batch_delete_at(wc->batch, a->kprefix, a->kprefix_len, m->state_name);
        } else if (m->mutation_type == SF_PB_MUTATION_MODIFY && m->state_value) {
            const char *tn = m->state_value->typename_ && *m->state_value->typename_
                                 ? m->state_value->typename_
                                 : (s ? s->type_name : "");
            rv = sf_state_batch_put_at(wc->batch, a->kprefix, a->kprefix_len, m->state_name, tn,
                                       m->state_value->value.data, m->state_value->value.len,
                                       s ? s->mode : SF_STATE_TTL_NONE, s ? s->ttl_ms : 0, now);
        } else {
            return SF_EPROTO;
        }
        if (rv != 0)
            return SF_EPROTO;
    }
    for (i = 0; i < r->n_outgoing_messages; i++) {
        const sf_pb_from_invocation_t *o = r->outgoing_messages[i];
        sf_msg_t *m;
        if (msg_from_pb(wc, a, o->target, o->argument, &m) != 0)
            return SF_EPROTO;
        sf_msg_fifo_push(&out->routed, m);
    }
    for (i = 0; i < r->n_delayed_invocations; i++) {
        const sf_pb_delayed_invocation_t *d = r->delayed_invocations[i];
        if (d->is_cancellation_request) {
            if (!d->cancellation_token || !*d->cancellation_token)
                return SF_EPROTO;
            rv = sf_state_batch_timer_cancel(wc->batch, a->kg, &a->parts, d->cancellation_token);
            if (rv < 0)
                return SF_EPROTO;
        } else {
            sf_msg_t *m;
            int64_t delay = d->delay_in_ms < 0 ? 0 : d->delay_in_ms;
            if (msg_from_pb(wc, a, d->target, d->argument, &m) != 0)
                return SF_EPROTO;
            sf_buf_reset(&wc->msgbuf);
            sf_msg_encode(m, &wc->msgbuf);
            sf_msg_free(m);
            rv = sf_state_batch_timer_schedule(wc->batch, a->kg, &a->parts,
                                               d->cancellation_token, now + delay,
                                               wc->msgbuf.base, wc->msgbuf.len);
            if (rv == SF_EEXIST) {
                sf_log_warn("address %s: a delayed message with token '%s' is already pending; "
                            "the new one is dropped",
                            a->addr, d->cancellation_token);
            } else if (rv != 0) {
                return SF_EPROTO;
            } else {
                atomic_fetch_add(&a->fn->metrics->out_delayed, 1);
                if (wc->timer_at == 0 || now + delay < wc->timer_at)
                    wc->timer_at = -1; /* re-arm after the commit */
            }
        }
    }
    for (i = 0; i < r->n_outgoing_egresses; i++) {
        const sf_pb_egress_message_t *e = r->outgoing_egresses[i];
        sf_msg_init_t in;
        char name[512];
        sf_msg_t *m;
        if (!e->egress_namespace || !e->egress_type || !e->argument)
            return SF_EPROTO;
        snprintf(name, sizeof name, "%s/%s", e->egress_namespace, e->egress_type);
        memset(&in, 0, sizeof in);
        in.kind = SF_MSG_EGRESS;
        in.target = name;
        in.target_len = strlen(name);
        in.caller = a->addr;
        in.caller_len = a->addr_len;
        in.type_name = e->argument->typename_ ? e->argument->typename_ : "";
        in.type_name_len = strlen(in.type_name);
        in.value = e->argument->value.data;
        in.value_len = e->argument->value.len;
        if (sf_msg_new(&in, wc->rt->opts->max_parallelism, &m) != 0)
            return SF_EPROTO;
        /* Exactly-once records are committed with the reply (keyed at the
         * commit, see commit_group) and published when the checkpoint that
         * covers the commit completes. */
        sf_msg_fifo_push(egress_exactly_once(wc->rt, name) ? &out->held : &out->egress, m);
    }
    return SF_OK;
}

static void on_retry(uv_timer_t *t);

/* The ingress-to-commit latencies of one commit group, counted locally and
 * published with one atomic add per bucket touched (the counters are shared
 * by every worker). */
typedef struct commit_hist_s {
    uint64_t counts[SF_COMMIT_BUCKETS];
    uint64_t sum, n, now;
} commit_hist_t;

static void hist_add(commit_hist_t *h, const sf_msg_fifo_t *batch)
{
    static const uint64_t bounds[SF_COMMIT_BUCKETS] = SF_COMMIT_BOUNDS_US;
    const sf_msg_link_t *l;
    size_t b;
    for (l = batch->head; l; l = l->next) {
        const sf_msg_t *m = sf_container_of(l, sf_msg_t, link);
        uint64_t us;
        if (!m->accepted_us)
            continue;
        if (!h->now)
            h->now = uv_hrtime() / 1000;
        us = h->now > m->accepted_us ? h->now - m->accepted_us : 0;
        for (b = 0; b < SF_COMMIT_BUCKETS - 1 && us > bounds[b]; b++)
            ;
        h->counts[b]++;
        h->sum += us;
        h->n++;
    }
}

static void hist_publish(sf_rt_t *rt, const commit_hist_t *h)
{
    size_t b;
    if (!h->n)
        return;
    for (b = 0; b < SF_COMMIT_BUCKETS; b++)
        if (h->counts[b])
            atomic_fetch_add_explicit(&rt->commit_buckets[b], h->counts[b],
                                      memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->commit_sum_us, h->sum, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->commit_count, h->n, memory_order_relaxed);
}

static void attempt_failed(act_t *a, const char *why)
{
    wctx_t *wc = a->wc;
    uint64_t now = uv_now(&a->wc->w->loop), delay;
    atomic_fetch_add(&a->fn->metrics->failures, 1);
    a->attempts++;
    delay = SF_RETRY_MIN_MS << (a->attempts < 10 ? a->attempts - 1 : 9);
    if (delay > SF_RETRY_MAX_MS)
        delay = SF_RETRY_MAX_MS;
    if (a->attempts == 1 || a->attempts % 20 == 0)
        sf_log_warn("address %s: invocation attempt %u failed: %s; retrying in %llu ms", a->addr,
                    a->attempts, why, (unsigned long long)delay);
    if (a->fn->ep && now - a->chain_start_ms >= a->fn->ep->call_timeout_ms &&
        !wc->unhealthy[a->fn->ep_index]) {
        wc->unhealthy[a->fn->ep_index] = true;
        atomic_fetch_add(&wc->rt->unhealthy[a->fn->ep_index], 1);
        sf_log_error("endpoint %s is unhealthy: no successful call for %s within the call "
                     "timeout (%llu ms); retries continue",
                     a->fn->ep->url_template, a->addr,
                     (unsigned long long)a->fn->ep->call_timeout_ms);
    }
    if (!a->retry) {
        a->retry = sf_xmalloc(sizeof *a->retry);
        uv_timer_init(&wc->w->loop, a->retry);
        a->retry->data = a;
    }
    uv_timer_start(a->retry, on_retry, delay, 0);
}

static void endpoint_healthy(act_t *a)
{
    wctx_t *wc = a->wc;
    if (a->fn->ep && wc->unhealthy[a->fn->ep_index]) {
        wc->unhealthy[a->fn->ep_index] = false;
        atomic_fetch_sub(&wc->rt->unhealthy[a->fn->ep_index], 1);
        sf_log_info("endpoint %s is healthy again", a->fn->ep->url_template);
    }
}

static void on_retry(uv_timer_t *t)
{
    act_t *a = t->data;
    if (a->wc->stopping)
        return;
    send_batch(a);
}

/* Handles a reply (or a failure) for the activation's batch: a good reply
 * is staged whole into the commit group, or not at all. |now|: the wall clock
 * (ms) the reply's state writes and delays count from. */
static void on_reply(act_t *a, int err, const char *why, sf_pb_from_function_t *ff, int64_t now)
{
    wctx_t *wc = a->wc;
    outputs_t out;
    int rv = 0;

    a->inflight = false;
    if (wc->stopping)
        return;
    if (err != 0 || !ff) {
        attempt_failed(a, why ? why : sf_strerror(err));
        return;
    }
    if (ff->response_case == SF_PB_FROM_FUNCTION_INCOMPLETE) {
        fn_register(a->fn, a, ff->incomplete_invocation_context);
        sf_arena_reset(&wc->resp_arena);
        /* Resend when we now know more states than the request carried (they
         * may have been registered meanwhile by another address's reply). */
        if (a->fn->nspecs == a->sent_nspecs) {
            /* Nothing new to send: the function asks for states it gets. */
            attempt_failed(a, "IncompleteInvocationContext without new states");
            return;
        }
        send_batch(a);
        return;
    }
    sf_msg_fifo_init(&out.routed);
    sf_msg_fifo_init(&out.egress);
    sf_msg_fifo_init(&out.held);
    sf_state_batch_savepoint(wc->batch);
    if (ff->response_case == SF_PB_FROM_FUNCTION_RESULT && ff->invocation_result)
        rv = stage_result(a, ff->invocation_result, now, &out);
    sf_arena_reset(&wc->resp_arena);
    if (rv != 0) {
        sf_state_batch_rollback(wc->batch);
        sf_msg_fifo_clear(&out.routed);
        sf_msg_fifo_clear(&out.egress);
        sf_msg_fifo_clear(&out.held);
        attempt_failed(a, "the reply violates the protocol");
        return;
    }
    sf_state_batch_release(wc->batch);
    a->staged_routed = (uint32_t)out.routed.count;
    a->staged_egress = (uint32_t)(out.egress.count + out.held.count);
    sf_msg_fifo_splice(&wc->routed, &out.routed);
    sf_msg_fifo_splice(&wc->egress, &out.egress);
    sf_msg_fifo_splice(&wc->held, &out.held);
    /* a->batch stays until the commit: meanwhile new messages wait in the
     * backlog, and a checkpoint records the batch as in flight. */
    a->next_staged = NULL;
    *wc->staged_tail = a;
    wc->staged_tail = &a->next_staged;
}

/* Drops every staged side effect and reply (after a failed commit, or when
 * stopping); returns the replies, which are still in their activations. */
static act_t *unstage(wctx_t *wc)
{
    act_t *list = wc->staged;
    sf_state_batch_clear(wc->batch);
    sf_msg_fifo_clear(&wc->routed);
    sf_msg_fifo_clear(&wc->egress);
    sf_msg_fifo_clear(&wc->held);
    wc->staged = NULL;
    wc->staged_tail = &wc->staged;
    return list;
}

/* Keys the exactly-once egress records of the group into the batch with the
 * current epoch: a checkpoint pauses the workers between two commits (never
 * during one), so the checkpoint of that epoch is the first to cover this
 * commit. (A group staged before a pause and committed after it is recorded
 * by that checkpoint as in flight, and gets the next epoch.) */
static int key_held_records(wctx_t *wc)
{
    uint64_t epoch = atomic_load(&wc->rt->epoch);
    sf_msg_t *m;
    while ((m = sf_msg_fifo_pop(&wc->held)) != NULL) {
        uint8_t key[SF_EGRESS_KEY_LEN];
        int rv;
        sf_egress_key(key, epoch, wc->w->id, wc->egress_seq++);
        sf_buf_reset(&wc->msgbuf);
        sf_msg_encode(m, &wc->msgbuf);
        sf_msg_free(m);
        rv = sf_state_batch_log_put(wc->batch, SF_LOG_COL_EGRESS, key, sizeof key,
                                    wc->msgbuf.base, wc->msgbuf.len);
        if (rv != 0)
            return rv;
    }
    return SF_OK;
}

void sf_dispatch_commit(sf_worker_t *w)
{
    wctx_t *wc = w->data;
    commit_hist_t hist;
    act_t *a, *next;
    sf_msg_t *m;

    if (!wc || wc->stopping || (!wc->staged && sf_state_batch_count(wc->batch) == 0))
        return;
    if (key_held_records(wc) != 0 || sf_state_batch_commit(wc->batch) != 0) {
        for (a = unstage(wc); a; a = next) {
            next = a->next_staged;
            attempt_failed(a, "committing the reply's state failed");
        }
        return;
    }
    memset(&hist, 0, sizeof hist);
    a = wc->staged;
    wc->staged = NULL;
    wc->staged_tail = &wc->staged;
    /* Messages first, in the order of the replies, then the activations
     * (whose next batches stage the next group). */
    while ((m = sf_msg_fifo_pop(&wc->routed)) != NULL)
        sf_worker_route(wc->w, m);
    if (wc->egress.head) {
        if (wc->rt->io)
            sf_io_egress_push(wc->rt->io, &wc->egress);
        else
            sf_msg_fifo_clear(&wc->egress);
    }
    if (wc->timer_at < 0)
        arm_timer(wc);
    for (; a; a = next) {
        next = a->next_staged;
        hist_add(&hist, &a->batch);
        atomic_fetch_add(&a->fn->metrics->invocations, 1);
        atomic_fetch_add(&a->fn->metrics->messages_in, a->batch.count);
        atomic_fetch_add(&a->fn->metrics->out_local, a->staged_routed);
        atomic_fetch_add(&a->fn->metrics->egress, a->staged_egress);
        endpoint_healthy(a);
        sf_worker_done(wc->w, a->batch.count);
        sf_msg_fifo_clear(&a->batch);
        a->attempts = 0;
        if (a->backlog.head)
            start_batch(a);
        else
            act_maybe_release(a);
    }
    hist_publish(wc->rt, &hist);
}

/* ------------------------------------------------------------------------ */
/* Invoking                                                                   */

static void on_http_response(int err, const sf_http_response_t *res, void *ud)
{
    act_t *a = ud;
    wctx_t *wc = a->wc;
    sf_pb_from_function_t *ff = NULL;
    char why[128];
    uint64_t us = mono_us() - a->sent_at_us;
    static const uint64_t bounds[SF_LATENCY_BUCKETS] = SF_LATENCY_BOUNDS_US;
    size_t b;

    if (err == 0) {
        for (b = 0; b < SF_LATENCY_BUCKETS - 1 && us > bounds[b]; b++)
            ;
        atomic_fetch_add(&a->fn->metrics->latency_buckets[b], 1);
        atomic_fetch_add(&a->fn->metrics->latency_sum_us, us);
        atomic_fetch_add(&a->fn->metrics->latency_count, 1);
    }
    if (err != 0) {
        snprintf(why, sizeof why, "%s", sf_strerror(err));
    } else if (res->status != 200) {
        snprintf(why, sizeof why, "HTTP status %d", res->status);
        err = SF_EPROTO;
    } else if (!(ff = sf_proto_from_function_unpack(&wc->resp_arena, res->body, res->body_len))) {
        snprintf(why, sizeof why, "the reply is not a FromFunction (%zu bytes)", res->body_len);
        err = SF_EPROTO;
    }
    on_reply(a, err, why, ff, sf_wall_ms());
}

static void send_batch(act_t *a)
{
    static const sf_http_header_t hdrs[] = {
        {"content-type", 12, "application/octet-stream", 24}};
    wctx_t *wc = a->wc;
    sf_pb_to_function_t *tf;
    int64_t now = sf_wall_ms();
    int rv;

    /* The loop's clock (read once per turn) is precise enough for call timeouts. */
    if (a->chain_start_ms == 0 || a->attempts == 0)
        a->chain_start_ms = uv_now(&wc->w->loop);
    sf_arena_reset(&wc->req_arena);
    tf = build_request(a, now);
    if (!tf) {
        attempt_failed(a, "reading state failed");
        return;
    }
    a->inflight = true;
    if (a->fn->lib) {
        sf_pb_from_function_t *ff = NULL;
        const char *reason = "";
        rv = sf_embedded_invoke(a->fn->lib, tf, &wc->resp_arena, &ff, &reason);
        on_reply(a, rv, reason, rv == 0 ? ff : NULL, now); /* in-process: no time passed */
        return;
    }
    if (!a->fn->ep) {
        a->inflight = false;
        attempt_failed(a, "no endpoint serves this function type");
        return;
    }
    sf_buf_reset(&wc->reqbuf);
    sf_proto_to_function_pack(tf, &wc->reqbuf);
    if (!wc->clients[a->fn->ep_index]) {
        const sf_endpoint_spec_t *ep = a->fn->ep;
        sf_http_client_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.protocol = ep->protocol;
        cfg.connect_timeout_ms = ep->connect_timeout_ms;
        cfg.read_timeout_ms = ep->read_timeout_ms;
        cfg.write_timeout_ms = ep->write_timeout_ms;
        cfg.call_timeout_ms = ep->call_timeout_ms;
        cfg.pool_size = ep->pool_size > 64 ? 64 : ep->pool_size;
        cfg.pool_ttl_ms = ep->pool_ttl_ms;
        cfg.max_response_bytes = ep->payload_max_bytes;
        cfg.tls_ca_file = ep->trust_cacerts;
        cfg.tls_cert_file = ep->client_cert;
        cfg.tls_key_file = ep->client_key;
        cfg.tls_key_password = ep->client_key_password;
        if ((rv = sf_http_client_new(&wc->w->loop, &cfg, &wc->clients[a->fn->ep_index])) != 0) {
            a->inflight = false;
            attempt_failed(a, sf_strerror(rv));
            return;
        }
    }
    a->sent_at_us = mono_us();
    rv = sf_http_client_request(wc->clients[a->fn->ep_index], "POST", &a->fn->url, hdrs, 1,
                                wc->reqbuf.base, wc->reqbuf.len, on_http_response, a);
    if (rv != 0) {
        a->inflight = false;
        attempt_failed(a, sf_strerror(rv));
    }
}

static void start_batch(act_t *a)
{
    atomic_fetch_sub(&a->fn->metrics->backlog, (int64_t)a->backlog.count);
    sf_msg_fifo_splice(&a->batch, &a->backlog);
    set_blocked(a, false);
    a->attempts = 0;
    send_batch(a);
}

void sf_dispatch_deliver(sf_worker_t *w, sf_msg_t *m)
{
    wctx_t *wc = w->data;
    act_t *a;
    if (m->kind != SF_MSG_INVOKE || wc->stopping) {
        sf_msg_free(m);
        sf_worker_done(w, 1);
        return;
    }
    a = act_get(wc, sf_msg_target(m), m->target_len, m->key_group);
    if (!a->fn->ep && !a->fn->lib) {
        sf_log_warn("no endpoint or embedded module serves %s: message to %s dropped",
                    a->fn->name, a->addr);
        sf_msg_free(m);
        sf_worker_done(w, 1);
        act_maybe_release(a);
        return;
    }
    sf_msg_fifo_push(&a->backlog, m);
    atomic_fetch_add(&a->fn->metrics->backlog, 1);
    if (!a->inflight && !a->batch.head) {
        start_batch(a);
        return;
    }
    if (a->backlog.count >= a->fn->max_batch)
        set_blocked(a, true);
}

/* ------------------------------------------------------------------------ */
/* Delayed messages                                                           */

static int on_timer_due(const sf_state_timer_t *t, void *ud)
{
    wctx_t *wc = ud;
    sf_msg_t *m;
    if (sf_msg_decode(t->msg, t->msg_len, wc->rt->opts->max_parallelism, &m, NULL) != 0) {
        sf_log_error("a delayed message of key group %u does not decode; dropped",
                     (unsigned)t->key_group);
        return 0;
    }
    sf_worker_route(wc->w, m);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    wctx_t *wc = t->data;
    ssize_t n;
    if (sf_workers_commits_held(wc->w->group)) {
        /* Popping writes the store, which is being checkpointed: soon. */
        wc->timer_at = sf_wall_ms() + 1;
        uv_timer_start(&wc->timer, on_timer, 1, 0);
        return;
    }
    wc->timer_at = 0;
    do {
        n = sf_state_timers_pop(wc->rt->state, wc->w->kg_begin, wc->w->kg_end, sf_wall_ms(),
                                1024, on_timer_due, wc);
    } while (n == 1024);
    if (n < 0)
        sf_log_error("firing delayed messages failed: %s", sf_strerror((int)n));
    arm_timer(wc);
}

static void arm_timer(wctx_t *wc)
{
    int64_t at, now;
    int rv;
    if (wc->stopping)
        return;
    rv = sf_state_timers_next(wc->rt->state, wc->w->kg_begin, wc->w->kg_end, &at);
    if (rv != 1) {
        wc->timer_at = 0;
        uv_timer_stop(&wc->timer);
        return;
    }
    now = sf_wall_ms();
    wc->timer_at = at;
    uv_timer_start(&wc->timer, on_timer, at > now ? (uint64_t)(at - now) : 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Checkpoint snapshot                                                        */

typedef struct snap_s {
    sf_buf_t *buf;
    uint64_t count;
} snap_t;

static void snap_fifo(snap_t *s, const sf_msg_fifo_t *q)
{
    const sf_msg_link_t *l;
    for (l = q->head; l; l = l->next) {
        sf_msg_encode(sf_container_of(l, sf_msg_t, link), s->buf);
        s->count++;
    }
}

static void snap_act(sf_actmap_node_t *n, void *ud)
{
    act_t *a = sf_container_of(n, act_t, node);
    /* The batch in flight (or waiting for a retry) was sent before the backlog. */
    snap_fifo(ud, &a->batch);
    snap_fifo(ud, &a->backlog);
}

sf_state_batch_t *sf_dispatch_batch(sf_worker_t *w)
{
    wctx_t *wc = w->data;
    return wc ? wc->batch : NULL;
}

bool sf_dispatch_write_back(sf_worker_t *w, void *arg)
{
    sf_write_back_arg_t *x = arg;
    wctx_t *wc = w->data;
    size_t n = 0;
    int rv;
    if (!wc)
        return true;
    sf_state_batch_close_dirty(wc->batch, x->close_dirty);
    /* With commits held the worker's messages wait for the sweep anyway: one step. */
    rv = sf_state_batch_write_back(wc->batch, &x->cursor,
                                   sf_workers_commits_held(w->group) ? SIZE_MAX
                                                                     : SF_WRITE_BACK_STEP,
                                   &n);
    x->n += n;
    if (rv < 0)
        x->rv = rv;
    return rv != 0;
}

void sf_dispatch_snapshot(sf_worker_t *w, const sf_msg_fifo_t *local, const sf_msg_fifo_t *out,
                          void *arg)
{
    wctx_t *wc = w->data;
    sf_snapshot_arg_t *sa = arg;
    snap_t s;

    s.buf = &sa->local[w->id];
    s.count = 0;
    if (wc)
        sf_actmap_foreach(&wc->acts, snap_act, &s);
    snap_fifo(&s, local);
    s.buf = &sa->out[w->id];
    snap_fifo(&s, out);
    atomic_fetch_add(&sa->messages, s.count);
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                             */

/* Expired values are never sent (sf_state_get drops them); this reclaims the
 * space of those nobody reads again, a bounded slice per tick. */
static void on_reclaim(uv_timer_t *t)
{
    wctx_t *wc = t->data;
    if (sf_workers_commits_held(wc->w->group))
        return; /* the store is being checkpointed: next tick */
    sf_state_reclaim(wc->rt->state, wc->w->kg_begin, wc->w->kg_end, sf_wall_ms(),
                     SF_RECLAIM_BUDGET);
}

void sf_dispatch_start(sf_worker_t *w)
{
    sf_rt_t *rt = w->group->data;
    wctx_t *wc = sf_xcalloc(1, sizeof *wc);
    char tag[32];
    snprintf(tag, sizeof tag, "worker-%u", w->id);
    sf_log_set_tag(tag);
    wc->w = w;
    wc->rt = rt;
    sf_actmap_init(&wc->acts);
    sf_actmap_init(&wc->fns);
    wc->clients = sf_xcalloc(rt->mod->nendpoints + 1, sizeof *wc->clients);
    wc->unhealthy = sf_xcalloc(rt->mod->nendpoints + 1, sizeof *wc->unhealthy);
    sf_state_batch_new(rt->state, &wc->batch);
    sf_buf_init(&wc->vbuf, NULL);
    sf_buf_init(&wc->reqbuf, NULL);
    sf_buf_init(&wc->msgbuf, NULL);
    sf_arena_init(&wc->req_arena, NULL);
    sf_arena_init(&wc->resp_arena, NULL);
    wc->staged_tail = &wc->staged;
    sf_msg_fifo_init(&wc->routed);
    sf_msg_fifo_init(&wc->egress);
    sf_msg_fifo_init(&wc->held);
    uv_timer_init(&w->loop, &wc->timer);
    wc->timer.data = wc;
    uv_timer_init(&w->loop, &wc->reclaim);
    wc->reclaim.data = wc;
    uv_timer_start(&wc->reclaim, on_reclaim, SF_RECLAIM_INTERVAL_MS, SF_RECLAIM_INTERVAL_MS);
    w->data = wc;
    arm_timer(wc);
}

static void act_free_node(sf_actmap_node_t *n, void *ud)
{
    (void)ud;
    act_free(sf_container_of(n, act_t, node));
}

static void wctx_free(wctx_t *wc)
{
    size_t i;
    sf_actmap_foreach(&wc->acts, act_free_node, NULL);
    sf_actmap_dispose(&wc->acts);
    sf_actmap_foreach(&wc->fns, fn_free, NULL);
    sf_actmap_dispose(&wc->fns);
    for (i = 0; i < wc->rt->mod->nendpoints; i++)
        if (wc->unhealthy[i])
            atomic_fetch_sub(&wc->rt->unhealthy[i], 1);
    free(wc->clients);
    free(wc->unhealthy);
    unstage(wc);
    sf_state_batch_free(wc->batch);
    sf_buf_dispose(&wc->vbuf);
    sf_buf_dispose(&wc->reqbuf);
    sf_buf_dispose(&wc->msgbuf);
    sf_arena_dispose(&wc->req_arena);
    sf_arena_dispose(&wc->resp_arena);
    free(wc);
}

static void on_client_closed(sf_http_client_t *c, void *ud)
{
    wctx_t *wc = ud;
    (void)c;
    if (--wc->pending_closes == 0)
        wctx_free(wc);
}

static void on_wtimer_closed(uv_handle_t *h)
{
    wctx_t *wc = h->data;
    if (--wc->pending_closes == 0)
        wctx_free(wc);
}

void sf_dispatch_stop(sf_worker_t *w)
{
    wctx_t *wc = w->data;
    size_t i;
    if (!wc)
        return;
    w->data = NULL;
    wc->stopping = true;
    wc->pending_closes = 2; /* the delayed-message and reclaim timers */
    for (i = 0; i < wc->rt->mod->nendpoints; i++)
        if (wc->clients[i])
            wc->pending_closes++;
    uv_close((uv_handle_t *)&wc->timer, on_wtimer_closed);
    uv_close((uv_handle_t *)&wc->reclaim, on_wtimer_closed);
    for (i = 0; i < wc->rt->mod->nendpoints; i++)
        if (wc->clients[i])
            sf_http_client_close(wc->clients[i], on_client_closed, wc);
}
