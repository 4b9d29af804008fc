/* statefun-c: Apache License 2.0.
 *
 * The greeter of the StateFun playground, in C:
 *
 *   greeter.fns/person/NAME   receives anything (the ingress sends the name as
 *                             an io.statefun.types/string), counts the visits in
 *                             its int state "visits" and sends the count to
 *                             greeter.fns/greeter/NAME;
 *   greeter.fns/greeter/NAME  turns the count into a greeting and sends it to
 *                             the playground egress, topic "greetings".
 *
 * The same code is served remotely by main.c and loaded embedded from
 * libgreeter.so (SF_MODULE below). Callbacks run on whatever thread invokes
 * them and keep no state of their own.
 */
#include <stdio.h>
#include <stdlib.h>

#include "greeter.h"

static int person(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    int32_t visits = 0;
    int rv = sf_storage_get_int(ctx, "visits", &visits);
    if (rv < 0)
        return rv;
    visits++; /* SF_EMPTY left it at 0: the first visit */
    if ((rv = sf_storage_set_int(ctx, "visits", visits)) != 0)
        return rv;
    return sf_send_int(ctx, "greeter.fns/greeter", sf_self(ctx)->id, visits);
}

/* Writes the greeting for the |n|-th visit of |name|; snprintf's contract. */
static int greeting(char *buf, size_t size, const char *name, int32_t n)
{
    switch (n) {
    case 1:
        return snprintf(buf, size, "Welcome %s", name);
    case 2:
        return snprintf(buf, size, "Nice to see you again %s", name);
    case 3:
        return snprintf(buf, size, "Third time is a charm %s", name);
    default:
        return snprintf(buf, size, "Nice to see you at the %d-nth time %s!", (int)n, name);
    }
}

static int greeter(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    const char *name = sf_self(ctx)->id;
    char small[256], *text = small;
    int32_t n;
    int len, rv;

    if ((rv = sf_message_as_int(msg, &n)) != 0)
        return rv;
    len = greeting(small, sizeof small, name, n);
    if (len < 0)
        return SF_EINVAL;
    if ((size_t)len >= sizeof small) {
        /* A long name: size the text exactly. */
        if (!(text = malloc((size_t)len + 1)))
            return SF_ENOMEM;
        greeting(text, (size_t)len + 1, name, n);
    }
    rv = sf_send_egress_playground(ctx, SF_PLAYGROUND_EGRESS, "greetings", text, (size_t)len);
    if (text != small)
        free(text);
    return rv;
}

int greeter_register(sf_functions_t *fns)
{
    static const sf_value_spec_t person_specs[] = {SF_SPEC_INT("visits")};
    int rv = sf_functions_bind(fns, "greeter.fns/person", person, NULL, person_specs,
                               sizeof person_specs / sizeof person_specs[0]);
    if (rv != 0)
        return rv;
    return sf_functions_bind(fns, "greeter.fns/greeter", greeter, NULL, NULL, 0);
}

SF_MODULE(greeter_register)
