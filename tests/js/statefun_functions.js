// Remote functions written with the official StateFun JavaScript SDK
// (npm apache-flink-statefun), served by node's http module. statefun-c's
// interop tests drive them; nothing here is statefun-c code.
//
//   node statefun_functions.js [PORT]   (0 or nothing: pick a free port)
//
// Prints "listening PORT" once bound, and exits on SIGTERM.
"use strict";

const http = require("http");
const { StateFun, messageBuilder, egressMessageBuilder, kafkaEgressMessage } =
    require("apache-flink-statefun");

const statefun = new StateFun();

const EgressRecord = StateFun.jsonType("io.statefun.playground/EgressRecord");

// js.fns/counter exercises every kind of side effect in one reply.
statefun.bind({
    typename: "js.fns/counter",
    specs: [
        { name: "seen", type: StateFun.intType(), expireAfterWrite: 60000 },
        { name: "last", type: StateFun.stringType() },
    ],
    fn(context, message) {
        const seen = (context.storage.seen || 0) + 1;
        context.storage.seen = seen;
        context.storage.last = message.asString();
        context.send(messageBuilder({
            typename: "js.fns/echo", id: context.self.id, value: seen, valueType: StateFun.intType(),
        }));
        context.sendAfter(1500, messageBuilder({
            typename: "js.fns/counter", id: context.self.id, value: "later",
        }), "tok-" + context.self.id);
        context.cancelDelayedMessage("old-" + context.self.id);
        context.send(egressMessageBuilder({
            typename: "io.statefun.playground/egress",
            value: { topic: "counts", payload: context.self.id + "=" + seen },
            valueType: EgressRecord,
        }));
        context.send(kafkaEgressMessage({
            typename: "js.io/kafka", topic: "counts", key: context.self.id, value: String(seen),
        }));
    },
});

// The greeter pair of the playground, written with the JS SDK.
statefun.bind({
    typename: "greeter.fns/person",
    specs: [{ name: "visits", type: StateFun.intType() }],
    fn(context, message) {
        const visits = (context.storage.visits || 0) + 1;
        context.storage.visits = visits;
        context.send(messageBuilder({
            typename: "greeter.fns/greeter", id: context.self.id, value: visits,
            valueType: StateFun.intType(),
        }));
    },
});

function greeting(name, n) {
    if (n === 1) return "Welcome " + name;
    if (n === 2) return "Nice to see you again " + name;
    if (n === 3) return "Third time is a charm " + name;
    return "Nice to see you at the " + n + "-nth time " + name + "!";
}

statefun.bind({
    typename: "greeter.fns/greeter",
    fn(context, message) {
        const n = message.as(StateFun.intType());
        context.send(egressMessageBuilder({
            typename: "io.statefun.playground/egress",
            value: { topic: "greetings", payload: greeting(context.self.id, n) },
            valueType: EgressRecord,
        }));
    },
});

// js.fns/sink accepts anything and does nothing.
statefun.bind({ typename: "js.fns/echo", fn() {} });

const port = Number(process.argv[2] || 0);
const server = http.createServer(statefun.handler());
server.listen(port, "127.0.0.1", () => {
    process.stdout.write("listening " + server.address().port + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
