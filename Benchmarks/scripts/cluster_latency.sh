#!/bin/bash
# End-to-end latency on one node against a two-node cluster, same load: 2,000 WebSockets (1,000
# pairs), open loop at RATE messages/s. In the cluster, connection i opens on node i mod 2 (so each
# pair spans both nodes) and users, sessions and conversations are spread by the ring: most
# deliveries cross the mesh once or more. Prints both p50/p99.
# Usage: [MESH_TLS=off] Benchmarks/scripts/cluster_latency.sh .build/release/chorus RATE [--fsync never]
set -euo pipefail
BIN=$1; RATE=$2; shift 2
BASE=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -INT $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$BASE"' EXIT
# The mesh runs mutual TLS with certificates made here; MESH_TLS=off runs it plain (--mesh-insecure).
"$BIN" cert ca --out "$BASE/ca" > /dev/null
mesh_security() {  # mesh_security NODE_ID
    if [ "${MESH_TLS:-on}" = off ]; then echo --mesh-insecure; return; fi
    "$BIN" cert node --id "$1" --ca "$BASE/ca" --out "$BASE/certs" > /dev/null
    echo --mesh-cert "$BASE/certs/$1.pem" --mesh-key "$BASE/certs/$1-key.pem" --mesh-ca "$BASE/ca/ca.pem"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve() {  # serve NAME HTTPPORT [extra...]
    local name=$1 port=$2; shift 2
    "$BIN" serve --http 127.0.0.1:$port --data "$BASE/$name" --node-id "$name" --insecure-fast-password-hash \
        --login-rate-limit off --register-rate-limit off --user-send-rate-limit off --session-rate-limit 1000:3000 "$@" > "$BASE/$name.out" 2> "$BASE/$name.err" &
    PIDS+=($!)
}
ready() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/readyz" > /dev/null && return; sleep 0.1; done; echo "not ready" >&2; exit 1; }
report() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); e=d['endToEndLatencyMs']; print(f\"{sys.argv[2]}: acked {d['acked']} lost {d['lost']} dup {d['duplicates']} e2e p50 {e['p50']} ms p99 {e['p99']} ms\")" "$1" "$2"; }

P1=$(free_port); serve solo $P1 "$@"; ready $P1
"$BIN" load --target 127.0.0.1:$P1 --connections 2000 --rate "$RATE" --duration 12 --warmup 2 2>/dev/null > "$BASE/solo.json"
report "$BASE/solo.json" "one node     "
kill -INT "${PIDS[0]}"; wait "${PIDS[0]}" || true; PIDS=()

H1=$(free_port); H2=$(free_port); M1=$(free_port); M2=$(free_port)
serve n1 $H1 --mesh 127.0.0.1:$M1 $(mesh_security n1) --peer n2@127.0.0.1:$M2 "$@"
serve n2 $H2 --mesh 127.0.0.1:$M2 $(mesh_security n2) --peer n1@127.0.0.1:$M1 "$@"
ready $H1; ready $H2
"$BIN" load --target 127.0.0.1:$H1 --target 127.0.0.1:$H2 --connections 2000 --rate "$RATE" --duration 12 --warmup 2 2>/dev/null > "$BASE/pair.json"
report "$BASE/pair.json" "two-node mesh"
