"""The big cluster run: a six-node cluster on this machine, PER_NODE idle authenticated WebSockets on
each node (real sockets on loopback, one client process per node: the file limit is 20,000 per
process), then a steady trickle of messages checked for live delivery.

Usage: python3 six_nodes.py CHORUS_BIN [PER_NODE] [USERS_PER_NODE]
Prints JSON: per node RSS before/after and bytes per connection, the cluster-wide figure, idle CPU
per node over 10 s, and the trickle's sent/delivered counts and delivery latency.
"""
import asyncio
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

NODES = 6


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(base, method, path, body=None, token=None):
    req = urllib.request.Request(f"http://{base}{path}", method=method, data=json.dumps(body).encode() if body is not None else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        return json.loads(raw) if raw else {}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])


def client(base, tokens, count, ready, stop):
    """A child process: opens `count` idle sessions on `base`, reports, holds them until `stop`."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))

    async def run():
        sockets = []
        for start in range(0, count, 250):
            async def one(i):
                ws = await websockets.connect(f"ws://{base}/v1/ws?token={tokens[i % len(tokens)]}", ping_interval=None, open_timeout=120, max_queue=1)
                assert json.loads(await ws.recv())["type"] == "hello"
                return ws
            sockets += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 250))))
        ready.put(len(sockets))
        while not stop.is_set():
            await asyncio.sleep(0.5)
        for ws in sockets:
            ws.transport.abort()

    asyncio.run(run())


def main(binary, per_node, users_per_node):
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    base_dir = tempfile.mkdtemp(prefix="chorus-six-")
    ids = [f"n{i + 1}" for i in range(NODES)]
    mesh = {i: free_port() for i in ids}
    http_ports = {i: free_port() for i in ids}
    procs = {}
    subprocess.run([binary, "cert", "ca", "--out", f"{base_dir}/ca"], check=True, capture_output=True)
    for i in ids:
        subprocess.run([binary, "cert", "node", "--id", i, "--ca", f"{base_dir}/ca", "--out", f"{base_dir}/certs"],
                       check=True, capture_output=True)
    for i in ids:
        peers = [a for j in ids if j != i for a in ("--peer", f"{j}@127.0.0.1:{mesh[j]}")]
        procs[i] = subprocess.Popen(
            [binary, "serve", "--node-id", i, "--http", f"127.0.0.1:{http_ports[i]}", "--data", f"{base_dir}/{i}",
             "--mesh", f"127.0.0.1:{mesh[i]}", *peers, "--mesh-cert", f"{base_dir}/certs/{i}.pem",
             "--mesh-key", f"{base_dir}/certs/{i}-key.pem", "--mesh-ca", f"{base_dir}/ca/ca.pem", "--insecure-fast-password-hash", "--login-rate-limit", "off", "--register-rate-limit", "off",
             "--max-connections", "19500", "--heartbeat-ms", "600000"],
            stdout=subprocess.DEVNULL, stderr=open(f"{base_dir}/{i}.err", "wb"))
    bases = {i: f"127.0.0.1:{http_ports[i]}" for i in ids}
    children = []
    try:
        for i in ids:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://{bases[i]}/readyz", timeout=2)
                    break
                except Exception:
                    time.sleep(0.1)
        users = {}
        for k, i in enumerate(ids):
            for u in range(users_per_node):
                name = f"six{k}u{u}"
                created = http(bases[i], "POST", "/v1/users", {"username": name, "password": "password1", "email": f"{name}@example.com"})
                token = http(bases[i], "POST", "/v1/sessions", {"username": name, "password": "password1"})["token"]
                users[name] = (created["userId"], token, i)
        time.sleep(2)
        before = {i: rss_kib(procs[i].pid) for i in ids}
        all_tokens = [t for (_, t, _) in users.values()]
        ready, stop = multiprocessing.Queue(), multiprocessing.Event()
        started = time.monotonic()
        for i in ids:
            p = multiprocessing.Process(target=client, args=(bases[i], all_tokens, per_node, ready, stop))
            p.start()
            children.append(p)
        connected = sum(ready.get(timeout=1800) for _ in ids)
        connect_s = time.monotonic() - started
        time.sleep(3)
        after = {i: rss_kib(procs[i].pid) for i in ids}
        t0 = {i: cpu_ticks(procs[i].pid) for i in ids}
        time.sleep(10)
        t1 = {i: cpu_ticks(procs[i].pid) for i in ids}
        hz = os.sysconf("SC_CLK_TCK")

        # The trickle: 10 messages/s for 20 s between random pairs, sent over HTTP through random
        # nodes, each checked live on a session of the recipient opened through another random node.
        names = list(users)
        rnd = random.Random(7)
        sent = delivered = 0
        latencies = []

        async def trickle():
            nonlocal sent, delivered
            for n in range(200):
                a, b = rnd.sample(names, 2)
                (aid, atok, _), (bid, btok, _) = users[a], users[b]
                async with websockets.connect(f"ws://{bases[rnd.choice(ids)]}/v1/ws?token={btok}", ping_interval=None) as ws:
                    json.loads(await ws.recv())
                    conv = http(bases[rnd.choice(ids)], "POST", "/v1/conversations", {"members": [bid]}, token=atok)["conversationId"]
                    t = time.monotonic()
                    http(bases[rnd.choice(ids)], "POST", f"/v1/conversations/{conv}/messages", {"clientMsgId": f"t{n}", "body": f"trickle {n}"}, token=atok)
                    sent += 1
                    async with asyncio.timeout(10):
                        while True:
                            f = json.loads(await ws.recv())
                            if f["type"] == "message" and f["body"] == f"trickle {n}":
                                delivered += 1
                                latencies.append((time.monotonic() - t) * 1000)
                                break
                await asyncio.sleep(0.1)

        asyncio.run(trickle())
        latencies.sort()
        total_before = sum(before.values())
        total_after = sum(after.values())
        print(json.dumps({
            "kind": "real sockets on loopback; 6 chorus serve processes and 6 client processes on this 2-core VM",
            "connections": connected, "connect_seconds": round(connect_s, 1),
            "per_node": {i: {"rss_kib_before": before[i], "rss_kib_after": after[i],
                             "bytes_per_connection": round((after[i] - before[i]) * 1024 / per_node),
                             "idle_cpu_percent": round((t1[i] - t0[i]) / hz / 10 * 100, 2)} for i in ids},
            "cluster_bytes_per_connection": round((total_after - total_before) * 1024 / connected),
            "trickle": {"sent": sent, "delivered_live": delivered,
                        "p50_ms": round(latencies[len(latencies) // 2], 2) if latencies else None,
                        "max_ms": round(latencies[-1], 2) if latencies else None},
        }, indent=1))
    finally:
        try:
            stop.set()
        except Exception:
            pass
        for p in children:
            p.join(timeout=60)
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 19000, int(sys.argv[3]) if len(sys.argv) > 3 else 500)
