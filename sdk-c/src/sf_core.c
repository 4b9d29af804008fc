/* statefun-c: Apache License 2.0.
 *
 * The protocol core of the SDK, with no I/O: given a decoded ToFunction it
 * produces the FromFunction (SPEC section 6 and 8). If a declared state is
 * missing from the request, the answer is an IncompleteInvocationContext that
 * lists every missing spec; otherwise the batch's invocations run in order
 * through the bound callback, sharing one sf_ctx_t so that state written by
 * one is read by the next, and the answer is an InvocationResponse with the
 * mutations of the states that changed plus everything the callbacks sent.
 *
 * Everything decoded or produced lives in one arena; nothing here allocates
 * otherwise, so a batch is released by resetting the arena. sf_handler_t
 * wraps the core for bytes in, bytes out (HTTP): it owns an arena and an
 * output buffer that are reused from one request to the next.
 *
 * Threading: any thread, with its own arena or handler; the registry is only
 * read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sf_sdk_int.h"

int sf__vec_push(sf_arena_t *arena, sf__vec_t *vec, void *item)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 4;
        void **items = sf_arena_alloc(arena, cap * sizeof *items);
        if (!items)
            return SF_ENOMEM;
        if (vec->n)
            memcpy(items, vec->items, vec->n * sizeof *items);
        vec->items = items;
        vec->cap = cap;
    }
    vec->items[vec->n++] = item;
    return SF_OK;
}

const char *sf__arena_printf(sf_arena_t *arena, const char *fallback, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(s = sf_arena_alloc(arena, (size_t)n + 1)))
        return fallback;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* The value of state |name| in the request, or NULL when it is not there. */
static const sf_pb_persisted_value_t *request_state(const sf_pb_batch_request_t *batch,
                                                    const char *name)
{
    size_t i;
    for (i = 0; i < batch->n_state; i++) {
        const sf_pb_persisted_value_t *pv = batch->state[i];
        if (pv && strcmp(str_or_empty(pv->state_name), name) == 0)
            return pv;
    }
    return NULL;
}

static sf_pb_expiration_spec_t *expiration_new(sf_arena_t *arena, const sf_value_spec_t *spec)
{
    sf_pb_expiration_spec_t *e =
        ARENA_NEW(arena, sf_pb_expiration_spec_t, SF_PB_EXPIRATION_SPEC_INIT);
    if (!e)
        return NULL;
    switch (spec->expire_mode) {
    case SF_EXPIRE_AFTER_WRITE:
        e->mode = SF_PB_EXPIRE_AFTER_WRITE;
        break;
    case SF_EXPIRE_AFTER_INVOKE:
        e->mode = SF_PB_EXPIRE_AFTER_INVOKE;
        break;
    default:
        e->mode = SF_PB_EXPIRE_NONE;
        break;
    }
    e->expire_after_millis = spec->expire_mode == SF_EXPIRE_NONE ? 0 : spec->expire_after_ms;
    return e;
}

/*
 * Fills the slots from the request's states, looking each declared spec up
 * once. Returns how many declared states the request does not carry.
 */
static size_t slots_init(sf_ctx_t *ctx, const sf_pb_batch_request_t *batch)
{
    size_t i, missing = 0;
    for (i = 0; i < ctx->fn->nspecs; i++) {
        sf__slot_t *s = &ctx->slots[i];
        const sf_pb_persisted_value_t *pv = request_state(batch, ctx->fn->specs[i].name);
        const sf_pb_typed_value_t *tv = pv ? pv->state_value : NULL;
        memset(s, 0, sizeof *s);
        s->spec = &ctx->fn->specs[i];
        s->in_request = pv != NULL;
        missing += !pv;
        if (tv && tv->has_value) {
            s->has_value = s->orig_has_value = true;
            s->data = s->orig_data = tv->value.data;
            s->len = s->orig_len = tv->value.data ? tv->value.len : 0;
        }
    }
    return missing;
}

/*
 * Builds the IncompleteInvocationContext that lists the |missing| declared
 * states the request does not carry (the slots not in the request).
 * Returns 0 or SF_ENOMEM.
 */
static int incomplete_context(const sf_ctx_t *ctx, size_t missing, sf_pb_from_function_t **out)
{
    sf_arena_t *arena = ctx->arena;
    sf_pb_from_function_t *ff;
    sf_pb_incomplete_context_t *ic;
    size_t i;

    ff = ARENA_NEW(arena, sf_pb_from_function_t, SF_PB_FROM_FUNCTION_INIT);
    ic = ARENA_NEW(arena, sf_pb_incomplete_context_t, SF_PB_INCOMPLETE_CONTEXT_INIT);
    if (!ff || !ic)
        return SF_ENOMEM;
    ic->missing_values = sf_arena_alloc(arena, missing * sizeof *ic->missing_values);
    if (!ic->missing_values)
        return SF_ENOMEM;
    for (i = 0; i < ctx->fn->nspecs; i++) {
        const sf_value_spec_t *spec = ctx->slots[i].spec;
        sf_pb_value_spec_t *vs;
        if (ctx->slots[i].in_request)
            continue;
        vs = ARENA_NEW(arena, sf_pb_value_spec_t, SF_PB_VALUE_SPEC_INIT);
        if (!vs)
            return SF_ENOMEM;
        /* The generated struct is not const-correct; these strings belong to
         * the registry and are never written through. */
        vs->state_name = (char *)spec->name;
        vs->type_typename = (char *)spec->type;
        if (!(vs->expiration_spec = expiration_new(arena, spec)))
            return SF_ENOMEM;
        ic->missing_values[ic->n_missing_values++] = vs;
    }
    ff->response_case = SF_PB_FROM_FUNCTION_INCOMPLETE;
    ff->incomplete_invocation_context = ic;
    *out = ff;
    return SF_OK;
}

/*
 * The mutation for one slot, or NULL (in |*out|) when the state did not
 * change. A write of the very bytes the state already held is no change,
 * unless the state has a TTL: then the write must reach the runtime to
 * refresh the expiration, as in StateFun.
 */
static int slot_mutation(sf_arena_t *arena, const sf__slot_t *s, sf_pb_mutation_t **out)
{
    sf_pb_mutation_t *m;
    sf_pb_typed_value_t *tv;
    *out = NULL;
    if (!s->dirty)
        return SF_OK;
    if (!s->has_value) {
        if (!s->orig_has_value)
            return SF_OK;
        if (!(m = ARENA_NEW(arena, sf_pb_mutation_t, SF_PB_MUTATION_INIT)))
            return SF_ENOMEM;
        m->mutation_type = SF_PB_MUTATION_DELETE;
        m->state_name = (char *)s->spec->name;
        *out = m;
        return SF_OK;
    }
    if (s->orig_has_value && s->spec->expire_mode == SF_EXPIRE_NONE && s->len == s->orig_len &&
        (s->len == 0 || memcmp(s->data, s->orig_data, s->len) == 0))
        return SF_OK;
    m = ARENA_NEW(arena, sf_pb_mutation_t, SF_PB_MUTATION_INIT);
    tv = ARENA_NEW(arena, sf_pb_typed_value_t, SF_PB_TYPED_VALUE_INIT);
    if (!m || !tv)
        return SF_ENOMEM;
    tv->typename_ = (char *)s->spec->type;
    tv->has_value = 1;
    /* The data is in the arena already: setters copy into it. */
    tv->value.data = (uint8_t *)s->data;
    tv->value.len = s->len;
    m->mutation_type = SF_PB_MUTATION_MODIFY;
    m->state_name = (char *)s->spec->name;
    m->state_value = tv;
    *out = m;
    return SF_OK;
}

static int invocation_response(sf_ctx_t *ctx, sf_pb_from_function_t **out)
{
    sf_arena_t *arena = ctx->arena;
    sf_pb_from_function_t *ff = ARENA_NEW(arena, sf_pb_from_function_t, SF_PB_FROM_FUNCTION_INIT);
    sf_pb_invocation_response_t *r =
        ARENA_NEW(arena, sf_pb_invocation_response_t, SF_PB_INVOCATION_RESPONSE_INIT);
    size_t i;
    int rv;

    if (!ff || !r)
        return SF_ENOMEM;
    if (ctx->fn->nspecs) {
        r->state_mutations = sf_arena_alloc(arena, ctx->fn->nspecs * sizeof *r->state_mutations);
        if (!r->state_mutations)
            return SF_ENOMEM;
        for (i = 0; i < ctx->fn->nspecs; i++) {
            sf_pb_mutation_t *m;
            if ((rv = slot_mutation(arena, &ctx->slots[i], &m)) != 0)
                return rv;
            if (m)
                r->state_mutations[r->n_state_mutations++] = m;
        }
    }
    r->n_outgoing_messages = ctx->messages.n;
    r->outgoing_messages = (sf_pb_from_invocation_t **)ctx->messages.items;
    r->n_delayed_invocations = ctx->delayed.n;
    r->delayed_invocations = (sf_pb_delayed_invocation_t **)ctx->delayed.items;
    r->n_outgoing_egresses = ctx->egresses.n;
    r->outgoing_egresses = (sf_pb_egress_message_t **)ctx->egresses.items;
    ff->response_case = SF_PB_FROM_FUNCTION_RESULT;
    ff->invocation_result = r;
    *out = ff;
    return SF_OK;
}

/*
 * Runs the batch through |fn|, or answers with an IncompleteInvocationContext
 * when declared states are missing (the function does not run then).
 */
static int run_batch(const sf__function_t *fn, const sf_pb_batch_request_t *batch,
                     sf_arena_t *arena, sf_pb_from_function_t **out, const char **reason)
{
    sf_ctx_t ctx;
    size_t i, missing = 0;
    int rv;

    memset(&ctx, 0, sizeof ctx);
    ctx.arena = arena;
    ctx.fn = fn;
    ctx.self.ns = str_or_empty(batch->target->namespace_);
    ctx.self.type = str_or_empty(batch->target->type);
    ctx.self.id = str_or_empty(batch->target->id);
    if (fn->nspecs) {
        ctx.slots = sf_arena_alloc(arena, fn->nspecs * sizeof *ctx.slots);
        if (!ctx.slots)
            return SF_ENOMEM;
        missing = slots_init(&ctx, batch);
    }
    if (missing)
        return incomplete_context(&ctx, missing, out);

    for (i = 0; i < batch->n_invocations; i++) {
        const sf_pb_to_invocation_t *inv = batch->invocations[i];
        const sf_pb_typed_value_t *arg = inv ? inv->argument : NULL;
        sf_message_t msg;

        msg.type_name = arg ? str_or_empty(arg->typename_) : "";
        msg.data = arg && arg->value.data ? arg->value.data : NULL;
        msg.len = msg.data ? arg->value.len : 0;
        msg.ctx = &ctx;
        ctx.has_caller = inv && inv->caller;
        if (ctx.has_caller) {
            ctx.caller.ns = str_or_empty(inv->caller->namespace_);
            ctx.caller.type = str_or_empty(inv->caller->type);
            ctx.caller.id = str_or_empty(inv->caller->id);
        } else {
            memset(&ctx.caller, 0, sizeof ctx.caller);
        }
        rv = fn->cb(&ctx, &msg, fn->user_data);
        if (rv != 0 || ctx.out_of_memory) {
            if (rv == SF_ENOMEM || ctx.out_of_memory) {
                *reason = "out of memory in function";
                return SF_ENOMEM;
            }
            *reason = sf__arena_printf(arena, "function failed", "function %s failed: %s", fn->type,
                                       rv < 0 ? sf_strerror(rv) : "callback error");
            return SF_EFUNCTION;
        }
    }
    return invocation_response(&ctx, out);
}

/* sf_functions_invoke_pb, restricted to the function |only| when it is set. */
static int invoke_pb(const sf_functions_t *fns, const sf__function_t *only,
                     const sf_pb_to_function_t *req, sf_arena_t *arena, sf_pb_from_function_t **out,
                     const char **reason)
{
    const sf_pb_batch_request_t *batch;
    const sf__function_t *fn;
    const char *why = NULL, *dummy;
    int rv;

    if (!reason)
        reason = &dummy;
    *reason = "";
    if (!fns || !arena || !out) {
        *reason = "invalid argument";
        return SF_EINVAL;
    }
    *out = NULL;
    if (!req || req->request_case != SF_PB_TO_FUNCTION_INVOCATION || !req->invocation) {
        *reason = "the request carries no invocation batch";
        return SF_EPROTO;
    }
    batch = req->invocation;
    if (!batch->target) {
        *reason = "the invocation batch has no target address";
        return SF_EPROTO;
    }
    if ((batch->n_state && !batch->state) || (batch->n_invocations && !batch->invocations)) {
        *reason = "malformed invocation batch";
        return SF_EPROTO;
    }
    fn = sf__functions_find(fns, str_or_empty(batch->target->namespace_),
                            str_or_empty(batch->target->type));
    if (!fn) {
        *reason = sf__arena_printf(
            arena, "no function bound for the target type", "no function bound for type %s/%s",
            str_or_empty(batch->target->namespace_), str_or_empty(batch->target->type));
        return SF_ENOTFOUND;
    }
    if (only && fn != only) {
        *reason = sf__arena_printf(arena, "this path serves another function type",
                                   "this path serves %s, not %s", only->type, fn->type);
        return SF_ENOTFOUND;
    }
    rv = run_batch(fn, batch, arena, out, &why);
    if (rv == 0)
        return SF_OK;
    *out = NULL;
    *reason = why ? why : sf_strerror(rv);
    return rv;
}

int sf_functions_invoke_pb(const sf_functions_t *fns, const sf_pb_to_function_t *req,
                           sf_arena_t *arena, sf_pb_from_function_t **out, const char **reason)
{
    return invoke_pb(fns, NULL, req, arena, out, reason);
}

/* ------------------------------------------------------------------------ */
/* Handler: bytes in, bytes out                                               */

struct sf_handler_s {
    const sf_functions_t *fns; /* borrowed */
    sf_mem mem;                /* forwards to the registry's allocator, noting failures */
    bool alloc_failed;         /* an allocation failed since the last reset */
    sf_arena_t arena;          /* the decoded request and the response, reset per call */
    sf_buf_t out;              /* the packed response */
    const char *reason;        /* static or in |arena| */
};

/* The handler's allocator forwards to the registry's and notes failures: that
 * is how an unpack that failed for lack of memory is told from one that failed
 * on malformed bytes (protobuf-c returns NULL for both). */
static void *inv_malloc(size_t size, void *ud)
{
    sf_handler_t *inv = ud;
    void *p = sf_mem_malloc(inv->fns->mem, size);
    inv->alloc_failed |= p == NULL;
    return p;
}

static void inv_free(void *ptr, void *ud)
{
    sf_handler_t *inv = ud;
    sf_mem_free(inv->fns->mem, ptr);
}

static void *inv_calloc(size_t nmemb, size_t size, void *ud)
{
    sf_handler_t *inv = ud;
    void *p = sf_mem_calloc(inv->fns->mem, nmemb, size);
    inv->alloc_failed |= p == NULL;
    return p;
}

static void *inv_realloc(void *ptr, size_t size, void *ud)
{
    sf_handler_t *inv = ud;
    void *p = sf_mem_realloc(inv->fns->mem, ptr, size);
    inv->alloc_failed |= p == NULL;
    return p;
}

int sf_handler_new(const sf_functions_t *fns, sf_handler_t **out)
{
    sf_handler_t *inv;
    if (!fns || !out)
        return SF_EINVAL;
    *out = NULL;
    inv = sf_mem_calloc(fns->mem, 1, sizeof *inv);
    if (!inv)
        return SF_ENOMEM;
    inv->fns = fns;
    inv->mem.mem_user_data = inv;
    inv->mem.malloc = inv_malloc;
    inv->mem.free = inv_free;
    inv->mem.calloc = inv_calloc;
    inv->mem.realloc = inv_realloc;
    sf_arena_init(&inv->arena, &inv->mem);
    sf_buf_init(&inv->out, &inv->mem);
    inv->reason = "";
    *out = inv;
    return SF_OK;
}

void sf_handler_free(sf_handler_t *inv)
{
    if (!inv)
        return;
    sf_arena_dispose(&inv->arena);
    sf_buf_dispose(&inv->out);
    sf_mem_free(inv->fns->mem, inv);
}

int sf__handler_invoke_only(sf_handler_t *inv, const sf__function_t *only, const uint8_t *req,
                            size_t len, const uint8_t **out, size_t *out_len)
{
    sf_pb_to_function_t *tf;
    sf_pb_from_function_t *ff = NULL;
    int rv;

    if (!inv || !out || !out_len || (!req && len))
        return SF_EINVAL;
    *out = NULL;
    *out_len = 0;
    sf_arena_reset(&inv->arena);
    sf_buf_reset(&inv->out);
    inv->alloc_failed = false;
    inv->reason = "";

    tf = sf_proto_to_function_unpack(&inv->arena, req ? req : (const uint8_t *)"", len);
    if (!tf) {
        if (inv->alloc_failed) {
            inv->reason = "out of memory decoding the request";
            return SF_ENOMEM;
        }
        inv->reason = "malformed request: not a ToFunction message";
        return SF_EPROTO;
    }
    rv = invoke_pb(inv->fns, only, tf, &inv->arena, &ff, &inv->reason);
    if (rv != 0)
        return rv;
    if ((rv = sf_proto_from_function_pack(ff, &inv->out)) != 0) {
        inv->reason = "out of memory encoding the response";
        return rv;
    }
    /* An empty FromFunction packs to zero bytes; base may still be NULL. */
    *out = inv->out.base ? inv->out.base : (const uint8_t *)"";
    *out_len = inv->out.len;
    return SF_OK;
}

int sf_handler_invoke(sf_handler_t *inv, const uint8_t *req, size_t len, const uint8_t **out,
                      size_t *out_len)
{
    return sf__handler_invoke_only(inv, NULL, req, len, out, out_len);
}

const char *sf_handler_reason(const sf_handler_t *inv)
{
    return inv ? inv->reason : "";
}
