/* statefun-c: Apache License 2.0.
 *
 * Tests of runtime/config/duration.c, options.c, diag.c and runtime/util/log.c:
 * every StateFun duration form and its errors; option values, defaults and
 * the precedence command line > environment > YAML > default; the command
 * line parser; diagnostics ordering; and the log line format.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "duration.h"
#include "log.h"
#include "options.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Durations                                                                  */

static uint64_t dur(const char *s)
{
    uint64_t ms = 12345;
    char err[128];
    ck_assert_msg(sf_duration_parse(s, &ms, err, sizeof err) == 0, "'%s' rejected: %s", s, err);
    return ms;
}

static void dur_bad(const char *s, const char *needle)
{
    uint64_t ms = 777;
    char err[128] = "";
    ck_assert_msg(sf_duration_parse(s, &ms, err, sizeof err) == SF_EINVAL, "'%s' accepted", s);
    ck_assert_msg(strstr(err, needle) != NULL, "'%s': error '%s' lacks '%s'", s, err, needle);
    ck_assert_uint_eq(ms, 777); /* untouched on error */
}

START_TEST(test_duration_spec_forms)
{
    /* SPEC 4's list. */
    ck_assert_uint_eq(dur("500ms"), 500);
    ck_assert_uint_eq(dur("10s"), 10000);
    ck_assert_uint_eq(dur("10 sec"), 10000);
    ck_assert_uint_eq(dur("2m"), 120000);
    ck_assert_uint_eq(dur("1 min"), 60000);
    ck_assert_uint_eq(dur("15min"), 900000);
    ck_assert_uint_eq(dur("1h"), 3600000);
    ck_assert_uint_eq(dur("0"), 0);
    ck_assert_uint_eq(dur("0s"), 0);
}
END_TEST

START_TEST(test_duration_flink_forms)
{
    /* Flink TimeUtils labels, as in real StateFun module files. */
    ck_assert_uint_eq(dur("1minute"), 60000);
    ck_assert_uint_eq(dur("1minutes"), 60000);
    ck_assert_uint_eq(dur("30seconds"), 30000);
    ck_assert_uint_eq(dur("10second"), 10000);
    ck_assert_uint_eq(dur("2min"), 120000);
    ck_assert_uint_eq(dur("3 mins"), 180000);
    ck_assert_uint_eq(dur("5 secs"), 5000);
    ck_assert_uint_eq(dur("2 hours"), 7200000);
    ck_assert_uint_eq(dur("1 hour"), 3600000);
    ck_assert_uint_eq(dur("1d"), 86400000);
    ck_assert_uint_eq(dur("2 days"), 172800000);
    ck_assert_uint_eq(dur("7 milli"), 7);
    ck_assert_uint_eq(dur("7 millis"), 7);
    ck_assert_uint_eq(dur("250 milliseconds"), 250);
    /* Case and surrounding blanks do not matter. */
    ck_assert_uint_eq(dur("  10S "), 10000);
    ck_assert_uint_eq(dur("1 Min"), 60000);
    ck_assert_uint_eq(dur("100MS"), 100);
    /* No unit: milliseconds, as in Flink. */
    ck_assert_uint_eq(dur("1500"), 1500);
    /* Below a millisecond: rounded up so that non-zero stays non-zero. */
    ck_assert_uint_eq(dur("1us"), 1);
    ck_assert_uint_eq(dur("1500 micros"), 2);
    ck_assert_uint_eq(dur("2000000ns"), 2);
    ck_assert_uint_eq(dur("3000\xc2\xb5s"), 3);
    ck_assert_uint_eq(dur("0ns"), 0);
}
END_TEST

START_TEST(test_duration_errors)
{
    dur_bad("", "empty");
    dur_bad("   ", "empty");
    dur_bad("ms", "whole number");
    dur_bad("-5s", "whole number");
    dur_bad("+5s", "whole number");
    dur_bad("1.5s", "fractional");
    dur_bad("10 fortnights", "unknown time unit 'fortnights'");
    dur_bad("10 s s", "unknown time unit");
    dur_bad("5sx", "unknown time unit 'sx'");
    dur_bad("99999999999999999999999", "too large");
    dur_bad("18446744073709551615d", "too large");
    ck_assert_int_eq(sf_duration_parse(NULL, &(uint64_t){0}, NULL, 0), SF_EINVAL);
}
END_TEST

START_TEST(test_duration_format_round_trip)
{
    static const uint64_t values[] = {0,     1,     999,     1000,     1500,
                                      60000, 90000, 3600000, 86400000, 86400001};
    char buf[32];
    size_t i;

    ck_assert_str_eq(sf_duration_format(0, buf, sizeof buf), "0");
    ck_assert_str_eq(sf_duration_format(1500, buf, sizeof buf), "1500ms");
    ck_assert_str_eq(sf_duration_format(120000, buf, sizeof buf), "2m");
    ck_assert_str_eq(sf_duration_format(7200000, buf, sizeof buf), "2h");
    for (i = 0; i < SF_ARRAY_SIZE(values); i++)
        ck_assert_uint_eq(dur(sf_duration_format(values[i], buf, sizeof buf)), values[i]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Options                                                                    */

START_TEST(test_options_defaults)
{
    sf_options_t o;
    char buf[64];
    int i;

    sf_options_init(&o);
    ck_assert_str_eq(o.state_dir, "./statefun-data");
    ck_assert_int_eq(o.state_backend, SF_STATE_BACKEND_ROCKSDB);
    ck_assert_uint_eq(o.workers, sf_options_cpu_count());
    ck_assert_uint_ge(o.workers, 1);
    ck_assert_uint_eq(o.max_parallelism, 128);
    ck_assert_uint_eq(o.checkpoint_interval_ms, 1000);
    ck_assert_str_eq(o.admin.host, "127.0.0.1");
    ck_assert_uint_eq(o.admin.port, 8081);
    ck_assert_int_eq(o.log_level, SF_LOG_INFO);
    for (i = 0; i < SF_OPT__COUNT; i++) {
        ck_assert_int_eq(o.source[i], SF_OPT_SRC_DEFAULT);
        ck_assert_ptr_null(o.origin[i]);
    }
    ck_assert_str_eq(sf_options_format(&o, SF_OPT_ADMIN, buf, sizeof buf), "127.0.0.1:8081");
    ck_assert_str_eq(sf_options_format(&o, SF_OPT_CHECKPOINT_INTERVAL, buf, sizeof buf), "1s");
    ck_assert_str_eq(sf_options_format(&o, SF_OPT_LOG_LEVEL, buf, sizeof buf), "info");
    ck_assert_str_eq(sf_options_format(&o, SF_OPT_STATE_BACKEND, buf, sizeof buf), "rocksdb");
    sf_options_dispose(&o);
}
END_TEST

START_TEST(test_options_table_and_lookup)
{
    const sf_opt_def_t *t = sf_options_table();
    int i;

    for (i = 0; i < SF_OPT__COUNT; i++) {
        char env[64];
        size_t j;
        ck_assert_int_eq(t[i].id, i);
        /* STATEFUN_<NAME>: the kebab name upper-cased with underscores. */
        snprintf(env, sizeof env, "STATEFUN_%s", t[i].name);
        for (j = 9; env[j]; j++)
            env[j] = env[j] == '-' ? '_' : (char)toupper((unsigned char)env[j]);
        ck_assert_str_eq(t[i].env, env);
        ck_assert_ptr_eq(sf_options_lookup(t[i].name), &t[i]);
        ck_assert_ptr_eq(sf_options_lookup(t[i].camel), &t[i]);
    }
    ck_assert_ptr_eq(sf_options_lookup("--state-dir"), &t[SF_OPT_STATE_DIR]);
    ck_assert_ptr_eq(sf_options_lookup("stateDir"), &t[SF_OPT_STATE_DIR]);
    ck_assert_ptr_eq(sf_options_lookup("checkpointInterval"), &t[SF_OPT_CHECKPOINT_INTERVAL]);
    ck_assert_ptr_null(sf_options_lookup("--stateDir")); /* camelCase is YAML only */
    ck_assert_ptr_null(sf_options_lookup("state_dir"));
    ck_assert_ptr_null(sf_options_lookup("nope"));
    ck_assert_ptr_null(sf_options_lookup(NULL));
}
END_TEST

static void opt_ok(sf_opt_id id, const char *value)
{
    char err[256];
    ck_assert_msg(sf_options_check_value(id, value, err, sizeof err) == 0, "%s rejected: %s", value,
                  err);
}

static void opt_bad(sf_opt_id id, const char *value, const char *needle)
{
    char err[256] = "";
    ck_assert_msg(sf_options_check_value(id, value, err, sizeof err) == SF_EINVAL, "%s accepted",
                  value);
    ck_assert_msg(strstr(err, needle) != NULL, "%s: '%s' lacks '%s'", value, err, needle);
}

START_TEST(test_options_values)
{
    sf_options_t o;
    char err[256];

    opt_ok(SF_OPT_STATE_BACKEND, "memory");
    opt_ok(SF_OPT_STATE_BACKEND, "RocksDB");
    opt_bad(SF_OPT_STATE_BACKEND, "leveldb", "not one of: rocksdb, memory");
    opt_ok(SF_OPT_WORKERS, "1");
    opt_ok(SF_OPT_WORKERS, "32768");
    opt_bad(SF_OPT_WORKERS, "0", "out of range (1..32768)");
    opt_bad(SF_OPT_WORKERS, "32769", "out of range");
    opt_bad(SF_OPT_WORKERS, "-1", "whole number");
    opt_bad(SF_OPT_WORKERS, "two", "whole number");
    opt_bad(SF_OPT_WORKERS, "2x", "whole number");
    opt_bad(SF_OPT_WORKERS, "99999999999999999999", "out of range");
    opt_bad(SF_OPT_MAX_PARALLELISM, "0", "out of range");
    opt_ok(SF_OPT_CHECKPOINT_INTERVAL, "0");
    opt_ok(SF_OPT_CHECKPOINT_INTERVAL, "10 sec");
    opt_bad(SF_OPT_CHECKPOINT_INTERVAL, "soon", "whole number");
    opt_ok(SF_OPT_ADMIN, "0.0.0.0:0");
    opt_ok(SF_OPT_ADMIN, "[::1]:8081");
    opt_ok(SF_OPT_ADMIN, "localhost:8081");
    opt_bad(SF_OPT_ADMIN, "8081", "ADDR:PORT");
    opt_bad(SF_OPT_ADMIN, "127.0.0.1:65536", "out of range");
    opt_bad(SF_OPT_ADMIN, "127.0.0.1:", "bad port");
    opt_bad(SF_OPT_ADMIN, "127.0.0.1:80x", "bad port");
    opt_bad(SF_OPT_ADMIN, "::1:8081", "brackets");
    opt_bad(SF_OPT_ADMIN, "example.com:80", "not an IP address");
    opt_bad(SF_OPT_ADMIN, "[::1]8081", "ADDR:PORT");
    opt_ok(SF_OPT_LOG_LEVEL, "DEBUG");
    opt_ok(SF_OPT_LOG_LEVEL, "warning");
    opt_bad(SF_OPT_LOG_LEVEL, "trace", "error, warn, info, debug");
    opt_bad(SF_OPT_STATE_DIR, "", "empty");

    sf_options_init(&o);
    ck_assert_int_eq(
        sf_options_set(&o, SF_OPT_ADMIN, "[::1]:9000", SF_OPT_SRC_CLI, "--admin", err, sizeof err),
        0);
    ck_assert_str_eq(o.admin.host, "::1");
    ck_assert_uint_eq(o.admin.port, 9000);
    ck_assert_str_eq(sf_options_format(&o, SF_OPT_ADMIN, err, sizeof err), "[::1]:9000");
    ck_assert_int_eq(
        sf_options_set(&o, SF_OPT_ADMIN, "localhost:1", SF_OPT_SRC_CLI, NULL, err, sizeof err), 0);
    ck_assert_str_eq(o.admin.host, "127.0.0.1");
    ck_assert_int_eq(
        sf_options_set(&o, SF_OPT_LOG_LEVEL, "warning", SF_OPT_SRC_ENV, NULL, err, sizeof err), 0);
    ck_assert_int_eq(o.log_level, SF_LOG_WARN);
    /* A failed set leaves the value and its source alone. */
    ck_assert_int_eq(
        sf_options_set(&o, SF_OPT_WORKERS, "0", SF_OPT_SRC_CLI, "--workers", err, sizeof err),
        SF_EINVAL);
    ck_assert_int_eq(o.source[SF_OPT_WORKERS], SF_OPT_SRC_DEFAULT);
    sf_options_dispose(&o);
}
END_TEST

/* A fake environment for resolve: NAME=VALUE pairs, NULL-terminated. */
static const char *fake_getenv(const char *name, void *user_data)
{
    const char *const *kv = user_data;
    size_t n = strlen(name);

    for (; kv && *kv; kv++) {
        if (strncmp(*kv, name, n) == 0 && (*kv)[n] == '=')
            return *kv + n + 1;
    }
    return NULL;
}

static sf_opt_setting_t setting(sf_opt_id opt, const char *value, const char *file, int line)
{
    sf_opt_setting_t s = {opt, (char *)value, (char *)file, line};
    return s;
}

START_TEST(test_options_precedence)
{
    sf_options_t o;
    sf_diags_t d;
    const sf_opt_setting_t yaml[] = {
        setting(SF_OPT_WORKERS, "2", "m.yaml", 3),
        setting(SF_OPT_STATE_DIR, "/yaml/dir", "m.yaml", 4),
        setting(SF_OPT_CHECKPOINT_INTERVAL, "5s", "m.yaml", 5),
        setting(SF_OPT_LOG_LEVEL, "error", "m.yaml", 6),
    };
    const char *env[] = {"STATEFUN_WORKERS=3", "STATEFUN_STATE_DIR=/env/dir",
                         "STATEFUN_LOG_LEVEL=", /* empty: unset */
                         "STATEFUN_ADMIN=127.0.0.1:7000", NULL};
    const sf_opt_setting_t cli[] = {
        setting(SF_OPT_WORKERS, "1", NULL, 0),
        setting(SF_OPT_WORKERS, "4", NULL, 0), /* last one wins */
    };

    sf_diags_init(&d);
    sf_options_init(&o);
    ck_assert_int_eq(sf_options_resolve(&o, yaml, SF_ARRAY_SIZE(yaml), cli, SF_ARRAY_SIZE(cli),
                                        fake_getenv, env, &d),
                     0);
    ck_assert_uint_eq(d.len, 0);
    /* workers: all three set it; the command line wins. */
    ck_assert_uint_eq(o.workers, 4);
    ck_assert_int_eq(o.source[SF_OPT_WORKERS], SF_OPT_SRC_CLI);
    ck_assert_str_eq(o.origin[SF_OPT_WORKERS], "--workers");
    /* state-dir: YAML and env; env wins. */
    ck_assert_str_eq(o.state_dir, "/env/dir");
    ck_assert_int_eq(o.source[SF_OPT_STATE_DIR], SF_OPT_SRC_ENV);
    ck_assert_str_eq(o.origin[SF_OPT_STATE_DIR], "STATEFUN_STATE_DIR");
    /* checkpoint-interval: YAML only. */
    ck_assert_uint_eq(o.checkpoint_interval_ms, 5000);
    ck_assert_int_eq(o.source[SF_OPT_CHECKPOINT_INTERVAL], SF_OPT_SRC_YAML);
    ck_assert_str_eq(o.origin[SF_OPT_CHECKPOINT_INTERVAL], "m.yaml:5");
    /* log-level: YAML, and an empty env var does not override it. */
    ck_assert_int_eq(o.log_level, SF_LOG_ERROR);
    ck_assert_int_eq(o.source[SF_OPT_LOG_LEVEL], SF_OPT_SRC_YAML);
    /* admin: env only. */
    ck_assert_uint_eq(o.admin.port, 7000);
    ck_assert_int_eq(o.source[SF_OPT_ADMIN], SF_OPT_SRC_ENV);
    /* max-parallelism, state-backend: defaults. */
    ck_assert_uint_eq(o.max_parallelism, 128);
    ck_assert_int_eq(o.source[SF_OPT_MAX_PARALLELISM], SF_OPT_SRC_DEFAULT);
    ck_assert_int_eq(o.source[SF_OPT_STATE_BACKEND], SF_OPT_SRC_DEFAULT);
    ck_assert_str_eq(sf_options_source_name(SF_OPT_SRC_ENV), "environment");
    sf_options_dispose(&o);
    sf_diags_dispose(&d);
}
END_TEST

START_TEST(test_options_resolve_errors)
{
    sf_options_t o;
    sf_diags_t d;
    const sf_opt_setting_t yaml[] = {setting(SF_OPT_WORKERS, "many", "m.yaml", 7)};
    const char *env[] = {"STATEFUN_CHECKPOINT_INTERVAL=often", NULL};
    const sf_opt_setting_t cli[] = {setting(SF_OPT_STATE_BACKEND, "tape", NULL, 0)};
    const sf_diag_t *g;

    sf_diags_init(&d);
    sf_options_init(&o);
    ck_assert_int_eq(sf_options_resolve(&o, yaml, 1, cli, 1, fake_getenv, env, &d), SF_EINVAL);
    ck_assert_uint_eq(d.nerrors, 3);
    g = sf_diags_find(&d, 7, "runtime option 'workers'");
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->source, "m.yaml");
    g = sf_diags_find(&d, 0, "STATEFUN_CHECKPOINT_INTERVAL");
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->source, "environment");
    g = sf_diags_find(&d, 0, "--state-backend: 'tape' is not one of");
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->source, "command line");
    sf_options_dispose(&o);
    sf_diags_dispose(&d);
}
END_TEST

START_TEST(test_options_workers_vs_parallelism)
{
    sf_options_t o;
    sf_diags_t d;
    const sf_opt_setting_t small[] = {setting(SF_OPT_MAX_PARALLELISM, "1", NULL, 0)};
    const sf_opt_setting_t both[] = {setting(SF_OPT_MAX_PARALLELISM, "4", NULL, 0),
                                     setting(SF_OPT_WORKERS, "8", NULL, 0)};
    const char *none[] = {NULL};

    /* A defaulted worker count is clamped to the key groups. */
    sf_diags_init(&d);
    sf_options_init(&o);
    ck_assert_int_eq(sf_options_resolve(&o, NULL, 0, small, 1, fake_getenv, none, &d), 0);
    ck_assert_uint_eq(o.workers, 1);
    sf_options_dispose(&o);
    sf_diags_dispose(&d);

    /* An explicit one is an error. */
    sf_diags_init(&d);
    sf_options_init(&o);
    ck_assert_int_eq(sf_options_resolve(&o, NULL, 0, both, 2, fake_getenv, none, &d), SF_EINVAL);
    ck_assert_ptr_nonnull(sf_diags_find(&d, 0,
                                        "workers (8, from --workers) must not exceed "
                                        "max-parallelism (4, from --max-parallelism)"));
    sf_options_dispose(&o);
    sf_diags_dispose(&d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Command line                                                               */

START_TEST(test_cli_parse)
{
    char *argv[] = {
        "statefun",          "run", "--workers", "3", "a.yaml", "--state-dir=/x", "b.yaml",
        "--log-level=debug", "--",  "--c.yaml",  NULL};
    sf_cli_t cli;
    sf_diags_t d;

    sf_diags_init(&d);
    ck_assert_int_eq(sf_cli_parse(&cli, 10, argv, &d), 0);
    ck_assert_str_eq(cli.command, "run");
    ck_assert_uint_eq(cli.nfiles, 3);
    ck_assert_str_eq(cli.files[0], "a.yaml");
    ck_assert_str_eq(cli.files[1], "b.yaml");
    ck_assert_str_eq(cli.files[2], "--c.yaml"); /* after "--" */
    ck_assert_uint_eq(cli.nsettings, 3);
    ck_assert_int_eq(cli.settings[0].opt, SF_OPT_WORKERS);
    ck_assert_str_eq(cli.settings[0].value, "3");
    ck_assert_int_eq(cli.settings[1].opt, SF_OPT_STATE_DIR);
    ck_assert_str_eq(cli.settings[1].value, "/x");
    ck_assert_int_eq(cli.settings[2].opt, SF_OPT_LOG_LEVEL);
    ck_assert_str_eq(cli.settings[2].value, "debug");
    ck_assert_ptr_null(cli.settings[0].file);
    ck_assert(!cli.help && !cli.version && !cli.verbose);
    sf_cli_dispose(&cli);
    sf_diags_dispose(&d);
}
END_TEST

START_TEST(test_cli_flags_and_errors)
{
    char *a1[] = {"statefun", "--help", NULL};
    char *a2[] = {"statefun", "-V", NULL};
    char *a3[] = {"statefun", "validate", "-v", "--state-dir=", "m.yaml", NULL};
    char *a4[] = {"statefun", "run", "--bogus", "-x", "--workers", NULL};
    char *a5[] = {"statefun", NULL};
    sf_cli_t cli;
    sf_diags_t d;

    sf_diags_init(&d);
    ck_assert_int_eq(sf_cli_parse(&cli, 2, a1, &d), 0);
    ck_assert(cli.help);
    ck_assert_ptr_null(cli.command);
    sf_cli_dispose(&cli);
    ck_assert_int_eq(sf_cli_parse(&cli, 2, a2, &d), 0);
    ck_assert(cli.version);
    sf_cli_dispose(&cli);
    /* "--state-dir=" parses (an empty value); resolve rejects it later. */
    ck_assert_int_eq(sf_cli_parse(&cli, 5, a3, &d), 0);
    ck_assert(cli.verbose);
    ck_assert_str_eq(cli.settings[0].value, "");
    sf_cli_dispose(&cli);
    ck_assert_int_eq(sf_cli_parse(&cli, 5, a4, &d), SF_EINVAL);
    ck_assert_uint_eq(d.nerrors, 3);
    ck_assert_ptr_nonnull(sf_diags_find(&d, 0, "unknown option '--bogus'"));
    ck_assert_ptr_nonnull(sf_diags_find(&d, 0, "unknown option '-x'"));
    ck_assert_ptr_nonnull(sf_diags_find(&d, 0, "--workers needs a value (N)"));
    ck_assert_str_eq(d.items[0].source, "command line");
    sf_cli_dispose(&cli);
    ck_assert_int_eq(sf_cli_parse(&cli, 1, a5, &d), 0);
    ck_assert_ptr_null(cli.command);
    ck_assert_uint_eq(cli.nfiles, 0);
    sf_cli_dispose(&cli);
    sf_diags_dispose(&d);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                                */

START_TEST(test_diags_order_and_format)
{
    sf_diags_t d;
    char *dir = sf_test_mkdtemp("diag");
    char path[512], *text;
    FILE *f;

    sf_diags_init(&d);
    sf_diags_register_file(&d, "a.yaml");
    sf_diags_register_file(&d, "b.yaml");
    sf_diags_register_file(&d, "a.yaml"); /* no-op */
    sf_diags_error(&d, "b.yaml", 3, "b three");
    sf_diags_warn(&d, "a.yaml", 9, "a nine");
    sf_diags_error(&d, "a.yaml", 2, "a two\nsecond line");
    sf_diags_error(&d, "command line", 0, "cli");
    sf_diags_error(&d, "b.yaml", 1, "b one");
    ck_assert_uint_eq(d.nerrors, 4);
    ck_assert_uint_eq(d.nwarnings, 1);

    snprintf(path, sizeof path, "%s/out", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    sf_diags_print(&d, f);
    fclose(f);
    text = sf_test_read_file(path, NULL);
    ck_assert_str_eq(text, "command line: cli\n"
                           "a.yaml:2: a two second line\n"
                           "a.yaml:9: warning: a nine\n"
                           "b.yaml:1: b one\n"
                           "b.yaml:3: b three\n");
    free(text);
    sf_diags_dispose(&d);
    sf_test_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Log                                                                        */

/* Runs |fn| with the log going to a temp file and returns what it wrote. */
static char *capture_log(sf_log_level level, void (*fn)(void))
{
    char *dir = sf_test_mkdtemp("log"), path[512], *text;
    FILE *f;

    snprintf(path, sizeof path, "%s/log", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    sf_log_init(level, fileno(f));
    fn();
    sf_log_init(SF_LOG_INFO, -1);
    fclose(f);
    text = sf_test_read_file(path, NULL);
    sf_test_rmtree(dir);
    return text;
}

static void log_some(void)
{
    sf_log_error("an error %d", 1);
    sf_log_warn("a warning");
    sf_log_info("some info: %s", "x");
    sf_log_debug("debug detail");
    sf_log_set_tag("worker-3");
    sf_log_info("two\nlines\tand a tab");
    sf_log_set_tag("main");
}

static void log_long(void)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sf_log_warn("start %s end", big);
}

START_TEST(test_log_format_and_levels)
{
    char *text = capture_log(SF_LOG_INFO, log_some), *line, *save = NULL;
    int n = 0;

    /* 2024-05-01T12:00:00.123Z LEVEL [tag] message */
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        ck_assert_msg(strlen(line) > 25 && line[4] == '-' && line[10] == 'T' && line[19] == '.' &&
                          line[23] == 'Z' && line[24] == ' ',
                      "bad timestamp: %s", line);
        if (n == 0)
            ck_assert_str_eq(line + 25, "ERROR [main] an error 1");
        if (n == 1)
            ck_assert_str_eq(line + 25, "WARN  [main] a warning");
        if (n == 2)
            ck_assert_str_eq(line + 25, "INFO  [main] some info: x");
        if (n == 3)
            ck_assert_str_eq(line + 25, "INFO  [worker-3] two lines and a tab");
    }
    ck_assert_int_eq(n, 4); /* debug filtered out */
    free(text);

    text = capture_log(SF_LOG_ERROR, log_some);
    ck_assert_ptr_nonnull(strstr(text, "an error 1"));
    ck_assert_ptr_null(strstr(text, "a warning"));
    free(text);

    text = capture_log(SF_LOG_DEBUG, log_some);
    ck_assert_ptr_nonnull(strstr(text, "DEBUG [main] debug detail\n"));
    free(text);
}
END_TEST

START_TEST(test_log_long_line)
{
    char *text = capture_log(SF_LOG_INFO, log_long);
    size_t len = strlen(text);

    ck_assert_uint_gt(len, 5000);
    ck_assert_int_eq(text[len - 1], '\n');
    ck_assert_ptr_null(memchr(text, '\n', len - 1)); /* one line */
    ck_assert_ptr_nonnull(strstr(text, "xxx end\n"));
    free(text);
}
END_TEST

START_TEST(test_log_level_names)
{
    sf_log_level l;

    ck_assert_int_eq(sf_log_level_parse("Debug", &l), 0);
    ck_assert_int_eq(l, SF_LOG_DEBUG);
    ck_assert_int_eq(sf_log_level_parse("warning", &l), 0);
    ck_assert_int_eq(l, SF_LOG_WARN);
    ck_assert_int_eq(sf_log_level_parse("loud", &l), SF_EINVAL);
    ck_assert_str_eq(sf_log_level_name(SF_LOG_ERROR), "error");
    ck_assert_str_eq(sf_log_level_name(SF_LOG_DEBUG), "debug");
}
END_TEST

Suite *sf_runtime_config_suite(void)
{
    Suite *s = suite_create("runtime_config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_duration_spec_forms);
    tcase_add_test(tc, test_duration_flink_forms);
    tcase_add_test(tc, test_duration_errors);
    tcase_add_test(tc, test_duration_format_round_trip);
    tcase_add_test(tc, test_options_defaults);
    tcase_add_test(tc, test_options_table_and_lookup);
    tcase_add_test(tc, test_options_values);
    tcase_add_test(tc, test_options_precedence);
    tcase_add_test(tc, test_options_resolve_errors);
    tcase_add_test(tc, test_options_workers_vs_parallelism);
    tcase_add_test(tc, test_cli_parse);
    tcase_add_test(tc, test_cli_flags_and_errors);
    tcase_add_test(tc, test_diags_order_and_format);
    tcase_add_test(tc, test_log_format_and_levels);
    tcase_add_test(tc, test_log_long_line);
    tcase_add_test(tc, test_log_level_names);
    suite_add_tcase(s, tc);
    return s;
}
