/* statefun-c: Apache License 2.0.
 *
 * Tests of the statefun command (runtime/main.c) through the real binary
 * ($STATEFUN, or $SF_BUILD/bin/statefun): `validate` on good and bad module
 * files (exit codes, the exact FILE:LINE output), option precedence seen
 * through `validate -v`, usage errors, --help and --version. Every command is
 * bounded by `timeout` and none starts a runtime: `run` is only given
 * configurations it must refuse.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sf_common.h"
#include "testutil.h"

/* The option variables are cleared so the caller's environment cannot leak in. */
#define CLEAN_ENV                                                                                  \
    "unset STATEFUN_STATE_DIR STATEFUN_STATE_BACKEND STATEFUN_WORKERS "                            \
    "STATEFUN_MAX_PARALLELISM STATEFUN_CHECKPOINT_INTERVAL STATEFUN_ADMIN STATEFUN_LOG_LEVEL; "

typedef struct result_s {
    int status;
    char *out; /* stdout */
    char *err; /* stderr */
} result_t;

static char bin[1024];
static char modules[1024];
static char *tmp;

static void setup(void)
{
    const char *s = getenv("STATEFUN");

    if (s && *s)
        snprintf(bin, sizeof bin, "%s", s);
    else
        snprintf(bin, sizeof bin, "%s/bin/statefun", sf_test_build());
    if (bin[0] != '/') {
        char cwd[512];
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
        char rel[1024];
        snprintf(rel, sizeof rel, "%s", bin);
        snprintf(bin, sizeof bin, "%.500s/%.500s", cwd, rel);
    }
    ck_assert_msg(access(bin, X_OK) == 0, "no statefun binary at %s", bin);
    snprintf(modules, sizeof modules, "%s/tests/runtime/modules", sf_test_src());
    if (modules[0] != '/') {
        char cwd[512], rel[1024];
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
        snprintf(rel, sizeof rel, "%s", modules);
        snprintf(modules, sizeof modules, "%.500s/%.500s", cwd, rel);
    }
    tmp = sf_test_mkdtemp("cli");
    ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
    sf_test_rmtree(tmp);
    tmp = NULL;
}

/*
 * Runs `cd DIR && ENV statefun ARGS` (ARGS printf-style, already quoted as
 * needed) with a time bound, capturing stdout and stderr.
 */
static result_t run_in(const char *dir, const char *env, const char *fmt, ...)
{
    char args[2048], out[1100], err[1100];
    result_t r;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(out, sizeof out, "%s/stdout", tmp);
    snprintf(err, sizeof err, "%s/stderr", tmp);
    r.status = sf_test_sh(CLEAN_ENV "cd '%s' && %s timeout 30 '%s' %s >'%s' 2>'%s'", dir,
                          env ? env : "", bin, args, out, err);
    r.out = sf_test_read_file(out, NULL);
    r.err = sf_test_read_file(err, NULL);
    ck_assert_ptr_nonnull(r.out);
    ck_assert_ptr_nonnull(r.err);
    return r;
}

static void result_free(result_t *r)
{
    free(r->out);
    free(r->err);
}

/* True when |text| has a line that starts with |prefix|. */
static bool has_line(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = text;

    while (p && *p) {
        if (strncmp(p, prefix, n) == 0)
            return true;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

#define EXPECT_LINE(text, prefix)                                                                  \
    ck_assert_msg(has_line((text), (prefix)), "no line starting with \"%s\" in:\n%s", (prefix),    \
                  (text))

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

START_TEST(test_validate_good)
{
    result_t r = run_in(modules, NULL, "validate greeter.yaml");

    ck_assert_msg(r.status == 0, "status %d, stderr:\n%s", r.status, r.err);
    ck_assert_str_eq(r.out, "OK: 1 file, 3 documents: 1 endpoint, 0 embedded modules, 1 ingress, "
                            "1 egress, 0 runtime options\n");
    ck_assert_str_eq(r.err, "");
    result_free(&r);

    /* Several files at once; a warning does not fail validation. */
    r = run_in(modules, NULL, "validate statefun-forms.yaml full.yaml");
    ck_assert_msg(r.status == 1, "status %d", r.status); /* two ingresses */
    result_free(&r);
    r = run_in(modules, NULL, "validate statefun-forms.yaml");
    ck_assert_msg(r.status == 0, "status %d, stderr:\n%s", r.status, r.err);
    ck_assert_str_eq(r.err, "statefun-forms.yaml:40: warning: field 'maxRetries' in the spec of "
                            "io.statefun.endpoints.v2/http is ignored: StateFun 3 ignores it "
                            "too; failed calls are retried until the call timeout\n");
    EXPECT_LINE(r.out, "OK: 1 file, 7 documents: 5 endpoints");
    result_free(&r);
}
END_TEST

START_TEST(test_validate_errors_exact)
{
    result_t r = run_in(modules, NULL, "validate errors.yaml syntax.yaml missing.yaml kafka.yaml");
    static const char *const want[] = {
        "errors.yaml:3: 'functions': 'greeter' is not a function pattern",
        "errors.yaml:4: urlPathTemplate: unsupported URL scheme 'ftp'",
        "errors.yaml:5: 'maxNumBatchRequests' must be a whole number, got 'lots'",
        "errors.yaml:8: 'transport.call': bad duration '2 fortnights'",
        "errors.yaml:10: unknown field 'bogus' in 'transport'",
        "errors.yaml:12: unknown kind 'io.statefun.nope/x'",
        "errors.yaml:17: 'port' is out of range: 70000 (allowed 0..65535)",
        "errors.yaml:20: missing required field 'topics'",
        "errors.yaml:22: 'deliverySemantic' must be exactly-once or at-least-once, got 'maybe'",
        "errors.yaml:25: runtime option 'workers': expected a whole number, got 'two'",
        "errors.yaml:26: unknown runtime option 'frobnicate'",
        "syntax.yaml:7: YAML syntax error: did not find expected ',' or ']'",
        "missing.yaml: cannot open: No such file or directory",
        "kafka.yaml:7: kind 'io.statefun.kafka.v1/ingress' is not yet supported by statefun-c",
        "kafka.yaml:20: kind 'io.statefun.kafka.v1/egress' is not yet supported by statefun-c",
        "kafka.yaml:28: kind 'io.statefun.kafka/ingress' is not yet supported by statefun-c",
        "kafka.yaml:32: kind 'io.statefun.kinesis.v1/egress' is not supported by statefun-c",
        "statefun validate: 17 errors",
    };
    const char *p = r.err;
    size_t i;

    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.out, "");
    /* Every error, in file order then line order, one per line. */
    ck_assert_int_eq(count_lines(r.err), (int)SF_ARRAY_SIZE(want));
    for (i = 0; i < SF_ARRAY_SIZE(want); i++) {
        ck_assert_msg(strncmp(p, want[i], strlen(want[i])) == 0, "line %zu: want \"%s\" in:\n%s",
                      i + 1, want[i], r.err);
        p = strchr(p, '\n') + 1;
    }
    result_free(&r);
}
END_TEST

START_TEST(test_usage)
{
    result_t r;

    r = run_in(tmp, NULL, "--help");
    ck_assert_int_eq(r.status, 0);
    EXPECT_LINE(r.out, "Usage: statefun run [options] MODULE.yaml");
    EXPECT_LINE(r.out, "  --state-dir DIR");
    EXPECT_LINE(r.out, "  --checkpoint-interval DUR");
    ck_assert_ptr_nonnull(strstr(r.out, "env STATEFUN_CHECKPOINT_INTERVAL"));
    result_free(&r);

    r = run_in(tmp, NULL, "validate --help");
    ck_assert_int_eq(r.status, 0);
    result_free(&r);

    r = run_in(tmp, NULL, "--version");
    ck_assert_int_eq(r.status, 0);
    EXPECT_LINE(r.out, "statefun ");
    ck_assert_int_eq(count_lines(r.out), 1);
    result_free(&r);

    r = run_in(tmp, NULL, "%s", "");
    ck_assert_int_eq(r.status, 64);
    EXPECT_LINE(r.err, "Usage: statefun run");
    result_free(&r);

    r = run_in(tmp, NULL, "start m.yaml");
    ck_assert_int_eq(r.status, 64);
    EXPECT_LINE(r.err, "statefun: unknown command 'start'");
    result_free(&r);

    r = run_in(tmp, NULL, "validate");
    ck_assert_int_eq(r.status, 64);
    EXPECT_LINE(r.err, "statefun validate: no module files given");
    result_free(&r);

    r = run_in(modules, NULL, "validate greeter.yaml --bogus --workers");
    ck_assert_int_eq(r.status, 64);
    EXPECT_LINE(r.err, "command line: unknown option '--bogus' (see --help)");
    EXPECT_LINE(r.err, "command line: --workers needs a value (N)");
    result_free(&r);
}
END_TEST

START_TEST(test_precedence_through_validate)
{
    char path[1100];
    const char *yaml = "kind: io.statefun.playground.v1/ingress\n"
                       "spec: {port: 18090}\n"
                       "---\n"
                       "runtime:\n"
                       "  workers: 2\n"
                       "  state-dir: /from/yaml\n"
                       "  checkpointInterval: 5s\n"
                       "  log-level: warn\n";
    result_t r;

    snprintf(path, sizeof path, "%s/m.yaml", tmp);
    ck_assert_int_eq(sf_test_write_file(path, yaml, strlen(yaml)), 0);
    r = run_in(tmp, "STATEFUN_WORKERS=3 STATEFUN_STATE_DIR=/from/env STATEFUN_ADMIN=127.0.0.1:9999",
               "validate -v m.yaml --workers=4 --max-parallelism 64");
    ck_assert_msg(r.status == 0, "status %d, stderr:\n%s", r.status, r.err);
    EXPECT_LINE(r.out, "OK: 1 file, 2 documents: 0 endpoints, 0 embedded modules, 1 ingress, "
                       "no egress, 4 runtime options");
    /* workers: YAML 2, env 3, command line 4: the command line wins. */
    EXPECT_LINE(r.out, "option workers = 4 (command line --workers)");
    /* state-dir: YAML and env: env wins. */
    EXPECT_LINE(r.out, "option state-dir = /from/env (environment STATEFUN_STATE_DIR)");
    /* Only YAML. */
    EXPECT_LINE(r.out, "option checkpoint-interval = 5s (module yaml m.yaml:7)");
    EXPECT_LINE(r.out, "option log-level = warn (module yaml m.yaml:8)");
    /* Only env, only command line, only default. */
    EXPECT_LINE(r.out, "option admin = 127.0.0.1:9999 (environment STATEFUN_ADMIN)");
    EXPECT_LINE(r.out, "option max-parallelism = 64 (command line --max-parallelism)");
    EXPECT_LINE(r.out, "option state-backend = rocksdb (default)");
    EXPECT_LINE(r.out, "playground ingress on 127.0.0.1:18090");
    result_free(&r);
}
END_TEST

START_TEST(test_bad_option_values)
{
    result_t r;

    r = run_in(modules, "STATEFUN_WORKERS=zero STATEFUN_LOG_LEVEL=",
               "validate greeter.yaml --checkpoint-interval=soon --state-backend tape");
    ck_assert_int_eq(r.status, 1);
    EXPECT_LINE(r.err, "command line: --checkpoint-interval: bad");
    EXPECT_LINE(r.err, "command line: --state-backend: 'tape' is not one of: rocksdb, memory");
    EXPECT_LINE(r.err, "environment: STATEFUN_WORKERS: expected a whole number, got 'zero'");
    EXPECT_LINE(r.err, "statefun validate: 3 errors");
    result_free(&r);

    /* The admin listener may not take the ingress port. */
    r = run_in(modules, NULL, "validate greeter.yaml --admin 0.0.0.0:8090");
    ck_assert_int_eq(r.status, 1);
    EXPECT_LINE(r.err, "greeter.yaml:10: ingress port 8090 is also the admin port");
    result_free(&r);

    /* workers over max-parallelism. */
    r = run_in(modules, NULL, "validate greeter.yaml --workers 8 --max-parallelism=4");
    ck_assert_int_eq(r.status, 1);
    EXPECT_LINE(r.err, "command line: workers (8, from --workers) must not exceed");
    result_free(&r);
}
END_TEST

START_TEST(test_run_refuses_bad_configuration)
{
    /* Same checks as validate, before anything starts: exit 1, no log lines. */
    result_t r = run_in(modules, NULL, "run errors.yaml --state-dir '%s/state'", tmp);
    char state[1100];
    struct stat st;

    ck_assert_int_eq(r.status, 1);
    EXPECT_LINE(r.err, "errors.yaml:3: 'functions': 'greeter' is not a function pattern");
    EXPECT_LINE(r.err, "statefun run: 11 errors");
    ck_assert_ptr_null(strstr(r.err, "INFO"));
    snprintf(state, sizeof state, "%s/state", tmp);
    ck_assert_int_ne(stat(state, &st), 0); /* nothing was created */
    result_free(&r);
}
END_TEST

START_TEST(test_embedded_library_next_to_yaml)
{
    char path[1100];
    const char *yaml = "kind: statefun.c.v1/embedded\n"
                       "spec:\n"
                       "  library: libdemo.so\n"
                       "  functions: demo/*\n";
    result_t r;

    snprintf(path, sizeof path, "%s/mods", tmp);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/mods/m.yaml", tmp);
    ck_assert_int_eq(sf_test_write_file(path, yaml, strlen(yaml)), 0);
    snprintf(path, sizeof path, "%s/mods/libdemo.so", tmp);
    ck_assert_int_eq(sf_test_write_file(path, "x", 1), 0);

    /* From another directory, the library is still found next to the YAML. */
    r = run_in("/", NULL, "validate -v '%s/mods/m.yaml'", tmp);
    ck_assert_msg(r.status == 0, "status %d, stderr:\n%s", r.status, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "embedded demo/* from /"));
    ck_assert_ptr_nonnull(strstr(r.out, "/mods/libdemo.so ("));
    result_free(&r);

    unlink(path);
    r = run_in(tmp, NULL, "validate mods/m.yaml");
    ck_assert_int_eq(r.status, 1);
    EXPECT_LINE(r.err, "mods/m.yaml:3: library 'libdemo.so' not found (looked at "
                       "mods/libdemo.so)");
    result_free(&r);
}
END_TEST

Suite *sf_runtime_cli_suite(void)
{
    Suite *s = suite_create("runtime_cli");
    TCase *tc = tcase_create("cli");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_validate_good);
    tcase_add_test(tc, test_validate_errors_exact);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_precedence_through_validate);
    tcase_add_test(tc, test_bad_option_values);
    tcase_add_test(tc, test_run_refuses_bad_configuration);
    tcase_add_test(tc, test_embedded_library_next_to_yaml);
    suite_add_tcase(s, tc);
    return s;
}
