/* statefun-c: Apache License 2.0.
 *
 * The option table, value parsing, precedence resolution and the command line
 * parser (see options.h). Runs on the main thread before anything starts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cfg_mem.h"
#include "duration.h"
#include "options.h"

/* The key group number is stored as a 2-byte prefix; Flink caps it at 2^15. */
#define MAX_PARALLELISM_LIMIT 32768

/* In the order of sf_ilog_fsync (runtime/log/ingress_log.h). */
static const char *const fsync_choices[] = {"always", "interval", "never", NULL};
static const char *const backend_choices[] = {"rocksdb", "memory", NULL};
static const char *const log_level_choices[] = {"error", "warn", "info", "debug", NULL};

#define OFF(field) offsetof(sf_options_t, field)

/* Enum options are stored through an int pointer. */
_Static_assert(sizeof(sf_state_backend) == sizeof(int), "enum options must be int-sized");
_Static_assert(sizeof(sf_log_level) == sizeof(int), "enum options must be int-sized");

/*
 * One row per option, in sf_opt_id order. A new option (say --restore DIR)
 * is an enum entry, a field and a row here; the command line, environment,
 * YAML, --help and the effective-configuration log all follow from the row.
 */
static const sf_opt_def_t table[SF_OPT__COUNT] = {
    [SF_OPT_STATE_DIR] = {.id = SF_OPT_STATE_DIR,
                          .name = "state-dir",
                          .camel = "stateDir",
                          .env = "STATEFUN_STATE_DIR",
                          .type = SF_OPT_T_STRING,
                          .metavar = "DIR",
                          .def = "./statefun-data",
                          .offset = OFF(state_dir),
                          .help = "state, checkpoints and ingress logs"},
    [SF_OPT_STATE_BACKEND] = {.id = SF_OPT_STATE_BACKEND,
                              .name = "state-backend",
                              .camel = "stateBackend",
                              .env = "STATEFUN_STATE_BACKEND",
                              .type = SF_OPT_T_ENUM,
                              .metavar = "rocksdb|memory",
                              .def = "rocksdb",
                              .choices = backend_choices,
                              .offset = OFF(state_backend),
                              .help = "where keyed state lives between checkpoints"},
    [SF_OPT_WORKERS] = {.id = SF_OPT_WORKERS,
                        .name = "workers",
                        .camel = "workers",
                        .env = "STATEFUN_WORKERS",
                        .type = SF_OPT_T_UINT,
                        .metavar = "N",
                        .def_doc = "number of CPUs",
                        .min = 1,
                        .max = MAX_PARALLELISM_LIMIT,
                        .offset = OFF(workers),
                        .help = "worker threads, each owning a range of key groups"},
    [SF_OPT_MAX_PARALLELISM] = {.id = SF_OPT_MAX_PARALLELISM,
                                .name = "max-parallelism",
                                .camel = "maxParallelism",
                                .env = "STATEFUN_MAX_PARALLELISM",
                                .type = SF_OPT_T_UINT,
                                .metavar = "N",
                                .def = "128",
                                .min = 1,
                                .max = MAX_PARALLELISM_LIMIT,
                                .offset = OFF(max_parallelism),
                                .help = "number of key groups; fixed for the life of a state dir"},
    [SF_OPT_CHECKPOINT_INTERVAL] = {.id = SF_OPT_CHECKPOINT_INTERVAL,
                                    .name = "checkpoint-interval",
                                    .camel = "checkpointInterval",
                                    .env = "STATEFUN_CHECKPOINT_INTERVAL",
                                    .type = SF_OPT_T_DURATION,
                                    .metavar = "DUR",
                                    .def = "1s",
                                    .offset = OFF(checkpoint_interval_ms),
                                    .help = "time between checkpoints; 0 turns them off"},
    [SF_OPT_ADMIN] = {.id = SF_OPT_ADMIN,
                      .name = "admin",
                      .camel = "admin",
                      .env = "STATEFUN_ADMIN",
                      .type = SF_OPT_T_HOSTPORT,
                      .metavar = "ADDR:PORT",
                      .def = "127.0.0.1:8081",
                      .offset = OFF(admin),
                      .help = "health, metrics and admin API listener"},
    [SF_OPT_LOG_LEVEL] = {.id = SF_OPT_LOG_LEVEL,
                          .name = "log-level",
                          .camel = "logLevel",
                          .env = "STATEFUN_LOG_LEVEL",
                          .type = SF_OPT_T_ENUM,
                          .metavar = "error|warn|info|debug",
                          .def = "info",
                          .choices = log_level_choices,
                          .offset = OFF(log_level),
                          .help = "log verbosity (logs go to stderr)"},
    [SF_OPT_RESTORE] = {.id = SF_OPT_RESTORE,
                        .name = "restore",
                        .camel = "restore",
                        .env = "STATEFUN_RESTORE",
                        .type = SF_OPT_T_STRING,
                        .metavar = "DIR",
                        .def_doc = "none: the newest checkpoint of the state dir",
                        .offset = OFF(restore),
                        .help = "start from this savepoint or checkpoint directory"},
    [SF_OPT_CHECKPOINTS_RETAINED] = {.id = SF_OPT_CHECKPOINTS_RETAINED,
                                     .name = "checkpoints-retained",
                                     .camel = "checkpointsRetained",
                                     .env = "STATEFUN_CHECKPOINTS_RETAINED",
                                     .type = SF_OPT_T_UINT,
                                     .metavar = "N",
                                     .def = "3",
                                     .min = 1,
                                     .max = 1000,
                                     .offset = OFF(checkpoints_retained),
                                     .help = "complete checkpoints kept in the state dir"},
    [SF_OPT_INGRESS_FSYNC] = {.id = SF_OPT_INGRESS_FSYNC,
                              .name = "ingress-fsync",
                              .camel = "ingressFsync",
                              .env = "STATEFUN_INGRESS_FSYNC",
                              .type = SF_OPT_T_ENUM,
                              .metavar = "always|interval|never",
                              .def = "interval",
                              .choices = fsync_choices,
                              .offset = OFF(ingress_fsync),
                              .help = "when the ingress log is fdatasynced (a 200 survives "
                                      "kill -9 in every mode; power loss: docs/ingress-log.md)"},
};

const sf_opt_def_t *sf_options_table(void)
{
    return table;
}

const sf_opt_def_t *sf_options_lookup(const char *name)
{
    size_t i;

    if (!name)
        return NULL;
    if (name[0] == '-' && name[1] == '-') {
        for (i = 0; i < SF_OPT__COUNT; i++) {
            if (strcmp(name + 2, table[i].name) == 0)
                return &table[i];
        }
        return NULL;
    }
    for (i = 0; i < SF_OPT__COUNT; i++) {
        if (strcmp(name, table[i].name) == 0 || strcmp(name, table[i].camel) == 0)
            return &table[i];
    }
    return NULL;
}

uint32_t sf_options_cpu_count(void)
{
    cpu_set_t set;
    long n;

    /* The affinity mask honours taskset and cgroup cpusets; sysconf does not. */
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0)
            return (uint32_t)c;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
    return SF_EINVAL;
}

static int parse_uint(const sf_opt_def_t *d, const char *value, uint32_t *out, char *err,
                      size_t errlen)
{
    unsigned long long v;
    char *end;

    if (!isdigit((unsigned char)value[0]))
        return fail(err, errlen, "expected a whole number, got '%s'", value);
    errno = 0;
    v = strtoull(value, &end, 10);
    if (*end != '\0')
        return fail(err, errlen, "expected a whole number, got '%s'", value);
    if (errno == ERANGE || v < d->min || v > d->max) {
        if (err && errlen)
            snprintf(err, errlen, "%s is out of range (%u..%u)", value, d->min, d->max);
        return SF_EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_enum(const sf_opt_def_t *d, const char *value, int *out, char *err, size_t errlen)
{
    char list[128];
    size_t i, n = 0;

    for (i = 0; d->choices[i]; i++) {
        if (strcasecmp(value, d->choices[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    if (d->id == SF_OPT_LOG_LEVEL && strcasecmp(value, "warning") == 0) {
        *out = SF_LOG_WARN;
        return 0;
    }
    list[0] = '\0';
    for (i = 0; d->choices[i] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", d->choices[i]);
    if (err && errlen)
        snprintf(err, errlen, "'%s' is not one of: %s", value, list);
    return SF_EINVAL;
}

static int parse_bool(const char *value, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;

    for (i = 0; i < SF_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return fail(err, errlen, "expected true or false, got '%s'", value);
}

/*
 * ADDR:PORT where ADDR is an IPv4 literal, a bracketed IPv6 literal, or
 * "localhost" (taken as 127.0.0.1: the listener binds, it does not resolve).
 */
static int parse_hostport(const char *value, sf_hostport_t *out, char *err, size_t errlen)
{
    const char *colon, *host = value, *port_s;
    size_t hostlen;
    char hostbuf[sizeof out->host];
    unsigned char addr[16];
    unsigned long port;
    char *end;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (!close || close[1] != ':')
            return fail(err, errlen, "expected ADDR:PORT (IPv6 as [::1]:8081), got '%s'", value);
        host = value + 1;
        hostlen = (size_t)(close - host);
        port_s = close + 2;
    } else {
        colon = strrchr(value, ':');
        if (!colon || colon == value)
            return fail(err, errlen, "expected ADDR:PORT (e.g. 127.0.0.1:8081), got '%s'", value);
        if (memchr(value, ':', (size_t)(colon - value)))
            return fail(err, errlen, "an IPv6 address needs brackets ([::1]:8081): '%s'", value);
        hostlen = (size_t)(colon - value);
        port_s = colon + 1;
    }
    if (hostlen == 0 || hostlen >= sizeof hostbuf)
        return fail(err, errlen, "bad address in '%s'", value);
    memcpy(hostbuf, host, hostlen);
    hostbuf[hostlen] = '\0';
    if (strcasecmp(hostbuf, "localhost") == 0)
        snprintf(hostbuf, sizeof hostbuf, "127.0.0.1");
    if (inet_pton(value[0] == '[' ? AF_INET6 : AF_INET, hostbuf, addr) != 1)
        return fail(err, errlen, "'%s' is not an IP address (use e.g. 127.0.0.1 or [::1])",
                    hostbuf);
    if (!isdigit((unsigned char)port_s[0]))
        return fail(err, errlen, "bad port in '%s'", value);
    errno = 0;
    port = strtoul(port_s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return fail(err, errlen, "bad port in '%s'", value);
    if (port > 65535)
        return fail(err, errlen, "port out of range (0..65535) in '%s'", value);
    snprintf(out->host, sizeof out->host, "%s", hostbuf);
    out->port = (uint16_t)port;
    return 0;
}

int sf_options_set(sf_options_t *o, sf_opt_id opt, const char *value, sf_opt_source src,
                   const char *origin, char *err, size_t errlen)
{
    const sf_opt_def_t *d;
    char *field;
    int rv = 0;

    if ((int)opt < 0 || opt >= SF_OPT__COUNT)
        return fail(err, errlen, "%s", "no such option");
    d = &table[opt];
    field = (char *)o + d->offset;
    if (!value)
        return fail(err, errlen, "%s", "missing value");
    switch (d->type) {
    case SF_OPT_T_STRING:
        if (value[0] == '\0')
            return fail(err, errlen, "%s", "empty value");
        free(*(char **)field);
        *(char **)field = sf_xstrdup(value);
        break;
    case SF_OPT_T_ENUM: {
        int v;
        if ((rv = parse_enum(d, value, &v, err, errlen)) != 0)
            return rv;
        /* Every enum field is an int-sized C enum. */
        *(int *)field = v;
        break;
    }
    case SF_OPT_T_UINT: {
        uint32_t v;
        if ((rv = parse_uint(d, value, &v, err, errlen)) != 0)
            return rv;
        *(uint32_t *)field = v;
        break;
    }
    case SF_OPT_T_DURATION: {
        uint64_t v;
        char why[160];
        if ((rv = sf_duration_parse(value, &v, why, sizeof why)) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "bad duration '%.64s': %s", value, why);
            return rv;
        }
        *(uint64_t *)field = v;
        break;
    }
    case SF_OPT_T_HOSTPORT: {
        sf_hostport_t v;
        if ((rv = parse_hostport(value, &v, err, errlen)) != 0)
            return rv;
        *(sf_hostport_t *)field = v;
        break;
    }
    case SF_OPT_T_BOOL: {
        bool v;
        if ((rv = parse_bool(value, &v, err, errlen)) != 0)
            return rv;
        *(bool *)field = v;
        break;
    }
    }
    o->source[opt] = src;
    free(o->origin[opt]);
    o->origin[opt] = origin ? sf_xstrdup(origin) : NULL;
    return 0;
}

void sf_options_init(sf_options_t *o)
{
    size_t i;
    char err[256];

    memset(o, 0, sizeof *o);
    for (i = 0; i < SF_OPT__COUNT; i++) {
        if (table[i].def) {
            int rv = sf_options_set(o, table[i].id, table[i].def, SF_OPT_SRC_DEFAULT, NULL, err,
                                    sizeof err);
            SF_ASSERT(rv == 0); /* The table's own defaults must parse. */
        }
    }
    o->workers = sf_options_cpu_count();
    if (o->workers > MAX_PARALLELISM_LIMIT)
        o->workers = MAX_PARALLELISM_LIMIT;
}

void sf_options_dispose(sf_options_t *o)
{
    size_t i;

    if (!o)
        return;
    for (i = 0; i < SF_OPT__COUNT; i++) {
        if (table[i].type == SF_OPT_T_STRING)
            free(*(char **)((char *)o + table[i].offset));
        free(o->origin[i]);
    }
    memset(o, 0, sizeof *o);
}

int sf_options_check_value(sf_opt_id opt, const char *value, char *err, size_t errlen)
{
    sf_options_t scratch;
    int rv;

    memset(&scratch, 0, sizeof scratch);
    rv = sf_options_set(&scratch, opt, value, SF_OPT_SRC_DEFAULT, NULL, err, errlen);
    sf_options_dispose(&scratch);
    return rv;
}

static const char *default_getenv(const char *name, void *user_data)
{
    (void)user_data;
    return getenv(name);
}

int sf_options_resolve(sf_options_t *o, const sf_opt_setting_t *yaml, size_t nyaml,
                       const sf_opt_setting_t *cli, size_t ncli, sf_getenv_fn getenv_fn,
                       void *getenv_user_data, sf_diags_t *diags)
{
    size_t before = diags->nerrors, i;
    char err[256], origin[512];

    if (!getenv_fn)
        getenv_fn = default_getenv;

    for (i = 0; i < nyaml; i++) {
        const sf_opt_setting_t *s = &yaml[i];
        snprintf(origin, sizeof origin, "%s:%d", s->file ? s->file : "?", s->line);
        if (sf_options_set(o, s->opt, s->value, SF_OPT_SRC_YAML, origin, err, sizeof err) != 0)
            sf_diags_error(diags, s->file, s->line, "runtime option '%s': %s", table[s->opt].name,
                           err);
    }
    for (i = 0; i < SF_OPT__COUNT; i++) {
        const char *v = getenv_fn(table[i].env, getenv_user_data);
        if (!v || v[0] == '\0')
            continue;
        if (sf_options_set(o, table[i].id, v, SF_OPT_SRC_ENV, table[i].env, err, sizeof err) != 0)
            sf_diags_error(diags, "environment", 0, "%s: %s", table[i].env, err);
    }
    for (i = 0; i < ncli; i++) {
        const sf_opt_setting_t *s = &cli[i];
        snprintf(origin, sizeof origin, "--%s", table[s->opt].name);
        if (sf_options_set(o, s->opt, s->value, SF_OPT_SRC_CLI, origin, err, sizeof err) != 0)
            sf_diags_error(diags, "command line", 0, "--%s: %s", table[s->opt].name, err);
    }

    /* Cross-option checks. A worker owns at least one key group. */
    if (o->workers > o->max_parallelism) {
        if (o->source[SF_OPT_WORKERS] == SF_OPT_SRC_DEFAULT) {
            o->workers = o->max_parallelism;
        } else {
            const char *w = o->origin[SF_OPT_WORKERS], *m = o->origin[SF_OPT_MAX_PARALLELISM];
            sf_diags_error(diags,
                           o->source[SF_OPT_WORKERS] == SF_OPT_SRC_CLI ? "command line"
                                                                       : "configuration",
                           0, "workers (%u, from %s) must not exceed max-parallelism (%u, from %s)",
                           o->workers, w ? w : "default", o->max_parallelism, m ? m : "default");
        }
    }
    return diags->nerrors > before ? SF_EINVAL : 0;
}

char *sf_options_format(const sf_options_t *o, sf_opt_id opt, char *buf, size_t len)
{
    const sf_opt_def_t *d = &table[opt];
    const char *field = (const char *)o + d->offset;

    switch (d->type) {
    case SF_OPT_T_STRING:
        snprintf(buf, len, "%s", *(char *const *)field ? *(char *const *)field : "");
        break;
    case SF_OPT_T_ENUM:
        snprintf(buf, len, "%s", d->choices[*(const int *)field]);
        break;
    case SF_OPT_T_UINT:
        snprintf(buf, len, "%u", *(const uint32_t *)field);
        break;
    case SF_OPT_T_DURATION:
        sf_duration_format(*(const uint64_t *)field, buf, len);
        break;
    case SF_OPT_T_HOSTPORT: {
        const sf_hostport_t *hp = (const sf_hostport_t *)field;
        if (strchr(hp->host, ':'))
            snprintf(buf, len, "[%s]:%u", hp->host, hp->port);
        else
            snprintf(buf, len, "%s:%u", hp->host, hp->port);
        break;
    }
    case SF_OPT_T_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    }
    return buf;
}

const char *sf_options_source_name(sf_opt_source src)
{
    switch (src) {
    case SF_OPT_SRC_DEFAULT:
        return "default";
    case SF_OPT_SRC_YAML:
        return "module yaml";
    case SF_OPT_SRC_ENV:
        return "environment";
    case SF_OPT_SRC_CLI:
        return "command line";
    }
    return "?";
}

/* ------------------------------------------------------------------------ */
/* Command line                                                               */

static void cli_add_setting(sf_cli_t *cli, sf_opt_id opt, const char *value)
{
    sf_opt_setting_t *s;

    cli->settings =
        cfg_grow(cli->settings, &cli->_settings_cap, cli->nsettings, sizeof *cli->settings);
    s = &cli->settings[cli->nsettings++];
    s->opt = opt;
    s->value = sf_xstrdup(value);
    s->file = NULL;
    s->line = 0;
}

static void cli_add_file(sf_cli_t *cli, const char *file)
{
    cli->files = cfg_grow(cli->files, &cli->_files_cap, cli->nfiles, sizeof *cli->files);
    cli->files[cli->nfiles++] = sf_xstrdup(file);
}

int sf_cli_parse(sf_cli_t *cli, int argc, char **argv, sf_diags_t *diags)
{
    size_t before = diags->nerrors;
    bool options_done = false;
    int i;

    memset(cli, 0, sizeof *cli);
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const sf_opt_def_t *d;
        const char *eq, *value;
        char name[128];

        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (!cli->command && !options_done)
                cli->command = sf_xstrdup(arg);
            else
                cli_add_file(cli, arg);
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli->help = true;
            continue;
        }
        if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            cli->version = true;
            continue;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            cli->verbose = true;
            continue;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            cli->verbose = true;
            continue;
        }
        if (arg[1] != '-') {
            sf_diags_error(diags, "command line", 0, "unknown option '%s' (see --help)", arg);
            continue;
        }
        eq = strchr(arg, '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
        d = sf_options_lookup(name);
        if (!d) {
            sf_diags_error(diags, "command line", 0, "unknown option '%s' (see --help)", name);
            continue;
        }
        if (eq) {
            value = eq + 1;
        } else if (d->type == SF_OPT_T_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            sf_diags_error(diags, "command line", 0, "%s needs a value (%s)", name, d->metavar);
            continue;
        }
        cli_add_setting(cli, d->id, value);
    }
    return diags->nerrors > before ? SF_EINVAL : 0;
}

void sf_cli_dispose(sf_cli_t *cli)
{
    size_t i;

    if (!cli)
        return;
    for (i = 0; i < cli->nsettings; i++)
        free(cli->settings[i].value);
    for (i = 0; i < cli->nfiles; i++)
        free(cli->files[i]);
    free(cli->settings);
    free(cli->files);
    free(cli->command);
    memset(cli, 0, sizeof *cli);
}

void sf_options_print_help(FILE *out)
{
    size_t i;

    for (i = 0; i < SF_OPT__COUNT; i++) {
        const sf_opt_def_t *d = &table[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", d->name, d->metavar);
        fprintf(out, "  %-36s %s\n", left, d->help);
        fprintf(out, "  %-36s default %s, env %s\n", "", d->def ? d->def : d->def_doc, d->env);
    }
}
