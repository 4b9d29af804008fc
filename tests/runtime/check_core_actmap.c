/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/core/actmap.c: inserts, lookups and deletes through
 * several incremental rehashes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actmap.h"

typedef struct {
    sf_actmap_node_t node;
    char key[32];
    int value;
} item_t;

static void count_fn(sf_actmap_node_t *n, void *ud) { (*(size_t *)ud)++; }

START_TEST(test_actmap_grow_and_delete)
{
    enum { N = 50000 };
    sf_actmap_t m;
    item_t *items = calloc(N, sizeof(item_t));
    size_t i, visited = 0;
    sf_actmap_init(&m);
    for (i = 0; i < N; i++) {
        items[i].node.key_len = (size_t)snprintf(items[i].key, sizeof items[i].key, "ns/t/%zu", i);
        items[i].node.key = items[i].key;
        items[i].node.hash = sf_actmap_hash(items[i].key, items[i].node.key_len);
        items[i].value = (int)i;
        sf_actmap_put(&m, &items[i].node);
        /* Everything inserted so far stays reachable while rehashing. */
        if (i % 997 == 0) {
            size_t j;
            for (j = 0; j <= i; j += 101)
                ck_assert_ptr_eq(sf_actmap_get(&m, items[j].key, items[j].node.key_len,
                                               items[j].node.hash),
                                 &items[j].node);
        }
    }
    ck_assert_uint_eq(sf_actmap_count(&m), N);
    sf_actmap_foreach(&m, count_fn, &visited);
    ck_assert_uint_eq(visited, N);
    for (i = 0; i < N; i += 2)
        sf_actmap_del(&m, &items[i].node);
    ck_assert_uint_eq(sf_actmap_count(&m), N / 2);
    for (i = 0; i < N; i++) {
        sf_actmap_node_t *n =
            sf_actmap_get(&m, items[i].key, items[i].node.key_len, items[i].node.hash);
        if (i % 2)
            ck_assert_ptr_eq(n, &items[i].node);
        else
            ck_assert_ptr_null(n);
    }
    ck_assert_ptr_null(sf_actmap_get(&m, "nope", 4, sf_actmap_hash("nope", 4)));
    sf_actmap_dispose(&m);
    free(items);
}
END_TEST

Suite *sf_runtime_core_actmap_suite(void)
{
    Suite *s = suite_create("runtime_core_actmap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_actmap_grow_and_delete);
    suite_add_tcase(s, tc);
    return s;
}
