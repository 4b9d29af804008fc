/* statefun-c: Apache License 2.0.
 *
 * The diagnostics list (see diag.h). Owned by one thread, usually main()
 * while it loads the configuration.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_mem.h"
#include "diag.h"

void sf_diags_init(sf_diags_t *d)
{
    memset(d, 0, sizeof *d);
}

void sf_diags_dispose(sf_diags_t *d)
{
    size_t i;

    if (!d)
        return;
    for (i = 0; i < d->len; i++) {
        free(d->items[i].source);
        free(d->items[i].msg);
    }
    for (i = 0; i < d->_nfiles; i++)
        free(d->_files[i]);
    free(d->items);
    free(d->_files);
    memset(d, 0, sizeof *d);
}

void sf_diags_register_file(sf_diags_t *d, const char *file)
{
    size_t i;

    for (i = 0; i < d->_nfiles; i++) {
        if (strcmp(d->_files[i], file) == 0)
            return;
    }
    d->_files = cfg_grow(d->_files, &d->_files_cap, d->_nfiles, sizeof *d->_files);
    d->_files[d->_nfiles++] = sf_xstrdup(file);
}

void sf_diags_add(sf_diags_t *d, sf_diag_severity sev, const char *source, int line,
                  const char *fmt, ...)
{
    sf_diag_t *g;
    va_list ap;
    int n;

    d->items = cfg_grow(d->items, &d->_cap, d->len, sizeof *d->items);
    g = &d->items[d->len];
    g->severity = sev;
    g->source = sf_xstrdup(source ? source : "statefun");
    g->line = line < 0 ? 0 : line;
    g->_seq = d->len;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    g->msg = sf_xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(g->msg, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    /* One diagnostic is one line. */
    for (char *p = g->msg; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    d->len++;
    if (sev == SF_DIAG_ERROR)
        d->nerrors++;
    else
        d->nwarnings++;
}

/* The rank of a source: 0 for non-files, 1 + index for registered files. */
static size_t source_rank(const sf_diags_t *d, const char *source)
{
    size_t i;
    for (i = 0; i < d->_nfiles; i++) {
        if (strcmp(d->_files[i], source) == 0)
            return i + 1;
    }
    return 0;
}

/* qsort has no context argument; the list being sorted is passed here. */
static __thread const sf_diags_t *sort_ctx;

static int cmp_diag(const void *a, const void *b)
{
    const sf_diag_t *x = a, *y = b;
    size_t rx = source_rank(sort_ctx, x->source), ry = source_rank(sort_ctx, y->source);

    if (rx != ry)
        return rx < ry ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->_seq != y->_seq)
        return x->_seq < y->_seq ? -1 : 1;
    return 0;
}

void sf_diags_sort(sf_diags_t *d)
{
    if (d->len < 2)
        return;
    sort_ctx = d;
    qsort(d->items, d->len, sizeof *d->items, cmp_diag);
    sort_ctx = NULL;
}

void sf_diags_print(sf_diags_t *d, FILE *out)
{
    size_t i;

    sf_diags_sort(d);
    for (i = 0; i < d->len; i++) {
        const sf_diag_t *g = &d->items[i];
        const char *sev = g->severity == SF_DIAG_WARNING ? "warning: " : "";
        if (g->line > 0)
            fprintf(out, "%s:%d: %s%s\n", g->source, g->line, sev, g->msg);
        else
            fprintf(out, "%s: %s%s\n", g->source, sev, g->msg);
    }
    fflush(out);
}

const sf_diag_t *sf_diags_find(const sf_diags_t *d, int line, const char *needle)
{
    size_t i;

    for (i = 0; i < d->len; i++) {
        if (line > 0 && d->items[i].line != line)
            continue;
        if (strstr(d->items[i].msg, needle))
            return &d->items[i];
    }
    return NULL;
}
