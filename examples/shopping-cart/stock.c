/* statefun-c: Apache License 2.0.
 *
 * shopping.fns/stock/ITEM: the stock of one item, in the int state "stock".
 *
 *   com.example/RestockItem {"itemId", "quantity"}  adds to the stock;
 *   com.example/RequestItem {"quantity"}            from a cart: reserves the
 *       quantity when there is enough and answers the cart with
 *       com.example/ItemAvailability {"status": "IN_STOCK"|"OUT_OF_STOCK",
 *       "quantity"};
 *   com.example/ReleaseItem {"quantity"}            a cart gives items back.
 *
 * Unknown or malformed messages are dropped: failing would make the runtime
 * retry the same message for ever.
 */
#include <stdio.h>

#include "shopping.h"

int shop_stock_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    const sf_address_t *caller = sf_caller(ctx);
    int32_t stock = 0;
    int64_t qty;
    json_t *m;
    int rv;

    if ((rv = sf_storage_get_int(ctx, "stock", &stock)) < 0)
        return rv;
    if (!(m = shop_json_parse(msg)))
        return SF_OK;
    qty = shop_json_int(m, "quantity", -1);
    json_decref(m);
    if (qty <= 0 || qty > INT32_MAX)
        return SF_OK;

    if (sf_message_is(msg, "com.example/RestockItem") ||
        sf_message_is(msg, "com.example/ReleaseItem")) {
        if (stock > INT32_MAX - qty)
            return SF_OK;
        return sf_storage_set_int(ctx, "stock", stock + (int32_t)qty);
    }
    if (sf_message_is(msg, "com.example/RequestItem") && caller) {
        char caller_type[512];
        bool ok = stock >= qty;
        if (ok && (rv = sf_storage_set_int(ctx, "stock", stock - (int32_t)qty)) != 0)
            return rv;
        snprintf(caller_type, sizeof caller_type, "%s/%s", caller->ns, caller->type);
        return shop_send_json(ctx, caller_type, caller->id, "com.example/ItemAvailability",
                              json_pack("{s:s, s:I}", "status", ok ? "IN_STOCK" : "OUT_OF_STOCK",
                                        "quantity", (json_int_t)qty));
    }
    return SF_OK;
}
