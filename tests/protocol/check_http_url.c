/* statefun-c: Apache License 2.0.
 *
 * Tests of protocol/http/url.c: the TCP forms (default ports, IPv6 literals,
 * query, authority and origin key), the UNIX socket forms as StateFun splits
 * them, and malformed URLs.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sf_http.h"

START_TEST(test_url_http_defaults)
{
    sf_http_url_t u;

    ck_assert_int_eq(sf_http_url_parse("http://example.com", NULL, &u), 0);
    ck_assert_int_eq(u.scheme, SF_HTTP_SCHEME_HTTP);
    ck_assert(!u.tls);
    ck_assert_str_eq(u.host, "example.com");
    ck_assert_uint_eq(u.port, 80);
    ck_assert_ptr_null(u.unix_path);
    ck_assert_str_eq(u.path, "/");
    ck_assert_str_eq(u.authority, "example.com");
    ck_assert_str_eq(u.origin_key, "http://example.com:80");
    sf_http_url_dispose(&u, NULL);

    ck_assert_int_eq(sf_http_url_parse("https://Fn.Example.com/a/b?x=1&y=2#frag", NULL, &u), 0);
    ck_assert_int_eq(u.scheme, SF_HTTP_SCHEME_HTTPS);
    ck_assert(u.tls);
    ck_assert_uint_eq(u.port, 443);
    ck_assert_str_eq(u.path, "/a/b?x=1&y=2");
    ck_assert_str_eq(u.authority, "Fn.Example.com");
    ck_assert_str_eq(u.origin_key, "https://fn.example.com:443");
    sf_http_url_dispose(&u, NULL);
}
END_TEST

START_TEST(test_url_http_ports_and_ipv6)
{
    sf_http_url_t u;

    ck_assert_int_eq(sf_http_url_parse("http://127.0.0.1:8000/statefun", NULL, &u), 0);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_uint_eq(u.port, 8000);
    ck_assert_str_eq(u.path, "/statefun");
    ck_assert_str_eq(u.authority, "127.0.0.1:8000");
    ck_assert_str_eq(u.origin_key, "http://127.0.0.1:8000");
    sf_http_url_dispose(&u, NULL);

    /* An explicit default port is left out of the authority. */
    ck_assert_int_eq(sf_http_url_parse("https://h:443/", NULL, &u), 0);
    ck_assert_str_eq(u.authority, "h");
    ck_assert_str_eq(u.origin_key, "https://h:443");
    sf_http_url_dispose(&u, NULL);

    ck_assert_int_eq(sf_http_url_parse("http://[::1]:9000/fn", NULL, &u), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_uint_eq(u.port, 9000);
    ck_assert_str_eq(u.authority, "[::1]:9000");
    ck_assert_str_eq(u.origin_key, "http://[::1]:9000");
    sf_http_url_dispose(&u, NULL);

    /* The function name template survives verbatim. */
    ck_assert_int_eq(sf_http_url_parse("http://fns:8080/fns/{function.name}", NULL, &u), 0);
    ck_assert_str_eq(u.path, "/fns/{function.name}");
    sf_http_url_dispose(&u, NULL);
}
END_TEST

START_TEST(test_url_unix)
{
    sf_http_url_t u;

    /* StateFun's own examples (UnixDomainHttpEndpointTest). */
    ck_assert_int_eq(sf_http_url_parse("http+unix:///some/path.sock", NULL, &u), 0);
    ck_assert_int_eq(u.scheme, SF_HTTP_SCHEME_HTTP);
    ck_assert(!u.tls);
    ck_assert_ptr_null(u.host);
    ck_assert_str_eq(u.unix_path, "/some/path.sock");
    ck_assert_str_eq(u.path, "/");
    ck_assert_str_eq(u.authority, "localhost");
    ck_assert_str_eq(u.origin_key, "http+unix:///some/path.sock");
    sf_http_url_dispose(&u, NULL);

    ck_assert_int_eq(sf_http_url_parse("http+unix:///some/path.sock/hello", NULL, &u), 0);
    ck_assert_str_eq(u.unix_path, "/some/path.sock");
    ck_assert_str_eq(u.path, "/hello");
    sf_http_url_dispose(&u, NULL);

    ck_assert_int_eq(
        sf_http_url_parse("https+unix:///var/run/fn.sock/path/to/{function.name}?a=b", NULL, &u),
        0);
    ck_assert_int_eq(u.scheme, SF_HTTP_SCHEME_HTTPS);
    ck_assert(u.tls);
    ck_assert_str_eq(u.unix_path, "/var/run/fn.sock");
    ck_assert_str_eq(u.path, "/path/to/{function.name}?a=b");
    ck_assert_str_eq(u.origin_key, "https+unix:///var/run/fn.sock");
    sf_http_url_dispose(&u, NULL);

    /* Only the first ".sock" segment ends the socket path; "//" collapses. */
    ck_assert_int_eq(sf_http_url_parse("HTTP+UNIX:///a//b%20c.sock/x.sock/y/", NULL, &u), 0);
    ck_assert_str_eq(u.unix_path, "/a/b c.sock");
    ck_assert_str_eq(u.path, "/x.sock/y/");
    sf_http_url_dispose(&u, NULL);
}
END_TEST

START_TEST(test_url_invalid)
{
    static const char *const bad[] = {
        "",
        "ftp://host/",
        "http://",
        "http:///path",
        "http://host:0/",
        "http://host:99999/",
        "http://ho st/",
        "host:80/path",
        "http+unix:///some/path/hello", /* no .sock segment */
        "http+unix://host/x.sock/fn",   /* an authority is not supported */
        "http+unix://",
        "http+unix:///a/b%2.sock",
        "http+unix:///a/b%00.sock",
        "http+unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock/fn",
    };
    sf_http_url_t u;
    size_t i;

    for (i = 0; i < SF_ARRAY_SIZE(bad); i++) {
        ck_assert_msg(sf_http_url_parse(bad[i], NULL, &u) == SF_EINVAL, "accepted: %s", bad[i]);
        ck_assert_ptr_null(u.path);
        ck_assert_ptr_null(u.origin_key);
    }
    ck_assert_int_eq(sf_http_url_parse(NULL, NULL, &u), SF_EINVAL);
    /* Disposing a zeroed URL is harmless. */
    sf_http_url_dispose(&u, NULL);
}
END_TEST

static int fail_after;

static void *failing_malloc(size_t n, void *ud)
{
    (void)ud;
    if (fail_after-- <= 0)
        return NULL;
    return malloc(n);
}
static void failing_free(void *p, void *ud) { (void)ud; free(p); }
static void *failing_calloc(size_t m, size_t n, void *ud)
{
    (void)ud;
    if (fail_after-- <= 0)
        return NULL;
    return calloc(m, n);
}
static void *failing_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    if (fail_after-- <= 0)
        return NULL;
    return realloc(p, n);
}

START_TEST(test_url_failmalloc)
{
    static const sf_mem fmem = {NULL, failing_malloc, failing_free, failing_calloc,
                                failing_realloc};
    static const char *const urls[] = {"https://[::1]:8443/a?b", "http+unix:///x/y.sock/z?q"};
    size_t i;

    for (i = 0; i < SF_ARRAY_SIZE(urls); i++) {
        int n, rv;
        for (n = 0;; n++) {
            sf_http_url_t u;
            fail_after = n;
            rv = sf_http_url_parse(urls[i], &fmem, &u);
            if (rv == 0) {
                sf_http_url_dispose(&u, &fmem);
                break;
            }
            ck_assert_int_eq(rv, SF_ENOMEM);
            ck_assert_int_lt(n, 100);
        }
    }
}
END_TEST

Suite *sf_protocol_http_url_suite(void)
{
    Suite *s = suite_create("protocol_http_url");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_url_http_defaults);
    tcase_add_test(tc, test_url_http_ports_and_ipv6);
    tcase_add_test(tc, test_url_unix);
    tcase_add_test(tc, test_url_invalid);
    tcase_add_test(tc, test_url_failmalloc);
    suite_add_tcase(s, tc);
    return s;
}
