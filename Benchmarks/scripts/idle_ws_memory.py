"""Server memory per idle authenticated WebSocket, measured on the real `chorus` binary.

Usage: python3 idle_ws_memory.py CHORUS_BIN CONNECTIONS [USERS]
Starts `chorus serve` (fsync never, fast password hash) on a temporary directory, registers USERS
users, opens CONNECTIONS WebSockets (real sockets, this process as the client), waits until every
`hello` arrived, and prints JSON with the server's RSS before and after and the difference per
connection. RSS is user-space memory of the server process; kernel socket buffers are not in it.
"""
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def http(base, method, path, body):
    req = urllib.request.Request(f"http://{base}{path}", method=method, data=json.dumps(body).encode())
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


async def main(binary, connections, users):
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    data = tempfile.mkdtemp(prefix="chorus-mem-")
    # The registration limit is off for the set-up, where the build has it.
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    limits = ["--register-rate-limit", "off"] if "--register-rate-limit " in help_text else []
    proc = subprocess.Popen([binary, "serve", "--http", "127.0.0.1:0", "--data", data + "/d", "--fsync", "never",
                             "--insecure-fast-password-hash", "--login-rate-limit", "off", *limits, "--max-connections", "19500"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    base = "127.0.0.1:" + line.split("http://127.0.0.1:")[1].split(" ")[0]
    try:
        tokens = []
        for i in range(users):
            http(base, "POST", "/v1/users", {"username": f"user{i}", "password": "password1", "email": f"u{i}@example.com"})
            tokens.append(http(base, "POST", "/v1/sessions", {"username": f"user{i}", "password": "password1"})["token"])
        time.sleep(1)
        before = rss_kib(proc.pid)
        sockets = []
        started = time.monotonic()
        batch = 500
        for start in range(0, connections, batch):
            async def one(i):
                ws = await websockets.connect(f"ws://{base}/v1/ws?token={tokens[i % users]}", ping_interval=None,
                                              open_timeout=60, max_queue=1)
                hello = json.loads(await ws.recv())
                assert hello["type"] == "hello"
                return ws
            sockets += await asyncio.gather(*(one(i) for i in range(start, min(connections, start + batch))))
        connect_s = time.monotonic() - started
        await asyncio.sleep(2)
        after = rss_kib(proc.pid)
        print(json.dumps({
            "connections": len(sockets), "users": users, "connect_seconds": round(connect_s, 1),
            "server_rss_kib_before": before, "server_rss_kib_after": after,
            "server_bytes_per_connection": round((after - before) * 1024 / len(sockets)),
            "kind": "real sockets on loopback, one client process, idle authenticated sessions",
        }))
        for ws in sockets:
            ws.transport.abort()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1000))
