/* statefun-c: Apache License 2.0.
 *
 * Tests of protocol/sf_proto.c: round trips of every message, built-in types,
 * addresses, the arena, and malformed input.
 */
#include <check.h>
#include <string.h>

#include "failmalloc.h"
#include "sf_proto.h"

START_TEST(test_builtin_roundtrip)
{
    sf_buf_t b;
    int32_t i;
    int64_t l;
    bool bo;
    float f;
    double d;
    char *s;
    size_t slen;
    sf_arena_t arena;

    sf_buf_init(&b, NULL);
    sf_arena_init(&arena, NULL);

    ck_assert_int_eq(sf_proto_encode_int(-42, &b), 0);
    /* IntWrapper is sfixed32: tag 0x0d then 4 little-endian bytes. */
    ck_assert_uint_eq(b.len, 5);
    ck_assert_uint_eq(b.base[0], 0x0d);
    ck_assert_int_eq(sf_proto_decode_int(b.base, b.len, &i), 0);
    ck_assert_int_eq(i, -42);

    sf_buf_reset(&b);
    ck_assert_int_eq(sf_proto_encode_long(INT64_C(1) << 40, &b), 0);
    ck_assert_int_eq(sf_proto_decode_long(b.base, b.len, &l), 0);
    ck_assert(l == INT64_C(1) << 40);

    sf_buf_reset(&b);
    ck_assert_int_eq(sf_proto_encode_bool(true, &b), 0);
    ck_assert_int_eq(sf_proto_decode_bool(b.base, b.len, &bo), 0);
    ck_assert(bo);

    sf_buf_reset(&b);
    ck_assert_int_eq(sf_proto_encode_float(1.5f, &b), 0);
    ck_assert_int_eq(sf_proto_decode_float(b.base, b.len, &f), 0);
    ck_assert(f == 1.5f);

    sf_buf_reset(&b);
    ck_assert_int_eq(sf_proto_encode_double(-2.25, &b), 0);
    ck_assert_int_eq(sf_proto_decode_double(b.base, b.len, &d), 0);
    ck_assert(d == -2.25);

    sf_buf_reset(&b);
    ck_assert_int_eq(sf_proto_encode_string("héllo", strlen("héllo"), &b), 0);
    ck_assert_int_eq(sf_proto_decode_string(&arena, b.base, b.len, &s, &slen), 0);
    ck_assert_str_eq(s, "héllo");
    ck_assert_uint_eq(slen, strlen("héllo"));

    /* Zero encodes as the empty message (proto3 default) and decodes back. */
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_proto_encode_int(0, &b), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(sf_proto_decode_int(b.base, b.len, &i), 0);
    ck_assert_int_eq(i, 0);

    /* Garbage is an error, not a crash. */
    {
        static const uint8_t junk[] = {0x0d, 0x01};
        ck_assert_int_eq(sf_proto_decode_int(junk, sizeof junk, &i), SF_EPROTO);
    }

    sf_arena_dispose(&arena);
    sf_buf_dispose(&b);
}
END_TEST

START_TEST(test_to_function_roundtrip)
{
    sf_pb_to_function_t tf = SF_PB_TO_FUNCTION_INIT, *out;
    sf_pb_batch_request_t batch = SF_PB_BATCH_REQUEST_INIT;
    sf_pb_address_t target = SF_PB_ADDRESS_INIT, caller = SF_PB_ADDRESS_INIT;
    sf_pb_persisted_value_t pv = SF_PB_PERSISTED_VALUE_INIT, *pvs[1] = {&pv};
    sf_pb_typed_value_t sv = SF_PB_TYPED_VALUE_INIT, arg = SF_PB_TYPED_VALUE_INIT;
    sf_pb_to_invocation_t inv = SF_PB_TO_INVOCATION_INIT, *invs[1] = {&inv};
    sf_buf_t b;
    sf_arena_t arena;

    target.namespace_ = "example";
    target.type = "greeter";
    target.id = "alice";
    caller = target;
    caller.id = "bob";
    sv.typename_ = SF_TYPE_INT;
    sv.has_value = 0;
    pv.state_name = "seen";
    pv.state_value = &sv;
    arg.typename_ = SF_TYPE_STRING;
    arg.has_value = 1;
    arg.value.data = (uint8_t *)"\x0a\x05" "alice";
    arg.value.len = 7;
    inv.caller = &caller;
    inv.argument = &arg;
    batch.target = &target;
    batch.n_state = 1;
    batch.state = pvs;
    batch.n_invocations = 1;
    batch.invocations = invs;
    tf.request_case = SF_PB_TO_FUNCTION_INVOCATION;
    tf.invocation = &batch;

    sf_buf_init(&b, NULL);
    sf_arena_init(&arena, NULL);
    ck_assert_int_eq(sf_proto_to_function_pack(&tf, &b), 0);
    out = sf_proto_to_function_unpack(&arena, b.base, b.len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(out->request_case, SF_PB_TO_FUNCTION_INVOCATION);
    ck_assert(sf_proto_address_equal(out->invocation->target, &target));
    ck_assert_uint_eq(out->invocation->n_state, 1);
    ck_assert_str_eq(out->invocation->state[0]->state_name, "seen");
    ck_assert(!out->invocation->state[0]->state_value->has_value);
    ck_assert_str_eq(out->invocation->invocations[0]->caller->id, "bob");
    ck_assert_uint_eq(out->invocation->invocations[0]->argument->value.len, 7);
    ck_assert(sf_arena_used(&arena) > 0);

    /* Truncated input never parses. */
    ck_assert_ptr_null(sf_proto_to_function_unpack(&arena, b.base, b.len - 1));
    sf_arena_reset(&arena);
    ck_assert_uint_eq(sf_arena_used(&arena), 0);
    sf_arena_dispose(&arena);
    sf_buf_dispose(&b);
}
END_TEST

START_TEST(test_address_parse)
{
    sf_arena_t arena;
    sf_pb_address_t a;
    char *ns, *name;
    sf_arena_init(&arena, NULL);
    ck_assert_int_eq(sf_proto_address_parse(&arena, "ns/t/id/with/slash", 18, &a), 0);
    ck_assert_str_eq(a.namespace_, "ns");
    ck_assert_str_eq(a.type, "t");
    ck_assert_str_eq(a.id, "id/with/slash");
    ck_assert_int_eq(sf_proto_address_parse(&arena, "ns/t/", 5, &a), SF_EINVAL);
    ck_assert_int_eq(sf_proto_address_parse(&arena, "/t/x", 4, &a), SF_EINVAL);
    ck_assert_int_eq(sf_proto_address_parse(&arena, "ns//x", 5, &a), SF_EINVAL);
    ck_assert_int_eq(sf_proto_address_parse(&arena, "nst", 3, &a), SF_EINVAL);
    ck_assert_int_eq(sf_proto_typename_split(&arena, "ns/fn", 5, &ns, &name), 0);
    ck_assert_str_eq(ns, "ns");
    ck_assert_str_eq(name, "fn");
    ck_assert_int_eq(sf_proto_typename_split(&arena, "ns/fn/x", 7, &ns, &name), SF_EINVAL);
    sf_arena_dispose(&arena);
}
END_TEST

START_TEST(test_arena_large)
{
    sf_arena_t arena;
    char *p;
    int i;
    sf_arena_init(&arena, NULL);
    for (i = 0; i < 100; i++) {
        p = sf_arena_alloc(&arena, 1000 + (size_t)i * 100);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(((uintptr_t)p) % 16, 0);
        memset(p, 0xab, 1000 + (size_t)i * 100);
    }
    sf_arena_reset(&arena);
    p = sf_arena_alloc(&arena, 10);
    ck_assert_ptr_nonnull(p);
    sf_arena_dispose(&arena);
}
END_TEST

/* A string decode that runs out of memory says so (SF_ENOMEM), whichever
 * allocation fails, and malformed bytes stay SF_EPROTO. */
START_TEST(test_decode_string_out_of_memory)
{
    sf_test_failmalloc_t fm;
    sf_arena_t arena;
    sf_buf_t b;
    char *s;
    size_t slen;
    long n;
    int rv;
    static const uint8_t junk[] = {0x0a, 0x05, 'a'};

    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_proto_encode_string("a value", 7, &b), 0);
    sf_test_failmalloc_init(&fm);
    for (n = 0; n < 100; n++) {
        fm.countdown = n;
        sf_arena_init(&arena, &fm.mem);
        rv = sf_proto_decode_string(&arena, b.base, b.len, &s, &slen);
        sf_arena_dispose(&arena);
        if (rv == 0)
            break;
        ck_assert_int_eq(rv, SF_ENOMEM);
    }
    ck_assert_int_gt(n, 0);          /* at least one allocation could fail */
    ck_assert_int_lt(n, 100);
    ck_assert_int_eq(fm.live, 0);
    fm.countdown = -1;
    sf_arena_init(&arena, &fm.mem);
    ck_assert_int_eq(sf_proto_decode_string(&arena, junk, sizeof junk, &s, &slen), SF_EPROTO);
    ck_assert_int_eq(sf_proto_decode_string(&arena, NULL, 0, &s, &slen), 0);
    ck_assert_uint_eq(slen, 0);
    sf_arena_dispose(&arena);
    sf_buf_dispose(&b);
}
END_TEST

Suite *sf_protocol_proto_suite(void)
{
    Suite *s = suite_create("protocol_proto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_builtin_roundtrip);
    tcase_add_test(tc, test_to_function_roundtrip);
    tcase_add_test(tc, test_address_parse);
    tcase_add_test(tc, test_arena_large);
    tcase_add_test(tc, test_decode_string_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}
