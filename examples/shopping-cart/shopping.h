/* statefun-c: Apache License 2.0.
 *
 * The shopping-cart example (see README.md): three functions and the JSON
 * helpers they share. shopping.c binds them (and exports the embedded module
 * entry point), cart.c, stock.c and receipt.c implement them.
 */
#ifndef SHOPPING_H
#define SHOPPING_H

#include <jansson.h>

#include "statefun/sf.h"

#define SHOP_CART "shopping.fns/cart"
#define SHOP_STOCK "shopping.fns/stock"
#define SHOP_RECEIPT "shopping.fns/receipt"

/* How long items stay reserved in a cart without a checkout. */
#define SHOP_RESERVATION_MS 60000

/** Binds the three functions into |fns|. 0 or an SF_E* code. */
int shopping_register(sf_functions_t *fns);

int shop_cart_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data);
int shop_stock_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data);
int shop_receipt_fn(sf_ctx_t *ctx, const sf_message_t *msg, void *user_data);

/** Parses the message's bytes as a JSON object; NULL when they are not one. */
json_t *shop_json_parse(const sf_message_t *msg);

/** The integer |key| of |obj|, or |dflt| when absent or not an integer. */
int64_t shop_json_int(const json_t *obj, const char *key, int64_t dflt);

/** The string |key| of |obj|, or NULL. */
const char *shop_json_str(const json_t *obj, const char *key);

/**
 * Sends |obj| (a reference is taken over and released) as JSON of typename
 * |type_name| to |type|/|id|. Returns 0 or an SF_E* code.
 */
int shop_send_json(sf_ctx_t *ctx, const char *type, const char *id, const char *type_name,
                   json_t *obj);

#endif
