/* statefun-c: Apache License 2.0.
 *
 * The crash test's command interpreter (see crash_fns.h for the encoding).
 * Callbacks keep no state of their own: they run on whatever thread invokes
 * them, any number at once.
 */
#include <stdio.h>
#include <string.h>

#include "crash_fns.h"

/* A read position in a message's bytes. */
typedef struct {
    const char *p, *end;
} cur_t;

/* Reads a decimal number (at least one digit, at most 18). */
static int num(cur_t *c, unsigned long long *out)
{
    unsigned long long v = 0;
    int n = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && n < 18) {
        v = v * 10 + (unsigned long long)(*c->p - '0');
        c->p++;
        n++;
    }
    if (n == 0)
        return SF_EINVAL;
    *out = v;
    return 0;
}

static int expect(cur_t *c, char ch)
{
    if (c->p >= c->end || *c->p != ch)
        return SF_EINVAL;
    c->p++;
    return 0;
}

/* Reads "(commands)" and sets |*b|, |*len| to the commands between the parentheses. */
static int block(cur_t *c, const char **b, size_t *len)
{
    int depth = 1;
    const char *start;
    if (expect(c, '(') != 0)
        return SF_EINVAL;
    start = c->p;
    for (; c->p < c->end; c->p++) {
        if (*c->p == '(')
            depth++;
        else if (*c->p == ')' && --depth == 0)
            break;
    }
    if (c->p >= c->end)
        return SF_EINVAL;
    *b = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return 0;
}

static int egress(sf_ctx_t *ctx, char kind, unsigned long long n)
{
    char rec[32];
    int len = snprintf(rec, sizeof rec, "%c%llu", kind, n);
    return sf_send_egress_playground(ctx, SF_PLAYGROUND_EGRESS, CRASH_TOPIC, rec, (size_t)len);
}

/* 'a' or 'c': D ',' T ',' K '(' commands ')'. */
static int send_after(sf_ctx_t *ctx, cur_t *c, int cancel)
{
    unsigned long long delay, target, token;
    char id[24], tok[24];
    const char *b;
    size_t blen;
    int rv;
    if (num(c, &delay) != 0 || expect(c, ',') != 0 || num(c, &target) != 0 || expect(c, ',') != 0 ||
        num(c, &token) != 0 || block(c, &b, &blen) != 0)
        return SF_EINVAL;
    snprintf(id, sizeof id, "%llu", target);
    snprintf(tok, sizeof tok, "t%llu", token);
    if (cancel && token == 0)
        return SF_EINVAL;
    rv = sf_send_after(ctx, (int64_t)delay, CRASH_FN_TYPE, id, token ? tok : NULL,
                       CRASH_COMMANDS_TYPE, b, blen);
    if (rv == 0 && cancel)
        rv = sf_cancel_delayed(ctx, tok);
    return rv;
}

static int interpret(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    int64_t counter = 0, start;
    size_t len = 0;
    const char *data = (const char *)sf_message_data(msg, &len);
    cur_t c = {data, data + len};
    int rv;

    if (!sf_message_is(msg, CRASH_COMMANDS_TYPE))
        return SF_EINVAL;
    if ((rv = sf_storage_get_long(ctx, "counter", &counter)) < 0)
        return rv;
    start = counter;
    while (c.p < c.end) {
        char op = *c.p++;
        unsigned long long n;
        const char *b;
        size_t blen;
        char id[24], rec[64];
        int rlen;

        switch (op) {
        case 'i':
            counter++;
            break;
        case 'e':
        case 'x':
            if (num(&c, &n) != 0)
                return SF_EINVAL;
            if ((rv = egress(ctx, op, n)) != 0)
                return rv;
            break;
        case 's':
            if (num(&c, &n) != 0 || block(&c, &b, &blen) != 0)
                return SF_EINVAL;
            snprintf(id, sizeof id, "%llu", n);
            if ((rv = sf_send(ctx, CRASH_FN_TYPE, id, CRASH_COMMANDS_TYPE, b, blen)) != 0)
                return rv;
            break;
        case 'a':
        case 'c':
            if ((rv = send_after(ctx, &c, op == 'c')) != 0)
                return rv;
            break;
        case 'v':
            rlen = snprintf(rec, sizeof rec, "v%s=%lld", sf_self(ctx)->id, (long long)counter);
            if (rlen < 0 || (size_t)rlen >= sizeof rec)
                return SF_EINVAL;
            rv = sf_send_egress_playground(ctx, SF_PLAYGROUND_EGRESS, CRASH_TOPIC, rec,
                                           (size_t)rlen);
            if (rv != 0)
                return rv;
            break;
        default:
            return SF_EINVAL;
        }
    }
    if (counter != start && (rv = sf_storage_set_long(ctx, "counter", counter)) != 0)
        return rv;
    return 0;
}

int crash_register(sf_functions_t *fns)
{
    static const sf_value_spec_t specs[] = {SF_SPEC_LONG("counter")};
    return sf_functions_bind(fns, CRASH_FN_TYPE, interpret, NULL, specs,
                             sizeof specs / sizeof specs[0]);
}

SF_MODULE(crash_register)
