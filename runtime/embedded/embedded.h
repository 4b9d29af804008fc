/* statefun-c: Apache License 2.0.
 *
 * Embedded function libraries (SPEC 5.3): a shared library built with the C
 * SDK is dlopen'ed with RTLD_LOCAL, its one entry symbol returns the SDK's
 * module ABI, and the runtime calls the library only through that struct.
 * The registry the library builds is immutable after loading, and the SDK's
 * struct-level invoke writes only into the caller's arena, so every worker
 * invokes the same registry concurrently, each with its own arena.
 *
 * Threading: open/close on the main thread; sf_embedded_invoke any thread.
 */
#ifndef SF_EMBEDDED_H
#define SF_EMBEDDED_H

#include <stdbool.h>

#include "sf_proto.h"
#include "statefun/sf.h"

typedef struct sf_embedded_s {
    char *path;                 /* read-only */
    const sf_module_abi_t *abi; /* read-only */
    sf_functions_t *fns;        /* read-only */
    void *_dl;
} sf_embedded_t;

/**
 * Loads |path|. Returns 0 and sets |*out|, or SF_ENOTFOUND (dlopen or the
 * symbol failed; logged with dlerror's text), SF_EUNSUPPORTED (ABI version
 * or struct size mismatch) or the library's own error from building its
 * registry.
 */
int sf_embedded_open(const char *path, sf_embedded_t **out);
void sf_embedded_close(sf_embedded_t *e);
/** Whether the library binds the function type "ns/name". */
bool sf_embedded_has(const sf_embedded_t *e, const char *ns, const char *name);

/**
 * Runs one batch: |req| in, |*out| allocated in |arena|. Returns 0 or the
 * SDK's error (SF_EPROTO, SF_ENOTFOUND, SF_EFUNCTION, SF_ENOMEM) with a
 * one-line |*reason|.
 */
int sf_embedded_invoke(const sf_embedded_t *e, const sf_pb_to_function_t *req, sf_arena_t *arena,
                       sf_pb_from_function_t **out, const char **reason);

#endif
