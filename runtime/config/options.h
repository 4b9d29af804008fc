/* statefun-c: Apache License 2.0.
 *
 * The runtime's options (SPEC 4): one table describes every option once, and
 * the command line (`--name VALUE`, `--name=VALUE`), the environment
 * (`STATEFUN_NAME`, dashes as underscores, upper case) and the `runtime:`
 * section of the module YAML (kebab-case `state-dir` or camelCase `stateDir`)
 * are all read through it. Precedence, lowest to highest:
 *
 *     built-in default  <  module YAML  <  environment  <  command line
 *
 * An empty environment variable counts as unset. A value given twice on the
 * command line: the last one wins. Adding an option is one enum entry, one
 * field in sf_options_t and one line in the table in options.c.
 *
 * Threading: main() builds an sf_options_t before any thread starts; it is
 * read-only afterwards, so any thread may read it.
 */
#ifndef SF_OPTIONS_H
#define SF_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "log.h"
#include "sf_common.h"

/** Option identifiers, in table (and --help) order. */
typedef enum {
    SF_OPT_STATE_DIR = 0,
    SF_OPT_STATE_BACKEND,
    SF_OPT_WORKERS,
    SF_OPT_MAX_PARALLELISM,
    SF_OPT_CHECKPOINT_INTERVAL,
    SF_OPT_ADMIN,
    SF_OPT_LOG_LEVEL,
    SF_OPT_RESTORE,
    SF_OPT_CHECKPOINTS_RETAINED,
    SF_OPT_INGRESS_FSYNC,
    SF_OPT__COUNT
} sf_opt_id;

/** Where an option's effective value came from. */
typedef enum {
    SF_OPT_SRC_DEFAULT = 0,
    SF_OPT_SRC_YAML = 1,
    SF_OPT_SRC_ENV = 2,
    SF_OPT_SRC_CLI = 3,
} sf_opt_source;

typedef enum {
    SF_STATE_BACKEND_ROCKSDB = 0,
    SF_STATE_BACKEND_MEMORY = 1,
} sf_state_backend;

/** A listen address: an IP literal (no brackets) and a port. */
typedef struct sf_hostport_s {
    char host[48];
    uint16_t port;
} sf_hostport_t;

/** The effective configuration. Fields are read-only once resolved. */
typedef struct sf_options_s {
    char *state_dir;                     /* --state-dir (owned) */
    sf_state_backend state_backend;      /* --state-backend */
    uint32_t workers;                    /* --workers, >= 1 and <= max_parallelism */
    uint32_t max_parallelism;            /* --max-parallelism, 1..32768 */
    uint64_t checkpoint_interval_ms;     /* --checkpoint-interval; 0: checkpoints off */
    sf_hostport_t admin;                 /* --admin */
    sf_log_level log_level;              /* --log-level */
    char *restore;                       /* --restore: a checkpoint or savepoint dir, or NULL */
    uint32_t checkpoints_retained;       /* --checkpoints-retained */
    int ingress_fsync;                   /* --ingress-fsync: 0 always, 1 interval, 2 never */
    sf_opt_source source[SF_OPT__COUNT]; /* where each value came from */
    char *origin[SF_OPT__COUNT];         /* "FILE:LINE", "STATEFUN_X" or "--x"; NULL for defaults */
} sf_options_t;

/** One option assignment from the command line or a YAML `runtime:` section. */
typedef struct sf_opt_setting_s {
    sf_opt_id opt;
    char *value; /* owned */
    char *file;  /* owned; NULL for the command line */
    int line;    /* YAML line, 0 for the command line */
} sf_opt_setting_t;

/** Value kinds of the table. */
typedef enum {
    SF_OPT_T_STRING,   /* char * */
    SF_OPT_T_ENUM,     /* int: index into choices */
    SF_OPT_T_UINT,     /* uint32_t within [min, max] */
    SF_OPT_T_DURATION, /* uint64_t milliseconds */
    SF_OPT_T_HOSTPORT, /* sf_hostport_t */
    SF_OPT_T_BOOL,     /* bool; "--name" alone means true */
} sf_opt_type;

/** One row of the option table. */
typedef struct sf_opt_def_s {
    sf_opt_id id;
    const char *name;  /* kebab-case, as on the command line */
    const char *camel; /* camelCase alias accepted in YAML */
    const char *env;   /* environment variable */
    sf_opt_type type;
    const char *metavar;        /* for --help */
    const char *def;            /* default value as text; NULL: computed */
    const char *def_doc;        /* how a computed default is found, for --help */
    const char *const *choices; /* SF_OPT_T_ENUM: NULL-terminated */
    uint32_t min, max;          /* SF_OPT_T_UINT */
    size_t offset;              /* of the field in sf_options_t */
    const char *help;
} sf_opt_def_t;

/** The option table (SF_OPT__COUNT rows, indexed by sf_opt_id). */
const sf_opt_def_t *sf_options_table(void);

/**
 * Finds an option by its kebab-case or camelCase name (YAML keys) or by
 * "--name" (command line). Returns the row or NULL.
 */
const sf_opt_def_t *sf_options_lookup(const char *name);

/** Sets every option to its built-in default (workers: number of CPUs). */
void sf_options_init(sf_options_t *o);
void sf_options_dispose(sf_options_t *o);

/**
 * Parses |value| for option |opt| and stores it, recording |src| and
 * |origin| (copied; may be NULL). Returns 0, or SF_EINVAL with a one-line
 * reason in |err| (which does not repeat the option name).
 */
int sf_options_set(sf_options_t *o, sf_opt_id opt, const char *value, sf_opt_source src,
                   const char *origin, char *err, size_t errlen);

/** Checks |value| for option |opt| without storing it (same errors). */
int sf_options_check_value(sf_opt_id opt, const char *value, char *err, size_t errlen);

/** Looks up an environment variable; NULL or "" means unset. */
typedef const char *(*sf_getenv_fn)(const char *name, void *user_data);

/**
 * Builds the effective configuration into |o| (which must be initialized):
 * defaults, then |yaml| settings (errors reported at their FILE:LINE), then
 * the environment through |getenv_fn| (NULL: getenv; errors reported against
 * the variable's name), then |cli| settings (errors against "command line").
 * Then the cross-option checks (workers <= max-parallelism; a defaulted
 * worker count is clamped instead). Returns 0 or SF_EINVAL (see |diags|).
 */
int sf_options_resolve(sf_options_t *o, const sf_opt_setting_t *yaml, size_t nyaml,
                       const sf_opt_setting_t *cli, size_t ncli, sf_getenv_fn getenv_fn,
                       void *getenv_user_data, sf_diags_t *diags);

/** Writes option |opt|'s effective value as text into |buf|. Returns |buf|. */
char *sf_options_format(const sf_options_t *o, sf_opt_id opt, char *buf, size_t len);

/** "default", "module yaml", "environment" or "command line". */
const char *sf_options_source_name(sf_opt_source src);

/* ------------------------------------------------------------------------ */
/* Command line                                                               */

/** A parsed command line: `statefun COMMAND [options] FILE...`. */
typedef struct sf_cli_s {
    char *command;              /* "run", "validate", or NULL */
    bool help, version;         /* --help / -h, --version / -V */
    bool verbose;               /* -v / --verbose: validate prints the effective configuration */
    sf_opt_setting_t *settings; /* options in command-line order */
    size_t nsettings;
    char **files; /* module files */
    size_t nfiles;
    size_t _settings_cap, _files_cap;
} sf_cli_t;

/**
 * Parses |argv| (argv[0] is the program). Options may appear anywhere after
 * the command; "--" ends them. Only syntax is checked here (unknown option,
 * missing value); values are checked by sf_options_resolve. Returns 0 or
 * SF_EINVAL with errors in |diags| ("command line: ...").
 */
int sf_cli_parse(sf_cli_t *cli, int argc, char **argv, sf_diags_t *diags);
void sf_cli_dispose(sf_cli_t *cli);

/** Prints the option list for --help. */
void sf_options_print_help(FILE *out);

/** The number of CPUs this process may run on (at least 1). */
uint32_t sf_options_cpu_count(void);

#endif /* SF_OPTIONS_H */
