/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/core/message.c and mailbox.c: addresses, key groups and
 * their ranges, message encoding, and the MPSC mailbox under real threads.
 */
#include <check.h>
#include <string.h>
#include <uv.h>

#include "mailbox.h"
#include "message.h"

START_TEST(test_addr_and_key_groups)
{
    sf_addr_t a;
    uint32_t w, kg, n;
    ck_assert_int_eq(sf_addr_parse("ns/fn/id/x", 10, &a), 0);
    ck_assert_uint_eq(a.ns_len, 2);
    ck_assert_uint_eq(a.type_len, 2);
    ck_assert_uint_eq(a.id_len, 4);
    ck_assert_int_eq(sf_addr_parse("ns/fn/", 6, &a), SF_EINVAL);
    ck_assert_int_eq(sf_addr_parse("ns//x", 5, &a), SF_EINVAL);
    /* Stable across runs: a change here would orphan every state dir. */
    ck_assert_uint_eq(sf_key_group("greeter.fns/person/alice", 24, 128),
                      sf_key_group("greeter.fns/person/alice", 24, 128));
    ck_assert_uint_lt(sf_key_group("a/b/c", 5, 128), 128);
    /* Ranges are contiguous and cover every key group exactly once. */
    for (n = 1; n <= 7; n++) {
        for (kg = 0; kg < 128; kg++) {
            w = sf_key_group_owner(kg, n, 128);
            ck_assert_uint_lt(w, n);
            ck_assert_uint_ge(kg, sf_key_group_range_start(w, n, 128));
            ck_assert_uint_lt(kg, w + 1 == n ? 128 : sf_key_group_range_start(w + 1, n, 128));
        }
    }
}
END_TEST

START_TEST(test_msg_encode_decode)
{
    sf_msg_t *m, *d;
    sf_buf_t b;
    size_t used;
    ck_assert_int_eq(sf_msg_new_parts("ns", "fn", "id/1", "c", "t", "x", "io.statefun.types/int",
                                      (const uint8_t *)"\x0d\x01\0\0\0", 5, 128, &m),
                     0);
    m->seq = 0x1122334455ull;
    ck_assert_str_eq(sf_msg_target(m), "ns/fn/id/1");
    ck_assert_str_eq(sf_msg_caller(m), "c/t/x");
    ck_assert_str_eq(sf_msg_typename(m), "io.statefun.types/int");
    ck_assert_uint_eq(m->value_len, 5);
    sf_buf_init(&b, NULL);
    ck_assert_int_eq(sf_msg_encode(m, &b), 0);
    ck_assert_int_eq(sf_msg_decode(b.base, b.len, 128, &d, &used), 0);
    ck_assert_uint_eq(used, b.len);
    ck_assert_str_eq(sf_msg_target(d), "ns/fn/id/1");
    ck_assert_str_eq(sf_msg_caller(d), "c/t/x");
    ck_assert(memcmp(sf_msg_value(d), "\x0d\x01\0\0\0", 5) == 0);
    ck_assert(d->seq == 0x1122334455ull);
    ck_assert_uint_eq(d->key_group, m->key_group);
    /* Truncations are errors. */
    ck_assert_int_eq(sf_msg_decode(b.base, b.len - 1, 128, &d, &used) == 0 ? 1 : 0, 0);
    sf_msg_free(d);
    sf_msg_free(m);
    ck_assert_int_eq(sf_msg_new_parts("ns", "fn", "a", NULL, NULL, NULL, "t/x", NULL, 0, 128, &m),
                     0);
    ck_assert_ptr_null(sf_msg_caller(m));
    sf_msg_free(m);

    /* Egress records name an egress "ns/name", not an address. */
    {
        sf_msg_init_t in;
        memset(&in, 0, sizeof in);
        in.kind = SF_MSG_EGRESS;
        in.target = "io.statefun.playground/egress";
        in.target_len = strlen(in.target);
        in.type_name = "io.statefun.playground/EgressRecord";
        in.type_name_len = strlen(in.type_name);
        in.value = (const uint8_t *)"{}";
        in.value_len = 2;
        ck_assert_int_eq(sf_msg_new(&in, 128, &m), 0);
        ck_assert_uint_eq(m->kind, SF_MSG_EGRESS);
        sf_buf_reset(&b);
        ck_assert_int_eq(sf_msg_encode(m, &b), 0);
        sf_msg_free(m);
        ck_assert_int_eq(sf_msg_decode(b.base, b.len, 128, &m, &used), 0);
        ck_assert_uint_eq(m->kind, SF_MSG_EGRESS);
        ck_assert_str_eq(sf_msg_target(m), "io.statefun.playground/egress");
        sf_msg_free(m);
        in.target = "a/b/c";
        in.target_len = 5;
        ck_assert_int_eq(sf_msg_new(&in, 128, &m), SF_EINVAL);
    }
    sf_buf_dispose(&b);
}
END_TEST

#define PRODUCERS 3
#define PER_PRODUCER 20000

typedef struct {
    sf_mailbox_t mb;
    uint64_t next_seq[PRODUCERS];
    size_t received;
    int in_order;
} consumer_t;

static void on_mail(sf_mailbox_t *mb)
{
    consumer_t *c = mb->data;
    sf_msg_fifo_t got;
    sf_msg_t *m;
    sf_msg_fifo_init(&got);
    sf_mailbox_drain(mb, &got);
    while ((m = sf_msg_fifo_pop(&got)) != NULL) {
        uint32_t p = (uint32_t)(m->seq >> 32), s = (uint32_t)m->seq;
        if (s != c->next_seq[p])
            c->in_order = 0;
        c->next_seq[p] = s + 1;
        c->received++;
        sf_msg_free(m);
    }
    if (c->received == PRODUCERS * PER_PRODUCER)
        uv_close((uv_handle_t *)&mb->_async, NULL);
}

static void producer(void *arg)
{
    sf_mailbox_t *mb = ((void **)arg)[0];
    uint32_t p = (uint32_t)(uintptr_t)((void **)arg)[1];
    sf_msg_fifo_t chain;
    uint32_t i;
    sf_msg_fifo_init(&chain);
    for (i = 0; i < PER_PRODUCER; i++) {
        sf_msg_t *m;
        sf_msg_new_parts("ns", "fn", "x", NULL, NULL, NULL, "t/x", NULL, 0, 128, &m);
        m->seq = (uint64_t)p << 32 | i;
        sf_msg_fifo_push(&chain, m);
        if (chain.count == 1 + (i % 37)) /* chains of varying length */
            sf_mailbox_push(mb, &chain);
    }
    sf_mailbox_push(mb, &chain);
}

START_TEST(test_mailbox_threads_keep_order)
{
    uv_loop_t loop;
    consumer_t c;
    uv_thread_t th[PRODUCERS];
    void *args[PRODUCERS][2];
    int i;
    memset(&c, 0, sizeof c);
    c.in_order = 1;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    c.mb.data = &c;
    ck_assert_int_eq(sf_mailbox_init(&loop, &c.mb, on_mail), 0);
    for (i = 0; i < PRODUCERS; i++) {
        args[i][0] = &c.mb;
        args[i][1] = (void *)(uintptr_t)i;
        ck_assert_int_eq(uv_thread_create(&th[i], producer, args[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (i = 0; i < PRODUCERS; i++)
        uv_thread_join(&th[i]);
    ck_assert_uint_eq(c.received, PRODUCERS * PER_PRODUCER);
    ck_assert(c.in_order);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *sf_runtime_core_message_suite(void)
{
    Suite *s = suite_create("runtime_core_message");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_addr_and_key_groups);
    tcase_add_test(tc, test_msg_encode_decode);
    tcase_add_test(tc, test_mailbox_threads_keep_order);
    suite_add_tcase(s, tc);
    return s;
}
