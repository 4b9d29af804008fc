/* statefun-c: Apache License 2.0.
 *
 * Allocation in the runtime binary: sf_xmalloc and friends abort with file
 * and line when memory runs out, so call sites carry no NULL checks (the
 * runtime is a process, not a library; the SDK uses sf_mem instead).
 */
#ifndef SF_XALLOC_H
#define SF_XALLOC_H

#include <stddef.h>

void *sf__xmalloc(size_t size, const char *file, int line);
void *sf__xcalloc(size_t n, size_t size, const char *file, int line);
void *sf__xrealloc(void *p, size_t size, const char *file, int line);
char *sf__xstrndup(const char *s, size_t len, const char *file, int line);

#define sf_xmalloc(n) sf__xmalloc((n), __FILE__, __LINE__)
#define sf_xcalloc(n, s) sf__xcalloc((n), (s), __FILE__, __LINE__)
#define sf_xrealloc(p, n) sf__xrealloc((p), (n), __FILE__, __LINE__)
#define sf_xstrndup(s, n) sf__xstrndup((s), (n), __FILE__, __LINE__)
#define sf_xstrdup(s) sf__xstrndup((s), strlen(s), __FILE__, __LINE__)

#endif
