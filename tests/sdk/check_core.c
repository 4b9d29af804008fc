/* statefun-c: Apache License 2.0.
 *
 * Tests of the SDK's protocol core (sdk-c/src/sf_core.c, sf_context.c,
 * sf_functions.c) without any I/O: binding, IncompleteInvocationContext,
 * mutations of changed state only, every kind of outgoing message, state
 * carried through a batch, unknown types, malformed and truncated requests,
 * and a failmalloc allocator failing every allocation in turn.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sf_proto.h"
#include "sf_sdk_int.h"
#include "failmalloc.h"
#include "statefun/sf.h"

/* ------------------------------------------------------------------------ */
/* Request building                                                           */

typedef struct {
    sf_arena_t arena;
    sf_pb_to_function_t tf;
    sf_pb_batch_request_t batch;
    sf_pb_persisted_value_t *state[16];
    sf_pb_to_invocation_t *invs[16];
} req_t;

static void req_init(req_t *r, const char *ns, const char *type, const char *id)
{
    sf_pb_to_function_t tf = SF_PB_TO_FUNCTION_INIT;
    sf_pb_batch_request_t b = SF_PB_BATCH_REQUEST_INIT;
    sf_pb_address_t *a;
    sf_arena_init(&r->arena, NULL);
    r->tf = tf;
    r->batch = b;
    a = sf_arena_alloc(&r->arena, sizeof *a);
    ck_assert_ptr_nonnull(a);
    {
        sf_pb_address_t ai = SF_PB_ADDRESS_INIT;
        *a = ai;
    }
    a->namespace_ = (char *)ns;
    a->type = (char *)type;
    a->id = (char *)id;
    r->batch.target = a;
    r->batch.state = r->state;
    r->batch.invocations = r->invs;
    r->tf.request_case = SF_PB_TO_FUNCTION_INVOCATION;
    r->tf.invocation = &r->batch;
}

static sf_pb_typed_value_t *tv_new(req_t *r, const char *type_name, const sf_buf_t *value)
{
    sf_pb_typed_value_t init = SF_PB_TYPED_VALUE_INIT;
    sf_pb_typed_value_t *tv = sf_arena_alloc(&r->arena, sizeof *tv);
    *tv = init;
    tv->typename_ = (char *)type_name;
    if (value) {
        tv->has_value = 1;
        tv->value.len = value->len;
        tv->value.data = sf_arena_alloc(&r->arena, value->len);
        if (value->len)
            memcpy(tv->value.data, value->base, value->len);
    }
    return tv;
}

/* Adds state |name|; |value| NULL means "present but empty". */
static void req_state(req_t *r, const char *name, const char *type_name, const sf_buf_t *value)
{
    sf_pb_persisted_value_t init = SF_PB_PERSISTED_VALUE_INIT;
    sf_pb_persisted_value_t *pv = sf_arena_alloc(&r->arena, sizeof *pv);
    *pv = init;
    pv->state_name = (char *)name;
    pv->state_value = tv_new(r, type_name, value);
    r->state[r->batch.n_state++] = pv;
}

static void req_state_int(req_t *r, const char *name, int32_t v)
{
    sf_buf_t b;
    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_proto_encode_int(v, &b), 0);
    req_state(r, name, SF_TYPE_INT, &b);
    sf_buf_dispose(&b);
}

/* Adds an invocation; |caller| "ns/type/id" or NULL (from an ingress). */
static void req_invoke(req_t *r, const char *caller, const char *type_name, const sf_buf_t *arg)
{
    sf_pb_to_invocation_t init = SF_PB_TO_INVOCATION_INIT;
    sf_pb_to_invocation_t *inv = sf_arena_alloc(&r->arena, sizeof *inv);
    *inv = init;
    if (caller) {
        inv->caller = sf_arena_alloc(&r->arena, sizeof *inv->caller);
        ck_assert_int_eq(sf_proto_address_parse(&r->arena, caller, strlen(caller), inv->caller), 0);
    }
    inv->argument = tv_new(r, type_name, arg);
    r->invs[r->batch.n_invocations++] = inv;
}

static void req_invoke_string(req_t *r, const char *caller, const char *s)
{
    sf_buf_t b;
    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_proto_encode_string(s, strlen(s), &b), 0);
    req_invoke(r, caller, SF_TYPE_STRING, &b);
    sf_buf_dispose(&b);
}

static void req_pack(req_t *r, sf_buf_t *out)
{
    sf_buf_init(out, NULL);
    ck_assert_int_eq(sf_proto_to_function_pack(&r->tf, out), 0);
}

static void req_dispose(req_t *r)
{
    sf_arena_dispose(&r->arena);
}

/* Runs |r| through a fresh handler and unpacks the answer into |arena|. */
static int run_bytes(sf_functions_t *fns, req_t *r, sf_arena_t *arena, sf_pb_from_function_t **ff,
                     char *reason, size_t reason_len)
{
    sf_handler_t *inv;
    sf_buf_t in;
    const uint8_t *out;
    size_t out_len;
    int rv;
    req_pack(r, &in);
    ck_assert_int_eq(sf_handler_new(fns, &inv), 0);
    rv = sf_handler_invoke(inv, in.base, in.len, &out, &out_len);
    if (reason)
        snprintf(reason, reason_len, "%s", sf_handler_reason(inv));
    *ff = NULL;
    if (rv == 0) {
        *ff = sf_proto_from_function_unpack(arena, out, out_len);
        ck_assert_ptr_nonnull(*ff);
    }
    sf_handler_free(inv);
    sf_buf_dispose(&in);
    return rv;
}

static int32_t decode_int(const sf_pb_typed_value_t *tv)
{
    int32_t v = -1;
    ck_assert_str_eq(tv->typename_, SF_TYPE_INT);
    ck_assert_int_eq(sf_proto_decode_int(tv->value.data, tv->value.len, &v), 0);
    return v;
}

static const char *decode_str(sf_arena_t *arena, const sf_pb_typed_value_t *tv)
{
    char *s;
    ck_assert_str_eq(tv->typename_, SF_TYPE_STRING);
    ck_assert_int_eq(sf_proto_decode_string(arena, tv->value.data, tv->value.len, &s, NULL), 0);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Functions under test                                                       */

/* t.fns/counter: increments "count" (int) per message, sets "last" (string)
 * to the message, deletes "gone", and never touches "kept". Records what it
 * saw in the test's log. */
typedef struct {
    char log[1024];
    int calls;
} counter_log_t;

static int counter_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    counter_log_t *log = user_data;
    const sf_address_t *caller = sf_caller(ctx);
    int32_t count = 0;
    const char *s;
    size_t slen;
    int rv;

    rv = sf_storage_get_int(ctx, "count", &count);
    ck_assert(rv == SF_OK || rv == SF_EMPTY);
    if (rv == SF_EMPTY)
        count = 0;
    ck_assert(sf_message_is_string(msg));
    ck_assert_int_eq(sf_message_as_string(msg, &s, &slen), 0);
    ck_assert_int_eq(sf_storage_set_int(ctx, "count", count + 1), 0);
    ck_assert_int_eq(sf_storage_set_string(ctx, "last", s, slen), 0);
    ck_assert_int_eq(sf_storage_delete(ctx, "gone"), 0);
    snprintf(log->log + strlen(log->log), sizeof log->log - strlen(log->log), "[%s/%s/%s %s %s %d]",
             sf_self(ctx)->ns, sf_self(ctx)->type, sf_self(ctx)->id,
             caller ? caller->id : "ingress", s, count);
    log->calls++;
    return 0;
}

static const sf_value_spec_t counter_specs[] = {
    SF_SPEC_INT("count"),
    {"last", SF_TYPE_STRING, SF_EXPIRE_AFTER_WRITE, 60000},
    {"gone", "com.example/Blob", SF_EXPIRE_AFTER_INVOKE, 5000},
    SF_SPEC_INT("kept"),
};

static sf_functions_t *counter_registry(counter_log_t *log)
{
    sf_functions_t *fns;
    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/counter", counter_fn, log, counter_specs,
                                       SF_ARRAY_SIZE(counter_specs)),
                     0);
    return fns;
}

/* ------------------------------------------------------------------------ */
/* Binding                                                                    */

static int noop_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    return 0;
}

START_TEST(test_bind_validation)
{
    sf_functions_t *fns;
    sf_value_spec_t dup[] = {SF_SPEC_INT("a"), SF_SPEC_LONG("a")};
    sf_value_spec_t neg[] = {{"a", SF_TYPE_INT, SF_EXPIRE_AFTER_WRITE, -1}};
    sf_value_spec_t notype[] = {{"a", "", SF_EXPIRE_NONE, 0}};
    sf_value_spec_t noname[] = {{NULL, SF_TYPE_INT, SF_EXPIRE_NONE, 0}};
    sf_value_spec_t badmode[] = {{"a", SF_TYPE_INT, (sf_expire_mode)7, 0}};

    ck_assert_int_eq(sf_functions_new(NULL, NULL), SF_EINVAL);
    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "nons", noop_fn, NULL, NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "/x", noop_fn, NULL, NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "x/", noop_fn, NULL, NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b/c", noop_fn, NULL, NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", NULL, NULL, NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, NULL, 1), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, dup, 2), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, neg, 1), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, notype, 1), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, noname, 1), SF_EINVAL);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, badmode, 1), SF_EINVAL);
    ck_assert_uint_eq(sf_functions_count(fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, dup, 1), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "a/b", noop_fn, NULL, NULL, 0), SF_EEXIST);
    ck_assert_int_eq(sf_functions_bind(fns, "a/c", noop_fn, NULL, NULL, 0), 0);
    ck_assert_uint_eq(sf_functions_count(fns), 2);
    ck_assert_str_eq(sf_functions_type(fns, 0), "a/b");
    ck_assert_str_eq(sf_functions_type(fns, 1), "a/c");
    ck_assert_ptr_null(sf_functions_type(fns, 2));
    ck_assert_ptr_nonnull(sf__functions_find(fns, "a", "c"));
    ck_assert_ptr_null(sf__functions_find(fns, "a", "d"));
    ck_assert_ptr_null(sf__functions_find(fns, "", "a/b"));
    sf_functions_free(fns);
    sf_functions_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* IncompleteInvocationContext                                                */

START_TEST(test_missing_state_lists_every_missing_spec)
{
    counter_log_t log = {{0}, 0};
    sf_functions_t *fns = counter_registry(&log);
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_pb_incomplete_context_t *ic;
    req_t r;

    sf_arena_init(&arena, NULL);
    req_init(&r, "t.fns", "counter", "x");
    /* "last" is present (empty), the other three are missing. */
    req_state(&r, "last", SF_TYPE_STRING, NULL);
    req_state(&r, "unrelated", SF_TYPE_INT, NULL);
    req_invoke_string(&r, NULL, "hi");
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, NULL, 0), 0);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_INCOMPLETE);
    ic = ff->incomplete_invocation_context;
    ck_assert_uint_eq(ic->n_missing_values, 3);
    ck_assert_str_eq(ic->missing_values[0]->state_name, "count");
    ck_assert_str_eq(ic->missing_values[0]->type_typename, SF_TYPE_INT);
    ck_assert_int_eq(ic->missing_values[0]->expiration_spec->mode, SF_PB_EXPIRE_NONE);
    ck_assert_str_eq(ic->missing_values[1]->state_name, "gone");
    ck_assert_str_eq(ic->missing_values[1]->type_typename, "com.example/Blob");
    ck_assert_int_eq(ic->missing_values[1]->expiration_spec->mode, SF_PB_EXPIRE_AFTER_INVOKE);
    ck_assert_int_eq(ic->missing_values[1]->expiration_spec->expire_after_millis, 5000);
    ck_assert_str_eq(ic->missing_values[2]->state_name, "kept");
    /* The function did not run. */
    ck_assert_int_eq(log.calls, 0);

    req_dispose(&r);
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Mutations and batches                                                      */

START_TEST(test_batch_carries_state_and_mutates_only_changes)
{
    counter_log_t log = {{0}, 0};
    sf_functions_t *fns = counter_registry(&log);
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_pb_invocation_response_t *res;
    sf_buf_t blob;
    req_t r;

    sf_arena_init(&arena, NULL);
    sf_buf_init(&blob, NULL);
    sf_buf_append(&blob, "\x01\x02", 2);
    req_init(&r, "t.fns", "counter", "alice");
    req_state_int(&r, "count", 5);
    req_state(&r, "last", SF_TYPE_STRING, NULL);
    req_state(&r, "gone", "com.example/Blob", &blob);
    req_state_int(&r, "kept", 42);
    req_invoke_string(&r, NULL, "one");
    req_invoke_string(&r, "t.fns/other/bob", "two");
    req_invoke_string(&r, NULL, "three");
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, NULL, 0), 0);
    ck_assert_int_eq(log.calls, 3);
    /* Each call saw the count the previous one wrote, and the right caller. */
    ck_assert_str_eq(log.log, "[t.fns/counter/alice ingress one 5]"
                              "[t.fns/counter/alice bob two 6]"
                              "[t.fns/counter/alice ingress three 7]");
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
    res = ff->invocation_result;
    /* count modified, last modified, gone deleted; kept untouched. */
    ck_assert_uint_eq(res->n_state_mutations, 3);
    ck_assert_str_eq(res->state_mutations[0]->state_name, "count");
    ck_assert_int_eq(res->state_mutations[0]->mutation_type, SF_PB_MUTATION_MODIFY);
    ck_assert_int_eq(res->state_mutations[0]->state_value->has_value, 1);
    ck_assert_int_eq(decode_int(res->state_mutations[0]->state_value), 8);
    ck_assert_str_eq(res->state_mutations[1]->state_name, "last");
    ck_assert_str_eq(decode_str(&arena, res->state_mutations[1]->state_value), "three");
    ck_assert_str_eq(res->state_mutations[2]->state_name, "gone");
    ck_assert_int_eq(res->state_mutations[2]->mutation_type, SF_PB_MUTATION_DELETE);
    ck_assert_uint_eq(res->n_outgoing_messages, 0);
    ck_assert_uint_eq(res->n_delayed_invocations, 0);
    ck_assert_uint_eq(res->n_outgoing_egresses, 0);

    req_dispose(&r);
    sf_buf_dispose(&blob);
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* t.fns/same: writes back exactly what its states hold. "plain" has no TTL
 * (no mutation is needed), "ttl" has one (the write refreshes it). "empty" is
 * deleted while empty (no mutation). */
static int same_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    int32_t v;
    const uint8_t *d;
    size_t n;
    ck_assert_int_eq(sf_storage_get_int(ctx, "plain", &v), 0);
    ck_assert_int_eq(sf_storage_set_int(ctx, "plain", v), 0);
    ck_assert_int_eq(sf_storage_get(ctx, "ttl", &d, &n), 0);
    ck_assert_int_eq(sf_storage_set(ctx, "ttl", d, n), 0);
    ck_assert_int_eq(sf_storage_get(ctx, "empty", &d, &n), SF_EMPTY);
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(sf_storage_delete(ctx, "empty"), 0);
    /* Errors a callback can meet. */
    ck_assert_int_eq(sf_storage_get_int(ctx, "nope", &v), SF_ENOTFOUND);
    ck_assert_int_eq(sf_storage_set_int(ctx, "nope", 1), SF_ENOTFOUND);
    ck_assert_int_eq(sf_storage_delete(ctx, "nope"), SF_ENOTFOUND);
    ck_assert_int_eq(sf_storage_set_long(ctx, "plain", 1), SF_EINVAL);
    {
        int64_t l;
        ck_assert_int_eq(sf_storage_get_long(ctx, "plain", &l), SF_EINVAL);
    }
    return 0;
}

START_TEST(test_rewriting_same_value)
{
    sf_value_spec_t specs[] = {
        SF_SPEC_INT("plain"),
        {"ttl", SF_TYPE_INT, SF_EXPIRE_AFTER_WRITE, 1000},
        SF_SPEC_STRING("empty"),
    };
    sf_functions_t *fns;
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    req_t r;

    sf_arena_init(&arena, NULL);
    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/same", same_fn, NULL, specs, 3), 0);
    req_init(&r, "t.fns", "same", "x");
    req_state_int(&r, "plain", 3);
    req_state_int(&r, "ttl", 4);
    req_state(&r, "empty", SF_TYPE_STRING, NULL);
    req_invoke_string(&r, NULL, "go");
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, NULL, 0), 0);
    ck_assert_uint_eq(ff->invocation_result->n_state_mutations, 1);
    ck_assert_str_eq(ff->invocation_result->state_mutations[0]->state_name, "ttl");
    ck_assert_int_eq(decode_int(ff->invocation_result->state_mutations[0]->state_value), 4);
    req_dispose(&r);
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Outgoing messages of every kind                                            */

static int sender_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    static const char blob[] = {0, 1, 2, 3};
    char id[8] = "bob";
    ck_assert_int_eq(sf_send(ctx, "t.fns/raw", "r/1", "com.example/Blob", blob, 4), 0);
    ck_assert_int_eq(sf_send_bool(ctx, "t.fns/b", "1", true), 0);
    ck_assert_int_eq(sf_send_int(ctx, "t.fns/i", "1", -7), 0);
    ck_assert_int_eq(sf_send_long(ctx, "t.fns/l", "1", INT64_C(1) << 40), 0);
    ck_assert_int_eq(sf_send_float(ctx, "t.fns/f", "1", 0.5f), 0);
    ck_assert_int_eq(sf_send_double(ctx, "t.fns/d", "1", -0.25), 0);
    ck_assert_int_eq(sf_send_string(ctx, "t.fns/s", id, "héllo"), 0);
    memset(id, 'z', sizeof id - 1); /* the SDK copied it */
    ck_assert_int_eq(
        sf_send_after(ctx, 1500, "t.fns/later", "1", "tok-1", "com.example/Blob", blob, 4), 0);
    ck_assert_int_eq(sf_send_after_string(ctx, 0, "t.fns/later", "2", NULL, "now"), 0);
    ck_assert_int_eq(sf_cancel_delayed(ctx, "tok-1"), 0);
    ck_assert_int_eq(sf_send_egress(ctx, "t.io/out", "com.example/Blob", blob, 4), 0);
    ck_assert_int_eq(sf_send_egress_playground(ctx, NULL, "greetings", "say \"hi\" <\\>\n", 13), 0);
    ck_assert_int_eq(sf_send_egress_kafka(ctx, "t.io/kafka", "topic-a", "key-1", "v", 1), 0);
    ck_assert_int_eq(sf_send_egress_kafka(ctx, "t.io/kafka", "topic-b", NULL, NULL, 0), 0);

    /* Misuse is reported, and nothing is added. */
    ck_assert_int_eq(sf_send(ctx, "nons", "1", "a/b", NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_send(ctx, "a/b", "", "a/b", NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_send(ctx, "a/b", NULL, "a/b", NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_send(ctx, "a/b", "1", "a/b", NULL, 3), SF_EINVAL);
    ck_assert_int_eq(sf_send(ctx, "a/b", "1", "", NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_send_string(ctx, "a/b", "1", NULL), SF_EINVAL);
    ck_assert_int_eq(sf_send_after(ctx, -1, "a/b", "1", NULL, "a/b", NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_cancel_delayed(ctx, ""), SF_EINVAL);
    ck_assert_int_eq(sf_cancel_delayed(ctx, NULL), SF_EINVAL);
    ck_assert_int_eq(sf_send_egress(ctx, "noslash", "a/b", NULL, 0), SF_EINVAL);
    ck_assert_int_eq(sf_send_egress_playground(ctx, NULL, "t", "\xff\xfe", 2), SF_EINVAL);
    ck_assert_int_eq(sf_send_egress_playground(ctx, NULL, "", "x", 1), SF_EINVAL);
    ck_assert_int_eq(sf_send_egress_kafka(ctx, NULL, "t", NULL, NULL, 0), SF_EINVAL);
    return 0;
}

START_TEST(test_every_kind_of_outgoing_message)
{
    sf_functions_t *fns;
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_pb_invocation_response_t *res;
    sf_pb_from_invocation_t **m;
    sf_pb_delayed_invocation_t **d;
    sf_pb_egress_message_t **e;
    req_t r;
    bool b;
    int64_t l;
    float f;
    double dd;

    sf_arena_init(&arena, NULL);
    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/sender", sender_fn, NULL, NULL, 0), 0);
    req_init(&r, "t.fns", "sender", "x");
    req_invoke_string(&r, NULL, "go");
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, NULL, 0), 0);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
    res = ff->invocation_result;
    ck_assert_uint_eq(res->n_state_mutations, 0);

    ck_assert_uint_eq(res->n_outgoing_messages, 7);
    m = res->outgoing_messages;
    ck_assert_str_eq(m[0]->target->namespace_, "t.fns");
    ck_assert_str_eq(m[0]->target->type, "raw");
    ck_assert_str_eq(m[0]->target->id, "r/1");
    ck_assert_str_eq(m[0]->argument->typename_, "com.example/Blob");
    ck_assert_uint_eq(m[0]->argument->value.len, 4);
    ck_assert_int_eq(memcmp(m[0]->argument->value.data, "\0\1\2\3", 4), 0);
    ck_assert_str_eq(m[1]->argument->typename_, SF_TYPE_BOOL);
    ck_assert_int_eq(
        sf_proto_decode_bool(m[1]->argument->value.data, m[1]->argument->value.len, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(decode_int(m[2]->argument), -7);
    ck_assert_str_eq(m[3]->argument->typename_, SF_TYPE_LONG);
    ck_assert_int_eq(
        sf_proto_decode_long(m[3]->argument->value.data, m[3]->argument->value.len, &l), 0);
    ck_assert(l == INT64_C(1) << 40);
    ck_assert_str_eq(m[4]->argument->typename_, SF_TYPE_FLOAT);
    ck_assert_int_eq(
        sf_proto_decode_float(m[4]->argument->value.data, m[4]->argument->value.len, &f), 0);
    ck_assert(f == 0.5f);
    ck_assert_str_eq(m[5]->argument->typename_, SF_TYPE_DOUBLE);
    ck_assert_int_eq(
        sf_proto_decode_double(m[5]->argument->value.data, m[5]->argument->value.len, &dd), 0);
    ck_assert(dd == -0.25);
    ck_assert_str_eq(m[6]->target->id, "bob");
    ck_assert_str_eq(decode_str(&arena, m[6]->argument), "héllo");

    ck_assert_uint_eq(res->n_delayed_invocations, 3);
    d = res->delayed_invocations;
    ck_assert_int_eq(d[0]->delay_in_ms, 1500);
    ck_assert_str_eq(d[0]->cancellation_token, "tok-1");
    ck_assert_int_eq(d[0]->is_cancellation_request, 0);
    ck_assert_str_eq(d[0]->target->type, "later");
    ck_assert_str_eq(d[0]->argument->typename_, "com.example/Blob");
    ck_assert_int_eq(d[1]->delay_in_ms, 0);
    ck_assert_str_eq(d[1]->cancellation_token, "");
    ck_assert_str_eq(decode_str(&arena, d[1]->argument), "now");
    ck_assert_int_eq(d[2]->is_cancellation_request, 1);
    ck_assert_str_eq(d[2]->cancellation_token, "tok-1");
    ck_assert_ptr_null(d[2]->target);

    ck_assert_uint_eq(res->n_outgoing_egresses, 4);
    e = res->outgoing_egresses;
    ck_assert_str_eq(e[0]->egress_namespace, "t.io");
    ck_assert_str_eq(e[0]->egress_type, "out");
    ck_assert_str_eq(e[1]->egress_namespace, "io.statefun.playground");
    ck_assert_str_eq(e[1]->egress_type, "egress");
    ck_assert_str_eq(e[1]->argument->typename_, SF_TYPE_PLAYGROUND_EGRESS_RECORD);
    {
        /* Parse the record as JSON, as the playground egress does. */
        json_error_t err;
        json_t *j = json_loadb((const char *)e[1]->argument->value.data, e[1]->argument->value.len,
                               0, &err);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "topic")), "greetings");
        ck_assert_str_eq(json_string_value(json_object_get(j, "payload")), "say \"hi\" <\\>\n");
        json_decref(j);
    }
    ck_assert_str_eq(e[2]->argument->typename_, SF_TYPE_KAFKA_PRODUCER_RECORD);
    {
        sf_pb_kafka_record_t *k = io__statefun__sdk__egress__kafka_producer_record__unpack(
            NULL, e[2]->argument->value.len, e[2]->argument->value.data);
        ck_assert_ptr_nonnull(k);
        ck_assert_str_eq(k->topic, "topic-a");
        ck_assert_str_eq(k->key, "key-1");
        ck_assert_uint_eq(k->value_bytes.len, 1);
        ck_assert_int_eq(k->value_bytes.data[0], 'v');
        io__statefun__sdk__egress__kafka_producer_record__free_unpacked(k, NULL);
        k = io__statefun__sdk__egress__kafka_producer_record__unpack(
            NULL, e[3]->argument->value.len, e[3]->argument->value.data);
        ck_assert_ptr_nonnull(k);
        ck_assert_str_eq(k->topic, "topic-b");
        ck_assert_str_eq(k->key, "");
        ck_assert_uint_eq(k->value_bytes.len, 0);
        io__statefun__sdk__egress__kafka_producer_record__free_unpacked(k, NULL);
    }

    req_dispose(&r);
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Message helpers                                                            */

static int types_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    int32_t i;
    int64_t l;
    bool b;
    float f;
    double d;
    const char *s;
    size_t n;
    int *seen = ud;
    const uint8_t *data = sf_message_data(msg, &n);
    (void)data;
    (*seen)++;
    if (sf_message_is_int(msg)) {
        ck_assert_int_eq(sf_message_as_int(msg, &i), 0);
        ck_assert_int_eq(i, 12);
        ck_assert_int_eq(sf_message_as_string(msg, &s, &n), SF_EINVAL);
        ck_assert_int_eq(sf_message_as_long(msg, &l), SF_EINVAL);
        ck_assert(!sf_message_is_string(msg));
    } else if (sf_message_is_long(msg)) {
        ck_assert_int_eq(sf_message_as_long(msg, &l), 0);
    } else if (sf_message_is_bool(msg)) {
        ck_assert_int_eq(sf_message_as_bool(msg, &b), 0);
    } else if (sf_message_is_float(msg)) {
        ck_assert_int_eq(sf_message_as_float(msg, &f), 0);
    } else if (sf_message_is_double(msg)) {
        ck_assert_int_eq(sf_message_as_double(msg, &d), 0);
    } else if (sf_message_is_string(msg)) {
        /* A malformed string wrapper is reported, not a crash. */
        ck_assert_int_eq(sf_message_as_string(msg, &s, &n), SF_EPROTO);
    } else {
        ck_assert(sf_message_is(msg, "com.example/Thing"));
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(sf_message_as_int(msg, &i), SF_EINVAL);
    }
    return 0;
}

START_TEST(test_message_helpers)
{
    sf_functions_t *fns;
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_buf_t b, junk, thing;
    int seen = 0;
    req_t r;

    sf_arena_init(&arena, NULL);
    sf_buf_init(&b, NULL);
    sf_buf_init(&junk, NULL);
    sf_buf_init(&thing, NULL);
    sf_buf_append(&junk, "\x0a\x05zz", 4); /* length 5 with 2 bytes */
    sf_buf_append(&thing, "abc", 3);
    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/types", types_fn, &seen, NULL, 0), 0);
    req_init(&r, "t.fns", "types", "x");
    ck_assert_int_eq(sf_proto_encode_int(12, &b), 0);
    req_invoke(&r, NULL, SF_TYPE_INT, &b);
    req_invoke(&r, NULL, SF_TYPE_STRING, &junk);
    req_invoke(&r, NULL, "com.example/Thing", &thing);
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, NULL, 0), 0);
    ck_assert_int_eq(seen, 3);
    req_dispose(&r);
    sf_buf_dispose(&b);
    sf_buf_dispose(&junk);
    sf_buf_dispose(&thing);
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

static int failing_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    sf_storage_set_int(ctx, "n", 1);
    return 7;
}

START_TEST(test_unknown_type_and_failing_function)
{
    counter_log_t log = {{0}, 0};
    sf_functions_t *fns = counter_registry(&log);
    sf_value_spec_t n[] = {SF_SPEC_INT("n")};
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    char reason[256];
    req_t r;

    sf_arena_init(&arena, NULL);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/failing", failing_fn, NULL, n, 1), 0);
    req_init(&r, "t.fns", "nobody", "x");
    req_invoke_string(&r, NULL, "go");
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, reason, sizeof reason), SF_ENOTFOUND);
    ck_assert_str_eq(reason, "no function bound for type t.fns/nobody");
    req_dispose(&r);

    req_init(&r, "t.fns", "failing", "x");
    req_state(&r, "n", SF_TYPE_INT, NULL);
    req_invoke_string(&r, NULL, "go");
    ck_assert_int_eq(run_bytes(fns, &r, &arena, &ff, reason, sizeof reason), SF_EFUNCTION);
    ck_assert_str_eq(reason, "function t.fns/failing failed: callback error");
    req_dispose(&r);

    /* A request without a batch. */
    {
        sf_pb_to_function_t empty = SF_PB_TO_FUNCTION_INIT;
        const char *why;
        ck_assert_int_eq(sf_functions_invoke_pb(fns, &empty, &arena, &ff, &why), SF_EPROTO);
        ck_assert_ptr_null(ff);
        ck_assert_int_eq(sf_functions_invoke_pb(fns, NULL, &arena, &ff, NULL), SF_EPROTO);
    }
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* The struct entry point: the result must not point into the request. */
START_TEST(test_invoke_pb_result_independent_of_request)
{
    counter_log_t log = {{0}, 0};
    sf_functions_t *fns = counter_registry(&log);
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_pb_to_function_t *tf;
    sf_arena_t decode;
    sf_buf_t in, out, blob;
    const char *why;
    req_t r;

    sf_arena_init(&arena, NULL);
    sf_arena_init(&decode, NULL);
    sf_buf_init(&out, NULL);
    sf_buf_init(&blob, NULL);
    sf_buf_append(&blob, "\x01", 1);
    req_init(&r, "t.fns", "counter", "alice");
    req_state_int(&r, "count", 1);
    req_state(&r, "last", SF_TYPE_STRING, NULL);
    req_state(&r, "gone", "com.example/Blob", &blob);
    req_state(&r, "kept", SF_TYPE_INT, NULL);
    req_invoke_string(&r, NULL, "hello");
    req_pack(&r, &in);
    req_dispose(&r);
    tf = sf_proto_to_function_unpack(&decode, in.base, in.len);
    ck_assert_ptr_nonnull(tf);
    ck_assert_int_eq(sf_functions_invoke_pb(fns, tf, &arena, &ff, &why), 0);
    /* Release the request, then use the result: ASan/valgrind would see it. */
    sf_arena_dispose(&decode);
    memset(in.base, 0xaa, in.len);
    sf_buf_dispose(&in);
    ck_assert_int_eq(sf_proto_from_function_pack(ff, &out), 0);
    ck_assert_uint_eq(ff->invocation_result->n_state_mutations, 3);
    ck_assert_str_eq(decode_str(&arena, ff->invocation_result->state_mutations[1]->state_value),
                     "hello");
    sf_buf_dispose(&out);
    sf_buf_dispose(&blob);
    sf_arena_dispose(&arena);
    sf_functions_free(fns);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Malformed input                                                            */

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Like counter_fn, but checks nothing: the request may be anything. */
static int lenient_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    int32_t count = 0;
    const char *s = "";
    size_t slen = 0;
    int rv;
    if ((rv = sf_storage_get_int(ctx, "count", &count)) < 0)
        return rv;
    if (sf_message_as_string(msg, &s, &slen) != 0)
        s = "";
    if (sf_caller(ctx))
        sf_send_string(ctx, "t.fns/echo", sf_caller(ctx)->id, s);
    sf_storage_set_int(ctx, "count", count + 1);
    sf_storage_set_string(ctx, "last", s, strlen(s));
    sf_storage_delete(ctx, "gone");
    return 0;
}

static void invoke_any(sf_handler_t *inv, const uint8_t *data, size_t len)
{
    const uint8_t *out;
    size_t out_len;
    int rv = sf_handler_invoke(inv, data, len, &out, &out_len);
    ck_assert_msg(rv == 0 || rv == SF_EPROTO || rv == SF_ENOTFOUND || rv == SF_EFUNCTION, "rv %d",
                  rv);
    if (rv != 0)
        ck_assert_ptr_nonnull(sf_handler_reason(inv));
}

START_TEST(test_malformed_requests_never_crash)
{
    sf_functions_t *fns;
    sf_handler_t *inv;
    sf_buf_t in;
    uint8_t buf[512];
    const uint8_t *out;
    size_t out_len, i, len;
    req_t r;

    ck_assert_int_eq(sf_functions_new(NULL, &fns), 0);
    ck_assert_int_eq(sf_functions_bind(fns, "t.fns/counter", lenient_fn, NULL, counter_specs,
                                       SF_ARRAY_SIZE(counter_specs)),
                     0);
    ck_assert_int_eq(sf_handler_new(fns, &inv), 0);
    /* Empty and obviously wrong bodies. */
    ck_assert_int_eq(sf_handler_invoke(inv, NULL, 0, &out, &out_len), SF_EPROTO);
    ck_assert_str_eq(sf_handler_reason(inv), "the request carries no invocation batch");
    ck_assert_int_eq(
        sf_handler_invoke(inv, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, &out, &out_len),
        SF_EPROTO);
    ck_assert_str_eq(sf_handler_reason(inv), "malformed request: not a ToFunction message");

    /* A valid request, truncated at every length and with bytes flipped. */
    req_init(&r, "t.fns", "counter", "alice");
    req_state_int(&r, "count", 1);
    req_state(&r, "last", SF_TYPE_STRING, NULL);
    req_state(&r, "gone", "com.example/Blob", NULL);
    req_state(&r, "kept", SF_TYPE_INT, NULL);
    req_invoke_string(&r, NULL, "hello");
    req_invoke_string(&r, "a/b/c", "world");
    req_pack(&r, &in);
    req_dispose(&r);
    invoke_any(inv, in.base, in.len);
    for (len = 0; len < in.len; len++)
        invoke_any(inv, in.base, len);
    for (i = 0; i < 4000; i++) {
        uint8_t *copy = malloc(in.len);
        size_t k, flips = 1 + rng() % 4;
        memcpy(copy, in.base, in.len);
        for (k = 0; k < flips; k++)
            copy[rng() % in.len] ^= (uint8_t)(1u << (rng() % 8));
        invoke_any(inv, copy, in.len);
        free(copy);
    }
    /* Random garbage. */
    for (i = 0; i < 4000; i++) {
        size_t k;
        len = rng() % sizeof buf;
        for (k = 0; k < len; k++)
            buf[k] = (uint8_t)rng();
        /* Half of them start like a ToFunction (field 100, length-delimited). */
        if (len > 3 && (i & 1)) {
            buf[0] = 0xa2;
            buf[1] = 0x06;
            buf[2] = (uint8_t)(len - 3 < 127 ? len - 3 : 127);
        }
        invoke_any(inv, buf, len);
    }
    sf_handler_free(inv);
    sf_buf_dispose(&in);
    sf_functions_free(fns);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Allocation failures                                                        */

/* A function exercising state, every send kind and strings. */
static int busy_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    int32_t n = 0;
    const char *s;
    int rv;
    if ((rv = sf_storage_get_int(ctx, "n", &n)) < 0)
        return rv;
    if ((rv = sf_message_as_string(msg, &s, NULL)) < 0)
        return rv;
    if ((rv = sf_storage_set_int(ctx, "n", n + 1)) < 0 ||
        (rv = sf_storage_set_string(ctx, "s", s, strlen(s))) < 0 ||
        (rv = sf_send_string(ctx, "t.fns/peer", sf_self(ctx)->id, s)) < 0 ||
        (rv = sf_send_int(ctx, "t.fns/peer", "x", n)) < 0 ||
        (rv = sf_send_after_string(ctx, 10, "t.fns/peer", "y", "tok", s)) < 0 ||
        (rv = sf_cancel_delayed(ctx, "tok")) < 0 ||
        (rv = sf_send_egress_kafka(ctx, "t.io/k", "t", "k", s, strlen(s))) < 0 ||
        (rv = sf_send_egress(ctx, "t.io/e", "a/b", s, strlen(s))) < 0)
        return rv;
    return 0;
}

/* Like busy_fn, but ignores every error: the SDK must still fail the batch
 * when something was lost for lack of memory. */
static int careless_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *ud)
{
    char big[1000];
    int32_t n = 0;
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sf_storage_get_int(ctx, "n", &n);
    sf_storage_set_int(ctx, "n", n + 1);
    sf_send_string(ctx, "t.fns/peer", sf_self(ctx)->id, big);
    sf_send_after_string(ctx, 10, "t.fns/peer", "y", "tok", "later");
    sf_send_egress_playground(ctx, NULL, "topic", "payload", 7);
    return 0;
}

/* One whole scenario with allocator |mem|: registry, handler, a request
 * missing state, then a complete batch. Returns the first error or 0. */
static int failmalloc_scenario(const sf_mem *mem, const sf_buf_t *missing, const sf_buf_t *full,
                               const sf_buf_t *careless)
{
    static const sf_value_spec_t specs[] = {
        SF_SPEC_INT("n"),
        {"s", SF_TYPE_STRING, SF_EXPIRE_AFTER_WRITE, 100},
    };
    sf_functions_t *fns = NULL;
    sf_handler_t *inv = NULL;
    const uint8_t *out;
    size_t out_len;
    int rv;

    if ((rv = sf_functions_new(mem, &fns)) != 0)
        return rv;
    if ((rv = sf_functions_bind(fns, "t.fns/busy", busy_fn, NULL, specs, 2)) != 0)
        goto out;
    if ((rv = sf_functions_bind(fns, "t.fns/other", noop_fn, NULL, specs, 1)) != 0)
        goto out;
    if ((rv = sf_functions_bind(fns, "t.fns/careless", careless_fn, NULL, specs, 2)) != 0)
        goto out;
    if ((rv = sf_handler_new(fns, &inv)) != 0)
        goto out;
    if ((rv = sf_handler_invoke(inv, missing->base, missing->len, &out, &out_len)) != 0)
        goto out;
    if ((rv = sf_handler_invoke(inv, full->base, full->len, &out, &out_len)) != 0)
        goto out;
    /* A fresh handler, so that the careless batch allocates arena chunks
     * while the callbacks run. */
    sf_handler_free(inv);
    if ((rv = sf_handler_new(fns, &inv)) != 0)
        goto out;
    rv = sf_handler_invoke(inv, careless->base, careless->len, &out, &out_len);
out:
    sf_handler_free(inv);
    sf_functions_free(fns);
    return rv;
}

START_TEST(test_failmalloc_every_allocation)
{
    sf_test_failmalloc_t fm;
    sf_buf_t missing, full, careless;
    long n;
    req_t r;

    sf_test_failmalloc_init(&fm);
    req_init(&r, "t.fns", "busy", "alice");
    req_invoke_string(&r, NULL, "one");
    req_pack(&r, &missing);
    req_dispose(&r);
    req_init(&r, "t.fns", "busy", "alice");
    req_state_int(&r, "n", 1);
    req_state(&r, "s", SF_TYPE_STRING, NULL);
    /* Enough invocations that the arena needs several chunks. */
    for (n = 0; n < 16; n++) {
        char big[600];
        memset(big, 'a' + (int)n, sizeof big - 1);
        big[sizeof big - 1] = '\0';
        req_invoke_string(&r, n % 2 ? "t.fns/x/y" : NULL, big);
    }
    req_pack(&r, &full);
    req_dispose(&r);
    req_init(&r, "t.fns", "careless", "bob");
    req_state_int(&r, "n", 1);
    req_state(&r, "s", SF_TYPE_STRING, NULL);
    for (n = 0; n < 15; n++)
        req_invoke_string(&r, NULL, "x");
    req_pack(&r, &careless);
    req_dispose(&r);

    /* Without failures it works. */
    ck_assert_int_eq(failmalloc_scenario(&fm.mem, &missing, &full, &careless), 0);
    ck_assert_int_eq(fm.live, 0);

    /* Fail the Nth allocation for every N until a run sees no failure. */
    for (n = 0;; n++) {
        int rv;
        fm.countdown = n;
        fm.failures = 0;
        rv = failmalloc_scenario(&fm.mem, &missing, &full, &careless);
        ck_assert_int_eq(fm.live, 0);
        if (fm.failures == 0) {
            ck_assert_int_eq(rv, 0);
            break;
        }
        ck_assert_msg(rv == SF_ENOMEM, "allocation %ld failed, got %d", n, rv);
    }
    ck_assert_int_gt(n, 10);
    sf_buf_dispose(&missing);
    sf_buf_dispose(&full);
    sf_buf_dispose(&careless);
}
END_TEST

Suite *sf_sdk_core_suite(void)
{
    Suite *s = suite_create("sdk_core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bind_validation);
    tcase_add_test(tc, test_missing_state_lists_every_missing_spec);
    tcase_add_test(tc, test_batch_carries_state_and_mutates_only_changes);
    tcase_add_test(tc, test_rewriting_same_value);
    tcase_add_test(tc, test_every_kind_of_outgoing_message);
    tcase_add_test(tc, test_message_helpers);
    tcase_add_test(tc, test_unknown_type_and_failing_function);
    tcase_add_test(tc, test_invoke_pb_result_independent_of_request);
    tcase_add_test(tc, test_malformed_requests_never_crash);
    tcase_add_test(tc, test_failmalloc_every_allocation);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
