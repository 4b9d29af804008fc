/* statefun-c: Apache License 2.0.
 *
 * The registry of bound function types: binding (with validation and a copy
 * of every state spec), lookup by namespace and name, and the helper that
 * SF_MODULE exports to create a registry and run the user's registration.
 *
 * Binding happens on one thread before serving; afterwards the registry is
 * read-only and any thread may look functions up.
 */
#include <string.h>

#include "sf_sdk_int.h"

int sf_functions_new(const sf_mem *mem, sf_functions_t **out)
{
    sf_functions_t *fns;
    if (!out)
        return SF_EINVAL;
    *out = NULL;
    if (mem && (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc))
        return SF_EINVAL;
    fns = sf_mem_calloc(mem, 1, sizeof *fns);
    if (!fns)
        return SF_ENOMEM;
    fns->mem = mem;
    *out = fns;
    return SF_OK;
}

static void function_free(const sf_mem *mem, sf__function_t *f)
{
    size_t i;
    if (!f)
        return;
    for (i = 0; i < f->nspecs; i++) {
        sf_mem_free(mem, (char *)f->specs[i].name);
        sf_mem_free(mem, (char *)f->specs[i].type);
    }
    sf_mem_free(mem, f->specs);
    sf_mem_free(mem, f->type);
    sf_mem_free(mem, f);
}

void sf_functions_free(sf_functions_t *fns)
{
    size_t i;
    if (!fns)
        return;
    for (i = 0; i < fns->n; i++)
        function_free(fns->mem, fns->fns[i]);
    sf_mem_free(fns->mem, fns->fns);
    sf_mem_free(fns->mem, fns);
}

/* A function type is "namespace/name": exactly one '/', both sides non-empty. */
static bool type_valid(const char *type, size_t *ns_len)
{
    const char *slash = strchr(type, '/');
    if (!slash || slash == type || slash[1] == '\0' || strchr(slash + 1, '/'))
        return false;
    *ns_len = (size_t)(slash - type);
    return true;
}

static int specs_validate(const sf_value_spec_t *specs, size_t nspecs)
{
    size_t i, j;
    if (nspecs && !specs)
        return SF_EINVAL;
    for (i = 0; i < nspecs; i++) {
        const sf_value_spec_t *s = &specs[i];
        if (!s->name || !*s->name || !s->type || !*s->type)
            return SF_EINVAL;
        if (s->expire_mode != SF_EXPIRE_NONE && s->expire_mode != SF_EXPIRE_AFTER_WRITE &&
            s->expire_mode != SF_EXPIRE_AFTER_INVOKE)
            return SF_EINVAL;
        if (s->expire_after_ms < 0)
            return SF_EINVAL;
        for (j = 0; j < i; j++)
            if (strcmp(specs[j].name, s->name) == 0)
                return SF_EINVAL;
    }
    return SF_OK;
}

int sf_functions_bind(sf_functions_t *fns, const char *type, sf_function_cb cb, void *user_data,
                      const sf_value_spec_t *specs, size_t nspecs)
{
    sf__function_t *f = NULL;
    size_t ns_len, i;
    int rv;

    if (!fns || !type || !cb || !type_valid(type, &ns_len))
        return SF_EINVAL;
    if ((rv = specs_validate(specs, nspecs)) != 0)
        return rv;
    for (i = 0; i < fns->n; i++)
        if (strcmp(fns->fns[i]->type, type) == 0)
            return SF_EEXIST;

    if (fns->n == fns->cap) {
        size_t cap = fns->cap ? fns->cap * 2 : 8;
        sf__function_t **arr = sf_mem_realloc(fns->mem, fns->fns, cap * sizeof *arr);
        if (!arr)
            return SF_ENOMEM;
        fns->fns = arr;
        fns->cap = cap;
    }
    f = sf_mem_calloc(fns->mem, 1, sizeof *f);
    if (!f)
        return SF_ENOMEM;
    f->type = sf_mem_strndup(fns->mem, type, strlen(type));
    if (!f->type)
        goto fail;
    f->ns_len = ns_len;
    f->name = f->type + ns_len + 1;
    f->cb = cb;
    f->user_data = user_data;
    if (nspecs) {
        f->specs = sf_mem_calloc(fns->mem, nspecs, sizeof *f->specs);
        if (!f->specs)
            goto fail;
        /* nspecs grows as each spec is fully copied, so function_free frees
         * exactly what was copied. */
        for (i = 0; i < nspecs; i++) {
            sf_value_spec_t *d = &f->specs[i];
            d->name = sf_mem_strndup(fns->mem, specs[i].name, strlen(specs[i].name));
            d->type = sf_mem_strndup(fns->mem, specs[i].type, strlen(specs[i].type));
            d->expire_mode = specs[i].expire_mode;
            d->expire_after_ms =
                specs[i].expire_mode == SF_EXPIRE_NONE ? 0 : specs[i].expire_after_ms;
            f->nspecs++;
            if (!d->name || !d->type)
                goto fail;
        }
    }
    fns->fns[fns->n++] = f;
    return SF_OK;

fail:
    function_free(fns->mem, f);
    return SF_ENOMEM;
}

size_t sf_functions_count(const sf_functions_t *fns)
{
    return fns ? fns->n : 0;
}

const char *sf_functions_type(const sf_functions_t *fns, size_t i)
{
    return fns && i < fns->n ? fns->fns[i]->type : NULL;
}

int sf_functions_create(const sf_mem *mem, sf_register_cb register_fn, sf_functions_t **out)
{
    sf_functions_t *fns;
    int rv;
    if (!out || !register_fn)
        return SF_EINVAL;
    *out = NULL;
    if ((rv = sf_functions_new(mem, &fns)) != 0)
        return rv;
    rv = register_fn(fns);
    if (rv != 0) {
        sf_functions_free(fns);
        return rv < 0 ? rv : SF_EFUNCTION;
    }
    *out = fns;
    return SF_OK;
}

const sf__function_t *sf__functions_find(const sf_functions_t *fns, const char *ns,
                                         const char *name)
{
    size_t i, ns_len;
    if (!fns || !ns || !name)
        return NULL;
    ns_len = strlen(ns);
    for (i = 0; i < fns->n; i++) {
        const sf__function_t *f = fns->fns[i];
        if (f->ns_len == ns_len && memcmp(f->type, ns, ns_len) == 0 && strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}
