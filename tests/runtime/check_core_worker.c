/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/core/worker.c: messages reach the worker owning their key
 * group, across threads, and hop between workers (ping-pong through
 * outboxes) without loss; pauses, held commits, and calls run on a
 * worker's thread for another thread.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

static _Atomic int misrouted;
static _Atomic long remaining_hops;
static _Atomic long live_msgs; /* messages created and not yet delivered */

/* Each message carries a hop count; it goes on to another address until 0. */
static void deliver(sf_worker_t *w, sf_msg_t *m)
{
    uint32_t hops;
    if (m->key_group < w->kg_begin || m->key_group >= w->kg_end)
        atomic_fetch_add(&misrouted, 1);
    memcpy(&hops, sf_msg_value(m), sizeof hops);
    atomic_fetch_sub(&remaining_hops, 1);
    atomic_fetch_sub(&live_msgs, 1);
    if (hops > 0) {
        char id[32];
        sf_msg_t *next;
        hops--;
        snprintf(id, sizeof id, "%u-%llu", hops, (unsigned long long)m->seq);
        ck_assert_int_eq(sf_msg_new_parts("ns", "pp", id, NULL, NULL, NULL, "t/hops",
                                          (const uint8_t *)&hops, sizeof hops,
                                          w->group->max_parallelism, &next),
                         0);
        next->seq = m->seq;
        atomic_fetch_add(&live_msgs, 1);
        sf_worker_route(w, next);
    }
    sf_msg_free(m);
}

/* |chains| messages "PREFIX-i" with |hops| hops each, into |chain|. */
static void make_chains(const sf_workers_t *g, sf_msg_fifo_t *chain, uint32_t chains,
                        uint32_t hops, const char *prefix)
{
    uint32_t i;
    sf_msg_fifo_init(chain);
    for (i = 0; i < chains; i++) {
        char id[32];
        sf_msg_t *m;
        snprintf(id, sizeof id, "%s-%u", prefix, i);
        ck_assert_int_eq(sf_msg_new_parts("ns", "pp", id, NULL, NULL, NULL, "t/hops",
                                          (const uint8_t *)&hops, sizeof hops,
                                          g->max_parallelism, &m),
                         0);
        m->seq = i;
        sf_msg_fifo_push(chain, m);
    }
}

START_TEST(test_workers_route_and_hop)
{
    enum { CHAINS = 200, HOPS = 50 };
    sf_workers_t g;
    sf_msg_fifo_t chain;
    uint32_t i;
    int waited;
    atomic_store(&misrouted, 0);
    atomic_store(&remaining_hops, (long)CHAINS * (HOPS + 1));
    ck_assert_int_eq(sf_workers_init(&g, 4, 128, deliver, NULL, NULL, NULL), 0);
    ck_assert_int_eq(sf_workers_start(&g), 0);
    make_chains(&g, &chain, CHAINS, HOPS, "start");
    sf_workers_route_chain(&g, &chain);
    for (waited = 0; waited < 10000 && atomic_load(&remaining_hops) > 0; waited += 5)
        usleep(5000);
    sf_workers_stop(&g);
    ck_assert_int_eq(atomic_load(&remaining_hops), 0);
    ck_assert_int_eq(atomic_load(&misrouted), 0);
    {
        uint64_t total = 0;
        for (i = 0; i < g.n; i++) {
            total += g.w[i]->delivered;
            ck_assert_uint_gt(g.w[i]->delivered, 0); /* spread over all workers */
        }
        ck_assert_uint_eq(total, (uint64_t)CHAINS * (HOPS + 1));
    }
    sf_workers_dispose(&g);
}
END_TEST

START_TEST(test_workers_init_rejects_bad_sizes)
{
    sf_workers_t g;
    ck_assert_int_eq(sf_workers_init(&g, 0, 128, deliver, NULL, NULL, NULL), SF_EINVAL);
    ck_assert_int_eq(sf_workers_init(&g, 129, 128, deliver, NULL, NULL, NULL), SF_EINVAL);
    /* Created but never started: dispose closes everything. */
    ck_assert_int_eq(sf_workers_init(&g, 2, 8, deliver, NULL, NULL, NULL), 0);
    ck_assert_uint_eq(g.w[0]->kg_begin, 0);
    ck_assert_uint_eq(g.w[0]->kg_end, 4);
    ck_assert_uint_eq(g.w[1]->kg_end, 8);
    sf_workers_dispose(&g);
}
END_TEST

static _Atomic long paused_pending;
static _Atomic int paused_workers;

static void on_paused(sf_worker_t *w, const sf_msg_fifo_t *local, const sf_msg_fifo_t *out,
                      void *arg)
{
    (void)w;
    (void)arg;
    atomic_fetch_add(&paused_pending, (long)(local->count + out->count));
    atomic_fetch_add(&paused_workers, 1);
}

static int rooms;
static void on_room(sf_workers_t *g)
{
    (void)g;
    rooms++;
}

/* on_room runs when a worker's load falls below SF_WORKER_MAX_LOAD, and only
 * then: not above it, not below it. */
START_TEST(test_worker_room)
{
    sf_workers_t g;
    sf_worker_t *w;
    ck_assert_int_eq(sf_workers_init(&g, 2, 8, deliver, NULL, NULL, NULL), 0);
    g.on_room = on_room;
    w = g.w[1];
    rooms = 0;
    atomic_store(&w->load, SF_WORKER_MAX_LOAD + 10);
    sf_worker_done(w, 10); /* down to the bound: still over-full */
    ck_assert_int_eq(rooms, 0);
    sf_worker_done(w, 1); /* below it */
    ck_assert_int_eq(rooms, 1);
    sf_worker_done(w, 1);
    ck_assert_int_eq(rooms, 1);
    atomic_store(&w->load, SF_WORKER_MAX_LOAD + 5);
    sf_worker_done(w, 100); /* across it in one step */
    ck_assert_int_eq(rooms, 2);
    ck_assert_int_eq(atomic_load(&w->load), SF_WORKER_MAX_LOAD - 95);
    ck_assert_int_eq(atomic_load(&g.w[0]->load), 0);
    sf_workers_dispose(&g);
}
END_TEST

/* Pausing in the middle of a hop storm loses nothing: every message is
 * either delivered or pending at the pause, and all hops finish after it. */
START_TEST(test_workers_pause_midway)
{
    enum { CHAINS = 300, HOPS = 200 };
    sf_workers_t g;
    sf_msg_fifo_t chain;
    int waited, pauses = 0;
    atomic_store(&misrouted, 0);
    atomic_store(&remaining_hops, (long)CHAINS * (HOPS + 1));
    atomic_store(&live_msgs, CHAINS);
    ck_assert_int_eq(sf_workers_init(&g, 3, 64, deliver, NULL, NULL, NULL), 0);
    ck_assert_int_eq(sf_workers_start(&g), 0);
    make_chains(&g, &chain, CHAINS, HOPS, "p");
    sf_workers_route_chain(&g, &chain);
    for (waited = 0; waited < 20000 && atomic_load(&remaining_hops) > 0; waited += 1) {
        if (waited % 2 == 0) {
            long before, pending;
            atomic_store(&paused_pending, 0);
            atomic_store(&paused_workers, 0);
            sf_workers_pause(&g, on_paused, NULL);
            /* While paused nothing moves, and every message that exists is
             * in some worker's pending list. */
            before = atomic_load(&remaining_hops);
            pending = atomic_load(&paused_pending);
            ck_assert_int_eq(atomic_load(&paused_workers), 3);
            usleep(200);
            ck_assert_int_eq(atomic_load(&remaining_hops), before);
            ck_assert_int_eq(pending, atomic_load(&live_msgs));
            sf_workers_resume(&g);
            pauses++;
        }
        usleep(1000);
    }
    sf_workers_stop(&g);
    ck_assert_int_eq(atomic_load(&remaining_hops), 0);
    ck_assert_int_eq(atomic_load(&misrouted), 0);
    ck_assert_int_gt(pauses, 0);
    sf_workers_dispose(&g);
}
END_TEST

static _Atomic long commits;
static _Atomic long commits_while_held;
static sf_workers_t *held_group;

static void count_commit(sf_worker_t *w)
{
    (void)w;
    atomic_fetch_add(&commits, 1);
    if (sf_workers_commits_held(held_group))
        atomic_fetch_add(&commits_while_held, 1);
}

/* While commits are held the workers go on delivering, but no commit point
 * runs; the release makes every worker commit at once. */
START_TEST(test_workers_hold_commits)
{
    enum { CHAINS = 200, HOPS = 100 };
    sf_workers_t g;
    sf_msg_fifo_t chain;
    long hops_before, commits_at_release;
    int waited;
    atomic_store(&misrouted, 0);
    atomic_store(&remaining_hops, (long)CHAINS * (HOPS + 1));
    atomic_store(&live_msgs, CHAINS);
    atomic_store(&commits, 0);
    atomic_store(&commits_while_held, 0);
    held_group = &g;
    ck_assert_int_eq(sf_workers_init(&g, 2, 64, deliver, NULL, NULL, NULL), 0);
    g.commit = count_commit;
    ck_assert_int_eq(sf_workers_start(&g), 0);
    /* Held between a pause and its resume, as the checkpointer does. */
    sf_workers_pause(&g, on_paused, NULL);
    sf_workers_hold_commits(&g, true);
    sf_workers_resume(&g);
    commits_at_release = atomic_load(&commits);
    make_chains(&g, &chain, CHAINS, HOPS, "h");
    hops_before = atomic_load(&remaining_hops);
    sf_workers_route_chain(&g, &chain);
    for (waited = 0; waited < 5000 && atomic_load(&remaining_hops) > 0; waited++)
        usleep(1000);
    /* Deliveries went on (here all of them), and no commit point ran. */
    ck_assert_int_lt(atomic_load(&remaining_hops), hops_before);
    ck_assert_int_eq(atomic_load(&commits), commits_at_release);
    ck_assert_int_eq(atomic_load(&commits_while_held), 0);
    sf_workers_hold_commits(&g, false);
    for (waited = 0; waited < 5000 && atomic_load(&commits) < commits_at_release + 2; waited++)
        usleep(1000);
    ck_assert_int_ge(atomic_load(&commits), commits_at_release + 2); /* each worker */
    sf_workers_stop(&g);
    ck_assert_int_eq(atomic_load(&remaining_hops), 0);
    ck_assert_int_eq(atomic_load(&misrouted), 0);
    ck_assert_int_eq(atomic_load(&commits_while_held), 0);
    sf_workers_dispose(&g);
}
END_TEST

/* sf_worker_call runs a function on the worker's own thread, also while that worker
 * is busy delivering, and refuses once the worker stops (or before it starts). */
typedef struct {
    uv_thread_t self;
    sf_worker_t *ran_on;
    int calls;
    int steps; /* record_step: done after this many */
} call_arg_t;

static void record_call(sf_worker_t *w, void *arg)
{
    call_arg_t *c = arg;
    c->self = uv_thread_self();
    c->ran_on = w;
    c->calls++;
}

static bool record_step(sf_worker_t *w, void *arg)
{
    call_arg_t *c = arg;
    record_call(w, arg);
    return --c->steps <= 0;
}

START_TEST(test_worker_call)
{
    sf_workers_t g;
    call_arg_t c = {0};
    sf_msg_fifo_t chain;
    uv_thread_t me = uv_thread_self();
    uint32_t i;
    int k;
    ck_assert_int_eq(sf_workers_init(&g, 2, 64, deliver, NULL, NULL, NULL), 0);
    ck_assert_int_eq(sf_worker_call(g.w[0], record_call, &c), SF_ECANCELED);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_int_eq(sf_workers_start(&g), 0);
    make_chains(&g, &chain, 16, 5000, "call"); /* keeps both workers busy meanwhile */
    sf_workers_route_chain(&g, &chain);
    for (k = 0; k < 50; k++)
        for (i = 0; i < g.n; i++) {
            ck_assert_int_eq(sf_worker_call(g.w[i], record_call, &c), 0);
            ck_assert_ptr_eq(c.ran_on, g.w[i]);
            ck_assert(!uv_thread_equal(&c.self, &me));
            ck_assert(uv_thread_equal(&c.self, &g.w[i]->_thread));
        }
    ck_assert_int_eq(c.calls, 100);
    {
        /* Steps on every worker at once, each with its own argument, until done. */
        call_arg_t each[2] = {{0}, {0}};
        void *args[2] = {&each[0], &each[1]};
        int rvs[2] = {-1, -1};
        each[0].steps = 3;
        each[1].steps = 5;
        sf_workers_step_each(&g, record_step, args, rvs);
        for (i = 0; i < g.n; i++) {
            ck_assert_int_eq(rvs[i], 0);
            ck_assert_ptr_eq(each[i].ran_on, g.w[i]);
            ck_assert(uv_thread_equal(&each[i].self, &g.w[i]->_thread));
        }
        ck_assert_int_eq(each[0].calls, 3);
        ck_assert_int_eq(each[1].calls, 5);
        args[0] = NULL; /* skipped */
        each[1].steps = 1;
        sf_workers_step_each(&g, record_step, args, rvs);
        ck_assert_int_eq(rvs[0], 0);
        ck_assert_int_eq(each[0].calls, 3);
        ck_assert_int_eq(each[1].calls, 6);
    }
    sf_workers_stop(&g);
    for (i = 0; i < g.n; i++)
        ck_assert_int_eq(sf_worker_call(g.w[i], record_call, &c), SF_ECANCELED);
    ck_assert_int_eq(c.calls, 100);
    {
        call_arg_t each[2] = {{0}, {0}};
        void *args[2] = {&each[0], &each[1]};
        int rvs[2] = {0, 0};
        each[0].steps = each[1].steps = 2;
        sf_workers_step_each(&g, record_step, args, rvs);
        ck_assert_int_eq(rvs[0], SF_ECANCELED);
        ck_assert_int_eq(rvs[1], SF_ECANCELED);
        ck_assert_int_eq(each[0].calls + each[1].calls, 0);
    }
    sf_workers_dispose(&g);
}
END_TEST

Suite *sf_runtime_core_worker_suite(void)
{
    Suite *s = suite_create("runtime_core_worker");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_workers_route_and_hop);
    tcase_add_test(tc, test_workers_hold_commits);
    tcase_add_test(tc, test_workers_init_rejects_bad_sizes);
    tcase_add_test(tc, test_worker_room);
    tcase_add_test(tc, test_workers_pause_midway);
    tcase_add_test(tc, test_worker_call);
    suite_add_tcase(s, tc);
    return s;
}
