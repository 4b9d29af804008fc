/* statefun-c: Apache License 2.0.
 *
 * shopping.fns/cart/USER: a user's cart.
 *
 *   com.example/AddToCart {"userId", "itemId", "quantity"}
 *       asks shopping.fns/stock/ITEM for the items (com.example/RequestItem);
 *   com.example/ItemAvailability from the stock
 *       IN_STOCK: the items go into the basket; the first reservation starts
 *       a timeout: a delayed com.example/ReservationTimeout to this cart, with
 *       a cancellation token kept in the state "reservation";
 *   com.example/ReservationTimeout {"token"}
 *       if still pending: gives every item back to its stock
 *       (com.example/ReleaseItem) and empties the cart;
 *   com.example/ClearCart
 *       the same, and cancels the pending timeout;
 *   com.example/Checkout {"userId"}
 *       cancels the timeout, sends com.example/Receipt {"userId", "items"} to
 *       shopping.fns/receipt/USER, and empties the cart.
 *
 * Unknown or malformed messages are dropped (failing would make the runtime
 * retry them for ever).
 */
#include <stdio.h>
#include <string.h>

#include "shopping.h"

/* The basket as a JSON object (new reference; empty when there is none). */
static json_t *basket_load(sf_ctx_t *ctx)
{
    const uint8_t *data;
    size_t len;
    json_t *b = NULL;
    if (sf_storage_get(ctx, "basket", &data, &len) == SF_OK)
        b = json_loadb((const char *)data, len, 0, NULL);
    if (!json_is_object(b)) {
        json_decref(b);
        b = json_object();
    }
    return b;
}

static int basket_store(sf_ctx_t *ctx, json_t *basket)
{
    char *text;
    int rv;
    if (json_object_size(basket) == 0)
        return sf_storage_delete(ctx, "basket");
    /* Sorted keys: the same basket is always the same bytes. */
    if (!(text = json_dumps(basket, JSON_COMPACT | JSON_SORT_KEYS)))
        return SF_ENOMEM;
    rv = sf_storage_set(ctx, "basket", text, strlen(text));
    free(text);
    return rv;
}

/* Gives every item of the basket back to its stock, and empties the cart. */
static int release_all(sf_ctx_t *ctx, json_t *basket)
{
    const char *item;
    json_t *q;
    int rv;
    json_object_foreach(basket, item, q)
    {
        rv = shop_send_json(ctx, SHOP_STOCK, item, "com.example/ReleaseItem",
                            json_pack("{s:I}", "quantity", json_integer_value(q)));
        if (rv != 0)
            return rv;
    }
    if ((rv = sf_storage_delete(ctx, "basket")) != 0)
        return rv;
    return sf_storage_delete(ctx, "reservation");
}

/* Cancels the pending reservation timeout, if any. */
static int cancel_reservation(sf_ctx_t *ctx)
{
    const char *token;
    if (sf_storage_get_string(ctx, "reservation", &token, NULL) != SF_OK)
        return SF_OK;
    return sf_cancel_delayed(ctx, token);
}

/* The stock confirmed |qty| of |item|: into the basket, and start the
 * reservation timeout unless one is pending. */
static int on_available(sf_ctx_t *ctx, json_t *basket, const char *item, int64_t qty)
{
    const char *pending;
    int32_t n = 0;
    char token[512], body[600];
    int rv, len;

    json_object_set_new(basket, item,
                        json_integer(shop_json_int(basket, item, 0) + (json_int_t)qty));
    if ((rv = basket_store(ctx, basket)) != 0)
        return rv;
    if (sf_storage_get_string(ctx, "reservation", &pending, NULL) == SF_OK)
        return SF_OK;
    if ((rv = sf_storage_get_int(ctx, "reservations", &n)) < 0)
        return rv;
    n++;
    len = snprintf(token, sizeof token, "reservation-%s-%d", sf_self(ctx)->id, (int)n);
    if (len < 0 || (size_t)len >= sizeof token)
        return SF_EINVAL;
    if ((rv = sf_storage_set_int(ctx, "reservations", n)) != 0 ||
        (rv = sf_storage_set_string(ctx, "reservation", token, strlen(token))) != 0)
        return rv;
    /* The token is made of the user id, which is JSON-safe only if it needs
     * no escaping; let jansson write it. */
    {
        json_t *j = json_pack("{s:s}", "token", token);
        size_t blen = j ? json_dumpb(j, body, sizeof body, JSON_COMPACT) : 0;
        json_decref(j);
        if (blen == 0 || blen > sizeof body)
            return SF_EINVAL;
        return sf_send_after(ctx, SHOP_RESERVATION_MS, SHOP_CART, sf_self(ctx)->id, token,
                             "com.example/ReservationTimeout", body, blen);
    }
}

static int checkout(sf_ctx_t *ctx, json_t *basket)
{
    int rv;
    if (json_object_size(basket) == 0)
        return SF_OK;
    if ((rv = cancel_reservation(ctx)) != 0)
        return rv;
    rv = shop_send_json(ctx, SHOP_RECEIPT, sf_self(ctx)->id, "com.example/Receipt",
                        json_pack("{s:s, s:O}", "userId", sf_self(ctx)->id, "items", basket));
    if (rv != 0)
        return rv;
    if ((rv = sf_storage_delete(ctx, "basket")) != 0)
        return rv;
    return sf_storage_delete(ctx, "reservation");
}

static int dispatch(sf_ctx_t *ctx, const sf_message_t *msg, json_t *m, json_t *basket)
{
    const sf_address_t *caller = sf_caller(ctx);

    if (sf_message_is(msg, "com.example/AddToCart")) {
        const char *item = shop_json_str(m, "itemId");
        int64_t qty = shop_json_int(m, "quantity", 0);
        if (!item || !*item || qty <= 0 || qty > INT32_MAX)
            return SF_OK;
        return shop_send_json(ctx, SHOP_STOCK, item, "com.example/RequestItem",
                              json_pack("{s:I}", "quantity", (json_int_t)qty));
    }
    if (sf_message_is(msg, "com.example/ItemAvailability")) {
        const char *status = shop_json_str(m, "status");
        int64_t qty = shop_json_int(m, "quantity", 0);
        if (!caller || strcmp(caller->type, "stock") != 0 || !status || qty <= 0)
            return SF_OK;
        if (strcmp(status, "IN_STOCK") != 0)
            return SF_OK; /* nothing was reserved */
        return on_available(ctx, basket, caller->id, qty);
    }
    if (sf_message_is(msg, "com.example/ReservationTimeout")) {
        const char *token = shop_json_str(m, "token"), *pending;
        if (!token || sf_storage_get_string(ctx, "reservation", &pending, NULL) != SF_OK ||
            strcmp(token, pending) != 0)
            return SF_OK; /* a stale timeout: its reservation ended already */
        return release_all(ctx, basket);
    }
    if (sf_message_is(msg, "com.example/ClearCart")) {
        int rv = cancel_reservation(ctx);
        return rv != 0 ? rv : release_all(ctx, basket);
    }
    if (sf_message_is(msg, "com.example/Checkout"))
        return checkout(ctx, basket);
    return SF_OK;
}

int shop_cart_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data)
{
    json_t *m, *basket;
    int rv;

    if (!(m = shop_json_parse(msg)))
        return SF_OK;
    if (!(basket = basket_load(ctx))) {
        json_decref(m);
        return SF_ENOMEM;
    }
    rv = dispatch(ctx, msg, m, basket);
    json_decref(basket);
    json_decref(m);
    return rv;
}
