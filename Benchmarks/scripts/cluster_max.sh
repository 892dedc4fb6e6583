#!/bin/bash
# The closed-loop maximum through the peer protocol: a two-node cluster on fresh data directories,
# 2,000 WebSockets where connection i opens on node i mod 2 (most sends, acks and deliveries cross
# the mesh), WINDOW messages in flight per connection for 10 s. Prints acknowledged messages per
# second, lost and duplicated counts and the end-to-end p50/p99.
# Usage: [WINDOW=8] [MESH_TLS=off] Benchmarks/scripts/cluster_max.sh .build/release/chorus [extra serve options, e.g. --fsync never]
set -euo pipefail
BIN=$1; shift
WINDOW=${WINDOW:-8}
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
ready() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/readyz" > /dev/null && return; sleep 0.1; done; echo "not ready" >&2; exit 1; }
H1=$(free_port); H2=$(free_port); M1=$(free_port); M2=$(free_port)
for n in 1 2; do
    if [ $n = 1 ]; then H=$H1; M=$M1; P="n2@127.0.0.1:$M2"; else H=$H2; M=$M2; P="n1@127.0.0.1:$M1"; fi
    "$BIN" serve --http 127.0.0.1:$H --data "$BASE/n$n" --node-id n$n --mesh 127.0.0.1:$M $(mesh_security n$n) --peer "$P" --insecure-fast-password-hash \
        --login-rate-limit off --register-rate-limit off --user-send-rate-limit off --session-rate-limit 100000:300000 "$@" > "$BASE/n$n.out" 2> "$BASE/n$n.err" &
    PIDS+=($!)
done
ready $H1; ready $H2
"$BIN" load --target 127.0.0.1:$H1 --target 127.0.0.1:$H2 --connections 2000 --rate 0 --window "$WINDOW" --duration 10 --warmup 2 \
    2>/dev/null > "$BASE/load.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); e=d['endToEndLatencyMs']; print(f\"two-node cluster, window {sys.argv[2]}: {d['acked']/10:.0f} acks/s, lost {d['lost']} dup {d['duplicates']}, e2e p50 {e['p50']} ms p99 {e['p99']} ms\")" "$BASE/load.json" "$WINDOW"
