/* statefun-c: Apache License 2.0.
 *
 * The durable egress store (runtime/egress/store.c) on its own, and the I/O
 * thread's egress on top of it (runtime/io/egress.c, durable mode) with curl
 * on loopback: offsets, cursors, trims and the published epoch survive a
 * reopen; a published epoch is not published twice; a pop is answered once
 * its cursor is written, and a reopened egress serves the next record;
 * retention trims the store like the topic bounds.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "store.h"
#include "testutil.h"

#define MAXP 128

/* ------------------------------------------------------------------------ */
/* The store                                                                  */

typedef struct {
    uint64_t offsets[16];
    char payloads[16][32];
    size_t n;
} seen_t;

static int collect(uint64_t offset, const void *data, size_t len, void *ud)
{
    seen_t *s = ud;
    ck_assert_uint_lt(s->n, 16);
    s->offsets[s->n] = offset;
    snprintf(s->payloads[s->n], sizeof s->payloads[0], "%.*s", (int)len, (const char *)data);
    s->n++;
    return 0;
}

START_TEST(test_store_reopen)
{
    char *dir = sf_test_mkdtemp("egstore");
    char path[512];
    sf_egress_store_t *s;
    sf_egress_store_batch_t *b;
    sf_egress_store_info_t info;
    seen_t seen;
    uint32_t topic;
    uint64_t off;
    const void *data;
    size_t len;
    int a, c;

    snprintf(path, sizeof path, "%s/sub/egress", dir);
    ck_assert_int_eq(sf_egress_store_open(path, true, &s), 0);
    ck_assert_int_eq(sf_egress_store_topic(s, "", 0), SF_EINVAL);
    a = sf_egress_store_topic(s, "a", 1);
    c = sf_egress_store_topic(s, "c", 1);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ne(a, c);
    ck_assert_int_eq(sf_egress_store_topic(s, "a", 1), a);
    ck_assert_uint_eq(sf_egress_store_published_epoch(s), 0);

    b = sf_egress_store_batch_new(s);
    ck_assert(sf_egress_store_batch_empty(b));
    ck_assert_int_eq(sf_egress_store_commit(b), 0); /* nothing to write */
    sf_egress_store_batch_append(b, (uint32_t)a, "a0", 2);
    sf_egress_store_batch_append(b, (uint32_t)c, "c0", 2);
    sf_egress_store_batch_append(b, (uint32_t)a, "a1", 2);
    sf_egress_store_batch_append(b, (uint32_t)a, "a2", 2);
    sf_egress_store_batch_cursor(b, (uint32_t)a, 1);
    sf_egress_store_batch_epoch(b, 5);
    ck_assert_int_eq(sf_egress_store_commit(b), 0);
    ck_assert_uint_eq(sf_egress_store_batch_count(b), 4);
    sf_egress_store_batch_rec(b, 3, &topic, &off, &data, &len);
    ck_assert_uint_eq(topic, (uint32_t)a);
    ck_assert_uint_eq(off, 2);
    ck_assert_int_eq(memcmp(data, "a2", 2), 0);
    sf_egress_store_batch_rec(b, 1, &topic, &off, &data, &len);
    ck_assert_uint_eq(off, 0);
    sf_egress_store_batch_free(b);
    sf_egress_store_close(s);

    /* Reopened: the same offsets, cursor and epoch; offsets go on. */
    ck_assert_int_eq(sf_egress_store_open(path, true, &s), 0);
    ck_assert_uint_eq(sf_egress_store_published_epoch(s), 5);
    a = sf_egress_store_topic(s, "a", 1);
    sf_egress_store_info(s, (uint32_t)a, &info);
    ck_assert_uint_eq(info.base, 0);
    ck_assert_uint_eq(info.end, 3);
    ck_assert_uint_eq(info.cursor, 1);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(sf_egress_store_read(s, (uint32_t)a, 1, 0, collect, &seen), 2);
    ck_assert_uint_eq(seen.offsets[0], 1);
    ck_assert_str_eq(seen.payloads[1], "a2");

    /* Trimming (even past the cursor and the newest record) keeps |end|. */
    b = sf_egress_store_batch_new(s);
    sf_egress_store_batch_trim(b, (uint32_t)a, 3);
    ck_assert_int_eq(sf_egress_store_commit(b), 0);
    sf_egress_store_batch_clear(b);
    sf_egress_store_close(s);
    sf_egress_store_batch_free(b);
    ck_assert_int_eq(sf_egress_store_open(path, true, &s), 0);
    a = sf_egress_store_topic(s, "a", 1);
    sf_egress_store_info(s, (uint32_t)a, &info);
    ck_assert_uint_eq(info.base, 3);
    ck_assert_uint_eq(info.end, 3);
    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(sf_egress_store_read(s, (uint32_t)a, 0, 0, collect, &seen), 0);
    b = sf_egress_store_batch_new(s);
    sf_egress_store_batch_append(b, (uint32_t)a, "a3", 2);
    ck_assert_int_eq(sf_egress_store_commit(b), 0);
    sf_egress_store_batch_rec(b, 0, &topic, &off, &data, &len);
    ck_assert_uint_eq(off, 3);
    sf_egress_store_batch_free(b);
    ck_assert_uint_eq(sf_egress_store_published_epoch(s), 5);
    sf_egress_store_close(s);
    sf_test_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The egress on the store, over HTTP                                         */

static char *tmpdir;
static sf_io_t *io;
static uint16_t port;

static void io_open(size_t max_records)
{
    static const char *const topics[] = {"t"};
    char path[512];
    sf_io_egress_config_t eg = {.host = "127.0.0.1",
                                .topics = topics,
                                .ntopics = 1,
                                .exactly_once = true,
                                .max_records_per_topic = max_records,
                                .store_dir = path};
    sf_io_config_t cfg = {.egress = &eg, .max_parallelism = MAXP};
    sf_io_hooks_t hooks = {0};
    snprintf(path, sizeof path, "%s/egress", tmpdir);
    ck_assert_int_eq(sf_io_new(&cfg, &hooks, &io), 0);
    port = sf_io_egress_port(io);
    ck_assert_int_eq(sf_io_start(io), 0);
}

static void io_close(void)
{
    sf_io_free(io);
    io = NULL;
}

/* GET |path|: returns the status and the body in |body| (NUL-terminated). */
static int get(const char *path, char *body, size_t bodysz)
{
    char cmd[1024], out[16] = "", file[512];
    FILE *p;
    char *b;
    size_t n;
    snprintf(file, sizeof file, "%s/body", tmpdir);
    unlink(file);
    snprintf(cmd, sizeof cmd, "curl -sS -m 10 -o %s -w '%%{http_code}' 'http://127.0.0.1:%u%s'",
             file, port, path);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    b = sf_test_read_file(file, NULL);
    snprintf(body, bodysz, "%s", b ? b : "");
    free(b);
    return atoi(out);
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Waits until an offset read from 0 returns |n| lines; leaves them in |body|. */
static void wait_lines(size_t n, char *body, size_t bodysz)
{
    int i;
    for (i = 0; i < 200; i++) {
        ck_assert_int_eq(get("/t?from=0", body, bodysz), 200);
        if (lines(body) >= n)
            break;
        usleep(10000);
    }
    ck_assert_uint_eq(lines(body), n);
}

static sf_msg_t *record(const char *payload)
{
    char json[256];
    sf_msg_init_t init;
    sf_msg_t *m;
    snprintf(json, sizeof json, "{\"topic\": \"t\", \"payload\": \"%s\"}", payload);
    memset(&init, 0, sizeof init);
    init.kind = SF_MSG_EGRESS;
    init.target = SF_IO_PLAYGROUND_EGRESS;
    init.target_len = strlen(init.target);
    init.type_name = SF_IO_EGRESS_RECORD_TYPE;
    init.type_name_len = strlen(init.type_name);
    init.value = (const uint8_t *)json;
    init.value_len = strlen(json);
    ck_assert_int_eq(sf_msg_new(&init, MAXP, &m), 0);
    return m;
}

static void publish(uint64_t epoch, const char *a, const char *b)
{
    sf_msg_fifo_t chain;
    sf_msg_fifo_init(&chain);
    sf_msg_fifo_push(&chain, record(a));
    if (b)
        sf_msg_fifo_push(&chain, record(b));
    ck_assert_int_eq(sf_io_egress_publish_durable(io, &chain, epoch), 0);
    ck_assert_ptr_null(chain.head);
}

START_TEST(test_publish_once_and_durable_pops)
{
    char body[4096];
    sf_msg_fifo_t chain;

    tmpdir = sf_test_mkdtemp("egio");
    io_open(0);
    ck_assert_uint_eq(sf_io_egress_published_epoch(io), 0);
    publish(3, "p0", "p1");
    ck_assert_uint_eq(sf_io_egress_published_epoch(io), 3);
    /* At-least-once records (through the mailbox) are group-committed. */
    sf_msg_fifo_init(&chain);
    sf_msg_fifo_push(&chain, record("q2"));
    sf_io_egress_push(io, &chain);
    wait_lines(3, body, sizeof body);
    ck_assert_ptr_nonnull(strstr(body, "{\"offset\": 2, \"payload\": \"q2\"}"));
    ck_assert_int_eq(get("/t", body, sizeof body), 200);
    ck_assert_str_eq(body, "p0");
    io_close();

    /* A restart republishing epoch 3 adds nothing; the pop was durable. */
    io_open(0);
    ck_assert_uint_eq(sf_io_egress_published_epoch(io), 3);
    publish(3, "p0", "p1");
    publish(2, "old", NULL);
    wait_lines(3, body, sizeof body);
    ck_assert_int_eq(get("/t", body, sizeof body), 200);
    ck_assert_str_eq(body, "p1");
    publish(4, "p3", NULL);
    ck_assert_int_eq(get("/t?wait=5s", body, sizeof body), 200);
    ck_assert_str_eq(body, "q2");
    ck_assert_int_eq(get("/t?wait=5s", body, sizeof body), 200);
    ck_assert_str_eq(body, "p3");
    ck_assert_int_eq(get("/t", body, sizeof body), 404);
    wait_lines(4, body, sizeof body);
    io_close();
    sf_test_rmtree(tmpdir);
}
END_TEST

START_TEST(test_retention_trims_the_store)
{
    char body[4096], path[512];
    sf_egress_store_t *s;
    sf_egress_store_info_t info;
    int t;

    tmpdir = sf_test_mkdtemp("egio");
    io_open(3);
    publish(1, "r0", "r1");
    publish(2, "r2", "r3");
    publish(3, "r4", NULL);
    wait_lines(3, body, sizeof body);
    ck_assert_ptr_nonnull(strstr(body, "{\"offset\": 2, \"payload\": \"r2\"}"));
    /* The topic dropped r0 and r1 unread; r2 is the next. */
    ck_assert_int_eq(get("/t", body, sizeof body), 200);
    ck_assert_str_eq(body, "r2");
    io_close();

    snprintf(path, sizeof path, "%s/egress", tmpdir);
    ck_assert_int_eq(sf_egress_store_open(path, true, &s), 0);
    t = sf_egress_store_topic(s, "t", 1);
    sf_egress_store_info(s, (uint32_t)t, &info);
    ck_assert_uint_eq(info.base, 2);
    ck_assert_uint_eq(info.end, 5);
    ck_assert_uint_eq(info.cursor, 3);
    sf_egress_store_close(s);

    io_open(3);
    ck_assert_int_eq(get("/t", body, sizeof body), 200);
    ck_assert_str_eq(body, "r3");
    io_close();
    sf_test_rmtree(tmpdir);
}
END_TEST

Suite *sf_runtime_egress_store_suite(void)
{
    Suite *s = suite_create("runtime_egress_store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_store_reopen);
    tcase_add_test(tc, test_publish_once_and_durable_pops);
    tcase_add_test(tc, test_retention_trims_the_store);
    suite_add_tcase(s, tc);
    return s;
}
