#!/bin/sh
# statefun-c: Apache License 2.0.
#
# `make run`: starts the greeter on the embedded default, the statefun
# runtime with libgreeter.so loaded in-process, a local state directory, the
# playground ingress on 8090 and egress on 8091. Usage: run.sh BUILD_DIR
set -e
BUILD=${1:-build}
RUN_DIR="$BUILD/greeter-run"
mkdir -p "$RUN_DIR"
# The library path is relative to the YAML file's folder.
cat > "$RUN_DIR/module.yaml" <<YAML
kind: statefun.c.v1/embedded
spec:
  library: ../examples/libgreeter.so
  functions: greeter.fns/*
---
kind: io.statefun.playground.v1/ingress
spec:
  port: 8090
---
kind: io.statefun.playground.v1/egress
spec:
  port: 8091
  topics:
    - greetings
YAML
cat <<TEXT
Starting the greeter (embedded) with state in $RUN_DIR/state. Try, from another shell:

  curl -X PUT -H 'Content-Type: text/plain' -d 'Alice' localhost:8090/greeter.fns/person/Alice
  curl 'localhost:8091/greetings?wait=5s'

Each PUT greets Alice once more ("Welcome Alice", "Nice to see you again Alice", ...).
Greetings are exactly-once: they show up when the checkpoint that produced them
completes (every second), so the ?wait=5s long poll waits for the next one.
Stop with Ctrl-C.
TEXT
exec "$BUILD/bin/statefun" run --state-dir "$RUN_DIR/state" "$RUN_DIR/module.yaml"
