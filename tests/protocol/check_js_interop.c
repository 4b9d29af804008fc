/* statefun-c: Apache License 2.0.
 *
 * Interop with the official StateFun JavaScript SDK (npm apache-flink-statefun),
 * served by node's http module (tests/js/statefun_functions.js): statefun-c's
 * protocol code and HTTP client invoke a function written with that SDK and
 * decode its replies. The first call must answer IncompleteInvocationContext,
 * the retry with state must answer the expected mutations, messages, delayed
 * messages (with a cancellation) and egress records. The client runs in auto
 * mode, so it also shows the fallback to HTTP/1.1 for a server that does not
 * speak HTTP/2.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sf_http.h"
#include "sf_proto.h"
#include "testutil.h"

typedef struct {
    int done;
    int err;
    int status;
    sf_buf_t body;
} reply_t;

static void on_response(int err, const sf_http_response_t *res, void *ud)
{
    reply_t *r = ud;
    r->done = 1;
    r->err = err;
    if (res) {
        r->status = res->status;
        sf_buf_append(&r->body, res->body, res->body_len);
    }
}

/* Sends |tf| and returns the decoded FromFunction (in |arena|). */
static sf_pb_from_function_t *invoke(uv_loop_t *loop, sf_http_client_t *client,
                                     const sf_http_url_t *url, const sf_pb_to_function_t *tf,
                                     sf_arena_t *arena)
{
    static const sf_http_header_t hdrs[] = {
        {"content-type", 12, "application/octet-stream", 24}};
    reply_t r;
    sf_buf_t req;
    sf_pb_from_function_t *ff;
    int i;

    memset(&r, 0, sizeof r);
    sf_buf_init(&r.body, NULL);
    sf_buf_init(&req, NULL);
    ck_assert_int_eq(sf_proto_to_function_pack(tf, &req), 0);
    ck_assert_int_eq(sf_http_client_request(client, "POST", url, hdrs, 1, req.base, req.len,
                                            on_response, &r),
                     0);
    for (i = 0; i < 1000 && !r.done; i++)
        uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(r.done, 1);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.status, 200);
    ff = sf_proto_from_function_unpack(arena, r.body.base, r.body.len);
    ck_assert_ptr_nonnull(ff);
    sf_buf_dispose(&r.body);
    sf_buf_dispose(&req);
    return ff;
}

static void set_typed(sf_pb_typed_value_t *tv, const char *type, sf_buf_t *bytes)
{
    tv->typename_ = (char *)type;
    tv->has_value = bytes != NULL;
    if (bytes) {
        tv->value.data = bytes->base;
        tv->value.len = bytes->len;
    }
}

static void on_client_closed(sf_http_client_t *c, void *ud) { *(int *)ud = 1; }

START_TEST(test_js_sdk_counter)
{
    char line[128], url_s[128], script[1024], node_path[1024];
    char *argv[] = {"node", script, "0", NULL};
    pid_t pid;
    int port, closed = 0;
    uv_loop_t loop;
    sf_http_client_t *client;
    sf_http_client_config_t cfg;
    sf_http_url_t url;
    sf_arena_t arena;
    sf_pb_to_function_t tf = SF_PB_TO_FUNCTION_INIT;
    sf_pb_batch_request_t batch = SF_PB_BATCH_REQUEST_INIT;
    sf_pb_address_t target = SF_PB_ADDRESS_INIT;
    sf_pb_typed_value_t arg = SF_PB_TYPED_VALUE_INIT, seen_v = SF_PB_TYPED_VALUE_INIT,
                        last_v = SF_PB_TYPED_VALUE_INIT;
    sf_pb_persisted_value_t seen = SF_PB_PERSISTED_VALUE_INIT, last = SF_PB_PERSISTED_VALUE_INIT;
    sf_pb_persisted_value_t *states[2] = {&seen, &last};
    sf_pb_to_invocation_t inv = SF_PB_TO_INVOCATION_INIT, *invs[1] = {&inv};
    sf_pb_from_function_t *ff;
    sf_pb_invocation_response_t *res;
    sf_buf_t argbuf, seenbuf;
    int32_t iv;
    char *s;
    size_t i;

    snprintf(script, sizeof script, "%s/tests/js/statefun_functions.js", sf_test_src());
    if (!getenv("NODE_PATH")) {
        snprintf(node_path, sizeof node_path, "%s/js/node_modules", sf_test_build());
        setenv("NODE_PATH", node_path, 1);
    }
    pid = sf_test_spawn_line(argv, line, sizeof line, 20000);
    ck_assert_msg(pid > 0, "the JS SDK server did not start (is `make js-deps` done?)");
    ck_assert_int_eq(sscanf(line, "listening %d", &port), 1);

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.protocol = SF_HTTP_PROTO_AUTO;
    cfg.call_timeout_ms = 10000;
    ck_assert_int_eq(sf_http_client_new(&loop, &cfg, &client), 0);
    snprintf(url_s, sizeof url_s, "http://127.0.0.1:%d/", port);
    ck_assert_int_eq(sf_http_url_parse(url_s, NULL, &url), 0);
    sf_arena_init(&arena, NULL);
    sf_buf_init(&argbuf, NULL);
    sf_buf_init(&seenbuf, NULL);

    target.namespace_ = "js.fns";
    target.type = "counter";
    target.id = "a";
    ck_assert_int_eq(sf_proto_encode_string("hey", 3, &argbuf), 0);
    set_typed(&arg, SF_TYPE_STRING, &argbuf);
    inv.argument = &arg;
    batch.target = &target;
    batch.n_invocations = 1;
    batch.invocations = invs;
    tf.request_case = SF_PB_TO_FUNCTION_INVOCATION;
    tf.invocation = &batch;

    /* 1. No state: the SDK lists both declared states with their specs. */
    ff = invoke(&loop, client, &url, &tf, &arena);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_INCOMPLETE);
    ck_assert_uint_eq(ff->incomplete_invocation_context->n_missing_values, 2);
    {
        sf_pb_value_spec_t *m0 = ff->incomplete_invocation_context->missing_values[0];
        sf_pb_value_spec_t *m1 = ff->incomplete_invocation_context->missing_values[1];
        ck_assert_str_eq(m0->state_name, "seen");
        ck_assert_str_eq(m0->type_typename, SF_TYPE_INT);
        ck_assert_ptr_nonnull(m0->expiration_spec);
        ck_assert_int_eq(m0->expiration_spec->mode, SF_PB_EXPIRE_AFTER_WRITE);
        ck_assert_int_eq(m0->expiration_spec->expire_after_millis, 60000);
        ck_assert_str_eq(m1->state_name, "last");
        ck_assert_str_eq(m1->type_typename, SF_TYPE_STRING);
    }
    /* The node http server does not speak HTTP/2: auto mode fell back. */
    ck_assert_int_eq(sf_http_client_origin_version(client, &url), 1);

    /* 2. The same batch again with the (empty) registered states. */
    seen.state_name = "seen";
    set_typed(&seen_v, SF_TYPE_INT, NULL);
    seen.state_value = &seen_v;
    last.state_name = "last";
    set_typed(&last_v, SF_TYPE_STRING, NULL);
    last.state_value = &last_v;
    batch.n_state = 2;
    batch.state = states;
    ff = invoke(&loop, client, &url, &tf, &arena);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
    res = ff->invocation_result;
    ck_assert_uint_eq(res->n_state_mutations, 2);
    ck_assert_str_eq(res->state_mutations[0]->state_name, "seen");
    ck_assert_int_eq(res->state_mutations[0]->mutation_type, SF_PB_MUTATION_MODIFY);
    ck_assert_str_eq(res->state_mutations[0]->state_value->typename_, SF_TYPE_INT);
    ck_assert_int_eq(sf_proto_decode_int(res->state_mutations[0]->state_value->value.data,
                                         res->state_mutations[0]->state_value->value.len, &iv),
                     0);
    ck_assert_int_eq(iv, 1);
    ck_assert_str_eq(res->state_mutations[1]->state_name, "last");
    ck_assert_int_eq(sf_proto_decode_string(&arena, res->state_mutations[1]->state_value->value.data,
                                            res->state_mutations[1]->state_value->value.len, &s,
                                            NULL),
                     0);
    ck_assert_str_eq(s, "hey");

    ck_assert_uint_eq(res->n_outgoing_messages, 1);
    ck_assert_str_eq(res->outgoing_messages[0]->target->namespace_, "js.fns");
    ck_assert_str_eq(res->outgoing_messages[0]->target->type, "echo");
    ck_assert_str_eq(res->outgoing_messages[0]->target->id, "a");
    ck_assert_int_eq(sf_proto_decode_int(res->outgoing_messages[0]->argument->value.data,
                                         res->outgoing_messages[0]->argument->value.len, &iv),
                     0);
    ck_assert_int_eq(iv, 1);

    /* A delayed message with a token, then a cancellation, in that order. */
    ck_assert_uint_eq(res->n_delayed_invocations, 2);
    ck_assert_int_eq(res->delayed_invocations[0]->delay_in_ms, 1500);
    ck_assert(!res->delayed_invocations[0]->is_cancellation_request);
    ck_assert_str_eq(res->delayed_invocations[0]->cancellation_token, "tok-a");
    ck_assert_str_eq(res->delayed_invocations[0]->target->type, "counter");
    ck_assert_int_eq(sf_proto_decode_string(&arena, res->delayed_invocations[0]->argument->value.data,
                                            res->delayed_invocations[0]->argument->value.len, &s,
                                            NULL),
                     0);
    ck_assert_str_eq(s, "later");
    ck_assert(res->delayed_invocations[1]->is_cancellation_request);
    ck_assert_str_eq(res->delayed_invocations[1]->cancellation_token, "old-a");

    /* Egress: a playground record (JSON) and a Kafka record (protobuf). */
    ck_assert_uint_eq(res->n_outgoing_egresses, 2);
    {
        sf_pb_egress_message_t *e = res->outgoing_egresses[0];
        json_error_t jerr;
        json_t *j;
        ck_assert_str_eq(e->egress_namespace, "io.statefun.playground");
        ck_assert_str_eq(e->egress_type, "egress");
        ck_assert_str_eq(e->argument->typename_, SF_TYPE_PLAYGROUND_EGRESS_RECORD);
        j = json_loadb((const char *)e->argument->value.data, e->argument->value.len, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "topic")), "counts");
        ck_assert_str_eq(json_string_value(json_object_get(j, "payload")), "a=1");
        json_decref(j);
    }
    {
        sf_pb_egress_message_t *e = res->outgoing_egresses[1];
        Io__Statefun__Sdk__Egress__KafkaProducerRecord *k;
        ck_assert_str_eq(e->egress_namespace, "js.io");
        ck_assert_str_eq(e->egress_type, "kafka");
        ck_assert_str_eq(e->argument->typename_, SF_TYPE_KAFKA_PRODUCER_RECORD);
        k = io__statefun__sdk__egress__kafka_producer_record__unpack(NULL, e->argument->value.len,
                                                                     e->argument->value.data);
        ck_assert_ptr_nonnull(k);
        ck_assert_str_eq(k->key, "a");
        ck_assert_str_eq(k->topic, "counts");
        ck_assert_uint_eq(k->value_bytes.len, 1);
        ck_assert_int_eq(k->value_bytes.data[0], '1');
        io__statefun__sdk__egress__kafka_producer_record__free_unpacked(k, NULL);
    }

    /* 3. With seen = 1 the function counts on to 2, and the unchanged-type
     * state travels back as a mutation of the same type. */
    ck_assert_int_eq(sf_proto_encode_int(1, &seenbuf), 0);
    set_typed(&seen_v, SF_TYPE_INT, &seenbuf);
    for (i = 0; i < 3; i++) {
        ff = invoke(&loop, client, &url, &tf, &arena);
        ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
        ck_assert_int_eq(sf_proto_decode_int(
                             ff->invocation_result->state_mutations[0]->state_value->value.data,
                             ff->invocation_result->state_mutations[0]->state_value->value.len, &iv),
                         0);
        ck_assert_int_eq(iv, 2);
    }

    sf_http_client_close(client, on_client_closed, &closed);
    for (i = 0; i < 1000 && !closed; i++)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    sf_http_url_dispose(&url, NULL);
    sf_arena_dispose(&arena);
    sf_buf_dispose(&argbuf);
    sf_buf_dispose(&seenbuf);
    sf_test_kill(pid);
}
END_TEST

Suite *sf_protocol_js_interop_suite(void)
{
    Suite *s = suite_create("protocol_js_interop");
    TCase *tc = tcase_create("js_sdk");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_js_sdk_counter);
    suite_add_tcase(s, tc);
    return s;
}
