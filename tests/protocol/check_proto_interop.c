/* statefun-c: Apache License 2.0.
 *
 * Wire compatibility of protocol/ against an independent encoder: Google's
 * protoc. Every message of SPEC section 6 is built with protobuf-c, packed,
 * and decoded by `protoc --decode` into text that must match exactly; and the
 * other way, text encoded by `protoc --encode` must unpack with sf_proto into
 * the expected fields.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_proto.h"
#include "testutil.h"

static char *tmpdir;

static void setup(void) { tmpdir = sf_test_mkdtemp("interop"); }
static void teardown(void) { sf_test_rmtree(tmpdir); tmpdir = NULL; }

/* Decodes |msg| with protoc and returns the text (caller frees). */
static char *protoc_decode(const ProtobufCMessage *msg, const char *type, const char *file)
{
    char in[512], out[512];
    sf_buf_t b;
    char *text;
    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_proto_pack_message(msg, &b), 0);
    snprintf(in, sizeof in, "%s/in.bin", tmpdir);
    snprintf(out, sizeof out, "%s/out.txt", tmpdir);
    ck_assert_int_eq(sf_test_write_file(in, b.base, b.len), 0);
    sf_buf_dispose(&b);
    ck_assert_int_eq(sf_test_sh("protoc --decode=%s -I '%s/protocol/proto' %s < '%s' > '%s'", type,
                                sf_test_src(), file, in, out),
                     0);
    text = sf_test_read_file(out, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Encodes |text| with protoc and returns the bytes (caller frees). */
static uint8_t *protoc_encode(const char *text, const char *type, const char *file, size_t *len)
{
    char in[512], out[512];
    char *bytes;
    snprintf(in, sizeof in, "%s/in.txt", tmpdir);
    snprintf(out, sizeof out, "%s/out.bin", tmpdir);
    ck_assert_int_eq(sf_test_write_file(in, text, strlen(text)), 0);
    ck_assert_int_eq(sf_test_sh("protoc --encode=%s -I '%s/protocol/proto' %s < '%s' > '%s'", type,
                                sf_test_src(), file, in, out),
                     0);
    bytes = sf_test_read_file(out, len);
    ck_assert_ptr_nonnull(bytes);
    return (uint8_t *)bytes;
}

#define RR "request-reply.proto"
#define TO "io.statefun.sdk.reqreply.ToFunction"
#define FROM "io.statefun.sdk.reqreply.FromFunction"

START_TEST(test_to_function_decodes_in_protoc)
{
    sf_pb_to_function_t tf = SF_PB_TO_FUNCTION_INIT;
    sf_pb_batch_request_t batch = SF_PB_BATCH_REQUEST_INIT;
    sf_pb_address_t target = SF_PB_ADDRESS_INIT, caller = SF_PB_ADDRESS_INIT;
    sf_pb_persisted_value_t pv1 = SF_PB_PERSISTED_VALUE_INIT, pv2 = SF_PB_PERSISTED_VALUE_INIT;
    sf_pb_persisted_value_t *pvs[2] = {&pv1, &pv2};
    sf_pb_typed_value_t sv1 = SF_PB_TYPED_VALUE_INIT, sv2 = SF_PB_TYPED_VALUE_INIT;
    sf_pb_typed_value_t a1 = SF_PB_TYPED_VALUE_INIT, a2 = SF_PB_TYPED_VALUE_INIT;
    sf_pb_to_invocation_t i1 = SF_PB_TO_INVOCATION_INIT, i2 = SF_PB_TO_INVOCATION_INIT;
    sf_pb_to_invocation_t *invs[2] = {&i1, &i2};
    sf_buf_t v;
    char *text;

    sf_buf_init(&v, NULL);
    ck_assert_int_eq(sf_proto_encode_int(7, &v), 0);
    target.namespace_ = "greeter.fns";
    target.type = "person";
    target.id = "alice";
    caller.namespace_ = "greeter.fns";
    caller.type = "greeter";
    caller.id = "bob";
    sv1.typename_ = SF_TYPE_INT;
    sv1.has_value = 1;
    sv1.value.data = v.base;
    sv1.value.len = v.len;
    pv1.state_name = "visits";
    pv1.state_value = &sv1;
    sv2.typename_ = "com.example/Blob";
    pv2.state_name = "empty";
    pv2.state_value = &sv2;
    a1.typename_ = SF_TYPE_STRING;
    a1.has_value = 1;
    a1.value.data = (uint8_t *)"\x0a\x01x";
    a1.value.len = 3;
    i1.argument = &a1;
    a2.typename_ = "com.example/Raw";
    a2.has_value = 1;
    a2.value.data = (uint8_t *)"\x00\xff";
    a2.value.len = 2;
    i2.caller = &caller;
    i2.argument = &a2;
    batch.target = &target;
    batch.n_state = 2;
    batch.state = pvs;
    batch.n_invocations = 2;
    batch.invocations = invs;
    tf.request_case = SF_PB_TO_FUNCTION_INVOCATION;
    tf.invocation = &batch;

    text = protoc_decode(&tf.base, TO, RR);
    ck_assert_str_eq(text, "invocation {\n"
                           "  target {\n"
                           "    namespace: \"greeter.fns\"\n"
                           "    type: \"person\"\n"
                           "    id: \"alice\"\n"
                           "  }\n"
                           "  state {\n"
                           "    state_name: \"visits\"\n"
                           "    state_value {\n"
                           "      typename: \"io.statefun.types/int\"\n"
                           "      has_value: true\n"
                           "      value: \"\\r\\007\\000\\000\\000\"\n"
                           "    }\n"
                           "  }\n"
                           "  state {\n"
                           "    state_name: \"empty\"\n"
                           "    state_value {\n"
                           "      typename: \"com.example/Blob\"\n"
                           "    }\n"
                           "  }\n"
                           "  invocations {\n"
                           "    argument {\n"
                           "      typename: \"io.statefun.types/string\"\n"
                           "      has_value: true\n"
                           "      value: \"\\n\\001x\"\n"
                           "    }\n"
                           "  }\n"
                           "  invocations {\n"
                           "    caller {\n"
                           "      namespace: \"greeter.fns\"\n"
                           "      type: \"greeter\"\n"
                           "      id: \"bob\"\n"
                           "    }\n"
                           "    argument {\n"
                           "      typename: \"com.example/Raw\"\n"
                           "      has_value: true\n"
                           "      value: \"\\000\\377\"\n"
                           "    }\n"
                           "  }\n"
                           "}\n");
    free(text);
    sf_buf_dispose(&v);
}
END_TEST

START_TEST(test_from_function_result_decodes_in_protoc)
{
    sf_pb_from_function_t ff = SF_PB_FROM_FUNCTION_INIT;
    sf_pb_invocation_response_t r = SF_PB_INVOCATION_RESPONSE_INIT;
    sf_pb_mutation_t m1 = SF_PB_MUTATION_INIT, m2 = SF_PB_MUTATION_INIT, *ms[2] = {&m1, &m2};
    sf_pb_typed_value_t mv = SF_PB_TYPED_VALUE_INIT, ov = SF_PB_TYPED_VALUE_INIT;
    sf_pb_typed_value_t dv = SF_PB_TYPED_VALUE_INIT, ev = SF_PB_TYPED_VALUE_INIT;
    sf_pb_address_t t1 = SF_PB_ADDRESS_INIT;
    sf_pb_from_invocation_t o = SF_PB_FROM_INVOCATION_INIT, *os[1] = {&o};
    sf_pb_delayed_invocation_t d1 = SF_PB_DELAYED_INVOCATION_INIT, d2 = SF_PB_DELAYED_INVOCATION_INIT;
    sf_pb_delayed_invocation_t *ds[2] = {&d1, &d2};
    sf_pb_egress_message_t e = SF_PB_EGRESS_MESSAGE_INIT, *es[1] = {&e};
    char *text;

    mv.typename_ = SF_TYPE_INT;
    mv.has_value = 1;
    mv.value.data = (uint8_t *)"\x0d\x02\x00\x00\x00";
    mv.value.len = 5;
    m1.mutation_type = SF_PB_MUTATION_MODIFY;
    m1.state_name = "visits";
    m1.state_value = &mv;
    m2.mutation_type = SF_PB_MUTATION_DELETE;
    m2.state_name = "old";
    t1.namespace_ = "greeter.fns";
    t1.type = "greeter";
    t1.id = "alice";
    ov.typename_ = SF_TYPE_INT;
    ov.has_value = 1;
    ov.value.data = (uint8_t *)"\x0d\x02\x00\x00\x00";
    ov.value.len = 5;
    o.target = &t1;
    o.argument = &ov;
    dv.typename_ = SF_TYPE_STRING;
    dv.has_value = 1;
    dv.value.data = (uint8_t *)"\x0a\x02hi";
    dv.value.len = 4;
    d1.delay_in_ms = 1500;
    d1.target = &t1;
    d1.argument = &dv;
    d1.cancellation_token = "tok-1";
    d2.is_cancellation_request = 1;
    d2.cancellation_token = "tok-1";
    ev.typename_ = SF_TYPE_PLAYGROUND_EGRESS_RECORD;
    ev.has_value = 1;
    ev.value.data = (uint8_t *)"{}";
    ev.value.len = 2;
    e.egress_namespace = "io.statefun.playground";
    e.egress_type = "egress";
    e.argument = &ev;
    r.n_state_mutations = 2;
    r.state_mutations = ms;
    r.n_outgoing_messages = 1;
    r.outgoing_messages = os;
    r.n_delayed_invocations = 2;
    r.delayed_invocations = ds;
    r.n_outgoing_egresses = 1;
    r.outgoing_egresses = es;
    ff.response_case = SF_PB_FROM_FUNCTION_RESULT;
    ff.invocation_result = &r;

    text = protoc_decode(&ff.base, FROM, RR);
    ck_assert_str_eq(text, "invocation_result {\n"
                           "  state_mutations {\n"
                           "    mutation_type: MODIFY\n"
                           "    state_name: \"visits\"\n"
                           "    state_value {\n"
                           "      typename: \"io.statefun.types/int\"\n"
                           "      has_value: true\n"
                           "      value: \"\\r\\002\\000\\000\\000\"\n"
                           "    }\n"
                           "  }\n"
                           "  state_mutations {\n"
                           "    state_name: \"old\"\n"
                           "  }\n"
                           "  outgoing_messages {\n"
                           "    target {\n"
                           "      namespace: \"greeter.fns\"\n"
                           "      type: \"greeter\"\n"
                           "      id: \"alice\"\n"
                           "    }\n"
                           "    argument {\n"
                           "      typename: \"io.statefun.types/int\"\n"
                           "      has_value: true\n"
                           "      value: \"\\r\\002\\000\\000\\000\"\n"
                           "    }\n"
                           "  }\n"
                           "  delayed_invocations {\n"
                           "    delay_in_ms: 1500\n"
                           "    target {\n"
                           "      namespace: \"greeter.fns\"\n"
                           "      type: \"greeter\"\n"
                           "      id: \"alice\"\n"
                           "    }\n"
                           "    argument {\n"
                           "      typename: \"io.statefun.types/string\"\n"
                           "      has_value: true\n"
                           "      value: \"\\n\\002hi\"\n"
                           "    }\n"
                           "    cancellation_token: \"tok-1\"\n"
                           "  }\n"
                           "  delayed_invocations {\n"
                           "    is_cancellation_request: true\n"
                           "    cancellation_token: \"tok-1\"\n"
                           "  }\n"
                           "  outgoing_egresses {\n"
                           "    egress_namespace: \"io.statefun.playground\"\n"
                           "    egress_type: \"egress\"\n"
                           "    argument {\n"
                           "      typename: \"io.statefun.playground/EgressRecord\"\n"
                           "      has_value: true\n"
                           "      value: \"{}\"\n"
                           "    }\n"
                           "  }\n"
                           "}\n");
    free(text);
}
END_TEST

START_TEST(test_from_function_incomplete_decodes_in_protoc)
{
    sf_pb_from_function_t ff = SF_PB_FROM_FUNCTION_INIT;
    sf_pb_incomplete_context_t ic = SF_PB_INCOMPLETE_CONTEXT_INIT;
    sf_pb_value_spec_t s1 = SF_PB_VALUE_SPEC_INIT, s2 = SF_PB_VALUE_SPEC_INIT;
    sf_pb_value_spec_t *ss[2] = {&s1, &s2};
    sf_pb_expiration_spec_t x1 = SF_PB_EXPIRATION_SPEC_INIT, x2 = SF_PB_EXPIRATION_SPEC_INIT;
    char *text;

    x1.mode = SF_PB_EXPIRE_AFTER_WRITE;
    x1.expire_after_millis = 60000;
    s1.state_name = "visits";
    s1.expiration_spec = &x1;
    s1.type_typename = SF_TYPE_INT;
    x2.mode = SF_PB_EXPIRE_AFTER_INVOKE;
    x2.expire_after_millis = 5;
    s2.state_name = "seen_at";
    s2.expiration_spec = &x2;
    s2.type_typename = SF_TYPE_LONG;
    ic.n_missing_values = 2;
    ic.missing_values = ss;
    ff.response_case = SF_PB_FROM_FUNCTION_INCOMPLETE;
    ff.incomplete_invocation_context = &ic;

    text = protoc_decode(&ff.base, FROM, RR);
    ck_assert_str_eq(text, "incomplete_invocation_context {\n"
                           "  missing_values {\n"
                           "    state_name: \"visits\"\n"
                           "    expiration_spec {\n"
                           "      mode: AFTER_WRITE\n"
                           "      expire_after_millis: 60000\n"
                           "    }\n"
                           "    type_typename: \"io.statefun.types/int\"\n"
                           "  }\n"
                           "  missing_values {\n"
                           "    state_name: \"seen_at\"\n"
                           "    expiration_spec {\n"
                           "      mode: AFTER_INVOKE\n"
                           "      expire_after_millis: 5\n"
                           "    }\n"
                           "    type_typename: \"io.statefun.types/long\"\n"
                           "  }\n"
                           "}\n");
    free(text);
}
END_TEST

START_TEST(test_builtin_types_decode_in_protoc)
{
    static const struct {
        const char *type;
        const char *expect;
    } cases[] = {
        {"io.statefun.sdk.types.BooleanWrapper", "value: true\n"},
        {"io.statefun.sdk.types.IntWrapper", "value: -5\n"},
        {"io.statefun.sdk.types.LongWrapper", "value: 1099511627776\n"},
        {"io.statefun.sdk.types.FloatWrapper", "value: 0.5\n"},
        {"io.statefun.sdk.types.DoubleWrapper", "value: -1.25\n"},
        {"io.statefun.sdk.types.StringWrapper", "value: \"hi \\\"you\\\"\"\n"},
    };
    size_t i;
    for (i = 0; i < SF_ARRAY_SIZE(cases); i++) {
        sf_buf_t b;
        char in[512], out[512], *text;
        sf_buf_init(&b, NULL);
        switch (i) {
        case 0: sf_proto_encode_bool(true, &b); break;
        case 1: sf_proto_encode_int(-5, &b); break;
        case 2: sf_proto_encode_long(INT64_C(1) << 40, &b); break;
        case 3: sf_proto_encode_float(0.5f, &b); break;
        case 4: sf_proto_encode_double(-1.25, &b); break;
        default: sf_proto_encode_string("hi \"you\"", 8, &b); break;
        }
        snprintf(in, sizeof in, "%s/w.bin", tmpdir);
        snprintf(out, sizeof out, "%s/w.txt", tmpdir);
        ck_assert_int_eq(sf_test_write_file(in, b.base, b.len), 0);
        ck_assert_int_eq(sf_test_sh("protoc --decode=%s -I '%s/protocol/proto' types.proto < '%s' > '%s'",
                                    cases[i].type, sf_test_src(), in, out),
                         0);
        text = sf_test_read_file(out, NULL);
        ck_assert_str_eq(text, cases[i].expect);
        free(text);
        sf_buf_dispose(&b);
    }
}
END_TEST

START_TEST(test_kafka_record_decodes_in_protoc)
{
    sf_pb_kafka_record_t k = SF_PB_KAFKA_RECORD_INIT;
    char *text;
    k.key = "user-1";
    k.value_bytes.data = (uint8_t *)"v";
    k.value_bytes.len = 1;
    k.topic = "greetings";
    text = protoc_decode(&k.base, "io.statefun.sdk.egress.KafkaProducerRecord", "kafka-egress.proto");
    ck_assert_str_eq(text, "key: \"user-1\"\nvalue_bytes: \"v\"\ntopic: \"greetings\"\n");
    free(text);
}
END_TEST

START_TEST(test_protoc_encoded_messages_unpack)
{
    sf_arena_t arena;
    size_t len;
    uint8_t *bytes;
    sf_pb_to_function_t *tf;
    sf_pb_from_function_t *ff;
    int32_t iv;

    sf_arena_init(&arena, NULL);
    bytes = protoc_encode("invocation {\n"
                          "  target { namespace: \"ns\" type: \"fn\" id: \"a b\" }\n"
                          "  state { state_name: \"seen\" state_value { typename: "
                          "\"io.statefun.types/int\" has_value: true value: \"\\r\\003\\000\\000\\000\" } }\n"
                          "  state { state_name: \"none\" state_value { typename: \"x/y\" } }\n"
                          "  invocations { argument { typename: \"io.statefun.types/string\" "
                          "has_value: true value: \"\\n\\005alice\" } }\n"
                          "  invocations { caller { namespace: \"ns\" type: \"other\" id: \"z\" } "
                          "argument { typename: \"t/u\" has_value: true value: \"\\000\" } }\n"
                          "}\n",
                          TO, RR, &len);
    tf = sf_proto_to_function_unpack(&arena, bytes, len);
    ck_assert_ptr_nonnull(tf);
    ck_assert_int_eq(tf->request_case, SF_PB_TO_FUNCTION_INVOCATION);
    ck_assert_str_eq(tf->invocation->target->id, "a b");
    ck_assert_uint_eq(tf->invocation->n_state, 2);
    ck_assert_int_eq(sf_proto_decode_int(tf->invocation->state[0]->state_value->value.data,
                                         tf->invocation->state[0]->state_value->value.len, &iv),
                     0);
    ck_assert_int_eq(iv, 3);
    ck_assert(!tf->invocation->state[1]->state_value->has_value);
    ck_assert_uint_eq(tf->invocation->n_invocations, 2);
    ck_assert_ptr_null(tf->invocation->invocations[0]->caller);
    ck_assert_str_eq(tf->invocation->invocations[1]->caller->type, "other");
    ck_assert_uint_eq(tf->invocation->invocations[1]->argument->value.len, 1);
    free(bytes);

    bytes = protoc_encode("invocation_result {\n"
                          "  state_mutations { mutation_type: MODIFY state_name: \"s\" state_value "
                          "{ typename: \"io.statefun.types/int\" has_value: true value: "
                          "\"\\r\\001\\000\\000\\000\" } }\n"
                          "  state_mutations { mutation_type: DELETE state_name: \"d\" }\n"
                          "  outgoing_messages { target { namespace: \"a\" type: \"b\" id: \"c\" } "
                          "argument { typename: \"t/x\" has_value: true value: \"1\" } }\n"
                          "  delayed_invocations { delay_in_ms: 10 target { namespace: \"a\" "
                          "type: \"b\" id: \"c\" } argument { typename: \"t/x\" has_value: true "
                          "value: \"2\" } cancellation_token: \"k\" }\n"
                          "  delayed_invocations { is_cancellation_request: true "
                          "cancellation_token: \"k\" }\n"
                          "  outgoing_egresses { egress_namespace: \"e\" egress_type: \"f\" "
                          "argument { typename: \"t/x\" has_value: true value: \"3\" } }\n"
                          "}\n",
                          FROM, RR, &len);
    ff = sf_proto_from_function_unpack(&arena, bytes, len);
    ck_assert_ptr_nonnull(ff);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
    ck_assert_uint_eq(ff->invocation_result->n_state_mutations, 2);
    ck_assert_int_eq(ff->invocation_result->state_mutations[1]->mutation_type,
                     SF_PB_MUTATION_DELETE);
    ck_assert_uint_eq(ff->invocation_result->n_outgoing_messages, 1);
    ck_assert_uint_eq(ff->invocation_result->n_delayed_invocations, 2);
    ck_assert_int_eq(ff->invocation_result->delayed_invocations[0]->delay_in_ms, 10);
    ck_assert(ff->invocation_result->delayed_invocations[1]->is_cancellation_request);
    ck_assert_str_eq(ff->invocation_result->delayed_invocations[1]->cancellation_token, "k");
    ck_assert_str_eq(ff->invocation_result->outgoing_egresses[0]->egress_type, "f");
    free(bytes);

    bytes = protoc_encode("incomplete_invocation_context { missing_values { state_name: \"v\" "
                          "expiration_spec { mode: AFTER_INVOKE expire_after_millis: 9 } "
                          "type_typename: \"io.statefun.types/long\" } }\n",
                          FROM, RR, &len);
    ff = sf_proto_from_function_unpack(&arena, bytes, len);
    ck_assert_ptr_nonnull(ff);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_INCOMPLETE);
    ck_assert_int_eq(ff->incomplete_invocation_context->missing_values[0]->expiration_spec->mode,
                     SF_PB_EXPIRE_AFTER_INVOKE);
    free(bytes);

    /* An empty FromFunction (no side effects) is valid and has no case set. */
    ff = sf_proto_from_function_unpack(&arena, (const uint8_t *)"", 0);
    ck_assert_ptr_nonnull(ff);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_NONE);
    sf_arena_dispose(&arena);
}
END_TEST

Suite *sf_protocol_interop_suite(void)
{
    Suite *s = suite_create("protocol_interop");
    TCase *tc = tcase_create("protoc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_to_function_decodes_in_protoc);
    tcase_add_test(tc, test_from_function_result_decodes_in_protoc);
    tcase_add_test(tc, test_from_function_incomplete_decodes_in_protoc);
    tcase_add_test(tc, test_builtin_types_decode_in_protoc);
    tcase_add_test(tc, test_kafka_record_decodes_in_protoc);
    tcase_add_test(tc, test_protoc_encoded_messages_unpack);
    suite_add_tcase(s, tc);
    return s;
}
