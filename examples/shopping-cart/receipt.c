/* statefun-c: Apache License 2.0.
 *
 * shopping.fns/receipt/USER: numbers the user's receipts (int state
 * "receipts", with a TTL) and publishes each one to the playground egress,
 * topic "receipts", as the JSON text {"userId", "items", "receipt": N}.
 */
#include <string.h>

#include "shopping.h"

int shop_receipt_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    int32_t n = 0;
    json_t *m, *items, *out;
    char *text;
    int rv;

    if (!sf_message_is(msg, "com.example/Receipt") || !(m = shop_json_parse(msg)))
        return SF_OK;
    items = json_object_get(m, "items");
    if (!json_is_object(items) || (rv = sf_storage_get_int(ctx, "receipts", &n)) < 0) {
        json_decref(m);
        return SF_OK;
    }
    n++;
    out =
        json_pack("{s:s, s:O, s:i}", "userId", sf_self(ctx)->id, "items", items, "receipt", (int)n);
    json_decref(m);
    text = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(out);
    if (!text)
        return SF_ENOMEM;
    rv = sf_send_egress_playground(ctx, NULL, "receipts", text, strlen(text));
    free(text);
    if (rv != 0)
        return rv;
    return sf_storage_set_int(ctx, "receipts", n);
}
