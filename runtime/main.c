/* statefun-c: Apache License 2.0.
 *
 * The statefun command:
 *
 *     statefun run [options] MODULE.yaml...
 *     statefun validate [options] MODULE.yaml...
 *     statefun --help | --version
 *
 * Both commands read every module file and resolve the options (command line,
 * then STATEFUN_* environment, then the YAML `runtime:` section, then the
 * defaults) and collect every problem first. `validate` prints them as
 * FILE:LINE: message on stderr and exits 1, or prints a one-line summary on
 * stdout and exits 0. `run` does the same checks, logs the effective
 * configuration and calls sf_runtime_run.
 *
 * Exit status: 0 success, 1 invalid configuration, 2 the runtime failed,
 * 64 usage error (as sysexits' EX_USAGE).
 *
 * Main thread only; nothing else runs before sf_runtime_run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "savepoint_cmd.h"

#define EXIT_CONFIG 1
#define EXIT_RUNTIME 2
#define EXIT_USAGE 64

static void print_usage(FILE *out)
{
    fprintf(out, "Usage: statefun run [options] MODULE.yaml [MODULE.yaml ...]\n"
                 "       statefun validate [options] MODULE.yaml [MODULE.yaml ...]\n"
                 "       statefun savepoint [--admin ADDR:PORT] DIR\n"
                 "       statefun --help | --version\n");
}

static void print_help(void)
{
    printf("statefun %s: runs Apache Flink Stateful Functions applications natively.\n\n",
           SF_RUNTIME_VERSION);
    print_usage(stdout);
    printf("\nCommands:\n"
           "  run        load the module files and run the application until SIGINT/SIGTERM\n"
           "  validate   check the module files and options; print every error as\n"
           "             FILE:LINE: message and exit 1, or a summary and exit 0\n"
           "             (-v, --verbose: also print the effective configuration)\n"
           "  savepoint  ask the runtime whose admin listener is --admin for a savepoint into\n"
           "             DIR (never collected); start from it with run --restore DIR\n"
           "\nOptions (--name VALUE or --name=VALUE). Each may also be set by the environment\n"
           "variable shown, or in a `runtime:` section of a module file under the same name\n"
           "(state-dir or stateDir). The command line wins, then the environment, then the\n"
           "YAML, then the default:\n");
    sf_options_print_help(stdout);
    printf("\nDurations: 500ms, 10s, 10 sec, 2m, 1 min, 15min, 1h; a bare number is "
           "milliseconds.\n"
           "\nExit status: 0 success, 1 invalid configuration, 2 runtime failure, 64 usage "
           "error.\n");
}

/* Where describe_config sends each line: the log (run) or stdout (validate -v). */
typedef void (*line_fn)(const char *line);

static void line_to_log(const char *line)
{
    sf_log_info("%s", line);
}

static void line_to_stdout(const char *line)
{
    printf("%s\n", line);
}

/* Describes the effective configuration, one line per option and module. */
static void describe_config(const sf_options_t *o, const sf_module_t *m, line_fn out)
{
    const sf_opt_def_t *table = sf_options_table();
    char value[256], pat[256], line[1024], dur[32];
    size_t i, j;

    for (i = 0; i < SF_OPT__COUNT; i++) {
        sf_options_format(o, (sf_opt_id)i, value, sizeof value);
        snprintf(line, sizeof line, "option %s = %s (%s%s%s)", table[i].name, value,
                 sf_options_source_name(o->source[i]), o->origin[i] ? " " : "",
                 o->origin[i] ? o->origin[i] : "");
        out(line);
    }
    for (i = 0; i < m->nendpoints; i++) {
        const sf_endpoint_spec_t *e = &m->endpoints[i];
        snprintf(line, sizeof line, "endpoint %s -> %s (call timeout %s, max batch %u; %s:%d)",
                 sf_fn_pattern_format(&e->functions, pat, sizeof pat), e->url_template,
                 sf_duration_format(e->call_timeout_ms, dur, sizeof dur), e->max_num_batch_requests,
                 e->loc.file, e->loc.line);
        out(line);
    }
    for (i = 0; i < m->nembedded; i++) {
        const sf_embedded_spec_t *em = &m->embedded[i];
        for (j = 0; j < em->nfunctions; j++) {
            snprintf(line, sizeof line, "embedded %s from %s (%s:%d)",
                     sf_fn_pattern_format(&em->functions[j], pat, sizeof pat), em->library,
                     em->loc.file, em->loc.line);
            out(line);
        }
    }
    if (m->ingress) {
        snprintf(line, sizeof line, "playground ingress on %s:%u", m->ingress->host,
                 m->ingress->port);
        out(line);
    }
    if (m->egress) {
        snprintf(line, sizeof line, "playground egress on %s:%u (%zu topic%s, %s)", m->egress->host,
                 m->egress->port, m->egress->ntopics, m->egress->ntopics == 1 ? "" : "s",
                 m->egress->exactly_once ? "exactly-once" : "at-least-once");
        out(line);
    }
}

/* `statefun savepoint [--admin ADDR:PORT] DIR` */
static int savepoint(const sf_cli_t *cli, sf_diags_t *diags)
{
    sf_options_t opts;
    char msg[512];
    int rv;
    if (cli->nfiles != 1) {
        fprintf(stderr, "statefun savepoint: give exactly one directory\n");
        print_usage(stderr);
        return EXIT_USAGE;
    }
    sf_options_init(&opts);
    sf_options_resolve(&opts, NULL, 0, cli->settings, cli->nsettings, NULL, NULL, diags);
    if (diags->nerrors > 0) {
        sf_diags_print(diags, stderr);
        sf_options_dispose(&opts);
        return EXIT_USAGE;
    }
    rv = sf_savepoint_request(opts.admin.host, opts.admin.port, cli->files[0], msg, sizeof msg);
    if (rv == 0)
        printf("savepoint written to %s\n", msg);
    else
        fprintf(stderr, "statefun savepoint: %s\n", msg[0] ? msg : sf_strerror(rv));
    sf_options_dispose(&opts);
    return rv == 0 ? 0 : EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
    sf_diags_t diags;
    sf_cli_t cli;
    sf_options_t opts;
    sf_module_t *module = NULL;
    bool validate;
    char summary[512];
    int status, rv;
    size_t i;

    sf_log_set_tag("main");
    sf_diags_init(&diags);
    rv = sf_cli_parse(&cli, argc, argv, &diags);
    if (cli.help) {
        print_help();
        status = 0;
        goto out_cli;
    }
    if (cli.version) {
        printf("statefun %s (statefun-c; Apache Flink Stateful Functions 3.x compatible)\n",
               SF_RUNTIME_VERSION);
        status = 0;
        goto out_cli;
    }
    if (!cli.command) {
        sf_diags_print(&diags, stderr);
        print_usage(stderr);
        status = EXIT_USAGE;
        goto out_cli;
    }
    if (strcmp(cli.command, "savepoint") == 0 && rv == 0) {
        status = savepoint(&cli, &diags);
        goto out_cli;
    }
    if (strcmp(cli.command, "run") != 0 && strcmp(cli.command, "validate") != 0) {
        fprintf(stderr, "statefun: unknown command '%s'\n", cli.command);
        print_usage(stderr);
        status = EXIT_USAGE;
        goto out_cli;
    }
    if (rv != 0) {
        sf_diags_print(&diags, stderr);
        print_usage(stderr);
        status = EXIT_USAGE;
        goto out_cli;
    }
    if (cli.nfiles == 0) {
        fprintf(stderr, "statefun %s: no module files given\n", cli.command);
        print_usage(stderr);
        status = EXIT_USAGE;
        goto out_cli;
    }
    validate = strcmp(cli.command, "validate") == 0;

    /* Everything is read and checked before anything starts. */
    sf_module_load((const char *const *)cli.files, cli.nfiles, &diags, &module);
    sf_options_init(&opts);
    sf_options_resolve(&opts, module->settings, module->nsettings, cli.settings, cli.nsettings,
                       NULL, NULL, &diags);
    if (diags.nerrors == 0)
        sf_module_check_options(module, &opts, &diags);

    if (validate || diags.nerrors > 0) {
        sf_diags_print(&diags, stderr);
        if (diags.nerrors > 0) {
            fprintf(stderr, "statefun %s: %zu error%s\n", cli.command, diags.nerrors,
                    diags.nerrors == 1 ? "" : "s");
            status = EXIT_CONFIG;
        } else {
            printf("OK: %s\n", sf_module_summary(module, summary, sizeof summary));
            if (cli.verbose)
                describe_config(&opts, module, line_to_stdout);
            status = 0;
        }
        goto out_opts;
    }

    sf_log_init(opts.log_level, -1);
    sf_diags_sort(&diags);
    for (i = 0; i < diags.len; i++) {
        const sf_diag_t *g = &diags.items[i];
        sf_log_warn("%s:%d: %s", g->source, g->line, g->msg);
    }
    sf_log_info("statefun %s: %zu module file%s", SF_RUNTIME_VERSION, module->nfiles,
                module->nfiles == 1 ? "" : "s");
    describe_config(&opts, module, line_to_log);
    rv = sf_runtime_run(&opts, module);
    status = rv == 0 ? 0 : EXIT_RUNTIME;

out_opts:
    sf_options_dispose(&opts);
    sf_module_free(module);
out_cli:
    sf_cli_dispose(&cli);
    sf_diags_dispose(&diags);
    return status;
}
