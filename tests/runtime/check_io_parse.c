/* statefun-c: Apache License 2.0.
 *
 * Tests of the I/O-free parts of runtime/io: percent-decoding, UTF-8 checks
 * and query iteration (text.c), the ingress path and Content-Type rules,
 * egress record parsing (the JSON variants SDKs produce) and GET targets,
 * and the in-memory topic (offsets, visibility, the read cursor, bounds).
 */
#include <check.h>
#include <string.h>

#include "egress.h"
#include "ingress.h"
#include "text.h"
#include "topic.h"

/* ------------------------------------------------------------------------ */
/* text.c                                                                     */

START_TEST(test_pct_decode)
{
    char out[64];
    ssize_t n = sf_pct_decode("a%2Fb%20c+d%c3%A9", 17, out);
    ck_assert_int_eq(n, 9);
    ck_assert(memcmp(out, "a/b c+d\xc3\xa9", 9) == 0);
    ck_assert_int_eq(sf_pct_decode("abc", 3, out), 3);
    ck_assert_int_eq(sf_pct_decode("", 0, out), 0);
    ck_assert_int_eq(sf_pct_decode("a%", 2, out), SF_EINVAL);
    ck_assert_int_eq(sf_pct_decode("a%4", 3, out), SF_EINVAL);
    ck_assert_int_eq(sf_pct_decode("%zz", 3, out), SF_EINVAL);
    ck_assert_int_eq(sf_pct_decode("%00", 3, out), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(test_utf8)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"plain ascii", true},
        {"caf\xc3\xa9", true},
        {"\xe2\x82\xac", true},           /* U+20AC */
        {"\xf0\x9f\x98\x80", true},       /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true},       /* U+10FFFF */
        {"\xc3", false},                  /* truncated */
        {"\xc0\xaf", false},              /* overlong '/' */
        {"\xe0\x80\xaf", false},          /* overlong */
        {"\xed\xa0\x80", false},          /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", false},      /* past U+10FFFF */
        {"\xff", false},
        {"\x80", false},                  /* lone continuation */
        {"ab\xe2\x82", false},            /* truncated at the end */
    };
    size_t i;
    for (i = 0; i < SF_ARRAY_SIZE(cases); i++)
        ck_assert_msg(sf_text_utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s)) ==
                          cases[i].ok,
                      "case %zu", i);
    ck_assert(sf_text_utf8_valid((const uint8_t *)"a\0b", 3));
}
END_TEST

START_TEST(test_query_next)
{
    const char *q = "wait=5s&&flag&from=3&", *pos = q, *end = q + strlen(q);
    const char *k, *v;
    size_t kl, vl;
    ck_assert(sf_text_query_next(&pos, end, &k, &kl, &v, &vl));
    ck_assert(kl == 4 && memcmp(k, "wait", 4) == 0 && vl == 2 && memcmp(v, "5s", 2) == 0);
    ck_assert(sf_text_query_next(&pos, end, &k, &kl, &v, &vl));
    ck_assert(kl == 4 && memcmp(k, "flag", 4) == 0 && vl == 0);
    ck_assert(sf_text_query_next(&pos, end, &k, &kl, &v, &vl));
    ck_assert(kl == 4 && memcmp(k, "from", 4) == 0 && vl == 1 && v[0] == '3');
    ck_assert(!sf_text_query_next(&pos, end, &k, &kl, &v, &vl));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Ingress rules                                                              */

static int parse_path(const char *path, char *out, sf_addr_t *a)
{
    const char *why = NULL;
    int rc = sf_ingress_parse_path(path, out, a, &why);
    if (rc < 0)
        ck_assert_ptr_nonnull(why);
    return rc;
}

START_TEST(test_ingress_path)
{
    char out[128];
    sf_addr_t a;
    ck_assert_int_eq(parse_path("/greeter.fns/greeter/joe", out, &a), 0);
    ck_assert_str_eq(out, "greeter.fns/greeter/joe");
    ck_assert(a.ns_len == 11 && memcmp(a.ns, "greeter.fns", 11) == 0);
    ck_assert(a.type_len == 7 && memcmp(a.type, "greeter", 7) == 0);
    ck_assert(a.id_len == 3 && memcmp(a.id, "joe", 3) == 0);

    /* The id is decoded and may contain '/', raw or escaped; the query goes. */
    ck_assert_int_eq(parse_path("/ns/fn/a%2Fb%20c/d?x=1#frag", out, &a), 0);
    ck_assert_str_eq(out, "ns/fn/a/b c/d");
    ck_assert(a.id_len == 7 && memcmp(a.id, "a/b c/d", 7) == 0);
    ck_assert_int_eq(parse_path("/n%61s/fn/caf%C3%A9", out, &a), 0);
    ck_assert_str_eq(out, "nas/fn/caf\xc3\xa9");

    ck_assert_int_eq(parse_path("", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("*", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/fn", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/fn/", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/fn/?id=1", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("//fn/id", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns//id", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/fn/%zz", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/fn/a%00b", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/fn/%ff", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/n%2Fs/fn/id", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/f%0An/id", out, &a), SF_EINVAL);
    ck_assert_int_eq(parse_path("/ns/%20/id", out, &a), 0); /* a space is a name */
}
END_TEST

START_TEST(test_ingress_content_type)
{
    const char *tn = NULL, *why = NULL;
    size_t tl = 0;
#define CT(s) sf_ingress_content_type((s), strlen(s), &tn, &tl, &why)
    ck_assert_int_eq(sf_ingress_content_type(NULL, 0, &tn, &tl, &why), SF_INGRESS_BODY_STRING);
    ck_assert_int_eq(CT(""), SF_INGRESS_BODY_STRING);
    ck_assert_int_eq(CT("text/plain"), SF_INGRESS_BODY_STRING);
    ck_assert_int_eq(CT("Text/Plain; charset=UTF-8"), SF_INGRESS_BODY_STRING);
    ck_assert_int_eq(CT("  text/plain ;charset=utf-8"), SF_INGRESS_BODY_STRING);
    ck_assert_int_eq(CT("application/x-www-form-urlencoded"), SF_INGRESS_BODY_STRING);

    ck_assert_int_eq(CT("application/vnd.example/GreetRequest"), SF_INGRESS_BODY_TYPED);
    ck_assert(tl == 20 && memcmp(tn, "example/GreetRequest", 20) == 0);
    ck_assert_int_eq(CT("Application/VND.type.googleapis.com/a.B ; x=y"), SF_INGRESS_BODY_TYPED);
    ck_assert(tl == 23 && memcmp(tn, "type.googleapis.com/a.B", 23) == 0);

    ck_assert_int_eq(CT("application/vnd."), SF_EINVAL);
    ck_assert_int_eq(CT("application/vnd.api+json"), SF_EINVAL);
    ck_assert_int_eq(CT("application/vnd./x"), SF_EINVAL);
    ck_assert_int_eq(CT("application/vnd.x/"), SF_EINVAL);
    ck_assert_int_eq(CT("application/json"), SF_EUNSUPPORTED);
    ck_assert_int_eq(CT("application/octet-stream"), SF_EUNSUPPORTED);
    ck_assert_int_eq(CT("text/plainx"), SF_EUNSUPPORTED);
#undef CT
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Egress rules                                                               */

static void check_record(const char *json, size_t len, const char *topic, const char *payload,
                         size_t payload_len)
{
    sf_egress_record_t r;
    char why[160] = "";
    int rc = sf_egress_record_parse((const uint8_t *)json, len, &r, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: %s", json, why);
    ck_assert_uint_eq(r.topic_len, strlen(topic));
    ck_assert(memcmp(r.topic, topic, r.topic_len) == 0);
    ck_assert_uint_eq(r.payload_len, payload_len);
    ck_assert(memcmp(r.payload, payload, payload_len) == 0);
    sf_egress_record_dispose(&r);
}

#define REC(json, topic, payload)                                                                \
    check_record((json), strlen(json), (topic), (payload), strlen(payload))

START_TEST(test_egress_record_variants)
{
    /* Go's encoding/json: compact, < escaped, and a newline from an Encoder. */
    REC("{\"topic\":\"greetings\",\"payload\":\"Hello \\u003cJoe\\u003e\"}\n", "greetings",
        "Hello <Joe>");
    /* Python's json.dumps: spaces after separators. */
    REC("{\"topic\": \"greetings\", \"payload\": \"Hello Joe\"}", "greetings", "Hello Joe");
    /* Pretty printed, CRLF, tabs, keys in the other order. */
    REC("{\r\n\t\"payload\" : \"a\\\"b\\\\c\\/d\\n\",\r\n\t\"topic\" : \"t\"\r\n}\r\n", "t",
        "a\"b\\c/d\n");
    /* Non-ASCII, escaped and raw, and a surrogate pair. */
    REC("{\"topic\":\"t\",\"payload\":\"caf\\u00e9 caf\xc3\xa9 \\ud83d\\ude00\"}", "t",
        "caf\xc3\xa9 caf\xc3\xa9 \xf0\x9f\x98\x80");
    /* Extra fields are ignored; a non-string payload is kept as JSON text. */
    REC("{\"topic\":\"t\",\"payload\":{\"a\": [1, 2]},\"key\":\"k\"}", "t", "{\"a\":[1,2]}");
    REC("{\"topic\":\"t\",\"payload\":42}", "t", "42");
    REC("{\"topic\":\"t\",\"payload\":\"\"}", "t", "");
    /* An escaped NUL survives (lengths, not C strings). */
    {
        const char *j = "{\"topic\":\"t\",\"payload\":\"a\\u0000b\"}";
        check_record(j, strlen(j), "t", "a\0b", 3);
    }
}
END_TEST

START_TEST(test_egress_record_invalid)
{
    static const char *bad[] = {
        "",
        "not json",
        "[\"topic\", \"t\"]",
        "{\"topic\":\"t\"}",
        "{\"payload\":\"p\"}",
        "{\"topic\":7,\"payload\":\"p\"}",
        "{\"topic\":\"t\",\"payload\":\"p\"} trailing",
        "{\"topic\":\"t\",\"payload\":\"p\"",
        "{\"topic\":\"t\",\"payload\":\"\xff\"}",
    };
    size_t i;
    for (i = 0; i < SF_ARRAY_SIZE(bad); i++) {
        sf_egress_record_t r;
        char why[160] = "";
        ck_assert_msg(sf_egress_record_parse((const uint8_t *)bad[i], strlen(bad[i]), &r, why,
                                             sizeof(why)) == SF_EINVAL,
                      "case %zu", i);
        ck_assert_msg(why[0] != '\0', "case %zu has a reason", i);
    }
}
END_TEST

START_TEST(test_egress_target)
{
    char buf[128], why[160];
    sf_egress_query_t q;
    ck_assert_int_eq(sf_egress_parse_target("/greetings", buf, &q, why, sizeof(why)), 0);
    ck_assert(q.topic_len == 9 && memcmp(q.topic, "greetings", 9) == 0);
    ck_assert(!q.read && q.wait_ms == 0);

    ck_assert_int_eq(sf_egress_parse_target("/a%20b?wait=5s&x=y", buf, &q, why, sizeof(why)), 0);
    ck_assert_str_eq(q.topic, "a b");
    ck_assert_uint_eq(q.wait_ms, 5000);
    ck_assert(!q.read);

    ck_assert_int_eq(sf_egress_parse_target("/t?wait=10+sec", buf, &q, why, sizeof(why)), 0);
    ck_assert_uint_eq(q.wait_ms, 10000);
    ck_assert_int_eq(sf_egress_parse_target("/t?wait=1%20min", buf, &q, why, sizeof(why)), 0);
    ck_assert_uint_eq(q.wait_ms, 60000);
    ck_assert_int_eq(sf_egress_parse_target("/t?wait=500ms", buf, &q, why, sizeof(why)), 0);
    ck_assert_uint_eq(q.wait_ms, 500);

    ck_assert_int_eq(sf_egress_parse_target("/t?from=3&max=2", buf, &q, why, sizeof(why)), 0);
    ck_assert(q.read && q.has_from && q.from == 3 && q.max == 2);
    ck_assert_int_eq(sf_egress_parse_target("/t?max=7", buf, &q, why, sizeof(why)), 0);
    ck_assert(q.read && !q.has_from && q.max == 7);
    ck_assert_int_eq(sf_egress_parse_target("/t?from=0", buf, &q, why, sizeof(why)), 0);
    ck_assert(q.read && q.has_from && q.from == 0 && q.max == SF_IO_DEFAULT_READ_MAX);

    ck_assert_int_eq(sf_egress_parse_target("/t?wait=soon", buf, &q, why, sizeof(why)),
                     SF_EINVAL);
    ck_assert_ptr_nonnull(q.topic); /* the topic is known even when the query is bad */
    ck_assert_int_eq(sf_egress_parse_target("/t?wait=1h", buf, &q, why, sizeof(why)), SF_EINVAL);
    ck_assert_int_eq(sf_egress_parse_target("/t?from=-1", buf, &q, why, sizeof(why)), SF_EINVAL);
    ck_assert_int_eq(sf_egress_parse_target("/t?max=0", buf, &q, why, sizeof(why)), SF_EINVAL);
    ck_assert_int_eq(sf_egress_parse_target("/t?max=10001", buf, &q, why, sizeof(why)),
                     SF_EINVAL);
    ck_assert_int_eq(sf_egress_parse_target("/t%zz", buf, &q, why, sizeof(why)), SF_EINVAL);
    ck_assert_ptr_null(q.topic);
    ck_assert_int_eq(sf_egress_parse_target("t", buf, &q, why, sizeof(why)), SF_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Topics                                                                     */

START_TEST(test_topic_visibility_and_cursor)
{
    sf_topic_t t;
    uint64_t off = 99;
    const sf_topic_rec_t *r;
    sf_topic_init(&t, "t", 100, 1 << 20);
    ck_assert_ptr_null(sf_topic_pop(&t, &off));
    ck_assert_uint_eq(sf_topic_append(&t, "a", 1), 0);
    ck_assert_uint_eq(sf_topic_append(&t, "bb", 2), 1);
    ck_assert_uint_eq(sf_topic_append(&t, "ccc", 3), 2);
    /* Appended but hidden. */
    ck_assert_uint_eq(sf_topic_unread(&t), 0);
    ck_assert_ptr_null(sf_topic_get(&t, 0));
    ck_assert_ptr_null(sf_topic_pop(&t, &off));
    sf_topic_publish(&t, 2);
    ck_assert_uint_eq(sf_topic_unread(&t), 2);
    r = sf_topic_pop(&t, &off);
    ck_assert(r && off == 0 && r->len == 1 && r->data[0] == 'a');
    r = sf_topic_pop(&t, &off);
    ck_assert(r && off == 1 && r->len == 2);
    ck_assert_ptr_null(sf_topic_pop(&t, &off));
    /* Reads by offset do not move the cursor. */
    ck_assert_ptr_nonnull(sf_topic_get(&t, 0));
    ck_assert_ptr_null(sf_topic_get(&t, 2));
    sf_topic_publish(&t, 1); /* never shrinks */
    ck_assert_uint_eq(t.visible, 2);
    sf_topic_publish(&t, 1000); /* clamped */
    ck_assert_uint_eq(t.visible, 3);
    r = sf_topic_pop(&t, &off);
    ck_assert(r && off == 2 && r->len == 3);
    ck_assert_uint_eq(sf_topic_unread(&t), 0);
    sf_topic_dispose(&t);
}
END_TEST

START_TEST(test_topic_bounds)
{
    sf_topic_t t;
    uint64_t off, i;
    const sf_topic_rec_t *r;
    sf_topic_init(&t, "t", 3, 1 << 20);
    for (i = 0; i < 5; i++) {
        char c = (char)('0' + i);
        ck_assert_uint_eq(sf_topic_append(&t, &c, 1), i);
        sf_topic_publish(&t, i + 1);
    }
    ck_assert_uint_eq(sf_topic_count(&t), 3);
    ck_assert_uint_eq(t.base, 2);
    ck_assert_uint_eq(t.dropped, 2);
    ck_assert_uint_eq(t.dropped_unread, 2);
    r = sf_topic_pop(&t, &off);
    ck_assert(r && off == 2 && r->data[0] == '2');
    /* Read records dropped later are not "unread". */
    for (i = 5; i < 7; i++) {
        char c = (char)('0' + i);
        sf_topic_append(&t, &c, 1);
        sf_topic_publish(&t, i + 1);
    }
    ck_assert_uint_eq(t.dropped, 4);
    ck_assert_uint_eq(t.dropped_unread, 3); /* 0, 1 and 3; 2 was read */
    r = sf_topic_pop(&t, &off);
    ck_assert(r && off == 4);

    /* The byte bound, keeping at least the newest record, many wraps. */
    sf_topic_dispose(&t);
    sf_topic_init(&t, "t", 1000, 10);
    for (i = 0; i < 5000; i++) {
        char buf[4] = {'x', 'y', 'z', 'w'};
        sf_topic_append(&t, buf, 4);
        ck_assert(t.bytes <= 10);
        ck_assert_uint_le(sf_topic_count(&t), 2);
    }
    sf_topic_append(&t, "0123456789abcdef", 16); /* larger than the bound: kept alone */
    ck_assert_uint_eq(sf_topic_count(&t), 1);
    sf_topic_publish(&t, t.end);
    r = sf_topic_get(&t, t.end - 1);
    ck_assert(r && r->len == 16);
    sf_topic_dispose(&t);
}
END_TEST

START_TEST(test_topic_ring_growth)
{
    sf_topic_t t;
    uint64_t i, off;
    sf_topic_init(&t, "t", 100, 1 << 20);
    /* Interleave appends and pops so the ring wraps while growing. */
    for (i = 0; i < 1000; i++) {
        char buf[8];
        const sf_topic_rec_t *r;
        memcpy(buf, &i, sizeof(buf));
        sf_topic_append(&t, buf, sizeof(buf));
        sf_topic_publish(&t, t.end);
        if (i % 3 == 0) {
            r = sf_topic_pop(&t, &off);
            ck_assert_ptr_nonnull(r);
            ck_assert_int_eq(memcmp(r->data, &off, sizeof(off)), 0);
        }
    }
    for (i = t.base; i < t.end; i++) {
        const sf_topic_rec_t *r = sf_topic_get(&t, i);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(memcmp(r->data, &i, sizeof(i)), 0);
    }
    ck_assert_uint_eq(sf_topic_count(&t), 100);
    sf_topic_dispose(&t);
}
END_TEST

Suite *sf_runtime_io_parse_suite(void)
{
    Suite *s = suite_create("runtime_io_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_pct_decode);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_query_next);
    tcase_add_test(tc, test_ingress_path);
    tcase_add_test(tc, test_ingress_content_type);
    tcase_add_test(tc, test_egress_record_variants);
    tcase_add_test(tc, test_egress_record_invalid);
    tcase_add_test(tc, test_egress_target);
    tcase_add_test(tc, test_topic_visibility_and_cursor);
    tcase_add_test(tc, test_topic_bounds);
    tcase_add_test(tc, test_topic_ring_growth);
    suite_add_tcase(s, tc);
    return s;
}
