#!/usr/bin/env python3
"""What three copies cost (PROTOCOL.md section 7): the same three-node cluster with a real etcd, run
with N = 1 and with N = 3, W = 2, under the same load, alternating, in one run.

Each round starts a fresh etcd and three `chorus serve --etcd` nodes (mutual TLS on the mesh,
`--fsync always`), waits until every partition has a leader, then runs:
- closed loop: CONNECTIONS WebSockets spread over the three nodes, WINDOW messages in flight per
  connection for 10 s: acknowledged messages per second (window 1 by default: with more in flight
  the cluster is overloaded, senders run ahead of cross-node delivery and acks time out, which
  measures the overload, not the copies);
- open loop: 200 connections at RATE messages/s for 10 s: end-to-end p50/p99 (intended send time
  to delivery) and the ack p50;
and reads every node's `chorus_wal_fsync_seconds` histogram (its p50, interpolated within the
bucket as Prometheus's histogram_quantile does). Prints one line per round and a summary: the
throughput ratio N=3/N=1 and the added end-to-end p50 against the fsync p50.

Usage: Benchmarks/scripts/replication_throughput.py BIN [--rounds 2] [--connections 1500] [--window 1] [--rate 300]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "acceptance"))
os.environ.setdefault("CHORUS_BIN", "")
import conftest  # noqa: E402
from test_replication import Etcd  # noqa: E402
from test_cluster import free_ports, wait_ready  # noqa: E402


def start_cluster(root, etcd, factor, ack):
    ids = ["n1", "n2", "n3"]
    ports = free_ports(6)
    mesh, http = dict(zip(ids, ports[:3])), dict(zip(ids, ports[3:]))
    nodes = []
    for i in ids:
        peers = [a for p in ids if p != i for a in ("--peer", f"{p}@127.0.0.1:{mesh[p]}")]
        nodes.append(conftest.Server(
            f"{root}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{mesh[i]}", *conftest.mesh_security(i), *peers,
            "--etcd", etcd.url, "--replication-factor", str(factor), "--ack-replicas", str(ack), "--lease", "3s",
            "--fsync", "always", "--register-rate-limit", "off", "--login-rate-limit", "off", "--user-send-rate-limit", "off",
            "--session-rate-limit", "100000:300000", http=f"127.0.0.1:{http[i]}"))
    for n in nodes:
        wait_ready(n, 60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, view = nodes[0].http("GET", "/v1/cluster")
        if status == 200 and sum(len(x.get("leads", [])) for x in view["nodes"]) == 64:
            return nodes
        time.sleep(0.2)
    raise RuntimeError("not every partition got a leader in 60 s")


def load(binary, nodes, *args):
    targets = [a for n in nodes for a in ("--target", n.base)]
    out = subprocess.run([binary, "load", *targets, *args], capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout)


def fsync_p50_ms(nodes):
    """The p50 of every node's fdatasync histogram together, interpolated within its bucket."""
    counts = {}
    for n in nodes:
        text = urllib.request.urlopen(f"http://{n.base}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith("chorus_wal_fsync_seconds_bucket"):
                le = line.split('le="')[1].split('"')[0]
                counts[le] = counts.get(le, 0) + float(line.rsplit(" ", 1)[1])
    bounds = sorted((float("inf") if le == "+Inf" else float(le), c) for le, c in counts.items())
    total = bounds[-1][1]
    if total == 0:
        return None
    lower, below = 0.0, 0.0
    for upper, cumulative in bounds:
        if cumulative >= total / 2:
            if upper == float("inf"):
                return lower * 1000
            return (lower + (upper - lower) * (total / 2 - below) / max(cumulative - below, 1)) * 1000
        lower, below = upper, cumulative
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=1500)
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--rate", type=int, default=300)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    os.environ["CHORUS_BIN"] = binary
    results = {"N=1": [], "N=3,W=2": []}
    for r in range(args.rounds):
        for name, factor, ack in [("N=1", 1, 1), ("N=3,W=2", 3, 2)]:
            root = tempfile.mkdtemp(prefix="chorus-repl-tput-")
            etcd = Etcd()
            nodes = []
            try:
                nodes = start_cluster(root, etcd, factor, ack)
                closed = load(binary, nodes, "--connections", str(args.connections), "--rate", "0", "--window", str(args.window),
                              "--duration", "10", "--warmup", "2", "--user-prefix", "closed")
                opened = load(binary, nodes, "--connections", "200", "--rate", str(args.rate), "--duration", "10", "--warmup", "2",
                              "--user-prefix", "open")
                fsync = fsync_p50_ms(nodes)
                row = {"ackedPerSecond": closed["ackedPerSecond"], "lost": closed["lost"] + opened["lost"],
                       "duplicates": closed["duplicates"] + opened["duplicates"],
                       "e2eP50": opened["endToEndLatencyMs"]["p50"], "e2eP99": opened["endToEndLatencyMs"]["p99"],
                       "ackP50": opened["ackLatencyMs"]["p50"], "fsyncP50": fsync}
                results[name].append(row)
                print(f"round {r + 1} {name}: {row['ackedPerSecond']:.0f} acks/s, open loop {args.rate}/s e2e p50 {row['e2eP50']} ms "
                      f"p99 {row['e2eP99']} ms, ack p50 {row['ackP50']} ms, fsync p50 {fsync:.3f} ms, "
                      f"lost {row['lost']} dup {row['duplicates']}", flush=True)
            finally:
                for n in nodes:
                    if n.proc.poll() is None:
                        n.kill()
                etcd.stop()
                subprocess.run(["rm", "-rf", root])
    one, three = results["N=1"], results["N=3,W=2"]
    ratio = statistics.mean(x["ackedPerSecond"] for x in three) / statistics.mean(x["ackedPerSecond"] for x in one)
    added = statistics.median(x["e2eP50"] for x in three) - statistics.median(x["e2eP50"] for x in one)
    fsync = statistics.median(x["fsyncP50"] for x in three)
    print(json.dumps({"throughputRatio": round(ratio, 3), "addedE2eP50Ms": round(added, 3), "fsyncP50Ms": round(fsync, 3),
                      "addedWithinFsyncPlusHalfMs": added <= fsync + 0.5, "rounds": results}))


if __name__ == "__main__":
    main()
