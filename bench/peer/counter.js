// statefun-c: Apache License 2.0.
//
// The peer benchmark's service (bench.py peer): the counter of bench/counter as a
// Restate virtual object on Restate's Node SDK. `Counter/<key>/add` counts one message
// in the object's state `n` and answers the new count; `Counter/<key>/get` (a shared
// handler, so it does not queue behind `add`) answers the count, for the final check.
//
// Usage: node counter.js PORT   (needs Node >= 22; listens on 127.0.0.1:PORT, HTTP/2
// cleartext, which Restate uses in bidirectional streaming mode; prints
// "listening on PORT" once it accepts connections).
"use strict";

const http2 = require("node:http2");
const restate = require("@restatedev/restate-sdk");

const counter = restate.object({
    name: "Counter",
    handlers: {
        add: async (ctx) => {
            const n = ((await ctx.get("n")) ?? 0) + 1;
            ctx.set("n", n);
            return n;
        },
        get: restate.handlers.object.shared(async (ctx) => (await ctx.get("n")) ?? 0),
    },
});

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: node counter.js PORT");
    process.exit(2);
}
const server = http2.createServer(restate.createEndpointHandler({ services: [counter] }));
server.listen(port, "127.0.0.1", () => console.log("listening on " + port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
