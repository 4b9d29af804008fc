/* statefun-c: Apache License 2.0.
 *
 * dlopen-based loading of SDK function libraries (see embedded.h).
 */
#include "embedded.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

int sf_embedded_open(const char *path, sf_embedded_t **out)
{
    const sf_module_abi_t *(*entry)(void);
    sf_embedded_t *e;
    void *dl;
    int rv;

    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        sf_log_error("embedded module %s: %s", path, dlerror());
        return SF_ENOTFOUND;
    }
    *(void **)&entry = dlsym(dl, SF_MODULE_SYMBOL);
    if (!entry) {
        sf_log_error("embedded module %s: no %s symbol (was it built with SF_MODULE?)", path,
                     SF_MODULE_SYMBOL);
        dlclose(dl);
        return SF_ENOTFOUND;
    }
    e = sf_xcalloc(1, sizeof *e);
    e->_dl = dl;
    e->path = sf_xstrndup(path, strlen(path));
    e->abi = entry();
    if (!e->abi || e->abi->abi_version != SF_MODULE_ABI_VERSION ||
        e->abi->struct_size < sizeof(sf_module_abi_t)) {
        sf_log_error("embedded module %s: module ABI %u, this runtime needs %u", path,
                     e->abi ? e->abi->abi_version : 0, SF_MODULE_ABI_VERSION);
        sf_embedded_close(e);
        return SF_EUNSUPPORTED;
    }
    if ((rv = e->abi->functions_new(NULL, &e->fns)) != 0) {
        sf_log_error("embedded module %s: registering its functions failed: %s", path,
                     e->abi->strerror(rv));
        e->fns = NULL;
        sf_embedded_close(e);
        return rv;
    }
    sf_log_info("embedded module %s: %zu function type(s), SDK %s", path,
                e->abi->functions_count(e->fns), e->abi->sdk_version);
    *out = e;
    return SF_OK;
}

void sf_embedded_close(sf_embedded_t *e)
{
    if (!e)
        return;
    if (e->fns)
        e->abi->functions_free(e->fns);
    if (e->_dl)
        dlclose(e->_dl);
    free(e->path);
    free(e);
}

bool sf_embedded_has(const sf_embedded_t *e, const char *ns, const char *name)
{
    size_t i, n = e->abi->functions_count(e->fns), nl = strlen(ns);
    for (i = 0; i < n; i++) {
        const char *t = e->abi->functions_type(e->fns, i);
        if (strncmp(t, ns, nl) == 0 && t[nl] == '/' && strcmp(t + nl + 1, name) == 0)
            return true;
    }
    return false;
}

int sf_embedded_invoke(const sf_embedded_t *e, const sf_pb_to_function_t *req, sf_arena_t *arena,
                       sf_pb_from_function_t **out, const char **reason)
{
    *reason = "";
    return e->abi->invoke_pb(e->fns, req, arena, out, reason);
}
