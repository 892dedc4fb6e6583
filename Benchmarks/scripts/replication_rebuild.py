#!/usr/bin/env python3
"""How fast a wiped node rebuilds its copies (PROTOCOL.md section 7) while the cluster serves.

Starts a real etcd and three `chorus serve --etcd` nodes (N = 3, W = 2, mutual TLS on the mesh),
fills them with FILL seconds of closed-loop traffic (`chorus load`, BODY-byte messages), then
kills one node with `kill -9`, deletes its data directory and starts it again empty while an
open-loop load of 200 messages/s runs on the other two. Prints the time from the restarted node's
start until it reports no copy rebuilding, the log it wrote meanwhile (records and stored bytes
from its `/metrics`, and the segment files' size) and the rates; the uncompressed size of the
records is estimated as the fill's body bytes times copies.

Usage: Benchmarks/scripts/replication_rebuild.py BIN [--fill 20] [--body 1000] [--connections 1000]
"""
import argparse
import json
import os
import shutil
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
from replication_throughput import load  # noqa: E402


def metric(node, name):
    text = urllib.request.urlopen(f"http://{node.base}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--fill", type=int, default=20)
    ap.add_argument("--body", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=1000)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    os.environ["CHORUS_BIN"] = binary
    root = tempfile.mkdtemp(prefix="chorus-rebuild-")
    etcd = Etcd()
    ids = ["n1", "n2", "n3"]
    ports = free_ports(6)
    mesh, http = dict(zip(ids, ports[:3])), dict(zip(ids, ports[3:]))

    def start(i):
        peers = [a for p in ids if p != i for a in ("--peer", f"{p}@127.0.0.1:{mesh[p]}")]
        return conftest.Server(
            f"{root}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{mesh[i]}", *conftest.mesh_security(i), *peers,
            "--etcd", etcd.url, "--lease", "3s", "--register-rate-limit", "off", "--login-rate-limit", "off",
            "--user-send-rate-limit", "off", "--session-rate-limit", "100000:300000", http=f"127.0.0.1:{http[i]}")

    nodes = {}
    background = None
    try:
        nodes = {i: start(i) for i in ids}
        for n in nodes.values():
            wait_ready(n, 60)
        deadline = time.monotonic() + 60
        while True:
            status, view = nodes["n1"].http("GET", "/v1/cluster")
            if status == 200 and sum(len(x.get("leads", [])) for x in view["nodes"]) == 64:
                break
            assert time.monotonic() < deadline, "not every partition got a leader"
            time.sleep(0.2)
        fill = load(binary, list(nodes.values()), "--connections", str(args.connections), "--rate", "0", "--window", "4",
                    "--duration", str(args.fill), "--warmup", "1", "--body-bytes", str(args.body), "--user-prefix", "fill")
        victim = "n3"
        before = {i: metric(n, "chorus_wal_records_total") for i, n in nodes.items()}
        print(f"fill: {fill['acked']} messages of {args.body} bytes acknowledged, lost {fill['lost']}; "
              f"log records per node {before}", flush=True)
        nodes[victim].kill()
        shutil.rmtree(f"{root}/{victim}")
        others = [n for i, n in nodes.items() if i != victim]
        background = subprocess.Popen(
            [binary, "load", *[a for n in others for a in ("--target", n.base)], "--connections", "200", "--rate", "200",
             "--duration", "60", "--warmup", "1", "--user-prefix", "during"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(2)
        started = time.monotonic()
        nodes[victim] = start(victim)
        wait_ready(nodes[victim], 60)
        while True:
            status, view = nodes[victim].http("GET", "/v1/cluster")
            me = next(x for x in view["nodes"] if x["nodeId"] == view["self"]) if status == 200 else {}
            if status == 200 and not me.get("rebuilding"):
                break
            assert time.monotonic() - started < 600, "still rebuilding after 600 s"
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        n = nodes[victim]
        records, stored = metric(n, "chorus_wal_records_total"), metric(n, "chorus_wal_stored_bytes_total")
        on_disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{root}/{victim}/wal") for f in fs)
        raw = fill["acked"] * args.body
        print(json.dumps({
            "rebuildSeconds": round(elapsed, 2), "records": int(records), "storedBytes": int(stored), "segmentBytes": on_disk,
            "recordsPerSecond": round(records / elapsed), "storedMBPerSecond": round(stored / elapsed / 1e6, 2),
            "bodyMBPerSecond": round(raw / elapsed / 1e6, 2),
        }), flush=True)
        background.wait(timeout=120)
        during = json.loads(background.stdout.read())
        print(f"served meanwhile: {during['acked']} acked, lost {during['lost']}, e2e p50 {during['endToEndLatencyMs'].get('p50')} ms "
              f"p99 {during['endToEndLatencyMs'].get('p99')} ms", flush=True)
    finally:
        if background and background.poll() is None:
            background.kill()
        for n in nodes.values():
            if n.proc.poll() is None:
                n.kill()
        etcd.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
