/* statefun-c: Apache License 2.0.
 *
 * Registration of the shopping-cart functions and their JSON helpers. The
 * messages are JSON documents with typenames com.example/... (README.md), as
 * in the StateFun playground's shopping cart; jansson reads and writes them.
 */
#include <stdlib.h>
#include <string.h>

#include "shopping.h"

int shopping_register(sf_functions_t *fns)
{
    static const sf_value_spec_t cart_specs[] = {
        /* Reserved items, a JSON object {"itemId": quantity, ...}. */
        SF_SPEC("basket", "com.example/Basket"),
        /* The cancellation token of the pending reservation timeout. */
        SF_SPEC_STRING("reservation"),
        /* Reservations made so far: makes each token unique for this cart. */
        SF_SPEC_INT("reservations"),
    };
    static const sf_value_spec_t stock_specs[] = {SF_SPEC_INT("stock")};
    /* Receipts expire a year after the last one, as an example of a TTL. */
    static const sf_value_spec_t receipt_specs[] = {
        {"receipts", SF_TYPE_INT, SF_EXPIRE_AFTER_WRITE, 365LL * 24 * 3600 * 1000},
    };
    int rv;

    if ((rv = sf_functions_bind(fns, SHOP_CART, shop_cart_fn, NULL, cart_specs,
                                sizeof cart_specs / sizeof cart_specs[0])) != 0 ||
        (rv = sf_functions_bind(fns, SHOP_STOCK, shop_stock_fn, NULL, stock_specs,
                                sizeof stock_specs / sizeof stock_specs[0])) != 0 ||
        (rv = sf_functions_bind(fns, SHOP_RECEIPT, shop_receipt_fn, NULL, receipt_specs,
                                sizeof receipt_specs / sizeof receipt_specs[0])) != 0)
        return rv;
    return SF_OK;
}

SF_MODULE(shopping_register)

json_t *shop_json_parse(const sf_message_t *msg)
{
    size_t len;
    const uint8_t *data = sf_message_data(msg, &len);
    json_t *j = json_loadb((const char *)(data ? data : (const uint8_t *)""), len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int64_t shop_json_int(const json_t *obj, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

const char *shop_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int shop_send_json(sf_ctx_t *ctx, const char *type, const char *id, const char *type_name,
                   json_t *obj)
{
    char *text;
    int rv;
    if (!obj)
        return SF_ENOMEM;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return SF_ENOMEM;
    rv = sf_send(ctx, type, id, type_name, text, strlen(text));
    free(text);
    return rv;
}
