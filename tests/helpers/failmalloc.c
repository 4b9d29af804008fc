/* statefun-c: Apache License 2.0.
 *
 * The failmalloc allocator of failmalloc.h: libc underneath, a countdown to
 * the allocation that fails, and a count of live blocks (a realloc of a live
 * block does not add one).
 */
#include "failmalloc.h"

#include <stdlib.h>

static bool fm_fail(sf_test_failmalloc_t *fm)
{
    if (fm->countdown >= 0 && fm->countdown-- == 0) {
        fm->failures++;
        return true;
    }
    return false;
}

static void *fm_malloc(size_t n, void *ud)
{
    sf_test_failmalloc_t *fm = ud;
    void *p = fm_fail(fm) ? NULL : malloc(n);
    fm->live += p != NULL;
    return p;
}

static void fm_free(void *p, void *ud)
{
    sf_test_failmalloc_t *fm = ud;
    fm->live -= p != NULL;
    free(p);
}

static void *fm_calloc(size_t m, size_t n, void *ud)
{
    sf_test_failmalloc_t *fm = ud;
    void *p = fm_fail(fm) ? NULL : calloc(m, n);
    fm->live += p != NULL;
    return p;
}

static void *fm_realloc(void *old, size_t n, void *ud)
{
    sf_test_failmalloc_t *fm = ud;
    void *p = fm_fail(fm) ? NULL : realloc(old, n);
    fm->live += p != NULL && old == NULL;
    return p;
}

void sf_test_failmalloc_init(sf_test_failmalloc_t *fm)
{
    sf_mem mem = {fm, fm_malloc, fm_free, fm_calloc, fm_realloc};
    fm->countdown = -1;
    fm->live = 0;
    fm->failures = 0;
    fm->mem = mem;
}
