#!/usr/bin/env bash
# A three-node cluster on this machine with mutual TLS on the mesh: makes a CA and one certificate
# per node with `chorus cert` (once, under DIR/certs), then runs n1, n2 and n3 with clients on
# http://127.0.0.1:8081-8083 and the mesh on 127.0.0.1:9081-9083. Ctrl-C stops all three.
# Usage: scripts/cluster.sh [DIR, default ./chorus-cluster]
#   CHORUS_BIN=path skips the build; HTTP_BASE / MESH_BASE (default 8080 / 9080) move the ports.
#   REPLICATED=1 also runs a local etcd (Debian's etcd-server, client port ETCD_PORT, default 2379)
#   under DIR/etcd and starts the nodes with --etcd: three copies of every partition, automatic
#   failover (docs/REPLICATION.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-./chorus-cluster}
HTTP_BASE=${HTTP_BASE:-8080}
MESH_BASE=${MESH_BASE:-9080}
if [ -z "${CHORUS_BIN:-}" ]; then
    bash scripts/deps.sh
    swift build -c release --product chorus
    CHORUS_BIN=.build/release/chorus
fi
mkdir -p "$DIR"
chmod 700 "$DIR"
[ -f "$DIR/certs/ca/ca.pem" ] || "$CHORUS_BIN" cert ca --out "$DIR/certs/ca"
for i in 1 2 3; do
    [ -f "$DIR/certs/n$i.pem" ] || "$CHORUS_BIN" cert node --id "n$i" --ca "$DIR/certs/ca" --out "$DIR/certs"
done
PIDS=()
trap 'kill -INT "${PIDS[@]}" 2>/dev/null; wait' INT TERM EXIT
REPLICATION=()
if [ "${REPLICATED:-0}" = 1 ]; then
    ETCD_PORT=${ETCD_PORT:-2379}
    command -v etcd >/dev/null || { echo "etcd not found: bash scripts/deps.sh --test installs etcd-server" >&2; exit 1; }
    etcd --name chorus --data-dir "$DIR/etcd" --log-level error \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
        --initial-cluster "chorus=http://127.0.0.1:$((ETCD_PORT + 1))" &
    PIDS+=($!)
    REPLICATION=(--etcd "http://127.0.0.1:$ETCD_PORT")
fi
for i in 1 2 3; do
    peers=()
    for j in 1 2 3; do [ "$j" = "$i" ] || peers+=(--peer "n$j@127.0.0.1:$((MESH_BASE + j))"); done
    "$CHORUS_BIN" serve --node-id "n$i" --http "127.0.0.1:$((HTTP_BASE + i))" --data "$DIR/n$i" --mesh "127.0.0.1:$((MESH_BASE + i))" "${peers[@]}" \
        --mesh-cert "$DIR/certs/n$i.pem" --mesh-key "$DIR/certs/n$i-key.pem" --mesh-ca "$DIR/certs/ca/ca.pem" "${REPLICATION[@]}" &
    PIDS+=($!)
done
wait -n
