/* statefun-c: Apache License 2.0.
 *
 * A failmalloc allocator for tests (STYLE 28): an sf_mem over libc that fails
 * the Nth allocation, counts the failures and the blocks still live, so that
 * a test can rerun a scenario failing each allocation in turn and check that
 * every failure is reported (SF_ENOMEM) and nothing leaks. One per test, on
 * the test's thread.
 */
#ifndef SF_FAILMALLOC_H
#define SF_FAILMALLOC_H

#include "statefun/sf.h"

typedef struct sf_test_failmalloc_s {
    long countdown; /* fail the allocation when it reaches 0; negative: never */
    long live;      /* blocks currently allocated */
    long failures;  /* allocations failed so far */
    sf_mem mem;     /* the allocator to hand out; its user data is this struct */
} sf_test_failmalloc_t;

/** Sets |fm| to fail nothing, with no block live and |fm->mem| ready. */
void sf_test_failmalloc_init(sf_test_failmalloc_t *fm);

#endif /* SF_FAILMALLOC_H */
