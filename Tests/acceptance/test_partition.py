"""A link cut between one node and the others (TCP proxies we control on every directed mesh link):
the rest keep chatting, requests that need the cut-off node get `unavailable`, and once the link is
back everything sent meanwhile arrives, once, in order."""
import asyncio
import json
import socket
import threading

import pytest
import websockets

from conftest import Server, mesh_security
from ring import Ring
from test_cluster import frames_until, node_ports, until_equal, wait_ready


class Proxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port):
        self.target = target_port
        self.cut_off = False
        self.conns = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        if self.cut_off:
            writer.close()
            return
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.conns.update({writer, w2})

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    def cut(self):
        def go():
            self.cut_off = True
            for w in list(self.conns):
                w.transport.abort()
            self.conns.clear()
        self.loop.call_soon_threadsafe(go)

    def heal(self):
        self.loop.call_soon_threadsafe(lambda: setattr(self, "cut_off", False))


@pytest.fixture
def proxied(datadir):
    ids = ["n1", "n2", "n3"]
    mesh, http = node_ports(ids)
    proxies = {(i, j): Proxy(mesh[j]) for i in ids for j in ids if i != j}
    nodes = []
    for i in ids:
        peers = [a for j in ids if j != i for a in ("--peer", f"{j}@127.0.0.1:{proxies[(i, j)].port}")]
        nodes.append(Server(f"{datadir}/{i}", "--node-id", i, "--mesh", f"127.0.0.1:{mesh[i]}", *mesh_security(i), *peers, http=f"127.0.0.1:{http[i]}"))
    for n in nodes:
        wait_ready(n)
    yield nodes, proxies
    for n in nodes:
        n.stop()


def test_a_cut_link_costs_only_the_cut_off_nodes_keys_and_heals(proxied):
    nodes, proxies = proxied
    ring = Ring(["n1", "n2", "n3"])

    def owned(prefix, node):
        return next(f"{prefix}{k}" for k in range(1000) if ring.owner_of_username(f"{prefix}{k}") == node)

    a = nodes[0].user(owned("pa", "n1"))
    b = nodes[1].user(owned("pb", "n2"))
    c = nodes[2].user(owned("pc", "n3"))
    status, group = nodes[0].http("POST", "/v1/conversations", {"members": [b["id"], c["id"]]}, token=a["token"])
    assert status == 201 and ring.owner(group["conversationId"]) == "n1"
    gid = group["conversationId"]

    for (i, j), p in proxies.items():
        if "n3" in (i, j):
            p.cut()
    # The others keep chatting: sends are acknowledged at once, b gets them live.
    async def chat():
        async with websockets.connect(nodes[1].ws_url(b["token"])) as ws_b:
            json.loads(await ws_b.recv())
            for k in range(5):
                status, m = nodes[0].http("POST", f"/v1/conversations/{gid}/messages", {"clientMsgId": f"cut{k}", "body": f"during cut {k}"}, token=a["token"])
                assert status == 201, m
                got = (await frames_until(ws_b, lambda f: f["type"] == "message", seconds=5))[-1]
                assert got["body"] == f"during cut {k}"
    asyncio.run(chat())
    # What needs n3 is refused while the link is cut (c is owned there).
    status, answer = nodes[0].http("GET", "/v1/me", token=c["token"])
    assert status == 503 and answer["error"]["code"] == "unavailable"

    for p in proxies.values():
        p.heal()
    # Once the link is back, c has every message sent meanwhile, once, in order.
    async def c_sync():
        async with websockets.connect(nodes[2].ws_url(c["token"])) as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "sync", "after": 0}))
            got = await frames_until(ws, lambda f: f["type"] == "synced")
            return [f["body"] for f in got if f["type"] == "message"]

    want = [f"during cut {k}" for k in range(5)]
    assert until_equal(c_sync, want, seconds=30) == want
