/* statefun-c: Apache License 2.0.
 *
 * Aborting allocators of the runtime (see xalloc.h).
 */
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#include "sf_common.h"

static void oom(const char *file, int line) { sf__panic(file, line, "out of memory"); }

void *sf__xmalloc(size_t size, const char *file, int line)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(file, line);
    return p;
}

void *sf__xcalloc(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(file, line);
    return p;
}

void *sf__xrealloc(void *ptr, size_t size, const char *file, int line)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        oom(file, line);
    return p;
}

char *sf__xstrndup(const char *s, size_t len, const char *file, int line)
{
    char *p = sf__xmalloc(len + 1, file, line);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
