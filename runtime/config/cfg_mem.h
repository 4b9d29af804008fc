/* statefun-c: Apache License 2.0.
 *
 * Private to runtime/config: the runtime's aborting allocators (xalloc.h)
 * and a helper to grow the arrays of the parsed configuration. Any thread.
 */
#ifndef SF_CFG_MEM_H
#define SF_CFG_MEM_H

#include <string.h>

#include "xalloc.h"

/* Grows |*arr| (element size |size|) so that index |len| is valid. */
static inline void *cfg_grow(void *arr, size_t *cap, size_t len, size_t size)
{
    if (len < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 4;
    arr = sf_xrealloc(arr, *cap * size);
    memset((char *)arr + len * size, 0, (*cap - len) * size);
    return arr;
}

#endif /* SF_CFG_MEM_H */
