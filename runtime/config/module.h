/* statefun-c: Apache License 2.0.
 *
 * Module YAML (SPEC 5): loads one or more files of multi-document YAML into a
 * plain C description of the application, sf_module_t, and reports every
 * problem of every file as FILE:LINE: message before anything starts.
 *
 * Each document is `kind: KIND` plus `spec: {...}`:
 *
 *   io.statefun.endpoints.v2/http     remote functions (v2: timeouts under
 *   io.statefun.endpoints.v1/http     `transport.timeouts`; v1 and its older
 *   io.statefun.endpoints/http        name: `timeouts` directly under spec)
 *   io.statefun.playground.v1/ingress the playground HTTP ingress
 *   io.statefun.playground.v1/egress  the playground HTTP egress
 *   statefun.c.v1/embedded            C functions loaded from a shared library
 *   statefun.c.v1/runtime             runtime options (same as `runtime:`)
 *
 * Besides kind/spec documents, a document whose only top-level key is
 * `runtime:` sets runtime options (SPEC 4), keys in kebab-case (`state-dir`)
 * or camelCase (`stateDir`):
 *
 *     runtime:
 *       state-dir: /var/lib/statefun
 *       checkpoint-interval: 5s
 *
 * The deprecated StateFun 3.0 format (`version: "3.0"` with `module:` and
 * lists of endpoints, ingresses and egresses), which StateFun 3.2 still
 * reads, is read too (with a warning): its "http" endpoints are v1 ones.
 * Kafka kinds (io.statefun.kafka[.v1]/ingress|egress) are reported as "not
 * yet supported", Kinesis kinds as not supported; anything else as unknown.
 * Unknown fields are errors, except the few that real StateFun files carry
 * and StateFun itself ignores (`maxRetries`): those are warnings.
 *
 * Threading: loading runs on the main thread before anything starts. A
 * loaded sf_module_t is immutable; any thread may read it and call the
 * lookup functions.
 */
#ifndef SF_MODULE_H
#define SF_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "options.h"
#include "sf_http.h"

/** Where something was written: |file| is owned by the module. */
typedef struct sf_loc_s {
    const char *file;
    int line;
} sf_loc_t;

/**
 * A `functions` pattern: "namespace/name", or a whole namespace, written as
 * "namespace/" followed by a star (then |name| is NULL).
 */
typedef struct sf_fn_pattern_s {
    char *ns;   /* namespace */
    char *name; /* function name; NULL matches every function of |ns| */
    sf_loc_t loc;
} sf_fn_pattern_t;

/** The transport a remote endpoint's `transport.type` names. */
typedef enum {
    SF_TRANSPORT_ASYNC = 0,  /* io.statefun.transports.v1/async (v2 default) */
    SF_TRANSPORT_OKHTTP = 1, /* io.statefun.transports.v1/okhttp (v1's only) */
} sf_transport_kind;

/* Defaults (SPEC 5.1; pool and payload defaults are StateFun's async ones). */
#define SF_ENDPOINT_DEFAULT_MAX_BATCH 1000u
#define SF_ENDPOINT_DEFAULT_CALL_MS 60000u
#define SF_ENDPOINT_DEFAULT_CONNECT_MS 10000u
#define SF_ENDPOINT_DEFAULT_READ_MS 10000u
#define SF_ENDPOINT_DEFAULT_WRITE_MS 10000u
#define SF_ENDPOINT_DEFAULT_POOL_TTL_MS 15000u
#define SF_ENDPOINT_DEFAULT_POOL_SIZE 1024u
#define SF_ENDPOINT_DEFAULT_PAYLOAD_MAX (32u * 1024 * 1024)

/** An io.statefun.endpoints.v1|v2/http document. */
typedef struct sf_endpoint_spec_s {
    sf_loc_t loc; /* the `kind:` line */
    int version;  /* 1 or 2 */
    sf_fn_pattern_t functions;
    char *url_template;              /* urlPathTemplate, verbatim */
    bool url_templated;              /* contains "{function.name}" */
    bool url_tls;                    /* https or https+unix */
    bool url_unix;                   /* http+unix or https+unix */
    uint32_t max_num_batch_requests; /* backlog limit per address */
    sf_transport_kind transport;
    sf_http_protocol protocol; /* transport.protocol (ours), default auto */
    uint64_t call_timeout_ms;  /* > 0; the others are <= call */
    uint64_t connect_timeout_ms;
    uint64_t read_timeout_ms;
    uint64_t write_timeout_ms;
    uint64_t pool_ttl_ms;
    uint32_t pool_size;
    uint64_t payload_max_bytes;
    char *trust_cacerts; /* resolved file paths, or NULL */
    char *client_cert;
    char *client_key;
    char *client_key_password;
} sf_endpoint_spec_t;

/** The io.statefun.playground.v1/ingress document. */
typedef struct sf_ingress_spec_s {
    sf_loc_t loc;
    char host[48]; /* IP literal; default 127.0.0.1 */
    uint16_t port; /* default 8090; 0 picks a free port */
} sf_ingress_spec_t;

/** The io.statefun.playground.v1/egress document. */
typedef struct sf_egress_spec_s {
    sf_loc_t loc;
    char host[48]; /* IP literal; default 127.0.0.1 */
    uint16_t port; /* default 8091; 0 picks a free port */
    char **topics; /* at least one, unique */
    size_t ntopics;
    bool exactly_once; /* deliverySemantic; default exactly-once */
} sf_egress_spec_t;

/** A statefun.c.v1/embedded document. */
typedef struct sf_embedded_spec_s {
    sf_loc_t loc;
    char *library;              /* absolute path of the shared library */
    sf_fn_pattern_t *functions; /* one or more patterns */
    size_t nfunctions;
} sf_embedded_spec_t;

/** Everything the module files describe. Owned by one sf_module_free. */
typedef struct sf_module_s {
    char **files; /* the files, as named on the command line */
    size_t nfiles;
    size_t ndocuments;             /* non-empty documents read */
    sf_endpoint_spec_t *endpoints; /* in file order */
    size_t nendpoints;
    sf_embedded_spec_t *embedded;
    size_t nembedded;
    sf_ingress_spec_t *ingress; /* NULL when there is none */
    sf_egress_spec_t *egress;   /* NULL when there is none */
    sf_opt_setting_t *settings; /* from runtime sections, in file order */
    size_t nsettings;
    size_t _files_cap, _endpoints_cap, _embedded_cap, _settings_cap;
} sf_module_t;

/** An empty module to add files to. Never NULL (aborts on OOM). */
sf_module_t *sf_module_new(void);
void sf_module_free(sf_module_t *m);

/**
 * Reads one YAML file into |m|; relative paths inside it (library,
 * certificates) are resolved against the file's directory. Errors and
 * warnings go to |diags| with the file name as given. Returns 0 or
 * SF_EINVAL when this file had errors.
 */
int sf_module_add_file(sf_module_t *m, const char *path, sf_diags_t *diags);

/**
 * As sf_module_add_file for YAML text in memory; |name| is used in
 * diagnostics and |basedir| (NULL: ".") for relative paths. For tests.
 */
int sf_module_add_string(sf_module_t *m, const char *name, const char *basedir, const char *text,
                         size_t len, sf_diags_t *diags);

/**
 * The checks across documents and files: duplicate `functions` patterns,
 * more than one ingress or egress, port clashes, runtime options set twice.
 * Returns 0 or SF_EINVAL.
 */
int sf_module_finish(sf_module_t *m, sf_diags_t *diags);

/**
 * sf_module_new + sf_module_add_file for each path + sf_module_finish. Always
 * stores the module (possibly partial) in |*out|; returns 0 or SF_EINVAL when
 * |diags| holds errors from this call.
 */
int sf_module_load(const char *const *paths, size_t npaths, sf_diags_t *diags, sf_module_t **out);

/**
 * Checks the module against the effective options (admin listener clashing
 * with the ingress or egress port). Returns 0 or SF_EINVAL.
 */
int sf_module_check_options(const sf_module_t *m, const sf_options_t *o, sf_diags_t *diags);

/** Which module serves a function type: exactly one of the two is set. */
typedef struct sf_fn_binding_s {
    const sf_endpoint_spec_t *endpoint;
    const sf_embedded_spec_t *embedded;
} sf_fn_binding_t;

/**
 * Finds what serves function type |ns|/|name| among endpoints and embedded
 * modules: an exact "ns/name" pattern wins over a namespace pattern. This is
 * the lookup routing must use. Returns 0 and fills |out|, or SF_ENOTFOUND.
 * Linear in the number of patterns: callers cache per function type.
 */
int sf_module_find_function(const sf_module_t *m, const char *ns, const char *name,
                            sf_fn_binding_t *out);

/** The most specific remote endpoint for |ns|/|name|, ignoring embedded ones. */
const sf_endpoint_spec_t *sf_module_find_endpoint(const sf_module_t *m, const char *ns,
                                                  const char *name);

/** The most specific embedded module for |ns|/|name|, ignoring endpoints. */
const sf_embedded_spec_t *sf_module_find_embedded(const sf_module_t *m, const char *ns,
                                                  const char *name);

/**
 * The endpoint URL for function |name|: the template with every
 * "{function.name}" replaced. Caller frees. Never NULL (aborts on OOM).
 */
char *sf_endpoint_url_for(const sf_endpoint_spec_t *e, const char *name);

/** Formats a pattern as written ("ns/name", or "ns/" and a star). Returns |buf|. */
char *sf_fn_pattern_format(const sf_fn_pattern_t *p, char *buf, size_t len);

/** A one-line summary ("1 endpoint, 1 ingress, ..."). Returns |buf|. */
char *sf_module_summary(const sf_module_t *m, char *buf, size_t len);

#endif /* SF_MODULE_H */
