/* statefun-c: Apache License 2.0.
 *
 * Diagnostics of configuration loading: a list of errors and warnings, each
 * with the file (or "command line", or an environment variable name) and the
 * line it is about. Loading never stops at the first problem; everything is
 * collected, then printed once, sorted, as
 *
 *     FILE:LINE: message
 *     FILE:LINE: warning: message
 *
 * ("FILE: message" when there is no line). Sorting keeps sources that are not
 * files first, then the registered files in the order they were given, each by
 * line, and insertion order among equals.
 *
 * Threading: an sf_diags_t belongs to its creator; not shared.
 */
#ifndef SF_DIAG_H
#define SF_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    SF_DIAG_ERROR = 0,
    SF_DIAG_WARNING = 1,
} sf_diag_severity;

typedef struct sf_diag_s {
    sf_diag_severity severity; /* read-only */
    char *source;              /* read-only: file name, "command line", env name */
    int line;                  /* read-only: 1-based; 0 when not about a line */
    char *msg;                 /* read-only: one line, no trailing newline */
    size_t _seq;
} sf_diag_t;

typedef struct sf_diags_s {
    sf_diag_t *items; /* read-only */
    size_t len;       /* read-only */
    size_t nerrors;   /* read-only */
    size_t nwarnings; /* read-only */
    size_t _cap;
    char **_files;
    size_t _nfiles, _files_cap;
} sf_diags_t;

void sf_diags_init(sf_diags_t *d);
void sf_diags_dispose(sf_diags_t *d);

/** Registers |file| as the next file in print order (no-op if known). */
void sf_diags_register_file(sf_diags_t *d, const char *file);

/** Adds one diagnostic; |source| and the message are copied. */
void sf_diags_add(sf_diags_t *d, sf_diag_severity sev, const char *source, int line,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define sf_diags_error(d, src, line, ...)                                                          \
    sf_diags_add((d), SF_DIAG_ERROR, (src), (line), __VA_ARGS__)
#define sf_diags_warn(d, src, line, ...)                                                           \
    sf_diags_add((d), SF_DIAG_WARNING, (src), (line), __VA_ARGS__)

/** Sorts (see above) and prints every diagnostic to |out|, one per line. */
void sf_diags_print(sf_diags_t *d, FILE *out);

/** Sorts in print order; sf_diags_print calls it. */
void sf_diags_sort(sf_diags_t *d);

/**
 * Finds the first diagnostic whose message contains |needle| (and, when
 * |line| > 0, is on that line). For tests. NULL when none.
 */
const sf_diag_t *sf_diags_find(const sf_diags_t *d, int line, const char *needle);

#endif /* SF_DIAG_H */
