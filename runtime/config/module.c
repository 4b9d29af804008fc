/* statefun-c: Apache License 2.0.
 *
 * Module YAML loading (see module.h). Files are read with libyaml's document
 * API one document at a time; node marks give the line of every key and
 * value, so each problem is reported where it is written. Parsing never
 * stops at the first problem: a bad field is reported and skipped, a bad
 * document is reported and skipped, and only a YAML syntax error ends the
 * reading of its file (libyaml cannot resume after one).
 *
 * Each kind has a table of fields; a field handler checks the value's type
 * and range and stores it. Checks that need the whole document (required
 * fields, timeouts against the call timeout, URL against protocol) run after
 * its fields; checks across documents run in sf_module_finish.
 *
 * Main thread only, before anything starts.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cfg_mem.h"
#include "duration.h"
#include "module.h"

#define FN_NAME_HOLDER "{function.name}"

/* ------------------------------------------------------------------------ */
/* Parsing context and YAML node helpers                                      */

typedef struct pctx_s {
    sf_module_t *m;
    sf_diags_t *d;
    const char *file; /* module-owned name used in diagnostics */
    char *dir;        /* directory for relative paths */
    yaml_document_t *doc;
    const char *kind;      /* the current document's kind, for messages */
    yaml_node_t *spec_key; /* the current document's `spec:` key (or `kind:`) */
} pctx_t;

static int line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

#define ERR(c, node, ...) sf_diags_error((c)->d, (c)->file, line_of(node), __VA_ARGS__)
#define WARN(c, node, ...) sf_diags_warn((c)->d, (c)->file, line_of(node), __VA_ARGS__)

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
    const char *v;

    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    v = sval(n);
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *type_name(const yaml_node_t *n)
{
    if (is_null(n))
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return "a scalar";
    default:
        return "an empty node";
    }
}

static yaml_node_t *node_at(pctx_t *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

/* Looks up |key| in mapping |map|; NULL when absent. */
static yaml_node_t *map_get(pctx_t *c, yaml_node_t *map, const char *key, yaml_node_t **key_out)
{
    yaml_node_pair_t *p;

    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp(sval(k), key) == 0) {
            if (key_out)
                *key_out = k;
            return node_at(c, p->value);
        }
    }
    return NULL;
}

/*
 * A non-empty string value. |what| names the field in messages. Numbers and
 * booleans written without quotes are strings too (YAML scalars).
 */
static bool get_string(pctx_t *c, yaml_node_t *v, const char *what, const char **out)
{
    if (is_null(v)) {
        ERR(c, v, "'%s' has no value", what);
        return false;
    }
    if (v->type != YAML_SCALAR_NODE) {
        ERR(c, v, "'%s' must be a string, got %s", what, type_name(v));
        return false;
    }
    if (strlen(sval(v)) != v->data.scalar.length) {
        ERR(c, v, "'%s' contains a NUL character", what);
        return false;
    }
    if (sval(v)[0] == '\0') {
        ERR(c, v, "'%s' is empty", what);
        return false;
    }
    *out = sval(v);
    return true;
}

/* A whole number in [min, max]. */
static bool get_uint(pctx_t *c, yaml_node_t *v, const char *what, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    const char *s;
    unsigned long long n;
    char *end;

    if (is_null(v)) {
        ERR(c, v, "'%s' has no value", what);
        return false;
    }
    if (v->type != YAML_SCALAR_NODE) {
        ERR(c, v, "'%s' must be a whole number, got %s", what, type_name(v));
        return false;
    }
    s = sval(v);
    if (!isdigit((unsigned char)s[0])) {
        if (s[0] == '-' && isdigit((unsigned char)s[1]))
            ERR(c, v, "'%s' must not be negative, got '%s'", what, s);
        else
            ERR(c, v, "'%s' must be a whole number, got '%s'", what, s);
        return false;
    }
    errno = 0;
    n = strtoull(s, &end, 10);
    if (*end != '\0') {
        ERR(c, v, "'%s' must be a whole number, got '%s'", what, s);
        return false;
    }
    if (errno == ERANGE || n < min || n > max) {
        ERR(c, v, "'%s' is out of range: %s (allowed %llu..%llu)", what, s, (unsigned long long)min,
            (unsigned long long)max);
        return false;
    }
    *out = n;
    return true;
}

static bool get_duration(pctx_t *c, yaml_node_t *v, const char *what, bool nonzero, uint64_t *out)
{
    char err[160];
    const char *s;

    if (is_null(v)) {
        ERR(c, v, "'%s' has no value", what);
        return false;
    }
    if (v->type != YAML_SCALAR_NODE) {
        ERR(c, v, "'%s' must be a duration such as 10s or 2m, got %s", what, type_name(v));
        return false;
    }
    s = sval(v);
    if (sf_duration_parse(s, out, err, sizeof err) != 0) {
        ERR(c, v, "'%s': bad duration '%s': %s", what, s, err);
        return false;
    }
    if (nonzero && *out == 0) {
        ERR(c, v, "'%s' must be larger than 0", what);
        return false;
    }
    return true;
}

/* An IP literal ("localhost" is taken as 127.0.0.1) into |out|. */
static bool get_host(pctx_t *c, yaml_node_t *v, const char *what, char *out, size_t outlen)
{
    unsigned char addr[16];
    const char *s;
    char buf[64];

    if (!get_string(c, v, what, &s))
        return false;
    snprintf(buf, sizeof buf, "%s", strcasecmp(s, "localhost") == 0 ? "127.0.0.1" : s);
    if (strlen(buf) >= outlen ||
        (inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1)) {
        ERR(c, v, "'%s' must be an IP address to listen on (e.g. 127.0.0.1 or 0.0.0.0), got '%s'",
            what, s);
        return false;
    }
    memcpy(out, buf, strlen(buf) + 1);
    return true;
}

/* Joins |dir| and |path| unless |path| is absolute. Caller frees. */
static char *join_path(const char *dir, const char *path)
{
    char *out;
    size_t n;

    if (path[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0)
        return sf_xstrdup(path);
    n = strlen(dir) + strlen(path) + 2;
    out = sf_xmalloc(n);
    snprintf(out, n, "%s/%s", dir, path);
    return out;
}

/*
 * A file the runtime will read (certificates, keys): "file:" prefixes are
 * dropped as StateFun allows them; "classpath:" cannot work outside a JVM.
 * Relative paths are taken from the YAML file's directory. The file must be
 * readable now, so the problem shows before anything starts.
 */
static bool get_file(pctx_t *c, yaml_node_t *v, const char *what, char **out)
{
    const char *s;
    char *path;

    if (!get_string(c, v, what, &s))
        return false;
    if (strncmp(s, "classpath:", 10) == 0) {
        ERR(c, v, "'%s': classpath: resources do not exist in statefun-c; give a file path", what);
        return false;
    }
    if (strncmp(s, "file://", 7) == 0)
        s += 7;
    else if (strncmp(s, "file:", 5) == 0)
        s += 5;
    if (!s[0]) {
        ERR(c, v, "'%s' is empty", what);
        return false;
    }
    path = join_path(c->dir, s);
    if (access(path, R_OK) != 0) {
        ERR(c, v, "'%s': cannot read '%s': %s", what, path, strerror(errno));
        free(path);
        return false;
    }
    free(*out);
    *out = path;
    return true;
}

/*
 * Parses a `functions` pattern: "namespace/name" or "namespace/" and a star. The
 * namespace may not contain '/' (it would make ingress paths ambiguous) and
 * neither part may contain '*' or white space (except the "*" name).
 */
static bool parse_pattern(pctx_t *c, yaml_node_t *v, const char *what, sf_fn_pattern_t *out)
{
    const char *s, *slash, *p;
    bool ok = true;

    if (!get_string(c, v, what, &s))
        return false;
    slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/'))
        ok = false;
    for (p = s; ok && *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            ok = false;
        if (*p == '*' && !(p == slash + 1 && p[1] == '\0'))
            ok = false;
    }
    if (!ok) {
        ERR(c, v, "'%s': '%s' is not a function pattern (expected namespace/name or namespace/*)",
            what, s);
        return false;
    }
    out->ns = sf_xstrndup(s, (size_t)(slash - s));
    out->name = strcmp(slash + 1, "*") == 0 ? NULL : sf_xstrdup(slash + 1);
    out->loc.file = c->file;
    out->loc.line = line_of(v);
    return true;
}

static void pattern_dispose(sf_fn_pattern_t *p)
{
    free(p->ns);
    free(p->name);
    p->ns = p->name = NULL;
}

char *sf_fn_pattern_format(const sf_fn_pattern_t *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", p->ns ? p->ns : "?", p->name ? p->name : "*");
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Field tables                                                               */

/* A field handler: |obj| is the spec being filled. */
typedef void (*field_fn)(pctx_t *c, yaml_node_t *key, yaml_node_t *val, void *obj);

enum {
    F_REQUIRED = 1, /* must be present */
    F_IGNORED = 2,  /* real StateFun field that StateFun ignores too: warn */
};

typedef struct field_s {
    const char *name;
    field_fn fn;
    unsigned flags;
    const char *note; /* F_IGNORED: why; otherwise a hint for misplaced fields */
} field_t;

/* Lists the names of |fields| (not ignored ones) into |buf|. */
static const char *field_list(const field_t *fields, size_t n, char *buf, size_t len)
{
    size_t i, used = 0;

    buf[0] = '\0';
    for (i = 0; i < n && used < len; i++) {
        if (fields[i].flags & F_IGNORED || !fields[i].fn)
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", fields[i].name);
    }
    return buf;
}

/*
 * Runs the handler of every key of mapping |map| found in |fields|; reports
 * unknown keys and missing required ones. |what| names the mapping and
 * |owner| is the key it hangs from (`spec:`, `transport:`): missing fields are
 * reported on its line. A field with a NULL handler and a note is a known
 * misplacement: its note is the error. Returns false when |map| is not a
 * mapping.
 */
static bool parse_fields(pctx_t *c, yaml_node_t *owner, yaml_node_t *map, const field_t *fields,
                         size_t n, void *obj, const char *what)
{
    yaml_node_pair_t *p;
    size_t i;
    char list[512];

    if (!map || map->type != YAML_MAPPING_NODE) {
        ERR(c, map ? map : owner, "%s must be a mapping, got %s", what, type_name(map));
        return false;
    }
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const field_t *f = NULL;

        if (!k || k->type != YAML_SCALAR_NODE) {
            ERR(c, k, "keys of %s must be names, got %s", what, type_name(k));
            continue;
        }
        for (i = 0; i < n; i++) {
            if (strcmp(fields[i].name, sval(k)) == 0) {
                f = &fields[i];
                break;
            }
        }
        if (!f) {
            ERR(c, k, "unknown field '%s' in %s (known: %s)", sval(k), what,
                field_list(fields, n, list, sizeof list));
            continue;
        }
        if (f->flags & F_IGNORED) {
            WARN(c, k, "field '%s' in %s is ignored: %s", f->name, what, f->note);
            continue;
        }
        if (!f->fn) {
            ERR(c, k, "field '%s' does not belong in %s: %s", f->name, what, f->note);
            continue;
        }
        f->fn(c, k, v, obj);
    }
    for (i = 0; i < n; i++) {
        if ((fields[i].flags & F_REQUIRED) && !map_get(c, map, fields[i].name, NULL))
            ERR(c, owner ? owner : map, "missing required field '%s' in %s", fields[i].name, what);
    }
    return true;
}

/* Reports duplicate keys in every mapping of the document (libyaml keeps both). */
static void check_duplicate_keys(pctx_t *c)
{
    yaml_node_t *n;

    for (n = c->doc->nodes.start; n < c->doc->nodes.top; n++) {
        yaml_node_pair_t *a, *b;
        if (n->type != YAML_MAPPING_NODE)
            continue;
        for (a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
            yaml_node_t *ka = node_at(c, a->key);
            if (!ka || ka->type != YAML_SCALAR_NODE)
                continue;
            for (b = n->data.mapping.pairs.start; b < a; b++) {
                yaml_node_t *kb = node_at(c, b->key);
                if (kb && kb->type == YAML_SCALAR_NODE && strcmp(sval(ka), sval(kb)) == 0) {
                    ERR(c, ka, "duplicate key '%s' (first at line %d)", sval(ka), line_of(kb));
                    break;
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Endpoints                                                                  */

/* Which timeouts were written, to check them against the call timeout. */
typedef struct endpoint_ctx_s {
    sf_endpoint_spec_t *e;
    yaml_node_t *url_node, *protocol_node;
    yaml_node_t *transport_key; /* where transport-wide problems are reported */
    /* Where each timeout was set (NULL: it keeps its default). */
    yaml_node_t *call_node, *connect_node, *read_node, *write_node;
    /* Values from transport.timeouts win over transport.call/connect. */
    bool tcall_set, tconnect_set;
    bool custom_transport; /* unknown transport type: its fields are not checked */
} endpoint_ctx_t;

static void f_functions(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    pattern_dispose(&x->e->functions);
    parse_pattern(c, v, "functions", &x->e->functions);
}

static void f_url(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    const char *s;

    if (!get_string(c, v, "urlPathTemplate", &s))
        return;
    free(x->e->url_template);
    x->e->url_template = sf_xstrdup(s);
    x->url_node = v;
}

static void f_max_batch(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    uint64_t n;
    if (get_uint(c, v, "maxNumBatchRequests", 1, INT32_MAX, &n))
        x->e->max_num_batch_requests = (uint32_t)n;
}

/* One timeout into |*ms|, remembering in |*node| where it was set. */
static void set_timeout(pctx_t *c, yaml_node_t *v, const char *what, uint64_t *ms,
                        yaml_node_t **node)
{
    if (get_duration(c, v, what, true, ms))
        *node = v;
}

static void t_call(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    set_timeout(c, v, "timeouts.call", &x->e->call_timeout_ms, &x->call_node);
}

static void t_connect(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    set_timeout(c, v, "timeouts.connect", &x->e->connect_timeout_ms, &x->connect_node);
}

static void t_read(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    set_timeout(c, v, "timeouts.read", &x->e->read_timeout_ms, &x->read_node);
}

static void t_write(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    set_timeout(c, v, "timeouts.write", &x->e->write_timeout_ms, &x->write_node);
}

static const field_t timeout_fields[] = {
    {"call", t_call, 0, NULL},
    {"connect", t_connect, 0, NULL},
    {"read", t_read, 0, NULL},
    {"write", t_write, 0, NULL},
};

static void f_timeouts(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    parse_fields(c, k, v, timeout_fields, SF_ARRAY_SIZE(timeout_fields), obj, "'timeouts'");
}

/* transport.call / transport.connect: the async transport's own fields, checked even when
 * transport.timeouts.call / .connect (set before the fields are parsed) override them. */
static void tr_call(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    uint64_t ms;
    if (get_duration(c, v, "transport.call", true, &ms) && !x->tcall_set) {
        x->e->call_timeout_ms = ms;
        x->call_node = v;
    }
}

static void tr_connect(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    uint64_t ms;
    if (get_duration(c, v, "transport.connect", true, &ms) && !x->tconnect_set) {
        x->e->connect_timeout_ms = ms;
        x->connect_node = v;
    }
}

static void tr_pool_ttl(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    get_duration(c, v, "transport.pool_ttl", false, &x->e->pool_ttl_ms);
}

static void tr_pool_size(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    uint64_t n;
    if (get_uint(c, v, "transport.pool_size", 1, INT32_MAX, &n))
        x->e->pool_size = (uint32_t)n;
}

static void tr_payload_max(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    get_uint(c, v, "transport.payload_max_bytes", 1, INT32_MAX, &x->e->payload_max_bytes);
}

static void tr_trust(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    get_file(c, v, "transport.trust_cacerts", &x->e->trust_cacerts);
}

static void tr_cert(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    get_file(c, v, "transport.client_cert", &x->e->client_cert);
}

static void tr_key(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    get_file(c, v, "transport.client_key", &x->e->client_key);
}

static void tr_key_password(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    const char *s;
    if (get_string(c, v, "transport.client_key_password", &s)) {
        free(x->e->client_key_password);
        x->e->client_key_password = sf_xstrdup(s);
    }
}

static void tr_protocol(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    static const char *const names[] = {"auto", "http1", "h2c", "h2"};
    endpoint_ctx_t *x = obj;
    const char *s;
    size_t i;

    if (!get_string(c, v, "transport.protocol", &s))
        return;
    for (i = 0; i < SF_ARRAY_SIZE(names); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            x->e->protocol = (sf_http_protocol)i;
            x->protocol_node = v;
            return;
        }
    }
    ERR(c, v, "'transport.protocol' must be one of auto, http1, h2c, h2; got '%s'", s);
}

static void tr_type(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    /* Read before the other fields, in parse_transport. */
}

/* The async transport (StateFun's default for v2). */
static const field_t async_fields[] = {
    {"type", tr_type, 0, NULL},
    {"timeouts", f_timeouts, 0, NULL},
    {"call", tr_call, 0, NULL},
    {"connect", tr_connect, 0, NULL},
    {"pool_ttl", tr_pool_ttl, 0, NULL},
    {"pool_size", tr_pool_size, 0, NULL},
    {"payload_max_bytes", tr_payload_max, 0, NULL},
    {"trust_cacerts", tr_trust, 0, NULL},
    {"client_cert", tr_cert, 0, NULL},
    {"client_key", tr_key, 0, NULL},
    {"client_key_password", tr_key_password, 0, NULL},
    {"protocol", tr_protocol, 0, NULL},
};

/* The okhttp transport: only timeouts (and our protocol). */
static const field_t okhttp_fields[] = {
    {"type", tr_type, 0, NULL},
    {"timeouts", f_timeouts, 0, NULL},
    {"protocol", tr_protocol, 0, NULL},
    {"call", NULL, 0, "it is a field of io.statefun.transports.v1/async; use timeouts.call"},
    {"connect", NULL, 0, "it is a field of io.statefun.transports.v1/async; use timeouts.connect"},
    {"pool_ttl", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
    {"pool_size", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
    {"payload_max_bytes", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
    {"trust_cacerts", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
    {"client_cert", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
    {"client_key", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
    {"client_key_password", NULL, 0, "it is a field of io.statefun.transports.v1/async"},
};

static void f_transport(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    endpoint_ctx_t *x = obj;
    yaml_node_t *type, *timeouts, *t_key = NULL;
    const char *ts;

    x->transport_key = k;
    if (is_null(v))
        return; /* "transport:" with nothing under it: the defaults. */
    if (v->type != YAML_MAPPING_NODE) {
        ERR(c, v, "'transport' must be a mapping, got %s", type_name(v));
        return;
    }
    type = map_get(c, v, "type", &t_key);
    x->e->transport = SF_TRANSPORT_ASYNC;
    if (type) {
        if (!get_string(c, type, "transport.type", &ts)) {
            x->custom_transport = true;
            return;
        }
        if (strcmp(ts, "io.statefun.transports.v1/async") == 0) {
            x->e->transport = SF_TRANSPORT_ASYNC;
        } else if (strcmp(ts, "io.statefun.transports.v1/okhttp") == 0 ||
                   strcmp(ts, "io.statefun.transports/okhttp") == 0) {
            x->e->transport = SF_TRANSPORT_OKHTTP;
        } else {
            ERR(c, type,
                "unsupported transport type '%s' (statefun-c has "
                "io.statefun.transports.v1/async and io.statefun.transports.v1/okhttp)",
                ts);
            x->custom_transport = true;
            return;
        }
    }
    /* transport.timeouts.call wins over transport.call, as in StateFun. */
    timeouts = map_get(c, v, "timeouts", NULL);
    x->tcall_set = map_get(c, timeouts, "call", NULL) != NULL;
    x->tconnect_set = map_get(c, timeouts, "connect", NULL) != NULL;
    if (x->e->transport == SF_TRANSPORT_OKHTTP)
        parse_fields(c, k, v, okhttp_fields, SF_ARRAY_SIZE(okhttp_fields), x,
                     "'transport' (io.statefun.transports.v1/okhttp)");
    else
        parse_fields(c, k, v, async_fields, SF_ARRAY_SIZE(async_fields), x,
                     "'transport' (io.statefun.transports.v1/async)");
    if (x->tcall_set && map_get(c, v, "call", NULL))
        WARN(c, map_get(c, v, "call", NULL),
             "transport.call is overridden by transport.timeouts.call");
    if (x->tconnect_set && map_get(c, v, "connect", NULL))
        WARN(c, map_get(c, v, "connect", NULL),
             "transport.connect is overridden by transport.timeouts.connect");
}

static const field_t endpoint_v2_fields[] = {
    {"functions", f_functions, F_REQUIRED, NULL},
    {"urlPathTemplate", f_url, F_REQUIRED, NULL},
    {"maxNumBatchRequests", f_max_batch, 0, NULL},
    {"transport", f_transport, 0, NULL},
    {"maxRetries", NULL, F_IGNORED,
     "StateFun 3 ignores it too; failed calls are retried until the call timeout"},
    {"timeouts", NULL, 0,
     "in io.statefun.endpoints.v2/http it goes under 'transport' (directly under spec is the "
     "v1 form)"},
};

static const field_t endpoint_v1_fields[] = {
    {"functions", f_functions, F_REQUIRED, NULL},
    {"urlPathTemplate", f_url, F_REQUIRED, NULL},
    {"maxNumBatchRequests", f_max_batch, 0, NULL},
    {"timeouts", f_timeouts, 0, NULL},
    {"maxRetries", NULL, F_IGNORED,
     "StateFun 3 ignores it too; failed calls are retried until the call timeout"},
    {"transport", NULL, 0,
     "io.statefun.endpoints.v1/http has no transport; use io.statefun.endpoints.v2/http"},
};

/* A timeout against the call timeout: one written explicitly (|node| set) may not exceed it,
 * a defaulted one is clamped to it. */
static void check_timeout(pctx_t *c, yaml_node_t *node, const char *what, uint64_t *ms,
                          uint64_t call_ms)
{
    if (*ms <= call_ms)
        return;
    if (node)
        ERR(c, node, "%s timeout cannot be larger than the call timeout", what);
    else
        *ms = call_ms;
}

/* Checks the URL template: scheme, syntax (with a sample function name). */
static void check_url(pctx_t *c, endpoint_ctx_t *x)
{
    sf_endpoint_spec_t *e = x->e;
    sf_http_url_t url;
    const char *s = e->url_template, *sep;
    char *sample;

    e->url_templated = strstr(s, FN_NAME_HOLDER) != NULL;
    sep = strstr(s, "://");
    if (!sep) {
        ERR(c, x->url_node,
            "urlPathTemplate '%s' has no scheme (expected http://, https://, http+unix:// or "
            "https+unix://)",
            s);
        return;
    }
    if (!((sep - s == 4 && strncasecmp(s, "http", 4) == 0) ||
          (sep - s == 5 && strncasecmp(s, "https", 5) == 0) ||
          (sep - s == 9 && strncasecmp(s, "http+unix", 9) == 0) ||
          (sep - s == 10 && strncasecmp(s, "https+unix", 10) == 0))) {
        ERR(c, x->url_node,
            "urlPathTemplate: unsupported URL scheme '%.*s' (expected http, https, http+unix "
            "or https+unix)",
            (int)(sep - s), s);
        return;
    }
    e->url_unix = (size_t)(sep - s) >= 9;
    sample = sf_endpoint_url_for(e, "fn");
    if (sf_http_url_parse(sample, NULL, &url) != 0) {
        ERR(c, x->url_node, "urlPathTemplate '%s' is not a valid URL%s", s,
            e->url_unix ? " (a unix socket URL names a path ending in .sock, e.g. "
                          "http+unix:///run/fn.sock/path)"
                        : "");
        free(sample);
        return;
    }
    e->url_tls = url.tls;
    sf_http_url_dispose(&url, NULL);
    free(sample);
}

static void check_endpoint(pctx_t *c, endpoint_ctx_t *x, yaml_node_t *spec)
{
    sf_endpoint_spec_t *e = x->e;

    if (e->url_template && x->url_node)
        check_url(c, x);
    if (x->protocol_node && e->url_template) {
        if (e->protocol == SF_HTTP_PROTO_H2 && !e->url_tls)
            ERR(c, x->protocol_node,
                "'transport.protocol: h2' needs an https URL; use h2c for plaintext HTTP/2");
        if (e->protocol == SF_HTTP_PROTO_H2C && e->url_tls)
            ERR(c, x->protocol_node,
                "'transport.protocol: h2c' is plaintext HTTP/2; use h2 (or auto) with https");
    }
    if ((e->client_cert != NULL) != (e->client_key != NULL))
        ERR(c, x->transport_key,
            "transport: client_cert and client_key go together (one is missing)");
    if (!e->url_tls && e->url_template && (e->trust_cacerts || e->client_cert || e->client_key))
        WARN(c, x->transport_key, "TLS settings are ignored: urlPathTemplate is not https");

    /* As StateFun: explicit timeouts may not exceed the call timeout. */
    /* Defaulted ones are clamped to a shorter call timeout. */
    check_timeout(c, x->connect_node, "connect", &e->connect_timeout_ms, e->call_timeout_ms);
    check_timeout(c, x->read_node, "read", &e->read_timeout_ms, e->call_timeout_ms);
    check_timeout(c, x->write_node, "write", &e->write_timeout_ms, e->call_timeout_ms);
}

static void endpoint_dispose(sf_endpoint_spec_t *e)
{
    pattern_dispose(&e->functions);
    free(e->url_template);
    free(e->trust_cacerts);
    free(e->client_cert);
    free(e->client_key);
    free(e->client_key_password);
    memset(e, 0, sizeof *e);
}

static void parse_endpoint(pctx_t *c, yaml_node_t *kind, yaml_node_t *spec, int version)
{
    sf_module_t *m = c->m;
    sf_endpoint_spec_t e;
    endpoint_ctx_t x;
    size_t before = c->d->nerrors;
    char what[96];

    memset(&e, 0, sizeof e);
    memset(&x, 0, sizeof x);
    x.e = &e;
    e.loc.file = c->file;
    e.loc.line = line_of(kind);
    e.version = version;
    e.max_num_batch_requests = SF_ENDPOINT_DEFAULT_MAX_BATCH;
    e.transport = version == 1 ? SF_TRANSPORT_OKHTTP : SF_TRANSPORT_ASYNC;
    e.protocol = SF_HTTP_PROTO_AUTO;
    e.call_timeout_ms = SF_ENDPOINT_DEFAULT_CALL_MS;
    e.connect_timeout_ms = SF_ENDPOINT_DEFAULT_CONNECT_MS;
    e.read_timeout_ms = SF_ENDPOINT_DEFAULT_READ_MS;
    e.write_timeout_ms = SF_ENDPOINT_DEFAULT_WRITE_MS;
    e.pool_ttl_ms = SF_ENDPOINT_DEFAULT_POOL_TTL_MS;
    e.pool_size = SF_ENDPOINT_DEFAULT_POOL_SIZE;
    e.payload_max_bytes = SF_ENDPOINT_DEFAULT_PAYLOAD_MAX;

    snprintf(what, sizeof what, "the spec of %s", c->kind);
    if (version == 1)
        parse_fields(c, c->spec_key, spec, endpoint_v1_fields, SF_ARRAY_SIZE(endpoint_v1_fields),
                     &x, what);
    else
        parse_fields(c, c->spec_key, spec, endpoint_v2_fields, SF_ARRAY_SIZE(endpoint_v2_fields),
                     &x, what);
    check_endpoint(c, &x, spec);
    if (c->d->nerrors != before || !e.functions.ns || !e.url_template) {
        endpoint_dispose(&e);
        return;
    }
    m->endpoints = cfg_grow(m->endpoints, &m->_endpoints_cap, m->nendpoints, sizeof e);
    m->endpoints[m->nendpoints++] = e;
}

char *sf_endpoint_url_for(const sf_endpoint_spec_t *e, const char *name)
{
    const char *t = e->url_template, *p;
    size_t hl = strlen(FN_NAME_HOLDER), nl = strlen(name), count = 0;
    char *out, *w;

    for (p = t; (p = strstr(p, FN_NAME_HOLDER)) != NULL; p += hl)
        count++;
    out = sf_xmalloc(strlen(t) + count * nl + 1);
    w = out;
    for (p = t; *p;) {
        if (strncmp(p, FN_NAME_HOLDER, hl) == 0) {
            memcpy(w, name, nl);
            w += nl;
            p += hl;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

/* ------------------------------------------------------------------------ */
/* Playground ingress and egress                                              */

static void in_port(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_ingress_spec_t *in = obj;
    uint64_t n;
    if (get_uint(c, v, "port", 0, 65535, &n))
        in->port = (uint16_t)n;
}

static void in_host(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_ingress_spec_t *in = obj;
    get_host(c, v, "host", in->host, sizeof in->host);
}

static const field_t ingress_fields[] = {
    {"port", in_port, 0, NULL},
    {"host", in_host, 0, NULL},
};

static void parse_ingress(pctx_t *c, yaml_node_t *kind, yaml_node_t *spec, int version)
{
    sf_ingress_spec_t in;
    size_t before = c->d->nerrors;
    char what[96];

    memset(&in, 0, sizeof in);
    in.loc.file = c->file;
    in.loc.line = line_of(kind);
    snprintf(in.host, sizeof in.host, "127.0.0.1");
    in.port = 8090;
    snprintf(what, sizeof what, "the spec of %s", c->kind);
    if (!is_null(spec))
        parse_fields(c, c->spec_key, spec, ingress_fields, SF_ARRAY_SIZE(ingress_fields), &in,
                     what);
    if (c->d->nerrors != before)
        return;
    if (c->m->ingress) {
        ERR(c, kind, "only one io.statefun.playground.v1/ingress is allowed (first at %s:%d)",
            c->m->ingress->loc.file, c->m->ingress->loc.line);
        return;
    }
    c->m->ingress = sf_xmalloc(sizeof in);
    *c->m->ingress = in;
}

static void eg_port(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_egress_spec_t *eg = obj;
    uint64_t n;
    if (get_uint(c, v, "port", 0, 65535, &n))
        eg->port = (uint16_t)n;
}

static void eg_host(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_egress_spec_t *eg = obj;
    get_host(c, v, "host", eg->host, sizeof eg->host);
}

static void eg_topics(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_egress_spec_t *eg = obj;
    yaml_node_item_t *it;
    size_t i;

    if (is_null(v) || v->type != YAML_SEQUENCE_NODE) {
        ERR(c, v, "'topics' must be a list of topic names, got %s", type_name(v));
        return;
    }
    if (v->data.sequence.items.start == v->data.sequence.items.top) {
        ERR(c, v, "'topics' is empty: name at least one topic");
        return;
    }
    eg->topics = sf_xcalloc((size_t)(v->data.sequence.items.top - v->data.sequence.items.start),
                             sizeof *eg->topics);
    for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *t = node_at(c, *it);
        const char *s;
        bool dup = false;

        if (!get_string(c, t, "topics[]", &s))
            continue;
        if (strpbrk(s, "/?#% \t")) {
            ERR(c, t, "topic '%s' cannot be used in a URL path (no '/', '?', '#', '%%' or spaces)",
                s);
            continue;
        }
        for (i = 0; i < eg->ntopics; i++) {
            if (strcmp(eg->topics[i], s) == 0)
                dup = true;
        }
        if (dup) {
            WARN(c, t, "topic '%s' is listed twice", s);
            continue;
        }
        eg->topics[eg->ntopics++] = sf_xstrdup(s);
    }
}

static void eg_semantic(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_egress_spec_t *eg = obj;
    const char *s;

    if (!get_string(c, v, "deliverySemantic", &s))
        return;
    if (strcmp(s, "exactly-once") == 0)
        eg->exactly_once = true;
    else if (strcmp(s, "at-least-once") == 0)
        eg->exactly_once = false;
    else
        ERR(c, v, "'deliverySemantic' must be exactly-once or at-least-once, got '%s'", s);
}

static const field_t egress_fields[] = {
    {"port", eg_port, 0, NULL},
    {"host", eg_host, 0, NULL},
    {"topics", eg_topics, F_REQUIRED, NULL},
    {"deliverySemantic", eg_semantic, 0, NULL},
};

static void egress_free(sf_egress_spec_t *eg)
{
    size_t i;

    if (!eg)
        return;
    for (i = 0; i < eg->ntopics; i++)
        free(eg->topics[i]);
    free(eg->topics);
}

static void parse_egress(pctx_t *c, yaml_node_t *kind, yaml_node_t *spec, int version)
{
    sf_egress_spec_t eg;
    size_t before = c->d->nerrors;
    char what[96];

    memset(&eg, 0, sizeof eg);
    eg.loc.file = c->file;
    eg.loc.line = line_of(kind);
    snprintf(eg.host, sizeof eg.host, "127.0.0.1");
    eg.port = 8091;
    eg.exactly_once = true;
    snprintf(what, sizeof what, "the spec of %s", c->kind);
    parse_fields(c, c->spec_key, spec, egress_fields, SF_ARRAY_SIZE(egress_fields), &eg, what);
    if (c->d->nerrors != before) {
        egress_free(&eg);
        return;
    }
    if (c->m->egress) {
        ERR(c, kind, "only one io.statefun.playground.v1/egress is allowed (first at %s:%d)",
            c->m->egress->loc.file, c->m->egress->loc.line);
        egress_free(&eg);
        return;
    }
    c->m->egress = sf_xmalloc(sizeof eg);
    *c->m->egress = eg;
}

/* ------------------------------------------------------------------------ */
/* Embedded modules                                                           */

static void em_library(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_embedded_spec_t *em = obj;
    const char *s;
    char *path, resolved[PATH_MAX];
    struct stat st;

    if (!get_string(c, v, "library", &s))
        return;
    path = join_path(c->dir, s);
    if (stat(path, &st) != 0) {
        ERR(c, v, "library '%s' not found (looked at %s)", s, path);
        free(path);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        ERR(c, v, "library '%s' is not a regular file (%s)", s, path);
        free(path);
        return;
    }
    free(em->library);
    em->library = realpath(path, resolved) ? sf_xstrdup(resolved) : path;
    if (em->library != path)
        free(path);
}

static void em_functions(pctx_t *c, yaml_node_t *k, yaml_node_t *v, void *obj)
{
    sf_embedded_spec_t *em = obj;
    yaml_node_item_t *it;
    size_t n;

    if (v && v->type == YAML_SEQUENCE_NODE) {
        n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n == 0) {
            ERR(c, v, "'functions' is an empty list");
            return;
        }
        em->functions = sf_xcalloc(n, sizeof *em->functions);
        for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            if (parse_pattern(c, node_at(c, *it), "functions", &em->functions[em->nfunctions]))
                em->nfunctions++;
        }
        return;
    }
    em->functions = sf_xcalloc(1, sizeof *em->functions);
    if (parse_pattern(c, v, "functions", &em->functions[0]))
        em->nfunctions = 1;
}

static const field_t embedded_fields[] = {
    {"library", em_library, F_REQUIRED, NULL},
    {"functions", em_functions, F_REQUIRED, NULL},
};

static void embedded_dispose(sf_embedded_spec_t *em)
{
    size_t i;

    for (i = 0; i < em->nfunctions; i++)
        pattern_dispose(&em->functions[i]);
    free(em->functions);
    free(em->library);
    memset(em, 0, sizeof *em);
}

static void parse_embedded(pctx_t *c, yaml_node_t *kind, yaml_node_t *spec, int version)
{
    sf_module_t *m = c->m;
    sf_embedded_spec_t em;
    size_t before = c->d->nerrors;
    char what[96];

    memset(&em, 0, sizeof em);
    em.loc.file = c->file;
    em.loc.line = line_of(kind);
    snprintf(what, sizeof what, "the spec of %s", c->kind);
    parse_fields(c, c->spec_key, spec, embedded_fields, SF_ARRAY_SIZE(embedded_fields), &em, what);
    if (c->d->nerrors != before || !em.library || em.nfunctions == 0) {
        embedded_dispose(&em);
        return;
    }
    m->embedded = cfg_grow(m->embedded, &m->_embedded_cap, m->nembedded, sizeof em);
    m->embedded[m->nembedded++] = em;
}

/* ------------------------------------------------------------------------ */
/* Runtime options                                                            */

static void parse_runtime(pctx_t *c, yaml_node_t *kind, yaml_node_t *map, int version)
{
    const sf_opt_def_t *table = sf_options_table();
    sf_module_t *m = c->m;
    yaml_node_pair_t *p;
    char err[256], list[512];
    size_t i, used = 0;

    if (is_null(map))
        return;
    if (map->type != YAML_MAPPING_NODE) {
        ERR(c, map, "the runtime section must be a mapping of option: value, got %s",
            type_name(map));
        return;
    }
    list[0] = '\0';
    for (i = 0; i < SF_OPT__COUNT && used < sizeof list; i++)
        used +=
            (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", table[i].name);
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const sf_opt_def_t *d;
        const char *value;
        sf_opt_setting_t *s;

        if (!k || k->type != YAML_SCALAR_NODE) {
            ERR(c, k, "runtime option names must be strings");
            continue;
        }
        d = sf_options_lookup(sval(k));
        if (!d || sval(k)[0] == '-') {
            ERR(c, k, "unknown runtime option '%s' (known: %s)", sval(k), list);
            continue;
        }
        if (!get_string(c, v, d->name, &value))
            continue;
        if (sf_options_check_value(d->id, value, err, sizeof err) != 0) {
            ERR(c, v, "runtime option '%s': %s", d->name, err);
            continue;
        }
        for (i = 0; i < m->nsettings; i++) {
            if (m->settings[i].opt == d->id)
                break;
        }
        if (i < m->nsettings) {
            ERR(c, k, "runtime option '%s' is already set at %s:%d", d->name, m->settings[i].file,
                m->settings[i].line);
            continue;
        }
        m->settings = cfg_grow(m->settings, &m->_settings_cap, m->nsettings, sizeof *s);
        s = &m->settings[m->nsettings++];
        s->opt = d->id;
        s->value = sf_xstrdup(value);
        s->file = sf_xstrdup(c->file);
        s->line = line_of(v);
    }
}

/* ------------------------------------------------------------------------ */
/* Documents                                                                  */

typedef void (*kind_fn)(pctx_t *c, yaml_node_t *kind, yaml_node_t *spec, int version);

enum { K_SUPPORTED, K_NOT_YET, K_UNSUPPORTED };

typedef struct kind_s {
    const char *name;
    kind_fn fn;
    int version;
    int status;
    const char *note; /* for K_NOT_YET / K_UNSUPPORTED */
} kind_t;

static const kind_t kinds[] = {
    {"io.statefun.endpoints.v2/http", parse_endpoint, 2, K_SUPPORTED, NULL},
    {"io.statefun.endpoints.v1/http", parse_endpoint, 1, K_SUPPORTED, NULL},
    {"io.statefun.endpoints/http", parse_endpoint, 1, K_SUPPORTED, NULL},
    {"io.statefun.playground.v1/ingress", parse_ingress, 1, K_SUPPORTED, NULL},
    {"io.statefun.playground.v1/egress", parse_egress, 1, K_SUPPORTED, NULL},
    {"statefun.c.v1/embedded", parse_embedded, 1, K_SUPPORTED, NULL},
    {"statefun.c.v1/runtime", parse_runtime, 1, K_SUPPORTED, NULL},
    {"io.statefun.kafka.v1/ingress", NULL, 1, K_NOT_YET, "Kafka ingress comes in a later release"},
    {"io.statefun.kafka.v1/egress", NULL, 1, K_NOT_YET, "Kafka egress comes in a later release"},
    {"io.statefun.kafka/ingress", NULL, 1, K_NOT_YET, "Kafka ingress comes in a later release"},
    {"io.statefun.kafka/egress", NULL, 1, K_NOT_YET, "Kafka egress comes in a later release"},
    {"io.statefun.kinesis.v1/ingress", NULL, 1, K_UNSUPPORTED, "AWS Kinesis is not planned"},
    {"io.statefun.kinesis.v1/egress", NULL, 1, K_UNSUPPORTED, "AWS Kinesis is not planned"},
    {"io.statefun.kinesis/ingress", NULL, 1, K_UNSUPPORTED, "AWS Kinesis is not planned"},
    {"io.statefun.kinesis/egress", NULL, 1, K_UNSUPPORTED, "AWS Kinesis is not planned"},
};

static void unknown_kind(pctx_t *c, yaml_node_t *v, const char *kind)
{
    size_t i;

    for (i = 0; i < SF_ARRAY_SIZE(kinds); i++) {
        if (kinds[i].status == K_SUPPORTED && strcasecmp(kinds[i].name, kind) == 0) {
            ERR(c, v, "unknown kind '%s' (did you mean '%s'?)", kind, kinds[i].name);
            return;
        }
    }
    ERR(c, v,
        "unknown kind '%s' (statefun-c knows io.statefun.endpoints.v2/http, "
        "io.statefun.endpoints.v1/http, io.statefun.playground.v1/ingress, "
        "io.statefun.playground.v1/egress, statefun.c.v1/embedded, statefun.c.v1/runtime)",
        kind);
}

/*
 * Binds one component: |kind| names it (a scalar node), |spec| is its spec
 * (NULL when absent) and |spec_key| the key it hangs from.
 */
static void dispatch(pctx_t *c, yaml_node_t *kind, yaml_node_t *kind_key, yaml_node_t *spec,
                     yaml_node_t *spec_key)
{
    const kind_t *k = NULL;
    const char *ks;
    size_t i;

    if (!get_string(c, kind, "kind", &ks))
        return;
    for (i = 0; i < SF_ARRAY_SIZE(kinds); i++) {
        if (strcmp(kinds[i].name, ks) == 0) {
            k = &kinds[i];
            break;
        }
    }
    if (!k) {
        unknown_kind(c, kind, ks);
        return;
    }
    if (k->status == K_NOT_YET) {
        ERR(c, kind, "kind '%s' is not yet supported by statefun-c (%s)", ks, k->note);
        return;
    }
    if (k->status == K_UNSUPPORTED) {
        ERR(c, kind, "kind '%s' is not supported by statefun-c (%s)", ks, k->note);
        return;
    }
    c->kind = k->name;
    c->spec_key = spec ? spec_key : kind_key;
    if (!spec) {
        /* A playground ingress may rely on every default; others need a spec. */
        if (k->fn == parse_ingress || k->fn == parse_runtime) {
            k->fn(c, kind, NULL, k->version);
            return;
        }
        ERR(c, kind_key, "document of kind '%s' has no 'spec'", ks);
        return;
    }
    k->fn(c, kind, spec, k->version);
}

/* Reports every key of mapping |map| that is not in the NULL-terminated |known|. */
static void only_keys(pctx_t *c, yaml_node_t *map, const char *const *known, const char *what)
{
    yaml_node_pair_t *p;
    size_t i;

    if (!map || map->type != YAML_MAPPING_NODE)
        return;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = node_at(c, p->key);
        bool ok = false;

        if (!key || key->type != YAML_SCALAR_NODE) {
            ERR(c, key, "keys of %s must be names", what);
            continue;
        }
        for (i = 0; known[i]; i++)
            ok = ok || strcmp(sval(key), known[i]) == 0;
        if (!ok)
            ERR(c, key, "unknown field '%s' in %s", sval(key), what);
    }
}

/*
 * One list of the legacy format: items shaped {ITEM: {meta: {KINDKEY: kind,
 * id: ...}, spec: {...}}}. Endpoints name their kind "http" (mapped to
 * |http_kind|); ingresses and egresses use the kind names of today, or the
 * older unversioned ones, which the kind table knows.
 */
static void legacy_list(pctx_t *c, yaml_node_t *list, const char *list_name, const char *item,
                        const char *kind_field, const char *http_kind)
{
    static const char *const item_keys[] = {"meta", "spec", NULL};
    yaml_node_item_t *it;

    if (!list || is_null(list))
        return;
    if (list->type != YAML_SEQUENCE_NODE) {
        ERR(c, list, "'%s' must be a list, got %s", list_name, type_name(list));
        return;
    }
    for (it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        yaml_node_t *entry = node_at(c, *it), *body, *meta, *kind, *kind_key = NULL;
        yaml_node_t *spec, *spec_key = NULL;
        char what[64];

        body = map_get(c, entry, item, NULL);
        if (!body || body->type != YAML_MAPPING_NODE) {
            ERR(c, entry, "each item of '%s' must be '%s: {meta: ..., spec: ...}'", list_name,
                item);
            continue;
        }
        snprintf(what, sizeof what, "'%s'", item);
        only_keys(c, body, item_keys, what);
        meta = map_get(c, body, "meta", NULL);
        kind = map_get(c, meta, kind_field, &kind_key);
        if (!kind) {
            ERR(c, meta ? meta : body, "'%s' has no meta.%s", item, kind_field);
            continue;
        }
        spec = map_get(c, body, "spec", &spec_key);
        if (http_kind && kind->type == YAML_SCALAR_NODE && strcmp(sval(kind), "http") == 0) {
            /* The kind node's text cannot be changed; dispatch the mapped name. */
            const kind_t *k = NULL;
            size_t i;
            for (i = 0; i < SF_ARRAY_SIZE(kinds); i++) {
                if (strcmp(kinds[i].name, http_kind) == 0)
                    k = &kinds[i];
            }
            SF_ASSERT(k != NULL);
            c->kind = k->name;
            c->spec_key = spec ? spec_key : kind_key;
            if (!spec) {
                ERR(c, kind_key, "endpoint has no 'spec'");
                continue;
            }
            k->fn(c, kind, spec, k->version);
            continue;
        }
        dispatch(c, kind, kind_key, spec, spec_key);
    }
}

/*
 * The StateFun 3.0 format, still read (deprecated) by StateFun 3.2:
 *
 *     version: "3.0"
 *     module:
 *       meta: {type: remote}
 *       spec: {endpoints: [...], ingresses: [...], egresses: [...]}
 *
 * Its "http" endpoints are io.statefun.endpoints.v1/http ("3.1" files carry
 * a v2 transport, so there they are v2). Older formats (1.0, 2.0) described
 * functions one by one and are not read.
 */
static void process_legacy(pctx_t *c, yaml_node_t *root)
{
    static const char *const root_keys[] = {"version", "module", NULL};
    static const char *const module_keys[] = {"meta", "spec", NULL};
    static const char *const spec_keys[] = {"endpoints", "ingresses", "egresses", NULL};
    yaml_node_t *version, *module, *meta, *type, *spec;
    const char *v, *http_kind;

    only_keys(c, root, root_keys, "a StateFun 3.0 module document");
    version = map_get(c, root, "version", NULL);
    module = map_get(c, root, "module", NULL);
    if (!version || !get_string(c, version, "version", &v))
        return;
    if (strcmp(v, "3.0") == 0) {
        http_kind = "io.statefun.endpoints.v1/http";
    } else if (strcmp(v, "3.1") == 0) {
        http_kind = "io.statefun.endpoints.v2/http";
    } else {
        ERR(c, version,
            "module format version '%s' is not supported (statefun-c reads kind/spec documents "
            "and the StateFun 3.0 format)",
            v);
        return;
    }
    WARN(c, version,
         "the StateFun %s module format (version:/module:) is deprecated; kind/spec documents "
         "replace it",
         v);
    if (!module || module->type != YAML_MAPPING_NODE) {
        ERR(c, module ? module : root, "'module' must be a mapping with 'meta' and 'spec'");
        return;
    }
    only_keys(c, module, module_keys, "'module'");
    meta = map_get(c, module, "meta", NULL);
    type = map_get(c, meta, "type", NULL);
    if (type && (type->type != YAML_SCALAR_NODE || strcmp(sval(type), "remote") != 0)) {
        ERR(c, type, "module.meta.type must be 'remote'");
        return;
    }
    spec = map_get(c, module, "spec", NULL);
    if (!spec || spec->type != YAML_MAPPING_NODE) {
        ERR(c, spec ? spec : module, "'module.spec' must be a mapping");
        return;
    }
    only_keys(c, spec, spec_keys, "'module.spec'");
    legacy_list(c, map_get(c, spec, "endpoints", NULL), "endpoints", "endpoint", "kind", http_kind);
    legacy_list(c, map_get(c, spec, "ingresses", NULL), "ingresses", "ingress", "type", NULL);
    legacy_list(c, map_get(c, spec, "egresses", NULL), "egresses", "egress", "type", NULL);
}

static void process_document(pctx_t *c, yaml_node_t *root)
{
    yaml_node_t *kind_key = NULL, *kind, *spec, *spec_key = NULL, *runtime, *rt_key = NULL;
    yaml_node_pair_t *p;

    c->spec_key = NULL;
    if (is_null(root))
        return; /* An empty document (a stray "---"): nothing to do. */
    c->m->ndocuments++;
    check_duplicate_keys(c);
    if (root->type != YAML_MAPPING_NODE) {
        ERR(c, root, "a module document must be a mapping with 'kind' and 'spec', got %s",
            type_name(root));
        return;
    }
    kind = map_get(c, root, "kind", &kind_key);
    spec = map_get(c, root, "spec", &spec_key);
    runtime = map_get(c, root, "runtime", &rt_key);

    if (!kind) {
        if (runtime) {
            for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
                yaml_node_t *key = node_at(c, p->key);
                if (key != rt_key)
                    ERR(c, key, "a runtime document holds only 'runtime:' (unexpected '%s')",
                        key && key->type == YAML_SCALAR_NODE ? sval(key) : "?");
            }
            c->kind = "runtime";
            parse_runtime(c, rt_key, runtime, 1);
            return;
        }
        if (map_get(c, root, "version", NULL) || map_get(c, root, "module", NULL)) {
            process_legacy(c, root);
            return;
        }
        ERR(c, root, "document has no 'kind' (expected kind: and spec:, or runtime:)");
        return;
    }
    for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *key = node_at(c, p->key);
        if (!key || key->type != YAML_SCALAR_NODE) {
            ERR(c, key, "document keys must be names");
            continue;
        }
        if (strcmp(sval(key), "kind") != 0 && strcmp(sval(key), "spec") != 0)
            ERR(c, key, "unknown top-level field '%s' (a document has 'kind' and 'spec')",
                sval(key));
    }
    dispatch(c, kind, kind_key, spec, spec_key);
}

/* Registers |name| in the module's file list and returns the module's copy. */
static const char *module_file(sf_module_t *m, const char *name)
{
    m->files = cfg_grow(m->files, &m->_files_cap, m->nfiles, sizeof *m->files);
    m->files[m->nfiles] = sf_xstrdup(name);
    return m->files[m->nfiles++];
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return sf_xstrdup(".");
    if (slash == path)
        return sf_xstrdup("/");
    return sf_xstrndup(path, (size_t)(slash - path));
}

/* Reads every document from an initialized |parser|. */
static void read_stream(pctx_t *c, yaml_parser_t *parser)
{
    for (;;) {
        yaml_document_t doc;
        yaml_node_t *root;

        if (!yaml_parser_load(parser, &doc)) {
            const char *problem = parser->problem ? parser->problem : "unknown error";
            if (parser->error == YAML_READER_ERROR)
                sf_diags_error(c->d, c->file, (int)parser->problem_mark.line + 1,
                               "cannot read YAML: %s", problem);
            else if (parser->context)
                sf_diags_error(c->d, c->file, (int)parser->problem_mark.line + 1,
                               "YAML syntax error: %s %s (started at line %d)", problem,
                               parser->context, (int)parser->context_mark.line + 1);
            else
                sf_diags_error(c->d, c->file, (int)parser->problem_mark.line + 1,
                               "YAML syntax error: %s", problem);
            return;
        }
        root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            return; /* End of the stream. */
        }
        c->doc = &doc;
        process_document(c, root);
        c->doc = NULL;
        yaml_document_delete(&doc);
    }
}

int sf_module_add_string(sf_module_t *m, const char *name, const char *basedir, const char *text,
                         size_t len, sf_diags_t *diags)
{
    yaml_parser_t parser;
    pctx_t c;
    size_t before = diags->nerrors;

    memset(&c, 0, sizeof c);
    c.m = m;
    c.d = diags;
    c.file = module_file(m, name);
    c.dir = sf_xstrdup(basedir ? basedir : ".");
    sf_diags_register_file(diags, c.file);
    if (!yaml_parser_initialize(&parser))
        sf__panic(__FILE__, __LINE__, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    read_stream(&c, &parser);
    yaml_parser_delete(&parser);
    free(c.dir);
    return diags->nerrors > before ? SF_EINVAL : 0;
}

int sf_module_add_file(sf_module_t *m, const char *path, sf_diags_t *diags)
{
    yaml_parser_t parser;
    struct stat st;
    FILE *f;
    pctx_t c;
    size_t before = diags->nerrors;

    memset(&c, 0, sizeof c);
    c.m = m;
    c.d = diags;
    c.file = module_file(m, path);
    sf_diags_register_file(diags, c.file);
    if (stat(path, &st) != 0) {
        sf_diags_error(diags, c.file, 0, "cannot open: %s", strerror(errno));
        return SF_EINVAL;
    }
    if (S_ISDIR(st.st_mode)) {
        sf_diags_error(diags, c.file, 0, "is a directory, not a module YAML file");
        return SF_EINVAL;
    }
    f = fopen(path, "rb");
    if (!f) {
        sf_diags_error(diags, c.file, 0, "cannot open: %s", strerror(errno));
        return SF_EINVAL;
    }
    c.dir = dir_of(path);
    if (!yaml_parser_initialize(&parser))
        sf__panic(__FILE__, __LINE__, "out of memory");
    yaml_parser_set_input_file(&parser, f);
    read_stream(&c, &parser);
    yaml_parser_delete(&parser);
    fclose(f);
    free(c.dir);
    return diags->nerrors > before ? SF_EINVAL : 0;
}

/* ------------------------------------------------------------------------ */
/* Module object and checks across documents                                  */

sf_module_t *sf_module_new(void)
{
    return sf_xcalloc(1, sizeof(sf_module_t));
}

void sf_module_free(sf_module_t *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->nendpoints; i++)
        endpoint_dispose(&m->endpoints[i]);
    for (i = 0; i < m->nembedded; i++)
        embedded_dispose(&m->embedded[i]);
    for (i = 0; i < m->nsettings; i++) {
        free(m->settings[i].value);
        free(m->settings[i].file);
    }
    egress_free(m->egress);
    for (i = 0; i < m->nfiles; i++)
        free(m->files[i]);
    free(m->endpoints);
    free(m->embedded);
    free(m->settings);
    free(m->ingress);
    free(m->egress);
    free(m->files);
    free(m);
}

static bool pattern_eq(const sf_fn_pattern_t *a, const sf_fn_pattern_t *b)
{
    if (strcmp(a->ns, b->ns) != 0)
        return false;
    if (!a->name || !b->name)
        return !a->name && !b->name;
    return strcmp(a->name, b->name) == 0;
}

/* Every pattern in file order, with what declares it, for duplicate checks. */
typedef struct {
    const sf_fn_pattern_t *p;
    const char *what;
} pat_ref_t;

static bool hosts_overlap(const char *a, const char *b)
{
    return strcmp(a, b) == 0 || strcmp(a, "0.0.0.0") == 0 || strcmp(b, "0.0.0.0") == 0 ||
           strcmp(a, "::") == 0 || strcmp(b, "::") == 0;
}

int sf_module_finish(sf_module_t *m, sf_diags_t *diags)
{
    size_t before = diags->nerrors, n = 0, i, j;
    pat_ref_t *refs;
    char buf[256];

    for (i = 0; i < m->nembedded; i++)
        n += m->embedded[i].nfunctions;
    refs = sf_xcalloc(n + m->nendpoints, sizeof *refs);
    n = 0;
    for (i = 0; i < m->nendpoints; i++)
        refs[n++] = (pat_ref_t){&m->endpoints[i].functions, "an endpoint"};
    for (i = 0; i < m->nembedded; i++) {
        for (j = 0; j < m->embedded[i].nfunctions; j++)
            refs[n++] = (pat_ref_t){&m->embedded[i].functions[j], "an embedded module"};
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (pattern_eq(refs[i].p, refs[j].p)) {
                sf_diags_error(diags, refs[i].p->loc.file, refs[i].p->loc.line,
                               "functions '%s' are already served by %s at %s:%d",
                               sf_fn_pattern_format(refs[i].p, buf, sizeof buf), refs[j].what,
                               refs[j].p->loc.file, refs[j].p->loc.line);
                break;
            }
        }
    }
    free(refs);
    if (m->ingress && m->egress && m->ingress->port != 0 && m->ingress->port == m->egress->port &&
        hosts_overlap(m->ingress->host, m->egress->host))
        sf_diags_error(diags, m->egress->loc.file, m->egress->loc.line,
                       "egress port %u is already used by the ingress at %s:%d", m->egress->port,
                       m->ingress->loc.file, m->ingress->loc.line);
    return diags->nerrors > before ? SF_EINVAL : 0;
}

int sf_module_load(const char *const *paths, size_t npaths, sf_diags_t *diags, sf_module_t **out)
{
    size_t before = diags->nerrors, i;
    sf_module_t *m = sf_module_new();

    for (i = 0; i < npaths; i++)
        sf_module_add_file(m, paths[i], diags);
    sf_module_finish(m, diags);
    *out = m;
    return diags->nerrors > before ? SF_EINVAL : 0;
}

int sf_module_check_options(const sf_module_t *m, const sf_options_t *o, sf_diags_t *diags)
{
    size_t before = diags->nerrors;
    const char *src = o->origin[SF_OPT_ADMIN] ? o->origin[SF_OPT_ADMIN] : "default";

    if (o->admin.port == 0)
        return 0;
    if (m->ingress && m->ingress->port == o->admin.port &&
        hosts_overlap(m->ingress->host, o->admin.host))
        sf_diags_error(diags, m->ingress->loc.file, m->ingress->loc.line,
                       "ingress port %u is also the admin port (--admin %s:%u, from %s)",
                       m->ingress->port, o->admin.host, o->admin.port, src);
    if (m->egress && m->egress->port == o->admin.port &&
        hosts_overlap(m->egress->host, o->admin.host))
        sf_diags_error(diags, m->egress->loc.file, m->egress->loc.line,
                       "egress port %u is also the admin port (--admin %s:%u, from %s)",
                       m->egress->port, o->admin.host, o->admin.port, src);
    return diags->nerrors > before ? SF_EINVAL : 0;
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                     */

/* 2: exact match, 1: namespace match, 0: no match. */
static int match_rank(const sf_fn_pattern_t *p, const char *ns, const char *name)
{
    if (strcmp(p->ns, ns) != 0)
        return 0;
    if (!p->name)
        return 1;
    return strcmp(p->name, name) == 0 ? 2 : 0;
}

static int best_endpoint(const sf_module_t *m, const char *ns, const char *name,
                         const sf_endpoint_spec_t **out)
{
    int best = 0;
    size_t i;

    *out = NULL;
    for (i = 0; i < m->nendpoints; i++) {
        int r = match_rank(&m->endpoints[i].functions, ns, name);
        if (r > best) {
            best = r;
            *out = &m->endpoints[i];
        }
    }
    return best;
}

static int best_embedded(const sf_module_t *m, const char *ns, const char *name,
                         const sf_embedded_spec_t **out)
{
    int best = 0;
    size_t i, j;

    *out = NULL;
    for (i = 0; i < m->nembedded; i++) {
        for (j = 0; j < m->embedded[i].nfunctions; j++) {
            int r = match_rank(&m->embedded[i].functions[j], ns, name);
            if (r > best) {
                best = r;
                *out = &m->embedded[i];
            }
        }
    }
    return best;
}

const sf_endpoint_spec_t *sf_module_find_endpoint(const sf_module_t *m, const char *ns,
                                                  const char *name)
{
    const sf_endpoint_spec_t *e;
    best_endpoint(m, ns, name, &e);
    return e;
}

const sf_embedded_spec_t *sf_module_find_embedded(const sf_module_t *m, const char *ns,
                                                  const char *name)
{
    const sf_embedded_spec_t *em;
    best_embedded(m, ns, name, &em);
    return em;
}

int sf_module_find_function(const sf_module_t *m, const char *ns, const char *name,
                            sf_fn_binding_t *out)
{
    const sf_endpoint_spec_t *e;
    const sf_embedded_spec_t *em;
    int re = best_endpoint(m, ns, name, &e), rm = best_embedded(m, ns, name, &em);

    out->endpoint = NULL;
    out->embedded = NULL;
    if (re == 0 && rm == 0)
        return SF_ENOTFOUND;
    /* Duplicates are rejected at load, so the ranks never tie. */
    if (re > rm)
        out->endpoint = e;
    else
        out->embedded = em;
    return 0;
}

char *sf_module_summary(const sf_module_t *m, char *buf, size_t len)
{
    size_t used = 0;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (used < len)                                                                            \
            used += (size_t)snprintf(buf + used, len - used, __VA_ARGS__);                         \
    } while (0)
    ADD("%zu file%s, %zu document%s: %zu endpoint%s, %zu embedded module%s", m->nfiles,
        m->nfiles == 1 ? "" : "s", m->ndocuments, m->ndocuments == 1 ? "" : "s", m->nendpoints,
        m->nendpoints == 1 ? "" : "s", m->nembedded, m->nembedded == 1 ? "" : "s");
    ADD(", %s", m->ingress ? "1 ingress" : "no ingress");
    ADD(", %s", m->egress ? "1 egress" : "no egress");
    ADD(", %zu runtime option%s", m->nsettings, m->nsettings == 1 ? "" : "s");
#undef ADD
    return buf;
}
