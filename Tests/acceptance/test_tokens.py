"""PROTOCOL.md section 6, "Tokens", against the real binary: a token stops working at expiresAt and
its open sessions are closed with 4001; DELETE /v1/sessions revokes every token of the caller and
closes all of its sessions (on every node: test_cluster.py)."""
import asyncio
import json
import time

import pytest
import websockets

from conftest import Server
from test_websocket import recv


async def closed_code(ws, seconds):
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), seconds)
    return closed.value.rcvd.code if closed.value.rcvd else None


def test_an_expired_tokens_sessions_are_closed_with_4001(datadir):
    server = Server(datadir + "/data", "--token-ttl", "2s", "--heartbeat-ms", "60000")
    try:
        ann = server.user("ann")
        status, session = server.http("POST", "/v1/sessions", {"username": "ann", "password": "password1"})
        assert status == 201 and session["expiresAt"] - time.time() * 1000 < 2500

        async def go():
            async with websockets.connect(server.ws_url(session["token"]), ping_interval=None) as ws:
                await recv(ws)
                start = time.monotonic()
                code = await closed_code(ws, 10)
                return code, time.monotonic() - start
        code, took = asyncio.run(go())
        assert code == 4001 and took < 4.5, (code, took)
        assert server.http("GET", "/v1/me", token=session["token"])[0] == 401
        assert ann
    finally:
        server.stop()


def test_delete_sessions_revokes_every_token_of_the_caller(server):
    ann, bob = server.user("ann"), server.user("bob")
    status, second = server.http("POST", "/v1/sessions", {"username": "ann", "password": "password1"})
    assert status == 201

    async def go():
        async with websockets.connect(server.ws_url(ann["token"])) as a1, websockets.connect(server.ws_url(second["token"])) as a2, \
                websockets.connect(server.ws_url(bob["token"])) as b:
            await recv(a1), await recv(a2), await recv(b)
            status, _ = await asyncio.to_thread(server.http, "DELETE", "/v1/sessions", None, second["token"])
            assert status == 204
            assert await closed_code(a1, 5) == 4001
            assert await closed_code(a2, 5) == 4001
            await b.send(json.dumps({"type": "ping"}))
            assert (await recv(b))["type"] == "pong", "another user's session stays"
    asyncio.run(go())
    for token in (ann["token"], second["token"]):
        assert server.http("GET", "/v1/me", token=token)[0] == 401
    assert server.http("GET", "/v1/me", token=bob["token"])[0] == 200
