/* statefun-c: Apache License 2.0.
 *
 * Private to runtime/config: allocation helpers that abort with file and line
 * when memory runs out (house style 14: the runtime binary does not carry
 * NULL checks at every call site). Any thread.
 */
#ifndef SF_CFG_MEM_H
#define SF_CFG_MEM_H

#include <stdlib.h>
#include <string.h>

#include "sf_common.h"

static inline void *cfg__check(void *p, const char *file, int line)
{
    if (!p)
        sf__panic(file, line, "out of memory");
    return p;
}

static inline size_t cfg__nonzero(size_t n)
{
    return n == 0 ? 1 : n;
}

#define cfg_xmalloc(n) cfg__check(malloc(cfg__nonzero(n)), __FILE__, __LINE__)
#define cfg_xcalloc(n, s) cfg__check(calloc(cfg__nonzero(n), cfg__nonzero(s)), __FILE__, __LINE__)
#define cfg_xrealloc(p, n) cfg__check(realloc((p), cfg__nonzero(n)), __FILE__, __LINE__)
#define cfg_xstrdup(s) ((char *)cfg__check(strdup(s), __FILE__, __LINE__))
#define cfg_xstrndup(s, n) ((char *)cfg__check(strndup((s), (n)), __FILE__, __LINE__))

/* Grows |*arr| (element size |size|) so that index |len| is valid. */
static inline void *cfg_grow(void *arr, size_t *cap, size_t len, size_t size)
{
    if (len < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 4;
    arr = cfg_xrealloc(arr, *cap * size);
    memset((char *)arr + len * size, 0, (*cap - len) * size);
    return arr;
}

#endif /* SF_CFG_MEM_H */
