/* statefun-c: Apache License 2.0.
 *
 * End-to-end tests of the C SDK through its examples.
 *
 * Remote: BUILD/examples/greeter runs as a child process on a free port (and
 * on a UNIX socket, and with TLS); requests are encoded by an independent
 * encoder (`protoc --encode` from text format), POSTed with curl over
 * HTTP/1.1 and HTTP/2 (prior knowledge; ALPN with TLS), and the answers
 * decoded with `protoc --decode` and compared as text. Errors (400, 404, 405,
 * 413) must leave the server answering.
 *
 * Embedded: BUILD/examples/libgreeter.so and libshopping-cart.so are dlopened
 * as the runtime does (RTLD_LOCAL, one entry symbol) and driven through the
 * module ABI, bytes in and bytes out as well as struct in and struct out.
 *
 * Every child is killed by its PID and reaped in the teardown.
 */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sf_proto.h"
#include "statefun/sf.h"
#include "testutil.h"

static char *tmpdir;
static pid_t child = -1;
static char base_url[300];

/* ------------------------------------------------------------------------ */
/* The server child                                                           */

/*
 * Starts |prog| with |args| (NULL-terminated) and waits up to 10 s for its
 * "listening on ADDRESS" line; copies ADDRESS into |addr|.
 */
static void start_child(const char *prog, const char *const *args, char *addr, size_t addr_size)
{
    char path[512], line[512];
    char *argv[16];
    size_t n = 0;

    snprintf(path, sizeof path, "%s/examples/%s", sf_test_build(), prog);
    argv[n++] = path;
    while (args && *args && n < 15)
        argv[n++] = (char *)*args++;
    argv[n] = NULL;
    line[0] = '\0';
    child = sf_test_spawn_line(argv, line, sizeof line, 10000);
    ck_assert_msg(child > 0 && strncmp(line, "listening on ", 13) == 0, "%s did not start: '%s'",
                  prog, line);
    snprintf(addr, addr_size, "%s", line + 13);
}

static void start_greeter(const char *const *extra)
{
    const char *args[12] = {"--listen", "127.0.0.1:0"};
    char addr[256];
    size_t n = 2;
    while (extra && *extra && n < 11)
        args[n++] = *extra++;
    args[n] = NULL;
    start_child("greeter", args, addr, sizeof addr);
    snprintf(base_url, sizeof base_url, "http://%s", addr);
}

static void setup(void)
{
    tmpdir = sf_test_mkdtemp("sdkex");
}

static void teardown(void)
{
    sf_test_kill(child);
    child = -1;
    sf_test_rmtree(tmpdir);
    tmpdir = NULL;
}

/* ------------------------------------------------------------------------ */
/* protoc and curl                                                            */

#define RR "request-reply.proto"
#define TO "io.statefun.sdk.reqreply.ToFunction"
#define FROM "io.statefun.sdk.reqreply.FromFunction"

/* Encodes the ToFunction |text| into the file |name| in tmpdir. */
static void encode(const char *text, const char *name)
{
    char in[512];
    snprintf(in, sizeof in, "%s/%s.txt", tmpdir, name);
    ck_assert_int_eq(sf_test_write_file(in, text, strlen(text)), 0);
    ck_assert_int_eq(sf_test_sh("protoc --encode=%s -I '%s/protocol/proto' %s < '%s' > '%s/%s'", TO,
                                sf_test_src(), RR, in, tmpdir, name),
                     0);
}

/*
 * POSTs the file |name| to |url| with curl's |flags| and returns the status.
 * The body lands in tmpdir/resp.bin.
 */
static int post_try(const char *flags, const char *url, const char *name, int *curl_rc)
{
    char codefile[512], *code;
    int status;
    snprintf(codefile, sizeof codefile, "%s/code.txt", tmpdir);
    *curl_rc = sf_test_sh("curl -s -S --max-time 10 %s -H 'Content-Type: "
                          "application/octet-stream' --data-binary @'%s/%s' -o '%s/resp.bin' "
                          "-w '%%{http_code}' '%s' > '%s'",
                          flags, tmpdir, name, tmpdir, url, codefile);
    if (*curl_rc != 0)
        return -1;
    code = sf_test_read_file(codefile, NULL);
    ck_assert_ptr_nonnull(code);
    status = atoi(code);
    free(code);
    return status;
}

static int post(const char *flags, const char *url, const char *name)
{
    int curl_rc, status = post_try(flags, url, name, &curl_rc);
    ck_assert_msg(curl_rc == 0, "curl %s %s failed with %d", flags, url, curl_rc);
    return status;
}

/*
 * POSTs a body the server refuses before reading it all (413) and returns the
 * status. Over HTTP/2 the server answers and then resets the stream with
 * NO_ERROR when the upload is still going (RFC 9113 8.1); curl 7.88 reports
 * that reset as an error (exit 92) most of the time even though the answer
 * came first, so HTTP/2 uses nghttp, which shows the frames.
 */
static int post_refused(const char *flags, const char *url, const char *name)
{
    char out[512], *text, *p;
    int status = -1;
    if (!strstr(flags, "http2"))
        return post(flags, url, name);
    snprintf(out, sizeof out, "%s/nghttp.txt", tmpdir);
    sf_test_sh("nghttp -v -t 10 -d '%s/%s' '%s' > '%s' 2>&1", tmpdir, name, url, out);
    text = sf_test_read_file(out, NULL);
    ck_assert_ptr_nonnull(text);
    if ((p = strstr(text, ":status: ")))
        status = atoi(p + 9);
    free(text);
    return status;
}

/* Decodes tmpdir/resp.bin as a FromFunction; caller frees the text. */
static char *decode_resp(void)
{
    char out[512];
    char *text;
    snprintf(out, sizeof out, "%s/resp.txt", tmpdir);
    ck_assert_int_eq(sf_test_sh("protoc --decode=%s -I '%s/protocol/proto' %s < '%s/resp.bin' > "
                                "'%s'",
                                FROM, sf_test_src(), RR, tmpdir, out),
                     0);
    text = sf_test_read_file(out, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

static char *resp_body(void)
{
    char path[512];
    char *s;
    snprintf(path, sizeof path, "%s/resp.bin", tmpdir);
    s = sf_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* POSTs and asserts status 200 and the decoded FromFunction text. */
static void expect_reply(const char *flags, const char *url, const char *name, const char *want)
{
    char *got;
    ck_assert_int_eq(post(flags, url, name), 200);
    got = decode_resp();
    ck_assert_str_eq(got, want);
    free(got);
}

/* ------------------------------------------------------------------------ */
/* Requests and the answers expected                                          */

#define PERSON_NO_STATE                                                                            \
    "invocation {\n"                                                                               \
    "  target { namespace: \"greeter.fns\" type: \"person\" id: \"alice\" }\n"                     \
    "  invocations { argument { typename: \"io.statefun.types/string\" has_value: true "           \
    "value: \"\\n\\005alice\" } }\n"                                                               \
    "}\n"

#define PERSON_VISITS_2                                                                            \
    "invocation {\n"                                                                               \
    "  target { namespace: \"greeter.fns\" type: \"person\" id: \"alice\" }\n"                     \
    "  state { state_name: \"visits\" state_value { typename: \"io.statefun.types/int\" "          \
    "has_value: true value: \"\\r\\002\\000\\000\\000\" } }\n"                                     \
    "  invocations { argument { typename: \"io.statefun.types/string\" has_value: true "           \
    "value: \"\\n\\005alice\" } }\n"                                                               \
    "}\n"

/* Two visits in one batch, starting from an empty state. */
#define PERSON_EMPTY_TWICE                                                                         \
    "invocation {\n"                                                                               \
    "  target { namespace: \"greeter.fns\" type: \"person\" id: \"bob\" }\n"                       \
    "  state { state_name: \"visits\" state_value { typename: \"io.statefun.types/int\" } }\n"     \
    "  invocations { argument { typename: \"io.statefun.types/string\" has_value: true "           \
    "value: \"\\n\\003bob\" } }\n"                                                                 \
    "  invocations { argument { typename: \"io.statefun.types/string\" has_value: true "           \
    "value: \"\\n\\003bob\" } }\n"                                                                 \
    "}\n"

static const char incomplete_visits[] = "incomplete_invocation_context {\n"
                                        "  missing_values {\n"
                                        "    state_name: \"visits\"\n"
                                        "    expiration_spec {\n"
                                        "    }\n"
                                        "    type_typename: \"io.statefun.types/int\"\n"
                                        "  }\n"
                                        "}\n";

static const char modify_visits_3[] = "invocation_result {\n"
                                      "  state_mutations {\n"
                                      "    mutation_type: MODIFY\n"
                                      "    state_name: \"visits\"\n"
                                      "    state_value {\n"
                                      "      typename: \"io.statefun.types/int\"\n"
                                      "      has_value: true\n"
                                      "      value: \"\\r\\003\\000\\000\\000\"\n"
                                      "    }\n"
                                      "  }\n"
                                      "  outgoing_messages {\n"
                                      "    target {\n"
                                      "      namespace: \"greeter.fns\"\n"
                                      "      type: \"greeter\"\n"
                                      "      id: \"alice\"\n"
                                      "    }\n"
                                      "    argument {\n"
                                      "      typename: \"io.statefun.types/int\"\n"
                                      "      has_value: true\n"
                                      "      value: \"\\r\\003\\000\\000\\000\"\n"
                                      "    }\n"
                                      "  }\n"
                                      "}\n";

static const char modify_bob_twice[] = "invocation_result {\n"
                                       "  state_mutations {\n"
                                       "    mutation_type: MODIFY\n"
                                       "    state_name: \"visits\"\n"
                                       "    state_value {\n"
                                       "      typename: \"io.statefun.types/int\"\n"
                                       "      has_value: true\n"
                                       "      value: \"\\r\\002\\000\\000\\000\"\n"
                                       "    }\n"
                                       "  }\n"
                                       "  outgoing_messages {\n"
                                       "    target {\n"
                                       "      namespace: \"greeter.fns\"\n"
                                       "      type: \"greeter\"\n"
                                       "      id: \"bob\"\n"
                                       "    }\n"
                                       "    argument {\n"
                                       "      typename: \"io.statefun.types/int\"\n"
                                       "      has_value: true\n"
                                       "      value: \"\\r\\001\\000\\000\\000\"\n"
                                       "    }\n"
                                       "  }\n"
                                       "  outgoing_messages {\n"
                                       "    target {\n"
                                       "      namespace: \"greeter.fns\"\n"
                                       "      type: \"greeter\"\n"
                                       "      id: \"bob\"\n"
                                       "    }\n"
                                       "    argument {\n"
                                       "      typename: \"io.statefun.types/int\"\n"
                                       "      has_value: true\n"
                                       "      value: \"\\r\\002\\000\\000\\000\"\n"
                                       "    }\n"
                                       "  }\n"
                                       "}\n";

/* A greeter request for the |n|-th visit of alice (n < 256). */
static void encode_greeter(int n, const char *name)
{
    char text[1024];
    snprintf(text, sizeof text,
             "invocation {\n"
             "  target { namespace: \"greeter.fns\" type: \"greeter\" id: \"alice\" }\n"
             "  invocations {\n"
             "    caller { namespace: \"greeter.fns\" type: \"person\" id: \"alice\" }\n"
             "    argument { typename: \"io.statefun.types/int\" has_value: true "
             "value: \"\\r\\%03o\\000\\000\\000\" }\n"
             "  }\n"
             "}\n",
             n);
    encode(text, name);
}

/* The egress answer protoc prints for |payload|. */
static void egress_text(char *buf, size_t size, const char *payload)
{
    snprintf(buf, size,
             "invocation_result {\n"
             "  outgoing_egresses {\n"
             "    egress_namespace: \"io.statefun.playground\"\n"
             "    egress_type: \"egress\"\n"
             "    argument {\n"
             "      typename: \"io.statefun.playground/EgressRecord\"\n"
             "      has_value: true\n"
             "      value: \"{\\\"topic\\\":\\\"greetings\\\",\\\"payload\\\":\\\"%s\\\"}\"\n"
             "    }\n"
             "  }\n"
             "}\n",
             payload);
}

static void greeter_conversation(const char *flags, const char *url)
{
    static const char *const greetings[] = {
        "Welcome alice",
        "Nice to see you again alice",
        "Third time is a charm alice",
        "Nice to see you at the 4-nth time alice!",
        "Nice to see you at the 5-nth time alice!",
    };
    char want[1024];
    int n;

    encode(PERSON_NO_STATE, "p0.bin");
    encode(PERSON_VISITS_2, "p2.bin");
    encode(PERSON_EMPTY_TWICE, "pe.bin");
    expect_reply(flags, url, "p0.bin", incomplete_visits);
    expect_reply(flags, url, "p2.bin", modify_visits_3);
    expect_reply(flags, url, "pe.bin", modify_bob_twice);
    for (n = 1; n <= 5; n++) {
        encode_greeter(n, "g.bin");
        egress_text(want, sizeof want, greetings[n - 1]);
        expect_reply(flags, url, "g.bin", want);
    }
}

/* ------------------------------------------------------------------------ */
/* Remote                                                                     */

START_TEST(test_greeter_http1_and_h2c)
{
    start_greeter(NULL);
    greeter_conversation("--http1.1", base_url);
    greeter_conversation("--http2-prior-knowledge", base_url);
    /* Any path serves when no --path was given. */
    {
        char url[512];
        snprintf(url, sizeof url, "%s/statefun/x?y=1", base_url);
        encode(PERSON_NO_STATE, "p0.bin");
        expect_reply("--http1.1", url, "p0.bin", incomplete_visits);
    }
}
END_TEST

START_TEST(test_greeter_errors_leave_server_answering)
{
    const char *extra[] = {"--max-body", "2000", NULL};
    const char *protos[] = {"--http1.1", "--http2-prior-knowledge"};
    char big[4000], *body;
    size_t i;

    start_greeter(extra);
    encode(PERSON_NO_STATE, "p0.bin");
    memset(big, 'x', sizeof big);
    {
        char p[512];
        snprintf(p, sizeof p, "%s/big.bin", tmpdir);
        ck_assert_int_eq(sf_test_write_file(p, big, sizeof big), 0);
        snprintf(p, sizeof p, "%s/junk.bin", tmpdir);
        ck_assert_int_eq(sf_test_write_file(p, "\xff\xff\xff\x01garbage", 11), 0);
        snprintf(p, sizeof p, "%s/empty.bin", tmpdir);
        ck_assert_int_eq(sf_test_write_file(p, "", 0), 0);
    }
    encode("invocation { target { namespace: \"greeter.fns\" type: \"nobody\" id: \"a\" } "
           "invocations { argument { typename: \"x/y\" } } }",
           "unknown.bin");

    for (i = 0; i < 2; i++) {
        const char *f = protos[i];
        char flags[256];
        /* Malformed protobuf: 400 with a reason. */
        ck_assert_int_eq(post(f, base_url, "junk.bin"), 400);
        body = resp_body();
        ck_assert_str_eq(body, "malformed request: not a ToFunction message\n");
        free(body);
        ck_assert_int_eq(post(f, base_url, "empty.bin"), 400);
        /* Unknown function type: 404. */
        ck_assert_int_eq(post(f, base_url, "unknown.bin"), 404);
        body = resp_body();
        ck_assert_str_eq(body, "no function bound for type greeter.fns/nobody\n");
        free(body);
        /* Over --max-body: 413. */
        ck_assert_int_eq(post_refused(f, base_url, "big.bin"), 413);
        /* GET: 405. */
        snprintf(flags, sizeof flags, "%s -X GET", f);
        ck_assert_int_eq(post(flags, base_url, "empty.bin"), 405);
        snprintf(flags, sizeof flags, "%s -X PUT", f);
        ck_assert_int_eq(post(flags, base_url, "p0.bin"), 405);
        /* And the server still answers. */
        expect_reply(f, base_url, "p0.bin", incomplete_visits);
    }
}
END_TEST

START_TEST(test_greeter_path_per_function)
{
    const char *extra[] = {"--path", "/fn/{function.name}", NULL};
    char url[512];

    start_greeter(extra);
    encode(PERSON_NO_STATE, "p0.bin");
    snprintf(url, sizeof url, "%s/fn/person", base_url);
    expect_reply("--http1.1", url, "p0.bin", incomplete_visits);
    snprintf(url, sizeof url, "%s/fn/person?from=runtime", base_url);
    expect_reply("--http2-prior-knowledge", url, "p0.bin", incomplete_visits);
    /* The greeter's path does not serve the person. */
    snprintf(url, sizeof url, "%s/fn/greeter", base_url);
    ck_assert_int_eq(post("--http1.1", url, "p0.bin"), 404);
    snprintf(url, sizeof url, "%s/", base_url);
    ck_assert_int_eq(post("--http1.1", url, "p0.bin"), 404);
    snprintf(url, sizeof url, "%s/fn/nobody", base_url);
    ck_assert_int_eq(post("--http2-prior-knowledge", url, "p0.bin"), 404);
    encode_greeter(1, "g.bin");
    snprintf(url, sizeof url, "%s/fn/greeter", base_url);
    ck_assert_int_eq(post("--http1.1", url, "g.bin"), 200);
}
END_TEST

START_TEST(test_greeter_unix_socket)
{
    char sock[512], listen[600], addr[600], flags[700];
    const char *args[3];

    snprintf(sock, sizeof sock, "%s/greeter.sock", tmpdir);
    snprintf(listen, sizeof listen, "unix:%s", sock);
    args[0] = "--listen";
    args[1] = listen;
    args[2] = NULL;
    start_child("greeter", args, addr, sizeof addr);
    ck_assert_str_eq(addr, listen);
    encode(PERSON_VISITS_2, "p2.bin");
    snprintf(flags, sizeof flags, "--http1.1 --unix-socket '%s'", sock);
    expect_reply(flags, "http://localhost/", "p2.bin", modify_visits_3);
    snprintf(flags, sizeof flags, "--http2-prior-knowledge --unix-socket '%s'", sock);
    expect_reply(flags, "http://localhost/", "p2.bin", modify_visits_3);
}
END_TEST

START_TEST(test_greeter_tls)
{
    char cert[512], key[512], url[512];
    const char *extra[5];

    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    snprintf(key, sizeof key, "%s/key.pem", tmpdir);
    ck_assert_int_eq(sf_test_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                "'/CN=localhost' -keyout '%s' -out '%s' >/dev/null 2>&1",
                                key, cert),
                     0);
    extra[0] = "--tls-cert";
    extra[1] = cert;
    extra[2] = "--tls-key";
    extra[3] = key;
    extra[4] = NULL;
    start_greeter(extra);
    /* base_url says http://; the server speaks TLS. */
    snprintf(url, sizeof url, "https://%s/", base_url + strlen("http://"));
    encode(PERSON_VISITS_2, "p2.bin");
    expect_reply("-k --http1.1", url, "p2.bin", modify_visits_3);
    expect_reply("-k --http2", url, "p2.bin", modify_visits_3);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Embedded                                                                   */

typedef struct {
    void *dl;
    const sf_module_abi_t *abi;
    sf_functions_t *fns;
} module_t;

static void module_open(module_t *m, const char *lib)
{
    char path[512];
    const sf_module_abi_t *(*entry)(void);
    snprintf(path, sizeof path, "%s/examples/%s", sf_test_build(), lib);
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(m->dl != NULL, "dlopen %s: %s", path, dlerror());
    *(void **)&entry = dlsym(m->dl, SF_MODULE_SYMBOL);
    ck_assert_ptr_nonnull(entry);
    m->abi = entry();
    ck_assert_ptr_nonnull(m->abi);
    ck_assert_uint_eq(m->abi->abi_version, SF_MODULE_ABI_VERSION);
    ck_assert_uint_ge(m->abi->struct_size, sizeof(sf_module_abi_t));
    ck_assert_str_eq(m->abi->sdk_version, SF_SDK_VERSION);
    ck_assert_int_eq(m->abi->functions_new(NULL, &m->fns), 0);
}

static void module_close(module_t *m)
{
    m->abi->functions_free(m->fns);
    ck_assert_int_eq(dlclose(m->dl), 0);
}

/* Runs the ToFunction text |text| through the module's struct entry point. */
static sf_pb_from_function_t *module_run(module_t *m, sf_arena_t *arena, const char *text)
{
    sf_pb_from_function_t *ff = NULL;
    sf_pb_to_function_t *tf;
    const char *why = NULL;
    uint8_t *bytes;
    size_t len;
    char path[512];

    encode(text, "req.bin");
    snprintf(path, sizeof path, "%s/req.bin", tmpdir);
    bytes = (uint8_t *)sf_test_read_file(path, &len);
    ck_assert_ptr_nonnull(bytes);
    tf = sf_proto_to_function_unpack(arena, bytes, len);
    free(bytes);
    ck_assert_ptr_nonnull(tf);
    ck_assert_int_eq(m->abi->invoke_pb(m->fns, tf, arena, &ff, &why), 0);
    ck_assert_ptr_nonnull(ff);
    return ff;
}

START_TEST(test_embedded_greeter)
{
    module_t m;
    sf_handler_t *h;
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_pb_invocation_response_t *r;
    const uint8_t *out;
    size_t out_len, len;
    uint8_t *req;
    char path[512];
    int32_t v;

    module_open(&m, "libgreeter.so");
    ck_assert_uint_eq(m.abi->functions_count(m.fns), 2);
    ck_assert_str_eq(m.abi->functions_type(m.fns, 0), "greeter.fns/person");
    ck_assert_str_eq(m.abi->functions_type(m.fns, 1), "greeter.fns/greeter");
    ck_assert_ptr_null(m.abi->functions_type(m.fns, 2));
    ck_assert_str_eq(m.abi->strerror(SF_EFUNCTION), "function failed");

    /* Bytes in, bytes out. */
    ck_assert_int_eq(m.abi->handler_new(m.fns, &h), 0);
    encode(PERSON_VISITS_2, "p2.bin");
    snprintf(path, sizeof path, "%s/p2.bin", tmpdir);
    req = (uint8_t *)sf_test_read_file(path, &len);
    ck_assert_int_eq(m.abi->handler_invoke(h, req, len, &out, &out_len), 0);
    snprintf(path, sizeof path, "%s/resp.bin", tmpdir);
    ck_assert_int_eq(sf_test_write_file(path, out, out_len), 0);
    {
        char *got = decode_resp();
        ck_assert_str_eq(got, modify_visits_3);
        free(got);
    }
    ck_assert_int_eq(m.abi->handler_invoke(h, (const uint8_t *)"\x01", 1, &out, &out_len),
                     SF_EPROTO);
    ck_assert_str_eq(m.abi->handler_reason(h), "malformed request: not a ToFunction message");
    free(req);
    m.abi->handler_free(h);

    /* Struct in, struct out, in the caller's arena. */
    sf_arena_init(&arena, NULL);
    ff = module_run(&m, &arena, PERSON_EMPTY_TWICE);
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
    r = ff->invocation_result;
    ck_assert_uint_eq(r->n_state_mutations, 1);
    ck_assert_int_eq(sf_proto_decode_int(r->state_mutations[0]->state_value->value.data,
                                         r->state_mutations[0]->state_value->value.len, &v),
                     0);
    ck_assert_int_eq(v, 2);
    ck_assert_uint_eq(r->n_outgoing_messages, 2);
    /* The caller can pack what the library built. */
    {
        sf_buf_t b;
        sf_buf_init(&b, NULL);
        ck_assert_int_eq(sf_proto_from_function_pack(ff, &b), 0);
        ck_assert_uint_gt(b.len, 0);
        sf_buf_dispose(&b);
    }
    sf_arena_dispose(&arena);
    module_close(&m);
}
END_TEST

/* Several threads run the same registry at once, each with its own handler. */
typedef struct {
    const module_t *m;
    const uint8_t *req;
    size_t len;
    const uint8_t *want;
    size_t want_len;
    int mismatches;
} thread_arg_t;

static void *invoke_thread(void *ud)
{
    thread_arg_t *a = ud;
    sf_handler_t *h;
    const uint8_t *out;
    size_t out_len;
    int i;
    if (a->m->abi->handler_new(a->m->fns, &h) != 0) {
        a->mismatches = -1;
        return NULL;
    }
    for (i = 0; i < 300; i++) {
        if (a->m->abi->handler_invoke(h, a->req, a->len, &out, &out_len) != 0 ||
            out_len != a->want_len || memcmp(out, a->want, out_len) != 0)
            a->mismatches++;
    }
    a->m->abi->handler_free(h);
    return NULL;
}

START_TEST(test_embedded_threads)
{
    module_t m;
    sf_handler_t *h;
    thread_arg_t args[4];
    pthread_t t[4];
    const uint8_t *out;
    uint8_t *req, *want;
    size_t len, want_len;
    char path[512];
    int i;

    module_open(&m, "libgreeter.so");
    encode(PERSON_EMPTY_TWICE, "pe.bin");
    snprintf(path, sizeof path, "%s/pe.bin", tmpdir);
    req = (uint8_t *)sf_test_read_file(path, &len);
    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(m.abi->handler_new(m.fns, &h), 0);
    ck_assert_int_eq(m.abi->handler_invoke(h, req, len, &out, &want_len), 0);
    want = malloc(want_len);
    memcpy(want, out, want_len);
    m.abi->handler_free(h);
    for (i = 0; i < 4; i++) {
        args[i] = (thread_arg_t){&m, req, len, want, want_len, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, invoke_thread, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(args[i].mismatches, 0);
    }
    free(want);
    free(req);
    module_close(&m);
}
END_TEST

/* Finds the JSON value of "key" in |json| (a string, or a number as text). */
static void json_field(const char *json, const char *key, char *out, size_t size)
{
    char pat[128];
    const char *p, *e;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(json, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, json);
    p += strlen(pat);
    if (*p == '"') {
        p++;
        e = strchr(p, '"');
    } else {
        e = p + strcspn(p, ",}");
    }
    ck_assert_ptr_nonnull(e);
    snprintf(out, size, "%.*s", (int)(e - p), p);
}

static char *value_str(const sf_pb_typed_value_t *tv)
{
    char *s = malloc(tv->value.len + 1);
    memcpy(s, tv->value.data, tv->value.len);
    s[tv->value.len] = '\0';
    return s;
}

START_TEST(test_embedded_shopping_cart)
{
    module_t m;
    sf_arena_t arena;
    sf_pb_from_function_t *ff;
    sf_pb_invocation_response_t *r;
    char text[4096], token[128], field[256], *s;

    module_open(&m, "libshopping-cart.so");
    ck_assert_uint_eq(m.abi->functions_count(m.fns), 3);
    sf_arena_init(&arena, NULL);

    /* The cart asks the stock for the item. */
    ff = module_run(&m, &arena,
                    "invocation { target { namespace: \"shopping.fns\" type: \"cart\" id: \"u1\" }"
                    " state { state_name: \"basket\" state_value { typename: "
                    "\"com.example/Basket\" } }"
                    " state { state_name: \"reservation\" state_value { typename: "
                    "\"io.statefun.types/string\" } }"
                    " state { state_name: \"reservations\" state_value { typename: "
                    "\"io.statefun.types/int\" } }"
                    " invocations { argument { typename: \"com.example/AddToCart\" has_value: true"
                    " value: '{\"userId\":\"u1\",\"itemId\":\"socks\",\"quantity\":2}' } } }");
    ck_assert_int_eq(ff->response_case, SF_PB_FROM_FUNCTION_RESULT);
    r = ff->invocation_result;
    ck_assert_uint_eq(r->n_state_mutations, 0);
    ck_assert_uint_eq(r->n_outgoing_messages, 1);
    ck_assert_str_eq(r->outgoing_messages[0]->target->type, "stock");
    ck_assert_str_eq(r->outgoing_messages[0]->target->id, "socks");
    ck_assert_str_eq(r->outgoing_messages[0]->argument->typename_, "com.example/RequestItem");

    /* The stock has 5: reserves 2 and answers IN_STOCK to the cart. */
    sf_arena_reset(&arena);
    ff = module_run(
        &m, &arena,
        "invocation { target { namespace: \"shopping.fns\" type: \"stock\" id: \"socks\" }"
        " state { state_name: \"stock\" state_value { typename: \"io.statefun.types/int\" "
        "has_value: true value: \"\\r\\005\\000\\000\\000\" } }"
        " invocations { caller { namespace: \"shopping.fns\" type: \"cart\" id: \"u1\" }"
        " argument { typename: \"com.example/RequestItem\" has_value: true"
        " value: '{\"quantity\":2}' } } }");
    r = ff->invocation_result;
    ck_assert_uint_eq(r->n_state_mutations, 1);
    ck_assert_uint_eq(r->state_mutations[0]->state_value->value.data[1], 3);
    ck_assert_uint_eq(r->n_outgoing_messages, 1);
    ck_assert_str_eq(r->outgoing_messages[0]->target->type, "cart");
    ck_assert_str_eq(r->outgoing_messages[0]->target->id, "u1");
    s = value_str(r->outgoing_messages[0]->argument);
    json_field(s, "status", field, sizeof field);
    ck_assert_str_eq(field, "IN_STOCK");
    free(s);

    /* The cart puts it in the basket and starts the reservation timeout. */
    sf_arena_reset(&arena);
    ff = module_run(&m, &arena,
                    "invocation { target { namespace: \"shopping.fns\" type: \"cart\" id: \"u1\" }"
                    " state { state_name: \"basket\" state_value { typename: "
                    "\"com.example/Basket\" } }"
                    " state { state_name: \"reservation\" state_value { typename: "
                    "\"io.statefun.types/string\" } }"
                    " state { state_name: \"reservations\" state_value { typename: "
                    "\"io.statefun.types/int\" } }"
                    " invocations { caller { namespace: \"shopping.fns\" type: \"stock\" id: "
                    "\"socks\" } argument { typename: \"com.example/ItemAvailability\" has_value: "
                    "true value: '{\"status\":\"IN_STOCK\",\"quantity\":2}' } } }");
    r = ff->invocation_result;
    ck_assert_uint_eq(r->n_state_mutations, 3);
    ck_assert_str_eq(r->state_mutations[0]->state_name, "basket");
    s = value_str(r->state_mutations[0]->state_value);
    ck_assert_str_eq(s, "{\"socks\":2}");
    free(s);
    ck_assert_uint_eq(r->n_delayed_invocations, 1);
    ck_assert_int_gt(r->delayed_invocations[0]->delay_in_ms, 0);
    ck_assert_str_eq(r->delayed_invocations[0]->target->type, "cart");
    ck_assert_str_eq(r->delayed_invocations[0]->argument->typename_,
                     "com.example/ReservationTimeout");
    snprintf(token, sizeof token, "%s", r->delayed_invocations[0]->cancellation_token);
    ck_assert_str_eq(token, "reservation-u1-1");

    /* Checkout: cancel the timeout, send the receipt, empty the basket. */
    sf_arena_reset(&arena);
    snprintf(text, sizeof text,
             "invocation { target { namespace: \"shopping.fns\" type: \"cart\" id: \"u1\" }"
             " state { state_name: \"basket\" state_value { typename: \"com.example/Basket\" "
             "has_value: true value: '{\"socks\":2}' } }"
             " state { state_name: \"reservation\" state_value { typename: "
             "\"io.statefun.types/string\" has_value: true value: \"\\n\\020%s\" } }"
             " state { state_name: \"reservations\" state_value { typename: "
             "\"io.statefun.types/int\" has_value: true value: \"\\r\\001\\000\\000\\000\" } }"
             " invocations { argument { typename: \"com.example/Checkout\" has_value: true"
             " value: '{\"userId\":\"u1\"}' } } }",
             token);
    ff = module_run(&m, &arena, text);
    r = ff->invocation_result;
    ck_assert_uint_eq(r->n_delayed_invocations, 1);
    ck_assert_int_eq(r->delayed_invocations[0]->is_cancellation_request, 1);
    ck_assert_str_eq(r->delayed_invocations[0]->cancellation_token, token);
    ck_assert_uint_eq(r->n_outgoing_messages, 1);
    ck_assert_str_eq(r->outgoing_messages[0]->target->type, "receipt");
    ck_assert_uint_eq(r->n_state_mutations, 2);
    ck_assert_int_eq(r->state_mutations[0]->mutation_type, SF_PB_MUTATION_DELETE);
    ck_assert_int_eq(r->state_mutations[1]->mutation_type, SF_PB_MUTATION_DELETE);

    /* The receipt goes to the playground egress. */
    sf_arena_reset(&arena);
    ff = module_run(&m, &arena,
                    "invocation { target { namespace: \"shopping.fns\" type: \"receipt\" id: "
                    "\"u1\" } state { state_name: \"receipts\" state_value { typename: "
                    "\"io.statefun.types/int\" } }"
                    " invocations { argument { typename: \"com.example/Receipt\" has_value: true"
                    " value: '{\"userId\":\"u1\",\"items\":{\"socks\":2}}' } } }");
    r = ff->invocation_result;
    ck_assert_uint_eq(r->n_outgoing_egresses, 1);
    s = value_str(r->outgoing_egresses[0]->argument);
    json_field(s, "topic", field, sizeof field);
    ck_assert_str_eq(field, "receipts");
    free(s);

    sf_arena_dispose(&arena);
    module_close(&m);
}
END_TEST

Suite *sf_sdk_examples_suite(void)
{
    Suite *s = suite_create("sdk_examples");
    TCase *tc = tcase_create("remote");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_greeter_http1_and_h2c);
    tcase_add_test(tc, test_greeter_errors_leave_server_answering);
    tcase_add_test(tc, test_greeter_path_per_function);
    tcase_add_test(tc, test_greeter_unix_socket);
    tcase_add_test(tc, test_greeter_tls);
    tcase_set_timeout(tc, 180);
    suite_add_tcase(s, tc);
    tc = tcase_create("embedded");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_embedded_greeter);
    tcase_add_test(tc, test_embedded_shopping_cart);
    tcase_add_test(tc, test_embedded_threads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
